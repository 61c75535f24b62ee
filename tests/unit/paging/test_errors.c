/* Every caller mistake and resource failure leaves the tables, their counts
 * and the frame pool exactly as before. */
#include <criterion/criterion.h>

#include "paging_test.h"

#define UVA 0x0000004000000000ull
#define KVA 0xffffc00000000000ull

/* A populated hierarchy so the error paths have something to damage. */
static void populate(void)
{
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x100000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA + MB2, 0x200000, MM_PAGE_2M, MM_MAP_USER, &E.tlb),
                 MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA + GB1, 0x40000000, MM_PAGE_1G, 0, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, KVA, 0x300000, MM_PAGE_4K, MM_MAP_GLOBAL, &E.tlb), MM_OK);
    mm_tlb_batch_init(&E.tlb);
}

#define EXPECT_UNCHANGED(call, status)                                                             \
    do {                                                                                           \
        snapshot_t *s_ = snap_take(E.root, E.m.levels);                                           \
        mm_status_t st_ = (call);                                                                  \
        cr_assert_eq(st_, (status), "%s: got %s", #call, mm_status_str(st_));                      \
        snap_assert_same(s_, E.root, E.m.levels, #call);                                          \
        cr_assert(mm_tlb_batch_empty(&E.tlb), "%s recorded a flush", #call);                       \
    } while (0)

Test(paging_errors, not_canonical)
{
    env_setup(4, true, true);
    populate();
    mm_vaddr_t bad = 0x0000800000000000ull;
    mm_paddr_t pa;
    mm_translation_t tr;
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, bad, 0, MM_PAGE_4K, 0, &E.tlb), MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, 0xffff7ffffffff000ull, 0, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, bad, MM_PAGE_4K, &pa, &E.tlb),
                     MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(x86pt_protect(&E.m, E.root, bad, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_NOT_CANONICAL);
    EXPECT_UNCHANGED(x86pt_translate(&E.m, E.root, bad, &tr), MM_ERR_NOT_CANONICAL);
}

Test(paging_errors, misaligned)
{
    env_setup(4, true, true);
    populate();
    mm_vaddr_t va = UVA + 8 * GB1;
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va + 8, 0, MM_PAGE_4K, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 0x800, MM_PAGE_4K, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va + KB4, 0, MM_PAGE_2M, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, KB4, MM_PAGE_2M, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va + MB2, 0, MM_PAGE_1G, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, MB2, MM_PAGE_1G, 0, &E.tlb), MM_ERR_ALIGN);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA + MB2 + KB4, MM_PAGE_2M, NULL, &E.tlb),
                     MM_ERR_ALIGN);
    EXPECT_UNCHANGED(x86pt_protect(&E.m, E.root, UVA + 1, MM_PAGE_4K, 0, &E.tlb), MM_ERR_ALIGN);
}

Test(paging_errors, physical_address_beyond_width)
{
    env_setup(4, true, true);
    populate();
    mm_vaddr_t va = UVA + 8 * GB1;
    mm_paddr_t top = 1ull << PHYS_BITS;
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, top, MM_PAGE_4K, 0, &E.tlb), MM_ERR_RANGE);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, top, MM_PAGE_2M, 0, &E.tlb), MM_ERR_RANGE);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 1ull << 51, MM_PAGE_1G, 0, &E.tlb),
                     MM_ERR_RANGE);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 0xfffffffffffff000ull, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_RANGE);
    /* The last frame of each size just below the width is fine. */
    cr_assert_eq(x86pt_map(&E.m, E.root, va, top - KB4, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, va + MB2, top - MB2, MM_PAGE_2M, 0, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, va + GB1, top - GB1, MM_PAGE_1G, 0, &E.tlb), MM_OK);
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, va + GB1 + 5, &tr), MM_OK);
    cr_assert_eq(tr.pa, top - GB1 + 5);
    assert_consistent(E.root, 0);
}

Test(paging_errors, already_mapped_in_every_shape)
{
    env_setup(4, true, true);
    populate();
    /* Same page twice, for each size. */
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA, 0x900000, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_EXISTS);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA + MB2, 0x800000, MM_PAGE_2M, 0, &E.tlb),
                     MM_ERR_EXISTS);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA + GB1, 0, MM_PAGE_1G, 0, &E.tlb),
                     MM_ERR_EXISTS);
    /* Smaller inside larger: the walk must stop at the huge entry instead of
     * reading its frame as a table. */
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA + MB2 + 5 * KB4, 0, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_EXISTS);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA + GB1 + 7 * KB4, 0, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_EXISTS);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA + GB1 + 9 * MB2, 0, MM_PAGE_2M, 0, &E.tlb),
                     MM_ERR_EXISTS);
    /* Larger over a table with mappings under it. */
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA, 0, MM_PAGE_2M, 0, &E.tlb), MM_ERR_EXISTS);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA, 0, MM_PAGE_1G, 0, &E.tlb), MM_ERR_EXISTS);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, KVA, 0, MM_PAGE_1G, 0, &E.tlb), MM_ERR_EXISTS);
    assert_consistent(E.root, 0);
}

Test(paging_errors, not_mapped_and_size_mismatch)
{
    env_setup(4, true, true);
    populate();
    mm_paddr_t pa = 0x77;
    mm_vaddr_t far = UVA + 100 * GB1;
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, far, MM_PAGE_4K, &pa, &E.tlb), MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA + KB4, MM_PAGE_4K, &pa, &E.tlb),
                     MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA + 4 * MB2, MM_PAGE_2M, &pa, &E.tlb),
                     MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(x86pt_protect(&E.m, E.root, far, MM_PAGE_1G, 0, &E.tlb), MM_ERR_NOT_MAPPED);
    /* Wrong size in both directions. */
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA, MM_PAGE_2M, &pa, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA + MB2, MM_PAGE_4K, &pa, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA + MB2, MM_PAGE_1G, &pa, &E.tlb),
                     MM_ERR_ALIGN);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA, MM_PAGE_1G, &pa, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA + GB1, MM_PAGE_2M, &pa, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA + GB1 + 3 * KB4, MM_PAGE_4K, &pa, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    EXPECT_UNCHANGED(x86pt_protect(&E.m, E.root, UVA + MB2, MM_PAGE_4K, 0, &E.tlb),
                     MM_ERR_SIZE_MISMATCH);
    cr_assert_eq(pa, 0x77, "pa_out untouched on error");
    mm_translation_t tr;
    EXPECT_UNCHANGED(x86pt_translate(&E.m, E.root, far, &tr), MM_ERR_NOT_MAPPED);
    EXPECT_UNCHANGED(x86pt_translate(&E.m, E.root, UVA + KB4, &tr), MM_ERR_NOT_MAPPED);
}

Test(paging_errors, invalid_arguments)
{
    env_setup(4, true, true);
    populate();
    mm_vaddr_t va = UVA + 8 * GB1;
    mm_translation_t tr;
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 0, MM_PAGE_4K, 1u << 7, &E.tlb), MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 0, MM_PAGE_4K, 0x80000000u, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(
        x86pt_map(&E.m, E.root, va, 0, MM_PAGE_4K, MM_MAP_DEVICE | MM_MAP_WRITE_COMBINING, &E.tlb),
        MM_ERR_INVALID);
    EXPECT_UNCHANGED(
        x86pt_map(&E.m, E.root, va, 0, MM_PAGE_4K, MM_MAP_DEVICE | MM_MAP_WRITE_THROUGH, &E.tlb),
        MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 0, MM_PAGE_4K, 7u << MM_MAP_MEM_SHIFT, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, KVA + GB1, 0, MM_PAGE_4K, MM_MAP_USER, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_protect(&E.m, E.root, KVA, MM_PAGE_4K, MM_MAP_USER, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_protect(&E.m, E.root, UVA, MM_PAGE_4K, 1u << 9, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 0, (mm_page_size_t)13, 0, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, va, (mm_page_size_t)22, NULL, &E.tlb),
                     MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 0, MM_PAGE_4K, 0, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_unmap(&E.m, E.root, UVA, MM_PAGE_4K, NULL, NULL), MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_protect(&E.m, E.root, UVA, MM_PAGE_4K, 0, NULL), MM_ERR_INVALID);
    /* Roots that are not a reachable frame. */
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root + 8, va, 0, MM_PAGE_4K, 0, &E.tlb), MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_map(&E.m, SIM_BYTES, va, 0, MM_PAGE_4K, 0, &E.tlb), MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_translate(&E.m, E.root + 1, va, &tr), MM_ERR_INVALID);
    EXPECT_UNCHANGED(x86pt_translate(&E.m, E.root, va, NULL), MM_ERR_INVALID);
    mm_paddr_t r = 5;
    EXPECT_UNCHANGED(x86pt_root_create(&E.m, E.root + 16, &r), MM_ERR_INVALID);
    cr_assert_eq(r, 5);
}

Test(paging_errors, unsupported_1g_pages)
{
    env_setup(4, true, false);
    EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, UVA, 0, MM_PAGE_1G, 0, &E.tlb), MM_ERR_UNSUPPORTED);
    /* Range mapping falls back to 2 MiB pages on such CPUs. */
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA, 0, GB1, MM_MAP_WRITE, &E.tlb), MM_OK);
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, UVA + GB1 - 1, &tr), MM_OK);
    cr_assert_eq(tr.size, MM_PAGE_2M);
    assert_consistent(E.root, 0);
}

/* Out of memory at each table allocation of a new path: nothing built,
 * nothing leaked; then the same call succeeds. */
static void oom_at_each_table(unsigned levels, mm_vaddr_t va, mm_page_size_t size,
                              unsigned tables)
{
    for (unsigned k = 1; k <= tables; k++) {
        frame_pool_fail_at(&E.pool, k, false);
        EXPECT_UNCHANGED(x86pt_map(&E.m, E.root, va, 0, size, MM_MAP_USER, &E.tlb),
                         MM_ERR_NOMEM);
        frame_pool_fail_at(&E.pool, 0, false);
    }
    uint64_t before = E.pool.frames_allocated;
    cr_assert_eq(x86pt_map(&E.m, E.root, va, 0x40000000, size, MM_MAP_USER, &E.tlb), MM_OK);
    cr_assert_eq(E.pool.frames_allocated - before, tables);
    assert_consistent(E.root, 0);
    cr_assert_eq(E.m.levels, levels);
}

Test(paging_errors, out_of_memory_4level)
{
    env_setup(4, true, true);
    populate();
    oom_at_each_table(4, UVA + 3 * 512 * GB1, MM_PAGE_4K, 3);
    oom_at_each_table(4, UVA + 4 * 512 * GB1, MM_PAGE_2M, 2);
    oom_at_each_table(4, UVA + 5 * 512 * GB1, MM_PAGE_1G, 1);
    /* Sharing the PDPT: only PD and PT are needed. */
    oom_at_each_table(4, UVA + 20 * GB1, MM_PAGE_4K, 2);
}

Test(paging_errors, out_of_memory_5level)
{
    env_setup(5, true, true);
    oom_at_each_table(5, 0x0080000000000000ull, MM_PAGE_4K, 4);
    oom_at_each_table(5, 0x0040000000000000ull, MM_PAGE_1G, 2);
}

Test(paging_errors, out_of_memory_root_and_prepopulate)
{
    env_setup(4, true, true);
    mm_paddr_t r = 3;
    frame_pool_fail_at(&E.pool, 1, false);
    EXPECT_UNCHANGED(x86pt_root_create(&E.m, E.root, &r), MM_ERR_NOMEM);
    cr_assert_eq(r, 3);
    for (unsigned k = 1; k <= 4; k++) {
        frame_pool_fail_at(&E.pool, k, false);
        EXPECT_UNCHANGED(x86pt_prepopulate_top(&E.m, E.root, KVA, 4 * 512 * GB1), MM_ERR_NOMEM);
    }
    frame_pool_fail_at(&E.pool, 0, false);
    cr_assert_eq(x86pt_prepopulate_top(&E.m, E.root, KVA, 4 * 512 * GB1), MM_OK);
    cr_assert_eq(E.pool.live, 5);
}

Test(paging_errors, nothing_leaks_when_everything_is_unmapped)
{
    env_setup(4, true, true);
    uint64_t a0 = E.pool.frames_allocated, f0 = E.pool.frames_freed;
    populate();
    mm_paddr_t pa;
    cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA, MM_PAGE_4K, &pa, &E.tlb), MM_OK);
    cr_assert_eq(pa, 0x100000);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA + MB2, MM_PAGE_2M, &pa, &E.tlb), MM_OK);
    cr_assert_eq(pa, 0x200000);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA + GB1, MM_PAGE_1G, &pa, &E.tlb), MM_OK);
    cr_assert_eq(pa, 0x40000000);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, KVA, MM_PAGE_4K, &pa, &E.tlb), MM_OK);
    cr_assert(E.tlb.global, "the kernel page was global");
    mm_tlb_batch_flush(&E.tlb);
    /* The user half is gone entirely; the kernel-half PDPT stays (shared). */
    x86pt_check_info_t info;
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_OK);
    cr_assert_eq(info.user_tables, 0);
    cr_assert_eq(info.kernel_tables, 1);
    cr_assert_eq(info.leaves, 0);
    cr_assert_eq((E.pool.frames_allocated - a0) - (E.pool.frames_freed - f0), 1);
    assert_consistent(E.root, 0);
}

#if HADRON_MM_ASSERTIONS
/* paging-x86_64.md: the mapper asserts on its own broken invariants. Two of
 * them provoked: a table's stored present-entry count at 0 when an entry is
 * removed (underflow), and the frame allocator refusing a table frame the
 * mapper frees. Each reaches mm_hook_panic as MM_REPORT_ASSERT. */
Test(paging_errors, count_underflow_is_an_assertion)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x100000, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    uint64_t one = *raw_slot(E.root, 4, UVA, 2);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA + KB4, 0x101000, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    uint64_t two = *raw_slot(E.root, 4, UVA, 2);
    uint64_t count_one = two - one; /* the PDE's count field, one unit */
    cr_assert_neq(count_one, 0, "the PDE counts the page table's entries");
    *raw_slot(E.root, 4, UVA, 2) = two - 2 * count_one; /* count 0, two present */
    bool panicked = TEST_CATCH_PANIC(
        x86pt_unmap(&E.m, E.root, UVA, MM_PAGE_4K, NULL, &E.tlb));
    cr_assert(panicked, "count underflow not asserted");
    cr_assert_eq(test_panics.last.kind, MM_REPORT_ASSERT);
    cr_assert_not_null(test_panics.last.message);
}

static mm_status_t refuse_free(void *ctx, mm_paddr_t base, size_t count)
{
    (void)ctx, (void)base, (void)count;
    return MM_ERR_DOUBLE_FREE;
}

Test(paging_errors, refused_table_free_is_an_assertion)
{
    env_setup(4, true, true);
    x86pt_t m2;
    x86pt_config_t c = {.levels = 4, .phys_bits = PHYS_BITS, .nx = true, .pages_1g = true,
                        .frames = frame_pool_allocator(&E.pool)};
    c.frames.free = refuse_free;
    cr_assert_eq(x86pt_init(&m2, &c), MM_OK);
    mm_paddr_t r;
    cr_assert_eq(x86pt_root_create(&m2, 0, &r), MM_OK);
    bool panicked = TEST_CATCH_PANIC(x86pt_root_destroy(&m2, r, NULL, NULL));
    cr_assert(panicked, "refused free not asserted");
    cr_assert_eq(test_panics.last.kind, MM_REPORT_ASSERT);
    cr_assert_str_eq(test_panics.last.message, "st == MM_OK");
}
#endif
