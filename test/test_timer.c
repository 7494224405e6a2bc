/* SPDX-License-Identifier: MIT */
/* test_timer.c - timer channels, tickers and func timers (chan_time.h). Bounds are loose on
 * purpose: never early, at most late_bound() late, no speed assertions. */
#include "testutil.h"

#include <dirent.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_time.h"
#include "timing.h"

/* Under ASan, LeakSanitizer checks each fork-mode child as it exits; asking it at the end of
 * each test as well makes a leak fail that test, named, at its end (a no-op in other builds). */
/* ---- Helpers ------------------------------------------------------------------------------- */

/* Threads of this process now (/proc/self/task). */
static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Receives one value from a timer channel and checks it came no earlier than deadline and at
 * most late_bound() after it; returns the value. */
static int64_t recv_on_time(chan_t *c, int64_t deadline)
{
    int64_t v = -1;
    ck_assert_int_eq(chan_recv(c, &v), 0);
    int64_t got = chan_now();
    ck_assert_int_ge(v, deadline);   /* fired never early */
    ck_assert_int_ge(got, deadline); /* received never early */
    /* Fired at most late_bound() late (plus any stall of the whole process). How soon the
     * receiver then runs is the scheduler's business, not the timer's: not asserted here. */
    ck_assert_int_le(v - deadline, late_allowed());
    return v;
}

/* ---- Timers -------------------------------------------------------------------------------- */

START_TEST(timer_fires_on_time)
{
    witness_mark();
    static const int64_t ds[] = {0, 1 * MS, 10 * MS, 50 * MS, 120 * MS};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        int64_t start = chan_now();
        chan_timer_t *t = chan_timer_make(ds[i]);
        ck_assert_ptr_nonnull(t);
        chan_t *c = chan_timer_chan(t);
        ck_assert_ptr_nonnull(c);
        recv_on_time(c, start + ds[i]);
        /* Once: nothing more comes. */
        ck_assert_int_eq(chan_recv_until(c, NULL, chan_now() + 30 * MS), -ETIMEDOUT);
        ck_assert_int_eq(chan_timer_stop(t), 0); /* fired and received */
        ck_assert_int_eq(chan_timer_free(t), 0);
    }
    assert_no_leaks();
}
END_TEST

START_TEST(timer_make_until)
{
    witness_mark();
    int64_t deadline = chan_now() + 40 * MS;
    chan_timer_t *t = chan_timer_make_until(deadline);
    ck_assert_ptr_nonnull(t);
    recv_on_time(chan_timer_chan(t), deadline);
    ck_assert_int_eq(chan_timer_free(t), 0);

    /* A deadline in the past fires at once; CHAN_FOREVER never. */
    t = chan_timer_make_until(chan_now() - 1000 * MS);
    ck_assert_int_eq(chan_recv_until(chan_timer_chan(t), NULL, chan_now() + 2000 * MS), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    t = chan_timer_make_until(CHAN_FOREVER);
    ck_assert_int_eq(chan_recv_until(chan_timer_chan(t), NULL, chan_now() + 50 * MS), -ETIMEDOUT);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(timer_in_select)
{
    witness_mark();
    chan_t *data = chan_make(sizeof(int), 0);
    int64_t start = chan_now();
    chan_timer_t *t = chan_timer_make(30 * MS);
    int v = 0;
    int64_t when = 0;
    struct chan_case cs[2] = {{.chan = data, .elem = &v, .dir = CHAN_RECV},
                              {.chan = chan_timer_chan(t), .elem = &when, .dir = CHAN_RECV}};
    ck_assert_int_eq(chan_select(cs, 2), 1); /* nobody sends on data: the time-out wins */
    ck_assert(cs[1].ok);
    ck_assert_int_ge(when, start + 30 * MS);
    ck_assert_int_le(when - (start + 30 * MS), late_allowed());
    ck_assert_int_eq(chan_timer_free(t), 0);
    ck_assert_int_eq(chan_free(data), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(timer_stop_before_fire)
{
    chan_timer_t *t = chan_timer_make(50 * MS);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    ck_assert_int_eq(chan_timer_stop(t), 0); /* stopped already */
    ck_assert_int_eq(chan_recv_until(chan_timer_chan(t), NULL, chan_now() + 150 * MS), -ETIMEDOUT);
    ck_assert_uint_eq(chan_len(chan_timer_chan(t)), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

/* Go 1.23: a value sent and not yet received when stop is called is discarded, and stop
 * reports that it stopped the timer. */
START_TEST(timer_stop_after_fire_discards)
{
    chan_timer_t *t = chan_timer_make(1 * MS);
    chan_t *c = chan_timer_chan(t);
    for (int i = 0; i < 10000 && chan_len(c) == 0; i++)
        sleep_ms(1);
    ck_assert_uint_eq(chan_len(c), 1);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    ck_assert_int_eq(chan_tryrecv(c, NULL), -EAGAIN);
    ck_assert_int_eq(chan_timer_stop(t), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(timer_reset)
{
    witness_mark();
    /* A pending timer, moved earlier. */
    chan_timer_t *t = chan_timer_make(3600 * 1000 * MS);
    int64_t start = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 30 * MS), 1);
    recv_on_time(chan_timer_chan(t), start + 30 * MS);

    /* A fired and received timer: reset reports 0 and it fires again. */
    start = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 20 * MS), 0);
    recv_on_time(chan_timer_chan(t), start + 20 * MS);

    /* A fired, unreceived timer: the old value is discarded; the new one comes on time. */
    ck_assert_int_eq(chan_timer_reset(t, 0), 0);
    for (int i = 0; i < 10000 && chan_len(chan_timer_chan(t)) == 0; i++)
        sleep_ms(1);
    start = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 40 * MS), 1);
    ck_assert_int_eq(chan_tryrecv(chan_timer_chan(t), NULL), -EAGAIN);
    recv_on_time(chan_timer_chan(t), start + 40 * MS);

    /* A stopped timer, restarted. */
    ck_assert_int_eq(chan_timer_reset(t, 3600 * 1000 * MS), 0);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    start = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 10 * MS), 0);
    recv_on_time(chan_timer_chan(t), start + 10 * MS);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

/* The Go 1.23 guarantee, raced: whatever the timer thread is doing, once reset (or stop)
 * returns, the channel holds nothing from before. */
START_TEST(timer_no_stale_value_after_reset_or_stop)
{
    chan_timer_t *t = chan_timer_make(0);
    chan_t *c = chan_timer_chan(t);
    for (int i = 0; i < 300; i++) {
        sleep_ns((i % 7) * 100000); /* 0 to 0.6 ms: before, during and after the firing */
        int64_t before = chan_now();
        if (i % 2)
            ck_assert_int_ge(chan_timer_reset(t, 3600 * 1000 * MS), 0);
        else
            ck_assert_int_ge(chan_timer_stop(t), 0);
        int64_t v;
        int r = chan_tryrecv(c, &v);
        ck_assert_msg(r == -EAGAIN, "stale value %lld after %s (reset at %lld)", (long long)v,
                      i % 2 ? "reset" : "stop", (long long)before);
        ck_assert_int_ge(chan_timer_reset(t, (i % 3) * 200000), 0); /* 0 to 0.4 ms */
    }
    ck_assert_int_ge(chan_timer_stop(t), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

struct waiter_arg {
    chan_t *c;
    int r;
    int64_t v;
};

static void *recv_thread(void *p)
{
    struct waiter_arg *a = p;
    a->r = chan_recv(a->c, &a->v);
    return NULL;
}

/* A receiver blocked on a timer channel gets the value; a stopped timer's channel stays valid
 * while a thread waits on it; free refuses while a receiver is blocked. */
START_TEST(timer_blocked_receiver_and_free)
{
    witness_mark();
    int64_t start = chan_now();
    chan_timer_t *t = chan_timer_make(40 * MS);
    struct waiter_arg a = {.c = chan_timer_chan(t)};
    pthread_t th = spawn(recv_thread, &a);
    join(th);
    ck_assert_int_eq(a.r, 0);
    ck_assert_int_ge(a.v, start + 40 * MS);
    ck_assert_int_le(a.v - (start + 40 * MS), late_allowed());

    /* Stopped, with a receiver blocked on it. */
    ck_assert_int_eq(chan_timer_reset(t, 3600 * 1000 * MS), 0);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    a.r = 1;
    th = spawn(recv_thread, &a);
    ck_assert(blocked_receivers_at_least(a.c, 1));
    ck_assert_int_eq(chan_timer_free(t), -EBUSY); /* stopped, not freed */
    start = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 10 * MS), 0);
    join(th);
    ck_assert_int_eq(a.r, 0);
    ck_assert_int_ge(a.v, start + 10 * MS);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(timer_bad_arguments)
{
    ck_assert_ptr_null(chan_timer_chan(NULL));
    ck_assert_int_eq(chan_timer_stop(NULL), -EINVAL);
    ck_assert_int_eq(chan_timer_reset(NULL, 1), -EINVAL);
    ck_assert_int_eq(chan_timer_free(NULL), 0);
    errno = 0;
    ck_assert_ptr_null(chan_timer_make_func(1, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(chan_ticker_make(0));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(chan_ticker_make(-5));
    ck_assert_ptr_null(chan_ticker_chan(NULL));
    ck_assert_int_eq(chan_ticker_stop(NULL), -EINVAL);
    ck_assert_int_eq(chan_ticker_reset(NULL, 1), -EINVAL);
    ck_assert_int_eq(chan_ticker_free(NULL), 0);
    chan_ticker_t *k = chan_ticker_make(3600 * 1000 * MS);
    ck_assert_int_eq(chan_ticker_reset(k, 0), -EINVAL);
    ck_assert_int_eq(chan_ticker_stop(k), 1); /* still running: the bad reset changed nothing */
    ck_assert_int_eq(chan_ticker_free(k), 0);
    assert_no_leaks();
}
END_TEST

/* Allocation failures are reported and leak nothing (ASan's leak checker watches). */
extern void *(*chan_malloc_hook)(size_t size);
static void *fail_alloc(size_t size)
{
    (void)size;
    return NULL;
}

START_TEST(timer_enomem)
{
    chan_timer_t *warm = chan_timer_make(3600 * 1000 * MS); /* heap and thread exist */
    chan_malloc_hook = fail_alloc;
    errno = 0;
    ck_assert_ptr_null(chan_timer_make(10 * MS));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_ptr_null(chan_ticker_make(10 * MS));
    ck_assert_int_eq(errno, ENOMEM);
    chan_malloc_hook = NULL;
    ck_assert_int_eq(chan_timer_free(warm), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Func timers (AfterFunc) ---------------------------------------------------------------- */

struct fn_arg {
    _Atomic int calls;
    _Atomic int64_t at;
    chan_t *signal;
    chan_timer_t *self; /* freed from inside fn, when set */
};

static void on_fire(void *p)
{
    struct fn_arg *a = p;
    atomic_store(&a->at, chan_now());
    atomic_fetch_add(&a->calls, 1);
    if (a->self)
        ck_assert_int_eq(chan_timer_free(a->self), 0);
    if (a->signal)
        chan_close(a->signal);
}

START_TEST(timer_func)
{
    witness_mark();
    struct fn_arg a = {.signal = chan_make(0, 0)};
    int64_t start = chan_now();
    chan_timer_t *t = chan_timer_make_func(30 * MS, on_fire, &a);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_null(chan_timer_chan(t));
    ck_assert_int_eq(chan_recv(a.signal, NULL), -EPIPE);
    ck_assert_int_eq(atomic_load(&a.calls), 1);
    ck_assert_int_ge(atomic_load(&a.at), start + 30 * MS);
    ck_assert_int_le(atomic_load(&a.at) - (start + 30 * MS), late_allowed());
    ck_assert_int_eq(chan_timer_stop(t), 0); /* fn has run */

    /* Stopped before it fires: fn is never called. */
    int64_t armed = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 100 * MS), 0);
    int stopped = chan_timer_stop(t);
    /* 0 only if this thread stalled past the deadline between the two calls. */
    ck_assert(stopped == 1 || chan_now() - armed >= 100 * MS);
    sleep_ms(200);
    ck_assert_int_eq(atomic_load(&a.calls), stopped ? 1 : 2);
    ck_assert_int_eq(chan_timer_free(t), 0);
    ck_assert_int_eq(chan_free(a.signal), 0);

    /* fn frees its own timer. */
    struct fn_arg b = {.signal = chan_make(0, 0)};
    b.self = chan_timer_make_func(CHAN_FOREVER, on_fire, &b);
    ck_assert_int_eq(chan_timer_reset(b.self, 5 * MS), 1); /* b.self is set before fn can run */
    ck_assert_int_eq(chan_recv(b.signal, NULL), -EPIPE);
    ck_assert_int_eq(atomic_load(&b.calls), 1);
    ck_assert_int_eq(chan_free(b.signal), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Tickers -------------------------------------------------------------------------------- */

START_TEST(ticker_ticks_on_time)
{
    const int64_t period = 20 * MS;
    int64_t start = chan_now();
    chan_ticker_t *k = chan_ticker_make(period);
    ck_assert_ptr_nonnull(k);
    int64_t prev = start;
    for (int i = 1; i <= 5; i++) {
        int64_t v;
        ck_assert_int_eq(chan_recv(chan_ticker_chan(k), &v), 0);
        ck_assert_int_gt(v, prev);
        ck_assert_int_ge(v, start + i * period); /* the i-th tick is never early */
        prev = v;
    }
    ck_assert_int_eq(chan_ticker_stop(k), 1);
    ck_assert_int_eq(chan_ticker_free(k), 0);
    assert_no_leaks();
}
END_TEST

/* A slow receiver: ticks are dropped, never queued: after a long sleep at most one is waiting,
 * and the next comes no earlier than the grid allows. */
START_TEST(ticker_drops_for_slow_receiver)
{
    witness_mark();
    const int64_t period = 10 * MS;
    int64_t start = chan_now();
    chan_ticker_t *k = chan_ticker_make(period);
    chan_t *c = chan_ticker_chan(k);
    ck_assert_uint_eq(chan_cap(c), 1);
    int received = 0;
    for (int round = 0; round < 5; round++) {
        sleep_ms(100); /* ten periods */
        ck_assert_uint_le(chan_len(c), 1);
        int64_t v, w;
        int64_t t0 = chan_now();
        ck_assert_int_eq(chan_recv(c, &v), 0); /* a tick is waiting (or due within a period) */
        received++;
        ck_assert_int_le(v, t0 + period + late_allowed());
        /* The ticks missed while asleep were dropped, not queued: anything after the one
         * received was sent after the channel was emptied. */
        if (chan_tryrecv(c, &w) == 0)
            ck_assert_int_ge(w, t0);
    }
    int64_t elapsed = chan_now() - start;
    ck_assert_int_lt(received, elapsed / period); /* far fewer than the ticks due */
    ck_assert_int_eq(chan_ticker_free(k), 0);
    assert_no_leaks();
}
END_TEST

START_TEST(ticker_stop_and_reset)
{
    witness_mark();
    chan_ticker_t *k = chan_ticker_make(5 * MS);
    chan_t *c = chan_ticker_chan(k);
    sleep_ms(30); /* a tick is waiting */
    ck_assert_int_eq(chan_ticker_stop(k), 1);
    ck_assert_int_eq(chan_tryrecv(c, NULL), -EAGAIN); /* discarded */
    ck_assert_int_eq(chan_recv_until(c, NULL, chan_now() + 60 * MS), -ETIMEDOUT);
    ck_assert_int_eq(chan_ticker_stop(k), 0);

    /* Restart with a longer period: the next tick is a full new period away. */
    int64_t start = chan_now();
    ck_assert_int_eq(chan_ticker_reset(k, 40 * MS), 0);
    recv_on_time(c, start + 40 * MS);
    int64_t v;
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_ge(v, start + 80 * MS);

    /* Reset while running reports 1 and discards a waiting tick. */
    sleep_ms(60);
    start = chan_now();
    ck_assert_int_eq(chan_ticker_reset(k, 30 * MS), 1);
    ck_assert_int_eq(chan_tryrecv(c, NULL), -EAGAIN);
    recv_on_time(c, start + 30 * MS);
    ck_assert_int_eq(chan_ticker_free(k), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Due at once ----------------------------------------------------------------------------- */

/* A timer made or reset with a deadline that has come already (a duration of 0 or less, a past
 * deadline) has its value in the channel when the call returns, as Go 1.23's channel is ready at
 * once: a try-select takes it instead of its default. The timer thread is held busy meanwhile,
 * so it cannot be the one that sent. */
static void assert_ready(chan_timer_t *t, int64_t not_before)
{
    int64_t v = -1;
    struct chan_case cs[1] = {{.chan = chan_timer_chan(t), .elem = &v, .dir = CHAN_RECV}};
    ck_assert_int_eq(chan_tryselect(cs, 1), 0);
    ck_assert(cs[0].ok);
    ck_assert_int_ge(v, not_before); /* never early */
    ck_assert_int_le(v, chan_now());
    ck_assert_int_eq(chan_tryrecv(chan_timer_chan(t), NULL), -EAGAIN); /* once */
}

START_TEST(timer_due_is_ready_at_once)
{
    hold_timer_thread();
    int64_t start = chan_now();
    chan_timer_t *ts[] = {chan_timer_make(0),           chan_timer_make(-5 * MS),
                          chan_timer_make(INT64_MIN),   chan_timer_make_until(start - 1000 * MS),
                          chan_timer_make_until(start), chan_timer_make_until(INT64_MIN)};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        ck_assert_ptr_nonnull(ts[i]);
        assert_ready(ts[i], start);
        ck_assert_int_eq(chan_timer_stop(ts[i]), 0); /* fired, and received */
    }

    /* Reset to now: whatever the timer was doing, the new value is there on return. */
    chan_timer_t *t = chan_timer_make(3600 * 1000 * MS);
    int64_t before = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 0), 1); /* stopped the pending firing */
    assert_ready(t, before);
    before = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, -1), 0); /* had fired, value received */
    ck_assert_int_eq(chan_timer_reset(t, -1), 1); /* discards the unreceived value ... */
    assert_ready(t, before);                      /* ... and sends the new one */
    ck_assert_int_eq(chan_timer_stop(t), 0);
    ck_assert_int_eq(chan_timer_reset(t, 0), 0); /* stopped: restarted, fires at once */
    ck_assert_uint_eq(chan_len(chan_timer_chan(t)), 1);
    ck_assert_int_eq(chan_timer_stop(t), 1); /* its value unreceived: discarded */
    ck_assert_int_eq(chan_tryrecv(chan_timer_chan(t), NULL), -EAGAIN);

    /* A ticker's first tick is a period away: not due at once, even with the thread free. */
    chan_ticker_t *k = chan_ticker_make(3600 * 1000 * MS);
    ck_assert_int_eq(chan_tryrecv(chan_ticker_chan(k), NULL), -EAGAIN);
    release_timer_thread();
    ck_assert_int_eq(chan_ticker_free(k), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        ck_assert_int_eq(chan_timer_free(ts[i]), 0);
    assert_no_leaks();
}
END_TEST

/* Func timers still run fn on the timer thread, never in the caller, even when due at once. */
static void note_thread(void *p) { *(pthread_t *)p = pthread_self(); }

START_TEST(timer_func_due_runs_on_timer_thread)
{
    pthread_t ran = pthread_self();
    chan_timer_t *t = chan_timer_make_func(0, note_thread, &ran);
    chan_timer_t *sync = chan_timer_make(1 * MS); /* fires after fn: the heap is in order */
    ck_assert_int_eq(chan_recv(chan_timer_chan(sync), NULL), 0);
    ck_assert(!pthread_equal(ran, pthread_self()));
    ck_assert_int_eq(chan_timer_free(sync), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Tickers of tiny periods ---------------------------------------------------------------- */

/* A ticker of 1 to 10 ns is due again before the timer thread has finished firing it. Its ticks
 * are sent as fast as that thread can (dropped while the channel is full), and every other
 * call that needs the timer thread's lock -- stopping that ticker from another thread, other
 * timers, context deadlines -- still gets it at once. */
static void *stop_ticker_thread(void *p) { return (void *)(intptr_t)chan_ticker_stop(p); }

START_TEST(ticker_tiny_periods)
{
    for (int64_t period = 1; period <= 10; period++) {
        int64_t start = chan_now();
        chan_ticker_t *k = chan_ticker_make(period);
        ck_assert_ptr_nonnull(k);
        chan_t *c = chan_ticker_chan(k);
        int64_t prev = start, v;
        for (int i = 1; i <= 3; i++) {
            ck_assert_int_eq(chan_recv(c, &v), 0);
            ck_assert_int_gt(v, prev);
            ck_assert_int_ge(v, start + i * period);
            prev = v;
        }
        ck_assert_uint_le(chan_len(c), 1); /* ticks dropped, not queued */

        /* Other timers, tickers and deadlines go on meanwhile. */
        chan_timer_t *t = chan_timer_make(1 * MS);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(chan_recv_until(chan_timer_chan(t), NULL, chan_now() + 10000 * MS), 0);
        ck_assert_int_eq(chan_timer_reset(t, 3600 * 1000 * MS), 0);
        ck_assert_int_eq(chan_timer_stop(t), 1);
        ck_assert_int_eq(chan_timer_free(t), 0);
        chan_ticker_t *k2 = chan_ticker_make(period);
        ck_assert_int_eq(chan_recv(chan_ticker_chan(k2), NULL), 0);
        ck_assert_int_eq(chan_ticker_reset(k2, 1 + period % 3), 1);
        ck_assert_int_eq(chan_ticker_free(k2), 0);
        chan_ctx_t *ctx = chan_ctx_with_timeout(chan_ctx_background(), 1 * MS);
        ck_assert_int_eq(chan_recv_until(chan_ctx_done(ctx), NULL, chan_now() + 10000 * MS),
                         -EPIPE);
        ck_assert_int_eq(chan_ctx_err(ctx), -ETIMEDOUT);
        ck_assert_int_eq(chan_ctx_free(ctx), 0);

        /* Stopped from another thread: it returns, and no tick comes after. */
        pthread_t th = spawn(stop_ticker_thread, k);
        ck_assert_int_eq((int)(intptr_t)join(th), 1);
        ck_assert_int_eq(chan_tryrecv(c, NULL), -EAGAIN);
        ck_assert_int_eq(chan_recv_until(c, NULL, chan_now() + 5 * MS), -ETIMEDOUT);
        ck_assert_int_eq(chan_ticker_free(k), 0);
    }
    assert_no_leaks();
}
END_TEST

/* Several threads making, stopping and freeing timers while three 1 ns tickers keep the timer
 * thread busy: each call holds the lock only briefly, so all of them get through. */
static void *timer_churn(void *unused)
{
    (void)unused;
    for (int i = 0; i < 300; i++) {
        chan_timer_t *t = chan_timer_make((i % 3) * 1000);
        if (!t || chan_timer_stop(t) < 0 || chan_timer_free(t) != 0)
            return (void *)1;
    }
    return NULL;
}

START_TEST(ticker_tiny_period_does_not_starve_others)
{
    enum { K = 3, T = 3 };
    chan_ticker_t *k[K];
    for (int i = 0; i < K; i++)
        ck_assert_ptr_nonnull(k[i] = chan_ticker_make(1));
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        th[i] = spawn(timer_churn, NULL);
    for (int i = 0; i < T; i++)
        ck_assert_ptr_null(join(th[i]));
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(chan_recv(chan_ticker_chan(k[i]), NULL), 0); /* still ticking */
        ck_assert_int_eq(chan_ticker_free(k[i]), 0);
    }
    assert_no_leaks();
}
END_TEST

/* ---- Many timers, one thread ---------------------------------------------------------------- */

#define NTIMERS 10000

START_TEST(ten_thousand_timers_one_thread)
{
    /* The first timer starts the timer thread (and, under TSan, the sanitizer may start one of
     * its own with the first thread created): count from there. */
    chan_timer_t *first = chan_timer_make(0);
    ck_assert_int_eq(chan_recv(chan_timer_chan(first), NULL), 0);
    int before = count_threads();
    static chan_timer_t *ts[NTIMERS];
    static int64_t deadlines[NTIMERS];
    for (int i = 0; i < NTIMERS; i++) {
        int64_t d = (int64_t)((i * 7919) % 200) * MS; /* 0 to 199 ms, shuffled */
        deadlines[i] = chan_now() + d;
        ts[i] = chan_timer_make(d);
        ck_assert_ptr_nonnull(ts[i]);
    }
    ck_assert_int_eq(count_threads(), before); /* still the one timer thread */
    /* Every one fires, never early; a quarter are stopped before they can. */
    int stopped = 0;
    for (int i = 0; i < NTIMERS; i += 4) {
        ck_assert_int_eq(chan_timer_reset(ts[i], 3600 * 1000 * MS), 1);
        stopped += chan_timer_stop(ts[i]);
    }
    ck_assert_int_eq(stopped, NTIMERS / 4);
    for (int i = 0; i < NTIMERS; i++) {
        if (i % 4 == 0)
            continue;
        int64_t v;
        ck_assert_int_eq(chan_recv(chan_timer_chan(ts[i]), &v), 0);
        ck_assert_int_ge(v, deadlines[i]);
    }
    ck_assert_int_eq(count_threads(), before);
    for (int i = 0; i < NTIMERS; i++) {
        if (i % 4 == 0)
            ck_assert_int_eq(chan_tryrecv(chan_timer_chan(ts[i]), NULL), -EAGAIN);
        ck_assert_int_eq(chan_timer_free(ts[i]), 0);
    }
    ck_assert_int_eq(count_threads(), before);
    ck_assert_int_eq(chan_timer_free(first), 0);
    assert_no_leaks();
}
END_TEST

/* The timer thread does not poll: with one timer an hour away, over 300 ms it wakes (context
 * switches voluntarily) only a handful of times, if at all. */
static long voluntary_switches(const char *tid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
            break;
    fclose(f);
    return n;
}

START_TEST(timer_thread_sleeps)
{
    chan_timer_t *t = chan_timer_make(3600 * 1000 * MS);
    sleep_ms(50); /* the thread settles into its sleep */
    char self[32];
    snprintf(self, sizeof self, "%ld", (long)gettid());
    /* Every other task of this process: the timer thread (and whatever a sanitizer runs). */
    long before[16] = {0};
    char tids[16][32];
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while ((e = readdir(d)) && n < 16)
        if (e->d_name[0] != '.' && strcmp(e->d_name, self) != 0)
            snprintf(tids[n++], sizeof tids[0], "%.20s", e->d_name);
    closedir(d);
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n; i++)
        before[i] = voluntary_switches(tids[i]);
    sleep_ms(300);
    long least = -1;
    for (int i = 0; i < n; i++) {
        long sw = voluntary_switches(tids[i]) - before[i];
        if (least < 0 || sw < least)
            least = sw;
    }
    ck_assert_int_le(least, 5); /* a 1 ms poll would be ~300 */
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

/* ---- fork() ------------------------------------------------------------------------------- */

/* The child of fork() has its timers but not the timer thread: its next make or reset starts
 * one, and the inherited timers fire again. (Not under TSan, which refuses to start threads in
 * the child of a multi-threaded fork.) */
START_TEST(timer_after_fork)
{
    const char *mode = getenv("CHAN_TEST_MODE");
    if (mode && strcmp(mode, "tsan") == 0)
        return;
    chan_timer_t *far = chan_timer_make(3600 * 1000 * MS); /* the parent has a timer thread */
    /* Fork only once that thread is past its start-up: POSIX allows the child of a
     * multi-threaded fork only async-signal-safe calls, and glibc's malloc copes, but ASan's
     * allocator (GCC 12) is inherited locked if a thread was inside it at the fork -- as a
     * thread being started is. A timer received from that thread (1 ns: a duration of 0 is
     * sent by the caller) means the thread is in its loop. */
    chan_timer_t *now = chan_timer_make(1);
    ck_assert_int_eq(chan_recv(chan_timer_chan(now), NULL), 0);
    ck_assert_int_eq(chan_timer_free(now), 0);
    chan_timer_t *soon = chan_timer_make(30 * MS);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int64_t start = chan_now();
        chan_timer_t *c = chan_timer_make(20 * MS);
        int64_t v = 0;
        if (!c)
            _exit(10 + errno);
        int r = chan_recv_until(chan_timer_chan(c), &v, start + 10000 * MS);
        if (r)
            _exit(100 - r);
        if (v < start + 20 * MS)
            _exit(3);
        r = chan_recv_until(chan_timer_chan(soon), NULL, chan_now() + 10000 * MS);
        _exit(r ? 200 - r : 0);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: exited %d status %d, signal %d",
                  WIFEXITED(st), WEXITSTATUS(st), WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_int_eq(chan_recv(chan_timer_chan(soon), NULL), 0); /* the parent's, unaffected */
    ck_assert_int_eq(chan_timer_free(soon), 0);
    ck_assert_int_eq(chan_timer_free(far), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Lazy reset: a timer moved later keeps its heap slot until it reaches the top ---------- */

/* Reset later over and over, by less than its distance each time, while its first deadline
 * comes and goes: it fires once, at the last deadline, never at an earlier one. */
START_TEST(timer_reset_later_many_times)
{
    witness_mark();
    chan_timer_t *t = chan_timer_make(100 * MS);
    chan_t *c = chan_timer_chan(t);
    int64_t armed = chan_now();
    for (int i = 0; i < 40; i++) { /* 200 ms of resets: past the first deadline */
        sleep_ms(5);
        int64_t before = chan_now();
        int r = chan_timer_reset(t, 100 * MS);
        /* 0 only if this thread stalled past the deadline between two resets. */
        ck_assert_msg(r == 1 || before - armed >= 100 * MS, "fired %lld ms after its reset",
                      (long long)((before - armed) / MS));
        ck_assert_int_eq(chan_tryrecv(c, NULL), -EAGAIN);
        armed = before;
    }
    recv_on_time(c, armed + 100 * MS);
    ck_assert_int_eq(chan_recv_until(c, NULL, chan_now() + 150 * MS), -ETIMEDOUT); /* once */
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

/* Moved later (only recorded), then earlier than where it sits in the heap: it must move up
 * and wake the timer thread, which sleeps until an earlier timer's deadline. */
START_TEST(timer_reset_later_then_earlier)
{
    witness_mark();
    chan_timer_t *other = chan_timer_make(2000 * MS); /* the earliest, so t is not at the top */
    chan_timer_t *t = chan_timer_make(5000 * MS);
    ck_assert_int_eq(chan_timer_reset(t, 3600 * 1000 * MS), 1);
    int64_t start = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 50 * MS), 1);
    recv_on_time(chan_timer_chan(t), start + 50 * MS);
    /* And a lone timer, the top itself, moved later then earlier. */
    ck_assert_int_eq(chan_timer_stop(other), 1);
    ck_assert_int_eq(chan_timer_reset(t, 5000 * MS), 0);
    sleep_ms(20); /* the timer thread sleeps until t's first deadline */
    ck_assert_int_eq(chan_timer_reset(t, 3600 * 1000 * MS), 1);
    start = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 50 * MS), 1);
    recv_on_time(chan_timer_chan(t), start + 50 * MS);
    ck_assert_int_eq(chan_timer_free(t), 0);
    ck_assert_int_eq(chan_timer_free(other), 0);
    assert_no_leaks();
}
END_TEST

/* Moved later, then stopped: stop reports that it stopped a pending firing, and nothing is
 * received, neither at the first deadline nor at the second. */
START_TEST(timer_reset_later_then_stop)
{
    chan_timer_t *t = chan_timer_make(30 * MS);
    int64_t armed = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 100 * MS), 1);
    int stopped = chan_timer_stop(t);
    ck_assert(stopped == 1 || chan_now() - armed >= 30 * MS); /* 0: this thread stalled */
    if (stopped)
        ck_assert_int_eq(chan_recv_until(chan_timer_chan(t), NULL, chan_now() + 250 * MS),
                         -ETIMEDOUT);
    ck_assert_int_eq(chan_timer_stop(t), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

/* A running ticker reset to a longer period: the waiting tick is discarded, and the next ticks
 * come a full new period apart from the reset, not at the old period's grid. */
START_TEST(ticker_reset_later)
{
    witness_mark();
    chan_ticker_t *k = chan_ticker_make(10 * MS);
    chan_t *c = chan_ticker_chan(k);
    for (int i = 0; i < 10000 && chan_len(c) == 0; i++)
        sleep_ms(1); /* a tick is waiting */
    int64_t start = chan_now();
    ck_assert_int_eq(chan_ticker_reset(k, 150 * MS), 1);
    ck_assert_int_eq(chan_tryrecv(c, NULL), -EAGAIN); /* discarded */
    int64_t v = recv_on_time(c, start + 150 * MS);
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_ge(v, start + 300 * MS);
    ck_assert_int_eq(chan_ticker_free(k), 0);
    assert_no_leaks();
}
END_TEST

/* 10,000 func timers, each first due at a random time, then reset in random order (to two
 * hours away, then to its final deadline, mostly later than where the heap holds it): they
 * fire never before their final deadlines, each once, in the order of those deadlines (up to
 * how late a firing may be). */
#define NORDER 10000
#define ORDER_STEP (50 * CHAN_MICROSECOND) /* between two final deadlines: 0.5 s in all */

static struct {
    _Atomic int n; /* written by the timer thread only: one fn at a time */
    int order[NORDER];
    int64_t at[NORDER];
} fired;

static void record_fire(void *p)
{
    int i = (int)(intptr_t)p, k = atomic_load(&fired.n);
    if (k < NORDER) {
        fired.order[k] = i;
        fired.at[i] = chan_now();
    }
    atomic_store(&fired.n, k + 1);
}

static void shuffle(int *a, int n, uint64_t *seed)
{
    for (int i = 0; i < n; i++)
        a[i] = i;
    for (int i = n - 1; i > 0; i--) {
        *seed ^= *seed << 13, *seed ^= *seed >> 7, *seed ^= *seed << 17;
        int j = (int)(*seed % (uint64_t)(i + 1)), x = a[i];
        a[i] = a[j], a[j] = x;
    }
}

START_TEST(timers_reset_in_random_order_fire_in_order)
{
    witness_mark();
    static chan_timer_t *ts[NORDER];
    static int perm[NORDER];
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int64_t span = NORDER * ORDER_STEP;
    /* Every reset is done before the first timer is due, so the heap holds all of them. */
    int64_t base = chan_now() + (under_sanitizer() ? 4000 : 1500) * MS;
    shuffle(perm, NORDER, &seed);
    for (int i = 0; i < NORDER; i++) { /* first due in [base, base + 2 span): random */
        int64_t first = base + (int64_t)perm[i] * 2 * ORDER_STEP;
        ck_assert_ptr_nonnull(
            ts[i] = chan_timer_make_func(first - chan_now(), record_fire, (void *)(intptr_t)i));
    }
    int late = 0;
    shuffle(perm, NORDER, &seed);
    for (int k = 0; k < NORDER; k++)
        late |= chan_timer_reset(ts[perm[k]], 7200 * CHAN_SECOND) != 1;
    shuffle(perm, NORDER, &seed);
    for (int k = 0; k < NORDER; k++) { /* final: i's at base + span/2 + i * step */
        int i = perm[k];
        late |= chan_timer_reset(ts[i], base + span / 2 + i * ORDER_STEP - chan_now()) != 1;
    }
    /* A stall of the whole process past base (seconds) lets a first deadline fire: no order
     * to check then. */
    late |= chan_now() >= base;
    int64_t until = base + 2 * span + 30000 * MS;
    while (atomic_load(&fired.n) < NORDER && chan_now() < until)
        sleep_ms(10);
    sleep_ms(50);
    ck_assert_int_eq(atomic_load(&fired.n), NORDER); /* each once */
    if (!late) {
        int64_t tol = late_allowed(), prev = 0;
        for (int k = 0; k < NORDER; k++) {
            int i = fired.order[k];
            int64_t final = base + span / 2 + i * ORDER_STEP;
            ck_assert_msg(fired.at[i] >= final, "timer %d fired %lld us early", i,
                          (long long)((final - fired.at[i]) / 1000));
            /* Fired after one due later by more than a firing may be late: out of order. */
            ck_assert_msg(prev - final <= tol, "timer %d fired %lld us after one due later", i,
                          (long long)((prev - final) / 1000));
            if (final > prev)
                prev = final;
        }
    }
    for (int i = 0; i < NORDER; i++)
        ck_assert_int_eq(chan_timer_free(ts[i]), 0);
    assert_no_leaks();
}
END_TEST

/* A func timer that resets itself from fn, twice each time: the first reset finds it out of
 * the heap (it is firing), the second moves it later while queued. It fires at the second
 * deadline each time, never the first, and five times in all. */
#define SELF_FIRES 5

static struct {
    chan_timer_t *t;
    chan_t *done;
    int calls;
    int64_t armed[SELF_FIRES], at[SELF_FIRES];
} self;

static void reset_self(void *unused)
{
    (void)unused;
    int k = self.calls++;
    self.at[k] = chan_now();
    if (k + 1 == SELF_FIRES) {
        chan_close(self.done);
        return;
    }
    ck_assert_int_eq(chan_timer_reset(self.t, 5 * MS), 0); /* not queued: it is firing */
    self.armed[k + 1] = chan_now();
    ck_assert_int_eq(chan_timer_reset(self.t, 20 * MS), 1);
}

START_TEST(timer_func_resets_itself)
{
    self.done = chan_make(0, 0);
    self.t = chan_timer_make_func(CHAN_FOREVER, reset_self, NULL);
    ck_assert_ptr_nonnull(self.t);
    self.armed[0] = chan_now();
    ck_assert_int_eq(chan_timer_reset(self.t, 20 * MS), 1);
    ck_assert_int_eq(chan_recv(self.done, NULL), -EPIPE); /* after the last fn's writes */
    for (int k = 0; k < SELF_FIRES; k++)
        ck_assert_int_ge(self.at[k], self.armed[k] + 20 * MS);
    sleep_ms(60);
    ck_assert_int_eq(chan_timer_stop(self.t), 0);
    ck_assert_int_eq(self.calls, SELF_FIRES);
    ck_assert_int_eq(chan_timer_free(self.t), 0);
    ck_assert_int_eq(chan_free(self.done), 0);
    assert_no_leaks();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timer");
    ADD_TEST(s, timer_fires_on_time, 30);
    ADD_TEST(s, timer_make_until, 30);
    ADD_TEST(s, timer_in_select, 30);
    ADD_TEST(s, timer_stop_before_fire, 30);
    ADD_TEST(s, timer_stop_after_fire_discards, 30);
    ADD_TEST(s, timer_reset, 30);
    ADD_TEST(s, timer_no_stale_value_after_reset_or_stop, 60);
    ADD_TEST(s, timer_blocked_receiver_and_free, 30);
    ADD_TEST(s, timer_bad_arguments, 30);
    ADD_TEST(s, timer_enomem, 30);
    ADD_TEST(s, timer_func, 30);
    ADD_TEST(s, ticker_ticks_on_time, 30);
    ADD_TEST(s, ticker_drops_for_slow_receiver, 30);
    ADD_TEST(s, ticker_stop_and_reset, 30);
    ADD_TEST(s, timer_due_is_ready_at_once, 30);
    ADD_TEST(s, timer_func_due_runs_on_timer_thread, 30);
    ADD_TEST(s, ticker_tiny_periods, 60);
    ADD_TEST(s, ticker_tiny_period_does_not_starve_others, 60);
    ADD_TEST(s, ten_thousand_timers_one_thread, 120);
    ADD_TEST(s, timer_thread_sleeps, 30);
    ADD_TEST(s, timer_after_fork, 60);
    ADD_TEST(s, timer_reset_later_many_times, 30);
    ADD_TEST(s, timer_reset_later_then_earlier, 30);
    ADD_TEST(s, timer_reset_later_then_stop, 30);
    ADD_TEST(s, ticker_reset_later, 30);
    ADD_TEST(s, timers_reset_in_random_order_fire_in_order, 120);
    ADD_TEST(s, timer_func_resets_itself, 30);
    return run_suite(s);
}
