/* SPDX-License-Identifier: MIT */
/*
 * leak.c - leftover waiters and partial deadlocks (chan_leak.h), after Go's goroutine leak
 * profile: a blocked waiter is leaked when none of the channels it waits on can be reached by
 * any thread or task that can still run.
 *
 * A check, in order:
 *  1. Holds off what would change libchan's books meanwhile: a trace's start and stop, the
 *     registry of live channels (frozen: no channel is registered or freed), the scheduler's
 *     list of Gs.
 *  2. Stops every other thread (world.c) and, while they are stopped, reads:
 *     - each registered channel through the core (chan_inspect): its memory block, and its
 *       waiters with what each waits on; a channel whose lock is held is in use by a thread
 *       that runs, so it is reachable;
 *     - the Gs (struct task_source, seam.h) and the threads: who is blocked in a channel
 *       operation with no deadline (a candidate), where each stack is and where its live part
 *       begins (the saved or signalled stack pointer: what lies below is dead);
 *     - for a leak check, every writable mapping, word by word (world_sweep): a word equal to
 *       a channel's address is an edge from what holds it - a task's live stack, a channel's
 *       buffer, or else the process itself (a root). libchan's bookkeeping is left out: the
 *       registry's entries, a trace's event buffers, the scheduler's G descriptors (a G's
 *       function and argument count as its own), a select's heap sudogs, this file's arrays.
 *  3. Lets the threads go, then works on its copies alone: roots and the channels held by tasks
 *     that can run are reachable; a channel reachable makes what its buffer holds reachable,
 *     and every waiter on it able to run again, whose stack then holds more; to a fixed point.
 *     The candidates never reached are leaked.
 *  4. If some thread could not be stopped (its registers unseen: a thread that blocks the
 *     signal, or under TSan, which delivers signals only when its runtime is entered), a leak
 *     found is checked once more with a second stop, and reported only if the same waiter,
 *     blocked since the same moment, is leaked both times.
 *
 * Invariants:
 *  - Between the stop and the resume nothing here allocates with malloc, prints or takes a
 *    lock: copies go to world.c's arrays (mmap), channels are read only through chan_inspect
 *    (a trylock). Order: the trace's lock, the registry's freeze (no lock held across it), the
 *    scheduler's lock.
 *  - Checks are serialized (check_mu), and so is the registration of a task source with them.
 *  - The caller's own stack counts from the frame of the public call up (its registers spilled
 *    there): the frames of the check below it, which hold the addresses it looks for, do not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_internal.h"
#include "chan_leak.h"
#include "chan_trace.h"
#include "trace_internal.h"
#include "world.h"

static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;
static const struct task_source *task_src;

void leak_task_source(const struct task_source *src)
{
    pthread_mutex_lock(&check_mu);
    task_src = src;
    pthread_mutex_unlock(&check_mu);
}

/* ---- What a check copies --------------------------------------------------------------------- */

struct lchan {
    uintptr_t addr;
    char name[NAME_MAX_LEN];
    int role;                        /* a timer's channel, a context's done channel (hooks.h) */
    bool busy;                       /* its lock was held: a thread that runs uses it */
    bool root;                       /* held by the process outside any stack or block */
    bool marked;                     /* reachable */
    bool printed;                    /* in the wait-for picture already */
    uint32_t first_waiter, nwaiters; /* in scan.chan_waiters */
};

/* One channel a waiter waits on. */
struct wchan {
    int32_t chan; /* index in scan.chans; -1: not registered (made before the registry was on) */
    bool send;
};

struct lwaiter {
    const struct waiter *w;
    int32_t task;               /* index in scan.tasks, or -1: unknown */
    uint32_t first, n;          /* its channels: scan.wchans[first, first + n) */
    uint32_t ncases;            /* its sudogs (a select names a channel once per case) */
    bool select;                /* a chan_select, however many of its cases are nil */
    uint8_t why;                /* what its operation is (enum wait_reason, seam.h) */
    const struct sudog *sudogs; /* where they are */
    int32_t tid;                /* from the tracer's notes (0: unknown) */
    uint64_t task_id;           /* from them: chan_trace_task_hook's id (0: none) */
    int64_t since;              /* 0: unknown (blocked before the registry was on) */
    bool timed;                 /* it has a deadline (known only when since != 0) */
    bool done;                  /* being woken */
    bool unknown_chan;          /* waits on a channel the registry does not know */
    bool fds;                   /* waits on fds too (fd channels, chan_io(3)): on the world */
};

enum task_kind { T_THREAD, T_G };

struct ltask {
    enum task_kind kind;
    int64_t id;                 /* G id, or thread id */
    uintptr_t lo, live, hi;     /* its stack, live from `live` up; lo == hi: unknown */
    uintptr_t dead_lo, dead_hi; /* above live, a part that holds nothing (struct wthread) */
    int32_t waiter;             /* index in scan.waiters, or -1 */
    enum task_state state;      /* a G's */
    int64_t deadline;           /* a parked G's */
    uintptr_t own[2];           /* a G's function and argument */
    bool sp_seen;               /* a thread's stack pointer was found in it (a G's stack) */
    bool candidate;             /* blocked forever unless something reaches it */
    bool active;                /* can run, or was reached */
};

enum region_kind { R_TASK, R_CHAN, R_IGNORE };

struct region {
    uintptr_t lo, hi;
    uint32_t kind, idx;
};

/* Addresses of channels found in memory: from a task (from = index) or a channel's block
 * (from = index | FROM_CHAN); roots are marked at once. */
#define FROM_CHAN 0x80000000u
struct edge {
    uint32_t from, to;
};

struct scan {
    struct world world;
    bool sweep; /* a leak check: read the memory too */
    const char *self_sp;
    int64_t now;
    struct vec chans;        /* struct lchan */
    struct vec waiters;      /* struct lwaiter */
    struct vec wchans;       /* struct wchan */
    struct vec tasks;        /* struct ltask */
    struct vec regions;      /* struct region, by address once sorted */
    struct vec edges;        /* struct edge */
    struct vec chan_waiters; /* uint32_t waiter indexes, per channel (lchan.first_waiter) */
    struct vec by_stack;     /* uint32_t task indexes, by stack address (task_at) */
    struct vec work;         /* uint32_t channel indexes still to look at */
    struct addrset chanset;  /* channel address -> index */
    struct addrset waitset;  /* waiter address -> index */
    size_t nthreads, ngs;    /* threads of the process; live Gs */
    int err;
};

static struct region *region_add(struct scan *s, uintptr_t lo, uintptr_t hi, enum region_kind k,
                                 uint32_t idx)
{
    if (hi <= lo)
        return NULL;
    struct region *r = vec_push(&s->regions);
    if (!r) {
        s->err = -ENOMEM;
        return NULL;
    }
    *r = (struct region){lo, hi, k, idx};
    return r;
}

/* ---- Before the stop: the channels the registry knows, and the trace's buffers --------------- */

static void add_chan(const void *c, const char *name, int role, const void *node, size_t size,
                     void *arg)
{
    struct scan *s = arg;
    struct lchan *lc = vec_push(&s->chans);
    if (!lc) {
        s->err = -ENOMEM;
        return;
    }
    lc->addr = (uintptr_t)c;
    lc->role = role;
    memcpy(lc->name, name, NAME_MAX_LEN);
    /* The registry's entry holds c's address: libchan's bookkeeping. */
    region_add(s, (uintptr_t)node, (uintptr_t)node + size, R_IGNORE, 0);
}

static void add_trace_buffer(const void *p, size_t size, void *arg)
{
    region_add(arg, (uintptr_t)p, (uintptr_t)p + size, R_IGNORE, 0);
}

/* ---- While the world is stopped: waiters ----------------------------------------------------- */

/* A waiter queued on a channel (chan_inspect's callback, that channel's lock held): its
 * channels are copied, once however many channels it is queued on. */
static void add_waiter(const struct waiter *w, void *arg)
{
    struct scan *s = arg;
    if (addrset_get(&s->waitset, (uintptr_t)w) >= 0 || s->err)
        return;
    struct lwaiter *lw = vec_push(&s->waiters);
    if (!lw) {
        s->err = -ENOMEM;
        return;
    }
    uint32_t idx = (uint32_t)(s->waiters.n - 1);
    if (addrset_add(&s->waitset, (uintptr_t)w, idx) != 0) {
        s->err = -ENOMEM;
        return;
    }
    *lw = (struct lwaiter){.w = w,
                           .task = -1,
                           .first = (uint32_t)s->wchans.n,
                           .ncases = w->nsudog,
                           .select = w->why == WAIT_SELECT,
                           .why = w->why,
                           .sudogs = w->sudogs,
                           .tid = w->t.tid,
                           .task_id = w->t.task,
                           .since = w->t.since,
                           .timed = w->t.since && w->t.timed,
                           .done = atomic_load_explicit(&w->done, memory_order_relaxed) != 0,
                           .fds = w->nio != 0};
    struct wchan *wc = vec_room(&s->wchans, w->nsudog);
    if (!wc) {
        s->err = -ENOMEM;
        return;
    }
    /* One entry per channel and direction: a select may name a channel in several cases,
     * whose sudogs are adjacent (they are queued in lock order). */
    for (uint32_t i = 0; i < w->nsudog; i++) {
        const struct sudog *sg = &w->sudogs[i];
        if (i > 0 && sg->c == w->sudogs[i - 1].c && sg->is_send == w->sudogs[i - 1].is_send)
            continue;
        int64_t ci = addrset_get(&s->chanset, (uintptr_t)sg->c);
        wc[lw->n++] = (struct wchan){.chan = (int32_t)ci, .send = sg->is_send};
        if (ci < 0)
            lw->unknown_chan = true;
    }
    s->wchans.n += lw->n;
}

/* A thread or G blocked on no channel (a nil channel's operation, select {}): listed by the
 * registry (trace_idle_add), read while it is frozen - the waiter stays in its frame until the
 * thaw - and never woken by anyone: blocked forever unless a deadline ends it. */
static void add_idle(const struct waiter *w, void *arg)
{
    struct scan *s = arg;
    struct lwaiter *lw = s->err ? NULL : vec_push(&s->waiters);
    if (!lw) {
        s->err = s->err ? s->err : -ENOMEM;
        return;
    }
    if (addrset_add(&s->waitset, (uintptr_t)w, (uint32_t)(s->waiters.n - 1)) != 0) {
        s->err = -ENOMEM;
        return;
    }
    *lw = (struct lwaiter){.w = w,
                           .task = -1,
                           .first = (uint32_t)s->wchans.n,
                           .select = w->why == WAIT_SELECT,
                           .why = w->why,
                           .tid = w->t.tid,
                           .task_id = w->t.task,
                           .since = w->t.since,
                           .timed = w->t.since && w->t.timed,
                           .done = atomic_load_explicit(&w->done, memory_order_relaxed) != 0};
}

static void read_chans(struct scan *s)
{
    for (size_t i = 0; i < s->chans.n && !s->err; i++) {
        struct lchan *lc = vec_at(&s->chans, i);
        struct chan_block b;
        if (chan_inspect((chan_t *)lc->addr, &b, add_waiter, s) != 0) {
            lc->busy = true;
            continue;
        }
        region_add(s, (uintptr_t)b.mem, (uintptr_t)b.mem + b.size, R_CHAN, (uint32_t)i);
    }
}

/* ---- While the world is stopped: tasks ------------------------------------------------------- */

static void add_g(const struct task_info *t, void *arg)
{
    struct scan *s = arg;
    /* The descriptor is the scheduler's; a dead G's stack holds nothing of anyone's. */
    region_add(s, (uintptr_t)t->desc, (uintptr_t)t->desc + t->desc_size, R_IGNORE, 0);
    if (t->state == TASK_FREE) {
        region_add(s, (uintptr_t)t->stk_lo, (uintptr_t)t->stk_hi, R_IGNORE, 0);
        return;
    }
    struct ltask *lt = vec_push(&s->tasks);
    if (!lt) {
        s->err = -ENOMEM;
        return;
    }
    uintptr_t lo = (uintptr_t)t->stk_lo, hi = (uintptr_t)t->stk_hi, sp = (uintptr_t)t->sp;
    *lt = (struct ltask){.kind = T_G,
                         .id = t->id,
                         .lo = lo,
                         .hi = hi,
                         .waiter = -1,
                         .state = t->state,
                         .deadline = t->deadline,
                         .own = {t->own[0], t->own[1]}};
    /* Switched out: live from its saved stack pointer (the saved registers lie above it); not
     * started yet (no saved stack pointer): none of it, what the stack holds is a previous G's.
     * Running: from its M's, found with the threads; until then, all of it. */
    if (t->state == TASK_RUNNING)
        lt->live = lo;
    else if (!sp)
        lt->live = hi;
    else
        lt->live = sp >= lo && sp < hi ? sp : lo;
    if (t->state == TASK_PARKED && t->waiter) {
        int64_t wi = addrset_get(&s->waitset, (uintptr_t)t->waiter);
        struct waiter w; /* read as the G left it when it parked: no lock orders this read */
        if (wi < 0 && world_read(&w, t->waiter, sizeof w) && w.nsudog == 0) {
            /* Parked on a nil channel or an empty select since before the registry was on: on
             * no queue and not listed (add_idle), so found only here. */
            struct lwaiter *lw = vec_push(&s->waiters);
            if (!lw) {
                s->err = -ENOMEM;
                return;
            }
            *lw = (struct lwaiter){.w = t->waiter,
                                   .task = -1,
                                   .first = (uint32_t)s->wchans.n,
                                   .select = w.why == WAIT_SELECT,
                                   .why = w.why,
                                   .tid = w.t.tid,
                                   .since = w.t.since};
            wi = (int64_t)s->waiters.n - 1;
        }
        if (wi >= 0) {
            lt->waiter = (int32_t)wi;
            ((struct lwaiter *)vec_at(&s->waiters, (size_t)wi))->task = (int32_t)(s->tasks.n - 1);
        }
    }
    region_add(s, lo, hi, R_TASK, (uint32_t)(s->tasks.n - 1));
    s->ngs++;
}

/* The tasks by the address of their stacks (scan.by_stack), for task_at: sorted afresh once
 * the Gs are in, and again with the threads. A heap sort: no allocation while stopped. */
static const struct scan *order_scan;
static bool stack_below(uint32_t a, uint32_t b)
{
    return ((const struct ltask *)vec_at(&order_scan->tasks, a))->lo <
           ((const struct ltask *)vec_at(&order_scan->tasks, b))->lo;
}

static void sift_tasks(uint32_t *a, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && stack_below(a[c], a[c + 1]))
            c++;
        if (!stack_below(a[i], a[c]))
            return;
        uint32_t t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void order_tasks(struct scan *s)
{
    size_t n = s->tasks.n;
    uint32_t *a = vec_room(&s->by_stack, n > s->by_stack.n ? n - s->by_stack.n : 0);
    if (!a && n > s->by_stack.n) {
        s->err = -ENOMEM;
        return;
    }
    a = (uint32_t *)s->by_stack.p;
    for (size_t i = 0; i < n; i++)
        a[i] = (uint32_t)i;
    s->by_stack.n = n;
    order_scan = s; /* check_mu held */
    for (size_t i = n / 2; i-- > 0;)
        sift_tasks(a, i, n);
    for (size_t i = n; i-- > 1;) {
        uint32_t t = a[0];
        a[0] = a[i];
        a[i] = t;
        sift_tasks(a, 0, i);
    }
}

/* The task whose stack contains a, or -1 (stacks do not overlap). */
static int64_t task_at(const struct scan *s, uintptr_t a)
{
    const uint32_t *v = (const uint32_t *)s->by_stack.p;
    size_t lo = 0, hi = s->by_stack.n;
    while (lo < hi) { /* the last task whose stack begins at or below a */
        size_t mid = (lo + hi) / 2;
        if (((const struct ltask *)vec_at(&s->tasks, v[mid]))->lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const struct ltask *t = vec_at(&s->tasks, v[lo - 1]);
    return a < t->hi ? (int64_t)v[lo - 1] : -1;
}

/* A thread's stack: the mapping that holds its stack pointer, when that mapping is a thread's
 * stack and nothing else - the main thread's [stack], or anonymous memory right above a guard
 * page (how glibc makes them). A stack the program placed in memory of its own is not told
 * from that memory: it is swept as the process's, a root. */
static bool stack_mapping(const struct world *w, uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
    const struct wmap *m = world_map_of(w, sp);
    if (!m || !(m->flags & WM_WRITE) || !(m->flags & WM_ANON) || (m->flags & WM_HEAP))
        return false;
    if (!(m->flags & WM_STACK)) {
        const struct wmap *below = m > (const struct wmap *)w->maps.p ? m - 1 : NULL;
        if (!below || below->hi != m->lo || (below->flags & (WM_READ | WM_WRITE)))
            return false;
    }
    *lo = m->lo;
    *hi = m->hi;
    return true;
}

/* Whether a thread other than the i-th has its stack pointer in the mapping at lo: then the
 * mapping is not one thread's stack, and is swept as the process's memory. */
static bool shared_stack(const struct scan *s, uintptr_t lo, size_t i)
{
    for (size_t k = 0; k < s->world.threads.n; k++) {
        const struct wthread *th = vec_at(&s->world.threads, k);
        uintptr_t a, b;
        if (k != i && th->tid && th->sp && stack_mapping(&s->world, (uintptr_t)th->sp, &a, &b) &&
            a == lo)
            return true;
    }
    return false;
}

static void add_threads(struct scan *s)
{
    size_t nthreads = s->world.threads.n;
    for (size_t i = 0; i < nthreads && !s->err; i++) {
        struct wthread *th = vec_at(&s->world.threads, i);
        if (th->tid == 0)
            continue;
        s->nthreads++;
        if (!th->sp)
            continue; /* running, unseen: its stack is swept as the process's */
        /* An answer from the handler lies below the signal frame; a stack pointer read from
         * /proc is the thread's own, with the red zone (128 bytes) below it still live. */
        uintptr_t sp = (uintptr_t)th->sp - (th->answered ? 0 : 128);
        int64_t g = task_at(s, sp);
        if (g >= 0) { /* an M running a G: the G is live from here up */
            struct ltask *t = vec_at(&s->tasks, (size_t)g);
            if (t->state == TASK_RUNNING && !t->sp_seen)
                t->live = sp; /* its saved stack pointer is stale */
            else if (sp < t->live)
                t->live = sp; /* caught switching: the lower of the two */
            t->sp_seen = true;
            t->dead_lo = (uintptr_t)th->dead_lo;
            t->dead_hi = (uintptr_t)th->dead_hi;
            continue;
        }
        uintptr_t lo, hi;
        if (!stack_mapping(&s->world, sp, &lo, &hi) || shared_stack(s, lo, i))
            continue;
        struct ltask *t = vec_push(&s->tasks);
        if (!t) {
            s->err = -ENOMEM;
            return;
        }
        *t = (struct ltask){.kind = T_THREAD,
                            .id = th->tid,
                            .lo = lo,
                            .live = sp,
                            .hi = hi,
                            .dead_lo = (uintptr_t)th->dead_lo,
                            .dead_hi = (uintptr_t)th->dead_hi,
                            .waiter = -1,
                            .deadline = CHAN_FOREVER};
        region_add(s, lo, hi, R_TASK, (uint32_t)(s->tasks.n - 1));
    }
}

/* Each waiter not a G's belongs to the thread whose stack holds it (its frame is there). */
static void match_thread_waiters(struct scan *s)
{
    for (size_t i = 0; i < s->waiters.n; i++) {
        struct lwaiter *lw = vec_at(&s->waiters, i);
        if (lw->task >= 0)
            continue;
        int64_t t = task_at(s, (uintptr_t)lw->w);
        if (t < 0)
            continue;
        struct ltask *lt = vec_at(&s->tasks, (size_t)t);
        if (lt->kind != T_THREAD || lt->waiter >= 0)
            continue;
        lt->waiter = (int32_t)i;
        lw->task = (int32_t)t;
    }
}

/* A large select's sudogs live in its heap bookkeeping, libchan's, not the program's; the
 * others in the waiter's frame, on a stack already a region (regions never nest). */
static void add_heap_sudogs(struct scan *s)
{
    for (size_t i = 0; i < s->waiters.n; i++) {
        const struct lwaiter *lw = vec_at(&s->waiters, i);
        if (lw->ncases && task_at(s, (uintptr_t)lw->sudogs) < 0)
            region_add(s, (uintptr_t)lw->sudogs, (uintptr_t)(lw->sudogs + lw->ncases), R_IGNORE, 0);
    }
}

/* ---- While the world is stopped: the sweep --------------------------------------------------- */

/* Heap sort of the regions by address: no allocation while the world is stopped. */
static void sift(struct region *a, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1].lo > a[c].lo)
            c++;
        if (a[i].lo >= a[c].lo)
            return;
        struct region t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void sort_regions(struct vec *v)
{
    struct region *a = (struct region *)v->p;
    size_t n = v->n;
    for (size_t i = n / 2; i-- > 0;)
        sift(a, i, n);
    for (size_t i = n; i-- > 1;) {
        struct region t = a[0];
        a[0] = a[i];
        a[i] = t;
        sift(a, 0, i);
    }
}

/* The region that contains a, or NULL (sorted by lo; a region inside another is not seen,
 * which leaves the address to the outer one or to the process: the safe side). */
static const struct region *region_of(const struct scan *s, uintptr_t a)
{
    const struct region *r = (const struct region *)s->regions.p;
    size_t lo = 0, hi = s->regions.n;
    while (lo < hi) { /* the last region with r.lo <= a */
        size_t mid = (lo + hi) / 2;
        if (r[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && a < r[lo - 1].hi ? &r[lo - 1] : NULL;
}

static void add_edge(struct scan *s, uint32_t from, uint32_t to)
{
    struct edge *e = vec_push(&s->edges);
    if (!e)
        s->err = -ENOMEM;
    else
        *e = (struct edge){from, to};
}

/* A word equal to the address of channel idx lies at addr. */
static void on_hit(uintptr_t addr, uintptr_t value, int64_t idx, void *arg)
{
    struct scan *s = arg;
    (void)value;
    const struct region *r = region_of(s, addr);
    if (!r) {
        ((struct lchan *)vec_at(&s->chans, (size_t)idx))->root = true;
        return;
    }
    if (r->kind == R_CHAN && r->idx != (uint32_t)idx) {
        add_edge(s, r->idx | FROM_CHAN, (uint32_t)idx);
    } else if (r->kind == R_TASK) {
        const struct ltask *t = vec_at(&s->tasks, r->idx);
        if (addr >= t->live && !(addr >= t->dead_lo && addr < t->dead_hi))
            add_edge(s, r->idx, (uint32_t)idx);
    }
}

static void sweep(struct scan *s)
{
    const struct vec *ours[] = {
        &s->chans,       &s->waiters,       &s->wchans,     &s->tasks,    &s->regions,
        &s->edges,       &s->chan_waiters,  &s->by_stack,   &s->work,     &s->chanset.mem,
        &s->waitset.mem, &s->world.threads, &s->world.maps, &s->world.buf};
    struct wskip skip = {ours, sizeof ours / sizeof ours[0]};
    for (size_t i = 0; i < s->world.maps.n && !s->err; i++) {
        const struct wmap m = *(const struct wmap *)vec_at(&s->world.maps, i);
        if ((m.flags & (WM_READ | WM_WRITE)) != (WM_READ | WM_WRITE) || (m.flags & WM_DEVICE))
            continue;
        world_sweep(&s->world, m.lo, m.hi, &s->chanset, &skip, on_hit, s);
    }
    /* A G's function and argument are its own: an edge from it. */
    for (size_t i = 0; i < s->tasks.n; i++) {
        const struct ltask *t = vec_at(&s->tasks, i);
        for (int k = 0; k < 2 && t->kind == T_G; k++) {
            int64_t c = addrset_get(&s->chanset, t->own[k]);
            if (c >= 0)
                add_edge(s, (uint32_t)i, (uint32_t)c);
        }
    }
}

/* Everything read while the world is stopped. */
static void read_stopped(struct scan *s)
{
    int e = world_read_maps(&s->world);
    if (e) {
        s->err = e;
        return;
    }
    read_chans(s);
    if (task_src && !s->err)
        task_src->visit(add_g, s);
    if (!s->err)
        order_tasks(s);
    if (!s->err)
        add_threads(s);
    if (!s->err)
        order_tasks(s);
    if (!s->err)
        match_thread_waiters(s);
    if (!s->err)
        add_heap_sudogs(s);
    if (!s->err)
        sort_regions(&s->regions);
    if (s->sweep && !s->err)
        sweep(s);
}

/* ---- The scan: stop, read, resume ------------------------------------------------------------ */

static void scan_free(struct scan *s)
{
    world_free(&s->world);
    vec_free(&s->chans);
    vec_free(&s->waiters);
    vec_free(&s->wchans);
    vec_free(&s->tasks);
    vec_free(&s->regions);
    vec_free(&s->edges);
    vec_free(&s->chan_waiters);
    vec_free(&s->by_stack);
    vec_free(&s->work);
    addrset_free(&s->chanset);
    addrset_free(&s->waitset);
}

static void scan_init(struct scan *s, bool sweep_memory, const char *self_sp)
{
    *s = (struct scan){
        .sweep = sweep_memory,
        .self_sp = self_sp,
        .chans = {.esz = sizeof(struct lchan)},
        .waiters = {.esz = sizeof(struct lwaiter)},
        .wchans = {.esz = sizeof(struct wchan)},
        .tasks = {.esz = sizeof(struct ltask)},
        .regions = {.esz = sizeof(struct region)},
        .edges = {.esz = sizeof(struct edge)},
        .chan_waiters = {.esz = sizeof(uint32_t)},
        .by_stack = {.esz = sizeof(uint32_t)},
        .work = {.esz = sizeof(uint32_t)},
    };
    s->world.pagemap = -1;
}

/* Steps 1 to 3 of the top of the file, up to the copies; check_mu held. */
static int scan_run(struct scan *s)
{
    trace_buffers_lock();
    registry_freeze();
    registry_visit_frozen(add_chan, s);
    if (!s->err && s->sweep)
        trace_buffers_visit(add_trace_buffer, s);
    if (!s->err)
        s->err = addrset_init(&s->chanset, s->chans.n);
    for (size_t i = 0; i < s->chans.n && !s->err; i++)
        s->err =
            addrset_add(&s->chanset, ((struct lchan *)vec_at(&s->chans, i))->addr, (uint32_t)i);
    if (!s->err)
        s->err = addrset_init(&s->waitset, 2 * s->chans.n);
    if (!s->err)
        registry_idle_visit_frozen(add_idle, s);
    const struct task_source *src = task_src;
    if (src)
        src->lock();
    if (!s->err) {
        s->err = world_stop(&s->world, s->self_sp);
        if (!s->err && s->sweep && s->world.unseen && !s->world.vm_read)
            s->err = -ENOSYS; /* a thread runs on, and memory cannot be read safely */
        if (!s->err)
            read_stopped(s);
        world_resume(&s->world);
    }
    s->now = chan_now();
    if (src)
        src->unlock();
    registry_thaw();
    trace_buffers_unlock();
    return s->err;
}

/* ---- After the resume: what can run, and what it reaches ------------------------------------- */

static struct lwaiter *waiter_of(const struct scan *s, const struct ltask *t)
{
    return t->waiter >= 0 ? vec_at(&s->waiters, (size_t)t->waiter) : NULL;
}

/* Blocked with nothing but a peer to wake it: no deadline, not being woken, every channel
 * known, no fd among what it waits on (an fd's readiness comes from the world: a wait on io/'s
 * fd channels, as chan_io(3)'s waits are, is never leaked). A G must be parked; a thread's
 * deadline is known only from the tracer's notes. */
static bool blocked_forever(const struct ltask *t, const struct lwaiter *w)
{
    if (!w || w->done || w->unknown_chan || w->fds)
        return false;
    if (t->kind == T_G)
        return t->state == TASK_PARKED && t->deadline == CHAN_FOREVER;
    return w->since != 0 && !w->timed;
}

static int edge_cmp(const void *a, const void *b)
{
    const struct edge *x = a, *y = b;
    return x->from < y->from ? -1 : x->from > y->from;
}

/* The edges from one owner: [*first, *first + n) of the sorted edges. */
struct span {
    size_t first, n;
};

struct graph {
    struct span *task_edges, *chan_edges;
};

static void mark(struct scan *s, uint32_t c)
{
    struct lchan *lc = vec_at(&s->chans, c);
    if (lc->marked)
        return;
    lc->marked = true;
    uint32_t *slot = vec_push(&s->work);
    if (slot)
        *slot = c;
    else
        s->err = -ENOMEM;
}

/* Task t can run: what its live stack holds is reachable, and what it waits on. */
static void activate(struct scan *s, const struct graph *g, uint32_t t)
{
    struct ltask *lt = vec_at(&s->tasks, t);
    if (lt->active)
        return;
    lt->active = true;
    const struct edge *e = (const struct edge *)s->edges.p + g->task_edges[t].first;
    for (size_t i = 0; i < g->task_edges[t].n; i++)
        mark(s, e[i].to);
    const struct lwaiter *w = waiter_of(s, lt);
    for (uint32_t i = 0; w && i < w->n; i++) {
        const struct wchan *wc = vec_at(&s->wchans, w->first + i);
        if (wc->chan >= 0)
            mark(s, (uint32_t)wc->chan);
    }
}

/* The fixed point (step 3): marks every reachable channel and activates every task that can
 * run; returns how many candidates stay blocked (the leaked). */
static size_t reach(struct scan *s)
{
    size_t nt = s->tasks.n, nc = s->chans.n;
    if (s->edges.n)
        qsort(s->edges.p, s->edges.n, sizeof(struct edge), edge_cmp);
    struct graph g = {calloc(nt + 1, sizeof(struct span)), calloc(nc + 1, sizeof(struct span))};
    if (!g.task_edges || !g.chan_edges) {
        free(g.task_edges);
        free(g.chan_edges);
        s->err = -ENOMEM;
        return 0;
    }
    const struct edge *e = (const struct edge *)s->edges.p;
    for (size_t i = 0; i < s->edges.n; i++) {
        struct span *sp = e[i].from & FROM_CHAN ? &g.chan_edges[e[i].from & ~FROM_CHAN]
                                                : &g.task_edges[e[i].from];
        if (sp->n++ == 0)
            sp->first = i;
    }
    /* Which waiters wait on each channel. */
    for (size_t i = 0; i < s->waiters.n; i++) {
        const struct lwaiter *w = vec_at(&s->waiters, i);
        for (uint32_t k = 0; k < w->n; k++) {
            const struct wchan *wc = vec_at(&s->wchans, w->first + k);
            if (wc->chan >= 0)
                ((struct lchan *)vec_at(&s->chans, (size_t)wc->chan))->nwaiters++;
        }
    }
    uint32_t *cw = vec_room(&s->chan_waiters, s->wchans.n + 1);
    if (!cw) {
        s->err = -ENOMEM;
        goto out;
    }
    size_t at = 0;
    for (size_t c = 0; c < nc; c++) {
        struct lchan *lc = vec_at(&s->chans, c);
        lc->first_waiter = (uint32_t)at;
        at += lc->nwaiters;
        lc->nwaiters = 0;
    }
    for (size_t i = 0; i < s->waiters.n; i++) {
        const struct lwaiter *w = vec_at(&s->waiters, i);
        for (uint32_t k = 0; k < w->n; k++) {
            const struct wchan *wc = vec_at(&s->wchans, w->first + k);
            if (wc->chan < 0)
                continue;
            struct lchan *lc = vec_at(&s->chans, (size_t)wc->chan);
            cw[lc->first_waiter + lc->nwaiters++] = (uint32_t)i;
        }
    }
    s->chan_waiters.n = at;

    /* The roots: channels held outside every stack and block, or in use right now; the tasks
     * that can run; the waiters whose task is unknown (their stack was swept as the process's,
     * but they hold what they wait on too). */
    for (size_t c = 0; c < nc; c++) {
        const struct lchan *lc = vec_at(&s->chans, c);
        if (lc->root || lc->busy)
            mark(s, (uint32_t)c);
    }
    for (size_t t = 0; t < nt; t++) {
        struct ltask *lt = vec_at(&s->tasks, t);
        lt->candidate = blocked_forever(lt, waiter_of(s, lt));
        if (!lt->candidate)
            activate(s, &g, (uint32_t)t);
    }
    for (size_t i = 0; i < s->waiters.n; i++) {
        const struct lwaiter *w = vec_at(&s->waiters, i);
        for (uint32_t k = 0; w->task < 0 && k < w->n; k++) {
            const struct wchan *wc = vec_at(&s->wchans, w->first + k);
            if (wc->chan >= 0)
                mark(s, (uint32_t)wc->chan);
        }
    }
    /* A reachable channel makes what its buffer holds reachable, and its waiters able to run. */
    while (s->work.n > 0 && !s->err) {
        uint32_t c = *(uint32_t *)vec_at(&s->work, --s->work.n);
        const struct edge *ce = e + g.chan_edges[c].first;
        for (size_t i = 0; i < g.chan_edges[c].n; i++)
            mark(s, ce[i].to);
        const struct lchan *lc = vec_at(&s->chans, c);
        for (uint32_t k = 0; k < lc->nwaiters; k++) {
            const struct lwaiter *w = vec_at(&s->waiters, cw[lc->first_waiter + k]);
            if (w->task >= 0)
                activate(s, &g, (uint32_t)w->task);
        }
    }
out:;
    size_t leaked = 0;
    for (size_t t = 0; t < nt; t++) {
        const struct ltask *lt = vec_at(&s->tasks, t);
        leaked += lt->candidate && !lt->active;
    }
    free(g.task_edges);
    free(g.chan_edges);
    return leaked;
}

/* ---- Reports --------------------------------------------------------------------------------- */

static const struct ltask *task_of(const struct scan *s, const struct lwaiter *w)
{
    return w->task >= 0 ? vec_at(&s->tasks, (size_t)w->task) : NULL;
}

static const struct wchan *wchan_at(const struct scan *s, const struct lwaiter *w, uint32_t k)
{
    return vec_at(&s->wchans, w->first + k);
}

/* Whether ignore leaves w out (see chan_leak.h). */
static bool ignored(const struct scan *s, const struct lwaiter *w,
                    const struct chan_leak_ignore *ign)
{
    if (!ign)
        return false;
    if (ign->min_blocked > 0 && w->since && s->now - w->since < ign->min_blocked)
        return true;
    if (w->n == 0 || (!ign->nchans && !ign->prefix))
        return false;
    size_t plen = ign->prefix ? strlen(ign->prefix) : 0;
    for (uint32_t k = 0; k < w->n; k++) {
        const struct wchan *wc = wchan_at(s, w, k);
        const struct lchan *lc = wc->chan >= 0 ? vec_at(&s->chans, (size_t)wc->chan) : NULL;
        bool listed = false;
        for (size_t i = 0; lc && i < ign->nchans && !listed; i++)
            listed = (uintptr_t)ign->chans[i] == lc->addr;
        if (!listed && lc && ign->prefix && lc->name[0] &&
            strncmp(lc->name, ign->prefix, plen) == 0) /* an unnamed channel has no prefix */
            listed = true;
        if (!listed)
            return false;
    }
    return true;
}

static void print_who(FILE *out, const struct scan *s, const struct lwaiter *w)
{
    const struct ltask *t = task_of(s, w);
    if (t && t->kind == T_G) {
        fprintf(out, "goroutine %lld", (long long)t->id);
        return;
    }
    pid_t tid = t ? (pid_t)t->id : w->tid;
    char name[NAME_MAX_LEN];
    if (w->task_id) /* a task of another user-space scheduler, on the thread it blocked on */
        fprintf(out, "task %llu on ", (unsigned long long)w->task_id);
    if (!tid) {
        fputs("thread (unknown)", out);
    } else if (thread_name_get(tid, name)) {
        fprintf(out, "thread %d ", (int)tid);
        print_quoted(out, name);
    } else {
        fprintf(out, "thread %d", (int)tid);
    }
}

/* As Go's dump and chan_mpg_wait's report: a select is one whatever its nil cases. */
static const char *state_of(const struct lwaiter *w) { return wait_reason_words(w->why); }

static void print_chan(FILE *out, const struct scan *s, int32_t c)
{
    if (c < 0) {
        fputs("chan (not registered)", out);
        return;
    }
    const struct lchan *lc = vec_at(&s->chans, (size_t)c);
    print_chan_label(out, (const void *)lc->addr, lc->name, lc->role);
}

/* Go's goroutine header, then the channels it waits on. */
static void print_waiter(FILE *out, const struct scan *s, const struct lwaiter *w)
{
    fputc('\n', out);
    print_who(out, s, w);
    fprintf(out, " [%s", state_of(w));
    if (w->since) {
        fputs(", ", out);
        print_duration(out, s->now - w->since);
    }
    fputs("]:\n", out);
    for (uint32_t k = 0; k < w->n; k++) {
        const struct wchan *wc = wchan_at(s, w, k);
        fputc('\t', out);
        print_chan(out, s, wc->chan);
        fprintf(out, " %s\n", wc->send ? "send" : "recv");
    }
}

/* Gs first, by id; then threads, by id; waiters of unknown threads last. */
static const struct scan *sort_scan;
static int waiter_cmp(const void *a, const void *b)
{
    const struct lwaiter *x = vec_at(&sort_scan->waiters, *(const uint32_t *)a);
    const struct lwaiter *y = vec_at(&sort_scan->waiters, *(const uint32_t *)b);
    const struct ltask *tx = task_of(sort_scan, x), *ty = task_of(sort_scan, y);
    int kx = tx ? (tx->kind == T_G ? 0 : 1) : 2, ky = ty ? (ty->kind == T_G ? 0 : 1) : 2;
    if (kx != ky)
        return kx - ky;
    int64_t ix = tx ? tx->id : x->tid, iy = ty ? ty->id : y->tid;
    return ix < iy ? -1 : ix > iy;
}

/* The waiters to report, sorted: *out (malloc), their number; -ENOMEM. */
static int64_t select_waiters(const struct scan *s, bool leaked_only,
                              const struct chan_leak_ignore *ign, uint32_t **out)
{
    uint32_t *v = malloc((s->waiters.n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < s->waiters.n; i++) {
        const struct lwaiter *w = vec_at(&s->waiters, i);
        const struct ltask *t = task_of(s, w);
        if (w->done || ignored(s, w, ign))
            continue;
        if (leaked_only && !(t && t->candidate && !t->active))
            continue;
        v[n++] = (uint32_t)i;
    }
    sort_scan = s; /* check_mu held */
    qsort(v, n, sizeof *v, waiter_cmp);
    *out = v;
    return (int64_t)n;
}

static void print_leftovers(FILE *out, const struct scan *s, const uint32_t *v, size_t n)
{
    size_t gs = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ltask *t = task_of(s, vec_at(&s->waiters, v[i]));
        gs += t && t->kind == T_G;
    }
    fprintf(out,
            "leftover waiters: %zu goroutine%s and %zu thread%s blocked in channel "
            "operations:\n",
            gs, gs == 1 ? "" : "s", n - gs, n - gs == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
        print_waiter(out, s, vec_at(&s->waiters, v[i]));
}

/* "who sends" / "who receives", every waiter on channel c. */
static void print_waiters_on(FILE *out, const struct scan *s, uint32_t c)
{
    const struct lchan *lc = vec_at(&s->chans, c);
    const uint32_t *cw = (const uint32_t *)s->chan_waiters.p + lc->first_waiter;
    for (uint32_t k = 0; k < lc->nwaiters; k++) {
        const struct lwaiter *w = vec_at(&s->waiters, cw[k]);
        bool send = false;
        for (uint32_t j = 0; j < w->n; j++) {
            const struct wchan *wc = wchan_at(s, w, j);
            if (wc->chan == (int32_t)c && wc->send)
                send = true;
        }
        fputs(k ? ", " : " ", out);
        print_who(out, s, w);
        fprintf(out, " %s%s", send ? "sends" : "receives", w->select ? " (select)" : "");
    }
    if (lc->nwaiters == 0)
        fputs(" nobody", out);
}

static void print_leaks(FILE *out, struct scan *s, const uint32_t *v, size_t n)
{
    size_t gs = 0;
    for (size_t i = 0; i < n; i++)
        gs += task_of(s, vec_at(&s->waiters, v[i]))->kind == T_G;
    size_t ths = n - gs, nchans = 0;
    /* "1 of 11 goroutines is", "1 of 1 goroutine is", "2 of 11 goroutines are". */
    fputs("partial deadlock: ", out);
    if (gs)
        fprintf(out, "%zu of %zu goroutine%s", gs, s->ngs, s->ngs == 1 ? "" : "s");
    if (gs && ths)
        fputs(" and ", out);
    if (ths)
        fprintf(out, "%zu of %zu thread%s", ths, s->nthreads, s->nthreads == 1 ? "" : "s");
    fprintf(out, " %s blocked forever:\n", n == 1 ? "is" : "are");
    for (size_t i = 0; i < n; i++) {
        const struct lwaiter *w = vec_at(&s->waiters, v[i]);
        print_waiter(out, s, w);
        nchans += w->n;
    }
    /* The wait-for picture: each channel they wait on, once, with everyone waiting on it (none
     * when each waits on no channel: a nil channel, select {}). */
    if (nchans)
        fputs("\nwait-for (no goroutine or thread that can run holds any of these channels):\n",
              out);
    for (size_t i = 0; i < n; i++) {
        const struct lwaiter *w = vec_at(&s->waiters, v[i]);
        for (uint32_t k = 0; k < w->n; k++) {
            int32_t c = wchan_at(s, w, k)->chan;
            if (c < 0 || ((struct lchan *)vec_at(&s->chans, (size_t)c))->printed)
                continue;
            ((struct lchan *)vec_at(&s->chans, (size_t)c))->printed = true;
            fputc('\t', out);
            print_chan(out, s, c);
            fputc(':', out);
            print_waiters_on(out, s, (uint32_t)c);
            fputc('\n', out);
        }
    }
    if (s->world.unseen)
        fprintf(out,
                "(%zu thread%s could not be stopped, %s registers unseen: each leak above "
                "was found by two checks)\n",
                s->world.unseen, s->world.unseen == 1 ? "" : "s",
                s->world.unseen == 1 ? "its" : "their");
}

/* A trace running: an event per leaked waiter, on the checking thread's track. */
static void trace_leaks(const struct scan *s, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct lwaiter *w = vec_at(&s->waiters, v[i]);
        const struct ltask *t = task_of(s, w);
        const struct wchan *wc = w->n ? wchan_at(s, w, 0) : NULL;
        const struct lchan *lc = wc && wc->chan >= 0 ? vec_at(&s->chans, (size_t)wc->chan) : NULL;
        trace_leak(lc ? (const void *)lc->addr : NULL, wc && wc->send, w->select, t->kind == T_G,
                   t->id, w->since ? s->now - w->since : 0);
    }
}

/* ---- The checks ------------------------------------------------------------------------------ */

/* Who a leaked waiter is, to find it again in a second scan: the same waiter, blocked since the
 * same moment, in the same task. No channel address: a copy of one would be found by the
 * second sweep. */
struct leak_id {
    const struct waiter *w;
    int64_t since, id;
    enum task_kind kind;
};

static struct leak_id *leak_ids(const struct scan *s, size_t *n)
{
    struct leak_id *v = malloc((s->tasks.n + 1) * sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < s->tasks.n; i++) {
        const struct ltask *t = vec_at(&s->tasks, i);
        const struct lwaiter *w = waiter_of(s, t);
        if (t->candidate && !t->active)
            v[(*n)++] = (struct leak_id){w->w, w->since, t->id, t->kind};
    }
    return v;
}

static bool leaked_before(const struct leak_id *v, size_t n, const struct lwaiter *w,
                          const struct ltask *t)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].w == w->w && v[i].since == w->since && v[i].id == t->id && v[i].kind == t->kind)
            return true;
    return false;
}

/* What chan_leftovers (leaks false) and chan_leak_check (true) share; self_sp: the caller's
 * frame, its registers spilled above it. Not inlined into check_entry: its locals, in a frame
 * above regs, would count as the caller's, old bytes of earlier calls among them. */
__attribute__((noinline)) static int check(FILE *out, const struct chan_leak_ignore *ign,
                                           bool leaks, const char *self_sp)
{
    if (ign && ign->nchans && !ign->chans)
        return -EINVAL; /* the list it says it has is not there */
    if (!(atomic_load_explicit(&trace_flags, memory_order_relaxed) & (TF_REGISTRY | TF_NAMED)))
        return -ENODEV;
    pthread_mutex_lock(&check_mu);
    struct scan s;
    scan_init(&s, leaks, self_sp);
    int err = scan_run(&s);
    size_t leaked = err || !leaks ? 0 : reach(&s);
    if (!err && !s.err && leaked && s.world.unseen) {
        /* Some thread ran on: look again, and keep what both looks found. */
        size_t nids;
        struct leak_id *ids = leak_ids(&s, &nids);
        scan_free(&s);
        scan_init(&s, leaks, self_sp);
        err = ids ? scan_run(&s) : -ENOMEM;
        if (!err)
            reach(&s);
        for (size_t i = 0; i < s.tasks.n && !err; i++) {
            struct ltask *t = vec_at(&s.tasks, i);
            if (t->candidate && !t->active && !leaked_before(ids, nids, waiter_of(&s, t), t))
                t->active = true;
        }
        free(ids);
    }
    if (!err)
        err = s.err;
    int64_t n = 0;
    uint32_t *v = NULL;
    if (!err) {
        n = select_waiters(&s, leaks, ign, &v);
        if (n < 0)
            err = (int)n;
    }
    if (!err && n > 0) {
        if (out) {
            if (leaks)
                print_leaks(out, &s, v, (size_t)n);
            else
                print_leftovers(out, &s, v, (size_t)n);
            fflush(out);
        }
        if (leaks && tracing(TF_EVENTS))
            trace_leaks(&s, v, (size_t)n);
    }
    free(v);
    scan_free(&s);
    pthread_mutex_unlock(&check_mu);
    return err ? err : (int)n;
}

/* The public calls come through here: the caller's callee-saved registers are spilled into
 * this frame (__builtin_unwind_init, and setjmp for good measure), and its stack counts from
 * regs up. */
__attribute__((noinline)) static int check_entry(FILE *out, const struct chan_leak_ignore *ign,
                                                 bool leaks)
{
    __builtin_unwind_init();
    jmp_buf regs;
    memset(&regs, 0, sizeof regs); /* what setjmp leaves unwritten is not an old frame's */
    setjmp(regs);
    int r = check(out, ign, leaks, (const char *)&regs);
    __asm__ volatile("" : : "r"(&regs) : "memory"); /* regs lives until here */
    return r;
}

int chan_leftovers(FILE *out, const struct chan_leak_ignore *ignore)
{
    return check_entry(out, ignore, false);
}

int chan_leak_check(FILE *out, const struct chan_leak_ignore *ignore)
{
    return check_entry(out, ignore, true);
}

/* ---- CHAN_LEAKCHECK, and the SIGQUIT dump ---------------------------------------------------- */

static bool at_exit_on;

static void report_at_exit(void)
{
    if (chan_leftovers(stderr, NULL) > 0)
        chan_leak_check(stderr, NULL);
}

void leak_from_env(void)
{
    const char *v = getenv("CHAN_LEAKCHECK");
    if (!v || !*v || strcmp(v, "0") == 0)
        return;
    chan_dump_enable();
    at_exit_on = true;
    atexit(report_at_exit);
}

void leak_after_dump(FILE *out)
{
    if (!at_exit_on)
        return;
    int n = chan_leak_check(out, NULL);
    if (n == 0)
        fputs("leak check: no goroutine or thread is blocked forever\n", out);
    else if (n < 0)
        fprintf(out, "leak check: %s\n", strerror(-n));
    fflush(out);
}
