#!/bin/sh
# Installs libchan into a temporary prefix and builds a program against it the two ways a user
# would: shared, through pkg-config, and static, against libchan.a; the program uses the
# installed chan.h, chan_typed.h and chan_sync.h. Part of `make test`.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make --no-print-directory -s install PREFIX="$tmp" >/dev/null
cat > "$tmp/prog.c" <<'PROG'
#include <chan.h>
#include <chan_sync.h>
#include <chan_typed.h>
#include <pthread.h>
#include <stdio.h>

CHAN_TYPED(int_chan, int);
static chan_wg_t *wg;

static void *produce(void *arg)
{
    int_chan *c = arg;
    for (int i = 1; i <= 10; i++)
        int_chan_send(*c, i);
    chan_wg_done(wg);
    return NULL;
}

int main(void)
{
    int_chan c = int_chan_make(0);
    wg = chan_wg_make();
    pthread_t t;
    chan_wg_add(wg, 1);
    pthread_create(&t, NULL, produce, &c);
    int v, sum = 0;
    struct chan_case cs[] = {int_chan_case_recv(c, &v), chan_case_recv(chan_wg_chan(wg), NULL)};
    while (chan_select(cs, 2) == 0)
        sum += v;
    pthread_join(t, NULL);
    printf("%s %d %d\n", chan_version(), sum, int_chan_free(c) + chan_wg_free(wg));
    return 0;
}
PROG
export PKG_CONFIG_PATH="$tmp/lib/pkgconfig"
want="$(sed -n 's/^VERSION *:= *//p' Makefile) 55 0"
# shellcheck disable=SC2046
cc -o "$tmp/shared" "$tmp/prog.c" $(pkg-config --cflags --libs libchan)
got=$(LD_LIBRARY_PATH="$tmp/lib" "$tmp/shared")
[ "$got" = "$want" ] || { echo "install: shared build printed '$got', want '$want'"; exit 1; }
# shellcheck disable=SC2046
cc -o "$tmp/static" "$tmp/prog.c" $(pkg-config --cflags libchan) "$tmp/lib/libchan.a" \
    $(pkg-config --static --libs-only-other libchan)
got=$("$tmp/static")
[ "$got" = "$want" ] || { echo "install: static build printed '$got', want '$want'"; exit 1; }
if ldd "$tmp/static" | grep -q libchan; then echo "install: static build links libchan.so"; exit 1; fi
[ "$(readlink "$tmp/lib/libchan.so.1")" = "libchan.so.$(sed -n 's/^VERSION *:= *//p' Makefile)" ]
objdump -p "$tmp/lib/libchan.so" | grep -q 'SONAME *libchan.so.1'
echo "install: shared (pkg-config) and static builds of an installed libchan run: 1 passed, 0 failed"
