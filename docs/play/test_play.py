#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""docs/play/test_play.py - opens every page of docs/play/ in headless Chromium and checks, step by
step, that what it draws is what the trace says.

    /usr/bin/python3 docs/play/test_play.py [--shots DIR] [PAGE...]

Needs Debian's chromium, chromium-driver and python3-selenium (scripts/deps.sh play; hence
/usr/bin/python3, whose packages those are). Run by `make play-test`, and by `make test` where
Chromium is installed.

Every page is opened from the file system and stepped through with the keyboard, from the first
step to the last. At each step the drawing (the data-* attributes of the lanes, the hchans'
slots and sudogs, and the drops) is read back and compared with the raw trace
(traces/PAGE.json, read here with nothing but json): the events of the step, and a FIFO model
of each buffer kept from the trace's own values. So the test does not trust the replay that
made the page:
  - after a send hands a value to a waiting receiver, the receiver's lane holds that value, and
    neither side is blocked; after a receive takes a blocked sender's value, the sender is no
    longer blocked;
  - a blocked thread's lane says so, and its sudog (with the value a sender offers) is in the
    queue of its channel;
  - the buffer shows exactly the values the trace put in it and has not taken out, in order
    from recvx;
  - a trysend that failed shows its value discarded; a close marks the channel closed;
  - the text line and the step list follow the step; stepping back redraws the step before.
Then the controls: Home, End, the scrubber, play and pause. No console errors, nothing
loaded from anywhere but the file system, no link that leaves it, and every link into chan(7)
on an anchor there (a pattern's on that pattern's entry). At every step, the contrast of
every text with what it is drawn on (WCAG's 4.5:1, 3:1 for large text). Two screenshots go to --shots.
Closes with one line "[play] checks: N passed, N failed".
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

HERE = os.path.dirname(os.path.realpath(__file__))
FLAGS = ("--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
         "--disable-background-networking --disable-component-update --disable-sync "
         "--disable-extensions --disable-default-apps --window-size=1360,900 "
         "--force-device-scale-factor=1 --hide-scrollbars").split()

# What the page draws now, read from the DOM.
SUMMARY_JS = """
const q = (s, r) => Array.from((r || document).querySelectorAll(s));
const lanes = {};
q('#stage g.lane').forEach(g => lanes[g.dataset.lane] = {
  status: g.dataset.status, holds: g.dataset.holds, has: g.dataset.has === 'true'});
const chans = [];
q('#stage g.hchan').forEach(g => chans.push({
  id: g.dataset.chan, label: g.dataset.label, closed: g.dataset.closed === 'true',
  live: g.dataset.live === 'true', count: Number(g.dataset.count),
  rx: Number(g.dataset.recvx), sx: Number(g.dataset.sendx),
  slots: q('g.slot', g).map(s => [Number(s.dataset.slot), s.dataset.full === 'true', s.dataset.value]),
  sudogs: q('g.sudog', g).map(s => [s.dataset.queue, s.dataset.lane, s.dataset.value, s.dataset.done === 'true',
                                     s.textContent]),
  dropped: q('g.dropped', g).map(s => s.dataset.value)}));
const cur = q('#steps li').findIndex(li => li.getAttribute('aria-current') === 'step');
return {step: window.play.index(), scrub: Number(document.getElementById('scrub').value),
        now: document.getElementById('now').textContent, listed: cur, lanes: lanes, chans: chans};
"""


class Failures:
    def __init__(self):
        self.passed, self.failed = 0, []

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print("FAIL: " + what, flush=True)


def browser():
    o = webdriver.ChromeOptions()
    for f in FLAGS:
        o.add_argument(f)
    profile = tempfile.mkdtemp(prefix="play-chromium.")
    o.add_argument("--user-data-dir=" + profile)
    o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                         options=o)
    return d, profile


class Oracle:
    """The trace's own account, event by event: buffers as FIFOs of the values the trace
    recorded, and who woke whom."""

    def __init__(self, path):
        with open(path) as f:
            self.raw = json.load(f)["traceEvents"]
        self.woken = {e["args"]["flow"]: e for e in self.raw
                      if e.get("cat") == "chan" and e["args"].get("op") == "woken"
                      and e["args"].get("flow")}
        self.cap = {}
        self.fifo = {}
        self.timers, self.fired = set(), set()  # timers' channels (by "role"), those that fired
        self.names = {e["tid"]: e["args"]["name"] for e in self.raw
                      if e.get("ph") == "M" and e.get("name") == "thread_name"}

    def apply(self, e):
        a = e["args"]
        op, label = a.get("op"), a.get("chan")
        if op == "make":
            self.cap[label] = a["cap"]
            self.fifo[label] = []
            self.timers.discard(label)
            self.fired.discard(label)
        if op == "role" and a.get("role") == "timer":
            self.timers.add(label)
        if op == "timer":
            self.fired.add(label)
        if label not in self.fifo:
            return
        if self.cap.get(label, 0) == 0:
            return
        q = self.fifo[label]
        moved = a.get("res") == "ok" and not a.get("woke")
        d = a.get("dir", op)
        if op in ("send", "recv", "select") and moved and label:
            if d == "send":
                q.append(a.get("v"))
            else:
                q.pop(0)
        elif op == "wake" and a.get("by") == "recv":
            q.pop(0)
            q.append(a.get("v2"))


def lane_of(e):
    g = e["args"].get("g")
    return "g%d" % g if g else str(e["tid"])


def drawn_chan(s, label):
    live = [c for c in s["chans"] if c["label"] == label and c["live"]]
    return (live or [c for c in s["chans"] if c["label"] == label] or [None])[0]


def val(v):
    return "" if v is None else str(v)


def check_step(F, name, i, s, evs, oracle):
    where = "%s step %d" % (name, i + 1)
    for k in evs:
        e = oracle.raw[k]
        a = e["args"]
        op, me = a.get("op"), lane_of(e)
        c = drawn_chan(s, a.get("chan")) if a.get("chan") else None
        if op == "wake" and a.get("by") in ("send", "recv"):
            w = oracle.woken.get(a["flow"])
            other = lane_of(w) if w else None
            F.check(s["lanes"][me]["status"] != "blocked", "%s: the waker %s is blocked" % (where, me))
            if other:
                F.check(s["lanes"][other]["status"] != "blocked",
                        "%s: %s was woken but is drawn blocked" % (where, other))
            receiver = other if a["by"] == "send" else me
            if "v" in a and receiver and (a["by"] == "send" or oracle.cap.get(a["chan"]) == 0):
                F.check(s["lanes"][receiver]["holds"] == str(a["v"]),
                        "%s: receiver %s holds %r, not %r" % (
                            where, receiver, s["lanes"][receiver]["holds"], a["v"]))
        elif op == "wake":  # by a close
            w = oracle.woken.get(a["flow"])
            if w:
                F.check(s["lanes"][lane_of(w)]["status"] != "blocked",
                        "%s: %s woken by the close is drawn blocked" % (where, lane_of(w)))
        elif op == "blocked":
            F.check(s["lanes"][me]["status"] == "blocked", "%s: %s is not drawn blocked" % (where, me))
            if c is not None:
                queue = "sendq" if e["name"].startswith("blocked send") else "recvq"
                mine = [g for g in c["sudogs"] if g[0] == queue and g[1] == me]
                F.check(len(mine) == 1, "%s: no sudog of %s in %s's %s" % (where, me, c["label"], queue))
                if mine and "v" in a:
                    F.check(mine[0][2] == str(a["v"]), "%s: %s's sudog holds %r, not %r" % (
                        where, me, mine[0][2], a["v"]))
            else:  # a select: one sudog on some channel at least
                F.check(any(g[1] == me for ch in s["chans"] for g in ch["sudogs"]),
                        "%s: the select of %s has no sudog drawn" % (where, me))
        elif op == "send" and a.get("res") == "again" and c is not None:
            F.check(val(a.get("v")) in c["dropped"], "%s: %s not shown dropped on %s (%r)" % (
                where, a.get("v"), c["label"], c["dropped"]))
        elif op == "close" and a.get("res") == "ok" and c is not None:
            F.check(c["closed"], "%s: %s not drawn closed" % (where, c["label"]))
        elif op == "free" and a["chan"] in oracle.timers:  # chan_timer_free
            want = "it has fired" if a["chan"] in oracle.fired else "it is stopped and never will"
            F.check("chan_timer_free" in s["now"] and want in s["now"],
                    "%s: freeing the timer of %s does not say %r: %r" % (
                        where, a["chan"], want, s["now"]))
        elif op == "leak":  # chan_leak_check found a waiter blocked forever (chan_leak(3))
            g = a.get("goroutine")
            who = "g%d" % g if g is not None else str(a["thread"])
            F.check(s["lanes"].get(who, {}).get("status") == "leaked",
                    "%s: %s, found leaked, is not drawn LEAKED" % (where, who))
            if c is not None:
                queue = "sendq" if a["waits"] == "send" else "recvq"
                F.check(any(g2[0] == queue and g2[1] == who for g2 in c["sudogs"]),
                        "%s: the leaked %s has no sudog in %s's %s" % (where, who, c["label"],
                                                                       queue))
            # the line says who, on which channel, and how it waits, in Go's words
            name = "G%d" % g if g is not None else oracle.names.get(a["thread"], "")
            words = {"send": "chan send", "recv": "chan receive"}.get(a["waits"], "select")
            for part in (name, a.get("chan", "no channel"), '"%s' % words, "blocked forever"):
                F.check(part in s["now"], "%s: the leak's line does not say %r: %r" % (
                    where, part, s["now"]))
        elif op == "woken":
            F.check(s["lanes"][me]["status"] in ("run", "end"),
                    "%s: %s woke but is drawn %s" % (where, me, s["lanes"][me]["status"]))
            if a.get("res") == "ok" and a.get("dir") == "recv" and "v" in a:
                F.check(s["lanes"][me]["holds"] == str(a["v"]), "%s: %s holds %r, not %r" % (
                    where, me, s["lanes"][me]["holds"], a["v"]))
    # A sudog still queued never fired: the case that fired left its queue at the wake-up. One
    # left over (done) is a select's on a case that lost, waiting to be unlinked.
    for c in s["chans"]:
        for q, lane, v, done, text in c["sudogs"]:
            F.check("fired" not in text, "%s: %s's sudog on %s is drawn as fired: %r" % (
                where, lane, c["label"], text))
            F.check(not done or "stale" in text, "%s: %s's left-over sudog on %s is not drawn "
                    "stale: %r" % (where, lane, c["label"], text))
    # every buffer against the trace's FIFO
    for label, q in oracle.fifo.items():
        c = drawn_chan(s, label)
        if c is None or not oracle.cap.get(label) or not c["live"]:
            continue
        F.check(c["count"] == len(q), "%s: %s holds %d values, the trace %d" % (
            where, label, c["count"], len(q)))
        full = {slot: v for slot, f, v in c["slots"] if f}
        order = [full.get((c["rx"] + j) % oracle.cap[label]) for j in range(len(q))]
        F.check(order == [val(v) for v in q] and len(full) == len(q),
                "%s: %s's buffer is drawn %r from recvx, the trace says %r" % (
                    where, label, order, q))


def check_page(F, d, name, shots):
    url = "file://" + os.path.join(HERE, name + ".html")
    d.get(url)
    for _ in range(50):
        if d.execute_script("return !!window.play"):
            break
        time.sleep(0.05)
    n = d.execute_script("return window.play.count")
    evs = d.execute_script("return PLAY_DATA.steps.map(s => s.ev)")
    texts = d.execute_script("return PLAY_DATA.steps.map(s => s.text)")
    oracle = Oracle(os.path.join(HERE, "traces", name + ".json"))
    keys = ActionChains(d, duration=0)
    # every event that a step must show is one step's at least: a leak found, a close...
    shown = {k for ev in evs for k in ev}
    for k, e in enumerate(oracle.raw):
        if e.get("cat") == "chan" and e["args"].get("op") in ("leak", "close", "timer"):
            F.check(k in shown, "%s: event %d (%s) is on no step" % (name, k, e["name"]))
    # the timeline's lines join a waker to those it woke, and only those: a leak check wakes
    # nobody, and each waiter it found is a cross on its own row
    tl = d.execute_script("""
      const lanes = new Set(PLAY_DATA.lanes.map(l => String(l.id)));
      return {lines: document.querySelectorAll('#timeline line').length,
              wakes: PLAY_DATA.steps.reduce((n, s) => n + (lanes.has(String(s.lane)) ?
                (s.wakes || []).filter(w => lanes.has(String(w))).length : 0), 0),
              crosses: Array.from(document.querySelectorAll('#timeline .leaked-mark'))
                .map(m => m.dataset.lane),
              leaks: PLAY_DATA.steps.flatMap(s => (s.leaks || []).map(String))};""")
    F.check(tl["lines"] == tl["wakes"], "%s: the timeline has %d lines for %d wake-ups" % (
        name, tl["lines"], tl["wakes"]))
    F.check(sorted(tl["crosses"]) == sorted(tl["leaks"]), "%s: leaks marked %r, found %r" % (
        name, tl["crosses"], tl["leaks"]))
    seen = []
    for i in range(n):
        if i:
            keys.send_keys(Keys.ARROW_RIGHT).perform()
        s = d.execute_script(SUMMARY_JS)
        F.check(s["step"] == i and s["scrub"] == i and s["listed"] == i,
                "%s: after %d presses of the right arrow: step %s, scrubber %s, list %s" % (
                    name, i, s["step"], s["scrub"], s["listed"]))
        F.check(texts[i] in s["now"], "%s step %d: the text line is not the step's" % (name, i + 1))
        for k in evs[i]:
            oracle.apply(oracle.raw[k])
        check_step(F, name, i, s, evs[i], oracle)
        check_times(F, d, name, "step %d" % (i + 1))
        check_contrast(F, d, name, "step %d" % (i + 1))
        seen.append(s)
    if n > 1:  # back one step: the same drawing as on the way forward
        keys.send_keys(Keys.ARROW_LEFT).perform()
        back = d.execute_script(SUMMARY_JS)
        F.check(back == seen[n - 2], "%s: stepping back does not redraw step %d" % (name, n - 1))
    keys.send_keys(Keys.HOME).perform()
    F.check(d.execute_script("return window.play.index()") == 0, "%s: Home" % name)
    keys.send_keys(Keys.END).perform()
    F.check(d.execute_script("return window.play.index()") == n - 1, "%s: End" % name)
    mid = n // 2
    d.execute_script("const r = document.getElementById('scrub'); r.value = arguments[0];"
                     "r.dispatchEvent(new Event('input'));", mid)
    F.check(d.execute_script(SUMMARY_JS) == seen[mid], "%s: the scrubber to step %d" % (name, mid + 1))
    if name == PLAYED:
        check_play(F, d, keys, name)
    # nothing from outside the file system; no errors in the console
    check_links(F, d, name, MAN_IDS)
    check_clean(F, d, name)
    if shots is not None and name in SHOTS:
        d.execute_script("window.play.go(arguments[0]); window.scrollTo(0, 0);",
                         SHOTS[name](seen))
        time.sleep(0.3)
        d.save_screenshot(os.path.join(shots, name + ".png"))
    return n


def check_play(F, d, keys, name):
    """Play at the highest speed, then pause (the same script drives every page: one is
    enough)."""
    keys.send_keys(Keys.HOME).send_keys("+").send_keys("+").send_keys("+").perform()
    F.check(d.execute_script("return window.play.speed()") == 4, "%s: + raises the speed" % name)
    keys.send_keys(Keys.SPACE).perform()
    t0 = time.time()
    while d.execute_script("return window.play.index()") < 1 and time.time() - t0 < 5:
        time.sleep(0.05)
    keys.send_keys(Keys.SPACE).perform()
    at = d.execute_script("return window.play.index()")
    F.check(at >= 1 and not d.execute_script("return window.play.playing()"),
            "%s: Space plays (reached step %d) and Space pauses" % (name, at + 1))
    time.sleep(0.4)
    F.check(d.execute_script("return window.play.index()") == at, "%s: paused means paused" % name)


# The contrast of every text of the page against what it is drawn on (WCAG 2: 4.5, or 3 for
# large text): an SVG text on white, or on the shape just before it where it is white or a
# badge's label; an HTML text on its nearest background; opacities blend it into that.
CONTRAST_JS = """
const rgb = s => (s.match(/[\\d.]+/g) || []).slice(0, 4).map(Number);
const lin = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
const lum = c => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
const blend = (f, b, a) => f.map((v, i) => i < 3 ? v * a + b[i] * (1 - a) : v);
const bad = [];
function test(t, fg, bg, alpha) {
  const cs = getComputedStyle(t), size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
  const need = size >= 18.66 || (bold && size >= 14) ? 3 : 4.5;
  const r = ratio(blend(fg, bg, alpha), bg);
  if (r < need && t.textContent.trim())
    bad.push([t.textContent.trim().slice(0, 30), r.toFixed(2), need]);
}
document.querySelectorAll('#stage g.base text, #timeline text').forEach(t => {
  const fg = rgb(getComputedStyle(t).fill);
  let bg = [255, 255, 255], alpha = 1;
  const prev = t.previousElementSibling;
  const onShape = fg[0] === 255 && fg[1] === 255 && fg[2] === 255 ||
                  t.classList.contains('status') || t.classList.contains('state');
  if (onShape && prev && /^(rect|circle)$/.test(prev.tagName)) bg = rgb(getComputedStyle(prev).fill);
  for (let e = t; e && e.id !== 'stage'; e = e.parentNode)
    if (e.getAttribute && e.getAttribute('opacity')) alpha *= Number(e.getAttribute('opacity'));
  test(t, fg, bg, alpha);
});
document.querySelectorAll('#now, #now .kind, #steps .t, #counter, .keys, .lede, .panel dd').forEach(t => {
  let e = t, bg = null;
  while (e && e.nodeType === 1) {
    const b = rgb(getComputedStyle(e).backgroundColor);
    if (b.length === 3 || (b.length === 4 && b[3] > 0)) { bg = b.slice(0, 3); break; }
    e = e.parentNode;
  }
  test(t, rgb(getComputedStyle(t).color).slice(0, 3), bg || [255, 255, 255], 1);
});
return bad;
"""


# A count of nanoseconds where a time is meant (a timer's value, a deadline, a duration): 8
# digits or more, which no value of the runs and no thread id (pid_max 2^22) has.
RAW_NS = re.compile(r"(?<![\d.])\d{8,}(?![\d.])")
TEXTS_JS = """
return Array.from(document.querySelectorAll('#stage text, #now, #counter, #steps li, .panel dd'))
  .map(t => t.textContent);
"""


def check_times(F, d, name, where):
    """Every time drawn or said is in human units: no raw nanoseconds."""
    raw = [t for t in d.execute_script(TEXTS_JS) if RAW_NS.search(t)]
    F.check(not raw, "%s %s: a time in raw nanoseconds: %r" % (name, where, raw[:3]))


def check_contrast(F, d, name, where):
    bad = d.execute_script(CONTRAST_JS)
    F.check(not bad, "%s %s: text below its contrast (text, ratio, needed): %r" % (
        name, where, bad[:6]))


LINKS_JS = """
return Array.from(document.querySelectorAll('a[href]')).map(a => [a.href, a.textContent]);
"""


def check_links(F, d, name, ids):
    """Every link stays on the file system (the pages stand alone, offline), and a link into
    chan(7) lands on its anchor: the pattern's own entry where it names one ("Patterns: Drop"
    goes to Drop, not to the top of PATTERNS)."""
    for href, text in d.execute_script(LINKS_JS):
        F.check(href.startswith("file:"), "%s: a link leaves the pages: %s" % (name, href))
        if "/chan.7.html#" not in href:
            continue
        frag = href.split("#", 1)[1]
        F.check(frag in ids, "%s: %s links to #%s, not an anchor of chan.7.html" % (
            name, text, frag))
        if text.startswith("Patterns: "):
            F.check(frag == text[len("Patterns: "):].replace(" ", "_"),
                    "%s: %r links to #%s, not to its own entry" % (name, text, frag))


def check_clean(F, d, name):
    urls = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    F.check(all(u.startswith("file:") for u in urls), "%s: loads from outside: %r" % (
        name, [u for u in urls if not u.startswith("file:")]))
    errors = [m for m in d.get_log("browser") if m["level"] in ("SEVERE", "WARNING")]
    F.check(not errors, "%s: console: %r" % (name, errors))


def first_block(seen):
    return next(i for i, s in enumerate(seen)
                if any(st["status"] == "blocked" for st in s["lanes"].values())
                and any(c["count"] for c in s["chans"]))


def most_waiting(seen):
    counts = [sum(len(c["sudogs"]) for c in s["chans"]) for s in seen]
    return counts.index(max(counts))


MAN_IDS = set()  # the ids of chan.7.html, read once by main()
SHOTS = {"buffered": first_block, "fan_out_sem": most_waiting}
PLAYED = "pooling"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shots", help="write the screenshots into this directory")
    ap.add_argument("pages", nargs="*")
    args = ap.parse_args()
    with open(os.path.join(HERE, "patterns.json")) as f:
        spec = json.load(f)
    pages = args.pages or [n for _, names in spec["groups"] for n in names]
    if args.shots:
        os.makedirs(args.shots, exist_ok=True)
    F = Failures()
    t0 = time.time()
    d, profile = browser()
    try:
        d.get("file://" + os.path.join(HERE, "chan.7.html"))
        MAN_IDS.update(d.execute_script(
            "return Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
        check_links(F, d, "chan.7.html", MAN_IDS)
        steps = 0
        for name in pages:
            steps += check_page(F, d, name, args.shots)
        d.get("file://" + os.path.join(HERE, "index.html"))
        links = d.execute_script("return Array.from(document.querySelectorAll('.cards a'))"
                                 ".map(a => a.getAttribute('href'))")
        F.check(sorted(links) == sorted(n + ".html" for _, ns in spec["groups"] for n in ns),
                "index.html links every page")
        check_links(F, d, "index.html", MAN_IDS)
        F.check(not d.get_log("browser"), "index.html: console messages")
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print("play: %d pages, %d steps, in %.1f s in headless Chromium" % (
        len(pages), steps, time.time() - t0))
    print("[play] checks: %d passed, %d failed" % (F.passed, len(F.failed)))
    return 1 if F.failed else 0


if __name__ == "__main__":
    sys.exit(main())
