#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tools/test_chantrace.py - checks chantrace.Replay on made-up traces, for what the real traces
of docs/play/ may not show on a given run: a buffered operation recorded after the event that
depends on it is put back where the buffer needs it; what cannot be put back is reported.
Run by make test (docs/play/play.mk's play-check). Closes with "[chantrace] checks: N passed,
N failed"."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from chantrace import Replay, load  # noqa: E402

passed, failed = 0, []


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failed.append(what)
        print("FAIL: " + what)


def ev(i, ts, tid, name, **args):
    return {"_i": i, "ts": ts, "tid": tid, "name": name, "args": args}


def kinds(r):
    return [(s["kind"], s["lane"]) for s in r.steps]


# A send into the ring, recorded after the receive that took its value.
late_put = [
    ev(0, 1.0, 1, "make q", op="make", chan="q", cap=2, elemsize=4),
    ev(1, 5.0, 2, "recv q", op="recv", chan="q", v=7, form="block", res="ok", cap=2),
    ev(2, 5.5, 1, "send q", op="send", chan="q", v=7, form="block", res="ok", cap=2),
]
r = Replay({1: "main", 2: "reader"}, late_put)
check(r.repaired == 1 and not r.problems, "a late put is moved back: %d, %r" % (r.repaired, r.problems))
check(kinds(r) == [("make", 1), ("put", 1), ("take", 2)], "put before take: %r" % kinds(r))
check(r.steps[-1]["state"]["chans"]["0"]["n"] == 0, "the buffer is empty after both")

# A receive recorded after a send that found room only because of it.
late_take = [
    ev(0, 1.0, 1, "make q", op="make", chan="q", cap=1, elemsize=4),
    ev(1, 2.0, 1, "send q", op="send", chan="q", v=1, form="block", res="ok", cap=1),
    ev(2, 6.0, 1, "send q", op="send", chan="q", v=2, form="block", res="ok", cap=1),
    ev(3, 6.5, 2, "recv q", op="recv", chan="q", v=1, form="block", res="ok", cap=1),
]
r = Replay({}, late_take)
check(r.repaired == 1 and not r.problems, "a late take is moved back: %d, %r" % (r.repaired, r.problems))
check([s["kind"] for s in r.steps] == ["make", "put", "take", "put"], "take before the second put")
check(r.steps[-1]["state"]["chans"]["0"]["buf"] == [[0, 2]], "slot 0 holds 2 at the end")

# A receive from a buffer that nothing was put into: reported.
r = Replay({}, late_take[:1] + [late_take[3]])
check(len(r.problems) == 1 and "needs a put" in r.problems[0], "a take from nothing: %r" % r.problems)

# A wake-up whose dequeued waiter is not the head of the queue: reported, not hidden.
wrong = [
    ev(0, 1.0, 1, "make c", op="make", chan="c", cap=0, elemsize=4),
    ev(1, 2.0, 2, "blocked recv c", op="blocked", chan="c"),
    ev(2, 3.0, 3, "blocked recv c", op="blocked", chan="c"),
    ev(3, 4.0, 1, "wake c", op="wake", chan="c", v=5, by="send", flow=9, cap=0),
    ev(4, 5.0, 3, "woken recv c", op="woken", chan="c", v=5, res="ok", dir="recv", flow=9),
]
r = Replay({}, wrong)
check(len(r.problems) == 1 and "not the first waiter" in r.problems[0],
      "a dequeue out of FIFO order is a problem: %r" % r.problems)
st = r.steps[3]["state"]["lanes"]
check(st["3"][0] == "ready" and st["3"][2] == 5 and st["2"][0] == "blocked",
      "the woken receiver holds the value, the other still waits: %r" % st)

# A select of more cases than a trace lists (the first 16) says how many it leaves out.
many = [ev(0, 1.0, 1, "make c", op="make", chan="c", cap=0, elemsize=4)]
many += [ev(1 + k, 2.0 + k, 1, "case %d recv c" % k, op="case", chan="c", case=k, dir="recv", n=20)
         for k in range(16)]
many.append(ev(17, 20.0, 1, "select", op="select", form="try", res="again"))
r = Replay({}, many)
check(not r.problems and "case 15 receive on c; and 4 more cases that the trace does not list"
      in r.steps[-1]["text"], "the cases left out are counted: %r" % r.steps[-1]["text"])

# A trace that lost events says so, before whatever then does not add up.
# A leak check's finding ("partial deadlock", chan_leak(3)): the leaked lane is drawn LEAKED and
# the step says who, on what, and Go's wait reason, as the report does.
leak = [
    ev(0, 1.0, 1, "make r", op="make", chan="r", cap=0, elemsize=4),
    ev(1, 2.0, 2, "blocked send r", op="blocked", chan="r", v=42, at_end=True),
    ev(2, 9.0, 1, "partial deadlock r", op="leak", chan="r", thread=2, waits="send",
       blocked_ns=7000000),
]
r = Replay({1: "manager", 2: "worker"}, leak)
s = r.steps[-1]
check(s["kind"] == "leak" and s["leaks"] == [2] and s["state"]["lanes"]["2"][0] == "leaked" and
      not r.problems, "a thread's leak: %r %r" % (s, r.problems))
check('thread 2 "worker" [chan send, 7.000 ms]: chan "r" send' in s["text"] and
      "blocked forever" in s["text"], "the leak's report line: %r" % s["text"])
# Gs, and the waits on no channel: Go's words for each (sudog.c's wait_reason_words).
for waits, cases, words in (("recv", None, "chan receive (nil chan)"),
                            ("send", None, "chan send (nil chan)"),
                            ("select", None, "select (no cases)"),
                            ("select", [ev(1, 1.5, 7, "case 0 recv nil", op="case", g=7, case=0,
                                           dir="recv", n=1, nil=True)], "select")):
    trace = (cases or []) + [
        ev(2, 2.0, 7, "blocked", op="blocked", g=7),
        ev(3, 9.0, 1, "partial deadlock", op="leak", goroutine=7, waits=waits)]
    if waits != "select":
        trace[-2]["name"] = "blocked %s" % waits
    else:
        trace[-2]["name"] = "blocked select"
    r = Replay({}, trace)
    s = r.steps[-1]
    check(s["kind"] == "leak" and "goroutine 7 [%s]:" % words in s["text"] and
          s["state"]["lanes"]["g7"][0] == "leaked" and "nothing can ever wake it" in s["text"],
          "a G leaked in %s: %r" % (words, s["text"]))

# Times in human units: a timer's value (chan_now() when it fired) from the trace's start, and a
# time-out against its deadline (traces say how far it was: "deadline_in_ns").
timed = [
    ev(0, 1.0, 1, "make t", op="make", chan="t", cap=1, elemsize=8),
    ev(1, 2.0, 2, "blocked recv t", op="blocked", chan="t"),
    ev(2, 10001.0, 3, "timer fire t", op="timer", chan="t"),
    ev(3, 10002.0, 3, "wake t", op="wake", chan="t", v=5000010000000, by="send", flow=4, cap=1),
    ev(4, 10003.0, 2, "woken recv t", op="woken", chan="t", v=5000010000000, res="ok",
       dir="recv", flow=4),
    ev(5, 10004.0, 2, "blocked recv t", op="blocked", chan="t", form="until",
       deadline_in_ns=5000000),
    ev(6, 15505.0, 2, "woken recv t", op="woken", chan="t", res="timedout", dir="recv",
       blocked_ns=5501000),
]
r = Replay({1: "main", 2: "client"}, timed, t0=5000000000000)
d = r.data()
check(d["shown"] == {"5000010000000": "+10.0 ms"}, "a timer's value drawn from the start: %r" %
      d["shown"])
check("fires at +10.001 ms, 10.0 ms after it was made" in d["steps"][2]["text"] and
      "the time +10.0 ms" in d["steps"][3]["text"] and "5000010000000" not in "".join(
          s["text"] for s in d["steps"]), "a timer's steps: %r" % [
              s["text"] for s in d["steps"][2:5]])
check("its deadline (in 5.0 ms)" in d["steps"][5]["text"] and
      "blocked for 5.5 ms, its deadline 5.0 ms after it blocked" in d["steps"][6]["text"] and
      "woke 501.0 \u00b5s after it" in d["steps"][6]["text"],
      "a deadline in human units: %r" % [s["text"] for s in d["steps"][5:]])

# A timer's channel says so when it is made ("role"): freeing the timer stops it if it has not
# fired, and the make says what the channel is for.
for fire, want in ((False, "it has not fired, so it is stopped and never will"),
                   (True, "it has fired")):
    trace = [ev(0, 1.0, 1, "make t", op="make", chan="t", cap=1, elemsize=8),
             ev(1, 1.5, 1, "role t", op="role", chan="t", role="timer")]
    if fire:
        trace.append(ev(2, 2.0, 2, "timer fire t", op="timer", chan="t"))
    trace.append(ev(3, 3.0, 1, "free t", op="free", chan="t"))
    r = Replay({1: "main"}, trace)
    check("It is a timer's channel" in r.steps[0]["text"] and 1 in r.steps[0]["ev"] and
          "(chan_timer_free)" in r.steps[-1]["text"] and want in r.steps[-1]["text"],
          "a timer freed (fired: %s): %r" % (fire, [s["text"] for s in r.steps]))

# A close that wakes one waiter says so, with no word on the order of several.
r = Replay({1: "main", 2: "worker"}, [
    ev(0, 1.0, 1, "make d", op="make", chan="d", cap=0, elemsize=0),
    ev(1, 2.0, 2, "blocked recv d", op="blocked", chan="d"),
    ev(2, 3.0, 1, "close d", op="close", chan="d", res="ok"),
    ev(3, 3.1, 1, "wake d", op="wake", chan="d", by="close", flow=5, cap=0),
    ev(4, 4.0, 2, "woken recv d", op="woken", chan="d", res="closed", dir="recv", flow=5)])
check("it wakes the one waiter, worker," in r.steps[2]["text"] and
      "order" not in r.steps[2]["text"], "a close with one waiter: %r" % r.steps[2]["text"])

import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import xml.dom.minidom  # noqa: E402
import tempfile  # noqa: E402

here = os.path.dirname(os.path.realpath(__file__))
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "lost.json")
    with open(path, "w") as f:
        json.dump({"otherData": {"dropped": 3}, "traceEvents": [dict(e, cat="chan", ph="X")
                                                                for e in late_put]}, f)
    info = {}
    load(path, info)
    check(info == {"dropped": 3, "t0_ns": None}, "load reports the events lost: %r" % info)
    p = subprocess.run([sys.executable, os.path.join(here, "trace2play"), "--strict", path],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "the trace lost 3 events" in p.stderr,
          "trace2play --strict fails on a trace that lost events: %d %r" % (p.returncode, p.stderr))
    p = subprocess.run([sys.executable, os.path.join(here, "trace2mermaid"), path],
                       capture_output=True, text=True)
    check(p.returncode == 0 and "the trace lost 3 events" in p.stderr,
          "trace2mermaid warns of a trace that lost events: %d %r" % (p.returncode, p.stderr))

# A send that completed on an unbuffered channel with no receiver in the trace (its wake-up was
# lost): a problem of the replay, not a traceback.
r = Replay({}, [ev(0, 1.0, 1, "make c", op="make", chan="c", cap=0, elemsize=4),
                ev(1, 2.0, 1, "send c", op="send", chan="c", v=1, form="block", res="ok", cap=0)])
check(len(r.problems) == 1 and "cannot be replayed" in r.problems[0],
      "a send with no receiver is a problem: %r" % r.problems)

# A hand-off whose wake-up or whose woken event the trace dropped (a full buffer): no arrow with
# one end, in the Mermaid text or the SVG; a note on the side that is there, and the replay says
# who woke the waiter is not known.
with tempfile.TemporaryDirectory() as tmp:
    pair = [
        ev(0, 1.0, 1, "make c", op="make", chan="c", cap=0, elemsize=4),
        ev(1, 2.0, 2, "blocked recv c", op="blocked", chan="c"),
        ev(2, 3.0, 1, "wake c", op="wake", chan="c", v=5, by="send", flow=9, cap=0),
        ev(3, 3.5, 1, "send c", op="send", chan="c", v=5, form="block", res="ok", cap=0, woke=9),
        ev(4, 4.0, 2, "woken recv c", op="woken", chan="c", v=5, res="ok", dir="recv", flow=9),
    ]
    for lost_ev, side in ((2, "who woke it"), (4, "whom it woke")):
        evs = [e for e in pair if e["_i"] != lost_ev]
        path = os.path.join(tmp, "half.json")
        with open(path, "w") as f:
            json.dump({"otherData": {"dropped": 1},
                       "traceEvents": [dict(e, cat="chan", ph="X") for e in evs]}, f)
        p = subprocess.run([sys.executable, os.path.join(here, "trace2mermaid"), path],
                           capture_output=True, text=True)
        check(p.returncode == 0 and "->>" not in p.stdout and "Note over " in p.stdout and
              "(%s: dropped from the trace)" % side in p.stdout,
              "a hand-off without event %d: a note, no arrow: %d %r" % (lost_ev, p.returncode,
                                                                        p.stdout))
        svg = os.path.join(tmp, "half.svg")
        p = subprocess.run([sys.executable, os.path.join(here, "trace2mermaid"), path, "--svg",
                            svg], capture_output=True, text=True)
        with open(svg) as f:
            check(p.returncode == 0 and "marker-end" not in f.read(),
                  "the SVG of a hand-off without event %d has no arrow" % lost_ev)
    r = Replay({}, pair[:2] + pair[3:])
    check(not r.problems and "Who woke it is not in the trace" in r.steps[-1]["text"] and
          not r.steps[-1]["moves"], "a woken whose wake was dropped: %r %r" % (
              r.problems, r.steps[-1]["text"]))

# A select that polled a file descriptor: blocked, then it goes on with no peer (no woken) and
# receives on the fd's unbuffered channel with no sender (chan_io(3)): two steps, no problem.
fd = [
    ev(0, 1.0, 1, "make c1", op="make", chan="c1", cap=0, elemsize=4),
    ev(1, 2.0, 1, "case 0 recv c1", op="case", chan="c1", case=0, dir="recv", n=1),
    ev(2, 3.0, 1, "blocked select", op="blocked"),
    ev(3, 9.0, 1, "select c1", op="select", chan="c1", v=1, form="until", res="ok", case=0,
       dir="recv", cap=0),
]
r = Replay({1: "reader"}, fd)
check(not r.problems and [s["kind"] for s in r.steps] == ["make", "block", "fdready", "fd"],
      "an fd wait replays: %r %r" % (r.problems, [s["kind"] for s in r.steps]))
check(r.steps[-1]["state"]["chans"]["0"]["recvq"] == [] and
      r.steps[-1]["state"]["lanes"]["1"][0] == "end",
      "its sudog has left the recvq, it ran on: %r" % r.steps[-1]["state"])

# Names are the program's bytes: in the Mermaid text each stays on its line, and what Mermaid
# reads as syntax (";", "#", "%%", "<", ">", "&") is an entity code.
with tempfile.TemporaryDirectory() as tmp:
    odd = "a;b\n%%{init} <i>&amp;#x\u2028z\x01\x1b\ud800"
    hand = [
        ev(0, 1.0, 1, "make " + odd, op="make", chan=odd, cap=0, elemsize=4),
        ev(1, 2.0, 2, "blocked recv " + odd, op="blocked", chan=odd),
        ev(2, 3.0, 1, "wake " + odd, op="wake", chan=odd, v=3, by="send", flow=9, cap=0),
        ev(3, 3.5, 1, "send " + odd, op="send", chan=odd, v=3, form="block", res="ok", cap=0,
           woke=9),
        ev(4, 4.0, 2, "woken recv " + odd, op="woken", chan=odd, v=3, res="ok", dir="recv",
           flow=9),
    ]
    path = os.path.join(tmp, "odd.json")
    with open(path, "w") as f:
        json.dump({"traceEvents": [{"name": "thread_name", "ph": "M", "tid": 1,
                                    "args": {"name": "main;\r\n%%{init: x}"}},
                                   {"name": "thread_name", "ph": "M", "tid": 2,
                                    "args": {"name": "rx<b>#1"}}] +
                   [dict(e, cat="chan", ph="X") for e in hand]}, f)
    p = subprocess.run([sys.executable, os.path.join(here, "trace2mermaid"), path],
                       capture_output=True, text=True)
    lines = p.stdout.splitlines()
    texts = [re.sub(r"#\d+;", "", ln.split(" as ", 1)[-1] if " as " in ln
                    else ln.split(": ", 1)[-1]) for ln in lines[1:]]
    check(p.returncode == 0 and len(lines) == 4 and lines[0] == "sequenceDiagram" and
          not any(c in t for t in texts for c in ";%<>&#") and "#59;" in lines[1] and
          "#37;#37;" in lines[1], "odd names stay on their lines, escaped: %r" % lines)
    svg = os.path.join(tmp, "odd.svg")
    p = subprocess.run([sys.executable, os.path.join(here, "trace2mermaid"), path, "--svg", svg],
                       capture_output=True, text=True)
    try:
        xml.dom.minidom.parse(svg)
        parsed = True
    except Exception as x:  # noqa: BLE001 (what the parser says is the message)
        parsed = "%s: %s" % (type(x).__name__, x)
    check(p.returncode == 0 and parsed is True,
          "the SVG of odd names is XML: %d %r %r" % (p.returncode, parsed, p.stderr[-300:]))

# A timer already due fires in the call that armed it: the step says on which thread, not "the
# timer thread".
r = Replay({1: "main"}, [ev(0, 1.0, 1, "make c", op="make", chan="c", cap=1, elemsize=8),
                         ev(1, 2.0, 1, "timer fire c", op="timer", chan="c")])
check(r.steps[-1]["text"] == "A timer fires at +2.0 \u00b5s, 1.0 \u00b5s after it was made, on "
      "main: it sends the time it fired (chan_now(); Go's time.Time) on c.",
      "a timer fires on the thread that recorded it: %r" % r.steps[-1]["text"])

# A wait with a deadline ("form":"until" on its blocked slice) says it may end at the deadline;
# one without says nothing of a deadline.
for form, want in ((None, "(or a close)."), ("until", ", a close, or its deadline."),
                   ("in", ", a close, or its deadline (in 30.0 ms).")):
    extra = {"form": "until", "deadline_in_ns": 30000000} if form == "in" else \
        {"form": form} if form else {}
    r = Replay({1: "main"}, [ev(0, 1.0, 1, "make c", op="make", chan="c", cap=0, elemsize=4),
                             ev(1, 2.0, 1, "blocked recv c", op="blocked", chan="c", **extra)])
    check(r.steps[-1]["text"].endswith(want), "a %s receive's block: %r" % (
        form or "plain", r.steps[-1]["text"]))
r = Replay({1: "main"}, [ev(0, 1.0, 1, "make c", op="make", chan="c", cap=0, elemsize=4),
                         ev(1, 2.0, 1, "case 0 recv c", op="case", chan="c", case=0, dir="recv",
                            n=1),
                         ev(2, 3.0, 1, "blocked select", op="blocked", form="until")])
check("parks until that case is ready, or until its deadline passes." in r.steps[-1]["text"],
      "a timed select's block: %r" % r.steps[-1]["text"])

# A select woken by a close names the case that fired, as one woken by a value does.
r = Replay({1: "main", 2: "closer"}, [
    ev(0, 1.0, 1, "make d", op="make", chan="d", cap=0, elemsize=0),
    ev(1, 2.0, 1, "case 0 recv d", op="case", chan="d", case=0, dir="recv", n=1),
    ev(2, 3.0, 1, "blocked select", op="blocked"),
    ev(3, 4.0, 2, "close d", op="close", chan="d", res="ok"),
    ev(4, 4.1, 2, "wake d", op="wake", chan="d", by="close", flow=9),
    ev(5, 5.0, 1, "woken select d", op="woken", chan="d", res="closed", dir="recv", select=True,
       case=0, flow=9)])
check(r.steps[-1]["text"].startswith("main runs again: its select (case 0) returns with ok false"),
      "a select woken by a close: %r" % r.steps[-1]["text"])

# A lane's last operation shows on its card at the step it is made: DONE, and what it did.
closer = r.steps[2]["state"]["lanes"]["2"]
check(closer[:2] == ["end", "closed d"], "the closer's card at its close: %r" % closer)

# A poll that finds the channel closed says it polled (Go's select with a default), not that it
# received.
r = Replay({1: "main"}, [ev(0, 1.0, 1, "make c", op="make", chan="c", cap=0, elemsize=0),
                         ev(1, 2.0, 1, "close c", op="close", chan="c", res="ok"),
                         ev(2, 3.0, 1, "recv c", op="recv", chan="c", form="try", res="closed")])
check(r.steps[-1]["text"].startswith("main polls c: it is closed and drained, so chan_tryrecv "
                                     "returns -EPIPE at once"), "a poll of a closed channel: %r"
      % r.steps[-1]["text"])

# A thread nobody named that first fires a timer is libchan's timer thread, and says so; a thread
# named by the program keeps its name.
r = Replay({1: "main"}, [ev(0, 1.0, 1, "make c", op="make", chan="c", cap=1, elemsize=8),
                         ev(1, 2.0, 2, "timer fire c", op="timer", chan="c"),
                         ev(2, 3.0, 3, "make d", op="make", chan="d", cap=0, elemsize=4),
                         ev(3, 4.0, 3, "timer fire d", op="timer", chan="d")])
check([l["name"] for l in r.data()["lanes"]] == ["main", "timer thread", "thread 1"],
      "the timer thread's lane: %r" % [l["name"] for l in r.data()["lanes"]])
check(r.steps[1]["text"].startswith("A timer fires at +") and
      ", on libchan's timer thread: it sends the time it fired" in r.steps[1]["text"],
      "a firing on the timer thread: %r" % r.steps[1]["text"])

# A wait on no channel (a nil channel's receive, a select whose cases are all nil): it parks
# with no sudog, and its time-out unlinks nothing.
r = Replay({1: "main"}, [
    ev(0, 1.0, 1, "blocked recv", op="blocked"),
    ev(1, 2.0, 1, "woken recv", op="woken", res="timedout", dir="recv", blocked_ns=1000),
    ev(2, 3.0, 1, "case 0 recv nil", op="case", case=0, dir="recv", n=1, nil=True),
    ev(3, 4.0, 1, "blocked select", op="blocked"),
    ev(4, 5.0, 1, "woken select", op="woken", res="timedout", dir="recv", select=True)])
texts = [s["text"] for s in r.steps]
check(not r.problems and len(texts) == 4 and "on a nil channel (NULL)" in texts[0] and
      "waited on no channel" in texts[1] and "no case has a channel" in texts[2] and
      "waited on no channel" in texts[3], "waits on no channel: %r %r" % (r.problems, texts))

# A file that is not a trace: one line on stderr that names it, exit status 2, no traceback;
# whatever is cut from a real trace, or changed in it, a problem or a picture, never a traceback.
with tempfile.TemporaryDirectory() as tmp:
    real = os.path.join(here, "..", "docs", "play", "traces", "close.json")
    with open(real, "rb") as f:
        whole = f.read()
    bad = {"empty": b"", "cut short": whole[:len(whole) // 2], "not UTF-8": b"\xff\xfe{}",
           "no traceEvents": b'{"foo": 1}', "traceEvents not a list": b'{"traceEvents": 5}',
           "an event not an object": b"[1, 2]",
           "ts not a number": b'{"traceEvents":[{"cat":"chan","ph":"X","ts":"x","tid":1,'
                              b'"name":"send c","args":{"op":"send","chan":"c"}}]}',
           "no tid": b'{"traceEvents":[{"cat":"chan","ph":"X","ts":1,"name":"x","args":{}}]}',
           "no args": b'{"traceEvents":[{"name":"thread_name","ph":"M","tid":1}]}',
           "a send without its channel": b'{"traceEvents":[{"cat":"chan","ph":"X","ts":1,'
                                         b'"tid":1,"name":"send","args":{"op":"send"}}]}',
           "dropped not a count": b'{"traceEvents":[],"otherData":{"dropped":"x"}}'}
    for what, text in sorted(bad.items()):
        path = os.path.join(tmp, "bad.json")
        with open(path, "wb") as f:
            f.write(text)
        for tool in ("trace2mermaid", "trace2play"):
            p = subprocess.run([sys.executable, os.path.join(here, tool), path],
                               capture_output=True, text=True)
            check(p.returncode == 2 and p.stderr.startswith(tool + ": " + path + ": ") and
                  "Traceback" not in p.stderr and not p.stdout,
                  "%s on a file %s: %d %r" % (tool, what, p.returncode, p.stderr[-300:]))
    for tool in ("trace2mermaid", "trace2play"):
        p = subprocess.run([sys.executable, os.path.join(here, tool), real, "-o",
                            os.path.join(tmp, "no", "such", "dir")], capture_output=True, text=True)
        check(p.returncode == 2 and "cannot write it" in p.stderr and "Traceback" not in p.stderr,
              "%s -o into a missing directory: %d %r" % (tool, p.returncode, p.stderr[-300:]))
    p = subprocess.run([sys.executable, os.path.join(here, "trace2play"),
                        os.path.join(tmp, "missing.json")], capture_output=True, text=True)
    check(p.returncode == 2 and "cannot read it" in p.stderr and "Traceback" not in p.stderr,
          "trace2play on a missing file: %d %r" % (p.returncode, p.stderr[-300:]))
    # Every event cut out of a real trace in turn: the tools still answer.
    doc = json.loads(whole)
    evs = doc["traceEvents"]
    for k in range(len(evs)):
        path = os.path.join(tmp, "cut.json")
        with open(path, "w") as f:
            json.dump(dict(doc, traceEvents=evs[:k] + evs[k + 1:]), f)
        for tool in ("trace2mermaid", "trace2play"):
            p = subprocess.run([sys.executable, os.path.join(here, tool), path],
                               capture_output=True, text=True)
            check(p.returncode in (0, 1) and "Traceback" not in p.stderr,
                  "%s on close.json without event %d: %d %r" % (tool, k, p.returncode,
                                                                p.stderr[-300:]))

print("[chantrace] checks: %d passed, %d failed" % (passed, len(failed)))
sys.exit(1 if failed else 0)
