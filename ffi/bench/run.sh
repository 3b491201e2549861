#!/usr/bin/env bash
# Micro-benchmark of the C ABI (release build): ffi/bench/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build -p vibetrees-ffi --release --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -std=c11 -O2 -Wall -Wextra -Werror -I include ffi/bench/bench_ffi.c "$target_dir/release/libvibetrees.a" \
  -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o "$out/bench_ffi"
"$out/bench_ffi" "$@"
