#!/usr/bin/env bash
# Installs libvibetrees (static + shared), include/vibetrees.h and a pkg-config file.
#
# Usage: ffi/install.sh [--prefix DIR] [--debug] [--no-build]
#   --prefix DIR  where to install (default /usr/local): DIR/lib, DIR/include, DIR/lib/pkgconfig
#   --debug       install the debug build (target/debug) instead of the release build
#   --no-build    do not run cargo; install what is already built
# Then: cc app.c $(pkg-config --cflags --libs vibetrees-static)   (static: links libvibetrees.a)
#   or: cc app.c $(pkg-config --cflags --libs vibetrees)          (shared; set an rpath or
#       LD_LIBRARY_PATH to DIR/lib at run time)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
profile=release
build=1
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --debug) profile=debug; shift ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
cd "$root"
if [ $build = 1 ]; then
  if [ $profile = release ]; then cargo build -p vibetrees-ffi --release; else cargo build -p vibetrees-ffi; fi
fi
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
install -m 644 "$target_dir/$profile/libvibetrees.a" "$prefix/lib/"
install -m 755 "$target_dir/$profile/libvibetrees.so" "$prefix/lib/"
install -m 644 include/vibetrees.h "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" ffi/vibetrees.pc.in >"$prefix/lib/pkgconfig/vibetrees.pc"
# vibetrees-static.pc links the archive itself (-lvibetrees would pick the .so when both exist).
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" \
    -e 's|^Libs: .*|Libs: ${libdir}/libvibetrees.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc|' \
    -e '/^Libs.private:/d' ffi/vibetrees.pc.in >"$prefix/lib/pkgconfig/vibetrees-static.pc"
echo "installed libvibetrees $version ($profile) under $prefix"
