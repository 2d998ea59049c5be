#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine (scripts/localcluster: what runs, and why each setting).
#   scripts/local-cluster.sh up       start it (idempotent; builds missing binaries first)
#   scripts/local-cluster.sh images   build the project's images and push them to its registry
#   scripts/local-cluster.sh status   daemons, nodes, addons (exit 1 unless all are up)
#   scripts/local-cluster.sh env      exports for kubectl, helm and docker: eval "$(scripts/local-cluster.sh env)"
#   scripts/local-cluster.sh down     stop it and remove everything up made
# Needs root, Debian's containerd, runc, docker.io, docker-registry, containernetworking-plugins,
# iptables and debootstrap (scripts/system-deps.sh installs them), and the project's .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${MELANCIA_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || { echo "local-cluster: $PYTHON not found: run make venv first" >&2; exit 1; }
PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m localcluster "$@"
