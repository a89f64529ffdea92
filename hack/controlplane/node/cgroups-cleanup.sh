#!/usr/bin/env bash
# Removes the cgroups of a stopped node's containers. containerd (CRI, cgroupfs driver, no pod
# cgroup parent from the kubelet) puts each container in /k8s.io/<container id> of every
# cgroup v1 hierarchy; the ids are the task bundles under the node's containerd state, which
# outlive the processes. Only empty cgroups can be removed (rmdir), so a running container's
# cgroup is never touched; /k8s.io itself goes only when nothing else is left in it.
#   cgroups-cleanup.sh NODE_DIR
set -uo pipefail
dir="$1"
bundles="$dir/containerd/state/io.containerd.runtime.v2.task/k8s.io"
[[ -d "$bundles" ]] || exit 0
for id in $(ls -1 "$bundles" 2>/dev/null); do
  [[ "$id" =~ ^[0-9a-f]{64}$ ]] || continue
  for cg in /sys/fs/cgroup/*/k8s.io/"$id"; do
    [[ -d "$cg" ]] && rmdir "$cg" 2>/dev/null
  done
done
for parent in /sys/fs/cgroup/*/k8s.io; do
  [[ -d "$parent" ]] && rmdir "$parent" 2>/dev/null
done
exit 0
