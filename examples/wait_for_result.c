/* SPDX-License-Identifier: MIT */
/*
 * wait_for_result - the manager waits for a worker's result (signal with data).
 *
 * The worker computes something and sends the result on an unbuffered channel; the manager
 * blocks in chan_recv until it arrives. The send completes only when the manager has taken
 * the value, so when chan_send returns the worker knows its result was delivered and may
 * exit: nothing is left behind in a buffer.
 *
 * Run: ./wait_for_result
 */
#include <pthread.h>
#include <stdio.h>

#include "chan.h"

struct result {
    int n;         /* the question: the sum of the squares 1..n */
    long long sum; /* the answer */
};

static void *worker(void *arg)
{
    chan_t *results = arg;
    struct result r = {.n = 1000};
    for (long long i = 1; i <= r.n; i++)
        r.sum += i * i;
    if (chan_send(results, &r) == 0) /* returns once the manager has r */
        printf("worker: result delivered\n");
    return NULL;
}

int main(void)
{
    chan_t *results = chan_make(sizeof(struct result), 0);
    if (results == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t w;
    pthread_create(&w, NULL, worker, results);

    struct result r;
    if (chan_recv(results, &r) != 0) /* blocks until the worker sends */
        return 1;
    printf("manager: sum of squares 1..%d = %lld\n", r.n, r.sum);

    pthread_join(w, NULL);
    chan_free(results);
    return r.sum == 333833500LL ? 0 : 1;
}
