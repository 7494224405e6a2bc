/* SPDX-License-Identifier: MIT */
/*
 * test_sched.c - the pluggable scheduler hook (struct chan_sched, chan_sched_set).
 *
 * A small scheduler is plugged in on some threads: each "task" is a permit (0 or 1) guarded by
 * a pthread mutex and condition variable; park waits for the permit or the deadline, unpark
 * sets it. Around every channel operation a hooked thread runs, the test marks the task active
 * and afterwards poisons it, then checks what libchan did through the hook during that
 * operation against the hook's contract (chan.h, chan_sched(3)):
 *   - current and park only on the installing thread, only while an operation is running;
 *   - unpark only for a task whose operation has not returned (a poisoned task is a failure),
 *     never with a channel lock held, and exactly once per block that a waker completes:
 *     every park that returned 0 consumed one unpark, no permit is left over, an operation that
 *     timed out got no unpark;
 *   - park receives the operation's deadline (CHAN_FOREVER when it has none), and only after a
 *     park that timed out (the lost race) a second park with CHAN_FOREVER;
 *   - an operation that does not block makes no call at all; chan_sched_set(NULL) restores the
 *     pthread default.
 * Violations found on other threads are counted and the first one's text is kept; the test's
 * main thread asserts that there were none.
 */
#include "testutil.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ---- Violations, recorded from any thread ---------------------------------------------------- */

static atomic_long violations;
static atomic_int violation_claimed;
static char violation_text[256];

static void violate(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violate(const char *fmt, ...)
{
    atomic_fetch_add(&violations, 1);
    if (atomic_exchange(&violation_claimed, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(violation_text, sizeof violation_text, fmt, ap);
        va_end(ap);
    }
}

#define ASSERT_NO_VIOLATIONS()                                                                     \
    ck_assert_msg(count_of(&violations) == 0, "%ld hook contract violation(s); first: %s",         \
                  count_of(&violations), violation_text)

/* ---- The scheduler --------------------------------------------------------------------------- */

enum { TASK_LIVE = 0x11FE, TASK_DEAD = 0xDEAD };
enum { MAX_PARKS = 8 };

struct task {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t owner;  /* the thread that runs it (and installed the hook) */
    int sched_id;     /* which of the two schedulers (0: hook_a, 1: hook_b) runs it */
    atomic_int state; /* TASK_LIVE while one of its operations runs, TASK_DEAD otherwise */
    /* Under mu: */
    int permit;                                   /* 0 or 1 */
    int parks, parks_ok, parks_timedout, unparks; /* during the current operation */
    int64_t deadlines[MAX_PARKS];                 /* what park received, in order */
    int park_rc[MAX_PARKS];
};

/* Whole-test totals of the hook's calls, from every thread. */
static atomic_long n_current, n_park, n_park_ok, n_park_timedout, n_unpark;
/* Whole-test total of the operations that blocked and were completed by a waker (counted by
 * op_end, on the operation's own thread). */
static atomic_long n_completed_blocks;

static _Thread_local struct task *tl_task; /* what current() returns on this thread */
static struct task stray_task;             /* returned when current() is called out of place */

/* Channels whose lock unpark takes, through the white-box probe hchan_waiting(): if libchan
 * called unpark with one of those locks held, the probe would deadlock on it (the lock is not
 * recursive) and the test would fail by time-out. */
enum { MAX_WATCHED = 2 };
static chan_t *_Atomic watched[MAX_WATCHED];

static void watch(chan_t *a, chan_t *b)
{
    atomic_store(&watched[0], a);
    atomic_store(&watched[1], b);
}

/* A plain function, so that a failed assertion prints the counter's name, not a macro body. */
static long count_of(atomic_long *counter) { return atomic_load(counter); }

static void reset_counters(void)
{
    atomic_store(&n_current, 0);
    atomic_store(&n_park, 0);
    atomic_store(&n_park_ok, 0);
    atomic_store(&n_park_timedout, 0);
    atomic_store(&n_unpark, 0);
    atomic_store(&n_completed_blocks, 0);
}

static void task_init(struct task *t)
{
    memset(t, 0, sizeof *t);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->mu, NULL);
    t->owner = pthread_self();
    atomic_init(&t->state, TASK_DEAD);
}

static void task_destroy(struct task *t)
{
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

static void *h_current(int id)
{
    atomic_fetch_add(&n_current, 1);
    struct task *t = tl_task;
    if (t == NULL) {
        violate("current() called on a thread that did not install the hook");
        return &stray_task; /* never NULL */
    }
    if (t->sched_id != id)
        violate("current() of scheduler %d called for a task of scheduler %d", id, t->sched_id);
    if (!pthread_equal(t->owner, pthread_self()))
        violate("current() called on a thread that does not run the task");
    if (atomic_load(&t->state) != TASK_LIVE)
        violate("current() called outside an operation");
    return t;
}

static struct timespec ts_of(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    return ts;
}

static int h_park(int id, void *task, int64_t deadline)
{
    struct task *t = task;
    atomic_fetch_add(&n_park, 1);
    if (t == &stray_task) {
        violate("park() of the stray task");
        return -ETIMEDOUT;
    }
    if (t->sched_id != id)
        violate("park() of scheduler %d called for a task of scheduler %d", id, t->sched_id);
    if (!pthread_equal(t->owner, pthread_self()))
        violate("park() called on a thread that does not run the task");
    if (atomic_load(&t->state) != TASK_LIVE)
        violate("park() of a task whose operation has returned");
    pthread_mutex_lock(&t->mu);
    int i = t->parks++;
    if (i < MAX_PARKS)
        t->deadlines[i] = deadline;
    int rc = 0;
    while (!t->permit) {
        if (deadline == CHAN_FOREVER) {
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        int64_t now = chan_now();
        if (now >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        /* Sleep at most a second at a time: keeps the timespec sane for far deadlines. */
        struct timespec ts = ts_of(deadline - now > 1000 * MS ? now + 1000 * MS : deadline);
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    if (rc == 0) {
        t->permit = 0; /* consume the unpark */
        t->parks_ok++;
    } else {
        t->parks_timedout++;
    }
    if (i < MAX_PARKS)
        t->park_rc[i] = rc;
    pthread_mutex_unlock(&t->mu);
    atomic_fetch_add(rc == 0 ? &n_park_ok : &n_park_timedout, 1);
    return rc;
}

static void h_unpark(int id, void *task)
{
    struct task *t = task;
    atomic_fetch_add(&n_unpark, 1);
    if (t == &stray_task) {
        violate("unpark() of the stray task");
        return;
    }
    if (t->sched_id != id) /* a task is woken through the scheduler that parked it */
        violate("unpark() of scheduler %d called for a task of scheduler %d", id, t->sched_id);
    if (atomic_load(&t->state) != TASK_LIVE) {
        violate("unpark() of a task whose operation has returned (or never started)");
        return;
    }
    for (int i = 0; i < MAX_WATCHED; i++) {
        chan_t *c = atomic_load(&watched[i]);
        if (c)
            (void)hchan_waiting(c, CHAN_RECV); /* takes c's lock: hangs if unpark holds it */
    }
    pthread_mutex_lock(&t->mu);
    if (t->permit)
        violate("a second unpark() before park() consumed the first");
    t->permit = 1;
    t->unparks++;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Two schedulers with the same behaviour, told apart by which one a task belongs to. */
static void *h_current_a(void) { return h_current(0); }
static void *h_current_b(void) { return h_current(1); }
static int h_park_a(void *task, int64_t deadline) { return h_park(0, task, deadline); }
static int h_park_b(void *task, int64_t deadline) { return h_park(1, task, deadline); }
static void h_unpark_a(void *task) { h_unpark(0, task); }
static void h_unpark_b(void *task) { h_unpark(1, task); }

static const struct chan_sched hook_a = {h_current_a, h_park_a, h_unpark_a};
static const struct chan_sched hook_b = {h_current_b, h_park_b, h_unpark_b};

/* ---- Operations on a hooked thread ----------------------------------------------------------- */

/* What the hook saw during one operation. */
struct opstat {
    int parks, parks_ok, parks_timedout, unparks;
    int64_t deadlines[MAX_PARKS];
};

static void op_begin(struct task *t)
{
    pthread_mutex_lock(&t->mu);
    if (t->permit)
        violate("a permit was left over from an earlier operation");
    t->parks = t->parks_ok = t->parks_timedout = t->unparks = 0;
    pthread_mutex_unlock(&t->mu);
    tl_task = t;
    atomic_store(&t->state, TASK_LIVE);
}

/* Poisons the task and checks the hook's calls during the operation that just returned rc;
 * deadline is the operation's (CHAN_FOREVER when it has none). */
static struct opstat op_end(struct task *t, const char *what, int rc, int64_t deadline)
{
    atomic_store(&t->state, TASK_DEAD); /* from now on, no call may name t */
    pthread_mutex_lock(&t->mu);
    struct opstat st = {t->parks, t->parks_ok, t->parks_timedout, t->unparks, {0}};
    memcpy(st.deadlines, t->deadlines, sizeof st.deadlines);
    int park_rc[MAX_PARKS];
    memcpy(park_rc, t->park_rc, sizeof park_rc);
    int permit = t->permit;
    pthread_mutex_unlock(&t->mu);

    if (permit)
        violate("%s: an unpark came that no park consumed", what);
    if (st.unparks != st.parks_ok)
        violate("%s: %d unparks but %d parks returned 0", what, st.unparks, st.parks_ok);
    if (st.unparks > 1)
        violate("%s: %d unparks for one operation", what, st.unparks);
    if (rc == -ETIMEDOUT && st.unparks != 0)
        violate("%s: timed out but was unparked", what);
    if (rc != -ETIMEDOUT && st.parks > 0 && st.unparks != 1)
        violate("%s: blocked and completed (rc %d) with %d unparks", what, rc, st.unparks);
    if (st.parks > 2)
        violate("%s: parked %d times", what, st.parks);
    if (st.parks >= 1 && st.deadlines[0] != deadline)
        violate("%s: park got deadline %lld, the operation's is %lld", what,
                (long long)st.deadlines[0], (long long)deadline);
    if (st.parks == 2) {
        /* Only the lost race: a park that timed out, then one without deadline. */
        if (park_rc[0] != -ETIMEDOUT || st.deadlines[1] != CHAN_FOREVER)
            violate("%s: second park (deadline %lld) not after a time-out", what,
                    (long long)st.deadlines[1]);
        if (rc == -ETIMEDOUT) /* the waker completed it: 0, or -EPIPE from a close */
            violate("%s: lost the race to a waker yet returned -ETIMEDOUT", what);
    }
    if (st.parks == 1 && park_rc[0] == -ETIMEDOUT && rc != -ETIMEDOUT)
        violate("%s: park timed out, then returned %d without another park", what, rc);
    if (st.unparks == 1)
        atomic_fetch_add(&n_completed_blocks, 1);
    return st;
}

/* The hooked thread's operations. The task pointer is the one current() will return. */
static int t_send(struct task *t, chan_t *c, int64_t v, struct opstat *st)
{
    op_begin(t);
    int rc = chan_send(c, &v);
    struct opstat s = op_end(t, "chan_send", rc, CHAN_FOREVER);
    if (st)
        *st = s;
    return rc;
}

static int t_recv(struct task *t, chan_t *c, int64_t *v, struct opstat *st)
{
    op_begin(t);
    int rc = chan_recv(c, v);
    struct opstat s = op_end(t, "chan_recv", rc, CHAN_FOREVER);
    if (st)
        *st = s;
    return rc;
}

static int t_send_until(struct task *t, chan_t *c, int64_t v, int64_t d, struct opstat *st)
{
    op_begin(t);
    int rc = chan_send_until(c, &v, d);
    struct opstat s = op_end(t, "chan_send_until", rc, d);
    if (st)
        *st = s;
    return rc;
}

static int t_recv_until(struct task *t, chan_t *c, int64_t *v, int64_t d, struct opstat *st)
{
    op_begin(t);
    int rc = chan_recv_until(c, v, d);
    struct opstat s = op_end(t, "chan_recv_until", rc, d);
    if (st)
        *st = s;
    return rc;
}

/* Installs scheduler id (0: hook_a, 1: hook_b) on the calling thread, with task t. */
static void hook_thread_id(struct task *t, int id)
{
    task_init(t);
    t->sched_id = id;
    tl_task = t;
    chan_sched_set(id ? &hook_b : &hook_a);
}

static void hook_thread(struct task *t) { hook_thread_id(t, 0); }

/* ---- Plain-thread peers ---------------------------------------------------------------------- */

enum peer_kind { PEER_SEND, PEER_RECV, PEER_CLOSE };
enum peer_wait { WAIT_NONE, WAIT_FOR_SENDER, WAIT_FOR_RECEIVER };

struct peer {
    chan_t *c;
    enum peer_kind kind;
    enum peer_wait wait;   /* first wait until the other side is blocked on c */
    bool free_after_close; /* PEER_CLOSE: chan_free(c) as soon as chan_close returned */
    int64_t val;           /* sent, or received */
    int rc;
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    int ok = 1;
    if (p->wait == WAIT_FOR_SENDER)
        ok = blocked_senders_at_least(p->c, 1);
    else if (p->wait == WAIT_FOR_RECEIVER)
        ok = blocked_receivers_at_least(p->c, 1);
    if (!ok) {
        p->rc = -9999;
        return NULL;
    }
    switch (p->kind) {
    case PEER_SEND: p->rc = chan_send(p->c, &p->val); break;
    case PEER_RECV: p->rc = chan_recv(p->c, &p->val); break;
    case PEER_CLOSE:
        p->rc = chan_close(p->c);
        if (p->free_after_close && p->rc == 0)
            p->rc = chan_free(p->c);
        break;
    }
    return NULL;
}

static pthread_t peer_run(struct peer *p, chan_t *c, enum peer_kind kind, int64_t val,
                          enum peer_wait wait, bool free_after_close)
{
    *p = (struct peer){
        .c = c, .kind = kind, .wait = wait, .free_after_close = free_after_close, .val = val};
    return spawn(peer_main, p);
}

/* A plain thread that completes one operation on c once the hooked thread is blocked there. */
static pthread_t peer_start(struct peer *p, chan_t *c, enum peer_kind kind, int64_t val)
{
    return peer_run(p, c, kind, val, kind == PEER_RECV ? WAIT_FOR_SENDER : WAIT_FOR_RECEIVER,
                    false);
}

static void check_totals(void)
{
    ASSERT_NO_VIOLATIONS();
    /* Every park that returned 0 consumed an unpark, and every unpark was consumed by the block
     * it completed. */
    ck_assert_int_eq(count_of(&n_park_ok), count_of(&n_unpark));
    ck_assert_int_eq(count_of(&n_unpark), count_of(&n_completed_blocks));
}

/* ---- Tests ----------------------------------------------------------------------------------- */

START_TEST(test_hook_blocked_send_and_recv)
{
    /* The test's thread is the task; plain threads are its peers, on unbuffered and buffered
     * channels, both directions. Each operation blocks once and is unparked once. */
    reset_counters();
    struct task t;
    hook_thread(&t);
    for (size_t cap = 0; cap <= 2; cap++) {
        chan_t *c = chan_make(sizeof(int64_t), cap);
        watch(c, NULL);
        struct peer p;
        struct opstat st;
        int64_t v = 0;

        /* Receive, blocked on an empty channel. */
        pthread_t th = peer_start(&p, c, PEER_SEND, 1000 + (int64_t)cap);
        ck_assert_int_eq(t_recv(&t, c, &v, &st), 0);
        join(th);
        ck_assert_int_eq(p.rc, 0);
        ck_assert_int_eq(v, 1000 + (int64_t)cap);
        ck_assert_int_eq(st.parks, 1);
        ck_assert_int_eq(st.unparks, 1);
        ck_assert(st.deadlines[0] == CHAN_FOREVER);

        /* Send, blocked on a full (or unbuffered) channel. */
        for (size_t i = 0; i < cap; i++) {
            ck_assert_int_eq(t_send(&t, c, 50 + (int64_t)i, &st), 0);
            ck_assert_int_eq(st.parks, 0);
        }
        ck_assert_uint_eq(chan_len(c), cap);
        th = peer_start(&p, c, PEER_RECV, 0);
        ck_assert_int_eq(t_send(&t, c, 2000 + (int64_t)cap, &st), 0);
        join(th);
        ck_assert_int_eq(p.rc, 0);
        ck_assert_int_eq(p.val, cap ? 50 : 2000 + (int64_t)cap);
        ck_assert_int_eq(st.parks, 1);
        ck_assert_int_eq(st.unparks, 1);
        ck_assert(st.deadlines[0] == CHAN_FOREVER);
        /* The rest comes out in order. */
        for (size_t i = 1; i < cap; i++) {
            ck_assert_int_eq(t_recv(&t, c, &v, NULL), 0);
            ck_assert_int_eq(v, 50 + (int64_t)i);
        }
        if (cap) {
            ck_assert_int_eq(t_recv(&t, c, &v, NULL), 0);
            ck_assert_int_eq(v, 2000 + (int64_t)cap);
        }

        /* Close wakes a blocked receiving task. */
        th = peer_run(&p, c, PEER_CLOSE, 0, WAIT_FOR_RECEIVER, false);
        v = 12345;
        ck_assert_int_eq(t_recv(&t, c, &v, &st), -EPIPE);
        join(th);
        ck_assert_int_eq(p.rc, 0);
        ck_assert_int_eq(v, 0);
        ck_assert_int_eq(st.parks, 1);
        ck_assert_int_eq(st.unparks, 1);
        watch(NULL, NULL);
        ck_assert_int_eq(chan_free(c), 0);

        /* Close wakes a blocked sending task, and the closer frees the channel at once. */
        c = chan_make(sizeof(int64_t), cap);
        for (size_t i = 0; i < cap; i++)
            ck_assert_int_eq(t_send(&t, c, 1, NULL), 0);
        th = peer_run(&p, c, PEER_CLOSE, 0, WAIT_FOR_SENDER, true);
        ck_assert_int_eq(t_send(&t, c, 3, &st), -EPIPE);
        join(th);
        ck_assert_int_eq(p.rc, 0); /* chan_free right after chan_close returned 0 */
        ck_assert_int_eq(st.parks, 1);
        ck_assert_int_eq(st.unparks, 1);
    }
    check_totals();
    ck_assert_int_eq(count_of(&n_park_timedout), 0);
    ck_assert_int_eq(count_of(&n_unpark), 12); /* 4 blocks for each of 3 capacities */
    chan_sched_set(NULL);
    task_destroy(&t);
}
END_TEST

START_TEST(test_hook_not_called_when_ready)
{
    /* Operations that need not block make no call to the hook; a plain thread woken by the
     * task is woken through its own (default) parker, not the task's scheduler. */
    reset_counters();
    struct task t;
    hook_thread(&t);
    chan_t *b = chan_make(sizeof(int64_t), 2), *u = chan_make(sizeof(int64_t), 0);
    int64_t v = 0;
    ck_assert_int_eq(t_send(&t, b, 1, NULL), 0);
    ck_assert_int_eq(t_send_until(&t, b, 2, chan_now() + 60000 * MS, NULL), 0);
    ck_assert_int_eq(t_recv(&t, b, &v, NULL), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(t_recv_until(&t, b, &v, chan_now() + 60000 * MS, NULL), 0);
    ck_assert_int_eq(v, 2);
    op_begin(&t);
    ck_assert_int_eq(chan_tryrecv(b, &v), -EAGAIN);
    ck_assert_int_eq(chan_trysend(u, &v), -EAGAIN);
    ck_assert_int_eq(chan_tryrecv(NULL, &v), -EAGAIN);
    ck_assert_int_eq(chan_trysend(NULL, &v), -EAGAIN);
    op_end(&t, "try", -EAGAIN, CHAN_FOREVER);
    /* A past deadline: the try form. */
    ck_assert_int_eq(t_recv_until(&t, u, &v, chan_now() - 1, NULL), -ETIMEDOUT);
    ck_assert_int_eq(t_send_until(&t, u, 3, chan_now() - 1, NULL), -ETIMEDOUT);
    ck_assert_int_eq(t_recv_until(&t, NULL, &v, 0, NULL), -ETIMEDOUT);
    ck_assert_int_eq(t_send_until(&t, NULL, 4, chan_now() - 1, NULL), -ETIMEDOUT);

    /* A plain peer already blocked: the task's operation completes at once. */
    struct peer p;
    struct opstat st;
    pthread_t th = peer_run(&p, u, PEER_SEND, 77, WAIT_NONE, false);
    ck_assert(blocked_senders_at_least(u, 1));
    ck_assert_int_eq(t_recv(&t, u, &v, &st), 0);
    ck_assert_int_eq(v, 77);
    join(th);
    ck_assert_int_eq(p.rc, 0);
    th = peer_run(&p, u, PEER_RECV, 0, WAIT_NONE, false);
    ck_assert(blocked_receivers_at_least(u, 1));
    ck_assert_int_eq(t_send(&t, u, 78, &st), 0);
    join(th);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_int_eq(p.val, 78);
    /* Closed channels are ready too. */
    ck_assert_int_eq(chan_close(u), 0);
    ck_assert_int_eq(t_recv(&t, u, &v, NULL), -EPIPE);
    ck_assert_int_eq(t_send(&t, u, 5, NULL), -EPIPE);

    ASSERT_NO_VIOLATIONS();
    ck_assert_int_eq(count_of(&n_current), 0);
    ck_assert_int_eq(count_of(&n_park), 0);
    ck_assert_int_eq(count_of(&n_unpark), 0);
    chan_sched_set(NULL);
    ck_assert_int_eq(chan_free(b), 0);
    ck_assert_int_eq(chan_free(u), 0);
    task_destroy(&t);
}
END_TEST

START_TEST(test_hook_deadlines)
{
    /* park receives the operation's deadline, CHAN_FOREVER when it has none. */
    reset_counters();
    struct task t;
    hook_thread(&t);
    chan_t *u = chan_make(sizeof(int64_t), 0), *b = chan_make(sizeof(int64_t), 1);
    watch(u, b);
    struct opstat st;
    int64_t v = 0;

    /* Time-outs: park(deadline) returned -ETIMEDOUT, no unpark, nothing left queued. */
    int64_t d = chan_now() + 30 * MS;
    ck_assert_int_eq(t_recv_until(&t, u, &v, d, &st), -ETIMEDOUT);
    ck_assert(chan_now() >= d);
    ck_assert_int_eq(st.parks, 1);
    ck_assert(st.deadlines[0] == d);
    ck_assert_int_eq(st.unparks, 0);
    d = chan_now() + 30 * MS;
    ck_assert_int_eq(t_send_until(&t, u, 1, d, &st), -ETIMEDOUT);
    ck_assert(chan_now() >= d);
    ck_assert_int_eq(st.parks, 1);
    ck_assert(st.deadlines[0] == d);
    ck_assert_int_eq(t_send(&t, b, 2, NULL), 0);
    d = chan_now() + 20 * MS;
    ck_assert_int_eq(t_send_until(&t, b, 3, d, &st), -ETIMEDOUT); /* full */
    ck_assert(st.deadlines[0] == d);
    ck_assert_int_eq(t_recv(&t, b, &v, NULL), 0);
    ck_assert_int_eq(v, 2);
    d = chan_now() + 20 * MS;
    ck_assert_int_eq(t_recv_until(&t, NULL, &v, d, &st), -ETIMEDOUT); /* nil channel */
    ck_assert(chan_now() >= d);
    ck_assert(st.parks >= 1 && st.deadlines[0] == d);
    ck_assert_uint_eq(hchan_waiting(u, CHAN_SEND) + hchan_waiting(u, CHAN_RECV), 0);
    ck_assert_uint_eq(hchan_waiting(b, CHAN_SEND) + hchan_waiting(b, CHAN_RECV), 0);

    /* Completed by a peer before the deadline: park got the deadline and returned 0. */
    const int64_t ds[] = {chan_now() + 60000 * MS, INT64_MAX - 1, CHAN_FOREVER};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        struct peer p;
        pthread_t th = peer_start(&p, u, PEER_SEND, 40 + (int64_t)i);
        ck_assert_int_eq(t_recv_until(&t, u, &v, ds[i], &st), 0);
        join(th);
        ck_assert_int_eq(p.rc, 0);
        ck_assert_int_eq(v, 40 + (int64_t)i);
        ck_assert_int_eq(st.parks, 1);
        ck_assert(st.deadlines[0] == ds[i]);
        ck_assert_int_eq(st.unparks, 1);

        th = peer_start(&p, u, PEER_RECV, 0);
        ck_assert_int_eq(t_send_until(&t, u, 50 + (int64_t)i, ds[i], &st), 0);
        join(th);
        ck_assert_int_eq(p.rc, 0);
        ck_assert_int_eq(p.val, 50 + (int64_t)i);
        ck_assert_int_eq(st.parks, 1);
        ck_assert(st.deadlines[0] == ds[i]);
    }
    /* A plain blocking receive: CHAN_FOREVER. */
    struct peer p;
    pthread_t th = peer_start(&p, u, PEER_SEND, 9);
    ck_assert_int_eq(t_recv(&t, u, &v, &st), 0);
    join(th);
    ck_assert(st.deadlines[0] == CHAN_FOREVER);

    check_totals();
    watch(NULL, NULL);
    chan_sched_set(NULL);
    ck_assert_int_eq(chan_free(u), 0);
    ck_assert_int_eq(chan_free(b), 0);
    task_destroy(&t);
}
END_TEST

START_TEST(test_hook_set_null_restores_default)
{
    reset_counters();
    struct task t;
    hook_thread(&t);
    chan_t *c = chan_make(sizeof(int64_t), 0);
    struct peer p;
    int64_t v = 0;
    pthread_t th = peer_start(&p, c, PEER_SEND, 1);
    ck_assert_int_eq(t_recv(&t, c, &v, NULL), 0);
    join(th);
    ck_assert_int_eq(count_of(&n_park), 1);
    long cur = atomic_load(&n_current);
    ck_assert_int_ge(cur, 1);

    /* Default parker again: a blocking receive, a blocking send and a time-out make no call. */
    chan_sched_set(NULL);
    tl_task = NULL; /* a call to current() now would be reported as a violation */
    th = peer_start(&p, c, PEER_SEND, 2);
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 2);
    join(th);
    th = peer_start(&p, c, PEER_RECV, 0);
    v = 3;
    ck_assert_int_eq(chan_send(c, &v), 0);
    join(th);
    ck_assert_int_eq(p.val, 3);
    ck_assert_int_eq(chan_recv_until(c, &v, chan_now() + 10 * MS), -ETIMEDOUT);
    ck_assert_int_eq(count_of(&n_current), cur);
    ck_assert_int_eq(count_of(&n_park), 1);
    ck_assert_int_eq(count_of(&n_unpark), 1);

    /* And installed again: used again. */
    tl_task = &t;
    chan_sched_set(&hook_a);
    th = peer_start(&p, c, PEER_SEND, 4);
    ck_assert_int_eq(t_recv(&t, c, &v, NULL), 0);
    ck_assert_int_eq(v, 4);
    join(th);
    ck_assert_int_eq(count_of(&n_park), 2);
    ck_assert_int_eq(count_of(&n_unpark), 2);
    check_totals();
    chan_sched_set(NULL);
    ck_assert_int_eq(chan_free(c), 0);
    task_destroy(&t);
}
END_TEST

/* ---- The time-out race ----------------------------------------------------------------------- */

/* A ring of tasks, one per operation: a task stays poisoned until its slot comes round again,
 * so an unpark that comes after its operation returned is caught. */
enum { RING = 256 };

/* The ring of a race test, its first task the thread's, and the hook installed (the counters
 * reset); ring_end takes both away. */
static struct task *ring_begin(void)
{
    reset_counters();
    struct task *ring = calloc(RING, sizeof *ring);
    ck_assert_ptr_nonnull(ring);
    for (int i = 0; i < RING; i++)
        task_init(&ring[i]);
    tl_task = &ring[0];
    chan_sched_set(&hook_a);
    return ring;
}

static void ring_end(struct task *ring)
{
    chan_sched_set(NULL);
    for (int i = 0; i < RING; i++)
        task_destroy(&ring[i]);
    free(ring);
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void busy_wait_ns(int64_t ns)
{
    int64_t end = chan_now() + ns;
    while (chan_now() < end) {
    }
}

struct racer {
    chan_t *c;
    int n;
    uint32_t seed;
    int bad; /* a failed operation or a value out of order */
};

/* The plain side: sends (or receives) 0..n-1 in order, with jitter so that it arrives around
 * the task's deadlines. */
static void *plain_sender_main(void *arg)
{
    struct racer *r = arg;
    for (int64_t i = 0; i < r->n; i++) {
        busy_wait_ns(xorshift(&r->seed) % 150000);
        if (chan_send(r->c, &i) != 0)
            r->bad++;
    }
    return NULL;
}

static void *plain_receiver_main(void *arg)
{
    struct racer *r = arg;
    for (int64_t i = 0; i < r->n; i++) {
        busy_wait_ns(xorshift(&r->seed) % 150000);
        int64_t v = -1;
        if (chan_recv(r->c, &v) != 0 || v != i)
            r->bad++;
    }
    return NULL;
}

START_TEST(test_hook_timeout_race)
{
    /* Short deadlines on the task against a plain peer arriving at random times: an operation
     * either times out (no unpark, nothing moved) or completes (one unpark), including the
     * case where it timed out but lost the race to a waker (a second park, CHAN_FOREVER).
     * Values are neither lost nor duplicated. */
    enum { N = 1500 };
    struct task *ring = ring_begin();
    chan_t *c = chan_make(sizeof(int64_t), 0);
    watch(c, NULL);
    uint32_t seed = 0x9e3779b9u;
    long ops = 0, timeouts = 0, lost_races = 0, timed_out_parks = 0;

    /* The task receives. */
    struct racer r = {.c = c, .n = N, .seed = 12345};
    pthread_t th = spawn(plain_sender_main, &r);
    for (int64_t want = 0; want < N;) {
        struct task *t = &ring[ops++ % RING];
        struct opstat st;
        int64_t v = -1;
        int64_t d = chan_now() + 5000 + xorshift(&seed) % 150000;
        int rc = t_recv_until(t, c, &v, d, &st);
        if (rc == 0) {
            ck_assert_msg(v == want, "received %lld, expected %lld", (long long)v, (long long)want);
            want++;
        } else {
            ck_assert_int_eq(rc, -ETIMEDOUT);
            ck_assert_int_eq(v, -1);
            timeouts++;
        }
        lost_races += st.parks == 2;
        timed_out_parks += st.parks_timedout;
    }
    join(th);
    ck_assert_int_eq(r.bad, 0);

    /* The task sends; a value that timed out is sent again. */
    r = (struct racer){.c = c, .n = N, .seed = 54321};
    th = spawn(plain_receiver_main, &r);
    for (int64_t next = 0; next < N;) {
        struct task *t = &ring[ops++ % RING];
        struct opstat st;
        int64_t d = chan_now() + 5000 + xorshift(&seed) % 150000;
        int rc = t_send_until(t, c, next, d, &st);
        if (rc == 0) {
            next++;
        } else {
            ck_assert_int_eq(rc, -ETIMEDOUT);
            timeouts++;
        }
        lost_races += st.parks == 2;
        timed_out_parks += st.parks_timedout;
    }
    join(th);
    ck_assert_int_eq(r.bad, 0);

    check_totals();
    ck_assert_int_eq(count_of(&n_park_timedout), timed_out_parks);
    ck_assert_int_le(lost_races, timed_out_parks);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND) + hchan_waiting(c, CHAN_RECV), 0);
    if (getenv("CHAN_TEST_VERBOSE"))
        fprintf(stderr, "timeout race: %ld ops, %ld time-outs, %ld lost races\n", ops, timeouts,
                lost_races);
    watch(NULL, NULL);
    ring_end(ring);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

struct closer {
    chan_t *c;
    uint32_t seed;
    int rc;
};

static void *closer_main(void *arg)
{
    struct closer *k = arg;
    busy_wait_ns(xorshift(&k->seed) % 100000);
    k->rc = chan_close(k->c);
    return NULL;
}

START_TEST(test_hook_close_races_timeout)
{
    /* A close that comes around the task's deadline: the operation times out (no unpark) or is
     * completed by the close (-EPIPE, one unpark, perhaps after a lost race); either way no
     * call names the task after it returned, and the channel is free once both are done. */
    enum { ROUNDS = 300 };
    struct task *ring = ring_begin();
    uint32_t seed = 0x2545f491u;
    long ops = 0, epipe_after_block = 0;
    for (int round = 0; round < ROUNDS; round++) {
        chan_t *c = chan_make(sizeof(int64_t), round % 2);
        watch(c, NULL);
        struct closer k = {.c = c, .seed = seed + (uint32_t)round};
        pthread_t th = spawn(closer_main, &k);
        int rc;
        do {
            struct task *t = &ring[ops++ % RING];
            struct opstat st;
            int64_t v = -1;
            rc = t_recv_until(t, c, &v, chan_now() + xorshift(&seed) % 100000, &st);
            ck_assert_msg(rc == -ETIMEDOUT || rc == -EPIPE, "round %d: rc %d", round, rc);
            if (rc == -EPIPE) {
                ck_assert_int_eq(v, 0);
                epipe_after_block += st.parks > 0;
            } else {
                ck_assert_int_eq(v, -1);
            }
        } while (rc != -EPIPE);
        join(th);
        ck_assert_int_eq(k.rc, 0);
        watch(NULL, NULL);
        ck_assert_int_eq(chan_free(c), 0);
    }
    check_totals();
    if (getenv("CHAN_TEST_VERBOSE"))
        fprintf(stderr, "close race: %ld ops, %ld woken by the close\n", ops, epipe_after_block);
    ring_end(ring);
}
END_TEST

/* ---- Hooked threads and plain threads exchanging values -------------------------------------- */

struct exchange {
    chan_t *req, *rep;
    int rounds;
};

struct worker {
    struct exchange *X;
    int id;
    bool hooked;
    int sched_id;
    uint64_t sent_sum, got_sum;
    long sent, got;
    int bad;
};

/* Sends rounds requests, each followed by a receive of some reply. */
static void *client_main(void *arg)
{
    struct worker *w = arg;
    struct task t;
    if (w->hooked)
        hook_thread_id(&t, w->sched_id);
    for (int i = 0; i < w->X->rounds; i++) {
        int64_t v = ((int64_t)w->id << 32) | i, r = 0;
        int rc = w->hooked ? t_send(&t, w->X->req, v, NULL) : chan_send(w->X->req, &v);
        if (rc != 0) {
            w->bad++;
            break;
        }
        w->sent++;
        w->sent_sum += (uint64_t)v;
        rc = w->hooked ? t_recv(&t, w->X->rep, &r, NULL) : chan_recv(w->X->rep, &r);
        if (rc != 0) {
            w->bad++;
            break;
        }
        w->got++;
        w->got_sum += (uint64_t)r;
    }
    if (w->hooked) {
        chan_sched_set(NULL);
        task_destroy(&t);
    }
    return NULL;
}

/* Answers each request v with v + 1 until req is closed. */
static void *server_main(void *arg)
{
    struct worker *w = arg;
    struct task t;
    if (w->hooked)
        hook_thread_id(&t, w->sched_id);
    int64_t v;
    int rc;
    while ((rc = w->hooked ? t_recv(&t, w->X->req, &v, NULL) : chan_recv(w->X->req, &v)) == 0) {
        w->got++;
        w->got_sum += (uint64_t)v;
        int64_t r = v + 1;
        if ((w->hooked ? t_send(&t, w->X->rep, r, NULL) : chan_send(w->X->rep, &r)) != 0) {
            w->bad++;
            break;
        }
        w->sent++;
        w->sent_sum += (uint64_t)r;
    }
    if (rc != -EPIPE)
        w->bad++;
    if (w->hooked) {
        chan_sched_set(NULL);
        task_destroy(&t);
    }
    return NULL;
}

static void run_exchange(size_t cap, bool hooked_clients, int rounds)
{
    enum { NC = 2, NS = 2 };
    struct exchange X = {chan_make(sizeof(int64_t), cap), chan_make(sizeof(int64_t), cap), rounds};
    watch(X.req, X.rep);
    struct worker cl[NC], sv[NS];
    pthread_t tc[NC], ts[NS];
    for (int i = 0; i < NS; i++) {
        sv[i] = (struct worker){.X = &X, .id = i, .hooked = !hooked_clients, .sched_id = i % 2};
        ts[i] = spawn(server_main, &sv[i]);
    }
    for (int i = 0; i < NC; i++) {
        cl[i] = (struct worker){.X = &X, .id = i, .hooked = hooked_clients, .sched_id = i % 2};
        tc[i] = spawn(client_main, &cl[i]);
    }
    for (int i = 0; i < NC; i++)
        join(tc[i]);
    ck_assert_int_eq(chan_close(X.req), 0);
    for (int i = 0; i < NS; i++)
        join(ts[i]);
    uint64_t req_sent = 0, req_got = 0, rep_sent = 0, rep_got = 0;
    long n_req = 0, n_req_got = 0, n_rep = 0, n_rep_got = 0;
    for (int i = 0; i < NC; i++) {
        ck_assert_msg(cl[i].bad == 0, "cap %zu: client %d failed", cap, i);
        req_sent += cl[i].sent_sum;
        rep_got += cl[i].got_sum;
        n_req += cl[i].sent;
        n_rep_got += cl[i].got;
    }
    for (int i = 0; i < NS; i++) {
        ck_assert_msg(sv[i].bad == 0, "cap %zu: server %d failed", cap, i);
        req_got += sv[i].got_sum;
        rep_sent += sv[i].sent_sum;
        n_req_got += sv[i].got;
        n_rep += sv[i].sent;
    }
    ck_assert_int_eq(n_req, (long)NC * rounds);
    ck_assert_int_eq(n_req_got, n_req);
    ck_assert_int_eq(n_rep, n_req);
    ck_assert_int_eq(n_rep_got, n_rep);
    ck_assert(req_got == req_sent);
    ck_assert(rep_sent == req_sent + (uint64_t)n_req);
    ck_assert(rep_got == rep_sent);
    watch(NULL, NULL);
    ck_assert_int_eq(chan_free(X.req), 0);
    ck_assert_int_eq(chan_free(X.rep), 0);
}

START_TEST(test_hook_exchange_with_plain_threads)
{
    /* Two hooked threads (one per scheduler) and two plain threads, as clients and servers in
     * turn, on unbuffered and buffered channels. */
    reset_counters();
    int rounds = under_sanitizer() ? 1500 : 3000;
    run_exchange(0, true, rounds);
    run_exchange(0, false, rounds);
    run_exchange(4, true, rounds);
    run_exchange(4, false, rounds);
    check_totals();
    ck_assert_int_eq(count_of(&n_park_timedout), 0);
}
END_TEST

START_TEST(test_hook_two_schedulers_ping_pong)
{
    /* Tasks of two different schedulers wake each other: each is unparked through its own
     * scheduler (h_unpark checks the task's scheduler id). */
    enum { ROUNDS = 2000 };
    reset_counters();
    struct exchange X = {chan_make(sizeof(int64_t), 0), chan_make(sizeof(int64_t), 0), ROUNDS};
    watch(X.req, X.rep);
    struct worker cl = {.X = &X, .id = 0, .hooked = true, .sched_id = 0};
    struct worker sv = {.X = &X, .id = 1, .hooked = true, .sched_id = 1};
    pthread_t ts = spawn(server_main, &sv), tc = spawn(client_main, &cl);
    join(tc);
    ck_assert_int_eq(chan_close(X.req), 0);
    join(ts);
    ck_assert_int_eq(cl.bad, 0);
    ck_assert_int_eq(sv.bad, 0);
    ck_assert_int_eq(cl.got, ROUNDS);
    ck_assert_int_eq(sv.got, ROUNDS);
    ck_assert(cl.got_sum == cl.sent_sum + ROUNDS);
    check_totals();
    /* On an unbuffered channel every transfer completes exactly one blocked operation, here
     * always a task's: one unpark per transfer, plus perhaps the server's last receive, woken
     * by the close. */
    ck_assert_int_ge(count_of(&n_unpark), 2 * ROUNDS);
    ck_assert_int_le(count_of(&n_unpark), 2 * ROUNDS + 1);
    watch(NULL, NULL);
    ck_assert_int_eq(chan_free(X.req), 0);
    ck_assert_int_eq(chan_free(X.rep), 0);
}
END_TEST

static Suite *sched_suite(void)
{
    Suite *s = suite_create("sched");
    ADD_TEST(s, test_hook_blocked_send_and_recv, 20);
    ADD_TEST(s, test_hook_not_called_when_ready, 20);
    ADD_TEST(s, test_hook_deadlines, 20);
    ADD_TEST(s, test_hook_set_null_restores_default, 20);
    ADD_TEST(s, test_hook_timeout_race, 60);
    ADD_TEST(s, test_hook_close_races_timeout, 60);
    ADD_TEST(s, test_hook_exchange_with_plain_threads, 60);
    ADD_TEST(s, test_hook_two_schedulers_ping_pong, 60);
    return s;
}

int main(void) { return run_suite(sched_suite()); }
