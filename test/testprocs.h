/* SPDX-License-Identifier: MIT */
/* testprocs.h - the P count of the suites that run Gs (test/test_mpg*.c), from the environment:
 * with CHAN_TEST_NPROCS=N (1..1024) every chan_mpg_start(n) and chan_mpg_start_config of these
 * suites that asks for n > 1 Ps gets N instead, so that the same cases run with 16, 64 or 256
 * Ps on a 2-core machine (the library itself reads no such variable). A case that asks for one
 * P is about one P (a G that keeps it, a G that must come back on another M), and one whose
 * config sets max_threads is about the thread limit against its count: both keep theirs. Unset,
 * the suites start what they ask for. Included by testmpg.h and test_mpg_leak.c, after
 * sched/chan_sched_mpg.h. */
#ifndef TESTPROCS_H
#define TESTPROCS_H

#include <stdlib.h>

#include "sched/chan_sched_mpg.h"

static inline int test_nprocs(int n)
{
    const char *s = getenv("CHAN_TEST_NPROCS");
    int e = s ? atoi(s) : 0;
    return n > 1 && e > 0 && e <= 1024 ? e : n;
}

static inline int test_mpg_start_config(const struct chan_mpg_config *cfg)
{
    if (!cfg)
        return chan_mpg_start_config(cfg);
    struct chan_mpg_config c = *cfg;
    if (!c.max_threads)
        c.nprocs = test_nprocs(c.nprocs);
    return chan_mpg_start_config(&c);
}

#define chan_mpg_start(n) chan_mpg_start_config(&(struct chan_mpg_config){.nprocs = (n)})
#define chan_mpg_start_config(cfg) test_mpg_start_config(cfg)

#endif
