/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_io.c - chan_io.h on Gs of libchan-mpg (sched/): the netpoller. A G that waits on an
 * fd parks, its thread runs other Gs, and the scheduler's epoll set wakes it.
 *
 * The calls behave on Gs exactly as on threads: the same results and errors (-ETIMEDOUT,
 * -ECANCELED, -EBADF, -EBUSY), the same select; the bodies that check so are io_bodies.h's,
 * which test_io.c runs on threads and this file on Gs (its tasks Gs too). Beyond that: 1,000
 * Gs blocked in chan_read on pipes hold no thread, while a G computes and a ping-pong keeps its
 * pace; 10,000 Gs each waiting on its own socket, woken in turn; chan_fd_close from a G parks
 * the G (on one P, a closer that blocked its thread would wait forever for the G it woke); no
 * deadlock is reported while a G waits on an fd; the netpoller's fds and memory go at
 * chan_mpg_stop.
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

/* How a body of io_bodies.h runs its tasks: each a G; done closes when its fn has returned. */
struct gtask {
    void (*fn)(void *);
    void *arg;
    chan_t *done;
};
typedef struct gtask *task_t;

static void task_run(void *p)
{
    struct gtask *t = p;
    t->fn(t->arg);
    ck_assert_int_eq(chan_close(t->done), 0);
}

static task_t task_go(void (*fn)(void *), void *arg)
{
    task_t t = malloc(sizeof *t);
    ck_assert_ptr_nonnull(t);
    *t = (struct gtask){fn, arg, chan_make(0, 0)};
    ck_assert_ptr_nonnull(t->done);
    go(task_run, t);
    return t;
}

static void task_join(task_t t)
{
    ck_assert_int_eq(chan_recv(t->done, NULL), -EPIPE);
    ck_assert_int_eq(chan_free(t->done), 0);
    free(t);
}

static void task_yield(void) { chan_mpg_yield(); }

static int64_t task_id(void) { return chan_mpg_self(); }

#include "io_bodies.h"

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

/* ---- The bodies of io_bodies.h, on a G ------------------------------------------------------- */

START_TEST(select_socket_channel_timer) { on_g(select_socket_channel_timer_body, 2); }
END_TEST

START_TEST(select_socket_channel_timer_1p) { on_g(select_socket_channel_timer_body, 1); }
END_TEST

START_TEST(cancel_blocked_socket) { on_g(cancel_blocked_socket_body, 2); }
END_TEST

static void deadlines_all(void)
{
    deadlines_body();
    cancel_by_value_body();
    sleep_until_body();
}

START_TEST(deadlines) { on_g(deadlines_all, 2); }
END_TEST

START_TEST(busy) { on_g(busy_body, 2); }
END_TEST

START_TEST(fd_close_wakes_gs) { on_g(fd_close_wakes_waiters_body, 2); }
END_TEST

static void io_calls(void)
{
    write_all_read_all_body();
    write_partial_body();
    write_to_closed_socket_body();
}

START_TEST(write_read_between_gs) { on_g(io_calls, 2); }
END_TEST

START_TEST(accept_connect) { on_g(accept_connect_body, 2); }
END_TEST

/* A connect again after one that was refused, on a G: the socket stays in the netpoller across
 * the attempts. */
START_TEST(connect_after_refused_on_g) { on_g(connect_after_refused, 2); }
END_TEST

START_TEST(bad_input) { on_g(bad_fds_body, 2); }
END_TEST

START_TEST(busy_select_leaves_ring_running) { on_g(busy_select_leaves_ring_running_body, 2); }
END_TEST

START_TEST(nonblock_flag) { on_g(nonblock_flag_body, 2); }
END_TEST

START_TEST(same_fd_twice) { on_g(same_fd_twice_body, 2); }
END_TEST

/* On one P: a G waits on an fd, and another G closes it. The close wakes the waiter into the
 * closer's P and then waits for it to leave its call: the closer must park for that, or the
 * waiter, queued behind it on the only P, never runs (with a condition variable it hung). */
static void close_1p_body(void)
{
    int p[2];
    mkpipe(p);
    struct call w = {.op = OP_READ, .fd = p[0], .deadline = CHAN_FOREVER};
    task_t tw = task_go(run_call, &w);
    ck_assert(fd_blocked(p[0], POLLIN));
    struct call cl = {.op = OP_CLOSE, .fd = p[0]};
    task_t tcl = task_go(run_call, &cl);
    task_join(tcl);
    task_join(tw);
    ck_assert_int_eq(cl.r, 0);
    ck_assert_int_eq(w.r, -EBADF);
    fdclose(p[1]);
}

START_TEST(fd_close_from_g_parks) { on_g(close_1p_body, 1); }
END_TEST

/*
 * An I/O call reads the errno of the thread its G runs on after each system call. A G waits in
 * chan_accept on one P: its accept4 said EAGAIN on thread A. Another G then sets errno on A to
 * EXDEV and blocks A in a system call (announced: the monitor hands the P to thread B). The
 * listener is shut down: the waiting G wakes on B, where accept4 fails with EINVAL, and
 * chan_accept must return -EINVAL. (A compiler may keep errno's address across the wait: the
 * clang build's chan_accept read A's EXDEV.)
 */
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
    struct call a = {.op = OP_ACCEPT, .fd = tcp_listener(&sa), .deadline = chan_now() + 10000 * MS};
    start(1);
    ck_assert_int_eq(chan_mpg_foreign_enter(), 0);
    task_t t = task_go(run_call, &a);
    ck_assert(fd_blocked(a.fd, POLLIN));
    go(errno_spoiler, NULL);
    struct chan_mpg_stats st; /* until the spoiler is in its system call, the P handed on */
    chan_mpg_stats(&st);
    for (int i = 0; i < 10000 && st.retakes < 1; i++, chan_mpg_stats(&st))
        sleep_ms(1);
    ck_assert_uint_ge(st.retakes, 1);
    ck_assert_int_eq(shutdown(a.fd, SHUT_RD), 0);
    task_join(t);
    chan_mpg_foreign_leave();
    finish();
    ck_assert_int_eq(a.r, -EINVAL);
    fdclose(a.fd);
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
static void *produce_thread(void *arg)
{
    produce(arg);
    return NULL;
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
START_TEST(restart_after_close_and_free)
{
    int p[2];
    mkpipe(p);
    struct relook x = {.fd = p[0], .c = chan_make(0, 1), .r = -1};
    atomic_store(&relook_armed, false);
    atomic_store(&relook_held, false);
    atomic_store(&polled_fd, p[0]);
    atomic_store(&poll_hold, relook_hold);
    start(2);
    ck_assert_int_eq(chan_mpg_foreign_enter(), 0);
    task_t t = task_go(relook_select, &x);
    ck_assert(fd_blocked(p[0], POLLIN));
    sleep_ms(20); /* and parked, most likely (a pace: if not, the result is the same) */
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
    task_join(t);
    chan_mpg_foreign_leave();
    finish();
    atomic_store(&poll_hold, NULL);
    atomic_store(&polled_fd, -1);
    ck_assert_int_eq(x.r, 1);
    ck_assert(!x.ok);
    ck_assert_int_eq(chan_free(other), 0);
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
static atomic_bool dl_read;

static void read_then_block(void *arg)
{
    (void)arg;
    char b;
    ck_assert_int_eq(chan_read(dl_fd, &b, 1, NULL, CHAN_FOREVER), 1);
    atomic_store(&dl_read, true);
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
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    ck_assert(atomic_load(&dl_read)); /* not before the read */
    ck_assert_ptr_nonnull(strstr(buf, "[chan receive]"));
    join(t);
    ck_assert_int_eq(chan_close(dl_never), 0);
    finish();
    ck_assert_int_eq(chan_free(dl_never), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}
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
        struct call c = {.op = OP_READ, .fd = b, .deadline = CHAN_FOREVER};
        task_t tc = task_go(run_call, &c);
        ck_assert(fd_blocked(b, POLLIN));
        put1(a);
        task_join(tc);
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
    struct call first = {.op = OP_READ, .fd = b, .deadline = CHAN_FOREVER};
    task_t tfirst = task_go(run_call, &first);
    ck_assert(fd_blocked(b, POLLIN));
    put1(a);
    task_join(tfirst);
    ck_assert_int_eq(first.r, 1);
    int x, y;
    tcp_pair(&x, &y);
    struct call other = {.op = OP_READ, .fd = y, .deadline = CHAN_FOREVER};
    task_t tother = task_go(run_call, &other);
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
    struct call c = {.op = OP_READ, .fd = b, .deadline = chan_now() + 10 * CHAN_SECOND};
    task_t tc = task_go(run_call, &c);
    ck_assert(fd_blocked(b, POLLIN));
    put1(a);
    task_join(tc);
    ck_assert_int_eq(c.r, 1);
    put1(x);
    task_join(tother);
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
    struct call warm = {.op = OP_READ, .fd = b, .deadline = CHAN_FOREVER};
    task_t twarm = task_go(run_call, &warm); /* b joins the epoll set */
    ck_assert(fd_blocked(b, POLLIN));
    put1(a);
    task_join(twarm);
    ck_assert_int_eq(warm.r, 1);
    struct call c = {.op = OP_READ, .fd = b, .deadline = chan_now() + 5 * CHAN_SECOND};
    task_t tc = task_go(run_call, &c);
    ck_assert(fd_blocked(b, POLLIN)); /* (one P: the reader has parked by now) */
    put1(a);
    int64_t until = chan_now() + scaled(100, 400) * MS; /* sysmon polls every 10 ms or less */
    while (chan_now() < until) {
    }
    int rev = 0;
    ck_assert_int_eq(chan_tryrecv(chan_fd_chan(b, POLLIN), &rev), 0);
    ck_assert(rev & POLLIN);
    task_join(tc);
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
    ADD_TEST(s, busy_select_leaves_ring_running, 30);
    ADD_TEST(s, nonblock_flag, 30);
    ADD_TEST(s, same_fd_twice, 30);
    return run_suite(s);
}
