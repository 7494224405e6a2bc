/*
 * ring.c - the buffer of a buffered channel: the lock-free ring (capacities from RING_MIN_CAP,
 * elements of one byte or more) with its SLOW bit, and Go's buffer under the lock (smaller
 * capacities, signal-only channels).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>

#include "chan_internal.h"

/* ---- The lock-free ring ---------------------------------------------------------------------
 *
 * Positions count sends (tail) and receives (head): pos = lap * one_lap + index, with the SLOW
 * bit between the index and the lap bits. Slot `index` carries a stamp: pos when it is free for
 * the send at pos, pos + 1 when it holds the value for the receive at pos. A sender claims its
 * position by CAS on tail, writes the value, then publishes the stamp; a receiver likewise on
 * head, and frees the slot for the next lap. A CAS compares the whole word, SLOW bit included,
 * so a fast operation fails as soon as the bit is set, and the lock holder sees at most the
 * operations already past their CAS, which finish without any lock. */

static inline uint64_t pos_next(const struct chan *c, uint64_t pos)
{
    if ((pos & (c->slow - 1)) + 1 < c->cap)
        return pos + 1;
    return (pos & ~(c->one_lap - 1)) + c->one_lap; /* index 0 of the next lap */
}

static inline unsigned char *slot_of(const struct chan *c, uint64_t pos)
{
    return c->buf + (size_t)(pos & (c->slow - 1)) * c->slotsize;
}

/* Waiting for an operation that has claimed a position but not yet published its stamp. */
static void ring_backoff(unsigned *spins)
{
    if (++*spins < 64)
        caa_cpu_relax();
    else
        sched_yield(); /* its thread may have been preempted */
}

/* Enqueues a copy of *elem. Unlocked callers get RING_SLOW once the bit is set; locked ones
 * (locked = true) go on regardless and keep the bit as it is. */
static inline int ring_push(struct chan *c, const void *elem, bool locked)
{
    _Atomic uint64_t *tailp = &c->rp->tail;
    uint64_t t = atomic_load_explicit(tailp, memory_order_relaxed);
    for (unsigned spins = 0;;) {
        if (!locked && (t & c->slow))
            return RING_SLOW;
        uint64_t pos = t & ~c->slow;
        unsigned char *slot = slot_of(c, pos);
        _Atomic uint64_t *stamp = (_Atomic uint64_t *)slot;
        uint64_t st = atomic_load_explicit(stamp, memory_order_acquire);
        if (st == pos) {
            if (atomic_compare_exchange_weak_explicit(tailp, &t, pos_next(c, pos) | (t & c->slow),
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                copy_elem(c, slot + sizeof(uint64_t), elem);
                atomic_store_explicit(stamp, pos + 1, memory_order_release);
                return RING_OK;
            }
            continue; /* t holds the new tail */
        }
        if (st + c->one_lap == pos + 1) { /* still the value of the previous lap: full? */
            atomic_thread_fence(memory_order_seq_cst);
            uint64_t h = atomic_load_explicit(&c->rp->head, memory_order_relaxed) & ~c->slow;
            if (h + c->one_lap == pos)
                return RING_NO;
        }
        ring_backoff(&spins); /* a receiver frees this slot, or another sender took it */
        t = atomic_load_explicit(tailp, memory_order_relaxed);
    }
}

/* Dequeues into *elem (NULL: discard). As ring_push for `locked`. */
static inline int ring_pop(struct chan *c, void *elem, bool locked)
{
    _Atomic uint64_t *headp = &c->rp->head;
    uint64_t h = atomic_load_explicit(headp, memory_order_relaxed);
    for (unsigned spins = 0;;) {
        if (!locked && (h & c->slow))
            return RING_SLOW;
        uint64_t pos = h & ~c->slow;
        unsigned char *slot = slot_of(c, pos);
        _Atomic uint64_t *stamp = (_Atomic uint64_t *)slot;
        uint64_t st = atomic_load_explicit(stamp, memory_order_acquire);
        if (st == pos + 1) {
            if (atomic_compare_exchange_weak_explicit(headp, &h, pos_next(c, pos) | (h & c->slow),
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                copy_elem(c, elem, slot + sizeof(uint64_t));
                atomic_store_explicit(stamp, pos + c->one_lap, memory_order_release);
                return RING_OK;
            }
            continue;
        }
        if (st == pos) { /* free for this lap's send: empty? */
            atomic_thread_fence(memory_order_seq_cst);
            uint64_t t = atomic_load_explicit(&c->rp->tail, memory_order_relaxed) & ~c->slow;
            if (t == pos)
                return RING_NO;
        }
        ring_backoff(&spins); /* a sender is writing this slot, or another receiver took it */
        h = atomic_load_explicit(headp, memory_order_relaxed);
    }
}

int ring_trysend(struct chan *c, const void *elem) { return ring_push(c, elem, false); }

int ring_tryrecv(struct chan *c, void *elem) { return ring_pop(c, elem, false); }

static size_t ring_len(const struct chan *c)
{
    for (;;) {
        uint64_t t = atomic_load_explicit(&c->rp->tail, memory_order_seq_cst) & ~c->slow;
        uint64_t h = atomic_load_explicit(&c->rp->head, memory_order_seq_cst) & ~c->slow;
        if ((atomic_load_explicit(&c->rp->tail, memory_order_seq_cst) & ~c->slow) != t)
            continue;
        uint64_t hi = h & (c->slow - 1), ti = t & (c->slow - 1);
        if (hi < ti)
            return ti - hi;
        if (hi > ti)
            return c->cap - hi + ti;
        return t == h ? 0 : c->cap;
    }
}

size_t buf_len(const struct chan *c)
{
    if (c->kind == BUF_RING)
        return ring_len(c);
    return atomic_load_explicit(&((struct chan *)c)->count, memory_order_relaxed);
}

void ring_freeze(struct chan *c)
{
    if (c->kind != BUF_RING ||
        (atomic_load_explicit(&c->rp->tail, memory_order_relaxed) & c->slow))
        return;
    atomic_fetch_or_explicit(&c->rp->tail, c->slow, memory_order_seq_cst);
    atomic_fetch_or_explicit(&c->rp->head, c->slow, memory_order_seq_cst);
}

void ring_settle(struct chan *c)
{
    if (c->kind != BUF_RING ||
        !(atomic_load_explicit(&c->rp->tail, memory_order_relaxed) & c->slow) ||
        !waitq_empty(&c->sendq) || !waitq_empty(&c->recvq) ||
        atomic_load_explicit(&c->closed, memory_order_relaxed))
        return;
    atomic_fetch_and_explicit(&c->rp->tail, ~c->slow, memory_order_seq_cst);
    atomic_fetch_and_explicit(&c->rp->head, ~c->slow, memory_order_seq_cst);
}

/* ---- The buffer under the lock ---------------------------------------------------------------- */

/* Without a ring: Go's buffer, cap slots of elemsize bytes (none for signal-only channels) with
 * the indexes sendx and recvx, all under the lock; count is also read by the fast paths. */
bool buf_put_locked(struct chan *c, const void *elem)
{
    if (c->kind == BUF_RING)
        return ring_push(c, elem, true) == RING_OK;
    size_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (n == c->cap)
        return false; /* also every unbuffered channel */
    copy_elem(c, c->buf + (size_t)c->sendx * c->elemsize, elem);
    c->sendx = c->sendx + 1 == c->cap ? 0 : c->sendx + 1;
    atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
    return true;
}

bool buf_take_locked(struct chan *c, void *elem)
{
    if (c->kind == BUF_RING)
        return ring_pop(c, elem, true) == RING_OK;
    size_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (n == 0)
        return false;
    copy_elem(c, elem, c->buf + (size_t)c->recvx * c->elemsize);
    c->recvx = c->recvx + 1 == c->cap ? 0 : c->recvx + 1;
    atomic_store_explicit(&c->count, n - 1, memory_order_relaxed);
    return true;
}
