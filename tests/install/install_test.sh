#!/usr/bin/env bash
# Install the build in BUILD to a fresh temporary prefix, then compile and run
# a program with nothing but `pkg-config jx` (the installed jx.pc must name
# the prefix the files went to). Exit 77 (skipped) without pkg-config.
set -euo pipefail
BUILD=$1
FLAGS=${2:-}   # e.g. -fsanitize=address,undefined for a sanitizer build
here=$(cd "$(dirname "$0")" && pwd)
command -v pkg-config >/dev/null || { echo "install test: pkg-config missing (apt-get install pkg-config): skipped"; exit 77; }
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$BUILD" --prefix "$tmp/prefix" >/dev/null
pcdir=$(dirname "$(find "$tmp/prefix" -name jx.pc | head -1)")
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_LIBDIR=$pcdir
inc=$(pkg-config --variable=includedir jx)
[ -f "$inc/jx.h" ] || { echo "install test: jx.pc's includedir $inc has no jx.h"; exit 1; }
# shared library
"$CC" -std=c17 -Wall -Wextra -Werror $FLAGS "$here/hello.c" -o "$tmp/hello" $(pkg-config --cflags --libs jx) -lm
LD_LIBRARY_PATH=$(pkg-config --variable=libdir jx) "$tmp/hello"
# static library: --static adds Libs.private (and OpenBLAS when built in)
"$CC" -std=c17 $FLAGS "$here/hello.c" -o "$tmp/hello_static" $(pkg-config --cflags jx) \
  "$(pkg-config --variable=libdir jx)/libjx.a" $(pkg-config --static --libs-only-other --libs-only-l jx | sed 's/-ljx//')
"$tmp/hello_static"
echo "install test: passed (prefix $tmp/prefix)"
