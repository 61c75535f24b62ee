#include <string.h>

#include <hadron/mm/hhdm.h>

#include "pmm_fixture.h"

Test(pmm, alloc_single_lowest_first_never_frame0)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    pmm_stats_t before = fx_stats(&p);
    cr_assert_eq(before.meta_base, 16 * FX_MIB);
    mm_paddr_t a, b;
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    cr_assert_eq(a, FX_PG, "frame 0 is skipped");
    cr_assert_eq(pmm_alloc(&p, &b), MM_OK);
    cr_assert_eq(b, 2 * FX_PG);
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_USED);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.free_frames, before.free_frames - 2);
    cr_assert_eq(s.used_frames, 2);
    fx_check(&p);

    cr_assert_eq(pmm_free(&p, a), MM_OK);
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_FREE);
    mm_paddr_t c;
    cr_assert_eq(pmm_alloc(&p, &c), MM_OK);
    cr_assert_eq(c, a, "the lowest freed frame is reused first");
    cr_assert_eq(pmm_free(&p, b), MM_OK);
    cr_assert_eq(pmm_free(&p, c), MM_OK);
    cr_assert_eq(fx_stats(&p).free_frames, before.free_frames);
    fx_check(&p);
}

Test(pmm, alloc_exhaustion_is_nomem_and_changes_nothing)
{
    pmm_t p;
    fx_init_simple(&p, 0, 2 * FX_MIB);
    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    cr_assert_eq(n, 512 - 1 - fx_stats(&p).meta_frames);
    fx_snap_t snap;
    fx_snap(&p, &snap);
    mm_paddr_t pa = 0x1234;
    cr_assert_eq(pmm_alloc(&p, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_zeroed(&p, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 1, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 2, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pa, 0x1234, "*out untouched on error");
    fx_assert_unchanged(&p, &snap, "allocating from an empty pmm");

    /* Freed frames come back, whichever order they are freed in. */
    for (uint64_t i = 0; i < n; i += 2)
        cr_assert_eq(pmm_free(&p, all[i]), MM_OK);
    fx_check(&p);
    for (uint64_t i = 0; i < n; i += 2) {
        cr_assert_eq(pmm_alloc(&p, &pa), MM_OK);
        cr_assert_eq(pmm_frame_state(&p, pa), PMM_FRAME_USED);
    }
    cr_assert_eq(pmm_alloc(&p, &pa), MM_ERR_NOMEM);
    fx_check(&p);
    free(all);
}

Test(pmm, alloc_hint_wraps_around)
{
    pmm_t p;
    fx_init_simple(&p, 0, 1 * FX_MIB);
    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    /* Free a low frame, a high one, and a middle one: the frame freed last
     * comes back first (LIFO, cache-hot); then the hint, lowered to the low
     * frame, finds it; the search continues upward to the high one. */
    cr_assert_eq(pmm_free(&p, all[3]), MM_OK);
    cr_assert_eq(pmm_free(&p, all[n - 1]), MM_OK);
    cr_assert_eq(pmm_free(&p, all[n / 2]), MM_OK);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc(&p, &pa), MM_OK);
    cr_assert_eq(pa, all[n / 2], "the frame freed last is reused first");
    cr_assert_eq(pmm_alloc(&p, &pa), MM_OK);
    cr_assert_eq(pa, all[3], "then the lowest frame freed");
    cr_assert_eq(pmm_alloc(&p, &pa), MM_OK);
    cr_assert_eq(pa, all[n - 1]);
    /* pmm_free_contig does not set the hot frame; with the hint past it
     * the search must wrap around to find it. */
    cr_assert_eq(pmm_free_contig(&p, all[1], 1), MM_OK);
    p.hint = all[n - 1] / FX_PG; /* as after the last allocation */
    cr_assert_eq(pmm_alloc(&p, &pa), MM_OK);
    cr_assert_eq(pa, all[1], "the search wraps to the start");
    fx_check(&p);
    free(all);
}

Test(pmm, alloc_zeroed_zeroes_in_every_build)
{
    pmm_t p;
    fx_init_simple(&p, 0, 4 * FX_MIB);
    mm_paddr_t pa, again;
    cr_assert_eq(pmm_alloc(&p, &pa), MM_OK);
    memset(hhdm_phys_to_virt(pa), 0xa5, FX_PG);
    cr_assert_eq(pmm_free(&p, pa), MM_OK);
    cr_assert_eq(pmm_alloc_zeroed(&p, &again), MM_OK);
    cr_assert_eq(again, pa);
    const uint8_t *b = hhdm_phys_to_virt(again);
    for (size_t i = 0; i < FX_PG; i++)
        cr_assert_eq(b[i], 0, "byte %zu not zeroed", i);

    mm_paddr_t run;
    cr_assert_eq(pmm_alloc_contig(&p, 16, 16, MM_PADDR_MAX, &run), MM_OK);
    memset(hhdm_phys_to_virt(run), 0x5a, 16 * FX_PG);
    cr_assert_eq(pmm_free_contig(&p, run, 16), MM_OK);
    cr_assert_eq(pmm_alloc_contig_zeroed(&p, 16, 16, MM_PADDR_MAX, &again), MM_OK);
    cr_assert_eq(again, run);
    b = hhdm_phys_to_virt(again);
    for (size_t i = 0; i < 16 * FX_PG; i++)
        cr_assert_eq(b[i], 0, "byte %zu not zeroed", i);
    fx_check(&p);
}

Test(pmm, alloc_null_arguments)
{
    pmm_t p;
    fx_init_simple(&p, 0, 1 * FX_MIB);
    fx_snap_t snap;
    fx_snap(&p, &snap);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc(NULL, &pa), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc(&p, NULL), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_zeroed(&p, NULL), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_contig_zeroed(&p, 2, 1, MM_PADDR_MAX, NULL), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_contig(NULL, 1, 1, MM_PADDR_MAX, &pa), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_contig(&p, 1, 1, MM_PADDR_MAX, NULL), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_contig_zeroed(&p, 0, 1, MM_PADDR_MAX, &pa), MM_ERR_INVALID);
    cr_assert_eq(pmm_get_stats(&p, NULL), MM_ERR_INVALID);
    cr_assert_eq(pmm_get_stats(NULL, &snap.stats), MM_ERR_INVALID);
    cr_assert_eq(pmm_check(NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(pmm_frame_state(NULL, 0x1000), PMM_FRAME_OUTSIDE);
    fx_assert_unchanged(&p, &snap, "NULL arguments");
    cr_assert_eq(test_warnings.count, 0);
}

Test(pmm, region_type_names)
{
    cr_assert_str_eq(pmm_region_type_str(PMM_REGION_USABLE), "usable");
    cr_assert_str_eq(pmm_region_type_str(PMM_REGION_ACPI_RECLAIMABLE), "acpi-reclaimable");
    cr_assert_str_eq(pmm_region_type_str(PMM_REGION_BOOTLOADER_RECLAIMABLE),
                     "bootloader-reclaimable");
    cr_assert_str_eq(pmm_region_type_str(PMM_REGION_TYPE_COUNT), "unknown");
    for (int t = 0; t < PMM_REGION_TYPE_COUNT; t++)
        cr_assert_str_neq(pmm_region_type_str((pmm_region_type_t)t), "unknown");
}

/* pmm.h: pmm_frame_state returns "PMM_FRAME_OUTSIDE also for an unaligned
 * address": any byte address inside a used, free or reserved frame other
 * than its base is OUTSIDE, the query changes nothing and warns nothing. */
Test(pmm, frame_state_of_unaligned_address_is_outside)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_paddr_t used;
    cr_assert_eq(pmm_alloc(&p, &used), MM_OK);
    mm_paddr_t free_pa = used + FX_PG;
    mm_paddr_t reserved = fx_stats(&p).meta_base; /* the metadata's own frames */
    cr_assert_eq(pmm_frame_state(&p, used), PMM_FRAME_USED);
    cr_assert_eq(pmm_frame_state(&p, free_pa), PMM_FRAME_FREE);
    cr_assert_eq(pmm_frame_state(&p, reserved), PMM_FRAME_RESERVED);
    cr_assert_eq(pmm_frame_state(&p, 0), PMM_FRAME_RESERVED, "frame 0 is never handed out");

    fx_snap_t s;
    fx_snap(&p, &s);
    const mm_paddr_t bases[] = {0, used, free_pa, reserved, 64 * FX_MIB - FX_PG};
    const uint64_t offs[] = {1, 8, FX_PG / 2, FX_PG - 1};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
        for (size_t j = 0; j < sizeof offs / sizeof offs[0]; j++)
            cr_assert_eq(pmm_frame_state(&p, bases[i] + offs[j]), PMM_FRAME_OUTSIDE,
                         "%#llx + %#llx", (unsigned long long)bases[i],
                         (unsigned long long)offs[j]);
    cr_assert_eq(pmm_frame_state(&p, MM_PADDR_MAX), PMM_FRAME_OUTSIDE);
    fx_assert_unchanged(&p, &s, "frame_state on unaligned addresses");
    cr_assert_eq(test_warnings.count, 0);
    cr_assert_eq(test_panics.count, 0);
    /* The aligned bases still answer as before. */
    cr_assert_eq(pmm_frame_state(&p, used), PMM_FRAME_USED);
    cr_assert_eq(pmm_frame_state(&p, free_pa), PMM_FRAME_FREE);
    cr_assert_eq(pmm_free(&p, used), MM_OK);
    fx_check(&p);
}
