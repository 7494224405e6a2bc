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
 *   - Element pointers (recv, send_ptr, the case constructors) are `T *` (`T const *` for the
 *     sends): a pointer to another type is a constraint violation that every C compiler
 *     diagnoses (an error with -Werror or -pedantic-errors, by default from GCC 14, and in
 *     C++); a void * converts silently, as in any C call. The by-value sends convert their argument
 *     as any C call does (an int to a long, a double to an int: -Wconversion catches those);
 *     for a struct element they accept only that struct.
 *
 * T is a type name that declares an object as `T v` (typedef a function pointer type first),
 * not an array type (C passes arrays by pointer: wrap one in a struct), not const-qualified (a
 * receive stores into it; a pointer to const such as const char * is fine), not
 * volatile-qualified (values travel as bytes, not as volatile accesses), not atomic (nor as
 * atomic ones), in C++ trivially copyable and copyable, of at most CHAN_ELEMSIZE_MAX bytes; any
 * other does not compile. C has no type of size zero: a signal-only channel is chan_make(0,
 * cap). The macro is used at file scope, once per name, followed by a semicolon. The underlying
 * channel is c.chan: use it with every chan.h call (chan_select, chan_free, ...); a handle
 * whose chan is NULL is Go's nil channel. Every function is the chan.h call of the same name
 * with the same return values and concurrency contract (see chan.h and chan_send(3)), a static
 * inline function (each argument evaluated once). Besides name and name_*, the header declares
 * only names in chan.h's space (chan_*, CHAN_*). Valid in C11 and C++11, and inside extern "C".
 */
#ifndef CHAN_TYPED_H
#define CHAN_TYPED_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"

/* T must not be an array type: a parameter `T v` would be a pointer and the sends would copy
 * the pointer's bytes. The test, in a function with such a parameter v: &v has type T * only
 * when T is not an array. Nor const-qualified: a receive stores into its T *, and a pointer to
 * a const T would pass the const away (T const * is &v's type exactly when T is const). Nor
 * volatile-qualified: the core copies elements with memcpy, which makes no volatile accesses
 * (plain C would only warn that the volatile is discarded, and compile). Nor atomic: memcpy
 * makes no atomic accesses either, and C converts an _Atomic T * to the core's void * without a
 * word (T _Atomic * is &v's type exactly when T is _Atomic). In C++, T must also be trivially
 * copyable: values travel as bytes (memcpy), which would skip a copy constructor and leave a
 * destructor to run twice; and copyable at all, which std::atomic (trivially copyable in
 * libstdc++, its copies deleted) is not, nor a structure with a const member (whose assignment
 * is deleted: a receive stores into it all the same). <type_traits> is C++ whatever linkage the
 * includer has put around this header (a C header is often included inside extern "C" { },
 * where a template is an error). */
#ifdef __cplusplus
extern "C++" {
#include <type_traits>
}
#define CHAN_TYPED_ASSERT_ static_assert
#define CHAN_TYPED_CHECK_(T, v)                                                                    \
    static_assert(!std::is_array<T>::value, CHAN_TYPED_ARRAY_MSG_);                                \
    static_assert(!std::is_const<T>::value, CHAN_TYPED_CONST_MSG_);                                \
    static_assert(!std::is_volatile<T>::value, CHAN_TYPED_VOLATILE_MSG_);                          \
    static_assert(std::is_trivially_copyable<T>::value,                                            \
                  "CHAN_TYPED: T is not trivially copyable (values are copied as bytes)");         \
    static_assert(std::is_const<T>::value ||                                                       \
                      (std::is_copy_constructible<T>::value && std::is_copy_assignable<T>::value), \
                  "CHAN_TYPED: T cannot be copied or assigned (a std::atomic, a const member: "    \
                  "values are copied in and out as bytes)")
#else
#define CHAN_TYPED_ASSERT_ _Static_assert
#define CHAN_TYPED_CHECK_(T, v)                                                                    \
    _Static_assert(_Generic(&(v), T * : 1, default : 0), CHAN_TYPED_ARRAY_MSG_);                   \
    _Static_assert(_Generic(&(v), T const * : 0, default : 1), CHAN_TYPED_CONST_MSG_);             \
    _Static_assert(_Generic(&(v), T volatile * : 0, default : 1), CHAN_TYPED_VOLATILE_MSG_);       \
    CHAN_TYPED_CHECK_ATOMIC_(T, v)
#ifdef __STDC_NO_ATOMICS__ /* no _Atomic types to refuse */
#define CHAN_TYPED_CHECK_ATOMIC_(T, v) _Static_assert(1, "")
#else
#define CHAN_TYPED_CHECK_ATOMIC_(T, v)                                                             \
    _Static_assert(_Generic(&(v), T _Atomic * : 0, default : 1), CHAN_TYPED_ATOMIC_MSG_)
#endif
#endif
#define CHAN_TYPED_ARRAY_MSG_                                                                      \
    "CHAN_TYPED: T is an array type (C passes arrays by pointer): wrap it in a struct"
#define CHAN_TYPED_CONST_MSG_ "CHAN_TYPED: T is const-qualified (a receive stores into it)"
#define CHAN_TYPED_VOLATILE_MSG_                                                                   \
    "CHAN_TYPED: T is volatile-qualified (values are copied as bytes, not as volatile accesses)"
#define CHAN_TYPED_ATOMIC_MSG_                                                                     \
    "CHAN_TYPED: T is atomic (values are copied as bytes, not as atomic accesses)"

/* Unused instances are the norm (a program sends on a type it never selects on): chan.h's
 * CHAN_INLINE_ keeps them quiet. */
#define CHAN_TYPED_FN_ CHAN_INLINE_

/* Declares the type `name` (a channel of T) and its functions name_make ... name_case_recv.
 * Written for any T a user may name: a pointer to a constant T is `T const *`, which stays one
 * when T is itself a pointer (`const T *` would put the const on what T points to: `const int
 * **` for T `int *`, which an `int **` does not convert to); and the parameters are named in
 * chan.h's own space (chan_c_, chan_v_, ...), so that they neither shadow a user's global
 * (-Wshadow) nor hide a type that T names (a T named `cap` was sizeof the size_t parameter). */
#define CHAN_TYPED(name, T)                                                                        \
    typedef struct name {                                                                          \
        chan_t *chan;                                                                              \
    } name;                                                                                        \
    /* chan_make(sizeof(T), cap): on failure chan is NULL and errno is set */                      \
    CHAN_TYPED_FN_ name name##_make(size_t chan_cap_)                                              \
    {                                                                                              \
        name chan_c_ = {chan_make(sizeof(T), chan_cap_)};                                          \
        return chan_c_;                                                                            \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_free(name chan_c_) { return chan_free(chan_c_.chan); }               \
    CHAN_TYPED_FN_ int name##_send(name chan_c_, T chan_v_)                                        \
    {                                                                                              \
        CHAN_TYPED_CHECK_(T, chan_v_);                                                             \
        return chan_send(chan_c_.chan, &chan_v_);                                                  \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_send_ptr(name chan_c_, T const *chan_v_)                             \
    {                                                                                              \
        return chan_send(chan_c_.chan, chan_v_);                                                   \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_trysend(name chan_c_, T chan_v_)                                     \
    {                                                                                              \
        return chan_trysend(chan_c_.chan, &chan_v_);                                               \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_send_until(name chan_c_, T chan_v_, int64_t chan_deadline_)          \
    {                                                                                              \
        return chan_send_until(chan_c_.chan, &chan_v_, chan_deadline_);                            \
    }                                                                                              \
    /* v may be NULL: the value is discarded */                                                    \
    CHAN_TYPED_FN_ int name##_recv(name chan_c_, T *chan_v_)                                       \
    {                                                                                              \
        return chan_recv(chan_c_.chan, chan_v_);                                                   \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_tryrecv(name chan_c_, T *chan_v_)                                    \
    {                                                                                              \
        return chan_tryrecv(chan_c_.chan, chan_v_);                                                \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_recv_until(name chan_c_, T *chan_v_, int64_t chan_deadline_)         \
    {                                                                                              \
        return chan_recv_until(chan_c_.chan, chan_v_, chan_deadline_);                             \
    }                                                                                              \
    CHAN_TYPED_FN_ int name##_close(name chan_c_) { return chan_close(chan_c_.chan); }             \
    CHAN_TYPED_FN_ size_t name##_len(name chan_c_) { return chan_len(chan_c_.chan); }              \
    CHAN_TYPED_FN_ size_t name##_cap(name chan_c_) { return chan_cap(chan_c_.chan); }              \
    /* select cases: *v must stay valid until the select returns */                                \
    CHAN_TYPED_FN_ struct chan_case name##_case_send(name chan_c_, T const *chan_v_)               \
    {                                                                                              \
        return chan_case_send(chan_c_.chan, chan_v_);                                              \
    }                                                                                              \
    CHAN_TYPED_FN_ struct chan_case name##_case_recv(name chan_c_, T *chan_v_)                     \
    {                                                                                              \
        return chan_case_recv(chan_c_.chan, chan_v_);                                              \
    }                                                                                              \
    CHAN_TYPED_ASSERT_(sizeof(T) <= CHAN_ELEMSIZE_MAX,                                             \
                       "CHAN_TYPED: an element type of 64 KiB or more (Go refuses it too)")

#endif /* CHAN_TYPED_H */
