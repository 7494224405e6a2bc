# SPDX-License-Identifier: MIT
# test/typed.mk - what the compiler must reject. Included by the top Makefile.
#
#   make compile-fail   test/compile_fail.sh: test/compile_fail.c built once per case with gcc
#                       and clang; the right uses of chan_typed.h must compile clean (C11 and
#                       C++11), each wrong element type must be rejected. Part of `make test`
#                       (plain build: it needs only the headers).
#   make headers-check  test/headers.sh: each installed header alone, twice and with the others,
#                       in C (gcc, clang) and C++ (g++, clang++, inside extern "C" too); every
#                       function they declare exported and linkable from C++, and nothing
#                       else exported. Part of `make test` (plain).

.PHONY: compile-fail headers-check

compile-fail:
	@sh test/compile_fail.sh

HEADERS_LIBS := build/plain/libchan.so $(if $(filter 1,$(MPG)),build/plain/libchan_mpg.so)

headers-check: lib $(HEADERS_LIBS)
	@sh test/headers.sh "$(HEADERS_LIBS)" $(PUBLIC_HDR) $(if $(filter 1,$(MPG)),$(MPG_HDR))
