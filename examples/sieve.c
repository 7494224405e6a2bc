/* SPDX-License-Identifier: MIT */
/*
 * sieve - the concurrent prime sieve: a chain of filters, one thread each.
 *
 * A generator sends 2, 3, 4, ... LIMIT down an unbuffered channel. The first number that
 * reaches the end of the chain is a prime p; the main thread then adds a filter stage for
 * it, which passes on only the numbers p does not divide. Every number runs through the
 * filters of all the primes below it, one hand-off per stage, so many stages work at once.
 *
 * Shutdown is by close, down the chain: the generator closes its channel after LIMIT; each
 * filter's receive loop ends on -EPIPE and the filter closes its own output channel; the
 * main thread's receive finally reports -EPIPE, and it joins the stages and frees the
 * channels, from the generator's downwards.
 *
 * Run: ./sieve [LIMIT]   (default 500)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "chan.h"

#define MAX_STAGES 2000

struct stage {
    chan_t *in, *out;
    int prime; /* 0 for the generator */
    int limit; /* the generator's last number */
    pthread_t thread;
};

static void *generate(void *arg)
{
    struct stage *s = arg;
    for (int i = 2; i <= s->limit; i++)
        chan_send(s->out, &i);
    chan_close(s->out);
    return NULL;
}

static void *filter(void *arg)
{
    struct stage *s = arg;
    int n;
    while (chan_recv(s->in, &n) == 0) /* ends when the stage before has closed */
        if (n % s->prime != 0)
            chan_send(s->out, &n);
    chan_close(s->out); /* and pass the end on */
    return NULL;
}

static int is_prime(int n)
{
    for (int d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return n >= 2;
}

int main(int argc, char **argv)
{
    int limit = argc > 1 ? atoi(argv[1]) : 500;
    static struct stage st[MAX_STAGES];
    int n = 0, p, ok = 1, count = 0, last = 1;

    st[0] = (struct stage){.out = chan_make(sizeof(int), 0), .limit = limit};
    if (st[0].out == NULL)
        return 1;
    pthread_create(&st[0].thread, NULL, generate, &st[0]);
    chan_t *tail = st[0].out; /* the end of the chain so far */

    while (chan_recv(tail, &p) == 0) { /* the first number to get through is a prime */
        if (count > 0)
            putchar(count % 15 == 0 ? '\n' : ' '); /* 15 a line */
        printf("%d", p);
        count++;
        /* check: p is the next prime after the last one */
        for (int q = last + 1; q < p; q++)
            ok &= !is_prime(q);
        ok &= is_prime(p);
        last = p;
        if (++n == MAX_STAGES)
            return 1;
        st[n] = (struct stage){.in = tail, .out = chan_make(sizeof(int), 0), .prime = p};
        if (st[n].out == NULL)
            return 1;
        pthread_create(&st[n].thread, NULL, filter, &st[n]);
        tail = st[n].out;
    }
    for (int q = last + 1; q <= limit; q++)
        ok &= !is_prime(q);
    printf("\n");
    printf("%d primes up to %d, through a chain of %d filter threads\n", count, limit, n);

    for (int i = 0; i <= n; i++) {
        pthread_join(st[i].thread, NULL);
        chan_free(st[i].out);
    }
    return ok ? 0 : 1;
}
