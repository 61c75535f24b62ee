#include <criterion/criterion.h>

#include <hadron/mm/cpuset.h>
#include <hadron/mm/tlb.h>

#include "mm_test.h"

Test(cpuset, add_contains_count_and_iterate)
{
    static mm_cpuset_t s; /* static storage: empty */
    cr_assert(mm_cpuset_is_empty(&s));
    cr_assert_eq(mm_cpuset_next(&s, 0), HADRON_MM_MAX_CPUS);
    mm_cpuset_add(&s, 0);
    mm_cpuset_add(&s, HADRON_MM_MAX_CPUS - 1);
    mm_cpuset_add(&s, 0); /* again: no change */
    cr_assert_not(mm_cpuset_is_empty(&s));
    cr_assert_not(mm_cpuset_is_all(&s));
    unsigned n = HADRON_MM_MAX_CPUS > 1 ? 2 : 1;
    cr_assert_eq(mm_cpuset_count(&s), n);
    cr_assert(mm_cpuset_contains(&s, 0));
    cr_assert(mm_cpuset_contains(&s, HADRON_MM_MAX_CPUS - 1));
    cr_assert_not(mm_cpuset_contains(&s, HADRON_MM_MAX_CPUS), "out of range: not indexed");
    if (HADRON_MM_MAX_CPUS > 2)
        cr_assert_not(mm_cpuset_contains(&s, 1));
    cr_assert_eq(mm_cpuset_next(&s, 0), 0);
    if (HADRON_MM_MAX_CPUS > 1)
        cr_assert_eq(mm_cpuset_next(&s, 1), HADRON_MM_MAX_CPUS - 1);
    cr_assert_eq(mm_cpuset_next(&s, HADRON_MM_MAX_CPUS), HADRON_MM_MAX_CPUS);
    mm_cpuset_clear(&s);
    cr_assert(mm_cpuset_is_empty(&s));
}

Test(cpuset, an_unindexed_cpu_marks_all)
{
    mm_cpuset_t s;
    mm_cpuset_clear(&s);
    mm_cpuset_add(&s, HADRON_MM_MAX_CPUS + 7);
    cr_assert(mm_cpuset_is_all(&s));
    cr_assert_not(mm_cpuset_is_empty(&s));
    cr_assert(mm_cpuset_contains(&s, 5));
    cr_assert(mm_cpuset_contains(&s, HADRON_MM_MAX_CPUS + 100));
    cr_assert_eq(mm_cpuset_count(&s), HADRON_MM_MAX_CPUS);
    cr_assert_eq(mm_cpuset_next(&s, 0), 0);
    mm_cpuset_t t;
    mm_cpuset_snapshot(&t, &s);
    cr_assert(mm_cpuset_is_all(&t));
}

Test(cpuset, snapshot_copies_and_stays_apart)
{
    mm_cpuset_t s, t;
    mm_cpuset_clear(&s);
    mm_cpuset_add(&s, HADRON_MM_MAX_CPUS / 2);
    mm_cpuset_snapshot(&t, &s);
    mm_cpuset_add(&s, 0);
    cr_assert_eq(mm_cpuset_count(&t), 1);
    cr_assert(mm_cpuset_contains(&t, HADRON_MM_MAX_CPUS / 2));
    mm_cpuset_fill(&t);
    cr_assert(mm_cpuset_is_all(&t));
    cr_assert_not(mm_cpuset_is_all(&s));
}

Test(tlb, a_space_batch_hands_a_snapshot_of_its_set_to_both_hooks)
{
    mm_cpuset_t live;
    mm_cpuset_clear(&live);
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT_SPACE(7, &live);
    mm_tlb_batch_add(&b, 0x1000, MM_PAGE_4K, false);
    mm_cpuset_add(&live, 1); /* read at the flush, not at init */
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 1);
    cr_assert_eq(test_tlb.last_cpus_bits, 1ull << 1);
    cr_assert_not(test_tlb.last_cpus_all);

    mm_tlb_batch_t c;
    mm_tlb_batch_init_space(&c, 7, &live);
    for (unsigned i = 0; i <= MM_TLB_BATCH_MAX; i++)
        mm_tlb_batch_add(&c, (uint64_t)i << 12, MM_PAGE_4K, false);
    mm_cpuset_add(&live, 0);
    mm_tlb_batch_flush(&c);
    cr_assert_eq(test_tlb.all_calls, 1);
    cr_assert_eq(test_tlb.last_all_asid, 7);
    cr_assert_eq(test_tlb.last_cpus_bits, 3);
    cr_assert_eq(c.cpus, &live, "the flush keeps the set");

    mm_tlb_batch_t k = MM_TLB_BATCH_INIT;
    mm_tlb_batch_add(&k, 0xffffc00000000000ull, MM_PAGE_4K, true);
    mm_tlb_batch_flush(&k);
    cr_assert(test_tlb.last_cpus_all, "kernel half: every CPU");
    mm_tlb_batch_init_space(&k, 3, NULL);
    mm_tlb_batch_add(&k, 0x1000, MM_PAGE_4K, false);
    mm_tlb_batch_flush(&k);
    cr_assert(test_tlb.last_cpus_all, "no set: every CPU");
}
