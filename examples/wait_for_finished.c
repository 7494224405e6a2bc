/* SPDX-License-Identifier: MIT */
/*
 * wait_for_finished - signal without data: a close tells everybody "done".
 *
 * A worker fills a table, then closes `done`, a channel of elemsize 0 that never carries a
 * value. Two threads wait on it: the manager and an observer. One chan_close wakes both, and
 * any receive that comes later returns at once too: a close is a broadcast that needs no
 * count of its listeners. Each receive reports the close as -EPIPE.
 *
 * Everything the worker wrote before the close is visible to the threads the close woke, so
 * the table needs no lock of its own.
 *
 * Run: ./wait_for_finished
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "chan.h"

#define N 10

static int table[N];
static chan_t *done;

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++)
        table[i] = i * i;
    chan_close(done); /* the signal: no data, and it reaches everyone */
    return NULL;
}

static void *observer(void *arg)
{
    (void)arg;
    if (chan_recv(done, NULL) == -EPIPE)
        printf("observer: woken by the close, table[9] = %d\n", table[9]);
    return NULL;
}

int main(void)
{
    done = chan_make(0, 0); /* elemsize 0: a signal-only channel */
    if (done == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t o, w;
    pthread_create(&o, NULL, observer, NULL);
    pthread_create(&w, NULL, worker, NULL);

    int rc = chan_recv(done, NULL); /* blocks until the close: -EPIPE */
    int sum = 0;
    for (int i = 0; i < N; i++)
        sum += table[i];
    printf("manager: chan_recv returned %s, table sums to %d\n",
           rc == -EPIPE ? "-EPIPE (closed)" : "something else", sum);

    /* Later receives do not block: the channel stays closed. */
    printf("manager: a later chan_tryrecv returns %s\n",
           chan_tryrecv(done, NULL) == -EPIPE ? "-EPIPE too" : "something else");

    pthread_join(w, NULL);
    pthread_join(o, NULL);
    chan_free(done);
    return rc == -EPIPE && sum == 285 ? 0 : 1;
}
