/* SPDX-License-Identifier: MIT */
/*
 * sched_internal.h - what the files of libchan-mpg share: Go's G, P and M, the one scheduler
 * of the process, and the few calls between proc.c (scheduling) and deadlock.c (the report).
 * The design follows Go's runtime/proc.go; sched/README.md tells where it differs.
 *
 *   G   a coroutine: a function, its argument, a pooled stack (a fiber, fiber.h), and one
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
 *  - A G's timer lives in the scheduler's heap only while the G is parked with that deadline;
 *    the heap lock orders arming (by park_commit, only if the word is still the one it parked
 *    with), firing (CAS under the lock) and removal (by the G when an unpark won).
 *  - runnext: only its owner puts a G there (a store when it is empty, an exchange when not);
 *    the owner and thieves take it by CAS, so each G put there runs once. A thief takes it only
 *    after RUNNEXT_PAUSE_NS during which the owner did not schedule (schedtick). No M is woken
 *    for a G put in runnext while a watcher exists: an idle M that sleeps with a time-out and
 *    looks (m_idle). There is one whenever some M runs Gs and another is idle, except while a
 *    woken or spinning M is on its way to look (it becomes the watcher if it finds none): a G
 *    left in runnext by a G that blocks in a system call or spins is found within WATCH_MAX_NS
 *    and a pause.
 *  - Thread-locals (the current M) are read through m_self(), never cached across a switch:
 *    a G may resume on another M (GCC PR 26461).
 *  - Lock order: sched.lock, then sched.gmu, then sched.tlock. libchan's timer lock (time/) is
 *    never held while one of these is taken, except by its drained hook, which takes
 *    sched.lock alone (deadlock.c).
 */
#ifndef SCHED_INTERNAL_H
#define SCHED_INTERNAL_H

#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu/wfcqueue.h>

#include "sched/chan_sched_mpg.h"
#include "seam.h"
#include "sched/fiber.h"
#include "time/heap.h"

#define RQ_SIZE 256         /* a P's ring (Go's runq is 256 too) */
#define GLOBAL_EVERY 61     /* a P looks at the global queue first every 61 schedules (Go's) */
#define RUNNEXT_MAX 61      /* consecutive runnext picks before the ring gets a turn */
#define SPIN_ROUNDS 40      /* steal rounds an idle M tries before it sleeps */
#define RUNNEXT_PAUSE_NS 3000  /* a thief's pause before it takes a runnext (Go's usleep(3)) */
#define WATCH_MIN_NS 50000     /* the watcher's first sleep (about the kernel's timer slack) */
#define WATCH_MAX_NS 10000000  /* it doubles up to this (Go's sysmon backs off to 10 ms too) */

enum { W_RUN = 0, W_NOTIFIED = 1, W_PARKED = 2, W_MASK = 3 };
enum req { REQ_NONE, REQ_PARK, REQ_YIELD, REQ_EXIT };

/* Go's g. */
struct g {
    struct fiber fiber;            /* its stack, and its saved stack pointer while switched out */
    struct cds_wfcq_node qnode;    /* link in the global queue */
    _Atomic uint64_t wake;         /* seq << 2 | W_* */
    int park_rc;                   /* written by the wake-up's owner: 0 or -ETIMEDOUT */
    enum req req;                  /* what the G asks its g0 when it switches out */
    int64_t deadline;              /* of the park it asks for */
    struct waiter *waiter;         /* libchan's waiter while parked on channels, else NULL */
    bool sleeping;                 /* parked in chan_mpg_sleep_until */
    /* Timer (under sched.tlock). */
    struct heap_node timer;        /* its deadline and slot while in sched.timers */
    uint64_t timer_word;           /* the wake word it was armed for */
    /* Identity and body. */
    int64_t id;
    _Atomic bool live;
    void (*fn)(void *);
    void *arg;
    struct g *next_free;           /* free list (under sched.gmu) */
    struct g *allnext;             /* every G descriptor ever made (under sched.gmu) */
};

/* Go's p. */
struct p {
    _Atomic uint32_t head;         /* taken by the owner and by thieves (CAS) */
    _Atomic uint32_t tail;         /* written by the owner only */
    struct g *_Atomic ring[RQ_SIZE];
    struct g *_Atomic runnext;     /* taken by the owner and by thieves (CAS), set by the owner */
    _Atomic uint32_t schedtick;    /* bumped by the owner at every schedule (Go's schedtick): a
                                      thief that sees it unchanged across its pause knows the
                                      owner is still running the same G */
} __attribute__((aligned(128)));

/* Go's m, with its P. */
struct m {
    struct p p;                    /* first: its own cache lines */
    int id;
    pthread_t thread;
    struct fiber g0;               /* the thread's own stack: the scheduler loop while a G runs */
    struct g *curg;                /* the G running on this M, or NULL on g0 */
    struct g *handoff;             /* a G that switched straight to another G asking to park:
                                      the G switched in commits that park (after_switch) */
    _Atomic uint32_t wake;         /* futex: 1 when woken from idle */
    bool idle;                     /* under sched.lock */
    bool watching;                 /* under sched.lock: this M is sched.watcher */
    unsigned runnext_streak;
    uint64_t rng;
    hwloc_cpuset_t cpuset;         /* where it is bound, or NULL */
} __attribute__((aligned(128)));

/* Go's schedt: the one scheduler of the process (documented global state, defined in proc.c). */
struct schedt {
    _Atomic bool running;
    _Atomic bool stopping;
    int nprocs;
    struct m *ms;
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
    pthread_mutex_t gmu;           /* free list, all-G list, the stack pool (fiber.c) */
    struct g *free_gs;
    struct g *all_gs;
    uint64_t ngs;                  /* G descriptors made */

    /* Timers: one heap of parked Gs by deadline. */
    pthread_mutex_t tlock;
    struct heap timers;            /* room for every G descriptor (g_alloc) */
    _Atomic int64_t timer_next;    /* the earliest deadline, CHAN_FOREVER when none */
};

HIDDEN extern struct schedt sched;

/* The M the calling thread runs, or NULL on a thread that is not an M. Not inlined, and with a
 * compiler barrier: every call re-reads the thread-local on the thread it runs on, since a G
 * that switched out on one M may come back on another (GCC PR 26461). */
HIDDEN struct m *m_self(void);

/* ---- proc.c, for deadlock.c ------------------------------------------------------------------ */

/* Whether a G waits in the global queue or some P's ring; with runnext, also in some P's
 * runnext. Lock-free; exact only while every M is idle. */
HIDDEN bool any_work(bool runnext);

/* How many parked Gs have a timer armed (takes sched.tlock). */
HIDDEN size_t g_timers_armed(void);

/* ---- deadlock.c, for proc.c ------------------------------------------------------------------ */

/* Under sched.lock: an input of the deadlock condition changed towards a deadlock (the last M
 * went idle): let the threads in chan_mpg_wait decide it again. */
HIDDEN void deadlock_recheck_locked(void);

/* The last live G returned: wakes the threads in chan_mpg_wait (takes sched.lock). */
HIDDEN void waiters_wake(void);

/* Called by chan_mpg_start (on) and chan_mpg_stop (off): whether libchan's timer thread tells
 * this scheduler when its last pending timer is done. */
HIDDEN void deadlock_watch_timers(bool on);

#endif
