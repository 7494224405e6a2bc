/*
 * trace.c - tracing (the events; json.c writes them as Chrome Trace Event Format JSON for
 * Perfetto), names, and the dump of live channels with their blocked waiters. The public side
 * is chan_trace.h; the hooks that the core calls are declared in trace.h. Not part of the
 * drop-in pair.
 *
 * Invariants:
 *  - Off costs one predictable branch per operation: trace_flags, read relaxed by TRACE().
 *  - Events go to per-thread slots. A slot's buffer is made when the trace starts (the first
 *    CHAN_TRACE_THREADS slots) or when a thread registers; a thread claims a slot on its first
 *    event with one fetch_add, and never allocates inside an operation. No slot or a full one:
 *    the event is dropped and counted.
 *  - Writer and stop meet Dekker-style on the slot's busy word: the writer stores busy = 1 and
 *    then loads active_gen (both seq_cst), the stop stores active_gen = 0 and then waits for
 *    every claimed slot's busy to read 0. Either the writer sees the stop and writes nothing, or
 *    the stop waits for its write. Slots are static: a stale writer only ever touches busy.
 *  - The registry of live channels (chan_dump) is a set of sharded lists keyed by the channel's
 *    address, each with its own lock: make and free take one shard's lock, never a global one.
 *    The dump holds one shard's lock at a time and only trylocks channels (shard, then channel;
 *    make and free never hold a channel lock while they take a shard's).
 *  - No hook dereferences a channel after its operation parked: it may be freed (trace.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chan_trace.h"
#include "trace.h"
#include "trace_internal.h"

_Atomic uint32_t trace_flags;

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
                                (under ctl and names_mu); "": look the tid up in tnames */
} __attribute__((aligned(128)));

static struct slot slots[MAX_SLOTS];
static _Atomic uint32_t active_gen;   /* the running trace's generation; 0: none */
static uint32_t last_gen;             /* under ctl */
static _Atomic uint32_t slot_next;    /* slots claimed by this trace */
static _Atomic uint32_t slot_ready;   /* slots [0, slot_ready) have a buffer from the start */
static _Atomic uint64_t dropped_noslot;
static _Atomic uint64_t dropped_last; /* the last stopped trace's total */
static uint64_t (*_Atomic task_hook)(void);

static pthread_mutex_t ctl = PTHREAD_MUTEX_INITIALIZER; /* start, stop, register */
static FILE *trace_out;
static int64_t trace_t0;

/* Channel names given during a trace (EV_NAME events index them); under names_mu. */
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;
static char (*tr_names)[NAME_MAX_LEN];
static uint32_t tr_nnames, tr_capnames;

/* Thread names (for the trace and the dump); under names_mu. An entry is freed (tid 0) when its
 * thread exits (tname_key's destructor), so MAX_TNAMES bounds the named threads alive at once. */
#define MAX_TNAMES 512
static struct {
    pid_t tid;
    char name[NAME_MAX_LEN];
} tnames[MAX_TNAMES];
static int ntnames; /* entries [0, ntnames) have been used */

/* ---- The calling thread ------------------------------------------------------------------ */

struct tls {
    uint32_t gen;  /* the trace its slot belongs to */
    int32_t slot;  /* -1: none for that trace */
    pid_t tid;
    uint64_t flows;         /* flow ids made by this thread in this trace */
    uint64_t pending_flow;  /* the flow of a hand-off done by the operation in progress */
    bool skip_op;           /* trace_woken reported the operation in progress */
    bool fresh;             /* claimed by the event being made: see trace_op */
};

static _Thread_local struct tls self_tls;

/* Never cache the address across a park (DESIGN.md: an M:N task may move). */
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
    t->fresh = true;
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

static void emit(struct tls *t, struct tev *e)
{
    uint64_t (*hook)(void) = atomic_load_explicit(&task_hook, memory_order_relaxed);
    e->task = hook ? hook() : 0;
    e->ts = chan_now();
    t->fresh = false;
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

static uint64_t new_flow(struct tls *t)
{
    return ((uint64_t)(t->slot + 2) << 40) | ++t->flows;
}

/* The value of an element of 1, 2, 4 or 8 bytes as a signed integer; false for other sizes. */
static bool value_of(uint32_t elemsize, const void *elem, int64_t *v)
{
    if (!elem)
        return false;
    switch (elemsize) {
    case 1: { int8_t x; memcpy(&x, elem, 1); *v = x; return true; }
    case 2: { int16_t x; memcpy(&x, elem, 2); *v = x; return true; }
    case 4: { int32_t x; memcpy(&x, elem, 4); *v = x; return true; }
    case 8: { int64_t x; memcpy(&x, elem, 8); *v = x; return true; }
    default: return false;
    }
}

/* ---- Hooks (trace.h) ------------------------------------------------------------------------ */

static void registry_add(const struct chan *c, const char *name);
static void registry_del(const struct chan *c);

void trace_make(struct chan *c)
{
    uint32_t f = atomic_load_explicit(&trace_flags, memory_order_relaxed);
    if (f & TF_REGISTRY)
        registry_add(c, NULL);
    struct tls *t;
    if ((f & TF_EVENTS) && (t = current())) {
        struct tev e = {.kind = EV_MAKE, .c = c, .aux = (uint32_t)(c->cap > UINT32_MAX ? UINT32_MAX : c->cap),
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

void trace_begin(void)
{
    struct tls *t = tls_self();
    t->skip_op = false;
    t->pending_flow = 0;
}

void trace_op(struct chan *c, enum chan_dir dir, enum trace_form form, int r, const void *elem)
{
    struct tls *t = current();
    if (!t || !c)
        return;
    if (t->skip_op) { /* it parked: trace_woken told the story, and c may be gone */
        t->skip_op = false;
        return;
    }
    struct tev e = {.kind = EV_OP, .c = c, .res = (int16_t)r, .flow = t->pending_flow,
                    .bits = (uint8_t)((dir == CHAN_SEND ? B_SEND : 0) | form << B_FORM_SHIFT)};
    t->pending_flow = 0;
    /* The thread's first event of this trace: the trace may have started while this operation
     * was parked (trace_woken did not run), and then c may be freed already. Only a key then. */
    if (t->fresh) {
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
    struct tev e = {.kind = EV_WAKE, .c = c, .bits = dir == CHAN_SEND ? B_SEND : 0,
                    .aux = (uint32_t)(c->cap > UINT32_MAX ? UINT32_MAX : c->cap)};
    e.flow = t->slot >= 0 ? new_flow(t) : 0;
    w->t_flow = e.flow;
    t->pending_flow = e.flow;
    if (dir == CHAN_SEND) { /* the value went to the woken receiver */
        if (value_of(c->elemsize, elem, &e.val))
            e.bits |= B_HASVAL;
        w->t_hasval = (e.bits & B_HASVAL) != 0;
        w->t_val = e.val;
    } else { /* we received (from the buffer's head if buffered); the woken sender's value */
        if (value_of(c->elemsize, elem, &e.val))
            e.bits |= B_HASVAL;
        w->t_hasval = value_of(c->elemsize, sg->elem, &e.val2);
        if (w->t_hasval)
            e.bits |= B_HASVAL2;
        w->t_val = e.val2;
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
        struct tev k = {.kind = EV_WAKE, .c = c, .bits = B_CLOSE | (sg->is_send ? B_SEND : 0),
                        .aux = (uint32_t)(c->cap > UINT32_MAX ? UINT32_MAX : c->cap)};
        k.flow = t->slot >= 0 ? new_flow(t) : 0;
        sg->w->t_flow = k.flow;
        sg->w->t_hasval = false;
        emit(t, &k);
    }
}

void trace_waiter_init(struct waiter *w)
{
    w->t_since = chan_now();
    w->t_tid = tid_self(tls_self());
}

void trace_block(struct waiter *w, bool is_select)
{
    struct tls *t = current();
    if (!t || !w->nsudog)
        return;
    struct sudog *sg = &w->sudogs[0];
    struct tev e = {.kind = EV_BLOCK, .c = sg->c, .aux = w->nsudog,
                    .bits = (uint8_t)((sg->is_send ? B_SEND : 0) | (is_select ? B_SELECT : 0))};
    /* A blocked sender's value waits in its sudog (a select's: in its case events). */
    if (!is_select && sg->is_send && value_of(sg->c->elemsize, sg->elem, &e.val))
        e.bits |= B_HASVAL;
    emit(t, &e);
}

void trace_woken(struct waiter *w, int r, bool is_select)
{
    struct tls *t = current();
    if (!t)
        return;
    t->skip_op = true;
    t->pending_flow = 0;
    struct tev e = {.kind = EV_WOKEN, .res = (int16_t)r, .flow = w->t_flow};
    if (is_select)
        e.bits |= B_SELECT;
    if (w->fired && r != -ETIMEDOUT) {
        e.c = w->fired->c;
        e.aux = w->fired->index;
        if (w->fired->is_send)
            e.bits |= B_SEND;
        if (is_select)
            e.res = w->ok ? 0 : -EPIPE;
        if (w->ok && w->t_hasval) {
            e.val = w->t_val;
            e.bits |= B_HASVAL;
        }
    } else if (w->nsudog) {
        e.c = w->sudogs[0].c;
        if (w->sudogs[0].is_send)
            e.bits |= B_SEND;
        e.res = -ETIMEDOUT;
        e.flow = 0;
    }
    emit(t, &e);
}

void trace_select(const struct chan_case *cases, size_t n, enum trace_form form, int r)
{
    struct tls *t = current();
    if (!t)
        return;
    if (t->skip_op) {
        t->skip_op = false;
        return;
    }
    struct tev e = {.kind = EV_SELECT, .res = (int16_t)(r < 0 ? r : 0), .flow = t->pending_flow,
                    .bits = (uint8_t)(B_SELECT | form << B_FORM_SHIFT),
                    .aux = (uint32_t)(r >= 0 ? (uint32_t)r : n > UINT32_MAX ? UINT32_MAX : n)};
    t->pending_flow = 0;
    if (r >= 0 && cases) {
        const struct chan_case *cs = &cases[r];
        e.c = cs->chan;
        if (cs->dir == CHAN_SEND)
            e.bits |= B_SEND;
        bool deref = cs->chan && !t->fresh; /* fresh: as in trace_op */
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
        struct tev e = {.kind = EV_CASE, .c = cs->chan, .aux = (uint32_t)i, .val2 = (int64_t)n,
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

/* ---- Names ------------------------------------------------------------------------------------ */

static int thread_name_find_locked(pid_t tid)
{
    for (int i = 0; i < ntnames; i++)
        if (tnames[i].tid == tid)
            return i;
    return -1;
}

static const char *thread_name_locked(pid_t tid)
{
    int i = thread_name_find_locked(tid);
    return i >= 0 ? tnames[i].name : NULL;
}

/* A named thread exits (the destructor of tname_key): its entry is freed for the next thread
 * to be named, and a thread id reused later does not inherit the name. If the running trace
 * has a track for the thread, the track keeps the name: write_trace reads slots[].name first.
 * Under ctl, so that a trace being stopped (and written) sees the name in one place or the
 * other. Thread-locals are still there while key destructors run. */
static void thread_name_release(void *unused)
{
    (void)unused;
    struct tls *t = tls_self();
    pid_t tid = tid_self(t);
    pthread_mutex_lock(&ctl);
    pthread_mutex_lock(&names_mu);
    int i = thread_name_find_locked(tid);
    if (i >= 0) {
        uint32_t g = atomic_load_explicit(&active_gen, memory_order_relaxed);
        if (g && t->gen == g && t->slot >= 0)
            memcpy(slots[t->slot].name, tnames[i].name, NAME_MAX_LEN);
        tnames[i].tid = 0;
        tnames[i].name[0] = 0;
    }
    pthread_mutex_unlock(&names_mu);
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
    pid_t tid = tid_self(tls_self());
    pthread_mutex_lock(&names_mu);
    int i = thread_name_find_locked(tid);
    if (i < 0)
        i = thread_name_find_locked(0); /* a free entry */
    if (i < 0) {
        if (ntnames == MAX_TNAMES) {
            pthread_mutex_unlock(&names_mu);
            return -ENOMEM;
        }
        i = ntnames++;
    }
    tnames[i].tid = tid;
    copy_name(tnames[i].name, name);
    pthread_mutex_unlock(&names_mu);
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
    registry_add(c, name);
    struct tls *t = NULL;
    if ((atomic_load_explicit(&trace_flags, memory_order_relaxed) & TF_EVENTS) && (t = current()))
        trace_name_event(t, c, name);
    return 0;
}

void chan_trace_task_hook(uint64_t (*fn)(void))
{
    atomic_store_explicit(&task_hook, fn, memory_order_relaxed);
}

/* ---- The registry of live channels: sharded lists keyed by address ------------------------- */

#define NSHARD 64

struct rnode {
    struct rnode *next;
    const struct chan *c;
    char name[NAME_MAX_LEN];
};

static struct shard {
    chanlock_t lock; /* the channel lock's futex mutex: zero is unlocked */
    struct rnode *head;
} __attribute__((aligned(128))) shards[NSHARD];

static struct shard *shard_of(const struct chan *c)
{
    uint64_t x = (uint64_t)(uintptr_t)c >> 4;
    return &shards[(x * 0x9e3779b97f4a7c15ull) >> 58];
}

/* Registers c (or names it when name != NULL and it is registered already). A registry that
 * cannot get memory leaves c out of the dump. */
static void registry_add(const struct chan *c, const char *name)
{
    struct shard *s = shard_of(c);
    lock(&s->lock);
    struct rnode *n = s->head;
    while (n && n->c != c)
        n = n->next;
    if (!n && (n = malloc(sizeof *n))) {
        n->c = c;
        n->name[0] = 0;
        n->next = s->head;
        s->head = n;
    }
    if (n && name)
        copy_name(n->name, name);
    unlock(&s->lock);
}

static void registry_del(const struct chan *c)
{
    struct shard *s = shard_of(c);
    lock(&s->lock);
    struct rnode **p = &s->head;
    while (*p && (*p)->c != c)
        p = &(*p)->next;
    struct rnode *n = *p;
    if (n)
        *p = n->next;
    unlock(&s->lock);
    free(n);
}

int chan_dump_enable(void)
{
    atomic_fetch_or_explicit(&trace_flags, TF_REGISTRY, memory_order_relaxed);
    return 0;
}

/* ---- Starting and stopping ------------------------------------------------------------------ */

static uint32_t env_count(const char *var, uint32_t dflt, uint32_t max)
{
    const char *s = getenv(var);
    if (!s || !*s)
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
static void seed_names(struct tls *t)
{
    for (int i = 0; i < NSHARD; i++) {
        struct shard *s = &shards[i];
        lock(&s->lock);
        for (struct rnode *n = s->head; n; n = n->next) {
            if (!n->name[0])
                continue;
            int64_t k = trace_name_add(n->name);
            if (k >= 0) {
                struct tev e = {.kind = EV_NAME, .c = n->c, .aux = (uint32_t)k};
                emit(t, &e);
            }
        }
        unlock(&s->lock);
    }
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
    if (t) {
        t->fresh = false; /* no operation of ours is in progress */
        seed_names(t);
    }
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
    struct trace_log log = {.t0 = trace_t0, .dropped = dropped, .tracks = tracks, .ntracks = upto,
                            .names = (const char(*)[NAME_MAX_LEN])tr_names, .nnames = tr_nnames};
    tr_names = NULL;
    tr_nnames = tr_capnames = 0;
    /* Each track's name: kept in its slot if its thread has exited, else the thread's now. */
    for (uint32_t i = 0; tracks && i < upto; i++) {
        struct slot *sl = &slots[i];
        tracks[i] = (struct track){.tid = sl->tid, .ev = sl->ev, .n = sl->n};
        const char *nm = !sl->tid ? NULL : sl->name[0] ? sl->name : thread_name_locked(sl->tid);
        if (nm)
            copy_name(tracks[i].name, nm);
    }
    pthread_mutex_unlock(&names_mu);
    r = tracks ? trace_json_write(trace_out, &log) : -ENOMEM;
    free(tracks);
    free((void *)log.names);
    if (fflush(trace_out) != 0 && !r)
        r = -(errno ? errno : EIO);
    if (ferror(trace_out) && !r)
        r = -EIO;
    if (fclose(trace_out) != 0 && !r)
        r = -(errno ? errno : EIO);
    trace_out = NULL;
    slots_release(upto);
    atomic_store_explicit(&slot_ready, 0, memory_order_relaxed);
    pthread_mutex_unlock(&ctl);
    return r;
}

/* ---- The dump -------------------------------------------------------------------------------- */

#define DUMP_WAITERS 16 /* waiters shown per queue; the rest are counted */

struct wsnap {
    pid_t tid;
    int64_t since;
    uint32_t ncases, here; /* its cases in all; those on this queue */
    bool send, select, done;
};

struct csnap {
    const struct chan *c;
    char name[NAME_MAX_LEN];
    bool skipped, closed;
    size_t len, cap, elemsize, nsend, nrecv;
    uint32_t nw;
    struct wsnap w[2 * DUMP_WAITERS];
};

static bool trylock(chanlock_t *l)
{
    uint32_t expected = 0;
    return atomic_compare_exchange_strong_explicit(&l->word, &expected, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Copies c's state with its lock held for as short as it can: the printing comes later.
 * count: the waiters on q, not its sudogs. A select with several cases of one direction on c
 * has a sudog per case on q, and they are adjacent: selectgo's pass 2 appends them at the tail
 * in one span under c's lock, and unlinking others keeps the order. */
static void snap_queue(struct csnap *s, struct waitq *q, bool send, size_t *count)
{
    uint32_t shown = 0;
    bool last_shown = false;
    for (struct sudog *sg = atomic_load_explicit(&q->first, memory_order_relaxed); sg;
         sg = sg->next) {
        struct waiter *w = sg->w;
        if (sg->prev && sg->prev->w == w) { /* the same waiter: one more of its cases */
            if (last_shown)
                s->w[s->nw - 1].here++;
            continue;
        }
        ++*count;
        last_shown = shown++ < DUMP_WAITERS;
        if (!last_shown)
            continue;
        s->w[s->nw++] = (struct wsnap){
            .tid = w->t_tid, .since = w->t_since, .ncases = w->nsudog, .here = 1, .send = send,
            .select = w->nsudog > 1,
            .done = atomic_load_explicit(&w->done, memory_order_relaxed) != 0};
    }
}

static void snap_chan(struct csnap *s, struct chan *c)
{
    s->c = c;
    if (!trylock(&c->lock)) {
        s->skipped = true;
        return;
    }
    s->closed = atomic_load_explicit(&c->closed, memory_order_relaxed);
    s->len = chan_len(c);
    s->cap = c->cap;
    s->elemsize = c->elemsize;
    snap_queue(s, &c->sendq, true, &s->nsend);
    snap_queue(s, &c->recvq, false, &s->nrecv);
    unlock(&c->lock);
}

static void print_dur(FILE *out, int64_t ns)
{
    if (ns >= 1000000000LL)
        fprintf(out, "%.3f s", ns / 1e9);
    else if (ns >= 1000000)
        fprintf(out, "%.3f ms", ns / 1e6);
    else
        fprintf(out, "%.3f us", ns / 1e3);
}

/* A name in double quotes, one line whatever its bytes (as Go's %q): quote and backslash
 * escaped, \n \r \t, other control characters and bytes that are not UTF-8 as \xNN. */
static void dump_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t k = utf8_len(p);
        if (k > 1 || (k == 1 && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')) {
            fwrite(p, 1, k, out);
            p += k;
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default: fprintf(out, "\\x%02x", *p); break;
        }
        p++;
    }
    fputc('"', out);
}

static void print_chan(FILE *out, const struct csnap *s, int64_t now)
{
    if (s->name[0]) {
        fputs("chan ", out);
        dump_str(out, s->name);
        fprintf(out, " (%p)", (const void *)s->c);
    } else {
        fprintf(out, "chan %p", (const void *)s->c);
    }
    if (s->skipped) {
        fputs(": skipped (its lock was held at that moment)\n", out);
        return;
    }
    fprintf(out, ": len %zu cap %zu elemsize %zu %s, %zu blocked senders, %zu blocked receivers\n",
            s->len, s->cap, s->elemsize, s->closed ? "closed" : "open", s->nsend, s->nrecv);
    for (uint32_t i = 0; i < s->nw; i++) {
        const struct wsnap *w = &s->w[i];
        char tname[NAME_MAX_LEN] = "";
        pthread_mutex_lock(&names_mu);
        const char *nm = w->tid ? thread_name_locked(w->tid) : NULL;
        if (nm)
            copy_name(tname, nm);
        pthread_mutex_unlock(&names_mu);
        fprintf(out, "    %s", w->send ? "send" : "recv");
        if (w->select && w->here > 1)
            fprintf(out, " (select of %u, %u of its cases here)", w->ncases, w->here);
        else if (w->select)
            fprintf(out, " (select of %u)", w->ncases);
        if (tname[0]) {
            fputs("  thread ", out);
            dump_str(out, tname);
            fprintf(out, " (tid %d)", (int)w->tid);
        } else if (w->tid)
            fprintf(out, "  thread tid %d", (int)w->tid);
        else
            fputs("  thread unknown", out);
        if (w->since) {
            fputs("  blocked for ", out);
            print_dur(out, now - w->since);
        } else {
            fputs("  blocked since before chan_dump_enable", out);
        }
        if (w->done)
            fputs("  (being woken)", out);
        fputc('\n', out);
    }
    if (s->nsend + s->nrecv > s->nw)
        fprintf(out, "    ... and %zu more\n", s->nsend + s->nrecv - s->nw);
}

int chan_dump(FILE *out)
{
    if (!out)
        return -EINVAL;
    if (!(atomic_load_explicit(&trace_flags, memory_order_relaxed) & (TF_REGISTRY | TF_NAMED)))
        return -ENODEV;
    int64_t now = chan_now();
    fprintf(out, "libchan dump (pid %d): live channels and their blocked waiters\n",
            (int)getpid());
    int listed = 0, skipped = 0;
    for (int i = 0; i < NSHARD; i++) {
        struct shard *sh = &shards[i];
        lock(&sh->lock);
        size_t n = 0;
        for (struct rnode *r = sh->head; r; r = r->next)
            n++;
        struct csnap *snaps = n ? calloc(n, sizeof *snaps) : NULL;
        if (n && !snaps) {
            unlock(&sh->lock);
            fprintf(out, "(shard %d: %zu channels not shown: out of memory)\n", i, n);
            continue;
        }
        size_t k = 0;
        for (struct rnode *r = sh->head; r; r = r->next, k++) {
            memcpy(snaps[k].name, r->name, NAME_MAX_LEN);
            snap_chan(&snaps[k], (struct chan *)r->c);
        }
        unlock(&sh->lock);
        for (k = 0; k < n; k++) {
            print_chan(out, &snaps[k], now);
            listed++;
            skipped += snaps[k].skipped;
        }
        free(snaps);
    }
    fprintf(out, "end of dump: %d channels, %d skipped\n", listed, skipped);
    fflush(out);
    return listed;
}

/* ---- SIGQUIT: a handler that only writes a byte, and a dump thread -------------------------- */

static int sigquit_pipe[2] = {-1, -1};
static pthread_once_t sigquit_once = PTHREAD_ONCE_INIT;
static int sigquit_err;

static void on_sigquit(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t r = write(sigquit_pipe[1], "q", 1);
    (void)r;
    errno = saved;
}

static void *dump_main(void *arg)
{
    (void)arg;
    char buf[64];
    for (;;) {
        ssize_t r = read(sigquit_pipe[0], buf, sizeof buf);
        if (r > 0)
            chan_dump(stderr);
        else if (r == 0 || errno != EINTR)
            return NULL;
    }
}

static void sigquit_setup(void)
{
    chan_dump_enable();
    if (pipe2(sigquit_pipe, O_CLOEXEC) != 0) {
        sigquit_err = -errno;
        return;
    }
    /* The write end never blocks the handler: a full pipe means a dump is coming anyway. */
    fcntl(sigquit_pipe[1], F_SETFL, O_NONBLOCK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int e = pthread_create(&th, &a, dump_main, NULL);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        sigquit_err = -e;
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigquit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGQUIT, &sa, NULL) != 0)
        sigquit_err = -errno;
}

int chan_dump_on_sigquit(void)
{
    pthread_once(&sigquit_once, sigquit_setup);
    return sigquit_err;
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
