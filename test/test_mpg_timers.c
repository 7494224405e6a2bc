/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_timers.c - libchan-mpg (sched/): the timers of parked Gs, one heap per P (Go 1.14's
 * p.timers). A G that parks with a deadline arms its timer on the heap of the P it parks on;
 * woken early, it removes it from that heap, from whatever P it runs on by then; a P whose
 * owner runs a G that keeps its M, or that has gone idle, still has its timers run by someone.
 *
 * Each case runs on 2 Ps (CHAN_TEST_NPROCS gives them more). A timer left behind in a heap
 * shows as a deadlock report that does not come (the report waits for every armed timer: the
 * cases arm a minute away) and hangs the case into Check's time-out; a timer nobody runs hangs
 * it too (the G it is for never wakes).
 */
#include "testmpg.h"

#include <limits.h>
#include <stdatomic.h>

#include "sched/sched_internal.h" /* timer_grow_fail_hook; a G's wake word counts its parks */

#define FAR (60000 * MS) /* a deadline that is never reached in a case */
#define LATE (5000 * MS) /* "within seconds": a timer run, not one lost (a loaded machine) */

/* A G's wait, s.rc from a deadline s.deadline, timed out and woke (s.woke) at or after it, by
 * less than LATE: its timer ran, neither early nor lost. A macro, for Check's line numbers. */
#define CHECK_TIMED_OUT_ON_TIME(s)                                                                 \
    do {                                                                                           \
        ck_assert_int_eq((s).rc, -ETIMEDOUT);                                                      \
        ck_assert_int_ge((s).woke, (s).deadline);                                                  \
        ck_assert_int_lt((s).woke - (s).deadline, LATE);                                           \
    } while (0)

/* Fails the G's check once `until` has passed, for the loops below that wait on another G. */
static bool spin_until(atomic_int *v, int want, int64_t until)
{
    while (atomic_load(v) < want) {
        if (chan_now() > until)
            return false;
    }
    return true;
}

/* A G blocked forever on c, once every other G is done: chan_mpg_wait reports a deadlock as soon
 * as no timer is armed (none left in any P's heap), then c's close ends it. */
static void block_on(void *arg)
{
    long v;
    G_CHECK(chan_recv(arg, &v) == -EPIPE);
}

static void expect_deadlock_then_finish(void)
{
    chan_t *c = chan_make(sizeof(long), 0);
    go(block_on, c);
    char buf[512];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    ck_assert_int_eq(chan_close(c), 0);
    finish();
    chan_free(c);
}

/* ---- A timer armed on one P, cancelled from another ------------------------------------------ */

struct xcancel {
    chan_t *c, *sync;
    atomic_int woke;
    int rounds;
};

/* Parks with a far deadline on its parent's P (the parent handed it the M), and is woken early
 * by the parent, which then keeps that P: it runs on another P, taken from the runnext it was
 * put in, and its park's end removes the timer from the first P's heap. */
static void xc_waiter(void *arg)
{
    struct xcancel *x = arg;
    long v = 1;
    G_CHECK(chan_send(x->sync, &v) == 0);
    G_CHECK(chan_recv_until(x->c, &v, chan_now() + FAR) == 0);
    G_CHECK(v == 2);
    atomic_fetch_add(&x->woke, 1);
}

static void xc_parent(void *arg)
{
    struct xcancel *x = arg;
    for (int i = 0; i < x->rounds; i++) {
        long v;
        G_CHECK(chan_mpg_go(xc_waiter, x) > 0);
        G_CHECK(chan_recv(x->sync, &v) == 0 && v == 1); /* the waiter runs here, then parks */
        v = 2;
        G_CHECK(chan_send(x->c, &v) == 0);
        /* Keep this P: the waiter must run elsewhere (a thief, or sysmon after a look). */
        if (!spin_until(&x->woke, i + 1, chan_now() + 20000 * MS)) {
            G_CHECK(!"the waiter never ran");
            return;
        }
    }
}

START_TEST(timer_cancelled_from_another_p)
{
    start(2);
    struct xcancel x = {chan_make(sizeof(long), 0), chan_make(sizeof(long), 0), 0, scaled(300, 50)};
    go(xc_parent, &x);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(atomic_load(&x.woke), x.rounds);
    NO_BAD();
    /* Every timer was removed: the report of a blocked G comes at once, not in a minute. */
    expect_deadlock_then_finish();
    chan_free(x.c);
    chan_free(x.sync);
}
END_TEST

/* ---- A P held by a G that keeps its M, or idle, with a timer due ----------------------------- */

struct held {
    chan_t *c;
    atomic_int done;
    int64_t deadline, woke;
    int rc;
};

/* Spins on its P (the one its parent parked on) until the parent's timer has fired elsewhere. */
static void held_hog(void *arg)
{
    struct held *h = arg;
    if (!spin_until(&h->done, 1, chan_now() + 20000 * MS))
        G_CHECK(!"the timer of the held P never fired");
}

static void held_parent(void *arg)
{
    struct held *h = arg;
    long v;
    G_CHECK(chan_mpg_go(held_hog, h) > 0); /* in this P's runnext: it runs here when this G parks */
    h->deadline = chan_now() + 50 * MS;
    h->rc = chan_recv_until(h->c, &v, h->deadline);
    h->woke = chan_now();
    atomic_store(&h->done, 1);
}

START_TEST(timer_of_a_held_p_fires)
{
    start(2);
    struct held h = {.c = chan_make(sizeof(long), 0)};
    go(held_parent, &h);
    finish();
    CHECK_TIMED_OUT_ON_TIME(h);
    NO_BAD();
    chan_free(h.c);
}
END_TEST

/* Every P goes idle with the timers due later: the Gs still wake. A timer armed earlier than
 * the one the idle Ms sleep until (a G that sleeps a minute, first) must wake one of them. */
struct idle {
    chan_t *stop;
    int64_t deadline, woke;
    int rc;
};

static void idle_long(void *arg)
{
    struct idle *t = arg;
    long v;
    G_CHECK(chan_recv_until(t->stop, &v, chan_now() + FAR) == -EPIPE);
}

static void idle_short(void *arg)
{
    struct idle *t = arg;
    long v;
    t->deadline = chan_now() + 100 * MS;
    t->rc = chan_recv_until(t->stop, &v, t->deadline);
    t->woke = chan_now();
    G_CHECK(chan_close(t->stop) == 0);
}

START_TEST(idle_ps_timer_wakes)
{
    start(2);
    struct idle t = {.stop = chan_make(sizeof(long), 0)};
    chan_mpg_foreign_enter(); /* it will spawn: no deadlock report meanwhile */
    go(idle_long, &t);
    /* Most often the long one has parked by then, every P is idle and an idle M sleeps until its
     * deadline; either way the short one must time out on time. */
    sleep_ms(50);
    go(idle_short, &t);
    chan_mpg_foreign_leave();
    finish();
    CHECK_TIMED_OUT_ON_TIME(t);
    NO_BAD();
    chan_free(t.stop);
}
END_TEST

/* ---- Many Gs with deadlines on many Ps ------------------------------------------------------- */

#define NCH 8

struct many {
    chan_t *c[NCH];
    int rounds;
    atomic_long sent, received, sum_sent, sum_received, timedout, early, late;
};

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Receives with deadlines 0-2 ms away, or sleeps, on a channel chosen at random: the values of
 * the senders race the deadlines on every P. */
static void many_rx(void *arg)
{
    struct many *m = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s ^ (uint64_t)chan_now();
    for (int i = 0; i < m->rounds; i++) {
        int64_t d = chan_now() + (int64_t)(xs(&s) % 2000000);
        if (xs(&s) % 8 == 0) {
            G_CHECK(chan_mpg_sleep_until(d) == 0);
            if (chan_now() < d)
                atomic_fetch_add(&m->early, 1);
            continue;
        }
        long v;
        int rc = chan_recv_until(m->c[xs(&s) % NCH], &v, d);
        int64_t now = chan_now();
        if (rc == 0) {
            atomic_fetch_add(&m->received, 1);
            atomic_fetch_add(&m->sum_received, v);
        } else {
            G_CHECK(rc == -ETIMEDOUT);
            atomic_fetch_add(&m->timedout, 1);
            if (now < d)
                atomic_fetch_add(&m->early, 1);
            if (now - d > LATE)
                atomic_fetch_add(&m->late, 1);
        }
    }
}

static void many_tx(void *arg)
{
    struct many *m = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s ^ (uint64_t)chan_now();
    for (long i = 1; i <= m->rounds; i++) {
        int rc = chan_send_until(m->c[xs(&s) % NCH], &i, chan_now() + (int64_t)(xs(&s) % 1000000));
        G_CHECK(rc == 0 || rc == -ETIMEDOUT);
        if (rc == 0) {
            atomic_fetch_add(&m->sent, 1);
            atomic_fetch_add(&m->sum_sent, i);
        }
    }
}

static void many_run(void)
{
    start(2);
    struct many m = {.rounds = 20};
    for (int i = 0; i < NCH; i++)
        m.c[i] = chan_make(sizeof(long), 0);
    int n = under_tsan() ? 100 : scaled(2000, 400);
    for (int i = 0; i < n; i++) {
        go(many_rx, &m);
        if (i % 2 == 0)
            go(many_tx, &m);
    }
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(atomic_load(&m.sent), atomic_load(&m.received));
    ck_assert_int_eq(atomic_load(&m.sum_sent), atomic_load(&m.sum_received));
    ck_assert_int_eq(atomic_load(&m.early), 0);
    ck_assert_int_eq(atomic_load(&m.late), 0);
    ck_assert_int_gt(atomic_load(&m.timedout), 0);
    NO_BAD();
    expect_deadlock_then_finish();
    for (int i = 0; i < NCH; i++)
        chan_free(m.c[i]);
}

START_TEST(many_deadlines_many_ps) { many_run(); }
END_TEST

/* ---- A heap shrinks after a burst ----------------------------------------------------------- */

/* Waits with a deadline 20-40 ms away, three times, on a channel nobody sends to: every timer is
 * fired, none cancelled. */
static void burst_waiter(void *arg)
{
    long v;
    for (int i = 0; i < 3; i++)
        G_CHECK(chan_recv_until(arg, &v, chan_now() + (20 + i * 10) * MS) == -ETIMEDOUT);
}

/* The largest heap of any P now (each P's tlock in turn). */
static size_t heap_cap_max(void)
{
    size_t max = 0;
    for (int i = 0; i < sched.nprocs; i++) {
        pthread_mutex_lock(&sched.ps[i].tlock);
        if (sched.ps[i].timers.cap > max)
            max = sched.ps[i].timers.cap;
        pthread_mutex_unlock(&sched.ps[i].tlock);
    }
    return max;
}

/* A burst of timed waits grows the heap past its first size; once every timer has fired, the
 * heap is back to it (timers_fire halves a heap a quarter full), not kept at its peak. On one
 * P, whose heap every G parks on: many Ps would spread a burst too thin to grow theirs. */
START_TEST(heap_shrinks_after_burst)
{
    start(1);
    chan_t *c = chan_make(sizeof(long), 0);
    int n = under_tsan() ? 300 : scaled(5000, 1000);
    chan_mpg_foreign_enter(); /* it reads the heaps meanwhile: no deadlock report */
    for (int i = 0; i < n; i++)
        go(burst_waiter, c);
    size_t peak = 0;
    for (int64_t until = chan_now() + LATE; peak <= TIMERS_MIN && chan_now() < until;)
        peak = heap_cap_max();
    chan_mpg_foreign_leave();
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_uint_gt(peak, TIMERS_MIN);
    ck_assert_uint_eq(heap_cap_max(), TIMERS_MIN);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    chan_free(c);
}
END_TEST

/* ---- Many timers due at once: one batch (inject) -------------------------------------------- */

/* n Gs wait with one deadline: its timers fire in one go on the P they parked on, and the Gs go
 * to the run queues as one batch (proc.c's inject, after Go's injectglist): some to the global
 * queue, an M started for each idle P, the rest on the ring of the P that fired them, more than
 * a ring holds (what does not fit sends half the ring to the global queue). Every G must run,
 * once: a G lost in the batch hangs the case, one queued twice runs twice (or crashes). */
static struct burst {
    chan_t *never;
    int64_t deadline;
    int n;
    bool hold; /* the spawner keeps its P until every waiter has run */
    atomic_int parked, ran;
    atomic_int *runs; /* per waiter */
} bu;

static void burst_timed(void *arg)
{
    int i = (int)(intptr_t)arg;
    long v;
    atomic_fetch_add(&bu.parked, 1);
    G_CHECK(chan_recv_until(bu.never, &v, bu.deadline) == -ETIMEDOUT);
    G_CHECK(chan_now() >= bu.deadline);
    atomic_fetch_add(&bu.runs[i], 1);
    atomic_fetch_add(&bu.ran, 1);
}

/* Spawns the waiters onto its P's ring and lets them park there. With hold it then keeps the
 * P, never scheduling: the timers are due on a P whose owner does not run them, so another M
 * (out of work, or the idle one that sleeps until the earliest timer) or sysmon fires them all
 * and injects the batch from there. */
static void burst_spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < bu.n; i++)
        G_CHECK(chan_mpg_go(burst_timed, (void *)(intptr_t)i) > 0);
    while (atomic_load(&bu.parked) < bu.n)
        chan_mpg_yield();
    if (bu.hold)
        G_CHECK(spin_until(&bu.ran, bu.n, chan_now() + 30000 * MS));
}

static void burst_run(int nprocs, bool hold)
{
    bu.n = under_tsan() ? 300 : scaled(3000, 600); /* a ring holds 256 */
    bu.hold = hold;
    bu.never = chan_make(sizeof(long), 0);
    bu.runs = calloc((size_t)bu.n, sizeof *bu.runs);
    atomic_store(&bu.parked, 0);
    atomic_store(&bu.ran, 0);
    /* Far enough for every waiter to have parked on a loaded machine; one that has not yet
     * times out at once, which the case allows too. */
    bu.deadline = chan_now() + 300 * MS;
    start(nprocs);
    go(burst_spawner, NULL);
    finish();
    NO_BAD();
    ck_assert_int_eq(atomic_load(&bu.ran), bu.n);
    for (int i = 0; i < bu.n; i++)
        ck_assert_msg(atomic_load(&bu.runs[i]) == 1, "waiter %d ran %d times", i,
                      atomic_load(&bu.runs[i]));
    free(bu.runs);
    chan_free(bu.never);
}

START_TEST(timers_due_together)
{
    burst_run(1, false); /* the P fires them at its next schedule: its ring overflows */
    burst_run(2, false); /* ... and starts an M for the idle P */
    burst_run(2, true);  /* another M or sysmon fires them: a P's timers run by another */
}
END_TEST

/* ---- A heap that cannot grow: the spill ------------------------------------------------------ */

/* How many more growths of a timer heap fail (timer_grow_fail_hook), as malloc would. */
static atomic_long grow_fails;
static bool grow_fail(void) { return atomic_fetch_sub(&grow_fails, 1) > 0; }

static void grow_fail_set(long n)
{
    atomic_store(&grow_fails, n);
    timer_grow_fail_hook = grow_fail;
}

/* The parks of the calling G so far: its wake word's seq, which each park bumps (park_commit). */
static uint64_t parks(void) { return atomic_load(&m_self()->curg->wake) >> 2; }

struct spill {
    chan_t *c;
    int64_t deadline, woke;
    uint64_t parks_timed, parks_woken;
    int rc;
};

/* Times out on a heap that cannot grow: once, at its deadline. Before the spill its arm woke it
 * at once, libchan took the time-out as spurious and parked it again: a park per turn of a
 * busy loop until the deadline. */
static void spill_timed(void *arg)
{
    struct spill *t = arg;
    long v;
    uint64_t p0 = parks();
    t->deadline = chan_now() + 100 * MS;
    t->rc = chan_recv_until(t->c, &v, t->deadline);
    t->woke = chan_now();
    t->parks_timed = parks() - p0;
    v = 1;
    G_CHECK(chan_send(t->c, &v) == 0);
}

/* Parks a minute away, spilled too, and is woken by spill_timed's send: its timer leaves the
 * spill (else it holds back the deadlock report that follows). */
static void spill_woken(void *arg)
{
    struct spill *t = arg;
    long v;
    uint64_t p0 = parks();
    G_CHECK(chan_recv_until(t->c, &v, chan_now() + FAR) == 0 && v == 1);
    t->parks_woken = parks() - p0;
}

START_TEST(timer_heap_cannot_grow)
{
    grow_fail_set(LONG_MAX); /* no heap ever grows: every timer is spilled */
    start(2);
    struct spill t = {.c = chan_make(sizeof(long), 0)};
    go(spill_woken, &t);
    go(spill_timed, &t);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    CHECK_TIMED_OUT_ON_TIME(t);
    ck_assert_uint_eq(t.parks_timed, 1);
    ck_assert_uint_le(t.parks_woken, 1); /* 0: the send came before it parked */
    NO_BAD();
    expect_deadlock_then_finish();
    timer_grow_fail_hook = NULL;
    chan_free(t.c);
}
END_TEST

/* Many Gs with deadlines while the heaps cannot grow, then can: the first timers are spilled,
 * fired or cancelled there, or moved into the heaps once memory is back. */
START_TEST(many_deadlines_heap_cannot_grow)
{
    grow_fail_set(under_tsan() ? 20 : 200);
    many_run();
    ck_assert_int_le(atomic_load(&grow_fails), 0); /* memory came back */
    grow_fail_set(LONG_MAX);                       /* and never does */
    many_run();
    timer_grow_fail_hook = NULL;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg_timers");
    ADD_TEST(s, timer_cancelled_from_another_p, 30);
    ADD_TEST(s, timer_of_a_held_p_fires, 30);
    ADD_TEST(s, idle_ps_timer_wakes, 30);
    ADD_TEST(s, many_deadlines_many_ps, 60);
    ADD_TEST(s, heap_shrinks_after_burst, 60);
    ADD_TEST(s, timers_due_together, 60);
    ADD_TEST(s, timer_heap_cannot_grow, 30);
    ADD_TEST(s, many_deadlines_heap_cannot_grow, 120);
    return run_suite(s);
}
