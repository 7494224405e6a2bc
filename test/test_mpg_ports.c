/* SPDX-License-Identifier: MIT */
/*
 * test_mpg_ports.c - the ports of Go's and crossbeam-channel's channel and select tests (ports.h),
 * each task a G of libchan-mpg on 2 Ps, the port's body itself the first G (Go's main
 * goroutine). test_ports.c runs the same ports on plain threads.
 */
#include "testmpg.h"

#define ON_GS 1
#define PORTS_NAME "mpg_ports"

static void task_go(void (*fn)(void *), void *arg) { go(fn, arg); }

static void task_yield(void) { chan_mpg_yield(); }

static void task_sleep_ms(int ms) { chan_mpg_sleep_until(chan_now() + ms * MS); }

static void run_main(void (*fn)(void *), void *arg)
{
    start(2);
    go(fn, arg);
    finish();
}

#include "ports.h"

#include "ports_suite.h"
