/* SPDX-License-Identifier: MIT */
/*
 * test_io.c - Check suite for chan_io.h: fd channels in select, the I/O calls, chan_fd_close,
 * chan_sleep_until, signals on channels, and the core's waiting on fds (the pthread parker's
 * poll mode, PARK_IO and the select's restart, the scheduler seam). The bodies that say the same
 * on Gs are io_bodies.h's: this file runs them on threads, test_mpg_io.c on Gs.
 *
 * Conventions (as test_select.c's):
 *   - A test that needs a thread blocked waits until its sudog is queued on the fd channel
 *     (fd_blocked: hchan_waiting), never by sleeping.
 *   - Sockets only on 127.0.0.1; every wait is bounded (a deadline, or a peer that acts).
 *   - Timing: "promptly" and "not early", with late_bound() (looser under sanitizers).
 *   - Nothing leaked: ASan's leak check (asan mode), and the process's open fds counted in
 *     /proc/self/fd before and after (threads that waited on fds are joined first: each keeps an
 *     eventfd until it exits).
 */
#include "testnet.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_io.h"
#include "chan_time.h"
#include "seam.h" /* waiter_parking, waiter_fds, sched_waits_fds, PARK_IO: the scheduler seam */

/* ---- Helpers --------------------------------------------------------------------------------- */

/* Until an operation waits on fd for events (its sudog is queued on the fd channel). */
static int fd_blocked(int fd, short events) { return fd_waiter_queued(fd, events, sleep_ms); }

/* Runs body in a thread of its own and checks that the process has as many open fds after it
 * as before: the thread's wake-up eventfd goes with it. */
static void *run_body(void *arg)
{
    ((void (*)(void))arg)();
    return NULL;
}

static void no_fd_leaked(void (*body)(void))
{
    int before = nfds();
    join(spawn(run_body, (void *)body));
    ck_assert_int_eq(nfds(), before);
}

/* How a body of io_bodies.h runs its tasks: each a thread. */
typedef pthread_t task_t;

static task_t task_go(void (*fn)(void *), void *arg) { return spawn_fn(fn, arg, 0); }

static void task_join(task_t t) { join(t); }

static void task_yield(void) { sched_yield(); }

static int64_t task_id(void) { return gettid(); }

#include "io_bodies.h"

/* ---- Cancellation and deadlines (the bodies: io_bodies.h) ------------------------------------ */

START_TEST(test_cancel_blocked_socket) { no_fd_leaked(cancel_blocked_socket_body); }
END_TEST

START_TEST(test_deadlines) { no_fd_leaked(deadlines_body); }
END_TEST

/* A signal that interrupts a thread's wait (a handler without SA_RESTART) is absorbed. */
START_TEST(test_waits_absorb_signals) { no_fd_leaked(waits_absorb_signals); }
END_TEST

/* Go's deadline moved while a read waits: a timer's channel as the cancel. */
START_TEST(test_deadline_moved_by_timer) { no_fd_leaked(deadline_moved_by_timer); }
END_TEST

/* A connect again after one that was refused makes a fresh attempt, as connect(2) does. */
START_TEST(test_connect_after_refused) { no_fd_leaked(connect_after_refused); }
END_TEST

START_TEST(test_cancel_by_value) { no_fd_leaked(cancel_by_value_body); }
END_TEST

START_TEST(test_sleep_until) { no_fd_leaked(sleep_until_body); }
END_TEST

/* ---- Select over a socket, a channel and a timer --------------------------------------------- */

START_TEST(test_select_socket_channel_timer) { no_fd_leaked(select_socket_channel_timer_body); }
END_TEST

/* ---- Bad input; one waiter per fd and direction; chan_fd_close ------------------------------- */

START_TEST(test_bad_fds) { no_fd_leaked(bad_fds_body); }
END_TEST

START_TEST(test_busy) { no_fd_leaked(busy_body); }
END_TEST

START_TEST(test_busy_select_leaves_ring_running)
{
    no_fd_leaked(busy_select_leaves_ring_running_body);
}
END_TEST

START_TEST(test_fd_close_wakes_waiters) { no_fd_leaked(fd_close_wakes_waiters_body); }
END_TEST

/* chan_fd_close racing calls that start on the fd: each gets a result or -EBADF, none hangs,
 * nothing leaks. The fds are all made first, so that no number closed in a round is reused by a
 * later one while a caller may still hold it (a use after close(2) the caller's own race); for
 * the same reason each caller has made its wake-up eventfd before the rounds begin. */
#define RACE_ROUNDS_MAX 300
static _Atomic int race_fd = -1;
static _Atomic bool race_stop;

struct racer {
    int own[2];
    chan_t *go;
};

static void *race_caller(void *arg)
{
    struct racer *r = arg;
    /* Park on an fd once (main closes r->go once it sees us waiting): the eventfd is made. */
    ck_assert_int_eq(chan_fd_wait(r->own[0], POLLIN, r->go, CHAN_FOREVER), -ECANCELED);
    char b[8];
    while (!atomic_load(&race_stop)) {
        int fd = atomic_load(&race_fd);
        if (fd < 0)
            continue;
        long n = chan_read(fd, b, sizeof b, NULL, chan_now() + 5 * MS);
        ck_assert_msg(n == -EBADF || n == -ETIMEDOUT || n == -EBUSY || n >= 0, "read: %ld", n);
    }
    return NULL;
}

START_TEST(test_fd_close_races)
{
    int before = nfds();
    int rounds = scaled(RACE_ROUNDS_MAX, 60);
    static int p[RACE_ROUNDS_MAX][2];
    for (int i = 0; i < rounds; i++)
        mkpipe(p[i]);
    atomic_store(&race_stop, false);
    struct racer r[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
        mkpipe(r[k].own);
        r[k].go = chan_make(0, 0);
        t[k] = spawn(race_caller, &r[k]);
        ck_assert(fd_blocked(r[k].own[0], POLLIN));
        ck_assert_int_eq(chan_close(r[k].go), 0);
    }
    for (int i = 0; i < rounds; i++) {
        atomic_store(&race_fd, p[i][0]);
        sleep_ns((i % 4) * 500000);
        atomic_store(&race_fd, -1);
        fdclose(p[i][0]);
        fdclose(p[i][1]);
    }
    atomic_store(&race_stop, true);
    for (int k = 0; k < 2; k++) {
        join(t[k]);
        fdclose(r[k].own[0]);
        fdclose(r[k].own[1]);
        ck_assert_int_eq(chan_free(r[k].go), 0);
    }
    ck_assert_int_eq(nfds(), before);
}
END_TEST

/* ---- Uniform choice with fd cases ------------------------------------------------------------ */

/*
 * The choice among ready cases stays uniform when fd cases are ready (test_select's fairness
 * test, with two fd cases among four): a pipe kept readable, a socket's room (always
 * writable), a closed channel and a buffer kept full, all ready at every select.
 * Count X ~ Binomial(n = 20000, 1/4): sd = sqrt(3750) = 61.2; the bound 430 is 7.0 sd
 * (normal approximation: 2.6e-12 per case; Bernstein: 2 exp(-430^2 / (2 (3750 + 143))) = 1e-10
 * per case). Pearson's statistic with 3 degrees of freedom above 55: at most 4.0e-10. Together
 * below 1e-9; a bias of 2% of one case (400 selects) fails.
 */
START_TEST(test_fairness_with_fds)
{
    enum { NC = 4 };
    const long trials = 20000, bound = 430;
    int p[2], a, b;
    mkpipe(p);
    tcp_pair(&a, &b);
    put1(p[1]);
    chan_t *closed = chan_make(sizeof(int), 0), *full = chan_make(sizeof(int), 1);
    ck_assert_int_eq(chan_close(closed), 0);
    int one = 1;
    ck_assert_int_eq(chan_send(full, &one), 0);
    long cnt[NC] = {0};
    int e[NC];
    for (long t = 0; t < trials; t++) {
        struct chan_case cs[NC] = {
            {.chan = chan_fd_chan(p[0], POLLIN), .elem = &e[0], .dir = CHAN_RECV},
            {.chan = chan_fd_chan(a, POLLOUT), .elem = &e[1], .dir = CHAN_RECV},
            {.chan = closed, .elem = &e[2], .dir = CHAN_RECV},
            {.chan = full, .elem = &e[3], .dir = CHAN_RECV},
        };
        int r = t % 2 ? chan_select(cs, NC) : chan_tryselect(cs, NC);
        ck_assert_int_ge(r, 0);
        ck_assert_int_lt(r, NC);
        ck_assert(r == 2 ? !cs[r].ok : cs[r].ok);
        if (r == 0)
            ck_assert(e[0] & POLLIN);
        if (r == 1)
            ck_assert(e[1] & POLLOUT);
        if (r == 3)
            ck_assert_int_eq(chan_send(full, &one), 0);
        cnt[r]++;
    }
    for (int i = 0; i < NC; i++)
        ck_assert_msg(labs(cnt[i] - trials / NC) <= bound, "case %d: %ld %ld %ld %ld", i, cnt[0],
                      cnt[1], cnt[2], cnt[3]);
    double x2 = chi_square(cnt, NC, trials);
    ck_assert_msg(x2 <= 55, "chi-square %.1f > 55: %ld %ld %ld %ld", x2, cnt[0], cnt[1], cnt[2],
                  cnt[3]);
    ck_assert_int_eq(chan_free(closed), 0);
    ck_assert_int_eq(chan_free(full), 0);
    fdclose(p[0]);
    fdclose(p[1]);
    fdclose(a);
    fdclose(b);
}
END_TEST

/* ---- The restart after PARK_IO --------------------------------------------------------------- */

/*
 * While values flow through a channel into a select that also waits for a pipe, a flapper
 * thread makes the pipe readable and unreadable again and again (write a byte, read it back):
 * the select's park keeps ending in PARK_IO, often with the fd no longer ready by the time the
 * select looks again, and often racing a sender that completes the select meanwhile (the
 * select must then take the sender's value, not start over). Every value must arrive exactly
 * once and in order; none may be left over. Unbuffered and buffered (a ring) channels, plain
 * select and select with a deadline.
 *
 * One run: a flapping pipe, a producer of n values into c (cap 0 or 8), and consumer(arg)
 * receiving them (produce and consume: io_bodies.h); then nothing may be left over.
 */
static void restart_run(void (*consumer)(void *), int cap, long n, int until_ms)
{
    int p[2];
    mkpipe(p);
    struct flap f = {.rd = p[0], .wr = p[1]};
    chan_t *c = chan_make(sizeof(long), (size_t)cap);
    struct restart r = {.rd = p[0], .c = c, .n = n, .until_ms = until_ms};
    pthread_t tf = flapper_start(&f);
    task_t tp = task_go(produce, &r);
    task_join(task_go(consumer, &r));
    task_join(tp);
    atomic_store(&f.stop, true);
    join(tf);
    long extra;
    ck_assert_int_eq(chan_tryrecv(c, &extra), -EAGAIN);
    ck_assert_int_eq(chan_free(c), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}

START_TEST(test_restart_never_loses_or_duplicates)
{
    const long n = scaled(30000, 4000);
    for (int variant = 0; variant < 4; variant++)
        restart_run(consume, variant % 2 ? 8 : 0, n, variant < 2 ? 0 : 1);
}
END_TEST

/*
 * A select parked on an fd and a channel c, woken because the fd may be ready (PARK_IO), looks
 * at its cases again. For its caller it is still blocked on c, which may be closed then and
 * freed at once (chan_close(3): every operation on c either returned or was blocked on it): the
 * select must not look at c after that close returned, except as woken by it. Its look again
 * at the fd is held up (poll_hold, on the select's thread, once the byte is written); meanwhile
 * the test takes the byte back, closes c and frees it, and makes a channel of the same size
 * with a value in it, which malloc gives the memory c had. The select must return c's case
 * closed. One that looked at c after its close (it unlocked every channel before looking again)
 * got the new channel's value, or, under ASan, a use after free.
 */
START_TEST(test_restart_after_close_and_free)
{
    int p[2];
    mkpipe(p);
    struct relook x = {.fd = p[0], .c = chan_make(0, 1), .r = -1};
    atomic_store(&relook_armed, false);
    atomic_store(&relook_held, false);
    atomic_store(&polled_fd, p[0]);
    atomic_store(&poll_hold, relook_hold);
    task_t t = task_go(relook_select, &x);
    ck_assert(fd_blocked(p[0], POLLIN));
    atomic_store(&relook_armed, true);
    put1(p[1]);
    ck_assert(eventually(relook_is_held, NULL));
    get1(p[0]);
    ck_assert_int_eq(chan_close(x.c), 0);
    ck_assert_int_eq(chan_free(x.c), 0);
    chan_t *other = chan_make(0, 1);
    ck_assert_int_eq(chan_send(other, NULL), 0);
    task_join(t);
    atomic_store(&poll_hold, NULL);
    atomic_store(&polled_fd, -1);
    ck_assert_int_eq(x.r, 1);
    ck_assert(!x.ok);
    ck_assert_int_eq(chan_free(other), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}
END_TEST

/* ---- Scheduler hooks ------------------------------------------------------------------------- */

/* A minimal plugged-in scheduler of one task per thread: a permit under a mutex, and an
 * eventfd for its park to poll, along with the waiter's fds when it declares it can (io: the
 * seam a scheduler in the tree uses: waiter_parking, waiter_fds, PARK_IO). Without io it is
 * any third party's scheduler: libchan's poll thread watches the fds and unparks the task. */
struct htask {
    pthread_mutex_t mu;
    bool permit;
    bool io;
    int efd;
    int parks, parks_io, fds_seen;
};

static _Thread_local struct htask *h_self;

static void *h_current(void) { return h_self; }

static int h_park(void *task, int64_t deadline)
{
    struct htask *t = task;
    struct waiter *w = waiter_parking();
    struct pollfd fds[9];
    size_t n = w && t->io ? waiter_fds(w, fds + 1, 8) : 0;
    ck_assert_uint_le(n, 8);
    t->parks++;
    if (n)
        t->fds_seen++;
    fds[0] = (struct pollfd){.fd = t->efd, .events = POLLIN};
    for (;;) {
        pthread_mutex_lock(&t->mu);
        if (t->permit) {
            t->permit = false;
            pthread_mutex_unlock(&t->mu);
            uint64_t v;
            (void)!read(t->efd, &v, sizeof v);
            return 0;
        }
        pthread_mutex_unlock(&t->mu);
        int64_t left = deadline == CHAN_FOREVER ? -1 : (deadline - chan_now()) / MS;
        if (deadline != CHAN_FOREVER && left < 0)
            return -ETIMEDOUT;
        int k = poll(fds, n + 1, (int)left);
        if (k > 0 && !fds[0].revents) {
            t->parks_io++;
            return PARK_IO;
        }
    }
}

static void h_unpark(void *task)
{
    struct htask *t = task;
    pthread_mutex_lock(&t->mu);
    t->permit = true;
    pthread_mutex_unlock(&t->mu);
    uint64_t one = 1;
    (void)!write(t->efd, &one, sizeof one);
}

static const struct chan_sched hook_third = {h_current, h_park, h_unpark};
static const struct chan_sched hook_tree = {h_current, h_park, h_unpark};

struct hooked {
    const struct chan_sched *s;
    int rd, wr;
    chan_t *c;
    struct htask t;
    int r_wait, r_read, r_sel, r_sleep, r_ready, r_recv, r_timeout;
    atomic_bool reading; /* the select has returned: a wait on the fd now is the read's */
};

static void *hooked_thread(void *arg)
{
    struct hooked *h = arg;
    h->t = (struct htask){
        .mu = PTHREAD_MUTEX_INITIALIZER, .efd = eventfd(0, EFD_CLOEXEC), .io = h->s == &hook_tree};
    ck_assert_int_ge(h->t.efd, 0);
    h_self = &h->t;
    chan_sched_set(h->s);
    char b[4];
    int v = 0, rev = 0;
    h->r_wait = chan_fd_wait(h->rd, POLLIN, NULL, CHAN_FOREVER); /* woken by the fd */
    get1(h->rd);
    struct chan_case cs[2] = {{.chan = chan_fd_chan(h->rd, POLLIN), .elem = &rev, .dir = CHAN_RECV},
                              {.chan = h->c, .elem = &v, .dir = CHAN_RECV}};
    h->r_sel = chan_select(cs, 2); /* woken by a send on h->c */
    h->r_recv = v;
    atomic_store(&h->reading, true);
    h->r_read = (int)chan_read(h->rd, b, sizeof b, NULL, CHAN_FOREVER); /* woken by the fd */
    h->r_timeout = chan_fd_wait(h->rd, POLLIN, NULL, chan_now() + 20 * MS);
    /* Ready: no wait, no park. */
    put1(h->wr);
    h->r_ready = chan_fd_wait(h->rd, POLLIN, NULL, CHAN_FOREVER);
    get1(h->rd);
    h->r_sleep = chan_sleep_until(chan_now() + 5 * MS, h->c); /* channels only */
    chan_sched_set(NULL);
    close(h->t.efd);
    return NULL;
}

/* Drives hooked_thread: its first wait ends by the fd, its select by a send, its read by the
 * fd again. */
static void hooked_run(struct hooked *h)
{
    int p[2];
    mkpipe(p);
    h->rd = p[0];
    h->wr = p[1];
    pthread_t t = spawn(hooked_thread, h);
    ck_assert(fd_blocked(p[0], POLLIN));
    put1(p[1]);
    ck_assert(blocked_receivers_at_least(h->c, 1));
    int v = 77;
    ck_assert_int_eq(chan_send(h->c, &v), 0);
    while (!atomic_load(&h->reading))
        sleep_ms(1);
    ck_assert(fd_blocked(p[0], POLLIN));
    put1(p[1]);
    join(t);
    ck_assert_int_eq(h->r_wait, POLLIN);
    ck_assert_int_eq(h->r_sel, 1);
    ck_assert_int_eq(h->r_recv, 77);
    ck_assert_int_eq(h->r_read, 1);
    ck_assert_int_eq(h->r_timeout, -ETIMEDOUT);
    ck_assert_int_eq(h->r_ready, POLLIN);
    ck_assert_int_eq(h->r_sleep, 0);
    ck_assert_int_eq(chan_free(h->c), 0);
    fdclose(p[0]);
    fdclose(p[1]);
}

/* A scheduler that cannot wait on fds (any third party's): its tasks wait on them all the same,
 * through libchan's poll thread, which unparks them; their park never sees an fd. */
START_TEST(test_third_party_hook)
{
    struct hooked h = {.s = &hook_third, .c = chan_make(sizeof(int), 0)};
    hooked_run(&h);
    ck_assert_int_eq(h.t.parks_io, 0);
    ck_assert_int_eq(h.t.fds_seen, 0);
    ck_assert_int_ge(h.t.parks, 4);
}
END_TEST

/* The same stress with the consumer under a scheduler that waits on fds through the seam: its
 * park returns PARK_IO, and races the producer's unpark. */
static void consume_hooked(void *arg)
{
    struct htask t = {.mu = PTHREAD_MUTEX_INITIALIZER, .efd = eventfd(0, EFD_CLOEXEC), .io = true};
    ck_assert_int_ge(t.efd, 0);
    h_self = &t;
    chan_sched_set(&hook_tree);
    consume(arg);
    chan_sched_set(NULL);
    close(t.efd);
}

START_TEST(test_restart_under_tree_hook)
{
    sched_waits_fds(&hook_tree);
    const long n = scaled(10000, 2000);
    restart_run(consume_hooked, 0, n, 0);
    restart_run(consume_hooked, 8, n, 1);
    sched_waits_fds(NULL);
}
END_TEST

START_TEST(test_tree_hook_waits_on_fds)
{
    sched_waits_fds(&hook_tree);
    struct hooked h = {.s = &hook_tree, .c = chan_make(sizeof(int), 0)};
    hooked_run(&h);
    sched_waits_fds(NULL);
    ck_assert_int_ge(h.t.parks_io, 2);
    ck_assert_int_ge(h.t.fds_seen, 4);
}
END_TEST

/*
 * A select parked through a scheduler in the tree whose park reads its fds (waiter_fds) after
 * the select unlocked its channels: chan_fd_close may come first, win the select and free the
 * fd channel. The park must still learn the fd it waits on, not read the freed channel. The
 * hook's park holds its first look until the test has closed the fd and made another fd
 * channel, which malloc gives the freed memory. (The park read the channel: ASan's use after
 * free, else the new channel's fd.)
 */
static atomic_bool late_parked, late_go;
static atomic_int late_fd_seen = -1;

static int late_park(void *task, int64_t deadline)
{
    struct waiter *w = waiter_parking();
    if (w && !atomic_exchange(&late_parked, true)) {
        for (int i = 0; i < 10000 && !atomic_load(&late_go); i++)
            sleep_ms(1);
        struct pollfd fds[8];
        if (waiter_fds(w, fds, 8) >= 1)
            atomic_store(&late_fd_seen, fds[0].fd);
    }
    return h_park(task, deadline);
}

static const struct chan_sched hook_late = {h_current, late_park, h_unpark};

struct late {
    int rd;
    struct htask t;
    int r;
    bool ok;
};

static void *late_thread(void *arg)
{
    struct late *l = arg;
    l->t = (struct htask){.mu = PTHREAD_MUTEX_INITIALIZER, .efd = eventfd(0, EFD_CLOEXEC)};
    ck_assert_int_ge(l->t.efd, 0);
    h_self = &l->t;
    chan_sched_set(&hook_late);
    int rev;
    struct chan_case cs[1] = {
        {.chan = chan_fd_chan(l->rd, POLLIN), .elem = &rev, .dir = CHAN_RECV}};
    l->r = chan_select(cs, 1);
    l->ok = cs[0].ok;
    chan_sched_set(NULL);
    close(l->t.efd);
    return NULL;
}

static int late_is_parked(void *arg)
{
    (void)arg;
    return atomic_load(&late_parked);
}

START_TEST(test_hook_park_after_fd_close)
{
    sched_waits_fds(&hook_late);
    int p[2], q[2];
    mkpipe(p);
    struct late l = {.rd = p[0], .r = -1};
    pthread_t t = spawn(late_thread, &l);
    ck_assert(eventually(late_is_parked, NULL));
    ck_assert_int_eq(chan_fd_close(p[0]), 0); /* wins the select, frees the fd channel */
    mkpipe(q);
    ck_assert_ptr_nonnull(chan_fd_chan(q[1], POLLOUT));
    atomic_store(&late_go, true);
    join(t);
    sched_waits_fds(NULL);
    ck_assert_int_eq(l.r, 0);
    ck_assert(!l.ok);
    int seen = atomic_load(&late_fd_seen);
    ck_assert_int_eq(seen, l.rd);
    fdclose(p[1]);
    fdclose(q[0]);
    fdclose(q[1]);
}
END_TEST

/* ---- The I/O calls --------------------------------------------------------------------------- */

START_TEST(test_write_all_read_all) { no_fd_leaked(write_all_read_all_body); }
END_TEST

START_TEST(test_write_partial) { no_fd_leaked(write_partial_body); }
END_TEST

START_TEST(test_write_to_closed_socket) { no_fd_leaked(write_to_closed_socket_body); }
END_TEST

START_TEST(test_accept_connect) { no_fd_leaked(accept_connect_body); }
END_TEST

/* chan_io(3): on a Unix-domain socket whose listener's backlog is full, chan_connect returns
 * -EAGAIN at once, as connect(2) does (there is no attempt in progress to wait for), however
 * far its deadline; once the listener accepts, a new attempt connects. */
START_TEST(test_connect_unix_backlog_full)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "libchan-test-%d", (int)getpid());
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(l, 0);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, len), 0); /* abstract: no file */
    ck_assert_int_eq(listen(l, 0), 0);
    int s[8], r = 0, i = 0;
    for (; i < 8 && r == 0; i++) {
        s[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(s[i], 0);
        r = chan_connect(s[i], (struct sockaddr *)&sa, len, NULL, chan_now() + 3600 * CHAN_SECOND);
    }
    ck_assert_int_eq(r, -EAGAIN);
    int a = chan_accept(l, NULL, NULL, NULL, chan_now() + 10 * CHAN_SECOND);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(chan_connect(s[i - 1], (struct sockaddr *)&sa, len, NULL, CHAN_FOREVER), 0);
    fdclose(a);
    while (i-- > 0)
        fdclose(s[i]);
    fdclose(l);
}
END_TEST

/* chan_io(3): a connect cut short by its deadline may be called again. The listener's queue is
 * full (backlog 0 holds one connection, not accepted), so Linux drops the next SYN: that
 * connect is in progress and times out. Once the queued one is accepted, the SYN sent again
 * (about 1 s later) gets through; the retry after the socket is writable gets 0 (Linux's
 * connect(2) reports the completion once), and a call after that, where connect(2) says
 * EISCONN, 0 too, as Go's connect (before the fix -EISCONN). */
START_TEST(test_connect_retry_after_timeout)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(l, 0), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    int q = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(chan_connect(q, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER), 0);
    /* The queued connection counts once the handshake's last ACK has reached the listener. */
    ck_assert_int_eq(poll(&(struct pollfd){.fd = l, .events = POLLIN}, 1, 10000), 1);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int first = chan_connect(c, (struct sockaddr *)&sa, sizeof sa, NULL, chan_now() + 50 * MS);
    ck_assert_msg(first == 0 || first == -ETIMEDOUT, "first connect: %d", first);
    int a = chan_accept(l, NULL, NULL, NULL, chan_now() + 10 * CHAN_SECOND);
    ck_assert_int_ge(a, 0);
    fdclose(a);
    fdclose(q);
    ck_assert_int_eq(poll(&(struct pollfd){.fd = c, .events = POLLOUT}, 1, 20000), 1);
    ck_assert_int_eq(chan_connect(c, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER), 0);
    ck_assert_int_eq(chan_connect(c, (struct sockaddr *)&sa, sizeof sa, NULL, CHAN_FOREVER), 0);
    a = chan_accept(l, NULL, NULL, NULL, chan_now() + 10 * CHAN_SECOND);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(chan_write(c, "x", 1, NULL, CHAN_FOREVER), 1);
    char x;
    ck_assert_int_eq(chan_read(a, &x, 1, NULL, CHAN_FOREVER), 1);
    fdclose(a);
    fdclose(c);
    fdclose(l);
}
END_TEST

/* ---- Signals --------------------------------------------------------------------------------- */

static bool ignored(int s)
{
    struct sigaction sa;
    ck_assert_int_eq(sigaction(s, NULL, &sa), 0);
    return sa.sa_handler == SIG_IGN;
}

/* Receives from c until it yields s (other signals may come first), for up to 5 s. */
static bool recv_signal(chan_t *c, int s)
{
    int64_t end = chan_now() + 5 * CHAN_SECOND;
    int v = 0;
    while (chan_recv_until(c, &v, end) == 0)
        if (v == s)
            return true;
    return false;
}

/* Bursts of signals arrive, at least once a burst: each burst is of its own real-time signal,
 * so that a late delivery of one burst cannot stand in for the next. A channel with room for
 * one gets a burst at least once, the rest dropped. None arrives after Stop, and the
 * dispositions come back (ignored before, as Go's Stop restores them). */
START_TEST(test_signal_burst)
{
    enum { BURSTS = 5, PER = 50 };
    for (int k = 0; k <= BURSTS; k++)
        signal(SIGRTMIN + k, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    chan_t *one = chan_make(sizeof(int), 1), *many = chan_make(sizeof(int), 64);
    ck_assert_int_eq(chan_signal_notify(one, (int[]){SIGUSR1}, 1), 0);
    int rt[BURSTS];
    for (int k = 0; k < BURSTS; k++)
        rt[k] = SIGRTMIN + 1 + k;
    ck_assert_int_eq(chan_signal_notify(many, rt, BURSTS), 0);
    ck_assert_int_eq(chan_signal_notify(many, (int[]){SIGUSR1}, 1), 0); /* adds to its set */
    ck_assert(!ignored(SIGUSR1));
    for (int k = 0; k < BURSTS; k++) {
        for (int i = 0; i < PER; i++)
            ck_assert_int_eq(kill(getpid(), rt[k]), 0);
        ck_assert_msg(recv_signal(many, rt[k]), "burst %d of signal %d never arrived", k, rt[k]);
    }
    for (int i = 0; i < PER; i++)
        ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert(recv_signal(one, SIGUSR1));
    ck_assert(recv_signal(many, SIGUSR1));
    ck_assert_uint_le(chan_len(one), 1);
    ck_assert(ignored(SIGRTMIN)); /* nobody asked for it */

    ck_assert_int_eq(chan_signal_stop(one), 0);
    ck_assert(!ignored(SIGUSR1)); /* many still wants it */
    ck_assert_int_eq(chan_signal_stop(many), 0);
    ck_assert(ignored(SIGUSR1));
    for (int k = 0; k < BURSTS; k++)
        ck_assert(ignored(rt[k]));
    ck_assert_int_eq(chan_signal_stop(many), 0); /* not registered: nothing to do */
    int v;
    while (chan_tryrecv(one, &v) == 0 || chan_tryrecv(many, &v) == 0) {
    }
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
        ck_assert_int_eq(kill(getpid(), rt[0]), 0);
    }
    sleep_ms(50);
    ck_assert_int_eq(chan_tryrecv(one, &v), -EAGAIN);
    ck_assert_int_eq(chan_tryrecv(many, &v), -EAGAIN);
    ck_assert_int_eq(chan_free(one), 0);
    ck_assert_int_eq(chan_free(many), 0);
}
END_TEST

/* n == 0: every catchable signal, SIGPIPE included (writes then fail with EPIPE instead of
 * killing): a write to a pipe without a reader delivers SIGPIPE to the channel. */
START_TEST(test_signal_all_and_sigpipe)
{
    chan_t *c = chan_make(sizeof(int), 8);
    ck_assert_int_eq(chan_signal_notify(c, NULL, 0), 0);
    int p[2];
    mkpipe(p);
    close(p[0]);
    ck_assert_int_eq(write(p[1], "x", 1), -1);
    ck_assert_int_eq(errno, EPIPE);
    int s = 0;
    ck_assert_int_eq(chan_recv_until(c, &s, chan_now() + 5 * CHAN_SECOND), 0);
    ck_assert_int_eq(s, SIGPIPE);
    ck_assert_int_eq(raise(SIGWINCH), 0);
    ck_assert_int_eq(chan_recv_until(c, &s, chan_now() + 5 * CHAN_SECOND), 0);
    ck_assert_int_eq(s, SIGWINCH);
    ck_assert_int_eq(chan_signal_stop(c), 0);
    struct sigaction sa;
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &sa), 0);
    ck_assert(sa.sa_handler == SIG_DFL);
    close(p[1]);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

START_TEST(test_signal_bad_input)
{
    chan_t *c = chan_make(sizeof(int), 1), *wide = chan_make(sizeof(long long), 1);
    int ok[] = {SIGUSR1};
    ck_assert_int_eq(chan_signal_notify(NULL, ok, 1), -EINVAL);
    ck_assert_int_eq(chan_signal_notify(wide, ok, 1), -EINVAL);
    ck_assert_int_eq(chan_signal_notify(c, NULL, 1), -EINVAL);
    const int bad[] = {0,       -1,      65,      1000,   INT_MIN, 32,    33,
                       SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE,  SIGILL};
    struct sigaction before;
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &before), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(chan_signal_notify(c, &bad[i], 1), -EINVAL);
        int two[] = {SIGUSR1, bad[i]}; /* a bad one anywhere: nothing changes */
        ck_assert_int_eq(chan_signal_notify(c, two, 2), -EINVAL);
    }
    struct sigaction after;
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &after), 0);
    ck_assert(after.sa_handler == before.sa_handler);
    ck_assert_int_eq(chan_signal_stop(NULL), -EINVAL);
    ck_assert_int_eq(chan_signal_stop(c), 0);
    ck_assert_int_eq(chan_free(c), 0);
    ck_assert_int_eq(chan_free(wide), 0);
}
END_TEST

/* A disposition that the program sets itself while channels ask for the signal is the
 * program's: the last Stop leaves it (a SIGHUP ignored so, as Go's signal.Ignore ignores it,
 * stays ignored; the old Stop put back the default, which ends the process), and a Notify
 * after it installs the handler again (the old one counted the channels that asked and
 * installed nothing, so the new channel got no signal), keeping the program's handler for the
 * last Stop. */
static atomic_int own_hits;
static void own_handler(int s)
{
    (void)s;
    atomic_fetch_add(&own_hits, 1);
}

START_TEST(test_signal_program_disposition)
{
    chan_t *c = chan_make(sizeof(int), 4), *d = chan_make(sizeof(int), 4);
    signal(SIGHUP, SIG_DFL);
    ck_assert_int_eq(chan_signal_notify(c, (int[]){SIGHUP}, 1), 0);
    signal(SIGHUP, SIG_IGN); /* the program ignores it from now on */
    ck_assert_int_eq(chan_signal_stop(c), 0);
    ck_assert(ignored(SIGHUP));

    ck_assert_int_eq(chan_signal_notify(c, (int[]){SIGUSR1}, 1), 0);
    signal(SIGUSR1, own_handler); /* the program's own handler takes it from c */
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(atomic_load(&own_hits), 1);
    ck_assert_int_eq(chan_signal_notify(d, (int[]){SIGUSR1}, 1), 0); /* d asks again */
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert(recv_signal(d, SIGUSR1));
    ck_assert(recv_signal(c, SIGUSR1)); /* each channel that asks gets it */
    ck_assert_int_eq(chan_signal_stop(c), 0);
    ck_assert_int_eq(chan_signal_stop(d), 0);
    struct sigaction sa;
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &sa), 0);
    ck_assert(sa.sa_handler == own_handler); /* what d's Notify replaced */
    ck_assert_int_eq(atomic_load(&own_hits), 1);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    ck_assert_int_eq(chan_free(c), 0);
    ck_assert_int_eq(chan_free(d), 0);
}
END_TEST

/* Go's TestStress and TestAtomicStop: a thread sends SIGUSR1 to the process without pause
 * while channels ask for it and stop, one after another. Each gets the signal once it asks;
 * once chan_signal_stop has returned nothing touches it, so it is freed at once (ASan and TSan
 * see a delivery that came after). A channel that asks all along keeps the signal caught. */
static atomic_bool usr1_over;

static void *usr1_storm(void *arg)
{
    (void)arg;
    while (!atomic_load(&usr1_over)) {
        ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
        sched_yield();
    }
    return NULL;
}

START_TEST(test_signal_stress)
{
    chan_t *keep = chan_make(sizeof(int), 1);
    ck_assert_int_eq(chan_signal_notify(keep, (int[]){SIGUSR1}, 1), 0);
    atomic_store(&usr1_over, false);
    pthread_t t = spawn(usr1_storm, NULL);
    int rounds = under_sanitizer() ? 50 : 500;
    for (int i = 0; i < rounds; i++) {
        chan_t *c = chan_make(sizeof(int), 1);
        ck_assert_int_eq(chan_signal_notify(c, (int[]){SIGUSR1}, 1), 0);
        ck_assert(recv_signal(c, SIGUSR1));
        ck_assert_int_eq(chan_signal_stop(c), 0);
        ck_assert_int_eq(chan_free(c), 0);
    }
    atomic_store(&usr1_over, true);
    join(t);
    ck_assert_int_eq(chan_signal_stop(keep), 0);
    ck_assert_int_eq(chan_free(keep), 0);
}
END_TEST

/* ---- fork ------------------------------------------------------------------------------------ */

/* Whether c receives a signal within ms milliseconds: the signal, or 0. */
static int sig_within(chan_t *c, int ms)
{
    int s = 0;
    return chan_recv_until(c, &s, chan_now() + ms * MS) == 0 ? s : 0;
}

/* chan_signal(3): no signal that arrived before a channel's chan_signal_notify goes to that
 * channel; once chan_signal_stop(c) returns, c gets nothing more. Made deterministic in a child
 * of fork(), which has the registrations and handlers but no delivery thread until its next
 * notify: there a signal's handler runs and its bit waits. The child stops e (SIGUSR2) and asks
 * for both signals on d: SIGUSR1 goes to c, which asked before, SIGUSR2 to nobody, neither to
 * d; one raised after goes to d. Without notify's delivering what was pending first, the new
 * thread sent both to d. A grandchild gets none of the signals that arrived in its parent
 * (the kernel's pending set of a child starts empty): without sg_child's clearing the pending
 * mask, it sent its parent's SIGUSR1 to c. (Not under TSan, which refuses to start threads in
 * the child of a multi-threaded fork.) */
START_TEST(test_signal_pending_before_notify)
{
    if (under_tsan())
        return;
    chan_t *c = chan_make(sizeof(int), 4), *e = chan_make(sizeof(int), 4);
    chan_t *d = chan_make(sizeof(int), 4);
    ck_assert_int_eq(chan_signal_notify(c, (int[]){SIGUSR1}, 1), 0);
    ck_assert_int_eq(chan_signal_notify(e, (int[]){SIGUSR2}, 1), 0);
    /* The delivery thread is in its loop before the fork (see timer_after_fork for why). */
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(sig_within(c, 5000), SIGUSR1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (raise(SIGUSR1) != 0 || raise(SIGUSR2) != 0)
            _exit(2);
        pid_t gpid = fork(); /* single-threaded: no delivery thread yet */
        if (gpid < 0)
            _exit(2);
        if (gpid == 0) {
            if (chan_signal_notify(d, (int[]){SIGUSR2}, 1) != 0)
                _exit(2);
            int got = sig_within(c, 200);
            _exit(got == 0 ? 0 : 10 + got);
        }
        int gst;
        if (waitpid(gpid, &gst, 0) != gpid || !WIFEXITED(gst))
            _exit(3);
        if (WEXITSTATUS(gst) != 0)
            _exit(WEXITSTATUS(gst) == 2 ? 2 : 4);
        if (chan_signal_stop(e) != 0 || chan_signal_notify(d, (int[]){SIGUSR1, SIGUSR2}, 2))
            _exit(2);
        if (sig_within(c, 5000) != SIGUSR1)
            _exit(5);
        if (sig_within(d, 200) != 0 || sig_within(e, 0) != 0)
            _exit(6);
        if (raise(SIGUSR2) != 0)
            _exit(2);
        _exit(sig_within(d, 5000) == SIGUSR2 ? 0 : 7);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %#x", st);
    ck_assert_int_eq(chan_signal_stop(c), 0);
    ck_assert_int_eq(chan_signal_stop(e), 0);
    ck_assert_int_eq(chan_free(c), 0);
    ck_assert_int_eq(chan_free(d), 0);
    ck_assert_int_eq(chan_free(e), 0);
}
END_TEST

/* A thread of the parent waits in ppoll on its eventfd when the process forks. The child's
 * waits work (its own eventfd), and wake nothing in the parent, not even when the child closes
 * the fd and so wakes its copy of the parent's waiter (whose eventfd the parent still polls:
 * the child must have closed its copy). The parent's waiter is then woken as usual. */
START_TEST(test_fork)
{
    int p[2];
    mkpipe(p);
    struct call c = {.op = OP_WAIT_IN, .fd = p[0], .deadline = CHAN_FOREVER};
    task_t t = task_go(run_call, &c);
    ck_assert(fd_blocked(p[0], POLLIN));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int q[2];
        if (pipe(q) != 0)
            _exit(2);
        chan_t *ch = chan_make(0, 0);
        int r = chan_fd_wait(q[0], POLLIN, ch, chan_now() + 10 * MS);
        chan_close(ch); /* nobody waits on it */
        int r2 = chan_fd_wait(q[0], POLLIN, ch, CHAN_FOREVER);
        int r3 = chan_fd_close(p[0]); /* wakes the copy of the parent's waiter */
        _exit(r == -ETIMEDOUT && r2 == -ECANCELED && r3 == 0 ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sleep_ms(20);
    ck_assert_int_eq(c.returned, 0); /* still waiting */
    put1(p[1]);
    task_join(t);
    ck_assert_int_eq(c.r, POLLIN);
    fdclose(p[0]);
    fdclose(p[1]);
}
END_TEST

/* A read blocked in read(2) (the program cleared O_NONBLOCK after the library set it) keeps a
 * chan_fd_close of another thread waiting for it when a third thread forks. The child has
 * neither of them: it finishes the close (its copy of the fd closed, the number free), and a
 * new fd of that number is a new one to the library. Without tab_child's finishing it the
 * child's fd stayed open and every call on its number returned -EBADF. */
/* A call on fd in a thread of its own, which first says which it is (for until_in_syscall). */
struct fd_call {
    long (*fn)(int fd);
    int fd;
    _Atomic pid_t tid;
    long r;
};

static void *fd_call_run(void *arg)
{
    struct fd_call *c = arg;
    atomic_store(&c->tid, (pid_t)syscall(SYS_gettid));
    c->r = c->fn(c->fd);
    return NULL;
}

static long read_one(int fd)
{
    char c;
    return chan_read(fd, &c, 1, NULL, CHAN_FOREVER);
}

static long fd_close(int fd) { return chan_fd_close(fd); }

/* Until thread tid blocks in system call nr or nr2 (/proc's syscall file names the call a
 * thread blocks in: its number, then the arguments; "running" while it runs). */
static void until_in_syscall(pid_t tid, long nr, long nr2)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    for (int i = 0; i < 10000; i++) {
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        if (buf[0] >= '0' && buf[0] <= '9' && strchr(buf, ' ') &&
            (atol(buf) == nr || atol(buf) == nr2))
            return;
        sleep_ms(1);
    }
    ck_abort_msg("thread %d never blocked in system call %ld or %ld", (int)tid, nr, nr2);
}

START_TEST(test_fork_during_close)
{
    int p[2];
    mkpipe(p);
    char x;
    put1(p[1]);
    ck_assert_int_eq(chan_read(p[0], &x, 1, NULL, CHAN_FOREVER), 1); /* O_NONBLOCK set */
    ck_assert_int_eq(fcntl(p[0], F_SETFL, 0), 0);
    struct fd_call b = {.fn = read_one, .fd = p[0]};
    pthread_t rt = spawn(fd_call_run, &b);
    while (!atomic_load(&b.tid))
        sleep_ms(1);
    until_in_syscall(atomic_load(&b.tid), SYS_read, SYS_read);
    struct fd_call cl = {.fn = fd_close, .fd = p[0]};
    pthread_t ct = spawn(fd_call_run, &cl);
    /* The close has begun (the record refuses new calls) and waits for the read, asleep: fork
     * only then, not while it allocates its channel (ASan's allocator would be inherited
     * locked: see timer_after_fork). */
    while (chan_fd_chan(p[0], POLLIN) != NULL)
        sleep_ms(1);
    while (!atomic_load(&cl.tid))
        sleep_ms(1);
    until_in_syscall(atomic_load(&cl.tid), SYS_futex, SYS_ppoll);
    ck_assert_int_eq(fcntl(p[0], F_GETFD) >= 0, 1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int closed = fcntl(p[0], F_GETFD) < 0 && errno == EBADF;
        int q[2];
        if (pipe(q) != 0 || dup2(q[0], p[0]) != p[0])
            _exit(2);
        if (write(q[1], "y", 1) != 1)
            _exit(2);
        char y = 0;
        long r = chan_read(p[0], &y, 1, NULL, chan_now() + 1000 * MS);
        int rc = chan_fd_close(p[0]);
        _exit(closed && r == 1 && y == 'y' && rc == 0 ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %#x", st);
    put1(p[1]); /* the parent's read returns, and its close goes on */
    join(rt);
    join(ct);
    ck_assert_int_eq(b.r, 1);
    ck_assert_int_eq(cl.r, 0);
    fdclose(p[1]);
}
END_TEST

/* ---- How often a waiting thread polls -------------------------------------------------------- */

/* poll(2) is counted on one fd (polled_fd, polls): testnet.h. */

/* A select on fd cases alone, or chan_fd_wait, looks at the fd a few times, not once per round
 * of a spin, before its thread sleeps in ppoll: the select once unlocked, once with the locks
 * held and once after the wake-up (3 calls; chan_fd_wait 5). It snoozed first as on a ring,
 * polling the fd in each of its rounds: 13 calls. */
START_TEST(test_fd_wait_polls_few_times)
{
    int a, b;
    tcp_pair(&a, &b);
    atomic_store(&polled_fd, b);
    for (int round = 0; round < 4; round++) {
        atomic_store(&polls, 0);
        struct selwait s = {.c = chan_fd_chan(b, POLLIN)};
        struct call w = {.op = OP_WAIT_IN, .fd = b, .deadline = CHAN_FOREVER};
        task_t t = round % 2 ? task_go(run_call, &w) : task_go(run_select, &s);
        ck_assert(fd_blocked(b, POLLIN));
        put1(a);
        task_join(t);
        ck_assert_int_eq(round % 2 ? (int)w.r : s.r, round % 2 ? POLLIN : 0);
        get1(b);
        long n = atomic_load(&polls);
        ck_assert_msg(n <= 6, "round %d: %ld poll(2) calls on the fd", round, n);
    }
    atomic_store(&polled_fd, -1);
    fdclose(a);
    fdclose(b);
}
END_TEST

START_TEST(test_nonblock_flag) { no_fd_leaked(nonblock_flag_body); }
END_TEST

START_TEST(test_same_fd_twice) { no_fd_leaked(same_fd_twice_body); }
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    ADD_TEST(s, test_cancel_blocked_socket, 30);
    ADD_TEST(s, test_deadlines, 30);
    ADD_TEST(s, test_cancel_by_value, 10);
    ADD_TEST(s, test_sleep_until, 30);
    ADD_TEST(s, test_waits_absorb_signals, 30);
    ADD_TEST(s, test_deadline_moved_by_timer, 30);
    ADD_TEST(s, test_select_socket_channel_timer, 30);
    ADD_TEST(s, test_bad_fds, 30);
    ADD_TEST(s, test_busy, 30);
    ADD_TEST(s, test_busy_select_leaves_ring_running, 30);
    ADD_TEST(s, test_fd_close_wakes_waiters, 30);
    ADD_TEST(s, test_fd_close_races, 60);
    ADD_TEST(s, test_fairness_with_fds, 60);
    ADD_TEST(s, test_restart_never_loses_or_duplicates, 120);
    ADD_TEST(s, test_restart_after_close_and_free, 30);
    ADD_TEST(s, test_third_party_hook, 30);
    ADD_TEST(s, test_tree_hook_waits_on_fds, 30);
    ADD_TEST(s, test_restart_under_tree_hook, 120);
    ADD_TEST(s, test_hook_park_after_fd_close, 30);
    ADD_TEST(s, test_write_all_read_all, 60);
    ADD_TEST(s, test_write_partial, 30);
    ADD_TEST(s, test_write_to_closed_socket, 30);
    ADD_TEST(s, test_accept_connect, 30);
    ADD_TEST(s, test_signal_burst, 30);
    ADD_TEST(s, test_signal_all_and_sigpipe, 30);
    ADD_TEST(s, test_signal_bad_input, 10);
    ADD_TEST(s, test_signal_program_disposition, 30);
    ADD_TEST(s, test_signal_stress, 60);
    ADD_TEST(s, test_fork, 30);
    ADD_TEST(s, test_fork_during_close, 30);
    ADD_TEST(s, test_connect_retry_after_timeout, 60);
    ADD_TEST(s, test_connect_unix_backlog_full, 30);
    ADD_TEST(s, test_connect_after_refused, 30);
    ADD_TEST(s, test_signal_pending_before_notify, 30);
    ADD_TEST(s, test_fd_wait_polls_few_times, 30);
    ADD_TEST(s, test_nonblock_flag, 30);
    ADD_TEST(s, test_same_fd_twice, 30);
    return run_suite(s);
}
