/* SPDX-License-Identifier: MIT */
/*
 * proc.c - libchan-mpg's scheduling, after Go's runtime/proc.go: Ms and their Ps, the run
 * queues and stealing, idle Ms and the watcher, the timers of parked Gs, and the hook through
 * which libchan parks and readies Gs (struct chan_sched). The structures and their invariants
 * are in sched_internal.h; the stacks and the switch in fiber.h and fiber.c; the deadlock
 * condition and its report in deadlock.c.
 *
 * Read top to bottom: the current M; switching between g0 and Gs; the timer heap; the global
 * and local run queues; idle Ms (wakep); ready and the direct hand-off; the hook (gopark,
 * goready); G descriptors; the scheduler loop (findrunnable, execute); the API.
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urcu/arch.h>
#include <urcu/wfcqueue.h>

#include "sched/sched_internal.h"

struct schedt sched = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
    .gmu = PTHREAD_MUTEX_INITIALIZER,
    .tlock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- The current M: a thread-local read only through m_self ---------------------------------- */

static _Thread_local struct m *tls_m;

#if defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif

/* Not inlined, not pure: every call re-reads the thread-local on the thread it runs on. A G
 * that switched out on one M may come back on another (GCC PR 26461). Go's getg().m. */
NOINLINE struct m *m_self(void)
{
    __asm__ volatile("" ::: "memory");
    return tls_m;
}

NOINLINE static void m_set(struct m *m)
{
    __asm__ volatile("" ::: "memory");
    tls_m = m;
}

/* ---- Switching between g0 and a G (fiber.h tells the sanitizers) ----------------------------- */

/* From m's g0 to G g (Go's gogo). Returns on g0, which never migrates: m is still this
 * thread's M. */
static void switch_to_g(struct m *m, struct g *g) { fiber_switch(&m->g0, &g->fiber); }

static void after_switch(void);

/* From G g to the g0 of the M it runs on (Go's mcall). Returns when some M switches g back in,
 * perhaps another: the M is read again after. */
static void switch_to_g0(struct g *g)
{
    fiber_switch(&g->fiber, &m_self()->g0);
    after_switch();
}

/* From G g straight to G next on the same M, without passing through g0 (the hand-off of a park:
 * see g_park). Returns when some M switches g back in. */
static void switch_g_to_g(struct g *g, struct g *next)
{
    fiber_switch(&g->fiber, &next->fiber);
    after_switch();
}

/* The first frame of every G (Go's goexit is its return address): run the function, then leave
 * for good through g0, which recycles the G (execute). */
static void g_main(void *arg)
{
    struct g *g = arg;
    fiber_entered();
    after_switch();
    g->fn(g->arg);
    g->req = REQ_EXIT;
    fiber_exit(&g->fiber, &m_self()->g0);
}

/* ---- Timers: parked Gs by deadline in a heap (time/heap.h), under sched.tlock --------------- */

static struct g *g_of_timer(struct heap_node *n)
{
    return (struct g *)((char *)n - offsetof(struct g, timer));
}

static void timer_next_update(void)
{
    struct heap_node *first = heap_min(&sched.timers);
    atomic_store_explicit(&sched.timer_next, first ? first->when : CHAN_FOREVER,
                          memory_order_release);
}

static void wakep(void);
static void wake_one_idle(void);

/* Arms g's timer, unless g has already been woken (its wake word moved on). The heap always
 * has room: it grows with the number of G descriptors (g_alloc). */
static void timer_arm(struct g *g, int64_t when, uint64_t parked_word)
{
    bool earliest = false;
    pthread_mutex_lock(&sched.tlock);
    if (atomic_load_explicit(&g->wake, memory_order_acquire) == parked_word) {
        g->timer.when = when;
        g->timer_word = parked_word;
        heap_push(&sched.timers, &g->timer);
        earliest = heap_min(&sched.timers) == &g->timer;
        timer_next_update();
    }
    pthread_mutex_unlock(&sched.tlock);
    /* A sleeping M sleeps until the earliest timer it saw: wake one to look again. */
    if (earliest)
        wake_one_idle();
}

static void timer_cancel(struct g *g)
{
    pthread_mutex_lock(&sched.tlock);
    if (heap_queued(&g->timer)) {
        heap_remove(&sched.timers, &g->timer);
        timer_next_update();
    }
    pthread_mutex_unlock(&sched.tlock);
}

size_t g_timers_armed(void)
{
    pthread_mutex_lock(&sched.tlock);
    size_t n = sched.timers.len;
    pthread_mutex_unlock(&sched.tlock);
    return n;
}

static void runq_put(struct m *m, struct g *g);

/* Go's checkTimers: fires the timers that are due: each G still parked for the park its timer
 * was armed for times out (park_rc -ETIMEDOUT) and goes on this M's run queue. Returns how
 * many. */
static int timers_run(struct m *m)
{
    int64_t next = atomic_load_explicit(&sched.timer_next, memory_order_acquire);
    if (next == CHAN_FOREVER)
        return 0;
    int64_t now = chan_now();
    if (now < next)
        return 0;
    struct g *woken = NULL;
    int n = 0;
    pthread_mutex_lock(&sched.tlock);
    struct heap_node *first;
    while ((first = heap_min(&sched.timers)) && first->when <= now) {
        struct g *g = g_of_timer(first);
        heap_remove(&sched.timers, first);
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
    pthread_mutex_unlock(&sched.tlock);
    while (woken) {
        struct g *g = woken;
        woken = g->next_free;
        g->next_free = NULL;
        runq_put(m, g);
    }
    return n;
}

/* ---- The global run queue (liburcu's wait-free concurrent queue) ----------------------------- */

/* Go's globrunqput: from any thread, wait-free. */
static void gq_push(struct g *g)
{
    RACE_RELEASE(g);
    RACE_IGNORE_BEGIN();
    cds_wfcq_node_init(&g->qnode);
    cds_wfcq_enqueue(&sched.gq_head, &sched.gq_tail, &g->qnode);
    RACE_IGNORE_END();
}

static bool gq_empty(void)
{
    RACE_IGNORE_BEGIN();
    bool e = cds_wfcq_empty(&sched.gq_head, &sched.gq_tail);
    RACE_IGNORE_END();
    return e;
}

/* Go's globrunqget, one G at a time. */
static struct g *gq_pop(void)
{
    if (gq_empty())
        return NULL;
    RACE_IGNORE_BEGIN();
    struct cds_wfcq_node *n = cds_wfcq_dequeue_blocking(&sched.gq_head, &sched.gq_tail);
    RACE_IGNORE_END();
    if (!n)
        return NULL;
    struct g *g = caa_container_of(n, struct g, qnode);
    RACE_ACQUIRE(g);
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

/* The head of p's ring (Go's runqget without runnext: see runq_next); owner or thief. */
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
        atomic_fetch_add_explicit(&sched.steals, 1, memory_order_relaxed);
        return g;
    }
}

/* ---- Idle Ms --------------------------------------------------------------------------------- */

/* Under sched.lock: takes one idle M off the idle set and wakes it; the watcher only when no other
 * M is idle (it then stops watching: a spinning M looks at every runnext before it sleeps). */
static void wake_idle_locked(void)
{
    struct m *m = NULL;
    for (int i = 0; i < sched.nprocs; i++) {
        if (sched.ms[i].idle) {
            m = &sched.ms[i];
            if (!m->watching)
                break;
        }
    }
    if (!m)
        return;
    if (m->watching) {
        m->watching = false;
        atomic_store(&sched.watcher, NULL);
    }
    m->idle = false;
    atomic_fetch_sub_explicit(&sched.nidle, 1, memory_order_seq_cst);
    atomic_store_explicit(&m->wake, 1, memory_order_release);
    futex_wake(&m->wake);
}

static void wake_one_idle(void)
{
    if (atomic_load_explicit(&sched.nidle, memory_order_seq_cst) == 0)
        return;
    pthread_mutex_lock(&sched.lock);
    wake_idle_locked();
    pthread_mutex_unlock(&sched.lock);
}

/* Go's wakep: work was just queued; get an idle M looking for it, unless one already is. The
 * caller's queue write comes first (the fence pairs with the one of an M going idle). */
static void wakep(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&sched.nidle, memory_order_seq_cst) == 0)
        return;
    if (atomic_load_explicit(&sched.nspinning, memory_order_seq_cst) > 0)
        return;
    wake_one_idle();
}

/* ---- Making a G runnable --------------------------------------------------------------------- */

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
        /* No fence before reading sched.watcher: a watcher seen here cannot stop watching while
         * this M runs a G, and if it leaves the role for work it wakes a successor; an M that
         * goes idle while this one runs becomes the watcher if there is none. Each looks at
         * runnext later, by when the store above is visible. */
        if (old) {
            runq_put(m, old);
            wakep();
        } else if (sched.nprocs > 1 &&
                   !atomic_load_explicit(&sched.watcher, memory_order_relaxed)) {
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

/* ---- Direct hand-off between Gs -------------------------------------------------------------- */

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
    int64_t tn = atomic_load_explicit(&sched.timer_next, memory_order_relaxed);
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

/* ---- The hook -------------------------------------------------------------------------------- */

static void *hook_current(void) { return m_self()->curg; }

/* Go's gopark: park the calling G, handing its M to the next G of its P or to g0; whichever
 * runs next commits the park (park_commit). */
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
        switch_to_g0(g);
    }
    int rc = g->park_rc;
    if (rc == 0 && deadline != CHAN_FOREVER)
        timer_cancel(g); /* an unpark won: the timer may still be armed */
    return rc;
}

/* struct chan_sched's park: libchan's waiter is noted for the deadlock report. */
static int hook_park(void *task, int64_t deadline)
{
    struct g *g = task;
    g->waiter = waiter_parking(); /* what it waits on, for the deadlock report */
    int rc = g_park(g, deadline);
    g->waiter = NULL;
    return rc;
}

/* struct chan_sched's unpark (Go's goready): from any thread, or the permit if g still runs. */
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

/* Go's park_m, on g0 or on the G that g handed its M to, after g switched out asking to park:
 * make it PARKED (a new seq), unless an unpark came while it was switching out; then arm its
 * timer. true: g must run again at once. */
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

/* ---- G descriptors --------------------------------------------------------------------------- */

/* Go's gfput: an exited G keeps its stack for the next chan_mpg_go. */
static void g_release(struct g *g)
{
    pthread_mutex_lock(&sched.gmu);
    g->next_free = sched.free_gs;
    sched.free_gs = g;
    pthread_mutex_unlock(&sched.gmu);
}

/* Go's gfget, or malg for a new descriptor and stack. */
static struct g *g_alloc(void)
{
    pthread_mutex_lock(&sched.gmu);
    struct g *g = sched.free_gs;
    if (g) {
        sched.free_gs = g->next_free;
        pthread_mutex_unlock(&sched.gmu);
        fiber_reuse(&g->fiber);
        return g;
    }
    /* A new descriptor: the timer heap grows first, so that arming a timer never fails. */
    pthread_mutex_lock(&sched.tlock);
    if (sched.timers.cap < sched.ngs + 1) {
        size_t cap = sched.timers.cap ? sched.timers.cap * 2 : 256;
        struct heap_node **a = malloc(cap * sizeof *a);
        if (!a) {
            pthread_mutex_unlock(&sched.tlock);
            pthread_mutex_unlock(&sched.gmu);
            return NULL;
        }
        free(heap_move(&sched.timers, a, cap));
    }
    pthread_mutex_unlock(&sched.tlock);
    g = calloc(1, sizeof *g);
    if (!g || fiber_make(&g->fiber) != 0) {
        free(g);
        pthread_mutex_unlock(&sched.gmu);
        return NULL;
    }
    sched.ngs++;
    g->allnext = sched.all_gs;
    sched.all_gs = g;
    pthread_mutex_unlock(&sched.gmu);
    heap_node_init(&g->timer);
    return g;
}

/* ---- The scheduler loop ---------------------------------------------------------------------- */

static uint64_t rnd(struct m *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

/* Go's stealWork: half the ring of the first P, in random order, that has runnable Gs. */
static struct g *steal_round(struct m *m)
{
    int n = sched.nprocs;
    int start = (int)(rnd(m) % (uint64_t)n);
    for (int i = 0; i < n; i++) {
        struct m *v = &sched.ms[(start + i) % n];
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
    atomic_fetch_add_explicit(&sched.steals, 1, memory_order_relaxed);
    return g;
}

/* The last thing a spinning M tries (Go's last stealWork round), and what the watcher looks at. */
static struct g *steal_runnext_round(struct m *m)
{
    int n = sched.nprocs;
    int start = (int)(rnd(m) % (uint64_t)n);
    for (int i = 0; i < n; i++) {
        struct m *v = &sched.ms[(start + i) % n];
        if (v == m)
            continue;
        struct g *g = runq_steal_next(&v->p);
        if (g)
            return g;
    }
    return NULL;
}

bool any_work(bool runnext)
{
    if (!gq_empty())
        return true;
    for (int i = 0; i < sched.nprocs; i++) {
        struct p *p = &sched.ms[i].p;
        if (!runq_ring_empty(p) ||
            (runnext && atomic_load_explicit(&p->runnext, memory_order_acquire)))
            return true;
    }
    return false;
}

/* Go's stopm: sleeps on m->wake until woken, the earliest timer, or stop.
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
 * Its sleep, sched.watch_ns, doubles at each look from WATCH_MIN_NS up to WATCH_MAX_NS (Go's
 * sysmon backs off the same way, to the same 10 ms), and starts again from the bottom only once
 * every M has been idle, not each time the role passes to another M: each look costs the Ps it
 * watches. Whenever their M has been preempted by the OS (or its vCPU by the host) for longer
 * than the pause, a look takes its runnext; a ping-pong split that way meets again at the next
 * hop, yet with looks every millisecond its round trips took half as long again on a loaded
 * machine. Returns true when the watcher woke to look (nobody woke it). */
static bool m_idle(struct m *m)
{
    pthread_mutex_lock(&sched.lock);
    if (atomic_load(&sched.stopping) || !gq_empty()) {
        pthread_mutex_unlock(&sched.lock);
        return false;
    }
    atomic_store_explicit(&m->wake, 0, memory_order_relaxed);
    m->idle = true;
    int nidle = atomic_fetch_add_explicit(&sched.nidle, 1, memory_order_seq_cst) + 1;
    if (nidle == sched.nprocs)
        deadlock_recheck_locked();
    struct m *w = atomic_load(&sched.watcher);
    if (nidle < sched.nprocs && !w) {
        atomic_store(&sched.watcher, m);
        m->watching = true;
    } else if (nidle == sched.nprocs) {
        if (w == m) {
            atomic_store(&sched.watcher, NULL); /* nobody runs Gs: no runnext can fill */
            m->watching = false;
        }
        sched.watch_ns = WATCH_MIN_NS;
    }
    int64_t deadline = atomic_load_explicit(&sched.timer_next, memory_order_acquire);
    if (m->watching) {
        int64_t look = chan_now() + sched.watch_ns;
        if (look < deadline)
            deadline = look;
    }
    pthread_mutex_unlock(&sched.lock);
    /* Pairs with wakep's fence: either it sees this M idle, or this sees its work. A G put in
     * runnext without a wake-up is the watcher's to find (see ready). */
    atomic_thread_fence(memory_order_seq_cst);
    if (!any_work(false) && !atomic_load(&sched.stopping))
        futex_wait(&m->wake, 0, deadline); /* woken, timed out or spurious: look */
    pthread_mutex_lock(&sched.lock);
    bool look = m->idle && m->watching;
    if (m->idle) {
        m->idle = false;
        atomic_fetch_sub_explicit(&sched.nidle, 1, memory_order_seq_cst);
    }
    if (look)
        sched.watch_ns = sched.watch_ns < WATCH_MAX_NS / 2 ? 2 * sched.watch_ns : WATCH_MAX_NS;
    pthread_mutex_unlock(&sched.lock);
    return look;
}

/* m found work: if it was the watcher, it is no longer, and an idle M is woken to take over
 * (m_idle makes it the watcher if some M still runs Gs), as Go's last spinning M wakes another
 * when it finds work. Only m changes m->watching while m is not idle. */
static void watch_end(struct m *m)
{
    if (!m->watching)
        return;
    pthread_mutex_lock(&sched.lock);
    m->watching = false;
    atomic_store(&sched.watcher, NULL);
    pthread_mutex_unlock(&sched.lock);
    wakep();
}

/* Go's findrunnable: the next G for m, or NULL when the scheduler stops. */
static struct g *find_runnable(struct m *m)
{
    bool look = false; /* the watcher woke to look: one round, no spinning */
    for (;;) {
        if (atomic_load_explicit(&sched.stopping, memory_order_relaxed))
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
        atomic_fetch_add_explicit(&sched.nspinning, 1, memory_order_seq_cst);
        for (int r = 0; r < (look ? 1 : SPIN_ROUNDS) && !g; r++) {
            if (sched.nprocs > 1)
                g = steal_round(m);
            if (!g)
                g = gq_pop();
            if (!g) {
                for (int i = 0; i < 64; i++)
                    caa_cpu_relax();
                if (atomic_load_explicit(&sched.timer_next, memory_order_relaxed) <= chan_now())
                    break;
            }
        }
        if (!g && sched.nprocs > 1)
            g = steal_runnext_round(m);
        atomic_fetch_sub_explicit(&sched.nspinning, 1, memory_order_seq_cst);
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

/* Go's execute, and what schedule does when the G switches back: runs g, then any G that
 * parking Gs hand the M to directly, until one returns to g0 asking to park (and no unpark came
 * meanwhile), to yield or to exit. */
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
            if (atomic_fetch_sub_explicit(&sched.live, 1, memory_order_acq_rel) == 1)
                waiters_wake();
            return;
        default:
            __builtin_trap();
        }
    }
}

/* Go's mstart and schedule loop, on the M's own thread stack (g0). */
static void *m_main(void *arg)
{
    struct m *m = arg;
    m_set(m);
    chan_sched_set(&mpg_hook);
    if (m->cpuset)
        hwloc_set_cpubind(sched.topo, m->cpuset, HWLOC_CPUBIND_THREAD);
    fiber_host_init(&m->g0);
    struct g *g;
    while ((g = find_runnable(m))) {
        watch_end(m);
        execute(m, g);
    }
    chan_sched_set(NULL);
    m_set(NULL);
    return NULL;
}

/* ---- The API --------------------------------------------------------------------------------- */

static int default_nprocs(hwloc_topology_t topo)
{
    int n = topo ? hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) : 0;
    if (n <= 0 && topo)
        n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    return n > 0 ? n : 1;
}

static void free_all(void)
{
    for (struct g *g = sched.all_gs, *nx; g; g = nx) {
        nx = g->allnext;
        fiber_destroy(&g->fiber);
        free(g);
    }
    fiber_pool_free();
    sched.all_gs = sched.free_gs = NULL;
    sched.ngs = 0;
    free(sched.timers.a);
    sched.timers = (struct heap){0};
    if (sched.ms) {
        for (int i = 0; i < sched.nprocs; i++)
            if (sched.ms[i].cpuset)
                hwloc_bitmap_free(sched.ms[i].cpuset);
        free(sched.ms);
        sched.ms = NULL;
    }
    if (sched.topo) {
        hwloc_topology_destroy(sched.topo);
        sched.topo = NULL;
    }
}

static void stop_ms(int started)
{
    atomic_store(&sched.stopping, true);
    pthread_mutex_lock(&sched.lock);
    for (int i = 0; i < started; i++) {
        atomic_store(&sched.ms[i].wake, 1);
        futex_wake(&sched.ms[i].wake);
    }
    pthread_mutex_unlock(&sched.lock);
    for (int i = 0; i < started; i++)
        pthread_join(sched.ms[i].thread, NULL);
}

int chan_mpg_start_config(const struct chan_mpg_config *cfg)
{
    struct chan_mpg_config c = cfg ? *cfg : (struct chan_mpg_config){0};
    if (c.nprocs < 0 || c.nprocs > 1024)
        return -EINVAL;
    bool expected = false;
    if (!atomic_compare_exchange_strong(&sched.running, &expected, true))
        return -EALREADY;
    if (hwloc_topology_init(&sched.topo) != 0 || hwloc_topology_load(sched.topo) != 0) {
        if (sched.topo)
            hwloc_topology_destroy(sched.topo);
        sched.topo = NULL;
    }
    sched.nprocs = c.nprocs ? c.nprocs : default_nprocs(sched.topo);
    size_t ss = c.stack_size ? c.stack_size : CHAN_MPG_STACK_DEFAULT;
    fiber_pool_init(ss < CHAN_MPG_STACK_MIN ? CHAN_MPG_STACK_MIN : ss, c.guard_max);
    sched.bind = !c.nobind && sched.topo;
    atomic_store(&sched.stopping, false);
    atomic_store(&sched.nidle, 0);
    atomic_store(&sched.nspinning, 0);
    atomic_store(&sched.watcher, NULL);
    sched.watch_ns = WATCH_MIN_NS;
    atomic_store(&sched.live, 0);
    atomic_store(&sched.spawned, 0);
    atomic_store(&sched.steals, 0);
    atomic_store(&sched.ndeadlocks, 0);
    atomic_store(&sched.next_id, 0);
    atomic_store(&sched.timer_next, CHAN_FOREVER);
    cds_wfcq_init(&sched.gq_head, &sched.gq_tail);
    if (posix_memalign((void **)&sched.ms, 128, (size_t)sched.nprocs * sizeof *sched.ms) != 0) {
        sched.ms = NULL;
        free_all();
        atomic_store(&sched.running, false);
        return -ENOMEM;
    }
    memset(sched.ms, 0, (size_t)sched.nprocs * sizeof *sched.ms);
    int ncores = sched.topo ? hwloc_get_nbobjs_by_type(sched.topo, HWLOC_OBJ_CORE) : 0;
    for (int i = 0; i < sched.nprocs; i++) {
        struct m *m = &sched.ms[i];
        m->id = i;
        m->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        if (sched.bind && ncores > 0) {
            hwloc_obj_t core = hwloc_get_obj_by_type(sched.topo, HWLOC_OBJ_CORE, i % ncores);
            if (core && core->cpuset)
                m->cpuset = hwloc_bitmap_dup(core->cpuset);
        }
    }
    for (int i = 0; i < sched.nprocs; i++) {
        int err = pthread_create(&sched.ms[i].thread, NULL, m_main, &sched.ms[i]);
        if (err) {
            stop_ms(i);
            free_all();
            atomic_store(&sched.running, false);
            return -err;
        }
    }
    deadlock_watch_timers(true);
    return 0;
}

int chan_mpg_start(int nprocs)
{
    struct chan_mpg_config c = {.nprocs = nprocs};
    return chan_mpg_start_config(&c);
}

/* Go's newproc. */
int64_t chan_mpg_go(void (*fn)(void *), void *arg)
{
    if (!fn || !atomic_load(&sched.running) || atomic_load(&sched.stopping))
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
    g->id = atomic_fetch_add(&sched.next_id, 1) + 1;
    /* Keep seq (stale timers and wakers compare it); a fresh G starts RUN without a permit. */
    atomic_store(&g->wake, atomic_load(&g->wake) & ~(uint64_t)W_MASK);
    atomic_store(&g->live, true);
    fiber_prepare(&g->fiber, g_main, g);
    atomic_fetch_add(&sched.live, 1);
    atomic_fetch_add_explicit(&sched.spawned, 1, memory_order_relaxed);
    int64_t id = g->id;
    ready(g);
    return id;
}

int64_t chan_mpg_self(void)
{
    struct m *m = m_self();
    return m && m->curg ? m->curg->id : 0;
}

/* Go's Gosched. */
void chan_mpg_yield(void)
{
    struct m *m = m_self();
    if (!m || !m->curg) {
        sched_yield();
        return;
    }
    struct g *g = m->curg;
    g->req = REQ_YIELD;
    switch_to_g0(g);
}

/* Go's timeSleep, to an absolute deadline. */
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

int chan_mpg_stop(void)
{
    if (!atomic_load(&sched.running) || m_self())
        return -EINVAL;
    if (atomic_load(&sched.live) > 0)
        return -EBUSY;
    deadlock_watch_timers(false);
    stop_ms(sched.nprocs);
    free_all();
    atomic_store(&sched.running, false);
    return 0;
}

void chan_mpg_stats(struct chan_mpg_stats *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&sched.gmu);
    fiber_pool_stats(&st->stacks, &st->stacks_guarded);
    pthread_mutex_unlock(&sched.gmu);
    st->spawned = atomic_load(&sched.spawned);
    int64_t live = atomic_load(&sched.live);
    st->live = live > 0 ? (uint64_t)live : 0;
    st->steals = atomic_load(&sched.steals);
    st->deadlocks = atomic_load(&sched.ndeadlocks);
    st->nprocs = sched.nprocs;
}

