/* SPDX-License-Identifier: MIT */
/*
 * test_faults.c - allocation failure, injected through the library's allocation hook
 * (chan_malloc_hook in chan_internal.h; the tests link the static library, which defines it).
 *
 * What chan.h promises and what is checked here:
 *   - chan_make returns NULL with errno ENOMEM when its memory cannot be had;
 *   - a select of more than 8 cases may return -ENOMEM, and then nothing happened: no value
 *     moved, no length changed, no ok written; once memory is back the same select succeeds
 *     and nothing is lost or doubled;
 *   - no other operation allocates: after setup, a hook that counts and fails every allocation
 *     sees none while threads send, receive, try, wait with deadlines, close and select.
 *
 * Each test runs in its own process (Check's fork mode); every test also resets the hook, so
 * the suite is correct with CK_FORK=no (valgrind) as well.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdbool.h>

extern void *(*chan_malloc_hook)(size_t size);

static atomic_ulong allocs;   /* allocations the library asked for while a hook was set */
static atomic_ulong injected; /* of those, how many were failed on purpose */

static void *hook_fail(size_t size)
{
    (void)size;
    atomic_fetch_add(&allocs, 1);
    atomic_fetch_add(&injected, 1);
    return NULL;
}

/* Fails about one allocation in two, by a fixed-seed generator (reproducible). */
static uint64_t coin_state = 0x9e3779b97f4a7c15ull;
static void *hook_coin(size_t size)
{
    atomic_fetch_add(&allocs, 1);
    coin_state ^= coin_state << 13;
    coin_state ^= coin_state >> 7;
    coin_state ^= coin_state << 17;
    if (coin_state & 1) {
        atomic_fetch_add(&injected, 1);
        return NULL;
    }
    return malloc(size);
}

static void hook_set(void *(*h)(size_t))
{
    atomic_store(&allocs, 0);
    atomic_store(&injected, 0);
    chan_malloc_hook = h;
}

/* Deterministic per-test PRNG for the tests' own choices. */
static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* ---- chan_make ---------------------------------------------------------------------------- */

START_TEST(make_enomem)
{
    static const size_t shapes[][2] = {{8, 0}, {8, 16}, {0, 0}, {0, 1000}, {CHAN_ELEMSIZE_MAX, 2}};
    hook_set(hook_fail);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        errno = 0;
        chan_t *c = chan_make(shapes[i][0], shapes[i][1]);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(errno, ENOMEM);
    }
    ck_assert_uint_eq(atomic_load(&injected), sizeof shapes / sizeof shapes[0]);
    /* EINVAL is decided before any allocation is tried, and so is the ENOMEM of a size that
     * cannot be one object (over PTRDIFF_MAX bytes with the header and the ring's stamps):
     * no allocator - nor a sanitizer's, which would abort - is asked for it. */
    errno = 0;
    ck_assert_ptr_null(chan_make((size_t)CHAN_ELEMSIZE_MAX + 1, 1));
    ck_assert_int_eq(errno, EINVAL);
    static const size_t huge[][2] = {{1, SIZE_MAX},
                                     {1, SIZE_MAX - 64},
                                     {8, SIZE_MAX / 8},
                                     {1, PTRDIFF_MAX},
                                     {1, PTRDIFF_MAX / 16 + 1},
                                     {CHAN_ELEMSIZE_MAX, SIZE_MAX / CHAN_ELEMSIZE_MAX}};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        errno = 0;
        ck_assert_ptr_null(chan_make(huge[i][0], huge[i][1]));
        ck_assert_int_eq(errno, ENOMEM);
    }
    ck_assert_uint_eq(atomic_load(&allocs), sizeof shapes / sizeof shapes[0]);
    hook_set(NULL);
    chan_t *c = chan_make(8, 16);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* ---- A large select under allocation failure ------------------------------------------------- */

#define NCH 8
#define NCASE 64

/* Eight channels of uint64_t: 0-1 unbuffered, 2-4 buffered and full-ish (ready to receive), 5-7
 * buffered with room (ready to send). Values carry the channel in their top byte. */
struct rig {
    chan_t *c[NCH];
    uint64_t next[NCH];    /* next value to put on channel i */
    uint64_t recvd[NCASE]; /* receive slots of the cases */
    uint64_t sendv[NCASE]; /* send values of the cases */
    struct chan_case cs[NCASE];
};

static uint64_t tag(int ch, uint64_t seq) { return ((uint64_t)ch << 56) | seq; }

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < NCH; i++) {
        r->c[i] = chan_make(sizeof(uint64_t), i < 2 ? 0 : 4);
        ck_assert_ptr_nonnull(r->c[i]);
        r->next[i] = 1;
    }
    for (int i = 2; i <= 4; i++)
        for (int k = 0; k < 3; k++) {
            uint64_t v = tag(i, r->next[i]++);
            ck_assert_int_eq(chan_trysend(r->c[i], &v), 0);
        }
    /* Cases: each channel in both directions, several times over; a few NULL channels. */
    for (int k = 0; k < NCASE; k++) {
        int ch = k % NCH;
        r->recvd[k] = 0xAAAAAAAAAAAAAAAAull;
        r->cs[k].dir = (k / NCH) % 2 ? CHAN_SEND : CHAN_RECV;
        r->cs[k].chan = k % 13 == 12 ? NULL : r->c[ch];
        if (r->cs[k].dir == CHAN_SEND) {
            r->sendv[k] = tag(ch, 1000 + (uint64_t)k); /* unique per case */
            r->cs[k].elem = &r->sendv[k];
        } else {
            r->cs[k].elem = &r->recvd[k];
        }
    }
}

static void rig_lens(struct rig *r, size_t lens[NCH])
{
    for (int i = 0; i < NCH; i++)
        lens[i] = chan_len(r->c[i]);
}

/* Calls sel with allocation failing: -ENOMEM and nothing changed, with ok marked either way. */
static void expect_enomem(struct rig *r, int (*sel)(struct chan_case *, size_t, int64_t),
                          int64_t deadline)
{
    size_t before[NCH], after[NCH];
    rig_lens(r, before);
    for (int mark = 0; mark <= 1; mark++) {
        for (int k = 0; k < NCASE; k++)
            r->cs[k].ok = mark;
        hook_set(hook_fail);
        int got = sel(r->cs, NCASE, deadline);
        chan_malloc_hook = NULL;
        ck_assert_int_eq(got, -ENOMEM);
        ck_assert_uint_ge(atomic_load(&injected), 1);
        for (int k = 0; k < NCASE; k++) {
            ck_assert_msg(r->cs[k].ok == mark, "case %d: ok written on -ENOMEM", k);
            if (r->cs[k].dir == CHAN_RECV)
                ck_assert_uint_eq(r->recvd[k], 0xAAAAAAAAAAAAAAAAull);
        }
        rig_lens(r, after);
        for (int i = 0; i < NCH; i++)
            ck_assert_uint_eq(after[i], before[i]);
        ck_assert_uint_eq(hchan_waiting(r->c[0], CHAN_RECV), 0);
        ck_assert_uint_eq(hchan_waiting(r->c[0], CHAN_SEND), 0);
    }
}

/* Drains every channel and checks: each value put on channel i (initial fill plus what sends
 * delivered) comes out of channel i exactly once, in order, and nothing else does. */
static void rig_check_drain(struct rig *r, const uint64_t *got_by_select, int nselect_recv,
                            const uint64_t *sent_by_select, int nselect_send)
{
    /* Everything that entered: tag(i, 1..next-1) and the select send values; everything that
     * left: the select receives plus what is drained now. */
    int seen_send[NCASE] = {0};
    int seen_init[NCH][8];
    memset(seen_init, 0, sizeof seen_init);
    for (int j = 0; j < nselect_recv; j++) {
        uint64_t v = got_by_select[j];
        int ch = (int)(v >> 56);
        uint64_t seq = v & 0xffffffffffffull;
        ck_assert_int_lt(ch, NCH);
        if (seq >= 1000) {
            seen_send[seq - 1000]++;
        } else {
            ck_assert_uint_lt(seq, 8);
            seen_init[ch][seq]++;
        }
    }
    for (int i = 0; i < NCH; i++) {
        uint64_t v;
        while (chan_tryrecv(r->c[i], &v) == 0) {
            ck_assert_int_eq((int)(v >> 56), i); /* nothing crossed channels */
            uint64_t seq = v & 0xffffffffffffull;
            if (seq >= 1000)
                seen_send[seq - 1000]++;
            else
                seen_init[i][seq]++;
        }
    }
    for (int i = 0; i < NCH; i++)
        for (uint64_t s = 1; s < r->next[i]; s++)
            ck_assert_msg(seen_init[i][s] == 1, "value %d/%d seen %d times", i, (int)s,
                          seen_init[i][s]);
    int nsent = 0;
    for (int k = 0; k < NCASE; k++) {
        int was_sent = 0;
        for (int j = 0; j < nselect_send; j++)
            was_sent += sent_by_select[j] == r->sendv[k];
        ck_assert_msg(seen_send[k] == was_sent, "case %d value: sent %d, received %d", k, was_sent,
                      seen_send[k]);
        nsent += was_sent;
    }
    ck_assert_int_eq(nsent, nselect_send);
}

/* Performs sel once with memory available and records what moved. */
static void run_ok(struct rig *r, int (*sel)(struct chan_case *, size_t, int64_t), uint64_t *got,
                   int *ngot, uint64_t *sent, int *nsent)
{
    size_t before[NCH], after[NCH];
    rig_lens(r, before);
    for (int k = 0; k < NCASE; k++)
        r->cs[k].ok = false;
    int k = sel(r->cs, NCASE, CHAN_FOREVER);
    ck_assert_int_ge(k, 0);
    ck_assert_int_lt(k, NCASE);
    ck_assert_ptr_nonnull(r->cs[k].chan);
    ck_assert(r->cs[k].ok);
    int ch = k % NCH;
    rig_lens(r, after);
    for (int i = 0; i < NCH; i++) {
        size_t expect = before[i];
        if (i == ch)
            expect = r->cs[k].dir == CHAN_RECV ? before[i] - 1 : before[i] + 1;
        ck_assert_uint_eq(after[i], expect);
    }
    if (r->cs[k].dir == CHAN_RECV) {
        got[(*ngot)++] = r->recvd[k];
        r->recvd[k] = 0xAAAAAAAAAAAAAAAAull;
    } else {
        sent[(*nsent)++] = r->sendv[k];
        /* the same value must not be sent twice: give the case a fresh value slot */
        r->cs[k].chan = NULL;
    }
}

START_TEST(large_select_enomem_then_ok)
{
    struct rig r;
    rig_init(&r);
    uint64_t got[64], sent[64];
    int ngot = 0, nsent = 0;
    for (int round = 0; round < 6; round++) {
        int (*sel)(struct chan_case *, size_t, int64_t) = round % 3 == 0   ? sel_block
                                                          : round % 3 == 1 ? sel_try
                                                                           : sel_until;
        expect_enomem(&r, sel, round % 2 ? 0 : CHAN_FOREVER);
        run_ok(&r, sel, got, &ngot, sent, &nsent);
    }
    rig_check_drain(&r, got, ngot, sent, nsent);
    for (int i = 0; i < NCH; i++)
        ck_assert_int_eq(chan_free(r.c[i]), 0);
}
END_TEST

/* A select of many cases none of which is ready: with memory it would block; without, it
 * returns -ENOMEM at once (never blocks, never queues a sudog). */
START_TEST(large_select_enomem_does_not_block)
{
    chan_t *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = chan_make(8, 0);
    uint64_t v[20];
    struct chan_case cs[20];
    for (int k = 0; k < 20; k++)
        cs[k] = (struct chan_case){
            .chan = c[k % 3], .elem = &v[k], .dir = k % 2 ? CHAN_SEND : CHAN_RECV, .ok = true};
    hook_set(hook_fail);
    ck_assert_int_eq(chan_select(cs, 20), -ENOMEM);
    ck_assert_int_eq(chan_select_until(cs, 20, CHAN_FOREVER), -ENOMEM);
    ck_assert_int_eq(chan_select_until(cs, 20, chan_now() + 1000 * MS), -ENOMEM);
    chan_malloc_hook = NULL;
    for (int k = 0; k < 20; k++)
        ck_assert(cs[k].ok);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(hchan_waiting(c[i], CHAN_SEND), 0);
        ck_assert_uint_eq(hchan_waiting(c[i], CHAN_RECV), 0);
        ck_assert_int_eq(chan_free(c[i]), 0);
    }
}
END_TEST

/* Up to 8 cases a select never allocates, even when it blocks. */
static void *send_later(void *arg)
{
    chan_t *c = arg;
    uint64_t v = 4242;
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(chan_send(c, &v), 0);
    return NULL;
}

START_TEST(small_select_never_allocates)
{
    chan_t *c[8];
    for (int i = 0; i < 8; i++)
        c[i] = chan_make(8, i % 2);
    uint64_t v[8] = {0};
    struct chan_case cs[8];
    for (int k = 0; k < 8; k++)
        cs[k] = (struct chan_case){.chan = c[k], .elem = &v[k], .dir = CHAN_RECV};
    hook_set(hook_fail);
    ck_assert_int_eq(chan_tryselect(cs, 8), -EAGAIN);
    ck_assert_int_eq(chan_select_until(cs, 8, chan_now() + 5 * MS), -ETIMEDOUT);
    pthread_t t = spawn(send_later, c[6]);
    ck_assert_int_eq(chan_select(cs, 8), 6);
    join(t);
    ck_assert_uint_eq(v[6], 4242);
    ck_assert_uint_eq(atomic_load(&allocs), 0);
    chan_malloc_hook = NULL;
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(chan_free(c[i]), 0);
}
END_TEST

/* ---- Random large selects against a model, about half of them failing ------------------------ */

#define MCH 6
#define QMAX 8

struct mq {
    uint64_t v[QMAX];
    int n;
    bool closed;
    size_t cap;
};

START_TEST(random_faults_against_model)
{
    int iters = under_sanitizer() ? 1500 : 6000;
    chan_t *c[MCH];
    struct mq m[MCH];
    for (int i = 0; i < MCH; i++) {
        m[i] = (struct mq){.n = 0, .closed = false, .cap = (size_t)(i % 4) + (i >= 4)};
        c[i] = chan_make(sizeof(uint64_t), m[i].cap);
        ck_assert_ptr_nonnull(c[i]);
    }
    uint64_t seq = 1, nomem = 0, done = 0, moved = 0;
    struct chan_case cs[40];
    uint64_t slot[40];
    hook_set(hook_coin);
    for (int it = 0; it < iters; it++) {
        size_t n = 9 + rnd() % 32;
        for (size_t k = 0; k < n; k++) {
            int ch = (int)(rnd() % (MCH + 1));
            bool send = rnd() & 1;
            slot[k] = send ? seq++ : 0xAAAAAAAAAAAAAAAAull;
            cs[k] = (struct chan_case){.chan = ch == MCH ? NULL : c[ch],
                                       .elem = &slot[k],
                                       .dir = send ? CHAN_SEND : CHAN_RECV,
                                       .ok = true};
        }
        int r = chan_tryselect(cs, n);
        if (r == -ENOMEM) {
            nomem++;
            for (size_t k = 0; k < n; k++) {
                ck_assert(cs[k].ok);
                if (cs[k].dir == CHAN_RECV)
                    ck_assert_uint_eq(slot[k], 0xAAAAAAAAAAAAAAAAull);
            }
        } else if (r == -EAGAIN) {
            /* the model agrees: no case was ready */
            for (size_t k = 0; k < n; k++) {
                if (!cs[k].chan)
                    continue;
                struct mq *q = NULL;
                for (int i = 0; i < MCH; i++)
                    if (cs[k].chan == c[i])
                        q = &m[i];
                ck_assert_ptr_nonnull(q);
                bool ready = cs[k].dir == CHAN_SEND ? q->closed || (size_t)q->n < q->cap
                                                    : q->n > 0 || q->closed;
                ck_assert_msg(!ready, "-EAGAIN with case %zu ready", k);
            }
        } else {
            ck_assert_int_ge(r, 0);
            ck_assert_int_lt(r, (int)n);
            int ch = -1;
            for (int i = 0; i < MCH; i++)
                if (cs[r].chan == c[i])
                    ch = i;
            ck_assert_int_ge(ch, 0);
            struct mq *q = &m[ch];
            done++;
            if (cs[r].dir == CHAN_SEND) {
                if (q->closed) {
                    ck_assert(!cs[r].ok);
                } else {
                    ck_assert(cs[r].ok);
                    ck_assert_uint_lt((size_t)q->n, q->cap);
                    q->v[q->n++] = slot[r];
                    moved++;
                }
            } else if (q->n > 0) {
                ck_assert(cs[r].ok);
                ck_assert_uint_eq(slot[r], q->v[0]);
                memmove(q->v, q->v + 1, (size_t)(q->n - 1) * sizeof q->v[0]);
                q->n--;
                moved++;
            } else {
                ck_assert(q->closed);
                ck_assert(!cs[r].ok);
                ck_assert_uint_eq(slot[r], 0);
            }
            for (size_t k = 0; k < n; k++)
                if ((int)k != r)
                    ck_assert(cs[k].ok); /* only the chosen case's ok is written */
        }
        for (int i = 0; i < MCH; i++)
            ck_assert_uint_eq(chan_len(c[i]), (size_t)m[i].n);
        /* Now and then close a channel, or replace a closed and drained one. */
        if (rnd() % 97 == 0) {
            int i = (int)(rnd() % MCH);
            if (!m[i].closed) {
                chan_malloc_hook = NULL;
                ck_assert_int_eq(chan_close(c[i]), 0);
                m[i].closed = true;
                chan_malloc_hook = hook_coin;
            } else if (m[i].n == 0) {
                chan_malloc_hook = NULL;
                ck_assert_int_eq(chan_free(c[i]), 0);
                c[i] = chan_make(sizeof(uint64_t), m[i].cap);
                ck_assert_ptr_nonnull(c[i]);
                m[i].closed = false;
                chan_malloc_hook = hook_coin;
            }
        }
    }
    chan_malloc_hook = NULL;
    for (int i = 0; i < MCH; i++) {
        uint64_t v;
        for (int k = 0; k < m[i].n; k++) {
            ck_assert_int_eq(chan_tryrecv(c[i], &v), 0);
            ck_assert_uint_eq(v, m[i].v[k]);
        }
        int r = chan_tryrecv(c[i], &v);
        ck_assert_int_eq(r, m[i].closed ? -EPIPE : -EAGAIN);
        ck_assert_int_eq(chan_free(c[i]), 0);
    }
    ck_assert_uint_gt(nomem, 0);
    ck_assert_uint_gt(done, 0);
    ck_assert_uint_eq(nomem, atomic_load(&injected)); /* each failure surfaced as -ENOMEM */
    printf("test_faults: %d large selects, %lu allocation faults injected (each -ENOMEM, nothing "
           "changed), %lu completed, %lu values moved, model agreed\n",
           iters, (unsigned long)atomic_load(&injected), (unsigned long)done, (unsigned long)moved);
}
END_TEST

/* ---- No other operation allocates ------------------------------------------------------------ */

#define TCH 4
#define TTHREADS 4

struct traffic {
    chan_t *c[TCH];
    atomic_int stop;
    atomic_ulong ops, moved;
    atomic_ulong progress; /* operations so far, for the main thread to wait on */
};

static void *traffic_main(void *arg)
{
    struct traffic *t = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s | 1;
    unsigned long ops = 0, moved = 0;
    while (!atomic_load(&t->stop)) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        chan_t *c = t->c[s % TCH];
        uint64_t v = s;
        int r = 0;
        int64_t soon = chan_now() + 200000; /* 0.2 ms */
        switch ((s >> 8) % 9) {
        case 0: r = chan_send_until(c, &v, soon); break;
        case 1: r = chan_recv_until(c, &v, soon); break;
        case 2: r = chan_trysend(c, &v); break;
        case 3: r = chan_tryrecv(c, &v); break;
        case 4: r = chan_send_until(c, &v, 0); break;
        case 5: r = chan_recv_until(c, NULL, soon); break;
        case 6:
        case 7: {
            struct chan_case cs[8];
            uint64_t vals[8];
            size_t n = 1 + (s >> 16) % 8;
            for (size_t k = 0; k < n; k++) {
                vals[k] = s + k;
                cs[k] = (struct chan_case){.chan = (s >> (20 + k)) % 5 ? t->c[(s >> (24 + k)) % TCH]
                                                                       : NULL,
                                           .elem = &vals[k],
                                           .dir = (s >> (32 + k)) & 1 ? CHAN_SEND : CHAN_RECV};
            }
            r = (s >> 40) & 1 ? chan_select_until(cs, n, soon) : chan_tryselect(cs, n);
            if (r >= 0 && cs[r].ok)
                moved++;
            r = r >= 0 ? 0 : r;
            break;
        }
        case 8:
            /* a blocking send and receive, paired with the other threads' traffic; the final
             * close releases anything still blocked */
            r = (s >> 12) & 1 ? chan_send(c, &v) : chan_recv(c, &v);
            break;
        }
        if (r == 0)
            moved++;
        ops++;
        atomic_fetch_add_explicit(&t->progress, 1, memory_order_relaxed);
    }
    atomic_fetch_add(&t->ops, ops);
    atomic_fetch_add(&t->moved, moved);
    return NULL;
}

START_TEST(no_allocation_in_traffic)
{
    static struct traffic t;
    for (int i = 0; i < TCH; i++) {
        t.c[i] = chan_make(sizeof(uint64_t), (size_t)i); /* caps 0, 1, 2, 3 */
        ck_assert_ptr_nonnull(t.c[i]);
    }
    chan_t *z = chan_make(0, 0);
    ck_assert_ptr_nonnull(z);
    atomic_store(&t.stop, 0);
    pthread_t th[TTHREADS];
    hook_set(hook_fail); /* from here on, every allocation is counted and fails */
    for (int i = 0; i < TTHREADS; i++)
        th[i] = spawn(traffic_main, &t);
    sleep_ms(300);
    /* On a loaded machine the threads may have barely started: wait for some traffic (a few
     * thousand operations; at most ~20 s) before closing. */
    for (int i = 0; i < 2000 && atomic_load(&t.progress) < 4000; i++)
        sleep_ms(10);
    /* Close while the traffic runs: wakes blocked senders and receivers and selects. */
    for (int i = 0; i < TCH; i++)
        ck_assert_int_eq(chan_close(t.c[i]), 0);
    ck_assert_int_eq(chan_close(z), 0);
    ck_assert_int_eq(chan_close(z), -EPIPE);
    sleep_ms(20);
    atomic_store(&t.stop, 1);
    for (int i = 0; i < TTHREADS; i++)
        join(th[i]);
    unsigned long n = atomic_load(&allocs);
    chan_malloc_hook = NULL;
    ck_assert_msg(n == 0, "%lu allocations outside chan_make and large selects", n);
    ck_assert_uint_gt(atomic_load(&t.moved), 0);
    for (int i = 0; i < TCH; i++)
        ck_assert_int_eq(chan_free(t.c[i]), 0);
    ck_assert_int_eq(chan_free(z), 0);
    printf("test_faults: %lu operations under a failing allocator (%lu moved a value), 0 "
           "allocations\n",
           (unsigned long)atomic_load(&t.ops), (unsigned long)atomic_load(&t.moved));
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    ADD_TEST(s, make_enomem, 10);
    ADD_TEST(s, large_select_enomem_then_ok, 10);
    ADD_TEST(s, large_select_enomem_does_not_block, 10);
    ADD_TEST(s, small_select_never_allocates, 20);
    ADD_TEST(s, random_faults_against_model, 60);
    ADD_TEST(s, no_allocation_in_traffic, 30);
    return s;
}

int main(void) { return run_suite(faults_suite()); }
