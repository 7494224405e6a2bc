/* SPDX-License-Identifier: MIT */
/*
 * cancellation - give up waiting at a deadline, and tell the worker to stop.
 *
 * The manager asks a worker for a result but will wait only so long: chan_recv_until
 * returns -ETIMEDOUT at the deadline (an absolute time on chan_now()'s clock). Two details
 * make this safe:
 *
 *  - The result channel has a buffer of one. A worker that finishes after the manager gave
 *    up can still send its result, and exit; on an unbuffered channel it would block forever
 *    waiting for a receiver that is gone (a leaked thread).
 *  - The manager closes `cancel`, a signal-only channel, when it gives up. The worker checks
 *    it between steps with chan_tryrecv (-EPIPE: closed) and stops early: no work is wasted.
 *
 * Job 1 finishes in time; job 2 is too slow and is cancelled.
 *
 * Run: ./cancellation
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "chan.h"

#define MS 1000000LL /* nanoseconds */

struct job {
    int id, steps;  /* the work: steps of 10 ms each */
    chan_t *result; /* int, buffer of 1 */
    chan_t *cancel; /* elemsize 0, closed to cancel */
    int steps_done;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    for (j->steps_done = 0; j->steps_done < j->steps; j->steps_done++) {
        if (chan_tryrecv(j->cancel, NULL) == -EPIPE)
            return NULL;                                   /* cancelled: stop, send nothing */
        chan_recv_until(NULL, NULL, chan_now() + 10 * MS); /* one step (a nil channel: a sleep) */
    }
    int answer = 42 * j->id;
    chan_send(j->result, &answer); /* never blocks: the buffer has room for it */
    return NULL;
}

static int run(int id, int steps, int64_t timeout)
{
    struct job j = {.id = id, .steps = steps};
    j.result = chan_make(sizeof(int), 1);
    j.cancel = chan_make(0, 0);
    if (j.result == NULL || j.cancel == NULL)
        return -1;
    pthread_t w;
    pthread_create(&w, NULL, worker, &j);

    int answer, ok = 1;
    int rc = chan_recv_until(j.result, &answer, chan_now() + timeout);
    if (rc == 0) {
        printf("job %d: result %d\n", id, answer);
    } else if (rc == -ETIMEDOUT) {
        printf("job %d: no result within %lld ms: cancelled\n", id, (long long)(timeout / MS));
        chan_close(j.cancel);
    } else {
        ok = 0;
    }
    pthread_join(w, NULL); /* the worker always ends: nothing leaks */
    if (rc == -ETIMEDOUT) {
        printf("job %d: the worker stopped early: %s\n", id, j.steps_done < j.steps ? "yes" : "no");
        ok = j.steps_done < j.steps;
        fprintf(stderr, "job %d: the worker did %d of %d steps\n", id, j.steps_done, j.steps);
    }
    chan_free(j.result);
    chan_free(j.cancel);
    return ok && (rc == 0) == (id == 1) ? 0 : -1;
}

int main(void)
{
    int bad = 0;
    bad |= run(1, 2, 2000 * MS); /* 20 ms of work, 2 s allowed: in time */
    bad |= run(2, 300, 50 * MS); /* 3 s of work, 50 ms allowed: cancelled */
    return bad ? 1 : 0;
}
