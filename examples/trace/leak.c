/* SPDX-License-Identifier: MIT */
/*
 * leak.c - a goroutine leak, found while the program runs, and its fix (chan_leak.h).
 *
 * The classic: a request starts a worker to compute a result, waits for it a short while,
 * and gives up. The worker finishes later and sends its result on an unbuffered channel that
 * nobody will ever receive from: it is blocked forever, and Go's "all goroutines are asleep"
 * never says so, since the rest of the program runs on. chan_leak_check does: nothing that can
 * still run holds the channel, so the worker can never be woken.
 *
 * The fix is Go's: a buffer of one. The worker's send completes into the buffer whether or not
 * anyone still waits, and the worker returns; the channel goes with its last user.
 *
 * Standard output: what each version leaves behind. Standard error: the leak report itself
 * (its addresses and times change from run to run).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "chan.h"
#include "chan_leak.h"
#include "chan_sched_mpg.h"
#include "chan_trace.h"

#define MS 1000000LL

/* Closed by a request once it has given up: the worker's cue to finish. In a real program the
 * worker is simply slower than its caller's patience; here it waits for the caller to give up,
 * so that the program says the same on any machine, however loaded. One per request, each
 * kept in this global array. */
static chan_t *gave_up[2];
static atomic_int handed_over; /* sends that completed */

/* The worker: finishes once its request has given up, then hands over its result. */
static void worker(void *arg)
{
    chan_t *result = arg;
    chan_recv(gave_up[chan_cap(result)], NULL);
    int v = 42;
    if (chan_send(result, &v) == 0) {
        fprintf(stderr, "worker: result handed over\n");
        atomic_fetch_add(&handed_over, 1);
    }
}

/* One request: waits 5 ms for the result, then gives up. cap 0 is the bug, cap 1 the fix. */
static int request(size_t cap)
{
    chan_t *result = chan_make(sizeof(int), cap);
    chan_trace_name_chan(result, cap ? "result (buffered)" : "result");
    gave_up[cap] = chan_make(0, 0);
    chan_mpg_go(worker, result);
    int v;
    if (chan_recv_until(result, &v, chan_now() + 5 * MS) == 0)
        return v;
    fprintf(stderr, "request: gave up waiting\n");
    chan_close(gave_up[cap]);
    return -1; /* the channel is not freed here: the worker may still use it */
}

/* The leaks once this round's worker has either handed its result over or blocked for good:
 * a monitor would check now and then; this one checks every 10 ms until it sees what it waits
 * for (at most 10 s, however loaded the machine), then prints the report. */
static int leaks_once_settled(int before, int handed)
{
    for (int i = 0; i < 1000; i++) {
        if (atomic_load(&handed_over) > handed || chan_leak_check(NULL, NULL) > before)
            break;
        chan_mpg_sleep_until(chan_now() + 10 * MS);
    }
    return chan_leak_check(stderr, NULL);
}

int main(void)
{
    chan_dump_enable(); /* the registry of live channels: before the channels of interest */
    if (chan_mpg_start(0) != 0)
        return 1;

    request(0);
    int leaked = leaks_once_settled(0, 0);
    printf("unbuffered result: %d goroutine blocked forever\n", leaked);

    request(1);
    int after_fix = leaks_once_settled(leaked, 0) - leaked; /* the first one is still there */
    printf("buffered result: %d more\n", after_fix);

    return leaked == 1 && after_fix == 0 ? 0 : 1;
}
