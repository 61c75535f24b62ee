/*
 * Host test fixtures: recorded hook calls and simulated physical memory.
 *
 * Criterion runs every test in a fresh worker process, so the globals here
 * start zeroed in each test.
 */
#ifndef MM_TEST_H
#define MM_TEST_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/core.h>

typedef struct test_hook_log {
    int count;
    mm_report_t last;
} test_hook_log_t;

extern test_hook_log_t test_panics; /* mm_hook_panic calls */
extern test_hook_log_t test_warnings; /* mm_hook_warn calls */

/* Where mm_hook_panic longjmps to while a TEST_CATCH_PANIC is active;
 * without one it prints the report and aborts (the test then fails). */
extern jmp_buf *volatile test_panic_target;

/* Runs `stmt`; evaluates to true if it panicked through the hook. Locks the
 * panicking code held stay held: use the instance no further. */
#define TEST_CATCH_PANIC(stmt)                                                                     \
    __extension__({                                                                                \
        jmp_buf test_jb_;                                                                          \
        volatile bool test_panicked_ = false;                                                      \
        test_panic_target = &test_jb_;                                                             \
        if (setjmp(test_jb_) == 0) {                                                               \
            stmt;                                                                                  \
        } else {                                                                                   \
            test_panicked_ = true;                                                                 \
        }                                                                                          \
        test_panic_target = NULL;                                                                  \
        test_panicked_;                                                                            \
    })

/* Calls of the TLB, root-switch and identity-retire hooks. */
typedef struct test_tlb_log {
    int page_calls;        /* mm_hook_tlb_flush_pages calls */
    uint64_t pages_flushed; /* pages passed over all those calls */
    size_t last_count;
    mm_vaddr_t last_pages[MM_TLB_BATCH_MAX];
    mm_asid_t last_pages_asid;
    int all_calls;         /* mm_hook_tlb_flush_all calls */
    bool last_all_global;
    mm_asid_t last_all_asid;
    int switches;          /* mm_hook_switch_root calls */
    mm_paddr_t current_root;
    mm_asid_t current_asid;
    int retires;           /* mm_hook_asid_retire calls */
    mm_asid_t last_retired;
    int irq_depth_at_retire; /* interrupt depth during the last retire */
    /* The CPU set of the last flush call (either hook): CPUs 0..63 as bits,
     * the "all CPUs" mark, and how many indexed CPUs it held. */
    uint64_t last_cpus_bits;
    bool last_cpus_all;
    unsigned last_cpus_count;
} test_tlb_log_t;
extern test_tlb_log_t test_tlb;
/* Called (when set) inside every TLB flush hook call, before it returns,
 * with the flush's identity: a test sees the page tables exactly as they
 * are while the invalidation happens (break-before-make: the entry must be
 * invalid). From mm_hook_tlb_flush_all: pages NULL, count 0. */
extern void (*test_tlb_pages_observer)(mm_asid_t asid, const mm_vaddr_t *pages, size_t count);
/* Called (when set) first in every TLB flush hook call with the CPU set it
 * was given (a stress program delivers its simulated shootdown there). */
extern void (*test_tlb_cpus_observer)(mm_asid_t asid, const mm_cpuset_t *cpus);

/* Called (when set) from mm_hook_asid_retire, so a test can look at the
 * state the retire sees (e.g. that no table was freed yet). */
extern void (*test_on_retire)(mm_asid_t asid);

/* Interrupt-disable nesting of the calling thread: 0 whenever no hadron-mm
 * lock is held, which tests assert after each call. */
int test_irq_depth(void);
/* Called (when set) by mm_hook_irq_save before it disables anything: where
 * an interrupt could still come in, a test can run one there. */
extern void (*volatile test_irq_save_observer)(void);

/* Calls of mm_hook_spin_yield (spin_yield builds): a waiter that polled a
 * lock MM_SPIN_YIELD_SPINS times gave up the CPU (sched_yield). */
extern atomic_long test_spin_yields;
/* Called (when set) by mm_hook_spin_yield in the yielding thread before it
 * yields: a test can make a lock's queue move at known points of a wait
 * (every MM_SPIN_YIELD_SPINS polls), independent of the machine's speed. */
extern void (*volatile test_spin_yield_observer)(void);
/* Successful calls of mm_hook_cpu_barrier (membarrier), and a switch that
 * makes it refuse, as a kernel's does when it cannot interrupt the other
 * CPUs from where it is called. */
extern atomic_long test_cpu_barriers;
extern volatile bool test_cpu_barrier_refused;
/* The CPU index mm_hook_cpu_index returns; -1 (the default): one per thread. */
extern int test_cpu_index;

/* Simulated physical memory: `bytes` of address space (lazily backed by the
 * host kernel) whose first byte is physical address 0. Also sets the HHDM
 * offset to the buffer, so hadron-mm reaches "physical" memory exactly as a
 * kernel does. Aborts the test if the mapping fails. */
void *sim_phys_create(uint64_t bytes);
/* The same at `hint` when that range is free (the kernel's choice
 * otherwise): where the mapping lands then does not depend on what the
 * process mapped before, which can vary with its paths and environment. */
void *sim_phys_create_at(uintptr_t hint, uint64_t bytes);

/* The simulated memory's base (NULL before sim_phys_create). */
uint8_t *sim_phys_base(void);

#endif /* MM_TEST_H */
