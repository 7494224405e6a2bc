/* SPDX-License-Identifier: MIT */
/*
 * echo - a TCP echo server and its clients over loopback, one G per connection (libchan-mpg).
 *
 * The server G accepts on 127.0.0.1 (a port the kernel picks) and starts a G for each
 * connection, which reads what comes and writes it back until the client closes. CLIENTS
 * client Gs each connect, send MSGS messages of different lengths, read each one back and
 * compare it. Every one of these calls (chan_accept, chan_connect, chan_read, chan_write)
 * parks its G while the socket is not ready; the scheduler's netpoller wakes it when it is.
 * So a few threads serve every connection: a blocked G holds no thread, as in Go's net
 * package (a goroutine per connection).
 *
 * Shutting down: once every client has finished, main cancels a context. The server's accept
 * and any connection still being read listen to its done channel, so they return -ECANCELED
 * and the Gs end; chan_fd_close closes each socket. chan_mpg_wait returns when every G has.
 *
 * Standard output: a summary that does not depend on timing; standard error, how many threads
 * served the connections.
 *
 * Run: ./echo
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "chan_io.h"
#include "chan_sched_mpg.h"
#include "chan_time.h"

#define CLIENTS 50
#define MSGS 20
#define MAXLEN 3000 /* longer than what one read may return: the client reads until it has all */

struct result {
    long msgs, bytes;
    int err; /* 0, or the -errno that stopped it */
};

static struct sockaddr_in addr; /* the server's address */
static chan_ctx_t *ctx;         /* cancelled to shut the server down */
static chan_t *served;          /* each connection's G sends its result here */
static chan_t *clients_done;    /* each client sends its result here */
static chan_t *server_done;     /* closed by the server G as it returns */

/* One connection: echo until the client closes (0), an error, or the cancel. */
static void conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct result r = {0};
    char buf[4096];
    for (;;) {
        ssize_t n = chan_read(fd, buf, sizeof buf, chan_ctx_done(ctx), CHAN_FOREVER);
        if (n <= 0) {
            r.err = (int)n;
            break;
        }
        ssize_t w = chan_write(fd, buf, (size_t)n, chan_ctx_done(ctx), CHAN_FOREVER);
        if (w != n) {
            r.err = w < 0 ? (int)w : -EIO;
            break;
        }
        r.bytes += n;
    }
    chan_fd_close(fd);
    chan_send(served, &r);
}

static void server(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    long conns = 0;
    for (;;) {
        int fd = chan_accept(lfd, NULL, NULL, chan_ctx_done(ctx), CHAN_FOREVER);
        if (fd == -ECANCELED)
            break;
        if (fd < 0) {
            fprintf(stderr, "echo: accept: %s\n", strerror(-fd));
            break;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (chan_mpg_go(conn, (void *)(intptr_t)fd) <= 0) {
            chan_fd_close(fd);
            break;
        }
        conns++;
    }
    chan_fd_close(lfd);
    chan_send(server_done, &conns);
}

/* Message m of client id: its length and bytes follow from (id, m), so the echo can be
 * checked. */
static size_t message(int id, int m, char *buf)
{
    size_t len = 1 + (size_t)(id * 131 + m * 977) % MAXLEN;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (id + m + (int)i) % 26);
    return len;
}

static void client(void *arg)
{
    int id = (int)(intptr_t)arg;
    struct result r = {0};
    char out[MAXLEN], in[MAXLEN]; /* on the G's stack (64 KiB): a G may change threads */
    int64_t deadline = chan_now() + 30 * CHAN_SECOND; /* the whole conversation */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r.err = -errno;
        chan_send(clients_done, &r);
        return;
    }
    r.err = chan_connect(fd, (struct sockaddr *)&addr, sizeof addr, NULL, deadline);
    for (int m = 0; m < MSGS && r.err == 0; m++) {
        size_t len = message(id, m, out);
        ssize_t w = chan_write(fd, out, len, NULL, deadline);
        if (w != (ssize_t)len) {
            r.err = w < 0 ? (int)w : -EIO;
            break;
        }
        /* The echo may come back in pieces. */
        for (size_t got = 0; got < len;) {
            ssize_t n = chan_read(fd, in + got, len - got, NULL, deadline);
            if (n <= 0) {
                r.err = n < 0 ? (int)n : -ECONNRESET;
                break;
            }
            got += (size_t)n;
        }
        if (r.err == 0 && memcmp(in, out, len) != 0)
            r.err = -EBADMSG;
        if (r.err == 0) {
            r.msgs++;
            r.bytes += (long)len;
        }
    }
    chan_fd_close(fd);
    chan_send(clients_done, &r);
}

static int status = 1;

static void main_g(void *arg)
{
    (void)arg;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(lfd, CLIENTS) < 0 || getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
        perror("echo: listen");
        return;
    }
    chan_mpg_go(server, (void *)(intptr_t)lfd);
    for (int i = 0; i < CLIENTS; i++)
        chan_mpg_go(client, (void *)(intptr_t)i);

    long msgs = 0, bytes = 0;
    int failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        struct result r;
        chan_recv(clients_done, &r);
        msgs += r.msgs;
        bytes += r.bytes;
        if (r.err) {
            fprintf(stderr, "echo: a client stopped: %s\n", strerror(-r.err));
            failed++;
        }
    }
    printf("clients: %d, each sent %d messages and got each back intact: %s\n", CLIENTS, MSGS,
           failed ? "no" : "yes");
    printf("round trips: %ld, bytes echoed: %ld\n", msgs, bytes);

    /* Every client has closed its connection; the server still waits in accept. */
    chan_ctx_cancel(ctx);
    long conns = 0, sbytes = 0;
    chan_recv(server_done, &conns);
    for (long i = 0; i < conns; i++) {
        struct result r;
        chan_recv(served, &r);
        sbytes += r.bytes;
    }
    printf("server: %ld connections, %ld bytes, stopped by the cancel\n", conns, sbytes);
    struct chan_mpg_stats st;
    chan_mpg_stats(&st);
    fprintf(stderr, "echo: %d connections served by %llu threads (Ms)\n", CLIENTS,
            (unsigned long long)st.threads);
    status =
        failed == 0 && conns == CLIENTS && sbytes == bytes && msgs == (long)CLIENTS * MSGS ? 0 : 1;
}

int main(void)
{
    ctx = chan_ctx_with_cancel(chan_ctx_background());
    served = chan_make(sizeof(struct result), CLIENTS);
    clients_done = chan_make(sizeof(struct result), CLIENTS);
    server_done = chan_make(sizeof(long), 1);
    if (!ctx || !served || !clients_done || !server_done || chan_mpg_start(0) != 0) {
        fprintf(stderr, "echo: cannot start\n");
        return 1;
    }
    chan_mpg_go(main_g, NULL);
    int rc = chan_mpg_wait();
    chan_mpg_stop();
    chan_ctx_free(ctx);
    chan_free(served);
    chan_free(clients_done);
    chan_free(server_done);
    if (rc != 0) {
        fprintf(stderr, "echo: chan_mpg_wait: %s\n", strerror(-rc));
        return 1;
    }
    return status;
}
