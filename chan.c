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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan_internal.h"

/* ---- Memory ---------------------------------------------------------------------------------- */

void *(*chan_malloc_hook)(size_t size);

void *chan_malloc(size_t size) { return chan_malloc_hook ? chan_malloc_hook(size) : malloc(size); }

void chan_mfree(void *p) { free(p); }

/* ---- Time ---------------------------------------------------------------------------------- */

const char *chan_version(void) { return CHAN_VERSION_STRING; }

int64_t chan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- makechan and free ------------------------------------------------------------------------ */

chan_t *chan_make(size_t elemsize, size_t cap)
{
    if (elemsize > CHAN_ELEMSIZE_MAX ||
        (elemsize != 0 && cap > (SIZE_MAX - sizeof(struct chan)) / elemsize)) {
        errno = EINVAL;
        return NULL;
    }
    struct chan *c = chan_malloc(sizeof *c + elemsize * cap);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    memset(c, 0, sizeof *c);
    atomic_init(&c->lock.word, 0);
    atomic_init(&c->closed, 0);
    atomic_init(&c->count, 0);
    atomic_init(&c->recvq.first, NULL);
    atomic_init(&c->sendq.first, NULL);
    c->elemsize = (uint32_t)elemsize;
    c->cap = cap;
    c->buf = (unsigned char *)(c + 1);
    return c;
}

int chan_free(chan_t *c)
{
    if (!c)
        return 0;
    /* Every queued sudog belongs to an operation that has not returned yet: a blocked one, or
     * one that completed elsewhere or timed out and has still to unlink itself from c. */
    lock(&c->lock);
    bool busy = !waitq_empty(&c->sendq) || !waitq_empty(&c->recvq);
    unlock(&c->lock);
    if (busy)
        return -EBUSY;
    chan_mfree(c);
    return 0;
}

size_t chan_len(const chan_t *c)
{
    return c ? atomic_load_explicit(&((chan_t *)c)->count, memory_order_relaxed) : 0;
}

size_t chan_cap(const chan_t *c) { return c ? c->cap : 0; }

/* ---- Moving values (under c->lock) -------------------------------------------------------------- */

/* Go's send: a receiver sg was waiting (so the buffer is empty): the value goes straight into
 * its elem. */
void chan_send_to(struct chan *c, struct sudog *sg, const void *elem)
{
    copy_elem(c, sg->elem, elem);
    sg->w->ok = true;
    sg->w->fired = sg;
}

/* Go's recv: a sender sg was waiting. Unbuffered: take its value. Buffered (so full): take the
 * value at the head of the queue and put the sender's value in the slot it frees, at the tail;
 * FIFO order holds across buffer and waiting senders. */
void chan_recv_from(struct chan *c, struct sudog *sg, void *elem)
{
    if (c->cap == 0) {
        copy_elem(c, elem, sg->elem);
    } else {
        unsigned char *slot = c->buf + c->recvx * c->elemsize;
        copy_elem(c, elem, slot);
        copy_elem(c, slot, sg->elem);
        if (++c->recvx == c->cap)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->w->ok = true;
    sg->w->fired = sg;
}

/* ---- Blocking ---------------------------------------------------------------------------------- */

/* Waits in the sudog that the caller queued on c (with c locked, then unlocked). 0 when a peer
 * completed the operation, -EPIPE when chan_close did, -ETIMEDOUT at the deadline. */
static int block_on(struct chan *c, struct sudog *sg, int64_t deadline)
{
    struct waiter *w = sg->w;
    if (waiter_park(w, deadline) != 0 && waiter_timeout(w) != 0) {
        /* Ours is the done word: no waker will touch the sudog; unlink it ourselves. */
        lock(&c->lock);
        waitq_unlink(sg->is_send ? &c->sendq : &c->recvq, sg);
        unlock(&c->lock);
        return -ETIMEDOUT;
    }
    /* The waker unlinked the sudog and will not touch it, nor c on our behalf, again. */
    return w->ok ? 0 : -EPIPE;
}

/* A non-blocking operation may fail without the lock when the channel is visibly not ready
 * (Go's full/empty). The loads are acquire so that a later load is not hoisted above them. */
static bool full(struct chan *c)
{
    if (c->cap == 0)
        return atomic_load_explicit(&c->recvq.first, memory_order_acquire) == NULL;
    return atomic_load_explicit(&c->count, memory_order_acquire) == c->cap;
}

static bool empty(struct chan *c)
{
    if (c->cap == 0)
        return atomic_load_explicit(&c->sendq.first, memory_order_acquire) == NULL;
    return atomic_load_explicit(&c->count, memory_order_acquire) == 0;
}

/* ---- chansend ----------------------------------------------------------------------------- */

static int chansend(struct chan *c, const void *elem, int64_t deadline)
{
    if (!c) {
        int err = cannot_wait(deadline);
        return err ? err : park_nothing(deadline);
    }
    if (c->elemsize && !elem)
        return -EINVAL;

    /* Fast path: an open channel observed full. A closed channel never becomes ready for
     * sending again, so there was a moment when it was both open and full: fail as if then. */
    if (deadline == NOWAIT && !atomic_load_explicit(&c->closed, memory_order_acquire) && full(c))
        return -EAGAIN;

    lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        unlock(&c->lock);
        return -EPIPE;
    }
    struct sudog *peer = waitq_dequeue(&c->recvq);
    if (peer) {
        chan_send_to(c, peer, elem);
        struct wakeup wk = wakeup_of(peer->w);
        unlock(&c->lock);
        wakeup_run(wk);
        return 0;
    }
    if (atomic_load_explicit(&c->count, memory_order_relaxed) < c->cap) {
        buf_put(c, elem);
        unlock(&c->lock);
        return 0;
    }
    int err = cannot_wait(deadline);
    if (err) {
        unlock(&c->lock);
        return err;
    }

    struct waiter w;
    struct sudog sg = {.w = &w, .c = c, .elem = (void *)elem, .is_send = true};
    sg.same = &sg;
    waiter_init(&w);
    w.sudogs = &sg;
    w.nsudog = 1;
    waitq_enqueue(&c->sendq, &sg);
    unlock(&c->lock);
    return block_on(c, &sg, deadline);
}

int chan_send(chan_t *c, const void *elem) { return chansend(c, elem, CHAN_FOREVER); }
int chan_trysend(chan_t *c, const void *elem) { return chansend(c, elem, NOWAIT); }

int chan_send_until(chan_t *c, const void *elem, int64_t deadline)
{
    return chansend(c, elem, deadline == NOWAIT ? NOWAIT + 1 : deadline);
}

/* ---- chanrecv ----------------------------------------------------------------------------- */

static int chanrecv(struct chan *c, void *elem, int64_t deadline)
{
    if (!c) {
        int err = cannot_wait(deadline);
        return err ? err : park_nothing(deadline);
    }

    /* Fast path: observed empty, then open: there was a moment when it was both. Observed
     * empty, then closed: look once more, since a value may have come before the close. */
    if (deadline == NOWAIT && empty(c)) {
        if (!atomic_load_explicit(&c->closed, memory_order_acquire))
            return -EAGAIN;
        if (empty(c)) {
            zero_elem(c, elem);
            return -EPIPE;
        }
    }

    lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed) &&
        atomic_load_explicit(&c->count, memory_order_relaxed) == 0) {
        unlock(&c->lock);
        zero_elem(c, elem);
        return -EPIPE;
    }
    struct sudog *peer = waitq_dequeue(&c->sendq);
    if (peer) {
        chan_recv_from(c, peer, elem);
        struct wakeup wk = wakeup_of(peer->w);
        unlock(&c->lock);
        wakeup_run(wk);
        return 0;
    }
    if (atomic_load_explicit(&c->count, memory_order_relaxed) > 0) {
        buf_take(c, elem);
        unlock(&c->lock);
        return 0;
    }
    int err = cannot_wait(deadline);
    if (err) {
        unlock(&c->lock);
        return err;
    }

    struct waiter w;
    struct sudog sg = {.w = &w, .c = c, .elem = elem, .is_send = false};
    sg.same = &sg;
    waiter_init(&w);
    w.sudogs = &sg;
    w.nsudog = 1;
    waitq_enqueue(&c->recvq, &sg);
    unlock(&c->lock);
    return block_on(c, &sg, deadline); /* a close zeroed *elem for us */
}

int chan_recv(chan_t *c, void *elem) { return chanrecv(c, elem, CHAN_FOREVER); }
int chan_tryrecv(chan_t *c, void *elem) { return chanrecv(c, elem, NOWAIT); }

int chan_recv_until(chan_t *c, void *elem, int64_t deadline)
{
    return chanrecv(c, elem, deadline == NOWAIT ? NOWAIT + 1 : deadline);
}

/* ---- closechan ------------------------------------------------------------------------------ */

int chan_close(chan_t *c)
{
    if (!c)
        return -EINVAL;
    lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        unlock(&c->lock);
        return -EPIPE;
    }
    atomic_store_explicit(&c->closed, 1, memory_order_release);

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
