#!/usr/bin/env bash
# Makes a real container engine available for the container tests of vibetrees-native:
# podman + runc (Debian), podman-compose (PyPI: the Debian one lacks `config` and `--env-file`),
# and a local busybox image built from a tarball with `podman import` (no image registry is needed).
#
# Idempotent. On success prints the line to export (CONTAINERS_CONF pointing at tests/containers.conf).
# Exits non-zero with the reason when it cannot be set up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"
fail() { echo "setup-containers: $*" >&2; exit 1; }

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || fail "missing ${need[*]} and no apt-get to install them"
  if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo; command -v sudo >/dev/null 2>&1 || fail "missing ${need[*]}; not root and no sudo"
  else sudo=; fi
  $sudo apt-get update -qq >/dev/null || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null \
    || fail "apt-get install ${need[*]} failed"
fi
if ! command -v podman-compose >/dev/null 2>&1; then
  python3 -m pip install -q podman-compose >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages podman-compose >/dev/null \
    || fail "pip install podman-compose failed"
  hash -r
  command -v podman-compose >/dev/null 2>&1 || fail "podman-compose installed but not on PATH"
fi

busybox_bin=$(command -v busybox 2>/dev/null || echo /bin/busybox)
image=localhost/vibetrees-busybox:1
if ! podman image exists "$image" 2>/dev/null; then
  root=$(mktemp -d)
  trap 'rm -rf "$root" "$root.tar"' EXIT
  mkdir -p "$root/bin"
  cp "$busybox_bin" "$root/bin/busybox"
  for c in sh sleep echo cat nc httpd true false env ls wget; do ln -s busybox "$root/bin/$c"; done
  tar -C "$root" -cf "$root.tar" .
  podman import -q "$root.tar" "$image" >/dev/null || fail "podman import of $image failed"
fi
podman run --rm "$image" /bin/true || fail "podman cannot run a container ($image /bin/true)"
echo "export CONTAINERS_CONF=$CONTAINERS_CONF"
echo "# image ready: $image (busybox: sh, sleep, httpd, nc ...); compose: podman-compose"
