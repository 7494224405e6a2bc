/* SPDX-License-Identifier: MIT */
/*
 * deadlock.c - libchan-mpg's deadlock detection: Go's "all goroutines are asleep - deadlock!"
 * (runtime/proc.go's checkdead), decided by chan_mpg_wait, with Go's report of what each G
 * waits on.
 *
 * The condition: every P idle, no G in a system call (chan_mpg_syscall_enter: its P may have
 * been taken and be idle, yet the G will come back), no G waiting on an fd (the world may wake
 * it: Go counts netpoll waiters as possibly runnable), no queue or runnext holds a G, neither
 * timer heap (the scheduler's, libchan's timer thread's) holds a pending timer, no foreign
 * thread announced, and Gs still live: those Gs are then all parked on channels, and only a
 * thread that has not announced itself could wake them. The verdict is never stored:
 * chan_mpg_wait decides it under sched.lock when it is called and each time it is woken, and
 * whatever may turn it true (the last P going idle, the last foreign thread leaving, libchan's
 * last pending timer done, the last G returning) wakes the waiters. A G leaving its system call
 * takes a P, or waits in the global queue, before it stops counting as in one (under
 * sched.lock when its P was taken): that never turns the condition true by itself. What turns it
 * false needs no wake-up: the waiter decides afresh, so a report never outlives its truth.
 *
 * Partial deadlocks - some Gs blocked forever while others run - are libchan's leak detector's
 * to find (trace/leak.c, chan_leak(3)): this file shows it the Gs, their stacks and what they
 * wait on (gs_visit), registered while the scheduler runs. Under CHAN_LEAKCHECK, chan_mpg_wait
 * runs one now and then while it waits, and prints what it finds (leak_look).
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan_leak.h"
#include "chan_trace.h"
#include "sched/sched_internal.h"

#define REPORT_MAX_CHANS 16 /* channels listed per G in the report */

/* ---- The condition, and who wakes the waiters to decide it ----------------------------------- */

/* Go's checkdead, under sched.lock: the deadlock condition (see the top of the file), decided
 * now. libchan's timer thread (chan_time.h: timers, tickers, context deadlines) is a foreign
 * thread that wakes Gs when a timer fires, and its heap is out of our sight: its count of
 * pending timers (seam.h: timers_pending, armed ones plus those being fired, read without a
 * lock) defers the report like a timer of ours, and its drained hook (timers_drained) tells us
 * when that count drops to zero. libchan-mpg links with libchan.a, so time/timer.c is always
 * there (a program that makes no timer just links it unused). */
static bool deadlocked_locked(void)
{
    if (atomic_load(&sched.npidle) != sched.nprocs || atomic_load(&sched.live) == 0 ||
        any_syscall_locked() || any_work(true) || netpoll_waiting())
        return false;
    if (timers_pending() > 0)
        return false;
    /* Foreign threads last: a plain thread's chan_mpg_go announces itself before it counts its
     * G live and leaves after it has queued it, and its wakep then needs sched.lock, which we
     * hold; so a live count that includes its G is seen with its announcement (all seq_cst). */
    return g_timers_armed() == 0 && atomic_load(&sched.nforeign) == 0;
}

/* Also when the last foreign thread leaves (chan_mpg_foreign_leave). */
void deadlock_recheck_locked(void)
{
    if (atomic_load(&sched.nwaiters) > 0)
        pthread_cond_broadcast(&sched.cv);
}

/* Also for the last G returning (execute). */
void waiters_wake(void)
{
    pthread_mutex_lock(&sched.lock);
    pthread_cond_broadcast(&sched.cv);
    pthread_mutex_unlock(&sched.lock);
}

/* time/timer.c's drained hook: its last pending timer is done (fired, stopped or freed). Called
 * with the timer lock held, on any thread: takes sched.lock and signals. A waiter counts itself
 * (seq_cst) before it reads timers_pending(), and the count dropped to zero before this reads
 * nwaiters: one of the two sees the other, so no waiter misses the change. */
static void timers_drained(void)
{
    if (atomic_load(&sched.nwaiters) > 0)
        waiters_wake();
}

/* ---- What libchan's leak detector sees of the Gs (seam.h: struct task_source) ---------------- */

/* sched.lock keeps the list of Ms as it is (newm_locked adds to it under that lock), sched.gmu
 * the Gs and the stack pool (no G is made or freed); in that order (sched_internal.h). */
static void gs_lock(void)
{
    pthread_mutex_lock(&sched.lock);
    pthread_mutex_lock(&sched.gmu);
}

static void gs_unlock(void)
{
    pthread_mutex_unlock(&sched.gmu);
    pthread_mutex_unlock(&sched.lock);
}

/* Whether an M runs g: on a P, or in a system call without one (m->insyscall, its P maybe
 * taken by sysmon). Either way its stack is its M's thread's, live from that thread's stack
 * pointer up. */
#if defined(__clang__) || __GNUC__ >= 8
__attribute__((no_sanitize("thread")))
#endif
static bool
g_on_m(const struct g *g)
{
    for (const struct m *m = sched.allm; m; m = m->allnext)
        if (m->curg == g)
            return true;
    return false;
}

/* Every G descriptor, with gs_lock's locks held and every other thread stopped by the leak
 * detector: the fields are read as they were left, without the locks and orders that guard
 * them while Gs run. A G is running when an M has it as curg (in a system call too); a G that
 * one M hands to another G (m->handoff) has switched out but is not parked yet. The stack is
 * [stk_lo, stk_lo + stk_size) of the G's slot in its chunk (fiber.c); the descriptor lies apart
 * from it, packed with its chunk's others. A G not started yet (fiber.sp NULL: its M writes its
 * first frame) has nothing on its stack: what it holds is its function and argument. */
#if defined(__clang__) || __GNUC__ >= 8
__attribute__((no_sanitize("thread")))
#endif
static void
gs_visit(void (*fn)(const struct task_info *t, void *arg), void *arg)
{
    for (struct g *g = sched.all_gs; g; g = g->allnext) {
        struct task_info t = {
            .id = g->id,
            .stk_lo = g->fiber.stk_lo,
            .stk_hi = g->fiber.stk_lo + g->fiber.stk_size,
            .sp = g->fiber.sp,
            .desc = g,
            .desc_size = sizeof *g,
            .deadline = CHAN_FOREVER,
        };
        if (!atomic_load_explicit(&g->live, memory_order_relaxed)) {
            t.state = TASK_FREE;
        } else {
            t.own[0] = (uintptr_t)g->fn;
            t.own[1] = (uintptr_t)g->arg;
            t.state = g_on_m(g) ? TASK_RUNNING : TASK_RUNNABLE;
            if (t.state != TASK_RUNNING &&
                (atomic_load_explicit(&g->wake, memory_order_relaxed) & W_MASK) == W_PARKED) {
                t.state = TASK_PARKED;
                t.waiter = g->waiter;
                t.deadline = g->deadline;
            }
        }
        fn(&t, arg);
    }
}

static const struct task_source gs_source = {gs_lock, gs_unlock, gs_visit};

/* CHAN_LEAKCHECK, read at chan_mpg_start: chan_mpg_wait looks for partial deadlocks while it
 * waits (leak_look). */
static bool leak_watch;

/* chan_trace_task_hook's id of the calling thread's task: its G's id, 0 outside a G. */
static uint64_t g_task_id(void)
{
    int64_t id = chan_mpg_self();
    return id > 0 ? (uint64_t)id : 0;
}

void deadlock_watch(bool on)
{
    timers_set_drained_hook(on ? timers_drained : NULL);
    leak_task_source(on ? &gs_source : NULL);
    /* Traces, chan_dump and chan_leftovers name each G by its id, as Go's name goroutines,
     * unless the program set a task hook of its own (then it is left as it is). */
    trace_task_hook_swap(on ? NULL : g_task_id, on ? g_task_id : NULL);
    const char *v = getenv("CHAN_LEAKCHECK");
    leak_watch = on && v && *v && strcmp(v, "0") != 0;
    if (leak_watch)
        chan_dump_enable(); /* (already on if CHAN_LEAKCHECK was set when the program started) */
}

/* While chan_mpg_wait waits under CHAN_LEAKCHECK: a leak check about once a second (sched.lock
 * dropped meanwhile, as a check takes the G list's lock), its report printed on stderr when the
 * number of leaked waiters changed since the last one printed (*last). A partial deadlock does
 * not end the wait: the other Gs may still all return. */
static void leak_look(int *last)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    int n = chan_leak_check(f, NULL);
    fclose(f);
    if (n > 0 && n != *last) {
        fputs(text, stderr);
        fflush(stderr);
    }
    if (n >= 0)
        *last = n;
    free(text);
}

/* ---- The report ------------------------------------------------------------------------------ */

/* Go's words for what a parked G does (seam.h's wait_reason_words, as chan_dump says them): a
 * plain send or receive, nil or not, and a select, whatever its cases, are told apart as Go
 * tells them. A G parked outside a channel operation: asleep (chan_mpg_sleep_until), or parked. */
static const char *wait_words(const struct g *g, const struct waiter *w)
{
    if (!w)
        return g->sleeping ? "sleep" : "parked";
    return wait_reason_words(waiter_reason(w));
}

/* A channel the G waits on and the direction, in the words of the leak reports' line for it:
 * named (chan_trace_name_chan), marked a timer's or an fd's, as chan_dump shows it. */
static void report_chan(FILE *f, chan_t *c, enum chan_dir dir)
{
    fputc('\t', f);
    trace_chan_print(f, c);
    fprintf(f, " %s\n", dir == CHAN_SEND ? "send" : "recv");
}

/* Under sched.lock, every P idle and no G in a system call: no G moves. Go's format, each
 * channel as chan_dump writes it. The report (malloc), or NULL when memory is short. */
static char *report_deadlock_locked(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "all goroutines are asleep - deadlock!\n");
    pthread_mutex_lock(&sched.gmu);
    /* Oldest first: the list is newest first, so collect and print backwards. */
    size_t n = 0;
    for (struct g *g = sched.all_gs; g; g = g->allnext)
        n++;
    struct g **v = malloc(n * sizeof *v + 1);
    if (v) {
        size_t k = 0;
        for (struct g *g = sched.all_gs; g; g = g->allnext)
            v[k++] = g;
        for (size_t i = n; i-- > 0;) {
            struct g *g = v[i];
            if (!atomic_load_explicit(&g->live, memory_order_acquire))
                continue;
            if ((atomic_load_explicit(&g->wake, memory_order_acquire) & W_MASK) != W_PARKED)
                continue;
            struct waiter *w = g->waiter;
            chan_t *chans[REPORT_MAX_CHANS];
            enum chan_dir dirs[REPORT_MAX_CHANS];
            size_t nc = w ? waiter_channels(w, chans, dirs, REPORT_MAX_CHANS) : 0;
            fprintf(f, "\ngoroutine %lld [%s]:\n", (long long)g->id, wait_words(g, w));
            for (size_t i2 = 0; i2 < nc && i2 < REPORT_MAX_CHANS; i2++)
                report_chan(f, chans[i2], dirs[i2]);
            if (nc > REPORT_MAX_CHANS)
                fprintf(f, "\t... %zu more\n", nc - REPORT_MAX_CHANS);
        }
        free(v);
    }
    pthread_mutex_unlock(&sched.gmu);
    fclose(f);
    return buf;
}

/* ---- Waiting for the Gs, and foreign threads ------------------------------------------------- */

/* The verdict is decided here, now and at each wake-up, never taken from an earlier wait: a
 * deadlock reported before may have been undone since (a channel closed, a foreign thread
 * announced, a timer reset). */
static int wait_common(char *buf, size_t size, bool to_stderr)
{
    if (!atomic_load(&sched.running) || m_self())
        return -EINVAL;
    int rc = 0, leaked = 0;
    char *report = NULL;
    pthread_mutex_lock(&sched.lock);
    atomic_fetch_add(&sched.nwaiters, 1);
    /* A stop on another thread (which succeeds only with no G live) clears running under
     * sched.lock before it frees the Ps: none to look at after that. A refused spawn counts
     * itself live for a moment even then. */
    while (atomic_load(&sched.live) > 0 && atomic_load(&sched.running)) {
        if (deadlocked_locked()) {
            rc = -EDEADLK;
            report = report_deadlock_locked();
            atomic_fetch_add(&sched.ndeadlocks, 1);
            break;
        }
        if (!leak_watch) {
            pthread_cond_wait(&sched.cv, &sched.lock);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* sched.cv's clock */
        ts.tv_sec += 1;
        if (pthread_cond_timedwait(&sched.cv, &sched.lock, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&sched.lock);
            leak_look(&leaked);
            pthread_mutex_lock(&sched.lock);
        }
    }
    atomic_fetch_sub(&sched.nwaiters, 1);
    pthread_mutex_unlock(&sched.lock);
    if (rc) {
        const char *r = report ? report : "all goroutines are asleep - deadlock!\n";
        if (to_stderr) {
            fputs(r, stderr);
            fflush(stderr);
        } else if (buf && size) {
            snprintf(buf, size, "%s", r);
        }
        free(report);
    }
    return rc;
}

int chan_mpg_wait(void) { return wait_common(NULL, 0, true); }

int chan_mpg_wait_report(char *buf, size_t size) { return wait_common(buf, size, false); }

int chan_mpg_foreign_enter(void)
{
    atomic_fetch_add(&sched.nforeign, 1);
    return 0;
}

/* A leave with no thread announced does nothing (as an unpaired chan_mpg_syscall_exit): taken
 * below zero, the count would let the next thread's enter protect nothing. */
void chan_mpg_foreign_leave(void)
{
    long n = atomic_load(&sched.nforeign);
    do {
        if (n <= 0)
            return;
    } while (!atomic_compare_exchange_weak(&sched.nforeign, &n, n - 1));
    /* Only a waiter needs the news: one counts itself (seq_cst) before it reads nforeign, so
     * either it sees this leave or this sees it (as timers_drained). A plain thread's
     * chan_mpg_go comes here at every spawn: no lock when nobody waits. */
    if (n == 1 && atomic_load(&sched.nwaiters) > 0 && atomic_load(&sched.running)) {
        pthread_mutex_lock(&sched.lock);
        deadlock_recheck_locked();
        pthread_mutex_unlock(&sched.lock);
    }
}
