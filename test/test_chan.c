/* SPDX-License-Identifier: MIT */
/*
 * test_chan.c - the core channel operations against the contract of chan.h: make/free,
 * send/recv and their try and until forms, close, len/cap, the NULL (nil) channel, elemsize 0,
 * deadlines, conservation of values under load, and signals during a blocked wait.
 *
 * How races are made deterministic: a test that needs a peer to be blocked waits for it with
 * blocked_senders_at_least()/blocked_receivers_at_least() (testutil.h), which poll the channel's
 * wait queues; nothing relies on a sleep being long enough. Assertions are made on the test's
 * main thread only; helper threads record what happened and the main thread checks it.
 */
#include "testutil.h"

#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

/* A 64-bit word filled with 0xAA bytes: what a receive buffer holds before a receive that must
 * either store a value or zero it. */
static int64_t fill64(void)
{
    int64_t v;
    memset(&v, 0xAA, sizeof v);
    return v;
}

/* ---- One channel operation run on its own thread -------------------------------------------- */

enum op_kind { OP_SEND, OP_RECV, OP_SEND_UNTIL, OP_RECV_UNTIL };

struct op {
    chan_t *c;
    enum op_kind kind;
    int64_t deadline; /* for the _UNTIL kinds */
    bool null_elem;   /* pass elem NULL (elemsize 0 channels) */
    int64_t val;      /* send: the value sent; recv: where the value lands (prefilled 0xAA) */
    int rc;
    int64_t t_end;   /* chan_now() just after the call returned */
    atomic_int done; /* set once the call has returned */
    pthread_t th;
};

static void *op_main(void *arg)
{
    struct op *o = arg;
    void *elem = o->null_elem ? NULL : &o->val;
    int rc = -12345;
    switch (o->kind) {
    case OP_SEND: rc = chan_send(o->c, elem); break;
    case OP_RECV: rc = chan_recv(o->c, elem); break;
    case OP_SEND_UNTIL: rc = chan_send_until(o->c, elem, o->deadline); break;
    case OP_RECV_UNTIL: rc = chan_recv_until(o->c, elem, o->deadline); break;
    }
    o->t_end = chan_now();
    o->rc = rc;
    atomic_store(&o->done, 1);
    return NULL;
}

static void op_start_ex(struct op *o, chan_t *c, enum op_kind kind, int64_t val, int64_t deadline,
                        bool null_elem)
{
    memset(o, 0, sizeof *o);
    atomic_init(&o->done, 0);
    o->c = c;
    o->kind = kind;
    o->deadline = deadline;
    o->null_elem = null_elem;
    o->val = (kind == OP_RECV || kind == OP_RECV_UNTIL) ? fill64() : val;
    o->th = spawn(op_main, o);
}

static void op_start(struct op *o, chan_t *c, enum op_kind kind, int64_t val)
{
    op_start_ex(o, c, kind, val, chan_now() + 60000 * MS, false);
}

/* Whether o's call has returned (a function: a failed assertion then prints readably). */
static int op_done(struct op *o) { return atomic_load(&o->done); }

static void op_join(struct op *o)
{
    join(o->th);
    ck_assert_int_eq(op_done(o), 1);
}

/* ---- chan_make, chan_free, chan_len, chan_cap ---------------------------------------------- */

START_TEST(test_make_properties)
{
    chan_t *c = chan_make(8, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(chan_cap(c), 0);
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_int_eq(chan_free(c), 0);

    c = chan_make(8, 10);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(chan_cap(c), 10);
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_int_eq(chan_free(c), 0);

    c = chan_make(0, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(chan_cap(c), 0);
    ck_assert_int_eq(chan_free(c), 0);

    c = chan_make(0, 7);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(chan_cap(c), 7);
    ck_assert_int_eq(chan_free(c), 0);

    /* The largest element size is accepted. */
    c = chan_make(CHAN_ELEMSIZE_MAX, 2);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(chan_cap(c), 2);
    ck_assert_int_eq(chan_free(c), 0);

    /* elemsize 0: cap * elemsize is 0 whatever cap is, so no overflow and nothing to allocate
     * for a buffer (Go: make(chan struct{}, maxInt) is fine). */
    errno = 0;
    c = chan_make(0, SIZE_MAX);
    ck_assert_msg(c != NULL, "chan_make(0, SIZE_MAX) failed, errno %d", errno);
    ck_assert_uint_eq(chan_cap(c), SIZE_MAX);
    ck_assert_int_eq(chan_trysend(c, NULL), 0);
    ck_assert_uint_eq(chan_len(c), 1);
    ck_assert_int_eq(chan_free(c), 0);

    /* NULL: chan_free is a no-op, len and cap are 0. */
    ck_assert_int_eq(chan_free(NULL), 0);
    ck_assert_uint_eq(chan_len(NULL), 0);
    ck_assert_uint_eq(chan_cap(NULL), 0);
}
END_TEST

static void expect_make_einval(size_t elemsize, size_t cap)
{
    errno = 0;
    chan_t *c = chan_make(elemsize, cap);
    int e = errno;
    ck_assert_msg(c == NULL, "chan_make(%zu, %zu) should fail", elemsize, cap);
    ck_assert_msg(e == EINVAL, "chan_make(%zu, %zu): errno %d, expected EINVAL", elemsize, cap, e);
}

START_TEST(test_make_einval)
{
    /* elemsize > CHAN_ELEMSIZE_MAX, whatever the capacity. */
    expect_make_einval(CHAN_ELEMSIZE_MAX + 1, 0);
    expect_make_einval(CHAN_ELEMSIZE_MAX + 1, 1);
    expect_make_einval(SIZE_MAX, 0);
    /* cap * elemsize overflows size_t. */
    expect_make_einval(8, SIZE_MAX / 8 + 1);
    expect_make_einval(2, SIZE_MAX);
    expect_make_einval(CHAN_ELEMSIZE_MAX, SIZE_MAX / CHAN_ELEMSIZE_MAX + 1);
    expect_make_einval(3, (SIZE_MAX / 3) * 2);
}
END_TEST

START_TEST(test_len_cap)
{
    chan_t *c = chan_make(sizeof(int64_t), 4);
    ck_assert_uint_eq(chan_cap(c), 4);
    for (int64_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(chan_len(c), (size_t)i);
        ck_assert_int_eq(chan_send(c, &i), 0);
    }
    ck_assert_uint_eq(chan_len(c), 4);
    ck_assert_uint_eq(chan_cap(c), 4);
    int64_t v;
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_uint_eq(chan_len(c), 3);
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_uint_eq(chan_len(c), 3); /* closing keeps the buffered values */
    ck_assert_uint_eq(chan_cap(c), 4);
    while (chan_recv(c, &v) == 0) {
    }
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_int_eq(chan_free(c), 0);

    /* Unbuffered: len stays 0 even with a sender blocked on it. */
    c = chan_make(sizeof(int64_t), 0);
    struct op s;
    op_start(&s, c, OP_SEND, 5);
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_uint_eq(chan_cap(c), 0);
    ck_assert_int_eq(chan_recv(c, &v), 0);
    op_join(&s);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* ---- Unbuffered channels -------------------------------------------------------------------- */

START_TEST(test_unbuffered_delivery)
{
    /* A send on an unbuffered channel returns only after a receiver has taken the value. */
    chan_t *c = chan_make(sizeof(int64_t), 0);
    for (int variant = 0; variant < 2; variant++) {
        struct op s;
        op_start(&s, c, variant == 0 ? OP_SEND : OP_SEND_UNTIL, 42 + variant);
        ck_assert(blocked_senders_at_least(c, 1));
        ck_assert_msg(op_done(&s) == 0, "send returned with no receiver (rc %d)", s.rc);
        sleep_ms(20); /* give a broken implementation the time to return anyway */
        ck_assert_msg(op_done(&s) == 0, "send returned with no receiver (rc %d)", s.rc);
        ck_assert_uint_eq(chan_len(c), 0);
        int64_t v = 0;
        ck_assert_int_eq(chan_recv(c, &v), 0);
        ck_assert_int_eq(v, 42 + variant);
        op_join(&s);
        ck_assert_int_eq(s.rc, 0);
        ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    }

    /* The other way round: a receiver blocked first gets the value of a later send. */
    for (int variant = 0; variant < 2; variant++) {
        struct op r;
        op_start(&r, c, variant == 0 ? OP_RECV : OP_RECV_UNTIL, 0);
        ck_assert(blocked_receivers_at_least(c, 1));
        ck_assert_int_eq(op_done(&r), 0);
        int64_t v = 77 + variant;
        ck_assert_int_eq(chan_send(c, &v), 0);
        op_join(&r);
        ck_assert_int_eq(r.rc, 0);
        ck_assert_int_eq(r.val, 77 + variant);
        ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);
    }
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

START_TEST(test_unbuffered_try)
{
    chan_t *c = chan_make(sizeof(int64_t), 0);
    int64_t v = 1;
    /* Nobody on the other side: the try forms do not complete. */
    ck_assert_int_eq(chan_trysend(c, &v), -EAGAIN);
    v = fill64();
    ck_assert_int_eq(chan_tryrecv(c, &v), -EAGAIN);
    ck_assert_uint_eq(chan_len(c), 0);

    /* trysend hands the value to a blocked receiver. */
    struct op r;
    op_start(&r, c, OP_RECV, 0);
    ck_assert(blocked_receivers_at_least(c, 1));
    v = 9;
    ck_assert_int_eq(chan_trysend(c, &v), 0);
    op_join(&r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.val, 9);

    /* tryrecv takes the value of a blocked sender. */
    struct op s;
    op_start(&s, c, OP_SEND, 10);
    ck_assert(blocked_senders_at_least(c, 1));
    v = 0;
    ck_assert_int_eq(chan_tryrecv(c, &v), 0);
    ck_assert_int_eq(v, 10);
    op_join(&s);
    ck_assert_int_eq(s.rc, 0);

    /* A receive with elem NULL takes the value and discards it. */
    op_start(&s, c, OP_SEND, 11);
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert_int_eq(chan_recv(c, NULL), 0);
    op_join(&s);
    ck_assert_int_eq(s.rc, 0);
    ck_assert_int_eq(chan_tryrecv(c, &v), -EAGAIN);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* ---- Buffered channels ---------------------------------------------------------------------- */

START_TEST(test_buffered_fifo)
{
    enum { CAP = 5 };
    chan_t *c = chan_make(sizeof(int64_t), CAP);
    int64_t v;
    /* Fill, then one more does not fit. */
    for (v = 0; v < CAP; v++)
        ck_assert_int_eq(chan_trysend(c, &v), 0);
    v = 99;
    ck_assert_int_eq(chan_trysend(c, &v), -EAGAIN);
    ck_assert_uint_eq(chan_len(c), CAP);
    for (int64_t i = 0; i < CAP; i++) {
        ck_assert_int_eq(chan_tryrecv(c, &v), 0);
        ck_assert_int_eq(v, i);
    }
    v = fill64();
    ck_assert_int_eq(chan_tryrecv(c, &v), -EAGAIN);

    /* Many rounds of uneven sends and receives, so the ring wraps many times at every offset;
     * checked against a model queue. */
    int64_t next_in = 1000, next_out = 1000;
    unsigned rng = 12345;
    for (int round = 0; round < 2000; round++) {
        rng = rng * 1103515245u + 12345u;
        int nsend = (int)((rng >> 16) % (CAP + 1));
        for (int k = 0; k < nsend; k++) {
            size_t len = (size_t)(next_in - next_out);
            int rc = chan_trysend(c, &next_in);
            if (len < CAP) {
                ck_assert_int_eq(rc, 0);
                next_in++;
            } else {
                ck_assert_int_eq(rc, -EAGAIN);
            }
        }
        ck_assert_uint_eq(chan_len(c), (size_t)(next_in - next_out));
        rng = rng * 1103515245u + 12345u;
        int nrecv = (int)((rng >> 16) % (CAP + 1));
        for (int k = 0; k < nrecv; k++) {
            v = fill64();
            int rc = chan_tryrecv(c, &v);
            if (next_out < next_in) {
                ck_assert_int_eq(rc, 0);
                ck_assert_int_eq(v, next_out);
                next_out++;
            } else {
                ck_assert_int_eq(rc, -EAGAIN);
            }
        }
    }
    /* The blocking forms, on a channel with room / with values, do not block. */
    while (chan_len(c) > 0) {
        ck_assert_int_eq(chan_recv(c, &v), 0);
        ck_assert_int_eq(v, next_out++);
    }
    for (int64_t i = 0; i < CAP; i++)
        ck_assert_int_eq(chan_send(c, &i), 0);
    for (int64_t i = 0; i < CAP; i++) {
        ck_assert_int_eq(chan_recv(c, &v), 0);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

struct counting_sender {
    chan_t *c;
    int n;
    atomic_int sent; /* sends that have returned 0 */
    int rc;
};

static int sent_count(struct counting_sender *s) { return atomic_load(&s->sent); }

static void *counting_sender_main(void *arg)
{
    struct counting_sender *s = arg;
    s->rc = 0;
    for (int64_t i = 0; i < s->n; i++) {
        int rc = chan_send(s->c, &i);
        if (rc != 0) {
            s->rc = rc;
            break;
        }
        atomic_fetch_add(&s->sent, 1);
    }
    return NULL;
}

START_TEST(test_buffered_blocks_only_when_full_or_empty)
{
    chan_t *c = chan_make(sizeof(int64_t), 2);
    struct counting_sender s = {.c = c, .n = 3};
    atomic_init(&s.sent, 0);
    pthread_t t = spawn(counting_sender_main, &s);
    /* The first two sends fit in the buffer; the third blocks. */
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert_int_eq(sent_count(&s), 2);
    ck_assert_uint_eq(chan_len(c), 2);
    sleep_ms(10);
    ck_assert_int_eq(sent_count(&s), 2);
    /* A receive from the full buffer moves the blocked sender's value into the freed slot. */
    int64_t v = fill64();
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 0);
    join(t);
    ck_assert_int_eq(s.rc, 0);
    ck_assert_int_eq(sent_count(&s), 3);
    ck_assert_uint_eq(chan_len(c), 2);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 2);

    /* A receive blocks only while the buffer is empty. */
    struct op r;
    op_start(&r, c, OP_RECV, 0);
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(op_done(&r), 0);
    v = 123;
    ck_assert_int_eq(chan_send(c, &v), 0); /* handed to the waiting receiver */
    op_join(&r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.val, 123);
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* ---- FIFO service of blocked senders and receivers ---------------------------------------- */

static void check_senders_fifo(size_t cap)
{
    enum { N = 5 };
    chan_t *c = chan_make(sizeof(int64_t), cap);
    for (size_t i = 0; i < cap; i++) {
        int64_t v = 100 + (int64_t)i;
        ck_assert_int_eq(chan_send(c, &v), 0);
    }
    struct op s[N];
    for (int i = 0; i < N; i++) {
        op_start(&s[i], c, i % 2 ? OP_SEND_UNTIL : OP_SEND, i);
        /* Sender i is queued before sender i + 1 starts: the blocking order is known. */
        ck_assert(blocked_senders_at_least(c, (size_t)i + 1));
    }
    for (size_t i = 0; i < cap; i++) {
        int64_t v = fill64();
        ck_assert_int_eq(chan_recv(c, &v), 0);
        ck_assert_int_eq(v, 100 + (int64_t)i);
    }
    for (int i = 0; i < N; i++) {
        int64_t v = fill64();
        ck_assert_int_eq(chan_recv(c, &v), 0);
        ck_assert_msg(v == i, "cap %zu: receive %d got sender %lld's value", cap, i, (long long)v);
    }
    for (int i = 0; i < N; i++) {
        op_join(&s[i]);
        ck_assert_int_eq(s[i].rc, 0);
    }
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_int_eq(chan_free(c), 0);
}

START_TEST(test_fifo_blocked_senders)
{
    check_senders_fifo(0);
    check_senders_fifo(1);
    check_senders_fifo(3);
}
END_TEST

static void check_receivers_fifo(size_t cap)
{
    enum { N = 5 };
    chan_t *c = chan_make(sizeof(int64_t), cap);
    struct op r[N];
    for (int i = 0; i < N; i++) {
        op_start(&r[i], c, i % 2 ? OP_RECV_UNTIL : OP_RECV, 0);
        ck_assert(blocked_receivers_at_least(c, (size_t)i + 1));
    }
    for (int64_t i = 0; i < N; i++) {
        /* Handed to a waiting receiver, straight past the (empty) buffer. */
        ck_assert_int_eq(chan_send(c, &i), 0);
        ck_assert_uint_eq(chan_len(c), 0);
    }
    for (int64_t i = 0; i < N; i++) {
        op_join(&r[i]);
        ck_assert_int_eq(r[i].rc, 0);
        ck_assert_msg(r[i].val == i, "cap %zu: receiver %lld got %lld", cap, (long long)i,
                      (long long)r[i].val);
    }
    ck_assert_int_eq(chan_free(c), 0);
}

START_TEST(test_fifo_blocked_receivers)
{
    check_receivers_fifo(0);
    check_receivers_fifo(1);
    check_receivers_fifo(4);
}
END_TEST

/* ---- Close ----------------------------------------------------------------------------------- */

/* Every way of receiving from c (closed and drained) reports -EPIPE and zeroes elem. */
static void expect_recv_closed(chan_t *c)
{
    int64_t v = fill64();
    ck_assert_int_eq(chan_recv(c, &v), -EPIPE);
    ck_assert_int_eq(v, 0);
    v = fill64();
    ck_assert_int_eq(chan_tryrecv(c, &v), -EPIPE);
    ck_assert_int_eq(v, 0);
    v = fill64();
    ck_assert_int_eq(chan_recv_until(c, &v, chan_now() + 60000 * MS), -EPIPE);
    ck_assert_int_eq(v, 0);
    v = fill64();
    ck_assert_int_eq(chan_recv_until(c, &v, chan_now() - 1), -EPIPE); /* ready: no -ETIMEDOUT */
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(chan_recv(c, NULL), -EPIPE);
}

/* Every way of sending to c (closed) reports -EPIPE and nothing is buffered. */
static void expect_send_closed(chan_t *c)
{
    size_t len = chan_len(c);
    int64_t v = 5;
    ck_assert_int_eq(chan_send(c, &v), -EPIPE);
    ck_assert_int_eq(chan_trysend(c, &v), -EPIPE);
    ck_assert_int_eq(chan_send_until(c, &v, chan_now() + 60000 * MS), -EPIPE);
    ck_assert_int_eq(chan_send_until(c, &v, chan_now() - 1), -EPIPE);
    ck_assert_uint_eq(chan_len(c), len);
}

START_TEST(test_close_drains_then_epipe)
{
    chan_t *c = chan_make(sizeof(int64_t), 3);
    for (int64_t i = 1; i <= 3; i++)
        ck_assert_int_eq(chan_send(c, &i), 0);
    ck_assert_int_eq(chan_close(c), 0);
    expect_send_closed(c); /* full and closed: still -EPIPE, never -EAGAIN */
    ck_assert_uint_eq(chan_len(c), 3);
    /* The buffered values are still received, in order, by every form of receive. */
    int64_t v = fill64();
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 1);
    v = fill64();
    ck_assert_int_eq(chan_tryrecv(c, &v), 0);
    ck_assert_int_eq(v, 2);
    v = fill64();
    ck_assert_int_eq(chan_recv_until(c, &v, chan_now() - 1), 0);
    ck_assert_int_eq(v, 3);
    ck_assert_uint_eq(chan_len(c), 0);
    expect_recv_closed(c);
    expect_send_closed(c);
    ck_assert_int_eq(chan_free(c), 0);

    /* Unbuffered: closed at once. */
    c = chan_make(sizeof(int64_t), 0);
    ck_assert_int_eq(chan_close(c), 0);
    expect_recv_closed(c);
    expect_send_closed(c);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

START_TEST(test_close_errors)
{
    chan_t *c = chan_make(sizeof(int64_t), 1);
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_int_eq(chan_close(c), -EPIPE);
    ck_assert_int_eq(chan_close(c), -EPIPE);
    ck_assert_int_eq(chan_free(c), 0);
    ck_assert_int_eq(chan_close(NULL), -EINVAL);
}
END_TEST

static void check_close_wakes_receivers(size_t cap)
{
    enum { N = 4 };
    chan_t *c = chan_make(sizeof(int64_t), cap);
    struct op r[N];
    for (int i = 0; i < N; i++) {
        if (i == N - 1) /* one of them with elem NULL */
            op_start_ex(&r[i], c, OP_RECV, 0, 0, true);
        else
            op_start(&r[i], c, i % 2 ? OP_RECV_UNTIL : OP_RECV, 0);
    }
    ck_assert(blocked_receivers_at_least(c, N));
    ck_assert_int_eq(chan_close(c), 0);
    /* chan_close has unlinked every waiter it woke. */
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);
    for (int i = 0; i < N; i++) {
        op_join(&r[i]);
        ck_assert_msg(r[i].rc == -EPIPE, "cap %zu: receiver %d: rc %d", cap, i, r[i].rc);
        if (i == N - 1)
            ck_assert_int_eq(r[i].val, fill64()); /* elem NULL: nothing written */
        else
            ck_assert_msg(r[i].val == 0, "cap %zu: receiver %d: elem not zeroed", cap, i);
    }
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);
    ck_assert_int_eq(chan_free(c), 0);
}

START_TEST(test_close_wakes_receivers)
{
    check_close_wakes_receivers(0);
    check_close_wakes_receivers(2);
}
END_TEST

static void check_close_wakes_senders(size_t cap)
{
    enum { N = 4 };
    chan_t *c = chan_make(sizeof(int64_t), cap);
    for (size_t i = 0; i < cap; i++) {
        int64_t v = 100 + (int64_t)i;
        ck_assert_int_eq(chan_send(c, &v), 0);
    }
    struct op s[N];
    for (int i = 0; i < N; i++)
        op_start(&s[i], c, i % 2 ? OP_SEND_UNTIL : OP_SEND, 1 + i);
    ck_assert(blocked_senders_at_least(c, N));
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    for (int i = 0; i < N; i++) {
        op_join(&s[i]);
        ck_assert_msg(s[i].rc == -EPIPE, "cap %zu: sender %d: rc %d", cap, i, s[i].rc);
    }
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    /* Only what was buffered before the close is received; the woken senders' values are not. */
    ck_assert_uint_eq(chan_len(c), cap);
    for (size_t i = 0; i < cap; i++) {
        int64_t v = fill64();
        ck_assert_int_eq(chan_recv(c, &v), 0);
        ck_assert_int_eq(v, 100 + (int64_t)i);
    }
    expect_recv_closed(c);
    ck_assert_int_eq(chan_free(c), 0);
}

START_TEST(test_close_wakes_senders)
{
    check_close_wakes_senders(0);
    check_close_wakes_senders(1);
    check_close_wakes_senders(3);
}
END_TEST

/* ---- The NULL (nil) channel --------------------------------------------------------------- */

START_TEST(test_nil_channel)
{
    int64_t v = 1;
    ck_assert_int_eq(chan_trysend(NULL, &v), -EAGAIN);
    v = fill64();
    ck_assert_int_eq(chan_tryrecv(NULL, &v), -EAGAIN);
    ck_assert_int_eq(chan_tryrecv(NULL, NULL), -EAGAIN);

    /* Never ready: the until forms wait for their whole deadline. */
    int64_t d = chan_now() + 30 * MS;
    v = 1;
    ck_assert_int_eq(chan_send_until(NULL, &v, d), -ETIMEDOUT);
    ck_assert(chan_now() >= d);
    d = chan_now() + 30 * MS;
    ck_assert_int_eq(chan_recv_until(NULL, &v, d), -ETIMEDOUT);
    ck_assert(chan_now() >= d);
    /* A past deadline: the try form, reporting -ETIMEDOUT. */
    ck_assert_int_eq(chan_send_until(NULL, &v, chan_now() - 1), -ETIMEDOUT);
    ck_assert_int_eq(chan_recv_until(NULL, &v, 0), -ETIMEDOUT);

    /* The blocking forms do not return (the threads are left blocked when the test ends). */
    struct op *s = calloc(1, sizeof *s), *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(r);
    op_start(s, NULL, OP_SEND, 1);
    op_start(r, NULL, OP_RECV, 0);
    ck_assert_int_eq(pthread_detach(s->th), 0);
    ck_assert_int_eq(pthread_detach(r->th), 0);
    sleep_ms(100);
    ck_assert_msg(op_done(s) == 0, "chan_send(NULL) returned %d", s->rc);
    ck_assert_msg(op_done(r) == 0, "chan_recv(NULL) returned %d", r->rc);
}
END_TEST

/* ---- elemsize 0 ---------------------------------------------------------------------------- */

START_TEST(test_elemsize_zero)
{
    /* Unbuffered signal channel: elem NULL everywhere. */
    chan_t *c = chan_make(0, 0);
    ck_assert_int_eq(chan_trysend(c, NULL), -EAGAIN);
    ck_assert_int_eq(chan_tryrecv(c, NULL), -EAGAIN);
    struct op s;
    op_start_ex(&s, c, OP_SEND, 0, 0, true);
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert_int_eq(op_done(&s), 0);
    ck_assert_int_eq(chan_recv(c, NULL), 0);
    op_join(&s);
    ck_assert_int_eq(s.rc, 0);

    struct op r;
    op_start_ex(&r, c, OP_RECV, 0, 0, true);
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() - 1), 0); /* ready: completes */
    op_join(&r);
    ck_assert_int_eq(r.rc, 0);

    /* elem is ignored: a non-NULL elem is neither read nor written. */
    unsigned char canary = 0xAA;
    op_start_ex(&s, c, OP_SEND_UNTIL, 0, chan_now() + 60000 * MS, true);
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert_int_eq(chan_recv(c, &canary), 0);
    ck_assert_uint_eq(canary, 0xAA);
    op_join(&s);
    ck_assert_int_eq(s.rc, 0);

    /* Close wakes a blocked receiver; then every receive reports closed. */
    op_start_ex(&r, c, OP_RECV_UNTIL, 0, chan_now() + 60000 * MS, true);
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(chan_close(c), 0);
    op_join(&r);
    ck_assert_int_eq(r.rc, -EPIPE);
    ck_assert_int_eq(chan_recv(c, NULL), -EPIPE);
    ck_assert_int_eq(chan_recv(c, &canary), -EPIPE);
    ck_assert_uint_eq(canary, 0xAA);
    ck_assert_int_eq(chan_send(c, NULL), -EPIPE);
    ck_assert_int_eq(chan_free(c), 0);

    /* Buffered signal channel: counts tokens. */
    c = chan_make(0, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_trysend(c, NULL), 0);
    ck_assert_int_eq(chan_trysend(c, NULL), -EAGAIN);
    ck_assert_uint_eq(chan_len(c), 3);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() + 20 * MS), -ETIMEDOUT);
    ck_assert_int_eq(chan_recv(c, &canary), 0);
    ck_assert_uint_eq(canary, 0xAA);
    ck_assert_int_eq(chan_tryrecv(c, NULL), 0);
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_int_eq(chan_recv(c, NULL), 0); /* the third token drains after close */
    ck_assert_int_eq(chan_recv(c, NULL), -EPIPE);
    ck_assert_uint_eq(chan_len(c), 0);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* ---- Element copying ----------------------------------------------------------------------- */

struct bytes_sender {
    chan_t *c;
    const unsigned char *data;
    int rc;
};

static void *bytes_sender_main(void *arg)
{
    struct bytes_sender *b = arg;
    b->rc = chan_send(b->c, b->data);
    return NULL;
}

START_TEST(test_elem_copy_sizes)
{
    /* Exactly elemsize bytes move, whatever the size, buffered or handed over; a receive that
     * reports closed zeroes exactly elemsize bytes. */
    static const size_t sizes[] = {1, 3, 8, 17, 1000, CHAN_ELEMSIZE_MAX};
    enum { GUARD = 16 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *a = malloc(n), *b = malloc(n), *out = malloc(n + GUARD);
        ck_assert(a && b && out);
        for (size_t i = 0; i < n; i++) {
            a[i] = (unsigned char)(i * 7 + k + 1);
            b[i] = (unsigned char)(i * 13 + k + 3);
        }
        chan_t *c = chan_make(n, 1); /* buffered */
        ck_assert_int_eq(chan_send(c, a), 0);
        memset(a, 0, n); /* the channel holds a copy */
        memset(out, 0xAA, n + GUARD);
        ck_assert_int_eq(chan_recv(c, out), 0);
        for (size_t i = 0; i < n; i++)
            if (out[i] != (unsigned char)(i * 7 + k + 1))
                ck_abort_msg("size %zu: byte %zu differs", n, i);
        for (size_t i = n; i < n + GUARD; i++)
            if (out[i] != 0xAA)
                ck_abort_msg("size %zu: wrote past the element", n);
        ck_assert_int_eq(chan_free(c), 0);

        c = chan_make(n, 0); /* unbuffered: handed over */
        struct bytes_sender bs = {.c = c, .data = b};
        pthread_t t = spawn(bytes_sender_main, &bs);
        ck_assert(blocked_senders_at_least(c, 1));
        memset(out, 0xAA, n + GUARD);
        ck_assert_int_eq(chan_recv(c, out), 0);
        join(t);
        ck_assert_int_eq(bs.rc, 0);
        ck_assert(memcmp(out, b, n) == 0);
        for (size_t i = n; i < n + GUARD; i++)
            if (out[i] != 0xAA)
                ck_abort_msg("size %zu: wrote past the element", n);
        ck_assert_int_eq(chan_close(c), 0);
        memset(out, 0xAA, n + GUARD);
        ck_assert_int_eq(chan_recv(c, out), -EPIPE);
        for (size_t i = 0; i < n; i++)
            if (out[i] != 0)
                ck_abort_msg("size %zu: byte %zu not zeroed", n, i);
        for (size_t i = n; i < n + GUARD; i++)
            if (out[i] != 0xAA)
                ck_abort_msg("size %zu: zeroed past the element", n);
        ck_assert_int_eq(chan_free(c), 0);
        free(a);
        free(b);
        free(out);
    }
}
END_TEST

/* ---- -EINVAL ------------------------------------------------------------------------------- */

START_TEST(test_einval_send_null_elem)
{
    /* elemsize > 0 and elem NULL: -EINVAL whatever the channel's state, and nothing happens. */
    chan_t *c = chan_make(sizeof(int64_t), 1);
    ck_assert_int_eq(chan_send(c, NULL), -EINVAL);
    ck_assert_int_eq(chan_trysend(c, NULL), -EINVAL);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() + 60000 * MS), -EINVAL);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() - 1), -EINVAL);
    ck_assert_uint_eq(chan_len(c), 0);
    int64_t v = 1;
    ck_assert_int_eq(chan_send(c, &v), 0);
    /* Full: the send would block; it fails at once instead. */
    ck_assert_int_eq(chan_send(c, NULL), -EINVAL);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() + 60000 * MS), -EINVAL);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() - 1), -EINVAL);
    ck_assert_int_eq(chan_trysend(c, NULL), -EINVAL);
    ck_assert_uint_eq(chan_len(c), 1);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    /* Closed (and holding a value): -EINVAL, not -EPIPE. */
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_int_eq(chan_send(c, NULL), -EINVAL);
    ck_assert_int_eq(chan_trysend(c, NULL), -EINVAL);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() + 60000 * MS), -EINVAL);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() - 1), -EINVAL);
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(chan_send(c, NULL), -EINVAL); /* closed and drained */
    ck_assert_int_eq(chan_free(c), 0);

    /* Unbuffered with a receiver waiting: -EINVAL, and the receiver is still waiting. */
    c = chan_make(sizeof(int64_t), 0);
    struct op r;
    op_start(&r, c, OP_RECV, 0);
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(chan_send(c, NULL), -EINVAL);
    ck_assert_int_eq(chan_trysend(c, NULL), -EINVAL);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() - 1), -EINVAL);
    ck_assert_int_eq(chan_send_until(c, NULL, chan_now() + 60000 * MS), -EINVAL);
    sleep_ms(10);
    ck_assert_int_eq(op_done(&r), 0);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 1);
    v = 31;
    ck_assert_int_eq(chan_send(c, &v), 0);
    op_join(&r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.val, 31);
    ck_assert_int_eq(chan_free(c), 0);

    /* chan_close(NULL). */
    ck_assert_int_eq(chan_close(NULL), -EINVAL);
}
END_TEST

/* ---- chan_free ------------------------------------------------------------------------------ */

START_TEST(test_free_busy_then_after_close)
{
    for (int round = 0; round < 10; round++) {
        /* A blocked receiver makes chan_free fail and leaves the channel intact. */
        chan_t *c = chan_make(sizeof(int64_t), round % 2);
        struct op r;
        op_start(&r, c, round % 3 == 0 ? OP_RECV_UNTIL : OP_RECV, 0);
        ck_assert(blocked_receivers_at_least(c, 1));
        ck_assert_int_eq(chan_free(c), -EBUSY);
        int64_t v = 55;
        ck_assert_int_eq(chan_send(c, &v), 0); /* still a working channel */
        op_join(&r);
        ck_assert_int_eq(r.rc, 0);
        ck_assert_int_eq(r.val, 55);

        /* Blocked again; the close wakes it and the channel may be freed at once, before the
         * woken thread has even run (it must not touch c again). */
        op_start(&r, c, round % 3 == 1 ? OP_RECV_UNTIL : OP_RECV, 0);
        ck_assert(blocked_receivers_at_least(c, 1));
        ck_assert_int_eq(chan_free(c), -EBUSY);
        ck_assert_int_eq(chan_close(c), 0);
        ck_assert_int_eq(chan_free(c), 0);
        op_join(&r);
        ck_assert_int_eq(r.rc, -EPIPE);
        ck_assert_int_eq(r.val, 0);

        /* The same with blocked senders (unbuffered, or buffered and full). */
        c = chan_make(sizeof(int64_t), round % 2);
        if (round % 2) {
            v = 1;
            ck_assert_int_eq(chan_send(c, &v), 0);
        }
        struct op s1, s2;
        op_start(&s1, c, OP_SEND, 7);
        op_start(&s2, c, OP_SEND_UNTIL, 8);
        ck_assert(blocked_senders_at_least(c, 2));
        ck_assert_int_eq(chan_free(c), -EBUSY);
        ck_assert_int_eq(chan_close(c), 0);
        ck_assert_int_eq(chan_free(c), 0);
        op_join(&s1);
        op_join(&s2);
        ck_assert_int_eq(s1.rc, -EPIPE);
        ck_assert_int_eq(s2.rc, -EPIPE);
    }
}
END_TEST

START_TEST(test_free_after_peer_wake)
{
    /* An operation woken by a peer never touches the channel again: once the peer's call has
     * returned, the channel can be freed (no one else uses it). Under ASan a late touch is a
     * use-after-free. */
    for (int round = 0; round < 10; round++) {
        chan_t *c = chan_make(sizeof(int64_t), 0);
        struct op r;
        op_start(&r, c, round % 2 ? OP_RECV_UNTIL : OP_RECV, 0);
        ck_assert(blocked_receivers_at_least(c, 1));
        int64_t v = round;
        ck_assert_int_eq(chan_send(c, &v), 0);
        ck_assert_int_eq(chan_free(c), 0);
        op_join(&r);
        ck_assert_int_eq(r.rc, 0);
        ck_assert_int_eq(r.val, round);

        c = chan_make(sizeof(int64_t), round % 2);
        if (round % 2)
            ck_assert_int_eq(chan_send(c, &v), 0);
        struct op s;
        op_start(&s, c, round % 4 < 2 ? OP_SEND : OP_SEND_UNTIL, 1000 + round);
        ck_assert(blocked_senders_at_least(c, 1));
        ck_assert_int_eq(chan_recv(c, &v), 0);
        if (round % 2) { /* the blocked sender's value moved into the buffer */
            ck_assert_int_eq(v, round);
            ck_assert_int_eq(chan_recv(c, &v), 0);
        }
        ck_assert_int_eq(v, 1000 + round);
        ck_assert_int_eq(chan_free(c), 0);
        op_join(&s);
        ck_assert_int_eq(s.rc, 0);
    }
}
END_TEST

/* ---- Deadlines ------------------------------------------------------------------------------ */

typedef int (*timed_op)(chan_t *c, int64_t deadline);

static int recv_until_op(chan_t *c, int64_t deadline)
{
    int64_t v = fill64();
    int rc = chan_recv_until(c, &v, deadline);
    if (rc == -ETIMEDOUT && v != fill64())
        return -10000; /* a receive that timed out wrote to elem */
    return rc;
}

static int send_until_op(chan_t *c, int64_t deadline)
{
    int64_t v = 1;
    return chan_send_until(c, &v, deadline);
}

/* A time-out must never come before the deadline, and at most late_bound() after it. A loaded
 * machine can keep a thread off the CPU past that bound once in a while, so a late return is
 * retried; a library that is late three times in a row fails. An early return fails at once. */
static void check_deadline_kept(const char *what, chan_t *c, timed_op f, int64_t rel)
{
    int64_t late = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        int64_t d = chan_now() + rel;
        int rc = f(c, d);
        int64_t end = chan_now();
        ck_assert_msg(rc == -ETIMEDOUT, "%s: rc %d, expected -ETIMEDOUT", what, rc);
        ck_assert_msg(end >= d, "%s: returned %lld ns before its deadline", what,
                      (long long)(d - end));
        late = end - d;
        if (late <= late_bound())
            return;
    }
    ck_abort_msg("%s: more than %lld ms late three times (last: %lld us)", what,
                 (long long)(late_bound() / MS), (long long)(late / 1000));
}

START_TEST(test_until_deadline_kept)
{
    chan_t *unbuf = chan_make(sizeof(int64_t), 0);
    chan_t *buf = chan_make(sizeof(int64_t), 1);
    static const int64_t rels[] = {1 * MS / 10, 1 * MS, 20 * MS, 60 * MS};
    for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
        int64_t rel = rels[i];
        check_deadline_kept("recv_until on an empty unbuffered channel", unbuf, recv_until_op, rel);
        check_deadline_kept("send_until on an unbuffered channel", unbuf, send_until_op, rel);
        check_deadline_kept("recv_until on an empty buffered channel", buf, recv_until_op, rel);
        int64_t v = 3;
        ck_assert_int_eq(chan_send(buf, &v), 0);
        check_deadline_kept("send_until on a full buffered channel", buf, send_until_op, rel);
        ck_assert_uint_eq(chan_len(buf), 1);
        ck_assert_int_eq(chan_recv(buf, &v), 0);
        ck_assert_int_eq(v, 3);
        check_deadline_kept("recv_until on the NULL channel", NULL, recv_until_op, rel);
        check_deadline_kept("send_until on the NULL channel", NULL, send_until_op, rel);
        /* A timed-out operation leaves nothing queued. */
        ck_assert_uint_eq(hchan_waiting(unbuf, CHAN_SEND), 0);
        ck_assert_uint_eq(hchan_waiting(unbuf, CHAN_RECV), 0);
        ck_assert_uint_eq(hchan_waiting(buf, CHAN_SEND), 0);
        ck_assert_uint_eq(hchan_waiting(buf, CHAN_RECV), 0);
    }
    /* Timed-out operations did not disturb the channels: they still work. */
    struct op s;
    op_start(&s, unbuf, OP_SEND, 4);
    ck_assert(blocked_senders_at_least(unbuf, 1));
    int64_t v = 0;
    ck_assert_int_eq(chan_recv(unbuf, &v), 0);
    ck_assert_int_eq(v, 4);
    op_join(&s);
    ck_assert_int_eq(s.rc, 0);
    ck_assert_int_eq(chan_free(unbuf), 0);
    ck_assert_int_eq(chan_free(buf), 0);
}
END_TEST

START_TEST(test_until_past_deadline)
{
    /* A deadline already past makes the until forms the try forms, reporting -ETIMEDOUT where
     * those report -EAGAIN; a ready operation completes. */
    const int64_t pasts[] = {chan_now() - 1, chan_now() - 1000 * MS, 0, -1, INT64_MIN};
    for (size_t i = 0; i < sizeof pasts / sizeof pasts[0]; i++) {
        int64_t d = pasts[i];
        chan_t *u = chan_make(sizeof(int64_t), 0);
        chan_t *b = chan_make(sizeof(int64_t), 2);
        int64_t v = fill64();
        /* Not ready. */
        ck_assert_int_eq(chan_recv_until(u, &v, d), -ETIMEDOUT);
        ck_assert_int_eq(v, fill64());
        v = 1;
        ck_assert_int_eq(chan_send_until(u, &v, d), -ETIMEDOUT);
        v = fill64();
        ck_assert_int_eq(chan_recv_until(b, &v, d), -ETIMEDOUT);
        ck_assert_int_eq(v, fill64());
        ck_assert_int_eq(chan_recv_until(NULL, &v, d), -ETIMEDOUT);
        ck_assert_int_eq(chan_send_until(NULL, &v, d), -ETIMEDOUT);
        /* Ready: buffer has room / has values. */
        for (int64_t k = 1; k <= 2; k++)
            ck_assert_int_eq(chan_send_until(b, &k, d), 0);
        v = 3;
        ck_assert_int_eq(chan_send_until(b, &v, d), -ETIMEDOUT); /* full */
        ck_assert_uint_eq(chan_len(b), 2);
        ck_assert_int_eq(chan_recv_until(b, &v, d), 0);
        ck_assert_int_eq(v, 1);
        /* Ready: a peer is blocked on the unbuffered channel. */
        struct op r;
        op_start(&r, u, OP_RECV, 0);
        ck_assert(blocked_receivers_at_least(u, 1));
        v = 20;
        ck_assert_int_eq(chan_send_until(u, &v, d), 0);
        op_join(&r);
        ck_assert_int_eq(r.rc, 0);
        ck_assert_int_eq(r.val, 20);
        struct op s;
        op_start(&s, u, OP_SEND, 21);
        ck_assert(blocked_senders_at_least(u, 1));
        v = fill64();
        ck_assert_int_eq(chan_recv_until(u, &v, d), 0);
        ck_assert_int_eq(v, 21);
        op_join(&s);
        ck_assert_int_eq(s.rc, 0);
        /* Ready: closed. */
        ck_assert_int_eq(chan_close(b), 0);
        v = fill64();
        ck_assert_int_eq(chan_recv_until(b, &v, d), 0);
        ck_assert_int_eq(v, 2);
        v = fill64();
        ck_assert_int_eq(chan_recv_until(b, &v, d), -EPIPE);
        ck_assert_int_eq(v, 0);
        ck_assert_int_eq(chan_send_until(b, &v, d), -EPIPE);
        ck_assert_uint_eq(hchan_waiting(u, CHAN_SEND) + hchan_waiting(u, CHAN_RECV), 0);
        ck_assert_int_eq(chan_free(u), 0);
        ck_assert_int_eq(chan_free(b), 0);
    }
}
END_TEST

START_TEST(test_until_ready_completes)
{
    /* A peer arriving before the deadline completes the operation, with far deadlines of every
     * kind (no arithmetic trouble near INT64_MAX). */
    const int64_t fars[] = {chan_now() + 60000 * MS, INT64_MAX - 1, CHAN_FOREVER};
    chan_t *c = chan_make(sizeof(int64_t), 0);
    for (size_t i = 0; i < sizeof fars / sizeof fars[0]; i++) {
        struct op r;
        op_start_ex(&r, c, OP_RECV_UNTIL, 0, fars[i], false);
        ck_assert(blocked_receivers_at_least(c, 1));
        int64_t v = 60 + (int64_t)i;
        ck_assert_int_eq(chan_send(c, &v), 0);
        op_join(&r);
        ck_assert_int_eq(r.rc, 0);
        ck_assert_int_eq(r.val, 60 + (int64_t)i);

        struct op s;
        op_start_ex(&s, c, OP_SEND_UNTIL, 70 + (int64_t)i, fars[i], false);
        ck_assert(blocked_senders_at_least(c, 1));
        v = fill64();
        ck_assert_int_eq(chan_recv(c, &v), 0);
        ck_assert_int_eq(v, 70 + (int64_t)i);
        op_join(&s);
        ck_assert_int_eq(s.rc, 0);
    }
    /* A blocked until-operation woken by a peer well before its deadline returns then, not at
     * the deadline. */
    struct op r;
    int64_t d = chan_now() + 60000 * MS;
    op_start_ex(&r, c, OP_RECV_UNTIL, 0, d, false);
    ck_assert(blocked_receivers_at_least(c, 1));
    int64_t v = 5;
    ck_assert_int_eq(chan_send(c, &v), 0);
    op_join(&r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(r.t_end < d);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* ---- Conservation under load ----------------------------------------------------------------- */

enum { LOAD_SENDERS = 4, LOAD_RECEIVERS = 4 };

/* How the load's threads send and receive. */
enum load_forms {
    FORMS_BLOCKING, /* chan_send / chan_recv only */
    FORMS_MIXED,    /* blocking, try (retried) and until with short deadlines (retried) in turn */
};

struct load {
    chan_t *c;
    uint32_t per_sender;
    enum load_forms forms;
    bool close_early;            /* closed while the senders are still sending */
    _Atomic unsigned char *seen; /* [sender * per_sender + seq]: how often it was received */
};

struct load_sender {
    struct load *L;
    uint32_t id;
    int bad_rc;     /* an unexpected return code */
    uint32_t sent;  /* sends that returned 0: values 0..sent-1 */
    bool got_epipe; /* the send of value `sent` returned -EPIPE */
};

struct load_receiver {
    struct load *L;
    uint32_t id;
    uint64_t count, sum;
    uint64_t bad_value, out_of_order;
    int last_rc;
    uint64_t last_val;
};

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static int load_send(struct load *L, uint64_t *v, uint32_t *rng)
{
    if (L->forms == FORMS_BLOCKING)
        return chan_send(L->c, v);
    int rc;
    switch (lcg(rng) % 3) {
    case 0: return chan_send(L->c, v);
    case 1:
        /* A try form completes only against a blocked peer (unbuffered): if every thread tried,
         * none would ever block, so fall back to blocking after a while. */
        for (int i = 0; i < 50; i++) {
            if ((rc = chan_trysend(L->c, v)) != -EAGAIN)
                return rc;
            sched_yield();
        }
        return chan_send(L->c, v);
    default:
        while ((rc = chan_send_until(L->c, v, chan_now() + (int64_t)(lcg(rng) % 200000))) ==
               -ETIMEDOUT) {
        }
        return rc;
    }
}

static int load_recv(struct load *L, uint64_t *v, uint32_t *rng)
{
    if (L->forms == FORMS_BLOCKING)
        return chan_recv(L->c, v);
    int rc;
    switch (lcg(rng) % 3) {
    case 0: return chan_recv(L->c, v);
    case 1:
        for (int i = 0; i < 50; i++) {
            if ((rc = chan_tryrecv(L->c, v)) != -EAGAIN)
                return rc;
            sched_yield();
        }
        return chan_recv(L->c, v);
    default:
        while ((rc = chan_recv_until(L->c, v, chan_now() + (int64_t)(lcg(rng) % 200000))) ==
               -ETIMEDOUT) {
        }
        return rc;
    }
}

static void *load_sender_main(void *arg)
{
    struct load_sender *s = arg;
    uint32_t rng = 777u + s->id;
    for (uint32_t seq = 0; seq < s->L->per_sender; seq++) {
        uint64_t v = ((uint64_t)s->id << 32) | seq;
        int rc = load_send(s->L, &v, &rng);
        if (rc == -EPIPE && s->L->close_early) {
            s->got_epipe = true;
            break;
        }
        if (rc != 0) {
            s->bad_rc = rc;
            break;
        }
        s->sent++;
    }
    return NULL;
}

static void *load_receiver_main(void *arg)
{
    struct load_receiver *r = arg;
    uint32_t rng = 999u + r->id;
    int64_t last[LOAD_SENDERS];
    for (int i = 0; i < LOAD_SENDERS; i++)
        last[i] = -1;
    uint64_t v;
    int rc;
    while ((rc = load_recv(r->L, &v, &rng)) == 0) {
        uint64_t id = v >> 32, seq = v & 0xffffffffu;
        r->count++;
        r->sum += v;
        if (id >= LOAD_SENDERS || seq >= r->L->per_sender) {
            r->bad_value++;
            continue;
        }
        /* One sender's values leave a FIFO channel in order, so each receiver sees them in
         * increasing order too. */
        if ((int64_t)seq <= last[id])
            r->out_of_order++;
        last[id] = (int64_t)seq;
        atomic_fetch_add_explicit(&r->L->seen[id * r->L->per_sender + seq], 1,
                                  memory_order_relaxed);
    }
    r->last_rc = rc;
    r->last_val = v;
    return NULL;
}

/* LOAD_SENDERS senders and LOAD_RECEIVERS receivers on one channel; every value whose send
 * returned 0 is received exactly once, no other value is received (in particular not one whose
 * send returned -EPIPE), and each sender's values arrive in order. */
static void run_load(size_t cap, uint32_t per_sender, enum load_forms forms, bool close_early)
{
    struct load L = {.c = chan_make(sizeof(uint64_t), cap),
                     .per_sender = per_sender,
                     .forms = forms,
                     .close_early = close_early};
    ck_assert_ptr_nonnull(L.c);
    int64_t t0 = chan_now();
    size_t total = (size_t)LOAD_SENDERS * per_sender;
    L.seen = calloc(total, 1);
    ck_assert_ptr_nonnull(L.seen);
    struct load_sender snd[LOAD_SENDERS];
    struct load_receiver rcv[LOAD_RECEIVERS];
    pthread_t ts[LOAD_SENDERS], tr[LOAD_RECEIVERS];
    for (int i = 0; i < LOAD_RECEIVERS; i++) {
        rcv[i] = (struct load_receiver){.L = &L, .id = (uint32_t)i};
        tr[i] = spawn(load_receiver_main, &rcv[i]);
    }
    for (int i = 0; i < LOAD_SENDERS; i++) {
        snd[i] = (struct load_sender){.L = &L, .id = (uint32_t)i};
        ts[i] = spawn(load_sender_main, &snd[i]);
    }
    if (close_early) {
        sleep_ms(30);
        ck_assert_int_eq(chan_close(L.c), 0);
    }
    for (int i = 0; i < LOAD_SENDERS; i++)
        join(ts[i]);
    if (!close_early)
        ck_assert_int_eq(chan_close(L.c), 0);
    for (int i = 0; i < LOAD_RECEIVERS; i++)
        join(tr[i]);
    if (getenv("CHAN_TEST_VERBOSE"))
        fprintf(stderr, "load cap %zu forms %d close_early %d: %u+%u+%u+%u sent, %.3f s\n", cap,
                (int)forms, (int)close_early, snd[0].sent, snd[1].sent, snd[2].sent, snd[3].sent,
                (double)(chan_now() - t0) / 1e9);

    uint64_t want_count = 0, want_sum = 0;
    for (int i = 0; i < LOAD_SENDERS; i++) {
        ck_assert_msg(snd[i].bad_rc == 0, "sender %d: send returned %d", i, snd[i].bad_rc);
        if (!close_early || !snd[i].got_epipe)
            ck_assert_uint_eq(snd[i].sent, per_sender);
        uint64_t n = snd[i].sent;
        want_count += n;
        want_sum += ((uint64_t)i << 32) * n + n * (n - 1) / 2; /* n == 0: 0 */
    }
    uint64_t count = 0, sum = 0;
    for (int i = 0; i < LOAD_RECEIVERS; i++) {
        ck_assert_msg(rcv[i].last_rc == -EPIPE, "receiver %d ended with %d", i, rcv[i].last_rc);
        ck_assert_msg(rcv[i].last_val == 0, "receiver %d: elem not zeroed on -EPIPE", i);
        ck_assert_msg(rcv[i].bad_value == 0, "receiver %d: %llu values never sent", i,
                      (unsigned long long)rcv[i].bad_value);
        ck_assert_msg(rcv[i].out_of_order == 0, "receiver %d: %llu values out of order", i,
                      (unsigned long long)rcv[i].out_of_order);
        count += rcv[i].count;
        sum += rcv[i].sum;
    }
    ck_assert_msg(count == want_count, "received %llu values, sent %llu", (unsigned long long)count,
                  (unsigned long long)want_count);
    ck_assert_msg(sum == want_sum, "checksum of received values differs from what was sent");
    /* (No ck_assert per value: in fork mode each passing assertion costs a write to Check's
     * pipe.) */
    for (size_t i = 0; i < total; i++) {
        unsigned n = atomic_load_explicit(&L.seen[i], memory_order_relaxed);
        unsigned want = (i % per_sender) < snd[i / per_sender].sent;
        if (n != want)
            ck_abort_msg("value %zu of sender %zu (which sent %u) received %u times",
                         i % per_sender, i / per_sender, snd[i / per_sender].sent, n);
    }
    ck_assert_uint_eq(chan_len(L.c), 0);
    ck_assert_uint_eq(hchan_waiting(L.c, CHAN_SEND) + hchan_waiting(L.c, CHAN_RECV), 0);
    ck_assert_int_eq(chan_free(L.c), 0);
    free((void *)L.seen);
}

START_TEST(test_conservation_buffered) { run_load(64, 100000, FORMS_BLOCKING, false); }
END_TEST

START_TEST(test_conservation_unbuffered) { run_load(0, 25000, FORMS_BLOCKING, false); }
END_TEST

START_TEST(test_conservation_mixed_forms)
{
    /* Try forms and until forms that time out, racing with the blocking ones. */
    uint32_t n = under_sanitizer() ? 3000 : 10000;
    run_load(0, n, FORMS_MIXED, false);
    run_load(8, n, FORMS_MIXED, false);
}
END_TEST

START_TEST(test_close_under_load)
{
    /* Closed while 4 senders and 4 receivers are busy: a send that returned -EPIPE delivered
     * nothing, every send that returned 0 is received exactly once (buffered values drain). */
    for (int round = 0; round < 3; round++) {
        run_load(0, 1000000, round == 2 ? FORMS_MIXED : FORMS_BLOCKING, true);
        run_load(16, 1000000, round == 2 ? FORMS_MIXED : FORMS_BLOCKING, true);
    }
}
END_TEST

/* ---- Signals --------------------------------------------------------------------------------- */

static atomic_int signals_caught;

static void on_sigusr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_caught, 1);
}

static int signal_count(void) { return atomic_load(&signals_caught); }

static void install_sigusr1_without_restart(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: an interrupted syscall fails with EINTR */
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
}

static bool in_tsan(void)
{
    const char *m = getenv("CHAN_TEST_MODE");
    return m && strcmp(m, "tsan") == 0;
}

/* Interrupts a blocked until-operation with signals. Checks that it still timed out, not
 * before its deadline, and sets *late to how late it was. Returns whether the attempt showed
 * anything: a signal reached the thread while it was blocked (under TSan, where handlers are
 * deferred, that a signal was sent while it was). */
static bool signalled_until(enum op_kind kind, chan_t *c, int64_t rel, int64_t *late)
{
    struct op o;
    int64_t d = chan_now() + rel;
    int before = signal_count();
    op_start_ex(&o, c, kind, 1, d, false);
    if (kind == OP_RECV_UNTIL)
        ck_assert(blocked_receivers_at_least(c, 1));
    else
        ck_assert(blocked_senders_at_least(c, 1));
    int sent = 0;
    for (int i = 0; i < 5 && !op_done(&o); i++) {
        int e = pthread_kill(o.th, SIGUSR1);
        ck_assert_msg(e == 0 || e == ESRCH, "pthread_kill: %d", e); /* ESRCH: it has just ended */
        sent += e == 0;
        sleep_ms(10);
    }
    op_join(&o);
    ck_assert_msg(o.rc == -ETIMEDOUT, "%s_until interrupted by signals: rc %d",
                  kind == OP_RECV_UNTIL ? "recv" : "send", o.rc);
    ck_assert_msg(o.t_end >= d, "returned %lld ns before its deadline", (long long)(d - o.t_end));
    if (kind == OP_RECV_UNTIL)
        ck_assert_int_eq(o.val, fill64());
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND) + hchan_waiting(c, CHAN_RECV), 0);
    *late = o.t_end - d;
    /* TSan defers a signal handler until its thread next enters an intercepted call, which may
     * be after the wait; elsewhere a handler that ran means the wait was interrupted. */
    return in_tsan() ? sent > 0 : signal_count() > before;
}

START_TEST(test_signal_does_not_interrupt)
{
    install_sigusr1_without_restart();
    chan_t *c = chan_make(sizeof(int64_t), 0);
    /* The deadline is far enough that the signals (sent within ~50 ms of the thread blocking)
     * normally arrive while it waits, even under sanitizers. On a machine so loaded that they
     * did not, or that the wait ended more than late_bound() late, the attempt is repeated. */
    int64_t rel = under_sanitizer() ? 1500 * MS : 300 * MS;
    const enum op_kind kinds[] = {OP_RECV_UNTIL, OP_SEND_UNTIL};
    for (int k = 0; k < 2; k++) {
        int64_t late = 0;
        int attempt, interrupted = 0;
        for (attempt = 0; attempt < 4; attempt++) {
            bool hit = signalled_until(kinds[k], c, rel, &late);
            interrupted += hit;
            if (hit && late <= late_bound())
                break;
        }
        ck_assert_msg(interrupted > 0, "no signal reached the blocked thread in 4 attempts");
        ck_assert_msg(attempt < 4, "interrupted wait ended %lld ms late (last of 4 attempts)",
                      (long long)(late / MS));
    }

    /* A plain blocking receive interrupted by signals goes on waiting and then gets its value. */
    struct op r;
    op_start(&r, c, OP_RECV, 0);
    ck_assert(blocked_receivers_at_least(c, 1));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(pthread_kill(r.th, SIGUSR1), 0);
        sleep_ms(10);
    }
    ck_assert_msg(op_done(&r) == 0, "chan_recv returned %d after a signal", r.rc);
    int64_t v = 99;
    ck_assert_int_eq(chan_send(c, &v), 0);
    op_join(&r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.val, 99);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* ---- Suite ----------------------------------------------------------------------------------- */

static Suite *chan_suite(void)
{
    Suite *s = suite_create("chan");
    ADD_TEST(s, test_make_properties, 10);
    ADD_TEST(s, test_make_einval, 10);
    ADD_TEST(s, test_len_cap, 10);
    ADD_TEST(s, test_unbuffered_delivery, 10);
    ADD_TEST(s, test_unbuffered_try, 10);
    ADD_TEST(s, test_buffered_fifo, 10);
    ADD_TEST(s, test_buffered_blocks_only_when_full_or_empty, 10);
    ADD_TEST(s, test_fifo_blocked_senders, 20);
    ADD_TEST(s, test_fifo_blocked_receivers, 20);
    ADD_TEST(s, test_close_drains_then_epipe, 10);
    ADD_TEST(s, test_close_errors, 10);
    ADD_TEST(s, test_close_wakes_receivers, 10);
    ADD_TEST(s, test_close_wakes_senders, 10);
    ADD_TEST(s, test_nil_channel, 10);
    ADD_TEST(s, test_elemsize_zero, 10);
    ADD_TEST(s, test_elem_copy_sizes, 10);
    ADD_TEST(s, test_einval_send_null_elem, 10);
    ADD_TEST(s, test_free_busy_then_after_close, 20);
    ADD_TEST(s, test_free_after_peer_wake, 20);
    ADD_TEST(s, test_until_deadline_kept, 30);
    ADD_TEST(s, test_until_past_deadline, 10);
    ADD_TEST(s, test_until_ready_completes, 10);
    ADD_TEST(s, test_conservation_buffered, 60);
    ADD_TEST(s, test_conservation_unbuffered, 60);
    ADD_TEST(s, test_conservation_mixed_forms, 60);
    ADD_TEST(s, test_close_under_load, 60);
    ADD_TEST(s, test_signal_does_not_interrupt, 30);
    return s;
}

int main(void) { return run_suite(chan_suite()); }
