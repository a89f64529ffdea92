#!/usr/bin/env bash
# make run-cluster: the product installed the way users install it. Starts the local node
# (hack/controlplane/up --node), imports the image built by hack/image.sh, installs the chart
# with Helm, walks through the README's example clusters (ADMITTED/REFUSED), shows the
# conditions and the pods, prints a KUBECONFIG= line for your own shell (a loopback port
# forward to the apiserver inside the node's network namespace) and stays up until Ctrl-C.
# Ctrl-C or SIGTERM stops everything it started; so does its death by SIGKILL (the node's
# lifeline is a FIFO only this script holds open for writing).
#   SUPPORTGATE_BIN   the binary to pack (default: the release build)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"
# shellcheck source=hack/lib/apply-examples.sh
source hack/lib/apply-examples.sh
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

supportgate="${SUPPORTGATE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/supportgate}"
[[ -x "$supportgate" ]] || { echo "missing $supportgate: run 'cargo build --release' (make run-cluster does)" >&2; exit 1; }
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"

state="$(mktemp -d "${TMPDIR:-/tmp}/supportgate-cluster.XXXXXX")"
sleeper=""
cleanup() {
  [[ -n "$sleeper" ]] && kill "$sleeper" 2>/dev/null
  exec 7>&- 2>/dev/null || true
  # down returns once the node's namespaces (and with them its mounts) are gone.
  hack/controlplane/down --dir "$state/node" --grace 10 >/dev/null 2>&1 || true
  rm -rf --one-file-system "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

log "starting the node: etcd, kube-apiserver, controllers, containerd, kubelet, kube-proxy (own network namespace)"
mkfifo "$state/lifeline"
exec 7<>"$state/lifeline"
hack/controlplane/up --node --lifeline --dir "$state/node" <"$state/lifeline" >/dev/null 7>&-
export KUBECONFIG="$state/node/kubeconfig"
bin_dir="$(hack/controlplane/build.sh --print)"
k() { "$bin_dir/kubectl" "$@"; }

log "building the image (hack/image.sh) and importing it into the node's containerd"
hack/image.sh --bin "$supportgate" --strip --out "$state/supportgate.oci.tar" \
  --name "docker.io/library/supportgate:$version" >/dev/null
ctr --address "$state/node/containerd/containerd.sock" -n k8s.io images import "$state/supportgate.oci.tar" >/dev/null

log "the example cluster kinds (tests/fixtures/crds) and the namespace kommander"
k apply --server-side -f tests/fixtures/crds/ >/dev/null
k wait --for=condition=Established --timeout=60s -f tests/fixtures/crds/ >/dev/null
k create namespace kommander >/dev/null

log "helm install supportgate charts/supportgate --namespace supportgate --create-namespace"
out="$(HELM_CACHE_HOME="$state/helm" HELM_CONFIG_HOME="$state/helm" HELM_DATA_HOME="$state/helm" \
  "$bin_dir/helm" install supportgate charts/supportgate --namespace supportgate --create-namespace)"
head -n 6 <<<"$out"
k -n supportgate rollout status deployment/supportgate --timeout=300s
probe='{"apiVersion":"kommander.mesosphere.io/v1beta1","kind":"KonvoyCluster","metadata":{"name":"probe","namespace":"kommander"},"spec":{"provisioner":{"provider":"aws","version":"v1.4.0"}}}'
for _ in $(seq 1 240); do
  if ! out="$(echo "$probe" | k apply --dry-run=server -f - 2>&1)" && [[ "$out" == *"denied the request"* ]]; then break; fi
  sleep 0.5
done

apply_examples

log "the Supported conditions written by the leader pod"
for _ in $(seq 1 240); do
  n="$(k -n kommander get konvoyclusters -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Supported")].status}{"\n"}{end}' | grep -c . || true)"
  [[ "$n" -ge "$(k -n kommander get konvoyclusters --no-headers | wc -l)" ]] && break
  sleep 0.5
done
k -n kommander get konvoyclusters -o custom-columns='NAME:.metadata.name,SUPPORTED:.status.conditions[?(@.type=="Supported")].status,REASON:.status.conditions[?(@.type=="Supported")].reason,MESSAGE:.status.conditions[?(@.type=="Supported")].message'
echo
k get supportpolicies
echo
log "kubectl get pods -n supportgate"
k get pods -n supportgate -o wide

if [[ "${1:-}" == "--once" ]]; then
  exit 0
fi
cat <<EOF

supportgate runs in the local node, installed by Helm. From your own shell:

KUBECONFIG=$KUBECONFIG
  export KUBECONFIG=$KUBECONFIG PATH=$bin_dir:\$PATH
  kubectl get pods -n supportgate
  kubectl -n kommander apply -f examples/clusters/konvoyclusters.yaml

The node's logs: $state/node/logs/   (Ctrl-C stops everything)
EOF
sleep infinity 7>&- &
sleeper=$!
wait "$sleeper"
