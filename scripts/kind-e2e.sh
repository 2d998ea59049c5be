#!/usr/bin/env bash
# End to end on kind (machines with Docker and a network): cluster, images, KServe, the umbrella chart,
# a TrainingRun on CPU to promotion, then a question to the InferenceService and to the API; teardown.
# The chart values (values-kind.yaml) and manifests/kind/e2e.yaml are the ones the test suite renders
# and validates against a real API server. KEEP=1 leaves the cluster up.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=melancia
NS=melancia
# shellcheck source=versions.env
. scripts/versions.env   # KSERVE_VERSION: the one the SDK, the CRDs and the local cluster's controller use
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.16.2}"
step() { printf '\n==> %s\n' "$*"; }
cleanup() { [ "${KEEP:-0}" = 1 ] || kind delete cluster --name "$CLUSTER"; }
trap cleanup EXIT

for tool in docker kind kubectl helm; do
    command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is required" >&2; exit 1; }
done

step "kind cluster"
kind create cluster --config manifests/kind-cluster.yaml --wait 120s

step "images (tag dev), loaded into the nodes"
for image in api predictor operator trainer-cpu; do
    docker build -f images/Dockerfile --target "$image" -t "ghcr.io/melancia/$image:dev" -t "melancia/$image:dev" .
    kind load docker-image --name "$CLUSTER" "ghcr.io/melancia/$image:dev" "melancia/$image:dev"
done

step "cert-manager $CERT_MANAGER_VERSION and KServe $KSERVE_VERSION (RawDeployment mode)"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
kubectl -n cert-manager wait --for=condition=Available deployment --all --timeout=300s
kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/$KSERVE_VERSION/kserve.yaml"
kubectl -n kserve wait --for=condition=Available deployment --all --timeout=300s
kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/$KSERVE_VERSION/kserve-cluster-resources.yaml"
kubectl patch configmap/inferenceservice-config -n kserve --type=strategic \
    -p '{"data": {"deploy": "{\"defaultDeploymentMode\": \"RawDeployment\"}"}}'

step "helm install the platform (charts/melancia, values-kind.yaml)"
helm dependency build charts/melancia
helm install melancia charts/melancia --namespace "$NS" --create-namespace \
    -f charts/melancia/values-kind.yaml --wait --timeout 15m

step "dataset and a TrainingRun (manifests/kind/e2e.yaml)"
kubectl apply -f manifests/kind/e2e.yaml
kubectl -n "$NS" wait --for=condition=Complete job/melancia-data-build --timeout=600s
kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Promoted trainingrun/e2e-smollm2 --timeout=3600s
kubectl -n "$NS" get trainingrun e2e-smollm2 -o wide

step "the InferenceService answers (v1 protocol)"
kubectl -n "$NS" wait --for=condition=Ready inferenceservice/melancia --timeout=900s
kubectl -n "$NS" port-forward svc/melancia-predictor 8080:80 >/dev/null &
FORWARDS=$!
kubectl -n "$NS" port-forward svc/melancia-api 8000:8000 >/dev/null &
FORWARDS="$FORWARDS $!"
trap 'kill $FORWARDS 2>/dev/null; cleanup' EXIT
sleep 5
curl -fsS http://127.0.0.1:8080/v1/models/melancia:predict -H 'Content-Type: application/json' \
    -d '{"instances": ["O que é ACOS?"]}'
echo

step "the API answers with a key"
KEY="$(kubectl -n "$NS" exec deploy/melancia-api -- melancia keys create e2e --tier free | tail -n1)"
curl -fsS http://127.0.0.1:8000/api/v1/query -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
    -d '{"question": "gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?"}'
echo
step "kind-e2e passed"
