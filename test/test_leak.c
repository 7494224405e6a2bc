/* SPDX-License-Identifier: MIT */
/* test_leak.c - leftover waiters and partial deadlocks among threads (chan_leak.h, trace/leak.c).
 *
 * The classic leak - the sender left behind when its receiver timed out - is reported while
 * another thread keeps working; a thread blocked on a channel that something can still reach
 * is not: a channel held in a global, in a heap struct, by a pending timer, by a context, only
 * on another thread's stack, in the buffer of a channel held, or on the stack of a waiter whose
 * own channel is held (the fixed point), nor one that waits on the world: for an fd (chan_io(3))
 * or on a channel registered for signals. A wait with a deadline is a leftover, not a leak. The
 * filters, the report's shape, the trace event, CHAN_LEAKCHECK at exit and with the SIGQUIT
 * dump are checked too. The Gs of libchan-mpg: test_mpg_leak.c.
 *
 * A reachability test must leave no copy of the channel's address where a thread that can run
 * could read it: each scenario makes its channels in a function that is not inlined, hands them
 * to its threads through a slot the thread empties (not pthread_create's argument, which glibc
 * and the sanitizers keep), and keeps them for the clean-up only in vault[], xored with a key:
 * a form the leak detector does not see (chan_leak(3)). The clean-up closes them, which wakes
 * the waiters, and frees them, so that LeakSanitizer finds nothing either. */
#include "testutil.h"

#ifdef CHAN_TRACE_BUILD

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_io.h"
#include "sync/chan_sync.h"
#include "chan_time.h"
#include "chan_trace.h"
#include "testleak.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

/* Hands a channel to one thread without a copy left behind: the taker empties the slot. */
static chan_t *_Atomic slot;

static void give(chan_t *c)
{
    while (atomic_load(&slot))
        sleep_ms(1);
    atomic_store(&slot, c);
}

static chan_t *receive_given(void)
{
    chan_t *c;
    while (!(c = atomic_exchange(&slot, NULL)))
        sleep_ms(1);
    return c;
}

static int leftovers_report(char **text, const struct chan_leak_ignore *ign)
{
    size_t len;
    FILE *f = open_memstream(text, &len);
    ck_assert_ptr_nonnull(f);
    int n = chan_leftovers(f, ign);
    fclose(f);
    return n;
}

/* A thread that receives forever on the channel it is given (until it is closed); room for a
 * timer's value too. */
static void *recv_given(void *arg)
{
    (void)arg;
    chan_t *c = receive_given();
    int64_t v;
    chan_recv(c, &v);
    return NULL;
}

/* Closes, joins and frees: the clean-up of a scenario, from the vault. */
static void release(int i, pthread_t t)
{
    chan_t *c = take(i);
    chan_close(c);
    join(t);
    ck_assert_int_eq(chan_free(c), 0);
}

/* The program keeps running: a thread that works on its own channel until told to stop. */
static atomic_bool busy_stop;

static void *busy(void *arg)
{
    (void)arg;
    chan_t *c = chan_make(sizeof(long), 8);
    long v = 0, sum = 0;
    while (!atomic_load(&busy_stop)) {
        chan_send(c, &v);
        chan_recv(c, &v);
        sum += ++v;
    }
    chan_free(c);
    return (void *)(intptr_t)(sum != 0);
}

/* ---- The leaked sender of a receiver that timed out ------------------------------------------ */

static atomic_bool gave_up;

static void *late_sender(void *arg)
{
    (void)arg;
    chan_t *c = receive_given();
    while (!atomic_load(&gave_up))
        sleep_ms(1);
    int v = 42;
    chan_send(c, &v); /* nobody will ever receive: blocked until the clean-up closes c */
    return NULL;
}

/* The request: a worker computes the result, the caller waits for it 10 ms, then moves on.
 * (No ck_assert here: the child processes below call it outside a test.) */
__attribute__((noinline)) static pthread_t leaky_request(void)
{
    chan_t *c = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "result");
    keep(0, c);
    give(c);
    pthread_t t;
    if (pthread_create(&t, NULL, late_sender, NULL) != 0)
        abort();
    int v;
    if (chan_recv_until(c, &v, chan_now() + 10 * MS) != -ETIMEDOUT)
        abort();
    atomic_store(&gave_up, true);
    return t;
}

START_TEST(test_leaked_sender_is_reported)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    pthread_t worker = spawn(busy, NULL);
    pthread_t t = leaky_request();
    wait_leftovers(1);
    char *text;
    ck_assert_int_eq(check_report(&text), 1);
    ck_assert_msg(strstr(text, "partial deadlock: 1 of ") &&
                      strstr(text, " threads is blocked forever:"),
                  "%s", text);
    ck_assert_msg(strstr(text, " [chan send, ") && strstr(text, "\tchan \"result\" (0x") &&
                      strstr(text, ") send\n"),
                  "%s", text);
    ck_assert_msg(strstr(text, "wait-for (") && strstr(text, "sends\n"), "%s", text);
    free(text);
    atomic_store(&busy_stop, true);
    ck_assert_ptr_eq(join(worker), (void *)1); /* it ran throughout */
    release(0, t);
    /* Once it is woken, nothing is left. */
    ck_assert_int_eq(chan_leftovers(NULL, NULL), 0);
    ck_assert_int_eq(count_leaks(NULL), 0);
}
END_TEST

/* ---- What keeps a channel alive -------------------------------------------------------------- */

static chan_t *volatile global_chan; /* volatile: a store the compiler must make */

__attribute__((noinline)) static pthread_t block_on_global(void)
{
    global_chan = chan_make(sizeof(int), 0);
    keep(0, global_chan);
    give(global_chan);
    return spawn(recv_given, NULL);
}

START_TEST(test_global_keeps_alive)
{
    chan_dump_enable();
    pthread_t t = block_on_global();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    /* The same channel, once the global forgets it: leaked. */
    global_chan = NULL;
    ck_assert_int_eq(count_leaks(NULL), 1);
    release(0, t);
}
END_TEST

struct holder {
    long pad[3];
    chan_t *c;
};

static atomic_bool holder_drop, holder_dropped, holder_stop;
static struct holder *_Atomic holder_slot;

/* Runs (and keeps running) holding a heap struct that holds the channel; later drops it. */
static void *hold_struct(void *arg)
{
    (void)arg;
    struct holder *volatile h;
    while (!(h = atomic_exchange(&holder_slot, NULL)))
        sleep_ms(1);
    while (!atomic_load(&holder_drop))
        sleep_ms(1);
    h = NULL;
    atomic_store(&holder_dropped, true);
    while (!atomic_load(&holder_stop))
        sleep_ms(1);
    return NULL;
}

__attribute__((noinline)) static void block_on_held(pthread_t *holder, pthread_t *waiter)
{
    struct holder *h = malloc(sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->c = chan_make(sizeof(int), 0);
    keep(0, h->c);
    keep(1, h);
    give(h->c);
    *waiter = spawn(recv_given, NULL);
    atomic_store(&holder_slot, h);
    *holder = spawn(hold_struct, NULL);
}

START_TEST(test_heap_struct_keeps_alive)
{
    chan_dump_enable();
    pthread_t holder, waiter;
    block_on_held(&holder, &waiter);
    wait_leftovers(1);
    while (atomic_load(&holder_slot))
        sleep_ms(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    /* The holder lets the struct go, and it is freed: nothing holds the channel any more. */
    atomic_store(&holder_drop, true);
    while (!atomic_load(&holder_dropped))
        sleep_ms(1);
    struct holder *h = take(1);
    explicit_bzero(h, sizeof *h); /* freed memory keeps what it held: clear it (chan_leak(3)) */
    free(h);
    h = NULL;
    ck_assert_int_eq(count_leaks(NULL), 1);
    atomic_store(&holder_stop, true);
    join(holder);
    release(0, waiter);
}
END_TEST

static atomic_bool foreign_stop;
static atomic_bool foreign_holds;

/* The channel's only copy outside the waiter is in this thread's frame, while it sleeps. */
static void *hold_on_stack(void *arg)
{
    (void)arg;
    chan_t *volatile c = receive_given();
    atomic_store(&foreign_holds, true);
    while (!atomic_load(&foreign_stop))
        sleep_ms(1);
    c = NULL;
    atomic_store(&foreign_holds, false);
    while (atomic_load(&foreign_stop)) /* the test looks again, then lets it go */
        sleep_ms(1);
    (void)c;
    return NULL;
}

__attribute__((noinline)) static void block_on_foreign(pthread_t *holder, pthread_t *waiter)
{
    chan_t *c = chan_make(sizeof(int), 0);
    keep(0, c);
    give(c);
    *holder = spawn(hold_on_stack, NULL);
    give(c);
    *waiter = spawn(recv_given, NULL);
}

START_TEST(test_foreign_stack_keeps_alive)
{
    chan_dump_enable();
    pthread_t holder, waiter;
    block_on_foreign(&holder, &waiter);
    wait_leftovers(1);
    while (!atomic_load(&foreign_holds))
        sleep_ms(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    atomic_store(&foreign_stop, true);
    while (atomic_load(&foreign_holds))
        sleep_ms(1);
    ck_assert_int_eq(count_leaks(NULL), 1);
    atomic_store(&foreign_stop, false);
    join(holder);
    release(0, waiter);
}
END_TEST

/* A thread that blocks every signal cannot be stopped: it is read as it sleeps, its stack from
 * the stack pointer the kernel shows, its registers unseen; a leak is then reported only if a
 * second look finds it too. */
static atomic_bool deaf_stop, deaf_holds;

static void *deaf_holder(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    chan_t *volatile c = receive_given();
    atomic_store(&deaf_holds, true);
    while (!atomic_load(&deaf_stop))
        sleep_ms(1);
    c = NULL;
    (void)c;
    return NULL;
}

__attribute__((noinline)) static void block_beside_deaf(pthread_t *deaf, pthread_t *held,
                                                        pthread_t *lost)
{
    chan_t *c = chan_make(sizeof(int), 0), *d = chan_make(sizeof(int), 0);
    chan_trace_name_chan(d, "lost");
    keep(0, c);
    keep(1, d);
    give(c);
    *deaf = spawn(deaf_holder, NULL);
    give(c);
    *held = spawn(recv_given, NULL);
    give(d);
    *lost = spawn(recv_given, NULL);
}

START_TEST(test_thread_that_cannot_be_stopped)
{
    chan_dump_enable();
    pthread_t deaf, held, lost;
    block_beside_deaf(&deaf, &held, &lost);
    wait_leftovers(2);
    while (!atomic_load(&deaf_holds))
        sleep_ms(1);
    char *text;
    ck_assert_int_eq(check_report(&text), 1); /* "lost", not what the deaf thread holds */
    /* One deaf thread (under TSan, every thread: none answers a signal in a system call). */
    ck_assert_msg(strstr(text, "\tchan \"lost\" (0x") &&
                      (strstr(text, "(1 thread could not be stopped, its registers unseen") ||
                       strstr(text, " threads could not be stopped, their registers unseen")),
                  "%s", text);
    free(text);
    atomic_store(&deaf_stop, true);
    join(deaf);
    release(1, lost);
    release(0, held);
}
END_TEST

#if defined(__x86_64__)
/* ---- Vector registers: dead in a system call, live elsewhere --------------------------------- */

/* A channel's address left in every vector register but xmm0, and nowhere else: what a thread
 * keeps after moving a struct of channels with SSE (a scheduler thread after running a G). */
__attribute__((noinline)) static void load_vectors(chan_t *c)
{
    __asm__ volatile("movq %0, %%xmm1\n\tmovq %0, %%xmm2\n\tmovq %0, %%xmm3\n\t"
                     "movq %0, %%xmm4\n\tmovq %0, %%xmm5\n\tmovq %0, %%xmm6\n\t"
                     "movq %0, %%xmm7\n\tmovq %0, %%xmm8\n\tmovq %0, %%xmm9\n\t"
                     "movq %0, %%xmm10\n\tmovq %0, %%xmm11\n\tmovq %0, %%xmm12\n\t"
                     "movq %0, %%xmm13\n\tmovq %0, %%xmm14\n\tmovq %0, %%xmm15\n\t"
                     /* and out of the general registers the call could have left it in */
                     "xor %0, %0\n\txor %%eax, %%eax\n\txor %%ecx, %%ecx\n\txor %%edx, %%edx\n\t"
                     "xor %%esi, %%esi\n\txor %%edi, %%edi\n\txor %%r8d, %%r8d\n\t"
                     "xor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\txor %%r11d, %%r11d"
                     : "+r"(c)
                     :
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm1", "xmm2",
                       "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                       "xmm12", "xmm13", "xmm14", "xmm15");
}

static int vec_pipe[2];
static atomic_bool vec_spin_stop, vec_spinning;

/* Asleep in read(2) with the address in its vector registers only: stale, not held. */
static void *vectors_then_read(void *arg)
{
    (void)arg;
    char b;
    /* A first read, of the byte already there, binds read's PLT slot now: the dynamic linker
     * saves every vector register on the stack as it does, in slots that a sanitizer's read
     * interceptor leaves unwritten in its frame. */
    if (read(vec_pipe[0], &b, 1) != 1)
        return NULL;
    load_vectors(receive_given());
    return (void *)(intptr_t)read(vec_pipe[0], &b, 1);
}

/* Spinning in user code with the address in its vector registers only: held, as any register
 * of a thread that runs. */
static void *vectors_then_spin(void *arg)
{
    (void)arg;
    load_vectors(receive_given());
    atomic_store(&vec_spinning, true);
    __asm__ volatile("1:\n\tpause\n\tcmpb $0, %0\n\tje 1b" : : "m"(vec_spin_stop) : "memory");
    return NULL;
}

__attribute__((noinline)) static void block_beside_vectors(void *(*holder_fn)(void *),
                                                           pthread_t *holder, pthread_t *waiter)
{
    chan_t *c = chan_make(sizeof(int), 0);
    keep(0, c);
    give(c);
    *holder = spawn(holder_fn, NULL);
    give(c);
    *waiter = spawn(recv_given, NULL);
}

/* An idle thread's stale vector registers do not hide a leak: a thread stopped in a system call
 * made them dead (the SysV ABI keeps none across a call), so its signal frame's copy of them is
 * not read. */
START_TEST(test_vector_registers_in_syscall_hide_no_leak)
{
    const char *mode = getenv("CHAN_TEST_MODE");
    if (mode && strcmp(mode, "tsan") == 0)
        return; /* TSan delivers a signal late, from a copy of its context - the vector
                   registers' too - kept in TSan's own memory, which the sweep reads */
    chan_dump_enable();
    ck_assert_int_eq(pipe(vec_pipe), 0);
    ck_assert_int_eq(write(vec_pipe[1], "x", 1), 1);
    pthread_t holder, waiter;
    block_beside_vectors(vectors_then_read, &holder, &waiter);
    wait_leftovers(1);
    int n = 0;
    for (int i = 0; i < 200 && n == 0; i++) { /* until the holder is in read(2) */
        sleep_ms(5);
        n = count_leaks(NULL);
    }
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(write(vec_pipe[1], "x", 1), 1);
    ck_assert_ptr_eq(join(holder), (void *)1);
    release(0, waiter);
    close(vec_pipe[0]);
    close(vec_pipe[1]);
}
END_TEST

/* ...while those of a thread stopped in its own code may hold the only copy: they count. */
START_TEST(test_vector_registers_of_a_running_thread_keep_alive)
{
    chan_dump_enable();
    pthread_t holder, waiter;
    block_beside_vectors(vectors_then_spin, &holder, &waiter);
    wait_leftovers(1);
    while (!atomic_load(&vec_spinning))
        sleep_ms(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    atomic_store(&vec_spin_stop, true);
    join(holder);
    release(0, waiter);
}
END_TEST
#endif

/* A timer pending for an hour, its handle lost but for the vault: its channel will be sent on. */
__attribute__((noinline)) static pthread_t block_on_timer(void)
{
    chan_timer_t *tm = chan_timer_make(3600 * CHAN_SECOND);
    ck_assert_ptr_nonnull(tm);
    keep(1, tm);
    give(chan_timer_chan(tm));
    return spawn(recv_given, NULL);
}

START_TEST(test_pending_timer_keeps_alive)
{
    chan_dump_enable();
    pthread_t t = block_on_timer();
    wait_leftovers(1);
    char *text;
    ck_assert_int_eq(leftovers_report(&text, NULL), 1);
    ck_assert_msg(strstr(text, "\tchan (timer) 0x"), "%s", text);
    free(text);
    ck_assert_int_eq(count_leaks(NULL), 0);
    chan_timer_t *tm = take(1);
    chan_timer_reset(tm, 0); /* fires now: the waiter gets its value */
    join(t);
    ck_assert_int_eq(chan_timer_free(tm), 0);
}
END_TEST

/* A context that can still be cancelled: its done channel will be closed. */
__attribute__((noinline)) static pthread_t block_on_context(void)
{
    chan_ctx_t *ctx = chan_ctx_with_cancel(chan_ctx_background());
    ck_assert_ptr_nonnull(ctx);
    keep(1, ctx);
    give(chan_ctx_done(ctx));
    return spawn(recv_given, NULL);
}

START_TEST(test_context_keeps_alive)
{
    chan_dump_enable();
    pthread_t t = block_on_context();
    wait_leftovers(1);
    char *text;
    ck_assert_int_eq(leftovers_report(&text, NULL), 1);
    ck_assert_msg(strstr(text, "[chan receive, ") && strstr(text, "\tchan (context done) 0x"), "%s",
                  text);
    free(text);
    ck_assert_int_eq(count_leaks(NULL), 0);
    chan_ctx_t *ctx = take(1);
    chan_ctx_cancel(ctx);
    join(t);
    chan_ctx_free(ctx);
}
END_TEST

/* A WaitGroup, as a timer or a context, holds its channel in its memory while it exists: a
 * wait on it is never reported, even when only the vault holds the WaitGroup (chan_leak(3)). */
static chan_wg_t *_Atomic wg_slot;

static void *wait_given_wg(void *arg)
{
    (void)arg;
    chan_wg_t *wg;
    while (!(wg = atomic_exchange(&wg_slot, NULL)))
        sleep_ms(1);
    return (void *)(intptr_t)chan_wg_wait(wg);
}

__attribute__((noinline)) static pthread_t block_on_waitgroup(void)
{
    chan_wg_t *wg = chan_wg_make();
    ck_assert_ptr_nonnull(wg);
    ck_assert_int_eq(chan_wg_add(wg, 1), 0);
    keep(1, wg);
    atomic_store(&wg_slot, wg);
    return spawn(wait_given_wg, NULL);
}

START_TEST(test_waitgroup_keeps_alive)
{
    chan_dump_enable();
    pthread_t t = block_on_waitgroup();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    chan_wg_t *wg = take(1);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_ptr_eq(join(t), (void *)0);
    ck_assert_int_eq(chan_wg_free(wg), 0);
}
END_TEST

/* The sweep reads every writable mapping, not only what plain pointers lead to: a heap block
 * that holds the channel keeps it alive though the program reaches the block only through a
 * tagged pointer; and so does a thread-local of a thread that can run. */
static volatile uintptr_t tagged_block; /* the block's address with its low bit set */
static __thread chan_t *volatile tls_chan;
static atomic_bool tls_held, tls_drop, tls_stop;

static void *hold_in_tls(void *arg)
{
    (void)arg;
    tls_chan = receive_given();
    atomic_store(&tls_held, true);
    while (!atomic_load(&tls_drop))
        sleep_ms(1);
    tls_chan = NULL;
    atomic_store(&tls_held, false);
    while (!atomic_load(&tls_stop))
        sleep_ms(1);
    return NULL;
}

__attribute__((noinline)) static void block_behind_tag_and_tls(pthread_t *holder, pthread_t *waiter)
{
    chan_t *c = chan_make(sizeof(int), 0);
    chan_t **block = malloc(4 * sizeof *block);
    ck_assert_ptr_nonnull(block);
    block[2] = c;
    tagged_block = (uintptr_t)block | 1;
    keep(0, c);
    keep(1, block);
    give(c);
    *holder = spawn(hold_in_tls, NULL);
    give(c);
    *waiter = spawn(recv_given, NULL);
}

START_TEST(test_tagged_block_and_thread_local_keep_alive)
{
    chan_dump_enable();
    pthread_t holder, waiter;
    block_behind_tag_and_tls(&holder, &waiter);
    wait_leftovers(1);
    while (!atomic_load(&tls_held))
        sleep_ms(1);
    ck_assert_int_eq(count_leaks(NULL), 0); /* the block, and the thread-local */
    chan_t **block = take(1);
    explicit_bzero(block, 4 * sizeof *block);
    free(block);
    tagged_block = 0;
    ck_assert_int_eq(count_leaks(NULL), 0); /* the thread-local */
    atomic_store(&tls_drop, true);
    while (atomic_load(&tls_held))
        sleep_ms(1);
    ck_assert_int_eq(count_leaks(NULL), 1); /* nothing */
    atomic_store(&tls_stop, true);
    join(holder);
    release(0, waiter);
}
END_TEST

/* A wait with a deadline ends by itself: a leftover, never a leak. */
static void *recv_given_until(void *arg)
{
    (void)arg;
    chan_t *c = receive_given();
    int64_t v;
    chan_recv_until(c, &v, chan_now() + 3600 * CHAN_SECOND);
    return NULL;
}

__attribute__((noinline)) static pthread_t block_with_deadline(void)
{
    chan_t *c = chan_make(sizeof(int), 0);
    keep(0, c);
    give(c);
    return spawn(recv_given_until, NULL);
}

START_TEST(test_deadline_is_no_leak)
{
    chan_dump_enable();
    pthread_t t = block_with_deadline();
    wait_leftovers(1);
    ck_assert_int_eq(chan_leftovers(NULL, NULL), 1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    release(0, t);
}
END_TEST

/* ---- Through channels: a buffer, and a waiter that becomes live ------------------------------ */

static chan_t *volatile box; /* a buffered channel of channels, held in a global */

__attribute__((noinline)) static pthread_t block_on_boxed(void)
{
    box = chan_make(sizeof(chan_t *), 4);
    chan_t *c = chan_make(sizeof(int), 0);
    keep(0, c);
    keep(2, box);
    ck_assert_int_eq(chan_send(box, &c), 0);
    give(c);
    return spawn(recv_given, NULL);
}

START_TEST(test_buffer_keeps_alive)
{
    chan_dump_enable();
    pthread_t t = block_on_boxed();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 0); /* box is held, and c is in its buffer */
    box = NULL;
    ck_assert_int_eq(count_leaks(NULL), 1); /* nobody holds box: nobody reaches c */
    release(0, t);
    chan_t *b = take(2);
    chan_tryrecv(b, NULL);
    ck_assert_int_eq(chan_free(b), 0);
}
END_TEST

static chan_t *volatile gate; /* what the first waiter waits on, held in a global */

/* Waits on the first channel it is given, holding the second in its frame: it will send on
 * it once the first one lets it go. */
static void *wait_then_send(void *arg)
{
    (void)arg;
    chan_t *first = receive_given();
    chan_t *volatile then = receive_given();
    int v = 0;
    chan_recv(first, &v);
    chan_send(then, &v);
    return NULL;
}

__attribute__((noinline)) static void block_in_chain(pthread_t *a, pthread_t *b)
{
    gate = chan_make(sizeof(int), 0);
    chan_t *y = chan_make(sizeof(int), 0);
    chan_trace_name_chan(gate, "gate");
    chan_trace_name_chan(y, "y");
    keep(0, gate);
    keep(1, y);
    *a = spawn(wait_then_send, NULL);
    give(gate);
    give(y);
    give(y);
    *b = spawn(recv_given, NULL);
}

START_TEST(test_fixed_point_through_a_waiter)
{
    chan_dump_enable();
    pthread_t a, b;
    block_in_chain(&a, &b);
    wait_leftovers(2);
    /* gate is held; a waits on it, so a may run, and a's frame holds y: b may be woken. */
    ck_assert_int_eq(count_leaks(NULL), 0);
    gate = NULL;
    char *text;
    ck_assert_int_eq(check_report(&text), 2);
    ck_assert_msg(strstr(text, "partial deadlock: 2 of ") && strstr(text, "chan \"gate\"") &&
                      strstr(text, "chan \"y\""),
                  "%s", text);
    free(text);
    chan_t *g = take(0), *y = take(1);
    chan_close(g); /* a wakes, sends on y: b gets it */
    join(a);
    join(b);
    ck_assert_int_eq(chan_free(g), 0);
    ck_assert_int_eq(chan_free(y), 0);
}
END_TEST

/* ---- A select, leftovers and their filters, the registry off ------------------------------- */

static void *select_given(void *arg)
{
    (void)arg;
    chan_t *a = receive_given(), *b = receive_given();
    int v;
    struct chan_case cs[] = {{a, &v, CHAN_RECV, false}, {b, &v, CHAN_SEND, false}};
    chan_select(cs, 2);
    return NULL;
}

__attribute__((noinline)) static pthread_t block_in_select(void)
{
    chan_t *a = chan_make(sizeof(int), 0), *b = chan_make(sizeof(int), 0);
    chan_trace_name_chan(a, "sel-a");
    chan_trace_name_chan(b, "sel-b");
    keep(0, a);
    keep(1, b);
    pthread_t t = spawn(select_given, NULL);
    give(a);
    give(b);
    return t;
}

START_TEST(test_select_leak_and_filters)
{
    chan_dump_enable();
    pthread_t t = block_in_select();
    wait_leftovers(1);
    char *text;
    ck_assert_int_eq(check_report(&text), 1);
    ck_assert_msg(strstr(text, " [select, ") && strstr(text, "\tchan \"sel-a\" (0x") &&
                      strstr(text, ") recv\n") && strstr(text, "\tchan \"sel-b\" (0x") &&
                      strstr(text, ") send\n") && strstr(text, "receives (select)") &&
                      strstr(text, "sends (select)"),
                  "%s", text);
    free(text);
    ck_assert_int_eq(leftovers_report(&text, NULL), 1);
    ck_assert_msg(strstr(text, "leftover waiters: 0 goroutines and 1 thread blocked") &&
                      strstr(text, " [select, "),
                  "%s", text);
    free(text);
    /* Left out when all its channels are so named, or listed; not when only one is. */
    struct chan_leak_ignore ign = {.prefix = "sel-"};
    ck_assert_int_eq(chan_leftovers(NULL, &ign), 0);
    ck_assert_int_eq(count_leaks(&ign), 0);
    ign.prefix = "sel-a";
    ck_assert_int_eq(count_leaks(&ign), 1);
    ign = (struct chan_leak_ignore){.min_blocked = 3600 * CHAN_SECOND};
    ck_assert_int_eq(chan_leftovers(NULL, &ign), 0);
    ign.min_blocked = 1;
    ck_assert_int_eq(chan_leftovers(NULL, &ign), 1);
    chan_t *a = take(0), *b = take(1); /* (held from here on: no more leak checks) */
    chan_t *both[] = {a, b}, *one[] = {a};
    ign = (struct chan_leak_ignore){.chans = both, .nchans = 2};
    ck_assert_int_eq(chan_leftovers(NULL, &ign), 0);
    ign.nchans = 1;
    ign.chans = one;
    ck_assert_int_eq(chan_leftovers(NULL, &ign), 1);
    chan_close(a);
    join(t);
    ck_assert_int_eq(chan_free(a), 0);
    ck_assert_int_eq(chan_free(b), 0);
}
END_TEST

/* A select whose other case is a nil channel (Go's way to switch a case off) is a select all
 * the same: Go's dump and chan_mpg_wait's report say "select", and so do these reports. */
static void *select_with_nil_case(void *arg)
{
    (void)arg;
    chan_t *a = receive_given();
    int v = 0;
    struct chan_case cs[] = {chan_case_recv(a, &v), chan_case_send(NULL, &v)};
    chan_select(cs, 2);
    return NULL;
}

__attribute__((noinline)) static pthread_t block_in_select_with_nil_case(void)
{
    chan_t *a = chan_make(sizeof(int), 0);
    keep(0, a);
    pthread_t t = spawn(select_with_nil_case, NULL);
    give(a);
    return t;
}

START_TEST(test_select_with_nil_case_reads_select)
{
    chan_dump_enable();
    pthread_t t = block_in_select_with_nil_case();
    wait_leftovers(1);
    char *text;
    ck_assert_int_eq(check_report(&text), 1);
    ck_assert_msg(strstr(text, " [select, ") && strstr(text, "receives (select)"), "%s", text);
    free(text);
    ck_assert_int_eq(leftovers_report(&text, NULL), 1);
    ck_assert_msg(strstr(text, " [select, "), "%s", text);
    free(text);
    chan_t *a = take(0);
    chan_close(a);
    join(t);
    ck_assert_int_eq(chan_free(a), 0);
}
END_TEST

/* A thread blocked on no channel - select {} (no cases, or only nil ones), a nil channel's
 * receive or send - is on no queue, and nothing can ever wake it: a leftover and a leak, in
 * Go's words for each (Go's dump says "select (no cases)"). With a deadline it is only a
 * leftover. Nothing wakes them: the test's process ends with them. */
static void *wait_on_nothing(void *arg)
{
    int v = 0;
    struct chan_case nils[] = {chan_case_recv(NULL, &v), chan_case_send(NULL, &v)};
    switch ((int)(intptr_t)arg) {
    case 0: chan_select(NULL, 0); break;
    case 1: chan_recv(NULL, &v); break;
    case 2: chan_send(NULL, &v); break;
    case 3: chan_select(nils, 2); break;
    default: chan_select_until(NULL, 0, chan_now() + 3600 * CHAN_SECOND); /* a deadline */
    }
    return NULL;
}

START_TEST(test_wait_on_no_channel_is_a_leak)
{
    chan_dump_enable();
    for (int how = 0; how < 4; how++)
        spawn(wait_on_nothing, (void *)(intptr_t)how);
    wait_leftovers(4);
    char *text;
    ck_assert_int_eq(check_report(&text), 4);
    ck_assert_msg(strstr(text, "partial deadlock: 4 of ") &&
                      strstr(text, " threads are blocked forever:\n") &&
                      strstr(text, " [select (no cases), ") &&
                      strstr(text, " [chan receive (nil chan), ") &&
                      strstr(text, " [chan send (nil chan), ") && strstr(text, " [select, "),
                  "%s", text);
    ck_assert_msg(!strstr(text, "wait-for"), "%s", text); /* no channel to draw */
    free(text);
    spawn(wait_on_nothing, (void *)(intptr_t)4);
    wait_leftovers(5);
    ck_assert_int_eq(count_leaks(NULL), 4);
    ck_assert_int_eq(leftovers_report(&text, NULL), 5);
    ck_assert_msg(strstr(text, "0 goroutines and 5 threads blocked") &&
                      strstr(text, " [select (no cases), ") &&
                      strstr(text, " [chan send (nil chan), "),
                  "%s", text);
    free(text);
    /* A filter by channel leaves out no waiter that waits on none; a time filter does. */
    struct chan_leak_ignore any = {.prefix = ""};
    ck_assert_int_eq(count_leaks(&any), 4);
    any = (struct chan_leak_ignore){.min_blocked = 3600 * CHAN_SECOND};
    ck_assert_int_eq(count_leaks(&any), 0);
}
END_TEST

/* ignore that says it lists channels but holds no list is bad input, not a crash; a prefix,
 * even "", leaves out only channels that were named. */
START_TEST(test_ignore_bad_list_and_unnamed_chans)
{
    struct chan_leak_ignore bad = {.chans = NULL, .nchans = 1};
    ck_assert_int_eq(chan_leftovers(NULL, &bad), -EINVAL); /* registry off: still -EINVAL */
    ck_assert_int_eq(chan_dump_enable(), 0);
    pthread_t t = block_in_select_with_nil_case(); /* its channel has no name */
    wait_leftovers(1);
    ck_assert_int_eq(chan_leftovers(NULL, &bad), -EINVAL);
    ck_assert_int_eq(chan_leak_check(NULL, &bad), -EINVAL);
    struct chan_leak_ignore any = {.prefix = ""};
    ck_assert_int_eq(chan_leftovers(NULL, &any), 1);
    ck_assert_int_eq(count_leaks(&any), 1);
    chan_t *a = take(0);
    chan_close(a);
    join(t);
    ck_assert_int_eq(chan_free(a), 0);
}
END_TEST

START_TEST(test_registry_off_is_enodev)
{
    ck_assert_int_eq(chan_leftovers(NULL, NULL), -ENODEV);
    ck_assert_int_eq(chan_leak_check(stdout, NULL), -ENODEV);
    ck_assert_int_eq(chan_dump_enable(), 0);
    ck_assert_int_eq(chan_leftovers(NULL, NULL), 0);
    ck_assert_int_eq(chan_leak_check(stdout, NULL), 0); /* nothing printed */
}
END_TEST

/* ---- Waits on the world: an fd, a signal ---------------------------------------------------- */

static int wait_pipe[2];

/* A thread that waits for a pipe to be readable, with no cancel channel and no deadline: it
 * blocks in a select on io/'s fd channel (chan_io(3)), which only the fd's readiness wakes. */
static void *wait_fd(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)chan_fd_wait(wait_pipe[0], POLLIN, NULL, CHAN_FOREVER);
}

START_TEST(test_fd_wait_is_no_leak)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    ck_assert_int_eq(pipe(wait_pipe), 0);
    pthread_t t = spawn(wait_fd, NULL);
    wait_leftovers(1); /* a leftover: blocked on a channel */
    char *text;
    ck_assert_int_eq(leftovers_report(&text, NULL), 1);
    ck_assert_msg(strstr(text, " [select, ") && strstr(text, "\tchan (fd readable) 0x"), "%s",
                  text); /* not an anonymous channel: what it waits for */
    free(text);
    ck_assert_int_eq(count_leaks(NULL), 0); /* never leaked: the world may make the fd ready */
    ck_assert_int_eq(write(wait_pipe[1], "x", 1), 1);
    ck_assert_ptr_eq(join(t), (void *)(intptr_t)POLLIN);
    ck_assert_int_eq(chan_fd_close(wait_pipe[0]), 0);
    close(wait_pipe[0]);
    close(wait_pipe[1]);
}
END_TEST

/* A channel that chan_signal_notify registered is held by io/ while it stays registered: a
 * signal may come any time, so its receiver is not leaked. */
__attribute__((noinline)) static pthread_t block_on_signal_chan(void)
{
    chan_t *c = chan_make(sizeof(int), 1);
    keep(0, c);
    int sig = SIGUSR2;
    ck_assert_int_eq(chan_signal_notify(c, &sig, 1), 0);
    give(c);
    return spawn(recv_given, NULL);
}

START_TEST(test_signal_channel_keeps_alive)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    pthread_t t = block_on_signal_chan();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0); /* delivered: the receiver returns */
    join(t);
    ck_assert_int_eq(chan_signal_stop(take(0)), 0);
    ck_assert_int_eq(chan_free(take(0)), 0);
}
END_TEST

/* ---- A trace records each leak ------------------------------------------------------------- */

START_TEST(test_trace_records_a_leak)
{
    chan_dump_enable();
    char path[] = "/tmp/chan_leak_test.XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    pthread_t t = leaky_request();
    wait_leftovers(1);
    ck_assert_int_eq(chan_trace_start(path), 0);
    ck_assert_int_eq(count_leaks(NULL), 1);
    ck_assert_int_eq(chan_trace_stop(), 0);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    unlink(path);
    ck_assert_msg(strstr(buf, "\"name\":\"partial deadlock result\"") &&
                      strstr(buf, "\"op\":\"leak\",\"chan\":\"result\"") &&
                      strstr(buf, "\"waits\":\"send\""),
                  "%s", buf);
    release(0, t);
}
END_TEST

/* ---- CHAN_LEAKCHECK: this program, run again as a child ------------------------------------ */

/* The child: a leaked sender, then exit (CHAN_LEAKCHECK reports at exit) or SIGQUIT (the dump
 * thread reports, CHAN_DUMP=sigquit). */
static int child(const char *how)
{
    pthread_t t = leaky_request();
    if (!leftovers_reach(1))
        return 1;
    (void)t;
    scrub_stack();
    if (strcmp(how, "sigquit") == 0) {
        kill(getpid(), SIGQUIT);
        sleep_ms(2000); /* the dump thread prints meanwhile */
        _exit(0);       /* without the report at exit */
    }
    return 0;
}

static char *run_child(const char *env)
{
    char self[256];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert(n > 0);
    self[n] = 0;
    char cmd[800];
    snprintf(cmd, sizeof cmd, "%s '%s' 2>&1", env, self);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    static char out[65536];
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = 0;
    ck_assert_int_eq(pclose(p), 0);
    return out;
}

START_TEST(test_leakcheck_at_exit)
{
    char *out = run_child("CHAN_LEAKCHECK=1 CHAN_LEAK_TEST_CHILD=exit");
    ck_assert_msg(strstr(out, "leftover waiters: 0 goroutines and 1 thread blocked") &&
                      strstr(out, "partial deadlock: 1 of ") && strstr(out, "chan \"result\""),
                  "%s", out);
}
END_TEST

START_TEST(test_leakcheck_with_sigquit_dump)
{
    char *out = run_child("CHAN_LEAKCHECK=1 CHAN_DUMP=sigquit CHAN_LEAK_TEST_CHILD=sigquit");
    char *dump = strstr(out, "end of dump");
    ck_assert_msg(dump && strstr(dump, "partial deadlock: 1 of "), "%s", out);
}
END_TEST

/* In the child of a fork only the forking thread runs: the parent's leaked waiter, still
 * queued on the copied channel, is a leftover there, with the parent's thread id, and never
 * reported (its thread does not exist; its stack is the child's memory) (chan_leak(3)). */
START_TEST(test_fork_child_lists_but_never_reports_parents_waiters)
{
    chan_dump_enable();
    pthread_t t = leaky_request();
    wait_leftovers(1);
    ck_assert_int_eq(count_leaks(NULL), 1);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int left = chan_leftovers(NULL, NULL), leaks = count_leaks(NULL);
        _exit(left == 1 && leaks == 0 ? 0 : 10 + 3 * left + leaks);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
    ck_assert_int_eq(count_leaks(NULL), 1); /* the parent's is still leaked */
    release(0, t);
}
END_TEST

/* ---- The check's own memory, where another thread's was (TSan) -------------------------------
 *
 * The check keeps its arrays in mappings of its own. Memory that a thread wrote and that was
 * unmapped behind the sanitizer's back - as glibc unmaps the cached stack of a thread that has
 * ended, with no interceptor seeing it - keeps that thread's writes in TSan's shadow; a mapping
 * made there again by a raw mmap(2) inherits them, and TSan reported the check's first read of
 * its own fresh array as a data race with that thread (found by stress -G -L -D under TSan: a
 * race in scan_run with __tsan_stack_initialization of a finished thread). Here a thread writes
 * 1 MiB with no synchronization back to this one (a relaxed flag), the mapping goes with a raw
 * munmap, and the check's next mappings land in the hole: the TSan build must stay silent. */
static char *_Atomic stale;
static atomic_int stale_written;

static void *stale_writer(void *arg)
{
    (void)arg;
    char *p = atomic_load_explicit(&stale, memory_order_relaxed);
    for (size_t i = 0; i < (1u << 20); i += sizeof(long))
        *(volatile long *)(p + i) = (long)i;
    atomic_store_explicit(&stale_written, 1, memory_order_relaxed);
    return NULL;
}

START_TEST(test_check_maps_where_a_thread_wrote)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    chan_t *c = mk(0, 0);
    size_t len = 1u << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    atomic_store_explicit(&stale, p, memory_order_relaxed);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, stale_writer, NULL), 0);
    pthread_detach(th);
    while (!atomic_load_explicit(&stale_written, memory_order_relaxed))
        sched_yield();
    syscall(SYS_munmap, p, len); /* as glibc unmaps a dead thread's stack */
    /* The kernel places a new mapping in the highest gap that fits: fill the gaps above the
     * hole with pages of our own until one lands in it, so that the check's land there too. */
    for (int n = 0; n < (1 << 20); n++) {
        char *q = (char *)syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q == MAP_FAILED)
            break;
        if (q >= p && q < p + len) {
            syscall(SYS_munmap, q, 4096);
            break;
        }
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_ge(chan_leak_check(NULL, NULL), 0);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

int main(void)
{
    const char *how = getenv("CHAN_LEAK_TEST_CHILD");
    if (how)
        return child(how);
    Suite *s = suite_create("leak");
    ADD_TEST(s, test_leaked_sender_is_reported, 60);
    ADD_TEST(s, test_global_keeps_alive, 60);
    ADD_TEST(s, test_heap_struct_keeps_alive, 60);
    ADD_TEST(s, test_foreign_stack_keeps_alive, 60);
    ADD_TEST(s, test_thread_that_cannot_be_stopped, 60);
#if defined(__x86_64__)
    ADD_TEST(s, test_vector_registers_in_syscall_hide_no_leak, 60);
    ADD_TEST(s, test_vector_registers_of_a_running_thread_keep_alive, 60);
#endif
    ADD_TEST(s, test_pending_timer_keeps_alive, 60);
    ADD_TEST(s, test_context_keeps_alive, 60);
    ADD_TEST(s, test_waitgroup_keeps_alive, 60);
    ADD_TEST(s, test_tagged_block_and_thread_local_keep_alive, 60);
    ADD_TEST(s, test_deadline_is_no_leak, 60);
    ADD_TEST(s, test_buffer_keeps_alive, 60);
    ADD_TEST(s, test_fixed_point_through_a_waiter, 60);
    ADD_TEST(s, test_select_leak_and_filters, 60);
    ADD_TEST(s, test_select_with_nil_case_reads_select, 60);
    ADD_TEST(s, test_wait_on_no_channel_is_a_leak, 60);
    ADD_TEST(s, test_fd_wait_is_no_leak, 60);
    ADD_TEST(s, test_signal_channel_keeps_alive, 60);
    ADD_TEST(s, test_registry_off_is_enodev, 30);
    ADD_TEST(s, test_ignore_bad_list_and_unnamed_chans, 60);
    ADD_TEST(s, test_trace_records_a_leak, 60);
    ADD_TEST(s, test_leakcheck_at_exit, 60);
    ADD_TEST(s, test_leakcheck_with_sigquit_dump, 60);
    ADD_TEST(s, test_fork_child_lists_but_never_reports_parents_waiters, 60);
    ADD_TEST(s, test_check_maps_where_a_thread_wrote, 60);
    return run_suite(s);
}

#else /* libchan built without trace/ (no -DCHAN_TRACE_BUILD): nothing to test */

START_TEST(test_leak_not_built)
{
    printf("test_leak: libchan was built without trace/ (-DCHAN_TRACE_BUILD): skipped\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("leak");
    ADD_TEST(s, test_leak_not_built, 10);
    return run_suite(s);
}

#endif
