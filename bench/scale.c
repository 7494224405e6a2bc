/* SPDX-License-Identifier: MIT */
/*
 * scale.c - how libchan's cost grows: ns per operation against threads, Gs, select cases, live
 * timers, live channels and element size, and the floors of this machine to read them against
 * (a cache-line round trip between cores, memcpy, a random cache-line read). bench/scale.py runs
 * it beside its Go peer (bench/go-scale) and writes the table of bench/BENCH.md's "How cost
 * grows"; that section defines every series.
 *
 * Built twice from this file: build/plain/bench/scale (system=libchan: pthreads; every series
 * but gs and spawn) and, with -DBENCH_MPG, build/plain/bench/scale-mpg (system=libchan-mpg: gs
 * and spawn, on Gs of libchan's M:N scheduler, sched/).
 *
 *   scale SERIES X RUNS BUDGET_MS
 *
 * SERIES and X (what X counts):
 *   threads-c0, threads-c1024  X threads on one channel of capacity 0 or 1024: X/2 senders and
 *                              X/2 receivers (X = 1, capacity 1024: one thread that sends a
 *                              buffer-full, then receives it); op = one message
 *   gs                         X Gs in a ring of X unbuffered channels, one token going round;
 *                              op = one hop (a G receives the token and sends it to the next)
 *   spawn                      X Gs each starting Gs that do nothing, yielding after every 16;
 *                              op = one G started, run and ended
 *   select-ready               one thread, X channels of capacity 1: a send on one of them, then
 *                              a select over X receive cases, which takes it; op = send + select
 *   select-wake                X unbuffered channels; one thread sends on each in turn, another
 *                              selects over X receive cases; op = one message
 *   timers                     X live timers (deadlines 1-2 h away); op = re-arming a random one
 *                              of them to a new deadline 1-2 h away (chan_timer_reset)
 *   channels                   X live channels of capacity 1; op = a send and a receive on the
 *                              next of them in a random order fixed at the start
 *   elem-c0, elem-c64          spsc with X-byte elements on a channel of capacity 0 or 64; op =
 *                              one message (X = 8 ... 65535, CHAN_ELEMSIZE_MAX)
 *   floor-line                 two threads on two CPUs pass a cache line back and forth; op =
 *                              one round trip (X ignored)
 *   floor-memcpy               memcpy of X bytes between two buffers; op = one copy
 *   floor-touch                one read of a random cache line of an X x 256-byte block (about
 *                              what X channels of capacity 1 take); op = one read
 *
 * A point first calibrates (ops grow from a small count until one run takes 10 ms), makes one
 * untimed run of BUDGET_MS worth of operations (so that what a run grows, such as the pool of
 * Gs' stacks, is in place), then times RUNS such runs (gs: at least one lap of the ring), and
 * prints
 *
 *   scale system=libchan series=S x=X run=R ops=N value=NS unit=ns/op
 *
 * Set-up (making the threads, Gs, timers, channels) is outside the timed span: threads and Gs
 * read the clock themselves after a common start. Every run checks what arrived (sums); any
 * error exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "chan_time.h"
#define PROG "scale"
#include "benchutil.h" /* die, OK, make, check, sum_to, recv_sum, seq_rounds, num */

#ifdef BENCH_MPG
#include "sched/chan_sched_mpg.h"
#define SYSTEM "libchan-mpg"
#else
#define SYSTEM "libchan"
#endif

#define MAX_THREADS 64

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("malloc", ENOMEM);
    return p;
}

/* ---- The series: set up once per process, run many times, each run returns its ns --------- */

struct series {
    const char *name;
    void *(*setup)(uint64_t x);                          /* NULL: nothing to set up */
    int64_t (*run)(void *st, uint64_t x, uint64_t *ops); /* *ops may be rounded */
    uint64_t start_ops;                                  /* calibration starts here */
    void (*teardown)(void);                              /* NULL: nothing to undo */
};

#ifndef BENCH_MPG

/* Page-aligned: the buffers copied from and to. On this machine's CPU (AMD, glibc 2.36's memcpy
 * by rep movsb) a copy whose destination lies 1 to 63 bytes past its source, modulo 4 KiB, runs
 * ~25 times slower (1.8 against 50 GB/s at 4 KiB); aligned buffers keep every copy off it. */
static void *page_alloc(size_t n)
{
    void *p = aligned_alloc(4096, (n + 4095) / 4096 * 4096);
    if (!p)
        die("aligned_alloc", ENOMEM);
    return p;
}

/* xorshift64: the random indexes of the timers and channels series, cheap beside an operation. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* 0 .. x-1 in a random order, the same in every run (Fisher-Yates). */
static uint64_t *shuffled(uint64_t x)
{
    uint64_t seed = 0x2545f4914f6cdd1dULL, *o = xmalloc(x * sizeof *o);
    for (uint64_t i = 0; i < x; i++)
        o[i] = i;
    for (uint64_t i = x - 1; i > 0; i--) {
        uint64_t j = rnd(&seed) % (i + 1), t = o[i];
        o[i] = o[j];
        o[j] = t;
    }
    return o;
}

/* Keeps the compiler from dropping or merging work whose result is not otherwise used. */
static void keep(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* ---- Threads released together; each reads the clock itself ------------------------------- */

struct worker {
    void *(*fn)(void *);
    void *arg;
    pthread_t tid;
    int64_t t_start, t_end;
};

static struct worker workers[MAX_THREADS];
static int nworkers;
static pthread_barrier_t start_line;

static void *trampoline(void *p)
{
    struct worker *w = p;
    pthread_barrier_wait(&start_line);
    w->t_start = chan_now();
    w->fn(w->arg);
    w->t_end = chan_now();
    return NULL;
}

static void prepare(int threads)
{
    nworkers = 0;
    pthread_barrier_init(&start_line, NULL, (unsigned)threads + 1);
}

static void spawn(void *(*fn)(void *), void *arg)
{
    if (nworkers == MAX_THREADS)
        die("spawn", EAGAIN);
    struct worker *w = &workers[nworkers++];
    *w = (struct worker){.fn = fn, .arg = arg};
    int e = pthread_create(&w->tid, NULL, trampoline, w);
    if (e)
        die("pthread_create", e);
}

/* Releases the threads, joins them: from the first one's start to the last one's end. */
static int64_t go_and_join(void)
{
    pthread_barrier_wait(&start_line);
    int64_t first = INT64_MAX, last = 0;
    for (int i = 0; i < nworkers; i++) {
        pthread_join(workers[i].tid, NULL);
        if (workers[i].t_start < first)
            first = workers[i].t_start;
        if (workers[i].t_end > last)
            last = workers[i].t_end;
    }
    pthread_barrier_destroy(&start_line);
    return last - first;
}

/* ---- What one thread does: a channel, a count, a sum --------------------------------------- */

struct part {
    chan_t *c;
    chan_t **cs;
    size_t ncs;
    uint64_t count, base; /* a sender sends base, base + 1, ... base + count - 1 */
    size_t elemsize;
    uint64_t sum;
    char pad[64];
};

static void *sender(void *p)
{
    struct part *a = p;
    unsigned char *buf = page_alloc(a->elemsize);
    memset(buf, 0, a->elemsize);
    for (uint64_t i = 0; i < a->count; i++) {
        uint64_t v = a->base + i;
        memcpy(buf, &v, sizeof v);
        OK(chan_send(a->c, buf));
    }
    free(buf);
    return NULL;
}

static void *receiver(void *p)
{
    struct part *a = p;
    unsigned char *buf = page_alloc(a->elemsize);
    a->sum = recv_sum(a->c, a->count, buf);
    free(buf);
    return NULL;
}

/* One thread: a buffer-full in, then out, again and again (threads-c1024 at X = 1). */
static void *seq_thread(void *p)
{
    struct part *a = p;
    a->sum = seq_rounds(a->c, a->count);
    return NULL;
}

/* threads-cCAP: X/2 senders and X/2 receivers on one channel; X = 1: one thread, seq. */
static int64_t threads_run(size_t cap, uint64_t x, uint64_t *ops)
{
    chan_t *c = make(8, cap);
    struct part parts[MAX_THREADS];
    int64_t ns;
    if (x == 1) {
        if (cap == 0) {
            fprintf(stderr, "scale: threads-c0 needs at least 2 threads\n");
            exit(2);
        }
        uint64_t rounds = *ops / cap ? *ops / cap : 1;
        parts[0] = (struct part){.c = c, .count = rounds};
        prepare(1);
        spawn(seq_thread, &parts[0]);
        ns = go_and_join();
        check("threads", parts[0].sum, rounds * sum_to(cap));
        *ops = rounds * cap;
    } else {
        uint64_t pairs = x / 2, per = *ops / pairs ? *ops / pairs : 1;
        prepare((int)(2 * pairs));
        for (uint64_t i = 0; i < pairs; i++) {
            parts[i] = (struct part){.c = c, .count = per, .base = i * per, .elemsize = 8};
            spawn(sender, &parts[i]);
        }
        for (uint64_t i = 0; i < pairs; i++) {
            parts[pairs + i] = (struct part){.c = c, .count = per, .elemsize = 8};
            spawn(receiver, &parts[pairs + i]);
        }
        ns = go_and_join();
        uint64_t sum = 0;
        for (uint64_t i = 0; i < pairs; i++)
            sum += parts[pairs + i].sum;
        check("threads", sum, sum_to(pairs * per));
        *ops = pairs * per;
    }
    OK(chan_free(c));
    return ns;
}

static int64_t threads_c0(void *st, uint64_t x, uint64_t *ops)
{
    (void)st;
    return threads_run(0, x, ops);
}

static int64_t threads_c1024(void *st, uint64_t x, uint64_t *ops)
{
    (void)st;
    return threads_run(1024, x, ops);
}

/* select-ready: one thread; a value sent on channel i mod X, then a select over every channel
 * takes it. */
struct chans {
    chan_t **c;
    struct chan_case *cases;
    uint64_t *order;
    uint64_t v;
};

static void *chans_setup(uint64_t x, size_t cap, bool cases)
{
    struct chans *s = xmalloc(sizeof *s);
    s->c = xmalloc(x * sizeof *s->c);
    s->cases = cases ? xmalloc(x * sizeof *s->cases) : NULL;
    s->order = NULL;
    for (uint64_t i = 0; i < x; i++) {
        s->c[i] = make(8, cap);
        if (cases)
            s->cases[i] = (struct chan_case){.chan = s->c[i], .elem = &s->v, .dir = CHAN_RECV};
    }
    return s;
}

static void *select_ready_setup(uint64_t x) { return chans_setup(x, 1, true); }
static void *select_wake_setup(uint64_t x) { return chans_setup(x, 0, true); }

static int64_t select_ready(void *st, uint64_t x, uint64_t *ops)
{
    struct chans *s = st;
    uint64_t sum = 0;
    int64_t t0 = chan_now();
    for (uint64_t i = 0; i < *ops; i++) {
        uint64_t k = i % x;
        OK(chan_send(s->c[k], &i));
        int r = chan_select(s->cases, x);
        if (r != (int)k)
            die("chan_select took another case", r < 0 ? r : EPROTO);
        sum += s->v;
    }
    int64_t ns = chan_now() - t0;
    check("select-ready", sum, sum_to(*ops));
    return ns;
}

static void *wake_sender(void *p)
{
    struct part *a = p;
    for (uint64_t i = 0; i < a->count; i++)
        OK(chan_send(a->cs[i % a->ncs], &i));
    return NULL;
}

static void *wake_receiver(void *p)
{
    struct part *a = p;
    struct chans *s = (struct chans *)a->c; /* the set of channels and its cases */
    uint64_t sum = 0;
    for (uint64_t i = 0; i < a->count; i++) {
        int r = chan_select(s->cases, a->ncs);
        if (r < 0 || !s->cases[r].ok)
            die("chan_select (select-wake)", r < 0 ? r : EPIPE);
        sum += s->v;
    }
    a->sum = sum;
    return NULL;
}

static int64_t select_wake(void *st, uint64_t x, uint64_t *ops)
{
    struct chans *s = st;
    struct part tx = {.cs = s->c, .ncs = x, .count = *ops};
    struct part rx = {.c = (chan_t *)(void *)s, .ncs = x, .count = *ops};
    prepare(2);
    spawn(wake_sender, &tx);
    spawn(wake_receiver, &rx);
    int64_t ns = go_and_join();
    check("select-wake", rx.sum, sum_to(*ops));
    return ns;
}

/* timers: X live timers 1-2 h away; each op re-arms a random one 1-2 h away. */
#define HOUR (3600LL * 1000000000LL)

struct timers {
    chan_timer_t **t;
    uint64_t seed;
};

static void *timers_setup(uint64_t x)
{
    struct timers *s = xmalloc(sizeof *s);
    s->t = xmalloc(x * sizeof *s->t);
    s->seed = 0x9e3779b97f4a7c15ULL;
    for (uint64_t i = 0; i < x; i++) {
        s->t[i] = chan_timer_make(HOUR + (int64_t)(rnd(&s->seed) % (uint64_t)HOUR));
        if (!s->t[i])
            die("chan_timer_make", errno);
    }
    return s;
}

static int64_t timers_run(void *st, uint64_t x, uint64_t *ops)
{
    struct timers *s = st;
    int64_t t0 = chan_now();
    for (uint64_t i = 0; i < *ops; i++) {
        uint64_t r = rnd(&s->seed);
        int rc = chan_timer_reset(s->t[r % x], HOUR + (int64_t)((r >> 20) % (uint64_t)HOUR));
        if (rc != 1) /* 1: it was pending, and the reset stopped that firing */
            die("chan_timer_reset", rc < 0 ? rc : EPROTO);
    }
    return chan_now() - t0;
}

/* channels: X live channels of capacity 1; a send and a receive on each in a fixed random
 * order. */
static void *channels_setup(uint64_t x)
{
    struct chans *s = chans_setup(x, 1, false);
    s->order = shuffled(x);
    return s;
}

static int64_t channels_run(void *st, uint64_t x, uint64_t *ops)
{
    struct chans *s = st;
    uint64_t sum = 0, v;
    int64_t t0 = chan_now();
    for (uint64_t i = 0, k = 0; i < *ops; i++) {
        chan_t *c = s->c[s->order[k]];
        if (++k == x)
            k = 0;
        OK(chan_send(c, &i));
        OK(chan_recv(c, &v));
        sum += v;
    }
    int64_t ns = chan_now() - t0;
    check("channels", sum, sum_to(*ops));
    return ns;
}

/* elem-cCAP: spsc with X-byte elements. */
static int64_t elem_run(size_t cap, uint64_t x, uint64_t *ops)
{
    chan_t *c = make(x, cap);
    struct part tx = {.c = c, .count = *ops, .elemsize = x};
    struct part rx = {.c = c, .count = *ops, .elemsize = x};
    prepare(2);
    spawn(sender, &tx);
    spawn(receiver, &rx);
    int64_t ns = go_and_join();
    check("elem", rx.sum, sum_to(*ops));
    OK(chan_free(c));
    return ns;
}

static int64_t elem_c0(void *st, uint64_t x, uint64_t *ops)
{
    (void)st;
    return elem_run(0, x, ops);
}

static int64_t elem_c64(void *st, uint64_t x, uint64_t *ops)
{
    (void)st;
    return elem_run(64, x, ops);
}

/* ---- Floors --------------------------------------------------------------------------------- */

/* floor-line: a line passed back and forth between two threads on two CPUs (the first two the
 * process may use): the least an unbuffered hand-off between cores can cost per message. */
static _Alignas(128) _Atomic uint64_t line;

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause" ::: "memory");
#else
    __asm__ volatile("" ::: "memory");
#endif
}

struct liner {
    uint64_t rounds;
    int cpu;
    bool odd;
};

static void *line_thread(void *p)
{
    struct liner *l = p;
    if (l->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(l->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    for (uint64_t i = 0; i < l->rounds; i++) {
        uint64_t want = 2 * i + (l->odd ? 1 : 0);
        while (atomic_load_explicit(&line, memory_order_acquire) != want)
            relax();
        atomic_store_explicit(&line, want + 1, memory_order_release);
    }
    return NULL;
}

static int64_t floor_line(void *st, uint64_t x, uint64_t *ops)
{
    (void)st;
    (void)x;
    cpu_set_t set;
    int cpus[2] = {-1, -1}, n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
            if (CPU_ISSET(i, &set))
                cpus[n++] = i;
    if (n < 2) { /* no second CPU: no line to pass between cores */
        fprintf(stderr, "scale: floor-line: one CPU only, no floor measured\n");
        exit(0);
    }
    atomic_store(&line, 0);
    struct liner a = {*ops, cpus[0], false}, b = {*ops, cpus[1], true};
    prepare(2);
    spawn(line_thread, &a);
    spawn(line_thread, &b);
    return go_and_join();
}

/* floor-memcpy: X bytes from one buffer to another, again and again (both stay in cache up to
 * the L2's size: the copy's own speed, no memory traffic). */
struct copybuf {
    unsigned char *a, *b;
};

static void *copy_setup(uint64_t x)
{
    struct copybuf *s = xmalloc(sizeof *s);
    s->a = page_alloc(x);
    s->b = page_alloc(x);
    memset(s->a, 1, x);
    memset(s->b, 2, x);
    return s;
}

static int64_t floor_memcpy(void *st, uint64_t x, uint64_t *ops)
{
    struct copybuf *s = st;
    int64_t t0 = chan_now();
    for (uint64_t i = 0; i < *ops; i++) {
        memcpy(s->b, s->a, x);
        keep(s->b);
    }
    return chan_now() - t0;
}

/* floor-touch: one read of a random line of X x 256 bytes per op, in the channels series' order;
 * the reads are independent (as the channels series' operations are), so the CPU may overlap
 * their misses. */
#define TOUCH_STRIDE 256

struct touch {
    unsigned char *mem;
    uint64_t *order;
};

static void *touch_setup(uint64_t x)
{
    struct touch *s = xmalloc(sizeof *s);
    s->mem = xmalloc(x * TOUCH_STRIDE);
    memset(s->mem, 1, x * TOUCH_STRIDE);
    s->order = shuffled(x);
    return s;
}

static int64_t floor_touch(void *st, uint64_t x, uint64_t *ops)
{
    struct touch *s = st;
    uint64_t sum = 0;
    int64_t t0 = chan_now();
    for (uint64_t i = 0, k = 0; i < *ops; i++) {
        sum += s->mem[s->order[k] * TOUCH_STRIDE];
        if (++k == x)
            k = 0;
    }
    int64_t ns = chan_now() - t0;
    keep(&sum);
    return ns;
}

static const struct series all_series[] = {
    {"threads-c0", NULL, threads_c0, 1000, NULL},
    {"threads-c1024", NULL, threads_c1024, 1024, NULL},
    {"select-ready", select_ready_setup, select_ready, 100, NULL},
    {"select-wake", select_wake_setup, select_wake, 100, NULL},
    {"timers", timers_setup, timers_run, 1000, NULL},
    {"channels", channels_setup, channels_run, 1000, NULL},
    {"elem-c0", NULL, elem_c0, 1000, NULL},
    {"elem-c64", NULL, elem_c64, 1000, NULL},
    {"floor-line", NULL, floor_line, 1000, NULL},
    {"floor-memcpy", copy_setup, floor_memcpy, 1000, NULL},
    {"floor-touch", touch_setup, floor_touch, 1000, NULL},
};

#else /* BENCH_MPG */

/* gs: X Gs in a ring of X unbuffered channels. The token carries the hops still to go: the G
 * that receives 1 hands it to the main thread (a foreign thread) instead of passing it on. */
struct ring {
    chan_t **c;
    chan_t *done;
    uint64_t n;
};

static struct ring ring;

static void ring_g(void *p)
{
    uint64_t i = (uint64_t)(uintptr_t)p, v;
    chan_t *in = ring.c[i], *out = ring.c[(i + 1) % ring.n];
    int r;
    while ((r = chan_recv(in, &v)) == 0) {
        if (v == 1)
            OK(chan_send(ring.done, &v));
        else {
            v--;
            OK(chan_send(out, &v));
        }
    }
    if (r != -EPIPE)
        die("chan_recv (gs)", r);
}

static void *gs_setup(uint64_t x)
{
    ring.n = x;
    ring.c = xmalloc(x * sizeof *ring.c);
    for (uint64_t i = 0; i < x; i++)
        ring.c[i] = make(8, 0);
    ring.done = make(8, 1);
    OK(chan_mpg_foreign_enter()); /* the main thread sends the token and takes it back */
    for (uint64_t i = 0; i < x; i++) {
        int64_t id = chan_mpg_go(ring_g, (void *)(uintptr_t)i);
        if (id < 0)
            die("chan_mpg_go", (int)id);
    }
    return &ring;
}

static void gs_teardown(void)
{
    for (uint64_t i = 0; i < ring.n; i++)
        OK(chan_close(ring.c[i]));
    chan_mpg_foreign_leave();
    OK(chan_mpg_wait());
    for (uint64_t i = 0; i < ring.n; i++)
        OK(chan_free(ring.c[i]));
    OK(chan_free(ring.done));
    free(ring.c);
}

static int64_t gs_run(void *st, uint64_t x, uint64_t *ops)
{
    (void)st;
    (void)x;
    uint64_t v = *ops;
    int64_t t0 = chan_now();
    OK(chan_send(ring.c[0], &v));
    OK(chan_recv(ring.done, &v));
    int64_t ns = chan_now() - t0;
    check("gs", v, 1);
    return ns;
}

/* spawn: X spawner Gs each start ops/X Gs that do nothing and return, yielding after every 16
 * so that those run meanwhile, here or on another P (else the Gs started would pile up, each
 * with a stack of its own); timed until every G has ended. */
static void spawn_nothing(void *p) { (void)p; }

static void spawn_loop(void *p)
{
    for (uintptr_t i = 1, n = (uintptr_t)p; i <= n; i++) {
        int64_t id = chan_mpg_go(spawn_nothing, NULL);
        if (id < 0)
            die("chan_mpg_go (spawn)", (int)id);
        if (i % 16 == 0)
            chan_mpg_yield();
    }
}

static int64_t spawn_run(void *st, uint64_t x, uint64_t *ops)
{
    (void)st;
    uint64_t per = (*ops + x - 1) / x;
    *ops = per * x;
    int64_t t0 = chan_now();
    for (uint64_t i = 0; i < x; i++) {
        int64_t id = chan_mpg_go(spawn_loop, (void *)(uintptr_t)per);
        if (id < 0)
            die("chan_mpg_go (spawn)", (int)id);
    }
    OK(chan_mpg_wait());
    return chan_now() - t0;
}

static const struct series all_series[] = {
    {"gs", gs_setup, gs_run, 1000, gs_teardown},
    {"spawn", NULL, spawn_run, 1000, NULL},
};
#endif

/* ---- Driver ---------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: scale SERIES X RUNS BUDGET_MS\n");
        return 2;
    }
    const struct series *s = NULL;
    for (size_t i = 0; i < sizeof all_series / sizeof all_series[0]; i++)
        if (strcmp(argv[1], all_series[i].name) == 0)
            s = &all_series[i];
    if (!s) {
        fprintf(stderr, "scale: unknown series '%s' for " SYSTEM "\n", argv[1]);
        return 2;
    }
    uint64_t x = num(argv[2], "X");
    int runs = (int)num(argv[3], "RUNS");
    int64_t budget = (int64_t)num(argv[4], "BUDGET_MS") * 1000000LL;
    if (x < 1 || (strncmp(s->name, "threads", 7) == 0 && x > MAX_THREADS) ||
        (strncmp(s->name, "elem", 4) == 0 && x > CHAN_ELEMSIZE_MAX) ||
        (strncmp(s->name, "select", 6) == 0 && x > CHAN_SELECT_MAX)) {
        fprintf(stderr, "scale: X=%llu out of range for %s\n", (unsigned long long)x, s->name);
        return 2;
    }
#ifdef BENCH_MPG
    OK(chan_mpg_start(0));
#endif
    void *st = s->setup ? s->setup(x) : NULL;
    /* Calibrate: grow ops until one run takes 10 ms; then each run is worth the budget. */
    uint64_t ops = s->start_ops, k;
#ifdef BENCH_MPG
    if (ops < x)
        ops = x; /* gs: at least one lap, so that every G of the ring is woken */
#endif
    int64_t el;
    for (;;) {
        k = ops;
        el = s->run(st, x, &k);
        if (el >= 10000000 || budget == 0)
            break;
        ops *= 4;
    }
    double per = (double)el / (double)k;
    uint64_t target = budget ? (uint64_t)((double)budget / per) : ops;
    if (target < 1)
        target = 1;
#ifdef BENCH_MPG
    if (target < x)
        target = x;
#endif
    k = target; /* one untimed run of the timed size: what it grows (Gs' stacks) is in place */
    s->run(st, x, &k);
    for (int r = 1; r <= runs; r++) {
        k = target;
        el = s->run(st, x, &k);
        printf("scale system=" SYSTEM " series=%s x=%llu run=%d ops=%llu value=%.2f unit=ns/op\n",
               s->name, (unsigned long long)x, r, (unsigned long long)k, (double)el / (double)k);
        fflush(stdout);
    }
    if (s->teardown)
        s->teardown();
#ifdef BENCH_MPG
    OK(chan_mpg_stop());
#endif
    return 0;
}
