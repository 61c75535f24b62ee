/*
 * pmm_check must notice each kind of damage (tests elsewhere rely on it
 * passing meaning something).
 */
#include <string.h>

#include "pmm_fixture.h"

/* The free and usable words are interleaved (see pmm.h). */
#define FREE_WORD(p, w) ((p).bm[2 * (w)])
#define USABLE_WORD(p, w) ((p).bm[2 * (w) + 1])

static void expect_corrupt(pmm_t *p, const char *fragment)
{
    const char *why = NULL;
    cr_assert_eq(pmm_check(p, &why), MM_ERR_CORRUPT, "damage not detected (%s)", fragment);
    cr_assert_not_null(why);
    cr_assert(strstr(why, fragment) != NULL, "reason \"%s\" lacks \"%s\"", why, fragment);
    cr_assert_eq(test_irq_depth(), 0);
}

Test(pmm, check_detects_damage)
{
    pmm_t p;
    /* A span that is not a multiple of 64 frames, so there are tail bits. */
    fx_init_simple(&p, 0, 64 * FX_MIB + 5 * FX_PG);
    mm_paddr_t a;
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    uint64_t f = a / FX_PG;
    cr_assert_eq(pmm_check(&p, NULL), MM_OK);

    /* An allocated frame marked free: caught as such before the count. */
    FREE_WORD(p, f / 64) |= 1ull << (f % 64);
    expect_corrupt(&p, "both free and allocated");
    p.held_bm[2 * (f / 64) + 1] ^= 1ull << (f % 64);
    expect_corrupt(&p, "free count");
    p.held_bm[2 * (f / 64) + 1] ^= 1ull << (f % 64);
    FREE_WORD(p, f / 64) &= ~(1ull << (f % 64));

    p.free_frames++;
    expect_corrupt(&p, "free count");
    p.free_frames--;

    p.usable_frames--;
    expect_corrupt(&p, "managed count");
    p.usable_frames++;

    FREE_WORD(p, 0) |= 1; /* frame 0 free but not managed */
    p.free_frames++;
    expect_corrupt(&p, "not managed");
    FREE_WORD(p, 0) &= ~1ull;
    p.free_frames--;

    USABLE_WORD(p, 0) |= 1;
    p.usable_frames++;
    expect_corrupt(&p, "frame 0");
    USABLE_WORD(p, 0) &= ~1ull;
    p.usable_frames--;

    uint64_t m = p.meta_base / FX_PG;
    USABLE_WORD(p, m / 64) |= 1ull << (m % 64);
    p.usable_frames++;
    expect_corrupt(&p, "metadata");
    USABLE_WORD(p, m / 64) &= ~(1ull << (m % 64));
    p.usable_frames--;

    USABLE_WORD(p, p.words - 1) |= 1ull << 63;
    expect_corrupt(&p, "beyond the span");
    USABLE_WORD(p, p.words - 1) &= ~(1ull << 63);

    p.any.lvl[1][0] ^= 1ull << 5;
    expect_corrupt(&p, "free summary");
    p.any.lvl[1][0] ^= 1ull << 5;

    p.any.lvl[p.any.depth - 1][0] ^= 1ull << 60;
    expect_corrupt(&p, "free summary");
    p.any.lvl[p.any.depth - 1][0] ^= 1ull << 60;

    p.full.lvl[0][1] ^= 1;
    expect_corrupt(&p, "full-word summary");
    p.full.lvl[0][1] ^= 1;

    uint16_t saved = p.chunk_run[2];
    p.chunk_run[2] = 100;
    expect_corrupt(&p, "chunk bound");
    p.chunk_run[2] = saved;

    p.hint = p.span_frames;
    expect_corrupt(&p, "hint");
    p.hint = 0;

    p.hot = p.span_frames + 5;
    expect_corrupt(&p, "hot frame");
    p.hot = UINT64_MAX;

#if HADRON_MM_PMM_POISON
    p.poison_bm[f / 64] |= 1ull << (f % 64); /* poisoned but allocated */
    expect_corrupt(&p, "poisoned");
    p.poison_bm[f / 64] &= ~(1ull << (f % 64));
#endif

    fx_check(&p);
    cr_assert_eq(pmm_free(&p, a), MM_OK);
    fx_check(&p);
}

/* Chunk bounds only need to be upper bounds; a search tightens them. */
Test(pmm, chunk_bounds_tighten_and_stay_valid)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    cr_assert_eq(p.chunk_run[3], 4096, "allocation does not lower bounds");
    /* Free every other frame of chunk 3: bound stays 4096 until a small
     * request scans it. */
    for (uint64_t i = 0; i < n; i++)
        if (all[i] / FX_PG / 4096 == 3 && all[i] / FX_PG % 2 == 0)
            cr_assert_eq(pmm_free(&p, all[i]), MM_OK);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc_contig(&p, 2, 1, MM_PADDR_MAX, &pa), MM_ERR_NOMEM);
    cr_assert_eq(p.chunk_run[3], 1, "the scan made the bound exact");
    fx_check(&p);
    /* Freeing a neighbour raises it again, in O(1). */
    cr_assert_eq(pmm_free(&p, (3 * 4096 + 101) * FX_PG), MM_OK);
    cr_assert_eq(p.chunk_run[3], 3);
    cr_assert_eq(pmm_alloc_contig(&p, 3, 1, MM_PADDR_MAX, &pa), MM_OK);
    cr_assert_eq(pa / FX_PG, 3 * 4096 + 100);
    fx_check(&p);
    free(all);
}

#if HADRON_MM_ASSERTIONS
/* README "Broken invariants panic": an allocation that meets a summary tree
 * claiming a free frame the bitmap does not have trips MM_ASSERT, which
 * reaches mm_hook_panic as MM_REPORT_ASSERT (pmm_check would have reported
 * the same damage as "free summary" without panicking). */
Test(pmm, summary_damage_trips_an_assertion_on_alloc)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    cr_assert_gt(n, 0);
    cr_assert_eq(fx_stats(&p).free_frames, 0);
    cr_assert_eq(FREE_WORD(p, 5), 0, "word 5 is fully used");
    p.any.lvl[1][0] |= 1ull << 5; /* "word 5 has a free frame" */
    expect_corrupt(&p, "free summary");
    p.free_frames++; /* so the allocation searches instead of failing NOMEM */
    mm_paddr_t pa = 0x77;
    int panics = test_panics.count;
    bool panicked = TEST_CATCH_PANIC(pmm_alloc(&p, &pa));
    cr_assert(panicked, "damaged summary not asserted");
    cr_assert_eq(test_panics.count, panics + 1);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_ASSERT);
    cr_assert_str_eq(test_panics.last.message, "below != 0", "%s", test_panics.last.message);
    cr_assert_eq(pa, 0x77, "no frame handed out");
    free(all);
    /* The panicking call still holds the lock: the instance is not used again. */
}
#endif
