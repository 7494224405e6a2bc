/* SPDX-License-Identifier: MIT */
/*
 * burst.c - many Gs made runnable at once from outside any G, the batches the scheduler injects
 * (inject in proc.c, after Go's injectglist): N Gs that all wait until the same deadline, or N
 * Gs that each read a pipe of their own, all written at once by the main thread. The waiters
 * are spawned by one G, on its P. "busy": that G then yields until they have all run, so that
 * its P, which schedules all along, fires their timers itself.
 *
 *   build/plain/sched/burst timers|busy|pipes [N [NPROCS]]   (N 1000, NPROCS 2)
 *
 * Prints the time from the deadline, or from the first write, until the last G ran (wall time,
 * noise on a loaded machine). Built against MODE=counters (-DCHAN_COUNTERS, as pingpong.c), it
 * prints the scheduler's event counters over the burst too: wake-ups of idle Ms, exchanges on
 * the global queue, steals (sched/README.md, "Gs made runnable together").
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "io/chan_io.h"
#include "sched/chan_sched_mpg.h"
#ifdef CHAN_COUNTERS
#include "seam.h"
#endif

#define MS 1000000LL

static int64_t deadline;
static int n, (*fds)[2];
static bool pipes, busy;
static atomic_int parked, ran;
static atomic_llong last;

static void done(void)
{
    atomic_fetch_add(&ran, 1);
    int64_t now = chan_now(), l = atomic_load(&last);
    while (now > l && !atomic_compare_exchange_weak(&last, &l, now)) {
    }
}

static void sleeper(void *arg)
{
    (void)arg;
    atomic_fetch_add(&parked, 1);
    if (chan_mpg_sleep_until(deadline) != 0)
        exit(1);
    done();
}

static void reader(void *arg)
{
    char c;
    atomic_fetch_add(&parked, 1);
    if (chan_read((int)(intptr_t)arg, &c, 1, NULL, CHAN_FOREVER) != 1)
        exit(1);
    done();
}

static void spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < n; i++)
        if (chan_mpg_go(pipes ? reader : sleeper, pipes ? (void *)(intptr_t)fds[i][0] : NULL) < 0)
            exit(1);
    while (atomic_load(&parked) < n || (busy && atomic_load(&ran) < n))
        chan_mpg_yield();
}

int main(int argc, char **argv)
{
    const char *shape = argc > 1 ? argv[1] : "timers";
    pipes = strcmp(shape, "pipes") == 0;
    busy = strcmp(shape, "busy") == 0;
    n = argc > 2 ? atoi(argv[2]) : 1000;
    int nprocs = argc > 3 ? atoi(argv[3]) : 2;
    if (n < 1 || chan_mpg_start(nprocs) != 0)
        return 1;
    fds = calloc((size_t)n, sizeof *fds);
    if (!fds)
        return 1;
    /* Every G parked well before the burst: the counters start 100 ms before it, and the run
     * is refused if any G ran before they did (a measurement: the sleep only places them). */
    deadline = chan_now() + 500 * MS;
    for (int i = 0; pipes && i < n; i++)
        if (pipe(fds[i]) != 0)
            return 1;
    if (chan_mpg_go(spawner, NULL) < 0)
        return 1;
    struct timespec ts = {0, 0};
    int64_t wait = deadline - 100 * MS - chan_now();
    ts.tv_nsec = wait > 0 ? wait : 0;
    nanosleep(&ts, NULL);
#ifdef CHAN_COUNTERS
    uint64_t c0[CNT_N], c1[CNT_N];
    counters_read(c0);
#endif
    if (chan_now() >= deadline || atomic_load(&ran) != 0) {
        fprintf(stderr, "burst: Gs ran before the counters started (a loaded machine?)\n");
        return 1;
    }
    int64_t t0 = deadline;
    if (pipes) {
        t0 = chan_now();
        for (int i = 0; i < n; i++)
            if (write(fds[i][1], "x", 1) != 1)
                return 1;
    }
    if (chan_mpg_wait() != 0 || atomic_load(&ran) != n)
        return 1;
#ifdef CHAN_COUNTERS
    counters_read(c1);
#endif
    printf("mpg burst %s n=%d nprocs=%d: %.2f ms until the last G ran\n", shape, n, nprocs,
           (double)(atomic_load(&last) - t0) / 1e6);
#ifdef CHAN_COUNTERS
    for (int i = 0; i < CNT_N; i++)
        if (c1[i] != c0[i])
            printf("  %-13s %llu\n", counter_names[i], (unsigned long long)(c1[i] - c0[i]));
#endif
    for (int i = 0; pipes && i < n; i++) {
        chan_fd_close(fds[i][0]);
        close(fds[i][1]);
    }
    free(fds);
    return chan_mpg_stop() == 0 ? 0 : 1;
}
