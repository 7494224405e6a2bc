/* SPDX-License-Identifier: MIT */
/*
 * test_sync.c - chan_sync.h on threads: the WaitGroup (counting, waiting, the round's channel
 * in a select, deadlines, rounds and Go's reuse rules, misuse reported as errors, add/done/wait
 * racing across threads for TSan) and the group (first error cancels the context and is what
 * wait returns, limits, try, parent cancellation, spawn functions, nesting, reuse, free).
 * test_mpg_sync.c runs the same parts on Gs. A peer is known to be blocked once its sudog is
 * queued (testutil.h), never by sleeping; the only sleeps give a wrong implementation the time
 * to show itself.
 */
#include "testgate.h"

#include <stdatomic.h>

#include "sync/chan_sync.h"

static chan_wg_t *mkwg(void)
{
    chan_wg_t *wg = chan_wg_make();
    ck_assert_ptr_nonnull(wg);
    return wg;
}

/* The round's channel is closed: a receive reports it at once. */
static int is_closed(chan_t *c) { return chan_tryrecv(c, NULL) == -EPIPE; }

/* ---- WaitGroup: counting and waiting --------------------------------------------------------- */

START_TEST(wg_bad_arguments)
{
    ck_assert_int_eq(chan_wg_add(NULL, 1), -EINVAL);
    ck_assert_int_eq(chan_wg_done(NULL), -EINVAL);
    ck_assert_int_eq(chan_wg_wait(NULL), -EINVAL);
    ck_assert_int_eq(chan_wg_wait_until(NULL, 0), -EINVAL);
    errno = 0;
    ck_assert_ptr_null(chan_wg_chan(NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_wg_free(NULL), 0);
}
END_TEST

START_TEST(wg_zero_is_done)
{
    chan_wg_t *wg = mkwg();
    ck_assert_int_eq(chan_wg_wait(wg), 0);
    ck_assert_int_eq(chan_wg_wait_until(wg, 0), 0); /* ready: the deadline does not matter */
    ck_assert(is_closed(chan_wg_chan(wg)));
    ck_assert_int_eq(chan_wg_add(wg, 0), 0);
    ck_assert(is_closed(chan_wg_chan(wg)));
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

/* Go's "sync: negative WaitGroup counter" is -EINVAL, and the counter is left as it was. */
START_TEST(wg_negative_counter)
{
    chan_wg_t *wg = mkwg();
    ck_assert_int_eq(chan_wg_done(wg), -EINVAL);
    ck_assert_int_eq(chan_wg_add(wg, -5), -EINVAL);
    ck_assert_int_eq(chan_wg_wait(wg), 0); /* still zero */
    ck_assert_int_eq(chan_wg_add(wg, 2), 0);
    ck_assert_int_eq(chan_wg_add(wg, -3), -EINVAL);
    ck_assert_int_eq(chan_wg_wait_until(wg, chan_now() + MS), -ETIMEDOUT); /* still 2 */
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_wg_wait_until(wg, chan_now() + MS), -ETIMEDOUT); /* 1 */
    ck_assert_int_eq(chan_wg_add(wg, -2), -EINVAL);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_wg_wait(wg), 0);
    ck_assert_int_eq(chan_wg_done(wg), -EINVAL);
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

START_TEST(wg_overflow)
{
    chan_wg_t *wg = mkwg();
    ck_assert_int_eq(chan_wg_add(wg, INT64_MAX), 0);
    ck_assert_int_eq(chan_wg_add(wg, 1), -EOVERFLOW);
    ck_assert_int_eq(chan_wg_add(wg, INT64_MIN), -EINVAL); /* -1: negative, not an overflow */
    ck_assert_int_eq(chan_wg_add(wg, -(INT64_MAX - 1)), 0);
    ck_assert_int_eq(chan_wg_wait_until(wg, chan_now() + MS), -ETIMEDOUT);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_wg_wait(wg), 0);
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

struct worker {
    chan_wg_t *wg;
    chan_t *go; /* closed to let the workers finish */
    int value;  /* written before done, read after wait: the ordering Wait promises */
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    chan_recv(w->go, NULL);
    w->value = 42;
    ck_assert_int_eq(chan_wg_done(w->wg), 0);
    return NULL;
}

static atomic_int waiter_returned;

static void *waiter_main(void *p)
{
    chan_wg_t *wg = p;
    int rc = chan_wg_wait(wg);
    atomic_store(&waiter_returned, 1);
    return (void *)(intptr_t)rc;
}

/* Wait blocks until the last done, not before, and sees what every task wrote before its done. */
START_TEST(wg_wait_until_last_done)
{
    enum { N = 8 };
    chan_wg_t *wg = mkwg();
    chan_t *go = chan_make(0, 0);
    atomic_store(&waiter_returned, 0);
    struct worker w[N];
    pthread_t th[N];
    ck_assert_int_eq(chan_wg_add(wg, N), 0);
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){wg, go, 0};
        th[i] = spawn(worker_main, &w[i]);
    }
    pthread_t wt = spawn(waiter_main, wg);
    ck_assert(blocked_receivers_at_least(chan_wg_chan(wg), 1));
    ck_assert_int_eq(chan_wg_add(wg, -(N - 1)), 0); /* as if N - 1 had finished */
    sleep_ms(20);
    ck_assert_int_eq(atomic_load(&waiter_returned), 0);
    ck_assert_int_eq(chan_wg_add(wg, N - 1), 0); /* back: the counter never touched zero */
    ck_assert_int_eq(chan_close(go), 0);
    for (int i = 0; i < N; i++)
        join(th[i]);
    ck_assert_ptr_null(join(wt));
    ck_assert_int_eq(atomic_load(&waiter_returned), 1);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(w[i].value, 42);
    ck_assert_int_eq(chan_wg_free(wg), 0);
    ck_assert_int_eq(chan_free(go), 0);
}
END_TEST

START_TEST(wg_wait_until_deadline)
{
    chan_wg_t *wg = mkwg();
    ck_assert_int_eq(chan_wg_add(wg, 1), 0);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_wg_wait_until(wg, t0 + 30 * MS), -ETIMEDOUT);
    int64_t late = chan_now() - (t0 + 30 * MS);
    ck_assert_int_ge(late, 0);
    ck_assert_int_le(late, late_bound());
    ck_assert_int_eq(chan_wg_wait_until(wg, 0), -ETIMEDOUT); /* past: the try form */
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_wg_wait_until(wg, 0), 0);
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

/* The round's channel is a select case like any other: not ready while the counter is up,
 * chosen with ok = false when it comes down. */
START_TEST(wg_chan_in_select)
{
    chan_wg_t *wg = mkwg();
    chan_t *other = chan_make(sizeof(int), 0);
    ck_assert_int_eq(chan_wg_add(wg, 2), 0);
    chan_t *done = chan_wg_chan(wg);
    ck_assert_ptr_nonnull(done);
    ck_assert_ptr_eq(chan_wg_chan(wg), done); /* one channel per round */
    int v;
    struct chan_case cs[] = {chan_case_recv(other, &v), chan_case_recv(done, NULL)};
    ck_assert_int_eq(chan_tryselect(cs, 2), -EAGAIN);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_tryselect(cs, 2), -EAGAIN);
    pthread_t wt = spawn(waiter_main, wg);
    ck_assert(blocked_receivers_at_least(done, 1));
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_select_until(cs, 2, chan_now() + 5000 * MS), 1);
    ck_assert(!cs[1].ok);
    ck_assert_ptr_null(join(wt));
    ck_assert_int_eq(chan_wg_free(wg), 0);
    ck_assert_int_eq(chan_free(other), 0);
}
END_TEST

/* Go's Wait at a counter of zero returns at once, whatever Add comes at the same time. The
 * channel taken at zero is that wait as a select case: a round begun before the select is made
 * must not free it under the select (chan_wg(3)). It did: the add freed the closed channel
 * that chan_wg_chan had returned at zero, and the select read freed memory (ASan: use after
 * free; in the plain build the new channel below takes its place and is open, -EAGAIN). */
START_TEST(wg_chan_taken_at_zero)
{
    chan_wg_t *wg = mkwg();
    for (int r = 0; r < 3; r++) { /* before the first round and after one */
        chan_t *at_zero = chan_wg_chan(wg);
        ck_assert_int_eq(chan_wg_add(wg, 1), 0); /* an add from zero, racing the wait */
        chan_t *other = mk(0, 0);                /* would take the freed channel's memory */
        struct chan_case cs[] = {chan_case_recv(at_zero, NULL)};
        ck_assert_int_eq(chan_tryselect(cs, 1), 0); /* the wait at zero: done at once */
        ck_assert(!cs[0].ok);
        ck_assert_ptr_ne(chan_wg_chan(wg), at_zero); /* the round's own channel, open */
        ck_assert(!is_closed(chan_wg_chan(wg)));
        ck_assert_int_eq(chan_free(other), 0);
        ck_assert_int_eq(chan_wg_done(wg), 0);
        ck_assert_ptr_eq(chan_wg_chan(wg), at_zero);
    }
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

struct round_worker {
    chan_wg_t *wg;
    chan_t *start; /* one value per round: the round's number */
    _Atomic long *sum;
};

static void *round_worker_main(void *p)
{
    struct round_worker *w = p;
    long r;
    while (chan_recv(w->start, &r) == 0) {
        atomic_fetch_add(w->sum, r);
        chan_wg_done(w->wg);
    }
    return NULL;
}

/* Go's reuse: a new round after wait has returned, many times, each with a fresh channel. */
START_TEST(wg_rounds)
{
    enum { W = 4 };
    int rounds = under_sanitizer() ? 200 : 1000;
    chan_wg_t *wg = mkwg();
    chan_t *start = chan_make(sizeof(long), 0);
    _Atomic long sum = 0;
    struct round_worker w = {wg, start, &sum};
    pthread_t th[W];
    for (int i = 0; i < W; i++)
        th[i] = spawn(round_worker_main, &w);
    long want = 0;
    for (long r = 1; r <= rounds; r++) {
        ck_assert_int_eq(chan_wg_add(wg, W), 0);
        chan_t *done = chan_wg_chan(wg);
        ck_assert(!is_closed(done));
        for (int i = 0; i < W; i++)
            ck_assert_int_eq(chan_send(start, &r), 0);
        if (r % 2)
            ck_assert_int_eq(chan_wg_wait(wg), 0);
        else
            ck_assert_int_eq(chan_recv(done, NULL), -EPIPE); /* the channel's way */
        want += W * r;
        ck_assert_int_eq(atomic_load(&sum), want);
        ck_assert(is_closed(chan_wg_chan(wg)));
    }
    chan_close(start);
    for (int i = 0; i < W; i++)
        join(th[i]);
    ck_assert_int_eq(chan_wg_free(wg), 0);
    ck_assert_int_eq(chan_free(start), 0);
}
END_TEST

/* ---- WaitGroup: reuse before the previous round is over (a gated scheduler) ----------------- */

/* A waiter on a thread whose scheduler hook is the gate (testgate.h): released, it has not
 * returned until the test opens the gate. */
static void *gated_waiter_main(void *p)
{
    chan_sched_set(&gated_sched);
    int rc = chan_wg_wait(p);
    chan_sched_set(NULL);
    return (void *)(intptr_t)rc;
}

/* Go panics "WaitGroup is reused before previous Wait has returned"; here the add that would
 * begin the new round fails with -EBUSY and changes nothing, until that wait has returned. */
START_TEST(wg_reuse_before_wait_returned)
{
    reset_gate();
    chan_wg_t *wg = mkwg();
    ck_assert_int_eq(chan_wg_add(wg, 1), 0);
    chan_t *done = chan_wg_chan(wg);
    pthread_t wt = spawn(gated_waiter_main, wg);
    ck_assert(blocked_receivers_at_least(done, 1));
    ck_assert_int_eq(chan_wg_done(wg), 0); /* releases the waiter, which the gate holds */
    ck_assert(eventually(gate_notified, NULL));
    ck_assert_int_eq(chan_wg_wait(wg), 0); /* this round is over for everyone else */
    ck_assert_int_eq(chan_wg_add(wg, 1), -EBUSY);
    ck_assert_int_eq(chan_wg_add(wg, 1), -EBUSY);
    ck_assert_int_eq(chan_wg_free(wg), -EBUSY);
    ck_assert(is_closed(chan_wg_chan(wg))); /* nothing changed: still zero */
    open_gate();
    ck_assert_ptr_null(join(wt));
    ck_assert_int_eq(chan_wg_add(wg, 1), 0);
    ck_assert(!is_closed(chan_wg_chan(wg)));
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

struct gated_select {
    chan_t *done, *x;
    int r;
};

static void *gated_select_main(void *p)
{
    struct gated_select *g = p;
    chan_sched_set(&gated_sched);
    struct chan_case cs[] = {chan_case_recv(g->done, NULL), chan_case_recv(g->x, NULL)};
    g->r = chan_select(cs, 2);
    chan_sched_set(NULL);
    return NULL;
}

/* The same rule for a select on the round's channel: woken through another channel and not
 * yet returned, it still has to unlink itself from the round's channel, so that channel cannot
 * be freed for the next round: -EBUSY until it has returned. */
START_TEST(wg_reuse_before_select_returned)
{
    reset_gate();
    chan_wg_t *wg = mkwg();
    ck_assert_int_eq(chan_wg_add(wg, 1), 0);
    struct gated_select g = {chan_wg_chan(wg), chan_make(0, 0), -1};
    pthread_t th = spawn(gated_select_main, &g);
    ck_assert(blocked_receivers_at_least(g.done, 1));
    ck_assert(blocked_receivers_at_least(g.x, 1));
    ck_assert_int_eq(chan_send(g.x, NULL), 0); /* wakes the select through x; the gate holds it */
    ck_assert_int_eq(chan_wg_done(wg), 0);     /* closes done, where its sudog still is */
    ck_assert_int_eq(chan_wg_add(wg, 1), -EBUSY);
    ck_assert_int_eq(chan_wg_free(wg), -EBUSY);
    open_gate();
    join(th);
    ck_assert_int_eq(g.r, 1);
    ck_assert_int_eq(chan_wg_add(wg, 1), 0);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_wg_free(wg), 0);
    ck_assert_int_eq(chan_free(g.x), 0);
}
END_TEST

START_TEST(wg_free_busy)
{
    chan_wg_t *wg = mkwg();
    ck_assert_int_eq(chan_wg_add(wg, 1), 0);
    ck_assert_int_eq(chan_wg_free(wg), -EBUSY); /* a task will still call done */
    pthread_t wt = spawn(waiter_main, wg);
    ck_assert(blocked_receivers_at_least(chan_wg_chan(wg), 1));
    ck_assert_int_eq(chan_wg_free(wg), -EBUSY);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_ptr_null(join(wt));
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

/* ---- WaitGroup: everything at once (for TSan) ------------------------------------------------ */

struct churn {
    chan_wg_t *wg;
    int iters;
    _Atomic long *work;
};

static void *churn_main(void *p)
{
    struct churn *c = p;
    for (int i = 0; i < c->iters; i++) {
        ck_assert_int_eq(chan_wg_add(c->wg, 1 + i % 3), 0);
        atomic_fetch_add_explicit(c->work, 1, memory_order_relaxed);
        ck_assert_int_eq(chan_wg_add(c->wg, -(1 + i % 3)), 0);
        if (i % 64 == 0)
            ck_assert(chan_tryrecv(chan_wg_chan(c->wg), NULL) == -EAGAIN);
    }
    return NULL;
}

struct counted {
    chan_wg_t *wg;
    long *cell; /* plain memory, written before done: TSan checks the ordering wait promises */
};

static void *counted_main(void *p)
{
    struct counted *c = p;
    *c->cell += 1;
    chan_wg_done(c->wg);
    return NULL;
}

/* Adds and dones that keep the counter up (the CAS path) from several threads while waiters
 * wait, then rounds whose last done races the waiters and a select on the channel. */
START_TEST(wg_concurrent)
{
    enum { T = 4, WAITERS = 3 };
    chan_wg_t *wg = mkwg();
    _Atomic long work = 0;
    int iters = under_sanitizer() ? 5000 : 50000;
    ck_assert_int_eq(chan_wg_add(wg, 1), 0); /* holds the round open */
    struct churn c = {wg, iters, &work};
    pthread_t th[T], wt[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        wt[i] = spawn(waiter_main, wg);
    for (int i = 0; i < T; i++)
        th[i] = spawn(churn_main, &c);
    for (int i = 0; i < T; i++)
        join(th[i]);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    for (int i = 0; i < WAITERS; i++)
        ck_assert_ptr_null(join(wt[i]));
    ck_assert_int_eq(atomic_load(&work), (long)T * iters);

    int rounds = under_sanitizer() ? 100 : 500;
    for (int r = 0; r < rounds; r++) {
        long *cells = calloc(T, sizeof *cells); /* heap: TSan overlooks races on this stack */
        struct counted cs[T];
        ck_assert_int_eq(chan_wg_add(wg, T), 0);
        chan_t *done = chan_wg_chan(wg);
        for (int i = 0; i < T; i++) {
            cs[i] = (struct counted){wg, &cells[i]};
            th[i] = spawn(counted_main, &cs[i]);
        }
        pthread_t w = spawn(waiter_main, wg);
        struct chan_case sel[] = {chan_case_recv(done, NULL)};
        ck_assert_int_eq(chan_select(sel, 1), 0);
        for (int i = 0; i < T; i++)
            ck_assert_int_eq(cells[i], 1);
        ck_assert_ptr_null(join(w));
        for (int i = 0; i < T; i++)
            join(th[i]);
        free(cells);
    }
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

/* ---- Group ---------------------------------------------------------------------------------- */

static chan_group_t *mkgroup(chan_ctx_t *parent)
{
    chan_group_t *g = chan_group_make(parent);
    ck_assert_ptr_nonnull(g);
    return g;
}

static int ok_task(chan_ctx_t *ctx, void *arg)
{
    (void)ctx;
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

START_TEST(group_bad_arguments)
{
    errno = 0;
    ck_assert_ptr_null(chan_group_make(NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(chan_group_ctx(NULL));
    ck_assert_int_eq(chan_group_go(NULL, ok_task, NULL), -EINVAL);
    ck_assert_int_eq(chan_group_trygo(NULL, ok_task, NULL), -EINVAL);
    ck_assert_int_eq(chan_group_set_limit(NULL, 1), -EINVAL);
    ck_assert_int_eq(chan_group_set_spawn(NULL, NULL), -EINVAL);
    ck_assert_int_eq(chan_group_wait(NULL), -EINVAL);
    ck_assert_int_eq(chan_group_free(NULL), 0);
    chan_group_t *g = mkgroup(chan_ctx_background());
    ck_assert_int_eq(chan_group_go(g, NULL, NULL), -EINVAL);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(chan_group_free(g), 0);
}
END_TEST

START_TEST(group_all_succeed)
{
    chan_group_t *g = mkgroup(chan_ctx_background());
    chan_ctx_t *ctx = chan_group_ctx(g);
    ck_assert_ptr_nonnull(ctx);
    _Atomic int ran = 0;
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(chan_group_go(g, ok_task, &ran), 0);
    ck_assert_int_eq(chan_ctx_err(ctx), 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(atomic_load(&ran), 20);
    ck_assert_int_eq(chan_ctx_err(ctx), -ECANCELED); /* Go: cancelled when Wait returns */
    ck_assert_int_eq(chan_group_free(g), 0);
}
END_TEST

struct job {
    _Atomic int started, stopped_early;
    chan_t *fail_now; /* closed: the failing task returns */
};

static int failing_task(chan_ctx_t *ctx, void *arg)
{
    struct job *j = arg;
    (void)ctx;
    atomic_fetch_add(&j->started, 1);
    chan_recv(j->fail_now, NULL);
    return -EIO;
}

/* Waits for the group's context, and reports why it stopped: what Go's tasks return. */
static int patient_task(chan_ctx_t *ctx, void *arg)
{
    struct job *j = arg;
    atomic_fetch_add(&j->started, 1);
    if (chan_recv_until(chan_ctx_done(ctx), NULL, chan_now() + 60000 * MS) == -ETIMEDOUT)
        return 0;
    atomic_fetch_add(&j->stopped_early, 1);
    return chan_ctx_err(ctx);
}

static int started_at_least_5(void *p) { return atomic_load(&((struct job *)p)->started) >= 5; }

/* The first error cancels the context, so the others stop early; wait returns that error,
 * not the -ECANCELED the others return after it. */
START_TEST(group_first_error_cancels)
{
    chan_ctx_t *parent = chan_ctx_with_cancel(chan_ctx_background());
    chan_group_t *g = mkgroup(parent);
    struct job j = {0, 0, chan_make(0, 0)};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(chan_group_go(g, patient_task, &j), 0);
    ck_assert_int_eq(chan_group_go(g, failing_task, &j), 0);
    ck_assert(eventually(started_at_least_5, &j));
    sleep_ms(10);
    ck_assert_int_eq(chan_ctx_err(chan_group_ctx(g)), 0);
    ck_assert_int_eq(chan_close(j.fail_now), 0);
    ck_assert_int_eq(chan_group_wait(g), -EIO);
    ck_assert_int_eq(atomic_load(&j.stopped_early), 4);
    ck_assert_int_eq(chan_ctx_err(chan_group_ctx(g)), -ECANCELED);
    ck_assert_int_eq(chan_ctx_err(parent), 0); /* never the parent */
    /* The first error stays; the group takes more tasks, which see the cancelled context. */
    ck_assert_int_eq(chan_group_wait(g), -EIO);
    ck_assert_int_eq(chan_group_go(g, patient_task, &j), 0);
    ck_assert_int_eq(chan_group_wait(g), -EIO);
    ck_assert_int_eq(atomic_load(&j.stopped_early), 5);
    ck_assert_int_eq(chan_group_free(g), 0);
    ck_assert_int_eq(chan_ctx_free(parent), 0);
    ck_assert_int_eq(chan_free(j.fail_now), 0);
}
END_TEST

/* Several tasks fail at once: wait returns one of their errors, exactly one was recorded. */
static int fail_with_arg(chan_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return (int)(intptr_t)arg;
}

START_TEST(group_errors_race)
{
    for (int round = 0; round < 20; round++) {
        chan_group_t *g = mkgroup(chan_ctx_background());
        for (int i = 1; i <= 8; i++)
            ck_assert_int_eq(chan_group_go(g, fail_with_arg, (void *)(intptr_t)(i % 3 ? 0 : i)), 0);
        int err = chan_group_wait(g);
        ck_assert(err == 3 || err == 6);
        ck_assert_int_eq(chan_group_free(g), 0);
    }
}
END_TEST

START_TEST(group_parent_cancel)
{
    chan_ctx_t *parent = chan_ctx_with_cancel(chan_ctx_background());
    chan_group_t *g = mkgroup(parent);
    struct job j = {0, 0, NULL};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_group_go(g, patient_task, &j), 0);
    ck_assert_int_eq(chan_ctx_cancel(parent), 0);
    ck_assert_int_eq(chan_group_wait(g), -ECANCELED); /* the tasks' own error */
    ck_assert_int_eq(atomic_load(&j.stopped_early), 3);
    ck_assert_int_eq(chan_group_free(g), 0);
    ck_assert_int_eq(chan_ctx_free(parent), 0);
}
END_TEST

struct limited {
    _Atomic int running, max_running, ran;
    chan_t *release; /* each task takes one value to finish */
};

static int limited_task(chan_ctx_t *ctx, void *arg)
{
    struct limited *l = arg;
    (void)ctx;
    running_enter(&l->running, &l->max_running);
    chan_recv(l->release, NULL);
    atomic_fetch_sub(&l->running, 1);
    atomic_fetch_add(&l->ran, 1);
    return 0;
}

static int running_is_2(void *p) { return atomic_load(&((struct limited *)p)->running) == 2; }

struct go_call {
    chan_group_t *g;
    struct limited *l;
    atomic_int returned;
};

static void *go_call_main(void *p)
{
    struct go_call *c = p;
    int rc = chan_group_go(c->g, limited_task, c->l);
    atomic_store(&c->returned, 1);
    return (void *)(intptr_t)rc;
}

/* Go's SetLimit: at most n at once; Go blocks at the limit, TryGo fails; the limit cannot
 * change while tasks started under it run. */
START_TEST(group_limit)
{
    chan_group_t *g = mkgroup(chan_ctx_background());
    struct limited l = {0, 0, 0, chan_make(0, 0)};
    ck_assert_int_eq(chan_group_set_limit(g, 2), 0);
    ck_assert_int_eq(chan_group_go(g, limited_task, &l), 0);
    ck_assert_int_eq(chan_group_trygo(g, limited_task, &l), 0);
    ck_assert(eventually(running_is_2, &l));
    ck_assert_int_eq(chan_group_trygo(g, limited_task, &l), -EAGAIN);
    ck_assert_int_eq(chan_group_set_limit(g, 5), -EBUSY);
    struct go_call c = {g, &l, 0};
    pthread_t th = spawn(go_call_main, &c); /* blocks in chan_group_go */
    sleep_ms(20);
    ck_assert_int_eq(atomic_load(&c.returned), 0);
    ck_assert_int_eq(chan_send(l.release, NULL), 0); /* one finishes: the blocked go starts */
    ck_assert_ptr_null(join(th));
    for (int i = 0; i < 17; i++) { /* one finishes, one more starts */
        ck_assert_int_eq(chan_send(l.release, NULL), 0);
        ck_assert_int_eq(chan_group_go(g, limited_task, &l), 0);
    }
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(chan_send(l.release, NULL), 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(atomic_load(&l.ran), 20);
    ck_assert_int_eq(atomic_load(&l.max_running), 2);
    ck_assert_int_eq(chan_group_set_limit(g, -1), 0); /* no limit now */
    ck_assert_int_eq(chan_group_set_limit(g, 0), 0);  /* no task may start */
    ck_assert_int_eq(chan_group_trygo(g, limited_task, &l), -EAGAIN);
    ck_assert_int_eq(chan_group_set_limit(g, -1), 0);
    ck_assert_int_eq(chan_group_free(g), 0);
    ck_assert_int_eq(chan_free(l.release), 0);
}
END_TEST

/* Go's SetLimit with n < 0 never panics: the limit goes at once, even while tasks started under
 * it run (they give their slots back to the old limit, which goes with the group). A limit set
 * after that applies to new tasks only. */
START_TEST(group_limit_removed_while_running)
{
    chan_group_t *g = mkgroup(chan_ctx_background());
    struct limited l = {0, 0, 0, chan_make(0, 0)};
    ck_assert_int_eq(chan_group_set_limit(g, 2), 0);
    ck_assert_int_eq(chan_group_go(g, limited_task, &l), 0);
    ck_assert_int_eq(chan_group_go(g, limited_task, &l), 0);
    ck_assert_int_eq(chan_group_trygo(g, limited_task, &l), -EAGAIN);
    ck_assert_int_eq(chan_group_set_limit(g, 3), -EBUSY); /* Go panics here */
    ck_assert_int_eq(chan_group_set_limit(g, -1), 0);     /* and not here */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_group_trygo(g, limited_task, &l), 0); /* no limit now */
    ck_assert_int_eq(chan_group_set_limit(g, 1), 0); /* for new tasks: none holds a slot */
    ck_assert_int_eq(chan_group_trygo(g, limited_task, &l), 0);
    ck_assert_int_eq(chan_group_trygo(g, limited_task, &l), -EAGAIN);
    ck_assert_int_eq(chan_group_set_limit(g, -1), 0); /* twice, with tasks of two limits */
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(chan_send(l.release, NULL), 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(atomic_load(&l.ran), 6);
    ck_assert_int_eq(chan_group_set_limit(g, 2), 0);
    ck_assert_int_eq(chan_group_free(g), 0); /* and the old limits with it (ASan: no leak) */
    ck_assert_int_eq(chan_free(l.release), 0);
}
END_TEST

/* A spawn function of our own: it runs tasks on joinable threads it keeps, or refuses. */
static pthread_t spawned[64];
static atomic_int nspawned, refuse;

static int64_t my_spawn(void (*fn)(void *), void *arg)
{
    if (atomic_load(&refuse))
        return -EAGAIN;
    int i = atomic_fetch_add(&nspawned, 1);
    spawned[i] = spawn_fn(fn, arg, 0);
    return i + 1;
}

START_TEST(group_spawn_function)
{
    chan_group_t *g = mkgroup(chan_ctx_background());
    ck_assert_int_eq(chan_group_set_spawn(g, my_spawn), 0);
    ck_assert_int_eq(chan_group_set_limit(g, 1), 0);
    _Atomic int ran = 0;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(chan_group_go(g, ok_task, &ran), 0);
    /* A refused start changes nothing: the slot and the count are given back. */
    atomic_store(&refuse, 1);
    ck_assert_int_eq(chan_group_go(g, ok_task, &ran), -EAGAIN);
    atomic_store(&refuse, 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(atomic_load(&ran), 10);
    ck_assert_int_eq(atomic_load(&nspawned), 10);
    ck_assert_int_eq(chan_group_trygo(g, ok_task, &ran), 0); /* the slot is free again */
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(chan_group_set_spawn(g, NULL), 0); /* threads again */
    ck_assert_int_eq(chan_group_go(g, ok_task, &ran), 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(atomic_load(&ran), 12);
    for (int i = 0; i < atomic_load(&nspawned); i++)
        join(spawned[i]);
    ck_assert_int_eq(chan_group_free(g), 0);
}
END_TEST

struct tree {
    chan_group_t *g;
    int depth;
    _Atomic int *nodes;
};

/* A task that starts its children in its own group before it returns. */
static int tree_task(chan_ctx_t *ctx, void *arg)
{
    struct tree *t = arg;
    (void)ctx;
    atomic_fetch_add(t->nodes, 1);
    if (t->depth == 0) {
        free(t);
        return 0;
    }
    for (int i = 0; i < 2; i++) {
        struct tree *c = malloc(sizeof *c);
        *c = (struct tree){t->g, t->depth - 1, t->nodes};
        if (chan_group_go(t->g, tree_task, c) != 0)
            return -ENOMEM;
    }
    free(t);
    return 0;
}

START_TEST(group_nested)
{
    chan_group_t *g = mkgroup(chan_ctx_background());
    _Atomic int nodes = 0;
    struct tree *root = malloc(sizeof *root);
    *root = (struct tree){g, 5, &nodes};
    ck_assert_int_eq(chan_group_go(g, tree_task, root), 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(atomic_load(&nodes), 63);
    ck_assert_int_eq(chan_group_free(g), 0);
}
END_TEST

START_TEST(group_free_busy)
{
    chan_group_t *g = mkgroup(chan_ctx_background());
    struct job j = {0, 0, chan_make(0, 0)};
    ck_assert_int_eq(chan_group_go(g, failing_task, &j), 0);
    ck_assert_int_eq(chan_group_free(g), -EBUSY);
    ck_assert_int_eq(chan_close(j.fail_now), 0);
    ck_assert_int_eq(chan_group_wait(g), -EIO);
    ck_assert_int_eq(chan_group_free(g), 0);
    ck_assert_int_eq(chan_free(j.fail_now), 0);
}
END_TEST

/* A chan_group_wait that has seen its tasks finish is still in progress until it returns: it
 * cancels the context and reads the first error after its WaitGroup wait. Held there (its cancel
 * waits for the walk of another cancel, which the tests' hook after each claim (seam.h) holds at
 * a gate), chan_group_free must refuse with -EBUSY (chan_group(3)), not free the group under it:
 * it freed it, and the wait then read the freed group (ASan: use after free in chan_group_wait;
 * found by two waiters, the owner freeing after its own). A waiter on the done channel, through a
 * scheduler hook whose unpark waits for the same gate, is woken once that walk is over. */
static void *cancel_main(void *ctx) { return (void *)(intptr_t)chan_ctx_cancel(ctx); }

struct in_wait {
    chan_group_t *g;
    _Atomic long tid;
    _Atomic int returned, rc;
};

static void *in_wait_main(void *p)
{
    struct in_wait *w = p;
    atomic_store(&w->tid, (long)gettid());
    atomic_store(&w->rc, chan_group_wait(w->g));
    atomic_store(&w->returned, 1);
    return NULL;
}

static void *in_free_main(void *p)
{
    struct in_wait *w = p;
    atomic_store(&w->rc, chan_group_free(w->g));
    atomic_store(&w->returned, 1);
    return NULL;
}

/* The thread is asleep in the kernel (a futex: here, a mutex's), by its /proc state. */
static int thread_sleeping(void *p)
{
    long tid = atomic_load(&((struct in_wait *)p)->tid);
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = tid ? fopen(path, "r") : NULL;
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *e = strrchr(buf, ')'); /* the state follows the command's name */
    return e && e[1] == ' ' && e[2] == 'S';
}

static int has_returned(void *p) { return atomic_load(&((struct in_wait *)p)->returned); }

START_TEST(group_free_busy_while_wait_returns)
{
    chan_group_t *g = mkgroup(chan_ctx_background());
    chan_ctx_t *ctx = chan_group_ctx(g);
    pthread_t x = spawn(claim_receiver, chan_ctx_done(ctx));
    ck_assert(blocked_receivers_at_least(chan_ctx_done(ctx), 1));
    claim_hold_at(ctx);
    pthread_t c = spawn(cancel_main, ctx);
    claim_wait_held();
    /* No task: the wait's WaitGroup wait returns at once, and its cancel sleeps on the lock. */
    struct in_wait w = {.g = g};
    pthread_t a = spawn(in_wait_main, &w);
    ck_assert(eventually(thread_sleeping, &w));
    struct in_wait f = {.g = g};
    pthread_t fr = spawn(in_free_main, &f);
    /* Refused at once; a free that went ahead would sleep on the same lock (its cancel). */
    ck_assert_msg(eventually(has_returned, &f), "chan_group_free did not return while a "
                                                "chan_group_wait was in progress");
    ck_assert_int_eq(atomic_load(&f.rc), -EBUSY);
    join(fr);
    ck_assert(!atomic_load(&w.returned));
    claim_open();
    ck_assert_int_eq((int)(intptr_t)join(c), 0);
    ck_assert_int_eq((int)(intptr_t)join(x), -EPIPE);
    join(a);
    ctx_claimed_hook = NULL;
    ck_assert_int_eq(atomic_load(&w.rc), 0);
    ck_assert_int_eq(chan_group_free(g), 0);
}
END_TEST

/* ---- Ports: Go's sync/waitgroup_test.go and golang.org/x/sync/errgroup's tests --------------- */

/* Go's TestWaitGroup (testWaitGroup): n threads each call done on wg1 and then wait on wg2;
 * wg1's wait returns while every one of them is still held by wg2 (none has been released too
 * soon), then wg2's last done releases them all. Both WaitGroups reused 8 times. */
struct two_wg {
    chan_wg_t *wg1, *wg2;
    chan_t *exited;
};

static void *two_wg_main(void *p)
{
    struct two_wg *w = p;
    ck_assert_int_eq(chan_wg_done(w->wg1), 0);
    ck_assert_int_eq(chan_wg_wait(w->wg2), 0);
    ck_assert_int_eq(chan_send(w->exited, NULL), 0);
    return NULL;
}

START_TEST(wg_two_groups_reused)
{
    enum { N = 16 };
    struct two_wg w = {mkwg(), mkwg(), chan_make(0, N)};
    for (int round = 0; round < 8; round++) {
        pthread_t th[N];
        ck_assert_int_eq(chan_wg_add(w.wg1, N), 0);
        ck_assert_int_eq(chan_wg_add(w.wg2, N), 0);
        for (int i = 0; i < N; i++)
            th[i] = spawn(two_wg_main, &w);
        ck_assert_int_eq(chan_wg_wait(w.wg1), 0);
        ck_assert(blocked_receivers_at_least(chan_wg_chan(w.wg2), N)); /* all held by wg2 */
        ck_assert_int_eq(chan_tryrecv(w.exited, NULL), -EAGAIN);       /* released too soon */
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(chan_wg_done(w.wg2), 0);
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(chan_recv(w.exited, NULL), 0);
        for (int i = 0; i < N; i++)
            join(th[i]);
    }
    ck_assert_int_eq(chan_wg_free(w.wg1), 0);
    ck_assert_int_eq(chan_wg_free(w.wg2), 0);
    ck_assert_int_eq(chan_free(w.exited), 0);
}
END_TEST

/* Go's TestWaitGroupRace: two tasks each add to a shared count and call done; wait must not
 * return before both have (a spurious wake-up), a thousand times over, each WaitGroup fresh. */
struct race_task {
    chan_wg_t *wg;
    _Atomic int *n;
};

static void *race_task_main(void *p)
{
    struct race_task *t = p;
    atomic_fetch_add(t->n, 1);
    ck_assert_int_eq(chan_wg_done(t->wg), 0);
    return NULL;
}

START_TEST(wg_no_spurious_wakeup)
{
    for (int i = 0; i < scaled(1000, 200); i++) {
        _Atomic int n = 0;
        struct race_task t = {mkwg(), &n};
        pthread_t th[2];
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(chan_wg_add(t.wg, 1), 0);
            th[k] = spawn(race_task_main, &t);
        }
        ck_assert_int_eq(chan_wg_wait(t.wg), 0);
        ck_assert_int_eq(atomic_load(&n), 2);
        for (int k = 0; k < 2; k++)
            join(th[k]);
        ck_assert_int_eq(chan_wg_free(t.wg), 0);
    }
}
END_TEST

/* Go's TestWaitGroupMisuse3 (of older Go releases, whose panics are opportunistic): a task's
 * done ends a round that two threads wait for, and one of them, its own wait returned, begins
 * the next round at once, perhaps before the other's wait has returned. Here that add either
 * succeeds (the other wait had returned) or fails with -EBUSY and changes nothing; whichever,
 * no call hangs or aborts, and the WaitGroup is whole afterwards. */
struct misuse {
    chan_wg_t *wg;
    _Atomic int reuse_rc;
};

static void *misuse_done_main(void *p)
{
    ck_assert_int_eq(chan_wg_done(((struct misuse *)p)->wg), 0);
    return NULL;
}

static void *misuse_reuser_main(void *p)
{
    struct misuse *m = p;
    ck_assert_int_eq(chan_wg_wait(m->wg), 0);
    int rc = chan_wg_add(m->wg, 1); /* maybe before the other waiter has returned */
    atomic_store(&m->reuse_rc, rc);
    if (rc == 0) {
        pthread_t t = spawn(misuse_done_main, m);
        ck_assert_int_eq(chan_wg_wait(m->wg), 0);
        join(t);
    }
    return NULL;
}

static void *misuse_waiter_main(void *p)
{
    ck_assert_int_eq(chan_wg_wait(((struct misuse *)p)->wg), 0);
    return NULL;
}

START_TEST(wg_reuse_racing_a_wait)
{
    for (int i = 0; i < scaled(2000, 300); i++) {
        struct misuse m = {mkwg(), 1};
        ck_assert_int_eq(chan_wg_add(m.wg, 1), 0);
        pthread_t th[] = {spawn(misuse_done_main, &m), spawn(misuse_reuser_main, &m),
                          spawn(misuse_waiter_main, &m)};
        for (int k = 0; k < 3; k++)
            join(th[k]);
        int rc = atomic_load(&m.reuse_rc);
        ck_assert_msg(rc == 0 || rc == -EBUSY, "the reusing add returned %d", rc);
        ck_assert_int_eq(chan_wg_wait(m.wg), 0);
        ck_assert_int_eq(chan_wg_free(m.wg), 0);
    }
}
END_TEST

/* Go's TestZeroGroup: a group given one task at a time, waited for after each: wait returns
 * the first error of all the tasks so far, or 0 while none failed. */
START_TEST(group_wait_after_each)
{
    static const int cases[][4] = {{0}, {0, 0}, {-EIO}, {-EIO, 0}, {-EIO, 0, -EPERM}, {0, 7, 8}};
    static const int len[] = {1, 2, 1, 2, 3, 3};
    for (size_t c = 0; c < sizeof len / sizeof len[0]; c++) {
        chan_group_t *g = mkgroup(chan_ctx_background());
        int first = 0;
        for (int i = 0; i < len[c]; i++) {
            ck_assert_int_eq(chan_group_go(g, fail_with_arg, (void *)(intptr_t)cases[c][i]), 0);
            if (!first)
                first = cases[c][i];
            ck_assert_int_eq(chan_group_wait(g), first);
        }
        ck_assert_int_eq(chan_group_free(g), 0);
    }
}
END_TEST

/* Go's TestWithContext: whatever the tasks returned, and with none at all, the group's context
 * is done once wait has returned, and wait returns the first error. */
START_TEST(group_ctx_done_after_wait)
{
    static const int cases[][3] = {{0, 0, 0}, {-EIO, 0, 0}, {0, -EIO, -EPERM}};
    static const int len[] = {0, 3, 3, 3};
    for (size_t c = 0; c < 4; c++) {
        chan_group_t *g = mkgroup(chan_ctx_background());
        int first = 0;
        for (int i = 0; i < len[c]; i++) {
            ck_assert_int_eq(chan_group_go(g, fail_with_arg, (void *)(intptr_t)cases[c - 1][i]), 0);
            if (!first)
                first = cases[c - 1][i];
            if (first) /* tasks run one at a time here: the first to fail is known */
                ck_assert_int_eq(chan_group_wait(g), first);
        }
        ck_assert_int_eq(chan_group_wait(g), first);
        ck_assert_int_eq(chan_tryrecv(chan_ctx_done(chan_group_ctx(g)), NULL), -EPIPE);
        ck_assert_int_eq(chan_ctx_err(chan_group_ctx(g)), -ECANCELED);
        ck_assert_int_eq(chan_group_free(g), 0);
    }
}
END_TEST

/* Go's TestTryGo: 42 trygos fill a limit of 42 and the 43rd fails; after wait one succeeds
 * again; a limit of 1 takes one; a limit of 0 takes none, however often asked. */
static int send_task(chan_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return chan_send(arg, NULL);
}

static void *drain_main(void *p)
{
    chan_t *c = p;
    while (chan_recv(c, NULL) == 0) {
    }
    return NULL;
}

START_TEST(group_trygo_limits)
{
    enum { N = 42 };
    chan_group_t *g = mkgroup(chan_ctx_background());
    chan_t *ch = chan_make(0, 0);
    ck_assert_int_eq(chan_group_set_limit(g, N), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(chan_group_trygo(g, send_task, ch), 0);
    ck_assert_int_eq(chan_group_trygo(g, send_task, ch), -EAGAIN);
    pthread_t drain = spawn(drain_main, ch);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(chan_group_trygo(g, send_task, ch), 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(chan_group_set_limit(g, 1), 0);
    ck_assert_int_eq(chan_group_trygo(g, send_task, ch), 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(chan_group_set_limit(g, 0), 0);
    for (int i = 0; i < 1024; i++)
        ck_assert_int_eq(chan_group_trygo(g, send_task, ch), -EAGAIN);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(chan_close(ch), 0);
    join(drain);
    ck_assert_int_eq(chan_group_free(g), 0);
    ck_assert_int_eq(chan_free(ch), 0);
}
END_TEST

/* Go's TestGoLimit: 1,025 tasks through a limit of 10; none ever sees more than 10 running. */
static int count_active_task(chan_ctx_t *ctx, void *arg)
{
    (void)ctx;
    _Atomic int *active = arg;
    int n = atomic_fetch_add(active, 1) + 1;
    sleep_ns(1000);
    atomic_fetch_sub(active, 1);
    return n > 10 ? -E2BIG : 0;
}

START_TEST(group_go_limit)
{
    chan_group_t *g = mkgroup(chan_ctx_background());
    _Atomic int active = 0;
    ck_assert_int_eq(chan_group_set_limit(g, 10), 0);
    for (int i = 0; i <= scaled(1024, 256); i++)
        ck_assert_int_eq(chan_group_go(g, count_active_task, &active), 0);
    ck_assert_int_eq(chan_group_wait(g), 0);
    ck_assert_int_eq(chan_group_free(g), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sync");
    ADD_TEST(s, wg_bad_arguments, 10);
    ADD_TEST(s, wg_zero_is_done, 10);
    ADD_TEST(s, wg_negative_counter, 10);
    ADD_TEST(s, wg_overflow, 10);
    ADD_TEST(s, wg_wait_until_last_done, 30);
    ADD_TEST(s, wg_wait_until_deadline, 10);
    ADD_TEST(s, wg_chan_in_select, 30);
    ADD_TEST(s, wg_chan_taken_at_zero, 10);
    ADD_TEST(s, wg_rounds, 60);
    ADD_TEST(s, wg_reuse_before_wait_returned, 30);
    ADD_TEST(s, wg_reuse_before_select_returned, 30);
    ADD_TEST(s, wg_free_busy, 30);
    ADD_TEST(s, wg_concurrent, 120);
    ADD_TEST(s, group_bad_arguments, 10);
    ADD_TEST(s, group_all_succeed, 30);
    ADD_TEST(s, group_first_error_cancels, 30);
    ADD_TEST(s, group_errors_race, 60);
    ADD_TEST(s, group_parent_cancel, 30);
    ADD_TEST(s, group_limit, 30);
    ADD_TEST(s, group_limit_removed_while_running, 30);
    ADD_TEST(s, group_spawn_function, 30);
    ADD_TEST(s, group_nested, 30);
    ADD_TEST(s, group_free_busy, 30);
    ADD_TEST(s, group_free_busy_while_wait_returns, 60);
    ADD_TEST(s, wg_two_groups_reused, 30);
    ADD_TEST(s, wg_no_spurious_wakeup, 60);
    ADD_TEST(s, wg_reuse_racing_a_wait, 120);
    ADD_TEST(s, group_wait_after_each, 30);
    ADD_TEST(s, group_ctx_done_after_wait, 30);
    ADD_TEST(s, group_trygo_limits, 30);
    ADD_TEST(s, group_go_limit, 60);
    return run_suite(s);
}
