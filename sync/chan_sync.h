/* SPDX-License-Identifier: MIT */
/*
 * chan_sync.h - Go's sync.WaitGroup and golang.org/x/sync/errgroup for libchan, built on
 * channels: a wait parks through the scheduler hook like any channel operation (on a task of
 * an M:N scheduler such as libchan-mpg it parks the task, not its thread), and a WaitGroup's
 * completion is a channel that a chan_select can wait on.
 *
 * An addition to chan.h's contract, in the same style:
 *   - Failure is a negative errno value; constructors return NULL with errno set. Arguments
 *     are checked first, and a call that fails changed nothing.
 *   - Where Go panics on misuse (a negative counter, a WaitGroup reused before a Wait has
 *     returned, a limit changed while tasks run), these calls return an error and change
 *     nothing: -EINVAL, -EBUSY. No call aborts the process.
 *   - No call returns -EINTR; blocking calls are not pthread cancellation points.
 *   - Every call may be made from any thread or task, on the same object at the same time,
 *     except where a declaration below says otherwise; *_free is the owner's last call, once
 *     no other call on the object is in progress or will start.
 */
#ifndef CHAN_SYNC_H
#define CHAN_SYNC_H

#include <stdint.h>

#include "chan.h"
#include "chan_time.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

/* ==== WaitGroup (Go's sync.WaitGroup) ===================================================== */

/* A counter of outstanding tasks and a way to wait until it is zero. Go's usage:
 *
 *     chan_wg_add(wg, 1) before starting each task (not inside it: the add must happen
 *     before the wait it is meant to hold up), chan_wg_done(wg) as each task's last act,
 *     and chan_wg_wait(wg) where all of them must be finished.
 *
 * Rounds: a WaitGroup may be reused. A round begins with an add that raises the counter from
 * zero and ends when the counter falls back to zero; every wait of a round returns when it
 * ends. As in Go, a new round must begin only after every wait of the previous round has
 * returned -- here also every select on its chan_wg_chan() channel; chan_wg_add reports
 * -EBUSY when it can tell that one has not.
 *
 * Memory order (Go's "Done synchronizes before the return of any Wait it unblocks"): every
 * chan_wg_add and chan_wg_done of a round happens before the return of each chan_wg_wait that
 * the round's end releases, and before each receive that finds the round's channel closed. */
typedef struct chan_wg chan_wg_t;

/* A WaitGroup with a counter of zero. NULL with errno ENOMEM. Any thread; the caller owns it
 * and frees it with chan_wg_free. */
chan_wg_t *chan_wg_make(void);

/* Adds delta (which may be negative) to the counter. When the counter reaches zero the round
 * ends: every waiter is released and the round's channel is closed. Go's WaitGroup.Add.
 * 0, or (nothing changed):
 *   -EINVAL   wg NULL, or the counter would go negative (Go's panic "negative WaitGroup
 *             counter": more done than add);
 *   -EOVERFLOW the counter would pass INT64_MAX;
 *   -EBUSY    delta > 0 at a counter of zero (a new round) while a wait of the previous round
 *             has not returned (Go's panic "WaitGroup is reused before previous Wait has
 *             returned"), or a select on its channel has not finished with it;
 *   -ENOMEM   a new round's channel could not be made.
 * Any thread or task, concurrently with every call but chan_wg_free. Never blocks for long: a
 * change that leaves the counter above zero is one atomic compare-and-swap; one that starts
 * or ends a round takes the WaitGroup's mutex for a few instructions (and a chan_make or a
 * chan_close). */
int chan_wg_add(chan_wg_t *wg, int64_t delta);

/* chan_wg_add(wg, -1): one task is finished. Go's WaitGroup.Done. Its return values. */
int chan_wg_done(chan_wg_t *wg);

/* Blocks until the counter is zero: at once if it is zero now, else until the current round
 * ends. Go's WaitGroup.Wait. 0; -EINVAL for NULL. On a task of a plugged-in scheduler it parks
 * the task (a receive on the round's channel); a park that gives the wait up (chan_sched(3))
 * makes it return that error, the round not ended. Any thread or task; any number at once. */
int chan_wg_wait(chan_wg_t *wg);

/* As chan_wg_wait, or -ETIMEDOUT once the absolute deadline (chan_now() scale) has passed
 * with the counter still above zero. A counter of zero returns 0 whatever the deadline, one
 * that has passed too. */
int chan_wg_wait_until(chan_wg_t *wg, int64_t deadline);

/* The current round's channel (elemsize 0, receive only: do not send on it, close it or free
 * it): closed when the counter reaches zero, so a CHAN_RECV case on it in chan_select becomes
 * ready (ok = false) when the round ends; already closed while the counter is zero. Go's idiom
 * `done := make(chan struct{}); go func() { wg.Wait(); close(done) }()` without the goroutine.
 * A round's channel is valid until the next round begins: take it again for each round, and
 * finish every operation on it before the next round's first add (which otherwise fails with
 * -EBUSY if it can tell). The channel returned at zero is the WaitGroup's own, closed for good
 * and valid until chan_wg_free: a select on it is Go's Wait at zero, done at once even when an
 * add begins a round before the select is made. NULL with errno EINVAL for a NULL wg. Any
 * thread or task. */
chan_t *chan_wg_chan(chan_wg_t *wg);

/* Frees wg and its channel. 0; NULL: 0, no-op. -EBUSY (nothing freed) while the counter is
 * not zero, a wait is in progress, or an operation on its channel has not returned. The
 * owner's last call on wg. */
int chan_wg_free(chan_wg_t *wg);

/* ==== Group (golang.org/x/sync/errgroup) ================================================== */

/* A group of tasks working on parts of one job, with a context: the first task to fail
 * cancels the context, so the others can stop early, and chan_group_wait returns that first
 * error once every task has returned. Go's errgroup.WithContext, Group.Go, TryGo, SetLimit
 * and Wait.
 *
 * A task is int fn(chan_ctx_t *ctx, void *arg): it returns 0, or an error (any other int: a
 * negative errno value or a code of the program's own), and should return early once ctx is
 * done (select on chan_ctx_done(ctx), or poll chan_ctx_err(ctx)).
 *
 * Tasks run on threads of their own by default (detached pthreads). chan_group_set_spawn
 * makes them run elsewhere: with libchan-mpg, chan_group_set_spawn(g, chan_mpg_go) runs each
 * task as a G. Waits and limits are channel operations, so on a G they park the G. Tasks on
 * threads are threads libchan-mpg does not know of: while Gs wait for them only, and no G can
 * run, chan_mpg_wait reports a deadlock (chan_mpg(3): foreign threads); with Gs waiting, run
 * the tasks as Gs.
 *
 * Memory order: everything a task did happens before chan_group_wait returns (as for a
 * WaitGroup), and a chan_group_go call happens before its task starts. */
typedef struct chan_group chan_group_t;

/* How a group starts a task: run fn(arg) on some thread or task, concurrently with the caller;
 * return >= 0 once it is started, or a negative errno value if it could not be (fn is then
 * never called). libchan-mpg's chan_mpg_go has this type. */
typedef int64_t chan_spawn_fn(void (*fn)(void *), void *arg);

/* A group whose context is a new child of parent (chan_ctx_with_cancel), without a limit,
 * running tasks on threads. NULL with errno EINVAL (parent NULL) or ENOMEM. Any thread; the
 * caller owns it and frees it with chan_group_free. */
chan_group_t *chan_group_make(chan_ctx_t *parent);

/* The group's context, the one each task receives: cancelled by the first task that fails,
 * by the first return of chan_group_wait, or with its parent. Valid until chan_group_free; do
 * not free it. NULL for a NULL group. */
chan_ctx_t *chan_group_ctx(const chan_group_t *g);

/* At most n tasks of the group run at once from now on: chan_group_go blocks while n are
 * running, chan_group_trygo fails. n < 0: no limit (the default). n == 0: no task may start
 * (chan_group_go then blocks for good, as in Go). Go's SetLimit. 0; -EINVAL for NULL; for
 * n >= 0, -EBUSY (nothing changed) while tasks started under the previous limit are running.
 * Removing the limit (n < 0) is never refused for that, as in Go: tasks that hold slots of the
 * old limit give them back to it, and it is freed with the group (-ENOMEM: nothing changed,
 * when there is no memory to keep it until then). Configuration: call it from the owner, not
 * at the same time as chan_group_go or chan_group_trygo on g. */
int chan_group_set_limit(chan_group_t *g, int n);

/* How tasks started from now on are run; NULL: a detached thread each (the default).
 * 0; -EINVAL for NULL g. Configuration, as chan_group_set_limit. */
int chan_group_set_spawn(chan_group_t *g, chan_spawn_fn *spawn);

/* Starts fn(ctx, arg) as a task of the group, ctx being chan_group_ctx(g); blocks first while
 * the group is at its limit. Go's Group.Go. 0 once started; or (the task was not started,
 * nothing changed): -EINVAL (g or fn NULL), -ENOMEM, -EBUSY (as chan_wg_add: started at a
 * count of zero while a chan_group_wait has not returned), or the spawn function's error
 * (for threads, pthread_create's, negated: -EAGAIN). A task may start more tasks in its own
 * group. Any thread or task. */
int chan_group_go(chan_group_t *g, int (*fn)(chan_ctx_t *ctx, void *arg), void *arg);

/* As chan_group_go, but never blocks: -EAGAIN (not started) when the group is at its limit.
 * Go's Group.TryGo. */
int chan_group_trygo(chan_group_t *g, int (*fn)(chan_ctx_t *ctx, void *arg), void *arg);

/* Blocks until every task started so far has returned, cancels the context, and returns the
 * first error a task returned (the first to be recorded, when several fail at once), or 0 if
 * none failed. Go's Group.Wait. -EINVAL for a NULL g (do not give tasks -EINVAL as their own
 * error if the two must be told apart). The first error stays: a later wait returns it again.
 * Any thread or task; the group may be given more tasks afterwards (they see a cancelled
 * context). Under a plugged-in scheduler whose park gives a wait up (chan_sched(3)), returns
 * that error, with the tasks still running and the context not cancelled. */
int chan_group_wait(chan_group_t *g);

/* Frees the group and its context. 0; NULL: 0, no-op. -EBUSY (nothing freed) while a task is
 * running or a wait is in progress. The owner's last call on g, after chan_group_wait. */
int chan_group_free(chan_group_t *g);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* CHAN_SYNC_H */
