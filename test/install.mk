# SPDX-License-Identifier: MIT
# test/install.mk - what a user meets building, installing and linking libchan. Included by
# the top Makefile; each target is a check of `make test` (plain build, CHECKS_plain).
#
#   make install-check  test/install.sh: make install into a temporary prefix puts every file
#                       (headers, libraries, pkg-config and CMake files, man pages, the trace
#                       converters, which run from there), libchan-mpg's and its pages only
#                       with MPG=1 (make install MPG=0 is checked too); a program builds
#                       against it shared and static, and fully static (cc -static: libchan
#                       alone links; libchan-mpg where a libudev.a is found, and fails for want
#                       of it alone where none is, as on Debian); every man page's example
#                       builds against it as its page says (pkg-config) and runs; make
#                       uninstall leaves no file behind
#   make link-check     test/link.sh: a program that runs Gs built with every documented link
#                       line (shared, static, both .pc names in either order, an rpath, the
#                       static scheduler with the shared core), each run; a program with two
#                       copies of libchan refused at load with libchan's message; the drop-in pair
#   make cmake-check    test/cmake.sh: find_package(libchan) against an installed tree, CMake
#                       building examples with libchan::chan, libchan::mpg and the static targets;
#                       the versions it takes (exact, compatible, too new, ranges) and refuses
#   make nompg-check    the library and the examples build and run without hwloc: built again
#                       in build/nompg with MPG=0 and hwloc's headers hidden (test/hide-headers.sh);
#                       where pkg-config finds no hwloc (a fresh machine), a target of the
#                       scheduler's installs the packages and runs; with MPG=0 it says why not

.PHONY: install-check link-check cmake-check nompg-check

install-check: lib
	@MPG=$(MPG) sh test/install.sh

link-check: lib dist
	@sh test/link.sh

cmake-check: lib
	@sh test/cmake.sh

NOMPG := build/nompg
nompg-check:
	@flags=$$(sh test/hide-headers.sh $(CC) $(NOMPG)/include hwloc 'hwloc*.h'); \
	if printf '#include <hwloc.h>\n' | $(CC) $$flags -fsyntax-only -x c - 2>/dev/null; then \
	  echo "nompg-check: $(CC) still finds hwloc.h"; exit 1; fi; \
	$(MAKE) --no-print-directory -s MODE=plain MPG=0 O=$(NOMPG) CFLAGS="$$flags" lib examples-check
	@[ ! -e $(NOMPG)/libchan_mpg.a ] || { echo "nompg-check: MPG=0 built libchan-mpg"; exit 1; }
	@if ldd $(NOMPG)/libchan.so | grep hwloc; then echo "nompg-check: libchan.so needs hwloc"; exit 1; fi
	@echo "nompg-check: with MPG=0 and no hwloc headers, libchan and the examples build and run"
	$(if $(filter command line,$(origin MPG)),@echo "nompg-check: MPG given: the scheduler's \
	  targets without hwloc not checked",+@$(MAKE) --no-print-directory -s nompg-targets)

# Where pkg-config finds no hwloc (a fresh machine) a target of the scheduler's installs the
# packages and runs with MPG=1; with MPG=0 asked for, it says what it needs.
.PHONY: nompg-targets
nompg-targets:
	@mkdir -p $(NOMPG)
	@PKG_CONFIG_LIBDIR=/nonexistent $(MAKE) --no-print-directory -s mpg-syscall-cost N=1000 \
	  >$(NOMPG)/mpg-target.log 2>&1 || { cat $(NOMPG)/mpg-target.log; \
	  echo "nompg-check: make mpg-syscall-cost where pkg-config finds no hwloc failed"; exit 1; }
	@$(MAKE) --no-print-directory -s MPG=0 mpg-pingpong >$(NOMPG)/mpg-target.log 2>&1; \
	if ! grep -q 'mpg-pingpong: needs libchan-mpg' $(NOMPG)/mpg-target.log; then \
	  cat $(NOMPG)/mpg-target.log; echo "nompg-check: make MPG=0 mpg-pingpong did not say why"; \
	  exit 1; fi
	@echo "nompg-check: the scheduler's targets where pkg-config finds no hwloc: installed and run"
