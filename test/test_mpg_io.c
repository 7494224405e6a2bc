/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_io.c - chan_io.h on Gs of libchan-mpg (sched/): the netpoller. A G that waits on an
 * fd parks, its thread runs other Gs, and the scheduler's epoll set wakes it.
 *
 * The calls behave on Gs exactly as on threads (test_io.c): the same results and errors
 * (-ETIMEDOUT, -ECANCELED, -EBADF, -EBUSY), the same select. Beyond that: 1,000 Gs blocked in
 * chan_read on pipes hold no thread, while a G computes and a ping-pong keeps its pace; 10,000
 * Gs each waiting on its own socket, woken in turn; chan_fd_close from a G parks the G (on one
 * P, a closer that blocked its thread would wait forever for the G it woke); no deadlock is
 * reported while a G waits on an fd; the netpoller's fds and memory go at chan_mpg_stop.
 *
 * Conventions: a test waits until the G it drives is blocked (its sudog queued on the fd
 * channel: hchan_waiting), never by guessing a sleep; sockets only on 127.0.0.1 or AF_UNIX;
 * every wait is bounded. Checks inside Gs use ck_assert (the suite runs in fork mode, where a
 * failure ends the test's process). A G sleeps with chan_sleep_until, never nanosleep (which
 * would hold its thread).
 */
#include "testmpg.h"
#include "testnet.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_io.h"
#include "chan_time.h"
#include "sched/chan_sched_mpg.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

/* RLIMIT_NOFILE's soft limit raised to the hard one; returns the fds it allows. */
static long fd_limit(void)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

/* Sleeps as a G sleeps (parked), or as a thread does. */
static void nap_ms(int64_t ms)
{
    ck_assert_int_eq(chan_sleep_until(chan_now() + ms * MS, NULL), 0);
}

/* Until an operation waits on fd for events (its sudog is queued on the fd channel). From a G
 * or a thread. */
static int fd_blocked(int fd, short events) { return fd_waiter_queued(fd, events, nap_ms); }

/* Runs body as a G on nprocs Ps, and waits for it and the Gs it started; the process has as
 * many fds after as before (the netpoller's go with chan_mpg_stop). */
static void g_body(void *arg)
{
    ck_assert_int_gt(chan_mpg_self(), 0);
    ((void (*)(void))arg)();
}

static void on_g(void (*body)(void), int nprocs)
{
    int before = nfds();
    start(nprocs);
    ck_assert_int_gt(chan_mpg_go(g_body, (void *)body), 0);
    finish();
    ck_assert_int_eq(nfds(), before);
}

/* A G running one I/O call: what it called, and what it got back, when; done closes when it
 * has returned (gcall_join waits for it). */
enum op { OP_WAIT_IN, OP_WAIT_OUT, OP_READ, OP_WRITE, OP_ACCEPT, OP_CLOSE };
struct gcall {
    enum op op;
    int fd;
    chan_t *cancel;
    int64_t deadline;
    size_t n; /* OP_WRITE: bytes */
    long r;
    int64_t returned; /* chan_now() as it returned */
    chan_t *done;
};

static void run_call(void *arg)
{
    struct gcall *c = arg;
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
    ck_assert_int_eq(chan_close(c->done), 0);
}

static void gcall_start(struct gcall *c)
{
    c->done = chan_make(0, 0);
    ck_assert_ptr_nonnull(c->done);
    ck_assert_int_gt(chan_mpg_go(run_call, c), 0);
}

static void gcall_join(struct gcall *c)
{
    ck_assert_int_eq(chan_recv(c->done, NULL), -EPIPE);
    ck_assert_int_eq(chan_free(c->done), 0);
}

/* A signal that interrupts the thread of a G that waits is absorbed: the G stays parked to
 * its deadline. */
START_TEST(waits_absorb_signals_on_g) { on_g(waits_absorb_signals, 2); }
END_TEST

/* Go's deadline moved while a read waits, on a G: a timer's channel as the cancel. */
START_TEST(deadline_moved_by_timer_on_g) { on_g(deadline_moved_by_timer, 2); }
END_TEST

/* ---- 1,000 Gs blocked in chan_read while a G computes and two Gs ping-pong ------------------- */

static struct readers {
    int (*fd)[2];
    atomic_int entered, done;
    struct beside bs; /* the computing G and the ping-pong (testmpg.h) */
} rd;

static void reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    char c;
    atomic_fetch_add(&rd.entered, 1);
    ck_assert_int_eq(chan_read(rd.fd[i][0], &c, 1, NULL, CHAN_FOREVER), 1);
    ck_assert_int_eq(c, 'x');
    atomic_fetch_add(&rd.done, 1);
}

/* The readers park (netpoller): they hold no thread, and the ping-pong on the P that the
 * computing G leaves free runs at its pace beside them. (test_mpg_syscall.c has the same with
 * blocking read(2) announced as system calls: there each reader holds an M.) */
START_TEST(readers_park_pingpong_runs)
{
    const int n = 1000;
    ck_assert_int_ge(fd_limit(), 2 * n + 64);
    int before = nfds();
    rd.fd = calloc((size_t)n, sizeof *rd.fd);
    for (int i = 0; i < n; i++)
        mkpipe(rd.fd[i]);
    beside_make(&rd.bs, scaled(20000, 2000));
    start(2);
    /* One P computes for the whole test: the ping-pong and the readers share the other. */
    go(beside_compute, &rd.bs);
    int64_t alone = beside_pingpong(&rd.bs);
    for (int i = 0; i < n; i++)
        ck_assert_int_gt(chan_mpg_go(reader, (void *)(intptr_t)i), 0);
    for (int i = 0; i < n; i++)
        ck_assert(fd_blocked(rd.fd[i][0], POLLIN));
    int64_t beside = beside_pingpong(&rd.bs);
    ck_assert_int_eq(atomic_load(&rd.done), 0); /* they were blocked all along */
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    fprintf(stderr,
            "readers_park_pingpong_runs: %ld round trips in %.2f ms alone, %.2f ms beside %d "
            "parked readers; %llu Ms\n",
            rd.bs.rounds, (double)alone / 1e6, (double)beside / 1e6, n,
            (unsigned long long)st.threads);
    ck_assert_msg(beside < 20 * alone + 2000 * MS, "ping-pong stalled: %lld ns vs %lld ns",
                  (long long)beside, (long long)alone);
    /* Parked Gs need no thread (the syscall way: 1,002): one M per P, and a few more. */
    ck_assert_uint_lt(st.threads, (uint64_t)st.nprocs + 8);
    for (int i = 0; i < n; i++)
        put1(rd.fd[i][1]);
    for (int i = 0; i < 20000 && atomic_load(&rd.done) < n; i++)
        sleep_ms(1);
    ck_assert_int_eq(atomic_load(&rd.done), n);
    atomic_store(&rd.bs.stop, true);
    finish();
    NO_BAD();
    beside_free(&rd.bs);
    for (int i = 0; i < n; i++) {
        fdclose(rd.fd[i][0]);
        fdclose(rd.fd[i][1]);
    }
    free(rd.fd);
    ck_assert_int_eq(nfds(), before);
}
END_TEST

/* ---- Select over a socket, a channel and a timer, on a G ------------------------------------- */

/* Once the select's sudog is queued on watch's fd channel, makes a case ready: a byte written to
 * fd, or a value sent on c. A G. */
struct later {
    int watch, fd;
    chan_t *c, *done;
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
    ck_assert_int_eq(chan_close(l->done), 0);
}

static void select_body(void)
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
        struct later l = {.watch = b, .fd = a, .c = which == 1 ? c : NULL, .done = chan_make(0, 0)};
        if (!before && which != 2)
            ck_assert_int_gt(chan_mpg_go(act_later, &l), 0);
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
            ck_assert_int_eq(chan_recv(l.done, NULL), -EPIPE);
        ck_assert_int_eq(chan_free(l.done), 0);
        ck_assert_int_eq(chan_timer_free(tm), 0);
    }
    ck_assert_int_eq(chan_free(c), 0);
    fdclose(a);
    fdclose(b);
}

START_TEST(select_socket_channel_timer) { on_g(select_body, 2); }
END_TEST

START_TEST(select_socket_channel_timer_1p) { on_g(select_body, 1); }
END_TEST

/* ---- Cancellation, deadlines ----------------------------------------------------------------- */

/* A G blocked waiting for a socket (chan_read, chan_fd_wait, chan_accept) returns -ECANCELED
 * promptly when its context is cancelled; the socket still works after. */
static void cancel_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    for (int op = 0; op < 3; op++) {
        chan_ctx_t *ctx = chan_ctx_with_cancel(chan_ctx_background());
        ck_assert_ptr_nonnull(ctx);
        struct gcall c = {.op = op == 0   ? OP_READ
                                : op == 1 ? OP_WAIT_IN
                                          : OP_ACCEPT,
                          .fd = op == 2 ? l : b,
                          .cancel = chan_ctx_done(ctx),
                          .deadline = CHAN_FOREVER};
        gcall_start(&c);
        ck_assert(fd_blocked(c.fd, POLLIN));
        int64_t t0 = chan_now();
        ck_assert_int_eq(chan_ctx_cancel(ctx), 0);
        gcall_join(&c);
        ck_assert_int_eq(c.r, -ECANCELED);
        ck_assert_msg(c.returned - t0 < late_bound(), "op %d: returned %lld ns after the cancel",
                      op, (long long)(c.returned - t0));
        ck_assert_int_eq(chan_ctx_free(ctx), 0);
    }
    put1(a);
    char x;
    ck_assert_int_eq(chan_read(b, &x, 1, NULL, CHAN_FOREVER), 1);
    fdclose(a);
    fdclose(b);
    fdclose(l);
}

START_TEST(cancel_blocked_socket) { on_g(cancel_body, 2); }
END_TEST

/* A deadline: -ETIMEDOUT, never early; a passed deadline does not stop what is ready; a closed
 * cancel channel does not stop a ready fd; a value in the cancel channel is taken. */
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
    put1(p[1]);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, NULL, INT64_MIN), POLLIN);
    ck_assert_int_eq(chan_read(p[0], buf, sizeof buf, NULL, INT64_MIN), 1);
    ck_assert_int_eq(chan_fd_wait(p[1], POLLOUT, NULL, INT64_MIN), POLLOUT);
    chan_t *done = chan_make(0, 0);
    ck_assert_int_eq(chan_close(done), 0);
    put1(p[1]);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, done, CHAN_FOREVER), POLLIN);
    ck_assert_int_eq(chan_read(p[0], buf, sizeof buf, done, CHAN_FOREVER), 1);
    ck_assert_int_eq(chan_read(p[0], buf, sizeof buf, done, CHAN_FOREVER), -ECANCELED);
    ck_assert_int_eq(chan_free(done), 0);
    chan_t *cancel = chan_make(sizeof(int), 1);
    int v = 5;
    ck_assert_int_eq(chan_send(cancel, &v), 0);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, cancel, CHAN_FOREVER), -ECANCELED);
    ck_assert_uint_eq(chan_len(cancel), 0);
    ck_assert_int_eq(chan_free(cancel), 0);
    /* chan_sleep_until: 0 at the deadline, -ECANCELED by a context. */
    int64_t d = chan_now() + 20 * MS;
    ck_assert_int_eq(chan_sleep_until(d, NULL), 0);
    ck_assert_int_ge(chan_now(), d);
    chan_ctx_t *ctx = chan_ctx_with_timeout(chan_ctx_background(), 20 * MS);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_sleep_until(chan_now() + 10 * CHAN_SECOND, chan_ctx_done(ctx)),
                     -ECANCELED);
    ck_assert_int_lt(chan_now() - t0, 20 * MS + late_bound());
    ck_assert_int_eq(chan_ctx_free(ctx), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}

START_TEST(deadlines) { on_g(deadlines_body, 2); }
END_TEST

/* ---- One waiter per fd and direction; chan_fd_close ------------------------------------------ */

/* A second G that would wait on the same fd in the same direction: -EBUSY, before anything
 * happened; the other direction, and a ready fd, are free. */
static void busy_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    struct gcall c = {.op = OP_WAIT_IN, .fd = b, .deadline = CHAN_FOREVER};
    gcall_start(&c);
    ck_assert(fd_blocked(b, POLLIN));
    char buf[4];
    ck_assert_int_eq(chan_fd_wait(b, POLLIN, NULL, chan_now() + CHAN_SECOND), -EBUSY);
    ck_assert_int_eq(chan_read(b, buf, sizeof buf, NULL, CHAN_FOREVER), -EBUSY);
    ck_assert_int_eq(chan_recv(chan_fd_chan(b, POLLIN), NULL), -EBUSY);
    ck_assert_int_eq(chan_fd_wait(b, POLLOUT, NULL, CHAN_FOREVER), POLLOUT);
    put1(a);
    ck_assert_int_eq(chan_fd_wait(b, POLLIN, NULL, CHAN_FOREVER), POLLIN);
    gcall_join(&c);
    ck_assert_int_eq(c.r, POLLIN);
    ck_assert_int_eq(chan_read(b, buf, sizeof buf, NULL, CHAN_FOREVER), 1);
    fdclose(a);
    fdclose(b);
}

START_TEST(busy) { on_g(busy_body, 2); }
END_TEST

struct selwait {
    chan_t *c, *done;
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
    ck_assert_int_eq(chan_close(s->done), 0);
}

/* chan_fd_close while Gs wait on the fd: each wakes with -EBADF (a select's case fires with ok
 * false), promptly. */
static void close_body(void)
{
    int a, b, p[2], q[2];
    tcp_pair(&a, &b);
    mkpipe(p);
    mkpipe(q);
    fill(p[1]);
    struct gcall rdc = {.op = OP_READ, .fd = b, .deadline = CHAN_FOREVER};
    struct gcall wo = {.op = OP_WAIT_OUT, .fd = p[1], .deadline = CHAN_FOREVER};
    struct selwait sw = {.c = chan_fd_chan(q[0], POLLIN), .done = chan_make(0, 0)};
    gcall_start(&rdc);
    ck_assert(fd_blocked(b, POLLIN));
    gcall_start(&wo);
    ck_assert(fd_blocked(p[1], POLLOUT));
    ck_assert_int_gt(chan_mpg_go(run_select, &sw), 0);
    ck_assert(fd_blocked(q[0], POLLIN));
    int64_t t0 = chan_now();
    fdclose(b);
    fdclose(p[1]);
    fdclose(q[0]);
    gcall_join(&rdc);
    gcall_join(&wo);
    ck_assert_int_eq(chan_recv(sw.done, NULL), -EPIPE);
    ck_assert_int_eq(chan_free(sw.done), 0);
    ck_assert_int_eq(rdc.r, -EBADF);
    ck_assert_int_eq(wo.r, -EBADF);
    ck_assert_int_eq(sw.r, 0);
    ck_assert(!sw.cs[0].ok);
    ck_assert_int_eq(sw.rev, 0);
    ck_assert_int_lt(rdc.returned - t0, late_bound());
    ck_assert_int_lt(wo.returned - t0, late_bound());
    ck_assert_int_eq(chan_fd_wait(b, POLLIN, NULL, CHAN_FOREVER), -EBADF);
    fdclose(a);
    fdclose(p[0]);
    fdclose(q[1]);
}

START_TEST(fd_close_wakes_gs) { on_g(close_body, 2); }
END_TEST

/* On one P: a G waits on an fd, and another G closes it. The close wakes the waiter into the
 * closer's P and then waits for it to leave its call: the closer must park for that, or the
 * waiter, queued behind it on the only P, never runs (with a condition variable it hung). */
static void close_1p_body(void)
{
    int p[2];
    mkpipe(p);
    struct gcall w = {.op = OP_READ, .fd = p[0], .deadline = CHAN_FOREVER};
    gcall_start(&w);
    ck_assert(fd_blocked(p[0], POLLIN));
    struct gcall cl = {.op = OP_CLOSE, .fd = p[0]};
    gcall_start(&cl);
    gcall_join(&cl);
    gcall_join(&w);
    ck_assert_int_eq(cl.r, 0);
    ck_assert_int_eq(w.r, -EBADF);
    fdclose(p[1]);
}

START_TEST(fd_close_from_g_parks) { on_g(close_1p_body, 1); }
END_TEST

/* ---- The I/O calls between Gs ---------------------------------------------------------------- */

struct copier {
    int fd;
    size_t n;
    unsigned char *buf;
    long r;
    chan_t *done;
};

static void write_all(void *arg)
{
    struct copier *c = arg;
    c->r = chan_write(c->fd, c->buf, c->n, NULL, CHAN_FOREVER);
    ck_assert_int_eq(chan_close(c->done), 0);
}

/* chan_write writes everything, across a pipe's and a socket's limits, waiting for room, while
 * a G reads it in small pieces; end of file once the writer closes. */
static void copy_body(void)
{
    const size_t n = 1 << 20;
    for (int kind = 0; kind < 2; kind++) {
        int fds[2];
        if (kind == 0)
            mkpipe(fds);
        else
            tcp_pair(&fds[1], &fds[0]);
        unsigned char *src = malloc(n), *dst = malloc(n);
        for (size_t i = 0; i < n; i++)
            src[i] = (unsigned char)(i * 7 + i / 251);
        struct copier w = {.fd = fds[1], .n = n, .buf = src, .done = chan_make(0, 0)};
        ck_assert_int_gt(chan_mpg_go(write_all, &w), 0);
        size_t got = 0;
        while (got < n) {
            long r =
                chan_read(fds[0], dst + got, n - got < 3000 ? n - got : 3000, NULL, CHAN_FOREVER);
            ck_assert_int_gt(r, 0);
            got += (size_t)r;
        }
        ck_assert_int_eq(chan_recv(w.done, NULL), -EPIPE);
        ck_assert_int_eq(chan_free(w.done), 0);
        ck_assert_int_eq(w.r, (long)n);
        ck_assert(memcmp(src, dst, n) == 0);
        fdclose(fds[1]);
        char x;
        ck_assert_int_eq(chan_read(fds[0], &x, 1, NULL, CHAN_FOREVER), 0);
        fdclose(fds[0]);
        free(src);
        free(dst);
    }
    /* Stopped part way: what went out; nothing out: the reason. */
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
    fdclose(p[0]);
    fdclose(p[1]);
    /* A peer that has gone: -EPIPE or -ECONNRESET, no SIGPIPE. */
    int a, b;
    tcp_pair(&a, &b);
    fdclose(b);
    r = 0;
    for (int i = 0; i < 100 && r >= 0; i++)
        r = chan_write(a, big, sizeof big, NULL, chan_now() + CHAN_SECOND);
    ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "chan_write: %ld", r);
    fdclose(a);
}

START_TEST(write_read_between_gs) { on_g(copy_body, 2); }
END_TEST

struct dialer {
    struct sockaddr_in sa;
    int fd, r;
    chan_t *done;
};

static void dial(void *arg)
{
    struct dialer *d = arg;
    d->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(d->fd, 0);
    d->r = chan_connect(d->fd, (struct sockaddr *)&d->sa, sizeof d->sa, NULL, CHAN_FOREVER);
    if (d->r == 0)
        ck_assert_int_eq(chan_write(d->fd, "ping", 4, NULL, CHAN_FOREVER), 4);
    ck_assert_int_eq(chan_close(d->done), 0);
}

/* A G accepts while another connects and sends; nobody listening: -ECONNREFUSED. */
static void accept_body(void)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    int64_t d = chan_now() + 20 * MS;
    ck_assert_int_eq(chan_accept(l, NULL, NULL, NULL, d), -ETIMEDOUT);
    ck_assert_int_ge(chan_now(), d);
    struct dialer dl = {.sa = sa, .done = chan_make(0, 0)};
    ck_assert_int_gt(chan_mpg_go(dial, &dl), 0);
    int c = chan_accept(l, NULL, NULL, NULL, chan_now() + 10 * CHAN_SECOND);
    ck_assert_int_ge(c, 0);
    ck_assert(fcntl(c, F_GETFL) & O_NONBLOCK);
    char buf[8];
    ck_assert_int_eq(chan_read(c, buf, sizeof buf, NULL, CHAN_FOREVER), 4);
    ck_assert(memcmp(buf, "ping", 4) == 0);
    ck_assert_int_eq(chan_recv(dl.done, NULL), -EPIPE);
    ck_assert_int_eq(chan_free(dl.done), 0);
    ck_assert_int_eq(dl.r, 0);
    fdclose(c);
    fdclose(dl.fd);
    fdclose(l);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(chan_connect(s, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER),
                     -ECONNREFUSED);
    fdclose(s);
}

START_TEST(accept_connect) { on_g(accept_body, 2); }
END_TEST

/* The same on a G: the socket stays in the netpoller across the attempts. */
START_TEST(connect_after_refused_on_g) { on_g(connect_after_refused, 2); }
END_TEST

/*
 * An I/O call reads the errno of the thread its G runs on after each system call. A G waits in
 * chan_accept on one P: its accept4 said EAGAIN on thread A. Another G then sets errno on A to
 * EXDEV and blocks A in a system call (announced: the monitor hands the P to thread B). The
 * listener is shut down: the waiting G wakes on B, where accept4 fails with EINVAL, and
 * chan_accept must return -EINVAL. (A compiler may keep errno's address across the wait: the
 * clang build's chan_accept read A's EXDEV.)
 */
struct errno_accept {
    int l;
    int r;
    chan_t *done;
};

static void errno_acceptor(void *arg)
{
    struct errno_accept *a = arg;
    a->r = chan_accept(a->l, NULL, NULL, NULL, chan_now() + 10000 * MS);
    ck_assert_int_eq(chan_close(a->done), 0);
}

static void errno_spoiler(void *arg)
{
    (void)arg;
    errno = EXDEV;
    chan_mpg_syscall_enter();
    sleep_ms(scaled(300, 600)); /* (nanosleep changes errno only when interrupted) */
    chan_mpg_syscall_exit();
}

START_TEST(errno_after_moving_thread)
{
    struct sockaddr_in sa;
    struct errno_accept a = {.l = tcp_listener(&sa), .r = 1, .done = chan_make(0, 0)};
    start(1);
    ck_assert_int_eq(chan_mpg_foreign_enter(), 0);
    go(errno_acceptor, &a);
    ck_assert(fd_blocked(a.l, POLLIN));
    go(errno_spoiler, NULL);
    sleep_ms(scaled(100, 200)); /* the spoiler in its system call, the P handed on */
    ck_assert_int_eq(shutdown(a.l, SHUT_RD), 0);
    ck_assert_int_eq(chan_recv(a.done, NULL), -EPIPE);
    chan_mpg_foreign_leave();
    finish();
    ck_assert_int_eq(a.r, -EINVAL);
    ck_assert_int_eq(chan_free(a.done), 0);
    fdclose(a.l);
}
END_TEST

/* ---- Short connections: Ms going in and out of epoll_wait ------------------------------------ */

/* Four client Gs each make connections one after another, with deadlines (timers that kick the
 * idle Ms), to a server G that starts a G per connection: Ms keep being woken from epoll_wait
 * and others going idle. At most one M may wait in epoll_wait: a second one took the break
 * meant for the first, which then slept on with the P it had been handed, and the Gs queued
 * there never ran (the crawl_http example hung under TSan now and then). */
static struct {
    int lfd;
    struct sockaddr_in sa;
    int per_client;
    atomic_int served;
    chan_t *results; /* each round trip's result, to the test's G: a wake-up each (wakep) */
} sc;

static void sc_handle(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char b[4];
    int64_t d = chan_now() + 10 * CHAN_SECOND;
    ck_assert_int_eq(chan_read(fd, b, sizeof b, NULL, d), 4);
    ck_assert_int_eq(chan_write(fd, b, sizeof b, NULL, d), 4);
    fdclose(fd);
    atomic_fetch_add(&sc.served, 1);
}

static void sc_server(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        int fd = chan_accept(sc.lfd, NULL, NULL, NULL, chan_now() + 30 * CHAN_SECOND);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_gt(chan_mpg_go(sc_handle, (void *)(intptr_t)fd), 0);
    }
}

static void sc_client(void *arg)
{
    (void)arg;
    for (int i = 0; i < sc.per_client; i++) {
        int64_t d = chan_now() + 10 * CHAN_SECOND;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(chan_connect(fd, (struct sockaddr *)&sc.sa, sizeof sc.sa, NULL, d), 0);
        ck_assert_int_eq(chan_write(fd, "ping", 4, NULL, d), 4);
        char b[4];
        ck_assert_int_eq(chan_read(fd, b, sizeof b, NULL, d), 4);
        ck_assert_int_eq(chan_read(fd, b, sizeof b, NULL, d), 0);
        fdclose(fd);
        int ok = 1;
        ck_assert_int_eq(chan_send(sc.results, &ok), 0);
    }
}

static void short_body(void)
{
    sc.per_client = scaled(200, 60);
    sc.lfd = tcp_listener(&sc.sa);
    ck_assert_int_gt(chan_mpg_go(sc_server, (void *)(intptr_t)(4 * sc.per_client)), 0);
    sc.results = chan_make(sizeof(int), 0);
    ck_assert_ptr_nonnull(sc.results);
    for (int i = 0; i < 4; i++)
        ck_assert_int_gt(chan_mpg_go(sc_client, NULL), 0);
    for (int i = 0; i < 4 * sc.per_client; i++) {
        int ok = 0;
        ck_assert_int_eq(chan_recv_until(sc.results, &ok, chan_now() + 20 * CHAN_SECOND), 0);
        ck_assert_int_eq(ok, 1);
    }
    ck_assert_int_eq(chan_free(sc.results), 0);
    fdclose(sc.lfd);
}

START_TEST(short_connections) { on_g(short_body, 2); }
END_TEST

/* ---- The restart after PARK_IO, racing unparks ----------------------------------------------- */

/*
 * As test_io.c's: values flow through a channel into a G's select that also waits for a pipe,
 * which a thread makes readable and unreadable again and again. The G's parks keep ending in
 * PARK_IO (the netpoller's edges, often before the G has committed its park, often for an fd no
 * longer ready), racing the producer's unparks: every value must arrive once, in order.
 * Unbuffered and buffered, without and with a deadline; the producer a thread or a G.
 */
struct restart {
    int rd;
    chan_t *c;
    long n;
    int until_ms;
};

static void produce(void *arg)
{
    struct restart *r = arg;
    for (long i = 0; i < r->n; i++)
        ck_assert_int_eq(chan_send(r->c, &i), 0);
}

static void *produce_thread(void *arg)
{
    produce(arg);
    return NULL;
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
            chan_mpg_yield(); /* let the flapper take the byte */
            continue;
        }
        ck_assert(cs[1].ok);
        ck_assert_msg(v == next, "got %ld, expected %ld", v, next);
        next++;
    }
}

static void restart_run(int cap, long n, int until_ms, bool g_producer)
{
    int p[2];
    mkpipe(p);
    struct flap f = {.rd = p[0], .wr = p[1]};
    struct restart r = {
        .rd = p[0], .c = chan_make(sizeof(long), (size_t)cap), .n = n, .until_ms = until_ms};
    pthread_t tf = flapper_start(&f), tp = 0;
    start(2);
    ck_assert_int_eq(chan_mpg_foreign_enter(), 0); /* the producer thread wakes it */
    ck_assert_int_gt(chan_mpg_go(consume, &r), 0);
    if (g_producer)
        ck_assert_int_gt(chan_mpg_go(produce, &r), 0);
    else
        tp = spawn(produce_thread, &r);
    finish();
    chan_mpg_foreign_leave();
    if (tp)
        join(tp);
    atomic_store(&f.stop, true);
    join(tf);
    long extra;
    ck_assert_int_eq(chan_tryrecv(r.c, &extra), -EAGAIN);
    ck_assert_int_eq(chan_free(r.c), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}

/* A producer thread sends to a G at 0.3-2.5 ms a value on a loaded machine (the flapper and the
 * consumer's M keep both CPUs busy; the thread waits for a time slice), so the plain build sends
 * 5,000 values per variant, not more: the eight variants took 107-147 s at load 5-10 with 20,000,
 * past the time-out. */
START_TEST(restart_never_loses_or_duplicates)
{
    const long n = scaled(5000, 3000);
    for (int variant = 0; variant < 8; variant++)
        restart_run(variant % 2 ? 8 : 0, n, variant & 2 ? 1 : 0, variant & 4);
}
END_TEST

/*
 * test_io's test_restart_after_close_and_free on a G, which the netpoller wakes with PARK_IO: a
 * select over an fd and a channel c looks at its cases again holding c all along. The look
 * again is held up (poll_hold, on the G's thread: the other P runs on); meanwhile the test takes
 * the byte back, closes and frees c, and makes a channel of the same size with a value in it.
 * The select must return c's case closed. (Should the hold come at the park's own look, before
 * the G parked, c's close wakes the G as any close does: the same result.)
 */
static _Atomic int64_t relook_g = -1;
static atomic_bool relook_armed, relook_held;

static void relook_hold(void)
{
    if (chan_mpg_self() == atomic_load(&relook_g) && atomic_exchange(&relook_armed, false)) {
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
    chan_t *c, *done;
    int r;
    bool ok;
};

static void relook_select(void *arg)
{
    struct relook *x = arg;
    atomic_store(&relook_g, chan_mpg_self());
    int rev;
    struct chan_case cs[2] = {
        {.chan = chan_fd_chan(x->fd, POLLIN), .elem = &rev, .dir = CHAN_RECV},
        {.chan = x->c, .dir = CHAN_RECV},
    };
    x->r = chan_select(cs, 2);
    x->ok = x->r >= 0 && cs[x->r].ok;
    ck_assert_int_eq(chan_close(x->done), 0);
}

START_TEST(restart_after_close_and_free)
{
    int p[2];
    mkpipe(p);
    struct relook x = {.fd = p[0], .c = chan_make(0, 1), .done = chan_make(0, 0), .r = -1};
    atomic_store(&relook_armed, false);
    atomic_store(&relook_held, false);
    atomic_store(&polled_fd, p[0]);
    atomic_store(&poll_hold, relook_hold);
    start(2);
    ck_assert_int_eq(chan_mpg_foreign_enter(), 0);
    go(relook_select, &x);
    ck_assert(fd_blocked(p[0], POLLIN));
    sleep_ms(20); /* and parked, most likely */
    atomic_store(&relook_armed, true);
    put1(p[1]);
    ck_assert(eventually(relook_is_held, NULL));
    get1(p[0]);
    ck_assert_int_eq(chan_close(x.c), 0);
    int e;
    while ((e = chan_free(x.c)) == -EBUSY) /* the G woken by the close, still unlinking */
        sleep_ms(1);
    ck_assert_int_eq(e, 0);
    chan_t *other = chan_make(0, 1);
    ck_assert_int_eq(chan_send(other, NULL), 0);
    ck_assert_int_eq(chan_recv(x.done, NULL), -EPIPE);
    chan_mpg_foreign_leave();
    finish();
    atomic_store(&poll_hold, NULL);
    atomic_store(&polled_fd, -1);
    ck_assert_int_eq(x.r, 1);
    ck_assert(!x.ok);
    ck_assert_int_eq(chan_free(other), 0);
    ck_assert_int_eq(chan_free(x.done), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}
END_TEST

/* ---- Signals on a channel that a G receives from --------------------------------------------- */

struct sigrecv {
    chan_t *c;
    int got;
    int64_t until;
};

static void recv_signal(void *arg)
{
    struct sigrecv *s = arg;
    int v = 0;
    while (chan_recv_until(s->c, &v, s->until) == 0)
        if (v == SIGUSR1) {
            s->got = v;
            return;
        }
}

/* A G blocks in a receive on a signal channel; kill(2) from the test's thread reaches it. And a
 * G whose select waits on a signal channel and an fd at once gets either. */
START_TEST(signals_to_g)
{
    chan_t *c = chan_make(sizeof(int), 4);
    ck_assert_int_eq(chan_signal_notify(c, (int[]){SIGUSR1}, 1), 0);
    start(2);
    ck_assert_int_eq(chan_mpg_foreign_enter(), 0); /* the delivery thread sends to it */
    struct sigrecv s = {.c = c, .until = chan_now() + 10 * CHAN_SECOND};
    ck_assert_int_gt(chan_mpg_go(recv_signal, &s), 0);
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    finish();
    chan_mpg_foreign_leave();
    ck_assert_int_eq(s.got, SIGUSR1);
    ck_assert_int_eq(chan_signal_stop(c), 0);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* ---- 10,000 Gs, each waiting on its own socket ----------------------------------------------- */

/* The far ends of the sockets live in a child process (10,000 pairs would need 20,000 fds in
 * one process, more than a hard limit of 20,000 leaves room for): the parent makes each pair and
 * passes one end over a control socket (SCM_RIGHTS). Once every G is blocked, the child writes
 * a byte to each in turn and waits for it to come back: the Gs wake one by one. */
static void send_fd(int ctl, int fd)
{
    char b = 'f';
    struct iovec iov = {&b, 1};
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    ck_assert_int_eq(sendmsg(ctl, &m, 0), 1);
}

static int recv_fd(int ctl)
{
    char b;
    struct iovec iov = {&b, 1};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    if (recvmsg(ctl, &m, 0) != 1)
        return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    if (!cm || cm->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

static int child_echoes(int ctl, int n)
{
    int *peer = malloc((size_t)n * sizeof *peer);
    for (int i = 0; i < n; i++)
        if (!peer || (peer[i] = recv_fd(ctl)) < 0)
            return 2;
    char go;
    if (read(ctl, &go, 1) != 1)
        return 3;
    for (int i = 0; i < n; i++) {
        char b = (char)('a' + i % 26), back = 0;
        if (write(peer[i], &b, 1) != 1 || read(peer[i], &back, 1) != 1 || back != b)
            return 4;
    }
    return 0;
}

static struct many {
    int *own;
    atomic_int woke;
    atomic_int order_bad;
} mg;

static void many_waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    char b;
    ck_assert_int_eq(chan_read(mg.own[i], &b, 1, NULL, chan_now() + 120 * CHAN_SECOND), 1);
    if (b != (char)('a' + i % 26) || atomic_fetch_add(&mg.woke, 1) != i)
        atomic_fetch_add(&mg.order_bad, 1);
    ck_assert_int_eq(chan_write(mg.own[i], &b, 1, NULL, CHAN_FOREVER), 1);
}

START_TEST(ten_thousand_sockets)
{
    const int n = 10000;
    ck_assert_int_ge(fd_limit(), n + 64);
    int before = nfds();
    int ctl[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(ctl[0]);
        _exit(child_echoes(ctl[1], n));
    }
    close(ctl[1]);
    mg.own = malloc((size_t)n * sizeof *mg.own);
    for (int i = 0; i < n; i++) {
        int s[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
        send_fd(ctl[0], s[1]);
        close(s[1]);
        mg.own[i] = s[0];
    }
    int64_t t0 = chan_now();
    start(2);
    for (int i = 0; i < n; i++)
        ck_assert_int_gt(chan_mpg_go(many_waiter, (void *)(intptr_t)i), 0);
    for (int i = 0; i < n; i++)
        ck_assert(fd_blocked(mg.own[i], POLLIN));
    int64_t t1 = chan_now();
    ck_assert_int_eq(write(ctl[0], "g", 1), 1);
    finish();
    int64_t t2 = chan_now();
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
    ck_assert_int_eq(atomic_load(&mg.woke), n);
    ck_assert_int_eq(atomic_load(&mg.order_bad), 0);
    fprintf(stderr,
            "ten_thousand_sockets: %d Gs parked on their sockets in %.1f ms, woken in turn "
            "(a round trip each) in %.1f ms\n",
            n, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
    for (int i = 0; i < n; i++)
        fdclose(mg.own[i]);
    free(mg.own);
    close(ctl[0]);
    ck_assert_int_eq(nfds(), before);
}
END_TEST

/* ---- The deadlock report and Gs waiting on fds ----------------------------------------------- */

static int dl_fd;
static chan_t *dl_never;

static void read_then_block(void *arg)
{
    (void)arg;
    char b;
    ck_assert_int_eq(chan_read(dl_fd, &b, 1, NULL, CHAN_FOREVER), 1);
    chan_recv(dl_never, NULL); /* nobody sends: a deadlock, once the fd is read */
}

static void *write_later(void *arg)
{
    sleep_ms(100);
    put1(*(int *)arg);
    return NULL;
}

/* A G waiting on an fd may be woken by the world (an unannounced thread here): no report while
 * it waits (Go counts netpoll waiters as runnable); once it blocks on a channel, the report. */
START_TEST(no_deadlock_while_waiting_on_fd)
{
    int p[2];
    mkpipe(p);
    dl_fd = p[0];
    dl_never = chan_make(0, 0);
    start(2);
    ck_assert_int_gt(chan_mpg_go(read_then_block, NULL), 0);
    ck_assert(fd_blocked(p[0], POLLIN));
    pthread_t t = spawn(write_later, &p[1]);
    char buf[512];
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    ck_assert_int_ge(chan_now() - t0, 90 * MS); /* not before the read */
    ck_assert_ptr_nonnull(strstr(buf, "[chan receive]"));
    join(t);
    ck_assert_int_eq(chan_close(dl_never), 0);
    finish();
    ck_assert_int_eq(chan_free(dl_never), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}
END_TEST

/* The bad inputs give the same errors on a G as on a thread. */
static void bad_body(void)
{
    int p[2];
    mkpipe(p);
    char buf[4];
    ck_assert_int_eq(chan_fd_wait(-1, POLLIN, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN | POLLOUT, NULL, CHAN_FOREVER), -EINVAL);
    ck_assert_int_eq(chan_read(-1, buf, 1, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_accept(p[0], NULL, NULL, NULL, CHAN_FOREVER), -ENOTSOCK);
    ck_assert_int_eq(chan_fd_close(-1), -EBADF);
    fdclose(p[0]);
    ck_assert_int_eq(chan_fd_wait(p[0], POLLIN, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_read(p[0], buf, 1, NULL, CHAN_FOREVER), -EBADF);
    ck_assert_int_eq(chan_fd_close(p[0]), -EBADF);
    fdclose(p[1]);
}

START_TEST(bad_input) { on_g(bad_body, 2); }
END_TEST

/* ---- The netpoller's readiness token (Go's pollDesc) ----------------------------------------- */

/* poll(2) is counted on one fd (polled_fd, polls): testnet.h. */

/* A G's chan_read that waits on a socket the netpoller watches makes no poll(2) on it: its
 * system call said EAGAIN, the netpoller's token (or its wake-up) says when the data came. Once
 * per fd the first wait polls (the fd was not in the epoll set yet). */
static void token_no_poll_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    atomic_store(&polled_fd, b);
    for (int i = 0; i < 5; i++) {
        atomic_store(&polls, 0);
        struct gcall c = {.op = OP_READ, .fd = b, .deadline = CHAN_FOREVER};
        gcall_start(&c);
        ck_assert(fd_blocked(b, POLLIN));
        put1(a);
        gcall_join(&c);
        ck_assert_int_eq(c.r, 1);
        long n = atomic_load(&polls);
        if (i > 0) /* (the first wait added b to the epoll set) */
            ck_assert_msg(n == 0, "wait %d: %ld poll(2) calls on the fd", i, n);
    }
    atomic_store(&polled_fd, -1);
    fdclose(a);
    fdclose(b);
}

START_TEST(token_no_poll) { on_g(token_no_poll_body, 2); }
END_TEST

/* A token that outlived its data (an edge came while nobody waited, and a plain read(2) took
 * the data) makes no wait return early: chan_read's read says EAGAIN and it waits on, and
 * chan_fd_wait keeps poll's level answer (not ready). Data that comes then is seen. */
static void stale_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    char buf[8];
    /* b joins the epoll set (a first wait), and another G waits on its own socket for the
     * whole test, so that some M polls the netpoller and takes b's next edge as a token. */
    struct gcall first = {.op = OP_READ, .fd = b, .deadline = CHAN_FOREVER};
    gcall_start(&first);
    ck_assert(fd_blocked(b, POLLIN));
    put1(a);
    gcall_join(&first);
    ck_assert_int_eq(first.r, 1);
    int x, y;
    tcp_pair(&x, &y);
    struct gcall other = {.op = OP_READ, .fd = y, .deadline = CHAN_FOREVER};
    gcall_start(&other);
    ck_assert(fd_blocked(y, POLLIN));
    for (int i = 0; i < 3; i++) {
        put1(a);
        nap_ms(30); /* (sysmon polls every 10 ms while a G waits on an fd) */
        get1(b);    /* b is non-blocking (chan_read set it): the data was there */
        int64_t d = chan_now() + 40 * MS;
        long r = i % 2 ? chan_fd_wait(b, POLLIN, NULL, d) : chan_read(b, buf, sizeof buf, NULL, d);
        ck_assert_msg(r == -ETIMEDOUT, "round %d: %ld", i, r);
        ck_assert_int_ge(chan_now(), d);
    }
    struct gcall c = {.op = OP_READ, .fd = b, .deadline = chan_now() + 10 * CHAN_SECOND};
    gcall_start(&c);
    ck_assert(fd_blocked(b, POLLIN));
    put1(a);
    gcall_join(&c);
    ck_assert_int_eq(c.r, 1);
    put1(x);
    gcall_join(&other);
    ck_assert_int_eq(other.r, 1);
    fdclose(a);
    fdclose(b);
    fdclose(x);
    fdclose(y);
}

START_TEST(stale_token_waits) { on_g(stale_body, 2); }
END_TEST

/* A token is the I/O call's to take: a receive from the fd channel (level: it polls) must not
 * take it from under a chan_read that has parked on the fd. On one P the reader parks; data
 * comes; the body G keeps the P busy (no park) until sysmon's poll of the netpoller has noted
 * the edge (its token) and queued the reader; then it looks at the fd channel, which is ready,
 * and lets the reader run. The reader's look again must find the edge (its token) and read,
 * not take the fd for not ready and wait to its deadline with the data there. */
static void peek_body(void)
{
    int a, b;
    tcp_pair(&a, &b);
    struct gcall warm = {.op = OP_READ, .fd = b, .deadline = CHAN_FOREVER};
    gcall_start(&warm); /* b joins the epoll set */
    ck_assert(fd_blocked(b, POLLIN));
    put1(a);
    gcall_join(&warm);
    ck_assert_int_eq(warm.r, 1);
    struct gcall c = {.op = OP_READ, .fd = b, .deadline = chan_now() + 5 * CHAN_SECOND};
    gcall_start(&c);
    ck_assert(fd_blocked(b, POLLIN)); /* (one P: the reader has parked by now) */
    put1(a);
    int64_t until = chan_now() + scaled(100, 400) * MS; /* sysmon polls every 10 ms or less */
    while (chan_now() < until) {
    }
    int rev = 0;
    ck_assert_int_eq(chan_tryrecv(chan_fd_chan(b, POLLIN), &rev), 0);
    ck_assert(rev & POLLIN);
    gcall_join(&c);
    ck_assert_msg(c.r == 1, "the reader got %ld", c.r);
    fdclose(a);
    fdclose(b);
}

START_TEST(level_look_leaves_token) { on_g(peek_body, 1); }
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg_io");
    ADD_TEST(s, readers_park_pingpong_runs, 60);
    ADD_TEST(s, select_socket_channel_timer, 30);
    ADD_TEST(s, select_socket_channel_timer_1p, 30);
    ADD_TEST(s, cancel_blocked_socket, 30);
    ADD_TEST(s, deadlines, 30);
    ADD_TEST(s, waits_absorb_signals_on_g, 30);
    ADD_TEST(s, deadline_moved_by_timer_on_g, 30);
    ADD_TEST(s, busy, 30);
    ADD_TEST(s, fd_close_wakes_gs, 30);
    ADD_TEST(s, fd_close_from_g_parks, 30);
    ADD_TEST(s, write_read_between_gs, 60);
    ADD_TEST(s, accept_connect, 30);
    ADD_TEST(s, connect_after_refused_on_g, 30);
    ADD_TEST(s, errno_after_moving_thread, 30);
    ADD_TEST(s, short_connections, 60);
    ADD_TEST(s, restart_never_loses_or_duplicates, 240);
    ADD_TEST(s, restart_after_close_and_free, 30);
    ADD_TEST(s, signals_to_g, 30);
    ADD_TEST(s, ten_thousand_sockets, 120);
    ADD_TEST(s, no_deadlock_while_waiting_on_fd, 30);
    ADD_TEST(s, bad_input, 30);
    ADD_TEST(s, token_no_poll, 30);
    ADD_TEST(s, stale_token_waits, 30);
    ADD_TEST(s, level_look_leaves_token, 30);
    return run_suite(s);
}
