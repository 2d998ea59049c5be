#!/usr/bin/env bash
# Builds what the one-node cluster of scripts/local-cluster.sh runs besides Kubernetes itself, once,
# into ~/.cache/melancia/cluster (versions in scripts/versions.env):
#   bin/coredns                  CoreDNS with the plugins of Kubernetes' addon Corefile
#   bin/kserve-manager           KServe's controller (cmd/manager of github.com/kserve/kserve)
#   bin/local-path-provisioner   the storage provisioner kind uses (rancher/local-path-provisioner)
#   bin/pause                    the pod sandbox, from build/pause/linux/pause.c of k8s.io/kubernetes
#   kserve/                      KServe's install files of the same version (config/)
#   addons/coredns.yaml.base     Kubernetes' CoreDNS addon manifest
#   addons/local-path-storage.yaml  the provisioner's install manifest
# Idempotent: a stamp per artifact records its version. MELANCIA_CLUSTER_KEEP_GO_CACHE=1 keeps the
# Go build cache (removed after a good build by default).
set -euo pipefail
PROG=cluster-binaries
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

CACHE="$CACHE_ROOT/cluster"
BIN="$CACHE/bin"
stamp_of() {
    case "$1" in
        coredns) echo "coredns=$COREDNS_VERSION" ;;
        kserve-manager | kserve) echo "kserve=$KSERVE_VERSION" ;;
        local-path-provisioner) echo "local-path-provisioner=$LOCAL_PATH_PROVISIONER_VERSION" ;;
        pause | coredns.yaml.base) echo "k8s=$K8S_VERSION" ;;
        local-path-storage.yaml) echo "local-path-provisioner=$LOCAL_PATH_PROVISIONER_VERSION" ;;
    esac
}
ARTIFACTS="coredns kserve-manager local-path-provisioner pause"
todo() {
    local a
    for a in $ARTIFACTS; do stamped "$BIN" "$a" "$(stamp_of "$a")" || echo "$a"; done
    stamped "$CACHE" kserve "$(stamp_of kserve)" || echo kserve
    for a in coredns.yaml.base local-path-storage.yaml; do stamped "$CACHE/addons" "$a" "$(stamp_of "$a")" || echo "$a"; done
}
[ -z "$(todo)" ] && { log "up to date in $CACHE"; exit 0; }
require_go
take_lock "$CACHE/.lock"
mapfile -t TODO < <(todo)
[ ${#TODO[@]} -eq 0 ] && exit 0
log "to build: ${TODO[*]}"
mkdir -p "$BIN" "$CACHE/addons"
export GOCACHE="$CACHE/go-build" CGO_ENABLED=0
TIMES="$BIN/build-times.txt"
done_with() { stamp_of "$1" >"$2/.stamp-$1"; }

for a in "${TODO[@]}"; do
    case "$a" in
        coredns)
            src="$CACHE/src/coredns"
            mkdir -p "$src"
            cp "$ROOT/scripts/go/coredns-main.go" "$src/main.go"
            printf 'module melancia.local/coredns\n\ngo 1.26\n\nrequire github.com/coredns/coredns %s\n' "$COREDNS_VERSION" >"$src/go.mod"
            log "go build CoreDNS $COREDNS_VERSION"
            timed "$TIMES" coredns bash -c "cd '$src' && go mod tidy && go build -trimpath -ldflags='-s -w' -o '$BIN/coredns.tmp' ."
            mv -f "$BIN/coredns.tmp" "$BIN/coredns"
            done_with coredns "$BIN"
            ;;
        kserve-manager)
            # KServe's go.mod pins its dependencies with replace directives, which only the main module
            # may use: build inside a writable copy of the module.
            src="$CACHE/src/kserve"
            rm -rf "$src" && mkdir -p "$(dirname "$src")"
            cp -r "$(go_module_dir "github.com/kserve/kserve@$KSERVE_VERSION")" "$src" && chmod -R u+w "$src"
            log "go build KServe $KSERVE_VERSION cmd/manager"
            timed "$TIMES" kserve-manager bash -c "cd '$src' && go build -trimpath -ldflags='-s -w' -o '$BIN/kserve-manager.tmp' ./cmd/manager"
            mv -f "$BIN/kserve-manager.tmp" "$BIN/kserve-manager"
            rm -rf "$src"
            done_with kserve-manager "$BIN"
            ;;
        local-path-provisioner)
            log "go install github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
            timed "$TIMES" local-path-provisioner env GOBIN="$BIN" go install -trimpath -ldflags='-s -w' \
                "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
            done_with local-path-provisioner "$BIN"
            ;;
        pause)
            command -v gcc >/dev/null 2>&1 || die "gcc is needed for the pause binary (Debian: apt-get install gcc libc6-dev)"
            k8s="$(go_module_dir "k8s.io/kubernetes@$K8S_VERSION")"
            tag="$(sed -n 's/^TAG ?= //p' "$k8s/build/pause/Makefile")"
            gcc -Os -Wall -Werror -static -DVERSION="v$tag-melancia" -o "$BIN/pause.tmp" "$k8s/build/pause/linux/pause.c"
            mv -f "$BIN/pause.tmp" "$BIN/pause"
            echo "$tag" >"$BIN/pause.tag"
            done_with pause "$BIN"
            ;;
        kserve)
            kserve="$(go_module_dir "github.com/kserve/kserve@$KSERVE_VERSION")"
            rm -rf "$CACHE/kserve" && mkdir -p "$CACHE/kserve"
            cp -r "$kserve/config" "$CACHE/kserve/" && chmod -R u+w "$CACHE/kserve"
            done_with kserve "$CACHE"
            ;;
        coredns.yaml.base)
            k8s="$(go_module_dir "k8s.io/kubernetes@$K8S_VERSION")"
            cp "$k8s/cluster/addons/dns/coredns/coredns.yaml.base" "$CACHE/addons/" && chmod u+w "$CACHE/addons/coredns.yaml.base"
            done_with coredns.yaml.base "$CACHE/addons"
            ;;
        local-path-storage.yaml)
            dir="$(go_module_dir "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION")"
            cp "$dir/deploy/local-path-storage.yaml" "$CACHE/addons/" && chmod u+w "$CACHE/addons/local-path-storage.yaml"
            done_with local-path-storage.yaml "$CACHE/addons"
            ;;
    esac
done
log "done: $(ls "$BIN" | tr '\n' ' ')"
if [ "${MELANCIA_CLUSTER_KEEP_GO_CACHE:-0}" != 1 ]; then
    go clean -cache
    log "removed the Go build cache $GOCACHE"
fi
