/*
 * kheap: the placement policy and "nothing is ever lost", against the
 * reference model, with kheap_check after every operation.
 */
#include "kheap_test.h"

/* The anchor's failure: 10 cycles of alloc(100)/free on a 4 KiB heap lost
 * 120 bytes and then a 4000-byte request failed. */
Test(kheap_policy, alloc_free_cycles_lose_nothing)
{
    kheap_t h;
    uint8_t *a = t_arena(4096);
    cr_assert_eq(kheap_init(&h, a, 4096), MM_OK);
    kheap_stats_t st0, st;
    cr_assert_eq(kheap_get_stats(&h, &st0), MM_OK);
    for (int i = 0; i < 10; i++) {
        void *p = kheap_block_alloc(&h, 100, 0);
        cr_assert_not_null(p);
        cr_assert_eq(kheap_block_free(&h, p), MM_OK);
        T_CHECK(&h);
    }
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.free_bytes, st0.free_bytes);
    cr_assert_eq(st.free_blocks, 1);
    void *big = kheap_block_alloc(&h, 4000 - 2 * (T_USER_OFF - 16), 0);
    cr_assert_not_null(big, "a 4000-byte request fits in a 4 KiB heap after the cycles");
    void *whole = NULL;
    cr_assert_eq(kheap_block_free(&h, big), MM_OK);
    whole = kheap_block_alloc(&h, 4096 - KHEAP_REGION_OVERHEAD - T_USER_OFF - T_BACK, 0);
    cr_assert_not_null(whole, "the whole region is one block again");
    cr_assert_eq(kheap_block_free(&h, whole), MM_OK);
    t_assert_all_free(&h);
}

Test(kheap_policy, odd_sizes_are_rounded_and_reclaimed)
{
    kheap_t h;
    cr_assert_eq(kheap_init(&h, t_arena(65536), 65536), MM_OK);
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = kheap_block_alloc(&h, (size_t)(i * 13 + 1), 0);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % 16, 0);
        if (i > 0)
            cr_assert_eq((uintptr_t)p[i] - (uintptr_t)p[i - 1],
                         t_block_size((size_t)((i - 1) * 13 + 1)), "blocks are packed");
    }
    for (int i = 0; i < 64; i += 3)
        cr_assert_eq(kheap_block_free(&h, p[i]), MM_OK);
    T_CHECK(&h);
    for (int i = 0; i < 64; i++)
        if (i % 3 != 0)
            cr_assert_eq(kheap_block_free(&h, p[i]), MM_OK);
    t_assert_all_free(&h);
}

Test(kheap_policy, lowest_address_wins_not_the_best_fit)
{
    kheap_t h;
    cr_assert_eq(kheap_init(&h, t_arena(65536), 65536), MM_OK);
    void *big = kheap_block_alloc(&h, 1000, 0);
    void *s1 = kheap_block_alloc(&h, 10, 0);
    void *exact = kheap_block_alloc(&h, 200, 0);
    void *s2 = kheap_block_alloc(&h, 10, 0);
    (void)s1;
    (void)s2;
    cr_assert_eq(kheap_block_free(&h, big), MM_OK);
    cr_assert_eq(kheap_block_free(&h, exact), MM_OK);
    /* A 200-byte request: first fit takes the lower 1000-byte hole. */
    void *p = kheap_block_alloc(&h, 200, 0);
    cr_assert_eq(p, big);
    T_CHECK(&h);
}

Test(kheap_policy, alignment_padding_becomes_a_free_block_or_nothing)
{
    kheap_t h;
    cr_assert_eq(kheap_init(&h, t_arena(1 << 20), 1 << 20), MM_OK);
    t_model_t *m = calloc(1, sizeof(*m));
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    t_snap_t s = t_snapshot(&h);
    tm_insert_free(m, s.b[0].block, s.b[0].block + s.b[0].size);
    t_snap_free(&s);
    void *ptrs[200];
    size_t aligns[] = {32, 64, 128, 256, 4096, 8192, 65536};
    for (int i = 0; i < 60; i++) {
        size_t al = aligns[i % 7], sz = (size_t)(i * 29 % 500);
        uintptr_t want = tm_alloc(m, sz, al);
        ptrs[i] = kheap_block_alloc(&h, sz, al);
        cr_assert_eq((uintptr_t)ptrs[i], want, "alloc %d (%zu, align %zu)", i, sz, al);
        cr_assert_eq((uintptr_t)ptrs[i] % al, 0);
        T_CHECK(&h);
        tm_assert_matches(m, &h);
    }
    for (int i = 0; i < 60; i++) {
        int k = (i * 37) % 60;
        cr_assert_eq(kheap_block_free(&h, ptrs[k]), MM_OK);
        tm_free(m, (uintptr_t)ptrs[k]);
        T_CHECK(&h);
        tm_assert_matches(m, &h);
    }
    t_assert_all_free(&h);
    free(m);
}

/* More than KHEAP_ALIGN_CANDIDATES near misses below: the search stops
 * trying them and takes the lowest block that holds the request anyway. */
Test(kheap_policy, aligned_search_is_bounded)
{
    kheap_t h;
    uint8_t *a = t_arena(1 << 20);
    cr_assert_eq(kheap_init(&h, a, 1 << 20), MM_OK);
    t_model_t *m = calloc(1, sizeof(*m));
    tm_add_region(m, a, 1 << 20);
    void *p[60];
    for (int i = 0; i < 60; i++) {
        p[i] = kheap_block_alloc(&h, 100, 0);
        cr_assert_eq((uintptr_t)p[i], tm_alloc(m, 100, 0));
    }
    for (int i = 0; i < 60; i += 2) {
        cr_assert_eq(kheap_block_free(&h, p[i]), MM_OK);
        tm_free(m, (uintptr_t)p[i]);
    }
    tm_assert_matches(m, &h);
    /* 30 holes of 128 bytes, none 4 KiB-aligned where it would fit. */
    uintptr_t want = tm_alloc(m, 16, 4096);
    void *q = kheap_block_alloc(&h, 16, 4096);
    cr_assert_eq((uintptr_t)q, want);
    cr_assert_eq((uintptr_t)q % 4096, 0);
    cr_assert_gt((uintptr_t)q, (uintptr_t)p[59]);
    T_CHECK(&h);
    tm_assert_matches(m, &h);
    free(m);
}

Test(kheap_policy, page_and_larger_alignments)
{
    kheap_t h;
    size_t bytes = 16u << 20;
    /* Placed so that no 32 MiB boundary lies inside the region. */
    uintptr_t arena = (uintptr_t)t_arena(64u << 20);
    uintptr_t base = ((arena + (32u << 20) - 1) & ~(uintptr_t)((32u << 20) - 1)) + (1u << 20);
    cr_assert_eq(kheap_init(&h, (void *)base, bytes), MM_OK);
    void *small = kheap_block_alloc(&h, 24, 0);
    void *p4k = kheap_block_alloc(&h, 4096, 4096);
    void *p2m = kheap_block_alloc(&h, 5000, (size_t)2 << 20);
    void *p1m = kheap_block_alloc(&h, 1, (size_t)1 << 20);
    cr_assert_eq((uintptr_t)p4k % 4096, 0);
    cr_assert_eq((uintptr_t)p2m % (2u << 20), 0);
    cr_assert_eq((uintptr_t)p1m % (1u << 20), 0);
    T_CHECK(&h);
    cr_assert_null(kheap_block_alloc(&h, 1, (size_t)32 << 20), "no 32 MiB boundary fits in 16 MiB");
    T_CHECK(&h);
    kheap_block_free(&h, small);
    kheap_block_free(&h, p2m);
    kheap_block_free(&h, p4k);
    kheap_block_free(&h, p1m);
    t_assert_all_free(&h);
}

/*
 * Random traces over several regions: every allocation lands where the
 * reference model (lowest fitting address) says, the free set matches the
 * model after every operation, kheap_check passes after every operation,
 * and after freeing everything each region is one free block.
 */
static void run_trace(uint64_t seed, int ops, bool aligned)
{
    kheap_t h;
    t_model_t *m = calloc(1, sizeof(*m));
    size_t sizes[3] = {48 * 1024, 96 * 1024 + 8, 20 * 1024};
    uint8_t *a = t_arena(512 * 1024);
    /* Two separate regions, then one adjacent to the first. */
    cr_assert_eq(kheap_init(&h, a + 3, sizes[0]), MM_OK);
    tm_add_region(m, a + 3, sizes[0]);
    cr_assert_eq(kheap_add_region(&h, a + 256 * 1024, sizes[1]), MM_OK);
    tm_add_region(m, a + 256 * 1024, sizes[1]);
    uintptr_t end0 = ((uintptr_t)(a + 3) + sizes[0]) & ~(uintptr_t)15;
    tm_assert_matches(m, &h);

    enum { LIVE = 200 };
    uintptr_t live[LIVE];
    size_t nlive = 0;
    uint64_t rng = seed;
    for (int i = 0; i < ops; i++) {
        if (i == ops / 3) {
            cr_assert_eq(kheap_add_region(&h, (void *)end0, sizes[2]), MM_OK);
            tm_add_region(m, (void *)end0, sizes[2]);
        }
        uint64_t r = t_rand(&rng);
        bool do_alloc = nlive == 0 || (nlive < LIVE && (r % 100) < 55);
        if (do_alloc) {
            uint64_t c = (r >> 8) % 100;
            size_t sz = c < 70 ? (size_t)((r >> 16) % 256) : c < 95 ? 256 + (size_t)((r >> 16) % 3840)
                                                                    : 4096 + (size_t)((r >> 16) % 16384);
            size_t al = 0;
            if (aligned && ((r >> 40) % 10) == 0)
                al = (size_t)16 << ((r >> 44) % 9); /* 16 .. 4096 */
            uintptr_t want = tm_alloc(m, sz, al);
            void *p = kheap_block_alloc(&h, sz, al);
            cr_assert_eq((uintptr_t)p, want, "seed %llu op %d: alloc(%zu, %zu) = %p, model %#lx",
                         (unsigned long long)seed, i, sz, al, p, (unsigned long)want);
            if (p != NULL) {
                memset(p, (int)(i & 0xff), sz);
                live[nlive++] = (uintptr_t)p;
            }
        } else {
            size_t k = (size_t)((r >> 8) % nlive);
            cr_assert_eq(kheap_block_free(&h, (void *)live[k]), MM_OK);
            tm_free(m, live[k]);
            live[k] = live[--nlive];
        }
        T_CHECK(&h);
        tm_assert_matches(m, &h);
    }
    while (nlive > 0) {
        cr_assert_eq(kheap_block_free(&h, (void *)live[--nlive]), MM_OK);
        tm_free(m, live[nlive]);
        T_CHECK(&h);
    }
    tm_assert_matches(m, &h);
    t_assert_all_free(&h);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 2);
    cr_assert_eq(test_warnings.count, 0);
    free(m);
}

Test(kheap_policy, random_traces_match_the_first_fit_model, .timeout = 120)
{
    for (uint64_t seed = 1; seed <= 6; seed++)
        run_trace(seed, 1500, false);
}

Test(kheap_policy, random_aligned_traces_match_the_first_fit_model, .timeout = 120)
{
    for (uint64_t seed = 100; seed <= 105; seed++)
        run_trace(seed, 1500, true);
}

/* Reallocation in random traces: contents survive, nothing is lost. */
Test(kheap_policy, random_realloc_traces_keep_contents_and_lose_nothing, .timeout = 120)
{
    for (uint64_t seed = 7; seed <= 10; seed++) {
        kheap_t h;
        size_t bytes = 256 * 1024;
        cr_assert_eq(kheap_init(&h, t_arena(bytes), bytes), MM_OK);
        enum { LIVE = 64 };
        uint8_t *ptr[LIVE] = {0};
        size_t len[LIVE] = {0};
        uint64_t rng = seed;
        for (int i = 0; i < 3000; i++) {
            uint64_t r = t_rand(&rng);
            size_t k = (size_t)(r % LIVE);
            size_t sz = (size_t)((r >> 8) % (((r >> 20) % 4) == 0 ? 6000 : 300));
            void *out = NULL;
            mm_status_t st = kheap_realloc(&h, ptr[k], sz, &out);
            if (st == MM_ERR_NOMEM) {
                cr_assert_null(out);
            } else {
                cr_assert_eq(st, MM_OK);
                if (ptr[k] != NULL && out != NULL) {
                    size_t keep = len[k] < sz ? len[k] : sz;
                    for (size_t j = 0; j < keep; j++)
                        cr_assert_eq(((uint8_t *)out)[j], (uint8_t)(k + j), "seed %llu op %d",
                                     (unsigned long long)seed, i);
                }
                ptr[k] = out;
                len[k] = out ? sz : 0;
                for (size_t j = 0; j < len[k]; j++)
                    ptr[k][j] = (uint8_t)(k + j);
            }
            T_CHECK(&h);
        }
        for (int k = 0; k < LIVE; k++)
            cr_assert_eq(kheap_free(&h, ptr[k]), MM_OK);
        t_assert_all_free(&h);
    }
}
