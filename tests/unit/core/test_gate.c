/*
 * Per-CPU gates (gate.h): entering, leaving, holding, a refused barrier.
 * The handshake's concurrency is proved where gates are used: test_pcp.c
 * pmm/pcp_a_hold_waits_for_a_cpu_inside_its_cache, test_front.c
 * kmem_front/a_hold_waits_for_a_cpu_inside_its_front, stress-pcp and
 * stress-kmem (also under ThreadSanitizer).
 */
#include <criterion/criterion.h>
#include <stdatomic.h>

#include <hadron/mm/gate.h>

#include "mm_test.h"

Test(gate, a_cpu_enters_while_nobody_holds_and_leaves)
{
    unsigned active = 0, holders = 0;
    cr_assert(mm_gate_enter(&active, &holders));
    cr_assert_eq(active, 1);
    cr_assert(mm_gate_entered(&active));
    mm_gate_leave(&active);
    cr_assert_eq(active, 0);
    cr_assert_not(mm_gate_entered(&active));
}

Test(gate, an_interrupt_inside_the_gate_cannot_enter_it)
{
    unsigned active = 0, holders = 0;
    cr_assert(mm_gate_enter(&active, &holders));
    cr_assert_not(mm_gate_enter(&active, &holders), "entered already");
    cr_assert_eq(active, 1, "the outer context is still inside");
    mm_gate_leave(&active);
}

Test(gate, while_held_nobody_enters)
{
    unsigned active = 0, holders = 0;
    long barriers = atomic_load(&test_cpu_barriers);
    cr_assert(mm_gate_hold(&holders));
    cr_assert_eq(holders, 1);
    cr_assert_eq(atomic_load(&test_cpu_barriers), barriers + HADRON_MM_ASYMMETRIC_BARRIER,
                 "the other CPUs are made to fence only with asymmetric_barrier");
    cr_assert(mm_gate_hold(&holders), "holds nest");
    cr_assert_not(mm_gate_enter(&active, &holders));
    cr_assert_eq(active, 0, "a refused entry leaves nothing set");
    mm_gate_wait_left(&active);
    mm_gate_release(&holders);
    cr_assert_not(mm_gate_enter(&active, &holders));
    mm_gate_release(&holders);
    cr_assert_eq(holders, 0);
    cr_assert(mm_gate_enter(&active, &holders));
    mm_gate_leave(&active);
}

#if HADRON_MM_ASYMMETRIC_BARRIER
Test(gate, a_refused_barrier_holds_nothing)
{
    unsigned active = 0, holders = 0;
    test_cpu_barrier_refused = true;
    cr_assert_not(mm_gate_hold(&holders));
    test_cpu_barrier_refused = false;
    cr_assert_eq(holders, 0);
    cr_assert(mm_gate_enter(&active, &holders));
    mm_gate_leave(&active);
}
#endif

#if HADRON_MM_ASSERTIONS
Test(gate, releasing_a_hold_never_taken_is_caught)
{
    unsigned holders = 0;
    cr_assert(TEST_CATCH_PANIC(mm_gate_release(&holders)));
}
#endif
