#!/usr/bin/env bash
# The node's system packages (Debian): containerd, runc, the CNI plugins (/usr/lib/cni), and
# iptables for kube-proxy and the portmap plugin. Idempotent and quiet when all are there.
# The packages' own containerd service is never used: up --node runs its own containerd with
# its own config, sockets and state under the node's directory.
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v ctr >/dev/null || need+=(containerd)
[[ -x /usr/sbin/runc || -x /usr/bin/runc ]] || need+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback && -x /usr/lib/cni/portmap ]] \
  || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
if ((${#need[@]})); then
  echo "[node/deps] installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
