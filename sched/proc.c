/* SPDX-License-Identifier: MIT */
/*
 * proc.c - libchan-mpg's scheduling, after Go's runtime/proc.go: Ps and their run queues,
 * stealing, the pool of Ms and the idle Ps and Ms, the timers of parked Gs, system calls
 * (entersyscall, exitsyscall), the hook through which libchan parks and readies Gs (struct
 * chan_sched), the scheduler loop, and the API. The structures and their invariants are in
 * sched_internal.h; the stacks and the switch in fiber.h and fiber.c; the monitor thread (Ps
 * held in system calls, Gs stuck behind a G that keeps its M) in sysmon.c; the deadlock
 * condition and its report in deadlock.c.
 *
 * Read top to bottom: the current M; switching between g0 and Gs; the timer heaps, one per P;
 * the global and local run queues; idle Ps and Ms (startm, wakep); ready and the direct
 * hand-off; system calls; the hook (gopark, goready); G descriptors; the scheduler loop
 * (findrunnable, stopm, execute); the API.
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urcu/arch.h>
#include <urcu/list.h>
#include <urcu/wfcqueue.h>

#include "sched/sched_internal.h"

struct schedt sched = {
    .life = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
    .gmu = PTHREAD_MUTEX_INITIALIZER,
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

/* errno is a thread-local too, and glibc's __errno_location is declared const: a caller may
 * keep its result across a call. Set it here, out of line, on the thread the G runs on now. */
NOINLINE static void errno_set(int e)
{
    __asm__ volatile("" ::: "memory");
    errno = e;
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

/* ---- Timers: parked Gs by deadline, a heap per P (time/heap.h), under that P's tlock -------- */

/* Go 1.14's timers: each P keeps the timers of the Gs that parked on it, so that a park with a
 * deadline and its cancel take a lock that stays in that P's core (one shared lock was a line
 * every core wrote twice per operation). The owner of a P runs its due timers at each schedule
 * (Go's checkTimers); an M out of work runs every P's (timers_steal, Go's stealWork), sysmon
 * those overdue (a P whose G keeps its M); the idle M that watches the timers (sched.timer_m)
 * sleeps until the earliest of all Ps (timers_earliest), and a timer armed earlier than that
 * wakes it (timer_arm, Go's wakeNetPoller). A G woken early removes its timer from the heap
 * it went in (g->tp), whoever holds that P now: Go marks it deleted for the owner to clean;
 * here the index each timer keeps (heap.h) takes it out at once. */

static struct g *g_of_timer(struct heap_node *n)
{
    return (struct g *)((char *)n - offsetof(struct g, timer));
}

/* Under p->tlock: p's earliest deadline for the readers without the lock, its heap's or its
 * spill's. A removal only moves timer0 later, which nobody need be told (stored release); an
 * arm that moves it earlier stores it seq_cst (timer_arm). */
static inline void timer0_update(struct p *p, memory_order mo)
{
    struct heap_node *first = heap_min(&p->timers);
    int64_t w = first ? first->when : CHAN_FOREVER;
    if (__builtin_expect(p->spill_when < w, 0))
        w = p->spill_when;
    atomic_store_explicit(&p->timer0, w, mo);
}

bool (*timer_grow_fail_hook)(void);

/* Under p->tlock: room for one more timer in p's heap, grown (doubled) if it must be. false
 * without memory. */
static inline bool timer_room(struct p *p)
{
    if (p->timers.len < p->timers.cap)
        return true;
    size_t cap = p->timers.cap ? p->timers.cap * 2 : TIMERS_MIN;
    struct heap_node **a =
        timer_grow_fail_hook && timer_grow_fail_hook() ? NULL : malloc(cap * sizeof *a);
    if (!a)
        return false;
    free(heap_move(&p->timers, a, cap));
    return true;
}

/* Under p->tlock: halves p's heap while it is a quarter full or less, down to TIMERS_MIN slots
 * (a burst of timed waits leaves a heap sized for its peak). Called where it costs the fast
 * path nothing: after a firing (timers_fire) and when the P's M runs out of work (m_idle),
 * not at each cancel. Without memory for the smaller array the heap stays as it is. */
static void timers_shrink_locked(struct p *p)
{
    size_t cap = p->timers.cap;
    while (cap > TIMERS_MIN && p->timers.len <= cap / 4)
        cap /= 2;
    if (cap == p->timers.cap)
        return;
    struct heap_node **a = malloc(cap * sizeof *a);
    if (a)
        free(heap_move(&p->timers, a, cap));
}

/* ---- The spill: a P's timers that found its heap full and no memory to grow it --------------
 *
 * Arming never fails: a G whose timer finds no room (the heap must grow and malloc says no) is
 * linked into its P's spill instead, a list through the G (g->spill: no allocation), its
 * heap_node marked TIMER_SPILLED. Before, such a G was woken at once with a time-out, which
 * libchan takes as spurious before the deadline: it parked again, found no room again, and so
 * on, a core burnt until memory came back. The spill is in timer0 (its earliest deadline,
 * spill_when, or one before it), so the same runners see it: timers_fire fires its due Gs and
 * moves the others into the heap once it has room again. Unsorted: only memory pressure fills
 * it, and each pass over it is one firing. */

static void spill_push(struct p *p, struct g *g)
{
    g->timer.idx = TIMER_SPILLED;
    cds_list_add(&g->spill, &p->spill);
    p->nspill++;
    if (g->timer.when < p->spill_when)
        p->spill_when = g->timer.when;
    COUNT(timer_spill);
}

/* g is in p's spill: out of it. spill_when stays as early as it was while the spill holds
 * others (the next firing sets it right). */
static void spill_remove(struct p *p, struct g *g)
{
    cds_list_del(&g->spill);
    g->timer.idx = HEAP_NONE;
    if (--p->nspill == 0)
        p->spill_when = CHAN_FOREVER;
}

static void timer_kick(void);

/* Go's addtimer, by park_commit on the M that holds p (g->tp): arms g's timer on p's heap (its
 * spill when the heap cannot grow), unless g has already been woken (its wake word moved on).
 * A timer earlier than p's earliest is stored in timer0 seq_cst, before the read of
 * sched.timer_watch (seq_cst too), as stopm stores that word before it reads every P's timer0:
 * one of the two sees the other; and if it is earlier than the deadline the timer M sleeps
 * until, it wakes that M (Go's wakeNetPoller). */
static void timer_arm(struct p *p, struct g *g, int64_t when, uint64_t parked_word)
{
    bool earliest = false;
    pthread_mutex_lock(&p->tlock);
    if (atomic_load_explicit(&g->wake, memory_order_acquire) == parked_word) {
        g->timer.when = when;
        g->timer_word = parked_word;
        if (__builtin_expect(timer_room(p), 1))
            heap_push(&p->timers, &g->timer);
        else
            spill_push(p, g);
        COUNT(timer_arm);
        earliest = when < atomic_load_explicit(&p->timer0, memory_order_relaxed);
        if (earliest)
            atomic_store_explicit(&p->timer0, when, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&p->tlock);
    if (earliest && when < atomic_load_explicit(&sched.timer_watch, memory_order_seq_cst)) {
        COUNT(timer_kick);
        timer_kick();
    }
}

/* By g, back from a park that an unpark or the netpoller ended: its timer may still be armed,
 * on the heap (or in the spill) of the P it parked on, which another M may hold now. */
static void timer_cancel(struct g *g)
{
    struct p *p = g->tp;
    COUNT(timer_cancel);
#ifdef CHAN_COUNTERS
    if (m_self()->p != p)
        COUNT(timer_remote);
#endif
    pthread_mutex_lock(&p->tlock);
    if (heap_queued(&g->timer)) {
        if (__builtin_expect(g->timer.idx == TIMER_SPILLED, 0)) {
            spill_remove(p, g);
            timer0_update(p, memory_order_release);
        } else {
            bool first = heap_min(&p->timers) == &g->timer;
            heap_remove(&p->timers, &g->timer);
            if (first)
                timer0_update(p, memory_order_release);
        }
    }
    pthread_mutex_unlock(&p->tlock);
}

size_t g_timers_armed(void)
{
    size_t n = 0;
    for (int i = 0; i < sched.nprocs; i++) {
        struct p *p = &sched.ps[i];
        pthread_mutex_lock(&p->tlock);
        n += p->timers.len + p->nspill;
        pthread_mutex_unlock(&p->tlock);
    }
    return n;
}

int64_t timers_earliest(void)
{
    int64_t t = CHAN_FOREVER;
    for (int i = 0; i < sched.nprocs; i++) {
        int64_t w = atomic_load_explicit(&sched.ps[i].timer0, memory_order_seq_cst);
        if (w < t)
            t = w;
    }
    return t;
}

/* Under g->tp's tlock, g's timer just taken out of its heap or spill: g times out if it is
 * still parked for the park its timer was armed for (else an unpark or the netpoller won), and
 * then goes on *list. Returns 1 if it did. */
static int timer_fire(struct g *g, struct g **list)
{
    uint64_t v = g->timer_word;
    if (!atomic_compare_exchange_strong_explicit(&g->wake, &v, (v & ~(uint64_t)W_MASK) | W_RUN,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return 0;
    g->park_rc = -ETIMEDOUT;
    g->next_free = *list; /* borrowed as a list link: the G is not free */
    *list = g;
    return 1;
}

/* Under p->tlock: fires the due timers of p's spill, moves the others into the heap while it
 * has room (memory came back), and sets spill_when to the earliest left. */
static int spill_fire(struct p *p, int64_t now, struct g **list)
{
    int n = 0;
    int64_t earliest = CHAN_FOREVER;
    struct g *g, *tmp;
    cds_list_for_each_entry_safe(g, tmp, &p->spill, spill)
    {
        if (g->timer.when <= now) {
            spill_remove(p, g);
            n += timer_fire(g, list);
        } else if (timer_room(p)) {
            spill_remove(p, g);
            heap_push(&p->timers, &g->timer);
        } else if (g->timer.when < earliest) {
            earliest = g->timer.when;
        }
    }
    p->spill_when = earliest;
    return n;
}

int timers_fire(struct p *p, int64_t now, struct g **list)
{
    int n = 0;
    pthread_mutex_lock(&p->tlock);
    struct heap_node *first;
    while ((first = heap_min(&p->timers)) && first->when <= now) {
        heap_remove(&p->timers, first);
        n += timer_fire(g_of_timer(first), list);
    }
    if (__builtin_expect(p->nspill != 0, 0))
        n += spill_fire(p, now, list);
    timer0_update(p, memory_order_release);
    timers_shrink_locked(p);
    pthread_mutex_unlock(&p->tlock);
    return n;
}

static void runq_put(struct p *p, struct g *g);

/* Go's checkTimers: if src has a timer due, fires src's due timers: each G still parked for
 * the park its timer was armed for times out (park_rc -ETIMEDOUT). The first goes on the ring
 * of p, the caller's P (src itself, or another P's heap for an M out of work), which runs it;
 * the others are injected as one batch (inject: some to the global queue with an M for each
 * idle P, the rest on p's ring). Go readies each timer's G on its own (goready: runnext, then
 * wakep), which wakes one idle P at a time. Returns how many. */
static int timers_run_from(struct p *p, struct p *src, int64_t now)
{
    if (now < atomic_load_explicit(&src->timer0, memory_order_relaxed))
        return 0;
    if (src != p)
        COUNT(timer_steal);
    struct g *woken = NULL;
    int n = timers_fire(src, now, &woken);
    if (woken) {
        struct g *g = woken;
        woken = g->next_free;
        g->next_free = NULL;
        runq_put(p, g);
        inject(p, woken);
    }
    return n;
}

/* The due timers of the caller's own P p (Go's checkTimers(pp) in schedule). */
static int timers_run(struct p *p)
{
    if (atomic_load_explicit(&p->timer0, memory_order_relaxed) == CHAN_FOREVER)
        return 0;
    return timers_run_from(p, p, chan_now());
}

/* An M out of work (Go's stealWork, its last round): the due timers of every P, for p to run
 * (timers_run_from). A P whose owner runs a G that keeps its M, or an idle P, has nobody else
 * to run them. */
static int timers_steal(struct p *p)
{
    int64_t now = chan_now();
    int n = 0;
    for (int i = 0; i < sched.nprocs; i++)
        n += timers_run_from(p, &sched.ps[i], now);
    return n;
}

/* ---- The global run queue (liburcu's wait-free concurrent queue) ----------------------------- */

/* The chain first..last of n Gs, linked through qnode, onto the global queue's tail: one
 * exchange, then the count. */
static inline void gq_append(struct g *first, struct g *last, int n)
{
    RACE_IGNORE_BEGIN();
    ___cds_wfcq_append(&sched.gq_head, &sched.gq_tail, &first->qnode, &last->qnode);
    RACE_IGNORE_END();
    COUNT(gq_put);
    atomic_fetch_add_explicit(&sched.gq_len, n, memory_order_relaxed);
}

/* Go's globrunqputbatch: the n Gs of gs (n >= 1), in their order, with one exchange on the
 * queue's tail: linked to each other first, then appended as one chain (gq_append: liburcu's
 * enqueue is that append, of a chain of one; its splice would add an exchange on a source
 * queue). The count comes after the Gs are linked, so that gq_get never counts a G it cannot
 * reach (it may reach one not yet counted). From any thread, wait-free. */
static inline void gq_push_batch(struct g *const *gs, int n)
{
    for (int i = 0; i < n; i++)
        RACE_RELEASE(gs[i]);
    RACE_IGNORE_BEGIN();
    for (int i = 0; i + 1 < n; i++)
        gs[i]->qnode.next = &gs[i + 1]->qnode;
    gs[n - 1]->qnode.next = NULL;
    RACE_IGNORE_END();
    gq_append(gs[0], gs[n - 1], n);
}

/* gq_push_batch for the Gs of list (at least one, linked through next_free, which is cleared):
 * one exchange on the queue's tail for the whole list, however long. Returns how many. */
static int gq_push_list(struct g *list)
{
    struct g *g = list, *last;
    int n = 0;
    do {
        struct g *next = g->next_free;
        g->next_free = NULL;
        RACE_RELEASE(g);
        RACE_IGNORE_BEGIN();
        g->qnode.next = next ? &next->qnode : NULL;
        RACE_IGNORE_END();
        last = g;
        g = next;
        n++;
    } while (g);
    gq_append(list, last, n);
    return n;
}

/* Go's globrunqput. */
void gq_push(struct g *g) { gq_push_batch(&g, 1); }

bool gq_empty(void)
{
    RACE_IGNORE_BEGIN();
    bool e = cds_wfcq_empty(&sched.gq_head, &sched.gq_tail);
    RACE_IGNORE_END();
    return e;
}

static void runq_put_batch(struct p *p, struct g *const *gs, int n);

/* Go's globrunqget: for p, whose ring is empty unless max is 1, a batch of the global queue in
 * one hold of its dequeue lock: the first G, to run, and the rest into p's ring. The batch is
 * p's share, len / nprocs + 1 (a burst queued globally is spread over the Ps that look, not
 * taken by the first), at most max (0: no bound) and half a ring. One G at a time, a spawn
 * storm from plain threads took the lock once per G on every P that ran one. The Gs keep the
 * time they were last queued in a ring (runq_put): they have waited already, and thieves may
 * take them as they would have taken them from the global queue. */
static struct g *gq_get(struct p *p, int max)
{
    if (gq_empty())
        return NULL;
    struct g *batch[RQ_SIZE / 2];
    int n = 0;
    RACE_IGNORE_BEGIN();
    cds_wfcq_dequeue_lock(&sched.gq_head, &sched.gq_tail);
    long len = atomic_load_explicit(&sched.gq_len, memory_order_relaxed);
    long want = len / sched.nprocs + 1;
    if (want > len)
        want = len;
    if (max > 0 && want > max)
        want = max;
    if (want > RQ_SIZE / 2)
        want = RQ_SIZE / 2;
    if (want < 1)
        want = 1; /* a G not counted yet (gq_push) */
    for (; n < want; n++) {
        struct cds_wfcq_node *node = __cds_wfcq_dequeue_blocking(&sched.gq_head, &sched.gq_tail);
        if (!node)
            break;
        batch[n] = caa_container_of(node, struct g, qnode);
    }
    atomic_fetch_sub_explicit(&sched.gq_len, n, memory_order_relaxed);
    cds_wfcq_dequeue_unlock(&sched.gq_head, &sched.gq_tail);
    RACE_IGNORE_END();
    COUNT(gq_lock);
    if (n == 0)
        return NULL;
    for (int i = 0; i < n; i++) {
        RACE_ACQUIRE(batch[i]);
        COUNT(gq_get);
    }
    runq_put_batch(p, batch + 1, n - 1);
    return batch[0];
}

/* ---- Local run queues (Go's runqput / runqget / runqsteal) ----------------------------------- */

/* Owner only. A full ring sends half of itself and g to the global queue as one batch (Go's
 * runqputslow). The time it is queued is what thieves go by (runq_steal). */
static void runq_put(struct p *p, struct g *g)
{
    atomic_store_explicit(&g->queued, chan_now(), memory_order_relaxed);
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
        if (t - h < RQ_SIZE) {
            atomic_store_explicit(&p->ring[t % RQ_SIZE], g, memory_order_relaxed);
            atomic_store_explicit(&p->tail, t + 1, memory_order_release);
            return;
        }
        uint32_t n = (t - h) / 2;
        struct g *batch[RQ_SIZE / 2 + 1];
        for (uint32_t i = 0; i < n; i++)
            batch[i] = atomic_load_explicit(&p->ring[(h + i) % RQ_SIZE], memory_order_relaxed);
        if (!atomic_compare_exchange_strong_explicit(&p->head, &h, h + n, memory_order_release,
                                                     memory_order_relaxed))
            continue; /* a thief took some: there is room now */
        batch[n] = g;
        gq_push_batch(batch, (int)n + 1);
        return;
    }
}

/* Owner only: n Gs into p's ring in one publication, each keeping the time it was queued (for
 * gq_get); what does not fit goes through runq_put, which sends half the ring to the global
 * queue (Go's runqputbatch). */
static void runq_put_batch(struct p *p, struct g *const *gs, int n)
{
    uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
    int k = 0;
    for (; k < n && t + (uint32_t)k - h < RQ_SIZE; k++)
        atomic_store_explicit(&p->ring[(t + (uint32_t)k) % RQ_SIZE], gs[k], memory_order_relaxed);
    atomic_store_explicit(&p->tail, t + (uint32_t)k, memory_order_release);
    for (; k < n; k++)
        runq_put(p, gs[k]);
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

bool runq_empty(struct p *p)
{
    return runq_ring_empty(p) && !atomic_load_explicit(&p->runnext, memory_order_acquire);
}

/* The owner of p, a thief, takes half of victim's ring into p's (empty) ring and returns one G
 * to run (Go's runqsteal). The victim's runnext is left alone here: see steal_runnext_round.
 *
 * Unlike Go, only from a ring whose oldest G has waited STEAL_AGE_NS (now: the thief's clock).
 * Gs that hand values to each other over one channel (mpmc: 8 Gs on 2 Ps) keep a few Gs in
 * their P's ring, each run within microseconds by the owner, which runs its runnext chain and
 * then its ring. Taken at once, they settled on both Ps for good: every message then moved the
 * channel's lock, the partner's sudog and a G's stack across the cores (~105 ns a line on this
 * VM), 2-5x the time of the same Gs on one P. A G that waits longer than that is work its P
 * cannot keep up with (a G that computes, or many Gs queued), and is taken as in Go. */
static struct g *runq_steal(struct p *p, struct p *victim, int64_t now)
{
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
        /* The head may be taken meanwhile: its descriptor stays readable (pooled, never
         * freed before chan_mpg_stop), and the CAS below decides. */
        struct g *oldest = atomic_load_explicit(&victim->ring[h % RQ_SIZE], memory_order_relaxed);
        if (now - atomic_load_explicit(&oldest->queued, memory_order_relaxed) < STEAL_AGE_NS)
            return NULL;
        uint32_t mt = atomic_load_explicit(&p->tail, memory_order_relaxed);
        for (uint32_t i = 0; i < n; i++) {
            struct g *g =
                atomic_load_explicit(&victim->ring[(h + i) % RQ_SIZE], memory_order_relaxed);
            atomic_store_explicit(&p->ring[(mt + i) % RQ_SIZE], g, memory_order_relaxed);
        }
        if (!atomic_compare_exchange_strong_explicit(&victim->head, &h, h + n, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        /* Keep n - 1 of them, queued anew in p's ring (else the victim, run dry, would take them
         * back at once), run the last. */
        for (uint32_t i = 0; i + 1 < n; i++)
            atomic_store_explicit(
                &atomic_load_explicit(&p->ring[(mt + i) % RQ_SIZE], memory_order_relaxed)->queued,
                now, memory_order_relaxed);
        struct g *g = atomic_load_explicit(&p->ring[(mt + n - 1) % RQ_SIZE], memory_order_relaxed);
        if (n > 1)
            atomic_store_explicit(&p->tail, mt + n - 1, memory_order_release);
        atomic_fetch_add_explicit(&sched.steals, 1, memory_order_relaxed);
        COUNT(steal);
        return g;
    }
}

/* sysmon, on a P whose G keeps it: every G of its ring goes to the global queue, taken as a
 * thief takes them (a CAS on the head), so that the owner may keep putting meanwhile. */
int runq_to_global(struct p *p)
{
    struct g *batch[RQ_SIZE];
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->tail, memory_order_acquire);
        uint32_t n = t - h;
        if (n == 0)
            return 0;
        if (n > RQ_SIZE)
            continue; /* inconsistent snapshot: read again */
        for (uint32_t i = 0; i < n; i++)
            batch[i] = atomic_load_explicit(&p->ring[(h + i) % RQ_SIZE], memory_order_relaxed);
        if (!atomic_compare_exchange_strong_explicit(&p->head, &h, h + n, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        gq_push_batch(batch, (int)n);
        return (int)n;
    }
}

/* ---- Idle Ps and Ms (Go's pidleget, pidleput, mget, newm, startm, wakep) --------------------- */

static void *m_main(void *arg);

/* Under sched.lock: an idle P, now the caller's to give to an M (status P_RUNNING), or NULL.
 * The last idle P taken wakes sysmon if it sleeps because every P was idle: with a P idle, its
 * M steals and polls the fds, and sysmon sleeps on (sysmon.c: who else wakes it). */
static struct p *pidle_get_locked(void)
{
    struct p *p = sched.pidle;
    if (!p)
        return NULL;
    sched.pidle = p->link;
    p->link = NULL;
    atomic_store_explicit(&p->status, P_RUNNING, memory_order_relaxed);
    if (atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst) == 1)
        sysmon_kick_locked();
    return p;
}

/* Under sched.lock: p, which the caller holds and no M runs, goes idle. The last P to go idle
 * may complete a deadlock: the threads in chan_mpg_wait decide again; not while a G waits on
 * an fd (no deadlock then, and a server between two requests would wake them each time): the
 * last such G leaves its wait on a P, which goes idle through here again. */
static void pidle_put_locked(struct p *p)
{
    COUNT(p_idle);
    atomic_store_explicit(&p->status, P_IDLE, memory_order_relaxed);
    p->link = sched.pidle;
    sched.pidle = p;
    if (atomic_fetch_add_explicit(&sched.npidle, 1, memory_order_seq_cst) + 1 == sched.nprocs &&
        !netpoll_waiting())
        deadlock_recheck_locked();
}

/* Go's acquirep, on m's own thread: m now holds p. With chan_mpg_config.bind (p->cpuset set), a
 * thread that moves to another P moves to that P's core (one system call; never on the way back
 * to its own P after a system call). */
static void acquirep(struct m *m, struct p *p)
{
    m->p = p;
    if (p->cpuset && m->bound != p) {
        hwloc_set_cpubind(sched.topo, p->cpuset, HWLOC_CPUBIND_THREAD);
        m->bound = p;
    }
}

/* Under sched.lock: the idle Ms (Go's mput, mget). */
static void midle_put_locked(struct m *m)
{
    cds_list_add(&m->idle, &sched.midle);
    m->on_idle = true;
    atomic_fetch_add_explicit(&sched.nmidle, 1, memory_order_relaxed);
}

static void midle_del_locked(struct m *m)
{
    cds_list_del(&m->idle);
    m->on_idle = false;
    atomic_fetch_sub_explicit(&sched.nmidle, 1, memory_order_relaxed);
    if (sched.timer_m == m) {
        sched.timer_m = NULL;
        atomic_store_explicit(&sched.timer_watch, CHAN_FOREVER, memory_order_seq_cst);
    }
}

/* The most recently idle M, but not the one that sleeps until the earliest timer while another
 * is idle: taking it for work leaves no M to wake at that timer (then sysmon starts one). */
static struct m *midle_get_locked(void)
{
    if (cds_list_empty(&sched.midle))
        return NULL;
    struct m *m = cds_list_entry(sched.midle.next, struct m, idle);
    if (m == sched.timer_m && m->idle.next != &sched.midle)
        m = cds_list_entry(m->idle.next, struct m, idle);
    midle_del_locked(m);
    return m;
}

/* Under sched.lock: wakes m, just taken off the idle Ms, with p to run, or with none (p NULL):
 * m then looks at the timers and the idle Ps itself (stopm, find_runnable). */
static void m_wake_locked(struct m *m, struct p *p)
{
    COUNT(m_wake);
    m->nextp = p;
    atomic_store_explicit(&m->wake, 1, memory_order_release);
    if (m->polling)
        netpoll_break(); /* it sleeps in epoll_wait, not on its futex */
    else
        futex_wake(&m->wake);
}

/* The thread limit, met by newm or by sysmon finding no M to hand a P to: said once on stderr.
 * This is a program's error, like Go's fatal "thread exhaustion", but here the scheduler goes
 * on with fewer hand-offs. */
void m_limit_say(void)
{
    if (!atomic_exchange(&sched.m_limit_told, true))
        fprintf(stderr,
                "libchan-mpg: %d threads (Ms), the limit: no more are made; a P whose G is "
                "in a system call now stays with it until an M is free\n",
                sched.max_m);
}

/* Go's newm, under sched.lock: a new M, on a thread of its own, to run p (and g first, if not
 * NULL), or, both NULL, idle among the idle Ms from the first (chan_mpg_start). 0, or -EAGAIN
 * at the thread limit (m_limit_say), or what pthread_create or the allocation says. */
static int newm_locked(struct p *p, struct g *g)
{
    int nm = atomic_load_explicit(&sched.nm, memory_order_relaxed);
    if (nm >= sched.max_m) {
        m_limit_say();
        return -EAGAIN;
    }
    struct m *m;
    if (posix_memalign((void **)&m, 128, sizeof *m) != 0)
        return -ENOMEM;
    memset(m, 0, sizeof *m);
    m->id = (unsigned)nm;
    m->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(nm + 1);
    CDS_INIT_LIST_HEAD(&m->idle);
    m->nextp = p;
    m->nextg = g;
    if (!p && !g) {
        /* chan_mpg_start's Ms: idle from the first (m_main sleeps at once) */
        m->born_idle = true;
        midle_put_locked(m);
    }
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (!err) {
        pthread_attr_setstacksize(&attr, M_STACK_SIZE);
        err = pthread_create(&m->thread, &attr, m_main, m);
        pthread_attr_destroy(&attr);
    }
    if (err) {
        if (m->born_idle)
            midle_del_locked(m);
        free(m);
        return -err;
    }
    m->allnext = sched.allm;
    sched.allm = m;
    atomic_store_explicit(&sched.nm, nm + 1, memory_order_relaxed);
    COUNT(m_new);
    return 0;
}

/* Go's startm, under sched.lock: an idle M, or a new one, runs p (NULL: an idle P, if there is
 * one). false when nothing was started: no idle P, or no M to be had (p then goes idle). */
static bool startm_locked(struct p *p)
{
    if (atomic_load(&sched.stopping)) {
        if (p)
            pidle_put_locked(p);
        return false;
    }
    if (!p && !(p = pidle_get_locked()))
        return false;
    struct m *m = midle_get_locked();
    if (m) {
        m_wake_locked(m, p);
        return true;
    }
    if (newm_locked(p, NULL) == 0)
        return true;
    pidle_put_locked(p);
    return false;
}

bool startm_g_locked(struct g *g)
{
    struct p *p = atomic_load(&sched.stopping) ? NULL : pidle_get_locked();
    if (!p)
        return false;
    struct m *m = midle_get_locked();
    if (m) {
        m->nextg = g;
        m_wake_locked(m, p);
        return true;
    }
    if (newm_locked(p, g) == 0)
        return true;
    pidle_put_locked(p);
    return false;
}

bool m_available(void)
{
    return atomic_load_explicit(&sched.nmidle, memory_order_relaxed) > 0 ||
           atomic_load_explicit(&sched.nm, memory_order_relaxed) < sched.max_m;
}

/* Go's wakep: work was just queued; get an M with an idle P looking for it, unless one already
 * is (spinning). The caller's queue write comes first (the fence pairs with the one of an M
 * releasing its P, m_idle). */
void wakep(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&sched.npidle, memory_order_seq_cst) == 0)
        return;
    if (atomic_load_explicit(&sched.nspinning, memory_order_seq_cst) > 0)
        return;
    COUNT(wakep);
    pthread_mutex_lock(&sched.lock);
    startm_locked(NULL);
    pthread_mutex_unlock(&sched.lock);
}

/* Go's handoffp: see sched_internal.h. Go's rules: an M for p if p or the global queue has
 * work, if nobody looks for work (no M spinning, no P idle), or if a timer of p is due; else p
 * goes idle, where a G back from its system call finds it (exitsyscall). Its later timers need
 * nobody told: the timer M sleeps until the earliest of every P's, idle or not. */
void handoffp(struct p *p)
{
    pthread_mutex_lock(&sched.lock);
    if (!runq_empty(p) || !gq_empty() ||
        atomic_load(&sched.nspinning) + atomic_load(&sched.npidle) == 0 ||
        atomic_load_explicit(&p->timer0, memory_order_acquire) <= chan_now())
        startm_locked(p);
    else
        pidle_put_locked(p);
    pthread_mutex_unlock(&sched.lock);
}

/* A timer earlier than every other was armed. The idle M that sleeps until the earliest timer
 * (sched.timer_m) sleeps until a later one: wake it to look again. With none, an idle M looks,
 * or a new one if an idle P has none. With no P idle, the Ms that hold the Ps fire the timer at
 * their next schedule (find_runnable, take_local). */
static void timer_kick(void)
{
    if (atomic_load_explicit(&sched.nmidle, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&sched.lock);
    struct m *m = sched.timer_m;
    if (!m && atomic_load(&sched.npidle) > 0 && !cds_list_empty(&sched.midle))
        m = cds_list_entry(sched.midle.next, struct m, idle);
    if (m) {
        midle_del_locked(m);
        m_wake_locked(m, NULL);
    } else if (atomic_load(&sched.npidle) > 0) {
        startm_locked(NULL);
    }
    pthread_mutex_unlock(&sched.lock);
}

/* ---- Making a G runnable --------------------------------------------------------------------- */

/* Go's ready(): g was just woken (its wake word moved to RUN by the caller). From a G holding a
 * P: g goes to runnext, to run as soon as the caller parks; the G it displaces goes to the
 * ring, and an idle P is woken for it. No M is woken for runnext: if the caller blocks in a
 * system call or spins instead of parking, an idle P's spinning M or sysmon takes g (see
 * sysmon.c), so a ping-pong costs no wake-up at all. From g0: p's ring; from a foreign thread,
 * or from a G in a system call (its M holds no P): the global queue; an idle P is woken. */
static void ready(struct g *g)
{
    struct m *m = m_self();
    struct p *p = m ? m->p : NULL;
    if (p && m->curg) {
        /* Thieves only ever take a G out of runnext: an empty one is the owner's to fill with
         * a plain store. A full one is swapped, since a thief may be taking it right now. */
        struct g *old = atomic_load_explicit(&p->runnext, memory_order_relaxed);
        if (old)
            old = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
        else
            atomic_store_explicit(&p->runnext, g, memory_order_release);
        COUNT(ready_next);
        sysmon_kick(); /* a pair that may need splitting: sysmon watches runnext */
        if (old) {
            COUNT(ready_kick);
            runq_put(p, old);
            wakep();
        }
    } else {
        if (p) {
            COUNT(ready_ring);
            runq_put(p, g);
        } else {
            COUNT(ready_global);
            gq_push(g);
        }
        wakep();
    }
}

/* ---- Direct hand-off between Gs -------------------------------------------------------------- */

/* Owner only: a plain increment, visible to thieves (steal_runnext_round) and sysmon. */
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
static struct g *runq_next(struct p *p)
{
    struct g *g = atomic_load_explicit(&p->runnext, memory_order_relaxed);
    if (g && p->runnext_streak < RUNNEXT_MAX) {
        if (runnext_take(p, g)) {
            p->runnext_streak++;
            return g;
        }
        g = NULL;
    }
    p->runnext_streak = 0;
    struct g *r = runq_get(p);
    if (r || !g)
        return r;
    return runnext_take(p, g) ? g : NULL;
}

bool runnext_grab(struct p *p, struct g *g) { return runnext_take(p, g); }

/* The next G for a parking G to switch to directly: runnext or the head of this P's ring.
 * NULL when g0 should choose instead: every GLOBAL_EVERY schedules (the global queue's turn)
 * and whenever a timer of this P is due. */
static struct g *take_local(struct p *p)
{
    if ((atomic_load_explicit(&p->schedtick, memory_order_relaxed) + 1) % GLOBAL_EVERY == 0)
        return NULL; /* find_runnable's next tick looks at the global queue first */
    schedtick_next(p);
    int64_t tn = atomic_load_explicit(&p->timer0, memory_order_relaxed);
    if (tn != CHAN_FOREVER && tn <= chan_now())
        return NULL;
    return runq_next(p);
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
            runq_put(m->p, h);
    }
}

/* ---- System calls (Go's entersyscall, exitsyscall) ------------------------------------------- */

/* Go's entersyscall: m's G is about to block in the kernel. Its P stays with m, only marked
 * P_SYSCALL (plain stores, no read-modify-write): a call that returns at once takes it back with
 * one CAS, and sysmon takes it from a call that lasts (sysmon.c: retake). From now on m holds no
 * P: a G it readies meanwhile goes to the global queue (ready). */
static void syscall_begin(struct m *m)
{
    struct p *p = m->p;
    atomic_store_explicit(&p->syscalltick,
                          atomic_load_explicit(&p->syscalltick, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    m->oldp = p;
    m->p = NULL;
    atomic_store_explicit(&m->insyscall, true, memory_order_relaxed);
    /* Release: whoever takes p by CAS sees insyscall set, and p as this M left it. */
    atomic_store_explicit(&p->status, P_SYSCALL, memory_order_release);
    sysmon_kick(); /* Go's entersyscall_sysmon: the call may last, sysmon must see it */
}

/* Go's exitsyscall0, on m's g0: g, back from its system call, found its P taken and none idle.
 * One more try under the lock; else g waits in the global queue (an M that goes idle looks
 * there under this lock first: m_idle) and m will sleep (find_runnable: stopm). true: m has a
 * P, g runs on. */
static bool exitsyscall0(struct m *m, struct g *g)
{
    pthread_mutex_lock(&sched.lock);
    struct p *p = pidle_get_locked();
    if (p)
        sysmon_kick_locked(); /* Go's exitsyscall0 */
    else
        gq_push(g);
    atomic_store_explicit(&m->insyscall, false, memory_order_relaxed);
    pthread_mutex_unlock(&sched.lock);
    if (!p)
        return false;
    acquirep(m, p);
    return true;
}

/* Go's exitsyscall: g, on m, is back from its system call and needs a P again. Its own, unless
 * sysmon took it (one CAS: Go's exitsyscallfast); else an idle one; else g goes to the global
 * queue through g0 (exitsyscall0) and resumes when an M with a P picks it: on another thread,
 * whose errno is set to the one this call began with. */
static void syscall_leave(struct m *m, struct g *g)
{
    struct p *p = m->oldp;
    m->oldp = NULL;
    uint32_t s = P_SYSCALL;
    if (atomic_compare_exchange_strong_explicit(&p->status, &s, P_RUNNING, memory_order_acquire,
                                                memory_order_relaxed)) {
        m->p = p;
        atomic_store_explicit(&m->insyscall, false, memory_order_relaxed);
        return;
    }
    int e = errno;
    pthread_mutex_lock(&sched.lock);
    p = pidle_get_locked();
    if (p) {
        atomic_store_explicit(&m->insyscall, false, memory_order_relaxed);
        sysmon_kick_locked(); /* Go's exitsyscallfast_pidle */
    }
    pthread_mutex_unlock(&sched.lock);
    if (p) {
        acquirep(m, p);
    } else {
        g->req = REQ_SYSEXIT;
        switch_to_g0(g);
    }
    errno_set(e);
}

/* The first frame of every G (Go's goexit is its return address): run the function, then leave
 * for good through g0, which recycles the G (execute). A G that returns between
 * chan_mpg_syscall_enter and exit leaves the system call first: its M needs its P back. */
static void g_main(void *arg)
{
    struct g *g = arg;
    fiber_entered();
    after_switch();
    g->fn(g->arg);
    if (g->syscall_depth) {
        g->syscall_depth = 0;
        syscall_leave(m_self(), g);
    }
    g->req = REQ_EXIT;
    fiber_exit(&g->fiber, &m_self()->g0);
}

/* ---- The hook -------------------------------------------------------------------------------- */

static void *hook_current(void) { return m_self()->curg; }

/* The G, about to park or just back from a park on fds, finds its wake word IOREADY (*v): an
 * fd it registered for became ready (netpoll.c). Takes it back to RUN; an unpark may have come
 * after it and made it NOTIFIED, which the G consumes instead. true, *v the word taken (its
 * state IOREADY or NOTIFIED), unless the word is RUN again (then false). */
static bool io_take(struct g *g, uint64_t *v)
{
    while ((*v & W_MASK) != W_RUN)
        if (atomic_compare_exchange_weak_explicit(&g->wake, v, *v & ~(uint64_t)W_MASK,
                                                  memory_order_acquire, memory_order_acquire))
            return true;
    return false;
}

static int g_park_syscall(struct g *g, int64_t deadline);

/* Go's gopark: park the calling G, handing its M to the next G of its P or to g0; whichever
 * runs next commits the park (park_commit). */
static int g_park(struct g *g, int64_t deadline)
{
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_acquire);
    if ((v & W_MASK) == W_NOTIFIED) {
        /* The unpark came first: consume the permit. Only this G leaves NOTIFIED. */
        atomic_store_explicit(&g->wake, v & ~(uint64_t)W_MASK, memory_order_relaxed);
        COUNT(park_permit);
        return 0;
    }
    if (__builtin_expect((v & W_MASK) == W_IOREADY, 0) && io_take(g, &v))
        return (v & W_MASK) == W_NOTIFIED ? 0 : PARK_IO; /* a ready fd, or the unpark after it */
    struct m *m = m_self();
    struct p *p = m->p;
    if (__builtin_expect(!p, 0))
        return g_park_syscall(g, deadline); /* a running G without a P is in a system call */
    g->req = REQ_PARK;
    g->deadline = deadline;
    g->tp = p; /* its timer goes on p's heap: park_commit runs on this M, which holds p */
    struct g *next = take_local(p);
    if (next) {
        /* Go's park goes through g0 (mcall); when the next G is at hand on this P, switch to it
         * directly and let it commit our park once our context is saved: one switch, not two. */
        COUNT(handoff);
        m->handoff = g;
        m->curg = next;
        switch_g_to_g(g, next);
    } else {
        COUNT(park_g0);
        switch_to_g0(g);
    }
    int rc = g->park_rc;
    if (rc != -ETIMEDOUT && deadline != CHAN_FOREVER)
        timer_cancel(g); /* an unpark or the netpoller won: the timer may still be armed */
    return rc;
}

/* A G may block on a channel or sleep between chan_mpg_syscall_enter and exit: it needs a P
 * for that (its M runs the P's next G), so it leaves the system call first, as exit does, and
 * enters it again when it runs again. */
static int g_park_syscall(struct g *g, int64_t deadline)
{
    unsigned depth = g->syscall_depth;
    g->syscall_depth = 0;
    syscall_leave(m_self(), g);
    int rc = g_park(g, deadline);
    syscall_begin(m_self());
    g->syscall_depth = depth;
    return rc;
}

/* Go's netpollblock, for a G whose operation waits on the n fds of fds too (a select with
 * cases on fd channels): armed with the netpoller, its park ends on an unpark (0), its deadline
 * (-ETIMEDOUT) or an fd's readiness (PARK_IO); see netpoll.c. An fd that the netpoller cannot
 * watch (no memory, no room in the epoll set) is polled by the select: every
 * NETPOLL_FALLBACK_NS the park ends in PARK_IO and the select looks again. */
#define NETPOLL_FALLBACK_NS 1000000

/* After netpoll_disarm: an fd may have become ready after the park ended otherwise (an unpark,
 * the deadline) or before it was made (netpoll_arm's poll): that readiness is not this G's to
 * keep (a later park without fds must not end in PARK_IO; the next select polls its fds anew).
 * A permit that an unpark left meanwhile (NOTIFIED) is: the operation consumes it. */
static void io_drop(struct g *g)
{
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_relaxed);
    while ((v & W_MASK) == W_IOREADY &&
           !atomic_compare_exchange_weak_explicit(&g->wake, &v, v & ~(uint64_t)W_MASK,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

static int g_park_fds(struct g *g, struct pollfd *fds, size_t n, bool edge, int64_t deadline)
{
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_acquire);
    if ((v & W_MASK) != W_RUN)
        return g_park(g, deadline); /* an unpark came first: nothing to arm */
    uint64_t seq = v >> 2;
    int rc = n ? netpoll_arm(g, seq, fds, n, edge) : -ENOMEM;
    if (rc == PARK_IO) {
        io_drop(g); /* an event may have come between the registration and its undoing */
        return PARK_IO;
    }
    if (rc < 0) {
        int64_t d = chan_now() + NETPOLL_FALLBACK_NS;
        if (d >= deadline)
            return g_park(g, deadline);
        rc = g_park(g, d);
        return rc == -ETIMEDOUT ? PARK_IO : rc;
    }
    rc = g_park(g, deadline);
    netpoll_disarm(g, seq, fds, n);
    io_drop(g);
    return rc;
}

#define PARK_FDS 8 /* the fds of a park read onto the stack; more go to the heap */

/* struct chan_sched's park: libchan's waiter is noted for the deadlock report, and its fds, if
 * it waits on any, are watched by the netpoller. */
static int hook_park(void *task, int64_t deadline)
{
    struct g *g = task;
    struct waiter *w = waiter_parking();
    g->waiter = w; /* what it waits on, for the deadlock report */
    struct pollfd stack[PARK_FDS];
    size_t n = w ? waiter_fds(w, stack, PARK_FDS) : 0;
    int rc;
    if (__builtin_expect(n == 0, 1)) {
        rc = g_park(g, deadline);
    } else if (n <= PARK_FDS) {
        rc = g_park_fds(g, stack, n, waiter_fds_edge(w), deadline);
    } else {
        struct pollfd *fds = malloc(n * sizeof *fds);
        if (fds)
            waiter_fds(w, fds, n);
        rc = g_park_fds(g, fds, fds ? n : 0, waiter_fds_edge(w), deadline); /* none: polled */
        free(fds);
    }
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
                                                      memory_order_relaxed)) {
                COUNT(unpark_run);
                return;
            }
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
        case W_IOREADY:
            /* The unpark wins over the fd: the waker has completed the operation. */
            nv = (v & ~(uint64_t)W_MASK) | W_NOTIFIED;
            if (atomic_compare_exchange_weak_explicit(&g->wake, &v, nv, memory_order_release,
                                                      memory_order_relaxed))
                return;
            break;
        default: return; /* a permit is already there */
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
    struct p *tp = g->tp;
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_acquire), nv;
    do {
        if ((v & W_MASK) == W_NOTIFIED) {
            atomic_store_explicit(&g->wake, v & ~(uint64_t)W_MASK, memory_order_relaxed);
            g->park_rc = 0;
            return true;
        }
        if (__builtin_expect((v & W_MASK) == W_IOREADY, 0) && io_take(g, &v)) {
            /* An fd became ready while it switched out (netpoll.c), or an unpark after that. */
            g->park_rc = (v & W_MASK) == W_NOTIFIED ? 0 : PARK_IO;
            return true;
        }
        nv = ((v >> 2) + 1) << 2 | W_PARKED;
    } while (!atomic_compare_exchange_weak_explicit(&g->wake, &v, nv, memory_order_acq_rel,
                                                    memory_order_acquire));
    COUNT(park);
    if (deadline != CHAN_FOREVER)
        timer_arm(tp, g, deadline, nv);
    return false;
}

/* ---- G descriptors --------------------------------------------------------------------------- */

/* Exited Gs are kept, with their stacks, for the next chan_mpg_go (Go's gfput and gfget): first
 * in the cache of the P that ran them, whose lock only its holder takes as a rule (a lock that
 * stays in its core's cache), so that spawns and exits on different Ps do not meet on one lock;
 * a cache that reaches GFREE_MAX gives half to the global list, which serves the spawns whose
 * P's cache is empty and those without a P (a foreign thread, a G in a system call). A spawn
 * that finds the global list empty too takes from the other Ps' caches before it makes a new
 * G: so a G spawned after others have returned always reuses one of them. */
#define GFREE_MAX 64

static void g_release(struct p *p, struct g *g)
{
    struct g *spill = NULL, *last = NULL;
    pthread_mutex_lock(&p->gfree_lock);
    g->next_free = p->gfree;
    p->gfree = g;
    if (++p->ngfree == GFREE_MAX) {
        spill = last = p->gfree;
        for (unsigned i = 1; i < GFREE_MAX / 2; i++)
            last = last->next_free;
        p->gfree = last->next_free;
        p->ngfree -= GFREE_MAX / 2;
    }
    pthread_mutex_unlock(&p->gfree_lock);
    if (spill) {
        pthread_mutex_lock(&sched.gmu);
        last->next_free = sched.free_gs;
        sched.free_gs = spill;
        pthread_mutex_unlock(&sched.gmu);
    }
}

/* Pops a G of p's cache, or NULL. */
static struct g *gfree_pop(struct p *p)
{
    pthread_mutex_lock(&p->gfree_lock);
    struct g *g = p->gfree;
    if (g) {
        p->gfree = g->next_free;
        p->ngfree--;
    }
    pthread_mutex_unlock(&p->gfree_lock);
    return g;
}

_Static_assert(offsetof(struct g, fiber) == 0, "fiber_make returns the G its fiber begins");

/* Under sched.gmu: a new descriptor and stack (Go's malg), or NULL. */
static struct g *g_new_locked(void)
{
    struct g *g = (struct g *)fiber_make(); /* not started: its first switch in calls g_main */
    if (!g)
        return NULL;
    sched.ngs++;
    g->allnext = sched.all_gs;
    sched.all_gs = g;
    heap_node_init(&g->timer);
    return g;
}

/* A G descriptor for chan_mpg_go: from p's cache when p is given, else from the global list,
 * else from another P's cache, else a new one; NULL when out of memory. The other Ps' caches
 * are looked at only when some descriptor is not in use (ngs over the live count): not while
 * the Gs only grow in number, as when a program starts its many Gs. */
static struct g *g_alloc(struct p *p)
{
    struct g *g = p ? gfree_pop(p) : NULL;
    bool cached = false;
    if (!g) {
        pthread_mutex_lock(&sched.gmu);
        g = sched.free_gs;
        if (g)
            sched.free_gs = g->next_free;
        else
            cached = sched.ngs >= (uint64_t)atomic_load(&sched.live);
        pthread_mutex_unlock(&sched.gmu);
    }
    for (int i = 0; cached && !g && i < sched.nprocs; i++)
        if (&sched.ps[i] != p)
            g = gfree_pop(&sched.ps[i]);
    if (g) {
        fiber_reuse(&g->fiber);
        return g;
    }
    pthread_mutex_lock(&sched.gmu);
    g = g_new_locked();
    pthread_mutex_unlock(&sched.gmu);
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

/* Go's randomOrder (stealOrder): the Ps in a random order for a thief, every P once: a random
 * start and a random stride coprime with nprocs. A random start alone, then every P in turn,
 * makes the first busy P after a run of idle ones the one that nearly every thief finds first
 * (busy Ps 0-3 of 64: P 0 first for 61 starts in 64, P 1-3 for one each); with a random stride
 * too, P 0-3 first 29%, 21%, 21% and 29% of the time. sched.coprimes holds the strides (set
 * at start: every k in 1..nprocs with gcd(k, nprocs) == 1). */
struct steal_order {
    unsigned pos, inc, n;
};

static struct steal_order steal_order_begin(struct m *m)
{
    uint64_t r = rnd(m);
    unsigned n = (unsigned)sched.nprocs;
    return (struct steal_order){(unsigned)(r % n),
                                sched.coprimes[(r >> 32) % (unsigned)sched.ncoprimes], n};
}

static struct p *steal_order_next(struct steal_order *o)
{
    struct p *v = &sched.ps[o->pos];
    o->pos = (o->pos + o->inc) % o->n;
    return v;
}

static unsigned gcd(unsigned a, unsigned b)
{
    while (b) {
        unsigned t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The strides of steal_order_begin, for sched.nprocs Ps: 0 or -ENOMEM. */
static int steal_order_init(void)
{
    unsigned n = (unsigned)sched.nprocs;
    sched.coprimes = malloc(n * sizeof *sched.coprimes);
    if (!sched.coprimes)
        return -ENOMEM;
    sched.ncoprimes = 0;
    for (unsigned k = 1; k <= n; k++)
        if (gcd(k, n) == 1)
            sched.coprimes[sched.ncoprimes++] = k;
    return 0;
}

/* Go's stealWork: half the ring of the first P, in random order, that has runnable Gs. */
static struct g *steal_round(struct m *m)
{
    int n = sched.nprocs;
    struct steal_order o = steal_order_begin(m);
    int64_t now = chan_now();
    for (int i = 0; i < n; i++) {
        struct p *v = steal_order_next(&o);
        if (v == m->p)
            continue;
        struct g *g = runq_steal(m->p, v, now);
        if (g)
            return g;
    }
    return NULL;
}

/* Go's runqgrab on a victim whose ring is empty but whose runnext holds a G (a spinning M; sysmon
 * makes the same pause at each look). That G was woken or spawned by the G running on the
 * victim, which usually parks within a microsecond and hands its M to it: a ping-pong stays on
 * one core, its values in one cache. So the thief first waits RUNNEXT_PAUSE_NS (spinning: it has
 * nothing else to do, and a 3 us sleep would last the kernel's 50 us of timer slack), and takes
 * the G only if the victim has not scheduled since (same schedtick: its G neither parked nor
 * yielded, it blocks in a system call or computes) and the same G still waits. The CAS decides
 * against the owner taking it at the same time.
 *
 * One pause for every victim of a round, not one each (Go pauses per victim): runnext_note
 * notes each one's G and schedtick, runnext_pause waits once, then each whose schedtick has not
 * moved is taken. With one pause per victim, a round over 63 Ps that each run a ping-pong spun
 * 190 us, and a look of sysmon as long. */
struct g *runnext_note(struct p *victim, uint32_t *tick)
{
    struct g *g = atomic_load_explicit(&victim->runnext, memory_order_relaxed);
    if (!g || !runq_ring_empty(victim))
        return NULL;
    *tick = atomic_load_explicit(&victim->schedtick, memory_order_relaxed);
    return g;
}

void runnext_pause(void)
{
    COUNT(next_pause);
    int64_t end = chan_now() + RUNNEXT_PAUSE_NS;
    while (chan_now() < end)
        for (int i = 0; i < 16; i++)
            caa_cpu_relax();
}

bool runnext_unmoved(struct p *victim, uint32_t tick)
{
    return atomic_load_explicit(&victim->schedtick, memory_order_relaxed) == tick;
}

#define NEXT_BATCH 8 /* victims a spinning M's last round notes before its one pause */

/* The last thing a spinning M tries (Go's last stealWork round): the runnext of up to NEXT_BATCH
 * victims, in random order, after one pause. */
static struct g *steal_runnext_round(struct m *m)
{
    struct {
        struct p *v;
        struct g *g;
        uint32_t tick;
    } c[NEXT_BATCH];
    int n = sched.nprocs, k = 0;
    struct steal_order o = steal_order_begin(m);
    for (int i = 0; i < n && k < NEXT_BATCH; i++) {
        struct p *v = steal_order_next(&o);
        if (v != m->p && (c[k].g = runnext_note(v, &c[k].tick)))
            c[k++].v = v;
    }
    if (k == 0)
        return NULL;
    runnext_pause();
    for (int j = 0; j < k; j++) {
        if (runnext_unmoved(c[j].v, c[j].tick) && runnext_take(c[j].v, c[j].g)) {
            atomic_fetch_add_explicit(&sched.steals, 1, memory_order_relaxed);
            COUNT(steal_next);
            return c[j].g;
        }
    }
    return NULL;
}

bool any_work(bool runnext)
{
    if (!gq_empty())
        return true;
    for (int i = 0; i < sched.nprocs; i++) {
        struct p *p = &sched.ps[i];
        if (!runq_ring_empty(p) ||
            (runnext && atomic_load_explicit(&p->runnext, memory_order_acquire)))
            return true;
    }
    return false;
}

bool any_syscall_locked(void)
{
    for (struct m *m = sched.allm; m; m = m->allnext)
        if (atomic_load_explicit(&m->insyscall, memory_order_relaxed))
            return true;
    return false;
}

static void stopm_poll(struct m *m, int64_t deadline);
static void stopm_wait(struct m *m, int64_t deadline);

/* Under sched.lock: the M that sleeps in the netpoller's epoll_wait, or was chosen to, until it
 * is back from it (stopm_poll); NULL: none. */
static struct m *poll_m;

/* Go's stopm: m, holding no P, sleeps among the idle Ms until startm hands it a P, until a
 * kick or chan_mpg_stop, or, if it is the idle M that watches the timers (sched.timer_m: one
 * at most, so that a timer wakes one thread, not all), until the earliest timer: then it takes
 * an idle P to fire it. While Gs wait on fds, that M sleeps in the netpoller's epoll_wait
 * instead of on its futex (stopm_poll), and an M that finds the timer M on its futex takes its
 * place (the one it replaces goes back to sleep with the others). Returns holding a P or not:
 * the caller looks again. */
static void stopm(struct m *m)
{
    pthread_mutex_lock(&sched.lock);
    if (atomic_load(&sched.stopping)) {
        pthread_mutex_unlock(&sched.lock);
        return;
    }
    int64_t deadline = CHAN_FOREVER;
    /* One M at most in epoll_wait (netpoll's rule; a second one could take the break meant
     * for the first): the one woken from it may not have returned yet. */
    bool io = netpoll_waiting() && !poll_m;
    struct m *t = sched.timer_m;
    if (t && io && !t->polling) {
        midle_del_locked(t);
        m_wake_locked(t, NULL);
        t = NULL;
    }
    /* With no timer M, timer_watch is CHAN_FOREVER (stored seq_cst by midle_del_locked): a
     * timer armed from here on either reads it and kicks (waiting for this lock), or was stored
     * before and is seen by this look at every P's earliest (timer0_update). */
    int64_t next = t ? CHAN_FOREVER : timers_earliest();
    if (!t && (next != CHAN_FOREVER || io)) {
        if (next > chan_now()) {
            sched.timer_m = m;
            atomic_store_explicit(&sched.timer_watch, next, memory_order_seq_cst);
            deadline = next;
            m->polling = io;
            if (io)
                poll_m = m;
        } else {
            /* Due already: fire it on an idle P. With none, the Ms that hold the Ps fire it at
             * their next schedule. */
            struct p *p = pidle_get_locked();
            if (p) {
                pthread_mutex_unlock(&sched.lock);
                acquirep(m, p);
                return;
            }
        }
    }
    atomic_store_explicit(&m->wake, 0, memory_order_relaxed);
    m->nextp = NULL;
    midle_put_locked(m);
    bool poll = m->polling;
    pthread_mutex_unlock(&sched.lock);
    if (poll)
        stopm_poll(m, deadline);
    else
        stopm_wait(m, deadline);
}

/* The end of stopm: m, among the idle Ms, sleeps on its futex until woken or the deadline, then
 * takes the P it was handed, or, when nobody took it before the deadline, an idle P. */
static void stopm_wait(struct m *m, int64_t deadline)
{
    COUNT(m_sleep);
    while (!atomic_load_explicit(&m->wake, memory_order_acquire))
        if (futex_wait(&m->wake, 0, deadline) == -ETIMEDOUT)
            break;
    pthread_mutex_lock(&sched.lock);
    struct p *p;
    if (m->on_idle) {
        /* Timed out, nobody took it: the earliest timer is due. */
        midle_del_locked(m);
        p = pidle_get_locked();
    } else {
        p = m->nextp; /* startm's P, or NULL for a kick or chan_mpg_stop */
        m->nextp = NULL;
    }
    pthread_mutex_unlock(&sched.lock);
    if (p)
        acquirep(m, p);
}

/* Go's findrunnable, "block in netpoll": the timer M (see stopm) sleeps in epoll_wait until the
 * earliest timer, an event, or a break (m_wake_locked, timer_kick, chan_mpg_stop). The Gs the
 * events woke run on the P it was handed, or on an idle P it takes: the first there, the others
 * injected as one batch (inject: an M started for each P still idle, Go's injectglist); with no
 * P to be had, all to the global queue, under sched.lock so that an M going idle sees them
 * (m_idle). */
static void stopm_poll(struct m *m, int64_t deadline)
{
    struct g *list = NULL;
    int n = netpoll(deadline, &list);
    pthread_mutex_lock(&sched.lock);
    m->polling = false;
    poll_m = NULL;
    bool idle = m->on_idle; /* nobody took it: events, the deadline, or a stale break */
    if (idle)
        midle_del_locked(m);
    struct p *p = idle ? NULL : m->nextp;
    m->nextp = NULL;
    if (!p && (idle || n > 0) && !atomic_load(&sched.stopping))
        p = pidle_get_locked();
    if (!p && list)
        inject_locked(list); /* no P idle: none is started either */
    pthread_mutex_unlock(&sched.lock);
    if (!p)
        return;
    acquirep(m, p);
    if (list) {
        /* Go's findrunnable: the first G for this M, the others injected (injectglist) */
        struct g *g = list;
        list = g->next_free;
        g->next_free = NULL;
        runq_put(p, g);
        inject(p, list);
    }
}

/* The end of Go's findrunnable: m found nothing to run. Its P goes idle, unless the global queue
 * got a G meanwhile (checked under the lock that exitsyscall0 pushes under). Then m looks at
 * every queue once more before it sleeps: a G queued by a thread that saw no idle P (wakep) just
 * before this one went idle is found here (the fences pair). */
static void m_idle(struct m *m)
{
    pthread_mutex_lock(&m->p->tlock);
    timers_shrink_locked(m->p);
    pthread_mutex_unlock(&m->p->tlock);
    pthread_mutex_lock(&sched.lock);
    if (atomic_load(&sched.stopping) || !gq_empty()) {
        pthread_mutex_unlock(&sched.lock);
        return;
    }
    pidle_put_locked(m->p);
    m->p = NULL;
    pthread_mutex_unlock(&sched.lock);
    atomic_thread_fence(memory_order_seq_cst);
    if (any_work(false)) {
        pthread_mutex_lock(&sched.lock);
        struct p *p = pidle_get_locked();
        pthread_mutex_unlock(&sched.lock);
        if (p) {
            acquirep(m, p);
            return;
        }
    }
    stopm(m);
}

/* The Gs that fds made ready, polled without waiting (Go's netpoll(0)), for p: one to run, the
 * others injected as one batch (Go's findrunnable: list.pop, injectglist). NULL: none. */
static struct g *poll_ready(struct p *p)
{
    struct g *list = NULL;
    int n = netpoll(0, &list);
    if (n == 0)
        return NULL;
    struct g *g = list;
    list = g->next_free;
    g->next_free = NULL;
    inject(p, list);
    return g;
}

/* Go's injectglist: see sched_internal.h. With p: as many Gs as there are idle Ps go to the
 * global queue, an M started for each, and the rest to p's ring, which p's M is about to run,
 * in publications of half a ring (runq_put_batch; what does not fit sends half the ring to the
 * global queue, as one G does). Go's rule: a G more on the global queue than there are idle Ps
 * would wait there for a busy P, while on p's ring it waits for p and may be stolen. Before,
 * the Gs went one by one to p's ring with one wakep for them all (the idle Ps then woke one
 * after another, each spinning M that found a G waking the next), or to the global queue with
 * an exchange on its tail each. */
void inject(struct p *p, struct g *list)
{
    if (!list)
        return;
    int idle = p ? atomic_load_explicit(&sched.npidle, memory_order_relaxed) : INT_MAX;
    if (idle > 0) {
        struct g *rest = NULL;
        if (p) {
            struct g *last = list;
            for (int i = 1; i < idle && last->next_free; i++)
                last = last->next_free;
            rest = last->next_free;
            last->next_free = NULL;
        }
        pthread_mutex_lock(&sched.lock);
        inject_locked(list);
        pthread_mutex_unlock(&sched.lock);
        list = rest;
    }
    struct g *batch[RQ_SIZE / 2];
    int64_t now = chan_now(); /* when they were queued, for the thieves (runq_put) */
    int k = 0;
    while (list) {
        struct g *g = list;
        list = g->next_free;
        g->next_free = NULL;
        atomic_store_explicit(&g->queued, now, memory_order_relaxed);
        batch[k++] = g;
        if (k == RQ_SIZE / 2 || !list) {
            runq_put_batch(p, batch, k);
            k = 0;
        }
    }
}

/* Go's injectglist without a P: globrunqputbatch, then startIdle's startm for each G while a P
 * is idle. */
void inject_locked(struct g *list)
{
    int n = gq_push_list(list);
    for (int i = 0; i < n && startm_locked(NULL); i++) {
    }
}

/* Go's findrunnable: the next G for m, or NULL when the scheduler stops. */
static struct g *find_runnable(struct m *m)
{
    for (;;) {
        if (atomic_load_explicit(&sched.stopping, memory_order_relaxed))
            return NULL;
        struct p *p = m->p;
        if (!p) {
            stopm(m);
            continue;
        }
        struct g *g = m->nextg; /* handed over with p by sysmon (startm_g_locked) */
        if (g) {
            m->nextg = NULL;
            return g;
        }
        timers_run(p); /* due timers first, whatever else is runnable (Go's checkTimers) */
        if (schedtick_next(p) % GLOBAL_EVERY == 0 && (g = gq_get(p, 1)))
            return g;
        if ((g = runq_next(p)))
            return g;
        if ((g = gq_get(p, 0)))
            return g;
        /* Go's netpoll(0) before stealing, unless an M blocks in epoll_wait (it gets them). */
        if (netpoll_waiting() && !netpoll_blocked() && (g = poll_ready(p)))
            return g;
        if (timers_steal(p)) /* every P's, as Go's stealWork does */
            continue;
        /* Spin a little, stealing, then sleep. While Gs wait on fds and no M waits in
         * epoll_wait, this M is about to: it spins Go's few rounds (stealWork's 4), not ours,
         * for the M in epoll_wait wakes as soon as an fd is ready, and spinning on would only
         * take the CPU from the peer that is to write to it. */
        bool io = netpoll_waiting() && !netpoll_blocked();
        int rounds = io ? NETPOLL_SPIN_ROUNDS : SPIN_ROUNDS;
        atomic_fetch_add_explicit(&sched.nspinning, 1, memory_order_seq_cst);
        COUNT(spin);
        for (int r = 0; r < rounds && !g; r++) {
            COUNT(spin_round);
            if (sched.nprocs > 1)
                g = steal_round(m);
            if (!g)
                g = gq_get(m->p, 0);
            /* The fds too, every few rounds: a spinning M is the one that would see an answer
             * on a socket soonest (no M blocks in epoll_wait while it spins). */
            if (!g && io && r % 4 == 3)
                g = poll_ready(m->p);
            if (!g) {
                for (int i = 0; i < 64; i++)
                    caa_cpu_relax();
                if (atomic_load_explicit(&p->timer0, memory_order_relaxed) <= chan_now())
                    break;
            }
        }
        if (!g && sched.nprocs > 1)
            g = steal_runnext_round(m);
        atomic_fetch_sub_explicit(&sched.nspinning, 1, memory_order_seq_cst);
        if (g) {
            COUNT(spin_found);
            wakep(); /* it found work: there may be more for another idle P */
            return g;
        }
        if (timers_steal(p))
            continue;
        m_idle(m);
    }
}

/* Go's execute, and what schedule does when the G switches back: runs g, then any G that
 * parking Gs hand the M to directly, until one returns to g0 asking to park (and no unpark came
 * meanwhile), to yield or to exit, or back from a system call without a P. */
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
        case REQ_YIELD: runq_put(m->p, g); return;
        case REQ_EXIT:
            atomic_store_explicit(&g->live, false, memory_order_release);
            g_release(m->p, g);
            if (atomic_fetch_sub_explicit(&sched.live, 1, memory_order_acq_rel) == 1)
                waiters_wake();
            return;
        case REQ_SYSEXIT:
            if (exitsyscall0(m, g))
                continue;
            return;
        default: __builtin_trap();
        }
    }
}

/* Go's mstart and schedule loop, on the M's own thread stack (g0). A new M starts with the P it
 * was made for. */
static void *m_main(void *arg)
{
    struct m *m = arg;
    void *alt = fiber_altstack(); /* where the overflow handler runs */
    m_set(m);
    chan_sched_set(&mpg_hook);
    fiber_host_init(&m->g0);
    if (m->born_idle) {
        /* Made idle by chan_mpg_start: it sleeps until needed. Already among the idle Ms, it
         * may have been handed a P (nextp, under sched.lock) before it got here: stopm_wait
         * reads it under that lock. */
        stopm_wait(m, CHAN_FOREVER);
    } else {
        struct p *p = m->nextp;
        m->nextp = NULL;
        if (p)
            acquirep(m, p);
    }
    struct g *g;
    while ((g = find_runnable(m)))
        execute(m, g);
    chan_sched_set(NULL);
    m_set(NULL);
    fiber_altstack_free(alt);
    return NULL;
}

/* ---- The API --------------------------------------------------------------------------------- */

/* For the overflow handler (a signal handler: it only reads): the G this thread runs. */
static struct fiber *g_running(int64_t *id)
{
    struct m *m = m_self();
    struct g *g = m ? m->curg : NULL;
    if (!g)
        return NULL;
    *id = g->id;
    return &g->fiber;
}

/* The CPUs the Ps are for: those the calling thread may run on (its affinity mask, which
 * taskset, numactl and a cgroup's cpuset narrow; offline CPUs are never in it) among the PUs of
 * the topology that the process is allowed (hwloc's cgroup view). Go's GOMAXPROCS defaults to
 * the same count (getproccount: sched_getaffinity). A topology that is not this machine's (an
 * XML file or HWLOC_SYNTHETIC, for tests) has no affinity of ours to narrow it: all of its
 * allowed PUs. NULL without memory; never empty. */
static hwloc_bitmap_t usable_cpus(hwloc_topology_t topo)
{
    hwloc_bitmap_t set = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topo));
    hwloc_bitmap_t mine = hwloc_bitmap_alloc();
    if (set && mine && hwloc_topology_is_thissystem(topo) &&
        hwloc_get_cpubind(topo, mine, HWLOC_CPUBIND_THREAD) == 0) {
        hwloc_bitmap_and(mine, mine, set);
        if (!hwloc_bitmap_iszero(mine))
            hwloc_bitmap_copy(set, mine);
    }
    hwloc_bitmap_free(mine);
    if (set && hwloc_bitmap_iszero(set)) {
        hwloc_bitmap_free(set);
        set = NULL;
    }
    return set;
}

/* Without a topology: the CPUs of the calling thread's affinity mask, with a mask as large as
 * the kernel's (a cpu_set_t holds 1,024 CPUs, and sched_getaffinity refuses a mask smaller than
 * the kernel's count of possible CPUs). */
static int affinity_count(void)
{
    for (int ncpu = 1024; ncpu <= (1 << 20); ncpu *= 2) {
        cpu_set_t *set = CPU_ALLOC((size_t)ncpu);
        if (!set)
            return 1;
        size_t size = CPU_ALLOC_SIZE((size_t)ncpu);
        int n = sched_getaffinity(0, size, set) == 0 ? CPU_COUNT_S(size, set) : -errno;
        CPU_FREE(set);
        if (n != -EINVAL)
            return n > 0 ? n : 1;
    }
    return 1;
}

/* nprocs 0: one P per CPU the caller may run on (usable_cpus), fewer when the process's cgroup
 * has a CPU quota of fewer CPUs' time (cgroup_cpu_limit: at least 2), at most NPROCS_MAX: Go
 * 1.25's GOMAXPROCS default. */
static int default_nprocs(hwloc_const_bitmap_t usable)
{
    int n = usable ? hwloc_bitmap_weight(usable) : affinity_count();
    int quota = cgroup_cpu_limit();
    if (quota > 0 && quota < n)
        n = quota;
    return n < 1 ? 1 : n > NPROCS_MAX ? NPROCS_MAX : n;
}

/* chan_mpg_config.bind: P i runs on the i-th core, in hwloc's logical order (a package's cores,
 * and a NUMA node's, come together: the Ps fill one package before the next), of those with a
 * usable CPU, on the usable CPUs of that core (an SMT core's siblings both); with more Ps than
 * cores, P i shares core i % cores with the Ps before. A core outside the affinity mask is never
 * used: binding there would take the M out of the CPUs the program was given. A topology without
 * cores binds to PUs. 0, or -ENOMEM. */
static int bind_ps(hwloc_const_bitmap_t usable)
{
    hwloc_obj_type_t type = HWLOC_OBJ_CORE;
    int nobj = hwloc_get_nbobjs_by_type(sched.topo, type);
    if (nobj <= 0) {
        type = HWLOC_OBJ_PU;
        nobj = hwloc_get_nbobjs_by_type(sched.topo, type);
    }
    hwloc_bitmap_t *sets = nobj > 0 ? calloc((size_t)nobj, sizeof *sets) : NULL;
    if (!sets)
        return nobj > 0 ? -ENOMEM : 0;
    int n = 0, err = 0;
    for (int k = 0; k < nobj && !err; k++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(sched.topo, type, (unsigned)k);
        if (!o || !o->cpuset || !hwloc_bitmap_intersects(o->cpuset, usable))
            continue;
        if (!(sets[n] = hwloc_bitmap_alloc()))
            err = -ENOMEM;
        else
            hwloc_bitmap_and(sets[n++], o->cpuset, usable);
    }
    for (int i = 0; i < sched.nprocs && n > 0 && !err; i++)
        if (!(sched.ps[i].cpuset = hwloc_bitmap_dup(sets[i % n])))
            err = -ENOMEM;
    for (int k = 0; k < n; k++)
        hwloc_bitmap_free(sets[k]);
    free(sets);
    return err;
}

static void free_all(void)
{
    sched_waits_fds(NULL);
    sched_keeps_stacks(NULL);
    netpoll_fini();
    for (struct g *g = sched.all_gs; g; g = g->allnext)
        fiber_destroy(&g->fiber);
    fiber_pool_free(); /* the descriptors too: they live in the stacks' chunks */
    sched.all_gs = sched.free_gs = NULL;
    sched.ngs = 0;
    for (struct m *m = sched.allm, *nx; m; m = nx) {
        nx = m->allnext;
        free(m);
    }
    sched.allm = NULL;
    free(sched.coprimes);
    sched.coprimes = NULL;
    if (sched.ps) {
        for (int i = 0; i < sched.nprocs; i++) {
            if (sched.ps[i].cpuset)
                hwloc_bitmap_free(sched.ps[i].cpuset);
            pthread_mutex_destroy(&sched.ps[i].gfree_lock);
            pthread_mutex_destroy(&sched.ps[i].tlock);
            free(sched.ps[i].timers.a);
        }
        free(sched.ps);
        sched.ps = NULL;
    }
    if (sched.topo) {
        hwloc_topology_destroy(sched.topo);
        sched.topo = NULL;
    }
}

/* Stops sysmon, then every M: each is woken and returns from find_runnable. No M is made once
 * stopping is set (startm_locked looks under the lock), so the list is complete here. */
static void stop_all(void)
{
    atomic_store(&sched.stopping, true);
    sysmon_stop();
    pthread_mutex_lock(&sched.lock);
    for (struct m *m = sched.allm; m; m = m->allnext) {
        if (m->on_idle)
            midle_del_locked(m);
        atomic_store(&m->wake, 1);
        futex_wake(&m->wake);
    }
    netpoll_break(); /* the M in epoll_wait, if one is */
    pthread_mutex_unlock(&sched.lock);
    for (struct m *m = sched.allm; m; m = m->allnext)
        pthread_join(m->thread, NULL);
}

/* chan_mpg_start_config's work, under sched.life. */
static int start_locked(const struct chan_mpg_config *cfg)
{
    struct chan_mpg_config c = *cfg;
    if (atomic_load(&sched.running))
        return -EALREADY;
    if (hwloc_topology_init(&sched.topo) != 0 || hwloc_topology_load(sched.topo) != 0) {
        if (sched.topo)
            hwloc_topology_destroy(sched.topo);
        sched.topo = NULL;
    }
    hwloc_bitmap_t usable = sched.topo ? usable_cpus(sched.topo) : NULL;
    sched.nprocs = c.nprocs ? c.nprocs : default_nprocs(usable);
    sched.max_m = c.max_threads ? c.max_threads : M_MAX_DEFAULT;
    if (sched.max_m < sched.nprocs) {
        hwloc_bitmap_free(usable);
        if (sched.topo)
            hwloc_topology_destroy(sched.topo);
        sched.topo = NULL;
        return -EINVAL;
    }
    size_t ss = c.stack_size ? c.stack_size : CHAN_MPG_STACK_DEFAULT;
    fiber_pool_init(ss < CHAN_MPG_STACK_MIN ? CHAN_MPG_STACK_MIN : ss, sizeof(struct g),
                    c.guard_max, g_main);
    sched.bind = c.bind && usable;
    atomic_store(&sched.stopping, false);
    sched.pidle = NULL;
    atomic_store(&sched.npidle, 0);
    CDS_INIT_LIST_HEAD(&sched.midle);
    atomic_store(&sched.nmidle, 0);
    sched.allm = NULL;
    atomic_store(&sched.nm, 0);
    atomic_store(&sched.m_limit_told, false);
    sched.timer_m = NULL;
    poll_m = NULL;
    atomic_store(&sched.nspinning, 0);
    atomic_store(&sched.sysmonwait, false);
    /* Not sched.live: it is 0 whenever no scheduler runs (a stop needs it so, and a spawn that
     * is refused takes back its own count), and a refused spawn may be between the two now. */
    atomic_store(&sched.spawned, 0);
    atomic_store(&sched.steals, 0);
    atomic_store(&sched.retakes, 0);
    atomic_store(&sched.moved, 0);
    atomic_store(&sched.ndeadlocks, 0);
    atomic_store(&sched.next_id, 0);
    atomic_store(&sched.timer_watch, CHAN_FOREVER);
    cds_wfcq_init(&sched.gq_head, &sched.gq_tail);
    atomic_store(&sched.gq_len, 0);
    if (posix_memalign((void **)&sched.ps, 128, (size_t)sched.nprocs * sizeof *sched.ps) != 0) {
        sched.ps = NULL;
        hwloc_bitmap_free(usable);
        free_all();
        return -ENOMEM;
    }
    memset(sched.ps, 0, (size_t)sched.nprocs * sizeof *sched.ps);
    for (int i = 0; i < sched.nprocs; i++) {
        struct p *p = &sched.ps[i];
        p->id = i;
        pthread_mutex_init(&p->gfree_lock, NULL);
        pthread_mutex_init(&p->tlock, NULL);
        atomic_store(&p->timer0, CHAN_FOREVER);
        CDS_INIT_LIST_HEAD(&p->spill);
        p->spill_when = CHAN_FOREVER;
    }
    int err = sched.bind ? bind_ps(usable) : 0;
    if (!err)
        err = steal_order_init();
    hwloc_bitmap_free(usable);
    if (err) {
        free_all();
        return err;
    }
    /* The netpoller, declared to libchan as this scheduler's way of waiting on fds; then every P
     * idle, and one M per P to begin with, idle too: each sleeps until work wakes it (wakep).
     * Given a P each, as they were, each looked for work first, and found none: 40 rounds of
     * stealing over every P (at 1,024 Ps, 0.2 s of CPU before the first G could run). */
    err = netpoll_init();
    if (err) {
        free_all();
        return err;
    }
    sched_waits_fds(&mpg_hook);
    sched_keeps_stacks(&mpg_hook); /* a G blocked on no channel is in chan_dump as a thread is */
    pthread_mutex_lock(&sched.lock);
    for (int i = sched.nprocs - 1; i >= 0; i--)
        pidle_put_locked(&sched.ps[i]); /* (P 0 on top) */
    for (int i = 0; i < sched.nprocs && !err; i++)
        err = newm_locked(NULL, NULL);
    pthread_mutex_unlock(&sched.lock);
    if (!err)
        err = sysmon_start();
    if (err) {
        stop_all();
        free_all();
        return err;
    }
    deadlock_watch(true);
    fiber_overflow_watch(g_running);
    atomic_store(&sched.running, true);
    return 0;
}

int chan_mpg_start_config(const struct chan_mpg_config *cfg)
{
    struct chan_mpg_config c = cfg ? *cfg : (struct chan_mpg_config){0};
    if (c.nprocs < 0 || c.nprocs > NPROCS_MAX || c.max_threads < 0 || c.stack_size > STACK_SIZE_MAX)
        return -EINVAL;
    /* One start or stop at a time; running is set only once everything is up, so that a
     * chan_mpg_go or chan_mpg_wait meanwhile says -EINVAL instead of meeting half a scheduler. */
    pthread_mutex_lock(&sched.life);
    int err = start_locked(&c);
    pthread_mutex_unlock(&sched.life);
    return err;
}

int chan_mpg_start(int nprocs)
{
    struct chan_mpg_config c = {.nprocs = nprocs};
    return chan_mpg_start_config(&c);
}

/* The P whose free Gs a spawn from this thread takes first: a G's M holds its P (NULL while the
 * G is in a system call); other threads have none. */
static struct p *spawn_p(void)
{
    struct m *m = m_self();
    return m && m->curg ? m->p : NULL;
}

/* A new G's id and its count in the stats. A G spawning on its P takes its id from that P's
 * batch and counts it there (Go's goidcache): no cache line that every spawner on every core
 * writes, but for sched.live. Other threads take one id at a time. Ids are unique and at least
 * 1, but not in the order of the spawns across Ps (as Go's). */
#define GOID_BATCH 16

static int64_t goid_take(struct p *p)
{
    if (!p) {
        atomic_fetch_add_explicit(&sched.spawned, 1, memory_order_relaxed);
        return atomic_fetch_add(&sched.next_id, 1) + 1;
    }
    if (p->goid_next == p->goid_end) {
        p->goid_next = atomic_fetch_add(&sched.next_id, GOID_BATCH);
        p->goid_end = p->goid_next + GOID_BATCH;
    }
    atomic_store_explicit(&p->spawned, atomic_load_explicit(&p->spawned, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return ++p->goid_next;
}

/* Go's newproc. */
int64_t chan_mpg_go(void (*fn)(void *), void *arg)
{
    if (!fn)
        return -EINVAL;
    /* Counted live before the gate is looked at, and chan_mpg_stop closes the gate before it
     * looks at live (all seq_cst): either that stop sees this call and says -EBUSY, or this call
     * finds the gate closed and waits for the stop to end, then says -EINVAL. Never a G given an
     * id and then dropped by a stop, nor one made from a pool being freed; and a stop that says
     * -EBUSY makes no spawn fail. Counted before it has a descriptor, too, so that g_alloc's
     * test for a descriptor not in use (ngs over live) is not met by spawns under way. */
    /* A thread that is not an M (a plain thread) counts as an announced foreign thread until
     * its G is queued: a chan_mpg_wait meanwhile would otherwise find a live G that no queue
     * holds with every P idle, and report a deadlock with no G in it. A G's spawn needs none:
     * its P is not idle, or it is in a system call. */
    bool foreign = !m_self();
    if (foreign)
        chan_mpg_foreign_enter();
    atomic_fetch_add(&sched.live, 1);
    while (atomic_load(&sched.closing))
        sched_yield();
    int err = 0;
    struct g *g = NULL;
    struct p *p = spawn_p();
    if (!atomic_load(&sched.running))
        err = -EINVAL;
    else if (!(g = g_alloc(p)))
        err = -ENOMEM;
    if (err) {
        if (atomic_fetch_sub_explicit(&sched.live, 1, memory_order_acq_rel) == 1)
            waiters_wake();
        if (foreign)
            chan_mpg_foreign_leave();
        return err;
    }
    g->fn = fn;
    g->arg = arg;
    g->req = REQ_NONE;
    g->waiter = NULL;
    g->sleeping = false;
    g->syscall_depth = 0;
    g->park_rc = 0;
    g->id = goid_take(p);
    /* Keep seq (stale timers and wakers compare it); a fresh G starts RUN without a permit. */
    atomic_store(&g->wake, atomic_load(&g->wake) & ~(uint64_t)W_MASK);
    atomic_store(&g->live, true);
    int64_t id = g->id;
    ready(g);
    if (foreign)
        chan_mpg_foreign_leave();
    return id;
}

int64_t chan_mpg_self(void)
{
    struct m *m = m_self();
    return m && m->curg ? m->curg->id : 0;
}

/* Go's Gosched. In a system call (chan_mpg_syscall_enter), the G leaves it for the while, as
 * g_park does. */
void chan_mpg_yield(void)
{
    struct m *m = m_self();
    if (!m || !m->curg) {
        sched_yield();
        return;
    }
    struct g *g = m->curg;
    unsigned depth = g->syscall_depth;
    if (depth) {
        g->syscall_depth = 0;
        syscall_leave(m, g);
    }
    g->req = REQ_YIELD;
    switch_to_g0(g);
    if (depth) {
        syscall_begin(m_self());
        g->syscall_depth = depth;
    }
}

/* Go's entersyscall and exitsyscall, for any call of the caller's: see chan_sched_mpg.h. Only
 * the outermost pair of a nest acts. */
void chan_mpg_syscall_enter(void)
{
    struct m *m = m_self();
    struct g *g = m ? m->curg : NULL;
    if (g && g->syscall_depth++ == 0)
        syscall_begin(m);
}

void chan_mpg_syscall_exit(void)
{
    struct m *m = m_self();
    struct g *g = m ? m->curg : NULL;
    if (g && g->syscall_depth > 0 && --g->syscall_depth == 0)
        syscall_leave(m, g);
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
     * deadline ends it. Arming never fails (a heap without room spills: timer_arm), so a
     * time-out is never early. */
    while (g_park(g, deadline) == 0) {
    }
    g->sleeping = false;
    return 0;
}

/* Gs spawned since the start: the spawns without a P, and each P's. Under sched.life (the Ps
 * are freed by a stop). */
static uint64_t spawned_sum(void)
{
    uint64_t n = atomic_load_explicit(&sched.spawned, memory_order_relaxed);
    for (int i = 0; sched.ps && i < sched.nprocs; i++)
        n += atomic_load_explicit(&sched.ps[i].spawned, memory_order_relaxed);
    return n;
}

int chan_mpg_stop(void)
{
    if (m_self())
        return -EINVAL;
    pthread_mutex_lock(&sched.life);
    int err = 0;
    if (!atomic_load(&sched.running)) {
        err = -EINVAL;
    } else {
        atomic_store(&sched.closing, true); /* see chan_mpg_go */
        if (atomic_load(&sched.live) > 0)
            err = -EBUSY;
    }
    if (!err) {
        /* Not running before the Ps go: a chan_mpg_wait on another thread looks at them only
         * under sched.lock and while running (deadlock.c); a spawn still waits at the gate. */
        pthread_mutex_lock(&sched.lock);
        atomic_store(&sched.running, false);
        pthread_cond_broadcast(&sched.cv);
        pthread_mutex_unlock(&sched.lock);
        deadlock_watch(false);
        fiber_overflow_unwatch();
        stop_all();
        atomic_store(&sched.spawned, spawned_sum());
        free_all();
    }
    atomic_store(&sched.closing, false);
    pthread_mutex_unlock(&sched.life);
    return err;
}

void chan_mpg_stats(struct chan_mpg_stats *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&sched.life);
    st->spawned = spawned_sum();
    pthread_mutex_unlock(&sched.life);
    pthread_mutex_lock(&sched.gmu);
    fiber_pool_stats(&st->stacks, &st->stacks_guarded);
    pthread_mutex_unlock(&sched.gmu);
    int64_t live = atomic_load(&sched.live);
    st->live = live > 0 ? (uint64_t)live : 0;
    st->steals = atomic_load(&sched.steals);
    st->deadlocks = atomic_load(&sched.ndeadlocks);
    st->nprocs = sched.nprocs;
    st->threads = (uint64_t)atomic_load(&sched.nm);
    st->retakes = atomic_load(&sched.retakes);
    st->moved = atomic_load(&sched.moved);
}
