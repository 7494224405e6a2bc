/* SPDX-License-Identifier: MIT */
/*
 * syscall_cost.c - what chan_mpg_syscall_enter/exit cost around a system call that returns at
 * once: getppid(2) bare, and wrapped, in a G (the enter marks the P, the exit takes it back by
 * CAS; the monitor never has time to take it), and wrapped on a plain thread (both calls do
 * nothing there).
 *
 *   build/plain/sched/syscall_cost [CALLS [RUNS]]        (make mpg-syscall-cost N=...)
 *
 * Prints ns per call for each, the best of RUNS, and the pair alone (enter then exit around
 * nothing: what the wrapping adds).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chan.h"
#include "sched/chan_sched_mpg.h"

#define BLOCK 1000 /* calls per block; the three loops take turns, block by block */

static long calls;
static double res[3]; /* ns per call: bare, wrapped, the pair alone */

/* syscall(SYS_getppid): be sure each call enters the kernel (glibc does not cache getppid). */
static long ppid(void) { return syscall(SYS_getppid); }

/* The three loops in turns of BLOCK calls, so that a slow spell of the machine (other jobs, the
 * host) falls on all three alike. */
static void per_call(double out[3])
{
    int64_t t[3] = {0, 0, 0};
    long sum = 0;
    for (long done = 0; done < calls; done += BLOCK) {
        int64_t t0 = chan_now();
        for (int i = 0; i < BLOCK; i++)
            sum += ppid();
        int64_t t1 = chan_now();
        for (int i = 0; i < BLOCK; i++) {
            chan_mpg_syscall_enter();
            sum += ppid();
            chan_mpg_syscall_exit();
        }
        int64_t t2 = chan_now();
        for (int i = 0; i < BLOCK; i++) {
            chan_mpg_syscall_enter();
            __asm__ volatile("" ::: "memory");
            chan_mpg_syscall_exit();
        }
        int64_t t3 = chan_now();
        t[0] += t1 - t0;
        t[1] += t2 - t1;
        t[2] += t3 - t2;
    }
    if (sum == 42)
        puts(""); /* keep the calls */
    long n = (calls + BLOCK - 1) / BLOCK * BLOCK;
    for (int k = 0; k < 3; k++)
        out[k] = (double)t[k] / (double)n;
}

static void measure(void *arg)
{
    (void)arg;
    per_call(res);
}

int main(int argc, char **argv)
{
    calls = argc > 1 ? atol(argv[1]) : 2000000;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    double g[3] = {1e30, 1e30, 1e30}, th[3] = {1e30, 1e30, 1e30}, t[3];
    if (chan_mpg_start(0) != 0)
        return 1;
    for (int r = 0; r < runs; r++) {
        chan_mpg_go(measure, NULL);
        if (chan_mpg_wait() != 0)
            return 1;
        per_call(t); /* on this plain thread */
        printf("run %d: G: %.1f ns bare, %.1f wrapped, %.1f the pair alone; thread: %.1f bare, "
               "%.1f wrapped, %.1f the pair alone\n",
               r, res[0], res[1], res[2], t[0], t[1], t[2]);
        for (int k = 0; k < 3; k++) {
            g[k] = res[k] < g[k] ? res[k] : g[k];
            th[k] = t[k] < th[k] ? t[k] : th[k];
        }
    }
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    printf("mpg syscall_cost calls=%ld G: bare=%.1f wrapped=%.1f pair=%.1f ns; thread: "
           "bare=%.1f wrapped=%.1f pair=%.1f ns; retakes=%llu (best of %d)\n",
           calls, g[0], g[1], g[2], th[0], th[1], th[2], (unsigned long long)st.retakes, runs);
    return chan_mpg_stop() != 0;
}
