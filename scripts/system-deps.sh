#!/usr/bin/env bash
# Debian packages the test suite runs for real, installed when missing (idempotent):
#   redis-server                         the API's Redis backend
#   chromium                             the chat page test
#   containerd runc containernetworking-plugins iptables   the real node of scripts/local-cluster.sh
#   docker.io docker-registry debootstrap                  its image builds, registry and base image
# None of them is started here: the tests and scripts/local-cluster.sh start and stop what they use.
set -euo pipefail

declare -A provides=(
    [redis-server]=redis-server [chromium]=chromium [containerd]=containerd [runc]=runc
    [/usr/lib/cni/bridge]=containernetworking-plugins [iptables]=iptables [dockerd]=docker.io
    [docker-registry]=docker-registry [debootstrap]=debootstrap
)
missing=()
for need in "${!provides[@]}"; do
    case "$need" in
        /*) [ -e "$need" ] || missing+=("${provides[$need]}") ;;
        *) PATH="$PATH:/usr/sbin:/sbin" command -v "$need" >/dev/null 2>&1 || missing+=("${provides[$need]}") ;;
    esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "missing ${missing[*]}: install them with your package manager (Debian: apt-get install ${missing[*]})" >&2
    exit 1
fi
as_root=""
[ "$(id -u)" -ne 0 ] && as_root="sudo"
echo "installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -q >/dev/null
$as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
