/* SPDX-License-Identifier: MIT */
/* testleak.h - helpers for the suites of chan_leak.h (test_leak.c on threads, test_mpg_leak.c
 * on Gs): a place to keep channels that the leak detector does not see, waiting for waiters to
 * block, and leak checks made below a scrubbed stack. Header-only; include it only where
 * CHAN_TRACE_BUILD is defined (the library has chan_leak.h's functions only then).
 *
 * A reachability test must leave no copy of a channel's address where something that can run
 * could read it, or the check would take the channel for reachable: a scenario keeps its
 * channels for the clean-up only in vault[], xored with a key (keep, take), a form the
 * detector does not take for an address (chan_leak(3)). */
#ifndef TESTLEAK_H
#define TESTLEAK_H

#include "testutil.h"

#include <stdbool.h>

#include "chan_leak.h"

#define KEY ((uintptr_t)0x5a5a5a5a5a5a5a5aull)
static uintptr_t vault[8];

static inline void keep(int i, const void *p) { vault[i] = (uintptr_t)p ^ KEY; }
static inline void *take(int i) { return (void *)(vault[i] ^ KEY); }

/* What chan_leftovers leaves out of the count in leftovers_reach: nothing unless the suite
 * defines LEFTOVERS_IGNORE (a const struct chan_leak_ignore *) before including this file:
 * test_mpg_leak.c leaves out its workers, which block and wake all the time. */
#ifndef LEFTOVERS_IGNORE
#define LEFTOVERS_IGNORE NULL
#endif

/* Waits until chan_leftovers counts at least n blocked waiters (up to ~10 s: then false). */
static inline bool leftovers_reach(int n)
{
    for (int i = 0; i < 2000; i++) {
        if (chan_leftovers(NULL, LEFTOVERS_IGNORE) >= n)
            return true;
        sleep_ms(5);
    }
    return false;
}

/* leftovers_reach(n), or fail the test. */
static inline void wait_leftovers(int n)
{
    ck_assert_msg(leftovers_reach(n), "fewer than %d waiters ever blocked", n);
}

/* Overwrites the stack below the caller's frame: the frames of calls made before, whose bytes
 * the frames of later calls (a check's own callers) would otherwise keep in slots they leave
 * unwritten - a conservative check takes those for live copies (chan_leak(3)). Never inlined:
 * it must have a frame of its own below the caller's (so: static, not static inline; unused
 * marks it for the suites that call it only through count_leaks). */
__attribute__((noinline, unused)) static void scrub_stack(void)
{
    char junk[16384];
    explicit_bzero(junk, sizeof junk);
    __asm__ volatile("" : : "r"(junk) : "memory");
}

/* A leak check as a test makes it: count only, below a scrubbed stack. */
__attribute__((noinline, unused)) static int count_leaks(const struct chan_leak_ignore *ign)
{
    scrub_stack();
    return chan_leak_check(NULL, ign);
}

/* A leak check's report, in a string (open_memstream holds text only, no addresses). */
__attribute__((noinline, unused)) static int check_report(char **text)
{
    size_t len = 0;
    scrub_stack();
    FILE *f = open_memstream(text, &len);
    ck_assert_ptr_nonnull(f);
    int n = chan_leak_check(f, NULL);
    fclose(f);
    return n;
}

#endif
