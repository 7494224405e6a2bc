/* SPDX-License-Identifier: MIT */
/*
 * chan_time.h - timers and cancellation for libchan: Go's time.Timer, time.Ticker,
 * time.AfterFunc and the context package, built on channels so that they compose with
 * chan_select like any other case.
 *
 * An addition to chan.h's contract, in the same style:
 *   - Failure is a negative errno value; constructors return NULL with errno set. Arguments
 *     are checked first: -EINVAL (or errno EINVAL) and nothing happened.
 *   - Durations and deadlines are int64_t nanoseconds; deadlines are absolute, on the
 *     CLOCK_MONOTONIC scale of chan_now(). Arithmetic saturates: a duration that would overflow
 *     a deadline means CHAN_FOREVER.
 *   - Every function may be called from any thread, and on the same object from several threads
 *     at once, except the *_free functions: the owner calls free once, after every other call on
 *     that object has returned, and uses the handle no more.
 *   - Nothing here waits for another thread's progress beyond short critical sections (a
 *     mutex held while a few heap slots move, or a channel operation that cannot wait);
 *     cancelling a context takes time in proportion to its subtree (and a cancel that meets
 *     part of it being cancelled by another thread waits for that thread to finish it, as Go's
 *     waits on the context's lock), and making a timer now and then grows the heap. Stack use
 *     does not grow with the depth of a context tree. Safe from tasks of a plugged-in scheduler
 *     (chan_sched_set), on their small stacks too; not async-signal-safe.
 *
 * Timers are served by one timer thread per process, started by the first timer made (all
 * signals blocked in it), which keeps a binary heap of deadlines and sleeps on a condition
 * variable (CLOCK_MONOTONIC) until the earliest: no polling, and 10,000 live timers cost that
 * one thread and 8 bytes of heap slot each. It fires one timer at a time, and between two
 * firings lets in any call waiting for the heap's lock, so no call waits long for it even while
 * the thread is busy (a ticker of a tiny period). That thread and the heap are the library's only
 * process-wide mutable state here; a child of fork() gets them back in a consistent state and
 * restarts the thread when it next makes or resets a timer (beyond what POSIX promises after a
 * multi-threaded fork: it works with glibc's malloc, not with every allocator).
 */
#ifndef CHAN_TIME_H
#define CHAN_TIME_H

#include <stdint.h>

#include "chan.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

/* Durations, in the nanoseconds of chan_now() (Go's time.Millisecond and friends). */
#define CHAN_NANOSECOND ((int64_t)1)
#define CHAN_MICROSECOND ((int64_t)1000)
#define CHAN_MILLISECOND ((int64_t)1000000)
#define CHAN_SECOND ((int64_t)1000000000)

/* ==== Timers (Go's time.Timer, time.After, time.AfterFunc) ================================= */

typedef struct chan_timer chan_timer_t;

/* Makes a timer that sends, once, the chan_now() of its firing (an int64_t) on its channel when
 * d nanoseconds have passed. d <= 0 fires at once: the value is in the channel when the call
 * returns, so a chan_tryselect over it takes it rather than its default (Go 1.23's channel is
 * ready at once). Go's time.NewTimer; time.After(d) is chan_timer_chan(chan_timer_make(d)) with
 * the timer freed when done.
 * Never early: the value sent, and the moment any receiver gets it, are >= the deadline.
 * The channel (chan_timer_chan) has Go 1.23's semantics: from a receiver's view it holds no
 * value from before a stop or reset (see chan_timer_stop), and chan_len() and chan_cap() of it
 * report 0, as Go's len(t.C) and cap(t.C) (a ticker's likewise).
 * NULL with errno ENOMEM (memory), EAGAIN (the timer thread could not be started).
 * Any thread; the timer belongs to the caller, who frees it with chan_timer_free. */
chan_timer_t *chan_timer_make(int64_t d);

/* As chan_timer_make, firing at the absolute deadline (chan_now() scale); a deadline already
 * passed fires at once, the value in the channel on return. CHAN_FOREVER: a timer that never
 * fires until reset. */
chan_timer_t *chan_timer_make_until(int64_t deadline);

/* Go's time.AfterFunc: calls fn(arg) once, after d nanoseconds, on the timer thread (d <= 0: as
 * soon as that thread can; never in the caller). fn must be short and must not block (every
 * timer of the process waits for it); it may call any non-blocking libchan function, including
 * chan_close, chan_trysend, and the stop, reset and free functions of any timer, this one
 * included. A reset while fn runs returns 0 and arms the timer again: fn is called once more,
 * after this call has returned (Go's Reset of an AfterFunc timer). The timer has no channel
 * (chan_timer_chan returns NULL). NULL with errno EINVAL (fn NULL), ENOMEM or EAGAIN. */
chan_timer_t *chan_timer_make_func(int64_t d, void (*fn)(void *arg), void *arg);

/* The timer's channel: elemsize sizeof(int64_t), receive only (do not send on it, close it or
 * free it). Valid from chan_timer_make until chan_timer_free, whether the timer runs or is
 * stopped, so a select may keep it as a case across stops and resets. NULL for a NULL timer
 * and for a chan_timer_make_func timer (a NULL case is never chosen). Any thread. */
chan_t *chan_timer_chan(const chan_timer_t *t);

/* Stops the timer. Returns 1 if the call stopped it (it had not fired, or its value had not
 * been received yet and is now discarded), 0 if it had already fired and its value was
 * received (or it was stopped already), -EINVAL for NULL.
 * Go 1.23's guarantee: once chan_timer_stop has returned, no receive that starts afterwards gets
 * a value sent before it. (A receive already woken with the value before the stop is a
 * receive that happened before it.) For a func timer, 1 means fn will not be called for this
 * arming; 0 means fn has been called or is being called now, on the timer thread.
 * Any thread, concurrently with the firing and with other calls on t. */
int chan_timer_stop(chan_timer_t *t);

/* Rearms the timer to fire d nanoseconds from now, whether it was running, stopped or had fired;
 * d <= 0 fires at once, as in chan_timer_make (a func timer's fn on the timer thread). Returns what
 * chan_timer_stop would have returned (1: it stopped a pending firing or discarded an unreceived
 * value; 0 otherwise), or -EINVAL for NULL, -EAGAIN if the timer thread had to be restarted (after
 * fork) and could not be. The same Go 1.23 guarantee: no receive that starts after reset returns
 * gets a value from before it. Any thread. */
int chan_timer_reset(chan_timer_t *t, int64_t d);

/* Stops the timer and frees it and its channel. 0; NULL: 0, no-op. -EBUSY while a thread or
 * task is blocked on the timer's channel (chan_free's rule): the timer is then stopped but
 * nothing is freed; call again once that thread has gone (its deadline, another case of its
 * select, or a reset of the timer that fires ends its wait). A func timer may be freed while
 * its fn runs, from fn itself too: the timer thread does not touch the timer after calling fn,
 * and fn is not called again. The owner's last call on t. */
int chan_timer_free(chan_timer_t *t);

/* ==== Tickers (Go's time.Ticker) ======================================================== */

typedef struct chan_ticker chan_ticker_t;

/* Makes a ticker that sends the chan_now() of each tick (an int64_t) on its channel every
 * period nanoseconds, the first one period from now. A slow receiver misses ticks: the channel
 * holds at most one, and a tick that finds it full is dropped (Go's Ticker), so ticks never
 * queue up behind a slow receiver. Ticks keep their phase (the k-th tick is due at
 * start + k * period) whatever the receiver does; a tick sent late is followed by the next one
 * due after it on that grid (Go's Ticker: no catching up). Any period works: one shorter than a
 * firing takes (a microsecond or so) keeps the timer thread busy sending ticks as fast as it
 * can, with other timers and calls served between them.
 * NULL with errno EINVAL (period <= 0), ENOMEM or EAGAIN. Any thread; the caller owns it. */
chan_ticker_t *chan_ticker_make(int64_t period);

/* The ticker's channel: elemsize sizeof(int64_t); as chan_timer_chan. NULL for NULL. */
chan_t *chan_ticker_chan(const chan_ticker_t *t);

/* Stops the ticker: no tick is sent after it returns, and a tick sent before and not yet
 * received is discarded (Go 1.23). 1 if it was running or a tick was discarded, 0 if it was
 * stopped already, -EINVAL for NULL. Any thread. */
int chan_ticker_stop(chan_ticker_t *t);

/* Restarts the ticker, running or stopped, with a new period, the next tick one period from
 * now; an unreceived tick is discarded. 1 if it was running, 0 if it was stopped; -EINVAL
 * (NULL, period <= 0: nothing changed), -EAGAIN as chan_timer_reset. Any thread. */
int chan_ticker_reset(chan_ticker_t *t, int64_t period);

/* Stops the ticker and frees it and its channel: as chan_timer_free (0, -EBUSY). */
int chan_ticker_free(chan_ticker_t *t);

/* ==== Contexts (Go's context package) ==================================================== */

/* A context carries a cancellation signal, maybe a deadline, and values, down a tree: each
 * context but the background root has a parent, and holds a reference to it.
 *
 *  - Cancelling a context cancels all its descendants, never its parent or its siblings. A
 *    child made from a context already cancelled is born cancelled, with the parent's error.
 *  - Cancellation is observed through the done channel (elemsize 0), which is closed when the
 *    context is cancelled: a receive on it, or a CHAN_RECV case in chan_select, becomes ready
 *    (-EPIPE, or ok = false) and stays so. Contexts that can never be cancelled (the
 *    background, chan_ctx_without_cancel) have a NULL done channel: never ready.
 *  - Why: a cancelled context has an error, -ECANCELED or -ETIMEDOUT (chan_ctx_err), and a
 *    cause (chan_ctx_cause): a negative errno value of the canceller's choosing
 *    (chan_ctx_cancel_cause, chan_ctx_with_deadline_cause), or the error when none was given.
 *    Both are set by the first cancel and inherited from the ancestor whose cancel reached it.
 *  - Memory: chan_ctx_free(ctx) ends the owner's use of ctx: it cancels ctx (and so its
 *    descendants) and detaches it from its parent. Its memory goes when its last child (and
 *    chan_ctx_after_func handle) has been freed too, so a child stays valid, with its values
 *    and deadline, after its parent was freed. Each context made must be freed exactly once;
 *    the background never is.
 *
 * All functions may be called concurrently on the same context from any thread, except that
 * chan_ctx_free is the owner's last call on it. */

typedef struct chan_ctx chan_ctx_t;

/* The root: never cancelled, no deadline, no values (Go's context.Background). Always the same
 * static context; freeing it is a no-op. Never NULL. */
chan_ctx_t *chan_ctx_background(void);

/* A child of parent that is cancelled by chan_ctx_cancel or chan_ctx_free on it, or when parent
 * is cancelled (Go's context.WithCancel). NULL with errno EINVAL (parent NULL) or ENOMEM. */
chan_ctx_t *chan_ctx_with_cancel(chan_ctx_t *parent);

/* As chan_ctx_with_cancel, and also cancelled with -ETIMEDOUT when the absolute deadline
 * (chan_now() scale) comes, never before it (Go's context.WithDeadline). If parent's deadline
 * is earlier, the child's is the parent's. A deadline already passed, the child's own or the
 * parent's (even before the timer thread has cancelled the parent), gives a child born
 * cancelled: with -ETIMEDOUT, or with the parent's error if the parent is cancelled already.
 * Otherwise the timer thread does the cancelling. A deadline of CHAN_FOREVER (and a timeout
 * that saturates to it) is none: the child is chan_ctx_with_cancel's, and chan_ctx_deadline
 * reports -ENOENT, where Go's has a deadline far away. NULL with errno EINVAL, ENOMEM or EAGAIN
 * (the timer thread could not be started). */
chan_ctx_t *chan_ctx_with_deadline(chan_ctx_t *parent, int64_t deadline);

/* chan_ctx_with_deadline(parent, chan_now() + timeout), saturating (Go's WithTimeout). */
chan_ctx_t *chan_ctx_with_timeout(chan_ctx_t *parent, int64_t timeout);

/* As chan_ctx_with_deadline, and when its own deadline cancels it (with -ETIMEDOUT), its cause
 * is cause (< 0; 0: -ETIMEDOUT, as chan_ctx_with_deadline) (Go's WithDeadlineCause). Its cancel
 * (chan_ctx_cancel, chan_ctx_free) and its parent's give the cause they give. A parent whose
 * deadline comes first ends it with that deadline's cause. NULL with errno EINVAL (also for
 * cause > 0), ENOMEM or EAGAIN. */
chan_ctx_t *chan_ctx_with_deadline_cause(chan_ctx_t *parent, int64_t deadline, int cause);

/* chan_ctx_with_deadline_cause(parent, chan_now() + timeout, cause), saturating (Go's
 * WithTimeoutCause). */
chan_ctx_t *chan_ctx_with_timeout_cause(chan_ctx_t *parent, int64_t timeout, int cause);

/* A child that sees parent's values but is not cancelled with it: no done channel (NULL), no
 * error, no deadline (Go's context.WithoutCancel). Its own children of with_cancel kind are
 * cancelled only by themselves or their ancestors below it. NULL with errno EINVAL, ENOMEM. */
chan_ctx_t *chan_ctx_without_cancel(chan_ctx_t *parent);

/* A child that carries key -> value, and otherwise is its parent: same done channel, error and
 * deadline (Go's context.WithValue). Keys compare by address: use the address of a static
 * object of your own as the key, so that no other code can collide with it. The value is
 * stored, never looked at or freed. NULL with errno EINVAL (parent or key NULL), ENOMEM. */
chan_ctx_t *chan_ctx_with_value(chan_ctx_t *parent, const void *key, void *value);

/* Cancels ctx with -ECANCELED, and all its descendants with it; idempotent (a later cancel,
 * or the deadline, changes nothing). Closes the done channel. 0; -EINVAL for NULL and for a
 * context that has no cancel of its own (background, without_cancel, with_value: cancel the
 * context they hang from). Any thread; returns after every descendant has been cancelled, also
 * when another thread is cancelling ctx or part of its subtree at the same time (it waits for
 * that thread to finish, as Go's cancel waits on the context's lock). */
int chan_ctx_cancel(chan_ctx_t *ctx);

/* As chan_ctx_cancel, recording cause (< 0, a negative errno value of the caller's choosing) as
 * the cause, for chan_ctx_cause on ctx and every descendant this cancel reaches; the error is
 * -ECANCELED all the same. 0: no cause, as chan_ctx_cancel. Only the first cancel counts: ctx
 * cancelled already (itself, by an ancestor, by its deadline) keeps its error and cause, and 0
 * is returned. Go's CancelCauseFunc: here every context with a cancel of its own takes a cause
 * (Go's WithCancelCause is chan_ctx_with_cancel). 0; -EINVAL as chan_ctx_cancel, and for
 * cause > 0 (nothing cancelled). Any thread. */
int chan_ctx_cancel_cause(chan_ctx_t *ctx, int cause);

/* The done channel: closed when ctx is cancelled; NULL (never ready) for contexts that can
 * never be cancelled. Do not send on it, close it or free it. Valid as long as ctx is. */
chan_t *chan_ctx_done(const chan_ctx_t *ctx);

/* Why ctx was cancelled: 0 while it is not; -ECANCELED (cancelled, by itself or an ancestor);
 * -ETIMEDOUT (a deadline came: Go's DeadlineExceeded). Once non-zero it never changes, and the
 * done channel is already closed. -EINVAL for NULL. */
int chan_ctx_err(const chan_ctx_t *ctx);

/* Why ctx was cancelled, in more words than chan_ctx_err: 0 while it is not (and always for
 * contexts that can never be cancelled: the background, chan_ctx_without_cancel); else the
 * cause of the first cancel that reached it, by ctx's own cancel or deadline or an ancestor's:
 * the cause given to chan_ctx_cancel_cause or chan_ctx_with_deadline_cause, or, when none was,
 * the error (-ECANCELED, -ETIMEDOUT) (Go's Cause). Never changes once non-zero; the done
 * channel is closed by then. -EINVAL for NULL. */
int chan_ctx_cause(const chan_ctx_t *ctx);

/* ctx's deadline (absolute, chan_now() scale) in *deadline: 0; -ENOENT when it has none
 * (*deadline is then CHAN_FOREVER); -EINVAL for NULL ctx or deadline. */
int chan_ctx_deadline(const chan_ctx_t *ctx, int64_t *deadline);

/* Looks key up in ctx and its ancestors, nearest first, up to the root: 0 with *value set, or
 * -ENOENT (*value set to NULL). -EINVAL for NULL ctx, key or value. */
int chan_ctx_value(const chan_ctx_t *ctx, const void *key, void **value);

/* The owner's last call on ctx: cancels it (as chan_ctx_cancel, for contexts that have a
 * cancel), detaches it from its parent, and releases it; its memory goes now, or when its last
 * child is freed. 0; NULL and the background: 0, no-op. A thread blocked on the done channel
 * of a context with a cancel of its own is woken by the cancel and returns normally; freeing
 * a with_value or without_cancel context cancels nothing. */
int chan_ctx_free(chan_ctx_t *ctx);

/* ---- After a context is done (Go's context.AfterFunc) ---- */

typedef struct chan_ctx_after chan_ctx_after_t;

/* Arranges for fn(arg) to be called once, after ctx is done (cancelled, by any path, or its
 * deadline came); at once if it is done already (Go's context.AfterFunc). fn runs on the timer
 * thread, as a func timer's (chan_timer_make_func), and under the same rules: short, not
 * blocking, any non-blocking libchan call, the stop and free of this handle included. A cancel
 * neither runs fn nor waits for it: it starts fn once it has cancelled its whole subtree, when it
 * wakes the done channels' waiters, so fn sees every descendant of ctx cancelled. Below a
 * context that can never be cancelled (the background, chan_ctx_without_cancel), fn is never
 * called. Several on one context are independent. The handle belongs to the caller, who frees
 * it with chan_ctx_after_free; it holds a reference to ctx, so ctx may be freed first (a free
 * that cancels ctx starts fn), and ctx's memory goes with the handle's. NULL with errno EINVAL
 * (ctx or fn NULL), ENOMEM, or EAGAIN (the timer thread could not be started). */
chan_ctx_after_t *chan_ctx_after_func(chan_ctx_t *ctx, void (*fn)(void *arg), void *arg);

/* Go's stop function: 1 if the call stopped fn from being started (it will never be called),
 * 0 if fn has been started already (it has been called or is being called, on the timer thread)
 * or was stopped already; -EINVAL for NULL. It does not wait for fn: a caller that needs to
 * know when fn is done arranges that with fn. Any thread. */
int chan_ctx_after_stop(chan_ctx_after_t *a);

/* Stops a (as chan_ctx_after_stop) and releases it: 0; NULL: 0, no-op. A fn started already
 * still runs, and a may be freed while it runs, from fn too. The owner's last call on a. */
int chan_ctx_after_free(chan_ctx_after_t *a);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* CHAN_TIME_H */
