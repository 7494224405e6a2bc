# SPDX-License-Identifier: MIT
# libchan - the only build system.
#
#   make              build/libchan.a, build/libchan.so (release: -O2 -g), and libchan-mpg
#                     (build/plain/libchan_mpg.a, .so) when hwloc is installed (MPG= below)
#   make test         install missing Debian packages, then build and run every check, three
#                     builds one after the other: plain (gcc -O2), ASan+UBSan (gcc), TSan
#                     (clang). One line per check (per test program for the unit tests); a
#                     failing check prints its whole output; V=1 prints everything. Fails if
#                     any fails. The list, in order: CHECKS_plain, CHECKS_asan, CHECKS_tsan.
#   make check-MODE   one build of it: check-plain, check-asan, check-tsan
#   make demo         install missing packages (the build's), build and run the demo pipeline
#   make install      headers, libraries, pkg-config and CMake files, man pages, the trace
#                     converters; PREFIX=/usr/local DESTDIR= (and LIBDIR, INCLUDEDIR, BINDIR,
#                     DATADIR, MANDIR). make uninstall removes what it installed.
#   make dist         the drop-in pair dist/chan.h + dist/chan.c (scripts/dist.mk)
#   make format       lay the C sources out as .clang-format says (make test checks it)
#   make clean
#
# Variables: MODE (plain|asan|tsan, for the build/$(MODE) tree; counters: plain with the event
# counters of seam.h, for measuring), CC, ASAN_CC, TSAN_CC, CFLAGS, LDFLAGS, OBJCOPY, MPG (1: build
# libchan-mpg, which needs hwloc; 0: leave it out; default: 1 when pkg-config finds hwloc), V=1,
# N, THREADS, DURATION (never SECONDS: bash's own counter).

# ---- The version: chan.h's CHAN_VERSION_MAJOR/MINOR/PATCH, the one place it is written --------

VERSION       := $(shell awk '$$2 ~ /^CHAN_VERSION_(MAJOR|MINOR|PATCH)$$/ { v = v s $$3; s = "." } \
                   END { print v }' chan.h)
SOMAJOR       := $(firstword $(subst ., ,$(VERSION)))
ifneq ($(words $(subst ., ,$(VERSION))),3)
  $(error chan.h: CHAN_VERSION_MAJOR, _MINOR and _PATCH not found (got '$(VERSION)'))
endif

PREFIX        ?= /usr/local
DESTDIR       ?=
LIBDIR        ?= $(PREFIX)/lib
INCLUDEDIR    ?= $(PREFIX)/include
BINDIR        ?= $(PREFIX)/bin
DATADIR       ?= $(PREFIX)/share
MANDIR        ?= $(DATADIR)/man
CMAKEDIR      ?= $(LIBDIR)/cmake/libchan

# ---- Flags: every program and library of the tree is built with these --------------------------

# The sanitizer builds also check the library's own invariants and preconditions (-DCHAN_DEBUG:
# ASSERT in chan_internal.h); the plain build and the drop-in pair compile them out.
MODE          ?= plain
ASAN_CC       ?= gcc
TSAN_CC       ?= clang
O             := build/$(MODE)

WARN          := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASEFLAGS     := -std=c11 -g -pthread $(WARN)
ifeq ($(MODE),plain)
  MODEFLAGS   := -O2
else ifeq ($(MODE),asan)
  CC          := $(ASAN_CC)
  MODEFLAGS   := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
                 -DCHAN_DEBUG
else ifeq ($(MODE),tsan)
  CC          := $(TSAN_CC)
  MODEFLAGS   := -O1 -fno-omit-frame-pointer -fsanitize=thread -DCHAN_DEBUG
else ifeq ($(MODE),counters)
  # Instrumentation, for measuring only (bench/BENCH.md): plain, with the event counters of
  # seam.h compiled in. Not part of make test.
  MODEFLAGS   := -O2 -DCHAN_COUNTERS
else
  $(error MODE must be plain, asan, tsan or counters)
endif
CFLAGS        ?=
LDFLAGS       ?=
OBJCOPY       ?= objcopy
# The library proper is built with its trace hooks (trace/); the drop-in pair (dist/chan.c) is
# not, so there they compile to nothing. -Itime -Itrace -Iio: the public headers of time/, trace/
# and io/ are included as "chan_time.h", "chan_trace.h" and "chan_io.h", as they are installed
# (flat, beside chan.h).
TRACEFLAGS    := $(if $(wildcard trace/record.c),-DCHAN_TRACE_BUILD)
# ALLCFLAGS: programs (tests, examples, benchmarks) and libraries alike. LIBFLAGS: the
# libraries' objects also: position-independent, hidden unless a header exports them, and
# CHAN_LIBRARY_BUILD (what the library has and the drop-in pair has not).
ALLCFLAGS     := $(BASEFLAGS) $(MODEFLAGS) $(CFLAGS) $(TRACEFLAGS) -I. -Itime -Itrace -Iio
LIBFLAGS      := -fPIC -fvisibility=hidden -DCHAN_LIBRARY_BUILD
LDLIBS_CORE   := -pthread
CHECK_LIBS    := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

# ---- libchan: the core (also the drop-in pair), then the parts built on it ----------------------

# time/ (timers and contexts), traces, sync/ (WaitGroup and errgroup, on the public headers), and
# io/ (fds and signals).
CORE_SRC      := chan.c ring.c select.c sudog.c
EXT_SRC       := time/timer.c time/context.c $(wildcard trace/*.c) sync/waitgroup.c sync/group.c \
                 io/fd.c io/signal.c
PUBLIC_HDR    := chan.h chan_typed.h time/chan_time.h trace/chan_trace.h trace/chan_leak.h \
                 sync/chan_sync.h io/chan_io.h
CORE_HDR      := $(PUBLIC_HDR) chan_internal.h seam.h time/heap.h $(wildcard trace/*.h)
CORE_OBJ      := $(CORE_SRC:%.c=$(O)/%.o) $(EXT_SRC:%.c=$(O)/%.o)
TESTS         := $(patsubst test/%.c,$(O)/test/%,$(wildcard test/test_*.c))

.PHONY: all lib test check-plain check-asan check-tsan check-mode unit spdx standalone format \
        format-check demo deps install uninstall install-lib uninstall-lib clean print-version \
        print-mpg
.DEFAULT_GOAL := all

all: lib
# Sanitizer modes build only the static libraries the tests link (their runtimes are not
# linked into shared objects).
lib: $(O)/libchan.a $(if $(filter plain,$(MODE)),$(O)/libchan.so $(O)/static/libchan.a)
	@[ "$(MODE)" != plain ] || { ln -sf plain/static/libchan.a build/libchan.a; \
	  ln -sf plain/libchan.so build/libchan.so; }

print-version:
	@echo $(VERSION)

# 1 where libchan-mpg is built and installed (MPG below), else 0.
print-mpg:
	@echo $(MPG)

$(O)/%.o: %.c $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $(LIBFLAGS) -c $< -o $@

$(O)/libchan.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

# The static libraries a user links (build/libchan.a, make install): the archive's objects
# linked into one (ld -r), whose hidden symbols, the internal functions and variables that
# -fvisibility=hidden keeps out of libchan.so, are then made local, so that the archive's global
# names are libchan.so's exports and no others: a program with a function or variable of its own
# named registry_add, print_quoted or sched links against it as against libchan.so, where before
# it failed with "multiple definition". $(O)/libchan.a keeps the objects as they are, for the
# tests, which call internals. sched/sched.mk makes static/libchan_mpg.a the same way.
$(O)/static/%.a: $(O)/%.a
	@mkdir -p $(@D)
	$(CC) -r -nostdlib -o $(@:.a=.o) -Wl,--whole-archive $< -Wl,--no-whole-archive
	$(OBJCOPY) --localize-hidden $(@:.a=.o)
	rm -f $@
	ar rcs $@ $(@:.a=.o)

# The version script names a private node of this exact version (libchan.map).
$(O)/libchan.map: libchan.map chan.h
	@mkdir -p $(@D)
	sed 's|@VERSION@|$(VERSION)|' libchan.map > $@

$(O)/libchan.so.$(VERSION): $(CORE_OBJ) $(O)/libchan.map
	$(CC) $(ALLCFLAGS) -shared -Wl,-soname,libchan.so.$(SOMAJOR) \
	  -Wl,--version-script=$(O)/libchan.map -Wl,-z,defs -o $@ $(CORE_OBJ) $(LDFLAGS) $(LDLIBS_CORE)

$(O)/libchan.so: $(O)/libchan.so.$(VERSION)
	ln -sf libchan.so.$(VERSION) $(O)/libchan.so.$(SOMAJOR)
	ln -sf libchan.so.$(VERSION) $@

# Tests link the static libraries of their mode: one binary per file in test/, run by test/run.sh
# (sched/sched.mk links test/test_mpg*.c with libchan-mpg as well).
$(O)/test/%: test/%.c $(wildcard test/*.h) $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(O)/libchan.a $(LDFLAGS) $(CHECK_LIBS) $(LDLIBS_CORE)

deps:
	@sh scripts/deps.sh build test

# scripts/deps.sh's groups hold every tool, header and library make test uses (test/deps.sh).
.PHONY: deps-check
deps-check:
	@sh test/deps.sh

# ---- The parts of the tree with make rules of their own, each named ----------------------------

# sched/ only where it can be built: MPG=1 (the default when hwloc is installed) or asked for.
MPG ?= $(if $(shell pkg-config --exists hwloc 2>/dev/null && echo yes),1,0)
ifeq ($(MPG),1)
include sched/sched.mk        # libchan-mpg: Go's M:P:G scheduler (needs hwloc)
include bench/bench.mk        # the benchmark harness (needs hwloc, for placement)
else
TESTS := $(filter-out $(O)/test/test_mpg%,$(TESTS))
endif
include examples/examples.mk  # the example programs, checked and shown by the demo
include test/reliability.mk   # stress, fuzzing, valgrind
include test/typed.mk         # what the compiler must reject
include test/install.mk       # install, link lines, CMake package, uninstall
include man/man.mk            # the man pages: lint, examples, link pages
include scripts/dist.mk       # the drop-in pair
include docs/docs.mk          # docs/play: the replayed traces
include model/model.mk        # the Promela models (make model; not part of make test)

# The scheduler's own targets (sched/sched.mk) and the benchmarks' (bench/bench.mk) exist only
# with MPG=1. Without hwloc (a fresh machine), they install the packages (the benchmarks' peers
# too) and run again with MPG=1: a bare `make bench` would otherwise find the directory bench/
# up to date and do nothing. Where MPG=0 was asked for, they say what they need.
ifneq ($(MPG),1)
MPG_TARGETS   := mpg mpg-pingpong mpg-syscall-cost mpg-valgrind scale-smoke bench-smoke
BENCH_TARGETS := bench bench-history bench-scale bench-io bench-leak bench-echo
.PHONY: $(MPG_TARGETS) $(BENCH_TARGETS)
$(MPG_TARGETS) $(BENCH_TARGETS):
	@if [ "$(origin MPG)" = "command line" ]; then \
	  echo "make $@: needs libchan-mpg, which MPG=0 leaves out" >&2; exit 1; fi
	@sh scripts/deps.sh build $(if $(filter $@,$(BENCH_TARGETS)),bench)
	+@$(MAKE) --no-print-directory $@ MPG=1
endif

# ---- make test: the one list of checks, in the order they run ---------------------------------

# Per build: the unit tests (test/test_*.c, Check suites), then the examples (programs of
# examples/ and of the man pages), then what a user meets building and installing (the
# compiler's rejections, the drop-in pair, the installed tree and its link lines, the CMake
# package, the man pages, the docs), then the smoke runs (stress, fuzz corpora, benchmarks).
# Each is a make target of this file or of a fragment above; test/checks.sh runs them in turn.
CHECKS_plain  := unit examples-check man-examples deps-check compile-fail headers-check dist-check \
                 dropin-check nompg-check install-check link-check cmake-check man-lint \
                 man-synopsis layers spdx standalone format-check play-check \
                 stress-short stress-io-short $(if $(filter 1,$(MPG)),bench-smoke scale-smoke)
CHECKS_asan   := unit examples-check man-examples stress-short stress-io-short fuzz-replay
CHECKS_tsan   := unit examples-check man-examples stress-short stress-io-short

# The three builds run one after the other, each to its end; each prints a line per check and
# its own count, and the last line adds them up. The builds' commands are shown with V=1 only.
QUIET := $(if $(filter 1,$(V)),,-s)
test: deps play-deps
	+@rm -f build/checks-*.count; ok=true; \
	for m in plain asan tsan; do \
	  $(MAKE) --no-print-directory $(QUIET) check-mode MODE=$$m || ok=false; done; \
	cat build/checks-*.count 2>/dev/null | awk -v ok=$$ok '{ p += $$1; f += $$2 } \
	  END { if (ok == "false" && f == 0) f = 1; printf "test: %d passed, %d failed\n", p, f }'; \
	$$ok

check-plain check-asan check-tsan: deps
	+@$(MAKE) --no-print-directory $(QUIET) check-mode MODE=$(@:check-%=%)

check-mode: lib
	+@MAKE="$(MAKE)" V="$(V)" sh test/checks.sh $(MODE) build/checks-$(MODE).count $(CHECKS_$(MODE))

# Every source file carries the licence's SPDX line (test/spdx.sh; --fix adds it).
spdx:
	@sh test/spdx.sh

# The C sources as .clang-format lays them out (scripts/format.sh): make format rewrites them,
# format-check (make test) fails on a file that is not, or on a line over 100 columns (file:line).
format:
	@sh scripts/format.sh

format-check:
	@sh scripts/format.sh --check

# No file refers to a document, a tracker or a web address outside the repository
# (test/standalone.sh).
standalone:
	@sh test/standalone.sh

# The unit tests of this build: every test/test_*.c, each a Check suite (test/run.sh).
unit: lib $(TESTS)
	@sh test/run.sh $(MODE) $(TESTS)

# The build's packages first, then the build in a make that starts after them (one that read
# this file before pkg-config and hwloc were installed would leave libchan-mpg out).
demo:
	@sh scripts/deps.sh build
	+@$(MAKE) --no-print-directory demo-run

# ---- install / uninstall: libchan's part (sched/sched.mk adds libchan-mpg's) --------------------

# What make install puts, file by file: make uninstall removes exactly these (test/install.mk
# checks that nothing is left behind).
INSTALL_HDR   := $(notdir $(PUBLIC_HDR))
INSTALL_LIB   := libchan.a libchan.so.$(VERSION) libchan.so.$(SOMAJOR) libchan.so
TOOLS         := trace2mermaid trace2play
TOOLS_DATA    := $(TOOLS) chantrace.py

install: install-lib install-man install-tools install-cmake
uninstall: uninstall-lib uninstall-man uninstall-tools uninstall-cmake

install-lib: lib
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(PUBLIC_HDR) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 build/plain/static/libchan.a $(DESTDIR)$(LIBDIR)/libchan.a
	install -m 755 build/plain/libchan.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libchan.so.$(VERSION)
	ln -sf libchan.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libchan.so.$(SOMAJOR)
	ln -sf libchan.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libchan.so
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' libchan.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libchan.pc

uninstall-lib:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(INSTALL_HDR)) \
	  $(addprefix $(DESTDIR)$(LIBDIR)/,$(INSTALL_LIB)) $(DESTDIR)$(LIBDIR)/pkgconfig/libchan.pc

# The trace converters share tools/chantrace.py: the three live in $(DATADIR)/libchan/, where
# each finds it beside itself, and $(BINDIR) gets a two-line wrapper per command.
.PHONY: install-tools uninstall-tools
install-tools:
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/libchan
	install -m 644 tools/chantrace.py $(DESTDIR)$(DATADIR)/libchan/chantrace.py
	for t in $(TOOLS); do \
	  install -m 755 tools/$$t $(DESTDIR)$(DATADIR)/libchan/$$t && \
	  printf '#!/bin/sh\nexec "%s" "$$@"\n' "$(DATADIR)/libchan/$$t" > $(DESTDIR)$(BINDIR)/$$t && \
	  chmod 755 $(DESTDIR)$(BINDIR)/$$t || exit 1; done

uninstall-tools:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS)) \
	  $(addprefix $(DESTDIR)$(DATADIR)/libchan/,$(TOOLS_DATA))
	rm -rf $(DESTDIR)$(DATADIR)/libchan/__pycache__
	rmdir $(DESTDIR)$(DATADIR)/libchan 2>/dev/null || true

# find_package(libchan): libchan::chan, and libchan::mpg where libchan-mpg is installed
# (cmake/libchan-config.cmake.in); which versions it takes: CMake's SameMajorVersion rule
# (cmake/libchan-config-version.cmake.in).
.PHONY: install-cmake uninstall-cmake
install-cmake:
	install -d $(DESTDIR)$(CMAKEDIR)
	for f in libchan-config libchan-config-version; do \
	  sed -e 's|@LIBDIR@|$(LIBDIR)|g; s|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	      -e 's|@VERSION@|$(VERSION)|g; s|@SOMAJOR@|$(SOMAJOR)|g' \
	      cmake/$$f.cmake.in > $(DESTDIR)$(CMAKEDIR)/$$f.cmake || exit 1; done

uninstall-cmake:
	rm -f $(DESTDIR)$(CMAKEDIR)/libchan-config.cmake $(DESTDIR)$(CMAKEDIR)/libchan-config-version.cmake
	rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null || true

clean:
	rm -rf build dist
