#!/usr/bin/env bash
# Build the pinned Kyverno admission controller (cmd/kyverno) from source via the
# Go module proxy. A test and benchmark peer only (issue #19: tests/e2e_kyverno.rs,
# benches/apiserver.rs, docs/comparison.md), never part of the product.
#
# Output: ${SUPPORTGATE_CACHE:-<repo>/.cache}/kyverno/
#   bin/kyverno  bin/VERSIONS (the stamp)
#   crds/        Kyverno's CRDs, copied from the pinned module's config/crds
#
# Idempotent: when VERSIONS matches the version pinned in go.mod/go.sum and the
# binary exists, it does nothing. The version comes only from the committed
# go.mod/go.sum (built with -mod=readonly). To bump: edit the require line, copy
# the new release's replace directives, then `go mod tidy` here.
#
# Options:
#   --force   rebuild even if the stamp matches
#   --print   print the cache directory and exit (no build)
# Env:
#   SUPPORTGATE_CACHE   cache root (default <repo>/.cache)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${SUPPORTGATE_CACHE:-$repo/.cache}"
out="$cache/kyverno"
bin="$out/bin"

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --print) echo "$out"; exit 0 ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[kyverno/build] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "go is not on PATH (need Go >= $(awk '$1 == "go" { print $2; exit }' "$here/go.mod"))"
  exit 1
fi

version="$(awk '$1 == "require" && $2 == "github.com/kyverno/kyverno" { print $3; exit }' "$here/go.mod")"
if [[ ! "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  log "cannot read the github.com/kyverno/kyverno version from $here/go.mod"; exit 1
fi

# Any change to the module files or to this script's flags must rebuild.
inputs_sum="$(cat "$here/go.mod" "$here/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
stamp_want="kyverno=$version
inputs=$inputs_sum"

up_to_date() {
  [[ -x "$bin/kyverno" && -d "$out/crds" && -f "$bin/VERSIONS" ]] &&
    [[ "$(grep -v '^built_with=' "$bin/VERSIONS")" == "$stamp_want" ]]
}

if (( ! force )) && up_to_date; then
  log "up to date in $bin (kyverno $version)"
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

export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
staging="$(mktemp -d "$out/.stage.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

log "building kyverno $version with $(go env GOVERSION) (GOMAXPROCS=${GOMAXPROCS:-$(nproc)}, nice 10)"
t="$(now)"
# nice: the build shares two cores with whatever else the machine runs (tests, other builds).
(cd "$here" && nice -n 10 go build -trimpath \
  -ldflags "-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=$version" \
  -o "$staging/kyverno" github.com/kyverno/kyverno/cmd/kyverno)
log "kyverno: $(elapsed "$t")"

# The CRDs ship in the module zip; copy them so tests need not find the module cache.
moddir="$(cd "$here" && go list -m -f '{{.Dir}}' github.com/kyverno/kyverno)"
mkdir -p "$staging/crds"
find "$moddir/config/crds" -name '*.yaml' -exec cp {} "$staging/crds/" \;
chmod -R u+w "$staging/crds"
printf '%s\nbuilt_with=%s\n' "$stamp_want" "$(go env GOVERSION)" > "$staging/VERSIONS"

# Swap the finished set in; the stamp lands last so a partial bin/ never looks current.
mkdir -p "$bin"
rm -f "$bin/VERSIONS"
rm -rf "$out/crds"
mv -f "$staging/kyverno" "$bin/kyverno"
mv -f "$staging/crds" "$out/crds"
mv -f "$staging/VERSIONS" "$bin/VERSIONS"
log "done: $bin/kyverno"
