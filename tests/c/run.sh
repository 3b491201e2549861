#!/usr/bin/env bash
# C tests of the vibetrees C ABI (include/vibetrees.h + libvibetrees).
#
# Builds the ffi crate, compiles every tests/c/test_*.c and tests/c/example.c (the example that
# README.md shows verbatim) with `gcc -Wall -Wextra -Werror -fsanitize=address,undefined` against
# the static library, and runs each with leak checking on. Prints `N passed, N failed` and exits
# non-zero when any test fails. If AddressSanitizer cannot run here, the tests are built without
# sanitizers and run under `valgrind --error-exitcode` instead (the log says which).
#
# Usage: tests/c/run.sh [name-filter]      e.g. tests/c/run.sh profiler
#        VT_C_TESTS_MODE=valgrind tests/c/run.sh   forces the valgrind mode
# Needs: cargo, gcc, zlib headers, git, npm (installed with apt-get when missing and running as root).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
filter=${1:-}

# --- tools -----------------------------------------------------------------------------------
need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc libc6-dev)
command -v g++ >/dev/null || need_apt+=(g++)
command -v git >/dev/null || need_apt+=(git)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v npm >/dev/null || need_apt+=(npm)
[ -e /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "c tests: installing ${need_apt[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null \
      || { echo "c tests: apt-get install ${need_apt[*]} failed"; exit 1; }
  else
    echo "c tests: missing ${need_apt[*]} (install them, or run as root so this script can)"; exit 1
  fi
fi

# --- library ---------------------------------------------------------------------------------
echo "c tests: cargo build -p vibetrees-ffi"
cargo build -p vibetrees-ffi --quiet || { echo "c tests: cargo build failed"; echo "0 passed, 1 failed"; exit 1; }
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lib="$target_dir/debug/libvibetrees.a"
[ -f "$lib" ] || { echo "c tests: $lib not found"; echo "0 passed, 1 failed"; exit 1; }
# What `rustc --print native-static-libs` lists for this crate on Linux.
native_libs=(-lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

work=$(mktemp -d "${TMPDIR:-/tmp}/vt-ctests.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the README's example must be the file we test ----------------------------------------------
docs_ok=1
if ! python3 - "$root/README.md" "$root/tests/c/example.c" <<'PY'
import sys
doc, example = open(sys.argv[1]).read(), open(sys.argv[2]).read()
start = doc.find("<!-- quickstart:c begin -->")
end = doc.find("<!-- quickstart:c end -->")
if start < 0 or end < 0:
    sys.exit("README.md: the quickstart:c markers are missing")
block = doc[start:end]
code = block[block.index("```c\n") + 5 : block.rindex("```")]
if code != example:
    sys.exit("README.md: the C quick start differs from tests/c/example.c (keep them identical)")
PY
then docs_ok=0; fi

# --- sanitizers or valgrind ---------------------------------------------------------------------
cflags=(-std=c11 -g -O1 -Wall -Wextra -Werror -I "$root/include" -I "$root/tests/c")
san=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
# fast_unwind_on_malloc=0: full stacks through Rust frames (needed by the suppressions, better reports).
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/c/lsan.supp:print_suppressions=0"
mode=asan
printf '#include <stdlib.h>\nint main(void){ void *p = malloc(8); free(p); return 0; }\n' >"$work/probe.c"
printf '#include <stdlib.h>\nvoid *keep; int main(void){ keep = malloc(8); keep = 0; return 0; }\n' >"$work/leak.c"
[ "${VT_C_TESTS_MODE:-}" = valgrind ] && echo "VT_C_TESTS_MODE=valgrind asked for valgrind" >"$work/probe.log"
if [ "${VT_C_TESTS_MODE:-}" != valgrind ] \
   && gcc "${san[@]}" "$work/probe.c" -o "$work/probe" 2>"$work/probe.log" && "$work/probe" >>"$work/probe.log" 2>&1 \
   && gcc "${san[@]}" "$work/leak.c" -o "$work/leak" 2>>"$work/probe.log" && ! "$work/leak" >>"$work/probe.log" 2>&1 \
   && grep -q "LeakSanitizer: detected memory leaks" "$work/probe.log"; then
  echo "c tests: AddressSanitizer + UndefinedBehaviorSanitizer, leak checks on"
else
  mode=valgrind
  san=()
  command -v valgrind >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq valgrind >/dev/null; }
  echo "c tests: AddressSanitizer/LeakSanitizer cannot run here ($(tail -n 3 "$work/probe.log" | tr '\n' ' '));"
  echo "c tests: falling back to valgrind --error-exitcode=97 --leak-check=full"
fi

# --- run ---------------------------------------------------------------------------------------
passed=0
failed=0
failed_names=()
if [ $docs_ok = 1 ]; then passed=$((passed + 1)); echo "ok   README.md C quick start == tests/c/example.c"
else failed=$((failed + 1)); failed_names+=("docs-example"); echo "FAIL README.md C quick start == tests/c/example.c"; fi

# The header alone: strict C99 and C++17 (its extern "C" block), linked and called from C++.
if [ -z "$filter" ] || [[ header == *"$filter"* ]]; then
  printf '#include "vibetrees.h"\nint main() { vt_result r = vt_profiler_new(nullptr, nullptr);\n  return r == VT_NULL_ARGUMENT && vt_last_error_code() == VT_NULL_ARGUMENT ? 0 : 1; }\n' >"$work/header.cpp"
  if gcc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only -I "$root/include" -x c "$root/include/vibetrees.h" >"$work/header.log" 2>&1 \
     && g++ -std=c++17 -Wall -Wextra -Werror -I "$root/include" "$work/header.cpp" "$lib" "${native_libs[@]}" -o "$work/header-cpp" >>"$work/header.log" 2>&1 \
     && "$work/header-cpp" >>"$work/header.log" 2>&1; then
    passed=$((passed + 1)); echo "ok   header: C99 -pedantic, and C++17 calling the library"
  else
    failed=$((failed + 1)); failed_names+=("header"); echo "FAIL header"; sed 's/^/    /' "$work/header.log" | tail -n 30
  fi
fi

for src in "$root"/tests/c/test_*.c "$root"/tests/c/example.c; do
  name=$(basename "$src" .c)
  [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
  exe="$work/$name"
  log="$work/$name.log"
  if ! gcc "${cflags[@]}" "${san[@]}" "$src" "$lib" "${native_libs[@]}" -o "$exe" >"$log" 2>&1; then
    echo "FAIL $name (does not compile)"; cat "$log"
    failed=$((failed + 1)); failed_names+=("$name"); continue
  fi
  # Each test gets its own HOME (never the real ~/.vibetrees) and scratch folder.
  home="$work/home-$name"; mkdir -p "$home"
  run=("$exe")
  [ $mode = valgrind ] && run=(valgrind -q --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite \
      --suppressions="$root/tests/c/valgrind.supp" "$exe")
  t0=$(date +%s.%N)
  HOME="$home" VT_TEST_TMP="$work" timeout 300 "${run[@]}" >"$log" 2>&1
  rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  # A test program must print `ok` lines and no `not ok`; the example only has to succeed.
  if [ $rc = 0 ] && { [ "$name" = example ] || grep -q '^ok ' "$log"; } && ! grep -q '^not ok ' "$log"; then
    passed=$((passed + 1))
    echo "ok   $name ($(grep -c '^ok ' "$log") checks, ${secs}s)"
  else
    failed=$((failed + 1)); failed_names+=("$name")
    echo "FAIL $name (exit $rc)"; sed 's/^/    /' "$log" | tail -n 80
  fi
done

# --- install layout: pkg-config (static) and the shared library --------------------------------
# (ldd's output goes to a file before grep -q reads it: with pipefail, `ldd | grep -q` fails when
# grep exits at its first match and ldd dies of SIGPIPE)
if [ -z "$filter" ] || [[ install == *"$filter"* ]]; then
  prefix="$work/prefix"
  if bash "$root/ffi/install.sh" --prefix "$prefix" --debug --no-build >"$work/install.log" 2>&1 \
     && flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs vibetrees-static) \
     && gcc -Wall -Wextra -Werror "$root/tests/c/example.c" $flags -o "$work/example-pc" >>"$work/install.log" 2>&1 \
     && ldd "$work/example-pc" >"$work/ldd-pc.txt" && ! grep -q libvibetrees "$work/ldd-pc.txt" \
     && HOME="$work" "$work/example-pc" >>"$work/install.log" 2>&1 \
     && gcc -Wall -Wextra -Werror -I "$prefix/include" "$root/tests/c/example.c" -L "$prefix/lib" -lvibetrees \
          -o "$work/example-so" >>"$work/install.log" 2>&1 \
     && HOME="$work" LD_LIBRARY_PATH="$prefix/lib" "$work/example-so" >>"$work/install.log" 2>&1 \
     && LD_LIBRARY_PATH="$prefix/lib" ldd "$work/example-so" >"$work/ldd-so.txt" \
     && grep -q "$prefix/lib/libvibetrees.so" "$work/ldd-so.txt"; then
    passed=$((passed + 1)); echo "ok   install: ffi/install.sh; example linked via pkg-config vibetrees-static and via vibetrees (shared)"
  else
    failed=$((failed + 1)); failed_names+=("install"); echo "FAIL install"; sed 's/^/    /' "$work/install.log" | tail -n 30
  fi
fi

echo
[ $failed -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "c: $passed passed, $failed failed"
[ $failed = 0 ]
