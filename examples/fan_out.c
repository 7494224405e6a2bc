/* SPDX-License-Identifier: MIT */
/*
 * fan_out - one thread per piece of work, results collected from one buffered channel.
 *
 * The manager starts N workers and gives their results channel a buffer of N: every worker
 * can send its one result without waiting for the manager, and exit. The price of that
 * buffer is the delivery guarantee: a worker no longer knows when its result is read. Here
 * that is fine, because the manager reads exactly N values.
 *
 * To make the point, the manager joins every worker *before* reading a single result: that
 * works only because the buffer holds all N. With a smaller buffer it would wait forever.
 *
 * Run: ./fan_out
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "chan.h"

#define N 8

struct result {
    int worker;
    int value;
};

static chan_t *results;

/* A nil channel is never ready: waiting on it until a deadline is a sleep. */
static void sleep_ms(int ms) { chan_recv_until(NULL, NULL, chan_now() + ms * 1000000LL); }

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    sleep_ms((id * 7) % 5); /* work of different lengths: results arrive in any order */
    struct result r = {id, id * id};
    chan_send(results, &r); /* the buffer has room: never blocks */
    return NULL;
}

static int by_worker(const void *a, const void *b)
{
    return ((const struct result *)a)->worker - ((const struct result *)b)->worker;
}

int main(void)
{
    results = chan_make(sizeof(struct result), N); /* one slot per worker */
    if (results == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t w[N];
    for (long i = 0; i < N; i++)
        pthread_create(&w[i], NULL, worker, (void *)i);
    for (int i = 0; i < N; i++)
        pthread_join(w[i], NULL);
    printf("manager: all %d workers finished; %zu results wait in the buffer\n", N,
           chan_len(results));

    struct result got[N];
    for (int i = 0; i < N; i++) {
        chan_recv(results, &got[i]);
        fprintf(stderr, "manager: received worker %d's result\n", got[i].worker);
    }
    qsort(got, N, sizeof got[0], by_worker);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        printf("worker %d: %d\n", got[i].worker, got[i].value);
        ok &= got[i].worker == i && got[i].value == i * i;
    }
    chan_free(results);
    return ok ? 0 : 1;
}
