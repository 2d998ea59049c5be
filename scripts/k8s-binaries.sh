#!/usr/bin/env bash
# Builds the test control plane from source, once, into a cache folder outside git:
#   etcd, kube-apiserver (required), kube-scheduler, kube-controller-manager, kwok (fake nodes).
#
# Kubernetes comes from the Go module proxy. The published k8s.io/kubernetes go.mod requires its
# staging modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces them with local paths,
# so a small wrapper module requires k8s.io/kubernetes vX.Y.Z and replaces every k8s.io/<staging>
# module with the matching published v0.Y.Z. etcd is built in the same wrapper module at the version
# Kubernetes itself requires (go.etcd.io/etcd/server/v3, 3.7 for Kubernetes 1.37). Debian bookworm's
# etcd-server is 3.4.23: kube-apiserver 1.37 runs on it, but without RequestWatchProgress (etcd 3.5+)
# the watch caches are slow to catch up and a Job takes ~15 s instead of ~1 s to complete under the
# test scheduler/controller-manager/kwok. kwok is a plain `go install` (its go.mod has no replace).
#
# Idempotent: a stamp per binary records the versions; a re-run with everything in place does no Go
# work at all. Environment:
#   MELANCIA_K8S_BIN         output folder (default ~/.cache/melancia/k8s/bin: shared by every clone
#                            on the machine, so a fresh checkout does not rebuild)
#   MELANCIA_K8S_SRC         wrapper module folder (default ~/.cache/melancia/k8s/src)
#   MELANCIA_K8S_VERSION     Kubernetes release (default v1.37.2)
#   MELANCIA_KWOK_VERSION    kwok release (default v0.8.0)
#   MELANCIA_K8S_COMPONENTS  which binaries (default: all five; etcd and kube-apiserver are the minimum)
#   MELANCIA_K8S_ETCD        source (default) or debian: Debian's etcd-server, /usr/bin/etcd when the
#                            package is installed, else the .deb unpacked into the cache (no service)
#   MELANCIA_K8S_KEEP_GO_CACHE  1 keeps the Go build cache of these builds (4 GB; faster version bumps);
#                            by default it lives in the cache folder and is removed after a good build
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${MELANCIA_K8S_VERSION:-v1.37.2}"
KWOK_VERSION="${MELANCIA_KWOK_VERSION:-v0.8.0}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/melancia/k8s"
BIN="${MELANCIA_K8S_BIN:-$CACHE/bin}"
SRC="${MELANCIA_K8S_SRC:-$CACHE/src}"
COMPONENTS="${MELANCIA_K8S_COMPONENTS:-etcd kube-apiserver kube-scheduler kube-controller-manager kwok}"
ETCD_FROM="${MELANCIA_K8S_ETCD:-source}"
case "$ETCD_FROM" in source | debian) ;; *) echo "k8s-binaries: error: MELANCIA_K8S_ETCD must be source or debian" >&2; exit 1 ;; esac
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
case "$SRC" in /*) ;; *) SRC="$ROOT/$SRC" ;; esac

log() { echo "k8s-binaries: $*"; }
die() { echo "k8s-binaries: error: $*" >&2; exit 1; }

stamp_of() {
    case "$1" in
        etcd) echo "etcd from=$ETCD_FROM k8s=$K8S_VERSION" ;;
        kwok) echo "kwok=$KWOK_VERSION stages=melancia-eval-manual" ;;
        *) echo "k8s=$K8S_VERSION version-ldflags" ;;
    esac
}
up_to_date() {
    [ "$1" != kwok ] || [ -f "$BIN/kwok-stages.yaml" ] || return 1
    [ -x "$BIN/$1" ] && [ -f "$BIN/.stamp-$1" ] && [ "$(cat "$BIN/.stamp-$1")" = "$(stamp_of "$1")" ]
}

# Upstream CRDs the tests install (their Go modules carry them): KServe's InferenceService, for the
# operator's roll-out and the predictor chart, Prometheus Operator's monitors, for the charts, and
# skaffold's config schemas.
KSERVE_VERSION="${MELANCIA_KSERVE_CRD_VERSION:-v0.15.2}"
PROMETHEUS_OPERATOR_VERSION="${MELANCIA_PROMETHEUS_OPERATOR_VERSION:-v0.80.1}"
SKAFFOLD_VERSION="${MELANCIA_SKAFFOLD_VERSION:-v2.16.1}"
CRDS="$(dirname "$BIN")/crds"
fetch_kserve_crd() {
    [ -f "$CRDS/.stamp-$KSERVE_VERSION-$PROMETHEUS_OPERATOR_VERSION-$SKAFFOLD_VERSION" ] && return 0
    log "go mod download github.com/kserve/kserve@$KSERVE_VERSION (InferenceService CRD)"
    kserve_dir="$(cd "$BIN" && go mod download -json "github.com/kserve/kserve@$KSERVE_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    crd="$kserve_dir/config/crd/full/serving.kserve.io_inferenceservices.yaml"
    [ -f "$crd" ] || die "$crd not found in the kserve module"
    mkdir -p "$CRDS"
    cp "$crd" "$CRDS/serving.kserve.io_inferenceservices.yaml"
    # Prometheus Operator's ServiceMonitor and PodMonitor, which the charts create when monitoring is on
    log "go mod download github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION (monitor CRDs)"
    prom_dir="$(cd "$BIN" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    for kind in servicemonitors podmonitors; do
        cp "$prom_dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$CRDS/"
    done
    # skaffold's published config schemas (docs-v2/content/en/schemas), to check skaffold.yaml
    log "go mod download github.com/GoogleContainerTools/skaffold/v2@$SKAFFOLD_VERSION (config schemas)"
    skaffold_dir="$(cd "$BIN" && go mod download -json "github.com/GoogleContainerTools/skaffold/v2@$SKAFFOLD_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    mkdir -p "$(dirname "$BIN")/schemas"
    cp "$skaffold_dir"/docs-v2/content/en/schemas/v4beta*.json "$(dirname "$BIN")/schemas/"
    chmod u+w "$CRDS"/*.yaml "$(dirname "$BIN")"/schemas/*.json
    touch "$CRDS/.stamp-$KSERVE_VERSION-$PROMETHEUS_OPERATOR_VERSION-$SKAFFOLD_VERSION"
}

mkdir -p "$BIN"
# A private Go build cache, removed after a successful build: the stamped binaries are what is reused,
# and the 4 GB of compiled Kubernetes packages would otherwise stay in the user's cache for good.
export GOCACHE="$CACHE/go-build"
fetch_kserve_crd
todo=()
for c in $COMPONENTS; do
    case "$c" in
        etcd | kube-apiserver | kube-scheduler | kube-controller-manager | kwok) ;;
        *) die "unknown component '$c' (known: etcd kube-apiserver kube-scheduler kube-controller-manager kwok)" ;;
    esac
    up_to_date "$c" || todo+=("$c")
done
if [ ${#todo[@]} -eq 0 ]; then
    log "up to date in $BIN ($COMPONENTS; Kubernetes $K8S_VERSION, kwok $KWOK_VERSION)"
    exit 0
fi

# One build at a time (parallel test sessions may call this together); the loser of the race finds
# the binaries in place once the lock is released.
exec 9>"$BIN/.lock"
if ! flock -n 9; then
    log "another build holds $BIN/.lock; waiting for it"
    flock 9
fi
todo=()
for c in $COMPONENTS; do up_to_date "$c" || todo+=("$c"); done
[ ${#todo[@]} -eq 0 ] && { log "up to date in $BIN"; exit 0; }
log "to build: ${todo[*]} (Kubernetes $K8S_VERSION, kwok $KWOK_VERSION) into $BIN"

command -v go >/dev/null 2>&1 || die "Go is not installed (https://go.dev/dl/; Debian: apt-get install golang)"
GO_VERSION="$(go env GOVERSION)"   # e.g. go1.26.8
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
TIMES="$BIN/build-times.txt"

timed() {   # timed NAME COMMAND...: runs the command, records the wall time
    local name="$1" t0 t1
    shift
    t0=$(date +%s)
    "$@" || die "building $name failed (command: $*)"
    t1=$(date +%s)
    log "built $name in $((t1 - t0)) s"
    echo "$name $((t1 - t0))s $(date -u +%FT%TZ) $GO_VERSION $(nproc) cores" >>"$TIMES"
}

needs_wrapper=0
for c in "${todo[@]}"; do
    case "$c" in kube-*) needs_wrapper=1 ;; etcd) [ "$ETCD_FROM" = source ] && needs_wrapper=1 ;; esac
done

if [ $needs_wrapper -eq 1 ]; then
    log "go mod download k8s.io/kubernetes@$K8S_VERSION (go.mod only)"
    download="$(cd "$BIN" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" 2>&1)" \
        || die "cannot download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy ($(go env GOPROXY)): $(echo "$download" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
    K8S_GOMOD="$(echo "$download" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [ -f "$K8S_GOMOD" ] || die "no go.mod for k8s.io/kubernetes@$K8S_VERSION"
    need_go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$K8S_GOMOD")"
    if ! version_ge "${GO_VERSION#go}" "$need_go"; then
        [ "$(go env GOTOOLCHAIN)" = local ] \
            && die "k8s.io/kubernetes $K8S_VERSION needs Go >= $need_go, installed is $GO_VERSION (GOTOOLCHAIN=local): set MELANCIA_K8S_VERSION to an older release or upgrade Go"
        log "k8s.io/kubernetes $K8S_VERSION needs Go >= $need_go, installed is $GO_VERSION: go will fetch that toolchain (GOTOOLCHAIN=$(go env GOTOOLCHAIN))"
    fi
    # Staging modules: the `k8s.io/X => ./staging/src/k8s.io/X` lines of the replace block.
    staging="$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\1#p' "$K8S_GOMOD")"
    [ -n "$staging" ] || die "no staging modules found in $K8S_GOMOD"
    staging_version="v0.${K8S_VERSION#v1.}"

    mkdir -p "$SRC/cmd/etcd"
    {
        echo "// Generated by scripts/k8s-binaries.sh: builds Kubernetes $K8S_VERSION components and etcd."
        echo "module melancia.local/k8s-binaries"
        echo
        echo "go $need_go"
        echo
        echo "require k8s.io/kubernetes $K8S_VERSION"
        echo
        echo "replace ("
        for m in $staging; do echo "	$m => $m $staging_version"; done
        echo ")"
    } >"$SRC/go.mod.new"
    cat >"$SRC/tools.go" <<'EOF'
//go:build tools

// The commands this module builds; the build tag keeps this file out of every build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
EOF
    cat >"$SRC/cmd/etcd/main.go" <<'EOF'
// etcd at the version Kubernetes requires (go.etcd.io/etcd/server/v3), same entry point as the
// upstream etcd binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
    # go.mod.in keeps what was generated (go mod tidy rewrites go.mod): tidy again only when it changes.
    if ! cmp -s "$SRC/go.mod.new" "$SRC/go.mod.in" || [ ! -f "$SRC/go.sum" ]; then
        cp "$SRC/go.mod.new" "$SRC/go.mod"
        mv "$SRC/go.mod.new" "$SRC/go.mod.in"
        rm -f "$SRC/go.sum"
        log "wrapper module in $SRC: k8s.io/kubernetes $K8S_VERSION, $(echo "$staging" | wc -w) staging modules at $staging_version; go mod tidy (downloads the sources)"
        timed "go-mod-tidy" bash -c "cd '$SRC' && go mod tidy"
    else
        rm -f "$SRC/go.mod.new"
    fi
fi

# The version the binaries report (/version, --version), set the way Kubernetes' own build does
# (hack/lib/version.sh); without it they say v0.0.0-master.
major_minor="${K8S_VERSION#v}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=${major_minor%%.*}"
    minor="${major_minor#*.}"
    k8s_ldflags+=" -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

for c in "${todo[@]}"; do
    case "$c" in
        kube-*)
            log "go build $c (a cold build cache compiles most of Kubernetes first: minutes)"
            timed "$c" bash -c "cd '$SRC' && go build -trimpath -ldflags='$k8s_ldflags' -o '$BIN/$c.tmp' 'k8s.io/kubernetes/cmd/$c'"
            mv -f "$BIN/$c.tmp" "$BIN/$c"
            ;;
        etcd)
            if [ "$ETCD_FROM" = debian ]; then
                # /usr/bin/etcd when etcd-server is installed; otherwise the package is downloaded and
                # unpacked into the cache (installing it would also start a system etcd service).
                etcd_bin=/usr/bin/etcd
                if [ ! -x "$etcd_bin" ]; then
                    deb_dir="$(dirname "$BIN")/etcd-debian"
                    etcd_bin="$deb_dir/root/usr/bin/etcd"
                    if [ ! -x "$etcd_bin" ]; then
                        command -v apt-get >/dev/null 2>&1 || die "MELANCIA_K8S_ETCD=debian needs apt-get (or use MELANCIA_K8S_ETCD=source)"
                        log "apt-get download etcd-server; dpkg-deb -x into $deb_dir"
                        rm -rf "$deb_dir" && mkdir -p "$deb_dir"
                        (cd "$deb_dir" && apt-get download etcd-server >/dev/null 2>&1) || {
                            [ "$(id -u)" -eq 0 ] && apt-get update -q >/dev/null 2>&1
                            (cd "$deb_dir" && apt-get download etcd-server >/dev/null)
                        } || die "apt-get download etcd-server failed"
                        dpkg-deb -x "$deb_dir"/etcd-server_*.deb "$deb_dir/root" || die "dpkg-deb -x failed"
                    fi
                fi
                rm -f "$BIN/etcd"
                ln -s "$etcd_bin" "$BIN/etcd"
                log "etcd: $BIN/etcd -> $etcd_bin ($("$etcd_bin" --version | head -n1))"
            else
                etcd_version="$(cd "$SRC" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
                log "go build etcd (go.etcd.io/etcd/server/v3 $etcd_version)"
                timed "etcd" bash -c "cd '$SRC' && go build -trimpath -ldflags='-s -w' -o '$BIN/etcd.tmp' ./cmd/etcd"
                rm -f "$BIN/etcd"
                mv -f "$BIN/etcd.tmp" "$BIN/etcd"
            fi
            ;;
        kwok)
            log "go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
            timed "kwok" env GOBIN="$BIN" go install -trimpath -ldflags="-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
            # The standalone kwok binary has no built-in stages (kwokctl writes them into its config):
            # collect kwok's own "fast" node and pod stages into one config file beside the binary.
            kwok_dir="$(cd "$BIN" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" \
                | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
            stages="$kwok_dir/kustomize/stage"
            {
                echo "# kwok $KWOK_VERSION stages (kustomize/stage/{node/fast,node/heartbeat,pod/fast}); written by scripts/k8s-binaries.sh"
                for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
                    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
                    [ -f "$stages/$f" ] || die "kwok stage $stages/$f not found"
                    echo "---"
                    if [ "$f" = pod/fast/pod-complete.yaml ]; then
                        # Pods of evaluation Jobs (label melancia.io/role=eval) keep running: the tests play
                        # their kubelet and write the gate's verdict as the termination message.
                        awk '{ print }
                             /^      - .Job.$/ && !added {
                                 print "    - key: '\''.metadata.labels[\"melancia.io/role\"]'\''"
                                 print "      operator: '\''NotIn'\''"
                                 print "      values:"
                                 print "      - '\''eval'\''"
                                 added = 1
                             }' "$stages/$f"
                    else
                        cat "$stages/$f"
                    fi
                done
            } >"$BIN/kwok-stages.yaml"
            log "kwok stages: $BIN/kwok-stages.yaml"
            ;;
    esac
    stamp_of "$c" >"$BIN/.stamp-$c"
done

log "done: $(cd "$BIN" && ls -1 $COMPONENTS | tr '\n' ' ')"
log "disk: bin $(du -sh "$BIN" | cut -f1), Go module cache $(du -sh "$(go env GOMODCACHE)" 2>/dev/null | cut -f1), Go build cache $(du -sh "$GOCACHE" 2>/dev/null | cut -f1)"
if [ "${MELANCIA_K8S_KEEP_GO_CACHE:-0}" != 1 ]; then
    go clean -cache
    log "removed the Go build cache $GOCACHE (MELANCIA_K8S_KEEP_GO_CACHE=1 keeps it)"
fi
