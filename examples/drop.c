/* SPDX-License-Identifier: MIT */
/*
 * drop - shed load: a non-blocking send that drops what the consumer cannot take.
 *
 * A producer offers values faster than the consumer can handle them. Between them is a
 * channel with a small buffer. The producer uses chan_trysend, which never blocks: while the
 * buffer has room the value goes in; when it is full, chan_trysend returns -EAGAIN and the
 * producer drops the value and counts it instead of waiting. The producer keeps its pace;
 * the buffer's capacity is how much backlog the system accepts.
 *
 * How many values are dropped depends on timing (it is printed on standard error). That
 * every value is either received exactly once or counted as dropped does not.
 *
 * Run: ./drop
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "chan.h"

#define VALUES 200
#define CAP 8

static void sleep_ms(int ms) /* a nil channel is never ready: this is a sleep */
{
    chan_recv_until(NULL, NULL, chan_now() + ms * 1000000LL);
}

static chan_t *queue;
static int received[VALUES];

static void *consumer(void *arg)
{
    int v, n = 0;
    (void)arg;
    sleep_ms(10); /* a slow start: the buffer fills up meanwhile */
    while (chan_recv(queue, &v) == 0) {
        received[v]++;
        n++;
        if (n % 2 == 0)
            sleep_ms(1); /* a slow consumer: about 2 values a millisecond */
    }
    return NULL;
}

int main(void)
{
    queue = chan_make(sizeof(int), CAP);
    if (queue == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t c;
    pthread_create(&c, NULL, consumer, NULL);

    int sent = 0, dropped = 0;
    for (int v = 0; v < VALUES; v++) {
        if (chan_trysend(queue, &v) == -EAGAIN)
            dropped++; /* full: drop it, do not wait */
        else
            sent++;
        if (v % 4 == 3)
            sleep_ms(1); /* the producer's pace: about 4 values a millisecond */
    }
    chan_close(queue); /* the consumer drains what is buffered, then stops */
    pthread_join(c, NULL);
    chan_free(queue);

    int got = 0, twice = 0;
    for (int v = 0; v < VALUES; v++) {
        got += received[v];
        twice += received[v] > 1;
    }
    fprintf(stderr, "producer: %d sent, %d dropped (buffer of %d)\n", sent, dropped, CAP);
    printf("every one of %d values was received once or dropped: %s\n", VALUES,
           sent + dropped == VALUES && got == sent && twice == 0 ? "yes" : "NO");
    return sent + dropped == VALUES && got == sent && twice == 0 ? 0 : 1;
}
