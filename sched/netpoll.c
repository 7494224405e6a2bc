/* SPDX-License-Identifier: MIT */
/*
 * netpoll.c - libchan-mpg's netpoller, after Go's runtime/netpoll.go and netpoll_epoll.go. A G
 * that must wait for an fd (a select with cases on fd channels: chan_fd_wait, chan_read and the
 * other calls of chan_io.h) parks as any G does, and the scheduler watches its fds for it: no
 * thread per blocked G, and no thread hop when an fd becomes ready.
 *
 *  - One epoll set, edge-triggered. An fd joins it the first time a G looks at its token (an
 *    I/O call) or parks on it (any select over its fd channel), for both directions at once
 *    (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), and stays until chan_fd_close takes it out
 *    (the close hook of seam.h, just before close(2)): Go's netpollopen and netpollclose. An
 *    eventfd in the set breaks a blocking wait (netpollBreak).
 *  - One descriptor per fd number (Go's pollDesc), in chunks of CHUNK that live until
 *    chan_mpg_stop: whether the fd is in the set, and for each direction the G that waits
 *    (Go's rg and wg) with the seq of its wake word when it registered, and the token: the
 *    revents of the last edge that no I/O call has taken yet (Go's pdReady). Every event sets
 *    it (also the one that wakes a G: its select takes it when it looks again), as does the
 *    edge epoll reports for current readiness when an fd joins; the waits of io/'s I/O calls
 *    take it (netpoll_token, seam.h's token hook), and the calls drop it before each system
 *    call (Go's pollReset). Those waits believe it both ways (seam.h, fdselect_until): a
 *    token is readiness, no token on a watched fd is none, with no poll(2); a stale token
 *    costs the I/O call its system call again. chan_fd_wait and receives from fd channels keep
 *    poll's level answer: they poll and leave the token, which is the I/O calls' (taken by a
 *    look of another G, it would be lost to a read that found EAGAIN before its edge and
 *    looks after), and their park polls once more when registered. A small spin lock
 *    guards each descriptor; its holders never block and never take another lock (the close
 *    hook is called with io/'s table lock held: that lock comes first).
 *  - A G parks on its fds in three steps (proc.c, g_park_fds). netpoll_arm registers it in
 *    each fd's descriptor and, for an I/O call's wait, looks at their tokens, under the
 *    descriptor's lock: an edge from before the registration left one there (the park is not
 *    made: PARK_IO, the select looks again and takes it), and every edge after it finds the G
 *    registered; a level wait polls its fds instead, once registered. The G parks.
 *    netpoll_disarm unregisters it, under each descriptor's lock: after that no event of this
 *    registration can reach it.
 *  - An event for a direction wakes the G registered there by a CAS from its exact word, like
 *    the timers (so that an event can never wake a later park): seq|RUN, the G has registered
 *    but not yet committed its park, becomes seq|IOREADY, which its commit turns into "run
 *    again, PARK_IO" (proc.c, park_commit); (seq+1)|PARKED, the park it registered for,
 *    becomes RUN with park_rc PARK_IO, and the G is handed to the poller's caller to run. Any
 *    other word means the G was woken otherwise (an unpark, its timer): nothing to do. The CAS
 *    is made under the descriptor's lock, which netpoll_disarm takes.
 *  - Who polls (proc.c, sysmon.c): an M that found nothing in its queues nor the global one,
 *    before it steals (Go's findrunnable: netpoll(0)), unless an M is blocked in epoll_wait;
 *    the idle M that sleeps until the earliest timer (sched.timer_m), which sleeps in
 *    epoll_wait until that timer instead of on its futex while any G waits on an fd (Go's
 *    "block in netpoll"); and sysmon, when nobody has polled for NETPOLL_SYSMON_NS while Gs
 *    wait (Go's sysmon does, every 10 ms). The Gs one poll wakes go to the run queues as one
 *    batch (proc.c's inject, Go's injectglist): the first to the polling M's P (the blocking
 *    one takes an idle P for them), as many as there are idle Ps to the global queue with an M
 *    started for each, the rest to the polling M's P too; all to the global queue when it has
 *    none (sysmon).
 *  - The count of armed Gs (Go's netpollWaiters) says whether polling is worth a system call,
 *    and keeps the deadlock check from calling a G that waits on the world asleep forever.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <urcu/arch.h>

#include "sched/sched_internal.h"

#define CHUNK_BITS 10
#define CHUNK (1 << CHUNK_BITS) /* descriptors per chunk */
#define DIR_SIZE 4096           /* chunks: fd numbers below 4M have descriptors */
#define EVENTS 128              /* events taken per epoll_wait (Go's 128) */
#define BREAK_KEY UINT64_MAX    /* the eventfd's key in the set (fds are keyed by number) */

enum { RD, WR };

/* Go's pollDesc, for one fd number. */
struct pdesc {
    _Atomic uint32_t lock;
    bool armed;   /* in the epoll set */
    bool unwatch; /* epoll refused it (a regular file): netpoll_token leaves it to poll(2) */
    struct {
        struct g *g;            /* the G waiting in this direction, or NULL */
        uint64_t seq;           /* its wake word's seq when it registered */
        int token;              /* Go's pdReady: the revents of the last edge in this
                                   direction that no select has taken yet, or 0 */
    } w[2];                     /* [RD] POLLIN, [WR] POLLOUT */
} __attribute__((aligned(64))); /* a line each: Ms work on neighbouring fds */

static struct {
    int epfd, efd;            /* the epoll set; the eventfd that breaks a wait on it */
    _Atomic bool wakesig;     /* a break is pending (Go's netpollWakeSig) */
    _Atomic int64_t lastpoll; /* when an M last polled; 0 while one blocks in epoll_wait */
    _Atomic long waiters;     /* Gs armed (Go's netpollWaiters) */
    pthread_mutex_t mu;       /* making chunks */
    struct pdesc *_Atomic dir[DIR_SIZE];
} np = {.epfd = -1, .efd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- Descriptors --------------------------------------------------------------------------- */

static void pd_lock(struct pdesc *pd)
{
    unsigned spins = 0;
    while (atomic_exchange_explicit(&pd->lock, 1, memory_order_acquire))
        while (atomic_load_explicit(&pd->lock, memory_order_relaxed))
            if (++spins % 128 == 0)
                sched_yield(); /* the holder's thread was preempted */
            else
                caa_cpu_relax();
}

static void pd_unlock(struct pdesc *pd)
{
    atomic_store_explicit(&pd->lock, 0, memory_order_release);
}

/* fd's descriptor, its chunk made if need be (make): NULL for a number beyond the directory,
 * or when no memory can be had. Any thread, no lock. */
static struct pdesc *pd_of(int fd, bool make)
{
    if (fd < 0 || fd >= DIR_SIZE * CHUNK)
        return NULL;
    struct pdesc *_Atomic *slot = &np.dir[fd >> CHUNK_BITS];
    struct pdesc *c = atomic_load_explicit(slot, memory_order_acquire);
    if (!c && make) {
        pthread_mutex_lock(&np.mu);
        c = atomic_load_explicit(slot, memory_order_relaxed);
        if (!c && posix_memalign((void **)&c, 64, CHUNK * sizeof *c) == 0) {
            memset(c, 0, CHUNK * sizeof *c);
            atomic_store_explicit(slot, c, memory_order_release);
        }
        pthread_mutex_unlock(&np.mu);
    }
    return c ? &c[fd & (CHUNK - 1)] : NULL;
}

static int dir_of(short events) { return events == POLLIN ? RD : WR; }

/* ---- Arming a G, and disarming it ------------------------------------------------------------ */

static void disarm(struct g *g, uint64_t seq, const struct pollfd *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pdesc *pd = pd_of(fds[i].fd, false);
        if (!pd)
            continue;
        int d = dir_of(fds[i].events);
        pd_lock(pd);
        if (pd->w[d].g == g && pd->w[d].seq == seq)
            pd->w[d].g = NULL;
        pd_unlock(pd);
    }
}

/* Go's netpollopen, under pd's lock: fd joins the set, for good (until chan_fd_close). An fd
 * that is already there (EEXIST: closed with close(2) behind chan_fd_close's back, or a dup of
 * one) counts as joined. */
static int pd_open(struct pdesc *pd, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)fd};
    if (epoll_ctl(np.epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST)
        return -errno;
    pd->armed = true;
    return 0;
}

int netpoll_arm(struct g *g, uint64_t seq, struct pollfd *fds, size_t n, bool edge)
{
    bool token = false;
    for (size_t i = 0; i < n; i++) {
        struct pdesc *pd = pd_of(fds[i].fd, true);
        int err = pd ? 0 : -ENOMEM;
        if (pd) {
            pd_lock(pd);
            if (!pd->armed)
                err = pd_open(pd, fds[i].fd);
            if (!err) {
                int d = dir_of(fds[i].events);
                pd->w[d].g = g;
                pd->w[d].seq = seq;
                token |= edge && pd->w[d].token != 0;
            }
            pd_unlock(pd);
        }
        if (err) {
            disarm(g, seq, fds, i);
            return err;
        }
    }
    atomic_fetch_add_explicit(&np.waiters, 1, memory_order_seq_cst);
    /* An edge that came before the registration found no G and left its token, which the edge
     * select takes when it looks again (left here, so that it does not poll). A level select
     * takes no token (select.c, fd_ready: another G's I/O call may have taken it meanwhile, or
     * it may be stale): its fds are polled now that every later edge reaches the G. */
    if (!edge) {
        int k;
        while ((k = poll(fds, n, 0)) < 0 && errno == EINTR) {
        }
        token = k > 0; /* (ENOMEM: as if not ready; the edges still come) */
    }
    if (token) {
        netpoll_disarm(g, seq, fds, n);
        return PARK_IO;
    }
    return 0;
}

int netpoll_token(int fd, short events)
{
    struct m *m = m_self();
    struct pdesc *pd = m && m->curg ? pd_of(fd, true) : NULL;
    if (!pd)
        return -1; /* not on a G (a thread of the pthread parker: it polls), or no memory */
    int d = dir_of(events), t = -1;
    pd_lock(pd);
    if (pd->armed) {
        t = pd->w[d].token;
        pd->w[d].token = 0;
    } else if (!pd->unwatch && pd_open(pd, fd) < 0) {
        /* The fd joins the set at the first look at its token, whether a wait follows or not
         * (an fd that is ready at each look would otherwise be polled for ever). This look
         * polls: the edge of the fd's readiness now, which epoll reports on joining, comes
         * later. */
        pd->unwatch = true;
    }
    pd_unlock(pd);
    return t;
}

void netpoll_disarm(struct g *g, uint64_t seq, const struct pollfd *fds, size_t n)
{
    disarm(g, seq, fds, n);
    atomic_fetch_sub_explicit(&np.waiters, 1, memory_order_seq_cst);
}

bool netpoll_waiting(void) { return atomic_load_explicit(&np.waiters, memory_order_seq_cst) > 0; }

/* io/'s close hook (seam.h): fd is about to be closed, every call on it has returned. It leaves
 * the set (Go's netpollclose), so that a new file of the same number joins it afresh. A G may
 * still be registered here on its way out of a select woken by the fd channel's close: it
 * unregisters itself; the next G to register takes its place. */
static void forget(int fd)
{
    struct pdesc *pd = pd_of(fd, false);
    if (!pd)
        return;
    pd_lock(pd);
    if (pd->armed) {
        (void)epoll_ctl(np.epfd, EPOLL_CTL_DEL, fd, NULL);
        pd->armed = false;
    }
    pd->unwatch = false;
    pd->w[RD].token = pd->w[WR].token = 0;
    pd_unlock(pd);
}

/* ---- Polling --------------------------------------------------------------------------------- */

/* Go's netpollunblock and netpollready, under pd's lock: the G registered in direction d is
 * woken for the park it registered for, if it is still in it (see the top of the file). Returns
 * the G if it was parked (the caller runs it), else NULL. */
static struct g *pd_ready(struct pdesc *pd, int d)
{
    struct g *g = pd->w[d].g;
    if (!g)
        return NULL;
    uint64_t seq = pd->w[d].seq;
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_acquire);
    for (;;) {
        uint64_t nv;
        if (v == (seq << 2 | W_RUN))
            nv = seq << 2 | W_IOREADY;
        else if (v == ((seq + 1) << 2 | W_PARKED))
            nv = (seq + 1) << 2 | W_RUN;
        else
            return NULL; /* noted already, or woken otherwise */
        if (atomic_compare_exchange_weak_explicit(&g->wake, &v, nv, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            if ((nv & W_MASK) != W_RUN)
                return NULL;
            g->park_rc = PARK_IO;
            return g;
        }
    }
}

/* epoll_wait until the absolute deadline, to the nanosecond (epoll_pwait2, Linux 5.11), or to
 * the millisecond rounded up where the kernel has no epoll_pwait2. */
static int epoll_until(struct epoll_event *ev, int64_t deadline)
{
    if (deadline == CHAN_FOREVER)
        return epoll_wait(np.epfd, ev, EVENTS, -1);
    int64_t left = deadline - chan_now();
    if (left < 0)
        left = 0;
#ifdef SYS_epoll_pwait2
    static _Atomic bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
        long r = syscall(SYS_epoll_pwait2, np.epfd, ev, EVENTS, &ts, NULL, 0);
        if (r >= 0 || errno != ENOSYS)
            return (int)r;
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
#endif
    int64_t ms = (left + 999999) / 1000000;
    return epoll_wait(np.epfd, ev, EVENTS, ms > 1000000000 ? 1000000000 : (int)ms);
}

int netpoll(int64_t deadline, struct g **list)
{
    struct epoll_event ev[EVENTS];
    bool block = deadline != 0;
    int n;
    if (block)
        atomic_store_explicit(&np.lastpoll, 0, memory_order_seq_cst);
    while ((n = block ? epoll_until(ev, deadline) : epoll_wait(np.epfd, ev, EVENTS, 0)) < 0) {
        if (errno != EINTR) {
            n = 0;
            break;
        }
        if (!block)
            continue;
        /* A signal: the same wait, to the same deadline, unless it has come. */
        if (deadline != CHAN_FOREVER && chan_now() >= deadline) {
            n = 0;
            break;
        }
    }
    /* Go's lastpoll: 0 stays while the blocking poller is in epoll_wait, which a poll without
     * waiting that ends meanwhile must not overwrite (the Ms would poll too, for nothing). */
    if (block) {
        atomic_store_explicit(&np.lastpoll, chan_now(), memory_order_seq_cst);
    } else {
        int64_t last = atomic_load_explicit(&np.lastpoll, memory_order_relaxed);
        if (last != 0)
            atomic_compare_exchange_strong(&np.lastpoll, &last, chan_now());
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 == BREAK_KEY) {
            /* Only a blocking poll takes the break, which is meant for it (Go's): the eventfd
             * stays readable for it until then. */
            if (block) {
                uint64_t v;
                (void)!read(np.efd, &v, sizeof v);
                atomic_store_explicit(&np.wakesig, false, memory_order_seq_cst);
            }
            continue;
        }
        struct pdesc *pd = pd_of((int)ev[i].data.u64, false);
        if (!pd)
            continue;
        /* The edge's token, as poll(2) would report it, for the select that looks next: the
         * G woken here, or the next to wait (Go's netpollunblock leaves pdReady either way). */
        uint32_t e = ev[i].events;
        int bad = (int)(e & (EPOLLHUP | EPOLLERR));
        int rt = e & (EPOLLIN | EPOLLRDHUP) ? POLLIN | bad : bad;
        int wt = e & EPOLLOUT ? POLLOUT | bad : bad;
        pd_lock(pd);
        struct g *r = NULL, *w = NULL;
        if (pd->armed && rt) {
            pd->w[RD].token = rt;
            r = pd_ready(pd, RD);
        }
        if (pd->armed && wt) {
            pd->w[WR].token = wt;
            w = pd_ready(pd, WR);
        }
        pd_unlock(pd);
        if (r) {
            r->next_free = *list; /* borrowed as a list link, as timers_run does */
            *list = r;
            k++;
        }
        if (w && w != r) {
            w->next_free = *list;
            *list = w;
            k++;
        }
    }
    return k;
}

void netpoll_break(void)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&np.wakesig, &expected, true))
        return; /* one is pending: the blocked M will return */
    uint64_t one = 1;
    while (write(np.efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

bool netpoll_blocked(void) { return atomic_load_explicit(&np.lastpoll, memory_order_relaxed) == 0; }

bool netpoll_due(int64_t now)
{
    int64_t last = atomic_load_explicit(&np.lastpoll, memory_order_relaxed);
    return last != 0 && now - last > NETPOLL_SYSMON_NS && netpoll_waiting() &&
           atomic_compare_exchange_strong(&np.lastpoll, &last, now);
}

/* ---- Start and stop -------------------------------------------------------------------------- */

int netpoll_init(void)
{
    np.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (np.epfd < 0)
        return -errno;
    np.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = BREAK_KEY}; /* level: see netpoll */
    if (np.efd < 0 || epoll_ctl(np.epfd, EPOLL_CTL_ADD, np.efd, &ev) < 0) {
        int err = -errno;
        netpoll_fini();
        return err;
    }
    atomic_store(&np.wakesig, false);
    atomic_store(&np.lastpoll, chan_now());
    atomic_store(&np.waiters, 0);
    fd_set_close_hook(forget);
    fd_set_token_hook(netpoll_token);
    return 0;
}

void netpoll_fini(void)
{
    fd_set_close_hook(NULL);
    fd_set_token_hook(NULL);
    if (np.efd >= 0)
        close(np.efd);
    if (np.epfd >= 0)
        close(np.epfd);
    np.efd = np.epfd = -1;
    for (int i = 0; i < DIR_SIZE; i++) {
        free(atomic_load_explicit(&np.dir[i], memory_order_relaxed));
        atomic_store_explicit(&np.dir[i], NULL, memory_order_relaxed);
    }
}
