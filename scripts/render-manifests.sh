#!/usr/bin/env bash
# Renders the plain manifests that mirror the charts, for users who apply YAML without Helm:
#   manifests/operator/operator.yaml  <- charts/melancia-operator (namespace melancia-system)
# A test renders them again and fails when the committed files are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM="${HELM:-${MELANCIA_HELM_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/melancia/helm/bin}/helm}"
render_operator() {
    echo "# Rendered by scripts/render-manifests.sh from charts/melancia-operator: namespace, RBAC, Deployment."
    echo "# The CRD is manifests/crds/trainingrun.yaml. kubectl apply -f manifests/crds/ -f manifests/operator/"
    printf -- "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: melancia-system\n"
    "$HELM" template melancia-operator charts/melancia-operator --namespace melancia-system
}
render_operator >manifests/operator/operator.yaml
echo "render-manifests: manifests/operator/operator.yaml"
