/* SPDX-License-Identifier: MIT */
/*
 * ring.c - the buffer of a buffered channel and the whole protocol of the ring's SLOW bit: the
 * lock-free ring (BUF_RING), Go's buffer under the lock (BUF_LOCKED, BUF_COUNT), and the one
 * bit that hands a ring over between its lock-free paths and the channel lock.
 *
 * The SLOW bit, kept in both ring positions, says "the lock decides". While it is clear, a send
 * that finds room and a receive that finds a value complete on the ring without the lock; while
 * it is set, every operation takes the lock and is served exactly as Go serves it. Whenever the
 * channel lock is free, the bit is set exactly when a sudog is queued on the channel or the
 * channel is closed:
 *   - it is set by an operation on its way to waiting, before its last look at the buffer
 *     (buf_put_last, buf_take_last), so no lock-free operation slips in between that look and
 *     the queueing of its waiter (waiter_enqueue, which requires the bit); and on close, for good
 *     (mark_closed);
 *   - it is cleared, on an open channel, as the last waiter leaves: its owner unlinks it
 *     (waiter_unlink), or a waker took it and moved its value (waiter_left); and when a last
 *     look that set it ends without a waiter (the look found the buffer ready, or a select will
 *     not wait after all: wait_cancel).
 * Only this file sets or clears the bit (ring_freeze, ring_settle). model/ring.pml checks the
 * protocol with spin, step by step.
 *
 * Synchronization (who calls, holding what, alongside what; "any" = any thread or task):
 *
 *   ring_trysend, ring_tryrecv   lock: none. Any, on a BUF_RING channel, alongside every other
 *       function here (any number of senders and receivers). RING_SLOW as soon as the bit is
 *       set; RING_NO only while it is clear (open, nobody waits). Orders: the CAS that claims a
 *       position is seq_cst and compares the bit with the position, so it either comes before a
 *       freeze's fetch_or (then the lock holder waits for its stamp) or fails; the stamp's
 *       store (release) and load (acquire) order the value's copy in before the copy out.
 *   buf_len                      lock: none. Any, alongside everything. A length that held at
 *       one instant (tail, head, tail again, seq_cst, until tail stands still); count relaxed.
 *   buf_put_locked, buf_take_locked   lock: c->lock held. Alongside the lock-free paths, which
 *       the ring's locked push and pop race by the same CAS and stamps (ignoring the bit and
 *       keeping it), waiting for a claimed slot's stamp: so "full" and "empty" are never
 *       concluded while a claimed operation is still in flight.
 *   buf_put_last, buf_take_last  lock: c->lock held, by an operation that found the buffer full
 *       (empty) under it and may wait. Sets the bit (seq_cst fetch_or of tail, then of head)
 *       before it looks: from then on, until the lock is dropped, only the lock holder moves
 *       values. true: done, the bit as before; false: it stays set.
 *   waiter_enqueue               lock: sg->c->lock held, after this operation's last look on
 *       sg->c returned false (asserted in CHAN_DEBUG builds: the bit is set).
 *   waiter_unlink                lock: sg->c->lock held, by sg's owner (timed out, or woken
 *       through another channel); sg is queued. Clears the bit if sg was the last waiter of an
 *       open channel (seq_cst fetch_and of tail, then of head).
 *   waiter_left                  lock: c->lock held, by a waker after waitq_dequeue took a
 *       waiter off c and its value moved (chan_send_to, chan_recv_from): as waiter_unlink. Not
 *       before the value moved: chan_recv_from takes the head of a full ring and puts the
 *       sender's value at its tail, and no lock-free sender may take that slot in between.
 *   wait_cancel                  lock: c->lock held, by a select whose last look set the bit on
 *       c and which will not queue there: as waiter_unlink.
 *   mark_closed                  lock: c->lock held, once (closechan). Sets closed, then the bit
 *       for good: every later operation takes the lock and sees closed.
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
static inline __attribute__((always_inline)) int ring_push(struct chan *c, const void *elem,
                                                           bool locked)
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
                                                      memory_order_seq_cst, memory_order_relaxed)) {
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
static inline __attribute__((always_inline)) int ring_pop(struct chan *c, void *elem, bool locked)
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
                                                      memory_order_seq_cst, memory_order_relaxed)) {
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

/* ring_push and ring_pop are compiled once per kind of caller: inlined into the lock-free
 * ring_trysend and ring_tryrecv (no `locked` test left, no further call: the fast paths), and
 * out of line with locked = true for the buffer under the lock, whose functions then stay small
 * for the other kinds. (Left to itself, GCC -O2 keeps one shared copy of each and calls it from
 * both: callgrind, bench seq cap 1024, 98 instructions per send and 90 per receive instead of
 * 93 and 85; inlining both copies instead costs seq cap 1: 95 -> 104 per send.) */
int ring_trysend(struct chan *c, const void *elem) { return ring_push(c, elem, false); }

int ring_tryrecv(struct chan *c, void *elem) { return ring_pop(c, elem, false); }

__attribute__((noinline)) static int ring_push_locked(struct chan *c, const void *elem)
{
    return ring_push(c, elem, true);
}

__attribute__((noinline)) static int ring_pop_locked(struct chan *c, void *elem)
{
    return ring_pop(c, elem, true);
}

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

/* ---- The buffer under the lock --------------------------------------------------------------- */

/* Without a ring: Go's buffer, cap slots of elemsize bytes (none for signal-only channels) with
 * the indexes sendx and recvx, all under the lock; count is also read by the fast paths. */
bool buf_put_locked(struct chan *c, const void *elem)
{
    ASSERT(lock_held(&c->lock));
    if (c->kind == BUF_RING)
        return ring_push_locked(c, elem) == RING_OK;
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
    ASSERT(lock_held(&c->lock));
    if (c->kind == BUF_RING)
        return ring_pop_locked(c, elem) == RING_OK;
    size_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (n == 0)
        return false;
    copy_elem(c, elem, c->buf + (size_t)c->recvx * c->elemsize);
    c->recvx = c->recvx + 1 == c->cap ? 0 : c->recvx + 1;
    atomic_store_explicit(&c->count, n - 1, memory_order_relaxed);
    return true;
}

/* ---- The SLOW bit --------------------------------------------------------------------------- */

/* Sets the bit in both positions (no-op without a ring, or when it is set already: under the
 * lock, the two agree). */
static void ring_freeze(struct chan *c)
{
    ASSERT(lock_held(&c->lock));
    if (c->kind != BUF_RING || (atomic_load_explicit(&c->rp->tail, memory_order_relaxed) & c->slow))
        return;
    atomic_fetch_or_explicit(&c->rp->tail, c->slow, memory_order_seq_cst);
    atomic_fetch_or_explicit(&c->rp->head, c->slow, memory_order_seq_cst);
}

/* Clears it again when the channel is open and nobody waits. */
static void ring_settle(struct chan *c)
{
    ASSERT(lock_held(&c->lock));
    if (c->kind != BUF_RING ||
        !(atomic_load_explicit(&c->rp->tail, memory_order_relaxed) & c->slow) ||
        !waitq_empty(&c->sendq) || !waitq_empty(&c->recvq) ||
        atomic_load_explicit(&c->closed, memory_order_relaxed))
        return;
    atomic_fetch_and_explicit(&c->rp->tail, ~c->slow, memory_order_seq_cst);
    atomic_fetch_and_explicit(&c->rp->head, ~c->slow, memory_order_seq_cst);
}

#ifdef CHAN_DEBUG
bool slow_bit_agrees(const struct chan *c)
{
    if (c->kind != BUF_RING)
        return true;
    struct chan *m = (struct chan *)c;
    bool should = !waitq_empty(&m->sendq) || !waitq_empty(&m->recvq) ||
                  atomic_load_explicit(&m->closed, memory_order_relaxed);
    bool t = atomic_load_explicit(&c->rp->tail, memory_order_relaxed) & c->slow;
    bool h = atomic_load_explicit(&c->rp->head, memory_order_relaxed) & c->slow;
    return t == should && h == should;
}
#endif

/* The last look (see the table above). Without a ring nothing moves without the lock, so the
 * caller's look under the lock still holds: false at once. */
bool buf_put_last(struct chan *c, const void *elem)
{
    ASSERT(!atomic_load_explicit(&c->closed, memory_order_relaxed));
    if (c->kind != BUF_RING)
        return false;
    ring_freeze(c);
    if (!buf_put_locked(c, elem))
        return false;
    ring_settle(c);
    ASSERT(slow_bit_agrees(c));
    return true;
}

bool buf_take_last(struct chan *c, void *elem)
{
    ASSERT(!atomic_load_explicit(&c->closed, memory_order_relaxed) || c->kind == BUF_FD);
    if (c->kind != BUF_RING)
        return false;
    ring_freeze(c);
    if (!buf_take_locked(c, elem))
        return false;
    ring_settle(c);
    ASSERT(slow_bit_agrees(c));
    return true;
}

void waiter_enqueue(struct sudog *sg)
{
    struct chan *c = sg->c;
    ASSERT(!atomic_load_explicit(&c->closed, memory_order_relaxed) ||
           (atomic_load_explicit(&c->closed, memory_order_relaxed) == FD_OPEN && !sg->is_send));
    waitq_enqueue(sg->is_send ? &c->sendq : &c->recvq, sg);
    ASSERT(slow_bit_agrees(c)); /* the bit is set: the last look came first */
}

void waiter_unlink(struct sudog *sg)
{
    struct chan *c = sg->c;
    ASSERT(atomic_load_explicit(&sg->w->done, memory_order_relaxed)); /* no waker may take it */
    waitq_unlink(sg->is_send ? &c->sendq : &c->recvq, sg);
    ring_settle(c);
    ASSERT(slow_bit_agrees(c));
}

void waiter_left(struct chan *c)
{
    ring_settle(c);
    ASSERT(slow_bit_agrees(c));
}

void wait_cancel(struct chan *c)
{
    ring_settle(c);
    ASSERT(slow_bit_agrees(c));
}

void mark_closed(struct chan *c)
{
    ASSERT(lock_held(&c->lock) && !atomic_load_explicit(&c->closed, memory_order_relaxed));
    atomic_store_explicit(&c->closed, 1, memory_order_release);
    ring_freeze(c);
}
