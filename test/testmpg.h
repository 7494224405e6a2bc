/* SPDX-License-Identifier: MIT */
/* testmpg.h - helpers for the suites that run Gs of libchan-mpg (test/test_mpg*.c): starting
 * and ending the scheduler, spawning a G, and checks made inside Gs. Header-only; apart from
 * testutil.h because it needs sched/chan_sched_mpg.h, which the other suites do not link. */
#ifndef TESTMPG_H
#define TESTMPG_H

#include "testutil.h"

#include <stdatomic.h>

#include "sched/chan_sched_mpg.h"
#include "testprocs.h"

/* Starts the scheduler on nprocs Ps, or fails the test. */
static inline void start(int nprocs) { ck_assert_int_eq(chan_mpg_start(nprocs), 0); }

/* Waits until every G has returned, then stops the scheduler (whose Ms, stacks and netpoller go
 * with it): the end of a test that started it. */
static inline void finish(void)
{
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
}

/* Spawns fn(arg) as a G, or fails the test. */
static inline void go(void (*fn)(void *), void *arg) { ck_assert_int_gt(chan_mpg_go(fn, arg), 0); }

/* Failures seen inside Gs (Check's asserts belong to the test's own thread): a G counts them
 * with G_CHECK, which keeps the line of one, and the test's thread reports them with NO_BAD()
 * once the Gs are done. (Marked unused for the suites that check inside Gs with ck_assert.) */
__attribute__((unused)) static atomic_long bad;
__attribute__((unused)) static atomic_int bad_line;
#define G_CHECK(cond)                                                                              \
    ((cond) ? (void)0 : (void)(atomic_fetch_add(&bad, 1), atomic_store(&bad_line, __LINE__)))
#define NO_BAD()                                                                                   \
    ck_assert_msg(atomic_load(&bad) == 0, "%ld failed check(s) inside Gs (one at line %d)",        \
                  atomic_load(&bad), atomic_load(&bad_line))

#endif
