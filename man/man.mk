# man/man.mk - libchan's man pages: installed by `make install`, checked by `make test` (plain).
#
#   make install-man    (the top Makefile's rule installs the pages under $(DESTDIR)$(MANDIR)/man3
#                       and man7); this file adds a link page (.so man3/chan_send.3) for every
#                       further name a page documents, so that `man chan_recv` works
#   make man-lint       mandoc -Tlint, every chan.h function reachable by man NAME, cross
#                       references resolve, no rendered line over 80 columns

MAN_PAGES := $(wildcard man/*.3) $(wildcard man/*.7)

.PHONY: install-man-links uninstall-man man-lint

install-man: install-man-links
install-man-links:
	sh man/install.sh --links-only $(DESTDIR)$(MANDIR) $(MAN_PAGES)

uninstall-man:
	for p in $(MAN_PAGES); do \
	  b=$$(basename $$p); s=$${b##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$$b; \
	  for n in $$(sed -n '/^\.Sh NAME/,/^\.Nd/s/^\.Nm \([A-Za-z0-9_]*\).*/\1/p' $$p); do \
	    rm -f $(DESTDIR)$(MANDIR)/man$$s/$$n.$$s; done; done

man-lint:
	@sh scripts/deps.sh docs
	@sh man/lint.sh $(O)/man-stage

ifeq ($(MODE),plain)
check-mode: man-lint
endif
