/* SPDX-License-Identifier: MIT */
/*
 * ring.pml - the lock-free ring of libchan's buffered channels and its SLOW bit (ring.c), in
 * Promela: the hand-over between the lock-free fast paths and the locked path that queues
 * waiters. wakeup.pml covers who wakes whom; this model covers what it leaves out.
 *
 * What is modelled, as the C code does it (see model/README.md for the map; each step below
 * names the C function it models, in ring.c unless said otherwise):
 *   - the ring (Vyukov's bounded queue): positions head and tail, pos = lap * ONE_LAP + index,
 *     with the SLOW bit between index and lap bits; a stamp per slot; ring_push/ring_pop with
 *     every atomic instruction one step (load of the position, load of the stamp, CAS of the
 *     position with the SLOW bit in the compared word, the copy, the store of the stamp, the
 *     load of the other position after the fence), `locked` callers (buf_put_locked,
 *     buf_take_locked) ignoring the bit;
 *   - ring_freeze (load tail; fetch_or tail; fetch_or head) and ring_settle (load tail and, under
 *     the lock, both queues and closed; fetch_and tail; fetch_and head), the only two functions
 *     that touch the bit, and the protocol's entry points built on them: buf_put_last and
 *     buf_take_last (ring_freeze, the look once more, ring_settle if it found something),
 *     waiter_enqueue, waiter_left (ring_settle), mark_closed (closed, ring_freeze);
 *   - chansend/chanrecv (chan.c), blocking and try: fast path (ring_trysend/ring_tryrecv);
 *     lock; closed; a waiting peer (chan_send_to, or chan_recv_from: take the head, put the
 *     sender's value at the tail; then waiter_left); buf_put_locked/buf_take_locked;
 *     cannot_wait; the last look; else wait_on: waiter_enqueue, unlock, park; release_peer:
 *     unlock, then unpark;
 *   - chan_close (chan.c): mark_closed, win every waiter (receivers get the zero value,
 *     ok = false), unlock, then unpark each;
 *   - the lock as one test-and-set step; the parker as a permit (park blocks until it is there).
 *
 * Checked (assertions, and spin's invalid end states for deadlocks and lost wake-ups):
 *   (1) every process terminates: no lost wake-up, no deadlock;
 *   (2) each value whose send returned 0 is received exactly once, in FIFO order per sender
 *       (one receiver), and no other value is received;
 *   (3) the SLOW bit: set in both positions whenever a sudog is queued (at waiter_enqueue); a
 *       lock-free CAS that succeeds finds both queues empty and the channel not closed-and-frozen;
 *       ring_freeze's shortcut (tail has the bit) finds it in head too; a receiver that finds a
 *       waiting sender finds a full ring (chan_recv_from's take and put both succeed);
 *   (4) a receive that concludes "empty" (ring_pop returns RING_NO: -EAGAIN for a try, or the
 *       way to waiting) does so at a step where every send that had returned 0 had its value
 *       already claimed by a receive.
 *
 * Configurations (-DCFG=n): see model/README.md. Mutants (-DMUTANT=n), each caught by spin:
 *   1: the last look (buf_put_last, buf_take_last) does not ring_freeze: a waiter is queued
 *      with the ring running lock-free;
 *   2: the last look does not look: ring_freeze, then the waiter is queued at once;
 *   3: ring_settle clears the bit while a sudog is still queued;
 *   4: mark_closed (chan_close) does not freeze the ring.
 * -DSLOWCHECK=0 drops the assertions of (3), to show that each mutant also breaks (1) or (2).
 */

#ifndef CFG
#define CFG 1
#endif
#ifndef MUTANT
#define MUTANT 0
#endif
#ifndef SLOWCHECK
#define SLOWCHECK 1
#endif

#if CFG == 5
#define FIFO 0   /* two receivers: the order in which they return is not the channel's */
#else
#define FIFO 1
#endif
#if CFG == 2 || CFG == 4
#define CAP 2
#else
#define CAP 1
#endif
/* pow2_above(cap): the SLOW bit just above the index bits; one lap is twice that */
#if CAP == 1
#define SLOW 2
#else
#define SLOW 4
#endif
#define ONE_LAP (2 * SLOW)
#define IDX(p) ((p) & (SLOW - 1))
#define NEXT(p) ((IDX(p) + 1 < CAP) -> ((p) + 1) : (((p) & ~(ONE_LAP - 1)) + ONE_LAP))

#define ROK 0
#define RNO 1
#define RSLOW 2

#define OK 0
#define EAGAIN 1
#define EPIPE 2

#define NP 6     /* _pid 0 (init) .. 5 */
#define NVAL 6   /* values 1..5; 0 the zero value */

/* ---- The ring (struct ringpos, the slots) ---- */
byte head, tail;
byte stamp[CAP];
byte slot[CAP];

/* ---- Under the lock ---- */
byte lk;                 /* 0 free, else holder's _pid + 1 */
bit closed;
#define SQ 0
#define RQ 1
byte q[2 * NP];          /* sendq (SQ) and recvq (RQ), FIFO of _pids (each process has one
                            sudog at a time) */
byte qn[2];
#define sqn qn[SQ]
#define rqn qn[RQ]

/* ---- Waiters ---- */
bit done[NP];
bit wok[NP];
bit permit[NP];
bit inop[NP];            /* blocked in wait_on (between queueing and the return) */
byte sgval[NP];          /* a sender's sudog elem: its value */
byte rcvd[NP];           /* a receiver's sudog elem: where the value lands */

/* ---- The books (ghosts) ---- */
bit shut;                /* chan_close has frozen the ring for good */
byte nret;               /* sends that returned 0 */
byte nclaim;             /* values claimed by a receive (head CAS, or handed to a waiter) */
bit sent[NVAL];
byte got[NVAL];
byte owner[NVAL];        /* the sender of each value */
byte last[NP];           /* the last value received from each sender */

#if SLOWCHECK
#define SLOWASSERT(e) assert(e)
#else
#define SLOWASSERT(e) skip
#endif

inline lock() {
    atomic { lk == 0 -> lk = _pid + 1 }
}

inline unlock() {
    d_step { assert(lk == _pid + 1); lk = 0 }
}

/* ---- The ring ---- */

/* ring_push(c, elem, locked): locked = 0 is ring_trysend, 1 is buf_put_locked on a ring */
inline ring_push(v, locked, r) {
    t = tail;
    do
    :: !locked && (t & SLOW) -> r = RSLOW; break
    :: else ->
        pos = t & ~SLOW;
        st = stamp[IDX(pos)];
        if
        :: st == pos ->
            atomic {
                if
                :: tail == t ->
                    tail = NEXT(pos) | (t & SLOW);
                    if
                    :: !locked -> SLOWASSERT(sqn == 0 && rqn == 0 && !shut)
                    :: else -> assert(lk == _pid + 1)
                    fi;
                    cas = 1
                :: else -> t = tail; cas = 0
                fi
            }
            if
            :: cas ->
                slot[IDX(pos)] = v;
                stamp[IDX(pos)] = pos + 1;
                r = ROK; cas = 0;
                break
            :: else -> skip /* t holds the new tail */
            fi
        :: st + ONE_LAP == pos + 1 -> /* the previous lap's value: full? */
            h = head & ~SLOW;
            if
            :: h + ONE_LAP == pos -> r = RNO; break
            :: else -> t = tail
            fi
        :: else -> t = tail /* backoff */
        fi
    od;
    t = 0; pos = 0; st = 0; h = 0
}

/* ring_pop(c, elem, locked): the value into dst; locked = 0 is ring_tryrecv, 1 is
 * buf_take_locked on a ring */
inline ring_pop(dst, locked, r) {
    h = head;
    do
    :: !locked && (h & SLOW) -> r = RSLOW; break
    :: else ->
        pos = h & ~SLOW;
        st = stamp[IDX(pos)];
        if
        :: st == pos + 1 ->
            atomic {
                if
                :: head == h ->
                    head = NEXT(pos) | (h & SLOW);
                    if
                    :: !locked -> SLOWASSERT(sqn == 0 && rqn == 0 && !shut)
                    :: else -> assert(lk == _pid + 1)
                    fi;
                    nclaim++;
                    cas = 1
                :: else -> h = head; cas = 0
                fi
            }
            if
            :: cas ->
                dst = slot[IDX(pos)];
                stamp[IDX(pos)] = pos + ONE_LAP;
                r = ROK; cas = 0;
                break
            :: else -> skip
            fi
        :: st == pos -> /* free for this lap's send: empty? */
            atomic {
                t = tail & ~SLOW;
                if
                :: t == pos ->
                    assert(nret <= nclaim); /* (4) nothing returned-and-unclaimed */
                    r = RNO
                :: else -> h = head; r = RSLOW
                fi
            }
            if
            :: r == RNO -> break
            :: else -> skip
            fi
        :: else -> h = head
        fi
    od;
    t = 0; pos = 0; st = 0; h = 0
}

/* ring_freeze (static in ring.c): called by buf_put_last, buf_take_last and mark_closed only */
inline ring_freeze() {
    if
    :: tail & SLOW -> SLOWASSERT(head & SLOW)
    :: else ->
        tail = tail | SLOW;
        head = head | SLOW
    fi
}

/* ring_settle (static in ring.c): called by buf_put_last, buf_take_last (when the last look
 * found the buffer ready), waiter_unlink, waiter_left and wait_cancel only */
inline ring_settle() {
    if
#if MUTANT == 3
    /* broken: clears the bit while a sudog is still queued */
    :: atomic { (tail & SLOW) && !closed } ->
#else
    :: atomic { (tail & SLOW) && sqn == 0 && rqn == 0 && !closed } ->
#endif
        tail = tail & ~SLOW;
        head = head & ~SLOW
    :: else -> skip
    fi
}

/* ---- Parking ---- */

inline park() {
    atomic { permit[_pid] -> permit[_pid] = 0 }
}

inline unpark(x) {
    d_step { assert(inop[x] && !permit[x]); permit[x] = 1 }
}

/* wait_on (chan.c): waiter_enqueue (its assertion: the bit is set; then waitq_enqueue),
 * unlock, block_on (no deadline: woken by a peer or by chan_close) */
inline wait_on(d) {
    d_step {
        assert(lk == _pid + 1);
        SLOWASSERT((tail & SLOW) && (head & SLOW)); /* (3) */
        q[d * NP + qn[d]] = _pid; qn[d]++;
        inop[_pid] = 1
    }
    unlock();
    park();
    d_step {
        assert(done[_pid]);
        res = (wok[_pid] -> OK : EPIPE);
        done[_pid] = 0; wok[_pid] = 0; inop[_pid] = 0
    }
}

/* waitq_dequeue (sudog.c): the first sudog; its done word is won at once (no time-outs here) */
inline dequeue(d, p) {
    assert(qn[d] > 0);
    p = q[d * NP];
    i = 1;
    do
    :: i < qn[d] -> q[d * NP + i - 1] = q[d * NP + i]; i++
    :: else -> break
    od;
    qn[d]--; q[d * NP + qn[d]] = 0; i = 0;
    assert(!done[p]); done[p] = 1
}

/* ---- chansend (chan.c) ---- */

inline chansend(v, try) {
    ring_push(v, 0, r); /* ring_trysend */
    if
    :: r == ROK -> res = OK
    :: r == RNO && try -> res = EAGAIN
    :: else ->
        lock();
        if
        :: closed -> unlock(); res = EPIPE
        :: else ->
            if
            :: rqn > 0 ->
                d_step { /* waitq_dequeue, chan_send_to */
                    dequeue(RQ, peer);
                    rcvd[peer] = v; wok[peer] = 1; nclaim++
                }
                ring_settle(); /* chan_send_to's waiter_left */
                unlock(); unpark(peer); peer = 0; res = OK /* release_peer */
            :: else ->
                ring_push(v, 1, r); /* buf_put_locked */
                if
                :: r == ROK -> unlock(); res = OK
                :: r != ROK && try -> unlock(); res = EAGAIN /* cannot_wait */
                :: r != ROK && !try ->
                    /* buf_put_last: ring_freeze, then buf_put_locked once more */
#if MUTANT != 1
                    ring_freeze();
#endif
#if MUTANT != 2
                    ring_push(v, 1, r);
#endif
                    if
                    :: r == ROK -> ring_settle(); unlock(); res = OK /* buf_put_last's settle */
                    :: else -> sgval[_pid] = v; wait_on(SQ); sgval[_pid] = 0
                    fi
                fi
            fi
        fi
    fi;
    r = 0
}

/* ---- chanrecv (chan.c) ---- */

inline chanrecv(try, val) {
    ring_pop(val, 0, r); /* ring_tryrecv */
    if
    :: r == ROK -> res = OK
    :: r == RNO && try -> res = EAGAIN
    :: else ->
        lock();
        if
        :: sqn > 0 ->
            d_step { dequeue(SQ, peer) } /* waitq_dequeue */
            /* chan_recv_from: the ring is full; take the head (buf_take_locked), put the
             * sender's value (buf_put_locked) */
            ring_pop(val, 1, r);
            SLOWASSERT(r == ROK);
            ring_push(sgval[peer], 1, r);
            SLOWASSERT(r == ROK);
            wok[peer] = 1;
            ring_settle(); /* chan_recv_from's waiter_left, after the value moved */
            unlock(); unpark(peer); peer = 0; res = OK /* release_peer */
        :: else ->
            ring_pop(val, 1, r); /* buf_take_locked */
            if
            :: r == ROK -> unlock(); res = OK
            :: r != ROK && closed -> unlock(); val = 0; res = EPIPE
            :: r != ROK && !closed && try -> unlock(); res = EAGAIN /* cannot_wait */
            :: r != ROK && !closed && !try ->
                /* buf_take_last: ring_freeze, then buf_take_locked once more */
#if MUTANT != 1
                ring_freeze();
#endif
#if MUTANT != 2
                ring_pop(val, 1, r);
#endif
                if
                :: r == ROK -> ring_settle(); unlock(); res = OK /* buf_take_last's settle */
                :: else -> wait_on(RQ); val = rcvd[_pid]; rcvd[_pid] = 0
                fi
            fi
        fi
    fi;
    r = 0
}

/* ---- The threads ---- */

/* Sends n values from v0 on, in order; try: the first as chan_trysend, and on -EAGAIN once
 * more as chan_send. */
proctype Sender(byte v0; byte n; bit try) {
    byte t, pos, st, h, i, r, res, peer;
    bit cas;
    byte v = v0;
    bit tr = try;
    do
    :: v < v0 + n ->
        chansend(v, tr);
        if
        :: res == OK -> d_step { sent[v] = 1; nret++ }
        :: res == EAGAIN -> assert(tr); tr = 0; goto again
        :: res == EPIPE -> skip
        fi;
        v++;
again:  res = 0
    :: else -> break
    od
}

/* A value came out of a receive: once, and in each sender's order. */
inline received(val) {
    d_step {
        assert(val > 0 && val < NVAL && got[val] == 0);
        got[val]++;
#if FIFO
        assert(val > last[owner[val]]);
        last[owner[val]] = val
#else
        skip
#endif
    }
}

/* n > 0: n receives, blocking ones; try: the first as chan_tryrecv, on -EAGAIN once more as
 * chan_recv. n == 0: receive until -EPIPE, each receive a blocking one or a try. */
proctype Receiver(byte n; bit try) {
    byte t, pos, st, h, i, r, res, peer;
    bit cas;
    byte val, k;
    bit tr = try;
    do
    :: n > 0 && k < n ->
        chanrecv(tr, val);
        if
        :: res == OK -> received(val); k++
        :: res == EAGAIN -> assert(tr)
        fi;
        tr = 0; val = 0
    :: n == 0 ->
        if
        :: tr = 0
        :: tr = 1
        fi;
        chanrecv(tr, val);
        if
        :: res == OK -> received(val)
        :: res == EAGAIN -> assert(tr)
        :: res == EPIPE -> assert(val == 0); break
        fi;
        val = 0
    :: else -> break
    od
}

/* chan_close (chan.c) */
proctype Closer() {
    byte t, i, k, n;
    byte list[NP];
    lock();
    assert(!closed);
    closed = 1; /* mark_closed: closed, then ring_freeze for good */
#if MUTANT != 4
    ring_freeze();
#endif
    shut = 1;
    d_step {
        /* win every waiter, receivers first, then senders */
        do
        :: rqn > 0 -> dequeue(RQ, k); rcvd[k] = 0; wok[k] = 0; list[n] = k; n++
        :: rqn == 0 && sqn > 0 -> dequeue(SQ, k); wok[k] = 0; list[n] = k; n++
        :: else -> break
        od;
        k = 0
    }
    unlock();
    do
    :: k < n -> unpark(list[k]); k++
    :: else -> break
    od
}

init {
    byte v;
    atomic {
        v = 0;
        do
        :: v < CAP -> stamp[v] = v; v++  /* slot i waits for the send at position i */
        :: else -> break
        od;
        v = 0;
#if CFG == 1 || CFG == 2
        /* capacity 1 (CFG 1) or 2 (CFG 2): one sender of 1, 2, another of 3, one receiver */
        owner[1] = 1; owner[2] = 1; owner[3] = 2;
        run Sender(1, 2, 0);
        run Sender(3, 1, 0);
        run Receiver(3, 0);
#elif CFG == 3 || CFG == 4
        /* capacity 1 (CFG 3) or 2 (CFG 4): a sender of 1, 2; a try sender of 3 (then blocking);
         * a receiver of blocking and try receives until -EPIPE; a closer at any moment */
        owner[1] = 1; owner[2] = 1; owner[3] = 2;
        run Sender(1, 2, 0);
        run Sender(3, 1, 1);
        run Receiver(0, 0);
        run Closer();
#elif CFG == 5
        /* capacity 1: a sender of 1, 2; a sender of 3; two receivers: one of two values, one of
         * one value whose first receive is a try */
        owner[1] = 1; owner[2] = 1; owner[3] = 2;
        run Sender(1, 2, 0);
        run Sender(3, 1, 0);
        run Receiver(2, 0);
        run Receiver(1, 1);
#endif
    }
    _nr_pr == 1;
    /* every value whose send returned 0, received; no other */
    do
    :: v < NVAL -> assert(got[v] == sent[v]); v++
    :: else -> break
    od;
    assert((head & SLOW) == (tail & SLOW));
#if CFG == 1 || CFG == 2 || CFG == 5
    assert(sent[1] && sent[2] && sent[3]);
    assert(!(tail & SLOW)); /* nobody waits, open: the fast paths are back */
#endif
    assert(nret == nclaim)
}
