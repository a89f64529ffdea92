#!/usr/bin/env bash
# Builds the supportgate image without Docker and without a registry: an OCI archive that
# `ctr images import` (and `docker load`, `podman load`, `skopeo`) read. It is the image the
# Dockerfile describes (the published recipe):
#   - the release binary at /supportgate;
#   - user and group 65532 (distroless "nonroot"), no shell;
#   - ENTRYPOINT ["/supportgate"], CMD ["run"], ports 8443 and 8080;
#   - a base made from Debian packages: libc6, libgcc-s1, ca-certificates (what distroless/cc
#     is made of), plus /etc/passwd and /etc/group naming nonroot, and /tmp.
# tests/image_recipe.rs fails when this recipe and the Dockerfile disagree.
#
# Usage: hack/image.sh [--bin PATH] [--out FILE] [--name REF] [--strip]
#   --bin PATH   the binary to pack (default: $CARGO_TARGET_DIR/release/supportgate)
#   --out FILE   the archive (default: $SUPPORTGATE_CACHE/image/supportgate-<version>.oci.tar)
#   --name REF   the image name (default: docker.io/library/supportgate:<version>, the full
#                name of the chart's default image supportgate:<version>, as containerd and
#                the kubelet spell it)
#   --strip      pack a copy without debug information (for test builds)
# Env: SUPPORTGATE_CACHE (the Debian packages are cached under it), SOURCE_DATE_EPOCH.
set -euo pipefail

# The image configuration; keep in step with the Dockerfile (tests/image_recipe.rs checks).
IMAGE_USER="65532:65532"
IMAGE_ENTRYPOINT='["/supportgate"]'
IMAGE_CMD='["run"]'
IMAGE_PORTS=(8443/tcp 8080/tcp)
IMAGE_BINARY=/supportgate
BASE_PACKAGES=(libc6 libgcc-s1 ca-certificates)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${SUPPORTGATE_CACHE:-$HOME/.cache/supportgate}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)"

bin="${CARGO_TARGET_DIR:-$cache/target}/release/supportgate"
out="$cache/image/supportgate-$version.oci.tar"
name="docker.io/library/supportgate:$version"
strip=0
while (( $# )); do
  case "$1" in
    --bin) bin="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    --name) name="${2:?}"; shift 2 ;;
    --strip) strip=1; shift ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
log() { printf '[image] %s\n' "$*" >&2; }
[[ -x "$bin" ]] || { log "no binary at $bin (make build, or --bin)"; exit 1; }

# ---------------------------------------------------------------- Debian packages
debs="$cache/image/debs"
mkdir -p "$debs"
have_debs() { local p; for p in "${BASE_PACKAGES[@]}"; do compgen -G "$debs/${p}_*.deb" >/dev/null || return 1; done; }
if ! have_debs; then
  log "downloading ${BASE_PACKAGES[*]} (Debian)"
  (cd "$debs" && apt-get download "${BASE_PACKAGES[@]}" >/dev/null 2>&1) \
    || { apt-get update -qq && (cd "$debs" && apt-get download "${BASE_PACKAGES[@]}" >/dev/null); }
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
base="$work/base" app="$work/app"
mkdir -p "$base" "$app"
for p in "${BASE_PACKAGES[@]}"; do
  deb="$(ls -1 "$debs/${p}"_*.deb | sort -V | tail -n1)"
  dpkg-deb -x "$deb" "$base"
  log "base: $(basename "$deb")"
done
# What a package's maintainer scripts would do, and what the image does not need.
mkdir -p "$base/etc/ssl/certs"
find "$base/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat > "$base/etc/ssl/certs/ca-certificates.crt"
rm -rf "$base/usr/share/doc" "$base/usr/share/man" "$base/usr/share/lintian" "$base/usr/share/locale" \
  "$base/usr/sbin" "$base/etc/ca-certificates" "$base/usr/share/ca-certificates"
# Debian 12's usrmerge layout, so that /lib64/ld-linux-x86-64.so.2 (the binary's interpreter)
# resolves whichever path the package used.
for d in lib lib64; do
  if [[ -d "$base/$d" && ! -L "$base/$d" ]]; then
    mkdir -p "$base/usr/$d"
    cp -a "$base/$d/." "$base/usr/$d/"
    rm -rf "${base:?}/$d"
  fi
  [[ -d "$base/usr/$d" ]] && ln -s "usr/$d" "$base/$d"
done
for sh in bin/sh bin/bash bin/dash usr/bin/sh usr/bin/bash usr/bin/dash; do
  [[ ! -e "$base/$sh" ]] || { log "a shell ($sh) came with the base packages"; exit 1; }
done
cat > "$base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$base/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
printf 'hosts: files dns\n' > "$base/etc/nsswitch.conf"
mkdir -p "$base/tmp" "$base/home/nonroot" "$base/root"
chmod 1777 "$base/tmp"
chmod 0700 "$base/home/nonroot" "$base/root"
chown 65532:65532 "$base/home/nonroot"

# ---------------------------------------------------------------- the binary
if (( strip )); then
  objcopy --strip-debug "$bin" "$app$IMAGE_BINARY"
else
  cp "$bin" "$app$IMAGE_BINARY"
fi
chmod 0755 "$app$IMAGE_BINARY"

ports=()
for p in "${IMAGE_PORTS[@]}"; do ports+=(--port "$p"); done
mkdir -p "$(dirname "$out")"
python3 "$here/oci.py" build --out "$out" --name "$name" \
  --user "$IMAGE_USER" --entrypoint "$IMAGE_ENTRYPOINT" --cmd "$IMAGE_CMD" "${ports[@]}" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --workdir /home/nonroot --layer "$base" --layer "$app" >&2
log "$name -> $out"
echo "$out"
