#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libchan's per-change benchmark: several library revisions side by side, in the same run.

    python3 bench/history.py            (make bench-history runs it; see bench/bench.mk, bench/BENCH.md)

Environment (every variable optional):
    REVS       git revisions, oldest first, space-separated (default: DEFAULT_REVS below)
    SHAPES     shape:cap pairs, space-separated (default: DEFAULT_SHAPES below); a bare shape
               stands for its capacities in the default list (cap 0 if it has none there)
    ROUNDS     rounds (default 5)
    N          messages per run, at most (default 1000000)
    BUDGET_MS  time cap per run (default 300; 0: always N)
    TIMEOUT    seconds per process (default 300)
    CC         the C compiler for the harnesses (default cc)
    SYSTEM     libchan (default: the workers are pthreads) or libchan-mpg (the workers are Gs of
               the revision's scheduler: its libchan_mpg.a is built too, the harness with
               -DBENCH_MPG)
    MODE       plain (default) or counters: the revision's library is built with MODE=counters
               and the harness with -DCHAN_COUNTERS, so each run also prints seam.h's event
               counters per message (a revision without them does not build: n/a)

For each revision it exports that revision's tree (git archive) into build/history/HASH, builds
only its library there (make lib MODE=plain), and links the *current* harness bench/bench.c
against that tree's build/plain/libchan.a and headers, into build/history/bench-HASH: the
harness is the same for every revision, only the library differs. A revision that cannot be
exported, built or linked is reported and shows n/a; the others go on.

Then it runs interleaved, so that other work on the machine falls on every revision alike: for
each round, for each (shape, cap), each revision runs one process with one timed run
(bench-HASH SHAPE CAP N 1 BUDGET_MS). The order of the revisions rotates by one each round, so
that no revision always runs first (or right after another one).

Output, under build/history/: table.md (header and the Markdown table: per revision the median
ns/msg [min-max] over the rounds; per consecutive pair the ratio later/earlier of the medians,
below 1.0 = faster; and last/first; then "per message": the medians of the process's CPU time,
its voluntary and involuntary context switches and, MODE=counters, every event counter that is
not zero), results.csv (one line per shape and capacity), results.txt (the header, the tables
and every raw line the harnesses printed), build.log (the builds). The tables are also printed
on stdout.
"""
import csv
import datetime
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (ROOT, cc_version, fields, fmt_ratio, last_line, loadavg,  # noqa: E402
                      log, md_table, ratio, run_proc, spread, stats, words)

OUT = os.path.join(ROOT, "build", "history")

# Oldest first: before the lock-free ring; the ring; the spin policy fix; end of a session;
# select's lock-free pass 0; pass 0 taking a SLOW ring's lock alone; the adaptive spin budget;
# the hchan layout; now.
DEFAULT_REVS = "2299ba4^ 2299ba4 6f17953 17a6a66 69e69c0 0c1043f 6ea76cc c040dad HEAD"
DEFAULT_SHAPES = ("seq:1024 spsc:0 spsc:1 spsc:1024 mpsc:1 mpsc:1024 mpmc:0 mpmc:1 mpmc:1024 "
                  "select_rx:1 select_rx:1024 select_both:1 select_both:1024 pingpong:0 pool:0 "
                  "size1024:1024")

LINE = re.compile(r"^(bench|rss|info) (.*)$")
# Per message, beside the time: the process's CPU ns and context switches (every harness), and
# the event counters c.NAME of a MODE=counters build (seam.h).
PER_MSG = ("cpu", "vcsw", "ivcsw")


def env_str(name, default):
    v = os.environ.get(name, "").strip()
    return v if v else default


def env_int(name, default):
    v = env_str(name, "")
    if not v:
        return default
    try:
        return int(v)
    except ValueError:
        sys.exit("history.py: %s=%r is not an integer" % (name, v))


def git(*args):
    r = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def parse_shapes(text):
    defaults = []
    for w in DEFAULT_SHAPES.split():
        s, c = w.split(":")
        defaults.append((s, int(c)))
    out = []
    for w in words(text):
        if ":" in w:
            s, c = w.split(":", 1)
            try:
                out.append((s, int(c)))
            except ValueError:
                sys.exit("history.py: SHAPES: %r: the capacity is not an integer" % w)
        else:
            caps = [c for s, c in defaults if s == w] or [0]
            out.extend((w, c) for c in caps)
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


# ---- Building -----------------------------------------------------------------------------------

def run_logged(cmd, buildlog, **kw):
    """Runs cmd, appending its command line and output to buildlog; returns (ok, last line)."""
    buildlog.write("$ %s\n" % (cmd if isinstance(cmd, str) else " ".join(cmd)))
    buildlog.flush()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    buildlog.write(r.stdout)
    buildlog.write("(exit %d)\n\n" % r.returncode)
    buildlog.flush()
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    return r.returncode == 0, (lines[-1] if lines else "exit %d" % r.returncode)


def build(rev, buildlog, cc, system, mode):
    """Exports rev's tree, builds its library, links the current harness. Returns (exe, error)."""
    tree = os.path.join(OUT, rev["label"])
    exe = os.path.join(OUT, "bench-" + rev["label"] + ("-mpg" if system == "libchan-mpg" else "") +
                       ("-counters" if mode == "counters" else ""))
    shutil.rmtree(tree, ignore_errors=True)
    if os.path.exists(exe):
        os.remove(exe)
    os.makedirs(tree)
    # git archive of the commit: the committed tree of that revision, nothing of the work tree.
    ok, last = run_logged("git -C '%s' archive %s | tar -x -C '%s'" % (ROOT, rev["hash"], tree),
                          buildlog, shell=True)
    if not ok:
        return None, "export failed: " + last
    # The sub-make must not see this make's command line (REVS, SHAPES, N, ...) or jobserver.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                                                            "MAKEOVERRIDES")}
    ok, last = run_logged(["make", "--no-print-directory", "-C", tree, "lib", "MODE=" + mode],
                          buildlog, env=env)
    libs = [os.path.join(tree, "build", mode, "libchan.a")]
    flags = []
    if system == "libchan-mpg":
        libs.insert(0, os.path.join(tree, "build", mode, "libchan_mpg.a"))
        flags.append("-DBENCH_MPG")
    if mode == "counters":
        flags.append("-DCHAN_COUNTERS")
    if not ok or not all(os.path.exists(l) for l in libs):
        return None, "make lib MODE=%s failed: %s" % (mode, last)
    ok, last = run_logged([cc, "-std=c11", "-O2", "-g", "-pthread", "-I", tree] + flags +
                          ["-o", exe, os.path.join(ROOT, "bench", "bench.c")] + libs +
                          ["-lhwloc"], buildlog)
    if not ok:
        return None, "the current bench/bench.c does not build against this chan.h: " + last
    return exe, None


# ---- Running ------------------------------------------------------------------------------------

def run_one(exe, shape, cap, n, budget, timeout, raw, label):
    cmd = [exe, shape, str(cap), str(n), "1", str(budget)]
    tag = "# %s %s cap=%d:" % (label, shape, cap)
    r, why = run_proc(cmd, timeout)
    if why:
        raw.append("%s %s" % (tag, why))
        return None, why
    raw.append(tag)
    raw.extend(r.stdout.splitlines())
    if r.returncode != 0:
        err = last_line(r.stderr, "exit %d" % r.returncode)
        raw.append("%s exit %d: %s" % (tag, r.returncode, err))
        return None, err
    values = []
    for line in r.stdout.splitlines():
        m = LINE.match(line.strip())
        if not m or m.group(1) != "bench":
            continue
        kv = fields(m.group(2))
        if kv.get("shape") == shape and kv.get("cap") == str(cap) and "value" in kv:
            extra = {}
            for k in kv:
                if k in PER_MSG or k.startswith("c."):
                    try:
                        extra[k] = float(kv[k])
                    except ValueError:
                        pass
            values.append((float(kv["value"]), extra))
    if not values:
        return None, "no bench line"
    return values[-1], None


# ---- Tables -------------------------------------------------------------------------------------

def fmt(v):
    if v is None:
        return "n/a"
    return "%.0f" % v if v >= 100 else "%.1f" % v


def cell(st):
    return spread(st, fmt)


def ratio_pairs(revs):
    pairs = [(revs[i + 1], revs[i]) for i in range(len(revs) - 1)]
    if len(revs) > 2:
        pairs.append((revs[-1], revs[0]))
    return pairs


def main():
    t_start = time.time()
    revs_in = env_str("REVS", DEFAULT_REVS).split()
    shapes = parse_shapes(env_str("SHAPES", DEFAULT_SHAPES))
    rounds = env_int("ROUNDS", 5)
    n = env_int("N", 1000000)
    budget = env_int("BUDGET_MS", 300)
    timeout = env_int("TIMEOUT", 300)
    cc = env_str("CC", "cc")
    system = env_str("SYSTEM", "libchan")
    mode = env_str("MODE", "plain")
    if system not in ("libchan", "libchan-mpg") or mode not in ("plain", "counters"):
        sys.exit("history.py: SYSTEM must be libchan or libchan-mpg, MODE plain or counters")
    if not revs_in or not shapes or rounds < 1 or n < 1 or budget < 0:
        sys.exit("history.py: nothing to do (REVS, SHAPES, ROUNDS, N or BUDGET_MS)")

    os.makedirs(OUT, exist_ok=True)
    load_start = " ".join(loadavg())
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")

    # Resolve every revision first: a name that is not a commit stops here, before any work.
    revs = []
    for name in revs_in:
        full = git("rev-parse", "--verify", "--quiet", name + "^{commit}")
        if not full:
            sys.exit("history.py: %r is not a commit of %s" % (name, ROOT))
        short = git("rev-parse", "--short", full)
        subject = git("log", "--format=%s", "-1", full) or ""
        if any(r["hash"] == full for r in revs):
            log("history.py: %s (%s) given twice; measured once" % (name, short))
            continue
        revs.append({"name": name, "hash": full, "label": short, "subject": subject})

    # Build.
    with open(os.path.join(OUT, "build.log"), "w") as buildlog:
        for rev in revs:
            log("== %s (%s): export, make lib MODE=%s, link bench/bench.c (%s)" %
                (rev["label"], rev["name"], mode, system))
            rev["exe"], rev["error"] = build(rev, buildlog, cc, system, mode)
            if rev["error"]:
                log("history.py: %s (%s): %s (details in build/history/build.log); going on" %
                    (rev["label"], rev["name"], rev["error"]))
    live = [r for r in revs if r["exe"]]
    if not live:
        sys.exit("history.py: no revision built; see build/history/build.log")

    # Run: rounds, then shapes, then revisions (rotated by one each round).
    values = {(r["label"], s, c): [] for r in revs for s, c in shapes}
    extras = {(r["label"], s, c): [] for r in revs for s, c in shapes}
    errors = {}
    raw = []
    total = rounds * len(shapes) * len(live)
    done = 0
    for rnd in range(rounds):
        order = live[rnd % len(live):] + live[:rnd % len(live)]
        for shape, cap in shapes:
            for rev in order:
                done += 1
                v, err = run_one(rev["exe"], shape, cap, n, budget, timeout, raw, rev["label"])
                if err:
                    errors.setdefault((rev["label"], shape, cap), err)
                    log("[%d/%d] round %d %s cap=%d %s: FAILED: %s" %
                        (done, total, rnd + 1, shape, cap, rev["label"], err))
                else:
                    values[(rev["label"], shape, cap)].append(v[0])
                    extras[(rev["label"], shape, cap)].append(v[1])
                    log("[%d/%d] round %d %s cap=%d %s: %s ns/msg" %
                        (done, total, rnd + 1, shape, cap, rev["label"], fmt(v[0])))

    load_end = " ".join(loadavg())
    elapsed = time.time() - t_start

    # Tables.
    labels = [r["label"] for r in revs]
    pairs = ratio_pairs(labels)
    head = ["shape", "cap"] + ["%s ns/msg" % l for l in labels] + \
        ["%s/%s" % (a, b) for a, b in pairs[:len(labels) - 1]] + \
        (["last/first (%s/%s)" % pairs[-1]] if len(labels) > 2 else [])
    rows, csv_rows = [], []
    for shape, cap in shapes:
        st = {l: stats(values[(l, shape, cap)]) for l in labels}
        rs = [ratio(st[a], st[b]) for a, b in pairs]
        rows.append([shape, str(cap)] + [cell(st[l]) for l in labels] + [fmt_ratio(r) for r in rs])
        line = [shape, cap]
        for l in labels:
            s = st[l]
            line += ["%.2f" % s["median"], "%.2f" % s["min"], "%.2f" % s["max"], s["runs"]] if s \
                else ["", "", "", 0]
        line += ["%.4f" % r if r is not None else "" for r in rs]
        csv_rows.append(line)

    # Per message: the median of each extra field over the rounds, per revision; a counter that
    # stayed zero for every revision is left out.
    crows = []
    for shape, cap in shapes:
        keys = []
        for l in labels:
            for e in extras[(l, shape, cap)]:
                keys += [k for k in e if k not in keys]
        keys = [k for k in PER_MSG if k in keys] + sorted(k for k in keys if k not in PER_MSG)
        for k in keys:
            meds = []
            for l in labels:
                xs = [e[k] for e in extras[(l, shape, cap)] if k in e]
                meds.append(statistics.median(xs) if xs else None)
            if all(not m for m in meds) and k not in PER_MSG:
                continue
            crows.append([shape, str(cap), k] +
                         ["n/a" if m is None else ("%.0f" % m if k == "cpu" else "%.4f" % m)
                          for m in meds])

    header = ["# libchan per-change benchmark (bench/history.py)", "",
              "- date: %s; host %s, %d CPUs; %s" % (date, socket.gethostname(), os.cpu_count() or 0,
                                                  cc_version(cc)),
              "- load average (1, 5, 15 min): %s at start, %s at end (the end counts this "
              "run's own threads)" % (load_start, load_end),
              "- ROUNDS=%d N=%d BUDGET_MS=%d: one process and one timed run per revision, shape "
              "and round; rounds outermost, the revisions rotating within each (shape, cap)" %
              (rounds, n, budget),
              "- harness: the current bench/bench.c (HEAD %s%s), linked against each revision's "
              "build/%s/%slibchan.a (make lib MODE=%s); system %s" %
              (git("rev-parse", "--short", "HEAD") or "?",
               ", modified in the work tree" if git("status", "--porcelain", "--",
                                                     "bench/bench.c", "bench/benchutil.h") else "",
               mode, "libchan_mpg.a and " if system == "libchan-mpg" else "", mode, system),
              "- took %d min %02d s" % (elapsed // 60, elapsed % 60)]
    if os.environ.get("PLACE"):
        header.append("- PLACE=%s" % os.environ["PLACE"])
    header += ["", "Revisions, oldest first:", ""]
    for r in revs:
        note = "" if r["exe"] else " — **not measured: %s**" % r["error"]
        header.append("- `%s` (%s): %s%s" % (r["label"], r["name"], r["subject"], note))
    header += ["", "Cells: median ns/msg [min-max] over the rounds. Ratios: later/earlier "
               "median (below 1.0 = faster).", "", ""]
    failed = sorted(errors.items())
    footer = []
    if failed:
        footer = ["", "Failed runs (first error of each):", ""] + \
            ["- %s %s cap=%d: %s" % (l, s, c, e) for (l, s, c), e in failed]
    per_msg = ""
    if crows:
        per_msg = ("\nPer message, medians over the rounds: cpu = the process's CPU ns, vcsw and "
                   "ivcsw = its voluntary and involuntary context switches%s.\n\n" %
                   ("; c.NAME = seam.h's event counters (MODE=counters)" if mode == "counters"
                    else "") +
                   md_table(["shape", "cap", "per message"] + labels, crows, 1) + "\n")
    table = "\n".join(header) + md_table(head, rows, 1) + "\n" + per_msg + "\n".join(footer) + \
        ("\n" if footer else "")

    with open(os.path.join(OUT, "table.md"), "w") as f:
        f.write(table)
    with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["shape", "cap"] +
                   [k for l in labels for k in ("%s_median" % l, "%s_min" % l, "%s_max" % l,
                                                "%s_runs" % l)] +
                   ["%s_over_%s" % (a, b) for a, b in pairs])
        w.writerows(csv_rows)
    with open(os.path.join(OUT, "results.txt"), "w") as f:
        f.write(table + "\n# raw lines\n" + "\n".join(raw) + "\n")
    print(table, end="")
    log("history.py: wrote build/history/table.md, results.csv, results.txt (%d min %02d s)" %
        (elapsed // 60, elapsed % 60))
    # A revision that did not build is in the table and the log, not in the exit status.
    return 0


if __name__ == "__main__":
    sys.exit(main())
