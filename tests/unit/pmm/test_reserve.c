#include "pmm_fixture.h"

Test(pmm, reserve_kernel_image_rounds_outward)
{
    pmm_t p;
    fx_init(&p, fx_qemu_256m, fx_qemu_256m_len, 256 * FX_MIB);
    pmm_stats_t s0 = fx_stats(&p);
    /* A kernel image at 1 MiB + 0x10 of 0x2345 bytes touches 3 frames. */
    cr_assert_eq(pmm_reserve(&p, 0x100010, 0x2345), MM_OK);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.usable_frames, s0.usable_frames - 3);
    cr_assert_eq(s.free_frames, s0.free_frames - 3);
    cr_assert_eq(s.reserved_frames, s0.reserved_frames + 3);
    cr_assert_eq(pmm_frame_state(&p, 0x100000), PMM_FRAME_RESERVED);
    cr_assert_eq(pmm_frame_state(&p, 0x102000), PMM_FRAME_RESERVED);
    cr_assert_eq(pmm_frame_state(&p, 0x103000), PMM_FRAME_FREE);
    cr_assert_eq(pmm_free(&p, 0x101000), MM_ERR_NOT_USABLE);
    fx_check(&p);

    /* Reserving it again, or a range overlapping firmware holes, is fine:
     * reserved frames stay reserved. */
    cr_assert_eq(pmm_reserve(&p, 0x100000, 0x3000), MM_OK);
    cr_assert_eq(pmm_reserve(&p, 0x9e000, 0x63000), MM_OK); /* 0x9e000..0x101000 */
    s = fx_stats(&p);
    cr_assert_eq(s.usable_frames, s0.usable_frames - 4, "only 0x9e000 was still managed");
    fx_check(&p);

    /* Nothing is ever allocated from it. */
    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    for (uint64_t i = 0; i < n; i++)
        cr_assert(all[i] < 0x9e000 || all[i] >= 0x103000, "reserved frame %#llx handed out",
                  (unsigned long long)all[i]);
    free(all);
}

Test(pmm, reserve_errors_change_nothing)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_paddr_t a;
    cr_assert_eq(pmm_alloc_contig(&p, 4, 4, MM_PADDR_MAX, &a), MM_OK);
    cr_assert_eq(a, 4 * FX_PG);
    fx_snap_t snap;
    fx_snap(&p, &snap);
    cr_assert_eq(pmm_reserve(NULL, a, FX_PG), MM_ERR_INVALID);
    cr_assert_eq(pmm_reserve(&p, a, 0), MM_ERR_INVALID);
    cr_assert_eq(pmm_reserve(&p, 0xfffffffffffff000ull, 0x2000), MM_ERR_INVALID);
    cr_assert_eq(pmm_reserve(&p, 64 * FX_MIB - FX_PG, 2 * FX_PG), MM_ERR_RANGE);
    /* The range holds free frames and one allocated frame: all or nothing. */
    cr_assert_eq(pmm_reserve(&p, a + 3 * FX_PG, 10 * FX_PG), MM_ERR_STATE);
    cr_assert_eq(pmm_reserve(&p, a - FX_PG, 1), MM_OK, "the free neighbour is fine");
    cr_assert_eq(pmm_release(&p, a - FX_PG, FX_PG), MM_OK, "and can come back");
    fx_assert_unchanged(&p, &snap, "rejected reservations");
}

Test(pmm, release_reclaimable_memory)
{
    const pmm_region_t map[] = {
        {0, 0x9fc00, PMM_REGION_USABLE},
        {0x100000, 0x7f00000, PMM_REGION_USABLE},
        {0x1000000, 0x20000, PMM_REGION_ACPI_RECLAIMABLE},
        {0x2000000, 0x100800, PMM_REGION_BOOTLOADER_RECLAIMABLE},
        {0x3000000, 0x10000, PMM_REGION_ACPI_NVS},
    };
    pmm_t p;
    fx_init(&p, map, FX_ARRAY_LEN(map), 128 * FX_MIB);
    pmm_stats_t s0 = fx_stats(&p);
    cr_assert_eq(pmm_frame_state(&p, 0x1000000), PMM_FRAME_RESERVED);
    cr_assert_eq(pmm_frame_state(&p, 0x2000000), PMM_FRAME_RESERVED);
    cr_assert_neq(s0.meta_base, 0x1000000, "the metadata avoided the reclaimable range");

    /* After the kernel consumed the ACPI tables and bootloader data. */
    cr_assert_eq(pmm_release(&p, 0x1000000, 0x20000), MM_OK);
    /* Inward: 0x2100000..0x2100800 is half a frame and stays reserved. */
    cr_assert_eq(pmm_release(&p, 0x2000000, 0x100800), MM_OK);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.free_frames, s0.free_frames + 0x20 + 0x100);
    cr_assert_eq(s.usable_frames, s0.usable_frames + 0x20 + 0x100);
    cr_assert_eq(pmm_frame_state(&p, 0x1000000), PMM_FRAME_FREE);
    cr_assert_eq(pmm_frame_state(&p, 0x20ff000), PMM_FRAME_FREE);
    cr_assert_eq(pmm_frame_state(&p, 0x2100000), PMM_FRAME_RESERVED);
    fx_check(&p);
    /* Released memory is allocatable, contiguously too: with everything
     * below it reserved, a request limited to its end lands in it. */
    cr_assert_eq(pmm_reserve(&p, FX_PG, 0x1000000 - FX_PG), MM_OK);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc_contig(&p, 32, 32, 0x1020000, &pa), MM_OK);
    cr_assert_eq(pa, 0x1000000);
    cr_assert_eq(pmm_free_contig(&p, pa, 32), MM_OK);

    fx_snap_t snap;
    fx_snap(&p, &snap);
    cr_assert_eq(pmm_release(NULL, 0x3000000, FX_PG), MM_ERR_INVALID);
    cr_assert_eq(pmm_release(&p, 0x3000000, 0), MM_ERR_INVALID);
    cr_assert_eq(pmm_release(&p, 0x3000800, FX_PG), MM_ERR_INVALID, "no whole frame");
    cr_assert_eq(pmm_release(&p, 0xfffffffffffff000ull, 0x2000), MM_ERR_INVALID);
    cr_assert_eq(pmm_release(&p, 0x1000000, 0x20000), MM_ERR_EXISTS, "released twice");
    cr_assert_eq(pmm_release(&p, 0x2fff000, 0x2000), MM_ERR_EXISTS, "overlaps managed memory");
    cr_assert_eq(pmm_release(&p, 0, 0x2000), MM_ERR_OVERLAP, "frame 0");
    cr_assert_eq(pmm_release(&p, s0.meta_base, FX_PG), MM_ERR_OVERLAP, "the metadata");
    cr_assert_eq(pmm_release(&p, s0.meta_base - FX_PG, 2 * FX_PG), MM_ERR_OVERLAP);
    cr_assert_eq(pmm_release(&p, 0x7fff000, 0x2000), MM_ERR_RANGE, "beyond the span");
    fx_assert_unchanged(&p, &snap, "rejected releases");
    cr_assert_eq(pmm_release(&p, 0x3000000, 0x10000), MM_OK, "the caller vouches for it");
    fx_check(&p);
}
