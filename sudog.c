/* SPDX-License-Identifier: MIT */
/*
 * sudog.c - how operations wait: the channel lock, FIFO wait queues of sudogs, and parking
 * (the pthread default on a futex, or a plugged-in struct chan_sched); and what everything
 * above needs of the system: the clock (chan_now) and the allocator (chan_malloc).
 *
 * The lowest layer of the library: it includes chan_internal.h (and through it seam.h, whose
 * futex wrappers it sleeps and wakes with), and calls nothing above it but the tracer's hooks.
 * It knows nothing of buffers, values or select cases: chan.c and select.c decide what happens
 * under the channel lock and hand sudogs here to queue and to wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "chan_internal.h" /* also caa_cpu_relax (liburcu's, or its own where liburcu is not) */

/* ---- The clock and the allocator ---------------------------------------------------------- */

int64_t chan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void *(*chan_malloc_hook)(size_t size);

void *chan_malloc(size_t size) { return chan_malloc_hook ? chan_malloc_hook(size) : malloc(size); }

void chan_mfree(void *p) { free(p); }

/* ---- CHAN_DEBUG builds: ASSERT's failure, and who holds which lock ------------------------- */

#ifdef CHAN_DEBUG
#include <stdio.h>
#include <stdlib.h>

void assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "libchan: internal invariant violated: %s (%s:%d)\n", cond, file, line);
    abort();
}

static _Thread_local unsigned self_locks;

/* Opaque to the optimizer (the empty asm), so that no caller treats the thread-local's address
 * as a constant it may keep across a park: see parker_self below. */
__attribute__((noinline)) unsigned *locks_self(void)
{
    unsigned *p = &self_locks;
    __asm__ volatile("" : "+r"(p));
    return p;
}
#endif

/* ---- CHAN_COUNTERS builds: per-thread event counts (seam.h) ------------------------------- */

#ifdef CHAN_COUNTERS
struct counter_block {
    _Atomic uint64_t v[CNT_N];
    struct counter_block *next;
};

#define CHAN_COUNTER_NAME(name) #name,
const char *const counter_names[CNT_N] = {CHAN_COUNTERS_LIST(CHAN_COUNTER_NAME)};
#undef CHAN_COUNTER_NAME

static struct counter_block *_Atomic counter_blocks; /* every thread's, pushed by CAS */
static _Thread_local struct counter_block *counter_mine;

/* Not inlined: a task may resume on another thread, and its counts go to that one's block. */
__attribute__((noinline)) void counter_add(enum chan_counter c)
{
    struct counter_block *b = counter_mine;
    if (unlikely(!b)) {
        b = calloc(1, sizeof *b);
        if (!b)
            return;
        b->next = atomic_load_explicit(&counter_blocks, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&counter_blocks, &b->next, b,
                                                      memory_order_release, memory_order_relaxed)) {
        }
        counter_mine = b;
    }
    /* Only this thread writes its block: a load and a store, no locked instruction. */
    atomic_store_explicit(&b->v[c], atomic_load_explicit(&b->v[c], memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void counters_read(uint64_t *out)
{
    for (int i = 0; i < CNT_N; i++)
        out[i] = 0;
    for (struct counter_block *b = atomic_load_explicit(&counter_blocks, memory_order_acquire); b;
         b = b->next)
        for (int i = 0; i < CNT_N; i++)
            out[i] += atomic_load_explicit(&b->v[i], memory_order_relaxed);
}
#endif

/* ---- The spin policy ------------------------------------------------------------------------- */

/* Spinning only pays when another CPU can run the thread we wait for: the number of CPUs the
 * process may use. It is read once, when the library is loaded, from the CPU set the program
 * started with: threads pinned later each to one CPU of their own (a benchmark's "spread") still
 * have peers on the other CPUs, so the calling thread's own mask is the wrong question. A racy
 * lazy computation, for a caller that comes before the constructor, is benign: same answer. */
static _Atomic int ncpu_cached;

static int ncpu_compute(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0) {
        long s = sysconf(_SC_NPROCESSORS_ONLN);
        n = s > 0 ? (int)s : 1;
    }
    atomic_store_explicit(&ncpu_cached, n, memory_order_relaxed);
    return n;
}

__attribute__((constructor)) static void ncpu_at_load(void) { ncpu_compute(); }

static int ncpu(void)
{
    int n = atomic_load_explicit(&ncpu_cached, memory_order_relaxed);
    return likely(n > 0) ? n : ncpu_compute();
}

/* How long a parking thread watches its permit before sleeping: an adaptive budget per thread,
 * between SPIN_MIN_NS and SPIN_MAX_NS (see parker_park). */
#define SPIN_MAX_NS 50000 /* about one futex sleep and wake-up on this kind of VM */
#define SPIN_MIN_NS 2000  /* a hand-off between running threads takes a few hundred ns */
#define SPIN_CHECK 64     /* cpu_relax rounds between two looks at the clock */
#define SPIN_PURE                                                                                  \
    64 /* rounds of pure spinning (~1.6 us) before yielding at each look, so
          that a peer that shares our CPU gets it */

/* ---- The channel lock (Drepper's futex mutex: 0 free, 1 held, 2 held and maybe sleepers) ---- */

void lock_slow(chanlock_t *l)
{
    COUNT(lock_slow);
    if (ncpu() > 1) {
        for (int i = 0; i < LOCK_SPIN; i++) {
            caa_cpu_relax();
            uint32_t v = atomic_load_explicit(&l->word, memory_order_relaxed);
            if (v == 0 && atomic_compare_exchange_weak_explicit(
                              &l->word, &v, 1, memory_order_acquire, memory_order_relaxed))
                return;
        }
    }
    /* Mark the lock contended, so the holder's unlock wakes someone, and sleep while it is. */
    while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0) {
        COUNT(lock_sleep);
        futex_wait(&l->word, 2, CHAN_FOREVER);
    }
}

void lock_wake(chanlock_t *l) { futex_wake(&l->word); }

/* ---- Wait queues: FIFO, doubly linked through the sudogs, under the channel lock ------------- */

void waitq_enqueue(struct waitq *q, struct sudog *sg)
{
    ASSERT(lock_held(&sg->c->lock));
    ASSERT(!sg->next && !sg->prev && atomic_load_explicit(&q->first, memory_order_relaxed) != sg);
    sg->next = NULL;
    sg->prev = q->last;
    if (q->last)
        q->last->next = sg;
    else
        atomic_store_explicit(&q->first, sg, memory_order_relaxed);
    q->last = sg;
}

void waitq_unlink(struct waitq *q, struct sudog *sg)
{
    ASSERT(lock_held(&sg->c->lock));
    ASSERT(sg->prev ? sg->prev->next == sg /* queued on q */
                    : atomic_load_explicit(&q->first, memory_order_relaxed) == sg);
    if (sg->prev)
        sg->prev->next = sg->next;
    else
        atomic_store_explicit(&q->first, sg->next, memory_order_relaxed);
    if (sg->next)
        sg->next->prev = sg->prev;
    else
        q->last = sg->prev;
    sg->next = sg->prev = NULL;
}

void sudog_unlink_same(struct sudog *sg)
{
    struct sudog *s = sg;
    do {
        struct sudog *nx = s->same;
        ASSERT(s->c == sg->c && s->w == sg->w);
        waitq_unlink(s->is_send ? &s->c->sendq : &s->c->recvq, s);
        s = nx;
    } while (s != sg);
}

/* Go's waitq.dequeue. The CAS decides between this waker, other channels' wakers of the same
 * select, and the operation's own time-out; the loser leaves the sudog where it is. */
struct sudog *waitq_dequeue_slow(struct waitq *q)
{
    for (struct sudog *sg = atomic_load_explicit(&q->first, memory_order_relaxed); sg;
         sg = sg->next) {
        ASSERT(lock_held(&sg->c->lock));
        uint32_t expected = 0;
        if (atomic_compare_exchange_strong_explicit(&sg->w->done, &expected, 1,
                                                    memory_order_acq_rel, memory_order_relaxed)) {
            sudog_unlink_same(sg);
            return sg;
        }
    }
    return NULL;
}

/* ---- The pthread parker: one permit word per thread ------------------------------------------ */

/* EMPTY: no permit, nobody asleep. PARKED: the owner sleeps on the futex. NOTIFIED: a permit
 * (an unpark not yet consumed). POLLING: the owner sleeps in ppoll on its fds and on efd, which
 * parker_unpark writes instead of waking the futex. Only unpark makes NOTIFIED; only the owner
 * leaves it. */
enum { EMPTY = 0, PARKED = 1, NOTIFIED = 2, POLLING = 3 };

/* A thread woken ESCAPE_MIN times in a row from its own CPU sleeps at its next wait (see
 * parker_learn_cpu); each try that finds no idle CPU doubles that count, up to ESCAPE_MAX. Where
 * more threads than CPUs take turns (mpmc, a pool), wakers come from every CPU and such runs
 * stay short: 8 in a row from one of two CPUs is a 1-in-128 event there. */
#define ESCAPE_MIN 8
#define ESCAPE_MAX 4096

struct parker {
    _Atomic uint32_t state;
    _Atomic int32_t waker_cpu;  /* the CPU of the last unpark, written before it */
    uint32_t spin_ns;           /* the spin budget: owner thread only; 0 until its first park */
    uint16_t shared;            /* owner only: waits in a row woken from the thread's own CPU */
    uint16_t escape_after;      /* owner only: how many such waits make it sleep at once */
    int efd;                    /* poll mode's wake-up eventfd: made at the thread's first wait on
                                   fds (parker_io_prepare), closed as the thread exits; -1 until
                                   then */
    struct parker *next, *prev; /* on the list of parkers with an eventfd (parkers.mu) */
};

static _Thread_local struct parker self_parker = {.efd = -1};
static _Thread_local const struct chan_sched *self_sched;
static _Thread_local struct waiter *self_parking;

/* Thread-locals are read through these non-inlined accessors, before an operation blocks and
 * never after: under an M:N scheduler the task may resume on another thread, and a compiler
 * may otherwise reuse a TLS address computed before the park (GCC PR 26461). */
__attribute__((noinline)) static struct parker *parker_self(void) { return &self_parker; }
__attribute__((noinline)) static const struct chan_sched *sched_self(void) { return self_sched; }
__attribute__((noinline)) static void parking_set(struct waiter *w) { self_parking = w; }

struct waiter *waiter_parking(void)
{
    struct waiter *w = self_parking;
    self_parking = NULL;
    return w;
}

size_t waiter_channels(const struct waiter *w, chan_t **chans, enum chan_dir *dirs, size_t max)
{
    for (size_t i = 0; i < w->nsudog && i < max; i++) {
        chans[i] = w->sudogs[i].c;
        dirs[i] = w->sudogs[i].is_send ? CHAN_SEND : CHAN_RECV;
    }
    return w->nsudog;
}

enum wait_reason waiter_reason(const struct waiter *w) { return (enum wait_reason)w->why; }

const char *wait_reason_words(unsigned why)
{
    static const char *const words[] = {
        [WAIT_RECV] = "chan receive",
        [WAIT_SEND] = "chan send",
        [WAIT_SELECT] = "select",
        [WAIT_SELECT_NO_CASES] = "select (no cases)",
        [WAIT_RECV_NIL] = "chan receive (nil chan)",
        [WAIT_SEND_NIL] = "chan send (nil chan)",
    };
    return why < sizeof words / sizeof *words ? words[why] : "?";
}

size_t waiter_fds(const struct waiter *w, struct pollfd *fds, size_t max)
{
    /* From the copy the select made under the locks, not from its sudogs' channels: once the
     * select has unlocked them, chan_fd_close may close one, win the waiter, and free it
     * before this park looks. (nio 0: waiter_withdraw's parks.) */
    for (size_t i = 0; i < w->nio && i < max; i++)
        fds[i] = (struct pollfd){.fd = w->io[i].fd, .events = w->io[i].events};
    return w->nio;
}

bool waiter_fds_edge(const struct waiter *w) { return w->edge; }

static bool parker_take(struct parker *p)
{
    uint32_t s = NOTIFIED;
    return atomic_compare_exchange_strong_explicit(&p->state, &s, EMPTY, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* The budget follows what the thread's recent waits needed: a wait that ended in the spin, or
 * soon enough after it that a longer spin would likely have caught it (under 2 x SPIN_MAX_NS in
 * all, sleep and wake-up included), doubles it up to SPIN_MAX_NS; a longer one halves it down
 * to SPIN_MIN_NS. So a thread fed every few microseconds spins for as long as a sleep would
 * cost (the classic competitive bound: at most twice the optimum), and a thread that waits
 * long, again and again, soon burns only ~2 us per wait instead of ~50. */
static void spin_learn(struct parker *p, int64_t waited)
{
    if (waited < 2 * SPIN_MAX_NS)
        p->spin_ns = p->spin_ns >= SPIN_MAX_NS / 2 ? SPIN_MAX_NS : 2 * p->spin_ns;
    else
        p->spin_ns = p->spin_ns <= 2 * SPIN_MIN_NS ? SPIN_MIN_NS : p->spin_ns / 2;
}

static int parker_sleep(struct parker *p, int64_t deadline);

/* Whether the unpark just consumed came from the CPU this thread runs on: its waker shares the
 * CPU, and the two take turns on it through sched_yield while the other CPUs may be idle. The
 * kernel's load balancer leaves two such threads together for tens of milliseconds (each one
 * ran less than half a millisecond ago, so it counts as cache-hot and stays where it is,
 * balance after balance), and a hand-off costs 1-3 us meanwhile against ~0.15 apart. A futex
 * wake-up, on the other hand, puts the woken thread on an idle CPU at once when there is one
 * (select_idle_sibling). A fresh process's threads often start on one CPU: this is much of
 * what a first run lost (bench/BENCH.md, "Cold start"). */
static void parker_learn_cpu(struct parker *p, bool escaping)
{
    int me = sched_getcpu(), waker = atomic_load_explicit(&p->waker_cpu, memory_order_relaxed);
    if (me < 0 || me != waker) {
        p->shared = 0;
        if (escaping) /* moved apart by this very wake-up */
            p->escape_after = ESCAPE_MIN;
        return;
    }
    if (escaping) /* slept, and woken on the waker's CPU all the same: nothing was idle */
        p->escape_after = p->escape_after >= ESCAPE_MAX / 2 ? ESCAPE_MAX : 2 * p->escape_after;
    else if (p->shared < UINT16_MAX)
        p->shared++;
}

static int parker_park(struct parker *p, int64_t deadline)
{
    /* The unpark may be a few hundred nanoseconds away on another CPU, while sleeping on the
     * futex and being woken costs ~47 us on this kind of machine (a VM whose idle cores halt):
     * watch the permit first, yielding now and then so that a waker that shares our CPU can
     * run. Spinning for much less than a sleep costs makes both sides of a busy channel fall
     * asleep in turn. */
    if (ncpu() <= 1)
        return parker_sleep(p, deadline);
    if (!p->spin_ns) {
        p->spin_ns = SPIN_MAX_NS;
        p->escape_after = ESCAPE_MIN;
    }
    if (p->shared >= p->escape_after) {
        /* Woken from our own CPU, again: sleep at once, so that the waker's futex wake-up
         * moves us to an idle CPU if there is one (parker_learn_cpu). If there is none, the
         * tries thin out (escape_after doubles), since turns taken through sched_yield cost
         * less than a futex sleep and wake-up on one CPU. */
        p->shared = 0;
        int r = parker_sleep(p, deadline);
        if (r == 0)
            parker_learn_cpu(p, true);
        return r;
    }
    int64_t start = 0, t = 0;
    for (unsigned i = 1; atomic_load_explicit(&p->state, memory_order_relaxed) != NOTIFIED; i++) {
        if ((i & (SPIN_CHECK - 1)) == 0) {
            t = chan_now();
            if (!start)
                start = t;
            else if (t - start > (int64_t)p->spin_ns || t >= deadline)
                break;
            if (i >= SPIN_PURE)
                sched_yield();
        }
        caa_cpu_relax();
    }
    int r = parker_sleep(p, deadline);
    if (start) /* a wait shorter than one clock look teaches nothing */
        spin_learn(p, (r == 0 ? chan_now() : INT64_MAX / 2) - start);
    if (r == 0)
        parker_learn_cpu(p, false);
    return r;
}

/* The permit, or a futex sleep until it comes or the deadline: 0 or -ETIMEDOUT. */
static int parker_sleep(struct parker *p, int64_t deadline)
{
    if (parker_take(p))
        return 0;
    uint32_t s = EMPTY;
    if (!atomic_compare_exchange_strong_explicit(&p->state, &s, PARKED, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        /* Only unpark changes EMPTY, to NOTIFIED: the permit has just come. */
        parker_take(p);
        return 0;
    }
    for (;;) {
        int r = futex_wait(&p->state, PARKED, deadline);
        if (parker_take(p))
            return 0;
        if (r == -ETIMEDOUT || (deadline != CHAN_FOREVER && chan_now() >= deadline)) {
            s = PARKED;
            if (atomic_compare_exchange_strong_explicit(&p->state, &s, EMPTY, memory_order_relaxed,
                                                        memory_order_relaxed))
                return -ETIMEDOUT;
            parker_take(p); /* the unpark beat the time-out */
            return 0;
        }
        /* A signal (EINTR) or a stale wake-up: the same wait, to the same deadline. */
    }
}

/* Poll mode: each thread's eventfd. The key's destructor closes it as the thread exits. The
 * parkers that have one are listed, so that a child of fork() closes them all: they are shared
 * with the parent, and a waiter of the parent's (copied into the child's memory) woken in the
 * child must not wake the parent's thread. The child's own thread makes a new one when it next
 * waits on fds. */
static pthread_key_t parker_key;
static pthread_once_t parker_once = PTHREAD_ONCE_INIT;
static int parker_once_err;
static struct {
    pthread_mutex_t mu;
    struct parker *first;
} parkers = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void parker_exit(void *arg)
{
    struct parker *p = arg;
    pthread_mutex_lock(&parkers.mu);
    if (p->efd >= 0) { /* (not after a fork, which closed it) */
        if (p->prev)
            p->prev->next = p->next;
        else
            parkers.first = p->next;
        if (p->next)
            p->next->prev = p->prev;
        close(p->efd);
        p->efd = -1;
    }
    pthread_mutex_unlock(&parkers.mu);
}

static void parkers_prepare(void) { pthread_mutex_lock(&parkers.mu); }
static void parkers_parent(void) { pthread_mutex_unlock(&parkers.mu); }
static void parkers_child(void)
{
    for (struct parker *p = parkers.first; p; p = p->next) {
        close(p->efd);
        p->efd = -1;
    }
    parkers.first = NULL;
    pthread_mutex_unlock(&parkers.mu);
}

static void parker_once_init(void)
{
    parker_once_err = pthread_key_create(&parker_key, parker_exit);
    if (!parker_once_err)
        parker_once_err = pthread_atfork(parkers_prepare, parkers_parent, parkers_child);
}

static int parker_io_prepare(struct parker *p)
{
    if (likely(p->efd >= 0))
        return 0;
    pthread_once(&parker_once, parker_once_init);
    if (parker_once_err)
        return -parker_once_err;
    /* Blocking reads: parker_poll's drain waits for a write it knows is coming. */
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (pthread_setspecific(parker_key, p) != 0) {
        close(fd);
        return -ENOMEM;
    }
    pthread_mutex_lock(&parkers.mu);
    p->efd = fd;
    p->prev = NULL;
    p->next = parkers.first;
    if (p->next)
        p->next->prev = p;
    parkers.first = p;
    pthread_mutex_unlock(&parkers.mu);
    return 0;
}

/* Poll mode, for a waiter with fd cases: the thread sleeps in one ppoll on io[1 .. nio] and on
 * its eventfd (io[0]) until an fd is ready, an unpark writes the eventfd, or the deadline: no
 * other thread, no hop (Go's netpoll is the scheduler's; here the blocked thread is its own).
 * 0 (an unpark, which wins over ready fds: the waker has completed the operation), PARK_IO or
 * -ETIMEDOUT. No spin first: a wait on an fd is a wait on the world, not on a peer that is
 * about to hand over a value. */
static int parker_poll(struct parker *p, struct pollfd *io, uint32_t nio, int64_t deadline)
{
    if (parker_take(p))
        return 0;
    uint32_t s = EMPTY;
    if (!atomic_compare_exchange_strong_explicit(&p->state, &s, POLLING, memory_order_release,
                                                 memory_order_relaxed)) {
        parker_take(p); /* only unpark changes EMPTY: the permit has just come */
        return 0;
    }
    io[0] = (struct pollfd){.fd = p->efd, .events = POLLIN};
    /* ppoll, poll and read are cancellation points; a blocking operation is not (chan.h): a
     * thread cancelled in this wait would unwind with its sudogs still queued on channels.
     * Cancellation stays pending until the thread's next cancellation point of its own. */
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    int r;
    for (;;) {
        struct timespec ts, *tp = NULL;
        if (deadline != CHAN_FOREVER) {
            int64_t left = deadline - chan_now();
            if (left < 0)
                left = 0;
            ts = (struct timespec){(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
            tp = &ts;
        }
        int n = ppoll(io, (nfds_t)nio + 1, tp, NULL);
        if (n > 0) {
            r = io[0].revents ? 0 : PARK_IO;
            break;
        }
        if (n < 0 && errno != EINTR) {
            /* ENOMEM, or EINVAL: more fds than RLIMIT_NOFILE (a select naming one fd channel
             * in thousands of cases). Wait up to 1 ms for an unpark alone, then let the
             * operation poll its cases one by one again: slower, never a busy loop. */
            (void)poll(io, 1, 1);
            r = PARK_IO;
            break;
        }
        if (n == 0 && deadline != CHAN_FOREVER && chan_now() >= deadline) {
            r = -ETIMEDOUT;
            break;
        }
        /* A signal (EINTR): the same wait, to the same deadline. */
    }
    if (atomic_exchange_explicit(&p->state, EMPTY, memory_order_acquire) == NOTIFIED) {
        /* An unpark came while POLLING: it writes the eventfd once, maybe not yet. Read that
         * write, waiting for it if need be, so that none outlives this park: the next one may
         * poll the eventfd again, and the thread's exit closes it. */
        uint64_t v;
        while (read(p->efd, &v, sizeof v) < 0 && errno == EINTR) {
        }
        r = 0;
    } else {
        /* No unpark: the eventfd is written only after one, and every write is read above. */
        ASSERT(r != 0);
    }
    pthread_setcancelstate(cancel_state, NULL);
    return r;
}

/* The owner sleeps in ppoll: write its eventfd. Out of line, so that the other unparks need no
 * stack frame for it. */
__attribute__((noinline, cold)) static void parker_wake_poll(struct parker *p)
{
    uint64_t one = 1;
    while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

static void parker_unpark(struct parker *p)
{
    atomic_store_explicit(&p->waker_cpu, sched_getcpu(), memory_order_relaxed);
    /* acquire: a POLLING owner published its efd before it. */
    uint32_t old = atomic_exchange_explicit(&p->state, NOTIFIED, memory_order_acq_rel);
    if (likely(old == EMPTY))
        return; /* still spinning, or not parked yet: it takes the permit */
    if (old == PARKED)
        futex_wake(&p->state);
    else if (old == POLLING)
        parker_wake_poll(p);
}

/* ---- Waiters: the scheduler hook or the parker ---------------------------------------------- */

void chan_sched_set(const struct chan_sched *s) { self_sched = s; }

/* The one plugged-in scheduler whose park can wait on fds (seam.h). */
static const struct chan_sched *_Atomic io_sched;

void sched_waits_fds(const struct chan_sched *s) { atomic_store(&io_sched, s); }

/* The one plugged-in scheduler whose parked tasks keep their stacks (seam.h): park_nothing lists
 * its tasks as it lists threads. */
static const struct chan_sched *_Atomic stacks_sched;

void sched_keeps_stacks(const struct chan_sched *s) { atomic_store(&stacks_sched, s); }

bool may_spin(void) { return ncpu() > 1 && !sched_self(); }

/* ---- Fds under any other scheduler: libchan's poll thread ------------------------------------ */

/* A plugged-in scheduler's park waits for an unpark or a deadline, never for an fd, and a task
 * must not block its worker thread in poll(2). So a task of any scheduler but io_sched that
 * waits on fds registers them with a thread of libchan's own, which polls the fds of every such
 * waiter. When one is ready it wins the waiter's done word for it (DONE_IO: no waker may
 * complete the operation meanwhile) and unparks the task, once: to the scheduler, a waker that
 * completed the block. The operation, its park over, gives the done word back and ends its park
 * in PARK_IO: it starts over from its first pass, as a pthread's poll that found an fd ready
 * does. A waker that won the done word first completes the operation as always; the poll thread
 * then only stops polling those fds. Go's netpoller belongs to its scheduler; this one stands
 * beside any scheduler, at the cost of a hop through another thread per readiness. */
#define DONE_IO 2

struct pollreg {
    struct waiter *w;
    const struct pollfd *io; /* the operation's fds and events: nio of them */
    uint32_t nio;
    /* The poll thread's, under pollt.mu: */
    uint32_t slot; /* where its fds are in the snapshot that the thread polls */
    uint64_t snap; /* which snapshot that is (0: none yet) */
    bool fired;    /* decided: the thread won w's done word, or a waker or time-out did */
    struct pollreg *next, *prev;
};

static struct {
    pthread_mutex_t mu;
    struct pollreg *first; /* the registered waiters */
    size_t n;
    int efd;              /* a registration writes it: the thread polls the new set */
    _Atomic bool started; /* the thread runs (a child of fork() has none) */
    uint64_t snap;        /* snapshots taken */
} pollt = {.mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1};

static void *pollt_main(void *arg)
{
    (void)arg;
    struct pollfd *fds = NULL;
    struct wakeup *wake = NULL;
    size_t fds_cap = 0, wake_cap = 0;
    for (;;) {
        /* The set to poll: the eventfd, then the fds of every waiter not yet decided. */
        pthread_mutex_lock(&pollt.mu);
        size_t need = 1;
        for (struct pollreg *r = pollt.first; r; r = r->next)
            need += r->fired ? 0 : r->nio;
        if (need > fds_cap || pollt.n > wake_cap) {
            size_t fc = need > fds_cap ? 2 * need : fds_cap, wc = 2 * pollt.n + 1;
            struct pollfd *f = realloc(fds, fc * sizeof *f);
            struct wakeup *k = f ? realloc(wake, wc * sizeof *k) : NULL;
            fds = f ? f : fds;
            wake = k ? k : wake;
            if (!f || !k) { /* out of memory: try again soon; the waiters' deadlines hold */
                pthread_mutex_unlock(&pollt.mu);
                poll(NULL, 0, 10);
                continue;
            }
            fds_cap = fc;
            wake_cap = wc;
        }
        uint64_t snap = ++pollt.snap;
        fds[0] = (struct pollfd){.fd = pollt.efd, .events = POLLIN};
        uint32_t k = 1;
        for (struct pollreg *r = pollt.first; r; r = r->next) {
            if (r->fired)
                continue;
            r->slot = k;
            r->snap = snap;
            for (uint32_t i = 0; i < r->nio; i++)
                fds[k++] = (struct pollfd){.fd = r->io[i].fd, .events = r->io[i].events};
        }
        pthread_mutex_unlock(&pollt.mu);

        if (poll(fds, k, -1) < 0)
            continue; /* EINTR (the leak detector's stop), or ENOMEM: look again */
        if (fds[0].revents) {
            uint64_t v;
            if (read(pollt.efd, &v, sizeof v) < 0) { /* nonblocking: drained */
            }
        }

        /* Each waiter with a ready fd, still registered since the snapshot: decide it. */
        size_t nwake = 0;
        pthread_mutex_lock(&pollt.mu);
        for (struct pollreg *r = pollt.first; r; r = r->next) {
            if (r->fired || r->snap != snap)
                continue;
            bool ready = false;
            for (uint32_t i = 0; i < r->nio && !ready; i++)
                ready = fds[r->slot + i].revents != 0;
            if (!ready)
                continue;
            r->fired = true;
            uint32_t expected = 0;
            if (atomic_compare_exchange_strong_explicit(&r->w->done, &expected, DONE_IO,
                                                        memory_order_acq_rel, memory_order_relaxed))
                wake[nwake++] = wakeup_of(r->w);
        }
        pthread_mutex_unlock(&pollt.mu);
        /* Outside the lock (unpark may call libchan). Each task waits for this unpark before its
         * operation returns: its handle is still good. */
        for (size_t i = 0; i < nwake; i++)
            wakeup_run(wake[i]);
    }
    return NULL;
}

/* A child of fork() has no poll thread, and its copies of the registrations belong to the
 * parent's tasks: it starts afresh at its first wait. */
static void pollt_prepare(void) { pthread_mutex_lock(&pollt.mu); }
static void pollt_parent(void) { pthread_mutex_unlock(&pollt.mu); }
static void pollt_child(void)
{
    if (pollt.efd >= 0)
        close(pollt.efd);
    pollt.efd = -1;
    pollt.first = NULL;
    pollt.n = 0;
    atomic_store_explicit(&pollt.started, false, memory_order_relaxed);
    pthread_mutex_unlock(&pollt.mu);
}

static pthread_once_t pollt_once = PTHREAD_ONCE_INIT;
static int pollt_once_err;

static void pollt_once_init(void)
{
    pollt_once_err = pthread_atfork(pollt_prepare, pollt_parent, pollt_child);
}

/* seam.h. The calling thread's mask is the new thread's, so it is set around the creation and
 * put back. */
int daemon_start(void *(*fn)(void *arg))
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return -EAGAIN;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, CHAN_STOP_SIGNAL);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int e = pthread_create(&th, &attr, fn, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return e ? -EAGAIN : 0;
}

/* Starts the poll thread if it does not run: 0, or -errno (nothing started). */
static int pollt_start(void)
{
    if (likely(atomic_load_explicit(&pollt.started, memory_order_acquire)))
        return 0;
    pthread_once(&pollt_once, pollt_once_init);
    if (pollt_once_err)
        return -pollt_once_err;
    int err = 0;
    pthread_mutex_lock(&pollt.mu);
    if (atomic_load_explicit(&pollt.started, memory_order_relaxed))
        goto out;
    if (pollt.efd < 0 && (pollt.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        err = -errno;
        goto out;
    }
    err = daemon_start(pollt_main);
    atomic_store_explicit(&pollt.started, err == 0, memory_order_release);
out:
    pthread_mutex_unlock(&pollt.mu);
    return err;
}

/* Wakes the poll thread to poll the set as it is now. */
static void pollt_kick(void)
{
    uint64_t one = 1;
    if (write(pollt.efd, &one, sizeof one) < 0) { /* full: a wake-up is pending anyway */
    }
}

/* Registers w's fds (io, nio of them) with the poll thread and wakes it to poll them too. */
static void pollt_add(struct pollreg *r)
{
    pthread_mutex_lock(&pollt.mu);
    r->prev = NULL;
    r->next = pollt.first;
    if (r->next)
        r->next->prev = r;
    pollt.first = r;
    pollt.n++;
    pollt_kick();
    pthread_mutex_unlock(&pollt.mu);
}

/* Takes r off the list: from then on the poll thread does not touch r or its waiter. If the
 * thread polls r's fds now (a waker or the deadline ended the wait), it is woken to drop them:
 * a poll(2) holds each file it polls, so that a socket closed meanwhile would stay open. */
static void pollt_del(struct pollreg *r)
{
    pthread_mutex_lock(&pollt.mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        pollt.first = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pollt.n--;
    if (!r->fired && r->snap == pollt.snap)
        pollt_kick();
    pthread_mutex_unlock(&pollt.mu);
}

void waiter_init(struct waiter *w, enum wait_reason why, int64_t deadline)
{
    const struct chan_sched *s = sched_self();
    /* Every other field starts at zero: done, the waker's results, the sudogs, and the
     * tracer's notes, which a trace or a dump that starts while w waits may read. */
    *w = (struct waiter){
        .why = (uint8_t)why, .sched = s, .task = s ? s->current() : (void *)parker_self()};
    if (tracing(TF_EVENTS | TF_REGISTRY | TF_NAMED))
        trace_waiter_init(w, deadline);
}

int waiter_io_prepare(struct waiter *w)
{
    ASSERT(w->nio > 0);
    if (w->sched) /* io_sched's park waits on fds itself; any other's through the poll thread */
        return w->sched == atomic_load(&io_sched) ? 0 : pollt_start();
    return parker_io_prepare(w->task);
}

/* Park through the plugged-in scheduler, taking its word only where it is exact. A -ETIMEDOUT
 * (or -EINTR) before the deadline is a spurious wake-up, and the wait goes on to the same
 * deadline, as a signal's does in the pthread parker: chan_recv never reports a time-out, and
 * an _until call never an early one. Any other value is the scheduler's reason to give up the
 * wait (a positive one read as its negation, pthreads' ETIMEDOUT for -ETIMEDOUT): the operation
 * withdraws with it (waiter_withdraw), unless a waker completed it first. With io (the
 * scheduler of sched_waits_fds), PARK_IO passes through. */
static int sched_park(struct waiter *w, int64_t deadline, bool io)
{
    for (;;) {
        parking_set(w); /* set before each park, never touched after it: see parker_self */
        int r = w->sched->park(w->task, deadline);
        if (r == 0 || (io && r == PARK_IO))
            return r;
        if (r > 0)
            r = -r;
        if (r != -ETIMEDOUT && r != -EINTR)
            return r;
        if (deadline != CHAN_FOREVER && chan_now() >= deadline)
            return -ETIMEDOUT;
    }
}

int waiter_park(struct waiter *w, int64_t deadline)
{
    ASSERT(locks_held() == 0); /* never park holding a channel lock */
    if (w->sched)
        return sched_park(w, deadline, false);
    return parker_park(w->task, deadline);
}

/* A park of another scheduler's task while the poll thread watches its fds. PARK_IO when the
 * thread won the done word: the park that consumed its unpark is over, and the word is given
 * back, so that the operation withdraws as after any PARK_IO (a waker may win it first now,
 * and then completes the operation). */
static int pollt_park(struct waiter *w, int64_t deadline)
{
    struct pollreg r = {.w = w, .io = w->io, .nio = w->nio};
    pollt_add(&r);
    int rc = sched_park(w, deadline, false);
    pollt_del(&r);
    if (atomic_load_explicit(&w->done, memory_order_acquire) != DONE_IO)
        return rc;
    while (rc != 0) /* the park ended otherwise: the thread's unpark is on its way */
        rc = sched_park(w, CHAN_FOREVER, false);
    atomic_store_explicit(&w->done, 0, memory_order_release);
    return PARK_IO;
}

int waiter_park_io(struct waiter *w, struct pollfd *io, int64_t deadline)
{
    ASSERT(locks_held() == 0 && w->nio > 0);
    if (w->sched && w->sched == atomic_load(&io_sched))
        return sched_park(w, deadline, true);
    if (w->sched)
        return pollt_park(w, deadline);
    return parker_poll(w->task, io, w->nio, deadline);
}

/* Wake-ups of plugged-in schedulers' tasks held back while this thread holds a lock of a layer
 * above the core (seam.h, wakeups_hold): listed through their waiters, which live until their
 * unpark, in the order they came. */
struct held {
    unsigned depth;
    struct waiter *first, *last;
};
static _Thread_local struct held held_wakeups;

/* Threads in a held section now. wakeup_run looks at its thread's list only while some are: in
 * a shared library a thread-local costs a call to __tls_get_addr, this one load (callgrind:
 * +11 instructions a scheduler's wake-up with the thread-local alone, ping-pong of two tasks).
 * Alone on its line: the layers' sections write it. */
static _Alignas(64) _Atomic unsigned held_threads;

/* Out of line, as parker_self: the list is read afresh after each unpark, which may have
 * switched this task to another thread. */
__attribute__((noinline)) static struct held *held_self(void) { return &held_wakeups; }

/* A child of fork() has one thread, the forker: the sections that other threads were in when it
 * forked never end there, and their count would make every wake-up in the child look at its
 * thread's list, for good. The forker's own section (if any) goes on, with its list. Registered
 * when the library loads, as the count can be raised by any layer's first section. */
static void held_child(void)
{
    atomic_store_explicit(&held_threads, held_self()->depth ? 1 : 0, memory_order_relaxed);
}

__attribute__((constructor)) static void held_at_load(void)
{
    pthread_atfork(NULL, NULL, held_child);
}

unsigned wakeups_held_threads(void)
{
    return atomic_load_explicit(&held_threads, memory_order_relaxed);
}

void wakeups_hold(void)
{
    struct held *h = held_self();
    if (h->depth++ == 0) /* relaxed: only this thread's wakeup_run needs to see it */
        atomic_fetch_add_explicit(&held_threads, 1, memory_order_relaxed);
}

void wakeups_release(void)
{
    struct held *h = held_self();
    ASSERT(h->depth > 0);
    if (--h->depth)
        return;
    atomic_fetch_sub_explicit(&held_threads, 1, memory_order_relaxed);
    if (!h->first)
        return;
    struct waiter *w = h->first;
    h->first = h->last = NULL;
    while (w) {
        /* Read before the unpark: the waiter goes with its operation as soon as it runs. */
        struct waiter *next = w->held_next;
        const struct chan_sched *s = w->sched;
        s->unpark(w->task);
        w = next;
    }
}

/* Lists w on this thread's held wake-ups if the thread is in a held section: true. Out of line,
 * so that an unheld wake-up costs wakeup_run one load and a branch. */
__attribute__((noinline, cold)) static bool held_add(struct waiter *w)
{
    struct held *h = held_self();
    if (!h->depth)
        return false; /* another thread is in a section, not this one */
    w->held_next = NULL;
    if (h->last)
        h->last->held_next = w;
    else
        h->first = w;
    h->last = w;
    return true;
}

void wakeup_run(struct wakeup wk)
{
    ASSERT(locks_held() == 0); /* the hook's contract: never unpark while a lock is held */
    struct waiter *w = wk.w;
    const struct chan_sched *s = w->sched;
    if (!s) {
        parker_unpark(w->task); /* calls nothing back: never held */
        return;
    }
    /* A layer's lock is held on this thread: the unpark waits for its wakeups_release. */
    if (unlikely(atomic_load_explicit(&held_threads, memory_order_relaxed)) && held_add(w))
        return;
    s->unpark(w->task);
}

int waiter_withdraw(struct waiter *w, int why)
{
    uint32_t expected = 0;
    if (atomic_compare_exchange_strong_explicit(&w->done, &expected, 1, memory_order_acq_rel,
                                                memory_order_acquire))
        return why;
    /* A waker won the done word first: its unpark is on the way (or came). Consume it, so no
     * permit outlives this operation and the waker's unpark names a task still waiting. Ready
     * fds would only end those parks early: wait for the unpark alone. A scheduler's park that
     * gives up again is asked again: the unpark is a few of the waker's instructions away. */
    w->nio = 0;
    while (waiter_park(w, CHAN_FOREVER) != 0) {
    }
    return 0;
}

int park_nothing(int64_t deadline, enum wait_reason why)
{
    struct waiter w;
    waiter_init(&w, why, deadline);
    /* A wait like any other in a trace, on no channel: its slice shows a sleep, and a thread
     * stuck on a nil channel or in select {} (to the end of the trace, when it never returns). */
    bool sel = why == WAIT_SELECT || why == WAIT_SELECT_NO_CASES;
    if (tracing(TF_EVENTS))
        trace_block(&w, sel);
    /* On no channel's queue, a thread is found by the dump and the leak detector on this list,
     * and so is a G of the scheduler in the tree, whose stack stays while it waits; the task of
     * another scheduler may be dropped while it waits: not listed. */
    struct trace_idle idle;
    bool listed = tracing(TF_REGISTRY) && (!w.sched || w.sched == atomic_load(&stacks_sched)) &&
                  trace_idle_add(&idle, &w);
    /* Nobody can unpark this waiter: it is on no queue. Only the deadline ends the wait (or a
     * plugged-in scheduler's park giving it up: see sched_park). */
    int r;
    while ((r = waiter_park(&w, deadline)) == 0) {
    }
    if (listed)
        trace_idle_del(&idle);
    if (tracing(TF_EVENTS))
        trace_woken(&w, r, sel);
    return r;
}
