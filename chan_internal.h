/* SPDX-License-Identifier: MIT */
/*
 * chan_internal.h - what chan.c, ring.c, select.c and sudog.c share: struct chan (Go's hchan),
 * the sudog and its waiter, wait queues, the channel lock, and parking.
 *
 * Invariants (after the top of Go's runtime/chan.go):
 *
 *  - A channel's closed flag and both wait queues are guarded by c->lock, and so is the buffer
 *    of a channel without a ring (its slots, indexes and count). Fields also read without the
 *    lock (count, closed, the queue heads) are atomics, written only under the lock; those
 *    lock-free readers are the fast paths of the non-blocking operations and of select's first
 *    pass, which only ever conclude "not ready".
 *  - The lock-free ring of a buffered channel (struct ringpos, ring.c) is the one exception:
 *    while its SLOW bit is clear, sends and receives move values through it without the lock.
 *    The bit is set, under the lock, whenever a sudog is queued on the channel or it is closed
 *    (an operation sets it before its last look at the ring on the way to queueing a waiter),
 *    and cleared only under the lock when neither holds. So a waiter is never queued beside a
 *    fast path that could miss it, and waiters are served exactly as Go serves them. Only
 *    ring.c sets or clears it: chan.c and select.c queue and unlink waiters through it.
 *  - At most one of c->sendq and c->recvq holds sudogs that can still be woken: a sender queues
 *    only when no receiver is waiting and the buffer is full, and vice versa. (Sudogs whose
 *    waiter is already done may linger in either queue until their owner unlinks them.)
 *    For a buffered channel, a waiting sender implies a full buffer and a waiting receiver an
 *    empty one.
 *  - Lock order: a select locks its channels in address order, each once. No other path holds
 *    two channel locks.
 *  - Every blocked operation has one waiter (in its own stack frame) and one sudog per channel
 *    it waits on; a select's sudogs share the waiter. waiter->done is the one word that decides
 *    who completes the operation: a waker (under its channel's lock) or the operation's own
 *    time-out (CAS 0 -> 1). A waker that loses the CAS skips that sudog and leaves it queued:
 *    its owner unlinks it.
 *  - The waker that wins unlinks every sudog of that waiter from its own channel (both queues),
 *    moves the value while holding the lock, records which sudog fired, and calls unpark only
 *    after it has dropped the lock. The woken operation never touches that channel again (so
 *    chan_free may follow chan_close at once); a woken select relocks only its other channels.
 *  - After unpark, the waker touches neither the waiter nor the sudog: they live in the woken
 *    caller's stack frame, which may be gone. It reads the scheduler and task before unpark.
 *  - Parking is permit-based: unpark may come before park. An operation that timed out but lost
 *    the done word parks once more, without deadline, to consume the unpark on its way.
 */
#ifndef CHAN_INTERNAL_H
#define CHAN_INTERNAL_H

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chan.h"
#include "seam.h" /* HIDDEN; the allocator, futex and waiter helpers the rooms above share */

/* caa_cpu_relax() and CAA_CACHE_LINE_SIZE: liburcu's urcu/arch.h where it is installed (seam.h
 * looked), else the values it has for this machine, so that the drop-in pair needs no liburcu:
 * on x86-64 the pause instruction and 128 (the spatial prefetcher fetches lines in pairs);
 * elsewhere (aarch64 included, as in liburcu 0.13) a compiler barrier and 64. */
#ifndef CHAN_NO_URCU
#include <urcu/arch.h>
#elif defined(__x86_64__) || defined(__i386__)
#define caa_cpu_relax() __asm__ __volatile__("rep; nop" : : : "memory")
#define CAA_CACHE_LINE_SIZE 128
#else
#define caa_cpu_relax() __asm__ __volatile__("" : : : "memory")
#define CAA_CACHE_LINE_SIZE 64
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- Internal invariants -------------------------------------------------------------------- */

/* ASSERT(cond) states a precondition or an invariant of the library itself (Go's throw,
 * crossbeam's debug_assert), never a check of what a caller passed: bad input gets a negative
 * errno. In the sanitizer builds (-DCHAN_DEBUG: make's asan and tsan modes, the fuzz targets)
 * a violation prints the condition, file and line and aborts; in the plain build and the
 * drop-in pair it compiles to nothing (cond is not evaluated, only its type is checked). */
#ifdef CHAN_DEBUG
HIDDEN __attribute__((noreturn, cold)) void assert_fail(const char *cond, const char *file,
                                                        int line);
#define ASSERT(cond) (likely(cond) ? (void)0 : assert_fail(#cond, __FILE__, __LINE__))
#else
#define ASSERT(cond) ((void)sizeof(!(cond)))
#endif

#include "trace/hooks.h" /* what the core tells the tracer; no-ops without it */

/* ---- The channel lock: a futex mutex (0 free, 1 held, 2 held with sleepers) ---------------- */

typedef struct {
    _Atomic uint32_t word;
#ifdef CHAN_DEBUG
    _Atomic uintptr_t owner; /* the holder's locks_self(); 0: free */
#endif
} chanlock_t;

/* cpu_relax rounds a thread watches a held lock before it sleeps on it (lock_slow) or stops
 * watching (a select's pass 0): critical sections are a few dozen instructions. */
#define LOCK_SPIN 100

HIDDEN void lock_slow(chanlock_t *l);
HIDDEN void lock_wake(chanlock_t *l);

#ifdef CHAN_DEBUG
/* The calling thread's count of channel locks held; its address names the thread. Read through
 * this opaque call, never cached across a park (a task may resume on another thread). */
HIDDEN unsigned *locks_self(void);
#endif

static inline void lock(chanlock_t *l)
{
    uint32_t expected = 0;
    if (unlikely(!atomic_compare_exchange_strong_explicit(
            &l->word, &expected, 1, memory_order_acquire, memory_order_relaxed)))
        lock_slow(l);
#ifdef CHAN_DEBUG
    unsigned *me = locks_self();
    atomic_store_explicit(&l->owner, (uintptr_t)me, memory_order_relaxed);
    ++*me;
#endif
}

/* The lock if it is free at this moment, else false at once: for an observer that must never
 * wait (a dump from a signal handler must not hang on a lock that a stopped thread holds), and
 * for a select's pass 0, which must not wait on one case while its others change (pass0). */
static inline bool trylock(chanlock_t *l)
{
    uint32_t expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&l->word, &expected, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return false;
#ifdef CHAN_DEBUG
    unsigned *me = locks_self();
    atomic_store_explicit(&l->owner, (uintptr_t)me, memory_order_relaxed);
    ++*me;
#endif
    return true;
}

static inline void unlock(chanlock_t *l)
{
#ifdef CHAN_DEBUG
    unsigned *me = locks_self();
    uintptr_t owner = atomic_load_explicit(&l->owner, memory_order_relaxed);
    ASSERT(owner == (uintptr_t)me); /* held, and by the caller */
    atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
    --*me;
#endif
    if (unlikely(atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2))
        lock_wake(l);
}

/* For ASSERT only (not evaluated outside CHAN_DEBUG builds): whether the caller holds l, and
 * how many channel locks it holds. */
#ifdef CHAN_DEBUG
static inline bool lock_held(chanlock_t *l)
{
    return atomic_load_explicit(&l->owner, memory_order_relaxed) == (uintptr_t)locks_self();
}
static inline unsigned locks_held(void) { return *locks_self(); }
#else
/* Named by ASSERT's sizeof only, never called nor defined: no HIDDEN, which the drop-in pair
 * makes static (scripts/amalgamate), and a static function declared and never defined is an
 * error there. */
bool lock_held(chanlock_t *l);
unsigned locks_held(void);
#endif

/* ---- Waiters and sudogs ---------------------------------------------------------------------- */

/* One per blocked operation (Go keeps this state in the g). Lives in the blocked caller's frame. */
struct waiter {
    _Atomic uint32_t done;          /* 0 while waiting; 1 once a waker or the time-out won */
    bool ok;                        /* set by the waker: a value moved (false: closed) */
    uint8_t why;                    /* enum wait_reason (seam.h): what the operation is */
    bool edge;                      /* an edge select's (fdselect_until, waiter_fds_edge) */
    struct sudog *fired;            /* set by the waker: the sudog it completed */
    const struct chan_sched *sched; /* NULL: the pthread parker */
    void *task;                     /* handle passed to park/unpark */
    struct sudog *sudogs;           /* what it waits on: nsudog sudogs (for dumps/deadlocks) */
    uint32_t nsudog;
    uint32_t nio;             /* of which on fd channels (BUF_FD): it parks through
                                 waiter_park_io; 0 for every operation without fd cases */
    const struct pollfd *io;  /* with nio: their (fd, events), copied under the channels' locks
                                 (a scheduler's park reads them, waiter_fds, after the unlock,
                                 when a close may have freed the channels) */
    struct waiter *held_next; /* on the waker's list of held wake-ups (wakeups_hold) */
#ifdef CHAN_TRACE_BUILD
    struct waiter_trace t; /* the tracer's notes (trace/hooks.h); none in the pair */
#endif
};

/* One per channel an operation waits on (Go's sudog). Lives in the blocked caller's frame or,
 * for a large select, in its heap bookkeeping. */
struct sudog {
    struct sudog *next, *prev; /* links in c->sendq or c->recvq */
    struct sudog *same;        /* ring of this waiter's sudogs on the same channel (a select
                                  may name one channel in several cases); self if alone */
    struct waiter *w;
    struct chan *c;
    void *elem;     /* value to send, or where to put the value received (or NULL) */
    uint32_t index; /* select: the case index */
    bool is_send;   /* which queue of c holds it */
};

struct waitq {
    struct sudog *_Atomic first; /* read without the lock by the fast paths */
    struct sudog *last;
};

/* ---- The channel (Go's hchan) ---------------------------------------------------------------- */

/* Buffered channels of elements get the lock-free ring from this capacity on; below it, Go's
 * buffer under the lock. Where nearly every operation waits (capacities 1 to 3) a waiter is
 * handed its value directly and the ring's SLOW bit would flip on every message: there the
 * plain buffer measured up to twice as fast (A/B at capacity 1: spsc 194 -> 111 ns, mpsc 228 ->
 * 134, mpmc 241 -> 157; capacity 2: spsc 328 -> 248, mpsc 165 -> 102); at 4 the ring wins
 * (spsc 87 -> 81, mpsc 97 -> 82, mpmc 107 -> 88). */
#ifndef RING_MIN_CAP
#define RING_MIN_CAP 4
#endif

/* What holds a channel's buffered values: chosen by chan_make from elemsize and cap, fixed for
 * the channel's life. Every test of "which buffer" reads c->kind. */
enum bufkind {
    BUF_NONE,   /* unbuffered (cap 0): values go from sender to receiver, nothing is kept */
    BUF_COUNT,  /* signal-only (elemsize 0), cap > 0: just count, under the lock */
    BUF_LOCKED, /* Go's buffer under the lock: cap 1 .. RING_MIN_CAP - 1 elements */
    BUF_RING,   /* the lock-free ring (ring.c): cap >= RING_MIN_CAP elements */
    BUF_FD,     /* an fd channel (fdchan_make; never from chan_make): receive only, cap 0,
                   elemsize sizeof(int). It "holds a value" whenever poll(2) finds its fd ready
                   for its events, and a receive takes the revents as that value, consuming
                   nothing (level-triggered). Its closed word is never 0 (FD_OPEN below); only
                   select waits on it (select.c). */
};

/* c->closed: 0 while open, 1 once closed. An fd channel's is FD_OPEN until its owner closes it
 * (fdchan_close), then 1: never 0. Every path already tests closed before it would queue a
 * sender, hand a value to a waiting receiver, or conclude "not ready": there, and only there,
 * an fd channel is told apart by its kind, so the other channels pay nothing for it. */
#define FD_OPEN 2u

static inline enum bufkind buf_kind(size_t elemsize, size_t cap)
{
    if (cap == 0)
        return BUF_NONE;
    if (elemsize == 0)
        return BUF_COUNT;
    return cap < RING_MIN_CAP ? BUF_LOCKED : BUF_RING;
}

/* A cache line, and the distance that keeps two hot words apart: CAA_CACHE_LINE_SIZE is 128 on
 * x86-64, where the spatial prefetcher fetches lines in pairs. */
#define CHAN_LINE 64
#define CHAN_APART CAA_CACHE_LINE_SIZE

/* The lock-free ring's two positions, apart from each other and from the struct chan before
 * them. Senders own tail, receivers own head. */
struct ringpos {
    _Alignas(CHAN_APART) _Atomic uint64_t head;
    _Alignas(CHAN_APART) _Atomic uint64_t tail;
};

/* Go's hchan. A buffered channel of elements (elemsize > 0) keeps its buffer in a lock-free ring
 * (kind BUF_RING): while nobody waits on the channel and it is open, sends and receives that find
 * room or a value complete without the lock (Vyukov's bounded queue, as crossbeam's array
 * channel: each slot has a stamp that says which position may use it next). As soon as an
 * operation is about to queue a waiter, or the channel closes, it sets the SLOW bit in both
 * positions under the lock: from then on every operation takes the lock, exactly as in Go, so
 * waiters are served FIFO and nothing slips past a blocked sender. The last waiter to leave an
 * open channel clears the bit (ring.c). Buffered channels below RING_MIN_CAP keep Go's
 * buffer under the lock (buf, sendx, recvx, count), signal-only ones (elemsize 0) just the
 * count, and unbuffered ones have no buffer at all.
 *
 * Layout: what chan_make sets and nobody writes after (read by every operation, the ring's
 * lock-free paths included) fills the first line; what is written under the lock starts the
 * next, so a lock taken on one CPU does not evict the ring's parameters from another. */
struct chan {
    uint32_t elemsize;
    enum bufkind kind;
    size_t cap; /* dataqsiz */
    union {
        struct {                /* BUF_RING */
            struct ringpos *rp; /* the ring's positions */
            uint64_t slow;      /* the SLOW bit; position index bits lie below it */
            uint64_t one_lap;   /* what one lap adds to a position (2 * slow) */
            size_t slotsize;    /* bytes per slot: the stamp, then the element */
        };
        struct {          /* BUF_FD */
            int fd;       /* the descriptor polled */
            short events; /* POLLIN or POLLOUT */
        };
    };
    unsigned char *buf; /* ring slots, after the struct and its ringpos; without a
                           ring, Go's buffer of cap elements after the struct */
    void *mem;          /* the block chan_malloc returned (c is aligned within it) */

    _Alignas(CHAN_LINE) chanlock_t lock;
    _Atomic uint32_t closed; /* 0, or 1 once closed; FD_OPEN: an open fd channel */
    _Atomic size_t count;    /* no ring: values buffered */
    uint32_t sendx, recvx;   /* no ring: the buffer's next slots to fill and to empty */
    struct waitq recvq, sendq;
    bool timer; /* a timer's channel (timerchan_make): len and cap report 0 (chan_len) */
};

_Static_assert(offsetof(struct chan, mem) + sizeof(void *) <= CHAN_LINE,
               "what chan_make sets fits in the first line of struct chan");
_Static_assert(offsetof(struct chan, lock) == CHAN_LINE,
               "what the lock guards starts the second line of struct chan");

/* ---- Wait queues (sudog.c); all under the channel's lock ------------------------------------- */

HIDDEN void waitq_enqueue(struct waitq *q, struct sudog *sg);
HIDDEN void waitq_unlink(struct waitq *q, struct sudog *sg);
/* Go's dequeue: the first sudog whose waiter this call wins (done 0 -> 1); that waiter's sudogs
 * on the same channel are unlinked from both queues. Sudogs already won by others are skipped
 * and left queued. NULL when none can be won. */
HIDDEN struct sudog *waitq_dequeue_slow(struct waitq *q);
/* Unlinks all of sg's waiter's sudogs on sg's channel (sg->same ring), from whichever queue. */
HIDDEN void sudog_unlink_same(struct sudog *sg);

static inline bool waitq_empty(struct waitq *q)
{
    return atomic_load_explicit(&q->first, memory_order_relaxed) == NULL;
}

static inline struct sudog *waitq_dequeue(struct waitq *q)
{
    return waitq_empty(q) ? NULL : waitq_dequeue_slow(q);
}

/* ---- Parking (sudog.c) --------------------------------------------------------------------- */

/* Fills w for the calling thread or task: the scheduler installed on this thread, its task
 * handle, and what the operation is (why). Called by an operation about to block until
 * deadline, before its sudogs are queued; the deadline is only noted for the tracer (the leak
 * detector tells a wait that ends from one that may not). */
HIDDEN void waiter_init(struct waiter *w, enum wait_reason why, int64_t deadline);

/* Whether the caller may spin before it blocks: another CPU can run its peer, and no scheduler
 * is plugged in (a plugged-in scheduler decides about spinning itself). */
HIDDEN bool may_spin(void);

/* Park the caller until unparked or the deadline: 0 or -ETIMEDOUT (the hook's contract), or
 * the negative errno with which a plugged-in scheduler's park gave the wait up (chan_sched(3)). */
HIDDEN int waiter_park(struct waiter *w, int64_t deadline);

/* As waiter_park, for a waiter with fd cases (w->nio > 0): also PARK_IO (seam.h), "one of its
 * fds may be ready". io holds w->nio + 1 entries: io[1 ..] the fds and events of its fd cases,
 * io[0] for the pthread parker's own use (its wake-up eventfd). */
HIDDEN int waiter_park_io(struct waiter *w, struct pollfd *io, int64_t deadline);

/* Before an operation queues a waiter with fd cases (w->nio > 0): whether w can park on them.
 * 0; or the pthread parker's -errno (EMFILE, ENFILE, ENOMEM) when the calling thread has no
 * wake-up eventfd yet and cannot make one; or, for a task of a plugged-in scheduler that cannot
 * wait on fds (see sched_waits_fds), -EAGAIN, -EMFILE or -ENFILE when the poll thread that
 * waits for it cannot be started. Nothing has happened then. Called with the operation's
 * channel locks held (the eventfd is made once per thread, the poll thread once per process). */
HIDDEN int waiter_io_prepare(struct waiter *w);

/* A woken waiter to unpark once the lock is dropped (Go's goready after unlock). The waiter
 * stays valid until its unpark: its operation waits for that unpark before it returns. */
struct wakeup {
    struct waiter *w; /* NULL: nobody to wake */
};

static inline struct wakeup wakeup_of(struct waiter *w) { return (struct wakeup){w}; }

HIDDEN void wakeup_run(struct wakeup wk);

/* After a park that ended without an unpark (why: -ETIMEDOUT, PARK_IO, or the error a plugged-in
 * scheduler's park gave up with): either we win the done word (why: the caller must unlink its
 * sudogs) or a waker did, and we consume its unpark (0). The fds no longer matter then:
 * w->nio is cleared, and only the unpark is waited for. */
HIDDEN int waiter_withdraw(struct waiter *w, int why);

/* Block until the deadline on nothing at all (nil channel, a select without a live case; why
 * says which): -ETIMEDOUT; never returns for CHAN_FOREVER, unless a plugged-in scheduler's park
 * gives the wait up (its negative errno). */
HIDDEN int park_nothing(int64_t deadline, enum wait_reason why);

/* ---- Deadlines ---------------------------------------------------------------------------- */

/* A deadline that has always passed and reports -EAGAIN: the try forms. (The _until forms map
 * a caller's INT64_MIN to INT64_MIN + 1, which reports -ETIMEDOUT.) */
#define NOWAIT INT64_MIN

/* 0 when an operation that is not ready may block until deadline; else what it reports. Called
 * only on the way to blocking: "deadlines are checked only before blocking". */
static inline int cannot_wait(int64_t deadline)
{
    if (deadline == NOWAIT)
        return -EAGAIN;
    if (deadline != CHAN_FOREVER && chan_now() >= deadline)
        return -ETIMEDOUT;
    return 0;
}

/* ---- Shared by chan.c and select.c -------------------------------------------------------- */

/* Copies one element; dst NULL (a receive that discards) copies nothing. The common sizes are
 * spelled out so that the compiler inlines them instead of calling memcpy. */
static inline void copy_elem(const struct chan *c, void *dst, const void *src)
{
    if (!dst)
        return;
    switch (c->elemsize) {
    case 0: return;
    case 4: memcpy(dst, src, 4); return;
    case 8: memcpy(dst, src, 8); return;
    case 16: memcpy(dst, src, 16); return;
    default: memcpy(dst, src, c->elemsize); return;
    }
}

static inline void zero_elem(const struct chan *c, void *elem)
{
    if (c->elemsize && elem)
        memset(elem, 0, c->elemsize);
}

/* ---- The buffer and the ring's SLOW bit (ring.c; its top says who may call what, when) ------ */

/* The ring's lock-free operations, without the lock (BUF_RING): RING_OK (done), RING_NO
 * (full or empty while open and nobody waits), RING_SLOW (the lock decides). */
enum { RING_OK, RING_NO, RING_SLOW };
HIDDEN int ring_trysend(struct chan *c, const void *elem);
HIDDEN int ring_tryrecv(struct chan *c, void *elem);
/* Values buffered now, without the lock: Go's len(c). */
HIDDEN size_t buf_len(const struct chan *c);

/* The buffer, every kind, with c->lock held (the ring's fast paths may run at the same time:
 * these use the same protocol). put: false when full; take: false when empty; unbuffered:
 * always false. */
HIDDEN bool buf_put_locked(struct chan *c, const void *elem);
HIDDEN bool buf_take_locked(struct chan *c, void *elem);

/* An operation about to wait takes its last look at the buffer through these (c->lock held,
 * after buf_put_locked or buf_take_locked failed and cannot_wait said it may wait): the ring's
 * lock-free paths are stopped first, then the buffer is tried once more. true: done. false: c
 * stays not ready until the lock is dropped: queue the waiter (waiter_enqueue) or, a select
 * that will not wait after all, wait_cancel(c). */
HIDDEN bool buf_put_last(struct chan *c, const void *elem);
HIDDEN bool buf_take_last(struct chan *c, void *elem);
/* Every queueing and unlinking of a waiter on a channel, with sg->c->lock held: enqueue after
 * the last look on sg->c failed; unlink by the sudog's owner (timed out, or woken through
 * another channel). */
HIDDEN void waiter_enqueue(struct sudog *sg);
HIDDEN void waiter_unlink(struct sudog *sg);
/* A waker's waitq_dequeue took a waiter off c and the value has moved (c->lock held). */
HIDDEN void waiter_left(struct chan *c);
/* A select whose last look on c will not be followed by a waiter (c->lock held). */
HIDDEN void wait_cancel(struct chan *c);
/* closechan, under c->lock: sets closed and stops the ring's lock-free paths for good. */
HIDDEN void mark_closed(struct chan *c);
/* For ASSERT (CHAN_DEBUG builds), c->lock held: the invariant whenever the lock is about to be
 * dropped. A ring's SLOW bit is set in both positions exactly when a sudog is queued on c or c
 * is closed; true for the other kinds. Defined in CHAN_DEBUG builds only; in the others ASSERT's
 * sizeof alone names it (see lock_held). */
#ifdef CHAN_DEBUG
HIDDEN bool slow_bit_agrees(const struct chan *c);
#else
bool slow_bit_agrees(const struct chan *c);
#endif

/* Before a select over full or empty rings takes the slow path (select.c): SNOOZE rounds of
 * exponentially longer spins (1, 2, ... 64 cpu_relax, ~3 us in all), then one sched_yield per
 * round (crossbeam's Backoff::snooze). Only where may_spin(). A plain send or receive does not
 * snooze: it waits on its own permit at once (chan.c says why). */
#define SNOOZE 10

/* How many snooze rounds an operation that is not ready may take before the slow path: SNOOZE
 * when it may block and spinning pays; none for a try form, or a deadline already past (which
 * behaves as the try form), or when no other CPU can run the peer. */
static inline unsigned snooze_rounds(int64_t deadline)
{
    if (deadline == NOWAIT || !may_spin())
        return 0;
    return deadline == CHAN_FOREVER || chan_now() < deadline ? SNOOZE : 0;
}

static inline void ring_snooze(unsigned round)
{
    if (round < 7)
        for (unsigned i = 0; i < 1u << round; i++)
            caa_cpu_relax();
    else
        sched_yield();
}

/* Moves a value between the caller and the sudog sg of a waiting peer, or the buffer. All with
 * c->lock held. (Go's send and recv helpers.) */
HIDDEN void chan_send_to(struct chan *c, struct sudog *sg, const void *elem);
HIDDEN void chan_recv_from(struct chan *c, struct sudog *sg, void *elem);

/* A receive on an fd channel that must wait (chan.c, not holding c->lock): a select of that
 * one case, whose park can wait on the fd. chanrecv's results, and select's -EBUSY
 * and waiter_io_prepare's -errno. */
HIDDEN int select_recv(struct chan *c, void *elem, int64_t deadline);

/* Tests' probe: sudogs now queued on c (sends or receives), counted under the lock. */
HIDDEN size_t hchan_waiting(chan_t *c, enum chan_dir dir);
/* Tests' probe: values buffered in c now, as chan_len would report but for a timer's channel. */
HIDDEN size_t hchan_buffered(const chan_t *c);
/* Tests' probe: whether c's ring has its lock-free paths stopped (the SLOW bit). */
HIDDEN bool hchan_ring_stopped(const chan_t *c);

#endif
