# SPDX-License-Identifier: MIT
"""chantrace - read a libchan trace (CHAN_TRACE=file.json, chan_trace(3)) and replay it.

The one reader of libchan's traces in tools/, shared by its converters:
  - trace2mermaid draws a trace as a Mermaid sequence diagram or an SVG timeline;
  - trace2play replays it step by step, as the pages of docs/play/ show it.

load() reads the Chrome trace JSON that libchan's trace/json.c writes: the thread names and the
channel events (the "X" slices of category "chan"), in time order, each tagged with its index in
the file.

Replay rebuilds, event by event, what each channel's hchan held - the buffer's slots with their
values, recvx and sendx, the sendq and recvq with the sudog of every waiter, closed or open - and
what each thread (or G) was doing, and describes every step in the words of chan(7). How the
trace maps onto the hchan:
  - "blocked" slices (written at their start time) queue the thread's sudog: on its one channel,
    or for a select on the channel of each non-nil case (the "case" events before it); one with
    "form":"until" has a deadline, which may end it with no peer;
  - "wake" events are recorded under the channel lock by the thread that completed a waiter: the
    sudog they dequeue is that of the thread whose "woken" event ends the same flow;
  - a lane's own select after its "blocked" with no "woken" between: no peer ended the wait, a
    file descriptor that the select polls is ready (chan_io(3)); its sudogs leave the queues,
    and a receive on such an unbuffered channel with no sender is the fd's readiness;
  - a close and the wake-ups it made are one step; a completed operation that woke a peer adds
    nothing to the wake-up that already showed it;
  - in a trace that lost events (chan_trace(3)) a flow may have lost one end: a "woken" whose
    "wake" was dropped is a wait that ends with nobody shown waking it, and says so; a "wake"
    whose "woken" was dropped dequeues the first waiter, as the channel does. No arrow is drawn
    from or to an event that is not there.
Events recorded under a channel lock are in lock order. A buffered send or receive that did not
wait is recorded after the fact (on the lock-free ring, without any lock), so its event can come
microseconds after a peer's that depends on it; Replay moves such an event back to where the
buffer needs it (the first consistent order, counted in .repaired) and reports anything else that
does not add up in .problems.
"""
import json

# ---- Reading ------------------------------------------------------------------------------


class TraceError(Exception):
    """A file that is not a libchan trace: unreadable, not JSON (a trace cut short), or JSON
    without the fields of chan_trace(3)'s events. Its text says where."""


# The events whose args always name a channel (json.c writes "chan" for them).
NEEDS_CHAN = {"make", "free", "name", "send", "recv", "wake", "close", "timer", "role"}


def _check_event(i, e):
    """Raises TraceError unless e (traceEvents[i], a channel event) has what the readers use."""
    def bad(what):
        raise TraceError("event %d (%.60s): %s" % (i, json.dumps(e), what))
    if not isinstance(e.get("ts"), (int, float)) or isinstance(e.get("ts"), bool):
        bad('no number "ts"')
    if not isinstance(e.get("tid"), int) or isinstance(e.get("tid"), bool):
        bad('no integer "tid"')
    a = e.get("args")
    if not isinstance(a, dict) or not isinstance(a.get("op"), str):
        bad('no "args" with a string "op"')
    if not isinstance(e.get("name"), str):
        bad('no string "name"')
    if a["op"] in NEEDS_CHAN and not isinstance(a.get("chan"), str):
        bad('a "%s" without a string "chan"' % a["op"])
    for k in ("flow", "woke", "g", "cap", "case", "n", "elemsize", "v", "v2", "thread",
              "goroutine", "blocked_ns", "deadline_in_ns"):
        if k in a and (not isinstance(a[k], int) or isinstance(a[k], bool)):
            bad('"%s" is not an integer' % k)


def load(path, info=None):
    """(names, events): thread names by tid, and the channel slices in time order. Each event
    gets "_i", its index in the file's traceEvents. info, a dict if given, gets "dropped": the
    events the trace lost (chan_trace_dropped), without which it may not add up, and "t0_ns",
    the trace's start on the program's clock (chan_now()), or None. Raises TraceError (never
    another exception) when path cannot be read or is not such a trace."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except OSError as x:
        raise TraceError("cannot read it: %s" % (x.strerror or x))
    except UnicodeDecodeError as x:
        raise TraceError("not a trace: byte %d is not UTF-8" % x.start)
    except ValueError as x:  # json.JSONDecodeError
        raise TraceError("not JSON (a trace cut short?): %s" % x)
    other = doc.get("otherData", {}) if isinstance(doc, dict) else {}
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        raise TraceError('not a trace: no "traceEvents" list')
    if not isinstance(other, dict):
        raise TraceError('"otherData" is not an object')
    dropped = other.get("dropped", 0)
    if not isinstance(dropped, int) or isinstance(dropped, bool) or dropped < 0:
        raise TraceError('"otherData" has a "dropped" that is not a count: %r' % (dropped,))
    if info is not None:
        info["dropped"] = dropped
        t0 = other.get("t0_ns")
        info["t0_ns"] = t0 if isinstance(t0, int) and not isinstance(t0, bool) else None
    names = {}
    chan_events = []
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            raise TraceError("event %d is not an object" % i)
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            a = e.get("args")
            if not isinstance(e.get("tid"), int) or not isinstance(a, dict) or \
                    not isinstance(a.get("name"), str):
                raise TraceError("event %d: a thread_name without a tid and a string name" % i)
            names[e["tid"]] = a["name"]
        elif e.get("cat") == "chan" and e.get("ph") == "X":
            _check_event(i, e)
            e["_i"] = i
            chan_events.append((float(e["ts"]), i, e))
    chan_events.sort(key=lambda t: (t[0], t[1]))
    return names, [e for _, _, e in chan_events]


def lost(info):
    """The warning for a trace that lost events (load's info), or None."""
    n = info.get("dropped", 0)
    if not n:
        return None
    return ("the trace lost %d event%s (no buffer for a thread, or a full one: raise "
            "CHAN_TRACE_THREADS or CHAN_TRACE_EVENTS, chan_trace(3)), so it may not add up"
            % (n, "" if n == 1 else "s"))


def flows(events):
    """(woken_by_flow, wake_ts): the "woken" event that ends each flow, and the time of the
    "wake" that starts it. In a trace that lost events a flow may be in one and not the other:
    its other end was dropped."""
    woken, wake_ts = {}, {}
    for e in events:
        a = e["args"]
        if a.get("op") == "woken" and a.get("flow"):
            woken[a["flow"]] = e
        if a.get("op") == "wake":
            wake_ts[a["flow"]] = float(e["ts"])
    return woken, wake_ts


# ---- Replay: the hchan of every channel, and every thread, step by step ---------------------

FUNCS = {("send", "block"): "chan_send", ("send", "try"): "chan_trysend",
         ("send", "until"): "chan_send_until", ("recv", "block"): "chan_recv",
         ("recv", "try"): "chan_tryrecv", ("recv", "until"): "chan_recv_until",
         ("select", "block"): "chan_select", ("select", "try"): "chan_tryselect",
         ("select", "until"): "chan_select_until"}


class Chan:
    """One life of a channel: Go's hchan as the trace shows it."""

    def __init__(self, label, cap, elemsize):
        self.label, self.cap, self.elemsize = label, cap, elemsize
        self.buf = {}  # slot -> value (None: a value not recorded, or a signal)
        self.n = self.rx = self.sx = 0
        self.closed = self.freed = False
        self.timer = False  # a timer's channel: its values are times (chan_now(), in ns)
        self.fired = False  # its timer has fired
        self.sendq, self.recvq = [], []  # sudogs, head first
        self.dropped = []

    def put(self, v):
        slot = self.sx
        self.buf[slot] = v
        self.sx = (self.sx + 1) % self.cap
        self.n += 1
        return slot

    def take(self):
        slot = self.rx
        v = self.buf.pop(slot, None)
        self.rx = (self.rx + 1) % self.cap
        self.n -= 1
        return slot, v

    def head(self):
        return self.buf.get(self.rx) if self.n else None

    def queue(self, send):
        return self.sendq if send else self.recvq

    def snapshot(self):
        sg = lambda q: [[s["lane"], s["v"], s["case"], s["done"]] for s in q]
        return {"n": self.n, "rx": self.rx, "sx": self.sx, "closed": self.closed,
                "live": not self.freed, "buf": [[k, v] for k, v in sorted(self.buf.items())],
                "sendq": sg(self.sendq), "recvq": sg(self.recvq), "dropped": list(self.dropped)}


class Replay:
    """Steps of a trace, each with what happened, why, the values that moved, and the state of
    every channel and lane after it. Lanes are threads, or Gs when the trace names them. t0: the
    trace's start on the program's clock (load's info["t0_ns"]), for the times a timer's
    channel carries."""

    def __init__(self, names, events, t0=None):
        self.names, self.t0 = names, t0
        self.shown = {}  # a value drawn as something else: a time, by its raw value
        self.deadline_in = {}  # lane -> how far its deadline was when it blocked (ns)
        self.events = list(events)
        self.woken, self.wake_ts = flows(self.events)
        self.op_by_woke = {e["args"]["woke"]: e for e in self.events if e["args"].get("woke")}
        self.lanes, self.lane_order = {}, []
        self.chans, self.chan_meta = {}, []  # label -> current Chan; one meta per life
        self.steps = []
        self.cases = {}  # lane -> the "case" events of the select it is in
        self.flow_step = {}  # flow -> index of the step of its wake-up
        self.repaired, self.problems = 0, []
        self.numbered = 0
        self.run()

    # -- lanes and labels --

    def lane_of(self, e):
        g = e["args"].get("g")
        return "g%d" % g if g else e["tid"]

    def lane(self, lid, e=None):
        if lid not in self.lanes:
            if isinstance(lid, str):
                name = "G" + lid[1:]
            else:
                name = self.names.get(lid, "")
                if (not name or name.startswith("thread ")) and e is not None and \
                        e["args"].get("op") == "timer":
                    # A thread nobody named whose first event is a firing: libchan's timer
                    # thread (a timer due when armed fires in the arming call, whose thread
                    # made the timer's channel first).
                    name = "timer thread"
                elif not name or name.startswith("thread "):
                    self.numbered += 1
                    name = "thread %d" % self.numbered
            self.lanes[lid] = {"name": name, "st": "new", "op": "", "v": None, "hv": False}
            self.lane_order.append(lid)
        return self.lanes[lid]

    def who(self, lid):
        return self.lane(lid)["name"]

    def chan(self, label, e=None):
        c = self.chans.get(label)
        if c is None or c.freed:
            a = e["args"] if e else {}
            c = Chan(label, a.get("cap", 0), a.get("elemsize", 4))
            self.chans[label] = c
            self.chan_meta.append({"id": len(self.chan_meta), "label": label, "cap": c.cap,
                                   "elemsize": c.elemsize, "first": len(self.steps)})
            c.id = self.chan_meta[-1]["id"]
            c.made = float(e["ts"]) if e is not None and a.get("op") == "make" else None
        return c

    def of(self, c, who, v):
        """who's value: "worker's 4", or "worker's signal" on a signal-only channel."""
        return "%s's %s" % (who, "signal" if c.elemsize == 0 else "value" if v is None else
                            self.val(c, v))

    def val(self, c, v):
        if c is not None and c.elemsize == 0:
            return "a signal"
        if v is not None and c is not None and c.timer:
            return "the time %s" % self.time(v)
        return "a value" if v is None else str(v)

    def time(self, v):
        """A time on the program's clock (a timer's value, chan_now()) as the page shows every
        time: from the trace's start, in human units ("+59.6 ms"); drawn so too (shown)."""
        if self.t0 is None:
            return "%d ns on chan_now()'s clock" % v
        label = ("+" if v >= self.t0 else "-") + fmt_ns(abs(v - self.t0))
        self.shown[str(v)] = label
        return label

    # -- steps --

    def step(self, e, kind, lane, text, chan=None, moves=(), wakes=()):
        s = {"t": round(float(e["ts"]), 3), "lane": lane, "chan": chan.id if chan else None,
             "kind": kind, "text": text, "moves": list(moves), "wakes": list(wakes),
             "ev": [e["_i"]]}
        self.steps.append(s)
        return s

    def snapshot(self, s):
        s["state"] = {
            "lanes": {str(l): [x["st"], x["op"], x["v"], x["hv"]]
                      for l, x in self.lanes.items()},
            "chans": {str(c.id): c.snapshot() for c in self.live_chans()}}

    def live_chans(self):
        seen = {}
        for c in self.all_chans:
            seen[c.id] = c
        return list(seen.values())

    # -- the buffer's order (see the module's comment) --

    def buffer_op(self, e):
        """'put' or 'take' for a buffered send or receive that completed without waiting."""
        a = e["args"]
        op = a.get("op")
        if op not in ("send", "recv", "select") or a.get("res") != "ok" or a.get("woke"):
            return None
        c = self.chans.get(a.get("chan"))
        if c is None or c.cap == 0:
            return None
        d = a.get("dir", op)
        return "put" if d == "send" else "take"

    def missing(self, e):
        """What the buffer of e's channel lacks for e to happen now: 'put', 'take' or None."""
        a = e["args"]
        op = a.get("op")
        c = self.chans.get(a.get("chan"))
        kind = self.buffer_op(e)
        if kind == "put":
            return "take" if c.n >= c.cap else None
        if kind == "take":
            if c.n == 0:
                return "put"
            v = a.get("v")
            return "put" if v is not None and c.head() is not None and c.head() != v else None
        if c is None or c.cap == 0 or c.closed:
            return None
        if op == "blocked" and "chan" in a:
            send = e["name"].startswith("blocked send")
            if send and c.n < c.cap:
                return "put"
            if not send and c.n > 0:
                return "take"
        if op == "wake" and a.get("by") == "recv" and c.n < c.cap:
            return "put"
        if op == "wake" and a.get("by") == "send" and c.n > 0:
            return "take"
        return None

    def repair(self, i):
        """Moves a later buffered operation of another lane before events[i] while events[i]
        needs it; True when it did."""
        e = self.events[i]
        need = self.missing(e)
        if not need:
            return False
        label = e["args"].get("chan")
        for j in range(i + 1, len(self.events)):
            f = self.events[j]
            if self.lane_of(f) == self.lane_of(e):
                continue
            if f["args"].get("chan") == label and self.buffer_op(f) == need:
                between = self.events[i:j]
                if any(self.lane_of(x) == self.lane_of(f) for x in between):
                    break  # its lane did something in between: not a late event
                self.events.insert(i, self.events.pop(j))
                self.repaired += 1
                return True
        return False

    # -- the walk --

    def run(self):
        self.all_chans = []
        last_event = {}
        for e in self.events:
            last_event[self.lane_of(e)] = e["_i"]
        i = 0
        while i < len(self.events):
            n = len(self.steps)
            e = self.events[i]
            try:
                for _ in range(8):
                    if not self.repair(i):
                        break
                e = self.events[i]
                need = self.missing(e)
                if need:
                    self.problems.append("step %d: %s on %s needs a %s that the trace does not "
                                         "have before it" % (len(self.steps), e["name"],
                                                             e["args"].get("chan"), need))
                lid = self.lane_of(e)
                self.lane(lid, e)
                if e["args"].get("op") == "close":
                    self.gather_close(i)
                n = len(self.steps)
                self.apply(e, lid)
                if last_event.get(lid) == e["_i"] and self.lanes[lid]["st"] == "run":
                    # DONE from here on; the card still says what it just did (its op)
                    self.lanes[lid]["st"] = "end"
            except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as x:
                # A trace that lost events, or was edited, can leave an event with nothing
                # to act on (a send on an unbuffered channel with no receiver): say so, go on.
                self.problems.append("step %d: %s (event %d) cannot be replayed on what came "
                                     "before it (%s: %s)" % (len(self.steps), e.get("name"),
                                                             e.get("_i", i),
                                                             type(x).__name__, x))
            if len(self.steps) > n or (self.steps and e["_i"] in self.steps[-1]["ev"]):
                self.snapshot(self.steps[-1])
            i += 1
        for s in self.steps:
            s.setdefault("state", None)
        for m in self.chan_meta:
            m.setdefault("last", len(self.steps) - 1)

    def gather_close(self, i):
        """Brings the wake-ups a close made (under the same lock hold) right after it: events
        of other lanes may fall between them in time."""
        e = self.events[i]
        lid, label = self.lane_of(e), e["args"].get("chan")
        at = i + 1
        for j in range(i + 1, len(self.events)):
            f = self.events[j]
            if self.lane_of(f) != lid:
                continue
            a = f["args"]
            if a.get("op") != "wake" or a.get("by") != "close" or a.get("chan") != label:
                break
            self.events.insert(at, self.events.pop(j))
            at += 1

    def track(self, c):
        if c not in self.all_chans:
            self.all_chans.append(c)

    def apply(self, e, lid):
        a = e["args"]
        op = a.get("op")
        me = self.lanes[lid]
        label = a.get("chan")
        c = self.chan(label, e) if label and op != "case" else None
        if c is not None:
            self.track(c)
        name = self.who(lid)
        if op == "make":
            me["st"], me["op"] = "run", "made %s" % label
            kind = ("an unbuffered channel (cap 0)" if c.cap == 0 else
                    "a buffered channel with %d slot%s (cap %d)" % (c.cap, "" if c.cap == 1 else "s", c.cap))
            elem = ("signal-only: elemsize 0, it carries no data" if c.elemsize == 0 else
                    "elements of %d bytes" % c.elemsize)
            self.step(e, "make", lid, "%s makes %s: %s, %s. It is open and empty; nobody "
                      "waits on it." % (name, label, kind, elem), c)
        elif op == "free":
            c.freed = True
            me["st"], me["op"] = "run", "freed %s" % label
            left = " The %d value%s still buffered %s discarded." % (
                c.n, "" if c.n == 1 else "s", "is" if c.n == 1 else "are") if c.n else ""
            self.chan_meta[c.id]["last"] = len(self.steps)
            if c.timer:  # chan_timer_free: the timer and its channel go together
                self.step(e, "free", lid, "%s frees the timer of %s (chan_timer_free), and its "
                          "channel with it: %s.%s" % (
                              name, label, "it has fired, and nobody waits on it any more"
                              if c.fired else "it has not fired, so it is stopped and never "
                              "will; nobody waits on its channel any more", left), c)
            else:
                self.step(e, "free", lid, "%s frees %s: nobody waits on it any more.%s" %
                          (name, label, left), c)
        elif op == "role":  # what libchan made it for: a timer's values are times
            c.timer = a.get("role") == "timer"
            s = self.steps[-1] if self.steps else None
            if c.timer and s and s["kind"] == "make" and s["chan"] == c.id:
                s["ev"].append(e["_i"])
                s["text"] += " It is a timer's channel (chan_timer_make; Go's time.After): " \
                    "when the timer fires, it sends the time on it."
        elif op == "case":
            self.cases.setdefault(lid, []).append(a)
        elif op == "blocked":
            self.blocked(e, lid, c)
        elif op == "wake":
            self.wake(e, lid, c)
        elif op == "woken":
            self.woken_step(e, lid, c)
        elif op == "close":
            self.close(e, lid, c)
        elif op in ("send", "recv", "select"):
            self.done_op(e, lid, c)
        elif op == "leak":
            self.leak(e, lid, c)
        elif op == "timer":
            me["st"], me["op"] = "run", "timer fires"
            c.timer = c.fired = True
            made = c.made
            when = " at %s" % fmt_t(float(e["ts"])) if made is None else \
                " at %s, %s after it was made" % (fmt_t(float(e["ts"])),
                                                fmt_ns((float(e["ts"]) - made) * 1000))
            # On libchan's timer thread, or in the call that armed a timer already due.
            self.step(e, "timer", lid, "A timer fires%s, on %s: it sends the time it fired "
                      "(chan_now(); Go's time.Time) on %s." % (
                          when, "libchan's " + name if name == "timer thread" else name,
                          label), c)

    # -- leaks --

    def wait_reason(self, a, lid):
        return wait_reason(a, bool(self.cases.get(lid)))

    def leak(self, e, lid, c):
        """A "partial deadlock" event: the check that lane lid made (chan_leak_check) found a
        waiter blocked forever, on the channel c it names first (None: on no channel)."""
        a = e["args"]
        g, tid = a.get("goroutine"), a.get("thread")
        target = "g%d" % g if g is not None else tid
        wl, name = self.lane(target), self.who(target)
        me = self.lanes[lid]
        me["st"], me["op"] = "run", "found a leak"
        why = self.wait_reason(a, target)
        # every channel it waits on: the sudogs it still has queued (a select has several)
        on = [(o.label, send) for o in self.all_chans for send in (True, False)
              for sg in o.queue(send) if sg["lane"] == target and not sg["done"]]
        if not on and c is not None:
            on = [(c.label, a.get("waits") == "send")]
        head = "goroutine %d" % g if g is not None else "thread %d%s" % (
            tid, "" if name.startswith("thread ") else ' "%s"' % name)
        since = a.get("blocked_ns")
        report = "%s [%s%s]:%s" % (head, why, ", " + report_ns(since) if since else "", "".join(
            ' chan "%s" %s;' % (lab, "send" if send else "recv") for lab, send in on))
        report = report.rstrip(";")
        labels = ", ".join(lab for lab, _ in on)
        if on:
            held = "nothing that can still run holds %s: no peer can ever come to %s it" % (
                labels, "receive from" if on[0][1] and len(on) == 1 else
                "send on" if len(on) == 1 else "complete any of its cases on")
        else:
            held = "it waits on no channel and has no deadline: nothing can ever wake it"
        wl["st"] = "leaked"
        wl["op"] = "leaked: %s" % why
        how = {"send": "sending on", "recv": "receiving from"}.get(a.get("waits"), "selecting on")
        self.step(e, "leak", lid, "%s's chan_leak_check finds a partial deadlock: %s, blocked "
                  "%s%s (Go's wait reason \"%s\"), is blocked forever, because %s. It has "
                  "leaked, while the rest of the program runs on; Go's own deadlock report "
                  "comes only once every goroutine is asleep. The report, in the words of "
                  "Go's goroutine dump: %s" % (
                      self.who(lid), name, "for %s " % fmt_ns(since) if since else "",
                      "%s %s" % (how, labels) if on else "on no channel", why, held, report),
                  c)["leaks"] = [target]  # who was found: no wake-up, nobody signalled

    # -- blocking --

    def case_text(self, cs, lid):
        parts = []
        for k in cs:
            if k.get("nil"):
                parts.append("case %d %s on a nil channel (switched off: it gets no sudog "
                             "and is never chosen)" % (k["case"], k["dir"]))
            elif k["dir"] == "send":
                parts.append("case %d send %s on %s" % (
                    k["case"], self.val(self.chans.get(k["chan"]), k.get("v")), k["chan"]))
            else:
                parts.append("case %d receive on %s" % (k["case"], k["chan"]))
        more = (cs[-1].get("n", 0) - len(cs)) if cs else 0
        if more > 0:  # a trace records the first 16 cases of a select
            parts.append("and %d more case%s that the trace does not list" % (
                more, "" if more == 1 else "s"))
        return "; ".join(parts)

    def blocked(self, e, lid, c):
        a = e["args"]
        me, name = self.lanes[lid], self.who(lid)
        me["st"] = "blocked"
        end = " It is still blocked when the trace ends." if a.get("at_end") else ""
        sel = e["name"].startswith("blocked select")
        timed = a.get("form") == "until"  # a deadline (chan_*_until): the wait may end alone
        if "deadline_in_ns" in a:
            self.deadline_in[lid] = a["deadline_in_ns"]
        # how far it is: "its deadline (in 30.0 ms)" (traces say since "deadline_in_ns")
        dl = "its deadline" + (" (in %s)" % fmt_ns(a["deadline_in_ns"])
                               if "deadline_in_ns" in a else "")
        if c is None and not sel:  # a send or receive on a nil channel (NULL)
            what = "sends" if e["name"].startswith("blocked send") else "receives"
            me["op"] = "%s on a nil channel" % what[:-1]
            self.step(e, "block", lid, "%s %s on a nil channel (NULL): no peer can ever come, "
                      "so it parks with no sudog, %s.%s" % (
                          name, what, "until " + dl if timed else "forever", end),
                      None)
            return
        if c is None:  # a select: one sudog on the channel of each non-nil case
            cs = self.cases.get(lid, [])
            live = [k for k in cs if not k.get("nil")]
            if not live:
                me["op"] = "select with no channel"
                self.step(e, "block", lid, "%s selects%s: no case has a channel, so none can "
                          "ever be ready; it parks with no sudog, %s.%s" % (
                              name, " (%s)" % self.case_text(cs, lid) if cs else "",
                              "until " + dl if timed else
                              "forever (Go's select {})", end), None)
                return
            moves = []
            for k in live:
                ch = self.chan(k["chan"])
                self.track(ch)
                send = k["dir"] == "send"
                ch.queue(send).append({"lane": lid, "v": k.get("v") if send else None,
                                       "case": k["case"], "done": False})
                moves.append({"v": k.get("v") if send else None, "kind": "sudog",
                              "from": ["lane", lid], "to": ["sudog", ch.id, send, lid]})
            me["op"] = "select on %d case%s" % (len(cs), "" if len(cs) == 1 else "s")
            if len(live) == 1:
                how = "one sudog on %s, for its one live case, and parks until that case is " \
                    "ready%s" % (live[0]["chan"], ", or until %s passes" % dl if timed else "")
            else:
                how = "one sudog on the channel of each live case (%d in all, sharing one " \
                    "wake-up) and parks; the first case to become ready wins%s" % (
                        len(live), ", unless %s passes first" % dl if timed else "")
            self.step(e, "block", lid, "%s selects: %s. No case is ready, so %s queues %s.%s" %
                      (name, self.case_text(cs, lid), name, how, end), None, moves)
            return
        send = e["name"].startswith("blocked send")
        v = a.get("v")
        c.queue(send).append({"lane": lid, "v": v if send else None, "case": None,
                              "done": False})
        if send:
            me["op"] = "send %s on %s" % (self.val(c, v), c.label)
            why = ("no receiver is waiting, and an unbuffered channel has no buffer" if c.cap == 0
                   else "the buffer is full (%d of %d)" % (c.n, c.cap))
            tail = ("until a receiver takes the value" if c.cap == 0 else
                    "until a receiver makes room: back-pressure")
            if timed:
                tail = tail.replace("until a receiver", "until %s, or until a receiver" % dl)
            text = "%s sends %s on %s: %s, so %s queues a sudog holding %s on the sendq and " \
                   "parks %s." % (name, self.val(c, v), c.label, why, name, self.val(c, v), tail)
        else:
            me["op"] = "receive on %s" % c.label
            why = ("no sender is waiting" if c.cap == 0 else
                   "the buffer is empty and no sender waits")
            text = "%s receives on %s: %s, so %s queues a sudog on the recvq and parks until " \
                   "a value arrives%s." % (name, c.label, why, name, ", a close, or " + dl
                                           if timed else " (or a close)")
        self.step(e, "block", lid, text + end, c,
                  [{"v": v if send else None, "kind": "sudog", "from": ["lane", lid],
                    "to": ["sudog", c.id, send, lid]}])

    def dequeue(self, c, send, target):
        """Removes the sudogs of lane `target` (the one the waker won) from c, both queues, and
        marks its sudogs on other channels done (a select's lingering sudogs). Returns the
        sudog it took."""
        q = c.queue(send)
        first = next((s for s in q if not s["done"]), None)
        if target is None and first is not None:
            target = first["lane"]
        if first is not None and first["lane"] != target:
            self.problems.append("step %d: %s dequeued %s, not the first waiter %s" % (
                len(self.steps), c.label, target, first["lane"]))
        took = next((s for s in q if s["lane"] == target and not s["done"]), None)
        c.sendq = [s for s in c.sendq if s["lane"] != target]
        c.recvq = [s for s in c.recvq if s["lane"] != target]
        for o in self.all_chans:
            for s in o.sendq + o.recvq:
                if s["lane"] == target:
                    s["done"] = True
        return target, took

    def wake(self, e, lid, c):
        a = e["args"]
        me, name = self.lanes[lid], self.who(lid)
        w = self.woken.get(a.get("flow"))
        target = self.lane_of(w) if w else None
        if a.get("by") == "close":
            self.close_wake(e, lid, c, target)
            return
        send = a.get("by") == "send"
        target, took = self.dequeue(c, not send, target)
        if target is None:
            self.problems.append("step %d: a wake-up on %s with nobody waiting" % (
                len(self.steps), c.label))
            return
        self.flow_step[a.get("flow")] = len(self.steps)
        other, wl = self.who(target), self.lanes[target]
        wl["st"] = "ready"
        sel = self.cases.pop(lid, None)
        op = self.op_by_woke.get(a.get("flow"))
        pre = ""
        if sel is not None:
            k = op["args"].get("case") if op else None
            pre = "%s selects (%s): case %s is ready. " % (name, self.case_text(sel, lid),
                                                          k if k is not None else "?")
        wsel = " (its select's case %s fires)" % w["args"]["case"] if w and w["args"].get(
            "select") and "case" in w["args"] else ""
        v = a.get("v")
        me["st"] = "run"
        if send:
            wl["v"], wl["hv"] = v, c.elemsize > 0
            wl["op"] = "received %s on %s" % (self.val(c, v), c.label)
            me["op"] = "sent %s on %s" % (self.val(c, v), c.label)
            empty = "" if c.cap == 0 else ", the buffer is empty"
            text = "%s%s sends %s on %s: %s is waiting in the recvq%s, so the value goes " \
                   "straight into %s's variable, its sudog leaves the queue and %s is made " \
                   "ready%s. %s's send returns: the value has been delivered." % (
                       pre, name, self.val(c, v), c.label, other, empty, other, other, wsel,
                       name)
            moves = [{"v": v, "kind": "handoff", "from": ["lane", lid],
                      "to": ["lane", target]}]
        elif c.cap == 0:
            wv = v if v is not None else a.get("v2")
            me["v"], me["hv"] = wv, c.elemsize > 0
            me["op"] = "received %s on %s" % (self.val(c, wv), c.label)
            wl["op"] = "sent %s on %s" % (self.val(c, wv), c.label)
            text = "%s%s receives on %s: %s waits in the sendq with %s, so %s takes it straight " \
                   "from %s's sudog and makes %s ready%s: %s's send completes now, delivered." % (
                       pre, name, c.label, other, self.val(c, wv), name, other, other, wsel,
                       other)
            moves = [{"v": wv, "kind": "handoff", "from": ["sudog", c.id, True, target],
                      "to": ["lane", lid]}]
        else:  # buffered and full: take the head, move the sender's value to the tail
            v2 = a.get("v2", took["v"] if took else None)
            slot, hv = c.take()
            hv = v if v is not None else hv
            tail = c.put(v2)
            me["v"], me["hv"] = hv, c.elemsize > 0
            me["op"] = "received %s on %s" % (self.val(c, hv), c.label)
            wl["op"] = "sent %s on %s" % (self.val(c, v2), c.label)
            text = "%s%s receives on %s: the buffer is full and %s waits in the sendq with %s. " \
                   "%s takes %s from the head (slot %d) and moves %s into the slot that " \
                   "frees, at the tail (slot %d), then makes %s ready%s: FIFO order holds, " \
                   "and %s's send completes." % (
                       pre, name, c.label, other, self.val(c, v2), name, self.val(c, hv), slot,
                       self.of(c, other, v2), tail, other, wsel, other)
            moves = [{"v": hv, "kind": "take", "from": ["slot", c.id, slot],
                      "to": ["lane", lid]},
                     {"v": v2, "kind": "put", "from": ["sudog", c.id, True, target],
                      "to": ["slot", c.id, tail]}]
        s = self.step(e, "wake", lid, text, c, moves, [target])
        if op:
            s["ev"].append(op["_i"])

    def close(self, e, lid, c):
        a = e["args"]
        me, name = self.lanes[lid], self.who(lid)
        me["st"] = "run"
        if a.get("res") != "ok":
            me["op"] = "closed %s again" % c.label
            self.step(e, "close", lid, "%s closes %s again: it is already closed, so chan_close "
                      "returns -EPIPE and nothing changes (Go would panic)." % (name, c.label), c)
            return
        c.closed = True
        me["op"] = "closed %s" % c.label
        drain = (" Values still buffered (%d) are received first." % c.n) if c.n else ""
        self.step(e, "close", lid, "%s closes %s. A close signals without data, and to "
                  "everybody: nobody is waiting now, and every receive from now on returns at "
                  "once.%s" % (name, c.label, drain), c)

    def close_wake(self, e, lid, c, target):
        target, took = self.dequeue_any(c, target)
        s = self.steps[-1] if self.steps and self.steps[-1]["kind"] == "close" else None
        if target is None:
            return
        wl = self.lanes[target]
        wl["st"] = "ready"
        send = took is not None and took.get("send")
        wl["op"] = "woken by the close of %s" % c.label
        if not send:
            wl["v"], wl["hv"] = None, c.elemsize > 0
        if s is None:  # the close was dropped: no step of it to point the flow at
            return
        self.flow_step[e["args"].get("flow")] = len(self.steps) - 1
        s["ev"].append(e["_i"])
        s["wakes"].append(target)
        s["moves"].append({"v": None, "kind": "close", "from": ["chan", c.id],
                           "to": ["lane", target]})
        woke = [self.who(t) for t in s["wakes"]]
        lst = woke[0] if len(woke) == 1 else ", ".join(woke[:-1]) + " and " + woke[-1]
        drain = (" Values still buffered (%d) are received first." % c.n) if c.n else ""
        if len(woke) == 1:
            s["text"] = "%s closes %s. A close signals without data, and to everybody: it " \
                        "wakes the one waiter, %s, and every receive from now on returns at " \
                        "once.%s" % (self.who(lid), c.label, lst, drain)
            return
        # chan_close takes every sudog off the recvq, then the sendq, each from its head, and
        # wakes them in that order once unlocked; Go's closechan pushes them on a gList, a
        # stack, and readies them in reverse, and the language promises no order at all.
        s["text"] = "%s closes %s. A close signals without data, and to everybody: it wakes " \
                    "every waiter at once (%s: %d in all), and every receive from now on " \
                    "returns at once. libchan's chan_close makes them ready in queue order, " \
                    "receivers first (which runs first is the scheduler's choice); Go's " \
                    "closechan readies them in reverse and promises no order: a program must " \
                    "not rely on one.%s" % (
                        self.who(lid), c.label, lst, len(woke), drain)

    def dequeue_any(self, c, target):
        for send in (False, True):
            for s in c.queue(send):
                if s["lane"] == target or (target is None and not s["done"]):
                    s = dict(s, send=send)
                    t, _ = self.dequeue(c, send, s["lane"])
                    return t, s
        return target, None

    def woken_step(self, e, lid, c):
        a = e["args"]
        me, name = self.lanes[lid], self.who(lid)
        res, sel = a.get("res"), a.get("select")
        cs = self.cases.pop(lid, None) if sel else None
        me["st"] = "run"
        took = ""
        blocked = a.get("blocked_ns")
        if blocked is not None:
            took = " It had been blocked for %s." % fmt_ns(blocked)
        what = "select" if sel else ("send" if a.get("dir") == "send" else "receive")
        # Whatever the outcome, its remaining sudogs leave the queues now.
        leftover = [o for o in self.all_chans if any(s["lane"] == lid for s in o.sendq + o.recvq)]
        for o in leftover:
            o.sendq = [s for s in o.sendq if s["lane"] != lid]
            o.recvq = [s for s in o.recvq if s["lane"] != lid]
        due = self.deadline_in.pop(lid, None)
        if res == "timedout":
            me["op"] = "timed out"
            if blocked is not None and due is not None:
                # both from its "blocked": blocked_ns to its "woken", when it ran again
                took = " It had been blocked for %s, its deadline %s after it blocked: a " \
                    "time-out never ends a wait early, and this one woke %s after it." % (
                        fmt_ns(blocked), fmt_ns(due), fmt_ns(max(0, blocked - due)))
            fn = "chan_select_until" if sel else (
                "chan_send_until" if a.get("dir") == "send" else "chan_recv_until")
            if c is None and not leftover:  # it waited on no channel (nil, or select {})
                self.step(e, "timeout", lid, "%s's deadline passes: %s returns -ETIMEDOUT; it "
                          "waited on no channel, and nothing moved.%s" % (name, fn, took), None)
                return
            where = ", ".join(o.label for o in leftover) or (c.label if c else "its channel")
            self.step(e, "timeout", lid, "%s's deadline passes: %s returns -ETIMEDOUT. It wins "
                      "its own wake-up and unlinks its sudog%s from %s: nothing moved.%s" % (
                          name, fn, "s" if sel and len(leftover) > 1 else "", where, took), c)
            return
        v = a.get("v")
        label = c.label if c else "?"
        if a.get("flow") and a["flow"] not in self.wake_ts:
            took += " Who woke it is not in the trace: that event was dropped (chan_trace(3))."
        unlink = (" It unlinks its sudogs from the other channels (%s)." %
                  ", ".join(o.label for o in leftover)) if sel and leftover else ""
        if res == "closed":
            me["op"] = "saw %s closed" % label
            if a.get("dir") == "send":
                text = "%s runs again: its %s returns -EPIPE: %s was closed while it waited; " \
                       "its value was not delivered.%s%s" % (name, what, label, unlink, took)
            else:
                text = "%s runs again: its %s%s returns %s: %s was closed. No value: the " \
                       "close itself is the signal.%s%s" % (
                           name, what, " (case %s)" % a.get("case") if sel and "case" in a else "",
                           "with ok false" if sel else "-EPIPE", label, unlink, took)
        elif a.get("dir") == "send":
            me["op"] = "sent %s on %s" % (self.val(c, v), label)
            k = self.flow_step.get(a.get("flow"))
            peer = self.who(self.steps[k]["lane"]) if k is not None else "a receiver"
            if c is not None and c.cap > 0 and k is not None and \
                    self.steps[k]["moves"][-1]["kind"] == "put":
                where = "%s is in the buffer now, in the slot %s freed" % (self.val(c, v), peer)
            else:
                where = "%s took %s: delivered" % (peer, self.val(c, v))
            text = "%s runs again: its %s%s returns: %s.%s%s" % (
                name, what, " (case %s)" % a.get("case") if sel else "", where, unlink, took)
        else:
            me["v"], me["hv"] = v, bool(c and c.elemsize > 0)
            me["op"] = "received %s on %s" % (self.val(c, v), label)
            text = "%s runs again: its %s%s returns with %s from %s.%s%s" % (
                name, what, " (case %s)" % a.get("case") if sel else "", self.val(c, v), label,
                unlink, took)
        if sel and cs:
            text += " (It had selected on: %s.)" % self.case_text(cs, lid)
        self.step(e, "woken", lid, text, c)

    def done_op(self, e, lid, c):
        """A send, receive or select that completed without blocking."""
        a = e["args"]
        me, name = self.lanes[lid], self.who(lid)
        op, res, form = a.get("op"), a.get("res"), a.get("form", "block")
        fn = FUNCS.get((op, form), op)
        cs = self.cases.pop(lid, None) if op == "select" else None
        if a.get("woke"):  # its wake-up step told it
            k = self.flow_step.get(a["woke"])
            if k is not None:
                self.steps[k]["ev"].append(e["_i"])
            return
        d = a.get("dir", op)
        if me["st"] == "blocked":  # a wait that no peer ended: a file descriptor is ready
            for o in self.all_chans:
                o.sendq = [s for s in o.sendq if s["lane"] != lid]
                o.recvq = [s for s in o.recvq if s["lane"] != lid]
            me["st"], me["op"] = "run", "looks again"
            self.step(e, "fdready", lid, "%s runs again with no peer to wake it: a file "
                      "descriptor its select polls is ready (chan_io(3)). It unlinks its "
                      "sudogs and looks at its cases again." % name, None)
        me["st"] = "run"
        if res == "ok" and d == "recv" and c is not None and c.cap == 0:
            # Nothing is buffered on an unbuffered channel and no sender woke us: the channel
            # of a file descriptor, which a select polls (chan_fd_chan, chan_fd_wait).
            v = a.get("v")
            me["v"], me["hv"] = v, c.elemsize > 0
            me["op"] = "%s ready" % c.label
            self.step(e, "fd", lid, "%s%s receives %s on %s with no sender: %s is the "
                      "channel of a file descriptor (chan_io(3)), ready now; the value is what "
                      "poll reported." % ("%s selects (%s): case %s is ready. " % (
                          name, self.case_text(cs or [], lid), a.get("case"))
                          if op == "select" else "", name, self.val(c, v), c.label,
                          c.label), c)
            return
        pre = ""
        if op == "select":
            if c is None:
                me["op"] = "select: %s" % res
                why = {"again": "no case is ready, so it returns -EAGAIN at once (Go's default)",
                       "timedout": "no case is ready and its deadline has passed: -ETIMEDOUT"}
                self.step(e, "select", lid, "%s selects (%s): %s." % (
                    name, self.case_text(cs or [], lid), why.get(res, res)), None)
                return
            pre = "%s selects (%s): case %s is ready. " % (name, self.case_text(cs or [], lid),
                                                           a.get("case"))
        v = a.get("v")
        if res == "ok" and d == "send":
            slot = c.put(v) if c.cap else None
            me["op"] = "sent %s on %s" % (self.val(c, v), c.label)
            text = "%s%s sends %s on %s: the buffer has room, so %s goes into slot %d (%d of %d " \
                   "now) and %s returns at once. No receiver was involved: %s does not know " \
                   "when, or whether, it will be received." % (
                       pre, name, self.val(c, v), c.label, self.val(c, v), slot, c.n, c.cap, fn,
                       name)
            self.step(e, "put", lid, text, c, [{"v": v, "kind": "put", "from": ["lane", lid],
                                               "to": ["slot", c.id, slot]}])
        elif res == "ok":
            slot, bv = c.take()
            v = v if v is not None else bv
            me["v"], me["hv"] = v, c.elemsize > 0
            me["op"] = "received %s on %s" % (self.val(c, v), c.label)
            text = "%s%s receives %s from the buffer of %s (slot %d); %d left. %s returns at once, " \
                   "and the sender is not told." % (pre, name, self.val(c, v), c.label, slot,
                                                    c.n, fn)
            self.step(e, "take", lid, text, c, [{"v": v, "kind": "take",
                                                 "from": ["slot", c.id, slot],
                                                 "to": ["lane", lid]}])
        elif res == "again" and d == "send":
            c.dropped.append(v)
            me["op"] = "dropped %s" % self.val(c, v)
            why = ("the buffer is full (%d of %d)" % (c.n, c.cap) if c.cap else
                   "no receiver is waiting")
            self.step(e, "drop", lid, "%s%s tries to send %s on %s: %s, so %s returns -EAGAIN "
                      "at once and %s is dropped, not waited for." % (
                          pre, name, self.val(c, v), c.label, why, fn, self.val(c, v)), c,
                      [{"v": v, "kind": "drop", "from": ["lane", lid], "to": ["drop", c.id]}])
        elif res == "again":
            me["op"] = "polled %s" % c.label
            why = "not closed yet" if c.elemsize == 0 else "no value is there"
            self.step(e, "poll", lid, "%s polls %s with %s: %s, so it returns -EAGAIN at once "
                      "and %s goes on." % (name, c.label, fn, why, name), c)
        elif res == "closed" and d == "send":
            me["op"] = "send on closed %s" % c.label
            self.step(e, "closed", lid, "%s%s sends %s on %s: it is closed, so %s returns -EPIPE "
                      "and nothing is delivered (Go would panic)." % (
                          pre, name, self.val(c, v), c.label, fn), c)
        elif res == "closed":
            me["op"] = "saw %s closed" % c.label
            me["v"], me["hv"] = None, c.elemsize > 0
            # A poll (chan_tryrecv: Go's select with a default) that finds the close.
            self.step(e, "closed", lid, "%s%s %s %s: it is closed and drained, so %s "
                      "returns %s at once, with no value: the close is the signal." % (
                          pre, name, "polls" if form == "try" and op != "select" else
                          "receives on", c.label, fn,
                          "ok false" if op == "select" else "-EPIPE"), c)
        elif res == "timedout":
            me["op"] = "timed out"
            self.step(e, "timeout", lid, "%s's %s on %s: the deadline had passed and it was not "
                      "ready: -ETIMEDOUT at once." % (name, fn, c.label), c)
        else:
            self.step(e, "error", lid, "%s's %s on %s returns %s." % (name, fn, c.label, res), c)

    # -- output --

    def data(self):
        lanes = [{"id": str(l), "name": self.lanes[l]["name"]} for l in self.lane_order]
        return {"lanes": lanes, "chans": self.chan_meta, "steps": self.steps,
                "repaired": self.repaired, "problems": self.problems, "shown": self.shown}


def wait_reason(a, has_cases):
    """Go's words for how a leaked waiter waits (the args a of a "leak" event), as chan_leak(3)'s
    report says them after sudog.c's wait_reason_words: the event says send, recv or select, and
    names the first channel it waits on, or none. has_cases: a select with cases, all nil (a
    select still), rather than select {}."""
    w = a.get("waits")
    if w == "select":
        return "select" if "chan" in a or has_cases else "select (no cases)"
    words = "chan send" if w == "send" else "chan receive"
    return words if "chan" in a else words + " (nil chan)"


def report_ns(ns):
    """A duration as chan_leak(3)'s report prints it (trace/dump.c's print_duration)."""
    ns = float(ns)
    if ns >= 1e9:
        return "%.3f s" % (ns / 1e9)
    if ns >= 1e6:
        return "%.3f ms" % (ns / 1e6)
    return "%.3f us" % (ns / 1e3)


def fmt_ns(ns):
    """A duration in nanoseconds in human units, as every sentence of a replay says one."""
    ns = float(ns)
    if ns >= 1e9:
        return "%.2f s" % (ns / 1e9)
    if ns >= 1e6:
        return "%.1f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.1f \u00b5s" % (ns / 1e3)
    return "%d ns" % ns


def fmt_t(us):
    """A moment of the trace (its "ts", in microseconds from its start), as the pages show it
    beside every step: "+59.637 ms"."""
    return "+%.3f ms" % (us / 1000) if us >= 1000 else "+%.1f \u00b5s" % us
