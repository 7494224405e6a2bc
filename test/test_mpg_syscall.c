/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_syscall.c - libchan-mpg (sched/): Gs that block in the kernel, and Gs that keep their
 * P, do not stall the Gs behind them.
 *
 * A G that announces a blocking call (chan_mpg_syscall_enter/exit) keeps its M, not its P: the
 * monitor thread (sysmon) hands the P to another M. A G that computes without yielding keeps
 * its M and its P (scheduling is cooperative), but sysmon moves the Gs queued behind it to the
 * global queue, where the other Ps run them. Also: nesting, channel operations inside a system
 * call, errno when the G comes back on another thread, the deadlock report (none while a G is
 * in a system call), chan_mpg_stop (-EBUSY while one is), calls outside a G, the thread limit.
 */
#include "testmpg.h"

#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched/chan_sched_mpg.h"

/* A nanosleep that the caller may wrap in enter/exit (it blocks the thread). */
static void nap_ns(int64_t ns) { sleep_ns(ns); }

static int64_t bound_ms(int64_t plain) { return under_sanitizer() ? 4 * plain : plain; }

/* ---- 1,000 Gs blocked in read() while a G computes and two Gs ping-pong ---------------------- */

#define NPIPES 10

static struct readers {
    int fd[NPIPES][2];
    atomic_int entered, done;
    struct beside bs; /* the computing G and the ping-pong (testmpg.h) */
} rd;

static void reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    char c;
    atomic_fetch_add(&rd.entered, 1);
    chan_mpg_syscall_enter();
    ssize_t r;
    do
        r = read(rd.fd[i % NPIPES][0], &c, 1);
    while (r < 0 && errno == EINTR);
    chan_mpg_syscall_exit();
    G_CHECK(r == 1);
    atomic_fetch_add(&rd.done, 1);
}

/* Whether all n readers are blocked in read(2) on rd's pipes (a reader counted in rd.entered
 * has announced its call but may not have reached it yet). */
static int readers_in_read(void *arg)
{
    int fds[NPIPES];
    for (int i = 0; i < NPIPES; i++)
        fds[i] = rd.fd[i][0];
    return threads_in_syscall(SYS_read, fds, NPIPES) == (int)(intptr_t)arg;
}

START_TEST(readers_block_pingpong_runs)
{
    int n = 1000;
    for (int i = 0; i < NPIPES; i++)
        ck_assert_int_eq(pipe(rd.fd[i]), 0);
    beside_make(&rd.bs, scaled(20000, 2000));
    ck_assert_int_eq(chan_mpg_start(2), 0);
    /* One P computes for the whole test: the ping-pong and the readers share the other. */
    go(beside_compute, &rd.bs);
    int64_t alone = beside_pingpong(&rd.bs);

    for (int i = 0; i < n; i++)
        ck_assert_int_gt(chan_mpg_go(reader, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 20000 && atomic_load(&rd.entered) < n; i++)
        sleep_ms(1);
    ck_assert_int_eq(atomic_load(&rd.entered), n);
    ck_assert_msg(eventually(readers_in_read, (void *)(intptr_t)n), "not all readers in read(2)");
    int64_t beside = beside_pingpong(&rd.bs);
    ck_assert_int_eq(atomic_load(&rd.done), 0); /* they were blocked all along */

    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    fprintf(stderr,
            "readers_block_pingpong_runs: %ld round trips in %.2f ms alone, %.2f ms beside %d "
            "blocked readers; %llu Ms, %llu retakes\n",
            rd.bs.rounds, (double)alone / 1e6, (double)beside / 1e6, n,
            (unsigned long long)st.threads, (unsigned long long)st.retakes);
    /* Loosely: the same pace, within a factor 20 and 2 s of slack for a loaded machine. */
    ck_assert_msg(beside < 20 * alone + 2000 * MS, "ping-pong stalled: %lld ns vs %lld ns",
                  (long long)beside, (long long)alone);
    ck_assert_uint_gt(st.threads, 2);

    char buf[1000];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < NPIPES; i++) {
        int k = n / NPIPES + (i < n % NPIPES);
        ck_assert_int_eq(write(rd.fd[i][1], buf, (size_t)k), k);
    }
    for (int i = 0; i < 20000 && atomic_load(&rd.done) < n; i++)
        sleep_ms(1);
    ck_assert_int_eq(atomic_load(&rd.done), n);
    atomic_store(&rd.bs.stop, true);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    beside_free(&rd.bs);
    for (int i = 0; i < NPIPES; i++) {
        close(rd.fd[i][0]);
        close(rd.fd[i][1]);
    }
}
END_TEST

/* ---- A G that spins for 200 ms does not hold the Gs queued on its P -------------------------- */

#define WORKERS 10

static struct spin {
    atomic_long rounds; /* of the ping-pong that keeps the other P busy */
    atomic_bool stop;
    atomic_int ran;      /* workers that ran */
    _Atomic int64_t t0;  /* when the spinner queued them */
    _Atomic int64_t all; /* how long after that the last one ran; -1: not while it spun */
    chan_t *a, *b;
} sp;

static void busy_pong(void *arg)
{
    (void)arg;
    long v;
    while (chan_recv(sp.a, &v) == 0 && v >= 0)
        G_CHECK(chan_send(sp.b, &v) == 0);
}

static void busy_ping(void *arg)
{
    (void)arg;
    G_CHECK(chan_mpg_go(busy_pong, NULL) > 0);
    long v;
    for (long i = 0; !atomic_load(&sp.stop); i++) {
        G_CHECK(chan_send(sp.a, &i) == 0);
        G_CHECK(chan_recv(sp.b, &v) == 0 && v == i);
        atomic_store_explicit(&sp.rounds, i + 1, memory_order_relaxed);
    }
    G_CHECK(chan_send(sp.a, &(long){-1}) == 0);
}

static void worker(void *arg)
{
    (void)arg;
    atomic_fetch_add(&sp.ran, 1);
}

/* Queues the workers on its own P (runnext, then the ring), then spins without yielding for
 * 200 ms, or longer until the workers have all run (5 s at most: a loaded machine may not run
 * this thread for a while). The other P runs a ping-pong whose Gs always find work on their own
 * P, so no idle P steals the workers: only sysmon's moving them to the global queue lets them
 * run before the spinner stops. */
static void spinner(void *arg)
{
    (void)arg;
    int64_t t0 = chan_now(), now;
    atomic_store(&sp.t0, t0);
    for (int i = 0; i < WORKERS; i++)
        G_CHECK(chan_mpg_go(worker, NULL) > 0);
    int64_t all = -1;
    while ((now = chan_now()) - t0 < 5000 * MS && (now - t0 < 200 * MS || all < 0))
        if (all < 0 && atomic_load(&sp.ran) == WORKERS)
            all = now - t0;
    atomic_store(&sp.all, all);
    atomic_store(&sp.stop, true);
}

START_TEST(spinner_does_not_hold_its_queue)
{
    sp.a = chan_make(sizeof(long), 0);
    sp.b = chan_make(sizeof(long), 0);
    ck_assert_int_eq(chan_mpg_start(2), 0);
    ck_assert_int_gt(chan_mpg_go(busy_ping, NULL), 0);
    while (atomic_load(&sp.rounds) < 1000)
        sleep_ms(1);
    ck_assert_int_gt(chan_mpg_go(spinner, NULL), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    int64_t all = atomic_load(&sp.all);
    fprintf(stderr,
            "spinner_does_not_hold_its_queue: all %d workers ran %.2f ms after they were "
            "queued behind the spinner; sysmon moved %llu Gs\n",
            WORKERS, (double)all / 1e6, (unsigned long long)st.moved);
    ck_assert_msg(all >= 0, "the workers waited for the spinner to stop");
    ck_assert_int_eq(atomic_load(&sp.ran), WORKERS);
    ck_assert_int_eq(chan_free(sp.a), 0);
    ck_assert_int_eq(chan_free(sp.b), 0);
}
END_TEST

/* ---- A G in a long system call lets the other Gs of its P run (one P) ------------------------ */

static struct sleeper {
    atomic_int ran;
    _Atomic int64_t last; /* when the last worker ran */
    _Atomic int64_t entered, left;
} sl;

static void stamp(void *arg)
{
    (void)arg;
    atomic_store(&sl.last, chan_now());
    atomic_fetch_add(&sl.ran, 1);
}

static void long_sleeper(void *arg)
{
    (void)arg;
    for (int i = 0; i < WORKERS; i++)
        G_CHECK(chan_mpg_go(stamp, NULL) > 0);
    atomic_store(&sl.entered, chan_now());
    chan_mpg_syscall_enter();
    nap_ns(200 * MS);
    chan_mpg_syscall_exit();
    atomic_store(&sl.left, chan_now());
    G_CHECK(atomic_load(&sl.ran) == WORKERS);
}

START_TEST(long_syscall_lets_others_run)
{
    ck_assert_int_eq(chan_mpg_start(1), 0);
    ck_assert_int_gt(chan_mpg_go(long_sleeper, NULL), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    ck_assert_int_eq(atomic_load(&sl.ran), WORKERS);
    int64_t after = atomic_load(&sl.last) - atomic_load(&sl.entered);
    fprintf(stderr,
            "long_syscall_lets_others_run: the %d Gs of its only P ran %.2f ms after it "
            "entered a 200 ms system call (%llu retakes, %llu Ms)\n",
            WORKERS, (double)after / 1e6, (unsigned long long)st.retakes,
            (unsigned long long)st.threads);
    ck_assert_int_lt(after, bound_ms(150) * MS);
    ck_assert_int_ge(atomic_load(&sl.left) - atomic_load(&sl.entered), 200 * MS);
    ck_assert_uint_ge(st.retakes, 1);
    ck_assert_uint_ge(st.threads, 2);
}
END_TEST

/* ---- Nesting: only the outermost pair acts --------------------------------------------------- */

static atomic_bool flag;

static void set_flag(void *arg)
{
    (void)arg;
    atomic_store(&flag, true);
}

static void nested(void *arg)
{
    (void)arg;
    chan_mpg_syscall_exit(); /* unpaired: nothing */
    G_CHECK(chan_mpg_go(set_flag, NULL) > 0);
    chan_mpg_syscall_enter();
    chan_mpg_syscall_enter();
    chan_mpg_syscall_exit(); /* still in the outer one: the only P may go to set_flag */
    int64_t end = chan_now() + 5000 * MS;
    while (!atomic_load(&flag) && chan_now() < end)
        nap_ns(1 * MS);
    G_CHECK(atomic_load(&flag));
    chan_mpg_syscall_exit();
    chan_mpg_syscall_exit(); /* unpaired again */
    /* And the G is a G as before: it parks and is woken. */
    chan_mpg_yield();
    G_CHECK(chan_mpg_sleep_until(chan_now() + MS) == 0);
}

START_TEST(nesting)
{
    ck_assert_int_eq(chan_mpg_start(1), 0);
    ck_assert_int_gt(chan_mpg_go(nested, NULL), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
}
END_TEST

/* A G that returns inside a pair leaves the system call: nothing stays marked in one (a
 * deadlock after it is reported), its P is not left behind. */
static chan_t *forever;

static void returns_inside(void *arg)
{
    (void)arg;
    chan_mpg_syscall_enter();
    chan_mpg_syscall_enter();
}

static void blocks_forever(void *arg)
{
    (void)arg;
    G_CHECK(chan_recv(forever, NULL) == -EPIPE);
}

START_TEST(return_inside_syscall)
{
    forever = chan_make(0, 0);
    ck_assert_int_eq(chan_mpg_start(1), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_gt(chan_mpg_go(returns_inside, NULL), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_gt(chan_mpg_go(blocks_forever, NULL), 0);
    ck_assert_int_eq(chan_mpg_wait_report(NULL, 0), -EDEADLK);
    ck_assert_int_eq(chan_close(forever), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    ck_assert_int_eq(chan_free(forever), 0);
}
END_TEST

/* ---- Channel operations, yield and sleep inside a system call -------------------------------- */

static struct inside {
    chan_t *c;
    atomic_bool third;
} in;

static void sender_later(void *arg)
{
    (void)arg;
    chan_mpg_sleep_until(chan_now() + 5 * MS);
    G_CHECK(chan_send(in.c, &(long){42}) == 0);
}

static void third(void *arg)
{
    (void)arg;
    atomic_store(&in.third, true);
}

static void parks_inside(void *arg)
{
    (void)arg;
    G_CHECK(chan_mpg_go(sender_later, NULL) > 0);
    chan_mpg_syscall_enter();
    long v = 0;
    G_CHECK(chan_recv(in.c, &v) == 0 && v == 42); /* parks: leaves the call, enters it again */
    chan_mpg_yield();
    G_CHECK(chan_mpg_sleep_until(chan_now() + 2 * MS) == 0);
    /* Back in the system call: a G started now (into the global queue: this M has no P) runs
     * on the only P while this one blocks. */
    G_CHECK(chan_mpg_go(third, NULL) > 0);
    int64_t end = chan_now() + 5000 * MS;
    while (!atomic_load(&in.third) && chan_now() < end)
        nap_ns(1 * MS);
    G_CHECK(atomic_load(&in.third));
    chan_mpg_syscall_exit();
}

START_TEST(channels_inside_syscall)
{
    in.c = chan_make(sizeof(long), 0);
    ck_assert_int_eq(chan_mpg_start(1), 0);
    ck_assert_int_gt(chan_mpg_go(parks_inside, NULL), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    ck_assert_int_eq(chan_free(in.c), 0);
}
END_TEST

/* ---- errno, when the G comes back from its call on another thread ---------------------------- */

static struct mig {
    atomic_bool exiting;
    pthread_t before, after;
    int err;
} mg;

/* errno and pthread_self are thread-local reads that glibc declares const: a compiler may keep
 * their result across a call after which the G runs on another thread. Read them afresh. */
__attribute__((noinline)) static int errno_now(void)
{
    __asm__ volatile("" ::: "memory");
    return errno;
}

__attribute__((noinline)) static pthread_t thread_now(void)
{
    __asm__ volatile("" ::: "memory");
    return pthread_self();
}

/* Takes the only P once sysmon hands it over, and keeps it until the other G has queued itself
 * to come back from its system call. */
static void holder(void *arg)
{
    (void)arg;
    while (!atomic_load(&mg.exiting)) {
    }
    int64_t end = chan_now() + 20 * MS;
    while (chan_now() < end) {
    }
}

static void migrant(void *arg)
{
    (void)arg;
    G_CHECK(chan_mpg_go(holder, NULL) > 0);
    mg.before = thread_now();
    chan_mpg_syscall_enter();
    G_CHECK(read(-1, NULL, 0) < 0 && errno_now() == EBADF);
    struct chan_mpg_stats st;
    int64_t end = chan_now() + 5000 * MS;
    do {
        nap_ns(MS); /* leaves errno alone */
        chan_mpg_stats(&st);
    } while (st.retakes == 0 && chan_now() < end);
    atomic_store(&mg.exiting, true);
    chan_mpg_syscall_exit(); /* its P is the holder's now: queued, resumed by the holder's M */
    mg.err = errno_now();
    mg.after = thread_now();
}

START_TEST(errno_across_threads)
{
    ck_assert_int_eq(chan_mpg_start(1), 0);
    ck_assert_int_gt(chan_mpg_go(migrant, NULL), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    ck_assert_msg(!pthread_equal(mg.before, mg.after), "the G came back on the same thread");
    ck_assert_int_eq(mg.err, EBADF);
}
END_TEST

/* ---- The deadlock report waits for Gs in system calls ---------------------------------------- */

static chan_t *never;

static void sleep_then_block(void *arg)
{
    (void)arg;
    chan_mpg_syscall_enter();
    nap_ns(200 * MS);
    chan_mpg_syscall_exit();
    long v;
    G_CHECK(chan_recv(never, &v) == -EPIPE); /* blocks until the test closes it */
}

START_TEST(no_deadlock_while_in_syscall)
{
    never = chan_make(sizeof(long), 0);
    ck_assert_int_eq(chan_mpg_start(2), 0);
    int64_t t0 = chan_now();
    ck_assert_int_gt(chan_mpg_go(sleep_then_block, NULL), 0);
    char buf[4096];
    ck_assert_int_eq(chan_mpg_wait_report(buf, sizeof buf), -EDEADLK);
    int64_t t = chan_now() - t0;
    ck_assert_msg(t >= 200 * MS, "deadlock reported %lld ns in, while the G was in its call",
                  (long long)t);
    ck_assert_ptr_nonnull(strstr(buf, "chan receive"));
    ck_assert_int_eq(chan_close(never), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    ck_assert_int_eq(chan_free(never), 0);
}
END_TEST

/* ---- chan_mpg_stop while a G is in a system call --------------------------------------------- */

static int stop_fd[2];
static atomic_bool in_read;

static void blocked_reader(void *arg)
{
    (void)arg;
    char c;
    atomic_store(&in_read, true);
    chan_mpg_syscall_enter();
    ssize_t r = read(stop_fd[0], &c, 1);
    chan_mpg_syscall_exit();
    G_CHECK(r == 1);
}

START_TEST(stop_while_in_syscall)
{
    ck_assert_int_eq(pipe(stop_fd), 0);
    ck_assert_int_eq(chan_mpg_start(2), 0);
    ck_assert_int_gt(chan_mpg_go(blocked_reader, NULL), 0);
    while (!atomic_load(&in_read))
        sleep_ms(1);
    sleep_ms(20);
    ck_assert_int_eq(chan_mpg_stop(), -EBUSY); /* the G is live: nothing stopped */
    ck_assert_int_eq(write(stop_fd[1], "x", 1), 1);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    close(stop_fd[0]);
    close(stop_fd[1]);
}
END_TEST

/* ---- Outside a G: nothing -------------------------------------------------------------------- */

START_TEST(outside_g_noop)
{
    errno = EBADF;
    chan_mpg_syscall_enter(); /* not started */
    chan_mpg_syscall_exit();
    chan_mpg_syscall_exit();
    ck_assert_int_eq(errno, EBADF);
    ck_assert_int_eq(chan_mpg_start(2), 0);
    errno = ENOENT;
    chan_mpg_syscall_enter(); /* started, but this thread is not a G */
    chan_mpg_syscall_enter();
    chan_mpg_syscall_exit();
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
}
END_TEST

/* ---- The thread limit ------------------------------------------------------------------------ */

static FILE *limit_err; /* stderr, captured */

static void limited(void *arg)
{
    (void)arg;
    atomic_store(&flag, false);
    G_CHECK(chan_mpg_go(set_flag, NULL) > 0);
    chan_mpg_syscall_enter();
    nap_ns(30 * MS); /* no M to hand the P to: set_flag waits */
    struct stat st;
    for (int i = 0; i < 100 && fstat(fileno(limit_err), &st) == 0 && st.st_size == 0; i++)
        nap_ns(20 * MS); /* and sysmon, on a loaded machine late to look, says so */
    chan_mpg_syscall_exit();
    G_CHECK(!atomic_load(&flag));
}

START_TEST(thread_limit)
{
    struct chan_mpg_config c = {.nprocs = 2, .max_threads = 1};
    ck_assert_int_eq(chan_mpg_start_config(&c), -EINVAL);
    c.max_threads = -1;
    ck_assert_int_eq(chan_mpg_start_config(&c), -EINVAL);
    c = (struct chan_mpg_config){.nprocs = 1, .max_threads = 1};
    ck_assert_int_eq(chan_mpg_start_config(&c), 0);
    int saved;
    limit_err = stderr_capture_begin(&saved);
    ck_assert_int_gt(chan_mpg_go(limited, NULL), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    char buf[512];
    stderr_capture_end(limit_err, saved, buf, sizeof buf);
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
    /* Said once, as chan_mpg(3) promises (sysmon, finding no M, once passed it over in silence) */
    const char *say = "libchan-mpg: 1 threads (Ms), the limit";
    ck_assert_msg(strstr(buf, say), "no '%s' on stderr: '%s'", say, buf);
    ck_assert_msg(!strstr(strstr(buf, say) + 1, say), "said twice: '%s'", buf);
    ck_assert(atomic_load(&flag)); /* it ran after */
    ck_assert_uint_eq(st.threads, 1);
    ck_assert_uint_eq(st.retakes, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg_syscall");
    ADD_TEST(s, readers_block_pingpong_runs, 60);
    ADD_TEST(s, spinner_does_not_hold_its_queue, 20);
    ADD_TEST(s, long_syscall_lets_others_run, 20);
    ADD_TEST(s, nesting, 20);
    ADD_TEST(s, return_inside_syscall, 20);
    ADD_TEST(s, channels_inside_syscall, 20);
    ADD_TEST(s, errno_across_threads, 20);
    ADD_TEST(s, no_deadlock_while_in_syscall, 20);
    ADD_TEST(s, stop_while_in_syscall, 20);
    ADD_TEST(s, outside_g_noop, 20);
    ADD_TEST(s, thread_limit, 20);
    return run_suite(s);
}
