/*
 * mpg.c - libchan-mpg: Go's M:P:G scheduler (runtime/proc.go's design) behind struct chan_sched.
 *
 *   G   a coroutine: a function, its argument, a pooled stack, a saved stack pointer, and one
 *       atomic word (wake) that is both its park permit and its parked state.
 *   P   a logical processor: a bounded ring of runnable Gs (lock-free for its owner, stealable
 *       by idle Ps) plus runnext, the G that the running G just woke (Go's runnext): it runs
 *       when that G parks, or is taken by an idle P if that G keeps the M (runq_steal_next).
 *   M   an OS thread bound to a core; it owns one P for its whole life (Ms and Ps are 1:1 here:
 *       there is no system-call handoff, a G blocked in a system call holds its M and P). Each M
 *       loops on its own thread stack ("g0"): find a runnable G, switch to it, and when the G
 *       switches back, act on its request (park, yield, exit).
 *
 * Invariants:
 *  - A G runs on one M at a time. It is switched in by an M's g0, or directly by the G it
 *    follows on that M when that G parks (the hand-off, see g_park); it switches out to its
 *    M's g0 or, parking, to the next G of its P. A parking G is published (marked PARKED where
 *    a waker can find it) only after its context is saved: by g0 (park_commit), or by the G it
 *    handed the M to, first thing after the switch (after_switch). A yielding or exiting G goes
 *    through g0. So a waker on another M never resumes a G that is still switching out.
 *  - g->wake = seq << 2 | state, state RUN (running or runnable), NOTIFIED (running with a permit:
 *    an unpark came before park) or PARKED (off CPU, waiting). Only park_commit moves RUN ->
 *    PARKED (bumping seq); unpark moves RUN -> NOTIFIED or PARKED -> RUN; the timer moves
 *    PARKED -> RUN only for the seq it was armed for. Whoever moves PARKED -> RUN owns the
 *    wake-up: it writes park_rc and queues the G, exactly once.
 *  - A G's timer lives in the global heap only while the G is parked with that deadline; the
 *    heap lock orders arming (by park_commit, only if the word is still the one it parked with),
 *    firing (CAS under the lock) and removal (by the G when an unpark won).
 *  - runnext: only its owner puts a G there (a store when it is empty, an exchange when not);
 *    the owner and thieves take it by CAS, so each G put there runs once. A thief takes it only after RUNNEXT_PAUSE_NS during
 *    which the owner did not schedule (schedtick). No M is woken for a G put in runnext while
 *    a watcher exists: an idle M that sleeps with a time-out and looks (m_idle). There is one
 *    whenever some M runs Gs and another is idle, except while a woken or spinning M is on its
 *    way to look (it becomes the watcher if it finds none): a G left in runnext by a G that
 *    blocks in a system call or spins is found within WATCH_MAX_NS and a pause.
 *  - Thread-locals (the current M) are read through m_self(), never cached across a switch:
 *    a G may resume on another M (DESIGN.md, GCC PR 26461).
 *  - Deadlock: every M idle, no queue or runnext holds a G, neither timer heap (ours, libchan's
 *    timer thread's) holds a pending timer, no foreign thread announced, and Gs still live:
 *    those Gs are then all parked on channels, and only a thread that has not announced itself
 *    could wake them. The verdict is never stored: chan_mpg_wait decides it under S.lock when
 *    it is called and each time it is woken, and whatever may turn it true (the last M going
 *    idle, the last foreign thread leaving, libchan's last pending timer done, the last G
 *    returning) wakes the waiters. What turns it false needs no wake-up: the waiter decides
 *    afresh, so a report never outlives its truth.
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include <errno.h>
#include <hwloc.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <urcu/arch.h>
#include <urcu/futex.h>
#include <urcu/wfcqueue.h>

#include "chan_internal.h"
#include "sched/chan_sched_mpg.h"

/* ---- Sanitizers and valgrind: tell them about every stack switch -------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define MPG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPG_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MPG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPG_TSAN 1
#endif
#endif

#ifdef MPG_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef MPG_TSAN
#include <sanitizer/tsan_interface.h>
/* TSan's dynamic annotations (exported by its runtime): liburcu's atomics are inline assembly,
 * which TSan cannot see, so the wait-free queue's own accesses are hidden from it and the
 * hand-over of a G through the queue is declared with __tsan_release/__tsan_acquire. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define TSAN_IGNORE_BEGIN()                                                                        \
    (AnnotateIgnoreReadsBegin(__FILE__, __LINE__), AnnotateIgnoreWritesBegin(__FILE__, __LINE__))
#define TSAN_IGNORE_END()                                                                          \
    (AnnotateIgnoreWritesEnd(__FILE__, __LINE__), AnnotateIgnoreReadsEnd(__FILE__, __LINE__))
#else
#define TSAN_IGNORE_BEGIN() ((void)0)
#define TSAN_IGNORE_END() ((void)0)
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define MPG_VALGRIND 1
#endif
#endif

/* ---- The context switch (ctx_switch.S) --------------------------------------------------- */

HIDDEN void mpg_ctx_switch(void **save_sp, void *to_sp);
HIDDEN void mpg_ctx_entry(void);

/* ---- Structures ---------------------------------------------------------------------------- */

#define RQ_SIZE 256         /* a P's ring (Go's runq is 256 too) */
#define GLOBAL_EVERY 61     /* a P looks at the global queue first every 61 schedules (Go's) */
#define RUNNEXT_MAX 61      /* consecutive runnext picks before the ring gets a turn */
#define SPIN_ROUNDS 40      /* steal rounds an idle M tries before it sleeps */
#define RUNNEXT_PAUSE_NS 3000  /* a thief's pause before it takes a runnext (Go's usleep(3)) */
#define WATCH_MIN_NS 50000     /* the watcher's first sleep (about the kernel's timer slack) */
#define WATCH_MAX_NS 10000000  /* it doubles up to this (Go's sysmon backs off to 10 ms too) */
#define REPORT_MAX_CHANS 16 /* channels listed per G in the deadlock report */

enum { W_RUN = 0, W_NOTIFIED = 1, W_PARKED = 2, W_MASK = 3 };
enum req { REQ_NONE, REQ_PARK, REQ_YIELD, REQ_EXIT };

struct g {
    void *sp;                      /* saved stack pointer while switched out */
    struct cds_wfcq_node qnode;    /* link in the global queue */
    _Atomic uint64_t wake;         /* seq << 2 | W_* */
    int park_rc;                   /* written by the wake-up's owner: 0 or -ETIMEDOUT */
    enum req req;                  /* what the G asks its g0 when it switches out */
    int64_t deadline;              /* of the park it asks for */
    struct waiter *waiter;         /* libchan's waiter while parked on channels, else NULL */
    bool sleeping;                 /* parked in chan_mpg_sleep_until */
    /* Timer (under S.tlock). */
    int64_t when;
    long heap_idx;                 /* -1: not in the heap */
    uint64_t timer_word;           /* the wake word it was armed for */
    /* Identity and body. */
    int64_t id;
    _Atomic bool live;
    void (*fn)(void *);
    void *arg;
    /* Stack. */
    char *stk_lo;
    size_t stk_size;
    bool guarded;
    struct g *next_free;           /* free list (under S.gmu) */
    struct g *allnext;             /* every G descriptor ever made (under S.gmu) */
#ifdef MPG_ASAN
    void *fake_stack;
#endif
#ifdef MPG_TSAN
    void *fiber;
#endif
#ifdef MPG_VALGRIND
    unsigned vg_id;
#endif
};

struct p {
    _Atomic uint32_t head;         /* taken by the owner and by thieves (CAS) */
    _Atomic uint32_t tail;         /* written by the owner only */
    struct g *_Atomic ring[RQ_SIZE];
    struct g *_Atomic runnext;     /* taken by the owner and by thieves (CAS), set by the owner */
    _Atomic uint32_t schedtick;    /* bumped by the owner at every schedule (Go's schedtick): a
                                      thief that sees it unchanged across its pause knows the
                                      owner is still running the same G */
} __attribute__((aligned(128)));

struct m {
    struct p p;                    /* first: its own cache lines */
    int id;
    pthread_t thread;
    void *g0_sp;                   /* the scheduler loop's context while a G runs */
    struct g *curg;                /* the G running on this M, or NULL on g0 */
    struct g *handoff;             /* a G that switched straight to another G asking to park:
                                      the G switched in commits that park (after_switch) */
    _Atomic uint32_t wake;         /* futex: 1 when woken from idle */
    bool idle;                     /* under S.lock */
    bool watching;                 /* under S.lock: this M is S.watcher */
    unsigned runnext_streak;
    uint64_t rng;
    hwloc_cpuset_t cpuset;         /* where it is bound, or NULL */
    const void *stk_lo;            /* the thread's own stack, for ASan */
    size_t stk_size;
#ifdef MPG_ASAN
    void *g0_fake;
#endif
#ifdef MPG_TSAN
    void *g0_fiber;
#endif
} __attribute__((aligned(128)));

/* The one scheduler of the process (documented global state). */
static struct {
    _Atomic bool running;
    _Atomic bool stopping;
    int nprocs;
    struct m *ms;
    size_t stack_size;
    long guard_max;
    bool bind;
    hwloc_topology_t topo;

    /* The global run queue: wait-free enqueue from any thread; dequeue under its own mutex. */
    struct cds_wfcq_head gq_head;
    struct cds_wfcq_tail gq_tail;

    /* Idle Ms, waiting, deadlock: under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cv;             /* chan_mpg_wait */
    _Atomic int nidle;
    _Atomic int nspinning;
    struct m *_Atomic watcher;     /* the M that watches the runnext of busy Ps (m_idle), or
                                      NULL; set under lock, read without it by ready() */
    int64_t watch_ns;              /* the watcher's sleep (under lock) */
    _Atomic long nforeign;
    _Atomic int nwaiters;          /* threads in chan_mpg_wait* (changed under lock) */

    /* Gs. */
    _Atomic int64_t live;
    _Atomic uint64_t spawned, steals, ndeadlocks;
    _Atomic int64_t next_id;
    pthread_mutex_t gmu;           /* free list, all-G list, stack chunks */
    struct g *free_gs;
    struct g *all_gs;
    uint64_t nstacks, nguarded;
    char *chunk;                   /* unguarded stacks are carved from chunks */
    size_t chunk_left;
    struct chunk { struct chunk *next; void *base; size_t len; } *chunks;

    /* Timers: one heap of parked Gs by deadline. */
    pthread_mutex_t tlock;
    struct g **heap;
    size_t nheap, heap_cap;
    _Atomic int64_t timer_next;    /* the earliest deadline, CHAN_FOREVER when none */
} S = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
    .gmu = PTHREAD_MUTEX_INITIALIZER,
    .tlock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- The current M: a thread-local read only through this accessor -------------------------- */

static _Thread_local struct m *tls_m;

#if defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif

/* Not inlined, not pure: every call re-reads the thread-local on the thread it runs on. A G
 * that switched out on one M may come back on another; see DESIGN.md (GCC PR 26461). */
NOINLINE static struct m *m_self(void)
{
    __asm__ volatile("" ::: "memory");
    return tls_m;
}

NOINLINE static void m_set(struct m *m)
{
    __asm__ volatile("" ::: "memory");
    tls_m = m;
}

/* ---- futex ------------------------------------------------------------------------------------ */

static void futex_sleep(_Atomic uint32_t *word, uint32_t val, int64_t deadline)
{
    struct timespec ts, *tp = NULL;
    if (deadline != CHAN_FOREVER) {
        if (deadline < 0)
            deadline = 0;
        ts.tv_sec = (time_t)(deadline / 1000000000LL);
        ts.tv_nsec = (long)(deadline % 1000000000LL);
        tp = &ts;
    }
    futex((int32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, (int32_t)val, tp, NULL,
          FUTEX_BITSET_MATCH_ANY);
}

static void futex_wake1(_Atomic uint32_t *word)
{
    futex((int32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

/* ---- Switching between g0 and a G, with the sanitizers told ------------------------------ */

static void switch_to_g(struct m *m, struct g *g)
{
#ifdef MPG_ASAN
    __sanitizer_start_switch_fiber(&m->g0_fake, g->stk_lo, g->stk_size);
#endif
#ifdef MPG_TSAN
    __tsan_switch_to_fiber(g->fiber, 0);
#endif
    mpg_ctx_switch(&m->g0_sp, g->sp);
    /* Back on g0, which never migrates: m is still this thread's M. */
#ifdef MPG_ASAN
    __sanitizer_finish_switch_fiber(m->g0_fake, NULL, NULL);
#endif
}

static void after_switch(void);

/* From G g to the g0 of the M it runs on. Returns when some M switches g back in. */
static void switch_to_g0(struct g *g, bool exiting)
{
    struct m *m = m_self();
#ifdef MPG_ASAN
    __sanitizer_start_switch_fiber(exiting ? NULL : &g->fake_stack, m->stk_lo, m->stk_size);
#else
    (void)exiting;
#endif
#ifdef MPG_TSAN
    __tsan_switch_to_fiber(m->g0_fiber, 0);
#endif
    mpg_ctx_switch(&g->sp, m->g0_sp);
    /* Resumed, perhaps on another M: m is stale here and not used again. */
#ifdef MPG_ASAN
    __sanitizer_finish_switch_fiber(g->fake_stack, NULL, NULL);
#endif
    after_switch();
}

/* From G g straight to G next on the same M, without passing through g0 (the hand-off of a park:
 * see g_park). Returns when some M switches g back in. */
static void switch_g_to_g(struct g *g, struct g *next)
{
#ifdef MPG_ASAN
    __sanitizer_start_switch_fiber(&g->fake_stack, next->stk_lo, next->stk_size);
#endif
#ifdef MPG_TSAN
    __tsan_switch_to_fiber(next->fiber, 0);
#endif
    mpg_ctx_switch(&g->sp, next->sp);
#ifdef MPG_ASAN
    __sanitizer_finish_switch_fiber(g->fake_stack, NULL, NULL);
#endif
    after_switch();
}

static void g_main(struct g *g)
{
#ifdef MPG_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    after_switch();
    g->fn(g->arg);
    g->req = REQ_EXIT;
    switch_to_g0(g, true);
    __builtin_trap(); /* an exited G is never switched in again */
}

/* The first frame of a new stack: mpg_ctx_switch pops it and "returns" into mpg_ctx_entry,
 * which calls g_main(g). */
static void ctx_init(struct g *g)
{
    uintptr_t top = ((uintptr_t)g->stk_lo + g->stk_size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* popped: r15 r14 r13 r12 rbx rbp, then ret; rsp must be 16-aligned after the ret. */
    void **sp = (void **)(top - 16 - 56);
    sp[0] = NULL;                 /* r15 */
    sp[1] = NULL;                 /* r14 */
    sp[2] = (void *)g_main;       /* r13: fn */
    sp[3] = g;                    /* r12: arg */
    sp[4] = NULL;                 /* rbx */
    sp[5] = NULL;                 /* rbp */
    sp[6] = (void *)mpg_ctx_entry;
    sp[7] = NULL;                 /* no caller */
    g->sp = sp;
#elif defined(__aarch64__)
    void **sp = (void **)(top - 176);
    memset(sp, 0, 176);
    sp[0] = g;                    /* x19: arg */
    sp[1] = (void *)g_main;       /* x20: fn */
    sp[10] = NULL;                /* x29 */
    sp[11] = (void *)mpg_ctx_entry; /* x30 */
    g->sp = sp;
#endif
}

/* ---- Stacks: guarded while mappings last, then carved unguarded from chunks --------------- */

static size_t page_size(void)
{
    static size_t ps;
    if (!ps)
        ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

#define CHUNK_STACKS 64

/* Under S.gmu. */
static int stack_alloc(struct g *g)
{
    size_t ps = page_size(), size = S.stack_size;
    if (S.guard_max > 0 && S.nguarded < (uint64_t)S.guard_max) {
        char *base = mmap(NULL, size + ps, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base != MAP_FAILED) {
            if (mprotect(base, ps, PROT_NONE) == 0) {
                g->stk_lo = base + ps;
                g->stk_size = size;
                g->guarded = true;
                S.nguarded++;
                S.nstacks++;
                return 0;
            }
            munmap(base, size + ps); /* out of mappings: carry on unguarded */
        }
    }
    if (S.chunk_left < size) {
        size_t len = size * CHUNK_STACKS;
        struct chunk *ck = malloc(sizeof *ck);
        if (!ck)
            return -ENOMEM;
        void *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) {
            free(ck);
            return -ENOMEM;
        }
        ck->base = base;
        ck->len = len;
        ck->next = S.chunks;
        S.chunks = ck;
        S.chunk = base;
        S.chunk_left = len;
    }
    g->stk_lo = S.chunk;
    g->stk_size = size;
    g->guarded = false;
    S.chunk += size;
    S.chunk_left -= size;
    S.nstacks++;
    return 0;
}

/* ---- Timers: a binary heap of parked Gs by deadline, under S.tlock ------------------------- */

static void heap_set(size_t i, struct g *g)
{
    S.heap[i] = g;
    g->heap_idx = (long)i;
}

static void heap_up(size_t i)
{
    struct g *g = S.heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (S.heap[parent]->when <= g->when)
            break;
        heap_set(i, S.heap[parent]);
        i = parent;
    }
    heap_set(i, g);
}

static void heap_down(size_t i)
{
    struct g *g = S.heap[i];
    for (;;) {
        size_t l = 2 * i + 1, c = l;
        if (l >= S.nheap)
            break;
        if (l + 1 < S.nheap && S.heap[l + 1]->when < S.heap[l]->when)
            c = l + 1;
        if (S.heap[c]->when >= g->when)
            break;
        heap_set(i, S.heap[c]);
        i = c;
    }
    heap_set(i, g);
}

static void heap_remove(struct g *g)
{
    size_t i = (size_t)g->heap_idx;
    g->heap_idx = -1;
    S.nheap--;
    if (i != S.nheap) {
        heap_set(i, S.heap[S.nheap]);
        heap_down(i);
        heap_up((size_t)S.heap[i]->heap_idx);
    }
}

static void timer_next_update(void)
{
    atomic_store_explicit(&S.timer_next, S.nheap ? S.heap[0]->when : CHAN_FOREVER,
                          memory_order_release);
}

static void wakep(void);
static void wake_one_idle(void);

/* Arms g's timer, unless g has already been woken (its wake word moved on). The heap always
 * has room: it grows with the number of G descriptors (g_alloc). */
static void timer_arm(struct g *g, int64_t when, uint64_t parked_word)
{
    bool earliest = false;
    pthread_mutex_lock(&S.tlock);
    if (atomic_load_explicit(&g->wake, memory_order_acquire) == parked_word) {
        g->when = when;
        g->timer_word = parked_word;
        size_t i = S.nheap++;
        heap_set(i, g);
        heap_up(i);
        earliest = g->heap_idx == 0;
        timer_next_update();
    }
    pthread_mutex_unlock(&S.tlock);
    /* A sleeping M sleeps until the earliest timer it saw: wake one to look again. */
    if (earliest)
        wake_one_idle();
}

static void timer_cancel(struct g *g)
{
    pthread_mutex_lock(&S.tlock);
    if (g->heap_idx >= 0) {
        heap_remove(g);
        timer_next_update();
    }
    pthread_mutex_unlock(&S.tlock);
}

static void runq_put(struct m *m, struct g *g);

/* Fires the timers that are due: each G still parked for the park its timer was armed for
 * times out (park_rc -ETIMEDOUT) and goes on this M's run queue. Returns how many. */
static int timers_run(struct m *m)
{
    int64_t next = atomic_load_explicit(&S.timer_next, memory_order_acquire);
    if (next == CHAN_FOREVER)
        return 0;
    int64_t now = chan_now();
    if (now < next)
        return 0;
    struct g *woken = NULL;
    int n = 0;
    pthread_mutex_lock(&S.tlock);
    while (S.nheap > 0 && S.heap[0]->when <= now) {
        struct g *g = S.heap[0];
        heap_remove(g);
        uint64_t v = g->timer_word;
        if (atomic_compare_exchange_strong_explicit(&g->wake, &v, (v & ~(uint64_t)W_MASK) | W_RUN,
                                                    memory_order_acq_rel, memory_order_relaxed)) {
            g->park_rc = -ETIMEDOUT;
            g->next_free = woken; /* borrowed as a list link: the G is not free */
            woken = g;
            n++;
        }
    }
    timer_next_update();
    pthread_mutex_unlock(&S.tlock);
    while (woken) {
        struct g *g = woken;
        woken = g->next_free;
        g->next_free = NULL;
        runq_put(m, g);
    }
    return n;
}

/* ---- The global run queue (liburcu's wait-free concurrent queue) ------------------------- */

static void gq_push(struct g *g)
{
#ifdef MPG_TSAN
    __tsan_release(g);
#endif
    TSAN_IGNORE_BEGIN();
    cds_wfcq_node_init(&g->qnode);
    cds_wfcq_enqueue(&S.gq_head, &S.gq_tail, &g->qnode);
    TSAN_IGNORE_END();
}

static bool gq_empty(void)
{
    TSAN_IGNORE_BEGIN();
    bool e = cds_wfcq_empty(&S.gq_head, &S.gq_tail);
    TSAN_IGNORE_END();
    return e;
}

static struct g *gq_pop(void)
{
    if (gq_empty())
        return NULL;
    TSAN_IGNORE_BEGIN();
    struct cds_wfcq_node *n = cds_wfcq_dequeue_blocking(&S.gq_head, &S.gq_tail);
    TSAN_IGNORE_END();
    if (!n)
        return NULL;
    struct g *g = caa_container_of(n, struct g, qnode);
#ifdef MPG_TSAN
    __tsan_acquire(g);
#endif
    return g;
}

/* ---- Local run queues (Go's runqput / runqget / runqsteal) ----------------------------------- */

/* Owner only. A full ring sends half of itself and g to the global queue (Go's runqputslow). */
static void runq_put(struct m *m, struct g *g)
{
    struct p *p = &m->p;
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
        if (t - h < RQ_SIZE) {
            atomic_store_explicit(&p->ring[t % RQ_SIZE], g, memory_order_relaxed);
            atomic_store_explicit(&p->tail, t + 1, memory_order_release);
            return;
        }
        uint32_t n = (t - h) / 2;
        struct g *batch[RQ_SIZE / 2];
        for (uint32_t i = 0; i < n; i++)
            batch[i] = atomic_load_explicit(&p->ring[(h + i) % RQ_SIZE], memory_order_relaxed);
        if (!atomic_compare_exchange_strong_explicit(&p->head, &h, h + n, memory_order_release,
                                                     memory_order_relaxed))
            continue; /* a thief took some: there is room now */
        for (uint32_t i = 0; i < n; i++)
            gq_push(batch[i]);
        gq_push(g);
        return;
    }
}

static struct g *runq_get(struct p *p)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        struct g *g = atomic_load_explicit(&p->ring[h % RQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&p->head, &h, h + 1, memory_order_release,
                                                    memory_order_relaxed))
            return g;
    }
}

static bool runq_ring_empty(struct p *p)
{
    return atomic_load_explicit(&p->head, memory_order_acquire) ==
           atomic_load_explicit(&p->tail, memory_order_acquire);
}

/* Thief m takes half of victim's ring into its own (empty) ring and returns one G to run (Go's
 * runqsteal). The victim's runnext is left alone here: see runq_steal_next. */
static struct g *runq_steal(struct m *m, struct p *victim)
{
    struct p *p = &m->p;
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&victim->tail, memory_order_acquire);
        uint32_t n = t - h;
        n -= n / 2;
        if (n == 0 || n > RQ_SIZE / 2) {
            if (n > RQ_SIZE / 2)
                continue; /* inconsistent snapshot: read again */
            return NULL;
        }
        uint32_t mt = atomic_load_explicit(&p->tail, memory_order_relaxed);
        for (uint32_t i = 0; i < n; i++) {
            struct g *g = atomic_load_explicit(&victim->ring[(h + i) % RQ_SIZE],
                                               memory_order_relaxed);
            atomic_store_explicit(&p->ring[(mt + i) % RQ_SIZE], g, memory_order_relaxed);
        }
        if (!atomic_compare_exchange_strong_explicit(&victim->head, &h, h + n,
                                                     memory_order_acq_rel, memory_order_relaxed))
            continue;
        /* Keep n - 1 of them, run the last. */
        struct g *g = atomic_load_explicit(&p->ring[(mt + n - 1) % RQ_SIZE], memory_order_relaxed);
        if (n > 1)
            atomic_store_explicit(&p->tail, mt + n - 1, memory_order_release);
        atomic_fetch_add_explicit(&S.steals, 1, memory_order_relaxed);
        return g;
    }
}

/* ---- Idle Ms ------------------------------------------------------------------------------ */

/* Under S.lock: takes one idle M off the idle set and wakes it; the watcher only when no other
 * M is idle (it then stops watching: a spinning M looks at every runnext before it sleeps). */
static void wake_idle_locked(void)
{
    struct m *m = NULL;
    for (int i = 0; i < S.nprocs; i++) {
        if (S.ms[i].idle) {
            m = &S.ms[i];
            if (!m->watching)
                break;
        }
    }
    if (!m)
        return;
    if (m->watching) {
        m->watching = false;
        atomic_store(&S.watcher, NULL);
    }
    m->idle = false;
    atomic_fetch_sub_explicit(&S.nidle, 1, memory_order_seq_cst);
    atomic_store_explicit(&m->wake, 1, memory_order_release);
    futex_wake1(&m->wake);
}

static void wake_one_idle(void)
{
    if (atomic_load_explicit(&S.nidle, memory_order_seq_cst) == 0)
        return;
    pthread_mutex_lock(&S.lock);
    wake_idle_locked();
    pthread_mutex_unlock(&S.lock);
}

/* Go's wakep: work was just queued; get an idle M looking for it, unless one already is. The
 * caller's queue write comes first (the fence pairs with the one of an M going idle). */
static void wakep(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&S.nidle, memory_order_seq_cst) == 0)
        return;
    if (atomic_load_explicit(&S.nspinning, memory_order_seq_cst) > 0)
        return;
    wake_one_idle();
}

/* ---- Making a G runnable -------------------------------------------------------------------- */

/* Go's ready(): g was just woken (its wake word moved to RUN by the caller). From a G: g goes
 * to runnext, to run as soon as the caller parks; the G it displaces goes to the ring, and an
 * idle M is woken for it. No M is woken for runnext while a watcher is there (see m_idle): if
 * the caller blocks in a system call or spins instead of parking, the watcher takes g at its
 * next look, so a ping-pong costs no wake-up at all. From g0: the local ring; from a foreign
 * thread: the global queue; an idle M is woken. */
static void ready(struct g *g)
{
    struct m *m = m_self();
    if (m && m->curg) {
        /* Thieves only ever take a G out of runnext: an empty one is the owner's to fill with
         * a plain store. A full one is swapped, since a thief may be taking it right now. */
        struct g *old = atomic_load_explicit(&m->p.runnext, memory_order_relaxed);
        if (old)
            old = atomic_exchange_explicit(&m->p.runnext, g, memory_order_acq_rel);
        else
            atomic_store_explicit(&m->p.runnext, g, memory_order_release);
        /* No fence before reading S.watcher: a watcher seen here cannot stop watching while
         * this M runs a G, and if it leaves the role for work it wakes a successor; an M that
         * goes idle while this one runs becomes the watcher if there is none. Each looks at
         * runnext later, by when the store above is visible. */
        if (old) {
            runq_put(m, old);
            wakep();
        } else if (S.nprocs > 1 && !atomic_load_explicit(&S.watcher, memory_order_relaxed)) {
            wakep();
        }
    } else {
        if (m)
            runq_put(m, g);
        else
            gq_push(g);
        wakep();
    }
}

/* ---- Direct hand-off between Gs ------------------------------------------------------------- */

/* Owner only: a plain increment, visible to thieves (runq_steal_next). */
static uint32_t schedtick_next(struct p *p)
{
    uint32_t t = atomic_load_explicit(&p->schedtick, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->schedtick, t, memory_order_relaxed);
    return t;
}

/* Owner: takes g, just read from p's runnext. false: a thief took it meanwhile (runnext is then
 * empty: only the owner puts a G there). */
static bool runnext_take(struct p *p, struct g *g)
{
    return atomic_compare_exchange_strong_explicit(&p->runnext, &g, NULL, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Go's runqget: runnext first, at most RUNNEXT_MAX times in a row (then the ring's head gets a
 * turn), then the ring. */
static struct g *runq_next(struct m *m)
{
    struct g *g = atomic_load_explicit(&m->p.runnext, memory_order_relaxed);
    if (g && m->runnext_streak < RUNNEXT_MAX) {
        if (runnext_take(&m->p, g)) {
            m->runnext_streak++;
            return g;
        }
        g = NULL;
    }
    m->runnext_streak = 0;
    struct g *r = runq_get(&m->p);
    if (r || !g)
        return r;
    return runnext_take(&m->p, g) ? g : NULL;
}

/* The next G for a parking G to switch to directly: runnext or the head of this P's ring.
 * NULL when g0 should choose instead: every GLOBAL_EVERY schedules (the global queue's turn)
 * and whenever a timer is due. */
static struct g *take_local(struct m *m)
{
    if ((atomic_load_explicit(&m->p.schedtick, memory_order_relaxed) + 1) % GLOBAL_EVERY == 0)
        return NULL; /* find_runnable's next tick looks at the global queue first */
    schedtick_next(&m->p);
    int64_t tn = atomic_load_explicit(&S.timer_next, memory_order_relaxed);
    if (tn != CHAN_FOREVER && tn <= chan_now())
        return NULL;
    return runq_next(m);
}

static bool park_commit(struct g *g);

/* First thing wherever a G lands after a switch: commit the park of the G that handed this M
 * over directly (its context is saved now). If an unpark came meanwhile, it runs again soon. */
static void after_switch(void)
{
    struct m *m = m_self();
    struct g *h = m->handoff;
    if (h) {
        m->handoff = NULL;
        if (park_commit(h))
            runq_put(m, h);
    }
}

/* ---- The hook ------------------------------------------------------------------------------- */

static void *hook_current(void) { return m_self()->curg; }

/* Park the calling G: switch to g0, which commits the park (park_commit). */
static int g_park(struct g *g, int64_t deadline)
{
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_acquire);
    if ((v & W_MASK) == W_NOTIFIED) {
        /* The unpark came first: consume the permit. Only this G leaves NOTIFIED. */
        atomic_store_explicit(&g->wake, v & ~(uint64_t)W_MASK, memory_order_relaxed);
        return 0;
    }
    g->req = REQ_PARK;
    g->deadline = deadline;
    struct m *m = m_self();
    struct g *next = take_local(m);
    if (next) {
        /* Go's park goes through g0 (mcall); when the next G is at hand on this P, switch to it
         * directly and let it commit our park once our context is saved: one switch, not two. */
        m->handoff = g;
        m->curg = next;
        switch_g_to_g(g, next);
    } else {
        switch_to_g0(g, false);
    }
    int rc = g->park_rc;
    if (rc == 0 && deadline != CHAN_FOREVER)
        timer_cancel(g); /* an unpark won: the timer may still be armed */
    return rc;
}

static int hook_park(void *task, int64_t deadline)
{
    struct g *g = task;
    g->waiter = waiter_parking(); /* what it waits on, for the deadlock report */
    int rc = g_park(g, deadline);
    g->waiter = NULL;
    return rc;
}

static void hook_unpark(void *task)
{
    struct g *g = task;
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_relaxed);
    for (;;) {
        uint64_t nv;
        switch (v & W_MASK) {
        case W_RUN:
            nv = v | W_NOTIFIED;
            if (atomic_compare_exchange_weak_explicit(&g->wake, &v, nv, memory_order_release,
                                                      memory_order_relaxed))
                return;
            break;
        case W_PARKED:
            nv = (v & ~(uint64_t)W_MASK) | W_RUN;
            if (atomic_compare_exchange_weak_explicit(&g->wake, &v, nv, memory_order_acq_rel,
                                                      memory_order_relaxed)) {
                g->park_rc = 0;
                ready(g);
                return;
            }
            break;
        default:
            return; /* a permit is already there */
        }
    }
}

static const struct chan_sched mpg_hook = {hook_current, hook_park, hook_unpark};

/* On g0, after g switched out asking to park: make it PARKED (a new seq), unless an unpark came
 * while it was switching out; then arm its timer. true: g must run again at once. */
static bool park_commit(struct g *g)
{
    int64_t deadline = g->deadline; /* read before g can be woken and park again */
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_acquire), nv;
    do {
        if ((v & W_MASK) == W_NOTIFIED) {
            atomic_store_explicit(&g->wake, v & ~(uint64_t)W_MASK, memory_order_relaxed);
            g->park_rc = 0;
            return true;
        }
        nv = ((v >> 2) + 1) << 2 | W_PARKED;
    } while (!atomic_compare_exchange_weak_explicit(&g->wake, &v, nv, memory_order_acq_rel,
                                                    memory_order_acquire));
    if (deadline != CHAN_FOREVER)
        timer_arm(g, deadline, nv);
    return false;
}

/* ---- G descriptors ------------------------------------------------------------------------- */

static void g_release(struct g *g)
{
    pthread_mutex_lock(&S.gmu);
    g->next_free = S.free_gs;
    S.free_gs = g;
    pthread_mutex_unlock(&S.gmu);
}

static struct g *g_alloc(void)
{
    pthread_mutex_lock(&S.gmu);
    struct g *g = S.free_gs;
    if (g) {
        S.free_gs = g->next_free;
        pthread_mutex_unlock(&S.gmu);
#ifdef MPG_ASAN
        /* A G that exited left its first frames' redzones poisoned. */
        __asan_unpoison_memory_region(g->stk_lo, g->stk_size);
#endif
        return g;
    }
    /* A new descriptor: the timer heap grows first, so that arming a timer never fails. */
    pthread_mutex_lock(&S.tlock);
    if (S.heap_cap < S.nstacks + 1) {
        size_t cap = S.heap_cap ? S.heap_cap * 2 : 256;
        struct g **a = realloc(S.heap, cap * sizeof *a);
        if (!a) {
            pthread_mutex_unlock(&S.tlock);
            pthread_mutex_unlock(&S.gmu);
            return NULL;
        }
        S.heap = a;
        S.heap_cap = cap;
    }
    pthread_mutex_unlock(&S.tlock);
    g = calloc(1, sizeof *g);
    if (!g || stack_alloc(g) != 0) {
        free(g);
        pthread_mutex_unlock(&S.gmu);
        return NULL;
    }
    g->allnext = S.all_gs;
    S.all_gs = g;
    pthread_mutex_unlock(&S.gmu);
    g->heap_idx = -1;
#ifdef MPG_TSAN
    g->fiber = __tsan_create_fiber(0);
#endif
#ifdef MPG_VALGRIND
    g->vg_id = VALGRIND_STACK_REGISTER(g->stk_lo, g->stk_lo + g->stk_size);
#endif
    return g;
}

/* ---- The scheduler loop -------------------------------------------------------------------- */

static uint64_t rnd(struct m *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

static struct g *steal_round(struct m *m)
{
    int n = S.nprocs;
    int start = (int)(rnd(m) % (uint64_t)n);
    for (int i = 0; i < n; i++) {
        struct m *v = &S.ms[(start + i) % n];
        if (v == m)
            continue;
        struct g *g = runq_steal(m, &v->p);
        if (g)
            return g;
    }
    return NULL;
}

/* Go's runqgrab on a victim whose ring is empty but whose runnext holds a G. That G was woken
 * or spawned by the G running on the victim, which usually parks within a microsecond and hands
 * its M to it: a ping-pong stays on one core, its values in one cache. So the thief first waits
 * RUNNEXT_PAUSE_NS (spinning: it has nothing else to do, and a 3 us sleep would last the
 * kernel's 50 us of timer slack), and takes the G only if the victim has not scheduled since
 * (same schedtick: its G neither parked nor yielded, it blocks in a system call or computes)
 * and the same G still waits. The CAS decides against the owner taking it at the same time. */
static struct g *runq_steal_next(struct p *victim)
{
    struct g *g = atomic_load_explicit(&victim->runnext, memory_order_relaxed);
    if (!g || !runq_ring_empty(victim))
        return NULL;
    uint32_t t = atomic_load_explicit(&victim->schedtick, memory_order_relaxed);
    int64_t end = chan_now() + RUNNEXT_PAUSE_NS;
    while (chan_now() < end)
        for (int i = 0; i < 16; i++)
            caa_cpu_relax();
    if (atomic_load_explicit(&victim->schedtick, memory_order_relaxed) != t)
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&victim->runnext, &g, NULL, memory_order_acquire,
                                                 memory_order_relaxed))
        return NULL;
    atomic_fetch_add_explicit(&S.steals, 1, memory_order_relaxed);
    return g;
}

/* The last thing a spinning M tries (Go's last stealWork round), and what the watcher looks at. */
static struct g *steal_runnext_round(struct m *m)
{
    int n = S.nprocs;
    int start = (int)(rnd(m) % (uint64_t)n);
    for (int i = 0; i < n; i++) {
        struct m *v = &S.ms[(start + i) % n];
        if (v == m)
            continue;
        struct g *g = runq_steal_next(&v->p);
        if (g)
            return g;
    }
    return NULL;
}

/* A G in the global queue or some ring; with runnext, also a G in some P's runnext. */
static bool any_work(bool runnext)
{
    if (!gq_empty())
        return true;
    for (int i = 0; i < S.nprocs; i++) {
        struct p *p = &S.ms[i].p;
        if (!runq_ring_empty(p) ||
            (runnext && atomic_load_explicit(&p->runnext, memory_order_acquire)))
            return true;
    }
    return false;
}

/* ---- Deadlock: the condition, and who wakes the waiters to decide it ------------------------- */

/* libchan's timer thread (chan_time.h: timers, tickers, context deadlines) is a foreign thread
 * that wakes Gs when a timer fires, and its heap is out of our sight. libchan's internal
 * counter of its pending timers (armed ones plus those being fired, read without a lock: the
 * timer thread unparks Gs under its own lock) defers the report like a timer of ours, and its
 * hook tells us when that count drops to zero. Weak: when the program uses no chan_time.h
 * timer, timer.c is not linked in, and both are NULL. */
extern size_t timers_pending(void) __attribute__((weak, visibility("hidden")));
extern void timers_set_drained_hook(void (*fn)(void)) __attribute__((weak, visibility("hidden")));

/* Under S.lock: the deadlock condition (see the top of the file), decided now. */
static bool deadlocked_locked(void)
{
    if (atomic_load(&S.nidle) != S.nprocs || atomic_load(&S.nforeign) > 0 ||
        atomic_load(&S.live) == 0 || any_work(true))
        return false;
    if (timers_pending && timers_pending() > 0)
        return false;
    pthread_mutex_lock(&S.tlock);
    size_t timers = S.nheap;
    pthread_mutex_unlock(&S.tlock);
    return timers == 0;
}

/* Under S.lock: an input of the condition changed in the direction of a deadlock (the last M
 * went idle, the last foreign thread left): let the waiters decide it again. */
static void deadlock_recheck_locked(void)
{
    if (atomic_load(&S.nwaiters) > 0)
        pthread_cond_broadcast(&S.cv);
}

/* timer.c's hook: its last pending timer is done (fired, stopped or freed). Called with the
 * timer lock held, on any thread: only signals. A waiter counts itself (seq_cst) before it
 * reads timers_pending(), and the count dropped to zero before this reads nwaiters: one of the
 * two sees the other, so no waiter misses the change. */
static void timers_drained(void)
{
    if (atomic_load(&S.nwaiters) == 0)
        return;
    pthread_mutex_lock(&S.lock);
    pthread_cond_broadcast(&S.cv);
    pthread_mutex_unlock(&S.lock);
}

/* Sleeps on m->wake until woken, the earliest timer, or stop.
 *
 * The watcher. A G in a P's runnext runs when the G that put it there parks; if that G blocks
 * in a system call or spins instead, only another M can run it. Go's ready() wakes an idle M
 * each time, to be a thief: a futex wake-up per ping-pong hop while another P is idle (+60%
 * CPU per round trip, measured here). Instead, while some M runs Gs and another is idle, one
 * idle M, the watcher, sleeps with a time-out instead of for good, and on waking looks at
 * every runnext (find_runnable: runq_steal_next) before it sleeps again. It stops watching
 * when no M runs Gs, or when it finds work (watch_end: then an idle M is woken to take over,
 * as Go's last spinning M does). Without a watcher, ready() wakes an M.
 *
 * Its sleep, S.watch_ns, doubles at each look from WATCH_MIN_NS up to WATCH_MAX_NS (Go's sysmon
 * backs off the same way, to the same 10 ms), and starts again from the bottom only once every
 * M has been idle, not each time the role passes to another M: each look costs the Ps it
 * watches. Whenever their M has been preempted by the OS (or its vCPU by the host) for longer
 * than the pause, a look takes its runnext; a ping-pong split that way meets again at the next
 * hop, yet with looks every millisecond its round trips took half as long again on a loaded
 * machine. Returns true when the watcher woke to look (nobody woke it). */
static bool m_idle(struct m *m)
{
    pthread_mutex_lock(&S.lock);
    if (atomic_load(&S.stopping) || !gq_empty()) {
        pthread_mutex_unlock(&S.lock);
        return false;
    }
    atomic_store_explicit(&m->wake, 0, memory_order_relaxed);
    m->idle = true;
    int nidle = atomic_fetch_add_explicit(&S.nidle, 1, memory_order_seq_cst) + 1;
    if (nidle == S.nprocs)
        deadlock_recheck_locked();
    struct m *w = atomic_load(&S.watcher);
    if (nidle < S.nprocs && !w) {
        atomic_store(&S.watcher, m);
        m->watching = true;
    } else if (nidle == S.nprocs) {
        if (w == m) {
            atomic_store(&S.watcher, NULL); /* nobody runs Gs: no runnext can fill */
            m->watching = false;
        }
        S.watch_ns = WATCH_MIN_NS;
    }
    int64_t deadline = atomic_load_explicit(&S.timer_next, memory_order_acquire);
    if (m->watching) {
        int64_t look = chan_now() + S.watch_ns;
        if (look < deadline)
            deadline = look;
    }
    pthread_mutex_unlock(&S.lock);
    /* Pairs with wakep's fence: either it sees this M idle, or this sees its work. A G put in
     * runnext without a wake-up is the watcher's to find (see ready). */
    atomic_thread_fence(memory_order_seq_cst);
    if (!any_work(false) && !atomic_load(&S.stopping))
        futex_sleep(&m->wake, 0, deadline);
    pthread_mutex_lock(&S.lock);
    bool look = m->idle && m->watching;
    if (m->idle) {
        m->idle = false;
        atomic_fetch_sub_explicit(&S.nidle, 1, memory_order_seq_cst);
    }
    if (look)
        S.watch_ns = S.watch_ns < WATCH_MAX_NS / 2 ? 2 * S.watch_ns : WATCH_MAX_NS;
    pthread_mutex_unlock(&S.lock);
    return look;
}

/* m found work: if it was the watcher, it is no longer, and an idle M is woken to take over
 * (m_idle makes it the watcher if some M still runs Gs), as Go's last spinning M wakes another
 * when it finds work. Only m changes m->watching while m is not idle. */
static void watch_end(struct m *m)
{
    if (!m->watching)
        return;
    pthread_mutex_lock(&S.lock);
    m->watching = false;
    atomic_store(&S.watcher, NULL);
    pthread_mutex_unlock(&S.lock);
    wakep();
}

/* Go's findrunnable: the next G for m, or NULL when the scheduler stops. */
static struct g *find_runnable(struct m *m)
{
    bool look = false; /* the watcher woke to look: one round, no spinning */
    for (;;) {
        if (atomic_load_explicit(&S.stopping, memory_order_relaxed))
            return NULL;
        timers_run(m); /* due timers first, whatever else is runnable (Go's checkTimers) */
        struct g *g;
        if (schedtick_next(&m->p) % GLOBAL_EVERY == 0 && (g = gq_pop()))
            return g;
        if ((g = runq_next(m)))
            return g;
        if ((g = gq_pop()))
            return g;
        if (timers_run(m))
            continue;
        /* Spin a little, stealing, then sleep. */
        atomic_fetch_add_explicit(&S.nspinning, 1, memory_order_seq_cst);
        for (int r = 0; r < (look ? 1 : SPIN_ROUNDS) && !g; r++) {
            if (S.nprocs > 1)
                g = steal_round(m);
            if (!g)
                g = gq_pop();
            if (!g) {
                for (int i = 0; i < 64; i++)
                    caa_cpu_relax();
                if (atomic_load_explicit(&S.timer_next, memory_order_relaxed) <= chan_now())
                    break;
            }
        }
        if (!g && S.nprocs > 1)
            g = steal_runnext_round(m);
        atomic_fetch_sub_explicit(&S.nspinning, 1, memory_order_seq_cst);
        if (g) {
            if (m->watching)
                watch_end(m); /* wakes an M */
            else
                wakep(); /* it found work: there may be more for another idle M */
            return g;
        }
        if (timers_run(m))
            continue;
        look = m_idle(m);
    }
}

static void execute(struct m *m, struct g *g)
{
    for (;;) {
        m->curg = g;
        switch_to_g(m, g);
        g = m->curg; /* the G that switched back: after direct hand-offs, maybe not the first */
        m->curg = NULL;
        switch (g->req) {
        case REQ_PARK:
            if (park_commit(g))
                continue;
            return;
        case REQ_YIELD:
            runq_put(m, g);
            return;
        case REQ_EXIT:
            atomic_store_explicit(&g->live, false, memory_order_release);
            g_release(g);
            if (atomic_fetch_sub_explicit(&S.live, 1, memory_order_acq_rel) == 1) {
                pthread_mutex_lock(&S.lock);
                pthread_cond_broadcast(&S.cv);
                pthread_mutex_unlock(&S.lock);
            }
            return;
        default:
            __builtin_trap();
        }
    }
}

static void *m_main(void *arg)
{
    struct m *m = arg;
    m_set(m);
    chan_sched_set(&mpg_hook);
    if (m->cpuset)
        hwloc_set_cpubind(S.topo, m->cpuset, HWLOC_CPUBIND_THREAD);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t size;
        if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
            m->stk_lo = lo;
            m->stk_size = size;
        }
        pthread_attr_destroy(&attr);
    }
#ifdef MPG_TSAN
    m->g0_fiber = __tsan_get_current_fiber();
#endif
    struct g *g;
    while ((g = find_runnable(m))) {
        watch_end(m);
        execute(m, g);
    }
    chan_sched_set(NULL);
    m_set(NULL);
    return NULL;
}

/* ---- Deadlock report ------------------------------------------------------------------------ */

/* Under S.lock, every M idle: no G moves. Go's format, with channel addresses. The report
 * (malloc), or NULL when memory is short. */
static char *report_deadlock_locked(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "all goroutines are asleep - deadlock!\n");
    pthread_mutex_lock(&S.gmu);
    /* Oldest first: the list is newest first, so collect and print backwards. */
    size_t n = 0;
    for (struct g *g = S.all_gs; g; g = g->allnext)
        n++;
    struct g **v = malloc(n * sizeof *v + 1);
    if (v) {
        size_t k = 0;
        for (struct g *g = S.all_gs; g; g = g->allnext)
            v[k++] = g;
        for (size_t i = n; i-- > 0;) {
            struct g *g = v[i];
            if (!atomic_load_explicit(&g->live, memory_order_acquire))
                continue;
            if ((atomic_load_explicit(&g->wake, memory_order_acquire) & W_MASK) != W_PARKED)
                continue;
            struct waiter *w = g->waiter;
            chan_t *chans[REPORT_MAX_CHANS];
            enum chan_dir dirs[REPORT_MAX_CHANS];
            size_t nc = w ? waiter_channels(w, chans, dirs, REPORT_MAX_CHANS) : 0;
            const char *what = !w ? (g->sleeping ? "sleep" : "parked")
                               : nc == 0 ? "select (no cases) or nil chan"
                               : nc > 1 ? "select"
                               : dirs[0] == CHAN_SEND ? "chan send"
                                                      : "chan receive";
            fprintf(f, "\ngoroutine %lld [%s]:\n", (long long)g->id, what);
            for (size_t i2 = 0; i2 < nc && i2 < REPORT_MAX_CHANS; i2++)
                fprintf(f, "\tchan %p (%s)\n", (void *)chans[i2],
                        dirs[i2] == CHAN_SEND ? "send" : "recv");
            if (nc > REPORT_MAX_CHANS)
                fprintf(f, "\t... %zu more\n", nc - REPORT_MAX_CHANS);
        }
        free(v);
    }
    pthread_mutex_unlock(&S.gmu);
    fclose(f);
    return buf;
}

/* ---- The API -------------------------------------------------------------------------------- */

static int default_nprocs(hwloc_topology_t topo)
{
    int n = topo ? hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) : 0;
    if (n <= 0 && topo)
        n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    return n > 0 ? n : 1;
}

static long default_guard_max(void)
{
#ifdef MPG_TSAN
    /* TSan maps trace memory for every fiber (one per G): the mappings are its, not ours. */
    return -1;
#else
#ifdef MPG_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return 1000; /* valgrind keeps a fixed table of segments (VG_N_SEGMENTS) */
#endif
    long maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &maps) != 1)
            maps = 65530;
        fclose(f);
    }
    long g = (maps - 5000) / 2; /* two mappings per guarded stack; the rest for everyone else */
    return g > 0 ? g : -1;
#endif
}

static void free_all(void)
{
    for (struct g *g = S.all_gs, *nx; g; g = nx) {
        nx = g->allnext;
#ifdef MPG_VALGRIND
        VALGRIND_STACK_DEREGISTER(g->vg_id);
#endif
#ifdef MPG_TSAN
        __tsan_destroy_fiber(g->fiber);
#endif
        if (g->guarded)
            munmap(g->stk_lo - page_size(), g->stk_size + page_size());
        free(g);
    }
    for (struct chunk *c = S.chunks, *nx; c; c = nx) {
        nx = c->next;
        munmap(c->base, c->len);
        free(c);
    }
    S.all_gs = S.free_gs = NULL;
    S.chunks = NULL;
    S.chunk = NULL;
    S.chunk_left = 0;
    S.nstacks = S.nguarded = 0;
    free(S.heap);
    S.heap = NULL;
    S.nheap = S.heap_cap = 0;
    if (S.ms) {
        for (int i = 0; i < S.nprocs; i++)
            if (S.ms[i].cpuset)
                hwloc_bitmap_free(S.ms[i].cpuset);
        free(S.ms);
        S.ms = NULL;
    }
    if (S.topo) {
        hwloc_topology_destroy(S.topo);
        S.topo = NULL;
    }
}

static void stop_ms(int started)
{
    atomic_store(&S.stopping, true);
    pthread_mutex_lock(&S.lock);
    for (int i = 0; i < started; i++) {
        atomic_store(&S.ms[i].wake, 1);
        futex_wake1(&S.ms[i].wake);
    }
    pthread_mutex_unlock(&S.lock);
    for (int i = 0; i < started; i++)
        pthread_join(S.ms[i].thread, NULL);
}

int chan_mpg_start_config(const struct chan_mpg_config *cfg)
{
    struct chan_mpg_config c = cfg ? *cfg : (struct chan_mpg_config){0};
    if (c.nprocs < 0 || c.nprocs > 1024)
        return -EINVAL;
    bool expected = false;
    if (!atomic_compare_exchange_strong(&S.running, &expected, true))
        return -EALREADY;
    if (hwloc_topology_init(&S.topo) != 0 || hwloc_topology_load(S.topo) != 0) {
        if (S.topo)
            hwloc_topology_destroy(S.topo);
        S.topo = NULL;
    }
    S.nprocs = c.nprocs ? c.nprocs : default_nprocs(S.topo);
    size_t ps = page_size(), ss = c.stack_size ? c.stack_size : CHAN_MPG_STACK_DEFAULT;
    if (ss < CHAN_MPG_STACK_MIN)
        ss = CHAN_MPG_STACK_MIN;
    S.stack_size = (ss + ps - 1) / ps * ps;
    S.guard_max = c.guard_max ? c.guard_max : default_guard_max();
    S.bind = !c.nobind && S.topo;
    atomic_store(&S.stopping, false);
    atomic_store(&S.nidle, 0);
    atomic_store(&S.nspinning, 0);
    atomic_store(&S.watcher, NULL);
    S.watch_ns = WATCH_MIN_NS;
    atomic_store(&S.live, 0);
    atomic_store(&S.spawned, 0);
    atomic_store(&S.steals, 0);
    atomic_store(&S.ndeadlocks, 0);
    atomic_store(&S.next_id, 0);
    atomic_store(&S.timer_next, CHAN_FOREVER);
    cds_wfcq_init(&S.gq_head, &S.gq_tail);
    if (posix_memalign((void **)&S.ms, 128, (size_t)S.nprocs * sizeof *S.ms) != 0) {
        S.ms = NULL;
        free_all();
        atomic_store(&S.running, false);
        return -ENOMEM;
    }
    memset(S.ms, 0, (size_t)S.nprocs * sizeof *S.ms);
    int ncores = S.topo ? hwloc_get_nbobjs_by_type(S.topo, HWLOC_OBJ_CORE) : 0;
    for (int i = 0; i < S.nprocs; i++) {
        struct m *m = &S.ms[i];
        m->id = i;
        m->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        if (S.bind && ncores > 0) {
            hwloc_obj_t core = hwloc_get_obj_by_type(S.topo, HWLOC_OBJ_CORE, i % ncores);
            if (core && core->cpuset)
                m->cpuset = hwloc_bitmap_dup(core->cpuset);
        }
    }
    for (int i = 0; i < S.nprocs; i++) {
        int err = pthread_create(&S.ms[i].thread, NULL, m_main, &S.ms[i]);
        if (err) {
            stop_ms(i);
            free_all();
            atomic_store(&S.running, false);
            return -err;
        }
    }
    if (timers_set_drained_hook)
        timers_set_drained_hook(timers_drained);
    return 0;
}

int chan_mpg_start(int nprocs)
{
    struct chan_mpg_config c = {.nprocs = nprocs};
    return chan_mpg_start_config(&c);
}

int64_t chan_mpg_go(void (*fn)(void *), void *arg)
{
    if (!fn || !atomic_load(&S.running) || atomic_load(&S.stopping))
        return -EINVAL;
    struct g *g = g_alloc();
    if (!g)
        return -ENOMEM;
    g->fn = fn;
    g->arg = arg;
    g->req = REQ_NONE;
    g->waiter = NULL;
    g->sleeping = false;
    g->park_rc = 0;
    g->id = atomic_fetch_add(&S.next_id, 1) + 1;
    /* Keep seq (stale timers and wakers compare it); a fresh G starts RUN without a permit. */
    atomic_store(&g->wake, atomic_load(&g->wake) & ~(uint64_t)W_MASK);
    atomic_store(&g->live, true);
    ctx_init(g);
    atomic_fetch_add(&S.live, 1);
    atomic_fetch_add_explicit(&S.spawned, 1, memory_order_relaxed);
    int64_t id = g->id;
    ready(g);
    return id;
}

int64_t chan_mpg_self(void)
{
    struct m *m = m_self();
    return m && m->curg ? m->curg->id : 0;
}

void chan_mpg_yield(void)
{
    struct m *m = m_self();
    if (!m || !m->curg) {
        sched_yield();
        return;
    }
    struct g *g = m->curg;
    g->req = REQ_YIELD;
    switch_to_g0(g, false);
}

int chan_mpg_sleep_until(int64_t deadline)
{
    struct m *m = m_self();
    if (!m || !m->curg) {
        struct timespec ts = {(time_t)(deadline / 1000000000LL), (long)(deadline % 1000000000LL)};
        if (deadline == CHAN_FOREVER)
            for (;;)
                pause();
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        return 0;
    }
    struct g *g = m->curg;
    g->sleeping = true;
    /* Nothing unparks a sleeping G (libchan leaves no permit behind an operation): only the
     * deadline ends it. */
    while (g_park(g, deadline) == 0) {
    }
    g->sleeping = false;
    return 0;
}

/* The verdict is decided here, now and at each wake-up, never taken from an earlier wait: a
 * deadlock reported before may have been undone since (a channel closed, a foreign thread
 * announced, a timer reset). */
static int wait_common(char *buf, size_t size, bool to_stderr)
{
    if (!atomic_load(&S.running) || m_self())
        return -EINVAL;
    int rc = 0;
    char *report = NULL;
    pthread_mutex_lock(&S.lock);
    atomic_fetch_add(&S.nwaiters, 1);
    while (atomic_load(&S.live) > 0) {
        if (deadlocked_locked()) {
            rc = -EDEADLK;
            report = report_deadlock_locked();
            atomic_fetch_add(&S.ndeadlocks, 1);
            break;
        }
        pthread_cond_wait(&S.cv, &S.lock);
    }
    atomic_fetch_sub(&S.nwaiters, 1);
    pthread_mutex_unlock(&S.lock);
    if (rc) {
        const char *r = report ? report : "all goroutines are asleep - deadlock!\n";
        if (to_stderr) {
            fputs(r, stderr);
            fflush(stderr);
        } else if (buf && size) {
            snprintf(buf, size, "%s", r);
        }
        free(report);
    }
    return rc;
}

int chan_mpg_wait(void) { return wait_common(NULL, 0, true); }

int chan_mpg_wait_report(char *buf, size_t size) { return wait_common(buf, size, false); }

int chan_mpg_foreign_enter(void)
{
    atomic_fetch_add(&S.nforeign, 1);
    return 0;
}

void chan_mpg_foreign_leave(void)
{
    if (atomic_fetch_sub(&S.nforeign, 1) == 1 && atomic_load(&S.running)) {
        pthread_mutex_lock(&S.lock);
        deadlock_recheck_locked();
        pthread_mutex_unlock(&S.lock);
    }
}

int chan_mpg_stop(void)
{
    if (!atomic_load(&S.running) || m_self())
        return -EINVAL;
    if (atomic_load(&S.live) > 0)
        return -EBUSY;
    if (timers_set_drained_hook)
        timers_set_drained_hook(NULL);
    stop_ms(S.nprocs);
    free_all();
    atomic_store(&S.running, false);
    return 0;
}

void chan_mpg_stats(struct chan_mpg_stats *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&S.gmu);
    st->stacks = S.nstacks;
    st->stacks_guarded = S.nguarded;
    pthread_mutex_unlock(&S.gmu);
    st->spawned = atomic_load(&S.spawned);
    int64_t live = atomic_load(&S.live);
    st->live = live > 0 ? (uint64_t)live : 0;
    st->steals = atomic_load(&S.steals);
    st->deadlocks = atomic_load(&S.ndeadlocks);
    st->nprocs = S.nprocs;
}
