#!/usr/bin/env bash
# Installs the real components that runway's tests and demo run against, caching slow builds
# outside the repository (RUNWAY_TOOL_CACHE, default ~/.cache/runway) so fresh clones reuse them.
# Idempotent: each tool is checked first and built only when missing.
#
#   scripts/tools.sh [temporal] [python] [mlflow] [prometheus] [k8s] [kustomize] [image] [chromium] [nginx] [wrk] ...
#   (no argument: all but nginx and wrk, which only the benchmarks need)
set -euo pipefail
CACHE="${RUNWAY_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runway}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
say() { printf '[tools] %s\n' "$*" >&2; }

tool_temporal() {
  if [ -x "$BIN/temporal" ]; then return; fi
  if command -v temporal >/dev/null 2>&1; then ln -sf "$(command -v temporal)" "$BIN/temporal"; return; fi
  command -v go >/dev/null || { say "Go is required to build the Temporal CLI (or put \`temporal\` on PATH, or set TEMPORAL_ADDRESS)"; exit 1; }
  # One build at a time per cache: a second caller waits, then finds the binary.
  exec 9>"$CACHE/.temporal.lock"
  flock 9
  if [ -x "$BIN/temporal" ]; then exec 9>&-; return; fi
  say "building the Temporal CLI v1.5.1 with go install (first time only, about 3 minutes on 2 cores)"
  local started=$SECONDS
  # Later tags carry a replace directive in go.mod, which `go install pkg@version` refuses.
  # Built into a scratch GOBIN and moved, so an interrupted build never leaves a broken binary.
  local tmp
  tmp="$(mktemp -d "$CACHE/.temporal-build.XXXXXX")"
  GOBIN="$tmp" go install github.com/temporalio/cli/cmd/temporal@v1.5.1
  mv "$tmp/temporal" "$BIN/temporal"
  rmdir "$tmp"
  exec 9>&-
  say "Temporal CLI built in $((SECONDS - started)) s: $BIN/temporal"
}

tool_python() {
  local venv="$CACHE/py"
  local check='import tritonclient.http, tritonclient.grpc, numpy'
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then return; fi
  # One install at a time per cache: a second caller waits, then finds the packages.
  exec 8>"$CACHE/.python.lock"
  flock 8
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then exec 8>&-; return; fi
  # An older venv with only tritonclient[http] gains the gRPC client in place.
  [ -x "$venv/bin/python" ] || { say "creating a Python venv in $venv"; python3 -m venv "$venv"; }
  say "installing tritonclient[http,grpc] and numpy (OIP compatibility tests and benchmarks)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'tritonclient[http,grpc]' numpy
  "$venv/bin/python" -c "$check"
  exec 8>&-
}

tool_mlflow() {
  # MLflow's tracking server (with its basic-auth app) for the mlflow registry tests, in the same
  # venv as tritonclient. Installed after python, under a lock: pip into one venv from two callers breaks it.
  local venv="$CACHE/py"
  if [ -x "$venv/bin/mlflow" ] && "$venv/bin/python" -c 'import mlflow.server.auth' 2>/dev/null; then return; fi
  tool_python
  exec 8>"$CACHE/.mlflow.lock"
  flock 8
  if [ -x "$venv/bin/mlflow" ] && "$venv/bin/python" -c 'import mlflow.server.auth' 2>/dev/null; then exec 8>&-; return; fi
  say "installing mlflow[auth] into $venv (MLflow registry tests; first time only, a few minutes)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'mlflow[auth]>=2.16,<4'
  exec 8>&-
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then say "need root to apt-get install $*"; exit 1; fi
  if [ ! -f "$CACHE/.apt-updated" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && touch "$CACHE/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

tool_prometheus() {
  if command -v prometheus >/dev/null 2>&1; then return; fi
  say "installing Debian's prometheus package"
  apt_install prometheus
  # The package starts a system service we do not want; tests run their own on loopback.
  (systemctl stop prometheus 2>/dev/null || service prometheus stop 2>/dev/null || pkill -x prometheus || true) >/dev/null 2>&1
}

tool_nginx() {
  # The reference proxy of `npm run bench:router` (not needed by the tests).
  if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then return; fi
  say "installing Debian's nginx-light package (bench:router's reference proxy)"
  # Keep the package from starting a system nginx on port 80: the bench runs its own on loopback.
  local policy=/usr/sbin/policy-rc.d made=0
  if [ "$(id -u)" = 0 ] && [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made=1; fi
  apt_install nginx-light || { [ "$made" = 1 ] && rm -f "$policy"; exit 1; }
  [ "$made" = 1 ] && rm -f "$policy"
  return 0
}

tool_wrk() {
  # The load generator of `npm run bench:router`: a C client with a few µs of CPU per request, so
  # on 2 cores the generator takes as little as it can from the proxies being measured.
  if command -v wrk >/dev/null 2>&1; then return; fi
  exec 6>"$CACHE/.wrk.lock"
  flock 6
  if command -v wrk >/dev/null 2>&1; then exec 6>&-; return; fi
  say "installing Debian's wrk package (bench:router's load generator)"
  apt_install wrk
  exec 6>&-
}

tool_k8s() {
  # kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok and the Gateway API CRDs,
  # built from Go modules (about 30 min on 2 cores the first time; cached after). See scripts/k8s-env.sh.
  local here root
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  root="$(dirname "$(bash "$here/k8s-env.sh" --print)")"
  if bash "$here/k8s-env.sh"; then rm -f "$root/build-failed.txt"; return; fi
  # CI must test Kubernetes; elsewhere the k8s tests skip loudly with this reason.
  if [ "${CI:-}" = true ]; then say "building the Kubernetes test binaries failed"; exit 1; fi
  mkdir -p "$root" && echo "scripts/k8s-env.sh failed at $(date -u +%FT%TZ); run it to see why" >"$root/build-failed.txt"
  say "WARNING: Kubernetes test binaries unavailable; k8s tests will skip"
}

KUSTOMIZE_VERSION=v5.7.1
tool_kustomize() {
  # Renders deploy/ exactly as `kubectl apply -k` does (kubectl embeds kustomize), for the install
  # test (test/integration/k8s-install.test.ts). About 2 minutes to build the first time.
  local bin="$BIN/kustomize-$KUSTOMIZE_VERSION"
  if [ -x "$bin" ]; then return; fi
  command -v go >/dev/null || { say "Go is required to build kustomize"; exit 1; }
  exec 9>"$CACHE/.kustomize.lock"
  flock 9
  if [ -x "$bin" ]; then exec 9>&-; return; fi
  say "building kustomize $KUSTOMIZE_VERSION with go install (first time only)"
  local tmp
  tmp="$(mktemp -d "$CACHE/.kustomize-build.XXXXXX")"
  GOBIN="$tmp" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mv "$tmp/kustomize" "$bin"
  rmdir "$tmp"
  exec 9>&-
}

tool_image() {
  # The image build (scripts/image.sh) and its check (test/integration/image.test.ts): buildah
  # assembles it, umoci unpacks it for the chroot test, skopeo pushes it (docs/kubernetes.md).
  local missing=()
  for t in buildah umoci skopeo; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing Debian's ${missing[*]}"
  apt_install "${missing[@]}"
}

tool_chromium() {
  # Debian's headless-capable Chromium: the HTML audit report's browser test
  # (test/integration/audit-html.test.ts) drives it with playwright-core, which downloads nothing.
  if [ -x /usr/bin/chromium ]; then return; fi
  # One install at a time per cache: dpkg takes one caller, a second would fail on its lock.
  exec 7>"$CACHE/.chromium.lock"
  flock 7
  if [ -x /usr/bin/chromium ]; then exec 7>&-; return; fi
  say "installing Debian's chromium package (the audit report's browser test; first time only)"
  apt_install chromium
  exec 7>&-
}

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(temporal python mlflow prometheus k8s kustomize image chromium)
for t in "${want[@]}"; do "tool_$t"; done
say "tools ready in $CACHE"
