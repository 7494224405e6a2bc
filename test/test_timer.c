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

/* Waits (up to 10 s) until the timer or ticker of channel c has fired and its value waits in
 * the channel, unreceived (a white-box look: chan_len reports 0 for a timer's channel). */
static void wait_until_fired(chan_t *c)
{
    for (int i = 0; i < 10000 && hchan_buffered(c) == 0; i++)
        sleep_ms(1);
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
    ck_assert_uint_eq(hchan_buffered(chan_timer_chan(t)), 0);
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
    wait_until_fired(c);
    ck_assert_uint_eq(hchan_buffered(c), 1);
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
    wait_until_fired(chan_timer_chan(t));
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
    /* Not stopped: it fired, and fn has been called or is about to be. */
    for (int i = 0; i < 10000 && !stopped && atomic_load(&a.calls) < 2; i++)
        sleep_ms(1);
    sleep_ms(200); /* time for a call that should not come */
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
    ck_assert_uint_eq(chan_cap(c), 0); /* as Go 1.23's cap(t.C) */
    int received = 0;
    for (int round = 0; round < 5; round++) {
        sleep_ms(100); /* ten periods */
        ck_assert_uint_le(hchan_buffered(c), 1);
        int64_t v, w;
        int64_t t0 = chan_now();
        ck_assert_int_eq(chan_recv(c, &v), 0); /* a tick is waiting (or due within a period) */
        received++;
        ck_assert_int_le(v, t0 + period + late_allowed());
        /* The ticks missed while asleep were dropped, not queued: anything after the one
         * received is a later tick, due at most a period before the channel was emptied (the
         * ticker stamps a tick before it tries to send it, as Go's sendTime takes Now() before
         * its send: a tick stamped just before t0 may land once the receive made room). */
        if (chan_tryrecv(c, &w) == 0) {
            ck_assert_int_gt(w, v);
            ck_assert_int_ge(w, t0 - period - late_allowed());
        }
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
    ck_assert_uint_eq(hchan_buffered(chan_timer_chan(t)), 1);
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
        ck_assert_uint_le(hchan_buffered(c), 1); /* ticks dropped, not queued */

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
    wait_until_fired(c); /* a tick is waiting */
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

/* ---- Ports: Go's time/sleep_test.go and tick_test.go, crossbeam's after.rs, tick.rs, never.rs */

/* Go's TestAfterFunc: a chain of func timers, each made (due at once) by the fn of the one
 * before it, on the timer thread, and each freeing its own timer; the last closes a channel. */
#define CHAIN 100

struct chain {
    int n;
    chan_timer_t *t[CHAIN + 1];
    chan_t *end;
};

static void chain_link(void *p)
{
    struct chain *ch = p;
    int i = ch->n++;
    ck_assert_int_eq(chan_timer_free(ch->t[i]), 0); /* its own timer, from its fn */
    if (i < CHAIN)
        ck_assert_ptr_nonnull(ch->t[i + 1] = chan_timer_make_func(0, chain_link, ch));
    else
        chan_close(ch->end);
}

START_TEST(timer_func_chain)
{
    static struct chain ch;
    ch.end = mk(0, 0);
    ch.t[0] = chan_timer_make_func(CHAN_FOREVER, chain_link, &ch);
    ck_assert_int_eq(chan_timer_reset(ch.t[0], 0), 1); /* armed once t[0] is stored */
    ck_assert_int_eq(chan_recv_until(ch.end, NULL, chan_now() + 10000 * MS), -EPIPE);
    ck_assert_int_eq(ch.n, CHAIN + 1);
    ck_assert_int_eq(chan_free(ch.end), 0);
    assert_no_leaks();
}
END_TEST

/* Go's TestAfterQueuing: timers made in a shuffled order fire in the order of their deadlines.
 * Every value is the firing's time, and one thread fires them: sorted by deadline, the values
 * must rise, whatever order a select (several may be ready at once) receives them in. That holds
 * only if every timer was made before the first deadline (one made after an earlier-slotted
 * timer's deadline fires at once, after it): a round in which this thread was held up that long
 * says nothing, and is tried again with deadlines twice as far apart, as Go's test does. */
#define QUEUED 10

static bool after_queuing_once(int64_t unit)
{
    static const int slot[QUEUED] = {0, 2, 1, 3, 4, 6, 5, 8, 7, 9};
    chan_timer_t *t[QUEUED];
    int64_t deadline[QUEUED], value[QUEUED];
    struct chan_case cs[QUEUED];
    int64_t start = chan_now() + unit / 2;
    for (int i = 0; i < QUEUED; i++) {
        deadline[i] = start + slot[i] * unit;
        ck_assert_ptr_nonnull(t[i] = chan_timer_make_until(deadline[i]));
        cs[i] =
            (struct chan_case){.chan = chan_timer_chan(t[i]), .elem = &value[i], .dir = CHAN_RECV};
    }
    bool in_time = chan_now() < start;
    for (int got = 0; got < QUEUED && in_time; got++) {
        int k = chan_select(cs, QUEUED);
        ck_assert_int_ge(k, 0);
        ck_assert(cs[k].ok);
        ck_assert_int_ge(value[k], deadline[k]); /* never early */
        cs[k].chan = NULL;                       /* received: never chosen again */
    }
    for (int s = 1; s < QUEUED && in_time; s++)
        for (int i = 0; i < QUEUED; i++)
            for (int j = 0; j < QUEUED; j++)
                if (slot[i] == s - 1 && slot[j] == s)
                    ck_assert_int_le(value[i], value[j]);
    for (int i = 0; i < QUEUED; i++)
        ck_assert_int_eq(chan_timer_free(t[i]), 0);
    return in_time;
}

START_TEST(timer_after_queuing)
{
    int64_t unit = 10 * MS;
    while (!after_queuing_once(unit)) {
        unit *= 2;
        ck_assert_msg(unit <= 640 * MS, "the timers were never all made before the first deadline");
    }
    assert_no_leaks();
}
END_TEST

/* Go's TestTimerStopStress, and timers started and stopped from many threads at once: 4
 * threads make 2,500 timers each (1 to 40 ms), stop every other one at once (always 1: it has
 * not fired, or its value is unreceived and is discarded), reset a quarter of the rest, and
 * receive the others; func timers stopped at once never run. */
#define STRESS_THREADS 4
#define STRESS_EACH 2500

static _Atomic int stress_ran;
static void stress_fn(void *p)
{
    (void)p;
    atomic_fetch_add(&stress_ran, 1);
}

static void *stress_main(void *p)
{
    unsigned seed = (unsigned)(uintptr_t)p;
    int n = scaled(STRESS_EACH, STRESS_EACH / 5);
    chan_timer_t **t = malloc((size_t)n * sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < n; i++) {
        int64_t d = (1 + rand_r(&seed) % 40) * MS;
        if (i % 2 == 0) {
            ck_assert_ptr_nonnull(t[i] = chan_timer_make(d));
            ck_assert_int_eq(chan_timer_stop(t[i]), 1);
        } else if (i % 4 == 1) {
            ck_assert_ptr_nonnull(t[i] =
                                      chan_timer_make_func(d + 3600 * 1000 * MS, stress_fn, NULL));
            ck_assert_int_eq(chan_timer_stop(t[i]), 1);
        } else if (i % 8 == 3) {
            ck_assert_ptr_nonnull(t[i] = chan_timer_make(3600 * 1000 * MS));
            ck_assert_int_eq(chan_timer_reset(t[i], d), 1);
        } else {
            ck_assert_ptr_nonnull(t[i] = chan_timer_make(d));
        }
    }
    for (int i = 0; i < n; i++) {
        chan_t *c = chan_timer_chan(t[i]);
        if (i % 4 == 3) {
            int64_t v;
            ck_assert_int_eq(chan_recv(c, &v), 0);
            ck_assert_int_eq(chan_timer_stop(t[i]), 0); /* fired and received */
        } else if (c) {
            ck_assert_int_eq(chan_tryrecv(c, NULL), -EAGAIN); /* stopped: nothing came */
        }
    }
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(chan_timer_free(t[i]), 0);
    free(t);
    return NULL;
}

START_TEST(timers_from_many_threads)
{
    pthread_t th[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++)
        th[i] = spawn(stress_main, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < STRESS_THREADS; i++)
        join(th[i]);
    ck_assert_int_eq(atomic_load(&stress_ran), 0);
    assert_no_leaks();
}
END_TEST

/* Go's TestOverflowSleep, TestOverflowPeriodRuntimeTimer and TestNegativeTimer: durations and
 * deadlines near the ends of int64_t neither wrap around into the past nor crash. The huge ones
 * never fire (a 25 ms timer beside them wins every select), and the most negative fire at once.
 * crossbeam's never.rs: a NULL channel in the same select is never chosen. */
START_TEST(timer_overflow_never)
{
    int64_t now = chan_now();
    chan_timer_t *huge[] = {chan_timer_make(INT64_MAX),
                            chan_timer_make(INT64_MAX - 1),
                            chan_timer_make(CHAN_FOREVER - now),
                            chan_timer_make_until(CHAN_FOREVER),
                            chan_timer_make_until(CHAN_FOREVER - 1),
                            chan_timer_make(3600 * 1000 * MS)};
    enum { H = sizeof huge / sizeof huge[0] };
    chan_ticker_t *tick[] = {chan_ticker_make(INT64_MAX), chan_ticker_make(INT64_MAX / 2),
                             chan_ticker_make(CHAN_FOREVER - now - 1)};
    enum { K = sizeof tick / sizeof tick[0] };
    ck_assert_int_eq(chan_timer_reset(huge[H - 1], INT64_MAX), 1); /* moved to never */
    struct chan_case cs[H + K + 2];
    for (int i = 0; i < H; i++) {
        ck_assert_ptr_nonnull(huge[i]);
        cs[i] = (struct chan_case){.chan = chan_timer_chan(huge[i]), .dir = CHAN_RECV};
    }
    for (int i = 0; i < K; i++) {
        ck_assert_ptr_nonnull(tick[i]);
        cs[H + i] = (struct chan_case){.chan = chan_ticker_chan(tick[i]), .dir = CHAN_RECV};
    }
    cs[H + K] = (struct chan_case){.chan = NULL, .dir = CHAN_RECV}; /* never */
    for (int round = 0; round < 3; round++) {
        chan_timer_t *soon = chan_timer_make(25 * MS);
        cs[H + K + 1] = (struct chan_case){.chan = chan_timer_chan(soon), .dir = CHAN_RECV};
        ck_assert_int_eq(chan_select(cs, H + K + 2), H + K + 1);
        ck_assert_int_eq(chan_timer_free(soon), 0);
    }
    cs[H + K + 1].chan = NULL;
    ck_assert_int_eq(chan_tryselect(cs, H + K + 2), -EAGAIN);
    ck_assert_int_eq(chan_recv_until(NULL, NULL, chan_now() + 10 * MS), -ETIMEDOUT);
    /* Negative extremes: due at once, and a ticker refuses them. */
    chan_timer_t *neg = chan_timer_make(INT64_MIN);
    ck_assert_int_eq(chan_tryrecv(chan_timer_chan(neg), NULL), 0);
    ck_assert_int_eq(chan_timer_reset(neg, INT64_MIN + 1), 0);
    ck_assert_int_eq(chan_tryrecv(chan_timer_chan(neg), NULL), 0);
    errno = 0;
    ck_assert_ptr_null(chan_ticker_make(INT64_MIN));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_ticker_reset(tick[0], INT64_MIN), -EINVAL);
    ck_assert_int_eq(chan_ticker_reset(tick[0], -1), -EINVAL);
    for (int i = 0; i < H; i++) {
        ck_assert_int_eq(chan_timer_stop(huge[i]), 1); /* all still pending */
        ck_assert_int_eq(chan_timer_free(huge[i]), 0);
    }
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(chan_ticker_stop(tick[i]), 1);
        ck_assert_int_eq(chan_ticker_free(tick[i]), 0);
    }
    ck_assert_int_eq(chan_timer_free(neg), 0);
    assert_no_leaks();
}
END_TEST

/* Go 1.23's testTimerChan, the part with receivers: two threads blocked on a stopped timer's
 * channel get nothing while it stays stopped; a reset then hands its one value to exactly one
 * of them, and a second reset to the other. */
START_TEST(timer_stopped_chan_receivers)
{
    chan_timer_t *t = chan_timer_make(3600 * 1000 * MS);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    struct waiter_arg a[2] = {{.c = chan_timer_chan(t), .r = 1}, {.c = chan_timer_chan(t), .r = 1}};
    pthread_t th[2] = {spawn(recv_thread, &a[0]), spawn(recv_thread, &a[1])};
    ck_assert(blocked_receivers_at_least(a[0].c, 2));
    ck_assert_int_eq(chan_timer_reset(t, 3600 * 1000 * MS), 0); /* running again, not due */
    ck_assert_int_eq(chan_timer_stop(t), 1);
    sleep_ms(30);
    ck_assert_uint_eq(hchan_waiting(a[0].c, CHAN_RECV), 2); /* nothing came */
    int64_t armed = chan_now();
    ck_assert_int_eq(chan_timer_reset(t, 5 * MS), 0);
    for (int i = 0; i < 10000 && hchan_waiting(a[0].c, CHAN_RECV) == 2; i++)
        sleep_ms(1);
    sleep_ms(20); /* a second value, if one wrongly came, would wake the other too */
    ck_assert_uint_eq(hchan_waiting(a[0].c, CHAN_RECV), 1);
    ck_assert_int_eq(chan_timer_reset(t, 0), 0); /* fires in the call: the other one gets it */
    join(th[0]);
    join(th[1]);
    ck_assert_int_eq(a[0].r, 0);
    ck_assert_int_eq(a[1].r, 0);
    ck_assert_int_ge(a[0].v < a[1].v ? a[0].v : a[1].v, armed + 5 * MS);
    ck_assert_int_eq(chan_timer_free(t), 0);
    assert_no_leaks();
}
END_TEST

/* Go's TestTicker: ticks keep their phase over many periods (the k-th received is never before
 * start + k * period) and do not drift (the last comes near its grid point); Reset changes the
 * period, the next tick one new period from the reset, an unreceived tick discarded. As Go's
 * test does, a run that finds the ticks late (the machine overloaded) is tried again, up to 5
 * times; never early is checked on every run. */
START_TEST(ticker_phase_and_reset)
{
    const int64_t period = scaled(4, 10) * MS;
    const int n = 25;
    bool on_time = false;
    for (int attempt = 0; attempt < 5 && !on_time; attempt++) {
        witness_mark();
        int64_t start = chan_now();
        chan_ticker_t *k = chan_ticker_make(period);
        chan_t *c = chan_ticker_chan(k);
        int64_t v = 0, prev = 0;
        for (int i = 1; i <= n; i++) {
            ck_assert_int_eq(chan_recv(c, &v), 0);
            ck_assert_int_gt(v, prev);
            ck_assert_int_ge(v, start + i * period); /* never early, and never more than due */
            prev = v;
        }
        /* No drift: n ticks took n periods, plus one firing's lateness (ticks dropped while
         * this thread was descheduled would make it later: then try again). */
        on_time = v - (start + n * period) <= late_allowed() + period;
        int64_t reset = chan_now();
        ck_assert_int_eq(chan_ticker_reset(k, 2 * period), 1);
        int got = chan_tryrecv(c, &v) == 0; /* only a tick of the new period, if any */
        if (got)
            ck_assert_int_ge(v, reset + 2 * period);
        for (int i = 1 + got; i <= 5; i++) {
            ck_assert_int_eq(chan_recv(c, &v), 0);
            ck_assert_int_ge(v, reset + i * 2 * period);
        }
        ck_assert_int_eq(chan_ticker_free(k), 0);
    }
    ck_assert_msg(on_time, "the ticks drifted late in 5 runs out of 5");
    assert_no_leaks();
}
END_TEST

/* Go's TestTeardown (many tickers made and stopped) and TestTickerStopWithDirectInitialization
 * (a stopped ticker's channel stays quiet): 2 threads make, stop and free 1,000 tickers of
 * 1 ms each while the timer thread fires them; afterwards timers and a ticker still work. */
static void *teardown_main(void *p)
{
    (void)p;
    for (int i = 0; i < scaled(500, 100); i++) {
        chan_ticker_t *k = chan_ticker_make(1 * MS);
        ck_assert_ptr_nonnull(k);
        if (i % 3 == 0)
            sleep_ns(1 * MS);
        ck_assert_int_ge(chan_ticker_stop(k), 0);
        ck_assert_int_eq(chan_tryrecv(chan_ticker_chan(k), NULL), -EAGAIN);
        ck_assert_int_eq(chan_ticker_free(k), 0);
    }
    return NULL;
}

START_TEST(ticker_teardown)
{
    pthread_t th[2] = {spawn(teardown_main, NULL), spawn(teardown_main, NULL)};
    join(th[0]);
    join(th[1]);
    chan_ticker_t *k = chan_ticker_make(2 * MS);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_recv(chan_ticker_chan(k), NULL), 0);
    ck_assert_int_eq(chan_ticker_stop(k), 1);
    ck_assert_int_eq(chan_recv_until(chan_ticker_chan(k), NULL, chan_now() + 20 * MS), -ETIMEDOUT);
    ck_assert_int_eq(chan_ticker_free(k), 0);
    assert_no_leaks();
}
END_TEST

/* Go 1.23's testTimerChan (len and cap), and crossbeam's after.rs and tick.rs
 * `len_empty_full`/`capacity`: a timer's or ticker's channel reports length and capacity 0, as
 * Go's chanlen and chancap do for a timer channel, before the firing, while the value waits
 * (inside, where a receive finds it) and after; the value is received once. */
START_TEST(timer_chan_len_cap)
{
    int64_t deadline = chan_now() + 10 * MS;
    chan_timer_t *t = chan_timer_make_until(deadline);
    chan_t *c = chan_timer_chan(t);
    ck_assert_uint_eq(chan_cap(c), 0);
    ck_assert_uint_eq(chan_len(c), 0);
    int r = chan_tryrecv(c, NULL);
    if (chan_now() < deadline) /* checked before the deadline (never early): not ready */
        ck_assert_int_eq(r, -EAGAIN);
    if (r == 0) /* this thread was held up past the deadline: arm it again */
        ck_assert_int_eq(chan_timer_reset(t, 1 * MS), 0);
    wait_until_fired(c);
    ck_assert_uint_eq(hchan_buffered(c), 1); /* fired: the value waits */
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_uint_eq(chan_cap(c), 0);
    ck_assert_int_eq(chan_tryrecv(c, NULL), 0);
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_int_eq(chan_recv_until(c, NULL, chan_now() + 20 * MS), -ETIMEDOUT); /* once */
    ck_assert_int_eq(chan_timer_free(t), 0);

    chan_ticker_t *k = chan_ticker_make(1 * MS);
    c = chan_ticker_chan(k);
    ck_assert_uint_eq(chan_cap(c), 0);
    wait_until_fired(c);
    for (int i = 0; i < 20; i++, sleep_ms(1)) {
        ck_assert_uint_eq(hchan_buffered(c), 1); /* a tick each ms due, one kept */
        ck_assert_uint_eq(chan_len(c), 0);
    }
    ck_assert_int_eq(chan_ticker_stop(k), 1);
    ck_assert_uint_eq(hchan_buffered(c), 0);
    ck_assert_int_eq(chan_ticker_free(k), 0);

    chan_t *plain = chan_make(sizeof(int64_t), 1); /* an ordinary channel reports its own */
    int64_t v = 1;
    ck_assert_int_eq(chan_send(plain, &v), 0);
    ck_assert_uint_eq(chan_len(plain), 1);
    ck_assert_uint_eq(chan_cap(plain), 1);
    ck_assert_int_eq(chan_free(plain), 0);
    ck_assert_uint_eq(chan_len(NULL), 0); /* never.rs: a NULL channel has neither */
    ck_assert_uint_eq(chan_cap(NULL), 0);
    assert_no_leaks();
}
END_TEST

/* crossbeam's after.rs `select` and `recv_two`: 1,000 timers due within 5 ms, and 4 threads
 * each selecting over all of them (and a 100 ms time-out) until none comes: every value is
 * received exactly once. */
#define SEL_TIMERS 1000
#define SEL_THREADS 4

static struct {
    chan_timer_t *t[SEL_TIMERS];
    _Atomic int hits[SEL_TIMERS];
    _Atomic int total;
} sel;

static void *sel_main(void *p)
{
    (void)p;
    struct chan_case *cs = malloc(SEL_TIMERS * sizeof *cs);
    ck_assert_ptr_nonnull(cs);
    for (int i = 0; i < SEL_TIMERS; i++)
        cs[i] = (struct chan_case){.chan = chan_timer_chan(sel.t[i]), .dir = CHAN_RECV};
    int k;
    while ((k = chan_select_until(cs, SEL_TIMERS, chan_now() + 100 * MS)) >= 0) {
        ck_assert(cs[k].ok);
        atomic_fetch_add(&sel.hits[k], 1);
        atomic_fetch_add(&sel.total, 1);
    }
    ck_assert_int_eq(k, -ETIMEDOUT);
    free(cs);
    return NULL;
}

START_TEST(timers_selected_by_many_threads)
{
    for (int i = 0; i < SEL_TIMERS; i++)
        ck_assert_ptr_nonnull(sel.t[i] = chan_timer_make(i / 200 * MS));
    pthread_t th[SEL_THREADS];
    for (int i = 0; i < SEL_THREADS; i++)
        th[i] = spawn(sel_main, NULL);
    for (int i = 0; i < SEL_THREADS; i++)
        join(th[i]);
    /* A timer thread held up past the threads' 100 ms time-out leaves values behind: they
     * must still be there, once each. */
    for (int i = 0; i < SEL_TIMERS; i++)
        if (atomic_load(&sel.hits[i]) == 0 && chan_recv(chan_timer_chan(sel.t[i]), NULL) == 0)
            atomic_fetch_add(&sel.hits[i], 1), atomic_fetch_add(&sel.total, 1);
    ck_assert_int_eq(atomic_load(&sel.total), SEL_TIMERS);
    for (int i = 0; i < SEL_TIMERS; i++) {
        ck_assert_int_eq(atomic_load(&sel.hits[i]), 1);
        ck_assert_int_eq(chan_timer_free(sel.t[i]), 0);
    }
    assert_no_leaks();
}
END_TEST

/* crossbeam's after.rs and tick.rs `fairness`: between two timer channels both ready (due at
 * once), a select picks each about half the time; between two tickers of 1 ns, each is served
 * (tick.rs's bound: at least a quarter of a fair share). Two 1 ms timers are not in it: as in
 * Go, the earlier one wakes a blocked select first and wins. */
START_TEST(timers_select_fairness)
{
    enum { N = 1000 };
    long hits[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        chan_timer_t *a = chan_timer_make(0), *b = chan_timer_make(0);
        struct chan_case cs[2] = {{.chan = chan_timer_chan(a), .dir = CHAN_RECV},
                                  {.chan = chan_timer_chan(b), .dir = CHAN_RECV}};
        int k = chan_select(cs, 2);
        ck_assert(k == 0 || k == 1);
        hits[k]++;
        ck_assert_int_eq(chan_timer_free(a), 0);
        ck_assert_int_eq(chan_timer_free(b), 0);
    }
    ck_assert_msg(chi_square(hits, 2, N) < 15.1, "after(0): %ld vs %ld", hits[0], hits[1]);

    hits[0] = hits[1] = 0;
    chan_ticker_t *ka = chan_ticker_make(1), *kb = chan_ticker_make(1);
    struct chan_case cs[2] = {{.chan = chan_ticker_chan(ka), .dir = CHAN_RECV},
                              {.chan = chan_ticker_chan(kb), .dir = CHAN_RECV}};
    for (int i = 0; i < N; i++) {
        int k = chan_select(cs, 2);
        ck_assert(k == 0 || k == 1);
        hits[k]++;
    }
    ck_assert_msg(hits[0] >= N / 8 && hits[1] >= N / 8, "tick: %ld vs %ld", hits[0], hits[1]);
    ck_assert_int_eq(chan_ticker_free(ka), 0);
    ck_assert_int_eq(chan_ticker_free(kb), 0);
    assert_no_leaks();
}
END_TEST

/* Go's TestAdjustTimers: 100 timers, each taken through the same sequence of states in a
 * random interleaving with the others: fire at once and be received, reset long (returns 0:
 * idle) and stopped (returns 1) three times over, reset to 0 (returns 0) and received at once.
 * And TestTimerModifiedEarlier: a timer an hour away, stopped and reset into the past ten
 * times over (stop always finds it pending or its value unreceived: 1), is ready at once. */
START_TEST(timer_resets_in_every_order)
{
    enum { N = 100 };
    chan_timer_t *t[N] = {0};
    int state[N] = {0}, idx[N], left = N;
    unsigned seed = 42;
    for (int i = 0; i < N; i++)
        idx[i] = i;
    while (left > 0) {
        int ii = rand_r(&seed) % left, i = idx[ii];
        switch (state[i]++) {
        case 0: ck_assert_ptr_nonnull(t[i] = chan_timer_make(0)); break;
        case 1:
        case 9:
            ck_assert_int_eq(chan_tryrecv(chan_timer_chan(t[i]), NULL), 0); /* ready */
            break;
        case 2:
        case 4:
        case 6: ck_assert_int_eq(chan_timer_reset(t[i], (state[i] / 2) * 60 * 1000 * MS), 0); break;
        case 3:
        case 5:
        case 7:
            ck_assert_int_eq(chan_timer_stop(t[i]), 1);
            ck_assert_int_eq(chan_tryrecv(chan_timer_chan(t[i]), NULL), -EAGAIN);
            break;
        case 8: ck_assert_int_eq(chan_timer_reset(t[i], 0), 0); break;
        default: ck_assert_int_eq(chan_timer_free(t[i]), 0); idx[ii] = idx[--left];
        }
    }

    for (int i = 0; i < scaled(1000, 200); i++) {
        chan_timer_t *m = chan_timer_make(3600 * 1000 * MS);
        for (int j = 0; j < 10; j++) {
            ck_assert_int_eq(chan_timer_stop(m), 1);
            ck_assert_int_eq(chan_timer_reset(m, -chan_now()), 0); /* back to the epoch */
        }
        ck_assert_int_eq(chan_tryrecv(chan_timer_chan(m), NULL), 0);
        ck_assert_int_eq(chan_timer_free(m), 0);
    }
    assert_no_leaks();
}
END_TEST

/* Go's AfterFunc runs f in a goroutine of its own; here fn runs on the timer thread and must not
 * block (chan_time.h). One that does anyway (TestIssue5745's spirit: a misbehaving callback must
 * not wedge the package) holds up the other timers, which fire after it returns, never early,
 * and holds up no call: make, stop, reset and free from other threads return while it blocks
 * (were they to wait for it, this test would hang: fn waits for the test). */
static void block_fn(void *p)
{
    _Atomic int *state = p;
    atomic_store(state, 1);
    while (atomic_load(state) != 2)
        sleep_ms(1);
}

START_TEST(timer_func_that_blocks)
{
    _Atomic int state = 0;
    chan_timer_t *f = chan_timer_make_func(0, block_fn, &state);
    for (int i = 0; i < 10000 && atomic_load(&state) == 0; i++)
        sleep_ms(1);
    int64_t start = chan_now();
    chan_timer_t *t = chan_timer_make(1 * MS);
    chan_timer_t *u = chan_timer_make(3600 * 1000 * MS);
    ck_assert_int_eq(chan_timer_reset(u, 2 * MS), 1);
    ck_assert_int_eq(chan_timer_stop(u), 1);
    ck_assert_int_eq(chan_timer_free(u), 0);
    ck_assert_int_eq(chan_timer_stop(f), 0); /* running: not stopped */
    sleep_ms(20);
    ck_assert_int_eq(chan_tryrecv(chan_timer_chan(t), NULL), -EAGAIN); /* held up by fn */
    atomic_store(&state, 2);
    int64_t v;
    ck_assert_int_eq(chan_recv(chan_timer_chan(t), &v), 0);
    ck_assert_int_ge(v, start + 1 * MS);
    ck_assert_int_eq(chan_timer_free(t), 0);
    ck_assert_int_eq(chan_timer_free(f), 0);
    assert_no_leaks();
}
END_TEST

/* ---- Every arming accounted for ------------------------------------------------------------- */

/* Go 1.23's timers, counted: each arming of a one-shot timer (its make, and every reset) ends in
 * exactly one of two ways, a stop or reset that returns 1 (it undid that firing, or discarded its
 * unreceived value), or one receive of its value; for a func timer, a stop or reset that returns
 * 1, or one call of fn. A value received twice, a firing reported undone and delivered too, or
 * one lost breaks the count. One thread stops and resets at random (durations from the past to
 * 15 us: before, during and after the firing) and receives now and then, two threads block on
 * the channel meanwhile; after each stop nothing is there to take. */
struct arming_rx {
    chan_t *c;
    _Atomic int *stop;
    long got;
};

static void *arming_receiver(void *p)
{
    struct arming_rx *a = p;
    while (!atomic_load(a->stop))
        if (chan_recv_until(a->c, NULL, chan_now() + 2 * MS) == 0)
            a->got++;
    return NULL;
}

static void count_call(void *p) { atomic_fetch_add((_Atomic long *)p, 1); }

START_TEST(timer_every_arming_accounted_for)
{
    static _Atomic long calls;
    _Atomic int stop = 0;
    chan_timer_t *t = chan_timer_make(5 * CHAN_MICROSECOND);
    chan_timer_t *f = chan_timer_make_func(5 * CHAN_MICROSECOND, count_call, (void *)&calls);
    struct arming_rx rx[2] = {{.c = chan_timer_chan(t), .stop = &stop},
                              {.c = chan_timer_chan(t), .stop = &stop}};
    pthread_t th[2] = {spawn(arming_receiver, &rx[0]), spawn(arming_receiver, &rx[1])};
    long arms = 1, undone = 0, mine = 0, farms = 1, fundone = 0;
    uint64_t seed = 7;
    for (int i = 0; i < 100000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(seed >> 33);
        int64_t d = (int64_t)(r % 5) * 5 * CHAN_MICROSECOND - 5 * CHAN_MICROSECOND;
        int k;
        switch (r / 5 % 3) {
        case 0:
            ck_assert_int_ge(k = chan_timer_stop(t), 0);
            undone += k;
            ck_assert_int_eq(chan_tryrecv(chan_timer_chan(t), NULL), -EAGAIN); /* nothing stale */
            break;
        case 1:
            ck_assert_int_ge(k = chan_timer_reset(t, d), 0);
            undone += k;
            arms++;
            break;
        default:
            if (chan_tryrecv(chan_timer_chan(t), NULL) == 0)
                mine++;
        }
        if (r / 15 % 2) {
            ck_assert_int_ge(k = chan_timer_stop(f), 0);
            fundone += k;
        } else {
            ck_assert_int_ge(k = chan_timer_reset(f, d), 0);
            fundone += k;
            farms++;
        }
    }
    undone += chan_timer_stop(t);
    fundone += chan_timer_stop(f);
    atomic_store(&stop, 1);
    join(th[0]);
    join(th[1]);
    ck_assert_int_eq(chan_tryrecv(chan_timer_chan(t), NULL), -EAGAIN);
    ck_assert_int_eq(arms, undone + mine + rx[0].got + rx[1].got);
    /* A call of fn that a stop reported as not yet made (0) may still be on its way. */
    for (int i = 0; i < 10000 && atomic_load(&calls) < farms - fundone; i++)
        sleep_ms(1);
    ck_assert_int_eq(farms, fundone + atomic_load(&calls));
    ck_assert_int_eq(chan_timer_free(t), 0);
    ck_assert_int_eq(chan_timer_free(f), 0);
    assert_no_leaks();
}
END_TEST

/* Go's AfterFunc once f has started: Stop reports false (f runs to its end), Reset reports false
 * and schedules f again, a Stop after that reset reports true; a timer freed from another
 * thread while fn runs is not called again for an arming made before the free. */
struct running_fn {
    _Atomic int state; /* 1: fn entered; 2: fn may return; 3: it is returning */
    _Atomic int calls;
};

static void held_fn(void *p)
{
    struct running_fn *r = p;
    if (atomic_fetch_add(&r->calls, 1) == 0) {
        atomic_store(&r->state, 1);
        while (atomic_load(&r->state) != 2)
            sleep_ms(1);
        atomic_store(&r->state, 3); /* its last touch of r */
    }
}

START_TEST(timer_func_stop_reset_free_while_it_runs)
{
    static struct running_fn rs[2];
    for (int round = 0; round < 2; round++) {
        struct running_fn *r = &rs[round];
        chan_timer_t *t = chan_timer_make_func(0, held_fn, r);
        for (int i = 0; i < 10000 && atomic_load(&r->state) != 1; i++)
            sleep_ms(1);
        ck_assert_int_eq(atomic_load(&r->state), 1);
        ck_assert_int_eq(chan_timer_stop(t), 0); /* running: not stopped */
        ck_assert_int_eq(chan_timer_reset(t, 0), 0);
        if (round == 0) {
            ck_assert_int_eq(chan_timer_stop(t), 1); /* the new arming, undone */
            ck_assert_int_eq(chan_timer_reset(t, 1 * MS), 0);
            atomic_store(&r->state, 2);
            for (int i = 0; i < 10000 && atomic_load(&r->calls) < 2; i++)
                sleep_ms(1);
            ck_assert_int_eq(atomic_load(&r->calls), 2); /* fn again, for the reset */
            ck_assert_int_eq(chan_timer_stop(t), 0);
            ck_assert_int_eq(chan_timer_free(t), 0);
        } else {
            ck_assert_int_eq(chan_timer_free(t), 0); /* while fn runs, a reset pending */
            atomic_store(&r->state, 2);
            for (int i = 0; i < 10000 && atomic_load(&r->state) != 3; i++)
                sleep_ms(1);
            sleep_ms(30);
            ck_assert_int_eq(atomic_load(&r->calls), 1); /* freed: not called again */
        }
    }
    assert_no_leaks();
}
END_TEST

/* The value is the chan_now() of the firing, not of the receive (Go 1.23's TestAfterTimes: a
 * late receiver of After(10ms) gets a time near start + 10ms): a value that waited in the
 * channel is no later than the moment it was seen waiting. And a timer made with CHAN_FOREVER
 * (Go's NewTimer of the longest duration) is armed: stop reports 1. */
START_TEST(timer_value_is_the_firing_time)
{
    int64_t start = chan_now();
    chan_timer_t *t = chan_timer_make(1 * MS);
    wait_until_fired(chan_timer_chan(t));
    int64_t seen = chan_now();
    sleep_ms(20);
    int64_t v = 0;
    ck_assert_int_eq(chan_recv(chan_timer_chan(t), &v), 0);
    ck_assert_int_ge(v, start + 1 * MS);
    ck_assert_int_le(v, seen);
    ck_assert_int_eq(chan_timer_free(t), 0);

    t = chan_timer_make_until(CHAN_FOREVER);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    ck_assert_int_eq(chan_timer_stop(t), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
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
    ADD_TEST(s, timer_func_chain, 30);
    ADD_TEST(s, timer_after_queuing, 30);
    ADD_TEST(s, timers_from_many_threads, 120);
    ADD_TEST(s, timer_overflow_never, 30);
    ADD_TEST(s, timer_stopped_chan_receivers, 30);
    ADD_TEST(s, ticker_phase_and_reset, 30);
    ADD_TEST(s, ticker_teardown, 60);
    ADD_TEST(s, timer_chan_len_cap, 30);
    ADD_TEST(s, timers_selected_by_many_threads, 60);
    ADD_TEST(s, timers_select_fairness, 60);
    ADD_TEST(s, timer_resets_in_every_order, 30);
    ADD_TEST(s, timer_func_that_blocks, 30);
    ADD_TEST(s, timer_every_arming_accounted_for, 60);
    ADD_TEST(s, timer_func_stop_reset_free_while_it_runs, 30);
    ADD_TEST(s, timer_value_is_the_firing_time, 30);
    return run_suite(s);
}
