/* SPDX-License-Identifier: MIT */
/*
 * compile_fail.c - what chan_typed.h makes the compiler reject. test/compile_fail.sh builds this
 * file once per CASE: CASE 0 (every use right) must compile clean under -Wall -Wextra -Werror
 * -pedantic, in C11 and C++11; every other CASE must fail, with the diagnostic named beside it
 * in compile_fail.sh (so that it fails for the reason meant, not for a typo).
 */
#include "chan_typed.h"

struct point {
    int x, y;
};

CHAN_TYPED(int_chan, int);
CHAN_TYPED(point_chan, struct point);

#if CASE == 7
typedef char name8[8];
CHAN_TYPED(name8_chan, name8); /* an array type: by value it would be a pointer */
#elif CASE == 8
struct huge {
    char bytes[65536];
};
CHAN_TYPED(huge_chan, struct huge);  /* 64 KiB: Go refuses it too */
#endif

int use(int_chan c, point_chan pc, chan_t *raw);
int use(int_chan c, point_chan pc, chan_t *raw)
{
    int i = 1;
    long l = 2;
    double d = 3;
    struct point p = {4, 5};
    (void)i, (void)l, (void)d, (void)p, (void)raw;
#if CASE == 0
    struct chan_case cs[] = {int_chan_case_recv(c, &i), point_chan_case_send(pc, &p),
                             chan_case_recv(raw, &l)};
    return int_chan_send(c, i) + int_chan_send_ptr(c, &i) + int_chan_recv(c, &i) +
           point_chan_send(pc, p) + point_chan_recv(pc, &p) + chan_select(cs, 3);
#elif CASE == 1
    return int_chan_send_ptr(c, &d); /* a double where an int goes */
#elif CASE == 2
    return int_chan_recv(c, &l); /* a long * for an int channel */
#elif CASE == 3
    return point_chan_send(pc, i); /* an int on a channel of struct point */
#elif CASE == 4
    return int_chan_send(pc, 1); /* another channel type's handle */
#elif CASE == 5
    return int_chan_send(raw, 1); /* an untyped channel where a typed one goes */
#elif CASE == 6
    struct chan_case cs[] = {int_chan_case_recv(c, &l)}; /* a long * in an int case */
    return chan_select(cs, 1);
#elif CASE == 9
    struct chan_case cs[] = {point_chan_case_send(pc, &i)}; /* an int * in a point case */
    return chan_select(cs, 1);
#else
    return 0;
#endif
}
