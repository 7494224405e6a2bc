/* SPDX-License-Identifier: MIT */
/*
 * benchutil.h - what the C harnesses bench.c and scale.c share: failing loudly (die, OK, make,
 * check), a receiver's loop (recv_sum), the seq shape both run (seq_rounds) and reading their
 * numeric arguments (num). Header-only. The includer defines PROG, its name as its messages
 * begin ("bench", "scale"), before including it.
 *
 * A harness never goes on after an error: a figure measured past a failed operation would
 * measure something else. Every error ends the process with exit 1 (a bad argument: 2), and
 * the driver (bench/run.py, scale.py) shows the cell as n/a with the message.
 */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"

#ifndef PROG
#error "define PROG (the program's name in its messages) before including benchutil.h"
#endif

/* what: the call that failed; err: its errno, or the negative errno a libchan call returned. */
static inline void die(const char *what, int err)
{
    fprintf(stderr, PROG ": %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

/* Every channel operation of the shapes must succeed; the return is checked, never ignored. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_ < 0)                                                                                \
            die(#call, r_);                                                                        \
    } while (0)

static inline chan_t *make(size_t elemsize, size_t cap)
{
    chan_t *c = chan_make(elemsize, cap);
    if (!c)
        die("chan_make", errno);
    return c;
}

/* A run's checksum: what arrived must be what was sent. */
static inline void check(const char *what, uint64_t got, uint64_t want)
{
    if (got != want) {
        fprintf(stderr, PROG ": %s: checksum %llu, want %llu\n", what, (unsigned long long)got,
                (unsigned long long)want);
        exit(1);
    }
}

/* 0 + 1 + ... + (k-1): what a sender of the values 0 .. k-1 delivers. */
static inline uint64_t sum_to(uint64_t k) { return k * (k - 1) / 2; }

/* A receiver's loop: count values received into buf (room for one element), and the sum of the
 * uint64_t each begins with (what the senders put there). */
static inline uint64_t recv_sum(chan_t *c, uint64_t count, unsigned char *buf)
{
    uint64_t s = 0, v;
    for (uint64_t i = 0; i < count; i++) {
        OK(chan_recv(c, buf));
        memcpy(&v, buf, sizeof v);
        s += v;
    }
    return s;
}

/* The seq shape, one thread: a buffer-full of uint64_t in, then out, rounds times; the sum of
 * what came out (rounds * sum_to(cap)). */
static inline uint64_t seq_rounds(chan_t *c, uint64_t rounds)
{
    size_t cap = chan_cap(c);
    uint64_t s = 0, v;
    for (uint64_t r = 0; r < rounds; r++) {
        for (uint64_t i = 0; i < cap; i++)
            OK(chan_send(c, &i));
        for (uint64_t i = 0; i < cap; i++) {
            OK(chan_recv(c, &v));
            s += v;
        }
    }
    return s;
}

/* A command-line number (decimal, not negative), or exit 2 naming what it was for. */
static inline unsigned long long num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, PROG ": bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

#endif
