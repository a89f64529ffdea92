#!/usr/bin/env bash
# Build the pinned test control-plane binaries from source via the Go module
# proxy: kube-apiserver, kubectl, etcd, and the node's kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy (module ./), and helm (module ./helm).
#
# Output: ${SUPPORTGATE_CACHE:-<repo>/.cache}/controlplane/bin/
#   kube-apiserver  kubectl  etcd  helm  VERSIONS (the stamp)
#   kube-controller-manager  kube-scheduler  kubelet  kube-proxy   (used by `up --node`)
#
# Idempotent: when VERSIONS matches the versions pinned in go.mod/go.sum and all
# binaries exist, it does nothing. Versions come only from the committed
# go.mod/go.sum files (built with -mod=readonly); see README.md to bump them.
#
# Options:
#   --force   rebuild even if the stamp matches
#   --print   print the bin directory and exit (no build)
# Env:
#   SUPPORTGATE_CACHE   cache root (default <repo>/.cache)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${SUPPORTGATE_CACHE:-$repo/.cache}"
out="$cache/controlplane"
bin="$out/bin"

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --print) echo "$bin"; exit 0 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[controlplane/build] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "go is not on PATH (need Go >= $(awk '$1 == "go" { print $2; exit }' "$here/go.mod"))"
  exit 1
fi

# Version of module $2 required by the go.mod in directory $1 (block or one-line form).
modver() {
  awk -v m="$2" '
    $1 == "require" { $1 = ""; $0 = $0 }
    $1 == m { print $2; exit }' "$1/go.mod"
}

k8s_version="$(modver "$here" k8s.io/kubernetes)"
etcd_version="$(modver "$here" go.etcd.io/etcd/server/v3)"
helm_version="$(modver "$here/helm" helm.sh/helm/v3)"
if [[ ! "$k8s_version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
  log "cannot read the k8s.io/kubernetes version from $here/go.mod"; exit 1
fi
k8s_major="${BASH_REMATCH[1]}"
k8s_minor="${BASH_REMATCH[2]}"
if [[ -z "$etcd_version" || -z "$helm_version" ]]; then
  log "cannot read the etcd/helm versions from go.mod"; exit 1
fi

# Any change to the module files or to this script's flags must rebuild.
inputs_sum="$(cat "$here/go.mod" "$here/go.sum" "$here/helm/go.mod" "$here/helm/go.sum" "${BASH_SOURCE[0]}" \
  | sha256sum | cut -c1-16)"
stamp_want="kubernetes=$k8s_version
etcd=$etcd_version
helm=$helm_version
inputs=$inputs_sum"

binaries=(kube-apiserver kubectl etcd helm kube-controller-manager kube-scheduler kubelet kube-proxy)
up_to_date() {
  local b
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
  [[ -f "$bin/VERSIONS" ]] && [[ "$(grep -v '^built_with=' "$bin/VERSIONS")" == "$stamp_want" ]]
}

if (( ! force )) && up_to_date; then
  log "up to date in $bin (kubernetes $k8s_version, etcd $etcd_version, helm $helm_version)"
  exit 0
fi

mkdir -p "$out"
# Serialise concurrent builds (e.g. parallel test runs calling this script).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$out/.build.lock"
  flock 9
  if (( ! force )) && up_to_date; then
    log "up to date in $bin (built by a concurrent run)"
    exit 0
  fi
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

export CGO_ENABLED=0
# Only the committed go.sum is trusted; never edit go.mod during a build.
gobuild=(go build -mod=readonly -trimpath)

k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$k8s_major -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean"
done
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.metadata= -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
# Default .Capabilities.KubeVersion for `helm template`/`helm lint` = the test control plane's.
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=$k8s_major -X $pkg.k8sVersionMinor=$k8s_minor"
done

staging="$(mktemp -d "$out/.bin.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

log "building kubernetes $k8s_version, etcd $etcd_version, helm $helm_version with $(go env GOVERSION) (GOMAXPROCS=${GOMAXPROCS:-$(nproc)})"
t_all="$(now)"

t="$(now)"
(cd "$here" && "${gobuild[@]}" -ldflags "$k8s_ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
log "kube-apiserver + kubectl: $(elapsed "$t")"

# The node (`up --node`): same module, same version stamp.
t="$(now)"
(cd "$here" && "${gobuild[@]}" -ldflags "$k8s_ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
log "kube-controller-manager + kube-scheduler + kubelet + kube-proxy: $(elapsed "$t")"

t="$(now)"
(cd "$here" && "${gobuild[@]}" -ldflags "-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3)
log "etcd: $(elapsed "$t")"

t="$(now)"
(cd "$here/helm" && "${gobuild[@]}" -ldflags "$helm_ldflags" -o "$staging/helm" helm.sh/helm/v3/cmd/helm)
log "helm: $(elapsed "$t")"

printf '%s\nbuilt_with=%s\n' "$stamp_want" "$(go env GOVERSION)" > "$staging/VERSIONS"

# Swap the finished set in; the stamp lands last so a partial bin/ never looks current.
mkdir -p "$bin"
rm -f "$bin/VERSIONS"
for b in "${binaries[@]}"; do mv -f "$staging/$b" "$bin/$b"; done
mv -f "$staging/VERSIONS" "$bin/VERSIONS"

log "done in $(elapsed "$t_all"): $bin"
