/* SPDX-License-Identifier: MIT */
/*
 * context.c - a context tree after Go's context package: background, with-cancel,
 * with-deadline, with-timeout, without-cancel, with-value; a done channel closed on cancel, an
 * error and a cause; functions run after a context is done (Go's AfterFunc).
 *
 * Four kinds of node besides the background root, as in Go's context.go:
 *  - CANCEL (Go's cancelCtx, timerCtx): owns a done channel (elemsize 0), an error and a cause,
 *    the list of the cancelable contexts registered with it, and maybe a deadline timer.
 *  - VALUE (valueCtx): one key/value; its done, error and deadline are its parent's.
 *  - DETACHED (withoutCancelCtx): its parent's values, and nothing else.
 *  - AFTER (afterFuncCtx): a function to run once its context is done. Not a context: the
 *    handle chan_ctx_after_func returns. It registers as a CANCEL node does, and the walk that
 *    meets it starts its function (after_fire) once the walk is over, rather than descend.
 * A CANCEL or AFTER node registers with its nearest CANCEL ancestor (Go's
 * propagateCancel/parentCancelCtx), skipping VALUE nodes; below the background or a DETACHED node
 * nothing can cancel it, and it registers nowhere.
 *
 * Invariants:
 *  - n->mu guards n's error (written once, 0 -> -ECANCELED/-ETIMEDOUT; read without the lock
 *    through the atomic) and its cause (written just before the error, read only after the error
 *    has been seen) and, while n's error is 0, n's children list and the `linked` and
 *    sibling links of every node registered with n. No path holds two context locks at once.
 *  - Cancelling walks the subtree depth first without recursion, so that any depth fits in O(1)
 *    stack (on the timer thread and on a task's small stack too). The canceller that sets a
 *    node's error claims it: from then on no child registers with it, its children know they
 *    are unlinked, and its children list and their sibling links are the claimer's alone, to pop
 *    as it walks; it comes back up by the `reg` links. A claimer sets `walked` once the node's
 *    whole subtree is cancelled. A canceller that finds a node claimed by another waits for
 *    `walked`, so that every cancel returns after every descendant is cancelled (Go's cancel
 *    holds the node's lock across its children for that).
 *  - A node's error is set before its done channel is closed, both under n->mu (chan_ctx_err
 *    reads the error without it, and waits for mu if it sees one before `closed`), and a node with
 *    its error set is on no list: its claimer takes its list (with a reference to each child)
 *    and, after the walk, unlinks it from the node it registered with. A child registers only
 *    with an uncancelled node (under that node's lock); else it is born cancelled.
 *  - References: the owner's (dropped by chan_ctx_free, after cancelling), one per child (a
 *    child refers to its parent until its own memory goes), and one for an armed deadline timer
 *    (dropped by the timer's callback after it cancels, or by whoever stops the timer before it
 *    fires), and for an AFTER node one for its run (taken by after_fire, dropped once fn has
 *    returned). Memory goes with the last reference, and then the parent's reference is dropped.
 *    Every CANCEL node is cancelled before its memory goes, so its done channel is closed and
 *    only an operation that is still unlinking itself from it can delay chan_free (chan.h,
 *    chan_free); then the timer thread frees the channel later (free_done), rather than anyone
 *    waiting for it.
 *  - Lock order with timers: n->mu, then the timer queue's lock (chan_timer_reset under n->mu).
 *  - A cancel wakes the waiters of the done channels it closes once its walk is over and no
 *    context lock is held (wakeups_hold, seam.h): a plugged-in scheduler's unpark may cancel or
 *    derive from the very context.
 *    The deadline callback runs on the timer thread without the timer queue's lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

#include "chan_time.h"
#include "seam.h"
#include "trace/hooks.h" /* the role of its done channels, for the leak detector */

enum ctx_kind { BACKGROUND, CANCEL, VALUE, DETACHED, AFTER };

/* An AFTER node's state: ARMED until the first of its walk (STARTED: fn runs, on the timer
 * thread) and its stop (STOPPED) wins (Go's afterFuncCtx.once). */
enum { AFTER_ARMED, AFTER_STARTED, AFTER_STOPPED };

struct chan_ctx {
    enum ctx_kind kind;
    _Atomic long refs;
    struct chan_ctx *parent; /* NULL for the background; a reference held */

    const void *key; /* VALUE */
    void *value;

    pthread_mutex_t mu;       /* CANCEL, from here on */
    pthread_cond_t walked_cv; /* await_walked sleeps here, under mu */
    _Atomic int err;
    int cause;                /* set with err, just before it: Go's cancelCtx.cause */
    int deadline_cause;       /* the cause its deadline gives: its own or its ancestor's */
    _Atomic bool closed;      /* err set and done closed (claim's last step under mu) */
    _Atomic bool walked;      /* err set, and every descendant cancelled */
    _Atomic int walk_waiters; /* threads in await_walked */
    chan_t *done;
    int64_t deadline;             /* effective: the earliest of its own and its ancestors' */
    chan_timer_t *timer;          /* a deadline of its own, or NULL; AFTER: runs fn */
    struct chan_ctx *children;    /* registered with this node; under mu, then its claimer's */
    struct chan_ctx *reg;         /* the node this one registered with, or NULL; fixed */
    struct chan_ctx *next, *prev; /* siblings in reg->children; under reg->mu */
    bool linked;                  /* on reg->children; under reg->mu */

    void (*fn)(void *arg); /* AFTER; with parent, timer, reg and the links above */
    void *arg;
    _Atomic int state;
};

/* chan_ctx_after_func's handle: an AFTER node, of a type of its own so that it cannot be passed
 * for a context. */
struct chan_ctx_after {
    struct chan_ctx n;
};

static struct chan_ctx background = {.kind = BACKGROUND};

/* ---- References ------------------------------------------------------------------------------ */

static void ref(struct chan_ctx *n)
{
    if (n->kind != BACKGROUND)
        atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
}

/* Freeing a done channel later: chan_free refuses (-EBUSY) while a select that completed
 * through another channel has not yet unlinked itself from this one. That select may be a task
 * of an M:N scheduler waiting for the very worker thread we run on, so we must not wait for it
 * here: the timer thread retries every millisecond until the channel is free. */
struct deferred_free {
    chan_t *c;
    chan_timer_t *t;
};

static void retry_free(void *arg)
{
    struct deferred_free *d = arg;
    if (chan_free(d->c) == -EBUSY) {
        chan_timer_reset(d->t, CHAN_MILLISECOND);
        return;
    }
    chan_timer_free(d->t); /* from its own callback: allowed */
    chan_mfree(d);
}

static void free_done(chan_t *c)
{
    if (chan_free(c) != -EBUSY)
        return;
    struct deferred_free *d = chan_malloc(sizeof *d);
    if (d) {
        d->c = c;
        /* Armed only once d->t is set (the reset orders it before the callback). */
        d->t = chan_timer_make_func(CHAN_FOREVER, retry_free, d);
        if (d->t && chan_timer_reset(d->t, 0) >= 0)
            return;
        chan_timer_free(d->t);
        chan_mfree(d);
    }
    /* No memory for the deferral: the last resort is to wait here, a bounded moment for
     * threads (not for tasks sharing this worker, which is why this is the last resort). */
    while (chan_free(c) == -EBUSY)
        sched_yield();
}

static void destroy(struct chan_ctx *n)
{
    /* A deadline timer stopped or fired, an AFTER node's fired or never armed; neither has a
     * channel: cannot be -EBUSY. From the AFTER node's own callback too (after_run): allowed. */
    chan_timer_free(n->timer);
    if (n->kind == CANCEL) {
        free_done(n->done); /* closed: no operation can block on it any more */
        pthread_cond_destroy(&n->walked_cv);
        pthread_mutex_destroy(&n->mu);
    }
    chan_mfree(n);
}

/* Drops a reference; the last one frees the node and drops its reference to its parent, up the
 * tree as far as that goes (a loop, not recursion: chains may be long). */
static void unref(struct chan_ctx *n)
{
    while (n && n->kind != BACKGROUND) {
        if (atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) != 1)
            return;
        struct chan_ctx *parent = n->parent;
        destroy(n);
        n = parent;
    }
}

/* ---- Walking up ------------------------------------------------------------------------------ */

/* The node whose cancel ctx follows: ctx itself, or its nearest CANCEL ancestor through VALUE
 * nodes; NULL when nothing can cancel it (background, DETACHED). Go's parentCancelCtx. */
static struct chan_ctx *canceller(const struct chan_ctx *ctx)
{
    while (ctx->kind == VALUE)
        ctx = ctx->parent;
    return ctx->kind == CANCEL ? (struct chan_ctx *)ctx : NULL;
}

/* ---- Cancel ---------------------------------------------------------------------------------- */

/* Claims n for the caller: sets its cause and error and closes its done channel (Go's
 * cancelCtx.cancel up to its loop over the children), and hands the caller n's children, each
 * with a reference and marked unlinked, in n->children. false if n was claimed already. */
static bool claim(struct chan_ctx *n, int err, int cause)
{
    pthread_mutex_lock(&n->mu);
    if (atomic_load_explicit(&n->err, memory_order_relaxed)) {
        pthread_mutex_unlock(&n->mu);
        return false;
    }
    n->cause = cause; /* published by the error's release */
    atomic_store_explicit(&n->err, err, memory_order_release);
    chan_close(n->done);
    atomic_store_explicit(&n->closed, true, memory_order_release);
    for (struct chan_ctx *k = n->children; k; k = k->next) {
        k->linked = false;
        ref(k); /* a child being freed now stays until its walk is done */
    }
    pthread_mutex_unlock(&n->mu);
    return true;
}

/* n's subtree is cancelled (the claimer, after its children): stops n's deadline timer and lets
 * those waiting for n go. */
static void set_walked(struct chan_ctx *n)
{
    /* The timer's reference is ours if we stop it before it fires. Never the last: the claimer
     * holds one. */
    if (n->timer && chan_timer_stop(n->timer) == 1)
        unref(n);
    /* Sequentially consistent, against await_walked's: it counts itself, then reads walked; we
     * write walked, then read the count. One of us sees the other, and the lock is taken only
     * when someone waits (rarely: most walks meet no other canceller). */
    atomic_store(&n->walked, true);
    if (atomic_load(&n->walk_waiters)) {
        pthread_mutex_lock(&n->mu);
        pthread_cond_broadcast(&n->walked_cv);
        pthread_mutex_unlock(&n->mu);
    }
}

/* Waits until n's claimer has cancelled n's whole subtree. A claimer does not wait for anything
 * but the claimers of nodes below it, so these waits end. */
static void await_walked(struct chan_ctx *n)
{
    if (atomic_load_explicit(&n->walked, memory_order_acquire))
        return;
    pthread_mutex_lock(&n->mu);
    atomic_fetch_add(&n->walk_waiters, 1);
    while (!atomic_load(&n->walked))
        pthread_cond_wait(&n->walked_cv, &n->mu);
    atomic_fetch_sub(&n->walk_waiters, 1);
    pthread_mutex_unlock(&n->mu);
}

/* Unlinks n from the node it registered with, unless that node's claimer has done so already
 * (Go's removeChild). */
static void unlink_reg(struct chan_ctx *n)
{
    struct chan_ctx *r = n->reg;
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    if (n->linked) {
        if (n->prev)
            n->prev->next = n->next;
        else
            r->children = n->next;
        if (n->next)
            n->next->prev = n->prev;
        n->linked = false;
    }
    pthread_mutex_unlock(&r->mu);
}

/* ---- AfterFunc ------------------------------------------------------------------------------- */

/* On the timer thread (n's timer, reset to fire at once): the run's reference goes once fn has
 * returned, so that the owner may free the handle while fn runs, or from fn. */
static void after_run(void *arg)
{
    struct chan_ctx *n = arg;
    n->fn(n->arg);
    unref(n);
}

/* n's context is done (a walk met n, or n was made on a context done already): starts fn, unless
 * a stop came first (Go's afterFuncCtx.cancel: once.Do(go f)). The caller holds a reference. fn
 * runs on the timer thread, as a func timer's does, never in the canceller: a cancel neither
 * runs fn nor waits for it. */
static void after_fire(struct chan_ctx *n)
{
    int armed = AFTER_ARMED;
    if (!atomic_compare_exchange_strong(&n->state, &armed, AFTER_STARTED))
        return;
    ref(n); /* the run's */
    /* A reset fails only in a child of fork() whose timer thread cannot be started again: fn
     * then runs here rather than never. */
    if (chan_timer_reset(n->timer, 0) < 0)
        after_run(n);
}

/* ---- Cancel, continued ----------------------------------------------------------------------- */

/* Go's cancelCtx.cancel: cancels n and its descendants with err and cause (non-zero: the error
 * when there is no cause of its own), returning once all are cancelled, whoever cancelled each.
 * The caller holds a reference to n. remove: unlink n from the node it registered with (false
 * when that node is cancelling it, and has unlinked it). */
void (*ctx_claimed_hook)(void *ctx);

static void cancel_node(struct chan_ctx *n, int err, int cause, bool remove)
{
    /* The unparks of the done channels' waiters wait until the whole walk is over (seam.h):
     * under n->mu an unpark that cancels n, or makes a child of it, would take n->mu again,
     * and before `walked` is set its chan_ctx_cancel would wait for this very walk. */
    wakeups_hold();
    if (!claim(n, err, cause)) {
        await_walked(n); /* its claimer unlinks it */
        wakeups_release();
        return;
    }
    if (ctx_claimed_hook)
        ctx_claimed_hook(n);
    /* Depth first: pop the next child of cur; descend into it if we claim it; when cur has no
     * children left its subtree is done, and we go back up to the node whose list it was on.
     * AFTER nodes are leaves: kept, with the claim's reference, on a list of our own (their
     * links are ours now) until the walk is over. */
    struct chan_ctx *cur = n, *after = NULL;
    for (;;) {
        struct chan_ctx *k = cur->children;
        if (k) {
            cur->children = k->next;
            if (k->kind == AFTER) {
                k->next = after;
                after = k;
            } else if (claim(k, err, cause)) {
                if (ctx_claimed_hook)
                    ctx_claimed_hook(k);
                cur = k;
            } else {
                await_walked(k); /* a cancel of k itself, or its deadline, got there first */
                unref(k);
            }
            continue;
        }
        set_walked(cur);
        if (cur == n)
            break;
        struct chan_ctx *up = cur->reg;
        unref(cur); /* the reference claim(up) took; up's stays until up is walked */
        cur = up;
    }

    if (remove)
        unlink_reg(n);
    /* The functions start once the walk is done with n and its subtree, as the done channels'
     * waiters are woken: fn sees every context below n cancelled, and may free n (its owner's
     * last call made in fn) with nothing of ours still to touch it. */
    while (after) {
        struct chan_ctx *k = after;
        after = k->next;
        after_fire(k);
        unref(k);
    }
    wakeups_release();
}

/* The deadline came (on the timer thread): cancel, then drop the timer's reference. */
static void deadline_fired(void *arg)
{
    struct chan_ctx *n = arg;
    cancel_node(n, -ETIMEDOUT, n->deadline_cause, true);
    unref(n);
}

/* ---- Making ---------------------------------------------------------------------------------- */

static struct chan_ctx *node_new(struct chan_ctx *parent, enum ctx_kind kind)
{
    if (!parent) {
        errno = EINVAL;
        return NULL;
    }
    struct chan_ctx *n = chan_malloc(sizeof *n);
    if (!n) {
        errno = ENOMEM;
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->kind = kind;
    atomic_init(&n->refs, 1); /* the owner's */
    atomic_init(&n->err, 0);
    atomic_init(&n->closed, false);
    atomic_init(&n->walked, false);
    atomic_init(&n->walk_waiters, 0);
    atomic_init(&n->state, AFTER_ARMED);
    n->parent = parent;
    n->deadline = CHAN_FOREVER;
    n->deadline_cause = -ETIMEDOUT;
    if (kind == CANCEL) {
        if (!(n->done = chan_make(0, 0))) {
            chan_mfree(n);
            errno = ENOMEM;
            return NULL;
        }
        if (tracing(TF_REGISTRY | TF_EVENTS))
            trace_chan_role(n->done, ROLE_CONTEXT); /* a leak report says "context done" */
        pthread_mutex_init(&n->mu, NULL);
        pthread_cond_init(&n->walked_cv, NULL);
        chan_ctx_deadline(parent, &n->deadline);
        struct chan_ctx *pc = canceller(parent);
        if (pc) /* the deadline it inherits ends it with that deadline's cause */
            n->deadline_cause = pc->deadline_cause;
    }
    return n;
}

/* Registers a new CANCEL or AFTER node with its nearest CANCEL ancestor, or, if that one is
 * cancelled, cancels it at once with the ancestor's error and cause or starts its function (Go's
 * propagateCancel). Takes the reference to the parent. */
static void attach(struct chan_ctx *n)
{
    ref(n->parent);
    struct chan_ctx *r = canceller(n->parent);
    n->reg = r;
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    int err = atomic_load_explicit(&r->err, memory_order_relaxed), cause = r->cause;
    if (!err) {
        n->prev = NULL;
        n->next = r->children;
        if (r->children)
            r->children->prev = n;
        r->children = n;
        n->linked = true;
    }
    pthread_mutex_unlock(&r->mu);
    if (err && n->kind == AFTER) {
        await_walked(r); /* as in cancel_node: fn sees the cancel's whole subtree cancelled */
        after_fire(n);
    } else if (err)
        cancel_node(n, err, cause, false);
}

chan_ctx_t *chan_ctx_background(void) { return &background; }

chan_ctx_t *chan_ctx_with_cancel(chan_ctx_t *parent)
{
    struct chan_ctx *n = node_new(parent, CANCEL);
    if (n)
        attach(n);
    return n;
}

/* Go's WithDeadlineCause; cause is the caller's, checked (0: none). */
static chan_ctx_t *with_deadline(chan_ctx_t *parent, int64_t deadline, int cause)
{
    int64_t pd;
    if (!parent) {
        errno = EINVAL;
        return NULL;
    }
    chan_ctx_deadline(parent, &pd);
    int64_t now = chan_now();
    /* A parent that ends first makes a deadline of our own pointless (Go does the same), unless
     * its deadline has passed: the timer thread may not have cancelled it yet, and a context
     * whose deadline has passed is born cancelled (below), as Go's WithDeadline makes it. */
    if (pd <= deadline && pd > now)
        return chan_ctx_with_cancel(parent);

    struct chan_ctx *n = node_new(parent, CANCEL);
    if (!n)
        return NULL;
    n->deadline = deadline < pd ? deadline : pd;
    if (deadline <= pd) /* its own deadline is the one that ends it (else the parent's, passed) */
        n->deadline_cause = cause ? cause : -ETIMEDOUT;
    if (n->deadline <= now) {
        attach(n); /* born cancelled already if parent is: its error wins, as in Go */
        cancel_node(n, -ETIMEDOUT, n->deadline_cause, true);
        return n;
    }
    /* The timer exists before anything can cancel n, parked at CHAN_FOREVER in the heap; it is
     * armed below only if n is not cancelled by then. */
    n->timer = chan_timer_make_func(CHAN_FOREVER, deadline_fired, n);
    if (!n->timer) {
        int e = errno;
        destroy(n);
        errno = e;
        return NULL;
    }
    atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed); /* the timer's */
    attach(n);

    int r = 0;
    bool passed = false;
    pthread_mutex_lock(&n->mu);
    if (!atomic_load_explicit(&n->err, memory_order_relaxed)) {
        now = chan_now();
        if (deadline <= now)
            passed = true; /* came while we were setting up */
        else
            r = chan_timer_reset(n->timer, deadline - now); /* fires at or after deadline */
    }
    pthread_mutex_unlock(&n->mu);
    if (passed)
        cancel_node(n, -ETIMEDOUT, n->deadline_cause, true);
    if (r < 0) { /* the timer thread could not be restarted after fork() */
        chan_ctx_free(n);
        errno = -r;
        return NULL;
    }
    return n;
}

chan_ctx_t *chan_ctx_with_deadline(chan_ctx_t *parent, int64_t deadline)
{
    return with_deadline(parent, deadline, 0);
}

chan_ctx_t *chan_ctx_with_deadline_cause(chan_ctx_t *parent, int64_t deadline, int cause)
{
    if (cause > 0) {
        errno = EINVAL;
        return NULL;
    }
    return with_deadline(parent, deadline, cause);
}

static int64_t after_now(int64_t timeout)
{
    int64_t now = chan_now();
    return timeout > CHAN_FOREVER - now ? CHAN_FOREVER : now + timeout;
}

chan_ctx_t *chan_ctx_with_timeout(chan_ctx_t *parent, int64_t timeout)
{
    return chan_ctx_with_deadline(parent, after_now(timeout));
}

chan_ctx_t *chan_ctx_with_timeout_cause(chan_ctx_t *parent, int64_t timeout, int cause)
{
    return chan_ctx_with_deadline_cause(parent, after_now(timeout), cause);
}

chan_ctx_t *chan_ctx_without_cancel(chan_ctx_t *parent)
{
    struct chan_ctx *n = node_new(parent, DETACHED);
    if (n)
        ref(parent);
    return n;
}

chan_ctx_t *chan_ctx_with_value(chan_ctx_t *parent, const void *key, void *value)
{
    if (!key) {
        errno = EINVAL;
        return NULL;
    }
    struct chan_ctx *n = node_new(parent, VALUE);
    if (n) {
        n->key = key;
        n->value = value;
        ref(parent);
    }
    return n;
}

/* ---- Using ----------------------------------------------------------------------------------- */

int chan_ctx_cancel(chan_ctx_t *ctx) { return chan_ctx_cancel_cause(ctx, 0); }

/* Go's CancelCauseFunc: any context with a cancel of its own takes a cause, there being no
 * separate cancel function whose type could tell them apart. */
int chan_ctx_cancel_cause(chan_ctx_t *ctx, int cause)
{
    if (!ctx || ctx->kind != CANCEL || cause > 0)
        return -EINVAL;
    cancel_node(ctx, -ECANCELED, cause ? cause : -ECANCELED, true);
    return 0;
}

chan_t *chan_ctx_done(const chan_ctx_t *ctx)
{
    struct chan_ctx *n = ctx ? canceller(ctx) : NULL;
    return n ? n->done : NULL;
}

int chan_ctx_err(const chan_ctx_t *ctx)
{
    if (!ctx)
        return -EINVAL;
    struct chan_ctx *n = canceller(ctx);
    if (!n)
        return 0;
    int err = atomic_load_explicit(&n->err, memory_order_acquire);
    /* Go's Err reads the error under the context's lock, which its cancel holds from setting the
     * error to closing done: a non-zero error means done is closed. The error is read without
     * the lock here; seen in that window, before done is closed, wait for the claimer to close
     * it. (After the close, the claimer may still hold mu, marking its children: a done channel
     * seen closed does not wait for that. Its waiters are unparked after its walk: seam.h.) */
    if (err && !atomic_load_explicit(&n->closed, memory_order_acquire) &&
        chan_tryrecv(n->done, NULL) != -EPIPE) {
        pthread_mutex_lock(&n->mu);
        pthread_mutex_unlock(&n->mu);
    }
    return err;
}

/* Go's Cause: the cause was written before the error that chan_ctx_err has seen. */
int chan_ctx_cause(const chan_ctx_t *ctx)
{
    int err = chan_ctx_err(ctx);
    return err && ctx ? canceller(ctx)->cause : err;
}

int chan_ctx_deadline(const chan_ctx_t *ctx, int64_t *deadline)
{
    if (!ctx || !deadline)
        return -EINVAL;
    struct chan_ctx *n = canceller(ctx);
    *deadline = n ? n->deadline : CHAN_FOREVER;
    return *deadline == CHAN_FOREVER ? -ENOENT : 0;
}

int chan_ctx_value(const chan_ctx_t *ctx, const void *key, void **value)
{
    if (!ctx || !key || !value)
        return -EINVAL;
    for (; ctx; ctx = ctx->parent) {
        if (ctx->kind == VALUE && ctx->key == key) {
            *value = ctx->value;
            return 0;
        }
    }
    *value = NULL;
    return -ENOENT;
}

int chan_ctx_free(chan_ctx_t *ctx)
{
    if (!ctx || ctx->kind == BACKGROUND)
        return 0;
    if (ctx->kind == CANCEL)
        cancel_node(ctx, -ECANCELED, -ECANCELED, true);
    unref(ctx);
    return 0;
}

/* ---- AfterFunc: the handle ------------------------------------------------------------------- */

chan_ctx_after_t *chan_ctx_after_func(chan_ctx_t *ctx, void (*fn)(void *arg), void *arg)
{
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    struct chan_ctx *n = node_new(ctx, AFTER);
    if (!n)
        return NULL;
    n->fn = fn;
    n->arg = arg;
    /* Parked at CHAN_FOREVER (not pending for a deadlock check) until after_fire resets it. */
    if (!(n->timer = chan_timer_make_func(CHAN_FOREVER, after_run, n))) {
        int e = errno;
        destroy(n);
        errno = e;
        return NULL;
    }
    attach(n); /* below a context that is never done, it waits for its stop */
    return (chan_ctx_after_t *)n;
}

/* Go's stop function: the first of stop and the walk wins. */
int chan_ctx_after_stop(chan_ctx_after_t *a)
{
    if (!a)
        return -EINVAL;
    struct chan_ctx *n = &a->n;
    int armed = AFTER_ARMED;
    if (!atomic_compare_exchange_strong(&n->state, &armed, AFTER_STOPPED))
        return 0;
    unlink_reg(n); /* a claimer that has taken it already skips it (its state) */
    return 1;
}

int chan_ctx_after_free(chan_ctx_after_t *a)
{
    if (!a)
        return 0;
    chan_ctx_after_stop(a);
    unref(&a->n); /* fn, if started, holds a reference of its own until it returns */
    return 0;
}
