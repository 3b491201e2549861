#!/usr/bin/env bash
# One-time, idempotent machine set-up for the test suites: what no package manifest of ours installs.
# - a container engine (podman, runc, podman-compose, a local busybox image): tests/setup-containers.sh
# - xfsprogs, for the reflink tests on a loop-mounted XFS image
# - exfat-fuse and exfatprogs: a case-insensitive filesystem (exFAT through FUSE on a loop device)
#   for the checkout's case-twins test (worktree_checkout_case.rs)
# - for the macOS checks (tests/apple-check.sh): the aarch64/x86_64-apple-darwin standard
#   libraries (rustup) and zig from PyPI (`ziglang`, in target/zig-venv) as the C cross compiler
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

# macOS checks: the Apple targets' std, and zig (pinned: the version the checks were made with)
apple_targets=(aarch64-apple-darwin x86_64-apple-darwin)
if command -v rustup >/dev/null; then
  missing=$(comm -23 <(printf '%s\n' "${apple_targets[@]}" | sort) <(rustup target list --installed | sort))
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    rustup target add $missing >/dev/null 2>&1 || { echo "setup: cannot add the Rust targets $missing"; status=1; }
  fi
else
  echo "setup: no rustup, the macOS checks will skip"; status=1
fi
zig_venv="$here/../target/zig-venv"
if ! "$zig_venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  { python3 -m venv "$zig_venv" && "$zig_venv/bin/pip" install -q 'ziglang==0.17.1'; } >/dev/null 2>&1 \
    || { echo "setup: cannot install zig (ziglang from PyPI); the macOS checks will skip"; status=1; }
fi
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
