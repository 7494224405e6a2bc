/* SPDX-License-Identifier: MIT */
/*
 * group.c - golang.org/x/sync/errgroup: a WaitGroup of tasks, a context cancelled by the
 * first task that fails, and a limit kept by a buffered channel used as a semaphore.
 *
 * As in Go's errgroup.go:
 *  - Go(f): take a slot of the limit (a send on sem, which blocks while sem is full), add one
 *    to the WaitGroup, start the task. The task runs f, records its error if it is the first
 *    (a CAS from 0; the winner cancels the context), gives its slot back (a receive from sem)
 *    and calls done as its very last touch of the group.
 *  - Wait: wait on the WaitGroup, cancel the context, return the first error.
 *  - SetLimit: replace sem, refused while a slot of the old one is taken; but n < 0 (no limit)
 *    is never refused, as Go's SetLimit(-1) never panics: an old sem whose slots are still
 *    taken is retired, kept until the group is freed (after its last task has returned).
 * Each task carries the sem it took a slot of, so that a limit set later never mixes with it.
 * The group's sem and spawn are configuration: written only by set_limit/set_spawn, which
 * must not run at the same time as go/trygo (Go's rule too), hence plain fields.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "chan_sync.h"

/* A limit removed while tasks held slots of it: their sem, freed with the group. */
struct retired {
    chan_t *sem;
    struct retired *next;
};

struct chan_group {
    chan_ctx_t *ctx;         /* a child of the parent: cancelled at the first error or wait */
    chan_wg_t *wg;           /* the tasks started and not yet returned */
    _Atomic int err;         /* the first error a task returned; 0 while none */
    chan_t *sem;             /* elemsize 0, capacity = the limit; NULL: no limit */
    chan_spawn_fn *spawn;    /* NULL: a detached thread per task */
    struct retired *retired; /* configuration, as sem */
    _Atomic int waits;       /* chan_group_wait calls in progress: free refuses while any */
};

struct task {
    chan_group_t *g;
    int (*fn)(chan_ctx_t *ctx, void *arg);
    void *arg;
    chan_t *sem; /* the semaphore this task holds a slot of, or NULL */
};

chan_group_t *chan_group_make(chan_ctx_t *parent)
{
    if (!parent) {
        errno = EINVAL;
        return NULL;
    }
    chan_group_t *g = malloc(sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    g->ctx = chan_ctx_with_cancel(parent);
    g->wg = g->ctx ? chan_wg_make() : NULL;
    if (!g->wg) {
        chan_ctx_free(g->ctx);
        free(g);
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&g->err, 0);
    g->sem = NULL;
    g->spawn = NULL;
    g->retired = NULL;
    atomic_init(&g->waits, 0);
    return g;
}

chan_ctx_t *chan_group_ctx(const chan_group_t *g) { return g ? g->ctx : NULL; }

/* Go's SetLimit(-1): the limit goes at once. Tasks still holding slots of it (or a go() blocked
 * on a limit of 0) keep using the old sem, so it cannot be freed now: it is retired. */
static int remove_limit(chan_group_t *g)
{
    if (!g->sem)
        return 0;
    if (chan_len(g->sem) == 0 && chan_free(g->sem) == 0) {
        g->sem = NULL;
        return 0;
    }
    struct retired *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = (struct retired){g->sem, g->retired};
    g->retired = r;
    g->sem = NULL;
    return 0;
}

/* Go's SetLimit: "modify limit while goroutines in the group are still active" panics there,
 * for n >= 0 only. */
int chan_group_set_limit(chan_group_t *g, int n)
{
    if (!g)
        return -EINVAL;
    if (n < 0)
        return remove_limit(g);
    if (g->sem && chan_len(g->sem) != 0)
        return -EBUSY;
    chan_t *sem = chan_make(0, (size_t)n);
    if (!sem)
        return -ENOMEM;
    /* An empty sem has no slot taken; -EBUSY is left only for a go() blocked on a limit of 0. */
    if (chan_free(g->sem) == -EBUSY) {
        chan_free(sem);
        return -EBUSY;
    }
    g->sem = sem;
    return 0;
}

int chan_group_set_spawn(chan_group_t *g, chan_spawn_fn *spawn)
{
    if (!g)
        return -EINVAL;
    g->spawn = spawn;
    return 0;
}

/* Go's errgroup.(*Group).Go's goroutine body and done(). */
static void run(void *p)
{
    struct task t = *(struct task *)p;
    free(p);
    chan_group_t *g = t.g;
    int err = t.fn(g->ctx, t.arg);
    int none = 0;
    if (err != 0 && atomic_compare_exchange_strong(&g->err, &none, err))
        chan_ctx_cancel(g->ctx);
    if (t.sem)
        chan_recv(t.sem, NULL); /* give the slot back */
    chan_wg_done(g->wg);        /* the last touch of g: a wait may free it now */
}

static void *run_thread(void *p)
{
    run(p);
    return NULL;
}

/* Without a spawn function: a detached thread per task. */
static int start_thread(struct task *t)
{
    pthread_attr_t attr;
    pthread_t th;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&th, &attr, run_thread, t);
        pthread_attr_destroy(&attr);
    }
    return -rc;
}

/* Go's Go and TryGo: wait selects whether a full limit blocks (Go) or fails (TryGo). */
static int start(chan_group_t *g, int (*fn)(chan_ctx_t *, void *), void *arg, bool wait)
{
    if (!g || !fn)
        return -EINVAL;
    struct task *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    *t = (struct task){g, fn, arg, g->sem};
    if (t->sem) {
        int rc = wait ? chan_send(t->sem, NULL) : chan_trysend(t->sem, NULL);
        if (rc != 0) {
            free(t);
            return rc; /* -EAGAIN: at the limit (try); a sem is never closed */
        }
    }
    int rc = chan_wg_add(g->wg, 1);
    bool counted = rc == 0;
    if (counted) {
        int64_t s = g->spawn ? g->spawn(run, t) : start_thread(t);
        if (s >= 0)
            return 0; /* t belongs to the task now */
        rc = s < INT32_MIN ? -EAGAIN : (int)s;
    }
    /* Undone in run()'s order: the slot first, then the count, whose done may let a wait return
     * and its caller free g. */
    if (t->sem)
        chan_recv(t->sem, NULL);
    if (counted)
        chan_wg_done(g->wg);
    free(t);
    return rc;
}

int chan_group_go(chan_group_t *g, int (*fn)(chan_ctx_t *, void *), void *arg)
{
    return start(g, fn, arg, true);
}

int chan_group_trygo(chan_group_t *g, int (*fn)(chan_ctx_t *, void *), void *arg)
{
    return start(g, fn, arg, false);
}

int chan_group_wait(chan_group_t *g)
{
    if (!g)
        return -EINVAL;
    /* Counted from its first touch of g to its last, so that chan_group_free refuses while it
     * runs: the WaitGroup's own count of waiters ends with chan_wg_wait, before the cancel and
     * the read of the error below, and a second waiter there would read a group that the
     * owner, its own wait returned, had freed meanwhile. */
    atomic_fetch_add(&g->waits, 1);
    /* Fails only when a plugged-in scheduler's park gives the wait up (chan_sched(3)): the
     * tasks still run then, and the context stays as it is. */
    int r = chan_wg_wait(g->wg);
    if (r == 0) {
        chan_ctx_cancel(g->ctx); /* Go: the context is cancelled the first time Wait returns */
        r = atomic_load(&g->err);
    }
    atomic_fetch_sub(&g->waits, 1); /* the last touch of g */
    return r;
}

int chan_group_free(chan_group_t *g)
{
    if (!g)
        return 0;
    if (atomic_load(&g->waits) != 0 || chan_wg_free(g->wg) == -EBUSY)
        return -EBUSY;
    chan_free(g->sem); /* no task holds a slot: nothing is blocked on it */
    while (g->retired) {
        struct retired *r = g->retired;
        g->retired = r->next;
        chan_free(r->sem); /* its tasks have returned too */
        free(r);
    }
    chan_ctx_free(g->ctx);
    free(g);
    return 0;
}
