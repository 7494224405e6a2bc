/* SPDX-License-Identifier: MIT */
/*
 * crawler - fan out over a graph: a coordinator counts outstanding work and stops at zero.
 *
 * A pretend web of PAGES pages, each linking to a few others, is crawled from page 0 by a
 * pool of workers. Workers receive a page number on `work`, "fetch" it, and send back the
 * page's links on `found`. Only the coordinator touches the set of pages already seen, so
 * it needs no lock.
 *
 * The coordinator must keep handing out work while also taking in results; blocking on
 * either alone could deadlock (it waits to send work while every worker waits to send it a
 * result). So it selects on both at once, and switches the send case off, by giving it a
 * NULL (nil) channel, whenever it has nothing queued to hand out: a nil case is never chosen.
 *
 * It counts pages handed out whose links have not come back yet. When that count is zero and
 * its queue is empty, nothing can ever produce more work: the crawl is complete. It closes
 * `work`, which ends every worker's loop.
 *
 * Run: ./crawler
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "chan.h"

#define PAGES 60
#define LINKS 3
#define WORKERS 4

struct page {
    int page;
    int links[LINKS]; /* -1: no link */
};

static chan_t *work, *found;

static void sleep_ms(int ms) /* a nil channel is never ready: this is a sleep */
{
    chan_recv_until(NULL, NULL, chan_now() + ms * 1000000LL);
}

/* The pretend web: page p links to these. Pages that are multiples of 7 are dead ends, so
 * part of the web (the pages only they link to) is never reached. */
static void fetch(int p, struct page *out)
{
    out->page = p;
    for (int i = 0; i < LINKS; i++)
        out->links[i] = -1;
    if (p % 7 == 0 && p != 0)
        return;
    out->links[0] = (p * 2 + 1) % PAGES;
    out->links[1] = (p * 3 + 2) % PAGES;
    out->links[2] = (p + 11) % PAGES;
}

static void *worker(void *arg)
{
    int p;
    (void)arg;
    while (chan_recv(work, &p) == 0) {
        struct page pg;
        sleep_ms(1); /* the network */
        fetch(p, &pg);
        chan_send(found, &pg);
    }
    return NULL;
}

int main(void)
{
    work = chan_make(sizeof(int), 0);
    found = chan_make(sizeof(struct page), 0);
    if (work == NULL || found == NULL) {
        perror("chan_make");
        return 1;
    }
    pthread_t w[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&w[i], NULL, worker, NULL);

    bool seen[PAGES] = {false};
    int queue[PAGES], head = 0, tail = 0; /* pages seen but not yet handed out */
    int outstanding = 0;                  /* handed out, links not back yet */
    int next, max_outstanding = 0;
    struct page pg;

    seen[0] = true;
    queue[tail++] = 0;
    while (outstanding > 0 || head < tail) {
        struct chan_case cs[2] = {
            chan_case_send(head < tail ? work : NULL, &next),
            chan_case_recv(found, &pg),
        };
        next = head < tail ? queue[head] : -1;
        int i = chan_select(cs, 2);
        if (i == 0) { /* a worker took `next` */
            head++;
            if (++outstanding > max_outstanding)
                max_outstanding = outstanding;
        } else if (i == 1) { /* a page's links came back */
            outstanding--;
            for (int k = 0; k < LINKS; k++) {
                int l = pg.links[k];
                if (l >= 0 && !seen[l]) {
                    seen[l] = true;
                    queue[tail++] = l;
                }
            }
        } else {
            fprintf(stderr, "chan_select: %d\n", i);
            return 1;
        }
    }
    chan_close(work); /* outstanding is 0 and nothing is queued: the crawl is complete */
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    chan_free(work);
    chan_free(found);

    /* Check against a plain breadth-first search, one page at a time. */
    bool want[PAGES] = {false};
    int q[PAGES], qh = 0, qt = 0, count = 0, same = 1;
    want[0] = true;
    q[qt++] = 0;
    while (qh < qt) {
        fetch(q[qh++], &pg);
        for (int k = 0; k < LINKS; k++)
            if (pg.links[k] >= 0 && !want[pg.links[k]]) {
                want[pg.links[k]] = true;
                q[qt++] = pg.links[k];
            }
    }
    printf("unreached:");
    for (int p = 0; p < PAGES; p++) {
        count += seen[p];
        same &= seen[p] == want[p];
        if (!seen[p])
            printf(" %d", p);
    }
    printf("\n%d of %d pages reached from page 0, the same as a sequential search: %s\n", count,
           PAGES, same ? "yes" : "NO");
    fprintf(stderr, "coordinator: at most %d pages were being fetched at once\n", max_outstanding);
    return same ? 0 : 1;
}
