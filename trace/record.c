/* SPDX-License-Identifier: MIT */
/*
 * record.c - tracing: the hooks that the core calls (hooks.h) record every channel event into
 * per-thread buffers, from chan_trace_start to chan_trace_stop, which hands them to json.c to
 * be written as Chrome Trace Event Format JSON for Perfetto. Also here: naming threads and
 * channels (chan_trace_name_*, kept in registry.c; a trace records channel names as events),
 * and the environment (CHAN_TRACE, CHAN_DUMP; CHAN_LEAKCHECK goes to leak.c). chan_dump is
 * dump.c's. The public side is chan_trace.h. Not part of the drop-in pair.
 *
 * Invariants:
 *  - Off costs one predictable branch per operation: trace_flags, read relaxed by tracing().
 *  - Events go to per-thread slots. A slot's buffer is made when the trace starts (the first
 *    CHAN_TRACE_THREADS slots) or when a thread registers; a thread claims a slot on its first
 *    event with one fetch_add, and never allocates inside an operation. No slot or a full one:
 *    the event is dropped and counted.
 *  - Writer and stop meet Dekker-style on the slot's busy word: the writer stores busy = 1 and
 *    then loads active_gen (both seq_cst), the stop stores active_gen = 0 and then waits for
 *    every claimed slot's busy to read 0. Either the writer sees the stop and writes nothing, or
 *    the stop waits for its write. Slots are static: a stale writer only ever touches busy.
 *  - No hook dereferences a channel after its operation parked: it may be freed (hooks.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "chan_trace.h"
#include "chan_internal.h"
#include "trace_internal.h"

#define MAX_SLOTS 1024
#define DEFAULT_THREADS 64
#define DEFAULT_EVENTS 8192 /* 448 KiB a thread, mapped at start */

struct slot {
    _Atomic uint32_t busy;
    pid_t tid;
    uint32_t n, cap;
    _Atomic uint64_t dropped; /* full */
    struct tev *ev;
    char name[NAME_MAX_LEN]; /* its thread's name, kept when the thread exits during the trace
                                (under ctl); "": look its tid up in registry.c */
} __attribute__((aligned(128)));

static struct slot slots[MAX_SLOTS];
static _Atomic uint32_t active_gen; /* the running trace's generation; 0: none */
static uint32_t last_gen;           /* under ctl */
static _Atomic uint32_t slot_next;  /* slots claimed by this trace */
static _Atomic uint32_t slot_ready; /* slots [0, slot_ready) have a buffer from the start */
static _Atomic uint64_t dropped_noslot;
static _Atomic uint64_t dropped_last; /* the last stopped trace's total */
static uint64_t (*_Atomic task_hook)(void);
/* The task hook the scheduler in the tree offers (trace_task_hook_swap): while it is the one
 * set, the ids are G ids, and the dump says "goroutine N". */
static uint64_t (*_Atomic g_hook)(void);

static pthread_mutex_t ctl = PTHREAD_MUTEX_INITIALIZER; /* start, stop, register */
static FILE *trace_out;
static int64_t trace_t0;

/* Channel names given during a trace (EV_NAME events index them); under names_mu. */
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;
static char (*tr_names)[NAME_MAX_LEN];
static uint32_t tr_nnames, tr_capnames;

/* ---- The calling thread ------------------------------------------------------------------ */

struct tls {
    uint32_t gen; /* the trace its slot belongs to */
    int32_t slot; /* -1: none for that trace */
    pid_t tid;
    uint64_t flows;        /* flow ids made by this thread in this trace */
    uint64_t pending_flow; /* the flow of a hand-off done by the operation in progress */
    bool skip_op;          /* trace_woken reported the operation in progress */
};

static _Thread_local struct tls self_tls;

/* Never cache the address across a park (docs/DESIGN.md, invariant 10: an M:N task may move). */
__attribute__((noinline)) static struct tls *tls_self(void) { return &self_tls; }

static pid_t tid_self(struct tls *t)
{
    if (!t->tid)
        t->tid = (pid_t)syscall(SYS_gettid);
    return t->tid;
}

/* A slot for t in trace g: one fetch_add; buffers were made at start. */
static void claim(struct tls *t, uint32_t g)
{
    t->gen = g;
    t->slot = -1;
    t->flows = 0;
    t->pending_flow = 0;
    t->skip_op = false;
    tid_self(t);
    uint32_t i = atomic_fetch_add_explicit(&slot_next, 1, memory_order_relaxed);
    if (i < atomic_load_explicit(&slot_ready, memory_order_acquire))
        t->slot = (int32_t)i;
}

/* Claims (if needed) and returns the thread's state for the running trace, or NULL. */
static struct tls *current(void)
{
    uint32_t g = atomic_load_explicit(&active_gen, memory_order_acquire);
    if (!g)
        return NULL;
    struct tls *t = tls_self();
    if (t->gen != g)
        claim(t, g);
    return t;
}

/* The id of the task running on this thread, by chan_trace_task_hook, or 0. */
static uint64_t task_self(void)
{
    uint64_t (*hook)(void) = atomic_load_explicit(&task_hook, memory_order_relaxed);
    return hook ? hook() : 0;
}

static void emit(struct tls *t, struct tev *e)
{
    e->task = task_self();
    e->ts = chan_now();
    if (t->slot < 0) {
        atomic_fetch_add_explicit(&dropped_noslot, 1, memory_order_relaxed);
        return;
    }
    struct slot *s = &slots[t->slot];
    atomic_store_explicit(&s->busy, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&active_gen, memory_order_seq_cst) == t->gen) {
        if (!s->tid)
            s->tid = t->tid;
        if (s->n < s->cap)
            s->ev[s->n++] = *e;
        else
            atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&s->busy, 0, memory_order_release);
}

static uint64_t new_flow(struct tls *t) { return ((uint64_t)(t->slot + 2) << 40) | ++t->flows; }

/* The value of an element of 1, 2, 4 or 8 bytes as a signed integer; false for other sizes. */
static bool value_of(uint32_t elemsize, const void *elem, int64_t *v)
{
    if (!elem)
        return false;
    switch (elemsize) {
    case 1: {
        int8_t x;
        memcpy(&x, elem, 1);
        *v = x;
        return true;
    }
    case 2: {
        int16_t x;
        memcpy(&x, elem, 2);
        *v = x;
        return true;
    }
    case 4: {
        int32_t x;
        memcpy(&x, elem, 4);
        *v = x;
        return true;
    }
    case 8: {
        int64_t x;
        memcpy(&x, elem, 8);
        *v = x;
        return true;
    }
    default: return false;
    }
}

/* ---- Hooks (hooks.h) ------------------------------------------------------------------------ */

void trace_make(struct chan *c)
{
    uint32_t f = atomic_load_explicit(&trace_flags, memory_order_relaxed);
    if (f & TF_REGISTRY)
        (void)registry_add(c, NULL); /* without memory, left out of dumps */
    struct tls *t;
    if ((f & TF_EVENTS) && (t = current())) {
        struct tev e = {.kind = EV_MAKE,
                        .c = c,
                        .aux = (uint32_t)(c->cap > UINT32_MAX ? UINT32_MAX : c->cap),
                        .val = c->elemsize};
        emit(t, &e);
    }
}

void trace_free(struct chan *c)
{
    uint32_t f = atomic_load_explicit(&trace_flags, memory_order_relaxed);
    if (f & (TF_REGISTRY | TF_NAMED))
        registry_del(c);
    struct tls *t;
    if ((f & TF_EVENTS) && (t = current())) {
        struct tev e = {.kind = EV_FREE, .c = c};
        emit(t, &e);
    }
}

uint32_t trace_begin(void)
{
    struct tls *t = tls_self();
    t->skip_op = false;
    t->pending_flow = 0;
    return atomic_load_explicit(&active_gen, memory_order_relaxed);
}

void trace_op(struct chan *c, enum chan_dir dir, enum trace_form form, int r, const void *elem,
              uint32_t gen)
{
    struct tls *t = current();
    if (!t || !c)
        return;
    if (t->skip_op) { /* it parked: trace_woken told the story, and c may be gone */
        t->skip_op = false;
        return;
    }
    struct tev e = {.kind = EV_OP,
                    .c = c,
                    .res = (int16_t)r,
                    .flow = t->pending_flow,
                    .bits = (uint8_t)((dir == CHAN_SEND ? B_SEND : 0) | form << B_FORM_SHIFT)};
    t->pending_flow = 0;
    /* An operation that began before this trace (gen, trace_begin's) may have parked, and been
     * woken while no trace ran (trace_woken did not run): c may be freed already. Only a key
     * then. One that began in this trace and parked was told by trace_woken; one that did not
     * park has c from its caller. (Not "the thread's first event": that lost the value and
     * capacity of a thread's first operation, such as the first send of a thread started
     * during the trace; nor a note in the thread's state: an M:N task may end its operation on
     * another thread.) */
    if (gen != t->gen) {
        e.bits |= B_NOCAP;
    } else {
        e.aux = (uint32_t)(c->cap > UINT32_MAX ? UINT32_MAX : c->cap);
        /* The value of one that moved, and of a send whatever its result (the value offered:
         * what a full trysend drops); a receive that did not get one reports no value. */
        if ((r == 0 || dir == CHAN_SEND) && value_of(c->elemsize, elem, &e.val))
            e.bits |= B_HASVAL;
    }
    emit(t, &e);
}

void trace_handoff(struct chan *c, enum chan_dir dir, struct sudog *sg, const void *elem)
{
    struct tls *t = current();
    if (!t)
        return;
    struct waiter *w = sg->w;
    struct tev e = {.kind = EV_WAKE,
                    .c = c,
                    .bits = dir == CHAN_SEND ? B_SEND : 0,
                    .aux = (uint32_t)(c->cap > UINT32_MAX ? UINT32_MAX : c->cap)};
    e.flow = t->slot >= 0 ? new_flow(t) : 0;
    w->t.flow = e.flow;
    t->pending_flow = e.flow;
    if (dir == CHAN_SEND) { /* the value went to the woken receiver */
        if (value_of(c->elemsize, elem, &e.val))
            e.bits |= B_HASVAL;
        w->t.hasval = (e.bits & B_HASVAL) != 0;
        w->t.val = e.val;
    } else { /* we received (from the buffer's head if buffered); the woken sender's value */
        if (value_of(c->elemsize, elem, &e.val))
            e.bits |= B_HASVAL;
        w->t.hasval = value_of(c->elemsize, sg->elem, &e.val2);
        if (w->t.hasval)
            e.bits |= B_HASVAL2;
        w->t.val = e.val2;
    }
    emit(t, &e);
}

void trace_close(struct chan *c, int r, struct sudog *woken)
{
    struct tls *t = current();
    if (!t)
        return;
    struct tev e = {.kind = EV_CLOSE, .c = c, .res = (int16_t)r};
    emit(t, &e);
    for (struct sudog *sg = woken; sg; sg = sg->next) {
        struct tev k = {.kind = EV_WAKE,
                        .c = c,
                        .bits = B_CLOSE | (sg->is_send ? B_SEND : 0),
                        .aux = (uint32_t)(c->cap > UINT32_MAX ? UINT32_MAX : c->cap)};
        k.flow = t->slot >= 0 ? new_flow(t) : 0;
        sg->w->t.flow = k.flow;
        sg->w->t.hasval = false;
        emit(t, &k);
    }
}

void trace_waiter_init(struct waiter *w, int64_t deadline)
{
    w->t.timed = deadline != CHAN_FOREVER;
    w->t.deadline = deadline;
    w->t.since = chan_now();
    w->t.tid = tid_self(tls_self());
    uint64_t (*hook)(void) = atomic_load_explicit(&task_hook, memory_order_relaxed);
    w->t.task = hook ? hook() : 0;
    w->t.g = w->t.task && hook == atomic_load_explicit(&g_hook, memory_order_relaxed);
}

void trace_block(struct waiter *w, bool is_select)
{
    struct tls *t = current();
    if (!t)
        return;
    /* No sudog (park_nothing): a nil channel's operation, or a select with no channel. */
    struct sudog *sg = w->nsudog ? &w->sudogs[0] : NULL;
    bool send = sg ? sg->is_send : w->why == WAIT_SEND_NIL;
    struct tev e = {.kind = EV_BLOCK,
                    .c = sg ? sg->c : NULL,
                    .aux = w->nsudog,
                    .bits = (uint8_t)((send ? B_SEND : 0) | (is_select ? B_SELECT : 0))};
    /* A blocked sender's value waits in its sudog (a select's: in its case events). */
    if (sg && !is_select && sg->is_send && value_of(sg->c->elemsize, sg->elem, &e.val))
        e.bits |= B_HASVAL;
    /* A wait with a deadline says so ("form":"until"), and when the deadline is (val2): it may
     * end with no peer. timed is known when the trace ran at waiter_init (since != 0). */
    if (w->t.since && w->t.timed) {
        e.bits |= (uint8_t)(TR_UNTIL << B_FORM_SHIFT);
        e.val2 = w->t.deadline;
    }
    emit(t, &e);
}

void trace_woken(struct waiter *w, int r, bool is_select)
{
    struct tls *t = current();
    if (!t)
        return;
    t->skip_op = true;
    t->pending_flow = 0;
    struct tev e = {.kind = EV_WOKEN, .res = (int16_t)r, .flow = w->t.flow};
    if (is_select)
        e.bits |= B_SELECT;
    if (w->fired && r != -ETIMEDOUT) {
        e.c = w->fired->c;
        e.aux = w->fired->index;
        if (w->fired->is_send)
            e.bits |= B_SEND;
        if (is_select)
            e.res = w->ok ? 0 : -EPIPE;
        if (w->ok && w->t.hasval) {
            e.val = w->t.val;
            e.bits |= B_HASVAL;
        }
    } else if (w->nsudog) {
        e.c = w->sudogs[0].c;
        if (w->sudogs[0].is_send)
            e.bits |= B_SEND;
        e.res = (int16_t)r; /* -ETIMEDOUT, or a plugged-in scheduler's park gave up */
        e.flow = 0;
    } else if (w->why == WAIT_SEND_NIL) { /* park_nothing's: on no channel */
        e.bits |= B_SEND;
    }
    emit(t, &e);
}

void trace_select(const struct chan_case *cases, size_t n, enum trace_form form, int r,
                  uint32_t gen)
{
    struct tls *t = current();
    if (!t)
        return;
    if (t->skip_op) {
        t->skip_op = false;
        return;
    }
    struct tev e = {.kind = EV_SELECT,
                    .res = (int16_t)(r < 0 ? r : 0),
                    .flow = t->pending_flow,
                    .bits = (uint8_t)(B_SELECT | form << B_FORM_SHIFT),
                    .aux = (uint32_t)(r >= 0           ? (uint32_t)r
                                      : n > UINT32_MAX ? UINT32_MAX
                                                       : n)};
    t->pending_flow = 0;
    if (r >= 0 && cases) {
        const struct chan_case *cs = &cases[r];
        e.c = cs->chan;
        if (cs->dir == CHAN_SEND)
            e.bits |= B_SEND;
        bool deref = cs->chan && gen == t->gen; /* as in trace_op */
        if (!cs->ok)
            e.res = -EPIPE;
        else if (deref && value_of(cs->chan->elemsize, cs->elem, &e.val))
            e.bits |= B_HASVAL;
        if (deref)
            e.val2 = (int64_t)cs->chan->cap;
        else
            e.bits |= B_NOCAP;
    }
    emit(t, &e);
}

void trace_select_cases(const struct chan_case *cases, size_t n)
{
    struct tls *t = current();
    if (!t || !cases || n > CHAN_SELECT_MAX)
        return; /* -EINVAL: the select reports it */
    for (size_t i = 0; i < n && i < TRACE_CASES_MAX; i++) {
        const struct chan_case *cs = &cases[i];
        struct tev e = {.kind = EV_CASE,
                        .c = cs->chan,
                        .aux = (uint32_t)i,
                        .val2 = (int64_t)n,
                        .bits = cs->dir == CHAN_SEND ? B_SEND : 0};
        if (cs->chan && cs->dir == CHAN_SEND && value_of(cs->chan->elemsize, cs->elem, &e.val))
            e.bits |= B_HASVAL;
        emit(t, &e);
    }
}

void trace_timer_fire(struct chan *c)
{
    struct tls *t = current();
    if (!t)
        return;
    struct tev e = {.kind = EV_TIMER, .c = c};
    emit(t, &e);
}

void trace_chan_role(struct chan *c, enum chan_role role)
{
    if (tracing(TF_REGISTRY))
        registry_role(c, (int)role);
    struct tls *t = tracing(TF_EVENTS) ? current() : NULL;
    if (t) {
        struct tev e = {.kind = EV_ROLE, .c = c, .aux = (uint32_t)role};
        emit(t, &e);
    }
}

void trace_leak(const void *c, bool send, bool select, bool is_g, int64_t id, int64_t blocked)
{
    struct tls *t = current();
    if (!t)
        return;
    struct tev e = {.kind = EV_LEAK,
                    .c = c,
                    .val = id,
                    .val2 = blocked,
                    .aux = is_g,
                    .bits = (uint8_t)((send ? B_SEND : 0) | (select ? B_SELECT : 0))};
    emit(t, &e);
}

/* ---- Names ----------------------------------------------------------------------------------- */

/* A named thread exits (the destructor of tname_key): its name is forgotten (registry.c), so
 * that a thread id reused later does not inherit it. If the running trace has a track for the
 * thread, the track keeps the name: chan_trace_stop reads slots[].name first. Under ctl, so
 * that a trace being stopped (and written) sees the name in one place or the other.
 * Thread-locals are still there while key destructors run. */
static void thread_name_release(void *unused)
{
    (void)unused;
    struct tls *t = tls_self();
    pid_t tid = tid_self(t);
    char name[NAME_MAX_LEN];
    pthread_mutex_lock(&ctl);
    if (thread_name_forget(tid, name)) {
        uint32_t g = atomic_load_explicit(&active_gen, memory_order_relaxed);
        if (g && t->gen == g && t->slot >= 0)
            memcpy(slots[t->slot].name, name, NAME_MAX_LEN);
    }
    pthread_mutex_unlock(&ctl);
}

static pthread_key_t tname_key;
static int tname_key_err;
static pthread_once_t tname_once = PTHREAD_ONCE_INIT;
static void tname_key_make(void)
{
    tname_key_err = pthread_key_create(&tname_key, thread_name_release);
}

int chan_trace_name_thread(const char *name)
{
    if (!name)
        return -EINVAL;
    pthread_once(&tname_once, tname_key_make);
    /* Any non-NULL value: the destructor runs at the thread's exit. */
    if (tname_key_err || pthread_setspecific(tname_key, (void *)&tname_key) != 0)
        return -ENOMEM;
    int e = thread_name_set(tid_self(tls_self()), name);
    if (e)
        return e;
    int r = chan_trace_register_thread();
    return r == -ESRCH ? 0 : r;
}

/* Adds a name for the running trace; its index, or -1. */
static int64_t trace_name_add(const char *name)
{
    pthread_mutex_lock(&names_mu);
    if (tr_nnames == tr_capnames) {
        uint32_t cap = tr_capnames ? 2 * tr_capnames : 64;
        void *p = realloc(tr_names, cap * sizeof *tr_names);
        if (!p) {
            pthread_mutex_unlock(&names_mu);
            return -1;
        }
        tr_names = p;
        tr_capnames = cap;
    }
    int64_t i = tr_nnames++;
    copy_name(tr_names[i], name);
    pthread_mutex_unlock(&names_mu);
    return i;
}

static void trace_name_event(struct tls *t, const void *c, const char *name)
{
    int64_t i = trace_name_add(name);
    if (i < 0)
        return;
    struct tev e = {.kind = EV_NAME, .c = c, .aux = (uint32_t)i};
    emit(t, &e);
}

int chan_trace_name_chan(chan_t *c, const char *name)
{
    if (!c || !name)
        return -EINVAL;
    atomic_fetch_or_explicit(&trace_flags, TF_NAMED, memory_order_relaxed);
    int rc = registry_add(c, name);
    if (rc)
        return rc; /* no memory for its entry: not named */
    struct tls *t = NULL;
    if ((atomic_load_explicit(&trace_flags, memory_order_relaxed) & TF_EVENTS) && (t = current()))
        trace_name_event(t, c, name);
    return 0;
}

void chan_trace_task_hook(uint64_t (*fn)(void))
{
    atomic_store_explicit(&task_hook, fn, memory_order_relaxed);
}

bool trace_task_hook_swap(uint64_t (*old)(void), uint64_t (*fn)(void))
{
    if (fn)
        atomic_store_explicit(&g_hook, fn, memory_order_relaxed);
    return atomic_compare_exchange_strong_explicit(&task_hook, &old, fn, memory_order_relaxed,
                                                   memory_order_relaxed);
}

/* ---- Starting and stopping ------------------------------------------------------------------ */

static uint32_t env_count(const char *var, uint32_t dflt, uint32_t max)
{
    const char *s = getenv(var);
    if (!s || *s < '0' || *s > '9') /* strtoul would take "-1" for ULONG_MAX: the maximum */
        return dflt;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v == 0)
        return dflt;
    return v > max ? max : (uint32_t)v;
}

/* A buffer of n events, its pages mapped now (MAP_POPULATE): a first touch inside an operation
 * would cost a page fault every 73 events. NULL on failure. */
static struct tev *events_alloc(uint32_t n)
{
    void *p = mmap(NULL, (size_t)n * sizeof(struct tev), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void slots_release(uint32_t upto)
{
    for (uint32_t i = 0; i < upto && i < MAX_SLOTS; i++) {
        if (slots[i].ev)
            munmap(slots[i].ev, (size_t)slots[i].cap * sizeof(struct tev));
        slots[i].ev = NULL;
        slots[i].n = slots[i].cap = 0;
        slots[i].tid = 0;
        slots[i].name[0] = 0;
        atomic_store_explicit(&slots[i].dropped, 0, memory_order_relaxed);
    }
}

/* Records the names of channels named before the trace, so that the trace shows them. */
static void seed_name(const void *c, const char *name, int role, void *arg)
{
    (void)role;
    if (!name[0])
        return;
    int64_t k = trace_name_add(name);
    if (k >= 0) {
        struct tev e = {.kind = EV_NAME, .c = c, .aux = (uint32_t)k};
        emit(arg, &e);
    }
}

static void seed_names(struct tls *t)
{
    for (unsigned i = 0; i < REGISTRY_SHARDS; i++)
        registry_visit(i, seed_name, t);
}

/* fork() while tracing: the child neither records nor writes the parent's file (its copy of
 * the FILE is dropped unflushed: nothing is buffered in it before the stop). */
static void trace_atfork_child(void)
{
    atomic_fetch_and_explicit(&trace_flags, ~TF_EVENTS, memory_order_relaxed);
    atomic_store_explicit(&active_gen, 0, memory_order_relaxed);
    trace_out = NULL;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_setup(void) { pthread_atfork(NULL, NULL, trace_atfork_child); }

int chan_trace_start(const char *path)
{
    if (!path)
        return -EINVAL;
    pthread_once(&atfork_once, atfork_setup);
    pthread_mutex_lock(&ctl);
    if (atomic_load_explicit(&active_gen, memory_order_relaxed)) {
        pthread_mutex_unlock(&ctl);
        return -EBUSY;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        int e = errno;
        pthread_mutex_unlock(&ctl);
        return -e;
    }
    uint32_t nthreads = env_count("CHAN_TRACE_THREADS", DEFAULT_THREADS, MAX_SLOTS);
    uint32_t nevents = env_count("CHAN_TRACE_EVENTS", DEFAULT_EVENTS, 1u << 24);
    for (uint32_t i = 0; i < nthreads; i++) {
        slots[i].ev = events_alloc(nevents);
        if (!slots[i].ev) {
            slots_release(i);
            fclose(f);
            pthread_mutex_unlock(&ctl);
            return -ENOMEM;
        }
        slots[i].cap = nevents;
        slots[i].n = 0;
    }
    pthread_mutex_lock(&names_mu);
    tr_nnames = 0;
    pthread_mutex_unlock(&names_mu);
    trace_out = f;
    trace_t0 = chan_now();
    atomic_store_explicit(&dropped_noslot, 0, memory_order_relaxed);
    atomic_store_explicit(&slot_next, 0, memory_order_relaxed);
    atomic_store_explicit(&slot_ready, nthreads, memory_order_release);
    if (++last_gen == 0)
        last_gen = 1;
    atomic_store_explicit(&active_gen, last_gen, memory_order_seq_cst);
    atomic_fetch_or_explicit(&trace_flags, TF_EVENTS, memory_order_seq_cst);
    struct tls *t = current();
    if (t)
        seed_names(t);
    pthread_mutex_unlock(&ctl);
    return 0;
}

int chan_trace_register_thread(void)
{
    pthread_mutex_lock(&ctl);
    uint32_t g = atomic_load_explicit(&active_gen, memory_order_relaxed);
    if (!g) {
        pthread_mutex_unlock(&ctl);
        return -ESRCH;
    }
    struct tls *t = tls_self();
    int r = 0;
    if (t->gen != g || t->slot < 0) {
        uint32_t i = atomic_fetch_add_explicit(&slot_next, 1, memory_order_relaxed);
        uint32_t ready = atomic_load_explicit(&slot_ready, memory_order_relaxed);
        if (i >= MAX_SLOTS) {
            r = -ENOMEM;
        } else if (i >= ready) { /* beyond the buffers made at start: make this one now */
            uint32_t cap = slots[0].cap ? slots[0].cap : DEFAULT_EVENTS;
            slots[i].ev = events_alloc(cap);
            if (!slots[i].ev)
                r = -ENOMEM;
            else
                slots[i].cap = cap;
        }
        t->gen = g;
        t->slot = r ? -1 : (int32_t)i;
        t->flows = 0;
        t->pending_flow = 0;
        t->skip_op = false;
        tid_self(t);
    }
    pthread_mutex_unlock(&ctl);
    return r;
}

uint64_t chan_trace_dropped(void)
{
    if (!atomic_load_explicit(&active_gen, memory_order_acquire))
        return atomic_load_explicit(&dropped_last, memory_order_relaxed);
    uint64_t d = atomic_load_explicit(&dropped_noslot, memory_order_relaxed);
    uint32_t n = atomic_load_explicit(&slot_next, memory_order_relaxed);
    for (uint32_t i = 0; i < n && i < MAX_SLOTS; i++)
        d += atomic_load_explicit(&slots[i].dropped, memory_order_relaxed);
    return d;
}

/* SIGPIPE is held back while the trace is written: a path that names a pipe nobody reads any
 * more makes chan_trace_stop return -EPIPE rather than kill the process (Go's os.File: only
 * fds 1 and 2 die of a broken pipe). A SIGPIPE the writing raised is taken back; one that was
 * pending before is left to the program. */
struct sigpipe_hold {
    sigset_t old;
    bool was_pending;
};

static void sigpipe_hold(struct sigpipe_hold *h)
{
    sigset_t pipe_set, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &h->old);
    h->was_pending = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
}

static void sigpipe_release(struct sigpipe_hold *h)
{
    sigset_t pipe_set, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (!h->was_pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE)) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &h->old, NULL);
}

int chan_trace_stop(void)
{
    pthread_mutex_lock(&ctl);
    if (!atomic_load_explicit(&active_gen, memory_order_relaxed)) {
        pthread_mutex_unlock(&ctl);
        return -ESRCH;
    }
    atomic_fetch_and_explicit(&trace_flags, ~TF_EVENTS, memory_order_seq_cst);
    atomic_store_explicit(&active_gen, 0, memory_order_seq_cst);
    uint32_t used = atomic_load_explicit(&slot_next, memory_order_relaxed);
    uint32_t ready = atomic_load_explicit(&slot_ready, memory_order_relaxed);
    if (used > MAX_SLOTS)
        used = MAX_SLOTS;
    uint32_t upto = used > ready ? used : ready;
    /* The Dekker handshake: every writer that saw the trace running has finished. */
    for (uint32_t i = 0; i < upto; i++)
        while (atomic_load_explicit(&slots[i].busy, memory_order_seq_cst))
            sched_yield();

    uint64_t dropped = atomic_load_explicit(&dropped_noslot, memory_order_relaxed);
    for (uint32_t i = 0; i < upto; i++)
        dropped += atomic_load_explicit(&slots[i].dropped, memory_order_relaxed);
    atomic_store_explicit(&dropped_last, dropped, memory_order_relaxed);
    int r = 0;
    struct track *tracks = malloc((upto ? upto : 1) * sizeof *tracks);
    /* The trace's channel names are the writer's now: a name given from here on goes to the
     * next trace's table (its EV_NAME event is not recorded in this one). */
    pthread_mutex_lock(&names_mu);
    struct trace_log log = {.t0 = trace_t0,
                            .dropped = dropped,
                            .tracks = tracks,
                            .ntracks = upto,
                            .names = (const char(*)[NAME_MAX_LEN])tr_names,
                            .nnames = tr_nnames};
    tr_names = NULL;
    tr_nnames = tr_capnames = 0;
    pthread_mutex_unlock(&names_mu);
    /* Each track's name: kept in its slot if its thread has exited, else the thread's now. */
    for (uint32_t i = 0; tracks && i < upto; i++) {
        struct slot *sl = &slots[i];
        tracks[i] = (struct track){.tid = sl->tid, .ev = sl->ev, .n = sl->n};
        if (sl->name[0])
            memcpy(tracks[i].name, sl->name, NAME_MAX_LEN);
        else
            thread_name_get(sl->tid, tracks[i].name);
    }
    struct sigpipe_hold hold;
    sigpipe_hold(&hold);
    errno = 0;
    r = tracks ? trace_json_write(trace_out, &log) : -ENOMEM;
    free(tracks);
    free((void *)log.names);
    int werr = errno; /* a failed write's, kept by the stream's error indicator */
    if (fflush(trace_out) != 0 && !r)
        r = -(errno ? errno : EIO);
    if (ferror(trace_out) && !r)
        r = -(werr ? werr : EIO);
    if (fclose(trace_out) != 0 && !r)
        r = -(errno ? errno : EIO);
    sigpipe_release(&hold);
    trace_out = NULL;
    slots_release(upto);
    atomic_store_explicit(&slot_ready, 0, memory_order_relaxed);
    pthread_mutex_unlock(&ctl);
    return r;
}

/* ---- For the leak detector: where the running trace keeps its events ---------------------- */

void trace_buffers_lock(void) { pthread_mutex_lock(&ctl); }

void trace_buffers_unlock(void) { pthread_mutex_unlock(&ctl); }

void trace_buffers_visit(void (*fn)(const void *p, size_t size, void *arg), void *arg)
{
    for (uint32_t i = 0; i < MAX_SLOTS; i++)
        if (slots[i].ev)
            fn(slots[i].ev, (size_t)slots[i].cap * sizeof(struct tev), arg);
}

/* ---- The environment ------------------------------------------------------------------------ */

static void stop_at_exit(void)
{
    int r = chan_trace_stop();
    if (r && r != -ESRCH)
        fprintf(stderr, "libchan: CHAN_TRACE: writing the trace failed: %s\n", strerror(-r));
}

__attribute__((constructor)) static void trace_from_env(void)
{
    leak_from_env();
    const char *d = getenv("CHAN_DUMP");
    if (d && strcmp(d, "sigquit") == 0)
        chan_dump_on_sigquit();
    else if (d && *d && strcmp(d, "0") != 0)
        chan_dump_enable();
    const char *p = getenv("CHAN_TRACE");
    if (p && *p) {
        int r = chan_trace_start(p);
        if (r)
            fprintf(stderr, "libchan: CHAN_TRACE=%s: %s\n", p, strerror(-r));
        else
            atexit(stop_at_exit);
    }
}
