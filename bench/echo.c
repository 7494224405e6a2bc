/* SPDX-License-Identifier: MIT */
/*
 * echo.c - the echo benchmark's C programs (bench/echo.py runs them; bench/BENCH.md shows the
 * table): a TCP echo server on 127.0.0.1, and the load that measures it.
 *
 *   echo server gs        a G per connection (libchan-mpg; its netpoller parks blocked Gs)
 *   echo server threads   a thread per connection (libchan on pthreads: chan_read and
 *                         chan_write poll on the thread)
 *   echo load PORT CONNS SECONDS [SIZE]
 *                         CONNS connections (on Gs), each sending SIZE bytes (64) and waiting
 *                         for them to come back, in a loop, for SECONDS once all are connected.
 *                         Prints "echo conns=N round_trips=R seconds=S".
 *
 * ECHO_BIND=1 in the environment starts the scheduler with each M bound to its P's core
 * (chan_mpg_config.bind); by default the kernel places them, as Go's threads.
 *
 * The server prints "port P" once it listens, then serves until it is killed: the harness
 * reads its CPU time and peak RSS from wait4(2). The same load runs against every server
 * (bench/go-echo is Go's, with the net package), so its own cost falls on all alike.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "chan_io.h"
#include "chan_sched_mpg.h"
#include "chan_time.h"

#define MAXSIZE 4096
#define CONNECTING 256 /* connections being made at once: stays under the listen backlog */

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The scheduler, its Ms placed by the kernel (the default, as Go's threads) or bound to cores
 * (ECHO_BIND=1 in the environment). */
static int start_mpg(void)
{
    const char *b = getenv("ECHO_BIND");
    struct chan_mpg_config cfg = {.bind = b && *b == '1'};
    return chan_mpg_start_config(&cfg);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- The server ------------------------------------------------------------------------------ */

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[MAXSIZE];
    for (;;) {
        ssize_t n = chan_read(fd, buf, sizeof buf, NULL, CHAN_FOREVER);
        if (n <= 0 || chan_write(fd, buf, (size_t)n, NULL, CHAN_FOREVER) != n)
            break;
    }
    chan_fd_close(fd);
}

static void *serve_conn_thread(void *arg)
{
    serve_conn(arg);
    return NULL;
}

static bool on_gs;

static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024); /* a G's stack, by default */
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = chan_accept(lfd, NULL, NULL, NULL, CHAN_FOREVER);
        if (fd < 0) {
            fprintf(stderr, "echo server: accept: %s\n", strerror(-fd));
            exit(1);
        }
        nodelay(fd);
        pthread_t t;
        if (on_gs ? chan_mpg_go(serve_conn, (void *)(intptr_t)fd) <= 0
                  : pthread_create(&t, &attr, serve_conn_thread, (void *)(intptr_t)fd) != 0) {
            fprintf(stderr, "echo server: no G or thread for a connection\n");
            exit(1);
        }
    }
}

static int server(bool gs)
{
    on_gs = gs;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
        perror("echo server");
        return 1;
    }
    printf("port %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    if (!gs) {
        accept_loop((void *)(intptr_t)lfd);
        return 0;
    }
    if (start_mpg() != 0 || chan_mpg_go(accept_loop, (void *)(intptr_t)lfd) <= 0)
        return 1;
    chan_mpg_wait(); /* never: the harness kills the server */
    return 0;
}

/* ---- The load -------------------------------------------------------------------------------- */

static struct {
    struct sockaddr_in sa;
    size_t size;
    chan_t *slots;     /* a semaphore: CONNECTING connections being made at once */
    chan_t *connected; /* each connection sends 0, or -errno */
    chan_t *start;     /* closed when every connection is made */
    chan_t *results;   /* each connection sends its round trips */
    double secs;
    int64_t end;
} ld;

static void load_conn(void *arg)
{
    (void)arg;
    char out[MAXSIZE], in[MAXSIZE];
    memset(out, 'e', ld.size);
    int err = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        err = -errno;
    else
        err = chan_connect(fd, (struct sockaddr *)&ld.sa, sizeof ld.sa, NULL,
                           chan_now() + 30 * CHAN_SECOND);
    if (fd >= 0)
        nodelay(fd);
    chan_recv(ld.slots, NULL);
    chan_send(ld.connected, &err);
    long trips = 0;
    chan_recv(ld.start, NULL);
    while (err == 0 && chan_now() < ld.end) {
        if (chan_write(fd, out, ld.size, NULL, CHAN_FOREVER) != (ssize_t)ld.size)
            break;
        size_t got = 0;
        while (got < ld.size) {
            ssize_t n = chan_read(fd, in + got, ld.size - got, NULL, CHAN_FOREVER);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got < ld.size)
            break;
        trips++;
    }
    if (fd >= 0)
        chan_fd_close(fd);
    chan_send(ld.results, &trips);
}

static int load_status = 1;

static void load_main(void *arg)
{
    int conns = (int)(intptr_t)arg;
    for (int i = 0; i < conns; i++) {
        chan_send(ld.slots, &(char){0});
        chan_mpg_go(load_conn, NULL);
    }
    int failed = 0;
    for (int i = 0; i < conns; i++) {
        int err;
        chan_recv(ld.connected, &err);
        if (err) {
            if (!failed)
                fprintf(stderr, "echo load: connect: %s\n", strerror(-err));
            failed++;
        }
    }
    int64_t t0 = chan_now();
    ld.end = t0 + (int64_t)(ld.secs * 1e9);
    chan_close(ld.start);
    long trips = 0;
    for (int i = 0; i < conns; i++) {
        long t;
        chan_recv(ld.results, &t);
        trips += t;
    }
    double took = (double)(chan_now() - t0) / 1e9;
    printf("echo conns=%d round_trips=%ld seconds=%.3f\n", conns, trips, took);
    load_status = failed ? 1 : 0;
}

static int load(int port, int conns, double secs, size_t size)
{
    ld.sa = (struct sockaddr_in){.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ld.size = size;
    ld.slots = chan_make(1, CONNECTING);
    ld.connected = chan_make(sizeof(int), (size_t)conns);
    ld.start = chan_make(0, 0);
    ld.results = chan_make(sizeof(long), (size_t)conns);
    ld.secs = secs;
    if (!ld.slots || !ld.connected || !ld.start || !ld.results || start_mpg() != 0)
        return 1;
    chan_mpg_go(load_main, (void *)(intptr_t)conns);
    chan_mpg_wait();
    chan_mpg_stop();
    return load_status;
}

int main(int argc, char **argv)
{
    raise_nofile();
    if (argc == 3 && strcmp(argv[1], "server") == 0 &&
        (strcmp(argv[2], "gs") == 0 || strcmp(argv[2], "threads") == 0))
        return server(strcmp(argv[2], "gs") == 0);
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "load") == 0) {
        int port = atoi(argv[2]), conns = atoi(argv[3]);
        double secs = atof(argv[4]);
        long size = argc == 6 ? atol(argv[5]) : 64;
        if (port > 0 && conns > 0 && secs > 0 && size > 0 && size <= MAXSIZE)
            return load(port, conns, secs, (size_t)size);
    }
    fprintf(stderr, "usage: echo server gs|threads\n"
                    "       echo load PORT CONNS SECONDS [SIZE]\n");
    return 2;
}
