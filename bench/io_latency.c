/* SPDX-License-Identifier: MIT */
/*
 * io_latency.c - how long a blocked thread takes to run again: woken by an fd's readiness,
 * against woken by a channel. Built by `make bench-io` (bench/bench.mk) against the plain
 * static library; prints one line per way of waking:
 *
 *   io_latency wake=W n=N median_us=M p90_us=P p99_us=Q
 *
 * Each sample: the waiter blocks (the main thread gives it IDLE_US to get there and fall
 * asleep: no spinning peer); the main thread reads the clock and wakes it; the waiter reads the
 * clock as soon as its call returns. The difference is the wake-up latency, on one
 * CLOCK_MONOTONIC. Ways of waking:
 *
 *   chan         chan_recv on an unbuffered channel, woken by chan_send (the futex parker)
 *   fd           chan_fd_wait(POLLIN) on a pipe, woken by a write(2) to it (ppoll on the fd)
 *   chan_in_poll chan_select over an fd that stays quiet and a channel, woken by chan_send (the
 *                parker's eventfd: the wake-up of a thread that polls)
 *   raw_read     read(2) on a blocking pipe, woken by write(2): the kernel alone, for scale
 *
 * Usage: io_latency [N] [IDLE_US]   (defaults 2000 and 300)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "chan_io.h"

enum wake { CHAN, FD, CHAN_IN_POLL, RAW_READ, NWAKE };
static const char *names[NWAKE] = {"chan", "fd", "chan_in_poll", "raw_read"};

static struct {
    enum wake how;
    int n;
    chan_t *c;
    int p[2], quiet[2];
    int64_t *woke;     /* the waiter's clock after each wake-up */
    _Atomic int ready; /* the waiter is about to block for sample `ready - 1` */
} w;

static void die(const char *what, long r)
{
    fprintf(stderr, "io_latency: %s: %s\n", what, strerror(r < 0 ? (int)-r : errno));
    exit(1);
}

static void *waiter(void *arg)
{
    (void)arg;
    for (int i = 0; i < w.n; i++) {
        atomic_store(&w.ready, i + 1);
        long r = 0;
        char b;
        int v;
        switch (w.how) {
        case CHAN: r = chan_recv(w.c, &v); break;
        case FD: r = chan_fd_wait(w.p[0], POLLIN, NULL, CHAN_FOREVER); break;
        case CHAN_IN_POLL: {
            int rev;
            struct chan_case cs[2] = {chan_case_recv(chan_fd_chan(w.quiet[0], POLLIN), &rev),
                                      chan_case_recv(w.c, &v)};
            r = chan_select(cs, 2) == 1 ? 0 : -EPROTO;
            break;
        }
        case RAW_READ: r = read(w.p[0], &b, 1) == 1 ? 0 : -errno; break;
        default: break;
        }
        w.woke[i] = chan_now();
        if (r < 0)
            die(names[w.how], r);
        if (w.how == FD && read(w.p[0], &b, 1) != 1) /* take the byte back */
            die("read", -errno);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    long idle_us = argc > 2 ? atol(argv[2]) : 300;
    if (n <= 0 || idle_us < 0) {
        fprintf(stderr, "usage: io_latency [N] [IDLE_US]\n");
        return 2;
    }
    int64_t *sent = malloc(n * sizeof *sent), *lat = malloc(n * sizeof *lat);
    w.woke = malloc(n * sizeof *w.woke);
    if (!sent || !lat || !w.woke)
        die("malloc", -ENOMEM);
    for (enum wake how = 0; how < NWAKE; how++) {
        w.how = how;
        w.n = n;
        atomic_store(&w.ready, 0);
        w.c = chan_make(sizeof(int), 0);
        if (!w.c || pipe(w.p) != 0 || pipe(w.quiet) != 0)
            die("setup", -errno);
        pthread_t t;
        if (pthread_create(&t, NULL, waiter, NULL) != 0)
            die("pthread_create", -EAGAIN);
        struct timespec idle = {0, idle_us * 1000};
        for (int i = 0; i < n; i++) {
            while (atomic_load(&w.ready) != i + 1)
                sched_yield();
            nanosleep(&idle, NULL); /* let it block, and its spin run out */
            int v = i;
            sent[i] = chan_now();
            long r = how == CHAN || how == CHAN_IN_POLL ? chan_send(w.c, &v)
                     : write(w.p[1], "x", 1) == 1       ? 0
                                                        : -errno;
            if (r < 0)
                die("wake", r);
        }
        pthread_join(t, NULL);
        for (int i = 0; i < n; i++)
            lat[i] = w.woke[i] - sent[i];
        qsort(lat, n, sizeof *lat, cmp);
        printf("io_latency wake=%s n=%d median_us=%.1f p90_us=%.1f p99_us=%.1f\n", names[how], n,
               lat[n / 2] / 1e3, lat[n * 9 / 10] / 1e3, lat[n * 99 / 100] / 1e3);
        chan_free(w.c);
        chan_fd_close(w.p[0]);
        chan_fd_close(w.p[1]);
        chan_fd_close(w.quiet[0]);
        chan_fd_close(w.quiet[1]);
    }
    free(sent);
    free(lat);
    free(w.woke);
    return 0;
}
