/* SPDX-License-Identifier: MIT */
/*
 * test_select.c - Check suite for chan_select, chan_tryselect and chan_select_until.
 *
 * Each test names the Go test it follows (runtime/chan_test.go, the programs of Go's test/chan);
 * the code is our own, written against chan.h. Conventions used throughout:
 *   - Every case's `ok` is prefilled with a sentinel byte (OK_UNSET) and read back bytewise, so
 *     "no ok written" (-EAGAIN, -ETIMEDOUT, -EINVAL, the cases not chosen) is checked exactly
 *     without ever loading an invalid bool.
 *   - A test that needs a peer blocked waits until the peer's sudog is queued
 *     (blocked_senders_at_least / blocked_receivers_at_least), never by sleeping. The race tests
 *     (non-blocking select against a send or close, close against send, time-out against send,
 *     two wakers) race on purpose and assert only what must hold under every interleaving.
 *   - No speed assertions; deadlines are checked "never early" and "at most late_bound() late"
 *     (the latter: once in up to three tries, see expect_timeout).
 *     Loops are scaled down under sanitizers (CHAN_TEST_MODE), and the longest are time-capped,
 *     so that a loaded 2-core machine passes within the time-outs.
 */
#include "testutil.h"

#include "chan_internal.h" /* white box: hold a channel's lock (test_select_pass0_never_waits) */

#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#define OK_UNSET 0xA5u /* sentinel byte in every case's ok before a select */

static void freec(chan_t *c) { ck_assert_int_eq(chan_free(c), 0); }

static void put_int(chan_t *c, int v) { ck_assert_int_eq(chan_trysend(c, &v), 0); }

static int take_int(chan_t *c)
{
    int v = INT_MIN;
    ck_assert_int_eq(chan_tryrecv(c, &v), 0);
    return v;
}

static void cs_set(struct chan_case *k, chan_t *c, enum chan_dir dir, void *elem)
{
    k->chan = c;
    k->elem = elem;
    k->dir = dir;
    memset(&k->ok, (int)OK_UNSET, sizeof k->ok);
}

static void ok_reset(struct chan_case *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memset(&cs[i].ok, (int)OK_UNSET, sizeof cs[i].ok);
}

/* The raw byte of k->ok: OK_UNSET if never written, else 0 or 1. */
static unsigned ok_raw(const struct chan_case *k)
{
    unsigned char b;
    memcpy(&b, &k->ok, 1);
    return b;
}

static void assert_untouched(const struct chan_case *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ok_raw(&cs[i]) != OK_UNSET)
            ck_abort_msg("case %zu of %zu: ok written (%u) though no case was chosen", i, n,
                         ok_raw(&cs[i]));
}

/* r is a valid index, the chosen case's ok is `ok`, and no other case's ok was written. */
static void assert_chosen(const struct chan_case *cs, size_t n, int r, bool ok)
{
    ck_assert_msg(r >= 0 && (size_t)r < n, "select returned %d for %zu cases", r, n);
    for (size_t i = 0; i < n; i++) {
        unsigned want = i == (size_t)r ? (ok ? 1u : 0u) : OK_UNSET;
        if (ok_raw(&cs[i]) != want)
            ck_abort_msg("case %zu of %zu (chosen %d): ok byte %u, want %u", i, n, r,
                         ok_raw(&cs[i]), want);
    }
}

static int all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v)
            return 0;
    return 1;
}

/* A byte pattern that differs from its neighbours and, over 256-byte blocks, from itself. */
static void pattern(unsigned char *b, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 7 + (i >> 8));
}

static void yield_some(unsigned *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
}

/* Frees c as soon as chan_free allows it: -EBUSY until no operation is queued on c. */
static void free_when_allowed(chan_t *c)
{
    int r;
    unsigned spins = 0;
    while ((r = chan_free(c)) == -EBUSY)
        yield_some(&spins);
    ck_assert_int_eq(r, 0);
}

/*
 * select_until(cs, n, now + wait) with nothing ready, up to three times: each must return
 * -ETIMEDOUT, never before its deadline, and one at least within late_bound() after it. A loaded
 * machine may hold back one wake-up for tens of milliseconds (seen: 69 ms at load 9 on 2 cores);
 * a select that oversleeps does so every time.
 */
static void expect_timeout(struct chan_case *cs, size_t n, int64_t wait, const char *what)
{
    int64_t least = INT64_MAX;
    for (int attempt = 0; attempt < 3; attempt++) {
        int64_t d = chan_now() + wait;
        int r = chan_select_until(cs, n, d);
        int64_t t = chan_now();
        ck_assert_msg(r == -ETIMEDOUT, "%s (n=%zu): got %d, want -ETIMEDOUT", what, n, r);
        ck_assert_msg(t >= d, "%s (n=%zu): returned %lld ns before the deadline", what, n,
                      (long long)(d - t));
        if (t - d <= late_bound())
            return;
        least = t - d < least ? t - d : least;
    }
    ck_abort_msg("%s (n=%zu): late by %lld ms or more three times (bound %lld ms)", what, n,
                 (long long)(least / MS), (long long)(late_bound() / MS));
}

/* Race loops run their rounds within a time budget too (after a minimum of 50), so that a
 * loaded machine shortens them instead of stretching the whole program. */
static int64_t budget_end(int64_t plain_ms, int64_t sanitized_ms)
{
    return chan_now() + (under_sanitizer() ? sanitized_ms : plain_ms) * MS;
}

static bool more_rounds(int round, int rounds, int64_t end)
{
    return round < rounds && (round < 50 || chan_now() < end);
}

/* ---- Threads used by several tests ----------------------------------------------------------- */

/* Runs one select: chan_select (until == 0) or chan_select_until(deadline). */
struct selthr {
    struct chan_case *cases;
    size_t n;
    int until;
    int64_t deadline;
    int ret;
    int64_t t_end;
};

static void *sel_thread(void *p)
{
    struct selthr *a = p;
    a->ret =
        a->until ? chan_select_until(a->cases, a->n, a->deadline) : chan_select(a->cases, a->n);
    a->t_end = chan_now();
    return NULL;
}

struct opthr {
    chan_t *c;
    void *elem;
    int ret;
    _Atomic int *go; /* if not NULL: spin until *go != 0 before the operation */
};

static void wait_go(_Atomic int *go)
{
    unsigned spins = 0;
    if (go)
        while (!atomic_load_explicit(go, memory_order_acquire))
            yield_some(&spins);
}

static void *send_thread(void *p)
{
    struct opthr *a = p;
    wait_go(a->go);
    a->ret = chan_send(a->c, a->elem);
    return NULL;
}

static void *recv_thread(void *p)
{
    struct opthr *a = p;
    wait_go(a->go);
    a->ret = chan_recv(a->c, a->elem);
    return NULL;
}

static void *close_thread(void *p)
{
    struct opthr *a = p;
    wait_go(a->go);
    a->ret = chan_close(a->c);
    return NULL;
}

/* ---- Fairness -------------------------------------------------------------------------------- */

/*
 * Go: TestSelectFairness. Four always-ready cases (two receives from buffers kept full, two sends
 * into buffers kept empty), 100,000 selects; the choice must be uniform.
 *
 * Each case's count X is Binomial(n = 100000, p = 1/4): mean 25000, sd = sqrt(n p (1-p)) =
 * sqrt(18750) = 136.9. The bound |X - 25000| <= 960 is 7.01 sd. Normal approximation:
 * P(|Z| > 7.01) = 2.4e-12 per case; union over the 4 cases: 9.5e-12. Without the approximation,
 * Bernstein's inequality P(|X - np| >= t) <= 2 exp(-t^2 / (2 (np(1-p) + t/3))) gives, for
 * t = 960, 2 exp(-921600 / 38140) = 2 exp(-24.16) = 6.4e-11 per case; union over 4: 2.6e-10.
 * Either way the false-failure probability is below 1e-9, while a bias of even 4% of one case
 * (1000 selects) fails. Smaller biases spread over several cases are caught by Pearson's
 * statistic, asymptotically chi-square with 3 degrees of freedom: the bound 55 is exceeded with
 * probability at most (55/3)^(3/2) e^(-(55-3)/2) = 4.0e-10 (the Chernoff bound for chi-square).
 * Both checks together: below 2.6e-10 + 4.0e-10 < 1e-9.
 */
START_TEST(test_select_fairness)
{
    enum { NC = 4, TRIALS = 100000, CAP = 8 };
    const long bound = 960;
    chan_t *c[NC];
    int in[NC] = {0}, out[NC] = {0}, elem[NC];
    long cnt[NC] = {0};
    struct chan_case cs[NC];

    for (int i = 0; i < NC; i++)
        c[i] = mk(sizeof(int), CAP);
    for (int i = 0; i < 2; i++) /* c[0], c[1]: receive cases, buffers kept full */
        for (int j = 0; j < CAP; j++)
            put_int(c[i], in[i]++);

    for (long t = 0; t < TRIALS; t++) {
        for (int i = 0; i < NC; i++) {
            elem[i] = i < 2 ? -1 : in[i];
            cs_set(&cs[i], c[i], i < 2 ? CHAN_RECV : CHAN_SEND, &elem[i]);
        }
        int r;
        switch (t % 3) {
        case 0: r = chan_tryselect(cs, NC); break;
        case 1: r = chan_select(cs, NC); break;
        default: r = chan_select_until(cs, NC, CHAN_FOREVER); break;
        }
        assert_chosen(cs, NC, r, true);
        cnt[r]++;
        if (r < 2) { /* received the next value in FIFO order; refill */
            ck_assert_int_eq(elem[r], out[r]);
            out[r]++;
            put_int(c[r], in[r]++);
        } else { /* sent exactly our value; drain */
            ck_assert_int_eq(take_int(c[r]), in[r]);
            in[r]++;
        }
        ck_assert_uint_eq(chan_len(c[0]), CAP);
        ck_assert_uint_eq(chan_len(c[2]) + chan_len(c[3]), 0);
    }
    for (int i = 0; i < NC; i++)
        ck_assert_msg(labs(cnt[i] - TRIALS / NC) <= bound,
                      "case %d chosen %ld times of %d (expected %d +- %ld): %ld %ld %ld %ld", i,
                      cnt[i], TRIALS, TRIALS / NC, bound, cnt[0], cnt[1], cnt[2], cnt[3]);
    double x2 = chi_square(cnt, NC, TRIALS);
    ck_assert_msg(x2 <= 55, "chi-square %.1f > 55 (3 degrees of freedom): %ld %ld %ld %ld", x2,
                  cnt[0], cnt[1], cnt[2], cnt[3]);
    for (int i = 0; i < NC; i++)
        freec(c[i]);
}
END_TEST

/*
 * Go: TestSelectFairness, with 20 cases: more than the 8 a select keeps on its stack, and each of
 * 10 channels named twice (receives from buffers kept full). Every case is ready, so each index
 * must come out 1 time in 20. Count X ~ Binomial(100000, 1/20): mean 5000, sd = sqrt(4750) =
 * 68.9; bound |X - 5000| <= 500 (7.25 sd). Normal approximation: 20 x P(|Z| > 7.25) = 8.0e-12;
 * Bernstein: 20 x 2 exp(-500^2 / (2 (4750 + 500/3))) = 40 exp(-25.4) = 3.6e-10. Pearson's
 * statistic (chi-square, 19 degrees of freedom) above 100: at most (100/19)^(19/2) e^(-(100-19)/2)
 * = 1.8e-11 (Chernoff). Together below 1e-9; a bias of 5% on a dozen cases gives ~400.
 */
START_TEST(test_select_fairness_many_cases)
{
    enum { NC = 20, NCH = 10, TRIALS = 100000, CAP = 4 };
    const long bound = 500;
    chan_t *c[NCH];
    int v[NC];
    long cnt[NC] = {0};
    struct chan_case cs[NC];
    for (int i = 0; i < NCH; i++) {
        c[i] = mk(sizeof(int), CAP);
        for (int j = 0; j < CAP; j++)
            put_int(c[i], i);
    }
    for (int i = 0; i < NC; i++)
        cs_set(&cs[i], c[i % NCH], CHAN_RECV, &v[i]);
    for (long t = 0; t < TRIALS; t++) {
        ok_reset(cs, NC);
        int r = t % 2 ? chan_tryselect(cs, NC) : chan_select(cs, NC);
        assert_chosen(cs, NC, r, true);
        ck_assert_int_eq(v[r], r % NCH);
        cnt[r]++;
        put_int(c[r % NCH], r % NCH);
    }
    for (int i = 0; i < NC; i++)
        ck_assert_msg(labs(cnt[i] - TRIALS / NC) <= bound,
                      "case %d chosen %ld times of %d (expected %d +- %ld)", i, cnt[i], TRIALS,
                      TRIALS / NC, bound);
    double x2 = chi_square(cnt, NC, TRIALS);
    ck_assert_msg(x2 <= 100, "chi-square %.1f > 100 (19 degrees of freedom)", x2);
    for (int i = 0; i < NCH; i++)
        freec(c[i]);
}
END_TEST

struct seqsender {
    chan_t *c;
    int n;
    int ret;
};

static void *seq_sender(void *p)
{
    struct seqsender *a = p;
    a->ret = 0;
    for (int i = 0; i < a->n && a->ret == 0; i++)
        a->ret = chan_send(a->c, &i);
    return NULL;
}

/*
 * Go: TestSelectFairness (its second half): a receive case whose sender waits beside a case that
 * is always ready is not starved. Each round the sender is queued first; the select then sees two
 * ready cases and must pick the sender's within 40 tries: P(40 misses) = 2^-40 = 9.1e-13 per
 * round, 9.1e-11 over 100 rounds.
 */
START_TEST(test_select_fairness_recv_not_starved)
{
    enum { ROUNDS = 100, MAXTRIES = 40 };
    chan_t *u = mk(sizeof(int), 0);
    chan_t *b = mk(sizeof(int), 4);
    for (int j = 0; j < 4; j++)
        put_int(b, -7);
    struct seqsender ss = {u, ROUNDS, -1};
    pthread_t t = spawn(seq_sender, &ss);
    long bchosen = 0;

    for (int round = 0; round < ROUNDS; round++) {
        ck_assert(blocked_senders_at_least(u, 1));
        for (int tries = 1;; tries++) {
            int vu = -1, vb = -1, iu = round & 1; /* u's position alternates */
            struct chan_case cs[2];
            cs_set(&cs[iu], u, CHAN_RECV, &vu);
            cs_set(&cs[!iu], b, CHAN_RECV, &vb);
            int r = chan_select(cs, 2);
            assert_chosen(cs, 2, r, true);
            if (r == iu) {
                ck_assert_int_eq(vu, round);
                break;
            }
            ck_assert_int_eq(vb, -7);
            put_int(b, -7);
            bchosen++;
            ck_assert_msg(tries < MAXTRIES, "round %d: the waiting sender lost %d selects in a row",
                          round, tries);
        }
    }
    join(t);
    ck_assert_int_eq(ss.ret, 0);
    ck_assert_int_gt(bchosen, 0); /* P(never) = 2^-100 */
    freec(u);
    freec(b);
}
END_TEST

/*
 * A select first tries its cases one channel at a time, in poll order (pass 0): a buffered
 * channel nobody waits on through its lock-free ring, one that has waiters or is closed (the
 * ring's SLOW mode) under its own lock, an unbuffered one only if a peer may be there. The
 * choice must stay uniform across those kinds. Cases: a closed, empty buffered channel (always
 * ready, ok = false, SLOW for good), an open buffered one kept non-empty (lock-free), an
 * unbuffered one nobody sends on and a full buffered one to send on (never ready), and NULL.
 * The two ready cases: X ~ Binomial(40000, 1/2), sd 100; bound |X - 20000| <= 700 (7 sd):
 * below 3e-12 (normal), 2 exp(-700^2 / (2 (10000 + 700/3))) = 8.8e-11 (Bernstein).
 */
START_TEST(test_select_fairness_across_channel_kinds)
{
    enum { TRIALS = 40000, CAP = 4 };
    const long bound = 700;
    chan_t *closed = mk(sizeof(int), CAP), *busy = mk(sizeof(int), CAP);
    chan_t *quiet = mk(sizeof(int), 0), *full = mk(sizeof(int), 1);
    ck_assert_int_eq(chan_close(closed), 0);
    for (int j = 0; j < CAP; j++)
        put_int(busy, 7);
    put_int(full, 9);
    long cnt[5] = {0};
    for (long t = 0; t < TRIALS; t++) {
        int vc = -1, vb = -1, vq = -1, one = 1;
        struct chan_case cs[5];
        cs_set(&cs[0], closed, CHAN_RECV, &vc);
        cs_set(&cs[1], busy, CHAN_RECV, &vb);
        cs_set(&cs[2], quiet, CHAN_RECV, &vq);
        cs_set(&cs[3], full, CHAN_SEND, &one);
        cs_set(&cs[4], NULL, CHAN_RECV, NULL);
        int r = t % 2 ? chan_tryselect(cs, 5) : chan_select(cs, 5);
        ck_assert_msg(r == 0 || r == 1, "case %d chosen: it was never ready", r);
        assert_chosen(cs, 5, r, r == 1);
        if (r == 0) {
            ck_assert_int_eq(vc, 0); /* zeroed */
        } else {
            ck_assert_int_eq(vb, 7);
            put_int(busy, 7);
        }
        cnt[r]++;
    }
    ck_assert_msg(labs(cnt[0] - TRIALS / 2) <= bound && labs(cnt[1] - TRIALS / 2) <= bound,
                  "closed chosen %ld, busy %ld of %d (expected %d +- %ld each)", cnt[0], cnt[1],
                  TRIALS, TRIALS / 2, bound);
    ck_assert_uint_eq(chan_len(busy), CAP);
    ck_assert_uint_eq(chan_len(full), 1);
    freec(closed);
    freec(busy);
    freec(quiet);
    freec(full);
}
END_TEST

struct two_sends {
    chan_t *u, *b;
    int r;
};

static void *select_two_sends(void *p)
{
    struct two_sends *a = p;
    int x = 1;
    struct chan_case cs[2];
    cs_set(&cs[0], a->u, CHAN_SEND, &x);
    cs_set(&cs[1], a->b, CHAN_SEND, NULL);
    a->r = chan_select(cs, 2);
    return NULL;
}

static bool lock_has_sleeper(chan_t *c)
{
    for (int i = 0; i < 20000; i++) {
        if (atomic_load(&c->lock.word) == 2)
            return true;
        sleep_ms(1);
    }
    return false;
}

/*
 * Pass 0 tries a case alone only if its channel's lock is free at once. Had it waited for the
 * lock, it would perform that case after the wait, though a case it had passed over as not ready
 * may have found its peer meanwhile: that case would then never be chosen, where Go's selectgo,
 * which decides under every lock at once, picks either. (Crossbeam's fairness2 starved an
 * unbuffered case so, with the lock held by the receiving select on its way to park.)
 * Each trial: a select of a send on unbuffered u (nobody receives yet) and a send on b, which
 * has room but whose lock the test holds; once the select sleeps on b's lock, a receiver queues
 * on u, then the lock is released, so both cases are ready when the select decides. b's address
 * is below u's, so the select's pass 1 sleeps on b's lock before it takes u's.
 * Each case wins X ~ Binomial(64, 1/2) trials: P(X < 8) = 3.6e-11 per case.
 */
START_TEST(test_select_pass0_never_waits)
{
    enum { TRIALS = 64 };
    enum { NC = 4 };
    /* Made in turns, and of one size (b's element is empty), so that some u lies above some b
     * whichever way the allocator hands out addresses. */
    chan_t *bs[NC], *us[NC], *b = NULL, *u = NULL;
    for (int i = 0; i < NC; i++) {
        bs[i] = mk(0, 1);
        us[i] = mk(sizeof(int), 0);
        if (!b || (uintptr_t)bs[i] < (uintptr_t)b)
            b = bs[i];
        if (!u || (uintptr_t)us[i] > (uintptr_t)u)
            u = us[i];
    }
    ck_assert_msg((uintptr_t)u > (uintptr_t)b, "no unbuffered channel above a buffered one");
    long won[2] = {0};
    for (int t = 0; t < TRIALS; t++) {
        struct two_sends s = {u, b, -1};
        int got = -1;
        struct opthr rcv = {u, &got, -1, NULL};
        lock(&b->lock);
        pthread_t st = spawn(select_two_sends, &s);
        ck_assert_msg(lock_has_sleeper(b), "the select never waited for b's lock");
        pthread_t rt = spawn(recv_thread, &rcv);
        ck_assert(blocked_receivers_at_least(u, 1));
        unlock(&b->lock);
        join(st);
        ck_assert_msg(s.r == 0 || s.r == 1, "select: %d", s.r);
        won[s.r]++;
        if (s.r == 1) { /* b took the value: the receiver still waits on u */
            ck_assert_int_eq(chan_recv(b, NULL), 0);
            int z = 1;
            ck_assert_int_eq(chan_send(u, &z), 0);
        }
        join(rt);
        ck_assert_int_eq(rcv.ret, 0);
        ck_assert_int_eq(got, 1);
    }
    ck_assert_msg(won[0] >= 8 && won[1] >= 8, "unbuffered chosen %ld, buffered %ld of %d", won[0],
                  won[1], TRIALS);
    for (int i = 0; i < NC; i++) {
        freec(bs[i]);
        freec(us[i]);
    }
}
END_TEST

/* Go's recv on a full buffer with a sender waiting, reached by a select's first pass, on a small
 * channel (Go's buffer under the lock) and a larger one (its ring, then in SLOW mode): the select
 * gets the head of the buffer, the sender's value goes in at the tail and the sender returns 0.
 * Then, the ring back to lock-free, selects take the rest in FIFO order. */
START_TEST(test_select_full_buffer_waiting_sender)
{
    const int caps[] = {2, 8};
    for (int ci = 0; ci < 2; ci++) {
        int cap = caps[ci];
        chan_t *c = mk(sizeof(int), (size_t)cap), *other = mk(sizeof(int), 0);
        for (int round = 0; round < 3; round++) {
            int base = 100 * round;
            for (int k = 0; k < cap; k++)
                put_int(c, base + k);
            int vlast = base + cap, got = -1, vo = -1;
            struct opthr op = {c, &vlast, -1, NULL};
            pthread_t t = spawn(send_thread, &op);
            ck_assert(blocked_senders_at_least(c, 1));
            struct chan_case cs[2];
            cs_set(&cs[0], other, CHAN_RECV, &vo);
            cs_set(&cs[1], c, CHAN_RECV, &got);
            int r = round == 1 ? chan_tryselect(cs, 2) : chan_select(cs, 2);
            assert_chosen(cs, 2, r, true);
            ck_assert_int_eq(r, 1);
            ck_assert_int_eq(got, base);
            join(t);
            ck_assert_int_eq(op.ret, 0);
            ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
            ck_assert_uint_eq(chan_len(c), (size_t)cap);
            for (int k = 1; k <= cap; k++) {
                cs_set(&cs[1], c, CHAN_RECV, &got);
                ck_assert_int_eq(chan_select(cs, 2), 1);
                ck_assert_int_eq(got, base + k);
            }
            ck_assert_uint_eq(chan_len(c), 0);
        }
        ck_assert_int_eq(chan_tryrecv(other, NULL), -EAGAIN);
        freec(c);
        freec(other);
    }
}
END_TEST

/* ---- NULL cases and empty selects ------------------------------------------------------------ */

/* Go: a nil channel's case in a select is never ready (the spec; select3.go's nil cases). A NULL
 * case is never chosen, whatever its dir, beside ready cases; its elem is not looked at. */
START_TEST(test_select_nil_case_never_chosen)
{
    enum { NC = 6 };
    const int iters = scaled(30000, 6000);
    chan_t *full = mk(sizeof(int), 2), *space = mk(sizeof(int), 2);
    put_int(full, 1);
    put_int(full, 1);
    unsigned char guard[32];
    memset(guard, 0x5A, sizeof guard);
    long seen[NC] = {0};

    for (int it = 0; it < iters; it++) {
        int vr = -1, vs = 5;
        struct chan_case cs[NC];
        cs_set(&cs[0], NULL, CHAN_RECV, guard);
        cs_set(&cs[1], full, CHAN_RECV, &vr);
        cs_set(&cs[2], NULL, CHAN_SEND, NULL); /* valid: a nil case's elem is not looked at */
        cs_set(&cs[3], space, CHAN_SEND, &vs);
        cs_set(&cs[4], NULL, CHAN_SEND, guard);
        cs_set(&cs[5], NULL, CHAN_RECV, NULL);
        int r;
        switch (it % 3) {
        case 0: r = chan_tryselect(cs, NC); break;
        case 1: r = chan_select(cs, NC); break;
        default: r = chan_select_until(cs, NC, 0); break; /* past deadline: ready still wins */
        }
        assert_chosen(cs, NC, r, true);
        ck_assert_msg(r == 1 || r == 3, "nil case %d chosen", r);
        seen[r]++;
        if (r == 1) {
            ck_assert_int_eq(vr, 1);
            put_int(full, 1);
        } else {
            ck_assert_int_eq(take_int(space), 5);
        }
    }
    ck_assert(all_bytes(guard, sizeof guard, 0x5A));
    ck_assert_int_gt(seen[1], 0);
    ck_assert_int_gt(seen[3], 0);

    /* Blocked with nil cases around the one that becomes ready. */
    chan_t *u = mk(sizeof(int), 0);
    int vu = -1;
    struct chan_case cs[4];
    cs_set(&cs[0], NULL, CHAN_RECV, guard);
    cs_set(&cs[1], NULL, CHAN_SEND, NULL);
    cs_set(&cs[2], u, CHAN_RECV, &vu);
    cs_set(&cs[3], NULL, CHAN_RECV, NULL);
    struct selthr st = {cs, 4, 0, 0, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    ck_assert(blocked_receivers_at_least(u, 1));
    int nine = 9;
    ck_assert_int_eq(chan_send(u, &nine), 0);
    join(t);
    assert_chosen(cs, 4, st.ret, true);
    ck_assert_int_eq(st.ret, 2);
    ck_assert_int_eq(vu, 9);
    ck_assert(all_bytes(guard, sizeof guard, 0x5A));
    freec(u);
    freec(full);
    freec(space);
}
END_TEST

/* Go: select with only nil channels blocks (test/chan/select3.go). tryselect: -EAGAIN;
 * select_until: -ETIMEDOUT, never before the deadline, at most late_bound() after it. */
START_TEST(test_select_only_nil_cases_block)
{
    unsigned char guard[16];
    memset(guard, 0x5A, sizeof guard);
    struct chan_case cs[20];
    cs_set(&cs[0], NULL, CHAN_RECV, guard);
    cs_set(&cs[1], NULL, CHAN_SEND, NULL);
    cs_set(&cs[2], NULL, CHAN_SEND, guard);
    for (int i = 3; i < 20; i++)
        cs_set(&cs[i], NULL, i % 2 ? CHAN_RECV : CHAN_SEND, guard);

    size_t ns[] = {1, 3, 20}; /* 20: more than the 8 cases kept on the stack */
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t n = ns[k];
        ck_assert_int_eq(chan_tryselect(cs, n), -EAGAIN);
        assert_untouched(cs, n);
        expect_timeout(cs, n, 1 * MS, "only nil cases");
        expect_timeout(cs, n, 30 * MS, "only nil cases");
        assert_untouched(cs, n);
        ck_assert_int_eq(chan_select_until(cs, n, chan_now() - 1), -ETIMEDOUT);
        ck_assert_int_eq(chan_select_until(cs, n, 0), -ETIMEDOUT);
        assert_untouched(cs, n);
    }
    ck_assert(all_bytes(guard, sizeof guard, 0x5A));
}
END_TEST

static _Atomic int forever_returned;

static void *select_forever_thread(void *p)
{
    (void)p;
    chan_select(NULL, 0);
    atomic_store(&forever_returned, 1);
    return NULL;
}

/* Go: select {} blocks forever; with a default it does nothing (test/chan/select3.go). n == 0:
 * tryselect -EAGAIN, select_until -ETIMEDOUT after its deadline, chan_select never returns. */
START_TEST(test_select_zero_cases)
{
    chan_t *full = mk(sizeof(int), 1);
    put_int(full, 3);
    int v = -1;
    struct chan_case cs[1];
    cs_set(&cs[0], full, CHAN_RECV, &v); /* a ready case beyond n: must not be looked at */

    ck_assert_int_eq(chan_tryselect(NULL, 0), -EAGAIN);
    ck_assert_int_eq(chan_tryselect(cs, 0), -EAGAIN);
    expect_timeout(NULL, 0, 30 * MS, "no cases, NULL array");
    expect_timeout(cs, 0, 30 * MS, "no cases");
    ck_assert_int_eq(chan_select_until(NULL, 0, 0), -ETIMEDOUT);
    ck_assert_int_eq(chan_select_until(cs, 0, chan_now() - 1), -ETIMEDOUT);
    ck_assert_uint_eq(chan_len(full), 1);
    ck_assert_int_eq(v, -1);
    assert_untouched(cs, 1);

    /* select {}: still blocked 100 ms later (the thread is left behind, detached). */
    pthread_t t = spawn(select_forever_thread, NULL);
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&forever_returned), 0);
    ck_assert_int_eq(pthread_detach(t), 0);
    freec(full);
}
END_TEST

/* ---- The same channel in several cases ------------------------------------------------------- */

struct dupA {
    chan_t *c, *d, *e;
    int vc0, vc1, vd;
    struct chan_case cs[3];
    int ret, eret;
};

static void *dupA_thread(void *p)
{
    struct dupA *a = p;
    a->ret = chan_select(a->cs, 3);
    int nine = 9;
    a->eret = chan_send(a->e, &nine);
    return NULL;
}

/*
 * Go: TestSelectDuplicateChannel. A selects on c, c, d and is queued on c twice; B then queues on
 * c; a value on d wakes A, which must leave c's queue entirely (both sudogs); the next value on c
 * must reach B, not a stale entry of A's.
 */
START_TEST(test_select_duplicate_channel)
{
    struct dupA a = {0};
    a.c = mk(sizeof(int), 0);
    a.d = mk(sizeof(int), 0);
    a.e = mk(sizeof(int), 0);
    a.vc0 = a.vc1 = a.vd = -1;
    cs_set(&a.cs[0], a.c, CHAN_RECV, &a.vc0);
    cs_set(&a.cs[1], a.c, CHAN_RECV, &a.vc1);
    cs_set(&a.cs[2], a.d, CHAN_RECV, &a.vd);
    pthread_t ta = spawn(dupA_thread, &a);
    ck_assert(blocked_receivers_at_least(a.c, 2));
    ck_assert(blocked_receivers_at_least(a.d, 1));

    int vb = -1;
    struct opthr b = {a.c, &vb, -1, NULL};
    pthread_t tb = spawn(recv_thread, &b);
    ck_assert(blocked_receivers_at_least(a.c, 3));

    int seven = 7, v = -1;
    ck_assert_int_eq(chan_send(a.d, &seven), 0); /* wakes A; it dequeues itself from c */
    ck_assert_int_eq(chan_recv(a.e, &v), 0);     /* A is done */
    ck_assert_int_eq(v, 9);
    ck_assert_uint_eq(hchan_waiting(a.c, CHAN_RECV), 1); /* only B */
    int eight = 8;
    ck_assert_int_eq(chan_send(a.c, &eight), 0); /* must wake B */
    join(tb);
    ck_assert_int_eq(b.ret, 0);
    ck_assert_int_eq(vb, 8);
    join(ta);
    ck_assert_int_eq(a.eret, 0);
    assert_chosen(a.cs, 3, a.ret, true);
    ck_assert_int_eq(a.ret, 2);
    ck_assert_int_eq(a.vd, 7);
    ck_assert_int_eq(a.vc0, -1);
    ck_assert_int_eq(a.vc1, -1);
    freec(a.c);
    freec(a.d);
    freec(a.e);
}
END_TEST

/* Go: TestSelectDuplicateChannel's shape with one channel as both send and receive case: a select
 * never meets itself; a peer on either side completes one case and the select leaves both queues
 * of the channel. */
START_TEST(test_select_duplicate_channel_send_recv)
{
    chan_t *c = mk(sizeof(int), 0);
    int vs = 11, vr = -1;
    struct chan_case cs[2];
    cs_set(&cs[0], c, CHAN_SEND, &vs);
    cs_set(&cs[1], c, CHAN_RECV, &vr);

    /* Alone: not ready, and it cannot pair with itself. */
    ck_assert_int_eq(chan_tryselect(cs, 2), -EAGAIN);
    int64_t d = chan_now() + 30 * MS;
    ck_assert_int_eq(chan_select_until(cs, 2, d), -ETIMEDOUT);
    ck_assert(chan_now() >= d);
    assert_untouched(cs, 2);
    ck_assert_int_eq(vr, -1);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);

    /* A peer receives: the send case fires. */
    struct selthr st = {cs, 2, 0, 0, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert(blocked_receivers_at_least(c, 1));
    int x = -1;
    ck_assert_int_eq(chan_recv(c, &x), 0);
    ck_assert_int_eq(x, 11);
    /* The waker unlinked the select from both of c's queues before returning. */
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);
    join(t);
    assert_chosen(cs, 2, st.ret, true);
    ck_assert_int_eq(st.ret, 0);
    ck_assert_int_eq(vr, -1);

    /* A peer sends: the receive case fires. */
    ok_reset(cs, 2);
    st.ret = -1;
    t = spawn(sel_thread, &st);
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert(blocked_receivers_at_least(c, 1));
    int y = 22;
    ck_assert_int_eq(chan_send(c, &y), 0);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);
    join(t);
    assert_chosen(cs, 2, st.ret, true);
    ck_assert_int_eq(st.ret, 1);
    ck_assert_int_eq(vr, 22);
    freec(c);

    /* Buffered, cap 1: empty, only the send case is ready; full, only the receive case. */
    chan_t *b = mk(sizeof(int), 1);
    cs_set(&cs[0], b, CHAN_SEND, &vs);
    cs_set(&cs[1], b, CHAN_RECV, &vr);
    for (int i = 0; i < 100; i++) {
        vs = i;
        ok_reset(cs, 2);
        int r = i % 2 ? chan_tryselect(cs, 2) : chan_select(cs, 2);
        assert_chosen(cs, 2, r, true);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(chan_len(b), 1);
        ok_reset(cs, 2);
        r = i % 2 ? chan_select(cs, 2) : chan_tryselect(cs, 2);
        assert_chosen(cs, 2, r, true);
        ck_assert_int_eq(r, 1);
        ck_assert_int_eq(vr, i);
        ck_assert_uint_eq(chan_len(b), 0);
    }
    freec(b);

    /* Cap 2 holding one value: both ready, and both get chosen (P(not) = 2^-199). */
    chan_t *b2 = mk(sizeof(int), 2);
    put_int(b2, 0);
    cs_set(&cs[0], b2, CHAN_SEND, &vs);
    cs_set(&cs[1], b2, CHAN_RECV, &vr);
    int hits[2] = {0, 0};
    for (int i = 0; i < 200; i++) {
        ok_reset(cs, 2);
        int r = chan_tryselect(cs, 2);
        assert_chosen(cs, 2, r, true);
        hits[r]++;
        if (r == 0)
            (void)take_int(b2);
        else
            put_int(b2, 0);
        ck_assert_uint_eq(chan_len(b2), 1);
    }
    ck_assert_int_gt(hits[0], 0);
    ck_assert_int_gt(hits[1], 0);
    freec(b2);
}
END_TEST

/* Go: TestSelectDuplicateChannel with the same channel twice as a receive case: FIFO values, both
 * cases chosen, and a blocked select queued twice leaves with one value taken. */
START_TEST(test_select_duplicate_channel_recv_recv)
{
    chan_t *c = mk(sizeof(int), 8);
    for (int i = 0; i < 8; i++)
        put_int(c, i);
    int v[2] = {-1, -1};
    struct chan_case cs[2];
    cs_set(&cs[0], c, CHAN_RECV, &v[0]);
    cs_set(&cs[1], c, CHAN_RECV, &v[1]);
    int hits[2] = {0, 0};
    for (int i = 0; i < 8; i++) {
        ok_reset(cs, 2);
        int r = chan_tryselect(cs, 2);
        assert_chosen(cs, 2, r, true);
        ck_assert_int_eq(v[r], i);
        hits[r]++;
    }
    ok_reset(cs, 2);
    ck_assert_int_eq(chan_tryselect(cs, 2), -EAGAIN);
    assert_untouched(cs, 2);
    for (int i = 0; i < 200; i++) {
        put_int(c, i);
        ok_reset(cs, 2);
        int r = chan_tryselect(cs, 2);
        assert_chosen(cs, 2, r, true);
        ck_assert_int_eq(v[r], i);
        hits[r]++;
    }
    ck_assert_int_gt(hits[0], 0);
    ck_assert_int_gt(hits[1], 0);
    freec(c);

    /* Blocked, queued twice on one unbuffered channel: one send wakes it once. */
    chan_t *u = mk(sizeof(int), 0);
    v[0] = v[1] = -1;
    cs_set(&cs[0], u, CHAN_RECV, &v[0]);
    cs_set(&cs[1], u, CHAN_RECV, &v[1]);
    struct selthr st = {cs, 2, 0, 0, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    ck_assert(blocked_receivers_at_least(u, 2));
    int five = 5;
    ck_assert_int_eq(chan_send(u, &five), 0);
    /* The other sudog left with it: nobody is waiting to receive any more. */
    ck_assert_uint_eq(hchan_waiting(u, CHAN_RECV), 0);
    ck_assert_int_eq(chan_trysend(u, &five), -EAGAIN);
    join(t);
    assert_chosen(cs, 2, st.ret, true);
    ck_assert_int_eq(v[st.ret], 5);
    ck_assert_int_eq(v[!st.ret], -1);
    freec(u);
}
END_TEST

/* ---- Self-select ----------------------------------------------------------------------------- */

struct selfsel {
    chan_t *c;
    size_t cap;
    int id, iters;
    int sends, recvs, self_recv, bad;
};

static void *selfsel_thread(void *p)
{
    struct selfsel *a = p;
    for (int i = 0; i < a->iters; i++) {
        int out = a->id, in = -1;
        int s = (a->id == 0 || i % 2 == 0) ? 0 : 1; /* position of the send case */
        struct chan_case cs[2];
        cs_set(&cs[s], a->c, CHAN_SEND, &out);
        cs_set(&cs[!s], a->c, CHAN_RECV, &in);
        int r = chan_select(cs, 2);
        if (r < 0 || r > 1 || ok_raw(&cs[r]) != 1 || ok_raw(&cs[!r]) != OK_UNSET) {
            a->bad++; /* go on: the peer would otherwise wait forever */
            continue;
        }
        if (r == s) {
            a->sends++;
        } else {
            a->recvs++;
            if (in != 0 && in != 1)
                a->bad++;
            if (in == a->id)
                a->self_recv++;
        }
    }
    return NULL;
}

/* Go: TestSelfSelect. Two threads each select send+receive on one channel: no deadlock; on an
 * unbuffered channel no thread receives its own value. Also cap 1 (never blocks) and cap 10. */
START_TEST(test_self_select)
{
    size_t caps[] = {0, 1, 10};
    const int iters = scaled(2000, 1000);
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        chan_t *c = mk(sizeof(int), caps[k]);
        struct selfsel a[2];
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            a[i] = (struct selfsel){c, caps[k], i, iters, 0, 0, 0, 0};
            t[i] = spawn(selfsel_thread, &a[i]);
        }
        for (int i = 0; i < 2; i++)
            join(t[i]);
        for (int i = 0; i < 2; i++) {
            ck_assert_msg(a[i].bad == 0, "cap %zu thread %d: bad select result", caps[k], i);
            ck_assert_int_eq(a[i].sends + a[i].recvs, iters);
            if (caps[k] == 0)
                ck_assert_msg(a[i].self_recv == 0,
                              "cap 0: thread %d received its own value %d times", i,
                              a[i].self_recv);
        }
        long sends = a[0].sends + a[1].sends, recvs = a[0].recvs + a[1].recvs;
        ck_assert_int_eq(sends - recvs, (long)chan_len(c));
        freec(c);
    }
}
END_TEST

/* ---- Select stress --------------------------------------------------------------------------- */

struct stress {
    chan_t *c[4];
    int n;
    _Atomic unsigned char *seen; /* 2 sources x 4 channels x n values */
    _Atomic int errors;
};

struct stress_arg {
    struct stress *s;
    int k;
};

/* value = (src * 4 + k) * n + i: src 0 the plain sender of channel k, src 1 the select sender. */
static void stress_record(struct stress *s, int k, int v)
{
    if (v < 0 || v >= 8 * s->n || (v / s->n) % 4 != k || atomic_fetch_add(&s->seen[v], 1) != 0)
        atomic_fetch_add(&s->errors, 1);
}

static void *stress_sender(void *p)
{
    struct stress_arg *a = p;
    struct stress *s = a->s;
    for (int i = 0; i < s->n; i++) {
        int v = a->k * s->n + i;
        if (chan_send(s->c[a->k], &v) != 0)
            atomic_fetch_add(&s->errors, 1);
    }
    return NULL;
}

static void *stress_receiver(void *p)
{
    struct stress_arg *a = p;
    struct stress *s = a->s;
    for (int i = 0; i < s->n; i++) {
        int v = -1;
        if (chan_recv(s->c[a->k], &v) != 0)
            atomic_fetch_add(&s->errors, 1);
        stress_record(s, a->k, v);
    }
    return NULL;
}

/* Sends n values on each channel through one select; a channel's case goes nil once it is done
 * (Go's `c1[k] = nil`). Cases in the order 3, 2, 0, 1 as in Go's test. */
static void *stress_select_sender(void *p)
{
    struct stress *s = p;
    static const int order[4] = {3, 2, 0, 1};
    int cnt[4] = {0}, val[4];
    struct chan_case cs[4];
    for (int i = 0; i < 4 * s->n; i++) {
        for (int j = 0; j < 4; j++) {
            int k = order[j];
            val[k] = (4 + k) * s->n + cnt[k];
            cs_set(&cs[j], cnt[k] < s->n ? s->c[k] : NULL, CHAN_SEND, &val[k]);
        }
        int r = chan_select(cs, 4);
        if (r < 0 || r > 3 || cs[r].chan == NULL || ok_raw(&cs[r]) != 1) {
            atomic_fetch_add(&s->errors, 1);
            return NULL;
        }
        cnt[order[r]]++;
    }
    return NULL;
}

static void *stress_select_receiver(void *p)
{
    struct stress *s = p;
    int cnt[4] = {0}, val[4];
    struct chan_case cs[4];
    for (int i = 0; i < 4 * s->n; i++) {
        for (int k = 0; k < 4; k++) {
            val[k] = -1;
            cs_set(&cs[k], cnt[k] < s->n ? s->c[k] : NULL, CHAN_RECV, &val[k]);
        }
        int r = chan_select(cs, 4);
        if (r < 0 || r > 3 || cs[r].chan == NULL || ok_raw(&cs[r]) != 1) {
            atomic_fetch_add(&s->errors, 1);
            return NULL;
        }
        stress_record(s, r, val[r]);
        cnt[r]++;
    }
    return NULL;
}

/* Go: TestSelectStress. Over 2 unbuffered and 2 buffered (cap 2, 3) channels: per channel a plain
 * sender and a plain receiver of n values each, plus one thread sending n values on each channel
 * through a select and one receiving n from each through a select. Every value arrives exactly
 * once, on the channel it was sent on. */
START_TEST(test_select_stress)
{
    struct stress s;
    s.n = scaled(6000, 2500);
    s.c[0] = mk(sizeof(int), 0);
    s.c[1] = mk(sizeof(int), 0);
    s.c[2] = mk(sizeof(int), 2);
    s.c[3] = mk(sizeof(int), 3);
    s.seen = calloc((size_t)(8 * s.n), sizeof *s.seen);
    ck_assert_ptr_nonnull(s.seen);
    atomic_init(&s.errors, 0);

    struct stress_arg args[4];
    pthread_t t[10];
    for (int k = 0; k < 4; k++) {
        args[k] = (struct stress_arg){&s, k};
        t[2 * k] = spawn(stress_sender, &args[k]);
        t[2 * k + 1] = spawn(stress_receiver, &args[k]);
    }
    t[8] = spawn(stress_select_sender, &s);
    t[9] = spawn(stress_select_receiver, &s);
    for (int i = 0; i < 10; i++)
        join(t[i]);

    ck_assert_int_eq(atomic_load(&s.errors), 0);
    for (int v = 0; v < 8 * s.n; v++)
        if (atomic_load(&s.seen[v]) != 1)
            ck_abort_msg("value %d received %u times", v, (unsigned)atomic_load(&s.seen[v]));
    for (int k = 0; k < 4; k++) {
        ck_assert_uint_eq(chan_len(s.c[k]), 0);
        freec(s.c[k]);
    }
    free(s.seen);
}
END_TEST

/* ---- Non-blocking select racing a send or a close -------------------------------------------- */

struct nbrace {
    _Atomic long gen, done; /* round started by main / finished by the worker */
    _Atomic long failures;
    _Atomic int first_bad; /* the first wrong result (-1000: wrong ok or value) */
    _Atomic int last;      /* the worker's result this round */
    chan_t *c1, *c2;       /* published by the release store of gen */
    int closing;
    int cpu; /* the worker's CPU, or -1: not pinned */
};

/* Spins (about 20-50 us, without yielding: a yield would give the core away and there would
 * be no race left to test) then yields between looks, for a loaded machine. */
static void spin_until(_Atomic long *x, long v)
{
    unsigned spins = 0;
    while (atomic_load_explicit(x, memory_order_acquire) < v)
        if (++spins > 20000)
            sched_yield();
}

/* The n-th CPU (from 0) this thread may run on, or -1. */
static int allowed_cpu(int n)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    for (int k = 0; k < CPU_SETSIZE; k++)
        if (CPU_ISSET(k, &set) && n-- == 0)
            return k;
    return -1;
}

static void pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
}

static void *nbrace_worker(void *p)
{
    struct nbrace *a = p;
    if (a->cpu >= 0)
        pin_self(a->cpu);
    for (long r = 1;; r++) {
        spin_until(&a->gen, r);
        if (a->c1 == NULL) /* main is done */
            break;
        int v1 = -1, v2 = -1;
        struct chan_case cs[2];
        cs_set(&cs[0], a->c1, CHAN_RECV, &v1);
        cs_set(&cs[1], a->c2, CHAN_RECV, &v2);
        int ret = chan_tryselect(cs, 2);
        bool good;
        if (ret == 0)
            good = ok_raw(&cs[0]) == 1 && v1 == 1 && ok_raw(&cs[1]) == OK_UNSET;
        else if (ret == 1)
            good = ok_raw(&cs[0]) == OK_UNSET &&
                   (a->closing ? ok_raw(&cs[1]) == 0 && v2 == 0 : ok_raw(&cs[1]) == 1 && v2 == 2);
        else
            good = false; /* -EAGAIN: "no chan is ready", though one always was */
        if (!good && atomic_fetch_add(&a->failures, 1) == 0)
            atomic_store(&a->first_bad, ret == 0 || ret == 1 ? -1000 : ret);
        atomic_store_explicit(&a->last, ret, memory_order_relaxed);
        atomic_store_explicit(&a->done, r, memory_order_release);
    }
    return NULL;
}

/*
 * c1 holds a value; the worker tryselects {c1, c2} while main makes c2 ready (a value, or a
 * close) and only then drains c1: at every instant one of them is ready.
 *
 * For the race to happen at all, both threads must run at once: the rounds start through a
 * spun-on counter, and the two threads are pinned to two different CPUs when there are two.
 * Main then waits a delay before its operations. Every fourth round the delay is random, from
 * none to a few microseconds; the others aim at the moment the worker's select overlaps main's
 * operations, learnt as we go: with a short delay main is done first and the worker sees c2 (or
 * both ready: c1 or c2 alike), with a long one the worker sees only c1; the delay is steered to
 * where c1 comes out 3 times in 4, between the two regimes.
 *
 * At most 30,000 rounds (10,000 sanitized) and ~3 s (15 s) of them: on a loaded machine a
 * spinning handshake can cost a time slice per round.
 */
static void nbrace_run(int closing)
{
    struct nbrace a;
    atomic_init(&a.gen, 0);
    atomic_init(&a.done, 0);
    atomic_init(&a.failures, 0);
    atomic_init(&a.first_bad, 0);
    atomic_init(&a.last, 0);
    a.closing = closing;
    int main_cpu = allowed_cpu(0);
    a.cpu = main_cpu >= 0 ? allowed_cpu(1) : -1;
    cpu_set_t old;
    bool pinned = a.cpu >= 0 && sched_getaffinity(0, sizeof old, &old) == 0;
    if (pinned)
        pin_self(main_cpu);
    const long max_rounds = scaled(30000, 10000);
    const int64_t stop = chan_now() + (under_sanitizer() ? 15000 : 3000) * MS;
    uint32_t rng = 0x9e3779b9u;
    double aim = 256; /* iterations of the delay loop */
    pthread_t t = spawn(nbrace_worker, &a);
    long r = 1;
    for (; r <= max_rounds && (r <= 100 || chan_now() < stop); r++) {
        chan_t *c1 = mk(sizeof(int), 1), *c2 = mk(sizeof(int), closing ? 0 : 1);
        put_int(c1, 1);
        a.c1 = c1;
        a.c2 = c2;
        rng = rng * 1664525u + 1013904223u;
        unsigned delay = r % 4 == 0 ? (rng >> 20) >> ((rng >> 8) & 7) /* 0..4095, all scales */
                                    : (unsigned)(aim * (0.75 + (rng >> 8) / 33554432.0));
        atomic_store_explicit(&a.gen, r, memory_order_release);
        for (volatile unsigned d = 0; d < delay; d++) {
        }
        if (closing)
            ck_assert_int_eq(chan_close(c2), 0);
        else
            put_int(c2, 2);
        int x, rr = chan_tryrecv(c1, &x);
        ck_assert(rr == 0 || rr == -EAGAIN);
        spin_until(&a.done, r);
        if (r % 4) { /* steer: c1 (main was late) shortens the delay, c2 lengthens it */
            aim *= atomic_load_explicit(&a.last, memory_order_relaxed) == 0 ? 0.99 : 1.0305;
            aim = aim < 1 ? 1 : aim > 65536 ? 65536 : aim;
        }
        freec(c1);
        freec(c2);
    }
    a.c1 = a.c2 = NULL;
    atomic_store_explicit(&a.gen, r, memory_order_release);
    join(t);
    if (pinned)
        (void)pthread_setaffinity_np(pthread_self(), sizeof old, &old);
    ck_assert_msg(atomic_load(&a.failures) == 0,
                  "%ld of %ld non-blocking selects went wrong (first: %d; -11 = -EAGAIN: no case "
                  "ready though one always was; -1000: wrong ok or value)",
                  (long)atomic_load(&a.failures), r - 1, atomic_load(&a.first_bad));
}

/* Go: TestNonblockSelectRace. */
START_TEST(test_nonblock_select_race) { nbrace_run(0); }
END_TEST

/* Go: TestNonblockSelectRace2 (c2 becomes ready by being closed). */
START_TEST(test_nonblock_select_race2) { nbrace_run(1); }
END_TEST

/* ---- Close ----------------------------------------------------------------------------------- */

struct big24 {
    unsigned char b[24];
};

/* Go: closechan waking a goroutine parked in selectgo. The select returns the closed channel's
 * case with ok = false and a zeroed elem; the other case is untouched; and the closed channel can
 * be freed as soon as chan_close has returned, before the select's thread is joined (chan_free's
 * contract). */
START_TEST(test_select_woken_by_close)
{
    size_t caps[] = {0, 2};
    for (size_t k = 0; k < 2; k++) {
        for (int until = 0; until < 2; until++) {
            chan_t *a = mk(sizeof(struct big24), caps[k]), *b = mk(sizeof(struct big24), caps[k]);
            struct big24 ea, eb;
            memset(&ea, 0xAA, sizeof ea);
            memset(&eb, 0xAA, sizeof eb);
            struct chan_case cs[2];
            cs_set(&cs[0], b, CHAN_RECV, &eb);
            cs_set(&cs[1], a, CHAN_RECV, &ea);
            struct selthr st = {cs, 2, until, chan_now() + 120 * 1000 * MS, -1, 0};
            pthread_t t = spawn(sel_thread, &st);
            ck_assert(blocked_receivers_at_least(a, 1));
            ck_assert(blocked_receivers_at_least(b, 1));
            ck_assert_int_eq(chan_close(a), 0);
            ck_assert_int_eq(chan_free(a), 0); /* the woken select never touches a again */
            join(t);
            assert_chosen(cs, 2, st.ret, false);
            ck_assert_int_eq(st.ret, 1);
            ck_assert(all_bytes(&ea, sizeof ea, 0));
            ck_assert(all_bytes(&eb, sizeof eb, 0xAA));
            ck_assert_uint_eq(hchan_waiting(b, CHAN_RECV), 0);
            freec(b);
        }
    }
}
END_TEST

/* A select blocked with a send case on a channel that gets closed: that case, ok = false, nothing
 * sent; the channel is freeable at once (also with a value left in its full buffer). */
START_TEST(test_select_send_woken_by_close)
{
    for (size_t cap = 0; cap < 2; cap++) {
        chan_t *a = mk(sizeof(int), cap), *b = mk(sizeof(int), 0);
        if (cap)
            put_int(a, 100);
        int va = 55, vb = -1;
        struct chan_case cs[2];
        cs_set(&cs[0], b, CHAN_RECV, &vb);
        cs_set(&cs[1], a, CHAN_SEND, &va);
        struct selthr st = {cs, 2, 0, 0, -1, 0};
        pthread_t t = spawn(sel_thread, &st);
        ck_assert(blocked_senders_at_least(a, 1));
        ck_assert(blocked_receivers_at_least(b, 1));
        ck_assert_int_eq(chan_close(a), 0);
        if (cap) { /* the buffered value is still there to receive, then closed */
            ck_assert_int_eq(take_int(a), 100);
            int x = -1;
            ck_assert_int_eq(chan_tryrecv(a, &x), -EPIPE);
            ck_assert_int_eq(x, 0);
        }
        ck_assert_int_eq(chan_free(a), 0);
        join(t);
        assert_chosen(cs, 2, st.ret, false);
        ck_assert_int_eq(st.ret, 1);
        ck_assert_int_eq(vb, -1);
        ck_assert_uint_eq(hchan_waiting(b, CHAN_RECV), 0);
        freec(b);
    }
}
END_TEST

/* One channel as send and receive case of a blocked select (queued on both of its queues), then
 * closed: one case chosen with ok = false, and the channel freeable at once. Also several selects
 * woken by one close. */
START_TEST(test_select_close_wakes_all_and_frees)
{
    for (int round = 0; round < 20; round++) {
        chan_t *a = mk(sizeof(int), 0);
        int vs = 3, vr = -1;
        struct chan_case cs[2];
        cs_set(&cs[0], a, CHAN_SEND, &vs);
        cs_set(&cs[1], a, CHAN_RECV, &vr);
        struct selthr st = {cs, 2, round % 2, chan_now() + 120 * 1000 * MS, -1, 0};
        pthread_t t = spawn(sel_thread, &st);
        ck_assert(blocked_senders_at_least(a, 1));
        ck_assert(blocked_receivers_at_least(a, 1));
        ck_assert_int_eq(chan_close(a), 0);
        ck_assert_int_eq(chan_free(a), 0);
        join(t);
        assert_chosen(cs, 2, st.ret, false);
        if (st.ret == 1)
            ck_assert_int_eq(vr, 0);
        else
            ck_assert_int_eq(vr, -1);
    }

    enum { NT = 4 };
    chan_t *a = mk(sizeof(int), 0), *b[NT];
    int va[NT], vb[NT];
    struct chan_case cs[NT][2];
    struct selthr st[NT];
    pthread_t t[NT];
    for (int i = 0; i < NT; i++) {
        b[i] = mk(sizeof(int), 1);
        va[i] = vb[i] = -1;
        cs_set(&cs[i][0], b[i], CHAN_RECV, &vb[i]);
        cs_set(&cs[i][1], a, CHAN_RECV, &va[i]);
        st[i] = (struct selthr){cs[i], 2, i % 2, CHAN_FOREVER, -1, 0};
        t[i] = spawn(sel_thread, &st[i]);
    }
    ck_assert(blocked_receivers_at_least(a, NT));
    ck_assert_int_eq(chan_close(a), 0);
    ck_assert_int_eq(chan_free(a), 0);
    for (int i = 0; i < NT; i++) {
        join(t[i]);
        assert_chosen(cs[i], 2, st[i].ret, false);
        ck_assert_int_eq(st[i].ret, 1);
        ck_assert_int_eq(va[i], 0);
        ck_assert_int_eq(vb[i], -1);
        freec(b[i]);
    }
}
END_TEST

/* Go: select on a closed channel: a send case is ready and is chosen with ok = false (Go panics;
 * libchan reports it), nothing is sent; a receive case gets the buffered values, then ok = false
 * with a zeroed elem. */
START_TEST(test_select_send_on_closed_chooses_ok_false)
{
    for (size_t cap = 0; cap < 4; cap += 3) {
        chan_t *c = mk(sizeof(int), cap), *e = mk(sizeof(int), 0);
        ck_assert_int_eq(chan_close(c), 0);
        int v = 77, x = -1;
        struct chan_case one[1];
        cs_set(&one[0], c, CHAN_SEND, &v);
        for (int form = 0; form < 4; form++) {
            ok_reset(one, 1);
            int r = form == 0   ? chan_tryselect(one, 1)
                    : form == 1 ? chan_select(one, 1)
                    : form == 2 ? chan_select_until(one, 1, 0)
                                : chan_select_until(one, 1, CHAN_FOREVER);
            assert_chosen(one, 1, r, false);
        }
        struct chan_case cs[3];
        cs_set(&cs[0], e, CHAN_RECV, &x);
        cs_set(&cs[1], c, CHAN_SEND, &v);
        cs_set(&cs[2], NULL, CHAN_RECV, &x);
        for (int i = 0; i < 50; i++) {
            ok_reset(cs, 3);
            int r = i % 2 ? chan_tryselect(cs, 3) : chan_select(cs, 3);
            assert_chosen(cs, 3, r, false);
            ck_assert_int_eq(r, 1);
        }
        ck_assert_int_eq(x, -1);
        ck_assert_uint_eq(chan_len(c), 0);
        freec(c);
        freec(e);
    }

    chan_t *c = mk(sizeof(int), 2);
    put_int(c, 5);
    put_int(c, 6);
    ck_assert_int_eq(chan_close(c), 0);
    int x = -1;
    struct chan_case cs[1];
    cs_set(&cs[0], c, CHAN_RECV, &x);
    ck_assert_int_eq(chan_tryselect(cs, 1), 0);
    assert_chosen(cs, 1, 0, true);
    ck_assert_int_eq(x, 5);
    ok_reset(cs, 1);
    ck_assert_int_eq(chan_select(cs, 1), 0);
    assert_chosen(cs, 1, 0, true);
    ck_assert_int_eq(x, 6);
    for (int i = 0; i < 3; i++) {
        x = -1;
        ok_reset(cs, 1);
        int r = i == 0   ? chan_tryselect(cs, 1)
                : i == 1 ? chan_select(cs, 1)
                         : chan_select_until(cs, 1, 0);
        assert_chosen(cs, 1, r, false);
        ck_assert_int_eq(x, 0);
    }
    freec(c);
}
END_TEST

/* ---- Deadlines ------------------------------------------------------------------------------- */

/* select_until that nobody answers: -ETIMEDOUT, never early, at most late_bound() late, no ok
 * written, and gone from every queue (the channels free at once). A past deadline does not stop a
 * ready case. */
START_TEST(test_select_until_expires)
{
    chan_t *a = mk(sizeof(int), 0), *b = mk(sizeof(int), 0), *f = mk(sizeof(int), 1);
    int va = -1, vb = 5, vf = -1;
    struct chan_case cs[4];
    cs_set(&cs[0], a, CHAN_RECV, &va);
    cs_set(&cs[1], b, CHAN_SEND, &vb);
    cs_set(&cs[2], NULL, CHAN_RECV, &va);
    cs_set(&cs[3], f, CHAN_RECV, &vf);
    int64_t waits[] = {1 * MS, 20 * MS, 100 * MS};
    for (int w = 0; w < 3; w++) {
        expect_timeout(cs, 4, waits[w], "nobody answers");
        assert_untouched(cs, 4);
        ck_assert_int_eq(va, -1);
        ck_assert_int_eq(vf, -1);
        ck_assert_uint_eq(hchan_waiting(a, CHAN_RECV), 0);
        ck_assert_uint_eq(hchan_waiting(b, CHAN_SEND), 0);
        ck_assert_uint_eq(hchan_waiting(f, CHAN_RECV), 0);
    }
    ck_assert_int_eq(chan_select_until(cs, 4, chan_now() - MS), -ETIMEDOUT);
    ck_assert_int_eq(chan_select_until(cs, 4, 0), -ETIMEDOUT);
    ck_assert_int_eq(chan_select_until(cs, 4, INT64_MIN), -ETIMEDOUT);
    assert_untouched(cs, 4);

    put_int(f, 3); /* ready: the past deadline does not matter */
    int r = chan_select_until(cs, 4, 0);
    assert_chosen(cs, 4, r, true);
    ck_assert_int_eq(r, 3);
    ck_assert_int_eq(vf, 3);
    freec(a);
    freec(b);
    freec(f);

    /* More than 8 cases (heap bookkeeping): the same. */
    enum { NB = 20 };
    chan_t *c[NB];
    int v[NB];
    struct chan_case many[NB];
    for (int i = 0; i < NB; i++) {
        c[i] = mk(sizeof(int), i % 3);
        v[i] = i;
        cs_set(&many[i], c[i], i % 2 ? CHAN_RECV : CHAN_SEND, &v[i]);
        if (i % 2 == 0 && i % 3)
            for (int j = 0; j < i % 3; j++)
                put_int(c[i], 0); /* send cases into full buffers */
    }
    expect_timeout(many, NB, 30 * MS, "nobody answers");
    assert_untouched(many, NB);
    for (int i = 0; i < NB; i++) {
        ck_assert_uint_eq(hchan_waiting(c[i], CHAN_SEND) + hchan_waiting(c[i], CHAN_RECV), 0);
        freec(c[i]);
    }
}
END_TEST

/* select_until beaten by a value (or a receiver) arriving long before its deadline. */
START_TEST(test_select_until_beaten_by_value)
{
    chan_t *a = mk(sizeof(int), 0), *b = mk(sizeof(int), 0), *c = mk(sizeof(int), 4);
    int va = -1, vb = -1;
    struct chan_case cs[2];
    cs_set(&cs[0], a, CHAN_RECV, &va);
    cs_set(&cs[1], b, CHAN_RECV, &vb);
    struct selthr st = {cs, 2, 1, chan_now() + 120 * 1000 * MS, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    ck_assert(blocked_receivers_at_least(a, 1));
    ck_assert(blocked_receivers_at_least(b, 1));
    int v = 42;
    ck_assert_int_eq(chan_send(b, &v), 0);
    join(t);
    assert_chosen(cs, 2, st.ret, true);
    ck_assert_int_eq(st.ret, 1);
    ck_assert_int_eq(vb, 42);
    ck_assert_int_eq(va, -1);
    ck_assert(st.t_end < st.deadline);
    ck_assert_uint_eq(hchan_waiting(a, CHAN_RECV), 0);

    /* A send case, beaten by a receiver. */
    int seven = 7;
    cs_set(&cs[0], a, CHAN_SEND, &seven);
    cs_set(&cs[1], b, CHAN_RECV, &vb);
    st = (struct selthr){cs, 2, 1, chan_now() + 120 * 1000 * MS, -1, 0};
    t = spawn(sel_thread, &st);
    ck_assert(blocked_senders_at_least(a, 1));
    ck_assert(blocked_receivers_at_least(b, 1));
    int x = -1;
    ck_assert_int_eq(chan_recv(a, &x), 0);
    ck_assert_int_eq(x, 7);
    join(t);
    assert_chosen(cs, 2, st.ret, true);
    ck_assert_int_eq(st.ret, 0);
    ck_assert_uint_eq(hchan_waiting(b, CHAN_RECV), 0);

    /* A buffered channel: a value sent into the empty buffer goes to the waiting select. */
    int vc = -1;
    cs_set(&cs[0], c, CHAN_RECV, &vc);
    st = (struct selthr){cs, 1, 1, chan_now() + 120 * 1000 * MS, -1, 0};
    t = spawn(sel_thread, &st);
    ck_assert(blocked_receivers_at_least(c, 1));
    put_int(c, 9);
    join(t);
    assert_chosen(cs, 1, st.ret, true);
    ck_assert_int_eq(vc, 9);
    ck_assert_uint_eq(chan_len(c), 0);
    freec(a);
    freec(b);
    freec(c);
}
END_TEST

/* ---- Invalid arguments ----------------------------------------------------------------------- */

struct einval_state {
    chan_t *full, *space, *u;
    int vr, vs, vu;
};

static void einval_check_state(struct einval_state *s)
{
    ck_assert_uint_eq(chan_len(s->full), 4);
    ck_assert_uint_eq(chan_len(s->space), 0);
    ck_assert_uint_eq(hchan_waiting(s->u, CHAN_SEND), 1);
    ck_assert_uint_eq(hchan_waiting(s->u, CHAN_RECV), 0);
    ck_assert_int_eq(s->vr, -1);
    ck_assert_int_eq(s->vu, -1);
}

/* All three forms give -EINVAL, consume nothing, block on nothing, write no ok. */
static void expect_einval(struct einval_state *s, struct chan_case *cs, size_t n, size_t check_n,
                          const char *what)
{
    for (int form = 0; form < 3; form++) {
        int r = form == 0   ? chan_select(cs, n)
                : form == 1 ? chan_tryselect(cs, n)
                            : chan_select_until(cs, n, chan_now() + 120 * 1000 * MS);
        ck_assert_msg(r == -EINVAL, "%s, form %d: got %d, want -EINVAL", what, form, r);
        einval_check_state(s);
        if (cs)
            assert_untouched(cs, check_n);
    }
}

/* Fills cs[0..3] with valid, ready cases: receive from a full buffer, send into an empty one,
 * receive from an unbuffered channel with a waiting sender, a nil case. */
static void einval_cases(struct einval_state *s, struct chan_case *cs)
{
    cs_set(&cs[0], s->full, CHAN_RECV, &s->vr);
    cs_set(&cs[1], s->space, CHAN_SEND, &s->vs);
    cs_set(&cs[2], s->u, CHAN_RECV, &s->vu);
    cs_set(&cs[3], NULL, CHAN_SEND, NULL);
}

/* chan.h: a bad select is refused before anything happens (-EINVAL). Each bad select also holds
 * ready cases (placed before the bad one) that must not have been consumed. */
START_TEST(test_select_einval_nothing_consumed)
{
    struct einval_state s;
    s.full = mk(sizeof(int), 4);
    s.space = mk(sizeof(int), 4);
    s.u = mk(sizeof(int), 0);
    s.vr = s.vu = -1;
    s.vs = 5;
    for (int i = 0; i < 4; i++)
        put_int(s.full, i);
    int uval = 99;
    struct opthr snd = {s.u, &uval, -1, NULL};
    pthread_t ts = spawn(send_thread, &snd);
    ck_assert(blocked_senders_at_least(s.u, 1));
    einval_check_state(&s);

    /* cases == NULL with n > 0 */
    expect_einval(&s, NULL, 1, 0, "cases NULL, n 1");
    expect_einval(&s, NULL, 5, 0, "cases NULL, n 5");
    expect_einval(&s, NULL, CHAN_SELECT_MAX + 1, 0, "cases NULL, n MAX+1");
    expect_einval(&s, NULL, SIZE_MAX, 0, "cases NULL, n SIZE_MAX");

    /* n > CHAN_SELECT_MAX, on a real array of valid, ready cases. */
    size_t nbig = (size_t)CHAN_SELECT_MAX + 1;
    struct chan_case *big = malloc(nbig * sizeof *big);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < nbig; i++)
        cs_set(&big[i], s.full, CHAN_RECV, &s.vr);
    expect_einval(&s, big, nbig, nbig, "n = CHAN_SELECT_MAX + 1");

    /* A bad dir, last, on a real channel and on a nil channel. */
    struct chan_case cs[5];
    const int bad_dirs[] = {0, 3, 4, -1, 255};
    for (size_t k = 0; k < sizeof bad_dirs / sizeof bad_dirs[0]; k++) {
        for (int nilchan = 0; nilchan < 2; nilchan++) {
            einval_cases(&s, cs);
            cs_set(&cs[4], nilchan ? NULL : s.full, (enum chan_dir)bad_dirs[k], &s.vr);
            char what[64];
            snprintf(what, sizeof what, "dir %d on a %s case", bad_dirs[k],
                     nilchan ? "nil" : "real");
            expect_einval(&s, cs, 5, 5, what);
            /* first, too */
            struct chan_case c2[5];
            einval_cases(&s, &c2[1]);
            cs_set(&c2[0], nilchan ? NULL : s.space, (enum chan_dir)bad_dirs[k], &s.vs);
            expect_einval(&s, c2, 5, 5, what);
        }
    }

    /* A send case with elem NULL on a channel of elemsize > 0. */
    einval_cases(&s, cs);
    cs_set(&cs[4], s.space, CHAN_SEND, NULL);
    expect_einval(&s, cs, 5, 5, "send elem NULL");
    einval_cases(&s, cs);
    cs_set(&cs[4], s.u, CHAN_SEND, NULL); /* u has a waiting sender, not receiver */
    expect_einval(&s, cs, 5, 5, "send elem NULL on unbuffered");

    /* More than 8 cases: the bad one is the last of 40. */
    for (size_t i = 0; i < 40; i += 4)
        einval_cases(&s, &big[i]);
    cs_set(&big[39], s.full, (enum chan_dir)0, &s.vr);
    expect_einval(&s, big, 40, 40, "bad dir, case 39 of 40");
    cs_set(&big[39], s.space, CHAN_SEND, NULL);
    expect_einval(&s, big, 40, 40, "send elem NULL, case 39 of 40");
    free(big);

    /* Nothing was lost: the waiting sender is still there with its value. */
    int x = -1;
    ck_assert_int_eq(chan_recv(s.u, &x), 0);
    ck_assert_int_eq(x, 99);
    join(ts);
    ck_assert_int_eq(snd.ret, 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(take_int(s.full), i);
    freec(s.full);
    freec(s.space);
    freec(s.u);
}
END_TEST

/* ---- Signal-only channels and discarded values ----------------------------------------------- */

/* elemsize 0 (Go's chan struct{}): elem is ignored and may be NULL for send and receive cases; a
 * receive case with elem NULL on an int channel discards the value. */
START_TEST(test_select_signal_channel)
{
    chan_t *s2 = mk(0, 2), *s0 = mk(0, 0);
    struct chan_case cs[1];
    for (int i = 0; i < 2; i++) {
        cs_set(&cs[0], s2, CHAN_SEND, NULL);
        ck_assert_int_eq(chan_tryselect(cs, 1), 0);
        assert_chosen(cs, 1, 0, true);
    }
    cs_set(&cs[0], s2, CHAN_SEND, NULL);
    ck_assert_int_eq(chan_tryselect(cs, 1), -EAGAIN);
    assert_untouched(cs, 1);
    ck_assert_uint_eq(chan_len(s2), 2);
    for (int i = 0; i < 2; i++) {
        cs_set(&cs[0], s2, CHAN_RECV, NULL);
        ck_assert_int_eq(chan_select(cs, 1), 0);
        assert_chosen(cs, 1, 0, true);
    }
    cs_set(&cs[0], s2, CHAN_RECV, NULL);
    ck_assert_int_eq(chan_tryselect(cs, 1), -EAGAIN);

    /* Unbuffered: a blocked receive case, then a blocked send case. */
    for (int dir = 0; dir < 2; dir++) {
        cs_set(&cs[0], s0, dir ? CHAN_SEND : CHAN_RECV, NULL);
        struct selthr st = {cs, 1, dir, CHAN_FOREVER, -1, 0};
        pthread_t t = spawn(sel_thread, &st);
        if (dir) {
            ck_assert(blocked_senders_at_least(s0, 1));
            ck_assert_int_eq(chan_recv(s0, NULL), 0);
        } else {
            ck_assert(blocked_receivers_at_least(s0, 1));
            ck_assert_int_eq(chan_send(s0, NULL), 0);
        }
        join(t);
        assert_chosen(cs, 1, st.ret, true);
    }

    ck_assert_int_eq(chan_close(s2), 0);
    cs_set(&cs[0], s2, CHAN_RECV, NULL);
    ck_assert_int_eq(chan_tryselect(cs, 1), 0);
    assert_chosen(cs, 1, 0, false);

    chan_t *c = mk(sizeof(int), 1);
    put_int(c, 4);
    cs_set(&cs[0], c, CHAN_RECV, NULL);
    ck_assert_int_eq(chan_tryselect(cs, 1), 0);
    assert_chosen(cs, 1, 0, true);
    ck_assert_uint_eq(chan_len(c), 0);
    freec(c);
    freec(s0);
    freec(s2);
}
END_TEST

/* ---- Blocked selects and buffers ------------------------------------------------------------ */

/* Go's chanrecv on a full buffer with a sender waiting: the receiver takes the head and the
 * waiting sender's value goes to the tail. Here the waiting sender is a select's send case. Also
 * a blocked receive case with elem NULL: the value is discarded, the case still chosen. */
START_TEST(test_select_blocked_send_into_full_buffer)
{
    chan_t *c = mk(sizeof(int), 2), *other = mk(sizeof(int), 0);
    put_int(c, 1);
    put_int(c, 2);
    int three = 3, vo = -1;
    struct chan_case cs[2];
    cs_set(&cs[0], other, CHAN_RECV, &vo);
    cs_set(&cs[1], c, CHAN_SEND, &three);
    struct selthr st = {cs, 2, 0, 0, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert(blocked_receivers_at_least(other, 1));
    int x = -1;
    ck_assert_int_eq(chan_recv(c, &x), 0);
    ck_assert_int_eq(x, 1);
    join(t);
    assert_chosen(cs, 2, st.ret, true);
    ck_assert_int_eq(st.ret, 1);
    ck_assert_uint_eq(chan_len(c), 2);
    ck_assert_int_eq(take_int(c), 2);
    ck_assert_int_eq(take_int(c), 3);
    ck_assert_uint_eq(hchan_waiting(other, CHAN_RECV), 0);

    /* A blocked receive case with elem NULL, woken by a send, then by a close. */
    for (int closing = 0; closing < 2; closing++) {
        cs_set(&cs[0], other, CHAN_RECV, &vo);
        cs_set(&cs[1], c, CHAN_RECV, NULL);
        st = (struct selthr){cs, 2, 1, CHAN_FOREVER, -1, 0};
        t = spawn(sel_thread, &st);
        ck_assert(blocked_receivers_at_least(c, 1));
        ck_assert(blocked_receivers_at_least(other, 1));
        if (closing)
            ck_assert_int_eq(chan_close(c), 0);
        else
            put_int(c, 4);
        join(t);
        assert_chosen(cs, 2, st.ret, !closing);
        ck_assert_int_eq(st.ret, 1);
        ck_assert_uint_eq(chan_len(c), 0);
    }
    ck_assert_int_eq(vo, -1);
    freec(c);
    freec(other);
}
END_TEST

static void on_sigusr1(int sig) { (void)sig; }

struct sigsel {
    struct chan_case cs[2];
    int va, vb;
    int64_t deadline;
    int ret1, ret2;
    int64_t t1;
    _Atomic int phase; /* 1: in the select_until, 2: in the chan_select, 3: done */
};

static void *sigsel_thread(void *p)
{
    struct sigsel *a = p;
    atomic_store(&a->phase, 1);
    a->ret1 = chan_select_until(a->cs, 2, a->deadline);
    a->t1 = chan_now();
    ok_reset(a->cs, 2);
    atomic_store(&a->phase, 2);
    a->ret2 = chan_select(a->cs, 2);
    atomic_store(&a->phase, 3);
    return NULL;
}

/* chan.h: no call returns -EINTR; a signal during a blocked select is absorbed and the wait goes
 * on to the same deadline (installed without SA_RESTART, so a bare futex wait would fail). */
START_TEST(test_select_signals_absorbed)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

    chan_t *a = mk(sizeof(int), 0), *b = mk(sizeof(int), 0);
    struct sigsel s;
    s.va = s.vb = -1;
    cs_set(&s.cs[0], a, CHAN_RECV, &s.va);
    cs_set(&s.cs[1], b, CHAN_RECV, &s.vb);
    s.deadline = chan_now() + 300 * MS;
    s.ret1 = s.ret2 = 1;
    atomic_init(&s.phase, 0);
    pthread_t t = spawn(sigsel_thread, &s);
    /* Phase 1: signals until the select_until has returned (at its deadline, we expect). */
    while (atomic_load(&s.phase) < 2) {
        ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
        sleep_ms(5);
    }
    ck_assert(blocked_receivers_at_least(b, 1)); /* phase 2: queued in chan_select */
    ck_assert_int_eq(s.ret1, -ETIMEDOUT);
    ck_assert(s.t1 >= s.deadline);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
        sleep_ms(2);
    }
    ck_assert_int_eq(atomic_load(&s.phase), 2); /* still blocked */
    int v = 17;
    ck_assert_int_eq(chan_send(b, &v), 0);
    join(t);
    assert_chosen(s.cs, 2, s.ret2, true);
    ck_assert_int_eq(s.ret2, 1);
    ck_assert_int_eq(s.vb, 17);
    ck_assert_int_eq(s.va, -1);
    freec(a);
    freec(b);
}
END_TEST

/* Elements of CHAN_ELEMSIZE_MAX bytes through selects: buffered, handed to a blocked receive
 * case, taken from a blocked send case, and zeroed on close - every byte, and not one more. */
START_TEST(test_select_large_elements)
{
    const size_t esz = CHAN_ELEMSIZE_MAX;
    unsigned char *out = malloc(esz), *in = malloc(esz + 64), *want = malloc(esz);
    ck_assert(out && in && want);
    pattern(out, esz, 3);
    memcpy(want, out, esz);

    /* Buffered: a send case, then a receive case. */
    chan_t *b = mk(esz, 2);
    struct chan_case cs[2];
    cs_set(&cs[0], b, CHAN_SEND, out);
    ck_assert_int_eq(chan_tryselect(cs, 1), 0);
    memset(in, 0xEE, esz + 64);
    cs_set(&cs[0], b, CHAN_RECV, in);
    ck_assert_int_eq(chan_select(cs, 1), 0);
    ck_assert_int_eq(memcmp(in, want, esz), 0);
    ck_assert(all_bytes(in + esz, 64, 0xEE));
    freec(b);

    /* Unbuffered: a blocked receive case gets a plain send's value ... */
    chan_t *u = mk(esz, 0), *other = mk(esz, 0);
    memset(in, 0xEE, esz + 64);
    cs_set(&cs[0], other, CHAN_RECV, in);
    cs_set(&cs[1], u, CHAN_RECV, in);
    struct selthr st = {cs, 2, 0, 0, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    ck_assert(blocked_receivers_at_least(u, 1));
    ck_assert_int_eq(chan_send(u, out), 0);
    join(t);
    assert_chosen(cs, 2, st.ret, true);
    ck_assert_int_eq(st.ret, 1);
    ck_assert_int_eq(memcmp(in, want, esz), 0);
    ck_assert(all_bytes(in + esz, 64, 0xEE));

    /* ... a blocked send case hands its value to a plain receive ... */
    cs_set(&cs[0], other, CHAN_RECV, in);
    cs_set(&cs[1], u, CHAN_SEND, out);
    st = (struct selthr){cs, 2, 0, 0, -1, 0};
    t = spawn(sel_thread, &st);
    ck_assert(blocked_senders_at_least(u, 1));
    unsigned char *got = malloc(esz);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(chan_recv(u, got), 0);
    join(t);
    assert_chosen(cs, 2, st.ret, true);
    ck_assert_int_eq(memcmp(got, want, esz), 0);

    /* ... and a close zeroes a blocked receive case's element. */
    memset(in, 0xAA, esz + 64);
    cs_set(&cs[0], other, CHAN_RECV, got);
    cs_set(&cs[1], u, CHAN_RECV, in);
    st = (struct selthr){cs, 2, 0, 0, -1, 0};
    t = spawn(sel_thread, &st);
    ck_assert(blocked_receivers_at_least(u, 1));
    ck_assert_int_eq(chan_close(u), 0);
    ck_assert_int_eq(chan_free(u), 0);
    join(t);
    assert_chosen(cs, 2, st.ret, false);
    ck_assert(all_bytes(in, esz, 0));
    ck_assert(all_bytes(in + esz, 64, 0xAA));
    ck_assert_int_eq(memcmp(got, want, esz), 0); /* the other case's element untouched */
    freec(other);
    free(out);
    free(in);
    free(want);
    free(got);
}
END_TEST

/* ---- Many cases ------------------------------------------------------------------------------ */

/* A select of 5000 cases: none ready, timing out, blocked until another thread makes one ready,
 * and non-blocking with one ready. Afterwards no queue holds anything of it. */
START_TEST(test_select_many_cases)
{
    enum { N = 5000, K = 3777 };
    chan_t **c = calloc(N, sizeof *c);
    struct chan_case *cs = calloc(N, sizeof *cs);
    int *v = calloc(N, sizeof *v);
    ck_assert(c && cs && v);
    for (int i = 0; i < N; i++) {
        c[i] = mk(sizeof(int), 0);
        v[i] = -1;
        cs_set(&cs[i], c[i], CHAN_RECV, &v[i]);
    }
    ck_assert_int_eq(chan_tryselect(cs, N), -EAGAIN);
    int64_t d = chan_now() + 20 * MS;
    ck_assert_int_eq(chan_select_until(cs, N, d), -ETIMEDOUT);
    ck_assert(chan_now() >= d);
    assert_untouched(cs, N);
    for (int i = 0; i < N; i++)
        ck_assert_uint_eq(hchan_waiting(c[i], CHAN_RECV), 0);

    /* Blocked on all 5000; main makes one ready. */
    struct selthr st = {cs, N, 0, 0, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    for (int i = 0; i < N; i++)
        ck_assert(blocked_receivers_at_least(c[i], 1));
    int val = 123456;
    ck_assert_int_eq(chan_send(c[K], &val), 0);
    join(t);
    assert_chosen(cs, N, st.ret, true);
    ck_assert_int_eq(st.ret, K);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(v[i], i == K ? 123456 : -1);
        ck_assert_uint_eq(hchan_waiting(c[i], CHAN_RECV), 0);
    }

    /* Non-blocking, with a sender waiting on c[123]. */
    int five = 5;
    struct opthr snd = {c[123], &five, -1, NULL};
    t = spawn(send_thread, &snd);
    ck_assert(blocked_senders_at_least(c[123], 1));
    ok_reset(cs, N);
    int r = chan_tryselect(cs, N);
    assert_chosen(cs, N, r, true);
    ck_assert_int_eq(r, 123);
    ck_assert_int_eq(v[123], 5);
    join(t);
    ck_assert_int_eq(snd.ret, 0);

    /* Mixed directions, one send case ready (room in a buffer). */
    chan_t *bb = mk(sizeof(int), 1);
    int x = 31;
    for (int i = 0; i < N; i += 2)
        cs_set(&cs[i], c[i], CHAN_SEND, &v[i]);
    cs_set(&cs[2500], bb, CHAN_SEND, &x);
    ok_reset(cs, N);
    r = chan_tryselect(cs, N);
    assert_chosen(cs, N, r, true);
    ck_assert_int_eq(r, 2500);
    ck_assert_int_eq(take_int(bb), 31);
    freec(bb);

    for (int i = 0; i < N; i++)
        freec(c[i]);
    free(c);
    free(cs);
    free(v);
}
END_TEST

/* n == CHAN_SELECT_MAX is allowed: 65536 cases, all on one channel (chan.h: the same channel may
 * appear in several cases). Blocked, it is queued 65536 times; one value wakes it once and takes
 * all of its sudogs off the queue. */
START_TEST(test_select_max_cases_one_channel)
{
    const size_t n = CHAN_SELECT_MAX;
    chan_t *c = mk(sizeof(int), 1);
    struct chan_case *cs = malloc(n * sizeof *cs);
    ck_assert_ptr_nonnull(cs);
    int v = -1;
    for (size_t i = 0; i < n; i++)
        cs_set(&cs[i], c, CHAN_RECV, &v);
    ck_assert_int_eq(chan_tryselect(cs, n), -EAGAIN);
    assert_untouched(cs, n);
    put_int(c, 7);
    int r = chan_tryselect(cs, n);
    assert_chosen(cs, n, r, true);
    ck_assert_int_eq(v, 7);

    ok_reset(cs, n);
    int64_t d = chan_now() + 10 * MS;
    ck_assert_int_eq(chan_select_until(cs, n, d), -ETIMEDOUT);
    ck_assert(chan_now() >= d);
    assert_untouched(cs, n);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);

    struct selthr st = {cs, n, 0, 0, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    ck_assert(blocked_receivers_at_least(c, n));
    put_int(c, 8);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);
    join(t);
    assert_chosen(cs, n, st.ret, true);
    ck_assert_int_eq(v, 8);
    ck_assert_uint_eq(chan_len(c), 0);
    freec(c);
    free(cs);
}
END_TEST

/* ---- Memory: none up to 8 cases, -ENOMEM (nothing done) beyond ------------------------------- */

extern void *(*chan_malloc_hook)(size_t size); /* chan_internal.h: the library's fault injection */
static _Atomic long hook_calls;

static void *failing_malloc(size_t size)
{
    (void)size;
    atomic_fetch_add(&hook_calls, 1);
    return NULL;
}

START_TEST(test_select_alloc_and_enomem)
{
    enum { NS = 8, NL = 100, READY = 60 };
    chan_t *c[NL];
    int v[NL];
    struct chan_case cs[NL];
    for (int i = 0; i < NL; i++) {
        c[i] = mk(sizeof(int), i < NS ? 0 : 1);
        v[i] = -1;
        cs_set(&cs[i], c[i], CHAN_RECV, &v[i]);
    }
    chan_malloc_hook = failing_malloc;

    /* Up to 8 cases: no allocation at all, in any form. */
    ck_assert_int_eq(chan_tryselect(cs, NS), -EAGAIN);
    ck_assert_int_eq(chan_select_until(cs, NS, chan_now() + 5 * MS), -ETIMEDOUT);
    struct selthr st = {cs, NS, 0, 0, -1, 0};
    pthread_t t = spawn(sel_thread, &st);
    ck_assert(blocked_receivers_at_least(c[5], 1));
    int val = 55;
    ck_assert_int_eq(chan_send(c[5], &val), 0);
    join(t);
    assert_chosen(cs, NS, st.ret, true);
    ck_assert_int_eq(st.ret, 5);
    ck_assert_int_eq(atomic_load(&hook_calls), 0);

    /* 100 cases, one ready: -ENOMEM with nothing done, or (if no memory was needed) the case. */
    ok_reset(cs, NL);
    put_int(c[READY], 60);
    int r = chan_tryselect(cs, NL);
    if (r == -ENOMEM) {
        assert_untouched(cs, NL);
        ck_assert_uint_eq(chan_len(c[READY]), 1);
        ck_assert_int_eq(v[READY], -1);
        (void)take_int(c[READY]);
    } else {
        assert_chosen(cs, NL, r, true);
        ck_assert_int_eq(r, READY);
    }
    ok_reset(cs, NL);
    r = chan_select_until(cs, NL, chan_now() + 5 * MS);
    ck_assert_msg(r == -ENOMEM || r == -ETIMEDOUT, "got %d", r);
    assert_untouched(cs, NL);
    for (int i = 0; i < NL; i++)
        ck_assert_uint_eq(hchan_waiting(c[i], CHAN_RECV), 0);

    chan_malloc_hook = NULL;
    put_int(c[READY], 61);
    r = chan_select(cs, NL);
    assert_chosen(cs, NL, r, true);
    ck_assert_int_eq(r, READY);
    ck_assert_int_eq(v[READY], 61);
    for (int i = 0; i < NL; i++)
        freec(c[i]);
}
END_TEST

/* ---- Races between wakers -------------------------------------------------------------------- */

/* Two cases of a blocked select become ready at the same moment (the bug Go's
 * test/chan/doubleselect.go guards against): exactly one proceeds; the other value stays with
 * its sender (unbuffered: the sender ends up queued) or in its buffer. */
START_TEST(test_select_two_wakers_one_wins)
{
    const int rounds = scaled(400, 150);
    const int64_t end = budget_end(2000, 8000);
    for (int round = 0; more_rounds(round, rounds, end); round++) {
        size_t cap = (size_t)(round % 2);
        chan_t *ch[2] = {mk(sizeof(int), cap), mk(sizeof(int), cap)};
        int got[2] = {-1, -1};
        struct chan_case cs[2];
        cs_set(&cs[0], ch[0], CHAN_RECV, &got[0]);
        cs_set(&cs[1], ch[1], CHAN_RECV, &got[1]);
        struct selthr st = {cs, 2, 0, 0, -1, 0};
        pthread_t ts = spawn(sel_thread, &st);
        ck_assert(blocked_receivers_at_least(ch[0], 1));
        ck_assert(blocked_receivers_at_least(ch[1], 1));
        _Atomic int go;
        atomic_init(&go, 0);
        int val[2] = {100, 200};
        struct opthr snd[2];
        pthread_t tt[2];
        for (int i = 0; i < 2; i++) {
            snd[i] = (struct opthr){ch[i], &val[i], -1, &go};
            tt[i] = spawn(send_thread, &snd[i]);
        }
        atomic_store_explicit(&go, 1, memory_order_release);
        join(ts);
        assert_chosen(cs, 2, st.ret, true);
        int w = st.ret, l = !w;
        ck_assert_int_eq(got[w], val[w]);
        ck_assert_int_eq(got[l], -1);
        if (cap == 0) {
            ck_assert(blocked_senders_at_least(ch[l], 1));
            int x = -1;
            ck_assert_int_eq(chan_recv(ch[l], &x), 0);
            ck_assert_int_eq(x, val[l]);
        }
        for (int i = 0; i < 2; i++) {
            join(tt[i]);
            ck_assert_int_eq(snd[i].ret, 0);
        }
        if (cap) {
            ck_assert_uint_eq(chan_len(ch[w]), 0);
            ck_assert_uint_eq(chan_len(ch[l]), 1);
            ck_assert_int_eq(take_int(ch[l]), val[l]);
        }
        freec(ch[0]);
        freec(ch[1]);
    }
}
END_TEST

struct closerace_sel {
    struct chan_case cs[2];
    chan_t *e;
    int ret, ret2;
    int64_t d2, t2;
};

static void *closerace_sel_thread(void *p)
{
    struct closerace_sel *a = p;
    a->ret = chan_select(a->cs, 2);
    /* The same thread blocks again: a stray second wake-up from the race must not end it early. */
    int x = -1;
    struct chan_case k[1];
    cs_set(&k[0], a->e, CHAN_RECV, &x);
    a->d2 = chan_now() + 3 * MS;
    a->ret2 = chan_select_until(k, 1, a->d2);
    a->t2 = chan_now();
    return NULL;
}

/* A close and a send race to wake one select: it is woken exactly once, by one of them; the
 * sender's value is then either received by the select or still waiting. */
START_TEST(test_select_close_races_send)
{
    const int rounds = scaled(300, 100);
    const int64_t end = budget_end(2000, 8000);
    int by_close = 0, by_send = 0, round = 0;
    for (; more_rounds(round, rounds, end); round++) {
        chan_t *a = mk(sizeof(int), 0), *b = mk(sizeof(int), 0);
        struct closerace_sel s;
        int va = -1, vb = -1;
        cs_set(&s.cs[0], a, CHAN_RECV, &va);
        cs_set(&s.cs[1], b, CHAN_RECV, &vb);
        s.e = mk(sizeof(int), 0);
        s.ret = s.ret2 = -1;
        pthread_t ts = spawn(closerace_sel_thread, &s);
        ck_assert(blocked_receivers_at_least(a, 1));
        ck_assert(blocked_receivers_at_least(b, 1));
        _Atomic int go;
        atomic_init(&go, 0);
        int seven = 7;
        struct opthr cl = {a, NULL, -1, &go}, sd = {b, &seven, -1, &go};
        pthread_t tc = spawn(close_thread, &cl), tsd = spawn(send_thread, &sd);
        atomic_store_explicit(&go, 1, memory_order_release);
        join(tc);
        ck_assert_int_eq(cl.ret, 0);
        /* Closed: free a as soon as chan_free allows, racing the select if it completed through
         * b and is still leaving a (chan_free: -EBUSY until it has). */
        free_when_allowed(a);
        join(ts);
        if (s.ret == 0) {
            by_close++;
            assert_chosen(s.cs, 2, 0, false);
            ck_assert_int_eq(va, 0);
            ck_assert_int_eq(vb, -1);
            int x = -1;
            ck_assert_int_eq(chan_recv(b, &x), 0); /* the sender is still waiting */
            ck_assert_int_eq(x, 7);
        } else {
            by_send++;
            assert_chosen(s.cs, 2, s.ret, true);
            ck_assert_int_eq(s.ret, 1);
            ck_assert_int_eq(vb, 7);
            ck_assert_int_eq(va, -1);
        }
        join(tsd);
        ck_assert_int_eq(sd.ret, 0);
        ck_assert_int_eq(s.ret2, -ETIMEDOUT);
        ck_assert_msg(s.t2 >= s.d2, "round %d: the next wait ended %lld ns early", round,
                      (long long)(s.d2 - s.t2));
        freec(b);
        freec(s.e);
    }
    ck_assert_int_eq(by_close + by_send, round);
}
END_TEST

struct torace {
    chan_t *c, *e;
    int64_t deadline;
    int v, ret, ret2;
    int64_t t_end, d2, t2;
};

static void *torace_thread(void *p)
{
    struct torace *a = p;
    struct chan_case cs[1];
    cs_set(&cs[0], a->c, CHAN_RECV, &a->v);
    a->ret = chan_select_until(cs, 1, a->deadline);
    a->t_end = chan_now();
    if (a->ret >= 0 && ok_raw(&cs[0]) != 1)
        a->ret = -1000;
    if (a->ret < 0 && ok_raw(&cs[0]) != OK_UNSET)
        a->ret = -2000;
    /* A time-out that lost the race consumed its waker's wake-up: the next wait is whole. */
    struct chan_case k[1];
    int x;
    cs_set(&k[0], a->e, CHAN_RECV, &x);
    a->d2 = chan_now() + 1 * MS;
    a->ret2 = chan_select_until(k, 1, a->d2);
    a->t2 = chan_now();
    return NULL;
}

/* A select_until whose deadline comes just as a value does (the time-out racing a waker for the
 * done word): either it got the value, or it timed out and the value is still the sender's (or in
 * the buffer) - never both, never neither. */
START_TEST(test_select_timeout_races_send)
{
    const int rounds = scaled(400, 150);
    int got = 0, timedout = 0;
    uint32_t rng = 12345;
    int64_t late = 100000; /* how late the time-outs return, learnt as we go (ns) */
    const int64_t end = budget_end(2500, 8000);
    int round = 0;
    for (; more_rounds(round, rounds, end); round++) {
        size_t cap = (size_t)(round % 2);
        struct torace a = {mk(sizeof(int), cap), mk(sizeof(int), 0), 0, -1, -1, -1, 0, 0, 0};
        a.deadline = chan_now() + 1 * MS;
        pthread_t t = spawn(torace_thread, &a);
        rng = rng * 1664525u + 1013904223u;
        /* Aim the send at the moment the time-out fires: a little before its usual return. */
        int64_t at = a.deadline + late - 80000 + (int64_t)(rng >> 8) % 100000;
        while (chan_now() < at) {
        }
        int x = 77, sr;
        if (cap)
            sr = chan_trysend(a.c, &x); /* room in the buffer: always 0 */
        else
            sr = chan_send_until(a.c, &x, chan_now() + 5 * MS);
        join(t);
        ck_assert_msg(a.ret == 0 || a.ret == -ETIMEDOUT, "round %d: select gave %d", round, a.ret);
        if (a.ret == 0) {
            got++;
            ck_assert_int_eq(a.v, 77);
            ck_assert_int_eq(sr, 0);
            ck_assert_uint_eq(chan_len(a.c), 0);
        } else {
            timedout++;
            late = (7 * late + (a.t_end - a.deadline)) / 8;
            ck_assert_int_eq(a.v, -1);
            ck_assert(a.t_end >= a.deadline);
            if (cap) {
                ck_assert_int_eq(sr, 0);
                ck_assert_int_eq(take_int(a.c), 77); /* still there */
            } else {
                ck_assert_msg(sr == -ETIMEDOUT,
                              "round %d: the select timed out but the send "
                              "returned %d",
                              round, sr);
            }
        }
        ck_assert_int_eq(a.ret2, -ETIMEDOUT);
        ck_assert_msg(a.t2 >= a.d2, "round %d: the next wait ended %lld ns early", round,
                      (long long)(a.d2 - a.t2));
        ck_assert_uint_eq(hchan_waiting(a.c, CHAN_RECV) + hchan_waiting(a.c, CHAN_SEND), 0);
        freec(a.c);
        freec(a.e);
    }
    ck_assert_int_eq(got + timedout, round);
}
END_TEST

struct freerace {
    struct chan_case cs[2];
    int va, vb;
    int64_t deadline; /* CHAN_FOREVER: chan_select */
    int ret;
    _Atomic int returned;
};

static void *freerace_thread(void *p)
{
    struct freerace *a = p;
    a->ret = a->deadline == CHAN_FOREVER ? chan_select(a->cs, 2)
                                         : chan_select_until(a->cs, 2, a->deadline);
    atomic_store_explicit(&a->returned, 1, memory_order_release);
    return NULL;
}

/* chan_free's rule (chan.h): -EBUSY while a select is queued on the channel; and a select that
 * completed through another channel, or timed out, still unlinks itself from this one on its way
 * out, so chan_free keeps answering -EBUSY until it is safe. Here main frees the channel the very
 * moment chan_free allows it, racing that unlinking (ASan reports any touch of the freed
 * channel). */
START_TEST(test_select_free_races_unlink)
{
    const int rounds = scaled(300, 100);
    const int64_t end = budget_end(2000, 8000);
    for (int round = 0; more_rounds(round, rounds, end); round++) {
        chan_t *a = mk(sizeof(int), round % 3 == 2 ? 1 : 0), *b = mk(sizeof(int), 0);
        struct freerace f;
        f.va = f.vb = -1;
        cs_set(&f.cs[0], a, CHAN_RECV, &f.va);
        cs_set(&f.cs[1], b, CHAN_RECV, &f.vb);
        f.ret = 1000;
        atomic_init(&f.returned, 0);
        bool timing_out = round % 2;
        f.deadline = timing_out ? chan_now() + 2 * MS : CHAN_FOREVER;
        pthread_t t = spawn(freerace_thread, &f);
        if (timing_out) {
            /* Queued on a, or already gone (then there is no race this round). */
            unsigned spins = 0;
            while (hchan_waiting(a, CHAN_RECV) == 0 &&
                   !atomic_load_explicit(&f.returned, memory_order_acquire))
                yield_some(&spins);
            free_when_allowed(a);
            join(t);
            ck_assert_int_eq(f.ret, -ETIMEDOUT);
            assert_untouched(f.cs, 2);
        } else {
            ck_assert(blocked_receivers_at_least(a, 1));
            ck_assert(blocked_receivers_at_least(b, 1));
            ck_assert_int_eq(chan_free(a), -EBUSY); /* a select is queued on both */
            ck_assert_int_eq(chan_free(b), -EBUSY);
            int v = 5;
            ck_assert_int_eq(chan_send(b, &v), 0); /* completes it through b ... */
            free_when_allowed(a);                  /* ... while it leaves a */
            join(t);
            assert_chosen(f.cs, 2, f.ret, true);
            ck_assert_int_eq(f.ret, 1);
            ck_assert_int_eq(f.vb, 5);
        }
        ck_assert_int_eq(f.va, -1);
        freec(b);
    }
}
END_TEST

/* ---- Go's test/chan programs ----------------------------------------------------------------- */

/* Send or receive unless quit (a closed signal channel) comes first: 0, or -1 on quit. */
static int send_or_quit(chan_t *c, int v, chan_t *quit)
{
    struct chan_case cs[2];
    cs_set(&cs[0], c, CHAN_SEND, &v);
    cs_set(&cs[1], quit, CHAN_RECV, NULL);
    return chan_select(cs, 2) == 0 && ok_raw(&cs[0]) == 1 ? 0 : -1;
}

static int recv_or_quit(chan_t *c, int *v, chan_t *quit)
{
    struct chan_case cs[2];
    cs_set(&cs[0], c, CHAN_RECV, v);
    cs_set(&cs[1], quit, CHAN_RECV, NULL);
    return chan_select(cs, 2) == 0 && ok_raw(&cs[0]) == 1 ? 0 : -1;
}

enum { SIEVE_STAGES = 10, SIEVE_PER_STAGE = 10, SIEVE_PRIMES = 100 };

struct sieve_stage {
    chan_t *in, *out, *primes, *quit;
};

static void *sieve_generate(void *p)
{
    struct sieve_stage *s = p;
    for (int i = 2; send_or_quit(s->out, i, s->quit) == 0; i++) {
    }
    return NULL;
}

/* A filter stage of the chain. Go's sieve has one goroutine per prime; to keep the thread count
 * modest each stage owns up to SIEVE_PER_STAGE primes: the numbers reaching it are in order and
 * free of the earlier stages' primes, so one that none of its own primes divides is prime while
 * the stage still has room, and is passed on otherwise. */
static void *sieve_filter(void *p)
{
    struct sieve_stage *s = p;
    int ps[SIEVE_PER_STAGE], np = 0, x;
    while (recv_or_quit(s->in, &x, s->quit) == 0) {
        int divisible = 0;
        for (int j = 0; j < np && !divisible; j++)
            divisible = x % ps[j] == 0;
        if (divisible)
            continue;
        if (np < SIEVE_PER_STAGE) {
            ps[np++] = x;
            if (send_or_quit(s->primes, x, s->quit) != 0)
                break;
        } else if (send_or_quit(s->out, x, s->quit) != 0) {
            break;
        }
    }
    return NULL;
}

/* Go: test/chan/sieve1.go. The concurrent prime sieve: a generator and a chain of filter threads
 * joined by unbuffered channels yield the first 100 primes in order; then closing one quit channel
 * wakes every thread's select and the chain shuts down. */
START_TEST(test_sieve1)
{
    int expect[SIEVE_PRIMES], n = 0;
    for (int x = 2; n < SIEVE_PRIMES; x++) {
        int prime = 1;
        for (int d = 2; d * d <= x && prime; d++)
            prime = x % d != 0;
        if (prime)
            expect[n++] = x;
    }
    chan_t *link[SIEVE_STAGES + 1], *primes = mk(sizeof(int), 0), *quit = mk(0, 0);
    for (int i = 0; i <= SIEVE_STAGES; i++)
        link[i] = mk(sizeof(int), 0);
    struct sieve_stage st[SIEVE_STAGES + 1];
    pthread_t t[SIEVE_STAGES + 1];
    st[0] = (struct sieve_stage){NULL, link[0], NULL, quit};
    t[0] = spawn(sieve_generate, &st[0]);
    for (int i = 1; i <= SIEVE_STAGES; i++) {
        st[i] = (struct sieve_stage){link[i - 1], link[i], primes, quit};
        t[i] = spawn(sieve_filter, &st[i]);
    }
    for (int i = 0; i < SIEVE_PRIMES; i++) {
        int p = -1;
        ck_assert_int_eq(chan_recv(primes, &p), 0);
        ck_assert_msg(p == expect[i], "prime %d: got %d, want %d", i, p, expect[i]);
    }
    ck_assert_int_eq(chan_close(quit), 0);
    for (int i = 0; i <= SIEVE_STAGES; i++)
        join(t[i]);
    for (int i = 0; i <= SIEVE_STAGES; i++)
        freec(link[i]);
    freec(primes);
    freec(quit);
}
END_TEST

struct dsel {
    chan_t *c[4], *out;
    int n;
    _Atomic unsigned char *seen;
    _Atomic int errors;
    long received;
};

static void *dsel_sender(void *p)
{
    struct dsel *d = p;
    for (int i = 0; i < d->n; i++) {
        struct chan_case cs[4];
        for (int k = 0; k < 4; k++)
            cs_set(&cs[k], d->c[k], CHAN_SEND, &i);
        int r = chan_select(cs, 4);
        if (r < 0 || ok_raw(&cs[r]) != 1)
            atomic_fetch_add(&d->errors, 1);
    }
    for (int k = 0; k < 4; k++)
        if (chan_close(d->c[k]) != 0)
            atomic_fetch_add(&d->errors, 1);
    return NULL;
}

struct dsel_mux {
    struct dsel *d;
    int k; /* 0..3: Go's mux on c[k]; -1: a mux that selects over all four */
};

static void *dsel_mux(void *p)
{
    struct dsel_mux *m = p;
    struct dsel *d = m->d;
    int v;
    if (m->k >= 0) {
        while (chan_recv(d->c[m->k], &v) == 0)
            if (chan_send(d->out, &v) != 0)
                atomic_fetch_add(&d->errors, 1);
        return NULL;
    }
    chan_t *cc[4] = {d->c[0], d->c[1], d->c[2], d->c[3]};
    for (int live = 4; live > 0;) {
        struct chan_case cs[4];
        for (int k = 0; k < 4; k++)
            cs_set(&cs[k], cc[k], CHAN_RECV, &v);
        int r = chan_select(cs, 4);
        if (r < 0) {
            atomic_fetch_add(&d->errors, 1);
            return NULL;
        }
        if (ok_raw(&cs[r]) == 0) { /* closed: Go's `c = nil` */
            cc[r] = NULL;
            live--;
        } else if (chan_send(d->out, &v) != 0) {
            atomic_fetch_add(&d->errors, 1);
        }
    }
    return NULL;
}

static void *dsel_recver(void *p)
{
    struct dsel *d = p;
    int v;
    while (chan_recv(d->out, &v) == 0) {
        if (v < 0 || v >= d->n || atomic_fetch_add(&d->seen[v], 1) != 0)
            atomic_fetch_add(&d->errors, 1);
        d->received++;
    }
    return NULL;
}

/* Go: test/chan/doubleselect.go. A sender hands n values, each through a select over four
 * unbuffered channels; four muxes (one per channel, as in Go) and two that select over all four
 * forward them to one receiver, which must see every value exactly once. */
START_TEST(test_doubleselect)
{
    struct dsel d;
    d.n = scaled(20000, 6000);
    for (int k = 0; k < 4; k++)
        d.c[k] = mk(sizeof(int), 0);
    d.out = mk(sizeof(int), 0);
    d.seen = calloc((size_t)d.n, sizeof *d.seen);
    ck_assert_ptr_nonnull(d.seen);
    atomic_init(&d.errors, 0);
    d.received = 0;

    enum { NMUX = 6 };
    struct dsel_mux m[NMUX];
    pthread_t tm[NMUX];
    pthread_t tr = spawn(dsel_recver, &d);
    for (int i = 0; i < NMUX; i++) {
        m[i] = (struct dsel_mux){&d, i < 4 ? i : -1};
        tm[i] = spawn(dsel_mux, &m[i]);
    }
    pthread_t ts = spawn(dsel_sender, &d);
    join(ts);
    for (int i = 0; i < NMUX; i++)
        join(tm[i]);
    ck_assert_int_eq(chan_close(d.out), 0);
    join(tr);
    ck_assert_int_eq(atomic_load(&d.errors), 0);
    ck_assert_int_eq(d.received, d.n);
    for (int v = 0; v < d.n; v++)
        ck_assert_msg(atomic_load(&d.seen[v]) == 1, "value %d seen %u times", v,
                      (unsigned)atomic_load(&d.seen[v]));
    for (int k = 0; k < 4; k++)
        freec(d.c[k]);
    freec(d.out);
    free(d.seen);
}
END_TEST

/* select3: the states a channel can be in. */
enum s3kind {
    S3_NIL,
    S3_UNBUF,
    S3_BUF_EMPTY,
    S3_BUF_FULL,
    S3_CLOSED_UNBUF,
    S3_CLOSED_BUF_EMPTY,
    S3_CLOSED_BUF_VALUE,
    S3_UNBUF_PEER, /* unbuffered, with a peer blocked in the opposite direction */
};

static const char *const s3names[] = {"nil",
                                      "unbuffered",
                                      "buffered empty",
                                      "buffered full",
                                      "closed unbuffered",
                                      "closed buffered empty",
                                      "closed buffered holding a value",
                                      "unbuffered with a peer"};

struct s3row {
    enum s3kind kind;
    enum chan_dir dir;
    bool blocks;
    bool ok; /* when it does not block */
};

static const struct s3row s3rows[] = {
    {S3_NIL, CHAN_SEND, true, false},
    {S3_NIL, CHAN_RECV, true, false},
    {S3_UNBUF, CHAN_SEND, true, false},
    {S3_UNBUF, CHAN_RECV, true, false},
    {S3_BUF_EMPTY, CHAN_SEND, false, true},
    {S3_BUF_EMPTY, CHAN_RECV, true, false},
    {S3_BUF_FULL, CHAN_SEND, true, false},
    {S3_BUF_FULL, CHAN_RECV, false, true},
    {S3_CLOSED_UNBUF, CHAN_SEND, false, false},
    {S3_CLOSED_UNBUF, CHAN_RECV, false, false},
    {S3_CLOSED_BUF_EMPTY, CHAN_SEND, false, false},
    {S3_CLOSED_BUF_EMPTY, CHAN_RECV, false, false},
    {S3_CLOSED_BUF_VALUE, CHAN_SEND, false, false},
    {S3_CLOSED_BUF_VALUE, CHAN_RECV, false, true},
    {S3_UNBUF_PEER, CHAN_SEND, false, true},
    {S3_UNBUF_PEER, CHAN_RECV, false, true},
};

struct s3peer {
    struct opthr op;
    pthread_t t;
    int val;
    bool active;
};

static chan_t *s3_setup(enum s3kind kind, enum chan_dir dir, struct s3peer *peer)
{
    chan_t *c = NULL;
    peer->active = false;
    switch (kind) {
    case S3_NIL: break;
    case S3_UNBUF: c = mk(sizeof(int), 0); break;
    case S3_BUF_EMPTY: c = mk(sizeof(int), 1); break;
    case S3_BUF_FULL:
        c = mk(sizeof(int), 1);
        put_int(c, 1);
        break;
    case S3_CLOSED_UNBUF:
        c = mk(sizeof(int), 0);
        ck_assert_int_eq(chan_close(c), 0);
        break;
    case S3_CLOSED_BUF_EMPTY:
        c = mk(sizeof(int), 2);
        ck_assert_int_eq(chan_close(c), 0);
        break;
    case S3_CLOSED_BUF_VALUE:
        c = mk(sizeof(int), 2);
        put_int(c, 1);
        ck_assert_int_eq(chan_close(c), 0);
        break;
    case S3_UNBUF_PEER:
        c = mk(sizeof(int), 0);
        peer->active = true;
        peer->val = dir == CHAN_RECV ? 1 : -1;
        peer->op = (struct opthr){c, &peer->val, -1, NULL};
        if (dir == CHAN_RECV) { /* we receive: the peer sends */
            peer->t = spawn(send_thread, &peer->op);
            ck_assert(blocked_senders_at_least(c, 1));
        } else {
            peer->t = spawn(recv_thread, &peer->op);
            ck_assert(blocked_receivers_at_least(c, 1));
        }
        break;
    }
    return c;
}

static void s3_teardown(chan_t *c, struct s3peer *peer)
{
    if (peer->active) {
        join(peer->t);
        ck_assert_int_eq(peer->op.ret, 0);
    }
    if (c) {
        ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND) + hchan_waiting(c, CHAN_RECV), 0);
        freec(c);
    }
}

/* Go: test/chan/select3.go. For each channel state and direction, whether the operation blocks:
 * shown with a 20 ms select_until (blocks: -ETIMEDOUT after the deadline), the non-blocking select
 * (blocks: -EAGAIN), and the plain _until/try operations for comparison. When it does not block
 * the case completes with the expected ok (recv: the value 1, or a zeroed elem when closed). */
START_TEST(test_select3_blocking_table)
{
    for (size_t i = 0; i < sizeof s3rows / sizeof s3rows[0]; i++) {
        const struct s3row *row = &s3rows[i];
        bool send = row->dir == CHAN_SEND;
        for (int form = 0; form < 4; form++) {
            struct s3peer peer;
            chan_t *c = s3_setup(row->kind, row->dir, &peer);
            size_t len0 = chan_len(c);
            int v = send ? 5 : -1, r;
            struct chan_case cs[1];
            cs_set(&cs[0], c, row->dir, &v);
            int64_t d = chan_now() + 20 * MS;
            switch (form) {
            case 0: r = chan_select_until(cs, 1, d); break;
            case 1: r = chan_tryselect(cs, 1); break;
            case 2: r = send ? chan_send_until(c, &v, d) : chan_recv_until(c, &v, d); break;
            default: r = send ? chan_trysend(c, &v) : chan_tryrecv(c, &v); break;
            }
            int64_t t = chan_now();
            const char *what = s3names[row->kind];
            if (row->blocks) {
                int want = form % 2 == 0 ? -ETIMEDOUT : -EAGAIN;
                ck_assert_msg(r == want, "%s %s, form %d: got %d, want %d (blocks)", what,
                              send ? "send" : "recv", form, r, want);
                if (form % 2 == 0)
                    ck_assert_msg(t >= d, "%s: -ETIMEDOUT before the deadline", what);
                if (form < 2)
                    assert_untouched(cs, 1);
                ck_assert_int_eq(v, send ? 5 : -1);
                ck_assert_uint_eq(chan_len(c), len0);
            } else {
                if (form < 2) {
                    ck_assert_msg(r == 0, "%s %s, form %d: got %d, want case 0", what,
                                  send ? "send" : "recv", form, r);
                    assert_chosen(cs, 1, 0, row->ok);
                } else {
                    int want = row->ok ? 0 : -EPIPE;
                    ck_assert_msg(r == want, "%s %s, form %d: got %d, want %d", what,
                                  send ? "send" : "recv", form, r, want);
                }
                if (!send)
                    ck_assert_int_eq(v, row->ok ? 1 : 0);
            }
            s3_teardown(c, &peer); /* joins the peer */
            if (!row->blocks && send && row->kind == S3_UNBUF_PEER)
                ck_assert_int_eq(peer.val, 5); /* the peer received our value */
        }
    }

    /* select with a ready case and a nil case: does not block; two nil cases: blocks. */
    chan_t *c = mk(sizeof(int), 1);
    put_int(c, 1);
    int v = -1;
    struct chan_case cs[2];
    cs_set(&cs[0], NULL, CHAN_RECV, &v);
    cs_set(&cs[1], c, CHAN_RECV, &v);
    ck_assert_int_eq(chan_select_until(cs, 2, chan_now() + 20 * MS), 1);
    ck_assert_int_eq(v, 1);
    cs_set(&cs[1], NULL, CHAN_SEND, &v);
    ck_assert_int_eq(chan_select_until(cs, 2, chan_now() + 20 * MS), -ETIMEDOUT);
    ck_assert_int_eq(chan_tryselect(cs, 2), -EAGAIN);
    freec(c);
}
END_TEST

struct nb_peer {
    chan_t *c, *sync;
    size_t esz;
    unsigned char seed;
    int ret, bad;
};

static void *nb_receiver(void *p)
{
    struct nb_peer *a = p;
    unsigned char buf[128], want[128];
    memset(buf, 0xEE, sizeof buf);
    pattern(want, a->esz, a->seed);
    a->ret = chan_recv(a->c, a->esz ? buf : NULL);
    a->bad = memcmp(buf, want, a->esz) != 0;
    if (chan_send(a->sync, NULL) != 0)
        a->bad = 1;
    return NULL;
}

static void *nb_sender(void *p)
{
    struct nb_peer *a = p;
    unsigned char buf[128];
    pattern(buf, a->esz, a->seed);
    a->ret = chan_send(a->c, a->esz ? buf : NULL);
    if (chan_send(a->sync, NULL) != 0)
        a->bad = 1;
    return NULL;
}

/* Retries a non-blocking select until its one real case goes through (Go's loop of selects with a
 * default and runtime.Gosched()). */
static void nb_retry(struct chan_case *cs, size_t n, const char *what)
{
    int64_t give_up = chan_now() + (under_sanitizer() ? 60000 : 15000) * MS;
    for (unsigned tries = 0;; tries++) {
        ok_reset(cs, n);
        int r = chan_tryselect(cs, n);
        if (r >= 0) {
            assert_chosen(cs, n, r, true);
            ck_assert_int_eq(r, 1);
            return;
        }
        ck_assert_int_eq(r, -EAGAIN);
        assert_untouched(cs, n);
        ck_assert_msg(chan_now() < give_up, "%s: never went through", what);
        if (tries < 100)
            sched_yield();
        else
            sleep_ns(50 * 1000);
    }
}

/* Go: test/chan/nonblock.go. For several buffer sizes and element sizes: a non-blocking receive
 * on an empty channel fails; with a peer receiver arriving, retried non-blocking sends go through
 * once; with a peer sender, retried non-blocking receives do, with the value intact. */
START_TEST(test_nonblock)
{
    const size_t caps[] = {0, 1, 8};
    const size_t sizes[] = {0, 1, 2, 4, 8, 24, 100};
    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t esz = sizes[si];
            chan_t *c = mk(esz, caps[ci]), *sync = mk(0, 0);
            unsigned char buf[128], want[128];
            char what[64];
            snprintf(what, sizeof what, "cap %zu elemsize %zu", caps[ci], esz);
            struct chan_case cs[2];

            memset(buf, 0xEE, sizeof buf);
            cs_set(&cs[0], NULL, CHAN_RECV, NULL);
            cs_set(&cs[1], c, CHAN_RECV, buf);
            ck_assert_int_eq(chan_tryselect(cs, 2), -EAGAIN);
            ck_assert_int_eq(chan_tryrecv(c, buf), -EAGAIN);
            ck_assert(all_bytes(buf, sizeof buf, 0xEE));

            /* A receiver arrives: non-blocking sends until one is taken. */
            struct nb_peer rp = {c, sync, esz, (unsigned char)(ci * 16 + si), -1, 0};
            pattern(buf, esz, rp.seed);
            pthread_t t = spawn(nb_receiver, &rp);
            cs_set(&cs[0], NULL, CHAN_SEND, NULL);
            cs_set(&cs[1], c, CHAN_SEND, esz ? buf : NULL);
            nb_retry(cs, 2, what);
            ck_assert_int_eq(chan_recv(sync, NULL), 0);
            join(t);
            ck_assert_int_eq(rp.ret, 0);
            ck_assert_msg(!rp.bad, "%s: receiver got a damaged value", what);

            /* A sender arrives: non-blocking receives until one gets its value. */
            struct nb_peer sp = {c, sync, esz, (unsigned char)(200 + si), -1, 0};
            pattern(want, esz, sp.seed);
            memset(buf, 0xEE, sizeof buf);
            t = spawn(nb_sender, &sp);
            cs_set(&cs[0], NULL, CHAN_RECV, NULL);
            cs_set(&cs[1], c, CHAN_RECV, esz ? buf : NULL);
            nb_retry(cs, 2, what);
            ck_assert_int_eq(memcmp(buf, want, esz), 0);
            ck_assert(all_bytes(buf + esz, sizeof buf - esz, 0xEE));
            ck_assert_int_eq(chan_recv(sync, NULL), 0);
            join(t);
            ck_assert_int_eq(sp.ret, 0);
            ck_assert(!sp.bad);
            ck_assert_uint_eq(chan_len(c), 0);
            freec(c);
            freec(sync);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("select");
    ADD_TEST(s, test_select_fairness, 60);
    ADD_TEST(s, test_select_fairness_many_cases, 60);
    ADD_TEST(s, test_select_fairness_recv_not_starved, 60);
    ADD_TEST(s, test_select_fairness_across_channel_kinds, 60);
    ADD_TEST(s, test_select_full_buffer_waiting_sender, 30);
    ADD_TEST(s, test_select_nil_case_never_chosen, 30);
    ADD_TEST(s, test_select_only_nil_cases_block, 20);
    ADD_TEST(s, test_select_pass0_never_waits, 60);
    ADD_TEST(s, test_select_zero_cases, 20);
    ADD_TEST(s, test_select_duplicate_channel, 30);
    ADD_TEST(s, test_select_duplicate_channel_send_recv, 30);
    ADD_TEST(s, test_select_duplicate_channel_recv_recv, 30);
    ADD_TEST(s, test_self_select, 60);
    ADD_TEST(s, test_select_stress, 90);
    ADD_TEST(s, test_nonblock_select_race, 60);
    ADD_TEST(s, test_nonblock_select_race2, 60);
    ADD_TEST(s, test_select_woken_by_close, 30);
    ADD_TEST(s, test_select_send_woken_by_close, 30);
    ADD_TEST(s, test_select_close_wakes_all_and_frees, 30);
    ADD_TEST(s, test_select_send_on_closed_chooses_ok_false, 20);
    ADD_TEST(s, test_select_until_expires, 30);
    ADD_TEST(s, test_select_until_beaten_by_value, 30);
    ADD_TEST(s, test_select_einval_nothing_consumed, 30);
    ADD_TEST(s, test_select_signal_channel, 20);
    ADD_TEST(s, test_select_blocked_send_into_full_buffer, 20);
    ADD_TEST(s, test_select_signals_absorbed, 30);
    ADD_TEST(s, test_select_large_elements, 30);
    ADD_TEST(s, test_select_many_cases, 60);
    ADD_TEST(s, test_select_max_cases_one_channel, 60);
    ADD_TEST(s, test_select_alloc_and_enomem, 30);
    ADD_TEST(s, test_select_two_wakers_one_wins, 60);
    ADD_TEST(s, test_select_close_races_send, 60);
    ADD_TEST(s, test_select_timeout_races_send, 60);
    ADD_TEST(s, test_select_free_races_unlink, 60);
    ADD_TEST(s, test_sieve1, 30);
    ADD_TEST(s, test_doubleselect, 90);
    ADD_TEST(s, test_select3_blocking_table, 30);
    ADD_TEST(s, test_nonblock, 60);
    return run_suite(s);
}
