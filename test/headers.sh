#!/bin/sh
# SPDX-License-Identifier: MIT
# test/headers.sh - the installed headers as a user includes them, and the names the libraries
# export. Usage: test/headers.sh "LIB..." HEADER...  (LIB: libchan.so, and libchan_mpg.so
# where it is built, in one directory; HEADER: each header make install puts in one directory).
#   - Each header compiles alone (after globals named c, v, elem ...), twice, and all of them in
#     both orders, with gcc and clang (-std=c11, c17, gnu11 and c2x, -Wall -Wextra -Wpedantic
#     -Wconversion -Wshadow -Werror), and with g++ and clang++ (-std=c++11 and c++17, also
#     -Wold-style-cast -Wcast-qual), included plainly and inside extern "C" { }; a compiler
#     missing fails the check (scripts/deps.sh installs all four).
#   - A C++ program takes the address of every function the headers declare and links: each
#     has C linkage and is exported.
#   - libchan.so exports only functions of the headers (LIBCHAN_1) and chan_private_* (its
#     private node); libchan_mpg.so only functions of the headers; every function a man page
#     documents (.Nm) is declared by a header.
# Part of `make test` (plain). Exit status 1 on the first kind of failure, after its lines.
set -u
libs=$1
libdir=$(dirname "${libs%% *}")
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/inc"
for h in "$@"; do cp "$h" "$tmp/inc/"; done
names=$(for h in "$@"; do basename "$h"; done)
fail=0 n=0
cwarn="-Wall -Wextra -Wpedantic -Wconversion -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
cxxwarn="-Wall -Wextra -Wpedantic -Wshadow -Wold-style-cast -Wcast-qual"
probe='int chan_probe_(void);
int chan_probe_(void) { return 0; }'
# Globals a program may have declared before the include, named as parameters often are: the
# headers' inline functions must not shadow them (-Wshadow).
globals='extern int c, v, elem, cs, cap, deadline;'

# compile LANG-FLAGS FILE: compiles FILE against the copy; prints what failed
compile() {
    n=$((n + 1))
    if ! "$@" -I"$tmp/inc" -c -o "$tmp/o.o" 2>"$tmp/err"; then
        echo "headers: does not compile: $*"; sed "s|$tmp/||g" "$tmp/err" | head -5; fail=1
    fi
}

for h in $names; do
    printf '%s\n#include <%s>\n%s\n' "$globals" "$h" "$probe" > "$tmp/alone.c"
    printf '#include <%s>\n#include <%s>\n%s\n' "$h" "$h" "$probe" > "$tmp/twice.c"
    printf 'extern "C" {\n#include <%s>\n}\n#include <%s>\n%s\n' "$h" "$h" "$probe" \
        > "$tmp/wrapped.cc"
    for cc in gcc clang; do
        for std in c11 c17 gnu11 c2x; do
            compile $cc -std=$std $cwarn -Werror "$tmp/alone.c"
            compile $cc -std=$std $cwarn -Werror "$tmp/twice.c"
        done
    done
    for cxx in g++ clang++; do
        command -v $cxx >/dev/null ||
            { echo "headers: no $cxx (scripts/deps.sh test installs it)"; fail=1; continue; }
        for std in c++11 c++17; do
            compile $cxx -std=$std $cxxwarn -Werror -x c++ "$tmp/twice.c"
            compile $cxx -std=$std $cxxwarn -Werror "$tmp/wrapped.cc"
        done
    done
done
for order in "$names" "$(echo "$names" | sed -n '1!G;h;$p')"; do
    { for h in $order; do echo "#include <$h>"; done; echo "$probe"; } > "$tmp/all.c"
    for cc in gcc clang; do compile $cc -std=c11 $cwarn -Werror "$tmp/all.c"; done
done
[ $fail = 0 ] || { echo "headers: FAILED"; exit 1; }

# The functions the headers declare: a name followed by ( that is not a macro's, a static
# inline function's or a function type's (chan_spawn_fn).
for h in $names; do
    sed -n 's/^[A-Za-z].*[ *]\(chan_[a-z0-9_]*\)(.*/\1/p' "$tmp/inc/$h"
done | sort -u > "$tmp/declared"
inline=$(sed -n 's/^CHAN_INLINE_ .*[ *]\(chan_[a-z0-9_]*\)(.*/\1/p' "$tmp/inc/"*.h)
grep -v -x -e chan_spawn_fn $(for f in $inline; do printf -- '-e %s ' "$f"; done) \
    "$tmp/declared" > "$tmp/functions"
nm -D --defined-only $libs | awk 'NF == 3 && $3 !~ /^LIBCHAN_/ { print $3 }' > "$tmp/exported"
while read -r sym; do
    name=${sym%%@*} node=${sym##*@}
    case $name in
    chan_private_*) case $node in LIBCHAN_PRIVATE_*) continue ;; esac ;;
    *) grep -qx "$name" "$tmp/functions" && continue ;;
    esac
    echo "headers: exported but not a function of the headers: $sym"; fail=1
done < "$tmp/exported"
sed 's/@.*//' "$tmp/exported" | sort -u > "$tmp/exported.names"
for f in $(comm -23 "$tmp/functions" "$tmp/exported.names"); do
    echo "headers: declared but not exported by $libs: $f"; fail=1
done
mpg=
case $libs in *libchan_mpg*) mpg=-lchan_mpg ;; esac
pages=$(for p in man/*.3 man/*.7; do
    # libchan-mpg's pages go with it (make install MPG=0 leaves them out)
    [ -z "$mpg" ] && sed -n '/^\.Sh LIBRARY/,/^\.Sh/p' "$p" | grep -q libchan-mpg && continue
    echo "$p"
done)
for f in $(sed -n 's/^\.Nm \(chan_[a-z0-9_]*\).*/\1/p' $pages | sort -u); do
    grep -qx "$f" "$tmp/declared" && continue
    echo "headers: a man page names $f, which no header declares"; fail=1
done
[ $fail = 0 ] || { echo "headers: FAILED"; exit 1; }

# Every declared function called from C++ through its address, linked: C linkage throughout.
{
    for h in $names; do echo "#include <$h>"; done
    echo 'static void (*const fns[])() = {'
    sed 's/.*/    reinterpret_cast<void (*)()>(\&&),/' "$tmp/functions"
    echo '};'
    echo 'int main() { return fns[0] == nullptr; }'
} > "$tmp/cxx.cc"
for cxx in g++ clang++; do
    command -v $cxx >/dev/null ||
        { echo "headers: no $cxx (scripts/deps.sh test installs it)"; exit 1; }
    n=$((n + 1))
    if ! $cxx -std=c++11 -Wall -Wextra -Werror -I"$tmp/inc" "$tmp/cxx.cc" -o "$tmp/cxx" \
        -L"$libdir" $mpg -lchan -pthread 2>"$tmp/err"; then
        echo "headers: $cxx: a C++ program taking every function does not link:"
        sed "s|$tmp/||g" "$tmp/err" | head -5; exit 1
    fi
done
echo "headers: $(echo "$names" | wc -l) headers alone, twice and together in C and C++ ($n" \
     "builds); $(wc -l < "$tmp/functions") functions declared, all exported and linked from" \
     "C++, $(wc -l < "$tmp/exported") exports, none undeclared"
