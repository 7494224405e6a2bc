/* SPDX-License-Identifier: MIT */
/*
 * waitgroup.c - Go's sync.WaitGroup on a channel: a counter, and per round a signal-only
 * channel that is closed when the counter reaches zero. Waiting is a receive on that channel,
 * so a waiter parks however the caller's channel operations park (a futex, or a task of a
 * plugged-in scheduler), and a select can wait on the round's end like on any channel.
 *
 * Go's WaitGroup (sync/waitgroup.go) packs counter and waiter count into one atomic word and
 * releases waiters through a semaphore. Here the waiter count and the channel live under a
 * mutex, and only the counter is atomic:
 *  - count changes by compare-and-swap. A change that keeps it above zero before and after
 *    (most adds and dones) is that CAS alone. A change that starts at zero or ends at zero
 *    (a round begins or ends), or would make it negative, is made under mu, and only there
 *    does count leave or reach zero. So while mu is held and count is zero, count stays zero.
 *  - done is never NULL. While count > 0 it is the round's channel, open; while count == 0 it
 *    is zero, a channel closed when the WaitGroup is made and freed with it. The add that ends
 *    a round closes the round's channel under mu and keeps it in last, for the waiters and
 *    selects still on it; the add that begins the next round frees last under mu (-EBUSY if
 *    a select is still on it) and makes a new one. A channel taken at zero thus stays valid
 *    and closed whatever rounds come after: a select on it is Go's Wait at a counter of zero,
 *    which returns at once, however an Add from zero races it. The close's unparks of
 *    plugged-in schedulers' tasks wait until mu is dropped (wakeups_hold, seam.h): such an
 *    unpark may call chan_wg_add.
 *  - waiters counts chan_wg_wait calls between registering (under mu, count > 0) and
 *    returning. A round begins only when it is zero: a waiter receives from the channel it
 *    read under mu, which therefore cannot be freed under it.
 * Memory order: the adds that keep count above zero are acq_rel CASes, so they form a release
 * sequence that the CAS ending the round (under mu) acquires; that CAS is followed by the
 * close, and a waiter returns after its receive has seen the close (or after reading count
 * == 0 under mu, after that mu was released): Go's "Done synchronizes before Wait returns".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "chan_sync.h"
#include "seam.h"

struct chan_wg {
    _Atomic int64_t count;
    pthread_mutex_t mu;
    int waiters;  /* under mu */
    chan_t *done; /* under mu: the round's channel, or zero */
    chan_t *last; /* under mu: the last round's channel, closed, until the next round; or NULL */
    chan_t *zero; /* closed for good: done while the counter is zero */
};

/* A closed signal-only channel: the done channel of a WaitGroup whose counter is zero. */
static chan_t *closed_chan(void)
{
    chan_t *c = chan_make(0, 0);
    if (c)
        chan_close(c);
    return c;
}

chan_wg_t *chan_wg_make(void)
{
    chan_wg_t *wg = malloc(sizeof *wg);
    if (!wg) {
        errno = ENOMEM;
        return NULL;
    }
    wg->zero = closed_chan();
    if (!wg->zero) {
        free(wg);
        errno = ENOMEM;
        return NULL;
    }
    wg->done = wg->zero;
    wg->last = NULL;
    atomic_init(&wg->count, 0);
    wg->waiters = 0;
    pthread_mutex_init(&wg->mu, NULL);
    return wg;
}

/* c + delta into *n, or false if it would overflow int64_t. */
static bool add_checked(int64_t c, int64_t delta, int64_t *n)
{
    if ((delta > 0 && c > INT64_MAX - delta) || (delta < 0 && c < INT64_MIN - delta))
        return false;
    *n = c + delta;
    return true;
}

/* Under mu: the counter goes from zero to n > 0. Go's Add checks, when it finds waiters with
 * the counter just raised from zero, that no Wait is still in progress from before; here a
 * new round needs the old round's waiters gone and its channel free. */
static int begin_round(chan_wg_t *wg, int64_t n)
{
    if (wg->waiters > 0)
        return -EBUSY; /* Go: "WaitGroup is reused before previous Wait has returned" */
    chan_t *next = chan_make(0, 0);
    if (!next)
        return -ENOMEM;
    if (chan_free(wg->last) == -EBUSY) { /* a select on it has not returned yet */
        chan_free(next);
        return -EBUSY;
    }
    wg->last = NULL;
    wg->done = next;
    /* count is zero and only changes under mu here: a plain store, ordered by mu. */
    atomic_store_explicit(&wg->count, n, memory_order_release);
    return 0;
}

/* Go's WaitGroup.Add. */
int chan_wg_add(chan_wg_t *wg, int64_t delta)
{
    if (!wg)
        return -EINVAL;
    /* Fast path: the counter stays above zero, so no round begins or ends. */
    int64_t c = atomic_load_explicit(&wg->count, memory_order_relaxed), n;
    while (c > 0 && add_checked(c, delta, &n) && n > 0)
        if (atomic_compare_exchange_weak_explicit(&wg->count, &c, n, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return 0;

    wakeups_hold(); /* the round's end wakes its waiters after the unlock (seam.h) */
    pthread_mutex_lock(&wg->mu);
    int rc = 0;
    for (c = atomic_load_explicit(&wg->count, memory_order_relaxed);;) {
        if (!add_checked(c, delta, &n)) {
            rc = -EOVERFLOW;
            break;
        }
        if (n < 0) {
            rc = -EINVAL; /* Go: "sync: negative WaitGroup counter" */
            break;
        }
        if (c == 0) { /* stays zero while we hold mu */
            if (n > 0)
                rc = begin_round(wg, n);
            break;
        }
        /* c > 0: fast-path adds may still change it under us, hence the CAS. */
        if (atomic_compare_exchange_weak_explicit(&wg->count, &c, n, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            if (n == 0) { /* the round ends: wakes every waiter and select */
                chan_close(wg->done);
                wg->last = wg->done;
                wg->done = wg->zero;
            }
            break;
        }
    }
    pthread_mutex_unlock(&wg->mu);
    wakeups_release();
    return rc;
}

int chan_wg_done(chan_wg_t *wg) { return chan_wg_add(wg, -1); }

/* Go's WaitGroup.Wait: register as a waiter of the current round, then receive from its
 * channel until the close. */
int chan_wg_wait_until(chan_wg_t *wg, int64_t deadline)
{
    if (!wg)
        return -EINVAL;
    pthread_mutex_lock(&wg->mu);
    if (atomic_load_explicit(&wg->count, memory_order_relaxed) == 0) {
        pthread_mutex_unlock(&wg->mu);
        return 0;
    }
    chan_t *done = wg->done;
    wg->waiters++;
    pthread_mutex_unlock(&wg->mu);

    int rc = chan_recv_until(done, NULL, deadline); /* -EPIPE: closed, the round is over */

    pthread_mutex_lock(&wg->mu);
    wg->waiters--;
    pthread_mutex_unlock(&wg->mu);
    /* -EPIPE: the round is over. -ETIMEDOUT, or the error with which a plugged-in scheduler's
     * park gave the wait up (chan_sched(3)): the round is not. */
    return rc == -EPIPE || rc == 0 ? 0 : rc;
}

int chan_wg_wait(chan_wg_t *wg) { return chan_wg_wait_until(wg, CHAN_FOREVER); }

chan_t *chan_wg_chan(chan_wg_t *wg)
{
    if (!wg) {
        errno = EINVAL;
        return NULL;
    }
    pthread_mutex_lock(&wg->mu);
    chan_t *done = wg->done;
    pthread_mutex_unlock(&wg->mu);
    return done;
}

int chan_wg_free(chan_wg_t *wg)
{
    if (!wg)
        return 0;
    pthread_mutex_lock(&wg->mu);
    bool busy = atomic_load_explicit(&wg->count, memory_order_relaxed) != 0 || wg->waiters > 0 ||
                chan_free(wg->last) == -EBUSY;
    if (!busy)
        wg->last = NULL;
    pthread_mutex_unlock(&wg->mu);
    if (busy)
        return -EBUSY;
    chan_free(wg->zero); /* closed from the start: no select ever waits on it */
    pthread_mutex_destroy(&wg->mu);
    free(wg);
    return 0;
}
