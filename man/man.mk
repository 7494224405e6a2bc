# SPDX-License-Identifier: MIT
# man/man.mk - libchan's man pages: installed by `make install`, checked by `make test`.
#
#   make install-man    the pages under $(DESTDIR)$(MANDIR)/man3 and man7, and a link page
#                       (.so man3/chan_send.3) for every further name a page documents, so that
#                       `man chan_recv` works (man/install.sh); make uninstall-man removes both.
#                       libchan-mpg's pages only with MPG=1 (where the library is installed)
#   make man-lint       mandoc -Tlint, every public function reachable by man NAME, cross
#                       references resolve, no rendered line over 80 columns, chan(7)'s
#                       overview and SEE ALSO name every page (plain build)
#   make man-synopsis   every page's SYNOPSIS as its header declares it: each function's
#                       return and parameter types, each macro's value, each structure's
#                       members and each enumerator's value, compiled against the page's .In
#                       headers alone, and linked as its LIBRARY section says
#                       (man/synopsis.sh; plain build)
#   make man-examples   every example of the pages compiles with -Wall -Wextra -Werror
#                       -pedantic, and each whole program among them runs (man/examples.sh);
#                       part of `make test` in every build (the programs run sanitized)

# The pages of libchan-mpg (their LIBRARY section names it) go with the library: installed
# only where it is built (MPG=1), as sched/sched.mk installs the library.
MAN_PAGES_MPG := $(shell for p in man/*.3; do sed -n '/^\.Sh LIBRARY/,/^\.Sh /p' $$p | \
                   grep -q '^libchan-mpg' && echo $$p; done)
MAN_PAGES := $(filter-out $(if $(filter 1,$(MPG)),,$(MAN_PAGES_MPG)), \
               $(wildcard man/*.3) $(wildcard man/*.7))

.PHONY: install-man uninstall-man man-lint man-synopsis man-examples

install-man:
	sh man/install.sh $(DESTDIR)$(MANDIR) $(MAN_PAGES)

uninstall-man:
	for p in $(MAN_PAGES); do \
	  b=$$(basename $$p); s=$${b##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$$b; \
	  for n in $$(sed -n '/^\.Sh NAME/,/^\.Nd/s/^\.Nm \([A-Za-z0-9_]*\).*/\1/p' $$p); do \
	    rm -f $(DESTDIR)$(MANDIR)/man$$s/$$n.$$s; done; done

man-lint:
	@sh scripts/deps.sh docs
	@sh man/lint.sh $(O)/man-stage

man-synopsis: lib
	@sh man/synopsis.sh $(O)/man-synopsis $(O) $(filter %.3,$(MAN_PAGES))

# Sanitizer reports fail a program (exit status 66 under TSan), as in examples/examples.mk.
man-examples: lib
	@ASAN_OPTIONS="detect_leaks=1:$${ASAN_OPTIONS:-}" \
	 UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:$${UBSAN_OPTIONS:-}" \
	 TSAN_OPTIONS="halt_on_error=1:exitcode=66:$${TSAN_OPTIONS:-}" \
	 sh man/examples.sh $(O)/man-examples "$(CC)" "$(MODEFLAGS)" $(MPG_LIB) $(O)/libchan.a \
	   $(MPG_LIBS) $(LDLIBS_CORE)
