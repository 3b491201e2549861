#!/usr/bin/env bash
# One-time, idempotent machine set-up for the test suites: what no package manifest of ours installs.
# - a container engine (podman, runc, podman-compose, a local busybox image): tests/setup-containers.sh
# - xfsprogs, for the reflink tests on a loop-mounted XFS image
# - exfat-fuse and exfatprogs: a case-insensitive filesystem (exFAT through FUSE on a loop device)
#   for the checkout's case-twins test (worktree_checkout_case.rs)
# Writes tests/containers.env (CONTAINERS_CONF=...) for the suites. Needs root for apt; without it,
# tests that need these tools skip with a message (never in CI).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
status=0
apt_install() {
  [ "$(id -u)" = 0 ] || { echo "setup: not root, cannot apt-get install $*"; return 1; }
  if [ -z "${VT_APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null 2>&1; export VT_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v mkfs.xfs >/dev/null || apt_install xfsprogs || status=1
{ command -v mount.exfat-fuse && command -v mkfs.exfat; } >/dev/null || apt_install exfat-fuse exfatprogs || status=1
if [ -f "$here/setup-containers.sh" ]; then
  if out=$(bash "$here/setup-containers.sh"); then
    echo "$out" | sed -n 's/^export //p' > "$here/containers.env"
    echo "setup: containers ready ($(tr '\n' ' ' < "$here/containers.env"))"
  else
    echo "setup: no container engine could be set up; container tests will skip (except in CI)"
    rm -f "$here/containers.env"
    status=1
  fi
fi
exit $status
