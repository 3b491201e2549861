#!/usr/bin/env bash
# Builds every installable artifact of vibetrees-native into dist/, for machines without Rust:
#   vibetrees-native-<v>.tgz                    npm @vibetrees/native (JavaScript only, no .node)
#   vibetrees-native-<platform>-<v>.tgz         npm @vibetrees/native-<platform> (one .node each)
#   vibetrees_native-<v>-cp39-abi3-<tag>.whl    the Python wheel (abi3: CPython 3.9 and later)
#   vibetrees_native-<v>.tar.gz                 the Python sdist (builds from source, needs Rust)
#   libvibetrees-<v>-<target>.tar.gz            lib/libvibetrees.{so,a}, include/, lib/pkgconfig/
#
# Usage: .ci/dist.sh [--profile NAME] [--target TRIPLE]... [--out DIR] [--host-glibc]
#        .ci/dist.sh --check-versions | --sync-version
#   --profile NAME    cargo profile (default release, the size-tuned one users get)
#   --target TRIPLE   a Rust target (repeatable). Default on Linux: <arch>-unknown-linux-gnu and
#                     <arch>-unknown-linux-musl; on macOS: the host's <arch>-apple-darwin
#   --out DIR         where the artifacts go (default dist/, git-ignored)
#   --host-glibc      link the linux-gnu artifacts against this machine's glibc instead of the
#                     2.17 baseline (what happens anyway when zig cannot be installed)
#   --check-versions  fail unless every package carries the workspace version (root Cargo.toml)
#   --sync-version    write the workspace version into the npm packages and binding.js
#
# Linux gnu artifacts target glibc 2.17 (manylinux2014) through zig (`ziglang` and
# `cargo-zigbuild` from PyPI, in the virtualenv target/dist-tools with maturin and auditwheel).
# Each target's crates build in one cargo invocation, so the core compiles once per target.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

profile=release
out=$root/dist
targets=()
mode=build
host_glibc=0
while [ $# -gt 0 ]; do
  case $1 in
    --profile) profile=$2; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --host-glibc) host_glibc=1; shift ;;
    --check-versions) mode=check; shift ;;
    --sync-version) mode=sync; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "dist: unknown option: $1" >&2; exit 2 ;;
  esac
done
say() { echo "dist: $*"; }

# --- one version ------------------------------------------------------------------------------
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "dist: no [workspace.package] version in Cargo.toml" >&2; exit 1; }

# Checks (or, with `sync`, rewrites) every copy of the version: the workspace's dependency on the
# core, the npm main and platform packages, and the version checks napi generated in binding.js.
# Python (maturin reads Cargo.toml) and C (vt_version, the .pc file) take it from cargo directly.
versions() {
  node - "$1" "$version" <<'JS'
const fs = require('fs');
const path = require('path');
const [mode, version] = process.argv.slice(2);
const wrong = [];
const json = (file, edit) => {
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (pkg.version !== version) {
    wrong.push(`${file}: version ${pkg.version}`);
    if (mode === 'sync') fs.writeFileSync(file, JSON.stringify({ ...pkg, version }, null, 2) + '\n');
  }
};
json('bindings-node/package.json');
for (const dir of fs.readdirSync('bindings-node/npm')) json(path.join('bindings-node/npm', dir, 'package.json'));
const cargo = fs.readFileSync('Cargo.toml', 'utf8');
const dep = /^vibetrees-core = \{[^}]*version = "([^"]*)"/m.exec(cargo);
if (!dep || dep[1] !== version) {
  wrong.push(`Cargo.toml: [workspace.dependencies] vibetrees-core version ${dep && dep[1]}`);
  if (mode === 'sync' && dep) fs.writeFileSync('Cargo.toml', cargo.replace(dep[0], dep[0].replace(`"${dep[1]}"`, `"${version}"`)));
}
const loader = fs.readFileSync('bindings-node/binding.js', 'utf8');
const expected = new Set([...loader.matchAll(/bindingPackageVersion !== '([^']*)'/g)].map((m) => m[1]));
if (expected.size !== 1 || !expected.has(version)) {
  wrong.push(`bindings-node/binding.js: checks for version ${[...expected].join(', ')}`);
  if (mode === 'sync') {
    let text = loader;
    for (const old of expected) text = text.split(`'${old}'`).join(`'${version}'`).split(`expected ${old} but`).join(`expected ${version} but`);
    fs.writeFileSync('bindings-node/binding.js', text);
  }
}
if (mode === 'sync') {
  console.log(wrong.length ? `set ${version} in:\n  ${wrong.join('\n  ')}` : `every package already has ${version}`);
} else if (wrong.length) {
  console.error(`dist: the workspace version is ${version} (root Cargo.toml), but:\n  ${wrong.join('\n  ')}\n` +
    'Run .ci/dist.sh --sync-version.');
  process.exit(1);
} else {
  console.log(`dist: every package has version ${version}`);
}
JS
}
case $mode in
  check) versions check; exit ;;
  sync) versions sync; exit ;;
esac
versions check

# --- targets and tools -------------------------------------------------------------------------
host_arch=$(uname -m); [ "$host_arch" = arm64 ] && host_arch=aarch64
if [ ${#targets[@]} = 0 ]; then
  case $(uname -s) in
    Linux) targets=("$host_arch-unknown-linux-gnu" "$host_arch-unknown-linux-musl") ;;
    Darwin) targets=("$host_arch-apple-darwin") ;;
    *) echo "dist: $(uname -s) is not supported (the core needs a Unix: see README)" >&2; exit 1 ;;
  esac
fi

# Build tools from PyPI, pinned, in one virtualenv (git-ignored): maturin, zig, cargo-zigbuild,
# auditwheel. zig is only needed for Linux targets.
tools=$root/target/dist-tools
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
[ -x "$tools/bin/python" ] || python3 -m venv "$tools"
"$tools/bin/python" -m pip install -q "maturin==1.16.0" "auditwheel==6.8.2" \
  || { echo "dist: cannot install maturin from PyPI" >&2; exit 1; }
zig=0
if [[ " ${targets[*]} " == *linux* ]] && [ $host_glibc = 0 ]; then
  if "$tools/bin/python" -m pip install -q "ziglang==0.15.2" "cargo-zigbuild==0.24.1"; then
    zig=1
  else
    say "zig or cargo-zigbuild cannot be installed: linux-gnu artifacts use this machine's glibc"
  fi
fi
export PATH="$tools/bin:$PATH"
# zlib is compiled in (libz-sys's copy) rather than linked from the system: no libz.so.1 needed.
export LIBZ_SYS_STATIC=1

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$target_dir/dist-stage
rm -rf "$stage"
mkdir -p "$stage"

# `linux-x64-gnu`, `darwin-arm64`, ...: napi-rs's name for a target (its npm/ folder).
napi_platform() {
  local cpu=${1%%-*} arch
  case $cpu in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$cpu ;; esac
  case $1 in
    *-apple-darwin) echo "darwin-$arch" ;;
    *-linux-gnu) echo "linux-$arch-gnu" ;;
    *-linux-musl) echo "linux-$arch-musl" ;;
  esac
}

# The highest GLIBC_ symbol version an ELF file needs (empty for musl and macOS files).
glibc_needed() {
  readelf -W --version-info "$1" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -n 1
}

# npm pack of a staged package folder into $out.
npm_pack() {
  (cd "$1" && npm pack --silent --pack-destination "$out" >/dev/null)
}

# The system libraries a static library built for $1 needs: the standard library's (what rustc
# prints for an empty staticlib) and those the build scripts asked to link dynamically ($2, the
# cargo JSON messages of the build).
native_static_libs() {
  local std
  std=$(echo '' | rustc --target "$1" --crate-type staticlib --crate-name vt_probe --edition 2021 \
        -o "$stage/vt_probe.a" --print native-static-libs - 2>&1 | sed -n 's/.*native-static-libs: //p')
  node - "$2" "$std" <<'JS'
const fs = require('fs');
const [json, std] = process.argv.slice(2);
const libs = [];
for (const line of fs.readFileSync(json, 'utf8').split('\n')) {
  if (!line.startsWith('{')) continue;
  const msg = JSON.parse(line);
  for (const lib of (msg.reason === 'build-script-executed' && msg.linked_libs) || []) {
    const [kind, name] = lib.includes('=') ? lib.split('=') : ['dylib', lib];
    if (kind === 'dylib') libs.push(`-l${name}`);
    if (kind === 'framework') libs.push(`-framework ${name}`);
  }
}
console.log([...new Set([...libs, ...std.split(/\s+/).filter(Boolean)])].join(' '));
JS
}

# The files cargo built for a library target ($2) of the JSON messages $1, one a line.
artifacts() {
  node -e '
    for (const line of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
      if (!line.startsWith("{")) continue;
      const msg = JSON.parse(line);
      if (msg.reason === "compiler-artifact" && msg.target.name === process.argv[2]) console.log(msg.filenames.join("\n"));
    }' "$1" "$2"
}

build_target() {
  local target=$1 platform cargo_target=$1 build=(cargo build) wheel_flags=() packages=(-p vibetrees-node -p vibetrees-ffi)
  platform=$(napi_platform "$target")
  case $target in
    *-linux-gnu)
      if [ $zig = 1 ]; then
        cargo_target=$target.2.17
        build=(cargo-zigbuild zigbuild)
        wheel_flags=(--zig --compatibility manylinux_2_17)
        say "$target: glibc 2.17 baseline (zig $(python3 -m ziglang version), cargo-zigbuild)"
      else
        say "$target: linked against this machine's glibc $(ldd --version | head -n 1 | grep -o '[0-9.]*$') (no 2.17 baseline)"
      fi ;;
    *-linux-musl)
      [ $zig = 1 ] || { say "$target skipped: it needs zig (a musl linker), which could not be installed"; return 0; }
      rustup target list --installed 2>/dev/null | grep -cx "$target" >/dev/null || rustup target add "$target"
      build=(cargo-zigbuild zigbuild)
      packages=(-p vibetrees-node)
      # A Node addon is a shared object that links musl's libc dynamically (the target's default,
      # crt-static, makes no cdylib). Set for this target only, so the gnu build is unaffected.
      export "CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_RUSTFLAGS=-C target-feature=-crt-static"
      say "$target: musl libc, linked dynamically" ;;
    *-apple-darwin)
      rustup target list --installed 2>/dev/null | grep -cx "$target" >/dev/null || rustup target add "$target" ;;
  esac

  # The Node addon and the C library in one cargo run: the core compiles once for both.
  local json=$stage/cargo-$target.json
  "${build[@]}" --target "$cargo_target" --profile "$profile" "${packages[@]}" \
    --message-format=json-render-diagnostics >"$json"

  # Node: exactly one .node in the platform package.
  local pkg_dir=$stage/npm/$platform node_file
  mkdir -p "$stage/npm"
  cp -R "bindings-node/npm/$platform" "$pkg_dir"
  node_file=$(node -p "require('$pkg_dir/package.json').main")
  cp "$(artifacts "$json" vibetrees_node | grep -E '\.(so|dylib)$')" "$pkg_dir/$node_file"
  npm_pack "$pkg_dir"
  [[ $target == *-linux-musl ]] && return 0

  # C: the shared and static library (debug info stripped: it is most of the archive), the
  # header, relocatable .pc files naming the system libraries the static library needs.
  local built c_name c_dir
  built=$(dirname "$(artifacts "$json" vibetrees | grep '\.a$')")
  c_name=libvibetrees-$version-${target%%-*}-$(case $target in *-apple-darwin) echo apple-darwin ;; *) echo linux-gnu ;; esac)
  c_dir=$stage/c/$c_name
  bash ffi/install.sh --prefix "$c_dir" --lib-dir "$built" \
    --static-libs "$(native_static_libs "$target" "$json")" >/dev/null
  case $target in *-apple-darwin) strip -S "$c_dir/lib/libvibetrees.a" ;; *) strip --strip-debug "$c_dir/lib/libvibetrees.a" ;; esac
  tar -C "$stage/c" -czf "$out/$c_name.tar.gz" "$c_name"

  # Python: the abi3 wheel. maturin runs cargo itself, with its own zig set-up: in a target folder
  # of its own, or each build would invalidate the other's (cargo tracks the linker).
  maturin build --quiet -m bindings-python/Cargo.toml --profile "$profile" --target "$target" \
    --target-dir "$target_dir/dist-python" "${wheel_flags[@]}" --out "$out"
}

t0=$SECONDS
for target in "${targets[@]}"; do build_target "$target"; done

# The main npm package: JavaScript and types only; npm installs the platform packages through
# optionalDependencies, added here as `napi pre-publish` would (so `npm ci` in bindings-node never
# asks the registry for them).
main=$stage/npm/main
mkdir -p "$main"
for f in $(node -p "require('./bindings-node/package.json').files.join(' ')"); do cp "bindings-node/$f" "$main/"; done
node - "$main/package.json" <<'JS'
const fs = require('fs');
const pkg = require(process.cwd() + '/bindings-node/package.json');
const platforms = fs.readdirSync('bindings-node/npm').map((dir) => require(`${process.cwd()}/bindings-node/npm/${dir}/package.json`).name);
pkg.optionalDependencies = Object.fromEntries(platforms.sort().map((name) => [name, pkg.version]));
delete pkg.devDependencies;
delete pkg.scripts;
fs.writeFileSync(process.argv[2], JSON.stringify(pkg, null, 2) + '\n');
JS
npm_pack "$main"
maturin sdist -m bindings-python/Cargo.toml --out "$out" >"$stage/sdist.log" 2>&1 || { cat "$stage/sdist.log" >&2; exit 1; }

# --- report ------------------------------------------------------------------------------------
say "built in $((SECONDS - t0)) s (profile $profile) into $out:"
(cd "$out" && for f in *; do
  [ -f "$f" ] || continue
  printf '  %-72s %6s KiB\n' "$f" $(( $(wc -c <"$f") / 1024 ))
done)
for f in "$stage"/npm/linux-*-gnu/*.node "$stage"/c/*/lib/libvibetrees.so.*.*.*; do
  [ -f "$f" ] && [ ! -L "$f" ] && say "$(basename "$f") needs glibc symbols up to $(glibc_needed "$f")"
done
sum=(sha256sum); command -v sha256sum >/dev/null || sum=(shasum -a 256)
(cd "$out" && rm -f SHA256SUMS && "${sum[@]}" -- * >"$stage/SHA256SUMS" && mv "$stage/SHA256SUMS" SHA256SUMS)
