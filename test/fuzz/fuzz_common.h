/* SPDX-License-Identifier: MIT */
/* fuzz_common.h - what the two libFuzzer targets share: a reader over the input bytes (past the
 * end it yields zeros, so every input decodes to a finite, well-formed program), and a check
 * that stops the run with a message libFuzzer records next to the crashing input. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"

struct input {
    const uint8_t *p;
    size_t n, at;
};

static inline int more(const struct input *in) { return in->at < in->n; }

static inline uint8_t byte(struct input *in) { return in->at < in->n ? in->p[in->at++] : 0; }

static inline uint64_t u64(struct input *in, unsigned nbytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < nbytes; i++)
        v |= (uint64_t)byte(in) << (8 * i);
    return v;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
