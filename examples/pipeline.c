/* SPDX-License-Identifier: MIT */
/*
 * pipeline - read -> transform pool -> write pool, with back-pressure and shutdown by close.
 *
 *     reader --raw (4)--> 3 transformers --cooked (4)--> 2 writers --> output, in order
 *
 * Each arrow is a channel with a small buffer. The writers are the slowest stage. When they
 * fall behind, `cooked` fills and the transformers block in chan_send; then `raw` fills and
 * the reader blocks: back-pressure travels up the pipeline by itself, and the amount of work
 * in flight stays bounded by the buffers and the pool sizes (4 + 3 + 4 + 2 = 13 records),
 * however long the input is. The program measures that bound and checks it.
 *
 * Shutdown runs the same way, by close: the reader closes `raw` after the last record. Each
 * transformer's receive loop ends once `raw` is drained; the last transformer to finish
 * closes `cooked` (with several senders, the last one out closes). The writers' loops end
 * once `cooked` is drained. Nothing is lost and no thread is left blocked. Here an atomic
 * counter finds the last transformer, so that this program needs chan.h alone (it also
 * builds with the drop-in pair); with libchan's WaitGroup a closer waits for the senders and
 * closes, as examples/sync/fan_in.c shows.
 *
 * Records carry a sequence number, so the writers, which finish in any order, put each
 * line in its place: the output comes out in input order.
 *
 * Standard output: the result. Standard error: what the stages went through (it depends on
 * timing). Run: ./pipeline
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "chan.h"

#define RAW_CAP 4
#define COOKED_CAP 4
#define TRANSFORMERS 3
#define WRITERS 2
#define MAX_IN_FLIGHT (RAW_CAP + TRANSFORMERS + COOKED_CAP + WRITERS)

static const char *input[] = {
    "a channel is a way to signal",
    "an unbuffered send waits for its receiver",
    "so the sender knows the value arrived",
    "a buffered send only waits for room",
    "which is quicker but promises nothing",
    "a close signals without data",
    "and every receiver hears it",
    "a full buffer pushes back on the sender",
    "which is how a pipeline keeps its pace",
    "select waits on many channels at once",
    "and picks at random among the ready",
    "a nil channel is never ready",
    "which turns a case of a select off",
    "a deadline turns a wait into a bounded one",
    "the last sender out closes the channel",
    "and the receivers drain it to the end",
};
#define LINES ((int)(sizeof input / sizeof input[0]))

struct record {
    int seq;
    int words;
    char text[64];
};

static chan_t *raw, *cooked;
static char output[LINES][128];
static atomic_int in_flight, max_in_flight, transformers_left = TRANSFORMERS;

static void sleep_ms(int ms) /* a nil channel is never ready: this is a sleep */
{
    chan_recv_until(NULL, NULL, chan_now() + ms * 1000000LL);
}

static void *reader(void *arg)
{
    int held_back = 0;
    (void)arg;
    for (int i = 0; i < LINES; i++) {
        struct record r = {.seq = i};
        snprintf(r.text, sizeof r.text, "%s", input[i]);
        /* Try first, only to be able to say when back-pressure holds the reader up. */
        if (chan_trysend(raw, &r) == -EAGAIN) {
            fprintf(stderr,
                    "  reader: line %2d waits: raw is full, stages below are "
                    "behind (back-pressure)\n",
                    i);
            held_back++;
            chan_send(raw, &r);
        }
        int now = atomic_fetch_add(&in_flight, 1) + 1;
        for (int m = atomic_load(&max_in_flight); now > m;)
            if (atomic_compare_exchange_weak(&max_in_flight, &m, now))
                break;
    }
    chan_close(raw); /* no more records: this ends the transformers' loops */
    fprintf(stderr, "  reader: all %d lines read, raw closed; held back %d times\n", LINES,
            held_back);
    return NULL;
}

static void *transformer(void *arg)
{
    int id = (int)(long)arg, n = 0;
    struct record r;
    while (chan_recv(raw, &r) == 0) {
        r.words = 0;
        for (char *p = r.text; *p; p++) /* capitalise each word, count them */
            if (p == r.text || p[-1] == ' ') {
                *p = (char)toupper((unsigned char)*p);
                r.words++;
            }
        sleep_ms(1);
        chan_send(cooked, &r); /* blocks while the writers are behind */
        n++;
    }
    /* raw is closed and drained. The last transformer out closes cooked. */
    if (atomic_fetch_sub(&transformers_left, 1) == 1) {
        chan_close(cooked);
        fprintf(stderr, "  transformer %d: did %d lines, the last one out: cooked closed\n", id, n);
    } else {
        fprintf(stderr, "  transformer %d: did %d lines\n", id, n);
    }
    return NULL;
}

static void *writer(void *arg)
{
    int id = (int)(long)arg, n = 0;
    struct record r;
    (void)id;
    while (chan_recv(cooked, &r) == 0) {
        sleep_ms(4); /* the slow stage: a disk, a network */
        snprintf(output[r.seq], sizeof output[r.seq], "%2d  %-44s %d words", r.seq + 1, r.text,
                 r.words);
        atomic_fetch_sub(&in_flight, 1);
        n++;
    }
    fprintf(stderr, "  writer %d: wrote %d lines\n", id, n);
    return NULL;
}

int main(void)
{
    raw = chan_make(sizeof(struct record), RAW_CAP);
    cooked = chan_make(sizeof(struct record), COOKED_CAP);
    if (raw == NULL || cooked == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t r, t[TRANSFORMERS], w[WRITERS];
    for (long i = 0; i < WRITERS; i++)
        pthread_create(&w[i], NULL, writer, (void *)i);
    for (long i = 0; i < TRANSFORMERS; i++)
        pthread_create(&t[i], NULL, transformer, (void *)i);
    pthread_create(&r, NULL, reader, NULL);

    pthread_join(r, NULL);
    for (int i = 0; i < TRANSFORMERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    chan_free(raw);
    chan_free(cooked);

    int ok = 1;
    for (int i = 0; i < LINES; i++) {
        printf("%s\n", output[i]);
        ok &= output[i][0] != '\0';
    }
    int max = atomic_load(&max_in_flight);
    fprintf(stderr, "  at most %d records were in flight at once\n", max);
    printf("%d lines through read -> %d transformers -> %d writers, in order: %s\n", LINES,
           TRANSFORMERS, WRITERS, ok ? "yes" : "NO");
    printf("records in flight never above %d (%d + %d + %d + %d): %s\n", MAX_IN_FLIGHT, RAW_CAP,
           TRANSFORMERS, COOKED_CAP, WRITERS, max <= MAX_IN_FLIGHT ? "yes" : "NO");
    return ok && max <= MAX_IN_FLIGHT ? 0 : 1;
}
