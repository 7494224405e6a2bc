/* SPDX-License-Identifier: MIT */
/*
 * coro.h - a small coroutine runtime plugged into libchan through struct chan_sched, written
 * as chan_sched(3) asks a scheduler author to: the test fixture for real coroutines (not one
 * task per thread) parking and waking through the hook. Header-only, for one test program.
 *
 * Coroutines run on ucontext (makecontext/swapcontext) on n worker threads that share one
 * locked run queue (n = 1: a single-threaded runtime; n = 2: an M:N one, where a coroutine may
 * park on one worker and resume on the other). Each worker calls chan_sched_set. A park
 * switches to the worker's own context, which commits the park under the runtime's lock, so
 * that an unpark on another thread never resumes a context not yet saved (Go's park_m does
 * the same through mcall). A park with a deadline is timed out by an idle worker. A finished
 * coroutine's stack and descriptor are freed at once: any later hook call naming it is a
 * use-after-free that ASan reports.
 *
 * Every hook call is checked against chan_sched(3); a violation is counted and the first one's
 * text kept (coro_violations, coro_first_violation). Tests may also hook park (coro_park_hook:
 * a scheduler that returns early, or gives a wait up) and unpark (coro_unpark_hook).
 */
#ifndef CORO_H
#define CORO_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#include "chan.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORO_TSAN 1
#endif
#endif
#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef CORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

enum { CORO_STACK = 256 * 1024, CORO_ALIVE = 0x7a5c0011 };

enum coro_state {
    CORO_RUNNABLE,
    CORO_RUNNING,
    CORO_PARKING,
    CORO_PARKED,
    CORO_YIELDING,
    CORO_DONE
};

struct coro {
    unsigned magic; /* CORO_ALIVE until freed */
    ucontext_t ctx;
    void *stack;
    void (*fn)(void *);
    void *arg;
    /* Under coro_rt.mu: */
    enum coro_state state;
    bool permit;       /* an unpark not yet consumed */
    bool timedout;     /* made runnable by its deadline */
    int64_t deadline;  /* of its park */
    struct coro *next; /* on the run queue or the parked list */
    /* The coroutine's own, for the tests: */
    int parks; /* park calls so far */
    int64_t last_deadline;
#ifdef CORO_TSAN
    void *fiber;
#endif
};

struct coro_worker {
    ucontext_t sched; /* the worker's own context, between coroutines */
    struct coro *cur;
    pthread_t thread;
#ifdef CORO_ASAN
    const void *stack_bottom; /* of the worker's thread stack, for the switches back */
    size_t stack_size;
#endif
#ifdef CORO_TSAN
    void *fiber;
#endif
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* on CLOCK_MONOTONIC: work, a new deadline, or the end */
    struct coro *head, *tail; /* the run queue */
    struct coro *parked;      /* parked coroutines */
    int live;                 /* not yet DONE */
    bool stopping;            /* coro_wait was called: workers leave once live is 0 */
    int nworkers;
    struct coro_worker *workers;
} coro_rt;

static atomic_long coro_violations, coro_n_current, coro_n_park, coro_n_unpark;
static atomic_int coro_violation_claimed;
static char coro_first_violation[256];

/* Optional, set by a test before coro_start: park's override (returns true and sets *rc to
 * make park return *rc at once; false to park as usual) and a look at every unpark. */
static bool (*coro_park_hook)(struct coro *c, int64_t deadline, int *rc);
static void (*coro_unpark_hook)(struct coro *c);

static _Thread_local struct coro_worker *coro_tl_worker;

/* Re-read after every switch: a coroutine may resume on another worker, and the compiler may
 * keep a thread-local's address across a call (GCC PR 26461). */
__attribute__((noinline)) static struct coro_worker *coro_worker_self(void)
{
    struct coro_worker *w = coro_tl_worker;
    __asm__ volatile("" : "+r"(w));
    return w;
}

static void coro_violate(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void coro_violate(const char *fmt, ...)
{
    atomic_fetch_add(&coro_violations, 1);
    if (atomic_exchange(&coro_violation_claimed, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(coro_first_violation, sizeof coro_first_violation, fmt, ap);
        va_end(ap);
    }
}

/* The coroutine running on the calling thread; NULL on a plain thread. */
static struct coro *coro_self(void)
{
    struct coro_worker *w = coro_worker_self();
    return w ? w->cur : NULL;
}

static void coro_push_locked(struct coro *c)
{
    c->state = CORO_RUNNABLE;
    c->next = NULL;
    if (coro_rt.tail)
        coro_rt.tail->next = c;
    else
        coro_rt.head = c;
    coro_rt.tail = c;
    pthread_cond_signal(&coro_rt.cv);
}

static void coro_unlink_parked_locked(struct coro *c)
{
    for (struct coro **p = &coro_rt.parked; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            return;
        }
}

/* From a coroutine to its worker's context (c->state says why). */
static void coro_switch_out(struct coro *c)
{
    struct coro_worker *w = coro_worker_self();
#ifdef CORO_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(c->state == CORO_DONE ? NULL : &fake, w->stack_bottom,
                                   w->stack_size);
#endif
#ifdef CORO_TSAN
    __tsan_switch_to_fiber(w->fiber, 0);
#endif
    swapcontext(&c->ctx, &w->sched);
#ifdef CORO_ASAN
    w = coro_worker_self(); /* perhaps another worker now */
    __sanitizer_finish_switch_fiber(fake, &w->stack_bottom, &w->stack_size);
#endif
}

/* ---- The hook ---------------------------------------------------------------------------- */

static void *coro_h_current(void)
{
    atomic_fetch_add(&coro_n_current, 1);
    struct coro *c = coro_self();
    if (!c) {
        coro_violate("current() on a thread that runs no coroutine");
        return &coro_rt; /* never NULL */
    }
    return c;
}

static int coro_h_park(void *task, int64_t deadline)
{
    atomic_fetch_add(&coro_n_park, 1);
    struct coro *c = task;
    if (c != coro_self()) {
        coro_violate("park() of %p called by %p, not by that coroutine", task, (void *)coro_self());
        return -ETIMEDOUT;
    }
    if (c->magic != CORO_ALIVE)
        coro_violate("park() of a finished coroutine");
    c->parks++;
    c->last_deadline = deadline;
    int rc;
    if (coro_park_hook && coro_park_hook(c, deadline, &rc))
        return rc;
    pthread_mutex_lock(&coro_rt.mu);
    if (c->permit) { /* the unpark came first */
        c->permit = false;
        pthread_mutex_unlock(&coro_rt.mu);
        return 0;
    }
    if (deadline <= chan_now()) {
        pthread_mutex_unlock(&coro_rt.mu);
        return -ETIMEDOUT;
    }
    c->state = CORO_PARKING;
    c->deadline = deadline;
    c->timedout = false;
    pthread_mutex_unlock(&coro_rt.mu);
    coro_switch_out(c);
    pthread_mutex_lock(&coro_rt.mu);
    if (c->permit) {
        c->permit = false;
        rc = 0;
    } else {
        if (!c->timedout)
            coro_violate("a coroutine resumed with neither an unpark nor its deadline");
        rc = -ETIMEDOUT;
    }
    pthread_mutex_unlock(&coro_rt.mu);
    return rc;
}

static void coro_h_unpark(void *task)
{
    atomic_fetch_add(&coro_n_unpark, 1);
    struct coro *c = task;
    if (c->magic != CORO_ALIVE) {
        coro_violate("unpark() of a finished coroutine");
        return;
    }
    if (coro_unpark_hook)
        coro_unpark_hook(c);
    pthread_mutex_lock(&coro_rt.mu);
    if (c->permit)
        coro_violate("a second unpark() before the first was consumed");
    c->permit = true;
    if (c->state == CORO_PARKED) {
        coro_unlink_parked_locked(c);
        coro_push_locked(c);
    } /* running or parking: park, or the worker committing the park, sees the permit */
    pthread_mutex_unlock(&coro_rt.mu);
}

static const struct chan_sched coro_sched = {coro_h_current, coro_h_park, coro_h_unpark};

/* ---- Coroutines and workers ---------------------------------------------------------------- */

static void coro_trampoline(unsigned lo, unsigned hi)
{
    struct coro *c = (struct coro *)(((uintptr_t)hi << 32) | lo);
#ifdef CORO_ASAN
    struct coro_worker *w = coro_worker_self();
    __sanitizer_finish_switch_fiber(NULL, &w->stack_bottom, &w->stack_size);
#endif
    c->fn(c->arg);
    pthread_mutex_lock(&coro_rt.mu);
    if (c->permit)
        coro_violate("a coroutine ended with an unpark not consumed");
    c->state = CORO_DONE;
    pthread_mutex_unlock(&coro_rt.mu);
    coro_switch_out(c);
    abort(); /* a DONE coroutine is never resumed */
}

static struct coro *coro_go(void (*fn)(void *), void *arg)
{
    struct coro *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->magic = CORO_ALIVE;
    c->fn = fn;
    c->arg = arg;
    c->stack = mmap(NULL, CORO_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c->stack == MAP_FAILED)
        abort();
    getcontext(&c->ctx);
    c->ctx.uc_stack.ss_sp = c->stack;
    c->ctx.uc_stack.ss_size = CORO_STACK;
    c->ctx.uc_link = NULL;
    makecontext(&c->ctx, (void (*)(void))coro_trampoline, 2, (unsigned)(uintptr_t)c,
                (unsigned)((uintptr_t)c >> 32));
#ifdef CORO_TSAN
    c->fiber = __tsan_create_fiber(0);
#endif
    pthread_mutex_lock(&coro_rt.mu);
    coro_rt.live++;
    coro_push_locked(c);
    pthread_mutex_unlock(&coro_rt.mu);
    return c;
}

static void coro_free(struct coro *c)
{
    munmap(c->stack, CORO_STACK);
#ifdef CORO_TSAN
    __tsan_destroy_fiber(c->fiber);
#endif
    c->magic = 0;
    free(c);
}

/* Makes the runnable coroutines whose deadline has passed; the earliest deadline still to come
 * (CHAN_FOREVER for none). */
static int64_t coro_expire_locked(void)
{
    int64_t now = chan_now(), next = CHAN_FOREVER;
    for (struct coro **p = &coro_rt.parked; *p;) {
        struct coro *c = *p;
        if (c->deadline <= now) {
            *p = c->next;
            c->timedout = true;
            coro_push_locked(c);
        } else {
            if (c->deadline < next)
                next = c->deadline;
            p = &c->next;
        }
    }
    return next;
}

static void *coro_worker_main(void *arg)
{
    struct coro_worker *w = arg;
    coro_tl_worker = w;
#ifdef CORO_TSAN
    w->fiber = __tsan_get_current_fiber();
#endif
    chan_sched_set(&coro_sched);
    pthread_mutex_lock(&coro_rt.mu);
    for (;;) {
        int64_t next = coro_expire_locked();
        struct coro *c = coro_rt.head;
        if (!c) {
            if (coro_rt.stopping && coro_rt.live == 0)
                break;
            if (next == CHAN_FOREVER) {
                pthread_cond_wait(&coro_rt.cv, &coro_rt.mu);
            } else {
                struct timespec ts = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
                pthread_cond_timedwait(&coro_rt.cv, &coro_rt.mu, &ts);
            }
            continue;
        }
        coro_rt.head = c->next;
        if (!coro_rt.head)
            coro_rt.tail = NULL;
        c->state = CORO_RUNNING;
        w->cur = c;
        pthread_mutex_unlock(&coro_rt.mu);
#ifdef CORO_ASAN
        void *fake = NULL;
        __sanitizer_start_switch_fiber(&fake, c->stack, CORO_STACK);
#endif
#ifdef CORO_TSAN
        __tsan_switch_to_fiber(c->fiber, 0);
#endif
        swapcontext(&w->sched, &c->ctx);
#ifdef CORO_ASAN
        __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
        w->cur = NULL;
        pthread_mutex_lock(&coro_rt.mu);
        switch (c->state) {
        case CORO_DONE:
            coro_rt.live--;
            coro_free(c); /* at once */
            if (coro_rt.stopping && coro_rt.live == 0)
                pthread_cond_broadcast(&coro_rt.cv);
            break;
        case CORO_PARKING: /* commit the park, unless its unpark came meanwhile */
            if (c->permit) {
                coro_push_locked(c);
            } else {
                c->state = CORO_PARKED;
                c->next = coro_rt.parked;
                coro_rt.parked = c;
                if (c->deadline != CHAN_FOREVER)
                    pthread_cond_broadcast(&coro_rt.cv); /* perhaps the earliest deadline */
            }
            break;
        case CORO_YIELDING: coro_push_locked(c); break;
        default: coro_violate("a coroutine switched out in state %d", (int)c->state);
        }
    }
    pthread_cond_broadcast(&coro_rt.cv);
    pthread_mutex_unlock(&coro_rt.mu);
    chan_sched_set(NULL);
    return NULL;
}

/* Starts n workers; coroutines may be started before or after. */
static void coro_start(int n)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&coro_rt.mu, NULL);
    pthread_cond_init(&coro_rt.cv, &ca);
    pthread_condattr_destroy(&ca);
    coro_rt.head = coro_rt.tail = coro_rt.parked = NULL;
    coro_rt.live = 0;
    coro_rt.stopping = false;
    coro_rt.nworkers = n;
    coro_rt.workers = calloc((size_t)n, sizeof *coro_rt.workers);
    if (!coro_rt.workers)
        abort();
    for (int i = 0; i < n; i++)
        if (pthread_create(&coro_rt.workers[i].thread, NULL, coro_worker_main,
                           &coro_rt.workers[i]) != 0)
            abort();
}

/* Waits until every coroutine has finished, then stops the workers. */
static void coro_wait(void)
{
    pthread_mutex_lock(&coro_rt.mu);
    coro_rt.stopping = true;
    pthread_cond_broadcast(&coro_rt.cv);
    pthread_mutex_unlock(&coro_rt.mu);
    for (int i = 0; i < coro_rt.nworkers; i++)
        pthread_join(coro_rt.workers[i].thread, NULL);
    free(coro_rt.workers);
    coro_rt.workers = NULL;
    pthread_cond_destroy(&coro_rt.cv);
    pthread_mutex_destroy(&coro_rt.mu);
}

/* Lets the other coroutines run (from a coroutine). */
static __attribute__((unused)) void coro_yield(void)
{
    struct coro *c = coro_self();
    pthread_mutex_lock(&coro_rt.mu);
    c->state = CORO_YIELDING;
    pthread_mutex_unlock(&coro_rt.mu);
    coro_switch_out(c);
}

#endif /* CORO_H */
