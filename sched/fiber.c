/* SPDX-License-Identifier: MIT */
/*
 * fiber.c - the stacks of libchan-mpg's Gs: allocation with guard pages while the process's
 * mappings last, the first frame of a new stack for each architecture, and the registration of
 * every stack with TSan and valgrind. The switch itself is in fiber.h and ctx_switch.S.
 *
 * Stacks are pooled with their G descriptors and never unmapped before chan_mpg_stop (Go's
 * stackpool keeps freed stacks too). The pool is the scheduler's, called under its G lock
 * (sched.gmu): nothing here locks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sched/fiber.h"

#ifdef MPG_VALGRIND
#include <valgrind/valgrind.h>
#endif

/* ---- The first frame of a new stack ---------------------------------------------------------- */

/* mpg_ctx_switch pops the callee-saved registers prepared here and "returns" into
 * mpg_ctx_entry, which calls fn(arg) from two of them. */
void fiber_prepare(struct fiber *f, void (*fn)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)f->stk_lo + f->stk_size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* popped: r15 r14 r13 r12 rbx rbp, then ret; rsp must be 16-aligned after the ret. */
    void **sp = (void **)(top - 16 - 56);
    sp[0] = NULL;                 /* r15 */
    sp[1] = NULL;                 /* r14 */
    sp[2] = (void *)fn;           /* r13: fn */
    sp[3] = arg;                  /* r12: arg */
    sp[4] = NULL;                 /* rbx */
    sp[5] = NULL;                 /* rbp */
    sp[6] = (void *)mpg_ctx_entry;
    sp[7] = NULL;                 /* no caller */
    f->sp = sp;
#elif defined(__aarch64__)
    void **sp = (void **)(top - 176);
    memset(sp, 0, 176);
    sp[0] = arg;                  /* x19: arg */
    sp[1] = (void *)fn;           /* x20: fn */
    sp[10] = NULL;                /* x29 */
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

/* ---- The pool: guarded stacks while mappings last, then unguarded ones carved from chunks ---- */

#define CHUNK_STACKS 64

static struct {
    size_t stack_size;
    long guard_max;     /* stacks that may get a guard page; <= 0: none */
    uint64_t nstacks, nguarded;
    char *chunk;        /* unguarded stacks are carved from chunks */
    size_t chunk_left;
    struct chunk {
        struct chunk *next;
        void *base;
        size_t len;
    } *chunks;
} pool;

static size_t page_size(void)
{
    static size_t ps;
    if (!ps)
        ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

/* A guarded stack costs two mappings (the stack, its guard page): as many as the process's
 * limit allows, leaving room for everyone else's. */
static long default_guard_max(void)
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

void fiber_pool_init(size_t stack_size, long guard_max)
{
    size_t ps = page_size();
    pool.stack_size = (stack_size + ps - 1) / ps * ps;
    pool.guard_max = guard_max ? guard_max : default_guard_max();
}

static int stack_alloc(struct fiber *f)
{
    size_t ps = page_size(), size = pool.stack_size;
    if (pool.guard_max > 0 && pool.nguarded < (uint64_t)pool.guard_max) {
        char *base = mmap(NULL, size + ps, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base != MAP_FAILED) {
            if (mprotect(base, ps, PROT_NONE) == 0) {
                f->stk_lo = base + ps;
                f->stk_size = size;
                f->guarded = true;
                pool.nguarded++;
                pool.nstacks++;
                return 0;
            }
            munmap(base, size + ps); /* out of mappings: carry on unguarded */
        }
    }
    if (pool.chunk_left < size) {
        size_t len = size * CHUNK_STACKS;
        struct chunk *ck = malloc(sizeof *ck);
        if (!ck)
            return -ENOMEM;
        void *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) {
            free(ck);
            return -ENOMEM;
        }
        ck->base = base;
        ck->len = len;
        ck->next = pool.chunks;
        pool.chunks = ck;
        pool.chunk = base;
        pool.chunk_left = len;
    }
    f->stk_lo = pool.chunk;
    f->stk_size = size;
    f->guarded = false;
    pool.chunk += size;
    pool.chunk_left -= size;
    pool.nstacks++;
    return 0;
}

int fiber_make(struct fiber *f)
{
    int e = stack_alloc(f);
    if (e)
        return e;
#ifdef MPG_TSAN
    f->tsan = __tsan_create_fiber(0);
#endif
#ifdef MPG_VALGRIND
    f->vg_id = VALGRIND_STACK_REGISTER(f->stk_lo, f->stk_lo + f->stk_size);
#endif
    return 0;
}

void fiber_reuse(struct fiber *f)
{
#ifdef MPG_ASAN
    /* A function that exited left its first frames' redzones poisoned. */
    __asan_unpoison_memory_region(f->stk_lo, f->stk_size);
#else
    (void)f;
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
    if (f->guarded)
        munmap(f->stk_lo - page_size(), f->stk_size + page_size());
}

void fiber_pool_free(void)
{
    for (struct chunk *c = pool.chunks, *nx; c; c = nx) {
        nx = c->next;
        munmap(c->base, c->len);
        free(c);
    }
    pool.chunks = NULL;
    pool.chunk = NULL;
    pool.chunk_left = 0;
    pool.nstacks = pool.nguarded = 0;
}

void fiber_pool_stats(uint64_t *stacks, uint64_t *guarded)
{
    *stacks = pool.nstacks;
    *guarded = pool.nguarded;
}
