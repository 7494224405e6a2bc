/*
 * trace_internal.h - what the tracer's own files share: names and their bytes (utf8.c), the
 * recorded event (record.c records it, json.c writes it) and the trace that chan_trace_stop
 * hands to the JSON writer.
 *
 * Only the tracer's files (trace/) include it. The core never does: its side of the seam is
 * trace.h.
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
