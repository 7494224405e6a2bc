/* SPDX-License-Identifier: MIT */
/* testgate.h - a gated scheduler hook (struct chan_sched) for one thread, shared by the suites
 * that need a waiter held between its wake-up and its return (test_context.c, test_sync.c).
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

#endif
