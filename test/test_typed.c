/* SPDX-License-Identifier: MIT */
/*
 * test_typed.c - chan.h's case constructors and chan_typed.h's typed channels: every field a
 * constructor sets, select over constructed cases, and each typed function against the chan.h
 * call it wraps (values, return codes, struct elements, the nil handle, deadlines, a producer
 * thread). That a wrong element type does not compile is test/compile_fail.sh's part.
 */
#include "testutil.h"

#include <limits.h>

#include "chan_typed.h"

struct point {
    int x, y;
    char tag[24];
};

CHAN_TYPED(int_chan, int);
CHAN_TYPED(point_chan, struct point);
struct blob {
    char bytes[1000];
};
CHAN_TYPED(blob_chan, struct blob);
CHAN_TYPED(intp_chan, int *);
CHAN_TYPED(str_chan, const char *);

/* An element type named as a parameter of the generated functions was (cap): the header's
 * parameters must not hide it (sizeof(T) in name_make was the size_t parameter's size, so the
 * channel carried 8 bytes of each element). compile_fail.c has a T named v. */
typedef struct {
    char s[100];
} cap;
CHAN_TYPED(cap_chan, cap);

/* ---- Case constructors (chan.h) -------------------------------------------------------------- */

START_TEST(case_constructors_fill_every_field)
{
    chan_t *c = chan_make(sizeof(int), 1);
    int v = 7;
    const int k = 9;
    struct chan_case s = chan_case_send(c, &k), r = chan_case_recv(c, &v);
    ck_assert_ptr_eq(s.chan, c);
    ck_assert_ptr_eq(s.elem, &k);
    ck_assert_int_eq(s.dir, CHAN_SEND);
    ck_assert(!s.ok);
    ck_assert_ptr_eq(r.chan, c);
    ck_assert_ptr_eq(r.elem, &v);
    ck_assert_int_eq(r.dir, CHAN_RECV);
    ck_assert(!r.ok);
    struct chan_case n = chan_case_recv(NULL, NULL);
    ck_assert_ptr_null(n.chan);
    ck_assert_ptr_null(n.elem);
    ck_assert_int_eq(n.dir, CHAN_RECV);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

START_TEST(case_constructors_select)
{
    chan_t *jobs = chan_make(sizeof(int), 4), *quit = chan_make(0, 0);
    int job = -1, sum = 0;
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(chan_send(jobs, &i), 0);
    ck_assert_int_eq(chan_close(jobs), 0);
    struct chan_case cs[] = {chan_case_recv(jobs, &job), chan_case_recv(quit, NULL)};
    for (;;) {
        int i = chan_select(cs, 2);
        ck_assert_int_eq(i, 0);
        if (!cs[0].ok)
            break;
        sum += job;
    }
    ck_assert_int_eq(job, 0); /* zeroed by the closed receive */
    ck_assert_int_eq(sum, 6);
    /* A send case from a const value; a NULL channel is never chosen. */
    chan_t *out = chan_make(sizeof(int), 1);
    const int seven = 7;
    struct chan_case s[] = {chan_case_send(NULL, &seven), chan_case_send(out, &seven)};
    ck_assert_int_eq(chan_select(s, 2), 1);
    ck_assert(s[1].ok);
    ck_assert_int_eq(chan_tryselect(s, 2), -EAGAIN); /* full now */
    int got;
    ck_assert_int_eq(chan_recv(out, &got), 0);
    ck_assert_int_eq(got, 7);
    ck_assert_int_eq(chan_free(out), 0);
    ck_assert_int_eq(chan_free(jobs), 0);
    ck_assert_int_eq(chan_free(quit), 0);
}
END_TEST

/* ---- Typed channels -------------------------------------------------------------------------- */

START_TEST(typed_int_operations)
{
    int_chan c = int_chan_make(3);
    ck_assert_ptr_nonnull(c.chan);
    ck_assert_uint_eq(int_chan_cap(c), 3);
    ck_assert_int_eq(int_chan_send(c, 1), 0);
    int two = 2;
    ck_assert_int_eq(int_chan_send_ptr(c, &two), 0);
    ck_assert_int_eq(int_chan_trysend(c, 3), 0);
    ck_assert_int_eq(int_chan_trysend(c, 4), -EAGAIN);
    ck_assert_int_eq(int_chan_send_until(c, 4, chan_now() + MS), -ETIMEDOUT);
    ck_assert_uint_eq(int_chan_len(c), 3);
    int v = 0;
    ck_assert_int_eq(int_chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(int_chan_tryrecv(c, &v), 0);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(int_chan_recv(c, NULL), 0); /* discarded */
    ck_assert_int_eq(int_chan_tryrecv(c, &v), -EAGAIN);
    ck_assert_int_eq(int_chan_recv_until(c, &v, chan_now() + MS), -ETIMEDOUT);
    ck_assert_int_eq(int_chan_send(c, 5), 0);
    ck_assert_int_eq(int_chan_close(c), 0);
    ck_assert_int_eq(int_chan_close(c), -EPIPE);
    ck_assert_int_eq(int_chan_send(c, 6), -EPIPE);
    ck_assert_int_eq(int_chan_recv_until(c, &v, CHAN_FOREVER), 0);
    ck_assert_int_eq(v, 5);
    ck_assert_int_eq(int_chan_recv(c, &v), -EPIPE);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(int_chan_free(c), 0);
}
END_TEST

START_TEST(typed_nil_and_make_errors)
{
    int_chan nil = {NULL}; /* Go's nil channel: never ready */
    int v;
    ck_assert_int_eq(int_chan_trysend(nil, 1), -EAGAIN);
    ck_assert_int_eq(int_chan_tryrecv(nil, &v), -EAGAIN);
    ck_assert_int_eq(int_chan_recv_until(nil, &v, chan_now() + MS), -ETIMEDOUT);
    ck_assert_int_eq(int_chan_close(nil), -EINVAL);
    ck_assert_uint_eq(int_chan_len(nil), 0);
    ck_assert_uint_eq(int_chan_cap(nil), 0);
    ck_assert_int_eq(int_chan_free(nil), 0);
    errno = 0;
    blob_chan b = blob_chan_make(SIZE_MAX / 2); /* cap * 1000 overflows */
    ck_assert_ptr_null(b.chan);
    ck_assert_int_eq(errno, EINVAL);
    b = blob_chan_make(2);
    struct blob blob = {"blob"}, back;
    ck_assert_int_eq(blob_chan_send_ptr(b, &blob), 0);
    ck_assert_int_eq(blob_chan_send(b, blob), 0);
    ck_assert_int_eq(blob_chan_recv(b, &back), 0);
    ck_assert_str_eq(back.bytes, "blob");
    ck_assert_int_eq(blob_chan_recv(b, &back), 0);
    ck_assert_str_eq(back.bytes, "blob");
    ck_assert_int_eq(blob_chan_free(b), 0);
}
END_TEST

struct producer {
    point_chan out;
    int n;
};

static void *produce_points(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < p->n; i++) {
        struct point pt = {i, -i, ""};
        snprintf(pt.tag, sizeof pt.tag, "point %d", i);
        if (point_chan_send(p->out, pt) != 0)
            return (void *)1;
    }
    point_chan_close(p->out);
    return NULL;
}

/* Struct values by value through an unbuffered channel, received in a typed select. */
START_TEST(typed_struct_with_select)
{
    struct producer p = {point_chan_make(0), 100};
    int_chan quit = int_chan_make(0);
    pthread_t t = spawn(produce_points, &p);
    struct point got;
    int n = 0;
    for (;;) {
        struct chan_case cs[] = {point_chan_case_recv(p.out, &got), int_chan_case_recv(quit, NULL)};
        ck_assert_int_eq(chan_select(cs, 2), 0);
        if (!cs[0].ok)
            break;
        char want[24];
        snprintf(want, sizeof want, "point %d", n);
        ck_assert_int_eq(got.x, n);
        ck_assert_int_eq(got.y, -n);
        ck_assert_str_eq(got.tag, want);
        n++;
    }
    ck_assert_int_eq(n, 100);
    ck_assert_ptr_null(join(t));
    /* A typed send case, chosen as soon as the buffer has room. */
    point_chan one = point_chan_make(1);
    struct point pt = {3, 4, "sent by a case"};
    struct chan_case s[] = {point_chan_case_send(one, &pt)};
    ck_assert_int_eq(chan_select_until(s, 1, chan_now() + 1000 * MS), 0);
    ck_assert(s[0].ok);
    ck_assert_int_eq(point_chan_recv(one, &got), 0);
    ck_assert_str_eq(got.tag, "sent by a case");
    ck_assert_int_eq(point_chan_free(one), 0);
    ck_assert_int_eq(point_chan_free(p.out), 0);
    ck_assert_int_eq(int_chan_free(quit), 0);
}
END_TEST

/* Pointer elements, by value and through send_ptr and the case constructors, whose T const *
 * must be a pointer to a constant pointer (int *const *), which &p converts to. */
START_TEST(typed_pointer_elements)
{
    int target = 7, *p = &target, *got = NULL;
    intp_chan ic = intp_chan_make(1);
    ck_assert_int_eq(intp_chan_send_ptr(ic, &p), 0);
    ck_assert_int_eq(intp_chan_recv(ic, &got), 0);
    ck_assert_ptr_eq(got, &target);
    struct chan_case cs[] = {intp_chan_case_send(ic, &p)};
    ck_assert_int_eq(chan_select(cs, 1), 0);
    got = NULL;
    struct chan_case rs[] = {intp_chan_case_recv(ic, &got)};
    ck_assert_int_eq(chan_select(rs, 1), 0);
    ck_assert_ptr_eq(got, &target);
    ck_assert_int_eq(intp_chan_free(ic), 0);

    const char *s = "a string", *back = NULL;
    str_chan sc = str_chan_make(1);
    ck_assert_int_eq(str_chan_send_ptr(sc, &s), 0);
    ck_assert_int_eq(str_chan_recv(sc, &back), 0);
    ck_assert_str_eq(back, "a string");
    ck_assert_int_eq(str_chan_free(sc), 0);
}
END_TEST

/* Every byte of an element of a type named cap travels. */
START_TEST(typed_element_named_as_a_parameter)
{
    cap_chan k = cap_chan_make(1);
    cap in, out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    snprintf(in.s + 60, 40, "byte 60 of 100");
    ck_assert_int_eq(cap_chan_send(k, in), 0);
    ck_assert_int_eq(cap_chan_recv(k, &out), 0);
    ck_assert_str_eq(out.s + 60, "byte 60 of 100");
    ck_assert_int_eq(cap_chan_free(k), 0);
}
END_TEST

/* The typed calls are functions (chan_typed(3)): each argument is evaluated once, and a
 * function may be taken by address. */
START_TEST(typed_arguments_evaluated_once)
{
    int_chan cs[2] = {int_chan_make(4), {NULL}};
    int i = 0, k = 0, got[2] = {0, 0};
    ck_assert_int_eq(int_chan_send(cs[k++], i++), 0);
    ck_assert_int_eq(int_chan_send_ptr(cs[--k], (i++, &i)), 0);
    ck_assert_int_eq(k, 0);
    ck_assert_int_eq(i, 2);
    int (*recv)(int_chan, int *) = int_chan_recv;
    ck_assert_int_eq(recv(cs[k++], &got[i - 2]), 0);
    ck_assert_int_eq(int_chan_recv(cs[--k], &got[++i - 2]), 0);
    ck_assert_int_eq(k, 0);
    ck_assert_int_eq(got[0], 0);
    ck_assert_int_eq(got[1], 2);
    ck_assert_int_eq(int_chan_free(cs[0]), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("typed");
    ADD_TEST(s, case_constructors_fill_every_field, 10);
    ADD_TEST(s, case_constructors_select, 10);
    ADD_TEST(s, typed_int_operations, 10);
    ADD_TEST(s, typed_nil_and_make_errors, 10);
    ADD_TEST(s, typed_struct_with_select, 30);
    ADD_TEST(s, typed_pointer_elements, 10);
    ADD_TEST(s, typed_element_named_as_a_parameter, 10);
    ADD_TEST(s, typed_arguments_evaluated_once, 10);
    return run_suite(s);
}
