/* SPDX-License-Identifier: MIT */
/*
 * chan.c - Go's hchan: making and freeing channels, send, receive, close, len and cap.
 *
 * Each operation mirrors a function of Go's runtime/chan.go (makechan, chansend, chanrecv,
 * closechan) and holds the channel lock in one visible span: it decides under the lock, moves
 * the value under the lock, and unparks a woken peer only after unlocking. A blocking operation
 * queues a sudog from its own stack frame and waits in sudog.c. The invariants are listed at
 * the top of chan_internal.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "chan_internal.h"

const char *chan_version(void) { return CHAN_VERSION_STRING; }

#ifdef CHAN_LIBRARY_BUILD
/* ---- One copy per process (the library only: the drop-in pair has no such check) ------------

   Two copies of libchan in one process (libchan.so and libchan.a both linked in, say a static
   libchan under a shared libchan-mpg) have two of everything that is per process: the pthread
   parker, the timer thread, the tracer, the plugged-in scheduler of each thread. A channel made
   by one copy and used through the other may then wait for ever. So each copy looks, when it is
   loaded, for another one's marker and refuses to run beside it, as the dynamic loader refuses
   a missing library: a message and exit status 127, before main. The marker is exported under
   the private version node; RTLD_DEFAULT finds the first copy in the global scope, RTLD_NEXT
   one loaded after this one, so that whichever copy the symbol tables show, one of the two
   sees the other. One copy (libchan.so loaded once, however many dlopen() calls name it; or
   libchan.a alone) finds only itself, or nothing. */
#include <dlfcn.h>
#include <unistd.h>

#define COPY_MARK "libchan " CHAN_VERSION_STRING
__attribute__((visibility("default"))) const char chan_private_copy[sizeof COPY_MARK] = COPY_MARK;
/* This copy's own marker, bound here whatever the symbol tables say. */
extern const char copy_self[sizeof COPY_MARK]
    __attribute__((alias("chan_private_copy"), visibility("hidden")));

/* Weak: with a C library older than glibc 2.34, dlsym lives in libdl; a program that does not
   link it skips the check rather than failing to link. */
#pragma weak dlsym

__attribute__((constructor)) static void refuse_second_copy(void)
{
    if (!dlsym)
        return;
    const void *first = dlsym(RTLD_DEFAULT, "chan_private_copy");
    const void *next = dlsym(RTLD_NEXT, "chan_private_copy");
    if ((first == NULL || first == copy_self) && (next == NULL || next == copy_self))
        return;
    static const char msg[] =
        "libchan: two copies of libchan in one process (shared and static?): link with one,\n"
        "libchan: either the shared libraries, $(pkg-config --libs libchan-mpg) or -lchan_mpg "
        "-lchan,\n"
        "libchan: or the static ones, libchan_mpg.a libchan.a -lhwloc -pthread, not both\n";
    ssize_t unused = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)unused;
    _exit(127);
}
#endif

/* ---- makechan and free ----------------------------------------------------------------------- */

/* The struct, rounded up so that the ring's positions after it keep CHAN_APART from it. */
#define CHAN_HEAD_SIZE ((sizeof(struct chan) + CHAN_APART - 1) / CHAN_APART * CHAN_APART)

static uint64_t pow2_above(uint64_t x)
{
    uint64_t p = 1;
    while (p <= x)
        p <<= 1;
    return p;
}

chan_t *chan_make(size_t elemsize, size_t cap)
{
    /* makechan: a size that cannot be expressed is a bad argument (EINVAL); one that can be
     * expressed but not allocated - the header and the ring's stamps push it past what one
     * object may be - is ENOMEM, as if malloc had refused it. Both are decided here, before
     * any allocation: no allocator is ever asked for more than PTRDIFF_MAX bytes. */
    if (elemsize > CHAN_ELEMSIZE_MAX || (elemsize != 0 && cap > SIZE_MAX / elemsize)) {
        errno = EINVAL;
        return NULL;
    }
    const size_t limit = (size_t)PTRDIFF_MAX - (CHAN_APART - 1); /* room to align c */
    /* A ring slot holds an 8-byte stamp and the element rounded up to 8 bytes. Without a ring,
     * the buffer (cap * elemsize) is at most 3 * CHAN_ELEMSIZE_MAX bytes, or empty. */
    bool ring = buf_kind(elemsize, cap) == BUF_RING;
    size_t slotsize = sizeof(uint64_t) + ((elemsize + 7) & ~(size_t)7);
    size_t size = CHAN_HEAD_SIZE;
    if (!ring)
        size += cap * elemsize; /* a small buffer under the lock (none if cap or elemsize is 0) */
    if (ring) {
        if (cap > (limit - size - sizeof(struct ringpos)) / slotsize) {
            errno = ENOMEM;
            return NULL;
        }
        size += sizeof(struct ringpos) + cap * slotsize;
    }
    void *mem = chan_malloc(size + CHAN_APART - 1);
    if (!mem) {
        errno = ENOMEM;
        return NULL;
    }
    struct chan *c =
        (struct chan *)(((uintptr_t)mem + CHAN_APART - 1) & ~(uintptr_t)(CHAN_APART - 1));
    memset(c, 0, sizeof *c);
    c->mem = mem;
    atomic_init(&c->lock.word, 0);
    atomic_init(&c->closed, 0);
    atomic_init(&c->count, 0);
    atomic_init(&c->recvq.first, NULL);
    atomic_init(&c->sendq.first, NULL);
    c->elemsize = (uint32_t)elemsize;
    c->kind = buf_kind(elemsize, cap);
    c->cap = cap;
    if (!ring) {
        c->buf = (unsigned char *)c + CHAN_HEAD_SIZE;
    } else {
        c->rp = (struct ringpos *)((unsigned char *)c + CHAN_HEAD_SIZE);
        c->buf = (unsigned char *)(c->rp + 1);
        c->slotsize = slotsize;
        c->slow = pow2_above(cap);
        c->one_lap = 2 * c->slow;
        atomic_init(&c->rp->head, 0);
        atomic_init(&c->rp->tail, 0);
        for (size_t i = 0; i < cap; i++) /* slot i waits for the send at position i */
            atomic_init((_Atomic uint64_t *)(c->buf + i * slotsize), i);
    }
    if (tracing(TF_EVENTS | TF_REGISTRY))
        trace_make(c);
    return c;
}

/* chan_free; and fdchan_free, for the one owner of an fd channel (io/). */
static int freechan(struct chan *c)
{
    /* Every queued sudog belongs to an operation that has not returned yet: a blocked one, or
     * one that completed elsewhere or timed out and has still to unlink itself from c. */
    lock(&c->lock);
    bool busy = !waitq_empty(&c->sendq) || !waitq_empty(&c->recvq);
    unlock(&c->lock);
    if (busy)
        return -EBUSY;
    if (tracing(TF_EVENTS | TF_REGISTRY | TF_NAMED))
        trace_free(c);
    chan_mfree(c->mem);
    return 0;
}

int chan_free(chan_t *c)
{
    if (!c)
        return 0;
    if (c->kind == BUF_FD)
        return -EINVAL; /* its owner frees it (chan_fd_close) */
    return freechan(c);
}

/* Go's chanlen and chancap, which report 0 for a timer's channel since Go 1.23: from a
 * receiver's view it holds nothing, the runtime sends its value only to a receive that asks
 * (see chan_timer(3)); libchan keeps that value in a buffer of one, not to be seen. */
size_t chan_len(const chan_t *c) { return c && !c->timer ? buf_len(c) : 0; }

size_t elemsize_of(const chan_t *c) { return c->elemsize; }

size_t chan_cap(const chan_t *c) { return c && !c->timer ? c->cap : 0; }

/* ---- Moving values (under c->lock) ----------------------------------------------------------- */

/* Go's send: a receiver sg was waiting (so the buffer is empty): the value goes straight into
 * its elem. The waker's dequeue took sg off c: waiter_left lets the ring run lock-free again if
 * it was the last waiter. */
void chan_send_to(struct chan *c, struct sudog *sg, const void *elem)
{
    ASSERT(lock_held(&c->lock) && atomic_load_explicit(&sg->w->done, memory_order_relaxed));
    copy_elem(c, sg->elem, elem);
    sg->w->ok = true;
    sg->w->fired = sg;
    waiter_left(c);
    if (tracing(TF_EVENTS))
        trace_handoff(c, CHAN_SEND, sg, elem);
}

/* Go's recv: a sender sg was waiting. Unbuffered: take its value. Buffered (so full): take the
 * value at the head of the queue and put the sender's value in the slot it frees, at the tail;
 * FIFO order holds across buffer and waiting senders. Then waiter_left, as in chan_send_to:
 * only now, so that no lock-free sender takes the slot between the take and the put. */
void chan_recv_from(struct chan *c, struct sudog *sg, void *elem)
{
    ASSERT(lock_held(&c->lock) && atomic_load_explicit(&sg->w->done, memory_order_relaxed));
    if (c->kind == BUF_NONE) {
        copy_elem(c, elem, sg->elem);
    } else {
        bool took = buf_take_locked(c, elem);
        bool put = buf_put_locked(c, sg->elem);
        ASSERT(took && put); /* a sender waits only on a full buffer */
    }
    sg->w->ok = true;
    sg->w->fired = sg;
    waiter_left(c);
    if (tracing(TF_EVENTS))
        trace_handoff(c, CHAN_RECV, sg, elem);
}

/* ---- Blocking -------------------------------------------------------------------------------- */

/* Waits in the sudog that the caller queued on c (with c locked, then unlocked). 0 when a peer
 * completed the operation, -EPIPE when chan_close did, -ETIMEDOUT at the deadline (or the error
 * with which a plugged-in scheduler's park gave the wait up). */
static int block_on(struct chan *c, struct sudog *sg, int64_t deadline)
{
    struct waiter *w = sg->w;
    int r = waiter_park(w, deadline);
    if (r != 0 && (r = waiter_withdraw(w, r)) != 0) {
        /* Ours is the done word: no waker will touch the sudog; unlink it ourselves. */
        lock(&c->lock);
        waiter_unlink(sg);
        unlock(&c->lock);
        if (tracing(TF_EVENTS))
            trace_woken(w, r, false);
        return r;
    }
    /* The waker unlinked the sudog and will not touch it, nor c on our behalf, again. */
    ASSERT(w->fired == sg && !sg->prev); /* (chan_close chains what it wakes through next) */
    if (tracing(TF_EVENTS))
        trace_woken(w, w->ok ? 0 : -EPIPE, false);
    return w->ok ? 0 : -EPIPE;
}

/* A peer's operation was just completed through its sudog (c locked): unlock, then wake the
 * peer (Go's goready after unlock). Returns the caller's result, 0. */
static int release_peer(struct chan *c, struct sudog *peer)
{
    struct wakeup wk = wakeup_of(peer->w);
    ASSERT(slow_bit_agrees(c));
    unlock(&c->lock);
    wakeup_run(wk);
    return 0;
}

/* Queues a sudog for the caller on c (c locked; its last look found c not ready), unlocks, and
 * waits. */
static int wait_on(struct chan *c, void *elem, bool is_send, int64_t deadline)
{
    struct waiter w;
    struct sudog sg = {.w = &w, .c = c, .elem = elem, .is_send = is_send};
    sg.same = &sg;
    waiter_init(&w, is_send ? WAIT_SEND : WAIT_RECV, deadline);
    w.sudogs = &sg;
    w.nsudog = 1;
    waiter_enqueue(&sg);
    if (tracing(TF_EVENTS))
        trace_block(&w, false);
    unlock(&c->lock);
    return block_on(c, &sg, deadline);
}

/* A non-blocking operation on a channel without a ring may fail without the lock when the
 * channel is visibly not ready (Go's full/empty). The loads are acquire so that a later load
 * is not hoisted above them. */
static bool full(struct chan *c)
{
    if (c->kind == BUF_NONE)
        return atomic_load_explicit(&c->recvq.first, memory_order_acquire) == NULL;
    return atomic_load_explicit(&c->count, memory_order_acquire) == c->cap;
}

static bool empty(struct chan *c)
{
    if (c->kind == BUF_NONE)
        return atomic_load_explicit(&c->sendq.first, memory_order_acquire) == NULL;
    return atomic_load_explicit(&c->count, memory_order_acquire) == 0;
}

/* ---- chansend ----------------------------------------------------------------------------- */

/* What a send reports on a channel whose closed word is set: -EPIPE, or -EINVAL on an fd channel
 * (received from only). Out of line: the test costs the open channels' paths nothing. */
static __attribute__((cold, noinline)) int send_closed(const struct chan *c)
{
    return c->kind == BUF_FD ? -EINVAL : -EPIPE;
}

static int chansend(struct chan *c, const void *elem, int64_t deadline)
{
    if (!c) {
        int err = cannot_wait(deadline);
        return err ? err : park_nothing(deadline, WAIT_SEND_NIL);
    }
    if (c->elemsize && !elem)
        return -EINVAL;

    if (likely(c->kind == BUF_RING)) {
        /* The ring's fast path: room, nobody waiting, open. Full with the SLOW bit clear means
         * open and nobody waiting: a try fails there as Go's fast path does. */
        int r = ring_trysend(c, elem);
        if (likely(r == RING_OK))
            return 0;
        if (r == RING_NO && deadline == NOWAIT)
            return -EAGAIN;
        /* Full: go and wait at once. Snoozing on the ring here (polling it, crossbeam's way)
         * was measured slower at every capacity: the waiter's own permit word is a quieter
         * place to spin than the ring's shared lines, and its peer then hands the value over
         * directly (same-machine A/B at b757ad1: spsc cap 1 227 -> 169 ns, mpsc cap 1 469 -> 173,
         * mpmc cap 1 453 -> 173, mpsc cap 1024 33 -> 20). */
    } else if (deadline == NOWAIT && !atomic_load_explicit(&c->closed, memory_order_acquire) &&
               full(c)) {
        /* Go's fast path: an open channel observed full. A closed channel never becomes ready
         * for sending again, so there was a moment when it was both open and full. */
        return -EAGAIN;
    }

    lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        unlock(&c->lock);
        return send_closed(c);
    }
    struct sudog *peer = waitq_dequeue(&c->recvq);
    if (peer) {
        chan_send_to(c, peer, elem);
        return release_peer(c, peer);
    }
    if (buf_put_locked(c, elem)) {
        unlock(&c->lock);
        return 0;
    }
    int err = cannot_wait(deadline);
    if (err) {
        unlock(&c->lock);
        return err;
    }
    /* About to wait: the last look stops the ring's fast paths and sees what they did. */
    if (buf_put_last(c, elem)) {
        unlock(&c->lock);
        return 0;
    }
    return wait_on(c, (void *)elem, true, deadline);
}

/* A send while a trace records: its events around chansend. The public forms call it behind
 * tracing(), so that while nobody traces they cost one load and one branch more than chansend
 * and still end in a tail call to it. cold keeps it out of line, so that the untraced path
 * saves no register (gcc and clang); inline, so that where nobody can trace (the drop-in pair)
 * no copy of it is compiled, even at -O0. */
static inline __attribute__((cold)) int traced_send(struct chan *c, const void *elem,
                                                    int64_t deadline, enum trace_form form)
{
    uint32_t gen = trace_begin();
    int r = chansend(c, elem, deadline);
    trace_op(c, CHAN_SEND, form, r, elem, gen);
    return r;
}

int chan_send(chan_t *c, const void *elem)
{
    if (tracing(TF_EVENTS))
        return traced_send(c, elem, CHAN_FOREVER, TR_BLOCK);
    return chansend(c, elem, CHAN_FOREVER);
}

int chan_trysend(chan_t *c, const void *elem)
{
    if (tracing(TF_EVENTS))
        return traced_send(c, elem, NOWAIT, TR_TRY);
    return chansend(c, elem, NOWAIT);
}

int chan_send_until(chan_t *c, const void *elem, int64_t deadline)
{
    int64_t d = deadline == NOWAIT ? NOWAIT + 1 : deadline;
    if (tracing(TF_EVENTS))
        return traced_send(c, elem, d, TR_UNTIL);
    return chansend(c, elem, d);
}

/* ---- chanrecv ----------------------------------------------------------------------------- */

static int chanrecv(struct chan *c, void *elem, int64_t deadline)
{
    if (!c) {
        int err = cannot_wait(deadline);
        return err ? err : park_nothing(deadline, WAIT_RECV_NIL);
    }

    if (likely(c->kind == BUF_RING)) {
        int r = ring_tryrecv(c, elem);
        if (likely(r == RING_OK))
            return 0;
        if (r == RING_NO && deadline == NOWAIT)
            return -EAGAIN; /* empty, open, nobody waiting */
        /* Empty: go and wait at once, as a send on a full ring does. */
    } else if (deadline == NOWAIT && empty(c)) {
        /* Go's fast path: observed empty, then open: there was a moment when it was both.
         * Observed empty, then closed: look once more, since a value may have come before the
         * close. */
        if (!atomic_load_explicit(&c->closed, memory_order_acquire))
            return -EAGAIN;
        if (unlikely(c->kind == BUF_FD))
            return select_recv(c, elem, deadline); /* (see below) */
        if (empty(c)) {
            zero_elem(c, elem);
            return -EPIPE;
        }
    }

    lock(&c->lock);
    /* A waiting sender means a full buffer (or none): take the head, move its value in. */
    struct sudog *peer = waitq_dequeue(&c->sendq);
    if (peer) {
        chan_recv_from(c, peer, elem);
        return release_peer(c, peer);
    }
    if (buf_take_locked(c, elem)) {
        unlock(&c->lock);
        return 0;
    }
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        unlock(&c->lock);
        /* An fd channel (closed FD_OPEN, or closed): select polls its fd and can wait on it. */
        if (unlikely(c->kind == BUF_FD))
            return select_recv(c, elem, deadline);
        zero_elem(c, elem);
        return -EPIPE;
    }
    int err = cannot_wait(deadline);
    if (err) {
        unlock(&c->lock);
        return err;
    }
    if (buf_take_last(c, elem)) {
        unlock(&c->lock);
        return 0;
    }
    return wait_on(c, elem, false, deadline); /* a close zeroes *elem for us */
}

/* A receive while a trace records, as traced_send. */
static inline __attribute__((cold)) int traced_recv(struct chan *c, void *elem, int64_t deadline,
                                                    enum trace_form form)
{
    uint32_t gen = trace_begin();
    int r = chanrecv(c, elem, deadline);
    trace_op(c, CHAN_RECV, form, r, elem, gen);
    return r;
}

int chan_recv(chan_t *c, void *elem)
{
    if (tracing(TF_EVENTS))
        return traced_recv(c, elem, CHAN_FOREVER, TR_BLOCK);
    return chanrecv(c, elem, CHAN_FOREVER);
}

int chan_tryrecv(chan_t *c, void *elem)
{
    if (tracing(TF_EVENTS))
        return traced_recv(c, elem, NOWAIT, TR_TRY);
    return chanrecv(c, elem, NOWAIT);
}

int chan_recv_until(chan_t *c, void *elem, int64_t deadline)
{
    int64_t d = deadline == NOWAIT ? NOWAIT + 1 : deadline;
    if (tracing(TF_EVENTS))
        return traced_recv(c, elem, d, TR_UNTIL);
    return chanrecv(c, elem, d);
}

/* ---- closechan ------------------------------------------------------------------------------ */

/* chan_close; and fdchan_close, for the one owner of an fd channel (io/), whose closed word
 * goes from FD_OPEN to 1 (it has no ring to stop). */
static int closechan(struct chan *c, uint32_t open)
{
    lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed) != open) {
        if (tracing(TF_EVENTS))
            trace_close(c, -EPIPE, NULL);
        unlock(&c->lock);
        return -EPIPE;
    }
    if (open == FD_OPEN)
        atomic_store_explicit(&c->closed, 1, memory_order_release);
    else
        mark_closed(c); /* and the ring's fast paths stopped for good */

    /* Win every waiter still waiting, receivers first, and chain them (in FIFO order) through
     * the links their dequeue freed; wake them after unlocking. */
    struct sudog *head = NULL, **tail = &head, *sg;
    while ((sg = waitq_dequeue(&c->recvq)) || (sg = waitq_dequeue(&c->sendq))) {
        if (!sg->is_send)
            zero_elem(c, sg->elem);
        sg->w->ok = false;
        sg->w->fired = sg;
        *tail = sg;
        tail = &sg->next;
    }
    if (tracing(TF_EVENTS))
        trace_close(c, 0, head);
    ASSERT(slow_bit_agrees(c));
    unlock(&c->lock);

    while (head) {
        /* Read the link and the wake-up before unparking: the sudog lives in the woken caller's
         * frame, gone as soon as it runs. */
        struct sudog *next = head->next;
        wakeup_run(wakeup_of(head->w));
        head = next;
    }
    return 0;
}

int chan_close(chan_t *c)
{
    if (!c || c->kind == BUF_FD) /* its owner closes it (chan_fd_close) */
        return -EINVAL;
    return closechan(c, 0);
}

/* ---- fd channels and timers' channels (seam.h): made by their owners in io/ and time/ ------- */

chan_t *fdchan_make(int fd, short events)
{
    /* An unbuffered channel of ints, made an fd channel before anyone else can see it. */
    struct chan *c = chan_make(sizeof(int), 0);
    if (!c)
        return NULL;
    c->kind = BUF_FD;
    c->fd = fd;
    c->events = events;
    atomic_store_explicit(&c->closed, FD_OPEN, memory_order_relaxed);
    return c;
}

chan_t *timerchan_make(void)
{
    struct chan *c = chan_make(sizeof(int64_t), 1);
    if (c)
        c->timer = true;
    return c;
}

int fdchan_close(chan_t *c)
{
    ASSERT(c->kind == BUF_FD);
    return closechan(c, FD_OPEN);
}

int fdchan_free(chan_t *c)
{
    ASSERT(c->kind == BUF_FD);
    return freechan(c);
}

/* ---- Tests' probe ---------------------------------------------------------------------------- */

size_t hchan_waiting(chan_t *c, enum chan_dir dir)
{
    size_t n = 0;
    if (!c)
        return 0;
    lock(&c->lock);
    struct waitq *q = dir == CHAN_SEND ? &c->sendq : &c->recvq;
    for (struct sudog *sg = atomic_load_explicit(&q->first, memory_order_relaxed); sg;
         sg = sg->next)
        n++;
    unlock(&c->lock);
    return n;
}

size_t hchan_buffered(const chan_t *c) { return c ? buf_len(c) : 0; }

bool hchan_ring_stopped(const chan_t *c)
{
    return c && c->kind == BUF_RING &&
           (atomic_load_explicit(&c->rp->tail, memory_order_relaxed) & c->slow);
}

#ifdef CHAN_TRACE_BUILD
/* ---- What observers read of a channel: the dump (trace/dump.c), the leak detector ---------- */

/* The waiters on q (c locked), not its sudogs: a select with several cases of one direction
 * on c has a sudog per case on q, and they are adjacent (selectgo's pass 2 appends them at the
 * tail in one span under c's lock, and unlinking others keeps the order). The first
 * SNAP_WAITERS are described in s->w; the rest only counted. */
static size_t snap_queue(struct chan_snap *s, struct waitq *q, bool send)
{
    size_t count = 0;
    bool last_shown = false;
    for (struct sudog *sg = atomic_load_explicit(&q->first, memory_order_relaxed); sg;
         sg = sg->next) {
        struct waiter *w = sg->w;
        if (sg->prev && sg->prev->w == w) { /* the same waiter: one more of its cases */
            if (last_shown)
                s->w[s->nw - 1].here++;
            continue;
        }
        last_shown = count++ < SNAP_WAITERS;
        if (!last_shown)
            continue;
        s->w[s->nw++] = (struct chan_snap_waiter){
            .tid = w->t.tid,
            .since = w->t.since,
            .task = w->t.task,
            .g = w->t.g,
            .ncases = w->nsudog,
            .here = 1,
            .send = send,
            .select = w->why == WAIT_SELECT,
            .done = atomic_load_explicit(&w->done, memory_order_relaxed) != 0};
    }
    return count;
}

int chan_snapshot(chan_t *c, struct chan_snap *s)
{
    if (!trylock(&c->lock))
        return -EBUSY;
    s->elemsize = c->elemsize;
    s->cap = c->cap;
    s->len = buf_len(c); /* what is there, a timer's value too (chan_len hides it) */
    s->closed = atomic_load_explicit(&c->closed, memory_order_relaxed) == 1; /* not FD_OPEN */
    s->nw = 0;
    s->nsend = snap_queue(s, &c->sendq, true);
    s->nrecv = snap_queue(s, &c->recvq, false);
    unlock(&c->lock);
    return 0;
}

/* The waiters on q (c locked), each once: a select's sudogs on one queue are adjacent (see
 * snap_queue). */
static void inspect_queue(struct waitq *q, void (*fn)(const struct waiter *w, void *arg), void *arg)
{
    for (struct sudog *sg = atomic_load_explicit(&q->first, memory_order_relaxed); sg;
         sg = sg->next)
        if (!sg->prev || sg->prev->w != sg->w)
            fn(sg->w, arg);
}

int chan_inspect(chan_t *c, struct chan_block *b, void (*fn)(const struct waiter *w, void *arg),
                 void *arg)
{
    if (!trylock(&c->lock))
        return -EBUSY;
    /* chan_make's block: the struct, then the ring's positions and slots or Go's buffer. */
    size_t size = CHAN_HEAD_SIZE + CHAN_APART - 1;
    if (c->kind == BUF_RING)
        size += sizeof(struct ringpos) + c->cap * c->slotsize;
    else
        size += c->cap * c->elemsize;
    *b = (struct chan_block){.mem = c->mem, .size = size};
    inspect_queue(&c->sendq, fn, arg);
    inspect_queue(&c->recvq, fn, arg);
    unlock(&c->lock);
    return 0;
}

int waiter_snap(const struct waiter *w, struct chan_snap_waiter *s)
{
    *s = (struct chan_snap_waiter){.tid = w->t.tid,
                                   .since = w->t.since,
                                   .task = w->t.task,
                                   .g = w->t.g,
                                   .select = w->why == WAIT_SELECT,
                                   .done = atomic_load_explicit(&w->done, memory_order_relaxed)};
    return w->why;
}
#endif
