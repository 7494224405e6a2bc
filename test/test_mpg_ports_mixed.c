/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_ports_mixed.c - the ports of ports.h once more, their tasks Gs and plain threads in
 * turn (the body itself a G): every port then has Gs and threads sharing its channels, each
 * parked by its own scheduler and woken through the other's. test_ports.c runs them on
 * threads alone, test_mpg_ports.c on Gs alone.
 */
#include "testmpg.h"

/* Loop sizes as on threads: half the tasks are threads, whose hand-offs with Gs cost a futex
 * wake-up each (select2's 100,000 rounds took 8 s here with the sizes for Gs). */
#define ON_GS 0
#define PORTS_NAME "mpg_ports_mixed"

/* The threads started, joined once the Gs are done. Each thread counts as a foreign thread of
 * the scheduler (chan_mpg_foreign_enter) from before its creation until it returns, so that no
 * deadlock is reported while a G waits for it. */
static pthread_mutex_t spawned_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t *spawned;
static size_t nspawned, spawned_cap;
static atomic_uint turn;

struct start {
    void (*fn)(void *);
    void *arg;
};

static void *thread_trampoline(void *p)
{
    struct start s = *(struct start *)p;
    free(p);
    s.fn(s.arg);
    chan_mpg_foreign_leave();
    return NULL;
}

static void task_go(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&spawned_mu);
    bool thread = atomic_fetch_add(&turn, 1) % 2 == 1 && nspawned < 500;
    if (thread && nspawned == spawned_cap) {
        spawned_cap = spawned_cap ? 2 * spawned_cap : 256;
        spawned = realloc(spawned, spawned_cap * sizeof *spawned);
    }
    pthread_mutex_unlock(&spawned_mu);
    if (!thread) {
        go(fn, arg);
        return;
    }
    struct start *s = malloc(sizeof *s);
    *s = (struct start){fn, arg};
    chan_mpg_foreign_enter(); /* the thread's own: it leaves as it returns */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &attr, thread_trampoline, s), 0);
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&spawned_mu);
    spawned[nspawned++] = t;
    pthread_mutex_unlock(&spawned_mu);
}

/* On a thread, chan_mpg_yield and chan_mpg_sleep_until act on the thread. */
static void task_yield(void) { chan_mpg_yield(); }

static void task_sleep_ms(int ms) { chan_mpg_sleep_until(chan_now() + ms * MS); }

static void run_main(void (*fn)(void *), void *arg)
{
    start(2);
    go(fn, arg);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    for (size_t i = 0; i < nspawned; i++)
        join(spawned[i]);
    free(spawned);
    ck_assert_int_eq(chan_mpg_stop(), 0);
}

#include "ports.h"

#include "ports_suite.h"
