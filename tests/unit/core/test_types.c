#include <criterion/criterion.h>

#include <hadron/mm/types.h>

Test(types, page_sizes)
{
    cr_assert_eq(mm_page_bytes(MM_PAGE_4K), 4096);
    cr_assert_eq(mm_page_bytes(MM_PAGE_2M), 2u << 20);
    cr_assert_eq(mm_page_bytes(MM_PAGE_1G), 1u << 30);
}

Test(types, alignment)
{
    cr_assert(mm_is_aligned(0, 4096));
    cr_assert(mm_is_aligned(8192, 4096));
    cr_assert_not(mm_is_aligned(4097, 4096));
    cr_assert_eq(mm_align_down(0x1fff, 0x1000), 0x1000);
    cr_assert_eq(mm_align_up(0x1001, 0x1000), 0x2000);
    cr_assert_eq(mm_align_up(0x1000, 0x1000), 0x1000);
    cr_assert(mm_is_pow2(1) && mm_is_pow2(4096) && !mm_is_pow2(0) && !mm_is_pow2(12));
}

Test(types, align_up_checked_refuses_to_wrap)
{
    uint64_t out = 42;
    cr_assert(mm_align_up_checked(UINT64_MAX - 4095, 4096, &out));
    cr_assert_eq(out, UINT64_MAX - 4095);
    out = 42;
    cr_assert_not(mm_align_up_checked(UINT64_MAX - 4094, 4096, &out));
    cr_assert_eq(out, 42, "output written on failure");
}

Test(types, ranges)
{
    uint64_t last = 7;
    cr_assert_not(mm_range_last(5, 0, &last), "empty range has no last byte");
    cr_assert(mm_range_last(UINT64_MAX - 9, 10, &last));
    cr_assert_eq(last, UINT64_MAX);
    cr_assert_not(mm_range_last(UINT64_MAX - 9, 11, &last), "wraps");
    cr_assert(mm_ranges_overlap(0, 10, 10, 20));
    cr_assert_not(mm_ranges_overlap(0, 9, 10, 20));
    cr_assert(mm_ranges_overlap(5, 6, 0, 100));
}
