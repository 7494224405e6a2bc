// SPDX-License-Identifier: MIT
/*
 * docs/play/play.js - replays one libchan trace: lanes for the threads, each channel drawn as
 * its hchan (buffer slots with their values, recvx and sendx, the recvq and sendq with a sudog
 * for every waiter), values moving between them, and a text line for every step.
 *
 * A classic script (pages open from the file system, where ES modules do not load). The data is
 * window.PLAY_DATA, written by tools/trace2play from a real trace: every step carries the state
 * of every lane and channel after it, so stepping back is as cheap as stepping forward and the
 * drawing is a function of the step alone. The animation only adds the values in flight.
 *
 * What is drawn carries data-* attributes (lane status, held value, slots, sudogs, drops), so a
 * test can compare the drawing with the trace (docs/play/test_play.py).
 */
(function () {
  "use strict";

  var D = window.PLAY_DATA;
  if (!D || !D.steps || !D.steps.length) return;
  var steps = D.steps, lanes = D.lanes, chans = D.chans;
  var NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1d4ed8", "#c2410c", "#047857", "#7c3aed", "#b45309", "#0e7490", "#be185d",
                 "#4d7c0f", "#9f1239", "#334155"];
  var STATUS = {run: "RUNNING", blocked: "BLOCKED", ready: "READY", end: "DONE", "new": "NOT YET",
                leaked: "LEAKED"};
  var STATUS_COLORS = {run: ["#15803d", "#dcfce7"], blocked: ["#b91c1c", "#fee2e2"],
                       ready: ["#92400e", "#fef3c7"], end: ["#475569", "#f1f5f9"],
                       "new": ["#64748b", "#ffffff"], leaked: ["#7f1d1d", "#fecaca"]};
  var KIND = {make: "make", free: "free", block: "blocks", wake: "hand-off", woken: "wakes up",
              put: "into the buffer", take: "out of the buffer", drop: "drop", poll: "poll",
              close: "close", closed: "closed", timeout: "time-out", select: "select",
              timer: "timer", leak: "leak found", error: "error"};
  // Text colours keep WCAG's 4.5:1 on the pale blue of the step's line (test_play.py checks).
  var KIND_COLOR = {make: "#475569", free: "#475569", block: "#b91c1c", wake: "#1d4ed8",
                    woken: "#15803d", put: "#047857", take: "#047857", drop: "#c2410c",
                    poll: "#57534e", close: "#9f1239", closed: "#9f1239", timeout: "#b45309",
                    select: "#7c3aed", timer: "#0e7490", leak: "#7f1d1d", error: "#b91c1c"};

  // ---- Layout: fixed for the whole run, so that nothing jumps while stepping ----

  var W = 980, TOP = 34, LX = 14, LW = 236, LH = 62, LG = 12, HANDX = LX + LW + 26;
  var CX = HANDX + 34, CW = W - CX - 12, CH = 196, CG = 14, SLOT0 = 64, MAXSLOTS = 12;
  var laneIndex = {}, laneColor = {};
  lanes.forEach(function (l, i) {
    laneIndex[l.id] = i;
    laneColor[l.id] = PALETTE[i % PALETTE.length];
  });
  function laneY(id) { return TOP + laneIndex[id] * (LH + LG); }

  // Each channel's life (first..last step) gets a row; a later life reuses a free row.
  var rowOf = {}, rowsEnd = [];
  chans.forEach(function (c) {
    var r = 0;
    while (r < rowsEnd.length && rowsEnd[r] >= c.first) r++;
    rowsEnd[r] = c.last;
    rowOf[c.id] = r;
  });
  var chanById = {};
  chans.forEach(function (c) { chanById[c.id] = c; });
  function chanY(cid) { return TOP + rowOf[cid] * (CH + CG); }
  var H = Math.max(TOP + lanes.length * (LH + LG), TOP + Math.max(rowsEnd.length, 1) * (CH + CG)) + 6;

  function slotW(c) { return Math.min(62, Math.floor((CW - SLOT0 - 16) / Math.min(c.cap, MAXSLOTS))); }
  function shownSlot(c, idx) { return Math.min(idx, MAXSLOTS - 1); }
  function slotCenter(cid, idx) {
    var c = chanById[cid], w = slotW(c);
    return [CX + SLOT0 + shownSlot(c, idx) * w + w / 2, chanY(cid) + 58];
  }
  var CARD_W = 118, CARD_H = 30;
  function queueY(cid, send) { return chanY(cid) + (send ? 160 : 124); }
  function cardW(n) { return Math.min(CARD_W, Math.floor((CW - SLOT0 - 10) / Math.max(n, 1)) - 6); }
  function sudogCenter(state, cid, send, lane) {
    var cs = state.chans[cid];
    var q = cs ? (send ? cs.sendq : cs.recvq) : [];
    var w = cardW(q.length), k = 0;
    for (var i = 0; i < q.length; i++) if (String(q[i][0]) === String(lane)) { k = i; break; }
    return [CX + SLOT0 + k * (w + 6) + w / 2, queueY(cid, send) + CARD_H / 2];
  }
  function anchor(a, state) {
    switch (a[0]) {
      case "lane": return [HANDX, laneY(a[1]) + LH / 2];
      case "slot": return slotCenter(a[1], a[2]);
      case "sudog": return sudogCenter(state, a[1], a[2], a[3]);
      case "drop": return [CX + CW - 60, chanY(a[1]) + 16];
      case "chan": return [CX + 90, chanY(a[1]) + 16];
    }
    return [W / 2, H / 2];
  }

  // ---- SVG helpers ----

  function el(name, attrs, parent, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + "\u2026" : s; }
  // A value as drawn: a time (a timer's value, raw nanoseconds on the program's clock) as the
  // replay says it, from the trace's start in human units (D.shown: "+59.6 ms").
  var SHOWN = D.shown || {};
  function fmtVal(c, v) {
    return c && c.elemsize === 0 ? "\u25CF" : v === null || v === undefined ? "?" :
      SHOWN[String(v)] || String(v);
  }
  // A font size that fits a label of n characters into room px (one made for 5 at size px).
  function fit(label, size, room) { return Math.max(8, Math.min(size, room / (label.length * 0.62))); }
  function laneName(id) { var i = laneIndex[id]; return i === undefined ? String(id) : lanes[i].name; }
  function tint(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  // ---- Drawing one step ----

  var stage = document.getElementById("stage");
  stage.setAttribute("viewBox", "0 0 " + W + " " + H);
  var gBase = el("g", {"class": "base"}, stage);
  var gFly = el("g", {"class": "fly", "pointer-events": "none"}, stage);
  // Lanes are threads, or Gs (ids "g5") when the trace names them: a G is not a thread.
  var nG = lanes.filter(function (l) { return /^g\d+$/.test(l.id); }).length;
  el("text", {x: LX, y: 20, "font-size": 13, "font-weight": 700, fill: "#475569", "class": "lanes-head"},
     stage, nG === 0 ? "THREADS" : nG === lanes.length ? "GOROUTINES (Gs)" : "THREADS AND Gs");
  el("text", {x: CX, y: 20, "font-size": 13, "font-weight": 700, fill: "#475569"}, stage,
     "CHANNELS (each drawn as its hchan)");

  function drawLane(g, id, st, s) {
    var y = laneY(id), col = laneColor[id], status = st[0], op = st[1];
    var actor = String(s.lane) === String(id), woken = (s.wakes || []).concat(s.leaks || [])
      .map(String).indexOf(String(id)) >= 0;
    var lg = el("g", {"class": "lane", "data-lane": id, "data-status": status,
                      "data-holds": st[3] ? String(st[2]) : "", "data-has": st[3] ? "true" : "false"}, g);
    el("rect", {x: LX, y: y, width: LW, height: LH, rx: 10, fill: actor ? tint(col, 0.08) : "#fff",
                stroke: actor || woken ? col : "#cbd5e1", "stroke-width": actor ? 2.5 : woken ? 2 : 1}, lg);
    el("rect", {x: LX, y: y, width: 7, height: LH, rx: 3, fill: col}, lg);
    el("text", {x: LX + 18, y: y + 23, "font-size": 15, "font-weight": 700, fill: "#0f172a"}, lg,
       clip(laneName(id), 16));
    var sc = STATUS_COLORS[status] || STATUS_COLORS.run;
    el("rect", {x: LX + LW - 88, y: y + 9, width: 78, height: 20, rx: 10, fill: sc[1]}, lg);
    el("text", {x: LX + LW - 49, y: y + 23, "font-size": 11, "font-weight": 700, fill: sc[0],
                "text-anchor": "middle", "letter-spacing": "0.04em", "class": "status"}, lg,
       STATUS[status] || status);
    el("text", {x: LX + 18, y: y + 47, "font-size": 12, fill: "#475569"}, lg, clip(op || "", 36));
    // the value in its hands: the last one it received
    if (st[3]) {
      var held = SHOWN[String(st[2])] || clip(String(st[2]), 5);
      if (held.length > 5)  // a time: a pill wide enough for it, short of the channels
        el("rect", {x: HANDX - 26, y: y + LH / 2 - 13, width: 52, height: 26, rx: 13, fill: col,
                    stroke: "#fff", "stroke-width": 2, "class": "holds"}, lg);
      else
        el("circle", {cx: HANDX, cy: y + LH / 2, r: 15, fill: col, stroke: "#fff", "stroke-width": 2,
                      "class": "holds"}, lg);
      el("text", {x: HANDX, y: y + LH / 2 + 4, "font-size": fit(held, 12, 46), "font-weight": 700,
                  fill: "#fff", "text-anchor": "middle"}, lg, held);
    } else {
      el("circle", {cx: HANDX, cy: y + LH / 2, r: 15, fill: "none", stroke: "#e2e8f0",
                    "stroke-dasharray": "3 3"}, lg);
    }
  }

  function drawChan(g, cid, cs, s, state) {
    var c = chanById[cid], x = CX, y = chanY(cid), focus = s.chan === Number(cid);
    var cg = el("g", {"class": "hchan", "data-chan": cid, "data-label": c.label,
                      "data-closed": cs.closed ? "true" : "false", "data-count": cs.n,
                      "data-live": cs.live ? "true" : "false", "data-recvx": cs.rx, "data-sendx": cs.sx}, g);
    el("rect", {x: x, y: y, width: CW, height: CH, rx: 12, fill: cs.live ? "#fff" : "#f8fafc",
                stroke: focus ? "#1d4ed8" : "#cbd5e1", "stroke-width": focus ? 2.5 : 1,
                "stroke-dasharray": cs.live ? null : "6 4"}, cg);
    el("text", {x: x + 14, y: y + 22, "font-size": 16, "font-weight": 700, fill: "#0f172a"}, cg, c.label);
    var meta = (c.cap ? "buffered, cap " + c.cap : "unbuffered, cap 0") + " \u00B7 " +
               (c.elemsize ? c.elemsize + "-byte values" : "signal-only (elemsize 0)");
    el("text", {x: x + 28 + c.label.length * 10, y: y + 22, "font-size": 12, fill: "#64748b"}, cg, meta);
    var badge = !cs.live ? ["FREED", "#475569", "#f1f5f9"] : cs.closed ? ["CLOSED", "#9f1239", "#ffe4e6"]
                : ["OPEN", "#15803d", "#dcfce7"];
    el("rect", {x: x + CW - 84, y: y + 8, width: 72, height: 20, rx: 10, fill: badge[2]}, cg);
    el("text", {x: x + CW - 48, y: y + 22, "font-size": 11, "font-weight": 700, fill: badge[1],
                "text-anchor": "middle", "class": "state"}, cg, badge[0]);
    // dropped values, beside the state
    if (cs.dropped.length) {
      el("text", {x: x + CW - 96, y: y + 22, "font-size": 12, fill: "#c2410c", "text-anchor": "end"}, cg,
         "dropped:");
      cs.dropped.slice(-6).forEach(function (v, i, a) {
        var dx = x + CW - 96 - 62 - (a.length - 1 - i) * 28 + 8;
        var dg = el("g", {"class": "dropped", "data-value": v === null ? "" : String(v)}, cg);
        el("circle", {cx: dx - 16, cy: y + 18, r: 11, fill: "#fff7ed", stroke: "#c2410c"}, dg);
        var dl = fmtVal(c, v);
        el("text", {x: dx - 16, y: y + 22, "font-size": fit(dl, 11, 20), "font-weight": 700, fill: "#c2410c",
                    "text-anchor": "middle"}, dg, SHOWN[String(v)] ? dl : clip(dl, 4));
        el("line", {x1: dx - 24, y1: y + 26, x2: dx - 8, y2: y + 10, stroke: "#c2410c", "stroke-width": 1.5}, dg);
      });
    }
    // the buffer
    el("text", {x: x + 14, y: y + 62, "font-size": 12, "font-weight": 700, fill: "#475569"}, cg, "buf");
    if (!c.cap) {
      el("text", {x: x + SLOT0, y: y + 62, "font-size": 12.5, fill: "#64748b", "font-style": "italic"}, cg,
         "no buffer: a value passes straight from a sender to a receiver");
    } else {
      var w = slotW(c), full = {};
      cs.buf.forEach(function (b) { full[b[0]] = b; });
      var shown = Math.min(c.cap, MAXSLOTS);
      for (var i = 0; i < shown; i++) {
        var b = full[i], sx = x + SLOT0 + i * w;
        var sg = el("g", {"class": "slot", "data-slot": i, "data-full": b ? "true" : "false",
                          "data-value": b && b[1] !== null ? String(b[1]) : ""}, cg);
        el("rect", {x: sx + 2, y: y + 38, width: w - 4, height: 40, rx: 6,
                    fill: b ? "#ecfdf5" : "#f8fafc", stroke: b ? "#047857" : "#cbd5e1"}, sg);
        var bl = b ? fmtVal(c, b[1]) : "";
        if (b) el("text", {x: sx + w / 2, y: y + 63, "font-size": fit(bl, 14, w - 8), "font-weight": 700,
                           fill: "#065f46", "text-anchor": "middle"}, sg, bl.length > 9 ? clip(bl, 6) : bl);
        el("text", {x: sx + w / 2, y: y + 90, "font-size": 10, fill: "#64748b", "text-anchor": "middle"}, sg, i);
      }
      if (c.cap > MAXSLOTS)
        el("text", {x: x + SLOT0 + shown * w + 4, y: y + 62, "font-size": 12, fill: "#64748b"}, cg,
           "\u2026 " + c.cap + " slots");
      var marks = [["recvx", cs.rx, "#0e7490"], ["sendx", cs.sx, "#7c3aed"]];
      marks.forEach(function (m, k) {
        var mx = x + SLOT0 + shownSlot(c, m[1]) * w + w / 2;
        el("text", {x: mx, y: y + 101 + 11 * k, "font-size": 10, "font-weight": 700, fill: m[2], "text-anchor": "middle"},
           cg, "\u25B2" + m[0]);
      });
      el("text", {x: x + CW - 14, y: y + 62, "font-size": 12, fill: "#475569", "text-anchor": "end"}, cg,
         cs.n + " / " + c.cap);
    }
    // the queues, head first
    [[false, "recvq", cs.recvq], [true, "sendq", cs.sendq]].forEach(function (qq) {
      var send = qq[0], qy = queueY(cid, send), q = qq[2];
      el("text", {x: x + 14, y: qy + 20, "font-size": 12, "font-weight": 700, fill: "#475569"}, cg, qq[1]);
      if (!q.length) {
        el("text", {x: x + SLOT0, y: qy + 20, "font-size": 12, fill: "#64748b"}, cg, "empty");
        return;
      }
      var w = cardW(q.length);
      q.forEach(function (sg, i) {
        var lane = sg[0], v = sg[1], kcase = sg[2], done = sg[3], col = laneColor[lane] || "#334155";
        var sx = x + SLOT0 + i * (w + 6);
        // done: a select's sudog on a case that did not fire (another case won); it stays queued,
        // skipped by peers, until the woken select unlinks it (Go's selectgo, pass 3)
        var g2 = el("g", {"class": "sudog", "data-queue": qq[1], "data-lane": lane,
                          "data-value": send && v !== null ? String(v) : "", "data-done": done ? "true" : "false"}, cg);
        // a stale card is pale and dashed; its text stays readable
        el("rect", {x: sx, y: qy, width: w, height: CARD_H, rx: 7, fill: tint(col, done ? 0.05 : 0.12), stroke: col,
                    "stroke-width": 1.5, "stroke-dasharray": done ? "4 3" : null, opacity: done ? 0.6 : null}, g2);
        var label = laneName(lane) + (kcase !== null ? " \u00B7 case " + kcase : "");
        el("text", {x: sx + 8, y: qy + 19.5, "font-size": 11.5, fill: done ? "#475569" : "#0f172a",
                    "font-weight": 600}, g2,
           clip(label, Math.max(6, Math.floor((w - (send ? 34 : 12)) / 6.6))));
        el("title", {}, g2, label + (send ? ", offering " + fmtVal(c, v) : "") +
           (done ? ": stale, its select was won by another case; it unlinks this sudog when it runs"
            : ""));
        if (send) {
          el("circle", {cx: sx + w - 15, cy: qy + CARD_H / 2, r: 11, fill: col}, g2);
          var sl = fmtVal(c, v);
          el("text", {x: sx + w - 15, y: qy + CARD_H / 2 + 4, "font-size": fit(sl, 10.5, 20),
                      "font-weight": 700, fill: "#fff", "text-anchor": "middle"}, g2,
             SHOWN[String(v)] ? sl : clip(sl, 4));
        }
        if (done || i === 0)
          el("text", {x: sx + w / 2, y: qy - 3, "font-size": 9.5, fill: done ? "#b45309" : "#64748b",
                      "text-anchor": "middle", "font-weight": done ? 700 : null}, g2, done ? "stale" : "head");
        // who waits here: a thread from its lane
        if (!done && laneIndex[lane] !== undefined) {
          var ly = laneY(lane) + LH / 2;
          el("path", {d: "M" + (HANDX + 16) + "," + ly + " C" + (HANDX + 60) + "," + ly + " " + (sx - 40) + "," +
                      (qy + CARD_H / 2) + " " + sx + "," + (qy + CARD_H / 2),
                      fill: "none", stroke: col, "stroke-width": 1.4, "stroke-dasharray": "4 4", opacity: 0.6}, g);
        }
      });
    });
  }

  function liveChans(i) {
    var st = steps[i].state, out = [];
    chans.forEach(function (c) {
      var cs = st.chans[c.id];
      if (cs && i >= c.first && i <= c.last && (cs.live || steps[i].chan === c.id)) out.push(c.id);
    });
    return out;
  }

  function draw(i) {
    var s = steps[i], st = s.state;
    while (gBase.firstChild) gBase.removeChild(gBase.firstChild);
    var gConn = el("g", {"class": "links"}, gBase);
    lanes.forEach(function (l) {
      drawLane(gBase, l.id, st.lanes[l.id] || ["new", "", null, false], s);
    });
    liveChans(i).forEach(function (cid) { drawChan(gBase, cid, st.chans[cid], s, st); });
    // the dashed links from each waiting thread to its sudog, on top
    Array.prototype.slice.call(gBase.querySelectorAll(":scope > path")).forEach(function (p) {
      gConn.appendChild(p);
    });
    gBase.appendChild(gConn);
  }

  // ---- Values in flight ----

  var flyTimer = null;
  function fly(i, from) {
    if (flyTimer) { cancelAnimationFrame(flyTimer); flyTimer = null; }
    while (gFly.firstChild) gFly.removeChild(gFly.firstChild);
    // only a step forward moves values: a jump shows the state it lands on
    if (from === undefined || reduceMotion) return;
    var s = steps[i], prev = steps[from];
    if (!s.moves || !s.moves.length) return;
    var items = s.moves.map(function (m) {
      var a = anchor(m.from, prev.state), b = anchor(m.to, s.state);
      var c = chanById[s.chan];
      var g = el("g", {}, gFly);
      if (m.kind === "close") {
        var line = el("line", {x1: a[0], y1: a[1], x2: a[0], y2: a[1], stroke: "#9f1239", "stroke-width": 2.5,
                               "stroke-dasharray": "6 4"}, g);
        return {g: g, a: a, b: b, line: line};
      }
      var col = laneColor[s.lane] || "#334155";
      var fl = fmtVal(c, m.v), fill = m.kind === "drop" ? "#c2410c" : col;
      if (SHOWN[String(m.v)])  // a time: a pill, as in the lane that receives it
        el("rect", {x: -26, y: -13, width: 52, height: 26, rx: 13, fill: fill, stroke: "#fff",
                    "stroke-width": 2.5}, g);
      else
        el("circle", {r: 15, fill: fill, stroke: "#fff", "stroke-width": 2.5}, g);
      el("text", {y: 4.5, "font-size": fit(fl, 12, 46), "font-weight": 700, fill: "#fff",
                  "text-anchor": "middle"}, g, SHOWN[String(m.v)] ? fl : clip(fl, 5));
      return {g: g, a: a, b: b};
    });
    var dur = 650 / speed, t0 = performance.now();
    function frame(now) {
      var t = Math.min(1, (now - t0) / dur), e = t < 0.5 ? 2 * t * t : 1 - Math.pow(-2 * t + 2, 2) / 2;
      items.forEach(function (it) {
        var x = it.a[0] + (it.b[0] - it.a[0]) * e, y = it.a[1] + (it.b[1] - it.a[1]) * e;
        if (it.line) {
          it.line.setAttribute("x2", x);
          it.line.setAttribute("y2", y);
          it.g.setAttribute("opacity", t < 0.8 ? 1 : (1 - t) * 5);
        } else {
          y -= Math.sin(Math.PI * e) * 26; // an arc, so that tokens do not cross the cards flat
          it.g.setAttribute("transform", "translate(" + x + "," + y + ")");
          it.g.setAttribute("opacity", t < 0.85 ? 1 : (1 - t) / 0.15);
        }
      });
      if (t < 1) flyTimer = requestAnimationFrame(frame);
      else { while (gFly.firstChild) gFly.removeChild(gFly.firstChild); flyTimer = null; }
    }
    flyTimer = requestAnimationFrame(frame);
  }

  // ---- The timeline: lanes as rows, steps as columns ----

  var tl = document.getElementById("timeline");
  var TL_LEFT = 112, TL_ROW = 20, TL_TOP = 18;
  var colW = Math.max(12, Math.min(30, Math.floor(840 / steps.length)));
  var tlCursor = null;
  function drawTimeline() {
    var w = TL_LEFT + steps.length * colW + 16, h = TL_TOP + lanes.length * TL_ROW + 8;
    tl.setAttribute("width", w);
    tl.setAttribute("height", h);
    tl.setAttribute("viewBox", "0 0 " + w + " " + h);
    lanes.forEach(function (l, r) {
      var y = TL_TOP + r * TL_ROW;
      if (r % 2 === 0) el("rect", {x: 0, y: y, width: w, height: TL_ROW, fill: "#f8fafc"}, tl);
      el("text", {x: 6, y: y + 14, "font-size": 12, fill: laneColor[l.id], "font-weight": 600}, tl,
         clip(l.name, 14));
    });
    // blocked and ready spans, from the states
    lanes.forEach(function (l, r) {
      var y = TL_TOP + r * TL_ROW;
      steps.forEach(function (s, i) {
        var st = s.state.lanes[l.id];
        if (!st) return;
        if (st[0] === "blocked")
          el("rect", {x: TL_LEFT + i * colW, y: y + 7, width: colW, height: 6, fill: "#fecaca"}, tl);
        else if (st[0] === "leaked")  // blocked forever: darker, and it never ends
          el("rect", {x: TL_LEFT + i * colW, y: y + 6, width: colW, height: 8, fill: "#7f1d1d"}, tl);
        else if (st[0] === "ready")
          el("rect", {x: TL_LEFT + i * colW, y: y + 8, width: colW, height: 4, fill: "#fde68a"}, tl);
      });
    });
    tlCursor = el("rect", {x: TL_LEFT, y: 2, width: colW, height: h - 4, rx: 3, fill: "rgba(29,78,216,0.12)",
                           stroke: "#1d4ed8", "stroke-width": 1}, tl);
    steps.forEach(function (s, i) {
      var x = TL_LEFT + i * colW + colW / 2;
      if (i % 5 === 0)
        el("text", {x: x, y: 12, "font-size": 9, fill: "#64748b", "text-anchor": "middle"}, tl, i + 1);
      var r = laneIndex[s.lane];
      if (r === undefined) return;
      var y = TL_TOP + r * TL_ROW + TL_ROW / 2;
      (s.wakes || []).forEach(function (w) {
        var r2 = laneIndex[w];
        if (r2 !== undefined)
          el("line", {x1: x, y1: y, x2: x, y2: TL_TOP + r2 * TL_ROW + TL_ROW / 2, stroke: KIND_COLOR[s.kind],
                      "stroke-width": 1.2, opacity: 0.7}, tl);
      });
      var col = KIND_COLOR[s.kind] || "#334155", sz = Math.min(6, colW / 2 - 1);
      // a leak found: a cross on the row of each waiter found blocked forever, and no line
      // from the checker, which woke nobody
      (s.leaks || []).forEach(function (w) {
        var r2 = laneIndex[w];
        if (r2 === undefined) return;
        var y2 = TL_TOP + r2 * TL_ROW + TL_ROW / 2;
        el("path", {d: "M" + (x - sz) + "," + (y2 - sz) + "L" + (x + sz) + "," + (y2 + sz) + "M" + (x + sz) +
                    "," + (y2 - sz) + "L" + (x - sz) + "," + (y2 + sz), stroke: col, "stroke-width": 2.5,
                    "class": "leaked-mark", "data-lane": w}, tl);
      });
      if (s.kind === "block")
        el("rect", {x: x - sz, y: y - sz, width: 2 * sz, height: 2 * sz, fill: col}, tl);
      else if (s.kind === "drop")
        el("path", {d: "M" + (x - sz) + "," + (y - sz) + "L" + (x + sz) + "," + (y + sz) + "M" + (x + sz) + "," +
                    (y - sz) + "L" + (x - sz) + "," + (y + sz), stroke: col, "stroke-width": 2}, tl);
      else if (s.kind === "close")
        el("path", {d: "M" + x + "," + (y - sz - 1) + "L" + (x + sz + 1) + "," + y + "L" + x + "," + (y + sz + 1) +
                    "L" + (x - sz - 1) + "," + y + "Z", fill: col}, tl);
      else
        el("circle", {cx: x, cy: y, r: sz, fill: col}, tl);
    });
    steps.forEach(function (s, i) {
      var hit = el("rect", {x: TL_LEFT + i * colW, y: 0, width: colW, height: h, fill: "transparent",
                            "class": "col"}, tl);
      el("title", {}, hit, "Step " + (i + 1) + ": " + s.text);
      hit.addEventListener("click", function () { go(i, true); });
    });
  }

  // ---- Controls ----

  var cur = 0, speed = 1, playing = null;
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var $ = function (id) { return document.getElementById(id); };
  var scrub = $("scrub"), counter = $("counter"), now = $("now"), bPlay = $("b-play");
  var list = $("steps"), items = list ? list.querySelectorAll("li") : [];
  scrub.max = steps.length - 1;

  // A moment of the trace, from its start: as the step list says it (chantrace.py's fmt_t).
  function fmtT(us) { return "+" + (us >= 1000 ? (us / 1000).toFixed(3) + " ms" : us.toFixed(1) + " \u00B5s"); }

  function go(i, animate) {
    i = Math.max(0, Math.min(steps.length - 1, i));
    var from = cur;
    cur = i;
    draw(i);
    fly(i, animate && i === from + 1 ? from : undefined);
    var s = steps[i];
    scrub.value = i;
    scrub.setAttribute("aria-valuetext", "Step " + (i + 1) + " of " + steps.length);
    counter.textContent = "Step " + (i + 1) + " of " + steps.length + " \u00B7 at " + fmtT(s.t);
    now.innerHTML = "";
    var k = document.createElement("span");
    k.className = "kind";
    k.style.color = KIND_COLOR[s.kind] || "";
    k.textContent = KIND[s.kind] || s.kind;
    now.appendChild(k);
    now.appendChild(document.createTextNode(s.text));
    now.setAttribute("data-step", i);
    for (var j = 0; j < items.length; j++) items[j].removeAttribute("aria-current");
    if (items[i]) {
      items[i].setAttribute("aria-current", "step");
      var box = list.getBoundingClientRect(), r = items[i].getBoundingClientRect();
      if (r.top < box.top || r.bottom > box.bottom) list.scrollTop += r.top - box.top - box.height / 3;
    }
    if (tlCursor) tlCursor.setAttribute("x", TL_LEFT + i * colW);
    if (history.replaceState) history.replaceState(null, "", "#step-" + (i + 1));
  }

  function setPlaying(on) {
    if (playing) { clearTimeout(playing); playing = null; }
    bPlay.textContent = on ? "Pause" : "Play";
    bPlay.setAttribute("aria-label", on ? "Pause (Space)" : "Play (Space)");
    bPlay.setAttribute("aria-pressed", on ? "true" : "false");
    if (!on) return;
    if (cur >= steps.length - 1) go(0, false);
    (function tick() {
      playing = setTimeout(function () {
        if (cur >= steps.length - 1) { setPlaying(false); return; }
        go(cur + 1, true);
        tick();
      }, 1500 / speed);
    })();
  }
  function toggle() { setPlaying(!playing); }
  function setSpeed(v) {
    speed = v;
    $("speed").value = String(v);
    if (playing) setPlaying(true);
  }
  var SPEEDS = [0.5, 1, 2, 4];

  $("b-first").addEventListener("click", function () { setPlaying(false); go(0); });
  $("b-prev").addEventListener("click", function () { setPlaying(false); go(cur - 1); });
  $("b-next").addEventListener("click", function () { setPlaying(false); go(cur + 1, true); });
  $("b-last").addEventListener("click", function () { setPlaying(false); go(steps.length - 1); });
  bPlay.addEventListener("click", toggle);
  $("speed").addEventListener("change", function () { setSpeed(Number(this.value)); });
  scrub.addEventListener("input", function () { setPlaying(false); go(Number(scrub.value)); });
  for (var j = 0; j < items.length; j++) {
    (function (k) {
      var b = items[k].querySelector("button");
      if (b) b.addEventListener("click", function () { setPlaying(false); go(k); });
    })(j);
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var t = ev.target, tag = t && t.tagName;
    if (tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && t.type !== "range")) return;
    var onButton = tag === "BUTTON" || tag === "SUMMARY";
    var k = ev.key;
    if ((k === " " || k === "Spacebar") && !onButton) { toggle(); }
    else if (k === "k" || k === "K") { toggle(); }
    else if ((k === "ArrowRight" && tag !== "INPUT") || k === "l" || k === ".") {
      setPlaying(false); go(cur + 1, true);
    } else if ((k === "ArrowLeft" && tag !== "INPUT") || k === "j" || k === ",") {
      setPlaying(false); go(cur - 1);
    } else if (k === "Home" && tag !== "INPUT") { setPlaying(false); go(0); }
    else if (k === "End" && tag !== "INPUT") { setPlaying(false); go(steps.length - 1); }
    else if (k === "+" || k === "=" || k === "]") {
      setSpeed(SPEEDS[Math.min(SPEEDS.length - 1, SPEEDS.indexOf(speed) + 1)]);
    } else if (k === "-" || k === "[") {
      setSpeed(SPEEDS[Math.max(0, SPEEDS.indexOf(speed) - 1)]);
    } else return;
    ev.preventDefault();
  });

  drawTimeline();
  var m = /^#step-(\d+)$/.exec(location.hash);
  go(m ? Number(m[1]) - 1 : 0, false);

  // For tests and the curious: the step shown, and a way to go to one.
  window.play = {
    index: function () { return cur; },
    count: steps.length,
    go: function (i) { setPlaying(false); go(i); },
    playing: function () { return !!playing; },
    speed: function () { return speed; }
  };
})();
