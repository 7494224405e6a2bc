#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The echo benchmark: a TCP echo server over 127.0.0.1 on libchan-mpg's Gs (a G per connection,
the netpoller), on libchan's pthreads (a thread per connection) and in Go (bench/go-echo: a
goroutine per connection, the net package), each under the same load.

    python3 bench/echo.py --echo build/plain/bench/echo [--out DIR]   (make bench-echo runs it)

The load is bench/echo.c's `load` (on Gs): CONNS connections made first, then each sends 64
bytes and waits for them to come back, in a loop, for SECONDS_PER seconds. For each connection
count the systems take turns, RUNS rounds of one server process each. Per cell: round trips per
second (median [min-max] over the runs), the server's CPU time (user + system, from wait4, its
whole life: accepting the connections too) per round trip, and its peak RSS (VmHWM). The thread per
connection server is capped at THREAD_CAP connections (a thread each: 10,000 threads and their
stacks on this shared machine is more than the harness should ask): larger cells show n/a.

The Gs server runs twice: as a program gets it (its Ms placed by the kernel, as Go's threads) and
with ECHO_BIND=1 (chan_mpg_config.bind: each M bound to its P's core). The load's Ms are never
bound: two processes that each pin a thread per core fight for the same cores.

Environment: SECONDS_PER (2), RUNS (3), CONNS ("1 100 10000"), SYSTEMS (filter: libchan-mpg,
libchan-mpg-bind, go, libchan), GO. Output: the table on stdout, DIR/echo.csv, DIR/echo.md.
"""
import argparse
import os
import re
import resource
import signal
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, build_go, last_line, log, md_table, spread, stats, words  # noqa: E402

SYSTEMS = ["libchan-mpg", "libchan-mpg-bind", "go", "libchan"]
TITLES = {"libchan-mpg": "libchan+sched (Gs)", "libchan-mpg-bind": "libchan+sched (Gs, Ms bound)",
          "go": "Go (net)", "libchan": "libchan (threads)"}
THREAD_CAP = 1000


def build_go_peer(out):
    return build_go(os.path.join(ROOT, "bench", "go-echo"), os.path.join(out, "go-echo"), out, 600)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def one_run(server_cmd, load_exe, conns, secs):
    """Starts the server, runs the load, kills the server: (round trips/s, server CPU s, peak
    RSS KiB) or an error string."""
    cmd, env = server_cmd
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = srv.stdout.readline()
        m = re.match(r"port (\d+)", line)
        if not m:
            return "server: no port line (%r)" % line
        try:
            # The load's Ms unbound: the measuring tool does not pin itself against the server.
            env = dict(os.environ)
            env.pop("ECHO_BIND", None)
            r = subprocess.run([load_exe, "load", m.group(1), str(conns), str(secs)],
                               capture_output=True, text=True, timeout=60 + 10 * secs, env=env)
        except subprocess.TimeoutExpired:
            return "load timed out"
        m2 = re.search(r"round_trips=(\d+) seconds=([\d.]+)", r.stdout)
        if r.returncode != 0 or not m2:
            return "load: exit %d: %s" % (r.returncode, last_line(r.stderr, "?"))
        rate = int(m2.group(1)) / float(m2.group(2))
        # Peak RSS from the kernel's high-water mark, before the kill: wait4's ru_maxrss would
        # count the forked harness's own pages from before the exec.
        hwm = 0
        with open("/proc/%d/status" % srv.pid) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    hwm = int(ln.split()[1])
    finally:
        if srv.poll() is None:
            srv.send_signal(signal.SIGKILL)
    _, _, ru = os.wait4(srv.pid, 0)
    srv.returncode = 0  # reaped here
    return rate, ru.ru_utime + ru.ru_stime, hwm, int(m2.group(1))


def cell(xs, fmt):
    return spread(stats(xs), lambda v: fmt % v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo", default=os.path.join(ROOT, "build/plain/bench/echo"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build/bench"))
    a = ap.parse_args()
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    secs = float(os.environ.get("SECONDS_PER") or 2)
    runs = int(os.environ.get("RUNS") or 3)
    conns_list = [int(c) for c in words(os.environ.get("CONNS") or "1 100 10000")]
    only = set(words(os.environ.get("SYSTEMS")))
    systems = [s for s in SYSTEMS if not only or s in only]
    hard = raise_nofile()
    log("echo.py: RLIMIT_NOFILE raised to %d (hard limit; `ulimit -Hn`)" % hard)
    go_exe, go_ver = build_go_peer(a.out) if "go" in systems else (None, "")
    if "go" in systems and not go_exe:
        log("echo.py: Go: %s" % go_ver)
    env = dict(os.environ)
    env.pop("ECHO_BIND", None)
    cmds = {"libchan-mpg": ([a.echo, "server", "gs"], env),
            "libchan-mpg-bind": ([a.echo, "server", "gs"], dict(env, ECHO_BIND="1")),
            "libchan": ([a.echo, "server", "threads"], env),
            "go": ([go_exe], env) if go_exe else None}
    results = {}  # (system, conns) -> list of (rate, cpu, rss, trips)
    notes = []
    for conns in conns_list:
        for r in range(runs):
            for s in systems:
                if not cmds[s]:
                    continue
                if s == "libchan" and conns > THREAD_CAP:
                    continue
                if conns + 64 > hard:
                    notes.append("%d connections need %d fds per process: hard limit %d" %
                                 (conns, conns + 64, hard))
                    continue
                res = one_run(cmds[s], a.echo, conns, secs)
                if isinstance(res, str):
                    log("echo.py: %-12s conns %-6d run %d FAILED: %s" % (s, conns, r, res))
                    notes.append("%s, %d connections: %s" % (TITLES[s], conns, res))
                    continue
                results.setdefault((s, conns), []).append(res)
                log("echo.py: %-12s conns %-6d run %d: %9.0f round trips/s, server CPU %.2f s, "
                    "peak RSS %.1f MiB" % (s, conns, r, res[0], res[1], res[2] / 1024))
    head = ["connections"]
    for s in systems:
        head += ["%s round trips/s" % TITLES[s], "%s CPU us/rt" % TITLES[s],
                 "%s peak RSS MiB" % TITLES[s]]
    pairs = [(x, "go") for x in ("libchan-mpg", "libchan-mpg-bind") if x in systems and "go" in systems]
    for x, y in pairs:
        head.append("%s / Go (round trips/s)" % TITLES[x])
    body, csv = [], ["system,connections,run,round_trips_per_s,server_cpu_s,server_cpu_us_per_rt,"
                     "server_peak_rss_kib"]
    for conns in conns_list:
        row = [str(conns)]
        for s in systems:
            xs = results.get((s, conns), [])
            row += [cell([x[0] for x in xs], "%.0f"),
                    cell([x[1] / x[3] * 1e6 for x in xs if x[3]], "%.1f"),
                    cell([x[2] / 1024 for x in xs], "%.1f")]
            for i, x in enumerate(xs):
                csv.append("%s,%d,%d,%.1f,%.3f,%.2f,%d" % (s, conns, i, x[0], x[1],
                                                           x[1] / x[3] * 1e6 if x[3] else 0, x[2]))
        for x, y in pairs:
            a_, b_ = results.get((x, conns)), results.get((y, conns))
            row.append("%.2f" % (statistics.median([v[0] for v in a_]) /
                                 statistics.median([v[0] for v in b_])) if a_ and b_ else "n/a")
        body.append(row)
    text = md_table(head, body, len(head))
    foot = ["", "%d runs of %.1f s per cell, median [min-max]; %s; load: bench/echo.c on Gs, "
            "64-byte messages; libchan (threads) capped at %d connections." %
            (runs, secs, go_ver or "Go n/a", THREAD_CAP)]
    foot += sorted(set("note: " + n for n in notes))
    print(text + "\n".join(foot))
    with open(os.path.join(a.out, "echo.md"), "w") as f:
        f.write(text + "\n" + "\n".join(foot) + "\n")
    with open(os.path.join(a.out, "echo.csv"), "w") as f:
        f.write("\n".join(csv) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
