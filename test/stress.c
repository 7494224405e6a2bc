/* SPDX-License-Identifier: MIT */
/*
 * stress.c - a soak test: threads run random mixes of send, recv, their try and until forms,
 * select (blocking, try, until; 1 to 16 cases, NULL cases, the same channel twice) and close,
 * on unbuffered and buffered channels, with conservation accounting. Not a Check suite: a
 * plain program, run by `make stress DURATION=N THREADS=N` and briefly by `make test`.
 *
 *   build/MODE/test/stress [-d seconds] [-t threads] [-e epoch_ms] [-s seed] [-q] [-w secs] [-S]
 *                          [-L]
 *   build/MODE/test/stress_mpg ... [-G] [-P procs] [-D]   (the same program with libchan-mpg)
 *
 * -S: the odd-numbered workers block through a plugged-in struct chan_sched that checks the
 * promises chan.h makes to schedulers (see task_park below), sharing the channels with plain
 * threads.
 *
 * -G (stress_mpg only, built from this file with -DSTRESS_MPG and libchan-mpg): three workers
 * in four are goroutines of libchan-mpg on -P Ps (default 2, up to 1024), the rest plain
 * threads, all on the same channels. Each epoch's Gs are spawned afresh and joined with a
 * chan_wg_t; now and then a G yields, sleeps on the scheduler's timer or makes a system call
 * (syscall_enter/exit around a short sleep), so that stealing, runnext, sysmon's retakes and
 * the parking of Gs all meet the channel operations. At the end chan_mpg_wait must find every G
 * returned and chan_mpg_stop must succeed. Group and WaitGroup tasks (-L) are then Gs or
 * threads, mixed.
 *
 * -D (with -G): each epoch, while the workers run, three Gs deadlock on purpose (a cycle of
 * two, and one blocked on a channel only it holds), and chan_leak_check must name exactly them
 * ("Partial deadlocks under load" below).
 *
 * -L: the layers around the core join the mix (see "Layers" below): a timer and a ticker reset,
 * stopped and received from concurrently; a tree of contexts cancelled and timing out while
 * selects wait on their done channels; groups (errgroup) and WaitGroups of short tasks; a
 * WaitGroup reused while waiters leave it, timers freed while receivers are blocked on them
 * and while they fire, and group limits changed while tasks run.
 *
 * -w: the watchdog's limit (default 120 s): an epoch (normally 50 ms, ended by closing every
 * channel) still running that long after it began is reported, with the operation each worker
 * is inside, as a lost wake-up, and the program aborts instead of hanging.
 *
 * The run is a sequence of epochs. In each, the main thread makes a fresh set of channels
 * (caps 0, 0, 1, 4, 16, and a signal-only channel of elemsize 0 with cap 2), lets the workers
 * loose on them, and ends the epoch by closing every channel (which releases any operation
 * still blocked) when the epoch's time is up or when no worker has made progress for a while
 * (all of them blocked). Workers close channels at random too. After the workers have stopped,
 * the main thread drains every channel, checks the books, and frees the channels (chan_free
 * must say 0: nothing may still be queued).
 *
 * What is checked:
 *   - Conservation: every value carries (thread, sequence, channel, epoch, checksum). A value
 *     whose send returned 0 (or whose select case was chosen with ok) is received exactly once,
 *     on the channel it was sent to, in the epoch it was sent in, intact; a value whose send
 *     failed (-EPIPE, -EAGAIN, -ETIMEDOUT, or a select case not chosen) is never received;
 *     nothing is received that no one sent. For the signal-only channel, counts: successful
 *     sends = successful receives + what is drained.
 *   - Close ordering (what a thread can observe): once a chan_close(c) has returned, or any
 *     send on c has reported closed, an operation that starts later never sends on c (-EPIPE;
 *     select: the case is ready and, chosen, has ok = false); once any receive on c has
 *     reported closed-and-drained, a receive that starts later never returns a value, and
 *     never reports "not ready" either (a closed channel is always ready); exactly one
 *     chan_close per channel returns 0.
 *   - With -L, the promises of chan_timer(3), chan_ctx(3), chan_wg(3) and chan_group(3) listed
 *     at "Layers" below.
 *   - FIFO per sender on buffered channels is not checked here (test_chan covers it); neither
 *     is timing. The program never asserts anything about speed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "soak.h"
#include "sync/chan_sync.h"
#include "time/chan_time.h"
#ifdef STRESS_MPG
#include "sched/chan_sched_mpg.h"
#include "trace/chan_leak.h"
#include "trace/chan_trace.h"
#endif

/* White-box probe (chan.c, linked from the static library): sudogs queued on c now. */
size_t hchan_waiting(chan_t *c, enum chan_dir dir);

#define NCH 6          /* channels per epoch */
#define SIG 5          /* the signal-only channel (elemsize 0) */
#define MAXT 64        /* threads at most */
#define PER (1u << 18) /* value ids per thread per epoch */
#define MAXCASES 16

static const size_t caps[NCH] = {0, 0, 1, 4, 16, 2};

struct val {
    uint64_t id; /* thread << 32 | seq */
    uint32_t ch, epoch;
    uint64_t check;
};

enum { UNUSED = 0, PENDING = 1, SENT = 2, FAILED = 3 };

/* ---- Shared state -------------------------------------------------------------------------- */

static chan_t *chans[NCH];
static _Atomic uint32_t epoch;
static atomic_int stop;
static atomic_int closed_seen[NCH];  /* a close returned, or a send reported closed */
static atomic_int drained_seen[NCH]; /* a receive reported closed (and drained) */
static atomic_int close_zero[NCH];   /* chan_close calls that returned 0 this epoch */
static atomic_ulong sig_sent, sig_recvd;
static atomic_ulong violations;
static pthread_barrier_t bar;
static int nthreads = 4;
static bool quiet;

struct worker {
    int id;
    uint64_t rng;
    uint32_t seq;           /* next value id this epoch */
    _Atomic uint8_t *state; /* [PER]: UNUSED, PENDING, SENT, FAILED */
    _Atomic uint8_t *recvd; /* [PER]: times received */
    _Alignas(64) atomic_ulong progress;
    atomic_int current; /* the kind of operation under way, -1 between them */
    unsigned long ops[32];
    unsigned long values_ok;
};

static struct worker workers[MAXT];

enum {
    K_SEND,
    K_RECV,
    K_TRYSEND,
    K_TRYRECV,
    K_SEND_UNTIL,
    K_RECV_UNTIL,
    K_SELECT,
    K_TRYSELECT,
    K_SELECT_UNTIL,
    K_CLOSE,
    K_LEN,
    /* -L */
    K_TIMER_RESET,
    K_TIMER_STOP,
    K_TIME_RECV,
    K_TICKER_RESET,
    K_CTX_WAIT,
    K_CTX_ERR,
    K_CTX_CANCEL,
    K_CTX_CHILD,
    K_GROUP,
    K_WG,
    K_WG_REUSE,
    K_TIMER_FREE,
    K_GROUP_LIMIT,
    K_NKINDS
};
static const char *kind_names[K_NKINDS] = {
    "send",       "recv",        "trysend",    "tryrecv",           "send_until",
    "recv_until", "select",      "tryselect",  "select_until",      "close",
    "len/cap",    "timer_reset", "timer_stop", "timer/ticker recv", "ticker_reset/stop",
    "ctx_wait",   "ctx_err",     "ctx_cancel", "ctx_child",         "group",
    "waitgroup",  "wg_reuse",    "timer_free", "group_limit"};

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "stress: VIOLATION: " __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                                       \
        if (atomic_fetch_add(&violations, 1) > 20)                                                 \
            abort();                                                                               \
    } while (0)

static uint64_t rnd(struct worker *w) { return soak_next(&w->rng); }

static uint64_t checksum(const struct val *v)
{
    return mix(v->id ^ ((uint64_t)v->ch << 40) ^ ((uint64_t)v->epoch << 20) ^ 0x5bd1e995);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- Values ---------------------------------------------------------------------------------- */

/* A fresh value for channel ch, marked PENDING before it is offered; false when out of ids. */
static bool new_value(struct worker *w, int ch, struct val *v)
{
    memset(v, 0, sizeof *v);
    if (ch == SIG)
        return true;
    if (w->seq >= PER)
        return false;
    uint32_t s = w->seq++;
    v->id = (uint64_t)w->id << 32 | s;
    v->ch = (uint32_t)ch;
    v->epoch = atomic_load_explicit(&epoch, memory_order_relaxed);
    v->check = checksum(v);
    atomic_store_explicit(&w->state[s], PENDING, memory_order_relaxed);
    return true;
}

static void value_done(struct worker *w, int ch, const struct val *v, bool sent)
{
    if (ch == SIG) {
        if (sent)
            atomic_fetch_add_explicit(&sig_sent, 1, memory_order_relaxed);
        return;
    }
    uint32_t s = (uint32_t)v->id;
    atomic_store_explicit(&w->state[s], sent ? SENT : FAILED, memory_order_relaxed);
}

/* A value received from channel ch. */
static void got_value(int ch, const struct val *v)
{
    if (ch == SIG) {
        atomic_fetch_add_explicit(&sig_recvd, 1, memory_order_relaxed);
        return;
    }
    uint32_t t = (uint32_t)(v->id >> 32), s = (uint32_t)v->id;
    if (v->check != checksum(v) || t >= (uint32_t)nthreads || s >= PER) {
        FAIL("corrupt value on channel %d: id %#llx ch %u epoch %u", ch, (unsigned long long)v->id,
             v->ch, v->epoch);
        return;
    }
    if ((int)v->ch != ch || v->epoch != atomic_load(&epoch))
        FAIL("value %#llx sent on channel %u epoch %u received on channel %d epoch %u",
             (unsigned long long)v->id, v->ch, v->epoch, ch, atomic_load(&epoch));
    uint8_t st = atomic_load_explicit(&workers[t].state[s], memory_order_relaxed);
    if (st == UNUSED || st == FAILED)
        FAIL("value %#llx received but %s", (unsigned long long)v->id,
             st == UNUSED ? "never sent" : "its send had failed");
    if (atomic_fetch_add_explicit(&workers[t].recvd[s], 1, memory_order_relaxed) != 0)
        FAIL("value %#llx received twice", (unsigned long long)v->id);
}

/* ---- Observations about closing ---------------------------------------------------------- */

static void check_send(int ch, bool was_closed, int r, const char *op)
{
    if (r == -EPIPE)
        atomic_store(&closed_seen[ch], 1);
    else if (was_closed)
        FAIL("%s on channel %d returned %d after the channel was seen closed", op, ch, r);
}

static void check_recv(int ch, bool was_drained, int r, const char *op)
{
    if (r == -EPIPE)
        atomic_store(&drained_seen[ch], 1);
    else if (was_drained)
        FAIL("%s on channel %d returned %d after a receive reported it closed and drained", op, ch,
             r);
}

static int64_t deadline_for(struct worker *w)
{
    uint64_t r = rnd(w);
    switch (r % 4) {
    case 0: return (int64_t)(r >> 8) % 2 ? 0 : INT64_MIN;      /* passed: the try form */
    case 1: return chan_now() + (int64_t)((r >> 8) % 20000);   /* < 20 us */
    default: return chan_now() + (int64_t)((r >> 8) % 400000); /* < 0.4 ms */
    }
}

/* ---- The operations -------------------------------------------------------------------------- */

static void op_send(struct worker *w, int kind, int ch)
{
    struct val v;
    if (!new_value(w, ch, &v))
        return;
    bool closed = atomic_load(&closed_seen[ch]);
    chan_t *c = chans[ch];
    const void *e = ch == SIG && (rnd(w) & 1) ? NULL : &v;
    int r = kind == K_SEND      ? chan_send(c, e)
            : kind == K_TRYSEND ? chan_trysend(c, e)
                                : chan_send_until(c, e, deadline_for(w));
    if (r != 0 && r != -EPIPE && !(kind == K_TRYSEND && r == -EAGAIN) &&
        !(kind == K_SEND_UNTIL && r == -ETIMEDOUT))
        FAIL("%s returned %d", kind_names[kind], r);
    value_done(w, ch, &v, r == 0);
    check_send(ch, closed, r, kind_names[kind]);
}

static void op_recv(struct worker *w, int kind, int ch)
{
    struct val v;
    memset(&v, 0xAA, sizeof v);
    bool drained = atomic_load(&drained_seen[ch]);
    chan_t *c = chans[ch];
    /* elem NULL discards the value: only on the signal-only channel, where counts suffice */
    void *e = ch == SIG && (rnd(w) & 1) ? NULL : (void *)&v;
    int r = kind == K_RECV      ? chan_recv(c, e)
            : kind == K_TRYRECV ? chan_tryrecv(c, e)
                                : chan_recv_until(c, e, deadline_for(w));
    if (r != 0 && r != -EPIPE && !(kind == K_TRYRECV && r == -EAGAIN) &&
        !(kind == K_RECV_UNTIL && r == -ETIMEDOUT))
        FAIL("%s returned %d", kind_names[kind], r);
    if (r == 0)
        got_value(ch, &v);
    if (r == -EPIPE && e && ch != SIG) {
        static const struct val zero;
        if (memcmp(&v, &zero, sizeof v) != 0)
            FAIL("%s reported closed without zeroing *elem", kind_names[kind]);
    }
    check_recv(ch, drained, r, kind_names[kind]);
}

static void op_select(struct worker *w, int kind)
{
    struct chan_case cs[MAXCASES];
    struct val vals[MAXCASES];
    int chs[MAXCASES];
    bool flag[MAXCASES];
    size_t n = rnd(w) % 24 == 0 ? 9 + rnd(w) % (MAXCASES - 8) : 1 + rnd(w) % 6;
    bool any_ready_known = false;
    for (size_t k = 0; k < n; k++) {
        uint64_t r = rnd(w);
        int ch = (int)(r % NCH);
        bool send = (r >> 8) & 1;
        bool nil = k > 0 && (r >> 9) % 8 == 0; /* case 0 always has a channel */
        chs[k] = nil ? -1 : ch;
        memset(&vals[k], 0xAA, sizeof vals[k]);
        if (send && !nil && !new_value(w, ch, &vals[k]))
            nil = true, chs[k] = -1; /* out of ids: make it a nil case */
        cs[k] = (struct chan_case){.chan = nil ? NULL : chans[ch],
                                   .elem = &vals[k],
                                   .dir = send ? CHAN_SEND : CHAN_RECV,
                                   .ok = true};
        if (ch == SIG && (r >> 12) & 1)
            cs[k].elem = NULL;
        flag[k] = !nil && (send ? atomic_load(&closed_seen[ch]) : atomic_load(&drained_seen[ch]));
        any_ready_known |= flag[k];
    }
    int r = kind == K_SELECT      ? chan_select(cs, n)
            : kind == K_TRYSELECT ? chan_tryselect(cs, n)
                                  : chan_select_until(cs, n, deadline_for(w));
    if (r < 0) {
        if (!(kind == K_TRYSELECT && r == -EAGAIN) && !(kind == K_SELECT_UNTIL && r == -ETIMEDOUT))
            FAIL("%s of %zu cases returned %d", kind_names[kind], n, r);
        if (any_ready_known)
            FAIL("%s reported not ready with a case on a channel seen closed", kind_names[kind]);
    } else if ((size_t)r >= n || chs[r] < 0) {
        FAIL("%s chose case %d of %zu (a nil case or out of range)", kind_names[kind], r, n);
        r = -1;
    }
    for (size_t k = 0; k < n; k++) {
        if (chs[k] < 0)
            continue;
        bool chosen = (int)k == r;
        if (!chosen && !cs[k].ok)
            FAIL("%s wrote ok of a case it did not choose", kind_names[kind]);
        if (cs[k].dir == CHAN_SEND) {
            value_done(w, chs[k], &vals[k], chosen && cs[k].ok);
            if (chosen)
                check_send(chs[k], flag[k], cs[k].ok ? 0 : -EPIPE, kind_names[kind]);
        } else if (chosen) {
            if (cs[k].ok) {
                got_value(chs[k], &vals[k]);
            } else if (cs[k].elem && chs[k] != SIG) { /* elemsize 0: elem ignored */
                static const struct val zero;
                if (memcmp(&vals[k], &zero, sizeof vals[k]) != 0)
                    FAIL("%s recv case closed without zeroing *elem", kind_names[kind]);
            }
            check_recv(chs[k], flag[k], cs[k].ok ? 0 : -EPIPE, kind_names[kind]);
        }
    }
}

static void op_close(int ch)
{
    bool closed = atomic_load(&closed_seen[ch]);
    int r = chan_close(chans[ch]);
    if (r == 0)
        atomic_fetch_add(&close_zero[ch], 1);
    else if (r != -EPIPE)
        FAIL("chan_close returned %d", r);
    if (r == 0 && closed)
        FAIL("chan_close returned 0 on a channel already seen closed");
    atomic_store(&closed_seen[ch], 1);
}

/* ---- Layers (-L): timers, a ticker, contexts, groups and WaitGroups ----------------------------
 *
 * Each epoch the main thread makes a timer (first firing soon), a func timer, a ticker of a
 * short period and a tree of contexts: 0 = with_cancel(background), 1 = with_deadline(0,
 * somewhere in or after the epoch), 2 = with_value(1), 3 = with_cancel(1). Workers reset, stop
 * and receive from the timers and the ticker, wait on the contexts' done channels (alone or
 * in selects with the epoch's channels), cancel them, make and free children of them, and run
 * groups and WaitGroups of short tasks. The epoch ends by cancelling context 0 (waking every
 * waiter on a done channel) before the channels are closed. The promises checked, by the
 * function that checks each:
 *   got_timer_value  chan_timer(3): a value is never from the future; no receive that starts
 *                    after a stop or reset has returned gets a value fired before that call
 *                    began (Go 1.23); layers_end: each arming ends exactly once, received or
 *                    reported by the stop/reset (1) that ended it: armings = values received +
 *                    stops and resets that returned 1 (so no firing is received twice or lost),
 *                    and after the last stop the channel is empty (chan_len and chan_cap 0).
 *   layers_end       a func timer (AfterFunc), reset and stopped by workers and by its own fn:
 *                    each arming ends exactly once, in a call of fn or in a stop/reset that
 *                    returned 1 (chan_timer_stop(3): 1 means fn will not be called for it).
 *   got_tick         chan_ticker(3): ticks received one after another are increasing (a tick
 *                    is received once); no tick from before a stop or reset that has returned.
 *   check_ctx_err    chan_ctx(3): once done is closed, err is -ECANCELED or -ETIMEDOUT and never
 *                    changes (the value context shares its parent's); -ETIMEDOUT only under the
 *                    deadline and not before it; -ECANCELED only after a cancel of the context
 *                    or an ancestor began; op_ctx_err: err non-zero means done is closed;
 *                    op_ctx_cancel: when cancel returns the whole subtree is cancelled;
 *                    op_ctx_child: a child of a cancelled context is born with its error, its
 *                    deadline is no later than its parent's; free returns 0. Every waiter is
 *                    woken: a chan_recv on done with no deadline ends only by the cancel (the
 *                    watchdog reports a lost one).
 *   op_group         chan_group(3): wait returns only when every started task has returned,
 *                    with the one failing task's error (0 if it did not start), the group's
 *                    context then cancelled; the failure cancels the context and wakes the
 *                    other tasks, blocked on its done channel; free returns 0.
 *   op_wg            chan_wg(3): a wait (chan_wg_wait, its _until form, or a select on
 *                    chan_wg_chan) returns only when every task has called done; a done past
 *                    zero is -EINVAL; free returns 0 once the tasks' calls have returned.
 *   op_wg_reuse, op_timer_free, op_group_limit: below, where they are.
 */
#define NCTX 4
static const int ctx_parent[NCTX] = {-1, 0, 1, 1};
static const int ctx_slot[NCTX] = {0, 1, 1, 3}; /* whose err a context's is (2 is 1's value) */
static bool use_layers;
static chan_timer_t *tm;
static chan_timer_t *_Atomic ftm; /* a func timer (Go's AfterFunc), calling ftm_fn; NULL while it
                                     is being made (its fn may run before make returns) */
static chan_ticker_t *tk;
static chan_ctx_t *ctxs[NCTX];
static int64_t ctx_deadline; /* context 1's, and so 2's and 3's */
static atomic_ulong tm_arms, tm_ones, tm_recvd, tm_recvd_total, tk_recvd, ctx_dones, tasks_run;
static atomic_ulong ftm_arms, ftm_ones, ftm_calls, ftm_calls_total;
static _Atomic int64_t tm_floor, tk_floor, tk_last;
static atomic_int ctx_cancelling[NCTX]; /* a chan_ctx_cancel of this context has begun */
static atomic_int ctx_err_seen[NCTX];   /* the first non-zero err seen, by ctx_slot */
static int key_obj;
static bool use_mpg; /* -G */

static void max64(_Atomic int64_t *a, int64_t v)
{
    int64_t cur = atomic_load(a);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v)) {
    }
}

static void got_timer_value(int64_t v, int64_t floor, const char *op)
{
    atomic_fetch_add(&tm_recvd, 1);
    atomic_fetch_add_explicit(&tm_recvd_total, 1, memory_order_relaxed);
    if (v < floor)
        FAIL("%s: the timer's value %lld is from before a stop/reset (begun at %lld) that had "
             "returned when the receive began",
             op, (long long)v, (long long)floor);
    if (v > chan_now())
        FAIL("%s: the timer's value %lld is in the future", op, (long long)v);
}

static void got_tick(int64_t v, int64_t floor, int64_t last, const char *op)
{
    atomic_fetch_add(&tk_recvd, 1);
    if (v <= last)
        FAIL("%s: tick %lld is not after tick %lld, received before this receive began", op,
             (long long)v, (long long)last);
    if (v < floor)
        FAIL("%s: tick %lld is from before a stop/reset (begun at %lld) that had returned", op,
             (long long)v, (long long)floor);
    if (v > chan_now())
        FAIL("%s: tick %lld is in the future", op, (long long)v);
    max64(&tk_last, v);
}

/* The func timer's fn, on the timer thread: counts the call; every other call stops its own
 * timer (allowed from fn: 0 unless a reset has rearmed it meanwhile, which that 1 ends). */
static void ftm_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&ftm_calls_total, 1, memory_order_relaxed);
    chan_timer_t *self = atomic_load(&ftm);
    if (self && atomic_load(&ftm_calls) % 2) {
        int r = chan_timer_stop(self);
        if (r == 1)
            atomic_fetch_add(&ftm_ones, 1);
        else if (r != 0)
            FAIL("chan_timer_stop of a func timer from its fn returned %d", r);
    }
    atomic_fetch_add(&ftm_calls, 1); /* the last touch: layers_end frees the timer after it */
}

static bool cancel_begun(int i)
{
    for (int j = i; j >= 0; j = ctx_parent[j])
        if (atomic_load(&ctx_cancelling[j]))
            return true;
    return false;
}

/* Context i's done channel was seen closed, or its err non-zero: err is e. */
static void check_ctx_err(int i, int e, const char *op)
{
    atomic_fetch_add_explicit(&ctx_dones, 1, memory_order_relaxed);
    if (e != -ECANCELED && e != -ETIMEDOUT) {
        FAIL("%s: context %d is done but its err is %d", op, i, e);
        return;
    }
    int first = 0;
    if (!atomic_compare_exchange_strong(&ctx_err_seen[ctx_slot[i]], &first, e) && first != e)
        FAIL("%s: context %d's err is %d, earlier %d (it never changes)", op, i, e, first);
    if (e == -ETIMEDOUT && (i == 0 || chan_now() < ctx_deadline))
        FAIL("%s: context %d timed out %s", op, i, i == 0 ? "without a deadline" : "early");
    if (e == -ECANCELED && !cancel_begun(i))
        FAIL("%s: context %d says cancelled, but no cancel of it or an ancestor has begun", op, i);
}

static void op_timer_reset(struct worker *w, int kind)
{
    int64_t t0 = chan_now();
    uint64_t r = rnd(w);
    int res;
    if (kind == K_TICKER_RESET) {
        res = r % 4 ? chan_ticker_reset(tk, 50000 + (int64_t)((r >> 8) % 500000))
                    : chan_ticker_stop(tk);
        if (res != 0 && res != 1)
            FAIL("chan_ticker_reset/stop returned %d", res);
        max64(&tk_floor, t0);
        return;
    }
    if ((r >> 40) % 3 == 0) { /* the func timer */
        res = kind == K_TIMER_RESET ? chan_timer_reset(ftm, (int64_t)((r >> 8) % 400000) - 50000)
                                    : chan_timer_stop(ftm);
        if (res != 0 && res != 1)
            FAIL("%s of a func timer returned %d", kind_names[kind], res);
        if (res == 1)
            atomic_fetch_add(&ftm_ones, 1);
        if (kind == K_TIMER_RESET && res >= 0)
            atomic_fetch_add(&ftm_arms, 1);
        return;
    }
    res = kind == K_TIMER_RESET ? chan_timer_reset(tm, (int64_t)((r >> 8) % 400000) - 50000)
                                : chan_timer_stop(tm);
    if (res != 0 && res != 1)
        FAIL("%s returned %d", kind_names[kind], res);
    if (res == 1)
        atomic_fetch_add(&tm_ones, 1);
    if (kind == K_TIMER_RESET && res >= 0)
        atomic_fetch_add(&tm_arms, 1);
    max64(&tm_floor, t0);
}

/* Receives from the timer or the ticker alone, or selects over both, a context's done channel
 * and a receive on one of the epoch's channels. */
static void op_time_recv(struct worker *w)
{
    int64_t tmf = atomic_load(&tm_floor), tkf = atomic_load(&tk_floor);
    int64_t tkl = atomic_load(&tk_last);
    uint64_t r = rnd(w);
    int64_t tv = -1, kv = -1;
    if (r % 3 == 0) {
        bool ticker = (r >> 8) & 1;
        chan_t *c = ticker ? chan_ticker_chan(tk) : chan_timer_chan(tm);
        int64_t *v = ticker ? &kv : &tv;
        int res = (r >> 9) & 1 ? chan_tryrecv(c, v) : chan_recv_until(c, v, deadline_for(w));
        if (res == 0)
            ticker ? got_tick(kv, tkf, tkl, "recv") : got_timer_value(tv, tmf, "recv");
        else if (res != -EAGAIN && res != -ETIMEDOUT)
            FAIL("receive from the %s returned %d", ticker ? "ticker" : "timer", res);
        return;
    }
    int ci = (int)((r >> 8) % NCTX), ch = (int)((r >> 12) % NCH);
    struct val v;
    memset(&v, 0xAA, sizeof v);
    bool drained = atomic_load(&drained_seen[ch]);
    struct chan_case cs[4] = {
        {.chan = chan_timer_chan(tm), .elem = &tv, .dir = CHAN_RECV},
        {.chan = chan_ticker_chan(tk), .elem = &kv, .dir = CHAN_RECV},
        {.chan = chan_ctx_done(ctxs[ci]), .dir = CHAN_RECV},
        {.chan = (r >> 16) & 1 ? chans[ch] : NULL, .elem = &v, .dir = CHAN_RECV},
    };
    /* Blocking without a deadline is safe: the epoch's end cancels every context. */
    int res = (r >> 17) % 32 == 0   ? chan_select(cs, 4)
              : (r >> 17) % 32 < 12 ? chan_tryselect(cs, 4)
                                    : chan_select_until(cs, 4, deadline_for(w));
    switch (res) {
    case 0:
        if (!cs[0].ok)
            FAIL("select: the timer's channel reported closed");
        got_timer_value(tv, tmf, "select");
        break;
    case 1:
        if (!cs[1].ok)
            FAIL("select: the ticker's channel reported closed");
        got_tick(kv, tkf, tkl, "select");
        break;
    case 2:
        if (cs[2].ok)
            FAIL("select: a value received from context %d's done channel", ci);
        check_ctx_err(ci, chan_ctx_err(ctxs[ci]), "select on done");
        break;
    case 3:
        if (cs[3].ok)
            got_value(ch, &v);
        check_recv(ch, drained, cs[3].ok ? 0 : -EPIPE, "select with timers");
        break;
    default:
        if (res != -EAGAIN && res != -ETIMEDOUT)
            FAIL("select over timers, done and a channel returned %d", res);
        if (drained && cs[3].chan)
            FAIL("select over timers reported not ready with a drained channel among its cases");
    }
}

/* Waits on a context's done channel: at most until a deadline, or for good (the epoch's end
 * cancels context 0, and so all of them: a waiter not woken is a hang the watchdog reports). */
static void op_ctx_wait(struct worker *w)
{
    uint64_t r = rnd(w);
    int i = (int)(r % NCTX);
    chan_t *done = chan_ctx_done(ctxs[i]);
    if (!done) {
        FAIL("context %d has no done channel", i);
        return;
    }
    int res = (r >> 8) % 16 == 0  ? chan_recv(done, NULL)
              : (r >> 8) % 4 == 1 ? chan_tryrecv(done, NULL)
                                  : chan_recv_until(done, NULL, deadline_for(w));
    if (res == -EPIPE)
        check_ctx_err(i, chan_ctx_err(ctxs[i]), "receive on done");
    else if (res != -EAGAIN && res != -ETIMEDOUT)
        FAIL("receive on context %d's done channel returned %d", i, res);
}

static void op_ctx_err(struct worker *w)
{
    int i = (int)(rnd(w) % NCTX);
    int seen = atomic_load(&ctx_err_seen[ctx_slot[i]]);
    int e = chan_ctx_err(ctxs[i]);
    if (e == 0) {
        if (seen)
            FAIL("context %d's err went back to 0 from %d", i, seen);
        return;
    }
    int r = chan_tryrecv(chan_ctx_done(ctxs[i]), NULL);
    if (r != -EPIPE)
        FAIL("context %d's err is %d but a receive on its done channel returned %d", i, e, r);
    check_ctx_err(i, e, "chan_ctx_err");
}

static void op_ctx_cancel(struct worker *w)
{
    int i = (int)(rnd(w) % NCTX);
    if (i == 2) { /* a value context has no cancel of its own */
        int r = chan_ctx_cancel(ctxs[2]);
        if (r != -EINVAL)
            FAIL("chan_ctx_cancel of a value context returned %d", r);
        return;
    }
    atomic_store(&ctx_cancelling[i], 1);
    int r = chan_ctx_cancel(ctxs[i]);
    if (r != 0)
        FAIL("chan_ctx_cancel returned %d", r);
    for (int j = i; j < NCTX; j++) {
        bool under = false;
        for (int k = j; k >= 0; k = ctx_parent[k])
            under |= k == i;
        if (!under)
            continue;
        int e = chan_ctx_err(ctxs[j]);
        if (e == 0)
            FAIL("context %d not cancelled when the cancel of its ancestor %d returned", j, i);
        else
            check_ctx_err(j, e, "after chan_ctx_cancel");
    }
}

static void op_ctx_child(struct worker *w)
{
    uint64_t r = rnd(w);
    int i = (int)(r % NCTX);
    int pe = chan_ctx_err(ctxs[i]);
    int64_t pd = 0;
    chan_ctx_t *c = (r >> 8) % 3 == 0 ? chan_ctx_with_cancel(ctxs[i])
                    : (r >> 8) % 3 == 1
                        ? chan_ctx_with_timeout(ctxs[i], (int64_t)(r >> 16) % 300000)
                        : chan_ctx_with_value(ctxs[i], &key_obj, w);
    if (!c) {
        FAIL("making a child of context %d: errno %d", i, errno);
        return;
    }
    int ce = chan_ctx_err(c);
    if (pe && ce != pe)
        FAIL("a child of context %d (err %d) was born with err %d", i, pe, ce);
    if (i > 0 && chan_ctx_deadline(c, &pd) != 0)
        FAIL("a child of context %d has no deadline", i);
    else if (i > 0 && pd > ctx_deadline)
        FAIL("a child of context %d has a later deadline than its parent", i);
    void *val;
    if ((r >> 8) % 3 == 2 && (chan_ctx_value(c, &key_obj, &val) != 0 || val != w))
        FAIL("chan_ctx_value of a value context did not find its value");
    if ((r >> 20) & 1) {
        int res = chan_recv_until(chan_ctx_done(c), NULL, deadline_for(w));
        if (res == -EPIPE && chan_ctx_err(c) == 0)
            FAIL("a child context's done channel closed with err 0");
        else if (res != -EPIPE && res != -ETIMEDOUT)
            FAIL("receive on a child context's done channel returned %d", res);
    }
    int fr = chan_ctx_free(c);
    if (fr != 0)
        FAIL("chan_ctx_free of a child context returned %d", fr);
}

/* Tasks of a group or a WaitGroup, sharing one record that the worker who made them frees. */
struct tasks {
    chan_wg_t *wg;
    int fail;               /* the task (by start order) that fails, or -1 */
    atomic_int next;        /* start order */
    atomic_int finished;    /* tasks whose work is done (before they return or call done) */
    atomic_int returned;    /* WaitGroup tasks past their chan_wg_done */
    _Atomic uint64_t pause; /* how long a task waits, ns */
};

#define TASK_ERR 77

static int group_task(chan_ctx_t *ctx, void *arg)
{
    struct tasks *ts = arg;
    atomic_fetch_add(&tasks_run, 1);
    int i = atomic_fetch_add(&ts->next, 1);
    chan_t *done = chan_ctx_done(ctx);
    int rc = 0;
    if (i == ts->fail) {
        chan_recv_until(done, NULL, chan_now() + (int64_t)atomic_load(&ts->pause));
        rc = TASK_ERR;
    } else if (ts->fail >= 0) {
        /* Only the failure, or the epoch's end, cancels the context: it must wake this. */
        int r = chan_recv(done, NULL);
        if (r != -EPIPE || chan_ctx_err(ctx) == 0)
            FAIL("a group task's receive on done returned %d, err %d", r, chan_ctx_err(ctx));
    } else {
        int r = chan_recv_until(done, NULL, chan_now() + (int64_t)atomic_load(&ts->pause));
        if (r != -EPIPE && r != -ETIMEDOUT)
            FAIL("a group task's receive on done returned %d", r);
    }
    atomic_fetch_add(&ts->finished, 1);
    return rc;
}

static void wg_task(void *arg)
{
    struct tasks *ts = arg;
    atomic_fetch_add(&tasks_run, 1);
    /* A timed wait on a nil channel: never ready, so it waits out the deadline. */
    if (chan_recv_until(NULL, NULL, chan_now() + (int64_t)atomic_load(&ts->pause)) != -ETIMEDOUT)
        FAIL("a receive on a nil channel did not time out");
    atomic_fetch_add(&ts->finished, 1);
    int r = chan_wg_done(ts->wg);
    if (r != 0)
        FAIL("chan_wg_done returned %d", r);
    atomic_fetch_add(&ts->returned, 1);
}

static void *wg_thread(void *arg)
{
    wg_task(arg);
    return NULL;
}

static void yield_now(void)
{
#ifdef STRESS_MPG
    chan_mpg_yield(); /* sched_yield() outside a G */
#else
    sched_yield();
#endif
}

/* A group of 1 to 4 tasks (Gs or threads), with or without a limit, one of them failing or
 * none; go or trygo; then wait and free. */
static void op_group(struct worker *w)
{
    uint64_t r = rnd(w);
    struct tasks ts = {.fail = -1};
    int n = 1 + (int)(r % 4);
    if ((r >> 4) % 3)
        ts.fail = (int)((r >> 6) % (unsigned)n);
    atomic_init(&ts.pause, (r >> 12) % 200000);
    chan_group_t *g = chan_group_make(ctxs[(r >> 8) % NCTX]);
    if (!g) {
        FAIL("chan_group_make: errno %d", errno);
        return;
    }
    int limit = (int)((r >> 10) % 4) - 1; /* -1: none */
    if (limit > 0 && chan_group_set_limit(g, limit) != 0)
        FAIL("chan_group_set_limit(%d) refused on a new group", limit);
#ifdef STRESS_MPG
    if (use_mpg && (r >> 30) % 4)
        chan_group_set_spawn(g, chan_mpg_go);
#endif
    int started = 0;
    for (int k = 0; k < n; k++) {
        bool try = (r >> (32 + k)) & 1;
        int res = try ? chan_group_trygo(g, group_task, &ts) : chan_group_go(g, group_task, &ts);
        if (res == 0)
            started++;
        else if (!(try && res == -EAGAIN && limit > 0))
            FAIL("chan_group_%s returned %d", try ? "trygo" : "go", res);
    }
    int e = chan_group_wait(g);
    int fin = atomic_load(&ts.finished);
    if (fin != started)
        FAIL("chan_group_wait returned with %d of %d tasks finished", fin, started);
    int want = ts.fail >= 0 && ts.fail < started ? TASK_ERR : 0;
    if (e != want)
        FAIL("chan_group_wait returned %d, the failing task's error being %d", e, want);
    if (chan_ctx_err(chan_group_ctx(g)) == 0)
        FAIL("a group's context not cancelled when its wait returned");
    int fr = chan_group_free(g);
    if (fr != 0)
        FAIL("chan_group_free after the wait returned %d", fr);
}

/* A WaitGroup of 1 to 4 tasks (Gs or threads): added at once or one by one; waited for by
 * chan_wg_wait, by a loop of chan_wg_wait_until, or by a select on chan_wg_chan. */
static void op_wg(struct worker *w)
{
    uint64_t r = rnd(w);
    struct tasks ts = {.fail = -1};
    int n = 1 + (int)(r % 4);
    atomic_init(&ts.pause, (r >> 12) % 200000);
    ts.wg = chan_wg_make();
    if (!ts.wg) {
        FAIL("chan_wg_make: errno %d", errno);
        return;
    }
    bool at_once = (r >> 2) & 1;
    if (at_once && chan_wg_add(ts.wg, n) != 0)
        FAIL("chan_wg_add(%d) on a new WaitGroup failed", n);
    for (int k = 0; k < n; k++) {
        if (!at_once && chan_wg_add(ts.wg, 1) != 0)
            FAIL("chan_wg_add(1) failed");
        bool as_g = use_mpg && (r >> (32 + k)) & 1;
        int res = -1;
#ifdef STRESS_MPG
        if (as_g)
            res = chan_mpg_go(wg_task, &ts) > 0 ? 0 : -1;
#endif
        if (!as_g) {
            pthread_t th;
            pthread_attr_t a;
            pthread_attr_init(&a);
            pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
            res = pthread_create(&th, &a, wg_thread, &ts) == 0 ? 0 : -1;
            pthread_attr_destroy(&a);
        }
        if (res != 0) { /* not started: its share is done here */
            FAIL("starting a WaitGroup task failed");
            atomic_fetch_add(&ts.finished, 1);
            chan_wg_done(ts.wg);
            atomic_fetch_add(&ts.returned, 1);
        }
    }
    int form = (int)((r >> 4) % 3), res;
    if (form == 0) {
        res = chan_wg_wait(ts.wg);
    } else if (form == 1) {
        while ((res = chan_wg_wait_until(ts.wg, chan_now() + 50000)) == -ETIMEDOUT) {
        }
    } else {
        chan_t *c = chan_wg_chan(ts.wg);
        struct chan_case cs[1] = {{.chan = c, .dir = CHAN_RECV}};
        while ((res = chan_select_until(cs, 1, chan_now() + 50000)) == -ETIMEDOUT) {
        }
        if (res == 0 && cs[0].ok)
            FAIL("a value received from a WaitGroup's channel");
    }
    int fin = atomic_load(&ts.finished);
    if (res != 0 || fin != n)
        FAIL("a WaitGroup wait (form %d) returned %d with %d of %d tasks done", form, res, fin, n);
    while (atomic_load(&ts.returned) != n) /* their chan_wg_done calls have returned */
        yield_now();
    if ((res = chan_wg_done(ts.wg)) != -EINVAL)
        FAIL("chan_wg_done at a counter of zero returned %d", res);
    if ((res = chan_wg_free(ts.wg)) != 0)
        FAIL("chan_wg_free after the wait returned %d", res);
}

/* ---- WaitGroup reuse, timer free and group limits under load (-L) ----------------------------
 *
 * op_wg_reuse   chan_wg(3)'s rounds: the epoch's WaitGroup rwg is reused by whichever worker
 *               holds rwg_busy (an add of 1 to 3 tasks, which begins a round when the counter
 *               is zero), while other workers wait on it (chan_wg_wait, or its _until form)
 *               and leave. An add may meet -EBUSY only while a wait was in progress (a wait
 *               entered or left across the add, or one was in); after it, nothing changed: the
 *               counter is still zero (a wait whose deadline has passed returns 0). A wait that
 *               returns 0 saw every task done that had been added when it began.
 * op_timer_free chan_timer(3): a timer of 0 to 1.5 ms is freed while workers that joined its
 *               round (a CAS on vt_state) are blocked on its channel in a select with a release
 *               channel, and while it fires. With two or more queued when the free begins (one
 *               firing wakes one), the free must be -EBUSY; after -EBUSY the timer is stopped
 *               (a try receive gets nothing, a stop returns 0); a free that returns 0 leaves no
 *               receiver blocked (the one queued, if any, got the value). At most one value per
 *               arming. Once the receivers have left, the free returns 0.
 * op_group_limit chan_group(3)'s limits while tasks run: tasks blocked on a release channel
 *               hold the slots of their limit; at the limit trygo is -EAGAIN, below it 0; a
 *               limit set while tasks of the old limit run is -EBUSY (with no old limit, 0, as
 *               Go's SetLimit on a group without one), removing one (n < 0) always succeeds,
 *               even while its tasks give their slots back; tasks under a limit of n never run
 *               more than n at once; after the wait, a limit can be set again. */
static chan_wg_t *rwg;
static atomic_int rwg_busy;
static atomic_ulong rwg_added, rwg_finished, rwg_returned, rwg_in, rwg_gen, rwg_rounds,
    rwg_busy_seen, rwg_waits_ok;

static void rwg_task(void *arg)
{
    atomic_fetch_add(&tasks_run, 1);
    /* A timed wait on a nil channel (as wg_task), shorter: rounds end often. */
    if (chan_recv_until(NULL, NULL, chan_now() + (int64_t)((uintptr_t)arg % 100000)) != -ETIMEDOUT)
        FAIL("a receive on a nil channel did not time out");
    atomic_fetch_add(&rwg_finished, 1);
    int r = chan_wg_done(rwg);
    if (r != 0)
        FAIL("chan_wg_done of a reused WaitGroup returned %d", r);
    atomic_fetch_add(&rwg_returned, 1);
}

static void *rwg_thread(void *arg)
{
    rwg_task(arg);
    return NULL;
}

/* Starts fn(arg) as a G (when as_g) or a detached thread: 0, or -1. */
static int spawn_task(bool as_g, void (*fn)(void *), void *(*thread_fn)(void *), void *arg)
{
#ifdef STRESS_MPG
    if (as_g)
        return chan_mpg_go(fn, arg) > 0 ? 0 : -1;
#else
    (void)fn;
    (void)as_g;
#endif
    pthread_t th;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int res = pthread_create(&th, &a, thread_fn, arg) == 0 ? 0 : -1;
    pthread_attr_destroy(&a);
    return res;
}

static void op_wg_reuse(struct worker *w)
{
    uint64_t r = rnd(w);
    if (r % 3 == 0 && !atomic_exchange(&rwg_busy, 1)) {
        int n = 1 + (int)((r >> 8) % 3);
        unsigned long g0 = atomic_load(&rwg_gen), i0 = atomic_load(&rwg_in);
        int res = chan_wg_add(rwg, n);
        unsigned long i1 = atomic_load(&rwg_in), g1 = atomic_load(&rwg_gen);
        if (res == 0) {
            atomic_fetch_add(&rwg_added, (unsigned long)n);
            atomic_fetch_add(&rwg_rounds, 1);
            for (int k = 0; k < n; k++) {
                void *arg = (void *)(uintptr_t)(rnd(w) >> 8);
                if (spawn_task(use_mpg && (r >> (20 + k)) & 1, rwg_task, rwg_thread, arg) != 0) {
                    FAIL("starting a task of the reused WaitGroup failed");
                    atomic_fetch_add(&rwg_finished, 1);
                    chan_wg_done(rwg);
                    atomic_fetch_add(&rwg_returned, 1);
                }
            }
        } else if (res == -EBUSY) {
            atomic_fetch_add(&rwg_busy_seen, 1);
            if (i0 == 0 && i1 == 0 && g0 == g1)
                FAIL("chan_wg_add: -EBUSY with no wait in progress across the call");
            if ((res = chan_wg_wait_until(rwg, INT64_MIN)) != 0)
                FAIL("chan_wg_add's -EBUSY changed the counter: a wait at once returned %d", res);
        } else {
            FAIL("chan_wg_add(%d) on a reused WaitGroup returned %d", n, res);
        }
        atomic_store(&rwg_busy, 0);
        return;
    }
    unsigned long target = atomic_load(&rwg_added);
    atomic_fetch_add(&rwg_in, 1);
    atomic_fetch_add(&rwg_gen, 1);
    int64_t dl = (r >> 8) % 2 ? CHAN_FOREVER : chan_now() + (int64_t)((r >> 9) % 200000);
    int res = dl == CHAN_FOREVER ? chan_wg_wait(rwg) : chan_wg_wait_until(rwg, dl);
    atomic_fetch_add(&rwg_gen, 1);
    atomic_fetch_sub(&rwg_in, 1);
    if (res == 0) {
        atomic_fetch_add(&rwg_waits_ok, 1);
        unsigned long fin = atomic_load(&rwg_finished);
        if (fin < target)
            FAIL("a wait on a reused WaitGroup returned 0 with %lu of the %lu tasks added before "
                 "it done",
                 fin, target);
    } else if (res == -ETIMEDOUT) {
        if (dl == CHAN_FOREVER || chan_now() < dl)
            FAIL("chan_wg_wait_until: -ETIMEDOUT before its deadline");
    } else {
        FAIL("a wait on a reused WaitGroup returned %d", res);
    }
}

/* The timer of op_timer_free's round, and the round's state: (round << 32) | open << 31 |
 * receivers that joined it. */
static chan_timer_t *vt;
static chan_t *vt_c, *vt_rel;
static _Atomic uint64_t vt_state;
static atomic_int vt_busy;
static atomic_ulong vt_left, vt_values, vt_frees, vt_busy_frees, vt_racing;
static _Atomic int64_t vt_made;
#define VT_OPEN (1ull << 31)

/* A receiver of the round: blocked on the timer's channel and the release channel. */
static void vt_receive(void)
{
    uint64_t s = atomic_load(&vt_state);
    do {
        if (!(s & VT_OPEN))
            return;
    } while (!atomic_compare_exchange_weak(&vt_state, &s, s + 1));
    int64_t made = atomic_load(&vt_made), v = -1;
    struct chan_case cs[2] = {{.chan = vt_c, .elem = &v, .dir = CHAN_RECV},
                              {.chan = vt_rel, .dir = CHAN_RECV}};
    int res = chan_select(cs, 2);
    if (res == 0) {
        if (!cs[0].ok)
            FAIL("a freed timer's channel reported closed");
        else if (v < made || v > chan_now())
            FAIL("a timer's value %lld is not between its making and now", (long long)v);
        if (atomic_fetch_add(&vt_values, 1) != 0)
            FAIL("two values from one arming of a timer");
    } else if (res != 1 || cs[1].ok) {
        FAIL("select on a timer and its release: %d (ok %d)", res, res >= 0 && cs[res].ok);
    }
    atomic_fetch_add(&vt_left, 1); /* the last touch of the round */
}

/* Parks a moment (a G parks, a hooked task through its park). */
static void pause_ns(int64_t ns) { (void)chan_recv_until(NULL, NULL, chan_now() + ns); }

static void op_timer_free(struct worker *w)
{
    uint64_t r = rnd(w);
    if (atomic_exchange(&vt_busy, 1)) {
        vt_receive();
        return;
    }
    atomic_store(&vt_left, 0);
    atomic_store(&vt_values, 0);
    atomic_store(&vt_made, chan_now());
    vt_rel = chan_make(0, 0);
    vt = chan_timer_make((int64_t)((r >> 8) % 1500000));
    if (!vt || !vt_rel) {
        FAIL("making a timer or a channel: errno %d", errno);
        exit(2);
    }
    vt_c = chan_timer_chan(vt);
    uint64_t round = (atomic_load(&vt_state) >> 32) + 1;
    atomic_store(&vt_state, round << 32 | VT_OPEN);
    /* Let receivers join for up to ~1 ms, or until three have. */
    int64_t until = chan_now() + 1000000;
    while ((atomic_load(&vt_state) & (VT_OPEN - 1)) < 3 && chan_now() < until &&
           !atomic_load_explicit(&stop, memory_order_relaxed))
        pause_ns(50000);
    unsigned long joined = (unsigned long)(atomic_fetch_and(&vt_state, ~VT_OPEN) & (VT_OPEN - 1));
    /* Every receiver that joined is queued on the timer's channel, or has left with its value. */
    while (hchan_waiting(vt_c, CHAN_RECV) + atomic_load(&vt_left) < joined)
        pause_ns(10000);
    size_t queued = hchan_waiting(vt_c, CHAN_RECV);
    if (queued)
        atomic_fetch_add(&vt_racing, 1);
    int res = chan_timer_free(vt);
    bool freed = res == 0;
    if (res == -EBUSY) {
        atomic_fetch_add(&vt_busy_frees, 1);
        int64_t v;
        if ((res = chan_tryrecv(vt_c, &v)) != -EAGAIN)
            FAIL("a receive from a timer whose free said -EBUSY returned %d", res);
        if ((res = chan_timer_stop(vt)) != 0)
            FAIL("a stop of a timer whose free said -EBUSY returned %d, not 0", res);
    } else if (res == 0) {
        if (queued >= 2)
            FAIL("chan_timer_free returned 0 with %zu receivers blocked on its channel", queued);
    } else {
        FAIL("chan_timer_free returned %d", res);
    }
    if (!freed && queued == 0)
        FAIL("chan_timer_free returned -EBUSY with every receiver gone");
    chan_close(vt_rel);
    while (atomic_load(&vt_left) < joined)
        pause_ns(10000);
    if (freed && queued == 1 && atomic_load(&vt_values) != 1)
        FAIL("chan_timer_free returned 0 with a receiver blocked that got no value");
    if (!freed && (res = chan_timer_free(vt)) != 0)
        FAIL("chan_timer_free once its receivers had left returned %d", res);
    atomic_fetch_add(&vt_frees, 1);
    if ((res = chan_free(vt_rel)) != 0)
        FAIL("chan_free of a timer's release channel returned %d", res);
    vt = NULL;
    atomic_store(&vt_busy, 0);
}

/* op_group_limit's tasks: gen 0 under the first limit, 1 under the second. */
struct limtasks {
    chan_t *rel[2];
    int limit[2]; /* -1: none */
    atomic_int running[2], ended;
};

struct limtask {
    struct limtasks *ls;
    int gen;
};

static int limit_task(chan_ctx_t *ctx, void *arg)
{
    (void)ctx;
    struct limtask *t = arg;
    struct limtasks *ls = t->ls;
    atomic_fetch_add(&tasks_run, 1);
    int now = atomic_fetch_add(&ls->running[t->gen], 1) + 1;
    if (ls->limit[t->gen] >= 0 && now > ls->limit[t->gen])
        FAIL("%d tasks of a group run at once under a limit of %d", now, ls->limit[t->gen]);
    int r = chan_recv(ls->rel[t->gen], NULL);
    if (r != -EPIPE)
        FAIL("a group task's receive on its release channel returned %d", r);
    atomic_fetch_sub(&ls->running[t->gen], 1);
    atomic_fetch_add(&ls->ended, 1);
    return 0;
}

static void op_group_limit(struct worker *w)
{
    uint64_t r = rnd(w);
    struct limtasks ls = {.limit = {(int)(r % 4) - 1, (int)((r >> 2) % 3)}};
    struct limtask ts[8];
    int nt = 0;
    ls.rel[0] = chan_make(0, 0);
    ls.rel[1] = chan_make(0, 0);
    chan_group_t *g = chan_group_make(chan_ctx_background());
    if (!g || !ls.rel[0] || !ls.rel[1]) {
        FAIL("making a group or a channel: errno %d", errno);
        exit(2);
    }
#ifdef STRESS_MPG
    if (use_mpg && (r >> 4) % 2)
        chan_group_set_spawn(g, chan_mpg_go);
#endif
    int res;
    if (ls.limit[0] >= 0 && (res = chan_group_set_limit(g, ls.limit[0])) != 0)
        FAIL("chan_group_set_limit(%d) on a new group returned %d", ls.limit[0], res);
    /* Under the first limit: up to the limit (1 to 3 without one), then one more try. */
    int k1 = ls.limit[0] >= 0 ? ls.limit[0] : 1 + (int)((r >> 5) % 3);
    for (int k = 0; k < k1; k++) {
        ts[nt] = (struct limtask){&ls, 0};
        bool try = (r >> (8 + k)) & 1;
        res =
            try ? chan_group_trygo(g, limit_task, &ts[nt]) : chan_group_go(g, limit_task, &ts[nt]);
        if (res != 0)
            FAIL("chan_group_%s below the limit %d returned %d", try ? "trygo" : "go", ls.limit[0],
                 res);
        else
            nt++;
    }
    if (ls.limit[0] >= 0 && (res = chan_group_trygo(g, limit_task, &ts[nt])) != -EAGAIN)
        FAIL("chan_group_trygo at the limit %d returned %d", ls.limit[0], res);
    /* A new limit while they run: refused under a limit whose slots they hold. */
    bool released = (r >> 16) % 3 == 0; /* now and then they give their slots back meanwhile */
    if (released)
        chan_close(ls.rel[0]);
    res = chan_group_set_limit(g, ls.limit[1]);
    bool may_busy = ls.limit[0] >= 0 && nt > 0, must_busy = may_busy && !released;
    if (must_busy ? res != -EBUSY : !(res == 0 || (may_busy && res == -EBUSY)))
        FAIL("chan_group_set_limit(%d) with %d tasks of the limit %d %s returned %d", ls.limit[1],
             nt, ls.limit[0], released ? "released" : "running", res);
    if (res == -EBUSY) { /* removing it always works, and the new one then too */
        if ((res = chan_group_set_limit(g, -1)) != 0)
            FAIL("chan_group_set_limit(-1) with tasks running returned %d", res);
        if ((res = chan_group_set_limit(g, ls.limit[1])) != 0)
            FAIL("chan_group_set_limit(%d) after removing the limit returned %d", ls.limit[1], res);
    }
    /* Under the second limit: its slots are all free, whatever the first's tasks do. */
    for (int k = 0; k < ls.limit[1]; k++) {
        ts[nt] = (struct limtask){&ls, 1};
        if ((res = chan_group_trygo(g, limit_task, &ts[nt])) != 0)
            FAIL("chan_group_trygo below a new limit of %d returned %d", ls.limit[1], res);
        else
            nt++;
    }
    if ((res = chan_group_trygo(g, limit_task, &ts[nt])) != -EAGAIN)
        FAIL("chan_group_trygo at a new limit of %d returned %d", ls.limit[1], res);
    if (!released)
        chan_close(ls.rel[0]);
    chan_close(ls.rel[1]);
    if ((res = chan_group_wait(g)) != 0)
        FAIL("chan_group_wait of limited tasks returned %d", res);
    if (atomic_load(&ls.ended) != nt)
        FAIL("chan_group_wait returned with %d of %d tasks ended", atomic_load(&ls.ended), nt);
    if ((res = chan_group_set_limit(g, 1)) != 0)
        FAIL("chan_group_set_limit(1) after the wait returned %d", res);
    if ((res = chan_group_free(g)) != 0)
        FAIL("chan_group_free after the wait returned %d", res);
    chan_free(ls.rel[0]);
    chan_free(ls.rel[1]);
}

/* The main thread, before an epoch: a fresh timer, ticker and context tree. */
static void layers_begin(uint64_t r)
{
    /* The books first: the func timer may fire before chan_timer_make_func returns. */
    atomic_store(&ftm_arms, 1);
    atomic_store(&ftm_ones, 0);
    atomic_store(&ftm_calls, 0);
    atomic_store(&tm_arms, 1);
    atomic_store(&tm_ones, 0);
    atomic_store(&tm_recvd, 0);
    atomic_store(&tm_floor, INT64_MIN);
    atomic_store(&tk_floor, INT64_MIN);
    atomic_store(&tk_last, INT64_MIN);
    tm = chan_timer_make((int64_t)(r % 300000));
    tk = chan_ticker_make(50000 + (int64_t)((r >> 20) % 500000));
    chan_timer_t *f = chan_timer_make_func((int64_t)((r >> 30) % 300000), ftm_fn, NULL);
    ftm = f;
    ctxs[0] = chan_ctx_with_cancel(chan_ctx_background());
    int64_t dl = chan_now() + (int64_t)((r >> 40) % 100) * 1000000;
    ctxs[1] = ctxs[0] ? chan_ctx_with_deadline(ctxs[0], dl) : NULL;
    ctxs[2] = ctxs[1] ? chan_ctx_with_value(ctxs[1], &key_obj, &key_obj) : NULL;
    ctxs[3] = ctxs[1] ? chan_ctx_with_cancel(ctxs[1]) : NULL;
    if (!tm || !tk || !f || !ctxs[3]) {
        perror("stress: making the epoch's timers and contexts");
        exit(2);
    }
    if (chan_ctx_deadline(ctxs[1], &ctx_deadline) != 0 || ctx_deadline != dl)
        FAIL("chan_ctx_deadline did not return the deadline given");
    for (int i = 0; i < NCTX; i++) {
        atomic_store(&ctx_cancelling[i], 0);
        atomic_store(&ctx_err_seen[i], 0);
    }
    if (!(rwg = chan_wg_make())) {
        perror("stress: making the epoch's WaitGroup");
        exit(2);
    }
    atomic_store(&rwg_added, 0);
    atomic_store(&rwg_finished, 0);
    atomic_store(&rwg_returned, 0);
}

/* The main thread, as the epoch ends: cancel the tree, waking every waiter on a done channel. */
static void layers_cancel(void)
{
    atomic_store(&ctx_cancelling[0], 1);
    if (chan_ctx_cancel(ctxs[0]) != 0)
        FAIL("chan_ctx_cancel of the epoch's root context failed");
}

/* The main thread, after the workers have stopped: the books of the timer, the ticker and the
 * contexts, then freeing them. */
static void layers_end(void)
{
    int r = chan_timer_stop(tm);
    if (r == 1)
        atomic_fetch_add(&tm_ones, 1);
    int64_t v;
    if ((r = chan_tryrecv(chan_timer_chan(tm), &v)) != -EAGAIN)
        FAIL("a receive from the timer's channel after its stop returned %d", r);
    unsigned long arms = atomic_load(&tm_arms), got = atomic_load(&tm_recvd);
    unsigned long ones = atomic_load(&tm_ones);
    if (arms != got + ones)
        FAIL("timer: %lu armings, but %lu values received and %lu stops/resets that returned 1",
             arms, got, ones);
    /* The func timer: each arming ends once, in a call of fn or in a stop/reset that returned 1.
     * A final stop that says 0 may meet fn being called now: give it time to return. */
    if ((r = chan_timer_stop(ftm)) == 1)
        atomic_fetch_add(&ftm_ones, 1);
    int64_t until = chan_now() + 10 * 1000000000LL;
    while (atomic_load(&ftm_calls) + atomic_load(&ftm_ones) != atomic_load(&ftm_arms) &&
           chan_now() < until)
        sleep_us(100);
    if (atomic_load(&ftm_calls) + atomic_load(&ftm_ones) != atomic_load(&ftm_arms))
        FAIL("func timer: %lu armings, but %lu calls of fn and %lu stops/resets that returned 1",
             atomic_load(&ftm_arms), atomic_load(&ftm_calls), atomic_load(&ftm_ones));
    if (chan_timer_chan(ftm) != NULL)
        FAIL("a func timer has a channel");
    if ((r = chan_timer_free(ftm)) != 0)
        FAIL("chan_timer_free of a func timer returned %d", r);
    ftm = NULL;
    if (chan_ticker_stop(tk) < 0 || (r = chan_tryrecv(chan_ticker_chan(tk), &v)) != -EAGAIN)
        FAIL("a receive from the ticker's channel after its stop returned %d", r);
    if (chan_len(chan_timer_chan(tm)) || chan_cap(chan_timer_chan(tm)) ||
        chan_len(chan_ticker_chan(tk)) || chan_cap(chan_ticker_chan(tk)))
        FAIL("chan_len or chan_cap of a timer's or ticker's channel is not 0");
    for (int i = 0; i < NCTX; i++) {
        int e = chan_ctx_err(ctxs[i]);
        if (e == 0)
            FAIL("context %d not cancelled at the epoch's end", i);
        else
            check_ctx_err(i, e, "the epoch's end");
        if (chan_tryrecv(chan_ctx_done(ctxs[i]), NULL) != -EPIPE)
            FAIL("context %d's done channel not closed at the epoch's end", i);
    }
    for (int i = NCTX - 1; i >= 0; i--)
        if ((r = chan_ctx_free(ctxs[i])) != 0)
            FAIL("chan_ctx_free of context %d returned %d", i, r);
    if ((r = chan_timer_free(tm)) != 0 || (r = chan_ticker_free(tk)) != 0)
        FAIL("freeing the epoch's timer or ticker returned %d", r);
    /* The reused WaitGroup: its last round ends, every task done, then it frees. */
    if ((r = chan_wg_wait(rwg)) != 0)
        FAIL("the last wait on the reused WaitGroup returned %d", r);
    if (atomic_load(&rwg_finished) != atomic_load(&rwg_added))
        FAIL("the reused WaitGroup's last wait returned with %lu of %lu tasks done",
             atomic_load(&rwg_finished), atomic_load(&rwg_added));
    while (atomic_load(&rwg_returned) != atomic_load(&rwg_added)) /* their done has returned */
        sleep_us(50);
    if ((r = chan_wg_free(rwg)) != 0)
        FAIL("chan_wg_free of the reused WaitGroup returned %d", r);
    rwg = NULL;
    if (vt)
        FAIL("a timer of op_timer_free outlived the epoch");
}

/* The plugged-in scheduler's bookkeeping around each operation (-S; below). */
static void task_op_begin(void);
static void task_op_end(void);

static void one_op(struct worker *w)
{
    uint64_t r = rnd(w);
    int ch = (int)((r >> 16) % NCH);
    /* With -L, one pick in 11 is of the layers around the core. */
    unsigned pick = (unsigned)(r % (use_layers ? 1130 : 1000));
    int kind;
    /* Blocking forms without a deadline are rarer: a thread blocked on a channel no one else
     * uses stays blocked until the epoch's close. */
    if (pick < 25)
        kind = K_SEND;
    else if (pick < 50)
        kind = K_RECV;
    else if (pick < 180)
        kind = K_TRYSEND;
    else if (pick < 310)
        kind = K_TRYRECV;
    else if (pick < 450)
        kind = K_SEND_UNTIL;
    else if (pick < 590)
        kind = K_RECV_UNTIL;
    else if (pick < 620)
        kind = K_SELECT;
    else if (pick < 790)
        kind = K_TRYSELECT;
    else if (pick < 970)
        kind = K_SELECT_UNTIL;
    else if (pick < 971 && (r >> 32) % 8 == 0)
        kind = K_CLOSE;
    else if (pick < 1000)
        kind = K_LEN;
    else if (pick < 1012)
        kind = K_TIMER_RESET;
    else if (pick < 1018)
        kind = K_TIMER_STOP;
    else if (pick < 1045)
        kind = K_TIME_RECV;
    else if (pick < 1047)
        kind = K_TICKER_RESET;
    else if (pick < 1065)
        kind = K_CTX_WAIT;
    else if (pick < 1075)
        kind = K_CTX_ERR;
    else if (pick < 1076 && (r >> 32) % 8 == 0) /* a cancel ends that part of the tree */
        kind = K_CTX_CANCEL;
    else if (pick < 1090)
        kind = K_CTX_CHILD;
    else if (pick < 1095 && (r >> 32) % 4 == 0) /* tasks are threads or Gs: fewer of them */
        kind = K_GROUP;
    else if (pick < 1100 && (r >> 32) % 4 == 0)
        kind = K_WG;
    else if (pick >= 1100 && pick < 1115)
        kind = K_WG_REUSE;
    else if (pick >= 1115 && pick < 1123)
        kind = K_TIMER_FREE;
    else if (pick >= 1123 && (r >> 32) % 4 == 0)
        kind = K_GROUP_LIMIT;
    else
        kind = K_LEN;
    atomic_store_explicit(&w->current, kind, memory_order_relaxed);
    task_op_begin();
    switch (kind) {
    case K_SEND:
    case K_TRYSEND:
    case K_SEND_UNTIL: op_send(w, kind, ch); break;
    case K_RECV:
    case K_TRYRECV:
    case K_RECV_UNTIL: op_recv(w, kind, ch); break;
    case K_SELECT:
    case K_TRYSELECT:
    case K_SELECT_UNTIL: op_select(w, kind); break;
    case K_CLOSE: op_close(ch); break;
    case K_TIMER_RESET:
    case K_TIMER_STOP:
    case K_TICKER_RESET: op_timer_reset(w, kind); break;
    case K_TIME_RECV: op_time_recv(w); break;
    case K_CTX_WAIT: op_ctx_wait(w); break;
    case K_CTX_ERR: op_ctx_err(w); break;
    case K_CTX_CANCEL: op_ctx_cancel(w); break;
    case K_CTX_CHILD: op_ctx_child(w); break;
    case K_GROUP: op_group(w); break;
    case K_WG: op_wg(w); break;
    case K_WG_REUSE: op_wg_reuse(w); break;
    case K_TIMER_FREE: op_timer_free(w); break;
    case K_GROUP_LIMIT: op_group_limit(w); break;
    case K_LEN:
        if (chan_len(chans[ch]) > caps[ch] || chan_cap(chans[ch]) != caps[ch])
            FAIL("chan_len %zu / chan_cap %zu on a channel of cap %zu", chan_len(chans[ch]),
                 chan_cap(chans[ch]), caps[ch]);
        break;
    }
    task_op_end();
    atomic_store_explicit(&w->current, -1, memory_order_relaxed);
    w->ops[kind]++;
    atomic_fetch_add_explicit(&w->progress, 1, memory_order_relaxed);
}

/* ---- A plugged-in scheduler that checks libchan's promises to schedulers (-S) -------------------
 *
 * With -S, the odd-numbered workers install this struct chan_sched: a task per thread whose
 * park/unpark is a mutex, a condition variable on CLOCK_MONOTONIC and a permit. Plain threads
 * and hooked ones share every channel. It checks what chan.h promises a scheduler:
 *   - park is called only on the thread that installed the hook, for that thread's task;
 *   - unpark names a task whose operation is still in progress (libchan makes no call with a
 *     task's handle after its operation returned), and never lands on a pending permit
 *     (exactly once per block);
 *   - no permit is left over when an operation returns (the park-once-more rule);
 *   - park returns 0 only after an unpark, -ETIMEDOUT only at or after the deadline. */
struct task {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int permit;
    pthread_t owner;
    atomic_int in_op;
};

static _Thread_local struct task *self_task;
static atomic_ulong hook_parks, hook_unparks, hook_timeouts;

static void *task_current(void)
{
    if (!self_task)
        FAIL("scheduler hook: current() on a thread without a task");
    return self_task;
}

static int task_park(void *arg, int64_t deadline)
{
    struct task *t = arg;
    atomic_fetch_add_explicit(&hook_parks, 1, memory_order_relaxed);
    if (t != self_task || !pthread_equal(t->owner, pthread_self()))
        FAIL("scheduler hook: park() on another thread than the task's");
    if (!atomic_load(&t->in_op))
        FAIL("scheduler hook: park() outside an operation");
    pthread_mutex_lock(&t->m);
    while (!t->permit) {
        if (deadline == CHAN_FOREVER) {
            pthread_cond_wait(&t->cv, &t->m);
            continue;
        }
        struct timespec ts = {(time_t)(deadline / 1000000000LL), (long)(deadline % 1000000000LL)};
        if (deadline < 0)
            ts.tv_sec = 0, ts.tv_nsec = 0;
        if (pthread_cond_timedwait(&t->cv, &t->m, &ts) == ETIMEDOUT && !t->permit) {
            pthread_mutex_unlock(&t->m);
            if (chan_now() < deadline)
                FAIL("scheduler hook: timed out before the deadline (the test's own park)");
            atomic_fetch_add_explicit(&hook_timeouts, 1, memory_order_relaxed);
            return -ETIMEDOUT;
        }
    }
    t->permit = 0;
    pthread_mutex_unlock(&t->m);
    return 0;
}

static void task_unpark(void *arg)
{
    struct task *t = arg;
    atomic_fetch_add_explicit(&hook_unparks, 1, memory_order_relaxed);
    if (!atomic_load(&t->in_op))
        FAIL("scheduler hook: unpark() of a task whose operation has returned");
    pthread_mutex_lock(&t->m);
    if (t->permit)
        FAIL("scheduler hook: a second unpark() before the first was consumed");
    t->permit = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->m);
}

static const struct chan_sched test_sched = {task_current, task_park, task_unpark};
static bool use_hook;

static void task_init(struct task *t)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->m, NULL);
    t->permit = 0;
    t->owner = pthread_self();
    atomic_init(&t->in_op, 0);
}

/* Around every operation of a hooked worker. */
static void task_op_begin(void)
{
    if (self_task)
        atomic_store(&self_task->in_op, 1);
}

static void task_op_end(void)
{
    struct task *t = self_task;
    if (!t)
        return;
    pthread_mutex_lock(&t->m);
    if (t->permit)
        FAIL("scheduler hook: a permit outlived its operation");
    pthread_mutex_unlock(&t->m);
    atomic_store(&t->in_op, 0);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct task task;
    if (use_hook && w->id % 2 == 1) {
        task_init(&task);
        self_task = &task;
        chan_sched_set(&test_sched);
    }
    for (;;) {
        pthread_barrier_wait(&bar); /* epoch start (or the end of the run) */
        if (atomic_load(&stop) == 2)
            return NULL;
        while (!atomic_load_explicit(&stop, memory_order_relaxed))
            one_op(w);
        pthread_barrier_wait(&bar); /* epoch end */
    }
}

/* ---- The epochs ---------------------------------------------------------------------------- */

static void check_epoch(void)
{
    for (int i = 0; i < NCH; i++) {
        struct val v;
        int r;
        memset(&v, 0xAA, sizeof v);
        while ((r = chan_tryrecv(chans[i], &v)) == 0) {
            got_value(i, &v);
            memset(&v, 0xAA, sizeof v);
        }
        if (r != -EPIPE)
            FAIL("draining closed channel %d: %d", i, r);
        if (chan_len(chans[i]) != 0)
            FAIL("channel %d drained but chan_len %zu", i, chan_len(chans[i]));
        if ((r = chan_free(chans[i])) != 0)
            FAIL("chan_free of channel %d after the epoch: %d", i, r);
        if (atomic_load(&close_zero[i]) != 1)
            FAIL("channel %d: %d closes returned 0", i, atomic_load(&close_zero[i]));
    }
    if (atomic_load(&sig_sent) != atomic_load(&sig_recvd))
        FAIL("signal channel: %lu sends returned 0, %lu receives got a value",
             atomic_load(&sig_sent), atomic_load(&sig_recvd));
    for (int t = 0; t < nthreads; t++) {
        struct worker *w = &workers[t];
        for (uint32_t s = 0; s < w->seq; s++) {
            uint8_t st = atomic_load(&w->state[s]), n = atomic_load(&w->recvd[s]);
            if (st == SENT && n == 1)
                w->values_ok++;
            else if (!(st == FAILED && n == 0))
                FAIL("value %d/%u: send %s, received %u times", t, s,
                     st == SENT     ? "returned 0"
                     : st == FAILED ? "failed"
                                    : "still pending",
                     n);
        }
        memset((void *)w->state, 0, w->seq);
        memset((void *)w->recvd, 0, w->seq);
        w->seq = 0;
    }
}

static unsigned long progress_sum(void)
{
    unsigned long n = 0;
    for (int t = 0; t < nthreads; t++)
        n += atomic_load_explicit(&workers[t].progress, memory_order_relaxed);
    return n;
}

/* An epoch ends by closing every channel, after which every operation returns within moments.
 * An epoch that has not ended long after it began is a lost wake-up (or a deadlock): say which
 * operation each worker is stuck in and abort, rather than hang the build. */
static atomic_int in_epoch;
static _Atomic int64_t epoch_began;

static void *watchdog_main(void *arg)
{
    int64_t limit = (int64_t)(intptr_t)arg * 1000000000LL;
    for (;;) {
        sleep(1);
        if (!atomic_load(&in_epoch) || chan_now() - atomic_load(&epoch_began) < limit)
            continue;
        fprintf(stderr,
                "stress: HANG: epoch %u has not ended %lld s after it began; workers "
                "inside an operation:",
                atomic_load(&epoch), (long long)(limit / 1000000000LL));
        for (int t = 0; t < nthreads; t++) {
            int k = atomic_load(&workers[t].current);
            if (k >= 0)
                fprintf(stderr, " [%d] %s", t, kind_names[k]);
        }
        fputc('\n', stderr);
        abort();
    }
    return NULL;
}

/* ---- Goroutines (-G) ------------------------------------------------------------------------ */

static int ngs =
    0; /* workers 0 .. ngs-1 are Gs (-G), spawned afresh each epoch; the rest threads */
static int nprocs = 2;

#ifdef STRESS_MPG
static chan_wg_t *gs_wg; /* the epoch's Gs: each one's last act is chan_wg_done */

/* A G's share of one epoch. Now and then it yields, sleeps on the scheduler's timer, or makes a
 * system call (sysmon may hand its P to another M meanwhile, and the G resume on that one). */
static void g_epoch(void *arg)
{
    struct worker *w = arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t r = rnd(w);
        if (r % 256 == 0) {
            chan_mpg_yield();
        } else if (r % 256 == 1) {
            chan_mpg_sleep_until(chan_now() + (int64_t)((r >> 20) % 100000));
        } else if (r % 256 == 2) {
            chan_mpg_syscall_enter();
            sleep_us((long)((r >> 20) % 100));
            chan_mpg_syscall_exit();
        }
        one_op(w);
    }
    int r = chan_wg_done(gs_wg);
    if (r != 0)
        FAIL("chan_wg_done for an epoch's G returned %d", r);
}

static void gs_start(void)
{
    struct chan_mpg_config cfg = {.nprocs = nprocs, .stack_size = 256 * 1024};
    int r = chan_mpg_start_config(&cfg);
    if (r != 0 || !(gs_wg = chan_wg_make())) {
        fprintf(stderr, "stress: chan_mpg_start: %d\n", r);
        exit(2);
    }
    chan_mpg_foreign_enter(); /* the main thread shares channels with the Gs */
}

static void gs_spawn(void)
{
    if (chan_wg_add(gs_wg, ngs) != 0)
        FAIL("chan_wg_add for the epoch's Gs failed");
    for (int t = 0; t < ngs; t++)
        if (chan_mpg_go(g_epoch, &workers[t]) <= 0) {
            fprintf(stderr, "stress: chan_mpg_go failed\n");
            exit(2);
        }
}

static void gs_join(void)
{
    int r = chan_wg_wait(gs_wg);
    if (r != 0)
        FAIL("chan_wg_wait for the epoch's Gs returned %d", r);
}

/* ---- Partial deadlocks under load (-D, with -G) ---------------------------------------------
 *
 * chan_mpg(3) reports a deadlock in chan_mpg_wait() only when every G is asleep; some Gs blocked
 * forever while others run is a partial deadlock, which it leaves to chan_leak_check()
 * (chan_leak(3)). So with -D, at the start of each epoch, while the workers run, the main thread
 * plants three Gs that deadlock on purpose: a cycle (G a receives on c1 and would then send on
 * c2; G b receives on c2 and would then send on c1: each keeps both channels on its stack) and
 * a G blocked on a channel that only it holds. Nothing else holds those channels as pointers:
 * the program keeps them xored (dl_pool), to close them afterwards. The main thread then runs
 * chan_leak_check() until a report names all three: every G a report names must be one of them
 * (a reported leak is real, and nothing else in the soak is leaked: its channels are all held
 * by globals or live structures), and the count it returns is the number it names. A check
 * that misses some is allowed (the check is conservative: a stale copy of an address hides a
 * leak) and counted; at most 50 checks. The main thread then closes the channels, the three
 * return, and the epoch goes on. At the end, chan_mpg_wait() reports no deadlock (gs_stop). */
#define DL_N 3
#define DL_KEY 0x5a5a00000000a5a5ull
#define DL_POOL 4096                    /* epochs with a planted deadlock, at most */
static uint64_t dl_pool[DL_POOL][DL_N]; /* every planted channel, xored with DL_KEY */
static unsigned long dl_next;           /* the next epoch's row */
static _Atomic uint64_t dl_chan[DL_N];  /* this epoch's c1, c2, c3, xored */
static _Atomic int64_t dl_id[DL_N];     /* the Gs a, b, c */
static atomic_int dl_blocking, dl_done;
static bool use_deadlock;
static unsigned long dl_found, dl_checks, dl_missed;

static chan_t *dl_get(int i) { return (chan_t *)(uintptr_t)(atomic_load(&dl_chan[i]) ^ DL_KEY); }

static void dl_block(chan_t *on, chan_t *then)
{
    atomic_fetch_add(&dl_blocking, 1);
    int r = chan_recv(on, NULL);
    if (r != -EPIPE)
        FAIL("a deadlocked G's receive returned %d, not -EPIPE", r);
    /* The channel it would send on next: kept on its stack across the wait (not sent on: the
     * main thread closes the channels one by one, and the other G may still be receiving). */
    if (then && chan_cap(then) != 0)
        FAIL("a deadlocked G's channel has a capacity");
    atomic_fetch_add(&dl_done, 1);
}

static void dl_b(void *arg)
{
    (void)arg;
    dl_block(dl_get(1), dl_get(0));
}

static void dl_a(void *arg)
{
    (void)arg;
    atomic_store(&dl_id[1], chan_mpg_go(dl_b, NULL));
    dl_block(dl_get(0), dl_get(1));
}

static void dl_c(void *arg)
{
    (void)arg;
    dl_block(dl_get(2), NULL);
}

/* The planted channels are made at the start and freed at the end, each used once: a fresh
 * channel at the address of one freed earlier would meet stale copies of that address in the
 * slots of live frames that were not written since, which hide a leak (chan_leak(3),
 * "Conservative"). Then the stack below is scrubbed of the addresses that passed through it. */
static __attribute__((noinline)) void dl_scrub(void)
{
    volatile char pad[65536];
    memset((char *)pad, 0, sizeof pad);
}

static __attribute__((noinline)) void dl_make_pool(void)
{
    for (int e = 0; e < DL_POOL; e++)
        for (int i = 0; i < DL_N; i++) {
            chan_t *c = chan_make(0, 0);
            if (!c) {
                perror("stress: chan_make");
                exit(2);
            }
            dl_pool[e][i] = (uint64_t)(uintptr_t)c ^ DL_KEY;
        }
}

static void dl_free_pool(void)
{
    for (int e = 0; e < DL_POOL; e++)
        for (int i = 0; i < DL_N; i++) {
            int r = chan_free((chan_t *)(uintptr_t)(dl_pool[e][i] ^ DL_KEY));
            if (r != 0)
                FAIL("chan_free of a deadlocked G's channel returned %d", r);
        }
}

/* The Gs a report names (the headers "goroutine N [" at the start of a line, before the
 * wait-for picture): how many, and whether each is one of the three (*all: all three named). */
static int dl_named(const char *rep, bool *all)
{
    int n = 0;
    bool seen[DL_N] = {false};
    for (const char *p = rep; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, "wait-for", 8) == 0)
            break;
        if (strncmp(p, "thread ", 7) == 0) {
            FAIL("a partial deadlock report names a thread, none being deadlocked:\n%s", rep);
            continue;
        }
        long long id;
        if (sscanf(p, "goroutine %lld [", &id) != 1)
            continue;
        n++;
        int k = 0;
        while (k < DL_N && atomic_load(&dl_id[k]) != id)
            k++;
        if (k == DL_N)
            FAIL("a partial deadlock report names goroutine %lld, not one deadlocked on "
                 "purpose:\n%s",
                 id, rep);
        else if (seen[k])
            FAIL("a partial deadlock report names goroutine %lld twice:\n%s", id, rep);
        else
            seen[k] = true;
    }
    *all = seen[0] && seen[1] && seen[2];
    return n;
}

static void dl_step(void)
{
    if (dl_next == DL_POOL)
        return;
    for (int i = 0; i < DL_N; i++)
        atomic_store(&dl_chan[i], dl_pool[dl_next][i]);
    dl_next++;
    atomic_store(&dl_blocking, 0);
    atomic_store(&dl_done, 0);
    atomic_store(&dl_id[0], chan_mpg_go(dl_a, NULL));
    atomic_store(&dl_id[2], chan_mpg_go(dl_c, NULL));
    if (atomic_load(&dl_id[0]) <= 0 || atomic_load(&dl_id[2]) <= 0) {
        fprintf(stderr, "stress: chan_mpg_go failed\n");
        exit(2);
    }
    while (atomic_load(&dl_blocking) < DL_N)
        sleep_us(100);
    bool all = false;
    for (int k = 0; k < 50 && !all; k++) {
        char *rep = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&rep, &len);
        if (!f) {
            perror("open_memstream");
            exit(2);
        }
        int r = chan_leak_check(f, NULL);
        fclose(f);
        dl_checks++;
        if (r < 0) {
            FAIL("chan_leak_check returned %d", r);
            free(rep);
            break;
        }
        int named = dl_named(rep, &all);
        if (named != r)
            FAIL("chan_leak_check returned %d but its report names %d goroutines:\n%s", r, named,
                 rep);
        if (!all)
            dl_missed++;
        if (!all && k == 49 && !quiet)
            fprintf(stderr,
                    "stress: goroutines %lld, %lld and %lld deadlocked; the last "
                    "check found %d:\n%s\n",
                    (long long)dl_id[0], (long long)dl_id[1], (long long)dl_id[2], r, rep);
        free(rep);
        if (!all)
            sleep_us(1000 + 1000 * k);
    }
    if (all)
        dl_found++;
    for (int i = 0; i < DL_N; i++)
        chan_close(dl_get(i));
    while (atomic_load(&dl_done) < DL_N)
        sleep_us(100);
}

/* At the end of the run every G has returned: chan_mpg_wait says so (no deadlock report) and
 * chan_mpg_stop succeeds. */
static void gs_stop(void)
{
    int r;
    if ((r = chan_wg_free(gs_wg)) != 0)
        FAIL("chan_wg_free of the epochs' WaitGroup returned %d", r);
    chan_mpg_foreign_leave();
    if ((r = chan_mpg_wait()) != 0)
        FAIL("chan_mpg_wait at the end returned %d", r);
    if ((r = chan_mpg_stop()) != 0)
        FAIL("chan_mpg_stop at the end returned %d", r);
}
#else
static void gs_start(void) {}
static void gs_spawn(void) {}
static void gs_join(void) {}
static void gs_stop(void) {}
static bool use_deadlock;
static unsigned long dl_found, dl_checks, dl_missed;
static void dl_step(void) {}
static void dl_make_pool(void) {}
static void dl_scrub(void) {}
static void dl_free_pool(void) {}
#endif

int main(int argc, char **argv)
{
    double duration = 3;
    long epoch_ms = 50;
    uint64_t seed = (uint64_t)chan_now();
    long hang_secs = 120;
    int opt;
    while ((opt = getopt(argc, argv, "d:t:e:s:qw:SLGDP:")) != -1) {
        switch (opt) {
        case 'd': duration = atof(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'e': epoch_ms = atol(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'q': quiet = true; break;
        case 'w': hang_secs = atol(optarg); break;
        case 'S': use_hook = true; break;
        case 'L': use_layers = true; break;
        case 'G': use_mpg = true; break;
        case 'D': use_deadlock = true; break;
        case 'P': nprocs = atoi(optarg); break;
        default:
            fprintf(stderr,
                    "usage: %s [-d seconds] [-t threads] [-e epoch_ms] [-s seed] [-q] "
                    "[-w hang_secs] [-S] [-L] [-G] [-D] [-P procs]\n",
                    argv[0]);
            return 2;
        }
    }
#ifndef STRESS_MPG
    if (use_mpg) {
        fprintf(stderr, "stress: -G needs the build with libchan-mpg (stress_mpg)\n");
        return 2;
    }
#endif
    if (use_deadlock && !use_mpg) {
        fprintf(stderr, "stress: -D needs -G\n");
        return 2;
    }
#ifdef STRESS_MPG
    if (use_deadlock && chan_dump_enable() != 0) { /* the registry chan_leak_check reads */
        fprintf(stderr, "stress: -D: chan_dump_enable failed\n");
        return 2;
    }
#endif
    if (use_deadlock) {
        dl_make_pool();
        dl_scrub();
    }
    if (use_mpg && (nprocs < 1 || nprocs > 1024)) {
        fprintf(stderr, "stress: procs must be 1..1024\n");
        return 2;
    }
    if (nthreads < 2 || nthreads > MAXT || duration <= 0 || epoch_ms <= 0) {
        fprintf(stderr, "stress: threads must be 2..%d, duration and epoch positive\n", MAXT);
        return 2;
    }
    if (use_mpg)
        ngs = nthreads - (nthreads / 4 > 0 ? nthreads / 4 : 1);
    printf("stress: %d workers (%d Gs on %d Ps, %d threads%s)%s, %.1f s, epochs of %ld ms, "
           "seed %#llx\n",
           nthreads, ngs, use_mpg ? nprocs : 0, nthreads - ngs,
           use_hook ? ", odd ones through a plugged-in scheduler" : "",
           use_layers ? " with timers, contexts and groups" : "", duration, epoch_ms,
           (unsigned long long)seed);
    fflush(stdout);

    if (use_mpg)
        gs_start();
    pthread_barrier_init(&bar, NULL, (unsigned)(nthreads - ngs) + 1);
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog_main, (void *)(intptr_t)hang_secs);
    pthread_detach(wd);
    pthread_t th[MAXT];
    for (int t = 0; t < nthreads; t++) {
        workers[t].id = t;
        atomic_init(&workers[t].current, -1);
        workers[t].rng = mix(seed + (uint64_t)t * 0x9e3779b97f4a7c15ull) | 1;
        workers[t].state = calloc(PER, 1);
        workers[t].recvd = calloc(PER, 1);
        if (!workers[t].state || !workers[t].recvd)
            return 2;
        if (t < ngs)
            continue;
#ifdef STRESS_MPG
        if (use_mpg) /* announced before it starts: Gs may wait on it from then on */
            chan_mpg_foreign_enter();
#endif
        pthread_create(&th[t], NULL, worker_main, &workers[t]);
    }

    int64_t end = chan_now() + (int64_t)(duration * 1e9);
    unsigned long epochs = 0, stalls = 0, closes_at_end = 0;
    do {
        atomic_store(&epoch, (uint32_t)epochs);
        for (int i = 0; i < NCH; i++) {
            chans[i] = chan_make(i == SIG ? 0 : sizeof(struct val), caps[i]);
            if (!chans[i]) {
                perror("chan_make");
                return 2;
            }
            atomic_store(&closed_seen[i], 0);
            atomic_store(&drained_seen[i], 0);
            atomic_store(&close_zero[i], 0);
        }
        atomic_store(&sig_sent, 0);
        atomic_store(&sig_recvd, 0);
        if (use_layers)
            layers_begin(mix(seed ^ (epochs * 0x9e3779b97f4a7c15ull)));
        atomic_store(&stop, 0);
        atomic_store(&epoch_began, chan_now());
        atomic_store(&in_epoch, 1);
        if (use_mpg)
            gs_spawn();
        pthread_barrier_wait(&bar);
        if (use_deadlock)
            dl_step(); /* while the workers run */

        /* Let the epoch run; end it early when every worker is blocked (no progress). */
        int64_t epoch_end = chan_now() + epoch_ms * 1000000;
        unsigned long last = progress_sum();
        int idle = 0;
        while (chan_now() < epoch_end) {
            sleep_us(500);
            unsigned long now = progress_sum();
            idle = now == last ? idle + 1 : 0;
            last = now;
            if (idle >= 6) {
                stalls++;
                break;
            }
        }
        if (use_layers)
            layers_cancel();
        for (int i = 0; i < NCH; i++) {
            bool closed = atomic_load(&closed_seen[i]);
            int r = chan_close(chans[i]);
            if (r == 0) {
                atomic_fetch_add(&close_zero[i], 1);
                closes_at_end++;
                if (closed)
                    FAIL("chan_close returned 0 after the channel was seen closed");
            } else if (r != -EPIPE) {
                FAIL("chan_close at the end of the epoch: %d", r);
            }
            atomic_store(&closed_seen[i], 1);
        }
        atomic_store(&stop, 1);
        pthread_barrier_wait(&bar);
        if (use_mpg)
            gs_join();
        atomic_store(&in_epoch, 0);
        check_epoch();
        if (use_layers)
            layers_end();
        epochs++;
    } while (chan_now() < end && atomic_load(&violations) == 0);
    atomic_store(&stop, 2);
    pthread_barrier_wait(&bar);
    for (int t = ngs; t < nthreads; t++) {
        pthread_join(th[t], NULL);
#ifdef STRESS_MPG
        if (use_mpg)
            chan_mpg_foreign_leave();
#endif
    }
    if (use_mpg)
        gs_stop();
    if (use_deadlock)
        dl_free_pool();

    unsigned long total = 0, per_kind[K_NKINDS] = {0}, values = 0;
    for (int t = 0; t < nthreads; t++) {
        for (int k = 0; k < K_NKINDS; k++) {
            per_kind[k] += workers[t].ops[k];
            total += workers[t].ops[k];
        }
        values += workers[t].values_ok;
        free((void *)workers[t].state);
        free((void *)workers[t].recvd);
    }
    if (!quiet) {
        printf("stress: operations by kind:");
        for (int k = 0; k < K_NKINDS; k++)
            printf(" %s %lu%s", kind_names[k], per_kind[k], k + 1 < K_NKINDS ? "," : "\n");
    }
    /* Every park consumed an unpark or timed out, and every unpark was consumed. */
    if (use_hook &&
        atomic_load(&hook_parks) != atomic_load(&hook_unparks) + atomic_load(&hook_timeouts))
        FAIL("scheduler hook: %lu parks, but %lu unparks and %lu time-outs",
             atomic_load(&hook_parks), atomic_load(&hook_unparks), atomic_load(&hook_timeouts));
    printf("stress: %lu operations in %lu epochs (%lu ended early, all blocked; %lu worker "
           "closes); %lu values checked: each sent once, received once; %lu violations\n",
           total, epochs, stalls, per_kind[K_CLOSE], values, atomic_load(&violations));
    if (use_layers)
        printf("stress: layers: %lu timer values and %lu ticks received, %lu func timer calls, "
               "%lu context cancellations seen, %lu group and WaitGroup tasks run\n",
               atomic_load(&tm_recvd_total), atomic_load(&tk_recvd), atomic_load(&ftm_calls_total),
               atomic_load(&ctx_dones), atomic_load(&tasks_run));
    if (use_layers)
        printf("stress: layers: a WaitGroup reused for %lu rounds (%lu adds refused -EBUSY, %lu "
               "waits returned 0); %lu timers freed under receivers (%lu with some queued, %lu "
               "frees refused -EBUSY); %lu groups with limits changed under their tasks\n",
               atomic_load(&rwg_rounds), atomic_load(&rwg_busy_seen), atomic_load(&rwg_waits_ok),
               atomic_load(&vt_frees), atomic_load(&vt_racing), atomic_load(&vt_busy_frees),
               per_kind[K_GROUP_LIMIT]);
    if (use_deadlock)
        printf("stress: partial deadlocks: %lu of %lu planted found by chan_leak_check (%lu "
               "checks, %lu of them missing some), none misnamed\n",
               dl_found, epochs, dl_checks, dl_missed);
    if (use_hook && !atomic_load(&violations))
        printf(
            "stress: scheduler hook: %lu parks (%lu timed out), %lu unparks, its contract held\n",
            atomic_load(&hook_parks), atomic_load(&hook_timeouts), atomic_load(&hook_unparks));
    return atomic_load(&violations) ? 1 : 0;
}
