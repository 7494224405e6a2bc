/* SPDX-License-Identifier: MIT */
/*
 * signals.c - the three signalling patterns of chan(7), traced, for the pictures in docs/.
 *
 *   signals handoff    a worker sends three results on an unbuffered channel: each send
 *                      returns only once the manager has taken the value (delivery guarantee)
 *   signals buffered   the same on a channel of capacity 3: the worker does not wait, the
 *                      values sit in the buffer until the manager takes them (no guarantee)
 *   signals close      signal without data: the manager closes `done` (elemsize 0) and the
 *                      one close wakes all three workers that wait on it
 *
 * Run under a trace and convert (docs/pictures.sh does both):
 *   CHAN_TRACE=handoff.json ./signals handoff
 *   tools/trace2mermaid handoff.json -o handoff.mmd --svg handoff.svg
 * The short sleeps only make each picture show the waiting it is about.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "chan_trace.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static chan_t *results, *done;

static void *worker(void *arg)
{
    chan_trace_name_thread("worker");
    (void)arg;
    for (int i = 1; i <= 3; i++)
        chan_send(results, &i);
    return NULL;
}

static void *waiter(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "worker %d", (int)(long)arg);
    chan_trace_name_thread(name);
    chan_recv(done, NULL); /* -EPIPE: closed, no data */
    return NULL;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "handoff";
    chan_trace_name_thread("manager");
    pthread_t t[3];
    if (strcmp(what, "close") == 0) {
        done = chan_make(0, 0);
        chan_trace_name_chan(done, "done");
        for (long i = 0; i < 3; i++) {
            pthread_create(&t[i], NULL, waiter, (void *)(i + 1));
            sleep_ms(10); /* in order, for the picture */
        }
        sleep_ms(20);
        chan_close(done);
        for (int i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
        chan_free(done);
        return 0;
    }
    results = chan_make(sizeof(int), strcmp(what, "buffered") == 0 ? 3 : 0);
    chan_trace_name_chan(results, "results");
    pthread_create(&t[0], NULL, worker, NULL);
    int v, sum = 0;
    for (int i = 0; i < 3; i++) {
        sleep_ms(20); /* the manager is busy: who waits for whom? */
        chan_recv(results, &v);
        sum += v;
    }
    pthread_join(t[0], NULL);
    chan_free(results);
    return sum == 6 ? 0 : 1;
}
