/* SPDX-License-Identifier: MIT */
/*
 * chan.h - Go's channels and select for C (libchan).
 *
 * The one public header, and the contract of the channels: each declaration below states what
 * the call does, what it returns and what it promises to concurrent callers; chan_make(3),
 * chan_send(3), chan_close(3), chan_select(3) and chan_sched(3) say the same at length.
 *
 * Conventions, for every function:
 *   - Success is 0 (select: the chosen case's index, >= 0); failure is a negative errno value.
 *     Nothing aborts the process on bad input and nothing is lost: a value whose send returned 0
 *     is received exactly once, or is still buffered when its channel is freed.
 *   - Arguments are checked before anything happens: bad arguments give -EINVAL whatever the
 *     channel's state, and nothing was sent, received or consumed.
 *   - A NULL channel is Go's nil channel: never ready. Blocking on it lasts until the deadline.
 *   - Deadlines are absolute nanoseconds on CLOCK_MONOTONIC (chan_now()). They are checked only
 *     before blocking: a ready operation always completes, whatever its deadline.
 *   - No call returns -EINTR (a signal is absorbed and the wait goes on to the same deadline);
 *     blocking calls are not pthread cancellation points.
 *   - All functions may be called from any thread, on the same channel, at the same time.
 *
 * Beyond Go's channels and select (documented here and in the man pages): CHAN_VERSION_*
 * macros, chan_version(), the case constructors chan_case_send() and chan_case_recv(), include
 * guards and extern "C".
 */
#ifndef CHAN_H
#define CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The version of this header (chan_version() gives the library's). Written here only: the
 * Makefile, the pkg-config and CMake files and the drop-in pair read these three lines. */
#define CHAN_VERSION_MAJOR 1
#define CHAN_VERSION_MINOR 0
#define CHAN_VERSION_PATCH 0
#define CHAN_VERSION_STR_(n) #n
#define CHAN_VERSION_XSTR_(n) CHAN_VERSION_STR_(n)
#define CHAN_VERSION_STRING                                                                        \
    CHAN_VERSION_XSTR_(CHAN_VERSION_MAJOR)                                                         \
    "." CHAN_VERSION_XSTR_(CHAN_VERSION_MINOR) "." CHAN_VERSION_XSTR_(                             \
        CHAN_VERSION_PATCH) /* "MAJOR.MINOR.PATCH" */

#ifdef __cplusplus
extern "C" {
#endif

/* Only the symbols declared here leave libchan.so; everything else is built hidden. */
#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

typedef struct chan chan_t; /* Go's hchan; opaque */

#define CHAN_ELEMSIZE_MAX 65535 /* like Go: element types of 64 KiB and more are refused */
#define CHAN_SELECT_MAX 65536   /* like Go: at most this many cases in one select */
#define CHAN_FOREVER INT64_MAX  /* a deadline that never comes */

/* The library's version string, "MAJOR.MINOR.PATCH". */
const char *chan_version(void);

/* Time: deadlines are absolute, in nanoseconds on CLOCK_MONOTONIC. */
int64_t chan_now(void); /* CLOCK_MONOTONIC now, in ns */

/* ---- Making and freeing ------------------------------------------------------------------ */

/* Makes a channel of elements of elemsize bytes with room for cap of them. cap 0: unbuffered
 * (a send completes only when a receiver takes the value). elemsize 0: signal-only (Go's
 * chan struct{}); elem is then ignored everywhere and may be NULL.
 * Returns NULL with errno EINVAL (elemsize > CHAN_ELEMSIZE_MAX, cap * elemsize overflows) or
 * ENOMEM (no memory, or a size that fits in size_t but not, with the channel's bookkeeping, in
 * one object). The only operation besides a large select that allocates. */
chan_t *chan_make(size_t elemsize, size_t cap);

/* Frees c. 0; -EBUSY (nothing freed) while any thread or task is blocked on c, or while a
 * select or _until operation that completed elsewhere or timed out is still unlinking itself
 * from c; NULL: 0, no-op. Values still buffered are discarded. An operation woken by c (by a
 * peer, or by chan_close(), which unlinks every waiter it wakes) never touches c again, so c
 * may be freed as soon as chan_close() has returned if no operation on c is in flight: none
 * will start, and each one that started has returned or was blocked on c when the close ran.
 * One that has started but not yet blocked still reads c and has no waiter chan_free() could
 * see: freeing c under it is the caller's use-after-free (Go's GC prevents it; C cannot). The
 * usual pattern: the thread that made c frees it after joining the threads that use it. */
int chan_free(chan_t *c);

/* ---- Send and receive. A NULL channel is Go's nil channel: it is never ready. --------------- */

/* Blocks until the value is handed over or buffered (on an unbuffered channel: until a
 * receiver has taken it). 0; -EPIPE if c is or becomes closed (the value was not sent);
 * -EINVAL if elem is NULL and elemsize > 0. NULL c blocks forever. */
int chan_send(chan_t *c, const void *elem);

/* Blocks until a value arrives. 0: *elem holds it; -EPIPE: c is closed and drained, *elem is
 * zeroed. elem may be NULL (the value is discarded). NULL c blocks forever.
 * Idiom: while (chan_recv(c, &v) == 0) ... */
int chan_recv(chan_t *c, void *elem);

/* Never block: 0, -EPIPE, or -EAGAIN (not ready now; always for a NULL c). chan_tryrecv's
 * -EPIPE is chan_recv's: c closed and drained, *elem zeroed. */
int chan_trysend(chan_t *c, const void *elem);
int chan_tryrecv(chan_t *c, void *elem);

/* As chan_send/chan_recv, or -ETIMEDOUT once deadline (chan_now() scale) has passed with the
 * operation still not ready. A deadline already past makes them the try forms, reporting
 * -ETIMEDOUT instead of -EAGAIN. */
int chan_send_until(chan_t *c, const void *elem, int64_t deadline);
int chan_recv_until(chan_t *c, void *elem, int64_t deadline);

/* Closes c. 0; -EPIPE if already closed; -EINVAL if NULL. Values already buffered are still
 * received; then every receive reports -EPIPE (a select's receive case: ok false). Wakes every
 * blocked receiver (-EPIPE, zeroed elem) and every blocked sender (-EPIPE, value not
 * delivered); one blocked in a select has that case chosen with ok false. */
int chan_close(chan_t *c);

/* Values buffered now, and capacity; 0 for NULL, and for a timer's or ticker's channel, as Go's
 * len and cap (chan_time.h). chan_len is a snapshot (no lock taken). */
size_t chan_len(const chan_t *c);
size_t chan_cap(const chan_t *c);

/* ---- Select --------------------------------------------------------------------------------- */

enum chan_dir { CHAN_SEND = 1, CHAN_RECV = 2 };

struct chan_case {
    chan_t *chan; /* NULL: this case is never chosen (Go's nil channel in select) */
    void *elem;   /* value to send, or where to store the value received (may be NULL) */
    enum chan_dir dir;
    bool ok; /* set on the chosen case: true if a value moved; false if the channel
                was closed (recv: *elem zeroed; send: nothing sent) */
};

/* Case constructors: every field set, ok false, so that an array of cases reads as Go's select
 * and compiles clean under -Wall -Wextra -pedantic, in C and C++:
 *     struct chan_case cs[] = { chan_case_recv(jobs, &job), chan_case_recv(quit, NULL) };
 * c may be NULL (a case never chosen). A send case's value is only read, never written: its
 * const goes through uintptr_t (struct chan_case has one elem for both directions), which
 * keeps -Wcast-qual quiet too, and in C++ through const_cast (quiet under -Wold-style-cast).
 * Marked unused: where chan.h is pasted into a .c file (the drop-in pair's chan.c), clang would
 * otherwise warn about an inline function never called. Their parameters (c, elem) and local
 * are named in chan.h's own space: a user's global c, declared before the header, is not
 * shadowed (-Wshadow). */
#if defined(__GNUC__)
#define CHAN_INLINE_ static inline __attribute__((unused))
#else
#define CHAN_INLINE_ static inline
#endif
CHAN_INLINE_ struct chan_case chan_case_send(chan_t *chan_c_, const void *chan_elem_)
{
#ifdef __cplusplus
    struct chan_case chan_cs_ = {chan_c_, const_cast<void *>(chan_elem_), CHAN_SEND, false};
#else
    struct chan_case chan_cs_ = {chan_c_, (void *)(uintptr_t)chan_elem_, CHAN_SEND, false};
#endif
    return chan_cs_;
}

CHAN_INLINE_ struct chan_case chan_case_recv(chan_t *chan_c_, void *chan_elem_)
{
    struct chan_case chan_cs_ = {chan_c_, chan_elem_, CHAN_RECV, false};
    return chan_cs_;
}

/* Blocks until one case can proceed and performs exactly that one; returns its index. Among
 * ready cases the choice is uniformly random; while blocked, the first case to become ready
 * wins. A send case on a closed channel is ready and is chosen with ok = false. n == 0 blocks
 * forever (Go's select {}), as do cases whose channels are all NULL. The same channel may appear
 * in several cases; a select's send case never pairs with its own receive case. A NULL-channel
 * case's elem is never looked at; its dir is checked as any other's.
 * -EINVAL (nothing done): cases == NULL with n > 0, n > CHAN_SELECT_MAX, a dir other than
 * CHAN_SEND/CHAN_RECV (NULL-channel cases too), or a send case with elem NULL on a channel whose
 * elemsize > 0; every case is checked before anything happens. -ENOMEM (nothing done): a select
 * of more than 8 cases could not get memory for its bookkeeping. On success only the chosen
 * case's ok (and a receive's elem) is written; on an error (-EAGAIN and -ETIMEDOUT included) no
 * case's ok is. */
int chan_select(struct chan_case *cases, size_t n);

/* As chan_select, but never blocks: -EAGAIN when no case is ready (Go's default). */
int chan_tryselect(struct chan_case *cases, size_t n);

/* As chan_select, or -ETIMEDOUT once deadline has passed with no case ready. A deadline
 * already past makes it chan_tryselect, reporting -ETIMEDOUT instead of -EAGAIN. */
int chan_select_until(struct chan_case *cases, size_t n, int64_t deadline);

/* ---- Pluggable scheduler: how a blocked operation parks and is woken. Default: pthreads. ---- */

struct chan_sched {
    void *(*current)(void);                    /* handle of the calling task; never NULL */
    int (*park)(void *task, int64_t deadline); /* block the caller until unpark(task) or the
                                                  deadline: 0 (an unpark was consumed) or
                                                  -ETIMEDOUT. Never 0 without an unpark. */
    void (*unpark)(void *task);                /* make task runnable. May come before park:
                                                  then that task's next park returns at once. */
};

/* Installs s for the calling OS thread (each worker thread of an M:N scheduler calls it); NULL
 * restores the pthread default. A task parked by one scheduler is woken through that
 * scheduler's unpark, so plain threads and tasks share channels freely.
 * What libchan promises a scheduler: current and park are called only on the thread that
 * installed s, by an operation about to block (current may be called with a channel lock held:
 * it must not call into libchan); park gets the operation's deadline (CHAN_FOREVER when none),
 * except that an operation that timed out but lost the race to a waker parks once more with
 * CHAN_FOREVER to consume the unpark already on its way; unpark may come from any thread, never
 * under a lock of libchan (a channel's, a timer's, a context's...), exactly once per block that
 * a waker completes; after an operation has returned, no call names its task again. libchan
 * does not spin under a plugged-in scheduler.
 * A park that returns -ETIMEDOUT before the deadline, or -EINTR, is called again with the same
 * deadline (a spurious wake-up: no operation reports a time-out it did not have). Any other
 * value gives the wait up: the operation returns it (negated if positive), nothing done, unless
 * a waker had completed it first (then it parks with CHAN_FOREVER until park returns 0, which
 * consumes that unpark, and reports the waker's result).
 * s is used by pointer and must outlive every operation parked through it. Its unpark and park
 * must order memory (what happens before unpark is visible after the park that consumes it). */
void chan_sched_set(const struct chan_sched *s);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* CHAN_H */
