#!/usr/bin/env bash
# Writes the node's configuration files into DIR: containerd (its own root, state and sockets
# under DIR), the CNI bridge network, the kubelet and kube-proxy configurations, and the
# command lines of every component (DIR/args/NAME, one argument per line, read by node/init).
#   configs.sh DIR BIN NODE_NAME NODE_IP POD_CIDR SVC_CIDR PAUSE_IMAGE
set -euo pipefail
dir="$1" bin="$2" node_name="$3" node_ip="$4" pod_cidr="$5" svc_cidr="$6" pause_image="$7"
pki="$dir/pki"
mkdir -p "$dir/args" "$dir/containerd" "$dir/cni/net.d" "$dir/cni/ipam" "$dir/kubelet" "$dir/pod-logs"

cat > "$dir/containerd/config.toml" <<TOML
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd/containerd.sock"
[ttrpc]
  address = "$dir/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # Lowering oom_score_adj (the sandbox's -998) needs CAP_SYS_RESOURCE, which a container
  # (e.g. a CI runner) may lack: keep every score at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1
TOML

cat > "$dir/cni/net.d/10-supportgate-node.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "supportgate-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$pod_cidr"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$dir/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

printf '# the test node has no DNS server\n' > "$dir/resolv.conf"
cat > "$dir/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine is cgroup v1 (hybrid): allowed explicitly, with the cgroupfs driver and no QoS
# cgroups. Without QoS cgroups the kubelet gives no cgroup parent, so containerd puts each
# container in /k8s.io/<container id>; node/cgroups-cleanup.sh removes exactly those.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
podLogsDirectory: $dir/pod-logs
resolvConf: $dir/resolv.conf
clusterDomain: cluster.local
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
YAML

cat > "$dir/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $pod_cidr
hostnameOverride: $node_name
bindAddress: $node_ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables: {localhostNodePorts: false}
# 0: leave the (machine-wide) conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML

cat > "$dir/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
YAML

args() { local name="$1"; shift; printf '%s\n' "$@" > "$dir/args/$name"; }
etcd_extra=()
if "$bin/etcd" --help 2>&1 | grep -q -- '--unsafe-no-fsync'; then etcd_extra+=(--unsafe-no-fsync); fi
args etcd --name=supportgate-node --data-dir="$dir/etcd" \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=supportgate-node=http://127.0.0.1:2380 --log-level=warn "${etcd_extra[@]}"
# shellcheck disable=SC2054 # commas are part of flag values
args kube-apiserver --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --advertise-address="$node_ip" --secure-port=6443 \
  --cert-dir="$pki" --tls-cert-file="$pki/serving.crt" --tls-private-key-file="$pki/serving.key" \
  --client-ca-file="$pki/ca.crt" --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction \
  --kubelet-client-certificate="$pki/admin.crt" --kubelet-client-key="$pki/admin.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range="$svc_cidr" --allow-privileged=true --enable-aggregator-routing=true \
  --audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/logs/audit.log" \
  --audit-log-format=json --audit-log-mode=blocking --audit-log-maxbackup=1 --audit-log-maxsize=100
args kube-controller-manager --kubeconfig="$dir/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$dir/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$dir/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --service-cluster-ip-range="$svc_cidr" --allocate-node-cidrs=false
args kube-scheduler --kubeconfig="$dir/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig="$dir/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig="$dir/kube-scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false
args containerd --config="$dir/containerd/config.toml" --log-level=info
args kubelet --config="$dir/kubelet/config.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
  --root-dir="$dir/kubelet/root" --hostname-override="$node_name" --node-ip="$node_ip" --v=1
args kube-proxy --config="$dir/kube-proxy.yaml" --v=1
