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

/* ---- The registry (registry.c) ----------------------------------------------------------- */

/* The name of thread tid (the kernel's thread id): set (0, or -ENOMEM when MAX_TNAMES named
 * threads are alive), copied out (false: it has none), or copied out and forgotten (at its
 * exit). */
HIDDEN int thread_name_set(pid_t tid, const char *name);
HIDDEN bool thread_name_get(pid_t tid, char name[NAME_MAX_LEN]);
HIDDEN bool thread_name_forget(pid_t tid, char name[NAME_MAX_LEN]);

/* The live channels, keyed by address (c is only a key here). registry_add registers c, or
 * names it (name != NULL) whether registered already or not; without memory, c is left out.
 * registry_del forgets c: call it before c is freed. */
#define REGISTRY_SHARDS 64
HIDDEN void registry_add(const void *c, const char *name);
HIDDEN void registry_del(const void *c);

/* Copies c's name into name and returns true; false when c has none (not registered, or
 * registered without a name). Takes c's shard lock. */
HIDDEN bool registry_name(const void *c, char name[NAME_MAX_LEN]);

/* Calls fn(c, name, arg) for every channel registered in shard (< REGISTRY_SHARDS), name ""
 * when it has none, with that shard's lock held: c is not freed before fn returns. fn must not
 * call into the registry. */
HIDDEN void registry_visit(unsigned shard, void (*fn)(const void *c, const char *name, void *arg),
                           void *arg);

/* ---- The recorded event ----------------------------------------------------------------- */

enum ev_kind {
    EV_MAKE = 1, EV_FREE, EV_OP, EV_WAKE, EV_CLOSE, EV_BLOCK, EV_WOKEN, EV_SELECT, EV_TIMER, EV_NAME,
    EV_CASE
};

/* bits of tev.bits */
#define B_SEND 1u     /* direction: send (else receive) */
#define B_CLOSE 2u    /* EV_WAKE: woken by a close */
#define B_HASVAL 4u   /* val holds the value (elements of 1, 2, 4 or 8 bytes) */
#define B_HASVAL2 8u  /* val2 holds a second value (a buffered receive that woke a sender) */
#define B_SELECT 16u  /* the operation is a select */
#define B_FORM_SHIFT 5 /* two bits: enum trace_form */
#define B_NOCAP 128u   /* EV_OP, EV_SELECT: capacity and value unknown (see trace_op) */

struct tev {
    int64_t ts;
    const void *c;  /* the channel (a key only) */
    uint64_t flow;  /* EV_WAKE: the flow it starts; EV_WOKEN: the one it ends; EV_OP/SELECT: woke */
    int64_t val, val2;
    uint64_t task;  /* chan_trace_task_hook's id, 0 */
    uint32_t aux;   /* cap (make, wake), case index (select), cases (block), name index */
    int16_t res;    /* 0 or -errno; select: 0 ok, -EPIPE closed, or the error */
    uint8_t kind, bits;
};

/* ---- A stopped trace, for the writer (json.c) ------------------------------------------- */

/* One thread's events, in the order it recorded them. */
struct track {
    pid_t tid;                /* 0: the slot was never used */
    char name[NAME_MAX_LEN];  /* the thread's name; "": unnamed */
    const struct tev *ev;
    uint32_t n;
};

struct trace_log {
    int64_t t0;                        /* chan_now() at chan_trace_start */
    uint64_t dropped;                  /* events lost */
    const struct track *tracks;
    uint32_t ntracks;
    const char (*names)[NAME_MAX_LEN]; /* channel names, indexed by EV_NAME's aux */
    uint32_t nnames;
};

/* Writes the trace to f as Chrome Trace Event Format JSON: 0, or -ENOMEM (nothing written).
 * The caller flushes f and checks it for write errors. */
HIDDEN int trace_json_write(FILE *f, const struct trace_log *log);

#endif
