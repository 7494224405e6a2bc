/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_steal.c - libchan-mpg (sched/): a G waiting in a P's runnext is not held hostage by
 * the G that put it there. The scheduler is cooperative, so a G that blocks in a system call or
 * spins keeps its M and P; the G it just spawned or woke (in that P's runnext) must then be
 * taken by an idle P after a short pause, as Go's runqgrab does, and never wait for good.
 *
 * The same for the Gs it pushed out of runnext onto its ring: a thief leaves a ring whose oldest
 * G is younger than STEAL_AGE_NS (its owner runs them soon), but not one whose owner does not
 * come back to it.
 *
 * Each case runs on 2 Ps: one is held by a G blocked in read() or spinning, the other must do
 * the rest. Without the steal these cases hang (Check's time-out).
 *
 * And the global queue's turn: local work on every P does not starve a G queued globally.
 */
#include "testmpg.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "sched/chan_sched_mpg.h"

struct pipe_test {
    int fd[2];
    int writers;      /* Gs spawned, each writes one byte */
    chan_t *c, *back; /* the wake-up cases: the writer is woken through c */
    long rounds;      /* of ping-pong on c and back before that */
    atomic_bool flag; /* the spinning cases */
    atomic_int ran;
};

static void pipe_open(struct pipe_test *t) { ck_assert_int_eq(pipe(t->fd), 0); }

static void pipe_close(struct pipe_test *t)
{
    close(t->fd[0]);
    close(t->fd[1]);
}

static void write_byte(void *arg)
{
    struct pipe_test *t = arg;
    G_CHECK(write(t->fd[1], "x", 1) == 1);
}

/* Reads n bytes, blocking its M in read(2) meanwhile. */
static void read_bytes(struct pipe_test *t, int n)
{
    char buf[16];
    while (n > 0) {
        ssize_t r = read(t->fd[0], buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        G_CHECK(r > 0);
        if (r <= 0)
            return;
        n -= (int)r;
    }
}

/* Spawns the writers (the last one stays in this P's runnext), then blocks in read(). */
static void spawn_then_read(void *arg)
{
    struct pipe_test *t = arg;
    for (int i = 0; i < t->writers; i++)
        G_CHECK(chan_mpg_go(write_byte, t) > 0);
    read_bytes(t, t->writers);
}

static void run(void (*fn)(void *), struct pipe_test *t)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    ck_assert_int_gt(chan_mpg_go(fn, t), 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    NO_BAD();
}

/* G1 spawns G2 and blocks in read() on the pipe G2 writes. */
START_TEST(spawn_then_block)
{
    struct pipe_test t = {.writers = 1};
    pipe_open(&t);
    run(spawn_then_read, &t);
    pipe_close(&t);
}
END_TEST

/* G1 spawns 10 Gs and blocks in read(): the 9 pushed out of runnext onto the ring are stolen
 * with it, and the 10th, left in runnext, must be stolen too. */
START_TEST(spawn_ten_then_block)
{
    struct pipe_test t = {.writers = 10};
    pipe_open(&t);
    run(spawn_then_read, &t);
    pipe_close(&t);
}
END_TEST

/* G1 wakes G2 through an unbuffered send (G2 goes to G1's runnext), then blocks in read(). */
static void recv_then_write(void *arg)
{
    struct pipe_test *t = arg;
    long v;
    G_CHECK(chan_recv(t->c, &v) == 0 && v == 7);
    write_byte(t);
}

static void wake_then_read(void *arg)
{
    struct pipe_test *t = arg;
    G_CHECK(chan_mpg_go(recv_then_write, t) > 0);
    /* Let the receiver block on c (it runs on this P, or is stolen: either way). */
    while (hchan_waiting(t->c, CHAN_RECV) < 1)
        chan_mpg_yield();
    G_CHECK(chan_send(t->c, &(long){7}) == 0); /* completes at once: the receiver waits */
    read_bytes(t, 1);
}

START_TEST(wake_then_block)
{
    struct pipe_test t = {.c = chan_make(sizeof(long), 0)};
    pipe_open(&t);
    run(wake_then_read, &t);
    pipe_close(&t);
    ck_assert_int_eq(chan_free(t.c), 0);
}
END_TEST

/* G1 and G2 ping-pong first (each wakes the other into its P's runnext, and the idle M settles
 * into watching with its longest sleep); then G1 wakes G2 one last time, by receiving from it,
 * and blocks in read(). No M is woken for that runnext: the watcher must find it. */
static void pong_then_write(void *arg)
{
    struct pipe_test *t = arg;
    long v;
    for (long i = 0; i < t->rounds; i++) {
        G_CHECK(chan_recv(t->c, &v) == 0 && v == i);
        G_CHECK(chan_send(t->back, &v) == 0);
    }
    G_CHECK(chan_send(t->back, &(long){-1}) == 0);
    write_byte(t);
}

static void ping_then_read(void *arg)
{
    struct pipe_test *t = arg;
    G_CHECK(chan_mpg_go(pong_then_write, t) > 0);
    long v;
    for (long i = 0; i < t->rounds; i++) {
        G_CHECK(chan_send(t->c, &i) == 0);
        G_CHECK(chan_recv(t->back, &v) == 0 && v == i);
    }
    while (hchan_waiting(t->back, CHAN_SEND) < 1) /* G2 blocked in its last send */
        chan_mpg_yield();
    G_CHECK(chan_recv(t->back, &v) == 0 && v == -1); /* wakes G2 into this P's runnext */
    read_bytes(t, 1);
}

START_TEST(pingpong_then_block)
{
    struct pipe_test t = {.c = chan_make(sizeof(long), 0), .back = chan_make(sizeof(long), 0)};
    pipe_open(&t);
    for (int i = 0; i < 5; i++) {
        /* Long enough for the watcher to back off to its longest sleep (a few ms). */
        t.rounds = under_sanitizer() ? 5000 : 50000;
        run(ping_then_read, &t);
    }
    pipe_close(&t);
    ck_assert_int_eq(chan_free(t.c), 0);
    ck_assert_int_eq(chan_free(t.back), 0);
}
END_TEST

/* G1 spawns G2 and spins, without yielding, on a flag G2 sets. */
static void set_flag(void *arg)
{
    struct pipe_test *t = arg;
    atomic_store(&t->flag, true);
}

static void spawn_then_spin(void *arg)
{
    struct pipe_test *t = arg;
    G_CHECK(chan_mpg_go(set_flag, t) > 0);
    while (!atomic_load(&t->flag)) {
    }
}

START_TEST(spawn_then_spin_on_flag)
{
    struct pipe_test t = {0};
    run(spawn_then_spin, &t);
}
END_TEST

/* G1 spawns 10 Gs and spins, without yielding, until each has run: the 9 pushed onto the ring
 * never get their turn on this P, so an idle P must take them once they have waited the age a
 * thief asks of a ring's oldest G (runq_steal), and the 10th from runnext. */
static void count_one(void *arg)
{
    struct pipe_test *t = arg;
    atomic_fetch_add(&t->ran, 1);
}

static void spawn_ten_then_spin(void *arg)
{
    struct pipe_test *t = arg;
    for (int i = 0; i < 10; i++)
        G_CHECK(chan_mpg_go(count_one, t) > 0);
    while (atomic_load(&t->ran) < 10) {
    }
}

START_TEST(spawn_ten_then_spin_until_run)
{
    struct pipe_test t = {0};
    run(spawn_ten_then_spin, &t);
    ck_assert_int_eq(atomic_load(&t.ran), 10);
}
END_TEST

/* The global queue's turn (Go's schedule: every 61st schedtick a P looks at the global queue
 * before its own): a G on every P yields without end, so that no P runs out of local work (the
 * yielding G is back on its ring at once) or idles. A G spawned by this thread (not a G: it goes
 * to the global queue) must still run, and it ends the yields; some P looks at the global queue
 * within 61 schedules, so it runs before every yielding G has yielded YIELDS_BOUND times since
 * it was queued (a count, not a time). Without the turn it runs only once sysmon has moved a
 * yielding G that the OS held off its core for 10 ms in its ring, so that its P runs out of
 * work: after thousands of yields, or never.
 *
 * One yielding G on each P: each first spins, holding its P, until all of them run at once,
 * hence one on each P. From then on none moves but by sysmon: a thief takes from a ring only
 * Gs that have waited 50 us there, and there is no idle P to steal anyway. (Two Gs in a
 * ping-pong on each P would not do: sysmon takes a G from the runnext of a P whose M the OS
 * holds off a core for 20 us, the pairs gather on fewer Ps, and an idle P runs the G at once.) */
#define YIELDS_BOUND 10000

static atomic_bool yield_stop, queued;
static atomic_int yielders_running;
static int yielders;
static atomic_long *yields_since; /* each yielding G's yields since it saw queued */

static void yield_until_stop(void *arg)
{
    atomic_long *since = arg;
    atomic_fetch_add(&yielders_running, 1);
    while (atomic_load(&yielders_running) < yielders)
        sched_yield(); /* the thread's turn for another thread, not the G's: it keeps the P */
    while (!atomic_load_explicit(&yield_stop, memory_order_relaxed)) {
        if (atomic_load_explicit(&queued, memory_order_relaxed))
            atomic_fetch_add_explicit(since, 1, memory_order_relaxed);
        chan_mpg_yield();
    }
}

static void stop_yields(void *arg)
{
    atomic_store(&yield_stop, true);
    G_CHECK(chan_close(arg) == 0);
}

START_TEST(global_g_runs_beside_yields)
{
    ck_assert_int_eq(chan_mpg_start(2), 0);
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    yielders = st.nprocs;
    yields_since = calloc((size_t)yielders, sizeof *yields_since);
    ck_assert_ptr_nonnull(yields_since);
    atomic_store(&yield_stop, false);
    atomic_store(&queued, false);
    atomic_store(&yielders_running, 0);
    for (int i = 0; i < yielders; i++)
        ck_assert_int_gt(chan_mpg_go(yield_until_stop, &yields_since[i]), 0);
    while (atomic_load(&yielders_running) < yielders)
        usleep(1000);
    chan_t *done = chan_make(0, 0);
    ck_assert_int_gt(chan_mpg_go(stop_yields, done), 0);
    atomic_store(&queued, true); /* after: a count from before would count this thread's delays */
    int rc = chan_recv_until(done, NULL, chan_now() + 20000 * MS);
    atomic_store(&yield_stop, true); /* end them anyway, so that the test can report */
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    ck_assert_msg(rc == -EPIPE, "the G in the global queue did not run in 20 s (%d)", rc);
    long least = atomic_load(&yields_since[0]);
    for (int i = 1; i < yielders; i++)
        if (atomic_load(&yields_since[i]) < least)
            least = atomic_load(&yields_since[i]);
    ck_assert_msg(least < YIELDS_BOUND, "every yielding G yielded %ld times or more first", least);
    ck_assert_int_eq(chan_free(done), 0);
    free(yields_since);
    NO_BAD();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg_steal");
    ADD_TEST(s, spawn_then_block, 10);
    ADD_TEST(s, spawn_ten_then_block, 10);
    ADD_TEST(s, wake_then_block, 10);
    ADD_TEST(s, spawn_then_spin_on_flag, 10);
    ADD_TEST(s, spawn_ten_then_spin_until_run, 10);
    ADD_TEST(s, pingpong_then_block, 20);
    ADD_TEST(s, global_g_runs_beside_yields, 60);
    return run_suite(s);
}
