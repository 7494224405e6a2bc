/* SPDX-License-Identifier: MIT */
/*
 * compile_fail.c - what chan_typed.h makes the compiler reject. test/compile_fail.sh builds this
 * file once per CASE: CASE 0 (every use right) must compile clean under -Wall -Wextra -Werror
 * -pedantic, in C11 and C++11; every other CASE must fail, with the diagnostic named beside it
 * in compile_fail.sh (so that it fails for the reason meant, not for a typo). C++ builds it
 * with EXTERN_C too: the header included inside extern "C" { }, as C headers often are.
 */
#if defined(__cplusplus) && defined(EXTERN_C)
extern "C" {
#endif
#include "chan_typed.h"
#if defined(__cplusplus) && defined(EXTERN_C)
}
#endif
#ifdef __cplusplus
#include <atomic>
#include <string>
#endif

/* Globals named as the generated functions' parameters were (c, cap, deadline): with -Wshadow
 * (compile_fail.sh builds with it), such a parameter would shadow them. And an element type
 * named v: a parameter v hid it (name_send's array test did not compile). */
int c;
size_t cap;
int64_t deadline;
typedef struct {
    char s[8];
} v;
CHAN_TYPED(v_chan, v);

struct point {
    int x, y;
};

CHAN_TYPED(int_chan, int);
CHAN_TYPED(point_chan, struct point);
CHAN_TYPED(intp_chan, int *);       /* a pointer: T const * is int *const *, not const int ** */
CHAN_TYPED(str_chan, const char *); /* a pointer to const: no duplicate const */

#if CASE == 7
typedef char name8[8];
CHAN_TYPED(name8_chan, name8); /* an array type: by value it would be a pointer */
#elif CASE == 8
struct huge {
    char bytes[65536];
};
CHAN_TYPED(huge_chan, struct huge);   /* 64 KiB: Go refuses it too */
#elif CASE == 10
CHAN_TYPED(cint_chan, const int); /* a receive would store into a const int */
#elif CASE == 11
CHAN_TYPED(string_chan, std::string); /* C++ only: copied as bytes, it would be freed twice */
#elif CASE == 12
CHAN_TYPED(vint_chan, volatile int); /* memcpy would make no volatile accesses */
#elif CASE == 13 && defined(__cplusplus)
CHAN_TYPED(aint_chan, std::atomic<int>); /* nor atomic ones: C++'s atomic, copies deleted */
#elif CASE == 13
CHAN_TYPED(aint_chan, _Atomic int);                       /* nor atomic ones: the qualifier */
#elif CASE == 14
CHAN_TYPED(apoint_chan, _Atomic(struct point));             /* the specifier, on a struct */
#elif CASE == 17 && defined(__cplusplus)
struct stamped {
    const int id;
};
CHAN_TYPED(stamped_chan, stamped); /* C++ only: cannot be assigned (C takes it) */
#endif

struct max {
    char bytes[CHAN_ELEMSIZE_MAX];
};
CHAN_TYPED(max_chan, struct max); /* the largest element there is: 65535 bytes */

int use(int_chan ic, point_chan pc, chan_t *raw);
int use(int_chan ic, point_chan pc, chan_t *raw)
{
    int i = 1;
    long l = 2;
    double d = 3;
    struct point p = {4, 5};
    (void)i, (void)l, (void)d, (void)p, (void)raw;
#if CASE == 0
    int *ip = &i;
    const char *s = "s";
    intp_chan ipc = {raw};
    str_chan sc = {raw};
    struct chan_case cs[] = {int_chan_case_recv(ic, &i),    point_chan_case_send(pc, &p),
                             chan_case_recv(raw, &l),       intp_chan_case_send(ipc, &ip),
                             intp_chan_case_recv(ipc, &ip), str_chan_case_send(sc, &s)};
    return int_chan_send(ic, i) + int_chan_send_ptr(ic, &i) + int_chan_recv(ic, &i) +
           point_chan_send(pc, p) + point_chan_recv(pc, &p) + intp_chan_send_ptr(ipc, &ip) +
           str_chan_send_ptr(sc, &s) + str_chan_recv(sc, &s) + chan_select(cs, 6);
#elif CASE == 1
    return int_chan_send_ptr(ic, &d); /* a double where an int goes */
#elif CASE == 2
    return int_chan_recv(ic, &l); /* a long * for an int channel */
#elif CASE == 3
    return point_chan_send(pc, i);    /* an int on a channel of struct point */
#elif CASE == 4
    return int_chan_send(pc, 1);     /* another channel type's handle */
#elif CASE == 5
    return int_chan_send(raw, 1);        /* an untyped channel where a typed one goes */
#elif CASE == 6
    struct chan_case cs[] = {int_chan_case_recv(ic, &l)}; /* a long * in an int case */
    return chan_select(cs, 1);
#elif CASE == 9
    struct chan_case cs[] = {point_chan_case_send(pc, &i)}; /* an int * in a point case */
    return chan_select(cs, 1);
#elif CASE == 15
    struct other {
        int x, y;
    } o = {4, 5};
    return point_chan_trysend(pc, o); /* another structure, of the same layout even */
#elif CASE == 16
    struct other {
        int x, y;
    } o = {4, 5};
    return point_chan_send_until(pc, o, 0);
#else
    return 0;
#endif
}
