/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_select.c - more of Go's channel and select tests, with Gs in place of threads
 * (libchan-mpg): the prime sieve, self-select, a channel named twice in one select, many cases
 * (heap bookkeeping), select with send and receive cases, nil cases, chan_free while a G is
 * blocked, and many Gs blocked on one channel. Each test starts its own scheduler.
 */
#include "testmpg.h"

#include <stdatomic.h>

#include "sched/chan_sched_mpg.h"

/* ---- Go's prime sieve: a chain of filter Gs ------------------------------------------------- */

struct filter {
    chan_t *in, *out, *done;
    long prime;
};

static void generate(void *arg)
{
    struct filter *f = arg;
    for (long i = 2;; i++)
        if (chan_send(f->out, &i) != 0)
            break; /* closed when the sieve is done */
    chan_send(f->done, NULL);
}

static void filter(void *arg)
{
    struct filter *f = arg;
    long v;
    while (chan_recv(f->in, &v) == 0)
        if (v % f->prime != 0 && chan_send(f->out, &v) != 0)
            break;
    /* Shut down upstream and downstream (either may be closed already), then say so. */
    chan_close(f->in);
    chan_close(f->out);
    chan_send(f->done, NULL);
}

enum { NPRIMES = 300 };

struct sieve {
    long primes[NPRIMES];
};

static void sieve(void *arg)
{
    struct sieve *s = arg;
    chan_t *chans[NPRIMES + 1];
    struct filter fs[NPRIMES + 1];
    chan_t *done = chan_make(0, NPRIMES + 1); /* Go's WaitGroup */
    chans[0] = chan_make(sizeof(long), 0);
    fs[NPRIMES] = (struct filter){NULL, chans[0], done, 0};
    G_CHECK(chan_mpg_go(generate, &fs[NPRIMES]) > 0);
    for (int i = 0; i < NPRIMES; i++) {
        long p;
        G_CHECK(chan_recv(chans[i], &p) == 0);
        s->primes[i] = p;
        chans[i + 1] = chan_make(sizeof(long), 0);
        fs[i] = (struct filter){chans[i], chans[i + 1], done, p};
        G_CHECK(chan_mpg_go(filter, &fs[i]) > 0);
    }
    /* Closing the last channel makes the last filter close its input, and so on up; draining
     * the channels keeps every filter moving until it sees a close. */
    chan_close(chans[NPRIMES]);
    for (int i = NPRIMES; i >= 0; i--) {
        long v;
        while (chan_recv(chans[i], &v) == 0) {
        }
    }
    for (int i = 0; i <= NPRIMES; i++)
        G_CHECK(chan_recv(done, NULL) == 0);
    for (int i = 0; i <= NPRIMES; i++)
        G_CHECK(chan_free(chans[i]) == 0);
    chan_free(done);
}

START_TEST(prime_sieve)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    static struct sieve s;
    go(sieve, &s);
    finish();
    ck_assert_int_eq(s.primes[0], 2);
    ck_assert_int_eq(s.primes[1], 3);
    ck_assert_int_eq(s.primes[99], 541);
    ck_assert_int_eq(s.primes[NPRIMES - 1], 1987);
    NO_BAD();
}
END_TEST

/* ---- Go's TestSelfSelect: a select never pairs its own send and receive --------------------- */

struct selfsel {
    chan_t *c;
    long n;
    bool unbuffered;
};

static void self_selector(void *arg)
{
    struct selfsel *s = arg;
    long me = chan_mpg_self(), v;
    for (long i = 0; i < s->n; i++) {
        long out = me;
        struct chan_case cs[2] = {{s->c, &out, CHAN_SEND, 0}, {s->c, &v, CHAN_RECV, 0}};
        if (i % 2)
            cs[0] = (struct chan_case){s->c, &v, CHAN_RECV, 0},
            cs[1] = (struct chan_case){s->c, &out, CHAN_SEND, 0};
        int k = chan_select(cs, 2);
        G_CHECK(k == 0 || k == 1);
        if (cs[k].dir == CHAN_RECV && s->unbuffered)
            G_CHECK(v != me); /* received its own value: a self-pairing */
    }
}

START_TEST(self_select)
{
    for (size_t cap = 0; cap <= 1; cap++) {
        ck_assert_int_eq(chan_mpg_start(2), 0);
        /* With a buffer a G may receive its own buffered value (Go allows that): only the
         * unbuffered channel forbids it; both must make progress. */
        struct selfsel s = {chan_make(sizeof(long), cap), 2000, cap == 0};
        go(self_selector, &s);
        go(self_selector, &s);
        finish();
        chan_free(s.c);
    }
    NO_BAD();
}
END_TEST

/* ---- One channel in several cases, both directions ----------------------------------------- */

static void dup_peer(void *arg)
{
    chan_t *c = arg;
    long v;
    for (long i = 0; i < 1000; i++) {
        if (i % 2) {
            G_CHECK(chan_recv(c, &v) == 0);
        } else {
            v = i;
            G_CHECK(chan_send(c, &v) == 0);
        }
    }
}

static void dup_selector(void *arg)
{
    chan_t *c = arg;
    long got = 0, sent = 0;
    for (long i = 0; i < 1000; i++) {
        long in = -1, out = 7;
        struct chan_case cs[4] = {{c, &in, CHAN_RECV, 0},
                                  {c, &out, CHAN_SEND, 0},
                                  {c, &in, CHAN_RECV, 0},
                                  {NULL, NULL, CHAN_SEND, 0}};
        int k = chan_select(cs, 4);
        G_CHECK(k >= 0 && k <= 2);
        if (k == 1)
            sent++;
        else
            got++;
    }
    G_CHECK(got == 500 && sent == 500);
}

START_TEST(duplicate_cases)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    chan_t *c = chan_make(sizeof(long), 0);
    go(dup_selector, c);
    go(dup_peer, c);
    finish();
    ck_assert_int_eq(chan_free(c), 0);
    NO_BAD();
}
END_TEST

/* ---- Many cases: the select's bookkeeping on the heap, in a G -------------------------------- */

enum { NCASES = 100 };

struct many {
    chan_t *c[NCASES];
    atomic_long hits[NCASES];
};

static void many_sender(void *arg)
{
    struct many *m = arg;
    for (long r = 0; r < 20; r++)
        for (int i = 0; i < NCASES; i++)
            G_CHECK(chan_send(m->c[(i * 37 + r) % NCASES], &(long){i}) == 0);
}

static void many_selector(void *arg)
{
    struct many *m = arg;
    struct chan_case cs[NCASES];
    long v[NCASES];
    for (int i = 0; i < NCASES; i++)
        cs[i] = (struct chan_case){m->c[i], &v[i], CHAN_RECV, 0};
    for (long k = 0; k < 20 * NCASES; k++) {
        int i = chan_select(cs, NCASES);
        G_CHECK(i >= 0 && i < NCASES && cs[i].ok);
        if (i >= 0)
            atomic_fetch_add(&m->hits[i], 1);
    }
}

START_TEST(many_cases)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    static struct many m;
    for (int i = 0; i < NCASES; i++)
        m.c[i] = chan_make(sizeof(long), 0);
    go(many_selector, &m);
    go(many_sender, &m);
    finish();
    for (int i = 0; i < NCASES; i++) {
        ck_assert_int_eq(atomic_load(&m.hits[i]), 20);
        ck_assert_int_eq(chan_free(m.c[i]), 0);
    }
    NO_BAD();
}
END_TEST

/* ---- chan_free refuses while a G is blocked; 1,000 Gs blocked on one channel ----------------- */

static void blocked_recv(void *arg)
{
    chan_t *c = arg;
    long v;
    G_CHECK(chan_recv(c, &v) == 0);
    G_CHECK(v == 5);
}

START_TEST(free_busy_and_crowd)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    chan_t *c = chan_make(sizeof(long), 0);
    chan_mpg_foreign_enter();
    for (int i = 0; i < 1000; i++)
        go(blocked_recv, c);
    ck_assert(blocked_receivers_at_least(c, 1000));
    ck_assert_int_eq(chan_free(c), -EBUSY);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(chan_send(c, &(long){5}), 0);
    chan_mpg_foreign_leave();
    finish();
    ck_assert_int_eq(chan_free(c), 0);
    NO_BAD();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg_select");
    ADD_TEST(s, prime_sieve, 60);
    ADD_TEST(s, self_select, 60);
    ADD_TEST(s, duplicate_cases, 30);
    ADD_TEST(s, many_cases, 60);
    ADD_TEST(s, free_busy_and_crowd, 60);
    return run_suite(s);
}
