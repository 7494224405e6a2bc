/* SPDX-License-Identifier: MIT */
/*
 * fiber.c - the stacks of libchan-mpg's Gs: the first frame of a new stack for each
 * architecture; the pool that carves stacks and G descriptors from chunks, each stack under a
 * guard, and registers every stack with TSan and valgrind; and the message of a G that overflows
 * its stack. The switch itself is in fiber.h and ctx_switch.S.
 *
 * Stacks are pooled with their G descriptors and never unmapped before chan_mpg_stop (Go's
 * stackpool keeps freed stacks too). The pool is the scheduler's, called under its G lock
 * (sched.gmu): nothing here locks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sched/fiber.h"

#ifdef MPG_VALGRIND
#include <valgrind/valgrind.h>
#endif

/* ---- The first frame of a new stack ---------------------------------------------------------- */

static void (*pool_entry)(void *desc); /* where every fiber of the pool starts (fiber_pool_init) */

/* mpg_ctx_switch pops the callee-saved registers prepared here and "returns" into
 * mpg_ctx_entry, which calls fn(arg) from two of them: the pool's entry and the descriptor,
 * which begins with f. */
void fiber_start(struct fiber *f)
{
    void (*fn)(void *) = pool_entry;
    void *arg = f;
    uintptr_t top = ((uintptr_t)f->stk_lo + f->stk_size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* popped: r15 r14 r13 r12 rbx rbp, then ret; rsp must be 16-aligned after the ret. */
    void **sp = (void **)(top - 16 - 56);
    sp[0] = NULL;       /* r15 */
    sp[1] = NULL;       /* r14 */
    sp[2] = (void *)fn; /* r13: fn */
    sp[3] = arg;        /* r12: arg */
    sp[4] = NULL;       /* rbx */
    sp[5] = NULL;       /* rbp */
    sp[6] = (void *)mpg_ctx_entry;
    sp[7] = NULL; /* no caller */
    f->sp = sp;
#elif defined(__aarch64__)
    void **sp = (void **)(top - 176);
    memset(sp, 0, 176);
    sp[0] = arg;                    /* x19: arg */
    sp[1] = (void *)fn;             /* x20: fn */
    sp[10] = NULL;                  /* x29 */
    sp[11] = (void *)mpg_ctx_entry; /* x30 */
    f->sp = sp;
#else
#error "libchan-mpg: no first frame for this architecture (x86-64 and aarch64 only)"
#endif
}

void fiber_host_init(struct fiber *f)
{
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t size;
        if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
            f->stk_lo = lo;
            f->stk_size = size;
        }
        pthread_attr_destroy(&attr);
    }
#ifdef MPG_TSAN
    f->tsan = __tsan_get_current_fiber();
#endif
}

/* ---- The pool: stacks carved from chunks, each above a guard --------------------------------- */

/*
 * A chunk is one mapping: the descriptors of its CHUNK_STACKS fibers (proc.c's struct g, packed
 * one after the other, each on its own cache lines), then CHUNK_STACKS slots, each a guard and
 * above it a stack:
 *
 *     low | desc desc ... desc | guard | stack ........ | guard | stack ........ | ... high
 *
 * The mapping is MAP_NORESERVE and never huge-paged: a stack costs memory only for the pages its
 * G touches, which for a parked G is its top page (its first frames and those of the park down
 * to the switch; see sched/README.md, "Stacks"), plus its descriptor. The descriptors are packed
 * apart from the stacks so that chan_mpg_go writes only there (21 to a page), and the stack's
 * page is first written by the M that first runs the G (fiber_start): a thread spawning many Gs
 * takes one page fault per 21 Gs instead of one per G, and the Ms take the stacks' faults in
 * parallel (measured: half the time of descriptors at the top of their stacks, which cost 192
 * bytes less per parked G). Fibers are never returned before fiber_pool_free: a G's descriptor
 * keeps its stack for the next G (Go's gfget).
 *
 * The guards, in the order they are tried:
 *  - guard markers (madvise MADV_GUARD_INSTALL, Linux 6.13): pages that fault on any access,
 *    kept in the page table rather than as mappings of their own. The chunk stays one mapping
 *    whatever the number of stacks (vm.max_map_count is 65530 here), and one process_madvise
 *    call installs a whole chunk's guards (one madvise per guard where the kernel does not take
 *    process_madvise for the calling process). So every stack is guarded, and a stack costs no
 *    system call of its own, neither when it is made nor when it is reused.
 *  - mprotect(PROT_NONE), once per stack when it is carved: each guard splits the chunk's
 *    mapping in two more, so only while the process's mappings last: by default
 *    (vm.max_map_count - 5000) / 2 stacks, about 30,000; the later slots keep their guard pages
 *    unprotected (an overflow there runs into the next stack down unseen).
 * A stack within guard_max whose guard cannot be had (the kernel out of memory for page tables,
 * or of mappings before that estimate) is not handed out: fiber_make fails, as pthread_create
 * fails a thread whose guard it cannot make, and its slot is tried again by the next call. A
 * chunk whose markers stopped part way has its other slots guarded one by one as they are carved.
 * A frame larger than a guard can jump it, as on threads (-fstack-clash-protection makes each
 * frame touch every page it spans): hence guards of GUARD_PAGES pages, not one.
 */
#define CHUNK_STACKS 256
#define GUARD_PAGES 4

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; older headers lack it */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef PIDFD_SELF
#define PIDFD_SELF -10000 /* process_madvise on the calling thread's own memory (Linux 6.14) */
#endif

enum guard_how { GUARD_MARKERS_BATCH, GUARD_MARKERS, GUARD_MPROTECT, GUARD_NONE };

struct chunk {
    struct chunk *next;
    char *base;
    size_t len;
};

bool (*fiber_guard_fail_hook)(uint64_t stack);

static struct {
    size_t ps;          /* the page size */
    size_t stack_size;  /* a slot's bytes above its guard */
    size_t desc_size;   /* a descriptor, rounded up to a cache line */
    size_t descs;       /* a chunk's descriptors, rounded up to pages */
    size_t guard;       /* GUARD_PAGES pages */
    size_t slot;        /* guard + stack_size */
    enum guard_how how; /* the best way of guarding that has worked so far */
    long guard_max;     /* stacks that may be guarded; < 0: none, 0: no limit but the kernel's */
    uint64_t nstacks, nguarded;
    char *next;    /* the next slot to carve in the newest chunk */
    size_t left;   /* slots left in it */
    size_t marked; /* of its slots, how many from the first have guard markers */
    char *desc;    /* its descriptors */
    struct chunk *chunks;
    struct iovec iov[CHUNK_STACKS]; /* process_madvise's list (under the caller's lock) */
} pool;

/* A guarded stack costs two mappings under mprotect: as many as the process's limit allows,
 * leaving room for everyone else's. */
static long mprotect_guard_max(void)
{
#ifdef MPG_TSAN
    /* TSan maps trace memory for every fiber (one per G): the mappings are its, not ours. */
    return -1;
#else
#ifdef MPG_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return 1000; /* valgrind keeps a fixed table of segments (VG_N_SEGMENTS) */
#endif
    long maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &maps) != 1)
            maps = 65530;
        fclose(f);
    }
    long g = (maps - 5000) / 2; /* two mappings per guarded stack; the rest for everyone else */
    return g > 0 ? g : -1;
#endif
}

void fiber_pool_init(size_t stack_size, size_t desc_size, long guard_max, void (*entry)(void *desc))
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    pool_entry = entry;
    pool.ps = ps;
    pool.stack_size = (stack_size + ps - 1) / ps * ps;
    pool.desc_size = (desc_size + 63) & ~(size_t)63;
    pool.descs = (pool.desc_size * CHUNK_STACKS + ps - 1) / ps * ps;
    pool.guard = GUARD_PAGES * ps;
    pool.slot = pool.guard + pool.stack_size;
    pool.guard_max = guard_max;
    pool.how = guard_max < 0 ? GUARD_NONE : GUARD_MARKERS_BATCH;
#ifdef MPG_VALGRIND
    /* valgrind does not know process_madvise (a warning per call); madvise it passes on. */
    if (RUNNING_ON_VALGRIND && pool.how == GUARD_MARKERS_BATCH)
        pool.how = GUARD_MARKERS;
#endif
}

/* How many of the n slots from global index `first` on may be guarded. */
static size_t guardable(uint64_t first, size_t n)
{
    if (pool.guard_max < 0)
        return 0;
    if (pool.guard_max == 0)
        return n;
    uint64_t max = (uint64_t)pool.guard_max;
    return first >= max ? 0 : (size_t)(max - first < n ? max - first : n);
}

/* Guards the slot at base, stack number `stack` of the pool, the way pool.how says, one system
 * call: 0, or -1 with errno set. */
static int guard_slot(char *base, uint64_t stack)
{
    if (fiber_guard_fail_hook && fiber_guard_fail_hook(stack)) {
        errno = ENOMEM;
        return -1;
    }
    if (pool.how == GUARD_MPROTECT)
        return mprotect(base, pool.guard, PROT_NONE);
    return madvise(base, pool.guard, MADV_GUARD_INSTALL);
}

/* Installs guard markers on the guards of a new chunk's first n slots: one process_madvise
 * call, else one madvise per guard. Returns how many it installed; 0, with pool.how moved on to
 * GUARD_MPROTECT, when the kernel has no markers. A test's fiber_guard_fail_hook sees every
 * guard: one by one then. */
static size_t guard_markers(char *base, size_t n)
{
#ifdef SYS_process_madvise
    if (pool.how == GUARD_MARKERS_BATCH && !fiber_guard_fail_hook) {
        for (size_t i = 0; i < n; i++)
            pool.iov[i] = (struct iovec){base + i * pool.slot, pool.guard};
        long done = syscall(SYS_process_madvise, PIDFD_SELF, pool.iov, n, MADV_GUARD_INSTALL, 0);
        if (done >= 0 || (errno != EINVAL && errno != EBADF && errno != ENOSYS && errno != EPERM))
            return done > 0 ? (size_t)done / pool.guard : 0; /* short: out of page tables */
        pool.how = GUARD_MARKERS; /* no PIDFD_SELF, or no markers: one by one tells which */
    }
#endif
    size_t i = 0;
    while (i < n && guard_slot(base + i * pool.slot, pool.nstacks + i) == 0)
        i++;
    if (i == 0 && errno == EINVAL) {
        pool.how = GUARD_MPROTECT; /* a kernel before 6.13 */
        if (pool.guard_max == 0)
            pool.guard_max = mprotect_guard_max();
    }
    return i;
}

static bool chunk_new(void)
{
    size_t len = pool.descs + pool.slot * CHUNK_STACKS;
    struct chunk *ck = malloc(sizeof *ck);
    if (!ck)
        return false;
    char *base =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        free(ck);
        return false;
    }
    /* With transparent huge pages "always", the first touch in a 2 MiB stretch would commit all
     * of it: some 26 stacks' worth for one G. */
    madvise(base, len, MADV_NOHUGEPAGE);
    /* Every descriptor is written within the chunk's 256 fibers: in one call, not one fault a
     * page (as MADV_POPULATE_WRITE, Linux 5.14, allows; where not, they fault in one by one). */
    madvise(base, pool.descs, MADV_POPULATE_WRITE);
    *ck = (struct chunk){pool.chunks, base, len};
    pool.chunks = ck;
    pool.desc = base;
    base += pool.descs;
    pool.next = base;
    pool.left = CHUNK_STACKS;
    pool.marked = 0;
    if (pool.how == GUARD_MARKERS_BATCH || pool.how == GUARD_MARKERS) {
        size_t n = guardable(pool.nstacks, CHUNK_STACKS);
        if (n)
            pool.marked = guard_markers(base, n); /* or mprotect from now on (fiber_make) */
    }
    return true;
}

struct fiber *fiber_make(void)
{
    if (!pool.left && !chunk_new())
        return NULL;
    char *slot = pool.next;
    size_t i = CHUNK_STACKS - pool.left; /* its index in the chunk */
    /* Guarded with its chunk's markers, else now while guards last (mprotect; or a marker the
     * chunk's step missed): a stack that should have a guard and cannot is not made. */
    bool guarded = i < pool.marked;
    if (!guarded && guardable(pool.nstacks, 1)) {
        if (guard_slot(slot, pool.nstacks) != 0)
            return NULL; /* out of page tables or mappings: the slot waits for the next call */
        guarded = true;
    }
    pool.next += pool.slot;
    pool.left--;
    pool.nguarded += guarded;
    pool.nstacks++;
    struct fiber *f = (struct fiber *)(pool.desc + i * pool.desc_size); /* zero, from mmap */
    f->stk_lo = slot + pool.guard;
    f->stk_size = pool.stack_size;
#ifdef MPG_TSAN
    f->tsan = __tsan_create_fiber(0);
#endif
#ifdef MPG_VALGRIND
    f->vg_id = VALGRIND_STACK_REGISTER(f->stk_lo, f->stk_lo + f->stk_size);
#endif
    return f;
}

void fiber_reuse(struct fiber *f)
{
    f->sp = NULL; /* the next switch in writes a first frame again */
#ifdef MPG_ASAN
    /* A function that exited left its first frames' redzones poisoned. */
    __asan_unpoison_memory_region(f->stk_lo, f->stk_size);
#endif
}

void fiber_destroy(struct fiber *f)
{
#ifdef MPG_VALGRIND
    VALGRIND_STACK_DEREGISTER(f->vg_id);
#endif
#ifdef MPG_TSAN
    __tsan_destroy_fiber(f->tsan);
#endif
    (void)f; /* its memory is its chunk's */
}

void fiber_pool_free(void)
{
    for (struct chunk *c = pool.chunks, *nx; c; c = nx) {
        nx = c->next;
        munmap(c->base, c->len);
        free(c);
    }
    pool.chunks = NULL;
    pool.next = NULL;
    pool.left = 0;
    pool.nstacks = pool.nguarded = 0;
}

void fiber_pool_stats(uint64_t *stacks, uint64_t *guarded)
{
    *stacks = pool.nstacks;
    *guarded = pool.nguarded;
}

/* ---- A G that overflows its stack: a message, then the handler that was there --------------- */

/*
 * A G that runs off the bottom of its stack faults in the guard below it, with its stack pointer
 * there: the kernel can deliver SIGSEGV only on another stack, so each M has an alternate signal
 * stack (fiber_altstack), and the handler says which G overflowed before it hands the signal to
 * the handler installed before it (the default one kills the process with SIGSEGV, as without
 * this handler; a sanitizer's reports the overflow in its own words). Any other fault goes
 * straight to that handler.
 */
#define ALTSTACK_SIZE (64 * 1024)

static struct sigaction segv_prev;                 /* the handler before ours */
static struct fiber *(*segv_running)(int64_t *id); /* the running G's fiber and id, or NULL */
static bool segv_on;

/* Async-signal-safe formatting: v in base 10 or 16 at the end of buf[0, 24). */
static char *fmt_u64(char *end, uint64_t v, unsigned base)
{
    *--end = '\0';
    do
        *--end = "0123456789abcdef"[v % base];
    while ((v /= base) != 0);
    return end;
}

static size_t append(char *buf, size_t len, size_t cap, const char *s)
{
    while (*s && len + 1 < cap)
        buf[len++] = *s++;
    buf[len] = '\0';
    return len;
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    int64_t id = 0;
    struct fiber *f = segv_running ? segv_running(&id) : NULL;
    char *a = si->si_addr;
    if (f && a < f->stk_lo && a >= f->stk_lo - pool.guard) {
        char msg[256], n1[24], n2[24], n3[24];
        size_t len = 0;
        len = append(msg, len, sizeof msg, "libchan-mpg: stack overflow in G ");
        len = append(msg, len, sizeof msg, fmt_u64(n1 + sizeof n1, (uint64_t)id, 10));
        len = append(msg, len, sizeof msg, " (its stack: ");
        len = append(msg, len, sizeof msg, fmt_u64(n2 + sizeof n2, f->stk_size, 10));
        len = append(msg, len, sizeof msg, " bytes; fault at 0x");
        len = append(msg, len, sizeof msg, fmt_u64(n3 + sizeof n3, (uintptr_t)a, 16));
        len = append(msg, len, sizeof msg,
                     ", in the guard below it): give the Gs larger stacks "
                     "(chan_mpg_start_config's stack_size)\n");
        ssize_t w = write(STDERR_FILENO, msg, len);
        (void)w;
    }
    if (segv_prev.sa_flags & SA_SIGINFO) {
        segv_prev.sa_sigaction(sig, si, ctx);
    } else if (segv_prev.sa_handler != SIG_DFL && segv_prev.sa_handler != SIG_IGN) {
        segv_prev.sa_handler(sig);
    } else {
        /* The default action: restored, it kills the process when the access faults again. */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
    }
}

void fiber_overflow_watch(struct fiber *(*running)(int64_t *id))
{
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    segv_running = running;
    segv_on = sigaction(SIGSEGV, &sa, &segv_prev) == 0;
}

void fiber_overflow_unwatch(void)
{
    struct sigaction now;
    if (segv_on && sigaction(SIGSEGV, NULL, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
        now.sa_sigaction == on_segv)
        sigaction(SIGSEGV, &segv_prev, NULL); /* unless the program has put its own since */
    segv_on = false;
}

void *fiber_altstack(void)
{
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return NULL; /* the thread has one (a sanitizer gives its threads one) */
    stack_t st = {.ss_sp = malloc(ALTSTACK_SIZE), .ss_size = ALTSTACK_SIZE};
    if (!st.ss_sp)
        return NULL; /* no message then: an overflow still kills the process */
    if (sigaltstack(&st, NULL) != 0) {
        free(st.ss_sp);
        return NULL;
    }
    return st.ss_sp;
}

void fiber_altstack_free(void *alt)
{
    if (!alt)
        return;
    stack_t st = {.ss_flags = SS_DISABLE};
    sigaltstack(&st, NULL);
    free(alt);
}
