#include <stdlib.h>
#include <string.h>

#include "pmm_fixture.h"

/* Allocates everything, then frees the listed frame ranges [a, b). */
static void leave_free(pmm_t *p, const uint64_t (*runs)[2], size_t n)
{
    uint64_t count;
    free(fx_alloc_all(p, &count));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(pmm_free_contig(p, runs[i][0] * FX_PG, runs[i][1] - runs[i][0]), MM_OK);
    fx_check(p);
}

Test(pmm, contig_2m_aligned_on_empty_memory)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    pmm_stats_t before = fx_stats(&p);
    mm_paddr_t a, b;
    cr_assert_eq(pmm_alloc_contig(&p, 512, 512, MM_PADDR_MAX, &a), MM_OK);
    cr_assert_eq(a, 2 * FX_MIB, "first 2 MiB-aligned run above frame 0 and below the metadata");
    cr_assert_eq(pmm_alloc_contig(&p, 512, 512, MM_PADDR_MAX, &b), MM_OK);
    cr_assert_eq(b, 4 * FX_MIB);
    cr_assert_eq(fx_stats(&p).free_frames, before.free_frames - 1024);
    for (uint64_t f = 0; f < 512; f++)
        cr_assert_eq(pmm_frame_state(&p, a + f * FX_PG), PMM_FRAME_USED);
    fx_check(&p);
    cr_assert_eq(pmm_free_contig(&p, a, 512), MM_OK);
    cr_assert_eq(pmm_free_contig(&p, b, 512), MM_OK);
    cr_assert_eq(fx_stats(&p).free_frames, before.free_frames);
    fx_check(&p);
}

Test(pmm, contig_below_4g_and_16m_on_qemu_8g)
{
    pmm_t p;
    fx_init(&p, fx_qemu_8g, fx_qemu_8g_len, 0x240000000ull);
    /* Fill everything below 4 GiB except one 2 MiB-aligned run near the
     * top, then ask for 2 MiB below 4 GiB: that run, not memory above. */
    mm_paddr_t pa;
    uint64_t taken = 0;
    mm_paddr_t runs[2048];
    while (pmm_alloc_contig(&p, 512, 512, 4 * FX_GIB, &pa) == MM_OK) {
        cr_assert_leq(pa + 2 * FX_MIB, 4 * FX_GIB);
        runs[taken++] = pa;
    }
    cr_assert_gt(taken, 1000);
    cr_assert_eq(pmm_alloc_contig(&p, 512, 512, 4 * FX_GIB, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 512, 512, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_geq(pa, 4 * FX_GIB, "without a limit memory above 4 GiB is used");
    cr_assert_eq(pmm_free_contig(&p, runs[taken - 2], 512), MM_OK);
    mm_paddr_t again;
    cr_assert_eq(pmm_alloc_contig(&p, 512, 512, 4 * FX_GIB, &again), MM_OK);
    cr_assert_eq(again, runs[taken - 2]);

    /* ISA DMA: 64 KiB aligned 64 KiB below 16 MiB. Everything below 16 MiB
     * that is 2 MiB aligned is taken, the odd frames around 1 MiB are not. */
    cr_assert_eq(pmm_alloc_contig(&p, 16, 16, 16 * FX_MIB, &pa), MM_OK);
    cr_assert_leq(pa + 64 * FX_KIB, 16 * FX_MIB);
    cr_assert_eq(pa % (64 * FX_KIB), 0);
    /* A limit too low for any frame, and one that only frame 0 meets. */
    cr_assert_eq(pmm_alloc_contig(&p, 1, 1, FX_PG - 1, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 1, 1, FX_PG, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 1, 1, 2 * FX_PG, &pa), MM_OK);
    cr_assert_eq(pa, FX_PG);
    fx_check(&p);
}

Test(pmm, contig_alignment_and_exact_fit)
{
    pmm_t p;
    fx_init_simple(&p, 0, 32 * FX_MIB);
    const uint64_t runs[][2] = {{1000, 1100}, {2000, 2064}, {3000, 3003}};
    leave_free(&p, runs, 3);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc_contig(&p, 101, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 64, 64, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 1024, "aligned inside the first run");
    cr_assert_eq(pmm_alloc_contig(&p, 64, 1, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 2000, "the first run is now too short");
    cr_assert_eq(pmm_alloc_contig(&p, 3, 4, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 1000, "3 frames aligned to 4 in [1000,1024)");
    cr_assert_eq(pmm_alloc_contig(&p, 2, 2, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 1004);
    cr_assert_eq(pmm_alloc_contig(&p, 3, 1, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 1006);
    cr_assert_eq(pmm_alloc_contig(&p, 36, 1, 1100 * FX_PG, &pa), MM_ERR_NOMEM,
                 "[1088,1100) lies below the limit but is too short");
    cr_assert_eq(pmm_alloc_contig(&p, 12, 4, 1100 * FX_PG, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 1012, "[1009,1024) aligned to 4 holds exactly 12");
    cr_assert_eq(pmm_alloc_contig(&p, 12, 4, 1100 * FX_PG, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 1088, "ends exactly at the limit");
    cr_assert_eq(pmm_alloc_contig(&p, 1, 1, 1100 * FX_PG, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 1003, "a limited single frame is the lowest free one");
    fx_check(&p);
}

Test(pmm, contig_small_run_across_chunk_boundary)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    /* Runs of 6 that straddle the 8192- and 12288-frame chunk edges (the
     * metadata sits at 16 MiB, frame 4096), and a shorter one before. */
    const uint64_t runs[][2] = {{100, 105}, {8189, 8195}, {12286, 12292}};
    leave_free(&p, runs, 3);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc_contig(&p, 6, 1, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 8189);
    cr_assert_eq(pmm_alloc_contig(&p, 6, 2, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 12286);
    cr_assert_eq(pmm_alloc_contig(&p, 6, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 5, 1, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 100);
    fx_check(&p);
}

Test(pmm, contig_large_runs_across_chunks)
{
    pmm_t p;
    fx_init_simple(&p, 0, 256 * FX_MIB);
    /* 10000 frames from an odd start spanning three chunks; a 3 GiB-style
     * request that is larger than any run. */
    const uint64_t runs[][2] = {{5000, 9000}, {12345, 22345}, {30000, 60000}};
    leave_free(&p, runs, 3);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc_contig(&p, 10000, 1, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 12345);
    cr_assert_eq(pmm_alloc_contig(&p, 30001, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 4096, 4096, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 32768);
    cr_assert_eq(pmm_alloc_contig(&p, 200, 64, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 5056);
    cr_assert_eq(pmm_alloc_contig(&p, 130, 1, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 5256, "[5000,5056) is too short");
    cr_assert_eq(pmm_alloc_contig(&p, 56, 1, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 5000);
    fx_check(&p);
}

/* At 50% random fill no 2 MiB run exists, and smaller runs are found
 * exactly where a brute-force search finds them. */
Test(pmm, contig_random_half_fill_matches_brute_force)
{
    pmm_t p;
    fx_init_simple(&p, 0, 1 * FX_GIB);
    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    uint64_t rng = 42;
    for (uint64_t i = 0; i < n; i++)
        if (fx_rand(&rng) & 1)
            cr_assert_eq(pmm_free(&p, all[i]), MM_OK);
    fx_check(&p);
    free(all);
    pmm_stats_t s = fx_stats(&p);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc_contig(&p, 512, 512, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 128, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 64, 64, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(fx_stats(&p).free_frames, s.free_frames);

    const size_t sizes[] = {2, 3, 5, 8, 12, 16, 20};
    const size_t aligns[] = {1, 1, 4, 1, 2, 1, 1};
    for (size_t k = 0; k < FX_ARRAY_LEN(sizes); k++) {
        /* Brute force: lowest aligned start with sizes[k] free frames. */
        uint64_t want = UINT64_MAX;
        for (uint64_t f = aligns[k]; f + sizes[k] <= s.span_frames && want == UINT64_MAX;
             f += aligns[k]) {
            uint64_t j = 0;
            while (j < sizes[k] && pmm_frame_state(&p, (f + j) * FX_PG) == PMM_FRAME_FREE)
                j++;
            if (j == sizes[k])
                want = f;
        }
        mm_status_t st = pmm_alloc_contig(&p, sizes[k], aligns[k], MM_PADDR_MAX, &pa);
        if (want == UINT64_MAX) {
            cr_assert_eq(st, MM_ERR_NOMEM, "size %zu", sizes[k]);
        } else {
            cr_assert_eq(st, MM_OK, "size %zu", sizes[k]);
            cr_assert_eq(pa / FX_PG, want, "size %zu", sizes[k]);
        }
        fx_check(&p);
    }
}

Test(pmm, contig_bad_arguments_change_nothing)
{
    pmm_t p;
    fx_init_simple(&p, 0, 8 * FX_MIB);
    fx_snap_t snap;
    fx_snap(&p, &snap);
    mm_paddr_t pa = 99;
    cr_assert_eq(pmm_alloc_contig(&p, 0, 1, MM_PADDR_MAX, &pa), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_contig(&p, 4, 0, MM_PADDR_MAX, &pa), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_contig(&p, 4, 3, MM_PADDR_MAX, &pa), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_contig(&p, 4, 48, MM_PADDR_MAX, &pa), MM_ERR_INVALID);
    cr_assert_eq(pmm_alloc_contig(&p, 3000, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM, "> free");
    cr_assert_eq(pmm_alloc_contig(&p, SIZE_MAX, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 2, (size_t)1 << 63, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc_contig(&p, 2, 4096, MM_PADDR_MAX, &pa), MM_ERR_NOMEM,
                 "only frame 0 is 16 MiB aligned here");
    cr_assert_eq(pmm_alloc_contig(&p, 2, 1, 0, &pa), MM_ERR_NOMEM);
    cr_assert_eq(pa, 99);
    fx_assert_unchanged(&p, &snap, "bad contiguous requests");
}
