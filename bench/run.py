#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libchan's benchmark driver: libchan (on pthreads and on Gs of its M:N scheduler, sched/), Go
and crossbeam-channel on the same shapes, one table.

    python3 bench/run.py [--libchan PATH] [--libchan-mpg PATH] [--out DIR]   (make bench runs it)
    python3 bench/run.py --update-md [FILE]              put the last run's table into bench/BENCH.md
                                                          (or FILE)

Environment: N (messages per run, default 1000000), PLACE (none|spread|compact), RUNS (>= 5 for
the table; default 5), BUDGET_MS (per run, default 400; 0: always N), SHAPES and SYSTEMS (space-
or comma-separated filters), COLD_N (messages per run of the cold-start table, default 20000; 0:
no cold table), CARGO, GO, TIMEOUT (seconds per process, default 600).

The two C harnesses are built by make (build/plain/bench/bench: system libchan, workers are
pthreads; build/plain/bench/bench-mpg: system libchan-mpg, titled libchan+sched, workers are Gs).
It builds the peers itself (Go into DIR/bench-go, crossbeam with cargo into DIR/cargo-target):
a program that cannot be built or run shows n/a, and the harness goes on. For each (shape,
capacity) the systems take turns, RUNS rounds of one process each (it warms up, calibrates and
times one run), so that other work on the machine falls on every system alike; each process
reports its own peak RSS (VmHWM). The goroutines shape's "capacity" is the number of Gs (no
calibration: each process times one cold run), and its processes also report the memory per
parked G, which gets a table of its own; crossbeam does not run it. Each round also runs every
system once cold on the other shapes: a fresh process with BENCH_COLD=1 (no warm-up, no
calibration) and three runs of COLD_N messages, the first of them its first channel work; the
cold table gives that first run and its ratio to the two after it in the same process. Output:
the table on stdout, DIR/results.csv, DIR/table.md, DIR/results.txt (header, table and every
raw line), DIR/chart.png (gnuplot).
"""
import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (ROOT, build_go, cc_version, fields, fmt_ratio, last_line, log,  # noqa: E402
                      loadavg, machine, md_table, ratio, run_proc, sh, spread, stats,
                      text_table, update_md, words)

SYSTEMS = ["libchan", "libchan-mpg", "go", "crossbeam"]
TITLES = {"libchan": "libchan", "libchan-mpg": "libchan+sched", "go": "Go", "crossbeam": "crossbeam"}
# The ratio columns (table and CSV): (system, peer).
RATIOS = [("libchan", "go"), ("libchan", "crossbeam"), ("libchan-mpg", "go")]
CHART_COLORS = {"libchan": "#1f77b4", "libchan-mpg": "#9467bd", "go": "#2ca02c",
                "crossbeam": "#d62728"}

# (shape, capacities): the order of the table. bench.c, bench/go and bench/rust know them all.
SHAPES = [
    ("seq", [1, 1024]),
    ("spsc", [0, 1, 1024]),
    ("mpsc", [0, 1, 1024]),
    ("mpmc", [0, 1, 1024]),
    ("select_rx", [0, 1, 1024]),
    ("select_both", [0, 1, 1024]),
    ("pingpong", [0]),
    ("pool", [0]),
    ("size64", [1024]),
    ("size1024", [1024]),
    ("idle_cpu", [0]),
    ("goroutines", [10000, 100000, 1000000]),
]
# Shapes only some systems run (the others show "-"): goroutines measures Gs, goroutines and, for
# reference, threads (the pthread harness, up to 10,000); crossbeam has no tasks of its own.
SHAPE_SYSTEMS = {"goroutines": ["libchan", "libchan-mpg", "go"]}
# The unit of each shape's figures: goroutines is per G (spawn, park, wake and exit; its "cap" is
# the number of Gs), idle_cpu a share of a core, every other shape per message.
UNITS = {"idle_cpu": "%cpu", "goroutines": "ns/G"}


# ---- Building the peers ------------------------------------------------------------------------

def build_go_peer(out):
    return build_go(os.path.join(ROOT, "bench", "go"), os.path.join(out, "bench-go"), out, 600)


def build_rust(out):
    cargo = os.environ.get("CARGO") or ("/usr/bin/cargo" if os.path.exists("/usr/bin/cargo")
                                        else shutil.which("cargo"))
    if not cargo:
        return None, "cargo not found"
    target = os.path.join(out, "cargo-target")
    env = dict(os.environ, CARGO_TARGET_DIR=target, CARGO_NET_OFFLINE="true")
    try:
        # `cargo build --release` is what `cargo run --release` does first; the driver then runs
        # the binary itself so that cargo's own process is neither timed nor measured.
        r = subprocess.run([cargo, "build", "--release", "--offline"],
                           cwd=os.path.join(ROOT, "bench", "rust"), env=env,
                           capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "cargo build: %s" % e
    if r.returncode != 0:
        return None, "cargo build failed: " + last_line(r.stderr, "?")
    exe = os.path.join(target, "release", "bench-crossbeam")
    rustc = sh([cargo, "--version"]) or "cargo ?"
    rustc_dir = os.path.dirname(cargo)
    rv = sh([os.path.join(rustc_dir, "rustc"), "--version"]) or sh(["rustc", "--version"]) or "rustc ?"
    cb = "?"
    try:
        lock = open(os.path.join(ROOT, "bench", "rust", "Cargo.lock")).read()
        m = re.search(r'name = "crossbeam-channel"\nversion = "([^"]+)"', lock)
        cb = m.group(1) if m else "?"
    except OSError:
        pass
    return exe, "crossbeam-channel %s (%s, %s)" % (cb, rv, rustc)


# ---- Placement: the CPU sets of senders and receivers, as bench.c computes them with hwloc ------

def cpus_of(spec):
    return sh(["hwloc-calc", "--po", "--intersect", "pu", spec])


def placement(place):
    if place == "none":
        return None, None
    ncores = sh(["hwloc-calc", "--number-of", "core", "machine:0"])
    kind = "core"
    if not ncores or int(ncores) == 0:
        kind, ncores = "pu", sh(["hwloc-calc", "--number-of", "pu", "machine:0"])
    n = int(ncores or 1)
    if place == "compact" or n == 1:
        s = cpus_of("%s:0" % kind)
        return s, s
    half = n // 2
    return cpus_of("%s:0-%d" % (kind, half - 1)), cpus_of("%s:%d-%d" % (kind, half, n - 1))


def cpu_list(s):
    out = set()
    for part in words(s):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


# ---- Running ---------------------------------------------------------------------------------------

LINE = re.compile(r"^(bench|rss|info) (.*)$")


def parse(text):
    runs, rss, info = [], None, {}
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        kv = fields(m.group(2))
        if m.group(1) == "bench":
            runs.append((int(kv["n"]), float(kv["value"]), kv.get("unit", "ns/msg"),
                         float(kv.get("cpu", "nan")), float(kv.get("vcsw", "nan")),
                         float(kv["bytes_per_g"]) if "bytes_per_g" in kv else None))
        elif m.group(1) == "rss":
            rss = int(kv["maxrss_kib"])
        else:
            info.update(kv)
    return runs, rss, info


def run_one(system, exe, shape, cap, args, env, affinity, timeout, raw):
    """One process: (runs, rss, info) parsed from its lines, and None; or None and the error."""
    cmd = [exe, shape, str(cap)] + args
    pre = (lambda: os.sched_setaffinity(0, affinity)) if affinity else None
    r, why = run_proc(cmd, timeout, env=env, preexec_fn=pre)
    if why:
        raw.append("# %s %s cap=%d: %s" % (system, shape, cap, why))
        return None, why
    raw.extend(r.stdout.splitlines())
    if r.returncode != 0:
        err = last_line(r.stderr, "exit %d" % r.returncode)
        raw.append("# %s %s cap=%d: exit %d: %s" % (system, shape, cap, r.returncode, err))
        return None, "exit %d: %s" % (r.returncode, err)
    return parse(r.stdout), None


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit == "%cpu":
        return "%.3f%%" % v
    return "%.0f" % v if v >= 100 else "%.1f" % v


def cell(st, unit, system=None, shape=None):
    if not runs_shape(system, shape):
        return "-"
    return spread(st, lambda v: fmt(v, unit))


def runs_shape(system, shape):
    """Whether a system runs a shape at all (a "-" cell when not, rather than n/a)."""
    return system is None or system in SHAPE_SYSTEMS.get(shape, SYSTEMS)


def table_rows(rows):
    head = ["shape", "cap"] + ["%s ns/msg" % TITLES[s] for s in SYSTEMS] + \
        ["%s/%s" % (TITLES[a], TITLES[b]) for a, b in RATIOS]
    body = []
    for row in rows:
        u = row["unit"]
        # idle_cpu: libchan's figure is one thread's, the others' their whole process's: no ratio
        ratios = ["-"] * len(RATIOS) if u == "%cpu" else [
            fmt_ratio(ratio(row["stats"].get(a), row["stats"].get(b)))
            if runs_shape(a, row["shape"]) and runs_shape(b, row["shape"]) else "-"
            for a, b in RATIOS]
        body.append([row["shape"], str(row["cap"])] +
                    [cell(row["stats"].get(s), u, s, row["shape"]) for s in SYSTEMS] + ratios)
    return head, body


def cost_rows(rows):
    """Where the time goes: the process's CPU time and voluntary context switches per message
    (medians over the runs). CPU well above the wall time means spinning on both CPUs; a context
    switch per message means a thread went to sleep (futex or sched_yield) for every hand-off."""
    head = ["shape", "cap"] + ["%s CPU ns/msg" % TITLES[s] for s in SYSTEMS] + \
        ["%s sleeps/msg" % TITLES[s] for s in SYSTEMS]
    body = []
    for row in rows:
        if row["unit"] == "%cpu":
            continue
        st = row["stats"]
        na = lambda s: "n/a" if runs_shape(s, row["shape"]) else "-"
        body.append([row["shape"], str(row["cap"])] +
                    [fmt(st[s]["cpu"], "") if s in st and st[s]["cpu"] == st[s]["cpu"] else na(s)
                     for s in SYSTEMS] +
                    ["%.3f" % st[s]["vcsw"] if s in st and st[s]["vcsw"] == st[s]["vcsw"] else na(s)
                     for s in SYSTEMS])
    return head, body


def gs_rows(rows):
    """What a parked G costs in memory: the rise of the peak RSS over the RSS before the first
    spawn, per G, in the first run of a fresh process (medians over the processes)."""
    head = ["Gs"] + ["%s bytes/G" % TITLES[s] for s in SYSTEMS if runs_shape(s, "goroutines")] + \
        ["libchan+sched/Go"]
    body = []
    for row in rows:
        if row["shape"] != "goroutines":
            continue
        st = row["stats"]
        b = {s: st[s]["bytes_per_g"] if s in st else None for s in SYSTEMS}
        q = b["libchan-mpg"] / b["go"] if b["libchan-mpg"] and b["go"] else None
        body.append([str(row["cap"])] + ["n/a" if b[s] is None else "%.0f" % b[s]
                                         for s in SYSTEMS if runs_shape(s, "goroutines")] +
                    [fmt_ratio(q)])
    return head, body


def cold_rows(rows):
    """The first run in a fresh process (no warm-up) beside the runs after it in that process:
    the cold ns/msg (median over the rounds) and cold/warm (median of each process's first run
    over the median of its later ones)."""
    head = ["shape", "cap"] + ["%s cold ns/msg" % TITLES[s] for s in SYSTEMS] + \
        ["%s cold/warm" % TITLES[s] for s in SYSTEMS]
    body = []
    for row in rows:
        cold = row.get("cold")
        if row["unit"] != "ns/msg" or not cold:
            continue
        body.append([row["shape"], str(row["cap"])] +
                    [fmt(cold[s]["median"], "") if s in cold else "n/a" for s in SYSTEMS] +
                    ["%.2f" % cold[s]["ratio"] if s in cold else "n/a" for s in SYSTEMS])
    return head, body


def chart(rows, out, title):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not found"
    dat = os.path.join(out, "chart.dat")
    with open(dat, "w") as f:
        f.write("# label " + " ".join("%s %s_min %s_max" % (s, s, s) for s in SYSTEMS) + "\n")
        for row in rows:
            if row["unit"] == "%cpu":
                continue
            vals = []
            for s in SYSTEMS:
                st = row["stats"].get(s)
                vals += ["%.3f %.3f %.3f" % (st["median"], st["min"], st["max"]) if st else "NaN NaN NaN"]
            f.write('"%s/%d" %s\n' % (row["shape"], row["cap"], " ".join(vals)))
    png = os.path.join(out, "chart.png")
    plots = ", \\\n     ".join(
        "%s using %d:%d:%d%s title '%s' lc rgb '%s'" % (
            "'%s'" % dat if i == 0 else "''", 2 + 3 * i, 3 + 3 * i, 4 + 3 * i,
            ":xtic(1)" if i == 0 else "", "crossbeam-channel" if s == "crossbeam" else TITLES[s],
            CHART_COLORS[s])
        for i, s in enumerate(SYSTEMS))
    script = """
set terminal pngcairo size 1400,650 font ",10"
set output '%s'
set title "%s" noenhanced
set datafile missing "NaN"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set ylabel "ns per message (median of runs; bars: min-max; log scale)"
set xtics rotate by -40 noenhanced
set key top left
set grid ytics
plot %s
""" % (png, title.replace('"', "'"), plots)
    sp = os.path.join(out, "chart.gp")
    with open(sp, "w") as f:
        f.write(script)
    r = subprocess.run([gnuplot, sp], capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(png):
        # pngcairo may be missing from a gnuplot build: the plain png terminal then
        script2 = script.replace('set terminal pngcairo size 1400,650 font ",10"',
                                 "set terminal png size 1400,650")
        with open(sp, "w") as f:
            f.write(script2)
        r = subprocess.run([gnuplot, sp], capture_output=True, text=True)
        if r.returncode != 0:
            return "gnuplot failed: " + r.stderr.strip()[-200:]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--libchan", default=os.path.join(ROOT, "build", "plain", "bench", "bench"),
                    help="the C harness on pthreads (built by make bench)")
    ap.add_argument("--libchan-mpg", default=os.path.join(ROOT, "build", "plain", "bench", "bench-mpg"),
                    help="the C harness on Gs of sched/ (built by make bench)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--update-md", metavar="FILE", nargs="?",
                    const=os.path.join(ROOT, "bench", "BENCH.md"),
                    help="copy the last table into FILE (default bench/BENCH.md) and exit")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    if a.update_md:
        update_md(a.update_md, os.path.join(out, "table.md"), "bench", "run.py")
        return 0

    n = int(os.environ.get("N") or 1000000)
    place = os.environ.get("PLACE") or "none"
    runs = int(os.environ.get("RUNS") or 5)
    budget = int(os.environ.get("BUDGET_MS") or 400)
    timeout = int(os.environ.get("TIMEOUT") or 600)
    cold_n = int(os.environ.get("COLD_N") if os.environ.get("COLD_N") is not None else 20000)
    only_shapes = set(words(os.environ.get("SHAPES")))
    only_systems = set(words(os.environ.get("SYSTEMS"))) or set(SYSTEMS)
    if place not in ("none", "spread", "compact"):
        sys.exit("run.py: PLACE must be none, spread or compact")

    unknown = only_systems - set(SYSTEMS)
    if unknown:
        sys.exit("run.py: unknown SYSTEMS %s (known: %s)" % (" ".join(sorted(unknown)), " ".join(SYSTEMS)))
    start = datetime.datetime.now()
    load0 = loadavg()

    # The four programs; a missing one is a column of n/a.
    exes, versions, problems = {}, {}, []
    for system, exe in (("libchan", a.libchan), ("libchan-mpg", a.libchan_mpg)):
        if system in only_systems:
            if os.access(exe, os.X_OK):
                exes[system] = exe
            else:
                problems.append("%s: %s not built" % (TITLES[system], exe))
    for system, build in (("go", build_go_peer), ("crossbeam", build_rust)):
        if system in only_systems:
            log("run.py: building the %s peer ..." % TITLES[system])
            exe, v = build(out)
            if exe:
                exes[system], versions[system] = exe, v
            else:
                problems.append("%s: %s" % (TITLES[system], v))

    tx, rx = placement(place)
    env = dict(os.environ, PLACE=place)
    env.pop("BENCH_CPUS_TX", None)
    env.pop("BENCH_CPUS_RX", None)
    go_affinity = None
    if place != "none":
        if tx and rx:
            env.update(BENCH_CPUS_TX=tx, BENCH_CPUS_RX=rx)
            go_affinity = cpu_list(tx) | cpu_list(rx)
        else:
            problems.append("placement: hwloc-calc gave no CPU sets; the peers are not placed")

    host = machine()
    topo = sh(["lstopo-no-graphics", "--no-io", "--of", "console"]) or "(lstopo-no-graphics not available)"
    hwloc_v = sh(["hwloc-calc", "--version"]) or "hwloc ?"
    cc_v = cc_version(os.environ.get("CC") or "gcc")

    rows, raw, rss, infos = [], [], {s: 0 for s in SYSTEMS}, {s: {} for s in SYSTEMS}
    args = [str(n), "1", str(budget)]  # one timed run per process: see the interleaving below
    for shape, caps in SHAPES:
        if only_shapes and shape not in only_shapes:
            continue
        for cap in caps:
            row = {"shape": shape, "cap": cap, "unit": UNITS.get(shape, "ns/msg"), "stats": {}}
            # Interleaved: RUNS rounds, each running every system once (one process, one timed
            # run), so that a burst of other work on the machine falls on all systems alike
            # rather than on all the runs of one.
            got = {s: [] for s in SYSTEMS}
            colds = {s: [] for s in SYSTEMS}  # per cold process: (first run, its later runs)
            prss = {s: 0 for s in SYSTEMS}
            failed = set()
            cold_env = dict(env, BENCH_COLD="1")
            for _ in range(runs):
                for system in SYSTEMS:
                    if system not in exes or system in failed or not runs_shape(system, shape):
                        continue
                    res, err = run_one(system, exes[system], shape, cap, args, env,
                                       go_affinity if system == "go" else None, timeout, raw)
                    if err:
                        failed.add(system)
                        problems.append("%s %s cap %d: %s" % (TITLES[system], shape, cap, err))
                        log("run.py: %-11s %-11s cap %-4d FAILED: %s" % (system, shape, cap, err))
                        continue
                    (vals, r_rss, info) = res
                    infos[system].update(info)
                    got[system].extend(vals)
                    prss[system] = max(prss[system], r_rss or 0)
                    if cold_n <= 0 or shape in ("idle_cpu", "goroutines"):
                        continue
                    # Cold: a fresh process, no warm-up; its run 1 against its runs 2 and 3.
                    res, err = run_one(system, exes[system], shape, cap, [str(cold_n), "3", "0"],
                                       cold_env, go_affinity if system == "go" else None, timeout,
                                       raw)
                    if err or len(res[0]) < 2:
                        problems.append("%s %s cap %d cold: %s" % (TITLES[system], shape, cap,
                                                                  err or "too few runs"))
                        continue
                    vals = [v[1] for v in res[0]]
                    colds[system].append((vals[0], statistics.median(vals[1:])))
            for system in SYSTEMS:
                vals = got[system]
                if system not in exes or system in failed or not runs_shape(system, shape):
                    continue
                if not vals:
                    problems.append("%s %s cap %d: no result line" % (TITLES[system], shape, cap))
                    continue
                xs = [v[1] for v in vals]
                gb = [v[5] for v in vals if v[5] is not None]
                row["stats"][system] = dict(stats(xs), n=max(v[0] for v in vals), rss=prss[system],
                                            cpu=statistics.median(v[3] for v in vals),
                                            vcsw=statistics.median(v[4] for v in vals),
                                            bytes_per_g=statistics.median(gb) if gb else None)
                rss[system] = max(rss[system], prss[system])
                cold = ""
                if colds[system]:
                    row.setdefault("cold", {})[system] = {
                        "median": statistics.median(c for c, _ in colds[system]),
                        "warm": statistics.median(w for _, w in colds[system]),
                        "ratio": statistics.median(c / w for c, w in colds[system]),
                        "runs": len(colds[system])}
                    cold = ", cold %s = %.2fx warm" % (
                        fmt(row["cold"][system]["median"], ""), row["cold"][system]["ratio"])
                log("run.py: %-11s %-11s cap %-4d %s (%d runs, n=%d%s)" % (
                    system, shape, cap, cell(row["stats"][system], row["unit"]), len(xs),
                    row["stats"][system]["n"], cold))
            rows.append(row)
    elapsed = (datetime.datetime.now() - start).total_seconds()
    load1 = loadavg()

    if "libchan" in exes or "libchan-mpg" in exes:
        # the tree the library was built from: the commit, and whether its sources differ from it
        rev = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "?"
        dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--", ":(glob)*.[ch]",
                    ":(glob)sched/*.[chS]"])
        tree = "%s%s" % (rev, " with local changes" if dirty else "")
        li, mi = infos["libchan"], infos["libchan-mpg"]
        if "libchan" in exes:
            versions["libchan"] = "libchan %s at %s (%s, hwloc %s; threads tx=%s rx=%s)" % (
                li.get("version", "?"), tree, cc_v, li.get("hwloc", "?"), li.get("tx", "?"),
                li.get("rx", "?"))
        if "libchan-mpg" in exes:
            versions["libchan-mpg"] = ("libchan+sched: libchan %s with libchan-mpg at %s (Gs on "
                                       "%s Ps, Ms placed by the kernel; Gs are not placed)") % (
                mi.get("version", "?"), tree, mi.get("nprocs", "?"))
    header = [
        "libchan benchmark, %s, %.0f s" % (start.strftime("%Y-%m-%d %H:%M %Z").strip(), elapsed),
        "machine: " + host,
        "load average (1/5/15 min) at start %s, at end %s (other work on the machine disturbs "
        "every figure)" % ("/".join(load0), "/".join(load1)),
        "placement: PLACE=%s%s" % (place, "" if place == "none" else
                                   " (senders on CPUs %s, receivers on %s; Go: whole process on %s; "
                                   "libchan+sched: Gs not placed, %s)"
                                   % (tx, rx, ",".join(map(str, sorted(go_affinity or []))),
                                      "one P, its M on core 0" if place == "compact" else
                                      "Ms placed by the kernel")),
        "N=%d messages of 8 bytes per run (at most: each run is capped at BUDGET_MS=%d ms at its "
        "calibrated speed; n below is what ran), RUNS=%d, cells: median [min-max]; pingpong: ns per "
        "round trip; idle_cpu: %% of a core; goroutines: ns per G to spawn, park, wake and end cap Gs "
        "(cap: the number of Gs; libchan: threads)" % (n, budget, runs),
        "versions: " + "; ".join(versions.get(s, TITLES[s] + " n/a") for s in SYSTEMS) + "; " + hwloc_v,
        "topology (hwloc):",
    ] + ["  " + l for l in topo.splitlines()]
    head, body = table_rows(rows)
    table = text_table(head, body, 2)
    chead, cbody = cost_rows(rows)
    ctable = text_table(chead, cbody, 2)
    ghead, gbody = gs_rows(rows)
    gtable = text_table(ghead, gbody, 2) if gbody else None
    gtitle = ("memory per parked G (bytes: the rise of the peak RSS, VmHWM, over the RSS before the "
              "first spawn, per G, in a fresh process; medians):")
    khead, kbody = cold_rows(rows)
    ktable = text_table(khead, kbody, 2) if kbody else ""
    cold_title = ("cold start (a fresh process, no warm-up, %d messages per run; cold: its first "
                  "run, median over the rounds; cold/warm: median over the rounds of that first "
                  "run over the median of the two after it in the same process)" % cold_n)
    rss_line = "peak RSS (largest process of each system): " + ", ".join(
        "%s %s" % (TITLES[s], "%.1f MiB" % (rss[s] / 1024) if rss[s] else "n/a") for s in SYSTEMS)
    order = "/".join(TITLES[s] for s in SYSTEMS)
    nline = "messages per run (n): " + "; ".join(
        "%s/%d %s" % (r["shape"], r["cap"], "/".join(
            str(r["stats"][s]["n"]) if s in r["stats"] else "-" for s in SYSTEMS))
        for r in rows if r["unit"] == "ns/msg")

    print("\n".join(header))
    print()
    print(table)
    print()
    if gtable:
        print(gtitle)
        print(gtable)
        print()
    print(rss_line)
    if any(r["unit"] == "ns/msg" for r in rows):
        print(nline + "  (%s)" % order)
    print()
    print("where the time goes (medians; CPU: the whole process's user+system time per message; "
          "sleeps: voluntary context switches per message, i.e. blocking in the kernel such as a futex wait; "
          "sched_yield does not count):")
    print(ctable)
    if ktable:
        print()
        print(cold_title + ":")
        print(ktable)
    for p in problems:
        print("n/a: " + p)

    with open(os.path.join(out, "results.csv"), "w") as f:
        cols = ["shape", "cap", "unit"]
        for s in SYSTEMS:
            cols += ["%s_%s" % (s.replace("-", "_"), k)
                     for k in ("median", "min", "max", "runs", "n", "maxrss_kib", "cpu_ns_per_msg",
                               "vcsw_per_msg", "bytes_per_g")]
        cols += ["%s_over_%s" % (x.replace("-", "_"), y) for x, y in RATIOS]
        cols += ["%s_%s" % (s.replace("-", "_"), k) for s in SYSTEMS
                 for k in ("cold_median", "cold_over_warm")]
        f.write(",".join(cols) + "\n")
        for r in rows:
            vals = [r["shape"], str(r["cap"]), r["unit"]]
            for s in SYSTEMS:
                st = r["stats"].get(s)
                vals += ["%.4f" % st["median"], "%.4f" % st["min"], "%.4f" % st["max"], str(st["runs"]),
                         str(st["n"]), str(st["rss"]), "%.2f" % st["cpu"], "%.4f" % st["vcsw"],
                         "" if st["bytes_per_g"] is None else "%.0f" % st["bytes_per_g"]] \
                    if st else [""] * 9
            for x, y in RATIOS:
                q = ratio(r["stats"].get(x), r["stats"].get(y))
                vals.append("" if q is None else "%.4f" % q)
            for s in SYSTEMS:
                c = r.get("cold", {}).get(s)
                vals += ["%.4f" % c["median"], "%.4f" % c["ratio"]] if c else ["", ""]
            f.write(",".join(vals) + "\n")
    md = ["Run of %s on %s." % (start.strftime("%Y-%m-%d %H:%M"), host), "",
          "```"] + header[2:] + ["```", "", md_table(head, body, 2), ""] + \
         ([gtitle[0].upper() + gtitle[1:], "", md_table(ghead, gbody, 2), ""] if gtable else []) + \
         [rss_line + ".", "",
                                 nline + " (%s)." % order, "",
                                 "Where the time goes (medians; CPU: the whole process's user+system "
                                 "time per message, spinning included; sleeps: voluntary context "
                                 "switches per message, i.e. blocking in the kernel such as a futex "
                                 "wait; sched_yield does not count):", "", md_table(chead, cbody, 2)]
    if kbody:
        md += ["", cold_title[0].upper() + cold_title[1:] + ":", "", md_table(khead, kbody, 2)]
    md += [""] + ["n/a: " + p for p in problems]
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "results.txt"), "w") as f:
        f.write("\n".join(header + ["", table, ""] + ([gtitle, gtable, ""] if gtable else []) +
                          [rss_line, nline] + ["n/a: " + p for p in problems]
                          + ["", "where the time goes:", ctable]
                          + (["", cold_title + ":", ktable] if ktable else [])
                          + ["", "# raw lines"] + raw) + "\n")
    err = chart(rows, out, "libchan vs libchan+sched vs Go vs crossbeam-channel, ns/msg (PLACE=%s, %s)"
                % (place, start.strftime("%Y-%m-%d %H:%M")))
    if err:
        print("chart: " + err)
    print("\nwrote %s/results.csv, results.txt, table.md%s" % (out, "" if err else ", chart.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
