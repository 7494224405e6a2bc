/* SPDX-License-Identifier: MIT */
/*
 * fan_in - many senders on one channel; the channel is closed once the last of them is done.
 *
 * Only a sender may close a channel, and only once nothing more will be sent: with several
 * senders, none of them knows on its own when that is. A WaitGroup (chan_sync.h) counts them:
 * the manager adds one per worker before starting it, each worker calls chan_wg_done after
 * its last send, and a closer waits on the WaitGroup and closes the channel. That is Go's
 *
 *     go func() { wg.Wait(); close(results) }()
 *
 * The manager only ranges over the results: its loop ends by itself when the channel is
 * closed and drained. (examples/pipeline.c does the same counting with an atomic counter, to
 * build with the drop-in pair, which has chan.h alone.)
 *
 * Watch for: the closer closes once, after the last send, whatever order the workers finish
 * in; every value arrives before the close.
 */
#include <pthread.h>
#include <stdio.h>

#include "chan.h"
#include "chan_sync.h"

#define WORKERS 5
#define EACH 4 /* values each worker sends */

static chan_t *results;
static chan_wg_t *senders;

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    for (int i = 1; i <= EACH; i++) {
        int v = id * 100 + i;
        chan_send(results, &v); /* unbuffered: returns once the manager has it */
        chan_recv_until(NULL, NULL, chan_now() + (id % 3) * 1000000LL); /* uneven work */
    }
    fprintf(stderr, "  worker %d: sent %d values, done\n", id, EACH);
    chan_wg_done(senders); /* the last act of this sender */
    return NULL;
}

static void *closer(void *arg)
{
    (void)arg;
    chan_wg_wait(senders); /* every worker has made its last send */
    chan_close(results);
    fprintf(stderr, "  closer: all %d workers done: results closed\n", WORKERS);
    return NULL;
}

int main(void)
{
    results = chan_make(sizeof(int), 0);
    senders = chan_wg_make();
    if (!results || !senders) {
        perror("make");
        return 1;
    }
    pthread_t w[WORKERS], c;
    for (long i = 1; i <= WORKERS; i++) {
        chan_wg_add(senders, 1); /* before the worker starts, not inside it */
        pthread_create(&w[i - 1], NULL, worker, (void *)i);
    }
    pthread_create(&c, NULL, closer, NULL);

    int v, n = 0, sum = 0, per[WORKERS + 1] = {0};
    while (chan_recv(results, &v) == 0) { /* ends at the close, once drained */
        n++;
        sum += v;
        per[v / 100]++;
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    pthread_join(c, NULL);

    int want = 0, ok = n == WORKERS * EACH;
    for (int id = 1; id <= WORKERS; id++) {
        printf("worker %d: %d values received\n", id, per[id]);
        ok &= per[id] == EACH;
        for (int i = 1; i <= EACH; i++)
            want += id * 100 + i;
    }
    printf("%d values from %d workers, then the close: %s\n", n, WORKERS,
           ok && sum == want ? "all of them" : "NOT all");
    chan_wg_free(senders);
    chan_free(results);
    return ok && sum == want ? 0 : 1;
}
