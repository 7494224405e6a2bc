/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_leak.c - partial deadlocks among the Gs of libchan-mpg (chan_leak.h with sched/):
 * the sender G left behind by a receiver that timed out, reported while the program keeps
 * running; two Gs waiting on each other, reported while 100 others work; a G blocked on a nil
 * channel, and Gs blocked on no channel listed by chan_dump; and no report for a G whose channel
 * is held in a global, in a heap struct a running G holds, by a pending timer, by a context,
 * only on a foreign thread's stack or on the stack of a G in a system call (an M without a P),
 * nor for a G waiting with a deadline. A check made from a G sees that G as running. Under
 * CHAN_LEAKCHECK, chan_mpg_wait reports a partial deadlock while it waits.
 *
 * As in test_leak.c, the channels of a scenario are made in a function that is not inlined and
 * kept for the clean-up only xored (vault), where the leak detector does not see them. A G
 * may be given its channel as its argument: a G's argument counts as its own, reachable only
 * while it can run.
 */
#include "testutil.h"

#ifdef CHAN_TRACE_BUILD

#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chan_time.h"
#include "chan_trace.h"
#include "sched/chan_sched_mpg.h"
#include "testprocs.h"

/* leftovers_reach counts the blocked waiters but not the workers (whose channels are named
 * "work"). */
#define LEFTOVERS_IGNORE (&(const struct chan_leak_ignore){.prefix = "work"})
#include "testleak.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

static void go(void (*fn)(void *), void *arg) { ck_assert_int_gt(chan_mpg_go(fn, arg), 0); }

/* Keeps a (volatile) local alive to the end of its frame. */
#define G_USE(x) __asm__ volatile("" : : "r"(x))

/* Closes the channel of vault[i], which wakes whoever waits on it, and frees it once they have
 * all returned (chan_mpg_wait). */
static void finish(int nchans)
{
    for (int i = 0; i < nchans; i++)
        chan_close(take(i));
    ck_assert_int_eq(chan_mpg_wait(), 0);
    for (int i = 0; i < nchans; i++)
        ck_assert_int_eq(chan_free(take(i)), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
}

static void start(void)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    ck_assert_int_eq(chan_mpg_start(2), 0);
}

/* A G that receives on its argument until it is closed. */
static void recv_arg(void *arg)
{
    int64_t v;
    chan_recv(arg, &v);
}

/* ---- The program keeps running: pairs of Gs that ping-pong until told to stop ---------------- */

static atomic_bool work_stop;
static atomic_long work_done;

struct pair {
    chan_t *c;
    int side;
};

static void pinger(void *arg)
{
    struct pair *p = arg;
    long v = 0;
    while (!atomic_load(&work_stop)) {
        if (p->side) {
            if (chan_send(p->c, &v) != 0)
                break;
        } else if (chan_recv(p->c, &v) != 0) {
            break;
        }
        atomic_fetch_add(&work_done, 1);
    }
}

static struct pair *pairs;

static void start_workers(int n)
{
    pairs = calloc((size_t)n, sizeof *pairs);
    ck_assert_ptr_nonnull(pairs);
    for (int i = 0; i < n; i += 2) {
        pairs[i].c = pairs[i + 1].c = chan_make(sizeof(long), 0);
        chan_trace_name_chan(pairs[i].c, "work");
        pairs[i + 1].side = 1;
        go(pinger, &pairs[i]);
        go(pinger, &pairs[i + 1]);
    }
}

static void stop_workers(int n)
{
    atomic_store(&work_stop, true);
    for (int i = 0; i < n; i += 2)
        chan_close(pairs[i].c); /* whoever of the two waits, wakes */
}

static void free_workers(int n)
{
    for (int i = 0; i < n; i += 2)
        ck_assert_int_eq(chan_free(pairs[i].c), 0);
    free(pairs);
}

/* ---- The leaked sender of a receiver that timed out ------------------------------------------ */

static atomic_bool gave_up;

static void late_sender(void *arg)
{
    while (!atomic_load(&gave_up))
        chan_mpg_sleep_until(chan_now() + MS);
    int v = 42;
    chan_send(arg, &v);
}

__attribute__((noinline)) static void leaky_request(void)
{
    chan_t *c = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "result");
    keep(0, c);
    go(late_sender, c);
    int v;
    ck_assert_int_eq(chan_recv_until(c, &v, chan_now() + 10 * MS), -ETIMEDOUT);
    atomic_store(&gave_up, true);
}

START_TEST(test_leaked_sender_g)
{
    start();
    start_workers(10);
    leaky_request();
    wait_leftovers(1);
    long before = atomic_load(&work_done);
    char *text;
    ck_assert_int_eq(check_report(&text), 1);
    ck_assert_msg(strstr(text, "partial deadlock: 1 of 11 goroutines is blocked forever:") &&
                      strstr(text, "\ngoroutine 11 [chan send, ") &&
                      strstr(text, "\tchan \"result\" (0x") &&
                      strstr(text, ": goroutine 11 sends\n"),
                  "%s", text);
    free(text);
    /* The others ran on, before and after. */
    for (int i = 0; i < 10000 && atomic_load(&work_done) == before; i++)
        sleep_ms(1);
    ck_assert_int_gt(atomic_load(&work_done), before);
    stop_workers(10);
    finish(1);
    free_workers(10);
}
END_TEST

/* ---- Two Gs waiting on each other while 100 others work -------------------------------------- */

struct ab {
    chan_t *a, *b;
    atomic_int copied;
};

/* Receives on one, then would send on the other. The second G to copy the channels clears and
 * frees the struct that brought them. */
static void one_way(void *arg, bool first)
{
    struct ab *p = arg;
    chan_t *in = first ? p->a : p->b, *out = first ? p->b : p->a;
    if (atomic_fetch_add(&p->copied, 1) == 1) {
        explicit_bzero(p, sizeof *p);
        free(p);
    }
    int v;
    if (chan_recv(in, &v) == 0)
        chan_send(out, &v);
}

static void a_then_b(void *arg) { one_way(arg, true); }
static void b_then_a(void *arg) { one_way(arg, false); }

__attribute__((noinline)) static void deadlock_pair(void)
{
    struct ab *p = calloc(1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    p->a = chan_make(sizeof(int), 0);
    p->b = chan_make(sizeof(int), 0);
    chan_trace_name_chan(p->a, "a");
    chan_trace_name_chan(p->b, "b");
    keep(0, p->a);
    keep(1, p->b);
    go(a_then_b, p);
    go(b_then_a, p);
}

START_TEST(test_two_gs_deadlocked_among_100)
{
    start();
    start_workers(100);
    deadlock_pair();
    wait_leftovers(2);
    char *text;
    ck_assert_int_eq(check_report(&text), 2);
    ck_assert_msg(strstr(text, "partial deadlock: 2 of 102 goroutines are blocked forever:") &&
                      strstr(text, "\ngoroutine 101 [chan receive, ") &&
                      strstr(text, "\ngoroutine 102 [chan receive, ") &&
                      strstr(text, "\tchan \"a\" (0x") && strstr(text, "\tchan \"b\" (0x"),
                  "%s", text);
    free(text);
    stop_workers(100);
    finish(2);
    free_workers(100);
}
END_TEST

#if defined(__x86_64__)
/* ---- What the M of a leaked G keeps in its registers ----------------------------------------- */

/* A G that leaves its channel's address in the vector registers of its M (as a struct copy with
 * SSE does), then blocks on it forever. */
static void vectors_then_recv(void *arg)
{
    __asm__ volatile("movq %0, %%xmm1\n\tmovq %0, %%xmm2\n\tmovq %0, %%xmm3\n\t"
                     "movq %0, %%xmm4\n\tmovq %0, %%xmm5\n\tmovq %0, %%xmm6\n\t"
                     "movq %0, %%xmm7\n\tmovq %0, %%xmm8\n\tmovq %0, %%xmm9\n\t"
                     "movq %0, %%xmm10\n\tmovq %0, %%xmm11\n\tmovq %0, %%xmm12\n\t"
                     "movq %0, %%xmm13\n\tmovq %0, %%xmm14\n\tmovq %0, %%xmm15"
                     :
                     : "r"(arg)
                     : "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                       "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    chan_recv(arg, NULL);
}

__attribute__((noinline)) static void block_with_vectors(void)
{
    chan_t *c = chan_make(0, 0);
    keep(0, c);
    go(vectors_then_recv, c);
}

/* The M goes to sleep with the G's channel in its vector registers: stale bytes, dead across
 * the system call it sleeps in, which do not hide the leak. */
START_TEST(test_idle_m_vectors_hide_no_g_leak)
{
    const char *mode = getenv("CHAN_TEST_MODE");
    if (mode && strcmp(mode, "tsan") == 0)
        return; /* TSan keeps a copy of a signal's context, vector registers too (test_leak.c) */
    start();
    block_with_vectors();
    wait_leftovers(1);
    int n = 0;
    for (int i = 0; i < 200 && n == 0; i++) { /* until its M has gone to sleep */
        sleep_ms(5);
        n = count_leaks(NULL);
    }
    ck_assert_int_eq(n, 1);
    finish(1);
}
END_TEST
#endif

/* ---- Blocked on nothing ---------------------------------------------------------------------- */

static void recv_nil(void *arg)
{
    (void)arg;
    chan_recv(NULL, NULL);
}

START_TEST(test_nil_channel_g)
{
    start();
    go(recv_nil, NULL);
    wait_leftovers(1);
    char *text;
    ck_assert_int_eq(check_report(&text), 1);
    /* Go's words for the wait; and one goroutine of one is "goroutine", not "goroutines". */
    ck_assert_msg(strstr(text, "partial deadlock: 1 of 1 goroutine is blocked forever:\n"), "%s",
                  text);
    ck_assert_msg(strstr(text, "goroutine 1 [chan receive (nil chan), "), "%s", text);
    ck_assert_msg(!strstr(text, "wait-for"), "%s", text); /* no channel to draw */
    free(text);
    /* Nothing can wake it: the scheduler cannot stop, the test's process ends with it. */
    ck_assert_int_eq(chan_mpg_stop(), -EBUSY);
}
END_TEST

/* A G blocked on no channel - select {} (no cases, or only nil ones), a nil channel's receive or
 * send - is on no queue, and the dump walks queues: chan_dump lists it under "blocked on no
 * channel:" as it lists a thread (test_trace's test_dump_lists_waits_on_no_channel), by its G id
 * and in Go's words for its wait. chan_leftovers and chan_leak_check, which also find it
 * through the scheduler's Gs, count it once. One that waits with a deadline is listed while it
 * waits, and not once it has returned. */
static atomic_bool nothing_over;

static void wait_on_nothing(void *arg)
{
    int how = (int)(intptr_t)arg, v = 0;
    struct chan_case nils[] = {chan_case_recv(NULL, &v), chan_case_send(NULL, &v)};
    switch (how) {
    case 0: chan_select(NULL, 0); break;
    case 1: chan_recv(NULL, &v); break;
    case 2: chan_send(NULL, &v); break;
    case 3: chan_select(nils, 2); break;
    default: /* a deadline: over once the test says so, whatever the clock */
        while (chan_select_until(NULL, 0, chan_now() + 5 * MS) == -ETIMEDOUT &&
               !atomic_load(&nothing_over)) {
        }
    }
}

static int times_in(const char *s, const char *pat)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, pat)); p += strlen(pat))
        n++;
    return n;
}

/* chan_dump's text once it lists n waiters blocked (up to ~10 s), to free. */
static char *dump_with_blocked(int n)
{
    char *s = NULL;
    int listed;
    for (int i = 0; i < 2000; i++) {
        free(s);
        s = text_of(chan_dump, &listed);
        if (times_in(s, "  blocked for ") == n)
            break;
        sleep_ms(5);
    }
    return s;
}

START_TEST(test_dump_lists_gs_on_no_channel)
{
    static const char *const words[] = {"select (no cases)", "chan receive (nil chan)",
                                        "chan send (nil chan)", "select"};
    start();
    int64_t id[4];
    for (int how = 0; how < 4; how++) {
        id[how] = chan_mpg_go(wait_on_nothing, (void *)(intptr_t)how);
        ck_assert_int_gt(id[how], 0);
    }
    wait_leftovers(4); /* all four parked, so listed before */
    char *s = dump_with_blocked(4);
    ck_assert_msg(strstr(s, "\nblocked on no channel:\n") != NULL, "%s", s);
    for (int how = 0; how < 4; how++) {
        char want[96];
        snprintf(want, sizeof want, "\n    %s  goroutine %lld  blocked for ", words[how],
                 (long long)id[how]);
        ck_assert_msg(strstr(s, want) != NULL, "no '%s' in:\n%s", want, s);
    }
    ck_assert_msg(times_in(s, "  blocked for ") == 4, "%s", s);
    free(s);
    ck_assert_int_eq(chan_leftovers(NULL, NULL), 4);
    ck_assert_int_eq(count_leaks(NULL), 4);
    /* With a deadline: listed while it waits, and not once it has returned. */
    ck_assert_int_gt(chan_mpg_go(wait_on_nothing, (void *)(intptr_t)4), 0);
    s = dump_with_blocked(5);
    ck_assert_msg(times_in(s, "  blocked for ") == 5, "%s", s);
    free(s);
    atomic_store(&nothing_over, true);
    struct chan_mpg_stats st;
    for (int i = 0; i < 2000; i++) {
        chan_mpg_stats(&st);
        if (st.live == 4)
            break;
        sleep_ms(5);
    }
    ck_assert_int_eq(st.live, 4);
    int listed;
    s = text_of(chan_dump, &listed);
    ck_assert_msg(times_in(s, "  blocked for ") == 4, "%s", s);
    free(s);
    /* Nothing can wake the four: the scheduler cannot stop, the test's process ends with them. */
    ck_assert_int_eq(chan_mpg_stop(), -EBUSY);
}
END_TEST

/* ---- What keeps a G's channel alive ---------------------------------------------------------- */

static chan_t *volatile global_chan; /* volatile: a store the compiler must make */

__attribute__((noinline)) static void block_on_global(void)
{
    global_chan = chan_make(sizeof(int), 0);
    keep(0, global_chan);
    go(recv_arg, global_chan);
}

START_TEST(test_global_keeps_g_alive)
{
    start();
    block_on_global();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    global_chan = NULL;
    ck_assert_int_eq(count_leaks(NULL), 1);
    finish(1);
}
END_TEST

struct holder {
    long pad[3];
    chan_t *c;
};

static atomic_bool hold_stop;

/* A running G that holds a heap struct holding the channel (its argument). */
static void holder(void *arg)
{
    struct holder *volatile h = arg;
    while (!atomic_load(&hold_stop))
        chan_mpg_sleep_until(chan_now() + MS);
    G_USE(h);
}

__attribute__((noinline)) static void block_on_held(void)
{
    struct holder *h = calloc(1, sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->c = chan_make(sizeof(int), 0);
    keep(0, h->c);
    keep(1, h);
    go(holder, h);
    go(recv_arg, h->c);
}

START_TEST(test_heap_struct_keeps_g_alive)
{
    start();
    block_on_held();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    atomic_store(&hold_stop, true);
    chan_close(take(0));
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_free(take(0)), 0);
    free(take(1));
    ck_assert_int_eq(chan_mpg_stop(), 0);
}
END_TEST

__attribute__((noinline)) static void block_on_timer(void)
{
    chan_timer_t *t = chan_timer_make(3600 * CHAN_SECOND);
    ck_assert_ptr_nonnull(t);
    keep(1, t);
    go(recv_arg, chan_timer_chan(t));
}

START_TEST(test_pending_timer_keeps_g_alive)
{
    start();
    block_on_timer();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    chan_timer_t *t = take(1);
    chan_timer_reset(t, 0);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    ck_assert_int_eq(chan_timer_free(t), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
}
END_TEST

__attribute__((noinline)) static void block_on_context(void)
{
    chan_ctx_t *ctx = chan_ctx_with_timeout(chan_ctx_background(), 3600 * CHAN_SECOND);
    ck_assert_ptr_nonnull(ctx);
    keep(1, ctx);
    go(recv_arg, chan_ctx_done(ctx));
}

START_TEST(test_context_keeps_g_alive)
{
    start();
    block_on_context();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    chan_ctx_t *ctx = take(1);
    chan_ctx_cancel(ctx);
    ck_assert_int_eq(chan_mpg_wait(), 0);
    chan_ctx_free(ctx);
    ck_assert_int_eq(chan_mpg_stop(), 0);
}
END_TEST

static chan_t *_Atomic slot;
static atomic_bool foreign_stop, foreign_holds;

/* A plain thread whose frame alone holds the channel, while it sleeps. */
static void *hold_on_stack(void *arg)
{
    (void)arg;
    chan_t *volatile c;
    while (!(c = atomic_exchange(&slot, NULL)))
        sleep_ms(1);
    atomic_store(&foreign_holds, true);
    while (!atomic_load(&foreign_stop))
        sleep_ms(1);
    c = NULL;
    return NULL;
}

__attribute__((noinline)) static pthread_t block_on_foreign(void)
{
    chan_t *c = chan_make(sizeof(int), 0);
    keep(0, c);
    atomic_store(&slot, c);
    pthread_t t = spawn(hold_on_stack, NULL);
    go(recv_arg, c);
    return t;
}

START_TEST(test_foreign_stack_keeps_g_alive)
{
    start();
    pthread_t t = block_on_foreign();
    wait_leftovers(1);
    while (!atomic_load(&foreign_holds))
        sleep_ms(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    atomic_store(&foreign_stop, true);
    join(t);
    finish(1);
}
END_TEST

/* A G in a system call (chan_mpg_syscall_enter: its M blocks in the kernel without a P) runs:
 * its frame alone holds the channel, read from its M's stack pointer up. */
static int sys_pipe[2];
static atomic_bool in_syscall, syscall_done;

static void hold_in_syscall(void *arg)
{
    (void)arg;
    chan_t *volatile c;
    while (!(c = atomic_exchange(&slot, NULL)))
        chan_mpg_sleep_until(chan_now() + MS);
    char b;
    chan_mpg_syscall_enter();
    atomic_store(&in_syscall, true);
    ssize_t r = read(sys_pipe[0], &b, 1); /* blocks until the test writes */
    chan_mpg_syscall_exit();
    c = NULL;
    G_USE(r);
    atomic_store(&syscall_done, true);
}

__attribute__((noinline)) static void block_on_syscall_g(void)
{
    chan_t *c = chan_make(sizeof(int), 0);
    keep(0, c);
    atomic_store(&slot, c);
    go(hold_in_syscall, NULL);
    go(recv_arg, c);
}

START_TEST(test_syscall_g_keeps_g_alive)
{
    ck_assert_int_eq(pipe(sys_pipe), 0);
    start();
    block_on_syscall_g();
    wait_leftovers(1);
    while (!atomic_load(&in_syscall))
        sleep_ms(1);
    /* Into read(2), its P handed on by sysmon. */
    for (int i = 0; i < 10000 && threads_in_syscall(SYS_read, &sys_pipe[0], 1) < 1; i++)
        sleep_ms(1);
    ck_assert_int_eq(threads_in_syscall(SYS_read, &sys_pipe[0], 1), 1);
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    for (int i = 0; i < 10000 && st.retakes < 1; i++, chan_mpg_stats(&st))
        sleep_ms(1);
    ck_assert_uint_ge(st.retakes, 1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    ck_assert_int_eq(write(sys_pipe[1], "x", 1), 1);
    while (!atomic_load(&syscall_done))
        sleep_ms(1);
    /* Back, and gone: nothing holds the channel now (a copy its last frames may leave for a
     * moment in a register of its M hides the leak, conservatively: look again). */
    int n = 0;
    for (int i = 0; i < 200 && (n = count_leaks(NULL)) != 1; i++)
        sleep_ms(10);
    ck_assert_int_eq(n, 1);
    finish(1);
    close(sys_pipe[0]);
    close(sys_pipe[1]);
}
END_TEST

static void recv_arg_until(void *arg)
{
    int v;
    chan_recv_until(arg, &v, chan_now() + 3600 * CHAN_SECOND);
}

static void sleeper(void *arg)
{
    (void)arg;
    chan_mpg_sleep_until(chan_now() + 200 * MS);
}

__attribute__((noinline)) static void block_with_deadline(void)
{
    chan_t *c = chan_make(sizeof(int), 0);
    keep(0, c);
    go(recv_arg_until, c);
    go(sleeper, NULL);
}

START_TEST(test_deadline_is_no_g_leak)
{
    start();
    block_with_deadline();
    wait_leftovers(1);
    ck_assert_int_eq(chan_leftovers(NULL, NULL), 1); /* the sleeper waits on no channel */
    ck_assert_int_eq(count_leaks(NULL), 0);
    finish(1);
}
END_TEST

/* ---- A check from a G ------------------------------------------------------------------------ */

static atomic_int g_found = -1;

static void checker(void *arg)
{
    (void)arg;
    atomic_store(&g_found, count_leaks(NULL));
}

START_TEST(test_check_from_a_g)
{
    start();
    leaky_request();
    wait_leftovers(1);
    scrub_stack(); /* the frames of this thread's calls above, under those of its sleeps */
    go(checker, NULL);
    while (atomic_load(&g_found) < 0)
        sleep_ms(1);
    ck_assert_int_eq(atomic_load(&g_found), 1);
    finish(1);
}
END_TEST

/* ---- chan_mpg_wait under CHAN_LEAKCHECK --------------------------------------------------- */

static char wait_log[] = "/tmp/chan_mpg_leak.XXXXXX";

static bool log_says(const char *what)
{
    FILE *f = fopen(wait_log, "r");
    if (!f)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, what) != NULL;
}

/* Once chan_mpg_wait has reported the leak, the program winds down: the workers stop, the
 * leaked G is woken. This thread announces itself while it does: the workers stop one pair at
 * a time, and between two of its closes every G left may be parked waiting for the next one,
 * which chan_mpg_wait would rightly call a deadlock if the thread that wakes them were not
 * announced (it did, at load 10, in two full runs). */
static void *wind_down(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000 && !log_says("partial deadlock: 1 of 11 goroutines"); i++)
        sleep_ms(1);
    ck_assert_int_eq(chan_mpg_foreign_enter(), 0);
    chan_close(take(0));
    stop_workers(10);
    chan_mpg_foreign_leave();
    return NULL;
}

START_TEST(test_mpg_wait_reports_partial_deadlock)
{
    setenv("CHAN_LEAKCHECK", "1", 1);
    start();
    start_workers(10);
    leaky_request();
    wait_leftovers(1);
    scrub_stack();
    int fd = mkstemp(wait_log);
    ck_assert(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    close(fd);
    pthread_t t = spawn(wind_down, NULL);
    int r = chan_mpg_wait(); /* waits for the workers, reporting the leak meanwhile */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    join(t);
    ck_assert_int_eq(r, 0);
    ck_assert_msg(log_says("\ngoroutine 11 [chan send, "), "no report from chan_mpg_wait");
    unlink(wait_log);
    ck_assert_int_eq(chan_free(take(0)), 0);
    ck_assert_int_eq(chan_mpg_stop(), 0);
    free_workers(10);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg_leak");
    ADD_TEST(s, test_leaked_sender_g, 60);
    ADD_TEST(s, test_two_gs_deadlocked_among_100, 120);
    ADD_TEST(s, test_nil_channel_g, 60);
    ADD_TEST(s, test_dump_lists_gs_on_no_channel, 60);
#if defined(__x86_64__)
    ADD_TEST(s, test_idle_m_vectors_hide_no_g_leak, 60);
#endif
    ADD_TEST(s, test_global_keeps_g_alive, 60);
    ADD_TEST(s, test_heap_struct_keeps_g_alive, 60);
    ADD_TEST(s, test_pending_timer_keeps_g_alive, 60);
    ADD_TEST(s, test_context_keeps_g_alive, 60);
    ADD_TEST(s, test_foreign_stack_keeps_g_alive, 60);
    ADD_TEST(s, test_syscall_g_keeps_g_alive, 60);
    ADD_TEST(s, test_deadline_is_no_g_leak, 60);
    ADD_TEST(s, test_check_from_a_g, 60);
    ADD_TEST(s, test_mpg_wait_reports_partial_deadlock, 60);
    return run_suite(s);
}

#else

START_TEST(test_mpg_leak_not_built)
{
    printf("test_mpg_leak: libchan was built without trace/ (-DCHAN_TRACE_BUILD): skipped\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpg_leak");
    ADD_TEST(s, test_mpg_leak_not_built, 10);
    return run_suite(s);
}

#endif
