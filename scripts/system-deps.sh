#!/usr/bin/env bash
# System packages the test suite uses for real servers: redis-server (Redis backend of the API) and
# chromium (the chat page test). Installed from Debian's packages when missing; idempotent.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
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
