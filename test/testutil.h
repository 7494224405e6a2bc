/* SPDX-License-Identifier: MIT */
/* testutil.h - small helpers shared by the Check suites in test/. Header-only. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"

#define MS 1000000LL /* nanoseconds per millisecond */

/* Running under a sanitizer (set by test/run.sh): timing bounds are looser there. */
static inline int under_sanitizer(void)
{
    const char *m = getenv("CHAN_TEST_MODE");
    return m && (strcmp(m, "asan") == 0 || strcmp(m, "tsan") == 0);
}

/* Running under TSan: it keeps a trace per thread and per fiber, and cannot start threads in the
 * child of a multi-threaded process, so fork-heavy and fiber-heavy tests run small there. */
static inline int under_tsan(void)
{
    const char *m = getenv("CHAN_TEST_MODE");
    return m && strcmp(m, "tsan") == 0;
}

/* How late an _until call may return past its deadline: 50 ms, 200 ms under sanitizers. */
static inline int64_t late_bound(void) { return under_sanitizer() ? 200 * MS : 50 * MS; }

static inline void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline void sleep_ms(int64_t ms) { sleep_ns(ms * MS); }

/* A loop's length for this build: sanitized builds run 5-15x slower, so the heavy loops run
 * shorter there (sanitized) than in the plain build (plain). */
static inline int scaled(int plain, int sanitized) { return under_sanitizer() ? sanitized : plain; }

/* chan_make, or fail the test: for the many tests whose subject is not chan_make itself. */
static inline chan_t *mk(size_t elemsize, size_t cap)
{
    chan_t *c = chan_make(elemsize, cap);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* The three ways to run a select, behind one signature, so that a test can make the same
 * checks with each: sel_block (chan_select), sel_try (chan_tryselect) and sel_until
 * (chan_select_until, deadline d; the other two ignore d). */
static inline int sel_block(struct chan_case *cs, size_t n, int64_t d)
{
    (void)d;
    return chan_select(cs, n);
}

static inline int sel_try(struct chan_case *cs, size_t n, int64_t d)
{
    (void)d;
    return chan_tryselect(cs, n);
}

static inline int sel_until(struct chan_case *cs, size_t n, int64_t d)
{
    return chan_select_until(cs, n, d);
}

/* Pearson's statistic of k counts against a uniform spread of total: asymptotically
 * chi-square with k - 1 degrees of freedom (the fairness tests keep every expected count at
 * 5000 or more, where that holds well). */
static inline double chi_square(const long *cnt, int k, long total)
{
    double e = (double)total / k, x = 0;
    for (int i = 0; i < k; i++)
        x += ((double)cnt[i] - e) * ((double)cnt[i] - e) / e;
    return x;
}

/* Start a thread or fail the test. */
static inline pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

/* Start fn(arg), a function of the kind a G or a spawn function runs (void (*)(void *)), as a
 * thread of stack bytes (0: the default), or fail the test. */
struct spawn_fn_start {
    void (*fn)(void *);
    void *arg;
};

static inline void *spawn_fn_run(void *p)
{
    struct spawn_fn_start s = *(struct spawn_fn_start *)p;
    free(p);
    s.fn(s.arg);
    return NULL;
}

static inline pthread_t spawn_fn(void (*fn)(void *), void *arg, size_t stack)
{
    struct spawn_fn_start *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    *s = (struct spawn_fn_start){fn, arg};
    pthread_attr_t attr;
    ck_assert_int_eq(pthread_attr_init(&attr), 0);
    if (stack)
        ck_assert_int_eq(pthread_attr_setstacksize(&attr, stack), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &attr, spawn_fn_run, s), 0);
    pthread_attr_destroy(&attr);
    return t;
}

static inline void *join(pthread_t t)
{
    void *r = NULL;
    ck_assert_int_eq(pthread_join(t, &r), 0);
    return r;
}

/* One more task running: counts it in *running and raises *max_running to the count, so that a
 * test of a limit can say how many ran at once at most. The task counts itself out with
 * atomic_fetch_sub(running, 1). */
static inline void running_enter(_Atomic int *running, _Atomic int *max_running)
{
    int now = atomic_fetch_add(running, 1) + 1;
    for (int m = atomic_load(max_running); now > m;)
        if (atomic_compare_exchange_weak(max_running, &m, now))
            break;
}

/* Waits (up to ~10 s) until f(arg) is true; the way tests let a peer reach its blocked state
 * without guessing a sleep: e.g. until wait_senders(c) >= 1 (see below). */
static inline int eventually(int (*f)(void *), void *arg)
{
    for (int i = 0; i < 10000; i++) {
        if (f(arg))
            return 1;
        sleep_ms(1);
    }
    return 0;
}

/* How many threads of the process are blocked in system call nr with one of fds[0..n) as its
 * first argument: /proc's syscall file of a thread names the call it blocks in, its number then
 * its arguments ("running" while it runs). What a test waits for when a thread, or the M of a G
 * in a system call, must be in the kernel and not on its way there. */
static inline int threads_in_syscall(long nr, const int *fds, int n)
{
    int in = 0;
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));) {
        char path[300], buf[128];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/syscall", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* the thread has just ended */
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        long got;
        unsigned long fd;
        if (sscanf(buf, "%ld %lx", &got, &fd) != 2 || got != nr)
            continue;
        for (int i = 0; i < n; i++)
            if ((unsigned long)fds[i] == fd)
                in++;
    }
    closedir(d);
    return in;
}

/* White-box probe (chan_internal.h; linked from the static library): how many sudogs are queued
 * on c's send or receive queue now. A thread counts as blocked on c once its sudog is queued. */
size_t hchan_waiting(chan_t *c, enum chan_dir dir);
/* White-box probe: values buffered in c now, a timer's value too (chan_len reports 0 for a timer's
 * channel, as Go's len does). */
size_t hchan_buffered(const chan_t *c);
/* White-box probe: whether c is a buffered channel whose ring's lock-free paths are stopped (its
 * SLOW bit set): while an operation is queued on it, or it is closed, and never else once every
 * operation on it has returned. */
bool hchan_ring_stopped(const chan_t *c);

static inline int blocked_senders_at_least(chan_t *c, size_t n)
{
    for (int i = 0; i < 20000; i++) {
        if (hchan_waiting(c, CHAN_SEND) >= n)
            return 1;
        sleep_ms(1);
    }
    return 0;
}

static inline int blocked_receivers_at_least(chan_t *c, size_t n)
{
    for (int i = 0; i < 20000; i++) {
        if (hchan_waiting(c, CHAN_RECV) >= n)
            return 1;
        sleep_ms(1);
    }
    return 0;
}

/* Adds a test case with its own time-out (seconds; Check multiplies by
 * CK_TIMEOUT_MULTIPLIER, which test/run.sh raises under sanitizers). */
#define ADD_TEST(suite, fn, secs)                                                                  \
    do {                                                                                           \
        TCase *tc_ = tcase_create(#fn);                                                            \
        tcase_set_timeout(tc_, (secs));                                                            \
        tcase_add_test(tc_, fn);                                                                   \
        suite_add_tcase((suite), tc_);                                                             \
    } while (0)

/* What a passing test makes the library print to stderr on purpose (a deadlock report, say) is
 * caught, not shown among the results where it would read like a failure: between
 * stderr_capture_begin() and stderr_capture_end(), stderr goes to a temporary file, whose text
 * (at most size - 1 bytes, NUL-terminated) stderr_capture_end puts in buf for the test to check. */
static inline FILE *stderr_capture_begin(int *saved)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    fflush(stderr);
    *saved = dup(STDERR_FILENO);
    ck_assert_int_ge(*saved, 0);
    ck_assert_int_ge(dup2(fileno(f), STDERR_FILENO), 0);
    return f;
}

static inline void stderr_capture_end(FILE *f, int saved, char *buf, size_t size)
{
    fflush(stderr);
    ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    rewind(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* What fn wrote on a stream (chan_dump, say), as a string to free; *rc gets what fn returned. */
static inline char *text_of(int (*fn)(FILE *out), int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    *rc = fn(f);
    fclose(f);
    return buf;
}

/* Runs a suite in fork mode and returns the process exit status. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
