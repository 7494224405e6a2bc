/* SPDX-License-Identifier: MIT */
/* timing.h - what the timer and context suites share: a leak check, and a witness to stalls
 * of the whole process against which a timer's lateness is judged. Header-only. */
#ifndef TIMING_H
#define TIMING_H

#include <stdatomic.h>

#include "chan_time.h"
#include "testutil.h"

/* Under ASan, LeakSanitizer checks each fork-mode child as it exits; asking it at the end of
 * each test as well makes a leak fail that test, named, at its end (a no-op in other builds). */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
static void assert_no_leaks(void)
{
    if (__lsan_do_recoverable_leak_check)
        ck_assert_msg(__lsan_do_recoverable_leak_check() == 0, "memory leaked (see above)");
}

/* A witness to stalls of the whole process (a loaded VM, a sanitizer's stop-the-world): a
 * thread that sleeps 2 ms at a time and records its worst oversleep since witness_mark(). A
 * timer may be late_bound() late, plus what the witness saw: a timer late while the witness
 * ran on time is a timer bug and fails. */
static struct {
    pthread_once_t once;
    _Atomic int64_t worst;
    _Atomic uint64_t rounds;
} witness = {.once = PTHREAD_ONCE_INIT};

static void *witness_main(void *unused)
{
    (void)unused;
    for (;;) {
        int64_t t = chan_now();
        sleep_ns(2 * MS);
        int64_t over = chan_now() - t - 2 * MS;
        int64_t w = atomic_load(&witness.worst);
        while (over > w && !atomic_compare_exchange_weak(&witness.worst, &w, over)) {
        }
        atomic_fetch_add(&witness.rounds, 1);
    }
    return NULL;
}

static void witness_start(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, witness_main, NULL) == 0)
        pthread_detach(t);
}

/* Starts a measurement window (and the witness, on first use). */
static void witness_mark(void)
{
    pthread_once(&witness.once, witness_start);
    /* The first timer of a process starts the timer thread, a new thread that a loaded machine
     * may leave unscheduled for tens of milliseconds (seen: 56 ms at load 12). Have it running
     * before the window opens, so that the window measures timers, not thread start-up. */
    chan_timer_t *warm = chan_timer_make(1); /* 1 ns: fired by that thread, not by this call */
    if (warm) {
        chan_recv(chan_timer_chan(warm), NULL);
        chan_timer_free(warm);
    }
    atomic_store(&witness.worst, 0);
}

/* The worst stall seen since the mark, once the witness has run two more rounds (so that a
 * stall just ended is counted). */
static int64_t witness_stall(void)
{
    uint64_t r = atomic_load(&witness.rounds);
    for (int i = 0; i < 10000 && atomic_load(&witness.rounds) < r + 2; i++)
        sleep_ms(1);
    return atomic_load(&witness.worst);
}

/* How late something may be in the window since witness_mark(). */
static int64_t late_allowed(void) { return late_bound() + witness_stall(); }

/* Keeps the timer thread busy inside a func timer's fn until released: meanwhile nothing fires,
 * so a test can tell what a call did itself from what the timer thread did for it, and can
 * build a tree before a deadline that has passed gets cancelled. */
static struct {
    _Atomic int entered, released;
    chan_timer_t *t;
} hold;

static inline void hold_fn(void *unused)
{
    (void)unused;
    atomic_store(&hold.entered, 1);
    while (!atomic_load(&hold.released))
        sleep_ms(1);
}

static inline void hold_timer_thread(void)
{
    atomic_store(&hold.entered, 0);
    atomic_store(&hold.released, 0);
    hold.t = chan_timer_make_func(0, hold_fn, NULL);
    ck_assert_ptr_nonnull(hold.t);
    for (int i = 0; i < 10000 && !atomic_load(&hold.entered); i++)
        sleep_ms(1);
    ck_assert(atomic_load(&hold.entered));
}

static inline void release_timer_thread(void)
{
    atomic_store(&hold.released, 1);
    ck_assert_int_eq(chan_timer_free(hold.t), 0); /* allowed while its fn runs */
}

#endif
