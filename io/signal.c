/* SPDX-License-Identifier: MIT */
/*
 * signal.c - Go's os/signal on channels: chan_signal_notify and chan_signal_stop.
 *
 * A signal handler may call almost nothing (async-signal-safe functions only): no lock, no
 * allocation, and so no channel operation. Go's runtime splits the work in two (sigsend, and
 * the signal_recv loop of a goroutine), and so does this file:
 *
 *  - The handler sets the signal's bit in a pending mask (a lock-free atomic OR) and writes one
 *    eventfd. A burst of one signal sets the same bit again: it coalesces, as in Go.
 *  - One delivery thread per process (started by the first chan_signal_notify, every signal
 *    blocked in it but the leak detector's, CHAN_STOP_SIGNAL) sleeps reading the eventfd, takes the
 *    whole mask (atomic exchange), and sends each pending signal to each channel registered for it
 *    with chan_trysend: a full channel drops that delivery, as Go's does, so a signal never waits
 *    for a slow receiver.
 *
 * Not signalfd(2): it receives only signals that are blocked in every thread, and a library
 * cannot block signals in threads it did not make (whatever thread the kernel picks with the
 * signal unblocked runs its disposition instead). A handler works whatever the signal masks are.
 *
 * sg.mu guards the registrations, the counts of channels per signal, the saved dispositions
 * and the thread's existence. The delivery thread holds it while it sends (chan_trysend never
 * blocks), so once chan_signal_stop(c) has taken it, nothing more is sent to c; a plugged-in
 * scheduler's unpark of a receiver waits until sg.mu is dropped (wakeups_hold, seam.h). It
 * takes the pending mask under sg.mu too, and chan_signal_notify, before it adds signals to a
 * channel, delivers what is pending to the channels registered until then (deliver_pending): a
 * signal whose handler ran before a channel's notify never goes to that channel - not even one
 * that was pending for a channel stopped since, which no channel then gets (Go's Notify starts
 * a channel's deliveries at the call: a signal queued before it belongs to the others).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "chan_io.h"
#include "seam.h"

#define NSIGS 65 /* signals 1 .. 64 on Linux (SIGRTMAX is 64) */

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the handler's atomics are lock-free");

/* One channel's registration: the signals it asked for. */
struct reg {
    chan_t *c;
    uint64_t mask[2]; /* bit s: signal s */
    struct reg *next;
};

static struct {
    pthread_mutex_t mu;
    struct reg *regs;
    unsigned nchan[NSIGS];         /* channels registered per signal */
    struct sigaction saved[NSIGS]; /* the disposition before libchan's handler */
    bool running;                  /* the delivery thread exists in this process */
} sg = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* What the handler touches: the pending mask and the eventfd (-1 until the first notify). */
static _Atomic uint64_t pending[2];
static _Atomic int sig_efd = -1;

static bool has(const uint64_t *mask, int s) { return mask[s / 64] >> (s % 64) & 1; }

static void on_signal(int s)
{
    int saved = errno;
    atomic_fetch_or_explicit(&pending[s / 64], (uint64_t)1 << (s % 64), memory_order_release);
    int fd = atomic_load_explicit(&sig_efd, memory_order_relaxed);
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) < 0) {
        /* Nothing to do in a handler: the bit stays set for the next wake-up. */
    }
    errno = saved;
}

/* Whether a notify may take signal s. Not: out of range; 32 and 33, which glibc keeps for
 * itself (thread cancellation, setxid) below SIGRTMIN; SIGKILL and SIGSTOP (no handler can be
 * installed); and the synchronous faults, after which a handler that returns runs the
 * faulting instruction again. */
static bool catchable(int s)
{
    if (s <= 0 || s >= NSIGS || (s > 31 && s < SIGRTMIN) || s > SIGRTMAX)
        return false;
    return s != SIGKILL && s != SIGSTOP && s != SIGSEGV && s != SIGBUS && s != SIGFPE &&
           s != SIGILL;
}

/* ---- The delivery thread --------------------------------------------------------------- */

static void deliver(int s)
{
    for (struct reg *r = sg.regs; r; r = r->next)
        if (has(r->mask, s))
            (void)chan_trysend(r->c, &s); /* full: dropped, as Go's */
}

/* Takes the pending mask and sends each signal in it to the channels registered now (sg.mu
 * held: the registrations cannot change between the taking and the sending). */
static void deliver_pending(void)
{
    uint64_t now[2];
    for (int w = 0; w < 2; w++)
        now[w] = atomic_exchange_explicit(&pending[w], 0, memory_order_acquire);
    for (int s = 1; s < NSIGS; s++)
        if (has(now, s))
            deliver(s);
}

static void *sig_main(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t v;
        int fd = atomic_load_explicit(&sig_efd, memory_order_relaxed);
        if (read(fd, &v, sizeof v) < 0 && errno != EINTR && errno != EAGAIN)
            return NULL; /* the eventfd went (a child of fork: a new thread takes over) */
        wakeups_hold();  /* the receivers' unparks after the unlock (seam.h) */
        pthread_mutex_lock(&sg.mu);
        deliver_pending();
        pthread_mutex_unlock(&sg.mu);
        wakeups_release();
    }
}

/* The eventfd and the thread, if this process has none yet (sg.mu held). */
static int ensure_thread(void)
{
    if (atomic_load_explicit(&sig_efd, memory_order_relaxed) < 0) {
        int fd = eventfd(0, EFD_CLOEXEC); /* blocking reads; the handler's writes never block */
        if (fd < 0)
            return -errno;
        atomic_store(&sig_efd, fd);
    }
    if (sg.running)
        return 0;
    int e = daemon_start(sig_main);
    if (e)
        return e;
    sg.running = true;
    return 0;
}

/* fork() from any thread: the child keeps the registrations and the handlers, not the thread,
 * and gets an eventfd of its own (the old one is shared with the parent, whose thread reads
 * it); its next notify starts a thread. Nothing is pending in it, as the kernel's set of
 * pending signals starts empty in a child: what the parent's handler had marked is the
 * parent's to deliver, not the child's too. */
static void sg_prepare(void) { pthread_mutex_lock(&sg.mu); }
static void sg_parent(void) { pthread_mutex_unlock(&sg.mu); }
static void sg_child(void)
{
    int old = atomic_load(&sig_efd);
    if (old >= 0) {
        atomic_store(&sig_efd, eventfd(0, EFD_CLOEXEC)); /* -1 if none: the next notify tries */
        close(old);
    }
    sg.running = false;
    for (int w = 0; w < 2; w++)
        atomic_store_explicit(&pending[w], 0, memory_order_relaxed);
    pthread_mutex_unlock(&sg.mu);
}

static pthread_once_t sg_once = PTHREAD_ONCE_INIT;
static void sg_init(void) { pthread_atfork(sg_prepare, sg_parent, sg_child); }

/* ---- Notify and Stop ---------------------------------------------------------------------- */

/* Installs the handler for s, keeping what it replaces (sg.mu held). */
static int watch(int s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    struct sigaction old;
    if (sigaction(s, &sa, &old) < 0)
        return -errno;
    sg.saved[s] = old;
    return 0;
}

/* Whether s's disposition is still libchan's handler: the program may have put its own since
 * (sigaction(2), signal(2)), which it then keeps (as fiber.c's stack-overflow watch does). */
static bool ours(int s)
{
    struct sigaction cur;
    return sigaction(s, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
           cur.sa_handler == on_signal;
}

/* Gives s back the disposition that watch replaced, unless the program has put its own since
 * (a program that ignores SIGHUP itself, as Go's signal.Ignore, keeps it ignored). */
static void unwatch(int s)
{
    if (ours(s))
        sigaction(s, &sg.saved[s], NULL);
}

int chan_signal_notify(chan_t *c, const int *sigs, size_t n)
{
    if (!c || elemsize_of(c) != sizeof(int) || (n > 0 && !sigs))
        return -EINVAL;
    uint64_t mask[2] = {0, 0};
    if (n == 0) {
        for (int s = 1; s < NSIGS; s++)
            if (catchable(s))
                mask[s / 64] |= (uint64_t)1 << (s % 64);
    }
    for (size_t i = 0; i < n; i++) {
        if (!catchable(sigs[i]))
            return -EINVAL;
        mask[sigs[i] / 64] |= (uint64_t)1 << (sigs[i] % 64);
    }
    pthread_once(&sg_once, sg_init);
    wakeups_hold(); /* deliver_pending's receivers are unparked after the unlock (seam.h) */
    pthread_mutex_lock(&sg.mu);
    /* What arrived before this call is for the channels that asked until now (what was pending
     * for a channel stopped since is dropped); a signal whose handler runs after this may go to
     * c once it asks. */
    deliver_pending();
    struct reg *r = sg.regs;
    while (r && r->c != c)
        r = r->next;
    struct reg *fresh = NULL;
    int err = ensure_thread();
    if (!err && !r) {
        fresh = r = chan_malloc(sizeof *r);
        if (!r)
            err = -ENOMEM;
        else
            *r = (struct reg){.c = c};
    }
    /* Install the handler for each signal that had no channel yet, or whose disposition the
     * program has replaced since (its own is then the one kept for the last Stop: Go's Notify
     * always enables the signal); undo on failure. */
    uint64_t installed[2] = {0, 0};
    for (int s = 1; !err && s < NSIGS; s++)
        if (has(mask, s) && (sg.nchan[s] == 0 || !ours(s))) {
            if ((err = watch(s)) == 0)
                installed[s / 64] |= (uint64_t)1 << (s % 64);
        }
    if (err) {
        for (int t = 1; t < NSIGS; t++)
            if (has(installed, t))
                unwatch(t);
        chan_mfree(fresh);
        pthread_mutex_unlock(&sg.mu);
        wakeups_release();
        return err;
    }
    for (int s = 1; s < NSIGS; s++)
        if (has(mask, s) && !has(r->mask, s))
            sg.nchan[s]++;
    r->mask[0] |= mask[0];
    r->mask[1] |= mask[1];
    if (fresh) {
        fresh->next = sg.regs;
        sg.regs = fresh;
    }
    pthread_mutex_unlock(&sg.mu);
    wakeups_release();
    return 0;
}

int chan_signal_stop(chan_t *c)
{
    if (!c)
        return -EINVAL;
    pthread_once(&sg_once, sg_init);
    pthread_mutex_lock(&sg.mu);
    struct reg **pp = &sg.regs;
    while (*pp && (*pp)->c != c)
        pp = &(*pp)->next;
    struct reg *r = *pp;
    if (r) {
        *pp = r->next;
        for (int s = 1; s < NSIGS; s++)
            if (has(r->mask, s) && --sg.nchan[s] == 0)
                unwatch(s);
    }
    pthread_mutex_unlock(&sg.mu);
    chan_mfree(r);
    return 0;
}
