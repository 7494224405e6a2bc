/* SPDX-License-Identifier: MIT */
/*
 * io_bodies.h - the tests of chan_io.h that say the same on threads (test_io.c) and on Gs of
 * libchan-mpg (test_mpg_io.c): the calls give the same results and errors on both, so one body
 * checks it for both. Each includer defines, before including this, how a body's tasks run:
 *
 *   task_t                  a started task
 *   task_go(fn, arg)        starts fn(arg) as a thread, or as a G
 *   task_join(t)            waits until t's fn has returned (then t is gone)
 *   task_yield()            Go's runtime.Gosched: sched_yield, or chan_mpg_yield
 *   task_id()               the running task's id: its thread's (gettid), or its G's
 *   fd_blocked(fd, events)  until an operation waits on fd for events (fd_waiter_queued, with a
 *                           pause that parks a G rather than its thread)
 *
 * and runs each body on a task of its own: test_io.c on a thread (no_fd_leaked), test_mpg_io.c
 * on a G (on_g); both count the process's open fds before and after. Checks inside tasks use
 * ck_assert (the suites run in fork mode, where a failure ends the test's process).
 */
#ifndef IO_BODIES_H
#define IO_BODIES_H

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan_io.h"
#include "chan_time.h"

/* ---- A task running one I/O call ------------------------------------------------------------- */

/* What it called, and what it got back, when. */
enum op { OP_WAIT_IN, OP_WAIT_OUT, OP_READ, OP_WRITE, OP_ACCEPT, OP_CLOSE };
struct call {
    enum op op;
    int fd;
    chan_t *cancel;
    int64_t deadline;
    size_t n; /* OP_WRITE: bytes */
    long r;
    int64_t returned; /* chan_now() as it returned */
};

static void run_call(void *arg)
{
    struct call *c = arg;
    static char buf[1 << 16];
    switch (c->op) {
    case OP_WAIT_IN: c->r = chan_fd_wait(c->fd, POLLIN, c->cancel, c->deadline); break;
    case OP_WAIT_OUT: c->r = chan_fd_wait(c->fd, POLLOUT, c->cancel, c->deadline); break;
    case OP_READ: c->r = chan_read(c->fd, buf, sizeof buf, c->cancel, c->deadline); break;
    case OP_WRITE: c->r = chan_write(c->fd, buf, c->n, c->cancel, c->deadline); break;
    case OP_ACCEPT: c->r = chan_accept(c->fd, NULL, NULL, c->cancel, c->deadline); break;
    case OP_CLOSE: c->r = chan_fd_close(c->fd); break;
    }
    c->returned = chan_now();
}

/* A task whose select waits on an fd channel c alone (and a nil channel). */
struct selwait {
    chan_t *c;
    struct chan_case cs[2];
    int rev, r;
};

static void run_select(void *arg)
{
    struct selwait *s = arg;
    s->cs[0] = (struct chan_case){.chan = s->c, .elem = &s->rev, .dir = CHAN_RECV};
    s->cs[1] = (struct chan_case){.chan = NULL, .dir = CHAN_RECV};
    s->rev = -1;
    s->r = chan_select(s->cs, 2);
}

/* ---- Cancellation and deadlines -------------------------------------------------------------- */

/* A task blocked waiting for a socket (chan_read, chan_fd_wait, chan_accept) returns -ECANCELED
 * promptly when its context is cancelled. */
static void cancel_blocked_socket_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    for (int op = 0; op < 3; op++) {
        chan_ctx_t *ctx = chan_ctx_with_cancel(chan_ctx_background());
        ck_assert_ptr_nonnull(ctx);
        struct call c = {.op = op == 0   ? OP_READ
                               : op == 1 ? OP_WAIT_IN
                                         : OP_ACCEPT,
                         .fd = op == 2 ? l : b,
                         .cancel = chan_ctx_done(ctx),
                         .deadline = CHAN_FOREVER};
        task_t t = task_go(run_call, &c);
        ck_assert(fd_blocked(c.fd, POLLIN));
        int64_t t0 = chan_now();
        ck_assert_int_eq(chan_ctx_cancel(ctx), 0);
        task_join(t);
        ck_assert_int_eq(c.r, -ECANCELED);
        ck_assert_msg(c.returned - t0 < late_bound(), "op %d: returned %lld ns after the cancel",
                      op, (long long)(c.returned - t0));
        ck_assert_int_eq(chan_ctx_free(ctx), 0);
    }
    /* The socket still works afterwards: nothing was consumed or left queued. */
    put1(a);
    char x;
    ck_assert_int_eq(chan_read(b, &x, 1, NULL, CHAN_FOREVER), 1);
    fdclose(a);
    fdclose(b);
    fdclose(l);
}

/* A deadline: -ETIMEDOUT, never early; a passed deadline does not stop what is ready. */
static void deadlines_body(void)
{
    int p[2];
    mkpipe(p);
    char buf[8];
    for (int i = 0; i < 2; i++) {
        int64_t d = chan_now() + 30 * MS, t;
        long r =
            i ? chan_read(p[0], buf, sizeof buf, NULL, d) : chan_fd_wait(p[0], POLLIN, NULL, d);
        t = chan_now();
        ck_assert_int_eq(r, -ETIMEDOUT);
        ck_assert_int_ge(t, d);
        ck_assert_msg(t - d < late_bound(), "%lld ns late", (long long)(t - d));
    }
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, NULL, chan_now()), -ETIMEDOUT);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, NULL, INT64_MIN), -ETIMEDOUT);
    put1(p[1]);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, NULL, INT64_MIN), POLLIN);
    ck_assert_int_eq(chan_read(p[0], buf, sizeof buf, NULL, INT64_MIN), 1);
    ck_assert_int_eq(chan_fd_wait(p[1], POLLOUT, NULL, INT64_MIN), POLLOUT);
    /* A cancel channel already closed does not stop a ready fd either. */
    chan_t *done = chan_make(0, 0);
    ck_assert_int_eq(chan_close(done), 0);
    put1(p[1]);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, done, CHAN_FOREVER), POLLIN);
    ck_assert_int_eq(chan_read(p[0], buf, sizeof buf, done, CHAN_FOREVER), 1);
    ck_assert_int_eq(chan_read(p[0], buf, sizeof buf, done, CHAN_FOREVER), -ECANCELED);
    ck_assert_int_eq(chan_free(done), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}

/* A value in the cancel channel is taken by the wait it cancels. */
static void cancel_by_value_body(void)
{
    int p[2];
    mkpipe(p);
    chan_t *cancel = chan_make(sizeof(int), 1);
    int v = 5;
    ck_assert_int_eq(chan_send(cancel, &v), 0);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, cancel, CHAN_FOREVER), -ECANCELED);
    ck_assert_uint_eq(chan_len(cancel), 0);
    ck_assert_int_eq(chan_free(cancel), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}

/* chan_sleep_until: 0 at the deadline (at once for one passed), -ECANCELED by a context. */
static void sleep_until_body(void)
{
    int64_t d = chan_now() + 20 * MS;
    ck_assert_int_eq(chan_sleep_until(d, NULL), 0);
    ck_assert_int_ge(chan_now(), d);
    ck_assert_int_eq(chan_sleep_until(chan_now() - 1, NULL), 0);
    chan_ctx_t *ctx = chan_ctx_with_timeout(chan_ctx_background(), 20 * MS);
    ck_assert_ptr_nonnull(ctx);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_sleep_until(chan_now() + 10 * CHAN_SECOND, chan_ctx_done(ctx)),
                     -ECANCELED);
    ck_assert_int_lt(chan_now() - t0, 20 * MS + late_bound());
    ck_assert_int_eq(chan_sleep_until(chan_now() - 1, chan_ctx_done(ctx)), -ECANCELED);
    ck_assert_int_eq(chan_ctx_free(ctx), 0);
}

/* The waits of chan_io.h under a storm of signals (storm_start, testnet.h): each ends at its
 * deadline, with -ETIMEDOUT (chan_sleep_until: 0), never before it and never with -EINTR (Go's
 * TestTime: signals during a sleep do not cut it short). On a G the signal interrupts its
 * thread, and the G stays parked to its deadline. */
static void waits_absorb_signals(void)
{
    int p[2], q[2];
    mkpipe(p);
    mkpipe(q);
    fill(q[1]);
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    pthread_t st = storm_start();
    static char buf[8192];
    for (int i = 0; i < 5; i++) {
        int64_t d = chan_now() + 100 * MS;
        long r = i == 0   ? chan_fd_wait(p[0], POLLIN, NULL, d)
                 : i == 1 ? chan_read(p[0], buf, sizeof buf, NULL, d)
                 : i == 2 ? chan_write(q[1], buf, sizeof buf, NULL, d)
                 : i == 3 ? chan_accept(l, NULL, NULL, NULL, d)
                          : chan_sleep_until(d, NULL) - ETIMEDOUT;
        ck_assert_msg(r == -ETIMEDOUT, "call %d: %ld", i, r);
        ck_assert_int_ge(chan_now(), d);
    }
    ck_assert_int_gt(storm_stop(st), 0);
    fdclose(l);
    fdclose(p[0]);
    fdclose(p[1]);
    fdclose(q[0]);
    fdclose(q[1]);
}

/* A call's deadline cannot move while it waits, but its cancel channel can be a timer's, which
 * chan_timer_reset moves (what Go's SetReadDeadline does to a read under way). A thread resets
 * the timer once the read waits, from an hour off to 10 ms (the read ends), and from 50 ms to
 * 200 ms (when the reset stopped the first firing, the read ends no sooner than the second). */
struct mover {
    int fd;
    chan_timer_t *t;
    int64_t to, at; /* the new duration; chan_now() just before the reset */
    int rc;         /* what the reset returned */
};

static void *move_later(void *arg)
{
    struct mover *m = arg;
    ck_assert(fd_waiter_queued(m->fd, POLLIN, sleep_ms));
    m->at = chan_now();
    m->rc = chan_timer_reset(m->t, m->to);
    return NULL;
}

static void deadline_moved_by_timer(void)
{
    int p[2];
    mkpipe(p);
    const int64_t from[] = {3600 * CHAN_SECOND, 50 * MS}, to[] = {10 * MS, 200 * MS};
    for (int i = 0; i < 2; i++) {
        chan_timer_t *t = chan_timer_make(from[i]);
        ck_assert_ptr_nonnull(t);
        struct mover m = {.fd = p[0], .t = t, .to = to[i]};
        pthread_t th = spawn(move_later, &m);
        char b;
        ck_assert_int_eq(chan_read(p[0], &b, 1, chan_timer_chan(t), CHAN_FOREVER), -ECANCELED);
        int64_t end = chan_now();
        join(th);
        ck_assert(i == 1 || m.rc == 1);
        if (m.rc == 1)
            ck_assert_int_ge(end, m.at + to[i]);
        ck_assert_int_eq(chan_timer_free(t), 0);
    }
    fdclose(p[0]);
    fdclose(p[1]);
}

/* ---- Select over a socket, a channel and a timer --------------------------------------------- */

/* Once the select's sudog is queued on watch's fd channel (it is blocked), makes a case ready:
 * a byte written to fd, or a value sent on c. */
struct later {
    int watch, fd;
    chan_t *c;
};

static void act_later(void *arg)
{
    struct later *l = arg;
    ck_assert(fd_blocked(l->watch, POLLIN));
    if (l->c) {
        int v = 42;
        ck_assert_int_eq(chan_send(l->c, &v), 0);
    } else {
        put1(l->fd);
    }
}

/* Each case is picked when only it is ready: ready before the select, or becoming ready while
 * it is blocked. */
static void select_socket_channel_timer_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    chan_t *c = chan_make(sizeof(int), 1);
    ck_assert_ptr_nonnull(c);
    chan_t *sock = chan_fd_chan(b, POLLIN);
    ck_assert_ptr_nonnull(sock);
    for (int round = 0; round < 6; round++) {
        int which = round % 3;   /* 0 the socket, 1 the channel, 2 the timer */
        bool before = round < 3; /* ready before the select, or while it waits */
        int64_t d = which != 2 ? 100 * CHAN_SECOND : before ? 0 : 20 * MS;
        chan_timer_t *tm = chan_timer_make(d);
        ck_assert_ptr_nonnull(tm);
        if (before && which == 0)
            put1(a);
        if (before && which == 1) {
            int x = 42;
            ck_assert_int_eq(chan_send(c, &x), 0);
        }
        struct later l = {.watch = b, .fd = a, .c = which == 1 ? c : NULL};
        task_t t = 0;
        if (!before && which != 2)
            t = task_go(act_later, &l);
        int rev = -1, v = -1;
        int64_t when = -1;
        struct chan_case cs[3] = {
            {.chan = sock, .elem = &rev, .dir = CHAN_RECV},
            {.chan = c, .elem = &v, .dir = CHAN_RECV},
            {.chan = chan_timer_chan(tm), .elem = &when, .dir = CHAN_RECV},
        };
        int r = chan_select_until(cs, 3, chan_now() + 10 * CHAN_SECOND);
        ck_assert_msg(r == which, "round %d: case %d chosen", round, r);
        ck_assert(cs[which].ok);
        if (which == 0) {
            ck_assert(rev & POLLIN);
            get1(b);
        } else if (which == 1) {
            ck_assert_int_eq(v, 42);
        } else {
            ck_assert_int_gt(when, 0);
        }
        if (!before && which != 2)
            task_join(t);
        ck_assert_int_eq(chan_timer_free(tm), 0);
    }
    ck_assert_int_eq(chan_free(c), 0);
    fdclose(a);
    fdclose(b);
}

/* ---- Bad input; one waiter per fd and direction; chan_fd_close ------------------------------- */

static void bad_fds_body(void)
{
    int p[2];
    mkpipe(p);
    char buf[4];
    ck_assert_int_eq(chan_fd_wait(-1, POLLIN, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_fd_wait(INT_MAX, POLLIN, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_fd_wait(p[0], 0, NULL, CHAN_FOREVER), -EINVAL);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN | POLLOUT, NULL, CHAN_FOREVER), -EINVAL);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLPRI, NULL, CHAN_FOREVER), -EINVAL);
    ck_assert_int_eq(chan_read(-1, buf, 1, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_read(p[0], buf, (size_t)SSIZE_MAX + 1, NULL, 0), -EINVAL);
    ck_assert_int_eq(chan_write(-1, buf, 1, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_write(p[1], buf, (size_t)SSIZE_MAX + 1, NULL, 0), -EINVAL);
    ck_assert_int_eq(chan_accept(-1, NULL, NULL, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_accept(p[0], NULL, NULL, NULL, CHAN_FOREVER), -ENOTSOCK);
    ck_assert_int_eq(chan_connect(-1, NULL, 0, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_fd_close(-1), -EBADF);
    ck_assert_int_eq(chan_fd_close(INT_MAX), -EBADF);
    errno = 0;
    ck_assert_ptr_null(chan_fd_chan(-1, POLLIN));
    ck_assert_int_eq(errno, EBADF);
    ck_assert_ptr_null(chan_fd_chan(INT_MAX, POLLIN));
    ck_assert_int_eq(errno, EBADF);
    ck_assert_ptr_null(chan_fd_chan(p[0], POLLERR));
    ck_assert_int_eq(errno, EINVAL);

    /* An fd channel is received from only, and its owner is the library. */
    chan_t *in = chan_fd_chan(p[0], POLLIN);
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_eq(chan_fd_chan(p[0], POLLIN), in);
    ck_assert_ptr_ne(chan_fd_chan(p[0], POLLOUT), in);
    int v = 1;
    ck_assert_int_eq(chan_send(in, &v), -EINVAL);
    ck_assert_int_eq(chan_trysend(in, &v), -EINVAL);
    ck_assert_int_eq(chan_send_until(in, &v, chan_now() + MS), -EINVAL);
    ck_assert_int_eq(chan_close(in), -EINVAL);
    ck_assert_int_eq(chan_free(in), -EINVAL);
    ck_assert_uint_eq(chan_len(in), 0);
    ck_assert_uint_eq(chan_cap(in), 0);
    ck_assert_int_eq(chan_tryrecv(in, &v), -EAGAIN);
    ck_assert_int_eq(chan_recv_until(in, &v, chan_now() + MS), -ETIMEDOUT);
    put1(p[1]);
    v = 0;
    ck_assert_int_eq(chan_recv(in, &v), 0);
    ck_assert_int_eq(v, POLLIN);
    ck_assert_int_eq(chan_tryrecv(in, NULL), 0); /* level-triggered: still ready */
    get1(p[0]);

    /* Closed with chan_fd_close: every later call says -EBADF (the number is free again). */
    fdclose(p[0]);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_read(p[0], buf, 1, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_fd_close(p[0]), -EBADF);
    ck_assert_ptr_null(chan_fd_chan(p[0], POLLIN));

    /* Closed with close(2) behind the library's back: POLLNVAL, reported as -EBADF; then
     * chan_fd_close forgets the record and reports close(2)'s -EBADF. */
    int q[2];
    mkpipe(q);
    ck_assert_ptr_nonnull(chan_fd_chan(q[0], POLLIN));
    close(q[0]);
    ck_assert_int_eq(chan_fd_wait(q[0], POLLIN, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_fd_close(q[0]), -EBADF);
    fdclose(q[1]);
    fdclose(p[1]);
}

/* At most one waiter per fd and direction: the second gets -EBUSY before anything happened. */
static void busy_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    struct call c = {.op = OP_WAIT_IN, .fd = b, .deadline = CHAN_FOREVER};
    task_t t = task_go(run_call, &c);
    ck_assert(fd_blocked(b, POLLIN));
    char buf[4];
    ck_assert_int_eq(chan_fd_wait(b, POLLIN, NULL, chan_now() + CHAN_SECOND), -EBUSY);
    ck_assert_int_eq(chan_fd_wait(b, POLLIN, NULL, CHAN_FOREVER), -EBUSY);
    ck_assert_int_eq(chan_read(b, buf, sizeof buf, NULL, CHAN_FOREVER), -EBUSY);
    ck_assert_int_eq(chan_recv(chan_fd_chan(b, POLLIN), NULL), -EBUSY);
    /* A select: -EBUSY, and nothing happened to its other cases. */
    chan_t *ch = chan_make(sizeof(int), 1);
    int v = -1, rev = -1;
    struct chan_case cs[2] = {{.chan = chan_fd_chan(b, POLLIN), .elem = &rev, .dir = CHAN_RECV},
                              {.chan = ch, .elem = &v, .dir = CHAN_RECV}};
    memset(&cs[0].ok, 0xA5, 1);
    memset(&cs[1].ok, 0xA5, 1);
    ck_assert_int_eq(chan_select(cs, 2), -EBUSY);
    unsigned char okb[2];
    memcpy(&okb[0], &cs[0].ok, 1);
    memcpy(&okb[1], &cs[1].ok, 1);
    ck_assert_uint_eq(okb[0], 0xA5);
    ck_assert_uint_eq(okb[1], 0xA5);
    /* The other direction is free; so is a ready fd, which needs no wait. */
    ck_assert_int_eq(chan_fd_wait(b, POLLOUT, NULL, CHAN_FOREVER), POLLOUT);
    put1(a);
    ck_assert_int_eq(chan_fd_wait(b, POLLIN, NULL, CHAN_FOREVER), POLLIN);
    task_join(t);
    ck_assert_int_eq(c.r, POLLIN);
    ck_assert_int_eq(chan_read(b, buf, sizeof buf, NULL, CHAN_FOREVER), 1);
    ck_assert_int_eq(chan_free(ch), 0);
    fdclose(a);
    fdclose(b);
}

/*
 * A select that would wait on an fd that another call waits on returns -EBUSY, nothing done; a
 * buffered channel among its cases runs lock-free again after it. (The select's last look,
 * which stops a ring's lock-free paths to see it empty at one instant, left it stopped on that
 * return: every later operation on it took its lock, until a waiter came and went, and the
 * sanitizer builds' invariant check aborted at the next one.)
 */
static void busy_select_leaves_ring_running_body(void)
{
    int p[2];
    mkpipe(p);
    struct call wi = {.op = OP_WAIT_IN, .fd = p[0], .deadline = CHAN_FOREVER};
    task_t t = task_go(run_call, &wi);
    ck_assert(fd_blocked(p[0], POLLIN));
    chan_t *c = chan_make(sizeof(int), 4);
    ck_assert_ptr_nonnull(c);
    int rev, v = 7;
    for (int form = 0; form < 2; form++) {
        struct chan_case cs[2] = {
            {.chan = chan_fd_chan(p[0], POLLIN), .elem = &rev, .dir = CHAN_RECV},
            {.chan = c, .elem = &v, .dir = CHAN_RECV},
        };
        int r = form ? chan_select(cs, 2) : chan_select_until(cs, 2, chan_now() + 1000 * MS);
        ck_assert_int_eq(r, -EBUSY);
        ck_assert_msg(!hchan_ring_stopped(c), "the ring stays stopped after -EBUSY (form %d)",
                      form);
        ck_assert_int_eq(chan_send(c, &v), 0);
        ck_assert_int_eq(chan_recv(c, &v), 0);
    }
    put1(p[1]);
    task_join(t);
    ck_assert_int_gt(wi.r, 0);
    ck_assert_int_eq(chan_free(c), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}

/* chan_fd_close while tasks wait on the fd: each wakes with -EBADF (a select's case fires with
 * ok false), promptly; the number is closed to every later call. */
static void fd_close_wakes_waiters_body(void)
{
    int a, b, p[2], q[2];
    tcp_pair(&a, &b);
    mkpipe(p);
    mkpipe(q);
    fill(p[1]);
    struct call rd = {.op = OP_READ, .fd = b, .deadline = CHAN_FOREVER};
    struct call wo = {.op = OP_WAIT_OUT, .fd = p[1], .deadline = CHAN_FOREVER};
    struct call wr = {.op = OP_WRITE, .fd = p[1], .n = 1, .deadline = CHAN_FOREVER};
    struct selwait sw = {.c = chan_fd_chan(q[0], POLLIN)};
    task_t t1 = task_go(run_call, &rd);
    ck_assert(fd_blocked(b, POLLIN));
    task_t t2 = task_go(run_call, &wo);
    ck_assert(fd_blocked(p[1], POLLOUT));
    task_t t3 = task_go(run_select, &sw);
    ck_assert(fd_blocked(q[0], POLLIN));
    /* wr would be a second waiter on p[1] for POLLOUT: -EBUSY, at once. */
    run_call(&wr);
    ck_assert_int_eq(wr.r, -EBUSY);

    /* Closed while they wait (their peers stay open: nothing else can wake them). */
    int64_t t0 = chan_now();
    fdclose(b);
    fdclose(p[1]);
    fdclose(q[0]);
    task_join(t1);
    task_join(t2);
    task_join(t3);
    ck_assert_int_eq(rd.r, -EBADF);
    ck_assert_int_eq(wo.r, -EBADF);
    ck_assert_int_eq(sw.r, 0);
    ck_assert(!sw.cs[0].ok);
    ck_assert_int_eq(sw.rev, 0); /* zeroed, as a closed channel's receive */
    ck_assert_int_lt(rd.returned - t0, late_bound());
    ck_assert_int_lt(wo.returned - t0, late_bound());
    ck_assert_int_eq(chan_fd_wait(b, POLLIN, NULL, CHAN_FOREVER), -EBADF);
    fdclose(a);
    fdclose(p[0]);
    fdclose(q[1]);
}

/* ---- The I/O calls between tasks ------------------------------------------------------------- */

struct copier {
    int fd;
    size_t n;
    unsigned char *buf;
    long r;
};

static void write_all(void *arg)
{
    struct copier *c = arg;
    c->r = chan_write(c->fd, c->buf, c->n, NULL, CHAN_FOREVER);
}

/* chan_write writes everything, across a pipe's and a socket's limits, waiting for room, while
 * another task reads it in small pieces; end of file once the writer closes. */
static void write_all_read_all_body(void)
{
    const size_t n = 1 << 20;
    for (int kind = 0; kind < 2; kind++) {
        int fds[2];
        if (kind == 0)
            mkpipe(fds);
        else
            tcp_pair(&fds[1], &fds[0]);
        unsigned char *src = malloc(n), *dst = malloc(n);
        ck_assert(src && dst);
        for (size_t i = 0; i < n; i++)
            src[i] = (unsigned char)(i * 7 + i / 251);
        struct copier w = {.fd = fds[1], .n = n, .buf = src};
        task_t t = task_go(write_all, &w);
        size_t got = 0;
        while (got < n) {
            long r =
                chan_read(fds[0], dst + got, n - got < 3000 ? n - got : 3000, NULL, CHAN_FOREVER);
            ck_assert_int_gt(r, 0);
            got += (size_t)r;
        }
        task_join(t);
        ck_assert_int_eq(w.r, (long)n);
        ck_assert(memcmp(src, dst, n) == 0);
        fdclose(fds[1]);
        char x;
        ck_assert_int_eq(chan_read(fds[0], &x, 1, NULL, CHAN_FOREVER), 0); /* end of file */
        fdclose(fds[0]);
        free(src);
        free(dst);
    }
}

/* A write stopped part way returns what went out; nothing out: the reason. */
static void write_partial_body(void)
{
    int p[2];
    mkpipe(p);
    fill(p[1]);
    static char big[1 << 17];
    ck_assert_int_eq(chan_write(p[1], big, sizeof big, NULL, chan_now() + 5 * MS), -ETIMEDOUT);
    char drain[8192];
    ck_assert_int_eq(read(p[0], drain, sizeof drain), (long)sizeof drain);
    long r = chan_write(p[1], big, sizeof big, NULL, chan_now() + 20 * MS);
    ck_assert_int_gt(r, 0);
    ck_assert_int_lt(r, (long)sizeof big);
    ck_assert_int_eq(chan_write(p[1], big, 0, NULL, CHAN_FOREVER), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}

/* A peer that has gone: -EPIPE (or -ECONNRESET), and no SIGPIPE (it would kill the test). */
static void write_to_closed_socket_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    fdclose(b);
    static char buf[65536];
    long r = 0;
    for (int i = 0; i < 100 && r >= 0; i++)
        r = chan_write(a, buf, sizeof buf, NULL, chan_now() + CHAN_SECOND);
    ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "chan_write: %ld", r);
    fdclose(a);
}

/* A task connects and sends "ping" while another accepts. */
struct dialer {
    struct sockaddr_in sa;
    int fd, r;
};

static void dial(void *arg)
{
    struct dialer *d = arg;
    d->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(d->fd, 0);
    d->r = chan_connect(d->fd, (struct sockaddr *)&d->sa, sizeof d->sa, NULL, CHAN_FOREVER);
    if (d->r == 0)
        ck_assert_int_eq(chan_write(d->fd, "ping", 4, NULL, CHAN_FOREVER), 4);
}

/* An accept waits for a client, either side a task; calls on a connected socket; nobody
 * listening: -ECONNREFUSED. */
static void accept_connect_body(void)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    ck_assert_int_eq(fcntl(l, F_SETFL, O_NONBLOCK), 0);
    /* Nobody comes: -ETIMEDOUT, not early. */
    int64_t d = chan_now() + 20 * MS;
    ck_assert_int_eq(chan_accept(l, NULL, NULL, NULL, d), -ETIMEDOUT);
    ck_assert_int_ge(chan_now(), d);
    /* A client comes while the acceptor waits. */
    struct call ac = {.op = OP_ACCEPT, .fd = l, .deadline = chan_now() + 10 * CHAN_SECOND};
    task_t t = task_go(run_call, &ac);
    ck_assert(fd_blocked(l, POLLIN));
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(chan_connect(c, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER), 0);
    task_join(t);
    int s = (int)ac.r;
    ck_assert_int_ge(s, 0);
    ck_assert(fcntl(s, F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(s, F_GETFD) & FD_CLOEXEC);
    ck_assert_int_eq(chan_write(c, "ping", 4, NULL, CHAN_FOREVER), 4);
    char buf[8];
    ck_assert_int_eq(chan_read(s, buf, sizeof buf, NULL, CHAN_FOREVER), 4);
    ck_assert(memcmp(buf, "ping", 4) == 0);
    fdclose(s);
    fdclose(c);
    /* The other way round: a task connects and sends while this one accepts. */
    struct dialer dl = {.sa = sa};
    t = task_go(dial, &dl);
    s = chan_accept(l, NULL, NULL, NULL, chan_now() + 10 * CHAN_SECOND);
    ck_assert_int_ge(s, 0);
    ck_assert(fcntl(s, F_GETFL) & O_NONBLOCK);
    ck_assert_int_eq(chan_read(s, buf, sizeof buf, NULL, CHAN_FOREVER), 4);
    ck_assert(memcmp(buf, "ping", 4) == 0);
    task_join(t);
    ck_assert_int_eq(dl.r, 0);
    fdclose(s);
    fdclose(dl.fd);
    /* Calls on a socket already connected: 0, as Go's connect takes EISCONN (before the fix
     * -EISCONN). Linux's connect(2) reports a completion it did not return once (0), so the
     * third call is sure to meet EISCONN. */
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_connect(c, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER), 0);
    s = chan_accept(l, NULL, NULL, NULL, chan_now() + 10 * CHAN_SECOND);
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(chan_write(c, "pong", 4, NULL, CHAN_FOREVER), 4);
    ck_assert_int_eq(chan_read(s, buf, sizeof buf, NULL, CHAN_FOREVER), 4);
    ck_assert(memcmp(buf, "pong", 4) == 0);
    fdclose(s);
    fdclose(c);
    fdclose(l);
    /* Nobody listens there any more: -ECONNREFUSED. */
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(chan_connect(c, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER),
                     -ECONNREFUSED);
    fdclose(c);
}

/* ---- O_NONBLOCK; one fd twice in a select ---------------------------------------------------- */

/* O_NONBLOCK as chan_io(3) says ("Waiting and I/O"): chan_fd_chan and chan_fd_wait leave the
 * flags as they found them; the first I/O call sets it, on the open file description (a dup
 * sees it); nothing clears it, chan_fd_close neither; a new fd under the same number meets no
 * record of the old one: it starts blocking, and its first I/O call sets the flag again (so a
 * read with a deadline returns instead of blocking in read(2)). */
static void nonblock_flag_body(void)
{
    int p[2];
    char c;
    ck_assert_int_eq(pipe(p), 0);
    int d = dup(p[0]);
    ck_assert_int_ge(d, 0);
    ck_assert(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
    ck_assert_ptr_nonnull(chan_fd_chan(p[0], POLLIN));
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, NULL, chan_now() + 5 * MS), -ETIMEDOUT);
    ck_assert(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
    ck_assert_int_eq(chan_read(p[0], &c, 1, NULL, chan_now() + 5 * MS), -ETIMEDOUT);
    ck_assert(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(d, F_GETFL) & O_NONBLOCK);
    int old = p[0];
    fdclose(p[0]);
    fdclose(p[1]);
    ck_assert(fcntl(d, F_GETFL) & O_NONBLOCK);
    /* A fresh pipe's reading end under the old number. */
    ck_assert_int_eq(pipe(p), 0);
    if (p[0] != old) {
        ck_assert_int_eq(dup2(p[0], old), old);
        ck_assert_int_eq(close(p[0]), 0);
    }
    ck_assert(!(fcntl(old, F_GETFL) & O_NONBLOCK));
    ck_assert_int_eq(chan_read(old, &c, 1, NULL, chan_now() + 5 * MS), -ETIMEDOUT);
    ck_assert(fcntl(old, F_GETFL) & O_NONBLOCK);
    put1(p[1]);
    ck_assert_int_eq(chan_read(old, &c, 1, NULL, CHAN_FOREVER), 1);
    fdclose(old);
    fdclose(p[1]);
    ck_assert_int_eq(close(d), 0);
}

/* The same fd channel in two cases of one select, as Go allows a channel twice: the select
 * waits on it (no -EBUSY against itself), times out, and fires when the fd is ready (a thread
 * writes once the select waits). The two directions of one socket in one select are two
 * waits, each in its own slot. */
static void *put1_once_waited(void *arg)
{
    int *p = arg;
    ck_assert(fd_waiter_queued(p[0], POLLIN, sleep_ms));
    put1(p[1]);
    return NULL;
}

static void same_fd_twice_body(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    int r0 = 0, r1 = 0;
    struct chan_case cs[2] = {chan_case_recv(chan_fd_chan(p[0], POLLIN), &r0),
                              chan_case_recv(chan_fd_chan(p[0], POLLIN), &r1)};
    ck_assert_int_eq(chan_select_until(cs, 2, chan_now() + 5 * MS), -ETIMEDOUT);
    pthread_t t = spawn(put1_once_waited, p);
    int k = chan_select_until(cs, 2, chan_now() + 10 * CHAN_SECOND);
    ck_assert_msg(k == 0 || k == 1, "select: %d", k);
    ck_assert(cs[k].ok);
    ck_assert_int_eq(k == 0 ? r0 : r1, POLLIN);
    join(t);
    int a, b, w = 0;
    tcp_pair(&a, &b);
    struct chan_case both[2] = {chan_case_recv(chan_fd_chan(a, POLLIN), &r0),
                                chan_case_recv(chan_fd_chan(a, POLLOUT), &w)};
    ck_assert_int_eq(chan_select(both, 2), 1);
    ck_assert_int_eq(w, POLLOUT);
    fdclose(a);
    fdclose(b);
    fdclose(p[0]);
    fdclose(p[1]);
}

/* ---- The restart after PARK_IO: a producer and a consumer ------------------------------------ */

/* The tests of the select's restart after PARK_IO: values flow from a producer through c into a
 * consumer whose select also waits for the pipe rd, which a flapper (testnet.h) makes readable
 * and unreadable again and again. Every value must arrive exactly once and in order. */
struct restart {
    int rd;
    chan_t *c;
    long n;
    int until_ms; /* the consumer's select: with a deadline of that many ms, or 0: without */
};

static void produce(void *arg)
{
    struct restart *r = arg;
    for (long i = 0; i < r->n; i++)
        ck_assert_int_eq(chan_send(r->c, &i), 0);
}

static void consume(void *arg)
{
    struct restart *r = arg;
    long next = 0;
    while (next < r->n) {
        long v = -1;
        int rev = 0;
        struct chan_case cs[2] = {
            {.chan = chan_fd_chan(r->rd, POLLIN), .elem = &rev, .dir = CHAN_RECV},
            {.chan = r->c, .elem = &v, .dir = CHAN_RECV},
        };
        int k = r->until_ms ? chan_select_until(cs, 2, chan_now() + r->until_ms * MS)
                            : chan_select(cs, 2);
        if (k == -ETIMEDOUT)
            continue;
        ck_assert_int_ge(k, 0);
        if (k == 0) {
            ck_assert(rev & (POLLIN | POLLHUP));
            task_yield(); /* let the flapper take the byte */
            continue;
        }
        ck_assert(cs[1].ok);
        ck_assert_msg(v == next, "got %ld, expected %ld", v, next);
        next++;
    }
}

/* ---- A select's look again after PARK_IO, held up -------------------------------------------- */

/* For the tests of a select that PARK_IO woke and that looks at its cases again holding its
 * channel c all along (restart_after_close_and_free in both files): relook_select selects over
 * the fd and c on a task of its own; once armed, relook_hold (as poll_hold, testnet.h) holds
 * that task's next look at the fd up, and relook_is_held says so. */
static _Atomic int64_t relook_task = -1;
static atomic_bool relook_armed, relook_held;

static void relook_hold(void)
{
    if (task_id() == atomic_load(&relook_task) && atomic_exchange(&relook_armed, false)) {
        atomic_store(&relook_held, true);
        sleep_ms(scaled(100, 300));
    }
}

static int relook_is_held(void *arg)
{
    (void)arg;
    return atomic_load(&relook_held);
}

struct relook {
    int fd;
    chan_t *c;
    int r;
    bool ok;
};

static void relook_select(void *arg)
{
    struct relook *x = arg;
    atomic_store(&relook_task, task_id());
    int rev;
    struct chan_case cs[2] = {
        {.chan = chan_fd_chan(x->fd, POLLIN), .elem = &rev, .dir = CHAN_RECV},
        {.chan = x->c, .dir = CHAN_RECV},
    };
    x->r = chan_select(cs, 2);
    x->ok = x->r >= 0 && cs[x->r].ok;
}

/* chan_io(3): a chan_connect that failed leaves the socket as a connect(2) that blocked does:
 * unconnected, so that a call again makes a fresh attempt. A socket bound at 127.0.0.1 but not
 * listening refuses the connection, twice (the second call -ECONNABORTED before the fix: Linux
 * kept the socket connecting until that call, which only reset it); once it listens, the same
 * socket connects and carries a byte. */
static void connect_after_refused(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(chan_connect(c, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER),
                         -ECONNREFUSED);
    ck_assert_int_eq(listen(l, 4), 0);
    ck_assert_int_eq(chan_connect(c, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER), 0);
    int a = chan_accept(l, NULL, NULL, NULL, chan_now() + 10 * CHAN_SECOND);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(chan_write(c, "x", 1, NULL, CHAN_FOREVER), 1);
    char x;
    ck_assert_int_eq(chan_read(a, &x, 1, NULL, chan_now() + 10 * CHAN_SECOND), 1);
    fdclose(a);
    fdclose(c);
    fdclose(l);
}

#endif
