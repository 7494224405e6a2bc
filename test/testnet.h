/* SPDX-License-Identifier: MIT */
/* testnet.h - helpers for the suites of chan_io.h (test_io.c on threads, test_mpg_io.c on Gs):
 * pipes and sockets over 127.0.0.1, one-byte traffic, the process's open fds. Header-only; apart
 * from testutil.h because it needs the socket headers and chan_io.h, which the other suites do
 * not. */
#ifndef TESTNET_H
#define TESTNET_H

#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "chan_io.h"
#include "chan_time.h"

/* How many fds the process has open (the entries of /proc/self/fd, the directory's own fd and
 * "." and ".." included: compare two counts, never one with a number). */
static inline int nfds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A pipe (blocking, close-on-exec) or fail the test. */
static inline void mkpipe(int p[2]) { ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0); }

/* A connected pair of TCP sockets over 127.0.0.1 (a, b), made with plain blocking calls, which
 * over loopback return at once (so a G may call it too); the listener is closed. */
static inline void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(l, 4), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(*a, 0);
    ck_assert_int_eq(connect(*a, (struct sockaddr *)&sa, sizeof sa), 0);
    *b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(*b, 0);
    close(l);
}

/* A listening socket on 127.0.0.1 at a port the kernel picks, and its address in *sa. */
static inline int tcp_listener(struct sockaddr_in *sa)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(l, 0);
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *sa;
    ck_assert_int_eq(bind(l, (struct sockaddr *)sa, sizeof *sa), 0);
    ck_assert_int_eq(listen(l, 16), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)sa, &len), 0);
    return l;
}

/* chan_fd_close, or fail the test: closes fd and drops its fd channels. */
static inline void fdclose(int fd) { ck_assert_int_eq(chan_fd_close(fd), 0); }

/* One byte written to fd, or one read from it, with plain blocking calls. */
static inline void put1(int fd) { ck_assert_int_eq(write(fd, "x", 1), 1); }

static inline void get1(int fd)
{
    char b;
    ck_assert_int_eq(read(fd, &b, 1), 1);
}

/* Fills the pipe or socket fd (made non-blocking) until it has no room. */
static inline void fill(int fd)
{
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    static char junk[4096];
    while (write(fd, junk, sizeof junk) > 0) {
    }
    ck_assert(errno == EAGAIN);
}

/* Waits until an operation waits on fd for events - its sudog is queued on the fd channel
 * (hchan_waiting) - looking every millisecond, 20,000 times at most (then 0). pause_ms makes the
 * pause: sleep_ms on a thread; on a G a sleep that parks the G (chan_sleep_until), since one
 * that held its thread could keep the waiter it looks for from running. */
static inline int fd_waiter_queued(int fd, short events, void (*pause_ms)(int64_t))
{
    chan_t *c = chan_fd_chan(fd, events);
    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < 20000; i++) {
        if (hchan_waiting(c, CHAN_RECV) >= 1)
            return 1;
        pause_ms(1);
    }
    return 0;
}

/* A thread that makes the pipe rd/wr readable and empty again in turn until stop, counting the
 * flips: what keeps an fd case of a select becoming ready and no longer ready while the select
 * looks at it (the tests of the select's restart after PARK_IO). */
struct flap {
    int rd, wr;
    _Atomic bool stop;
    _Atomic long flips;
};

static inline void *flapper(void *arg)
{
    struct flap *f = arg;
    while (!atomic_load(&f->stop)) {
        put1(f->wr);
        sched_yield();
        get1(f->rd);
        atomic_fetch_add(&f->flips, 1);
    }
    return NULL;
}

static inline int flapped(void *arg) { return atomic_load(&((struct flap *)arg)->flips) > 0; }

/* Spawns the flapper and waits (up to ~10 s) until it has flipped once: on a loaded machine a
 * short run could otherwise end before the thread first got a CPU. */
static inline pthread_t flapper_start(struct flap *f)
{
    pthread_t t = spawn(flapper, f);
    ck_assert_msg(eventually(flapped, f), "the flapper never ran");
    return t;
}

/* A storm of signals at every thread of the process: SIGUSR2, whose handler counts and was
 * installed without SA_RESTART, so that a system call it interrupts fails with EINTR. The
 * waits of chan_io.h absorb it (chan_io(3): none returns -EINTR). storm_start, then the waits,
 * then storm_stop; the count says whether any signal ran its handler. */
static atomic_int storm_hits;
static atomic_bool storm_over;

static void storm_handler(int s)
{
    (void)s;
    atomic_fetch_add(&storm_hits, 1);
}

static void *storm_run(void *arg)
{
    (void)arg;
    while (!atomic_load(&storm_over)) {
        DIR *d = opendir("/proc/self/task");
        ck_assert_ptr_nonnull(d);
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.')
                (void)syscall(SYS_tgkill, getpid(), atoi(e->d_name), SIGUSR2);
        closedir(d);
        sleep_ms(1); /* a pace, not a synchronisation */
    }
    return NULL;
}

static inline pthread_t storm_start(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = storm_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    atomic_store(&storm_over, false);
    return spawn(storm_run, NULL);
}

static inline int storm_stop(pthread_t t)
{
    atomic_store(&storm_over, true);
    join(t);
    return atomic_load(&storm_hits);
}

/* The waits of chan_io.h under a storm of signals (storm_start): each ends at its deadline,
 * with -ETIMEDOUT (chan_sleep_until: 0), never before it and never with -EINTR. The body that
 * test_io.c runs on a thread and test_mpg_io.c on a G (Go's TestTime: signals during a sleep
 * do not cut it short). */
static inline void waits_absorb_signals(void)
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
 * chan_timer_reset moves (what Go's SetReadDeadline does to a read under way). The body that
 * test_io.c runs on a thread and test_mpg_io.c on a G: a thread resets the timer once the
 * read waits, from an hour off to 10 ms (the read ends), and from 50 ms to 200 ms (when the
 * reset stopped the first firing, the read ends no sooner than the second). */
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

static inline void deadline_moved_by_timer(void)
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

/* chan_io(3): a chan_connect that failed leaves the socket as a connect(2) that blocked does:
 * unconnected, so that a call again makes a fresh attempt. The body that test_io.c runs on a
 * thread and test_mpg_io.c on a G: a socket bound at 127.0.0.1 but not listening refuses the
 * connection, twice (the second call -ECONNABORTED before the fix: Linux kept the socket
 * connecting until that call, which only reset it); once it listens, the same socket connects
 * and carries a byte. */
static inline void connect_after_refused(void)
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

/* poll(2) as a test program sees it, for a test that counts how often the library looks at an
 * fd, or holds a look up: calls that name polled_fd add to polls (and call poll_hold, below);
 * every call goes on to the kernel (ppoll). The
 * library's own calls resolve here too: the program's definition comes first (the sanitizers'
 * interceptors are weak). A program that includes this header gets this poll: every test
 * program is one file. */
static _Atomic int polled_fd = -1;
static _Atomic long polls;

/* When set, each call that names polled_fd calls it first (to hold a look at the fd up). */
static void (*_Atomic poll_hold)(void);

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    bool named = false;
    for (nfds_t i = 0; i < n; i++)
        if (fds[i].fd == atomic_load(&polled_fd)) {
            atomic_fetch_add(&polls, 1);
            named = true;
        }
    void (*hold)(void) = named ? atomic_load(&poll_hold) : NULL;
    if (hold)
        hold();
    struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000L};
    return ppoll(fds, n, timeout < 0 ? NULL : &ts, NULL);
}

#endif
