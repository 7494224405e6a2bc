# SPDX-License-Identifier: MIT
# test/typed.mk - what the compiler must reject. Included by the top Makefile.
#
#   make compile-fail   test/compile_fail.sh: test/compile_fail.c built once per case with gcc
#                       and clang; the right uses of chan_typed.h must compile clean (C11 and
#                       C++11), each wrong element type must be rejected. Part of `make test`
#                       (plain build: it needs only the headers).

.PHONY: compile-fail

compile-fail:
	@sh test/compile_fail.sh
