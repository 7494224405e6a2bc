#!/bin/sh
# SPDX-License-Identifier: MIT
# test/deps.sh - on a fresh Debian machine `make test` installs what it needs itself
# (scripts/deps.sh build test docs play): every tool, header, library and module its checks
# use comes from one of those packages, from a package they depend on (apt's closure), or
# from an essential one. A check that finds its tool missing must not pass by skipping it:
# a green run on a machine that happens to have the tool installed would hide the gap.
# Each item below is looked up where Debian installs it (not on PATH, which may hold other
# copies) and its package asked of dpkg. Part of `make test` (deps-check, plain).
set -eu
fail=0 n=0
listed=$(sh scripts/deps.sh --list build test docs play)
# shellcheck disable=SC2086
closure=$(apt-cache depends --recurse --installed --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances $listed 2>/dev/null |
    sed -n 's/^\([^ <][^:]*\).*/\1/p' | sort -u)
arch=$(uname -m)
inc() { printf '#include <%s>\n' "$1" | gcc -M -x c - 2>/dev/null | tr ' \\' '\n\n' |
        grep "/$1\$" | head -n 1; }

# kind:name - the tools the checks call (test/*.sh, man/*.sh, the .mk files), the headers and
# libraries the build and tests compile and link with, the runtimes of the sanitizer builds,
# and the Python module of the browser test.
items="bin:gcc bin:g++ bin:clang bin:clang++ bin:make bin:pkg-config bin:ar bin:ld bin:nm bin:objcopy bin:objdump
       bin:readelf bin:cmake bin:clang-format bin:python3 bin:mandoc bin:man bin:col bin:chromium
       bin:chromedriver inc:check.h inc:hwloc.h inc:urcu/arch.h inc:urcu/futex.h
       lib:libcheck.a lib:libsubunit.so lib:libhwloc.so lib:libasan.so lib:libubsan.so
       lib:libc.a lib:libhwloc.a clang:libclang_rt.tsan-$arch.a py:selenium/__init__.py"
for item in $items; do
    kind=${item%%:*} name=${item#*:}
    case $kind in
    bin) path=/usr/bin/$name ;;
    inc) path=$(inc "$name") ;;
    lib) path=$(gcc -print-file-name="$name") ;;
    clang) path=$(clang -print-file-name="$name") ;;
    py) path=/usr/lib/python3/dist-packages/$name ;;
    esac
    n=$((n + 1))
    if [ -z "$path" ] || [ ! -e "$path" ]; then
        echo "deps: $name: not found on this machine (${path:-no path})"; fail=1; continue
    fi
    owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true)
    pkg=$(echo "$owner" | sed -n '1s/[:,].*//p')
    if [ -z "$pkg" ]; then
        echo "deps: $name: $path belongs to no Debian package"; fail=1; continue
    fi
    echo "$closure" | grep -qx "$pkg" && continue
    [ "$(dpkg-query -W -f='${Essential}' "$pkg" 2>/dev/null)" = yes ] && continue
    echo "deps: $name ($path, package $pkg) is used by make test, but scripts/deps.sh's" \
         "groups build test docs play do not install it"
    fail=1
done
[ $fail = 0 ] || { echo "deps: FAILED"; exit 1; }
echo "deps: $n tools, headers, libraries and modules of make test, each from a package" \
     "scripts/deps.sh installs ($(echo "$listed" | wc -l) named, $(echo "$closure" | wc -l)" \
     "with what they depend on)"
