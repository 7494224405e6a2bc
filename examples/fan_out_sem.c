/* SPDX-License-Identifier: MIT */
/*
 * fan_out_sem - fan out, but let at most K workers run at once: a channel as a semaphore.
 *
 * All N workers start, but each must first put a token into `sem`, a signal-only channel
 * (elemsize 0) with a buffer of K. The buffer can hold only K tokens, so the (K+1)th worker
 * blocks in chan_send until a running worker takes its token back out with chan_recv.
 * The results go to a channel buffered for all N, as in fan_out.
 *
 * The program measures how many workers were inside the limited section at once and checks
 * that it never exceeded K.
 *
 * Run: ./fan_out_sem
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "chan.h"

#define N 12
#define K 3

static chan_t *sem, *results;
static atomic_int running, max_running;

static void sleep_ms(int ms) /* a nil channel is never ready: this is a sleep */
{
    chan_recv_until(NULL, NULL, chan_now() + ms * 1000000LL);
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;

    chan_send(sem, NULL); /* acquire: blocks while K tokens are out */
    int now = atomic_fetch_add(&running, 1) + 1;
    for (int m = atomic_load(&max_running); now > m;)
        if (atomic_compare_exchange_weak(&max_running, &m, now))
            break;
    fprintf(stderr, "worker %2d: running (%d at once)\n", id, now);
    sleep_ms(5); /* the work that must not run more than K at a time */
    atomic_fetch_sub(&running, 1);
    chan_recv(sem, NULL); /* release: take the token back */

    chan_send(results, &id);
    return NULL;
}

int main(void)
{
    sem = chan_make(0, K);
    results = chan_make(sizeof(int), N);
    if (sem == NULL || results == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t w[N];
    for (long i = 0; i < N; i++)
        pthread_create(&w[i], NULL, worker, (void *)i);

    int seen[N] = {0}, id;
    for (int i = 0; i < N; i++)
        if (chan_recv(results, &id) == 0)
            seen[id]++;
    for (int i = 0; i < N; i++)
        pthread_join(w[i], NULL);
    chan_free(sem);
    chan_free(results);

    int all = 1;
    for (int i = 0; i < N; i++)
        all &= seen[i] == 1;
    fprintf(stderr, "manager: at most %d workers ran at once\n", atomic_load(&max_running));
    printf("manager: %s %d workers reported, never more than %d at once: %s\n",
           all ? "all" : "NOT all", N, K, atomic_load(&max_running) <= K ? "yes" : "NO");
    return all && atomic_load(&max_running) <= K ? 0 : 1;
}
