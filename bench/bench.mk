# SPDX-License-Identifier: MIT
# bench/bench.mk - the benchmark harness (included by the top Makefile). See bench/BENCH.md.
#
#   make bench        install missing packages (deps.sh build bench), build libchan (plain) and
#                     the harness, build the Go and crossbeam peers, run everything, print the
#                     table; writes build/bench/results.csv, results.txt, table.md, chart.png
#                     Variables: N= (messages per run, 1000000), PLACE=none|spread|compact,
#                     RUNS= (5), BUDGET_MS= (time cap per run, 400; 0: always N),
#                     SHAPES= and SYSTEMS= (filters, e.g. SHAPES="spsc pool" SYSTEMS=libchan)
#   make bench-history  the per-change benchmark (bench/history.py): several library revisions
#                     side by side in one run. Each revision's tree is exported (git archive) to
#                     build/history/HASH and only its library built there (make lib MODE=plain);
#                     the current bench/bench.c is linked against each, and the harnesses take
#                     turns, one process per revision, shape and round. Writes
#                     build/history/table.md (median [min-max] per revision, later/earlier and
#                     last/first ratios), results.csv, results.txt. Variables: REVS= (revisions,
#                     oldest first; default: the changes bench/BENCH.md discusses, through HEAD),
#                     SHAPES= (shape:cap pairs, e.g. SHAPES="spsc:1 pool:0"), ROUNDS= (5),
#                     N= (1000000), BUDGET_MS= (300), SYSTEM=libchan-mpg (the shapes on Gs),
#                     MODE=counters (each revision built with seam.h's event counters, printed
#                     per message under the table)
#   make bench-echo   a TCP echo server over loopback on Gs, on threads and in Go, with 1, 100 and
#                     10,000 connections (bench/echo.py; `make bench` runs it too): round trips
#                     per second, server CPU per round trip, peak RSS. Variables: SECONDS_PER=,
#                     RUNS=, CONNS=, SYSTEMS=
#   make bench-io     the wake-up latency of a thread woken by an fd's readiness against one woken
#                     by a channel (bench/io_latency.c); N= samples (2000)
#   make bench-leak   what a leak check costs (bench/leak.c, chan_leak(3)): chan_leak_check and
#                     chan_leftovers against the heap size (1 MiB to MAX_MB=1024) and the number of
#                     blocked waiters (10 to 10,000 Gs); RUNS= (5) checks each, the median
#   make bench-scale  how cost grows (bench/scale.py): ns per operation against threads, Gs,
#                     select cases, live timers, live channels and element size, libchan beside
#                     Go (bench/go-scale), with this machine's floors; writes build/bench/scale.csv,
#                     scale.md (the table bench/BENCH.md includes: python3 bench/scale.py
#                     --update-md), scale.txt. Variables: SCALE= (series, or a prefix: e.g.
#                     SCALE="threads gs"), ROUNDS= (3), BUDGET_MS= (100 per timed run)
#   scale-smoke       part of `make test` (plain; CHECKS_plain): every series of the scaling
#                     harness once, at a small X, one short run; fails only if the harness or
#                     libchan fails (never on timing)
#   bench-smoke       part of `make test` (plain; CHECKS_plain): every shape once with a small N,
#                     on both harnesses (libchan on pthreads, libchan-mpg on Gs); fails only if a
#                     harness, libchan or the scheduler fails (never on timing)
#
# Two harnesses from bench/bench.c: build/plain/bench/bench (system=libchan, workers are
# pthreads) and build/plain/bench/bench-mpg (-DBENCH_MPG, system=libchan-mpg: workers are Gs of
# sched/'s M:N scheduler, linked with libchan_mpg.a and libchan's static archive, as sched.mk).
#
# Only bench/ and build/ are touched: the peers build under build/bench (GOPATH, GOCACHE,
# CARGO_TARGET_DIR), cargo offline from Debian's crate directory (bench/rust/.cargo/config.toml).

BENCH_BIN       := build/plain/bench/bench
BENCH_MPG_BIN   := build/plain/bench/bench-mpg
SCALE_BIN       := build/plain/bench/scale
SCALE_MPG_BIN   := build/plain/bench/scale-mpg
BENCH_N         := $(or $(N),1000000)
BENCH_PLACE     := $(or $(PLACE),none)
BENCH_RUNS      := $(or $(RUNS),5)
BENCH_BUDGET_MS := $(or $(BUDGET_MS),400)
SMOKE_N         := 2000

.PHONY: bench bench-deps bench-smoke bench-history bench-io bench-leak bench-scale scale-smoke \
  bench-echo

bench-deps:
	@sh scripts/deps.sh build bench

bench: bench-deps
	@$(MAKE) --no-print-directory lib MODE=plain
	@$(MAKE) --no-print-directory $(BENCH_BIN) $(BENCH_MPG_BIN) MODE=plain
	N=$(BENCH_N) PLACE=$(BENCH_PLACE) RUNS=$(BENCH_RUNS) BUDGET_MS=$(BENCH_BUDGET_MS) \
	  SHAPES="$(SHAPES)" SYSTEMS="$(SYSTEMS)" python3 bench/run.py --libchan $(BENCH_BIN) \
	  --libchan-mpg $(BENCH_MPG_BIN) --out build/bench
	@$(MAKE) --no-print-directory bench-echo

# Empty variables leave bench/history.py its defaults (its docstring lists them).
bench-history: bench-deps
	REVS="$(REVS)" SHAPES="$(SHAPES)" ROUNDS="$(ROUNDS)" N="$(N)" BUDGET_MS="$(BUDGET_MS)" \
	  SYSTEM="$(SYSTEM)" MODE="$(filter counters,$(MODE))" python3 bench/history.py

# Empty variables leave bench/scale.py its defaults (its docstring lists them).
bench-scale: bench-deps
	@$(MAKE) --no-print-directory lib MODE=plain
	@$(MAKE) --no-print-directory $(SCALE_BIN) $(SCALE_MPG_BIN) MODE=plain
	SCALE="$(SCALE)" ROUNDS="$(ROUNDS)" BUDGET_MS="$(BUDGET_MS)" python3 bench/scale.py \
	  --scale $(SCALE_BIN) --scale-mpg $(SCALE_MPG_BIN) --out build/bench

# The harness links the static library of its build (and hwloc, for placement), built with the
# flags of every program of the tree: the plain build's for `make bench`, which asks for
# MODE=plain; MODE=counters gives build/counters/bench/bench and bench-mpg, which also print
# seam.h's event counters per message (bench-history's MODE=counters builds them that way).
$(O)/bench/bench: bench/bench.c bench/benchutil.h chan.h seam.h $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ bench/bench.c $(O)/libchan.a $(LDFLAGS) -lhwloc $(LDLIBS_CORE)

# The same shapes on Gs: the scheduler's archive first, then libchan's (it uses libchan's hidden
# helpers, which only the static archive has).
$(O)/bench/bench-mpg: bench/bench.c bench/benchutil.h chan.h seam.h sched/chan_sched_mpg.h \
  $(O)/libchan_mpg.a $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -DBENCH_MPG -o $@ bench/bench.c $(O)/libchan_mpg.a $(O)/libchan.a \
	  $(LDFLAGS) -lhwloc $(LDLIBS_CORE)

# The wake-up latency of a thread blocked on an fd, against one blocked on a channel
# (bench/io_latency.c says how it measures). N= samples (2000).
BENCH_IO_BIN := build/plain/bench/io_latency

$(BENCH_IO_BIN): bench/io_latency.c chan.h io/chan_io.h build/plain/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ bench/io_latency.c build/plain/libchan.a $(LDFLAGS) $(LDLIBS_CORE)

bench-io:
	@$(MAKE) --no-print-directory lib MODE=plain
	@$(MAKE) --no-print-directory $(BENCH_IO_BIN) MODE=plain
	$(BENCH_IO_BIN) $(or $(N),2000)

# The leak check's cost: libchan-mpg's Gs are the waiters.
BENCH_LEAK_BIN := build/plain/bench/bench-leak

$(BENCH_LEAK_BIN): bench/leak.c chan.h trace/chan_leak.h sched/chan_sched_mpg.h \
  build/plain/libchan_mpg.a build/plain/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ bench/leak.c build/plain/libchan_mpg.a \
	  build/plain/libchan.a $(LDFLAGS) -lhwloc $(LDLIBS_CORE)

bench-leak:
	@$(MAKE) --no-print-directory lib MODE=plain
	@$(MAKE) --no-print-directory $(BENCH_LEAK_BIN) MODE=plain
	$(BENCH_LEAK_BIN) $(or $(MAX_MB),1024) $(or $(RUNS),5)

# The scaling harness, built as the benchmark harness is (scale-mpg: the gs and spawn series on Gs).
$(SCALE_BIN): bench/scale.c bench/benchutil.h chan.h time/chan_time.h build/plain/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ bench/scale.c build/plain/libchan.a $(LDFLAGS) $(LDLIBS_CORE)

$(SCALE_MPG_BIN): bench/scale.c bench/benchutil.h chan.h sched/chan_sched_mpg.h \
  build/plain/libchan_mpg.a build/plain/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -DBENCH_MPG -o $@ bench/scale.c build/plain/libchan_mpg.a \
	  build/plain/libchan.a $(LDFLAGS) -lhwloc $(LDLIBS_CORE)

# Smoke: each shape at each of its capacities, SMOKE_N messages, one run, no time cap, on each
# harness in turn. The harness checks every value's arrival (checksums) and exits non-zero on any
# error; `timeout` turns a hang into a failure instead of a stuck `make test`. Timings are
# printed, never judged.
bench-smoke: $(BENCH_BIN) $(BENCH_MPG_BIN)
	@for h in $(BENCH_BIN) $(BENCH_MPG_BIN); do \
	  echo "== [plain] bench smoke: $$h all shapes x capacities, N=$(SMOKE_N), 1 run (timings not checked)"; \
	  timeout 600 $$h all 0 $(SMOKE_N) 1 0 > $$h.smoke.out 2>&1; rc=$$?; \
	  cat $$h.smoke.out; \
	  if [ $$rc -ne 0 ]; then echo "bench smoke: $$h FAILED (exit $$rc; 124 = hung for 600 s)"; exit 1; fi; \
	  echo "bench smoke: $$h: $$(grep -c '^bench ' $$h.smoke.out) shape/capacity runs completed, every value checked"; \
	done

# Smoke of the scaling harness: every series at a small X (and the largest element and select),
# one calibration-sized run each (BUDGET_MS 0), checked as bench-smoke is.
SCALE_SMOKE := threads-c0:4 threads-c1024:1 threads-c1024:8 select-ready:16 select-wake:4096 \
               timers:100 channels:100 elem-c0:4096 elem-c64:65535 floor-line:1 floor-memcpy:4096 \
               floor-touch:100
scale-smoke: $(SCALE_BIN) $(SCALE_MPG_BIN)
	@echo "== [plain] scale smoke: every series once, small X, 1 short run (timings not checked)"
	@n=0; for p in $(SCALE_SMOKE) mpg:gs:100 mpg:spawn:4; do \
	  h=$(SCALE_BIN); case $$p in mpg:*) h=$(SCALE_MPG_BIN); p=$${p#mpg:};; esac; \
	  timeout 300 $$h $${p%%:*} $${p#*:} 1 0 || { echo "scale smoke: $$h $${p%%:*} $${p#*:} FAILED (exit $$?; 124 = hung for 300 s)"; exit 1; }; \
	  n=$$((n + 1)); done; \
	echo "scale smoke: $$n series ran, every value checked"

# The echo benchmark (bench/echo.py): a TCP echo server over 127.0.0.1 on Gs (libchan-mpg), on
# a thread per connection (libchan), and in Go (bench/go-echo, the net package), each under the
# same load (bench/echo.c's, on Gs) with 1, 100 and 10,000 connections: round trips per
# second, the server's CPU time and peak RSS. `make bench` runs it after the channel shapes;
# `make bench-echo` alone. Variables: SECONDS_PER= (per run, 2), RUNS= (3), CONNS= ("1 100
# 10000"), SYSTEMS= (filter). Writes build/bench/echo.csv and echo.md.
BENCH_ECHO_BIN := build/plain/bench/echo

$(BENCH_ECHO_BIN): bench/echo.c chan.h io/chan_io.h sched/chan_sched_mpg.h \
  build/plain/libchan_mpg.a build/plain/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Isched -o $@ bench/echo.c build/plain/libchan_mpg.a \
	  build/plain/libchan.a $(LDFLAGS) -lhwloc $(LDLIBS_CORE)

bench-echo:
	@$(MAKE) --no-print-directory lib MODE=plain
	@$(MAKE) --no-print-directory $(BENCH_ECHO_BIN) MODE=plain
	SECONDS_PER="$(SECONDS_PER)" RUNS="$(RUNS)" CONNS="$(CONNS)" SYSTEMS="$(SYSTEMS)" \
	  python3 bench/echo.py --echo $(BENCH_ECHO_BIN) --out build/bench
