/* SPDX-License-Identifier: MIT */
/*
 * sched_internal.h - what the files of libchan-mpg share: Go's G, P and M, the one scheduler
 * of the process, and the few calls between proc.c (scheduling), sysmon.c (the monitor) and
 * deadlock.c (the report). The design follows Go's runtime/proc.go; sched/README.md tells where
 * it differs.
 *
 *   G   a coroutine: a function, its argument, a pooled stack (a fiber, fiber.h), and one
 *       atomic word (wake) that is both its park permit and its parked state.
 *   P   a logical processor: a bounded ring of runnable Gs (lock-free for its owner, stealable
 *       by idle Ps) plus runnext, the G that the running G just woke (Go's runnext): it runs
 *       when that G parks, or is taken by an idle P or sysmon if that G keeps the M.
 *   M   an OS thread. It runs Gs only while it holds a P (nprocs Ps, so at most nprocs Ms run
 *       Gs at once), on its own thread stack ("g0") loops: find a runnable G, switch to it, and
 *       when the G switches back, act on its request (park, yield, exit, leave a system call).
 *       Ms are a pool: nprocs made idle at start, more when a P must be handed over while its M is
 *       blocked in a system call (sysmon.c), up to sched.max_m; idle ones sleep (stopm).
 *
 * Invariants:
 *  - A G runs on one M at a time. It is switched in by an M's g0, or directly by the G it
 *    follows on that M when that G parks (the hand-off, see g_park); it switches out to its
 *    M's g0 or, parking, to the next G of its P. A parking G is published (marked PARKED where
 *    a waker can find it) only after its context is saved: by g0 (park_commit), or by the G it
 *    handed the M to, first thing after the switch (after_switch). A yielding or exiting G goes
 *    through g0. So a waker on another M never resumes a G that is still switching out.
 *  - g->wake = seq << 2 | state, state RUN (running or runnable), NOTIFIED (running with a permit:
 *    an unpark came before park), PARKED (off CPU, waiting) or IOREADY (running, registered
 *    with the netpoller, and one of its fds became ready before it committed its park). Only
 *    park_commit moves RUN -> PARKED (bumping seq); unpark moves RUN or IOREADY -> NOTIFIED, or
 *    PARKED -> RUN; the timer moves PARKED -> RUN only for the seq it was armed for, the
 *    netpoller RUN -> IOREADY or PARKED -> RUN only for the seq the G registered with
 *    (netpoll.c). Whoever moves PARKED -> RUN owns the wake-up: it writes park_rc and queues
 *    the G, exactly once. Only the G leaves NOTIFIED and IOREADY.
 *  - A G's timer lives in one P's heap (Go's p.timers), or that P's spill when the heap could
 *    not grow, g->tp's, the P it parked on, and only while the G is parked with that deadline;
 *    that P's tlock orders arming (by park_commit, on the M that holds g->tp, only if the word
 *    is still the one it parked with), firing (CAS under the lock, by whichever M runs that
 *    heap) and removal (by the G when an unpark won, on whatever P it runs now). Only the
 *    owner of a P arms on it (a firing, by any M, may move spilled timers into the heap).
 *  - A P has one owner at a time, the only thread that puts Gs in its ring and runnext and
 *    bumps its ticks: the M with m->p == p (status P_RUNNING); while that M's G is in a system
 *    call (P_SYSCALL, m->oldp == p, m->p == NULL), nobody puts, and the P goes back to that M
 *    (CAS P_SYSCALL -> P_RUNNING) or to sysmon (the same CAS), which hands it to another M or
 *    to the idle Ps. Idle Ps (P_IDLE) are on sched.pidle, under sched.lock, and owned by
 *    whoever takes one off. Anyone takes Gs out of any P by CAS (thieves, sysmon).
 *  - runnext: only its owner puts a G there (a store when it is empty, an exchange when not);
 *    the owner and thieves take it by CAS, so each G put there runs once. A thief (a spinning M,
 *    or sysmon at each look) takes it only after RUNNEXT_PAUSE_NS during which the owner did
 *    not schedule (schedtick), or, sysmon, after a whole look during which it did not. No M is
 *    woken for a G put in runnext: sysmon looks while any P is not idle, so a G left there by a
 *    G that blocks in a system call or spins runs on another P by sysmon's next look (at most
 *    SYSMON_MAX_NS away) and a wake-up.
 *  - An M whose G is in a system call has m->insyscall set from before its P can be taken until
 *    after that G has a P again or waits in the global queue: the deadlock condition (every P
 *    idle) reads it under sched.lock.
 *  - Thread-locals (the current M) are read through m_self(), never cached across a switch:
 *    a G may resume on another M (GCC PR 26461).
 *  - Lock order: sched.lock, then sched.gmu, then a P's tlock (one at a time). libchan's timer
 *    lock (time/) is never held while one of these is taken, except by its drained hook, which
 *    takes sched.lock alone (deadlock.c).
 */
#ifndef SCHED_INTERNAL_H
#define SCHED_INTERNAL_H

#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu/list.h>
#include <urcu/wfcqueue.h>

#include "sched/chan_sched_mpg.h"
#include "seam.h"
#include "sched/fiber.h"
#include "time/heap.h"

#define RQ_SIZE 256           /* a P's ring (Go's runq is 256 too) */
#define NPROCS_MAX 1024       /* Ps at most (Go's _MaxGomaxprocs), and nprocs 0's cap */
#define GLOBAL_EVERY 61       /* a P looks at the global queue first every 61 schedules (Go's) */
#define RUNNEXT_MAX 61        /* consecutive runnext picks before the ring gets a turn */
#define SPIN_ROUNDS 40        /* steal rounds an idle M tries before it sleeps */
#define RUNNEXT_PAUSE_NS 3000 /* a thief's pause before it takes a runnext (Go's usleep(3)) */
#define STEAL_AGE_NS 50000    /* a thief leaves a ring whose oldest G has waited less (proc.c) */
#define M_MAX_DEFAULT 10000   /* Ms at most, unless configured (Go's maxmcount) */
#define M_STACK_SIZE (256 * 1024) /* an M's own stack: the scheduler loop only, Gs have theirs */
#define STACK_SIZE_MAX                                                                             \
    ((size_t)1 << 55) /* a G's stack at most: a chunk of 256 of them and their
                         guards is still counted in a size_t (fiber.c) */

#define TIMERS_MIN 64                 /* a P's timer heap's first size (slots) */
#define TIMER_SPILLED (HEAP_NONE - 1) /* heap_node.idx of a timer in its P's spill (proc.c) */

/* A G's wake word's state (see the invariants): W_IOREADY is W_RUN with an fd's readiness noted
 * by the netpoller for the park the G is about to commit (netpoll.c). */
enum { W_RUN = 0, W_NOTIFIED = 1, W_PARKED = 2, W_IOREADY = 3, W_MASK = 3 };
enum req { REQ_NONE, REQ_PARK, REQ_YIELD, REQ_EXIT, REQ_SYSEXIT };

/* A P's status (Go's _Pidle, _Prunning, _Psyscall). */
enum { P_IDLE, P_RUNNING, P_SYSCALL };

/* Go's g. fiber_make returns it, its fiber first, from the chunk that holds its stack. */
struct g {
    struct fiber fiber;         /* its stack, and its saved stack pointer while switched out */
    struct cds_wfcq_node qnode; /* link in the global queue */
    _Atomic uint64_t wake;      /* seq << 2 | W_* */
    _Atomic int64_t queued;     /* when it was put in the ring it is in (runq_put), for thieves */
    int park_rc;                /* written by the wake-up's owner: 0 or -ETIMEDOUT */
    enum req req;               /* what the G asks its g0 when it switches out */
    int64_t deadline;           /* of the park it asks for */
    struct waiter *waiter;      /* libchan's waiter while parked on channels, else NULL */
    bool sleeping;              /* parked in chan_mpg_sleep_until */
    unsigned syscall_depth;     /* chan_mpg_syscall_enter calls not yet matched by exit */
    /* Timer (under tp->tlock). */
    struct p *tp;               /* the P it parks on with a deadline, whose heap its timer goes in:
                                   set by the G itself before it parks (g_park) */
    struct heap_node timer;     /* its deadline, and its slot while in tp->timers (TIMER_SPILLED
                                   while in tp->spill instead) */
    uint64_t timer_word;        /* the wake word it was armed for */
    struct cds_list_head spill; /* in tp->spill: its heap was full and could not grow */
    /* Identity and body. */
    int64_t id;
    _Atomic bool live;
    void (*fn)(void *);
    void *arg;
    struct g *next_free; /* in a free list: a P's (p->gfree) or sched.free_gs */
    struct g *allnext;   /* every G descriptor ever made (under sched.gmu) */
};

/* Go's p. */
struct p {
    _Atomic uint32_t head; /* taken by the owner and by thieves (CAS) */
    _Atomic uint32_t tail; /* written by the owner only */
    struct g *_Atomic ring[RQ_SIZE];
    struct g *_Atomic runnext;    /* taken by the owner and by thieves (CAS), set by the owner */
    _Atomic uint32_t schedtick;   /* bumped by the owner at every schedule (Go's schedtick): a
                                     thief or sysmon that sees it unchanged over a while knows
                                     the owner is still running the same G */
    _Atomic uint32_t syscalltick; /* bumped by the owner at every system call (Go's): sysmon
                                     tells a new call from one it saw at its last look */
    _Atomic uint32_t status;      /* P_* */
    unsigned runnext_streak;      /* owner only */
    pthread_mutex_t gfree_lock;   /* taken by the owner; by others only when all else is empty */
    struct g *gfree;              /* exited Gs kept for the next spawn (Go's p.gFree) */
    unsigned ngfree;
    int64_t goid_next, goid_end; /* owner only: ids taken from sched.next_id in a batch, for
                                    the spawns of Gs running on this P (Go's goidcache) */
    _Atomic uint64_t spawned;    /* written by the owner only, summed by chan_mpg_stats */
    int id;
    struct p *link;        /* in sched.pidle (under sched.lock) */
    hwloc_cpuset_t cpuset; /* the core the M that holds it is bound to, or NULL */
    /* The timers of the Gs parked on it with a deadline (Go's p.timers, since Go 1.14): armed
     * by its owner only, run by its owner at each schedule and by any M that looks for work
     * (timers_steal) or sysmon, removed by a G woken early from whatever P it runs on then.
     * A line of their own: thieves read the ring's head and tail, not these. */
    _Alignas(64) pthread_mutex_t tlock;
    struct heap timers;         /* grown by the owner when full (timer_arm), halved when a
                                   quarter full (timers_fire, m_idle) */
    _Atomic int64_t timer0;     /* the earliest deadline in timers and spill, CHAN_FOREVER when
                                   none (Go's timer0When): written under tlock, read without it */
    struct cds_list_head spill; /* timers armed while the heap was full and could not grow:
                                   a list through their Gs (proc.c, "The spill") */
    size_t nspill;
    int64_t spill_when; /* the earliest deadline in spill or one before it, CHAN_FOREVER when
                           it is empty */
} __attribute__((aligned(128)));

/* Go's m. */
struct m {
    struct fiber g0;           /* the thread's own stack: the scheduler loop while a G runs */
    struct g *curg;            /* the G running on this M, or NULL on g0 */
    struct g *handoff;         /* a G that switched straight to another G asking to park:
                                  the G switched in commits that park (after_switch) */
    struct p *p;               /* the P it holds, or NULL */
    struct p *oldp;            /* its P while its G is in a system call (Go's oldp) */
    struct p *nextp;           /* under sched.lock: the P given with a wake-up (startm) */
    struct g *nextg;           /* under sched.lock: a G given with it, to run first */
    struct p *bound;           /* the P whose core this thread is bound to */
    _Atomic uint32_t wake;     /* futex: set to 1 by whoever wakes it from idle */
    _Atomic bool insyscall;    /* its G is in a system call (see the invariants) */
    struct cds_list_head idle; /* in sched.midle (under sched.lock) when idle */
    bool on_idle;              /* under sched.lock */
    bool polling;              /* under sched.lock: it is sched.timer_m and sleeps in
                                  epoll_wait (netpoll), not on its futex */
    bool born_idle;            /* made idle by chan_mpg_start (set before its thread starts) */
    unsigned id;
    uint64_t rng;
    pthread_t thread;
    struct m *allnext; /* every M (under sched.lock) */
} __attribute__((aligned(128)));

/* Go's schedt: the one scheduler of the process (documented global state, defined in proc.c). */
struct schedt {
    pthread_mutex_t life; /* chan_mpg_start* and chan_mpg_stop, one at a time */
    _Atomic bool running; /* set once started, cleared once stopped (under life) */
    _Atomic bool stopping;
    _Atomic bool closing; /* chan_mpg_stop is deciding: chan_mpg_go refuses (under life) */
    int nprocs;
    struct p *ps;       /* the nprocs Ps */
    unsigned *coprimes; /* the strides of a thief's random order over the Ps (proc.c) */
    int ncoprimes;
    bool bind;
    hwloc_topology_t topo;

    /* The global run queue: wait-free enqueue from any thread; dequeue under its own mutex, a
     * batch at a time (gq_get). gq_len counts the Gs in it (Go's runqsize), each after its push
     * and before its dequeue lock is let go: never more than it holds, a little less meanwhile. */
    struct cds_wfcq_head gq_head;
    struct cds_wfcq_tail gq_tail;
    _Atomic long gq_len;

    /* Idle Ps and Ms, every M, waiting, deadlock: under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cv;          /* chan_mpg_wait */
    struct p *pidle;            /* idle Ps (Go's pidle) */
    _Atomic int npidle;         /* changed under lock, read anywhere */
    struct cds_list_head midle; /* idle Ms, each asleep on its wake word (Go's midle) */
    _Atomic int nmidle;
    struct m *allm;
    _Atomic int nm; /* Ms made */
    int max_m;
    atomic_bool m_limit_told; /* the thread limit was reported on stderr (m_limit_say) */
    struct m *timer_m;        /* the idle M that sleeps until the earliest timer, in
                                 epoll_wait while Gs wait on fds (m->polling), or NULL */
    _Atomic int nspinning;    /* Ms looking for work with a P (find_runnable) */
    _Atomic long nforeign;
    _Atomic int nwaiters; /* threads in chan_mpg_wait* (changed under lock) */

    /* sysmon (sysmon.c). sysmonwait is read at every runnext hand-off (sysmon_kick, in ready):
     * a cache line of its own, which the counters around it (nspinning, live, steals ...),
     * written by spinning Ms and spawns, do not share. */
    pthread_t sysmon;
    bool sysmon_started;
    _Alignas(64) _Atomic bool sysmonwait; /* sysmon sleeps while every P is idle (set under lock) */
    _Atomic uint32_t sysmon_wake;         /* its futex word */

    /* Gs. */
    _Alignas(64) _Atomic int64_t live;
    _Atomic uint64_t spawned; /* spawns without a P, and the Ps' counts folded in at a stop */
    _Atomic uint64_t steals, ndeadlocks, retakes, moved;
    _Atomic int64_t next_id; /* ids handed out, one at a time or a P's batch (goid_take) */
    pthread_mutex_t gmu;     /* global free list, all-G list, the stack pool (fiber.c) */
    struct g *free_gs;       /* exited Gs beyond the Ps' caches, and for spawns without a P */
    struct g *all_gs;
    uint64_t ngs; /* G descriptors made */

    /* Timers: each P has its own heap (struct p); timer_watch is the deadline the timer M
     * (timer_m) sleeps until, CHAN_FOREVER while none sleeps (Go's sched.pollUntil): a timer
     * armed earlier than it wakes that M (timer_arm). Written under lock, read without it. */
    _Alignas(64) _Atomic int64_t timer_watch;
};

HIDDEN extern struct schedt sched;

/* The M the calling thread runs, or NULL on a thread that is not an M. Not inlined, and with a
 * compiler barrier: every call re-reads the thread-local on the thread it runs on, since a G
 * that switched out on one M may come back on another (GCC PR 26461). */
HIDDEN struct m *m_self(void);

/* ---- proc.c, for deadlock.c and sysmon.c ----------------------------------------------------- */

/* Whether a G waits in the global queue or some P's ring; with runnext, also in some P's
 * runnext. Lock-free; exact only while every P is idle. */
HIDDEN bool any_work(bool runnext);

/* Whether p's ring or runnext holds a G (a snapshot). */
HIDDEN bool runq_empty(struct p *p);

/* Tests: asked before a P's timer heap grows; true makes that growth fail as malloc would. */
HIDDEN extern bool (*timer_grow_fail_hook)(void);

/* How many parked Gs have a timer armed (takes each P's tlock in turn). */
HIDDEN size_t g_timers_armed(void);

/* The earliest timer deadline of all Ps, CHAN_FOREVER when none: each P's timer0, read without
 * its lock (Go's timeSleepUntil). O(nprocs). Any thread. */
HIDDEN int64_t timers_earliest(void);

/* Fires the due timers of p's heap (Go's runtimer): returns how many Gs timed out, linked
 * through next_free onto *list for the caller to queue. Any thread; sched.lock held or not
 * (sysmon holds it: see timers_late). */
HIDDEN int timers_fire(struct p *p, int64_t now, struct g **list);

/* Under sched.lock: whether the G of some M is in a system call. */
HIDDEN bool any_syscall_locked(void);

/* The global queue (Go's globrunqput), from any thread. */
HIDDEN void gq_push(struct g *g);
HIDDEN bool gq_empty(void);

/* Takes p's runnext G if it still is g (CAS): true if taken. Any thread. */
HIDDEN bool runnext_grab(struct p *p, struct g *g);

/* Go's runqgrab with its usleep(3), for many victims at once: runnext_note gives p's runnext G
 * when p's ring is empty (else NULL), and p's schedtick in *tick; after one runnext_pause
 * (RUNNEXT_PAUSE_NS, spinning) for all the victims noted, runnext_unmoved says whether p has
 * not scheduled since: then its G may be taken (runnext_grab: the CAS decides). Any thread. */
HIDDEN struct g *runnext_note(struct p *p, uint32_t *tick);
HIDDEN void runnext_pause(void);
HIDDEN bool runnext_unmoved(struct p *p, uint32_t tick);

/* Moves every G of p's ring to the global queue, as a thief takes them (CAS on the head).
 * Returns how many. Any thread. */
HIDDEN int runq_to_global(struct p *p);

/* Go's wakep: work was just queued; get an M with an idle P looking for it, unless one already
 * is. Any thread, no lock held. */
HIDDEN void wakep(void);

/* Go's handoffp: p, taken back from an M whose G is in a system call (status P_RUNNING, no owner
 * yet), goes to an M that runs it (one made if none is idle) when there is work for it or
 * nobody else looks for work, else to the idle Ps. No lock held. */
HIDDEN void handoffp(struct p *p);

/* Whether an M can be had for handoffp without passing the thread limit (a snapshot). */
HIDDEN bool m_available(void);

/* Says once on stderr that the thread limit keeps a P with its G's system call. */
HIDDEN void m_limit_say(void);

/* Under sched.lock, for sysmon: an idle P and an idle M (or a new one) run g, taken out of a
 * busy P, at once: g is in no queue, so the busy P cannot take it back meanwhile. false: no idle
 * P or no M; g is still the caller's. */
HIDDEN bool startm_g_locked(struct g *g);

/* Go's injectglist: the Gs of list (linked through next_free; NULL: none), made runnable
 * together outside any G (the fds one epoll_wait found ready, timers due at once), go to the run
 * queues as one batch. Without a P (p NULL: sysmon, an M back from epoll_wait to no idle P),
 * all of them to the global queue in one exchange on its tail, and an M is started for each
 * idle P, up to their number; with the caller's P p (on its M's g0), as many of them as there
 * are idle Ps go the same way, the rest to p's ring. Any thread (p: its owner's), no lock held.
 * inject_locked: without a P, under sched.lock (sysmon's late timers, which must be in a heap
 * or a queue whenever the deadlock check looks). */
HIDDEN void inject(struct p *p, struct g *list);
HIDDEN void inject_locked(struct g *list);

/* ---- netpoll.c, for proc.c, sysmon.c and deadlock.c ------------------------------------------ */

#define NETPOLL_SYSMON_NS 10000000 /* sysmon polls when nobody has for this long (Go's 10 ms) */
#define NETPOLL_SPIN_ROUNDS 4 /* steal rounds of an M that is to wait in epoll_wait next (Go's) */

/* Starts the netpoller (an epoll set and an eventfd; io/'s close hook), and stops it (closes
 * both, frees the descriptors). 0 or -errno. chan_mpg_start and chan_mpg_stop, no G alive. */
HIDDEN int netpoll_init(void);
HIDDEN void netpoll_fini(void);

/* Registers g, whose wake word has seq seq and state RUN, as the waiter of each of the n (fd,
 * events) pairs (POLLIN or POLLOUT; seam.h's waiter_fds), then, for an edge select (edge:
 * seam.h's waiter_fds_edge), looks at their tokens (no system call), or else polls them once
 * (poll(2) writes revents into fds): 0, g is armed and may park (and must call netpoll_disarm
 * once its park has returned); PARK_IO, an fd has a token (an edge that came before the
 * registration) or is ready: nothing is left armed, the G must not park, the select looks
 * again; -ENOMEM or epoll_ctl's -errno, an fd cannot be watched: nothing is left armed. On g's
 * own thread. */
HIDDEN int netpoll_arm(struct g *g, uint64_t seq, struct pollfd *fds, size_t n, bool edge);
HIDDEN void netpoll_disarm(struct g *g, uint64_t seq, const struct pollfd *fds, size_t n);

/* seam.h's token hook (fd_set_token_hook), Go's pollDesc token: on a G, fd's token for events
 * (POLLIN or POLLOUT) taken, its revents (> 0), or 0, none while the fd is in the epoll set;
 * -1 anywhere else (not on a G, the fd not in the set: the select polls). */
HIDDEN int netpoll_token(int fd, short events);

/* Go's netpoll: waits for events until the absolute deadline (0: does not wait; CHAN_FOREVER:
 * until an event or netpoll_break) and wakes the Gs they are for, each for the park it
 * registered for (park_rc PARK_IO): returns how many, linked through next_free onto *list; the
 * caller owns them and runs them. Any thread with no lock held; one blocking caller at a time
 * (sched.timer_m). */
HIDDEN int netpoll(int64_t deadline, struct g **list);

/* Go's netpollBreak: the blocking netpoll returns (now, or at once when it starts). Any
 * thread, any lock held. */
HIDDEN void netpoll_break(void);

/* Whether any G is armed (Go's netpollAnyWaiters); whether an M blocks in netpoll now; whether
 * nobody has polled for NETPOLL_SYSMON_NS while Gs are armed (then the caller, sysmon, polls:
 * true once per period). Any thread, no lock. */
HIDDEN bool netpoll_waiting(void);
HIDDEN bool netpoll_blocked(void);
HIDDEN bool netpoll_due(int64_t now);

/* ---- sysmon.c, for proc.c -------------------------------------------------------------------- */

/* Starts the monitor thread: 0 or -errno. Stops it and waits for it (after stopping is set). */
HIDDEN int sysmon_start(void);
HIDDEN void sysmon_stop(void);

/* Wakes sysmon, under sched.lock (sysmon_stop). sysmon_kick(_locked): wakes it if it sleeps
 * because every P was idle (sched.sysmonwait) and may have work again: a G enters a system call,
 * leaves one onto an idle P, or hands another its P's runnext (sysmon.c says why those). */
HIDDEN void sysmon_wake_locked(void);
HIDDEN void sysmon_kick_locked(void);
HIDDEN void sysmon_kick_slow(void);

/* The flag is read without the lock: sysmon sets it, under sched.lock, only while every P is
 * idle; the caller holds a P, taken from idle under that lock after the flag was set (so the
 * flag is seen) or before sysmon looked (so sysmon saw a P busy and did not sleep). */
static inline void sysmon_kick(void)
{
    if (__builtin_expect(atomic_load_explicit(&sched.sysmonwait, memory_order_relaxed), 0))
        sysmon_kick_slow();
}

/* ---- cgroup.c, for proc.c -------------------------------------------------------------------- */

/* The CPUs the process's cgroup lets it use on average, Go 1.25's rule: its CPU quota over its
 * period (cgroup v2's cpu.max, v1's cpu.cfs_quota_us and cpu.cfs_period_us), rounded up, at
 * least 2, at most NPROCS_MAX; 0 when there is no quota, or it cannot be read. chan_mpg_start,
 * for nprocs 0. */
HIDDEN int cgroup_cpu_limit(void);

/* The directory under which cgroup_cpu_limit finds /proc/self/cgroup, /proc/self/mountinfo and
 * the cgroup's mount: "" (the real ones). A seam for tests, which point it at a tree of their
 * own before chan_mpg_start; nothing else writes it. */
HIDDEN extern const char *cgroup_root;

/* ---- deadlock.c, for proc.c ------------------------------------------------------------------ */

/* Under sched.lock: an input of the deadlock condition changed towards a deadlock (the last P
 * went idle): let the threads in chan_mpg_wait decide it again. */
HIDDEN void deadlock_recheck_locked(void);

/* The last live G returned: wakes the threads in chan_mpg_wait (takes sched.lock). */
HIDDEN void waiters_wake(void);

/* Called by chan_mpg_start (on) and chan_mpg_stop (off): whether libchan's timer thread tells
 * this scheduler when its last pending timer is done, libchan's leak detector sees its Gs, and
 * traces and dumps name them (the task hook, when the program has set none). */
HIDDEN void deadlock_watch(bool on);

#endif
