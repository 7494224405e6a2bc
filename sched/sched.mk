# SPDX-License-Identifier: MIT
# sched/sched.mk - libchan-mpg, Go's M:P:G scheduler over libchan's hook. Included by the top
# Makefile when MPG=1 (the default where hwloc is installed: the scheduler counts the cores
# through hwloc, and binds its Ms to them if asked). Two libraries, as libchan has:
# build/$(MODE)/libchan_mpg.a, linked with libchan.a, and (plain) build/plain/libchan_mpg.so,
# which needs libchan.so: it calls the few internal helpers of libchan declared SEAM_EXPORT in
# seam.h, which libchan.so exports under a private version node of its exact version
# (libchan.map). pkg-config name libchan-mpg (Requires: libchan); CMake libchan::mpg. See
# sched/README.md, chan_mpg(3).
#
#   make mpg            build/$(MODE)/libchan_mpg.a, and .so in plain (also part of `make`/`lib`)
#   make mpg-pingpong   build and run the G <-> G pingpong measurement (plain, -O2):
#                       build/plain/sched/pingpong [round trips] [nprocs]
#   build/plain/sched/burst timers|pipes [N [NPROCS]]: N Gs made runnable at once (the batches
#                       proc.c injects); not run by any target
#   make mpg-syscall-cost  what a chan_mpg_syscall_enter/exit pair costs around getppid(2):
#                       build/plain/sched/syscall_cost [calls] [runs]
#   make mpg-valgrind   memcheck over test_mpg_select and a selection of test_mpg's cases (plain
#                       build, CK_FORK=no, one case per process); fails on any error
#   make install        also installs chan_sched_mpg.h, libchan_mpg.a, libchan_mpg.so and
#                       libchan-mpg.pc
#
# Tests: every test/test_mpg*.c is a Check suite; the top Makefile's wildcard already lists it
# in TESTS (run by test/run.sh in every mode); the static pattern rule below, being explicit,
# builds it instead of the generic rule, with the scheduler's library and -lhwloc.

# proc.c schedules (Ms, Ps, run queues, system calls, the hook), sysmon.c is the monitor thread,
# netpoll.c the netpoller (Gs that wait on fds), fiber.c and ctx_switch.S hold the stacks and the
# switch, deadlock.c the report, cgroup.c the CPU quota that bounds nprocs 0;
# sched_internal.h and fiber.h are what they share.
MPG_SRC   := sched/proc.c sched/sysmon.c sched/netpoll.c sched/fiber.c sched/deadlock.c \
             sched/cgroup.c
MPG_ASM   := sched/ctx_switch.S
MPG_HDR   := sched/chan_sched_mpg.h
MPG_INT   := sched/sched_internal.h sched/fiber.h
MPG_OBJ   := $(MPG_SRC:%.c=$(O)/%.o) $(MPG_ASM:%.S=$(O)/%.o)
MPG_LIB   := $(O)/libchan_mpg.a
MPG_LIBS  := -lhwloc
MPG_TESTS := $(patsubst test/%.c,$(O)/test/%,$(wildcard test/test_mpg*.c))

.PHONY: mpg mpg-pingpong mpg-syscall-cost mpg-valgrind install-mpg uninstall-mpg

MPG_SO    := $(if $(filter plain,$(MODE)),$(O)/libchan_mpg.so $(O)/static/libchan_mpg.a)
mpg: $(MPG_LIB) $(MPG_SO)
lib: $(MPG_LIB) $(MPG_SO)

$(O)/sched/%.o: sched/%.c $(MPG_HDR) $(MPG_INT) $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $(LIBFLAGS) -c $< -o $@

$(O)/sched/%.o: sched/%.S
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $(LIBFLAGS) -c $< -o $@

$(MPG_LIB): $(MPG_OBJ)
	rm -f $@
	ar rcs $@ $^

# Linked against libchan.so (-z defs: an internal helper of libchan that sched/ calls without
# SEAM_EXPORT in seam.h fails here, not at a user's link).
$(O)/libchan_mpg.so.$(VERSION): $(MPG_OBJ) sched/libchan_mpg.map $(O)/libchan.so
	$(CC) $(ALLCFLAGS) -shared -Wl,-soname,libchan_mpg.so.$(SOMAJOR) \
	  -Wl,--version-script=sched/libchan_mpg.map -Wl,-z,defs -o $@ $(MPG_OBJ) $(LDFLAGS) \
	  -L$(O) -lchan $(MPG_LIBS) $(LDLIBS_CORE)

$(O)/libchan_mpg.so: $(O)/libchan_mpg.so.$(VERSION)
	ln -sf libchan_mpg.so.$(VERSION) $(O)/libchan_mpg.so.$(SOMAJOR)
	ln -sf libchan_mpg.so.$(VERSION) $@

$(MPG_TESTS): $(O)/test/%: test/%.c $(wildcard test/*.h) $(MPG_HDR) $(MPG_LIB) $(O)/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(MPG_LIB) $(O)/libchan.a $(LDFLAGS) $(CHECK_LIBS) $(MPG_LIBS) \
	  $(LDLIBS_CORE)

# Plain mode only (the default MODE): it links the plain libraries.
build/plain/sched/pingpong: sched/pingpong.c $(MPG_HDR) chan.h build/plain/libchan_mpg.a \
  build/plain/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< build/plain/libchan_mpg.a build/plain/libchan.a $(LDFLAGS) \
	  $(MPG_LIBS) $(LDLIBS_CORE)

build/plain/sched/burst: sched/burst.c $(MPG_HDR) chan.h io/chan_io.h build/plain/libchan_mpg.a \
  build/plain/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< build/plain/libchan_mpg.a build/plain/libchan.a $(LDFLAGS) \
	  $(MPG_LIBS) $(LDLIBS_CORE)

mpg-pingpong: build/plain/sched/pingpong
	build/plain/sched/pingpong $(or $(N),2000000)

build/plain/sched/syscall_cost: sched/syscall_cost.c $(MPG_HDR) chan.h build/plain/libchan_mpg.a \
  build/plain/libchan.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< build/plain/libchan_mpg.a build/plain/libchan.a $(LDFLAGS) \
	  $(MPG_LIBS) $(LDLIBS_CORE)

mpg-syscall-cost: build/plain/sched/syscall_cost
	build/plain/sched/syscall_cost $(or $(N),2000000)

# Cases that end with every G returned (CK_FORK=no runs them in one process each, in turn).
MPG_VG_CASES := lifecycle pingpong buffered_fifo close_wakes select_gs select_fair until_races \
  until_success sleep_yield pipeline_small mixed_g_pthread deadlock_report no_false_deadlock \
  spawn_from_g soak_mixed

mpg-valgrind:
	$(MAKE) --no-print-directory MODE=plain build/plain/test/test_mpg build/plain/test/test_mpg_select
	CK_FORK=no CHAN_TEST_MODE=asan valgrind -q --error-exitcode=9 build/plain/test/test_mpg_select
	for c in $(MPG_VG_CASES); do echo "== valgrind test_mpg $$c"; \
	  CK_RUN_CASE=$$c CK_FORK=no CHAN_TEST_MODE=asan valgrind -q --error-exitcode=9 \
	    build/plain/test/test_mpg || exit 1; done

MPG_INSTALL_LIB := libchan_mpg.a libchan_mpg.so.$(VERSION) libchan_mpg.so.$(SOMAJOR) libchan_mpg.so

install: install-mpg
install-mpg: lib
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(MPG_HDR) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 build/plain/static/libchan_mpg.a $(DESTDIR)$(LIBDIR)/libchan_mpg.a
	install -m 755 build/plain/libchan_mpg.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/libchan_mpg.so.$(VERSION)
	ln -sf libchan_mpg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libchan_mpg.so.$(SOMAJOR)
	ln -sf libchan_mpg.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libchan_mpg.so
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' sched/libchan-mpg.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/libchan-mpg.pc

uninstall: uninstall-mpg
uninstall-mpg:
	rm -f $(DESTDIR)$(INCLUDEDIR)/$(notdir $(MPG_HDR)) \
	  $(addprefix $(DESTDIR)$(LIBDIR)/,$(MPG_INSTALL_LIB)) $(DESTDIR)$(LIBDIR)/pkgconfig/libchan-mpg.pc
