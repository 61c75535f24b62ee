/* Behaviour of single-page operations: TLB records, table lifetime,
 * empty-table replacement, 5-level paging, the generic interface. */
#include <criterion/criterion.h>

#include "paging_test.h"

#define UVA 0x0000004000000000ull
#define KVA 0xffffc00000000000ull

Test(paging_map, sixteen_page_unmap_is_one_flush_call)
{
    env_setup(4, true, true);
    for (unsigned i = 0; i < 16; i++)
        cr_assert_eq(x86pt_map(&E.m, E.root, KVA + i * KB4, 0x100000 + i * KB4, MM_PAGE_4K,
                               MM_MAP_WRITE, &E.tlb),
                     MM_OK);
    cr_assert(mm_tlb_batch_empty(&E.tlb));
    for (unsigned i = 0; i < 16; i++)
        cr_assert_eq(x86pt_unmap(&E.m, E.root, KVA + i * KB4, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    cr_assert_eq(E.tlb.count, 16);
    for (unsigned i = 0; i < 16; i++)
        cr_assert_eq(E.tlb.pages[i], KVA + i * KB4);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(test_tlb.page_calls, 1);
    cr_assert_eq(test_tlb.pages_flushed, 16);
    cr_assert_eq(test_tlb.all_calls, 0);
    assert_consistent(E.root, 0);
}

Test(paging_map, global_pages_mark_the_batch_global)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_map(&E.m, E.root, KVA, 0, MM_PAGE_2M, MM_MAP_GLOBAL, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, KVA + MB2, 0, MM_PAGE_2M, 0, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_protect(&E.m, E.root, KVA + MB2, MM_PAGE_2M, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert_not(E.tlb.global);
    cr_assert_eq(x86pt_protect(&E.m, E.root, KVA, MM_PAGE_2M, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert(E.tlb.global, "the old entry was global: a CR3 reload would not drop it");
    mm_tlb_batch_init(&E.tlb);
    /* Protect to identical flags changes nothing and records nothing. */
    cr_assert_eq(x86pt_protect(&E.m, E.root, KVA, MM_PAGE_2M, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert(mm_tlb_batch_empty(&E.tlb));
    cr_assert_eq(x86pt_map(&E.m, E.root, KVA + GB1, 0, MM_PAGE_4K, MM_MAP_GLOBAL, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, KVA + GB1, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    cr_assert(E.tlb.global);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(test_tlb.page_calls, 1);
}

Test(paging_map, tables_are_freed_as_they_empty_and_reused_paths_stay)
{
    env_setup(4, true, true);
    size_t base = E.pool.live;
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    cr_assert_eq(E.pool.live, base + 3);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA + 511 * KB4, 0, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA + MB2, 0, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    cr_assert_eq(E.pool.live, base + 4);
    /* Count bits 52..61 of the PDE hold the PT's present entries. */
    uint64_t pde = *raw_slot(E.root, 4, UVA, 2);
    cr_assert_eq((pde >> 52) & 0x3ff, 2);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(E.pool.live, base + 4);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA + 511 * KB4, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    cr_assert_eq(raw_slot(E.root, 4, UVA, 2)[0] & B_P, 0, "the emptied PT is unlinked at once");
    cr_assert_eq(E.pool.live, base + 4, "...but freed only by the flush");
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(E.pool.live, base + 3, "the first PT became empty and must go");
    assert_consistent(E.root, 0);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA + MB2, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(E.pool.live, base, "PT, PD and PDPT all emptied");
    assert_consistent(E.root, 0);
}

Test(paging_map, full_table_counts_to_512)
{
    env_setup(4, true, true);
    for (unsigned i = 0; i < 512; i++)
        cr_assert_eq(x86pt_map(&E.m, E.root, UVA + i * KB4, i * KB4, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    cr_assert_eq((*raw_slot(E.root, 4, UVA, 2) >> 52) & 0x3ff, 512);
    assert_consistent(E.root, 0);
    for (unsigned i = 0; i < 512; i++)
        cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA + i * KB4, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    cr_assert(E.tlb.flush_all, "512 pages overflow the page list");
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(test_tlb.all_calls, 1);
    cr_assert_eq(E.pool.live, 1);
}

/* A present table with nothing in it (only external edits make one). */
static mm_paddr_t plant_empty_table(mm_vaddr_t va, unsigned level)
{
    /* Build the path with a real mapping, then remove the leaf behind the
     * mapper's back and fix the count, leaving an empty table at `level`. */
    cr_assert_eq(x86pt_map(&E.m, E.root, va, 0, level == 1 ? MM_PAGE_4K : MM_PAGE_2M, 0, &E.tlb),
                 MM_OK);
    uint64_t *leaf = raw_slot(E.root, 4, va, level);
    uint64_t *parent = raw_slot(E.root, 4, va, level + 1);
    *leaf = 0;
    *parent &= ~(0x3ffull << 52);
    return *parent & 0x000ffffffffff000ull;
}

Test(paging_map, huge_page_replaces_an_empty_table)
{
    env_setup(4, true, true);
    mm_paddr_t pt = plant_empty_table(UVA, 1);
    size_t live = E.pool.live;
    mm_tlb_batch_init(&E.tlb);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x400000, MM_PAGE_2M, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert(frame_pool_is_allocated(&E.pool, pt), "a CPU may still cache the old table");
    cr_assert_eq(E.tlb.count, 1, "cached pointers to the old table must go");
    cr_assert_eq(E.tlb.pages[0], UVA);
    cr_assert_eq(E.tlb.deferred_count, 1);
    cr_assert_eq(E.tlb.deferred[0].frame, pt);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_not(frame_pool_is_allocated(&E.pool, pt), "the empty table was freed");
    cr_assert_eq(E.pool.live, live - 1);
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, UVA + 0x1234, &tr), MM_OK);
    cr_assert_eq(tr.pa, 0x401234);
    assert_consistent(E.root, 0);

    mm_paddr_t pd = plant_empty_table(UVA + GB1, 2);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA + GB1, 0, MM_PAGE_1G, 0, &E.tlb), MM_OK);
    cr_assert(frame_pool_is_allocated(&E.pool, pd));
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_not(frame_pool_is_allocated(&E.pool, pd));
    assert_consistent(E.root, 0);
}

Test(paging_map, five_level_addresses)
{
    env_setup(5, true, true);
    const mm_vaddr_t kva = 0xff00000000000000ull;  /* kernel half, needs LA57 */
    const mm_vaddr_t uva = 0x0001000000000000ull;  /* 2^48: above 4-level's reach */
    const mm_vaddr_t utop = 0x00fffffffffff000ull; /* last user page */
    cr_assert_eq(x86pt_map(&E.m, E.root, kva, 0x200000, MM_PAGE_2M, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, uva, 0x1000, MM_PAGE_4K, MM_MAP_USER, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, utop, 0x2000, MM_PAGE_4K, MM_MAP_USER, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, 0x0100000000000000ull, 0, MM_PAGE_4K, 0, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    unsigned level;
    uint64_t ent[6];
    uint64_t e = raw_leaf(E.root, 5, kva, &level, ent);
    cr_assert_eq(level, 2);
    cr_assert_eq(e & 0x000ffffffffff000ull & ~B_PATHUGE, 0x200000);
    cr_assert_eq((kva >> 48) & 511, 0x100, "PML5 index 256: first kernel entry");
    cr_assert_neq(ent[5] & B_P, 0);
    e = raw_leaf(E.root, 5, uva, &level, ent);
    cr_assert_eq(level, 1);
    cr_assert_eq(e & 0x000ffffffffff000ull, 0x1000);
    cr_assert_eq(ent[5] & 0xfff, B_P | B_RW | B_US);
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, utop + 0xfff, &tr), MM_OK);
    cr_assert_eq(tr.pa, 0x2fff);
    cr_assert_eq(tr.flags, MM_MAP_USER);
    assert_consistent(E.root, 0);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, uva, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, utop, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, kva, MM_PAGE_2M, NULL, &E.tlb), MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    x86pt_check_info_t info;
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_OK);
    cr_assert_eq(info.user_tables, 0);
    cr_assert_eq(info.kernel_tables, 1, "the kernel-half PML4 is pinned");
    assert_consistent(E.root, 0);
}

Test(paging_map, four_level_rejects_five_level_addresses)
{
    env_setup(4, true, true);
    mm_translation_t tr;
    cr_assert_eq(x86pt_map(&E.m, E.root, 0xff00000000000000ull, 0, MM_PAGE_4K, 0, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(x86pt_map(&E.m, E.root, 0x0001000000000000ull, 0, MM_PAGE_4K, 0, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(x86pt_translate(&E.m, E.root, 0x0001000000000000ull, &tr), MM_ERR_NOT_CANONICAL);
    cr_assert_eq(E.pool.live, 1);
}

Test(paging_map, through_the_generic_interface)
{
    env_setup(4, true, true);
    const mm_page_mapper_t *pm = &E.pm;
    cr_assert_eq(mm_pm_map(pm, E.root, KVA, 0x7000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb), MM_OK);
    mm_translation_t tr;
    cr_assert_eq(mm_pm_translate(pm, E.root, KVA + 0x10, &tr), MM_OK);
    cr_assert_eq(tr.pa, 0x7010);
    cr_assert_eq(mm_pm_protect(pm, E.root, KVA, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    mm_paddr_t pa = 0;
    cr_assert_eq(mm_pm_unmap(pm, E.root, KVA, MM_PAGE_4K, &pa, &E.tlb), MM_OK);
    cr_assert_eq(pa, 0x7000);
    cr_assert_eq(E.tlb.deferred_count, 2, "the kernel PT and PD, not the pinned PDPT");
    mm_tlb_batch_flush(&E.tlb);
    mm_paddr_t user;
    cr_assert_eq(pm->ops->prepopulate_top(pm->ctx, E.root, KVA, GB1), MM_OK);
    cr_assert_eq(pm->ops->root_create(pm->ctx, E.root, &user), MM_OK);
    cr_assert_eq(mm_pm_map(pm, user, UVA, 0x8000, MM_PAGE_4K, MM_MAP_USER, &E.tlb), MM_OK);
    pm->ops->root_destroy(pm->ctx, user, NULL, NULL);
    assert_consistent(E.root, 0);
}

/* Table frames and the TLB batch: an unlinked table must not reach the
 * allocator (and so a new owner, perhaps on another CPU) while a
 * paging-structure cache may still point at it, i.e. before the flush. The
 * mapper gets an allocator that logs every free together with the number of
 * TLB-hook calls made before it. */

typedef struct free_log {
    size_t n;
    mm_paddr_t frame[64];
    int hook_calls[64]; /* TLB-hook calls made before this free */
} free_log_t;

static free_log_t flog;

static mm_status_t logged_alloc(void *ctx, size_t count, size_t align, mm_paddr_t limit,
                                mm_paddr_t *out)
{
    return frame_pool_alloc(ctx, count, align, limit, out);
}

static mm_status_t logged_free(void *ctx, mm_paddr_t base, size_t count)
{
    cr_assert_lt(flog.n, 64);
    flog.frame[flog.n] = base;
    flog.hook_calls[flog.n] = test_tlb.page_calls + test_tlb.all_calls;
    flog.n++;
    return frame_pool_free(ctx, base, count);
}

static void env_setup_logged(void)
{
    env_setup(4, true, true);
    x86pt_config_t c = {.levels = 4, .phys_bits = PHYS_BITS, .nx = true, .pages_1g = true,
                        .frames = {&E.pool, logged_alloc, logged_free}};
    cr_assert_eq(x86pt_init(&E.m, &c), MM_OK);
}

static mm_paddr_t table_below(mm_vaddr_t va, unsigned level)
{
    uint64_t *slot = raw_slot(E.root, 4, va, level);
    cr_assert_not_null(slot);
    cr_assert_neq(*slot & B_P, 0);
    return *slot & 0x000ffffffffff000ull;
}

static bool frame_all_zero(mm_paddr_t pa)
{
    const uint64_t *t = (const uint64_t *)(sim_phys_base() + pa);
    for (unsigned i = 0; i < 512; i++)
        if (t[i] != 0)
            return false;
    return true;
}

Test(paging_map, emptied_tables_reach_the_allocator_only_after_the_flush)
{
    env_setup_logged();
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x5000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb), MM_OK);
    mm_paddr_t pdpt = table_below(UVA, 4), pd = table_below(UVA, 3), pt = table_below(UVA, 2);
    cr_assert(mm_tlb_batch_empty(&E.tlb));
    size_t live = E.pool.live;

    cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    cr_assert_eq(*raw_slot(E.root, 4, UVA, 4), 0, "the path is unlinked at once");
    cr_assert_eq(flog.n, 0, "no table is freed before the flush");
    cr_assert_eq(E.pool.live, live);
    cr_assert(frame_pool_is_allocated(&E.pool, pt) && frame_pool_is_allocated(&E.pool, pd) &&
              frame_pool_is_allocated(&E.pool, pdpt));
    /* A stale walk until the flush must see only non-present entries: the
     * frames are not written after the unlink (no list threaded through). */
    cr_assert(frame_all_zero(pt) && frame_all_zero(pd) && frame_all_zero(pdpt));
    cr_assert_not(mm_tlb_batch_empty(&E.tlb));
    cr_assert_eq(E.tlb.count, 1);
    cr_assert_eq(E.tlb.pages[0], UVA, "the address covering the tables is recorded");
    cr_assert_eq(E.tlb.deferred_count, 3);
    cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls, 0);

    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(test_tlb.page_calls, 1, "one hook call");
    cr_assert_eq(test_tlb.all_calls, 0);
    cr_assert_eq(test_tlb.last_pages[0], UVA);
    cr_assert_eq(flog.n, 3);
    cr_assert_eq(flog.frame[0], pt, "bottom-up: PT, PD, PDPT");
    cr_assert_eq(flog.frame[1], pd);
    cr_assert_eq(flog.frame[2], pdpt);
    for (size_t i = 0; i < flog.n; i++)
        cr_assert_eq(flog.hook_calls[i], 1, "free %zu came before the invalidation", i);
    cr_assert_eq(E.pool.live, live - 3);
    cr_assert(mm_tlb_batch_empty(&E.tlb));
    assert_consistent(E.root, 0);
}

Test(paging_map, unmap_range_tables_also_wait_for_the_flush)
{
    env_setup_logged();
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA, 0x200000, MB2 + 4 * KB4, MM_MAP_WRITE,
                                 &E.tlb),
                 MM_OK);
    size_t live = E.pool.live;
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA, MB2 + 4 * KB4, 0, NULL, NULL, &E.tlb),
                 MM_OK);
    cr_assert_eq(flog.n, 0);
    cr_assert_eq(E.tlb.deferred_count, 3, "PT, PD and PDPT");
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(flog.n, 3);
    for (size_t i = 0; i < flog.n; i++)
        cr_assert_eq(flog.hook_calls[i], 1);
    cr_assert_eq(E.pool.live, live - 3);
    assert_consistent(E.root, 0);
}

Test(paging_map, many_emptied_tables_flush_early_inside_the_change)
{
    env_setup_logged();
    /* One 4 KiB page in each of 20 PTs under one PD: unmapping all of them
     * with one batch empties 20 PTs, the PD and the PDPT. */
    const unsigned n = 20;
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(x86pt_map(&E.m, E.root, UVA + i * MB2, i * KB4, MM_PAGE_4K, 0, &E.tlb),
                     MM_OK);
    size_t live = E.pool.live;
    for (unsigned i = 0; i < n; i++) {
        cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA + i * MB2, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
        if (i < MM_TLB_BATCH_DEFER_MAX)
            cr_assert_eq(flog.n, 0, "unmap %u: the list is not full yet", i);
    }
    /* The 17th PT found the list full: one early hook call for the 17
     * pages recorded so far, then the 16 frees, all inside that unmap. */
    cr_assert_eq(flog.n, MM_TLB_BATCH_DEFER_MAX);
    for (size_t i = 0; i < flog.n; i++)
        cr_assert_eq(flog.hook_calls[i], 1, "free %zu before the early invalidation", i);
    cr_assert_eq(test_tlb.page_calls, 1);
    cr_assert_eq(test_tlb.last_count, MM_TLB_BATCH_DEFER_MAX + 1);
    cr_assert_eq(E.tlb.deferred_count, n + 2 - MM_TLB_BATCH_DEFER_MAX);
    cr_assert_eq(E.tlb.count, n, "page records survive the early flush");

    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(test_tlb.page_calls, 2);
    cr_assert_eq(test_tlb.last_count, n);
    cr_assert_eq(flog.n, n + 2);
    for (size_t i = MM_TLB_BATCH_DEFER_MAX; i < flog.n; i++)
        cr_assert_eq(flog.hook_calls[i], 2, "free %zu before the final invalidation", i);
    cr_assert_eq(E.pool.live, live - (n + 2));
    assert_consistent(E.root, 0);
}
