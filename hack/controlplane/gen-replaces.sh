#!/usr/bin/env bash
# Regenerate the k8s.io staging-module replace directives in this directory's
# go.mod from the pinned Kubernetes release's own go.mod.
#
# k8s.io/kubernetes cannot be consumed as a normal dependency: its go.mod
# requires every k8s.io/* staging module at v0.0.0 and replaces them with
# ./staging/src/k8s.io/<name>, which does not exist outside its repository.
# The published staging modules are tagged v0.<minor>.<patch> for release
# v1.<minor>.<patch>, so we replace each one with its published version.
#
# Usage: hack/controlplane/gen-replaces.sh [KUBERNETES_VERSION]
#   KUBERNETES_VERSION defaults to the k8s.io/kubernetes version already
#   required in go.mod (e.g. v1.36.3). Afterwards run `go mod tidy`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

k8s_version="${1:-}"
if [[ -z "$k8s_version" ]]; then
  k8s_version="$(go mod edit -print | awk '
    $1 == "require" { $1 = "" ; $0 = $0 }
    $1 == "k8s.io/kubernetes" { print $2; exit }')"
fi
if [[ ! "$k8s_version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
  echo "gen-replaces: need a Kubernetes release version like v1.36.3 (got '${k8s_version}')" >&2
  exit 2
fi
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

# Download the release's go.mod (not the whole source zip) through the module proxy.
gomod="$(GOFLAGS='' go mod download -json "k8s.io/kubernetes@${k8s_version}" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$gomod" || ! -f "$gomod" ]]; then
  echo "gen-replaces: could not locate go.mod of k8s.io/kubernetes@${k8s_version}" >&2
  exit 1
fi

# Every "k8s.io/<x> => ./staging/src/k8s.io/<x>" line, in the replace block or single-line form.
mapfile -t staging < <(
  sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\2#p' "$gomod" \
    | sort -u
)
if (( ${#staging[@]} == 0 )); then
  echo "gen-replaces: found no staging replaces in $gomod" >&2
  exit 1
fi

# Drop any previous k8s.io/* replaces so a version bump leaves nothing stale.
args=()
while read -r old; do
  [[ -n "$old" ]] && args+=("-dropreplace=${old}")
done < <(go mod edit -print | awk '
  /^replace \(/ { inblock = 1; next }
  inblock && /^\)/ { inblock = 0; next }
  inblock && $1 ~ /^k8s\.io\// { print $1 }
  /^replace k8s\.io\// { print $2 }')
args+=("-require=k8s.io/kubernetes@${k8s_version}")
for m in "${staging[@]}"; do
  args+=("-replace=${m}=${m}@${staging_version}")
done
go mod edit "${args[@]}"

echo "gen-replaces: k8s.io/kubernetes ${k8s_version}: ${#staging[@]} staging modules -> ${staging_version}"
echo "gen-replaces: now run: (cd ${here} && go mod tidy)"
