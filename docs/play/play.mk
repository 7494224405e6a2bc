# SPDX-License-Identifier: MIT
# docs/play/play.mk - docs/play/: a page for every signalling pattern, each replaying a real trace
# in the browser (hchan, sudogs, values moving). Static: the pages open from the file system.
#
#   make play-traces  build docs/play/drivers.c against build/plain/libchan.a, run every pattern
#                     under CHAN_TRACE into docs/play/traces/ (retried while a trace does not add
#                     up), then make the pages; commit what changed. PATTERNS="a b" records
#                     only those (the others' traces stay as checked in)
#   make play-pages   make the pages again from the traces checked in (docs/play/build.py)
#   make play         serve docs/play/ on http://127.0.0.1:$(PLAY_PORT)/ until interrupted
#   make play-test    install Chromium (scripts/deps.sh play), check that the pages are up to date,
#                     then open every page in headless Chromium and check what it draws, step by
#                     step, against its trace (docs/play/test_play.py); screenshots in $(PLAY_SHOTS)
#   make play-shots   the same, with the screenshots into docs/play/shots/ (shown in README.md)
#
# make test runs play-check (plain build): the replay's own test (tools/test_chantrace.py), the
# pages up to date, and the browser test where Chromium is installed; make test installs it
# first (play-deps: scripts/deps.sh play).

PLAY_DIR   := docs/play
PLAY_PORT  ?= 8765
PLAY_SHOTS ?= $(O)/play-shots
# Debian's python3-selenium belongs to Debian's interpreter, whatever python3 is first in PATH.
PLAY_PY    ?= /usr/bin/python3

.PHONY: play play-traces play-pages play-test play-shots play-check play-deps

# make test installs Chromium (scripts/deps.sh play), so that CI runs the browser test too.
play-deps:
	@sh scripts/deps.sh play

$(O)/play/drivers: $(PLAY_DIR)/drivers.c chan.h time/chan_time.h trace/chan_trace.h trace/chan_leak.h \
                  $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(O)/libchan.a $(LDFLAGS) $(LDLIBS_CORE)

play-traces:
	$(MAKE) --no-print-directory MODE=plain build/plain/play/drivers
	sh $(PLAY_DIR)/capture.sh build/plain/play/drivers $(PLAY_DIR)/traces $(PATTERNS)
	python3 $(PLAY_DIR)/build.py

play-pages:
	python3 $(PLAY_DIR)/build.py

play:
	@echo "play: http://127.0.0.1:$(PLAY_PORT)/ (Ctrl-C stops it)"
	python3 -m http.server $(PLAY_PORT) --bind 127.0.0.1 --directory $(PLAY_DIR)

play-test: play-deps
	python3 $(PLAY_DIR)/build.py --check
	$(PLAY_PY) $(PLAY_DIR)/test_play.py --shots $(PLAY_SHOTS)

play-shots: play-deps
	$(PLAY_PY) $(PLAY_DIR)/test_play.py --shots $(PLAY_DIR)/shots

play-check:
	@python3 tools/test_chantrace.py
	@python3 $(PLAY_DIR)/build.py --check
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	    $(PLAY_PY) -c 'import selenium' 2>/dev/null; then \
	  $(PLAY_PY) $(PLAY_DIR)/test_play.py --shots $(PLAY_SHOTS); \
	else echo "play: chromium, chromium-driver or python3-selenium missing: browser test skipped"; fi
