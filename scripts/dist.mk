# SPDX-License-Identifier: MIT
# scripts/dist.mk - the drop-in pair, like SQLite's amalgamation.
#
#   make dist        dist/chan.h + dist/chan.c (scripts/amalgamate): the core and select in
#                    one file, built by a user with `cc -std=c11 -pthread app.c chan.c`
#   make dist-check  (part of `make test`, plain mode) builds every example exactly that way,
#                    with the pair beside it, runs each and checks its output as the library
#                    build's is checked; compiles dist/chan.c warning-free with gcc and
#                    clang under the tree's own warning flags and -Wconversion (a file of
#                    the user's project, built with its flags), defining no global name
#                    outside chan_ (HIDDEN is static in the pair, so that a program's own
#                    waitq_enqueue or mark_closed does not clash); and checks that it carries no
#                    tracing (no trace symbol in those objects, no trace state in its text)
#   make dropin-check  (part of `make test`, plain) the pair on a machine that has only a C
#                    compiler and its C library: every example built again that way, with gcc
#                    and with clang, whose system include directories are copied without
#                    liburcu's headers (test/hide-headers.sh; the check first proves that
#                    <urcu/arch.h> is not found), and run; dist/chan.c warning-free there too

DIST_PARTS := chan.h seam.h trace/hooks.h chan_internal.h sudog.c ring.c chan.c select.c
DIST_CHECK := $(O)/dist-check
DROPIN_CHECK := $(O)/dropin-check
DIST_WARN := $(WARN) -Wconversion

.PHONY: dist dist-check dropin-check

dist: dist/chan.c dist/chan.h

dist/chan.c: $(DIST_PARTS) scripts/amalgamate
	sh scripts/amalgamate dist

dist/chan.h: dist/chan.c
	@[ -f $@ ] || sh scripts/amalgamate dist

dist-check: dist
	@rm -rf $(DIST_CHECK) && mkdir -p $(DIST_CHECK)/bin
	@for e in $(EXAMPLES); do \
	  d=$(DIST_CHECK)/$$e; mkdir -p $$d; \
	  cp dist/chan.h dist/chan.c $$d/ && cp examples/$$e.c $$d/app.c && \
	  (cd $$d && cc -std=c11 -pthread app.c chan.c -o app) && \
	  cp $$d/app $(DIST_CHECK)/bin/$$e || { echo "dist-check: $$e does not build with the pair"; exit 1; }; \
	done
	@echo "dist-check: $(words $(EXAMPLES)) examples built as: cc -std=c11 -pthread app.c chan.c"
	@sh examples/check.sh $(DIST_CHECK)/bin $(EXAMPLES)
	@for cc in gcc clang; do \
	  $$cc -std=c11 -pthread $(DIST_WARN) -c dist/chan.c -o $(DIST_CHECK)/chan-$$cc.o || \
	    { echo "dist-check: dist/chan.c is not warning-free with $$cc"; exit 1; }; \
	done
	@echo "dist-check: dist/chan.c compiles warning-free with gcc and clang ($(DIST_WARN))"
	@if nm -g --defined-only $(DIST_CHECK)/chan-gcc.o $(DIST_CHECK)/chan-clang.o | \
	  awk 'NF == 3 && $$3 !~ /^chan_/' | grep .; then \
	  echo "dist-check: dist/chan.c defines the names above globally: a program's own would clash"; \
	  exit 1; fi
	@echo "dist-check: dist/chan.c defines no global name outside chan_ (its internals are static)"
	@if nm $(DIST_CHECK)/chan-gcc.o $(DIST_CHECK)/chan-clang.o | grep -i trace; then \
	  echo "dist-check: dist/chan.c carries trace code (the symbols above)"; exit 1; fi
	@if gcc -fpreprocessed -dD -E -P dist/chan.c | grep 'trace_flags\|waiter_trace\|chan_snap'; then \
	  echo "dist-check: dist/chan.c carries trace state (the code above)"; exit 1; fi
	@echo "dist-check: dist/chan.c carries no tracing: no trace symbol at -O0, no trace state"

dropin-check: dist
	@rm -rf $(DROPIN_CHECK)
	@set -e; for cc in gcc clang; do \
	  d=$(DROPIN_CHECK)/$$cc; mkdir -p $$d/bin; \
	  flags=$$(sh test/hide-headers.sh $$cc $$d/include urcu 'urcu*.h'); \
	  if printf '#include <urcu/arch.h>\n' | $$cc $$flags -fsyntax-only -x c - 2>/dev/null; then \
	    echo "dropin-check: $$cc still finds liburcu's headers"; exit 1; fi; \
	  $$cc -std=c11 -pthread $(DIST_WARN) $$flags -c dist/chan.c -o $$d/chan.o || \
	    { echo "dropin-check: dist/chan.c does not build warning-free without liburcu ($$cc)"; exit 1; }; \
	  for e in $(EXAMPLES); do \
	    $$cc -std=c11 -pthread $$flags -Idist -o $$d/bin/$$e examples/$$e.c $$d/chan.o || \
	      { echo "dropin-check: $$e does not build with the pair without liburcu ($$cc)"; exit 1; }; \
	  done; \
	  sh examples/check.sh $$d/bin $(EXAMPLES) >$$d/check.out 2>&1 || { cat $$d/check.out; exit 1; }; \
	  echo "dropin-check: $$cc, no liburcu headers: $$(tail -n 1 $$d/check.out)"; \
	done
