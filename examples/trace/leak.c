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
#include <stdio.h>
#include <stdlib.h>

#include "chan.h"
#include "chan_leak.h"
#include "chan_sched_mpg.h"
#include "chan_trace.h"

#define MS 1000000LL

/* The worker: takes 20 ms, then hands over its result. */
static void worker(void *arg)
{
    chan_t *result = arg;
    chan_mpg_sleep_until(chan_now() + 20 * MS);
    int v = 42;
    if (chan_send(result, &v) == 0)
        fprintf(stderr, "worker: result handed over\n");
}

/* One request: waits 5 ms for the result, then gives up. cap 0 is the bug, cap 1 the fix. */
static int request(size_t cap)
{
    chan_t *result = chan_make(sizeof(int), cap);
    chan_trace_name_chan(result, cap ? "result (buffered)" : "result");
    chan_mpg_go(worker, result);
    int v;
    if (chan_recv_until(result, &v, chan_now() + 5 * MS) == 0)
        return v;
    fprintf(stderr, "request: gave up waiting\n");
    return -1; /* the channel is not freed here: the worker may still use it */
}

/* Waits until the workers of this round are done or blocked for good (100 ms is plenty). */
static int leaks_after_a_while(void)
{
    chan_mpg_sleep_until(chan_now() + 100 * MS);
    return chan_leak_check(stderr, NULL);
}

int main(void)
{
    chan_dump_enable(); /* the registry of live channels: before the channels of interest */
    if (chan_mpg_start(0) != 0)
        return 1;

    request(0);
    int leaked = leaks_after_a_while();
    printf("unbuffered result: %d goroutine blocked forever\n", leaked);

    request(1);
    int after_fix = leaks_after_a_while() - leaked; /* the first one is still there */
    printf("buffered result: %d more\n", after_fix);

    return leaked == 1 && after_fix == 0 ? 0 : 1;
}
