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
 */
#include "testmpg.h"

#include <stdatomic.h>
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

int main(void)
{
    Suite *s = suite_create("mpg_steal");
    ADD_TEST(s, spawn_then_block, 10);
    ADD_TEST(s, spawn_ten_then_block, 10);
    ADD_TEST(s, wake_then_block, 10);
    ADD_TEST(s, spawn_then_spin_on_flag, 10);
    ADD_TEST(s, spawn_ten_then_spin_until_run, 10);
    ADD_TEST(s, pingpong_then_block, 20);
    return run_suite(s);
}
