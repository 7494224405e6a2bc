#!/bin/sh
# SPDX-License-Identifier: MIT
# compile_fail.sh - a wrong element type must not compile. Builds test/compile_fail.c once per
# case with gcc and clang (-std=c11 -Wall -Wextra -Wshadow -Wconversion -Werror -pedantic): case
# 0 must compile, under c17, gnu11 and c2x too, and in C++11 (the header included plainly and
# inside extern "C"); each other case must be rejected with a diagnostic that matches the
# pattern given for it here, the C++ ones by g++ and clang++. Part of `make test` (plain mode;
# it needs only the headers).
set -u
warn="-Wall -Wextra -Wshadow -Wconversion -Werror -pedantic"
cflags="-std=c11 $warn -I."
cxxflags="-std=c++11 $warn -I. -x c++"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# case  what the diagnostic must mention (extended regex, case-insensitive)
cases='1 incompatible pointer
2 incompatible pointer
3 incompatible type
4 incompatible type
5 incompatible type
6 incompatible pointer
7 array type
8 64 KiB
9 incompatible pointer
10 const-qualified
12 volatile-qualified
13 T is atomic
14 T is atomic
15 incompatible type
16 incompatible type'
# the same in C++ (where an atomic is std::atomic, and _Atomic( ) no type at all: no case 14),
# g++ and clang++ each in their words for a wrong argument; and what only C++ has: a T that is
# not trivially copyable, or cannot be assigned
cxxcases='1 cannot convert|no matching function
2 cannot convert|no matching function
3 could not convert|no matching function
4 could not convert|no matching function
5 could not convert|no matching function
6 cannot convert|no matching function
7 array type
8 64 KiB
9 cannot convert|no matching function
10 const-qualified
11 trivially copyable
12 volatile-qualified
13 cannot be copied
15 could not convert|no matching function
16 could not convert|no matching function
17 cannot be copied'

# rejects COMPILER FLAGS CASES: each case must fail to compile, with a diagnostic that matches
# its pattern; 1 (and what went wrong) at the first that does not.
rejects() {
    echo "$3" | while read -r num pattern; do
        if $1 $2 -DCASE="$num" -c test/compile_fail.c -o "$tmp/bad.o" 2>"$tmp/err"; then
            echo "compile_fail: $1: case $num compiles, but must be rejected"; exit 1
        elif ! grep -Eqi "$pattern" "$tmp/err"; then
            echo "compile_fail: $1: case $num is rejected, but not for '$pattern':"
            head -5 "$tmp/err"; exit 1
        fi
    done
}

for cc in gcc clang; do
    for std in c11 c17 gnu11 c2x; do
        if ! $cc $cflags -std=$std -DCASE=0 -c test/compile_fail.c -o "$tmp/ok.o" 2>"$tmp/err"
        then
            echo "compile_fail: $cc -std=$std: case 0 (right types) does not compile:"
            cat "$tmp/err"; fail=1
        fi
    done
    rejects "$cc" "$cflags" "$cases" || fail=1
done
cxxs=""
for cxx in g++ clang++; do
    command -v $cxx >/dev/null ||
        { echo "compile_fail: no $cxx (scripts/deps.sh test installs it)"; fail=1; continue; }
    cxxs="$cxxs $cxx"
    for wrap in "" -DEXTERN_C; do
        if ! $cxx $cxxflags $wrap -DCASE=0 -c test/compile_fail.c -o "$tmp/ok.o" 2>"$tmp/err"
        then
            echo "compile_fail: $cxx $wrap: case 0 does not compile as C++11:"; cat "$tmp/err"
            fail=1
        fi
    done
    rejects "$cxx" "$cxxflags" "$cxxcases" || fail=1
done
[ $fail = 0 ] || { echo "compile_fail: FAILED"; exit 1; }
echo "compile_fail: chan_typed.h with gcc, clang (C11, C17, GNU11, C2x),$cxxs (C++11): right types compile" \
     "clean, 15 wrong uses rejected by each C compiler, 16 by each C++ compiler"
