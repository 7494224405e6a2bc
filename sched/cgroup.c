/* SPDX-License-Identifier: MIT */
/*
 * cgroup.c - the CPU quota of the process's cgroup, which bounds nprocs 0 as it bounds Go 1.25's
 * default GOMAXPROCS (runtime/cgroup_linux.go, internal/runtime/cgroup): a container given 4
 * CPUs' time on a 64-CPU machine runs 4 Ps, not 64 whose Ms the kernel would throttle in turn.
 *
 * Go's rule: the quota over the period, rounded up, at least 2 (a container of half a CPU
 * still gets 2 Ps: one G may block the other out of a core it is allowed in bursts), and
 * never more than the CPUs of the affinity mask (proc.c takes the smaller). Read as Go reads
 * it, once, at chan_mpg_start (Go 1.25 also looks again now and then; here a restart does):
 *
 *  1. /proc/self/cgroup: "hierarchy-ID:controllers:path" lines. A cgroup v1 hierarchy whose
 *     controllers include "cpu" is the one; else the v2 line ("0::path").
 *  2. /proc/self/mountinfo: the mount of that hierarchy (type "cgroup" with "cpu" among its
 *     super options, or type "cgroup2"), its mount point unescaped (the kernel writes a space
 *     as \040). Unlike Go, the path of step 1 loses the mount's root first when the mount
 *     shows only a subtree (a container without its own cgroup namespace: root and path are
 *     both /docker/<id>); with a namespace, or on the host, the root is "/" and both agree.
 *  3. v2: cpu.max, "<quota> <period>\n" in microseconds, quota "max" for none. v1:
 *     cpu.cfs_quota_us (-1 for none) and cpu.cfs_period_us.
 *
 * Only the process's own cgroup is read, not its parents' (Go's choice too: container runtimes
 * put the limit on the container's cgroup). A file missing, unreadable or malformed means no
 * quota: the affinity mask alone decides, as before.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

const char *cgroup_root = "";

#define CG_PATH_MAX 8192

/* root + a + b + c into out (CG_PATH_MAX bytes): false when it does not fit. */
static bool path_join(char *out, const char *a, const char *b, const char *c)
{
    int n = snprintf(out, CG_PATH_MAX, "%s%s%s%s", cgroup_root, a, b, c);
    return n > 0 && n < CG_PATH_MAX;
}

/* Whether the comma-separated list s (up to end) has the item "cpu" (not "cpuacct", "cpuset"). */
static bool has_cpu(const char *s, const char *end)
{
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        if (e - s == 3 && memcmp(s, "cpu", 3) == 0)
            return true;
        s = e + 1;
    }
    return false;
}

/* Step 1: the cgroup's path in out (CG_PATH_MAX bytes), and its version: 1, 2, or 0 (none). */
static int cgroup_path(char *out)
{
    char name[CG_PATH_MAX];
    if (!path_join(name, "/proc/self/cgroup", "", ""))
        return 0;
    FILE *f = fopen(name, "re");
    if (!f)
        return 0;
    int version = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (version != 1 && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || strlen(c2 + 1) >= CG_PATH_MAX || c2[1] != '/')
            continue;
        bool v2 = c1 - line == 1 && line[0] == '0';
        if (v2 && version == 0) {
            strcpy(out, c2 + 1);
            version = 2; /* a v1 "cpu" hierarchy further down takes precedence, as in Go */
        } else if (!v2 && has_cpu(c1 + 1, c2)) {
            strcpy(out, c2 + 1);
            version = 1;
        }
    }
    free(line);
    fclose(f);
    return version;
}

/* In place: mountinfo's octal escapes (\040 for a space, \011, \012, \134) back to bytes. false
 * for a broken escape. */
static bool unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (*r != '\\') {
            *w++ = *r++;
            continue;
        }
        int v = 0;
        for (int i = 1; i <= 3; i++) {
            if (r[i] < '0' || r[i] > '7')
                return false;
            v = v * 8 + (r[i] - '0');
        }
        *w++ = (char)v;
        r += 4;
    }
    *w = '\0';
    return true;
}

/* Step 2: the mount point of the cgroup hierarchy of that version in mnt, and the root of the
 * cgroup tree that mount shows in root (both CG_PATH_MAX bytes). false: none found. */
static bool cgroup_mount(int version, char *mnt, char *root)
{
    char name[CG_PATH_MAX];
    if (!path_join(name, "/proc/self/mountinfo", "", ""))
        return false;
    FILE *f = fopen(name, "re");
    if (!f)
        return false;
    bool found = false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (!found && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        /* "id parent major:minor root mount-point options [optional...] - type source super" */
        char *field[5], *save = NULL, *tok;
        int k = 0;
        field[0] = strtok_r(line, " ", &save);
        while (field[k] && ++k < 5)
            field[k] = strtok_r(NULL, " ", &save);
        if (k < 5)
            continue;
        while ((tok = strtok_r(NULL, " ", &save)) && strcmp(tok, "-") != 0) {
        }
        char *type = tok ? strtok_r(NULL, " ", &save) : NULL;
        char *source = type ? strtok_r(NULL, " ", &save) : NULL;
        char *super = source ? strtok_r(NULL, " ", &save) : NULL;
        if (!type)
            continue;
        bool match = version == 2 ? strcmp(type, "cgroup2") == 0
                                  : strcmp(type, "cgroup") == 0 && super &&
                                        has_cpu(super, super + strlen(super));
        if (match && strlen(field[3]) < CG_PATH_MAX && strlen(field[4]) < CG_PATH_MAX) {
            strcpy(root, field[3]);
            strcpy(mnt, field[4]);
            found = unescape(root) && unescape(mnt);
        }
    }
    free(line);
    fclose(f);
    return found;
}

/* The first line of a small file, without its newline, in buf (n bytes). false: none. */
static bool read_line(const char *name, char *buf, size_t n)
{
    FILE *f = fopen(name, "re");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    char *nl = ok ? strchr(buf, '\n') : NULL;
    if (!nl)
        return false; /* Go's parser too asks for the newline: a cut line is malformed */
    *nl = '\0';
    return true;
}

/* A decimal number that is the whole of s (an optional minus sign, then digits). */
static bool parse_num(const char *s, long long *v)
{
    char *end;
    if (!*s || *s == ' ')
        return false;
    *v = strtoll(s, &end, 10);
    return *end == '\0';
}

int cgroup_cpu_limit(void)
{
    char path[CG_PATH_MAX], mnt[CG_PATH_MAX], root[CG_PATH_MAX], name[CG_PATH_MAX];
    int version = cgroup_path(path);
    if (!version || !cgroup_mount(version, mnt, root))
        return 0;
    /* The mount shows the tree from its root down: a path below that root is read below the
     * mount point. */
    const char *rel = path;
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(path, root, rl) == 0 &&
        (path[rl] == '/' || path[rl] == '\0'))
        rel = path + rl;
    long long quota, period;
    char buf[128];
    if (version == 2) {
        if (!path_join(name, mnt, rel, "/cpu.max") || !read_line(name, buf, sizeof buf))
            return 0;
        char *sp = strchr(buf, ' ');
        if (!sp)
            return 0;
        *sp = '\0';
        if (strcmp(buf, "max") == 0 || !parse_num(buf, &quota) || !parse_num(sp + 1, &period))
            return 0;
    } else {
        if (!path_join(name, mnt, rel, "/cpu.cfs_quota_us") || !read_line(name, buf, sizeof buf) ||
            !parse_num(buf, &quota) || quota < 0)
            return 0; /* -1: no quota */
        if (!path_join(name, mnt, rel, "/cpu.cfs_period_us") || !read_line(name, buf, sizeof buf) ||
            !parse_num(buf, &period))
            return 0;
    }
    /* The kernel bounds both (a period of at most 1 s, a quota of at most 2^44 us): no
     * overflow here. Zero or negative values are no quota the kernel would have written. */
    if (quota <= 0 || period <= 0 || quota > (1LL << 50) || period > (1LL << 50))
        return 0;
    long long cpus = (quota + period - 1) / period; /* Go: ceil(quota / period) */
    if (cpus < 2)
        cpus = 2; /* Go's floor */
    return cpus > NPROCS_MAX ? NPROCS_MAX : (int)cpus;
}
