/*
 * kheap small-run page map (kheap/src/runmap.c): a free of a small slot is
 * decided by the map, never by reading the memory around the pointer; the
 * map's leaves are heap blocks that come and go with the runs; a leaf that
 * cannot be allocated costs the run, not the request; kheap_check verifies
 * the map against the runs.
 */
#include "../../../kheap/src/block.h"
#include "kheap_test.h"

#if !HADRON_MM_HEAP_REDZONES

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
}

typedef struct internal_count {
    size_t internal, runs;
    const kheap_block_info_t *leaf;
    kheap_block_info_t leaf_copy;
} internal_count_t;

static bool count_internal(void *arg, const kheap_block_info_t *info)
{
    internal_count_t *c = arg;
    if (info->internal) {
        cr_assert(info->used);
        cr_assert_not(info->run);
        cr_assert_null(info->ptr);
        c->internal++;
        c->leaf_copy = *info;
        c->leaf = &c->leaf_copy;
    }
    if (info->run)
        c->runs++;
    return true;
}

static internal_count_t walk_count(kheap_t *h)
{
    internal_count_t c = {0, 0, NULL, {0}};
    cr_assert_eq(kheap_walk(h, count_internal, &c), MM_OK);
    return c;
}

/*
 * The bytes below a small slot belong to the slot before it. Its owner may
 * write anything there, even a perfect block header for the address below
 * the next slot: freeing the next slot must still free that slot, reading
 * nothing the neighbour wrote.
 */
Test(kheap_runmap, forged_header_in_the_neighbour_slot_is_never_trusted, .init = setup)
{
    uint8_t *a = kheap_alloc(&heap, 32, 0);
    uint8_t *b = kheap_alloc(&heap, 32, 0);
    cr_assert_eq((uintptr_t)b, (uintptr_t)a + 32, "adjacent slots of one run");
    kheap_stats_t s0, s1;
    cr_assert_eq(kheap_get_stats(&heap, &s0), MM_OK);

    uintptr_t fake = (uintptr_t)b - 16;
    uint64_t forged[2] = {(uint64_t)4096 | 1u, kh_used_check(fake, 4096)};
    memcpy(a + 16, forged, sizeof(forged));

    cr_assert_eq(kheap_free(&heap, b), MM_OK);
    cr_assert_eq(kheap_get_stats(&heap, &s1), MM_OK);
    cr_assert_eq(s1.run_slots_used, s0.run_slots_used - 1, "a slot was freed");
    cr_assert_eq(s1.free_bytes, s0.free_bytes, "no block was released");
    cr_assert_eq(memcmp(a + 16, forged, sizeof(forged)), 0, "the neighbour's data untouched");
    T_CHECK(&heap);
    cr_assert_eq(kheap_free(&heap, b), MM_ERR_DOUBLE_FREE, "the slot is free, whatever a says");
    cr_assert_eq(kheap_free(&heap, a), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_runmap, leaf_comes_with_the_first_run_and_goes_with_the_last, .init = setup)
{
    cr_assert_eq(walk_count(&heap).internal, 0);
    void *p = kheap_alloc(&heap, 16, 0);
    void *q = kheap_alloc(&heap, 200, 0);
    internal_count_t c = walk_count(&heap);
    cr_assert_eq(c.runs, 2);
    cr_assert_eq(c.internal, 1, "one leaf for the span");

    /* The leaf is the heap's, never a caller's: freeing its address is a
     * bad pointer that changes nothing. */
    void *leaf_user = (void *)((uintptr_t)c.leaf->block + T_USER_OFF);
    t_snap_t before = t_snapshot(&heap);
    int warned = test_warnings.count;
    cr_assert_eq(kheap_free(&heap, leaf_user), MM_ERR_BAD_POINTER);
    cr_assert_eq(test_warnings.count, warned + 1);
    cr_assert_eq(kheap_usable_size(&heap, leaf_user), 0);
    t_snap_t after = t_snapshot(&heap);
    cr_assert(t_snap_equal(&before, &after), "heap changed");
    t_snap_free(&before);
    t_snap_free(&after);

    cr_assert_eq(kheap_free(&heap, p), MM_OK);
    cr_assert_eq(walk_count(&heap).internal, 1, "a run remains in the span");
    cr_assert_eq(kheap_free(&heap, q), MM_OK);
    cr_assert_eq(walk_count(&heap).internal, 0, "the last run took the leaf with it");
    t_assert_all_free(&heap);
}

/*
 * A page-aligned arena of two pages: a 4016-byte request fills the front,
 * the one page left is exactly a run's block, and nothing remains for the
 * leaf. The small request is then served as a plain block.
 */
Test(kheap_runmap, no_room_for_a_leaf_means_no_run_not_no_memory)
{
    kheap_t h;
    uint8_t *arena = t_arena(8192);
    cr_assert_eq(kheap_init(&h, arena, 8192), MM_OK);
    void *front = kheap_alloc(&h, 4016, 0);
    cr_assert_eq((uintptr_t)front, (uintptr_t)arena + T_DESC + T_USER_OFF);
    void *p = kheap_alloc(&h, 16, 0);
    cr_assert_not_null(p);
    internal_count_t c = walk_count(&h);
    cr_assert_eq(c.runs, 0, "the run was given back");
    cr_assert_eq(c.internal, 0);
    cr_assert_eq((uintptr_t)p, (uintptr_t)arena + 4096 - 16 + T_USER_OFF, "a block instead");
    cr_assert_eq(kheap_usable_size(&h, p), t_block_size(16) - T_USER_OFF);
    T_CHECK(&h);
    cr_assert_eq(kheap_free(&h, p), MM_OK);
    cr_assert_eq(kheap_free(&h, front), MM_OK);
    t_assert_all_free(&h);
}

static kh_map_leaf_t *leaf_of(const void *p)
{
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)(KHEAP_RUN_SIZE - 1);
    uintptr_t span = page & ~(KH_MAP_SPAN - 1);
    for (unsigned k = 0; k < KH_MAP_BUCKETS; k++)
        for (kh_map_leaf_t *l = heap.map[k]; l != NULL; l = l->next)
            if (l->span == span)
                return l;
    cr_assert_fail("no leaf for %p", p);
    return NULL;
}

static void expect_corrupt(const char *message)
{
    mm_report_t r;
    memset(&r, 0, sizeof(r));
    cr_assert_eq(kheap_check(&heap, &r), MM_ERR_CORRUPT);
    cr_assert_eq(r.kind, MM_REPORT_CORRUPT);
    cr_assert_str_eq(r.message, message);
}

Test(kheap_runmap, check_verifies_the_map_against_the_runs, .init = setup)
{
    void *p = kheap_alloc(&heap, 48, 0);
    T_CHECK(&heap);
    kh_map_leaf_t *l = leaf_of(p);
    unsigned i = (unsigned)(((uintptr_t)p & (KH_MAP_SPAN - 1)) / KHEAP_RUN_SIZE);
    uint64_t bit = (uint64_t)1 << (i % 64);

    l->bits[i / 64] &= ~bit; /* a live run the map forgot */
    expect_corrupt("kheap: small run missing from the run map");
    l->bits[i / 64] |= bit;
    T_CHECK(&heap);

    unsigned j = (i + 1) % (unsigned)(KH_MAP_SPAN / KHEAP_RUN_SIZE); /* a page with no run */
    l->bits[j / 64] ^= (uint64_t)1 << (j % 64);
    expect_corrupt("kheap: run map leaf count wrong");
    l->count++;
    expect_corrupt("kheap: run map does not match the small runs");
    l->count--;
    l->bits[j / 64] ^= (uint64_t)1 << (j % 64);
    T_CHECK(&heap);

    l->check ^= 1;
    expect_corrupt("kheap: run map leaf damaged");
    l->check ^= 1;
    l->span += KHEAP_RUN_SIZE; /* the run's page is no longer found */
    expect_corrupt("kheap: small run missing from the run map");
    l->span -= KHEAP_RUN_SIZE;
    T_CHECK(&heap);

    size_t leaves = heap.map_leaves;
    heap.map_leaves = leaves + 1;
    expect_corrupt("kheap: run map leaf count wrong");
    heap.map_leaves = leaves;
    T_CHECK(&heap);
    cr_assert_eq(kheap_free(&heap, p), MM_OK);
    t_assert_all_free(&heap);
}

/*
 * Runs in more spans than the map has buckets, so chains are shared; every
 * slot still frees exactly once, in any order, and the leaves all go.
 */
Test(kheap_runmap, many_spans_share_buckets, .timeout = 60)
{
    enum { SPANS = KHEAP_MAP_BUCKETS + 36, PER_RUN = (KHEAP_RUN_SIZE - 16 - 80) / 16 };
    size_t arena_size = (size_t)(SPANS + 2) * KH_MAP_SPAN;
    kheap_t h;
    cr_assert_eq(kheap_init(&h, t_arena(arena_size), arena_size), MM_OK);
    size_t n = (size_t)SPANS * (PER_RUN + 1), k = 0;
    void **p = calloc(n, sizeof(void *));
    for (int s = 0; s < SPANS; s++) {
        for (int i = 0; i < PER_RUN; i++) {
            p[k] = kheap_alloc(&h, 16, 0);
            cr_assert_not_null(p[k]);
            *(uint64_t *)p[k] = k;
            k++;
        }
        /* A block the size of a span pushes the next run into the next span. */
        p[k] = kheap_alloc(&h, KH_MAP_SPAN - 4096, 0);
        cr_assert_not_null(p[k]);
        k++;
    }
    cr_assert_eq(h.map_leaves, SPANS, "one leaf per span");
    T_CHECK(&h);
    srand(7);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1);
        void *t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(kheap_free(&h, p[i]), MM_OK, "free %zu", i);
        /* Once a slot's run is gone its page is no run any more: the
         * repeat is then rejected as a pointer the heap did not hand out. */
        mm_status_t again = kheap_free(&h, p[i]);
        cr_assert(again == MM_ERR_DOUBLE_FREE || again == MM_ERR_BAD_POINTER, "free %zu again: %s",
                  i, mm_status_str(again));
        if (i % 4096 == 0)
            T_CHECK(&h);
    }
    cr_assert_eq(h.map_leaves, 0);
    t_assert_all_free(&h);
    free(p);
}

#else

Test(kheap_runmap, redzone_build_has_no_map)
{
    kheap_t h;
    cr_assert_eq(kheap_init(&h, t_arena(1 << 16), 1 << 16), MM_OK);
    void *p = kheap_alloc(&h, 16, 0);
    cr_assert_not_null(p);
    cr_assert_eq(h.map_leaves, 0);
    cr_assert_eq(kheap_free(&h, p), MM_OK);
}

#endif
