/* SPDX-License-Identifier: MIT */
/*
 * world.h - the process as a conservative collector sees it (world.c): its threads, stopped
 * and resumed with a signal; its memory mappings; a sweep of their populated pages for words
 * equal to one of a set of addresses; and arrays that may grow while the world is stopped.
 * Only the leak detector (leak.c) uses it. Nothing here knows about channels.
 *
 * Between world_stop and world_resume the caller must not allocate with malloc, print, or take
 * any lock a stopped thread may hold: everything below may be called then, and uses raw system
 * calls and memory of its own mappings. None of it is async-signal-safe, and one stop at a time
 * may be in progress in the process (the leak detector serializes its checks).
 */
#ifndef TRACE_WORLD_H
#define TRACE_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef HIDDEN
#define HIDDEN __attribute__((visibility("hidden")))
#endif

/* ---- Arrays in mappings of their own ------------------------------------------------------- */

/* n elements of esz bytes at p, room for cap; grown by mremap (p may move), freed by munmap.
 * Zero-initialized struct vec {.esz = ...} is empty. */
struct vec {
    char *p;
    size_t n, cap, esz;
};

/* Room for n more elements: a pointer to the first of them (not counted yet: the caller adds n
 * to v->n), or NULL when memory is short. */
HIDDEN void *vec_room(struct vec *v, size_t n);
/* One more element, zeroed and counted; NULL when memory is short. */
HIDDEN void *vec_push(struct vec *v);
HIDDEN void vec_free(struct vec *v);

static inline void *vec_at(const struct vec *v, size_t i) { return v->p + i * v->esz; }

/* ---- A set of addresses -------------------------------------------------------------------- */

/* The addresses looked for by a sweep (open addressing; 0 is never a member), each with the
 * index it was added with. */
struct addrset {
    uintptr_t *keys;
    uint32_t *vals;
    size_t mask; /* table size - 1 */
    size_t count;
    uintptr_t min, max; /* of the members */
    uintptr_t lowbits;  /* bits that are 0 in every member (a quick filter) */
    struct vec mem;
};

/* Makes room for n members: 0 or -ENOMEM. addrset_add grows the table as needed: 0 or
 * -ENOMEM (the set is as it was). */
HIDDEN int addrset_init(struct addrset *s, size_t n);
HIDDEN int addrset_add(struct addrset *s, uintptr_t key, uint32_t val);
HIDDEN void addrset_free(struct addrset *s);

/* The index key was added with, or -1. */
static inline int64_t addrset_get(const struct addrset *s, uintptr_t key)
{
    if ((key & s->lowbits) || key - s->min > s->max - s->min || !s->keys)
        return -1;
    size_t i = (size_t)((key >> 4) * 0x9e3779b97f4a7c15ull) & s->mask;
    while (s->keys[i]) {
        if (s->keys[i] == key)
            return s->vals[i];
        i = (i + 1) & s->mask;
    }
    return -1;
}

/* ---- Threads ------------------------------------------------------------------------------- */

struct wthread {
    pid_t tid;
    bool self;      /* the caller of world_stop */
    bool answered;  /* stopped in the signal handler: sp is below every register it had */
    bool running;   /* did not answer, and was not in a system call either */
    const char *sp; /* an address of its stack at the stop (NULL: unknown) */
    /* Above sp, the part of its signal frame that holds nothing of the program's: the saved
     * vector registers of a thread stopped in a system call (dead by the ABI), up to the red
     * zone. Empty (lo == hi) when there is none. */
    const char *dead_lo, *dead_hi;
};

/* ---- Mappings ------------------------------------------------------------------------------ */

enum {
    WM_READ = 1,
    WM_WRITE = 2,
    WM_SHARED = 4,
    WM_ANON = 8,    /* no file: anonymous memory, or [heap], [stack], [anon:...] */
    WM_STACK = 16,  /* [stack]: the main thread's */
    WM_HEAP = 32,   /* [heap]: the brk heap */
    WM_DEVICE = 64, /* a device file other than /dev/zero: reading it may act on the device */
};

struct wmap {
    uintptr_t lo, hi;
    unsigned flags;
};

/* ---- The world ------------------------------------------------------------------------------ */

struct world {
    struct vec threads; /* struct wthread, the caller's first */
    struct vec maps;    /* struct wmap, by address */
    size_t unseen;      /* threads that did not stop: their registers were not seen */
    size_t stopped;     /* threads stopped in the handler */
    int pagemap;        /* /proc/self/pagemap, or -1 */
    bool vm_read;       /* process_vm_readv works on ourselves (else only in-place reads,
                           safe while every thread is stopped: unseen == 0) */
    struct vec buf;     /* the sweep's reading buffer */
};

/* Stops every other thread of the process (CHAN_STOP_SIGNAL: each runs a handler that waits
 * until world_resume), and lists them in w->threads, the caller first with self_sp as its
 * stack pointer. Threads that start meanwhile are stopped too. A thread that does not answer
 * (it blocks the signal; or TSan holds the signal back until it calls into its runtime) is
 * waited for up to about half a second while it runs, and not at all while it sleeps in a
 * system call (its stack pointer is then read from /proc). 0, or -ENOMEM (nothing stopped). */
HIDDEN int world_stop(struct world *w, const char *self_sp);
HIDDEN void world_resume(struct world *w);

/* Reads /proc/self/maps into w->maps: 0, or -errno. */
HIDDEN int world_read_maps(struct world *w);

/* The mapping that contains a, or NULL. */
HIDDEN const struct wmap *world_map_of(const struct world *w, uintptr_t a);

/* Ranges a sweep leaves out (the caller's own arrays), read afresh for each chunk read: an
 * array that grows during the sweep may move. */
struct wskip {
    const struct vec *const *vecs;
    size_t n;
};

/* Reads the populated pages of [lo, hi) (present or swapped out, per /proc/self/pagemap; all
 * of them without it) and calls hit(addr, value, arg) for every aligned word whose value is in
 * set, addr being where it lies. Pages that cannot be read are skipped. */
HIDDEN void world_sweep(struct world *w, uintptr_t lo, uintptr_t hi, const struct addrset *set,
                        const struct wskip *skip,
                        void (*hit)(uintptr_t addr, uintptr_t value, int64_t idx, void *arg),
                        void *arg);

/* Copies n bytes at src, memory of this process, into dst: true, or false when they cannot all
 * be read. Unseen by the sanitizers: for fields that other threads, stopped, wrote without a
 * lock that orders them with this read. */
HIDDEN bool world_read(void *dst, const void *src, size_t n);

/* Releases what world_stop and world_read_maps took (after world_resume). */
HIDDEN void world_free(struct world *w);

#endif
