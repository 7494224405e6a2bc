# SPDX-License-Identifier: MIT
"""What the benchmark drivers share (bench/run.py, scale.py, echo.py, history.py): building a Go
peer, running a measured program with a time-out, medians with their spread, the machine's
description, word lists from the environment, and the tables' Markdown and text forms.

Each driver imports it from its own directory; nothing here prints a table or knows a shape, a
series or a system: the drivers do, and their output is theirs.
"""
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    """Progress, on stderr: the table alone goes to stdout."""
    print(msg, file=sys.stderr, flush=True)


def words(v):
    """A space- or comma-separated list (an environment variable such as SHAPES, SYSTEMS, CONNS)
    as its words; None or empty: []."""
    return [w for w in re.split(r"[,\s]+", v or "") if w]


def sh(cmd, timeout=300, **kw):
    """Output of a command, stripped, or None when it cannot run, times out or fails."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def last_line(text, default):
    """The last line of a program's message (its stderr, say), or default when it said nothing:
    what a table's n/a note quotes."""
    return (text.strip().splitlines() or [default])[-1]


def run_proc(cmd, timeout, **kw):
    """Runs one measured program to its end, its output captured: (the CompletedProcess, None), or
    (None, why) when it could not start or ran past timeout seconds (then it is killed). A
    non-zero exit is the caller's to judge (last_line of its stderr says why)."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw), None
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % timeout
    except OSError as e:
        return None, str(e)


def fields(text):
    """The key=value words of a result line ("bench shape=spsc cap=0 value=41.2 ..."), as a
    dict; other words are skipped."""
    return dict(p.split("=", 1) for p in text.split() if "=" in p)


# ---- The Go peers ------------------------------------------------------------------------------

def build_go(src, exe, out, timeout):
    """Builds the Go program in directory src into exe, offline, with its module and build caches
    under out (GOPATH, GOCACHE: only build/ is written): (exe, `go version`) or (None, why). GO
    names the go command (default: the one on PATH)."""
    go = os.environ.get("GO") or shutil.which("go")
    if not go:
        return None, "go not found"
    env = dict(os.environ, GOPATH=os.path.join(out, "gopath"), GOCACHE=os.path.join(out, "gocache"),
               GOFLAGS="-mod=mod", GOPROXY="off", GO111MODULE="on", GOTOOLCHAIN="local",
               GOTELEMETRY="off", CGO_ENABLED="0")
    try:
        r = subprocess.run([go, "build", "-o", exe, "."], cwd=src, env=env, capture_output=True,
                           text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "go build: %s" % e
    if r.returncode != 0:
        return None, "go build failed: " + last_line(r.stderr, "?")
    return exe, sh([go, "version"], env=env) or "go ?"


# ---- Figures -----------------------------------------------------------------------------------

def stats(xs):
    """The median of a cell's runs, its least and greatest, and how many: None for no runs."""
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": len(xs)}


def spread(st, fmt):
    """A cell as the tables print it: "median [min-max]", each by fmt; n/a for no runs."""
    if not st:
        return "n/a"
    return "%s [%s-%s]" % (fmt(st["median"]), fmt(st["min"]), fmt(st["max"]))


def ratio(a, b):
    """a's median over b's (stats dicts), or None when either is missing or b's is 0."""
    if not a or not b or not b["median"]:
        return None
    return a["median"] / b["median"]


def fmt_ratio(r):
    return "n/a" if r is None else "%.2f" % r


# ---- The run's header --------------------------------------------------------------------------

def machine():
    """This machine as a header names it: host, CPU model, CPU count, kernel."""
    model = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    return "%s, %s, %d CPUs, Linux %s" % (socket.gethostname(), model[1] if model else "?",
                                          os.cpu_count() or 0, os.uname().release)


def loadavg():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg writes them (strings)."""
    return open("/proc/loadavg").read().split()[:3]


def cc_version(cc):
    """The first line of `cc --version`, or "cc ?"."""
    return (sh([cc, "--version"]) or "cc ?").splitlines()[0]


# ---- Tables ------------------------------------------------------------------------------------

def md_table(head, body, left):
    """A Markdown table: the first `left` columns aligned left, the others (figures) right."""
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i < left else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def text_table(head, body, left, rule=True):
    """The same table as plain text in padded columns (the first `left` to the left, the others
    to the right), with a rule of dashes under the head unless rule is False."""
    w = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w[i]) if i < left else c.rjust(w[i])
                               for i, c in enumerate(r))
    return "\n".join([line(head)] + (["  ".join("-" * x for x in w)] if rule else []) +
                     [line(r) for r in body])


def update_md(md_path, table_path, marker, who):
    """Puts the table of the last run (table_path) into md_path between its <!-- marker:begin -->
    and <!-- marker:end --> lines (bench/BENCH.md keeps each driver's last table so)."""
    table = open(table_path).read()
    text = open(md_path).read()
    begin, end = "<!-- %s:begin -->" % marker, "<!-- %s:end -->" % marker
    if begin not in text or end not in text:
        sys.exit("%s: %s has no %s ... %s markers" % (who, md_path, begin, end))
    a, b = text.index(begin) + len(begin), text.index(end)
    open(md_path, "w").write(text[:a] + "\n" + table.rstrip() + "\n" + text[b:])
    log("%s: %s updated from %s" % (who, md_path, table_path))
