#!/usr/bin/env bash
# The images the node needs that are not supportgate's: only the pod sandbox ("pause").
# No registry can be reached, so it is built here: pause.c compiled statically, packed as an
# OCI archive by hack/oci.py. Cached by the hash of its inputs.
#   images.sh OUT_DIR IMAGE_REF      -> OUT_DIR/pause.tar
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="$1" ref="$2"
cache="${SUPPORTGATE_CACHE:-$repo/.cache}/controlplane/node-images"
key="$(cat "$here/pause.c" "$repo/hack/oci.py" "${BASH_SOURCE[0]}" <(echo "$ref") | sha256sum | cut -c1-16)"
tarball="$cache/pause-$key.tar"
if [[ ! -s "$tarball" ]]; then
  mkdir -p "$cache"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/rootfs"
  gcc -static -Os -s -o "$work/rootfs/pause" "$here/pause.c"
  chmod 0755 "$work/rootfs/pause"
  SOURCE_DATE_EPOCH=0 python3 "$repo/hack/oci.py" build --out "$tarball" --name "$ref" \
    --user 65535:65535 --entrypoint '["/pause"]' --layer "$work/rootfs" >/dev/null
fi
mkdir -p "$out"
cp -f "$tarball" "$out/pause.tar"
