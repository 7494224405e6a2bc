#!/bin/sh
# SPDX-License-Identifier: MIT
# make demo: a guided run of a few examples. Usage: examples/demo.sh DIR (the built examples)
# Each program prints its result on standard output and, indented, what its threads went
# through on standard error; both are shown. The sources in examples/ explain each one.
set -eu
dir=$1

# show NAME: print the description read from standard input, then run examples/NAME.
show() {
    echo
    echo "=== $1 ================================================================" | cut -c1-72
    fmt -w 76
    echo "--- ./$1"
    # Line-buffered, so that results and narration appear in the order they happen.
    if command -v stdbuf >/dev/null; then stdbuf -oL "$dir/$1" 2>&1; else "$dir/$1" 2>&1; fi
}

echo "libchan demo: Go's channels and select, in C. Each program below is short and"
echo "commented: read examples/NAME.c beside its output."

show pipeline <<'T'
Three stages joined by channels with small buffers: a reader, 3 transformers
(they capitalise each word) and 2 slow writers. Watch the reader being held
back once the buffers fill: that is back-pressure, and it bounds the work in
flight (13 records here, whatever the input's length). Shutdown is by close:
the reader closes its channel, the last transformer out closes the next one,
the writers drain it and stop. The writers finish in any order, yet the lines
come out in input order: each record carries its place.
T

show sieve <<'T'
The concurrent prime sieve: a generator sends 2, 3, 4, ... and each prime found
adds a filter thread to the chain, which drops that prime's multiples. Every
hand-off is on an unbuffered channel; closing the generator's channel shuts the
chain down, stage by stage.
T

show fan_out_sem <<'T'
Twelve workers start at once, but a channel with a buffer of 3 serves as a
semaphore: sending a token takes a slot, receiving it back frees the slot.
Never more than 3 run the limited section at once.
T

show drop <<'T'
A producer offers 200 values to a slower consumer through a buffer of 8, with
chan_trysend: when the buffer is full, the value is dropped instead of waited
for. The counts depend on timing; that every value is either received once or
dropped does not.
T

show cancellation <<'T'
Waiting with a deadline. Job 1 answers in time. Job 2 is too slow:
chan_recv_until returns -ETIMEDOUT, and closing a signal-only channel tells
its worker to stop early. Its result channel has a buffer of one, so a late
worker could still send and exit: no thread is leaked.
T

show crawler <<'T'
A crawl of a pretend web by 4 workers. The coordinator selects between handing
out work and taking in results (a nil channel switches the send case off when
it has nothing to hand out), counts the pages outstanding, and at zero closes
the work channel, which stops the workers.
T

show heartbeat <<'T'
Time as a channel (chan_time.h). A worker's select waits on its jobs, on a
ticker that beats every 20 ms and on an idle timer that each job pushes back
with chan_timer_reset. The producer sends 5 jobs, then falls silent without
closing anything: only the idle timer, 500 ms after the last job, ends the
loop. Heartbeats keep coming while it waits.
T

show ctx_cancel <<'T'
Cancellation through a context (chan_time.h), Go's context.WithTimeout: its
done channel is a select case beside the result, and the worker polls it
between steps. Job 1 answers within its second. Job 2 needs ten: the deadline
closes the done channel, the select takes that case, chan_ctx_err says why
(-ETIMEDOUT), and the worker stops after a few steps instead of all of them.
T

# Built only with libchan-mpg (MPG=1).
if [ -x "$dir/echo" ]; then show echo <<'T'
I/O on Gs (libchan-mpg, chan_io.h). A TCP echo server on 127.0.0.1 starts a G
per connection; 50 client Gs each send 20 messages and check what comes back.
Every accept, connect, read and write parks its G until the socket is ready
(the scheduler's netpoller wakes it), so a few threads serve all 50
connections. A cancelled context stops the server's accept.
T
fi

echo
echo "More in examples/: wait_for_task, wait_for_result, wait_for_finished,"
echo "pooling, fan_out, and in examples/sync/ fan_in and first_error (WaitGroup"
echo "and group). The ideas behind them: man 7 chan (man -l man/chan.7)."
