/* SPDX-License-Identifier: MIT */
/*
 * stress.c - a soak test: threads run random mixes of send, recv, their try and until forms,
 * select (blocking, try, until; 1 to 16 cases, NULL cases, the same channel twice) and close,
 * on unbuffered and buffered channels, with conservation accounting. Not a Check suite: a
 * plain program, run by `make stress DURATION=N THREADS=N` and briefly by `make test`.
 *
 *   build/MODE/test/stress [-d seconds] [-t threads] [-e epoch_ms] [-s seed] [-q] [-w secs] [-S]
 *
 * -S: the odd-numbered workers block through a plugged-in struct chan_sched that checks the
 * promises chan.h makes to schedulers (see task_park below), sharing the channels with plain
 * threads.
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
    unsigned long ops[16];
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
    K_NKINDS
};
static const char *kind_names[K_NKINDS] = {"send",         "recv",       "trysend", "tryrecv",
                                           "send_until",   "recv_until", "select",  "tryselect",
                                           "select_until", "close",      "len/cap"};

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "stress: VIOLATION: " __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                                       \
        if (atomic_fetch_add(&violations, 1) > 20)                                                 \
            abort();                                                                               \
    } while (0)

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint64_t rnd(struct worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static uint64_t checksum(const struct val *v)
{
    return mix(v->id ^ ((uint64_t)v->ch << 40) ^ ((uint64_t)v->epoch << 20) ^ 0x5bd1e995);
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

/* The plugged-in scheduler's bookkeeping around each operation (-S; below). */
static void task_op_begin(void);
static void task_op_end(void);

static void one_op(struct worker *w)
{
    uint64_t r = rnd(w);
    int ch = (int)((r >> 16) % NCH);
    unsigned pick = (unsigned)(r % 1000);
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

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int main(int argc, char **argv)
{
    double duration = 3;
    long epoch_ms = 50;
    uint64_t seed = (uint64_t)chan_now();
    long hang_secs = 120;
    int opt;
    while ((opt = getopt(argc, argv, "d:t:e:s:qw:S")) != -1) {
        switch (opt) {
        case 'd': duration = atof(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'e': epoch_ms = atol(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'q': quiet = true; break;
        case 'w': hang_secs = atol(optarg); break;
        case 'S': use_hook = true; break;
        default:
            fprintf(
                stderr,
                "usage: %s [-d seconds] [-t threads] [-e epoch_ms] [-s seed] [-q] [-w hang_secs] "
                "[-S]\n",
                argv[0]);
            return 2;
        }
    }
    if (nthreads < 2 || nthreads > MAXT || duration <= 0 || epoch_ms <= 0) {
        fprintf(stderr, "stress: threads must be 2..%d, duration and epoch positive\n", MAXT);
        return 2;
    }
    printf("stress: %d threads%s, %.1f s, epochs of %ld ms, seed %#llx\n", nthreads,
           use_hook ? " (odd ones through a plugged-in scheduler)" : "", duration, epoch_ms,
           (unsigned long long)seed);
    fflush(stdout);

    pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
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
        atomic_store(&stop, 0);
        atomic_store(&epoch_began, chan_now());
        atomic_store(&in_epoch, 1);
        pthread_barrier_wait(&bar);

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
        atomic_store(&in_epoch, 0);
        check_epoch();
        epochs++;
    } while (chan_now() < end && atomic_load(&violations) == 0);
    atomic_store(&stop, 2);
    pthread_barrier_wait(&bar);
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);

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
    if (use_hook && !atomic_load(&violations))
        printf(
            "stress: scheduler hook: %lu parks (%lu timed out), %lu unparks, its contract held\n",
            atomic_load(&hook_parks), atomic_load(&hook_timeouts), atomic_load(&hook_unparks));
    return atomic_load(&violations) ? 1 : 0;
}
