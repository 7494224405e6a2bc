/* SPDX-License-Identifier: MIT */
/*
 * chan_trace.h - see the signals: traces for Perfetto, names, and a dump of blocked waiters.
 *
 * An addition to chan.h's contract (documented in chan_trace(3)), built into libchan (not
 * into the drop-in pair dist/chan.c, where tracing does not exist).
 *
 * Tracing records every channel event - make, free, send, receive, close, block, wake-up (who
 * woke whom), select cases and choice, timer fire - with a CLOCK_MONOTONIC timestamp, the thread
 * and the channel, and writes the Chrome Trace Event Format JSON that Perfetto's trace viewer
 * and chrome://tracing open: one track per thread, a flow arrow from each waker to the operation it
 * woke. tools/trace2mermaid turns it into a Mermaid sequence diagram or an SVG timeline.
 *
 * Environment, CHAN_TRACE and CHAN_DUMP read once when the program starts (a constructor of
 * libchan's trace/record.c), the two counts by each chan_trace_start (a value that is not a
 * positive decimal number is ignored; one above the largest is the largest):
 *   CHAN_TRACE=file.json       chan_trace_start("file.json") now, chan_trace_stop() at exit
 *   CHAN_TRACE_THREADS=N       per-thread buffers made at start (default 64, at most 1024)
 *   CHAN_TRACE_EVENTS=N        events per thread buffer (default 8192, 56 bytes each, mapped at
 *                              start; at most 16777216)
 *   CHAN_DUMP=1                chan_dump_enable(); CHAN_DUMP=sigquit: chan_dump_on_sigquit()
 *
 * Cost. Off: one predictable branch per operation (a flag read relaxed). On: each event is
 * written to the calling thread's own buffer (no lock is shared between threads); buffers are
 * made when a trace starts, or when a thread registers (chan_trace_register_thread(), or naming
 * it) - never inside a channel operation. A thread that finds no buffer left, or a full one,
 * loses the event: chan_trace_dropped() counts them.
 *
 * Every function may be called from any thread at any time, except where it says otherwise.
 * Errors are negative errno values, as everywhere in libchan.
 */
#ifndef CHAN_TRACE_H
#define CHAN_TRACE_H

#include <stdint.h>
#include <stdio.h>

#include "chan.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

/* ---- Tracing --------------------------------------------------------------------------- */

/* Starts recording into path (created or truncated now; written by chan_trace_stop). 0;
 * -EINVAL (path NULL); -EBUSY while a trace is running; -ENOMEM; -errno from opening path. */
int chan_trace_start(const char *path);

/* Stops recording and writes the trace. 0; -ESRCH when no trace is running; -errno (-ENOSPC,
 * -EPIPE, -EIO, ...) when the file cannot be written (the trace is stopped all the same; SIGPIPE
 * is held back while writing, so a pipe nobody reads gives -EPIPE, not death). Waits for events
 * being written by other threads (a few instructions each); never waits for a blocked
 * operation. */
int chan_trace_stop(void);

/* Events lost by the trace running now, or else by the last one (no buffer left for a thread,
 * or a full buffer). */
uint64_t chan_trace_dropped(void);

/* Gives the calling thread its trace buffer now (during a trace), so that its first events are
 * not dropped when more threads trace than CHAN_TRACE_THREADS. 0, -ENOMEM, -ESRCH (no trace). */
int chan_trace_register_thread(void);

/* Names: shown by the trace (track and channel names) and by chan_dump. The name is copied, up
 * to 47 bytes, cut before a UTF-8 character that does not fit whole. Any bytes: the trace
 * writes valid JSON (escapes; U+FFFD for bytes that are not UTF-8), the dump quotes and escapes
 * it on one line. Naming a thread also registers it (chan_trace_register_thread) when a trace is
 * running. A channel's name lasts until it is freed, a thread's until the thread exits (the
 * trace being recorded keeps it on the thread's track). At most 512 named threads alive at
 * once: -ENOMEM past that. 0; -EINVAL (NULL); -ENOMEM. */
int chan_trace_name_chan(chan_t *c, const char *name);
int chan_trace_name_thread(const char *name);

/* For a user-space scheduler (sched/): when set, every event also records fn() - the id of the
 * task (Go's G) running on the calling thread, 0 for none - shown as "g" in the trace; so does
 * an operation that blocks while the dump's registry is on (chan_dump and chan_leftovers print
 * "task N on thread ..."; a G of libchan-mpg named by its own ids is "goroutine N" there, as in
 * its deadlock report). fn is called on the thread of the event, possibly with a channel lock
 * held: it must not call into libchan. NULL removes it. libchan-mpg (chan_mpg_start) sets it to
 * its G ids while it runs, when none is set, and removes that one at chan_mpg_stop; a hook the
 * program sets, before or meanwhile, takes precedence and is left in place. */
void chan_trace_task_hook(uint64_t (*fn)(void));

/* ---- Dump of live channels --------------------------------------------------------------- */

/* From now on, channels made are registered (sharded lists keyed by address: no global lock),
 * so that chan_dump can list them; channels made before are listed only once named. 0. It
 * cannot be disabled. */
int chan_dump_enable(void);

/* Prints every registered live channel (name; "timer", "context done", "fd readable" or "fd
 * writable" for one libchan made; len/cap, closed) with its blocked senders and
 * receivers (thread, operation, how long blocked) to out; a select counts once per channel and
 * direction, however many of its cases name that channel. Then, under "blocked on no channel:",
 * each thread and each G of libchan-mpg (not a task of another chan_sched scheduler) blocked
 * since the registry was on in a
 * select with no case or only nil ones, or on a nil channel, in Go's words ("select (no
 * cases)", "chan receive (nil chan)"...). Takes each channel's lock only with a
 * trylock and skips (saying so) a channel whose lock is held at that moment. Returns the number
 * of channels listed, or -EINVAL (out NULL), or -ENODEV when chan_dump_enable was never called
 * and no channel was ever named, or -errno (-EIO when none is known) when out's error indicator
 * is set after the dump (a full disk; a pipe nobody reads, where SIGPIPE is ignored). */
int chan_dump(FILE *out);

/* chan_dump_enable(), then SIGQUIT prints a dump on stderr (Go's SIGQUIT goroutine dump, but
 * the process goes on). The handler only writes a byte to a pipe; a dump thread (all signals
 * blocked) does the printing. 0; -errno from pipe, pthread_create or sigaction. Replaces any
 * SIGQUIT handler; a second call does nothing. */
int chan_dump_on_sigquit(void);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* CHAN_TRACE_H */
