#!/usr/bin/env bash
# Installs libvibetrees (static + shared), include/vibetrees.h and two pkg-config files, from this
# checkout (building it with cargo) or from a release tarball (no Rust toolchain needed).
#
# Usage: ffi/install.sh [--prefix DIR] [--debug] [--no-build] [--lib-dir DIR] [--static-libs LIST]
#        ffi/install.sh --from-tarball libvibetrees-<version>-<target>.tar.gz [--prefix DIR]
#   --prefix DIR        where to install (default /usr/local): DIR/lib, DIR/include, DIR/lib/pkgconfig
#   --debug             install the debug build (target/debug) instead of the release build
#   --no-build          do not run cargo; install what is already built
#   --lib-dir DIR       take libvibetrees.{a,so} from DIR (implies --no-build)
#   --static-libs LIST  the system libraries the static library needs, as `rustc --print
#                       native-static-libs` lists them (default: what this script's build printed,
#                       else the list for this OS)
#   --from-tarball F    install a release tarball (it carries its own relocatable .pc files)
#
# Installs lib/libvibetrees.so.<version> with the symlinks lib/libvibetrees.so.<abi> (the SONAME:
# 0.<minor> while the major version is 0) and lib/libvibetrees.so; on macOS the same as .dylib.
# The .pc files find their prefix from their own folder, so the tree can be moved as a whole.
# Then: cc app.c $(pkg-config --cflags --libs vibetrees-static)   (static: links libvibetrees.a)
#   or: cc app.c $(pkg-config --cflags --libs vibetrees)          (shared; set an rpath or
#       LD_LIBRARY_PATH to DIR/lib at run time)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
profile=release
build=1
lib_dir=
static_libs=
tarball=
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --debug) profile=debug; shift ;;
    --no-build) build=0; shift ;;
    --lib-dir) lib_dir=$2; build=0; shift 2 ;;
    --static-libs) static_libs=$2; shift 2 ;;
    --from-tarball) tarball=$2; shift 2 ;;
    *) echo "ffi/install.sh: unknown option: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

if [ -n "$tarball" ]; then
  # The tarball holds one folder, libvibetrees-<version>-<target>/{lib,include}: copy its content.
  unpack=$(mktemp -d)
  trap 'rm -rf "$unpack"' EXIT
  tar -xzf "$tarball" -C "$unpack"
  top=$(find "$unpack" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [ -f "$top/include/vibetrees.h" ] && [ -f "$top/lib/pkgconfig/vibetrees.pc" ] \
    || { echo "ffi/install.sh: $tarball is not a libvibetrees release tarball" >&2; exit 1; }
  mkdir -p "$prefix/lib" "$prefix/include"
  cp -RP "$top/lib/." "$prefix/lib/"
  cp -RP "$top/include/." "$prefix/include/"
  echo "installed $(basename "$top") under $prefix"
  exit 0
fi

cd "$root"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}
if [ "$major" = 0 ]; then abi="0.$minor"; else abi=$major; fi

if [ $build = 1 ]; then
  # `cargo rustc` builds the same artifacts as `cargo build` and lets rustc print the system
  # libraries the static library needs.
  flags=(-p vibetrees-ffi --lib)
  [ $profile = release ] && flags+=(--release)
  cargo rustc "${flags[@]}" -- --print native-static-libs 2>"${TMPDIR:-/tmp}/vt-install.$$.log" \
    || { cat "${TMPDIR:-/tmp}/vt-install.$$.log" >&2; rm -f "${TMPDIR:-/tmp}/vt-install.$$.log"; exit 1; }
  printed=$(sed -n 's/.*native-static-libs: //p' "${TMPDIR:-/tmp}/vt-install.$$.log" | tail -n 1)
  rm -f "${TMPDIR:-/tmp}/vt-install.$$.log"
  [ -z "$static_libs" ] && static_libs=$printed
fi
if [ -z "$lib_dir" ]; then
  target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  lib_dir=$target_dir/$profile
fi
if [ -z "$static_libs" ]; then
  case $(uname -s) in
    Darwin) static_libs="-lz -liconv -lSystem -lc -lm" ;;
    *) static_libs="-lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc" ;;
  esac
fi

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
install -m 644 "$lib_dir/libvibetrees.a" "$prefix/lib/"
if [ -f "$lib_dir/libvibetrees.dylib" ]; then
  install -m 755 "$lib_dir/libvibetrees.dylib" "$prefix/lib/libvibetrees.$version.dylib"
  ln -sfn "libvibetrees.$version.dylib" "$prefix/lib/libvibetrees.$abi.dylib"
  ln -sfn "libvibetrees.$abi.dylib" "$prefix/lib/libvibetrees.dylib"
else
  install -m 755 "$lib_dir/libvibetrees.so" "$prefix/lib/libvibetrees.so.$version"
  ln -sfn "libvibetrees.so.$version" "$prefix/lib/libvibetrees.so.$abi"
  ln -sfn "libvibetrees.so.$abi" "$prefix/lib/libvibetrees.so"
fi
install -m 644 include/vibetrees.h "$prefix/include/"
sed -e "s|@VERSION@|$version|" -e "s|@NATIVE_STATIC_LIBS@|$static_libs|" ffi/vibetrees.pc.in \
  >"$prefix/lib/pkgconfig/vibetrees.pc"
# vibetrees-static.pc links the archive itself (-lvibetrees would pick the .so when both exist).
sed -e "s|@VERSION@|$version|" -e "s|^Libs: .*|Libs: \${libdir}/libvibetrees.a $static_libs|" \
    -e '/^Libs.private:/d' ffi/vibetrees.pc.in >"$prefix/lib/pkgconfig/vibetrees-static.pc"
echo "installed libvibetrees $version ($profile, ABI $abi) under $prefix"
