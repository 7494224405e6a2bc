/* SPDX-License-Identifier: MIT */
/*
 * crawl_http - a web crawler on Gs (libchan-mpg) against a small HTTP server in the same program,
 * over loopback: crawler.c's coordinator, with real sockets and a context that stops the crawl.
 *
 * The server G accepts on 127.0.0.1 (a port the kernel picks) and answers each connection in
 * a G of its own: HTTP/1.0, one request, then close. Its site is generated: PAGES pages /p0 ..
 * /p39, each linking to a few others; some are dead ends, and one link points to a page that
 * does not exist (404).
 *
 * WORKERS worker Gs fetch pages: chan_connect, chan_write of the request, chan_read until the
 * server closes, then the status line and the links. Each call parks its G until the socket is
 * ready (the scheduler's netpoller), and each takes the crawl's context's done channel as its
 * cancel channel. The coordinator (the main G) is crawler.c's: it selects between handing out
 * work and taking in results (a nil channel switches the send case off), keeps the set of
 * pages seen, and counts the fetches outstanding; at zero the crawl is complete.
 *
 * Crawl 1 runs to completion (its context has a deadline, 20 s, that it does not reach) and
 * prints the pages found, sorted, and the broken links. Crawl 2 cancels its context as soon as
 * LIMIT pages have come back: the fetches in flight return -ECANCELED at once, wherever they
 * were waiting (connect, write or read), and the workers stop.
 *
 * Standard output is deterministic; standard error says how many fetches the cancel stopped.
 *
 * Run: ./crawl_http
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "chan_io.h"
#include "chan_sched_mpg.h"
#include "chan_time.h"

#define PAGES 40
#define MAXLINKS 4
#define WORKERS 4
#define LIMIT 10 /* crawl 2 stops after this many pages */

static struct sockaddr_in addr;

/* ---- The server ------------------------------------------------------------------------------ */

/* The site: page p links to these. Pages p % 5 == 4 are dead ends, so the pages that only
 * they link to are never found; page 13 also links to /p99, which does not exist. */
static int site_links(int p, int out[MAXLINKS])
{
    int n = 0;
    if (p % 5 != 4) {
        out[n++] = (2 * p + 1) % PAGES;
        out[n++] = (3 * p + 2) % PAGES;
    }
    if (p == 13)
        out[n++] = 99;
    return n;
}

static chan_ctx_t *server_ctx;
static chan_t *server_done; /* the server G sends its count of requests as it returns */

static void handle(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[512], body[512], resp[1024];
    size_t got = 0;
    int64_t deadline = chan_now() + 10 * CHAN_SECOND;
    /* The request, up to its blank line. */
    while (got < sizeof req - 1 && !memmem(req, got, "\r\n\r\n", 4)) {
        ssize_t n =
            chan_read(fd, req + got, sizeof req - 1 - got, chan_ctx_done(server_ctx), deadline);
        if (n <= 0) {
            chan_fd_close(fd);
            return;
        }
        got += (size_t)n;
    }
    req[got] = '\0';
    int p = -1;
    if (sscanf(req, "GET /p%d HTTP/1.", &p) != 1 || p < 0 || p >= PAGES)
        p = -1;
    int len;
    if (p < 0) {
        len = snprintf(resp, sizeof resp, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    } else {
        int links[MAXLINKS], n = site_links(p, links), b = 0;
        b += snprintf(body + b, sizeof body - (size_t)b, "<html><h1>page %d</h1>\n", p);
        for (int i = 0; i < n; i++)
            b += snprintf(body + b, sizeof body - (size_t)b, "<a href=\"/p%d\">page %d</a>\n",
                          links[i], links[i]);
        b += snprintf(body + b, sizeof body - (size_t)b, "</html>\n");
        len = snprintf(resp, sizeof resp,
                       "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s",
                       b, body);
    }
    chan_write(fd, resp, (size_t)len, chan_ctx_done(server_ctx), deadline);
    chan_fd_close(fd);
}

static void server(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    long requests = 0;
    for (;;) {
        int fd = chan_accept(lfd, NULL, NULL, chan_ctx_done(server_ctx), CHAN_FOREVER);
        if (fd < 0) {
            if (fd != -ECANCELED)
                fprintf(stderr, "crawl_http: accept: %s\n", strerror(-fd));
            break;
        }
        requests++;
        if (chan_mpg_go(handle, (void *)(intptr_t)fd) <= 0)
            chan_fd_close(fd);
    }
    chan_fd_close(lfd);
    chan_send(server_done, &requests);
}

/* ---- The crawler ----------------------------------------------------------------------------- */

struct result {
    int page;
    int status; /* the HTTP status, or -errno when the fetch failed */
    int nlinks;
    int links[MAXLINKS];
};

struct crawl {
    chan_ctx_t *ctx;
    chan_t *work;   /* page numbers */
    chan_t *found;  /* struct result */
    chan_t *exited; /* each worker sends once as it returns */
};

/* GET /pN; the links of the page in r. */
static void fetch(const struct crawl *cr, int page, struct result *r)
{
    *r = (struct result){.page = page};
    chan_t *cancel = chan_ctx_done(cr->ctx);
    int64_t deadline = chan_now() + 5 * CHAN_SECOND;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r->status = -errno;
        return;
    }
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "GET /p%d HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", page);
    int err = chan_connect(fd, (struct sockaddr *)&addr, sizeof addr, cancel, deadline);
    if (!err) {
        ssize_t w = chan_write(fd, buf, (size_t)n, cancel, deadline);
        err = w == n ? 0 : w < 0 ? (int)w : -EIO;
    }
    size_t got = 0;
    while (!err && got < sizeof buf - 1) {
        ssize_t k = chan_read(fd, buf + got, sizeof buf - 1 - got, cancel, deadline);
        if (k == 0)
            break; /* HTTP/1.0: the server closes after the response */
        if (k < 0)
            err = (int)k;
        else
            got += (size_t)k;
    }
    chan_fd_close(fd);
    if (err) {
        r->status = err;
        return;
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
        r->status = -EPROTO;
    for (const char *s = buf; r->nlinks < MAXLINKS && (s = strstr(s, "href=\"/p"));) {
        s += 8;
        r->links[r->nlinks++] = atoi(s);
    }
}

static void worker(void *arg)
{
    struct crawl *cr = arg;
    int page;
    while (chan_recv(cr->work, &page) == 0) {
        struct result r;
        fetch(cr, page, &r);
        chan_send(cr->found, &r);
    }
    chan_send(cr->exited, &(char){0});
}

/* Crawls from /p0 with WORKERS workers; stops at limit pages if limit > 0 (cancelling the
 * context). seen[p] is set for every page fetched with 200; broken[] gets the 404s. Returns
 * the pages fetched with 200; *cancelled, the fetches the cancel stopped. */
static int crawl(int limit, int64_t timeout, bool seen[PAGES], int *broken, int *nbroken,
                 int *cancelled)
{
    struct crawl cr = {
        .ctx = chan_ctx_with_timeout(chan_ctx_background(), timeout),
        .work = chan_make(sizeof(int), 0),
        .found = chan_make(sizeof(struct result), WORKERS),
        .exited = chan_make(1, WORKERS),
    };
    for (int i = 0; i < WORKERS; i++)
        chan_mpg_go(worker, &cr);
    bool queued[PAGES + 100] = {false};
    int queue[PAGES + 100], head = 0, tail = 0;
    queue[tail++] = 0;
    queued[0] = true;
    int outstanding = 0, ok = 0;
    *nbroken = *cancelled = 0;
    while (outstanding > 0 || head < tail) {
        int next = head < tail ? queue[head] : -1;
        struct result r;
        struct chan_case cs[2] = {
            {.chan = head < tail ? cr.work : NULL, .elem = &next, .dir = CHAN_SEND},
            {.chan = cr.found, .elem = &r, .dir = CHAN_RECV},
        };
        if (chan_select(cs, 2) == 0) {
            head++;
            outstanding++;
            continue;
        }
        outstanding--;
        if (r.status == -ECANCELED || r.status == -ETIMEDOUT) {
            (*cancelled)++;
            continue;
        }
        if (r.status == 404) {
            broken[(*nbroken)++] = r.page;
            continue;
        }
        if (r.status != 200) {
            fprintf(stderr, "crawl_http: /p%d: %d\n", r.page, r.status);
            continue;
        }
        if (limit > 0 && ok == limit)
            continue; /* done before the cancel reached it: not counted */
        seen[r.page] = true;
        if (++ok == limit) {
            chan_ctx_cancel(cr.ctx); /* the fetches in flight return -ECANCELED */
            head = tail;             /* and nothing more is handed out */
            continue;
        }
        for (int i = 0; i < r.nlinks; i++) {
            int l = r.links[i];
            if (l >= 0 && l < PAGES + 100 && !queued[l]) {
                queued[l] = true;
                queue[tail++] = l;
            }
        }
    }
    chan_close(cr.work); /* the workers return */
    for (int i = 0; i < WORKERS; i++)
        chan_recv(cr.exited, NULL);
    chan_ctx_free(cr.ctx);
    chan_free(cr.work);
    chan_free(cr.found);
    chan_free(cr.exited);
    return ok;
}

static int status = 1;

static void main_g(void *arg)
{
    (void)arg;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
        perror("crawl_http: listen");
        return;
    }
    chan_mpg_go(server, (void *)(intptr_t)lfd);

    bool seen[PAGES] = {false};
    int broken[8], nbroken, cancelled;
    int found = crawl(0, 20 * CHAN_SECOND, seen, broken, &nbroken, &cancelled);
    printf("crawl 1: %d workers found %d of %d pages:\n", WORKERS, found, PAGES);
    char line[128];
    size_t len = 0;
    for (int p = 0, k = 0; p < PAGES; p++) {
        if (!seen[p])
            continue;
        len += (size_t)snprintf(line + len, sizeof line - len, " /p%d", p);
        if (++k % 10 == 0 || k == found) {
            printf(" %s\n", line);
            len = 0;
        }
    }
    int broken1 = nbroken;
    for (int i = 0; i < nbroken; i++)
        printf("broken link: /p%d (404)\n", broken[i]);

    bool seen2[PAGES] = {false};
    int found2 = crawl(LIMIT, 20 * CHAN_SECOND, seen2, broken, &nbroken, &cancelled);
    printf("crawl 2: stopped by its context after %d pages\n", found2);
    fprintf(stderr, "crawl_http: crawl 2's cancel stopped %d fetches in flight\n", cancelled);

    chan_ctx_cancel(server_ctx);
    long requests;
    chan_recv(server_done, &requests);
    fprintf(stderr, "crawl_http: the server answered %ld requests\n", requests);
    status = found > LIMIT && broken1 == 1 && found2 == LIMIT ? 0 : 1;
}

int main(void)
{
    server_ctx = chan_ctx_with_cancel(chan_ctx_background());
    server_done = chan_make(sizeof(long), 1);
    if (!server_ctx || !server_done || chan_mpg_start(0) != 0) {
        fprintf(stderr, "crawl_http: cannot start\n");
        return 1;
    }
    chan_mpg_go(main_g, NULL);
    int rc = chan_mpg_wait();
    chan_mpg_stop();
    chan_ctx_free(server_ctx);
    chan_free(server_done);
    if (rc != 0)
        return 1;
    return status;
}
