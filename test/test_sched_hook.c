/* SPDX-License-Identifier: MIT */
/*
 * test_sched_hook.c - real coroutines through the scheduler hook (struct chan_sched), as a
 * coroutine runtime's author writes them from chan_sched(3): the runtime of test/coro.h, on one
 * worker thread and on two (M:N), sharing channels with plain threads, parking with deadlines,
 * woken by peers, close, timers and contexts, freed as soon as they end; hooks that call
 * libchan; and schedulers whose park does not keep its side of the contract. What libchan owes
 * them (chan_sched(3)): a -ETIMEDOUT or -EINTR before the deadline is a spurious wake-up and the
 * wait goes on to the same deadline; any other value ends the operation with that error (a
 * positive one negated), nothing done, unless a waker had completed it first: then the
 * operation parks again to consume the unpark and reports what the waker did (no value lost).
 * test_sched.c checks the hook's contract call by call with one task per thread.
 */
#include "testnet.h"
#include "testutil.h"

#include <sys/wait.h>

#include "coro.h"

#include "sync/chan_sync.h"
#include "chan_time.h"

#include <semaphore.h>
#include <signal.h>

#include "seam.h" /* wakeups_hold, wakeups_release, wakeups_held_threads */

#define ASSERT_NO_VIOLATIONS()                                                                     \
    ck_assert_msg(atomic_load(&coro_violations) == 0, "%ld hook contract violation(s); first: %s", \
                  atomic_load(&coro_violations), coro_first_violation)

static int queued_receivers(void *c) { return hchan_waiting(c, CHAN_RECV) >= 1; }

#ifdef CHAN_TRACE_BUILD
#include "chan_leak.h"
#include "chan_trace.h"
#endif

/* ---- Coroutines and threads: ping-pong, both ways, on 1 and 2 workers ------------------------ */

struct pingpong {
    chan_t *ping, *pong;
    int rounds;
    int bad;
};

static void echo(void *arg)
{
    struct pingpong *p = arg;
    int v;
    while (chan_recv(p->ping, &v) == 0)
        if (chan_send(p->pong, &v) != 0)
            p->bad++;
}

static void *echo_thread(void *arg)
{
    echo(arg);
    return NULL;
}

static void drive(void *arg)
{
    struct pingpong *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        int v = i, w = -1;
        if (chan_send(p->ping, &v) != 0 || chan_recv(p->pong, &w) != 0 || w != i)
            p->bad++;
    }
    chan_close(p->ping);
}

static void *drive_thread(void *arg)
{
    drive(arg);
    return NULL;
}

START_TEST(test_coro_pingpong)
{
    /* _i: 0 one worker, 1 two; each: coroutine-coroutine, coroutine-thread, thread-coroutine */
    int nw = _i + 1;
    for (int shape = 0; shape < 3; shape++) {
        struct pingpong p = {mk(sizeof(int), 0), mk(sizeof(int), 0), scaled(2000, 300), 0};
        pthread_t t = 0;
        coro_start(nw);
        if (shape == 0) {
            coro_go(echo, &p);
            coro_go(drive, &p);
        } else if (shape == 1) {
            t = spawn(echo_thread, &p);
            coro_go(drive, &p);
        } else {
            coro_go(echo, &p);
            t = spawn(drive_thread, &p);
        }
        if (t)
            join(t);
        coro_wait();
        ck_assert_int_eq(p.bad, 0);
        ck_assert_int_eq(chan_free(p.ping), 0);
        ck_assert_int_eq(chan_free(p.pong), 0);
    }
    ASSERT_NO_VIOLATIONS();
    ck_assert_int_eq(atomic_load(&coro_n_park), atomic_load(&coro_n_current));
}
END_TEST

/* ---- Deadlines reach park; timers, contexts and close wake coroutines ------------------------ */

static void deadlines(void *arg)
{
    int *bad = arg;
    chan_t *c = mk(sizeof(int), 0);
    struct coro *me = coro_self();
    int v = 0;
    int64_t d = chan_now() + 20 * MS;
    if (chan_recv_until(c, &v, d) != -ETIMEDOUT || me->last_deadline != d || chan_now() < d)
        (*bad)++;
    d = chan_now() + 20 * MS;
    struct chan_case cs[] = {chan_case_recv(c, &v), chan_case_send(c, &v)};
    if (chan_select_until(cs, 2, d) != -ETIMEDOUT || me->last_deadline != d || cs[0].ok || cs[1].ok)
        (*bad)++;
    d = chan_now() + 20 * MS;
    if (chan_recv_until(NULL, &v, d) != -ETIMEDOUT || me->last_deadline != d)
        (*bad)++;
    /* a timer, and a context's deadline, wake a coroutine parked without a deadline */
    chan_timer_t *t = chan_timer_make(10 * MS);
    int64_t fired = 0;
    if (chan_recv(chan_timer_chan(t), &fired) != 0 || me->last_deadline != CHAN_FOREVER)
        (*bad)++;
    chan_timer_free(t);
    chan_ctx_t *ctx = chan_ctx_with_timeout(chan_ctx_background(), 10 * MS);
    struct chan_case done[] = {chan_case_recv(c, &v), chan_case_recv(chan_ctx_done(ctx), NULL)};
    if (chan_select(done, 2) != 1 || done[1].ok || chan_ctx_err(ctx) != -ETIMEDOUT)
        (*bad)++;
    chan_ctx_free(ctx);
    chan_free(c);
}

static void closed_on(void *arg)
{
    chan_t *c = arg;
    int v = 5;
    ck_assert_int_eq(chan_recv(c, &v), -EPIPE);
    ck_assert_int_eq(v, 0);
}

START_TEST(test_coro_deadlines_timers_close)
{
    int bad = 0;
    chan_t *c = mk(sizeof(int), 0);
    coro_start(_i + 1);
    coro_go(deadlines, &bad);
    for (int i = 0; i < 8; i++)
        coro_go(closed_on, c);
    for (int i = 0; i < 2000 && hchan_waiting(c, CHAN_RECV) < 8; i++)
        sleep_ms(1);
    ck_assert_int_eq(chan_close(c), 0);
    coro_wait();
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(chan_free(c), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* ---- Select with default and deadlines, coroutines against threads; one-shot coroutines ------ */

struct mix {
    chan_t *a, *b, *quit;
    atomic_int got;
};

static void selector(void *arg)
{
    struct mix *m = arg;
    int v, w = 7;
    for (;;) {
        struct chan_case cs[] = {chan_case_recv(m->a, &v), chan_case_send(m->b, &w),
                                 chan_case_recv(m->quit, NULL)};
        int i = chan_tryselect(cs, 3);
        if (i == -EAGAIN)
            i = chan_select_until(cs, 3, chan_now() + 5 * MS);
        if (i == 2)
            return;
        if (i == 0 && cs[0].ok)
            atomic_fetch_add(&m->got, 1);
    }
}

/* A coroutine that makes one select racing its deadline and ends: freed at once. */
static void one_shot(void *arg)
{
    struct mix *m = arg;
    int v;
    struct chan_case cs[] = {chan_case_recv(m->a, &v), chan_case_recv(m->quit, NULL)};
    int i = chan_select_until(cs, 2, chan_now() + 1 * MS);
    if (i == 0 && cs[0].ok)
        atomic_fetch_add(&m->got, 1);
}

START_TEST(test_coro_select_with_threads)
{
    int n = scaled(2000, 400);
    struct mix m = {mk(sizeof(int), 0), mk(sizeof(int), 1), mk(0, 0), 0};
    coro_start(_i + 1);
    for (int i = 0; i < 4; i++)
        coro_go(selector, &m);
    for (int i = 0; i < n; i++) {
        int v = i;
        if (i & 1)
            ck_assert_int_eq(chan_send(m.a, &v), 0);
        else
            ck_assert_int_eq(chan_recv(m.b, &v), 0);
    }
    ck_assert_int_eq(chan_close(m.quit), 0);
    coro_wait();
    ck_assert_int_eq(atomic_load(&m.got), n / 2);

    /* One-shot coroutines whose selects time out while a thread sends: every value the thread
     * sent was received by exactly one of them. */
    chan_free(m.quit);
    m.quit = mk(0, 0);
    atomic_store(&m.got, 0);
    coro_start(_i + 1);
    int sent = 0;
    for (int round = 0; round < scaled(200, 50); round++) {
        for (int i = 0; i < 4; i++)
            coro_go(one_shot, &m);
        for (int i = 0; i < 4; i++) {
            int v = i;
            if (chan_send_until(m.a, &v, chan_now() + 1 * MS) == 0)
                sent++;
        }
    }
    coro_wait();
    ck_assert_int_eq(atomic_load(&m.got), sent);
    ck_assert_int_eq(chan_free(m.a), 0);
    ck_assert_int_eq(chan_free(m.b), 0);
    ck_assert_int_eq(chan_free(m.quit), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* ---- A time-out that lost the race to a waker: the one park with CHAN_FOREVER ---------------- */

/* Park with a deadline: wait on the thread until well past it and until the test's thread has
 * completed the operation (lost_race_sent; at most 10 s), then report the time-out anyway, as
 * a scheduler whose timer fired just before the unpark came does. A fixed wait alone lost the
 * race on a loaded machine: the test's send came more than 40 ms late, found the time-out
 * withdrawn and waited its second out (ASan, load 8 on 2 cores). */
static atomic_bool lost_race_sent;

static bool late_timeout(struct coro *c, int64_t deadline, int *rc)
{
    (void)c;
    if (deadline == CHAN_FOREVER)
        return false;
    int64_t give_up = chan_now() + 10000 * MS;
    while (chan_now() < deadline + 40 * MS ||
           (!atomic_load(&lost_race_sent) && chan_now() < give_up))
        sleep_ms(1);
    *rc = -ETIMEDOUT;
    return true;
}

struct one_op {
    chan_t *c;
    int64_t deadline;
    int rc, v, parks;
    int64_t last_deadline;
};

static void recv_until_op(void *arg)
{
    struct one_op *o = arg;
    o->v = -1;
    o->rc = chan_recv_until(o->c, &o->v, o->deadline);
    o->parks = coro_self()->parks;
    o->last_deadline = coro_self()->last_deadline;
}

START_TEST(test_coro_lost_race)
{
    /* The deadline leaves the coroutine's thread a second to queue the receive: past it, the
     * receive would time out as a try, never queued (a loaded machine took over 30 ms). */
    struct one_op o = {.c = mk(sizeof(int), 0), .deadline = chan_now() + 1000 * MS};
    coro_park_hook = late_timeout;
    coro_start(1);
    coro_go(recv_until_op, &o);
    ck_assert(eventually(queued_receivers, o.c));
    while (chan_now() < o.deadline + 10 * MS)
        sleep_ms(1);
    int v = 77;
    ck_assert_int_eq(chan_send_until(o.c, &v, chan_now() + 1000 * MS), 0);
    atomic_store(&lost_race_sent, true);
    coro_wait();
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(o.v, 77);
    ck_assert_int_eq(o.parks, 2);
    ck_assert(o.last_deadline == CHAN_FOREVER);
    ck_assert_int_eq(chan_free(o.c), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* ---- A park that returns early, or gives the wait up ----------------------------------------- */

static int early_rc;            /* what the first park of each coroutine returns at once */
static _Atomic int early_parks; /* parks seen by the hook: 2 once the wait went on */

static bool first_park_returns(struct coro *c, int64_t deadline, int *rc)
{
    (void)deadline;
    atomic_store(&early_parks, c->parks);
    if (c->parks != 1)
        return false;
    *rc = early_rc;
    return true;
}

static void recv_op(void *arg)
{
    struct one_op *o = arg;
    o->v = -1;
    o->rc = chan_recv(o->c, &o->v);
}

static void select_op(void *arg)
{
    struct one_op *o = arg;
    o->v = -1;
    struct chan_case cs[] = {chan_case_recv(NULL, NULL), chan_case_recv(o->c, &o->v)};
    o->rc = o->deadline ? chan_select_until(cs, 2, o->deadline) : chan_select(cs, 2);
    if (o->rc < 0 && (cs[0].ok || cs[1].ok))
        o->rc = -1000; /* ok written on an error */
}

static void nil_op(void *arg)
{
    struct one_op *o = arg;
    o->rc = o->deadline ? chan_recv_until(NULL, &o->v, o->deadline) : chan_recv(NULL, &o->v);
}

struct early {
    struct one_op *o;
    void (*op)(void *);
    _Atomic bool ended;
};

static void early_op(void *arg)
{
    struct early *e = arg;
    e->op(e->o);
    atomic_store(&e->ended, true);
}

/* The send may start: the operation ended at its first park, or it went on to park again. Not
 * before: a send while the first park is returning would complete the operation (the waker
 * wins), whatever the park returns. */
static int early_settled(void *arg)
{
    struct early *e = arg;
    return atomic_load(&e->ended) || atomic_load(&early_parks) >= 2;
}

/* Runs op in a coroutine whose first park returns rc at once; once the operation ended or parked
 * again, a thread sends 42 (with a deadline of 100 ms). Returns the operation's result; *sent:
 * the send's. */
static struct one_op run_early(void (*op)(void *), int rc, int64_t timeout, int *sent)
{
    struct one_op o = {.c = mk(sizeof(int), 0)};
    struct early e = {.o = &o, .op = op};
    early_rc = rc;
    atomic_store(&early_parks, 0);
    coro_park_hook = first_park_returns;
    int64_t start = chan_now();
    o.deadline = timeout ? start + timeout : 0;
    coro_start(1);
    coro_go(early_op, &e);
    ck_assert(eventually(early_settled, &e));
    int v = 42;
    *sent = chan_send_until(o.c, &v, chan_now() + 100 * MS);
    coro_wait();
    coro_park_hook = NULL;
    if (timeout && o.rc == -ETIMEDOUT)
        ck_assert_msg(chan_now() >= o.deadline, "-ETIMEDOUT before the deadline");
    ck_assert_int_eq(chan_free(o.c), 0);
    return o;
}

START_TEST(test_hook_early_timeout_is_spurious)
{
    /* -ETIMEDOUT at once, before any deadline (_i 0), and -EINTR (_i 1): a spurious wake-up.
     * The wait goes on; the value sent 30 ms later is received. Before, chan_recv returned
     * -ETIMEDOUT at once and the value went nowhere (the sender timed out). */
    int rc = _i ? -EINTR : -ETIMEDOUT, sent;
    struct one_op o = run_early(recv_op, rc, 0, &sent);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(sent, 0);
    ck_assert_int_eq(o.v, 42);
    o = run_early(recv_until_op, rc, 1000 * MS, &sent);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(o.v, 42);
    o = run_early(select_op, rc, 0, &sent);
    ck_assert_int_eq(o.rc, 1);
    ck_assert_int_eq(o.v, 42);
    o = run_early(select_op, rc, 1000 * MS, &sent);
    ck_assert_int_eq(o.rc, 1);
    /* the nil channel: only the deadline ends the wait */
    o = run_early(nil_op, rc, 60 * MS, &sent);
    ck_assert_int_eq(o.rc, -ETIMEDOUT);
    ck_assert_int_eq(sent, -ETIMEDOUT);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

static chan_wg_t *wg;

static void wg_op(void *arg)
{
    struct one_op *o = arg;
    o->rc = chan_wg_wait(wg);
}

static chan_group_t *group;

static int group_task(chan_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return chan_recv(arg, NULL) == -EPIPE ? 7 : -1; /* until released */
}

static void group_op(void *arg)
{
    struct one_op *o = arg;
    o->rc = chan_group_wait(group);
}

START_TEST(test_hook_park_gives_up)
{
    /* Another error from park ends the operation with it, nothing done: a scheduler shutting
     * down may cancel its parked tasks. Before, every such error read as -ETIMEDOUT, even for
     * operations without a deadline. A positive value is read as its negation (pthreads'
     * ETIMEDOUT). */
    int sent;
    struct one_op o = run_early(recv_op, -ECANCELED, 0, &sent);
    ck_assert_int_eq(o.rc, -ECANCELED);
    ck_assert_int_eq(o.v, -1);
    ck_assert_int_eq(sent, -ETIMEDOUT); /* nobody was left to receive it */
    o = run_early(select_op, -ECANCELED, 1000 * MS, &sent);
    ck_assert_int_eq(o.rc, -ECANCELED);
    ck_assert_int_eq(sent, -ETIMEDOUT);
    o = run_early(nil_op, -ECANCELED, 0, &sent);
    ck_assert_int_eq(o.rc, -ECANCELED);
    o = run_early(recv_op, ECANCELED, 0, &sent);
    ck_assert_int_eq(o.rc, -ECANCELED);
    o = run_early(recv_op, ETIMEDOUT, 0, &sent); /* early: spurious, as -ETIMEDOUT */
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(o.v, 42);
    /* A WaitGroup's wait reports it too, rather than a round that has not ended. */
    wg = chan_wg_make();
    ck_assert_int_eq(chan_wg_add(wg, 1), 0);
    o = run_early(wg_op, -ECANCELED, 0, &sent);
    ck_assert_int_eq(o.rc, -ECANCELED);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_wg_free(wg), 0);
    /* So does a group's wait, its task still running and its context not cancelled. */
    group = chan_group_make(chan_ctx_background());
    ck_assert_ptr_nonnull(group);
    chan_t *release = mk(0, 0);
    ck_assert_int_eq(chan_group_go(group, group_task, release), 0);
    o = run_early(group_op, -ECANCELED, 0, &sent);
    ck_assert_int_eq(o.rc, -ECANCELED);
    ck_assert_int_eq(chan_ctx_err(chan_group_ctx(group)), 0);
    ck_assert_int_eq(chan_group_free(group), -EBUSY);
    ck_assert_int_eq(chan_close(release), 0);
    ck_assert_int_eq(chan_group_wait(group), 7);
    ck_assert_int_eq(chan_group_free(group), 0);
    ck_assert_int_eq(chan_free(release), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* Park gives up after a waker completed the operation: the completion stands, no value lost. */
static bool late_give_up(struct coro *c, int64_t deadline, int *rc)
{
    if (c->parks != 1)
        return false;
    (void)deadline;
    struct one_op *o = c->arg;
    while (hchan_waiting(o->c, CHAN_RECV) != 0) /* until the thread has handed the value over */
        sleep_ms(1);
    *rc = -ECANCELED;
    return true;
}

START_TEST(test_hook_give_up_loses_race)
{
    struct one_op o = {.c = mk(sizeof(int), 0)};
    coro_park_hook = late_give_up;
    coro_start(1);
    coro_go(recv_op, &o);
    ck_assert(eventually(queued_receivers, o.c));
    int v = 42;
    ck_assert_int_eq(chan_send(o.c, &v), 0);
    coro_wait();
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(o.v, 42);
    ck_assert_int_eq(chan_free(o.c), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* ---- Hooks that call libchan ----------------------------------------------------------------- */

static chan_t *side; /* the coroutine's channel; nobody but it receives there */
static atomic_int unpark_calls;

/* unpark is never called under a channel lock: a select of two cases locks its channel, so
 * this would deadlock (the lock is not recursive) if libchan held side's. */
static void unpark_selects(struct coro *c)
{
    (void)c;
    int x = 0;
    struct chan_case cs[] = {chan_case_send(side, &x), chan_case_send(side, &x)};
    if (chan_tryselect(cs, 2) != -EAGAIN)
        coro_violate("a send on side was ready in unpark: nobody receives there now");
    atomic_fetch_add(&unpark_calls, 1);
}

static void side_receiver(void *arg)
{
    int n = *(int *)arg, v;
    for (int i = 0; i < n; i++)
        if (chan_recv(side, &v) != 0)
            coro_violate("recv on side failed");
}

START_TEST(test_hook_unpark_calls_libchan)
{
    int n = scaled(500, 100);
    side = mk(sizeof(int), 0);
    coro_unpark_hook = unpark_selects;
    coro_start(_i + 1);
    coro_go(side_receiver, &n);
    for (int i = 0; i < n; i++) {
        int v = i;
        ck_assert_int_eq(chan_send(side, &v), 0);
    }
    coro_wait();
    coro_unpark_hook = NULL;
    ck_assert_int_eq(atomic_load(&unpark_calls), atomic_load(&coro_n_unpark));
    ck_assert_int_eq(chan_free(side), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* park makes a call that does not block and completes its own operation: the unpark comes
 * before park has blocked, and the permit makes park return 0. */
static bool park_sends_to_itself(struct coro *c, int64_t deadline, int *rc)
{
    (void)deadline;
    (void)rc;
    if (c->parks == 1) {
        struct one_op *o = c->arg;
        int v = 9;
        if (chan_trysend(o->c, &v) != 0)
            coro_violate("the parking receiver was not there to take the value");
    }
    return false; /* and park as usual */
}

START_TEST(test_hook_park_completes_its_own_operation)
{
    struct one_op o = {.c = mk(sizeof(int), 0)};
    coro_park_hook = park_sends_to_itself;
    coro_start(1);
    coro_go(recv_op, &o);
    coro_wait();
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(o.v, 9);
    ck_assert_int_eq(atomic_load(&coro_n_unpark), 1);
    ck_assert_int_eq(chan_free(o.c), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* unpark may make any libchan call (chan_sched(3)), the calls of the layer that woke the task
 * included: timers, contexts, WaitGroups and signals complete channel operations while they hold
 * a lock of their own (the timer queue's, the context's, the WaitGroup's, the signal table's),
 * and must not run the unpark under it. Each variant parks a coroutine on one layer's channel,
 * has that layer wake it, and calls the same layer from the unpark, on the waker's thread: a lock
 * taken again there is a deadlock (the locks are not recursive), which the time-out reports. */
enum {
    LAYER_CTX_CANCEL,
    LAYER_CTX_DEADLINE,
    LAYER_WG,
    LAYER_TIMER,
    LAYER_TIMER_RESET,
    LAYER_SIGNAL,
    LAYER_N
};

static struct {
    int variant;
    chan_ctx_t *ctx;
    chan_wg_t *wg;
    chan_timer_t *timer;
    chan_t *c, *sig, *unused;
    int rc;
    atomic_int calls;
} layer;

/* The timer thread held inside a func timer's fn (as timing.h's hold_timer_thread), so that a
 * context's deadline passes before the coroutine waits but fires only once it does. */
static _Atomic int timer_held, timer_let_go;

static void hold_in_timer_thread(void *unused)
{
    (void)unused;
    atomic_store(&timer_held, 1);
    while (!atomic_load(&timer_let_go))
        sleep_ms(1);
}

static int flag_set(void *p) { return atomic_load((_Atomic int *)p); }

static void unpark_calls_layer(struct coro *c)
{
    (void)c;
    switch (layer.variant) {
    case LAYER_CTX_CANCEL:
    case LAYER_CTX_DEADLINE:
        if (chan_ctx_err(layer.ctx) == 0)
            coro_violate("unpark before the context's error was set");
        (void)chan_ctx_cancel(layer.ctx); /* the context's lock, and its walk over */
        break;
    case LAYER_WG:
        if (chan_wg_add(layer.wg, 0) != 0) /* the WaitGroup's lock */
            coro_violate("chan_wg_add(wg, 0) failed in unpark");
        break;
    case LAYER_TIMER:
    case LAYER_TIMER_RESET:
        (void)chan_timer_stop(layer.timer); /* the timer queue's lock */
        break;
    case LAYER_SIGNAL:
        (void)chan_signal_stop(layer.unused); /* the signal table's lock */
        break;
    }
    atomic_fetch_add(&layer.calls, 1);
}

static void layer_waiter(void *arg)
{
    (void)arg;
    if (layer.variant == LAYER_WG) {
        layer.rc = chan_wg_wait(layer.wg);
    } else if (layer.variant == LAYER_SIGNAL) {
        int s = 0;
        layer.rc = chan_recv(layer.c, &s);
        if (s != SIGUSR1)
            coro_violate("received signal %d", s);
    } else {
        int64_t v;
        layer.rc = chan_recv(layer.c, layer.variant <= LAYER_CTX_DEADLINE ? NULL : &v);
    }
}

START_TEST(test_hook_unpark_calls_the_waking_layer)
{
    memset(&layer, 0, sizeof layer);
    layer.variant = _i;
    int want = 0;
    switch (layer.variant) {
    case LAYER_CTX_CANCEL:
        layer.ctx = chan_ctx_with_cancel(chan_ctx_background());
        layer.c = chan_ctx_done(layer.ctx);
        want = -EPIPE;
        break;
    case LAYER_CTX_DEADLINE: /* not before the coroutine waits: the timer thread is held */
        layer.timer = chan_timer_make_func(0, hold_in_timer_thread, NULL);
        ck_assert(layer.timer && eventually(flag_set, &timer_held));
        layer.ctx = chan_ctx_with_timeout(chan_ctx_background(), 1 * MS);
        layer.c = chan_ctx_done(layer.ctx);
        want = -EPIPE;
        break;
    case LAYER_WG:
        layer.wg = chan_wg_make();
        ck_assert_int_eq(chan_wg_add(layer.wg, 1), 0);
        layer.c = chan_wg_chan(layer.wg);
        break;
    case LAYER_TIMER:
    case LAYER_TIMER_RESET:
        layer.timer = chan_timer_make(3600 * 1000 * MS);
        layer.c = chan_timer_chan(layer.timer);
        break;
    case LAYER_SIGNAL: {
        layer.c = mk(sizeof(int), 1);
        layer.unused = mk(sizeof(int), 1);
        int sigs[] = {SIGUSR1};
        ck_assert_int_eq(chan_signal_notify(layer.c, sigs, 1), 0);
        break;
    }
    }
    ck_assert_ptr_nonnull(layer.c);
    coro_unpark_hook = unpark_calls_layer;
    coro_start(1);
    coro_go(layer_waiter, NULL);
    ck_assert(eventually(queued_receivers, layer.c));
    switch (layer.variant) {
    case LAYER_CTX_CANCEL: ck_assert_int_eq(chan_ctx_cancel(layer.ctx), 0); break;
    case LAYER_CTX_DEADLINE: /* past: the timer thread cancels it once let go */
        sleep_ms(2);
        atomic_store(&timer_let_go, 1);
        break;
    case LAYER_WG: ck_assert_int_eq(chan_wg_done(layer.wg), 0); break;
    case LAYER_TIMER: /* fires on the timer thread */
        (void)chan_timer_reset(layer.timer, 1 * MS);
        break;
    case LAYER_TIMER_RESET: /* already due: fires in this call, on this thread */
        (void)chan_timer_reset(layer.timer, 0);
        break;
    case LAYER_SIGNAL: ck_assert_int_eq(kill(getpid(), SIGUSR1), 0); break;
    }
    coro_wait();
    coro_unpark_hook = NULL;
    ck_assert_int_eq(layer.rc, want);
    ck_assert_int_eq(atomic_load(&layer.calls), 1);
    ASSERT_NO_VIOLATIONS();
    if (layer.ctx)
        ck_assert_int_eq(chan_ctx_free(layer.ctx), 0);
    if (layer.wg)
        ck_assert_int_eq(chan_wg_free(layer.wg), 0);
    if (layer.timer)
        ck_assert_int_eq(chan_timer_free(layer.timer), 0);
    if (layer.variant == LAYER_SIGNAL) {
        ck_assert_int_eq(chan_signal_stop(layer.c), 0);
        ck_assert_int_eq(chan_free(layer.c), 0);
        ck_assert_int_eq(chan_free(layer.unused), 0);
    }
}
END_TEST

/* As ADD_TEST, for a test run once per worker count (_i 0: one worker, 1: two) or variant. */
#define ADD_LOOP_TEST(suite, fn, secs, n)                                                          \
    do {                                                                                           \
        TCase *tc_ = tcase_create(#fn);                                                            \
        tcase_set_timeout(tc_, (secs));                                                            \
        tcase_add_loop_test(tc_, fn, 0, (n));                                                      \
        suite_add_tcase((suite), tc_);                                                             \
    } while (0)

/* ---- Fds: coroutines wait on them through libchan's poll thread ------------------------------ */

/* A pipe between two coroutines, each byte checked: the writer fills the pipe past its 64 KiB
 * and waits for room, the reader drains it in small reads and waits for bytes; a third
 * coroutine plays ping-pong with the test's thread meanwhile, which on one worker proves that
 * no wait on an fd holds the worker. */
enum { PIPE_BYTES = 1 << 20 };

struct fdpipe {
    int rd, wr;
    long wrote, got, bad;
};

static unsigned char byte_at(long i) { return (unsigned char)(i * 131 + (i >> 11)); }

static void pipe_writer(void *arg)
{
    struct fdpipe *f = arg;
    unsigned char *buf = malloc(PIPE_BYTES);
    ck_assert_ptr_nonnull(buf);
    for (long i = 0; i < PIPE_BYTES; i++)
        buf[i] = byte_at(i);
    f->wrote = (long)chan_write(f->wr, buf, PIPE_BYTES, NULL, CHAN_FOREVER);
    free(buf);
}

static void pipe_reader(void *arg)
{
    struct fdpipe *f = arg;
    unsigned char b[1000];
    for (;;) {
        ssize_t n = chan_read(f->rd, b, sizeof b, NULL, CHAN_FOREVER);
        if (n <= 0) {
            if (n < 0)
                f->bad++;
            return;
        }
        for (ssize_t i = 0; i < n; i++)
            f->bad += b[i] != byte_at(f->got + i);
        f->got += n;
        if (f->got == PIPE_BYTES)
            return;
    }
}

static void ponger(void *arg)
{
    struct pingpong *pp = arg;
    int v;
    for (int i = 0; i < pp->rounds; i++) {
        if (chan_recv(pp->ping, &v) != 0 || chan_send(pp->pong, &v) != 0)
            pp->bad++;
    }
}

START_TEST(test_coro_fd_pipe)
{
    struct fdpipe f = {0};
    int p[2];
    mkpipe(p);
    f.rd = p[0];
    f.wr = p[1];
    struct pingpong pp = {.ping = mk(sizeof(int), 0), .pong = mk(sizeof(int), 0), .rounds = 200};
    coro_start(_i + 1);
    coro_go(pipe_reader, &f);
    coro_go(pipe_writer, &f);
    coro_go(ponger, &pp);
    for (int i = 0; i < pp.rounds; i++) {
        int v = i, w = -1;
        ck_assert_int_eq(chan_send(pp.ping, &v), 0);
        ck_assert_int_eq(chan_recv(pp.pong, &w), 0);
        ck_assert_int_eq(w, i);
    }
    coro_wait();
    ck_assert_int_eq(f.wrote, PIPE_BYTES);
    ck_assert_int_eq(f.got, PIPE_BYTES);
    ck_assert_int_eq(f.bad, 0);
    ck_assert_int_eq(pp.bad, 0);
    ck_assert_int_eq(chan_fd_close(p[0]), 0);
    ck_assert_int_eq(chan_fd_close(p[1]), 0);
    ck_assert_int_eq(chan_free(pp.ping), 0);
    ck_assert_int_eq(chan_free(pp.pong), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* The other ends of a wait on an fd: a channel case that wins (the poll thread then never
 * unparks the coroutine, which is freed at once: a late unpark would be a use-after-free), a
 * deadline, a cancel channel, and chan_fd_close. */
struct fdends {
    int rd;     /* never written: its waits end otherwise */
    int closed; /* closed by the test while a coroutine reads it */
    chan_t *c, *cancel;
    int r_sel, r_timeout, r_cancel, r_closed, v;
};

static void fd_select(void *arg)
{
    struct fdends *e = arg;
    int rev = 0;
    struct chan_case cs[2] = {chan_case_recv(chan_fd_chan(e->rd, POLLIN), &rev),
                              chan_case_recv(e->c, &e->v)};
    e->r_sel = chan_select(cs, 2);
    e->r_timeout = chan_select_until(cs, 2, chan_now() + 20 * 1000000LL);
    char b;
    e->r_cancel = (int)chan_read(e->rd, &b, 1, e->cancel, CHAN_FOREVER);
}

static void fd_closed(void *arg)
{
    struct fdends *e = arg;
    char b;
    e->r_closed = (int)chan_read(e->closed, &b, 1, NULL, CHAN_FOREVER);
}

/* A select whose fd case another operation already waits on returns -EBUSY after calling
 * current, without parking (chan_sched(3): io_prepare's check follows waiter_init). */
static int busy_fd;

static void *fd_wait_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)chan_fd_wait(busy_fd, POLLIN, NULL, chan_now() + 10000 * MS);
}

static void busy_select(void *arg)
{
    struct one_op *o = arg;
    struct chan_case cs[] = {chan_case_recv(chan_fd_chan(busy_fd, POLLIN), NULL)};
    o->rc = chan_select_until(cs, 1, chan_now() + 10000 * MS);
    o->parks = coro_self()->parks;
}

START_TEST(test_coro_fd_busy_calls_current_only)
{
    int p[2];
    mkpipe(p);
    busy_fd = p[0];
    pthread_t t = spawn(fd_wait_thread, NULL);
    ck_assert(fd_waiter_queued(p[0], POLLIN, sleep_ms));
    struct one_op o = {.rc = 1};
    coro_start(1);
    coro_go(busy_select, &o);
    coro_wait();
    ck_assert_int_eq(o.rc, -EBUSY);
    ck_assert_int_eq(o.parks, 0);
    ck_assert_int_eq(atomic_load(&coro_n_current), 1);
    ck_assert_int_eq(atomic_load(&coro_n_unpark), 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq((int)(intptr_t)join(t), POLLIN); /* the events ready */
    ck_assert_int_eq(chan_fd_close(p[0]), 0);
    ck_assert_int_eq(chan_fd_close(p[1]), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

START_TEST(test_coro_fd_wait_ends)
{
    int p[2], q[2];
    mkpipe(p);
    mkpipe(q);
    struct fdends e = {.rd = p[0], .closed = q[0], .c = mk(sizeof(int), 0), .cancel = mk(0, 0)};
    coro_start(_i + 1);
    coro_go(fd_select, &e);
    coro_go(fd_closed, &e);
    ck_assert(fd_waiter_queued(p[0], POLLIN, sleep_ms));
    ck_assert(fd_waiter_queued(q[0], POLLIN, sleep_ms));
    int v = 5;
    ck_assert_int_eq(chan_send(e.c, &v), 0);
    ck_assert_int_eq(chan_fd_close(q[0]), 0);
    int tries = 0; /* the unbuffered cancel takes a send once the read waits on it */
    while (chan_trysend(e.cancel, NULL) != 0 && tries++ < 10000)
        sleep_ms(1);
    coro_wait();
    ck_assert_int_eq(e.r_sel, 1);
    ck_assert_int_eq(e.v, 5);
    ck_assert_int_eq(e.r_timeout, -ETIMEDOUT);
    ck_assert_int_eq(e.r_cancel, -ECANCELED);
    ck_assert_int_eq(e.r_closed, -EBADF);
    ck_assert_int_eq(chan_fd_close(p[0]), 0);
    ck_assert_int_eq(chan_fd_close(p[1]), 0);
    ck_assert_int_eq(chan_fd_close(q[1]), 0);
    ck_assert_int_eq(chan_free(e.c), 0);
    ck_assert_int_eq(chan_free(e.cancel), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* A child of fork() has no poll thread (the parent's started it): its first wait starts one. */
static void read_one(void *arg)
{
    struct fdends *e = arg;
    char b = 0;
    e->r_closed = (int)chan_read(e->rd, &b, 1, NULL, CHAN_FOREVER);
    e->v = b;
}

static int child_reads_pipe(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return 2;
    struct fdends e = {.rd = p[0]};
    coro_start(1);
    coro_go(read_one, &e);
    if (!fd_waiter_queued(p[0], POLLIN, sleep_ms))
        return 3;
    if (write(p[1], "k", 1) != 1)
        return 4;
    coro_wait();
    return e.r_closed == 1 && e.v == 'k' && atomic_load(&coro_violations) == 0 ? 0 : 5;
}

START_TEST(test_coro_fd_after_fork)
{
    ck_assert_int_eq(child_reads_pipe(), 0); /* the parent's poll thread */
#ifdef CORO_TSAN
    return; /* TSan cannot start threads in the child of a multi-threaded process */
#endif
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(child_reads_pipe());
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

/* ---- Held wake-ups and fork() ---------------------------------------------------------------- */

/* A thread inside a held section (seam.h, wakeups_hold: where time/, io/ and sync/ complete
 * operations under their own lock) until told to leave it. */
struct section {
    sem_t in, out;
};

static void *hold_section(void *arg)
{
    struct section *s = arg;
    wakeups_hold();
    sem_post(&s->in);
    while (sem_wait(&s->out) != 0) {
    }
    wakeups_release();
    return NULL;
}

/* The child of a fork made while another thread was inside a held section: that section never
 * ends in the child, so it counts no longer there (else every scheduler wake-up in the child
 * looked at its thread's list for good); the forker's own section, open across the fork, goes
 * on in the child and ends there. */
START_TEST(test_held_sections_reset_at_fork)
{
    if (under_tsan())
        return; /* a fork of a multi-threaded process: kept out of TSan's way */
    struct section sec;
    ck_assert_int_eq(sem_init(&sec.in, 0, 0), 0);
    ck_assert_int_eq(sem_init(&sec.out, 0, 0), 0);
    pthread_t t = spawn(hold_section, &sec);
    while (sem_wait(&sec.in) != 0) {
    }
    wakeups_hold(); /* this thread's own, across the fork */
    ck_assert_uint_eq(wakeups_held_threads(), 2);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int bad = wakeups_held_threads() != 1;
        wakeups_release();
        _exit(bad | (wakeups_held_threads() != 0) << 1);
    }
    wakeups_release();
    sem_post(&sec.out);
    join(t);
    ck_assert_uint_eq(wakeups_held_threads(), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_msg(WEXITSTATUS(st) == 0, "child: %s",
                  WEXITSTATUS(st) & 1 ? "the other thread's section still counted"
                                      : "its own section did not end");
    sem_destroy(&sec.in);
    sem_destroy(&sec.out);
}
END_TEST

#ifdef CHAN_TRACE_BUILD
/* ---- Dumps name the coroutines (chan_trace_task_hook) ---------------------------------------- */

static uint64_t coro_task_id(void) { return (uint64_t)(uintptr_t)coro_self(); }

static struct coro *dumped; /* the coroutine blocked in recv_one */

static void recv_one(void *arg)
{
    dumped = coro_self();
    int v;
    ck_assert_int_eq(chan_recv(arg, &v), 0);
}

static char *report(int (*fn)(FILE *out))
{
    int n;
    char *text = text_of(fn, &n);
    ck_assert_int_ge(n, 1);
    return text;
}

static int leftovers(FILE *out) { return chan_leftovers(out, NULL); }

/* A coroutine blocked on a channel appears in chan_dump and chan_leftovers by the id the task
 * hook gives, on the thread it blocked on (which runs other coroutines too). */
START_TEST(test_hook_dump_names_task)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    chan_trace_task_hook(coro_task_id);
    chan_t *c = mk(sizeof(int), 0);
    coro_start(1);
    coro_go(recv_one, c);
    for (int i = 0; i < 2000 && hchan_waiting(c, CHAN_RECV) < 1; i++)
        sleep_ms(1);
    ck_assert_int_eq(hchan_waiting(c, CHAN_RECV), 1);
    char want[64];
    snprintf(want, sizeof want, "task %llu on thread", (unsigned long long)(uintptr_t)dumped);
    char *dump = report(chan_dump), *left = report(leftovers);
    ck_assert_msg(strstr(dump, want) != NULL, "no '%s' in the dump:\n%s", want, dump);
    ck_assert_msg(strstr(left, want) != NULL, "no '%s' in the leftovers:\n%s", want, left);
    free(dump);
    free(left);
    int v = 1;
    ck_assert_int_eq(chan_send(c, &v), 0);
    coro_wait();
    chan_trace_task_hook(NULL);
    ck_assert_int_eq(chan_free(c), 0);
    ASSERT_NO_VIOLATIONS();
}
END_TEST

/* chan_leak(3): a task of a scheduler other than libchan-mpg is not told from the thread that
 * runs it, and is never reported, even blocked for ever on a channel that only it holds; it is
 * a leftover all the same. Its channel is kept for the clean-up xored, a form the check does not
 * see. */
#define LEAK_KEY ((uintptr_t)0x5a5a5a5a5a5a5a5aull)
static _Atomic uintptr_t lone_chan;

static void recv_own(void *arg)
{
    (void)arg;
    chan_t *c = chan_make(sizeof(int), 0);
    atomic_store(&lone_chan, (uintptr_t)c ^ LEAK_KEY);
    int v;
    ck_assert_int_eq(chan_recv(c, &v), -EPIPE);
    ck_assert_int_eq(chan_free(c), 0);
}

START_TEST(test_hook_leak_check_never_reports_a_task)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    coro_start(1);
    coro_go(recv_own, NULL);
    int n = 0;
    for (int i = 0; i < 2000 && (n = chan_leftovers(NULL, NULL)) < 1; i++)
        sleep_ms(1);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(chan_leak_check(NULL, NULL), 0);
    chan_close((chan_t *)(atomic_load(&lone_chan) ^ LEAK_KEY));
    coro_wait();
    ASSERT_NO_VIOLATIONS();
}
END_TEST
#endif

static Suite *sched_hook_suite(void)
{
    Suite *s = suite_create("sched_hook");
    ADD_LOOP_TEST(s, test_coro_pingpong, 60, 2);
    ADD_LOOP_TEST(s, test_coro_deadlines_timers_close, 30, 2);
    ADD_LOOP_TEST(s, test_coro_select_with_threads, 60, 2);
    ADD_TEST(s, test_coro_lost_race, 30);
    ADD_LOOP_TEST(s, test_hook_early_timeout_is_spurious, 30, 2);
    ADD_TEST(s, test_hook_park_gives_up, 30);
    ADD_TEST(s, test_hook_give_up_loses_race, 30);
    ADD_LOOP_TEST(s, test_hook_unpark_calls_libchan, 30, 2);
    ADD_TEST(s, test_hook_park_completes_its_own_operation, 30);
    ADD_LOOP_TEST(s, test_hook_unpark_calls_the_waking_layer, 30, LAYER_N);
    ADD_LOOP_TEST(s, test_coro_fd_pipe, 60, 2);
    ADD_LOOP_TEST(s, test_coro_fd_wait_ends, 30, 2);
    ADD_TEST(s, test_coro_fd_busy_calls_current_only, 30);
    ADD_TEST(s, test_coro_fd_after_fork, 30);
    ADD_TEST(s, test_held_sections_reset_at_fork, 30);
#ifdef CHAN_TRACE_BUILD
    ADD_TEST(s, test_hook_dump_names_task, 30);
    ADD_TEST(s, test_hook_leak_check_never_reports_a_task, 30);
#endif
    return s;
}

int main(void) { return run_suite(sched_hook_suite()); }
