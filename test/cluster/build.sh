#!/usr/bin/env bash
# Builds the local cluster's binaries from Go modules: the control plane (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl) and the node (kubelet,
# kube-proxy) from the pinned wrapper module in k8s/, helm from helm/, and the rest of the node
# stack listed in node/versions.txt (runc with seccomp, containerd, the CNI plugins, crictl,
# CoreDNS, and the pause image from Kubernetes' pause.c), and promtool from prometheus/ (it
# checks the chart's alerts). With --prometheus, also the Prometheus server (for the dashboard
# test, npm run test:dashboard: minutes more of cold build, so CI does not build it). It also
# fetches the CustomResourceDefinitions listed in crds.txt.
# Everything is cached outside the repository and made only when missing:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha/k8s/<k8s version>/
#   ${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha/prometheus/<module version>/
#   ${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha/node/<name>@<version>/
#   ${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha/crds/<module>@<version>/
# Prints the directory that holds the Kubernetes binaries on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

with_prometheus=false
case ${1:-} in
  --prometheus) with_prometheus=true ;;
  '') ;;
  *)
    echo "usage: $0 [--prometheus]" >&2
    exit 2
    ;;
esac

# Read from go.mod rather than `go list`, so that a machine with cached binaries needs no Go.
module_version() { # module_version DIR MODULE
  local v
  v=$(awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod")
  if [ -z "$v" ]; then
    echo "error: $1/go.mod does not require $2" >&2
    exit 1
  fi
  echo "$v"
}

k8s_version=$(module_version "$here/k8s" k8s.io/kubernetes)
helm_version=$(module_version "$here/helm" helm.sh/helm/v3)
prometheus_version=$(module_version "$here/prometheus" github.com/prometheus/prometheus)
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha
bin=$cache_root/k8s/$k8s_version
prometheus_bin=$cache_root/prometheus/$prometheus_version
mkdir -p "$bin" "$prometheus_bin"

log() { echo "[build] $*" >&2; }

# Two builds at once (two test runs, or a developer's cluster:up during CI) would compile the
# same packages twice on a small machine: the second waits, then finds everything cached.
exec 9>"$cache_root/.build.lock"
if ! flock -n 9; then
  log "another build.sh is running: waiting for it ..."
  flock 9
fi

# The version ldflags make `kubectl version`, the apiserver's /version and Helm's
# kubeVersion checks report the real release instead of v0.0.0.
k8s_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$k8s_version \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$k8s_minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$k8s_minor \
 -X k8s.io/client-go/pkg/version.gitTreeState=clean"
helm_ldflags="-s -w \
 -X helm.sh/helm/v3/internal/version.version=$helm_version \
 -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
# Prometheus's module v0.MNN.P is its release M.NN.P (v0.316.0: 3.16.0).
prometheus_release=${prometheus_version#v0.}
prometheus_release=${prometheus_release:0:1}.${prometheus_release:1}
prometheus_ldflags="-s -w \
 -X github.com/prometheus/common/version.Version=$prometheus_release \
 -X github.com/prometheus/common/version.Branch=release"

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "error: the Go toolchain is missing, and $bin lacks binaries that must be built from source." >&2
    echo "Install Go >= 1.25 (https://go.dev/doc/install) and retry." >&2
    exit 1
  fi
}

ticker=
trap '[ -z "$ticker" ] || kill "$ticker" 2>/dev/null' EXIT

# go build is silent for minutes: say that it is still at work.
start_ticker() { # start_ticker NAME
  local name=$1
  (
    begin=$(date +%s)
    # Sleep in the background and wait, so that the TERM from kill ends the sleep too.
    trap 'kill $! 2>/dev/null; exit 0' TERM
    while sleep 30 & wait $!; do log "$name: still building ($(($(date +%s) - begin))s)"; done
  ) &
  ticker=$!
}
stop_ticker() {
  kill "$ticker" 2>/dev/null
  ticker=
}

build() { # build MODULE_DIR NAME PACKAGE LDFLAGS [OUT_DIR [TAGS]]
  local dir=$1 name=$2 pkg=$3 ldflags=$4 bin=${5:-$bin} tags=${6:-}
  if [ -x "$bin/$name" ]; then
    log "$name: cached"
    return
  fi
  require_go
  log "$name: building $pkg (a cold build takes minutes; module downloads come first) ..."
  local start=$SECONDS
  start_ticker "$name"
  # Build to a temporary name and rename, so an interrupted build never leaves a
  # half-written binary that a later run would take for a cached one.
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$bin/.$name.tmp" "$pkg")
  stop_ticker
  mv "$bin/.$name.tmp" "$bin/$name"
  log "$name: built in $((SECONDS - start))s"
}

# The node stack's pinned versions, from node/versions.txt.
node_version() { # node_version NAME
  local v
  v=$(awk -v n="$1" '$1 == n { print $3; exit }' "$here/node/versions.txt")
  if [ -z "$v" ]; then
    echo "error: $here/node/versions.txt has no $1" >&2
    exit 1
  fi
  echo "$v"
}
node_module() { awk -v n="$1" '$1 == n { print $2; exit }' "$here/node/versions.txt"; }

# go install of released modules at their own go.mod (no wrapper: they are no staging
# modules), into node/<name>@<version>/. The directory appears only once every binary is in.
install_node() { # install_node NAME CGO TAGS LDFLAGS PACKAGE...
  local name=$1 cgo=$2 tags=$3 ldflags=$4
  shift 4
  local version dir
  version=$(node_version "$name")
  dir=$cache_root/node/$name@$version
  if [ -d "$dir" ]; then
    log "$name $version: cached"
    return
  fi
  require_go
  log "$name $version: building ${*/%/@$version} ..."
  local start=$SECONDS
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  start_ticker "$name"
  (cd / && GOBIN=$dir.tmp CGO_ENABLED=$cgo GOFLAGS=-modcacherw \
    go install -trimpath -tags "$tags" -ldflags "$ldflags" "${@/%/@$version}")
  stop_ticker
  mv "$dir.tmp" "$dir"
  log "$name $version: built in $((SECONDS - start))s"
}

# An OCI image layout archive (what `ctr images import` reads) of one layer, written without
# any image tool: the files of ROOT_DIR, a config with ENTRYPOINT (a JSON array) and USER, and the
# annotation that names the image for containerd.
write_oci_archive() { # write_oci_archive ROOT_DIR REFERENCE ENTRYPOINT USER OUT
  local root=$1 ref=$2 entrypoint=$3 user=$4 out=$5 work
  work=$(mktemp -d)
  mkdir -p "$work/layout/blobs/sha256"
  # A reproducible layer: fixed owner, time and order.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer.tar" .
  local layer layer_size config config_size manifest manifest_size
  layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$work/layer.tar")
  mv "$work/layer.tar" "$work/layout/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"User":"%s"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entrypoint" "$user" "$layer" >"$work/config.json"
  config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
  config_size=$(stat -c %s "$work/config.json")
  mv "$work/config.json" "$work/layout/blobs/sha256/$config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
  manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
  manifest_size=$(stat -c %s "$work/manifest.json")
  mv "$work/manifest.json" "$work/layout/blobs/sha256/$manifest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$ref" "${ref##*:}" >"$work/layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/layout" -cf "$out.tmp" .
  mv "$out.tmp" "$out"
  rm -rf "$work"
}

# The sandbox image: Kubernetes' pause.c linked statically, as registry.k8s.io/pause:<version>.
build_pause() {
  local version dir
  version=$(node_version pause)
  dir=$cache_root/node/pause@$version
  if [ -s "$dir/image.oci.tar" ]; then
    log "pause $version: cached"
    return
  fi
  require_go
  local src
  src=$(cd "$here/k8s" && go mod download -json k8s.io/kubernetes | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  log "pause $version: gcc -static $src/build/pause/linux/pause.c"
  local root
  root=$(mktemp -d)
  gcc -Os -static -Wall -Werror -DVERSION="v$version" -o "$root/pause" "$src/build/pause/linux/pause.c"
  strip "$root/pause"
  mkdir -p "$dir"
  write_oci_archive "$root" "registry.k8s.io/pause:$version" '["/pause"]' 65535:65535 "$dir/image.oci.tar"
  rm -rf "$root"
  log "pause $version: cached in $dir"
}

# CoreDNS's image: the binary alone, as registry.k8s.io/coredns/coredns:<version>.
build_coredns_image() {
  local version dir root
  version=$(node_version coredns)
  dir=$cache_root/node/coredns@$version
  if [ -s "$dir/image.oci.tar" ]; then
    log "coredns $version image: cached"
    return
  fi
  root=$(mktemp -d)
  cp "$dir/coredns" "$root/coredns"
  write_oci_archive "$root" "registry.k8s.io/coredns/coredns:$version" '["/coredns"]' 65532:65532 "$dir/.image.oci.tar"
  mv "$dir/.image.oci.tar" "$dir/image.oci.tar"
  rm -rf "$root"
  log "coredns $version image: cached in $dir"
}

build "$here/k8s" etcd go.etcd.io/etcd/server/v3 "-s -w"
build "$here/k8s" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build "$here/k8s" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build "$here/k8s" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags"
build "$here/k8s" kubectl k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build "$here/helm" helm helm.sh/helm/v3/cmd/helm "$helm_ldflags"
build "$here/k8s" kubelet k8s.io/kubernetes/cmd/kubelet "$k8s_ldflags"
build "$here/k8s" kube-proxy k8s.io/kubernetes/cmd/kube-proxy "$k8s_ldflags"
# remove_all_sd leaves out the cloud service discoveries (AWS, Azure, GCE, Kubernetes, ...):
# the tests give Prometheus its targets, and the build compiles none of the discoveries.
build "$here/prometheus" promtool github.com/prometheus/prometheus/cmd/promtool "$prometheus_ldflags" "$prometheus_bin" remove_all_sd
if $with_prometheus; then
  build "$here/prometheus" prometheus github.com/prometheus/prometheus/cmd/prometheus "$prometheus_ldflags" "$prometheus_bin" remove_all_sd
fi

# runc needs cgo for seccomp (libseccomp-dev from setup-host.sh), so that pods get the
# RuntimeDefault profile they ask for.
runc_module=$(node_module runc)
install_node runc 1 seccomp "-s -w -X main.version=$(node_version runc | sed 's/^v//')" "$runc_module"
containerd_module=$(node_module containerd)
install_node containerd 0 no_btrfs \
  "-s -w -X $containerd_module/version.Version=$(node_version containerd) -X $containerd_module/version.Revision=release" \
  "$containerd_module/cmd/containerd" "$containerd_module/cmd/containerd-shim-runc-v2" "$containerd_module/cmd/ctr"
cni_module=$(node_module cni-plugins)
install_node cni-plugins 0 "" "-s -w" \
  "$cni_module/plugins/main/bridge" "$cni_module/plugins/main/loopback" \
  "$cni_module/plugins/ipam/host-local" "$cni_module/plugins/meta/portmap"
crictl_module=$(node_module crictl)
install_node crictl 0 "" "-s -w -X $crictl_module/pkg/version.Version=$(node_version crictl)" "$crictl_module/cmd/crictl"
coredns_module=$(node_module coredns)
install_node coredns 0 "" "-s -w -X $coredns_module/coremain.GitCommit=$(node_version coredns)" "$coredns_module"
build_pause
build_coredns_image

fetch_crds() { # fetch_crds MODULE@VERSION FILE...
  local source=$1
  shift
  local dest=$cache_root/crds/${source##*/} file missing=()
  for file in "$@"; do [ -s "$dest/$(basename "$file")" ] || missing+=("$file"); done
  if [ ${#missing[@]} -eq 0 ]; then
    log "CRDs of $source: cached"
    return
  fi
  require_go
  log "CRDs of $source: fetching the module ..."
  local dir
  # Outside any module, so that go verifies the download against the checksum database.
  dir=$(cd / && GOFLAGS=-modcacherw go mod download -json "$source" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ]; then
    echo "error: go mod download $source gave no module directory" >&2
    exit 1
  fi
  mkdir -p "$dest"
  for file in "${missing[@]}"; do
    if [ ! -s "$dir/$file" ]; then
      echo "error: $source has no $file" >&2
      exit 1
    fi
    cp "$dir/$file" "$dest/.$(basename "$file").tmp"
    mv "$dest/.$(basename "$file").tmp" "$dest/$(basename "$file")"
  done
  log "CRDs of $source: cached in $dest"
}

while read -r source files; do
  case $source in '' | '#'*) continue ;; esac
  # shellcheck disable=SC2086 # the file list is meant to split
  fetch_crds "$source" $files
done <"$here/crds.txt"

echo "$bin"
