/* SPDX-License-Identifier: MIT */
/* test_context.c - the context tree (chan_time.h): cancel propagation, deadlines, values,
 * without-cancel, freeing. ASan's leak checker watches the freeing; timing bounds are loose. */
#include "testgate.h"

#include <stdatomic.h>

#include "chan_time.h"
#include "timing.h"

/* Cancelled: the done channel is closed (a receive reports -EPIPE at once). */
static int is_done(chan_ctx_t *ctx)
{
    chan_t *d = chan_ctx_done(ctx);
    return d && chan_tryrecv(d, NULL) == -EPIPE;
}

static void assert_live(chan_ctx_t *ctx)
{
    ck_assert_ptr_nonnull(chan_ctx_done(ctx));
    ck_assert_int_eq(chan_tryrecv(chan_ctx_done(ctx), NULL), -EAGAIN);
    ck_assert_int_eq(chan_ctx_err(ctx), 0);
}

static void assert_cancelled(chan_ctx_t *ctx, int err)
{
    ck_assert(is_done(ctx));
    ck_assert_int_eq(chan_ctx_err(ctx), err);
}

/* For a cancel that another thread is doing (a deadline, on the timer thread): it cancels a
 * subtree one context at a time, as Go does, so wait for each (up to 10 s). */
static void await_cancelled(chan_ctx_t *ctx, int err)
{
    ck_assert_int_eq(chan_recv_until(chan_ctx_done(ctx), NULL, chan_now() + 10000 * MS), -EPIPE);
    ck_assert_int_eq(chan_ctx_err(ctx), err);
}

START_TEST(ctx_background)
{
    chan_ctx_t *bg = chan_ctx_background();
    ck_assert_ptr_nonnull(bg);
    ck_assert_ptr_eq(bg, chan_ctx_background());
    ck_assert_ptr_null(chan_ctx_done(bg)); /* never ready */
    ck_assert_int_eq(chan_ctx_err(bg), 0);
    int64_t d = 0;
    ck_assert_int_eq(chan_ctx_deadline(bg, &d), -ENOENT);
    ck_assert_int_eq(d, CHAN_FOREVER);
    void *v = &d;
    static int key;
    ck_assert_int_eq(chan_ctx_value(bg, &key, &v), -ENOENT);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(chan_ctx_cancel(bg), -EINVAL);
    ck_assert_int_eq(chan_ctx_free(bg), 0);
    ck_assert_int_eq(chan_ctx_err(bg), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_bad_arguments)
{
    static int key;
    void *v;
    int64_t d;
    errno = 0;
    ck_assert_ptr_null(chan_ctx_with_cancel(NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(chan_ctx_with_deadline(NULL, chan_now()));
    ck_assert_ptr_null(chan_ctx_with_timeout(NULL, MS));
    ck_assert_ptr_null(chan_ctx_without_cancel(NULL));
    ck_assert_ptr_null(chan_ctx_with_value(NULL, &key, NULL));
    ck_assert_ptr_null(chan_ctx_with_value(chan_ctx_background(), NULL, NULL));
    ck_assert_int_eq(chan_ctx_cancel(NULL), -EINVAL);
    ck_assert_ptr_null(chan_ctx_done(NULL));
    ck_assert_int_eq(chan_ctx_err(NULL), -EINVAL);
    ck_assert_int_eq(chan_ctx_deadline(NULL, &d), -EINVAL);
    ck_assert_int_eq(chan_ctx_deadline(chan_ctx_background(), NULL), -EINVAL);
    ck_assert_int_eq(chan_ctx_value(NULL, &key, &v), -EINVAL);
    ck_assert_int_eq(chan_ctx_value(chan_ctx_background(), NULL, &v), -EINVAL);
    ck_assert_int_eq(chan_ctx_value(chan_ctx_background(), &key, NULL), -EINVAL);
    ck_assert_int_eq(chan_ctx_free(NULL), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_cancel_basic)
{
    chan_ctx_t *c = chan_ctx_with_cancel(chan_ctx_background());
    ck_assert_ptr_nonnull(c);
    assert_live(c);
    ck_assert_int_eq(chan_ctx_deadline(c, &(int64_t){0}), -ENOENT);
    ck_assert_int_eq(chan_ctx_cancel(c), 0);
    assert_cancelled(c, -ECANCELED);
    ck_assert_int_eq(chan_ctx_cancel(c), 0); /* idempotent */
    assert_cancelled(c, -ECANCELED);
    /* A child of a cancelled context is born cancelled. */
    chan_ctx_t *k = chan_ctx_with_cancel(c);
    assert_cancelled(k, -ECANCELED);
    chan_ctx_t *kd = chan_ctx_with_timeout(c, 3600 * 1000 * MS);
    assert_cancelled(kd, -ECANCELED);
    ck_assert_int_eq(chan_ctx_free(kd), 0);
    ck_assert_int_eq(chan_ctx_free(k), 0);
    ck_assert_int_eq(chan_ctx_free(c), 0);
    assert_no_leaks();
}
END_TEST

/* Depth 3, width 100: root -> 100 children -> 100 grandchildren each. Cancelling one child
 * cancels exactly its 100 grandchildren; cancelling the root cancels everything. */
#define WIDTH 100

START_TEST(ctx_cancel_propagation_tree)
{
    static chan_ctx_t *kids[WIDTH], *grand[WIDTH][WIDTH];
    chan_ctx_t *root = chan_ctx_with_cancel(chan_ctx_background());
    for (int i = 0; i < WIDTH; i++) {
        kids[i] = chan_ctx_with_cancel(root);
        ck_assert_ptr_nonnull(kids[i]);
        for (int j = 0; j < WIDTH; j++) {
            /* Mix the kinds: value nodes in between must pass cancellation through. */
            chan_ctx_t *parent = kids[i];
            if (j % 10 == 0)
                grand[i][j] = chan_ctx_with_value(parent, &grand, (void *)(intptr_t)j);
            else if (j % 10 == 1)
                grand[i][j] = chan_ctx_with_timeout(parent, 3600 * 1000 * MS);
            else
                grand[i][j] = chan_ctx_with_cancel(parent);
            ck_assert_ptr_nonnull(grand[i][j]);
        }
    }
    /* Cancel child 42: its subtree only. */
    ck_assert_int_eq(chan_ctx_cancel(kids[42]), 0);
    for (int i = 0; i < WIDTH; i++) {
        for (int j = 0; j < WIDTH; j++) {
            if (i == 42)
                assert_cancelled(grand[i][j], -ECANCELED);
            else
                assert_live(grand[i][j]);
        }
        if (i == 42)
            assert_cancelled(kids[i], -ECANCELED);
        else
            assert_live(kids[i]);
    }
    assert_live(root);
    /* Cancel a grandchild: not its parent, not its siblings. */
    ck_assert_int_eq(chan_ctx_cancel(grand[7][5]), 0);
    assert_cancelled(grand[7][5], -ECANCELED);
    assert_live(grand[7][4]);
    assert_live(grand[7][6]);
    assert_live(kids[7]);
    /* A value node has no cancel of its own. */
    ck_assert_int_eq(chan_ctx_cancel(grand[3][0]), -EINVAL);
    assert_live(grand[3][0]);
    ck_assert_ptr_eq(chan_ctx_done(grand[3][0]), chan_ctx_done(kids[3]));

    /* Cancel the root: everything. */
    ck_assert_int_eq(chan_ctx_cancel(root), 0);
    assert_cancelled(root, -ECANCELED);
    for (int i = 0; i < WIDTH; i++) {
        assert_cancelled(kids[i], -ECANCELED);
        for (int j = 0; j < WIDTH; j++)
            assert_cancelled(grand[i][j], -ECANCELED);
    }
    /* Free in an awkward order: root first, then children, grandchildren last. */
    ck_assert_int_eq(chan_ctx_free(root), 0);
    for (int i = 0; i < WIDTH; i++)
        ck_assert_int_eq(chan_ctx_free(kids[i]), 0);
    for (int i = 0; i < WIDTH; i++)
        for (int j = 0; j < WIDTH; j++)
            ck_assert_int_eq(chan_ctx_free(grand[i][j]), 0);
    assert_no_leaks();
}
END_TEST

/* Threads blocked in select on done channels deep in the tree are all woken by one cancel at
 * the root. */
struct blocked {
    chan_ctx_t *ctx;
    chan_t *other;
    int r;
    bool ok;
};

static void *wait_done(void *p)
{
    struct blocked *b = p;
    struct chan_case cs[2] = {{.chan = b->other, .dir = CHAN_RECV},
                              {.chan = chan_ctx_done(b->ctx), .dir = CHAN_RECV}};
    b->r = chan_select(cs, 2);
    b->ok = cs[b->r].ok;
    return NULL;
}

START_TEST(ctx_cancel_wakes_blocked_selects)
{
    enum { N = 8 };
    chan_ctx_t *root = chan_ctx_with_cancel(chan_ctx_background());
    chan_ctx_t *mid = chan_ctx_with_value(root, &root, NULL);
    chan_ctx_t *leaves[N];
    struct blocked b[N];
    pthread_t th[N];
    chan_t *other = chan_make(0, 0);
    for (int i = 0; i < N; i++) {
        leaves[i] = i % 2 ? chan_ctx_with_cancel(mid) : chan_ctx_with_timeout(mid, 3600000 * MS);
        b[i] = (struct blocked){.ctx = leaves[i], .other = other, .r = -1};
        th[i] = spawn(wait_done, &b[i]);
    }
    for (int i = 0; i < N; i++)
        ck_assert(blocked_receivers_at_least(chan_ctx_done(leaves[i]), 1));
    ck_assert_int_eq(chan_ctx_cancel(root), 0);
    for (int i = 0; i < N; i++) {
        join(th[i]);
        ck_assert_int_eq(b[i].r, 1);
        ck_assert(!b[i].ok); /* closed */
        ck_assert_int_eq(chan_ctx_err(leaves[i]), -ECANCELED);
        ck_assert_int_eq(chan_ctx_free(leaves[i]), 0);
    }
    ck_assert_int_eq(chan_ctx_free(mid), 0);
    ck_assert_int_eq(chan_ctx_free(root), 0);
    ck_assert_int_eq(chan_free(other), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_without_cancel_survives)
{
    static int key;
    int value = 7;
    chan_ctx_t *parent = chan_ctx_with_cancel(chan_ctx_background());
    chan_ctx_t *withval = chan_ctx_with_value(parent, &key, &value);
    chan_ctx_t *wc = chan_ctx_without_cancel(withval);
    chan_ctx_t *below = chan_ctx_with_cancel(wc);
    chan_ctx_t *dl = chan_ctx_with_timeout(parent, 3600 * 1000 * MS);
    chan_ctx_t *wcdl = chan_ctx_without_cancel(dl);
    ck_assert_ptr_null(chan_ctx_done(wc));
    ck_assert_int_eq(chan_ctx_cancel(wc), -EINVAL);
    int64_t d;
    ck_assert_int_eq(chan_ctx_deadline(dl, &d), 0);
    ck_assert_int_eq(chan_ctx_deadline(wcdl, &d), -ENOENT); /* no deadline either */

    ck_assert_int_eq(chan_ctx_cancel(parent), 0);
    assert_cancelled(parent, -ECANCELED);
    assert_cancelled(withval, -ECANCELED);
    assert_cancelled(dl, -ECANCELED);
    ck_assert_int_eq(chan_ctx_err(wc), 0);
    ck_assert_int_eq(chan_ctx_err(wcdl), 0);
    assert_live(below);
    void *v = NULL;
    ck_assert_int_eq(chan_ctx_value(below, &key, &v), 0); /* values still flow through */
    ck_assert_ptr_eq(v, &value);
    /* below is cancelled by itself only. */
    ck_assert_int_eq(chan_ctx_cancel(below), 0);
    assert_cancelled(below, -ECANCELED);
    ck_assert_int_eq(chan_ctx_err(wc), 0);

    /* Free the parents first: the children keep them (and their values) alive. */
    ck_assert_int_eq(chan_ctx_free(parent), 0);
    ck_assert_int_eq(chan_ctx_free(withval), 0);
    ck_assert_int_eq(chan_ctx_free(dl), 0);
    ck_assert_int_eq(chan_ctx_value(below, &key, &v), 0);
    ck_assert_ptr_eq(v, &value);
    ck_assert_int_eq(chan_ctx_free(wcdl), 0);
    ck_assert_int_eq(chan_ctx_free(wc), 0);
    ck_assert_int_eq(chan_ctx_free(below), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_deadline_on_time)
{
    witness_mark();
    static const int64_t ds[] = {1 * MS, 20 * MS, 60 * MS};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        int64_t deadline = chan_now() + ds[i];
        chan_ctx_t *c = chan_ctx_with_deadline(chan_ctx_background(), deadline);
        ck_assert_ptr_nonnull(c);
        int64_t got;
        ck_assert_int_eq(chan_ctx_deadline(c, &got), 0);
        ck_assert_int_eq(got, deadline);
        ck_assert_int_eq(chan_recv(chan_ctx_done(c), NULL), -EPIPE);
        int64_t now = chan_now();
        ck_assert_int_ge(now, deadline); /* never early */
        ck_assert_int_le(now - deadline, late_allowed());
        ck_assert_int_eq(chan_ctx_err(c), -ETIMEDOUT);
        ck_assert_int_eq(chan_ctx_cancel(c), 0); /* changes nothing */
        ck_assert_int_eq(chan_ctx_err(c), -ETIMEDOUT);
        ck_assert_int_eq(chan_ctx_free(c), 0);
    }
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_timeout_tree)
{
    witness_mark();
    /* A parent's earlier deadline wins; its time-out reaches every descendant as -ETIMEDOUT. */
    int64_t start = chan_now();
    chan_ctx_t *p = chan_ctx_with_timeout(chan_ctx_background(), 40 * MS);
    chan_ctx_t *later = chan_ctx_with_timeout(p, 3600 * 1000 * MS);
    chan_ctx_t *c = chan_ctx_with_cancel(p);
    chan_ctx_t *v = chan_ctx_with_value(c, &p, NULL);
    chan_ctx_t *earlier = chan_ctx_with_timeout(v, 10 * MS);
    int64_t dp, dl, dc, dv, de;
    ck_assert_int_eq(chan_ctx_deadline(p, &dp), 0);
    ck_assert_int_eq(chan_ctx_deadline(later, &dl), 0);
    ck_assert_int_eq(chan_ctx_deadline(c, &dc), 0);
    ck_assert_int_eq(chan_ctx_deadline(v, &dv), 0);
    ck_assert_int_eq(chan_ctx_deadline(earlier, &de), 0);
    ck_assert_int_eq(dl, dp);
    ck_assert_int_eq(dc, dp);
    ck_assert_int_eq(dv, dp);
    ck_assert_int_le(de, dp); /* equal when a stall of 30 ms came between the two makes */

    ck_assert_int_eq(chan_recv(chan_ctx_done(earlier), NULL), -EPIPE);
    ck_assert_int_ge(chan_now(), de);
    ck_assert_int_eq(chan_ctx_err(earlier), -ETIMEDOUT);
    /* A child's time-out is not the parent's (c follows p's deadline, and may reach it on a
     * slow machine). */
    int ec = chan_ctx_err(c);
    ck_assert(ec == 0 || (ec == -ETIMEDOUT && chan_now() >= dp));
    ck_assert_int_eq(chan_recv(chan_ctx_done(v), NULL), -EPIPE);
    int64_t now = chan_now();
    ck_assert_int_ge(now, start + 40 * MS);
    ck_assert_int_le(now - dp, late_allowed());
    await_cancelled(p, -ETIMEDOUT);
    await_cancelled(later, -ETIMEDOUT);
    await_cancelled(c, -ETIMEDOUT);
    await_cancelled(v, -ETIMEDOUT);
    chan_ctx_t *ctxs[] = {later, earlier, p, v, c};
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(chan_ctx_free(ctxs[i]), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_deadline_passed_or_cancelled_first)
{
    chan_ctx_t *c = chan_ctx_with_deadline(chan_ctx_background(), chan_now() - 1);
    assert_cancelled(c, -ETIMEDOUT); /* born timed out */
    ck_assert_int_eq(chan_ctx_free(c), 0);
    c = chan_ctx_with_timeout(chan_ctx_background(), 0);
    assert_cancelled(c, -ETIMEDOUT);
    ck_assert_int_eq(chan_ctx_free(c), 0);
    /* A huge time-out saturates: no deadline. */
    c = chan_ctx_with_timeout(chan_ctx_background(), INT64_MAX);
    ck_assert_int_eq(chan_ctx_deadline(c, &(int64_t){0}), -ENOENT);
    ck_assert_int_eq(chan_ctx_free(c), 0);

    /* Cancelled before the deadline: -ECANCELED, and the deadline changes nothing later. (On
     * a machine stalled past the deadline the time-out may legitimately come first.) */
    int64_t deadline = chan_now() + 150 * MS;
    c = chan_ctx_with_deadline(chan_ctx_background(), deadline);
    ck_assert_int_eq(chan_ctx_cancel(c), 0);
    int want = chan_now() < deadline ? -ECANCELED : chan_ctx_err(c);
    ck_assert_int_ne(want, 0);
    assert_cancelled(c, want);
    sleep_ms(200);
    assert_cancelled(c, want);
    ck_assert_int_eq(chan_ctx_free(c), 0);

    /* Freed before the deadline, with a child that outlives it: nothing fires into freed
     * memory (ASan), the child is cancelled. */
    deadline = chan_now() + 150 * MS;
    c = chan_ctx_with_deadline(chan_ctx_background(), deadline);
    chan_ctx_t *k = chan_ctx_with_timeout(c, 3600 * 1000 * MS);
    ck_assert_int_eq(chan_ctx_free(c), 0);
    want = chan_now() < deadline ? -ECANCELED : chan_ctx_err(k);
    ck_assert_int_ne(want, 0);
    assert_cancelled(k, want);
    sleep_ms(200);
    assert_cancelled(k, want);
    ck_assert_int_eq(chan_ctx_free(k), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_values)
{
    static int k1, k2, k3;
    int a = 1, b = 2, c = 3;
    chan_ctx_t *v1 = chan_ctx_with_value(chan_ctx_background(), &k1, &a);
    chan_ctx_t *cc = chan_ctx_with_cancel(v1);
    chan_ctx_t *v2 = chan_ctx_with_value(cc, &k2, &b);
    chan_ctx_t *dl = chan_ctx_with_timeout(v2, 3600 * 1000 * MS);
    chan_ctx_t *v3 = chan_ctx_with_value(dl, &k1, &c); /* shadows k1 */
    void *v;
    ck_assert_int_eq(chan_ctx_value(v3, &k1, &v), 0);
    ck_assert_ptr_eq(v, &c);
    ck_assert_int_eq(chan_ctx_value(dl, &k1, &v), 0);
    ck_assert_ptr_eq(v, &a);
    ck_assert_int_eq(chan_ctx_value(v3, &k2, &v), 0);
    ck_assert_ptr_eq(v, &b);
    ck_assert_int_eq(chan_ctx_value(cc, &k2, &v), -ENOENT); /* below, not above */
    ck_assert_ptr_null(v);
    ck_assert_int_eq(chan_ctx_value(v3, &k3, &v), -ENOENT);
    ck_assert_ptr_eq(chan_ctx_done(v3), chan_ctx_done(dl));
    ck_assert_ptr_eq(chan_ctx_done(v2), chan_ctx_done(cc));
    ck_assert_ptr_null(chan_ctx_done(v1));
    /* A value node's error follows its canceller. */
    ck_assert_int_eq(chan_ctx_cancel(cc), 0);
    ck_assert_int_eq(chan_ctx_err(v2), -ECANCELED);
    ck_assert_int_eq(chan_ctx_err(v3), -ECANCELED);
    ck_assert_int_eq(chan_ctx_err(v1), 0);
    chan_ctx_t *all[] = {cc, v1, v3, v2, dl};
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(chan_ctx_free(all[i]), 0);
    assert_no_leaks();
}
END_TEST

/* Concurrent cancels, frees and new children on one tree, with threads blocked on done
 * channels; run under TSan for races and ASan for use after free. */
struct churn_arg {
    chan_ctx_t *root;
    int id;
};

static void *churn(void *p)
{
    struct churn_arg *a = p;
    for (int i = 0; i < 300; i++) {
        chan_ctx_t *c = (i + a->id) % 3 ? chan_ctx_with_cancel(a->root)
                                        : chan_ctx_with_timeout(a->root, (i % 5) * 100000);
        ck_assert_ptr_nonnull(c);
        chan_ctx_t *g = chan_ctx_with_cancel(c);
        chan_ctx_t *h = chan_ctx_with_timeout(g, (i % 4) * 50000);
        if (i % 2)
            chan_ctx_cancel(c);
        if (i % 3 == 0)
            chan_ctx_cancel(h);
        /* Free in varying orders: parents before children, or after. */
        if (i % 2) {
            chan_ctx_free(c);
            chan_ctx_free(h);
            chan_ctx_free(g);
        } else {
            chan_ctx_free(h);
            chan_ctx_free(g);
            chan_ctx_free(c);
        }
    }
    return NULL;
}

START_TEST(ctx_concurrent_churn)
{
    enum { T = 4 };
    chan_ctx_t *root = chan_ctx_with_cancel(chan_ctx_background());
    struct churn_arg a[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        a[i] = (struct churn_arg){root, i};
        th[i] = spawn(churn, &a[i]);
    }
    for (int i = 0; i < T; i++)
        join(th[i]);
    /* And a root cancel racing children being made and freed. */
    for (int i = 0; i < T; i++)
        th[i] = spawn(churn, &a[i]);
    sleep_ms(5);
    ck_assert_int_eq(chan_ctx_cancel(root), 0);
    for (int i = 0; i < T; i++)
        join(th[i]);
    ck_assert_int_eq(chan_ctx_free(root), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Deep trees ------------------------------------------------------------------------------ */

/* Chains of contexts far deeper than a recursive cancel could walk on the stack it runs on: a
 * thread of 64 KiB here (a recursive walk needs some 50 to 200 bytes a level), and the timer
 * thread's default 8 MiB for a deadline. Cancelling, freeing and a deadline must all work at
 * any depth. Every eighth link is a value context, which a cancel passes through. */
enum { CHAIN_DEPTH = 200000 };

/* (Check's assertions cost a write(2) each: the loops over every link count failures instead.) */
static chan_ctx_t **make_chain(chan_ctx_t *root, int depth)
{
    chan_ctx_t **c = malloc((size_t)depth * sizeof *c);
    ck_assert_ptr_nonnull(c);
    c[0] = root;
    int failed = !root;
    for (int i = 1; i < depth && !failed; i++) {
        c[i] = i % 8 == 7 ? chan_ctx_with_value(c[i - 1], &make_chain, NULL)
                          : chan_ctx_with_cancel(c[i - 1]);
        failed = !c[i];
    }
    ck_assert(!failed);
    return c;
}

/* Frees c[from], c[from + step], ... up to and including c[to]. */
static void free_chain(chan_ctx_t **c, int from, int to, int step)
{
    int failed = 0;
    for (int i = from; i != to + step; i += step)
        failed += chan_ctx_free(c[i]) != 0;
    ck_assert_int_eq(failed, 0);
}

/* Cancelled (or not) all the way down; checks a sample and the leaf. */
static void assert_chain(chan_ctx_t **c, int depth, int err)
{
    for (int i = 0; i < depth; i += i < 100 ? 1 : 997) {
        ck_assert_int_eq(chan_ctx_err(c[i]), err);
        ck_assert_int_eq(is_done(c[i]), err != 0);
    }
    ck_assert_int_eq(chan_ctx_err(c[depth - 1]), err);
    ck_assert_int_eq(is_done(c[depth - 1]), err != 0);
}

/* Runs fn on a thread with a 64 KiB stack. */
static void on_small_stack(void *(*fn)(void *), void *arg)
{
    pthread_attr_t a;
    pthread_t t;
    ck_assert_int_eq(pthread_attr_init(&a), 0);
    ck_assert_int_eq(pthread_attr_setstacksize(&a, 64 * 1024), 0);
    ck_assert_int_eq(pthread_create(&t, &a, fn, arg), 0);
    pthread_attr_destroy(&a);
    join(t);
}

static void *deep_cancel(void *unused)
{
    (void)unused;
    int depth = CHAIN_DEPTH;
    chan_ctx_t **c = make_chain(chan_ctx_with_cancel(chan_ctx_background()), depth);
    assert_chain(c, depth, 0);
    ck_assert_int_eq(chan_ctx_cancel(c[0]), 0);
    assert_chain(c, depth, -ECANCELED);
    free_chain(c, depth - 1, 0, -1); /* leaf first */
    free(c);
    return NULL;
}

START_TEST(ctx_deep_chain_cancel)
{
    on_small_stack(deep_cancel, NULL);
    assert_no_leaks();
}
END_TEST

/* Freeing the root cancels the chain; then the rest root first, so that the last free (the leaf)
 * releases every link above it in one go. */
static void *deep_free(void *unused)
{
    (void)unused;
    int depth = CHAIN_DEPTH;
    chan_ctx_t **c = make_chain(chan_ctx_with_cancel(chan_ctx_background()), depth);
    ck_assert_int_eq(chan_ctx_free(c[0]), 0);
    assert_chain(c + 1, depth - 1, -ECANCELED);
    free_chain(c, 1, depth - 1, 1);
    free(c);
    return NULL;
}

START_TEST(ctx_deep_chain_free)
{
    on_small_stack(deep_free, NULL);
    assert_no_leaks();
}
END_TEST

/* A deadline at the root of a chain: the timer thread cancels all of it. The thread is held
 * while the chain is built, so that the whole chain is there when the deadline is seen. The
 * deadline leaves the root's own making time enough: a root whose deadline passes while it is
 * being made is born cancelled (once under TSan on a loaded machine with 1 ms). */
START_TEST(ctx_deep_chain_deadline)
{
    int depth = CHAIN_DEPTH; /* past the 8 MiB of the timer thread's stack */
    hold_timer_thread();
    chan_ctx_t **c = make_chain(chan_ctx_with_timeout(chan_ctx_background(), 100 * MS), depth);
    assert_chain(c, depth, 0);
    release_timer_thread();
    await_cancelled(c[depth - 1], -ETIMEDOUT);
    assert_chain(c, depth, -ETIMEDOUT);
    free_chain(c, depth - 1, 0, -1);
    free(c);
    assert_no_leaks();
}
END_TEST

/* ---- Concurrent cancels ---------------------------------------------------------------------- */

/* Several threads cancel the same context, or contexts inside the same subtree, at once. Each
 * cancel returns only after every descendant of the context it cancelled has been cancelled,
 * also when another thread got to that context first and is still walking its subtree (Go's
 * cancel holds the context's lock across its children for this). One thread starts the cancel
 * of the root; the others start theirs as soon as they see the root cancelled, while its
 * subtree is being walked. */
enum { CC_KIDS = 4, CC_GRAND = 1000, CC_ROOTERS = 2, CC_THREADS = CC_ROOTERS + CC_KIDS };

struct cc_tree {
    chan_ctx_t *root, *kids[CC_KIDS], *grand[CC_KIDS][CC_GRAND];
    pthread_barrier_t go;
    _Atomic int early; /* cancels that returned before their subtree was cancelled */
};

struct cc_arg {
    struct cc_tree *t;
    int who; /* < CC_ROOTERS: cancels the root; else kids[who - CC_ROOTERS] */
};

static void *cc_cancel(void *p)
{
    struct cc_arg *a = p;
    struct cc_tree *t = a->t;
    int k = a->who - CC_ROOTERS;
    pthread_barrier_wait(&t->go);
    while (a->who > 0 && !chan_ctx_err(t->root))
        sched_yield(); /* 2 cores, 6 threads: let the first canceller run */
    chan_ctx_cancel(k < 0 ? t->root : t->kids[k]);
    for (int i = k < 0 ? 0 : k; i < (k < 0 ? CC_KIDS : k + 1); i++) {
        int missed = !is_done(t->kids[i]);
        for (int j = 0; j < CC_GRAND; j++)
            missed += !is_done(t->grand[i][j]);
        if (missed)
            atomic_fetch_add(&t->early, 1);
    }
    return NULL;
}

START_TEST(ctx_concurrent_cancel_waits_for_subtree)
{
    int rounds = under_sanitizer() ? 40 : 200;
    static struct cc_tree t;
    for (int r = 0; r < rounds; r++) {
        t.root = chan_ctx_with_cancel(chan_ctx_background());
        for (int i = 0; i < CC_KIDS; i++) {
            t.kids[i] = chan_ctx_with_cancel(t.root);
            for (int j = 0; j < CC_GRAND; j++)
                t.grand[i][j] = j % 2 ? chan_ctx_with_cancel(t.kids[i])
                                      : chan_ctx_with_timeout(t.kids[i], 3600 * 1000 * MS);
        }
        atomic_store(&t.early, 0);
        ck_assert_int_eq(pthread_barrier_init(&t.go, NULL, CC_THREADS), 0);
        pthread_t th[CC_THREADS];
        struct cc_arg a[CC_THREADS];
        for (int i = 0; i < CC_THREADS; i++) {
            a[i] = (struct cc_arg){&t, i};
            th[i] = spawn(cc_cancel, &a[i]);
        }
        for (int i = 0; i < CC_THREADS; i++)
            join(th[i]);
        pthread_barrier_destroy(&t.go);
        ck_assert_msg(atomic_load(&t.early) == 0,
                      "round %d: %d cancel(s) returned before their subtree was cancelled", r,
                      atomic_load(&t.early));
        int failed = 0;
        for (int i = 0; i < CC_KIDS; i++) {
            for (int j = 0; j < CC_GRAND; j++)
                failed += chan_ctx_free(t.grand[i][j]) != 0;
            failed += chan_ctx_free(t.kids[i]) != 0;
        }
        ck_assert_int_eq(failed + chan_ctx_free(t.root), 0);
    }
    assert_no_leaks();
}
END_TEST

/* The same, made deterministic: the first canceller is held in the middle of its walk, by the
 * tests' hook that a cancel calls after each claim (seam.h), at a grandchild's, with the root
 * and the child cancelled and other grandchildren not yet. A second cancel of the root, and a
 * cancel of the child, must not return then. A thread blocked on that grandchild's done channel
 * through a scheduler hook whose unpark waits for the same gate is woken only once the walk is
 * over: the unparks of a cancel wait for its walk (an unpark may cancel the context itself). */
enum { HELD_GRAND = 100 };

struct held_cancel {
    chan_ctx_t *ctx;      /* to cancel */
    chan_ctx_t **subtree; /* its descendants, to check on return */
    int n;
    _Atomic int returned, missed;
};

static void *held_cancel_main(void *p)
{
    struct held_cancel *h = p;
    chan_ctx_cancel(h->ctx);
    int missed = 0;
    for (int i = 0; i < h->n; i++)
        missed += !is_done(h->subtree[i]);
    atomic_store(&h->missed, missed);
    atomic_store(&h->returned, 1);
    return NULL;
}

START_TEST(ctx_cancel_waits_for_held_walk)
{
    chan_ctx_t *root = chan_ctx_with_cancel(chan_ctx_background());
    chan_ctx_t *sub[1 + HELD_GRAND]; /* the child, then its children */
    sub[0] = chan_ctx_with_cancel(root);
    for (int j = 1; j <= HELD_GRAND; j++)
        sub[j] = chan_ctx_with_cancel(sub[0]);
    /* The grandchild made last: the walk comes to it first (a list is newest first). */
    chan_t *held = chan_ctx_done(sub[HELD_GRAND]);
    pthread_t w = spawn(claim_receiver, held);
    ck_assert(blocked_receivers_at_least(held, 1));
    claim_hold_at(sub[HELD_GRAND]);

    struct held_cancel first = {.ctx = root, .subtree = sub, .n = 1 + HELD_GRAND};
    pthread_t a = spawn(held_cancel_main, &first);
    claim_wait_held();
    /* The first cancel is held right after that grandchild's claim; the others wait their turn
     * (if the walk's order changed, pick another grandchild to hold). */
    ck_assert_int_eq(chan_ctx_err(sub[0]), -ECANCELED);
    int left = 0;
    for (int j = 1; j <= HELD_GRAND; j++)
        left += chan_ctx_err(sub[j]) == 0;
    ck_assert_int_eq(left, HELD_GRAND - 1);
    struct held_cancel again = {.ctx = root, .subtree = sub, .n = 1 + HELD_GRAND};
    struct held_cancel child = {.ctx = sub[0], .subtree = sub + 1, .n = HELD_GRAND};
    pthread_t b = spawn(held_cancel_main, &again);
    pthread_t c = spawn(held_cancel_main, &child);
    sleep_ms(50);
    ck_assert_msg(!atomic_load(&again.returned) && !atomic_load(&child.returned),
                  "returned while another cancel was still walking: cancel of the root %s "
                  "(%d contexts left), of the child %s (%d left)",
                  atomic_load(&again.returned) ? "yes" : "no", atomic_load(&again.missed),
                  atomic_load(&child.returned) ? "yes" : "no", atomic_load(&child.missed));
    claim_open();
    join(a);
    join(b);
    join(c);
    ck_assert_int_eq((int)(intptr_t)join(w), -EPIPE);
    ctx_claimed_hook = NULL;
    ck_assert_int_eq(first.missed + again.missed + child.missed, 0);
    for (int j = HELD_GRAND; j >= 0; j--)
        ck_assert_int_eq(chan_ctx_free(sub[j]), 0);
    ck_assert_int_eq(chan_ctx_free(root), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Deadlines already passed ---------------------------------------------------------------- */

/* A context whose deadline has passed when it is made is born cancelled with -ETIMEDOUT (Go's
 * WithDeadline), also when that deadline is its parent's and the timer thread has not yet got
 * to the parent (it is held busy here). */
START_TEST(ctx_deadline_passed_at_birth)
{
    hold_timer_thread();
    chan_ctx_t *own = chan_ctx_with_deadline(chan_ctx_background(), chan_now() - 1);
    assert_cancelled(own, -ETIMEDOUT);
    chan_ctx_t *p = chan_ctx_with_timeout(chan_ctx_background(), 1 * MS);
    int64_t pd;
    ck_assert_int_eq(chan_ctx_deadline(p, &pd), 0);
    while (chan_now() <= pd)
        sleep_ms(1);
    ck_assert_int_eq(chan_ctx_err(p), 0); /* the timer thread is busy */
    chan_ctx_t *v = chan_ctx_with_value(p, &pd, NULL);
    chan_ctx_t *ks[] = {chan_ctx_with_timeout(v, 0), chan_ctx_with_timeout(v, 3600 * 1000 * MS),
                        chan_ctx_with_deadline(v, pd + 1), chan_ctx_with_deadline(v, CHAN_FOREVER),
                        chan_ctx_with_deadline(v, pd - 1)};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        ck_assert_ptr_nonnull(ks[i]);
        assert_cancelled(ks[i], -ETIMEDOUT);
        int64_t d;
        ck_assert_int_eq(chan_ctx_deadline(ks[i], &d), 0);
        ck_assert_int_le(d, pd); /* the parent's, or the child's own earlier one */
    }
    ck_assert_int_eq(chan_ctx_err(p), 0); /* a child's time-out is not its parent's */
    release_timer_thread();
    await_cancelled(p, -ETIMEDOUT);
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        ck_assert_int_eq(chan_ctx_free(ks[i]), 0);
    ck_assert_int_eq(chan_ctx_free(v), 0);
    ck_assert_int_eq(chan_ctx_free(p), 0);
    ck_assert_int_eq(chan_ctx_free(own), 0);
    assert_no_leaks();
}
END_TEST

extern void *(*chan_malloc_hook)(size_t size);
static _Atomic int allocs_left;
static void *fail_after(size_t size)
{
    if (atomic_fetch_sub(&allocs_left, 1) <= 0)
        return NULL;
    return malloc(size);
}

/* Every allocation failure is reported as ENOMEM and leaks nothing. */
START_TEST(ctx_enomem)
{
    chan_ctx_t *root = chan_ctx_with_cancel(chan_ctx_background());
    for (int n = 0; n < 4; n++) {
        atomic_store(&allocs_left, n);
        chan_malloc_hook = fail_after;
        chan_ctx_t *c = chan_ctx_with_timeout(root, 3600 * 1000 * MS);
        chan_ctx_t *w = chan_ctx_with_cancel(root);
        chan_malloc_hook = NULL;
        if (!c)
            ck_assert_int_eq(errno, ENOMEM);
        chan_ctx_free(c);
        chan_ctx_free(w);
    }
    chan_malloc_hook = fail_after;
    atomic_store(&allocs_left, 0);
    errno = 0;
    ck_assert_ptr_null(chan_ctx_with_value(root, &root, NULL));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_ptr_null(chan_ctx_without_cancel(root));
    chan_malloc_hook = NULL;
    assert_live(root);
    ck_assert_int_eq(chan_ctx_free(root), 0);
    assert_no_leaks();
}
END_TEST

/* A select on a thread whose scheduler hook is the gate (testgate.h): once woken, it stays
 * parked until the test opens the gate. */
struct gated_select {
    chan_ctx_t *ctx;
    chan_t *x;
    int r;
};

static void *gated_select_main(void *p)
{
    struct gated_select *g = p;
    chan_sched_set(&gated_sched);
    struct chan_case cs[2] = {{.chan = g->x, .dir = CHAN_RECV},
                              {.chan = chan_ctx_done(g->ctx), .dir = CHAN_RECV}};
    g->r = chan_select(cs, 2);
    chan_sched_set(NULL);
    return NULL;
}

/* A context freed while a select on its done channel has been woken through another channel
 * but has not run yet (its sudog is still queued on done): chan_ctx_free must return without
 * waiting for that select, which may need the very thread chan_ctx_free runs on. */
START_TEST(ctx_free_while_select_unlinking)
{
    struct gated_select g = {
        .ctx = chan_ctx_with_cancel(chan_ctx_background()), .x = chan_make(0, 0), .r = -1};
    chan_t *done = chan_ctx_done(g.ctx);
    pthread_t th = spawn(gated_select_main, &g);
    ck_assert(blocked_receivers_at_least(done, 1));
    ck_assert(blocked_receivers_at_least(g.x, 1));
    ck_assert_int_eq(chan_send(g.x, NULL), 0); /* wakes the select through x; it stays parked */
    ck_assert_int_eq(hchan_waiting(done, CHAN_RECV), 1);
    ck_assert_int_eq(chan_ctx_free(g.ctx), 0); /* returns (the test's time-out says otherwise) */
    open_gate();
    join(th);
    ck_assert_int_eq(g.r, 0);
    ck_assert_int_eq(chan_free(g.x), 0);
    sleep_ms(50); /* the timer thread frees done meanwhile */
    assert_no_leaks();
}
END_TEST

/* ---- Ports: Go's context/context_test.go ---------------------------------------------------- */

/* Go's TestWithCancel (through a context of another kind, its otherContext), TestChildFinishes-
 * First, TestParentFinishesChild and TestCancelRemoves: 10,000 children of one parent with a
 * deadline, made through a value context half of the time, half of them with a deadline of
 * their own an hour away. A child cancelled before its parent keeps its -ECANCELED when the
 * parent then times out; one freed before it has left the parent's list (the parent's time-out
 * touches no freed child: ASan); every other child reports the parent's -ETIMEDOUT. */
#define KIDS 10000

START_TEST(ctx_children_cancelled_first)
{
    static int key;
    static chan_ctx_t *kid[KIDS];
    int64_t deadline = chan_now() + scaled(200, 1000) * MS;
    chan_ctx_t *p = chan_ctx_with_deadline(chan_ctx_background(), deadline);
    chan_ctx_t *o = chan_ctx_with_value(p, &key, NULL);
    int n = scaled(KIDS, KIDS / 4), failed = 0;
    for (int i = 0; i < n; i++) {
        chan_ctx_t *parent = i % 2 ? o : p;
        kid[i] = i % 4 < 2 ? chan_ctx_with_cancel(parent)
                           : chan_ctx_with_timeout(parent, 3600 * 1000 * MS);
        failed += !kid[i];
    }
    ck_assert_int_eq(failed, 0);
    for (int i = 0; i < n; i++) {
        if (i % 3 == 0)
            failed += chan_ctx_cancel(kid[i]) != 0 || chan_ctx_err(kid[i]) != -ECANCELED;
        else if (i % 3 == 1) /* freed: cancelled, detached, gone */
            failed += chan_ctx_free(kid[i]) != 0;
    }
    ck_assert_int_eq(failed, 0);
    bool before = chan_now() < deadline; /* else the parent's time-out may have come first */
    await_cancelled(p, -ETIMEDOUT);
    for (int i = 0; i < n; i++) {
        if (i % 3 == 1)
            continue;
        /* The timer thread cancels the subtree after p's done: wait for each (as Go's). */
        failed += chan_recv_until(chan_ctx_done(kid[i]), NULL, chan_now() + 10000 * MS) != -EPIPE;
        int e = chan_ctx_err(kid[i]);
        failed += i % 3 == 0 ? (before ? e != -ECANCELED : e == 0) : e != -ETIMEDOUT;
        failed += chan_ctx_free(kid[i]) != 0;
    }
    ck_assert_int_eq(failed, 0);
    assert_cancelled(o, -ETIMEDOUT);
    ck_assert_int_eq(chan_ctx_free(o), 0);
    ck_assert_int_eq(chan_ctx_free(p), 0);
    assert_no_leaks();
}
END_TEST

/* A parent cancelled while 4 threads make children of it (of every kind, some through a value
 * context): each child made is cancelled once the cancel has returned, with the parent's error
 * (born cancelled, or cancelled by it: none is left registered and uncancelled), and a child
 * made after it is born cancelled. */
struct maker {
    chan_ctx_t *parent;
    chan_ctx_t **made;
    _Atomic int *stop;
    int n;
};

static void *maker_main(void *p)
{
    struct maker *m = p;
    static int key;
    for (int i = 0; !atomic_load(m->stop) && i < 2000; i++) {
        chan_ctx_t *v = NULL, *k;
        switch (i % 4) {
        case 0: k = chan_ctx_with_cancel(m->parent); break;
        case 1: k = chan_ctx_with_timeout(m->parent, 3600 * 1000 * MS); break;
        case 2:
            ck_assert_ptr_nonnull(v = chan_ctx_with_value(m->parent, &key, NULL));
            k = chan_ctx_with_cancel(v);
            break;
        default: k = chan_ctx_with_value(m->parent, &key, NULL); break;
        }
        ck_assert_ptr_nonnull(k);
        if (v)
            m->made[m->n++] = v;
        m->made[m->n++] = k;
    }
    return NULL;
}

START_TEST(ctx_cancel_while_children_made)
{
    enum { T = 4 };
    for (int round = 0; round < scaled(20, 5); round++) {
        chan_ctx_t *p = chan_ctx_with_cancel(chan_ctx_background());
        _Atomic int stop = 0;
        struct maker m[T];
        pthread_t th[T];
        for (int i = 0; i < T; i++) {
            m[i] = (struct maker){p, malloc(3000 * sizeof(chan_ctx_t *)), &stop, 0};
            th[i] = spawn(maker_main, &m[i]);
        }
        sleep_ns((round % 5) * MS / 2);
        ck_assert_int_eq(chan_ctx_cancel(p), 0);
        int failed = 0;
        atomic_store(&stop, 1);
        for (int i = 0; i < T; i++) {
            join(th[i]);
            for (int j = 0; j < m[i].n; j++)
                failed += chan_ctx_err(m[i].made[j]) != -ECANCELED || !is_done(m[i].made[j]);
        }
        ck_assert_int_eq(failed, 0);
        chan_ctx_t *late = chan_ctx_with_timeout(p, 3600 * 1000 * MS);
        assert_cancelled(late, -ECANCELED);
        ck_assert_int_eq(chan_ctx_free(late), 0);
        for (int i = 0; i < T; i++) {
            for (int j = m[i].n - 1; j >= 0; j--) /* children first */
                failed += chan_ctx_free(m[i].made[j]) != 0;
            free(m[i].made);
        }
        ck_assert_int_eq(failed, 0);
        ck_assert_int_eq(chan_ctx_free(p), 0);
    }
}
END_TEST

/* Go's TestLayersCancel and TestLayersTimeout: 30 layers of value, cancel and time-out
 * contexts in a random order (seeded), the leaf at the bottom. Every value is seen from the
 * leaf, before and after; cancelling one cancel layer cancels it and every layer below it with
 * -ECANCELED and none above; with short time-outs the leaf times out with -ETIMEDOUT. */
#define LAYERS 30

static void layers(unsigned seed, bool timeout)
{
    static int keys[LAYERS];
    chan_ctx_t *l[LAYERS];
    int kind[LAYERS], ncancel = 0, ntimeout = 0;
    chan_ctx_t *ctx = chan_ctx_background();
    for (int i = 0; i < LAYERS; i++) {
        kind[i] = rand_r(&seed) % 3;
        if (kind[i] == 0)
            l[i] = chan_ctx_with_value(ctx, &keys[i], &keys[i]);
        else if (kind[i] == 1)
            l[i] = chan_ctx_with_cancel(ctx);
        else
            l[i] = chan_ctx_with_timeout(ctx, timeout ? (1 + i % 5) * MS : 3600 * 1000 * MS);
        ck_assert_ptr_nonnull(l[i]);
        ncancel += kind[i] != 0;
        ntimeout += kind[i] == 2;
        ctx = l[i];
    }
    for (int i = 0; i < LAYERS; i++) {
        void *v = NULL;
        ck_assert_int_eq(chan_ctx_value(ctx, &keys[i], &v), kind[i] == 0 ? 0 : -ENOENT);
        ck_assert_ptr_eq(v, kind[i] == 0 ? &keys[i] : NULL);
    }
    if (timeout && ntimeout) {
        await_cancelled(ctx, -ETIMEDOUT);
    } else if (ncancel) {
        if (!timeout)
            for (int i = 0; i < LAYERS; i++)
                ck_assert_int_eq(chan_ctx_err(l[i]), 0);
        int pick = rand_r(&seed) % ncancel, at = -1;
        for (int i = 0; i < LAYERS && at < 0; i++)
            if (kind[i] != 0 && pick-- == 0)
                at = i;
        ck_assert_int_eq(chan_ctx_cancel(l[at]), 0);
        for (int i = 0; i < LAYERS; i++) {
            if (i < at && chan_ctx_done(l[i]))
                assert_live(l[i]);
            else if (i >= at)
                assert_cancelled(l[i], -ECANCELED);
        }
    } else {
        ck_assert_ptr_null(chan_ctx_done(ctx)); /* values only: never done */
    }
    for (int i = 0; i < LAYERS; i++) {
        void *v = NULL;
        ck_assert_int_eq(chan_ctx_value(ctx, &keys[i], &v), kind[i] == 0 ? 0 : -ENOENT);
    }
    for (int i = 0; i < LAYERS; i++)
        ck_assert_int_eq(chan_ctx_free(l[i]), 0); /* parents first: children keep them */
}

/* ---- Err and done agree --------------------------------------------------------------------- */

/* chan_ctx_err non-zero means the done channel is closed already (Go's Err takes the context's
 * lock, which its cancel holds from setting the error to closing done). A thread spins on err
 * while another cancels; the moment it sees the error, a receive on done must report closed. The
 * window (between the error being set and the close) is short: many rounds, both threads running
 * at once. */
enum { ERR_RACE_ROUNDS = 20000 };

struct err_race {
    chan_ctx_t *_Atomic ctx;
    atomic_int round, seen, stale;
};

static void *err_race_watcher(void *p)
{
    struct err_race *r = p;
    for (int i = 1; i <= ERR_RACE_ROUNDS; i++) {
        while (atomic_load(&r->round) != i) {
        }
        chan_ctx_t *c = atomic_load(&r->ctx);
        atomic_store(&r->seen, i); /* ready: let the canceller go */
        while (chan_ctx_err(c) == 0) {
        }
        if (chan_tryrecv(chan_ctx_done(c), NULL) != -EPIPE)
            atomic_fetch_add(&r->stale, 1);
        atomic_store(&r->seen, -i); /* done with this context */
    }
    return NULL;
}

START_TEST(ctx_err_means_done_closed)
{
    struct err_race r = {NULL, 0, 0, 0};
    pthread_t w = spawn(err_race_watcher, &r);
    for (int i = 1; i <= ERR_RACE_ROUNDS; i++) {
        chan_ctx_t *c = chan_ctx_with_cancel(chan_ctx_background());
        ck_assert_ptr_nonnull(c);
        atomic_store(&r.ctx, c);
        atomic_store(&r.round, i);
        while (atomic_load(&r.seen) != i) {
        }
        ck_assert_int_eq(chan_ctx_cancel(c), 0);
        while (atomic_load(&r.seen) != -i) {
        }
        ck_assert_int_eq(chan_ctx_free(c), 0);
    }
    join(w);
    ck_assert_msg(atomic_load(&r.stale) == 0,
                  "%d of %d times chan_ctx_err was non-zero while done was still open",
                  atomic_load(&r.stale), ERR_RACE_ROUNDS);
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_layers)
{
    for (unsigned seed = 1; seed <= 50; seed++) {
        layers(seed, false);
        layers(seed, true);
    }
    assert_no_leaks();
}
END_TEST

/* Go's TestValues (a key shadowed by a nil value below it is found, as nil: 0 with *value
 * NULL, not -ENOENT), TestCanceledTimeout (a time-out longer than its parent's, reached
 * through a context of another kind, is the parent's; cancelled before it, its error is
 * -ECANCELED) and TestWithoutCancel (below a value context: no deadline, no done channel, no
 * error, the values). */
START_TEST(ctx_go_values_timeouts_without_cancel)
{
    static int k1, k2;
    int one = 1, two = 2;
    chan_ctx_t *c1 = chan_ctx_with_value(chan_ctx_background(), &k1, &one);
    chan_ctx_t *c2 = chan_ctx_with_value(c1, &k2, &two);
    chan_ctx_t *c3 = chan_ctx_with_value(c2, &k1, NULL);
    void *v = &one;
    ck_assert_int_eq(chan_ctx_value(c3, &k1, &v), 0);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(chan_ctx_value(c3, &k2, &v), 0);
    ck_assert_ptr_eq(v, &two);
    ck_assert_int_eq(chan_ctx_value(c2, &k1, &v), 0);
    ck_assert_ptr_eq(v, &one);

    chan_ctx_t *p = chan_ctx_with_timeout(chan_ctx_background(), 3600 * 1000 * MS);
    int64_t pd, cd;
    ck_assert_int_eq(chan_ctx_deadline(p, &pd), 0);
    chan_ctx_t *o = chan_ctx_with_value(p, &k1, &one); /* Go's otherContext */
    chan_ctx_t *c = chan_ctx_with_timeout(o, 2 * 3600 * 1000 * MS);
    ck_assert_int_eq(chan_ctx_deadline(c, &cd), 0);
    ck_assert_int_eq(cd, pd);
    ck_assert_int_eq(chan_ctx_cancel(c), 0);
    ck_assert_int_eq(chan_tryrecv(chan_ctx_done(c), NULL), -EPIPE);
    ck_assert_int_eq(chan_ctx_err(c), -ECANCELED);
    ck_assert_int_eq(chan_ctx_err(p), 0);

    chan_ctx_t *w = chan_ctx_without_cancel(o);
    ck_assert_int_eq(chan_ctx_deadline(w, &cd), -ENOENT);
    ck_assert_int_eq(cd, CHAN_FOREVER);
    ck_assert_ptr_null(chan_ctx_done(w));
    ck_assert_int_eq(chan_ctx_cancel(p), 0);
    ck_assert_int_eq(chan_ctx_err(w), 0);
    ck_assert_int_eq(chan_ctx_value(w, &k1, &v), 0);
    ck_assert_ptr_eq(v, &one);
    chan_ctx_t *all[] = {c1, p, c2, o, c3, c, w};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ck_assert_int_eq(chan_ctx_free(all[i]), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Causes (Go's Cause, WithCancelCause, WithDeadlineCause, WithTimeoutCause) ------------- */

/* Causes of the tests' own choosing, as Go's tests make errors of their own. */
enum {
    PARENT_CAUSE = -EIO,
    CHILD_CAUSE = -ENOENT,
    TOO_SLOW = -EAGAIN,
    FINISHED_EARLY = -ESHUTDOWN
};
#define FOREVER_TIMEOUT (1000000 * CHAN_SECOND) /* Go's 1e6 * time.Second */

/* Go's TestCause, row for row. Each row makes its contexts, returns the one to look at in *ctx,
 * and all it made in made[] (to be freed after the look, in any order). */
struct cause_row {
    const char *name;
    int err, cause;
};

static void cause_row_make(int row, chan_ctx_t **ctx, chan_ctx_t **made, int *n)
{
    chan_ctx_t *bg = chan_ctx_background(), *p, *c;
    *n = 0;
#define MADE(x) (made[(*n)++] = (x))
    switch (row) {
    case 0: /* Background */ *ctx = bg; break;
    case 1: /* WithCancel */
        *ctx = MADE(chan_ctx_with_cancel(bg));
        chan_ctx_cancel(*ctx);
        break;
    case 2: /* WithCancelCause */
        *ctx = MADE(chan_ctx_with_cancel(bg));
        chan_ctx_cancel_cause(*ctx, PARENT_CAUSE);
        break;
    case 3: /* WithCancelCause nil */
        *ctx = MADE(chan_ctx_with_cancel(bg));
        chan_ctx_cancel_cause(*ctx, 0);
        break;
    case 4: /* parent cause before child */
        p = MADE(chan_ctx_with_cancel(bg));
        c = *ctx = MADE(chan_ctx_with_cancel(p));
        chan_ctx_cancel_cause(p, PARENT_CAUSE);
        chan_ctx_cancel_cause(c, CHILD_CAUSE);
        break;
    case 5: /* parent cause after child */
        p = MADE(chan_ctx_with_cancel(bg));
        c = *ctx = MADE(chan_ctx_with_cancel(p));
        chan_ctx_cancel_cause(c, CHILD_CAUSE);
        chan_ctx_cancel_cause(p, PARENT_CAUSE);
        break;
    case 6: /* parent cause before nil */
        p = MADE(chan_ctx_with_cancel(bg));
        c = *ctx = MADE(chan_ctx_with_cancel(p));
        chan_ctx_cancel_cause(p, PARENT_CAUSE);
        chan_ctx_cancel(c);
        break;
    case 7: /* parent cause after nil */
        p = MADE(chan_ctx_with_cancel(bg));
        c = *ctx = MADE(chan_ctx_with_cancel(p));
        chan_ctx_cancel(c);
        chan_ctx_cancel_cause(p, PARENT_CAUSE);
        break;
    case 8: /* child cause after nil */
        p = MADE(chan_ctx_with_cancel(bg));
        c = *ctx = MADE(chan_ctx_with_cancel(p));
        chan_ctx_cancel(p);
        chan_ctx_cancel_cause(c, CHILD_CAUSE);
        break;
    case 9: /* child cause before nil */
        p = MADE(chan_ctx_with_cancel(bg));
        c = *ctx = MADE(chan_ctx_with_cancel(p));
        chan_ctx_cancel_cause(c, CHILD_CAUSE);
        chan_ctx_cancel(p);
        break;
    case 10: /* WithTimeout */
        *ctx = MADE(chan_ctx_with_timeout(bg, 0));
        chan_ctx_cancel(*ctx);
        break;
    case 11: /* WithTimeout canceled */
        *ctx = MADE(chan_ctx_with_timeout(bg, FOREVER_TIMEOUT));
        chan_ctx_cancel(*ctx);
        break;
    case 12: /* WithTimeoutCause */
        *ctx = MADE(chan_ctx_with_timeout_cause(bg, 0, TOO_SLOW));
        chan_ctx_cancel(*ctx);
        break;
    case 13: /* WithTimeoutCause canceled */
        *ctx = MADE(chan_ctx_with_timeout_cause(bg, FOREVER_TIMEOUT, TOO_SLOW));
        chan_ctx_cancel(*ctx);
        break;
    case 14: /* WithTimeoutCause stacked */
        p = MADE(chan_ctx_with_cancel(bg));
        *ctx = MADE(chan_ctx_with_timeout_cause(p, 0, TOO_SLOW));
        chan_ctx_cancel_cause(p, FINISHED_EARLY);
        break;
    case 15: /* WithTimeoutCause stacked canceled */
        p = MADE(chan_ctx_with_cancel(bg));
        *ctx = MADE(chan_ctx_with_timeout_cause(p, FOREVER_TIMEOUT, TOO_SLOW));
        chan_ctx_cancel_cause(p, FINISHED_EARLY);
        break;
    case 16: /* WithoutCancel */ *ctx = MADE(chan_ctx_without_cancel(bg)); break;
    case 17: /* WithoutCancel canceled */
        p = MADE(chan_ctx_with_cancel(bg));
        *ctx = MADE(chan_ctx_without_cancel(p));
        chan_ctx_cancel_cause(p, FINISHED_EARLY);
        break;
    case 18: /* WithoutCancel timeout */
        p = MADE(chan_ctx_with_timeout_cause(bg, 0, TOO_SLOW));
        *ctx = MADE(chan_ctx_without_cancel(p));
        chan_ctx_cancel(p);
        break;
    case 19: /* (not Go's) a value below a cancelled context: its canceller's cause */
        p = MADE(chan_ctx_with_cancel(bg));
        *ctx = MADE(chan_ctx_with_value(p, &made, NULL));
        chan_ctx_cancel_cause(p, PARENT_CAUSE);
        break;
    case 20: /* (not Go's) a child born of a parent cancelled with a cause */
        p = MADE(chan_ctx_with_cancel(bg));
        chan_ctx_cancel_cause(p, PARENT_CAUSE);
        *ctx = MADE(chan_ctx_with_timeout_cause(p, 0, TOO_SLOW));
        break;
    case 21: /* (not Go's) a free cancels without a cause: the child sees the error */
        p = chan_ctx_with_cancel(bg);
        *ctx = MADE(chan_ctx_with_cancel(p));
        chan_ctx_free(p);
        chan_ctx_cancel_cause(*ctx, CHILD_CAUSE);
        break;
    }
#undef MADE
}

static const struct cause_row cause_rows[] = {
    {"Background", 0, 0},
    {"WithCancel", -ECANCELED, -ECANCELED},
    {"WithCancelCause", -ECANCELED, PARENT_CAUSE},
    {"WithCancelCause nil", -ECANCELED, -ECANCELED},
    {"parent cause before child", -ECANCELED, PARENT_CAUSE},
    {"parent cause after child", -ECANCELED, CHILD_CAUSE},
    {"parent cause before nil", -ECANCELED, PARENT_CAUSE},
    {"parent cause after nil", -ECANCELED, -ECANCELED},
    {"child cause after nil", -ECANCELED, -ECANCELED},
    {"child cause before nil", -ECANCELED, CHILD_CAUSE},
    {"WithTimeout", -ETIMEDOUT, -ETIMEDOUT},
    {"WithTimeout canceled", -ECANCELED, -ECANCELED},
    {"WithTimeoutCause", -ETIMEDOUT, TOO_SLOW},
    {"WithTimeoutCause canceled", -ECANCELED, -ECANCELED},
    {"WithTimeoutCause stacked", -ETIMEDOUT, TOO_SLOW},
    {"WithTimeoutCause stacked canceled", -ECANCELED, FINISHED_EARLY},
    {"WithoutCancel", 0, 0},
    {"WithoutCancel canceled", 0, 0},
    {"WithoutCancel timeout", 0, 0},
    {"value below cancelled", -ECANCELED, PARENT_CAUSE},
    {"born of a cancelled parent", -ECANCELED, PARENT_CAUSE},
    {"parent freed", -ECANCELED, -ECANCELED},
};

START_TEST(ctx_go_cause)
{
    for (int row = 0; row < (int)(sizeof cause_rows / sizeof cause_rows[0]); row++) {
        chan_ctx_t *ctx = NULL, *made[4];
        int n;
        cause_row_make(row, &ctx, made, &n);
        for (int i = 0; i < n; i++)
            ck_assert_msg(made[i] != NULL, "%s: a context was not made", cause_rows[row].name);
        ck_assert_msg(chan_ctx_err(ctx) == cause_rows[row].err, "%s: err %d, want %d",
                      cause_rows[row].name, chan_ctx_err(ctx), cause_rows[row].err);
        ck_assert_msg(chan_ctx_cause(ctx) == cause_rows[row].cause, "%s: cause %d, want %d",
                      cause_rows[row].name, chan_ctx_cause(ctx), cause_rows[row].cause);
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(chan_ctx_free(made[i]), 0);
    }
    assert_no_leaks();
}
END_TEST

START_TEST(ctx_cause_bad_arguments)
{
    chan_ctx_t *c = chan_ctx_with_cancel(chan_ctx_background());
    ck_assert_int_eq(chan_ctx_cancel_cause(c, EIO), -EINVAL); /* errno not negated: refused */
    assert_live(c);
    ck_assert_int_eq(chan_ctx_cause(c), 0);
    ck_assert_int_eq(chan_ctx_cancel_cause(NULL, -EIO), -EINVAL);
    ck_assert_int_eq(chan_ctx_cancel_cause(chan_ctx_background(), -EIO), -EINVAL);
    chan_ctx_t *v = chan_ctx_with_value(c, &c, NULL);
    ck_assert_int_eq(chan_ctx_cancel_cause(v, -EIO), -EINVAL);
    ck_assert_int_eq(chan_ctx_cause(NULL), -EINVAL);
    ck_assert_int_eq(chan_ctx_cause(chan_ctx_background()), 0);
    errno = 0;
    ck_assert_ptr_null(chan_ctx_with_deadline_cause(c, chan_now(), ETIMEDOUT));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(chan_ctx_with_timeout_cause(c, MS, EIO));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(chan_ctx_with_timeout_cause(NULL, MS, -EIO));
    assert_live(c);
    ck_assert_int_eq(chan_ctx_cancel_cause(c, -EIO), 0);
    ck_assert_int_eq(chan_ctx_cancel_cause(c, -ENOENT), 0); /* only the first counts */
    ck_assert_int_eq(chan_ctx_cause(c), -EIO);
    ck_assert_int_eq(chan_ctx_cause(v), -EIO);
    ck_assert_int_eq(chan_ctx_free(v), 0);
    ck_assert_int_eq(chan_ctx_free(c), 0);
    assert_no_leaks();
}
END_TEST

/* Go's TestCauseRace: chan_ctx_cause polled while another thread cancels with a cause is 0, then
 * the cause, never anything else (the cause is published with the error). Many rounds. */
enum { CAUSE_RACE_ROUNDS = 2000 };

static void *cancel_with_cause(void *p)
{
    ck_assert_int_eq(chan_ctx_cancel_cause(p, PARENT_CAUSE), 0);
    return NULL;
}

START_TEST(ctx_cause_race)
{
    int rounds = under_tsan() ? CAUSE_RACE_ROUNDS / 10 : CAUSE_RACE_ROUNDS;
    for (int i = 0; i < rounds; i++) {
        chan_ctx_t *p = chan_ctx_with_cancel(chan_ctx_background());
        chan_ctx_t *c = chan_ctx_with_value(p, &p, NULL);
        pthread_t t = spawn(cancel_with_cause, p);
        int cause;
        while ((cause = chan_ctx_cause(c)) == 0)
            sched_yield();
        ck_assert_int_eq(cause, PARENT_CAUSE);
        join(t);
        chan_ctx_free(c);
        chan_ctx_free(p);
    }
    assert_no_leaks();
}
END_TEST

/* Go's TestWithCancelCanceledParent and TestWithCancelSimultaneouslyCanceledParent: a child
 * made while its parent is being cancelled with a cause (on another thread) is done at once or
 * soon after, with the parent's error and cause. */
START_TEST(ctx_cause_simultaneously_cancelled_parent)
{
    chan_ctx_t *p = chan_ctx_with_cancel(chan_ctx_background());
    chan_ctx_cancel_cause(p, PARENT_CAUSE);
    chan_ctx_t *c = chan_ctx_with_cancel(p);
    assert_cancelled(c, -ECANCELED);
    ck_assert_int_eq(chan_ctx_cause(c), PARENT_CAUSE);
    chan_ctx_free(c);
    chan_ctx_free(p);
    for (int i = 0; i < 100; i++) {
        p = chan_ctx_with_cancel(chan_ctx_background());
        pthread_t t = spawn(cancel_with_cause, p);
        c = chan_ctx_with_cancel(p);
        await_cancelled(c, -ECANCELED);
        ck_assert_int_eq(chan_ctx_cause(c), PARENT_CAUSE);
        join(t);
        chan_ctx_free(c);
        chan_ctx_free(p);
    }
    assert_no_leaks();
}
END_TEST

/* A deadline with a cause, on the timer thread: its context and its descendants get the cause,
 * a descendant's own later deadline and cause are not the ones that end it, and a descendant
 * with an earlier deadline of its own ends with its own cause. */
START_TEST(ctx_deadline_cause_fires)
{
    chan_ctx_t *p = chan_ctx_with_timeout_cause(chan_ctx_background(), 20 * MS, TOO_SLOW);
    chan_ctx_t *later = chan_ctx_with_timeout_cause(p, FOREVER_TIMEOUT, FINISHED_EARLY);
    chan_ctx_t *plain = chan_ctx_with_cancel(p);
    chan_ctx_t *sooner = chan_ctx_with_timeout_cause(p, 1 * MS, CHILD_CAUSE);
    await_cancelled(sooner, -ETIMEDOUT);
    ck_assert_int_eq(chan_ctx_cause(sooner), CHILD_CAUSE);
    await_cancelled(p, -ETIMEDOUT);
    await_cancelled(later, -ETIMEDOUT);
    await_cancelled(plain, -ETIMEDOUT);
    ck_assert_int_eq(chan_ctx_cause(p), TOO_SLOW);
    ck_assert_int_eq(chan_ctx_cause(later), TOO_SLOW);
    ck_assert_int_eq(chan_ctx_cause(plain), TOO_SLOW);
    /* The parent's deadline passed: a child made now is born with its cause. */
    chan_ctx_t *born = chan_ctx_with_deadline_cause(p, CHAN_FOREVER - 1, FINISHED_EARLY);
    assert_cancelled(born, -ETIMEDOUT);
    ck_assert_int_eq(chan_ctx_cause(born), TOO_SLOW);
    chan_ctx_t *all[] = {p, later, plain, sooner, born};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ck_assert_int_eq(chan_ctx_free(all[i]), 0);
    assert_no_leaks();
}
END_TEST

/* ---- AfterFunc (Go's context.AfterFunc) ---------------------------------------------------- */

/* fn for the tests: closes the channel it is given (elemsize 0), which a test waits on. */
static void close_it(void *arg) { chan_close(arg); }

/* Whether close_it has run: its channel is closed within 10 s (a positive wait), or stays open
 * for 20 ms (a negative check, as Go's shortDuration; it can only miss a wrong call, never
 * fail a right run). */
static void await_called(chan_t *c)
{
    ck_assert_int_eq(chan_recv_until(c, NULL, chan_now() + 10000 * MS), -EPIPE);
}

static void assert_not_called(chan_t *c)
{
    ck_assert_int_eq(chan_recv_until(c, NULL, chan_now() + 20 * MS), -ETIMEDOUT);
}

/* Go's TestAfterFuncCalledAfterCancel. */
START_TEST(ctx_after_func_called_after_cancel)
{
    chan_ctx_t *ctx = chan_ctx_with_cancel(chan_ctx_background());
    chan_t *done = chan_make(0, 0);
    chan_ctx_after_t *a = chan_ctx_after_func(ctx, close_it, done);
    ck_assert_ptr_nonnull(a);
    assert_not_called(done);
    ck_assert_int_eq(chan_ctx_cancel(ctx), 0);
    await_called(done);
    ck_assert_int_eq(chan_ctx_after_stop(a), 0);
    ck_assert_int_eq(chan_ctx_after_free(a), 0);
    ck_assert_int_eq(chan_ctx_free(ctx), 0);
    ck_assert_int_eq(chan_free(done), 0);
    assert_no_leaks();
}
END_TEST

/* Go's TestAfterFuncCalledAfterTimeout and TestAfterFuncCalledImmediately. */
START_TEST(ctx_after_func_called_after_timeout_or_at_once)
{
    chan_ctx_t *ctx = chan_ctx_with_timeout(chan_ctx_background(), 1 * MS);
    chan_t *done = chan_make(0, 0);
    chan_ctx_after_t *a = chan_ctx_after_func(ctx, close_it, done);
    await_called(done);
    ck_assert_int_eq(chan_ctx_after_free(a), 0);
    ck_assert_int_eq(chan_ctx_free(ctx), 0);
    ck_assert_int_eq(chan_free(done), 0);

    ctx = chan_ctx_with_cancel(chan_ctx_background());
    chan_ctx_cancel(ctx);
    done = chan_make(0, 0);
    a = chan_ctx_after_func(ctx, close_it, done);
    ck_assert_ptr_nonnull(a);
    await_called(done);
    ck_assert_int_eq(chan_ctx_after_stop(a), 0);
    ck_assert_int_eq(chan_ctx_after_free(a), 0);
    ck_assert_int_eq(chan_ctx_free(ctx), 0);
    ck_assert_int_eq(chan_free(done), 0);
    assert_no_leaks();
}
END_TEST

/* Go's TestAfterFuncNotCalledAfterStop; and below contexts that are never done, stop stops. */
START_TEST(ctx_after_func_not_called_after_stop)
{
    chan_ctx_t *ctx = chan_ctx_with_cancel(chan_ctx_background());
    chan_t *done = chan_make(0, 0);
    chan_ctx_after_t *a = chan_ctx_after_func(ctx, close_it, done);
    ck_assert_int_eq(chan_ctx_after_stop(a), 1);
    ck_assert_int_eq(chan_ctx_cancel(ctx), 0);
    assert_not_called(done);
    ck_assert_int_eq(chan_ctx_after_stop(a), 0);
    ck_assert_int_eq(chan_ctx_after_free(a), 0);
    ck_assert_int_eq(chan_ctx_free(ctx), 0);

    chan_ctx_t *never = chan_ctx_without_cancel(chan_ctx_background());
    chan_ctx_after_t *b = chan_ctx_after_func(chan_ctx_background(), close_it, done);
    chan_ctx_after_t *c = chan_ctx_after_func(never, close_it, done);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(chan_ctx_after_stop(b), 1);
    ck_assert_int_eq(chan_ctx_after_free(b), 0);
    ck_assert_int_eq(chan_ctx_free(never), 0); /* before its handle: c keeps its memory */
    ck_assert_int_eq(chan_ctx_after_free(c), 0);
    assert_not_called(done);
    ck_assert_int_eq(chan_free(done), 0);

    errno = 0;
    ck_assert_ptr_null(chan_ctx_after_func(NULL, close_it, done));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(chan_ctx_after_func(chan_ctx_background(), NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_ctx_after_stop(NULL), -EINVAL);
    ck_assert_int_eq(chan_ctx_after_free(NULL), 0);
    assert_no_leaks();
}
END_TEST

/* Go's TestAfterFuncCalledAsynchronously: the cancel does not wait for fn. fn blocks here (only a
 * test may: it holds up the timer thread) until the test has returned from the cancel; a cancel
 * that ran fn, or waited for it, would never return. */
static void send_one(void *arg) { chan_send(arg, NULL); }

START_TEST(ctx_after_func_called_asynchronously)
{
    chan_ctx_t *ctx = chan_ctx_with_cancel(chan_ctx_background());
    chan_t *c = chan_make(0, 0);
    chan_ctx_after_t *a = chan_ctx_after_func(ctx, send_one, c);
    ck_assert_int_eq(chan_ctx_cancel(ctx), 0);
    ck_assert_int_eq(chan_recv_until(c, NULL, chan_now() + 10000 * MS), 0);
    ck_assert_int_eq(chan_ctx_after_free(a), 0);
    ck_assert_int_eq(chan_ctx_free(ctx), 0);
    ck_assert_int_eq(chan_free(c), 0);
    assert_no_leaks();
}
END_TEST

/* The first of stop and cancel wins, in a race between two threads, round after round: either
 * stop returns 1 and fn is never called, or it returns 0 and fn is called, once. */
enum { STOP_RACE_ROUNDS = 2000 };

struct stop_race {
    chan_ctx_t *ctx;
    atomic_int go;
};

static void count_call(void *arg)
{
    atomic_int *calls = arg;
    atomic_fetch_add(calls, 1);
}

static void *race_cancel(void *p)
{
    struct stop_race *r = p;
    while (!atomic_load(&r->go)) {
    }
    chan_ctx_cancel(r->ctx);
    return NULL;
}

static int calls_reach(void *p) { return atomic_load((atomic_int *)p) > 0; }

START_TEST(ctx_after_func_stop_races_cancel)
{
    int rounds = under_tsan() ? STOP_RACE_ROUNDS / 10 : STOP_RACE_ROUNDS, stopped = 0;
    for (int i = 0; i < rounds; i++) {
        atomic_int calls = 0;
        struct stop_race r = {chan_ctx_with_cancel(chan_ctx_background()), 0};
        chan_ctx_after_t *a = chan_ctx_after_func(r.ctx, count_call, &calls);
        pthread_t t = spawn(race_cancel, &r);
        atomic_store(&r.go, 1);
        int s = chan_ctx_after_stop(a);
        join(t);
        if (s == 1) {
            stopped++;
            ck_assert_int_eq(chan_ctx_after_stop(a), 0);
        } else {
            ck_assert_int_eq(s, 0);
            ck_assert(eventually(calls_reach, &calls));
        }
        ck_assert_int_eq(chan_ctx_after_free(a), 0); /* after its run (the run's reference) */
        ck_assert_int_eq(chan_ctx_free(r.ctx), 0);
        /* A stopped fn was not called; a started one once (no later call: its handle is gone,
         * and ASan would see one). */
        ck_assert_int_eq(atomic_load(&calls), s == 1 ? 0 : 1);
    }
    (void)stopped; /* both outcomes happen on a multi-core machine; either is right */
    assert_no_leaks();
}
END_TEST

/* A tree: a root, 10 children (every other one a value node), 10 AfterFuncs on each, half of
 * them stopped. Cancelling one child starts its 5; freeing the root starts the other 45; fn
 * sees the cause, which was set before fn started. */
enum { AF_KIDS = 10, AF_PER = 10 };

struct af_count {
    atomic_int calls;
    atomic_int wrong_cause;
    chan_ctx_t *ctx;
    int cause;
};

static void count_and_check_cause(void *arg)
{
    struct af_count *c = arg;
    if (chan_ctx_cause(c->ctx) != c->cause)
        atomic_fetch_add(&c->wrong_cause, 1);
    atomic_fetch_add(&c->calls, 1);
}

struct af_until {
    atomic_int *calls;
    int want;
};

static int calls_are(void *p)
{
    struct af_until *u = p;
    return atomic_load(u->calls) == u->want;
}

START_TEST(ctx_after_func_tree)
{
    static struct af_count counts[AF_KIDS];
    static chan_ctx_after_t *afs[AF_KIDS][AF_PER];
    chan_ctx_t *root = chan_ctx_with_cancel(chan_ctx_background());
    chan_ctx_t *kids[AF_KIDS];
    for (int i = 0; i < AF_KIDS; i++) {
        kids[i] = i % 2 ? chan_ctx_with_value(root, &kids, NULL) : chan_ctx_with_cancel(root);
        counts[i] = (struct af_count){0, 0, kids[i], i == 4 ? CHILD_CAUSE : PARENT_CAUSE};
        for (int j = 0; j < AF_PER; j++) {
            afs[i][j] = chan_ctx_after_func(kids[i], count_and_check_cause, &counts[i]);
            ck_assert_ptr_nonnull(afs[i][j]);
            if (j % 2)
                ck_assert_int_eq(chan_ctx_after_stop(afs[i][j]), 1);
        }
    }
    ck_assert_int_eq(chan_ctx_cancel_cause(kids[4], CHILD_CAUSE), 0);
    struct af_until u = {&counts[4].calls, AF_PER / 2};
    ck_assert(eventually(calls_are, &u));
    for (int i = 0; i < AF_KIDS; i++)
        if (i != 4)
            ck_assert_int_eq(atomic_load(&counts[i].calls), 0);
    ck_assert_int_eq(chan_ctx_cancel_cause(root, PARENT_CAUSE), 0);
    for (int i = 0; i < AF_KIDS; i++) {
        u = (struct af_until){&counts[i].calls, AF_PER / 2};
        ck_assert(eventually(calls_are, &u));
        ck_assert_int_eq(atomic_load(&counts[i].wrong_cause), 0);
    }
    /* Freed in an odd order: contexts first, the handles keep them. */
    ck_assert_int_eq(chan_ctx_free(root), 0);
    for (int i = 0; i < AF_KIDS; i++)
        ck_assert_int_eq(chan_ctx_free(kids[i]), 0);
    for (int i = 0; i < AF_KIDS; i++)
        for (int j = 0; j < AF_PER; j++)
            ck_assert_int_eq(chan_ctx_after_free(afs[i][j]), 0);
    for (int i = 0; i < AF_KIDS; i++)
        ck_assert_int_eq(atomic_load(&counts[i].calls), AF_PER / 2);
    assert_no_leaks();
}
END_TEST

/* A context freed while an AfterFunc is registered: a free that cancels starts fn; a value
 * context freed first stays (the handle's reference) until its canceller's cancel starts fn and
 * the handle is freed, from fn itself here. */
struct self_free {
    chan_ctx_after_t *_Atomic a;
    chan_t *done;
    chan_ctx_t *ctx;
    void *seen;
};

static int self_free_key;

static void free_self(void *arg)
{
    struct self_free *f = arg;
    chan_ctx_value(f->ctx, &self_free_key, &f->seen); /* the freed value context is still there */
    ck_assert_int_eq(chan_ctx_after_free(atomic_load(&f->a)), 0);
    chan_close(f->done);
}

START_TEST(ctx_after_func_outlives_its_context)
{
    chan_ctx_t *ctx = chan_ctx_with_cancel(chan_ctx_background());
    chan_t *done = chan_make(0, 0);
    chan_ctx_after_t *a = chan_ctx_after_func(ctx, close_it, done);
    ck_assert_int_eq(chan_ctx_free(ctx), 0); /* cancels: fn starts */
    await_called(done);
    ck_assert_int_eq(chan_ctx_after_stop(a), 0);
    ck_assert_int_eq(chan_ctx_after_free(a), 0);
    ck_assert_int_eq(chan_free(done), 0);

    chan_ctx_t *root = chan_ctx_with_cancel(chan_ctx_background());
    struct self_free f = {NULL, chan_make(0, 0), NULL, NULL};
    f.ctx = chan_ctx_with_value(root, &self_free_key, &f);
    /* Made before the handle is stored: fn cannot run before the cancel below. */
    atomic_store(&f.a, chan_ctx_after_func(f.ctx, free_self, &f));
    ck_assert_int_eq(chan_ctx_free(f.ctx), 0); /* cancels nothing */
    ck_assert_int_eq(chan_ctx_cancel(root), 0);
    await_called(f.done);
    ck_assert_ptr_eq(f.seen, &f);
    ck_assert_int_eq(chan_ctx_free(root), 0);
    ck_assert_int_eq(chan_free(f.done), 0);
    assert_no_leaks();
}
END_TEST

/* fn starts once the cancel's walk is over, never in the middle of it: a cancel held right after
 * claiming one child (the claim gate) has met the AfterFunc (registered last, so walked first)
 * but not yet the other child; fn must not run while the walk is held, and when it runs it sees
 * both children cancelled. (Started as the walk met it, fn ran during the hold and saw the other
 * child live.) */
struct saw_late {
    chan_ctx_t *late;
    chan_t *done;
    int err;
};

static void record_late(void *arg)
{
    struct saw_late *s = arg;
    s->err = chan_ctx_err(s->late);
    chan_close(s->done);
}

static void *cancel_it(void *p)
{
    chan_ctx_cancel(p);
    return NULL;
}

START_TEST(ctx_after_func_after_the_walk)
{
    chan_ctx_t *root = chan_ctx_with_cancel(chan_ctx_background());
    struct saw_late s = {chan_ctx_with_cancel(root), chan_make(0, 0), 1};
    chan_ctx_t *held = chan_ctx_with_cancel(root);
    chan_ctx_after_t *a = chan_ctx_after_func(root, record_late, &s);
    claim_hold_at(held);
    pthread_t t = spawn(cancel_it, root);
    claim_wait_held();
    ck_assert_int_eq(chan_ctx_err(s.late), 0); /* the walk is held before it */
    ck_assert_int_eq(chan_recv_until(s.done, NULL, chan_now() + 200 * MS), -ETIMEDOUT);
    claim_open();
    join(t);
    ctx_claimed_hook = NULL;
    await_called(s.done);
    ck_assert_int_eq(s.err, -ECANCELED);
    ck_assert_int_eq(chan_ctx_after_free(a), 0);
    chan_ctx_t *all[] = {root, s.late, held};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ck_assert_int_eq(chan_ctx_free(all[i]), 0);
    ck_assert_int_eq(chan_free(s.done), 0);
    assert_no_leaks();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("context");
    ADD_TEST(s, ctx_background, 30);
    ADD_TEST(s, ctx_bad_arguments, 30);
    ADD_TEST(s, ctx_cancel_basic, 30);
    ADD_TEST(s, ctx_cancel_propagation_tree, 120);
    ADD_TEST(s, ctx_cancel_wakes_blocked_selects, 60);
    ADD_TEST(s, ctx_without_cancel_survives, 30);
    ADD_TEST(s, ctx_deadline_on_time, 30);
    ADD_TEST(s, ctx_timeout_tree, 30);
    ADD_TEST(s, ctx_deadline_passed_or_cancelled_first, 30);
    ADD_TEST(s, ctx_values, 30);
    ADD_TEST(s, ctx_concurrent_churn, 120);
    ADD_TEST(s, ctx_deep_chain_cancel, 120);
    ADD_TEST(s, ctx_deep_chain_free, 120);
    ADD_TEST(s, ctx_deep_chain_deadline, 120);
    ADD_TEST(s, ctx_concurrent_cancel_waits_for_subtree, 120);
    ADD_TEST(s, ctx_cancel_waits_for_held_walk, 30);
    ADD_TEST(s, ctx_deadline_passed_at_birth, 30);
    ADD_TEST(s, ctx_enomem, 30);
    ADD_TEST(s, ctx_free_while_select_unlinking, 30);
    ADD_TEST(s, ctx_children_cancelled_first, 60);
    ADD_TEST(s, ctx_cancel_while_children_made, 60);
    ADD_TEST(s, ctx_err_means_done_closed, 60);
    ADD_TEST(s, ctx_layers, 60);
    ADD_TEST(s, ctx_go_values_timeouts_without_cancel, 30);
    ADD_TEST(s, ctx_go_cause, 30);
    ADD_TEST(s, ctx_cause_bad_arguments, 30);
    ADD_TEST(s, ctx_cause_race, 60);
    ADD_TEST(s, ctx_cause_simultaneously_cancelled_parent, 60);
    ADD_TEST(s, ctx_deadline_cause_fires, 30);
    ADD_TEST(s, ctx_after_func_called_after_cancel, 30);
    ADD_TEST(s, ctx_after_func_called_after_timeout_or_at_once, 30);
    ADD_TEST(s, ctx_after_func_not_called_after_stop, 30);
    ADD_TEST(s, ctx_after_func_called_asynchronously, 30);
    ADD_TEST(s, ctx_after_func_stop_races_cancel, 60);
    ADD_TEST(s, ctx_after_func_tree, 30);
    ADD_TEST(s, ctx_after_func_outlives_its_context, 30);
    ADD_TEST(s, ctx_after_func_after_the_walk, 30);
    return run_suite(s);
}
