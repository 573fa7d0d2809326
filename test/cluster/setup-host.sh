#!/usr/bin/env bash
# Installs, when they are missing, the Debian packages the local cluster needs on the host:
#   iptables, conntrack          kube-proxy's Service rules (iptables mode)
#   iproute2, util-linux         the node network and each node's mount namespace (unshare)
#   libseccomp-dev, pkg-config,  building runc with seccomp (cgo), and the pause image
#   gcc, libc6-dev                 (gcc -static)
#   buildah                      the project's image from its Dockerfile, without a Docker engine
#   debootstrap                  the Debian bookworm root file system of the base images
# Needs root to install.
set -euo pipefail
# command-or-file package
wanted=(
  "iptables iptables"
  "conntrack conntrack"
  "ip iproute2"
  "unshare util-linux"
  "nsenter util-linux"
  "gcc gcc"
  "pkg-config pkg-config"
  "/usr/include/seccomp.h libseccomp-dev"
  "/usr/lib/x86_64-linux-gnu/libc.a libc6-dev"
  "buildah buildah"
  "debootstrap debootstrap"
)
missing=()
for entry in "${wanted[@]}"; do
  what=${entry% *} package=${entry#* }
  case $what in
    /*) [ -e "$what" ] || [ -n "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep ' installed')" ] || missing+=("$package") ;;
    *) command -v "$what" >/dev/null 2>&1 || missing+=("$package") ;;
  esac
done
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
if [ ${#missing[@]} -eq 0 ]; then
  echo "[setup-host] the host packages are present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: ${missing[*]} missing, and installing them needs root" >&2
  exit 1
fi
echo "[setup-host] installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
