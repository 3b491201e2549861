#!/usr/bin/env bash
# The packages install and work on a machine without Rust.
#
# Builds everything with .ci/dist.sh (into target/dist-test/, so a release build in dist/ stays),
# then, in fresh temporary folders with cargo, rustc and ~/.cargo/bin removed from PATH and HOME
# pointing at a temporary folder:
# - npm: a new project installs @vibetrees/native and @vibetrees/native-linux-x64-gnu from the
#   tarballs (local files; the registry is an unreachable address), runs the README's Node quick
#   start, ESM and CommonJS, and type-checks a TypeScript consumer against the installed types;
#   without the platform package (or on an unsupported platform) the error names the platform and
#   the supported ones. The musl package needs nothing but musl's libc.
# - Python: a new virtualenv installs the wheel with --no-index and runs the quick start;
#   auditwheel (from PyPI) shows the manylinux2014 tag.
# - C: the tarball, unpacked and moved elsewhere, compiles and links the C quick start with
#   `pkg-config --cflags --libs vibetrees` (shared) and `vibetrees-static`, and runs both.
# - Every package carries the workspace version; the glibc baseline holds (or the fallback says so).
#
# Usage: tests/dist/run.sh   Env: VT_DIST_PROFILE (default dist-ci, see Cargo.toml; `release` for
# the published build). Prints `N passed, N failed`; exits non-zero when anything fails.
set -uo pipefail
# (`producer | grep -c PATTERN >/dev/null`, never `grep -q`, after a producer: grep -q exits at its
# first match, the producer dies of SIGPIPE, and pipefail turns a match into a failure)
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
profile=${VT_DIST_PROFILE:-dist-ci}
out=$root/target/dist-test
work=$(mktemp -d "${TMPDIR:-/tmp}/vt-dist.XXXXXX")
trap 'rm -rf "$work"' EXIT
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  # The packages checked here are the linux-x64 ones; other platforms build theirs in the release
  # workflow (.github/workflows/release.yml).
  echo "dist tests: skipped on $(uname -s)-$(uname -m): they check the linux-x64 packages"
  [ "${CI:-}" = true ] && { echo "dist: 0 passed, 1 failed"; exit 1; }
  echo "dist: 0 passed, 0 failed"; exit 0
fi

passed=0; failed=0; failed_names=()
# check NAME COMMAND...: runs COMMAND with its output in a log; shows the log when it fails.
check() {
  local name=$1 log=$work/check-$((passed + failed)).log; shift
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
    sed -n 's/^note: /     /p' "$log"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "FAIL $name"
    sed 's/^/    /' "$log" | tail -n 40
  fi
}
finish() {
  echo
  [ $failed -gt 0 ] && { echo "failed:"; printf "  %s\n" "${failed_names[@]}"; }
  echo "dist: $passed passed, $failed failed"
  [ $failed = 0 ]
  exit
}

# --- tools these checks use (none is Rust) ---------------------------------------------------------
need_apt=()
command -v readelf >/dev/null || need_apt+=(binutils)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -x /lib/ld-musl-x86_64.so.1 ] || [ "$(uname -m)" != x86_64 ] || need_apt+=(musl)
if [ ${#need_apt[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "dist tests: installing ${need_apt[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"; } >/dev/null 2>&1 \
    || echo "dist tests: apt-get install ${need_apt[*]} failed"
fi
# TypeScript and @types/node for the consumer check: bindings-node's devDependencies (npm).
if [ ! -x bindings-node/node_modules/.bin/tsc ] || [ bindings-node/package-lock.json -nt bindings-node/node_modules/.package-lock.json ]; then
  (cd bindings-node && npm ci --no-audit --no-fund --loglevel=error) || echo "dist tests: npm ci in bindings-node failed"
fi

# --- 1. one version -------------------------------------------------------------------------------
check "versions: npm packages, binding.js and Cargo.toml carry the workspace version $version" .ci/dist.sh --check-versions

versions_mismatch_fails() {
  local tree=$work/version-tree
  mkdir -p "$tree/.ci" "$tree/bindings-node"
  cp .ci/dist.sh "$tree/.ci/"; cp Cargo.toml "$tree/"
  cp -R bindings-node/package.json bindings-node/binding.js bindings-node/npm "$tree/bindings-node/"
  sed -i 's/"version": "[^"]*"/"version": "9.9.9"/' "$tree/bindings-node/npm/darwin-x64/package.json"
  if (cd "$tree" && .ci/dist.sh --check-versions) >"$work/mismatch.out" 2>&1; then
    echo "a platform package with another version passed the check"; return 1
  fi
  cat "$work/mismatch.out"
  grep -q 'bindings-node/npm/darwin-x64/package.json: version 9.9.9' "$work/mismatch.out"
}
check "versions: a package with another version fails the check and is named" versions_mismatch_fails

# --- 2. build ---------------------------------------------------------------------------------------
echo "dist tests: .ci/dist.sh --profile $profile --out target/dist-test"
rm -rf "$out"
t0=$SECONDS
if ! .ci/dist.sh --profile "$profile" --out "$out" 2>&1 | tee "$work/build.log" | grep '^dist:'; then
  tail -n 60 "$work/build.log"; failed=$((failed + 1)); failed_names+=("build"); echo "FAIL build"; finish
fi
echo "dist tests: built in $((SECONDS - t0)) s"
glibc_path=zig
grep -q "this machine's glibc" "$work/build.log" && glibc_path=host

main_tgz=$out/vibetrees-native-$version.tgz
gnu_tgz=$out/vibetrees-native-linux-x64-gnu-$version.tgz
musl_tgz=$out/vibetrees-native-linux-x64-musl-$version.tgz
c_tgz=$out/libvibetrees-$version-x86_64-linux-gnu.tar.gz
sdist=$out/vibetrees_native-$version.tar.gz
wheel=$(ls "$out"/vibetrees_native-"$version"-cp39-abi3-*.whl 2>/dev/null | head -n 1)
tools=$root/target/dist-tools/bin
tsc=$root/bindings-node/node_modules/typescript/bin/tsc
types=$root/bindings-node/node_modules/@types

# --- 3. a machine without Rust ----------------------------------------------------------------------
python=$(python3 -c 'import sys; print(sys.executable)')   # the real interpreter, not a shim
clean_path=
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] || continue
  [ -x "$d/cargo" ] || [ -x "$d/rustc" ] || [ -x "$d/rustup" ] || [[ $d == */.cargo/bin ]] && continue
  clean_path=${clean_path:+$clean_path:}$d
done
export PATH=$clean_path HOME=$work/home npm_config_cache=$work/npm-cache
unset CARGO_HOME RUSTUP_HOME RUSTUP_TOOLCHAIN CARGO_TARGET_DIR RUSTFLAGS
mkdir -p "$HOME"
no_rust() {
  for tool in cargo rustc rustup; do
    if command -v "$tool"; then echo "$tool is still on PATH"; return 1; fi
  done
  for tool in node npm cc pkg-config tar; do command -v "$tool" >/dev/null || { echo "$tool is missing"; return 1; }; done
  echo "note: PATH=$PATH"
}
check "no Rust: cargo, rustc and rustup are not on PATH, HOME is empty" no_rust

# quickstart_output FILE FIRST_LINE: the quick start's output (any language) is right.
quickstart_output() {
  "$python" - "$1" "$2" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines and lines[0] == sys.argv[2], f"first line {lines[:1]} != {sys.argv[2]!r}"
[results] = [l[len("results: "):] for l in lines if l.startswith("results: ")]
assert json.loads(results) == {t: f"{t}: ok" for t in ("scan", "lint", "test", "package")}, results
assert any("ending op-404 (expected) failed [NOT_FOUND]" in l and "op-404" in l for l in lines), lines
[metrics] = [json.loads(l[len("metrics: "):]) for l in lines if l.startswith("metrics: ")]
assert sorted(op["name"] for op in metrics["operations"]) == ["lint", "package", "scan", "test"]
PY
}

# --- 4. npm ------------------------------------------------------------------------------------------
# No registry: an address nothing listens on, and --offline.
npm_offline=(--offline --registry=http://127.0.0.1:9/ --no-audit --no-fund --loglevel=error)
tarball_files() {
  # main: JavaScript and types only; each platform package: exactly one .node
  tar -tzf "$main_tgz" | sort >"$work/main.files"
  if grep '\.node$' "$work/main.files"; then echo "the main package carries a .node file"; return 1; fi
  for f in index.js args.js index.mjs index.d.ts loader.js ports.js binding.js binding.d.ts package.json; do
    grep -qx "package/$f" "$work/main.files" || { echo "package/$f missing from the main package"; return 1; }
  done
  local platform_tgzs=("$gnu_tgz")
  [ $glibc_path = host ] && [ ! -f "$musl_tgz" ] || platform_tgzs+=("$musl_tgz")   # no zig, no musl build
  for t in "${platform_tgzs[@]}"; do
    [ "$(tar -tzf "$t" | grep -c '\.node$')" = 1 ] || { echo "$t does not hold exactly one .node"; tar -tzf "$t"; return 1; }
  done
  tar -xzOf "$main_tgz" package/package.json | node -e '
    const p = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const want = ["linux-x64-gnu","linux-x64-musl","linux-arm64-gnu","linux-arm64-musl","darwin-x64","darwin-arm64"]
      .map((s) => "@vibetrees/native-" + s).sort();
    const got = Object.keys(p.optionalDependencies || {}).sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error("optionalDependencies: " + got);
    for (const v of Object.values(p.optionalDependencies)) if (v !== p.version) throw new Error("optional version " + v);
    if (p.devDependencies || p.scripts) throw new Error("devDependencies or scripts shipped");'
}
check "npm: the main package has no .node, each platform package exactly one, optionalDependencies list all six" tarball_files

app=$work/npm-app
npm_install() {
  mkdir -p "$app"
  printf '{ "name": "consumer", "version": "1.0.0", "private": true, "type": "module" }\n' >"$app/package.json"
  (cd "$app" && npm install "${npm_offline[@]}" "$main_tgz" "$gnu_tgz") || return 1
  for p in native native-linux-x64-gnu; do
    node -e "const v = require('$app/node_modules/@vibetrees/$p/package.json').version;
             if (v !== '$version') throw new Error('@vibetrees/$p ' + v)"
  done
  echo "note: $(cd "$app" && find node_modules/@vibetrees -name '*.node')"
}
check "npm: a new project installs @vibetrees/native + linux-x64-gnu from the tarballs, no registry" npm_install

node_quickstart() {
  cp bindings-node/examples/quickstart.mjs "$app/"
  (cd "$app" && node quickstart.mjs) >"$work/node-quickstart.out" || { cat "$work/node-quickstart.out"; return 1; }
  quickstart_output "$work/node-quickstart.out" "@vibetrees/native $version"
}
check "npm: the README's Node quick start runs ($version)" node_quickstart

node_esm_cjs() {
  cat >"$app/esm.mjs" <<'JS'
import { Profiler, PerformanceOptimizer, WorktreeManager } from '@vibetrees/native';
const p = new Profiler();
const id = p.start('outer');
p.end(p.start('inner', id));
p.end(id);
const opt = new PerformanceOptimizer({ profiler: p, concurrency: 2 });
const r = await opt.runWithDependencies([
  { name: 'a', fn: async () => 20 },
  { name: 'b', dependencies: ['a'], fn: async (d) => d.a + 1 },
]);
console.log(JSON.stringify({ b: r.get('b'), children: p.getResult(id).children.length, steps: WorktreeManager.stepNames.length > 0 }));
JS
  cat >"$app/cjs.cjs" <<'JS'
const { CacheManager, Profiler } = require('@vibetrees/native');
const env = new CacheManager({ cacheDir: require('path').join(__dirname, 'cache') }).getDockerCacheEnv();
try { new Profiler().end('op-1'); } catch (e) { console.log(JSON.stringify({ code: e.code, buildkit: env.DOCKER_BUILDKIT })); }
JS
  local esm cjs
  esm=$(cd "$app" && node esm.mjs) && cjs=$(cd "$app" && node cjs.cjs) || return 1
  [ "$esm" = '{"b":21,"children":1,"steps":true}' ] || { echo "esm: $esm"; return 1; }
  [ "$cjs" = '{"code":"NOT_FOUND","buildkit":"1"}' ] || { echo "cjs: $cjs"; return 1; }
}
check "npm: ESM import and CommonJS require work from the installed package" node_esm_cjs

typescript_consumer() {
  cat >"$app/consumer.mts" <<'TS'
import { Profiler, PerformanceOptimizer, WorktreeManager, CacheManager, type CreateWorktreeResult, type Metrics } from '@vibetrees/native';
const p: Profiler = new Profiler({ maxResults: 10 });
const r = p.end(p.start('x'));
const d: number = r.duration;
const opt = new PerformanceOptimizer({ profiler: p });
const m: Promise<Map<string, any>> = opt.runWithDependencies([{ name: 'a', fn: async () => 1, dependencies: [] }]);
const c = new CacheManager({ cacheDir: '/tmp/x' });
const valid: boolean = c.isCacheValid('/tmp');
async function create(w: WorktreeManager): Promise<string> {
  const res: CreateWorktreeResult = await w.createWorktreeOptimized('feature/x');
  const metrics: Metrics = w.getPerformanceMetrics();
  if (res.success && 'worktree' in res) return res.worktree.path + metrics.totalTime;
  return res.success ? res.path : res.error + res.code;
}
export { d, m, valid, create };
TS
  # and a wrong use must be refused, so the check is not vacuous
  printf "import { Profiler } from '@vibetrees/native';\nconst n: number = new Profiler().start('x');\nexport { n };\n" >"$app/wrong.mts"
  local flags=(--noEmit --strict --module nodenext --moduleResolution nodenext --target es2022 --types node --typeRoots "$types")
  (cd "$app" && node "$tsc" "${flags[@]}" consumer.mts) || return 1
  if (cd "$app" && node "$tsc" "${flags[@]}" wrong.mts) >"$work/wrong.out" 2>&1; then
    echo "tsc accepted a string assigned to a number"; return 1
  fi
  grep -q "TS2322" "$work/wrong.out" || { cat "$work/wrong.out"; return 1; }
  echo "note: $(node "$tsc" --version), types from node_modules/@vibetrees/native/index.d.ts"
}
check "npm: a TypeScript consumer type-checks against the installed types (tsc --strict)" typescript_consumer

missing_platform() {
  local bare=$work/npm-bare
  mkdir -p "$bare" && printf '{ "name": "bare", "version": "1.0.0", "private": true }\n' >"$bare/package.json"
  (cd "$bare" && npm install "${npm_offline[@]}" "$main_tgz") || return 1
  local supported="Supported platforms: linux-x64-gnu, linux-x64-musl, linux-arm64-gnu, linux-arm64-musl, darwin-x64, darwin-arm64."
  # The platform package is missing (optional dependencies omitted, or not installable).
  if (cd "$bare" && node -e "require('@vibetrees/native')") >"$work/missing.out" 2>&1; then echo "loaded without a platform package"; return 1; fi
  grep -q "(@vibetrees/native-linux-x64-gnu) is not installed" "$work/missing.out" && grep -qF "$supported" "$work/missing.out" \
    || { cat "$work/missing.out"; return 1; }
  # A platform without a package: process.arch as riscv64 would report it (set before loading).
  printf "Object.defineProperty(process, 'arch', { value: 'riscv64' });\n" >"$app/riscv64.cjs"
  if (cd "$app" && node -r ./riscv64.cjs -e "require('@vibetrees/native')") >"$work/unsupported.out" 2>&1; then echo "loaded on riscv64"; return 1; fi
  grep -q "has no native binary for this platform (linux-riscv64-gnu)" "$work/unsupported.out" && grep -qF "$supported" "$work/unsupported.out" \
    || { cat "$work/unsupported.out"; return 1; }
  echo "note: $(grep -m1 'is not installed' "$work/missing.out" | cut -c1-150)..."
}
check "npm: without its platform package, or on another platform, the error names the platform and the supported list" missing_platform

musl_package() {
  if [ $glibc_path = host ] && [ ! -f "$musl_tgz" ]; then
    echo "note: zig could not be installed, so no musl package was built"; return 0
  fi
  mkdir -p "$work/musl" && tar -xzf "$musl_tgz" -C "$work/musl"
  local node_file
  node_file=$(ls "$work"/musl/package/*.node)
  readelf -h "$node_file" | grep -c 'DYN' >/dev/null || { echo "not a shared object"; return 1; }
  local needed
  needed=$(readelf -d "$node_file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  echo "note: musl .node needs: $needed"
  for lib in $needed; do
    case $lib in libc.so|libc.musl-*.so.1) ;; *) echo "needs $lib besides musl's libc"; return 1 ;; esac
  done
  # musl's own dynamic linker (Debian's musl package) resolves every symbol but the Node-API ones,
  # which node provides. No musl Node.js can be had here to load it for real (see README).
  if [ -x /lib/ld-musl-x86_64.so.1 ]; then
    /lib/ld-musl-x86_64.so.1 --list "$node_file" >"$work/musl-ldd.out" 2>&1 || true
    local missing
    missing=$(sed -n 's/.*Error relocating .*: \([^:]*\): symbol not found.*/\1/p' "$work/musl-ldd.out" | sort -u)
    [ -n "$missing" ] || { echo "expected the napi_* symbols to be unresolved:"; cat "$work/musl-ldd.out"; return 1; }
    if echo "$missing" | grep -v '^napi_'; then echo "symbols musl's libc lacks (above)"; return 1; fi
    echo "note: musl's dynamic linker resolves all but $(echo "$missing" | wc -l) napi_* symbols (Node provides them)"
  else
    echo "note: no musl dynamic linker here; checked the dynamic section only"
  fi
}
check "npm: the linux-x64-musl package needs nothing but musl's libc" musl_package

# --- 5. Python --------------------------------------------------------------------------------------
wheel_tag() {
  [ -n "$wheel" ] || { echo "no wheel in $out"; ls "$out"; return 1; }
  local name; name=$(basename "$wheel")
  echo "note: $name"
  if [ $glibc_path = zig ]; then
    case $name in
      "vibetrees_native-$version-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl") ;;
      "vibetrees_native-$version-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl") ;;
      *) echo "not the abi3 manylinux2014 wheel"; return 1 ;;
    esac
  fi
  "$tools/auditwheel" show "$wheel" >"$work/auditwheel.out" 2>&1 || { cat "$work/auditwheel.out"; return 1; }
  tr '\n' ' ' <"$work/auditwheel.out" | tr -s ' ' >"$work/auditwheel.flat"
  cat "$work/auditwheel.flat"
  if [ $glibc_path = zig ]; then
    grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' "$work/auditwheel.flat" || return 1
  fi
  echo "note: auditwheel: $(grep -o 'consistent with the following platform tag: "[^"]*"' "$work/auditwheel.flat")"
}
check "python: the abi3 wheel is tagged and audited manylinux2014 (auditwheel show)" wheel_tag

python_wheel() {
  "$python" -m venv "$work/venv" || return 1
  "$work/venv/bin/python" -m pip install -q --no-index --disable-pip-version-check "$wheel" || return 1
  cp bindings-python/examples/quickstart.py "$work/"
  (cd "$work" && "$work/venv/bin/python" quickstart.py) >"$work/py-quickstart.out" || { cat "$work/py-quickstart.out"; return 1; }
  quickstart_output "$work/py-quickstart.out" "vibetrees $version" || return 1
  local v; v=$("$work/venv/bin/python" -c 'import vibetrees; print(vibetrees.__version__)')
  [ "$v" = "$version" ] || { echo "vibetrees.__version__ is $v"; return 1; }
}
check "python: a new virtualenv installs the wheel with --no-index and runs the quick start (__version__ $version)" python_wheel

sdist_contents() {
  tar -tzf "$sdist" >"$work/sdist.files" || return 1
  local top="vibetrees_native-$version"
  for f in PKG-INFO pyproject.toml Cargo.toml Cargo.lock core/Cargo.toml core/src/lib.rs \
           bindings-python/Cargo.toml bindings-python/src/lib.rs python/vibetrees/__init__.py; do
    grep -qx "$top/$f" "$work/sdist.files" || { echo "$top/$f is not in the sdist"; return 1; }
  done
  tar -xzOf "$sdist" "$top/PKG-INFO" | grep -cx "Version: $version" >/dev/null || { echo "PKG-INFO has another version"; return 1; }
  echo "note: $(wc -l <"$work/sdist.files") files; builds with maturin and a Rust toolchain where no wheel fits"
}
check "python: the sdist holds the workspace it builds from, version $version" sdist_contents

# --- 6. C -------------------------------------------------------------------------------------------
c_prefix=$work/elsewhere/libvibetrees
c_tarball() {
  mkdir -p "$work/unpack" "$work/elsewhere" && tar -xzf "$c_tgz" -C "$work/unpack" || return 1
  # Moved after unpacking: the .pc files must find their prefix wherever the tree is.
  mv "$work/unpack/libvibetrees-$version-x86_64-linux-gnu" "$c_prefix" || return 1
  (cd "$c_prefix" && find . \( -type f -o -type l \) | sort)
  for f in include/vibetrees.h lib/libvibetrees.a lib/libvibetrees.so lib/pkgconfig/vibetrees.pc lib/pkgconfig/vibetrees-static.pc; do
    [ -e "$c_prefix/$f" ] || { echo "$f is missing"; return 1; }
  done
  local soname
  soname=$(readelf -d "$c_prefix/lib/libvibetrees.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [ "$soname" = "libvibetrees.so.${version%.*}" ] || { echo "SONAME is '$soname'"; return 1; }
  [ -e "$c_prefix/lib/$soname" ] || { echo "no $soname in lib/"; return 1; }
  local pcv; pcv=$(PKG_CONFIG_PATH=$c_prefix/lib/pkgconfig pkg-config --modversion vibetrees)
  [ "$pcv" = "$version" ] || { echo "vibetrees.pc version $pcv"; return 1; }
  echo "note: SONAME $soname; pkg-config --modversion vibetrees: $pcv"
}
check "c: the tarball unpacks anywhere: lib/libvibetrees.{so,a} (SONAME), include/, relocatable .pc" c_tarball

c_link() {
  local kind=$1 pc=vibetrees exe=$work/example-$1 flags
  [ "$kind" = static ] && pc=vibetrees-static
  flags=$(PKG_CONFIG_PATH=$c_prefix/lib/pkgconfig pkg-config --cflags --libs $pc) || return 1
  echo "note: pkg-config --cflags --libs $pc: $flags"
  cc -Wall -Wextra -Werror tests/c/example.c $flags -o "$exe" || return 1
  # The C quick start reports the expected NOT_FOUND on stderr: stdout first, then stderr.
  LD_LIBRARY_PATH=$c_prefix/lib "$exe" >"$work/c-$kind.out" 2>"$work/c-$kind.err" \
    || { cat "$work/c-$kind.out" "$work/c-$kind.err"; return 1; }
  cat "$work/c-$kind.err" >>"$work/c-$kind.out"
  quickstart_output "$work/c-$kind.out" "libvibetrees $version" || return 1
  if [ "$kind" = shared ]; then
    LD_LIBRARY_PATH=$c_prefix/lib ldd "$exe" | grep -c "libvibetrees.so.${version%.*} => $c_prefix/lib/" >/dev/null \
      || { LD_LIBRARY_PATH=$c_prefix/lib ldd "$exe"; return 1; }
  elif ldd "$exe" | grep -c libvibetrees >/dev/null; then
    echo "the static build still needs libvibetrees.so"; return 1
  fi
}
check "c: the C quick start links with pkg-config vibetrees (shared) and runs" c_link shared
check "c: the C quick start links with pkg-config vibetrees-static and runs" c_link static

c_install_script() {
  bash ffi/install.sh --from-tarball "$c_tgz" --prefix "$work/usr-local" || return 1
  local flags; flags=$(PKG_CONFIG_PATH=$work/usr-local/lib/pkgconfig pkg-config --cflags --libs vibetrees-static) || return 1
  cc tests/c/example.c $flags -o "$work/example-installed" && "$work/example-installed" >/dev/null 2>&1
}
check "c: ffi/install.sh --from-tarball installs it (no cargo needed)" c_install_script

# --- 7. glibc baseline, stripped files, sizes --------------------------------------------------------
baseline() {
  local files=("$app/node_modules/@vibetrees/native-linux-x64-gnu/vibetrees.linux-x64-gnu.node"
               "$c_prefix/lib/libvibetrees.so")
  files+=("$(find "$work/venv" -name '_native*.so' | head -n 1)")
  local highest f v
  for f in "${files[@]}"; do
    [ -f "$f" ] || { echo "missing: $f"; return 1; }
    v=$(readelf -W --version-info "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -n 1)
    [ -n "$v" ] || { echo "$f needs no GLIBC_ symbol version?"; return 1; }
    echo "note: $(basename "$f") needs $v at most"
    highest=$(printf '%s\n%s\n' "${highest:-GLIBC_0}" "$v" | sort -V | tail -n 1)
    if readelf -S -W "$f" | grep -c ' \.symtab ' >/dev/null; then echo "$f is not stripped"; return 1; fi
  done
  if [ $glibc_path = zig ]; then
    [ "$(printf '%s\nGLIBC_2.17\n' "$highest" | sort -V | tail -n 1)" = GLIBC_2.17 ] || { echo "needs $highest > 2.17"; return 1; }
    echo "note: glibc baseline 2.17 (zig): the highest symbol version needed is $highest"
  else
    echo "note: zig could not be installed: built against this machine's glibc, needs $highest"
  fi
}
check "glibc: the linux-gnu binaries need glibc 2.17 at most (manylinux2014) and are stripped" baseline

sizes() {
  local f
  for f in "$gnu_tgz" "$musl_tgz" "$wheel" "$c_tgz" "$main_tgz" "$sdist"; do
    echo "note: $(basename "$f"): $(( $(wc -c <"$f") / 1024 )) KiB"
  done
  echo "note: unpacked: .node $(( $(wc -c <"$app/node_modules/@vibetrees/native-linux-x64-gnu/vibetrees.linux-x64-gnu.node") / 1024 )) KiB, libvibetrees.so $(( $(wc -c <"$c_prefix/lib/libvibetrees.so") / 1024 )) KiB, libvibetrees.a $(( $(wc -c <"$c_prefix/lib/libvibetrees.a") / 1024 )) KiB (profile $profile)"
}
check "sizes (profile $profile)" sizes

finish
