#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""docs/play/build.py - makes the pages of docs/play/ from the traces in docs/play/traces/.

    python3 docs/play/build.py            writes data/NAME.js, NAME.html, index.html, chan.7.html
    python3 docs/play/build.py --check    builds into a temporary directory and fails if any
                                          page differs from the one checked in (stale pages)

Each page replays the trace traces/NAME.json, taken by `make play-traces` from the run NAME of
drivers.c. The replay (every step's text and the state of every lane and hchan after it) is
tools/chantrace.py's, the reader tools/trace2mermaid uses too; this script only lays out the
pages around it: the guarantees of each pattern (patterns.json), the step list as plain HTML
(so that a page reads without its script), the source of the run, and chan(7) rendered by mandoc
so that its sections can be linked. Everything a page needs is in this directory: no server,
no network.
"""
import argparse
import filecmp
import html
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tools"))
from chantrace import Replay, fmt_t, load  # noqa: E402

esc = html.escape


def driver_sections():
    """The source of each pattern of drivers.c: from its "---- pattern: NAME ----" line to the
    next one."""
    with open(os.path.join(HERE, "drivers.c")) as f:
        text = f.read()
    out = {}
    marks = list(re.finditer(r"^/\* ---- (?:pattern: (\w+)|end of patterns) ---- \*/\n", text,
                             re.M))
    for m, nxt in zip(marks, marks[1:]):
        if m.group(1):
            out[m.group(1)] = text[m.end():nxt.start()].strip("\n")
    return out


def stale(events):
    """What shows that a trace was taken by an older libchan, or None. A wait that ended at its
    deadline had one, and its blocked slice has said so ("form":"until") since the trace
    learnt to, and how far it was ("deadline_in_ns") since the pages say it; a timer's channel
    says so when it is made ("role"), which the pages need to say that freeing a timer that has
    not fired stops it."""
    block = {}
    roles = {e["args"].get("chan") for e in events if e["args"].get("op") == "role"}
    for e in events:
        a = e["args"]
        if a.get("op") == "timer" and a.get("chan") not in roles:
            return "event %d, a timer's firing, on a channel with no \"role\"" % e["_i"]
        lane = (e["tid"], a.get("g"))
        if a.get("form") == "until" and a.get("op") == "blocked" and "deadline_in_ns" not in a:
            return "event %d, a wait with a deadline, does not say how far it is " \
                "(\"deadline_in_ns\")" % e["_i"]
        if a.get("op") == "blocked":
            block[lane] = e
        elif a.get("op") == "woken":
            b = block.pop(lane, None)
            if a.get("res") == "timedout" and b is not None and b["args"].get("form") != "until":
                return "event %d, a wait that timed out, does not say \"form\":\"until\"" % b["_i"]
    return None


# A count of nanoseconds where a time is meant: 8 digits or more (a thread id has at most 7,
# pid_max being 2^22). The pages say every time in human units, from the trace's start or
# from the operation ("+59.6 ms", "its deadline, in 30.0 ms").
RAW_NS = re.compile(r"(?<![\d.])\d{8,}(?![\d.])")


def raw_ns(d):
    """Where a replay shows a raw count of nanoseconds, or None."""
    for i, s in enumerate(d["steps"]):
        said = [s["text"]] + [st[1] for st in s["state"]["lanes"].values()]
        said += [d["shown"].get(str(st[2]), str(st[2])) for st in s["state"]["lanes"].values()
                 if st[3]]
        for c in s["state"]["chans"].values():
            said += [d["shown"].get(str(v), str(v)) for v in
                     [b[1] for b in c["buf"]] + [q[1] for q in c["sendq"]] + c["dropped"]]
        for t in said:
            m = RAW_NS.search(t)
            if m:
                return "step %d shows %s: %r" % (i + 1, m.group(0), t[:120])
    return None


def untold(story, names, events):
    """The first event of story (patterns.json's, for a summary that tells an order: a list
    of [lane, event name, value or null for any]) that the trace does not have after the one
    before it, or None. On a loaded machine a thread made ready may run late, and the order of
    two lanes change: the summary would no longer be true of the trace."""
    k = 0
    for e in events:
        if k < len(story) and [names.get(e["tid"]), e["name"]] == story[k][:2] and \
                story[k][2] in (None, e["args"].get("v")):
            k += 1
    return None if k == len(story) else story[k]


def replay(name, story=None):
    info = {}
    names, events = load(os.path.join(HERE, "traces", name + ".json"), info)
    missing = untold(story or [], names, events)
    if missing:
        raise SystemExit("build.py: traces/%s.json does not tell the story its summary tells: "
                         "%r is not where patterns.json's \"story\" has it; take it again with "
                         "make play-traces PATTERNS=%s" % (name, missing, name))
    old = stale(events)
    if old:
        raise SystemExit("build.py: traces/%s.json was taken by an older libchan (%s): take it "
                         "again with make play-traces PATTERNS=%s" % (name, old, name))
    d = Replay(names, events, info["t0_ns"]).data()
    if d["problems"]:
        raise SystemExit("build.py: traces/%s.json does not add up:\n  %s" % (
            name, "\n  ".join(d["problems"])))
    raw = raw_ns(d)
    if raw:
        raise SystemExit("build.py: %s: a time in raw nanoseconds, not human units (%s)" % (
            name, raw))
    return d


HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="play.css">
</head>
<body>
<header class="top">
  <a class="brand" href="index.html">libchan <span>signalling, replayed</span></a>
  <nav aria-label="Pages">{nav}</nav>
</header>
"""

PAGE = """<main class="page">
<div class="intro">
  <h1>{title}</h1>
  <p class="lede">{summary}</p>
</div>
<div class="grid">
  <section class="stage-wrap" aria-label="The run, step by step">
    <svg id="stage" role="img" aria-label="Threads and the channels' hchan at the current step; the line below says what happened"></svg>
    <div class="controls" role="group" aria-label="Replay">
      <button id="b-first" type="button" aria-label="First step (Home)" title="First step (Home)"><svg class="ico" viewBox="0 0 16 16" aria-hidden="true"><path d="M3 3h2v10H3zM13 3v10L6 8z"/></svg></button>
      <button id="b-prev" type="button" aria-label="Step back (Left arrow)" title="Step back (&#x2190;)"><svg class="ico" viewBox="0 0 16 16" aria-hidden="true"><path d="M12 3v10L5 8z"/></svg></button>
      <button id="b-play" type="button" aria-label="Play (Space)" aria-pressed="false">Play</button>
      <button id="b-next" type="button" aria-label="Step forward (Right arrow)" title="Step forward (&#x2192;)"><svg class="ico" viewBox="0 0 16 16" aria-hidden="true"><path d="M4 3v10l7-5z"/></svg></button>
      <button id="b-last" type="button" aria-label="Last step (End)" title="Last step (End)"><svg class="ico" viewBox="0 0 16 16" aria-hidden="true"><path d="M11 3h2v10h-2zM3 3v10l7-5z"/></svg></button>
      <label>Speed <select id="speed" aria-label="Speed">
        <option value="0.5">0.5&#xD7;</option><option value="1" selected>1&#xD7;</option>
        <option value="2">2&#xD7;</option><option value="4">4&#xD7;</option></select></label>
      <input id="scrub" type="range" min="0" max="{last}" value="0" step="1" aria-label="Step">
      <span id="counter" aria-hidden="true"></span>
    </div>
    <p id="now" class="now" aria-live="polite">{first}</p>
    <p class="keys">Keys: <kbd>Space</kbd> play or pause, <kbd>&#x2190;</kbd> <kbd>&#x2192;</kbd> step,
      <kbd>Home</kbd> <kbd>End</kbd>, <kbd>-</kbd> <kbd>+</kbd> speed. Click a step below, or the timeline, to go there.</p>
  </section>
  <aside class="panel" aria-label="What this pattern guarantees">
    <h2>What it guarantees</h2>
    <dl>
      <dt>Delivery</dt><dd><span class="badge {dclass}">{dword}</span> {delivery}</dd>
      <dt>Data</dt><dd>{data}</dd>
      <dt>Latency</dt><dd>{latency}</dd>
      <dt>On cancel</dt><dd>{cancel}</dd>
    </dl>
    <h3>Read more</h3>
    <ul>
      {man}
      <li>Example: <a href="../../{example}"><code>{example}</code></a></li>
      <li>This run: <a href="drivers.c"><code>docs/play/drivers.c</code></a> ({name})</li>
      <li>Its trace: <a href="traces/{name}.json"><code>traces/{name}.json</code></a> (Chrome trace format: Perfetto opens it)</li>
    </ul>
    <h3>How to read it</h3>
    <div class="legend">
      <span class="pill run">RUNNING</span><span>runs its own code</span>
      <span class="pill blocked">BLOCKED</span><span>parked: its sudog waits in a queue</span>
      <span class="pill ready">READY</span><span>woken by a peer, not yet running</span>
      <span class="pill new">NOT YET</span><span>no channel operation yet (it may be at work)</span>
      <span class="pill end">DONE</span><span>no more channel operations</span>{leaked}
    </div>
    <p>Times are from the start of the trace (+12.5 ms), or from the operation (a deadline
      in 30.0 ms). The circle beside a thread is the last value it received. A channel's <b>buf</b> shows its
      slots with <b>recvx</b> (the next to receive) and <b>sendx</b> (the next to fill); <b>recvq</b>
      and <b>sendq</b> hold one sudog per waiting thread, head first, with the value a sender offers.
      A faded sudog marked <i>stale</i> belongs to a select that another case has won: it stays
      queued, skipped by every peer, until that select runs and unlinks it.</p>
  </aside>
</div>
<section class="timeline-wrap" aria-label="Timeline">
  <h2>Timeline</h2>
  <div class="tl-scroll"><svg id="timeline" role="img" aria-label="One column per step, one row per thread: red bars are blocked spans, lines join a waker to those it woke{tl_leak}"></svg></div>
</section>
<section class="steps-wrap" aria-label="Every step">
  <h2>Every step</h2>
  <ol id="steps">
{steps}
  </ol>
</section>
<details class="source">
  <summary>The program traced: <code>{name}</code> in docs/play/drivers.c</summary>
<pre><code>{source}</code></pre>
</details>
<footer>Replayed from a real trace of libchan (<code>CHAN_TRACE=traces/{name}.json</code>), turned into this
  page by <code>tools/chantrace.py</code>{repaired}. Regenerate with <code>make play-traces</code>.</footer>
</main>
<script src="data/{name}.js"></script>
<script src="play.js"></script>
</body>
</html>
"""

WORDS = {"yes": "guaranteed", "no": "not guaranteed", "mid": "partly"}


def page(name, meta, d, source, order):
    i = order.index(name)
    steps = "\n".join(
        '    <li><button type="button"><span class="t">%s</span>%s</button></li>' % (
            fmt_t(s["t"]), esc(s["text"])) for s in d["steps"])
    man = "\n      ".join('<li>chan(7): <a href="chan.7.html#%s">%s</a></li>' % (esc(a), esc(t))
                          for a, t in meta["man"])
    rep = d["repaired"]
    leaks = any(s["kind"] == "leak" for s in d["steps"])
    repaired = (" (%d buffered operation%s recorded after the fact put back where the buffer "
                "shows %s happened)" % (rep, "" if rep == 1 else "s", "it" if rep == 1 else "they")
                if rep else "")
    return HEAD.format(title=esc(meta["title"]) + " \u2014 libchan, replayed",
                       nav=nav_titles(order, i)) + PAGE.format(
        title=esc(meta["title"]), summary=esc(meta["summary"]), last=len(d["steps"]) - 1,
        first=esc(d["steps"][0]["text"]), dclass=meta["delivery"][0],
        dword=WORDS[meta["delivery"][0]], delivery=esc(meta["delivery"][1]),
        data=esc(meta["data"]), latency=esc(meta["latency"]), cancel=esc(meta["cancel"]),
        man=man, example=esc(meta["example"]), name=name, steps=steps, source=esc(source),
        repaired=repaired, leaked=LEAKED if leaks else "",
        tl_leak=", a cross and a dark bar mark a thread found leaked" if leaks else "")


# The legend's line for a page where a leak check found a waiter blocked forever.
LEAKED = ('\n      <span class="pill leaked">LEAKED</span><span>blocked forever: nothing that '
          'can still run holds its channels (chan_leak_check)</span>')


TITLES = {}


def nav_titles(order, i):
    parts = ['<a href="index.html">All pages</a>']
    if i is not None and i > 0:
        parts.append('<a href="%s.html" rel="prev">&#x2190; %s</a>' % (
            order[i - 1], esc(TITLES[order[i - 1]])))
    if i is not None and i + 1 < len(order):
        parts.append('<a href="%s.html" rel="next">%s &#x2192;</a>' % (
            order[i + 1], esc(TITLES[order[i + 1]])))
    parts.append('<a href="chan.7.html">chan(7)</a>')
    return " ".join(parts)


INDEX = """<main class="page">
<div class="intro">
  <h1>Signalling, replayed</h1>
  <p class="lede">Each page replays a real trace of libchan, taken from a small program
  (<a href="drivers.c"><code>drivers.c</code></a>) that runs one pattern of
  <a href="chan.7.html">chan(7)</a> or of the examples. Watch each channel as Go's runtime sees it:
  its hchan, with the buffer's slots and the values in them, and the sendq and recvq with a sudog for
  every thread that waits. Every step says what happened and why.</p>
</div>
{groups}
<footer>Open any page straight from the file system: everything is in this directory, nothing is
  fetched. <code>make play</code> serves it on 127.0.0.1 too.</footer>
</main>
</body>
</html>
"""


def index(spec):
    out = []
    for title, names in spec["groups"]:
        out.append('<h2 class="group">%s</h2>\n<div class="cards">' % esc(title))
        for n in names:
            m = spec["pages"][n]
            out.append('  <a href="%s.html"><h3>%s</h3><p>%s</p></a>' % (
                n, esc(m["title"]), esc(m["summary"])))
        out.append("</div>")
    return HEAD.format(title="libchan: signalling, replayed", nav=nav_titles([], None)) + \
        INDEX.format(groups="\n".join(out))


def man_page():
    """chan(7) as HTML, with an anchor on every term of its lists (the patterns)."""
    frag = subprocess.run(["mandoc", "-Thtml", "-Ofragment", os.path.join(TOP, "man", "chan.7")],
                          check=True, capture_output=True, text=True).stdout
    frag = re.sub(r"<dt>([A-Za-z][A-Za-z -]*)</dt>",
                  lambda m: '<dt id="%s">%s</dt>' % (m.group(1).replace(" ", "_"), m.group(1)),
                  frag)
    # The pages stand alone, offline: an address outside them (STANDARDS cites Go's spec by
    # its URL) stays as text to copy, not a link that leaves them.
    frag = re.sub(r'<a class="(\w+)" href="[a-z]+://[^"]*">(.*?)</a>',
                  r'<span class="\1">\2</span>', frag, flags=re.S)
    return HEAD.format(title="chan(7) \u2014 libchan", nav=nav_titles([], None)) + \
        '<main class="page"><div class="man">\n' + frag + "</div></main>\n</body>\n</html>\n"


def build(out):
    with open(os.path.join(HERE, "patterns.json")) as f:
        spec = json.load(f)
    order = [n for _, names in spec["groups"] for n in names]
    for n in order:
        TITLES[n] = spec["pages"][n]["title"]
    sources = driver_sections()
    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    files = []
    for n in order:
        d = replay(n, spec["pages"][n].get("story"))
        js = "window.PLAY_DATA = %s;\n" % json.dumps(d, separators=(",", ":"), sort_keys=True)
        files.append(("data/%s.js" % n, js))
        files.append(("%s.html" % n, page(n, spec["pages"][n], d, sources[n], order)))
    files.append(("index.html", index(spec)))
    files.append(("chan.7.html", man_page()))
    for rel, text in files:
        with open(os.path.join(out, rel), "w") as f:
            f.write(text)
    return [rel for rel, _ in files]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if a page is not up to date")
    ap.add_argument("--story", nargs=2, metavar=("NAME", "TRACE"),
                    help="fail if TRACE does not tell the story of page NAME (capture.sh)")
    args = ap.parse_args()
    if args.story:
        with open(os.path.join(HERE, "patterns.json")) as f:
            story = json.load(f)["pages"][args.story[0]].get("story", [])
        missing = untold(story, *load(args.story[1]))
        if missing:
            print("build.py: %s: %r is not where its story has it" % (args.story[0], missing),
                  file=sys.stderr)
        return 1 if missing else 0
    if not args.check:
        for rel in build(HERE):
            print("docs/play/" + rel)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = [rel for rel in build(tmp)
                 if not os.path.exists(os.path.join(HERE, rel)) or
                 not filecmp.cmp(os.path.join(tmp, rel), os.path.join(HERE, rel), shallow=False)]
    if stale:
        print("build.py: out of date (run make play-pages): %s" % " ".join(stale),
              file=sys.stderr)
        return 1
    print("play: pages up to date with their traces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
