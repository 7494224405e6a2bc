/* SPDX-License-Identifier: MIT */
/*
 * json.c - a stopped trace written as Chrome Trace Event Format JSON, which Perfetto's
 * trace viewer and chrome://tracing open: a track per thread, named; an "X" slice per
 * event; a "blocked" slice from each block to its wake-up (or to the end of the trace); a
 * flow arrow from each waker to the operation it woke. chan_trace_stop (record.c) hands over
 * the events of every thread (struct trace_log); this file only reads them and writes.
 *
 * The events of all threads are merged in time order (ties: by thread, then in the order the
 * thread recorded them). A channel is labelled by its life in the trace (label_lives): an
 * address freed and made again is a new channel. The file is valid JSON whatever bytes the
 * names hold (json_str).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "chan.h"
#include "hooks.h"
#include "trace_internal.h"

/* Where the writing is: the file, whether an event has been written (the next one needs a
 * comma), and what every event repeats. */
struct out {
    FILE *f;
    bool first;
    int64_t t0;
    int pid;
};

/* An event of the merged trace. */
struct rec {
    struct tev e;
    uint32_t slot, idx; /* its track, and its place there */
    int64_t next_ts;    /* the next event of the same thread, or INT64_MAX */
    uint32_t life;      /* its channel's life (label_lives) */
};

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->e.ts != y->e.ts)
        return x->e.ts < y->e.ts ? -1 : 1;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Channel labels. A channel's life in the trace runs from its make (or first event) to its
 * free; each life gets the name given to it (at any moment of that life), or else "c<N>" in
 * order of appearance. A map from address to the current life, by open addressing. */
struct label {
    char name[NAME_MAX_LEN];
    uint32_t cap;
};

struct lifemap {
    const void *c;
    uint32_t life;
    bool used, dead; /* dead: freed; the address's next channel is a new life */
};

static struct lifemap *life_find(struct lifemap *tab, size_t mask, const void *c)
{
    size_t i = (((uint64_t)(uintptr_t)c >> 4) * 0x9e3779b97f4a7c15ull) & mask;
    while (tab[i].used && tab[i].c != c)
        i = (i + 1) & mask;
    return &tab[i];
}

/* Pass 1 over the records in time order: each record's life (recs[k].life), the lives' names.
 * Returns the lives, or NULL. */
static struct label *label_lives(struct rec *recs, size_t n, const struct trace_log *log)
{
    size_t size = 64;
    while (size < 2 * n + 64)
        size *= 2;
    struct lifemap *tab = calloc(size, sizeof *tab);
    struct label *lives = calloc(n + 1, sizeof *lives);
    if (!tab || !lives) {
        free(tab);
        free(lives);
        return NULL;
    }
    uint32_t nlives = 0;
    for (size_t k = 0; k < n; k++) {
        const struct tev *e = &recs[k].e;
        recs[k].life = UINT32_MAX;
        if (!e->c)
            continue;
        struct lifemap *m = life_find(tab, size - 1, e->c);
        if (!m->used || m->dead || e->kind == EV_MAKE) {
            m->used = true;
            m->dead = false;
            m->c = e->c;
            m->life = nlives++;
        }
        recs[k].life = m->life;
        if (e->kind == EV_NAME) {
            if (e->aux < log->nnames)
                copy_name(lives[m->life].name, log->names[e->aux]);
        } else if (e->kind == EV_FREE) {
            m->dead = true;
        }
    }
    uint32_t id = 0;
    for (uint32_t i = 0; i < nlives; i++)
        if (!lives[i].name[0])
            snprintf(lives[i].name, sizeof lives[i].name, "c%u", ++id);
    scrub_free(tab, size * sizeof *tab);
    return lives;
}

/* A JSON string (RFC 8259): quote, backslash and control characters escaped, UTF-8 characters
 * as they are, and every byte that is not part of one as U+FFFD: names are the user's bytes,
 * the file must parse whatever they are. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t k = utf8_len(p);
        if (k == 0) {
            fputs("\\ufffd", f);
            p++;
        } else if (k > 1 || (*p >= 0x20 && *p != '"' && *p != '\\')) {
            fwrite(p, 1, k, f);
            p += k;
        } else {
            if (*p == '"' || *p == '\\')
                fprintf(f, "\\%c", *p);
            else
                fprintf(f, "\\u%04x", *p);
            p++;
        }
    }
    fputc('"', f);
}

static void json_ts(FILE *f, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    fprintf(f, "%" PRId64 ".%03d", ns / 1000, (int)(ns % 1000));
}

static const char *res_name(int r)
{
    switch (r) {
    case 0: return "ok";
    case -EPIPE: return "closed";
    case -EAGAIN: return "again";
    case -ETIMEDOUT: return "timedout";
    case -EINVAL: return "einval";
    case -ENOMEM: return "enomem";
    default: return "error";
    }
}

static const char *form_name(unsigned bits)
{
    switch ((bits >> B_FORM_SHIFT) & 3) {
    case TR_TRY: return "try";
    case TR_UNTIL: return "until";
    default: return "block";
    }
}

/* One "X" slice: {"name":..., "ph":"X", "ts", "dur", "pid", "tid", "args":{ ...args } */
static void slice_head(struct out *o, const char *name, const char *label, int64_t ts, int64_t dur,
                       pid_t tid)
{
    FILE *f = o->f;
    fputs(o->first ? "\n" : ",\n", f);
    o->first = false;
    fputs("{\"name\":", f);
    char buf[2 * NAME_MAX_LEN + 16];
    snprintf(buf, sizeof buf, "%s%s%s", name, label ? " " : "", label ? label : "");
    json_str(f, buf);
    fputs(",\"cat\":\"chan\",\"ph\":\"X\",\"ts\":", f);
    json_ts(f, ts - o->t0);
    fputs(",\"dur\":", f);
    json_ts(f, dur);
    fprintf(f, ",\"pid\":%d,\"tid\":%d,\"args\":{", o->pid, (int)tid);
}

static void flow_event(struct out *o, char ph, uint64_t id, int64_t ts, pid_t tid)
{
    FILE *f = o->f;
    fputs(o->first ? "\n" : ",\n", f);
    o->first = false;
    fprintf(f, "{\"name\":\"wake\",\"cat\":\"wake\",\"ph\":\"%c\",\"id\":%" PRIu64 ",\"ts\":", ph,
            id);
    json_ts(f, ts - o->t0);
    fprintf(f, ",\"pid\":%d,\"tid\":%d%s}", o->pid, (int)tid, ph == 'f' ? ",\"bp\":\"e\"" : "");
}

/* The common args: "op", "chan", then optional value, flow, res. */
static void args_common(FILE *f, const char *op, const struct label *l, const struct tev *e)
{
    fprintf(f, "\"op\":\"%s\"", op);
    if (l) {
        fputs(",\"chan\":", f);
        json_str(f, l->name);
    }
    if (e->bits & B_HASVAL)
        fprintf(f, ",\"v\":%" PRId64, e->val);
    if (e->task)
        fprintf(f, ",\"g\":%" PRIu64, e->task);
}

/* A blocked slice's "form":"until" when the wait has a deadline (trace_block), and how far
 * that deadline was when it blocked: "deadline_in_ns" (0: it had passed already). */
static void block_form(FILE *f, const struct tev *e)
{
    if (((e->bits >> B_FORM_SHIFT) & 3) == TR_UNTIL)
        fprintf(f, ",\"form\":\"until\",\"deadline_in_ns\":%" PRId64,
                e->val2 > e->ts ? e->val2 - e->ts : 0);
}

/* The pending block of each waiter, to make its "blocked" slice at its wake-up. A waiter is a
 * thread's track, or with chan_trace_task_hook a task: a G of an M:N scheduler may block on one
 * thread and wake on another, and its thread records other tasks' blocks in between. */
struct pending {
    uint64_t who; /* who_of */
    size_t rec;   /* its block's record, while open */
    bool used, open;
};

static uint64_t who_of(const struct rec *r)
{
    return r->e.task ? r->e.task : (UINT64_C(1) << 63) | r->slot;
}

/* who's entry in the table (mask + 1 slots, never full: it has room for every block). */
static struct pending *pending_of(struct pending *tab, size_t mask, uint64_t who)
{
    size_t i = (size_t)((who * 0x9e3779b97f4a7c15ull) >> 20) & mask;
    while (tab[i].used && tab[i].who != who)
        i = (i + 1) & mask;
    tab[i].used = true;
    tab[i].who = who;
    return &tab[i];
}

/* who's entry, or NULL: a lookup that adds nothing (a waiter that never blocked needs none). */
static struct pending *pending_find(struct pending *tab, size_t mask, uint64_t who)
{
    size_t i = (size_t)((who * 0x9e3779b97f4a7c15ull) >> 20) & mask;
    while (tab[i].used && tab[i].who != who)
        i = (i + 1) & mask;
    return tab[i].used ? &tab[i] : NULL;
}

/* The "blocked" slice of the block recs[b], to ts, on the track of tid. */
static void blocked_slice(struct out *o, const struct rec *recs, size_t b,
                          const struct label *lives, int64_t ts, pid_t tid)
{
    const struct tev *be = &recs[b].e;
    const struct label *l = recs[b].life != UINT32_MAX ? &lives[recs[b].life] : NULL;
    bool sel = be->bits & B_SELECT;
    char nm[24];
    snprintf(nm, sizeof nm, "blocked %s", sel ? "select" : be->bits & B_SEND ? "send" : "recv");
    slice_head(o, nm,
               sel ? NULL
               : l ? l->name
                   : NULL,
               be->ts, ts - be->ts > 0 ? ts - be->ts : 0, tid);
    args_common(o->f, "blocked", sel ? NULL : l, be);
    block_form(o->f, be);
    fputs("}}", o->f);
}

static int pending_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The ends of the flow arrows in the trace, sorted: 2 * id for a wake, 2 * id + 1 for a woken.
 * A buffer that was full lost one end of some (chan_trace_dropped): an arrow is written only
 * when both are there, so that no viewer meets an end without its start, or a start that
 * goes nowhere. NULL for want of memory. */
static uint64_t *flow_ends(const struct rec *recs, size_t n, size_t *nends)
{
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        m += (recs[k].e.kind == EV_WAKE || recs[k].e.kind == EV_WOKEN) && recs[k].e.flow;
    uint64_t *ends = malloc((m ? m : 1) * sizeof *ends);
    *nends = m;
    if (!ends)
        return NULL;
    m = 0;
    for (size_t k = 0; k < n; k++)
        if ((recs[k].e.kind == EV_WAKE || recs[k].e.kind == EV_WOKEN) && recs[k].e.flow)
            ends[m++] = 2 * recs[k].e.flow + (recs[k].e.kind == EV_WOKEN);
    qsort(ends, m, sizeof *ends, u64_cmp);
    return ends;
}

static bool flow_whole(const uint64_t *ends, size_t n, uint64_t id)
{
    uint64_t wake = 2 * id, woken = 2 * id + 1;
    return bsearch(&wake, ends, n, sizeof *ends, u64_cmp) &&
           bsearch(&woken, ends, n, sizeof *ends, u64_cmp);
}

/* Writes the merged records (recs, n, in time order) of log. */
static int write_trace(FILE *f, struct rec *recs, size_t n, const struct trace_log *log)
{
    struct out o = {.f = f, .first = true, .t0 = log->t0, .pid = (int)getpid()};
    struct label *lives = label_lives(recs, n, log);
    size_t nblocks = 0, mask = 15;
    for (size_t k = 0; k < n; k++)
        nblocks += recs[k].e.kind == EV_BLOCK;
    while (mask + 1 < 2 * nblocks + 16)
        mask = 2 * mask + 1;
    struct pending *blocks = calloc(mask + 1, sizeof *blocks);
    size_t *at_end = calloc(nblocks + 1, sizeof *at_end);
    size_t nends;
    uint64_t *ends = flow_ends(recs, n, &nends);
    if (!blocks || !at_end || !lives || !ends) {
        free(lives);
        free(blocks);
        free(at_end);
        free(ends);
        return -ENOMEM;
    }

    fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"library\":\"libchan " CHAN_VERSION_STRING
          "\",\"clock\":\"CLOCK_MONOTONIC\",",
          f);
    fprintf(f, "\"t0_ns\":%" PRId64 ",\"dropped\":%" PRIu64 "},\n\"traceEvents\":[", log->t0,
            log->dropped);
    fputs("\n", f);
    o.first = false;
    fprintf(f,
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"libchan\"}}",
            o.pid);
    /* Thread names, for every track that recorded something. */
    for (uint32_t i = 0; i < log->ntracks; i++) {
        const struct track *t = &log->tracks[i];
        if (!t->tid || !t->n)
            continue;
        char buf[NAME_MAX_LEN];
        if (t->name[0])
            copy_name(buf, t->name);
        else
            snprintf(buf, sizeof buf, "thread %d", (int)t->tid);
        fprintf(
            f,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":",
            o.pid, (int)t->tid);
        json_str(f, buf);
        fputs("}}", f);
    }

    for (size_t k = 0; k < n; k++) {
        const struct tev *e = &recs[k].e;
        pid_t tid = log->tracks[recs[k].slot].tid;
        /* A wait that ended without a wake-up, because a file descriptor it polled became
         * ready (chan_io(3): the select looks at its cases again and chooses one, or blocks
         * again), or because its "woken" was lost: its slice ends at its waiter's next event,
         * rather than run on to the end of the trace as if it were still blocked. */
        if (e->kind == EV_OP || e->kind == EV_SELECT || e->kind == EV_BLOCK) {
            struct pending *p = pending_find(blocks, mask, who_of(&recs[k]));
            if (p && p->open) {
                blocked_slice(&o, recs, p->rec, lives, e->ts, tid);
                p->open = false;
            }
        }
        int64_t gap = recs[k].next_ts - e->ts;
        int64_t dur = gap > 1001 ? 1000 : gap > 1 ? gap - 1 : 1; /* short of the next event */
        struct label *l = recs[k].life != UINT32_MAX ? &lives[recs[k].life] : NULL;
        const char *dir = e->bits & B_SEND ? "send" : "recv";
        switch (e->kind) {
        case EV_NAME:
            slice_head(&o, "name", l->name, e->ts, dur, tid);
            args_common(f, "name", l, e);
            fputs("}}", f);
            break;
        case EV_MAKE:
            l->cap = e->aux;
            slice_head(&o, "make", l->name, e->ts, dur, tid);
            args_common(f, "make", l, e);
            fprintf(f, ",\"cap\":%u,\"elemsize\":%" PRId64 "}}", e->aux, e->val);
            break;
        case EV_FREE:
            slice_head(&o, "free", l->name, e->ts, dur, tid);
            args_common(f, "free", l, e);
            fputs("}}", f);
            break;
        case EV_OP:
            l->cap = e->aux;
            slice_head(&o, dir, l->name, e->ts, dur, tid);
            args_common(f, dir, l, e);
            fprintf(f, ",\"form\":\"%s\",\"res\":\"%s\"", form_name(e->bits), res_name(e->res));
            if (!(e->bits & B_NOCAP))
                fprintf(f, ",\"cap\":%u", e->aux);
            if (e->flow)
                fprintf(f, ",\"woke\":%" PRIu64, e->flow);
            fputs("}}", f);
            break;
        case EV_SELECT:
            slice_head(&o, "select", l ? l->name : NULL, e->ts, dur, tid);
            args_common(f, "select", l, e);
            fprintf(f, ",\"form\":\"%s\",\"res\":\"%s\"", form_name(e->bits), res_name(e->res));
            if (l)
                fprintf(f, ",\"case\":%u,\"dir\":\"%s\"", e->aux, dir);
            if (l && !(e->bits & B_NOCAP))
                fprintf(f, ",\"cap\":%" PRId64, e->val2);
            if (e->flow)
                fprintf(f, ",\"woke\":%" PRIu64, e->flow);
            fputs("}}", f);
            break;
        case EV_WAKE: {
            const char *by = e->bits & B_CLOSE ? "close" : dir;
            slice_head(&o, "wake", l->name, e->ts, dur, tid);
            args_common(f, "wake", l, e);
            fprintf(f, ",\"by\":\"%s\",\"flow\":%" PRIu64 ",\"cap\":%u", by, e->flow, e->aux);
            if (e->bits & B_HASVAL2)
                fprintf(f, ",\"v2\":%" PRId64, e->val2);
            fputs("}}", f);
            if (e->flow && flow_whole(ends, nends, e->flow))
                flow_event(&o, 's', e->flow, e->ts, tid);
            break;
        }
        case EV_CLOSE:
            slice_head(&o, "close", l->name, e->ts, dur, tid);
            args_common(f, "close", l, e);
            fprintf(f, ",\"res\":\"%s\"}}", res_name(e->res));
            break;
        case EV_CASE: {
            char nm[24];
            snprintf(nm, sizeof nm, "case %u %s", e->aux, dir);
            slice_head(&o, nm, l ? l->name : "nil", e->ts, dur, tid);
            args_common(f, "case", l, e);
            fprintf(f, ",\"case\":%u,\"dir\":\"%s\",\"n\":%" PRId64 "%s}}", e->aux, dir, e->val2,
                    l ? "" : ",\"nil\":true");
            break;
        }
        case EV_ROLE: { /* in the words of chan_dump and the leak reports */
            const char *r = role_name((int)e->aux);
            slice_head(&o, "role", l->name, e->ts, dur, tid);
            args_common(f, "role", l, e);
            fprintf(f, ",\"role\":\"%s\"}}", r ? r : "?");
            break;
        }
        case EV_TIMER:
            slice_head(&o, "timer fire", l->name, e->ts, dur, tid);
            args_common(f, "timer", l, e);
            fputs("}}", f);
            break;
        case EV_LEAK: {
            const char *what = e->bits & B_SELECT ? "select" : dir;
            slice_head(&o, "partial deadlock", l ? l->name : NULL, e->ts, dur, tid);
            args_common(f, "leak", l, e);
            fprintf(f, ",\"%s\":%" PRId64 ",\"waits\":\"%s\"", e->aux ? "goroutine" : "thread",
                    e->val, what);
            if (e->val2)
                fprintf(f, ",\"blocked_ns\":%" PRId64, e->val2);
            fputs("}}", f);
            break;
        }
        case EV_BLOCK: {
            struct pending *p = pending_of(blocks, mask, who_of(&recs[k]));
            p->open = true;
            p->rec = k;
            break;
        }
        case EV_WOKEN: {
            struct pending *p = pending_of(blocks, mask, who_of(&recs[k]));
            int64_t b = p->open ? recs[p->rec].e.ts : 0;
            p->open = false;
            const char *what = e->bits & B_SELECT ? "select" : dir;
            char nm[24];
            if (b)
                blocked_slice(&o, recs, p->rec, lives, e->ts, tid);
            snprintf(nm, sizeof nm, "woken %s", what);
            slice_head(&o, nm, l ? l->name : NULL, e->ts, dur, tid);
            args_common(f, "woken", l, e);
            fprintf(f, ",\"res\":\"%s\",\"dir\":\"%s\"", res_name(e->res), dir);
            if (e->bits & B_SELECT)
                fputs(",\"select\":true", f);
            if ((e->bits & B_SELECT) && e->res != -ETIMEDOUT) /* a time-out chose no case */
                fprintf(f, ",\"case\":%u", e->aux);
            if (e->flow)
                fprintf(f, ",\"flow\":%" PRIu64, e->flow);
            if (b)
                fprintf(f, ",\"blocked_ns\":%" PRId64, e->ts - b);
            fputs("}}", f);
            if (e->flow && flow_whole(ends, nends, e->flow))
                flow_event(&o, 'f', e->flow, e->ts, tid);
            break;
        }
        default: break;
        }
    }
    /* Still blocked when the trace stopped: a slice to the end (a stuck pipeline shows), in the
     * order they blocked. */
    int64_t end = chan_now();
    size_t nend = 0;
    for (size_t i = 0; i <= mask; i++)
        if (blocks[i].open)
            at_end[nend++] = blocks[i].rec;
    qsort(at_end, nend, sizeof *at_end, pending_cmp);
    for (size_t i = 0; i < nend; i++) {
        const struct rec *b = &recs[at_end[i]];
        const struct label *l = b->life != UINT32_MAX ? &lives[b->life] : NULL;
        bool sel = b->e.bits & B_SELECT;
        char nm[40];
        snprintf(nm, sizeof nm, "blocked %s (at the end)",
                 sel                  ? "select"
                 : b->e.bits & B_SEND ? "send"
                                      : "recv");
        slice_head(&o, nm,
                   sel ? NULL
                   : l ? l->name
                       : NULL,
                   b->e.ts, end - b->e.ts, log->tracks[b->slot].tid);
        args_common(f, "blocked", sel ? NULL : l, &b->e);
        block_form(f, &b->e);
        fputs(",\"at_end\":true}}", f);
    }
    fputs("\n]}\n", f);
    free(blocks);
    free(at_end);
    free(lives);
    free(ends);
    return 0;
}

int trace_json_write(FILE *f, const struct trace_log *log)
{
    size_t total = 0;
    for (uint32_t i = 0; i < log->ntracks; i++)
        total += log->tracks[i].n;
    struct rec *recs = malloc((total ? total : 1) * sizeof *recs);
    if (!recs)
        return -ENOMEM;
    size_t k = 0;
    for (uint32_t i = 0; i < log->ntracks; i++) {
        const struct track *t = &log->tracks[i];
        for (uint32_t j = 0; j < t->n; j++, k++) {
            recs[k] = (struct rec){.e = t->ev[j], .slot = i, .idx = j};
            recs[k].next_ts = j + 1 < t->n ? t->ev[j + 1].ts : INT64_MAX;
        }
    }
    qsort(recs, total, sizeof *recs, rec_cmp);
    int r = write_trace(f, recs, total, log);
    scrub_free(recs, total * sizeof *recs);
    return r;
}
