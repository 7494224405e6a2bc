/* SPDX-License-Identifier: MIT */
/*
 * stress_io.c - a soak of chan_io.h: threads, and Gs of libchan-mpg where it is built, wait at
 * random on pipes, socketpairs and TCP connections over 127.0.0.1 (chan_read, chan_write,
 * chan_fd_wait, selects that mix chan_fd_chan cases with channel cases, chan_accept,
 * chan_connect), each wait with a cancel channel and/or a deadline, while other workers close
 * fds under them with chan_fd_close, fire cancels, and send the process signals that
 * chan_signal_notify delivers. Not a Check suite: a plain program, run by
 * `make stress-io DURATION=N THREADS=N GS=N CORO=N` and briefly by `make test`
 * (stress-io-short).
 *
 *   build/MODE/test/stress_io [-d seconds] [-t threads] [-g gs] [-P nprocs] [-C coroutines]
 *                             [-k coro_workers] [-e epoch_ms] [-s seed] [-w hang_secs] [-q]
 *
 * -g: the Gs (0 without libchan-mpg, where the program is built without it), on -P Ps
 * (default 2). -C: coroutines of a third-party scheduler (struct chan_sched: test/coro.h's
 * runtime) on -k worker threads of its own (default 2: a coroutine may park on one and resume
 * on the other); their waits on fds go through libchan's poll thread (sudog.c), and the
 * runtime checks every hook call against chan_sched(3). Threads, Gs and coroutines share every
 * fd and channel and run the same mix. -w: the watchdog's limit (default 60 s): an epoch still
 * running that long after it began is reported, with the operation and fd each worker is
 * inside, and the program aborts instead of hanging.
 *
 * The run is a sequence of epochs (default 200 ms). In each, the main thread makes NSTREAM
 * streams (a pipe, a socketpair or a TCP connection over 127.0.0.1, at random; each end dup2'd
 * to a fixed high fd number, so that a number closed during the epoch is never reused before
 * its end and a late call on it meets -EBADF, never another file), a listening socket (also at
 * a fixed number), cancel channels and an epoch context, and lets the workers loose. At the end
 * it cancels the epoch's context and closes its done channel (every wait has a cancel that the
 * end fires, or a deadline), waits for every worker, then checks the books.
 *
 * A stream carries bytes one way, fd[1] -> fd[0]. Whoever holds the stream's write token (a
 * channel of capacity 1, taken by a receive with a short deadline) writes the next bytes of its
 * sequence; the read token's holder reads and checks them. Each call of each worker picks a
 * cancel (none, a channel another worker closes, a channel another worker sends a value to, a
 * context with a time-out, the epoch's done channel) and a deadline (none, passed, within 2 ms
 * or 30 ms) at random.
 *
 * What is checked:
 *   - Bytes: every byte read is the next one of its stream, intact; at the epoch's end the read
 *     end is drained to the end of the stream, and, unless the read end was closed during the
 *     epoch, the bytes read are exactly those that chan_write reported written (partial writes
 *     included). End of stream only once the write end was closed.
 *   - Codes: every call returns one its page documents for the situation: -ECANCELED only when
 *     its cancel was fired (a value-cancel's value is taken: values sent = taken + drained),
 *     -ETIMEDOUT never before its deadline, -EBADF only on an fd whose chan_fd_close has begun,
 *     EOF/-EPIPE/-ECONNRESET/-ECONNREFUSED only when the peer end or listener was closed, a
 *     partial write only when its cancel, deadline or a close stopped it, -EBUSY only where
 *     another call may wait on the fd, never -EINTR, and each chan_fd_close returns 0.
 *   - Selects: an fd case fires with ok false only on an fd being closed, ok true with revents
 *     that name its event, POLLHUP or POLLERR, never POLLNVAL; channel cases conserve values.
 *     Before a worker closes an fd, it stops new selects on its channel and waits until every
 *     select naming it is queued on it (or has returned): chan_io(3) makes a select that starts
 *     after the close a use after free, and one already waiting is woken with ok false
 *     (close_end says how, in two ways: under waiting calls, or under waiting selects).
 *   - Connections: chan_connect and chan_accept with cancels, at most CONN_MAX per epoch; every
 *     connection whose 16-byte message chan_write reported sent is accepted and its message
 *     read exactly once (by an acceptor or by the end's drain), unless the listener was closed.
 *   - Signals (chan_signal(3)): SIGUSR1, SIGUSR2 and SIGRTMIN+2 sent with kill(2) and raise(3)
 *     at random, received on a buffered channel: never more deliveries of a signal than sends,
 *     nothing unasked for; at each epoch's end one more of each arrives (none lost while the
 *     channel has room). A second channel is notified and stopped at random: nothing arrives
 *     on it after chan_signal_stop returned.
 *   - chan_sleep_until with a cancel: 0 never before its deadline, -ECANCELED only when fired;
 *     and on Gs, system calls bracketed with chan_mpg_syscall_enter/exit: errno carried over.
 *   - fds: at each epoch's end the process has exactly the fds it had at the start (eventfds
 *     apart: a thread keeps one from its first wait, chan_io(3)); at the end, every thread
 *     joined, no more eventfds than threads that waited (and the poll thread's, with -C).
 *   - Coroutines: no call of the hook breaks chan_sched(3) (coro.h's checks: a park by another
 *     task, an unpark of a finished coroutine or a second one before the first was consumed, a
 *     resume with neither an unpark nor the deadline).
 *   - Every channel made for the epoch frees with 0 (no waiter left queued).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "chan_io.h"
#include "chan_time.h"
#include "soak.h"
#ifdef STRESS_IO_MPG
#include "sched/chan_sched_mpg.h"
#endif
#include "coro.h"

/* White-box probe (chan.c, linked from the static library): sudogs queued on c now. */
size_t hchan_waiting(chan_t *c, enum chan_dir dir);

#define NSTREAM 6
#define FDBASE 600                 /* stream s: fd[0] FDBASE + 2s, fd[1] FDBASE + 2s + 1 */
#define LFD (FDBASE + 2 * NSTREAM) /* the listening socket */
#define MAXW 64                    /* workers at most */
#define NPOOL 4                    /* cancel channels that a worker closes */
#define NVPOOL 2                   /* cancel channels that a worker sends a value to */
#define BUFMAX 65536               /* the largest read or write */
#define CONN_MAX 24                /* connections per epoch */
#define MSGLEN 16                  /* a connection's message */
#define CLOSES_MAX 3               /* chan_fd_close of a shared fd per epoch */
#define MS 1000000LL

enum { K_PIPE, K_UNIX, K_TCP, NKIND };
static const char *const kind_names[NKIND] = {"pipe", "socketpair", "tcp"};

struct stream {
    int kind;
    int quiet;      /* 0, or the end (1 + d) that no call reads or writes: the other waits */
    int fd[2];      /* [0] the read end, [1] the write end */
    chan_t *tok[2]; /* the read and write tokens */
    uint64_t salt;
    uint64_t wpos, rpos;      /* bytes written (under tok[1]) and read (under tok[0]) */
    atomic_int closer[2];     /* a worker has taken on closing the end */
    atomic_int calls_stop[2]; /* new calls on the end stop (CLOSE_SELECTS, below) */
    atomic_int closing[2];    /* new selects on the end stop; chan_fd_close follows */
    /* For a closer: selects in flight naming the end's fd channel, and other calls in flight on
     * the end; the generations count entries and exits (close_end). */
    atomic_long sel_in[2], sel_gen[2], io_in[2], io_gen[2];
};

static struct stream streams[NSTREAM];

/* ---- Shared state of an epoch ---------------------------------------------------------------- */

static chan_t *pool[NPOOL];
static atomic_int pool_fired[NPOOL];
static chan_t *vpool[NVPOOL];
static atomic_long v_sent, v_taken;
static chan_t *ping; /* a buffered channel of longs that selects send to and receive from */
static atomic_long ping_sent, ping_recvd;
static chan_t *epoch_done;
static atomic_int epoch_over; /* set before epoch_done is closed */
static chan_ctx_t *epoch_ctx;
static atomic_int closes_left;

static atomic_int lclosing;
static struct sockaddr_in laddr;
static atomic_int conn_next;
static _Atomic uint8_t conn_written[CONN_MAX], conn_read[CONN_MAX];
static atomic_long accepted, connected;

/* Signals. */
static int sigs[3];
static chan_t *sigc, *sig2;
static atomic_long sig_sent[65], sig_recvd[65], sig2_recvd;
static atomic_int sig2_busy, sig2_on;

/* Run-wide figures. */
static atomic_ulong violations;
static atomic_ullong closes_on_selects, bytes_checked, fd_closes, sel_closed_ok, conns_checked,
    ebusy;
static bool quiet;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "stress_io: VIOLATION: " __VA_ARGS__);                                     \
        fputc('\n', stderr);                                                                       \
        if (atomic_fetch_add(&violations, 1) > 20)                                                 \
            abort();                                                                               \
    } while (0)

/* ---- Workers --------------------------------------------------------------------------------- */

enum {
    OP_READ,
    OP_WRITE,
    OP_WAIT,
    OP_SELECT,
    OP_CLOSE,
    OP_ACCEPT,
    OP_CONNECT,
    OP_KILL,
    OP_SIGRECV,
    OP_SIGTOGGLE,
    OP_CANCEL,
    OP_SLEEP,
    OP_SYSCALL,
    NOPS
};
static const char *const op_names[NOPS] = {
    "chan_read",   "chan_write",       "chan_fd_wait", "select",         "chan_fd_close",
    "chan_accept", "chan_connect",     "kill",         "signal receive", "notify/stop",
    "cancel",      "chan_sleep_until", "system call"};

enum { W_THREAD, W_G, W_CORO };
static const char *const wkind_names[] = {"thread", "G", "coroutine"};

struct worker {
    int id;
    int kind; /* W_THREAD, W_G or W_CORO */
    uint64_t rng;
    unsigned char *buf;
    atomic_int op, fd; /* what it is inside now, for the watchdog: -1 between operations */
    _Atomic int64_t since;
    unsigned long ops[NOPS];
};

static struct worker workers[MAXW];
static int nworkers;
static chan_t *gate; /* main sends each worker the epoch to run, or -1 to end */
static chan_t *done; /* each worker sends here when it has stopped */

static uint64_t rnd(struct worker *w) { return soak_next(&w->rng); }

static uint8_t byte_at(uint64_t salt, uint64_t p)
{
    return (uint8_t)(mix(salt ^ (p >> 3)) >> ((p & 7) * 8));
}

/* A size for a read or write: mostly small, sometimes up to BUFMAX. */
static size_t rnd_size(struct worker *w)
{
    uint64_t r = rnd(w);
    switch (r % 4) {
    case 0: return 1 + (r >> 8) % 16;
    case 1: return 1 + (r >> 8) % 1024;
    case 2: return 1 + (r >> 8) % 8192;
    default: return 1 + (r >> 8) % BUFMAX;
    }
}

/* Sleeps (a G parks). */
static void nap_ns(int64_t ns) { (void)chan_sleep_until(chan_now() + ns, NULL); }

/* ---- Cancels and deadlines ------------------------------------------------------------------- */

enum { C_NONE, C_PLAIN, C_VALUE, C_CTX, C_EPOCH };

struct cancel {
    int kind, idx;
    chan_t *c;
    chan_ctx_t *ctx;
    int64_t deadline;
};

/* A cancel and a deadline for one call; value: a value-cancel may be picked (not for chan_write,
 * whose partial result does not say whether it took the value). Every pick ends by the epoch's
 * end: a value-cancel or no cancel comes with a finite deadline. */
static void cancel_pick(struct worker *w, struct cancel *k, bool value)
{
    uint64_t r = rnd(w);
    *k = (struct cancel){.kind = (int)(r % 5), .idx = -1};
    if (k->kind == C_VALUE && !value)
        k->kind = C_PLAIN;
    switch (k->kind) {
    case C_PLAIN:
        k->idx = (int)((r >> 8) % NPOOL);
        k->c = pool[k->idx];
        break;
    case C_VALUE:
        k->idx = (int)((r >> 8) % NVPOOL);
        k->c = vpool[k->idx];
        break;
    case C_CTX:
        k->ctx = chan_ctx_with_timeout(epoch_ctx, (int64_t)((r >> 8) % (20 * MS)));
        if (!k->ctx)
            FAIL("chan_ctx_with_timeout: NULL");
        k->c = k->ctx ? chan_ctx_done(k->ctx) : epoch_done;
        break;
    case C_EPOCH: k->c = epoch_done; break;
    }
    int64_t now = chan_now();
    switch ((r >> 20) % 4) {
    case 0: k->deadline = (r >> 24) & 1 ? 0 : now - 1; break; /* passed: the try form */
    case 1: k->deadline = now + (int64_t)((r >> 24) % (2 * MS)); break;
    case 2: k->deadline = now + (int64_t)((r >> 24) % (30 * MS)); break;
    default: k->deadline = CHAN_FOREVER; break;
    }
    if (k->deadline == CHAN_FOREVER && (k->kind == C_NONE || k->kind == C_VALUE))
        k->deadline = now + 30 * MS;
}

static void cancel_end(struct cancel *k)
{
    if (k->ctx)
        chan_ctx_free(k->ctx);
}

/* Whether k's cancel has fired: what a -ECANCELED needs. */
static bool cancel_fired(const struct cancel *k)
{
    switch (k->kind) {
    case C_PLAIN: return atomic_load(&pool_fired[k->idx]);
    case C_VALUE: return true; /* the call took a value (counted by the caller) */
    case C_CTX: return k->ctx ? chan_ctx_err(k->ctx) != 0 : atomic_load(&epoch_over);
    case C_EPOCH: return atomic_load(&epoch_over);
    default: return false;
    }
}

/* Checks a wait's -ECANCELED, -ETIMEDOUT and -EINTR: true if r was one of them (and is fine or
 * reported). */
static bool check_wait(const char *op, long r, const struct cancel *k, int fd)
{
    if (r == -ECANCELED) {
        if (!k->c)
            FAIL("%s(fd %d): -ECANCELED without a cancel channel", op, fd);
        else if (!cancel_fired(k))
            FAIL("%s(fd %d): -ECANCELED but its cancel (kind %d) never fired", op, fd, k->kind);
        if (k->kind == C_VALUE)
            atomic_fetch_add(&v_taken, 1);
        return true;
    }
    if (r == -ETIMEDOUT) {
        int64_t now = chan_now();
        if (k->deadline == CHAN_FOREVER || now < k->deadline)
            FAIL("%s(fd %d): -ETIMEDOUT %lld ns before its deadline", op, fd,
                 (long long)(k->deadline - now));
        return true;
    }
    if (r == -EINTR) {
        FAIL("%s(fd %d): -EINTR", op, fd);
        return true;
    }
    return false;
}

static void note(struct worker *w, int op, int fd)
{
    atomic_store_explicit(&w->fd, fd, memory_order_relaxed);
    atomic_store_explicit(&w->since, chan_now(), memory_order_relaxed);
    atomic_store_explicit(&w->op, op, memory_order_relaxed);
}

/* A stream's token d, or false if another worker holds it for 2 ms. */
static bool tok_take(struct stream *s, int d)
{
    int r = chan_recv_until(s->tok[d], NULL, chan_now() + 2 * MS);
    if (r != 0 && r != -ETIMEDOUT)
        FAIL("token receive: %d", r);
    return r == 0;
}

static void tok_give(struct stream *s, int d)
{
    int r = chan_trysend(s->tok[d], NULL);
    if (r != 0)
        FAIL("token send: %d", r);
}

/* What a call on end d can see of the others: a sum of generations and whether any is in. */
struct overlap {
    long gen;
    bool in;
};

static struct overlap others(struct stream *s, int d)
{
    return (struct overlap){atomic_load(&s->io_gen[d]) + atomic_load(&s->sel_gen[d]),
                            atomic_load(&s->io_in[d]) + atomic_load(&s->sel_in[d]) > 0};
}

/* Whether another call or select on end d overlapped one that entered (io_enter) after b and
 * left (io_leave) before a: only then may it meet -EBUSY. */
static bool overlapped(struct overlap b, struct overlap a)
{
    return b.in || a.in || a.gen - b.gen != 2;
}

/* A call on end d begins: false if it must not (the end is being closed CLOSE_SELECTS). */
static bool io_enter(struct stream *s, int d)
{
    atomic_fetch_add(&s->io_in[d], 1);
    atomic_fetch_add(&s->io_gen[d], 1);
    if (!atomic_load(&s->calls_stop[d]))
        return true;
    atomic_fetch_add(&s->io_gen[d], 1);
    atomic_fetch_sub(&s->io_in[d], 1);
    return false;
}

static void io_leave(struct stream *s, int d)
{
    atomic_fetch_add(&s->io_gen[d], 1);
    atomic_fetch_sub(&s->io_in[d], 1);
}

/* ---- Stream operations ----------------------------------------------------------------------- */

static void op_read(struct worker *w, struct stream *s)
{
    if (s->quiet == 1 || !tok_take(s, 0))
        return;
    struct cancel k;
    cancel_pick(w, &k, true);
    size_t n = rnd_size(w);
    bool wclosed = atomic_load(&s->closing[1]);
    struct overlap before = others(s, 0);
    if (!io_enter(s, 0)) {
        cancel_end(&k);
        tok_give(s, 0);
        return;
    }
    ssize_t r = chan_read(s->fd[0], w->buf, n, k.c, k.deadline);
    io_leave(s, 0);
    bool busy_ok = overlapped(before, others(s, 0));
    if (r > 0) {
        if ((size_t)r > n)
            FAIL("chan_read(fd %d) of %zu returned %zd", s->fd[0], n, r);
        for (ssize_t i = 0; i < r; i++)
            if (w->buf[i] != byte_at(s->salt, s->rpos + (uint64_t)i)) {
                FAIL("%s fd %d: byte %llu is %#x, not %#x", kind_names[s->kind], s->fd[0],
                     (unsigned long long)(s->rpos + (uint64_t)i), w->buf[i],
                     byte_at(s->salt, s->rpos + (uint64_t)i));
                break;
            }
        s->rpos += (uint64_t)r;
        atomic_fetch_add_explicit(&bytes_checked, (uint64_t)r, memory_order_relaxed);
    } else if (r == 0) {
        if (!wclosed && !atomic_load(&s->closing[1]))
            FAIL("chan_read(fd %d): end of stream before the writer was closed", s->fd[0]);
    } else if (!check_wait("chan_read", r, &k, s->fd[0])) {
        if (r == -EBUSY && busy_ok)
            atomic_fetch_add_explicit(&ebusy, 1, memory_order_relaxed);
        else if (r == -EBADF) {
            if (!atomic_load(&s->closing[0]))
                FAIL("chan_read(fd %d): -EBADF on an fd nobody closed", s->fd[0]);
        } else if (!(r == -ECONNRESET && atomic_load(&s->closing[1])))
            FAIL("chan_read(fd %d) of a %s: %zd", s->fd[0], kind_names[s->kind], r);
    }
    cancel_end(&k);
    tok_give(s, 0);
}

static void op_write(struct worker *w, struct stream *s)
{
    if (s->quiet == 2 || !tok_take(s, 1))
        return;
    struct cancel k;
    cancel_pick(w, &k, false);
    size_t n = rnd_size(w);
    for (size_t i = 0; i < n; i++)
        w->buf[i] = byte_at(s->salt, s->wpos + i);
    struct overlap before = others(s, 1);
    if (!io_enter(s, 1)) {
        cancel_end(&k);
        tok_give(s, 1);
        return;
    }
    ssize_t r = chan_write(s->fd[1], w->buf, n, k.c, k.deadline);
    io_leave(s, 1);
    bool busy_ok = overlapped(before, others(s, 1));
    bool rclosed = atomic_load(&s->closing[0]);
    if (r > 0) {
        if ((size_t)r > n)
            FAIL("chan_write(fd %d) of %zu returned %zd", s->fd[1], n, r);
        if ((size_t)r < n && !cancel_fired(&k) && chan_now() < k.deadline && !rclosed &&
            !atomic_load(&s->closing[1]) && !busy_ok)
            FAIL("chan_write(fd %d): %zd of %zu bytes, but nothing stopped it", s->fd[1], r, n);
        s->wpos += (uint64_t)r;
    } else if (r == 0) {
        FAIL("chan_write(fd %d) of %zu bytes returned 0", s->fd[1], n);
    } else if (!check_wait("chan_write", r, &k, s->fd[1])) {
        if (r == -EBUSY && busy_ok)
            atomic_fetch_add_explicit(&ebusy, 1, memory_order_relaxed);
        else if (r == -EBADF) {
            if (!atomic_load(&s->closing[1]))
                FAIL("chan_write(fd %d): -EBADF on an fd nobody closed", s->fd[1]);
        } else if (!((r == -EPIPE || r == -ECONNRESET) && rclosed))
            FAIL("chan_write(fd %d) of a %s: %zd", s->fd[1], kind_names[s->kind], r);
    }
    cancel_end(&k);
    tok_give(s, 1);
}

/* revents that a receive from the fd channel of direction d may give. */
static bool revents_ok(int rev, int d)
{
    return rev > 0 && !(rev & POLLNVAL) && (rev & ((d ? POLLOUT : POLLIN) | POLLHUP | POLLERR));
}

static void op_wait(struct worker *w, struct stream *s, int d)
{
    struct cancel k;
    cancel_pick(w, &k, true);
    struct overlap before = others(s, d);
    if (!io_enter(s, d)) {
        cancel_end(&k);
        return;
    }
    int r = chan_fd_wait(s->fd[d], d ? POLLOUT : POLLIN, k.c, k.deadline);
    io_leave(s, d);
    bool busy_ok = overlapped(before, others(s, d));
    if (r > 0) {
        if (!revents_ok(r, d))
            FAIL("chan_fd_wait(fd %d, %s): revents %#x", s->fd[d], d ? "POLLOUT" : "POLLIN", r);
    } else if (!check_wait("chan_fd_wait", r, &k, s->fd[d])) {
        if (r == -EBUSY && busy_ok)
            atomic_fetch_add_explicit(&ebusy, 1, memory_order_relaxed);
        else if (r != -EBADF || !atomic_load(&s->closing[d]))
            FAIL("chan_fd_wait(fd %d): %d", s->fd[d], r);
    }
    cancel_end(&k);
}

/* Before a worker closes end d of s, it makes sure that no select can start on the end's fd
 * channel c after chan_fd_close has begun (chan_io(3): a use after free), in one of two ways:
 *   CLOSE_CALLS: calls (chan_read, chan_write, chan_fd_wait) go on, and may be waiting when the
 *     close comes; new selects stop, and it waits until none is in flight;
 *   CLOSE_SELECTS: new calls stop; it waits until none is in flight and (for up to 20 ms) a
 *     select waits on c; then new selects stop, and it waits until every select in flight is
 *     queued on c (or has returned): the sudogs queued on c are the selects' when no call was
 *     in, came or went across the look. The close wakes those selects. */
enum { CLOSE_CALLS = 1, CLOSE_SELECTS = 2 };

static bool selects_queued(struct stream *s, int d, chan_t *c)
{
    long sg = atomic_load(&s->sel_gen[d]), sn = atomic_load(&s->sel_in[d]);
    long ig = atomic_load(&s->io_gen[d]), in = atomic_load(&s->io_in[d]);
    size_t q = sn > 0 && in == 0 ? hchan_waiting(c, CHAN_RECV) : 0;
    return sn > 0 && in == 0 && q == (size_t)sn && atomic_load(&s->io_gen[d]) == ig &&
           atomic_load(&s->io_in[d]) == 0 && atomic_load(&s->sel_gen[d]) == sg &&
           atomic_load(&s->sel_in[d]) == sn;
}

static void close_end(struct stream *s, int d, int how)
{
    if (atomic_exchange(&s->closer[d], 1))
        return;
    chan_t *c = chan_fd_chan(s->fd[d], d ? POLLOUT : POLLIN);
    if (!c) {
        FAIL("chan_fd_chan(fd %d) before its close: errno %d", s->fd[d], errno);
        return;
    }
    if (how == CLOSE_SELECTS) {
        atomic_store(&s->calls_stop[d], 1);
        int64_t until = chan_now() + 20 * MS;
        while (!atomic_load(&epoch_over) &&
               (atomic_load(&s->io_in[d]) != 0 || (chan_now() < until && !selects_queued(s, d, c))))
            nap_ns(20000);
    }
    atomic_store(&s->closing[d], how);
    while (atomic_load(&s->sel_in[d]) != 0 && !(how == CLOSE_SELECTS && selects_queued(s, d, c)))
        nap_ns(50000);
    if (atomic_load(&s->sel_in[d]) != 0)
        atomic_fetch_add(&closes_on_selects, 1);
    int r = chan_fd_close(s->fd[d]);
    if (r != 0)
        FAIL("chan_fd_close(fd %d) of a %s: %d", s->fd[d], kind_names[s->kind], r);
    atomic_fetch_add(&fd_closes, 1);
}

static void op_close(struct worker *w)
{
    if (atomic_fetch_sub(&closes_left, 1) <= 0)
        return;
    uint64_t r = rnd(w);
    if (r % 8 == 0) {
        if (!atomic_exchange(&lclosing, 1)) {
            int e = chan_fd_close(LFD);
            if (e != 0)
                FAIL("chan_fd_close of the listener: %d", e);
            atomic_fetch_add(&fd_closes, 1);
        }
        return;
    }
    struct stream *s = &streams[(r >> 8) % NSTREAM];
    close_end(s, (int)((r >> 16) & 1), (r >> 17) & 1 ? CLOSE_CALLS : CLOSE_SELECTS);
}

/* ---- Selects --------------------------------------------------------------------------------- */

enum { S_FD0, S_FD1, S_DONE, S_PING_SEND, S_PING_RECV, S_POOL, S_VPOOL, S_SIG, S_MAX = 8 };

static void got_signal(int sig, bool second);

static void op_select(struct worker *w)
{
    struct chan_case cs[S_MAX];
    int what[S_MAX], sidx[S_MAX], dirs[S_MAX];
    long vals[S_MAX];
    size_t n = 0;
    uint64_t r = rnd(w);
    int nfd = 1 + (int)(r % 2);
    int used = -1;
    for (int i = 0; i < nfd; i++) {
        int si = (int)((r >> (4 + 4 * i)) % NSTREAM), d = (int)((r >> (12 + i)) & 1);
        if (si * 2 + d == used)
            continue;
        struct stream *s = &streams[si];
        atomic_fetch_add(&s->sel_in[d], 1);
        atomic_fetch_add(&s->sel_gen[d], 1);
        if (atomic_load(&s->closing[d])) { /* no longer named: see selects_settle */
            atomic_fetch_add(&s->sel_gen[d], 1);
            atomic_fetch_sub(&s->sel_in[d], 1);
            continue;
        }
        chan_t *c = chan_fd_chan(s->fd[d], d ? POLLOUT : POLLIN);
        if (!c)
            FAIL("chan_fd_chan(fd %d) of an open fd: errno %d", s->fd[d], errno);
        used = si * 2 + d;
        what[n] = i == 0 ? S_FD0 : S_FD1, sidx[n] = si, dirs[n] = d;
        cs[n] = (struct chan_case){.chan = c, .elem = &vals[n], .dir = CHAN_RECV};
        n++;
    }
    bool bounded = false;
    /* Each channel case one time in four (ping's send and receive make the select ready at
     * once nearly always: one time in eight), so that selects also wait on their fds. */
    for (int k = S_DONE; k < S_MAX; k++) {
        if (rnd(w) % (k == S_PING_SEND || k == S_PING_RECV ? 8 : 4) != 0)
            continue;
        chan_t *c = NULL;
        enum chan_dir dir = CHAN_RECV;
        vals[n] = (long)rnd(w);
        switch (k) {
        case S_DONE: c = epoch_done, bounded = true; break;
        case S_PING_SEND: c = ping, dir = CHAN_SEND; break;
        case S_PING_RECV: c = ping; break;
        case S_POOL: sidx[n] = (int)(rnd(w) % NPOOL), c = pool[sidx[n]], bounded = true; break;
        case S_VPOOL: c = vpool[rnd(w) % NVPOOL]; break;
        case S_SIG: c = sigc; break;
        }
        what[n] = k;
        cs[n] = (struct chan_case){.chan = c, .elem = &vals[n], .dir = dir};
        n++;
    }
    /* Blocking only with a case the epoch's end makes ready (a pool channel is closed then). */
    int form = (int)((r >> 40) % 3);
    if (form == 0 && !bounded)
        form = 1;
    int64_t deadline = chan_now() + (int64_t)((r >> 44) % (20 * MS));
    int res = n == 0      ? -1
              : form == 0 ? chan_select(cs, n)
              : form == 1 ? chan_select_until(cs, n, deadline)
                          : chan_tryselect(cs, n);
    if (n == 0) {
        /* nothing left to select on */
    } else if (res < 0) {
        if (res == -EBUSY)
            atomic_fetch_add_explicit(&ebusy, 1, memory_order_relaxed);
        else if (res == -ETIMEDOUT && form == 1) {
            if (chan_now() < deadline)
                FAIL("select: -ETIMEDOUT before its deadline");
        } else if (!(res == -EAGAIN && form == 2))
            FAIL("select (form %d) of %zu cases: %d", form, n, res);
    } else if ((size_t)res >= n) {
        FAIL("select chose case %d of %zu", res, n);
    } else {
        struct chan_case *c = &cs[res];
        struct stream *s = what[res] <= S_FD1 ? &streams[sidx[res]] : NULL;
        switch (what[res]) {
        case S_FD0:
        case S_FD1:
            if (!c->ok) {
                if (!atomic_load(&s->closing[dirs[res]]))
                    FAIL("select: the case of fd %d fired closed, nobody closed it",
                         s->fd[dirs[res]]);
                atomic_fetch_add(&sel_closed_ok, 1);
            } else if (!revents_ok((int)vals[res], dirs[res])) {
                FAIL("select: fd %d's case gave revents %#lx", s->fd[dirs[res]], vals[res]);
            }
            break;
        case S_DONE:
            if (c->ok || !atomic_load(&epoch_over))
                FAIL("select: the epoch's done channel fired (ok %d) before its end", c->ok);
            break;
        case S_PING_SEND:
            if (!c->ok)
                FAIL("select: send to ping reported closed");
            atomic_fetch_add(&ping_sent, 1);
            break;
        case S_PING_RECV:
            if (!c->ok)
                FAIL("select: receive from ping reported closed");
            atomic_fetch_add(&ping_recvd, 1);
            break;
        case S_POOL:
            if (c->ok || !atomic_load(&pool_fired[sidx[res]]))
                FAIL("select: a cancel channel fired (ok %d) before its close", c->ok);
            break;
        case S_VPOOL:
            if (!c->ok)
                FAIL("select: a value-cancel channel reported closed");
            atomic_fetch_add(&v_taken, 1);
            break;
        case S_SIG:
            if (!c->ok)
                FAIL("select: the signal channel reported closed");
            else {
                int sig;
                memcpy(&sig, &vals[res], sizeof sig);
                got_signal(sig, false);
            }
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (what[i] == S_FD0 || what[i] == S_FD1) {
            struct stream *s = &streams[sidx[i]];
            atomic_fetch_add(&s->sel_gen[dirs[i]], 1);
            atomic_fetch_sub(&s->sel_in[dirs[i]], 1);
        }
}

/* ---- Connections ----------------------------------------------------------------------------- */

struct msg {
    uint64_t id, check;
};

static uint64_t msg_check(uint64_t id) { return mix(id ^ 0x6a09e667f3bcc909ull); }

/* Reads an accepted connection to its end: nothing (its connector gave up), or one message. */
static void read_conn(int fd, const char *who)
{
    unsigned char b[MSGLEN + 8];
    size_t got = 0;
    int64_t limit = chan_now() + 10000 * MS;
    for (;;) {
        ssize_t r = chan_read(fd, b + got, sizeof b - got, NULL, limit);
        if (r > 0) {
            got += (size_t)r;
            if (got < sizeof b)
                continue;
        }
        if (r < 0 && r != -ECONNRESET)
            FAIL("%s: reading an accepted connection: %zd", who, r);
        break;
    }
    if (got == MSGLEN) {
        struct msg m;
        memcpy(&m, b, sizeof m);
        if (m.id >= CONN_MAX || m.check != msg_check(m.id))
            FAIL("%s: a corrupt message (id %llu)", who, (unsigned long long)m.id);
        else if (atomic_fetch_add(&conn_read[m.id], 1) != 0)
            FAIL("%s: connection %llu's message read twice", who, (unsigned long long)m.id);
        atomic_fetch_add(&conns_checked, 1);
    } else if (got != 0) {
        FAIL("%s: an accepted connection carried %zu bytes, not 0 or %d", who, got, MSGLEN);
    }
    int e = chan_fd_close(fd);
    if (e != 0)
        FAIL("%s: chan_fd_close of an accepted connection: %d", who, e);
}

static void op_accept(struct worker *w)
{
    struct cancel k;
    cancel_pick(w, &k, true);
    int fd = chan_accept(LFD, NULL, NULL, k.c, k.deadline);
    if (fd >= 0) {
        atomic_fetch_add(&accepted, 1);
        read_conn(fd, "chan_accept");
    } else if (!check_wait("chan_accept", fd, &k, LFD)) {
        if (fd == -EBUSY)
            atomic_fetch_add_explicit(&ebusy, 1, memory_order_relaxed);
        else if (fd != -EBADF || !atomic_load(&lclosing))
            FAIL("chan_accept: %d", fd);
    }
    cancel_end(&k);
}

static void op_connect(struct worker *w)
{
    int id = atomic_fetch_add(&conn_next, 1);
    if (id >= CONN_MAX)
        return;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        FAIL("socket: errno %d", errno);
        return;
    }
    struct cancel k;
    cancel_pick(w, &k, true);
    int r = chan_connect(fd, (struct sockaddr *)&laddr, sizeof laddr, k.c, k.deadline);
    if (r == 0) {
        atomic_fetch_add(&connected, 1);
        struct msg m = {(uint64_t)id, msg_check((uint64_t)id)};
        ssize_t n = chan_write(fd, &m, sizeof m, NULL, CHAN_FOREVER);
        if (n == MSGLEN)
            atomic_store(&conn_written[id], 1);
        else if (!((n == -EPIPE || n == -ECONNRESET) && atomic_load(&lclosing)))
            FAIL("chan_write of a connection's message: %zd", n);
    } else if (!check_wait("chan_connect", r, &k, fd)) {
        if (!((r == -ECONNREFUSED || r == -ECONNRESET) && atomic_load(&lclosing)))
            FAIL("chan_connect: %d", r);
    }
    cancel_end(&k);
    int e = chan_fd_close(fd);
    if (e != 0)
        FAIL("chan_fd_close of a connecting socket: %d", e);
}

/* ---- Signals --------------------------------------------------------------------------------- */

static void got_signal(int sig, bool second)
{
    if (second) {
        if (sig != SIGUSR1)
            FAIL("the second signal channel got signal %d, which it never asked for", sig);
        atomic_fetch_add(&sig2_recvd, 1);
        return;
    }
    if (sig == SIGPIPE)
        return; /* a chan_write to a pipe whose reader was closed */
    if (sig != sigs[0] && sig != sigs[1] && sig != sigs[2]) {
        FAIL("signal %d delivered, never asked for", sig);
        return;
    }
    long got = atomic_fetch_add(&sig_recvd[sig], 1) + 1;
    if (got > atomic_load(&sig_sent[sig]))
        FAIL("signal %d: %ld deliveries, %ld sent", sig, got, atomic_load(&sig_sent[sig]));
}

static void send_signal(int sig, bool to_thread)
{
    atomic_fetch_add(&sig_sent[sig], 1);
    int e = to_thread ? raise(sig) : kill(getpid(), sig);
    if (e != 0)
        FAIL("sending signal %d: errno %d", sig, errno);
}

static void op_sigrecv(struct worker *w)
{
    int sig;
    int r = rnd(w) % 2 ? chan_tryrecv(sigc, &sig) : chan_recv_until(sigc, &sig, chan_now() + MS);
    while (r == 0) {
        got_signal(sig, false);
        r = chan_tryrecv(sigc, &sig);
    }
    if (r != -EAGAIN && r != -ETIMEDOUT)
        FAIL("receiving a signal: %d", r);
}

/* The second channel: notified for SIGUSR1, stopped, drained; nothing may arrive while stopped. */
static void op_sigtoggle(void)
{
    if (atomic_exchange(&sig2_busy, 1))
        return;
    int sig, r;
    if (!atomic_load(&sig2_on)) {
        if ((r = chan_tryrecv(sig2, &sig)) != -EAGAIN)
            FAIL("the second signal channel got %d (signal %d) after chan_signal_stop", r, sig);
        int one = SIGUSR1;
        if ((r = chan_signal_notify(sig2, &one, 1)) != 0)
            FAIL("chan_signal_notify: %d", r);
        atomic_store(&sig2_on, 1);
    } else {
        if ((r = chan_signal_stop(sig2)) != 0)
            FAIL("chan_signal_stop: %d", r);
        while (chan_tryrecv(sig2, &sig) == 0)
            got_signal(sig, true);
        atomic_store(&sig2_on, 0);
    }
    atomic_store(&sig2_busy, 0);
}

static void op_cancel(struct worker *w)
{
    uint64_t r = rnd(w);
    if (r % 3) {
        int i = (int)((r >> 8) % NVPOOL);
        int e = chan_trysend(vpool[i], NULL);
        if (e == 0)
            atomic_fetch_add(&v_sent, 1);
        else if (e != -EAGAIN)
            FAIL("chan_trysend to a value-cancel: %d", e);
        return;
    }
    int i = (int)((r >> 8) % NPOOL);
    if (!atomic_exchange(&pool_fired[i], 1) && chan_close(pool[i]) != 0)
        FAIL("chan_close of a cancel channel");
}

static void op_sleep(struct worker *w)
{
    struct cancel k;
    cancel_pick(w, &k, true);
    int64_t d = k.deadline == CHAN_FOREVER ? chan_now() + 5 * MS : k.deadline;
    int r = chan_sleep_until(d, k.c);
    if (r == 0) {
        if (chan_now() < d)
            FAIL("chan_sleep_until returned 0 %lld ns before its deadline",
                 (long long)(d - chan_now()));
    } else if (!check_wait("chan_sleep_until", r, &k, -1) || r == -ETIMEDOUT) {
        FAIL("chan_sleep_until: %d", r);
    }
    cancel_end(&k);
}

#ifdef STRESS_IO_MPG
/* errno of the thread that runs the caller now: read afresh, since the compiler may keep the
 * address of errno across chan_mpg_syscall_exit, which may resume the G on another thread. */
static __attribute__((noinline)) int errno_here(void) { return errno; }
#endif

/* A system call that blocks its thread, bracketed as chan_mpg(3) says (a no-op outside a G):
 * the monitor hands the G's P to another M meanwhile. errno set before the exit comes back
 * after it, whichever thread the G resumes on. */
static void op_syscall(struct worker *w)
{
#ifdef STRESS_IO_MPG
    struct timespec ts = {0, (long)(rnd(w) % (2 * MS))};
    chan_mpg_syscall_enter();
    (void)nanosleep(&ts, NULL); /* a signal may cut it short: EINTR, as for any handler */
    errno = EXDEV;
    chan_mpg_syscall_exit();
    int e = errno_here();
    if (e != EXDEV)
        FAIL("errno %d after chan_mpg_syscall_exit, not the EXDEV set before it", e);
#else
    (void)w;
#endif
}

/* ---- The worker loop ------------------------------------------------------------------------- */

static void one_op(struct worker *w)
{
    uint64_t r = rnd(w);
    unsigned pick = (unsigned)(r % 1000);
    struct stream *s = &streams[(r >> 16) % NSTREAM];
    int d = (int)((r >> 24) & 1);
    int op = pick < 220   ? OP_READ
             : pick < 440 ? OP_WRITE
             : pick < 540 ? OP_WAIT
             : pick < 700 ? OP_SELECT
             : pick < 703 ? OP_CLOSE
             : pick < 760 ? OP_ACCEPT
             : pick < 800 ? OP_CONNECT
             : pick < 830 ? OP_KILL
             : pick < 900 ? OP_SIGRECV
             : pick < 910 ? OP_SIGTOGGLE
             : pick < 930 ? OP_SLEEP
             : pick < 950 ? OP_SYSCALL
                          : OP_CANCEL;
    note(w, op, op <= OP_WAIT ? s->fd[op == OP_READ ? 0 : op == OP_WRITE ? 1 : d] : -1);
    switch (op) {
    case OP_READ: op_read(w, s); break;
    case OP_WRITE: op_write(w, s); break;
    case OP_WAIT: op_wait(w, s, d); break;
    case OP_SELECT: op_select(w); break;
    case OP_CLOSE: op_close(w); break;
    case OP_ACCEPT: op_accept(w); break;
    case OP_CONNECT: op_connect(w); break;
    case OP_KILL: send_signal(sigs[(r >> 32) % 3], (r >> 40) & 1); break;
    case OP_SIGRECV: op_sigrecv(w); break;
    case OP_SIGTOGGLE: op_sigtoggle(); break;
    case OP_CANCEL: op_cancel(w); break;
    case OP_SLEEP: op_sleep(w); break;
    case OP_SYSCALL: op_syscall(w); break;
    }
    atomic_store_explicit(&w->op, -1, memory_order_relaxed);
    w->ops[op]++;
}

static void worker_run(struct worker *w)
{
    for (;;) {
        int e;
        if (chan_recv(gate, &e) != 0 || e < 0)
            return;
        while (!atomic_load_explicit(&epoch_over, memory_order_relaxed))
            one_op(w);
        if (chan_send(done, &w->id) != 0)
            FAIL("done: send failed");
    }
}

static void *thread_main(void *arg)
{
    worker_run(arg);
    return NULL;
}

/* A G's or a coroutine's body. */
static void task_main(void *arg) { worker_run(arg); }

/* ---- The epochs ------------------------------------------------------------------------------ */

/* The process's fds: eventfds (*efds) apart from the rest (the return). */
static int count_fds(int *efds)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        perror("opendir /proc/self/fd");
        exit(2);
    }
    int n = 0, e = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], target[128];
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        target[k > 0 ? k : 0] = 0;
        if (strstr(target, "[eventfd]"))
            e++;
        else if (atoi(de->d_name) != dirfd(d))
            n++;
    }
    closedir(d);
    if (efds)
        *efds = e;
    return n;
}

static void must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "stress_io: setup: %s: %s\n", what, strerror(errno));
        exit(2);
    }
}

/* fd moved to the fixed number to (close-on-exec). */
static void move_fd(int fd, int to)
{
    must(dup3(fd, to, O_CLOEXEC) == to, "dup3");
    close(fd);
}

static int listener(struct sockaddr_in *sa)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    must(l >= 0, "socket");
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *sa;
    must(bind(l, (struct sockaddr *)sa, sizeof *sa) == 0, "bind 127.0.0.1");
    must(listen(l, 128) == 0, "listen");
    must(getsockname(l, (struct sockaddr *)sa, &len) == 0, "getsockname");
    return l;
}

static void stream_make(struct stream *s, int i, uint64_t salt)
{
    int p[2];
    s->kind = (int)(salt % NKIND);
    s->quiet = (int)((salt >> 8) % 4 == 0 ? 1 + (salt >> 12) % 2 : 0);
    if (s->kind == K_PIPE) {
        must(pipe2(p, O_CLOEXEC) == 0, "pipe2");
    } else if (s->kind == K_UNIX) {
        must(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) == 0, "socketpair");
    } else {
        struct sockaddr_in sa;
        int l = listener(&sa);
        p[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        must(p[1] >= 0, "socket");
        must(connect(p[1], (struct sockaddr *)&sa, sizeof sa) == 0, "connect 127.0.0.1");
        p[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        must(p[0] >= 0, "accept4");
        close(l);
    }
    s->fd[0] = FDBASE + 2 * i;
    s->fd[1] = FDBASE + 2 * i + 1;
    move_fd(p[0], s->fd[0]);
    move_fd(p[1], s->fd[1]);
    s->salt = salt;
    s->wpos = s->rpos = 0;
    for (int d = 0; d < 2; d++) {
        s->tok[d] = chan_make(0, 1);
        must(s->tok[d] && chan_trysend(s->tok[d], NULL) == 0, "token");
        atomic_store(&s->closing[d], 0);
        atomic_store(&s->closer[d], 0);
        atomic_store(&s->calls_stop[d], 0);
        atomic_store(&s->sel_in[d], 0);
        atomic_store(&s->io_in[d], 0);
    }
}

/* The end of a stream's epoch: the write end closed, the read end drained to the end of the
 * stream (checking every byte), the books compared, the read end closed. */
static void stream_check(struct stream *s, unsigned char *buf)
{
    int r;
    if (!atomic_load(&s->closing[1]) && (r = chan_fd_close(s->fd[1])) != 0)
        FAIL("chan_fd_close of a write end at the epoch's end: %d", r);
    if (atomic_load(&s->closing[0]))
        return; /* closed under its data: what was read was checked as it was */
    for (;;) {
        ssize_t n = chan_read(s->fd[0], buf, BUFMAX, NULL, chan_now() + 10000 * MS);
        if (n <= 0) {
            if (n < 0)
                FAIL("%s fd %d: draining: %zd", kind_names[s->kind], s->fd[0], n);
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != byte_at(s->salt, s->rpos + (uint64_t)i)) {
                FAIL("%s fd %d: drained byte %llu is wrong", kind_names[s->kind], s->fd[0],
                     (unsigned long long)(s->rpos + (uint64_t)i));
                break;
            }
        s->rpos += (uint64_t)n;
        atomic_fetch_add_explicit(&bytes_checked, (uint64_t)n, memory_order_relaxed);
    }
    if (s->rpos != s->wpos)
        FAIL("%s fd %d -> %d: %llu bytes written, %llu read", kind_names[s->kind], s->fd[1],
             s->fd[0], (unsigned long long)s->wpos, (unsigned long long)s->rpos);
    if ((r = chan_fd_close(s->fd[0])) != 0)
        FAIL("chan_fd_close of a read end at the epoch's end: %d", r);
}

static void free_checked(chan_t *c, const char *what)
{
    int r = chan_free(c);
    if (r != 0)
        FAIL("chan_free of %s after the epoch: %d", what, r);
}

/* Every signal sent after the channel was drained arrives (it has room). */
static void signals_check(void)
{
    int sig;
    while (chan_tryrecv(sigc, &sig) == 0)
        got_signal(sig, false);
    for (int i = 0; i < 3; i++) {
        long before = atomic_load(&sig_recvd[sigs[i]]);
        send_signal(sigs[i], i == 1);
        int64_t limit = chan_now() + 5000 * MS;
        while (atomic_load(&sig_recvd[sigs[i]]) == before) {
            int r = chan_recv_until(sigc, &sig, limit);
            if (r != 0) {
                FAIL("signal %d sent to a channel with room never arrived (%d)", sigs[i], r);
                break;
            }
            got_signal(sig, false);
        }
    }
}

static void epoch_check(unsigned char *buf)
{
    long v;
    long drained = 0;
    while (chan_tryrecv(ping, &v) == 0)
        drained++;
    if (atomic_load(&ping_sent) != atomic_load(&ping_recvd) + drained)
        FAIL("ping: %ld sent, %ld received, %ld left", atomic_load(&ping_sent),
             atomic_load(&ping_recvd), drained);
    drained = 0;
    for (int i = 0; i < NVPOOL; i++) {
        while (chan_tryrecv(vpool[i], NULL) == 0)
            drained++;
        free_checked(vpool[i], "a value-cancel channel");
    }
    if (atomic_load(&v_sent) != atomic_load(&v_taken) + drained)
        FAIL("value-cancels: %ld sent, %ld taken by -ECANCELED or a select, %ld left",
             atomic_load(&v_sent), atomic_load(&v_taken), drained);
    for (int i = 0; i < NPOOL; i++)
        free_checked(pool[i], "a cancel channel");
    free_checked(ping, "ping");
    free_checked(epoch_done, "the epoch's done channel");
    chan_ctx_free(epoch_ctx);
    for (int i = 0; i < NSTREAM; i++) {
        stream_check(&streams[i], buf);
        free_checked(streams[i].tok[0], "a token");
        free_checked(streams[i].tok[1], "a token");
    }
    /* The listener's queue: every connection whose message was sent is read once. */
    if (!atomic_load(&lclosing)) {
        int fd;
        while ((fd = chan_accept(LFD, NULL, NULL, NULL, 0)) >= 0)
            read_conn(fd, "the epoch's end");
        if (fd != -ETIMEDOUT)
            FAIL("draining the listener: %d", fd);
        int r = chan_fd_close(LFD);
        if (r != 0)
            FAIL("chan_fd_close of the listener: %d", r);
        for (int i = 0; i < CONN_MAX; i++)
            if (atomic_load(&conn_written[i]) && atomic_load(&conn_read[i]) != 1)
                FAIL("connection %d: its message sent, read %d times", i,
                     atomic_load(&conn_read[i]));
    }
    for (int i = 0; i < CONN_MAX; i++)
        if (atomic_load(&conn_read[i]) && !atomic_load(&conn_written[i]))
            FAIL("connection %d: its message read, but its write did not report it", i);
    if (atomic_load(&sig2_on)) {
        chan_signal_stop(sig2);
        int sig;
        while (chan_tryrecv(sig2, &sig) == 0)
            got_signal(sig, true);
        atomic_store(&sig2_on, 0);
    }
    signals_check();
}

static void epoch_setup(uint64_t seed, unsigned long e)
{
    for (int i = 0; i < NSTREAM; i++)
        stream_make(&streams[i], i, mix(seed ^ (e * NSTREAM + (unsigned long)i + 1)));
    move_fd(listener(&laddr), LFD);
    atomic_store(&lclosing, 0);
    atomic_store(&conn_next, 0);
    for (int i = 0; i < CONN_MAX; i++) {
        atomic_store(&conn_written[i], 0);
        atomic_store(&conn_read[i], 0);
    }
    for (int i = 0; i < NPOOL; i++) {
        must((pool[i] = chan_make(0, 0)) != NULL, "chan_make");
        atomic_store(&pool_fired[i], 0);
    }
    for (int i = 0; i < NVPOOL; i++)
        must((vpool[i] = chan_make(0, 4)) != NULL, "chan_make");
    must((ping = chan_make(sizeof(long), 4)) != NULL, "chan_make");
    must((epoch_done = chan_make(0, 0)) != NULL, "chan_make");
    must((epoch_ctx = chan_ctx_with_cancel(chan_ctx_background())) != NULL, "chan_ctx");
    atomic_store(&v_sent, 0);
    atomic_store(&v_taken, 0);
    atomic_store(&ping_sent, 0);
    atomic_store(&ping_recvd, 0);
    atomic_store(&closes_left, CLOSES_MAX);
    atomic_store(&epoch_over, 0);
}

/* The end of the epoch's time: every wait that is left ends by one of these. */
static void epoch_end(void)
{
    atomic_store(&epoch_over, 1);
    chan_ctx_cancel(epoch_ctx);
    chan_close(epoch_done);
    for (int i = 0; i < NPOOL; i++)
        if (!atomic_exchange(&pool_fired[i], 1))
            chan_close(pool[i]);
}

static atomic_int in_epoch;
static _Atomic int64_t epoch_began;
static _Atomic unsigned long epoch_no;

static void *watchdog_main(void *arg)
{
    int64_t limit = (int64_t)(intptr_t)arg * 1000 * MS;
    for (;;) {
        sleep(1);
        if (!atomic_load(&in_epoch) || chan_now() - atomic_load(&epoch_began) < limit)
            continue;
        fprintf(stderr,
                "stress_io: HANG: epoch %lu has not ended %lld s after it began; workers "
                "inside an operation:\n",
                atomic_load(&epoch_no), (long long)(limit / 1000 / MS));
        int64_t now = chan_now();
        for (int t = 0; t < nworkers; t++) {
            int op = atomic_load(&workers[t].op);
            if (op >= 0)
                fprintf(stderr, "  [%d, %s] %s on fd %d for %lld ms\n", t,
                        wkind_names[workers[t].kind], op_names[op], atomic_load(&workers[t].fd),
                        (long long)((now - atomic_load(&workers[t].since)) / MS));
        }
        abort();
    }
    return NULL;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int main(int argc, char **argv)
{
    double duration = 3;
    long epoch_ms = 200, hang_secs = 60;
    int nthreads = 3, ngs = 0, nprocs = 2, ncoro = 0, ncw = 2;
    uint64_t seed = (uint64_t)chan_now();
    int opt;
#ifdef STRESS_IO_MPG
    ngs = 4;
#endif
    while ((opt = getopt(argc, argv, "d:t:g:P:C:k:e:s:w:q")) != -1) {
        switch (opt) {
        case 'd': duration = atof(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'g': ngs = atoi(optarg); break;
        case 'P': nprocs = atoi(optarg); break;
        case 'C': ncoro = atoi(optarg); break;
        case 'k': ncw = atoi(optarg); break;
        case 'e': epoch_ms = atol(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'w': hang_secs = atol(optarg); break;
        case 'q': quiet = true; break;
        default:
            fprintf(stderr,
                    "usage: %s [-d seconds] [-t threads] [-g gs] [-P nprocs] [-C coroutines] "
                    "[-k coro_workers] [-e epoch_ms] [-s seed] [-w hang_secs] [-q]\n",
                    argv[0]);
            return 2;
        }
    }
#ifndef STRESS_IO_MPG
    if (ngs > 0) {
        fprintf(stderr, "stress_io: built without libchan-mpg: no Gs (-g 0)\n");
        return 2;
    }
#endif
    nworkers = nthreads + ngs + ncoro;
    if (nthreads < 0 || ngs < 0 || ncoro < 0 || nworkers < 2 || nworkers > MAXW || duration <= 0 ||
        epoch_ms <= 0 || nprocs < 1 || ncw < 1) {
        fprintf(stderr, "stress_io: 2..%d workers, duration and epoch positive\n", MAXW);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 && rl.rlim_max >= 1024) {
        rl.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    printf("stress_io: %d threads, %d Gs on %d Ps and %d coroutines on %d workers, %.1f s, "
           "epochs of %ld ms, seed %#llx\n",
           nthreads, ngs, ngs ? nprocs : 0, ncoro, ncoro ? ncw : 0, duration, epoch_ms,
           (unsigned long long)seed);
    fflush(stdout);

    sigs[0] = SIGUSR1, sigs[1] = SIGUSR2, sigs[2] = SIGRTMIN + 2;
    int asked[4] = {sigs[0], sigs[1], sigs[2], SIGPIPE};
    must((sigc = chan_make(sizeof(int), 256)) != NULL, "chan_make");
    must((sig2 = chan_make(sizeof(int), 16)) != NULL, "chan_make");
    must(chan_signal_notify(sigc, asked, 4) == 0, "chan_signal_notify");
#ifdef STRESS_IO_MPG
    if (ngs) {
        must(chan_mpg_start(nprocs) == 0, "chan_mpg_start");
        chan_mpg_foreign_enter(); /* main and the threads share channels with Gs */
    }
#endif
    int efd_base, fd_base = count_fds(&efd_base);
    must((gate = chan_make(sizeof(int), (size_t)nworkers)) != NULL, "chan_make");
    must((done = chan_make(sizeof(int), (size_t)nworkers)) != NULL, "chan_make");

    pthread_t wd, th[MAXW];
    pthread_create(&wd, NULL, watchdog_main, (void *)(intptr_t)hang_secs);
    pthread_detach(wd);
    if (ncoro)
        coro_start(ncw);
    for (int t = 0; t < nworkers; t++) {
        struct worker *w = &workers[t];
        w->id = t;
        w->kind = t < nthreads ? W_THREAD : t < nthreads + ngs ? W_G : W_CORO;
        w->rng = mix(seed + (uint64_t)t * 0x9e3779b97f4a7c15ull) | 1;
        must((w->buf = malloc(BUFMAX)) != NULL, "malloc");
        atomic_init(&w->op, -1);
        if (w->kind == W_CORO) {
            coro_go(task_main, w);
            continue;
        }
#ifdef STRESS_IO_MPG
        if (w->kind == W_G) {
            must(chan_mpg_go(task_main, w) > 0, "chan_mpg_go");
            continue;
        }
#endif
        must(pthread_create(&th[t], NULL, thread_main, w) == 0, "pthread_create");
    }

    unsigned char *buf = malloc(BUFMAX);
    must(buf != NULL, "malloc");
    int64_t end = chan_now() + (int64_t)(duration * 1e9);
    unsigned long epochs = 0;
    do {
        atomic_store(&epoch_no, epochs);
        epoch_setup(seed, epochs);
        atomic_store(&epoch_began, chan_now());
        atomic_store(&in_epoch, 1);
        for (int t = 0; t < nworkers; t++) {
            int e = (int)epochs;
            must(chan_send(gate, &e) == 0, "gate");
        }
        sleep_ns(epoch_ms * MS);
        epoch_end();
        for (int t = 0; t < nworkers; t++)
            must(chan_recv(done, NULL) == 0, "done");
        atomic_store(&in_epoch, 0);
        epoch_check(buf);
        int efds, fds = count_fds(&efds);
        if (fds != fd_base)
            FAIL("epoch %lu: %d fds open (eventfds apart), %d before the run", epochs, fds,
                 fd_base);
        epochs++;
    } while (chan_now() < end && atomic_load(&violations) == 0);

    for (int t = 0; t < nworkers; t++) {
        int e = -1;
        must(chan_send(gate, &e) == 0, "gate");
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    if (ncoro) {
        coro_wait(); /* every coroutine has ended, and its workers */
        if (atomic_load(&coro_violations))
            FAIL("%ld calls of the hook broke chan_sched(3); the first: %s",
                 atomic_load(&coro_violations), coro_first_violation);
    }
#ifdef STRESS_IO_MPG
    if (ngs) {
        chan_mpg_foreign_leave();
        must(chan_mpg_wait() == 0, "chan_mpg_wait");
        must(chan_mpg_stop() == 0, "chan_mpg_stop");
    }
#endif
    /* Every worker thread has exited: only main's own eventfd may be left beyond those before,
     * and the poll thread's (it stays) where coroutines waited on fds. */
    int efds, fds = count_fds(&efds);
    if (efds > efd_base + 1 + (ncoro > 0))
        FAIL("%d eventfds at the end, %d before the run (threads joined)", efds, efd_base);
    if (fds > fd_base)
        FAIL("%d fds at the end, %d before the run", fds, fd_base);

    unsigned long per_op[NOPS] = {0}, total = 0;
    for (int t = 0; t < nworkers; t++) {
        for (int k = 0; k < NOPS; k++) {
            per_op[k] += workers[t].ops[k];
            total += workers[t].ops[k];
        }
        free(workers[t].buf);
    }
    free(buf);
    if (!quiet) {
        printf("stress_io: operations:");
        for (int k = 0; k < NOPS; k++)
            printf(" %s %lu%s", op_names[k], per_op[k], k + 1 < NOPS ? "," : "\n");
        printf("stress_io: signals sent/received:");
        for (int i = 0; i < 3; i++)
            printf(" %d %ld/%ld", sigs[i], atomic_load(&sig_sent[sigs[i]]),
                   atomic_load(&sig_recvd[sigs[i]]));
        printf("; second channel %ld\n", atomic_load(&sig2_recvd));
        if (ncoro)
            printf("stress_io: coroutines' hook calls: %ld parks, %ld unparks, %ld current\n",
                   atomic_load(&coro_n_park), atomic_load(&coro_n_unpark),
                   atomic_load(&coro_n_current));
    }
    printf("stress_io: %lu operations in %lu epochs; %llu bytes checked in order; %llu fds closed "
           "under waiters (%llu with selects queued, %llu select cases woken closed); %ld "
           "connections accepted of %ld made, "
           "%llu messages checked; %llu -EBUSY; %lu violations\n",
           total, epochs, (unsigned long long)atomic_load(&bytes_checked),
           (unsigned long long)atomic_load(&fd_closes),
           (unsigned long long)atomic_load(&closes_on_selects),
           (unsigned long long)atomic_load(&sel_closed_ok), atomic_load(&accepted),
           atomic_load(&connected), (unsigned long long)atomic_load(&conns_checked),
           (unsigned long long)atomic_load(&ebusy), atomic_load(&violations));
    chan_signal_stop(sigc);
    chan_free(sigc);
    chan_free(sig2);
    chan_free(gate);
    chan_free(done);
    return atomic_load(&violations) ? 1 : 0;
}
