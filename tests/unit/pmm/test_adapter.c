#include "pmm_fixture.h"

Test(pmm, adapter_implements_frame_allocator)
{
    pmm_t p;
    fx_init(&p, fx_qemu_8g, fx_qemu_8g_len, 0x240000000ull);
    pmm_stats_t s0 = fx_stats(&p);
    mm_frame_allocator_t fa = pmm_frame_allocator(&p);
    cr_assert_eq(fa.ctx, &p);

    mm_paddr_t a;
    cr_assert_eq(mm_frame_alloc(&fa, &a), MM_OK);
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_USED);
    cr_assert_eq(test_irq_depth(), 0);

    /* A 2 MiB DMA buffer below 4 GiB. */
    mm_paddr_t big;
    cr_assert_eq(fa.alloc(fa.ctx, 512, 512, 4 * FX_GIB, &big), MM_OK);
    cr_assert_eq(big % (2 * FX_MIB), 0);
    cr_assert_leq(big + 2 * FX_MIB, 4 * FX_GIB);
    cr_assert_eq(fx_stats(&p).free_frames, s0.free_frames - 513);

    /* Errors as the interface documents them. */
    mm_paddr_t x = 5;
    cr_assert_eq(fa.alloc(fa.ctx, 0, 1, MM_PADDR_MAX, &x), MM_ERR_INVALID);
    cr_assert_eq(fa.alloc(fa.ctx, 1, 3, MM_PADDR_MAX, &x), MM_ERR_INVALID);
    cr_assert_eq(fa.alloc(fa.ctx, 1u << 30, 1, MM_PADDR_MAX, &x), MM_ERR_NOMEM);
    cr_assert_eq(x, 5);

    /* Sub-runs of a contiguous allocation may be freed separately. */
    cr_assert_eq(fa.free(fa.ctx, big, 256), MM_OK);
    cr_assert_eq(fa.free(fa.ctx, big + 256 * FX_PG, 256), MM_OK);
    cr_assert_eq(fa.free(fa.ctx, big, 1), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(mm_frame_free(&fa, a), MM_OK);
    cr_assert_eq(mm_frame_free(&fa, a), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(fx_stats(&p).free_frames, s0.free_frames);
    cr_assert_eq(test_irq_depth(), 0);
    fx_check(&p);
}
