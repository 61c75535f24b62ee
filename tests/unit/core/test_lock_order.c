/* Lock-order checking (the lock_order option): the canary that proves a
 * violation is caught, in the builds that turn it on (scripts/check:
 * clang-debug, cross-debug), and the proof that it costs nothing in the
 * others. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include <hadron/mm/spinlock.h>

#include "mm_test.h"

#if HADRON_MM_LOCK_ORDER

static mm_spinlock_t heap_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_KHEAP_BLOCK, "kheap block");
static mm_spinlock_t vmm_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_VMM, "vmm");
static mm_spinlock_t pmm_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_PMM, "pmm");

static void assert_report(const char *lock, const char *held, const mm_spinlock_t *taken)
{
    cr_assert_eq(test_panics.count, 1);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_LOCK_ORDER);
    cr_assert_str_eq(mm_report_kind_str(test_panics.last.kind), "lock-order");
    cr_assert_str_eq(test_panics.last.lock, lock);
    cr_assert_str_eq(test_panics.last.held, held);
    cr_assert_eq(test_panics.last.address, (uint64_t)(uintptr_t)taken);
}

Test(lock_order, documented_order_passes)
{
    mm_irqflags_t a = mm_spin_lock_irqsave(&heap_lock);
    mm_irqflags_t b = mm_spin_lock_irqsave(&vmm_lock);
    mm_irqflags_t c = mm_spin_lock_irqsave(&pmm_lock);
    /* Released in any order; the order is then free again. */
    mm_spin_unlock_irqrestore(&vmm_lock, b);
    mm_spin_unlock_irqrestore(&pmm_lock, c);
    mm_spin_unlock_irqrestore(&heap_lock, a);
    mm_irqflags_t d = mm_spin_lock_irqsave(&pmm_lock);
    mm_spin_unlock_irqrestore(&pmm_lock, d);
    cr_assert_eq(test_panics.count, 0);
}

/* The canary: PMM then VMM is the reverse of the order. The report comes
 * before the second lock is taken (instead of a deadlock) and names both. */
Test(lock_order, wrong_order_panics_naming_both_locks)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&pmm_lock);
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&vmm_lock)));
    assert_report("vmm", "pmm", &vmm_lock);
    cr_assert_eq(test_panics.last.found, MM_LOCK_RANK_VMM);
    cr_assert_eq(test_panics.last.expected, MM_LOCK_RANK_PMM);
    cr_assert_not(mm_spin_is_locked(&vmm_lock), "the out-of-order lock was not taken");
    mm_spin_unlock_irqrestore(&pmm_lock, f);
}

Test(lock_order, retaking_a_held_lock_panics)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&vmm_lock);
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&vmm_lock)));
    assert_report("vmm", "vmm", &vmm_lock);
    mm_spin_unlock_irqrestore(&vmm_lock, f);
    cr_assert_not(mm_spin_is_locked(&vmm_lock));
}

Test(lock_order, equal_rank_locks_never_nest)
{
    static mm_spinlock_t other_pmm = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_PMM, "pmm 2");
    mm_irqflags_t f = mm_spin_lock_irqsave(&pmm_lock);
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&other_pmm)));
    assert_report("pmm 2", "pmm", &other_pmm);
    mm_spin_unlock_irqrestore(&pmm_lock, f);
}

/* A per-CPU family (one lock per CPU, several held by a drain) nests only
 * upwards in address; below the family's rank's successors as usual. */
Test(lock_order, a_family_nests_upwards_in_address_only)
{
    static mm_spinlock_t cache[3];
    for (int i = 0; i < 3; i++)
        mm_spin_init_ranked(&cache[i], MM_LOCK_RANK_KHEAP_FRONT, "kheap front");
    mm_irqflags_t f = mm_spin_lock_irqsave(&cache[0]);
    mm_spin_lock(&cache[2]);
    mm_spin_lock(&pmm_lock);
    cr_assert_eq(test_panics.count, 0, "ascending, then the PMM lock");
    mm_spin_unlock(&pmm_lock);
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&cache[1])), "below a held member");
    assert_report("kheap front", "kheap front", &cache[1]);
    mm_spin_unlock(&cache[2]);
    mm_spin_unlock_irqrestore(&cache[0], f);
    test_panics.count = 0;
    f = mm_spin_lock_irqsave(&pmm_lock);
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&cache[0])), "a member under the PMM lock");
    assert_report("kheap front", "pmm", &cache[0]);
    mm_spin_unlock_irqrestore(&pmm_lock, f);
}

Test(lock_order, unranked_locks_are_checked_only_for_retaking)
{
    static mm_spinlock_t plain = MM_SPINLOCK_INIT;
    mm_irqflags_t f = mm_spin_lock_irqsave(&pmm_lock);
    mm_spin_lock(&plain); /* no rank: outside the order */
    mm_spin_unlock(&plain);
    mm_spin_lock(&plain);
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&plain)));
    assert_report("unranked lock", "unranked lock", &plain);
    mm_spin_unlock(&plain);
    mm_spin_unlock_irqrestore(&pmm_lock, f);
}

/* A trylock cannot deadlock, so it is not order-checked, but what it takes
 * counts as held for the locks taken after it. */
Test(lock_order, trylock_records_what_it_takes)
{
    mm_irqflags_t f = mm_hook_irq_save();
    cr_assert(mm_spin_trylock(&pmm_lock));
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&heap_lock)));
    assert_report("kheap block", "pmm", &heap_lock);
    mm_spin_unlock(&pmm_lock);
    mm_hook_irq_restore(f);
}

/* After a caught panic the harness forgets the held locks: the next test
 * step starts clean (tests/support/hooks_host.c). */
Test(lock_order, a_caught_panic_leaves_no_stale_record)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&pmm_lock);
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&pmm_lock)));
    mm_spin_unlock_irqrestore(&pmm_lock, f);
    f = mm_spin_lock_irqsave(&heap_lock);
    mm_spin_unlock_irqrestore(&heap_lock, f);
    cr_assert_eq(test_panics.count, 1);
}

/* Each CPU has its own record: another CPU's locks are no violation. */
static void *take_heap_lock(void *arg)
{
    (void)arg;
    mm_irqflags_t f = mm_spin_lock_irqsave(&heap_lock);
    mm_spin_unlock_irqrestore(&heap_lock, f);
    return NULL;
}

Test(lock_order, records_are_per_cpu)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&pmm_lock);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, take_heap_lock, NULL), 0);
    pthread_join(t, NULL);
    mm_spin_unlock_irqrestore(&pmm_lock, f);
    cr_assert_eq(test_panics.count, 0);
}

#else

/* Without the option a lock is the two ticket counters and nothing more. */
Test(lock_order, off_adds_no_field)
{
    cr_assert_eq(sizeof(mm_spinlock_t), 2 * sizeof(atomic_uint));
    mm_spinlock_t l = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_PMM, "pmm");
    mm_spin_lock(&l);
    mm_spin_unlock(&l);
    mm_lock_order_forget_cpu();
    cr_assert_not(mm_spin_is_locked(&l));
}

#endif
