#!/bin/sh
# SPDX-License-Identifier: MIT
# Every documented way to link a program with libchan, each built against a temporary install
# and run: a program that runs Gs (libchan-mpg) shared, static, through either .pc name or both
# in either order, with an rpath instead of LD_LIBRARY_PATH, the static scheduler over the
# shared core; a channel program with the drop-in pair; the same libchan.so opened twice with
# dlopen. And the one wrong way, two copies of libchan in one process (the static libchan.a
# with the shared libchan-mpg, which needs libchan.so): refused at load time, exit status 127
# and libchan's message, never a hang. Part of `make test` (link-check). Prints a line per link.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
lib=$prefix/lib
make=${MAKE:-make}
src=$(pwd)   # the source tree: make runs this script from its top
$make --no-print-directory -s install PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; echo "link: make install failed"; exit 1; }
export PKG_CONFIG_PATH="$lib/pkgconfig"
passed=0 failed=0

# A program that uses Gs (test/cmake/gs.c, which the CMake check builds too).
cp test/cmake/gs.c "$tmp/gs.c"

# A channel program for the drop-in pair (which has no scheduler).
cat > "$tmp/pair.c" <<'PROG'
#include "chan.h"
#include <pthread.h>
#include <stdio.h>

static void *produce(void *arg)
{
    for (int i = 1; i <= 10; i++)
        chan_send(arg, &i);
    chan_close(arg);
    return NULL;
}

int main(void)
{
    chan_t *c = chan_make(sizeof(int), 0);
    pthread_t t;
    pthread_create(&t, NULL, produce, c);
    int v, sum = 0;
    while (chan_recv(c, &v) == 0)
        sum += v;
    pthread_join(t, NULL);
    printf("%d %d\n", sum, chan_free(c));
    return 0;
}
PROG

# A program that opens libchan.so twice (same copy: one constructor, no refusal).
cat > "$tmp/dl.c" <<'PROG'
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    void *a = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL), *b = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!a || !b)
        return 1;
    const char *(*version)(void) = (const char *(*)(void))dlsym(b, "chan_version");
    printf("%d %s\n", a == b, version ? version() : "none");
    return 0;
}
PROG

# check NAME WANT ENV COMMAND...: builds with COMMAND (in $tmp), runs ./app with ENV
# (a VAR=value or -), and compares its output with WANT.
check() {
    name=$1 want=$2 env=$3
    shift 3
    rm -f "$tmp/app"
    if ! (cd "$tmp" && "$@") > "$tmp/build.log" 2>&1; then
        echo "link: $name: FAILED to build: $*"; cat "$tmp/build.log"
        failed=$((failed + 1)); return
    fi
    if [ "$env" = - ]; then set -- timeout 60 "$tmp/app"; else set -- env "$env" timeout 60 "$tmp/app"; fi
    got=$("$@" "$lib/libchan.so" 2>"$tmp/err") || true
    if [ "$got" = "$want" ]; then
        echo "link: $name: ok"
        passed=$((passed + 1))
    else
        echo "link: $name: FAILED: printed '$got', want '$want'"; cat "$tmp/err"
        failed=$((failed + 1))
    fi
}

gs="100 5050 0 0 0"
pcm=$(pkg-config --cflags --libs libchan-mpg)
check "shared, pkg-config libchan-mpg" "$gs" LD_LIBRARY_PATH="$lib" \
    sh -c "cc -o app gs.c $pcm"
check "shared, pkg-config libchan libchan-mpg" "$gs" LD_LIBRARY_PATH="$lib" \
    sh -c "cc -o app gs.c $(pkg-config --cflags --libs libchan libchan-mpg)"
check "shared, pkg-config libchan-mpg libchan" "$gs" LD_LIBRARY_PATH="$lib" \
    sh -c "cc -o app gs.c $(pkg-config --cflags --libs libchan-mpg libchan)"
check "shared, rpath (no LD_LIBRARY_PATH)" "$gs" - \
    sh -c "cc -o app gs.c $pcm -Wl,-rpath,$lib"
check "static, libchan_mpg.a libchan.a" "$gs" - \
    sh -c "cc -o app gs.c $(pkg-config --cflags libchan-mpg) $lib/libchan_mpg.a $lib/libchan.a \
           $(pkg-config --libs hwloc) -pthread"
check "static, -Wl,-Bstatic -lchan_mpg -lchan" "$gs" - \
    sh -c "cc -o app gs.c $(pkg-config --cflags libchan-mpg) -L$lib -Wl,-Bstatic -lchan_mpg -lchan \
           -Wl,-Bdynamic $(pkg-config --libs hwloc) -pthread"
check "static scheduler, shared core" "$gs" LD_LIBRARY_PATH="$lib" \
    sh -c "cc -o app gs.c $(pkg-config --cflags libchan) $lib/libchan_mpg.a \
           $(pkg-config --libs libchan hwloc)"
check "drop-in pair: cc -std=c11 -pthread app.c chan.c" "55 0" - \
    sh -c "mkdir -p pair && cp $src/dist/chan.h $src/dist/chan.c pair/ && cp pair.c pair/app.c \
           && cd pair && cc -std=c11 -pthread app.c chan.c -o ../app"
check "dlopen libchan.so twice" "1 $($make --no-print-directory -s print-version)" - \
    sh -c "cc -o app dl.c"

# Two copies: libchan.a in the program, libchan.so under libchan_mpg.so.
rm -f "$tmp/app"
(cd "$tmp" && cc -o app gs.c $(pkg-config --cflags libchan-mpg) "$lib/libchan.a" $pcm) \
    > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; echo "link: two copies: FAILED to build"; exit 1; }
rc=0
LD_LIBRARY_PATH="$lib" timeout 60 "$tmp/app" > "$tmp/out" 2> "$tmp/err" || rc=$?
if [ $rc = 127 ] && grep -q '^libchan: two copies of libchan in one process' "$tmp/err" &&
   [ ! -s "$tmp/out" ]; then
    echo "link: two copies (libchan.a + libchan_mpg.so): refused at load, exit status 127"
    passed=$((passed + 1))
else
    echo "link: two copies (libchan.a + libchan_mpg.so): FAILED: exit status $rc" \
         "(124: hung), stdout '$(cat "$tmp/out")', stderr:"; cat "$tmp/err"
    failed=$((failed + 1))
fi
echo "link: $passed passed, $failed failed"
[ $failed = 0 ]
