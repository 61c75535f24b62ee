/*
 * kheap debug options: redzones with fill patterns and use-after-free
 * verification (heap_redzones), statistics (alloc_tracking). Each test
 * checks the option's behaviour when it is on and the plain behaviour when
 * it is off.
 */
#include "kheap_test.h"

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
}

#if HADRON_MM_HEAP_REDZONES

static void expect_redzone_panic(uint8_t *p, int64_t offset, const char *message)
{
    bool panicked = TEST_CATCH_PANIC(kheap_block_free(&heap, p));
    cr_assert(panicked, "damage not detected");
    cr_assert_eq(test_panics.last.kind, MM_REPORT_REDZONE);
    cr_assert_eq(test_panics.last.address, (uint64_t)(uintptr_t)p, "report names the block");
    cr_assert_eq((int64_t)test_panics.last.offset, offset, "offset %lld",
                 (long long)(int64_t)test_panics.last.offset);
    cr_assert_str_eq(test_panics.last.message, message);
}

Test(kheap_redzone, overflow_after_the_block_panics_on_free, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 100, 0);
    memset(p, 1, 100);
    p[100] = 0;
    expect_redzone_panic(p, 100, "kheap: redzone overwritten after block");
    cr_assert_eq(test_panics.last.found, 0);
    cr_assert_eq(test_panics.last.expected, KHEAP_FILL_GUARD);
}

Test(kheap_redzone, overflow_into_the_rounding_slack_is_caught, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 97, 0); /* slack up to the granule is guard too */
    p[97 + KHEAP_REDZONE + 5] = 0x42;
    expect_redzone_panic(p, 97 + KHEAP_REDZONE + 5, "kheap: redzone overwritten after block");
    cr_assert_eq(test_panics.last.found, 0x42);
}

Test(kheap_redzone, underflow_before_the_block_panics_on_free, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 64, 0);
    p[-1] = 0x11;
    expect_redzone_panic(p, -1, "kheap: redzone overwritten before block");
    cr_assert_eq(test_panics.last.found, 0x11);
}

Test(kheap_redzone, damaged_size_header_panics_on_free, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 64, 0);
    ((uint64_t *)(p - KHEAP_REDZONE - 16))[0] = 1000; /* the requested size */
    expect_redzone_panic(p, -(int64_t)(KHEAP_REDZONE + 16),
                         "kheap: redzone header overwritten before block");
}

Test(kheap_redzone, realloc_checks_guards_too, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 64, 0);
    p[64] = 0;
    void *out;
    bool panicked = TEST_CATCH_PANIC(kheap_realloc(&heap, p, 10, &out));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_REDZONE);
    cr_assert_eq((int64_t)test_panics.last.offset, 64);
}

Test(kheap_redzone, check_reports_guard_damage_without_panicking, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 40, 0);
    (void)kheap_block_alloc(&heap, 40, 0);
    T_CHECK(&heap);
    p[45] = 7;
    mm_report_t r;
    cr_assert_eq(kheap_check(&heap, &r), MM_ERR_CORRUPT);
    cr_assert_eq(r.kind, MM_REPORT_REDZONE);
    cr_assert_eq(r.address, (uint64_t)(uintptr_t)p);
    cr_assert_eq((int64_t)r.offset, 45);
    cr_assert_str_eq(r.message, "kheap: redzone overwritten after block");
    cr_assert_eq(test_panics.count, 0);
    p[45] = KHEAP_FILL_GUARD;
    T_CHECK(&heap);
}

Test(kheap_redzone, fills_new_and_freed_memory, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 300, 0);
    (void)kheap_block_alloc(&heap, 16, 0);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(p[i], KHEAP_FILL_ALLOC, "byte %d", i);
    memset(p, 0x33, 300);
    cr_assert_eq(kheap_block_free(&heap, p), MM_OK);
    /* Past the free block's own links, everything is the free pattern. */
    for (int i = 0; i < 250; i++)
        cr_assert_eq(p[i], KHEAP_FILL_FREE, "byte %d", i);
    T_CHECK(&heap);
}

Test(kheap_poison, write_after_free_is_caught_on_reuse, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 200, 0);
    (void)kheap_block_alloc(&heap, 16, 0);
    cr_assert_eq(kheap_block_free(&heap, p), MM_OK);
    p[150] = 0x99;
    bool panicked = TEST_CATCH_PANIC((void)kheap_block_alloc(&heap, 200, 0));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_POISON);
    cr_assert_eq(test_panics.last.address + test_panics.last.offset, (uint64_t)(uintptr_t)(p + 150),
                 "address %#llx offset %llu", (unsigned long long)test_panics.last.address,
                 (unsigned long long)test_panics.last.offset);
    cr_assert_eq(test_panics.last.found, 0x99);
    cr_assert_eq(test_panics.last.expected, KHEAP_FILL_FREE);
}

Test(kheap_poison, write_after_free_caught_after_merging, .init = setup)
{
    uint8_t *a = kheap_block_alloc(&heap, 200, 0), *b = kheap_block_alloc(&heap, 200, 0);
    (void)kheap_block_alloc(&heap, 16, 0);
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    cr_assert_eq(kheap_block_free(&heap, b), MM_OK);
    T_CHECK(&heap);
    b[0] = 0; /* b's old first user byte, now in the middle of a free block */
    mm_report_t r;
    cr_assert_eq(kheap_check(&heap, &r), MM_ERR_CORRUPT);
    cr_assert_eq(r.kind, MM_REPORT_POISON);
    cr_assert_eq(r.address + r.offset, (uint64_t)(uintptr_t)b);
    bool panicked = TEST_CATCH_PANIC((void)kheap_block_alloc(&heap, 400, 0));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_POISON);
    cr_assert_eq(test_panics.last.address + test_panics.last.offset, (uint64_t)(uintptr_t)b);
}

Test(kheap_poison, untouched_freed_memory_is_reused_quietly, .init = setup)
{
    for (int round = 0; round < 50; round++) {
        void *p[8];
        for (int i = 0; i < 8; i++)
            p[i] = kheap_block_alloc(&heap, (size_t)(round * 8 + i * 40), (i & 1) ? 64 : 0);
        for (int i = 7; i >= 0; i -= 2)
            cr_assert_eq(kheap_block_free(&heap, p[i]), MM_OK);
        for (int i = 0; i < 8; i += 2)
            cr_assert_eq(kheap_block_free(&heap, p[i]), MM_OK);
        T_CHECK(&heap);
    }
    cr_assert_eq(test_panics.count, 0);
}

#else /* !HADRON_MM_HEAP_REDZONES */

Test(kheap_redzone, off_no_guards_no_fill, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 100, 0);
    size_t usable = kheap_block_usable_size(&heap, p);
    cr_assert_eq(usable, t_block_size(100) - 16, "the whole block is usable");
    memset(p, 0x33, usable); /* writing the slack is legal without guards */
    (void)kheap_block_alloc(&heap, 16, 0);
    cr_assert_eq(kheap_block_free(&heap, p), MM_OK);
    cr_assert_eq(test_panics.count, 0);
    /* Freed memory keeps its contents beyond the links (no fill). */
    cr_assert_eq(p[80], 0x33);
    uint8_t *q = kheap_block_alloc(&heap, 100, 0);
    cr_assert_eq(q, p);
    cr_assert_eq(q[80], 0x33, "no allocation fill either");
    T_CHECK(&heap);
}

#endif

#if HADRON_MM_ALLOC_TRACKING

Test(kheap_tracking, counts_live_peak_failures_and_histogram, .init = setup)
{
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert(st.tracking);
    cr_assert_eq(st.allocs, 0);
    void *a = kheap_alloc(&heap, 10, 0);   /* class 0 */
    void *b = kheap_alloc(&heap, 100, 0);  /* (64, 128]: class 3 */
    void *c = kheap_alloc(&heap, 5000, 0); /* (4096, 8192]: class 9 */
    size_t ua = kheap_usable_size(&heap, a), ub = kheap_usable_size(&heap, b),
           uc = kheap_usable_size(&heap, c);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.allocs, 3);
    cr_assert_eq(st.live_count, 3);
    cr_assert_eq(st.live_bytes, ua + ub + uc);
    cr_assert_eq(st.histogram[0], 1);
    cr_assert_eq(st.histogram[3], 1);
    cr_assert_eq(st.histogram[9], 1);
    cr_assert_eq(kheap_free(&heap, c), MM_OK);
    cr_assert_null(kheap_alloc(&heap, 2 << 20, 0));
    cr_assert_null(kheap_alloc(&heap, 16, 3));
    cr_assert_null(kheap_calloc(&heap, SIZE_MAX, 2));
    kheap_free(&heap, c); /* rejected: not counted as a free */
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.frees, 1);
    cr_assert_eq(st.failures, 3);
    cr_assert_eq(st.live_count, 2);
    cr_assert_eq(st.peak_live_count, 3);
    cr_assert_eq(st.live_bytes, ua + ub);
    cr_assert_eq(st.peak_live_bytes, ua + ub + uc);
    void *out;
    cr_assert_eq(kheap_realloc(&heap, b, 1000, &out), MM_OK);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.live_bytes, ua + kheap_usable_size(&heap, out));
    cr_assert_eq(st.live_count, 2);
    cr_assert_eq(kheap_free(&heap, a), MM_OK);
    cr_assert_eq(kheap_free(&heap, out), MM_OK);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.live_count, 0);
    cr_assert_eq(st.live_bytes, 0);
    uint64_t sum = 0;
    for (unsigned i = 0; i < KHEAP_SIZE_CLASSES; i++)
        sum += st.histogram[i];
    cr_assert_eq(sum, st.allocs);
}

Test(kheap_tracking, largest_class_collects_everything_big, .init = setup)
{
    kheap_t big;
    size_t bytes = (size_t)80 << 20;
    cr_assert_eq(kheap_init(&big, t_arena(bytes), bytes), MM_OK);
    void *p = kheap_alloc(&big, (size_t)70 << 20, 0);
    cr_assert_not_null(p);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&big, &st), MM_OK);
    cr_assert_eq(st.histogram[KHEAP_SIZE_CLASSES - 1], 1);
}

#else

Test(kheap_tracking, off_reports_structure_only, .init = setup)
{
    void *a = kheap_block_alloc(&heap, 100, 0);
    (void)a;
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_not(st.tracking);
    cr_assert_eq(st.allocs, 0);
    cr_assert_eq(st.live_bytes, 0);
    cr_assert_eq(st.regions, 1);
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(st.free_bytes, st.total_bytes - KHEAP_REGION_OVERHEAD - t_block_size(100));
}

#endif
