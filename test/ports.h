/* SPDX-License-Identifier: MIT */
/*
 * ports.h - the behaviours that Go's runtime/chan_test.go, the programs of Go's test/chan and
 * crossbeam-channel's test suite check, written against chan.h. The code is our own; each test
 * names the one it follows. What test_chan.c and test_select.c already port is not repeated.
 *
 * The last section, the contract's precise points (chan.h) that test_contract.c checks on
 * threads, is no port: it is here to run on Gs and on both as well.
 *
 * Every port runs three times: on plain threads (test_ports.c), on Gs of libchan-mpg
 * (test_mpg_ports.c), and on both in turn (test_mpg_ports_mixed.c). Each includes this file
 * after defining how a port's "goroutines" run:
 *
 *   task_go(fn, arg)      start fn(arg) as a thread, or as a G
 *   task_yield()          Go's runtime.Gosched
 *   task_sleep_ms(ms)     sleep the task only (a G must not sleep its M)
 *   run_main(fn, arg)     run fn(arg) as Go's main goroutine, then wait until every task has
 *                         returned (on Gs: the scheduler started before and stopped after)
 *   ON_GS                 1 on Gs alone, else 0 (loop sizes differ: a thread costs far more)
 *   PORTS_NAME            the Check suite's name
 *
 * Checks made inside tasks are counted with CHECK (Check's asserts belong to the test's own
 * thread) and reported after run_main by PORT_RUN. Every value sent with 0 is accounted for:
 * received exactly once, or still buffered when the channel is freed.
 */
#ifndef PORTS_H
#define PORTS_H

#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "chan_time.h"

/* ---- Checks inside tasks --------------------------------------------------------------------- */

static atomic_long fails;
static char fail_msg[512];

static void check_failed(int line, const char *fmt, ...)
{
    if (atomic_fetch_add(&fails, 1) != 0)
        return; /* the first failure's message is the one kept */
    int n = snprintf(fail_msg, sizeof fail_msg, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_msg + n, sizeof fail_msg - (size_t)n, fmt, ap);
    va_end(ap);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            check_failed(__LINE__, __VA_ARGS__);                                                   \
    } while (0)

/* Runs body as the main goroutine and fails the test on any CHECK that failed in any task. */
#define PORT_RUN(body, arg)                                                                        \
    do {                                                                                           \
        run_main((body), (arg));                                                                   \
        freec_deferred();                                                                          \
        ck_assert_msg(atomic_load(&fails) == 0, "%ld failed check(s); first at %s",                \
                      atomic_load(&fails), fail_msg);                                              \
    } while (0)

/* A loop's length: on Gs or threads, plain build or sanitized. */
static int sized(int gs, int threads)
{
    int n = ON_GS ? gs : threads;
    return under_sanitizer() ? (n / 5 > 1 ? n / 5 : 1) : n;
}

/* ---- Small helpers ------------------------------------------------------------------------- */

static chan_t *mkc(size_t elemsize, size_t cap)
{
    chan_t *c = chan_make(elemsize, cap);
    CHECK(c != NULL, "chan_make(%zu, %zu): NULL", elemsize, cap);
    return c;
}

static void freec(chan_t *c)
{
    int r = chan_free(c);
    CHECK(r == 0, "chan_free: %d", r);
}

/* Frees c once every task has returned (run_main calls freec_deferred): a task may still be
 * returning from its last operation on c after its peer saw the operation complete, and freeing
 * c under it would be the caller's use-after-free (chan_free(3)). */
static chan_t **deferred;
static size_t ndeferred, deferred_cap;
static pthread_mutex_t deferred_mu = PTHREAD_MUTEX_INITIALIZER;

static void freec_later(chan_t *c)
{
    pthread_mutex_lock(&deferred_mu);
    if (ndeferred == deferred_cap) {
        deferred_cap = deferred_cap ? 2 * deferred_cap : 64;
        deferred = realloc(deferred, deferred_cap * sizeof *deferred);
        ck_assert_ptr_nonnull(deferred);
    }
    deferred[ndeferred++] = c;
    pthread_mutex_unlock(&deferred_mu);
}

static void freec_deferred(void)
{
    for (size_t i = 0; i < ndeferred; i++)
        freec(deferred[i]);
    free(deferred);
    deferred = NULL;
    ndeferred = deferred_cap = 0;
}

static int send_long(chan_t *c, long v) { return chan_send(c, &v); }

/* Go's sync.WaitGroup, as a channel: each task that ends sends one signal on it, the waiter
 * receives n. */
static void wg_done(chan_t *wg) { CHECK(chan_send(wg, NULL) == 0, "wg_done"); }

static void wg_wait(chan_t *wg, int n)
{
    for (int i = 0; i < n; i++)
        CHECK(chan_recv(wg, NULL) == 0, "wg_wait");
}

/* Until n waiters are queued on c in direction dir (each blocked, its sudog queued): the
 * deterministic form of Go's tests' time.Sleep before they look. */
static int wait_queued(chan_t *c, enum chan_dir dir, size_t n)
{
    for (int i = 0; i < 20000; i++) {
        if (hchan_waiting(c, dir) >= n)
            return 1;
        task_sleep_ms(1);
    }
    CHECK(0, "%zu waiters never queued (dir %d)", n, (int)dir);
    return 0;
}

/* ---- Go: TestChan, every capacity ---------------------------------------------------------- */

struct tc_arg {
    chan_t *c, *wg;
    atomic_int flag;
    long v;
    int cap;
};

static void tc_recv_discard(void *p)
{
    struct tc_arg *a = p;
    CHECK(chan_recv(a->c, NULL) == 0, "recv");
    atomic_fetch_add(&a->flag, 1);
    wg_done(a->wg);
}

static void tc_recv_keep(void *p)
{
    struct tc_arg *a = p;
    long v = -1;
    CHECK(chan_recv(a->c, &v) == 0 && v == 0, "recv: %ld", v);
    atomic_fetch_add(&a->flag, 1);
    wg_done(a->wg);
}

static void tc_send_zero(void *p)
{
    struct tc_arg *a = p;
    CHECK(send_long(a->c, 0) == 0, "send");
    atomic_store(&a->flag, 1);
    wg_done(a->wg);
}

static void tc_recv_closed(void *p)
{
    struct tc_arg *a = p;
    long v = 77;
    int r = chan_recv(a->c, &v);
    CHECK(r == -EPIPE && v == 0, "cap %d: recv on closed: %d, v %ld", a->cap, r, v);
    wg_done(a->wg);
}

static void tc_send_n(void *p)
{
    struct tc_arg *a = p;
    for (long i = 0; i < a->v; i++)
        CHECK(send_long(a->c, i) == 0, "send %ld", i);
    wg_done(a->wg);
}

enum { TC_P = 4, TC_L = 1000 };

struct tc_counts {
    chan_t *c, *wg;
    atomic_int *shared; /* TC_L counters: each value is received TC_P times in all */
};

static void tc_recv_count(void *p)
{
    struct tc_counts *a = p;
    for (int i = 0; i < TC_L; i++) {
        long v = -1;
        CHECK(chan_recv(a->c, &v) == 0 && v >= 0 && v < TC_L, "recv %ld", v);
        if (v >= 0 && v < TC_L)
            atomic_fetch_add(&a->shared[v], 1);
    }
    wg_done(a->wg);
}

static void chan_matrix_main(void *arg)
{
    (void)arg;
    int n = 20; /* Go's testing.Short() N */
    chan_t *wg = mkc(0, 64);
    for (int cap = 0; cap < n; cap++) {
        struct tc_arg a = {.wg = wg, .cap = cap};
        { /* A receive from an empty channel blocks; try forms do not. */
            a.c = mkc(sizeof(long), (size_t)cap);
            atomic_store(&a.flag, 0);
            task_go(tc_recv_discard, &a);
            task_go(tc_recv_keep, &a);
            wait_queued(a.c, CHAN_RECV, 2);
            CHECK(atomic_load(&a.flag) == 0, "cap %d: received from an empty channel", cap);
            long v = 5;
            CHECK(chan_tryrecv(a.c, &v) == -EAGAIN && v == 5, "cap %d: tryrecv", cap);
            struct chan_case cs[] = {chan_case_recv(a.c, &v)};
            CHECK(chan_tryselect(cs, 1) == -EAGAIN && v == 5, "cap %d: tryselect", cap);
            CHECK(chan_len(a.c) == 0, "cap %d: len", cap);
            CHECK(send_long(a.c, 0) == 0 && send_long(a.c, 0) == 0, "cap %d: send", cap);
            wg_wait(wg, 2);
            CHECK(atomic_load(&a.flag) == 2 && chan_len(a.c) == 0, "cap %d: after", cap);
            freec(a.c);
        }
        { /* A send to a full channel blocks; trysend and a select send do not. */
            a.c = mkc(sizeof(long), (size_t)cap);
            for (int i = 0; i < cap; i++)
                CHECK(send_long(a.c, i) == 0, "fill");
            atomic_store(&a.flag, 0);
            task_go(tc_send_zero, &a);
            wait_queued(a.c, CHAN_SEND, 1);
            CHECK(atomic_load(&a.flag) == 0, "cap %d: sent to a full channel", cap);
            long v = 9;
            CHECK(chan_trysend(a.c, &v) == -EAGAIN, "cap %d: trysend", cap);
            struct chan_case cs[] = {chan_case_send(a.c, &v)};
            CHECK(chan_tryselect(cs, 1) == -EAGAIN, "cap %d: tryselect send", cap);
            CHECK(chan_len(a.c) == (size_t)cap, "cap %d: len %zu", cap, chan_len(a.c));
            v = -1;
            CHECK(chan_recv(a.c, &v) == 0 && v == 0, "cap %d: head %ld", cap, v);
            wg_wait(wg, 1);
            /* The blocked sender's 0 went in behind the values already buffered. */
            for (int i = 1; i <= cap; i++) {
                v = -1;
                CHECK(chan_tryrecv(a.c, &v) == 0 && v == (i == cap ? 0 : i), "cap %d: %ld", cap, v);
            }
            CHECK(chan_tryrecv(a.c, &v) == -EAGAIN, "cap %d: left over", cap);
            freec(a.c);
        }
        { /* A closed channel gives its buffered values, then zeros, in every receive form. */
            a.c = mkc(sizeof(long), (size_t)cap);
            for (int i = 0; i < cap; i++)
                CHECK(send_long(a.c, i) == 0, "fill");
            CHECK(chan_close(a.c) == 0, "close");
            CHECK(chan_len(a.c) == (size_t)cap, "cap %d: len after close", cap);
            for (int i = 0; i < cap; i++) {
                long v = -1;
                CHECK(chan_recv(a.c, &v) == 0 && v == i, "cap %d: got %ld want %d", cap, v, i);
            }
            long v = 3;
            CHECK(chan_recv(a.c, &v) == -EPIPE && v == 0, "recv closed");
            v = 3;
            CHECK(chan_tryrecv(a.c, &v) == -EPIPE && v == 0, "tryrecv closed");
            v = 3;
            CHECK(chan_recv_until(a.c, &v, chan_now() + MS) == -EPIPE && v == 0, "until");
            v = 3;
            struct chan_case cs[] = {chan_case_recv(a.c, &v)};
            CHECK(chan_select(cs, 1) == 0 && !cs[0].ok && v == 0, "select closed");
            CHECK(send_long(a.c, 1) == -EPIPE, "send on closed");
            freec(a.c);
        }
        { /* Closing wakes a blocked receiver with a zero value. */
            a.c = mkc(sizeof(long), (size_t)cap);
            task_go(tc_recv_closed, &a);
            wait_queued(a.c, CHAN_RECV, 1);
            CHECK(chan_close(a.c) == 0, "close");
            wg_wait(wg, 1);
            freec(a.c);
        }
        { /* 100 values in FIFO order, twice; then 4 senders and 4 receivers of 1,000 each. */
            a.c = mkc(sizeof(long), (size_t)cap);
            a.v = 100;
            for (int round = 0; round < 2; round++) {
                task_go(tc_send_n, &a);
                for (long i = 0; i < 100; i++) {
                    long v = -1;
                    CHECK(chan_recv(a.c, &v) == 0 && v == i, "cap %d: %ld, want %ld", cap, v, i);
                }
                wg_wait(wg, 1);
            }
            a.v = TC_L;
            static atomic_int shared[TC_L];
            for (int i = 0; i < TC_L; i++)
                atomic_store(&shared[i], 0);
            struct tc_counts cnt = {a.c, wg, shared};
            for (int p = 0; p < TC_P; p++)
                task_go(tc_send_n, &a);
            for (int p = 0; p < TC_P; p++)
                task_go(tc_recv_count, &cnt);
            wg_wait(wg, 2 * TC_P);
            for (int i = 0; i < TC_L; i++)
                CHECK(atomic_load(&shared[i]) == TC_P, "cap %d: value %d received %d times", cap, i,
                      atomic_load(&shared[i]));
            freec(a.c);
        }
        { /* len and cap */
            a.c = mkc(sizeof(long), (size_t)cap);
            CHECK(chan_len(a.c) == 0 && chan_cap(a.c) == (size_t)cap, "len/cap empty");
            for (int i = 0; i < cap; i++)
                CHECK(send_long(a.c, i) == 0, "fill");
            CHECK(chan_len(a.c) == (size_t)cap && chan_cap(a.c) == (size_t)cap, "len/cap full");
            freec(a.c);
        }
    }
    freec_later(wg);
}

/* ---- Go: TestNonblockRecvRace --------------------------------------------------------------- */

struct nbr {
    chan_t *c, *wg;
    int form;
};

static void nbr_try(void *p)
{
    struct nbr *a = p;
    long v = -1;
    int r;
    if (a->form) {
        struct chan_case cs[] = {chan_case_recv(a->c, &v)};
        r = chan_tryselect(cs, 1);
    } else {
        r = chan_tryrecv(a->c, &v);
    }
    /* A value was buffered before this task started, and the channel is closed only after:
     * at every moment there is a value or the close to report. */
    CHECK(r != -EAGAIN, "form %d: a channel holding a value or closed was not ready", a->form);
    wg_done(a->wg);
}

static void nonblock_recv_race_main(void *arg)
{
    (void)arg;
    int n = sized(10000, 2000);
    chan_t *wg = mkc(0, 1);
    for (int i = 0; i < n; i++) {
        struct nbr a = {mkc(sizeof(long), 1), wg, i & 1};
        CHECK(send_long(a.c, 1) == 0, "send");
        task_go(nbr_try, &a);
        CHECK(chan_close(a.c) == 0, "close");
        long v;
        int r = chan_recv(a.c, &v);
        CHECK(r == 0 || r == -EPIPE, "recv %d", r);
        wg_wait(wg, 1);
        freec(a.c);
    }
    freec_later(wg);
}

/* ---- Go: TestMultiConsumer ------------------------------------------------------------------ */

enum { MC_WORK = 23 };
static const long mc_pn[] = {2, 3, 7, 11, 13, 17, 19, 23, 27, 31};

struct mc {
    chan_t *q, *r, *wg, *workers;
    int niter;
    long expect;
};

struct mc_worker {
    struct mc *m;
    int w;
};

static void mc_work(void *p)
{
    struct mc_worker *k = p;
    long v;
    while (chan_recv(k->m->q, &v) == 0) {
        if (mc_pn[k->w % 10] == v) /* upsets the FIFO-like order of the consumers */
            task_yield();
        CHECK(chan_send(k->m->r, &v) == 0, "send result");
    }
    wg_done(k->m->workers);
    wg_done(k->m->wg);
}

static void mc_feed(void *p)
{
    struct mc *m = p;
    for (int i = 0; i < m->niter; i++) {
        long v = mc_pn[i % 10];
        m->expect += v;
        CHECK(chan_send(m->q, &v) == 0, "feed");
    }
    CHECK(chan_close(m->q) == 0, "close q");
    wg_wait(m->workers, MC_WORK);
    CHECK(chan_close(m->r) == 0, "close r");
    wg_done(m->wg);
}

static void multi_consumer_main(void *arg)
{
    (void)arg;
    struct mc m = {mkc(sizeof(long), MC_WORK * 3),
                   mkc(sizeof(long), MC_WORK * 3),
                   mkc(0, 64),
                   mkc(0, MC_WORK),
                   sized(271828, 50000),
                   0};
    struct mc_worker w[MC_WORK];
    for (int i = 0; i < MC_WORK; i++) {
        w[i] = (struct mc_worker){&m, i};
        task_go(mc_work, &w[i]);
    }
    task_go(mc_feed, &m);
    long n = 0, s = 0, v;
    while (chan_recv(m.r, &v) == 0) {
        n++;
        s += v;
    }
    wg_wait(m.wg, MC_WORK + 1);
    CHECK(n == m.niter && s == m.expect, "sum %ld (want %ld) of %ld values (want %d)", s, m.expect,
          n, m.niter);
    freec(m.q);
    freec(m.r);
    freec_later(m.wg);
    freec(m.workers);
}

/* ---- Go: TestChanSendBarrier and TestChanSendSelectBarrier ---------------------------------- */

struct req {
    chan_t *ch, *done, *wg;
    int use_select;
};

static void req_reply(void *p)
{
    struct req *q = p;
    long v = 42;
    if (q->use_select) {
        struct chan_case cs[] = {chan_case_send(q->ch, &v), chan_case_recv(q->done, NULL)};
        int r = chan_select(cs, 2);
        CHECK(r == 0 && cs[0].ok, "select %d", r);
    } else {
        CHECK(chan_send(q->ch, &v) == 0, "send");
    }
    wg_done(q->wg);
}

static void send_barrier_run(int use_select)
{
    int outer = ON_GS ? 10 : 4, inner = sized(1000, 100);
    chan_t *wg = mkc(0, (size_t)inner);
    struct req *rq = calloc((size_t)inner, sizeof *rq);
    for (int i = 0; i < outer; i++) {
        for (int j = 0; j < inner; j++) {
            rq[j] = (struct req){mkc(sizeof(long), 0), mkc(0, 0), wg, use_select};
            task_go(req_reply, &rq[j]);
            long v = 0;
            CHECK(chan_recv(rq[j].ch, &v) == 0 && v == 42, "reply %ld", v);
            task_yield();
        }
        wg_wait(wg, inner); /* every replier has returned: its channels may go */
        for (int j = 0; j < inner; j++) {
            freec(rq[j].ch);
            freec(rq[j].done);
        }
    }
    free(rq);
    freec_later(wg);
}

static void send_barrier_main(void *arg)
{
    (void)arg;
    send_barrier_run(0);
    send_barrier_run(1);
}

/* ---- Go: TestPseudoRandomSend and TestChanSendInterface ------------------------------------ */

enum { PRS_N = 100 };

struct prs {
    chan_t *c, *wg;
    long got[PRS_N];
};

static void prs_recv(void *p)
{
    struct prs *a = p;
    for (int i = 0; i < PRS_N; i++) {
        task_yield();
        CHECK(chan_recv(a->c, &a->got[i]) == 0, "recv");
    }
    wg_done(a->wg);
}

static void pseudo_random_send_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 1);
    for (int cap = 0; cap <= PRS_N; cap += PRS_N) {
        struct prs a = {mkc(sizeof(long), (size_t)cap), wg, {0}};
        task_go(prs_recv, &a);
        long one = 1, zero = 0;
        for (int i = 0; i < PRS_N; i++) {
            struct chan_case cs[] = {chan_case_send(a.c, &one), chan_case_send(a.c, &zero)};
            int r = chan_select(cs, 2);
            CHECK((r == 0 || r == 1) && cs[r].ok, "select %d", r);
        }
        wg_wait(wg, 1);
        int n1 = 0;
        for (int i = 0; i < PRS_N; i++)
            n1 += a.got[i] == 1;
        /* Go's bound: each case more than a tenth of the time (a uniform choice fails it with
         * probability below 1e-15). */
        CHECK(n1 > PRS_N / 10 && PRS_N - n1 > PRS_N / 10, "cap %d: %d ones of %d", cap, n1, PRS_N);
        freec(a.c);
    }
    /* TestChanSendInterface: send cases on a full channel of pointers fall to the default. */
    chan_t *c = mkc(sizeof(void *), 1);
    void *m = &c, *m2 = &wg;
    CHECK(chan_send(c, &m) == 0, "send");
    struct chan_case cs[] = {chan_case_send(c, &m), chan_case_send(c, &m2)};
    CHECK(chan_tryselect(cs, 1) == -EAGAIN && chan_tryselect(cs, 2) == -EAGAIN, "full");
    void *got = NULL;
    CHECK(chan_recv(c, &got) == 0 && got == m, "pointer value");
    freec(c);
    freec_later(wg);
}

/* ---- Go's race tests on close (runtime/race/testdata: TestRaceChanCloseSend, ...) ----------- */

struct cr {
    chan_t *c, *wg;
    atomic_long sent, received, closes_ok;
};

static void cr_sender(void *p)
{
    struct cr *a = p;
    long i = 0;
    while (send_long(a->c, i) == 0) {
        atomic_fetch_add(&a->sent, 1);
        i++;
    }
    wg_done(a->wg);
}

static void cr_receiver(void *p)
{
    struct cr *a = p;
    long v;
    while (chan_recv(a->c, &v) == 0)
        atomic_fetch_add(&a->received, 1);
    wg_done(a->wg);
}

static void cr_closer(void *p)
{
    struct cr *a = p;
    task_yield();
    int r = chan_close(a->c);
    CHECK(r == 0 || r == -EPIPE, "close %d", r);
    if (r == 0)
        atomic_fetch_add(&a->closes_ok, 1);
    wg_done(a->wg);
}

static void close_races_main(void *arg)
{
    (void)arg;
    int rounds = sized(300, 100);
    chan_t *wg = mkc(0, 16);
    for (int i = 0; i < rounds; i++) {
        size_t cap = (size_t)(i % 3 == 0 ? 0 : i % 3 == 1 ? 1 : 8);
        struct cr a = {.c = mkc(sizeof(long), cap), .wg = wg};
        for (int k = 0; k < 3; k++)
            task_go(cr_sender, &a);
        for (int k = 0; k < 2; k++)
            task_go(cr_receiver, &a);
        for (int k = 0; k < 1 + i % 3; k++)
            task_go(cr_closer, &a);
        if (i % 2)
            task_sleep_ms(0);
        wg_wait(wg, 5 + 1 + i % 3);
        CHECK(atomic_load(&a.closes_ok) == 1, "%ld closes returned 0", atomic_load(&a.closes_ok));
        CHECK(atomic_load(&a.sent) == atomic_load(&a.received), "cap %zu: %ld sent, %ld received",
              cap, atomic_load(&a.sent), atomic_load(&a.received));
        freec(a.c);
    }
    freec_later(wg);
}

/* ---- Go: TestSelectStackAdjust (a select blocked while others come and go) ----------------- */

struct ssa {
    chan_t *c, *d, *ready;
    int dup;
};

static void ssa_select(void *p)
{
    struct ssa *a = p;
    CHECK(chan_send(a->ready, NULL) == 0, "ready");
    long val = 42, *cx = &val, junk1 = 7, junk2 = 8;
    struct chan_case cs[] = {
        chan_case_recv(a->c, &cx),
        chan_case_recv(a->dup ? a->c : NULL, &junk1),
        chan_case_recv(a->d, NULL),
        chan_case_recv(a->dup ? a->d : NULL, &junk2),
    };
    int r = chan_select(cs, 4);
    CHECK((r == 2 || (a->dup && r == 3)) && !cs[r].ok, "dup %d: chose %d", a->dup, r);
    /* Only the chosen case's elem is written: the pointer received into and the others keep
     * their values. */
    CHECK(cx == &val && val == 42, "cx moved or val changed");
    CHECK(junk1 == 7 && (r == 3 || junk2 == 8) && (r != 3 || junk2 == 0), "elems %ld %ld", junk1,
          junk2);
    CHECK(chan_send(a->ready, NULL) == 0, "done");
}

struct churn {
    chan_t *a, *b, *wg;
};

static void churn_echo(void *p)
{
    struct churn *k = p;
    long v;
    if (chan_recv(k->a, &v) == 0)
        CHECK(chan_send(k->b, &v) == 0, "echo");
    wg_done(k->wg);
}

static void select_stack_adjust_main(void *arg)
{
    (void)arg;
    chan_t *c = mkc(sizeof(long *), 0), *d = mkc(sizeof(long *), 0);
    struct ssa a1 = {c, d, mkc(0, 0), 0}, a2 = {c, d, mkc(0, 0), 1};
    task_go(ssa_select, &a1);
    task_go(ssa_select, &a2);
    CHECK(chan_recv(a1.ready, NULL) == 0 && chan_recv(a2.ready, NULL) == 0, "ready");
    wait_queued(d, CHAN_RECV, 3); /* a1 once, a2 twice */
    /* Tasks come and go while the selects wait (Go shrinks the selects' stacks here). */
    struct churn k = {mkc(sizeof(long), 0), mkc(sizeof(long), 0), mkc(0, 64)};
    for (int round = 0; round < sized(20, 5); round++) {
        for (int i = 0; i < 16; i++)
            task_go(churn_echo, &k);
        for (long i = 0; i < 16; i++) {
            long v = -1;
            CHECK(chan_send(k.a, &i) == 0 && chan_recv(k.b, &v) == 0 && v == i, "churn");
        }
        wg_wait(k.wg, 16);
    }
    CHECK(hchan_waiting(d, CHAN_RECV) == 3 && hchan_waiting(c, CHAN_RECV) == 3, "still queued");
    CHECK(chan_close(d) == 0, "close");
    CHECK(chan_recv(a1.ready, NULL) == 0 && chan_recv(a2.ready, NULL) == 0, "woken");
    CHECK(hchan_waiting(c, CHAN_RECV) == 0, "select left a sudog on c");
    freec(c);
    freec(d);
    freec_later(a1.ready);
    freec_later(a2.ready);
    freec(k.a);
    freec(k.b);
    freec_later(k.wg);
}

/* ---- Go's benchmarks, run once as correctness checks ---------------------------------------- */

/* BenchmarkChanProdCons{0,10,100}: producers send 1s, then a 0 each; consumers count 1s until
 * they get a 0. */
struct pc {
    chan_t *c, *wg, *quit;
    atomic_long left, sent, got;
    int use_select;
};

static void pc_producer(void *p)
{
    struct pc *a = p;
    long one = 1, zero = 0;
    while (atomic_fetch_sub(&a->left, 1) > 0) {
        if (a->use_select) {
            struct chan_case cs[] = {chan_case_send(a->c, &one), chan_case_recv(a->quit, NULL)};
            CHECK(chan_select(cs, 2) == 0, "select send");
        } else {
            CHECK(chan_send(a->c, &one) == 0, "send");
        }
        atomic_fetch_add(&a->sent, 1);
    }
    CHECK(chan_send(a->c, &zero) == 0, "send 0");
    wg_done(a->wg);
}

static void pc_consumer(void *p)
{
    struct pc *a = p;
    for (;;) {
        long v = -1;
        if (a->use_select) {
            struct chan_case cs[] = {chan_case_recv(a->c, &v), chan_case_recv(a->quit, NULL)};
            CHECK(chan_select(cs, 2) == 0, "select recv");
        } else {
            CHECK(chan_recv(a->c, &v) == 0, "recv");
        }
        if (v != 1)
            break;
        atomic_fetch_add(&a->got, 1);
    }
    wg_done(a->wg);
}

/* BenchmarkChanSync: two tasks hand values over an unbuffered channel, one receiving first and
 * the other sending first, taking turns by the parity of a shared counter. */
struct csync {
    chan_t *c, *wg;
    atomic_long n;
};

static void csync_task(void *p)
{
    struct csync *a = p;
    for (;;) {
        long i = atomic_fetch_sub(&a->n, 1) - 1;
        if (i < 0)
            break;
        for (int g = 0; g < 100; g++) {
            long v = i;
            if (i % 2 == 0) {
                CHECK(chan_recv(a->c, &v) == 0 && chan_send(a->c, &v) == 0, "even");
            } else {
                CHECK(chan_send(a->c, &v) == 0 && chan_recv(a->c, &v) == 0, "odd");
            }
        }
    }
    wg_done(a->wg);
}

/* BenchmarkChanPopular: many tasks each select over one channel nobody sends on and one of
 * their own; the main task sends on each of theirs in turn, round after round. */
struct pop {
    chan_t *c, *d, *wg;
    int rounds;
};

static void pop_task(void *p)
{
    struct pop *a = p;
    for (int i = 0; i < a->rounds; i++) {
        struct chan_case cs[] = {chan_case_recv(a->c, NULL), chan_case_recv(a->d, NULL)};
        int r = chan_select(cs, 2);
        CHECK(r == 1 && cs[1].ok, "popular: %d", r);
    }
    wg_done(a->wg);
}

static void benchmarks_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 4096);
    int procs = 2;
    for (int sel = 0; sel <= 1; sel++) {
        for (int cap = 0; cap <= 100; cap = cap ? cap * 10 : 10) {
            struct pc a = {.c = mkc(sizeof(long), (size_t)cap), .wg = wg, .quit = mkc(0, 0)};
            a.use_select = sel;
            atomic_store(&a.left, sized(100000, 20000));
            for (int p = 0; p < procs; p++) {
                task_go(pc_producer, &a);
                task_go(pc_consumer, &a);
            }
            wg_wait(wg, 2 * procs);
            CHECK(atomic_load(&a.sent) == atomic_load(&a.got) && chan_len(a.c) == 0,
                  "prodcons sel %d cap %d: %ld sent, %ld received", sel, cap, atomic_load(&a.sent),
                  atomic_load(&a.got));
            freec(a.c);
            freec(a.quit);
        }
    }
    struct csync s = {.c = mkc(sizeof(long), 0), .wg = wg};
    atomic_store(&s.n, sized(200, 40));
    task_go(csync_task, &s);
    task_go(csync_task, &s);
    wg_wait(wg, 2);
    freec(s.c);

    int n = ON_GS ? (under_sanitizer() ? 1000 : 2000) : 100;
    int rounds = sized(10, 10);
    chan_t *c = mkc(0, 0);
    struct pop *ps = calloc((size_t)n, sizeof *ps);
    for (int j = 0; j < n; j++) {
        ps[j] = (struct pop){c, mkc(0, 0), wg, rounds};
        task_go(pop_task, &ps[j]);
    }
    for (int i = 0; i < rounds; i++)
        for (int j = 0; j < n; j++)
            CHECK(chan_send(ps[j].d, NULL) == 0, "popular send");
    wg_wait(wg, n);
    CHECK(hchan_waiting(c, CHAN_RECV) == 0, "sudogs left on the popular channel");
    for (int j = 0; j < n; j++)
        freec(ps[j].d);
    free(ps);
    freec(c);
    freec_later(wg);
}

/* BenchmarkSelectProdCons: the same with a timer's channel (never firing) in every select. */
struct spc {
    chan_t *myc, *myclose, *wg;
    atomic_long left, got;
};

static void spc_producer(void *p)
{
    struct spc *a = p;
    chan_timer_t *t = chan_timer_make(3600LL * 1000 * MS);
    CHECK(t != NULL, "timer");
    long one = 1, zero = 0;
    while (atomic_fetch_sub(&a->left, 1) > 0) {
        struct chan_case cs[] = {chan_case_send(a->myc, &one),
                                 chan_case_recv(chan_timer_chan(t), NULL),
                                 chan_case_recv(a->myclose, NULL)};
        CHECK(chan_select(cs, 3) == 0, "producer select");
    }
    CHECK(chan_send(a->myc, &zero) == 0, "send 0");
    chan_timer_free(t);
    wg_done(a->wg);
}

static void spc_consumer(void *p)
{
    struct spc *a = p;
    chan_timer_t *t = chan_timer_make(3600LL * 1000 * MS);
    CHECK(t != NULL, "timer");
    for (;;) {
        long v = -1;
        struct chan_case cs[] = {chan_case_recv(a->myc, &v),
                                 chan_case_recv(chan_timer_chan(t), NULL),
                                 chan_case_recv(a->myclose, NULL)};
        CHECK(chan_select(cs, 3) == 0, "consumer select");
        if (v != 1)
            break;
        atomic_fetch_add(&a->got, 1);
    }
    chan_timer_free(t);
    wg_done(a->wg);
}

static void select_prod_cons_main(void *arg)
{
    (void)arg;
    long total = sized(50000, 10000);
    struct spc a = {.myc = mkc(sizeof(long), 128), .myclose = mkc(0, 0), .wg = mkc(0, 4)};
    atomic_store(&a.left, total);
    for (int p = 0; p < 2; p++) {
        task_go(spc_producer, &a);
        task_go(spc_consumer, &a);
    }
    wg_wait(a.wg, 4);
    CHECK(atomic_load(&a.got) == total, "%ld of %ld", atomic_load(&a.got), total);
    freec(a.myc);
    freec(a.myclose);
    freec_later(a.wg);
}

/* ---- Go's test/chan programs ----------------------------------------------------------------- */

/* fifo.go: a buffered channel is FIFO; and a chain of tasks each waits for its turn, then takes
 * the next value from one unbuffered channel: the blocked receivers are served in order. */
struct link {
    chan_t *ch, *in, *out;
    long val;
};

static void fifo_link(void *p)
{
    struct link *l = p;
    long v = -1;
    CHECK(chan_recv(l->in, NULL) == 0, "turn");
    CHECK(chan_recv(l->ch, &v) == 0 && v == l->val, "fifo: got %ld want %ld", v, l->val);
    CHECK(chan_send(l->out, NULL) == 0, "pass");
}

static void fifo_main(void *arg)
{
    (void)arg;
    enum { N = 10 };
    chan_t *ch = mkc(sizeof(long), N);
    for (long i = 0; i < N; i++)
        CHECK(send_long(ch, i) == 0, "send");
    for (long i = 0; i < N; i++) {
        long v = -1;
        CHECK(chan_recv(ch, &v) == 0 && v == i, "async fifo");
    }
    freec(ch);

    int n = sized(1000, 100);
    struct link *ls = calloc((size_t)n, sizeof *ls);
    chan_t **cs = calloc((size_t)n + 1, sizeof *cs);
    ch = mkc(sizeof(long), 0);
    cs[0] = mkc(0, 0);
    for (int i = 0; i < n; i++) {
        cs[i + 1] = mkc(0, 0);
        ls[i] = (struct link){ch, cs[i], cs[i + 1], i};
        task_go(fifo_link, &ls[i]);
    }
    CHECK(chan_send(cs[0], NULL) == 0, "start");
    for (long i = 0; i < n; i++)
        CHECK(send_long(ch, i) == 0, "sync send");
    CHECK(chan_recv(cs[n], NULL) == 0, "end");
    for (int i = 0; i <= n; i++)
        freec_later(cs[i]);
    freec_later(ch);
    free(ls);
    free(cs);
}

/* goroutines.go: a chain of tasks, each passing one value from its right to its left. */
struct hop {
    chan_t *left, *right;
};

static void chain_hop(void *p)
{
    struct hop *h = p;
    long v = -1;
    CHECK(chan_recv(h->right, &v) == 0 && chan_send(h->left, &v) == 0, "hop");
}

static void chain_first(void *p) { CHECK(send_long(p, 1) == 0, "first"); }

static void goroutines_main(void *arg)
{
    (void)arg;
    /* Under TSan every live G is a fiber with a trace of its own (256 KiB written): 5,000 there,
     * as test_mpg's many_gs. */
    const char *mode = getenv("CHAN_TEST_MODE");
    bool tsan = mode && strcmp(mode, "tsan") == 0;
    int n = ON_GS ? (tsan ? 5000 : 10000) : (under_sanitizer() ? 50 : 300);
    chan_t **cs = calloc((size_t)n + 1, sizeof *cs);
    struct hop *hs = calloc((size_t)n, sizeof *hs);
    cs[0] = mkc(sizeof(long), 0);
    for (int i = 0; i < n; i++) {
        cs[i + 1] = mkc(sizeof(long), 0);
        hs[i] = (struct hop){cs[i], cs[i + 1]};
        task_go(chain_hop, &hs[i]);
    }
    task_go(chain_first, cs[n]);
    long v = -1;
    CHECK(chan_recv(cs[0], &v) == 0 && v == 1, "leftmost got %ld", v);
    for (int i = 0; i <= n; i++)
        freec_later(cs[i]);
    free(cs);
    free(hs);
}

/* select.go: a non-blocking select of two send cases, each channel set to nil once used, until
 * only the default is left; the value of each case is worked out before the select (in Go every
 * case's expression is evaluated, chosen or not: 10 evaluations in all). */
static int select_go_send(chan_t *a, chan_t *b, unsigned *counter, unsigned *shift)
{
    int i = 0;
    for (;;) {
        unsigned va = (++*counter, 1u << *shift), vb = (++*counter, 1u << *shift);
        struct chan_case cs[] = {chan_case_send(a, &va), chan_case_send(b, &vb)};
        int r = chan_tryselect(cs, 2);
        if (r == -EAGAIN)
            break;
        CHECK((r == 0 || r == 1) && cs[r].ok, "select %d", r);
        i++;
        if (r == 0)
            a = NULL;
        else
            b = NULL;
        ++*shift;
    }
    return i;
}

static void select_go_main(void *arg)
{
    (void)arg;
    unsigned counter = 0, shift = 0, av = 0, bv = 0;
    chan_t *a = mkc(sizeof(unsigned), 1), *b = mkc(sizeof(unsigned), 1);
    CHECK(select_go_send(a, b, &counter, &shift) == 2, "two sends");
    CHECK(chan_recv(a, &av) == 0 && chan_recv(b, &bv) == 0 && (av | bv) == 3, "values %u %u", av,
          bv);
    CHECK(select_go_send(a, NULL, &counter, &shift) == 1, "one send");
    CHECK(counter == 10, "counter %u", counter);
    freec(a);
    freec(b);
}

/* select2.go: a select loop of many rounds does not grow the heap (malloc's count of bytes in
 * use; a sanitizer's allocator does not keep it, and then the check is void). Also with 20
 * cases, past the 8 that a select keeps on its stack. */
struct s2 {
    chan_t *c, *wg;
    int n;
};

static void s2_sender(void *p)
{
    struct s2 *a = p;
    for (int i = 0; i < a->n; i++)
        CHECK(send_long(a->c, 1) == 0, "send");
    wg_done(a->wg);
}

static void s2_receive(chan_t *c, chan_t *dummy, int n, int ncases)
{
    struct chan_case cs[20];
    long v;
    cs[0] = chan_case_recv(c, &v);
    for (int k = 1; k < ncases; k++)
        cs[k] = chan_case_recv(dummy, NULL);
    for (int i = 0; i < n; i++) {
        int r = chan_select(cs, (size_t)ncases);
        CHECK(r == 0 && v == 1, "select %d", r);
    }
}

static void select2_main(void *arg)
{
    (void)arg;
    int n = sized(100000, 20000);
    struct s2 a = {mkc(sizeof(long), 0), mkc(0, 2), n / 2};
    chan_t *dummy = mkc(0, 0);
    for (int ncases = 2; ncases <= 20; ncases += 18) {
        /* A warm-up, then up to three rounds measured: a leak of the selects grows the heap in
         * every round (a block a select, 32 bytes at least: 640 KB in the smallest round),
         * while a scheduler that makes an M in one round (its signal stack and its state, ~70 KB
         * each) does not do it in every one. */
        size_t grew = SIZE_MAX;
        for (int round = 0; round < 4 && grew > 110000; round++) {
            size_t before = mallinfo2().uordblks;
            task_go(s2_sender, &a); /* two senders: a thread and a G where both kinds run */
            task_go(s2_sender, &a);
            s2_receive(a.c, dummy, 2 * a.n, ncases);
            wg_wait(a.wg, 2);
            size_t after = mallinfo2().uordblks;
            if (round > 0)
                grew = after <= before ? 0 : after - before;
        }
        CHECK(grew <= 110000, "%d-case selects: heap grew by %zu in each of three rounds", ncases,
              grew);
    }
    freec(a.c);
    freec_later(a.wg);
    freec(dummy);
}

/* select4.go: the case not chosen leaves its elem alone (Go does not evaluate its left side);
 * select6.go: a select's receive case that lost does not keep the channel's queue from serving
 * the next receiver; select7.go: every pairing of send, one-case select and two-case select
 * against receive, one-case select and two-case select, the receiver blocked first. */
struct s6 {
    chan_t *c1, *c2, *c3, *wg;
};

static void s6_recv_c1(void *p)
{
    struct s6 *a = p;
    CHECK(chan_recv(a->c1, NULL) == 0, "recv c1");
    wg_done(a->wg);
}

static void s6_select(void *p)
{
    struct s6 *a = p;
    struct chan_case cs[] = {chan_case_recv(a->c1, NULL), chan_case_recv(a->c2, NULL)};
    int r = chan_select(cs, 2);
    CHECK(r == 1, "select6: chose %d", r);
    CHECK(chan_send(a->c3, NULL) == 0, "c3");
    CHECK(chan_recv(a->c1, NULL) == 0, "recv c1 again");
    wg_done(a->wg);
}

static void s6_send_c2(void *p)
{
    struct s6 *a = p;
    CHECK(chan_send(a->c2, NULL) == 0, "send c2");
    wg_done(a->wg);
}

struct s7 {
    chan_t *c, *wg;
    int kind;
};

static void s7_recv(void *p)
{
    struct s7 *a = p;
    long v = -1;
    chan_t *other = mkc(sizeof(long), 0);
    if (a->kind == 0) {
        CHECK(chan_recv(a->c, &v) == 0, "recv");
    } else {
        struct chan_case cs[] = {chan_case_recv(a->c, &v), chan_case_recv(other, &v)};
        CHECK(chan_select(cs, (size_t)a->kind) == 0, "select recv");
    }
    CHECK(v == 1, "select7 recv kind %d: %ld", a->kind, v);
    freec(other);
    wg_done(a->wg);
}

static void select467_main(void *arg)
{
    (void)arg;
    { /* select4 */
        chan_t *c = mkc(sizeof(long), 1), *c1 = mkc(sizeof(long), 0);
        CHECK(send_long(c, 42) == 0, "send");
        long x = 0, never = 5;
        struct chan_case cs[] = {chan_case_recv(c1, &never), chan_case_recv(c, &x)};
        CHECK(chan_select(cs, 2) == 1 && x == 42 && never == 5, "select4: %ld %ld", x, never);
        freec(c);
        freec(c1);
    }
    { /* select6 */
        struct s6 a = {mkc(0, 0), mkc(0, 0), mkc(0, 0), mkc(0, 3)};
        task_go(s6_recv_c1, &a);
        wait_queued(a.c1, CHAN_RECV, 1);
        task_go(s6_select, &a);
        wait_queued(a.c1, CHAN_RECV, 2);
        task_go(s6_send_c2, &a);
        CHECK(chan_recv(a.c3, NULL) == 0, "c3");
        CHECK(chan_send(a.c1, NULL) == 0 && chan_send(a.c1, NULL) == 0, "c1 twice");
        wg_wait(a.wg, 3);
        freec(a.c1);
        freec(a.c2);
        freec(a.c3);
        freec_later(a.wg);
    }
    chan_t *wg = mkc(0, 1);
    for (int send = 0; send < 3; send++) /* select7 */
        for (int recv = 0; recv < 3; recv++) {
            struct s7 a = {mkc(sizeof(long), 0), wg, recv};
            task_go(s7_recv, &a);
            task_yield(); /* as Go's runtime.Gosched: the receiver usually blocks first */
            long one = 1;
            chan_t *c2 = mkc(sizeof(long), 0);
            if (send == 0) {
                CHECK(chan_send(a.c, &one) == 0, "send");
            } else {
                struct chan_case cs[] = {chan_case_send(a.c, &one), chan_case_send(c2, &one)};
                CHECK(chan_select(cs, (size_t)send) == 0, "select send");
            }
            wg_wait(wg, 1);
            freec(a.c);
            freec(c2);
        }
    freec_later(wg);
}

/* select8.go: against a task that sends for ever on an unbuffered channel, a receive case
 * gets its value, an empty select with a default does nothing, and a select with a receive
 * case, a send case on the same channel and a default never chooses the send: only a
 * receiver could take it, and the select cannot pair with itself. */
struct s8 {
    chan_t *c, *wg;
};

static void s8_sender(void *p)
{
    struct s8 *a = p;
    while (send_long(a->c, 5) == 0) {
    }
    wg_done(a->wg);
}

static void select8_main(void *arg)
{
    (void)arg;
    struct s8 a = {mkc(sizeof(long), 0), mkc(0, 1)};
    task_go(s8_sender, &a);
    long v = -1, ten = 10;
    struct chan_case cs[] = {chan_case_recv(a.c, &v), chan_case_send(a.c, &ten)};
    CHECK(chan_select(cs, 1) == 0 && v == 5, "recv %ld", v);
    CHECK(chan_tryselect(NULL, 0) == -EAGAIN, "default alone");
    for (int i = 0; i < sized(2000, 500); i++) {
        v = -1;
        int r = chan_tryselect(cs, i % 2 + 1);
        CHECK(r == -EAGAIN || (r == 0 && v == 5), "round %d: chose %d (%ld)", i, r, v);
        if (i % 64 == 0)
            task_yield();
    }
    CHECK(chan_close(a.c) == 0, "close");
    wg_wait(a.wg, 1);
    freec(a.c);
    freec_later(a.wg);
}

/* zerosize.go and sendstmt.go: channels of zero-size elements, buffered or not; a channel sent
 * over a channel, and a select case that sends on the channel just received. */
static void zerosize_sendstmt_main(void *arg)
{
    (void)arg;
    size_t caps[] = {0, 1, SIZE_MAX};
    for (int i = 0; i < 3; i++) {
        chan_t *c = mkc(0, caps[i]);
        CHECK(chan_cap(c) == caps[i] && chan_len(c) == 0, "cap %zu", caps[i]);
        if (caps[i]) {
            CHECK(chan_send(c, NULL) == 0 && chan_len(c) == 1, "send");
            CHECK(chan_recv(c, NULL) == 0 && chan_len(c) == 0, "recv");
        }
        freec(c);
    }
    chan_t *cc = mkc(sizeof(chan_t *), 1), *c = mkc(sizeof(long), 1), *got = NULL;
    CHECK(chan_send(cc, &c) == 0, "send chan");
    CHECK(chan_recv(cc, &got) == 0 && got == c, "recv chan");
    long two = 2, v = 0;
    struct chan_case cs[] = {chan_case_send(got, &two)};
    CHECK(chan_tryselect(cs, 1) == 0, "nonblock");
    CHECK(chan_recv(c, &v) == 0 && v == 2, "bad receive %ld", v);
    bool t = false || true, b = false;
    chan_t *cb = mkc(sizeof(bool), 1);
    CHECK(chan_send(cb, &t) == 0 && chan_recv(cb, &b) == 0 && b, "sent false");
    freec(cb);
    freec(cc);
    freec(c);
}

/* select5.go: Go generates a program with every combination of case kinds; here the table is
 * walked directly. Each of up to three cases is one of: a nil channel (send or receive), a
 * ready send (room in a buffer), a ready receive (a value buffered), a blocked send (a full
 * buffer), a blocked receive (an empty buffer), a receive from a closed channel; with and
 * without a default. Checked: a ready case is chosen whenever there is one, with its effect and
 * nothing else; with none ready, the default, or the one that a peer then makes ready. */
enum kind { K_NILSEND, K_NILRECV, K_SEND, K_RECV, K_SENDBLK, K_RECVBLK, K_CLOSED, K_KINDS };

static bool kind_ready(int k) { return k == K_SEND || k == K_RECV || k == K_CLOSED; }

struct s5peer {
    chan_t *c, *wg;
    int kind;
};

/* Makes a blocked case ready: takes from the full buffer, or sends into the empty one. */
static void s5_unblock(void *p)
{
    struct s5peer *a = p;
    long v = -1;
    if (a->kind == K_SENDBLK)
        CHECK(chan_recv(a->c, &v) == 0 && v == 100, "peer recv %ld", v);
    else
        CHECK(send_long(a->c, 200) == 0, "peer send");
    wg_done(a->wg);
}

static void select5_case(const int *kinds, int n, bool dflt, chan_t *wg)
{
    chan_t *cs_chan[3];
    long elem[3], sendv[3];
    struct chan_case cs[3];
    int nready = 0, firstblk = -1;
    for (int i = 0; i < n; i++) {
        int k = kinds[i];
        elem[i] = -7;
        sendv[i] = 300 + i;
        cs_chan[i] = NULL;
        if (k != K_NILSEND && k != K_NILRECV)
            cs_chan[i] = mkc(sizeof(long), 1);
        if (k == K_RECV)
            CHECK(send_long(cs_chan[i], 400 + i) == 0, "fill");
        if (k == K_SENDBLK)
            CHECK(send_long(cs_chan[i], 100) == 0, "fill");
        if (k == K_CLOSED)
            CHECK(chan_close(cs_chan[i]) == 0, "close");
        bool send = k == K_NILSEND || k == K_SEND || k == K_SENDBLK;
        cs[i] = send ? chan_case_send(cs_chan[i], &sendv[i]) : chan_case_recv(cs_chan[i], &elem[i]);
        nready += kind_ready(k);
        if (firstblk < 0 && (k == K_SENDBLK || k == K_RECVBLK))
            firstblk = i;
    }
    int r;
    if (dflt) {
        r = chan_tryselect(cs, (size_t)n);
    } else if (nready == 0 && firstblk < 0) {
        r = chan_select_until(cs, (size_t)n, chan_now() + MS);
        CHECK(r == -ETIMEDOUT, "only nil cases: %d", r);
    } else {
        struct s5peer peer = {firstblk >= 0 ? cs_chan[firstblk] : NULL, wg,
                              firstblk >= 0 ? kinds[firstblk] : 0};
        if (nready == 0)
            task_go(s5_unblock, &peer);
        r = chan_select(cs, (size_t)n);
        if (nready == 0) {
            CHECK(r == firstblk, "chose %d, want the case made ready, %d", r, firstblk);
            wg_wait(wg, 1);
        }
    }
    if (nready == 0 && dflt)
        CHECK(r == -EAGAIN, "nothing ready: %d", r);
    if (nready > 0)
        CHECK(r >= 0 && r < n && kind_ready(kinds[r]), "chose %d, not a ready case", r);
    for (int i = 0; i < n; i++) { /* the chosen case's effect, and no other */
        int k = kinds[i];
        long v = -1;
        if (i == r && k == K_SEND) {
            CHECK(cs[i].ok && chan_tryrecv(cs_chan[i], &v) == 0 && v == 300 + i, "sent %ld", v);
        } else if (i == r && k == K_RECV) {
            CHECK(cs[i].ok && elem[i] == 400 + i && chan_len(cs_chan[i]) == 0, "recv");
        } else if (i == r && k == K_CLOSED) {
            CHECK(!cs[i].ok && elem[i] == 0, "closed");
        } else if (i == r && k == K_SENDBLK) {
            CHECK(cs[i].ok && chan_tryrecv(cs_chan[i], &v) == 0 && v == 300 + i, "sent %ld", v);
        } else if (i == r && k == K_RECVBLK) {
            CHECK(cs[i].ok && elem[i] == 200, "recv %ld", elem[i]);
        } else {
            CHECK(elem[i] == -7, "case %d (kind %d) not chosen but its elem written", i, k);
            if (k == K_SEND)
                CHECK(chan_len(cs_chan[i]) == 0, "case %d not chosen but sent", i);
            if (k == K_RECV || k == K_SENDBLK)
                CHECK(chan_len(cs_chan[i]) == 1, "case %d not chosen but moved", i);
        }
    }
    for (int i = 0; i < n; i++)
        freec(cs_chan[i]);
}

static void select5_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 1);
    int kinds[3];
    for (int n = 1; n <= 3; n++) {
        int total = n == 1 ? K_KINDS : n == 2 ? K_KINDS * K_KINDS : K_KINDS * K_KINDS * K_KINDS;
        for (int code = 0; code < total; code++) {
            for (int i = 0, c = code; i < n; i++, c /= K_KINDS)
                kinds[i] = c % K_KINDS;
            for (int d = 0; d < 2; d++)
                select5_case(kinds, n, d, wg);
        }
    }
    freec_later(wg);
}

/* powser1.go: power series as streams of rationals, each a pair of unbuffered channels (a
 * demand, then the datum), with a task per operator and one per value of every split: heavy
 * select (getn sends two demands and takes two data in whatever order they come) and many
 * tasks. Go's program ends with its goroutines still blocked; here the main task then closes
 * every channel the series made, and each task, finding a channel closed, returns. */
struct rat {
    int64_t num, den; /* den 0: the end of a series (Go's finis) */
};

struct dch {
    chan_t *req, *dat;
};

static struct {
    pthread_mutex_t mu;
    chan_t **all; /* every channel of the series, closed at the end (ps_end) */
    size_t n, cap;
    struct dch **dchs;
    size_t nd, dcap;
    bool closing; /* a channel made from now on is closed at once */
    atomic_int seqno;
    chan_t *wg; /* every task of the series signals here as it returns */
    atomic_long ntasks;
} ps = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *grow(void *v, size_t *cap, size_t size)
{
    *cap = *cap ? 2 * *cap : 256;
    v = realloc(v, *cap * size);
    CHECK(v != NULL, "realloc");
    return v;
}

static chan_t *ps_chan_cap(size_t elemsize, size_t cap)
{
    chan_t *c = mkc(elemsize, cap);
    pthread_mutex_lock(&ps.mu);
    if (ps.n == ps.cap)
        ps.all = grow(ps.all, &ps.cap, sizeof *ps.all);
    ps.all[ps.n++] = c;
    if (ps.closing)
        chan_close(c);
    pthread_mutex_unlock(&ps.mu);
    return c;
}

static chan_t *ps_chan(size_t elemsize) { return ps_chan_cap(elemsize, 0); }

static struct dch *mkdch(void)
{
    struct dch *d = malloc(sizeof *d);
    d->req = ps_chan(sizeof(int));
    d->dat = ps_chan(sizeof(struct rat));
    pthread_mutex_lock(&ps.mu);
    if (ps.nd == ps.dcap)
        ps.dchs = grow(ps.dchs, &ps.dcap, sizeof *ps.dchs);
    ps.dchs[ps.nd++] = d;
    pthread_mutex_unlock(&ps.mu);
    return d;
}

/* A series task: fn(arg), arg freed after, then one signal on ps.wg. */
struct ps_task {
    void (*fn)(void *);
    void *arg;
};

static void ps_trampoline(void *p)
{
    struct ps_task t = *(struct ps_task *)p;
    free(p);
    t.fn(t.arg);
    free(t.arg);
    CHECK(chan_send(ps.wg, NULL) == 0, "ps wg");
}

static void ps_go(void (*fn)(void *), void *arg)
{
    struct ps_task *t = malloc(sizeof *t);
    *t = (struct ps_task){fn, arg};
    atomic_fetch_add(&ps.ntasks, 1);
    task_go(ps_trampoline, t);
}

/* Each primitive returns 0, or nonzero once the series is torn down (a channel closed). */
#define PS_TRY(x)                                                                                  \
    do {                                                                                           \
        if ((x) != 0)                                                                              \
            return;                                                                                \
    } while (0)

static int ps_req(struct dch *d) { return chan_recv(d->req, NULL); }

static int ps_put_dat(struct dch *d, struct rat r) { return chan_send(d->dat, &r); }

static int ps_put(struct dch *d, struct rat r) { return ps_req(d) || ps_put_dat(d, r); }

static int ps_get(struct dch *d, struct rat *r)
{
    int seq = atomic_fetch_add(&ps.seqno, 1) + 1;
    return chan_send(d->req, &seq) || chan_recv(d->dat, r);
}

/* getn: demand from both series, take both data, in the order they become ready. */
static int ps_get2(struct dch *u, struct dch *v, struct rat out[2])
{
    chan_t *req[2] = {u->req, v->req}, *dat[2] = {NULL, NULL};
    struct rat it[2];
    for (int n = 4; n > 0; n--) {
        int seq = atomic_fetch_add(&ps.seqno, 1) + 1;
        struct chan_case cs[] = {chan_case_send(req[0], &seq), chan_case_send(req[1], &seq),
                                 chan_case_recv(dat[0], &it[0]), chan_case_recv(dat[1], &it[1])};
        int r = chan_select(cs, 4);
        if (r < 0 || !cs[r].ok)
            return 1;
        if (r < 2) {
            dat[r] = (r ? v : u)->dat;
            req[r] = NULL;
        } else {
            out[r - 2] = it[r - 2];
            dat[r - 2] = NULL;
        }
    }
    return 0;
}

static int64_t gcd64(int64_t u, int64_t v) /* >= 0, as Go's gcd for the values met here */
{
    u = u < 0 ? -u : u;
    v = v < 0 ? -v : v;
    while (u != 0) {
        int64_t t = v % u;
        v = u;
        u = t;
    }
    return v;
}

static struct rat i2tor(int64_t u, int64_t v)
{
    int64_t g = gcd64(u, v);
    if (g == 0)
        g = 1;
    return v > 0 ? (struct rat){u / g, v / g} : (struct rat){-u / g, -v / g};
}

static struct rat itor(int64_t u) { return i2tor(u, 1); }

static const struct rat finis = {1, 0};

static bool end_of(struct rat u) { return u.den == 0; }

static struct rat rat_add(struct rat u, struct rat v)
{
    int64_t g = gcd64(u.den, v.den);
    return i2tor(u.num * (v.den / g) + v.num * (u.den / g), u.den * (v.den / g));
}

static struct rat rat_mul(struct rat u, struct rat v)
{
    int64_t g1 = gcd64(u.num, v.den), g2 = gcd64(u.den, v.num);
    if (g1 == 0)
        g1 = 1;
    if (g2 == 0)
        g2 = 1;
    return (struct rat){(u.num / g1) * (v.num / g2), (u.den / g2) * (v.den / g1)};
}

static struct rat rat_neg(struct rat u) { return i2tor(-u.num, u.den); }

/* copy: serve out's demands from in, for ever (until torn down). */
static void ps_copy(struct dch *in, struct dch *out)
{
    for (;;) {
        struct rat r;
        PS_TRY(ps_req(out));
        PS_TRY(ps_get(in, &r));
        PS_TRY(ps_put_dat(out, r));
    }
}

/* split: one series read by two consumers, each value handed to both. dosplit serves the
 * first demand (from either side once `wait` says the previous value went to both), asks in
 * for the value, leaves the next value to a new dosplit, and gives this one to both sides. */
struct split_arg {
    struct dch *in, *out[2];
    chan_t *wait;
};

static void dosplit(void *p)
{
    struct split_arg *a = p;
    struct dch *out[2] = {a->out[0], a->out[1]};
    bool both = false;
    struct chan_case cs[] = {chan_case_recv(out[0]->req, NULL), chan_case_recv(a->wait, NULL)};
    int r = chan_select(cs, 2);
    if (r < 0 || !cs[r].ok)
        return;
    if (r == 1) {
        both = true;
        struct chan_case cs2[] = {chan_case_recv(out[0]->req, NULL),
                                  chan_case_recv(out[1]->req, NULL)};
        r = chan_select(cs2, 2);
        if (r < 0 || !cs2[r].ok)
            return;
        if (r == 1) {
            struct dch *t = out[0];
            out[0] = out[1];
            out[1] = t;
        }
    }
    int seq = atomic_fetch_add(&ps.seqno, 1) + 1;
    PS_TRY(chan_send(a->in->req, &seq));
    struct split_arg *next = malloc(sizeof *next);
    *next = (struct split_arg){a->in, {out[0], out[1]}, ps_chan(0)};
    chan_t *release = next->wait; /* next is the task's, freed when it returns (ps_trampoline) */
    ps_go(dosplit, next);
    struct rat dat;
    PS_TRY(chan_recv(a->in->dat, &dat));
    PS_TRY(ps_put_dat(out[0], dat));
    if (!both)
        PS_TRY(chan_recv(a->wait, NULL));
    PS_TRY(ps_req(out[1]));
    PS_TRY(ps_put_dat(out[1], dat));
    PS_TRY(chan_send(release, NULL));
}

static void ps_split_into(struct dch *in, struct dch *o0, struct dch *o1)
{
    struct split_arg *a = malloc(sizeof *a);
    *a = (struct split_arg){in, {o0, o1}, ps_chan(0)};
    chan_t *release = a->wait;
    ps_go(dosplit, a);
    chan_send(release, NULL); /* fails only once torn down */
}

/* Go's Split: a task runs split, so the caller goes on at once. */
struct split_task {
    struct dch *in, *out[2];
};

static void split_task(void *p)
{
    struct split_task *t = p;
    ps_split_into(t->in, t->out[0], t->out[1]);
}

static void Split(struct dch *in, struct dch *out[2])
{
    struct split_task *t = malloc(sizeof *t);
    out[0] = mkdch();
    out[1] = mkdch();
    *t = (struct split_task){in, {out[0], out[1]}};
    ps_go(split_task, t);
}

/* The operators: each a task serving Z. */
struct op_arg {
    struct dch *z, *u, *v;
    struct rat c;
    int n;
};

static struct op_arg *op(struct dch *u, struct dch *v, struct rat c, int n)
{
    struct op_arg *a = malloc(sizeof *a);
    *a = (struct op_arg){mkdch(), u, v, c, n};
    return a;
}

static void op_rep(void *p)
{
    struct op_arg *a = p;
    for (;;)
        PS_TRY(ps_put(a->z, a->c));
}

static void op_add(void *p)
{
    struct op_arg *a = p;
    for (;;) {
        struct rat uv[2];
        PS_TRY(ps_req(a->z));
        PS_TRY(ps_get2(a->u, a->v, uv));
        switch (end_of(uv[0]) + 2 * end_of(uv[1])) {
        case 0: PS_TRY(ps_put_dat(a->z, rat_add(uv[0], uv[1]))); break;
        case 1:
            PS_TRY(ps_put_dat(a->z, uv[1]));
            ps_copy(a->v, a->z);
            return;
        case 2:
            PS_TRY(ps_put_dat(a->z, uv[0]));
            ps_copy(a->u, a->z);
            return;
        default: PS_TRY(ps_put_dat(a->z, finis));
        }
    }
}

static void op_cmul(void *p)
{
    struct op_arg *a = p;
    for (;;) {
        struct rat u;
        PS_TRY(ps_req(a->z));
        PS_TRY(ps_get(a->u, &u));
        if (end_of(u))
            break;
        PS_TRY(ps_put_dat(a->z, rat_mul(a->c, u)));
    }
    PS_TRY(ps_put_dat(a->z, finis));
}

static void op_diff(void *p)
{
    struct op_arg *a = p;
    struct rat u;
    PS_TRY(ps_req(a->z));
    PS_TRY(ps_get(a->u, &u));
    if (!end_of(u))
        for (int64_t i = 1;; i++) {
            PS_TRY(ps_get(a->u, &u));
            if (end_of(u))
                break;
            PS_TRY(ps_put_dat(a->z, rat_mul(itor(i), u)));
            PS_TRY(ps_req(a->z));
        }
    PS_TRY(ps_put_dat(a->z, finis));
}

static void op_integ(void *p)
{
    struct op_arg *a = p;
    PS_TRY(ps_put(a->z, a->c));
    for (int64_t i = 1;; i++) {
        struct rat u;
        PS_TRY(ps_req(a->z));
        PS_TRY(ps_get(a->u, &u));
        PS_TRY(ps_put_dat(a->z, rat_mul(i2tor(1, i), u)));
        if (end_of(u))
            break;
    }
    PS_TRY(ps_put_dat(a->z, finis));
}

static void op_monsubst(void *p)
{
    struct op_arg *a = p;
    struct rat c = itor(1);
    for (;;) {
        struct rat u;
        PS_TRY(ps_req(a->z));
        PS_TRY(ps_get(a->u, &u));
        PS_TRY(ps_put_dat(a->z, rat_mul(u, c)));
        c = rat_mul(c, a->c);
        if (end_of(u)) {
            PS_TRY(ps_put_dat(a->z, finis));
            return;
        }
        for (int i = 1; i < a->n; i++)
            PS_TRY(ps_put(a->z, itor(0)));
    }
}

static struct dch *ps_start(void (*fn)(void *), struct op_arg *a)
{
    struct dch *z = a->z;
    ps_go(fn, a);
    return z;
}

static struct dch *Rep(struct rat c) { return ps_start(op_rep, op(NULL, NULL, c, 0)); }
static struct dch *Add(struct dch *u, struct dch *v)
{
    return ps_start(op_add, op(u, v, finis, 0));
}
static struct dch *Cmul(struct rat c, struct dch *u) { return ps_start(op_cmul, op(u, 0, c, 0)); }
static struct dch *Diff(struct dch *u) { return ps_start(op_diff, op(u, NULL, finis, 0)); }
static struct dch *Integ(struct rat c, struct dch *u)
{
    return ps_start(op_integ, op(u, NULL, c, 0));
}
static struct dch *MonSubst(struct dch *u, struct rat c0, int n)
{
    return ps_start(op_monsubst, op(u, NULL, c0, n));
}

static struct dch *Mul(struct dch *u, struct dch *v);

static void op_mul(void *p)
{
    struct op_arg *a = p;
    struct rat uv[2], w;
    PS_TRY(ps_req(a->z));
    PS_TRY(ps_get2(a->u, a->v, uv));
    if (end_of(uv[0]) || end_of(uv[1])) {
        PS_TRY(ps_put_dat(a->z, finis));
        return;
    }
    PS_TRY(ps_put_dat(a->z, rat_mul(uv[0], uv[1])));
    struct dch *uu[2], *vv[2];
    Split(a->u, uu);
    Split(a->v, vv);
    struct dch *W = Add(Cmul(uv[0], vv[0]), Cmul(uv[1], uu[0]));
    PS_TRY(ps_req(a->z));
    PS_TRY(ps_get(W, &w));
    PS_TRY(ps_put_dat(a->z, w));
    ps_copy(Add(W, Mul(uu[1], vv[1])), a->z);
}

static struct dch *Mul(struct dch *u, struct dch *v)
{
    return ps_start(op_mul, op(u, v, finis, 0));
}

/* Exp: Z = 1 + integral of Z * U', the series fed back into itself through a split. */
static struct dch *Exp(struct dch *u)
{
    struct dch *zz[2] = {mkdch(), mkdch()};
    ps_split_into(Integ(itor(1), Mul(zz[0], Diff(u))), zz[0], zz[1]);
    return zz[1];
}

static void ps_check(struct dch *u, const struct rat *want, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        struct rat r = {0, 0};
        int rc = ps_get(u, &r);
        CHECK(rc == 0 && r.num == want[i].num && r.den == want[i].den,
              "%s[%d]: got %lld/%lld, want %lld/%lld", what, i, (long long)r.num, (long long)r.den,
              (long long)want[i].num, (long long)want[i].den);
    }
}

/* Closes every channel of the series, waits until each of its tasks has returned, frees. */
static void ps_end(void)
{
    pthread_mutex_lock(&ps.mu);
    ps.closing = true;
    for (size_t i = 0; i < ps.n; i++)
        chan_close(ps.all[i]);
    pthread_mutex_unlock(&ps.mu);
    for (long done = 0; done < atomic_load(&ps.ntasks); done++)
        CHECK(chan_recv(ps.wg, NULL) == 0, "ps wg");
    for (size_t i = 0; i < ps.n; i++)
        freec(ps.all[i]);
    for (size_t i = 0; i < ps.nd; i++)
        free(ps.dchs[i]);
    free(ps.all);
    free(ps.dchs);
    freec_later(ps.wg);
}

static void powser_main(void *arg)
{
    (void)arg;
    enum { N = 10 };
    struct rat a[N], one = itor(1), zero = itor(0);
    ps.wg = mkc(0, 1 << 20);
    struct dch *ones = Rep(one), *twos = Rep(itor(2));
    for (int i = 0; i < N; i++)
        a[i] = one;
    ps_check(ones, a, 5, "Ones");
    for (int i = 0; i < N; i++)
        a[i] = itor(3);
    ps_check(Add(ones, twos), a, N, "Add");
    for (int i = 0; i < N; i++)
        a[i] = itor(i + 1);
    ps_check(Diff(ones), a, N, "Diff");
    a[0] = zero;
    for (int i = 1; i < N; i++)
        a[i] = i2tor(1, i);
    ps_check(Integ(zero, ones), a, N, "Integ");
    for (int i = 0; i < N; i++)
        a[i] = itor(-2);
    ps_check(Cmul(rat_neg(one), twos), a, N, "Cmul");
    for (int i = 0; i < N; i++)
        a[i] = itor(i + 1);
    ps_check(Mul(ones, ones), a, N, "Mul");
    const int64_t e[N][2] = {{1, 1},        {1, 1},           {3, 2},      {13, 6},
                             {73, 24},      {167, 40},        {4051, 720}, {37633, 5040},
                             {43817, 4480}, {4596553, 362880}};
    for (int i = 0; i < N; i++)
        a[i] = i2tor(e[i][0], e[i][1]);
    ps_check(Exp(ones), a, N, "Exp");
    for (int i = 0, c = 1; i < N; i++) {
        a[i] = i % 2 == 0 ? zero : i2tor(c, i);
        c = i % 2 ? -c : c;
    }
    ps_check(Integ(zero, MonSubst(ones, rat_neg(one), 2)), a, N, "ATan");
    ps_end();
}

/* sieve2.go: the prime sieve that merges the multiples of every prime found so far through a
 * heap of channels (each peeked at its head), and feeds the primes back through a proxy task
 * whose select sends only while its queue holds something (a nil send case otherwise). Its
 * tasks and channels are torn down as powser's are (ps_end). */
/* odds() and multiples(p): an endless arithmetic sequence into a buffered channel. */
struct seq {
    chan_t *out;
    long start, step;
};

static void s2_seq(void *p)
{
    struct seq *q = p;
    for (long n = q->start; chan_send(q->out, &n) == 0; n += q->step) {
    }
}

static chan_t *s2_start_seq(size_t cap, long start, long step)
{
    struct seq *q = malloc(sizeof *q);
    *q = (struct seq){ps_chan_cap(sizeof(long), cap), start, step};
    chan_t *out = q->out;
    ps_go(s2_seq, q);
    return out;
}

struct proxy {
    chan_t *in, *out;
};

static void s2_sendproxy(void *p)
{
    struct proxy *x = p;
    size_t cap = 16, first = 0, n = 0;
    long *q = malloc(cap * sizeof *q), e = 0, in = 0;
    for (;;) {
        if (n > 0)
            e = q[first];
        struct chan_case cs[] = {chan_case_recv(x->in, &in),
                                 chan_case_send(n > 0 ? x->out : NULL, &e)};
        int r = chan_select(cs, 2);
        if (r < 0 || !cs[r].ok)
            break;
        if (r == 0) {
            if (n == cap) { /* unroll the circle into a bigger one */
                long *b = malloc(2 * cap * sizeof *b);
                for (size_t i = 0; i < n; i++)
                    b[i] = q[(first + i) % cap];
                free(q);
                q = b;
                first = 0;
                cap *= 2;
            }
            q[(first + n++) % cap] = in;
        } else {
            first = (first + 1) % cap;
            n--;
        }
    }
    free(q);
}

struct peek {
    long head;
    chan_t *ch;
};

struct sieve2 {
    chan_t *out, *composites, *primes;
};

static void heap_push(struct peek *h, int *n, struct peek v)
{
    int i = (*n)++;
    for (; i > 0 && h[(i - 1) / 2].head > v.head; i = (i - 1) / 2)
        h[i] = h[(i - 1) / 2];
    h[i] = v;
}

static struct peek heap_pop(struct peek *h, int *n)
{
    struct peek top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int k = 2 * i + 1;
        if (k >= *n)
            break;
        if (k + 1 < *n && h[k + 1].head < h[k].head)
            k++;
        if (h[k].head >= last.head)
            break;
        h[i] = h[k];
        i = k;
    }
    h[i] = last;
    return top;
}

/* Pops the channel of the least head, takes that head, reads its next one, pushes it back. */
static int s2_advance(struct peek *h, int *n, long *min)
{
    if (*n == 0)
        return -1; /* Go's program would panic: not met with the values checked here */
    struct peek m = heap_pop(h, n);
    *min = m.head;
    int r = chan_recv(m.ch, &m.head);
    heap_push(h, n, m);
    return r;
}

static void s2_composites(void *p)
{
    struct sieve2 *s = p;
    struct peek h[256];
    int n = 0;
    long min = 15, prime, head;
    while (n < 256 && chan_recv(s->primes, &prime) == 0) {
        chan_t *m = s2_start_seq(10, prime * prime, 2 * prime);
        PS_TRY(chan_recv(m, &head));
        while (min < head) {
            PS_TRY(chan_send(s->composites, &min));
            PS_TRY(s2_advance(h, &n, &min));
        }
        while (min == head)
            PS_TRY(s2_advance(h, &n, &min));
        PS_TRY(chan_send(s->composites, &head));
        struct peek next = {0, m};
        PS_TRY(chan_recv(m, &next.head));
        heap_push(h, &n, next);
    }
}

static void s2_primes(void *p)
{
    struct sieve2 *s = p;
    struct proxy *x = malloc(sizeof *x);
    *x = (struct proxy){ps_chan_cap(sizeof(long), 10), s->primes};
    chan_t *primes = x->in;
    ps_go(s2_sendproxy, x);
    chan_t *candidates = s2_start_seq(50, 5, 2);
    long c, pr;
    PS_TRY(chan_recv(candidates, &pr));
    for (;;) {
        PS_TRY(chan_recv(s->composites, &c));
        while (pr < c) {
            PS_TRY(chan_send(primes, &pr));
            PS_TRY(chan_send(s->out, &pr));
            PS_TRY(chan_recv(candidates, &pr));
        }
        if (pr == c)
            PS_TRY(chan_recv(candidates, &pr));
    }
}

static void sieve2_main(void *arg)
{
    (void)arg;
    static const long want[] = {2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37, 41,
                                43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};
    ps.wg = mkc(0, 1 << 20);
    struct sieve2 *s = malloc(sizeof *s);
    *s = (struct sieve2){ps_chan_cap(sizeof(long), 10), ps_chan_cap(sizeof(long), 50),
                         ps_chan_cap(sizeof(long), 10)};
    struct sieve2 *s_again = malloc(sizeof *s_again); /* each task frees its own argument */
    *s_again = *s;
    chan_t *out = s->out;
    CHECK(send_long(out, 2) == 0 && send_long(out, 3) == 0 && send_long(s->primes, 3) == 0, "seed");
    ps_go(s2_composites, s);
    ps_go(s2_primes, s_again);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        long x = -1;
        CHECK(chan_recv(out, &x) == 0 && x == want[i], "prime %zu: %ld, want %ld", i, x, want[i]);
    }
    ps_end();
}

/* ken/chan.go (crossbeam's golang.rs `chan`): channels of capacity 0, 1, 10 and 100, each
 * carrying a numbered run of 76 values; plain senders and receivers, and selects of four
 * receive and four send cases, against each other in six shapes: two selects on the same
 * channels in opposite directions (test5) pair a select's send with another select's receive.
 * Each channel's values arrive in order, and the totals match. A side that has finished sets
 * its channel to nil in its cases, as Go's program does. */
enum { KEN_END = 10000 };

struct kchan {
    chan_t *sc, *rc; /* the channel, for the sending and the receiving side; NULL when done */
    int sv, rv;      /* the next value to send and to receive */
};

static struct {
    atomic_int randx, tots, totr, cval;
    struct kchan nc; /* nil both ways */
    chan_t *wg;
    int spawned;
} ken;

static int ken_nrand(int n)
{
    int r = atomic_fetch_add(&ken.randx, 10007) + 10007;
    return (r % 1000000) % n;
}

static struct kchan *ken_mkchan(size_t cap, int n)
{
    struct kchan *ca = calloc((size_t)n, sizeof *ca);
    for (int i = 0; i < n; i++) {
        int v = atomic_fetch_add(&ken.cval, 100) + 100;
        ca[i].sc = ca[i].rc = mkc(sizeof(int), cap);
        freec_later(ca[i].sc);
        ca[i].sv = ca[i].rv = v;
    }
    return ca;
}

static int ken_expect(int v, int v0)
{
    CHECK(v == v0, "got %d, expected %d", v, v0);
    return v % 100 == 75 ? KEN_END : v + 1;
}

static bool ken_sent(struct kchan *c)
{
    atomic_fetch_add(&ken.tots, 1);
    c->sv = ken_expect(c->sv, c->sv);
    if (c->sv == KEN_END) {
        c->sc = NULL;
        return true;
    }
    return false;
}

static bool ken_received(struct kchan *c, int v)
{
    atomic_fetch_add(&ken.totr, 1);
    c->rv = ken_expect(c->rv, v);
    if (c->rv == KEN_END) {
        c->rc = NULL;
        return true;
    }
    return false;
}

static void ken_send(void *p)
{
    struct kchan *c = p;
    do {
        for (int r = ken_nrand(10); r >= 0; r--)
            task_yield();
        CHECK(chan_send(c->sc, &c->sv) == 0, "send");
    } while (!ken_sent(c));
    wg_done(ken.wg);
}

static void ken_recv(void *p)
{
    struct kchan *c = p;
    int v = -1;
    do {
        for (int r = ken_nrand(10); r >= 0; r--)
            task_yield();
        CHECK(chan_recv(c->rc, &v) == 0, "recv");
    } while (!ken_received(c, v));
    wg_done(ken.wg);
}

struct ken_sel {
    struct kchan *r[4], *s[4];
};

static void ken_select(void *p)
{
    struct ken_sel *k = p;
    int a = 0, v = -1;
    for (int i = 0; i < 4; i++)
        a += (k->r[i]->rc != NULL) + (k->s[i]->sc != NULL);
    while (a > 0) {
        for (int r = ken_nrand(5); r >= 0; r--)
            task_yield();
        struct chan_case cs[8];
        for (int i = 0; i < 4; i++) {
            cs[i] = chan_case_recv(k->r[i]->rc, &v);
            cs[4 + i] = chan_case_send(k->s[i]->sc, &k->s[i]->sv);
        }
        int i = chan_select(cs, 8);
        CHECK(i >= 0 && cs[i].ok, "select: %d", i);
        if (i < 0)
            break;
        if (i < 4 ? ken_received(k->r[i], v) : ken_sent(k->s[i - 4]))
            a--;
    }
    free(k);
    wg_done(ken.wg);
}

static void ken_go(void (*fn)(void *), void *arg)
{
    ken.spawned++;
    task_go(fn, arg);
}

static void ken_sel(struct kchan *r0, struct kchan *r1, struct kchan *r2, struct kchan *r3,
                    struct kchan *s0, struct kchan *s1, struct kchan *s2, struct kchan *s3)
{
    struct ken_sel *k = malloc(sizeof *k);
    *k = (struct ken_sel){{r0, r1, r2, r3}, {s0, s1, s2, s3}};
    ken_go(ken_select, k);
}

static void ken_wait(void)
{
    wg_wait(ken.wg, ken.spawned);
    ken.spawned = 0;
}

static void ken_chan_main(void *arg)
{
    (void)arg;
    struct kchan *nc = &ken.nc;
    ken.wg = mkc(0, 64);
    size_t caps[] = {0, 1, 10, 100};
    struct kchan *all[4 * 6];
    int nall = 0;
    for (int k = 0; k < 4; k++) {
        size_t c = caps[k];
        struct kchan *ca = all[nall++] = ken_mkchan(c, 4); /* test1 */
        for (int i = 0; i < 4; i++) {
            ken_go(ken_send, &ca[i]);
            ken_go(ken_recv, &ca[i]);
        }
        ken_wait();
        ca = all[nall++] = ken_mkchan(c, 4); /* test2 */
        for (int i = 0; i < 4; i++)
            ken_go(ken_send, &ca[i]);
        ken_sel(&ca[0], &ca[1], &ca[2], &ca[3], nc, nc, nc, nc);
        ken_wait();
        ca = all[nall++] = ken_mkchan(c, 4); /* test3 */
        for (int i = 0; i < 4; i++)
            ken_go(ken_recv, &ca[i]);
        ken_sel(nc, nc, nc, nc, &ca[0], &ca[1], &ca[2], &ca[3]);
        ken_wait();
        ca = all[nall++] = ken_mkchan(c, 4); /* test4 */
        ken_sel(nc, nc, nc, nc, &ca[0], &ca[1], &ca[2], &ca[3]);
        ken_sel(&ca[0], &ca[1], &ca[2], &ca[3], nc, nc, nc, nc);
        ken_wait();
        ca = all[nall++] = ken_mkchan(c, 8); /* test5 */
        ken_sel(&ca[4], &ca[5], &ca[6], &ca[7], &ca[0], &ca[1], &ca[2], &ca[3]);
        ken_sel(&ca[0], &ca[1], &ca[2], &ca[3], &ca[4], &ca[5], &ca[6], &ca[7]);
        ken_wait();
        ca = all[nall++] = ken_mkchan(c, 12); /* test6 */
        for (int i = 4; i < 8; i++)
            ken_go(ken_send, &ca[i]);
        for (int i = 8; i < 12; i++)
            ken_go(ken_recv, &ca[i]);
        ken_sel(&ca[4], &ca[5], &ca[6], &ca[7], &ca[0], &ca[1], &ca[2], &ca[3]);
        ken_sel(&ca[0], &ca[1], &ca[2], &ca[3], &ca[8], &ca[9], &ca[10], &ca[11]);
        ken_wait();
    }
    int t = 4 * (4 * 4 + 8 + 12) * 76;
    CHECK(atomic_load(&ken.tots) == t && atomic_load(&ken.totr) == t, "tots %d totr %d, want %d",
          atomic_load(&ken.tots), atomic_load(&ken.totr), t);
    for (int i = 0; i < nall; i++)
        free(all[i]);
    freec_later(ken.wg);
}

/* The Go Memory Model: the orders a channel gives, each checked on a plain
 * (non-atomic) variable, which TSan watches: a send is synchronized before the receive that
 * completes it; a close before a receive that reports it; on an unbuffered channel, the
 * receive before the completion of the send; on a channel of capacity C, the kth receive
 * before the (k+C)th send completes - so a channel of capacity 1 is a mutex, locked by a send
 * and unlocked by a receive (or, filled first with a token, locked by a receive and unlocked by
 * a send), and a plain counter that tasks increment under it counts every increment. */
struct mm {
    chan_t *c, *wg;
    long plain; /* written and read only in the orders a channel gives */
    int rounds, form;
};

static void mm_after_recv_send(void *p)
{
    struct mm *a = p;
    a->plain = 1; /* before the receive: seen after the unbuffered send completes */
    CHECK(chan_recv(a->c, NULL) == 0, "recv");
    wg_done(a->wg);
}

static void mm_before_send(void *p)
{
    struct mm *a = p;
    a->plain = 2; /* before the send: seen after the receive */
    if (a->form)
        CHECK(chan_close(a->c) == 0, "close");
    else
        CHECK(chan_send(a->c, NULL) == 0, "send");
    wg_done(a->wg);
}

/* Forms 0 and 3 lock by a send and unlock by a receive, forms 1 and 4 the other way round with
 * one token in the channel, form 2 as 0 through a one-case select and the try form. Forms 3
 * and 4 run on the lock-free ring (capacity 4, long values; form 3 with 3 values buffered
 * ahead, so that one slot is free), where the order comes from the slots' stamps. */
static void mm_locker(void *p)
{
    struct mm *a = p;
    long v = 0;
    for (int i = 0; i < a->rounds; i++) {
        bool by_send = a->form == 0 || a->form == 2 || a->form == 3;
        if (a->form == 2) {
            struct chan_case l[] = {chan_case_send(a->c, NULL)};
            CHECK(chan_select(l, 1) == 0, "lock");
        } else {
            CHECK((by_send ? chan_send(a->c, &v) : chan_recv(a->c, &v)) == 0, "lock");
        }
        a->plain++;
        if (a->form == 2)
            CHECK(chan_tryrecv(a->c, NULL) == 0, "unlock");
        else
            CHECK((by_send ? chan_recv(a->c, &v) : chan_send(a->c, &v)) == 0, "unlock");
    }
    wg_done(a->wg);
}

static void memory_model_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 8);
    for (int k = 0; k < 50; k++) {
        struct mm a = {mkc(0, 0), wg, 0, 0, 0};
        task_go(mm_after_recv_send, &a);
        CHECK(chan_send(a.c, NULL) == 0, "send");
        CHECK(a.plain == 1, "unbuffered: the receiver's write not seen after the send");
        wg_wait(wg, 1);
        freec(a.c);
        for (int form = 0; form < 2; form++)
            for (size_t cap = 0; cap <= 1; cap++) {
                struct mm b = {mkc(0, cap), wg, 0, 0, form};
                task_go(mm_before_send, &b);
                CHECK(chan_recv(b.c, NULL) == (form ? -EPIPE : 0), "recv");
                CHECK(b.plain == 2, "the sender's write not seen after the receive");
                wg_wait(wg, 1);
                freec(b.c);
            }
    }
    for (int form = 0; form < 5; form++) {
        enum { T = 4 };
        struct mm a = {form < 3 ? mkc(0, 1) : mkc(sizeof(long), 4), wg, 0, sized(5000, 2000), form};
        long token = 0;
        for (int k = 0; k < (form == 1 || form == 4 ? 1 : form == 3 ? 3 : 0); k++)
            CHECK(chan_send(a.c, &token) == 0, "token");
        for (int t = 0; t < T; t++)
            task_go(mm_locker, &a);
        wg_wait(wg, T);
        CHECK(a.plain == (long)T * a.rounds, "form %d: %ld increments of %ld", form, a.plain,
              (long)T * a.rounds);
        freec_later(a.c);
    }
    freec_later(wg);
}

/* ---- crossbeam-channel's tests, mapped to libchan: disconnection is chan_close, a list
 * channel a big buffer, never() a NULL channel, the timeouts the _until forms ---------------- */

/* array.rs, list.rs, zero.rs: len (and cap) at every state, around the ring several times,
 * after close, after draining. */
static void cb_len_cap_main(void *arg)
{
    (void)arg;
    size_t caps[] = {0, 1, 2, 3, 50, 100000};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        size_t cap = caps[k];
        chan_t *c = mkc(sizeof(long), cap);
        long v = 0, w = 0;
        size_t rounds = cap < 100 ? 3 * cap + 3 : 1;
        for (size_t r = 0; r < rounds; r++) { /* keep the ring moving: full, then empty */
            for (size_t i = 0; i < cap; i++) {
                CHECK(chan_len(c) == i, "cap %zu: len %zu, want %zu", cap, chan_len(c), i);
                CHECK(chan_trysend(c, &v) == 0, "trysend");
                v++;
            }
            CHECK(chan_len(c) == cap && chan_cap(c) == cap, "cap %zu: full", cap);
            CHECK(chan_trysend(c, &v) == -EAGAIN, "cap %zu: full trysend", cap);
            for (size_t i = 0; i < cap / 2 + 1 && i < cap; i++) {
                long got = -1;
                CHECK(chan_tryrecv(c, &got) == 0 && got == w, "cap %zu: got %ld want %ld", cap, got,
                      w);
                w++;
                CHECK(chan_len(c) == cap - i - 1, "cap %zu: len after recv", cap);
            }
            while (chan_len(c) > 0) {
                long got = -1;
                CHECK(chan_tryrecv(c, &got) == 0 && got == w, "drain");
                w++;
            }
            CHECK(chan_tryrecv(c, &v) == -EAGAIN, "empty");
        }
        for (size_t i = 0; i < cap && i < 5; i++)
            CHECK(chan_trysend(c, &v) == 0, "refill");
        size_t before = chan_len(c);
        CHECK(chan_close(c) == 0 && chan_len(c) == before && chan_cap(c) == cap, "after close");
        CHECK(chan_trysend(c, &v) == -EPIPE && chan_send_until(c, &v, 0) == -EPIPE, "closed");
        while (chan_tryrecv(c, NULL) == 0) {
        }
        CHECK(chan_len(c) == 0 && chan_tryrecv(c, NULL) == -EPIPE, "drained");
        freec(c);
    }
}

/* The try and timeout forms at full, empty, closed; deadlines in the past (0, negative,
 * INT64_MIN), near, and so far off that adding anything to them overflows. */
struct late_peer {
    chan_t *c, *wg;
    enum chan_dir blocked; /* the direction the main task blocks in */
};

static void late_peer(void *p)
{
    struct late_peer *a = p;
    wait_queued(a->c, a->blocked, 1);
    long v = -1;
    if (a->blocked == CHAN_RECV)
        CHECK(send_long(a->c, 11) == 0, "peer send");
    else
        CHECK(chan_recv(a->c, &v) == 0, "peer recv");
    wg_done(a->wg);
}

static void cb_timeouts_main(void *arg)
{
    (void)arg;
    int64_t past[] = {0, -1, INT64_MIN, chan_now() - MS};
    chan_t *wg = mkc(0, 1);
    for (size_t cap = 0; cap <= 2; cap += 2) {
        chan_t *c = mkc(sizeof(long), cap);
        long v = 5;
        for (int i = 0; i < 4; i++) {
            CHECK(chan_recv_until(c, &v, past[i]) == -ETIMEDOUT, "recv past %d", i);
            int want = cap ? 0 : -ETIMEDOUT;
            int r = chan_send_until(c, &v, past[i]);
            CHECK(r == want, "cap %zu: send at past deadline %d: %d", cap, i, r);
            if (r == 0)
                CHECK(chan_recv_until(c, &v, past[i]) == 0 && v == 5, "ready recv, past");
            struct chan_case cs[] = {chan_case_recv(c, &v), chan_case_recv(NULL, &v)};
            CHECK(chan_select_until(cs, 2, past[i]) == -ETIMEDOUT, "select past %d", i);
        }
        int64_t far[] = {CHAN_FOREVER, CHAN_FOREVER - 1, INT64_MAX / 2, chan_now() + INT64_MAX / 2};
        for (int i = 0; i < 4; i++) { /* blocked until a peer comes, however far the deadline */
            struct late_peer p = {c, wg, CHAN_RECV};
            task_go(late_peer, &p);
            v = -1;
            int r = chan_recv_until(c, &v, far[i]);
            CHECK(r == 0 && v == 11, "recv far %d: %d", i, r);
            wg_wait(wg, 1);
            for (size_t k = 0; k < cap; k++)
                CHECK(send_long(c, 1) == 0, "fill");
            p.blocked = CHAN_SEND;
            task_go(late_peer, &p);
            r = chan_send_until(c, &v, far[i]);
            CHECK(r == 0, "send far %d: %d", i, r);
            wg_wait(wg, 1);
            while (chan_tryrecv(c, NULL) == 0) {
            }
            p.blocked = CHAN_RECV;
            task_go(late_peer, &p);
            struct chan_case cs[] = {chan_case_recv(c, &v), chan_case_recv(NULL, &v)};
            r = chan_select_until(cs, 2, far[i]);
            CHECK(r == 0 && v == 11, "select far %d: %d", i, r);
            wg_wait(wg, 1);
        }
        /* A near deadline: never early. */
        int64_t d = chan_now() + 5 * MS;
        CHECK(chan_recv_until(c, &v, d) == -ETIMEDOUT && chan_now() >= d, "near recv");
        for (size_t k = 0; k < cap; k++)
            CHECK(send_long(c, 1) == 0, "fill");
        d = chan_now() + 5 * MS;
        CHECK(chan_send_until(c, &v, d) == -ETIMEDOUT && chan_now() >= d, "near send");
        freec(c);
    }
    /* never.rs: a NULL channel is never ready. */
    long v = 1;
    int64_t d = chan_now() + 2 * MS;
    CHECK(chan_recv_until(NULL, &v, d) == -ETIMEDOUT && chan_now() >= d, "never recv");
    CHECK(chan_send_until(NULL, &v, d) == -ETIMEDOUT, "never send");
    CHECK(chan_tryrecv(NULL, &v) == -EAGAIN && chan_trysend(NULL, &v) == -EAGAIN, "never try");
    CHECK(chan_len(NULL) == 0 && chan_cap(NULL) == 0, "never len");
    freec_later(wg);
}

/* zero.rs, array.rs: stress_timeout_two_threads. Both sides retry with deadlines of a few
 * microseconds: a send that timed out delivered nothing, a receive that timed out took
 * nothing, so the values arrive exactly once and in order. */
struct tt {
    chan_t *c, *wg;
    long n;
};

static void tt_sender(void *p)
{
    struct tt *a = p;
    unsigned seed = 1;
    for (long i = 0; i < a->n; i++) {
        for (;;) {
            seed = seed * 1103515245u + 12345u;
            int r = chan_send_until(a->c, &i, chan_now() + (seed >> 16) % 50000);
            if (r == 0)
                break;
            CHECK(r == -ETIMEDOUT, "send %d", r);
        }
    }
    CHECK(chan_close(a->c) == 0, "close");
    wg_done(a->wg);
}

static void cb_timeout_two_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 1);
    for (size_t cap = 0; cap <= 2; cap += 2) {
        struct tt a = {mkc(sizeof(long), cap), wg, sized(20000, 2000)};
        task_go(tt_sender, &a);
        unsigned seed = 7;
        long want = 0;
        for (;;) {
            long v = -1;
            seed = seed * 1103515245u + 12345u;
            int r = chan_recv_until(a.c, &v, chan_now() + (seed >> 16) % 50000);
            if (r == -EPIPE)
                break;
            if (r == -ETIMEDOUT)
                continue;
            CHECK(r == 0 && v == want, "cap %zu: got %ld want %ld (%d)", cap, v, want, r);
            want = v + 1;
        }
        CHECK(want == a.n, "cap %zu: %ld of %ld", cap, want, a.n);
        wg_wait(wg, 1);
        freec(a.c);
    }
    freec_later(wg);
}

/* array.rs: linearizable. Each task sends, then at once tries to receive: its own value (or
 * another's) is in the buffer from its send's return until some receive takes one, and there
 * are never more receivers than values, so the try never finds the channel empty. */
struct lin {
    chan_t *c, *wg;
    int n;
};

static void lin_task(void *p)
{
    struct lin *a = p;
    for (int i = 0; i < a->n; i++) {
        CHECK(send_long(a->c, i) == 0, "send");
        int r = chan_tryrecv(a->c, NULL);
        CHECK(r == 0, "tryrecv right after a send: %d (len %zu)", r, chan_len(a->c));
    }
    wg_done(a->wg);
}

static void cb_linearizable_main(void *arg)
{
    (void)arg;
    enum { T = 4 };
    chan_t *wg = mkc(0, T);
    size_t caps[] = {T, 64};
    for (int k = 0; k < 2; k++) {
        struct lin a = {mkc(sizeof(long), caps[k]), wg, sized(20000, 5000)};
        for (int t = 0; t < T; t++)
            task_go(lin_task, &a);
        wg_wait(wg, T);
        CHECK(chan_len(a.c) == 0, "left %zu", chan_len(a.c));
        freec(a.c);
    }
    freec_later(wg);
}

/* mpsc.rs (stress_shared, ...), array.rs/list.rs/zero.rs (mpmc, spsc): many senders of distinct
 * values and many receivers, blocking and select forms mixed: each value received exactly
 * once. */
enum { MP_SEND = 4, MP_RECV = 4 };

struct mp {
    chan_t *c, *wg, *senders;
    long per;
    atomic_uchar *seen;
    atomic_long dup;
};

struct mp_sender {
    struct mp *m;
    long id;
};

static void mp_send(void *p)
{
    struct mp_sender *s = p;
    for (long i = 0; i < s->m->per; i++) {
        long v = s->id * s->m->per + i;
        if (i % 3 == 0) {
            struct chan_case cs[] = {chan_case_send(s->m->c, &v), chan_case_send(NULL, &v)};
            CHECK(chan_select(cs, 2) == 0, "select send");
        } else {
            CHECK(chan_send(s->m->c, &v) == 0, "send");
        }
    }
    wg_done(s->m->senders);
    wg_done(s->m->wg);
}

static void mp_recv(void *p)
{
    struct mp *m = p;
    long v;
    for (long i = 0;; i++) {
        int r;
        if (i % 3 == 1) {
            struct chan_case cs[] = {chan_case_recv(m->c, &v)};
            r = chan_select(cs, 1) == 0 && cs[0].ok ? 0 : -EPIPE;
        } else if (i % 3 == 2) {
            r = chan_recv_until(m->c, &v, chan_now() + 100 * MS);
            if (r == -ETIMEDOUT)
                continue;
        } else {
            r = chan_recv(m->c, &v);
        }
        if (r != 0)
            break;
        if (v < 0 || v >= MP_SEND * m->per || atomic_exchange(&m->seen[v], 1))
            atomic_fetch_add(&m->dup, 1);
    }
    wg_done(m->wg);
}

static void cb_mpmc_main(void *arg)
{
    (void)arg;
    size_t caps[] = {0, 1, 16, 1 << 20};
    chan_t *wg = mkc(0, MP_SEND + MP_RECV), *senders = mkc(0, MP_SEND);
    for (int k = 0; k < 4; k++) {
        struct mp m = {mkc(sizeof(long), caps[k]), wg, senders, sized(20000, 2000), NULL, 0};
        m.seen = calloc((size_t)(MP_SEND * m.per), sizeof *m.seen);
        struct mp_sender s[MP_SEND];
        for (int i = 0; i < MP_RECV; i++)
            task_go(mp_recv, &m);
        for (long i = 0; i < MP_SEND; i++) {
            s[i] = (struct mp_sender){&m, i};
            task_go(mp_send, &s[i]);
        }
        wg_wait(senders, MP_SEND);
        CHECK(chan_close(m.c) == 0, "close");
        wg_wait(wg, MP_SEND + MP_RECV);
        long missing = 0;
        for (long i = 0; i < MP_SEND * m.per; i++)
            missing += !atomic_load(&m.seen[i]);
        CHECK(missing == 0 && atomic_load(&m.dup) == 0, "cap %zu: %ld lost, %ld duplicated",
              caps[k], missing, atomic_load(&m.dup));
        free(m.seen);
        freec(m.c);
    }
    freec_later(wg);
    freec_later(senders);
}

/* select.rs, select_macro.rs: fairness among cases on the same channel (fairness_duplicates):
 * each of four receive cases of one always-ready channel is chosen about as often, and so is
 * each of three send cases. Loose bounds: each within half to one and a half of its share. */
static void cb_fairness_dup_main(void *arg)
{
    (void)arg;
    enum { N = 8000, K = 4 };
    chan_t *c = mkc(sizeof(long), N);
    long v = 0;
    long hits[K] = {0};
    struct chan_case cs[K];
    for (int k = 0; k < K; k++)
        cs[k] = chan_case_send(c, &v);
    for (int i = 0; i < N; i++) {
        int r = chan_select(cs, K - 1);
        CHECK(r >= 0 && r < K - 1, "send %d", r);
        if (r >= 0 && r < K)
            hits[r]++;
    }
    for (int k = 0; k < K - 1; k++)
        CHECK(hits[k] > N / (K - 1) / 2 && hits[k] < N * 3 / (K - 1) / 2, "send case %d: %ld", k,
              hits[k]);
    for (int k = 0; k < K; k++) {
        cs[k] = chan_case_recv(c, &v);
        hits[k] = 0;
    }
    for (int i = 0; i < N; i++) {
        int r = chan_select(cs, K);
        CHECK(r >= 0 && r < K, "recv %d", r);
        if (r >= 0 && r < K)
            hits[r]++;
    }
    for (int k = 0; k < K; k++)
        CHECK(hits[k] > N / K / 2 && hits[k] < N * 3 / K / 2, "recv case %d: %ld", k, hits[k]);
    freec(c);
}

/* array.rs/list.rs: drops (free with values buffered, the ring's head anywhere);
 * iter.rs: receive until closed, then the try form until empty; zero.rs/mpsc.rs:
 * stress_oneshot and channel_through_channel. */
struct one {
    chan_t *c, *wg;
};

static void one_recv(void *p)
{
    struct one *a = p;
    chan_t *inner = NULL;
    CHECK(chan_recv(a->c, &inner) == 0 && inner != NULL, "oneshot recv");
    long v = -1;
    CHECK(chan_recv(inner, &v) == 0 && v == 99, "through a channel: %ld", v);
    wg_done(a->wg);
}

static void iter_send(void *p)
{
    struct one *a = p;
    for (long i = 0; i < 100; i++)
        CHECK(send_long(a->c, i) == 0, "send");
    CHECK(chan_close(a->c) == 0, "close");
    wg_done(a->wg);
}

static void cb_misc_main(void *arg)
{
    (void)arg;
    size_t caps[] = {1, 7, 64, 1000};
    for (int k = 0; k < 4; k++)
        for (size_t skew = 0; skew < caps[k] && skew < 20; skew += 3) {
            chan_t *c = mkc(sizeof(long[3]), caps[k]);
            long v[3] = {1, 2, 3};
            for (size_t i = 0; i < skew; i++)
                CHECK(chan_trysend(c, v) == 0 && chan_tryrecv(c, NULL) == 0, "skew");
            for (size_t i = 0; i < caps[k]; i += 2)
                CHECK(chan_trysend(c, v) == 0, "fill");
            freec(c); /* the buffered values go with it */
        }
    chan_t *wg = mkc(0, 1);
    for (size_t cap = 0; cap <= 5; cap += 5) {
        struct one a = {mkc(sizeof(long), cap), wg};
        task_go(iter_send, &a);
        long v, want = 0;
        while (chan_recv(a.c, &v) == 0) {
            CHECK(v == want, "iter %ld want %ld", v, want);
            want++;
        }
        CHECK(want == 100, "iter: %ld", want);
        CHECK(chan_tryrecv(a.c, &v) == -EPIPE, "after close");
        wg_wait(wg, 1);
        freec(a.c);
    }
    int rounds = sized(2000, 200);
    for (int i = 0; i < rounds; i++) {
        struct one a = {mkc(sizeof(chan_t *), (size_t)(i & 1)), wg};
        chan_t *inner = mkc(sizeof(long), (size_t)(i & 2) / 2);
        task_go(one_recv, &a);
        CHECK(chan_send(a.c, &inner) == 0 && send_long(inner, 99) == 0, "oneshot send");
        wg_wait(wg, 1);
        freec(a.c);
        freec(inner);
    }
    freec_later(wg);
}

/* select.rs, select_macro.rs: matching (tasks that each select a send and a receive on one
 * unbuffered channel pair up with each other, never with themselves), matching_with_leftover
 * (an odd count, and one plain send more), send_recv_same_channel, both_ready, loop_try,
 * nesting, stress_mixed. */
struct match {
    chan_t *c, *wg;
    long id;
};

static void match_task(void *p)
{
    struct match *m = p;
    long got = -1;
    struct chan_case cs[] = {chan_case_recv(m->c, &got), chan_case_send(m->c, &m->id)};
    int r = chan_select(cs, 2);
    CHECK(r == 1 || (r == 0 && got != m->id), "matched itself: %d, %ld", r, got);
    wg_done(m->wg);
}

struct lt {
    chan_t *c1, *c2, *end, *wg;
};

static void lt_sender(void *p)
{
    struct lt *a = p;
    long one = 1;
    for (;;) {
        struct chan_case s[] = {chan_case_send(a->c1, &one)};
        if (chan_tryselect(s, 1) == 0)
            break;
        struct chan_case e[] = {chan_case_recv(a->end, NULL)};
        if (chan_tryselect(e, 1) == 0)
            break;
        task_yield();
    }
    wg_done(a->wg);
}

static void lt_receiver(void *p)
{
    struct lt *a = p;
    for (;;) {
        long x = -1;
        if (chan_tryrecv(a->c2, &x) == 0) {
            CHECK(x == 2, "loop_try got %ld", x);
            break;
        }
        struct chan_case e[] = {chan_case_recv(a->end, NULL)};
        if (chan_tryselect(e, 1) == 0)
            break;
        task_yield();
    }
    wg_done(a->wg);
}

struct mixed {
    chan_t *c1, *c2, *c3, *wg;
    long n;
};

static void mixed_peer(void *p)
{
    struct mixed *a = p;
    for (long i = 0; i < a->n; i++) {
        long v = -1;
        CHECK(chan_send(a->c1, &i) == 0 && chan_recv(a->c2, &v) == 0 && v == i, "peer %ld", v);
        CHECK(chan_recv(a->c3, NULL) == 0, "c3");
    }
    wg_done(a->wg);
}

static void both_ready_peer(void *p)
{
    struct mixed *a = p;
    long v = -1;
    task_sleep_ms(5);
    CHECK(send_long(a->c1, 1) == 0 && chan_recv(a->c2, &v) == 0 && v == 2, "both_ready peer");
    wg_done(a->wg);
}

static void cb_select_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 64);
    for (int leftover = 0; leftover <= 1; leftover++) { /* matching, matching_with_leftover */
        int n = leftover ? 55 : 44;
        struct match m[55];
        chan_t *c = mkc(sizeof(long), 0);
        for (int i = 0; i < n; i++) {
            m[i] = (struct match){c, wg, i};
            task_go(match_task, &m[i]);
        }
        if (leftover)
            CHECK(send_long(c, -1) == 0, "leftover send");
        wg_wait(wg, n);
        CHECK(chan_tryrecv(c, NULL) == -EAGAIN, "left over");
        freec(c);
    }
    { /* send_recv_same_channel: unbuffered, the select cannot pair with itself */
        chan_t *c = mkc(sizeof(long), 0);
        long v = 0;
        struct chan_case cs[] = {chan_case_send(c, &v), chan_case_recv(c, &v)};
        CHECK(chan_select_until(cs, 2, chan_now() + 5 * MS) == -ETIMEDOUT, "self-paired");
        freec(c);
        c = mkc(sizeof(long), 1000);
        cs[0].chan = cs[1].chan = c;
        CHECK(chan_select_until(cs, 2, chan_now() + 5 * MS) == 0, "buffered: the send");
        freec(c);
    }
    { /* both_ready: a select of a receive and a send on two unbuffered channels, twice */
        struct mixed a = {mkc(sizeof(long), 0), mkc(sizeof(long), 0), NULL, wg, 0};
        task_go(both_ready_peer, &a);
        long v = -1, two = 2;
        bool got = false, sent = false;
        for (int k = 0; k < 2; k++) {
            struct chan_case cs[] = {chan_case_recv(got ? NULL : a.c1, &v),
                                     chan_case_send(sent ? NULL : a.c2, &two)};
            int r = chan_select(cs, 2);
            CHECK(r == 0 ? v == 1 : r == 1, "both_ready: %d %ld", r, v);
            got |= r == 0;
            sent |= r == 1;
        }
        wg_wait(wg, 1);
        freec(a.c1);
        freec(a.c2);
    }
    for (int run = 0; run < sized(20, 10); run++) { /* loop_try */
        struct lt a = {mkc(sizeof(long), 0), mkc(sizeof(long), 0), mkc(0, 0), wg};
        task_go(lt_sender, &a);
        task_go(lt_receiver, &a);
        task_sleep_ms(1);
        long v = -1, two = 2;
        struct chan_case cs[] = {chan_case_recv(a.c1, &v), chan_case_send(a.c2, &two)};
        int r = chan_select_until(cs, 2, chan_now() + 5000 * MS);
        CHECK(r == 1 || (r == 0 && v == 1), "loop_try: %d %ld", r, v);
        CHECK(chan_close(a.end) == 0, "end");
        wg_wait(wg, 2);
        freec(a.c1);
        freec(a.c2);
        freec(a.end);
    }
    { /* nesting */
        chan_t *c = mkc(sizeof(long), 100);
        long zero = 0, one = 1, v = -1;
        struct chan_case s0[] = {chan_case_send(c, &zero)}, r0[] = {chan_case_recv(c, &v)};
        struct chan_case s1[] = {chan_case_send(c, &one)};
        CHECK(chan_select(s0, 1) == 0 && chan_select(r0, 1) == 0 && v == 0, "nesting 0");
        CHECK(chan_select(s1, 1) == 0 && chan_select(r0, 1) == 0 && v == 1, "nesting 1");
        freec(c);
    }
    { /* stress_mixed */
        struct mixed a = {mkc(sizeof(long), 0), mkc(sizeof(long), 0), mkc(0, 100), wg,
                          sized(10000, 2000)};
        task_go(mixed_peer, &a);
        for (long i = 0; i < a.n; i++) {
            bool got = false, sent = false;
            for (int k = 0; k < 2; k++) {
                long v = -1;
                struct chan_case cs[] = {chan_case_recv(got ? NULL : a.c1, &v),
                                         chan_case_send(sent ? NULL : a.c2, &i)};
                int r = chan_select(cs, 2);
                CHECK(r == 1 || (r == 0 && v == i), "mixed %ld: %d %ld", i, r, v);
                got |= r == 0;
                sent |= r == 1;
            }
            CHECK(chan_send(a.c3, NULL) == 0, "c3");
        }
        wg_wait(wg, 1);
        freec(a.c1);
        freec(a.c2);
        freec(a.c3);
    }
    freec_later(wg);
}

/* select_macro.rs: linearizable_default and linearizable_timeout (Go's TestNonblockSelectRace
 * in crossbeam's words), on channels of capacity 1 and on lock-free rings: a value is always
 * in one of the two channels, so a select over both with a default, or with a deadline
 * already past, never takes the default. */
struct lz {
    chan_t *c1, *c2, *start, *end, *wg;
    int n, timeout;
};

static void lz_worker(void *p)
{
    struct lz *a = p;
    for (int i = 0; i < a->n; i++) {
        CHECK(chan_send(a->start, NULL) == 0, "start");
        CHECK(send_long(a->c1, 1) == 0, "c1");
        struct chan_case cs[] = {chan_case_recv(a->c1, NULL), chan_case_recv(a->c2, NULL)};
        int r = a->timeout ? chan_select_until(cs, 2, chan_now()) : chan_tryselect(cs, 2);
        CHECK(r == 0 || r == 1, "round %d: neither channel ready (%d)", i, r);
        CHECK(chan_send(a->end, NULL) == 0, "end");
        chan_tryrecv(a->c2, NULL);
    }
    wg_done(a->wg);
}

static void cb_linearizable_select_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 1);
    for (int k = 0; k < 4; k++) {
        size_t cap = k < 2 ? 1 : 64;
        struct lz a = {mkc(sizeof(long), cap),
                       mkc(sizeof(long), cap),
                       mkc(0, 0),
                       mkc(0, 0),
                       wg,
                       sized(20000, 3000),
                       k % 2};
        task_go(lz_worker, &a);
        for (int i = 0; i < a.n; i++) {
            CHECK(chan_recv(a.start, NULL) == 0, "start");
            CHECK(send_long(a.c2, 1) == 0, "c2");
            chan_tryrecv(a.c1, NULL);
            CHECK(chan_recv(a.end, NULL) == 0, "end");
        }
        wg_wait(wg, 1);
        freec(a.c1);
        freec(a.c2);
        freec(a.start);
        freec(a.end);
    }
    freec_later(wg);
}

/* select.rs: stress_recv, stress_send, reuse (one case array selected on again and again: its
 * ok fields are written by each select), unblocks (a blocked select taken by a peer's send, and
 * by a peer's receive), disconnected (a closed channel's receive case is ready: chosen with ok
 * false and elem zeroed, over an open channel that has nothing; a blocked select woken by the
 * close). */
struct sp {
    chan_t *c1, *c2, *c3, *wg;
    long n;
};

static void sp_stress_recv_peer(void *p)
{
    struct sp *a = p;
    for (long i = 0; i < a->n; i++) {
        CHECK(chan_send(a->c1, &i) == 0 && chan_recv(a->c3, NULL) == 0, "stress_recv 1");
        CHECK(chan_send(a->c2, &i) == 0 && chan_recv(a->c3, NULL) == 0, "stress_recv 2");
    }
    wg_done(a->wg);
}

static void sp_stress_send_peer(void *p)
{
    struct sp *a = p;
    for (long i = 0; i < a->n; i++) {
        long v1 = -1, v2 = -1;
        CHECK(chan_recv(a->c1, &v1) == 0 && v1 == i, "stress_send: c1 %ld, want %ld", v1, i);
        CHECK(chan_recv(a->c2, &v2) == 0 && v2 == i, "stress_send: c2 %ld, want %ld", v2, i);
        CHECK(chan_recv(a->c3, NULL) == 0, "stress_send c3");
    }
    wg_done(a->wg);
}

static void sp_reuse_peer(void *p)
{
    struct sp *a = p;
    for (long i = 0; i < a->n; i++) {
        long v = -1;
        CHECK(chan_send(a->c1, &i) == 0, "reuse send");
        CHECK(chan_recv(a->c2, &v) == 0 && v == i, "reuse: %ld, want %ld", v, i);
        CHECK(chan_recv(a->c3, NULL) == 0, "reuse c3");
    }
    wg_done(a->wg);
}

/* unblocks and disconnected: each step waits until the select is queued, then acts. */
static void sp_unblocks_peer(void *p)
{
    struct sp *a = p;
    long v = -1;
    if (wait_queued(a->c2, CHAN_RECV, 1))
        CHECK(send_long(a->c2, 2) == 0, "unblocks: send");
    if (wait_queued(a->c1, CHAN_SEND, 1))
        CHECK(chan_recv(a->c1, &v) == 0 && v == 1, "unblocks: received %ld", v);
    if (wait_queued(a->c3, CHAN_RECV, 1))
        CHECK(chan_close(a->c3) == 0, "disconnected: close");
    wg_done(a->wg);
}

static void cb_select_stress_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 1);
    long n = sized(10000, 10000);
    { /* stress_recv: a big buffer, a buffer of 5 */
        struct sp a = {mkc(sizeof(long), (size_t)n), mkc(sizeof(long), 5), mkc(0, 100), wg, n};
        task_go(sp_stress_recv_peer, &a);
        for (long i = 0; i < n; i++)
            for (int k = 0; k < 2; k++) {
                long v = -1;
                struct chan_case cs[] = {chan_case_recv(a.c1, &v), chan_case_recv(a.c2, &v)};
                int r = chan_select(cs, 2);
                CHECK((r == 0 || r == 1) && cs[r].ok && v == i, "stress_recv %ld: %d %ld", i, r, v);
                CHECK(chan_send(a.c3, NULL) == 0, "stress_recv c3");
            }
        wg_wait(wg, 1);
        freec(a.c1);
        freec(a.c2);
        freec(a.c3);
    }
    { /* stress_send: two unbuffered channels */
        struct sp a = {mkc(sizeof(long), 0), mkc(sizeof(long), 0), mkc(0, 100), wg, n};
        task_go(sp_stress_send_peer, &a);
        for (long i = 0; i < n; i++) {
            for (int k = 0; k < 2; k++) {
                struct chan_case cs[] = {chan_case_send(a.c1, &i), chan_case_send(a.c2, &i)};
                int r = chan_select(cs, 2);
                CHECK((r == 0 || r == 1) && cs[r].ok, "stress_send %ld: %d", i, r);
            }
            CHECK(chan_send(a.c3, NULL) == 0, "stress_send c3");
        }
        wg_wait(wg, 1);
        freec(a.c1);
        freec(a.c2);
        freec(a.c3);
    }
    { /* reuse: one array of cases for every select */
        struct sp a = {mkc(sizeof(long), 0), mkc(sizeof(long), 0), mkc(0, 100), wg, n};
        task_go(sp_reuse_peer, &a);
        long v = -1, out = 0;
        struct chan_case cs[] = {chan_case_recv(a.c1, &v), chan_case_send(a.c2, &out)};
        for (long i = 0; i < n; i++) {
            out = i;
            for (int k = 0; k < 2; k++) {
                cs[0].ok = cs[1].ok = false;
                int r = chan_select(cs, 2);
                CHECK((r == 0 && v == i) || r == 1, "reuse %ld: %d %ld", i, r, v);
                CHECK(r >= 0 && cs[r].ok && !cs[1 - r].ok, "reuse %ld: ok fields", i);
            }
            CHECK(chan_send(a.c3, NULL) == 0, "reuse c3");
        }
        wg_wait(wg, 1);
        freec(a.c1);
        freec(a.c2);
        freec(a.c3);
    }
    { /* unblocks, then disconnected */
        struct sp a = {mkc(sizeof(long), 0), mkc(sizeof(long), 0), mkc(sizeof(long), 16), wg, 0};
        long v = -1, one = 1;
        task_go(sp_unblocks_peer, &a);
        struct chan_case rs[] = {chan_case_recv(a.c1, &v), chan_case_recv(a.c2, &v)};
        int r = chan_select_until(rs, 2, chan_now() + 30000 * MS);
        CHECK(r == 1 && rs[1].ok && v == 2, "unblocks: recv %d %ld", r, v);
        struct chan_case ss[] = {chan_case_send(a.c1, &one), chan_case_send(a.c2, &one)};
        r = chan_select_until(ss, 2, chan_now() + 30000 * MS);
        CHECK(r == 0 && ss[0].ok, "unblocks: send %d", r);
        v = -1;
        struct chan_case ds[] = {chan_case_recv(a.c3, &v)};
        r = chan_select_until(ds, 1, chan_now() + 30000 * MS);
        CHECK(r == 0 && !ds[0].ok && v == 0, "disconnected: woken %d %ld", r, v);
        wg_wait(wg, 1);
        chan_t *open = mkc(sizeof(long), 16);
        for (int k = 0; k < 2; k++) { /* closed and drained beats an empty open channel */
            v = -1;
            struct chan_case cs[] = {chan_case_recv(a.c3, &v), chan_case_recv(open, &v)};
            r = chan_select_until(cs, 2, chan_now() + 30000 * MS);
            CHECK(r == 0 && !cs[0].ok && v == 0, "disconnected %d: %d %ld", k, r, v);
        }
        CHECK(send_long(open, 5) == 0 && chan_recv(open, &v) == 0 && v == 5, "open still works");
        freec(open);
        freec(a.c1);
        freec(a.c2);
        freec(a.c3);
    }
    freec_later(wg);
}

/* zero.rs: fairness, a select of two sends against a select of two receives on two unbuffered
 * channels: whichever comes second finds both cases ready and picks one at random, so each
 * case wins about half the rounds on both sides (at least a quarter, as crossbeam asks).
 * select.rs: fairness2, a select of sends on a big buffer and a buffer of one (each offered only
 * while empty) and an unbuffered channel, against a select of the three receives: no case
 * starves (each at least a fiftieth of its share, as crossbeam asks). */
struct fp {
    chan_t *c1, *c2, *c3, *wg;
    long n;
    long hits[3];
};

static void fp_zero_recv(void *p)
{
    struct fp *a = p;
    struct chan_case cs[] = {chan_case_recv(a->c1, NULL), chan_case_recv(a->c2, NULL)};
    for (long i = 0; i < a->n; i++) {
        int r = chan_select(cs, 2);
        CHECK((r == 0 || r == 1) && cs[r].ok, "zero fairness recv: %d", r);
        if (r == 0 || r == 1)
            a->hits[r]++;
    }
    wg_done(a->wg);
}

static void fp_fairness2_send(void *p)
{
    struct fp *a = p;
    for (long i = 0; i < a->n; i++) {
        struct chan_case cs[3];
        int k = 0;
        if (chan_len(a->c1) == 0)
            cs[k++] = chan_case_send(a->c1, NULL);
        if (chan_len(a->c2) == 0)
            cs[k++] = chan_case_send(a->c2, NULL);
        cs[k++] = chan_case_send(a->c3, NULL);
        int r = chan_select(cs, (size_t)k);
        CHECK(r >= 0 && r < k && cs[r].ok, "fairness2 send: %d", r);
    }
    wg_done(a->wg);
}

static void cb_fairness_selects_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 1);
    long n = sized(10000, 10000);
    { /* zero.rs: fairness */
        struct fp a = {mkc(0, 0), mkc(0, 0), NULL, wg, n, {0}};
        long hits[2] = {0};
        task_go(fp_zero_recv, &a);
        struct chan_case cs[] = {chan_case_send(a.c1, NULL), chan_case_send(a.c2, NULL)};
        for (long i = 0; i < n; i++) {
            int r = chan_select(cs, 2);
            CHECK((r == 0 || r == 1) && cs[r].ok, "zero fairness send: %d", r);
            if (r == 0 || r == 1)
                hits[r]++;
        }
        wg_wait(wg, 1);
        for (int k = 0; k < 2; k++) {
            CHECK(hits[k] >= n / 4, "zero fairness: send case %d won %ld of %ld", k, hits[k], n);
            CHECK(a.hits[k] >= n / 4, "zero fairness: recv case %d won %ld of %ld", k, a.hits[k],
                  n);
        }
        freec(a.c1);
        freec(a.c2);
    }
    { /* select.rs: fairness2 */
        struct fp a = {mkc(0, (size_t)n), mkc(0, 1), mkc(0, 0), wg, n, {0}};
        task_go(fp_fairness2_send, &a);
        struct chan_case cs[] = {chan_case_recv(a.c1, NULL), chan_case_recv(a.c2, NULL),
                                 chan_case_recv(a.c3, NULL)};
        for (long i = 0; i < n; i++) {
            int r = chan_select(cs, 3);
            CHECK(r >= 0 && r < 3 && cs[r].ok, "fairness2 recv: %d", r);
            if (r >= 0 && r < 3)
                a.hits[r]++;
        }
        wg_wait(wg, 1);
        for (int k = 0; k < 3; k++)
            CHECK(a.hits[k] >= n / 3 / 50, "fairness2: case %d won %ld of %ld", k, a.hits[k], n);
        freec(a.c1);
        freec(a.c2);
        freec(a.c3);
    }
    freec_later(wg);
}

/* ---- The contract's precise points (chan.h), on tasks: what test_contract.c checks on threads
 * with a white-box probe at every step, run here on Gs and on both as well --------------------- */

enum { CT_FORMS = 4 }; /* recv, recv_until, select, select_until */

struct ct_recv {
    chan_t *c, *never, *wg;
    int form;
    bool null_elem;
    long v, other;
};

/* A receive of each blocking form that the close wakes: -EPIPE (ok false), elem zeroed; a
 * select's other case neither chosen nor written. */
static void ct_blocked_recv(void *p)
{
    struct ct_recv *a = p;
    long *e = a->null_elem ? NULL : &a->v;
    struct chan_case cs[2] = {chan_case_recv(a->never, &a->other), chan_case_recv(a->c, e)};
    int r;
    switch (a->form) {
    case 0: r = chan_recv(a->c, e); break;
    case 1: r = chan_recv_until(a->c, e, chan_now() + 60000 * MS); break;
    case 2: r = chan_select(cs, 2) == 1 && !cs[1].ok ? -EPIPE : -1; break;
    default: r = chan_select_until(cs, 2, chan_now() + 60000 * MS) == 1 && !cs[1].ok ? -EPIPE : -1;
    }
    CHECK(r == -EPIPE, "form %d: woken by close: %d", a->form, r);
    CHECK(a->null_elem || a->v == 0, "form %d: elem not zeroed", a->form);
    CHECK(a->other == -1 && !cs[0].ok, "form %d: the other case written", a->form);
    wg_done(a->wg);
}

struct ct_peer {
    chan_t *c, *wg;
    bool send;
};

static void ct_peer(void *p)
{
    struct ct_peer *a = p;
    long v = 9;
    int r = a->send ? chan_send(a->c, &v) : chan_recv(a->c, &v);
    CHECK(r == 0, "peer: %d", r);
    wg_done(a->wg);
}

static void contract_main(void *arg)
{
    (void)arg;
    chan_t *wg = mkc(0, 16), *never = mkc(sizeof(long), 0);
    const size_t caps[] = {0, 2, 16};
    for (size_t k = 0; k < 3; k++) {
        /* Every receive that reports closed zeroes *elem: blocked ones woken by the close... */
        chan_t *c = mkc(sizeof(long), caps[k]);
        struct ct_recv r[CT_FORMS + 1];
        for (int i = 0; i <= CT_FORMS; i++) {
            r[i] = (struct ct_recv){c, never, wg, i % CT_FORMS, i == CT_FORMS, -1, -1};
            task_go(ct_blocked_recv, &r[i]);
        }
        wait_queued(c, CHAN_RECV, CT_FORMS + 1);
        CHECK(chan_close(c) == 0, "close");
        wg_wait(wg, CT_FORMS + 1);
        freec(c);
        /* ... and, after a drain, each form, the try ones and a deadline already past too. */
        c = mkc(sizeof(long), caps[k]);
        for (size_t i = 0; i < caps[k]; i++)
            CHECK(send_long(c, 1) == 0, "fill");
        CHECK(chan_close(c) == 0, "close");
        for (int f = 0; f < 6; f++) {
            for (size_t i = 0; i <= caps[k]; i++) {
                long v = -1, other = -1;
                struct chan_case cs[2] = {chan_case_recv(c, &v), chan_case_recv(never, &other)};
                int rc;
                switch (f) {
                case 0: rc = chan_tryrecv(c, &v); break;
                case 1: rc = chan_recv_until(c, &v, chan_now() - 1); break;
                case 2: rc = chan_recv(c, &v); break;
                default:
                    rc = f == 3   ? chan_tryselect(cs, 2)
                         : f == 4 ? chan_select_until(cs, 2, INT64_MIN)
                                  : chan_select(cs, 2);
                    CHECK(rc == 0 && other == -1, "cap %zu, form %d: select %d", caps[k], f, rc);
                    rc = cs[0].ok ? 0 : -EPIPE;
                }
                if (i < caps[k] && f == 0) /* the values first, then closed */
                    CHECK(rc == 0 && v == 1, "cap %zu: value %zu: %d", caps[k], i, rc);
                if (i == caps[k])
                    CHECK(rc == -EPIPE && v == 0, "cap %zu, form %d: %d, elem %ld", caps[k], f, rc,
                          v);
                if (f > 0)
                    break; /* drained by form 0 */
            }
        }
        freec(c);
        /* A passed deadline is the try form reporting -ETIMEDOUT; a ready operation completes
         * whatever the deadline: a peer blocked (unbuffered) or the buffer. */
        c = mkc(sizeof(long), caps[k]);
        long v = -1;
        struct chan_case cs[2] = {chan_case_recv(c, &v), chan_case_recv(never, NULL)};
        CHECK(chan_recv_until(c, &v, INT64_MIN) == -ETIMEDOUT, "past: empty");
        CHECK(chan_select_until(cs, 2, 0) == -ETIMEDOUT && !cs[0].ok && !cs[1].ok && v == -1,
              "past: select");
        struct ct_peer peer = {c, wg, true};
        if (caps[k])
            CHECK(send_long(c, 9) == 0, "send");
        else
            task_go(ct_peer, &peer);
        if (!caps[k])
            wait_queued(c, CHAN_SEND, 1);
        CHECK(chan_recv_until(c, &v, INT64_MIN) == 0 && v == 9, "past: ready recv");
        if (!caps[k]) {
            wg_wait(wg, 1);
            peer.send = false;
            task_go(ct_peer, &peer);
            wait_queued(c, CHAN_RECV, 1);
        }
        long nine = 9;
        CHECK(chan_send_until(c, &nine, chan_now() - 1) == 0, "past: ready send");
        if (!caps[k])
            wg_wait(wg, 1);
        /* select validates every case first: a peer blocked on c stays blocked, a buffered
         * value stays buffered, when a later case is invalid (a NULL channel's bad dir). */
        if (!caps[k]) {
            peer.send = true;
            task_go(ct_peer, &peer);
            wait_queued(c, CHAN_SEND, 1);
        }
        struct chan_case inval[2] = {chan_case_recv(c, &v), chan_case_recv(NULL, NULL)};
        inval[1].dir = (enum chan_dir)0;
        v = -1;
        CHECK(chan_select(inval, 2) == -EINVAL && v == -1 && !inval[0].ok, "validation");
        CHECK(caps[k] ? chan_len(c) == 1 : hchan_waiting(c, CHAN_SEND) == 1, "consumed");
        CHECK(chan_send(c, NULL) == -EINVAL, "send elem NULL");
        CHECK(chan_recv(c, &v) == 0 && v == 9, "after validation");
        if (!caps[k])
            wg_wait(wg, 1);
        CHECK(chan_close(c) == 0 && chan_send(c, NULL) == -EINVAL, "closed: elem NULL");
        freec(c);
    }
    freec(never);
    freec_later(wg);
}

#endif
