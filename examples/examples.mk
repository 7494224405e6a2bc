# SPDX-License-Identifier: MIT
# examples/examples.mk - the example programs: built against build/$(MODE)/libchan.a into
# build/$(MODE)/examples/, run and checked by `make test` (examples-check, every build), shown
# by `make demo`.
#
#   make examples        build them
#   make examples-check  run each and check its output (examples/check.sh)
#   make demo-run        a guided run of a selection (examples/demo.sh); `make demo` calls it

EXAMPLES     := $(sort $(basename $(notdir $(wildcard examples/*.c))))
# examples/time/: the patterns that need timers or contexts (chan_time.h). They are in libchan,
# not in the drop-in pair, so dist-check (which builds $(EXAMPLES) with the pair) leaves them out.
TIME_EXAMPLES := $(sort $(basename $(notdir $(wildcard examples/time/*.c))))
# examples/sync/: the patterns of chan_sync.h (WaitGroup, group), likewise not in the pair.
SYNC_EXAMPLES := $(sort $(basename $(notdir $(wildcard examples/sync/*.c))))
# examples/trace/: what the observers of trace/ find (chan_leak.h), on the Gs of libchan-mpg:
# only where libchan-mpg is built (MPG=1).
TRACE_EXAMPLES := $(if $(filter 1,$(MPG)),$(sort $(basename $(notdir $(wildcard examples/trace/*.c)))))
# examples/io/: I/O on Gs (chan_io.h with libchan-mpg, sched/), linked with the scheduler's
# archive and hwloc as sched.mk links its tests; likewise only where libchan-mpg is built.
IO_EXAMPLES := $(if $(filter 1,$(MPG)),$(sort $(basename $(notdir $(wildcard examples/io/*.c)))))
EXAMPLE_BINS := $(EXAMPLES:%=$(O)/examples/%) $(TIME_EXAMPLES:%=$(O)/examples/%) \
  $(SYNC_EXAMPLES:%=$(O)/examples/%) $(TRACE_EXAMPLES:%=$(O)/examples/%) \
  $(IO_EXAMPLES:%=$(O)/examples/%)

.PHONY: examples examples-check demo-run

examples: $(EXAMPLE_BINS)

$(O)/examples/%: examples/%.c chan.h $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(O)/libchan.a $(LDFLAGS) $(LDLIBS_CORE)

$(O)/examples/%: examples/time/%.c chan.h time/chan_time.h $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(O)/libchan.a $(LDFLAGS) $(LDLIBS_CORE)

$(O)/examples/%: examples/sync/%.c chan.h time/chan_time.h sync/chan_sync.h $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Isync -o $@ $< $(O)/libchan.a $(LDFLAGS) $(LDLIBS_CORE)

$(O)/examples/%: examples/trace/%.c chan.h trace/chan_leak.h sched/chan_sched_mpg.h $(O)/libchan.a \
  $(O)/libchan_mpg.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Isched -o $@ $< $(O)/libchan_mpg.a $(O)/libchan.a $(LDFLAGS) -lhwloc \
	  $(LDLIBS_CORE)

$(O)/examples/%: examples/io/%.c chan.h time/chan_time.h io/chan_io.h $(MPG_HDR) $(MPG_LIB) \
  $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Isched -o $@ $< $(MPG_LIB) $(O)/libchan.a $(LDFLAGS) $(MPG_LIBS) \
	  $(LDLIBS_CORE)

# Sanitizer reports fail the run (exit status 66 under TSan, as in test/run.sh).
examples-check: $(EXAMPLE_BINS)
	@ASAN_OPTIONS="detect_leaks=1:$${ASAN_OPTIONS:-}" \
	 UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:$${UBSAN_OPTIONS:-}" \
	 TSAN_OPTIONS="halt_on_error=1:exitcode=66:$${TSAN_OPTIONS:-}" \
	 sh examples/check.sh $(O)/examples $(EXAMPLES) $(TIME_EXAMPLES) $(SYNC_EXAMPLES) \
	   $(TRACE_EXAMPLES) $(IO_EXAMPLES)

demo-run: $(EXAMPLE_BINS)
	@sh examples/demo.sh $(O)/examples
