/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_sync.c - chan_sync.h with Gs (libchan-mpg): a G that waits on a WaitGroup or a
 * group parks the G, not its thread (with one P, the Gs it waits for could not run otherwise),
 * the round's channel in a G's select, rounds of many Gs, and a group whose tasks are Gs
 * (chan_group_set_spawn(g, chan_mpg_go)) started from a plain thread and from a G. Each test
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
    int now = atomic_fetch_add(&l->running, 1) + 1;
    for (int m = atomic_load(&l->max_running); now > m;)
        if (atomic_compare_exchange_weak(&l->max_running, &m, now))
            break;
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

int main(void)
{
    Suite *s = suite_create("mpg_sync");
    ADD_TEST(s, wg_wait_parks_the_g, 30);
    ADD_TEST(s, wg_rounds_on_gs, 60);
    ADD_TEST(s, group_of_gs_from_a_thread, 30);
    ADD_TEST(s, group_in_a_g_with_limit, 60);
    return run_suite(s);
}
