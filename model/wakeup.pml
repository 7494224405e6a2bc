/* SPDX-License-Identifier: MIT */
/*
 * wakeup.pml - the wake-up protocol of libchan (chan.c, select.c, sudog.c) in Promela.
 *
 * What is modelled, as the C code does it (see model/README.md for the map, function by
 * function):
 *   - channels with a lock, a closed flag and two FIFO wait queues of sudogs (unbuffered
 *     channels: the buffer plays no part in waking);
 *   - waiters with a done word won by compare-and-swap (0 -> 1), ok, fired, and a permit
 *     (park/unpark: unpark may come first; park with a deadline may time out only while no
 *     permit is there);
 *   - waitq_dequeue: walk the queue, CAS each sudog's done word, skip the ones already won, and
 *     on a win unlink every sudog of that waiter on this channel (sudog_unlink_same);
 *   - chansend/chanrecv (blocking and _until): the waker path (dequeue a peer, move the value,
 *     unlock, then unpark) and the blocking path (enqueue, unlock, park; on a time-out,
 *     waiter_timeout: win the done word and unlink under the lock, or lose it and park once
 *     more, without deadline, to consume the unpark that is on its way);
 *   - selectgo: lock in address order, pass 1 in a nondeterministic poll order, pass 2 enqueue
 *     on every channel, park, pass 3: woken -> relock only the channels other than the one
 *     that fired and unlink there; timed out and won -> relock all and unlink all;
 *   - closechan: set closed, win every waiter of both queues, zero receivers' elems, unlock,
 *     then unpark each; chan_free: -EBUSY while a sudog is queued, else the channel is gone.
 *
 * Checked (assertions, and spin's invalid-end-state check for deadlocks and lost wake-ups):
 *   - no lost wake-up, no deadlock: every process terminates (every operation returns);
 *   - every value whose send succeeded is received exactly once; none is received twice; no
 *     value is written into a case of a select that another case won;
 *   - the chan_free rule: an operation never touches (locks) a channel after a waker on that
 *     channel has won it and unlinked its sudogs there, and nobody touches a freed channel;
 *   - queue hygiene: a sudog is unlinked only while queued, queued only once, and only under
 *     its channel's lock; a channel's queues are empty when chan_free succeeds;
 *   - the scheduler contract: unpark only names a task whose operation is still in progress,
 *     at most once per block (never onto a pending permit), and no permit outlives an
 *     operation.
 *
 * Configurations (spin -DCFG=n): see model/README.md. Mutants (-DMUTANT=n) break one rule of
 * the C code each, to show that the checks are not vacuous: spin must find an error in each.
 */

#ifndef CFG
#define CFG 1
#endif
#ifndef MUTANT
#define MUTANT 0
#endif

#define NCHAN 2
#define RECVQ 0
#define SENDQ 1
#define QMAX 3
#define QI(c, d) ((c) * 2 + (d))

#define NSG 9     /* sudogs 1..NSG (0: none) */
#define NW 4      /* waiters 0..NW-1 */
#define NVAL 4    /* values 1..NVAL-1 (0: the zero value) */

#define EMPTY 0
#define NOTIFIED 2

#define OK 0
#define EPIPE 1
#define ETIMEDOUT 2
#define EBUSY 3

/* ---- Channels ---- */
byte lk[NCHAN];            /* 0 free, else the holder's _pid + 1 */
bool closed[NCHAN];
bool freed[NCHAN];
byte q[NCHAN * 2 * QMAX];  /* the wait queues, FIFO, sudog ids */
byte qn[NCHAN * 2];

/* ---- Sudogs (static: each process owns fixed ones, set up in init) ---- */
byte sg_w[NSG + 1];        /* its waiter */
byte sg_c[NSG + 1];        /* its channel */
bit sg_send[NSG + 1];      /* which queue */
byte sg_val[NSG + 1];      /* send: the value to send; recv: where the value lands */
byte sg_idx[NSG + 1];      /* select: case index */
bit sg_inq[NSG + 1];       /* queued now */

/* ---- Waiters ---- */
bit done[NW];
bit wok[NW];
byte fired[NW];
byte permit[NW];
bit inop[NW];              /* its operation is in progress (between call and return) */
bit gone[NW * NCHAN];      /* a waker on this channel won and unlinked it: hands off */
bit settled[NW];           /* queued (blocked) or returned: the closer may free after close */
bit finished[NW];

/* ---- The books ---- */
bit sent[NVAL];            /* the send of this value returned 0 (or its case, ok) */
byte got[NVAL];            /* times this value was received */

/* ---- Locking (sudog.c: lock/unlock) ---- */

inline lock(c) {
    atomic {
        lk[c] == 0 ->
        assert(!freed[c]);
        assert(!gone[w * NCHAN + c]);  /* the chan_free rule */
        lk[c] = _pid + 1
    }
}

inline unlock(c) {
    d_step { assert(lk[c] == _pid + 1); lk[c] = 0 }
}

/* ---- Wait queues (sudog.c), always under the channel's lock ---- */

inline enqueue(s) {
    d_step {
        qi = QI(sg_c[s], sg_send[s]);
        assert(lk[sg_c[s]] == _pid + 1 && !freed[sg_c[s]] && !sg_inq[s] && qn[qi] < QMAX);
        q[qi * QMAX + qn[qi]] = s;
        qn[qi]++;
        sg_inq[s] = 1;
        qi = 0
    }
}

/* waitq_unlink; the caller holds the lock of sg_c[s] */
inline unlink_body(s) {
    qi = QI(sg_c[s], sg_send[s]);
    assert(lk[sg_c[s]] == _pid + 1 && !freed[sg_c[s]]);
    assert(sg_inq[s]);
    i = 0;
    do
    :: q[qi * QMAX + i] == s -> break
    :: else -> i++
    od;
    do
    :: i + 1 < qn[qi] -> q[qi * QMAX + i] = q[qi * QMAX + i + 1]; i++
    :: else -> break
    od;
    qn[qi]--;
    q[qi * QMAX + qn[qi]] = 0;
    sg_inq[s] = 0;
    i = 0;
    qi = 0
}

inline unlink(s) {
    d_step { unlink_body(s) }
}

/* waitq_dequeue: the first sudog of queue (c, d) whose waiter this call wins, with all of that
 * waiter's sudogs on c unlinked (sudog_unlink_same); 0 when none can be won. Each CAS is one
 * step of its own: other channels' wakers and the owner's time-out race it. */
inline dequeue(c, d, res) {
    res = 0;
    j = 0;
    do
    :: j >= qn[QI(c, d)] -> break
    :: j < qn[QI(c, d)] ->
        atomic {
            t = q[QI(c, d) * QMAX + j];
            if
#if MUTANT == 6
            /* mutant 6: a plain store instead of the CAS: two wakers may both complete it */
            :: true -> done[sg_w[t]] = 1; res = t
#else
            :: done[sg_w[t]] == 0 -> done[sg_w[t]] = 1; res = t
#endif
            :: else -> j++
            fi
        }
        if
        :: res != 0 ->
            d_step {
                gone[sg_w[res] * NCHAN + c] = 1;
                t = 1;
                do
                :: t > NSG -> break
                :: t <= NSG ->
                    if
                    :: sg_w[t] == sg_w[res] && sg_c[t] == c && sg_inq[t] -> unlink_body(t)
#if MUTANT == 3
                    /* mutant 3: the waker unlinks the winner's sudogs on other channels too */
                    :: sg_w[t] == sg_w[res] && sg_c[t] != c && sg_inq[t] -> unlink_body(t)
#endif
                    :: else -> skip
                    fi;
                    t++
                od;
                t = 0
            };
            break
        :: else -> skip
        fi
    od;
    j = 0
}

/* ---- Parking (sudog.c: the permit) ---- */

/* waiter_park: 0 after consuming an unpark; with a deadline (tmo), -ETIMEDOUT possibly, but
 * only while no permit is there (parker_park's final CAS PARKED -> EMPTY). */
inline park(tmo, r) {
    if
    :: atomic { permit[w] == NOTIFIED -> permit[w] = EMPTY; r = OK }
    :: atomic { tmo && permit[w] != NOTIFIED -> r = ETIMEDOUT }
    fi
}

/* wakeup_run: after the waker has dropped every lock. */
inline unpark(x) {
    d_step {
        assert(inop[x]);              /* never names a task whose operation has returned */
        assert(permit[x] != NOTIFIED); /* once per block */
        permit[x] = NOTIFIED
    }
}

/* waiter_timeout: win the done word (-ETIMEDOUT) or consume the waker's unpark (0). */
inline waiter_timeout(r) {
    atomic {
        if
        :: done[w] == 0 -> done[w] = 1; r = ETIMEDOUT
        :: else -> r = OK
        fi
    }
#if MUTANT == 2
    /* mutant 2: no park once more after losing the race to a waker */
#else
    if
    :: r == OK -> park(0, r)
    :: else -> skip
    fi
#endif
}

inline op_begin() {
    d_step { inop[w] = 1; done[w] = 0; wok[w] = 0; fired[w] = 0 }
}

inline op_end() {
    d_step {
        assert(permit[w] == EMPTY);  /* no permit outlives the operation */
        t = 1;                       /* and no sudog of it is still queued */
        do
        :: t > NSG -> break
        :: t <= NSG -> assert(!(sg_w[t] == w && sg_inq[t])); t++
        od;
        t = 0;
        inop[w] = 0;
        settled[w] = 1;
        finished[w] = 1;
        c = 0; peer = 0; wake = 0
    }
}

inline received(v) {
    d_step { assert(v != 0); got[v]++; assert(got[v] == 1) }
}

/* ---- chansend / chanrecv (chan.c), blocking or with a deadline ---- */

proctype Single(byte w; byte s)
{
    byte i, j, t, qi, c, peer, wake, r, val;
    bit tmo;
    if :: tmo = 0 :: tmo = 1 fi;   /* chan_send / chan_send_until (any deadline) */
    op_begin();
    c = sg_c[s];
    lock(c);
    if
    :: sg_send[s] && closed[c] -> unlock(c); r = EPIPE
    :: !sg_send[s] && closed[c] -> unlock(c); r = EPIPE; val = 0
    :: !closed[c] ->
        dequeue(c, 1 - sg_send[s], peer);
        if
        :: peer != 0 ->
            d_step {
                if
                :: sg_send[s] -> sg_val[peer] = sg_val[s]          /* chan_send_to */
                :: else -> val = sg_val[peer]                       /* chan_recv_from */
                fi;
                wok[sg_w[peer]] = 1;
                fired[sg_w[peer]] = peer;
                wake = sg_w[peer]
            };
            unlock(c);
            unpark(wake);
            r = OK
        :: else ->
            if
            :: tmo -> unlock(c); r = ETIMEDOUT     /* cannot_wait: the deadline has passed */
            :: true ->
                enqueue(s);
                settled[w] = 1;
                unlock(c);
                park(tmo, r);                       /* block_on */
                if
                :: r == ETIMEDOUT -> waiter_timeout(r)
                :: else -> skip
                fi;
                if
                :: r == ETIMEDOUT ->                /* ours is the done word */
                    lock(c); unlink(s); unlock(c)
                :: else ->
                    assert(fired[w] == s && !sg_inq[s]);
                    r = (wok[w] -> OK : EPIPE);
                    val = sg_val[s]
                fi
            fi
        fi
    fi;
    if
    :: r == OK && sg_send[s] -> sent[sg_val[s]] = 1
    :: r == OK && !sg_send[s] -> received(val)
    :: else -> skip
    fi;
    op_end()
}

/* ---- selectgo (select.c) ---- */

/* try_case: performs case k (a local of Select) if it is ready (took = 1, ok, val, wake). */
inline try_case() {  /* case k */
    c = sg_c[k];
    took = 0;
    if
    :: !sg_send[k] ->
        dequeue(c, SENDQ, peer);
        if
        :: peer != 0 ->
            d_step { val = sg_val[peer]; wok[sg_w[peer]] = 1; fired[sg_w[peer]] = peer;
                     wake = sg_w[peer] + 1; took = 1; ok = 1 }
        :: else ->
            if
            :: closed[c] -> took = 1; ok = 0; val = 0
            :: else -> skip
            fi
        fi
    :: sg_send[k] ->
        if
        :: closed[c] -> took = 1; ok = 0
        :: else ->
            dequeue(c, RECVQ, peer);
            if
            :: peer != 0 ->
                d_step { sg_val[peer] = sg_val[k]; wok[sg_w[peer]] = 1;
                         fired[sg_w[peer]] = peer; wake = sg_w[peer] + 1; took = 1; ok = 1 }
            :: else -> skip
            fi
        fi
    fi
}

/* Select over n (1..3) cases: sudogs s .. s + n - 1, sorted by channel (the lock order); the
 * same channel may appear in several cases. */
proctype Select(byte w; byte s; byte n)
{
    byte i, j, t, qi, c, peer, wake, r, val, k, fc, tried, uses, ch;
    bit tmo, took, ok;
    if :: tmo = 0 :: tmo = 1 fi;   /* chan_select / chan_select_until */
    op_begin();
    /* the channels used, each locked once, in address order (sellock) */
    uses = (1 << sg_c[s]) | (1 << sg_c[s + 1]) | (n > 2 -> 1 << sg_c[s + 2] : 0);
    if :: uses & 1 -> lock(0) :: else -> skip fi;
    if :: uses & 2 -> lock(1) :: else -> skip fi;
    /* pass 1, in a poll order chosen nondeterministically (every permutation) */
    took = 0;
    tried = 0;
    do
    :: took || tried == (1 << n) - 1 -> break
    :: !took && !(tried & 1) -> tried = tried | 1; k = s; try_case()
    :: !took && !(tried & 2) -> tried = tried | 2; k = s + 1; try_case()
    :: !took && n > 2 && !(tried & 4) -> tried = tried | 4; k = s + 2; try_case()
    od;
    tried = 0;
    if
    :: took ->
        if :: uses & 1 -> unlock(0) :: else -> skip fi;
        if :: uses & 2 -> unlock(1) :: else -> skip fi;
        if :: wake != 0 -> unpark(wake - 1) :: else -> skip fi;
        r = OK
    :: !took && tmo ->                                   /* cannot_wait */
        if :: uses & 1 -> unlock(0) :: else -> skip fi;
        if :: uses & 2 -> unlock(1) :: else -> skip fi;
        r = ETIMEDOUT
    :: !took ->
        /* pass 2: a sudog per case, in lock order */
        for (k : s .. s + n - 1) { enqueue(k) }
        settled[w] = 1;
        if :: uses & 1 -> unlock(0) :: else -> skip fi;
        if :: uses & 2 -> unlock(1) :: else -> skip fi;
        /* pass 3 */
        park(tmo, r);
        if
        :: r == ETIMEDOUT -> waiter_timeout(r)
        :: else -> skip
        fi;
        if
        :: r == ETIMEDOUT ->                             /* ours: relock all, unlink all */
            if :: uses & 1 -> lock(0) :: else -> skip fi;
            if :: uses & 2 -> lock(1) :: else -> skip fi;
            for (k : s .. s + n - 1) { unlink(k) }
            if :: uses & 1 -> unlock(0) :: else -> skip fi;
            if :: uses & 2 -> unlock(1) :: else -> skip fi
        :: else ->
            k = fired[w];
            assert(k >= s && k < s + n && !sg_inq[k]);
            fc = sg_c[k];
#if MUTANT == 4
            /* mutant 4: the woken select does not unlink itself from the other channels */
            skip;
#elif MUTANT == 1
            /* mutant 1: relock every channel, the one that fired too */
            for (ch : 0 .. 1) {
                if
                :: uses & (1 << ch) ->
                    lock(ch);
                    for (t : s .. s + n - 1) {
                        if :: sg_c[t] == ch && sg_inq[t] -> unlink(t) :: else -> skip fi
                    }
                    unlock(ch)
                :: else -> skip
                fi
            }
#else
            /* relock only the channels other than the one that fired; unlink there */
            for (ch : 0 .. 1) {
                if
                :: ch != fc && (uses & (1 << ch)) ->
                    lock(ch);
                    for (t : s .. s + n - 1) {
                        if :: sg_c[t] == ch -> unlink(t) :: else -> skip fi
                    }
                    unlock(ch)
                :: else -> skip
                fi
            }
#endif
            ok = wok[w];
            val = sg_val[k]
        fi
    fi;
    if
    :: r == OK ->
        if
        :: sg_send[k] && ok -> sent[sg_val[k]] = 1
        :: !sg_send[k] && ok -> received(val)
        :: else -> skip
        fi
    :: else -> k = 0   /* timed out: no case won */
    fi;
    /* nothing was written into a receive case that did not win */
    for (t : s .. s + n - 1) {
        assert(t == k || sg_send[t] || sg_val[t] == 0)
    }
    op_end()
}

/* ---- closechan and chan_free (chan.c) ---- */

inline chan_close(ch) {
    lock(ch);
    if
    :: closed[ch] -> unlock(ch)
    :: else ->
        closed[ch] = 1;
        nwake = 0;
        do
        :: dequeue(ch, RECVQ, peer);
           if
           :: peer == 0 -> dequeue(ch, SENDQ, peer)
           :: else -> skip
           fi;
           if
           :: peer == 0 -> break
           :: else ->
               d_step {
                   if :: !sg_send[peer] -> sg_val[peer] = 0 :: else -> skip fi;  /* zero_elem */
                   wok[sg_w[peer]] = 0;
                   fired[sg_w[peer]] = peer;
                   wl[nwake] = sg_w[peer];
                   nwake++;
                   peer = 0
               }
           fi
        od;
        unlock(ch);
#if MUTANT == 5
        /* mutant 5: chan_close forgets to unpark the waiters it won */
        nwake = 0;
#endif
        do
        :: nwake > 0 -> nwake--; unpark(wl[nwake]); wl[nwake] = 0
        :: else -> break
        od
    fi
}

/* chan_free: -EBUSY while a sudog is queued; else the channel is gone. */
inline chan_free(ch, r) {
    lock(ch);
    if
    :: qn[QI(ch, RECVQ)] + qn[QI(ch, SENDQ)] > 0 -> unlock(ch); r = EBUSY
    :: else -> d_step { assert(lk[ch] == _pid + 1); lk[ch] = 0; freed[ch] = 1 }; r = OK
    fi
}

/* The closer: closes channel 1, frees it as soon as the rule allows (every operation that may
 * use it has blocked or returned: none will start), then the same for channel 0, which
 * releases any operation still blocked; then checks the books. */
proctype Closer(byte w; byte u0; byte u1)
{
    byte i, j, t, qi, c, peer, wake, r, nwake;
    byte wl[NW];
    byte cc, users;
    for (cc : 0 .. 1) {
        chan_close(1 - cc);
        users = (cc == 0 -> u1 : u0);
        (users & 1 -> settled[0] : 1) && (users & 2 -> settled[1] : 1) &&
        (users & 4 -> settled[2] : 1);
        /* chan_free until it succeeds; after -EBUSY, retry once the queues have emptied (a
         * retry before that changes nothing; without this wait a lost wake-up would hide as
         * a busy loop instead of showing as an invalid end state) */
        r = EBUSY;
        do
        :: r == EBUSY -> chan_free(1 - cc, r);
           if
           :: r == EBUSY -> (qn[QI(1 - cc, RECVQ)] + qn[QI(1 - cc, SENDQ)] == 0)
           :: else -> skip
           fi
        :: r == OK -> break
        od
    }
    users = u0 | u1;
    (users & 1 -> finished[0] : 1) && (users & 2 -> finished[1] : 1) &&
    (users & 4 -> finished[2] : 1);
    for (t : 1 .. NVAL - 1) {
        assert(got[t] == sent[t])
    }
}

init {
    atomic {
        /* sudogs 1, 2: a select that receives from channel 0 (case 0) and channel 1 (case 1) */
        sg_w[1] = 0; sg_c[1] = 0; sg_send[1] = 0; sg_idx[1] = 0;
        sg_w[2] = 0; sg_c[2] = 1; sg_send[2] = 0; sg_idx[2] = 1;
        /* sudogs 3, 4: a select that sends value 1 on channel 0 and value 2 on channel 1 */
        sg_w[3] = 1; sg_c[3] = 0; sg_send[3] = 1; sg_idx[3] = 0; sg_val[3] = 1;
        sg_w[4] = 1; sg_c[4] = 1; sg_send[4] = 1; sg_idx[4] = 1; sg_val[4] = 2;
        /* sudog 5: waiter 2 sends value 3 on channel 0 */
        sg_w[5] = 2; sg_c[5] = 0; sg_send[5] = 1; sg_val[5] = 3;
        /* sudogs 6, 7, 8: a select that receives from channel 0, sends value 1 on channel 0
         * (the same channel in two cases, in both queues) and receives from channel 1 */
        sg_w[6] = 0; sg_c[6] = 0; sg_send[6] = 0; sg_idx[6] = 0;
        sg_w[7] = 0; sg_c[7] = 0; sg_send[7] = 1; sg_idx[7] = 1; sg_val[7] = 1;
        sg_w[8] = 0; sg_c[8] = 1; sg_send[8] = 0; sg_idx[8] = 2;
        /* sudog 9: waiter 1 receives from channel 0 */
        sg_w[9] = 1; sg_c[9] = 0; sg_send[9] = 0;
#if CFG == 1
        /* 3 threads: a receiving select, a sender, the closer */
        run Select(0, 1, 2);
        run Single(2, 5);
        run Closer(3, 1 | 4, 1);
#elif CFG == 2
        /* 3 threads: a receiving select against a sending select, the closer */
        run Select(0, 1, 2);
        run Select(1, 3, 2);
        run Closer(3, 1 | 2, 1 | 2);
#elif CFG == 3
        /* 4 threads: both selects, the sender, the closer */
        run Select(0, 1, 2);
        run Select(1, 3, 2);
        run Single(2, 5);
        run Closer(3, 1 | 2 | 4, 1 | 2);
#elif CFG == 4
        /* 4 threads: a select naming channel 0 twice (recv and send) and channel 1, a receiver
         * and a sender on channel 0, the closer */
        run Select(0, 6, 3);
        run Single(1, 9);
        run Single(2, 5);
        run Closer(3, 1 | 2 | 4, 1);
#endif
    }
}
