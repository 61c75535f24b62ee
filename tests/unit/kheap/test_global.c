/* kheap: the kmalloc family over the default instance. */
#include "kheap_test.h"

Test(kheap_global, before_init_everything_fails_cleanly)
{
    int x;
    cr_assert_null(kmalloc(16));
    cr_assert_null(kmalloc_aligned(16, 64));
    cr_assert_null(kcalloc(2, 8));
    cr_assert_null(krealloc(NULL, 8));
    cr_assert_eq(ksize(&x), 0);
    kfree(NULL);
    cr_assert_eq(test_warnings.count, 0, "kfree(NULL) is silent");
    kfree(&x);
    cr_assert_eq(test_warnings.count, 1);
    cr_assert_eq(test_warnings.last.kind, MM_REPORT_BAD_POINTER);
    cr_assert_eq(test_warnings.last.address, (uint64_t)(uintptr_t)&x);
    cr_assert_not_null(kheap_default());
    cr_assert_eq(kheap_default(), kheap_default());
}

Test(kheap_global, kmalloc_family_on_the_default_heap)
{
    cr_assert_eq(kheap_default_init(t_arena(1 << 20), 1 << 20), MM_OK);
    uint8_t *a = kmalloc(100);
    cr_assert_not_null(a);
    cr_assert_geq(ksize(a), 100);
    uint8_t *b = kmalloc_aligned(100, 4096);
    cr_assert_eq((uintptr_t)b % 4096, 0);
    uint8_t *c = kcalloc(30, 10);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(c[i], 0);
    cr_assert_null(kcalloc(SIZE_MAX, SIZE_MAX));
    memset(a, 0x42, 100);
    uint8_t *a2 = krealloc(a, 3000);
    cr_assert_not_null(a2);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(a2[i], 0x42);
    cr_assert_null(krealloc(a2, 0), "size 0 frees");
    cr_assert_eq(ksize(a2), 0);
    cr_assert_null(krealloc(b, (size_t)1 << 40), "too big: NULL, old block kept");
    cr_assert_geq(ksize(b), 100);
    kfree(b);
    kfree(c);
    kfree(NULL);
    kfree(c);
    /* c's slab went back to the blocks with its last object, so the second
     * free meets a freed block, not a free object: refused either way. */
    cr_assert_eq(test_warnings.count, 1);
    cr_assert(test_warnings.last.kind == MM_REPORT_DOUBLE_FREE ||
                  test_warnings.last.kind == MM_REPORT_BAD_POINTER,
              "%s %s", mm_report_kind_str(test_warnings.last.kind), test_warnings.last.message);
    T_CHECK(kheap_default());
    t_assert_all_free(kheap_default());
}
