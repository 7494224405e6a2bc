/* SPDX-License-Identifier: MIT */
/*
 * chan_io.h - waiting for the world in libchan: file descriptors and signals as channels, and
 * I/O calls that a cancel channel or a deadline can interrupt. Go's netpoller (an fd's
 * readiness as something a select can wait on), the deadlines of net.Conn and os/signal's
 * Notify and Stop, for C on pthreads and on the Gs of libchan-mpg.
 *
 * An addition to the contract of chan.h, in the same style:
 *   - Failure is a negative errno value; chan_fd_chan returns NULL with errno set. Arguments
 *     are checked first: -EINVAL (or -EBADF for a bad fd) and nothing happened.
 *   - Deadlines are absolute, in nanoseconds on the CLOCK_MONOTONIC scale of chan_now();
 *     CHAN_FOREVER is none. As everywhere in libchan, a deadline is looked at only before
 *     blocking: an operation that can complete at once completes, whatever its deadline and
 *     its cancel channel.
 *   - cancel: any channel, or NULL (never ready). It interrupts a wait when it becomes ready to
 *     receive from: closed (a context's done channel: chan_ctx_done of chan_time.h), or with a
 *     value in it, which the interrupted call then takes and discards. The call returns
 *     -ECANCELED.
 *   - No call returns -EINTR: a signal is absorbed and the wait goes on to the same deadline.
 *   - Any thread may call any function, on the same fd from several threads too, but at most
 *     one operation at a time may wait for one fd in one direction: a second one that would
 *     have to wait returns -EBUSY (Go's netpoller has one reader and one writer slot per fd;
 *     Go's net.Conn serializes concurrent reads for you, here you serialize them). -EBUSY is
 *     decided before the thread's eventfd is made.
 *   - On a G of libchan-mpg (chan_sched_mpg.h) every call works as on a thread: the G parks
 *     and the scheduler's netpoller wakes it when the fd is ready. With any other scheduler
 *     plugged in with chan_sched_set(3), whose struct chan_sched has no way to wait for an fd,
 *     the task parks too, and a thread of libchan's own, started at the first such wait, polls
 *     the fds of every such task and unparks it when one is ready (chan_sched(3)); -EAGAIN
 *     when that thread cannot be started.
 *   - A thread keeps one eventfd from its first wait on an fd until it exits (its wake-up,
 *     see chan_io(3)); the signal delivery keeps one eventfd and one thread. Nothing else
 *     stays behind: chan_fd_close forgets all the library knew of an fd.
 *   - Not async-signal-safe.
 *
 * The library's record of an fd (its two fd channels, whether it set O_NONBLOCK) is made on the
 * first call that names the fd and lives until chan_fd_close(fd). Close such an fd with
 * chan_fd_close, not close(2): on Linux close(2) does not wake a thread blocked in poll on the
 * fd, and the record would outlive the fd and be taken for the next fd of the same number. A
 * call waiting on an fd that close(2) closes waits on until its cancel or deadline (with
 * neither, for ever), then returns -EBADF on a thread (poll's POLLNVAL) and -ETIMEDOUT or
 * -ECANCELED on a G (the close took the fd out of the scheduler's epoll set) and on a task of
 * another scheduler (its park ends at the deadline; -EBADF if the poll thread polled meanwhile).
 */
#ifndef CHAN_IO_H
#define CHAN_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "chan.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

/* ==== File descriptors ==================================================================== */

/* The channel of fd's readiness for events (POLLIN or POLLOUT, exactly one): a receive from it
 * completes whenever poll(2) finds fd ready at that moment, and yields an int, the revents
 * (POLLIN or POLLOUT, and POLLHUP, POLLERR, POLLNVAL as poll reports them: a pipe at the end of
 * its data, its writer gone, reports POLLHUP without POLLIN; one whose reader has gone, POLLERR,
 * with POLLOUT only while it has room). Level-triggered:
 * a receive consumes nothing, so it stays ready until the data is read (or the room used).
 * Use it as a CHAN_RECV case of chan_select to wait for fd and for channels at once.
 * One channel per (fd, direction), owned by the library's record of fd: calling again returns
 * the same channel, valid until chan_fd_close(fd). A select blocked on it when chan_fd_close
 * runs is woken, the case fires with ok false, as a closed channel's; an operation that starts
 * on it after chan_fd_close has begun is a use after free (as after chan_free). Receive only:
 * chan_send, chan_close and chan_free on it return -EINVAL; a send case on it in a select is
 * the caller's error, and fires with ok false as on a closed channel (select checks no case
 * for it: that would cost every select).
 * NULL with errno EBADF (fd negative, not open, or being closed), EINVAL (events), ENOMEM.
 * Does not change fd's flags. */
chan_t *chan_fd_chan(int fd, short events);

/* Waits until fd is ready for events (POLLIN or POLLOUT), cancel is ready, or the deadline.
 * Returns the revents (> 0) as chan_fd_chan's receive gives them; -ECANCELED; -ETIMEDOUT;
 * -EBADF (fd negative or not open, closed by chan_fd_close before or while waiting, or closed
 * with close(2) under a thread's wait: POLLNVAL, when the wait ends; see the top of the
 * file); -EBUSY (another operation already waits on fd in this direction); -EINVAL (events);
 * -ENOMEM; -EMFILE or -ENFILE (the thread's first wait on an fd, when no eventfd can be made);
 * -EAGAIN (a plugged-in scheduler's task, when the poll thread cannot be started: see above).
 * A ready fd returns at once, whatever cancel and the deadline. Does not change fd's flags. */
int chan_fd_wait(int fd, short events, chan_t *cancel, int64_t deadline);

/* read(2) that waits as chan_fd_wait(fd, POLLIN, ...) whenever fd has nothing to read: the
 * bytes read (0 at the end of the file, and at once for n 0, as read(2)), or -errno of
 * read(2), -ECANCELED, -ETIMEDOUT, and chan_fd_wait's errors. The first of these I/O calls on
 * fd sets O_NONBLOCK on it (on the open file description: a pipe or socket shared with another
 * process sees it too), once: a program that clears it again makes these calls block in
 * read(2) or write(2), whatever cancel and the deadline say (and chan_fd_close waits for them).
 * Nothing clears it, chan_fd_close neither: a terminal given as standard input stays
 * non-blocking for the shell after the program (chan_io(3) says what to do). -EINVAL when
 * n > SSIZE_MAX. A regular file is always ready: its reads never wait here. The deadline does
 * not move while the call waits: a timer's channel as cancel does (chan_timer_reset), as Go's
 * SetReadDeadline on a read under way. */
ssize_t chan_read(int fd, void *buf, size_t n, chan_t *cancel, int64_t deadline);

/* Writes all n bytes, waiting as chan_fd_wait(fd, POLLOUT, ...) whenever fd has no room: n;
 * or, when an error, cancel or the deadline stops it after part of the data went out, the
 * bytes written so far (fewer than n: call again for the rest, and so learn why); or, when
 * nothing went out, -errno of write(2), -ECANCELED, -ETIMEDOUT, chan_fd_wait's errors. On a
 * socket it sends with MSG_NOSIGNAL: a peer that has gone gives -EPIPE or -ECONNRESET, not
 * SIGPIPE (Go's behaviour; the first write after the peer closed may still succeed, as
 * send(2)'s does; on a pipe, SIGPIPE is raised as usual: see chan_signal(3)). Sets
 * O_NONBLOCK as chan_read. -EINVAL when n > SSIZE_MAX. */
ssize_t chan_write(int fd, const void *buf, size_t n, chan_t *cancel, int64_t deadline);

/* accept4(2) on the listening socket fd, waiting as chan_fd_wait(fd, POLLIN, ...) until a
 * connection comes: the new connection's fd, non-blocking and close-on-exec (Go's), or -errno,
 * -ECANCELED, -ETIMEDOUT and chan_fd_wait's errors. sa and len as accept(2) (may be NULL).
 * Connections aborted before they were accepted are skipped (Go's). Sets O_NONBLOCK on fd. */
int chan_accept(int fd, struct sockaddr *sa, socklen_t *len, chan_t *cancel, int64_t deadline);

/* connect(2) of socket fd to sa, waiting as chan_fd_wait(fd, POLLOUT, ...) while the
 * connection is in progress, then taking its outcome (SO_ERROR): 0, or -errno (-ECONNREFUSED,
 * -ETIMEDOUT from the network ...), -ECANCELED, -ETIMEDOUT and chan_fd_wait's errors. A
 * failed attempt leaves the socket unconnected, as a connect(2) that blocks does on Linux: a
 * call again makes a fresh attempt (Go's Dial, and portable code, close it and make a new
 * socket instead). Cancelled or timed out, the connection attempt is left in progress: close
 * fd (chan_fd_close), as Go does, or call again with the same sa, which waits for that
 * attempt's outcome. On a socket already connected, 0 (connect(2)'s EISCONN, taken as Go's
 * connect does when the socket has a peer, whose address is not compared with sa). Sets
 * O_NONBLOCK on fd. On a Unix-domain socket whose listener's backlog is full, -EAGAIN at
 * once, as connect(2) and Go's connect: there is no attempt in progress to wait for. */
int chan_connect(int fd, const struct sockaddr *sa, socklen_t len, chan_t *cancel,
                 int64_t deadline);

/* Closes fd the way Go's (*os.File).Close and net.Conn.Close do: every operation waiting on fd
 * wakes (chan_fd_wait, chan_read ... return -EBADF; a select's case on chan_fd_chan's channel
 * fires with ok false, as on a closed channel), calls that start on fd while it runs get -EBADF,
 * the library forgets its record of fd, then close(2). Returns once every call on fd has
 * returned and fd is closed: 0, or -errno of close(2) (an EINTR from close is reported as 0:
 * on Linux the fd is closed then); -EBADF when fd is negative or not open, or another
 * chan_fd_close of fd is under way. An fd the library never saw is just close(2)d. The table
 * of records is locked across close(2), so that the fd's number cannot be reused while the
 * record is still known; a close(2) that blocks (SO_LINGER) holds up other calls' first look
 * at the table meanwhile. Once it has returned the number is free, as after close(2): a call
 * that names it then works on whatever fd the process opened next under it (-EBADF if none),
 * so no other thread may name fd after it. Another fd of the same open file (dup(2)) keeps its
 * own record and channels. A child of fork() finishes a chan_fd_close that another thread had
 * begun: its copy of fd is closed and the number free. */
int chan_fd_close(int fd);

/* Sleeps until the deadline or until cancel is ready: 0 at the deadline, -ECANCELED. A
 * deadline already passed returns at once (-ECANCELED if cancel is ready then, else 0); with
 * cancel NULL and CHAN_FOREVER, never returns. Works under any scheduler: it waits on channels
 * only. */
int chan_sleep_until(int64_t deadline, chan_t *cancel);

/* ==== Signals (Go's os/signal) ============================================================ */

/* Go's signal.Notify: from now on, each of the n signals in sigs that the process receives is
 * sent to c, as an int (the signal number), without ever blocking: when c has no room (and no
 * receiver waiting), that delivery is dropped, as Go does. So give c a buffer: a burst of one
 * signal arrives at least once, not once per signal. c must have elemsize sizeof(int).
 * The signal's disposition becomes libchan's handler (installed on the first channel that
 * asks for the signal, and again on a later ask if the program has set its own since; the
 * disposition it replaces is kept and restored when the last channel stops): the default
 * action (termination for most signals) no longer happens, and a signal that was ignored is no
 * longer ignored (Go's rule). Calling again for the same c adds signals to its set. n == 0:
 * every signal that can be caught (sigs is not looked at), SIGURG too, with which chan_leak(3)
 * stops threads: its checks and this channel then contend for it.
 * -EINVAL, nothing changed: c NULL or of another element size; sigs NULL with n > 0; a signal
 * out of range (<= 0, or >= 65), one reserved by the C library (32 and 33, between 31 and
 * SIGRTMIN), SIGKILL and SIGSTOP (they cannot be caught, as in Go), or a synchronous fault,
 * SIGSEGV, SIGBUS, SIGFPE and SIGILL (returning from a handler would run the faulting
 * instruction again; Go turns them into panics). -EAGAIN (the delivery thread could not
 * start), -ENOMEM, or an eventfd's -EMFILE / -ENFILE.
 * The handler is async-signal-safe: it sets the signal's bit in a pending mask and writes an
 * eventfd; one delivery thread per process (all signals blocked in it but SIGURG, with which
 * chan_leak(3) stops threads) sends each pending signal to its channels. A signal that every
 * thread blocks stays pending with the kernel and is never delivered: libchan changes no thread's
 * signal mask. A child of fork() keeps the registrations and the handlers, not what was
 * pending in the parent; its deliveries resume when it next calls chan_signal_notify. A signal
 * that arrived before the call (its handler had run) does not go to c: the call first delivers
 * what is pending to the channels that asked until then (to none, for a stopped channel's). */
int chan_signal_notify(chan_t *c, const int *sigs, size_t n);

/* Go's signal.Stop: no signal is sent to c once it returns (a delivery under way finishes
 * first). Each signal that no channel asks for any more gets back the disposition it had
 * before libchan's handler, unless the program has set its own since (sigaction(2): a
 * SIG_IGN so set, Go's signal.Ignore, stays; a notify after it installs the handler again).
 * 0 (also when c was not registered), -EINVAL for NULL. Call it before freeing c. */
int chan_signal_stop(chan_t *c);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* CHAN_IO_H */
