/* SPDX-License-Identifier: MIT */
/*
 * dump.c - chan_dump: every live channel (registry.c) with its blocked senders and receivers,
 * then the threads and Gs blocked on no channel (select {}, a nil channel), for a stuck program;
 * and SIGQUIT, which prints it on stderr (Go's SIGQUIT goroutine dump, but the process goes on).
 * A channel is named the same way in the leak reports and in sched/'s deadlock report
 * (print_chan_label; trace_chan_print, seam.h).
 *
 * Invariants:
 *  - A channel is read only through the core's chan_snapshot (hooks.h), never here: its lock
 *    is taken only if it is free at that moment. A channel whose lock is held is skipped, and
 *    the dump says so: the dump never waits for a thread that holds a channel's lock.
 *  - A waiter on no channel is read only through the core's waiter_snap, under the lock of
 *    the registry's list of them, which keeps it in its frame.
 *  - The dump holds one shard's lock of the registry at a time, which keeps the shard's
 *    channels alive (chan_free unregisters a channel before freeing it), and copies them
 *    (shard, then channel; make and free never hold a channel lock while they take a
 *    shard's). The printing comes after the shard's lock is dropped.
 *  - The SIGQUIT handler only writes a byte to a pipe; a dump thread, with every signal blocked
 *    but the leak detector's, does the printing (and, under CHAN_LEAKCHECK, a leak check).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_trace.h"
#include "hooks.h"
#include "seam.h" /* trace_chan_print, which sched/'s deadlock report calls; daemon_start;
                     wait_reason_words */
#include "trace_internal.h"

/* ---- Memory that held channel addresses -------------------------------------------------- */

void scrub_free(void *p, size_t size)
{
    if (p)
        explicit_bzero(p, size);
    free(p);
}

/* ---- Printing a channel ------------------------------------------------------------------ */

/* A registered channel, as copied while its shard's lock was held. */
struct csnap {
    const void *c;
    char name[NAME_MAX_LEN];
    int role;     /* what libchan made it for (registry_role): a timer's, an fd's... */
    bool skipped; /* its lock was held at that moment: nothing copied */
    struct chan_snap s;
};

void print_duration(FILE *out, int64_t ns)
{
    if (ns >= 1000000000LL)
        fprintf(out, "%.3f s", ns / 1e9);
    else if (ns >= 1000000)
        fprintf(out, "%.3f ms", ns / 1e6);
    else
        fprintf(out, "%.3f us", ns / 1e3);
}

void print_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t k = utf8_len(p);
        if (k > 1 || (k == 1 && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')) {
            fwrite(p, 1, k, out);
            p += k;
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default: fprintf(out, "\\x%02x", *p); break;
        }
        p++;
    }
    fputc('"', out);
}

/* What libchan made a channel for, as the leak report says it, or NULL. */
const char *role_name(int role)
{
    return role == ROLE_TIMER      ? "timer"
           : role == ROLE_CONTEXT  ? "context done"
           : role == ROLE_FD_READ  ? "fd readable"
           : role == ROLE_FD_WRITE ? "fd writable"
                                   : NULL;
}

void print_chan_label(FILE *out, const void *c, const char *name, int role)
{
    const char *r = role_name(role); /* a thread in chan_read waits on "fd readable" */
    fputs("chan ", out);
    if (name[0]) {
        print_quoted(out, name);
        fprintf(out, " (%s%s%p)", r ? r : "", r ? " " : "", c);
    } else {
        fprintf(out, "%s%s%s%p", r ? "(" : "", r ? r : "", r ? ") " : "", c);
    }
}

void trace_chan_print(FILE *out, const void *c)
{
    char name[NAME_MAX_LEN] = "";
    int role = 0;
    /* Nothing to find, and no lock to take, until some channel has been named or registered. */
    if (atomic_load_explicit(&trace_flags, memory_order_relaxed) & (TF_REGISTRY | TF_NAMED))
        registry_entry(c, name, &role);
    print_chan_label(out, c, name, role);
}

/* The rest of a blocked waiter's line: who, for how long. */
static void print_blocked(FILE *out, const struct chan_snap_waiter *w, int64_t now)
{
    char tname[NAME_MAX_LEN] = "";
    if (w->g) {
        /* A G of libchan-mpg, by its id alone, as its deadlock report and the leak reports name
         * it (and Go's dump): the M it blocked on is not where it runs next. */
        fprintf(out, "  goroutine %llu", (unsigned long long)w->task);
    } else {
        /* A task of another user-space scheduler (chan_trace_task_hook) on the thread it
         * blocked on, which runs other tasks too; or a thread. */
        if (w->task)
            fprintf(out, "  task %llu on ", (unsigned long long)w->task);
        else
            fputs("  ", out);
        if (thread_name_get(w->tid, tname)) {
            fputs("thread ", out);
            print_quoted(out, tname);
            fprintf(out, " (tid %d)", (int)w->tid);
        } else if (w->tid)
            fprintf(out, "thread tid %d", (int)w->tid);
        else
            fputs("thread unknown", out);
    }
    if (w->since) {
        fputs("  blocked for ", out);
        print_duration(out, now - w->since);
    } else {
        fputs("  blocked since before chan_dump_enable", out);
    }
    if (w->done)
        fputs("  (being woken)", out);
    fputc('\n', out);
}

static void print_chan(FILE *out, const struct csnap *cs, int64_t now)
{
    const struct chan_snap *s = &cs->s;
    print_chan_label(out, cs->c, cs->name, cs->role);
    if (cs->skipped) {
        fputs(": skipped (its lock was held at that moment)\n", out);
        return;
    }
    fprintf(out, ": len %zu cap %zu elemsize %zu %s, %zu blocked senders, %zu blocked receivers\n",
            s->len, s->cap, s->elemsize, s->closed ? "closed" : "open", s->nsend, s->nrecv);
    for (uint32_t i = 0; i < s->nw; i++) {
        const struct chan_snap_waiter *w = &s->w[i];
        fprintf(out, "    %s", w->send ? "send" : "recv");
        if (w->select && w->here > 1)
            fprintf(out, " (select of %u, %u of its cases here)", w->ncases, w->here);
        else if (w->select)
            fprintf(out, " (select of %u)", w->ncases);
        print_blocked(out, w, now);
    }
    if (s->nsend + s->nrecv > s->nw)
        fprintf(out, "    ... and %zu more\n", s->nsend + s->nrecv - s->nw);
}

/* ---- The dump ----------------------------------------------------------------------------- */

int chan_dump_enable(void)
{
    atomic_fetch_or_explicit(&trace_flags, TF_REGISTRY, memory_order_relaxed);
    return 0;
}

/* The channels of one shard, copied under its lock (snap_one), printed after. */
struct batch {
    struct csnap *snaps;
    size_t n, cap;
    size_t lost; /* not copied: no memory */
};

static void snap_one(const void *c, const char *name, int role, void *arg)
{
    struct batch *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        struct csnap *p = malloc(cap * sizeof *p);
        if (!p) {
            b->lost++;
            return;
        }
        if (b->n)
            memcpy(p, b->snaps, b->n * sizeof *p);
        scrub_free(b->snaps, b->n * sizeof *p);
        b->snaps = p;
        b->cap = cap;
    }
    struct csnap *cs = &b->snaps[b->n++];
    cs->c = c;
    cs->role = role;
    memcpy(cs->name, name, NAME_MAX_LEN);
    /* Alive until the shard's lock is dropped: chan_free unregisters it first. */
    cs->skipped = chan_snapshot((chan_t *)c, &cs->s) != 0;
}

/* The threads and Gs blocked on no channel (a nil channel, select {}), copied under the list's
 * lock and printed after, as Go's dump lists a goroutine in "select (no cases)". */
struct idle_snap {
    struct chan_snap_waiter w;
    int why; /* enum wait_reason */
};

struct idle_batch {
    struct idle_snap *v;
    size_t n, cap, lost;
};

static void snap_idle(const struct waiter *w, void *arg)
{
    struct idle_batch *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        void *p = realloc(b->v, cap * sizeof *b->v);
        if (!p) {
            b->lost++;
            return;
        }
        b->v = p;
        b->cap = cap;
    }
    b->v[b->n].why = waiter_snap(w, &b->v[b->n].w);
    b->n++;
}

static void print_idle(FILE *out, int64_t now)
{
    struct idle_batch b = {0};
    registry_idle_visit(snap_idle, &b);
    if (b.n || b.lost)
        fputs("blocked on no channel:\n", out);
    for (size_t i = 0; i < b.n; i++) {
        fprintf(out, "    %s", wait_reason_words((unsigned)b.v[i].why));
        print_blocked(out, &b.v[i].w, now);
    }
    if (b.lost)
        fprintf(out, "    ... and %zu more (out of memory)\n", b.lost);
    free(b.v); /* no channel's address in it */
}

int chan_dump(FILE *out)
{
    if (!out)
        return -EINVAL;
    if (!(atomic_load_explicit(&trace_flags, memory_order_relaxed) & (TF_REGISTRY | TF_NAMED)))
        return -ENODEV;
    int64_t now = chan_now();
    errno = 0;
    fprintf(out, "libchan dump (pid %d): live channels and their blocked waiters\n", (int)getpid());
    int listed = 0, skipped = 0;
    for (unsigned i = 0; i < REGISTRY_SHARDS; i++) {
        struct batch b = {0};
        registry_visit(i, snap_one, &b);
        if (b.lost)
            fprintf(out, "(shard %u: %zu channels not shown: out of memory)\n", i, b.lost);
        for (size_t k = 0; k < b.n; k++) {
            print_chan(out, &b.snaps[k], now);
            listed++;
            skipped += b.snaps[k].skipped;
        }
        scrub_free(b.snaps, b.n * sizeof *b.snaps);
    }
    print_idle(out, now);
    fprintf(out, "end of dump: %d channels, %d skipped\n", listed, skipped);
    /* A dump that did not reach its reader says so (a full disk, a pipe nobody reads). */
    int werr = errno;
    if (fflush(out) != 0)
        return -(errno ? errno : EIO);
    if (ferror(out))
        return -(werr ? werr : EIO);
    return listed;
}

/* ---- SIGQUIT: a handler that only writes a byte, and a dump thread -------------------------- */

static int sigquit_pipe[2] = {-1, -1};
static pthread_once_t sigquit_once = PTHREAD_ONCE_INIT;
static int sigquit_err;

static void on_sigquit(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t r = write(sigquit_pipe[1], "q", 1);
    (void)r;
    errno = saved;
}

static void *dump_main(void *arg)
{
    (void)arg;
    char buf[64];
    for (;;) {
        ssize_t r = read(sigquit_pipe[0], buf, sizeof buf);
        if (r > 0) {
            chan_dump(stderr);
            leak_after_dump(stderr);
        } else if (r == 0 || errno != EINTR)
            return NULL;
    }
}

static void sigquit_setup(void)
{
    chan_dump_enable();
    if (pipe2(sigquit_pipe, O_CLOEXEC) != 0) {
        sigquit_err = -errno;
        return;
    }
    /* The write end never blocks the handler: a full pipe means a dump is coming anyway. */
    fcntl(sigquit_pipe[1], F_SETFL, O_NONBLOCK);
    int e = daemon_start(dump_main);
    if (e) {
        sigquit_err = e;
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigquit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGQUIT, &sa, NULL) != 0)
        sigquit_err = -errno;
}

int chan_dump_on_sigquit(void)
{
    pthread_once(&sigquit_once, sigquit_setup);
    return sigquit_err;
}
