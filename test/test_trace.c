/* SPDX-License-Identifier: MIT */
/* test_trace.c - tracing, names and the dump of live channels (chan_trace.h, trace/).
 *
 * The trace of known programs has the expected events in the expected order and is valid JSON
 * (checked by a strict RFC 8259 and UTF-8 checker written here, and by Python's json module,
 * the same interpreter tools/trace2mermaid needs), whatever bytes the names hold; the
 * Mermaid diagram of a small pipeline matches test/golden/pipeline.mmd; the dump shows a thread
 * blocked on a named channel, and skips a channel whose lock is held; SIGQUIT dumps; with
 * tracing on, a busy many-thread run (stopped and restarted under load, named threads coming
 * and going) stays clean under TSan. Only ordered facts are checked: no timing bound beyond
 * "eventually", 10 s.
 *
 * Run from the top of the tree (make test does): it reads tools/ and test/golden/. */
#include "testutil.h"

#ifdef CHAN_TRACE_BUILD

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_internal.h" /* white box: hold a channel's lock to see the dump skip it */
#include "chan_io.h"
#include "chan_time.h"
#include "chan_trace.h"

/* ---- Helpers ------------------------------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/chan_trace_test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *tmp_path(const char *name)
{
    static char buf[4][160];
    static int i;
    char *p = buf[i++ & 3];
    snprintf(p, 160, "%s/%s", tmpdir, name);
    return p;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* ---- A strict JSON checker (RFC 8259, and RFC 3629's UTF-8) ------------------------------- */

struct jp {
    const unsigned char *p;
};

/* The length of the well-formed UTF-8 character at p, or 0 (written apart from trace/utf8.c's on
 * purpose: the test must not share the code it checks). */
static size_t j_utf8(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n <= 1)
        return n;
    uint32_t cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static void j_ws(struct jp *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

static bool j_lit(struct jp *j, const char *w)
{
    size_t n = strlen(w);
    if (strncmp((const char *)j->p, w, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool j_hex4(struct jp *j, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = *j->p++, d = c >= '0' && c <= '9'   ? c - '0'
                             : c >= 'a' && c <= 'f' ? c - 'a' + 10
                             : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                    : -1;
        if (d < 0)
            return false;
        *v = *v << 4 | (unsigned)d;
    }
    return true;
}

static bool j_string(struct jp *j)
{
    if (*j->p++ != '"')
        return false;
    for (;;) {
        unsigned c = *j->p;
        if (c == '"') {
            j->p++;
            return true;
        }
        if (c < 0x20) /* a control character (or the end): must be escaped */
            return false;
        if (c == '\\') {
            j->p++;
            c = *j->p++;
            if (c == 'u') {
                unsigned u, lo;
                if (!j_hex4(j, &u) || (u >= 0xdc00 && u <= 0xdfff))
                    return false;
                if (u >= 0xd800 && u <= 0xdbff && /* a surrogate pair, or nothing */
                    !(j_lit(j, "\\u") && j_hex4(j, &lo) && lo >= 0xdc00 && lo <= 0xdfff))
                    return false;
            } else if (!strchr("\"\\/bfnrt", (int)c) || !c) {
                return false;
            }
            continue;
        }
        size_t n = j_utf8(j->p);
        if (!n)
            return false;
        j->p += n;
    }
}

static bool j_number(struct jp *j)
{
    const unsigned char *p = j->p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        if (!(*++p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    j->p = p;
    return true;
}

static bool j_value(struct jp *j, int depth)
{
    if (depth > 64)
        return false;
    j_ws(j);
    bool obj = *j->p == '{';
    if (obj || *j->p == '[') {
        char close = obj ? '}' : ']';
        j->p++;
        j_ws(j);
        if (*j->p == close) {
            j->p++;
            return true;
        }
        for (;;) {
            if (obj) {
                j_ws(j);
                if (!j_string(j))
                    return false;
                j_ws(j);
                if (*j->p++ != ':')
                    return false;
            }
            if (!j_value(j, depth + 1))
                return false;
            j_ws(j);
            if (*j->p == ',') {
                j->p++;
            } else if (*j->p == close) {
                j->p++;
                return true;
            } else {
                return false;
            }
        }
    }
    if (*j->p == '"')
        return j_string(j);
    if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
        return j_number(j);
    return j_lit(j, "true") || j_lit(j, "false") || j_lit(j, "null");
}

/* s (NUL-terminated, nsz bytes) is exactly one JSON text; else the offset where it is not. */
static bool json_strict(const char *s, size_t nsz, size_t *bad)
{
    struct jp j = {(const unsigned char *)s};
    bool ok = strlen(s) == nsz && j_value(&j, 0);
    if (ok) {
        j_ws(&j);
        ok = *j.p == 0;
    }
    *bad = (size_t)((const char *)j.p - s);
    return ok;
}

/* The file is one JSON document, by the strict checker above and by Python's json module (and
 * has a traceEvents list). */
static void assert_valid_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *doc = NULL;
    size_t cap = 0, n = 0, got;
    do {
        cap = cap ? 2 * cap : 1 << 16;
        doc = realloc(doc, cap + 1);
        ck_assert_ptr_nonnull(doc);
        got = fread(doc + n, 1, cap - n, f);
        n += got;
    } while (n == cap);
    fclose(f);
    doc[n] = 0;
    size_t bad;
    bool ok = json_strict(doc, n, &bad);
    ck_assert_msg(ok, "%s is not strict JSON at byte %zu: ...%.40s", path, bad,
                  doc + (bad > 20 ? bad - 20 : 0));
    free(doc);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
             "assert isinstance(d[\"traceEvents\"], list)' '%s'",
             path);
    int r = system(cmd);
    ck_assert_msg(r == 0, "%s is not valid trace JSON (python3 said %d)", path, r);
}

/* Each pattern occurs in s, after the previous one; reports the first one missing. */
static void assert_in_order(const char *s, const char *const *pats, size_t n)
{
    const char *at = s;
    for (size_t i = 0; i < n; i++) {
        const char *p = strstr(at, pats[i]);
        ck_assert_msg(p != NULL, "pattern %zu not found (in order): %s", i, pats[i]);
        at = p + strlen(pats[i]);
    }
}

static int count_of(const char *s, const char *pat)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, pat)); p += strlen(pat))
        n++;
    return n;
}

/* ---- A single thread: every event, in program order ------------------------------------------ */

START_TEST(test_trace_events_in_order)
{
    make_tmpdir();
    const char *path = tmp_path("one.json");
    ck_assert_int_eq(chan_trace_start(NULL), -EINVAL);
    ck_assert_int_eq(chan_trace_start(path), 0);
    ck_assert_int_eq(chan_trace_start(path), -EBUSY);
    ck_assert_int_eq(chan_trace_start(NULL), -EINVAL);
    ck_assert_int_eq(chan_trace_name_thread("main"), 0);
    chan_t *c = chan_make(sizeof(int), 2);
    ck_assert_int_eq(chan_trace_name_chan(c, "jobs"), 0);
    int v = 1;
    ck_assert_int_eq(chan_send(c, &v), 0);
    v = 2;
    ck_assert_int_eq(chan_trysend(c, &v), 0);
    v = 3;
    ck_assert_int_eq(chan_trysend(c, &v), -EAGAIN);
    ck_assert_int_eq(chan_recv(c, &v), 0);
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_int_eq(chan_close(c), -EPIPE);
    ck_assert_int_eq(chan_recv_until(c, &v, CHAN_FOREVER), 0);
    ck_assert_int_eq(chan_tryrecv(c, &v), -EPIPE);
    ck_assert_int_eq(chan_free(c), 0);
    ck_assert_int_eq(chan_trace_stop(), 0);
    ck_assert_int_eq(chan_trace_stop(), -ESRCH);
    ck_assert_int_eq(chan_trace_dropped(), 0);

    assert_valid_json(path);
    char *s = slurp(path);
    static const char *const want[] = {
        "\"name\":\"thread_name\"",
        "\"args\":{\"name\":\"main\"}",
        "\"name\":\"make jobs\"",
        "\"cap\":2,\"elemsize\":4",
        "\"name\":\"name jobs\"",
        "{\"op\":\"send\",\"chan\":\"jobs\",\"v\":1,\"form\":\"block\",\"res\":\"ok\"",
        "{\"op\":\"send\",\"chan\":\"jobs\",\"v\":2,\"form\":\"try\",\"res\":\"ok\"",
        "{\"op\":\"send\",\"chan\":\"jobs\",\"v\":3,\"form\":\"try\",\"res\":\"again\"",
        "{\"op\":\"recv\",\"chan\":\"jobs\",\"v\":1,\"form\":\"block\",\"res\":\"ok\"",
        "{\"op\":\"close\",\"chan\":\"jobs\",\"res\":\"ok\"",
        "{\"op\":\"close\",\"chan\":\"jobs\",\"res\":\"closed\"",
        "{\"op\":\"recv\",\"chan\":\"jobs\",\"v\":2,\"form\":\"until\",\"res\":\"ok\"",
        "{\"op\":\"recv\",\"chan\":\"jobs\",\"form\":\"try\",\"res\":\"closed\"",
        "{\"op\":\"free\",\"chan\":\"jobs\"",
    };
    assert_in_order(s, want, sizeof want / sizeof *want);
    free(s);
    rm_tmpdir();
}
END_TEST

/* A thread started during the trace: its first operation is an event like any other, with its
 * value and its channel's capacity (they were left out of every thread's first event). */
static void *send_two(void *arg)
{
    int v = 7;
    if (chan_trysend(arg, &v) != 0)
        return (void *)-1;
    v = 8;
    return (void *)(intptr_t)chan_send(arg, &v);
}

static void *select_first(void *arg)
{
    int v = 9;
    struct chan_case cs[] = {chan_case_send(arg, &v)};
    return (void *)(intptr_t)chan_select(cs, 1);
}

START_TEST(test_trace_first_op_of_a_thread_has_its_value)
{
    make_tmpdir();
    const char *path = tmp_path("first.json");
    chan_t *c = chan_make(sizeof(int), 3);
    ck_assert_int_eq(chan_trace_name_chan(c, "q"), 0);
    ck_assert_int_eq(chan_trace_start(path), 0);
    ck_assert_ptr_null(join(spawn(send_two, c)));
    ck_assert_ptr_null(join(spawn(select_first, c)));
    ck_assert_int_eq(chan_trace_stop(), 0);
    ck_assert_int_eq(chan_free(c), 0);
    assert_valid_json(path);
    char *s = slurp(path);
    static const char *const want[] = {
        "{\"op\":\"send\",\"chan\":\"q\",\"v\":7,\"form\":\"try\",\"res\":\"ok\",\"cap\":3}",
        "{\"op\":\"send\",\"chan\":\"q\",\"v\":8,\"form\":\"block\",\"res\":\"ok\",\"cap\":3}",
        ("{\"op\":\"select\",\"chan\":\"q\",\"v\":9,\"form\":\"block\",\"res\":\"ok\",\"case\":0,"
         "\"dir\":\"send\",\"cap\":3}"),
    };
    assert_in_order(s, want, sizeof want / sizeof *want);
    free(s);
    rm_tmpdir();
}
END_TEST

/* A trace that cannot be written: a full disk, a pipe whose reader has gone. The stop says so
 * with the write's errno; a broken pipe does not kill the process (SIGPIPE at its default),
 * and leaves no SIGPIPE pending nor the signal mask changed. */
START_TEST(test_trace_stop_reports_write_errors)
{
    signal(SIGPIPE, SIG_DFL);
    ck_assert_int_eq(chan_trace_start("/dev/full"), 0);
    chan_t *c = chan_make(sizeof(int), 1);
    int v = 1;
    ck_assert_int_eq(chan_trysend(c, &v), 0);
    ck_assert_int_eq(chan_trace_stop(), -ENOSPC);

    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[1]);
    ck_assert_int_eq(chan_trace_start(path), 0);
    ck_assert_int_eq(close(fds[0]), 0);
    ck_assert_int_eq(chan_tryrecv(c, &v), 0);
    sigset_t before, after, pend;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    ck_assert_int_eq(chan_trace_stop(), -EPIPE);
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    ck_assert_int_eq(sigismember(&after, SIGPIPE), sigismember(&before, SIGPIPE));
    ck_assert_int_eq(sigpending(&pend), 0);
    ck_assert(!sigismember(&pend, SIGPIPE));
    ck_assert_int_eq(close(fds[1]), 0);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* chan_dump to a stream it cannot write: the write's errno, not a count of channels. */
START_TEST(test_dump_reports_write_errors)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    chan_t *c = chan_make(sizeof(int), 1);
    FILE *f = fopen("/dev/full", "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(chan_dump(f), -ENOSPC);
    fclose(f);
    signal(SIGPIPE, SIG_IGN); /* the program's choice for its own stream */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(close(fds[0]), 0);
    f = fdopen(fds[1], "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(chan_dump(f), -EPIPE);
    fclose(f);
    f = fopen("/dev/null", "w");
    ck_assert_int_ge(chan_dump(f), 1);
    fclose(f);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* chan_trace(3): naming a channel returns -ENOMEM when its entry cannot be had; it said 0 and
 * dropped the name. A channel made before the registry was on has no entry yet. */
extern void *(*chan_malloc_hook)(size_t size);
static void *no_memory(size_t size)
{
    (void)size;
    return NULL;
}

START_TEST(test_name_chan_reports_no_memory)
{
    chan_t *c = chan_make(sizeof(int), 1);
    ck_assert_ptr_nonnull(c);
    chan_malloc_hook = no_memory;
    int rc = chan_trace_name_chan(c, "unnamed");
    chan_malloc_hook = NULL;
    ck_assert_int_eq(rc, -ENOMEM);
    ck_assert_int_eq(chan_trace_name_chan(c, "named"), 0);
    int listed;
    char *buf = text_of(chan_dump, &listed);
    ck_assert_int_ge(listed, 1);
    ck_assert_msg(strstr(buf, "\"named\"") && !strstr(buf, "unnamed"), "dump: %s", buf);
    free(buf);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

/* A wait on a file descriptor ends when the fd is ready, with no peer to wake it: its "blocked"
 * slice ends when its select goes on, not at the end of the trace as if it were still blocked
 * (it ran on to the end: Perfetto showed the reader stuck, trace2play "still blocked when the
 * trace ends"). */
static int pipe_rd = -1;

static void *wait_readable(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)chan_fd_wait(pipe_rd, POLLIN, NULL, CHAN_FOREVER);
}

START_TEST(test_trace_fd_wait_ends_its_block)
{
    make_tmpdir();
    const char *path = tmp_path("fd.json");
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pipe_rd = fds[0];
    chan_t *rc = chan_fd_chan(fds[0], POLLIN);
    ck_assert_ptr_nonnull(rc);
    ck_assert_int_eq(chan_trace_start(path), 0);
    pthread_t t = spawn(wait_readable, NULL);
    ck_assert(blocked_receivers_at_least(rc, 1));
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    ck_assert_int_gt((intptr_t)join(t), 0);
    ck_assert_int_eq(chan_trace_stop(), 0);
    assert_valid_json(path);
    char *s = slurp(path);
    ck_assert_msg(strstr(s, "\"name\":\"blocked select\"") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "at_end") == NULL, "%s", s);
    free(s);
    ck_assert_int_eq(chan_fd_close(fds[0]), 0);
    close(fds[1]);
    rm_tmpdir();
}
END_TEST

/* A channel that libchan made for a timer or a file descriptor is shown as such in the dump: a
 * thread stuck in chan_read waits on "fd readable", not on an anonymous channel. */
START_TEST(test_dump_names_what_a_channel_is_for)
{
    ck_assert_int_eq(chan_dump_enable(), 0);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pipe_rd = fds[0];
    chan_t *rc = chan_fd_chan(fds[0], POLLIN);
    ck_assert_ptr_nonnull(rc);
    chan_timer_t *tm = chan_timer_make(3600 * INT64_C(1000000000));
    ck_assert_ptr_nonnull(tm);
    pthread_t t = spawn(wait_readable, NULL);
    ck_assert(blocked_receivers_at_least(rc, 1));
    int listed;
    char *buf = text_of(chan_dump, &listed);
    ck_assert_int_ge(listed, 2);
    char want[64];
    snprintf(want, sizeof want, "chan (fd readable) %p: ", (void *)rc);
    ck_assert_msg(strstr(buf, want) != NULL, "%s", buf);
    snprintf(want, sizeof want, "chan (timer) %p: ", (void *)chan_timer_chan(tm));
    ck_assert_msg(strstr(buf, want) != NULL, "%s", buf);
    free(buf);
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    ck_assert_int_gt((intptr_t)join(t), 0);
    ck_assert_int_eq(chan_timer_free(tm), 0);
    ck_assert_int_eq(chan_fd_close(fds[0]), 0);
    close(fds[1]);
}
END_TEST

/* A wait on no channel - a nil channel's receive, a select whose cases are all nil, select {} -
 * is a wait like any other: a blocked slice, then its time-out; one that never returns is
 * blocked at the end of the trace (they left nothing but a "select timedout"). */
static void *select_forever(void *arg)
{
    (void)arg;
    chan_select(NULL, 0);
    return NULL;
}

START_TEST(test_trace_wait_on_no_channel)
{
    make_tmpdir();
    const char *path = tmp_path("nil.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    int v;
    ck_assert_int_eq(chan_recv_until(NULL, &v, chan_now() + 2000000), -ETIMEDOUT);
    struct chan_case cs[] = {chan_case_recv(NULL, &v)};
    ck_assert_int_eq(chan_select_until(cs, 1, chan_now() + 2000000), -ETIMEDOUT);
    pthread_t t = spawn(select_forever, NULL); /* never joined: the test's process ends it */
    (void)t;
    usleep(20000); /* loosely: if it has not blocked yet, the slice is only missing (below) */
    ck_assert_int_eq(chan_trace_stop(), 0);
    assert_valid_json(path);
    char *s = slurp(path);
    static const char *const want[] = {
        "\"name\":\"blocked recv\"",
        "{\"op\":\"woken\",\"res\":\"timedout\",\"dir\":\"recv\",\"blocked_ns\":",
        "\"name\":\"blocked select\"",
        "{\"op\":\"woken\",\"res\":\"timedout\",\"dir\":\"recv\",\"select\":true",
    };
    assert_in_order(s, want, sizeof want / sizeof *want);
    /* select {}: blocked at the end, if it got there within 20 ms (it always does, unloaded) */
    if (!strstr(s, "\"name\":\"blocked select (at the end)\""))
        printf("test_trace_wait_on_no_channel: select {} not reached in 20 ms: not checked\n");
    free(s);
    rm_tmpdir();
}
END_TEST

/* ---- Names: any bytes, any length, and the trace is still JSON ------------------------------- */

/* The checker itself refuses what the trace must never contain. */
START_TEST(test_json_checker_is_strict)
{
    static const char *const good[] = {
        "{}",
        "[]",
        " {\"a\":[1,-2.5e+3,true,false,null,\"\\u00e9\\ud83d\\ude00\\n\"]} ",
        "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
    };
    static const char *const bad[] = {
        "",
        "{",
        "{\"a\":1,}",
        "[1 2]",
        "{\"a\" 1}",
        "[01]",
        "[1.]",
        "[\"\x01\"]",
        "[\"a\nb\"]",
        "[\"\"\"]",
        "[\"\\x41\"]",
        "[\"\xff\"]",
        "[\"\xc3\"]",
        "[\"\xc3(\"]",
        "[\"\xe2\x82\"]",
        "[\"\xc0\xaf\"]",
        "[\"\xed\xa0\x80\"]",
        "[\"\xf4\x90\x80\x80\"]",
        "[\"\x80\"]",
        "[\"\\ud800\"]",
        "[\"\\udc00\"]",
        "[\"\\u12\"]",
        "{} {}",
        "[tru]",
    };
    size_t at;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(json_strict(good[i], strlen(good[i]), &at), "good[%zu] refused at %zu", i,
                      at);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!json_strict(bad[i], strlen(bad[i]), &at), "bad[%zu] accepted", i);
}
END_TEST

/* n bytes of 'a', then tail. */
static const char *a_then(int n, const char *tail)
{
    static char buf[8][96];
    static int k;
    char *p = buf[k++ & 7];
    memset(p, 'a', (size_t)n);
    snprintf(p + n, 96 - (size_t)n, "%s", tail);
    return p;
}

static void *name_self(void *arg)
{
    ck_assert_int_eq(chan_trace_name_thread(arg), 0);
    chan_t *c = chan_make(0, 1);
    chan_trysend(c, NULL); /* an event, so that the thread has a track */
    chan_free(c);
    return NULL;
}

/* Names are cut at 47 bytes on a UTF-8 character boundary, and whatever their bytes (not
 * UTF-8, quotes, control characters) the trace is strict JSON and the dump one line each. */
START_TEST(test_trace_names_any_bytes)
{
    /* A name as given, and the name the trace must show (as a JSON string's content). */
    struct {
        const char *given, *shown;
    } names[] = {
        {a_then(46, "\xc3\xa9xyz"), a_then(46, "")},         /* é at bytes 46-47 */
        {a_then(45, "\xc3\xa9xyz"), a_then(45, "\xc3\xa9")}, /* é ends at byte 47 */
        {a_then(45, "\xe2\x82\xac"), a_then(45, "")},        /* € at 45-47 */
        {a_then(44, "\xe2\x82\xac"), a_then(44, "\xe2\x82\xac")},
        {a_then(44, "\xf0\x9f\x98\x80"), a_then(44, "")}, /* U+1F600 at 44-47 */
        {a_then(43, "\xf0\x9f\x98\x80!"), a_then(43, "\xf0\x9f\x98\x80")},
        {"bad \xff\xfe end", "bad \\ufffd\\ufffd end"},
        {"cut \xc3", "cut \\ufffd"},
        {"cut \xe2\x82 x", "cut \\ufffd\\ufffd x"},
        {"overlong \xc0\xaf", "overlong \\ufffd\\ufffd"},
        {"surrogate \xed\xa0\x80", "surrogate \\ufffd\\ufffd\\ufffd"},
        {"big \xf4\x90\x80\x80", "big \\ufffd\\ufffd\\ufffd\\ufffd"},
        {"say \"hi\" \\ back\x01\x1f\n\t", "say \\\"hi\\\" \\\\ back\\u0001\\u001f\\u000a\\u0009"},
        {a_then(46, "\xff\xfe"), a_then(46, "\\ufffd")}, /* a stray byte is one character */
    };
    enum { N = sizeof names / sizeof *names };
    make_tmpdir();
    const char *path = tmp_path("names.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    chan_t *c[N];
    for (int i = 0; i < N; i++) {
        c[i] = chan_make(sizeof(int), 1);
        ck_assert_int_eq(chan_trace_name_chan(c[i], names[i].given), 0);
        int v = i;
        ck_assert_int_eq(chan_send(c[i], &v), 0);
    }
    for (int i = 0; i < N; i++)
        join(spawn(name_self, (void *)names[i].given));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(chan_free(c[i]), 0);
    ck_assert_int_eq(chan_trace_stop(), 0);
    assert_valid_json(path);
    char *s = slurp(path);
    for (int i = 0; i < N; i++) {
        char pat[256];
        snprintf(pat, sizeof pat, "\"op\":\"send\",\"chan\":\"%s\",", names[i].shown);
        ck_assert_msg(strstr(s, pat) != NULL, "name %d: no %s", i, pat);
        snprintf(pat, sizeof pat, "\"args\":{\"name\":\"%s\"}", names[i].shown);
        ck_assert_msg(strstr(s, pat) != NULL, "thread name %d: no %s", i, pat);
    }
    free(s);
    rm_tmpdir();
}
END_TEST

/* ---- Thread names live as long as their threads ---------------------------------------------- */

static void *name_and_exit(void *arg) { return (void *)(intptr_t)chan_trace_name_thread(arg); }

/* More named threads over time than the table has entries, one alive at a time. */
START_TEST(test_thread_names_released_at_exit)
{
    for (int i = 0; i < 600; i++) {
        char name[32];
        snprintf(name, sizeof name, "short-lived %d", i);
        ck_assert_msg((intptr_t)join(spawn(name_and_exit, name)) == 0, "thread %d", i);
    }
}
END_TEST

static void *named_event(void *arg)
{
    ck_assert_int_eq(chan_trace_name_thread(arg), 0);
    chan_t *c = chan_make(0, 1);
    chan_trysend(c, NULL); /* an event: the thread has a track in the trace */
    chan_free(c);
    return (void *)(intptr_t)syscall(SYS_gettid);
}

/* A traced thread that exited before the trace stopped keeps its name on its track, after the
 * entry of its name has been taken by the next thread named. */
START_TEST(test_trace_keeps_names_of_exited_threads)
{
    make_tmpdir();
    const char *path = tmp_path("exited.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    static const char *const names[] = {"alpha", "beta", "gamma"};
    int tids[3];
    for (int i = 0; i < 3; i++)
        tids[i] = (int)(intptr_t)join(spawn(named_event, (void *)names[i]));
    ck_assert_int_eq(chan_trace_stop(), 0);
    assert_valid_json(path);
    char *s = slurp(path);
    for (int i = 0; i < 3; i++) {
        char pat[128];
        snprintf(pat, sizeof pat, "\"tid\":%d,\"args\":{\"name\":\"%s\"}}", tids[i], names[i]);
        ck_assert_msg(strstr(s, pat) != NULL, "no %s in\n%s", pat, s);
    }
    free(s);
    rm_tmpdir();
}
END_TEST

/* ---- Two threads: who woke whom ------------------------------------------------------------- */

static void *recv_one(void *arg)
{
    chan_trace_name_thread("receiver");
    int v = 0;
    int r = chan_recv(arg, &v);
    return (void *)(intptr_t)(r == 0 ? v : -1);
}

static int64_t number_after(const char *s, const char *key)
{
    const char *p = strstr(s, key);
    ck_assert_msg(p != NULL, "no %s", key);
    return strtoll(p + strlen(key), NULL, 10);
}

START_TEST(test_trace_flow_from_waker_to_woken)
{
    make_tmpdir();
    const char *path = tmp_path("flow.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    chan_trace_name_thread("sender");
    chan_t *c = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "handoff");
    pthread_t t = spawn(recv_one, c);
    ck_assert(blocked_receivers_at_least(c, 1));
    int v = 42;
    ck_assert_int_eq(chan_send(c, &v), 0);
    ck_assert_int_eq((intptr_t)join(t), 42);
    ck_assert_int_eq(chan_free(c), 0);
    ck_assert_int_eq(chan_trace_stop(), 0);

    assert_valid_json(path);
    char *s = slurp(path);
    /* The sender's wake-up starts flow F; the receiver's woken slice ends it. */
    int64_t f =
        number_after(s, "\"op\":\"wake\",\"chan\":\"handoff\",\"v\":42,\"by\":\"send\",\"flow\":");
    ck_assert(f > 0);
    char pat[4][160];
    snprintf(pat[0], sizeof pat[0], "\"ph\":\"s\",\"id\":%lld,", (long long)f);
    snprintf(pat[1], sizeof pat[1], "\"name\":\"blocked recv handoff\"");
    snprintf(pat[2], sizeof pat[2],
             "{\"op\":\"woken\",\"chan\":\"handoff\",\"v\":42,\"res\":\"ok\",\"dir\":\"recv\","
             "\"flow\":%lld",
             (long long)f);
    snprintf(pat[3], sizeof pat[3], "\"ph\":\"f\",\"id\":%lld,", (long long)f);
    const char *order[] = {pat[0], pat[1], pat[2], pat[3]};
    assert_in_order(s, order, 4);
    /* The sender's own completion names the flow it started; the receiver's is not repeated. */
    ck_assert_int_eq(count_of(s, "{\"op\":\"recv\",\"chan\":\"handoff\""), 0);
    snprintf(pat[0], sizeof pat[0], "\"res\":\"ok\",\"cap\":0,\"woke\":%lld", (long long)f);
    ck_assert_int_eq(count_of(s, pat[0]), 1);
    ck_assert(strstr(s, "\"args\":{\"name\":\"receiver\"}") != NULL);
    ck_assert(strstr(s, "\"args\":{\"name\":\"sender\"}") != NULL);
    free(s);
    rm_tmpdir();
}
END_TEST

static void *recv_one_until(void *arg)
{
    int v = 0;
    int r = chan_recv_until(arg, &v, chan_now() + 30 * 1000000000LL);
    return (void *)(intptr_t)(r == 0 ? v : -1);
}

/* A wait with a deadline says so on its blocked slice ("form":"until"), whether the deadline
 * ends it or a peer does, and how far the deadline was when it blocked ("deadline_in_ns", at
 * most what it was given); a wait without one does not (docs/play's time-out pages say a
 * client parks until a reply or its deadline "in 30 ms" from it). */
START_TEST(test_trace_timed_wait_says_until)
{
    make_tmpdir();
    const char *path = tmp_path("until.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    chan_t *c = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "late");
    int v = 0;
    ck_assert_int_eq(chan_recv_until(c, &v, chan_now() + 2000000), -ETIMEDOUT);
    struct chan_case cs[] = {chan_case_recv(c, &v)};
    ck_assert_int_eq(chan_select_until(cs, 1, chan_now() + 2000000), -ETIMEDOUT);
    pthread_t t = spawn(recv_one_until, c); /* woken by the send below, long before 30 s */
    ck_assert(blocked_receivers_at_least(c, 1));
    v = 7;
    ck_assert_int_eq(chan_send(c, &v), 0);
    ck_assert_int_eq((intptr_t)join(t), 7);
    t = spawn(recv_one, c); /* no deadline */
    ck_assert(blocked_receivers_at_least(c, 1));
    v = 8;
    ck_assert_int_eq(chan_send(c, &v), 0);
    ck_assert_int_eq((intptr_t)join(t), 8);
    ck_assert_int_eq(chan_free(c), 0);
    ck_assert_int_eq(chan_trace_stop(), 0);
    assert_valid_json(path);
    char *s = slurp(path);
    static const char *const want[] = {
        "\"args\":{\"op\":\"blocked\",\"chan\":\"late\",\"form\":\"until\",\"deadline_in_ns\":",
        "\"args\":{\"op\":\"blocked\",\"form\":\"until\",\"deadline_in_ns\":",
        "\"args\":{\"op\":\"blocked\",\"chan\":\"late\",\"form\":\"until\",\"deadline_in_ns\":",
        "\"args\":{\"op\":\"blocked\",\"chan\":\"late\"}",
    };
    assert_in_order(s, want, sizeof want / sizeof *want);
    ck_assert_int_eq(count_of(s, "\"form\":\"until\""), 3);
    /* in order: 2 ms, 2 ms, 30 s, each given just before it blocked */
    static const long long given[] = {2000000, 2000000, 30 * 1000000000LL};
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        p = strstr(p, "\"deadline_in_ns\":");
        ck_assert_ptr_nonnull(p);
        p += strlen("\"deadline_in_ns\":");
        long long in = strtoll(p, NULL, 10);
        ck_assert_msg(in >= 0 && in <= given[i] && (i < 2 || in > given[i] / 2),
                      "wait %d: deadline in %lld ns, given %lld", i, in, given[i]);
    }
    free(s);
    rm_tmpdir();
}
END_TEST

/* A thread still blocked when the trace stops shows as blocked to the end (a stuck pipeline). */
START_TEST(test_trace_stop_while_blocked)
{
    make_tmpdir();
    const char *path = tmp_path("stuck.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    chan_t *c = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "stuck");
    pthread_t t = spawn(recv_one, c);
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(chan_trace_stop(), 0);
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_int_eq((intptr_t)join(t), -1);
    ck_assert_int_eq(chan_free(c), 0);
    assert_valid_json(path);
    char *s = slurp(path);
    ck_assert_msg(strstr(s, "\"name\":\"blocked recv (at the end) stuck\"") != NULL, "%s", s);
    ck_assert(strstr(s, "\"at_end\":true") != NULL);
    free(s);
    rm_tmpdir();
}
END_TEST

/* ---- Select choice and a timer fire ------------------------------------------------------- */

START_TEST(test_trace_select_and_timer)
{
    make_tmpdir();
    const char *path = tmp_path("select.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    chan_t *a = chan_make(sizeof(int), 1), *b = chan_make(sizeof(int), 1);
    chan_trace_name_chan(a, "a");
    chan_trace_name_chan(b, "b");
    int v = 7, got = 0;
    ck_assert_int_eq(chan_send(b, &v), 0);
    struct chan_case cases[] = {{a, &got, CHAN_RECV, false}, {b, &got, CHAN_RECV, false}};
    ck_assert_int_eq(chan_select(cases, 2), 1);
    ck_assert_int_eq(got, 7);
    ck_assert_int_eq(chan_tryselect(cases, 2), -EAGAIN);
    chan_timer_t *tm = chan_timer_make(MS);
    ck_assert_ptr_nonnull(tm);
    chan_trace_name_chan(chan_timer_chan(tm), "timer");
    int64_t when;
    ck_assert_int_eq(chan_recv(chan_timer_chan(tm), &when), 0);
    ck_assert_int_eq(chan_timer_free(tm), 0);
    chan_free(a);
    chan_free(b);
    ck_assert_int_eq(chan_trace_stop(), 0);

    assert_valid_json(path);
    char *s = slurp(path);
    static const char *const want[] = {
        "{\"op\":\"case\",\"chan\":\"a\",\"case\":0,\"dir\":\"recv\",\"n\":2}",
        "{\"op\":\"case\",\"chan\":\"b\",\"case\":1,\"dir\":\"recv\",\"n\":2}",
        ("{\"op\":\"select\",\"chan\":\"b\",\"v\":7,\"form\":\"block\",\"res\":\"ok\",\"case\":1,"
         "\"dir\":\"recv\""),
        "{\"op\":\"select\",\"form\":\"try\",\"res\":\"again\"",
        "{\"op\":\"role\",\"chan\":\"timer\",\"role\":\"timer\"}",
        "{\"op\":\"timer\",\"chan\":\"timer\"",
        "{\"op\":\"send\",\"chan\":\"timer\"",
    };
    assert_in_order(s, want, sizeof want / sizeof *want);
    free(s);
    rm_tmpdir();
}
END_TEST

/* What a replay of the trace needs to draw the channels: the cases of a select (a nil one
 * too) with the values offered, and the value a blocked sender holds in its sudog. */
static void *send_nine(void *arg)
{
    chan_trace_name_thread("sender");
    int v = 9;
    return (void *)(intptr_t)chan_send(arg, &v);
}

START_TEST(test_trace_select_cases_and_blocked_value)
{
    make_tmpdir();
    const char *path = tmp_path("cases.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    chan_trace_name_thread("main");
    chan_t *c = chan_make(sizeof(int), 0), *d = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "c");
    chan_trace_name_chan(d, "d");
    int five = 5, got = 0;
    struct chan_case cases[] = {
        {NULL, NULL, CHAN_SEND, false}, {c, &got, CHAN_RECV, false}, {d, &five, CHAN_SEND, false}};
    ck_assert_int_eq(chan_select_until(cases, 3, chan_now() + MS), -ETIMEDOUT);
    pthread_t t = spawn(send_nine, c);
    ck_assert(blocked_senders_at_least(c, 1));
    ck_assert_int_eq(chan_recv(c, &got), 0);
    ck_assert_int_eq(got, 9);
    ck_assert_int_eq((intptr_t)join(t), 0);
    ck_assert_int_eq(chan_free(c), 0);
    ck_assert_int_eq(chan_free(d), 0);
    ck_assert_int_eq(chan_trace_stop(), 0);

    assert_valid_json(path);
    char *s = slurp(path);
    static const char *const want[] = {
        "\"name\":\"case 0 send nil\"",
        "{\"op\":\"case\",\"case\":0,\"dir\":\"send\",\"n\":3,\"nil\":true}",
        "{\"op\":\"case\",\"chan\":\"c\",\"case\":1,\"dir\":\"recv\",\"n\":3}",
        "{\"op\":\"case\",\"chan\":\"d\",\"v\":5,\"case\":2,\"dir\":\"send\",\"n\":3}",
        "\"name\":\"blocked select\"",
        "\"name\":\"woken select ",
        "\"res\":\"timedout\",\"dir\":\"",
        "\"select\":true,\"blocked_ns\"",
        /* the blocked slice is written at its end: after the wake-up that ended it */
        "{\"op\":\"wake\",\"chan\":\"c\",\"v\":9,\"by\":\"recv\"",
        "\"name\":\"blocked send c\"",
        "{\"op\":\"blocked\",\"chan\":\"c\",\"v\":9",
    };
    assert_in_order(s, want, sizeof want / sizeof *want);
    free(s);
    rm_tmpdir();
}
END_TEST

/* ---- The Mermaid diagram of a pipeline, against its golden file ----------------------------- */

#define PIPE_N 3

struct pipe {
    chan_t *numbers, *squares;
};

static void *producer(void *arg)
{
    struct pipe *p = arg;
    chan_trace_name_thread("producer");
    for (int i = 1; i <= PIPE_N; i++)
        chan_send(p->numbers, &i);
    chan_close(p->numbers);
    return NULL;
}

static void *squarer(void *arg)
{
    struct pipe *p = arg;
    chan_trace_name_thread("squarer");
    int v;
    while (chan_recv(p->numbers, &v) == 0) {
        int sq = v * v;
        chan_send(p->squares, &sq);
    }
    chan_close(p->squares);
    return NULL;
}

static void *printer(void *arg)
{
    struct pipe *p = arg;
    chan_trace_name_thread("printer");
    int v, sum = 0;
    while (chan_recv(p->squares, &v) == 0)
        sum += v;
    return (void *)(intptr_t)sum;
}

/* Unbuffered pipeline: every hand-off is ordered by the program, so the diagram is the same on
 * every run, whoever of the two sides of each hand-off comes first. */
static void run_pipeline(const char *path)
{
    ck_assert_int_eq(chan_trace_start(path), 0);
    struct pipe p = {chan_make(sizeof(int), 0), chan_make(sizeof(int), 0)};
    chan_trace_name_chan(p.numbers, "numbers");
    chan_trace_name_chan(p.squares, "squares");
    pthread_t t3 = spawn(printer, &p), t2 = spawn(squarer, &p), t1 = spawn(producer, &p);
    join(t1);
    join(t2);
    ck_assert_int_eq((intptr_t)join(t3), 1 + 4 + 9);
    ck_assert_int_eq(chan_free(p.numbers), 0);
    ck_assert_int_eq(chan_free(p.squares), 0);
    ck_assert_int_eq(chan_trace_stop(), 0);
    ck_assert_int_eq(chan_trace_dropped(), 0);
}

START_TEST(test_mermaid_pipeline_golden)
{
    make_tmpdir();
    /* Several runs: the interleavings differ, the diagram must not. */
    for (int run = 0; run < 5; run++) {
        const char *path = tmp_path("pipe.json"), *mmd = tmp_path("pipe.mmd");
        run_pipeline(path);
        assert_valid_json(path);
        char cmd[512];
        snprintf(cmd, sizeof cmd, "python3 tools/trace2mermaid '%s' -o '%s'", path, mmd);
        ck_assert_int_eq(system(cmd), 0);
        char *got = slurp(mmd), *want = slurp("test/golden/pipeline.mmd");
        ck_assert_msg(strcmp(got, want) == 0,
                      "run %d: Mermaid output differs from "
                      "test/golden/pipeline.mmd:\n%s",
                      run, got);
        free(got);
        free(want);
        /* The SVG timeline is made too (its content depends on timing: not compared). */
        snprintf(cmd, sizeof cmd, "python3 tools/trace2mermaid '%s' --svg '%s'", path,
                 tmp_path("pipe.svg"));
        ck_assert_int_eq(system(cmd), 0);
        char *svg = slurp(tmp_path("pipe.svg"));
        ck_assert(strncmp(svg, "<svg ", 5) == 0 && strstr(svg, "</svg>") != NULL);
        free(svg);
    }
    rm_tmpdir();
}
END_TEST

/* ---- The dump -------------------------------------------------------------------------------- */

static void *recv_blocked(void *arg)
{
    chan_trace_name_thread("worker");
    int v;
    return (void *)(intptr_t)chan_recv(arg, &v);
}

START_TEST(test_dump_shows_blocked_thread_on_named_channel)
{
    ck_assert_int_eq(chan_dump(stderr), -ENODEV);
    ck_assert_int_eq(chan_dump_enable(), 0);
    chan_t *jobs = chan_make(sizeof(int), 0);
    chan_t *other = chan_make(0, 3);
    ck_assert_int_eq(chan_trace_name_chan(jobs, "jobs"), 0);
    pthread_t t = spawn(recv_blocked, jobs);
    ck_assert(blocked_receivers_at_least(jobs, 1));
    int listed;
    char *s = text_of(chan_dump, &listed);
    ck_assert_int_eq(listed, 2);
    ck_assert_msg(strstr(s, "chan \"jobs\"") != NULL, "%s", s);
    ck_assert_msg(
        strstr(s, "len 0 cap 0 elemsize 4 open, 0 blocked senders, 1 blocked receivers") != NULL,
        "%s", s);
    ck_assert_msg(strstr(s, "    recv  thread \"worker\" (tid ") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "blocked for ") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "len 0 cap 3 elemsize 0 open") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "end of dump: 2 channels, 0 skipped") != NULL, "%s", s);
    free(s);

    ck_assert_int_eq(chan_close(jobs), 0);
    ck_assert_int_eq((intptr_t)join(t), -EPIPE);
    ck_assert_int_eq(chan_free(jobs), 0);
    s = text_of(chan_dump, &listed);
    ck_assert_int_eq(listed, 1);
    ck_assert_msg(strstr(s, "jobs") == NULL, "%s", s);
    free(s);
    chan_free(other);
}
END_TEST

/* A thread blocked on no channel at all - select {} (no cases, or only nil ones), a nil
 * channel's receive or send - is on no queue, yet Go's dump lists such a goroutine ("select (no
 * cases)"): so does chan_dump, under its own heading, and no longer once its wait ends. */
static atomic_int nothing_phase;

static void *wait_on_nothing(void *arg)
{
    int how = (int)(intptr_t)arg, v = 0;
    if (how == 0)
        chan_trace_name_thread("idle");
    struct chan_case nils[] = {chan_case_recv(NULL, &v), chan_case_send(NULL, &v)};
    switch (how) {
    case 0: return (void *)(intptr_t)chan_select(NULL, 0);
    case 1: return (void *)(intptr_t)chan_recv(NULL, &v);
    case 2: return (void *)(intptr_t)chan_send(NULL, &v);
    case 3: return (void *)(intptr_t)chan_select(nils, 2);
    default: /* a deadline: over once the test says so, whatever the clock */
        while (chan_select_until(NULL, 0, chan_now() + 5 * MS) == -ETIMEDOUT &&
               !atomic_load(&nothing_phase)) {
        }
        return NULL;
    }
}

START_TEST(test_dump_lists_waits_on_no_channel)
{
    chan_dump_enable();
    chan_t *c = chan_make(sizeof(int), 0);
    for (int how = 0; how < 4; how++)
        spawn(wait_on_nothing, (void *)(intptr_t)how); /* never woken: the process ends */
    char *s = NULL;
    int listed = 0;
    for (int i = 0; i < 2000; i++) { /* until all four have blocked */
        free(s);
        s = text_of(chan_dump, &listed);
        if (count_of(s, "  blocked for ") == 4)
            break;
        sleep_ms(5);
    }
    ck_assert_int_eq(listed, 1); /* channels: the count is theirs */
    ck_assert_msg(strstr(s, "\nblocked on no channel:\n") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "\n    select (no cases)  thread \"idle\" (tid ") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "\n    chan receive (nil chan)  thread tid ") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "\n    chan send (nil chan)  thread tid ") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "\n    select  thread tid ") != NULL, "%s", s);
    ck_assert_msg(count_of(s, "  blocked for ") == 4, "%s", s);
    ck_assert_msg(strstr(s, "end of dump: 1 channels, 0 skipped") != NULL, "%s", s);
    free(s);
    /* A wait on nothing with a deadline is listed while it waits, and not after. */
    pthread_t t = spawn(wait_on_nothing, (void *)(intptr_t)4);
    for (int i = 0; i < 2000; i++) {
        s = text_of(chan_dump, &listed);
        bool five = count_of(s, "  blocked for ") == 5;
        free(s);
        if (five)
            break;
        sleep_ms(5);
    }
    atomic_store(&nothing_phase, 1);
    join(t);
    s = text_of(chan_dump, &listed);
    ck_assert_msg(count_of(s, "  blocked for ") == 4, "%s", s);
    free(s);
    chan_free(c);
}
END_TEST

START_TEST(test_dump_skips_a_locked_channel)
{
    chan_dump_enable();
    chan_t *c = chan_make(sizeof(int), 1);
    chan_trace_name_chan(c, "held");
    lock(&c->lock); /* as if an operation held it at the moment of the dump */
    int listed;
    char *s = text_of(chan_dump, &listed);
    unlock(&c->lock);
    ck_assert_int_eq(listed, 1);
    ck_assert_msg(strstr(s, "chan \"held\"") != NULL && strstr(s, "skipped") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "end of dump: 1 channels, 1 skipped") != NULL, "%s", s);
    free(s);
    chan_free(c);
}
END_TEST

/* Names are the user's bytes: the dump prints each on its line, quotes and all escaped. */
struct named_recv {
    chan_t *c;
    const char *name;
};

static void *recv_blocked_named(void *arg)
{
    struct named_recv *a = arg;
    chan_trace_name_thread(a->name);
    int v;
    return (void *)(intptr_t)chan_recv(a->c, &v);
}

START_TEST(test_dump_escapes_names)
{
    chan_dump_enable();
    chan_t *c = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "say \"hi\" \\\n\xff \xc3\xa9");
    struct named_recv arg = {c, "w\"1\"\n"};
    pthread_t t = spawn(recv_blocked_named, &arg);
    ck_assert(blocked_receivers_at_least(c, 1));
    int listed;
    char *s = text_of(chan_dump, &listed);
    ck_assert_int_eq(listed, 1);
    ck_assert_msg(strstr(s, "chan \"say \\\"hi\\\" \\\\\\n\\xff \xc3\xa9\" (") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "thread \"w\\\"1\\\"\\n\" (tid ") != NULL, "%s", s);
    ck_assert_int_eq(count_of(s, "\n"), 4); /* header, channel, waiter, end */
    free(s);
    chan_close(c);
    join(t);
    chan_free(c);
}
END_TEST

/* A select of cases on one channel is one waiter there, however many of its cases name it. */
struct sel_args {
    chan_t *c, *other;
    int nsend, nrecv; /* cases on c; one more, a receive, on other when other != NULL */
};

static void *select_blocked(void *arg)
{
    struct sel_args *a = arg;
    int v = 0;
    struct chan_case cs[16];
    int n = 0;
    for (int i = 0; i < a->nsend; i++)
        cs[n++] = (struct chan_case){a->c, &v, CHAN_SEND, false};
    for (int i = 0; i < a->nrecv; i++)
        cs[n++] = (struct chan_case){a->c, &v, CHAN_RECV, false};
    if (a->other)
        cs[n++] = (struct chan_case){a->other, &v, CHAN_RECV, false};
    return (void *)(intptr_t)chan_select(cs, (size_t)n);
}

static void *send_blocked(void *arg)
{
    int v = 1;
    return (void *)(intptr_t)chan_send(arg, &v);
}

START_TEST(test_dump_counts_waiters_not_cases)
{
    chan_dump_enable();
    chan_t *six = chan_make(sizeof(int), 0), *mixed = chan_make(sizeof(int), 0);
    chan_t *many = chan_make(sizeof(int), 0), *idle = chan_make(sizeof(int), 0);
    chan_trace_name_chan(six, "six");
    chan_trace_name_chan(mixed, "mixed");
    chan_trace_name_chan(many, "many");
    enum { NMANY = 18 };
    struct sel_args a6 = {six, NULL, 6, 0}, am = {mixed, idle, 2, 3}, an = {many, NULL, 2, 0};
    pthread_t t[NMANY + 3];
    int nt = 0;
    t[nt++] = spawn(select_blocked, &a6);
    ck_assert(blocked_senders_at_least(six, 6));
    t[nt++] = spawn(send_blocked, six);
    ck_assert(blocked_senders_at_least(six, 7));
    t[nt++] = spawn(select_blocked, &am);
    ck_assert(blocked_senders_at_least(mixed, 2) && blocked_receivers_at_least(mixed, 3));
    for (int i = 0; i < NMANY; i++)
        t[nt++] = spawn(select_blocked, &an);
    ck_assert(blocked_senders_at_least(many, 2 * NMANY));

    int listed;
    char *s = text_of(chan_dump, &listed);
    ck_assert_int_eq(listed, 4);
    ck_assert_msg(strstr(s, "chan \"six\" (") != NULL &&
                      strstr(s, "elemsize 4 open, 2 blocked senders, 0 blocked receivers\n"
                                "    send (select of 6, 6 of its cases here)  thread") != NULL,
                  "%s", s);
    ck_assert_msg(strstr(s, "open, 1 blocked senders, 1 blocked receivers\n"
                            "    send (select of 6, 2 of its cases here)  thread") != NULL &&
                      strstr(s, "    recv (select of 6, 3 of its cases here)  thread") != NULL,
                  "%s", s);
    ck_assert_msg(strstr(s, "open, 18 blocked senders, 0 blocked receivers\n") != NULL &&
                      strstr(s, "    ... and 2 more\n") != NULL,
                  "%s", s);
    ck_assert_int_eq(count_of(s, "(select of 2, 2 of its cases here)"), 16);
    ck_assert_int_eq(count_of(s, "    send  thread"), 1);
    free(s);

    chan_close(six);
    chan_close(mixed);
    chan_close(many);
    for (int i = 0; i < nt; i++)
        join(t[i]);
    ck_assert_int_eq(chan_free(six), 0);
    ck_assert_int_eq(chan_free(mixed), 0);
    ck_assert_int_eq(chan_free(many), 0);
    ck_assert_int_eq(chan_free(idle), 0);
}
END_TEST

/* A select is shown as one, even with a single non-nil case: it is not a plain receive. */
static void *select_one_live(void *arg)
{
    int v = 0;
    struct chan_case cs[2] = {chan_case_recv(arg, &v), chan_case_recv(NULL, NULL)};
    return (void *)(intptr_t)chan_select(cs, 2);
}

START_TEST(test_dump_select_of_one)
{
    chan_dump_enable();
    chan_t *c = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "one");
    pthread_t t = spawn(select_one_live, c);
    ck_assert(blocked_receivers_at_least(c, 1));
    int listed;
    char *s = text_of(chan_dump, &listed);
    ck_assert_msg(strstr(s, "blocked receivers\n    recv (select of 1)  thread") != NULL, "%s", s);
    free(s);
    chan_close(c);
    join(t);
    ck_assert_int_eq(chan_free(c), 0);
}
END_TEST

START_TEST(test_dump_on_sigquit)
{
    make_tmpdir();
    const char *path = tmp_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);

    ck_assert_int_eq(chan_dump_on_sigquit(), 0);
    ck_assert_int_eq(chan_dump_on_sigquit(), 0);
    chan_t *c = chan_make(sizeof(int), 0);
    chan_trace_name_chan(c, "quit-me");
    pthread_t t = spawn(recv_blocked, c);
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(kill(getpid(), SIGQUIT), 0);
    char *s = NULL;
    for (int i = 0; i < 10000; i++) { /* the dump thread prints: wait up to ~10 s */
        s = slurp(path);
        if (strstr(s, "end of dump"))
            break;
        free(s);
        s = NULL;
        sleep_ms(1);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_msg(s != NULL, "no dump on SIGQUIT");
    ck_assert_msg(strstr(s, "chan \"quit-me\"") != NULL && strstr(s, "thread \"worker\"") != NULL,
                  "%s", s);
    free(s);
    chan_close(c);
    join(t);
    chan_free(c);
    rm_tmpdir();
}
END_TEST

/* ---- Buffers: none left, or registered ------------------------------------------------------ */

static void *try_sends(void *arg)
{
    int v = 0;
    for (int i = 0; i < 5; i++)
        chan_trysend(arg, &v);
    return NULL;
}

static void *registered_sends(void *arg)
{
    int r = chan_trace_register_thread();
    chan_trace_name_thread("registered");
    int v = 0;
    for (int i = 0; i < 5; i++)
        chan_trysend(arg, &v);
    return (void *)(intptr_t)r;
}

START_TEST(test_trace_drops_without_a_buffer)
{
    make_tmpdir();
    setenv("CHAN_TRACE_THREADS", "1", 1); /* the starting thread takes the only one */
    const char *path = tmp_path("drop.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    chan_t *c = chan_make(sizeof(int), 0);
    join(spawn(try_sends, c));
    ck_assert_uint_eq(chan_trace_dropped(), 5);
    ck_assert_int_eq((intptr_t)join(spawn(registered_sends, c)), 0);
    ck_assert_uint_eq(chan_trace_dropped(), 5);
    chan_free(c);
    ck_assert_int_eq(chan_trace_stop(), 0);
    ck_assert_uint_eq(chan_trace_dropped(), 5);
    unsetenv("CHAN_TRACE_THREADS");
    assert_valid_json(path);
    char *s = slurp(path);
    ck_assert(strstr(s, "\"dropped\":5") != NULL);
    ck_assert(strstr(s, "\"args\":{\"name\":\"registered\"}") != NULL);
    ck_assert_int_eq(count_of(s, "\"res\":\"again\""), 5);
    free(s);
    rm_tmpdir();
}
END_TEST

/* A flow arrow whose wake or woken was lost (the buffer of the thread that recorded it was
 * full) is not written: no "f" without its "s", no "s" without its "f". The other thread fills
 * its buffer of 8 events, then wakes the main thread's receive; then main wakes its receive. */
static void *full_then_handoffs(void *arg)
{
    chan_t *c = arg, *none = chan_make(sizeof(int), 0);
    int v = 1;
    for (int i = 0; i < 8; i++)
        chan_trysend(none, &v); /* nobody receives there: "again", recorded */
    chan_free(none);
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(chan_send(c, &v), 0);
    ck_assert_int_eq(chan_recv(c, &v), 0);
    return NULL;
}

START_TEST(test_trace_no_flow_with_one_end)
{
    make_tmpdir();
    setenv("CHAN_TRACE_EVENTS", "8", 1);
    const char *path = tmp_path("halfflow.json");
    ck_assert_int_eq(chan_trace_start(path), 0);
    chan_t *c = chan_make(sizeof(int), 0);
    pthread_t t = spawn(full_then_handoffs, c);
    int v;
    ck_assert_int_eq(chan_recv(c, &v), 0); /* woken by the thread whose buffer is full */
    ck_assert(blocked_receivers_at_least(c, 1));
    ck_assert_int_eq(chan_send(c, &v), 0); /* wakes it */
    join(t);
    ck_assert_int_eq(chan_trace_stop(), 0);
    chan_free(c);
    unsetenv("CHAN_TRACE_EVENTS");
    ck_assert_uint_gt(chan_trace_dropped(), 0);
    assert_valid_json(path);
    char *s = slurp(path);
    ck_assert_int_eq(count_of(s, "\"op\":\"woken\""), 1); /* main's, whose wake was lost */
    ck_assert_int_eq(count_of(s, "\"op\":\"wake\""), 1);  /* main's, whose woken was lost */
    ck_assert_int_eq(count_of(s, "\"ph\":\"f\""), 0);
    ck_assert_int_eq(count_of(s, "\"ph\":\"s\""), 0);
    free(s);
    rm_tmpdir();
}
END_TEST

/* A count that is not a positive number is ignored: "-1" is not the largest count there is. */
START_TEST(test_trace_env_counts_not_numbers)
{
    make_tmpdir();
    setenv("CHAN_TRACE_THREADS", "-1", 1);
    setenv("CHAN_TRACE_EVENTS", "0", 1);
    const char *path = tmp_path("counts.json");
    ck_assert_int_eq(chan_trace_start(path), 0); /* the default: 64 buffers of 8192 events */
    chan_t *c = chan_make(sizeof(int), 0);
    for (int i = 0; i < 70; i++) /* one buffer each, taken for good */
        join(spawn(try_sends, c));
    ck_assert_uint_eq(chan_trace_dropped(), 5 * 7); /* the main thread took one */
    chan_free(c);
    ck_assert_int_eq(chan_trace_stop(), 0);
    unsetenv("CHAN_TRACE_THREADS");
    unsetenv("CHAN_TRACE_EVENTS");
    assert_valid_json(path);
    rm_tmpdir();
}
END_TEST

/* ---- CHAN_TRACE in the environment: this program, run again as a child ---------------------- */

static int child_workload(void)
{
    chan_t *c = chan_make(sizeof(int), 1);
    int v = 5;
    chan_send(c, &v);
    chan_recv(c, &v);
    chan_free(c);
    return 0; /* the trace is written at exit */
}

START_TEST(test_trace_from_environment)
{
    make_tmpdir();
    char self[256];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert(n > 0);
    self[n] = 0;
    char cmd[800];
    snprintf(cmd, sizeof cmd, "CHAN_TRACE='%s' CHAN_TRACE_TEST_CHILD=1 '%s'", tmp_path("env.json"),
             self);
    ck_assert_int_eq(system(cmd), 0);
    assert_valid_json(tmp_path("env.json"));
    char *s = slurp(tmp_path("env.json"));
    static const char *const want[] = {
        "\"name\":\"make c1\"", "\"op\":\"send\",\"chan\":\"c1\",\"v\":5",
        "\"op\":\"recv\",\"chan\":\"c1\",\"v\":5", "\"name\":\"free c1\""};
    assert_in_order(s, want, 4);
    free(s);
    rm_tmpdir();
}
END_TEST

/* ---- Many threads, trace stopped and restarted under load: TSan must stay quiet ------------- */

static atomic_bool stress_stop;

/* 7 bytes, then 3-byte characters: the 47-byte cut falls inside the 14th. */
#define EURO5 "\u20ac\u20ac\u20ac\u20ac\u20ac"
#define EURO_NAME(lead) lead EURO5 EURO5 EURO5

static void *stress_sender(void *arg)
{
    chan_t **cs = arg;
    chan_trace_name_thread(EURO_NAME("sender "));
    int v = 0;
    while (!atomic_load(&stress_stop)) {
        struct chan_case cases[] = {{cs[0], &v, CHAN_SEND, false}, {cs[1], &v, CHAN_SEND, false}};
        if (chan_select_until(cases, 2, chan_now() + MS) >= 0)
            v++;
        chan_trysend(cs[2], &v);
    }
    return NULL;
}

static void *stress_receiver(void *arg)
{
    chan_t **cs = arg;
    int v;
    while (!atomic_load(&stress_stop)) {
        chan_recv_until(cs[0], &v, chan_now() + MS);
        chan_tryrecv(cs[1], &v);
        chan_recv_until(cs[2], &v, chan_now() + MS);
    }
    return NULL;
}

/* Named threads that come and go: their names are released while traces start and stop. */
static void *stress_churn(void *arg)
{
    while (!atomic_load(&stress_stop))
        join(spawn(named_event, arg));
    return NULL;
}

START_TEST(test_trace_under_load_restarts)
{
    make_tmpdir();
    chan_dump_enable();
    chan_t *cs[3] = {chan_make(sizeof(int), 0), chan_make(sizeof(int), 4),
                     chan_make(sizeof(int), 1)};
    enum { NS = 3, NR = 2, NC = 1 };
    pthread_t t[NS + NR + NC];
    for (int i = 0; i < NS; i++)
        t[i] = spawn(stress_sender, cs);
    for (int i = 0; i < NR; i++)
        t[NS + i] = spawn(stress_receiver, cs);
    t[NS + NR] = spawn(stress_churn, EURO_NAME("churner"));
    for (int round = 0; round < 4; round++) {
        const char *path = round & 1 ? tmp_path("b.json") : tmp_path("a.json");
        ck_assert_int_eq(chan_trace_start(path), 0);
        sleep_ms(20);
        chan_t *x = chan_make(8, 0); /* makes and frees while others trace and dump */
        chan_trace_name_chan(x, EURO_NAME("shortly"));
        FILE *null = fopen("/dev/null", "w");
        ck_assert(chan_dump(null) >= 3);
        fclose(null);
        chan_free(x);
        ck_assert_int_eq(chan_trace_stop(), 0);
        assert_valid_json(path);
    }
    atomic_store(&stress_stop, true);
    for (int i = 0; i < NS + NR + NC; i++)
        join(t[i]);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_free(cs[i]), 0);
    rm_tmpdir();
}
END_TEST

int main(void)
{
    if (getenv("CHAN_TRACE_TEST_CHILD"))
        return child_workload();
    Suite *s = suite_create("trace");
    ADD_TEST(s, test_json_checker_is_strict, 30);
    ADD_TEST(s, test_name_chan_reports_no_memory, 30);
    ADD_TEST(s, test_trace_names_any_bytes, 30);
    ADD_TEST(s, test_thread_names_released_at_exit, 60);
    ADD_TEST(s, test_trace_keeps_names_of_exited_threads, 30);
    ADD_TEST(s, test_trace_events_in_order, 30);
    ADD_TEST(s, test_trace_first_op_of_a_thread_has_its_value, 30);
    ADD_TEST(s, test_trace_stop_reports_write_errors, 30);
    ADD_TEST(s, test_trace_fd_wait_ends_its_block, 30);
    ADD_TEST(s, test_dump_names_what_a_channel_is_for, 30);
    ADD_TEST(s, test_trace_wait_on_no_channel, 30);
    ADD_TEST(s, test_trace_timed_wait_says_until, 60);
    ADD_TEST(s, test_dump_reports_write_errors, 30);
    ADD_TEST(s, test_trace_flow_from_waker_to_woken, 30);
    ADD_TEST(s, test_trace_stop_while_blocked, 30);
    ADD_TEST(s, test_trace_select_and_timer, 30);
    ADD_TEST(s, test_trace_select_cases_and_blocked_value, 30);
    ADD_TEST(s, test_mermaid_pipeline_golden, 60);
    ADD_TEST(s, test_dump_shows_blocked_thread_on_named_channel, 30);
    ADD_TEST(s, test_dump_skips_a_locked_channel, 30);
    ADD_TEST(s, test_dump_lists_waits_on_no_channel, 30);
    ADD_TEST(s, test_dump_escapes_names, 30);
    ADD_TEST(s, test_dump_counts_waiters_not_cases, 30);
    ADD_TEST(s, test_dump_select_of_one, 30);
    ADD_TEST(s, test_dump_on_sigquit, 30);
    ADD_TEST(s, test_trace_drops_without_a_buffer, 30);
    ADD_TEST(s, test_trace_no_flow_with_one_end, 30);
    ADD_TEST(s, test_trace_env_counts_not_numbers, 60);
    ADD_TEST(s, test_trace_from_environment, 30);
    ADD_TEST(s, test_trace_under_load_restarts, 60);
    return run_suite(s);
}

#else /* libchan built without its trace hooks (no -DCHAN_TRACE_BUILD): nothing to test */

START_TEST(test_trace_not_built)
{
    printf("test_trace: libchan was built without trace/ (-DCHAN_TRACE_BUILD): skipped\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace");
    ADD_TEST(s, test_trace_not_built, 10);
    return run_suite(s);
}

#endif
