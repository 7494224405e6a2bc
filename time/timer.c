/* SPDX-License-Identifier: MIT */
/*
 * timer.c - timer channels (Go's time.Timer, time.Ticker, time.AfterFunc) on one timer thread.
 *
 * After Go's runtime/time.go, in the small: every armed timer sits in one binary min-heap of
 * deadlines; one thread, started by the first timer made, sleeps on a condition variable
 * (CLOCK_MONOTONIC) until the earliest deadline, fires what is due, and sleeps again. Nothing
 * polls: the thread is woken only at a deadline or when a new timer becomes the earliest.
 *
 * A reset is as cheap as Go's modtimer makes it: a queued timer moved later keeps its place and
 * only records its new deadline; the heap is put right when that timer reaches the top, as Go's
 * runtimer does for a timer marked timerModifiedLater. Stop still takes the timer out at once
 * (Go marks it deleted and cleans up later): with one lock there is no contention to save, and
 * the heap then holds only armed timers, which keeps every invariant below simple.
 *
 * Invariants:
 *  - One mutex, tq.mu, guards the heap, every timer's when/period/heap slot, and the firing. A
 *    timer is in the heap (heap_queued) exactly while it is armed and has not fired.
 *  - A queued timer's heap key (hn.when) is never later than its deadline (when); it is earlier
 *    only after a reset that moved the timer later (requeue). The timer thread fires the top
 *    only when its key is its deadline, and otherwise moves it down first; so nothing fires
 *    early, and no deadline comes before the time the thread sleeps until (the top's key, now
 *    its deadline). A reset to earlier than the key moves the timer up at once and wakes the
 *    thread if it became the top; a top reset later wakes it at its old key, for nothing.
 *    pending counts by deadline, not by key.
 *  - A channel timer fires by chan_trysend on its channel, which has room for one value, with
 *    tq.mu held; stop and reset drain that room with chan_tryrecv with tq.mu held (but for a
 *    queued one-shot timer's reset: its room was drained when it was armed, and it has not
 *    fired since). So once a stop or reset has returned, the channel holds nothing from before
 *    it and nothing from before it can arrive later (Go 1.23's timer channels). The send never
 *    blocks: a one-shot timer's channel is empty when it fires (drained at every rearm), and a
 *    ticker's tick that finds the room taken is dropped (Go's Ticker).
 *  - A one-shot channel timer armed with a deadline that has come already fires in the call that
 *    arms it, never entering the heap: its channel is ready when make or reset returns, as Go
 *    1.23's is. Func timers always fire on the timer thread.
 *  - The timer thread holds tq.mu for one firing (or one move of a timer reset later) at a time,
 *    and after each one hands it to any thread waiting for it (tq.waiting): a ticker whose
 *    period is shorter than a firing is due again at once, and glibc's mutex, which is not
 *    fair, would otherwise let the thread keep the lock from every stop, reset and make in the
 *    process.
 *  - Lock order: tq.mu, then a channel's lock (inside chan_trysend/chan_tryrecv/chan_free).
 *    Nothing in libchan takes tq.mu while holding a channel lock. A firing's unpark of a
 *    plugged-in scheduler's task waits until tq.mu is dropped (wakeups_hold, seam.h): that
 *    unpark may call a timer function.
 *  - A func timer's fn runs with tq.mu dropped, after the timer has left the heap: fn may stop,
 *    reset or free timers, its own included. The thread copies fn and arg out before dropping
 *    the lock and never touches the timer again.
 *  - The heap has a slot for every live timer (tq.live), reserved when the timer is made, so
 *    rearming never allocates and never fails for memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "chan_time.h"
#include "heap.h"
#include "seam.h"
#include "trace/hooks.h" /* the timer fire event of a trace; the role of its channels */

#define NSEC_PER_SEC 1000000000LL

struct chan_timer {
    int64_t when;        /* its deadline */
    struct heap_node hn; /* its key (hn.when <= when) and its slot in tq.heap while queued */
    int64_t period;      /* ticker: > 0; one-shot: 0 */
    chan_t *c;           /* the channel of a timer or ticker; NULL for a func timer */
    void (*fn)(void *);  /* func timer (Go's AfterFunc) */
    void *arg;
};

/* A ticker is a periodic timer; its own type keeps the two APIs apart at compile time. */
struct chan_ticker {
    struct chan_timer t;
};

/* The process-wide timer queue: the only global state of this file (see chan_time.h). */
static struct {
    pthread_mutex_t mu;
    _Atomic unsigned waiting; /* threads in tq_lock, not yet holding mu */
    bool handing_over;        /* the timer thread waits on cv for one of them; under mu */
    pthread_cond_t cv;        /* the timer thread sleeps here; CLOCK_MONOTONIC */
    struct heap heap;         /* the armed timers, by deadline */
    size_t live;              /* timers made and not freed: heap slots reserved */
    bool running;             /* the timer thread exists in this process */
    int init_err;             /* from the one-time set-up */
} tq = {.mu = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t tq_once = PTHREAD_ONCE_INIT;

/* ---- Set-up, and fork ---------------------------------------------------------------------- */

static int cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int e = pthread_condattr_init(&a);
    if (e)
        return -e;
    e = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!e)
        e = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return -e;
}

/* tq.mu, for every thread but the timer thread: counted in tq.waiting while it waits, so that
 * the timer thread lets it in between two firings (hand_over). */
static void tq_lock(void)
{
    atomic_fetch_add_explicit(&tq.waiting, 1, memory_order_relaxed);
    pthread_mutex_lock(&tq.mu);
    atomic_fetch_sub_explicit(&tq.waiting, 1, memory_order_relaxed);
    if (tq.handing_over) {
        tq.handing_over = false;
        pthread_cond_signal(&tq.cv); /* the timer thread takes the lock back after us */
    }
}

/* fork() from any thread: the child gets the heap in a consistent state (prepare takes the
 * lock), but not the timer thread: the next make or reset starts a new one. */
static void tq_prepare(void) { tq_lock(); }
static void tq_parent(void) { pthread_mutex_unlock(&tq.mu); }
static void tq_child(void)
{
    tq.running = false;
    atomic_store(&tq.waiting, 0);        /* the parent's other threads are not here to come */
    int e = cond_init_monotonic(&tq.cv); /* the old one may name the parent's sleeper */
    if (e)
        tq.init_err = e;
    pthread_mutex_unlock(&tq.mu);
}

static void tq_init(void)
{
    tq.init_err = cond_init_monotonic(&tq.cv);
    if (!tq.init_err)
        tq.init_err = -pthread_atfork(tq_prepare, tq_parent, tq_child);
}

/* Timers that will still fire: queued with a finite deadline, or being fired right now (out of
 * the heap, their send or function not yet done). Read without tq.mu by an in-tree scheduler's
 * deadlock check (sched/, through seam.h): a task waiting on a timer's channel is not
 * deadlocked. */
static _Atomic size_t pending;

size_t timers_pending(void) { return atomic_load(&pending); }

/* That scheduler is told when pending drops to zero: its deadlock condition may have become
 * true. fn runs on the thread that dropped it, with tq.mu held (seam.h says what it may do).
 * NULL: nobody is told. */
static void (*_Atomic drained_hook)(void);

void timers_set_drained_hook(void (*fn)(void)) { atomic_store(&drained_hook, fn); }

static void pending_done(void)
{
    if (atomic_fetch_sub(&pending, 1) == 1) {
        void (*fn)(void) = atomic_load(&drained_hook);
        if (fn)
            fn();
    }
}

/* ---- The queue: the heap (heap.h) of armed timers, tq.mu held ------------------------------ */

static struct chan_timer *timer_of(struct heap_node *n)
{
    return (struct chan_timer *)((char *)n - offsetof(struct chan_timer, hn));
}

/* Wakes the timer thread if t is now the earliest, so that it sleeps until t's deadline
 * instead of a later one. */
static void wake_if_first(struct chan_timer *t)
{
    if (heap_min(&tq.heap) == &t->hn)
        pthread_cond_signal(&tq.cv);
}

/* Queues t (not queued, a slot reserved for it) with its key at its deadline t->when. */
static void enqueue(struct chan_timer *t)
{
    if (t->when != CHAN_FOREVER)
        atomic_fetch_add(&pending, 1);
    t->hn.when = t->when;
    heap_push(&tq.heap, &t->hn);
    wake_if_first(t);
}

/* Takes t out. Removing the earliest needs no wake-up: the thread wakes at the old deadline,
 * finds nothing due, and sleeps until the new earliest. */
static void dequeue(struct chan_timer *t)
{
    if (t->when != CHAN_FOREVER)
        pending_done();
    heap_remove(&tq.heap, &t->hn);
}

/* Go's modtimer on a queued timer: t (queued) is to fire at when instead. A later deadline is
 * only recorded: t keeps its key, now earlier than its deadline, and the timer thread moves it
 * when it reaches the top (timer_main, as runtimer does for Go's timerModifiedLater). An
 * earlier one than the key moves t up at once, and wakes the thread if t is now the earliest:
 * the thread must not sleep past it. */
static void requeue(struct chan_timer *t, int64_t when)
{
    bool was = t->when != CHAN_FOREVER, is = when != CHAN_FOREVER;
    t->when = when;
    if (is && !was)
        atomic_fetch_add(&pending, 1);
    if (when < t->hn.when) {
        heap_update(&tq.heap, &t->hn, when);
        wake_if_first(t);
    }
    if (was && !is)
        pending_done(); /* it will not fire, whatever its key says */
}

/* Makes room for n timers; only when a timer is made. */
static int queue_reserve(size_t n)
{
    if (n <= tq.heap.cap)
        return 0;
    size_t cap = tq.heap.cap ? tq.heap.cap * 2 : 64;
    if (cap < n)
        cap = n;
    if (cap > SIZE_MAX / sizeof *tq.heap.a)
        return -ENOMEM;
    struct heap_node **a = chan_malloc(cap * sizeof *a);
    if (!a)
        return -ENOMEM;
    chan_mfree(heap_move(&tq.heap, a, cap));
    return 0;
}

/* ---- Firing ---------------------------------------------------------------------------------- */

/* Go's sendTime: the firing's chan_now() on t's channel (tq.mu held). Never blocks: -EAGAIN is
 * a ticker's tick dropped for a slow receiver. */
static void send_time(struct chan_timer *t, int64_t now)
{
    if (tracing(TF_EVENTS))
        trace_timer_fire(t->c);
    (void)chan_trysend(t->c, &now);
}

/* Arms t for when, now being chan_now() (tq.mu held): a one-shot channel timer already due fires
 * here, the rest go into the heap. */
static void arm(struct chan_timer *t, int64_t when, int64_t now)
{
    t->when = when;
    if (t->c && !t->period && when <= now)
        send_time(t, now);
    else
        enqueue(t);
}

/* ---- The timer thread ------------------------------------------------------------------------ */

/* The next deadline of a ticker that fired at now: the first one after now on its grid
 * (Go's t.when += t.period * (1 + -delta/t.period)), saturating at CHAN_FOREVER. */
static int64_t next_tick(int64_t when, int64_t period, int64_t now)
{
    int64_t n = now >= when ? 1 + (now - when) / period : 1;
    int64_t step, next;
    if (__builtin_mul_overflow(n, period, &step) || __builtin_add_overflow(when, step, &next))
        return CHAN_FOREVER;
    return next;
}

/* Between two firings (tq.mu held by the timer thread): if threads are waiting for tq.mu, waits
 * on tq.cv until one of them has taken it (tq_lock signals), rather than keep it. */
static void hand_over(void)
{
    if (atomic_load_explicit(&tq.waiting, memory_order_relaxed) == 0)
        return;
    tq.handing_over = true;
    while (tq.handing_over)
        pthread_cond_wait(&tq.cv, &tq.mu);
}

static void *timer_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&tq.mu);
    for (;;) {
        struct heap_node *first = heap_min(&tq.heap);
        if (!first) {
            pthread_cond_wait(&tq.cv, &tq.mu);
            continue;
        }
        struct chan_timer *t = timer_of(first);
        if (t->when != first->when) { /* reset later (requeue): its key moves now (runtimer) */
            heap_update(&tq.heap, first, t->when);
            hand_over(); /* a long run of these must not keep the lock from callers either */
            continue;
        }
        if (t->when == CHAN_FOREVER) { /* and so is every other timer's */
            pthread_cond_wait(&tq.cv, &tq.mu);
            continue;
        }
        int64_t now = chan_now();
        if (t->when > now) {
            struct timespec ts = {(time_t)(t->when / NSEC_PER_SEC), (long)(t->when % NSEC_PER_SEC)};
            pthread_cond_timedwait(&tq.cv, &tq.mu, &ts);
            continue; /* due, woken for an earlier timer, or spurious: look again */
        }
        atomic_fetch_add(&pending, 1); /* still pending until its send or fn is done */
        if (t->fn) {
            dequeue(t);
            void (*fn)(void *) = t->fn;
            void *arg = t->arg;
            pthread_mutex_unlock(&tq.mu);
            fn(arg); /* t may be freed from here on */
            pthread_mutex_lock(&tq.mu);
        } else {
            /* The receiver's unpark waits until tq.mu is dropped (seam.h): it may call a
             * function of this file. Before pending_done, so that a scheduler's deadlock check
             * never finds the task parked with nothing pending. */
            wakeups_hold();
            if (t->period) {
                /* A ticker stays at the top with its next deadline and moves down from there
                 * (Go's runOneTimer): due again at once if its period is shorter than a
                 * firing. */
                send_time(t, now);
                t->when = next_tick(t->when, t->period, now);
                if (t->when == CHAN_FOREVER)
                    pending_done(); /* saturated: it will not fire again */
                heap_update(&tq.heap, first, t->when);
            } else {
                dequeue(t);
                send_time(t, now);
            }
            pthread_mutex_unlock(&tq.mu);
            wakeups_release();
            pthread_mutex_lock(&tq.mu);
        }
        pending_done();
        hand_over();
    }
    return NULL;
}

/* Starts the timer thread if this process has none (tq.mu held): one of libchan's own threads
 * (daemon_start, seam.h), which runs no handler meant for the program's threads. */
static int ensure_thread(void)
{
    if (tq.running)
        return 0;
    int e = daemon_start(timer_main);
    if (e)
        return e;
    tq.running = true;
    return 0;
}

/* ---- Making, stopping, resetting, freeing ---------------------------------------------------- */

/* now + d, saturating; d <= 0 is now. */
static int64_t deadline_after(int64_t now, int64_t d)
{
    if (d <= 0)
        return now;
    return d > CHAN_FOREVER - now ? CHAN_FOREVER : now + d;
}

/* A new timer, armed for when (when_is_duration: when is a duration from now, measured under
 * the lock). NULL with errno. */
static struct chan_timer *timer_new(int64_t when, bool when_is_duration, int64_t period,
                                    bool with_chan, void (*fn)(void *), void *arg)
{
    pthread_once(&tq_once, tq_init);
    if (tq.init_err) {
        errno = -tq.init_err;
        return NULL;
    }
    struct chan_timer *t = chan_malloc(sizeof *t);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    *t = (struct chan_timer){.period = period, .fn = fn, .arg = arg};
    heap_node_init(&t->hn);
    if (with_chan && !(t->c = timerchan_make())) {
        chan_mfree(t);
        errno = ENOMEM;
        return NULL;
    }
    if (t->c && tracing(TF_REGISTRY | TF_EVENTS))
        trace_chan_role(t->c, ROLE_TIMER); /* a leak report and a trace say "timer" */
    tq_lock();
    int e = queue_reserve(tq.live + 1);
    if (!e)
        e = ensure_thread();
    if (e) {
        pthread_mutex_unlock(&tq.mu);
        chan_free(t->c);
        chan_mfree(t);
        errno = -e;
        return NULL;
    }
    tq.live++;
    int64_t now = chan_now();
    arm(t, when_is_duration ? deadline_after(now, when) : when, now); /* nobody to wake yet */
    pthread_mutex_unlock(&tq.mu);
    return t;
}

/* Disarms t and discards a value sent and not received (tq.mu held): 1 if either undid a
 * firing the owner had not yet seen, else 0. Go 1.23's stop with timerchandrain. */
static int stop_locked(struct chan_timer *t)
{
    int r = 0;
    if (heap_queued(&t->hn)) {
        dequeue(t);
        r = 1;
    }
    if (t->c && chan_tryrecv(t->c, NULL) == 0)
        r = 1;
    return r;
}

static int timer_stop(struct chan_timer *t)
{
    tq_lock();
    int r = stop_locked(t);
    pthread_mutex_unlock(&tq.mu);
    return r;
}

/* Rearms t to fire d from now with the given period; nothing changes on error. */
static int timer_rearm(struct chan_timer *t, int64_t d, int64_t period)
{
    tq_lock();
    int e = ensure_thread(); /* only ever starts one after fork() */
    if (e) {
        pthread_mutex_unlock(&tq.mu);
        return e;
    }
    int64_t now = chan_now();
    int64_t when = deadline_after(now, d);
    int r;
    wakeups_hold(); /* a timer already due fires here: its receiver's unpark after the unlock */
    if (heap_queued(&t->hn) && !(t->c && !period && when <= now)) {
        /* Go's modtimer: a queued timer that is not to fire in this call stays queued, with
         * its new deadline. Only a ticker's channel can hold a value while it is queued: a
         * one-shot timer's was drained when it was armed, and it has not fired since. */
        r = 1;
        if (t->period)
            (void)chan_tryrecv(t->c, NULL);
        t->period = period;
        requeue(t, when);
    } else {
        r = stop_locked(t);
        t->period = period;
        arm(t, when, now);
    }
    pthread_mutex_unlock(&tq.mu);
    wakeups_release();
    return r;
}

static int timer_free(struct chan_timer *t)
{
    tq_lock();
    if (heap_queued(&t->hn))
        dequeue(t);
    /* Out of the heap, under the lock: the thread can no longer send on t->c. */
    int e = chan_free(t->c);
    if (e) {
        pthread_mutex_unlock(&tq.mu);
        return e; /* a receiver is still blocked on the channel: stopped, not freed */
    }
    tq.live--;
    pthread_mutex_unlock(&tq.mu);
    chan_mfree(t);
    return 0;
}

/* ---- Timers ---------------------------------------------------------------------------------- */

chan_timer_t *chan_timer_make(int64_t d) { return timer_new(d, true, 0, true, NULL, NULL); }

chan_timer_t *chan_timer_make_until(int64_t deadline)
{
    return timer_new(deadline, false, 0, true, NULL, NULL);
}

chan_timer_t *chan_timer_make_func(int64_t d, void (*fn)(void *), void *arg)
{
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    return timer_new(d, true, 0, false, fn, arg);
}

chan_t *chan_timer_chan(const chan_timer_t *t) { return t ? t->c : NULL; }

int chan_timer_stop(chan_timer_t *t) { return t ? timer_stop(t) : -EINVAL; }

int chan_timer_reset(chan_timer_t *t, int64_t d) { return t ? timer_rearm(t, d, 0) : -EINVAL; }

int chan_timer_free(chan_timer_t *t) { return t ? timer_free(t) : 0; }

/* ---- Tickers --------------------------------------------------------------------------------- */

chan_ticker_t *chan_ticker_make(int64_t period)
{
    if (period <= 0) {
        errno = EINVAL;
        return NULL;
    }
    /* The first tick is one period away; the same allocation shape as a timer. */
    struct chan_ticker *k = (struct chan_ticker *)timer_new(period, true, period, true, NULL, NULL);
    return k;
}

chan_t *chan_ticker_chan(const chan_ticker_t *k) { return k ? k->t.c : NULL; }

int chan_ticker_stop(chan_ticker_t *k) { return k ? timer_stop(&k->t) : -EINVAL; }

int chan_ticker_reset(chan_ticker_t *k, int64_t period)
{
    if (!k || period <= 0)
        return -EINVAL;
    return timer_rearm(&k->t, period, period);
}

int chan_ticker_free(chan_ticker_t *k) { return k ? timer_free(&k->t) : 0; }
