/* SPDX-License-Identifier: MIT */
/*
 * chan_typed.h - typed channels: Go's `chan T`, with the element type checked at compile time.
 *
 * An addition to chan.h's contract, header-only: nothing here is in the library.
 * One macro declares a channel type and static inline functions over the untyped core:
 *
 *     CHAN_TYPED(point_chan, struct point);
 *
 *     point_chan c = point_chan_make(16);        // c.chan == NULL: errno EINVAL or ENOMEM
 *     point_chan_send(c, p);                     // p must be a struct point
 *     struct point q;
 *     while (point_chan_recv(c, &q) == 0) ...    // &q must be a struct point *
 *     struct chan_case cs[] = { point_chan_case_recv(c, &q), chan_case_recv(quit, NULL) };
 *
 * What the compiler checks:
 *   - A handle is a struct of its own (`struct point_chan { chan_t *chan; }`, passed by value,
 *     like Go's channel values): passing another channel type, or a chan_t *, to a function of
 *     point_chan does not compile, whatever the flags.
 *   - Element pointers (recv, send_ptr, the case constructors) are `T *`: a pointer to another
 *     type is a constraint violation that every C compiler diagnoses (an error with -Werror or
 *     -pedantic-errors, and by default from GCC 14). The by-value sends convert their argument
 *     as any C call does (an int to a long, a double to an int: -Wconversion catches those);
 *     for a struct element they accept only that struct.
 *
 * T is a type name that declares an object as `T v` (typedef a function pointer type first),
 * not an array type (C passes arrays by pointer: wrap one in a struct), of at most
 * CHAN_ELEMSIZE_MAX bytes; an array or a larger type does not compile. The macro is used at
 * file scope, once per name, followed by a semicolon. The underlying channel is c.chan: use
 * it with every chan.h call (chan_select, chan_free, ...); a handle whose chan is NULL is Go's
 * nil channel. Every function is the chan.h call of the same name with the same return values
 * and concurrency contract (see chan.h and chan_send(3)); valid in C11 and C++11.
 */
#ifndef CHAN_TYPED_H
#define CHAN_TYPED_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"

/* T must not be an array type: a parameter `T v` would be a pointer and the sends would copy
 * the pointer's bytes. The test, in a function with such a parameter v: &v has type T * only
 * when T is not an array. */
#ifdef __cplusplus
#include <type_traits>
#define CHAN_TYPED_ASSERT_ static_assert
#define CHAN_TYPED_NOT_ARRAY_(T, v) static_assert(!std::is_array<T>::value, CHAN_TYPED_ARRAY_MSG_)
#else
#define CHAN_TYPED_ASSERT_ _Static_assert
#define CHAN_TYPED_NOT_ARRAY_(T, v)                                                                \
    _Static_assert(_Generic(&(v), T * : 1, default : 0), CHAN_TYPED_ARRAY_MSG_)
#endif
#define CHAN_TYPED_ARRAY_MSG_                                                                      \
    "CHAN_TYPED: T is an array type (C passes arrays by pointer): wrap it in a struct"

/* Unused instances are the norm (a program sends on a type it never selects on): chan.h's
 * CHAN_INLINE_ keeps them quiet. */
#define CHAN_TYPED_FN_ CHAN_INLINE_

/* Declares the type `name` (a channel of T) and its functions name_make ... name_case_recv. */
#define CHAN_TYPED(name, T)                                                                        \
    typedef struct name {                                                                          \
        chan_t *chan;                                                                              \
    } name;                                                                                        \
    /* chan_make(sizeof(T), cap): on failure chan is NULL and errno is set */                      \
    CHAN_TYPED_FN_ name name##_make(size_t cap)                                                    \
    {                                                                                              \
        name c = {chan_make(sizeof(T), cap)};                                                      \
        return c;                                                                                  \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_free(name c) { return chan_free(c.chan); }                           \
    CHAN_TYPED_FN_ int name##_send(name c, T v)                                                    \
    {                                                                                              \
        CHAN_TYPED_NOT_ARRAY_(T, v);                                                               \
        return chan_send(c.chan, &v);                                                              \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_send_ptr(name c, const T *v) { return chan_send(c.chan, v); }        \
    CHAN_TYPED_FN_ int name##_trysend(name c, T v) { return chan_trysend(c.chan, &v); }            \
    CHAN_TYPED_FN_ int name##_send_until(name c, T v, int64_t deadline)                            \
    {                                                                                              \
        return chan_send_until(c.chan, &v, deadline);                                              \
    }                                                                                              \
    /* v may be NULL: the value is discarded */                                                    \
    CHAN_TYPED_FN_ int name##_recv(name c, T *v) { return chan_recv(c.chan, v); }                  \
    CHAN_TYPED_FN_ int name##_tryrecv(name c, T *v) { return chan_tryrecv(c.chan, v); }            \
    CHAN_TYPED_FN_ int name##_recv_until(name c, T *v, int64_t deadline)                           \
    {                                                                                              \
        return chan_recv_until(c.chan, v, deadline);                                               \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_close(name c) { return chan_close(c.chan); }                         \
    CHAN_TYPED_FN_ size_t name##_len(name c) { return chan_len(c.chan); }                          \
    CHAN_TYPED_FN_ size_t name##_cap(name c) { return chan_cap(c.chan); }                          \
    /* select cases: *v must stay valid until the select returns */                                \
    CHAN_TYPED_FN_ struct chan_case name##_case_send(name c, const T *v)                           \
    {                                                                                              \
        return chan_case_send(c.chan, v);                                                          \
    }                                                                                              \
    CHAN_TYPED_FN_ struct chan_case name##_case_recv(name c, T *v)                                 \
    {                                                                                              \
        return chan_case_recv(c.chan, v);                                                          \
    }                                                                                              \
    CHAN_TYPED_ASSERT_(sizeof(T) <= CHAN_ELEMSIZE_MAX,                                             \
                       "CHAN_TYPED: an element type of 64 KiB or more (Go refuses it too)")

#endif /* CHAN_TYPED_H */
