# SPDX-License-Identifier: MIT
# docs/docs.mk - the documentation's make rules: the replayed traces of docs/play/, and the
# include rule of docs/DESIGN.md.
#
#   make layers    test/layers.sh: no file of the library includes a header of a layer above
#                  its own, nor another room's private header. Part of `make test` (plain:
#                  the Makefile's CHECKS_plain).
include docs/play/play.mk

.PHONY: layers

layers:
	@sh test/layers.sh
