#include <criterion/criterion.h>

#include <hadron/mm/tlb.h>

#include "mm_test.h"

Test(tlb, empty_batch_makes_no_call)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    cr_assert(mm_tlb_batch_empty(&b));
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls, 0);
}

Test(tlb, sixteen_pages_one_call)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    for (int i = 0; i < 16; i++)
        mm_tlb_batch_add(&b, 0xffffc00000000000ull + (uint64_t)i * 4096 + 12, MM_PAGE_4K, false);
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 1);
    cr_assert_eq(test_tlb.last_count, 16);
    cr_assert_eq(test_tlb.last_pages[3], 0xffffc00000003000ull, "recorded page base");
    cr_assert(mm_tlb_batch_empty(&b), "flush empties the batch");
}

Test(tlb, duplicates_and_huge_pages_take_one_slot)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    mm_tlb_batch_add(&b, 0x200000, MM_PAGE_2M, false);
    mm_tlb_batch_add(&b, 0x3ff000, MM_PAGE_2M, false);
    mm_tlb_batch_add(&b, 0x1000, MM_PAGE_4K, false);
    mm_tlb_batch_add(&b, 0x1000, MM_PAGE_4K, false);
    cr_assert_eq(b.count, 2);
}

Test(tlb, overflow_becomes_one_full_flush_with_globals)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    for (unsigned i = 0; i <= MM_TLB_BATCH_MAX; i++)
        mm_tlb_batch_add(&b, (uint64_t)i << 12, MM_PAGE_4K, i == 5);
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 0);
    cr_assert_eq(test_tlb.all_calls, 1);
    cr_assert(test_tlb.last_all_global);
}
