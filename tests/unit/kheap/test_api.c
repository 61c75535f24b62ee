/* kheap: every entry point, its success path and each of its errors. */
#include "kheap_test.h"

#define ARENA (1u << 20)

static kheap_t *new_heap(size_t bytes)
{
    static kheap_t heap;
    cr_assert_eq(kheap_init(&heap, t_arena(bytes), bytes), MM_OK);
    T_CHECK(&heap);
    return &heap;
}

Test(kheap_init, rejects_bad_ranges_and_leaves_heap_unusable)
{
    kheap_t h;
    memset(&h, 0xa5, sizeof(h));
    cr_assert_eq(kheap_init(NULL, NULL, 0), MM_ERR_INVALID);
    cr_assert_eq(kheap_init(&h, NULL, 4096), MM_ERR_INVALID);
    char small[KHEAP_REGION_MIN + 8];
    cr_assert_eq(kheap_init(&h, small + 8, KHEAP_REGION_MIN - 1), MM_ERR_INVALID);
    /* Validated before any byte is touched, so these addresses are never used. */
    cr_assert_eq(kheap_init(&h, (void *)(UINTPTR_MAX - 4095), 8192), MM_ERR_RANGE);
    cr_assert_eq(kheap_init(&h, (void *)0x100000, KHEAP_REGION_MAX + 4096), MM_ERR_RANGE);
    cr_assert_null(kheap_block_alloc(&h, 16, 0));
    cr_assert_eq(kheap_check(&h, NULL), MM_ERR_STATE);
}

Test(kheap_init, trims_to_granule_and_forms_one_free_block)
{
    kheap_t h;
    uint8_t *a = t_arena(8192);
    cr_assert_eq(kheap_init(&h, a + 3, 8192 - 10), MM_OK);
    T_CHECK(&h);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 1);
    cr_assert_eq(st.total_bytes, 8192 - 16 - 16); /* [a+16, a+8176) */
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(st.free_bytes, st.total_bytes - KHEAP_REGION_OVERHEAD);
    cr_assert_eq(st.largest_free, st.free_bytes);
    cr_assert(kheap_contains(&h, a + 16));
    cr_assert(kheap_contains(&h, a + 8175));
    cr_assert_not(kheap_contains(&h, a + 15));
    cr_assert_not(kheap_contains(&h, a + 8176));
}

Test(kheap_init, empty_heap_allocates_nothing_until_given_memory)
{
    kheap_t h;
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    T_CHECK(&h);
    cr_assert_null(kheap_block_alloc(&h, 1, 0));
    cr_assert_eq(kheap_add_region(&h, t_arena(4096), 4096), MM_OK);
    void *p = kheap_block_alloc(&h, 1, 0);
    cr_assert_not_null(p);
    T_CHECK(&h);
}

Test(kheap_uninitialised, every_entry_point_refuses)
{
    kheap_t h;
    memset(&h, 0, sizeof(h));
    kheap_stats_t st;
    void *out = (void *)1;
    cr_assert_eq(kheap_add_region(&h, t_arena(4096), 4096), MM_ERR_STATE);
    cr_assert_eq(kheap_add_region(NULL, t_arena(4096), 4096), MM_ERR_INVALID);
    cr_assert_eq(kheap_set_grow(&h, NULL, NULL, NULL), MM_ERR_STATE);
    cr_assert_null(kheap_block_alloc(&h, 16, 0));
    cr_assert_null(kheap_block_alloc(NULL, 16, 0));
    cr_assert_null(kheap_calloc(&h, 1, 16));
    cr_assert_eq(kheap_block_free(&h, (void *)0x1000), MM_ERR_STATE);
    cr_assert_eq(kheap_block_free(NULL, (void *)0x1000), MM_ERR_INVALID);
    cr_assert_eq(kheap_realloc(&h, NULL, 16, &out), MM_ERR_STATE);
    cr_assert_eq(kheap_block_usable_size(&h, (void *)0x1000), 0);
    cr_assert_not(kheap_contains(&h, (void *)0x1000));
    cr_assert_eq(kheap_get_stats(&h, &st), MM_ERR_STATE);
    cr_assert_eq(kheap_check(&h, NULL), MM_ERR_STATE);
    cr_assert_eq(kheap_walk(&h, t_snap_cb, NULL), MM_ERR_STATE);
    cr_assert_eq(test_warnings.count, 0);
}

/* A copy of a live heap shares its blocks but not its lock or counts:
 * every entry point refuses it as uninitialised, and the heap it was copied
 * from is exactly as it was. */
Test(kheap_uninitialised, a_copied_heap_is_refused)
{
    static kheap_t h, copy;
    cr_assert_eq(kheap_init(&h, t_arena(64 * 1024), 64 * 1024), MM_OK);
    void *p = kheap_block_alloc(&h, 100, 0), *q = kheap_block_alloc(&h, 3000, 0);
    cr_assert_not_null(q);
    t_snap_t before = t_snapshot(&h);
    memcpy(&copy, &h, sizeof h);

    kheap_stats_t st;
    void *out = (void *)1;
    cr_assert_null(kheap_block_alloc(&copy, 16, 0));
    cr_assert_null(kheap_calloc(&copy, 1, 16));
    cr_assert_eq(kheap_block_free(&copy, p), MM_ERR_STATE);
    cr_assert_eq(kheap_block_free(&copy, q), MM_ERR_STATE);
    cr_assert_eq(kheap_realloc(&copy, p, 200, &out), MM_ERR_STATE);
    cr_assert_null(out, "the documented result of a refused realloc");
    cr_assert_eq(kheap_add_region(&copy, t_arena(4096), 4096), MM_ERR_STATE);
    cr_assert_eq(kheap_set_grow(&copy, NULL, NULL, NULL), MM_ERR_STATE);
    cr_assert_eq(kheap_block_usable_size(&copy, p), 0);
    cr_assert_not(kheap_contains(&copy, p));
    cr_assert_eq(kheap_get_stats(&copy, &st), MM_ERR_STATE);
    cr_assert_eq(kheap_check(&copy, NULL), MM_ERR_STATE);
    cr_assert_eq(kheap_walk(&copy, t_snap_cb, NULL), MM_ERR_STATE);

    t_snap_t after = t_snapshot(&h);
    cr_assert(t_snap_equal(&before, &after), "calls through a copy changed the heap");
    t_snap_free(&before);
    t_snap_free(&after);
    cr_assert_eq(kheap_block_free(&h, p), MM_OK, "the heap itself still works");
    cr_assert_eq(kheap_block_free(&h, q), MM_OK);
    T_CHECK(&h);
}

Test(kheap_add_region, overlap_rejected_and_adjacent_merged)
{
    uint8_t *a = t_arena(3 * 65536);
    kheap_t h;
    cr_assert_eq(kheap_init(&h, a + 65536, 65536), MM_OK);
    cr_assert_eq(kheap_add_region(&h, a + 65536 + 4096, 4096), MM_ERR_OVERLAP);
    cr_assert_eq(kheap_add_region(&h, a + 65536 - 4096, 8192), MM_ERR_OVERLAP);
    cr_assert_eq(kheap_add_region(&h, a, 3 * 65536), MM_ERR_OVERLAP);
    cr_assert_eq(kheap_add_region(&h, NULL, 4096), MM_ERR_INVALID);
    cr_assert_eq(kheap_add_region(&h, a, 32), MM_ERR_INVALID);
    T_CHECK(&h);
    /* Adjacent above: same region, one free block. */
    cr_assert_eq(kheap_add_region(&h, a + 2 * 65536, 65536), MM_OK);
    T_CHECK(&h);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 1);
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(st.total_bytes, 2 * 65536);
    /* Below (ends where the region starts): a separate region. */
    cr_assert_eq(kheap_add_region(&h, a, 65536), MM_OK);
    T_CHECK(&h);
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 2);
    cr_assert_eq(st.free_blocks, 2);
    /* A 128 KiB request fits only in the merged region. */
    void *p = kheap_block_alloc(&h, 100000, 0);
    cr_assert_not_null(p);
    cr_assert_geq((uint8_t *)p, a + 65536);
    T_CHECK(&h);
}

Test(kheap_add_region, merge_joins_a_free_last_block_but_not_a_used_one)
{
    uint8_t *a = t_arena(3 * 4096);
    kheap_t h;
    cr_assert_eq(kheap_init(&h, a, 4096), MM_OK);
    /* Fill the region completely: the last block is used. */
    void *all = kheap_block_alloc(&h, 4096 - KHEAP_REGION_OVERHEAD - T_USER_OFF - T_BACK, 0);
    cr_assert_not_null(all);
    cr_assert_eq(kheap_add_region(&h, a + 4096, 4096), MM_OK);
    T_CHECK(&h);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(st.free_bytes, 4096, "the old end marker joined the new block");
    cr_assert_eq(kheap_block_free(&h, all), MM_OK);
    T_CHECK(&h);
    cr_assert_eq(kheap_add_region(&h, a + 8192, 4096), MM_OK);
    T_CHECK(&h);
    t_assert_all_free(&h);
}

Test(kheap_alloc, alignment_arguments)
{
    kheap_t *h = new_heap(ARENA);
    void *p = kheap_block_alloc(h, 10, 0);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % KHEAP_GRANULE, 0);
    p = kheap_block_alloc(h, 10, 1);
    cr_assert_eq((uintptr_t)p % KHEAP_GRANULE, 0);
    p = kheap_block_alloc(h, 10, 8);
    cr_assert_eq((uintptr_t)p % KHEAP_GRANULE, 0);
    cr_assert_null(kheap_block_alloc(h, 10, 3));
    cr_assert_null(kheap_block_alloc(h, 10, 48));
    cr_assert_null(kheap_block_alloc(h, 10, (size_t)1 << 40));
    for (size_t a = 16; a <= 65536; a <<= 1) {
        void *q = kheap_block_alloc(h, 100, a);
        cr_assert_not_null(q, "align %zu", a);
        cr_assert_eq((uintptr_t)q % a, 0, "align %zu", a);
        T_CHECK(h);
    }
    T_CHECK(h);
}

Test(kheap_alloc, zero_size_gives_distinct_blocks_and_huge_fails)
{
    kheap_t *h = new_heap(ARENA);
    void *a = kheap_block_alloc(h, 0, 0), *b = kheap_block_alloc(h, 0, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b);
    cr_assert_null(kheap_block_alloc(h, SIZE_MAX, 0));
    cr_assert_null(kheap_block_alloc(h, SIZE_MAX - 15, 0));
    cr_assert_null(kheap_block_alloc(h, ARENA, 0));
    cr_assert_eq(kheap_block_free(h, a), MM_OK);
    cr_assert_eq(kheap_block_free(h, b), MM_OK);
    t_assert_all_free(h);
}

Test(kheap_alloc, exhaustion_returns_null_and_keeps_heap_sound)
{
    kheap_t *h = new_heap(65536);
    void *ptrs[1000];
    size_t n = 0;
    while (n < 1000 && (ptrs[n] = kheap_block_alloc(h, 200, 0)) != NULL)
        n++;
    cr_assert_lt(n, 1000);
    cr_assert_gt(n, 200);
    T_CHECK(h);
    for (size_t i = 0; i < n; i += 2)
        cr_assert_eq(kheap_block_free(h, ptrs[i]), MM_OK);
    T_CHECK(h);
    for (size_t i = 1; i < n; i += 2)
        cr_assert_eq(kheap_block_free(h, ptrs[i]), MM_OK);
    t_assert_all_free(h);
}

Test(kheap_calloc, zeroes_and_checks_overflow)
{
    kheap_t *h = new_heap(ARENA);
    uint8_t *p = kheap_block_alloc(h, 1000, 0);
    memset(p, 0x5a, 1000);
    cr_assert_eq(kheap_block_free(h, p), MM_OK);
    uint8_t *q = kheap_calloc(h, 10, 100);
    cr_assert_not_null(q);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(q[i], 0, "byte %d", i);
    cr_assert_null(kheap_calloc(h, SIZE_MAX / 2, 3));
    cr_assert_null(kheap_calloc(h, (size_t)1 << 33, (size_t)1 << 33));
    cr_assert_not_null(kheap_calloc(h, 0, 100));
    cr_assert_null(kheap_calloc(NULL, 1, 1));
    T_CHECK(h);
}

Test(kheap_free, null_is_a_no_op)
{
    kheap_t *h = new_heap(ARENA);
    t_snap_t before = t_snapshot(h);
    cr_assert_eq(kheap_block_free(h, NULL), MM_OK);
    t_snap_t after = t_snapshot(h);
    cr_assert(t_snap_equal(&before, &after));
    cr_assert_eq(test_warnings.count, 0);
    cr_assert_eq(kheap_block_free(NULL, NULL), MM_ERR_INVALID);
}

Test(kheap_free, coalesces_with_both_neighbours)
{
    kheap_t *h = new_heap(ARENA);
    void *a = kheap_block_alloc(h, 100, 0), *b = kheap_block_alloc(h, 100, 0), *c = kheap_block_alloc(h, 100, 0);
    void *d = kheap_block_alloc(h, 100, 0);
    kheap_stats_t st;
    cr_assert_eq(kheap_block_free(h, a), MM_OK);
    T_CHECK(h);
    cr_assert_eq(kheap_block_free(h, c), MM_OK);
    T_CHECK(h);
    cr_assert_eq(kheap_get_stats(h, &st), MM_OK);
    cr_assert_eq(st.free_blocks, 3); /* a, c, the rest */
    cr_assert_eq(kheap_block_free(h, b), MM_OK); /* joins a and c */
    T_CHECK(h);
    cr_assert_eq(kheap_get_stats(h, &st), MM_OK);
    cr_assert_eq(st.free_blocks, 2);
    cr_assert_eq(kheap_block_free(h, d), MM_OK);
    t_assert_all_free(h);
}

Test(kheap_realloc, argument_errors)
{
    kheap_t *h = new_heap(ARENA);
    void *p = kheap_block_alloc(h, 10, 0);
    cr_assert_eq(kheap_realloc(h, p, 10, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_realloc(NULL, p, 10, &p), MM_ERR_INVALID);
    void *out = (void *)1;
    cr_assert_eq(kheap_realloc(h, p, SIZE_MAX, &out), MM_ERR_NOMEM);
    cr_assert_null(out);
    cr_assert_eq(kheap_block_usable_size(h, p) >= 10, true, "old block intact");
    T_CHECK(h);
}

Test(kheap_realloc, null_allocates_and_zero_frees)
{
    kheap_t *h = new_heap(ARENA);
    void *p = NULL;
    cr_assert_eq(kheap_realloc(h, NULL, 100, &p), MM_OK);
    cr_assert_not_null(p);
    cr_assert_geq(kheap_usable_size(h, p), 100);
    void *q = (void *)1;
    cr_assert_eq(kheap_realloc(h, p, 0, &q), MM_OK);
    cr_assert_null(q);
    t_assert_all_free(h);
}

Test(kheap_realloc, shrinks_in_place_and_returns_the_tail)
{
    kheap_t *h = new_heap(ARENA);
    uint8_t *p = kheap_block_alloc(h, 4000, 0);
    uint8_t *guard = kheap_block_alloc(h, 16, 0); /* next block used: tail becomes its own block */
    for (int i = 0; i < 4000; i++)
        p[i] = (uint8_t)i;
    kheap_stats_t st0, st1;
    cr_assert_eq(kheap_get_stats(h, &st0), MM_OK);
    void *q = NULL;
    cr_assert_eq(kheap_realloc(h, p, 1000, &q), MM_OK);
    cr_assert_eq(q, p);
    T_CHECK(h);
    cr_assert_eq(kheap_get_stats(h, &st1), MM_OK);
    cr_assert_eq(st1.free_bytes, st0.free_bytes + t_block_size(4000) - t_block_size(1000));
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(p[i], (uint8_t)i);
    /* Shrinking by less than a block keeps the slack in the block. */
    cr_assert_eq(kheap_realloc(h, p, 990, &q), MM_OK);
    cr_assert_eq(q, p);
    T_CHECK(h);
    /* Next block free now: the tail joins it. */
    cr_assert_eq(kheap_block_free(h, guard), MM_OK);
    cr_assert_eq(kheap_realloc(h, p, 500, &q), MM_OK);
    cr_assert_eq(q, p);
    T_CHECK(h);
    cr_assert_eq(kheap_get_stats(h, &st1), MM_OK);
    cr_assert_eq(st1.free_blocks, 1);
    cr_assert_eq(kheap_block_free(h, p), MM_OK);
    t_assert_all_free(h);
}

Test(kheap_realloc, grows_in_place_into_a_free_neighbour)
{
    kheap_t *h = new_heap(ARENA);
    uint8_t *p = kheap_block_alloc(h, 100, 0);
    for (int i = 0; i < 100; i++)
        p[i] = (uint8_t)(i * 7);
    void *q = NULL;
    cr_assert_eq(kheap_realloc(h, p, 10000, &q), MM_OK);
    cr_assert_eq(q, p, "next block was free: no move");
    cr_assert_geq(kheap_block_usable_size(h, p), 10000);
    T_CHECK(h);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(p[i], (uint8_t)(i * 7));
    /* Take exactly all of a free neighbour. */
    void *n = kheap_block_alloc(h, 200, 0);
    void *n2 = kheap_block_alloc(h, 16, 0);
    cr_assert_eq(kheap_block_free(h, n), MM_OK);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(h, &st), MM_OK);
    cr_assert_eq(st.free_blocks, 2);
    cr_assert_eq(kheap_realloc(h, p, kheap_block_usable_size(h, p) + t_block_size(200) - T_BACK, &q), MM_OK);
    cr_assert_eq(q, p);
    T_CHECK(h);
    cr_assert_eq(kheap_get_stats(h, &st), MM_OK);
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(kheap_block_free(h, n2), MM_OK);
    cr_assert_eq(kheap_block_free(h, p), MM_OK);
    t_assert_all_free(h);
}

Test(kheap_realloc, moves_when_blocked_and_keeps_contents)
{
    kheap_t *h = new_heap(ARENA);
    uint8_t *p = kheap_block_alloc(h, 300, 0);
    void *blocker = kheap_block_alloc(h, 10, 0);
    for (int i = 0; i < 300; i++)
        p[i] = (uint8_t)(i ^ 0x5a);
    uint8_t *q = NULL;
    cr_assert_eq(kheap_realloc(h, p, 5000, (void **)&q), MM_OK);
    cr_assert_neq(q, p);
    T_CHECK(h);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(q[i], (uint8_t)(i ^ 0x5a));
    cr_assert_eq(kheap_block_usable_size(h, p), 0, "old block was freed");
    cr_assert_eq(kheap_block_free(h, q), MM_OK);
    cr_assert_eq(kheap_block_free(h, blocker), MM_OK);
    t_assert_all_free(h);
}

Test(kheap_realloc, out_of_memory_leaves_the_block)
{
    kheap_t *h = new_heap(16384);
    uint8_t *p = kheap_block_alloc(h, 100, 0);
    void *blocker = kheap_block_alloc(h, 10, 0);
    memset(p, 0x77, 100);
    void *q = (void *)1;
    cr_assert_eq(kheap_realloc(h, p, 20000, &q), MM_ERR_NOMEM);
    cr_assert_null(q);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(p[i], 0x77);
    T_CHECK(h);
    cr_assert_eq(kheap_block_free(h, p), MM_OK);
    cr_assert_eq(kheap_block_free(h, blocker), MM_OK);
    t_assert_all_free(h);
}

Test(kheap_usable_size, reports_at_least_the_request)
{
    kheap_t *h = new_heap(ARENA);
    for (size_t s = 0; s < 600; s += 37) {
        void *p = kheap_block_alloc(h, s, 0);
        size_t u = kheap_block_usable_size(h, p);
        cr_assert_geq(u, s);
#if HADRON_MM_HEAP_REDZONES
        cr_assert_eq(u, s, "with redzones the usable size is the request");
#else
        cr_assert_lt(u, s + 16 + T_MIN_BLOCK);
#endif
        memset(p, 0xee, u);
        T_CHECK(h);
    }
    cr_assert_eq(kheap_block_usable_size(h, NULL), 0);
    cr_assert_eq(kheap_block_usable_size(NULL, NULL), 0);
    cr_assert_eq(test_warnings.count, 0);
}

Test(kheap_stats, reports_argument_errors)
{
    kheap_t *h = new_heap(ARENA);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(NULL, &st), MM_ERR_INVALID);
    cr_assert_eq(kheap_get_stats(h, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_check(NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_walk(NULL, t_snap_cb, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_walk(h, NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_set_grow(NULL, NULL, NULL, NULL), MM_ERR_INVALID);
}

static bool count_until(void *arg, const kheap_block_info_t *info)
{
    int *n = arg;
    (void)info;
    return ++*n < 3;
}

static bool collect_used(void *arg, const kheap_block_info_t *info)
{
    t_snap_t *s = arg;
    cr_assert_eq(info->ptr != NULL, info->used);
    if (info->used) {
        cr_assert_eq((uintptr_t)info->ptr, (uintptr_t)info->block + T_USER_OFF);
        cr_assert_geq(info->usable, 1);
    }
    cr_assert_not_null(info->region);
    return t_snap_cb(s, info);
}

Test(kheap_walk, visits_every_block_in_order_and_stops_early)
{
    kheap_t *h = new_heap(ARENA);
    void *p[5];
    for (int i = 0; i < 5; i++)
        p[i] = kheap_block_alloc(h, 100 * (size_t)(i + 1), 0);
    cr_assert_eq(kheap_block_free(h, p[1]), MM_OK);
    cr_assert_eq(kheap_block_free(h, p[3]), MM_OK);
    t_snap_t s = {0, 0, NULL};
    cr_assert_eq(kheap_walk(h, collect_used, &s), MM_OK);
    cr_assert_eq(s.n, 6);
    bool used[6] = {true, false, true, false, true, false};
    size_t total = 0;
    for (size_t i = 0; i < s.n; i++) {
        cr_assert_eq(s.b[i].used, used[i], "block %zu", i);
        if (i > 0)
            cr_assert_eq(s.b[i].block, s.b[i - 1].block + s.b[i - 1].size, "contiguous");
        total += s.b[i].size;
    }
    cr_assert_eq(total, ARENA - KHEAP_REGION_OVERHEAD);
    t_snap_free(&s);
    int n = 0;
    cr_assert_eq(kheap_walk(h, count_until, &n), MM_OK);
    cr_assert_eq(n, 3);
}

Test(kheap_check, finds_damaged_metadata)
{
    kheap_t *h = new_heap(ARENA);
    uint8_t *a = kheap_block_alloc(h, 100, 0);
    uint8_t *b = kheap_block_alloc(h, 100, 0);
    (void)b;
    cr_assert_eq(kheap_block_free(h, a), MM_OK);
    T_CHECK(h);
    /* The free block's footer is the last word before b's header. */
    uint64_t *footer = (uint64_t *)(b - T_USER_OFF - 8);
    uint64_t saved = *footer;
    *footer = 12345;
    mm_report_t r;
    cr_assert_eq(kheap_check(h, &r), MM_ERR_CORRUPT);
    cr_assert_eq(r.kind, MM_REPORT_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: free block footer wrong");
    cr_assert_eq(r.found, 12345);
    *footer = saved;
    T_CHECK(h);
    /* A used header's check word. */
    uint64_t *link = (uint64_t *)(b - T_USER_OFF + 8);
    *link ^= 1;
    cr_assert_eq(kheap_check(h, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: used block header damaged");
    cr_assert_eq(r.address, (uint64_t)(uintptr_t)(b - T_USER_OFF));
    *link ^= 1;
    T_CHECK(h);
}

/* Freeing the block above a free block trusts that block's footer only
 * after matching it with the header it points to. */
Test(kheap_check, damaged_footer_met_by_free_panics)
{
    kheap_t *h = new_heap(ARENA);
    uint8_t *a = kheap_block_alloc(h, 100, 0);
    uint8_t *b = kheap_block_alloc(h, 100, 0);
    (void)kheap_block_alloc(h, 100, 0);
    cr_assert_eq(kheap_block_free(h, a), MM_OK);
    uint64_t *footer = (uint64_t *)(b - T_USER_OFF - 8);
    *footer = 64; /* a plausible size, but not a's */
    bool panicked = TEST_CATCH_PANIC(kheap_block_free(h, b));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_CORRUPT);
    cr_assert_eq(test_panics.last.address, (uint64_t)(uintptr_t)(b - T_USER_OFF));
    cr_assert_eq(test_panics.last.found, 64);
    /* The panicking call still holds the lock: the heap is not used again. */
}

Test(kheap_locking, every_call_returns_with_interrupts_restored)
{
    kheap_t *h = new_heap(ARENA);
    void *p = kheap_block_alloc(h, 100, 0);
    cr_assert_eq(test_irq_depth(), 0);
    kheap_block_free(h, p);
    kheap_block_free(h, p);
    cr_assert_eq(test_irq_depth(), 0);
    void *q = NULL;
    kheap_realloc(h, NULL, 50, &q);
    kheap_realloc(h, q, 5000, &q);
    kheap_realloc(h, q, 0, &q);
    kheap_block_usable_size(h, h);
    kheap_check(h, NULL);
    cr_assert_eq(test_irq_depth(), 0);
}

/* kheap.h: kheap_add_region merges a range that starts where a region
 * ends, but no region exceeds KHEAP_REGION_MAX: when the merge would, the
 * range becomes a region of its own (code: grow.c kheap_add_region_locked;
 * the header's "merges with it" is unconditional, see kheap.md). The first
 * region is exactly KHEAP_REGION_MAX (only headers are touched); without
 * heap_redzones only (with them a region is filled and checked: 32 GiB). */
#if !HADRON_MM_HEAP_REDZONES
Test(kheap_add_region, adjacent_range_that_would_exceed_region_max_stays_separate)
{
    static kheap_t h;
    size_t extra = 1 << 20;
    uint8_t *a = t_arena(KHEAP_REGION_MAX + 2 * extra);
    cr_assert_eq(kheap_init(&h, a, KHEAP_REGION_MAX), MM_OK);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 1);
    cr_assert_eq(st.total_bytes, KHEAP_REGION_MAX);
    cr_assert_eq(kheap_add_region(&h, a + KHEAP_REGION_MAX, extra), MM_OK);
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 2, "not merged: the sum would exceed KHEAP_REGION_MAX");
    cr_assert_eq(st.total_bytes, KHEAP_REGION_MAX + extra);
    cr_assert_eq(st.free_blocks, 2);
    T_CHECK(&h);
    /* The new region still merges with a range adjacent to it. */
    cr_assert_eq(kheap_add_region(&h, a + KHEAP_REGION_MAX + extra, extra), MM_OK);
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 2);
    cr_assert_eq(st.total_bytes, KHEAP_REGION_MAX + 2 * extra);
    T_CHECK(&h);
    /* Both regions serve allocations and free back to one block each. */
    void *big = kheap_block_alloc(&h, KHEAP_REGION_MAX - 4096, 0);
    cr_assert_not_null(big);
    void *small = kheap_block_alloc(&h, extra, 0);
    cr_assert_not_null(small);
    cr_assert_geq((uintptr_t)small, (uintptr_t)(a + KHEAP_REGION_MAX), "in the second region");
    T_CHECK(&h);
    cr_assert_eq(kheap_block_free(&h, big), MM_OK);
    cr_assert_eq(kheap_block_free(&h, small), MM_OK);
    t_assert_all_free(&h);
    munmap(a, KHEAP_REGION_MAX + 2 * extra);
}
#endif
