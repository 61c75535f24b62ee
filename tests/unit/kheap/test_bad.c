/*
 * kheap: caller mistakes are detected in every build, warned about with the
 * address, rejected with a distinct status, and leave the heap unchanged.
 */
#include "kheap_test.h"

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
}

/* Frees `bad` and requires the status, one warning with the pointer, and an
 * identical heap afterwards. */
static void expect_rejected(void *bad, mm_status_t status, mm_report_kind_t kind)
{
    t_snap_t before = t_snapshot(&heap);
    kheap_stats_t s0, s1;
    cr_assert_eq(kheap_get_stats(&heap, &s0), MM_OK);
    int warned = test_warnings.count;
    cr_assert_eq(kheap_block_free(&heap, bad), status, "free(%p)", bad);
    cr_assert_eq(test_warnings.count, warned + 1);
    cr_assert_eq(test_warnings.last.kind, kind, "kind %s", mm_report_kind_str(test_warnings.last.kind));
    cr_assert_eq(test_warnings.last.address, (uint64_t)(uintptr_t)bad);
    cr_assert_not_null(test_warnings.last.message);
    cr_assert_eq(test_panics.count, 0);
    t_snap_t after = t_snapshot(&heap);
    cr_assert(t_snap_equal(&before, &after), "heap changed");
    cr_assert_eq(kheap_get_stats(&heap, &s1), MM_OK);
    cr_assert_eq(memcmp(&s0, &s1, sizeof(s0)), 0, "statistics changed");
    t_snap_free(&before);
    t_snap_free(&after);
    T_CHECK(&heap);
    cr_assert_eq(test_irq_depth(), 0);
}

Test(kheap_bad, double_free_of_a_lone_block, .init = setup)
{
    void *a = kheap_block_alloc(&heap, 100, 0);
    void *b = kheap_block_alloc(&heap, 100, 0);
    (void)b;
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    expect_rejected(a, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
}

Test(kheap_bad, double_free_after_merging_below, .init = setup)
{
    void *a = kheap_block_alloc(&heap, 100, 0), *b = kheap_block_alloc(&heap, 100, 0);
    void *c = kheap_block_alloc(&heap, 100, 0);
    (void)c;
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    cr_assert_eq(kheap_block_free(&heap, b), MM_OK); /* b's header now inside a's block */
    expect_rejected(b, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
    expect_rejected(a, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
}

Test(kheap_bad, double_free_after_merging_above, .init = setup)
{
    void *a = kheap_block_alloc(&heap, 100, 0), *b = kheap_block_alloc(&heap, 100, 0);
    void *c = kheap_block_alloc(&heap, 100, 0);
    (void)c;
    cr_assert_eq(kheap_block_free(&heap, b), MM_OK);
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK); /* a takes over b's free block */
    expect_rejected(b, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
    expect_rejected(a, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
}

Test(kheap_bad, double_free_of_the_last_block, .init = setup)
{
    void *a = kheap_block_alloc(&heap, 100, 0);
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    expect_rejected(a, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
}

Test(kheap_bad, double_free_detected_in_realloc, .init = setup)
{
    void *a = kheap_block_alloc(&heap, 100, 0);
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    void *out = (void *)1;
    cr_assert_eq(kheap_realloc(&heap, a, 200, &out), MM_ERR_DOUBLE_FREE);
    cr_assert_null(out);
    cr_assert_eq(test_warnings.count, 1);
    cr_assert_eq(test_warnings.last.kind, MM_REPORT_DOUBLE_FREE);
    cr_assert_eq(kheap_block_usable_size(&heap, a), 0);
    cr_assert_eq(test_warnings.count, 1, "usable_size does not warn");
}

Test(kheap_bad, pointers_from_elsewhere, .init = setup)
{
    int on_stack;
    void *from_libc = malloc(64);
    kheap_t other;
    cr_assert_eq(kheap_init(&other, t_arena(65536), 65536), MM_OK);
    void *from_other = kheap_block_alloc(&other, 64, 0);
    (void)kheap_block_alloc(&heap, 64, 0);
    expect_rejected(&on_stack, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(from_libc, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(from_other, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected((void *)16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected((void *)UINTPTR_MAX, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    free(from_libc);
    T_CHECK(&other);
}

Test(kheap_bad, pointers_into_blocks_and_metadata, .init = setup)
{
    uint8_t *a = kheap_block_alloc(&heap, 500, 0);
    memset(a, 0, 500);
    uint8_t *b = kheap_block_alloc(&heap, 500, 0);
    (void)b;
    t_snap_t s = t_snapshot(&heap);
    uint8_t *region = (uint8_t *)s.b[0].block - T_DESC;
    t_snap_free(&s);
    expect_rejected(a + 1, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(a + 8, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(a + 16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(a + 256, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(a - 16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(region, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(region + 16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(region + (1 << 20) - 16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    /* Into the free rest of the heap. */
    expect_rejected(b + 4096, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK, "the real pointer still frees");
    T_CHECK(&heap);
}

/* A header copied elsewhere does not validate: the check word mixes in the
 * address. */
Test(kheap_bad, copied_header_is_not_a_block, .init = setup)
{
    uint8_t *a = kheap_block_alloc(&heap, 200, 0);
    uint8_t *b = kheap_block_alloc(&heap, 200, 0);
    memcpy(a + 64, a - T_USER_OFF, T_USER_OFF);
    expect_rejected(a + 64 + T_USER_OFF, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    cr_assert_eq(kheap_block_free(&heap, b), MM_OK);
}

Test(kheap_bad, realloc_rejects_foreign_pointers, .init = setup)
{
    int x;
    void *out = (void *)1;
    cr_assert_eq(kheap_realloc(&heap, &x, 10, &out), MM_ERR_BAD_POINTER);
    cr_assert_null(out);
    cr_assert_eq(test_warnings.count, 1);
    cr_assert_eq(test_warnings.last.kind, MM_REPORT_BAD_POINTER);
    cr_assert_eq(test_warnings.last.address, (uint64_t)(uintptr_t)&x);
    T_CHECK(&heap);
}

/* kheap.md: a free that meets a damaged footer of the free block below
 * panics with MM_REPORT_CORRUPT, address = the freed block (its header),
 * found = the footer, expected = the size in the header the footer points
 * at. Here the footer points at a real used block (l) two blocks down, so
 * every field is known. In every build (not an assertion). */
Test(kheap_bad, damaged_footer_panics_corrupt_on_free, .init = setup)
{
    uint8_t *l = kheap_block_alloc(&heap, 200, 0);
    uint8_t *a = kheap_block_alloc(&heap, 100, 0);
    uint8_t *b = kheap_block_alloc(&heap, 100, 0);
    (void)kheap_block_alloc(&heap, 100, 0); /* b's upper neighbour stays used */
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    T_CHECK(&heap);
    uintptr_t lb = (uintptr_t)l - T_USER_OFF, ab = (uintptr_t)a - T_USER_OFF;
    uintptr_t bb = (uintptr_t)b - T_USER_OFF;
    cr_assert_eq(ab - lb, t_block_size(200));
    cr_assert_eq(bb - ab, t_block_size(100));
    uint64_t *footer = (uint64_t *)(bb - 8);
    cr_assert_eq(*footer, t_block_size(100), "a's footer holds its size");
    *footer = bb - lb; /* points at l's header: a used block */
    int panics = test_panics.count;
    bool panicked = TEST_CATCH_PANIC(kheap_block_free(&heap, b));
    cr_assert(panicked, "damaged footer not detected by free");
    cr_assert_eq(test_panics.count, panics + 1);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_CORRUPT, "kind %s",
                 mm_report_kind_str(test_panics.last.kind));
    cr_assert_eq(test_panics.last.address, (uint64_t)bb, "report names the freed block");
    cr_assert_eq(test_panics.last.found, (uint64_t)(bb - lb), "found = the footer");
    cr_assert_eq(test_panics.last.expected, (uint64_t)t_block_size(200),
                 "expected = the size in the header it points at");
    cr_assert_not_null(test_panics.last.message);
    cr_assert_eq(test_warnings.count, 0, "a panic, not a warning");
    /* The panicking call still holds the lock: the heap is not used again. */
}

/* A footer too small to be a block is rejected before it is followed. */
Test(kheap_bad, footer_below_minimum_block_panics_corrupt, .init = setup)
{
    uint8_t *a = kheap_block_alloc(&heap, 100, 0);
    uint8_t *b = kheap_block_alloc(&heap, 100, 0);
    (void)kheap_block_alloc(&heap, 100, 0);
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    uintptr_t bb = (uintptr_t)b - T_USER_OFF;
    *(uint64_t *)(bb - 8) = 16;
    bool panicked = TEST_CATCH_PANIC(kheap_block_free(&heap, b));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_CORRUPT);
    cr_assert_eq(test_panics.last.address, (uint64_t)bb);
    cr_assert_eq(test_panics.last.found, 16);
}
