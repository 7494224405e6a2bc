/* SPDX-License-Identifier: MIT */
/*
 * bench.c - libchan's benchmark harness: the shapes of bench/BENCH.md on libchan and pthreads,
 * with hwloc placing the threads. The same shapes are written for Go (bench/go) and for Rust's
 * crossbeam-channel (bench/rust); bench/run.py runs them all and prints one table.
 *
 * Built twice from this file: build/plain/bench/bench (system=libchan: each worker a pthread)
 * and, with -DBENCH_MPG, build/plain/bench/bench-mpg (system=libchan-mpg: each worker a G of
 * libchan's M:N scheduler, sched/). The shapes are the same code; only the four helpers that
 * start and join the workers (prepare, spawn, go, join_all) and idle_cpu's clock differ.
 *
 *   bench SHAPE|all CAP N RUNS BUDGET_MS     one shape at capacity CAP, or every shape at its
 *                                            default capacities ("all": CAP is ignored)
 *   bench place                              the CPU sets PLACE= gives senders and receivers
 *   PLACE=none|spread|compact (environment)  none: the OS decides; spread: senders on the first
 *                                            half of the cores, receivers on the other half;
 *                                            compact: every thread on core 0
 *                                            (bench-mpg: Gs are not placed, nor are the Ms, as
 *                                            Go's; compact: one P, every thread on core 0)
 *
 * Each shape moves about N messages of 8 bytes (size64/size1024: 64 and 1024 bytes). It first
 * warms up and calibrates (n grows from 1000 until one run takes 20 ms or reaches N), then runs
 * RUNS times with min(N, what BUDGET_MS allows at the calibrated speed) messages (BUDGET_MS 0:
 * always N). BENCH_COLD=1 in the environment skips the warm-up and the calibration: RUNS runs of
 * N each, so that run 1 is the first channel work of a fresh process (the "cold" start) and the
 * runs after it the same work warm. Every run checks that each value arrived, and prints one
 * line:
 *
 *   bench system=libchan shape=S cap=C run=R n=MSGS value=NS unit=ns/msg    (or libchan-mpg)
 *
 * followed by cpu= (CPU time of the whole process per message, ns: spinning shows here),
 * vcsw= (voluntary context switches per message: each is a thread that blocked in the kernel,
 * as in a futex wait; sched_yield is not counted) and ivcsw= (involuntary ones: a thread
 * preempted by the kernel, by another thread of the machine or of this process). Built with
 * -DCHAN_COUNTERS against a MODE=counters library, it adds each event counter of seam.h per
 * message (c.NAME=X; the sum over every thread during the timed run). pingpong: per round
 * trip; idle_cpu: unit=%cpu. goroutines is the exception: CAP is the number of Gs (threads on
 * the pthread harness, at most 10,000), N is ignored, nothing is calibrated, and every run is
 * timed: unit=ns/G, and the first run of the process adds bytes_per_g= (its peak RSS over the
 * RSS before, per G). The process ends with "rss system=libchan maxrss_kib=K" (peak RSS: VmHWM;
 * see status_kib). Exit 1 on any error.
 * bench-mpg's first line also gives the scheduler's Ps (info ... nprocs=P); its idle_cpu is the
 * whole process's CPU (a G has no CPU clock of its own).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "chan.h"
#define PROG "bench"
#include "benchutil.h" /* die, OK, make, check, sum_to, recv_sum, seq_rounds, num */
#ifdef CHAN_COUNTERS
#include "seam.h" /* the event counters of the instrumentation build (make MODE=counters) */
#endif

#ifdef BENCH_MPG
#include "sched/chan_sched_mpg.h"
#define SYSTEM "libchan-mpg"
#else
#define SYSTEM "libchan"
#endif

#define PRODUCERS 4 /* mpsc, mpmc, select_*: senders (and receivers: mpmc, select_both) */
#define POOL_WORKERS 8
#define POOL_RESULTS_CAP 1024
#define MAX_ELEM 1024
#define MAX_THREADS 16

/* ---- Placement (hwloc) ----------------------------------------------------------------------- */

enum role { TX, RX };

static hwloc_topology_t topo;
static hwloc_bitmap_t place_set[2]; /* per role; NULL: PLACE=none, the OS decides */
static const char *place_name = "none";

static void place_init(void)
{
    const char *p = getenv("PLACE");
    place_name = p && *p ? p : "none";
    if (strcmp(place_name, "none") != 0 && strcmp(place_name, "spread") != 0 &&
        strcmp(place_name, "compact") != 0) {
        fprintf(stderr, "bench: PLACE must be none, spread or compact, not '%s'\n", place_name);
        exit(2);
    }
    if (hwloc_topology_init(&topo) < 0 || hwloc_topology_load(topo) < 0)
        die("hwloc topology", errno);
    if (strcmp(place_name, "none") == 0)
        return;
    hwloc_obj_type_t type = HWLOC_OBJ_CORE;
    int ncores = hwloc_get_nbobjs_by_type(topo, type);
    if (ncores <= 0) {
        type = HWLOC_OBJ_PU;
        ncores = hwloc_get_nbobjs_by_type(topo, type);
    }
    int half = ncores >= 2 ? ncores / 2 : 1;
    for (int r = TX; r <= RX; r++)
        place_set[r] = hwloc_bitmap_alloc();
    for (int i = 0; i < ncores; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, (unsigned)i);
        if (strcmp(place_name, "compact") == 0) {
            if (i == 0) {
                hwloc_bitmap_or(place_set[TX], place_set[TX], o->cpuset);
                hwloc_bitmap_or(place_set[RX], place_set[RX], o->cpuset);
            }
        } else {
            int r = (i < half) ? TX : RX;
            hwloc_bitmap_or(place_set[r], place_set[r], o->cpuset);
            if (ncores == 1)
                hwloc_bitmap_or(place_set[RX], place_set[RX], o->cpuset);
        }
    }
}

static void bind_role(enum role r)
{
    if (place_set[r] && hwloc_set_cpubind(topo, place_set[r], HWLOC_CPUBIND_THREAD) < 0)
        die("hwloc_set_cpubind", errno);
}

#ifndef BENCH_MPG

/* The calling thread back to the whole machine (after main has worked as a sender). */
static void unbind(void)
{
    if (place_set[TX])
        hwloc_set_cpubind(topo, hwloc_topology_get_complete_cpuset(topo), HWLOC_CPUBIND_THREAD);
}
#endif

static char *set_str(enum role r)
{
    char *s = NULL;
    if (!place_set[r])
        return strdup("all");
    hwloc_bitmap_list_asprintf(&s, place_set[r]);
    return s;
}

/* ---- Workers: created, placed, then released together ------------------------------------- */

struct worker {
    void *(*fn)(void *);
    void *arg;
    enum role role;
    pthread_t tid;          /* pthreads only */
    int64_t t_start, t_end; /* released; done */
};

static struct worker workers[MAX_THREADS];
static int nworkers;

static struct worker *new_worker(void *(*fn)(void *), void *arg, enum role role)
{
    if (nworkers == MAX_THREADS)
        die("spawn", EAGAIN);
    struct worker *w = &workers[nworkers++];
    *w = (struct worker){fn, arg, role, 0, 0, 0};
    return w;
}

/* The time from the first worker's start to the last one's end. A run is timed by the workers
 * themselves: the main thread may come back from go() after they are done. */
static int64_t span(void)
{
    int64_t first = INT64_MAX, last = 0;
    for (int i = 0; i < nworkers; i++) {
        if (workers[i].t_start < first)
            first = workers[i].t_start;
        if (workers[i].t_end > last)
            last = workers[i].t_end;
    }
    return last - first;
}

#ifndef BENCH_MPG
/* libchan: each worker a pthread, placed (bind_role), released at a barrier. */

static pthread_barrier_t start;

static void *trampoline(void *p)
{
    struct worker *w = p;
    bind_role(w->role);
    pthread_barrier_wait(&start);
    w->t_start = chan_now();
    void *r = w->fn(w->arg);
    w->t_end = chan_now();
    return r;
}

static void spawn(void *(*fn)(void *), void *arg, enum role role)
{
    struct worker *w = new_worker(fn, arg, role);
    int e = pthread_create(&w->tid, NULL, trampoline, w);
    if (e)
        die("pthread_create", e);
}

/* Releases the spawned threads. */
static void go(void) { pthread_barrier_wait(&start); }

/* Joins them; the time from the first thread's start to the last one's end. */
static int64_t join_all(void)
{
    for (int i = 0; i < nworkers; i++)
        pthread_join(workers[i].tid, NULL);
    int64_t ns = span();
    nworkers = 0;
    pthread_barrier_destroy(&start);
    return ns;
}

static void prepare(int threads)
{
    nworkers = 0;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
}

#else
/* libchan-mpg: each worker a G (chan_mpg_go), not placed (the scheduler chooses its M, the
 * kernel the M's core, as for goroutines). A G must never wait in a pthread primitive (it would
 * hold its M), so the barrier is a channel: each G receives from `start` and go() closes it. The
 * main thread is a foreign thread that wakes Gs (the close), so it is announced
 * (chan_mpg_foreign_enter) from prepare() to join_all(), which then waits for every G to return
 * (chan_mpg_wait). */

static chan_t *start;

static void g_trampoline(void *p)
{
    struct worker *w = p;
    int r = chan_recv(start, NULL); /* nothing is ever sent: -EPIPE once go() closes it */
    if (r != -EPIPE)
        die("chan_recv (start)", r ? r : EPROTO);
    w->t_start = chan_now();
    w->fn(w->arg);
    w->t_end = chan_now();
}

static void spawn(void *(*fn)(void *), void *arg, enum role role)
{
    struct worker *w = new_worker(fn, arg, role);
    int64_t id = chan_mpg_go(g_trampoline, w);
    if (id < 0)
        die("chan_mpg_go", (int)id);
}

/* Releases the spawned Gs. */
static void go(void) { OK(chan_close(start)); }

/* Waits for every G to return; the time from the first G's start to the last one's end. */
static int64_t join_all(void)
{
    chan_mpg_foreign_leave();
    OK(chan_mpg_wait()); /* -EDEADLK (report on stderr) would be a bug of a shape or of sched/ */
    int64_t ns = span();
    nworkers = 0;
    OK(chan_free(start));
    start = NULL;
    return ns;
}

static void prepare(int threads)
{
    (void)threads;
    nworkers = 0;
    start = make(0, 0);
    OK(chan_mpg_foreign_enter()); /* before any G can wait on the main thread */
}
#endif

/* A line of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), or -1. The peak RSS printed at the
 * end is VmHWM, not getrusage's ru_maxrss: Linux carries that maximum across execve, so it would
 * count the process that forked this one (a driver written in Python) in every figure. It is
 * printed beside, for reference. */
static long status_kib(const char *key)
{
    char line[256];
    size_t len = strlen(key);
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, len) == 0) {
            kib = strtol(line + len, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* ---- The shapes. Each returns the messages (pingpong: round trips) it moved and sets *ns. --- */

/* What one thread does in a shape: its channels, how many operations, and its checksum. */
struct part {
    chan_t *c;
    chan_t *cs[PRODUCERS];
    uint64_t count;
    size_t elemsize;
    uint64_t sum;
    char pad[64]; /* parts sit in arrays: keep their sums off each other's cache line */
};

static void *sender(void *p)
{
    struct part *a = p;
    unsigned char buf[MAX_ELEM] = {0};
    for (uint64_t i = 0; i < a->count; i++) {
        memcpy(buf, &i, sizeof i);
        OK(chan_send(a->c, buf));
    }
    return NULL;
}

static void *receiver(void *p)
{
    struct part *a = p;
    unsigned char buf[MAX_ELEM];
    a->sum = recv_sum(a->c, a->count, buf);
    return NULL;
}

static void *seq_thread(void *p)
{
    struct part *a = p;
    a->sum = seq_rounds(a->c, a->count);
    return NULL;
}

static uint64_t seq(size_t cap, uint64_t n, int64_t *ns)
{
    if (cap == 0) {
        fprintf(stderr, "bench: seq needs a buffered channel\n");
        exit(2);
    }
    uint64_t rounds = n / cap ? n / cap : 1;
    struct part a = {.c = make(8, cap), .count = rounds};
    prepare(1);
    spawn(seq_thread, &a, TX);
    go();
    *ns = join_all();
    check("seq", a.sum, rounds * sum_to(cap));
    OK(chan_free(a.c));
    return rounds * cap;
}

static uint64_t spsc_of(size_t elemsize, size_t cap, uint64_t n, int64_t *ns)
{
    chan_t *c = make(elemsize, cap);
    struct part tx = {.c = c, .count = n}, rx = {.c = c, .count = n};
    prepare(2);
    spawn(sender, &tx, TX);
    spawn(receiver, &rx, RX);
    go();
    *ns = join_all();
    check("spsc", rx.sum, sum_to(n));
    OK(chan_free(c));
    return n;
}

static uint64_t spsc(size_t cap, uint64_t n, int64_t *ns) { return spsc_of(8, cap, n, ns); }
static uint64_t size64(size_t cap, uint64_t n, int64_t *ns) { return spsc_of(64, cap, n, ns); }
static uint64_t size1024(size_t cap, uint64_t n, int64_t *ns) { return spsc_of(1024, cap, n, ns); }

/* mpsc (receivers 1) and mpmc (receivers PRODUCERS): PRODUCERS senders of per values each. */
static uint64_t multi(size_t cap, uint64_t n, int receivers, int64_t *ns, const char *what)
{
    uint64_t per = n / PRODUCERS ? n / PRODUCERS : 1, total = per * PRODUCERS;
    chan_t *c = make(8, cap);
    struct part tx[PRODUCERS], rx[PRODUCERS];
    prepare(PRODUCERS + receivers);
    for (int i = 0; i < PRODUCERS; i++) {
        tx[i] = (struct part){.c = c, .count = per};
        spawn(sender, &tx[i], TX);
    }
    for (int i = 0; i < receivers; i++) {
        rx[i] = (struct part){.c = c, .count = total / (uint64_t)receivers};
        spawn(receiver, &rx[i], RX);
    }
    go();
    *ns = join_all();
    uint64_t sum = 0;
    for (int i = 0; i < receivers; i++)
        sum += rx[i].sum;
    check(what, sum, PRODUCERS * sum_to(per));
    OK(chan_free(c));
    return total;
}

static uint64_t mpsc(size_t cap, uint64_t n, int64_t *ns) { return multi(cap, n, 1, ns, "mpsc"); }
static uint64_t mpmc(size_t cap, uint64_t n, int64_t *ns)
{
    return multi(cap, n, PRODUCERS, ns, "mpmc");
}

static void *select_receiver(void *p)
{
    struct part *a = p;
    uint64_t v, s = 0;
    struct chan_case cases[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        cases[i] = (struct chan_case){.chan = a->cs[i], .elem = &v, .dir = CHAN_RECV};
    for (uint64_t i = 0; i < a->count; i++) {
        int k = chan_select(cases, PRODUCERS);
        if (k < 0)
            die("chan_select (recv)", k);
        if (!cases[k].ok)
            die("chan_select (recv): closed", EPIPE);
        s += v;
    }
    a->sum = s;
    return NULL;
}

static void *select_sender(void *p)
{
    struct part *a = p;
    uint64_t v;
    struct chan_case cases[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        cases[i] = (struct chan_case){.chan = a->cs[i], .elem = &v, .dir = CHAN_SEND};
    for (uint64_t i = 0; i < a->count; i++) {
        v = i;
        int k = chan_select(cases, PRODUCERS);
        if (k < 0)
            die("chan_select (send)", k);
        if (!cases[k].ok)
            die("chan_select (send): closed", EPIPE);
    }
    return NULL;
}

/* select_rx: PRODUCERS senders each on its own channel, one receiver selecting over all;
 * select_both: PRODUCERS senders selecting over the channels, PRODUCERS receivers too. */
static uint64_t selects(size_t cap, uint64_t n, bool both, int64_t *ns)
{
    uint64_t per = n / PRODUCERS ? n / PRODUCERS : 1, total = per * PRODUCERS;
    chan_t *cs[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        cs[i] = make(8, cap);
    struct part tx[PRODUCERS], rx[PRODUCERS];
    int receivers = both ? PRODUCERS : 1;
    prepare(PRODUCERS + receivers);
    for (int i = 0; i < PRODUCERS; i++) {
        tx[i] = (struct part){.c = cs[i], .count = per};
        memcpy(tx[i].cs, cs, sizeof cs);
        spawn(both ? select_sender : sender, &tx[i], TX);
    }
    for (int i = 0; i < receivers; i++) {
        rx[i] = (struct part){.count = total / (uint64_t)receivers};
        memcpy(rx[i].cs, cs, sizeof cs);
        spawn(select_receiver, &rx[i], RX);
    }
    go();
    *ns = join_all();
    uint64_t sum = 0;
    for (int i = 0; i < receivers; i++)
        sum += rx[i].sum;
    check(both ? "select_both" : "select_rx", sum, PRODUCERS * sum_to(per));
    for (int i = 0; i < PRODUCERS; i++)
        OK(chan_free(cs[i]));
    return total;
}

static uint64_t select_rx(size_t cap, uint64_t n, int64_t *ns)
{
    return selects(cap, n, false, ns);
}
static uint64_t select_both(size_t cap, uint64_t n, int64_t *ns)
{
    return selects(cap, n, true, ns);
}

/* pingpong: one value bounced between two threads over two channels of capacity cap (0 by
 * default); n round trips. */
static void *pinger(void *p)
{
    struct part *a = p;
    uint64_t v, s = 0;
    for (uint64_t i = 0; i < a->count; i++) {
        OK(chan_send(a->cs[0], &i));
        OK(chan_recv(a->cs[1], &v));
        s += v;
    }
    a->sum = s;
    return NULL;
}

static void *ponger(void *p)
{
    struct part *a = p;
    uint64_t v;
    for (uint64_t i = 0; i < a->count; i++) {
        OK(chan_recv(a->cs[0], &v));
        v++;
        OK(chan_send(a->cs[1], &v));
    }
    return NULL;
}

static uint64_t pingpong(size_t cap, uint64_t n, int64_t *ns)
{
    struct part a = {.count = n}, b;
    a.cs[0] = make(8, cap);
    a.cs[1] = make(8, cap);
    b = a;
    prepare(2);
    spawn(pinger, &a, TX);
    spawn(ponger, &b, RX);
    go();
    *ns = join_all();
    check("pingpong", a.sum, sum_to(n) + n);
    OK(chan_free(a.cs[0]));
    OK(chan_free(a.cs[1]));
    return n;
}

/* pool: 1 producer, POOL_WORKERS workers on one channel of capacity cap (0 by default), results
 * fanned in on a channel of capacity POOL_RESULTS_CAP that the main thread drains. */
static void *producer(void *p)
{
    struct part *a = p;
    for (uint64_t i = 0; i < a->count; i++)
        OK(chan_send(a->cs[0], &i));
    OK(chan_close(a->cs[0])); /* the workers' loops end */
    return NULL;
}

static void *pool_worker(void *p)
{
    struct part *a = p;
    uint64_t j;
    int r;
    while ((r = chan_recv(a->cs[0], &j)) == 0) {
        j *= 2;
        OK(chan_send(a->cs[1], &j));
    }
    if (r != -EPIPE)
        die("chan_recv (pool)", r);
    return NULL;
}

/* What the main thread (Go: the main goroutine) does in pool: receive the n results. */
struct drain {
    chan_t *c;
    uint64_t n, sum;
    int64_t t0, t1; /* its start; every result in (the workers only have to see the close) */
};

static void *pool_drain(void *p)
{
    struct drain *d = p;
    uint64_t v;
    d->t0 = chan_now();
    for (uint64_t i = 0; i < d->n; i++) {
        OK(chan_recv(d->c, &v));
        d->sum += v;
    }
    d->t1 = chan_now();
    return NULL;
}

static uint64_t pool(size_t cap, uint64_t n, int64_t *ns)
{
    struct part a = {.count = n};
    a.cs[0] = make(8, cap);
    a.cs[1] = make(8, POOL_RESULTS_CAP);
    struct drain d = {.c = a.cs[1], .n = n};
#ifdef BENCH_MPG
    /* On Gs the main thread's part is a G, as in Go's program, where the main goroutine drains:
     * a foreign thread waking Gs would add a thread to the scheduler's and a futex wake-up
     * whenever it catches up. */
    prepare(2 + POOL_WORKERS);
    spawn(producer, &a, TX);
    for (int i = 0; i < POOL_WORKERS; i++)
        spawn(pool_worker, &a, RX);
    spawn(pool_drain, &d, TX);
    go();
    join_all();
#else
    prepare(1 + POOL_WORKERS);
    spawn(producer, &a, TX);
    for (int i = 0; i < POOL_WORKERS; i++)
        spawn(pool_worker, &a, RX);
    bind_role(TX);
    go();
    pool_drain(&d);
    join_all();
    unbind();
#endif
    /* the producer may have started before the drain came back from the barrier */
    int64_t first = workers[0].t_start < d.t0 ? workers[0].t_start : d.t0;
    *ns = d.t1 - first;
    uint64_t sum = d.sum;
    check("pool", sum, 2 * sum_to(n));
    OK(chan_free(a.cs[0]));
    OK(chan_free(a.cs[1]));
    return n;
}

/* ---- goroutines: what a G costs -------------------------------------------------------------- */

/* cap Gs (libchan: threads) each block receiving from one unbuffered channel; once every one has
 * started, the main thread closes the channel, which wakes them all, and each returns. The time
 * is from the first spawn to the last return, per G. The memory is the rise of the peak RSS over
 * the RSS before the first spawn, per G: every G is alive at the peak (none returns before the
 * close), so it is what a parked G costs. That holds for a fresh process only (a pool of stacks
 * already resident costs nothing more), so run() prints it for the first run alone. */
#define GOROUTINES_THREADS_MAX 10000 /* threads: each stack and its guard are two mappings */

struct gs {
    chan_t *c;     /* every G receives from it; closed to wake them all */
    chan_t *ready; /* capacity 1: the last G to start sends once */
    uint64_t n;
    _Atomic uint64_t started;
};

static double gs_bytes_per_g; /* of the last goroutines run */

static void gs_park(struct gs *s)
{
    if (atomic_fetch_add(&s->started, 1) + 1 == s->n)
        OK(chan_send(s->ready, NULL));
    int r = chan_recv(s->c, NULL); /* nothing is ever sent: -EPIPE once it is closed */
    if (r != -EPIPE)
        die("chan_recv (goroutines)", r ? r : EPROTO);
}

#ifdef BENCH_MPG
static void g_parker(void *p) { gs_park(p); }
#else
static void *t_parker(void *p)
{
    gs_park(p);
    return NULL;
}
#endif

static uint64_t goroutines(size_t cap, uint64_t n, int64_t *ns)
{
    (void)n; /* cap is the number of Gs */
    if (cap == 0) {
        fprintf(stderr, "bench: goroutines needs CAP, the number of Gs, > 0\n");
        exit(2);
    }
    struct gs s = {.c = make(0, 0), .ready = make(0, 1), .n = cap};
    long rss0 = status_kib("VmRSS:");
#ifdef BENCH_MPG
    OK(chan_mpg_foreign_enter()); /* this thread wakes the Gs */
    int64_t t0 = chan_now();
    for (size_t i = 0; i < cap; i++) {
        int64_t id = chan_mpg_go(g_parker, &s);
        if (id < 0)
            die("chan_mpg_go", (int)id);
    }
    OK(chan_recv(s.ready, NULL));
    OK(chan_close(s.c));
    chan_mpg_foreign_leave();
    OK(chan_mpg_wait());
    *ns = chan_now() - t0;
#else
    if (cap > GOROUTINES_THREADS_MAX) {
        fprintf(stderr,
                "bench: goroutines on threads: at most %d (a thread's stack and its guard "
                "page are two of the process's mappings, vm.max_map_count)\n",
                GOROUTINES_THREADS_MAX);
        exit(2);
    }
    pthread_t *t = malloc(cap * sizeof *t);
    if (!t)
        die("malloc", ENOMEM);
    int64_t t0 = chan_now();
    for (size_t i = 0; i < cap; i++) {
        int e = pthread_create(&t[i], NULL, t_parker, &s);
        if (e)
            die("pthread_create", e);
    }
    OK(chan_recv(s.ready, NULL));
    OK(chan_close(s.c));
    for (size_t i = 0; i < cap; i++)
        pthread_join(t[i], NULL);
    *ns = chan_now() - t0;
    free(t);
#endif
    long hwm = status_kib("VmHWM:");
    gs_bytes_per_g = rss0 < 0 || hwm < 0 ? -1 : (double)(hwm - rss0) * 1024 / (double)cap;
    check("goroutines", atomic_load(&s.started), cap);
    OK(chan_free(s.c));
    OK(chan_free(s.ready));
    return cap;
}

/* ---- idle_cpu: what a thread blocked in chan_recv, with nothing to receive, costs ------------ */

/* libchan: the idler is a pthread, measured on its own CPU clock. libchan-mpg: the idler is a G,
 * which has no CPU clock of its own (it may resume on another M): the whole process's CPU time
 * is measured instead, every M included (as for the Go and crossbeam programs). */
#ifdef BENCH_MPG
#define IDLE_WHOLE_WAIT "whole_wait_process_cpu"
#else
#define IDLE_WHOLE_WAIT "whole_wait_rusage_thread"
#endif

struct idler {
    chan_t *c;
    _Atomic int waiting;
    double whole_wait_pct; /* the idler's CPU time over its whole wait (see IDLE_WHOLE_WAIT) */
};

static int64_t tv_ns(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
}

static int64_t idler_cpu_ns(void)
{
    struct rusage ru;
#ifdef BENCH_MPG
    getrusage(RUSAGE_SELF, &ru);
#else
    getrusage(RUSAGE_THREAD, &ru);
#endif
    return tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime);
}

static void *idler(void *p)
{
    struct idler *d = p;
    uint64_t v;
    int64_t c0 = idler_cpu_ns(), t0 = chan_now();
    atomic_store(&d->waiting, 1);
    int r = chan_recv(d->c, &v); /* nothing comes: the main thread closes c after the window */
    int64_t c1 = idler_cpu_ns(), t1 = chan_now();
    if (r != -EPIPE)
        die("chan_recv (idle_cpu)", r);
    d->whole_wait_pct = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
    return NULL;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* After the idler has waited 1 ms, its CPU clock (the kernel's accounting behind RUSAGE_THREAD,
 * read from outside through pthread_getcpuclockid; libchan-mpg: the process's CPU clock) over
 * window_ns of wall time, in percent. */
static double idle_cpu(int64_t window_ns, double *whole_wait_pct)
{
    struct idler d = {.c = make(8, 0)};
    clockid_t cid = CLOCK_PROCESS_CPUTIME_ID;
    struct timespec a, b;
#ifdef BENCH_MPG
    prepare(1);
    spawn(idler, &d, RX);
    go();
#else
    pthread_t t;
    int e = pthread_create(&t, NULL, idler, &d);
    if (e)
        die("pthread_create", e);
#endif
    while (!atomic_load(&d.waiting))
        sleep_ns(100000);
    sleep_ns(1000000);
#ifndef BENCH_MPG
    if ((e = pthread_getcpuclockid(t, &cid)) != 0)
        die("pthread_getcpuclockid", e);
#endif
    int64_t t0 = chan_now();
    clock_gettime(cid, &a);
    sleep_ns(window_ns);
    clock_gettime(cid, &b);
    int64_t t1 = chan_now();
    OK(chan_close(d.c));
#ifdef BENCH_MPG
    join_all();
#else
    pthread_join(t, NULL);
#endif
    OK(chan_free(d.c));
    int64_t used = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    *whole_wait_pct = d.whole_wait_pct;
    return 100.0 * (double)used / (double)(t1 - t0);
}

/* ---- Driver ---------------------------------------------------------------------------------- */

typedef uint64_t (*shape_fn)(size_t cap, uint64_t n, int64_t *ns);

static const struct shape {
    const char *name;
    size_t caps[4]; /* default capacities, terminated by SIZE_MAX */
    shape_fn fn;    /* NULL: idle_cpu */
    bool count;     /* CAP is a count of Gs, N is ignored: no calibration, every run timed */
} shapes[] = {
    {"seq", {1, 1024, SIZE_MAX}, seq, false},
    {"spsc", {0, 1, 1024, SIZE_MAX}, spsc, false},
    {"mpsc", {0, 1, 1024, SIZE_MAX}, mpsc, false},
    {"mpmc", {0, 1, 1024, SIZE_MAX}, mpmc, false},
    {"select_rx", {0, 1, 1024, SIZE_MAX}, select_rx, false},
    {"select_both", {0, 1, 1024, SIZE_MAX}, select_both, false},
    {"pingpong", {0, SIZE_MAX}, pingpong, false},
    {"pool", {0, SIZE_MAX}, pool, false},
    {"size64", {1024, SIZE_MAX}, size64, false},
    {"size1024", {1024, SIZE_MAX}, size1024, false},
    {"idle_cpu", {0, SIZE_MAX}, NULL, false},
    {"goroutines", {10000, SIZE_MAX}, goroutines, true},
};

/* BENCH_COLD in the environment (any value but empty or 0): no warm-up, no calibration. */
static bool cold;

static void run(const struct shape *s, size_t cap, uint64_t n, int runs, int64_t budget_ms)
{
    if (!s->fn) {
        int64_t window = (budget_ms > 20 ? budget_ms : 20) * 1000000LL;
        for (int r = 1; r <= runs; r++) {
            double whole, pct = idle_cpu(window, &whole);
            printf("bench system=" SYSTEM
                   " shape=%s cap=%zu run=%d n=0 value=%.4f unit=%%cpu " IDLE_WHOLE_WAIT "=%.4f\n",
                   s->name, cap, r, pct, whole);
            fflush(stdout);
        }
        return;
    }
    if (s->count) {
        /* No warm-up: the first run of a process is what a program starting its Gs pays. */
        for (int r = 1; r <= runs; r++) {
            struct rusage a, b;
            int64_t el;
            getrusage(RUSAGE_SELF, &a);
            uint64_t k = s->fn(cap, n, &el);
            getrusage(RUSAGE_SELF, &b);
            double m = (double)k;
            printf("bench system=" SYSTEM " shape=%s cap=%zu run=%d n=%llu value=%.2f unit=ns/G "
                   "cpu=%.1f vcsw=%.3f",
                   s->name, cap, r, (unsigned long long)k, (double)el / m,
                   (double)(tv_ns(b.ru_utime) + tv_ns(b.ru_stime) - tv_ns(a.ru_utime) -
                            tv_ns(a.ru_stime)) /
                       m,
                   (double)(b.ru_nvcsw - a.ru_nvcsw) / m);
            if (r == 1)
                printf(" bytes_per_g=%.0f", gs_bytes_per_g);
            printf("\n");
            fflush(stdout);
        }
        return;
    }
    /* Warm up and calibrate: grow n until one run takes 20 ms or reaches N. Cold (BENCH_COLD
     * set): neither; every run moves N, the first of them the process's first channel work. */
    uint64_t want = n < 1000 ? n : 1000, k = 0;
    int64_t el = 0;
    for (; !cold;) {
        k = s->fn(cap, want, &el); /* k: what moved (a shape rounds to its thread count) */
        if (el >= 20000000 || want >= n)
            break;
        want = want * 4 < n ? want * 4 : n;
    }
    uint64_t target = n;
    if (budget_ms > 0 && !cold) {
        double per_msg = (double)el / (double)k;
        double allowed = (double)budget_ms * 1e6 / per_msg;
        if (allowed < (double)target)
            target = (uint64_t)allowed;
        if (target < 1000 && n >= 1000)
            target = 1000;
    }
    for (int r = 1; r <= runs; r++) {
        struct rusage a, b;
#ifdef CHAN_COUNTERS
        uint64_t ca[CNT_N], cb[CNT_N];
        counters_read(ca);
#endif
        getrusage(RUSAGE_SELF, &a);
        uint64_t moved = s->fn(cap, target, &el);
        getrusage(RUSAGE_SELF, &b);
#ifdef CHAN_COUNTERS
        counters_read(cb);
#endif
        double m = (double)moved;
        /* A shape that changed regime after calibration (a spinning hand-off that started to
         * sleep) must not make every later run long: resize from what this run took. */
        if (budget_ms > 0 && !cold && el > 2 * budget_ms * 1000000LL) {
            double allowed = (double)budget_ms * 1e6 / ((double)el / m);
            target = allowed < 1000 ? 1000 : (uint64_t)allowed;
        }
        printf("bench system=" SYSTEM " shape=%s cap=%zu run=%d n=%llu value=%.2f unit=ns/msg "
               "cpu=%.1f vcsw=%.3f ivcsw=%.3f",
               s->name, cap, r, (unsigned long long)moved, (double)el / m,
               (double)(tv_ns(b.ru_utime) + tv_ns(b.ru_stime) - tv_ns(a.ru_utime) -
                        tv_ns(a.ru_stime)) /
                   m,
               (double)(b.ru_nvcsw - a.ru_nvcsw) / m, (double)(b.ru_nivcsw - a.ru_nivcsw) / m);
#ifdef CHAN_COUNTERS
        for (int i = 0; i < CNT_N; i++)
            printf(" c.%s=%.4f", counter_names[i], (double)(cb[i] - ca[i]) / m);
#endif
        printf("\n");
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    place_init();
    if (argc == 2 && strcmp(argv[1], "place") == 0) {
        char *tx = set_str(TX), *rx = set_str(RX);
        printf("place=%s tx=%s rx=%s\n", place_name, tx, rx);
        free(tx);
        free(rx);
        return 0;
    }
    if (argc != 6) {
        fprintf(stderr, "usage: bench SHAPE|all CAP N RUNS BUDGET_MS   (or: bench place)\n"
                        "       PLACE=none|spread|compact in the environment\n");
        return 2;
    }
    const char *name = argv[1];
    size_t cap = (size_t)num(argv[2], "CAP");
    uint64_t n = num(argv[3], "N");
    int runs = (int)num(argv[4], "RUNS");
    int64_t budget = (int64_t)num(argv[5], "BUDGET_MS");
    if (n < 1)
        n = 1;
    const char *c = getenv("BENCH_COLD");
    cold = c && *c && strcmp(c, "0") != 0;
#ifdef BENCH_MPG
    /* One scheduler for the whole process: Ps = the cores hwloc reports, Ms placed by the
     * kernel (as Go's); PLACE=compact: one P, and the main thread on core 0 before the
     * scheduler's threads are made (they inherit it), as Go's process gets one core and
     * GOMAXPROCS=1. */
    bool compact = strcmp(place_name, "compact") == 0;
    if (compact)
        bind_role(TX);
    OK(chan_mpg_start(compact ? 1 : 0));
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    printf("info system=" SYSTEM " version=%s hwloc=%s place=%s nprocs=%d\n", chan_version(),
           HWLOC_VERSION, place_name, st.nprocs);
#else
    char *tx = set_str(TX), *rx = set_str(RX);
    printf("info system=" SYSTEM " version=%s hwloc=%s place=%s tx=%s rx=%s\n", chan_version(),
           HWLOC_VERSION, place_name, tx, rx);
    free(tx);
    free(rx);
#endif
    fflush(stdout);
    bool found = false;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct shape *s = &shapes[i];
        if (strcmp(name, "all") == 0) {
            for (int j = 0; s->caps[j] != SIZE_MAX; j++)
                run(s, s->caps[j], n, runs, budget);
            found = true;
        } else if (strcmp(name, s->name) == 0) {
            run(s, cap, n, runs, budget);
            found = true;
        }
    }
    if (!found) {
        fprintf(stderr, "bench: unknown shape '%s'\n", name);
        return 2;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("rss system=" SYSTEM " maxrss_kib=%ld rusage_maxrss_kib=%ld\n", status_kib("VmHWM:"),
           ru.ru_maxrss);
#ifdef BENCH_MPG
    OK(chan_mpg_stop());
#endif
    hwloc_topology_destroy(topo);
    return 0;
}
