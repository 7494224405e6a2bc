/* SPDX-License-Identifier: MIT */
/*
 * leak.c - what a leak check costs (chan_leak(3)): the time of chan_leak_check and of
 * chan_leftovers against the size of the heap (1 MiB to 1 GiB, allocated and written) and
 * against the number of blocked waiters (Gs of libchan-mpg, half of them leaked). A check
 * stops every thread for about as long as it takes: the figures are the pause too.
 *
 *   bench-leak [MAX_MB [RUNS]]     heap sizes 1, 4, 16, ... MiB up to MAX_MB (1024), RUNS (5)
 *                                  checks each, median printed; then 10 to 10,000 waiters
 *
 * Each line: leak-bench what=heap|waiters heap_mb=H waiters=W threads=T check_ms=M
 * leftovers_ms=L leaked=K (K is checked: a wrong count exits 1).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "chan_leak.h"
#include "chan_trace.h"
#include "sched/chan_sched_mpg.h"

#define MAX_WAITERS 10000

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The median time of runs calls of fn, in ms; *result: what the last one returned. */
static double median_ms(int (*fn)(FILE *, const struct chan_leak_ignore *), int runs, int *result)
{
    int64_t t[64];
    for (int i = 0; i < runs; i++) {
        int64_t t0 = chan_now();
        *result = fn(NULL, NULL);
        t[i] = chan_now() - t0;
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_i64);
    return t[runs / 2] / 1e6;
}

/* The heap: a block written with words that look like what a heap holds - pointers into
 * itself, small integers - none of them a channel's address. */
static void fill(uint64_t *p, size_t words)
{
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (i & 1) ? (uint64_t)(uintptr_t)(p + (x % words)) : x % 1000;
    }
}

/* The waiters: Gs blocked receiving, each on a channel of its own; those of even index are held
 * in `held` (a root), the others leaked. The leaked channels are kept xored for the clean-up. */
chan_t *volatile held[MAX_WAITERS]; /* not static, volatile: stores the compiler must make */
static uintptr_t hidden[MAX_WAITERS];
#define KEY ((uintptr_t)0x3c3c3c3c3c3c3c3cull)

static void recv_arg(void *arg)
{
    int v;
    chan_recv(arg, &v);
}

__attribute__((noinline)) static void block(int from, int to)
{
    for (int i = from; i < to; i++) {
        chan_t *c = chan_make(sizeof(int), 0);
        if (!c || chan_mpg_go(recv_arg, c) <= 0) {
            fprintf(stderr, "bench-leak: cannot make waiter %d\n", i);
            exit(1);
        }
        if (i % 2 == 0)
            held[i] = c;
        hidden[i] = (uintptr_t)c ^ KEY;
    }
}

/* Overwrites the stack below the caller: the frames of block() hold channel addresses. */
__attribute__((noinline)) static void scrub_stack(void)
{
    char junk[65536];
    explicit_bzero(junk, sizeof junk);
    __asm__ volatile("" : : "r"(junk) : "memory");
}

static int threads_now(void)
{
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    return st.nprocs + 1; /* the Ms, and this thread */
}

static void wait_blocked(int n)
{
    for (int i = 0; i < 100000 && chan_leftovers(NULL, NULL) < n; i++)
        usleep(1000);
}

int main(int argc, char **argv)
{
    int max_mb = argc > 1 ? atoi(argv[1]) : 1024;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > 64)
        runs = 5;
    chan_dump_enable();
    if (chan_mpg_start(0) != 0)
        return 1;

    /* Against the heap, with 10 waiters (5 leaked). */
    int nw = 10, bad = 0;
    block(0, nw);
    wait_blocked(nw);
    for (int mb = 1; mb <= max_mb; mb *= 4) {
        size_t bytes = (size_t)mb << 20;
        uint64_t *heap = malloc(bytes);
        if (!heap) {
            fprintf(stderr, "bench-leak: no %d MiB\n", mb);
            return 1;
        }
        fill(heap, bytes / 8);
        scrub_stack();
        int found, listed;
        double check = median_ms(chan_leak_check, runs, &found);
        double left = median_ms(chan_leftovers, runs, &listed);
        printf("leak-bench what=heap heap_mb=%d waiters=%d threads=%d check_ms=%.2f "
               "leftovers_ms=%.2f leaked=%d\n",
               mb, nw, threads_now(), check, left, found);
        fflush(stdout);
        bad |= found != nw / 2 || listed != nw;
        free(heap);
    }

    /* Against the waiters, with a small heap. */
    for (int n = 100; n <= MAX_WAITERS; n *= 10) {
        block(nw, n);
        nw = n;
        wait_blocked(nw);
        scrub_stack();
        int found, listed;
        double check = median_ms(chan_leak_check, runs, &found);
        double left = median_ms(chan_leftovers, runs, &listed);
        printf("leak-bench what=waiters heap_mb=0 waiters=%d threads=%d check_ms=%.2f "
               "leftovers_ms=%.2f leaked=%d\n",
               nw, threads_now(), check, left, found);
        fflush(stdout);
        bad |= found != nw / 2 || listed != nw;
    }

    /* Clean-up: every waiter woken, every channel freed. */
    for (int i = 0; i < nw; i++)
        chan_close(i % 2 == 0 ? held[i] : (chan_t *)(hidden[i] ^ KEY));
    chan_mpg_wait();
    for (int i = 0; i < nw; i++)
        chan_free((chan_t *)(hidden[i] ^ KEY));
    chan_mpg_stop();
    if (bad)
        fprintf(stderr, "bench-leak: a check found a wrong number of waiters\n");
    return bad;
}
