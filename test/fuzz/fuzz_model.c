/* SPDX-License-Identifier: MIT */
/*
 * fuzz_model.c - libFuzzer target: a decoded sequence of operations, run on one thread against
 * a reference model of Go's rules, every return code and every value compared.
 *
 * The model of a channel is a plain FIFO queue of at most cap values plus the closed flag
 * (one thread: no sudog is ever queued, so an unbuffered channel is never ready to send or
 * receive unless closed). Go's rules, as chan.h states them:
 *   send:  closed -> -EPIPE; room in the buffer -> 0 (value queued); else not ready
 *   recv:  a value queued -> 0 (the oldest); closed -> -EPIPE, *elem zeroed; else not ready
 *   not ready: try forms -EAGAIN, _until with a passed deadline -ETIMEDOUT (or with a deadline
 *   a few microseconds away: -ETIMEDOUT no earlier than it); blocking forms are only called
 *   when the model says the operation is ready (one thread: anything else never returns)
 *   close: 0 the first time, then -EPIPE; NULL -> -EINVAL
 *   select: -EINVAL (nothing done, no ok written) for a bad dir, or a send case with elem NULL
 *   on a channel of elemsize > 0; otherwise the ready cases are computed on the state before
 *   the call; none -> -EAGAIN / -ETIMEDOUT (no ok written); else the library may choose any
 *   ready case, and the effect of the chosen one is checked (value, ok, zeroing) and applied
 *   to the model; no other case's ok is written.
 * After every operation chan_len/chan_cap agree with the model; at the end every channel is
 * drained against the model and chan_free returns 0.
 *
 * Input: byte 0..: per channel (3) elemsize class and cap; then operations, one opcode byte
 * and its operands each. Bytes past the end read as 0.
 */
#include "fuzz_common.h"

#include <stdbool.h>

#define NC 3
#define QMAX 4
#define MAXN 12

static const size_t esizes[4] = {0, 1, 3, 8};

struct model {
    chan_t *c;
    size_t elemsize, cap;
    uint64_t q[QMAX];
    size_t n;
    bool closed;
};

static struct model m[NC];

/* Figures, printed when the fuzzer exits. */
static unsigned long n_inputs, n_ops, n_einval, n_selects, n_values;

static void print_figures(void)
{
    fprintf(stderr,
            "fuzz_model: %lu inputs, %lu operations (%lu selects), %lu bad-argument calls "
            "answered -EINVAL with nothing done, %lu values compared with the model\n",
            n_inputs, n_ops, n_selects, n_einval, n_values);
}

static uint64_t trunc_to(size_t elemsize, uint64_t v)
{
    return elemsize >= 8 ? v : v & ((1ull << (8 * elemsize)) - 1);
}

static void make_chan(struct model *x, uint8_t shape)
{
    x->elemsize = esizes[shape & 3];
    x->cap = (shape >> 2) % (QMAX + 1);
    x->n = 0;
    x->closed = false;
    x->c = chan_make(x->elemsize, x->cap);
    CHECK(x->c, "chan_make(%zu, %zu) failed", x->elemsize, x->cap);
}

static void check_lens(void)
{
    for (int i = 0; i < NC; i++) {
        CHECK(chan_len(m[i].c) == m[i].n, "chan %d: len %zu, model %zu", i, chan_len(m[i].c),
              m[i].n);
        CHECK(chan_cap(m[i].c) == m[i].cap, "chan %d: cap", i);
    }
}

static bool send_ready(const struct model *x) { return x->closed || x->n < x->cap; }
static bool recv_ready(const struct model *x) { return x->n > 0 || x->closed; }

/* Applies a send of v that the library reported as r (0 or -EPIPE) to the model. */
static void model_send(struct model *x, uint64_t v, int r)
{
    if (x->closed) {
        CHECK(r == -EPIPE, "send on closed: %d", r);
        return;
    }
    CHECK(r == 0, "send with room: %d", r);
    x->q[x->n++] = trunc_to(x->elemsize, v);
}

/* Applies a receive that the library reported as r, the value in *got (8 bytes, prefilled). */
static void model_recv(struct model *x, int r, const uint64_t *got, bool had_elem)
{
    if (x->n > 0) {
        CHECK(r == 0, "recv with %zu queued: %d", x->n, r);
        n_values++;
        if (had_elem && x->elemsize)
            CHECK(trunc_to(x->elemsize, *got) == x->q[0], "recv: got %#llx, model %#llx",
                  (unsigned long long)*got, (unsigned long long)x->q[0]);
        memmove(x->q, x->q + 1, (x->n - 1) * sizeof x->q[0]);
        x->n--;
        return;
    }
    CHECK(x->closed && r == -EPIPE, "recv on empty (closed %d): %d", x->closed, r);
    if (had_elem && x->elemsize)
        CHECK(trunc_to(x->elemsize, *got) == 0, "closed recv did not zero *elem");
}

#define FILL 0xA5A5A5A5A5A5A5A5ull

static int64_t passed_deadline(uint8_t b)
{
    switch (b % 3) {
    case 0: return 0;
    case 1: return INT64_MIN;
    default: return chan_now() - 1;
    }
}

static void op_send(struct input *in, uint8_t form)
{
    struct model *x = &m[byte(in) % NC];
    uint64_t v = u64(in, 8);
    bool null_elem = (form & 0x1c) == 0x1c; /* one time in eight */
    form &= 3;
    const void *e = null_elem ? NULL : &v;
    if (null_elem && x->elemsize) {
        int r = form == 0   ? chan_trysend(x->c, e)
                : form == 1 ? chan_send_until(x->c, e, passed_deadline((uint8_t)v))
                            : chan_send(x->c, e);
        CHECK(r == -EINVAL, "send elem NULL: %d", r);
        n_einval++;
        return;
    }
    int r;
    if (form == 0) {
        r = chan_trysend(x->c, e);
        if (!send_ready(x)) {
            CHECK(r == -EAGAIN, "trysend not ready: %d", r);
            return;
        }
    } else if (form == 1) {
        r = chan_send_until(x->c, e, passed_deadline((uint8_t)v));
        if (!send_ready(x)) {
            CHECK(r == -ETIMEDOUT, "send_until(passed) not ready: %d", r);
            return;
        }
    } else if (form == 2) {
        int64_t d = chan_now() + 2000;
        r = chan_send_until(x->c, e, d);
        if (!send_ready(x)) {
            CHECK(r == -ETIMEDOUT && chan_now() >= d, "send_until(soon) not ready: %d", r);
            return;
        }
    } else {
        if (!send_ready(x))
            return; /* would block forever: one thread */
        r = chan_send(x->c, e);
    }
    model_send(x, v, r);
}

static void op_recv(struct input *in, uint8_t form)
{
    struct model *x = &m[byte(in) % NC];
    bool null_elem = (form & 0x1c) == 0x1c;
    form &= 3;
    uint64_t got = FILL;
    void *e = null_elem ? NULL : &got;
    int r;
    if (form == 0) {
        r = chan_tryrecv(x->c, e);
        if (!recv_ready(x)) {
            CHECK(r == -EAGAIN, "tryrecv not ready: %d", r);
            return;
        }
    } else if (form == 1) {
        r = chan_recv_until(x->c, e, passed_deadline(byte(in)));
        if (!recv_ready(x)) {
            CHECK(r == -ETIMEDOUT, "recv_until(passed) not ready: %d", r);
            return;
        }
    } else if (form == 2) {
        int64_t d = chan_now() + 2000;
        r = chan_recv_until(x->c, e, d);
        if (!recv_ready(x)) {
            CHECK(r == -ETIMEDOUT && chan_now() >= d, "recv_until(soon) not ready: %d", r);
            return;
        }
    } else {
        if (!recv_ready(x))
            return;
        r = chan_recv(x->c, e);
    }
    model_recv(x, r, &got, !null_elem);
}

static void op_close(struct input *in)
{
    uint8_t b = byte(in);
    if (b % 8 == 7) {
        CHECK(chan_close(NULL) == -EINVAL, "close(NULL)");
        n_einval++;
        return;
    }
    struct model *x = &m[b % NC];
    int r = chan_close(x->c);
    CHECK(r == (x->closed ? -EPIPE : 0), "close (closed %d): %d", x->closed, r);
    x->closed = true;
}

static void op_nil(struct input *in)
{
    uint64_t v = 1;
    uint8_t b = byte(in);
    int r;
    switch (b % 4) {
    case 0:
        r = chan_trysend(NULL, &v);
        CHECK(r == -EAGAIN, "trysend(NULL): %d", r);
        break;
    case 1:
        r = chan_tryrecv(NULL, &v);
        CHECK(r == -EAGAIN, "tryrecv(NULL): %d", r);
        break;
    case 2:
        r = chan_send_until(NULL, &v, passed_deadline(b >> 2));
        CHECK(r == -ETIMEDOUT, "send_until(NULL): %d", r);
        break;
    default:
        r = chan_recv_until(NULL, NULL, chan_now() + 1000);
        CHECK(r == -ETIMEDOUT, "recv_until(NULL): %d", r);
        break;
    }
}

/* Free one channel (nobody is blocked on it: 0) and make a new one in its place. */
static void op_remake(struct input *in)
{
    uint8_t b = byte(in);
    struct model *x = &m[b % NC];
    CHECK(chan_free(x->c) == 0, "chan_free");
    make_chan(x, byte(in));
}

static void op_select(struct input *in, uint8_t form)
{
    struct chan_case cs[MAXN];
    uint64_t vals[MAXN];
    int idx[MAXN];
    bool ready[MAXN];
    size_t n = byte(in) % (MAXN + 1);
    bool invalid = false, any_ready = false;
    bool mark = byte(in) & 1;
    for (size_t k = 0; k < n; k++) {
        uint8_t b = byte(in);
        int ci = b % (NC + 1); /* NC: the NULL channel */
        idx[k] = ci == NC ? -1 : ci;
        enum chan_dir dir = (b >> 2) & 1 ? CHAN_SEND : CHAN_RECV;
        if ((b >> 3) % 16 == 15)
            dir = (enum chan_dir)((b >> 7) ? 0 : 3); /* a bad dir, now and then */
        bool null_elem = (b >> 3) % 8 == 3;
        vals[k] = dir == CHAN_SEND ? u64(in, 8) : FILL;
        cs[k] = (struct chan_case){.chan = ci == NC ? NULL : m[ci].c,
                                   .elem = null_elem ? NULL : &vals[k],
                                   .dir = dir,
                                   .ok = mark};
        if (dir != CHAN_SEND && dir != CHAN_RECV)
            invalid = true;
        else if (dir == CHAN_SEND && null_elem && ci != NC && m[ci].elemsize)
            invalid = true;
        ready[k] = false;
        if (!invalid && ci != NC)
            ready[k] = dir == CHAN_SEND ? send_ready(&m[ci]) : recv_ready(&m[ci]);
        any_ready |= ready[k];
    }
    form %= 4;
    if (form == 3 && !invalid && !any_ready)
        form = 0; /* a blocking select with nothing ready would never return */
    int r;
    switch (form) {
    case 0: r = chan_tryselect(cs, n); break;
    case 1: r = chan_select_until(cs, n, passed_deadline(byte(in))); break;
    case 2: {
        int64_t d = chan_now() + 2000;
        r = chan_select_until(cs, n, d);
        if (r == -ETIMEDOUT)
            CHECK(chan_now() >= d, "select_until early");
        break;
    }
    default: r = chan_select(cs, n); break;
    }
    n_selects++;
    if (invalid) {
        CHECK(r == -EINVAL, "select with a bad case: %d", r);
        n_einval++;
    } else if (!any_ready) {
        CHECK(r == (form == 0 ? -EAGAIN : -ETIMEDOUT), "select, none ready (form %d): %d", form, r);
    } else {
        CHECK(r >= 0 && (size_t)r < n, "select, some ready: %d", r);
        CHECK(ready[r], "select chose case %d, which was not ready", r);
        struct model *x = &m[idx[r]];
        if (cs[r].dir == CHAN_SEND) {
            CHECK(cs[r].ok == !x->closed, "send case ok %d, closed %d", cs[r].ok, x->closed);
            model_send(x, vals[r], x->closed ? -EPIPE : 0);
        } else {
            CHECK(cs[r].ok == (x->n > 0), "recv case ok %d, %zu queued", cs[r].ok, x->n);
            model_recv(x, cs[r].ok ? 0 : -EPIPE, &vals[r], cs[r].elem != NULL);
        }
    }
    for (size_t k = 0; k < n; k++) {
        if ((int)k == r)
            continue;
        CHECK(cs[k].ok == mark, "ok of case %zu written (chosen %d)", k, r);
        if (cs[k].dir == CHAN_RECV && cs[k].elem)
            CHECK(vals[k] == FILL, "elem of unchosen recv case %zu written", k);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size, 0};
    if (n_inputs++ == 0)
        atexit(print_figures);
    for (int i = 0; i < NC; i++)
        make_chan(&m[i], byte(&in));
    int ops = 0;
    while (more(&in) && ops++ < 400) {
        n_ops++;
        uint8_t op = byte(&in);
        switch (op % 8) {
        case 0:
        case 1: op_send(&in, op >> 3); break;
        case 2:
        case 3: op_recv(&in, op >> 3); break;
        case 4: op_select(&in, op >> 3); break;
        case 5: op_close(&in); break;
        case 6: op_nil(&in); break;
        default: op_remake(&in); break;
        }
        check_lens();
    }
    for (int i = 0; i < NC; i++) {
        struct model *x = &m[i];
        uint64_t got = FILL;
        while (x->n > 0) {
            got = FILL;
            model_recv(x, chan_tryrecv(x->c, &got), &got, true);
        }
        got = FILL;
        int r = chan_tryrecv(x->c, &got);
        if (x->closed)
            model_recv(x, r, &got, true);
        else
            CHECK(r == -EAGAIN, "drained channel: %d", r);
        CHECK(chan_free(x->c) == 0, "chan_free at the end");
    }
    return 0;
}
