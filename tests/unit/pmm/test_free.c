/*
 * Every way to free wrongly: a distinct status, a warning through the hook,
 * and not one bit of allocator state changed.
 */
#include "pmm_fixture.h"

static void expect_rejected(pmm_t *p, mm_status_t got, mm_status_t want, mm_report_kind_t kind,
                            uint64_t address, fx_snap_t *snap, const char *what)
{
    static int warnings;
    cr_assert_eq(got, want, "%s: got %s, want %s", what, mm_status_str(got), mm_status_str(want));
    warnings++;
    cr_assert_eq(test_warnings.count, warnings, "%s: no warning", what);
    cr_assert_eq(test_warnings.last.kind, kind, "%s: warning kind", what);
    cr_assert_eq(test_warnings.last.address, address, "%s: warning address %#llx", what,
                 (unsigned long long)test_warnings.last.address);
    fx_assert_unchanged(p, snap, what);
}

Test(pmm, free_errors_are_distinct_and_change_nothing)
{
    pmm_t p;
    fx_init(&p, fx_qemu_256m, fx_qemu_256m_len, 256 * FX_MIB);
    pmm_stats_t s0 = fx_stats(&p);
    mm_paddr_t a, run;
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    cr_assert_eq(pmm_alloc_contig(&p, 512, 512, MM_PADDR_MAX, &run), MM_OK);
    fx_snap_t snap;

#define REJECT(call, want, kind, addr)                                                             \
    do {                                                                                           \
        fx_snap(&p, &snap);                                                                        \
        expect_rejected(&p, (call), (want), (kind), (addr), &snap, #call);                         \
    } while (0)

    REJECT(pmm_free(&p, a + 8), MM_ERR_ALIGN, MM_REPORT_BAD_POINTER, a + 8);
    REJECT(pmm_free(&p, 0xffe0000), MM_ERR_RANGE, MM_REPORT_BAD_POINTER, 0xffe0000);
    REJECT(pmm_free(&p, 0xfd00000000), MM_ERR_RANGE, MM_REPORT_BAD_POINTER, 0xfd00000000);
    REJECT(pmm_free(&p, 0xfffffffffffff000ull), MM_ERR_RANGE, MM_REPORT_BAD_POINTER,
           0xfffffffffffff000ull);
    REJECT(pmm_free(&p, 0), MM_ERR_NOT_USABLE, MM_REPORT_BAD_POINTER, 0);
    REJECT(pmm_free(&p, 0x9f000), MM_ERR_NOT_USABLE, MM_REPORT_BAD_POINTER, 0x9f000);
    REJECT(pmm_free(&p, 0xf0000), MM_ERR_NOT_USABLE, MM_REPORT_BAD_POINTER, 0xf0000);
    REJECT(pmm_free(&p, s0.meta_base), MM_ERR_NOT_USABLE, MM_REPORT_BAD_POINTER, s0.meta_base);
    REJECT(pmm_free(&p, a + FX_PG), MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE, a + FX_PG);

    /* Contiguous: the whole run is validated first. */
    REJECT(pmm_free_contig(&p, run + 1, 4), MM_ERR_ALIGN, MM_REPORT_BAD_POINTER, run + 1);
    REJECT(pmm_free_contig(&p, 0xffe0000 - 2 * FX_PG, 3), MM_ERR_RANGE, MM_REPORT_BAD_POINTER,
           0xffe0000 - 2 * FX_PG);
    REJECT(pmm_free_contig(&p, run, SIZE_MAX), MM_ERR_RANGE, MM_REPORT_BAD_POINTER, run);
    REJECT(pmm_free_contig(&p, 0x9e000, 2), MM_ERR_NOT_USABLE, MM_REPORT_BAD_POINTER, 0x9f000);
    REJECT(pmm_free_contig(&p, s0.meta_base - FX_PG, 2), MM_ERR_NOT_USABLE,
           MM_REPORT_BAD_POINTER, s0.meta_base);
    /* 511 allocated frames then one free one: nothing of the 511 is freed. */
    REJECT(pmm_free_contig(&p, run, 513), MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE,
           run + 512 * FX_PG);
    REJECT(pmm_free_contig(&p, run - FX_PG, 2), MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE,
           run - FX_PG);
    /* Both apply: never-usable wins, so the caller learns the worse news. */
    REJECT(pmm_free_contig(&p, 0x9e000, 3), MM_ERR_NOT_USABLE, MM_REPORT_BAD_POINTER, 0x9f000);

    /* Not warnings: malformed calls. */
    fx_snap(&p, &snap);
    cr_assert_eq(pmm_free(NULL, a), MM_ERR_INVALID);
    cr_assert_eq(pmm_free_contig(NULL, run, 1), MM_ERR_INVALID);
    cr_assert_eq(pmm_free_contig(&p, run, 0), MM_ERR_INVALID);
    fx_assert_unchanged(&p, &snap, "invalid arguments");

    /* And the good frees still work. */
    cr_assert_eq(pmm_free(&p, a), MM_OK);
    cr_assert_eq(pmm_free_contig(&p, run, 512), MM_OK);
    cr_assert_eq(fx_stats(&p).free_frames, s0.free_frames);
    fx_check(&p);
#undef REJECT
}

Test(pmm, double_free_detected_in_every_build)
{
    pmm_t p;
    fx_init_simple(&p, 0, 8 * FX_MIB);
    mm_paddr_t a;
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    cr_assert_eq(pmm_free(&p, a), MM_OK);
    pmm_stats_t s = fx_stats(&p);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pmm_free(&p, a), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(fx_stats(&p).free_frames, s.free_frames, "the free count is not corrupted");
    cr_assert_eq(test_warnings.count, 3);
    fx_check(&p);
}

Test(pmm, free_subruns_of_a_contiguous_allocation)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    pmm_stats_t s = fx_stats(&p);
    mm_paddr_t run;
    cr_assert_eq(pmm_alloc_contig(&p, 300, 4, MM_PADDR_MAX, &run), MM_OK);
    cr_assert_eq(pmm_free_contig(&p, run + 10 * FX_PG, 100), MM_OK);
    fx_check(&p);
    cr_assert_eq(pmm_free(&p, run), MM_OK);
    cr_assert_eq(pmm_free_contig(&p, run + FX_PG, 9), MM_OK);
    cr_assert_eq(pmm_free_contig(&p, run + 110 * FX_PG, 190), MM_OK);
    cr_assert_eq(fx_stats(&p).free_frames, s.free_frames);
    fx_check(&p);
}
