/* SPDX-License-Identifier: MIT */
/*
 * ctx_cancel.c - cancellation with a deadline, through a context (chan_time.h).
 *
 * The Go course's pattern: hand a job to a worker, wait for its result only as long as you are
 * willing to, and tell the worker to stop when you give up. A context carries both halves: its
 * done channel is a select case like any other (closed when the deadline comes), and the
 * worker polls the same channel between steps to stop early. Job 1 fits in its second; job 2
 * needs ten, so the deadline wins and the worker is told to stop.
 *
 * Watch for: job 2's answer is the deadline (-ETIMEDOUT from chan_ctx_err), and its worker
 * stops after a few steps instead of doing all of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "chan.h"
#include "chan_time.h"

struct job {
    chan_ctx_t *ctx;
    int steps;      /* work to do, 5 ms a step */
    chan_t *result; /* capacity 1: a late worker can always deliver and exit */
    int done;       /* steps actually done */
};

static void *worker(void *arg)
{
    struct job *j = arg;
    for (j->done = 0; j->done < j->steps; j->done++) {
        /* A closed done channel answers at once: the context was cancelled, stop. */
        if (chan_tryrecv(chan_ctx_done(j->ctx), NULL) == -EPIPE)
            return NULL;
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    int answer = 42;
    chan_send(j->result, &answer);
    return NULL;
}

/* Runs one job under a 1 s deadline (generous: a loaded machine may stall a thread); returns 0 if
 * the answer came in time. */
static int run(int id, int steps)
{
    struct job j = {.steps = steps, .result = chan_make(sizeof(int), 1)};
    j.ctx = chan_ctx_with_timeout(chan_ctx_background(), CHAN_SECOND);
    if (!j.result || !j.ctx)
        return -1;
    pthread_t t;
    pthread_create(&t, NULL, worker, &j);

    int answer = 0;
    struct chan_case cases[2] = {
        chan_case_recv(j.result, &answer),
        chan_case_recv(chan_ctx_done(j.ctx), NULL),
    };
    int which = chan_select(cases, 2);
    if (which == 0)
        printf("job %d: result %d\n", id, answer);
    else
        printf("job %d: no result: %s\n", id,
               chan_ctx_err(j.ctx) == -ETIMEDOUT ? "deadline exceeded (-ETIMEDOUT)" : "cancelled");
    chan_ctx_cancel(j.ctx); /* always: it releases the context's timer early */
    pthread_join(t, NULL);
    if (which == 1) {
        printf("job %d: the worker stopped early: %s\n", id, j.done < j.steps ? "yes" : "no");
        fprintf(stderr, "job %d: the worker did %d of %d steps\n", id, j.done, j.steps);
    }
    chan_ctx_free(j.ctx);
    chan_free(j.result);
    return which == 0 ? 0 : 1;
}

int main(void)
{
    int ok = run(1, 2) == 0; /* ~10 ms of work: in time */
    ok &= run(2, 2000) == 1; /* ~10 s of work: the deadline wins */
    return ok ? 0 : 1;
}
