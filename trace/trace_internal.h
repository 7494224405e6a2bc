/* SPDX-License-Identifier: MIT */
/*
 * trace_internal.h - what the tracer's own files share: names and their bytes (utf8.c); the
 * registry of thread names and live channels (registry.c); the recorded event (record.c
 * records it, json.c writes it) and the trace that chan_trace_stop hands to the JSON writer.
 *
 * Only the tracer's files (trace/) include it. The core never does: its side of the seam is
 * hooks.h.
 */
#ifndef TRACE_INTERNAL_H
#define TRACE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifndef HIDDEN
#define HIDDEN __attribute__((visibility("hidden")))
#endif

/* ---- Names (utf8.c) --------------------------------------------------------------------- */

/* A name as kept: up to NAME_MAX_LEN - 1 bytes and a NUL. */
#define NAME_MAX_LEN 48

/* The length of the well-formed UTF-8 sequence that starts at s (1 to 4 bytes), or 0 when the
 * bytes there are not one. s is NUL-terminated: no read goes past the NUL. */
HIDDEN size_t utf8_len(const unsigned char *s);

/* Copies a name, cut to NAME_MAX_LEN - 1 bytes at most on a character boundary. */
HIDDEN void copy_name(char dst[NAME_MAX_LEN], const char *src);

/* ---- Printing, and freeing (dump.c) ------------------------------------------------------- */

/* Frees what malloc returned after zeroing its first size bytes: the tracer's own copies of
 * channel addresses must not outlive their use in freed memory, where the leak detector's
 * sweep would take them for the program's (explicit_bzero: a memset before free may be
 * optimized away). */
HIDDEN void scrub_free(void *p, size_t size);

/* A name in double quotes, one line whatever its bytes (as Go's %q): quote and backslash
 * escaped, \n \r \t, other control characters and bytes that are not UTF-8 as \xNN. */
HIDDEN void print_quoted(FILE *out, const char *s);
/* What libchan made a channel for (enum chan_role of hooks.h), as the dump, the leak report
 * and a trace's "role" event say it: "timer", "context done", "fd readable", "fd writable";
 * NULL for none. */
HIDDEN const char *role_name(int role);
/* A channel as every report names it (chan_dump, the leak reports, and through
 * trace_chan_print sched/'s deadlock report): chan "jobs" (0x...), chan "t" (timer 0x...),
 * chan (timer) 0x..., chan 0x...; name "" for none, role an enum chan_role. */
HIDDEN void print_chan_label(FILE *out, const void *c, const char *name, int role);
/* A duration in ns, as "1.502 s", "3.000 ms" or "12.345 us". */
HIDDEN void print_duration(FILE *out, int64_t ns);

/* ---- The registry (registry.c) ----------------------------------------------------------- */

/* The name of thread tid (the kernel's thread id): set (0, or -ENOMEM when MAX_TNAMES named
 * threads are alive), copied out (false: it has none), or copied out and forgotten (at its
 * exit). */
HIDDEN int thread_name_set(pid_t tid, const char *name);
HIDDEN bool thread_name_get(pid_t tid, char name[NAME_MAX_LEN]);
HIDDEN bool thread_name_forget(pid_t tid, char name[NAME_MAX_LEN]);

/* The live channels, keyed by address (c is only a key here). registry_add registers c, or
 * names it (name != NULL) whether registered already or not: 0, or -ENOMEM when c had no entry
 * and none could be had (c is left out).
 * registry_del forgets c: call it before c is freed. */
#define REGISTRY_SHARDS 64
HIDDEN int registry_add(const void *c, const char *name);
HIDDEN void registry_del(const void *c);
/* Notes what c is for (enum chan_role, hooks.h), if c is registered. */
HIDDEN void registry_role(const void *c, int role);

/* Copies c's name into name ("" when it has none) and its role into *role (registry_role; 0:
 * none), and returns true; false (name "", role 0) when c is not registered. Takes c's shard
 * lock. */
HIDDEN bool registry_entry(const void *c, char name[NAME_MAX_LEN], int *role);

/* Calls fn(c, name, role, arg) for every channel registered in shard (< REGISTRY_SHARDS), name
 * "" when it has none, role its registry_role (0: none), with that shard's lock held: c is not
 * freed before fn returns. fn must not call into the registry. */
HIDDEN void registry_visit(unsigned shard,
                           void (*fn)(const void *c, const char *name, int role, void *arg),
                           void *arg);

/* For the leak detector, which reads every shard while the world is stopped: between freeze
 * and thaw no channel is registered, named or freed (those calls wait, holding no lock of the
 * registry). registry_visit_frozen calls fn for every entry, without a lock: c, its name (""
 * when it has none), its role (registry_role) and the entry's own memory (libchan's bookkeeping,
 * which holds c's address). It never allocates. */
HIDDEN void registry_freeze(void);
HIDDEN void registry_thaw(void);
HIDDEN void registry_visit_frozen(void (*fn)(const void *c, const char *name, int role,
                                             const void *node, size_t size, void *arg),
                                  void *arg);

/* The threads blocked on no channel (trace_idle_add, hooks.h): fn(w, arg) for each waiter,
 * under the list's lock (w stays alive meanwhile; fn must not call into the registry), or
 * between registry_freeze and registry_thaw without it (the list does not change). */
struct waiter;
HIDDEN void registry_idle_visit(void (*fn)(const struct waiter *w, void *arg), void *arg);
HIDDEN void registry_idle_visit_frozen(void (*fn)(const struct waiter *w, void *arg), void *arg);

/* ---- Trace buffers (record.c), for the leak detector -------------------------------------- */

/* The running trace's event buffers hold channel addresses: the leak detector leaves them out
 * of its sweep. trace_buffers_lock (and unlock) holds off the start and stop of a trace; then
 * trace_buffers_visit calls fn for each buffer, taking no lock and never allocating. Lock
 * order: before registry_freeze. */
HIDDEN void trace_buffers_lock(void);
HIDDEN void trace_buffers_unlock(void);
HIDDEN void trace_buffers_visit(void (*fn)(const void *p, size_t size, void *arg), void *arg);

/* ---- The leak detector (leak.c) --------------------------------------------------------- */

/* CHAN_LEAKCHECK, read by record.c's constructor: registry on, reports at exit. */
HIDDEN void leak_from_env(void);
/* After a SIGQUIT dump (dump.c): a leak check on out, when CHAN_LEAKCHECK asked for it. */
HIDDEN void leak_after_dump(FILE *out);

/* record.c: a leaked waiter found by a leak check, as an event of the running trace on the
 * checking thread's track: c the first channel it waits on (NULL: none), is_g and id its
 * goroutine id or thread id, blocked how long it has been blocked (0: unknown). */
HIDDEN void trace_leak(const void *c, bool send, bool select, bool is_g, int64_t id,
                       int64_t blocked);

/* ---- The recorded event ----------------------------------------------------------------- */

enum ev_kind {
    EV_MAKE = 1,
    EV_FREE,
    EV_OP,
    EV_WAKE,
    EV_CLOSE,
    EV_BLOCK,
    EV_WOKEN,
    EV_SELECT,
    EV_TIMER,
    EV_NAME,
    EV_CASE,
    EV_LEAK,
    EV_ROLE /* aux: enum chan_role */
};

/* bits of tev.bits */
#define B_SEND 1u      /* direction: send (else receive) */
#define B_CLOSE 2u     /* EV_WAKE: woken by a close */
#define B_HASVAL 4u    /* val holds the value (elements of 1, 2, 4 or 8 bytes) */
#define B_HASVAL2 8u   /* val2 holds a second value (a buffered receive that woke a sender) */
#define B_SELECT 16u   /* the operation is a select */
#define B_FORM_SHIFT 5 /* two bits: enum trace_form */
#define B_NOCAP 128u   /* EV_OP, EV_SELECT: capacity and value unknown (see trace_op) */

struct tev {
    int64_t ts;
    const void *c; /* the channel (a key only) */
    uint64_t flow; /* EV_WAKE: the flow it starts; EV_WOKEN: the one it ends; EV_OP/SELECT: woke */
    int64_t val, val2; /* leak: val2 is how long the waiter has been blocked (ns, 0: unknown);
                          block of a wait with a deadline: val2 is the deadline */
    uint64_t task;     /* chan_trace_task_hook's id, 0 */
    uint32_t aux;      /* cap (make, wake), case index (select), cases (block), name index;
                          leak: 1 for a goroutine (val its id), 0 for a thread (val its tid) */
    int16_t res;       /* 0 or -errno; select: 0 ok, -EPIPE closed, or the error */
    uint8_t kind, bits;
};

/* ---- A stopped trace, for the writer (json.c) ------------------------------------------- */

/* One thread's events, in the order it recorded them. */
struct track {
    pid_t tid;               /* 0: the slot was never used */
    char name[NAME_MAX_LEN]; /* the thread's name; "": unnamed */
    const struct tev *ev;
    uint32_t n;
};

struct trace_log {
    int64_t t0;       /* chan_now() at chan_trace_start */
    uint64_t dropped; /* events lost */
    const struct track *tracks;
    uint32_t ntracks;
    const char (*names)[NAME_MAX_LEN]; /* channel names, indexed by EV_NAME's aux */
    uint32_t nnames;
};

/* Writes the trace to f as Chrome Trace Event Format JSON: 0, or -ENOMEM (nothing written).
 * The caller flushes f and checks it for write errors. */
HIDDEN int trace_json_write(FILE *f, const struct trace_log *log);

#endif
