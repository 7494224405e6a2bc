/* SPDX-License-Identifier: MIT */
/*
 * soak.h - what the two soak programs, stress.c and stress_io.c, share: the mixer that turns a
 * seed into salts and per-worker seeds, and the generator each worker draws its choices from.
 * Header-only; each program wraps soak_next in its own rnd(worker).
 */
#ifndef SOAK_H
#define SOAK_H

#include <stdint.h>

/* MurmurHash3's 64-bit finalizer: every bit of x reaches every bit of the result. */
static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Marsaglia's xorshift64 (13, 7, 17): the next number of the stream *s, which is never 0. */
static inline uint64_t soak_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#endif /* SOAK_H */
