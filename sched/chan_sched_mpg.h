/* SPDX-License-Identifier: MIT */
/*
 * chan_sched_mpg.h - libchan-mpg: Go's M:P:G scheduler over libchan's struct chan_sched hook.
 *
 * Gs (coroutines, each on its own pooled stack) run on Ps (logical processors, each with a
 * local run queue) driven by Ms (OS threads, placed by the kernel as Go's are, or bound to the
 * core of the P they hold through hwloc if asked). A channel operation in a G that must wait
 * parks the G, not the thread: every M installs the scheduler's struct chan_sched with
 * chan_sched_set. A G about to block in the kernel says so (chan_mpg_syscall_enter/exit), and
 * its P goes on with other Gs on another M. Gs share channels freely with plain pthreads
 * ("foreign" threads); a foreign thread that may wake a G announces itself with
 * chan_mpg_foreign_enter()/leave() so that deadlock detection never reports a wait it could end.
 *
 * A library of its own beside libchan, shared (libchan_mpg.so, which needs libchan.so) and
 * static (libchan_mpg.a, with libchan.a): pkg-config libchan-mpg, CMake libchan::mpg. One
 * scheduler per process; errors are negative errno values.
 * See chan_mpg(3) and sched/README.md.
 */
#ifndef CHAN_SCHED_MPG_H
#define CHAN_SCHED_MPG_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Only the symbols declared here leave libchan_mpg.so; everything else is built hidden. */
#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

#define CHAN_MPG_STACK_DEFAULT (64 * 1024) /* bytes per G stack when none is given */
#define CHAN_MPG_STACK_MIN (16 * 1024)     /* smaller requests are raised to this */

struct chan_mpg_config {
    int nprocs;        /* Ps: Gs running at once; 0: one per CPU the calling thread may run on
                          (its affinity mask, as taskset or a cgroup's cpuset narrow it; SMT
                          siblings count), fewer under a cgroup CPU quota (quota over period,
                          rounded up, at least 2), as Go 1.25's GOMAXPROCS, at most 1024 */
    size_t stack_size; /* bytes per G stack, all the G's (its descriptor is kept apart), rounded
                          up to pages; 0: the default; at most 2^55 (-EINVAL above; a size the
                          address space cannot hold 256 of makes chan_mpg_go say -ENOMEM) */
    long guard_max;    /* stacks that get a guard below them; 0: every one (Linux 6.13 and later:
                          guard markers, no mapping of their own; before, mprotect: about
                          (vm.max_map_count - 5000) / 2, i.e. ~30,000 with 65530); -1 (or any
                          negative): none; n > 0: the first n */
    int bind;          /* 1: bind each M to the core of the P it holds (hwloc): P i to the i-th
                          core with a CPU of the affinity mask, in hwloc's order (one package
                          filled before the next), on that core's CPUs of the mask, cores
                          shared round-robin when Ps outnumber them; 0: the kernel places Ms,
                          as Go's: on a machine shared with other work a bound M waits for its
                          core while the other one may be free */
    int max_threads;   /* Ms at most (OS threads running or blocked in system calls); 0: 10000,
                          Go's limit; else at least nprocs. Past it no M is made: a P whose G is
                          in a system call stays with it (said once on stderr) */
};

/* Starts the scheduler: nprocs Ps (0: one per CPU the caller may run on), an M for each, and the
 * monitor thread (sysmon); more Ms are made when system calls need them. Call from a plain
 * thread, once (again only after chan_mpg_stop). 0; -EALREADY when running; -EINVAL (nprocs < 0
 * or > 1024, max_threads < 0 or below the Ps, stack_size > 2^55); -ENOMEM or -EAGAIN when
 * threads or memory cannot be had (nothing is left running). It installs a SIGSEGV handler that
 * names a G overflowing its stack into the guard below it, then passes the signal on to the
 * handler installed before (chan_mpg_stop restores that one). */
int chan_mpg_start(int nprocs);
int chan_mpg_start_config(const struct chan_mpg_config *cfg); /* cfg NULL: every field 0 */

/* Runs fn(arg) as a new G. From any thread (a G or not). The G's id (>= 1; Go's goroutine id:
 * unique since the start, not in the order of the spawns across Ps), or -EINVAL (fn NULL, or
 * not started) or -ENOMEM (no stack: the scheduler is left as it was). A call that races
 * chan_mpg_stop on another thread either counts its G as live, and the stop says -EBUSY, or
 * waits for the stop to end and says -EINVAL. */
int64_t chan_mpg_go(void (*fn)(void *), void *arg);

/* The calling G's id; 0 when the caller is not a G. While the scheduler runs, traces and dumps
 * name each G by it (chan_trace_task_hook, unless the program set a hook of its own). */
int64_t chan_mpg_self(void);

/* Lets other Gs run (Go's runtime.Gosched). Outside a G: sched_yield(). */
void chan_mpg_yield(void);

/* Sleeps until the absolute CLOCK_MONOTONIC deadline (ns; chan_now()). In a G only the G
 * sleeps (a timer of the scheduler); outside a G the thread does. Returns 0. */
int chan_mpg_sleep_until(int64_t deadline);

/* Marks a blocking system call, or any call that may block the thread in the kernel (Go's
 * entersyscall and exitsyscall, which Go's runtime puts around every system call):
 *
 *     chan_mpg_syscall_enter();
 *     ssize_t r = read(fd, buf, n);
 *     int err = errno;
 *     chan_mpg_syscall_exit();
 *
 * Between the two the calling G keeps its M (the thread blocks) but not its P: enter only marks
 * the P as in a system call (a few plain stores); when the call lasts more than one look of the
 * monitor thread (20 us while it is busy, up to 10 ms when it has been idle) and other Gs could
 * use the P, the monitor hands the P to another M, made if none is idle. exit takes the G's own
 * P back if the monitor has not taken it (one CAS), else an idle P, else the G waits in the
 * global run queue and resumes on whichever M runs it next: a different thread, so thread-locals
 * read before exit are not the ones after (errno excepted: exit carries its value over).
 *
 * Called from a G; outside a G (a plain thread, the scheduler not started) both do nothing.
 * Nesting: only the outermost pair acts, inner ones are counted; an exit without an enter does
 * nothing. Between them the G may still use channels, yield or sleep: it leaves the system call
 * while it does (a G needs a P to park) and enters it again after. A G in a system call is not
 * blocked on channels: chan_mpg_wait reports no deadlock while one is, and chan_mpg_stop says
 * -EBUSY (the G is live). Neither call can fail. */
void chan_mpg_syscall_enter(void);
void chan_mpg_syscall_exit(void);

/* Waits, from a plain thread, until every G has returned (0), or until the Gs left are all
 * parked on channels with nothing runnable, no timer pending, no G in a system call and no
 * foreign thread announced: then it prints Go's "all goroutines are asleep - deadlock!" with
 * each G, what it is blocked in (Go's words: "chan receive", "select", "chan send (nil chan)",
 * ...) and the channels it waits on (by name when chan_trace_name_chan gave them one) to
 * stderr and returns -EDEADLK. The parked Gs stay parked: closing their channels
 * (from this thread) wakes them, and chan_mpg_wait may be called again; each call decides
 * afresh, never repeating an earlier report. -EINVAL from a G or when the scheduler is not
 * running. With CHAN_LEAKCHECK=1 in the environment when chan_mpg_start runs, it also looks
 * for partial deadlocks about once a second while it waits - some Gs blocked forever while
 * others run (chan_leak(3)) - and prints each new finding on stderr; the wait goes on. */
int chan_mpg_wait(void);

/* As chan_mpg_wait, but the deadlock report goes into buf (size bytes, always NUL-terminated
 * when size > 0, truncated if need be) instead of stderr; buf may be NULL with size 0. */
int chan_mpg_wait_report(char *buf, size_t size);

/* A plain thread that shares channels with Gs (and so may wake one) calls enter before its
 * first such operation and leave after its last: while any is inside, no deadlock is reported.
 * Counted; any thread, any number of times, as long as the calls pair up; a leave when none is
 * announced does nothing. enter: 0. A thread that Gs may wait on from its start is announced by
 * its creator before pthread_create and leaves as it ends: announced by itself, it leaves a
 * moment in which every G may be found blocked and a deadlock reported. */
int chan_mpg_foreign_enter(void);
void chan_mpg_foreign_leave(void);

/* Stops the monitor thread and the Ms and frees every stack. 0; -EBUSY (nothing stopped) while
 * any G is live (parked Gs, and Gs in system calls, included: wake them first, or let them
 * return); -EINVAL from a G or when not running. Starts and stops called from several threads
 * at once take turns: of two stops one stops and the other says -EINVAL. */
int chan_mpg_stop(void);

/* Counters, for tests and tuning; st may be NULL (nothing is written). While running, this run's;
 * after chan_mpg_stop, those of the run it ended, with stacks and stacks_guarded 0 (freed);
 * before the first start, zeros. */
struct chan_mpg_stats {
    uint64_t spawned;        /* Gs started since chan_mpg_start */
    uint64_t live;           /* Gs not yet returned */
    uint64_t stacks;         /* stacks made (the pool's size) */
    uint64_t stacks_guarded; /* of those, with a guard page */
    uint64_t steals;         /* successful steals by idle Ps */
    uint64_t deadlocks;      /* times chan_mpg_wait* returned -EDEADLK */
    int nprocs;
    uint64_t threads; /* Ms made (they are kept until chan_mpg_stop) */
    uint64_t retakes; /* Ps the monitor took from Gs in system calls */
    uint64_t moved;   /* Gs the monitor moved to the global queue from behind a G that
                         kept its P */
};
/* In C++ the function hides the structure's name: write struct chan_mpg_stats there too, as
 * in C. g++ -Wshadow says so of this declaration ("hides constructor"): quiet here, where a
 * user cannot change it. */
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
void chan_mpg_stats(struct chan_mpg_stats *st);
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
