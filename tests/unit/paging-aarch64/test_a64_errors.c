/* Every error return of every public function; each rejected call leaves
 * the tables, their counts and the frame pool exactly as before and
 * records nothing in the batch. */
#include <criterion/criterion.h>

#include "a64_test.h"

#define UVA 0x0000004000000000ull
#define KVA 0xffff900000000000ull

static void populate(void)
{
    cr_assert_eq(a64pt_map(&E.m, E.root, UVA, 0x100000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert_eq(a64pt_map(&E.m, E.root, UVA + MB2, 0x200000, MM_PAGE_2M, MM_MAP_USER, &E.tlb),
                 MM_OK);
    cr_assert_eq(a64pt_map(&E.m, E.root, UVA + GB1, 0x40000000, MM_PAGE_1G, 0, &E.tlb), MM_OK);
    cr_assert_eq(a64pt_map(&E.m, E.root, KVA, 0x300000, MM_PAGE_4K, MM_MAP_GLOBAL, &E.tlb), MM_OK);
    cr_assert(mm_tlb_batch_empty(&E.tlb));
}

#define EXPECT_UNCHANGED(call, status)                                                             \
    do {                                                                                           \
        snapshot_t *s_ = snap_take(E.root);                                                        \
        mm_status_t st_ = (call);                                                                  \
        cr_assert_eq(st_, (status), "%s: got %s", #call, mm_status_str(st_));                      \
        snap_assert_same(s_, E.root, #call);                                                       \
        cr_assert(mm_tlb_batch_empty(&E.tlb), "%s recorded a flush", #call);                       \
    } while (0)

static mm_status_t fail_alloc(void *ctx, size_t count, size_t align, mm_paddr_t limit,
                              mm_paddr_t *out)
{
    (void)ctx, (void)count, (void)align, (void)limit, (void)out;
    return MM_ERR_NOMEM;
}

static mm_status_t no_free(void *ctx, mm_paddr_t base, size_t count)
{
    (void)ctx, (void)base, (void)count;
    return MM_OK;
}

Test(a64_errors, init)
{
    a64pt_t m;
    mm_frame_allocator_t fa = {NULL, fail_alloc, no_free};
    a64pt_config_t ok = {.va_bits = 48, .lpa2 = false, .phys_bits = 48, .frames = fa};
    cr_assert_eq(a64pt_init(&m, &ok), MM_OK);
    cr_assert_eq(m.levels, 4);
    cr_assert_eq(a64pt_init(NULL, &ok), MM_ERR_INVALID);
    cr_assert_eq(a64pt_init(&m, NULL), MM_ERR_INVALID);
    a64pt_config_t c = ok;
    c.va_bits = 39;
    cr_assert_eq(a64pt_init(&m, &c), MM_ERR_INVALID);
    c = ok;
    c.va_bits = 52;
    cr_assert_eq(a64pt_init(&m, &c), MM_ERR_INVALID, "52-bit VA needs LPA2");
    c.lpa2 = true;
    cr_assert_eq(a64pt_init(&m, &c), MM_OK);
    cr_assert_eq(m.levels, 5);
    cr_assert_eq(m.root_entries, 16);
    c = ok;
    c.phys_bits = 52;
    cr_assert_eq(a64pt_init(&m, &c), MM_ERR_INVALID, "52-bit PA needs LPA2");
    c.phys_bits = 31;
    cr_assert_eq(a64pt_init(&m, &c), MM_ERR_INVALID);
    c = ok;
    c.frames.alloc = NULL;
    cr_assert_eq(a64pt_init(&m, &c), MM_ERR_INVALID);
    c = ok;
    c.frames.free = NULL;
    cr_assert_eq(a64pt_init(&m, &c), MM_ERR_INVALID);
}

Test(a64_errors, bad_root_size_batch_and_pointers)
{
    env_setup(48, false, 40);
    populate();
    mm_translation_t tr;
    mm_paddr_t r;
    mm_paddr_t bad_roots[] = {E.root + 8, 1ull << 41, SIM_BYTES + KB4};
    for (unsigned i = 0; i < 3; i++) {
        mm_paddr_t b = bad_roots[i];
        EXPECT_UNCHANGED(a64pt_map(&E.m, b, UVA, 0, MM_PAGE_4K, 0, &E.tlb), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_unmap(&E.m, b, UVA, MM_PAGE_4K, NULL, &E.tlb), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_protect(&E.m, b, UVA, MM_PAGE_4K, 0, &E.tlb), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_translate(&E.m, b, UVA, &tr), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_map_range(&E.m, b, UVA, 0, KB4, 0, &E.tlb), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_unmap_range(&E.m, b, UVA, KB4, 0, NULL, NULL, &E.tlb),
                         MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_protect_range(&E.m, b, UVA, KB4, 0, 0, &E.tlb), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_root_create(&E.m, b, &r), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_prepopulate_top(&E.m, b, KVA, KB4), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_audit(&E.m, b, NULL, NULL, NULL), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_check(&E.m, b, NULL), MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_dump_buf(&E.m, b, NULL, 0, NULL), MM_ERR_INVALID);
    }
    mm_page_size_t bad_size = (mm_page_size_t)13;
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, UVA, 0, bad_size, 0, &E.tlb), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_unmap(&E.m, E.root, UVA, bad_size, NULL, &E.tlb), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_protect(&E.m, E.root, UVA, bad_size, 0, &E.tlb), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, UVA + 8 * GB1, 0, MM_PAGE_4K, 0, NULL),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_unmap(&E.m, E.root, UVA, MM_PAGE_4K, NULL, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_protect(&E.m, E.root, UVA, MM_PAGE_4K, 0, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_translate(&E.m, E.root, UVA, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_translate(NULL, E.root, UVA, &tr), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, UVA, 0, KB4, 0, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, UVA, 0, 0, 0, &E.tlb), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_unmap_range(&E.m, E.root, UVA, KB4, 2, NULL, NULL, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_protect_range(&E.m, E.root, UVA, KB4, 0, 2, &E.tlb), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_root_create(NULL, 0, &r), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_root_create(&E.m, 0, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_walk(&E.m, E.root, 10, 9, (a64pt_leaf_fn)NULL, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_walk(&E.m, E.root, 0, 9, NULL, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_dump(&E.m, E.root, NULL, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_dump_buf(&E.m, E.root, NULL, 5, NULL), MM_ERR_INVALID);
}

Test(a64_errors, flags)
{
    env_setup(48, false, 48);
    populate();
    static const mm_map_flags_t bad[] = {
        1u << 7,                                     /* unknown bit */
        5u << MM_MAP_MEM_SHIFT,                      /* unknown memory types */
        7u << MM_MAP_MEM_SHIFT | MM_MAP_WRITE,
        MM_MAP_USER | MM_MAP_GLOBAL,                 /* global user page */
        MM_MAP_DEVICE | MM_MAP_EXEC,                 /* executable device memory */
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, UVA + 8 * GB1, 0, MM_PAGE_4K, bad[i], &E.tlb),
                         MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_protect(&E.m, E.root, UVA, MM_PAGE_4K, bad[i], &E.tlb),
                         MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, UVA + 8 * GB1, 0, KB4, bad[i], &E.tlb),
                         MM_ERR_INVALID);
        EXPECT_UNCHANGED(a64pt_protect_range(&E.m, E.root, UVA, KB4, bad[i], 0, &E.tlb),
                         MM_ERR_INVALID);
    }
    /* A user page in the kernel half. */
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, KVA + KB4, 0, MM_PAGE_4K, MM_MAP_USER, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(a64pt_protect(&E.m, E.root, KVA, MM_PAGE_4K, MM_MAP_USER, &E.tlb),
                     MM_ERR_INVALID);
}

Test(a64_errors, canonical_alignment_and_range)
{
    env_setup(48, false, 40);
    populate();
    mm_vaddr_t bad = 0x0000800000000000ull;
    mm_translation_t tr;
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, bad, 0, MM_PAGE_4K, 0, &E.tlb), MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(a64pt_unmap(&E.m, E.root, bad, MM_PAGE_4K, NULL, &E.tlb),
                     MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(a64pt_protect(&E.m, E.root, bad, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(a64pt_translate(&E.m, E.root, bad, &tr), MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, bad, 0, KB4, 0, &E.tlb), MM_ERR_NOT_CANONICAL);
    /* A range leaving its half, or wrapping. */
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, bad - KB4, 0, 2 * KB4, 0, &E.tlb),
                     MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(a64pt_unmap_range(&E.m, E.root, UINT64_MAX - KB4 + 1, 2 * KB4, 0, NULL,
                                       NULL, &E.tlb),
                     MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(a64pt_prepopulate_top(&E.m, E.root, bad - KB4, 2 * KB4),
                     MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(a64pt_prepopulate_top(&E.m, E.root, KVA, 0), MM_OK);

    mm_vaddr_t va = UVA + 8 * GB1;
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, va + 8, 0, MM_PAGE_4K, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, va, 0x800, MM_PAGE_4K, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, va, KB4, MM_PAGE_2M, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, va, MB2, MM_PAGE_1G, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(a64pt_unmap(&E.m, E.root, UVA + MB2 + KB4, MM_PAGE_2M, NULL, &E.tlb),
                     MM_ERR_ALIGN);
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, va + 1, 0, KB4, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, va, 0, KB4 + 1, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, va, 0x10, KB4, 0, &E.tlb), MM_ERR_ALIGN);
    /* Physical addresses beyond 2^phys_bits (40 here). */
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, va, 1ull << 40, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_RANGE);
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, va, (1ull << 40) - KB4, 2 * KB4, 0, &E.tlb),
                     MM_ERR_RANGE);
}

Test(a64_errors, mapped_unmapped_and_sizes)
{
    env_setup(48, false, 48);
    populate();
    mm_translation_t tr;
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, UVA, 0, MM_PAGE_4K, 0, &E.tlb), MM_ERR_EXISTS);
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, UVA + MB2 + KB4, 0, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_EXISTS);
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, UVA, 0, MM_PAGE_2M, 0, &E.tlb), MM_ERR_EXISTS);
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, UVA, 0, MM_PAGE_1G, 0, &E.tlb), MM_ERR_EXISTS);
    EXPECT_UNCHANGED(a64pt_unmap(&E.m, E.root, UVA + KB4, MM_PAGE_4K, NULL, &E.tlb),
                     MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(a64pt_unmap(&E.m, E.root, UVA + 4 * GB1, MM_PAGE_1G, NULL, &E.tlb),
                     MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(a64pt_protect(&E.m, E.root, UVA + KB4, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(a64pt_translate(&E.m, E.root, UVA + KB4, &tr), MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(a64pt_translate(&E.m, E.root, KVA + GB1, &tr), MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(a64pt_unmap(&E.m, E.root, UVA, MM_PAGE_2M, NULL, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    EXPECT_UNCHANGED(a64pt_unmap(&E.m, E.root, UVA + MB2, MM_PAGE_4K, NULL, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    EXPECT_UNCHANGED(a64pt_protect(&E.m, E.root, UVA + GB1, MM_PAGE_2M, 0, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    EXPECT_UNCHANGED(a64pt_protect_range(&E.m, E.root, UVA + MB2, KB4, 0, 0, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
}

Test(a64_errors, out_of_memory)
{
    env_setup(48, false, 48);
    populate();
    E.pool.fail_countdown = 1;
    E.pool.fail_sticky = true;
    mm_paddr_t r;
    EXPECT_UNCHANGED(a64pt_map(&E.m, E.root, UVA + 8 * GB1, 0, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_NOMEM);
    EXPECT_UNCHANGED(a64pt_map_range(&E.m, E.root, UVA + 8 * GB1, 0, KB4, 0, &E.tlb),
                     MM_ERR_NOMEM);
    EXPECT_UNCHANGED(a64pt_root_create(&E.m, E.root, &r), MM_ERR_NOMEM);
    EXPECT_UNCHANGED(a64pt_prepopulate_top(&E.m, E.root, UVA + (8ull << 39), KB4), MM_ERR_NOMEM);
}

Test(a64_errors, dump_truncation)
{
    env_setup(48, false, 48);
    populate();
    char buf[8];
    size_t len = 0;
    cr_assert_eq(a64pt_dump_buf(&E.m, E.root, buf, sizeof buf, &len), MM_ERR_FULL);
    cr_assert_gt(len, sizeof buf);
    cr_assert_eq(a64pt_dump_buf(&E.m, E.root, NULL, 0, &len), MM_ERR_FULL);
}
