/*
 * Where a new run goes: the snuggest of the first KHEAP_RUN_FIT_CANDIDATES
 * free blocks (address order) that hold it, the lowest of equals, and the
 * aligned-block rule when none of them holds a page-aligned small run. Holes
 * are made with runs off (plain blocks, laid out from the region start),
 * then runs are switched on for the request that creates the run.
 */
#include "kheap_test.h"

#if !HADRON_MM_HEAP_REDZONES

#define PAGE ((uintptr_t)KHEAP_RUN_SIZE)

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
    T_BLOCKS(&heap);
}

/* A block of exactly `block` bytes (header included). */
static uint8_t *take_block(size_t block)
{
    uint8_t *p = kheap_alloc(&heap, block - T_USER_OFF, 0);
    cr_assert_not_null(p);
    return p;
}

/* The page of a small run created now (for a 32-byte request). */
static uintptr_t new_small_run_page(void **slot)
{
    kheap_stats_t s0, s1;
    cr_assert_eq(kheap_get_stats(&heap, &s0), MM_OK);
    cr_assert_eq(kheap_set_small_runs(&heap, true), MM_OK);
    *slot = kheap_alloc(&heap, 32, 0);
    cr_assert_not_null(*slot);
    cr_assert_eq(kheap_set_small_runs(&heap, false), MM_OK);
    cr_assert_eq(kheap_get_stats(&heap, &s1), MM_OK);
    cr_assert_eq(s1.runs, s0.runs + 1, "a run was created");
    T_CHECK(&heap);
    return (uintptr_t)*slot & ~(PAGE - 1);
}

static bool inside(uintptr_t page, const uint8_t *hole_user, size_t block)
{
    uintptr_t lo = (uintptr_t)hole_user - T_USER_OFF;
    return page - T_USER_OFF >= lo && page - T_USER_OFF + PAGE <= lo + block;
}

Test(kheap_runfit, a_run_takes_the_snuggest_hole_not_the_lowest, .init = setup)
{
    uint8_t *big = take_block(64 << 10);
    uint8_t *g1 = take_block(64);
    uint8_t *snug = take_block(8 << 10);
    uint8_t *g2 = take_block(64);
    cr_assert_eq(kheap_free(&heap, big), MM_OK);
    cr_assert_eq(kheap_free(&heap, snug), MM_OK);
    /* Free now: 64 KiB at the bottom, 8 KiB above it, the rest at the top. */
    void *slot;
    uintptr_t page = new_small_run_page(&slot);
    cr_assert(inside(page, snug, 8 << 10), "run page %#lx not in the 8 KiB hole at %p",
              (unsigned long)page, (void *)snug);
    /* A plain block still goes to the lowest hole that fits (the bottom
     * one, above the run map's leaf, which the first small run created
     * there by first fit). */
    uint8_t *low = take_block(1024);
    cr_assert(low >= big && low < big + (64 << 10), "block at %p, not in the lowest hole at %p",
              (void *)low, (void *)big);
    cr_assert_eq(kheap_free(&heap, slot), MM_OK);
    cr_assert_eq(kheap_free(&heap, low), MM_OK);
    cr_assert_eq(kheap_free(&heap, g1), MM_OK);
    cr_assert_eq(kheap_free(&heap, g2), MM_OK);
    t_assert_all_free(&heap);
}

/* The search is bounded: among KHEAP_RUN_FIT_CANDIDATES equal holes the
 * lowest wins, and a snugger hole after them is not looked at. */
Test(kheap_runfit, only_the_first_candidates_are_compared, .init = setup)
{
    enum { N = KHEAP_RUN_FIT_CANDIDATES };
    uint8_t *hole[N], *guard[N + 1];
    for (unsigned i = 0; i < N; i++) {
        hole[i] = take_block(16 << 10);
        guard[i] = take_block(64);
    }
    uint8_t *snug = take_block(8 << 10);
    guard[N] = take_block(64);
    for (unsigned i = 0; i < N; i++)
        cr_assert_eq(kheap_free(&heap, hole[i]), MM_OK);
    cr_assert_eq(kheap_free(&heap, snug), MM_OK);
    void *slot;
    uintptr_t page = new_small_run_page(&slot);
    cr_assert(inside(page, hole[0], 16 << 10), "run page %#lx not in the lowest equal hole",
              (unsigned long)page);
    cr_assert_eq(kheap_free(&heap, slot), MM_OK);
    for (unsigned i = 0; i <= N; i++)
        cr_assert_eq(kheap_free(&heap, guard[i]), MM_OK);
    t_assert_all_free(&heap);
}

/* Holes of one page that are not page-aligned: each is big enough, but no
 * page-aligned run fits in one, so the aligned-block rule places the run
 * (here: in the top block). */
Test(kheap_runfit, holes_that_cannot_hold_it_aligned_fall_back, .init = setup)
{
    enum { N = KHEAP_RUN_FIT_CANDIDATES + 2 };
    uint8_t *hole[N], *guard[N];
    /* Start the holes half a page off alignment; each hole + guard pair
     * then moves it on by 64 bytes only. */
    uint8_t *probe = take_block(64);
    cr_assert_eq(kheap_free(&heap, probe), MM_OK);
    size_t pad_size = (PAGE / 2 - (uintptr_t)probe % PAGE + PAGE) % PAGE;
    if (pad_size < T_MIN_BLOCK)
        pad_size += PAGE;
    uint8_t *pad = take_block(pad_size);
    for (unsigned i = 0; i < N; i++) {
        hole[i] = take_block(PAGE);
        cr_assert_neq((uintptr_t)hole[i] % PAGE, 0, "hole %u is page-aligned", i);
        guard[i] = take_block(64);
    }
    for (unsigned i = 0; i < N; i++)
        cr_assert_eq(kheap_free(&heap, hole[i]), MM_OK);
    uintptr_t top = (uintptr_t)guard[N - 1] + 64;
    void *slot;
    uintptr_t page = new_small_run_page(&slot);
    cr_assert_geq(page, top, "run page %#lx below the top block at %#lx", (unsigned long)page,
                  (unsigned long)top);
    cr_assert_eq(kheap_free(&heap, slot), MM_OK);
    for (unsigned i = 0; i < N; i++)
        cr_assert_eq(kheap_free(&heap, guard[i]), MM_OK);
    cr_assert_eq(kheap_free(&heap, pad), MM_OK);
    t_assert_all_free(&heap);
}

#endif /* !HADRON_MM_HEAP_REDZONES */
