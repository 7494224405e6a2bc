/* SPDX-License-Identifier: MIT */
/*
 * sysmon.c - libchan-mpg's monitor, after Go's sysmon and retake (runtime/proc.go): one thread,
 * not an M (it never runs a G nor holds a P), started by chan_mpg_start and stopped by
 * chan_mpg_stop. It looks at every P every SYSMON_MIN_NS while it takes Ps from system calls,
 * and after SYSMON_IDLE_LOOKS looks in a row that took none its sleep doubles up to
 * SYSMON_MAX_NS (Go's 20 us, 50 looks, 10 ms). When a look finds every P idle it sleeps until
 * the earliest timer of a parked G (Go's sysmonwait, timeSleepUntil), or until it is woken where
 * it may have work again (sysmon_kick): a G enters a system call (Go's entersyscall_sysmon), a G
 * back from one takes an idle P (exitsyscallfast_pidle), a G hands another the P's runnext, a
 * pair sysmon may have to split (below; Go's ready wakes an idle P for it instead), or the last
 * idle P is taken: no idle M is left to steal from busy Ps or to poll the fds. A P taken from
 * idle while another stays idle does not wake it: a server that idles between requests would
 * wake it at every request (as it did: 1.25-1.55 context switches of the server per round trip
 * of one connection, 1.02-1.07 since). Its sleep then starts again from the shortest and
 * doubles. At each look, for each P:
 *
 *  - P_SYSCALL with the same system call as at the last look (syscalltick): its G has been in
 *    the kernel since then at least. sysmon takes the P (CAS P_SYSCALL -> P_RUNNING, the same
 *    CAS the G's exitsyscall tries) and hands it to another M (handoffp) when there is work for
 *    it (its own queue or the global one), when no M looks for work (none spinning, no P idle),
 *    or when the call has lasted SYSCALL_KEEP_NS; otherwise the G takes it back cheaply.
 *
 *  - P_RUNNING with the same schedtick as at the last look: its G has run since then at least
 *    without returning to the scheduler. It computes, or blocks in a system call it did not
 *    announce (chan_mpg_syscall_enter). Scheduling is cooperative: nothing can stop that G, and
 *    it keeps its M and its P. What sysmon does is move the Gs waiting behind it to the global
 *    queue and wake an idle P for them: the G in runnext at once (it was to run as soon as that
 *    G parked), and once that G has run RUNNING_KEEP_NS (Go's forcePreemptNS, 10 ms) the Gs of
 *    the P's ring too. Those were queued with a wakep, so idle Ps steal them: the ones still
 *    there wait because every other P is busy, and from the global queue those Ps run them at
 *    their next schedule (a P looks there every 61 schedules, and whenever its own is empty).
 *    With a schedtick that moved but an empty ring, the runnext G is taken as a spinning M
 *    takes it (runnext_note: when the P does not schedule during a 3 us pause, one for all
 *    such Ps of a look): its G may keep running, a producer filling a buffer say, with the G
 *    it woke waiting behind it.
 *
 * Why the Gs and not the P (Go's retake preempts the G and so frees its P): giving the P to
 * another M while its G runs on would leave that G without a P but still free to ready Gs into
 * the P's runnext and ring, which only the owner writes, with plain stores; every put would
 * need an atomic check that the P is still its own. Taking Gs out of a ring or runnext by CAS
 * is what thieves already do: sysmon is one more thief, and the hot path stays as it is. The
 * cost: a G that never schedules keeps one P, and with every P so held nothing else runs.
 *
 * It also fires the timers of parked Gs that are overdue by TIMER_LATE_NS on any P (Go's sysmon
 * starts an M for them): the idle M that sleeps until the earliest may have been taken for work
 * (midle_get_locked avoids it when it can), and the owner of that timer's P may run a G that
 * keeps it. And it polls the fds that Gs wait on when
 * nobody has for NETPOLL_SYSMON_NS (netpoll.c): the Ms poll when they run out of work, and an
 * idle one sleeps in epoll_wait, but Ms that all keep running Gs never do.
 *
 * This replaces the watcher of earlier versions (an idle M sleeping with a time-out to look at
 * busy Ps' runnext): one monitor.
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "sched/sched_internal.h"

#define SYSMON_MIN_NS 20000      /* its shortest sleep (Go's 20 us) */
#define SYSMON_MAX_NS 10000000   /* its longest (Go's 10 ms) */
#define SYSMON_IDLE_LOOKS 50     /* looks that found nothing before its sleep doubles (Go's) */
#define SYSCALL_KEEP_NS 10000000 /* a P in a system call with no work is taken after this */
#define RUNNING_KEEP_NS 10000000 /* a G that keeps its P this long loses its ring's Gs */
#define TIMER_LATE_NS 1000000    /* a timer overdue by this: sysmon fires it */
#define SYSMON_STACK (256 * 1024)

/* What sysmon saw of each P at its last look (Go's sysmontick): its own, no lock. next and
 * nexttick: during a look, the runnext G noted for the pause (runnext_note), and p's schedtick
 * then. */
struct pmon {
    uint32_t schedtick, syscalltick, nexttick;
    int64_t schedwhen, syscallwhen;
    struct g *next;
};

static struct pmon *mon;

/* The Gs behind p's G go where other Ps run them: g, its runnext G if p has not scheduled since
 * the last look (stuck), or, when p's ring is empty, if p does not schedule during a pause of
 * RUNNEXT_PAUSE_NS (the thieves' rule: it catches a G that keeps running after it woke another,
 * say a producer filling a buffer, whose schedtick moves between looks; retake makes one pause
 * for every such P of a look); its ring too (ring) if stuck for RUNNING_KEEP_NS.
 *
 * The runnext G goes straight to an idle P's M (startm_g_locked): put in the global queue it
 * would most often be taken back by p itself, whose G parks within microseconds (a buffer
 * fills), before the woken M got there (a futex wake-up across cores takes ~50 us on a VM): the
 * pair would never be split across Ps. Gs are taken and placed under sched.lock: in between
 * they are in no queue, and sysmon holds no P, so the deadlock condition (decided under that
 * lock) could otherwise see every P idle and no work while a G is runnable. */
static void unstick(struct p *p, struct g *g, bool ring)
{
    if (!g && !ring)
        return;
    int n = 0, k = 0;
    pthread_mutex_lock(&sched.lock);
    if (g && runnext_grab(p, g)) {
        COUNT(moved);
        if (!startm_g_locked(g))
            gq_push(g); /* no idle P: a busy P runs it at its next schedule */
        n++;
    }
    if (ring)
        n += k = runq_to_global(p);
    pthread_mutex_unlock(&sched.lock);
    if (k)
        wakep();
    if (n)
        atomic_fetch_add_explicit(&sched.moved, (uint64_t)n, memory_order_relaxed);
}

/* Go's retake: one look at every P (see the top of the file). Returns how many Ps it took from
 * system calls: that is what keeps sysmon looking often. */
static int retake(int64_t now)
{
    int n = 0, paused = 0;
    for (int i = 0; i < sched.nprocs; i++) {
        struct p *p = &sched.ps[i];
        struct pmon *pd = &mon[i];
        uint32_t s = atomic_load_explicit(&p->status, memory_order_acquire);
        if (s == P_SYSCALL) {
            uint32_t t = atomic_load_explicit(&p->syscalltick, memory_order_relaxed);
            if (pd->syscalltick != t) {
                pd->syscalltick = t;
                pd->syscallwhen = now;
                continue;
            }
            if (runq_empty(p) && gq_empty() &&
                atomic_load(&sched.nspinning) + atomic_load(&sched.npidle) > 0 &&
                now - pd->syscallwhen < SYSCALL_KEEP_NS)
                continue;
            if (!m_available()) {
                m_limit_say(); /* at the thread limit: no M to hand it to */
                continue;
            }
            uint32_t expected = P_SYSCALL;
            if (!atomic_compare_exchange_strong_explicit(
                    &p->status, &expected, P_RUNNING, memory_order_acquire, memory_order_relaxed))
                continue; /* its G is back and took it */
            atomic_fetch_add_explicit(&sched.retakes, 1, memory_order_relaxed);
            n++;
            handoffp(p);
        } else if (s == P_RUNNING) {
            uint32_t t = atomic_load_explicit(&p->schedtick, memory_order_relaxed);
            bool stuck = pd->schedtick == t;
            if (!stuck) {
                pd->schedtick = t;
                pd->schedwhen = now;
            }
            if (sched.nprocs == 1)
                continue;
            if (stuck)
                unstick(p, atomic_load_explicit(&p->runnext, memory_order_acquire),
                        now - pd->schedwhen >= RUNNING_KEEP_NS);
            else if ((pd->next = runnext_note(p, &pd->nexttick)))
                paused++;
        }
    }
    /* The Ps that scheduled since the last look but hold a G in runnext behind an empty ring:
     * one pause for all of them, then the G of each that has not scheduled meanwhile. */
    if (paused) {
        runnext_pause();
        for (int i = 0; i < sched.nprocs; i++) {
            struct pmon *pd = &mon[i];
            if (pd->next && runnext_unmoved(&sched.ps[i], pd->nexttick))
                unstick(&sched.ps[i], pd->next, false);
            pd->next = NULL;
        }
    }
    return n;
}

/* Sleeps while every P is idle (Go's sysmonwait), until sysmon_kick or sysmon_stop wakes it, or
 * the earliest timer of a parked G on any P comes (Go's timeSleepUntil): the M that sleeps
 * until that timer may by then run a G that keeps it, and an overdue timer is sysmon's to fire
 * (timers_late). No timer is armed while every P is idle (a park needs a P). */
static void sleep_while_idle(void)
{
    pthread_mutex_lock(&sched.lock);
    if (atomic_load(&sched.npidle) != sched.nprocs || atomic_load(&sched.stopping)) {
        pthread_mutex_unlock(&sched.lock);
        return;
    }
    atomic_store(&sched.sysmonwait, true);
    pthread_mutex_unlock(&sched.lock);
    int64_t until = timers_earliest();
    while (atomic_load(&sched.sysmon_wake) == 0 && (until == CHAN_FOREVER || chan_now() < until))
        futex_wait(&sched.sysmon_wake, 0, until);
    pthread_mutex_lock(&sched.lock);
    atomic_store(&sched.sysmonwait, false); /* (still set if the timer ended the sleep) */
    atomic_store(&sched.sysmon_wake, 0);
    pthread_mutex_unlock(&sched.lock);
}

/* Go's sysmon starts an M for timers that should have run: here sysmon runs them itself, those
 * overdue by TIMER_LATE_NS on any P (the owner of that P runs a G that keeps its M, or is in a
 * system call, and the timer M was taken for work or there is none), and their Gs go to the
 * global queue as one batch, an M started for each idle P (inject_locked). Fired and queued
 * under sched.lock: sysmon holds no P, and the deadlock check, which every P idle lets run,
 * must find each G in a heap or a queue, never between the two. */
static void timers_late(int64_t now)
{
    bool late = false;
    for (int i = 0; i < sched.nprocs && !late; i++) {
        int64_t w = atomic_load_explicit(&sched.ps[i].timer0, memory_order_relaxed);
        /* (w may be any past deadline, INT64_MIN too: no subtraction from it) */
        late = w != CHAN_FOREVER && w < now - TIMER_LATE_NS;
    }
    if (!late)
        return;
    struct g *list = NULL;
    pthread_mutex_lock(&sched.lock);
    for (int i = 0; i < sched.nprocs; i++) {
        int64_t w = atomic_load_explicit(&sched.ps[i].timer0, memory_order_relaxed);
        if (w != CHAN_FOREVER && w < now - TIMER_LATE_NS) {
            COUNT(timer_steal);
            timers_fire(&sched.ps[i], now, &list);
        }
    }
    if (list)
        inject_locked(list); /* one batch, an M for each idle P, up to their number */
    pthread_mutex_unlock(&sched.lock);
}

static void *sysmon_main(void *arg)
{
    (void)arg;
    int64_t delay = SYSMON_MIN_NS;
    unsigned idle = 0; /* looks in a row that took no P from a system call */
    for (;;) {
        futex_wait(&sched.sysmon_wake, 0, chan_now() + delay);
        if (atomic_load(&sched.stopping))
            break;
        bool woke = false;
        if (atomic_load(&sched.npidle) == sched.nprocs) {
            sleep_while_idle();
            if (atomic_load(&sched.stopping))
                break;
            woke = true;
        }
        int64_t now = chan_now();
        if (retake(now))
            idle = 0;
        else
            idle++;
        timers_late(now);
        /* Go's sysmon: poll the fds if nobody has for 10 ms (every M busy with Gs that keep
         * it, none idle in epoll_wait); the Gs go where idle Ps or the busy ones run them. */
        if (netpoll_due(now)) {
            struct g *list = NULL;
            netpoll(0, &list);
            inject(NULL, list);
        }
        /* Go's: the shortest sleep while it takes Ps and for SYSMON_IDLE_LOOKS looks after,
         * then doubling. After every P was idle, there is work again, maybe a new pair of Gs
         * to split across Ps: the shortest sleep too, then doubling at once (the idle count is
         * kept), as the idle M that watched runnext before sysmon did. */
        if (idle == 0 || woke)
            delay = SYSMON_MIN_NS;
        else if (idle > SYSMON_IDLE_LOOKS)
            delay = delay < SYSMON_MAX_NS / 2 ? 2 * delay : SYSMON_MAX_NS;
    }
    return NULL;
}

int sysmon_start(void)
{
    mon = calloc((size_t)sched.nprocs, sizeof *mon);
    if (!mon)
        return -ENOMEM;
    int64_t now = chan_now();
    for (int i = 0; i < sched.nprocs; i++) {
        mon[i].schedtick = mon[i].syscalltick = UINT32_MAX; /* nothing seen yet */
        mon[i].schedwhen = mon[i].syscallwhen = now;
    }
    atomic_store(&sched.sysmon_wake, 0);
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (!err) {
        pthread_attr_setstacksize(&attr, SYSMON_STACK);
        err = pthread_create(&sched.sysmon, &attr, sysmon_main, NULL);
        pthread_attr_destroy(&attr);
    }
    if (err) {
        free(mon);
        mon = NULL;
        return -err;
    }
    sched.sysmon_started = true;
    return 0;
}

void sysmon_wake_locked(void)
{
    atomic_store(&sched.sysmonwait, false);
    atomic_store(&sched.sysmon_wake, 1);
    futex_wake(&sched.sysmon_wake);
}

void sysmon_kick_locked(void)
{
    if (atomic_load_explicit(&sched.sysmonwait, memory_order_relaxed))
        sysmon_wake_locked();
}

void sysmon_kick_slow(void)
{
    pthread_mutex_lock(&sched.lock);
    sysmon_kick_locked();
    pthread_mutex_unlock(&sched.lock);
}

/* After stopping is set: wherever sysmon sleeps, it wakes and returns. */
void sysmon_stop(void)
{
    if (!sched.sysmon_started)
        return;
    pthread_mutex_lock(&sched.lock);
    sysmon_wake_locked();
    pthread_mutex_unlock(&sched.lock);
    pthread_join(sched.sysmon, NULL);
    sched.sysmon_started = false;
    free(mon);
    mon = NULL;
}
