#!/usr/bin/env bash
# Builds and caches the real Kubernetes pieces runway's kubernetes tests run against, outside the
# repository: kube-apiserver, kube-controller-manager (Deployments → ReplicaSets → Pods) and
# kube-scheduler (binds pods, and says "Insufficient nvidia.com/gpu" when no node fits) from module
# k8s.io/kubernetes; etcd from go.etcd.io/etcd/server/v3; kwok (fake nodes whose pods turn Ready).
# All through the Go module proxy; no container runtime, no downloads of prebuilt binaries.
#
#   bash scripts/k8s-env.sh            build what is missing (idempotent; a no-op when cached)
#   bash scripts/k8s-env.sh --print    print the bin directory
#
# Cache: ${RUNWAY_TOOL_CACHE:-~/.cache/runway}/k8s/<versions>/bin, plus Gateway API and Istio CRDs in crds/.
# A version bump below lands in a new directory, so a stale binary is never reused.
# Honours GOFLAGS (e.g. GOFLAGS=-p=1 on a shared machine).
set -euo pipefail

K8S_VERSION=v1.34.4
STAGING_VERSION=v0.34.4 # k8s.io/<staging> modules publish v0.<minor>.<patch> for v1.<minor>.<patch>
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.7.0
GATEWAY_API_VERSION=v1.4.1
ISTIO_API_VERSION=v1.28.0 # istio.io/api: Istio's CRDs (VirtualService, DestinationRule, ...)

CACHE="${RUNWAY_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runway}"
ROOT="$CACHE/k8s/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-gw-$GATEWAY_API_VERSION"
BIN="$ROOT/bin"
say() { printf '[k8s-env] %s\n' "$*" >&2; }

if [ "${1:-}" = "--print" ]; then
  echo "$BIN"
  exit 0
fi

ready() {
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok; do [ -x "$BIN/$b" ] || return 1; done
  [ -f "$ROOT/crds/standard-install.yaml" ] && [ -f "$ROOT/crds/istio-$ISTIO_API_VERSION.yaml" ]
}
if ready; then exit 0; fi

command -v go >/dev/null || { say "Go is required to build kube-apiserver, etcd and kwok (https://go.dev/dl)"; exit 1; }
mkdir -p "$ROOT"
# One build at a time per cache: a concurrent caller waits, then finds the binaries.
exec 9>"$ROOT/.lock"
flock 9
if ready; then exit 0; fi

export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
started=$SECONDS
work="$(mktemp -d "$ROOT/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"

# A wrapper module per tool: `go install pkg@version` refuses modules whose go.mod has replace
# directives (kubernetes and etcd both do), so we require the module and build its commands here.
wrapper() { # dir module version [replace lines...]
  local dir="$1" mod="$2" ver="$3"
  shift 3
  mkdir -p "$dir"
  {
    echo "module runway.local/$(basename "$dir")"
    echo
    echo "go 1.24.0"
    echo
    echo "require $mod $ver"
    for r in "$@"; do echo "replace $r"; done
  } >"$dir/go.mod"
}

build_kubernetes() {
  say "building kube-apiserver, kube-controller-manager, kube-scheduler $K8S_VERSION (first time only)"
  local t=$SECONDS gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  # k8s.io/kubernetes points every staging module at ./staging/src/...; outside its repository we
  # use the published copies of the same release instead.
  local replaces=()
  while read -r m; do replaces+=("$m => $m $STAGING_VERSION"); done < <(
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod"
  )
  [ ${#replaces[@]} -gt 20 ] || { say "found only ${#replaces[@]} staging modules in $gomod"; exit 1; }
  wrapper "$work/kubernetes" k8s.io/kubernetes "$K8S_VERSION" "${replaces[@]}"
  local cmds=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler)
  (cd "$work/kubernetes" && go get "${cmds[@]/%/@$K8S_VERSION}")
  (cd "$work/kubernetes" && go build -trimpath -ldflags=-s -o "$work/bin/" "${cmds[@]}")
  say "kubernetes binaries built in $((SECONDS - t)) s"
}

build_etcd() {
  say "building etcd $ETCD_VERSION"
  local t=$SECONDS
  wrapper "$work/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  (cd "$work/etcd" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go build -trimpath -ldflags=-s -o "$work/bin/etcd" go.etcd.io/etcd/server/v3)
  say "etcd built in $((SECONDS - t)) s"
}

build_kwok() {
  say "building kwok $KWOK_VERSION"
  local t=$SECONDS
  wrapper "$work/kwok" sigs.k8s.io/kwok "$KWOK_VERSION"
  (cd "$work/kwok" && go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" && go build -trimpath -ldflags=-s -o "$work/bin/kwok" sigs.k8s.io/kwok/cmd/kwok)
  say "kwok built in $((SECONDS - t)) s"
}

fetch_gateway_crds() {
  # The CRDs ship inside the Go module (config/crd), so the module proxy is the only source needed.
  local dir
  dir="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
  mkdir -p "$work/crds"
  # standard channel: GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant, BackendTLSPolicy...
  local f out="$work/crds/standard-install.yaml"
  : >"$out"
  for f in "$dir"/config/crd/standard/*.yaml; do
    { echo "---"; cat "$f"; } >>"$out"
  done
  [ -s "$out" ] || { say "no CRDs under $dir/config/crd/standard"; exit 1; }
}

fetch_istio_crds() {
  # Istio's CRDs, generated into the istio.io/api module (kubernetes/customresourcedefinitions.gen.yaml).
  local dir
  dir="$(go mod download -json "istio.io/api@$ISTIO_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
  mkdir -p "$work/crds"
  cp "$dir/kubernetes/customresourcedefinitions.gen.yaml" "$work/crds/istio-$ISTIO_API_VERSION.yaml"
}

for b in kube-apiserver kube-controller-manager kube-scheduler; do
  [ -x "$BIN/$b" ] || { build_kubernetes; break; }
done
[ -x "$BIN/etcd" ] || build_etcd
[ -x "$BIN/kwok" ] || build_kwok
[ -f "$ROOT/crds/standard-install.yaml" ] || fetch_gateway_crds
[ -f "$ROOT/crds/istio-$ISTIO_API_VERSION.yaml" ] || fetch_istio_crds

# Move into place only when everything built, so an interrupted build never leaves half a set.
mkdir -p "$BIN" "$ROOT/crds"
for f in "$work"/bin/*; do [ -e "$f" ] && mv -f "$f" "$BIN/"; done
[ -f "$work/crds/standard-install.yaml" ] && mv -f "$work/crds/standard-install.yaml" "$ROOT/crds/"
[ -f "$work/crds/istio-$ISTIO_API_VERSION.yaml" ] && mv -f "$work/crds/istio-$ISTIO_API_VERSION.yaml" "$ROOT/crds/"
say "kubernetes test environment ready in $((SECONDS - started)) s: $BIN"
