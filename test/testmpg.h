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

/* ---- A G that computes and a timed ping-pong: what runs beside Gs a test blocks ------------ */

/* test_mpg_io.c's readers parked in chan_read and test_mpg_syscall.c's blocked in read(2):
 * on 2 Ps, one G computes until stop, holding one P, while two Gs bounce a value on the other,
 * timed alone and then beside the readers, which must not slow it down. */
struct beside {
    chan_t *a, *b;         /* the ping-pong's channels: unbuffered, of long */
    long rounds;           /* round trips per ping-pong */
    atomic_bool stop;      /* ends the computing G */
    _Atomic int64_t pp_ns; /* the last ping-pong's duration, 0 while it runs */
};

static inline void beside_make(struct beside *s, long rounds)
{
    s->rounds = rounds;
    s->a = mk(sizeof(long), 0);
    s->b = mk(sizeof(long), 0);
}

static inline void beside_free(struct beside *s)
{
    ck_assert_int_eq(chan_free(s->a), 0);
    ck_assert_int_eq(chan_free(s->b), 0);
}

/* The computing G: spawn it with the struct beside as its argument. */
static inline void beside_compute(void *arg)
{
    struct beside *s = arg;
    volatile uint64_t x = 1;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
}

static inline void beside_ponger(void *arg)
{
    struct beside *s = arg;
    long v;
    for (long i = 0; i < s->rounds; i++) {
        G_CHECK(chan_recv(s->a, &v) == 0 && v == i);
        v++;
        G_CHECK(chan_send(s->b, &v) == 0);
    }
}

static inline void beside_pinger(void *arg)
{
    struct beside *s = arg;
    G_CHECK(chan_mpg_go(beside_ponger, s) > 0);
    int64_t t0 = chan_now();
    for (long i = 0; i < s->rounds; i++) {
        long v = i;
        G_CHECK(chan_send(s->a, &v) == 0);
        G_CHECK(chan_recv(s->b, &v) == 0 && v == i + 1);
    }
    atomic_store(&s->pp_ns, chan_now() - t0);
}

/* Runs one ping-pong of s->rounds round trips from a G and returns how long it took. */
static inline int64_t beside_pingpong(struct beside *s)
{
    atomic_store(&s->pp_ns, 0);
    ck_assert_int_gt(chan_mpg_go(beside_pinger, s), 0);
    int64_t ns;
    while ((ns = atomic_load(&s->pp_ns)) == 0)
        sleep_ms(1);
    return ns;
}

#endif
