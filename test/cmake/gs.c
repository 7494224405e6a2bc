/* SPDX-License-Identifier: MIT */
/* gs.c - a program that runs Gs: a chain of 100 Gs on 2 Ps, each receiving a value from the one
 * before it and passing it on plus one, fed and drained by main (announced as a foreign
 * thread); prints "100 5050 0 0 0". Gs wait for each other, so a G whose wait blocked its M
 * instead of parking (a second copy of libchan that has no scheduler hook) would hang it.
 * Built by test/link.sh with every link line and by test/cmake.sh with CMake. */
#include <chan.h>
#include <chan_sched_mpg.h>
#include <stdio.h>

#define N 100
static chan_t *links[N + 1];

static void stage(void *arg)
{
    long i = (long)arg, v;
    while (chan_recv(links[i], &v) == 0) {
        v++;
        chan_send(links[i + 1], &v);
    }
    chan_close(links[i + 1]);
}

int main(void)
{
    for (int i = 0; i <= N; i++)
        links[i] = chan_make(sizeof(long), 0);
    if (chan_mpg_start(2) != 0)
        return 1;
    chan_mpg_foreign_enter();
    for (long i = 0; i < N; i++)
        chan_mpg_go(stage, (void *)i);
    long v = 0, sum = 0, last = 0;
    for (long k = 0; k < N; k++) {
        chan_send(links[0], &k);
        chan_recv(links[N], &v);
        sum += v - N; /* k back */
        last = v - k;
    }
    chan_close(links[0]);
    chan_recv(links[N], NULL);
    chan_mpg_foreign_leave();
    int w = chan_mpg_wait(), s = chan_mpg_stop(), f = 0;
    for (int i = 0; i <= N; i++)
        f |= chan_free(links[i]);
    printf("%ld %ld %d %d %d\n", last, sum + N, w, s, f);
    return 0;
}
