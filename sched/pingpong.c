/* SPDX-License-Identifier: MIT */
/*
 * pingpong.c - the pingpong shape of bench/ on libchan-mpg: two Gs, two unbuffered channels of
 * 8-byte values, one round trip = send on a, receive on b (and the mirror image in the peer).
 *
 *   build/plain/sched/pingpong [ROUND_TRIPS [NPROCS [RUNS [until]]]]   (make mpg-pingpong N=...)
 *
 * With "until", every receive is chan_recv_until with a deadline a second away: each park arms
 * a timer of a parked G and each wake-up before it cancels that timer (sched/README.md,
 * "Many cores").
 *
 * Prints one line per run and the best: "mpg pingpong nprocs=P n=N ns/roundtrip=X cpu=Y", wall
 * time per round trip and the process's CPU time per round trip (all Ms), as bench/ reports,
 * and steals=S moved=V: how often in all runs an idle P took one of the two Gs, and sysmon moved
 * one to the global queue (the pair is meant to stay on one P; either happens when the OS
 * preempts the M for longer than the thief's pause).
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "sched/chan_sched_mpg.h"
#ifdef CHAN_COUNTERS
#include "seam.h" /* built against MODE=counters: the event counters per round trip */
#endif

static chan_t *a, *b;
static long n;
static bool until; /* receive with a deadline (chan_recv_until) */
static int64_t t0, t1;

static int64_t cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int recv(chan_t *c, long *v)
{
    return until ? chan_recv_until(c, v, chan_now() + 1000000000) : chan_recv(c, v);
}

static void pinger(void *arg)
{
    (void)arg;
    t0 = chan_now();
    for (long i = 0; i < n; i++) {
        long v = i, w;
        if (chan_send(a, &v) != 0 || recv(b, &w) != 0 || w != i + 1) {
            fprintf(stderr, "pingpong: bad round trip %ld\n", i);
            exit(1);
        }
    }
    t1 = chan_now();
}

static void ponger(void *arg)
{
    (void)arg;
    for (long i = 0; i < n; i++) {
        long v;
        if (recv(a, &v) != 0)
            exit(1);
        v++;
        if (chan_send(b, &v) != 0)
            exit(1);
    }
}

int main(int argc, char **argv)
{
    n = argc > 1 ? atol(argv[1]) : 2000000;
    int nprocs = argc > 2 ? atoi(argv[2]) : 0;
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    until = argc > 4 && strcmp(argv[4], "until") == 0;
    if (chan_mpg_start(nprocs) != 0)
        return 1;
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    a = chan_make(sizeof(long), 0);
    b = chan_make(sizeof(long), 0);
    double best = 1e30, best_cpu = 1e30;
#ifdef CHAN_COUNTERS
    uint64_t c0[CNT_N], c1[CNT_N];
    counters_read(c0);
#endif
    for (int r = 0; r < runs; r++) {
        int64_t c0 = cpu_now();
        chan_mpg_go(ponger, NULL);
        chan_mpg_go(pinger, NULL);
        if (chan_mpg_wait() != 0)
            return 1;
        double ns = (double)(t1 - t0) / (double)n;
        double cpu = (double)(cpu_now() - c0) / (double)n; /* every M of the process */
        printf("run %d: %.1f ns/roundtrip wall, %.1f ns CPU\n", r, ns, cpu);
        if (ns < best)
            best = ns;
        if (cpu < best_cpu)
            best_cpu = cpu;
    }
#ifdef CHAN_COUNTERS
    counters_read(c1);
    for (int i = 0; i < CNT_N; i++)
        if (c1[i] != c0[i])
            printf("  %-13s %.4f per round trip\n", counter_names[i],
                   (double)(c1[i] - c0[i]) / (double)n / runs);
#endif
    chan_mpg_stats(&st);
    printf("mpg pingpong%s nprocs=%d n=%ld ns/roundtrip=%.1f cpu=%.1f steals=%llu moved=%llu (best "
           "of %d)\n",
           until ? "_until" : "", st.nprocs, n, best, best_cpu, (unsigned long long)st.steals,
           (unsigned long long)st.moved, runs);
    chan_free(a);
    chan_free(b);
    return chan_mpg_stop() != 0;
}
