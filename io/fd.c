/* SPDX-License-Identifier: MIT */
/*
 * fd.c - file descriptors as channels, and I/O that waits on them: chan_fd_chan, chan_fd_wait,
 * chan_read, chan_write, chan_accept, chan_connect, chan_fd_close, chan_sleep_until.
 *
 * The waiting is the core's (seam.h): an fd channel is ready when poll(2) finds its fd ready,
 * and a select over it parks on the fd (the pthread parker sleeps in ppoll). This file keeps
 * the library's record of each fd it was given, after Go's pollDesc and fdMutex:
 *
 *  - The table maps fd -> record, under tab.mu. A record holds the fd's two fd channels (made
 *    on first use), how many calls are in flight on the fd (refs), and what the first I/O call
 *    learned (O_NONBLOCK set, a socket or not).
 *  - Every call but chan_fd_chan holds a reference from its lookup to its return, so the fd
 *    stays open and its channels allocated while it waits, reads or writes.
 *  - chan_fd_close (Go's Close: evict, then wait for the references, then close) marks the
 *    record closing (new lookups get -EBADF), closes its channels (every waiter wakes as on a
 *    closed channel and returns -EBADF), waits until no reference is left, and then, still
 *    under tab.mu, tells the scheduler that waits on fds (seam.h: fd_set_close_hook; sched/'s
 *    netpoller takes the fd out of its epoll set), takes the record out of the table and
 *    close(2)s the fd: no lookup can come between them, so a new fd of the same number never
 *    meets the old record.
 *  - It waits for the references on a channel, which the last call to leave closes (Go's
 *    fdMutex wakes the closer through a semaphore): a G that closes an fd parks, its thread runs
 *    other Gs meanwhile.
 * tab.mu is held only over the table and the record (with fcntl, fstat, close(2), fdchan_make
 * and chan_make, allocations, and the close hook under it): no other channel operation and no
 * lock of the core is taken with it held, and fdchan_close runs without it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan_io.h"
#include "seam.h"
#include "trace/hooks.h" /* the role of its fd channels, for the leftovers report */

struct fdrec {
    chan_t *ch[2]; /* the fd channels: [0] POLLIN, [1] POLLOUT; NULL until first asked for */
    unsigned refs; /* calls in flight on the fd */
    chan_t *left;  /* while chan_fd_close waits for refs to drop to 0: closed when they do */
    bool closing;  /* chan_fd_close has begun */
    bool io;       /* an I/O call has set O_NONBLOCK and looked at the kind of file */
    bool sock;     /* a socket: writes go through send(MSG_NOSIGNAL) */
};

static struct {
    pthread_mutex_t mu;
    struct fdrec **rec; /* by fd; NULL where the library knows nothing */
    size_t n;           /* slots in rec */
} tab = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* While chan_fd_close waits for the calls on an fd to leave and cannot get a channel to wait
 * on (no memory), it looks again this often. */
#define LEFT_POLL_NS 1000000

/* The scheduler's hook (seam.h): told of each fd with a record just before close(2). */
static void (*_Atomic close_hook)(int fd);

void fd_set_close_hook(void (*fn)(int fd)) { atomic_store(&close_hook, fn); }

/* fork() from any thread: the child gets the table consistent (prepare takes the lock); the
 * parent's other threads are not in the child, so their calls in flight never end there. Nor
 * does a chan_fd_close that another thread had begun (its record marked closing, still in the
 * table, so its close(2) had not come: that is done under tab.mu, which the fork waited for):
 * the child finishes it, as the caller asked before the fork - the fd is closed there too and
 * its number free, a later call on it gets -EBADF, a new fd of that number a new record. Only
 * async-signal-safe work here: the record and its channels, which the closer may be closing
 * (fdchan_close runs without tab.mu), are left as they are, a few bytes the child never frees. */
static void tab_prepare(void) { pthread_mutex_lock(&tab.mu); }
static void tab_parent(void) { pthread_mutex_unlock(&tab.mu); }
static void tab_child(void)
{
    for (size_t i = 0; i < tab.n; i++) {
        struct fdrec *r = tab.rec[i];
        if (!r)
            continue;
        r->refs = 0;
        if (r->closing) {
            tab.rec[i] = NULL;
            close((int)i);
        }
    }
    pthread_mutex_unlock(&tab.mu);
}

static pthread_once_t tab_once = PTHREAD_ONCE_INIT;
static void tab_init(void) { pthread_atfork(tab_prepare, tab_parent, tab_child); }

static int dir_of(short events) { return events == POLLIN ? 0 : events == POLLOUT ? 1 : -1; }

/* fd's record (tab.mu held), made if need be: NULL with *err -EBADF (fd not open, or being
 * closed) or -ENOMEM. */
static struct fdrec *lookup(int fd, int *err)
{
    struct fdrec *r = (size_t)fd < tab.n ? tab.rec[fd] : NULL;
    if (r) {
        if (r->closing) {
            *err = -EBADF;
            return NULL;
        }
        return r;
    }
    if (fcntl(fd, F_GETFD) < 0) {
        *err = -EBADF;
        return NULL;
    }
    if ((size_t)fd >= tab.n) {
        size_t n = tab.n ? tab.n : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct fdrec **a = chan_malloc(n * sizeof *a);
        if (!a) {
            *err = -ENOMEM;
            return NULL;
        }
        if (tab.n)
            memcpy(a, tab.rec, tab.n * sizeof *a);
        memset(a + tab.n, 0, (n - tab.n) * sizeof *a);
        chan_mfree(tab.rec);
        tab.rec = a;
        tab.n = n;
    }
    r = chan_malloc(sizeof *r);
    if (!r) {
        *err = -ENOMEM;
        return NULL;
    }
    *r = (struct fdrec){0};
    tab.rec[fd] = r;
    return r;
}

/* fd's channel for direction dir (tab.mu held), made if need be; NULL: -ENOMEM. */
static chan_t *chan_of(struct fdrec *r, int fd, int dir)
{
    if (!r->ch[dir]) {
        r->ch[dir] = fdchan_make(fd, dir == 0 ? POLLIN : POLLOUT);
        if (r->ch[dir] && tracing(TF_REGISTRY | TF_EVENTS)) /* a report says "fd readable" */
            trace_chan_role(r->ch[dir], dir == 0 ? ROLE_FD_READ : ROLE_FD_WRITE);
    }
    return r->ch[dir];
}

/* First time an I/O call names fd (tab.mu held): O_NONBLOCK on, and is it a socket. */
static int io_setup(struct fdrec *r, int fd)
{
    if (r->io)
        return 0;
    int fl = fcntl(fd, F_GETFL);
    struct stat st;
    if (fl < 0 || fstat(fd, &st) < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    r->sock = S_ISSOCK(st.st_mode);
    r->io = true;
    return 0;
}

/* A reference to fd's record for a call, with the channel of dir (0, 1; -1: none) made and, for
 * an I/O call, io_setup done: 0 or -errno; *out set on 0. Release with unref. */
static int ref(int fd, int dir, bool io, struct fdrec **out)
{
    if (fd < 0)
        return -EBADF;
    pthread_once(&tab_once, tab_init);
    int err = 0;
    pthread_mutex_lock(&tab.mu);
    struct fdrec *r = lookup(fd, &err);
    if (r && dir >= 0 && !chan_of(r, fd, dir))
        err = -ENOMEM;
    if (r && !err && io)
        err = io_setup(r, fd);
    if (r && !err)
        r->refs++;
    pthread_mutex_unlock(&tab.mu);
    *out = r;
    return err;
}

/* The last call to leave a record that chan_fd_close waits on closes its channel: after
 * unlocking, as no channel operation runs under tab.mu (the closer frees the channel only once
 * its receive has returned, which this close causes). */
static void unref(struct fdrec *r)
{
    chan_t *left = NULL;
    pthread_mutex_lock(&tab.mu);
    if (--r->refs == 0 && r->closing)
        left = r->left;
    pthread_mutex_unlock(&tab.mu);
    if (left)
        chan_close(left);
}

chan_t *chan_fd_chan(int fd, short events)
{
    int dir = dir_of(events);
    if (dir < 0 || fd < 0) {
        errno = dir < 0 ? EINVAL : EBADF;
        return NULL;
    }
    pthread_once(&tab_once, tab_init);
    int err = 0;
    pthread_mutex_lock(&tab.mu);
    struct fdrec *r = lookup(fd, &err);
    chan_t *c = r ? chan_of(r, fd, dir) : NULL;
    pthread_mutex_unlock(&tab.mu);
    if (!c)
        errno = r ? ENOMEM : -err;
    return c;
}

/* How wait_ref looks at the fd: LOOK_FIRST (chan_fd_wait) takes the fd channel alone first (a
 * ready fd wins over a ready cancel, whatever the order they became ready in), then selects
 * over it and cancel until the deadline; LEVEL (chan_connect) selects at once; EDGE (chan_read,
 * chan_write, chan_accept, whose system call has just said EAGAIN) selects at once with an
 * edge select (seam.h, fdselect_until): on a G whose netpoller watches the fd, its token
 * answers, no poll(2). Each of those calls drops the token before its system call
 * (fd_token_drop, Go's pollReset), so that a token found after EAGAIN is of an edge since; a
 * stale one only costs the system call again. chan_connect keeps poll's answer: a socket still
 * connecting reports SO_ERROR 0, which a stale token would have it take for connected. */
enum look { LOOK_FIRST, LEVEL, EDGE };

static int wait_ref(struct fdrec *r, int dir, enum look look, chan_t *cancel, int64_t deadline)
{
    int rev = 0;
    int e = look == LOOK_FIRST ? chan_tryrecv(r->ch[dir], &rev) : -EAGAIN;
    if (e == -EAGAIN) {
        struct chan_case cs[2] = {
            {.chan = r->ch[dir], .elem = &rev, .dir = CHAN_RECV},
            {.chan = cancel, .elem = NULL, .dir = CHAN_RECV},
        };
        e = look == EDGE ? fdselect_until(cs, 2, deadline) : chan_select_until(cs, 2, deadline);
        if (e == 1)
            return -ECANCELED;
        if (e == 0)
            e = cs[0].ok ? 0 : -EPIPE;
    }
    if (e == -EPIPE || (e == 0 && (rev & POLLNVAL)))
        return -EBADF; /* closed by chan_fd_close, or by close(2) behind the library's back */
    return e < 0 ? e : rev;
}

int chan_fd_wait(int fd, short events, chan_t *cancel, int64_t deadline)
{
    int dir = dir_of(events);
    if (dir < 0)
        return -EINVAL;
    struct fdrec *r;
    int err = ref(fd, dir, false, &r);
    if (err)
        return err;
    int res = wait_ref(r, dir, LOOK_FIRST, cancel, deadline);
    unref(r);
    return res;
}

/* errno of the thread that runs the caller now, read out of line after each system call of
 * the I/O calls below. A G that waited in one of their loops may resume on another thread, and
 * glibc declares __errno_location const: a compiler may keep the address of errno (a
 * thread-local) across the wait and read the first thread's errno after the next system call
 * (DESIGN.md: no thread-local address is held across a park). */
__attribute__((noinline)) static int errno_now(void)
{
    __asm__ volatile("" ::: "memory");
    return errno;
}

/* What chan_read, chan_write and chan_accept do after a system call that moved nothing and
 * failed with err: 1 to try again (EINTR, or the fd became ready after an EAGAIN), or the
 * negative errno to return (the call's own error, or wait_ref's -ETIMEDOUT, -ECANCELED, -EBADF).
 * The wait is an EDGE one: see wait_ref. */
static int again_or_error(struct fdrec *r, int dir, int err, chan_t *cancel, int64_t deadline)
{
    if (err == EINTR)
        return 1;
    if (err != EAGAIN && err != EWOULDBLOCK)
        return -err;
    int w = wait_ref(r, dir, EDGE, cancel, deadline);
    return w < 0 ? w : 1;
}

ssize_t chan_read(int fd, void *buf, size_t n, chan_t *cancel, int64_t deadline)
{
    if (n > SSIZE_MAX)
        return -EINVAL;
    struct fdrec *r;
    int err = ref(fd, 0, true, &r);
    if (err)
        return err;
    ssize_t res;
    for (;;) {
        fd_token_drop(fd, POLLIN); /* (Go's prepareRead: see wait_ref) */
        res = read(fd, buf, n);
        if (res >= 0)
            break;
        int again = again_or_error(r, 0, errno_now(), cancel, deadline);
        if (again < 0) {
            res = again;
            break;
        }
    }
    unref(r);
    return res;
}

ssize_t chan_write(int fd, const void *buf, size_t n, chan_t *cancel, int64_t deadline)
{
    if (n > SSIZE_MAX)
        return -EINVAL;
    struct fdrec *r;
    int err = ref(fd, 1, true, &r);
    if (err)
        return err;
    const char *p = buf;
    size_t done = 0;
    ssize_t res = 0;
    while (done < n) {
        fd_token_drop(fd, POLLOUT);
        ssize_t k =
            r->sock ? send(fd, p + done, n - done, MSG_NOSIGNAL) : write(fd, p + done, n - done);
        if (k > 0) {
            done += (size_t)k;
            continue;
        }
        /* A write of nothing is no room too, which only waiting can change. */
        int again = again_or_error(r, 1, k < 0 ? errno_now() : EAGAIN, cancel, deadline);
        if (again < 0) {
            res = again;
            break;
        }
    }
    unref(r);
    return done > 0 || res == 0 ? (ssize_t)done : res;
}

int chan_accept(int fd, struct sockaddr *sa, socklen_t *len, chan_t *cancel, int64_t deadline)
{
    struct fdrec *r;
    int err = ref(fd, 0, true, &r);
    if (err)
        return err;
    int res;
    for (;;) {
        fd_token_drop(fd, POLLIN);
        res = accept4(fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (res >= 0)
            break;
        int e = errno_now();
        if (e == ECONNABORTED)
            continue; /* that connection went; wait for the next, as Go does */
        int again = again_or_error(r, 0, e, cancel, deadline);
        if (again < 0) {
            res = again;
            break;
        }
    }
    unref(r);
    return res;
}

/* The attempt on fd failed with err (SO_ERROR): -err, and the socket left as a connect(2) that
 * blocked leaves it, unconnected, so that a call again makes a fresh attempt. Linux keeps a
 * socket whose non-blocking connect failed connecting until the next connect(2), which fails
 * with ECONNABORTED and only then resets it; a connect(2) to AF_UNSPEC dissolves the attempt
 * now. (Go's net.Dial never meets it: it closes the socket of a failed attempt and makes a new
 * one for the next.) */
static int connect_failed(int fd, int err)
{
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    (void)connect(fd, &unspec, sizeof unspec);
    return -err;
}

int chan_connect(int fd, const struct sockaddr *sa, socklen_t len, chan_t *cancel, int64_t deadline)
{
    struct fdrec *r;
    int err = ref(fd, 1, true, &r);
    if (err)
        return err;
    int res = 0;
    if (connect(fd, sa, len) < 0) {
        /* Go's (*netFD).connect: in progress (or interrupted, which goes on in the kernel):
         * wait for writability, then ask the socket how it went. */
        int e = errno_now();
        res = e == EINPROGRESS || e == EINTR || e == EALREADY ? 1 : -e;
        /* Already connected: a call again after one that returned 0, or after a retry of a
         * call cut short (Linux's connect reports a completion it did not return once, with
         * 0; a retry while the attempt is in progress gets EALREADY and waits below). Go's
         * connect takes EISCONN as success; here only if the socket does have a peer
         * (getpeername, as Go asks once SO_ERROR says 0). */
        if (e == EISCONN) {
            struct sockaddr_storage peer;
            socklen_t pl = sizeof peer;
            res = getpeername(fd, (struct sockaddr *)&peer, &pl) == 0 ? 0 : -EISCONN;
        }
        while (res == 1) {
            int w = wait_ref(r, 1, LEVEL, cancel, deadline);
            if (w < 0) {
                res = w;
                break;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                res = -errno_now();
            else if (soerr == 0 || soerr == EISCONN)
                res = 0;
            else if (soerr != EINPROGRESS && soerr != EALREADY && soerr != EINTR)
                res = connect_failed(fd, soerr);
        }
    }
    unref(r);
    return res;
}

int chan_fd_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    pthread_once(&tab_once, tab_init);
    pthread_mutex_lock(&tab.mu);
    struct fdrec *r = (size_t)fd < tab.n ? tab.rec[fd] : NULL;
    if (r && r->closing) {
        pthread_mutex_unlock(&tab.mu);
        return -EBADF;
    }
    chan_t *left = NULL;
    if (r) {
        r->closing = true;
        pthread_mutex_unlock(&tab.mu);
        /* Wake every waiter (they return -EBADF), then wait for every call to leave: on a
         * channel that the last one closes (unref), so that a G parks instead of blocking its
         * thread. Without memory for it, look again every LEFT_POLL_NS (sleeping as a G
         * sleeps). */
        for (int d = 0; d < 2; d++)
            if (r->ch[d])
                fdchan_close(r->ch[d]);
        pthread_mutex_lock(&tab.mu);
        if (r->refs)
            r->left = left = chan_make(0, 0);
        while (r->refs) {
            pthread_mutex_unlock(&tab.mu);
            if (left)
                chan_recv(left, NULL);
            else
                chan_sleep_until(chan_now() + LEFT_POLL_NS, NULL);
            pthread_mutex_lock(&tab.mu);
        }
        r->left = NULL;
        void (*hook)(int) = atomic_load(&close_hook);
        if (hook)
            hook(fd);
        tab.rec[fd] = NULL;
    }
    int res = close(fd) < 0 && errno_now() != EINTR ? -errno_now() : 0;
    pthread_mutex_unlock(&tab.mu);
    if (r) {
        chan_free(left);
        /* A select of the caller's own that completed through another channel may still be
         * unlinking itself from an fd channel (chan_free's -EBUSY): it is on its way out,
         * running elsewhere; sleep a moment (a G parks) and look again. */
        for (int d = 0; d < 2; d++)
            while (r->ch[d] && fdchan_free(r->ch[d]) == -EBUSY)
                chan_sleep_until(chan_now() + 20000, NULL);
        chan_mfree(r);
    }
    return res;
}

int chan_sleep_until(int64_t deadline, chan_t *cancel)
{
    struct chan_case cs = {.chan = cancel, .elem = NULL, .dir = CHAN_RECV};
    int r = chan_select_until(&cs, 1, deadline);
    return r == 0 ? -ECANCELED : r == -ETIMEDOUT ? 0 : r;
}
