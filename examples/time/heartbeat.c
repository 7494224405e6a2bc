/* SPDX-License-Identifier: MIT */
/*
 * heartbeat.c - a select loop with a heartbeat ticker and an idle time-out (chan_time.h).
 *
 * A worker serves a channel of jobs. Beside the jobs its select waits on a ticker, to show it
 * is alive every 20 ms while it works, and on an idle timer, reset whenever a job comes: after
 * 500 ms without work it stops. The producer sends 5 jobs 30 ms apart, then falls silent
 * without closing anything, so only the idle timer can end the loop.
 *
 * Watch for: heartbeats keep coming between jobs, and the loop ends by the time-out, about
 * 500 ms after the last job (the time-out is generous, so that a loaded machine that stalls
 * the producer for a while does not end the loop between jobs). chan_timer_reset discards a
 * time-out that fired but was not yet received (Go 1.23's rule), so a stale one cannot end
 * the loop early.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "chan.h"
#include "chan_time.h"

#define JOBS 5

static void *producer(void *arg)
{
    chan_t *jobs = arg;
    for (int i = 1; i <= JOBS; i++) {
        nanosleep(&(struct timespec){0, 30 * 1000 * 1000}, NULL);
        chan_send(jobs, &i);
    }
    return NULL; /* silent from now on: the channel stays open */
}

int main(void)
{
    chan_t *jobs = chan_make(sizeof(int), 0);
    chan_ticker_t *beat = chan_ticker_make(20 * CHAN_MILLISECOND);
    chan_timer_t *idle = chan_timer_make(500 * CHAN_MILLISECOND);
    if (!jobs || !beat || !idle)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, producer, jobs);

    int job = 0, served = 0, beats = 0, beats_before_last_job = 0;
    int64_t tick = 0, last_job_at = 0, stopped_at = 0;
    for (;;) {
        struct chan_case cases[3] = {
            chan_case_recv(jobs, &job),
            chan_case_recv(chan_ticker_chan(beat), &tick),
            chan_case_recv(chan_timer_chan(idle), &stopped_at),
        };
        int which = chan_select(cases, 3);
        if (which == 0) {
            served++;
            beats_before_last_job = beats;
            last_job_at = chan_now();
            fprintf(stderr, "worker: job %d\n", job);
            chan_timer_reset(idle, 500 * CHAN_MILLISECOND);
        } else if (which == 1) {
            beats++;
            fprintf(stderr, "worker: heartbeat %d\n", beats);
        } else {
            break;
        }
    }
    pthread_join(t, NULL);
    int64_t quiet = (stopped_at - last_job_at) / CHAN_MILLISECOND;
    printf("worker: served %d jobs\n", served);
    printf("worker: heartbeats while jobs came: %s\n", beats_before_last_job >= 3 ? "yes" : "no");
    printf("worker: stopped by the idle time-out, not before 500 ms without work: %s\n",
           quiet >= 500 ? "yes" : "no");
    fprintf(stderr, "worker: %d heartbeats in all; stopped %lld ms after the last job\n", beats,
            (long long)quiet);
    chan_ticker_free(beat);
    chan_timer_free(idle);
    chan_free(jobs);
    return served == JOBS && beats_before_last_job >= 3 && quiet >= 500 ? 0 : 1;
}
