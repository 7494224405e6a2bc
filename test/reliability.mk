# SPDX-License-Identifier: MIT
# test/reliability.mk - stress, fuzzing and valgrind. Included by the top Makefile;
# the Check suites test/test_faults.c and test/test_errors.c are built and run by its own rules.
#
#   make stress DURATION=N THREADS=N [SCHED=1] [LAYERS=1] [GS=1] [DEADLOCK=1] [SEED=N]
#                                      the soak test (build/MODE/test/stress), default 10 s,
#                                      4 threads; SCHED=1: odd threads block through a
#                                      plugged-in scheduler that checks the hook contract;
#                                      LAYERS=1 (-L): timers, tickers, contexts, groups and
#                                      WaitGroups join the mix; GS=1 (-G, MPG=1 builds only):
#                                      build/MODE/test/stress_mpg, three workers in four are Gs
#                                      of libchan-mpg on 2 Ps (PROCS=N, up to 1024), the rest
#                                      threads;
#                                      DEADLOCK=1 (-D, with GS=1): each epoch three Gs deadlock
#                                      on purpose while the rest runs, and chan_leak_check must
#                                      name exactly them (MODE=asan or MODE=tsan for the
#                                      sanitizer builds)
#   make stress-short                  what `make test` runs in every build: ~3 s (2.5 sanitized),
#                                      and with MPG=1 ~1.5 s more of -G -L -D
#   make stress-io DURATION=N THREADS=N GS=N CORO=N   the soak of chan_io.h
#                                      (build/MODE/test/stress_io): fds, sockets on 127.0.0.1,
#                                      cancels, deadlines, chan_fd_close and signals, default 10 s,
#                                      3 threads and, where libchan-mpg is built, 4 Gs on 2 Ps, on
#                                      the same fds; CORO=N: N coroutines of test/coro.h's
#                                      scheduler (struct chan_sched) on 2 worker threads too
#   make stress-io-short               what `make test` runs in every build: ~4 s (3 sanitized)
#   make fuzz DURATION=N               each libFuzzer target for N seconds (default 30), new inputs
#                                      kept in build/fuzz/corpus_*; the seeds are test/fuzz/corpus_*
#   make fuzz-replay                   run the seed corpora once through both targets (ASan+UBSan);
#                                      part of `make test` in the asan build
#   make fuzz-tsan                     replay the corpora through fuzz_threads built with TSan
#   make valgrind                      the Check suites (plain build) under memcheck, CK_FORK=no,
#                                      then a short stress run; fails on any error or definite leak

.PHONY: stress stress-short stress-io stress-io-short fuzz fuzz-deps fuzz-build fuzz-replay fuzz-tsan valgrind valgrind-run

# ---- Stress -------------------------------------------------------------------------------------

STRESS_BIN := $(O)/test/stress

$(STRESS_BIN): test/stress.c test/soak.h chan.h $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(O)/libchan.a $(LDFLAGS) $(LDLIBS_CORE)

# The sanitizers' settings as test/run.sh sets them (stress is not run through run.sh).
STRESS_ENV := CHAN_TEST_MODE=$(MODE) \
  ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1

# The same program with libchan-mpg (-G): its scheduler's library and hwloc, as sched.mk links
# the test_mpg suites.
STRESS_MPG_BIN := $(if $(filter 1,$(MPG)),$(O)/test/stress_mpg)

$(O)/test/stress_mpg: test/stress.c test/soak.h chan.h $(MPG_HDR) $(MPG_LIB) $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -DSTRESS_MPG -o $@ $< $(MPG_LIB) $(O)/libchan.a $(LDFLAGS) $(MPG_LIBS) \
	  $(LDLIBS_CORE)

STRESS_ARGS = -d $(or $(DURATION),10) -t $(or $(THREADS),4) $(if $(SCHED),-S) $(if $(LAYERS),-L) \
  $(if $(DEADLOCK),-D) $(if $(SEED),-s $(SEED))

stress: lib $(if $(GS),$(STRESS_MPG_BIN),$(STRESS_BIN))
	$(if $(GS),$(if $(STRESS_MPG_BIN),,$(error make stress GS=1: needs libchan-mpg (MPG=1, hwloc))))
	$(STRESS_ENV) $(if $(GS),$(STRESS_MPG_BIN) -G -P $(or $(PROCS),2),$(STRESS_BIN)) $(STRESS_ARGS)

# ~3 s in all: plain threads, then half the threads through a checking scheduler hook (-S), with
# the timers, contexts and groups (-L); with libchan-mpg, 1.5 s of Gs and threads with all of it
# and partial deadlocks planted for chan_leak_check to find (-D).
STRESS_SHORT_SECS := $(if $(filter plain,$(MODE)),2,1.5)

stress-short: lib $(STRESS_BIN) $(STRESS_MPG_BIN)
	@echo "== [$(MODE)] stress -d $(STRESS_SHORT_SECS) -t 4; stress -d 1 -t 4 -S -L\
	  $(if $(STRESS_MPG_BIN),; stress_mpg -d 1.5 -t 8 -G -L -D)"
	@$(STRESS_ENV) $(STRESS_BIN) -d $(STRESS_SHORT_SECS) -t 4 -q
	@$(STRESS_ENV) $(STRESS_BIN) -d 1 -t 4 -q -S -L
	@$(if $(STRESS_MPG_BIN),$(STRESS_ENV) $(STRESS_MPG_BIN) -d 1.5 -t 8 -q -G -L -D)

# ---- The soak of chan_io.h: with Gs where libchan-mpg is built -------------------------------

STRESS_IO_BIN := $(O)/test/stress_io
STRESS_IO_MPG := $(filter 1,$(MPG))

$(STRESS_IO_BIN): test/stress_io.c test/soak.h test/coro.h $(CORE_HDR) $(O)/libchan.a \
  $(if $(STRESS_IO_MPG),$(MPG_LIB) $(MPG_HDR))
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $(if $(STRESS_IO_MPG),-DSTRESS_IO_MPG) -o $@ $< \
	  $(if $(STRESS_IO_MPG),$(MPG_LIB)) $(O)/libchan.a $(LDFLAGS) \
	  $(if $(STRESS_IO_MPG),$(MPG_LIBS)) $(LDLIBS_CORE)

stress-io: lib $(STRESS_IO_BIN)
	$(STRESS_ENV) $(STRESS_IO_BIN) -d $(or $(DURATION),10) -t $(or $(THREADS),3) \
	  $(if $(GS),-g $(GS)) $(if $(CORO),-C $(CORO))

# Threads and Gs together, then threads alone, then threads and coroutines of a plugged-in
# scheduler (their fds through libchan's poll thread).
STRESS_IO_SHORT_SECS := $(if $(filter plain,$(MODE)),2,1.5)

stress-io-short: lib $(STRESS_IO_BIN)
	@echo "== [$(MODE)] stress_io -d $(STRESS_IO_SHORT_SECS); stress_io -d 1 -t 4 -g 0;\
	  stress_io -d 1 -t 2 -g 0 -C 4"
	@$(STRESS_ENV) $(STRESS_IO_BIN) -d $(STRESS_IO_SHORT_SECS) -q
	@$(STRESS_ENV) $(STRESS_IO_BIN) -d 1 -t 4 -g 0 -q
	@$(STRESS_ENV) $(STRESS_IO_BIN) -d 1 -t 2 -g 0 -C 4 -q

# ---- Fuzzing (clang + libFuzzer; the library's sources are built into each target) ---------------

FUZZ_CC     := clang
FUZZ_DIR    := build/fuzz
FUZZ_FLAGS  := $(BASEFLAGS) -O1 -fno-omit-frame-pointer -I. -DCHAN_DEBUG
FUZZ_SAN    := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC    := $(CORE_SRC)
FUZZ_DEPS   := $(FUZZ_SRC) $(CORE_HDR) test/fuzz/fuzz_common.h
FUZZ_ENV    := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1

$(FUZZ_DIR)/fuzz_model: test/fuzz/fuzz_model.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_SRC)

$(FUZZ_DIR)/fuzz_threads: test/fuzz/fuzz_threads.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_SRC)

# TSan cannot be combined with ASan, and libFuzzer's own runtime is not TSan-clean: the threaded
# target gets a replay-only build with a small main that feeds it the corpus files.
$(FUZZ_DIR)/fuzz_threads_tsan: test/fuzz/fuzz_threads.c test/fuzz/replay_main.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=thread -o $@ test/fuzz/fuzz_threads.c \
	  test/fuzz/replay_main.c $(FUZZ_SRC)

fuzz-deps:
	@sh scripts/deps.sh test

fuzz-build: fuzz-deps $(FUZZ_DIR)/fuzz_model $(FUZZ_DIR)/fuzz_threads

fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/corpus_model $(FUZZ_DIR)/corpus_threads
	$(FUZZ_ENV) $(FUZZ_DIR)/fuzz_model -max_total_time=$(or $(DURATION),30) -print_final_stats=1 \
	  -max_len=512 $(FUZZ_DIR)/corpus_model test/fuzz/corpus_model
	$(FUZZ_ENV) $(FUZZ_DIR)/fuzz_threads -max_total_time=$(or $(DURATION),30) \
	  -print_final_stats=1 -max_len=256 -len_control=0 -timeout=20 $(FUZZ_DIR)/corpus_threads \
	  test/fuzz/corpus_threads

fuzz-replay: fuzz-build
	@set -e; for t in model threads; do \
	  echo "== [fuzz] replay test/fuzz/corpus_$$t through fuzz_$$t"; \
	  $(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$t -runs=0 -timeout=20 test/fuzz/corpus_$$t \
	    > $(FUZZ_DIR)/replay_$$t.log 2>&1 || { cat $(FUZZ_DIR)/replay_$$t.log; exit 1; }; \
	  grep -h -E '^(fuzz_|INFO: seed corpus|Done)' $(FUZZ_DIR)/replay_$$t.log | tail -n 3; \
	done

fuzz-tsan: $(FUZZ_DIR)/fuzz_threads_tsan
	TSAN_OPTIONS=halt_on_error=1:exitcode=66 $(FUZZ_DIR)/fuzz_threads_tsan \
	  test/fuzz/corpus_threads $(wildcard $(FUZZ_DIR)/corpus_threads)

# ---- valgrind memcheck on the plain build --------------------------------------------------------

VALGRIND := valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=none --track-origins=yes --child-silent-after-fork=yes --quiet
VG_DIR   := $(O)/valgrind

valgrind:
	@command -v valgrind >/dev/null || { echo "make valgrind: install valgrind" >&2; exit 1; }
	$(MAKE) --no-print-directory MODE=plain valgrind-run
	$(if $(filter 1,$(MPG)),$(MAKE) --no-print-directory mpg-valgrind)

# Check's fork mode is off (CK_FORK=no): every test runs in the suite's one process, under
# valgrind, with Check's time-outs scaled for valgrind's serialised threads. CHAN_TEST_MODE=asan:
# valgrind is slower still than ASan, so the suites' sanitizer allowances (looser lateness
# bounds, fewer iterations) apply. Memcheck errors make valgrind exit 99; definite leaks are
# found in each suite's log (a process that a test forks leaks what its parent had allocated
# when it exits: those children are silent and their leaks not counted). Every suite runs; at
# the end the suites with memcheck errors or leaks and those whose tests failed without any
# are listed apart.
# The M:N scheduler's suites run 100,000 goroutine stacks, past valgrind's fixed table of
# segments: sched/'s own mpg-valgrind runs them with valgrind-sized settings instead.
VG_TESTS := $(filter-out %/test_mpg %/test_mpg_select,$(TESTS))

valgrind-run: lib $(VG_TESTS) $(STRESS_BIN)
	@mkdir -p $(VG_DIR); memerr=""; failed=""; \
	for t in $(VG_TESTS) $(STRESS_BIN); do \
	  n=$$(basename $$t); log=$(VG_DIR)/$$n.log; \
	  echo "== [valgrind] $$n"; \
	  if [ $$t = $(STRESS_BIN) ]; then \
	    $(VALGRIND) --log-file=$$log $$t -d 2 -t 3 -q; rc=$$?; \
	  else \
	    CK_FORK=no CK_TIMEOUT_MULTIPLIER=10 CHAN_TEST_MODE=asan $(VALGRIND) --log-file=$$log $$t; \
	    rc=$$?; \
	  fi; \
	  grep -v -e 'hwloc' -e 'HWLOC_CPUID_PATH' $$log || true; \
	  if [ $$rc = 99 ] || grep -q 'definitely lost in' $$log; then memerr="$$memerr $$n"; \
	  elif [ $$rc != 0 ]; then failed="$$failed $$n"; fi; \
	done; \
	[ -z "$$memerr" ] || echo "make valgrind: memcheck errors or definite leaks in:$$memerr"; \
	[ -z "$$failed" ] || echo "make valgrind: tests failed (no memcheck error, no leak) in:$$failed"; \
	[ -z "$$memerr$$failed" ] || exit 1; \
	echo "make valgrind: every suite and the stress run clean under memcheck"
