#!/usr/bin/env bash
# Builds the local control plane's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) and helm from the pinned wrapper modules in k8s/ and helm/, and
# fetches the CustomResourceDefinitions listed in crds.txt.
# Everything is cached outside the repository and made only when missing:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha/k8s/<k8s version>/
#   ${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha/crds/<module>@<version>/
# Prints the directory that holds the binaries on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

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
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/coordinator-ha
bin=$cache_root/k8s/$k8s_version
mkdir -p "$bin"

log() { echo "[build] $*" >&2; }

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

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "error: the Go toolchain is missing, and $bin lacks binaries that must be built from source." >&2
    echo "Install Go >= 1.25 (https://go.dev/doc/install) and retry." >&2
    exit 1
  fi
}

ticker=
trap '[ -z "$ticker" ] || kill "$ticker" 2>/dev/null' EXIT

build() { # build MODULE_DIR NAME PACKAGE LDFLAGS
  local dir=$1 name=$2 pkg=$3 ldflags=$4
  if [ -x "$bin/$name" ]; then
    log "$name: cached"
    return
  fi
  require_go
  log "$name: building $pkg (a cold build takes minutes; module downloads come first) ..."
  local start=$SECONDS
  # go build is silent for minutes: say that it is still at work.
  (
    begin=$(date +%s)
    # Sleep in the background and wait, so that the TERM from kill ends the sleep too.
    trap 'kill $! 2>/dev/null; exit 0' TERM
    while sleep 30 & wait $!; do log "$name: still building ($(($(date +%s) - begin))s)"; done
  ) &
  ticker=$!
  # Build to a temporary name and rename, so an interrupted build never leaves a
  # half-written binary that a later run would take for a cached one.
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/.$name.tmp" "$pkg")
  kill "$ticker" 2>/dev/null
  ticker=
  mv "$bin/.$name.tmp" "$bin/$name"
  log "$name: built in $((SECONDS - start))s"
}

build "$here/k8s" etcd go.etcd.io/etcd/server/v3 "-s -w"
build "$here/k8s" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build "$here/k8s" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build "$here/k8s" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags"
build "$here/k8s" kubectl k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build "$here/helm" helm helm.sh/helm/v3/cmd/helm "$helm_ldflags"

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
