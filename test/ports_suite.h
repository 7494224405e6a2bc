/* SPDX-License-Identifier: MIT */
/* ports_suite.h - the Check cases of ports.h and main(), for test_ports.c and
 * test_mpg_ports.c (each defines how tasks run, then includes ports.h and this). */
#ifndef PORTS_SUITE_H
#define PORTS_SUITE_H

#define PORT_TEST(name)                                                                            \
    START_TEST(name) { PORT_RUN(name##_main, NULL); }                                              \
    END_TEST

PORT_TEST(chan_matrix)
PORT_TEST(nonblock_recv_race)
PORT_TEST(multi_consumer)
PORT_TEST(send_barrier)
PORT_TEST(pseudo_random_send)
PORT_TEST(close_races)
PORT_TEST(select_stack_adjust)
PORT_TEST(benchmarks)
PORT_TEST(select_prod_cons)
PORT_TEST(fifo)
PORT_TEST(goroutines)
PORT_TEST(powser)
PORT_TEST(sieve2)
PORT_TEST(ken_chan)
PORT_TEST(memory_model)
PORT_TEST(select_go)
PORT_TEST(select2)
PORT_TEST(select467)
PORT_TEST(select8)
PORT_TEST(zerosize_sendstmt)
PORT_TEST(select5)
PORT_TEST(cb_len_cap)
PORT_TEST(cb_timeouts)
PORT_TEST(cb_timeout_two)
PORT_TEST(cb_linearizable)
PORT_TEST(cb_mpmc)
PORT_TEST(cb_fairness_dup)
PORT_TEST(cb_misc)
PORT_TEST(cb_select)
PORT_TEST(cb_linearizable_select)
PORT_TEST(cb_select_stress)
PORT_TEST(cb_fairness_selects)
PORT_TEST(contract)

int main(void)
{
    Suite *s = suite_create(PORTS_NAME);
    ADD_TEST(s, chan_matrix, 60);
    ADD_TEST(s, nonblock_recv_race, 60);
    ADD_TEST(s, multi_consumer, 60);
    ADD_TEST(s, send_barrier, 60);
    ADD_TEST(s, pseudo_random_send, 30);
    ADD_TEST(s, close_races, 60);
    ADD_TEST(s, select_stack_adjust, 30);
    ADD_TEST(s, benchmarks, 60);
    ADD_TEST(s, select_prod_cons, 60);
    ADD_TEST(s, fifo, 30);
    ADD_TEST(s, goroutines, 60);
    ADD_TEST(s, powser, 60);
    ADD_TEST(s, sieve2, 30);
    ADD_TEST(s, ken_chan, 60);
    ADD_TEST(s, memory_model, 60);
    ADD_TEST(s, select_go, 10);
    ADD_TEST(s, select2, 60);
    ADD_TEST(s, select467, 30);
    ADD_TEST(s, select8, 30);
    ADD_TEST(s, zerosize_sendstmt, 10);
    ADD_TEST(s, select5, 60);
    ADD_TEST(s, cb_len_cap, 30);
    ADD_TEST(s, cb_timeouts, 30);
    ADD_TEST(s, cb_timeout_two, 60);
    ADD_TEST(s, cb_linearizable, 60);
    ADD_TEST(s, cb_mpmc, 60);
    ADD_TEST(s, cb_fairness_dup, 30);
    ADD_TEST(s, cb_misc, 30);
    ADD_TEST(s, cb_select, 60);
    ADD_TEST(s, cb_linearizable_select, 60);
    ADD_TEST(s, cb_select_stress, 60);
    ADD_TEST(s, cb_fairness_selects, 60);
    ADD_TEST(s, contract, 30);
    return run_suite(s);
}

#endif
