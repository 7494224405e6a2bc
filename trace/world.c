/* SPDX-License-Identifier: MIT */
/*
 * world.c - the process as a conservative collector sees it, after the Boehm collector's
 * pthread_stop_world.c and Go's preemption signal: its threads, stopped and resumed with
 * CHAN_STOP_SIGNAL; its memory mappings (/proc/self/maps); and a sweep of their populated
 * pages (/proc/self/pagemap) for words equal to one of a set of addresses. The leak detector
 * (leak.c) is its one user; world.h is its interface.
 *
 * Invariants:
 *  - A stop is in progress while stw.gen is odd. A thread's handler answers only a signal sent
 *    by this process (SI_TKILL from our pid) during a stop, and only once per stop: it records
 *    the address of one of its locals (the signal frame, with every register the thread had,
 *    lies above it on the same stack: the handler is installed without SA_ONSTACK; dead_part
 *    marks the part of it that holds nothing of the program's), counts
 *    itself, and waits on stw.gen until it changes. Any other signal goes to the handler that
 *    was there before (SIGURG's default is to ignore it). A signal handled late - a stop that
 *    is over - returns at once.
 *  - The answers live in a static array (acks) that is never freed, so that a late handler
 *    never reads memory that is gone. Threads past its size are not stopped (w->unseen).
 *  - Between stop and resume nothing here calls malloc, stdio or a function a sanitizer
 *    intercepts: system calls are made through syscall(2), memory comes from mmap. Under TSan
 *    alone, the arrays' mappings are made and unmapped through its interceptors of mmap and
 *    munmap: a raw mapping at an address where memory unmapped behind TSan's back had been
 *    (glibc unmaps a dead thread's cached stack so) inherits that memory's accesses in TSan's
 *    shadow, and the check's first touch of its own fresh array was reported as a race with
 *    the dead thread; the interceptors reset the shadow, take no lock a stopped thread holds
 *    (under TSan a thread answers the signal only at the runtime's safe points), and mremap is
 *    replaced by a copy.
 *  - Memory is read in place while every other thread is stopped (nothing can unmap it), by a
 *    function the sanitizers do not instrument (their redzones are read as any other bytes);
 *    when a thread could not be stopped, with process_vm_readv on ourselves, where a page that
 *    vanished meanwhile is skipped, not a crash. Fields read one by one go through
 *    process_vm_readv always (world_read): TSan does not see those reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "seam.h" /* futex_wait, futex_wake, CHAN_STOP_SIGNAL */
#include "world.h"

#if defined(__SANITIZE_ADDRESS__)
#define WORLD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WORLD_ASAN 1
#endif
#endif
#ifdef WORLD_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if defined(__SANITIZE_THREAD__)
#define WORLD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WORLD_TSAN 1
#endif
#endif

#define PAGE 4096u
#define ANSWER_SOON_NS (20 * 1000000LL)     /* then a thread asleep in a system call is let be */
#define ANSWER_LATE_NS (500 * 1000000LL)    /* then a running thread that does not answer, too */
#define MAX_ACKS 8192                       /* threads a stop can hold */
#define SWEEP_MAX_MAP ((uintptr_t)64 << 30) /* larger mappings are sanitizers' shadow memory */
#define READ_CHUNK (256u * 1024u)

/* ---- Raw system calls: usable while other threads are stopped anywhere ----------------------- */

static long sys_open(const char *path, int flags)
{
    return syscall(SYS_openat, AT_FDCWD, path, flags);
}
static long sys_close(long fd) { return syscall(SYS_close, fd); }
static long sys_read(long fd, void *buf, size_t n) { return syscall(SYS_read, fd, buf, n); }
static long sys_pread(long fd, void *buf, size_t n, off_t off)
{
    return syscall(SYS_pread64, fd, buf, n, off);
}
static pid_t sys_gettid(void) { return (pid_t)syscall(SYS_gettid); }

static void *sys_mmap(size_t len)
{
#ifdef WORLD_TSAN
    /* Through TSan's interceptor, which resets the range's shadow (see the top). */
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#else
    void *p = (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#endif
    if (p == MAP_FAILED)
        return NULL;
#ifdef WORLD_ASAN
    /* Fresh pages, but ASan's shadow may still describe what was mapped here before. */
    __asan_unpoison_memory_region(p, len);
#endif
    return p;
}

static void sys_munmap(void *p, size_t len)
{
#ifdef WORLD_TSAN
    munmap(p, len);
#else
    syscall(SYS_munmap, p, len);
#endif
}

/* ---- Arrays in mappings of their own --------------------------------------------------------- */

static size_t vec_bytes(size_t cap, size_t esz) { return (cap * esz + PAGE - 1) / PAGE * PAGE; }

void *vec_room(struct vec *v, size_t n)
{
    if (n > SIZE_MAX / 2 / v->esz - v->n)
        return NULL;
    if (v->n + n > v->cap) {
        size_t cap = v->cap ? 2 * v->cap : PAGE / v->esz + 1;
        while (cap < v->n + n)
            cap *= 2;
        size_t old = vec_bytes(v->cap, v->esz), len = vec_bytes(cap, v->esz);
        void *p;
        if (!v->p) {
            p = sys_mmap(len);
        } else {
#ifdef WORLD_TSAN
            if ((p = sys_mmap(len)) != NULL) { /* no interceptor for mremap: a copy */
                memcpy(p, v->p, old);
                sys_munmap(v->p, old);
            }
#else
            p = (void *)syscall(SYS_mremap, v->p, old, len, MREMAP_MAYMOVE, NULL);
            if (p == MAP_FAILED)
                p = NULL;
#ifdef WORLD_ASAN
            else
                __asan_unpoison_memory_region(p, len);
#endif
#endif
        }
        if (!p)
            return NULL;
        v->p = p;
        v->cap = len / v->esz;
    }
    return v->p + v->n * v->esz;
}

void *vec_push(struct vec *v)
{
    void *e = vec_room(v, 1);
    if (e) {
        memset(e, 0, v->esz);
        v->n++;
    }
    return e;
}

void vec_free(struct vec *v)
{
    if (v->p)
        sys_munmap(v->p, vec_bytes(v->cap, v->esz));
    v->p = NULL;
    v->n = v->cap = 0;
}

/* ---- A set of addresses ---------------------------------------------------------------------- */

/* A table of size slots (a power of two), empty. */
static int table_make(struct vec *mem, size_t size, uintptr_t **keys, uint32_t **vals)
{
    *mem = (struct vec){.esz = 1};
    char *p = vec_room(mem, size * (sizeof(uintptr_t) + sizeof(uint32_t)));
    if (!p)
        return -ENOMEM;
    memset(p, 0, size * (sizeof(uintptr_t) + sizeof(uint32_t)));
    *keys = (uintptr_t *)p;
    *vals = (uint32_t *)(p + size * sizeof(uintptr_t));
    return 0;
}

static void table_put(uintptr_t *keys, uint32_t *vals, size_t mask, uintptr_t key, uint32_t val)
{
    size_t i = (size_t)((key >> 4) * 0x9e3779b97f4a7c15ull) & mask;
    while (keys[i] && keys[i] != key)
        i = (i + 1) & mask;
    keys[i] = key;
    vals[i] = val;
}

int addrset_init(struct addrset *s, size_t n)
{
    size_t size = 16;
    while (size < 2 * n + 16)
        size *= 2;
    *s = (struct addrset){.mask = size - 1, .min = UINTPTR_MAX, .lowbits = ~(uintptr_t)0};
    return table_make(&s->mem, size, &s->keys, &s->vals);
}

int addrset_add(struct addrset *s, uintptr_t key, uint32_t val)
{
    if (2 * (s->count + 1) > s->mask + 1) { /* half full: twice the size */
        size_t size = 2 * (s->mask + 1);
        struct vec mem;
        uintptr_t *keys;
        uint32_t *vals;
        if (table_make(&mem, size, &keys, &vals) != 0)
            return -ENOMEM;
        for (size_t i = 0; i <= s->mask; i++)
            if (s->keys[i])
                table_put(keys, vals, size - 1, s->keys[i], s->vals[i]);
        vec_free(&s->mem);
        s->mem = mem;
        s->keys = keys;
        s->vals = vals;
        s->mask = size - 1;
    }
    table_put(s->keys, s->vals, s->mask, key, val);
    s->count++;
    s->min = key < s->min ? key : s->min;
    s->max = key > s->max ? key : s->max;
    /* Keep in lowbits only the low bits that are clear in every member: its alignment. */
    uintptr_t align = key & -key;
    s->lowbits &= align - 1;
    return 0;
}

void addrset_free(struct addrset *s)
{
    vec_free(&s->mem);
    s->keys = NULL;
}

/* ---- Stopping the threads -------------------------------------------------------------------- */

struct ack {
    _Atomic pid_t tid;
    _Atomic uint32_t gen; /* the stop it answered */
    const char *_Atomic sp;
    const char *_Atomic dead_lo, *_Atomic dead_hi; /* struct wthread's */
};

static struct {
    _Atomic uint32_t gen;   /* odd while a stop is in progress */
    _Atomic uint32_t nacks; /* answers to this stop */
    _Atomic uint32_t n;     /* acks[0, n) name the threads signalled */
    pid_t pid;
    struct sigaction prev; /* the handler before ours */
} stw;

static struct ack acks[MAX_ACKS];

/* Copies [a, a + n) of our own memory into buf: bytes copied (0: none could be read). */
static size_t read_self(void *buf, uintptr_t a, size_t n)
{
    struct iovec local = {buf, n}, remote = {(void *)a, n};
    long r = syscall(SYS_process_vm_readv, stw.pid, &local, 1UL, &remote, 1UL, 0UL);
    return r > 0 ? (size_t)r : 0;
}

static void chain(int sig, siginfo_t *si, void *uc)
{
    if (stw.prev.sa_flags & SA_SIGINFO) {
        if (stw.prev.sa_sigaction)
            stw.prev.sa_sigaction(sig, si, uc);
    } else if (stw.prev.sa_handler != SIG_DFL && stw.prev.sa_handler != SIG_IGN) {
        stw.prev.sa_handler(sig);
    }
}

/* The part of the signal frame at uc that holds no value of the program's, into *lo and *hi
 * (left alone when there is none). On x86-64 the kernel puts the saved vector registers (the
 * XSAVE area) at the top of the frame, right below the red zone of the interrupted stack. A
 * thread stopped in a system call - about to restart it (SA_RESTART: the instruction at the
 * saved ip is the syscall) or as the call returned (interrupted out of it, -EINTR, or with the
 * call's own result when the signal came while a short call such as a futex wake ran) - made
 * that call from a function call (libc's wrappers, syscall(2)), across which the SysV ABI keeps
 * no vector register: their saved copies are dead. They do hold stale bytes, such as the
 * channel addresses a scheduler thread moved for the last task it ran before it went to sleep,
 * or a thread's for a channel it made long before, which would hide a leak. The syscall
 * instruction itself says that it ran: it leaves its return address in rcx (rcx == ip as it
 * returns; rcx == ip + 2 once the kernel backed ip up to restart it), which no other
 * instruction ending in the same two bytes does. Elsewhere (a running thread, another
 * architecture: AArch64 keeps d8-d15 across calls) every byte of the frame counts. */
static void dead_part(const void *uc, const char **lo, const char **hi)
{
#if defined(__x86_64__)
    const mcontext_t *mc = &((const ucontext_t *)uc)->uc_mcontext;
    const unsigned char *ip = (const unsigned char *)mc->gregs[REG_RIP];
    uintptr_t rcx = (uintptr_t)mc->gregs[REG_RCX];
    const char *fp = (const char *)mc->fpregs, *top = (const char *)mc->gregs[REG_RSP] - 128;
    bool at_syscall = ip && rcx == (uintptr_t)ip + 2 && ip[0] == 0x0f && ip[1] == 0x05;
    bool after_syscall = rcx == (uintptr_t)ip && ((uintptr_t)ip & (PAGE - 1)) >= 2 &&
                         ip[-2] == 0x0f && ip[-1] == 0x05;
    if ((at_syscall || after_syscall) && fp && fp < top && top - fp <= 64 * 1024) {
        *lo = fp;
        *hi = top;
    }
#else
    (void)uc;
    (void)lo;
    (void)hi;
#endif
}

static void on_stop(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    if (si->si_code != SI_TKILL || si->si_pid != stw.pid) {
        chain(sig, si, uc);
        errno = saved;
        return;
    }
    uint32_t g = atomic_load(&stw.gen);
    if (g & 1) {
        volatile char here = 0; /* below the signal frame: every register is above it */
        pid_t tid = sys_gettid();
        uint32_t n = atomic_load(&stw.n);
        for (uint32_t i = 0; i < n; i++) {
            if (atomic_load_explicit(&acks[i].tid, memory_order_relaxed) != tid)
                continue;
            if (atomic_load_explicit(&acks[i].gen, memory_order_relaxed) != g) {
                const char *dead_lo = NULL, *dead_hi = NULL;
                dead_part(uc, &dead_lo, &dead_hi);
                atomic_store_explicit(&acks[i].sp, (const char *)&here, memory_order_relaxed);
                atomic_store_explicit(&acks[i].dead_lo, dead_lo, memory_order_relaxed);
                atomic_store_explicit(&acks[i].dead_hi, dead_hi, memory_order_relaxed);
                atomic_store_explicit(&acks[i].gen, g, memory_order_release);
                atomic_fetch_add(&stw.nacks, 1);
                futex_wake(&stw.nacks);
                while (atomic_load(&stw.gen) == g)
                    futex_wait(&stw.gen, g, CHAN_FOREVER);
            }
            break;
        }
        (void)here;
    }
    errno = saved;
}

static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_err;

/* After fork() the child is another process: our signals come from its pid. */
static void world_atfork_child(void) { stw.pid = getpid(); }

static void install(void)
{
    stw.pid = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stop;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask); /* a stopped thread runs nothing else */
    if (sigaction(CHAN_STOP_SIGNAL, &sa, &stw.prev) != 0)
        install_err = -errno;
    else
        pthread_atfork(NULL, NULL, world_atfork_child);
}

/* Calls fn(tid, arg) for every thread of the process (/proc/self/task). 0, or -errno. */
static int each_thread(void (*fn)(pid_t tid, void *arg), void *arg)
{
    long fd = sys_open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) {
            sys_close(fd);
            return n < 0 ? -errno : 0;
        }
        for (long off = 0; off < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            pid_t tid = 0;
            for (const char *p = d->name; *p >= '0' && *p <= '9'; p++)
                tid = tid * 10 + (*p - '0');
            if (tid > 0)
                fn(tid, arg);
            off += d->reclen;
        }
    }
}

struct listing {
    struct world *w;
    uint32_t gen;
    size_t added; /* threads signalled by this listing */
    int err;
};

/* A thread of the listing: new ones are noted in acks and signalled. */
static void list_one(pid_t tid, void *arg)
{
    struct listing *l = arg;
    uint32_t n = atomic_load(&stw.n);
    for (uint32_t i = 0; i < n; i++)
        if (atomic_load_explicit(&acks[i].tid, memory_order_relaxed) == tid)
            return;
    struct wthread *t = NULL;
    for (size_t i = 0; i < l->w->threads.n; i++)
        if (((struct wthread *)vec_at(&l->w->threads, i))->tid == tid)
            return; /* the caller, or one found before that could not be noted */
    t = vec_push(&l->w->threads);
    if (!t) {
        l->err = -ENOMEM;
        return;
    }
    t->tid = tid;
    if (n == MAX_ACKS) { /* cannot be stopped: runs on, unseen */
        t->running = true;
        return;
    }
    atomic_store_explicit(&acks[n].gen, 0, memory_order_relaxed);
    atomic_store_explicit(&acks[n].sp, NULL, memory_order_relaxed);
    atomic_store_explicit(&acks[n].tid, tid, memory_order_relaxed);
    atomic_store(&stw.n, n + 1);
    if (syscall(SYS_tgkill, stw.pid, tid, CHAN_STOP_SIGNAL) == 0)
        l->added++;
    else
        atomic_store_explicit(&acks[n].tid, 0, memory_order_relaxed); /* gone already */
}

/* What /proc/self/task/TID/syscall says of a thread that has not answered: true when it sleeps
 * in the kernel (in a system call, or stopped), with *sp its user stack pointer; false when it
 * runs, or is gone (*gone). */
static bool asleep_in_kernel(pid_t tid, const char **sp, bool *gone)
{
    char path[64] = "/proc/self/task/";
    char *p = path + strlen(path);
    char digits[16];
    int nd = 0;
    for (pid_t t = tid; t > 0 && nd < 15; t /= 10)
        digits[nd++] = (char)('0' + t % 10);
    while (nd > 0)
        *p++ = digits[--nd];
    memcpy(p, "/syscall", sizeof "/syscall");
    *gone = false;
    long fd = sys_open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *gone = errno == ENOENT || errno == ESRCH;
        return false;
    }
    char buf[256];
    long n = sys_read(fd, buf, sizeof buf - 1);
    sys_close(fd);
    if (n <= 0 || ((buf[0] < '0' || buf[0] > '9') && buf[0] != '-'))
        return false; /* "running" */
    buf[n] = 0;
    /* "nr arg1 .. arg6 sp pc", or "-1 sp pc": the stack pointer is the last but one field. */
    char *f[10];
    int nf = 0;
    for (char *q = buf; *q && nf < 10;) {
        while (*q == ' ' || *q == '\n')
            q++;
        if (!*q)
            break;
        f[nf++] = q;
        while (*q && *q != ' ' && *q != '\n')
            q++;
    }
    if (nf < 3)
        return false;
    uintptr_t v = 0;
    for (const char *q = f[nf - 2] + 2; *q && *q != ' ' && *q != '\n'; q++)
        v = v * 16 + (uintptr_t)(*q <= '9' ? *q - '0' : (*q | 0x20) - 'a' + 10);
    *sp = (const char *)v;
    return true;
}

/* Waits for the answers of the threads signalled, up to the bounds above. */
static void await_answers(struct world *w, uint32_t gen)
{
    int64_t start = chan_now();
    for (;;) {
        uint32_t n = atomic_load(&stw.n), waiting = 0;
        for (uint32_t i = 0; i < n; i++) {
            pid_t tid = atomic_load_explicit(&acks[i].tid, memory_order_relaxed);
            if (tid == 0)
                continue;
            if (atomic_load_explicit(&acks[i].gen, memory_order_acquire) != gen)
                waiting++;
        }
        if (waiting == 0)
            return;
        int64_t now = chan_now();
        if (now - start >= ANSWER_SOON_NS) {
            /* Let be the threads that sleep in the kernel, and at the late bound all of them. */
            bool late = now - start >= ANSWER_LATE_NS;
            uint32_t still = 0;
            for (uint32_t i = 0; i < n; i++) {
                pid_t tid = atomic_load_explicit(&acks[i].tid, memory_order_relaxed);
                if (tid == 0 || atomic_load_explicit(&acks[i].gen, memory_order_acquire) == gen)
                    continue;
                const char *sp = NULL;
                bool gone;
                bool asleep = asleep_in_kernel(tid, &sp, &gone);
                if (!gone && !asleep && !late) {
                    still++;
                    continue;
                }
                atomic_store_explicit(&acks[i].tid, 0, memory_order_relaxed); /* given up */
                for (size_t k = 0; k < w->threads.n; k++) {
                    struct wthread *t = vec_at(&w->threads, k);
                    if (t->tid == tid) {
                        t->sp = gone ? NULL : sp;
                        t->running = !gone && !asleep;
                        if (gone)
                            t->tid = 0;
                    }
                }
            }
            if (still == 0)
                return;
        }
        uint32_t seen = atomic_load(&stw.nacks);
        futex_wait(&stw.nacks, seen, chan_now() + 1000000); /* a millisecond, then look again */
    }
}

int world_stop(struct world *w, const char *self_sp)
{
    pthread_once(&install_once, install);
    if (install_err)
        return install_err;
    w->threads.esz = sizeof(struct wthread);
    w->maps.esz = sizeof(struct wmap);
    w->buf.esz = 1;
    w->pagemap = -1;
    long probe = 1, copy = 0; /* can the process read its own memory with process_vm_readv? */
    w->vm_read = read_self(&copy, (uintptr_t)&probe, sizeof copy) == sizeof copy && copy == 1;
    struct wthread *me = vec_push(&w->threads);
    if (!me)
        return -ENOMEM;
    me->tid = sys_gettid();
    me->self = true;
    me->answered = true;
    me->sp = self_sp;

    atomic_store(&stw.n, 0);
    atomic_store(&stw.nacks, 0);
    uint32_t gen = atomic_fetch_add(&stw.gen, 1) + 1; /* odd: stopping */
    /* List, signal, wait; again until a listing finds nobody new (a thread that was running
     * may have started another before it stopped). */
    for (;;) {
        struct listing l = {.w = w, .gen = gen};
        int e = each_thread(list_one, &l);
        if (!e)
            e = l.err;
        if (e) {
            world_resume(w);
            return e;
        }
        if (l.added == 0)
            break;
        await_answers(w, gen);
    }
    /* What the answers say. */
    uint32_t n = atomic_load(&stw.n);
    for (size_t k = 0; k < w->threads.n; k++) {
        struct wthread *t = vec_at(&w->threads, k);
        if (t->self || t->tid == 0)
            continue;
        for (uint32_t i = 0; i < n; i++) {
            if (atomic_load_explicit(&acks[i].tid, memory_order_relaxed) == t->tid &&
                atomic_load_explicit(&acks[i].gen, memory_order_acquire) == gen) {
                t->answered = true;
                t->running = false;
                t->sp = atomic_load_explicit(&acks[i].sp, memory_order_relaxed);
                t->dead_lo = atomic_load_explicit(&acks[i].dead_lo, memory_order_relaxed);
                t->dead_hi = atomic_load_explicit(&acks[i].dead_hi, memory_order_relaxed);
            }
        }
        if (t->answered)
            w->stopped++;
        else
            w->unseen++;
    }
    return 0;
}

void world_resume(struct world *w)
{
    (void)w;
    uint32_t g = atomic_load(&stw.gen);
    if (g & 1) {
        atomic_store(&stw.gen, g + 1);
        futex((int32_t *)&stw.gen, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT32_MAX, NULL, NULL, 0);
    }
}

/* ---- Mappings -------------------------------------------------------------------------------- */

static uintptr_t hex(const char **p)
{
    uintptr_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uintptr_t)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v = v * 16 + (uintptr_t)((c | 0x20) - 'a' + 10);
        else
            return v;
    }
}

static bool starts(const char *s, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    return (size_t)(end - s) >= n && memcmp(s, prefix, n) == 0;
}

/* One line of /proc/self/maps: "lo-hi perms offset dev inode   path". */
static int parse_map(struct world *w, const char *s, const char *end)
{
    struct wmap m = {0};
    m.lo = hex(&s);
    if (*s++ != '-')
        return 0;
    m.hi = hex(&s);
    if (end - s < 5)
        return 0;
    s++;
    if (s[0] == 'r')
        m.flags |= WM_READ;
    if (s[1] == 'w')
        m.flags |= WM_WRITE;
    if (s[3] == 's')
        m.flags |= WM_SHARED;
    /* Skip perms, offset, dev and inode; the path, if any, follows. */
    for (int field = 0; field < 4 && s < end; field++) {
        while (s < end && *s != ' ')
            s++;
        while (s < end && *s == ' ')
            s++;
    }
    if (s == end || *s == '[')
        m.flags |= WM_ANON;
    if (starts(s, end, "[stack]"))
        m.flags |= WM_STACK;
    else if (starts(s, end, "[heap]"))
        m.flags |= WM_HEAP;
    else if (starts(s, end, "/dev/") && !starts(s, end, "/dev/zero") &&
             !starts(s, end, "/dev/shm/"))
        m.flags |= WM_DEVICE;
    struct wmap *slot = vec_push(&w->maps);
    if (!slot)
        return -ENOMEM;
    *slot = m;
    return 0;
}

int world_read_maps(struct world *w)
{
    struct vec text = {.esz = 1};
    long fd = sys_open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        char *p = vec_room(&text, 65536);
        if (!p) {
            sys_close(fd);
            vec_free(&text);
            return -ENOMEM;
        }
        long n = sys_read(fd, p, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        text.n += (size_t)n;
    }
    sys_close(fd);
    w->maps.n = 0;
    int e = 0;
    for (const char *s = text.p, *end = text.p + text.n; s < end && !e;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            nl = end;
        e = parse_map(w, s, nl);
        s = nl + 1;
    }
    vec_free(&text);
    return e;
}

const struct wmap *world_map_of(const struct world *w, uintptr_t a)
{
    size_t lo = 0, hi = w->maps.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct wmap *m = vec_at(&w->maps, mid);
        if (a < m->lo)
            hi = mid;
        else if (a >= m->hi)
            lo = mid + 1;
        else
            return m;
    }
    return NULL;
}

/* ---- The sweep ------------------------------------------------------------------------------- */

bool world_read(void *dst, const void *src, size_t n)
{
    return read_self(dst, (uintptr_t)src, n) == n;
}

static bool skipped(const struct wskip *skip, uintptr_t a, uintptr_t b)
{
    for (size_t i = 0; skip && i < skip->n; i++) {
        const struct vec *v = skip->vecs[i];
        uintptr_t lo = (uintptr_t)v->p, hi = lo + vec_bytes(v->cap, v->esz);
        if (v->p && a < hi && lo < b)
            return true;
    }
    return false;
}

/* Tests nw words read from at (in place, or copied to words) against set. Not instrumented:
 * read in place they are other threads' stacks and the whole heap, redzones and all. */
#if defined(__clang__) || __GNUC__ >= 8
__attribute__((no_sanitize("address", "thread")))
#endif
static void
scan_words(const uintptr_t *words, size_t nw, uintptr_t at, const struct addrset *set,
           void (*hit)(uintptr_t, uintptr_t, int64_t, void *), void *arg)
{
    uintptr_t lowbits = set->lowbits, min = set->min, span = set->max - set->min;
    for (size_t i = 0; i < nw; i++) {
        uintptr_t v = words[i];
        if ((v & lowbits) || v - min > span)
            continue;
        int64_t idx = addrset_get(set, v);
        if (idx >= 0)
            hit(at + i * sizeof(uintptr_t), v, idx, arg);
    }
}

/* The words of [a, b), read in chunks: in place when every page is known present and every
 * other thread is stopped (nothing can unmap them), else copied (process_vm_readv: a page gone
 * or a guard marker is an error, not a crash). careful: some page may not be readable. */
static void sweep_run(struct world *w, uintptr_t a, uintptr_t b, bool careful,
                      const struct addrset *set, const struct wskip *skip,
                      void (*hit)(uintptr_t, uintptr_t, int64_t, void *), void *arg)
{
    for (uintptr_t p = a; p < b;) {
        size_t n = b - p < READ_CHUNK ? (size_t)(b - p) : READ_CHUNK;
        if (skipped(skip, p, p + n)) { /* our own arrays: page by page around them */
            n = PAGE;
            if (skipped(skip, p, p + n)) {
                p += n;
                continue;
            }
        }
        if (w->unseen == 0 && (!careful || !w->vm_read)) {
            scan_words((const uintptr_t *)p, n / sizeof(uintptr_t), p, set, hit, arg);
            p += n;
            continue;
        }
        size_t got = read_self(w->buf.p, p, n);
        if (got < sizeof(uintptr_t)) { /* unreadable: skip the page */
            p = (p + PAGE) & ~(uintptr_t)(PAGE - 1);
            continue;
        }
        size_t nw = got / sizeof(uintptr_t);
        scan_words((const uintptr_t *)w->buf.p, nw, p, set, hit, arg);
        p += nw * sizeof(uintptr_t);
    }
}

void world_sweep(struct world *w, uintptr_t lo, uintptr_t hi, const struct addrset *set,
                 const struct wskip *skip,
                 void (*hit)(uintptr_t addr, uintptr_t value, int64_t idx, void *arg), void *arg)
{
    if (!set->keys || set->max < set->min || hi - lo > SWEEP_MAX_MAP)
        return;
    if (!w->buf.p && !vec_room(&w->buf, READ_CHUNK))
        return;
    if (w->pagemap < 0)
        w->pagemap = (int)sys_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    lo &= ~(uintptr_t)(sizeof(uintptr_t) - 1);
    if (w->pagemap < 0) { /* no pagemap: every page of the range, copied where we can */
        sweep_run(w, lo, hi, true, set, skip, hit, arg);
        return;
    }
    /* Runs of pages present (bit 63 of their pagemap entries), read in place, and of pages
     * swapped out (bit 62), copied: a page never touched reads as zeros and holds nothing. A
     * guard marker (MADV_GUARD_INSTALL: libchan-mpg's stacks are each above one, within the
     * mapping of their chunk) faults on any access; pagemap shows it with bit 62 and bit 58
     * (PM_GUARD_REGION, Linux 6.15). It is skipped, and a page only swapped is copied, never
     * read in place, in case a kernel shows its markers without bit 58. */
    uint64_t ent[512];
    uintptr_t run = 0; /* start of the current run, or 0 */
    int kind = 0;      /* of the current run: 1 present, 2 swapped out */
    for (uintptr_t p = lo & ~(uintptr_t)(PAGE - 1); p < hi;) {
        size_t npages = (size_t)((hi - p + PAGE - 1) / PAGE);
        if (npages > 512)
            npages = 512;
        long got = sys_pread(w->pagemap, ent, npages * sizeof ent[0], (off_t)(p / PAGE * 8));
        size_t k = got > 0 ? (size_t)got / sizeof ent[0] : 0;
        if (k == 0) { /* cannot tell: copy them all */
            for (size_t i = 0; i < npages; i++)
                ent[i] = 1ull << 62;
            k = npages;
        }
        for (size_t i = 0; i < k; i++, p += PAGE) {
            int pk = ent[i] >> 63 ? 1 : ent[i] >> 58 & 1 ? 0 : ent[i] >> 62 & 1 ? 2 : 0;
            if (pk == kind)
                continue;
            if (run)
                sweep_run(w, run, p, kind == 2, set, skip, hit, arg);
            run = pk ? (p < lo ? lo : p) : 0;
            kind = pk;
        }
    }
    if (run)
        sweep_run(w, run, hi, kind == 2, set, skip, hit, arg);
}

void world_free(struct world *w)
{
    if (w->pagemap >= 0)
        sys_close(w->pagemap);
    w->pagemap = -1;
    vec_free(&w->threads);
    vec_free(&w->maps);
    vec_free(&w->buf);
}
