/* SPDX-License-Identifier: MIT */
/*
 * pooling - a pool of workers takes tasks from one channel.
 *
 * Four workers block on the same unbuffered channel. Each task the manager sends goes to
 * exactly one of them, whichever is free (blocked receivers are served in FIFO order). When
 * the work is done the manager closes the channel: every worker's chan_recv then returns
 * -EPIPE and its loop ends. No worker needs to be told individually.
 *
 * Which worker gets which task depends on scheduling; that every task is done exactly once
 * does not, and is what this program checks.
 *
 * Run: ./pooling
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "chan.h"

#define WORKERS 4
#define TASKS 20

static chan_t *tasks;
static atomic_int done_count[TASKS]; /* how many times each task was done */

static void sleep_ms(int ms) /* a nil channel is never ready: this is a sleep */
{
    chan_recv_until(NULL, NULL, chan_now() + ms * 1000000LL);
}

static void *worker(void *arg)
{
    int id = (int)(long)arg, task, n = 0;
    while (chan_recv(tasks, &task) == 0) { /* ends on -EPIPE: closed and drained */
        atomic_fetch_add(&done_count[task], 1);
        sleep_ms(1); /* the work */
        n++;
    }
    fprintf(stderr, "worker %d: did %d tasks\n", id, n);
    return NULL;
}

int main(void)
{
    tasks = chan_make(sizeof(int), 0);
    if (tasks == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t w[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        pthread_create(&w[i], NULL, worker, (void *)i);

    for (int t = 0; t < TASKS; t++)
        chan_send(tasks, &t); /* each send returns once some worker has t */
    chan_close(tasks);        /* "no more work": ends every worker's loop */

    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    chan_free(tasks);

    int once = 0;
    for (int t = 0; t < TASKS; t++)
        once += atomic_load(&done_count[t]) == 1;
    printf("manager: %d of %d tasks done exactly once, by a pool of %d workers\n", once, TASKS,
           WORKERS);
    return once == TASKS ? 0 : 1;
}
