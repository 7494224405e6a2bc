/* SPDX-License-Identifier: MIT */
/*
 * seam.h - what the rooms above the core (time/, io/, sched/) may use of it, and what time/,
 * io/ and trace/ offer sched/: everything that crosses between them and is not in a public
 * header. time/, io/ and sched/ include this and the public headers, not chan_internal.h
 * (time/timer.c also includes the tracer's hooks); the core includes it through
 * chan_internal.h, and trace/dump.c directly, so that their definitions are checked against
 * these declarations.
 *
 * Each item says who may call it, from which context and under which locks, and what it
 * orders, after liburcu's headers. All are hidden (present in libchan.a, not exported by
 * libchan.so) except those sched/ calls, marked SEAM_EXPORT: libchan-mpg's own shared library
 * calls them in libchan.so. The drop-in pair carries this header too: it defines the core's
 * items; time/'s, io/'s and trace/'s are declared and never used.
 *
 * Layers, bottom up: sudog.c (locks, wait queues, parking, futex, clock, allocator) < chan.c,
 * ring.c, select.c < trace/ (an observer, which the core calls only through trace/hooks.h) <
 * time/, io/ < sync/ (users of the public API, and of this seam) < sched/. A file includes only
 * headers of its own layer or below (docs/DESIGN.md; test/layers.sh checks it).
 */
#ifndef SEAM_H
#define SEAM_H

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "chan.h"

/* liburcu's header-only futex() where its headers are installed. Without them, the same bare
 * system call in a few lines of our own, so that the drop-in pair builds with a C compiler and
 * a C library alone (cc -std=c11 -pthread app.c chan.c). */
#ifdef __has_include
#if !__has_include(<urcu/futex.h>)
#define CHAN_NO_URCU 1
#endif
#endif
#ifndef CHAN_NO_URCU
#include <urcu/futex.h>
#else
#include <sys/syscall.h>
#include <unistd.h>
static inline int futex(int32_t *uaddr, int op, int32_t val, const struct timespec *timeout,
                        int32_t *uaddr2, int32_t val3)
{
    return (int)syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}
#endif

/* Internal symbols of the library: visible to its other files, not exported. The drop-in pair,
 * one file, makes them static (scripts/amalgamate). */
#define HIDDEN __attribute__((visibility("hidden")))

/* An item of this seam that sched/ calls: exported by libchan.so for libchan_mpg.so, under the
 * symbol chan_private_NAME (so that no program's own function NAME can take its place) and the
 * version node LIBCHAN_PRIVATE_<version> (libchan.map), which only a libchan-mpg of the very
 * same version asks for: a mismatched pair fails to load instead of misbehaving. Not part of
 * the public API; no header a program includes declares them. */
#define SEAM_EXPORT(name) __asm__("chan_private_" #name) __attribute__((visibility("default")))

/* ---- Memory (sudog.c) -------------------------------------------------------------------- */

/* Every allocation of the library, the core's and time/'s, goes through chan_malloc, so that
 * tests can make any of them fail. Any thread, any lock held (it is malloc, or the hook); NULL
 * when memory is short. chan_mfree frees what chan_malloc returned; NULL is a no-op.
 * sched/ allocates with malloc: its failures are reported by chan_mpg_go, not injected. */
HIDDEN void *chan_malloc(size_t size);
HIDDEN void chan_mfree(void *p);

/* Fault injection, for tests only: when set, chan_malloc calls it instead of malloc (NULL is a
 * failure). Set and cleared by a test while no other thread allocates. */
HIDDEN extern void *(*chan_malloc_hook)(size_t size);

/* ---- futex: the one pair of wrappers (futex(), above: a bare syscall) ----------------------- */

/* Both are static inline, here rather than in sudog.c, so that the drop-in pair keeps them
 * file-local. The includer defines _GNU_SOURCE before any system header (syscall()). */

/* Sleeps while *word == val, until woken or the absolute CLOCK_MONOTONIC deadline (CHAN_FOREVER:
 * none). FUTEX_WAIT_BITSET takes an absolute time, so a signal or a spurious wake-up resumes the
 * same wait. Any thread, no lock held (the sleeper's own locks excepted). Returns 0 (woken, or
 * spuriously), -ETIMEDOUT, -EAGAIN (*word != val on entry) or -EINTR. Orders nothing: the
 * caller re-reads its word with the ordering it needs (the channel lock, the parker, sched/'s
 * idle Ms all do). */
static inline int futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline)
{
    struct timespec ts, *tp = NULL;
    if (deadline != CHAN_FOREVER) {
        if (deadline < 0)
            deadline = 0;
        ts.tv_sec = (time_t)(deadline / 1000000000LL);
        ts.tv_nsec = (long)(deadline % 1000000000LL);
        tp = &ts;
    }
    if (futex((int32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, (int32_t)val, tp, NULL,
              (int32_t)FUTEX_BITSET_MATCH_ANY) == 0)
        return 0;
    return -errno;
}

/* Wakes one sleeper of word. Any thread, any lock held. The caller stores the new value of the
 * word first (with release, or under the lock the sleeper re-checks under). May be called on a
 * word that has just been freed (an unlock racing a chan_free, an unpark racing the woken
 * thread's exit): it is a syscall on an address, which at worst wakes a futex user that
 * re-checks its word, as every user here does. */
static inline void futex_wake(_Atomic uint32_t *word)
{
    futex((int32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

/* ---- Wake-ups under a lock of a layer above the core (sudog.c) ------------------------------ */

/* For time/, io/ and sync/, which complete channel operations (chan_close, chan_trysend) while
 * they hold a lock of their own: wakeups_hold() before such a section, wakeups_release() once
 * the lock is dropped. In between, the unparks of plugged-in schedulers' tasks that this thread
 * would make wait, in their order, and wakeups_release runs them: chan_sched(3) lets an unpark
 * make any libchan call, the layer's own included, or switch the thread to the woken task, and
 * the layer's lock would be taken again on the thread that holds it. The pthread parker's
 * wake-ups are made at once (they call nothing back). Sections nest; the outermost release
 * runs the wake-ups. Nothing between may park: the list belongs to the thread. */
HIDDEN void wakeups_hold(void);
HIDDEN void wakeups_release(void);
/* Threads in a held section now, as a scheduler's wake-up sees it (tests). */
HIDDEN unsigned wakeups_held_threads(void);

/* ---- What a parked task waits on (sudog.c), for a scheduler in the tree ---------------------- */

struct waiter; /* one blocked operation (chan_internal.h): opaque here */

/* What a blocked operation is: set by the operation before it blocks, for the reports of
 * blocked tasks (wait_reason_words). */
enum wait_reason {
    WAIT_RECV,            /* chan_recv and its forms on a channel */
    WAIT_SEND,            /* chan_send and its forms on a channel */
    WAIT_SELECT,          /* every chan_select with cases, however many are nil */
    WAIT_SELECT_NO_CASES, /* a select of n == 0, Go's select {} */
    WAIT_RECV_NIL,        /* a receive on NULL */
    WAIT_SEND_NIL,        /* a send on NULL */
};

/* What a blocked operation is doing, in Go's words for it (runtime2.go's waitReasonStrings),
 * as every report of blocked tasks says it: chan_dump and the leak reports (trace/), the
 * deadlock report (sched/). The one table of those words (sudog.c), beside the enum's owner;
 * "?" for a value that is no enum wait_reason. Any thread, any lock held. */
const char *wait_reason_words(unsigned why) SEAM_EXPORT(wait_reason_words);

/* The waiter of the operation that is calling the plugged-in scheduler's park on this thread
 * right now, or NULL; reading it clears it. Called by that park, on the thread park was called
 * on, first thing, before the task switches away (it may resume on another thread). */
struct waiter *waiter_parking(void) SEAM_EXPORT(waiter_parking);

/* What a parked waiter waits on: up to max (channel, direction) pairs; returns how many it has
 * (which may be more than max). Reads the waiter's sudogs, which live in the parked task's
 * frame and do not change while it stays parked: the caller must know that no wake-up can run
 * meanwhile (sched/'s deadlock report: every M idle, under sched.lock). Takes no lock. */
size_t waiter_channels(const struct waiter *w, chan_t **chans, enum chan_dir *dirs, size_t max)
    SEAM_EXPORT(waiter_channels);

/* What a parked waiter's operation is. As waiter_channels: the waiter must stay parked. */
enum wait_reason waiter_reason(const struct waiter *w) SEAM_EXPORT(waiter_reason);

/* Declares that s (a scheduler in the tree; NULL: none) keeps a parked task's stack until the
 * task returns, however long it waits (sched/: chan_mpg_stop refuses while a G is live). A task
 * of s blocked on no channel (park_nothing: select {}, a nil channel's operation) is then
 * listed for chan_dump and the leak detector as a thread is (trace_idle_add, trace/hooks.h),
 * with its waiter in its frame; a task of any other scheduler is not, as its stack may be
 * dropped while it waits for ever. Any thread, before the tasks of s wait; one scheduler at a
 * time. */
void sched_keeps_stacks(const struct chan_sched *s) SEAM_EXPORT(sched_keeps_stacks);

/* ---- Waiting for fds (sudog.c, select.c; io/ and a scheduler in the tree) -------------------- */

/* An operation blocked on fd channels (BUF_FD: made by fdchan_make, waited on only by a select
 * or a receive) parks as any other, and its park may end a third way besides 0 (an unpark was
 * consumed) and -ETIMEDOUT: PARK_IO, "an fd this waiter waits on may be ready". The operation
 * then wins its own done word (as at a time-out; if a waker won it first, it consumes that
 * waker's unpark and takes its result), relocks its channels, unlinks its sudogs and, holding
 * the locks all along, looks at every case again, every fd too (poll(2), or the scheduler's
 * token: fd_set_token_hook below): nothing has happened yet, so the look again is exact, and
 * the choice among ready cases stays uniform. PARK_IO may be spurious (the fd was ready and is
 * no longer): the operation just parks again. */
#define PARK_IO 1

/* The fds a parked waiter waits on: up to max (fd, events) pairs in fds (revents 0); returns
 * how many it has (which may be more than max; 0 for a waiter without fd cases). Called by a
 * scheduler's park on the waiter that waiter_parking() returned, before the task switches
 * away; the pairs do not change while the task stays parked. Takes no lock, and reads no
 * channel (a copy made under their locks: chan_fd_close may have freed one already). */
size_t waiter_fds(const struct waiter *w, struct pollfd *fds, size_t max) SEAM_EXPORT(waiter_fds);

/* Whether a parked waiter's fd cases are edge cases (fdselect_until: an I/O call whose system
 * call said EAGAIN), which a token of the scheduler (fd_set_token_hook) may end, or level ones
 * (chan_fd_wait, a receive or select over fd channels), which look at no token: the park of a
 * level waiter, once registered for its fds' edges, looks at their readiness itself (poll(2)),
 * and ends in PARK_IO if one is ready. As waiter_fds. */
bool waiter_fds_edge(const struct waiter *w) SEAM_EXPORT(waiter_fds_edge);

/* Declares that s (a scheduler in the tree; NULL: none) can wait on fds: its park reads the
 * parking waiter's fds (waiter_parking, waiter_fds), wakes on their readiness as well as on
 * unpark and the deadline, and returns PARK_IO then (or 0 if an unpark came, which wins). The
 * tasks of any other plugged-in scheduler, whose public struct chan_sched has no way to wait on
 * an fd, wait through libchan's poll thread (sudog.c), which unparks them. Any thread, before
 * the tasks of s wait on fds; one scheduler at a time. */
void sched_waits_fds(const struct chan_sched *s) SEAM_EXPORT(sched_waits_fds);

/* Registers fn (NULL: none) to be called by chan_fd_close (io/fd.c) for each fd it closes that
 * the library has a record of (every fd an fd channel was made for), after every operation on
 * the fd has returned and just before close(2), with io's table lock held: a scheduler that
 * waits on fds keeps state keyed by the fd's number (sched/'s netpoller: its registration with
 * epoll) and must forget it before the number can be reused. fn may take only locks that are
 * never held while calling into io/ (its own), and must not block. Any thread; one scheduler at
 * a time, set while no chan_fd_close runs (chan_mpg_start and chan_mpg_stop). */
void fd_set_close_hook(void (*fn)(int fd)) SEAM_EXPORT(fd_set_close_hook);

/* Go's pollDesc token, for a scheduler that waits on fds: registers fn (NULL: none), which an
 * edge select (fdselect_until) calls under an fd channel's lock before it would poll(2) the fd,
 * from the thread of the operation, and fd_token_drop calls. A level look (chan_fd_wait, a
 * receive or select over fd channels) leaves the token alone: taken there, it would be lost to
 * an I/O call of another task that found EAGAIN before the edge and looks after. fn(fd, events)
 * takes the fd's token for that direction: the revents (> 0) of an edge the scheduler saw with
 * nobody to wake (or that woke the caller's previous park), 0 when there is none but the scheduler
 * watches the fd (every readiness from now on reaches a park on it, or leaves a token), or -1 when
 * it cannot tell (the fd not watched, the caller not one of its tasks). A token is a hint: the fd
 * may have been drained since. fn is called with the fd channel's lock held: it may take only short
 * locks of its own that are never held while calling into the core (sched/'s may also allocate,
 * once per 1,024 fds). Any thread; set while no select runs on the scheduler's tasks
 * (chan_mpg_start and stop). */
void fd_set_token_hook(int (*fn)(int fd, short events)) SEAM_EXPORT(fd_set_token_hook);

/* chan_select_until for io/'s I/O calls, whose read, write, accept or connect has just said
 * EAGAIN (or is in progress): the fd cases are edge cases. A token (fd_set_token_hook) makes
 * one ready at once, with the token's revents and no poll(2); a watched fd without one is not
 * ready, no poll(2) either, since only an edge after the system call can have made it ready,
 * and that edge reaches the park or leaves a token. An fd the scheduler cannot tell of is
 * polled, as chan_select_until does. The readiness it reports may be stale: the caller tries
 * its system call again, and waits again on EAGAIN. Same results and errors as
 * chan_select_until. */
HIDDEN int fdselect_until(struct chan_case *cases, size_t n, int64_t deadline);

/* Drops fd's token for events, if the scheduler keeps one (Go's pollReset, before each system
 * call of an I/O call that may wait on EAGAIN): then a token that fdselect_until finds after
 * the EAGAIN is of an edge since this call, not of data that the system call has taken. Any
 * thread (a no-op where fd_set_token_hook's fn answers -1, or is not set). */
HIDDEN void fd_token_drop(int fd, short events);

/* The core's fd channels, for io/: a channel of kind BUF_FD for fd and events (POLLIN or
 * POLLOUT), elemsize sizeof(int), or NULL with errno ENOMEM. Receive only: chan_send, chan_close
 * and chan_free on it return -EINVAL; the owner closes it with fdchan_close (closechan: every
 * waiter wakes as on a closed channel, each later receive reports closed) and frees it with
 * fdchan_free (chan_free: 0 or -EBUSY while an operation has still to unlink itself from it).
 * The caller guarantees that fd stays open while the channel is open and waited on. */
HIDDEN chan_t *fdchan_make(int fd, short events);
HIDDEN int fdchan_close(chan_t *c);
HIDDEN int fdchan_free(chan_t *c);

/* A timer's or ticker's channel, for time/: an int64_t channel with room for one value, whose
 * chan_len and chan_cap report 0 (Go's chanlen and chancap of a timer channel since Go 1.23);
 * otherwise an ordinary channel, freed with chan_free. NULL with errno ENOMEM. Any thread. */
HIDDEN chan_t *timerchan_make(void);

/* c's element size, as chan_make was given it (fd channels: sizeof(int)). Any thread, no lock:
 * it never changes. For io/'s signal channels, which must carry an int. */
HIDDEN size_t elemsize_of(const chan_t *c);

/* ---- libchan's timers (time/timer.c), for a scheduler in the tree ---------------------------- */

/* Timers that will still fire: queued with a finite deadline, or being fired (out of the heap,
 * their send or function not yet returned). Any thread, no lock: a seq_cst load. A task that
 * waits on a timer's channel or a context's deadline is not deadlocked while this is not 0. */
size_t timers_pending(void) SEAM_EXPORT(timers_pending);

/* Registers fn (NULL: none) to be called each time timers_pending() drops to zero. Any thread.
 * fn runs on the thread that dropped it (the timer thread, or one stopping, resetting or
 * freeing a timer) with the timer queue's lock held: it may take only locks that are never
 * held while a timer is made, stopped, reset or freed, and signal; it never calls back into
 * time/. The count drops (seq_cst) before fn is called, so a thread that counts itself
 * (seq_cst) before reading timers_pending() either sees zero or is seen by fn. */
void timers_set_drained_hook(void (*fn)(void)) SEAM_EXPORT(timers_set_drained_hook);

/* For tests only: when set, a cancel calls it with each context it claims (time/context.c),
 * right after the claim (its error set, its done channel closed, no lock held, the wake-ups of
 * its waiters held until the walk is over), so that a test can hold a walk in its middle. Set
 * and cleared by a test while no context is being cancelled. */
HIDDEN extern void (*ctx_claimed_hook)(void *ctx);

/* ---- Names of channels (trace/), for a report in the tree ------------------------------------ */

/* Writes c to out as chan_dump and the leak reports name a channel: its name from
 * chan_trace_name_chan (chan_trace.h), in double quotes and escaped on one line, what libchan
 * made it for (a timer's, a context's, an fd's) and its address: chan "jobs" (0x...), chan "t"
 * (timer 0x...), chan (timer) 0x..., chan 0x.... c is only a key: never dereferenced. Any
 * thread, with any lock held (sched/'s deadlock report holds sched.lock and sched.gmu): it takes
 * one lock of the tracer's registry, under which no lock is ever waited for. Not from a signal
 * handler. */
void trace_chan_print(FILE *out, const void *c) SEAM_EXPORT(trace_chan_print);

/* The task hook of chan_trace_task_hook (chan_trace.h), for a scheduler in the tree that names
 * its tasks by default: sets it to fn only if it is old now, and says whether it did (a
 * compare-and-swap). sched/ swaps NULL for its G ids at chan_mpg_start and back at
 * chan_mpg_stop, so that a hook the program set itself, before or meanwhile, is left alone.
 * A non-NULL fn's ids are taken for G ids: while fn is the hook set, chan_dump names a blocked
 * task "goroutine N", as the deadlock report does, not "task N on thread ...". Any thread, any
 * lock held. */
bool trace_task_hook_swap(uint64_t (*old)(void), uint64_t (*fn)(void))
    SEAM_EXPORT(trace_task_hook_swap);

/* ---- What the leak detector (trace/leak.c) sees of a scheduler in the tree ------------------ */

/* One task (Go's G) of sched/, as the leak detector reads it while every thread of the process
 * is stopped. */
enum task_state {
    TASK_FREE,     /* a descriptor whose function has returned: its stack is dead */
    TASK_RUNNING,  /* on an M now, in a system call too: its stack pointer is that M's
                      thread's */
    TASK_RUNNABLE, /* in a run queue, or about to run */
    TASK_PARKED,   /* switched out until an unpark or its deadline */
};

struct task_info {
    int64_t id; /* its goroutine id (>= 1) */
    enum task_state state;
    const struct waiter *waiter; /* TASK_PARKED in a channel operation (or on a nil channel or
                                    an empty select): its waiter; else NULL */
    int64_t deadline;            /* TASK_PARKED: of the park (CHAN_FOREVER: none) */
    const char *stk_lo, *stk_hi; /* its stack */
    const char *sp;              /* saved stack pointer while switched out (else stale); NULL:
                                    not started, its stack holds nothing yet */
    const void *desc;            /* its descriptor: the scheduler's own bookkeeping, wherever
                                    it lies (sched/ packs them apart from the stacks) */
    size_t desc_size;
    uintptr_t own[2]; /* words only this task holds (its function and argument) */
};

/* Registered by sched/ while it runs. lock is called before the world is stopped and unlock
 * after it resumes: between them no task is made or freed. visit calls fn once for every task
 * descriptor, while the world is stopped: it takes no lock and never allocates. */
struct task_source {
    void (*lock)(void);
    void (*unlock)(void);
    void (*visit)(void (*fn)(const struct task_info *t, void *arg), void *arg);
};

/* Sets the source (NULL: none). Any thread; src must outlive its registration. Serialized with
 * the leak detector's checks: when it returns, no check uses the previous source any more. */
void leak_task_source(const struct task_source *src) SEAM_EXPORT(leak_task_source);

/* The signal the leak detector stops threads with (trace/world.c): a thread that blocks every
 * other signal (libchan's own threads, daemon_start) leaves this one open. SIGURG, as Go's
 * preemption: its default action is to ignore it, so a late one is harmless. */
#define CHAN_STOP_SIGNAL SIGURG

/* Starts fn(NULL) on one of libchan's own threads (the poll thread, the timer thread, the
 * signal thread, the SIGQUIT dump's): detached, with every signal blocked, so that it never
 * runs a handler meant for the program's threads, but CHAN_STOP_SIGNAL, whose handler stops it
 * while a leak check reads the process. Any thread, under its caller's lock of the thread's
 * state. 0, or -EAGAIN (nothing started). */
HIDDEN int daemon_start(void *(*fn)(void *arg));

/* ---- Event counters: the instrumentation build only (make MODE=counters) -------------------- */

/* With -DCHAN_COUNTERS (MODE=counters: the plain build's -O2 plus this flag) the core and
 * sched/ count the events that say where a waiting shape's time goes: the channel lock's slow
 * path and its sleeps, and the scheduler's parks, hand-offs, wake-ups of idle Ms, spinning and
 * steals. Each thread adds to a block of its own (plain loads and stores, no locked
 * instruction, no line shared between cores), so counting barely moves what it counts;
 * counters_read sums every thread's block, racily but each word whole: read it around a run,
 * while nothing else runs, and take the difference. bench/bench.c prints the difference per
 * message (bench/BENCH.md, "Where the time goes on Gs"). Without the flag COUNT is nothing and
 * no code is built. Any thread, any lock held; counter_add allocates a thread's block at its
 * first event (a leak of one block per thread, on purpose: a thread that exits keeps its
 * counts). */
#define CHAN_COUNTERS_LIST(X)                                                                      \
    X(lock_slow)    /* the channel lock was held: lock_slow (sudog.c) */                           \
    X(lock_sleep)   /* ... and its spin ran out: a futex sleep on the lock (an M blocks too) */    \
    X(sel_locked)   /* a select went on to its locked pass (pass 1: every case's lock) */          \
    X(sel_busy)     /* ... because pass 0 met a case whose lock was held */                        \
    X(park)         /* a G parked (switched out; not a permit consumed at once) */                 \
    X(park_permit)  /* a G's park consumed an unpark that came first: no switch */                 \
    X(handoff)      /* a parking G switched straight to the next G of its P */                     \
    X(park_g0)      /* a parking G went through its M's g0 (nothing local to hand the M to) */     \
    X(timer_arm)    /* a parked G's timer went on its P's heap (that P's tlock) */                 \
    X(timer_spill)  /* ... into its P's spill: the heap was full and could not grow */             \
    X(timer_cancel) /* a G woken early took its timer off the heap of the P it parked on */        \
    X(timer_remote) /* ... from another P, or none: another P's tlock */                           \
    X(timer_kick)   /* an armed timer was earlier than the timer M's watch: sched.lock */          \
    X(timer_steal)  /* an M or sysmon fired the due timers of a P it does not hold */              \
    X(unpark_run)   /* an unpark found its G running: a permit, no queueing */                     \
    X(ready_next)   /* a woken G went to its waker's runnext */                                    \
    X(ready_kick)   /* ... displacing a G to the ring, with a wakep */                             \
    X(ready_ring)   /* a woken G went to the ring of its waker's P (from g0) */                    \
    X(ready_global) /* a woken G went to the global queue (foreign thread, system call) */         \
    X(wakep)        /* wakep passed its checks (a P idle, none spinning) and took sched.lock */    \
    X(m_wake)       /* an idle M was woken (futex wake): startm, timers */                         \
    X(m_new)        /* an M was made */                                                            \
    X(m_sleep)      /* an M went to sleep among the idle Ms (futex wait) */                        \
    X(p_idle)       /* a P went idle */                                                            \
    X(spin)         /* an M with a P and an empty queue started spinning (find_runnable) */        \
    X(spin_round)   /* ... a round of its spinning: a steal attempt on every other P */            \
    X(spin_found)   /* ... and found a G */                                                        \
    X(steal)        /* half of another P's ring taken */                                           \
    X(steal_next)   /* another P's runnext taken by a spinning M after the pause */                \
    X(next_pause)   /* a thief's 3 us pause on another P's runnext (spinning M or sysmon) */       \
    X(gq_put)       /* an exchange on the global queue's tail: one G, or a batch of them */        \
    X(gq_get)       /* a G taken from the global queue */                                          \
    X(gq_lock)      /* the global queue's dequeue lock taken (gq_get: one G or a batch) */         \
    X(moved)        /* a runnext G taken by sysmon from behind a G that kept its P */

#define CHAN_COUNTER_ENUM(name) CNT_##name,
enum chan_counter { CHAN_COUNTERS_LIST(CHAN_COUNTER_ENUM) CNT_N };
#undef CHAN_COUNTER_ENUM

#ifdef CHAN_COUNTERS
HIDDEN void counter_add(enum chan_counter c);
/* out[CNT_N]: the sum over every thread that counted. names[i]: counter i's name. */
HIDDEN void counters_read(uint64_t *out);
HIDDEN extern const char *const counter_names[CNT_N];
#define COUNT(name) counter_add(CNT_##name)
#else
#define COUNT(name) ((void)0)
#endif

#endif
