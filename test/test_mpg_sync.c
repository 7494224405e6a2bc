/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_sync.c - chan_sync.h with Gs (libchan-mpg): a G that waits on a WaitGroup or a
 * group parks the G, not its thread (with one P, the Gs it waits for could not run otherwise),
 * the round's channel in a G's select, rounds of many Gs, and a group whose tasks are Gs
 * (chan_group_set_spawn(g, chan_mpg_go)) started from a plain thread and from a G; and the
 * ports of Go's time, context, sync and errgroup tests and crossbeam's after.rs run on Gs
 * (timers, tickers and contexts waited on by Gs, a context cancelled from a G). Each test
 * starts its own scheduler and ends with every G returned.
 */
#include "testmpg.h"

#include <stdatomic.h>

#include "sched/chan_sched_mpg.h"
#include "sync/chan_sync.h"

/* ---- WaitGroup ------------------------------------------------------------------------------- */

struct wgtest {
    chan_wg_t *wg;
    atomic_int waiting, done_by_workers, waiter_saw;
};

static void wg_waiter(void *arg)
{
    struct wgtest *t = arg;
    atomic_store(&t->waiting, 1);
    G_CHECK(chan_wg_wait(t->wg) == 0);
    atomic_store(&t->waiter_saw, atomic_load(&t->done_by_workers));
}

static int is_waiting(void *arg) { return atomic_load(&((struct wgtest *)arg)->waiting); }
static int waiter_returned(void *arg)
{
    return atomic_load(&((struct wgtest *)arg)->waiter_saw) >= 0;
}

static void wg_worker(void *arg)
{
    struct wgtest *t = arg;
    chan_mpg_yield();
    atomic_fetch_add(&t->done_by_workers, 1);
    G_CHECK(chan_wg_done(t->wg) == 0);
}

/* One P: the waiter G blocks first; the workers it waits for run on the same P after it,
 * which they could not if the wait held the P's thread. */
START_TEST(wg_wait_parks_the_g)
{
    ck_assert_int_eq(chan_mpg_start(1), 0);
    enum { N = 50 };
    struct wgtest t = {chan_wg_make(), 0, 0, -1};
    ck_assert_int_eq(chan_wg_add(t.wg, N), 0);
    go(wg_waiter, &t);
    ck_assert(eventually(is_waiting, &t));
    sleep_ms(10); /* into chan_wg_wait */
    for (int i = 0; i < N; i++)
        go(wg_worker, &t);
    ck_assert_msg(eventually(waiter_returned, &t), "the waiting G held its thread");
    finish();
    ck_assert_int_eq(atomic_load(&t.waiter_saw), N);
    ck_assert_int_eq(chan_wg_free(t.wg), 0);
    NO_BAD();
}
END_TEST

struct rounds {
    chan_wg_t *wg;
    atomic_long sum;
    int rounds, width;
};

static void round_task(void *arg)
{
    struct rounds *r = arg;
    atomic_fetch_add(&r->sum, 1);
    G_CHECK(chan_wg_done(r->wg) == 0);
}

/* A G runs rounds: add, start the round's Gs, wait (by wait, or by a select on the channel
 * with a time-out case that must not fire). */
static void round_driver(void *arg)
{
    struct rounds *r = arg;
    for (int i = 0; i < r->rounds; i++) {
        G_CHECK(chan_wg_add(r->wg, r->width) == 0);
        for (int k = 0; k < r->width; k++)
            G_CHECK(chan_mpg_go(round_task, r) > 0);
        if (i % 2) {
            G_CHECK(chan_wg_wait(r->wg) == 0);
        } else {
            struct chan_case cs[] = {chan_case_recv(chan_wg_chan(r->wg), NULL)};
            G_CHECK(chan_select_until(cs, 1, chan_now() + 60000 * MS) == 0);
            G_CHECK(!cs[0].ok);
        }
        G_CHECK(atomic_load(&r->sum) == (long)(i + 1) * r->width);
    }
}

START_TEST(wg_rounds_on_gs)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    struct rounds r = {chan_wg_make(), 0, under_sanitizer() ? 50 : 300, 20};
    go(round_driver, &r);
    finish();
    ck_assert_int_eq(atomic_load(&r.sum), (long)r.rounds * r.width);
    ck_assert_int_eq(chan_wg_free(r.wg), 0);
    NO_BAD();
}
END_TEST

/* ---- Group ----------------------------------------------------------------------------------- */

struct gjob {
    atomic_int started, cancelled;
    int fail_at; /* the task with this index fails, once all have started */
    int n;
};

struct gtask {
    struct gjob *job;
    int index;
};

static int g_task(chan_ctx_t *ctx, void *arg)
{
    struct gtask *t = arg;
    G_CHECK(chan_mpg_self() > 0); /* run as a G */
    atomic_fetch_add(&t->job->started, 1);
    if (t->index == t->job->fail_at) {
        while (atomic_load(&t->job->started) < t->job->n)
            chan_mpg_yield();
        return -EIO;
    }
    /* Wait for the context: only the failing task can end this wait early. */
    if (chan_recv_until(chan_ctx_done(ctx), NULL, chan_now() + 60000 * MS) == -ETIMEDOUT)
        return 0;
    atomic_fetch_add(&t->job->cancelled, 1);
    return chan_ctx_err(ctx);
}

/* Tasks as Gs, started and waited for from a plain thread. */
START_TEST(group_of_gs_from_a_thread)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    enum { N = 40 };
    struct gjob job = {0, 0, N - 1, N};
    struct gtask t[N];
    chan_group_t *g = chan_group_make(chan_ctx_background());
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(chan_group_set_spawn(g, chan_mpg_go), 0);
    chan_mpg_foreign_enter();
    for (int i = 0; i < N; i++) {
        t[i] = (struct gtask){&job, i};
        ck_assert_int_eq(chan_group_go(g, g_task, &t[i]), 0);
    }
    ck_assert_int_eq(chan_group_wait(g), -EIO);
    chan_mpg_foreign_leave();
    finish();
    ck_assert_int_eq(atomic_load(&job.cancelled), N - 1);
    ck_assert_int_eq(chan_group_free(g), 0);
    NO_BAD();
}
END_TEST

struct limited {
    atomic_int running, max_running;
    int n, limit;
    int result;
};

static int limited_g(chan_ctx_t *ctx, void *arg)
{
    struct limited *l = arg;
    (void)ctx;
    running_enter(&l->running, &l->max_running);
    chan_mpg_sleep_until(chan_now() + 100000); /* 0.1 ms: a G parked on a timer */
    atomic_fetch_sub(&l->running, 1);
    return 0;
}

/* A G drives a limited group of G tasks: its chan_group_go parks it at the limit and its
 * wait parks it at the end, all on one P. */
static void group_driver(void *arg)
{
    struct limited *l = arg;
    chan_group_t *g = chan_group_make(chan_ctx_background());
    G_CHECK(g != NULL);
    G_CHECK(chan_group_set_spawn(g, chan_mpg_go) == 0);
    G_CHECK(chan_group_set_limit(g, l->limit) == 0);
    for (int i = 0; i < l->n; i++)
        G_CHECK(chan_group_go(g, limited_g, l) == 0);
    l->result = chan_group_wait(g);
    G_CHECK(chan_group_free(g) == 0);
}

START_TEST(group_in_a_g_with_limit)
{
    ck_assert_int_eq(chan_mpg_start(1), 0);
    struct limited l = {0, 0, under_sanitizer() ? 100 : 500, 4, -1};
    go(group_driver, &l);
    finish();
    ck_assert_int_eq(l.result, 0);
    ck_assert_int_le(atomic_load(&l.max_running), 4);
    ck_assert_int_ge(atomic_load(&l.max_running), 2); /* the limit, not one at a time */
    NO_BAD();
}
END_TEST

/* ---- Ports on Gs: Go's time, context and errgroup tests, crossbeam's after.rs --------------- */

/* Go's TestAfterQueuing on one P: a G selects over 10 timers made in a shuffled order (parking
 * the G, not its thread); the values, the firing times, rise in the order of the deadlines. As
 * on threads (test_timer.c), a round whose timers were not all made before the first deadline
 * says nothing and is tried again with deadlines twice as far apart. */
static bool after_queuing_round(int64_t unit)
{
    enum { Q = 10 };
    static const int slot[Q] = {0, 2, 1, 3, 4, 6, 5, 8, 7, 9};
    chan_timer_t *t[Q];
    int64_t deadline[Q], value[Q], start = chan_now() + unit / 2;
    struct chan_case cs[Q];
    for (int i = 0; i < Q; i++) {
        deadline[i] = start + slot[i] * unit;
        t[i] = chan_timer_make_until(deadline[i]);
        G_CHECK(t[i] != NULL);
        cs[i] =
            (struct chan_case){.chan = chan_timer_chan(t[i]), .elem = &value[i], .dir = CHAN_RECV};
    }
    bool in_time = chan_now() < start;
    for (int got = 0; got < Q && in_time; got++) {
        int k = chan_select(cs, Q);
        G_CHECK(k >= 0 && cs[k].ok && value[k] >= deadline[k]);
        cs[k].chan = NULL;
    }
    for (int i = 0; i < Q && in_time; i++)
        for (int j = 0; j < Q; j++)
            if (slot[j] == slot[i] + 1)
                G_CHECK(value[i] <= value[j]);
    for (int i = 0; i < Q; i++)
        G_CHECK(chan_timer_free(t[i]) == 0);
    return in_time;
}

static void after_queuing_g(void *arg)
{
    (void)arg;
    int64_t unit = 10 * MS;
    while (unit <= 640 * MS && !after_queuing_round(unit))
        unit *= 2;
    G_CHECK(unit <= 640 * MS); /* made in time once, at least */
}

/* Go's TestTicker in a G: ticks never early, and a reset period holds from the reset on. */
static void ticker_g(void *arg)
{
    (void)arg;
    const int64_t period = 3 * MS;
    int64_t start = chan_now(), v = 0;
    chan_ticker_t *k = chan_ticker_make(period);
    for (int i = 1; i <= 10; i++)
        G_CHECK(chan_recv(chan_ticker_chan(k), &v) == 0 && v >= start + i * period);
    int64_t reset = chan_now();
    G_CHECK(chan_ticker_reset(k, 2 * period) == 1);
    for (int i = 1; i <= 3; i++)
        G_CHECK(chan_recv(chan_ticker_chan(k), &v) == 0 && v >= reset + i * 2 * period);
    G_CHECK(chan_ticker_stop(k) == 1);
    G_CHECK(chan_recv_until(chan_ticker_chan(k), NULL, chan_now() + 10 * MS) == -ETIMEDOUT);
    G_CHECK(chan_ticker_free(k) == 0);
}

/* crossbeam's after.rs `select`, with Gs: 1,000 timers due within 5 ms, 4 Gs each selecting
 * over all of them until a 100 ms time-out: every value is received exactly once. */
#define G_TIMERS 1000

static struct {
    chan_timer_t *t[G_TIMERS];
    atomic_int hits[G_TIMERS];
} gsel;

static void timers_select_g(void *arg)
{
    (void)arg;
    struct chan_case *cs = malloc(G_TIMERS * sizeof *cs);
    G_CHECK(cs != NULL);
    for (int i = 0; i < G_TIMERS; i++)
        cs[i] = (struct chan_case){.chan = chan_timer_chan(gsel.t[i]), .dir = CHAN_RECV};
    int k;
    while ((k = chan_select_until(cs, G_TIMERS, chan_now() + 100 * MS)) >= 0)
        atomic_fetch_add(&gsel.hits[k], 1);
    G_CHECK(k == -ETIMEDOUT);
    free(cs);
}

START_TEST(timers_on_gs)
{
    ck_assert_int_eq(chan_mpg_start(1), 0);
    go(after_queuing_g, NULL);
    go(ticker_g, NULL);
    finish();
    ck_assert_int_eq(chan_mpg_start(2), 0);
    for (int i = 0; i < G_TIMERS; i++)
        ck_assert_ptr_nonnull(gsel.t[i] = chan_timer_make(i / 200 * MS));
    for (int i = 0; i < 4; i++)
        go(timers_select_g, NULL);
    finish();
    for (int i = 0; i < G_TIMERS; i++) /* left behind by a timer thread held up past 100 ms */
        if (atomic_load(&gsel.hits[i]) == 0 && chan_recv(chan_timer_chan(gsel.t[i]), NULL) == 0)
            atomic_fetch_add(&gsel.hits[i], 1);
    for (int i = 0; i < G_TIMERS; i++) {
        ck_assert_int_eq(atomic_load(&gsel.hits[i]), 1);
        ck_assert_int_eq(chan_timer_free(gsel.t[i]), 0);
    }
    NO_BAD();
}
END_TEST

/* Go's TestWithCancel, TestDeadline and TestCancelRemoves-style churn with Gs: 100 Gs park on a
 * context's done channel (half in a select beside a timer an hour away); a G cancels the
 * parent; every one wakes with the parent's error. Gs making children while another G cancels
 * the parent find each child cancelled once the cancel has returned. A time-out wakes a G. */
struct gctx {
    chan_ctx_t *root;
    atomic_int woke, made;
    chan_ctx_t *kids[4][500];
    atomic_int nkids[4];
};

static void ctx_waiter_g(void *arg)
{
    struct gctx *c = arg;
    chan_ctx_t *k = chan_ctx_with_cancel(c->root);
    G_CHECK(k != NULL);
    int n = atomic_fetch_add(&c->made, 1);
    if (n % 2) {
        G_CHECK(chan_recv(chan_ctx_done(k), NULL) == -EPIPE);
    } else {
        chan_timer_t *t = chan_timer_make(3600 * 1000 * MS);
        struct chan_case cs[] = {{.chan = chan_timer_chan(t), .dir = CHAN_RECV},
                                 {.chan = chan_ctx_done(k), .dir = CHAN_RECV}};
        G_CHECK(chan_select(cs, 2) == 1 && !cs[1].ok);
        G_CHECK(chan_timer_free(t) == 0);
    }
    G_CHECK(chan_ctx_err(k) == -ECANCELED);
    G_CHECK(chan_ctx_free(k) == 0);
    atomic_fetch_add(&c->woke, 1);
}

static void ctx_canceller_g(void *arg)
{
    struct gctx *c = arg;
    while (atomic_load(&c->made) < 100)
        chan_mpg_yield();
    G_CHECK(chan_ctx_cancel(c->root) == 0);
}

static void ctx_maker_g(void *arg)
{
    struct gctx *c = arg;
    int me = atomic_fetch_add(&c->made, 1) - 100;
    for (int i = 0; i < 500; i++) {
        c->kids[me][i] = i % 2 ? chan_ctx_with_cancel(c->root)
                               : chan_ctx_with_timeout(c->root, 3600 * 1000 * MS);
        G_CHECK(c->kids[me][i] != NULL);
        atomic_store(&c->nkids[me], i + 1);
        if (i % 50 == 0)
            chan_mpg_yield();
    }
}

/* Cancels the root once the makers are under way. */
static void ctx_mid_canceller_g(void *arg)
{
    struct gctx *c = arg;
    while (atomic_load(&c->nkids[0]) < 200)
        chan_mpg_yield();
    G_CHECK(chan_ctx_cancel(c->root) == 0);
}

static void ctx_timeout_g(void *arg)
{
    (void)arg;
    int64_t start = chan_now();
    chan_ctx_t *c = chan_ctx_with_timeout(chan_ctx_background(), 20 * MS);
    G_CHECK(chan_recv(chan_ctx_done(c), NULL) == -EPIPE);
    G_CHECK(chan_now() >= start + 20 * MS && chan_ctx_err(c) == -ETIMEDOUT);
    G_CHECK(chan_ctx_free(c) == 0);
}

START_TEST(contexts_on_gs)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    static struct gctx c;
    c.root = chan_ctx_with_cancel(chan_ctx_background());
    for (int i = 0; i < 100; i++)
        go(ctx_waiter_g, &c);
    go(ctx_canceller_g, &c);
    go(ctx_timeout_g, NULL);
    finish();
    ck_assert_int_eq(atomic_load(&c.woke), 100);
    ck_assert_int_eq(chan_ctx_free(c.root), 0);

    ck_assert_int_eq(chan_mpg_start(2), 0);
    c.root = chan_ctx_with_cancel(chan_ctx_background());
    atomic_store(&c.made, 100); /* the makers number themselves from here */
    for (int i = 0; i < 4; i++)
        go(ctx_maker_g, &c);
    go(ctx_mid_canceller_g, &c);
    finish();
    for (int i = 0; i < 4; i++) {
        for (int j = atomic_load(&c.nkids[i]) - 1; j >= 0; j--) {
            ck_assert_int_eq(chan_ctx_err(c.kids[i][j]), -ECANCELED);
            ck_assert_int_eq(chan_ctx_free(c.kids[i][j]), 0);
        }
    }
    ck_assert_int_eq(chan_ctx_free(c.root), 0);
    NO_BAD();
}
END_TEST

/* Go's TestWaitGroup on one P: N Gs each call done on wg1 and wait on wg2; wg1's wait (in a G
 * too) returns while all N are parked on wg2; then wg2's dones release them. Reused 8 times. */
struct gtwo {
    chan_wg_t *wg1, *wg2;
    chan_t *exited;
};

static void gtwo_member(void *arg)
{
    struct gtwo *w = arg;
    G_CHECK(chan_wg_done(w->wg1) == 0);
    G_CHECK(chan_wg_wait(w->wg2) == 0);
    G_CHECK(chan_send(w->exited, NULL) == 0);
}

static void gtwo_driver(void *arg)
{
    struct gtwo *w = arg;
    enum { N = 16 };
    for (int round = 0; round < 8; round++) {
        G_CHECK(chan_wg_add(w->wg1, N) == 0 && chan_wg_add(w->wg2, N) == 0);
        for (int i = 0; i < N; i++)
            G_CHECK(chan_mpg_go(gtwo_member, w) > 0);
        G_CHECK(chan_wg_wait(w->wg1) == 0);
        for (int i = 0; i < 10; i++)
            chan_mpg_yield(); /* a wrong wg2 would let them through now */
        G_CHECK(chan_tryrecv(w->exited, NULL) == -EAGAIN);
        for (int i = 0; i < N; i++)
            G_CHECK(chan_wg_done(w->wg2) == 0);
        for (int i = 0; i < N; i++)
            G_CHECK(chan_recv(w->exited, NULL) == 0);
    }
}

/* Go's TestWaitGroupRace on Gs: two G tasks each add to a count and call done; the driver G's
 * wait must not return before both have, a thousand times over (200 under sanitizers), each
 * WaitGroup fresh. */
struct grace {
    chan_wg_t *wg;
    atomic_int n;
};

static void grace_task(void *arg)
{
    struct grace *r = arg;
    atomic_fetch_add(&r->n, 1);
    G_CHECK(chan_wg_done(r->wg) == 0);
}

static void grace_driver(void *arg)
{
    (void)arg;
    for (int i = 0; i < scaled(1000, 200); i++) {
        struct grace r = {chan_wg_make(), 0};
        for (int k = 0; k < 2; k++) {
            G_CHECK(chan_wg_add(r.wg, 1) == 0);
            G_CHECK(chan_mpg_go(grace_task, &r) > 0);
        }
        G_CHECK(chan_wg_wait(r.wg) == 0);
        G_CHECK(atomic_load(&r.n) == 2);
        /* The last done may still hold the WaitGroup's mutex on another P: free says so. */
        int rc;
        while ((rc = chan_wg_free(r.wg)) == -EBUSY)
            chan_mpg_yield();
        G_CHECK(rc == 0);
    }
}

/* Go's misuse panics on one P, where they are certain: the waiter G, released by the done that
 * ends its round, is runnable but has not run, so its wait has not returned; an add that would
 * begin the next round is -EBUSY (Go: "WaitGroup is reused before previous Wait has returned")
 * and changes nothing, until the waiter has run. A done too many is -EINVAL (Go: "negative
 * WaitGroup counter"). */
struct greuse {
    chan_wg_t *wg;
    atomic_int rc;
};

static void greuse_waiter(void *arg)
{
    struct greuse *r = arg;
    atomic_store(&r->rc, chan_wg_wait(r->wg));
}

static void greuse_driver(void *arg)
{
    struct greuse *r = arg;
    G_CHECK(chan_wg_add(r->wg, 1) == 0);
    G_CHECK(chan_mpg_go(greuse_waiter, r) > 0);
    while (hchan_waiting(chan_wg_chan(r->wg), CHAN_RECV) < 1) /* parked in its wait */
        chan_mpg_yield();
    G_CHECK(chan_wg_done(r->wg) == 0);
    G_CHECK(chan_wg_add(r->wg, 1) == -EBUSY);
    G_CHECK(chan_wg_free(r->wg) == -EBUSY);
    G_CHECK(chan_tryrecv(chan_wg_chan(r->wg), NULL) == -EPIPE); /* still zero */
    while (atomic_load(&r->rc) == 1)
        chan_mpg_yield();
    G_CHECK(atomic_load(&r->rc) == 0);
    G_CHECK(chan_wg_add(r->wg, 1) == 0);
    G_CHECK(chan_wg_done(r->wg) == 0);
    G_CHECK(chan_wg_done(r->wg) == -EINVAL);
}

START_TEST(wg_race_and_misuse_on_gs)
{
    ck_assert_int_eq(chan_mpg_start(1), 0);
    struct greuse r = {chan_wg_make(), 1};
    go(greuse_driver, &r);
    finish();
    ck_assert_int_eq(chan_wg_free(r.wg), 0);
    ck_assert_int_eq(chan_mpg_start(2), 0);
    go(grace_driver, NULL);
    finish();
    NO_BAD();
}
END_TEST

/* errgroup's TestTryGo and TestZeroGroup with G tasks, driven by a G. */
static int g_send_task(chan_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return chan_send(arg, NULL);
}

static int g_fail_task(chan_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return (int)(intptr_t)arg;
}

static void g_drain(void *arg)
{
    while (chan_recv(arg, NULL) == 0) {
    }
}

static void trygo_driver(void *arg)
{
    chan_t *ch = arg;
    chan_group_t *g = chan_group_make(chan_ctx_background());
    G_CHECK(chan_group_set_spawn(g, chan_mpg_go) == 0);
    G_CHECK(chan_group_set_limit(g, 42) == 0);
    for (int i = 0; i < 42; i++)
        G_CHECK(chan_group_trygo(g, g_send_task, ch) == 0);
    G_CHECK(chan_group_trygo(g, g_send_task, ch) == -EAGAIN);
    G_CHECK(chan_mpg_go(g_drain, ch) > 0);
    G_CHECK(chan_group_wait(g) == 0);
    G_CHECK(chan_group_trygo(g, g_send_task, ch) == 0);
    G_CHECK(chan_group_wait(g) == 0);
    G_CHECK(chan_group_set_limit(g, 0) == 0);
    G_CHECK(chan_group_trygo(g, g_send_task, ch) == -EAGAIN);
    G_CHECK(chan_group_set_limit(g, -1) == 0);
    static const int errs[] = {0, -EIO, 0, -EPERM};
    for (int i = 0; i < 4; i++) {
        G_CHECK(chan_group_go(g, g_fail_task, (void *)(intptr_t)errs[i]) == 0);
        G_CHECK(chan_group_wait(g) == (i ? -EIO : 0));
    }
    G_CHECK(chan_tryrecv(chan_ctx_done(chan_group_ctx(g)), NULL) == -EPIPE);
    G_CHECK(chan_close(ch) == 0);
    G_CHECK(chan_group_free(g) == 0);
}

START_TEST(wg_and_group_ports_on_gs)
{
    ck_assert_int_eq(chan_mpg_start(1), 0);
    struct gtwo w = {chan_wg_make(), chan_wg_make(), chan_make(0, 16)};
    go(gtwo_driver, &w);
    chan_t *ch = chan_make(0, 0); /* freed once the G that drains it has returned */
    go(trygo_driver, ch);
    finish();
    ck_assert_int_eq(chan_free(ch), 0);
    ck_assert_int_eq(chan_wg_free(w.wg1), 0);
    ck_assert_int_eq(chan_wg_free(w.wg2), 0);
    ck_assert_int_eq(chan_free(w.exited), 0);
    NO_BAD();
}
END_TEST

/* Go's TestSleepZeroDeadlock and TestAfterStress on Gs: a G sleeps until now (and before the
 * epoch, and at INT64_MIN), makes a channel and a timer due at once and receives from both, 100
 * times, and another receives 100 ticks of a 1 ns ticker, while a third makes and stops timers
 * between sleeps of 1 ns: none of them is left parked. */
static void sleep_zero_g(void *arg)
{
    (void)arg;
    G_CHECK(chan_mpg_sleep_until(INT64_MIN) == 0);
    G_CHECK(chan_mpg_sleep_until(-1) == 0);
    for (int i = 0; i < 100; i++) {
        G_CHECK(chan_mpg_sleep_until(chan_now()) == 0);
        chan_t *tmp = chan_make(sizeof(int), 1);
        int v = i;
        G_CHECK(chan_send(tmp, &v) == 0 && chan_recv(tmp, &v) == 0 && v == i);
        G_CHECK(chan_free(tmp) == 0);
        chan_timer_t *t = chan_timer_make(0);
        G_CHECK(chan_recv(chan_timer_chan(t), NULL) == 0);
        G_CHECK(chan_timer_free(t) == 0);
    }
}

static atomic_int stress_stop;

static void tick_100_g(void *arg)
{
    (void)arg;
    chan_ticker_t *k = chan_ticker_make(1);
    for (int i = 0; i < 100; i++)
        G_CHECK(chan_recv(chan_ticker_chan(k), NULL) == 0);
    G_CHECK(chan_ticker_free(k) == 0);
    atomic_store(&stress_stop, 1);
}

static void timer_churn_g(void *arg)
{
    (void)arg;
    while (!atomic_load(&stress_stop)) {
        chan_timer_t *t = chan_timer_make(3600 * 1000 * MS);
        G_CHECK(chan_timer_stop(t) == 1 && chan_timer_free(t) == 0);
        chan_mpg_sleep_until(chan_now() + 1);
    }
}

START_TEST(sleep_zero_and_tick_stress_on_gs)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    atomic_store(&stress_stop, 0);
    go(timer_churn_g, NULL);
    go(sleep_zero_g, NULL);
    go(tick_100_g, NULL);
    finish();
    NO_BAD();
}
END_TEST

/* test_timer's every_arming_accounted_for with Gs on 2 Ps: a G stops and resets a timer at
 * random (durations from the past to 15 us) while two Gs park on its channel; every arming ends
 * in one stop or reset that returns 1 or one receive, and after a stop nothing is there to
 * take (Go 1.23's timers, the receivers parked Gs that the timer thread unparks). */
static struct {
    chan_timer_t *t;
    atomic_int stop;
    atomic_long got, arms, undone;
} arming;

static void arming_receiver_g(void *arg)
{
    (void)arg;
    while (!atomic_load(&arming.stop))
        if (chan_recv_until(chan_timer_chan(arming.t), NULL, chan_now() + 2 * MS) == 0)
            atomic_fetch_add(&arming.got, 1);
}

static void arming_controller_g(void *arg)
{
    (void)arg;
    uint64_t seed = 11;
    long arms = 1, undone = 0;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(seed >> 33);
        int64_t d = (int64_t)(r % 5) * 5 * CHAN_MICROSECOND - 5 * CHAN_MICROSECOND;
        int k;
        if (r / 5 % 3 == 0) {
            G_CHECK((k = chan_timer_stop(arming.t)) >= 0);
            undone += k;
            G_CHECK(chan_tryrecv(chan_timer_chan(arming.t), NULL) == -EAGAIN);
        } else if (r / 5 % 3 == 1) {
            G_CHECK((k = chan_timer_reset(arming.t, d)) >= 0);
            undone += k;
            arms++;
        } else if (chan_tryrecv(chan_timer_chan(arming.t), NULL) == 0) {
            atomic_fetch_add(&arming.got, 1);
        }
        if (i % 64 == 0)
            chan_mpg_yield();
    }
    undone += chan_timer_stop(arming.t);
    atomic_store(&arming.arms, arms);
    atomic_store(&arming.undone, undone);
    atomic_store(&arming.stop, 1);
}

START_TEST(timer_every_arming_accounted_for_on_gs)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    arming.t = chan_timer_make(5 * CHAN_MICROSECOND);
    ck_assert_ptr_nonnull(arming.t);
    go(arming_receiver_g, NULL);
    go(arming_receiver_g, NULL);
    go(arming_controller_g, NULL);
    finish();
    ck_assert_int_eq(chan_tryrecv(chan_timer_chan(arming.t), NULL), -EAGAIN);
    ck_assert_int_eq(atomic_load(&arming.arms),
                     atomic_load(&arming.undone) + atomic_load(&arming.got));
    ck_assert_int_eq(chan_timer_free(arming.t), 0);
    NO_BAD();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg_sync");
    ADD_TEST(s, wg_wait_parks_the_g, 30);
    ADD_TEST(s, wg_rounds_on_gs, 60);
    ADD_TEST(s, group_of_gs_from_a_thread, 30);
    ADD_TEST(s, group_in_a_g_with_limit, 60);
    ADD_TEST(s, timers_on_gs, 60);
    ADD_TEST(s, contexts_on_gs, 60);
    ADD_TEST(s, wg_and_group_ports_on_gs, 60);
    ADD_TEST(s, wg_race_and_misuse_on_gs, 60);
    ADD_TEST(s, sleep_zero_and_tick_stress_on_gs, 60);
    ADD_TEST(s, timer_every_arming_accounted_for_on_gs, 60);
    return run_suite(s);
}
