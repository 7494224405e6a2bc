/* SPDX-License-Identifier: MIT */
/*
 * select.c - Go's selectgo (runtime/select.go): chan_select, chan_tryselect, chan_select_until.
 *
 *   1. Validate every case; nothing happens on -EINVAL.
 *   2. Poll order: a uniformly random permutation of the non-NULL cases. Lock order: the same
 *      cases sorted by channel address, so that every select locks in one global order and a
 *      channel named in several cases is locked once.
 *   3. Pass 0, no lock held, in poll order: a case on a buffered channel whose ring runs
 *      lock-free (open, nobody waiting) is performed on the ring if it can be; the first case
 *      that needs the lock to decide ends pass 0.
 *      Pass 1, all locks held, in poll order: the first ready case proceeds. None: if a case
 *      is on a ring, the last look tries the buffers once more with the rings stopped.
 *   4. Pass 2, none ready: queue one sudog per case, all sharing one waiter; unlock; park.
 *   5. Pass 3, woken: the waker that won the waiter's done word unlinked our sudogs from its
 *      channel; relock only the other channels and unlink the rest. Timed out: we won the done
 *      word ourselves; relock all and unlink all.
 *
 * Cases on fd channels (BUF_FD: receive only; ready while poll(2) finds the fd ready) take part
 * in passes 0 and 1 as a buffered channel's receive would: their fd is polled under their
 * channel's lock (or, on a scheduler's task in an edge select, its readiness token looked at:
 * fd_ready), in poll order, so the choice among ready cases stays uniform. (Their closed word
 * is never 0: try_case tells them apart where it tests closed.) A select with an fd case does
 * not snooze before it blocks, as one on rings alone does: each round would poll(2) the fd
 * again. Blocking on them, the waiter parks on their fds too (waiter_park_io), and the park
 * may end in PARK_IO (seam.h): an fd may be ready. Then, as at a time-out, the select wins its
 * own done word (or takes the result of a waker that won it first), relocks every channel,
 * unlinks everything and, still holding every lock, goes back to pass 1: nothing has happened
 * yet. (For its caller the select is still blocked on each of its channels, which may be
 * closed and freed at once: between its sudogs and its locks, it holds each of them all
 * along.) Before queueing on them (pass 2), two checks, with nothing done yet: at most one
 * operation waits on an fd channel at a time (Go's pollDesc has one reader slot and one writer
 * slot): else -EBUSY; and the caller must be able to wait on fds (a thread's eventfd, or the
 * poll thread for another scheduler's task): else the -errno of waiter_io_prepare.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "chan_internal.h"

#define STACK_CASES 8 /* selects up to this size allocate nothing */

/* selectgo's body and the helpers it calls once are compiled into each of its two copies (see
 * selectgo_body): left to itself, the compiler calls a helper that has two callers. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- A fast per-thread PRNG (wyrand), seeded per thread -------------------------------------- */

static _Thread_local uint64_t rng_state;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

__attribute__((noinline)) static uint64_t *rng_self(void)
{
    static _Atomic uint64_t threads;
    uint64_t *s = &rng_state;
    if (unlikely(*s == 0)) {
        uint64_t id = atomic_fetch_add_explicit(&threads, 1, memory_order_relaxed);
        *s = splitmix64((uint64_t)chan_now() ^ (uint64_t)(uintptr_t)s ^ (id << 32)) | 1;
    }
    return s;
}

/* Uniform in [0, n) for n <= 2^32, by a 64x64 -> 128-bit product (bias below n / 2^64). */
static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    *s += 0xa0761d6478bd642full;
    __uint128_t m = (__uint128_t)*s * (*s ^ 0xe7037ed1a0b428dbull);
    uint64_t r = (uint64_t)(m >> 64) ^ (uint64_t)m;
    return (uint32_t)(((__uint128_t)r * n) >> 64);
}

/* ---- Orders --------------------------------------------------------------------------------- */

static uintptr_t addr(const struct chan_case *cases, uint32_t k)
{
    return (uintptr_t)cases[k].chan;
}

/* Sorts lockorder[0, n) by channel address: insertion sort for small selects, heap sort
 * (no allocation, O(n log n)) for large ones, as Go does. */
ALWAYS_INLINE void sort_by_address(const struct chan_case *cases, uint32_t *order, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t k = order[i];
            size_t j = i;
            for (; j > 0 && addr(cases, order[j - 1]) > addr(cases, k); j--)
                order[j] = order[j - 1];
            order[j] = k;
        }
        return;
    }
    for (size_t i = n / 2; i-- > 0;) { /* heapify: a max-heap on address */
        size_t j = i;
        uint32_t k = order[j];
        for (size_t child; (child = 2 * j + 1) < n; j = child) {
            if (child + 1 < n && addr(cases, order[child + 1]) > addr(cases, order[child]))
                child++;
            if (addr(cases, order[child]) <= addr(cases, k))
                break;
            order[j] = order[child];
        }
        order[j] = k;
    }
    for (size_t end = n - 1; end > 0; end--) { /* move the largest to the end, sift down */
        uint32_t k = order[end];
        order[end] = order[0];
        size_t j = 0;
        for (size_t child; (child = 2 * j + 1) < end; j = child) {
            if (child + 1 < end && addr(cases, order[child + 1]) > addr(cases, order[child]))
                child++;
            if (addr(cases, order[child]) <= addr(cases, k))
                break;
            order[j] = order[child];
        }
        order[j] = k;
    }
}

/* Locks (unlocks) each distinct channel of the lock order once, leaving out skip. */
ALWAYS_INLINE void sellock(const struct chan_case *cases, const uint32_t *order, size_t n,
                           const struct chan *skip)
{
    const struct chan *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        struct chan *c = cases[order[i]].chan;
        if (c != prev && c != skip)
            lock(&c->lock);
        prev = c;
    }
}

static void selunlock(const struct chan_case *cases, const uint32_t *order, size_t n,
                      const struct chan *skip)
{
    const struct chan *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        struct chan *c = cases[order[i]].chan;
        if (c != prev && c != skip)
            unlock(&c->lock);
        prev = c;
    }
}

/* ---- Pass 1: one case, under its channel's lock ---------------------------------------------- */

/* The scheduler's token hook (fd_set_token_hook, seam.h), or NULL. */
static int (*_Atomic token_hook)(int fd, short events);

void fd_set_token_hook(int (*fn)(int fd, short events)) { atomic_store(&token_hook, fn); }

void fd_token_drop(int fd, short events)
{
    int (*take)(int, short) = atomic_load_explicit(&token_hook, memory_order_acquire);
    if (take)
        (void)take(fd, events);
}

/* An open fd channel's "value": its fd's readiness now, the revents (POLLIN, POLLOUT, POLLHUP,
 * POLLERR, POLLNVAL ...) stored in *elem; nothing of the fd is consumed. poll(2) without
 * waiting tells, unless the scheduler's netpoller can (Go's pollDesc token, seam.h): it
 * watches the fd and keeps a token of each edge that nobody consumed. An edge select
 * (fdselect_until: its caller's system call has just said EAGAIN, so only an edge since can
 * have made the fd ready) takes the token and believes it, both ways: the token's revents, or
 * not ready without one. A select that keeps poll's level semantics (a receive from the fd
 * channel, chan_fd_wait) polls and leaves the token alone: it is the I/O calls', as Go's
 * pdReady is the reader's, and one taken here from under a chan_read that found EAGAIN before
 * the edge would have that read wait with the data there (its park, level, polls instead:
 * waiter_fds_edge). */
static bool fd_ready(const struct chan *c, void *elem, bool edge)
{
    int (*take)(int, short) = edge ? atomic_load_explicit(&token_hook, memory_order_acquire) : NULL;
    int v = take ? take(c->fd, c->events) : -1;
    if (!edge || v < 0) {
        /* poll is a cancellation point and a select is not one (chan.h): a cancel pending
         * since the thread's park must not unwind it here, under c's lock. */
        struct pollfd p = {.fd = c->fd, .events = c->events};
        int n, cancel_state;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
        while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR) {
        }
        pthread_setcancelstate(cancel_state, NULL);
        v = n > 0 ? p.revents : 0; /* (ENOMEM: as if not yet; the park will tell) */
    }
    if (v == 0)
        return false;
    if (elem)
        memcpy(elem, &v, sizeof v); /* (elemsize sizeof(int)) */
    return true;
}

/* Performs case cs if it is ready: 1 (with *ok, and in *wk a peer to unpark, if any), else 0;
 * and counts in *nio (if not NULL) each case on an open fd channel that is not ready. edge: an
 * edge select's (fd_ready). */
ALWAYS_INLINE int try_case(struct chan_case *cs, bool *ok, struct wakeup *wk, uint32_t *nio,
                           bool edge)
{
    struct chan *c = cs->chan;
    ASSERT(lock_held(&c->lock));
    uint32_t closed = atomic_load_explicit(&c->closed, memory_order_relaxed);
    struct sudog *peer;

    if (cs->dir == CHAN_RECV) {
        if ((peer = waitq_dequeue(&c->sendq))) {
            chan_recv_from(c, peer, cs->elem);
            *wk = wakeup_of(peer->w);
            *ok = true;
        } else if (buf_take_locked(c, cs->elem)) {
            *ok = true;
        } else if (closed) {
            if (unlikely(closed == FD_OPEN)) { /* an fd channel (nobody ever sends on one) */
                if (!fd_ready(c, cs->elem, edge)) {
                    if (nio)
                        ++*nio;
                    return 0;
                }
                *ok = true;
                return 1;
            }
            zero_elem(c, cs->elem);
            *ok = false;
        } else {
            return 0;
        }
        return 1;
    }
    if (closed) {
        *ok = false; /* Go panics here; the contract chooses the case with ok = false (and a
                        send case on an fd channel, the caller's error, fares the same) */
    } else if ((peer = waitq_dequeue(&c->recvq))) {
        chan_send_to(c, peer, cs->elem);
        *wk = wakeup_of(peer->w);
        *ok = true;
    } else if (buf_put_locked(c, cs->elem)) {
        *ok = true;
    } else {
        return 0;
    }
    return 1;
}

/* Pass 1 in poll order: the index of the case performed, or -1 (and in *nio the cases on fd
 * channels, all of them not ready). */
ALWAYS_INLINE int pass1(struct chan_case *cases, const uint32_t *pollorder, size_t norder,
                        struct wakeup *wk, uint32_t *nio, bool edge)
{
    for (size_t i = 0; i < norder; i++) {
        uint32_t k = pollorder[i];
        bool ok;
        if (try_case(&cases[k], &ok, wk, nio, edge)) {
            cases[k].ok = ok;
            return (int)k;
        }
    }
    return -1;
}

/* Whether a case on a channel without a ring may be ready: a racy look, as Go's fast paths take
 * (a closed channel is always ready; otherwise a waiting peer, or room or a value counted). An
 * fd channel's closed word is never 0: it may always be ready, and try_alone polls it. */
static bool maybe_ready(struct chan *c, enum chan_dir dir)
{
    if (atomic_load_explicit(&c->closed, memory_order_relaxed))
        return true;
    if (c->kind == BUF_NONE)
        return !waitq_empty(dir == CHAN_RECV ? &c->sendq : &c->recvq);
    size_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    return dir == CHAN_RECV ? n > 0 : n < c->cap;
}

/* One case alone, under its own channel's lock, as a try-operation would: 1 if performed, 0 if
 * not ready, -1 if the lock was held (nothing done; see pass0 for why it does not wait). */
static int try_alone(struct chan_case *cs, bool edge)
{
    struct chan *c = cs->chan;
    struct wakeup wk = {NULL};
    bool ok;
    if (!trylock(&c->lock))
        return -1;
    int done = try_case(cs, &ok, &wk, NULL, edge);
    ASSERT(slow_bit_agrees(c));
    unlock(&c->lock);
    if (wk.w)
        wakeup_run(wk);
    if (done)
        cs->ok = ok;
    return done;
}

/* Sweeps of pass 0 that may meet a held lock before pass 1 decides. */
enum { PASS0_SWEEPS = 4 };

/* Whether lock l, held, is freed within LOCK_SPIN rounds (as long as lock_slow spins before it
 * sleeps): watched, not taken. */
static bool lock_freed(chanlock_t *l)
{
    for (int i = 0; i < LOCK_SPIN; i++) {
        caa_cpu_relax();
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0)
            return true;
    }
    return false;
}

/* Pass 0, in poll order, one channel at a time: the index of the first case performed, -2 when
 * none was ready and every case is on a ring, else -1. A case on a ring that runs lock-free is
 * tried on the ring; any other case on a buffered or fd channel that may be ready, under its
 * own channel's lock alone; an unbuffered case that may be ready ends pass 0 (-1: there taking
 * every lock at once measured better, as peers come and go from the wait queues). Each case is
 * thus performed atomically, and the first ready one in poll order wins: the choice among ready
 * cases stays uniformly random. That holds only for a sweep that never waited: had it waited
 * for a held lock and then performed that case, a case passed over as not ready could have found
 * its peer during the wait (typically a select queueing on both channels under that very lock)
 * and still lost. So a held lock is watched until it is free, then the sweep starts again from
 * the first case; a lock held longer, or a few sweeps that each met one, end pass 0 (-1), and
 * pass 1 decides under every lock at once, as Go's selectgo does. Only the decision to block
 * needs all the locks at once (pass 1); most selects on busy channels never get there. */
static int pass0(struct chan_case *cases, const uint32_t *pollorder, size_t norder, bool edge)
{
    int none = -2;
    unsigned sweeps = PASS0_SWEEPS;
    for (size_t i = 0; i < norder; i++) {
        uint32_t k = pollorder[i];
        struct chan *c = cases[k].chan;
        if (c->kind == BUF_RING) {
            int r = cases[k].dir == CHAN_RECV ? ring_tryrecv(c, cases[k].elem)
                                              : ring_trysend(c, cases[k].elem);
            if (r == RING_OK) {
                cases[k].ok = true;
                return (int)k;
            }
            if (r == RING_NO)
                continue;
        } else if (!maybe_ready(c, cases[k].dir)) {
            none = -1;
            continue;
        } else if (c->kind == BUF_NONE) {
            return -1;
        }
        int r = try_alone(&cases[k], edge);
        if (r > 0)
            return (int)k;
        if (r < 0) { /* held: once it is free, sweep again from the first case */
            COUNT(sel_busy);
            if (--sweeps == 0 || !lock_freed(&c->lock))
                return -1;
            i = (size_t)-1, none = -2;
            continue;
        }
        if (c->kind != BUF_RING)
            none = -1; /* a snooze helps rings alone: on an fd case each round would poll(2) */
    }
    return none;
}

ALWAYS_INLINE bool has_ring(const struct chan_case *cases, const uint32_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cases[order[i]].chan->kind == BUF_RING)
            return true;
    return false;
}

/* Pass 1's last look, every lock held, after pass 1 found no case ready. Under the locks no
 * peer can queue and no channel can close, but a ring's lock-free paths may have filled or
 * emptied it meanwhile: each case's buffer is tried once more, in poll order, by its last look
 * (buf_put_last, buf_take_last), which stops its ring's lock-free paths first. The index of the
 * case performed, or -1. Either way the rings stay stopped until the select queues its sudogs
 * or gives up on waiting (wait_cancel): so "no case is ready" holds at one instant for every
 * channel at once, as Go's pass 1 under all the locks. */
ALWAYS_INLINE int pass1_last(struct chan_case *cases, const uint32_t *pollorder, size_t norder)
{
    for (size_t i = 0; i < norder; i++) {
        struct chan_case *cs = &cases[pollorder[i]];
        if (cs->dir == CHAN_RECV ? buf_take_last(cs->chan, cs->elem)
                                 : buf_put_last(cs->chan, cs->elem)) {
            cs->ok = true;
            return (int)pollorder[i];
        }
    }
    return -1;
}

/* ---- Blocking on fd cases ------------------------------------------------------------------ */

/* Whether an operation waits on fd channel c (c->lock held): a queued sudog whose waiter is
 * still waiting. (One whose waiter is done lingers only until its owner unlinks it.) */
static bool fd_waited(struct chan *c)
{
    for (struct sudog *sg = atomic_load_explicit(&c->recvq.first, memory_order_relaxed); sg;
         sg = sg->next)
        if (!atomic_load_explicit(&sg->w->done, memory_order_relaxed))
            return true;
    return false;
}

/* Pass 2's checks and bookkeeping for a select about to wait on w->nio fd cases (every lock
 * held, nothing queued yet): their fds and events into io[1 .. nio] for the park. 0, or -EBUSY
 * (another operation waits on one of these fd channels), or waiter_io_prepare's -errno (it may
 * make the thread's eventfd or start the poll thread: last, so that a select that will not wait
 * does neither). */
static int io_prepare(const struct chan_case *cases, const uint32_t *lockorder, size_t norder,
                      struct waiter *w, struct pollfd *io)
{
    uint32_t j = 0;
    for (size_t i = 0; i < norder; i++) {
        struct chan *c = cases[lockorder[i]].chan;
        if (c->kind != BUF_FD)
            continue;
        if (fd_waited(c))
            return -EBUSY;
        io[++j] = (struct pollfd){.fd = c->fd, .events = c->events};
    }
    ASSERT(j == w->nio);
    return waiter_io_prepare(w);
}

/* ---- selectgo -------------------------------------------------------------------------------- */

ALWAYS_INLINE int validate(const struct chan_case *cases, size_t n)
{
    if ((n > 0 && !cases) || n > CHAN_SELECT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const struct chan_case *cs = &cases[i];
        if (cs->dir != CHAN_SEND && cs->dir != CHAN_RECV)
            return -EINVAL;
        if (cs->dir == CHAN_SEND && cs->chan && cs->chan->elemsize && !cs->elem)
            return -EINVAL;
    }
    return 0;
}

/* A select's bookkeeping, handed to select_again after a PARK_IO. */
struct selbook {
    uint32_t *pollorder, *lockorder;
    size_t norder;
    struct sudog *sgs;
    struct pollfd *io;
};

static int select_again(struct chan_case *cases, size_t n, int64_t deadline, bool edge,
                        const struct selbook *book);

/* Go's selectgo, compiled three times: selectgo (again NULL, edge false) for every select,
 * select_again's copy, which a select enters after a PARK_IO, with every channel of its cases
 * still locked and its bookkeeping (again), and loops in, back to pass 1, for as long as its
 * parks end so, and fdselect_until's (edge true: see fd_ready). A loop in the first copy would
 * cost every select, the ones that never block included: the compiler hoists the loop's work
 * out of it onto their path (measured with callgrind on a select over two rings, one ready:
 * +12 instructions a select). */
ALWAYS_INLINE int selectgo_body(struct chan_case *cases, size_t n, int64_t deadline,
                                const struct selbook *again, bool edge)
{
    /* Bookkeeping: two orders and, for a select that may block, one sudog per case and the
     * pollfds its park may need (one per case, and the parker's). On the stack up to
     * STACK_CASES cases; one heap block beyond. */
    uint32_t orders_stack[2 * STACK_CASES];
    struct sudog sudogs_stack[STACK_CASES];
    struct pollfd io_stack[STACK_CASES + 1];
    uint32_t *pollorder = orders_stack, *lockorder = orders_stack + STACK_CASES;
    struct sudog *sgs = sudogs_stack;
    void *heap = NULL; /* the pollfds first, then the sudogs, then the orders */
    size_t norder = 0;
    int chosen, err;
    if (again) { /* validated, ordered and locked already: on to pass 1 */
        pollorder = again->pollorder, lockorder = again->lockorder, norder = again->norder;
        sgs = again->sgs;
        goto relook;
    }
    if ((err = validate(cases, n)))
        return err;
    if (n > STACK_CASES) {
        size_t nfd = deadline == NOWAIT ? 0 : n + 1, nsg = deadline == NOWAIT ? 0 : n;
        heap = chan_malloc(nfd * sizeof(struct pollfd) + nsg * sizeof(struct sudog) +
                           2 * n * sizeof(uint32_t));
        if (!heap)
            return -ENOMEM;
        sgs = (struct sudog *)((struct pollfd *)heap + nfd);
        pollorder = (uint32_t *)(sgs + nsg);
        lockorder = pollorder + n;
    }

    /* Poll order: inside-out Fisher-Yates over the cases with a channel. */
    uint64_t *rng = rng_self();
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].chan)
            continue;
        uint32_t j = rng_below(rng, (uint32_t)norder + 1);
        pollorder[norder] = pollorder[j];
        pollorder[j] = (uint32_t)i;
        norder++;
    }
    if (norder == 0) { /* only NULL channels, or none: Go's select {} */
        chan_mfree(heap);
        err = cannot_wait(deadline);
        return err ? err : park_nothing(deadline, n ? WAIT_SELECT : WAIT_SELECT_NO_CASES);
    }
    /* A select about to block on rings alone snoozes first, as a blocking send or receive on a
     * ring does: a peer on another CPU usually makes a case ready well before a parked select
     * would be woken. (On an unbuffered channel a peer shows up by queueing itself: there the
     * locked pass and the parker's own spin do better, as measured.) */
    chosen = pass0(cases, pollorder, norder, edge);
    unsigned rounds = chosen == -2 ? snooze_rounds(deadline) : 0;
    for (unsigned i = 0; chosen == -2 && i < rounds; i++) {
        ring_snooze(i);
        chosen = pass0(cases, pollorder, norder, edge);
    }
    if (chosen >= 0) {
        chan_mfree(heap);
        return chosen;
    }
    COUNT(sel_locked);
    memcpy(lockorder, pollorder, norder * sizeof *lockorder);
    sort_by_address(cases, lockorder, norder);
    sellock(cases, lockorder, norder, NULL);

    /* Pass 1. Buffered channels' rings may change under it through their lock-free paths,
     * so a case found ready is performed atomically (by the ring's CAS); but "nothing ready"
     * needs one instant at which it held for every channel: the last look. */
relook:; /* every lock held */
    struct wakeup wk = {NULL};
    uint32_t nio = 0;
    chosen = pass1(cases, pollorder, norder, &wk, &nio, edge);
    bool last = chosen < 0 && has_ring(cases, lockorder, norder);
    if (last)
        chosen = pass1_last(cases, pollorder, norder);
    err = chosen >= 0 ? 0 : cannot_wait(deadline);
    if (chosen >= 0 || err) {
        for (size_t i = 0; last && i < norder; i++)
            wait_cancel(cases[lockorder[i]].chan);
        ASSERT(chosen < 0 || slow_bit_agrees(cases[chosen].chan));
        selunlock(cases, lockorder, norder, NULL);
        if (wk.w)
            wakeup_run(wk);
        chan_mfree(heap);
        return chosen >= 0 ? chosen : err;
    }

    /* Pass 2: queue a sudog per case, in lock order, so that the sudogs of one channel are
     * adjacent and can be tied in their `same` ring. */
    struct waiter w;
    waiter_init(&w, WAIT_SELECT, deadline);
    w.sudogs = sgs;
    w.nsudog = (uint32_t)norder;
    w.nio = nio;
    w.edge = edge;
    struct pollfd *io = again ? again->io : heap ? heap : io_stack;
    w.io = io + 1; /* io_prepare's copy: io[1 .. nio] (io[0] is the parker's) */
    if (unlikely(nio) && (err = io_prepare(cases, lockorder, norder, &w, io))) {
        for (size_t i = 0; last && i < norder; i++) /* the last look stopped them: restart */
            wait_cancel(cases[lockorder[i]].chan);
        selunlock(cases, lockorder, norder, NULL);
        chan_mfree(heap);
        return err;
    }
    for (size_t i = 0; i < norder; i++) {
        uint32_t k = lockorder[i];
        struct sudog *sg = &sgs[i];
        *sg = (struct sudog){.w = &w,
                             .c = cases[k].chan,
                             .elem = cases[k].elem,
                             .index = k,
                             .is_send = cases[k].dir == CHAN_SEND};
        if (i > 0 && sgs[i - 1].c == sg->c) {
            sg->same = sgs[i - 1].same;
            sgs[i - 1].same = sg;
        } else {
            sg->same = sg;
        }
        waiter_enqueue(sg);
    }
    if (tracing(TF_EVENTS))
        trace_block(&w, true);
    selunlock(cases, lockorder, norder, NULL);

    /* Pass 3. */
    int r = likely(!nio) ? waiter_park(&w, deadline) : waiter_park_io(&w, io, deadline);
    if (r != 0 && waiter_withdraw(&w, r) != 0) {
        sellock(cases, lockorder, norder, NULL);
        for (size_t i = 0; i < norder; i++)
            waiter_unlink(&sgs[i]);
        if (unlikely(r == PARK_IO)) {
            /* Look again without letting go of any channel (see the top of the file). */
            if (again)
                goto relook;
            struct selbook book = {pollorder, lockorder, norder, sgs, io};
            r = select_again(cases, n, deadline, edge, &book);
            chan_mfree(heap);
            return r;
        }
        selunlock(cases, lockorder, norder, NULL);
        /* r: -ETIMEDOUT, or the error with which a plugged-in scheduler's park gave up */
    } else {
        /* Never touch the channel that woke us: it may be freed already. */
        const struct chan *fc = w.fired->c;
        if (fc != sgs[0].c || fc != sgs[norder - 1].c) {
            sellock(cases, lockorder, norder, fc);
            for (size_t i = 0; i < norder; i++)
                if (sgs[i].c != fc)
                    waiter_unlink(&sgs[i]);
            selunlock(cases, lockorder, norder, fc);
        }
        r = (int)w.fired->index;
        cases[r].ok = w.ok;
    }
    if (tracing(TF_EVENTS))
        trace_woken(&w, r, true);
    chan_mfree(heap);
    return r;
}

static int selectgo(struct chan_case *cases, size_t n, int64_t deadline)
{
    return selectgo_body(cases, n, deadline, NULL, false);
}

/* A select that parked on fds and was told one may be ready (PARK_IO) looks at its cases again
 * from pass 1 (nothing has happened yet, so this is exact), in the same poll order, with every
 * channel of its cases still locked. */
static __attribute__((noinline, cold)) int select_again(struct chan_case *cases, size_t n,
                                                        int64_t deadline, bool edge,
                                                        const struct selbook *book)
{
    return selectgo_body(cases, n, deadline, book, edge);
}

int select_recv(struct chan *c, void *elem, int64_t deadline)
{
    struct chan_case cs = {.chan = c, .elem = elem, .dir = CHAN_RECV};
    int r = selectgo(&cs, 1, deadline);
    if (r < 0)
        return r;
    return cs.ok ? 0 : -EPIPE; /* selectgo zeroed *elem */
}

/* A select while a trace records: its cases, then its result, around selectgo. The public forms
 * call it behind tracing(), so that the untraced path stays a tail call to selectgo (cold and
 * inline: as chan.c's traced_send). */
static inline __attribute__((cold)) int traced_select(struct chan_case *cases, size_t n,
                                                      int64_t deadline, enum trace_form form)
{
    uint32_t gen = trace_begin();
    trace_select_cases(cases, n);
    int r = selectgo(cases, n, deadline);
    trace_select(cases, n, form, r, gen);
    return r;
}

int chan_select(struct chan_case *cases, size_t n)
{
    if (tracing(TF_EVENTS))
        return traced_select(cases, n, CHAN_FOREVER, TR_BLOCK);
    return selectgo(cases, n, CHAN_FOREVER);
}

int chan_tryselect(struct chan_case *cases, size_t n)
{
    if (tracing(TF_EVENTS))
        return traced_select(cases, n, NOWAIT, TR_TRY);
    return selectgo(cases, n, NOWAIT);
}

int chan_select_until(struct chan_case *cases, size_t n, int64_t deadline)
{
    int64_t d = deadline == NOWAIT ? NOWAIT + 1 : deadline;
    if (tracing(TF_EVENTS))
        return traced_select(cases, n, d, TR_UNTIL);
    return selectgo(cases, n, d);
}

int fdselect_until(struct chan_case *cases, size_t n, int64_t deadline)
{
    int64_t d = deadline == NOWAIT ? NOWAIT + 1 : deadline;
    if (tracing(TF_EVENTS)) /* (traced as a plain select: the edge is a hint of io/'s) */
        return traced_select(cases, n, d, TR_UNTIL);
    return selectgo_body(cases, n, d, NULL, true);
}
