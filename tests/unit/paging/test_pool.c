/* The shared test frame pool (tests/support/frame_pool.h) itself. */
#include <criterion/criterion.h>

#include <hadron/mm/hhdm.h>

#include "frame_pool.h"
#include "mm_test.h"

Test(paging_pool, counts_scribbles_and_detects_bad_frees)
{
    sim_phys_create(1ull << 20);
    frame_pool_t p;
    frame_pool_init(&p, 0x10000, 16);
    mm_frame_allocator_t fa = frame_pool_allocator(&p);
    mm_paddr_t a, b;
    cr_assert_eq(mm_frame_alloc(&fa, &a), MM_OK);
    cr_assert_eq(mm_frame_alloc(&fa, &b), MM_OK);
    cr_assert_neq(a, b);
    cr_assert(frame_pool_is_allocated(&p, a));
    cr_assert_eq(((uint8_t *)hhdm_phys_to_virt(a))[123], FRAME_POOL_JUNK);
    cr_assert_eq(p.live, 2);
    cr_assert_eq(mm_frame_free(&fa, a), MM_OK);
    cr_assert_eq(mm_frame_free(&fa, a), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(mm_frame_free(&fa, 0x1000), MM_ERR_INVALID);
    cr_assert_eq(mm_frame_free(&fa, b + 8), MM_ERR_INVALID);
    cr_assert_eq(p.free_errors, 3);
    cr_assert_eq(p.live, 1);
    cr_assert_eq(p.frames_allocated, 2);
    cr_assert_eq(p.frames_freed, 1);
    cr_assert_eq(p.peak, 2);
    frame_pool_destroy(&p);
}

Test(paging_pool, runs_alignment_limit_and_exhaustion)
{
    sim_phys_create(1ull << 20);
    frame_pool_t p;
    frame_pool_init(&p, 0x11000, 32); /* frames 0x11..0x30 */
    mm_paddr_t r;
    cr_assert_eq(frame_pool_alloc(&p, 4, 8, MM_PADDR_MAX, &r), MM_OK);
    cr_assert_eq(r, 0x18000, "first 8-frame aligned run");
    cr_assert_eq(frame_pool_alloc(&p, 2, 1, 0x13000, &r), MM_OK);
    cr_assert_eq(r, 0x11000, "last byte below the limit");
    cr_assert_eq(frame_pool_alloc(&p, 2, 1, 0x12fff, &r), MM_ERR_NOMEM);
    cr_assert_eq(frame_pool_alloc(&p, 0, 1, MM_PADDR_MAX, &r), MM_ERR_INVALID);
    cr_assert_eq(frame_pool_alloc(&p, 1, 3, MM_PADDR_MAX, &r), MM_ERR_INVALID);
    cr_assert_eq(frame_pool_alloc(&p, 33, 1, MM_PADDR_MAX, &r), MM_ERR_NOMEM);
    cr_assert_eq(frame_pool_free(&p, 0x19000, 2), MM_OK, "a sub-run may be freed");
    cr_assert_eq(p.live, 4);
    frame_pool_destroy(&p);
}

Test(paging_pool, fails_the_kth_call_once_or_from_then_on)
{
    sim_phys_create(1ull << 20);
    frame_pool_t p;
    frame_pool_init(&p, 0x10000, 16);
    mm_paddr_t r;
    frame_pool_fail_at(&p, 2, false);
    cr_assert_eq(frame_pool_alloc(&p, 1, 1, MM_PADDR_MAX, &r), MM_OK);
    cr_assert_eq(frame_pool_alloc(&p, 1, 1, MM_PADDR_MAX, &r), MM_ERR_NOMEM);
    cr_assert_eq(frame_pool_alloc(&p, 1, 1, MM_PADDR_MAX, &r), MM_OK);
    frame_pool_fail_at(&p, 1, true);
    cr_assert_eq(frame_pool_alloc(&p, 1, 1, MM_PADDR_MAX, &r), MM_ERR_NOMEM);
    cr_assert_eq(frame_pool_alloc(&p, 1, 1, MM_PADDR_MAX, &r), MM_ERR_NOMEM);
    frame_pool_fail_at(&p, 0, false);
    cr_assert_eq(frame_pool_alloc(&p, 1, 1, MM_PADDR_MAX, &r), MM_OK);
    cr_assert_eq(p.alloc_calls, 6);
    cr_assert_eq(p.alloc_failures, 3);
    cr_assert_eq(p.live, 3);
    frame_pool_destroy(&p);
}
