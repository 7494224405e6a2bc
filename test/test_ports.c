/* SPDX-License-Identifier: MIT */
/*
 * test_ports.c - the ports of Go's and crossbeam-channel's channel and select tests (ports.h),
 * each task a plain thread. test_mpg_ports.c runs the same ports on Gs.
 */
#include "testutil.h"

#include <sched.h>

#define ON_GS 0
#define PORTS_NAME "ports"

/* The tasks started since the last run_main, joined by it (in any order: each ends). */
static pthread_mutex_t tasks_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t *tasks;
static size_t ntasks, tasks_cap;

static void task_go(void (*fn)(void *), void *arg)
{
    pthread_t t = spawn_fn(fn, arg, 256 * 1024);
    pthread_mutex_lock(&tasks_mu);
    if (ntasks == tasks_cap) {
        tasks_cap = tasks_cap ? 2 * tasks_cap : 256;
        tasks = realloc(tasks, tasks_cap * sizeof *tasks);
        ck_assert_ptr_nonnull(tasks);
    }
    tasks[ntasks++] = t;
    pthread_mutex_unlock(&tasks_mu);
}

static void task_yield(void) { sched_yield(); }

static void task_sleep_ms(int ms) { sleep_ms(ms); }

static void run_main(void (*fn)(void *), void *arg)
{
    fn(arg);
    for (;;) {
        pthread_mutex_lock(&tasks_mu);
        if (ntasks == 0) {
            pthread_mutex_unlock(&tasks_mu);
            break;
        }
        pthread_t t = tasks[--ntasks];
        pthread_mutex_unlock(&tasks_mu);
        join(t);
    }
}

#include "ports.h"

#include "ports_suite.h"
