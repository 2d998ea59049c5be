#!/usr/bin/env bash
# Upstream files the tests check the manifests against, taken from the Go modules that carry them
# (versions in scripts/versions.env), into ~/.cache/melancia/assets:
#   crds/     KServe's CRDs (InferenceService and the rest of the serving.kserve.io group), Prometheus
#             Operator's ServiceMonitor and PodMonitor
#   schemas/  skaffold's published config schemas (docs-v2/content/en/schemas)
# Idempotent: a stamp records the versions; a re-run with the stamp in place does nothing.
set -euo pipefail
PROG=test-assets
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ASSETS="$CACHE_ROOT/assets"
STAMP="$ASSETS/.stamp"
WANT="kserve=$KSERVE_VERSION prometheus-operator=$PROMETHEUS_OPERATOR_VERSION skaffold=$SKAFFOLD_VERSION"
[ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ] && { log "up to date in $ASSETS ($WANT)"; exit 0; }
require_go
take_lock "$ASSETS/.lock"
[ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ] && exit 0

rm -rf "$ASSETS/crds" "$ASSETS/schemas"
mkdir -p "$ASSETS/crds" "$ASSETS/schemas"
log "KServe $KSERVE_VERSION CRDs (github.com/kserve/kserve: config/crd/full)"
kserve="$(go_module_dir "github.com/kserve/kserve@$KSERVE_VERSION")"
cp "$kserve"/config/crd/full/serving.kserve.io_*.yaml \
    "$kserve"/config/crd/full/clusterstoragecontainer/serving.kserve.io_*.yaml "$ASSETS/crds/"
log "Prometheus Operator $PROMETHEUS_OPERATOR_VERSION monitor CRDs"
prometheus="$(go_module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")"
for kind in servicemonitors podmonitors; do
    cp "$prometheus/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$ASSETS/crds/"
done
log "skaffold $SKAFFOLD_VERSION config schemas"
skaffold="$(go_module_dir "github.com/GoogleContainerTools/skaffold/v2@$SKAFFOLD_VERSION")"
cp "$skaffold"/docs-v2/content/en/schemas/v4beta*.json "$ASSETS/schemas/"
chmod u+w "$ASSETS"/crds/* "$ASSETS"/schemas/*
echo "$WANT" >"$STAMP"
log "done: $(ls "$ASSETS/crds" | wc -l) CRDs, $(ls "$ASSETS/schemas" | wc -l) schemas in $ASSETS"
