#!/usr/bin/env bash
# Runs every test of vibetrees-native, in every language, on a fresh machine.
# Installs what it needs itself (containers engine, xfsprogs, napi CLI, maturin, pytest, the
# Apple targets and zig) and fails when any suite fails. Usage: ./tests/run-all.sh   (CI=true makes skippable tests mandatory)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TERM_COLOR=never
# A failure in one suite does not hide the others: run all, then report.
declare -a names=() results=()
run_suite() {
  local name=$1; shift
  echo
  echo "=== suite: $name ==="
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  # 77: the suite could not run here and said why (never in CI, where it fails instead)
  case $rc in 0) results+=("ok") ;; 77) results+=("SKIPPED") ;; *) results+=("FAILED") ;; esac
  names+=("$name ($((SECONDS - t0)) s)")
}

# 0. Machine set-up that tests rely on (idempotent). Containers: podman + podman-compose + a local image.
bash tests/setup-machine.sh || { echo "machine set-up failed"; [ "${CI:-}" = true ] && exit 1; }
if [ -f tests/containers.env ]; then set -a; . tests/containers.env; set +a; fi

# Free disk first: a full disk shows up as odd compiler errors, far from the cause.
df -h "$root" | tail -1 | awk '{print "disk: " $4 " free of " $2}'
run_suite "rust: cargo fmt --check" cargo fmt --all -- --check
run_suite "rust: cargo clippy --workspace --all-targets -D warnings" \
  cargo clippy --workspace --all-targets -- -D warnings
run_suite "rust: cargo test --workspace" cargo test --workspace --no-fail-fast
run_suite "macOS: check + clippy for aarch64/x86_64-apple-darwin" tests/apple-check.sh
[ -x tests/c/run.sh ] && run_suite "c: tests/c/run.sh" tests/c/run.sh
[ -x tests/node/run.sh ] && run_suite "node: tests/node/run.sh" tests/node/run.sh
[ -x tests/python/run.sh ] && run_suite "python: tests/python/run.sh" tests/python/run.sh
[ -x tests/dist/run.sh ] && run_suite "dist: tests/dist/run.sh (packages without Rust)" tests/dist/run.sh

echo
echo "=== summary ==="
passed=0; failed=0; skipped=0
for i in "${!names[@]}"; do
  printf '%-8s %s\n' "${results[$i]}" "${names[$i]}"
  case ${results[$i]} in
    ok) passed=$((passed + 1)) ;;
    SKIPPED) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)) ;;
  esac
done
echo "suites: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
