/* SPDX-License-Identifier: MIT */
/*
 * drivers.c - the programs whose traces docs/play/ replays: one small run per page, each the
 * signalling pattern of chan(7) or of an example in examples/, cut down to a few values and
 * paced so that the run reads step by step.
 *
 *   drivers PATTERN      runs one pattern; under CHAN_TRACE=file.json it leaves its trace
 *   drivers --list       lists the patterns
 *
 * `make play-traces` (docs/play/play.mk) runs each under a trace and turns the trace into its
 * page with tools/trace2play. The pauses (pause()) stand for work, and keep apart what would
 * otherwise race within microseconds, so that every run tells the same story; the channel
 * operations and their order are those of the example each pattern comes from. Values are
 * ints (the trace records values of 1, 2, 4 or 8 bytes) or nothing (signal-only channels).
 *
 * Each pattern is one section "---- pattern: NAME ----" that its page shows as its source.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "chan_leak.h"
#include "chan_time.h"
#include "chan_trace.h"

#define MS 1000000LL

/* Work, or waiting for the next step of the story: a sleep, which the trace does not show. */
static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A named thread: the name is its lane on the page. */
struct named {
    const char *name;
    void *(*fn)(void *);
    void *arg;
    pthread_t th;
};

static void *named_main(void *p)
{
    struct named *n = p;
    chan_trace_name_thread(n->name);
    return n->fn(n->arg);
}

static void start(struct named *n, const char *name, void *(*fn)(void *), void *arg)
{
    n->name = name;
    n->fn = fn;
    n->arg = arg;
    pthread_create(&n->th, NULL, named_main, n);
}

static chan_t *make_named(size_t elemsize, size_t cap, const char *name)
{
    chan_t *c = chan_make(elemsize, cap);
    chan_trace_name_chan(c, name);
    return c;
}

/* ---- pattern: handoff ---- */
/* Unbuffered: each send returns only once the manager has the value. */

static chan_t *results;

static void *handoff_worker(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 3; i++)
        chan_send(results, &i); /* waits for the manager every time */
    return NULL;
}

static int handoff(void)
{
    results = make_named(sizeof(int), 0, "results"); /* cap 0: unbuffered */
    struct named w;
    start(&w, "worker", handoff_worker, NULL);
    int v, sum = 0;
    for (int i = 0; i < 3; i++) {
        pause_ms(30); /* the manager is busy: the worker waits */
        chan_recv(results, &v);
        sum += v;
    }
    pthread_join(w.th, NULL);
    chan_free(results);
    return sum == 6 ? 0 : 1;
}

/* ---- pattern: buffered ---- */
/* Buffered (cap 3): the worker runs ahead by three values; the fourth send waits. */

static void *buffered_worker(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 4; i++)
        chan_send(results, &i); /* returns at once while the buffer has room */
    return NULL;
}

static int buffered(void)
{
    results = make_named(sizeof(int), 3, "results");
    struct named w;
    start(&w, "worker", buffered_worker, NULL);
    pause_ms(40); /* the manager is busy: the buffer fills, the worker blocks */
    int v, sum = 0;
    for (int i = 0; i < 4; i++) {
        chan_recv(results, &v);
        sum += v;
        pause_ms(20);
    }
    pthread_join(w.th, NULL);
    chan_free(results);
    return sum == 10 ? 0 : 1;
}

/* ---- pattern: close ---- */
/* Close as a signal: no data, to everybody, and it cannot be taken back. */

static chan_t *done;

static void *close_waiter(void *arg)
{
    (void)arg;
    chan_recv(done, NULL); /* -EPIPE once done is closed */
    return NULL;
}

static int close_signal(void)
{
    done = make_named(0, 0, "done"); /* elemsize 0: signal only */
    struct named w[3];
    static const char *names[] = {"worker 1", "worker 2", "worker 3"};
    for (int i = 0; i < 3; i++) {
        start(&w[i], names[i], close_waiter, NULL);
        pause_ms(15); /* they queue in this order */
    }
    pause_ms(20);
    chan_close(done); /* one close wakes all three */
    for (int i = 0; i < 3; i++)
        pthread_join(w[i].th, NULL);
    int late = chan_recv(done, NULL); /* returns at once: -EPIPE */
    int again = chan_close(done);     /* a channel closes once: -EPIPE */
    int sent = chan_send(done, NULL); /* nothing is sent on a closed channel: -EPIPE */
    chan_free(done);
    return late == -EPIPE && again == -EPIPE && sent == -EPIPE ? 0 : 1;
}

/* ---- pattern: nil_select ---- */
/* A nil channel in select: the coordinator switches its send case off when it has nothing
 * to hand out (as examples/crawler.c does). */

static chan_t *jobs, *found;

static void *nil_select_worker(void *arg)
{
    (void)arg;
    int job;
    while (chan_recv(jobs, &job) == 0) {
        pause_ms(30); /* the work */
        int result = job * 10;
        chan_send(found, &result);
    }
    return NULL;
}

static int nil_select(void)
{
    jobs = make_named(sizeof(int), 0, "jobs");
    found = make_named(sizeof(int), 0, "found");
    struct named w;
    start(&w, "worker", nil_select_worker, NULL);
    pause_ms(15);
    int next = 1, last = 2, outstanding = 0, result, sum = 0;
    while (next <= last || outstanding > 0) {
        struct chan_case cases[] = {
            {next <= last ? jobs : NULL, &next, CHAN_SEND, false}, /* NULL: switched off */
            {found, &result, CHAN_RECV, false},
        };
        int k = chan_select(cases, 2);
        if (k == 0) {
            next++;
            outstanding++;
        } else {
            sum += result;
            outstanding--;
            pause_ms(15); /* the coordinator records the result */
        }
    }
    chan_close(jobs); /* no more work: ends the worker's loop */
    pthread_join(w.th, NULL);
    chan_free(jobs);
    chan_free(found);
    return sum == 30 ? 0 : 1;
}

/* ---- pattern: timeout ---- */
/* A time-out: wait for a reply until a deadline. The reply channel has a buffer of one, so a
 * late server still sends without blocking, and exits. */

struct request {
    int work_ms;
    chan_t *reply;
};

static void *timeout_server(void *arg)
{
    struct request *r = arg;
    pause_ms(r->work_ms);
    int answer = 42;
    chan_send(r->reply, &answer); /* never blocks: the buffer has room for it */
    return NULL;
}

static int ask(int work_ms, int wait_ms, const char *server)
{
    struct request r = {work_ms, make_named(sizeof(int), 1, "reply")};
    struct named s;
    start(&s, server, timeout_server, &r);
    int answer = 0;
    struct chan_case cases[] = {{r.reply, &answer, CHAN_RECV, false}};
    int k = chan_select_until(cases, 1, chan_now() + wait_ms * MS);
    pthread_join(s.th, NULL); /* a late reply lands in the buffer: nobody is left blocked */
    chan_free(r.reply);       /* and is discarded with the channel */
    return k;
}

static int timeout(void)
{
    int first = ask(20, 80, "fast server");  /* replies in time */
    int second = ask(80, 30, "slow server"); /* too slow: -ETIMEDOUT */
    return first == 0 && second == -ETIMEDOUT ? 0 : 1;
}

/* ---- pattern: after ---- */
/* A time-out per operation, as Go writes it: select { case r := <-reply: case <-time.After(d): }.
 * The time-out is a second case: the channel of a timer, on which libchan's timer thread sends
 * the time when d has passed. */

static int ask_after(int work_ms, int wait_ms, const char *server)
{
    struct request r = {work_ms, make_named(sizeof(int), 1, "reply")};
    chan_timer_t *t = chan_timer_make(wait_ms * MS); /* Go's time.After(wait) */
    chan_trace_name_chan(chan_timer_chan(t), "timer C");
    struct named s;
    start(&s, server, timeout_server, &r);
    int answer = 0;
    int64_t when;
    struct chan_case cases[] = {{r.reply, &answer, CHAN_RECV, false},
                                {chan_timer_chan(t), &when, CHAN_RECV, false}};
    int k = chan_select(cases, 2); /* whichever is ready first: the reply or the time */
    chan_timer_free(t);            /* stops it if it has not fired (the fast reply) */
    pthread_join(s.th, NULL);      /* a late reply lands in the buffer: nobody is left blocked */
    chan_free(r.reply);
    return k;
}

static int after(void)
{
    int first = ask_after(20, 80, "fast server");  /* the reply wins: case 0 */
    int second = ask_after(80, 30, "slow server"); /* the timer wins: case 1 */
    return first == 0 && second == 1 ? 0 : 1;
}

/* ---- pattern: wait_for_task ---- */
/* examples/wait_for_task.c: the worker waits for its task; the send returns once it has it. */

static chan_t *tasks;

static void *task_worker(void *arg)
{
    (void)arg;
    int task;
    chan_recv(tasks, &task); /* blocks until the manager sends */
    return NULL;
}

static int wait_for_task(void)
{
    tasks = make_named(sizeof(int), 0, "tasks");
    struct named w;
    start(&w, "worker", task_worker, NULL);
    pause_ms(30); /* the manager prepares the task */
    int task = 1;
    int rc = chan_send(tasks, &task); /* returns once the worker has it */
    pthread_join(w.th, NULL);
    chan_free(tasks);
    return rc;
}

/* ---- pattern: wait_for_result ---- */
/* examples/wait_for_result.c: the manager waits for the worker's result. */

static void *result_worker(void *arg)
{
    (void)arg;
    pause_ms(30);                /* the work */
    int result = 385;            /* the sum of the squares 1..10 */
    chan_send(results, &result); /* returns once the manager has it */
    return NULL;
}

static int wait_for_result(void)
{
    results = make_named(sizeof(int), 0, "results");
    struct named w;
    start(&w, "worker", result_worker, NULL);
    int result = 0;
    chan_recv(results, &result); /* blocks until the worker sends */
    pthread_join(w.th, NULL);
    chan_free(results);
    return result == 385 ? 0 : 1;
}

/* ---- pattern: wait_for_finished ---- */
/* examples/wait_for_finished.c: the worker closes `done`; the close wakes both waiters. */

static void *finished_worker(void *arg)
{
    (void)arg;
    pause_ms(40); /* fills the table */
    chan_close(done);
    return NULL;
}

static void *finished_observer(void *arg)
{
    (void)arg;
    chan_recv(done, NULL);
    return NULL;
}

static int wait_for_finished(void)
{
    done = make_named(0, 0, "done");
    struct named o, w;
    start(&o, "observer", finished_observer, NULL);
    pause_ms(10);
    start(&w, "worker", finished_worker, NULL);
    int rc = chan_recv(done, NULL);       /* -EPIPE: the close */
    int later = chan_tryrecv(done, NULL); /* -EPIPE at once: it stays closed */
    pthread_join(w.th, NULL);
    pthread_join(o.th, NULL);
    chan_free(done);
    return rc == -EPIPE && later == -EPIPE ? 0 : 1;
}

/* ---- pattern: pooling ---- */
/* examples/pooling.c: three workers on one unbuffered channel; each task goes to exactly one;
 * the close ends them all. */

static const int work_ms[3] = {30, 45, 70}; /* each worker's pace */

static void *pool_worker(void *arg)
{
    int id = (int)(long)arg, task;
    while (chan_recv(tasks, &task) == 0)
        pause_ms(work_ms[id]); /* the work */
    return NULL;
}

static int pooling(void)
{
    tasks = make_named(sizeof(int), 0, "tasks");
    struct named w[3];
    static const char *names[] = {"worker 1", "worker 2", "worker 3"};
    for (long i = 0; i < 3; i++) {
        start(&w[i], names[i], pool_worker, (void *)i);
        pause_ms(8); /* they queue in this order */
    }
    pause_ms(10);
    for (int t = 1; t <= 5; t++)
        chan_send(tasks, &t); /* returns once some worker has t */
    pause_ms(120);            /* every worker is idle again */
    chan_close(tasks);        /* no more work: ends every worker's loop */
    for (int i = 0; i < 3; i++)
        pthread_join(w[i].th, NULL);
    chan_free(tasks);
    return 0;
}

/* ---- pattern: fan_out ---- */
/* examples/fan_out.c: one worker per piece of work; a buffer of one slot per worker, so each
 * sends its result and exits without waiting. */

#define FAN 4

static void *fan_worker(void *arg)
{
    int id = (int)(long)arg;
    pause_ms(15 * id); /* work of different lengths */
    int result = id * id;
    chan_send(results, &result); /* the buffer has room: never blocks */
    return NULL;
}

static int fan_out(void)
{
    results = make_named(sizeof(int), FAN, "results");
    struct named w[FAN];
    static const char *names[] = {"worker 1", "worker 2", "worker 3", "worker 4"};
    for (long i = 0; i < FAN; i++)
        start(&w[i], names[i], fan_worker, (void *)(i + 1));
    for (int i = 0; i < FAN; i++)
        pthread_join(w[i].th, NULL); /* all have finished: their results wait in the buffer */
    int r, sum = 0;
    for (int i = 0; i < FAN; i++) {
        chan_recv(results, &r);
        sum += r;
    }
    chan_free(results);
    return sum == 1 + 4 + 9 + 16 ? 0 : 1;
}

/* ---- pattern: fan_out_sem ---- */
/* examples/fan_out_sem.c: five workers, at most two at once: `sem` is a counting semaphore. */

#define SEM_N 5
#define SEM_K 2

static chan_t *sem;

static void *sem_worker(void *arg)
{
    int id = (int)(long)arg;
    chan_send(sem, NULL); /* acquire: blocks while K tokens are out */
    pause_ms(50);         /* the work that must not run more than K at once */
    chan_recv(sem, NULL); /* release */
    chan_send(results, &id);
    return NULL;
}

static int fan_out_sem(void)
{
    sem = make_named(0, SEM_K, "sem");
    results = make_named(sizeof(int), SEM_N, "results");
    struct named w[SEM_N];
    static const char *names[] = {"worker 1", "worker 2", "worker 3", "worker 4", "worker 5"};
    for (long i = 0; i < SEM_N; i++) {
        start(&w[i], names[i], sem_worker, (void *)(i + 1));
        pause_ms(8);
    }
    int id, sum = 0;
    for (int i = 0; i < SEM_N; i++) {
        chan_recv(results, &id);
        sum += id;
    }
    for (int i = 0; i < SEM_N; i++)
        pthread_join(w[i].th, NULL);
    chan_free(sem);
    chan_free(results);
    return sum == 15 ? 0 : 1;
}

/* ---- pattern: drop ---- */
/* examples/drop.c: the producer never waits: when the buffer is full, chan_trysend fails and
 * the value is dropped. */

static chan_t *queue;

static void *drop_consumer(void *arg)
{
    (void)arg;
    pause_ms(50); /* a slow start */
    int v;
    while (chan_recv(queue, &v) == 0)
        pause_ms(60); /* a slow consumer */
    return NULL;
}

static int drop(void)
{
    queue = make_named(sizeof(int), 3, "queue");
    struct named c;
    start(&c, "consumer", drop_consumer, NULL);
    int sent = 0, dropped = 0;
    for (int v = 1; v <= 8; v++) {
        if (chan_trysend(queue, &v) == -EAGAIN)
            dropped++; /* full: drop it, do not wait */
        else
            sent++;
        pause_ms(20); /* the producer's pace */
    }
    chan_close(queue); /* the consumer drains the buffer, then stops */
    pthread_join(c.th, NULL);
    chan_free(queue);
    return sent + dropped == 8 && dropped > 0 ? 0 : 1;
}

/* ---- pattern: cancellation ---- */
/* examples/cancellation.c: wait for a result until a deadline; on time-out close `cancel`,
 * which the worker polls between steps. */

struct job {
    int steps;
    chan_t *result; /* int, buffer of 1 */
    chan_t *cancel; /* elemsize 0, closed to cancel */
};

static void *cancel_worker(void *arg)
{
    struct job *j = arg;
    for (int s = 0; s < j->steps; s++) {
        if (chan_tryrecv(j->cancel, NULL) == -EPIPE)
            return NULL; /* cancelled: stop, send nothing */
        pause_ms(20);    /* one step of the work */
    }
    int answer = 42;
    chan_send(j->result, &answer); /* never blocks: the buffer has room */
    return NULL;
}

static int run_job(int steps, int timeout_ms, const char *worker)
{
    struct job j = {steps, make_named(sizeof(int), 1, "result"), make_named(0, 0, "cancel")};
    struct named w;
    start(&w, worker, cancel_worker, &j);
    int answer;
    int rc = chan_recv_until(j.result, &answer, chan_now() + timeout_ms * MS);
    if (rc == -ETIMEDOUT)
        chan_close(j.cancel); /* tell the worker to stop */
    pthread_join(w.th, NULL);
    chan_free(j.result);
    chan_free(j.cancel);
    return rc;
}

static int cancellation(void)
{
    int first = run_job(2, 200, "worker 1");   /* 40 ms of work, 200 ms allowed */
    int second = run_job(100, 50, "worker 2"); /* 2 s of work, 50 ms allowed */
    return first == 0 && second == -ETIMEDOUT ? 0 : 1;
}

/* ---- pattern: pipeline ---- */
/* examples/pipeline.c, cut to three stages of one thread each and buffers of one. The squarer
 * does no work of its own: it blocks only when the printer, the slowest stage, has not made
 * room in `squares`, and the producer only when that stalled squarer leaves `numbers` full:
 * back-pressure from the last stage to the first. Closing `numbers` shuts it down stage by
 * stage. */

static chan_t *numbers, *squares;

static void *producer(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 6; i++) {
        pause_ms(5);            /* making it: slower than the squarer, quicker than the printer */
        chan_send(numbers, &i); /* blocks while `numbers` is full */
    }
    chan_close(numbers);
    return NULL;
}

static void *squarer(void *arg)
{
    (void)arg;
    int v;
    while (chan_recv(numbers, &v) == 0) { /* until numbers is closed and drained */
        int sq = v * v;                   /* no pause: it waits only on its two channels */
        chan_send(squares, &sq);          /* blocks while `squares` is full */
    }
    chan_close(squares);
    return NULL;
}

static int pipeline(void)
{
    numbers = make_named(sizeof(int), 1, "numbers");
    squares = make_named(sizeof(int), 1, "squares");
    struct named s, p;
    start(&s, "squarer", squarer, NULL);
    pause_ms(10); /* the squarer waits on numbers first */
    start(&p, "producer", producer, NULL);
    int v, sum = 0;
    while (chan_recv(squares, &v) == 0) { /* the printer: the slowest stage */
        sum += v;
        pause_ms(40); /* printing */
    }
    pthread_join(p.th, NULL);
    pthread_join(s.th, NULL);
    chan_free(numbers);
    chan_free(squares);
    return sum == 1 + 4 + 9 + 16 + 25 + 36 ? 0 : 1;
}

/* ---- pattern: leak ---- */
/* examples/trace/leak.c on threads: the request waits 30 ms for its worker's result, gives up
 * and forgets the channel. The worker's send, later, finds nobody: it blocks forever, while the
 * rest of the program runs on. chan_leak_check finds it: nothing that can still run holds
 * `result`. The fix is a buffer of one (the time-out page). */

static chan_t *_Atomic handed; /* result, for the worker, who empties it: no copy stays */

static void *leak_worker(void *arg)
{
    (void)arg;
    chan_t *result = atomic_exchange(&handed, NULL);
    pause_ms(60); /* the work: longer than the request waits */
    int answer = 42;
    chan_send(result, &answer); /* nobody will ever receive: blocked forever */
    return NULL;
}

__attribute__((noinline)) static void leaky_request(struct named *w)
{
    chan_t *result = make_named(sizeof(int), 0, "result"); /* unbuffered: the bug */
    atomic_store(&handed, result);
    start(w, "worker", leak_worker, NULL);
    int answer;
    chan_recv_until(result, &answer, chan_now() + 30 * MS); /* -ETIMEDOUT: it gives up */
} /* and forgets result: only the blocked worker will know it */

/* A check below a scrubbed stack: the frames of earlier calls (leaky_request's, which held
 * result) leave no copy of the channel's address for the check to find (chan_leak(3)). */
__attribute__((noinline)) static int leak_check(void)
{
    char junk[16384];
    memset(junk, 0, sizeof junk); /* kept: the asm below reads junk */
    __asm__ volatile("" : : "r"(junk) : "memory");
    return chan_leak_check(NULL, NULL);
}

static int leak(void)
{
    chan_dump_enable(); /* the registry of live channels, which the check reads */
    struct named w;
    leaky_request(&w);
    for (int i = 0; i < 1000 && chan_leftovers(NULL, NULL) < 1; i++)
        pause_ms(10); /* until the worker has blocked */
    int leaked = leak_check();
    pthread_detach(w.th); /* it never returns: the process exits with it blocked */
    return leaked == 1 ? 0 : 1;
}

/* ---- end of patterns ---- */

static const struct {
    const char *name, *main_thread;
    int (*run)(void);
} patterns[] = {
    {"handoff", "manager", handoff},
    {"buffered", "manager", buffered},
    {"close", "manager", close_signal},
    {"nil_select", "coordinator", nil_select},
    {"timeout", "client", timeout},
    {"after", "client", after},
    {"wait_for_task", "manager", wait_for_task},
    {"wait_for_result", "manager", wait_for_result},
    {"wait_for_finished", "manager", wait_for_finished},
    {"pooling", "manager", pooling},
    {"fan_out", "manager", fan_out},
    {"fan_out_sem", "manager", fan_out_sem},
    {"drop", "producer", drop},
    {"cancellation", "manager", cancellation},
    {"pipeline", "printer", pipeline},
    {"leak", "manager", leak},
};

int main(int argc, char **argv)
{
    size_t n = sizeof patterns / sizeof *patterns;
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            puts(patterns[i].name);
        return 0;
    }
    for (size_t i = 0; argc > 1 && i < n; i++)
        if (strcmp(argv[1], patterns[i].name) == 0) {
            chan_trace_name_thread(patterns[i].main_thread);
            int r = patterns[i].run();
            if (r)
                fprintf(stderr, "drivers %s: the run went wrong\n", argv[1]);
            return r;
        }
    fprintf(stderr, "usage: drivers PATTERN (under CHAN_TRACE=file.json); patterns:");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", patterns[i].name);
    fputc('\n', stderr);
    return argc > 1 ? 2 : 0;
}
