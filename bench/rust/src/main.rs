// SPDX-License-Identifier: MIT
//! The benchmark shapes of bench/bench.c, written with crossbeam-channel on native threads.
//! Usage and output format: see bench/bench.c and bench/BENCH.md.
//!
//!     bench-crossbeam SHAPE|all CAP N RUNS BUDGET_MS
//!
//! Each timed run prints `bench system=crossbeam shape=S cap=C run=R n=MSGS value=NS unit=ns/msg
//! cpu=NS vcsw=X` (CPU time of the process and voluntary context switches, per message)
//! and the process ends with `rss system=crossbeam maxrss_kib=K` (peak RSS: VmHWM).
//! Placement: the driver passes the CPU sets that hwloc chose for libchan's threads in
//! BENCH_CPUS_TX (senders) and BENCH_CPUS_RX (receivers), comma-separated OS CPU numbers; each
//! thread binds itself with sched_setaffinity. Unset: the OS decides.

use crossbeam_channel::{bounded, select, Receiver, Sender};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const PRODUCERS: usize = 4;
const POOL_WORKERS: usize = 8;
const POOL_RESULTS_CAP: usize = 1024;

// ---- The few libc calls std does not expose (no libc crate offline: declared here) ----------

#[repr(C)]
struct Rusage {
    // struct rusage on 64-bit Linux: two struct timeval, then 14 longs (ru_maxrss first,
    // ru_nvcsw the second last).
    f: [i64; 18],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    fn sched_setaffinity(pid: i32, cpusetsize: usize, mask: *const u64) -> i32;
}

const RUSAGE_SELF: i32 = 0;

fn rusage() -> Rusage {
    let mut r = Rusage { f: [0; 18] };
    unsafe {
        getrusage(RUSAGE_SELF, &mut r);
    }
    r
}

fn cpu_ns() -> i64 {
    let r = rusage();
    (r.f[0] + r.f[2]) * 1_000_000_000 + (r.f[1] + r.f[3]) * 1000
}

/// Peak RSS of this process image in KiB: VmHWM. (getrusage's ru_maxrss also counts the process
/// that forked us before its execve: Linux carries the maximum across exec.)
fn vm_hwm_kib() -> i64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(-1)
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Tx,
    Rx,
}

struct Place {
    tx: Option<[u64; 16]>,
    rx: Option<[u64; 16]>,
}

fn parse_cpus(var: &str) -> Option<[u64; 16]> {
    let s = std::env::var(var).ok()?;
    let mut mask = [0u64; 16];
    let mut any = false;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?),
            None => {
                let v = part.trim().parse::<usize>().ok()?;
                (v, v)
            }
        };
        for cpu in lo..=hi.min(1023) {
            mask[cpu / 64] |= 1 << (cpu % 64);
            any = true;
        }
    }
    if any {
        Some(mask)
    } else {
        None
    }
}

impl Place {
    /// The calling thread back to every CPU (after the main thread has worked as a sender).
    fn unbind(&self) {
        if self.tx.is_some() || self.rx.is_some() {
            let all = [u64::MAX; 16];
            unsafe {
                sched_setaffinity(0, std::mem::size_of_val(&all), all.as_ptr());
            }
        }
    }

    fn bind(&self, role: Role) {
        let m = if role == Role::Tx { &self.tx } else { &self.rx };
        if let Some(mask) = m {
            // pid 0: the calling thread. A failure leaves the thread where the OS put it.
            unsafe {
                sched_setaffinity(0, std::mem::size_of_val(mask), mask.as_ptr());
            }
        }
    }
}

fn fail(msg: String) -> ! {
    eprintln!("bench-crossbeam: {}", msg);
    std::process::exit(1)
}

fn check(what: &str, got: u64, want: u64) {
    if got != want {
        fail(format!("{}: checksum {}, want {}", what, got, want));
    }
}

/// 0 + 1 + ... + (k-1): what a sender of the values 0..k-1 delivers.
fn sum_to(k: usize) -> u64 {
    (k as u64) * (k as u64).wrapping_sub(1) / 2
}

/// Every shape returns (elapsed, messages moved). The threads time themselves: the clock runs
/// from the first thread's start (past the start barrier, once all are created and placed) to
/// the last one's end.
type Shape = fn(&Place, usize, usize) -> (Duration, usize);

/// What one thread reports: its start and end, and its checksum.
type Part = (Instant, Instant, u64);

/// Runs f as one thread of a shape: placed by role, released with the others at bar.
fn part(pl: &Place, role: Role, bar: &Barrier, f: impl FnOnce() -> u64) -> Part {
    pl.bind(role);
    bar.wait();
    let t0 = Instant::now();
    let acc = f();
    (t0, Instant::now(), acc)
}

/// Joins the threads of a shape: the time from the first start to the last end, and the sum.
fn finish(hs: Vec<std::thread::ScopedJoinHandle<'_, Part>>) -> (Duration, u64) {
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    let mut sum = 0u64;
    for h in hs {
        let (t0, t1, acc) = h.join().unwrap();
        first = Some(first.map_or(t0, |f| f.min(t0)));
        last = Some(last.map_or(t1, |l| l.max(t1)));
        sum += acc;
    }
    (last.unwrap() - first.unwrap(), sum)
}

fn seq(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    if cap == 0 {
        fail("seq needs a buffered channel".into());
    }
    let (s, r) = bounded::<u64>(cap);
    let rounds = (n / cap).max(1);
    let bar = Barrier::new(1);
    let (el, sum) = std::thread::scope(|sc| {
        finish(vec![sc.spawn(|| {
            part(pl, Role::Tx, &bar, || {
                let mut acc = 0u64;
                for _ in 0..rounds {
                    for i in 0..cap {
                        s.send(i as u64).unwrap();
                    }
                    for _ in 0..cap {
                        acc += r.recv().unwrap();
                    }
                }
                acc
            })
        })])
    });
    check("seq", sum, rounds as u64 * sum_to(cap));
    (el, rounds * cap)
}

/// spsc over any element type: size64 and size1024 use byte arrays carrying the value in their
/// first 8 bytes.
fn spsc_of<T: Send>(pl: &Place, cap: usize, n: usize, mk: fn(u64) -> T, get: fn(&T) -> u64) -> (Duration, usize) {
    let (s, r) = bounded::<T>(cap);
    let bar = Barrier::new(2);
    let (el, sum) = std::thread::scope(|sc| {
        let tx = sc.spawn(|| {
            part(pl, Role::Tx, &bar, || {
                for i in 0..n {
                    s.send(mk(i as u64)).unwrap();
                }
                0
            })
        });
        let rx = sc.spawn(|| {
            part(pl, Role::Rx, &bar, || {
                let mut acc = 0u64;
                for _ in 0..n {
                    acc += get(&r.recv().unwrap());
                }
                acc
            })
        });
        finish(vec![tx, rx])
    });
    check("spsc", sum, sum_to(n));
    (el, n)
}

fn spsc(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    spsc_of(pl, cap, n, |v| v, |p| *p)
}

fn size64(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    spsc_of(
        pl,
        cap,
        n,
        |v| {
            let mut a = [0u8; 64];
            a[..8].copy_from_slice(&v.to_le_bytes());
            a
        },
        |p| u64::from_le_bytes(p[..8].try_into().unwrap()),
    )
}

fn size1024(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    spsc_of(
        pl,
        cap,
        n,
        |v| {
            let mut a = [0u8; 1024];
            a[..8].copy_from_slice(&v.to_le_bytes());
            a
        },
        |p| u64::from_le_bytes(p[..8].try_into().unwrap()),
    )
}

fn send_all(s: &Sender<u64>, per: usize) -> u64 {
    for i in 0..per {
        s.send(i as u64).unwrap();
    }
    0
}

fn recv_n(r: &Receiver<u64>, k: usize) -> u64 {
    let mut acc = 0u64;
    for _ in 0..k {
        acc += r.recv().unwrap();
    }
    acc
}

/// mpsc (receivers 1) and mpmc (receivers PRODUCERS): PRODUCERS senders of per values each.
fn multi(pl: &Place, cap: usize, n: usize, receivers: usize, what: &str) -> (Duration, usize) {
    let per = (n / PRODUCERS).max(1);
    let total = per * PRODUCERS;
    let (s, r) = bounded::<u64>(cap);
    let bar = Barrier::new(PRODUCERS + receivers);
    let (el, sum) = std::thread::scope(|sc| {
        let mut hs = Vec::new();
        for _ in 0..PRODUCERS {
            hs.push(sc.spawn(|| part(pl, Role::Tx, &bar, || send_all(&s, per))));
        }
        for _ in 0..receivers {
            hs.push(sc.spawn(|| part(pl, Role::Rx, &bar, || recv_n(&r, total / receivers))));
        }
        finish(hs)
    });
    check(what, sum, PRODUCERS as u64 * sum_to(per));
    (el, total)
}

fn mpsc(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    multi(pl, cap, n, 1, "mpsc")
}

fn mpmc(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    multi(pl, cap, n, PRODUCERS, "mpmc")
}

fn select_recv4(r: &[Receiver<u64>; PRODUCERS]) -> u64 {
    select! {
        recv(r[0]) -> v => v.unwrap(),
        recv(r[1]) -> v => v.unwrap(),
        recv(r[2]) -> v => v.unwrap(),
        recv(r[3]) -> v => v.unwrap(),
    }
}

fn select_send4(s: &[Sender<u64>; PRODUCERS], v: u64) {
    select! {
        send(s[0], v) -> res => res.unwrap(),
        send(s[1], v) -> res => res.unwrap(),
        send(s[2], v) -> res => res.unwrap(),
        send(s[3], v) -> res => res.unwrap(),
    }
}

fn chans4(cap: usize) -> ([Sender<u64>; PRODUCERS], [Receiver<u64>; PRODUCERS]) {
    let v: Vec<(Sender<u64>, Receiver<u64>)> = (0..PRODUCERS).map(|_| bounded::<u64>(cap)).collect();
    let s: Vec<Sender<u64>> = v.iter().map(|p| p.0.clone()).collect();
    let r: Vec<Receiver<u64>> = v.iter().map(|p| p.1.clone()).collect();
    (s.try_into().unwrap(), r.try_into().unwrap())
}

/// select_rx: PRODUCERS senders each on its own channel, one receiver selecting over all;
/// select_both: PRODUCERS senders selecting over the 4 channels, PRODUCERS receivers selecting
/// over the same 4.
fn selects(pl: &Place, cap: usize, n: usize, both: bool) -> (Duration, usize) {
    let per = (n / PRODUCERS).max(1);
    let total = per * PRODUCERS;
    let (s, r) = chans4(cap);
    let receivers = if both { PRODUCERS } else { 1 };
    let bar = Barrier::new(PRODUCERS + receivers);
    let (el, sum) = std::thread::scope(|sc| {
        let mut hs = Vec::new();
        for i in 0..PRODUCERS {
            let (s, bar) = (&s, &bar);
            hs.push(sc.spawn(move || {
                part(pl, Role::Tx, bar, || {
                    if both {
                        for v in 0..per {
                            select_send4(s, v as u64);
                        }
                        0
                    } else {
                        send_all(&s[i], per)
                    }
                })
            }));
        }
        for _ in 0..receivers {
            hs.push(sc.spawn(|| {
                part(pl, Role::Rx, &bar, || {
                    let mut acc = 0u64;
                    for _ in 0..total / receivers {
                        acc += select_recv4(&r);
                    }
                    acc
                })
            }));
        }
        finish(hs)
    });
    check(if both { "select_both" } else { "select_rx" }, sum, PRODUCERS as u64 * sum_to(per));
    (el, total)
}

fn select_rx(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    selects(pl, cap, n, false)
}

fn select_both(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    selects(pl, cap, n, true)
}

/// pingpong: one value bounced over two channels of capacity cap (0 by default); n round trips.
fn pingpong(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    let (ping_s, ping_r) = bounded::<u64>(cap);
    let (pong_s, pong_r) = bounded::<u64>(cap);
    let bar = Barrier::new(2);
    let (el, sum) = std::thread::scope(|sc| {
        let b = sc.spawn(|| {
            part(pl, Role::Rx, &bar, || {
                for _ in 0..n {
                    let v = ping_r.recv().unwrap();
                    pong_s.send(v + 1).unwrap();
                }
                0
            })
        });
        let a = sc.spawn(|| {
            part(pl, Role::Tx, &bar, || {
                let mut acc = 0u64;
                for i in 0..n {
                    ping_s.send(i as u64).unwrap();
                    acc += pong_r.recv().unwrap();
                }
                acc
            })
        });
        finish(vec![a, b])
    });
    check("pingpong", sum, sum_to(n) + n as u64);
    (el, n)
}

/// pool: 1 producer, POOL_WORKERS workers on one channel of capacity cap (0 by default), results
/// fanned in on a channel of capacity POOL_RESULTS_CAP that the main thread drains. Timed from
/// the producer's start to the moment the last result is in.
fn pool(pl: &Place, cap: usize, n: usize) -> (Duration, usize) {
    let (job_s, job_r) = bounded::<u64>(cap);
    let (res_s, res_r) = bounded::<u64>(POOL_RESULTS_CAP);
    let bar = Barrier::new(POOL_WORKERS + 2);
    let mut sum = 0u64;
    let mut el = Duration::ZERO;
    std::thread::scope(|sc| {
        let bar = &bar;
        let prod = sc.spawn(move || {
            part(pl, Role::Tx, bar, || {
                for i in 0..n {
                    job_s.send(i as u64).unwrap();
                }
                0 // job_s is dropped here: the workers' loops end (Go's close)
            })
        });
        for _ in 0..POOL_WORKERS {
            let (job_r, res_s) = (job_r.clone(), res_s.clone());
            sc.spawn(move || {
                pl.bind(Role::Rx);
                bar.wait();
                for j in job_r.iter() {
                    res_s.send(j * 2).unwrap();
                }
            });
        }
        pl.bind(Role::Tx);
        bar.wait();
        let t0 = Instant::now();
        for _ in 0..n {
            sum += res_r.recv().unwrap();
        }
        let t1 = Instant::now();
        let (p0, _, _) = prod.join().unwrap();
        el = t1 - p0.min(t0);
    });
    pl.unbind();
    check("pool", sum, 2 * sum_to(n));
    (el, n)
}

/// idle_cpu: one thread blocked in recv with nothing to receive. After 1 ms of waiting, the
/// process's CPU time over `window`, in percent of one core (the main thread sleeps meanwhile).
fn idle_cpu(window: Duration) -> f64 {
    let (s, r) = bounded::<u64>(0);
    let t = std::thread::spawn(move || r.recv().is_err());
    std::thread::sleep(Duration::from_millis(1));
    let (t0, c0) = (Instant::now(), cpu_ns());
    std::thread::sleep(window);
    let (c1, el) = (cpu_ns(), t0.elapsed());
    drop(s);
    t.join().unwrap();
    100.0 * (c1 - c0) as f64 / el.as_nanos() as f64
}

struct Entry {
    name: &'static str,
    caps: &'static [usize],
    f: Option<Shape>,
}

const SHAPES: &[Entry] = &[
    Entry { name: "seq", caps: &[1, 1024], f: Some(seq) },
    Entry { name: "spsc", caps: &[0, 1, 1024], f: Some(spsc) },
    Entry { name: "mpsc", caps: &[0, 1, 1024], f: Some(mpsc) },
    Entry { name: "mpmc", caps: &[0, 1, 1024], f: Some(mpmc) },
    Entry { name: "select_rx", caps: &[0, 1, 1024], f: Some(select_rx) },
    Entry { name: "select_both", caps: &[0, 1, 1024], f: Some(select_both) },
    Entry { name: "pingpong", caps: &[0], f: Some(pingpong) },
    Entry { name: "pool", caps: &[0], f: Some(pool) },
    Entry { name: "size64", caps: &[1024], f: Some(size64) },
    Entry { name: "size1024", caps: &[1024], f: Some(size1024) },
    Entry { name: "idle_cpu", caps: &[0], f: None },
];

/// Warm up and calibrate (grow n from 1000 until one run takes 20 ms or reaches N), then RUNS
/// timed runs of min(N, what BUDGET_MS allows at the calibrated speed) messages.
fn run(pl: &Place, e: &Entry, cap: usize, n: usize, runs: usize, budget_ms: u64) {
    let f = match e.f {
        Some(f) => f,
        None => {
            let window = Duration::from_millis(budget_ms.max(20));
            for r in 1..=runs {
                println!(
                    "bench system=crossbeam shape={} cap={} run={} n=0 value={:.4} unit=%cpu",
                    e.name, cap, r, idle_cpu(window)
                );
            }
            return;
        }
    };
    // Cold (BENCH_COLD set, not empty, not 0): no warm-up, no calibration; RUNS runs of N, the
    // first of them the process's first channel work.
    let cold = std::env::var("BENCH_COLD").map_or(false, |v| !v.is_empty() && v != "0");
    let mut want = n.min(1000);
    let (mut el, mut k) = (Duration::ZERO, 0);
    while !cold {
        // k: what moved (a shape rounds to its thread count)
        (el, k) = f(pl, cap, want);
        if el >= Duration::from_millis(20) || want >= n {
            break;
        }
        want = (want * 4).min(n);
    }
    let mut target = n;
    if budget_ms > 0 && !cold {
        let per_msg = el.as_nanos() as f64 / k as f64;
        let allowed = (budget_ms as f64 * 1e6 / per_msg) as usize;
        target = target.min(allowed);
        if target < 1000 && n >= 1000 {
            target = 1000;
        }
    }
    for r in 1..=runs {
        let (c0, v0) = (cpu_ns(), rusage().f[16]);
        let (d, moved) = f(pl, cap, target);
        let (c1, v1) = (cpu_ns(), rusage().f[16]);
        let m = moved as f64;
        // A shape that changed regime after calibration must not make every later run long.
        if budget_ms > 0 && !cold && d.as_nanos() > 2 * budget_ms as u128 * 1_000_000 {
            target = ((budget_ms as f64 * 1e6 / (d.as_nanos() as f64 / m)) as usize).max(1000);
        }
        println!(
            "bench system=crossbeam shape={} cap={} run={} n={} value={:.2} unit=ns/msg cpu={:.1} vcsw={:.3}",
            e.name,
            cap,
            r,
            moved,
            d.as_nanos() as f64 / m,
            (c1 - c0) as f64 / m,
            (v1 - v0) as f64 / m
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: bench-crossbeam SHAPE|all CAP N RUNS BUDGET_MS");
        std::process::exit(2);
    }
    let num = |i: usize, what: &str| -> usize {
        args[i].parse::<usize>().unwrap_or_else(|_| fail(format!("bad {} {:?}", what, args[i])))
    };
    let (name, cap, n, runs, budget) = (args[1].as_str(), num(2, "CAP"), num(3, "N").max(1), num(4, "RUNS"), num(5, "BUDGET_MS"));
    let pl = Place { tx: parse_cpus("BENCH_CPUS_TX"), rx: parse_cpus("BENCH_CPUS_RX") };
    println!(
        "info system=crossbeam threads=native pinned={}",
        if pl.tx.is_some() || pl.rx.is_some() { "yes" } else { "no" }
    );
    let mut found = false;
    for e in SHAPES {
        if name == "all" {
            for &c in e.caps {
                run(&pl, e, c, n, runs, budget as u64);
            }
            found = true;
        } else if e.name == name {
            run(&pl, e, cap, n, runs, budget as u64);
            found = true;
        }
    }
    if !found {
        fail(format!("unknown shape {:?}", name));
    }
    println!("rss system=crossbeam maxrss_kib={} rusage_maxrss_kib={}", vm_hwm_kib(), rusage().f[4]);
}
