/* SPDX-License-Identifier: MIT */
/* testgate.h - a gated scheduler hook (struct chan_sched) for one thread, shared by the suites
 * that need a waiter held between its wake-up and its return (test_context.c, test_sync.c), and
 * a cancel held right after it claims a context (the claim gate, below).
 * Header-only; apart from testutil.h because it holds state of its own (one gate per suite).
 *
 * A thread that installs gated_sched (chan_sched_set) and blocks is woken as usual, but its park
 * returns only once the test has opened the gate: the way an M:N worker leaves a woken task
 * waiting while another task runs, made deterministic. The gated waits have no deadline. */
#ifndef TESTGATE_H
#define TESTGATE_H

#include "testutil.h"

#include <stdbool.h>

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool notified, open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static inline void *gate_current(void) { return &gate; }

/* The park: returns when the task has been unparked and the gate is open. */
static inline int gate_park(void *task, int64_t deadline)
{
    (void)task;
    (void)deadline;
    pthread_mutex_lock(&gate.mu);
    while (!(gate.notified && gate.open))
        pthread_cond_wait(&gate.cv, &gate.mu);
    gate.notified = false;
    pthread_mutex_unlock(&gate.mu);
    return 0;
}

static inline void gate_unpark(void *task)
{
    (void)task;
    pthread_mutex_lock(&gate.mu);
    gate.notified = true;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

static const struct chan_sched gated_sched = {gate_current, gate_park, gate_unpark};

/* Closed, nothing notified: each gated test starts so (they share one process under
 * CK_FORK=no, as make valgrind runs them). */
static inline void reset_gate(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = gate.notified = false;
    pthread_mutex_unlock(&gate.mu);
}

/* Lets the held task return from its park. */
static inline void open_gate(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = true;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

/* Whether the held task has been woken (for eventually()). */
static inline int gate_notified(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate.mu);
    bool n = gate.notified;
    pthread_mutex_unlock(&gate.mu);
    return n;
}

/* ---- The claim gate: a cancel held in the middle of its walk ---------------------------------
 *
 * claim_hold_at(ctx): the next cancel that claims ctx (its error set, its done channel closed)
 * stops right there (time/context.c calls ctx_claimed_hook, a hook for tests) until
 * claim_open(); claim_wait_held() returns once it has stopped. claim_receiver(done) receives
 * from done on a thread whose scheduler hook (claim_sched) parks until its unpark, and whose
 * unpark waits for the same gate: libchan makes that unpark only once the walk is over. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool held, open, woken;
    void *target; /* the context whose claim holds its canceller */
} claim = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false, NULL};

extern void (*ctx_claimed_hook)(void *ctx);

/* Under claim.mu: tells the test, then waits for the gate. */
static inline void claim_stop_locked(void)
{
    claim.held = true;
    pthread_cond_broadcast(&claim.cv);
    while (!claim.open)
        pthread_cond_wait(&claim.cv, &claim.mu);
}

static inline void claim_claimed(void *ctx)
{
    if (ctx != claim.target)
        return;
    pthread_mutex_lock(&claim.mu);
    claim_stop_locked();
    pthread_mutex_unlock(&claim.mu);
}

/* Closed, nothing held or woken: each test starts so (CK_FORK=no runs them in one process). */
static inline void claim_hold_at(void *ctx)
{
    pthread_mutex_lock(&claim.mu);
    claim.held = claim.open = claim.woken = false;
    claim.target = ctx;
    pthread_mutex_unlock(&claim.mu);
    ctx_claimed_hook = claim_claimed;
}

static inline void claim_wait_held(void)
{
    pthread_mutex_lock(&claim.mu);
    while (!claim.held)
        pthread_cond_wait(&claim.cv, &claim.mu);
    pthread_mutex_unlock(&claim.mu);
}

static inline void claim_open(void)
{
    pthread_mutex_lock(&claim.mu);
    claim.open = true;
    pthread_cond_broadcast(&claim.cv);
    pthread_mutex_unlock(&claim.mu);
}

static inline void *claim_current(void) { return &claim; }

static inline int claim_park(void *task, int64_t deadline)
{
    (void)task;
    (void)deadline; /* a receive without deadline */
    pthread_mutex_lock(&claim.mu);
    while (!claim.woken)
        pthread_cond_wait(&claim.cv, &claim.mu);
    claim.woken = false;
    pthread_mutex_unlock(&claim.mu);
    return 0;
}

static inline void claim_unpark(void *task)
{
    (void)task;
    pthread_mutex_lock(&claim.mu);
    claim_stop_locked();
    claim.woken = true;
    pthread_cond_broadcast(&claim.cv);
    pthread_mutex_unlock(&claim.mu);
}

static const struct chan_sched claim_sched = {claim_current, claim_park, claim_unpark};

static inline void *claim_receiver(void *done)
{
    chan_sched_set(&claim_sched);
    intptr_t r = chan_recv(done, NULL);
    chan_sched_set(NULL);
    return (void *)r;
}

#endif
