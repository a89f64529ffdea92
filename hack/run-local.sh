#!/usr/bin/env bash
# `make run`: supportgate end to end on this machine, on the embedded default policy.
#
# Starts the local control plane (hack/controlplane), installs the SupportPolicy CRD, the
# default policy and the example cluster kinds, starts `supportgate run` with its webhook
# registered (self-managed certificates), applies examples/clusters/konvoyclusters.yaml one
# cluster at a time, prints what was admitted, what was refused and why, and the Supported
# conditions the controller wrote. Then it stays up so you can try `kubectl` yourself;
# Ctrl-C stops everything it started.
#
# Usage: hack/run-local.sh [--once]     (--once: stop after printing, for tests)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"
# shellcheck source=hack/lib/apply-examples.sh
source hack/lib/apply-examples.sh
once=0
[[ "${1:-}" == "--once" ]] && once=1

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

bin_dir="$(hack/controlplane/build.sh --print)"
kubectl="$bin_dir/kubectl"
supportgate="${SUPPORTGATE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/supportgate}"
[[ -x "$supportgate" ]] || { echo "missing $supportgate: run 'cargo build --release' (make run does)" >&2; exit 1; }

state="$(mktemp -d "${TMPDIR:-/tmp}/supportgate-run.XXXXXX")"
sg_pid=""
cleanup() {
  local status=$?
  [[ -n "$sg_pid" ]] && kill "$sg_pid" 2>/dev/null && wait "$sg_pid" 2>/dev/null || true
  hack/controlplane/down --dir "$state/cp" --grace 5 >/dev/null 2>&1 || true
  # Stopped by Ctrl-C or SIGTERM (130) or done: nothing is left behind. After a failure the
  # logs stay for reading.
  if [[ $status -eq 0 || $status -eq 130 ]]; then
    rm -rf "$state"
  else
    echo "kept $state (supportgate.log, cp/*.log)" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting the local control plane (kube-apiserver + etcd)"
hack/controlplane/up --dir "$state/cp" >/dev/null
export KUBECONFIG="$state/cp/kubeconfig"
k() { "$kubectl" "$@"; }

log "installing the SupportPolicy CRD, the example cluster kinds and the default policy"
k apply --server-side -f crds/ -f tests/fixtures/crds/ -f tests/fixtures/crds-policyreport/ >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
k create namespace supportgate >/dev/null
k create namespace kommander >/dev/null
k apply -f examples/policies/default.yaml >/dev/null

read -r webhook_port health_port <<<"$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')"
"$supportgate" webhook-config --name supportgate-local --url "https://127.0.0.1:$webhook_port/validate" \
  --exclude-namespace kube-system --exclude-namespace supportgate | k apply -f - >/dev/null

log "starting supportgate (webhook https://127.0.0.1:$webhook_port, health http://127.0.0.1:$health_port)"
"$supportgate" run --webhook-addr "127.0.0.1:$webhook_port" --health-addr "127.0.0.1:$health_port" \
  --self-managed-certs --namespace supportgate --cert-secret-name supportgate-tls \
  --webhook-config-name supportgate-local --cert-extra-name 127.0.0.1 --no-leader-election \
  2>"$state/supportgate.log" &
sg_pid=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$health_port/readyz" >/dev/null 2>&1 && break
  kill -0 "$sg_pid" 2>/dev/null || { cat "$state/supportgate.log" >&2; exit 1; }
  sleep 0.1
done
# The API server picks up the webhook configuration (and its caBundle) within a few seconds.
probe='{"apiVersion":"konvoy.mesosphere.io/v1beta2","kind":"ClusterProvisioner","metadata":{"name":"probe"},"spec":{"version":"v1.4.0"}}'
for _ in $(seq 1 150); do
  if ! out="$(echo "$probe" | k -n kommander apply --dry-run=server -f - 2>&1)" && [[ "$out" == *"denied the request"* ]]; then break; fi
  sleep 0.2
done

apply_examples

log "the Supported conditions written by the controller"
for _ in $(seq 1 100); do
  n="$(k -n kommander get konvoyclusters -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Supported")].status}{"\n"}{end}' | grep -c . || true)"
  [[ "$n" -ge "$(k -n kommander get konvoyclusters --no-headers | wc -l)" ]] && break
  sleep 0.1
done
k -n kommander get konvoyclusters -o custom-columns='NAME:.metadata.name,SUPPORTED:.status.conditions[?(@.type=="Supported")].status,REASON:.status.conditions[?(@.type=="Supported")].reason,MESSAGE:.status.conditions[?(@.type=="Supported")].message'
echo
# The policy's status is written once the reconciles settle (at most once a second).
for _ in $(seq 1 100); do
  [[ -n "$(k get supportpolicy default -o jsonpath='{.status.objects}')" ]] && break
  sleep 0.1
done
k get supportpolicies

if (( once )); then
  exit 0
fi
cat <<EOF

supportgate is running against a local API server. Try it:

  export KUBECONFIG=$KUBECONFIG
  $kubectl get konvoyclusters -A
  $kubectl -n kommander apply -f examples/clusters/konvoyclusters.yaml

supportgate's log: $state/supportgate.log   (Ctrl-C stops everything)
EOF
wait "$sg_pid"
