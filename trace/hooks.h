/* SPDX-License-Identifier: MIT */
/*
 * hooks.h - the seam between the core and the tracer (trace/). The core (chan.c, select.c,
 * sudog.c; timer.c) calls these hooks to say what happened, and learns nothing back. The
 * tracer observes: the hooks read what they are handed, at the moment they are called, and
 * the tracer calls into the core only through chan_snapshot and chan_inspect (at the end) and
 * chan.h.
 *
 * Built with the tracer (-DCHAN_TRACE_BUILD: the library), each hook is defined in
 * trace/record.c. Built without it (the drop-in pair dist/chan.c, or a library built without
 * the tracer's sources), tracing() is constant false and every hook does nothing: the calls
 * compile to nothing. This is the one place where the no-op forms are written.
 *
 * A hook is called plainly behind its guard, which is the whole cost while nobody listens: one
 * relaxed load of the tracer's flag word and one predictable branch:
 *
 *     if (tracing(TF_EVENTS))
 *         trace_handoff(c, CHAN_SEND, sg, elem);
 *
 * The hooks never allocate, never block and never take a lock shared between threads, except
 * trace_make/trace_free (a shard lock of the registry of live channels, while it is on) and
 * trace_idle_add/trace_idle_del (the registry's list of waiters on no channel).
 *
 * Rules for the places they are called from (chan_internal.h's invariants):
 *  - Hooks that take a sudog or waiter of a peer (trace_handoff, trace_close) run under the
 *    channel lock, before the peer is unparked: after unpark its frame may be gone.
 *  - A hook after a park (trace_woken, trace_op, trace_select) never dereferences the channel:
 *    it may already be freed. The pointer is only a key for its label.
 */
#ifndef TRACE_HOOKS_H
#define TRACE_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan.h"

struct chan;
struct sudog;
struct waiter;

/* What a hook is for: tracing(mask) is true while any of these listens. */
#define TF_EVENTS 1u   /* a trace is being recorded */
#define TF_REGISTRY 2u /* chan_dump_enable: live channels are registered */
#define TF_NAMED 4u    /* some channel has a name: chan_free must forget it */

/* Forms of an operation, for its completion event. */
enum trace_form { TR_BLOCK, TR_TRY, TR_UNTIL };

/* What a channel of time/ or io/ is for (trace_chan_role). */
enum chan_role { ROLE_NONE, ROLE_TIMER, ROLE_CONTEXT, ROLE_FD_READ, ROLE_FD_WRITE };

#ifdef CHAN_TRACE_BUILD

#include <stdatomic.h>

#ifndef HIDDEN /* chan_internal.h's, for a tracer file that does not include it */
#define HIDDEN __attribute__((visibility("hidden")))
#endif

/* Who listens now: TF_* bits (trace/registry.c). */
HIDDEN extern _Atomic uint32_t trace_flags;

static inline bool tracing(uint32_t mask)
{
    return __builtin_expect((atomic_load_explicit(&trace_flags, memory_order_relaxed) & mask) != 0,
                            0);
}

/* The tracer's notes in a blocked operation's waiter (struct waiter's t). waiter_init zeroes
 * them (0: unknown); trace_waiter_init sets tid, since, task, g and timed while a trace or the
 * dump registry is on; a waker sets flow, val and hasval under the channel lock (the flow arrow
 * of the trace, the value it moved). timed and g sit in what was padding: the waiter, which
 * every blocking operation zeroes, keeps its size. */
struct waiter_trace {
    int32_t tid; /* its thread (gettid) */
    bool hasval;
    bool timed;       /* the wait has a deadline (for the leak detector; only when since != 0) */
    bool g;           /* task is a G's id: given by the task hook of the scheduler in the tree
                         (trace_task_hook_swap, seam.h), not by one of the program's */
    int64_t since;    /* chan_now() when it began to wait */
    int64_t deadline; /* its deadline (when timed), for the trace's "deadline_in_ns" */
    uint64_t task;    /* chan_trace_task_hook's id of the task that waits (0: none, or no hook) */
    uint64_t flow;
    int64_t val;
};

/* A traced operation begins: forget what an untraced one (a trace that started while it ran)
 * may have left in the thread's state. Returns the trace running now (0: none), which the
 * operation keeps on its own stack and hands to trace_op or trace_select at its end: an
 * operation that began in another trace may have parked and been woken while no trace ran,
 * and its channel may be freed. (Not in the thread's state: under an M:N scheduler the task
 * may end its operation on another thread.) */
HIDDEN uint32_t trace_begin(void);

/* chan_make succeeded / chan_free is about to free c (nothing is queued on it). */
HIDDEN void trace_make(struct chan *c);
HIDDEN void trace_free(struct chan *c);

/* A send or receive on c returned r (any path that did not block; a blocked one is reported by
 * trace_woken). Before a park nothing; after one, c is not dereferenced. gen: trace_begin's. */
HIDDEN void trace_op(struct chan *c, enum chan_dir dir, enum trace_form form, int r,
                     const void *elem, uint32_t gen);

/* Under c's lock: the caller (dir: its own direction) completes the waiting peer sg. elem: the
 * caller's value (send) or where it received (recv, after the copy; may be NULL). */
HIDDEN void trace_handoff(struct chan *c, enum chan_dir dir, struct sudog *sg, const void *elem);

/* Under c's lock: chan_close(c) returned r; woken: the chain (through ->next) of the sudogs it
 * completed. */
HIDDEN void trace_close(struct chan *c, int r, struct sudog *woken);

/* waiter_init: the waiter's thread, start time and whether it has a deadline, for the trace,
 * the dump and the leak detector. waiter_init has cleared them first, whatever the flags, so that a
 * trace or a dump that starts while it waits never reads them uninitialized. */
HIDDEN void trace_waiter_init(struct waiter *w, int64_t deadline);

/* Under the lock(s), sudogs queued: w is about to park. Or, with no sudog and no lock,
 * park_nothing's wait on no channel (a nil channel's operation, a select with no channel). */
HIDDEN void trace_block(struct waiter *w, bool is_select);

/* After the park: w's operation ends with r (select: the case index or -ETIMEDOUT); its
 * channel is not dereferenced. */
HIDDEN void trace_woken(struct waiter *w, int r, bool is_select);

/* park_nothing's wait (a nil channel's operation, a select with no channel: Go's "select (no
 * cases)"), on no queue: while the dump's registry is on, a thread of the pthread parker lists
 * it, and so does a task of the scheduler that keeps its tasks' stacks (sched_keeps_stacks,
 * seam.h: sched/'s Gs), so that chan_dump and the leak detector see it. The node lives in
 * park_nothing's frame, from trace_idle_add (true: listed) to trace_idle_del. A task of any
 * other plugged-in scheduler is not listed: its scheduler may drop the stack of a task that
 * waits for ever. */
struct trace_idle {
    struct waiter *w;
    struct trace_idle *next, *prev;
};
HIDDEN bool trace_idle_add(struct trace_idle *n, struct waiter *w);
HIDDEN void trace_idle_del(struct trace_idle *n);

/* A select begins: its cases (the first TRACE_CASES_MAX), each with its channel (NULL: a nil
 * case), direction and, for a send, the value offered. Before the select, so channels are live. */
#define TRACE_CASES_MAX 16
HIDDEN void trace_select_cases(const struct chan_case *cases, size_t n);

/* A select returned r (case index or error); does not dereference a channel after a park.
 * gen: trace_begin's. */
HIDDEN void trace_select(const struct chan_case *cases, size_t n, enum trace_form form, int r,
                         uint32_t gen);

/* timer.c: a timer is about to send on c (on the timer thread, or in the call that armed a
 * timer already due). */
HIDDEN void trace_timer_fire(struct chan *c);

/* time/, io/: c, just made, is a timer's (or ticker's) channel, a context's done channel or a
 * descriptor's: the registry of live channels notes it, so that the leak detector's reports
 * say so (taking a shard lock of the registry), and a running trace records it (a "role"
 * event: a timer's values are times). Called behind tracing(TF_REGISTRY | TF_EVENTS). */
HIDDEN void trace_chan_role(struct chan *c, enum chan_role role);

/* ---- The other way: the calls the tracer makes into the core ------------------------------ */

/* What chan_dump shows of a live channel: a copy made under its lock. */
#define SNAP_WAITERS 16 /* waiters described per queue; the rest are only counted */

struct chan_snap_waiter {
    int32_t tid;     /* its thread (0: unknown: blocked before any trace or dump was on) */
    int64_t since;   /* chan_now() when it began to wait (0: unknown) */
    uint64_t task;   /* its task's id by chan_trace_task_hook (0: none) */
    bool g;          /* task is the id of a G of libchan-mpg (waiter_trace's g) */
    uint32_t ncases; /* its sudogs in all (a select's cases on live channels) */
    uint32_t here;   /* of them, on this queue */
    bool send;       /* on the channel's sendq (else its recvq) */
    bool select;     /* a select, even one with a single non-nil case */
    bool done;       /* being woken: a waker, or its time-out, has won it */
};

struct chan_snap {
    size_t elemsize, cap, len;
    bool closed;
    size_t nsend, nrecv; /* waiters blocked on each queue (a select counts once per queue) */
    uint32_t nw;         /* described in w: the first SNAP_WAITERS senders, then receivers */
    struct chan_snap_waiter w[2 * SNAP_WAITERS];
};

/* chan.c: copies c's state into *s with c's lock held, taken only if it is free at that
 * moment: 0, or -EBUSY (nothing copied) while another thread holds it. Never waits and never
 * allocates. c must stay alive meanwhile: the caller holds its entry in the registry of live
 * channels, which chan_free must take to unregister it. */
HIDDEN int chan_snapshot(chan_t *c, struct chan_snap *s);

/* What the leak detector (trace/leak.c) reads of a live channel: the memory block that holds
 * it and its buffer. */
struct chan_block {
    const void *mem;
    size_t size;
};

/* chan.c: fills *b and calls fn(w, arg) once for each waiter queued on c (once, however many
 * of a select's sudogs are there), with c's lock held, taken only if it is free at that moment:
 * 0, or -EBUSY (nothing read, fn not called). While fn runs, w and its sudogs stay where they
 * are: a waiter leaves c's queues only under c's lock, and returns only after it has left them.
 * fn must not call into libchan. Never waits and never allocates. c must stay alive meanwhile,
 * as for chan_snapshot. */
HIDDEN int chan_inspect(chan_t *c, struct chan_block *b,
                        void (*fn)(const struct waiter *w, void *arg), void *arg);

/* chan.c: what chan_dump shows of a waiter on no channel (registry_idle_visit, which keeps w
 * alive meanwhile): *s, and what its operation is (enum wait_reason, seam.h). */
HIDDEN int waiter_snap(const struct waiter *w, struct chan_snap_waiter *s);

#else /* no tracer: nobody listens, and every hook does nothing */

/* tracing() is a constant, so the guarded calls are dead code; each hook names its arguments
 * (so that a variable or parameter used only to be traced is still used) and evaluates to
 * nothing. */
#define tracing(mask) false
#define trace_begin() 0u
#define trace_make(c) ((void)(c))
#define trace_free(c) ((void)(c))
#define trace_op(c, dir, form, r, elem, gen)                                                       \
    ((void)(c), (void)(dir), (void)(form), (void)(r), (void)(elem), (void)(gen))
#define trace_handoff(c, dir, sg, elem) ((void)(c), (void)(dir), (void)(sg), (void)(elem))
#define trace_close(c, r, woken) ((void)(c), (void)(r), (void)(woken))
#define trace_waiter_init(w, deadline) ((void)(w), (void)(deadline))
#define trace_block(w, is_select) ((void)(w), (void)(is_select))
#define trace_woken(w, r, is_select) ((void)(w), (void)(r), (void)(is_select))
struct trace_idle {
    char unused;
};
#define trace_idle_add(n, w) ((void)(n), (void)(w), false)
#define trace_idle_del(n) ((void)(n))
#define trace_select_cases(cases, n) ((void)(cases), (void)(n))
#define trace_select(cases, n, form, r, gen)                                                       \
    ((void)(cases), (void)(n), (void)(form), (void)(r), (void)(gen))
#define trace_timer_fire(c) ((void)(c))
#define trace_chan_role(c, role) ((void)(c), (void)(role))

#endif /* CHAN_TRACE_BUILD */

#endif
