/* SPDX-License-Identifier: MIT */
/*
 * heap.h - a binary min-heap of deadlines, intrusive and index-tracking: the timer queue of
 * time/timer.c (Go's timer heap) and the timers of parked Gs in sched/proc.c.
 *
 * An element embeds a struct heap_node, which holds its key (when) and its slot in the heap's
 * array, so that any element is removed in O(log n) without a search (Go's timer keeps its
 * heap index the same way). The heap owns no memory: the caller allocates the array with its
 * own allocator and hands it over with heap_move, before it pushes more than the array holds;
 * heap_push then never fails. Nothing here locks: each heap is guarded by its owner's lock.
 *
 * Header-only and static inline: one copy of the sift loops serves both users, compiled into
 * each where it is used.
 */
#ifndef TIME_HEAP_H
#define TIME_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HEAP_NONE SIZE_MAX /* heap_node.idx of an element in no heap */

struct heap_node {
    int64_t when; /* the key: the smallest is at the top; set before heap_push */
    size_t idx;   /* the slot in the heap's array, or HEAP_NONE */
};

struct heap {
    struct heap_node **a; /* a[0] the earliest; a[i]'s children a[2i + 1] and a[2i + 2] */
    size_t len, cap;
};

static inline void heap_node_init(struct heap_node *n) { n->idx = HEAP_NONE; }

static inline bool heap_queued(const struct heap_node *n) { return n->idx != HEAP_NONE; }

/* The element with the earliest deadline, or NULL when the heap is empty. */
static inline struct heap_node *heap_min(const struct heap *h) { return h->len ? h->a[0] : NULL; }

static inline void heap_place(struct heap *h, size_t i, struct heap_node *n)
{
    h->a[i] = n;
    n->idx = i;
}

static inline void heap_sift_up(struct heap *h, size_t i)
{
    struct heap_node *n = h->a[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->a[parent]->when <= n->when)
            break;
        heap_place(h, i, h->a[parent]);
        i = parent;
    }
    heap_place(h, i, n);
}

static inline void heap_sift_down(struct heap *h, size_t i)
{
    struct heap_node *n = h->a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && h->a[c + 1]->when < h->a[c]->when)
            c++;
        if (h->a[c]->when >= n->when)
            break;
        heap_place(h, i, h->a[c]);
        i = c;
    }
    heap_place(h, i, n);
}

/* Adds n (not in a heap; n->when set). The array must have room: h->len < h->cap. */
static inline void heap_push(struct heap *h, struct heap_node *n)
{
    size_t i = h->len++;
    heap_place(h, i, n);
    heap_sift_up(h, i);
}

/* Takes n (in h) out: the last element fills its slot and moves down or up to its place. */
static inline void heap_remove(struct heap *h, struct heap_node *n)
{
    size_t i = n->idx;
    struct heap_node *last = h->a[--h->len];
    n->idx = HEAP_NONE;
    if (i < h->len) {
        heap_place(h, i, last);
        heap_sift_down(h, i);
        heap_sift_up(h, last->idx);
    }
}

/* Gives n (in h) the key when and moves it to its place: up if the key fell, down if it rose
 * (Go's modtimer and runtimer re-sift one timer in place the same way). */
static inline void heap_update(struct heap *h, struct heap_node *n, int64_t when)
{
    int64_t old = n->when;
    n->when = when;
    if (when < old)
        heap_sift_up(h, n->idx);
    else if (when > old)
        heap_sift_down(h, n->idx);
}

/* Moves the heap into the array a of cap slots (cap >= h->len) and returns the old array (NULL
 * at first), for the caller to free with the allocator it came from. */
static inline struct heap_node **heap_move(struct heap *h, struct heap_node **a, size_t cap)
{
    struct heap_node **old = h->a;
    if (h->len)
        memcpy(a, old, h->len * sizeof *a);
    h->a = a;
    h->cap = cap;
    return old;
}

#endif
