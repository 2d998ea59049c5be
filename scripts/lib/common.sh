# Helpers shared by the scripts that build and fetch what the tests and the local cluster need.
# Source it after setting PROG (the name used in messages).
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../versions.env
. "$ROOT/scripts/versions.env"
CACHE_ROOT="${MELANCIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/melancia}"

log() { echo "${PROG:-melancia}: $*"; }
die() { echo "${PROG:-melancia}: error: $*" >&2; exit 1; }

require_go() {
    command -v go >/dev/null 2>&1 || die "Go is not installed (https://go.dev/dl/; Debian: apt-get install golang)"
}

# take_lock FILE: one builder at a time (parallel sessions may call the same script); the loser waits.
take_lock() {
    mkdir -p "$(dirname "$1")"
    exec 9>"$1"
    if ! flock -n 9; then
        log "another run holds $1; waiting for it"
        flock 9
    fi
}

# go_module_dir MODULE@VERSION: downloads the module from the Go module proxy and prints its folder.
go_module_dir() {
    local out dir
    out="$(cd / && go mod download -json "$1" 2>&1)" \
        || die "cannot download $1 from the Go module proxy ($(go env GOPROXY)): $(echo "$out" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
    dir="$(echo "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    [ -d "$dir" ] || die "no folder for $1 in the Go module cache"
    echo "$dir"
}

# go_module_file MODULE@VERSION: the module's go.mod only (no source download).
go_module_file() {
    local out file
    out="$(cd / && go mod download -json "$1" 2>&1)" || die "cannot download $1: $out"
    file="$(echo "$out" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [ -f "$file" ] || die "no go.mod for $1"
    echo "$file"
}

# timed TIMES_FILE NAME COMMAND...: runs the command and appends its wall time to TIMES_FILE.
timed() {
    local times="$1" name="$2" t0 t1
    shift 2
    t0=$(date +%s)
    "$@" || die "building $name failed (command: $*)"
    t1=$(date +%s)
    log "built $name in $((t1 - t0)) s"
    echo "$name $((t1 - t0))s $(date -u +%FT%TZ) $(go env GOVERSION 2>/dev/null) $(nproc) cores" >>"$times"
}

# stamped DIR NAME STAMP: true when DIR/NAME exists and was built for STAMP.
stamped() {
    [ -e "$1/$2" ] && [ "$(cat "$1/.stamp-$2" 2>/dev/null)" = "$3" ]
}
