/* SPDX-License-Identifier: MIT */
/*
 * test_contract.c - the precise points of chan.h's contract that no other suite checks on every
 * path, each test naming the sentence it holds the library to:
 *   - every receive that reports closed zeroes *elem: each form of receive (plain, try, until
 *     with a deadline to come or past, select's three forms), on each kind of channel
 *     (unbuffered, a small buffer under the lock, the lock-free ring), whether the buffer was
 *     drained before or the receive was blocked when the close came;
 *   - a passed deadline makes an _until call its try form, reporting -ETIMEDOUT for -EAGAIN,
 *     and a ready operation completes whatever its deadline (INT64_MIN included);
 *   - bad arguments give -EINVAL whatever the channel's state, and nothing happens: a select
 *     validates every case before it does anything (a later invalid case leaves an earlier
 *     ready one untouched), and no case's ok is written then;
 *   - no call returns -EINTR, with signals every few hundred microseconds during blocked waits
 *     of every kind, with and without deadlines;
 *   - blocking operations are not pthread cancellation points;
 *   - chan_free reports -EBUSY while a select that completed through another channel has still
 *     to unlink itself from the one being freed;
 *   - the happens-before edges of chan(7) (Go's memory model): a send before the receive that
 *     takes its value completes, a close before a receive that reports it, and the k-th
 *     receive before the (k+cap)-th send completes (unbuffered: the receive before its own
 *     send completes). Plain memory is written on one side and read on the other; under TSan a
 *     missing edge is a reported race, in any build a value read too early fails the test.
 * Helper threads record what happened; the test's main thread makes the assertions.
 */
#include "testutil.h"

#include "chan_io.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#define FILL 0xAB

/* The element of most channels here: large enough that a partial zeroing shows. */
struct elem {
    unsigned char b[24];
};

static struct elem filled(void)
{
    struct elem e;
    memset(&e, FILL, sizeof e);
    return e;
}

static struct elem val(unsigned char x)
{
    struct elem e;
    memset(&e, x, sizeof e);
    return e;
}

static bool all_bytes(const struct elem *e, unsigned char x)
{
    for (size_t i = 0; i < sizeof e->b; i++)
        if (e->b[i] != x)
            return false;
    return true;
}

/* A case's ok, read as a byte (a bool holding anything but 0 or 1 may not be read as bool). */
static unsigned char ok_byte(const struct chan_case *cs)
{
    unsigned char b;
    memcpy(&b, &cs->ok, 1);
    return b;
}

/* Sets every case's ok to a byte that no write of true or false leaves. */
#define OK_UNSET 0x5A
static void ok_unset(struct chan_case *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memset(&cs[i].ok, OK_UNSET, sizeof cs[i].ok);
}

/* The channel kinds a receive or send takes different paths on: unbuffered, Go's buffer under
 * the lock (capacity under the ring's minimum), and the lock-free ring. */
static const size_t caps[] = {0, 2, 16};
#define NCAPS (sizeof caps / sizeof caps[0])

/* ---- Operations of every form, run by one function ---------------------------------------- */

enum form {
    F_RECV,           /* chan_recv */
    F_TRYRECV,        /* chan_tryrecv */
    F_RECV_UNTIL,     /* chan_recv_until, a deadline far ahead */
    F_RECV_PAST,      /* chan_recv_until, a deadline already past */
    F_SELECT,         /* chan_select: a recv case on c, and one on a channel never ready */
    F_TRYSELECT,      /* chan_tryselect, the same cases */
    F_SELECT_UNTIL,   /* chan_select_until, a deadline far ahead */
    F_SELECT_PAST,    /* chan_select_until, a deadline already past */
    F_SEND,           /* the same forms, sending */
    F_TRYSEND,        /* */
    F_SEND_UNTIL,     /* */
    F_SEND_PAST,      /* */
    F_SELECT_S,       /* */
    F_TRYSELECT_S,    /* */
    F_SELECT_UNTIL_S, /* */
    F_SELECT_PAST_S,  /* */
    F_NFORMS
};

static const char *const form_name[F_NFORMS] = {
    "chan_recv",   "chan_tryrecv",   "chan_recv_until",   "chan_recv_until (past)",
    "chan_select", "chan_tryselect", "chan_select_until", "chan_select_until (past)",
    "chan_send",   "chan_trysend",   "chan_send_until",   "chan_send_until (past)",
    "select send", "tryselect send", "select_until send", "select_until send (past)"};

static bool is_send(enum form f) { return f >= F_SEND; }
static bool is_select(enum form f) { return (f & 7) >= F_SELECT; }

/* One operation: its form, channel, element, and what it returned. For a select form, cs[0] is
 * the case on c and cs[1] a receive on `other`, never ready (cs[1] must stay untouched). */
struct op {
    enum form form;
    chan_t *c, *other;
    int64_t deadline; /* for the blocking _until forms; the past ones use chan_now() - 1 */
    bool null_elem;   /* pass elem NULL */
    struct elem e;    /* the value sent, or where the value received lands */
    struct elem e1;   /* the other case's element */
    struct chan_case cs[2];
    int rc; /* the call's result: for a select, 0 (case 0, ok), -EPIPE (case 0, not
               ok), or its negative result; -1000 - index for another index */
    unsigned char ok0, ok1;
    atomic_int done;
    pthread_t th;
};

static void op_run(struct op *o)
{
    void *elem = o->null_elem ? NULL : &o->e;
    int64_t past = chan_now() - 1;
    int r;
    switch (o->form & 7) {
    case F_RECV: r = is_send(o->form) ? chan_send(o->c, elem) : chan_recv(o->c, elem); break;
    case F_TRYRECV:
        r = is_send(o->form) ? chan_trysend(o->c, elem) : chan_tryrecv(o->c, elem);
        break;
    case F_RECV_UNTIL:
    case F_RECV_PAST: {
        int64_t d = (o->form & 7) == F_RECV_UNTIL ? o->deadline : past;
        r = is_send(o->form) ? chan_send_until(o->c, elem, d) : chan_recv_until(o->c, elem, d);
        break;
    }
    default:
        o->cs[0] = is_send(o->form) ? chan_case_send(o->c, elem) : chan_case_recv(o->c, elem);
        o->cs[1] = chan_case_recv(o->other, &o->e1);
        ok_unset(o->cs, 2);
        switch (o->form & 7) {
        case F_SELECT: r = chan_select(o->cs, 2); break;
        case F_TRYSELECT: r = chan_tryselect(o->cs, 2); break;
        case F_SELECT_UNTIL: r = chan_select_until(o->cs, 2, o->deadline); break;
        default: r = chan_select_until(o->cs, 2, past); break;
        }
        o->ok0 = ok_byte(&o->cs[0]);
        o->ok1 = ok_byte(&o->cs[1]);
        if (r == 0)
            r = o->ok0 == 1 ? 0 : o->ok0 == 0 ? -EPIPE : -2000; /* -2000: ok not written */
        else if (r > 0)
            r = -1000 - r;
    }
    o->rc = r;
}

static void op_init(struct op *o, enum form f, chan_t *c, chan_t *other, struct elem e)
{
    memset(o, 0, sizeof *o);
    o->form = f;
    o->c = c;
    o->other = other;
    o->deadline = chan_now() + 60000 * MS;
    o->e = e;
    o->e1 = filled();
    atomic_init(&o->done, 0);
}

static void *op_main(void *arg)
{
    struct op *o = arg;
    op_run(o);
    atomic_store(&o->done, 1);
    return NULL;
}

static void op_start(struct op *o) { o->th = spawn(op_main, o); }

static int op_done(struct op *o) { return atomic_load(&o->done); }

/* The other case of a select form: neither chosen nor written. */
static void check_other_case(const struct op *o, const char *what)
{
    if (!is_select(o->form))
        return;
    ck_assert_msg(o->ok1 == OK_UNSET, "%s: %s: the other case's ok written", what,
                  form_name[o->form]);
    ck_assert_msg(all_bytes(&o->e1, FILL), "%s: %s: the other case's elem written", what,
                  form_name[o->form]);
}

/* ---- Every receive that reports closed zeroes *elem ----------------------------------------- */

/* chan.h: "-EPIPE: c is closed and drained, *elem is zeroed" and the precise point "every
 * receive that reports closed ... zeroes *elem when elem is not NULL": after the buffered values
 * were drained by the same form, on every kind of channel; elem NULL is accepted there too. */
START_TEST(test_closed_recv_zeroes_after_drain)
{
    chan_t *never = mk(sizeof(struct elem), 0);
    for (size_t k = 0; k < NCAPS; k++) {
        for (enum form f = F_RECV; f <= F_SELECT_PAST; f++) {
            chan_t *c = mk(sizeof(struct elem), caps[k]);
            for (size_t i = 0; i < caps[k]; i++) {
                struct elem v = val((unsigned char)(i + 1));
                ck_assert_int_eq(chan_send(c, &v), 0);
            }
            ck_assert_int_eq(chan_close(c), 0);
            struct op o;
            for (size_t i = 0; i < caps[k]; i++) { /* the values are still received, in order */
                op_init(&o, f, c, never, filled());
                op_run(&o);
                ck_assert_msg(o.rc == 0 && all_bytes(&o.e, (unsigned char)(i + 1)),
                              "cap %zu, %s: value %zu: rc %d", caps[k], form_name[f], i, o.rc);
                check_other_case(&o, "drain");
            }
            for (int twice = 0; twice < 2; twice++) {
                op_init(&o, f, c, never, filled());
                op_run(&o);
                ck_assert_msg(o.rc == -EPIPE, "cap %zu, %s: rc %d after the drain", caps[k],
                              form_name[f], o.rc);
                ck_assert_msg(all_bytes(&o.e, 0), "cap %zu, %s: elem not zeroed (%#x ...)", caps[k],
                              form_name[f], o.e.b[0]);
                check_other_case(&o, "closed");
            }
            op_init(&o, f, c, never, filled());
            o.null_elem = true;
            op_run(&o);
            ck_assert_msg(o.rc == -EPIPE, "cap %zu, %s, elem NULL: rc %d", caps[k], form_name[f],
                          o.rc);
            ck_assert_int_eq(chan_free(c), 0);
        }
    }
    ck_assert_int_eq(chan_free(never), 0);
}
END_TEST

/* The same when the receive was blocked and chan_close woke it (chan_close: "Wakes every
 * blocked receiver (-EPIPE, zeroed elem)"), on every kind of channel, for each blocking form.
 * A select's other case is left untouched; elem NULL is woken as well. */
START_TEST(test_closed_recv_zeroes_blocked)
{
    static const enum form forms[] = {F_RECV, F_RECV_UNTIL, F_SELECT, F_SELECT_UNTIL};
    enum { NF = sizeof forms / sizeof forms[0] };
    chan_t *never = mk(sizeof(struct elem), 0);
    for (size_t k = 0; k < NCAPS; k++) {
        chan_t *c = mk(sizeof(struct elem), caps[k]);
        struct op o[NF + 1];
        for (int i = 0; i <= NF; i++) {
            op_init(&o[i], forms[i % NF], c, never, filled());
            o[i].null_elem = i == NF;
            op_start(&o[i]);
        }
        ck_assert(blocked_receivers_at_least(c, NF + 1));
        ck_assert_int_eq(chan_close(c), 0);
        for (int i = 0; i <= NF; i++) {
            join(o[i].th);
            ck_assert_msg(o[i].rc == -EPIPE, "cap %zu, %s: rc %d", caps[k], form_name[o[i].form],
                          o[i].rc);
            if (i < NF)
                ck_assert_msg(all_bytes(&o[i].e, 0), "cap %zu, %s: elem not zeroed", caps[k],
                              form_name[o[i].form]);
            check_other_case(&o[i], "woken by close");
        }
        ck_assert_int_eq(chan_free(c), 0);
    }
    ck_assert_int_eq(chan_free(never), 0);
}
END_TEST

/* "for a channel of elemsize 0, elem is ignored everywhere and may be NULL": every form of send
 * with elem NULL, every form of receive with an elem that must stay as it was - when a value
 * (a token) moves, when the channel is closed and drained, when a blocked receive is woken by
 * the close - on an unbuffered channel and on a counted buffer. */
START_TEST(test_elemsize_zero_elem_ignored)
{
    chan_t *never = mk(0, 0);
    for (size_t cap = 0; cap <= 2; cap += 2) {
        chan_t *c = mk(0, cap);
        for (enum form f = F_SEND; f < F_NFORMS; f++) {
            /* A peer takes each token of an unbuffered channel; a buffer takes two. */
            struct op peer, o;
            if (!cap) {
                op_init(&peer, F_RECV, c, NULL, filled());
                op_start(&peer);
                ck_assert(blocked_receivers_at_least(c, 1));
            }
            op_init(&o, f, c, never, filled());
            o.null_elem = true;
            op_run(&o);
            ck_assert_msg(o.rc == 0, "cap %zu, %s with elem NULL: %d", cap, form_name[f], o.rc);
            check_other_case(&o, "elemsize 0 send");
            if (!cap) {
                join(peer.th);
                ck_assert(peer.rc == 0 && all_bytes(&peer.e, FILL));
            } else {
                ck_assert_int_eq(chan_recv(c, NULL), 0);
            }
        }
        for (enum form f = F_RECV; f <= F_SELECT_PAST; f++) {
            struct op peer, o;
            if (!cap) {
                op_init(&peer, F_SEND, c, NULL, filled());
                peer.null_elem = true;
                op_start(&peer);
                ck_assert(blocked_senders_at_least(c, 1));
            } else {
                ck_assert_int_eq(chan_send(c, NULL), 0);
            }
            op_init(&o, f, c, never, filled());
            op_run(&o);
            ck_assert_msg(o.rc == 0 && all_bytes(&o.e, FILL), "cap %zu, %s: %d", cap, form_name[f],
                          o.rc);
            if (!cap) {
                join(peer.th);
                ck_assert_int_eq(peer.rc, 0);
            }
        }
        static const enum form blocking[] = {F_RECV, F_RECV_UNTIL, F_SELECT, F_SELECT_UNTIL};
        struct op w[4];
        for (int i = 0; i < 4; i++) {
            op_init(&w[i], blocking[i], c, never, filled());
            op_start(&w[i]);
        }
        ck_assert(blocked_receivers_at_least(c, 4));
        ck_assert_int_eq(chan_close(c), 0);
        for (int i = 0; i < 4; i++) {
            join(w[i].th);
            ck_assert_msg(w[i].rc == -EPIPE && all_bytes(&w[i].e, FILL), "cap %zu, %s: %d", cap,
                          form_name[w[i].form], w[i].rc);
        }
        for (enum form f = F_RECV; f <= F_SELECT_PAST; f++) {
            struct op o;
            op_init(&o, f, c, never, filled());
            op_run(&o);
            ck_assert_msg(o.rc == -EPIPE && all_bytes(&o.e, FILL), "cap %zu, closed %s: %d", cap,
                          form_name[f], o.rc);
        }
        ck_assert_int_eq(chan_free(c), 0);
    }
    ck_assert_int_eq(chan_free(never), 0);
}
END_TEST

/* ---- Deadlines: a passed one is the try form; a ready operation always completes ----------- */

/* Deadlines that have passed, the extreme ones included (INT64_MIN is the library's own marker
 * of a try form inside: it must still read as a deadline). */
static int64_t past_deadline(int i)
{
    switch (i) {
    case 0: return INT64_MIN;
    case 1: return INT64_MIN + 1;
    case 2: return -1;
    case 3: return 0;
    default: return chan_now();
    }
}
#define NPAST 5

/* The precise point: "an _until call whose deadline has passed behaves as its try form, but
 * reports -ETIMEDOUT where the try form reports -EAGAIN": not ready -> -ETIMEDOUT at once,
 * nothing queued, no case's ok written; and on a NULL channel, a select of NULL cases only, and
 * a select of no case. */
START_TEST(test_past_deadline_not_ready)
{
    chan_t *never = mk(sizeof(struct elem), 0);
    for (size_t k = 0; k < NCAPS; k++) {
        chan_t *c = mk(sizeof(struct elem), caps[k]);
        for (int p = 0; p < NPAST; p++) {
            int64_t d = past_deadline(p);
            struct elem v = filled();
            int64_t t0 = chan_now();
            /* Empty: a receive is not ready. */
            ck_assert_int_eq(chan_recv_until(c, &v, d), -ETIMEDOUT);
            struct chan_case cs[2] = {chan_case_recv(c, &v), chan_case_recv(never, &v)};
            ok_unset(cs, 2);
            ck_assert_int_eq(chan_select_until(cs, 2, d), -ETIMEDOUT);
            ck_assert(ok_byte(&cs[0]) == OK_UNSET && ok_byte(&cs[1]) == OK_UNSET);
            ck_assert(all_bytes(&v, FILL));
            /* Full: a send is not ready. */
            for (size_t i = 0; i < caps[k]; i++)
                ck_assert_int_eq(chan_trysend(c, &v), 0);
            ck_assert_int_eq(chan_send_until(c, &v, d), -ETIMEDOUT);
            cs[0] = chan_case_send(c, &v);
            ok_unset(cs, 2);
            ck_assert_int_eq(chan_select_until(cs, 2, d), -ETIMEDOUT);
            ck_assert(ok_byte(&cs[0]) == OK_UNSET && ok_byte(&cs[1]) == OK_UNSET);
            ck_assert_uint_eq(chan_len(c), caps[k]);
            while (chan_tryrecv(c, NULL) == 0) {
            }
            ck_assert_msg(chan_now() - t0 < late_bound(), "cap %zu, deadline %lld: it waited",
                          caps[k], (long long)d);
            ck_assert_uint_eq(hchan_waiting(c, CHAN_SEND) + hchan_waiting(c, CHAN_RECV), 0);
        }
        ck_assert_int_eq(chan_free(c), 0);
    }
    for (int p = 0; p < NPAST; p++) {
        int64_t d = past_deadline(p);
        int v = 1;
        ck_assert_int_eq(chan_send_until(NULL, &v, d), -ETIMEDOUT);
        ck_assert_int_eq(chan_recv_until(NULL, &v, d), -ETIMEDOUT);
        struct chan_case nil[2] = {chan_case_recv(NULL, &v), chan_case_send(NULL, NULL)};
        ok_unset(nil, 2);
        ck_assert_int_eq(chan_select_until(nil, 2, d), -ETIMEDOUT);
        ck_assert(ok_byte(&nil[0]) == OK_UNSET && ok_byte(&nil[1]) == OK_UNSET);
        ck_assert_int_eq(chan_select_until(NULL, 0, d), -ETIMEDOUT);
    }
    /* The try forms of the same: -EAGAIN. */
    int v = 1;
    ck_assert_int_eq(chan_trysend(NULL, &v), -EAGAIN);
    ck_assert_int_eq(chan_tryrecv(NULL, &v), -EAGAIN);
    struct chan_case nil = chan_case_recv(NULL, &v);
    ck_assert_int_eq(chan_tryselect(&nil, 1), -EAGAIN);
    ck_assert_int_eq(chan_tryselect(NULL, 0), -EAGAIN);
    ck_assert_int_eq(chan_free(never), 0);
}
END_TEST

/* "A ready operation always completes, whatever the deadline": with a value buffered, room in
 * the buffer, a blocked peer, or a closed channel (-EPIPE, not -ETIMEDOUT), for every deadline
 * already past. */
START_TEST(test_past_deadline_ready_completes)
{
    chan_t *never = mk(sizeof(struct elem), 0);
    for (size_t k = 0; k < NCAPS; k++) {
        for (int p = 0; p < NPAST; p++) {
            int64_t d = past_deadline(p);
            chan_t *c = mk(sizeof(struct elem), caps[k]);
            struct op peer;
            /* A receive: from the buffer, or from a blocked sender. */
            struct elem v = val(7), out = filled();
            if (caps[k]) {
                ck_assert_int_eq(chan_send(c, &v), 0);
            } else {
                op_init(&peer, F_SEND, c, NULL, v);
                op_start(&peer);
                ck_assert(blocked_senders_at_least(c, 1));
            }
            ck_assert_msg(chan_recv_until(c, &out, d) == 0, "cap %zu, deadline %lld", caps[k],
                          (long long)d);
            ck_assert(all_bytes(&out, 7));
            if (!caps[k]) {
                join(peer.th);
                ck_assert_int_eq(peer.rc, 0);
            }
            /* A select's receive case, the same. */
            v = val(8);
            out = filled();
            if (caps[k]) {
                ck_assert_int_eq(chan_send(c, &v), 0);
            } else {
                op_init(&peer, F_SEND, c, NULL, v);
                op_start(&peer);
                ck_assert(blocked_senders_at_least(c, 1));
            }
            struct elem e1 = filled();
            struct chan_case cs[2] = {chan_case_recv(never, &e1), chan_case_recv(c, &out)};
            ok_unset(cs, 2);
            ck_assert_int_eq(chan_select_until(cs, 2, d), 1);
            ck_assert(ok_byte(&cs[1]) == 1 && ok_byte(&cs[0]) == OK_UNSET);
            ck_assert(all_bytes(&out, 8));
            if (!caps[k]) {
                join(peer.th);
                ck_assert_int_eq(peer.rc, 0);
            }
            /* A send: into the buffer, or to a blocked receiver; then by a select. */
            for (int sel = 0; sel < 2; sel++) {
                v = val(9);
                if (!caps[k]) {
                    op_init(&peer, F_RECV, c, NULL, filled());
                    op_start(&peer);
                    ck_assert(blocked_receivers_at_least(c, 1));
                }
                if (sel) {
                    cs[0] = chan_case_recv(never, &e1);
                    cs[1] = chan_case_send(c, &v);
                    ok_unset(cs, 2);
                    ck_assert_int_eq(chan_select_until(cs, 2, d), 1);
                    ck_assert(ok_byte(&cs[1]) == 1 && ok_byte(&cs[0]) == OK_UNSET);
                } else {
                    ck_assert_int_eq(chan_send_until(c, &v, d), 0);
                }
                out = filled();
                if (caps[k]) {
                    ck_assert_int_eq(chan_tryrecv(c, &out), 0);
                } else {
                    join(peer.th);
                    ck_assert_int_eq(peer.rc, 0);
                    out = peer.e;
                }
                ck_assert(all_bytes(&out, 9));
            }
            /* Closed is ready too: -EPIPE, or ok = false. */
            ck_assert_int_eq(chan_close(c), 0);
            out = filled();
            ck_assert_int_eq(chan_recv_until(c, &out, d), -EPIPE);
            ck_assert(all_bytes(&out, 0));
            ck_assert_int_eq(chan_send_until(c, &v, d), -EPIPE);
            out = filled();
            cs[0] = chan_case_recv(c, &out);
            cs[1] = chan_case_recv(never, &e1);
            ok_unset(cs, 2);
            ck_assert_int_eq(chan_select_until(cs, 2, d), 0);
            ck_assert(ok_byte(&cs[0]) == 0 && ok_byte(&cs[1]) == OK_UNSET);
            ck_assert(all_bytes(&out, 0));
            cs[0] = chan_case_send(c, &v);
            ok_unset(cs, 2);
            ck_assert_int_eq(chan_select_until(cs, 2, d), 0);
            ck_assert(ok_byte(&cs[0]) == 0 && ok_byte(&cs[1]) == OK_UNSET);
            ck_assert(all_bytes(&e1, FILL));
            ck_assert_int_eq(chan_free(c), 0);
        }
    }
    ck_assert_int_eq(chan_free(never), 0);
}
END_TEST

/* ---- -EINVAL whatever the channel's state, and nothing done ---------------------------------- */

/* The states a channel of elemsize > 0 can be in when a send with elem NULL comes. */
enum state { S_EMPTY, S_RECEIVER, S_ROOM, S_FULL, S_CLOSED, S_NSTATES };

/* "bad arguments give -EINVAL whatever the channel's state": a send with elem NULL on a channel
 * whose elemsize > 0, in every form, whether the channel is empty, has a receiver blocked on it,
 * has room, is full, or is closed; afterwards the channel is as it was (the receiver still
 * blocked, the buffer unchanged) and no case's ok was written. */
START_TEST(test_einval_whatever_state)
{
    chan_t *never = mk(sizeof(struct elem), 0);
    for (enum state s = S_EMPTY; s < S_NSTATES; s++) {
        size_t cap = s == S_ROOM || s == S_FULL ? 2 : 0;
        chan_t *c = mk(sizeof(struct elem), cap);
        struct op rcv;
        struct elem v = val(3);
        if (s == S_RECEIVER) {
            op_init(&rcv, F_RECV, c, NULL, filled());
            op_start(&rcv);
            ck_assert(blocked_receivers_at_least(c, 1));
        }
        if (s == S_ROOM || s == S_FULL)
            ck_assert_int_eq(chan_send(c, &v), 0);
        if (s == S_FULL)
            ck_assert_int_eq(chan_send(c, &v), 0);
        if (s == S_CLOSED)
            ck_assert_int_eq(chan_close(c), 0);
        size_t len = chan_len(c);
        for (enum form f = F_SEND; f < F_NFORMS; f++) {
            struct op o;
            op_init(&o, f, c, never, filled());
            o.null_elem = true;
            o.deadline = chan_now() + 50 * MS; /* were it to block: it must not */
            op_run(&o);
            ck_assert_msg(o.rc == -EINVAL, "state %d, %s: rc %d", s, form_name[f], o.rc);
            if (is_select(f))
                ck_assert_msg(o.ok0 == OK_UNSET && o.ok1 == OK_UNSET, "state %d, %s: ok written", s,
                              form_name[f]);
            ck_assert_uint_eq(chan_len(c), len);
        }
        if (s == S_RECEIVER) {
            ck_assert_msg(!op_done(&rcv), "the blocked receiver was woken");
            ck_assert_uint_eq(hchan_waiting(c, CHAN_RECV), 1);
            ck_assert_int_eq(chan_send(c, &v), 0);
            join(rcv.th);
            ck_assert(rcv.rc == 0 && all_bytes(&rcv.e, 3));
        }
        ck_assert_int_eq(chan_free(c), 0);
    }
    /* chan_close(NULL), and the select's own bad arguments, on any state. */
    ck_assert_int_eq(chan_close(NULL), -EINVAL);
    struct chan_case one = chan_case_recv(never, NULL);
    ck_assert_int_eq(chan_select(NULL, 1), -EINVAL);
    ck_assert_int_eq(chan_tryselect(NULL, 1), -EINVAL);
    ck_assert_int_eq(chan_select_until(NULL, 1, CHAN_FOREVER), -EINVAL);
    ck_assert_int_eq(chan_select(&one, (size_t)CHAN_SELECT_MAX + 1), -EINVAL);
    ck_assert_int_eq(chan_tryselect(&one, SIZE_MAX), -EINVAL);
    ck_assert_int_eq(chan_select_until(&one, (size_t)CHAN_SELECT_MAX + 1, 0), -EINVAL);
    ck_assert_int_eq(chan_free(never), 0);
}
END_TEST

/* What makes a case invalid, for the next test. */
enum bad { B_DIR0, B_DIR3, B_NIL_DIR0, B_NIL_DIR_NEG, B_SEND_NULL, B_NBAD };

static struct chan_case bad_case(enum bad b, chan_t *c)
{
    struct chan_case cs = chan_case_recv(c, NULL);
    switch (b) {
    case B_DIR0: cs.dir = (enum chan_dir)0; break;
    case B_DIR3: cs.dir = (enum chan_dir)3; break;
    case B_NIL_DIR0:
        cs.chan = NULL;
        cs.dir = (enum chan_dir)0;
        break;
    case B_NIL_DIR_NEG:
        cs.chan = NULL;
        cs.dir = (enum chan_dir) - 1;
        break;
    default: cs = chan_case_send(c, NULL); break;
    }
    return cs;
}

/* "select validates every case before doing anything: on -EINVAL nothing was sent, received or
 * consumed. A case whose chan is NULL must still have a valid dir". A ready case before or after
 * the invalid one - a value buffered, room in a buffer, a sender or a receiver blocked on an
 * unbuffered channel, a closed channel - is left as it was, by all three forms; no ok is
 * written; a select of one NULL-channel case with a bad dir returns -EINVAL, not blocks. */
START_TEST(test_select_validates_before_anything)
{
    chan_t *badc = mk(sizeof(struct elem), 0);
    for (int ready = 0; ready < 5; ready++) {
        for (enum bad b = B_DIR0; b < B_NBAD; b++) {
            for (int bad_first = 0; bad_first < 2; bad_first++) {
                for (int form = 0; form < 3; form++) {
                    chan_t *c = mk(sizeof(struct elem), ready < 2 ? 1 : 0);
                    struct elem v = val(5), out = filled();
                    struct chan_case good;
                    struct op peer;
                    switch (ready) {
                    case 0: /* a value buffered */
                        ck_assert_int_eq(chan_send(c, &v), 0);
                        good = chan_case_recv(c, &out);
                        break;
                    case 1: /* room */ good = chan_case_send(c, &v); break;
                    case 2: /* a blocked sender */
                        op_init(&peer, F_SEND, c, NULL, v);
                        op_start(&peer);
                        ck_assert(blocked_senders_at_least(c, 1));
                        good = chan_case_recv(c, &out);
                        break;
                    case 3: /* a blocked receiver */
                        op_init(&peer, F_RECV, c, NULL, filled());
                        op_start(&peer);
                        ck_assert(blocked_receivers_at_least(c, 1));
                        good = chan_case_send(c, &v);
                        break;
                    default: /* closed */
                        ck_assert_int_eq(chan_close(c), 0);
                        good = chan_case_recv(c, &out);
                        break;
                    }
                    struct chan_case cs[2];
                    cs[bad_first ? 1 : 0] = good;
                    cs[bad_first ? 0 : 1] = bad_case(b, badc);
                    ok_unset(cs, 2);
                    int r = form == 0   ? chan_select(cs, 2)
                            : form == 1 ? chan_tryselect(cs, 2)
                                        : chan_select_until(cs, 2, chan_now() + 50 * MS);
                    ck_assert_msg(r == -EINVAL, "ready %d, bad %d, form %d: %d", ready, b, form, r);
                    ck_assert(ok_byte(&cs[0]) == OK_UNSET && ok_byte(&cs[1]) == OK_UNSET);
                    ck_assert(all_bytes(&out, FILL));
                    switch (ready) {
                    case 0: ck_assert_uint_eq(chan_len(c), 1); break;
                    case 1: ck_assert_uint_eq(chan_len(c), 0); break;
                    case 2:
                    case 3:
                        ck_assert_msg(!op_done(&peer), "ready %d, bad %d: the peer was served",
                                      ready, b);
                        if (ready == 2) {
                            ck_assert_int_eq(chan_recv(c, &out), 0);
                        } else {
                            ck_assert_int_eq(chan_send(c, &v), 0);
                            out = v;
                        }
                        join(peer.th);
                        ck_assert_int_eq(peer.rc, 0);
                        ck_assert(all_bytes(&out, 5));
                        break;
                    default: break;
                    }
                    ck_assert_int_eq(chan_free(c), 0);
                }
            }
        }
    }
    /* NULL-channel cases alone: a bad dir is -EINVAL (else the select would block for ever);
     * a valid one's elem is not looked at. */
    for (enum bad b = B_NIL_DIR0; b <= B_NIL_DIR_NEG; b++) {
        struct chan_case cs = bad_case(b, NULL);
        ck_assert_int_eq(chan_select(&cs, 1), -EINVAL);
        ck_assert_int_eq(chan_tryselect(&cs, 1), -EINVAL);
        ck_assert_int_eq(chan_select_until(&cs, 1, CHAN_FOREVER), -EINVAL);
    }
    struct chan_case nil_send = chan_case_send(NULL, NULL);
    ck_assert_int_eq(chan_tryselect(&nil_send, 1), -EAGAIN);
    ck_assert_int_eq(chan_free(badc), 0);
}
END_TEST

/* ---- No -EINTR ------------------------------------------------------------------------------ */

static void on_signal(int sig) { (void)sig; }

/* SIGUSR1 without SA_RESTART: a bare interrupted system call fails with EINTR. */
static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* The blocking waits, each on its own thread: what they wait on, and for how long. */
enum wait_kind {
    W_SEND,         /* chan_send on an unbuffered channel: a receiver comes */
    W_RECV,         /* chan_recv: a sender comes */
    W_SELECT,       /* chan_select, recv case: a sender comes */
    W_SEND_UNTIL,   /* chan_send_until: nobody comes, -ETIMEDOUT */
    W_RECV_UNTIL,   /* */
    W_SELECT_UNTIL, /* */
    W_NIL_UNTIL,    /* chan_recv_until(NULL) */
    W_NIL_SELECT,   /* chan_select_until with NULL cases only */
    W_EMPTY_SELECT, /* chan_select_until(NULL, 0) */
    W_BUF_RECV,     /* chan_recv on the ring: a sender comes */
    W_BUF_SEND,     /* chan_send on a full ring: a receiver comes */
    W_NKINDS
};

struct waiter {
    enum wait_kind kind;
    chan_t *c;
    int64_t deadline;
    int rc;
    int64_t end;
    long v;
    atomic_int done;
    pthread_t th;
};

/* One waiter of each kind, each on a channel of its own made ready to block it (the buffered
 * send's channel full), all with the same deadline; not started. */
static void waiters_make(struct waiter w[W_NKINDS], chan_t *c[W_NKINDS], int64_t deadline)
{
    for (int k = 0; k < W_NKINDS; k++) {
        c[k] = mk(sizeof(long), k == W_BUF_RECV || k == W_BUF_SEND ? 8 : 0);
        if (k == W_BUF_SEND)
            for (long i = 0; i < 8; i++)
                ck_assert_int_eq(chan_send(c[k], &i), 0);
        memset(&w[k], 0, sizeof w[k]);
        w[k].kind = (enum wait_kind)k;
        w[k].c = c[k];
        w[k].deadline = deadline;
        atomic_init(&w[k].done, 0);
    }
}

static __attribute__((noinline)) void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    long v = 42;
    struct chan_case cs[2] = {chan_case_recv(w->c, &w->v), chan_case_recv(NULL, &v)};
    switch (w->kind) {
    case W_SEND:
    case W_BUF_SEND: w->rc = chan_send(w->c, &v); break;
    case W_RECV:
    case W_BUF_RECV: w->rc = chan_recv(w->c, &w->v); break;
    case W_SELECT: w->rc = chan_select(cs, 2); break;
    case W_SEND_UNTIL: w->rc = chan_send_until(w->c, &v, w->deadline); break;
    case W_RECV_UNTIL: w->rc = chan_recv_until(w->c, &w->v, w->deadline); break;
    case W_SELECT_UNTIL: w->rc = chan_select_until(cs, 2, w->deadline); break;
    case W_NIL_UNTIL: w->rc = chan_recv_until(NULL, &w->v, w->deadline); break;
    case W_NIL_SELECT: w->rc = chan_select_until(cs + 1, 1, w->deadline); break;
    default: w->rc = chan_select_until(NULL, 0, w->deadline); break;
    }
    w->end = chan_now();
    atomic_store(&w->done, 1);
    return NULL;
}

static atomic_int stop_signals;

struct signaller {
    pthread_t *targets;
    int n;
};

/* Signals every target every ~300 us until told to stop. */
static void *signaller_main(void *arg)
{
    struct signaller *s = arg;
    while (!atomic_load(&stop_signals)) {
        for (int i = 0; i < s->n; i++)
            pthread_kill(s->targets[i], SIGUSR1);
        sleep_ns(300 * 1000);
    }
    return NULL;
}

/* "No call returns -EINTR: a signal during a blocked operation is absorbed and the wait goes on
 * to the same deadline": every kind of blocked wait, under a signal every ~300 us for its whole
 * wait, returns what it would have without signals, and no _until call returns before its
 * deadline. */
START_TEST(test_no_eintr_any_wait)
{
    install_handler();
    int64_t rel = under_sanitizer() ? 400 * MS : 150 * MS;
    struct waiter w[W_NKINDS];
    chan_t *c[W_NKINDS];
    int64_t deadline = chan_now() + rel;
    waiters_make(w, c, deadline);
    for (int k = 0; k < W_NKINDS; k++)
        w[k].th = spawn(waiter_main, &w[k]);
    pthread_t targets[W_NKINDS];
    for (int k = 0; k < W_NKINDS; k++)
        targets[k] = w[k].th;
    struct signaller sg = {targets, W_NKINDS};
    atomic_store(&stop_signals, 0);
    pthread_t sth = spawn(signaller_main, &sg);
    /* The timed waits end at their deadline, never before, signals or not. */
    sleep_ns(deadline - chan_now() + 20 * MS);
    /* The untimed ones still wait, under signals for well over 100 ms now. */
    ck_assert_msg(!atomic_load(&w[W_SEND].done) && !atomic_load(&w[W_RECV].done) &&
                      !atomic_load(&w[W_SELECT].done) && !atomic_load(&w[W_BUF_RECV].done) &&
                      !atomic_load(&w[W_BUF_SEND].done),
                  "an untimed wait returned under signals");
    long v = 7, out = 0;
    ck_assert_int_eq(chan_recv(c[W_SEND], &out), 0);
    ck_assert_int_eq(out, 42);
    ck_assert_int_eq(chan_send(c[W_RECV], &v), 0);
    ck_assert_int_eq(chan_send(c[W_SELECT], &v), 0);
    ck_assert_int_eq(chan_send(c[W_BUF_RECV], &v), 0);
    ck_assert_int_eq(chan_recv(c[W_BUF_SEND], &out), 0);
    atomic_store(&stop_signals, 1); /* first: a joined thread may not be signalled */
    join(sth);
    for (int k = 0; k < W_NKINDS; k++)
        join(w[k].th);
    for (int k = 0; k < W_NKINDS; k++) {
        int want = k == W_SEND || k == W_RECV || k == W_SELECT || k == W_BUF_RECV || k == W_BUF_SEND
                       ? 0
                       : -ETIMEDOUT;
        ck_assert_msg(w[k].rc == want, "wait kind %d: rc %d, expected %d", k, w[k].rc, want);
        if (want == -ETIMEDOUT)
            ck_assert_msg(w[k].end >= deadline, "wait kind %d: returned %lld ns early", k,
                          (long long)(deadline - w[k].end));
    }
    ck_assert_int_eq(w[W_RECV].v, 7);
    ck_assert_int_eq(w[W_SELECT].v, 7);
    ck_assert_int_eq(w[W_BUF_RECV].v, 7);
    for (int k = 0; k < W_NKINDS; k++)
        ck_assert_int_eq(chan_free(c[k]), 0);
}
END_TEST

/* ---- Not cancellation points ---------------------------------------------------------------- */

static void *cancel_main(void *arg)
{
    struct waiter *w = arg;
    int old;
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
    waiter_main(w); /* done set once the operation has returned (its frame is gone: fdwait_run) */
    pthread_testcancel();
    return NULL; /* not reached: the pending cancel acts at the cancellation point above */
}

/* "Blocking operations are not pthread cancellation points": a thread blocked in each kind of
 * wait, with deferred cancellation, and cancelled meanwhile, goes on waiting; its operation
 * completes as it would have (a value handed over, or the time-out); only then does the pending
 * cancellation act, at the thread's next cancellation point. A wait that acted on it would
 * leave its waiter queued on the channel, a dangling pointer into a dead stack. */
START_TEST(test_not_cancellation_points)
{
    int64_t rel = under_sanitizer() ? 400 * MS : 150 * MS;
    struct waiter w[W_NKINDS];
    chan_t *c[W_NKINDS];
    int64_t deadline = chan_now() + rel;
    waiters_make(w, c, deadline);
    for (int k = 0; k < W_NKINDS; k++) {
        w[k].rc = -12345;
        w[k].th = spawn(cancel_main, &w[k]);
    }
    ck_assert(blocked_senders_at_least(c[W_SEND], 1));
    ck_assert(blocked_senders_at_least(c[W_BUF_SEND], 1));
    ck_assert(blocked_receivers_at_least(c[W_RECV], 1));
    ck_assert(blocked_receivers_at_least(c[W_SELECT], 1));
    ck_assert(blocked_receivers_at_least(c[W_BUF_RECV], 1));
    for (int k = 0; k < W_NKINDS; k++)
        ck_assert_int_eq(pthread_cancel(w[k].th), 0);
    sleep_ns(deadline - chan_now() + 20 * MS);
    ck_assert_msg(!atomic_load(&w[W_SEND].done) && !atomic_load(&w[W_RECV].done) &&
                      !atomic_load(&w[W_SELECT].done) && !atomic_load(&w[W_BUF_RECV].done) &&
                      !atomic_load(&w[W_BUF_SEND].done),
                  "an untimed wait returned when its thread was cancelled");
    ck_assert_uint_eq(hchan_waiting(c[W_RECV], CHAN_RECV), 1);
    long v = 7, out = 0;
    ck_assert_int_eq(chan_recv(c[W_SEND], &out), 0);
    ck_assert_int_eq(chan_send(c[W_RECV], &v), 0);
    ck_assert_int_eq(chan_send(c[W_SELECT], &v), 0);
    ck_assert_int_eq(chan_send(c[W_BUF_RECV], &v), 0);
    ck_assert_int_eq(chan_recv(c[W_BUF_SEND], &out), 0);
    for (int k = 0; k < W_NKINDS; k++) {
        void *res = join(w[k].th);
        ck_assert_msg(res == PTHREAD_CANCELED, "wait kind %d: the thread was not cancelled", k);
        ck_assert_msg(atomic_load(&w[k].done), "wait kind %d: cancelled inside the wait", k);
        int want = k == W_SEND || k == W_RECV || k == W_SELECT || k == W_BUF_RECV || k == W_BUF_SEND
                       ? 0
                       : -ETIMEDOUT;
        ck_assert_msg(w[k].rc == want, "wait kind %d: rc %d, expected %d", k, w[k].rc, want);
    }
    for (int k = 0; k < W_NKINDS; k++)
        ck_assert_int_eq(chan_free(c[k]), 0);
}
END_TEST

struct fdwait {
    chan_t *fc, *other;
    int form; /* 0 chan_recv, 1 chan_recv_until, 2 chan_select (with a channel case) */
    int rc, v;
    atomic_int done;
    pthread_t th;
};

/* Out of line: its frame (the cases, which ASan guards with redzones) has returned before the
 * cancellation unwinds the thread, which ASan does not follow. */
static __attribute__((noinline)) void fdwait_run(struct fdwait *f)
{
    struct chan_case cs[2] = {chan_case_recv(f->other, NULL), chan_case_recv(f->fc, &f->v)};
    switch (f->form) {
    case 0: f->rc = chan_recv(f->fc, &f->v); break;
    case 1: f->rc = chan_recv_until(f->fc, &f->v, CHAN_FOREVER - 1); break;
    default: f->rc = chan_select(cs, 2) == 1 && cs[1].ok ? 0 : -1; break;
    }
    atomic_store(&f->done, 1);
}

static void *fdwait_main(void *arg)
{
    int old;
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
    fdwait_run(arg);
    pthread_testcancel();
    return NULL;
}

/* The same for a wait that polls an fd: a receive from chan_fd_chan()'s channel, or a select
 * with such a case (chan_io(3)), which sleeps in ppoll(2), itself a cancellation point. */
START_TEST(test_fd_wait_not_cancellation_point)
{
    for (int form = 0; form < 3; form++) {
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        struct fdwait f = {.fc = chan_fd_chan(p[0], POLLIN), .other = mk(0, 0), .form = form};
        ck_assert_ptr_nonnull(f.fc);
        atomic_init(&f.done, 0);
        f.th = spawn(fdwait_main, &f);
        /* Let it reach its wait (a sleep: nothing shows that a thread sleeps in ppoll). */
        sleep_ms(under_sanitizer() ? 100 : 30);
        ck_assert_int_eq(pthread_cancel(f.th), 0);
        sleep_ms(under_sanitizer() ? 100 : 30);
        ck_assert_msg(!atomic_load(&f.done), "form %d: the wait returned on the cancel", form);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        void *res = join(f.th);
        ck_assert_msg(atomic_load(&f.done), "form %d: cancelled inside the wait", form);
        ck_assert(res == PTHREAD_CANCELED);
        ck_assert_msg(f.rc == 0, "form %d: rc %d", form, f.rc);
        ck_assert_int_eq(chan_fd_close(p[0]), 0);
        ck_assert_int_eq(chan_free(f.other), 0);
        close(p[1]);
    }
}
END_TEST

/* ---- chan_free and an operation still on its way out, through a gated scheduler hook ------- */

/* A scheduler plugged in on one thread, whose park can be held at a gate after the wake-up (or
 * time-out) that ends it, before it returns to libchan: the moment at which an operation has
 * been completed, or has timed out, but has not yet returned. The task is the thread's. */
struct gtask {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool permit;
    bool gated;    /* hold the next park's return at the gate */
    bool at_gate;  /* a park is held there now */
    bool open;     /* let it return */
    bool finished; /* the operation has returned (without reaching the gate, if still gated) */
    int park_rc;   /* what the held park will return */
    int64_t last_deadline;
};

static _Thread_local struct gtask *gt_self;

static void *gt_current(void) { return gt_self; }

static int gt_park(void *task, int64_t deadline)
{
    struct gtask *t = task;
    pthread_mutex_lock(&t->mu);
    t->last_deadline = deadline;
    int rc = 0;
    while (!t->permit) {
        if (deadline != CHAN_FOREVER && chan_now() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000; /* 1 ms: the deadline is on CLOCK_MONOTONIC */
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    if (rc == 0)
        t->permit = false;
    if (t->gated) {
        t->gated = false;
        t->at_gate = true;
        t->park_rc = rc;
        pthread_cond_broadcast(&t->cv);
        while (!t->open)
            pthread_cond_wait(&t->cv, &t->mu);
        t->at_gate = false;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void gt_unpark(void *task)
{
    struct gtask *t = task;
    pthread_mutex_lock(&t->mu);
    t->permit = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static const struct chan_sched gated_sched = {gt_current, gt_park, gt_unpark};

static void gt_init(struct gtask *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->gated = true;
}

/* Waits until t's park is held at the gate; returns what it will return, or 1 if the
 * operation returned without parking. */
static int gt_wait_at_gate(struct gtask *t)
{
    pthread_mutex_lock(&t->mu);
    while (!t->at_gate && !t->finished)
        pthread_cond_wait(&t->cv, &t->mu);
    int rc = t->at_gate ? t->park_rc : 1;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void gt_open(struct gtask *t)
{
    pthread_mutex_lock(&t->mu);
    t->open = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

struct gated_op {
    struct gtask t;
    chan_t *a, *b;
    int64_t deadline; /* CHAN_FOREVER: chan_select on a and b; else chan_recv_until(a), the
                         deadline this far from the thread's start (then set to it) */
    long va, vb;
    int rc;
    bool ok;
    pthread_t th;
};

static void *gated_main(void *arg)
{
    struct gated_op *g = arg;
    gt_self = &g->t;
    chan_sched_set(&gated_sched);
    if (g->deadline == CHAN_FOREVER) {
        struct chan_case cs[2] = {chan_case_recv(g->a, &g->va), chan_case_recv(g->b, &g->vb)};
        g->rc = chan_select(cs, 2);
        g->ok = g->rc >= 0 && cs[g->rc].ok;
    } else {
        g->deadline += chan_now();
        g->rc = chan_recv_until(g->a, &g->va, g->deadline);
    }
    chan_sched_set(NULL);
    pthread_mutex_lock(&g->t.mu);
    g->t.finished = true;
    pthread_cond_broadcast(&g->t.cv);
    pthread_mutex_unlock(&g->t.mu);
    return NULL;
}

/* chan_free: "-EBUSY while any operation's waiter is still queued on c ... a select ... that
 * completed through another channel ... while c was being closed still unlinks itself from c
 * on its way out: until it has returned, chan_free reports -EBUSY". A select on a and b is
 * completed through b and held in its park before it returns; a is closed meanwhile: chan_free(a)
 * is -EBUSY until the select has unlinked itself from a, and then 0. */
START_TEST(test_free_busy_until_select_unlinked)
{
    struct gated_op g = {
        .a = mk(sizeof(long), 0), .b = mk(sizeof(long), 0), .deadline = CHAN_FOREVER};
    gt_init(&g.t);
    g.th = spawn(gated_main, &g);
    ck_assert(blocked_receivers_at_least(g.a, 1));
    ck_assert(blocked_receivers_at_least(g.b, 1));
    long v = 5;
    ck_assert_int_eq(chan_send(g.b, &v), 0);
    ck_assert_int_eq(gt_wait_at_gate(&g.t), 0);
    /* Completed through b; its waiter on a is still queued (done), and a close skips it. */
    ck_assert_int_eq(chan_free(g.a), -EBUSY);
    ck_assert_int_eq(chan_close(g.a), 0);
    ck_assert_int_eq(chan_free(g.a), -EBUSY);
    ck_assert_uint_eq(hchan_waiting(g.a, CHAN_RECV), 1);
    gt_open(&g.t);
    join(g.th);
    ck_assert_int_eq(g.rc, 1);
    ck_assert(g.ok && g.vb == 5);
    ck_assert_int_eq(chan_free(g.a), 0);
    ck_assert_int_eq(chan_free(g.b), 0);
}
END_TEST

/* "An operation woken by c (by a peer or by chan_close, which unlinks every waiter it wakes)
 * never touches c again": an until-operation whose park timed out, held before it returns to
 * libchan, loses the race to a close; c is freed at once (0: nothing of it is queued); the
 * operation then parks once more with CHAN_FOREVER (the lost race's re-park, after a park with
 * its real deadline), consumes the close's unpark, and reports -EPIPE with a zeroed elem,
 * without touching the freed c (ASan would report it). */
START_TEST(test_free_after_close_won_timed_out_race)
{
    struct gated_op g;
    int at_gate = 1;
    /* A thread so late that its deadline passed before it could block never parks (the try
     * form): then again. */
    for (int attempt = 0; attempt < 5 && at_gate == 1; attempt++) {
        if (attempt > 0) {
            join(g.th);
            ck_assert_int_eq(chan_free(g.a), 0);
        }
        g = (struct gated_op){.a = mk(sizeof(long), 0), .deadline = 20 * MS, .va = 77};
        gt_init(&g.t);
        g.th = spawn(gated_main, &g);
        at_gate = gt_wait_at_gate(&g.t);
    }
    ck_assert_int_eq(at_gate, -ETIMEDOUT);
    ck_assert(g.t.last_deadline == g.deadline);
    ck_assert_int_eq(chan_close(g.a), 0);
    ck_assert_int_eq(chan_free(g.a), 0);
    gt_open(&g.t);
    join(g.th);
    ck_assert_int_eq(g.rc, -EPIPE);
    ck_assert_int_eq(g.va, 0);
    ck_assert(g.t.last_deadline == CHAN_FOREVER);
    ck_assert(!g.t.permit);
}
END_TEST

struct nothing_op {
    struct gtask t;
    int64_t deadline;
    int kind;
    int rc;
    int64_t park_deadline, end;
};

static void *nothing_main(void *arg)
{
    struct nothing_op *o = arg;
    gt_self = &o->t;
    chan_sched_set(&gated_sched);
    long v = 1;
    struct chan_case nil[2] = {chan_case_recv(NULL, &v), chan_case_send(NULL, NULL)};
    o->deadline = chan_now() + late_bound();
    switch (o->kind) {
    case 0: o->rc = chan_send_until(NULL, &v, o->deadline); break;
    case 1: o->rc = chan_recv_until(NULL, &v, o->deadline); break;
    case 2: o->rc = chan_select_until(nil, 2, o->deadline); break;
    default: o->rc = chan_select_until(NULL, 0, o->deadline); break;
    }
    o->end = chan_now();
    o->park_deadline = o->t.last_deadline;
    chan_sched_set(NULL);
    return NULL;
}

/* The hook: "park receives the operation's real deadline" also where the operation waits on
 * nothing at all (a NULL channel, a select of NULL cases only or of none), and the operation
 * reports -ETIMEDOUT at that deadline, not before. */
START_TEST(test_hook_park_deadline_waiting_on_nothing)
{
    for (int kind = 0; kind < 4; kind++) {
        struct nothing_op o;
        /* A thread so late that its deadline passed before it could block never parks: the
         * try form. Then again. */
        for (int attempt = 0; attempt < 5; attempt++) {
            o = (struct nothing_op){.kind = kind};
            gt_init(&o.t);
            o.t.gated = false;
            join(spawn(nothing_main, &o));
            if (o.park_deadline != 0)
                break;
        }
        ck_assert_msg(o.rc == -ETIMEDOUT, "kind %d: rc %d", kind, o.rc);
        ck_assert_msg(o.park_deadline == o.deadline, "kind %d: park got %lld, not %lld", kind,
                      (long long)o.park_deadline, (long long)o.deadline);
        ck_assert(o.end >= o.deadline);
    }
}
END_TEST

/* ---- Happens before (chan(7): What a signal makes visible) ----------------------------------- */

#define HB_N 3000

/* Plain memory: written by one side before it signals, read by the other after the signal. */
struct hb {
    chan_t *c;
    size_t cap;
    int data[HB_N]; /* data[i]: written by the sender before send i */
    int mark[HB_N]; /* mark[k]: written by the receiver before receive k */
    int table[8];   /* written before the close */
    int bad_data, bad_table;
    bool slow_recv;
};

/* Send i or receive k alternately with the plain call and with a select, so that both paths
 * are held to the edges; now and then the slow side sleeps, so that the other one blocks. */
static void hb_send(struct hb *h, int i)
{
    if (i & 1) {
        struct chan_case cs[] = {chan_case_send(h->c, &i)};
        ck_assert_int_eq(chan_select(cs, 1), 0);
    } else {
        ck_assert_int_eq(chan_send(h->c, &i), 0);
    }
}

static void *hb_receiver(void *arg)
{
    struct hb *h = arg;
    int v;
    for (int k = 0; k < HB_N; k++) {
        h->mark[k] = k + 1;
        if (k & 2) {
            struct chan_case cs[] = {chan_case_recv(h->c, &v)};
            if (chan_select(cs, 1) != 0 || !cs[0].ok)
                break;
        } else if (chan_recv(h->c, &v) != 0) {
            break;
        }
        if (v != k || h->data[v] != 3 * v + 1) /* send v happens before this receive ends */
            h->bad_data++;
        if (h->slow_recv && k % 97 == 0)
            sleep_ns(200 * 1000);
    }
    /* Blocks (or finds the channel closed): the close happens before the -EPIPE. */
    if (chan_recv(h->c, &v) != -EPIPE)
        h->bad_table = -1;
    for (int j = 0; j < 8; j++)
        if (h->table[j] != j * j)
            h->bad_table++;
    return NULL;
}

START_TEST(test_happens_before_edges)
{
    static const size_t hb_caps[] = {0, 1, 2, 16};
    for (size_t ci = 0; ci < 4 * 2; ci++) {
        struct hb *h = calloc(1, sizeof *h);
        ck_assert_ptr_nonnull(h);
        h->cap = hb_caps[ci / 2];
        h->slow_recv = ci & 1;
        h->c = mk(sizeof(int), h->cap);
        pthread_t r = spawn(hb_receiver, h);
        int late = 0;
        for (int i = 0; i < HB_N; i++) {
            h->data[i] = 3 * i + 1;
            hb_send(h, i);
            /* Send i has completed: receive i - cap happened before it. */
            if (i >= (int)h->cap && h->mark[i - h->cap] != i - (int)h->cap + 1)
                late++;
            if (!h->slow_recv && i % 89 == 0)
                sleep_ns(200 * 1000);
        }
        for (int j = 0; j < 8; j++)
            h->table[j] = j * j;
        ck_assert_int_eq(chan_close(h->c), 0);
        join(r);
        ck_assert_msg(late == 0, "cap %zu: %d sends completed before receive k - cap", h->cap,
                      late);
        ck_assert_msg(h->bad_data == 0, "cap %zu: %d receives before their send's writes", h->cap,
                      h->bad_data);
        ck_assert_msg(h->bad_table == 0, "cap %zu: the close's writes unseen (%d)", h->cap,
                      h->bad_table);
        ck_assert_int_eq(chan_free(h->c), 0);
        free(h);
    }
}
END_TEST

/* ---- Suite ---------------------------------------------------------------------------------- */

static Suite *contract_suite(void)
{
    Suite *s = suite_create("contract");
    ADD_TEST(s, test_closed_recv_zeroes_after_drain, 20);
    ADD_TEST(s, test_closed_recv_zeroes_blocked, 20);
    ADD_TEST(s, test_elemsize_zero_elem_ignored, 20);
    ADD_TEST(s, test_past_deadline_not_ready, 20);
    ADD_TEST(s, test_past_deadline_ready_completes, 30);
    ADD_TEST(s, test_einval_whatever_state, 20);
    ADD_TEST(s, test_select_validates_before_anything, 60);
    ADD_TEST(s, test_no_eintr_any_wait, 30);
    ADD_TEST(s, test_not_cancellation_points, 30);
    ADD_TEST(s, test_fd_wait_not_cancellation_point, 30);
    ADD_TEST(s, test_free_busy_until_select_unlinked, 20);
    ADD_TEST(s, test_free_after_close_won_timed_out_race, 20);
    ADD_TEST(s, test_hook_park_deadline_waiting_on_nothing, 20);
    ADD_TEST(s, test_happens_before_edges, 60);
    return s;
}

int main(void) { return run_suite(contract_suite()); }
