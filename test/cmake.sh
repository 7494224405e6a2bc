#!/bin/sh
# SPDX-License-Identifier: MIT
# find_package(libchan) against an installed tree: make install into a temporary prefix, then
# CMake configures and builds test/cmake/ (an example with libchan::chan and with
# libchan::chan_static, a program that runs Gs with libchan::mpg and libchan::mpg_static) and
# each program runs (the shared ones through the RPATH CMake gives them). Also: a request for
# another major version is refused. Part of `make test` (cmake-check).
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
make=${MAKE:-make}
fail() { echo "cmake: $*"; exit 1; }
command -v cmake >/dev/null || fail "cmake is not installed (scripts/deps.sh test installs it)"
$make --no-print-directory -s install PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install failed"; }
cmake -S test/cmake -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 ||
    { cat "$tmp/configure.log"; fail "configure failed"; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build failed"; }
LC_ALL=C sort examples/expected/pipeline.out > "$tmp/want"
for kind in shared static; do
    "$tmp/build/pipeline_$kind" 2>/dev/null | LC_ALL=C sort | cmp -s - "$tmp/want" ||
        fail "pipeline_$kind: output differs from examples/expected/pipeline.out"
    got=$(timeout 60 "$tmp/build/gs_$kind") || fail "gs_$kind failed"
    [ "$got" = "100 5050 0 0 0" ] || fail "gs_$kind printed '$got'"
done
if ldd "$tmp/build/gs_static" | grep -q libchan; then fail "gs_static links libchan.so"; fi
ldd "$tmp/build/gs_shared" | grep -q "libchan_mpg.so.* => $prefix" || fail "gs_shared: no libchan_mpg.so"
# A config of another major version is not taken.
mkdir -p "$tmp/v2"
printf 'cmake_minimum_required(VERSION 3.13)\nproject(v2 C)\nfind_package(libchan 2 REQUIRED)\n' \
    > "$tmp/v2/CMakeLists.txt"
if cmake -S "$tmp/v2" -B "$tmp/v2/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
    fail "find_package(libchan 2) accepted libchan $($make --no-print-directory -s print-version)"
fi
echo "cmake: find_package(libchan) built libchan::chan, chan_static, mpg, mpg_static programs;" \
     "each ran; version 2 refused: 5 passed, 0 failed"
