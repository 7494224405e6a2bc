/*
 * trace.h - the hooks that chan.c, select.c, sudog.c and timer.c call for tracing and for the
 * dump of live channels (trace.c). Included only by the library build (-DCHAN_TRACE_BUILD):
 * the drop-in pair defines TRACE() to nothing and carries no tracing at all.
 *
 * Every hook is called through TRACE(mask, call): one relaxed load of trace_flags and one
 * predictable branch, taken only while a trace runs (TF_EVENTS) or the dump registry is on
 * (TF_REGISTRY, TF_NAMED). The hooks never allocate, never block and never take a lock shared
 * between threads, except trace_make/trace_free (a shard lock of the registry, when enabled).
 *
 * Rules for the places they are called from (chan_internal.h's invariants):
 *  - Hooks that take a sudog or waiter of a peer (trace_handoff, trace_close) run under the
 *    channel lock, before the peer is unparked: after unpark its frame may be gone.
 *  - A hook after a park (trace_woken, trace_op, trace_select) never dereferences the channel:
 *    it may already be freed. The pointer is only a key for its label.
 */
#ifndef TRACE_H
#define TRACE_H

#include "chan_internal.h"

#define TF_EVENTS 1u   /* a trace is being recorded */
#define TF_REGISTRY 2u /* chan_dump_enable: live channels are registered */
#define TF_NAMED 4u    /* some channel has a name: chan_free must forget it */

HIDDEN extern _Atomic uint32_t trace_flags;

#define TRACE(mask, call)                                                                          \
    do {                                                                                           \
        if (unlikely(atomic_load_explicit(&trace_flags, memory_order_relaxed) & (mask)))           \
            call;                                                                                  \
    } while (0)

/* Forms of an operation, for its completion event. */
enum trace_form { TR_BLOCK, TR_TRY, TR_UNTIL };

/* At the entry of a public operation: while a trace runs, the traced form of the call (which
 * reports its result and returns it), else nothing, and the caller's own `return call;` that
 * follows stays a tail call. Off, it costs a load, a test and a branch. */
#define TRACE_OP(dir, form, c, elem, call)                                                         \
    do {                                                                                           \
        if (unlikely(atomic_load_explicit(&trace_flags, memory_order_relaxed) & TF_EVENTS)) {      \
            trace_begin();                                                                         \
            int r_ = (call);                                                                       \
            trace_op((c), (dir), (form), r_, (elem));                                              \
            return r_;                                                                             \
        }                                                                                          \
    } while (0)

#define TRACE_SELECT(form, cases, n, call)                                                         \
    do {                                                                                           \
        if (unlikely(atomic_load_explicit(&trace_flags, memory_order_relaxed) & TF_EVENTS)) {      \
            trace_begin();                                                                         \
            trace_select_cases((cases), (n));                                                      \
            int r_ = (call);                                                                       \
            trace_select((cases), (n), (form), r_);                                                \
            return r_;                                                                             \
        }                                                                                          \
    } while (0)

/* A traced operation begins: forget what an untraced one (a trace that started while it ran)
 * may have left in the thread's state. */
HIDDEN void trace_begin(void);

/* chan_make succeeded / chan_free is about to free c (nothing is queued on it). */
HIDDEN void trace_make(struct chan *c);
HIDDEN void trace_free(struct chan *c);

/* A send or receive on c returned r (any path that did not block; a blocked one is reported by
 * trace_woken). Before a park nothing; after one, c is not dereferenced. */
HIDDEN void trace_op(struct chan *c, enum chan_dir dir, enum trace_form form, int r,
                     const void *elem);

/* Under c's lock: the caller (dir: its own direction) completes the waiting peer sg. elem: the
 * caller's value (send) or where it received (recv, after the copy; may be NULL). */
HIDDEN void trace_handoff(struct chan *c, enum chan_dir dir, struct sudog *sg, const void *elem);

/* Under c's lock: chan_close(c) returned r; woken: the chain (through ->next) of the sudogs it
 * completed. */
HIDDEN void trace_close(struct chan *c, int r, struct sudog *woken);

/* Under the lock(s), sudogs queued: w is about to park. */
HIDDEN void trace_block(struct waiter *w, bool is_select);

/* After the park: w's operation ends with r (select: the case index or -ETIMEDOUT); its
 * channel is not dereferenced. */
HIDDEN void trace_woken(struct waiter *w, int r, bool is_select);

/* A select begins: its cases (the first TRACE_CASES_MAX), each with its channel (NULL: a nil
 * case), direction and, for a send, the value offered. Before the select, so channels are live. */
#define TRACE_CASES_MAX 16
HIDDEN void trace_select_cases(const struct chan_case *cases, size_t n);

/* A select returned r (case index or error); does not dereference a channel after a park. */
HIDDEN void trace_select(const struct chan_case *cases, size_t n, enum trace_form form, int r);

/* waiter_init: the waiter's thread and start time, for the trace and the dump. The fields are
 * cleared whatever the flags (three stores into the waiter's own frame), so that a trace or a
 * dump that starts while it waits never reads them uninitialized. */
HIDDEN void trace_waiter_init(struct waiter *w);
#define TRACE_WAITER_INIT(w)                                                                       \
    do {                                                                                           \
        (w)->t_since = 0;                                                                          \
        (w)->t_flow = 0;                                                                           \
        (w)->t_hasval = false;                                                                     \
        TRACE(TF_EVENTS | TF_REGISTRY | TF_NAMED, trace_waiter_init(w));                           \
    } while (0)

/* timer.c: a timer is about to send on c (on the timer thread, or in the call that armed a
 * timer already due). */
HIDDEN void trace_timer_fire(struct chan *c);

#endif
