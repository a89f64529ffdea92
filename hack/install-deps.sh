#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine. Idempotent and quiet
# when everything is already there.
set -euo pipefail

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl)
command -v cc >/dev/null || need+=(gcc)
# make image (hack/image.sh): Debian packages unpacked with dpkg-deb; objcopy strips test builds.
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v objcopy >/dev/null || need+=(binutils)
if ((${#need[@]})); then
  echo "[deps] installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# promtool (alert rule checks and unit tests) and prometheus (tests/e2e_prometheus.rs). Without
# recommends: the exporters it recommends are daemons the tests never use.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  echo "[deps] installing prometheus (promtool)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The package would start a Prometheus service on every interface; the tests start their own
  # on loopback. policy-rc.d answering 101 tells the maintainer scripts not to start it.
  own_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [[ -n "$own_policy" ]]; then rm -f /usr/sbin/policy-rc.d; fi
fi

if ! command -v cargo >/dev/null; then
  echo "[deps] cargo is missing: install Rust (rustup) first" >&2
  exit 1
fi
if ! command -v go >/dev/null; then
  echo "[deps] installing golang-go" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
fi
# rustfmt and clippy ship as rustup components; a minimal toolchain lacks them.
if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null 2>&1 || true
  done
fi

# The test node (hack/controlplane/up --node): containerd, runc, CNI plugins, iptables.
"$(dirname "${BASH_SOURCE[0]}")/controlplane/node/deps.sh"
