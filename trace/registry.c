/* SPDX-License-Identifier: MIT */
/*
 * registry.c - what the tracer knows of the process outside a trace: trace_flags, the word
 * the core's hooks test; the names of threads; and the channels alive, with their names, for
 * chan_dump (registered while chan_dump_enable is on, or once named).
 *
 * Invariants:
 *  - The live channels are sharded lists keyed by the channel's address, each with its own
 *    lock: make and free take one shard's lock, never a global one. A channel is unregistered
 *    (by chan_free's hook) before it is freed, so a channel reached through registry_visit
 *    stays alive until the visit of its shard ends.
 *  - Shard locks are taken one at a time. The leak detector freezes every shard (its list does
 *    not change, and so no registered channel is freed) while it reads them with the other
 *    threads stopped; adding and removing wait for the thaw, without holding the lock.
 *  - The waiters on no channel (a nil channel's operation, select {}) of threads and of sched/'s
 *    Gs are a list of their own (trace_idle_add), frozen with the shards; a node lives in its
 *    waiter's frame and leaves the list, under its lock, before that frame ends.
 *  - Thread names: at most MAX_TNAMES named threads alive at once. An entry is freed when its
 *    thread exits, so a thread id reused later does not inherit the name.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "seam.h"
#include "trace_internal.h"

_Atomic uint32_t trace_flags;

/* ---- Thread names ------------------------------------------------------------------------- */

#define MAX_TNAMES 512

static pthread_mutex_t tnames_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    pid_t tid; /* 0: a free entry */
    char name[NAME_MAX_LEN];
} tnames[MAX_TNAMES];
static int ntnames; /* entries [0, ntnames) have been used */

static int tname_find_locked(pid_t tid)
{
    for (int i = 0; i < ntnames; i++)
        if (tnames[i].tid == tid)
            return i;
    return -1;
}

int thread_name_set(pid_t tid, const char *name)
{
    pthread_mutex_lock(&tnames_mu);
    int i = tname_find_locked(tid);
    if (i < 0)
        i = tname_find_locked(0); /* a free entry */
    if (i < 0) {
        if (ntnames == MAX_TNAMES) {
            pthread_mutex_unlock(&tnames_mu);
            return -ENOMEM;
        }
        i = ntnames++;
    }
    tnames[i].tid = tid;
    copy_name(tnames[i].name, name);
    pthread_mutex_unlock(&tnames_mu);
    return 0;
}

bool thread_name_get(pid_t tid, char name[NAME_MAX_LEN])
{
    pthread_mutex_lock(&tnames_mu);
    int i = tid ? tname_find_locked(tid) : -1;
    if (i >= 0)
        memcpy(name, tnames[i].name, NAME_MAX_LEN);
    pthread_mutex_unlock(&tnames_mu);
    return i >= 0;
}

bool thread_name_forget(pid_t tid, char name[NAME_MAX_LEN])
{
    pthread_mutex_lock(&tnames_mu);
    int i = tid ? tname_find_locked(tid) : -1;
    if (i >= 0) {
        memcpy(name, tnames[i].name, NAME_MAX_LEN);
        tnames[i].tid = 0;
        tnames[i].name[0] = 0;
    }
    pthread_mutex_unlock(&tnames_mu);
    return i >= 0;
}

/* ---- The live channels: sharded lists keyed by address ------------------------------------ */

struct rnode {
    struct rnode *next;
    const void *c;
    char name[NAME_MAX_LEN];
    int role; /* enum chan_role (hooks.h) */
};

static struct shard {
    pthread_mutex_t mu;
    struct rnode *head;
    bool frozen;      /* registry_freeze: the list may not change */
    unsigned waiting; /* threads waiting for it to thaw */
    pthread_cond_t thawed;
} __attribute__((aligned(128))) shards[REGISTRY_SHARDS];

static pthread_once_t shards_once = PTHREAD_ONCE_INIT;

static void shards_init(void)
{
    for (unsigned i = 0; i < REGISTRY_SHARDS; i++) {
        pthread_mutex_init(&shards[i].mu, NULL);
        pthread_cond_init(&shards[i].thawed, NULL);
    }
}

static void shard_lock(struct shard *s)
{
    pthread_once(&shards_once, shards_init);
    pthread_mutex_lock(&s->mu);
}

/* The shard's lock, once the shard is not frozen: for those who change its list. */
static void shard_lock_thawed(struct shard *s)
{
    shard_lock(s);
    while (s->frozen) {
        s->waiting++;
        pthread_cond_wait(&s->thawed, &s->mu);
        s->waiting--;
    }
}

/* Fibonacci hashing of the address: the top 6 bits of the product pick one of 64 shards. */
_Static_assert(REGISTRY_SHARDS == 64, "shard_of keeps 6 bits");
static struct shard *shard_of(const void *c)
{
    uint64_t x = (uint64_t)(uintptr_t)c >> 4;
    return &shards[(x * 0x9e3779b97f4a7c15ull) >> 58];
}

int registry_add(const void *c, const char *name)
{
    struct shard *s = shard_of(c);
    shard_lock_thawed(s);
    struct rnode *n = s->head;
    while (n && n->c != c)
        n = n->next;
    if (!n && (n = chan_malloc(sizeof *n))) {
        n->c = c;
        n->name[0] = 0;
        n->role = 0;
        n->next = s->head;
        s->head = n;
    }
    if (n && name)
        copy_name(n->name, name);
    pthread_mutex_unlock(&s->mu);
    return n ? 0 : -ENOMEM;
}

void registry_role(const void *c, int role)
{
    struct shard *s = shard_of(c);
    shard_lock_thawed(s);
    struct rnode *n = s->head;
    while (n && n->c != c)
        n = n->next;
    if (n)
        n->role = role;
    pthread_mutex_unlock(&s->mu);
}

void registry_del(const void *c)
{
    struct shard *s = shard_of(c);
    shard_lock_thawed(s);
    struct rnode **p = &s->head;
    while (*p && (*p)->c != c)
        p = &(*p)->next;
    struct rnode *n = *p;
    if (n)
        *p = n->next;
    pthread_mutex_unlock(&s->mu);
    chan_mfree(n);
}

bool registry_entry(const void *c, char name[NAME_MAX_LEN], int *role)
{
    struct shard *s = shard_of(c);
    shard_lock(s);
    struct rnode *n = s->head;
    while (n && n->c != c)
        n = n->next;
    if (n)
        memcpy(name, n->name, NAME_MAX_LEN);
    else
        name[0] = '\0';
    *role = n ? n->role : 0;
    pthread_mutex_unlock(&s->mu);
    return n != NULL;
}

void registry_visit(unsigned shard,
                    void (*fn)(const void *c, const char *name, int role, void *arg), void *arg)
{
    struct shard *s = &shards[shard];
    shard_lock(s);
    for (struct rnode *n = s->head; n; n = n->next)
        fn(n->c, n->name, n->role, arg);
    pthread_mutex_unlock(&s->mu);
}

/* ---- Waiters on no channel (trace_idle_add, hooks.h) -------------------------------------- */

/* A list of its own, with a lock and a freeze as a shard's: a thread or G blocked on a nil
 * channel or in select {} is on no channel's queue, so nothing else leads to it. */
static struct {
    pthread_mutex_t mu;
    struct trace_idle *head;
    bool frozen;
    unsigned waiting;
    pthread_cond_t thawed;
} idle = {.mu = PTHREAD_MUTEX_INITIALIZER, .thawed = PTHREAD_COND_INITIALIZER};

static void idle_lock_thawed(void)
{
    pthread_mutex_lock(&idle.mu);
    while (idle.frozen) {
        idle.waiting++;
        pthread_cond_wait(&idle.thawed, &idle.mu);
        idle.waiting--;
    }
}

bool trace_idle_add(struct trace_idle *n, struct waiter *w)
{
    idle_lock_thawed();
    *n = (struct trace_idle){.w = w, .next = idle.head};
    if (idle.head)
        idle.head->prev = n;
    idle.head = n;
    pthread_mutex_unlock(&idle.mu);
    return true;
}

void trace_idle_del(struct trace_idle *n)
{
    idle_lock_thawed();
    if (n->prev)
        n->prev->next = n->next;
    else
        idle.head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    pthread_mutex_unlock(&idle.mu);
}

void registry_idle_visit(void (*fn)(const struct waiter *w, void *arg), void *arg)
{
    pthread_mutex_lock(&idle.mu);
    for (const struct trace_idle *n = idle.head; n; n = n->next)
        fn(n->w, arg);
    pthread_mutex_unlock(&idle.mu);
}

void registry_idle_visit_frozen(void (*fn)(const struct waiter *w, void *arg), void *arg)
{
    for (const struct trace_idle *n = idle.head; n; n = n->next)
        fn(n->w, arg);
}

/* ---- The leak detector's freeze ------------------------------------------------------------ */

void registry_freeze(void)
{
    for (unsigned i = 0; i < REGISTRY_SHARDS; i++) {
        shard_lock(&shards[i]);
        shards[i].frozen = true;
        pthread_mutex_unlock(&shards[i].mu);
    }
    pthread_mutex_lock(&idle.mu);
    idle.frozen = true;
    pthread_mutex_unlock(&idle.mu);
}

void registry_thaw(void)
{
    for (unsigned i = 0; i < REGISTRY_SHARDS; i++) {
        shard_lock(&shards[i]);
        shards[i].frozen = false;
        if (shards[i].waiting)
            pthread_cond_broadcast(&shards[i].thawed);
        pthread_mutex_unlock(&shards[i].mu);
    }
    pthread_mutex_lock(&idle.mu);
    idle.frozen = false;
    if (idle.waiting)
        pthread_cond_broadcast(&idle.thawed);
    pthread_mutex_unlock(&idle.mu);
}

void registry_visit_frozen(void (*fn)(const void *c, const char *name, int role, const void *node,
                                      size_t size, void *arg),
                           void *arg)
{
    for (unsigned i = 0; i < REGISTRY_SHARDS; i++)
        for (struct rnode *n = shards[i].head; n; n = n->next)
            fn(n->c, n->name, n->role, n, sizeof *n, arg);
}
