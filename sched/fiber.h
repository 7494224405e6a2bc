/* SPDX-License-Identifier: MIT */
/*
 * fiber.h - the stacks libchan-mpg runs its Gs on, and the switch between them: the one place
 * of the scheduler that knows the architecture, the sanitizers and valgrind.
 *
 * A fiber is a stack and, while it is switched out, the stack pointer saved on it. A G owns
 * one: fiber_make carves a stack from the pool and returns the G's descriptor, whose first member
 * is the struct fiber (see fiber.c); an M's own thread stack is one too (its g0), filled in by
 * fiber_host_init. fiber_switch saves the callee-saved registers on the current stack, loads
 * the other's (ctx_switch.S), and tells ASan, TSan and valgrind what happened; nothing else
 * in sched/ tests a sanitizer macro or names a register.
 *
 * The switches are static inline: the scheduler's hot path (a G parking and handing its M to
 * the next G) is one call to mpg_ctx_switch with the announcements around it, as it was when
 * all of this lived in one file.
 */
#ifndef SCHED_FIBER_H
#define SCHED_FIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seam.h" /* HIDDEN */

/* ---- Which sanitizers are on ----------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define MPG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPG_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MPG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPG_TSAN 1
#endif
#endif

#ifdef MPG_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef MPG_TSAN
#include <sanitizer/tsan_interface.h>
#endif
/* Stacks are registered with valgrind where its header is installed (fiber.c includes it). */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#define MPG_VALGRIND 1
#endif
#endif

/* ---- Fibers ---------------------------------------------------------------------------------- */

struct fiber {
    void *sp;     /* saved stack pointer while switched out; NULL: not started, the next
                     switch to it writes its first frame (fiber_start) */
    char *stk_lo; /* the stack: [stk_lo, stk_lo + stk_size), the guard below it */
    size_t stk_size;
#ifdef MPG_ASAN
    void *fake_stack; /* ASan's fake stack of this fiber while it is switched out */
#endif
#ifdef MPG_TSAN
    void *tsan; /* TSan's fiber */
#endif
#ifdef MPG_VALGRIND
    unsigned vg_id; /* valgrind's id of the registered stack */
#endif
};

/* The context switch (ctx_switch.S): saves the callee-saved registers on the current stack and
 * its stack pointer in *save_sp, then resumes the stack to_sp points into. mpg_ctx_entry is
 * where a started stack's first switch lands (fiber_start). */
HIDDEN void mpg_ctx_switch(void **save_sp, void *to_sp);
HIDDEN void mpg_ctx_entry(void);

/* Writes the first frame on f's stack, so that the switch to it calls the pool's entry function
 * with f's descriptor (fiber_pool_init). Done by the switch itself, on the thread that first runs
 * the fiber: its stack's top page is first written there, not by whoever made the fiber. */
HIDDEN void fiber_start(struct fiber *f);

/* Switches from the running fiber to `to`, which is switched out. Returns when some thread
 * switches `from` back in: under an M:N scheduler that may be another thread, so the caller
 * re-reads its thread-locals after this. */
static inline void fiber_switch(struct fiber *from, struct fiber *to)
{
    if (__builtin_expect(!to->sp, 0))
        fiber_start(to);
#ifdef MPG_ASAN
    __sanitizer_start_switch_fiber(&from->fake_stack, to->stk_lo, to->stk_size);
#endif
#ifdef MPG_TSAN
    __tsan_switch_to_fiber(to->tsan, 0);
#endif
    mpg_ctx_switch(&from->sp, to->sp);
#ifdef MPG_ASAN
    __sanitizer_finish_switch_fiber(from->fake_stack, NULL, NULL);
#endif
}

/* Switches away from `from` for good (its function is done): ASan drops its fake stack. */
_Noreturn static inline void fiber_exit(struct fiber *from, struct fiber *to)
{
#ifdef MPG_ASAN
    __sanitizer_start_switch_fiber(NULL, to->stk_lo, to->stk_size);
#endif
#ifdef MPG_TSAN
    __tsan_switch_to_fiber(to->tsan, 0);
#endif
    mpg_ctx_switch(&from->sp, to->sp);
    __builtin_trap(); /* an exited fiber is never switched in again */
}

/* The first thing a fiber's function does, on its first switch in. */
static inline void fiber_entered(void)
{
#ifdef MPG_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

/* Describes the calling thread's own stack as a fiber, to switch from and back to (an M's g0). */
HIDDEN void fiber_host_init(struct fiber *f);

/* ---- The stack pool (fiber.c); the caller serializes every call ------------------------------ */

/* Sets the fibers to come: stacks of stack_size bytes (rounded up to pages), each with a
 * descriptor of desc_size bytes whose first member is its struct fiber; entry(descriptor) is the
 * function each fiber starts in (it never returns: it leaves by fiber_exit); guard_max is how
 * many stacks get a guard (0: every one the kernel allows; -1: none; n > 0: the first n). */
HIDDEN void fiber_pool_init(size_t stack_size, size_t desc_size, long guard_max,
                            void (*entry)(void *desc));
/* A new fiber: a stack carved from a pooled chunk, under a guard while guards last, not yet
 * started. Returns its descriptor, zeroed but for its first member, this struct fiber; NULL for
 * want of memory, a guard's included (a stack within guard_max never goes without one). No
 * system call of its own (a few per chunk of stacks), but with mprotect guards on kernels before
 * 6.13. */
HIDDEN struct fiber *fiber_make(void);
/* Tests: asked before each guard is installed, with its stack's number in the pool (0 first);
 * true makes that install fail with ENOMEM, as a kernel out of page tables or mappings would. */
HIDDEN extern bool (*fiber_guard_fail_hook)(uint64_t stack);
/* f's entry function has exited: f starts afresh at its next switch in. */
HIDDEN void fiber_reuse(struct fiber *f);
/* Tells TSan and valgrind that f is gone; its memory (descriptor included) is its chunk's. */
HIDDEN void fiber_destroy(struct fiber *f);
/* Unmaps every chunk, once every fiber is destroyed: every descriptor goes with them. */
HIDDEN void fiber_pool_free(void);
/* Stacks made, and how many of them are guarded. */
HIDDEN void fiber_pool_stats(uint64_t *stacks, uint64_t *guarded);

/* ---- Overflows ------------------------------------------------------------------------------- */

/* Installs a SIGSEGV handler (process-wide) that names the G whose stack overflowed into its
 * guard, then passes the signal on to the handler installed before it; running(&id) tells it
 * the calling thread's running G (its fiber and id) or NULL. unwatch puts the previous handler
 * back, unless the program has installed another since. */
HIDDEN void fiber_overflow_watch(struct fiber *(*running)(int64_t *id));
HIDDEN void fiber_overflow_unwatch(void);
/* Gives the calling thread (an M) an alternate signal stack unless it has one: a G that
 * overflowed has none left for the handler. Returns what fiber_altstack_free frees, maybe NULL. */
HIDDEN void *fiber_altstack(void);
HIDDEN void fiber_altstack_free(void *alt);

/* ---- What else TSan must be told ------------------------------------------------------------- */

/* liburcu's atomics are inline assembly, which TSan cannot see: the accesses of its wait-free
 * queue are hidden from TSan, and the hand-over of an object through it is declared with a
 * release by the producer and an acquire by the consumer (Go's racerelease/raceacquire). */
#ifdef MPG_TSAN
/* TSan's dynamic annotations, exported by its runtime. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define RACE_IGNORE_BEGIN()                                                                        \
    (AnnotateIgnoreReadsBegin(__FILE__, __LINE__), AnnotateIgnoreWritesBegin(__FILE__, __LINE__))
#define RACE_IGNORE_END()                                                                          \
    (AnnotateIgnoreWritesEnd(__FILE__, __LINE__), AnnotateIgnoreReadsEnd(__FILE__, __LINE__))
#define RACE_RELEASE(addr) __tsan_release(addr)
#define RACE_ACQUIRE(addr) __tsan_acquire(addr)
#else
#define RACE_IGNORE_BEGIN() ((void)0)
#define RACE_IGNORE_END() ((void)0)
#define RACE_RELEASE(addr) ((void)(addr))
#define RACE_ACQUIRE(addr) ((void)(addr))
#endif

#endif
