/* SPDX-License-Identifier: MIT */
/*
 * fuzz_threads.c - libFuzzer target: decoded operation sequences run on several threads at
 * once over two channels, with invariant checks. Built with ASan+UBSan for fuzzing (make fuzz)
 * and with TSan for replaying the corpus (make fuzz-tsan, through replay_main.c).
 *
 * Input: byte 0: threads (2..4); bytes 1, 2: the two channels' caps (0..3); then operations,
 * dealt to the threads in turn (operation i to thread i % threads), each an opcode byte and its
 * operands. Every operation is bounded: try forms, deadlines of at most ~0.2 ms, and blocking
 * forms, which the main thread releases by closing both channels when the threads have stopped
 * making progress.
 *
 * Invariants checked (the same books as test/stress.c, for one short run):
 *   - each value (thread, sequence) whose send returned 0, or whose select send case was chosen
 *     with ok, is received exactly once, from the channel it was sent on; a failed send's value
 *     is never received; nothing is received that was not sent;
 *   - once a receive on c reported closed-and-drained, a receive on c that starts later returns
 *     -EPIPE; once a close of c returned (or a send reported closed), a send that starts later
 *     returns -EPIPE; exactly one chan_close per channel returns 0;
 *   - return codes are among those chan.h allows for the call; only the chosen case's ok is
 *     written; at the end, both channels drain to -EPIPE and chan_free returns 0.
 */
#include "fuzz_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#define NCH 2
#define MAXT 4
#define MAXOPS 128            /* per thread */
#define NSEQ (MAXOPS * 4 + 1) /* value sequence numbers per thread: 1.. (a select sends up to 4) */

struct val {
    uint32_t id; /* thread << 16 | sequence; 0 never used */
    uint32_t ch;
};

struct prog {
    uint8_t op[MAXOPS], a[MAXOPS], b[MAXOPS];
    int n;
};

static chan_t *chans[NCH];
static int nthreads;
static struct prog progs[MAXT];
static _Atomic uint8_t state[MAXT][NSEQ]; /* 0 unused, 1 pending, 2 sent, 3 failed */
static _Atomic uint8_t recvd[MAXT][NSEQ];
static atomic_int closed_seen[NCH], drained_seen[NCH], close_zero[NCH];
static atomic_int finished;
static atomic_ulong progress;

/* Figures, printed when the fuzzer exits. */
static unsigned long n_inputs, n_threads, n_values;
static atomic_ulong n_ops;

static void print_figures(void)
{
    fprintf(stderr,
            "fuzz_threads: %lu inputs, %lu threads, %lu operations, %lu values checked "
            "(each sent value received once, nothing else received)\n",
            n_inputs, n_threads, (unsigned long)atomic_load(&n_ops), n_values);
}

static void got(int ch, const struct val *v)
{
    uint32_t t = v->id >> 16, s = v->id & 0xffff;
    CHECK(t < (uint32_t)nthreads && s < NSEQ && v->id != 0, "bogus value %#x", v->id);
    CHECK((int)v->ch == ch, "value %#x sent on %u, received on %d", v->id, v->ch, ch);
    uint8_t st = atomic_load(&state[t][s]);
    CHECK(st == 1 || st == 2, "value %#x received, state %u", v->id, st);
    CHECK(atomic_fetch_add(&recvd[t][s], 1) == 0, "value %#x received twice", v->id);
}

static void after_send(int ch, bool was_closed, int r)
{
    if (r == -EPIPE)
        atomic_store(&closed_seen[ch], 1);
    else
        CHECK(!was_closed, "send on channel %d returned %d after it was seen closed", ch, r);
}

static void after_recv(int ch, bool was_drained, int r)
{
    if (r == -EPIPE)
        atomic_store(&drained_seen[ch], 1);
    else
        CHECK(!was_drained, "receive on channel %d returned %d after it was seen drained", ch, r);
}

static int64_t deadline(uint8_t b)
{
    switch (b % 4) {
    case 0: return 0;
    case 1: return chan_now() + 20000;
    case 2: return chan_now() + 100000;
    default: return chan_now() + 200000;
    }
}

struct tctx {
    int t;
    uint32_t seq;
};

static struct val fresh(struct tctx *x, int ch)
{
    uint32_t s = ++x->seq;
    atomic_store(&state[x->t][s], 1);
    return (struct val){(uint32_t)x->t << 16 | s, (uint32_t)ch};
}

static void settle(const struct val *v, bool sent)
{
    atomic_store(&state[v->id >> 16][v->id & 0xffff], sent ? 2 : 3);
}

static void run_op(struct tctx *x, uint8_t op, uint8_t a, uint8_t b)
{
    int ch = a % NCH;
    chan_t *c = chans[ch];
    int r;
    switch (op % 8) {
    case 0: /* send: try, until, or blocking */
    case 1: {
        struct val v = fresh(x, ch);
        bool cl = atomic_load(&closed_seen[ch]);
        int form = (a >> 1) % 4;
        r = form == 0   ? chan_trysend(c, &v)
            : form == 3 ? chan_send(c, &v)
                        : chan_send_until(c, &v, deadline(b));
        CHECK(r == 0 || r == -EPIPE || (form == 0 && r == -EAGAIN) ||
                  ((form == 1 || form == 2) && r == -ETIMEDOUT),
              "send form %d: %d", form, r);
        settle(&v, r == 0);
        after_send(ch, cl, r);
        break;
    }
    case 2: /* recv */
    case 3: {
        struct val v = {0xdeadbeef, 0xdeadbeef};
        bool dr = atomic_load(&drained_seen[ch]);
        int form = (a >> 1) % 4;
        r = form == 0   ? chan_tryrecv(c, &v)
            : form == 3 ? chan_recv(c, &v)
                        : chan_recv_until(c, &v, deadline(b));
        CHECK(r == 0 || r == -EPIPE || (form == 0 && r == -EAGAIN) ||
                  ((form == 1 || form == 2) && r == -ETIMEDOUT),
              "recv form %d: %d", form, r);
        if (r == 0)
            got(ch, &v);
        if (r == -EPIPE)
            CHECK(v.id == 0 && v.ch == 0, "closed receive did not zero *elem");
        after_recv(ch, dr, r);
        break;
    }
    case 4: /* select of 1..4 cases: the bits of a choose channel and direction */
    case 5: {
        struct chan_case cs[4];
        struct val v[4];
        bool flag[4];
        int n = 1 + (b >> 4) % 4, form = (b >> 2) % 4;
        bool known_ready = false;
        for (int k = 0; k < n; k++) {
            int kc = (a >> (2 * k)) & 1;
            bool send = (a >> (2 * k + 1)) & 1;
            if (send)
                v[k] = fresh(x, kc);
            else
                v[k] = (struct val){0xdeadbeef, 0xdeadbeef};
            cs[k] = (struct chan_case){
                .chan = chans[kc], .elem = &v[k], .dir = send ? CHAN_SEND : CHAN_RECV, .ok = true};
            flag[k] = send ? atomic_load(&closed_seen[kc]) : atomic_load(&drained_seen[kc]);
            known_ready |= flag[k];
        }
        r = form == 0   ? chan_tryselect(cs, (size_t)n)
            : form == 3 ? chan_select(cs, (size_t)n)
                        : chan_select_until(cs, (size_t)n, deadline(b));
        if (r < 0) {
            CHECK((form == 0 && r == -EAGAIN) || ((form == 1 || form == 2) && r == -ETIMEDOUT),
                  "select form %d: %d", form, r);
            CHECK(!known_ready, "select not ready with a case on a channel seen closed");
        } else {
            CHECK(r < n, "select index %d of %d", r, n);
        }
        for (int k = 0; k < n; k++) {
            int kc = cs[k].chan == chans[0] ? 0 : 1;
            if (k != r) {
                CHECK(cs[k].ok, "ok of unchosen case %d written", k);
                if (cs[k].dir == CHAN_SEND)
                    settle(&v[k], false);
                continue;
            }
            if (cs[k].dir == CHAN_SEND) {
                settle(&v[k], cs[k].ok);
                after_send(kc, flag[k], cs[k].ok ? 0 : -EPIPE);
            } else {
                if (cs[k].ok)
                    got(kc, &v[k]);
                else
                    CHECK(v[k].id == 0, "closed recv case did not zero *elem");
                after_recv(kc, flag[k], cs[k].ok ? 0 : -EPIPE);
            }
        }
        break;
    }
    case 6: /* close, rarely; otherwise len and cap */
        if (b % 4 == 0) {
            bool cl = atomic_load(&closed_seen[ch]);
            r = chan_close(c);
            CHECK(r == 0 || r == -EPIPE, "close: %d", r);
            CHECK(!(r == 0 && cl), "close returned 0 after the channel was seen closed");
            if (r == 0)
                atomic_fetch_add(&close_zero[ch], 1);
            atomic_store(&closed_seen[ch], 1);
        } else {
            CHECK(chan_len(c) <= chan_cap(c), "len %zu > cap %zu", chan_len(c), chan_cap(c));
        }
        break;
    default: /* a yield, to vary interleavings */
        if (b & 1)
            sched_yield();
        break;
    }
    atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_ops, 1, memory_order_relaxed);
}

static void *thread_main(void *arg)
{
    struct tctx x = {(int)(intptr_t)arg, 0};
    const struct prog *p = &progs[x.t];
    for (int i = 0; i < p->n; i++)
        run_op(&x, p->op[i], p->a[i], p->b[i]);
    atomic_fetch_add(&finished, 1);
    return NULL;
}

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size, 0};
    if (n_inputs++ == 0)
        atexit(print_figures);
    nthreads = 2 + byte(&in) % (MAXT - 1);
    n_threads += (unsigned long)nthreads;
    for (int i = 0; i < NCH; i++) {
        chans[i] = chan_make(sizeof(struct val), byte(&in) % 4);
        CHECK(chans[i], "chan_make");
        atomic_store(&closed_seen[i], 0);
        atomic_store(&drained_seen[i], 0);
        atomic_store(&close_zero[i], 0);
    }
    memset(progs, 0, sizeof progs);
    memset((void *)state, 0, sizeof state);
    memset((void *)recvd, 0, sizeof recvd);
    for (int i = 0; more(&in); i++) {
        struct prog *p = &progs[i % nthreads];
        uint8_t op = byte(&in), a = byte(&in), b = byte(&in);
        if (p->n < MAXOPS) {
            p->op[p->n] = op;
            p->a[p->n] = a;
            p->b[p->n] = b;
            p->n++;
        }
    }
    atomic_store(&finished, 0);
    pthread_t th[MAXT];
    for (int t = 0; t < nthreads; t++)
        CHECK(pthread_create(&th[t], NULL, thread_main, (void *)(intptr_t)t) == 0, "thread");
    /* Blocking forms may leave threads blocked for good: once nobody has made progress for a
     * while, close both channels, which releases them (and is itself checked). */
    unsigned long last = atomic_load(&progress);
    int idle = 0;
    while (atomic_load(&finished) < nthreads) {
        sleep_us(200);
        unsigned long now = atomic_load(&progress);
        idle = now == last ? idle + 1 : 0;
        last = now;
        if (idle == 10) {
            for (int i = 0; i < NCH; i++) {
                bool cl = atomic_load(&closed_seen[i]);
                int r = chan_close(chans[i]);
                CHECK(!(r == 0 && cl), "close returned 0 after the channel was seen closed");
                if (r == 0)
                    atomic_fetch_add(&close_zero[i], 1);
                atomic_store(&closed_seen[i], 1);
            }
        }
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);

    for (int i = 0; i < NCH; i++) {
        struct val v;
        int r;
        while ((r = chan_tryrecv(chans[i], &v)) == 0)
            got(i, &v);
        if (atomic_load(&closed_seen[i]))
            CHECK(r == -EPIPE, "draining closed channel %d: %d", i, r);
        else
            CHECK(r == -EAGAIN, "draining open channel %d: %d", i, r);
        CHECK(atomic_load(&close_zero[i]) <= 1, "channel %d closed twice with 0", i);
        CHECK(chan_free(chans[i]) == 0, "chan_free after the run");
    }
    for (int t = 0; t < nthreads; t++)
        for (int s = 0; s < NSEQ; s++) {
            uint8_t st = atomic_load(&state[t][s]), nr = atomic_load(&recvd[t][s]);
            CHECK((st == 2 && nr == 1) || (st != 2 && nr == 0),
                  "value %d/%d: state %u, received %u times", t, s, st, nr);
            CHECK(st != 1, "value %d/%d still pending", t, s);
            n_values += st == 2;
        }
    return 0;
}
