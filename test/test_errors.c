/* SPDX-License-Identifier: MIT */
/*
 * test_errors.c - every error path of chan.h's contract, as a table a reader can hold against it.
 *
 * One row per path: the call, the state of the channel (or cases) it is made on, the code
 * the contract says it returns, and a comment quoting the contract's sentence that says so.
 * Each row is a small function that builds the state, makes the call, checks the side effects
 * the contract promises ("nothing happened", "*elem zeroed", "no ok written", ...) and returns
 * the code the call returned; the loop test compares it with the table. A few rows are the
 * boundaries of an error path (the same call where the contract says it must NOT fail)
 * and expect 0 or an index.
 *
 * Blocked peers are detected through the wait-queue probe (testutil.h), never by a sleep; time
 * bounds are one-sided (never earlier than the deadline) or loose (seconds).
 */
#include "testutil.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>

#define FILL 0xAAAAAAAAAAAAAAAAull
#define SOON (chan_now() + 30 * MS)
#define LATER (chan_now() + 60000 * MS) /* a deadline that a correct library never reaches */

/* ---- Helpers -------------------------------------------------------------------------------- */

/* A buffered channel of uint64_t holding n values 1..n. */
static chan_t *mk_filled(size_t cap, size_t n)
{
    chan_t *c = mk(sizeof(uint64_t), cap);
    for (uint64_t v = 1; v <= n; v++)
        ck_assert_int_eq(chan_trysend(c, &v), 0);
    return c;
}

static chan_t *mk_closed(size_t elemsize, size_t cap)
{
    chan_t *c = mk(elemsize, cap);
    ck_assert_int_eq(chan_close(c), 0);
    return c;
}

static void drop(chan_t *c) { ck_assert_int_eq(chan_free(c), 0); }

/* One blocking operation on a thread of its own. */
enum pk { P_SEND, P_RECV, P_SEND_UNTIL, P_RECV_UNTIL, P_SELECT2 };
struct peer {
    enum pk kind;
    chan_t *c, *c2;
    uint64_t v;
    int64_t deadline;
    struct chan_case cases[2];
    int rc;
    pthread_t th;
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    switch (p->kind) {
    case P_SEND: p->rc = chan_send(p->c, &p->v); break;
    case P_RECV: p->rc = chan_recv(p->c, &p->v); break;
    case P_SEND_UNTIL: p->rc = chan_send_until(p->c, &p->v, p->deadline); break;
    case P_RECV_UNTIL: p->rc = chan_recv_until(p->c, &p->v, p->deadline); break;
    case P_SELECT2: p->rc = chan_select(p->cases, 2); break;
    }
    return NULL;
}

/* Starts the peer and waits until its sudog is queued on c (both of its channels for select). */
static void peer_start(struct peer *p, enum pk kind, chan_t *c, uint64_t v)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->c = c;
    p->v = v;
    p->deadline = LATER;
    p->th = spawn(peer_main, p);
    if (kind == P_SEND || kind == P_SEND_UNTIL)
        ck_assert(blocked_senders_at_least(c, 1));
    else
        ck_assert(blocked_receivers_at_least(c, 1));
}

/* A select blocked on recv from a and recv from b. */
static void peer_select(struct peer *p, chan_t *a, chan_t *b)
{
    memset(p, 0, sizeof *p);
    p->kind = P_SELECT2;
    p->c = a;
    p->c2 = b;
    p->cases[0] = (struct chan_case){.chan = a, .elem = &p->v, .dir = CHAN_RECV, .ok = true};
    p->cases[1] = (struct chan_case){.chan = b, .elem = &p->v, .dir = CHAN_RECV, .ok = true};
    p->v = FILL;
    p->th = spawn(peer_main, p);
    ck_assert(blocked_receivers_at_least(a, 1));
    ck_assert(blocked_receivers_at_least(b, 1));
}

static int peer_join(struct peer *p)
{
    join(p->th);
    return p->rc;
}

/* ok is written only on success: start every case with this and look after. */
static void cases_mark(struct chan_case *cs, size_t n, bool mark)
{
    for (size_t i = 0; i < n; i++)
        cs[i].ok = mark;
}

static void cases_unchanged(const struct chan_case *cs, size_t n, bool mark)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(cs[i].ok == mark, "case %zu: ok written on failure", i);
}

/* A two-case select: recv from a ready buffered channel (value 1), plus `bad` as case 1. Returns
 * the select's code having checked that nothing was consumed and no ok written. */
static int select_with_bad(int (*sel)(struct chan_case *, size_t, int64_t), struct chan_case bad,
                           int64_t deadline)
{
    chan_t *ready = mk_filled(1, 1);
    uint64_t got = FILL;
    struct chan_case cs[2] = {{.chan = ready, .elem = &got, .dir = CHAN_RECV}, bad};
    for (int mark = 0; mark <= 1; mark++) {
        cases_mark(cs, 2, mark);
        int r = sel(cs, 2, deadline);
        if (r != -EINVAL) {
            chan_free(ready);
            return r;
        }
        cases_unchanged(cs, 2, mark);
    }
    ck_assert_uint_eq(chan_len(ready), 1); /* "nothing was ... received" */
    ck_assert_uint_eq(got, FILL);
    drop(ready);
    return -EINVAL;
}

/* ---- -EINVAL ------------------------------------------------------------------------------- */

static int make_elemsize_too_big(void)
{
    errno = 0;
    chan_t *c = chan_make((size_t)CHAN_ELEMSIZE_MAX + 1, 1);
    if (c) {
        chan_free(c);
        return 0;
    }
    return -errno;
}

static int make_elemsize_max_ok(void)
{
    chan_t *c = chan_make(CHAN_ELEMSIZE_MAX, 1);
    if (!c)
        return -errno;
    drop(c);
    return 0;
}

static int make_overflow(void)
{
    errno = 0;
    chan_t *c = chan_make(8, SIZE_MAX / 4);
    return c ? (chan_free(c), 0) : -errno;
}

static int make_overflow_max(void)
{
    errno = 0;
    chan_t *c = chan_make(CHAN_ELEMSIZE_MAX, SIZE_MAX / 2);
    return c ? (chan_free(c), 0) : -errno;
}

/* chan_make(elemsize, cap) -> 0 or -errno (cap * elemsize fits in size_t: never -EINVAL). */
static int make_size(size_t elemsize, size_t cap)
{
    errno = 0;
    chan_t *c = chan_make(elemsize, cap);
    return c ? (chan_free(c), 0) : -errno;
}

/* cap * elemsize does not overflow; with the header and the ring's stamps the size does not fit
 * in memory: that is ENOMEM, decided before any allocation is tried. */
static int make_1_size_max(void) { return make_size(1, SIZE_MAX); }
static int make_1_size_max_64(void) { return make_size(1, SIZE_MAX - 64); }
static int make_8_size_max_8(void) { return make_size(8, SIZE_MAX / 8); }
static int make_2_size_max_2(void) { return make_size(2, SIZE_MAX / 2); }
static int make_max_exact(void)
{
    return make_size(CHAN_ELEMSIZE_MAX, SIZE_MAX / CHAN_ELEMSIZE_MAX);
}
static int make_1_ptrdiff_max(void) { return make_size(1, PTRDIFF_MAX); }
/* One more element than fits in size_t: the product overflows. */
static int make_8_size_max_8_plus(void) { return make_size(8, SIZE_MAX / 8 + 1); }
static int make_2_size_max_2_plus(void) { return make_size(2, SIZE_MAX / 2 + 1); }

/* Go's make(chan struct{}, n) takes any n: no buffer is allocated for elements of size 0. */
static int make_signal_huge_cap(void)
{
    chan_t *c = chan_make(0, SIZE_MAX);
    if (!c)
        return -errno;
    ck_assert_uint_eq(chan_cap(c), SIZE_MAX);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_trysend(c, NULL), 0);
    ck_assert_uint_eq(chan_len(c), 3);
    ck_assert_int_eq(chan_tryrecv(c, NULL), 0);
    ck_assert_uint_eq(chan_len(c), 2);
    drop(c);
    return 0;
}

static int close_null(void) { return chan_close(NULL); }

static int send_null_elem_open(void)
{
    chan_t *c = mk(8, 2);
    int r = chan_send(c, NULL);
    ck_assert_uint_eq(chan_len(c), 0);
    drop(c);
    return r;
}

static int send_null_elem_closed(void)
{
    chan_t *c = mk_closed(8, 2);
    int r = chan_send(c, NULL);
    drop(c);
    return r;
}

static int trysend_null_elem_full(void)
{
    chan_t *c = mk_filled(1, 1);
    int r = chan_trysend(c, NULL);
    ck_assert_uint_eq(chan_len(c), 1);
    drop(c);
    return r;
}

static int send_until_null_elem_past(void)
{
    chan_t *c = mk(8, 0);
    int r = chan_send_until(c, NULL, 0);
    drop(c);
    return r;
}

/* An unbuffered channel with a receiver waiting: the bad send must not wake it. */
static int send_null_elem_receiver_waiting(void)
{
    chan_t *c = mk(8, 0);
    struct peer p;
    peer_start(&p, P_RECV, c, 0);
    int r = chan_send(c, NULL);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 1); /* still blocked: nothing consumed */
    uint64_t v = 7;
    ck_assert_int_eq(chan_send(c, &v), 0);
    ck_assert_int_eq(peer_join(&p), 0);
    ck_assert_uint_eq(p.v, 7);
    drop(c);
    return r;
}

static int send_null_elem_size0(void)
{
    chan_t *c = mk(0, 1);
    int r = chan_send(c, NULL);
    ck_assert_uint_eq(chan_len(c), 1);
    ck_assert_int_eq(chan_recv(c, NULL), 0);
    drop(c);
    return r;
}

static int select_cases_null(void) { return chan_select(NULL, 1); }
static int tryselect_cases_null(void) { return chan_tryselect(NULL, 3); }
static int select_until_cases_null(void) { return chan_select_until(NULL, 1, 0); }

/* CHAN_SELECT_MAX + 1 cases, each ready: a library that did not refuse would consume a value. */
static int select_too_many(int (*sel)(struct chan_case *, size_t, int64_t))
{
    size_t n = (size_t)CHAN_SELECT_MAX + 1;
    chan_t *c = mk_filled(1, 1);
    uint64_t got = FILL;
    struct chan_case *cs = calloc(n, sizeof *cs);
    ck_assert_ptr_nonnull(cs);
    for (size_t i = 0; i < n; i++)
        cs[i] = (struct chan_case){.chan = c, .elem = &got, .dir = CHAN_RECV, .ok = true};
    int r = sel(cs, n, LATER);
    if (r == -EINVAL) {
        cases_unchanged(cs, n, true);
        ck_assert_uint_eq(chan_len(c), 1);
        ck_assert_uint_eq(got, FILL);
    }
    free(cs);
    drop(c);
    return r;
}

static int select_too_many_block(void) { return select_too_many(sel_block); }
static int tryselect_too_many(void) { return select_too_many(sel_try); }
static int select_until_too_many(void) { return select_too_many(sel_until); }

static int select_bad_dir0(void)
{
    chan_t *c = mk(8, 1);
    uint64_t v = 5;
    int r = select_with_bad(sel_block, (struct chan_case){.chan = c, .elem = &v, .dir = 0}, 0);
    drop(c);
    return r;
}

static int tryselect_bad_dir3(void)
{
    chan_t *c = mk(8, 1);
    uint64_t v = 5;
    int r = select_with_bad(sel_try, (struct chan_case){.chan = c, .elem = &v, .dir = 3}, 0);
    ck_assert_uint_eq(chan_len(c), 0);
    drop(c);
    return r;
}

static int select_bad_dir_null_chan(void)
{
    return select_with_bad(sel_block, (struct chan_case){.chan = NULL, .dir = 3}, 0);
}

static int select_until_bad_dir_past(void)
{
    return select_with_bad(sel_until, (struct chan_case){.chan = NULL, .dir = 0}, 0);
}

static int select_send_null_elem(void)
{
    chan_t *c = mk(8, 1); /* room for the value: the case would be ready */
    int r = select_with_bad(sel_block,
                            (struct chan_case){.chan = c, .elem = NULL, .dir = CHAN_SEND}, 0);
    ck_assert_uint_eq(chan_len(c), 0);
    drop(c);
    return r;
}

static int select_until_send_null_elem(void)
{
    chan_t *c = mk(8, 1);
    int r = select_with_bad(sel_until,
                            (struct chan_case){.chan = c, .elem = NULL, .dir = CHAN_SEND}, LATER);
    ck_assert_uint_eq(chan_len(c), 0);
    drop(c);
    return r;
}

/* The invalid case comes first and the ready case (a receive, in poll order possibly first)
 * second; also a large select, which validates before it allocates. */
static int tryselect_bad_large(void)
{
    chan_t *c = mk_filled(1, 1);
    uint64_t got = FILL;
    struct chan_case cs[20];
    for (int i = 0; i < 20; i++)
        cs[i] = (struct chan_case){.chan = c, .elem = &got, .dir = CHAN_RECV, .ok = true};
    cs[13].dir = 0;
    int r = chan_tryselect(cs, 20);
    cases_unchanged(cs, 20, true);
    ck_assert_uint_eq(chan_len(c), 1);
    drop(c);
    return r;
}

/* Boundaries: a NULL-channel send case's elem is not looked at; elemsize 0 takes elem NULL. */
static int tryselect_null_chan_send_null_elem(void)
{
    struct chan_case cs[1] = {{.chan = NULL, .elem = NULL, .dir = CHAN_SEND, .ok = true}};
    int r = chan_tryselect(cs, 1);
    cases_unchanged(cs, 1, true);
    return r;
}

static int tryselect_send_null_elem_size0(void)
{
    chan_t *c = mk(0, 1);
    struct chan_case cs[1] = {{.chan = c, .elem = NULL, .dir = CHAN_SEND}};
    int r = chan_tryselect(cs, 1);
    ck_assert(cs[0].ok);
    ck_assert_uint_eq(chan_len(c), 1);
    drop(c);
    return r;
}

/* ---- -EPIPE -------------------------------------------------------------------------------- */

static int close_twice(void)
{
    chan_t *c = mk_closed(8, 0);
    int r = chan_close(c);
    drop(c);
    return r;
}

static int send_closed(void)
{
    chan_t *c = mk_closed(8, 4);
    uint64_t v = 1;
    int r = chan_send(c, &v);
    ck_assert_uint_eq(chan_len(c), 0);
    drop(c);
    return r;
}

static int trysend_closed_room(void)
{
    chan_t *c = mk_closed(8, 4);
    uint64_t v = 1;
    int r = chan_trysend(c, &v);
    ck_assert_uint_eq(chan_len(c), 0);
    drop(c);
    return r;
}

static int send_until_closed_past(void)
{
    chan_t *c = mk_closed(8, 0);
    uint64_t v = 1;
    int r = chan_send_until(c, &v, 0);
    drop(c);
    return r;
}

static int send_closed_size0(void)
{
    chan_t *c = mk_closed(0, 0);
    int r = chan_send(c, NULL);
    drop(c);
    return r;
}

/* A sender blocked on a full buffer (or with no receiver), then chan_close. */
static int send_blocked_then_closed(enum pk kind, size_t cap)
{
    chan_t *c = cap ? mk_filled(cap, cap) : mk(8, 0);
    struct peer p;
    peer_start(&p, kind, c, 99);
    ck_assert_int_eq(chan_close(c), 0);
    int r = peer_join(&p);
    ck_assert_uint_eq(chan_len(c), cap); /* the value was not sent */
    for (uint64_t i = 1; i <= cap; i++) {
        uint64_t v;
        ck_assert_int_eq(chan_recv(c, &v), 0);
        ck_assert_uint_eq(v, i);
    }
    uint64_t v = FILL;
    ck_assert_int_eq(chan_recv(c, &v), -EPIPE); /* and 99 never arrives */
    drop(c);
    return r;
}

static int send_blocked_full_closed(void) { return send_blocked_then_closed(P_SEND, 2); }
static int send_blocked_unbuf_closed(void) { return send_blocked_then_closed(P_SEND, 0); }
static int send_until_blocked_closed(void) { return send_blocked_then_closed(P_SEND_UNTIL, 1); }

static int recv_closed(int (*rcv)(chan_t *, void *))
{
    chan_t *c = mk_closed(8, 3);
    uint64_t v = FILL;
    int r = rcv(c, &v);
    if (r == -EPIPE)
        ck_assert_uint_eq(v, 0); /* "zeroes *elem" */
    drop(c);
    return r;
}

static int recv_until_past(chan_t *c, void *e) { return chan_recv_until(c, e, 0); }
static int recv_closed_block(void) { return recv_closed(chan_recv); }
static int tryrecv_closed(void) { return recv_closed(chan_tryrecv); }
static int recv_until_closed_past(void) { return recv_closed(recv_until_past); }

static int recv_closed_null_elem(void)
{
    chan_t *c = mk_closed(8, 0);
    int r = chan_recv(c, NULL);
    drop(c);
    return r;
}

/* Closed with two values buffered: they are still received, then -EPIPE. */
static int recv_closed_after_drain(void)
{
    chan_t *c = mk_filled(4, 2);
    ck_assert_int_eq(chan_close(c), 0);
    uint64_t v = FILL;
    ck_assert_int_eq(chan_tryrecv(c, &v), 0);
    ck_assert_uint_eq(v, 1);
    ck_assert_int_eq(chan_recv_until(c, &v, 0), 0);
    ck_assert_uint_eq(v, 2);
    v = FILL;
    int r = chan_recv(c, &v);
    ck_assert_uint_eq(v, 0);
    drop(c);
    return r;
}

static int recv_blocked_then_closed(enum pk kind, size_t cap)
{
    chan_t *c = mk(8, cap);
    struct peer p;
    peer_start(&p, kind, c, FILL);
    ck_assert_int_eq(chan_close(c), 0);
    int r = peer_join(&p);
    ck_assert_uint_eq(p.v, 0); /* "Wakes every blocked receiver (-EPIPE, zeroed elem)" */
    drop(c);
    return r;
}

static int recv_blocked_closed(void) { return recv_blocked_then_closed(P_RECV, 0); }
static int recv_until_blocked_closed(void) { return recv_blocked_then_closed(P_RECV_UNTIL, 2); }

/* select on a closed channel: chosen with ok = false. */
static int select_recv_closed(void)
{
    chan_t *open = mk(8, 0), *c = mk_closed(8, 2);
    uint64_t a = FILL, b = FILL;
    struct chan_case cs[2] = {{.chan = open, .elem = &a, .dir = CHAN_RECV, .ok = true},
                              {.chan = c, .elem = &b, .dir = CHAN_RECV, .ok = true}};
    int r = chan_select(cs, 2);
    ck_assert_int_eq(r, 1);
    ck_assert(!cs[1].ok);
    ck_assert(cs[0].ok); /* only the chosen case's ok is written */
    ck_assert_uint_eq(b, 0);
    ck_assert_uint_eq(a, FILL);
    drop(open);
    drop(c);
    return r;
}

static int tryselect_send_closed(void)
{
    chan_t *open = mk(8, 0), *c = mk_closed(8, 2);
    uint64_t a = 1, b = 2;
    struct chan_case cs[2] = {{.chan = open, .elem = &a, .dir = CHAN_SEND, .ok = true},
                              {.chan = c, .elem = &b, .dir = CHAN_SEND, .ok = true}};
    int r = chan_tryselect(cs, 2);
    ck_assert_int_eq(r, 1);
    ck_assert(!cs[1].ok);
    ck_assert(cs[0].ok);
    ck_assert_uint_eq(chan_len(c), 0);
    drop(open);
    drop(c);
    return r;
}

static int select_until_send_closed_past(void)
{
    chan_t *c = mk_closed(8, 0);
    uint64_t b = 2;
    struct chan_case cs[1] = {{.chan = c, .elem = &b, .dir = CHAN_SEND, .ok = true}};
    int r = chan_select_until(cs, 1, 0);
    ck_assert(!cs[0].ok);
    drop(c);
    return r;
}

/* A select blocked on two channels; the second is closed: that case, ok = false. */
static int select_blocked_then_closed(void)
{
    chan_t *a = mk(8, 0), *b = mk(8, 1);
    struct peer p;
    peer_select(&p, a, b);
    ck_assert_int_eq(chan_close(b), 0);
    ck_assert_int_eq(chan_free(b), 0); /* "an operation woken by c never touches c again" */
    int r = peer_join(&p);
    ck_assert(!p.cases[1].ok);
    ck_assert(p.cases[0].ok); /* not written */
    ck_assert_uint_eq(p.v, 0);
    ck_assert_uint_eq(hchan_waiting(a, CHAN_RECV), 0); /* the select unlinked itself from a */
    drop(a);
    return r;
}

/* ---- -EBUSY -------------------------------------------------------------------------------- */

static int free_busy(enum pk kind, size_t cap)
{
    chan_t *c = cap ? mk_filled(cap, cap) : mk(8, 0);
    struct peer p;
    peer_start(&p, kind, c, 5);
    int r = chan_free(c);
    ck_assert_int_eq(chan_close(c), 0); /* still usable: nothing was freed */
    ck_assert_int_eq(peer_join(&p), -EPIPE);
    drop(c);
    return r;
}

static int free_busy_sender(void) { return free_busy(P_SEND, 1); }
static int free_busy_receiver(void) { return free_busy(P_RECV, 0); }
static int free_busy_until(void) { return free_busy(P_RECV_UNTIL, 0); }

static int free_busy_select(void)
{
    chan_t *a = mk(8, 0), *b = mk(8, 0);
    struct peer p;
    peer_select(&p, a, b);
    int r = chan_free(b);
    uint64_t v = 11;
    ck_assert_int_eq(chan_send(a, &v), 0); /* completes the select through a */
    ck_assert_int_eq(peer_join(&p), 0);
    ck_assert_uint_eq(p.v, 11);
    drop(b); /* the select has returned: it unlinked itself from b */
    drop(a);
    return r;
}

static int free_null(void) { return chan_free(NULL); }

static int free_with_buffered_values(void)
{
    chan_t *c = mk_filled(4, 3);
    return chan_free(c); /* "Values still buffered are discarded" */
}

static int free_after_timeout(void)
{
    chan_t *c = mk(8, 0);
    uint64_t v = 0;
    ck_assert_int_eq(chan_recv_until(c, &v, chan_now() + 5 * MS), -ETIMEDOUT);
    return chan_free(c); /* the timed-out receiver unlinked itself before returning */
}

/* ---- -EAGAIN ------------------------------------------------------------------------------- */

static int trysend_unbuf_nobody(void)
{
    chan_t *c = mk(8, 0);
    uint64_t v = 1;
    int r = chan_trysend(c, &v);
    drop(c);
    return r;
}

static int trysend_full(void)
{
    chan_t *c = mk_filled(2, 2);
    uint64_t v = 3;
    int r = chan_trysend(c, &v);
    ck_assert_uint_eq(chan_len(c), 2);
    drop(c);
    return r;
}

static int tryrecv_empty(void)
{
    chan_t *c = mk(8, 2);
    uint64_t v;
    int r = chan_tryrecv(c, &v);
    drop(c);
    return r;
}

static int tryrecv_unbuf_nobody(void)
{
    chan_t *c = mk(0, 0);
    int r = chan_tryrecv(c, NULL);
    drop(c);
    return r;
}

static int trysend_nil(void)
{
    uint64_t v = 1;
    return chan_trysend(NULL, &v);
}

static int tryrecv_nil(void)
{
    uint64_t v;
    return chan_tryrecv(NULL, &v);
}

static int tryselect_none_ready(size_t n)
{
    chan_t *full = mk_filled(1, 1), *empty = mk(8, 1);
    uint64_t s = 9, d = FILL;
    struct chan_case cs[12];
    for (size_t i = 0; i < n; i++)
        cs[i] = i % 3 == 0   ? (struct chan_case){.chan = full, .elem = &s, .dir = CHAN_SEND}
                : i % 3 == 1 ? (struct chan_case){.chan = empty, .elem = &d, .dir = CHAN_RECV}
                             : (struct chan_case){.chan = NULL, .elem = &d, .dir = CHAN_RECV};
    cases_mark(cs, n, true);
    int r = chan_tryselect(cs, n);
    cases_unchanged(cs, n, true);
    ck_assert_uint_eq(chan_len(full), 1);
    ck_assert_uint_eq(d, FILL);
    drop(full);
    drop(empty);
    return r;
}

static int tryselect_none_ready_small(void) { return tryselect_none_ready(3); }
static int tryselect_none_ready_large(void) { return tryselect_none_ready(12); }
static int tryselect_empty(void) { return chan_tryselect(NULL, 0); }

static int tryselect_only_nil(void)
{
    uint64_t v = 1;
    struct chan_case cs[2] = {{.chan = NULL, .elem = &v, .dir = CHAN_SEND, .ok = true},
                              {.chan = NULL, .elem = &v, .dir = CHAN_RECV, .ok = true}};
    int r = chan_tryselect(cs, 2);
    cases_unchanged(cs, 2, true);
    return r;
}

/* ---- -ETIMEDOUT ---------------------------------------------------------------------------- */

/* Blocks until the deadline: returns -ETIMEDOUT no earlier than the deadline. */
static int timed(int (*op)(chan_t *, int64_t), chan_t *c)
{
    int64_t deadline = chan_now() + 20 * MS;
    int r = op(c, deadline);
    if (r == -ETIMEDOUT)
        ck_assert_msg(chan_now() >= deadline, "-ETIMEDOUT before the deadline");
    return r;
}

static int op_send_until(chan_t *c, int64_t d)
{
    uint64_t v = 77;
    return chan_send_until(c, &v, d);
}

static int op_recv_until(chan_t *c, int64_t d)
{
    uint64_t v = FILL;
    int r = chan_recv_until(c, &v, d);
    return r;
}

static int send_until_full_times_out(void)
{
    chan_t *c = mk_filled(1, 1);
    int r = timed(op_send_until, c);
    ck_assert_uint_eq(chan_len(c), 1);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND), 0);
    uint64_t v;
    ck_assert_int_eq(chan_tryrecv(c, &v), 0);
    ck_assert_int_eq(chan_tryrecv(c, &v), -EAGAIN); /* 77 was not sent */
    drop(c);
    return r;
}

static int send_until_unbuf_times_out(void)
{
    chan_t *c = mk(8, 0);
    int r = timed(op_send_until, c);
    drop(c);
    return r;
}

static int recv_until_empty_times_out(void)
{
    chan_t *c = mk(8, 3);
    int r = timed(op_recv_until, c);
    ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 0);
    drop(c);
    return r;
}

static int recv_until_nil_times_out(void) { return timed(op_recv_until, NULL); }
static int send_until_nil_times_out(void) { return timed(op_send_until, NULL); }

static int send_until_past_not_ready(void)
{
    chan_t *c = mk_filled(1, 1);
    uint64_t v = 2;
    int r = chan_send_until(c, &v, chan_now() - 1);
    drop(c);
    return r;
}

static int recv_until_zero_not_ready(void)
{
    chan_t *c = mk(8, 0);
    uint64_t v;
    int r = chan_recv_until(c, &v, 0);
    drop(c);
    return r;
}

static int send_until_int64_min(void)
{
    chan_t *c = mk(8, 0);
    uint64_t v = 1;
    int r = chan_send_until(c, &v, INT64_MIN);
    drop(c);
    return r;
}

static int recv_until_int64_min(void)
{
    chan_t *c = mk(8, 1);
    uint64_t v;
    int r = chan_recv_until(c, &v, INT64_MIN);
    drop(c);
    return r;
}

static int recv_until_nil_past(void) { return chan_recv_until(NULL, NULL, INT64_MIN); }

/* Ready operations complete whatever the deadline. */
static int send_until_past_ready(void)
{
    chan_t *c = mk(8, 1);
    uint64_t v = 4;
    int r = chan_send_until(c, &v, INT64_MIN);
    ck_assert_uint_eq(chan_len(c), 1);
    drop(c);
    return r;
}

static int send_until_past_receiver_waiting(void)
{
    chan_t *c = mk(8, 0);
    struct peer p;
    peer_start(&p, P_RECV, c, 0);
    uint64_t v = 42;
    int r = chan_send_until(c, &v, 0);
    ck_assert_int_eq(peer_join(&p), 0);
    ck_assert_uint_eq(p.v, 42);
    drop(c);
    return r;
}

static int recv_until_past_ready(void)
{
    chan_t *c = mk_filled(2, 1);
    uint64_t v = FILL;
    int r = chan_recv_until(c, &v, 0);
    ck_assert_uint_eq(v, 1);
    drop(c);
    return r;
}

static int select_until_times_out(size_t n, int64_t deadline_rel, bool past)
{
    chan_t *a = mk(8, 0), *b = mk_filled(1, 1);
    uint64_t v = FILL, s = 3;
    struct chan_case cs[10];
    for (size_t i = 0; i < n; i++)
        cs[i] = i % 2 ? (struct chan_case){.chan = b, .elem = &s, .dir = CHAN_SEND}
                      : (struct chan_case){.chan = a, .elem = &v, .dir = CHAN_RECV};
    cases_mark(cs, n, true);
    int64_t deadline = past ? deadline_rel : chan_now() + deadline_rel;
    int r = chan_select_until(cs, n, deadline);
    if (r == -ETIMEDOUT && !past)
        ck_assert(chan_now() >= deadline);
    cases_unchanged(cs, n, true);
    ck_assert_uint_eq(chan_len(b), 1);
    ck_assert_uint_eq(v, FILL);
    drop(a); /* the timed-out select unlinked every sudog before returning */
    drop(b);
    return r;
}

static int select_until_blocked_times_out(void)
{
    return select_until_times_out(2, 20 * MS, false);
}
static int select_until_large_times_out(void) { return select_until_times_out(10, 20 * MS, false); }
static int select_until_past(void) { return select_until_times_out(2, 0, true); }
static int select_until_int64_min(void) { return select_until_times_out(3, INT64_MIN, true); }

static int select_until_empty(void)
{
    int64_t deadline = chan_now() + 10 * MS;
    int r = chan_select_until(NULL, 0, deadline);
    if (r == -ETIMEDOUT)
        ck_assert(chan_now() >= deadline);
    return r;
}

static int select_until_only_nil(void)
{
    uint64_t v;
    struct chan_case cs[2] = {{.chan = NULL, .elem = &v, .dir = CHAN_RECV, .ok = true},
                              {.chan = NULL, .elem = NULL, .dir = CHAN_SEND, .ok = true}};
    int r = chan_select_until(cs, 2, chan_now() + 10 * MS);
    cases_unchanged(cs, 2, true);
    return r;
}

static int select_until_past_ready(void)
{
    chan_t *a = mk(8, 0), *b = mk_filled(1, 1);
    uint64_t v = FILL;
    struct chan_case cs[2] = {{.chan = a, .elem = &v, .dir = CHAN_RECV},
                              {.chan = b, .elem = &v, .dir = CHAN_RECV}};
    int r = chan_select_until(cs, 2, INT64_MIN);
    ck_assert(cs[1].ok);
    ck_assert_uint_eq(v, 1);
    drop(a);
    drop(b);
    return r;
}

/* ---- The table ------------------------------------------------------------------------------- */

struct row {
    const char *call;  /* the call made */
    const char *state; /* the state it is made in */
    int expect;        /* what the contract says it returns (an index for a select that succeeds) */
    int (*run)(void);
};

#define ROW(call, state, expect, fn)                                                               \
    {                                                                                              \
        call, state, expect, fn                                                                    \
    }

static const struct row rows[] = {
    /* ---- -EINVAL ---- */
    /* API: chan_make "NULL with errno EINVAL (elemsize > CHAN_ELEMSIZE_MAX, ...)" */
    ROW("chan_make(CHAN_ELEMSIZE_MAX + 1, 1)", "-", -EINVAL, make_elemsize_too_big),
    /* API: "#define CHAN_ELEMSIZE_MAX 65535 ... element types of 64 KiB and more are refused"
     * (boundary: 65535 itself is accepted) */
    ROW("chan_make(CHAN_ELEMSIZE_MAX, 1)", "-", 0, make_elemsize_max_ok),
    /* API: "EINVAL when elemsize > CHAN_ELEMSIZE_MAX or cap * elemsize overflows size_t" */
    ROW("chan_make(8, SIZE_MAX / 4)", "-", -EINVAL, make_overflow),
    /* API: same sentence */
    ROW("chan_make(CHAN_ELEMSIZE_MAX, SIZE_MAX / 2)", "-", -EINVAL, make_overflow_max),
    ROW("chan_make(8, SIZE_MAX / 8 + 1)", "-", -EINVAL, make_8_size_max_8_plus),
    ROW("chan_make(2, SIZE_MAX / 2 + 1)", "-", -EINVAL, make_2_size_max_2_plus),
    /* API: "elemsize 0: signal-only (Go's chan struct{})"; EINVAL only when cap * elemsize
     * overflows, and 0 * cap never does */
    ROW("chan_make(0, SIZE_MAX)", "-", 0, make_signal_huge_cap),
    /* API: chan_close "0; -EPIPE if already closed; -EINVAL if NULL." */
    ROW("chan_close(NULL)", "-", -EINVAL, close_null),
    /* API: "For elemsize > 0, a send with elem NULL is -EINVAL." */
    ROW("chan_send(c, NULL)", "open, elemsize 8, cap 2, empty", -EINVAL, send_null_elem_open),
    /* API: "bad arguments give -EINVAL whatever the channel's state" */
    ROW("chan_send(c, NULL)", "closed, elemsize 8", -EINVAL, send_null_elem_closed),
    /* API: "For elemsize > 0, a send with elem NULL is -EINVAL." */
    ROW("chan_trysend(c, NULL)", "full, elemsize 8", -EINVAL, trysend_null_elem_full),
    /* API: "Errors are checked before anything happens: bad arguments give -EINVAL" */
    ROW("chan_send_until(c, NULL, 0)", "unbuffered, deadline passed", -EINVAL,
        send_until_null_elem_past),
    /* API: "Errors are checked before anything happens" (the waiting receiver is not woken) */
    ROW("chan_send(c, NULL)", "unbuffered, receiver blocked", -EINVAL,
        send_null_elem_receiver_waiting),
    /* API: "for a channel of elemsize 0, elem is ignored everywhere and may be NULL" (boundary) */
    ROW("chan_send(c, NULL)", "elemsize 0, cap 1", 0, send_null_elem_size0),
    /* API: select "-EINVAL for cases == NULL with n > 0" */
    ROW("chan_select(NULL, 1)", "-", -EINVAL, select_cases_null),
    ROW("chan_tryselect(NULL, 3)", "-", -EINVAL, tryselect_cases_null),
    ROW("chan_select_until(NULL, 1, 0)", "-", -EINVAL, select_until_cases_null),
    /* API: select "-EINVAL for ... n > CHAN_SELECT_MAX" */
    ROW("chan_select(cs, CHAN_SELECT_MAX + 1)", "every case ready", -EINVAL, select_too_many_block),
    ROW("chan_tryselect(cs, CHAN_SELECT_MAX + 1)", "every case ready", -EINVAL, tryselect_too_many),
    ROW("chan_select_until(cs, CHAN_SELECT_MAX + 1, d)", "every case ready", -EINVAL,
        select_until_too_many),
    /* API: select "-EINVAL for ... a bad dir"; "on -EINVAL nothing was sent, received or
     * consumed"; "On ... -EINVAL no case's `ok` is written" */
    ROW("chan_select(cs, 2)", "case 0 ready recv, case 1 dir 0", -EINVAL, select_bad_dir0),
    ROW("chan_tryselect(cs, 2)", "case 0 ready recv, case 1 dir 3 send-ready", -EINVAL,
        tryselect_bad_dir3),
    /* API: "A case whose chan is NULL must still have a valid dir; its elem is not looked at." */
    ROW("chan_select(cs, 2)", "case 0 ready, case 1 NULL chan dir 3", -EINVAL,
        select_bad_dir_null_chan),
    /* API: "bad arguments give -EINVAL whatever the channel's state" (not -ETIMEDOUT) */
    ROW("chan_select_until(cs, 2, 0)", "case 0 ready, case 1 NULL chan dir 0", -EINVAL,
        select_until_bad_dir_past),
    /* API: select "-EINVAL for ... a send case with elem NULL on a channel whose elemsize > 0" */
    ROW("chan_select(cs, 2)", "case 0 ready, case 1 send elem NULL (room)", -EINVAL,
        select_send_null_elem),
    ROW("chan_select_until(cs, 2, d)", "case 0 ready, case 1 send elem NULL", -EINVAL,
        select_until_send_null_elem),
    /* API: "select validates every case before doing anything" (20 cases: before allocating) */
    ROW("chan_tryselect(cs, 20)", "19 ready recv cases, case 13 dir 0", -EINVAL,
        tryselect_bad_large),
    /* API: "A case whose chan is NULL ...: its elem is not looked at." (boundary) */
    ROW("chan_tryselect(cs, 1)", "NULL chan send, elem NULL", -EAGAIN,
        tryselect_null_chan_send_null_elem),
    /* API: "for a channel of elemsize 0, elem is ignored everywhere" (boundary) */
    ROW("chan_tryselect(cs, 1)", "elemsize 0 send, elem NULL, room", 0,
        tryselect_send_null_elem_size0),

    /* ---- -ENOMEM ---- */
    /* API: chan_make "EINVAL when elemsize > CHAN_ELEMSIZE_MAX or cap * elemsize overflows
     * size_t; ENOMEM when the memory cannot be had" */
    ROW("chan_make(1, SIZE_MAX)", "-", -ENOMEM, make_1_size_max),
    ROW("chan_make(1, SIZE_MAX - 64)", "-", -ENOMEM, make_1_size_max_64),
    ROW("chan_make(8, SIZE_MAX / 8)", "-", -ENOMEM, make_8_size_max_8),
    ROW("chan_make(2, SIZE_MAX / 2)", "-", -ENOMEM, make_2_size_max_2),
    ROW("chan_make(CHAN_ELEMSIZE_MAX, SIZE_MAX / CHAN_ELEMSIZE_MAX)", "-", -ENOMEM, make_max_exact),
    ROW("chan_make(1, PTRDIFF_MAX)", "-", -ENOMEM, make_1_ptrdiff_max),
    /* ---- -EPIPE ---- */
    /* API: chan_close "-EPIPE if already closed" */
    ROW("chan_close(c)", "closed", -EPIPE, close_twice),
    /* API: chan_send "-EPIPE if c is or becomes closed (the value was not sent)" */
    ROW("chan_send(c, &v)", "closed, cap 4, empty", -EPIPE, send_closed),
    /* API: chan_trysend "never blocks: 0, -EPIPE, or -EAGAIN" (closed wins over room) */
    ROW("chan_trysend(c, &v)", "closed, cap 4, empty", -EPIPE, trysend_closed_room),
    /* API: "A ready operation always completes, whatever the deadline" (closed is ready) */
    ROW("chan_send_until(c, &v, 0)", "closed, unbuffered", -EPIPE, send_until_closed_past),
    /* API: "A send to a closed channel never delivers." */
    ROW("chan_send(c, NULL)", "closed, elemsize 0", -EPIPE, send_closed_size0),
    /* API: chan_send "-EPIPE if c is ... or becomes closed"; chan_close "Wakes ... every
     * blocked sender (-EPIPE)" */
    ROW("chan_send(c, &v)", "blocked on full cap 2, then chan_close", -EPIPE,
        send_blocked_full_closed),
    ROW("chan_send(c, &v)", "blocked unbuffered, then chan_close", -EPIPE,
        send_blocked_unbuf_closed),
    /* API: chan_send_until "as chan_send, or -ETIMEDOUT" */
    ROW("chan_send_until(c, &v, later)", "blocked on full cap 1, then chan_close", -EPIPE,
        send_until_blocked_closed),
    /* API: chan_recv "-EPIPE: c is closed and drained, *elem is zeroed" */
    ROW("chan_recv(c, &v)", "closed, empty", -EPIPE, recv_closed_block),
    /* API: chan_tryrecv "never blocks: 0, -EPIPE, or -EAGAIN"; "zeroes *elem" */
    ROW("chan_tryrecv(c, &v)", "closed, empty", -EPIPE, tryrecv_closed),
    /* API: "an `_until` call whose deadline has passed behaves as its `try` form" */
    ROW("chan_recv_until(c, &v, 0)", "closed, empty", -EPIPE, recv_until_closed_past),
    /* API: "elem may be NULL (value discarded)" */
    ROW("chan_recv(c, NULL)", "closed, unbuffered", -EPIPE, recv_closed_null_elem),
    /* API: "Close: values already buffered are still received, then every receive reports
     * closed." */
    ROW("chan_recv(c, &v)", "closed with 2 buffered, after receiving both", -EPIPE,
        recv_closed_after_drain),
    /* API: chan_close "Wakes every blocked receiver (-EPIPE, zeroed elem)" */
    ROW("chan_recv(c, &v)", "blocked unbuffered, then chan_close", -EPIPE, recv_blocked_closed),
    ROW("chan_recv_until(c, &v, later)", "blocked on empty cap 2, then chan_close", -EPIPE,
        recv_until_blocked_closed),
    /* API: ok "false if the channel was closed (recv: *elem zeroed ...)" (select: index) */
    ROW("chan_select(cs, 2)", "case 1 recv on closed", 1, select_recv_closed),
    /* API: ok "false if the channel was closed (... send: nothing sent)" */
    ROW("chan_tryselect(cs, 2)", "case 1 send on closed", 1, tryselect_send_closed),
    /* API: "A ready operation always completes, whatever the deadline." */
    ROW("chan_select_until(cs, 1, 0)", "case 0 send on closed", 0, select_until_send_closed_past),
    /* API: "Closing wakes all blocked receivers and senders"; ok = false on the closed case */
    ROW("chan_select(cs, 2)", "blocked recv on a and b, then chan_close(b)", 1,
        select_blocked_then_closed),

    /* ---- -EBUSY ---- */
    /* API: chan_free "-EBUSY (nothing freed) while any thread or task is blocked on c" */
    ROW("chan_free(c)", "sender blocked on full cap 1", -EBUSY, free_busy_sender),
    ROW("chan_free(c)", "receiver blocked, unbuffered", -EBUSY, free_busy_receiver),
    ROW("chan_free(c)", "chan_recv_until blocked, unbuffered", -EBUSY, free_busy_until),
    /* API: "chan_free returns -EBUSY while any operation's waiter is still queued on c" */
    ROW("chan_free(b)", "select blocked on a and b", -EBUSY, free_busy_select),
    /* API: chan_free "NULL: 0, no-op" */
    ROW("chan_free(NULL)", "-", 0, free_null),
    /* API: "Values still buffered are discarded" (boundary: buffered values are not busy) */
    ROW("chan_free(c)", "3 values buffered, nobody blocked", 0, free_with_buffered_values),
    /* API: a timed-out operation "still unlinks itself from c on its way out" (boundary: done) */
    ROW("chan_free(c)", "after chan_recv_until timed out", 0, free_after_timeout),

    /* ---- -EAGAIN ---- */
    /* API: chan_trysend "never blocks: 0, -EPIPE, or -EAGAIN" */
    ROW("chan_trysend(c, &v)", "unbuffered, no receiver", -EAGAIN, trysend_unbuf_nobody),
    /* API: "Buffered: ... a send blocks only while the buffer is full" */
    ROW("chan_trysend(c, &v)", "cap 2, full", -EAGAIN, trysend_full),
    /* API: chan_tryrecv "never blocks: 0, -EPIPE, or -EAGAIN" */
    ROW("chan_tryrecv(c, &v)", "cap 2, empty", -EAGAIN, tryrecv_empty),
    ROW("chan_tryrecv(c, NULL)", "elemsize 0, unbuffered, no sender", -EAGAIN,
        tryrecv_unbuf_nobody),
    /* API: "A NULL channel is Go's nil channel: it is never ready." */
    ROW("chan_trysend(NULL, &v)", "-", -EAGAIN, trysend_nil),
    ROW("chan_tryrecv(NULL, &v)", "-", -EAGAIN, tryrecv_nil),
    /* API: chan_tryselect "index, or -EAGAIN: Go's default"; "On -EAGAIN ... no case's `ok` is
     * written" */
    ROW("chan_tryselect(cs, 3)", "send on full, recv on empty, NULL", -EAGAIN,
        tryselect_none_ready_small),
    ROW("chan_tryselect(cs, 12)", "12 cases, none ready", -EAGAIN, tryselect_none_ready_large),
    /* API: "n == 0 blocks forever (Go's select {})"; tryselect: "-EAGAIN: Go's default" */
    ROW("chan_tryselect(NULL, 0)", "-", -EAGAIN, tryselect_empty),
    /* API: "NULL: this case is never chosen" */
    ROW("chan_tryselect(cs, 2)", "only NULL channels", -EAGAIN, tryselect_only_nil),

    /* ---- -ETIMEDOUT ---- */
    /* API: chan_send_until "as chan_send, or -ETIMEDOUT" */
    ROW("chan_send_until(c, &v, now + 20 ms)", "cap 1, full", -ETIMEDOUT,
        send_until_full_times_out),
    ROW("chan_send_until(c, &v, now + 20 ms)", "unbuffered, no receiver", -ETIMEDOUT,
        send_until_unbuf_times_out),
    /* API: chan_recv_until "as chan_recv, or -ETIMEDOUT" */
    ROW("chan_recv_until(c, &v, now + 20 ms)", "cap 3, empty", -ETIMEDOUT,
        recv_until_empty_times_out),
    /* API: "A NULL channel is Go's nil channel: it is never ready." */
    ROW("chan_recv_until(NULL, &v, now + 20 ms)", "-", -ETIMEDOUT, recv_until_nil_times_out),
    ROW("chan_send_until(NULL, &v, now + 20 ms)", "-", -ETIMEDOUT, send_until_nil_times_out),
    ROW("chan_recv_until(NULL, NULL, INT64_MIN)", "-", -ETIMEDOUT, recv_until_nil_past),
    /* API: "an `_until` call whose deadline has passed behaves as its `try` form, but reports
     * -ETIMEDOUT where the try form reports -EAGAIN" */
    ROW("chan_send_until(c, &v, now - 1)", "cap 1, full", -ETIMEDOUT, send_until_past_not_ready),
    ROW("chan_recv_until(c, &v, 0)", "unbuffered, no sender", -ETIMEDOUT,
        recv_until_zero_not_ready),
    ROW("chan_send_until(c, &v, INT64_MIN)", "unbuffered, no receiver", -ETIMEDOUT,
        send_until_int64_min),
    ROW("chan_recv_until(c, &v, INT64_MIN)", "cap 1, empty", -ETIMEDOUT, recv_until_int64_min),
    /* API: "A ready operation always completes, whatever the deadline." (boundaries) */
    ROW("chan_send_until(c, &v, INT64_MIN)", "cap 1, empty", 0, send_until_past_ready),
    ROW("chan_send_until(c, &v, 0)", "unbuffered, receiver blocked", 0,
        send_until_past_receiver_waiting),
    ROW("chan_recv_until(c, &v, 0)", "cap 2, one buffered", 0, recv_until_past_ready),
    ROW("chan_select_until(cs, 2, INT64_MIN)", "case 1 ready", 1, select_until_past_ready),
    /* API: chan_select_until "index, or -ETIMEDOUT"; "On ... -ETIMEDOUT ... no case's `ok` is
     * written" */
    ROW("chan_select_until(cs, 2, now + 20 ms)", "recv unbuffered, send on full", -ETIMEDOUT,
        select_until_blocked_times_out),
    ROW("chan_select_until(cs, 10, now + 20 ms)", "10 cases, none ready", -ETIMEDOUT,
        select_until_large_times_out),
    ROW("chan_select_until(cs, 2, 0)", "none ready, deadline passed", -ETIMEDOUT,
        select_until_past),
    ROW("chan_select_until(cs, 3, INT64_MIN)", "none ready", -ETIMEDOUT, select_until_int64_min),
    /* API: "n == 0 blocks forever (Go's select {})" — until the deadline */
    ROW("chan_select_until(NULL, 0, now + 10 ms)", "-", -ETIMEDOUT, select_until_empty),
    ROW("chan_select_until(cs, 2, now + 10 ms)", "only NULL channels", -ETIMEDOUT,
        select_until_only_nil),
};

#define NROWS ((int)(sizeof rows / sizeof rows[0]))

START_TEST(error_table)
{
    const struct row *r = &rows[_i];
    int got = r->run();
    ck_assert_msg(got == r->expect, "row %d: %s [%s]: expected %d, got %d", _i, r->call, r->state,
                  r->expect, got);
}
END_TEST

/* Each code of the contract's error paths has a row: the table covers what it claims to. (-ENOMEM
 * from an allocation that fails is test_faults.c's; here only sizes refused before one.) */
START_TEST(table_covers_codes)
{
    const int codes[] = {-EINVAL, -ENOMEM, -EPIPE, -EBUSY, -EAGAIN, -ETIMEDOUT};
    for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
        int n = 0;
        for (int i = 0; i < NROWS; i++)
            n += rows[i].expect == codes[k];
        ck_assert_msg(n > 0, "no row for code %d", codes[k]);
    }
    if (getenv("CHAN_ERRORS_PRINT")) {
        for (int i = 0; i < NROWS; i++)
            printf("%3d  %-48s %-48s %d\n", i, rows[i].call, rows[i].state, rows[i].expect);
    }
    printf("test_errors: %d rows\n", NROWS);
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, error_table, 0, NROWS);
    tcase_add_test(tc, table_covers_codes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(errors_suite()); }
