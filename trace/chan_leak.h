/* SPDX-License-Identifier: MIT */
/*
 * chan_leak.h - leftover waiters and partial deadlocks: the threads and tasks blocked in
 * channel operations, and those of them that nothing can ever wake.
 *
 * Documented in chan_leak(3); built into libchan (not into the drop-in pair dist/chan.c). Go
 * reports a deadlock only when every goroutine sleeps; the common bug is partial: a sender left
 * behind when its receiver timed out, two workers waiting on each other while the server runs
 * on. These calls find them while the rest of the program runs.
 *
 *  - chan_leftovers lists every thread and task (a G of libchan-mpg, chan_mpg(3)) blocked now
 *    in a channel operation or a select - on a timer's channel, a context's done channel and
 *    a descriptor's channel of chan_io(3) too, each marked so - with how long it has been
 *    blocked and the channels' names: the check a test makes at its end (Go's goleak).
 *  - chan_leak_check finds, among them, those blocked forever, after Go's goroutine leak
 *    profile: a waiter is leaked when none of the channels it waits on can be reached by any
 *    thread or task that can still run. It stops every thread for a moment (a signal,
 *    CHAN_STOP_SIGNAL = SIGURG, as Go's preemption), marks the channels whose address is held
 *    anywhere a running thread could read it - the stacks and registers of the threads and
 *    tasks not blocked in channel operations, and every writable mapping of the process (data,
 *    heap, anonymous memory) word by word, but not the stacks of the blocked waiters nor
 *    libchan's own bookkeeping - and, to a fixed point, makes every blocked waiter whose
 *    channels turn out reachable a root in turn. A waiter with a deadline, a timer, a context
 *    or a WaitGroup (whose memory holds its channel, while it exists) keeps what it waits on
 *    alive.
 *
 * Conservative: a word that happens to equal a channel's address (a stale copy in freed
 * memory, an integer) hides a leak; a leak reported is real, for what the process could still
 * do at the moment of the check: nothing that can run holds the address of any channel the
 * waiter waits on. An address kept only in a form that is not the plain, aligned pointer
 * (xored, tagged, packed, in a file or another process) is not seen: a channel held only so
 * is taken for unreachable, and its waiters are reported.
 *
 * Both need the registry of live channels on: chan_dump_enable() (or CHAN_DUMP=1, or
 * CHAN_LEAKCHECK=1) before the channels and the waits of interest are made; channels made
 * before are seen only once named, and waits that began before are never reported leaked.
 *
 * Environment, read once when the program starts:
 *   CHAN_LEAKCHECK=1   chan_dump_enable() now, and at exit both reports on stderr (if not empty)
 *
 * Cost: nothing while these calls are not made (the channel operations do not change). A check
 * stops the process while it reads its memory: tens of milliseconds for a heap of a few
 * hundred megabytes (chan_leak(3) has figures).
 *
 * Any thread may call them, also a task, except from a signal handler; checks are serialized.
 * Errors are negative errno values, as everywhere in libchan.
 */
#ifndef CHAN_LEAK_H
#define CHAN_LEAK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chan.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

/* Waiters a check leaves out: long-lived ones the program knows about (a server's accept loop).
 * A waiter is left out when every channel it waits on is among chans, or has a name
 * (chan_trace_name_chan) that starts with prefix (a channel never named matches no prefix; a
 * waiter on no channel is never left out so), or when it has been blocked for less than
 * min_blocked nanoseconds. Unused fields are 0 / NULL; chans NULL with nchans > 0 is -EINVAL. */
struct chan_leak_ignore {
    chan_t *const *chans;
    size_t nchans;
    const char *prefix;
    int64_t min_blocked;
};

/* Prints every thread and task blocked now in a channel operation or select to out (NULL:
 * print nothing), on no channel too (select {}, a nil channel), Go's goroutine header for each
 * ("goroutine 7 [chan receive, 1.502 s]:", "thread 4321 [select (no cases), 2.001 s]:")
 * followed by the channels it waits on. Returns how many (after ignore, which may be NULL), or
 * -EINVAL (ignore->chans NULL with nchans > 0), -ENODEV (the registry is off:
 * chan_dump_enable), -ENOMEM. */
int chan_leftovers(FILE *out, const struct chan_leak_ignore *ignore);

/* Prints the partial deadlocks of the process to out (NULL: print nothing), as Go's deadlock
 * report reads: "partial deadlock: 2 of 105 goroutines are blocked forever:", each leaked
 * waiter with the channels it waits on, then the wait-for picture (every channel involved, who
 * waits on it, in which direction). Prints nothing when none is found. Returns the number of
 * leaked waiters (after ignore, which may be NULL), or -EINVAL, -ENODEV, -ENOMEM, -ENOSYS (a thread
 * could not be stopped and the process cannot read its own memory safely: process_vm_readv
 * refused), or the negated errno of a system call that failed. When a trace is being recorded,
 * each leaked waiter is also an event of it. */
int chan_leak_check(FILE *out, const struct chan_leak_ignore *ignore);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* CHAN_LEAK_H */
