# libchan - the only build system.
#
#   make              build/libchan.a, build/libchan.so (release: -O2 -g)
#   make test         install missing Debian packages, then build and run the test suite three
#                     ways: plain (gcc -O2), ASan+UBSan (gcc), TSan (clang). Fails if any fails.
#   make demo         install missing packages, build and run the demo pipeline
#   make install      PREFIX=/usr/local DESTDIR=  headers, libraries, pkg-config file
#   make check-MODE   one mode of the suite: check-plain, check-asan, check-tsan
#   make clean
#
# Variables: MODE (plain|asan|tsan, for the build/$(MODE) tree), CC, ASAN_CC, TSAN_CC, PREFIX,
# DESTDIR, N, THREADS, DURATION (never SECONDS: bash's own counter).

VERSION       := 1.0.0
SOMAJOR       := 1
PREFIX        ?= /usr/local
DESTDIR       ?=
LIBDIR        ?= $(PREFIX)/lib
INCLUDEDIR    ?= $(PREFIX)/include
MANDIR        ?= $(PREFIX)/share/man

# The sanitizer builds also check the library's own invariants and preconditions (-DCHAN_DEBUG:
# ASSERT in chan_internal.h); the plain build and the drop-in pair compile them out.
MODE          ?= plain
ASAN_CC       ?= gcc
TSAN_CC       ?= clang
O             := build/$(MODE)

WARN          := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASEFLAGS     := -std=c11 -g -pthread -fPIC $(WARN)
ifeq ($(MODE),plain)
  MODEFLAGS   := -O2
else ifeq ($(MODE),asan)
  CC          := $(ASAN_CC)
  MODEFLAGS   := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
                 -DCHAN_DEBUG
else ifeq ($(MODE),tsan)
  CC          := $(TSAN_CC)
  MODEFLAGS   := -O1 -fno-omit-frame-pointer -fsanitize=thread -DCHAN_DEBUG
else
  $(error MODE must be plain, asan or tsan)
endif
CFLAGS        ?=
LDFLAGS       ?=
# The library proper is built with its trace hooks (trace/); the drop-in pair (dist/chan.c) is
# not, so there they compile to nothing. -Itime -Itrace: the public headers of time/ and trace/
# are included as "chan_time.h" and "chan_trace.h", as they are installed (flat, beside chan.h).
TRACEFLAGS    := $(if $(wildcard trace/record.c),-DCHAN_TRACE_BUILD)
ALLCFLAGS     := $(BASEFLAGS) $(MODEFLAGS) $(CFLAGS) $(TRACEFLAGS) -I. -Itime -Itrace
LIBFLAGS      := -fvisibility=hidden
LDLIBS_CORE   := -pthread
CHECK_LIBS    := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

# The core (also the drop-in pair), then the parts built on it: time/ (timers and contexts),
# traces, and sync/ (WaitGroup and errgroup, on the public headers only).
CORE_SRC      := chan.c ring.c select.c sudog.c
EXT_SRC       := $(wildcard time/timer.c time/context.c trace/*.c sync/waitgroup.c sync/group.c)
PUBLIC_HDR    := chan.h chan_typed.h $(wildcard time/chan_time.h trace/chan_trace.h sync/chan_sync.h)
CORE_HDR      := $(PUBLIC_HDR) chan_internal.h seam.h time/heap.h $(wildcard trace/*.h)
CORE_OBJ      := $(CORE_SRC:%.c=$(O)/%.o) $(EXT_SRC:%.c=$(O)/%.o)
TESTS         := $(patsubst test/%.c,$(O)/test/%,$(wildcard test/test_*.c))

.PHONY: all lib install-man test check-plain check-asan check-tsan check-mode demo deps install uninstall \
        clean
.DEFAULT_GOAL := all

all: lib
# Sanitizer modes build only the static library the tests link (their runtimes are not
# linked into shared objects).
lib: $(O)/libchan.a $(if $(filter plain,$(MODE)),$(O)/libchan.so)
	@[ "$(MODE)" != plain ] || { ln -sf plain/libchan.a build/libchan.a; \
	  ln -sf plain/libchan.so build/libchan.so; }

$(O)/%.o: %.c $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $(LIBFLAGS) -c $< -o $@

$(O)/libchan.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(O)/libchan.so.$(VERSION): $(CORE_OBJ) libchan.map
	$(CC) $(ALLCFLAGS) -shared -Wl,-soname,libchan.so.$(SOMAJOR) \
	  -Wl,--version-script=libchan.map -Wl,-z,defs -o $@ $(CORE_OBJ) $(LDFLAGS) $(LDLIBS_CORE)

$(O)/libchan.so: $(O)/libchan.so.$(VERSION)
	ln -sf libchan.so.$(VERSION) $(O)/libchan.so.$(SOMAJOR)
	ln -sf libchan.so.$(VERSION) $@

# Tests link the static library of their mode: one binary per file in test/, run by test/run.sh.
$(O)/test/%: test/%.c $(wildcard test/*.h) $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(O)/libchan.a $(LDFLAGS) $(CHECK_LIBS) $(LDLIBS_CORE)

deps:
	@sh scripts/deps.sh build test

# The three builds run one after the other; each prints Check's summary per test program.
test: deps
	$(MAKE) --no-print-directory check-mode MODE=plain
	$(MAKE) --no-print-directory check-mode MODE=asan
	$(MAKE) --no-print-directory check-mode MODE=tsan
	@echo "make test: all three builds passed"

check-plain check-asan check-tsan: deps
	$(MAKE) --no-print-directory check-mode MODE=$(@:check-%=%)

check-mode: lib $(TESTS)
	@sh test/run.sh $(MODE) $(TESTS)
	@[ "$(MODE)" != plain ] || sh test/install.sh

demo: deps lib
	$(MAKE) --no-print-directory demo-run

install: lib
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(PUBLIC_HDR) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 build/plain/libchan.a $(DESTDIR)$(LIBDIR)/libchan.a
	install -m 755 build/plain/libchan.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libchan.so.$(VERSION)
	ln -sf libchan.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libchan.so.$(SOMAJOR)
	ln -sf libchan.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libchan.so
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' libchan.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libchan.pc
	$(MAKE) --no-print-directory install-man

install-man:
	install -d $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	for f in $(wildcard man/*.3); do install -m 644 $$f $(DESTDIR)$(MANDIR)/man3/; done
	for f in $(wildcard man/*.7); do install -m 644 $$f $(DESTDIR)$(MANDIR)/man7/; done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(PUBLIC_HDR))) $(DESTDIR)$(LIBDIR)/libchan.a \
	  $(DESTDIR)$(LIBDIR)/libchan.so* $(DESTDIR)$(LIBDIR)/pkgconfig/libchan.pc

clean:
	rm -rf build dist

# Parts of the tree with make rules of their own (examples, benchmarks, man pages, ...).
-include $(wildcard */*.mk)
