/* SPDX-License-Identifier: MIT */
/*
 * test_mpg.c - libchan-mpg (sched/): channel and select behaviours with Gs in place of threads,
 * deadlines through the hook, sleeping and yielding, G <-> pthread traffic, the deadlock report
 * and its absence while a foreign thread may still send, and 100,000 Gs in a pipeline.
 *
 * Every test starts its own scheduler (Check runs each test in its own process) and ends with
 * chan_mpg_wait() == 0 and chan_mpg_stop() == 0: every G returned, nothing left parked. Time
 * bounds are loose (loaded 2-core machines, sanitizers): nothing here measures speed.
 */
#include "testmpg.h"

#include <sched.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_time.h"
#include "chan_trace.h"
#include "sched/chan_sched_mpg.h"
#include "sched/fiber.h"          /* fiber_guard_fail_hook */
#include "sched/sched_internal.h" /* cgroup_root: the seam for the cgroup cases */

/* TSan makes every G a fiber with its own trace (256 KiB, written): 100,000 live Gs would need
 * some 25 GB under TSan, so its build runs the big shapes smaller (under_tsan, testutil.h). */

/* ---- Lifecycle ------------------------------------------------------------------------------- */

static atomic_long counter;

static void bump(void *arg)
{
    (void)arg;
    G_CHECK(chan_mpg_self() > 0);
    atomic_fetch_add(&counter, 1);
}

START_TEST(lifecycle)
{
    ck_assert_int_eq(chan_mpg_go(bump, NULL), -EINVAL); /* not started */
    ck_assert_int_eq(chan_mpg_wait(), -EINVAL);
    ck_assert_int_eq(chan_mpg_start(-1), -EINVAL);
    for (int round = 0; round < 3; round++) {
        start(round + 1);
        ck_assert_int_eq(chan_mpg_start(1), -EALREADY);
        ck_assert_int_eq(chan_mpg_go(NULL, NULL), -EINVAL);
        ck_assert_int_eq(chan_mpg_self(), 0);
        for (int i = 0; i < 1000; i++)
            go(bump, NULL);
        finish();
    }
    ck_assert_int_eq(atomic_load(&counter), 3000);
    NO_BAD();
}
END_TEST

/* Stack sizes at their bounds: below the minimum and not a page multiple are taken (raised,
 * rounded up); one whose pool arithmetic would wrap (SIZE_MAX once made stacks of 0 bytes) is
 * refused; one that fits the arithmetic but no address space makes chan_mpg_go say -ENOMEM. */
START_TEST(stack_size_bounds)
{
    size_t ok[] = {1, CHAN_MPG_STACK_MIN - 1, 20000, 3 * CHAN_MPG_STACK_DEFAULT + 1};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct chan_mpg_config c = {.nprocs = 1, .stack_size = ok[i]};
        ck_assert_int_eq(chan_mpg_start_config(&c), 0);
        go(bump, NULL);
        finish();
    }
    size_t huge[] = {SIZE_MAX, SIZE_MAX - 4095, (size_t)1 << 62, ((size_t)1 << 55) + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        struct chan_mpg_config c = {.nprocs = 1, .stack_size = huge[i]};
        ck_assert_int_eq(chan_mpg_start_config(&c), -EINVAL);
    }
    struct chan_mpg_config c = {.nprocs = 1, .stack_size = (size_t)1 << 55};
    ck_assert_int_eq(chan_mpg_start_config(&c), 0);
    ck_assert_int_eq(chan_mpg_go(bump, NULL), -ENOMEM); /* 2^63 bytes a chunk */
    finish();
    ck_assert_int_eq(atomic_load(&counter), 4);
    NO_BAD();
}
END_TEST

/* Starts and stops from several threads at once. Two stops: one stops, the other says -EINVAL
 * (both once went on to join the same Ms: a hang). Two starts: the one that says -EALREADY
 * finds a scheduler that runs its G (running was once set before the start had made its Ps,
 * and a previous stop's flag still refused Gs). A thread spawning while stop is tried: every G
 * given an id runs (a stop once freed the scheduler under a chan_mpg_go under way, its G lost).
 * A G spawning while stop is tried: no spawn fails (the stop says -EBUSY). */
static atomic_int lc_go;
static int lc_rc[2]; /* read after the join */
static atomic_long lc_ran, lc_ok, lc_failed;

static void lc_bump(void *arg)
{
    (void)arg;
    atomic_fetch_add(&lc_ran, 1);
}

static void *lc_stopper(void *arg)
{
    long i = (long)arg;
    while (!atomic_load(&lc_go))
        ;
    lc_rc[i] = chan_mpg_stop();
    return NULL;
}

static void *lc_starter(void *arg)
{
    long i = (long)arg;
    while (!atomic_load(&lc_go))
        ;
    int rc = chan_mpg_start(1);
    if (rc == -EALREADY && chan_mpg_go(lc_bump, NULL) < 1)
        rc = -EBADE;
    lc_rc[i] = rc;
    return NULL;
}

static void *lc_spawner(void *arg)
{
    (void)arg;
    while (!atomic_load(&lc_go))
        ;
    for (int i = 0; i < 200; i++) {
        int64_t id = chan_mpg_go(lc_bump, NULL);
        if (id > 0)
            atomic_fetch_add(&lc_ok, 1);
        else if (id != -EINVAL)
            atomic_fetch_add(&lc_failed, 1);
    }
    return NULL;
}

static void lc_gspawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++)
        if (chan_mpg_go(lc_bump, NULL) < 1)
            atomic_fetch_add(&lc_failed, 1);
}

START_TEST(lifecycle_concurrent)
{
    int rounds = under_sanitizer() ? 30 : 100;
    for (int r = 0; r < rounds; r++) {
        pthread_t t[2];
        start(1);
        atomic_store(&lc_go, 0);
        for (long i = 0; i < 2; i++)
            t[i] = spawn(lc_stopper, (void *)i);
        atomic_store(&lc_go, 1);
        for (int i = 0; i < 2; i++)
            join(t[i]);
        ck_assert_int_eq(lc_rc[0] + lc_rc[1], -EINVAL); /* 0 and -EINVAL */

        atomic_store(&lc_go, 0);
        atomic_store(&lc_ran, 0);
        for (long i = 0; i < 2; i++)
            t[i] = spawn(lc_starter, (void *)i);
        atomic_store(&lc_go, 1);
        for (int i = 0; i < 2; i++)
            join(t[i]);
        ck_assert_int_eq(lc_rc[0] + lc_rc[1], -EALREADY); /* 0 and -EALREADY, its G spawned */
        ck_assert_int_eq(chan_mpg_wait(), 0);
        ck_assert_int_eq(atomic_load(&lc_ran), 1);
        ck_assert_int_eq(chan_mpg_stop(), 0);

        start(1);
        atomic_store(&lc_go, 0);
        atomic_store(&lc_ran, 0);
        atomic_store(&lc_ok, 0);
        t[0] = spawn(lc_spawner, NULL);
        atomic_store(&lc_go, 1);
        while (chan_mpg_stop() == -EBUSY)
            ;
        join(t[0]);
        ck_assert_int_eq(atomic_load(&lc_ran), atomic_load(&lc_ok));

        start(2);
        atomic_store(&lc_ran, 0);
        go(lc_gspawner, NULL);
        while (chan_mpg_stop() == -EBUSY)
            ;
        ck_assert_int_eq(atomic_load(&lc_ran), 200);
        ck_assert_int_eq(atomic_load(&lc_failed), 0);
    }
}
END_TEST

/* A plain thread's chan_mpg_go counts its G live before it queues it: a chan_mpg_wait meanwhile
 * found a live G in no queue, every P idle, and reported a deadlock with no G in it. No G here
 * ever blocks, so every report is false. */
static _Atomic int64_t fs_end;
static atomic_bool fs_done;

/* One G at a time, each waited for: no G is live between two spawns, so the waits return and
 * are called again all the time, and each spawn is seen in flight by some. Under TSan at most
 * 2,000 Gs: each is a fiber of TSan's, whose traces tens of thousands in a row exhausted (a SEGV
 * inside TSan's TraceSwitchPart, 3 runs of 6). */
static void *fs_spawner(void *arg)
{
    (void)arg;
    long max = under_tsan() ? 2000 : LONG_MAX;
    for (long n = 1; n <= max && chan_now() < atomic_load(&fs_end); n++) {
        if (chan_mpg_go(lc_bump, NULL) < 1)
            atomic_fetch_add(&lc_failed, 1);
        while (atomic_load(&lc_ran) < n)
            sched_yield();
    }
    atomic_store(&fs_done, true);
    return NULL;
}

START_TEST(foreign_spawn_no_false_deadlock)
{
    start(1);
    atomic_store(&fs_end, chan_now() + 2000 * 1000000LL);
    atomic_store(&lc_failed, 0);
    atomic_store(&lc_ran, 0);
    atomic_store(&fs_done, false);
    pthread_t t = spawn(fs_spawner, NULL);
    int reports = 0;
    char buf[256] = "";
    while (!atomic_load(&fs_done))
        if (chan_mpg_wait_report(buf, sizeof buf) == -EDEADLK)
            reports++;
    join(t);
    ck_assert_msg(reports == 0, "%d false deadlock reports, the last: %s", reports, buf);
    ck_assert_int_eq(atomic_load(&lc_failed), 0);
    finish();
}
END_TEST

/* chan_mpg_wait racing a stop and a start on other threads, while a plain thread's spawns are
 * refused (each counts itself live for a moment): the wait looked at the Ps that the stop had
 * freed, or that the start had not made yet (SIGSEGV in any_work). It returns 0 or -EINVAL. */
static _Atomic int64_t wr_end;

static void *wr_cycler(void *arg)
{
    (void)arg;
    for (int i = 0; chan_now() < atomic_load(&wr_end); i++) {
        int rc = chan_mpg_start(1 + i % 2);
        if (rc != 0 && rc != -EALREADY)
            atomic_fetch_add(&lc_failed, 1);
        rc = chan_mpg_stop();
        if (rc != 0 && rc != -EBUSY && rc != -EINVAL)
            atomic_fetch_add(&lc_failed, 1);
    }
    return NULL;
}

static void *wr_spawner(void *arg)
{
    (void)arg;
    while (chan_now() < atomic_load(&wr_end)) {
        int64_t id = chan_mpg_go(lc_bump, NULL);
        if (id < 1 && id != -EINVAL)
            atomic_fetch_add(&lc_failed, 1);
    }
    return NULL;
}

START_TEST(wait_races_stop_and_start)
{
    /* Every thread stops at the end: a wait returns only once no G is live. */
    atomic_store(&wr_end, chan_now() + (under_sanitizer() ? 1500 : 3000) * 1000000LL);
    atomic_store(&lc_failed, 0);
    pthread_t t[3] = {spawn(wr_cycler, NULL), spawn(wr_cycler, NULL), spawn(wr_spawner, NULL)};
    long bad_rc = 0, waits = 0;
    while (chan_now() < atomic_load(&wr_end)) {
        char buf[256];
        int rc = chan_mpg_wait_report(buf, sizeof buf);
        waits++;
        if (rc != 0 && rc != -EINVAL)
            bad_rc++;
    }
    for (int i = 0; i < 3; i++)
        join(t[i]);
    ck_assert_msg(bad_rc == 0, "%ld of %ld waits said neither 0 nor -EINVAL", bad_rc, waits);
    ck_assert_int_eq(atomic_load(&lc_failed), 0);
    if (chan_mpg_stop() == -EBUSY) {
        ck_assert_int_eq(chan_mpg_wait(), 0);
        ck_assert_int_eq(chan_mpg_stop(), 0);
    }
}
END_TEST

/* chan_mpg(3), CAVEATS: a child of fork(2) has the scheduler's state but none of its threads.
 * Its start says -EALREADY, a spawn returns an id (its G never runs), and a stop -EBUSY while
 * the parent had Gs. Not under the sanitizers, whose runtimes a fork of a process with threads
 * upsets. */
static void fk_park(void *arg)
{
    long v;
    chan_recv(arg, &v);
}

START_TEST(fork_child_as_documented)
{
    if (under_sanitizer())
        return;
    start(2);
    chan_t *c = chan_make(sizeof(long), 0);
    go(fk_park, c);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chan_mpg_start(1) != -EALREADY)
            _exit(1);
        if (chan_mpg_go(lc_bump, NULL) < 1)
            _exit(2);
        if (chan_mpg_stop() != -EBUSY)
            _exit(3);
        _exit(0);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    ck_assert_int_eq(chan_close(c), 0);
    finish();
    chan_free(c);
}
END_TEST

/* chan_mpg_stats after a stop: the counts of the run it ended, with no stacks. */
START_TEST(stats_after_stop)
{
    struct chan_mpg_config cfg = {.nprocs = 3, .guard_max = 5};
    ck_assert_int_eq(chan_mpg_start_config(&cfg), 0);
    chan_t *c = chan_make(sizeof(long), 0);
    for (int i = 0; i < 40; i++)
        go(fk_park, c);
    struct chan_mpg_stats st;
    char buf[64];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    chan_mpg_stats(&st);
    ck_assert_uint_eq(st.live, 40);
    ck_assert_uint_eq(st.stacks, 40);
    ck_assert_uint_le(st.stacks_guarded, 5); /* 0 under TSan before Linux 6.13 */
    ck_assert_uint_ge(st.stacks_guarded, under_sanitizer() ? 0 : 5);
    ck_assert_int_eq(chan_close(c), 0);
    finish();
    chan_free(c);
    chan_mpg_stats(&st);
    ck_assert_uint_eq(st.spawned, 40);
    ck_assert_uint_eq(st.live, 0);
    ck_assert_uint_eq(st.deadlocks, 1);
    ck_assert_int_eq(st.nprocs, test_nprocs(3)); /* CHAN_TEST_NPROCS replaces the 3 */
    ck_assert_uint_ge(st.threads, (unsigned)test_nprocs(3));
    ck_assert_uint_eq(st.stacks, 0);
    ck_assert_uint_eq(st.stacks_guarded, 0);
}
END_TEST

/* A stack whose guard cannot be had is not made: chan_mpg_go says -ENOMEM, and the G that
 * follows once the kernel has room again gets the stack, guarded (fiber.c's guard markers stop
 * part way through the chunk at the failing stack, which is then guarded as it is carved). */
static atomic_bool guard_fails;
static bool fail_guard_10(uint64_t stack) { return atomic_load(&guard_fails) && stack == 10; }

START_TEST(guard_failure_fails_spawn)
{
    fiber_guard_fail_hook = fail_guard_10;
    atomic_store(&guard_fails, true);
    struct chan_mpg_config cfg = {.nprocs = 2}; /* guard_max 0: every stack */
    ck_assert_int_eq(chan_mpg_start_config(&cfg), 0);
    chan_t *c = chan_make(sizeof(long), 0);
    for (int i = 0; i < 10; i++)
        go(fk_park, c);
    ck_assert_int_eq(chan_mpg_go(fk_park, c), -ENOMEM);
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    ck_assert_uint_eq(st.stacks, 10);
    atomic_store(&guard_fails, false);
    for (int i = 0; i < 6; i++)
        go(fk_park, c);
    chan_mpg_stats(&st);
    ck_assert_uint_eq(st.live, 16);
    ck_assert_uint_eq(st.stacks, 16);
    ck_assert_uint_eq(st.stacks_guarded, 16);
    ck_assert_int_eq(chan_close(c), 0);
    finish();
    chan_free(c);
    fiber_guard_fail_hook = NULL;
}
END_TEST

/* ---- Channels with Gs ---------------------------------------------------------------------- */

struct pp {
    chan_t *a, *b;
    long n;
};

static void pinger(void *arg)
{
    struct pp *p = arg;
    for (long i = 0; i < p->n; i++) {
        long v = i, w = -1;
        G_CHECK(chan_send(p->a, &v) == 0);
        G_CHECK(chan_recv(p->b, &w) == 0);
        G_CHECK(w == i + 1);
    }
}

static void ponger(void *arg)
{
    struct pp *p = arg;
    for (long i = 0; i < p->n; i++) {
        long v = -1;
        G_CHECK(chan_recv(p->a, &v) == 0);
        G_CHECK(v == i);
        v++;
        G_CHECK(chan_send(p->b, &v) == 0);
    }
}

START_TEST(pingpong)
{
    for (int nprocs = 1; nprocs <= 3; nprocs++) {
        start(nprocs);
        struct pp p[4];
        for (int k = 0; k < 4; k++) {
            p[k] = (struct pp){chan_make(sizeof(long), 0), chan_make(sizeof(long), 0), 20000};
            go(ponger, &p[k]);
            go(pinger, &p[k]);
        }
        finish();
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(chan_free(p[k].a), 0);
            ck_assert_int_eq(chan_free(p[k].b), 0);
        }
    }
    NO_BAD();
}
END_TEST

/* Where the Ms run: by default where the kernel puts them, as Go's (the CPUs the program may use,
 * which the Ms inherit); with bind, on the core of the P each holds, ping-pongs crossing Ps. */
static atomic_int m_cpus;

static void note_cpus(void *arg)
{
    (void)arg;
    cpu_set_t set;
    G_CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    atomic_store(&m_cpus, CPU_COUNT(&set));
}

START_TEST(placement)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int all = CPU_COUNT(&set);
    for (int bind = 0; bind <= 1; bind++) {
        struct chan_mpg_config cfg = {.nprocs = 2, .bind = bind};
        ck_assert_int_eq(chan_mpg_start_config(&cfg), 0);
        struct pp p[2];
        for (int k = 0; k < 2; k++) {
            p[k] = (struct pp){chan_make(sizeof(long), 0), chan_make(sizeof(long), 0), 20000};
            go(ponger, &p[k]);
            go(pinger, &p[k]);
        }
        atomic_store(&m_cpus, 0);
        go(note_cpus, NULL);
        finish();
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(chan_free(p[k].a), 0);
            ck_assert_int_eq(chan_free(p[k].b), 0);
        }
        int got = atomic_load(&m_cpus);
        if (bind)
            ck_assert(got >= 1 && got <= all); /* one core's CPUs */
        else
            ck_assert_int_eq(got, all);
    }
    NO_BAD();
}
END_TEST

/* nprocs 0 means the CPUs the program may run on, as Go's GOMAXPROCS defaults to the affinity
 * mask: under taskset (here the test narrows its own mask to its last CPU, which the Ms
 * inherit), one P, not one per core of the machine (it was 2 here). And bind keeps each M within
 * that mask: it bound P 0's M to core 0, outside the CPUs the program was given. Each of nprocs
 * Gs spins until all of them run at once (so every P has an M running a G) and notes whether
 * its M may run on the one CPU only. */
static atomic_int aff_cpu, aff_running, aff_outside;

static void aff_check(void *arg)
{
    int n = (int)(intptr_t)arg;
    atomic_fetch_add(&aff_running, 1);
    int64_t end = chan_now() + 20 * 1000000000LL;
    while (atomic_load(&aff_running) < n && chan_now() < end)
        sched_yield(); /* the OS thread yields; the G keeps its P */
    cpu_set_t set;
    G_CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    if (CPU_COUNT(&set) != 1 || !CPU_ISSET(atomic_load(&aff_cpu), &set))
        atomic_fetch_add(&aff_outside, 1);
}

START_TEST(nprocs_default_affinity)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int cpu = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            cpu = c;
    ck_assert_int_ge(cpu, 0);
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ck_assert_int_eq(sched_setaffinity(0, sizeof set, &set), 0);
    atomic_store(&aff_cpu, cpu);
    struct chan_mpg_stats st;
    for (int bind = 0; bind <= 1; bind++) {
        struct chan_mpg_config cfg = {.nprocs = bind ? 2 : 0, .bind = bind};
        ck_assert_int_eq(chan_mpg_start_config(&cfg), 0);
        chan_mpg_stats(&st);
        if (!bind)
            ck_assert_int_eq(st.nprocs, 1);
        atomic_store(&aff_running, 0);
        for (int i = 0; i < st.nprocs; i++)
            go(aff_check, (void *)(intptr_t)st.nprocs);
        finish();
        ck_assert_int_eq(atomic_load(&aff_running), st.nprocs);
        int outside = atomic_load(&aff_outside);
        ck_assert_msg(outside == 0, "bind %d: %d G(s) on an M bound outside CPU %d", bind, outside,
                      cpu);
    }
    NO_BAD();
}
END_TEST

/* On a machine hwloc describes (a synthetic topology: HWLOC_SYNTHETIC), nprocs 0 is one P per
 * CPU, SMT siblings included, as Go's (it was one per core: 64 of the 128 PUs of two packages of
 * two NUMA nodes of 16 cores of 2 PUs), and never more than the 1,024 Ps chan_mpg_start takes
 * (a machine of 1,200 cores got 1,200 Ps). bind places them on such a topology (hwloc does not
 * bind for real on a topology that is not this machine's). */
START_TEST(nprocs_default_topology)
{
    static const struct {
        const char *topo;
        int nprocs;
    } cases[] = {
        {"pack:2 numa:2 core:16 pu:2", 128},
        {"pack:2 core:4 pu:2", 16},
        {"pack:2 core:600 pu:1", 1024},
    };
    cgroup_root = "/nonexistent"; /* no cgroup quota, wherever the test runs */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(setenv("HWLOC_SYNTHETIC", cases[i].topo, 1), 0);
        for (int bind = 0; bind <= 1; bind++) {
            struct chan_mpg_config cfg = {.bind = bind};
            ck_assert_int_eq(chan_mpg_start_config(&cfg), 0);
            struct chan_mpg_stats st;
            chan_mpg_stats(&st);
            ck_assert_msg(st.nprocs == cases[i].nprocs, "%s: %d Ps, not %d", cases[i].topo,
                          st.nprocs, cases[i].nprocs);
            for (int k = 0; k < 100; k++)
                go(bump, NULL);
            finish();
        }
    }
    ck_assert_int_eq(unsetenv("HWLOC_SYNTHETIC"), 0);
    ck_assert_int_eq(atomic_load(&counter), 600);
    NO_BAD();
}
END_TEST

/* The cgroup's CPU quota bounds nprocs 0 as it bounds Go 1.25's GOMAXPROCS: the quota over the
 * period rounded up, at least 2, never more than the CPUs (the 8 of a synthetic topology here).
 * Each case is a tree of its own, /proc/self/cgroup, /proc/self/mountinfo and the cgroup's
 * files, that the scheduler reads in place of the real ones (cgroup_root, sched_internal.h's
 * seam for tests). A malformed or missing file is no quota. */
struct cg_file {
    const char *name, *text;
};

static const char cg_v2_cgroup[] = "0::/app.slice/web\n";
static const char cg_v2_mounts[] = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
                                   "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
static const char cg_v2_max[] = "sys/fs/cgroup/app.slice/web/cpu.max";

static int cg_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Writes the files under dir (making their directories), starts the scheduler with nprocs 0
 * reading that tree, and returns its Ps. */
static int cg_nprocs(const char *dir, const struct cg_file *files, int n)
{
    char path[PATH_MAX];
    for (int i = 0; i < n; i++) {
        int len = snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        ck_assert(len > 0 && (size_t)len < sizeof path);
        for (char *sl = strchr(path + strlen(dir) + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
            *sl = '\0';
            ck_assert(mkdir(path, 0700) == 0 || errno == EEXIST);
            *sl = '/';
        }
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fputs(files[i].text, f) >= 0, 1);
        ck_assert_int_eq(fclose(f), 0);
    }
    cgroup_root = dir;
    ck_assert_int_eq(chan_mpg_start(0), 0);
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    cgroup_root = "";
    return st.nprocs;
}

START_TEST(nprocs_default_cgroup_quota)
{
    static const struct {
        const char *what;
        struct cg_file files[4];
        int nprocs;
    } cases[] = {
        {"v2 1.5 CPUs",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "150000 100000\n"}},
         2},
        {"v2 4 CPUs",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "400000 100000\n"}},
         4},
        {"v2 half a CPU: Go's floor of 2",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "50000 100000\n"}},
         2},
        {"v2 no quota",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "max 100000\n"}},
         8},
        {"v2 more than the CPUs",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "1600000 100000\n"}},
         8},
        {"v2 malformed: one number",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "150000\n"}},
         8},
        {"v2 malformed: not a number",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "15O000 100000\n"}},
         8},
        {"v2 malformed: no newline",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "150000 100000"}},
         8},
        {"v2 malformed: a zero period",
         {{"proc/self/cgroup", cg_v2_cgroup},
          {"proc/self/mountinfo", cg_v2_mounts},
          {cg_v2_max, "150000 0\n"}},
         8},
        {"v2 no cpu.max",
         {{"proc/self/cgroup", cg_v2_cgroup}, {"proc/self/mountinfo", cg_v2_mounts}},
         8},
        {"v2 a mount of a subtree (no cgroup namespace)",
         {{"proc/self/cgroup", "0::/docker/abc\n"},
          {"proc/self/mountinfo",
           "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"},
          {"sys/fs/cgroup/cpu.max", "300000 100000\n"}},
         3},
        {"v2 a mount point with a space",
         {{"proc/self/cgroup", "0::/\n"},
          {"proc/self/mountinfo", "30 23 0:26 / /cg\\040root rw - cgroup2 none rw\n"},
          {"cg root/cpu.max", "500000 100000\n"}},
         5},
        {"v1 cpu hierarchy first",
         {{"proc/self/cgroup", "5:cpuset:/\n4:cpu,cpuacct:/app\n0::/\n"},
          {"proc/self/mountinfo",
           "33 31 0:30 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
           "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
           "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"},
          {"sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_quota_us", "250000\n"},
          {"sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_period_us", "100000\n"}},
         3},
        {"v1 no quota",
         {{"proc/self/cgroup", "4:cpu,cpuacct:/app\n"},
          {"proc/self/mountinfo",
           "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"},
          {"sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_quota_us", "-1\n"},
          {"sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_period_us", "100000\n"}},
         8},
        {"no cgroup at all", {{"proc/self/status", "\n"}}, 8},
    };
    char base[] = "/tmp/test_mpg_cgroup.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(base));
    ck_assert_int_eq(setenv("HWLOC_SYNTHETIC", "pack:1 core:8 pu:1", 1), 0);
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[64];
        ck_assert_int_lt(snprintf(dir, sizeof dir, "%s/%zu", base, i), (int)sizeof dir);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        int nfiles = 0;
        while (nfiles < 4 && cases[i].files[nfiles].name)
            nfiles++;
        int n = cg_nprocs(dir, cases[i].files, nfiles);
        if (n != cases[i].nprocs) {
            fprintf(stderr, "%s: %d Ps, not %d\n", cases[i].what, n, cases[i].nprocs);
            failed++;
        }
    }
    ck_assert_int_eq(unsetenv("HWLOC_SYNTHETIC"), 0);
    ck_assert_int_eq(nftw(base, cg_rm, 16, FTW_DEPTH | FTW_PHYS), 0);
    ck_assert_msg(failed == 0, "%d case(s) with the wrong number of Ps (above)", failed);
}
END_TEST

struct fifo {
    chan_t *c;
    long n;
    int producers;
};

static void fifo_producer(void *arg)
{
    struct fifo *f = arg;
    long id = chan_mpg_self();
    for (long i = 0; i < f->n; i++) {
        long v = id << 32 | i;
        G_CHECK(chan_send(f->c, &v) == 0);
        if (i % 97 == 0)
            chan_mpg_yield();
    }
}

struct fifo_rx {
    struct fifo *f;
    chan_t *done;
};

/* Per producer, values arrive in the order sent (one receiver: the buffer is FIFO). */
static void fifo_consumer(void *arg)
{
    struct fifo_rx *r = arg;
    long next[64] = {0};
    long ids[64];
    int nids = 0;
    long v;
    for (long k = 0; k < r->f->n * r->f->producers; k++) {
        G_CHECK(chan_recv(r->f->c, &v) == 0);
        long id = v >> 32, i = v & 0xffffffff;
        int j = 0;
        while (j < nids && ids[j] != id)
            j++;
        if (j == nids && nids < 64)
            ids[nids++] = id;
        G_CHECK(j < 64 && next[j] == i);
        if (j < 64)
            next[j] = i + 1;
    }
    G_CHECK(chan_tryrecv(r->f->c, &v) == -EAGAIN);
    G_CHECK(chan_close(r->done) == 0);
}

START_TEST(buffered_fifo)
{
    start(2);
    struct fifo f = {chan_make(sizeof(long), 16), 20000, 4};
    struct fifo_rx r = {&f, chan_make(0, 0)};
    go(fifo_consumer, &r);
    for (int i = 0; i < f.producers; i++)
        go(fifo_producer, &f);
    chan_mpg_foreign_enter(); /* this thread waits on r.done, which a G closes */
    ck_assert_int_eq(chan_recv(r.done, NULL), -EPIPE);
    chan_mpg_foreign_leave();
    finish();
    ck_assert_int_eq(chan_len(f.c), 0);
    chan_free(f.c);
    chan_free(r.done);
    NO_BAD();
}
END_TEST

struct closer {
    chan_t *c;
    atomic_int woke, blocked;
};

static void close_recv(void *arg)
{
    struct closer *k = arg;
    long v = 7;
    atomic_fetch_add(&k->blocked, 1);
    G_CHECK(chan_recv(k->c, &v) == -EPIPE);
    G_CHECK(v == 0);
    atomic_fetch_add(&k->woke, 1);
}

static void close_send(void *arg)
{
    struct closer *k = arg;
    long v = 7;
    atomic_fetch_add(&k->blocked, 1);
    G_CHECK(chan_send(k->c, &v) == -EPIPE);
    atomic_fetch_add(&k->woke, 1);
}

START_TEST(close_wakes)
{
    start(2);
    struct closer r = {.c = chan_make(sizeof(long), 0)}, s = {.c = chan_make(sizeof(long), 0)};
    chan_mpg_foreign_enter();
    for (int i = 0; i < 50; i++) {
        go(close_recv, &r);
        go(close_send, &s);
    }
    ck_assert(blocked_receivers_at_least(r.c, 50));
    ck_assert(blocked_senders_at_least(s.c, 50));
    ck_assert_int_eq(chan_close(r.c), 0);
    ck_assert_int_eq(chan_close(s.c), 0);
    chan_mpg_foreign_leave();
    finish();
    ck_assert_int_eq(atomic_load(&r.woke), 50);
    ck_assert_int_eq(atomic_load(&s.woke), 50);
    ck_assert_int_eq(chan_free(r.c), 0);
    ck_assert_int_eq(chan_free(s.c), 0);
    NO_BAD();
}
END_TEST

/* ---- Select with Gs ------------------------------------------------------------------------- */

struct sel {
    chan_t *in[3], *quit;
    long n;
    atomic_long got[3], sum;
};

static void sel_sender(void *arg)
{
    struct sel *s = arg;
    long k = chan_mpg_self() % 3;
    for (long i = 1; i <= s->n; i++)
        G_CHECK(chan_send(s->in[k], &i) == 0);
}

static void sel_receiver(void *arg)
{
    struct sel *s = arg;
    long v = 0;
    struct chan_case cs[4] = {{s->in[0], &v, CHAN_RECV, 0},
                              {s->in[1], &v, CHAN_RECV, 0},
                              {s->in[2], &v, CHAN_RECV, 0},
                              {s->quit, NULL, CHAN_RECV, 0}};
    for (;;) {
        int i = chan_select(cs, 4);
        G_CHECK(i >= 0 && i < 4);
        if (i == 3) {
            G_CHECK(!cs[3].ok);
            return;
        }
        G_CHECK(cs[i].ok);
        atomic_fetch_add(&s->got[i], 1);
        atomic_fetch_add(&s->sum, v);
    }
}

START_TEST(select_gs)
{
    start(2);
    struct sel s = {.n = 5000};
    for (int i = 0; i < 3; i++)
        s.in[i] = chan_make(sizeof(long), i); /* unbuffered, 1, 2 */
    s.quit = chan_make(0, 0);
    for (int i = 0; i < 3; i++)
        go(sel_receiver, &s);
    for (int i = 0; i < 6; i++)
        go(sel_sender, &s);
    /* Wait for the senders' values to arrive, then close quit. */
    for (int i = 0;
         i < 30000 &&
         atomic_load(&s.got[0]) + atomic_load(&s.got[1]) + atomic_load(&s.got[2]) < 6 * s.n;
         i++)
        sleep_ms(1);
    ck_assert_int_eq(atomic_load(&s.got[0]) + atomic_load(&s.got[1]) + atomic_load(&s.got[2]),
                     6 * s.n);
    chan_close(s.quit);
    finish();
    ck_assert_int_eq(atomic_load(&s.sum), 6 * s.n * (s.n + 1) / 2);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&s.got[i]), 2 * s.n);
        chan_free(s.in[i]);
    }
    chan_free(s.quit);
    NO_BAD();
}
END_TEST

/* Go's select fairness, on Gs: two ready cases are chosen about equally. */
static void fair(void *arg)
{
    long *counts = arg;
    chan_t *a = chan_make(0, 1), *b = chan_make(0, 1);
    struct chan_case cs[2] = {{a, NULL, CHAN_RECV, 0}, {b, NULL, CHAN_RECV, 0}};
    for (int i = 0; i < 10000; i++) {
        chan_trysend(a, NULL);
        chan_trysend(b, NULL);
        int k = chan_select(cs, 2);
        G_CHECK(k == 0 || k == 1);
        if (k == 0 || k == 1)
            counts[k]++;
    }
    chan_free(a);
    chan_free(b);
}

START_TEST(select_fair)
{
    start(1);
    long counts[2] = {0, 0};
    go(fair, counts);
    finish();
    ck_assert_int_gt(counts[0], 3000);
    ck_assert_int_gt(counts[1], 3000);
    NO_BAD();
}
END_TEST

/* ---- Deadlines on the hook ------------------------------------------------------------------- */

struct dl {
    chan_t *c;
    atomic_long timedout, late;
};

static void until_g(void *arg)
{
    struct dl *d = arg;
    long v = 0;
    chan_t *c = chan_make(sizeof(long), 0); /* its own: the Gs must not meet each other */
    int64_t t0 = chan_now(), deadline = t0 + 20 * MS;
    G_CHECK(chan_recv_until(c, &v, deadline) == -ETIMEDOUT);
    int64_t t1 = chan_now();
    G_CHECK(t1 >= deadline);
    if (t1 - deadline > 2000 * MS) /* a timer lost, not a slow machine: all Ms may stall */
        atomic_fetch_add(&d->late, 1);
    G_CHECK(chan_send_until(c, &v, chan_now() + 10 * MS) == -ETIMEDOUT);
    struct chan_case cs[2] = {{c, &v, CHAN_RECV, 0}, {NULL, NULL, CHAN_SEND, 0}};
    G_CHECK(chan_select_until(cs, 2, chan_now() + 10 * MS) == -ETIMEDOUT);
    G_CHECK(chan_recv_until(c, &v, chan_now() - 1) == -ETIMEDOUT); /* passed: try form */
    /* A shared channel that nobody else uses in this test. */
    G_CHECK(chan_recv_until(d->c, &v, chan_now() + 5 * MS) == -ETIMEDOUT);
    G_CHECK(chan_free(c) == 0);
    atomic_fetch_add(&d->timedout, 1);
}

START_TEST(until_timeouts)
{
    start(2);
    struct dl d = {.c = chan_make(sizeof(long), 0)};
    for (int i = 0; i < 200; i++)
        go(until_g, &d);
    finish();
    ck_assert_int_eq(atomic_load(&d.timedout), 200);
    /* On a loaded machine every M may be held back at once: only a gross delay counts. */
    ck_assert_int_eq(atomic_load(&d.late), 0);
    chan_free(d.c);
    NO_BAD();
}
END_TEST

/* Values race deadlines: every value sent is received exactly once (conservation). */
struct race {
    chan_t *c;
    atomic_long sent, received, sum_sent, sum_received;
};

static void race_sender(void *arg)
{
    struct race *r = arg;
    for (long i = 1; i <= 3000; i++) {
        int rc = chan_send_until(r->c, &i, chan_now() + (i % 7) * 20000);
        G_CHECK(rc == 0 || rc == -ETIMEDOUT);
        if (rc == 0) {
            atomic_fetch_add(&r->sent, 1);
            atomic_fetch_add(&r->sum_sent, i);
        }
        if (i % 13 == 0)
            chan_mpg_sleep_until(chan_now() + 10000);
    }
}

static void race_receiver(void *arg)
{
    struct race *r = arg;
    long v;
    for (long i = 1; i <= 3000; i++) {
        int rc = chan_recv_until(r->c, &v, chan_now() + (i % 5) * 20000);
        G_CHECK(rc == 0 || rc == -ETIMEDOUT);
        if (rc == 0) {
            atomic_fetch_add(&r->received, 1);
            atomic_fetch_add(&r->sum_received, v);
        }
    }
}

START_TEST(until_races)
{
    start(2);
    struct race r = {.c = chan_make(sizeof(long), 0)};
    for (int i = 0; i < 4; i++) {
        go(race_sender, &r);
        go(race_receiver, &r);
    }
    finish();
    ck_assert_int_eq(atomic_load(&r.sent), atomic_load(&r.received));
    ck_assert_int_eq(atomic_load(&r.sum_sent), atomic_load(&r.sum_received));
    ck_assert_int_eq(chan_free(r.c), 0);
    NO_BAD();
}
END_TEST

/* A value that arrives before the deadline is received (0), not timed out. */
static void until_ok_rx(void *arg)
{
    chan_t *c = arg;
    long v = 0;
    G_CHECK(chan_recv_until(c, &v, chan_now() + 10000 * MS) == 0);
    G_CHECK(v == 42);
}

static void until_ok_tx(void *arg)
{
    chan_t *c = arg;
    long v = 42;
    chan_mpg_sleep_until(chan_now() + 5 * MS);
    G_CHECK(chan_send(c, &v) == 0);
}

START_TEST(until_success)
{
    start(2);
    chan_t *c = chan_make(sizeof(long), 0);
    for (int i = 0; i < 100; i++) {
        go(until_ok_rx, c);
        go(until_ok_tx, c);
    }
    finish();
    chan_free(c);
    NO_BAD();
}
END_TEST

/* ---- Sleep and yield ------------------------------------------------------------------------ */

static void sleeper(void *arg)
{
    atomic_long *early = arg;
    int64_t d = chan_now() + 30 * MS;
    G_CHECK(chan_mpg_sleep_until(d) == 0);
    if (chan_now() < d)
        atomic_fetch_add(early, 1);
}

static atomic_int turn;

static void yielder(void *arg)
{
    long me = (long)arg;
    /* Two Gs on one P take turns through yield alone. */
    for (int i = 0; i < 1000; i++) {
        while (atomic_load(&turn) % 2 != me)
            chan_mpg_yield();
        atomic_fetch_add(&turn, 1);
    }
}

START_TEST(sleep_yield)
{
    start(1);
    atomic_long early = 0;
    int64_t t0 = chan_now();
    for (int i = 0; i < 100; i++)
        go(sleeper, &early);
    go(yielder, (void *)0L);
    go(yielder, (void *)1L);
    finish();
    ck_assert_int_eq(atomic_load(&early), 0);
    ck_assert_int_ge(chan_now() - t0, 30 * MS);
    ck_assert_int_eq(atomic_load(&turn), 2000);
    /* Outside a G they fall back to the thread. */
    int64_t d = chan_now() + 2 * MS;
    ck_assert_int_eq(chan_mpg_sleep_until(d), 0);
    ck_assert_int_ge(chan_now(), d);
    chan_mpg_yield();
}
END_TEST

/* ---- 100,000 Gs in a pipeline ---------------------------------------------------------------- */

struct stage {
    chan_t *in, *out;
};

static void stage(void *arg)
{
    struct stage *s = arg;
    long v;
    while (chan_recv(s->in, &v) == 0)
        G_CHECK(chan_send(s->out, &(long){v + 1}) == 0);
    chan_close(s->out);
}

static void pipeline(long n, long values, size_t stack)
{
    struct chan_mpg_config cfg = {.nprocs = 2, .stack_size = stack};
    ck_assert_int_eq(chan_mpg_start_config(&cfg), 0);
    chan_t **c = malloc((size_t)(n + 1) * sizeof *c);
    struct stage *st = malloc((size_t)n * sizeof *st);
    ck_assert(c && st);
    for (long i = 0; i <= n; i++)
        ck_assert_ptr_nonnull(c[i] = chan_make(sizeof(long), 0));
    for (long i = 0; i < n; i++) {
        st[i] = (struct stage){c[i], c[i + 1]};
        go(stage, &st[i]);
    }
    chan_mpg_foreign_enter(); /* this thread feeds the head and drains the tail */
    long sum = 0, v;
    for (long k = 0; k < values; k++) {
        ck_assert_int_eq(chan_send(c[0], &k), 0);
        ck_assert_int_eq(chan_recv(c[n], &v), 0);
        sum += v;
    }
    chan_close(c[0]);
    ck_assert_int_eq(chan_recv(c[n], &v), -EPIPE);
    chan_mpg_foreign_leave();
    struct chan_mpg_stats s;
    chan_mpg_stats(&s);
    finish();
    ck_assert_int_eq(sum, values * (values - 1) / 2 + values * n);
    ck_assert_int_eq(s.spawned, n);
    ck_assert_int_ge(s.stacks, (uint64_t)n);
    ck_assert_int_le(s.stacks_guarded, s.stacks);
    for (long i = 0; i <= n; i++)
        ck_assert_int_eq(chan_free(c[i]), 0);
    free(c);
    free(st);
    NO_BAD();
}

START_TEST(pipeline_100k)
{
    /* Values pass through every G in turn: under the sanitizers one is enough. */
    if (under_tsan())
        pipeline(10000, 1, 32 * 1024); /* see under_tsan() */
    else
        pipeline(100000, under_sanitizer() ? 1 : 3, under_sanitizer() ? 32 * 1024 : 16 * 1024);
}
END_TEST

START_TEST(pipeline_small) { pipeline(1000, 200, 0); }
END_TEST

/* ---- Gs and pthreads ------------------------------------------------------------------------- */

struct mixed {
    chan_t *to_g, *from_g;
    long n;
};

static void echo_g(void *arg)
{
    struct mixed *m = arg;
    long v;
    while (chan_recv(m->to_g, &v) == 0)
        G_CHECK(chan_send(m->from_g, &(long){v * 2}) == 0);
}

static void *feeder(void *arg)
{
    struct mixed *m = arg;
    chan_mpg_foreign_enter();
    for (long i = 0; i < m->n; i++)
        ck_assert_int_eq(chan_send(m->to_g, &i), 0);
    chan_mpg_foreign_leave();
    return NULL;
}

START_TEST(mixed_g_pthread)
{
    start(2);
    struct mixed m = {chan_make(sizeof(long), 0), chan_make(sizeof(long), 4), 20000};
    for (int i = 0; i < 8; i++)
        go(echo_g, &m);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn(feeder, &m);
    chan_mpg_foreign_enter();
    long sum = 0, v;
    for (long k = 0; k < 3 * m.n; k++) {
        ck_assert_int_eq(chan_recv(m.from_g, &v), 0);
        sum += v;
    }
    for (int i = 0; i < 3; i++)
        join(t[i]);
    chan_close(m.to_g);
    chan_mpg_foreign_leave();
    finish();
    ck_assert_int_eq(sum, 3 * m.n * (m.n - 1));
    ck_assert_int_eq(chan_free(m.to_g), 0);
    ck_assert_int_eq(chan_free(m.from_g), 0);
    NO_BAD();
}
END_TEST

/* ---- Deadlock -------------------------------------------------------------------------------- */

struct dead {
    chan_t *a, *b, *c;
};

static void dead_recv(void *arg)
{
    struct dead *d = arg;
    long v;
    G_CHECK(chan_recv(d->a, &v) == -EPIPE);
}

static void dead_select(void *arg)
{
    struct dead *d = arg;
    long v = 1;
    struct chan_case cs[2] = {{d->b, &v, CHAN_SEND, 0}, {d->c, &v, CHAN_RECV, 0}};
    int i = chan_select(cs, 2);
    G_CHECK(i == 0 || i == 1);
    G_CHECK(!cs[i].ok);
}

static void dead_nil(void *arg)
{
    (void)arg;
    struct chan_case cs[1] = {{NULL, NULL, CHAN_RECV, 0}};
    chan_select_until(cs, 1, chan_now() + 10 * MS); /* a timer first: no deadlock yet */
    chan_recv(NULL, NULL);                          /* then forever */
}

static void dead_nil_send(void *arg)
{
    (void)arg;
    chan_send(NULL, &(long){1});
}

static void dead_select_none(void *arg)
{
    (void)arg;
    chan_select(NULL, 0); /* Go's select {} */
}

static void dead_select_nils(void *arg)
{
    (void)arg;
    struct chan_case cs[2] = {chan_case_recv(NULL, NULL), chan_case_send(NULL, &(long){1})};
    chan_select(cs, 2);
}

/* A select of one live case beside a nil one: Go calls it a select, not a receive. */
static void dead_select_one(void *arg)
{
    struct dead *d = arg;
    long v;
    struct chan_case cs[2] = {chan_case_recv(d->a, &v), chan_case_recv(NULL, NULL)};
    G_CHECK(chan_select(cs, 2) == 0 && !cs[0].ok);
}

static void dead_send(void *arg)
{
    struct dead *d = arg;
    G_CHECK(chan_send(d->b, &(long){1}) == -EPIPE);
}

START_TEST(deadlock_report)
{
    start(2);
    struct dead d = {chan_make(sizeof(long), 0), chan_make(sizeof(long), 0),
                     chan_make(sizeof(long), 1)};
    int64_t id1 = chan_mpg_go(dead_recv, &d), id2 = chan_mpg_go(dead_select, &d);
    ck_assert_int_gt(id1, 0);
    ck_assert_int_gt(id2, 0);
    char buf[4096];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    ck_assert_msg(strstr(buf, "all goroutines are asleep - deadlock!"), "%s", buf);
    char want[256];
    snprintf(want, sizeof want, "goroutine %lld [chan receive]:\n\tchan %p recv\n", (long long)id1,
             (void *)d.a);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    snprintf(want, sizeof want, "goroutine %lld [select]:\n", (long long)id2);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    snprintf(want, sizeof want, "\tchan %p send\n", (void *)d.b);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    snprintf(want, sizeof want, "\tchan %p recv\n", (void *)d.c);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    /* Still deadlocked: asked again, the same answer, on stderr this time (caught here). */
    int saved;
    FILE *err = stderr_capture_begin(&saved);
    int rc = chan_mpg_wait();
    stderr_capture_end(err, saved, buf, sizeof buf);
    ck_assert_int_eq(rc, -EDEADLK);
    ck_assert_msg(strstr(buf, "all goroutines are asleep - deadlock!"), "stderr: %s", buf);
    snprintf(want, sizeof want, "goroutine %lld [chan receive]:\n", (long long)id1);
    ck_assert_msg(strstr(buf, want), "no '%s' on stderr:\n%s", want, buf);
    ck_assert_int_eq(chan_mpg_stop(), -EBUSY);
    struct chan_mpg_stats s;
    chan_mpg_stats(&s);
    ck_assert_int_eq(s.deadlocks, 2);
    ck_assert_int_eq(s.live, 2);
    /* Closing the channels wakes the Gs: then it is over. */
    chan_close(d.a);
    chan_close(d.b);
    finish();
    chan_free(d.a);
    chan_free(d.b);
    chan_free(d.c);
    NO_BAD();
}
END_TEST

START_TEST(deadlock_nil)
{
    start(1);
    /* Before the G: it may run at once, and its 10 ms count from its own chan_now(). */
    int64_t t0 = chan_now();
    int64_t id = chan_mpg_go(dead_nil, NULL);
    char buf[1024];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    ck_assert_int_ge(chan_now() - t0, 10 * MS); /* not while its timer was pending */
    char want[128];
    snprintf(want, sizeof want, "goroutine %lld [chan receive (nil chan)]:\n", (long long)id);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    /* A G parked forever on nothing cannot be woken: the process ends with it (no stop). */
}
END_TEST

/* Every way to block on nothing, in Go's words: a send on nil, select {} and a select whose
 * cases are all nil (Go's selectgo parks it as a select). */
START_TEST(deadlock_nil_kinds)
{
    start(2);
    int64_t send = chan_mpg_go(dead_nil_send, NULL), none = chan_mpg_go(dead_select_none, NULL),
            nils = chan_mpg_go(dead_select_nils, NULL);
    char buf[2048];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    char want[128];
    snprintf(want, sizeof want, "goroutine %lld [chan send (nil chan)]:\n", (long long)send);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    snprintf(want, sizeof want, "goroutine %lld [select (no cases)]:\n", (long long)none);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    snprintf(want, sizeof want, "goroutine %lld [select]:\n", (long long)nils);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    /* Parked forever on nothing: the process ends with them (no stop). */
}
END_TEST

/* Named channels (chan_trace.h) appear by name in the report, quoted and escaped as chan_dump
 * shows them, beside their address; an unnamed one by its address alone. A select with one
 * live case is still a select. */
START_TEST(deadlock_report_names)
{
    start(2);
    struct dead d = {chan_make(sizeof(long), 0), chan_make(sizeof(long), 0), NULL};
    ck_assert_int_eq(chan_trace_name_chan(d.a, "jobs \"q\"\n"), 0);
    int64_t sel = chan_mpg_go(dead_select_one, &d), rcv = chan_mpg_go(dead_recv, &d),
            snd = chan_mpg_go(dead_send, &d);
    char buf[4096];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    char want[256];
#define JOBS_QUOTED "\"jobs \\\"q\\\"\\n\"" /* "jobs \"q\"\n", as the dump quotes it */
    snprintf(want, sizeof want, "goroutine %lld [select]:\n\tchan " JOBS_QUOTED " (%p) recv\n",
             (long long)sel, (void *)d.a);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    snprintf(want, sizeof want,
             "goroutine %lld [chan receive]:\n\tchan " JOBS_QUOTED " (%p) recv\n", (long long)rcv,
             (void *)d.a);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    snprintf(want, sizeof want, "goroutine %lld [chan send]:\n\tchan %p send\n", (long long)snd,
             (void *)d.b);
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    chan_close(d.a);
    chan_close(d.b);
    finish();
    chan_free(d.a);
    chan_free(d.b);
    NO_BAD();
}
END_TEST

/* A channel libchan made is marked in the report as chan_dump and the leak reports mark it: a G
 * blocked on a stopped timer's channel (nothing pending, so a deadlock) waits on
 * "chan (timer) 0x...", not on an anonymous channel. */
static void recv_timer(void *arg)
{
    int64_t v;
    chan_recv(arg, &v);
}

START_TEST(deadlock_report_marks_timer)
{
    ck_assert_int_eq(chan_dump_enable(), 0); /* the registry knows what a channel is for */
    start(1);
    chan_timer_t *t = chan_timer_make(3600000 * MS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    int64_t g = chan_mpg_go(recv_timer, chan_timer_chan(t));
    ck_assert_int_gt(g, 0);
    char buf[1024], want[128];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    snprintf(want, sizeof want, "goroutine %lld [chan receive]:\n\tchan (timer) %p recv\n",
             (long long)g, (void *)chan_timer_chan(t));
    ck_assert_msg(strstr(buf, want), "no '%s' in:\n%s", want, buf);
    ck_assert_int_eq(chan_timer_reset(t, 0), 0); /* fires: the G receives */
    finish();
    ck_assert_int_eq(chan_timer_free(t), 0);
    NO_BAD();
}
END_TEST

#ifdef CHAN_TRACE_BUILD
/* A trace of Gs (chan_trace_task_hook): each G's "blocked" slice runs from its own block to its
 * own wake-up, though its thread ran another G's block in between. */
static uint64_t g_of_thread(void)
{
    int64_t g = chan_mpg_self();
    return g > 0 ? (uint64_t)g : 0;
}

static void recv_long(void *arg)
{
    long v;
    G_CHECK(chan_recv(arg, &v) == 0);
}

START_TEST(trace_blocked_slice_per_g)
{
    start(1); /* one P: the second G blocks on the thread that ran the first */
    chan_t *x = chan_make(sizeof(long), 0), *y = chan_make(sizeof(long), 0);
    ck_assert_int_eq(chan_trace_name_chan(x, "x"), 0);
    ck_assert_int_eq(chan_trace_name_chan(y, "y"), 0);
    char path[] = "/tmp/test_mpg_trace_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    chan_trace_task_hook(g_of_thread);
    ck_assert_int_eq(chan_trace_start(path), 0);
    int64_t gx = chan_mpg_go(recv_long, x);
    ck_assert_int_gt(gx, 0);
    ck_assert(blocked_receivers_at_least(x, 1));
    int64_t gy = chan_mpg_go(recv_long, y);
    ck_assert_int_gt(gy, 0);
    ck_assert(blocked_receivers_at_least(y, 1));
    long v = 1;
    ck_assert_int_eq(chan_send(y, &v), 0); /* wakes the second first */
    ck_assert_int_eq(chan_send(x, &v), 0);
    finish();
    ck_assert_int_eq(chan_trace_stop(), 0);
    chan_trace_task_hook(NULL);
    /* One "blocked" slice per G, on its own channel, and each "woken" says how long. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
             "ev=[e[\"args\"] for e in d[\"traceEvents\"] if e.get(\"ph\")==\"X\"]; "
             "b=sorted((a.get(\"g\"),a.get(\"chan\")) for a in ev if a[\"op\"]==\"blocked\"); "
             "w=sorted((a.get(\"g\"),a.get(\"chan\")) for a in ev "
             "if a[\"op\"]==\"woken\" and \"blocked_ns\" in a); "
             "want=sorted([(int(sys.argv[2]),\"x\"),(int(sys.argv[3]),\"y\")]); "
             "sys.exit(0 if b==w==want else print(b,w,want) or 1)' '%s' %lld %lld",
             path, (long long)gx, (long long)gy);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "python3 tools/trace2play --strict --text '%s' >/dev/null", path);
    ck_assert_int_eq(system(cmd), 0); /* the replay adds up: FIFO queues, each G's wait */
    unlink(path);
    chan_free(x);
    chan_free(y);
    NO_BAD();
}
END_TEST

/* What chan_dump prints (at least `channels` of them), in a string to free. */
static char *dump_text(int channels)
{
    int n;
    char *text = text_of(chan_dump, &n);
    ck_assert_int_ge(n, channels);
    return text;
}

/* With the task hook set, chan_dump names each blocked G by its id, beside the thread it
 * blocked on (one thread ran both blocks here); without it, the thread only. */
START_TEST(dump_names_task)
{
    start(1);
    ck_assert_int_eq(chan_dump_enable(), 0);
    chan_t *x = chan_make(sizeof(long), 0), *y = chan_make(sizeof(long), 0);
    chan_trace_task_hook(g_of_thread);
    int64_t gx = chan_mpg_go(recv_long, x);
    ck_assert_int_gt(gx, 0);
    ck_assert(blocked_receivers_at_least(x, 1));
    chan_trace_task_hook(NULL);
    int64_t gy = chan_mpg_go(recv_long, y);
    ck_assert_int_gt(gy, 0);
    ck_assert(blocked_receivers_at_least(y, 1));
    char *buf = dump_text(2);
    char want[64], other[64];
    snprintf(want, sizeof want, "recv  task %lld on thread", (long long)gx);
    snprintf(other, sizeof other, "task %lld", (long long)gy);
    ck_assert_msg(strstr(buf, want) != NULL, "no '%s' in:\n%s", want, buf);
    ck_assert_msg(strstr(buf, other) == NULL, "'%s' without the hook:\n%s", other, buf);
    ck_assert_msg(strstr(buf, "recv  thread") != NULL, "no thread-only line in:\n%s", buf);
    free(buf);
    long v = 1;
    ck_assert_int_eq(chan_send(x, &v), 0);
    ck_assert_int_eq(chan_send(y, &v), 0);
    finish();
    chan_free(x);
    chan_free(y);
    NO_BAD();
}
END_TEST

/* Without a hook of the program's own, the scheduler names its Gs itself while it runs, and the
 * dump calls each a goroutine, as the deadlock report does, without the M it blocked on; a hook
 * the program set before the start is left as it is, through the start and the stop, and its
 * ids are tasks on threads. */
static uint64_t fixed_task(void) { return 4242; }

static char *dump_of_blocked_g(chan_t *c, int64_t *g)
{
    *g = chan_mpg_go(recv_long, c);
    ck_assert_int_gt(*g, 0);
    ck_assert(blocked_receivers_at_least(c, 1));
    char *buf = dump_text(1);
    long v = 1;
    ck_assert_int_eq(chan_send(c, &v), 0);
    return buf;
}

START_TEST(dump_names_g_by_default)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    chan_t *c = chan_make(sizeof(long), 0);
    char want[64];
    int64_t g;
    for (int round = 0; round < 2; round++) { /* the second after a stop and a new start */
        start(1);
        char *buf = dump_of_blocked_g(c, &g);
        snprintf(want, sizeof want, "recv  goroutine %lld  blocked for ", (long long)g);
        ck_assert_msg(strstr(buf, want) != NULL, "no '%s' in:\n%s", want, buf);
        free(buf);
        finish();
    }
    chan_trace_task_hook(fixed_task);
    start(1);
    char *buf = dump_of_blocked_g(c, &g);
    ck_assert_msg(strstr(buf, "recv  task 4242 on thread") != NULL, "hook replaced:\n%s", buf);
    free(buf);
    finish();
    start(1); /* the stop left it too */
    buf = dump_of_blocked_g(c, &g);
    ck_assert_msg(strstr(buf, "recv  task 4242 on thread") != NULL, "hook cleared:\n%s", buf);
    free(buf);
    finish();
    chan_trace_task_hook(NULL);
    chan_free(c);
    NO_BAD();
}
END_TEST
#endif

/* No false report: a foreign thread that is still alive will send. */
struct late {
    chan_t *c;
    int64_t delay;
};

static void *late_sender(void *arg)
{
    struct late *l = arg;
    sleep_ns(l->delay);
    for (long i = 0; i < 10; i++)
        ck_assert_int_eq(chan_send(l->c, &i), 0);
    chan_mpg_foreign_leave();
    return NULL;
}

static void late_receiver(void *arg)
{
    struct late *l = arg;
    long v;
    for (long i = 0; i < 5; i++) {
        G_CHECK(chan_recv(l->c, &v) == 0);
    }
}

/* Two Gs receive what a foreign thread, announced here and leaving as it ends, sends after
 * delay: chan_mpg_wait must return 0 and no deadlock be counted; then the scheduler stops. */
static void late_pair_no_deadlock(int64_t delay)
{
    struct late l = {chan_make(sizeof(long), 0), delay};
    chan_mpg_foreign_enter(); /* on the sender's behalf, before any G may wait for it */
    go(late_receiver, &l);
    go(late_receiver, &l);
    pthread_t t = spawn(late_sender, &l);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    join(t);
    chan_mpg_foreign_leave(); /* none left: nothing */
    struct chan_mpg_stats s;
    chan_mpg_stats(&s);
    ck_assert_int_eq(s.deadlocks, 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    chan_free(l.c);
}

START_TEST(no_false_deadlock)
{
    start(2);
    late_pair_no_deadlock(200 * MS);
    NO_BAD();
}
END_TEST

/* The last foreign thread leaving turns a wait into a deadlock: reported then. */
static void *leaver(void *arg)
{
    sleep_ms(50);
    (void)arg;
    chan_mpg_foreign_leave();
    return NULL;
}

START_TEST(deadlock_after_leave)
{
    start(2);
    chan_t *c = chan_make(0, 0);
    chan_mpg_foreign_enter();
    go(dead_recv, &(struct dead){c, NULL, NULL});
    pthread_t t = spawn(leaver, NULL);
    char buf[512];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    join(t);
    chan_close(c);
    finish();
    chan_free(c);
    NO_BAD();
}
END_TEST

/* A leave with no thread announced does nothing: the next thread's enter still keeps the report
 * away while it lives (the count, taken below zero, once let that enter protect nothing). */
START_TEST(foreign_leave_unpaired)
{
    start(2);
    chan_mpg_foreign_leave();
    chan_mpg_foreign_leave();
    late_pair_no_deadlock(100 * MS);
    NO_BAD();
}
END_TEST

/* A libchan timer (chan_time.h) that no G waits on defers the report while it is pending, and
 * only that long: the report comes once the timer thread has fired its last pending timer, be
 * it a channel timer, a func timer or a context's deadline. The timer is made before the G
 * blocks, so that no verdict can be reached before it. */
static void nop(void *arg) { (void)arg; }

START_TEST(deadlock_after_timer)
{
    start(2);
    chan_t *c = chan_make(sizeof(long), 0);
    struct dead d = {c, NULL, NULL};
    for (int round = 0; round < 3; round++) {
        int64_t t0 = chan_now();
        chan_timer_t *t = NULL;
        chan_ctx_t *ctx = NULL;
        if (round == 0)
            ck_assert_ptr_nonnull(t = chan_timer_make(50 * MS));
        else if (round == 1)
            ck_assert_ptr_nonnull(t = chan_timer_make_func(50 * MS, nop, NULL));
        else
            ck_assert_ptr_nonnull(ctx = chan_ctx_with_timeout(chan_ctx_background(), 50 * MS));
        if (round == 0)
            go(dead_recv, &d); /* parked on c from here on, across the rounds */
        char buf[1024];
        ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
        int64_t took = chan_now() - t0;
        ck_assert_msg(took >= 50 * MS, "round %d: reported after %lld ns, before the timer fired",
                      round, (long long)took);
        ck_assert_msg(took < 50 * MS + 20 * late_bound(), "round %d: reported only after %lld ns",
                      round, (long long)took);
        ck_assert_msg(strstr(buf, "[chan receive]:"), "%s", buf);
        if (ctx) {
            ck_assert_int_eq(chan_ctx_err(ctx), -ETIMEDOUT);
            ck_assert_int_eq(chan_ctx_free(ctx), 0);
        }
        ck_assert_int_eq(chan_timer_free(t), 0);
    }
    chan_close(c);
    finish();
    chan_free(c);
    NO_BAD();
}
END_TEST

/* After a report, a second wait decides afresh: an announced thread that will send makes it
 * wait for that send (and the G's return) instead of repeating the old report. */
static atomic_bool received_one;

static void recv_one(void *arg)
{
    long v;
    G_CHECK(chan_recv(arg, &v) == 0 && v == 42);
    atomic_store(&received_one, true);
}

static void *send_late(void *arg)
{
    sleep_ms(200);
    ck_assert_int_eq(chan_send(arg, &(long){42}), 0);
    chan_mpg_foreign_leave();
    return NULL;
}

START_TEST(deadlock_then_foreign)
{
    start(2);
    chan_t *c = chan_make(sizeof(long), 0);
    go(recv_one, c);
    ck_assert_int_eq(chan_mpg_wait_report(NULL, 0), -EDEADLK);
    chan_mpg_foreign_enter(); /* on the sender's behalf, before it starts */
    pthread_t t = spawn(send_late, c);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert(atomic_load(&received_one)); /* it waited for the send */
    join(t);
    struct chan_mpg_stats s;
    chan_mpg_stats(&s);
    ck_assert_int_eq(s.deadlocks, 1);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    chan_free(c);
    NO_BAD();
}
END_TEST

/* The same after a timer that a G waits on is reset: a stopped timer's channel is a deadlock,
 * a timer due in 100 ms is not. */
static void recv_tick(void *arg)
{
    int64_t when;
    G_CHECK(chan_recv(chan_timer_chan(arg), &when) == 0);
}

START_TEST(deadlock_then_timer_reset)
{
    start(2);
    chan_timer_t *t = chan_timer_make(CHAN_FOREVER); /* never fires: not pending */
    ck_assert_ptr_nonnull(t);
    go(recv_tick, t);
    char buf[1024];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    ck_assert_msg(strstr(buf, "[chan receive]:"), "%s", buf);
    ck_assert_int_ge(chan_timer_reset(t, 100 * MS), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    struct chan_mpg_stats s;
    chan_mpg_stats(&s);
    ck_assert_int_eq(s.deadlocks, 1);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    NO_BAD();
}
END_TEST

/* Many Gs spawned from a G, spread by stealing across Ps; all run. */
static int per_spawner(void) { return under_tsan() ? 1000 : 5000; }

static void spawner(void *arg)
{
    for (int i = 0; i < per_spawner(); i++)
        G_CHECK(chan_mpg_go(bump, arg) > 0);
}

START_TEST(spawn_from_g)
{
    start(4);
    for (int i = 0; i < 4; i++)
        go(spawner, NULL);
    finish();
    ck_assert_int_eq(atomic_load(&counter), 4 * per_spawner());
    NO_BAD();
}
END_TEST

/* ---- Soak: Gs and pthreads on shared channels, every form, short deadlines ---------------- */

struct soak {
    chan_t *c[3];
    atomic_long sent, received; /* sums of values */
    long ops;
};

/* One participant (G or thread): sends, receives and selects with deadlines of 0-60 us, so that
 * wake-ups race time-outs on both kinds of waiters; never blocks for good (no deadlock). */
static void soak_body(struct soak *s, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (long i = 0; i < s->ops; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        chan_t *c = s->c[x % 3];
        int64_t deadline = chan_now() + (int64_t)((x >> 8) % 60000);
        long v = (long)(x >> 40) % 1000 + 1, w = 0;
        switch ((x >> 20) % 4) {
        case 0:
            if (chan_send_until(c, &v, deadline) == 0)
                atomic_fetch_add(&s->sent, v);
            break;
        case 1:
            if (chan_recv_until(c, &w, deadline) == 0)
                atomic_fetch_add(&s->received, w);
            break;
        default: {
            struct chan_case cs[3] = {{s->c[0], &v, CHAN_SEND, 0},
                                      {s->c[1], &w, CHAN_RECV, 0},
                                      {s->c[2], &w, CHAN_RECV, 0}};
            int k = chan_select_until(cs, 3, deadline);
            G_CHECK(k == -ETIMEDOUT || (k >= 0 && k < 3 && cs[k].ok));
            if (k == 0)
                atomic_fetch_add(&s->sent, v);
            else if (k > 0)
                atomic_fetch_add(&s->received, w);
            break;
        }
        }
    }
}

static void soak_g(void *arg) { soak_body(arg, (uint64_t)chan_mpg_self() * 0x9E3779B97F4A7C15ULL); }

static void *soak_thread(void *arg)
{
    chan_mpg_foreign_enter();
    soak_body(arg, (uint64_t)(uintptr_t)&arg * 0x2545F4914F6CDD1DULL);
    chan_mpg_foreign_leave();
    return NULL;
}

START_TEST(soak_mixed)
{
    start(2);
    struct soak s = {
        .c = {chan_make(sizeof(long), 0), chan_make(sizeof(long), 1), chan_make(sizeof(long), 4)}};
    s.ops = under_sanitizer() ? 8000 : 20000;
    for (int i = 0; i < 6; i++)
        go(soak_g, &s);
    pthread_t t[2] = {spawn(soak_thread, &s), spawn(soak_thread, &s)};
    join(t[0]);
    join(t[1]);
    finish();
    /* What is still buffered was sent and not received. */
    long left = 0, v;
    for (int i = 0; i < 3; i++) {
        while (chan_tryrecv(s.c[i], &v) == 0)
            left += v;
        ck_assert_int_eq(chan_free(s.c[i]), 0);
    }
    ck_assert_int_eq(atomic_load(&s.sent), atomic_load(&s.received) + left);
    NO_BAD();
}
END_TEST

/* ---- Contexts in a G ------------------------------------------------------------------------- */

/* A chain of 200,000 contexts made, cancelled and freed in a G on the default 64 KiB stack
 * (a cancel that recursed would need a few frames a level): cancelling and freeing take O(1)
 * stack whatever the depth. Once cancelled at the root, once by freeing the root. */
enum { G_CHAIN = 200000 };

static void deep_contexts(void *arg)
{
    (void)arg;
    chan_ctx_t **c = malloc(G_CHAIN * sizeof *c);
    G_CHECK(c != NULL);
    if (!c)
        return;
    for (int round = 0; round < 2; round++) {
        c[0] = chan_ctx_with_cancel(chan_ctx_background());
        int made = c[0] != NULL;
        for (int i = 1; i < G_CHAIN && made == i; i++)
            made += (c[i] = chan_ctx_with_cancel(c[i - 1])) != NULL;
        G_CHECK(made == G_CHAIN);
        if (made != G_CHAIN)
            break;
        if (round == 0)
            G_CHECK(chan_ctx_cancel(c[0]) == 0);
        G_CHECK(chan_ctx_free(c[0]) == 0); /* cancels, in round 1 */
        G_CHECK(chan_ctx_err(c[G_CHAIN - 1]) == -ECANCELED);
        G_CHECK(chan_tryrecv(chan_ctx_done(c[G_CHAIN - 1]), NULL) == -EPIPE);
        int failed = 0;
        for (int i = 1; i < G_CHAIN; i++) /* the leaf's free releases the whole chain */
            failed += chan_ctx_free(c[i]) != 0;
        G_CHECK(failed == 0);
    }
    free(c);
}

START_TEST(deep_context_chain)
{
    start(1);
    go(deep_contexts, NULL);
    finish();
    NO_BAD();
}
END_TEST

/* Go's AfterFunc and Cause between Gs: a G registers a function on a context and parks on the
 * channel that function closes; another G cancels the context with a cause. The function runs
 * on the timer thread and wakes the parked G, which sees the cause; a second function, stopped
 * before the cancel, never runs. Round after round on 2 Ps. */
enum { AF_ROUNDS = 200 };

struct af_gs {
    chan_t *hand;     /* of chan_ctx_t *: the canceller's work */
    chan_t *back;     /* the canceller's cancel has returned: the owner may free */
    atomic_int stray; /* calls of stopped functions */
};

static void af_close(void *arg) { chan_close(arg); }

static void af_stray(void *arg) { atomic_fetch_add(&((struct af_gs *)arg)->stray, 1); }

static void af_waiter(void *arg)
{
    struct af_gs *s = arg;
    for (int i = 0; i < AF_ROUNDS; i++) {
        chan_ctx_t *ctx = chan_ctx_with_cancel(chan_ctx_background());
        chan_t *done = chan_make(0, 0);
        chan_ctx_after_t *a = chan_ctx_after_func(ctx, af_close, done);
        chan_ctx_after_t *b = chan_ctx_after_func(ctx, af_stray, s);
        G_CHECK(ctx && done && a && b);
        G_CHECK(chan_ctx_after_stop(b) == 1);
        G_CHECK(chan_send(s->hand, &ctx) == 0);
        G_CHECK(chan_recv(done, NULL) == -EPIPE); /* parks this G until the function runs */
        G_CHECK(chan_ctx_err(ctx) == -ECANCELED);
        G_CHECK(chan_ctx_cause(ctx) == -EIO);
        G_CHECK(chan_ctx_after_stop(a) == 0);
        G_CHECK(chan_ctx_after_free(a) == 0 && chan_ctx_after_free(b) == 0);
        G_CHECK(chan_recv(s->back, NULL) == 0); /* chan_ctx_free: the last call on ctx */
        G_CHECK(chan_ctx_free(ctx) == 0);
        G_CHECK(chan_free(done) == 0);
    }
    chan_close(s->hand);
}

static void af_canceller(void *arg)
{
    struct af_gs *s = arg;
    chan_ctx_t *ctx;
    while (chan_recv(s->hand, &ctx) == 0) {
        G_CHECK(chan_ctx_cancel_cause(ctx, -EIO) == 0);
        G_CHECK(chan_send(s->back, NULL) == 0);
    }
}

START_TEST(after_func_and_cause_on_gs)
{
    struct af_gs s = {chan_make(sizeof(chan_ctx_t *), 0), chan_make(0, 0), 0};
    start(2);
    go(af_waiter, &s);
    go(af_canceller, &s);
    finish();
    ck_assert_int_eq(atomic_load(&s.stray), 0);
    ck_assert_int_eq(chan_free(s.hand), 0);
    ck_assert_int_eq(chan_free(s.back), 0);
    NO_BAD();
}
END_TEST

/* ---- Guard pages ---------------------------------------------------------------------------- */

/* Whether the kernel has guard markers (MADV_GUARD_INSTALL, Linux 6.13): then every stack is
 * guarded, whatever the number of mappings. */
static int kernel_has_guard_markers(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    int ok = madvise(p, (size_t)ps, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(p, (size_t)ps);
    return ok;
}

static int count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* ---- Many Gs: spawn, park, wake, exit, twice on the same stacks ------------------------------ */

struct crowd {
    chan_t *c;
    atomic_long parked;
};

static void crowd_member(void *arg)
{
    struct crowd *cr = arg;
    volatile char frame[200]; /* a frame with redzones under ASan, on a stack used before */
    frame[0] = 1;
    atomic_fetch_add(&cr->parked, 1);
    G_CHECK(chan_recv(cr->c, NULL) == -EPIPE);
    G_CHECK(frame[0] == 1);
}

static long crowd_n;

static int crowd_all_parked(void *arg)
{
    struct crowd *cr = arg;
    return atomic_load(&cr->parked) == crowd_n &&
           hchan_waiting(cr->c, CHAN_RECV) == (size_t)crowd_n;
}

/* n Gs park on one channel, all woken by its close, all return; then n more on the same stacks.
 * Each G is a stack of its own with its guard, carved from chunks that are one mapping each:
 * the process's mappings do not grow with the Gs. */
START_TEST(many_gs)
{
    crowd_n = under_tsan() ? 5000 : under_sanitizer() ? 20000 : 100000;
    struct chan_mpg_config cfg = {.nprocs = 2, .stack_size = 16 * 1024};
    int maps0 = count_mappings();
    ck_assert_int_eq(chan_mpg_start_config(&cfg), 0);
    struct chan_mpg_stats st;
    for (int round = 1; round <= 2; round++) {
        struct crowd cr = {.c = chan_make(0, 0)};
        ck_assert_ptr_nonnull(cr.c);
        chan_mpg_foreign_enter();
        for (long i = 0; i < crowd_n; i++)
            go(crowd_member, &cr);
        ck_assert(eventually(crowd_all_parked, &cr));
        int maps = count_mappings();
        chan_mpg_stats(&st);
        ck_assert_int_eq(st.live, crowd_n);
        ck_assert_int_eq(st.stacks, crowd_n); /* round 2: every stack reused, none made */
        if (kernel_has_guard_markers())
            ck_assert_int_eq(st.stacks_guarded, st.stacks);
        /* (TSan maps memory of its own for every fiber, so every G. Each M has a thread stack
         * and a signal stack: a few mappings a thread, whatever the number of Gs.) */
        ck_assert_msg(under_tsan() || maps - maps0 < 200 + 4 * (int)st.threads,
                      "%d mappings for %ld Gs and %d Ms (%d before)", maps, crowd_n,
                      (int)st.threads, maps0);
        ck_assert_int_eq(chan_close(cr.c), 0);
        chan_mpg_foreign_leave();
        ck_assert_int_eq(chan_mpg_wait(), 0);
        ck_assert_int_eq(chan_free(cr.c), 0);
    }
    chan_mpg_stats(&st);
    ck_assert_int_eq(st.spawned, 2 * crowd_n);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
}
END_TEST

/* Exited Gs are kept first by the P that ran them. Whoever spawns next, a G on either P or a
 * foreign thread, reuses every one of them before the pool makes a new stack: waves of Gs that
 * spawn hundreds of children leave exited Gs in both Ps' caches and in the global list; then as
 * many Gs as were ever made, all alive at once, spawned from a foreign thread and then from a G,
 * must make none. */
struct reuse_wave {
    chan_t *go;   /* closed by the spawner once all its children are alive */
    chan_t *done; /* capacity n: each child sends once */
};

static atomic_long reuse_ran;

static void reuse_child(void *arg)
{
    struct reuse_wave *w = arg;
    G_CHECK(chan_recv(w->go, NULL) == -EPIPE);
    atomic_fetch_add(&reuse_ran, 1);
    G_CHECK(chan_send(w->done, NULL) == 0);
}

/* n children alive at once, so that their exits fill this P's cache and spill to the global
 * list; some run on the other P. */
static void reuse_spawner(void *arg)
{
    long n = (long)(intptr_t)arg;
    struct reuse_wave w = {.go = chan_make(0, 0), .done = chan_make(0, (size_t)n)};
    G_CHECK(w.go && w.done);
    for (long i = 0; i < n; i++)
        G_CHECK(chan_mpg_go(reuse_child, &w) > 0);
    G_CHECK(chan_close(w.go) == 0);
    for (long i = 0; i < n; i++)
        G_CHECK(chan_recv(w.done, NULL) == 0);
    G_CHECK(chan_free(w.go) == 0 && chan_free(w.done) == 0);
}

static void reuse_crowd_spawner(void *arg)
{
    for (long i = 0; i < crowd_n; i++)
        G_CHECK(chan_mpg_go(crowd_member, arg) > 0);
}

START_TEST(exited_gs_reused_by_every_spawner)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    for (int wave = 0; wave < 3; wave++) {
        for (int i = 0; i < 4; i++)
            go(reuse_spawner, (void *)(intptr_t)(100 * (wave + 1)));
        ck_assert_int_eq(chan_mpg_wait(), 0);
    }
    ck_assert_int_eq(atomic_load(&reuse_ran), 4 * (100 + 200 + 300));
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    crowd_n = (long)st.stacks; /* every G ever made, all free now */
    for (int from_g = 0; from_g <= 1; from_g++) {
        struct crowd cr = {.c = chan_make(0, 0)};
        ck_assert_ptr_nonnull(cr.c);
        chan_mpg_foreign_enter();
        if (from_g) {
            crowd_n--; /* the spawner is one of them */
            go(reuse_crowd_spawner, &cr);
        } else {
            for (long i = 0; i < crowd_n; i++)
                go(crowd_member, &cr);
        }
        ck_assert(eventually(crowd_all_parked, &cr));
        chan_mpg_stats(&st);
        ck_assert_int_eq(st.stacks, crowd_n + from_g); /* none made */
        ck_assert_int_eq(chan_close(cr.c), 0);
        chan_mpg_foreign_leave();
        ck_assert_int_eq(chan_mpg_wait(), 0);
        ck_assert_int_eq(chan_free(cr.c), 0);
    }
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
}
END_TEST

/* ---- Stack overflow -------------------------------------------------------------------------- */

static int deep(int n)
{
    volatile char frame[1024];
    frame[0] = (char)n;
    if (n == 0)
        return frame[0];
    return deep(n - 1) + frame[0]; /* not a tail call */
}

static void overflow(void *arg)
{
    (void)arg;
    deep(1 << 20); /* 1 GiB of frames: far past any stack */
}

static void park_forever(void *arg) { chan_recv(arg, NULL); }

/* In a child process: `before` Gs park, then one more recurses without end. The child must die
 * (of SIGSEGV in the plain build; the sanitizers report and exit) and say on stderr which G
 * overflowed its stack. */
static void overflow_dies(long before)
{
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd[1], STDERR_FILENO);
        close(fd[0]);
        close(fd[1]);
        struct chan_mpg_config cfg = {.nprocs = 1, .stack_size = 16 * 1024};
        if (chan_mpg_start_config(&cfg) != 0)
            _exit(90);
        chan_t *c = chan_make(0, 0);
        for (long i = 0; i < before; i++)
            if (chan_mpg_go(park_forever, c) <= 0)
                _exit(91);
        if (chan_mpg_go(overflow, NULL) != before + 1)
            _exit(92);
        chan_mpg_wait(); /* the overflowing G ends the process first */
        _exit(93);
    }
    close(fd[1]);
    static char out[1 << 16];
    size_t len = 0;
    ssize_t r;
    char sink[4096];
    while ((r = read(fd[0], len + 1 < sizeof out ? out + len : sink,
                     len + 1 < sizeof out ? sizeof out - 1 - len : sizeof sink)) > 0)
        if (len + 1 < sizeof out)
            len += (size_t)r;
    out[len] = '\0';
    close(fd[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    char want[64];
    snprintf(want, sizeof want, "libchan-mpg: stack overflow in G %ld ", before + 1);
    ck_assert_msg(strstr(out, want), "no \"%s\" on stderr (status %#x): %.2000s", want, status,
                  out);
    if (under_sanitizer())
        ck_assert_msg(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                                              WEXITSTATUS(status) < 90),
                      "status %#x", status);
    else
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x", status);
}

/* A G that overflows its stack dies in the guard below it, not in a neighbour's stack, and the
 * message names it: the first G, and one after 40,000 others (more than the ~30,000 guard
 * pages that mappings of their own allowed; fewer under TSan, whose fibers are large). */
START_TEST(stack_overflow)
{
    overflow_dies(0);
    overflow_dies(under_tsan() ? 2000 : 40000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg");
    ADD_TEST(s, lifecycle, 30);
    ADD_TEST(s, stack_size_bounds, 30);
    ADD_TEST(s, lifecycle_concurrent, 60);
    ADD_TEST(s, foreign_spawn_no_false_deadlock, 60);
    ADD_TEST(s, wait_races_stop_and_start, 60);
    ADD_TEST(s, fork_child_as_documented, 30);
    ADD_TEST(s, stats_after_stop, 30);
    ADD_TEST(s, guard_failure_fails_spawn, 30);
    ADD_TEST(s, pingpong, 60);
    ADD_TEST(s, buffered_fifo, 60);
    ADD_TEST(s, close_wakes, 30);
    ADD_TEST(s, select_gs, 60);
    ADD_TEST(s, select_fair, 30);
    ADD_TEST(s, until_timeouts, 30);
    ADD_TEST(s, until_races, 60);
    ADD_TEST(s, until_success, 30);
    ADD_TEST(s, placement, 60);
    ADD_TEST(s, nprocs_default_affinity, 60);
    ADD_TEST(s, nprocs_default_topology, 120);
    ADD_TEST(s, nprocs_default_cgroup_quota, 60);
    ADD_TEST(s, sleep_yield, 30);
    ADD_TEST(s, pipeline_small, 60);
    ADD_TEST(s, pipeline_100k, 240);
    ADD_TEST(s, mixed_g_pthread, 60);
    ADD_TEST(s, deadlock_report, 30);
    ADD_TEST(s, deadlock_nil, 30);
    ADD_TEST(s, deadlock_nil_kinds, 30);
    ADD_TEST(s, deadlock_report_names, 30);
    ADD_TEST(s, deadlock_report_marks_timer, 30);
    ADD_TEST(s, no_false_deadlock, 30);
    ADD_TEST(s, deadlock_after_leave, 30);
    ADD_TEST(s, foreign_leave_unpaired, 30);
    ADD_TEST(s, deadlock_after_timer, 20);
    ADD_TEST(s, deadlock_then_foreign, 20);
    ADD_TEST(s, deadlock_then_timer_reset, 20);
    ADD_TEST(s, spawn_from_g, 60);
    ADD_TEST(s, soak_mixed, 120);
    ADD_TEST(s, deep_context_chain, 120);
    ADD_TEST(s, after_func_and_cause_on_gs, 60);
    ADD_TEST(s, many_gs, 120);
    ADD_TEST(s, exited_gs_reused_by_every_spawner, 60);
    ADD_TEST(s, stack_overflow, 60);
#ifdef CHAN_TRACE_BUILD
    ADD_TEST(s, trace_blocked_slice_per_g, 60);
    ADD_TEST(s, dump_names_task, 60);
    ADD_TEST(s, dump_names_g_by_default, 60);
#endif
    return run_suite(s);
}
