/* SPDX-License-Identifier: MIT */
/*
 * wait_for_task - a worker waits for its task (signal with data, guarantee of delivery).
 *
 * The worker is started first and blocks in chan_recv on an unbuffered channel: it has
 * nothing to do until the manager hands it a task. The manager prepares the task and sends
 * it. Because the channel has no buffer, chan_send returns only once the worker holds the
 * task: when the manager goes on, it *knows* the hand-off happened. That knowledge costs
 * latency: the manager cannot go on until the worker has taken the task.
 *
 * Run: ./wait_for_task
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "chan.h"

struct task {
    int id;
    char what[40];
};

static void *worker(void *arg)
{
    chan_t *tasks = arg;
    struct task t;

    /* Blocks until the manager sends; 0 means t holds the task. */
    if (chan_recv(tasks, &t) != 0)
        return NULL;
    printf("worker: received task %d: %s\n", t.id, t.what);
    return NULL;
}

int main(void)
{
    chan_t *tasks = chan_make(sizeof(struct task), 0); /* 0: unbuffered */
    if (tasks == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t w;
    pthread_create(&w, NULL, worker, tasks);

    struct task t = {.id = 1};
    strcpy(t.what, "resize holiday.png to 640x480");
    int rc = chan_send(tasks, &t); /* returns once the worker has the task */
    printf("manager: chan_send returned %d: the worker has task %d\n", rc, t.id);

    pthread_join(w, NULL);
    chan_free(tasks);
    return rc == 0 ? 0 : 1;
}
