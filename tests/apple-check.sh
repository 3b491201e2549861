#!/usr/bin/env bash
# The macOS checks, run on every test run: `cargo clippy -D warnings` (which is `cargo check`
# plus lints) of the whole workspace, all targets (lib, bins, tests, benches, examples), for
# aarch64-apple-darwin and x86_64-apple-darwin. Off macOS, the C dependencies (libgit2, zlib,
# SQLite) are cross-compiled by zig (PyPI `ziglang`) through cc-crate wrappers; on a Mac, Apple's
# clang builds both architectures. Nothing is linked or run here: the release workflow's macOS
# runners run the test suites.
#
# Needs the targets' standard library (`rustup target add`) and, off macOS, zig:
# tests/setup-machine.sh installs both. Without them the check says so and exits 77 (run-all.sh
# reports SKIPPED); with CI=true it fails instead.
# Usage: tests/apple-check.sh [TARGET...]   (default: both Apple targets)
# Output: target/apple (one target dir for both triples: the host's build scripts are shared).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TERM_COLOR=never
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-apple-darwin x86_64-apple-darwin)

skip() {
  echo "SKIP: Apple checks not run: $*"
  if [ "${CI:-}" = true ]; then
    echo "FAIL: the Apple checks are mandatory in CI (run tests/setup-machine.sh)"
    exit 1
  fi
  exit 77
}

installed=$(rustup target list --installed 2>/dev/null) || skip "rustup is missing"
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || skip "the $t standard library is missing (rustup target add $t)"
done

tools="$root/target/apple-tools"
cross_c=false
if [ "$(uname -s)" != Darwin ]; then
  cross_c=true
  # zig: the venv tests/setup-machine.sh makes, else a python that has ziglang
  zig_python=""
  for py in "$root/target/zig-venv/bin/python" python3; do
    if "$py" -m ziglang version >/dev/null 2>&1; then zig_python=$(command -v "$py"); break; fi
  done
  [ -n "$zig_python" ] || skip "zig is missing (pip install ziglang, or tests/setup-machine.sh)"
  # cc-crate wrappers: zig's own -target; the crate's --target=... (clang's spelling) is dropped
  mkdir -p "$tools"
  for t in "${targets[@]}"; do
    {
      echo '#!/bin/sh'
      echo 'for a; do shift; case "$a" in --target=*) ;; *) set -- "$@" "$a" ;; esac; done'
      echo "exec \"$zig_python\" -m ziglang cc -target ${t%%-*}-macos \"\$@\""
    } >"$tools/cc-$t"
    chmod +x "$tools/cc-$t"
  done
  printf '#!/bin/sh\nexec "%s" -m ziglang ar "$@"\n' "$zig_python" >"$tools/ar"
  chmod +x "$tools/ar"
fi

status=0
step() {
  local t0=$SECONDS
  echo "--- $*"
  if ! "$@"; then status=1; echo "FAILED: $*"; fi
  echo "    ($((SECONDS - t0)) s)"
}
for t in "${targets[@]}"; do
  if $cross_c; then
    var=${t//-/_}
    export "CC_$var=$tools/cc-$t" "AR_$var=$tools/ar"
  fi
  common=(--target "$t" --target-dir "$root/target/apple")
  # clippy is `cargo check` plus lints: it type-checks every target it lints, so a separate
  # `cargo check` would check the workspace twice. The one target clippy leaves out is only
  # checked: vibetrees-node's lib *test* target, whose exported functions are dead code under
  # cfg(test) on every platform (napi-derive registers nothing there; the same on Linux).
  step cargo clippy --workspace --all-targets --exclude vibetrees-node "${common[@]}" -- -D warnings
  step cargo clippy -p vibetrees-node --lib --bins --examples "${common[@]}" -- -D warnings
  step cargo check -p vibetrees-node --tests --benches "${common[@]}"
done
[ $status -eq 0 ] && echo "Apple checks passed: ${targets[*]}"
exit $status
