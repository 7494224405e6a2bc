// SPDX-License-Identifier: MIT
// The benchmark shapes of bench/bench.c, written with Go's own channels and goroutines
// (GOMAXPROCS left at its default). Usage and output format: see bench/bench.c and bench/BENCH.md.
//
//	bench-go SHAPE CAP N RUNS BUDGET_MS     SHAPE "all" runs every shape at its default capacities
//
// Each timed run prints
//
//	bench system=go shape=S cap=C run=R n=MSGS value=NS unit=ns/msg cpu=NS vcsw=X
//
// (cpu: CPU time of the process per message; vcsw: voluntary context switches per message)
// and the process ends with "rss system=go maxrss_kib=K" (peak RSS: VmHWM, see status).
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const producers = 4 // mpsc, mpmc, select_*: senders (and receivers for mpmc, select_both)
const poolWorkers = 8
const poolResultsCap = 1024

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "bench-go: "+format+"\n", a...)
	os.Exit(1)
}

func check(what string, got, want uint64) {
	if got != want {
		fail("%s: checksum %d, want %d", what, got, want)
	}
}

// sumTo returns 0 + 1 + ... + (k-1): what a sender of the values 0..k-1 delivers.
func sumTo(k int) uint64 { return uint64(k) * uint64(k-1) / 2 }

// Every shape returns the number of messages (pingpong: round trips) it moved; the caller
// times it. Each one checks that every value arrived.

func seq(cp, n int) int {
	if cp == 0 {
		fail("seq needs a buffered channel")
	}
	c := make(chan uint64, cp)
	rounds := n / cp
	if rounds == 0 {
		rounds = 1
	}
	var sum uint64
	for r := 0; r < rounds; r++ {
		for i := 0; i < cp; i++ {
			c <- uint64(i)
		}
		for i := 0; i < cp; i++ {
			sum += <-c
		}
	}
	check("seq", sum, uint64(rounds)*sumTo(cp))
	return rounds * cp
}

// spscOf is spsc over any element type: size64 and size1024 use byte arrays.
func spscOf[T any](cp, n int, mk func(uint64) T, get func(*T) uint64) int {
	c := make(chan T, cp)
	go func() {
		for i := 0; i < n; i++ {
			c <- mk(uint64(i))
		}
	}()
	var sum uint64
	for i := 0; i < n; i++ {
		v := <-c
		sum += get(&v)
	}
	check("spsc", sum, sumTo(n))
	return n
}

func spsc(cp, n int) int {
	return spscOf(cp, n, func(v uint64) uint64 { return v }, func(p *uint64) uint64 { return *p })
}

func size64(cp, n int) int {
	return spscOf(cp, n, func(v uint64) (a [64]byte) { binary.LittleEndian.PutUint64(a[:], v); return },
		func(p *[64]byte) uint64 { return binary.LittleEndian.Uint64(p[:]) })
}

func size1024(cp, n int) int {
	return spscOf(cp, n, func(v uint64) (a [1024]byte) { binary.LittleEndian.PutUint64(a[:], v); return },
		func(p *[1024]byte) uint64 { return binary.LittleEndian.Uint64(p[:]) })
}

func mpsc(cp, n int) int {
	per := n / producers
	if per == 0 {
		per = 1
	}
	c := make(chan uint64, cp)
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < per; i++ {
				c <- uint64(i)
			}
		}()
	}
	var sum uint64
	for i := 0; i < per*producers; i++ {
		sum += <-c
	}
	check("mpsc", sum, producers*sumTo(per))
	return per * producers
}

func mpmc(cp, n int) int {
	per := n / producers
	if per == 0 {
		per = 1
	}
	c := make(chan uint64, cp)
	var wg sync.WaitGroup
	sums := make([]uint64, producers*8) // one per receiver, 64 bytes apart
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < per; i++ {
				c <- uint64(i)
			}
		}()
	}
	wg.Add(producers)
	for r := 0; r < producers; r++ {
		go func(r int) {
			var s uint64
			for i := 0; i < per; i++ {
				s += <-c
			}
			sums[r*8] = s
			wg.Done()
		}(r)
	}
	wg.Wait()
	var sum uint64
	for r := 0; r < producers; r++ {
		sum += sums[r*8]
	}
	check("mpmc", sum, producers*sumTo(per))
	return per * producers
}

func selectRx(cp, n int) int {
	per := n / producers
	if per == 0 {
		per = 1
	}
	var cs [producers]chan uint64
	for i := range cs {
		cs[i] = make(chan uint64, cp)
	}
	for p := 0; p < producers; p++ {
		go func(c chan uint64) {
			for i := 0; i < per; i++ {
				c <- uint64(i)
			}
		}(cs[p])
	}
	var sum uint64
	for i := 0; i < per*producers; i++ {
		select {
		case v := <-cs[0]:
			sum += v
		case v := <-cs[1]:
			sum += v
		case v := <-cs[2]:
			sum += v
		case v := <-cs[3]:
			sum += v
		}
	}
	check("select_rx", sum, producers*sumTo(per))
	return per * producers
}

func selectBoth(cp, n int) int {
	per := n / producers
	if per == 0 {
		per = 1
	}
	var cs [producers]chan uint64
	for i := range cs {
		cs[i] = make(chan uint64, cp)
	}
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < per; i++ {
				v := uint64(i)
				select {
				case cs[0] <- v:
				case cs[1] <- v:
				case cs[2] <- v:
				case cs[3] <- v:
				}
			}
		}()
	}
	var wg sync.WaitGroup
	sums := make([]uint64, producers*8)
	wg.Add(producers)
	for r := 0; r < producers; r++ {
		go func(r int) {
			var s uint64
			for i := 0; i < per; i++ {
				select {
				case v := <-cs[0]:
					s += v
				case v := <-cs[1]:
					s += v
				case v := <-cs[2]:
					s += v
				case v := <-cs[3]:
					s += v
				}
			}
			sums[r*8] = s
			wg.Done()
		}(r)
	}
	wg.Wait()
	var sum uint64
	for r := 0; r < producers; r++ {
		sum += sums[r*8]
	}
	check("select_both", sum, producers*sumTo(per))
	return per * producers
}

func pingpong(cp, n int) int {
	ping := make(chan uint64, cp)
	pong := make(chan uint64, cp)
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	var sum uint64
	for i := 0; i < n; i++ {
		ping <- uint64(i)
		sum += <-pong
	}
	check("pingpong", sum, sumTo(n)+uint64(n))
	return n
}

// pool: 1 producer, poolWorkers workers on one channel of capacity cp (0 by default), results
// fanned in on a channel of capacity poolResultsCap that the main goroutine drains.
func pool(cp, n int) int {
	jobs := make(chan uint64, cp)
	results := make(chan uint64, poolResultsCap)
	go func() {
		for i := 0; i < n; i++ {
			jobs <- uint64(i)
		}
		close(jobs)
	}()
	var wg sync.WaitGroup
	wg.Add(poolWorkers)
	for w := 0; w < poolWorkers; w++ {
		go func() {
			for j := range jobs {
				results <- j * 2
			}
			wg.Done()
		}()
	}
	var sum uint64
	for i := 0; i < n; i++ {
		sum += <-results
	}
	wg.Wait()
	check("pool", sum, 2*sumTo(n))
	return n
}

// goroutines: cp goroutines each block receiving from one unbuffered channel; once every one
// has started, the channel is closed, which wakes them all, and each returns (cp is the count,
// n is ignored). The time runs from the first go statement to the last return. bytesPerG: the
// rise of the peak RSS (VmHWM) over the RSS before the first go statement, per goroutine; every
// goroutine is alive at the peak. It holds for a fresh process only (run prints it for the first
// run alone), as bench.c's.
var bytesPerG float64

func goroutines(cp, n int) int {
	if cp == 0 {
		fail("goroutines needs CAP, the number of goroutines, > 0")
	}
	c := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(cp)
	done.Add(cp)
	rss0 := status("VmRSS:")
	for i := 0; i < cp; i++ {
		go func() {
			started.Done()
			<-c
			done.Done()
		}()
	}
	started.Wait()
	close(c)
	done.Wait()
	bytesPerG = float64(status("VmHWM:")-rss0) * 1024 / float64(cp)
	return cp
}

func cpuNs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// idleCPU: one goroutine blocked in a receive with nothing to receive. After 1 ms of waiting,
// the process's CPU time over `window` (Go cannot measure one goroutine's), in percent of a core.
func idleCPU(window time.Duration) float64 {
	c := make(chan uint64)
	done := make(chan struct{})
	go func() {
		<-c
		close(done)
	}()
	time.Sleep(time.Millisecond)
	t0, c0 := time.Now(), cpuNs()
	time.Sleep(window)
	c1, t1 := cpuNs(), time.Now()
	close(c)
	<-done
	return 100 * float64(c1-c0) / float64(t1.Sub(t0).Nanoseconds())
}

type shape struct {
	name  string
	caps  []int
	fn    func(cp, n int) int
	count bool // cp is a count of goroutines, n is ignored: no calibration, every run timed
}

var shapes = []shape{
	{"seq", []int{1, 1024}, seq, false},
	{"spsc", []int{0, 1, 1024}, spsc, false},
	{"mpsc", []int{0, 1, 1024}, mpsc, false},
	{"mpmc", []int{0, 1, 1024}, mpmc, false},
	{"select_rx", []int{0, 1, 1024}, selectRx, false},
	{"select_both", []int{0, 1, 1024}, selectBoth, false},
	{"pingpong", []int{0}, pingpong, false},
	{"pool", []int{0}, pool, false},
	{"size64", []int{1024}, size64, false},
	{"size1024", []int{1024}, size1024, false},
	{"idle_cpu", []int{0}, nil, false},
	{"goroutines", []int{10000}, goroutines, true},
}

// measure runs fn once with about n messages; elapsed ns and the messages really moved.
func measure(fn func(cp, n int) int, cp, n int) (int64, int) {
	t0 := time.Now()
	moved := fn(cp, n)
	return time.Since(t0).Nanoseconds(), moved
}

// cold: BENCH_COLD set in the environment (not empty, not 0): no warm-up, no calibration.
var cold = os.Getenv("BENCH_COLD") != "" && os.Getenv("BENCH_COLD") != "0"

// run: warm up and calibrate (grow n from 1000 until one run takes 20 ms or reaches N), then
// RUNS timed runs of min(N, what BUDGET_MS allows at the calibrated speed) messages. Cold: RUNS
// runs of N, the first of them the process's first channel work.
func run(s shape, cp, n, runs int, budgetMs int64) {
	if s.fn == nil { // idle_cpu
		window := time.Duration(budgetMs) * time.Millisecond
		if window < 20*time.Millisecond {
			window = 20 * time.Millisecond
		}
		for r := 1; r <= runs; r++ {
			fmt.Printf("bench system=go shape=%s cap=%d run=%d n=0 value=%.4f unit=%%cpu\n",
				s.name, cp, r, idleCPU(window))
		}
		return
	}
	if s.count {
		// No warm-up: the first run of a process is what a program starting its goroutines pays.
		for r := 1; r <= runs; r++ {
			var a, b syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &a)
			el, k := measure(s.fn, cp, n)
			syscall.Getrusage(syscall.RUSAGE_SELF, &b)
			m := float64(k)
			cpu := b.Utime.Nano() + b.Stime.Nano() - a.Utime.Nano() - a.Stime.Nano()
			fmt.Printf("bench system=go shape=%s cap=%d run=%d n=%d value=%.2f unit=ns/G cpu=%.1f vcsw=%.3f",
				s.name, cp, r, k, float64(el)/m, float64(cpu)/m, float64(b.Nvcsw-a.Nvcsw)/m)
			if r == 1 {
				fmt.Printf(" bytes_per_g=%.0f", bytesPerG)
			}
			fmt.Println()
		}
		return
	}
	want := n
	if want > 1000 {
		want = 1000
	}
	var el int64
	var k int // what moved: a shape rounds to its goroutine count
	for !cold {
		el, k = measure(s.fn, cp, want)
		if el >= 20e6 || want >= n {
			break
		}
		want *= 4
		if want > n {
			want = n
		}
	}
	target := n
	if budgetMs > 0 && !cold {
		perMsg := float64(el) / float64(k)
		if allowed := int(float64(budgetMs) * 1e6 / perMsg); allowed < target {
			target = allowed
		}
		if target < 1000 && n >= 1000 {
			target = 1000
		}
	}
	for r := 1; r <= runs; r++ {
		var a, b syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &a)
		el, moved := measure(s.fn, cp, target)
		syscall.Getrusage(syscall.RUSAGE_SELF, &b)
		m := float64(moved)
		// A shape that changed regime after calibration must not make every later run long.
		if budgetMs > 0 && !cold && el > 2*budgetMs*1e6 {
			if target = int(float64(budgetMs) * 1e6 / (float64(el) / m)); target < 1000 {
				target = 1000
			}
		}
		cpu := b.Utime.Nano() + b.Stime.Nano() - a.Utime.Nano() - a.Stime.Nano()
		fmt.Printf("bench system=go shape=%s cap=%d run=%d n=%d value=%.2f unit=ns/msg cpu=%.1f vcsw=%.3f\n",
			s.name, cp, r, moved, float64(el)/m, float64(cpu)/m, float64(b.Nvcsw-a.Nvcsw)/m)
	}
}

// status: a line of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), or -1. The peak RSS
// printed at the end is VmHWM: getrusage's Maxrss also counts the process that forked us before
// its execve (Linux carries the maximum across exec).
func status(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

func atoi(s, what string) int {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		fail("bad %s %q", what, s)
	}
	return v
}

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: bench-go SHAPE|all CAP N RUNS BUDGET_MS")
		os.Exit(2)
	}
	name := os.Args[1]
	cp := atoi(os.Args[2], "CAP")
	n := atoi(os.Args[3], "N")
	runs := atoi(os.Args[4], "RUNS")
	budget := int64(atoi(os.Args[5], "BUDGET_MS"))
	if n < 1 {
		n = 1
	}
	fmt.Printf("info system=go version=%s gomaxprocs=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	found := false
	for _, s := range shapes {
		if name == "all" {
			for _, c := range s.caps {
				run(s, c, n, runs, budget)
			}
			found = true
		} else if s.name == name {
			run(s, cp, n, runs, budget)
			found = true
		}
	}
	if !found {
		fail("unknown shape %q", name)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("rss system=go maxrss_kib=%d rusage_maxrss_kib=%d\n", status("VmHWM:"), ru.Maxrss)
}
