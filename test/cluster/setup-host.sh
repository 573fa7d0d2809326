#!/usr/bin/env bash
# Installs the host tools that the local cluster's node agent needs (iptables for the
# Service NAT rules, iproute2 for the pod network), when they are missing. Needs root.
set -euo pipefail
missing=()
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -eq 0 ]; then
  echo "[setup-host] iptables, iproute2 and util-linux are present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: ${missing[*]} missing, and installing them needs root" >&2
  exit 1
fi
echo "[setup-host] installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
