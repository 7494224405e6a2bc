#!/bin/sh
# SPDX-License-Identifier: MIT
# find_package(libchan) against an installed tree: make install into a temporary prefix, then
# CMake configures and builds test/cmake/ (an example with libchan::chan and with
# libchan::chan_static, a program that runs Gs with libchan::mpg and libchan::mpg_static) and
# each program runs (the shared ones through the RPATH CMake gives them). Also: which versions
# find_package takes, exact, compatible, too new, another major, ranges, of the installed
# libchan and of a 1.3.0. Part of `make test` (cmake-check).
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
# Which versions find_package takes (cmake/libchan-config-version.cmake.in, CMake's own
# SameMajorVersion rule): one configure of a project that asks for each, printing whether it
# found libchan. accepts PREFIX REQUEST...: the requests it took, one a line; a request's spaces
# are written %.
accepts() {
    p=$1
    shift
    rm -rf "$tmp/ver"
    mkdir -p "$tmp/ver"
    {
        echo 'cmake_minimum_required(VERSION 3.19)'
        echo 'project(ver C)'
        for r; do
            echo "find_package(libchan $(echo "$r" | tr % ' ') QUIET)"
            echo "if(libchan_FOUND)"
            echo "  message(STATUS \"took $r\")"
            echo "endif()"
            echo 'unset(libchan_DIR CACHE)'
        done
    } > "$tmp/ver/CMakeLists.txt"
    cmake -S "$tmp/ver" -B "$tmp/ver/build" -DCMAKE_PREFIX_PATH="$p" >"$tmp/ver.log" 2>&1 ||
        { cat "$tmp/ver.log"; fail "the version project failed to configure"; }
    sed -n 's/^-- took //p' "$tmp/ver.log"
}
# expect PREFIX WANTED REQUESTS NAME: fails unless find_package took exactly WANTED of REQUESTS
# (lists, a space between requests) from the libchan NAME installed in PREFIX.
expect() {
    # shellcheck disable=SC2086
    got=$(accepts "$1" $3 | tr '\n' ' ')
    [ "$got" = "$2 " ] || fail "libchan $4: find_package took '$got', want '$2 '"
}
version=$($make --no-print-directory -s print-version)
major=${version%%.*} minor=${version#*.}
minor=${minor%%.*}
# The installed libchan: exact, compatible, too new, another major, a range containing it and
# one of another major.
expect "$prefix" "$version%EXACT $major.0 $major $major.0...<$((major + 1)).0 $major.0...$version" \
    "$version%EXACT $major.0 $major $major.$((minor + 1)) $((major + 1)) \
     $major.0...<$((major + 1)).0 $major.0...$version $((major + 1)).0...<$((major + 2)).0" \
    "$version"
# A 1.3.0 (the version file alone, as make install writes it for that version), whose
# neighbours on either side are of its major version: ranges excluding it by their top, or
# spanning two majors (refused, as CMake's rule refuses them), and their other cases.
$make --no-print-directory -s install-cmake VERSION=1.3.0 SOMAJOR=1 PREFIX="$tmp/v13" \
    >"$tmp/v13.log" 2>&1 || { cat "$tmp/v13.log"; fail "make install-cmake VERSION=1.3.0 failed"; }
expect "$tmp/v13" "1.3.0%EXACT 1.3 1.2 1 1.0...<2.0 1.0...<2 1.2...1.3 1.0...1.9 1.3...<1.3.1" \
    "1.3.0%EXACT 1.3%EXACT 1.2%EXACT 1.3 1.2 1 1.4 2 0.9 1.0...<2.0 1.0...<2 1.2...1.3 \
     1.0...1.9 1.3...<1.3.1 1.0...<1.3 1.0...1.2 1.4...<2.0 1.0...<3.0 1.0...2.0 1.0...<2.1 \
     0.9...<2.0" 1.3.0
echo "cmake: find_package(libchan) built libchan::chan, chan_static, mpg, mpg_static programs;" \
     "each ran; versions: 8 requests of the installed $version and 21 of a 1.3.0 taken or" \
     "refused as CMake's SameMajorVersion rule says: 3 passed, 0 failed"
