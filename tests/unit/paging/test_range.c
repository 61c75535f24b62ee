/* Range operations: page-size choice, all-or-nothing under every failure. */
#include <criterion/criterion.h>

#include "paging_test.h"

#define UVA 0x0000004000000000ull
#define KVA 0xffffc00000000000ull

typedef struct sizes_seen {
    size_t n[3];
    mm_vaddr_t next;
    mm_paddr_t pa_delta;
    bool contiguous;
} sizes_seen_t;

static bool count_sizes(void *arg, const x86pt_leaf_t *leaf)
{
    sizes_seen_t *s = arg;
    s->n[leaf->size == MM_PAGE_4K ? 0 : leaf->size == MM_PAGE_2M ? 1 : 2]++;
    if (s->next != 0 && leaf->va != s->next)
        s->contiguous = false;
    if (leaf->pa - leaf->va != s->pa_delta)
        s->contiguous = false;
    s->next = leaf->va + (1ull << leaf->size);
    return true;
}

static sizes_seen_t sizes_in(mm_vaddr_t va, uint64_t len, mm_paddr_t pa)
{
    sizes_seen_t s = {{0, 0, 0}, 0, pa - va, true};
    cr_assert_eq(x86pt_walk(&E.m, E.root, va, va + len - 1, count_sizes, &s), MM_OK);
    return s;
}

Test(paging_range, picks_the_largest_page_alignment_allows)
{
    env_setup(4, true, true);
    /* Starts 12 KiB below a 1 GiB boundary, ends 20 KiB past 1 GiB + 4 MiB:
     * 3 small pages up to the boundary... but 2 MiB pages need 2 MiB
     * alignment, so: 3 x 4K, 1 x 1G, 2 x 2M, 5 x 4K. */
    mm_vaddr_t va = UVA + GB1 - 3 * KB4;
    mm_paddr_t pa = 0x100000000ull - 3 * KB4;
    uint64_t len = 3 * KB4 + GB1 + 2 * MB2 + 5 * KB4;
    cr_assert_eq(x86pt_map_range(&E.m, E.root, va, pa, len, MM_MAP_WRITE, &E.tlb), MM_OK);
    sizes_seen_t s = sizes_in(va, len, pa);
    cr_assert(s.contiguous);
    cr_assert_eq(s.n[0], 8);
    cr_assert_eq(s.n[1], 2);
    cr_assert_eq(s.n[2], 1);
    assert_consistent(E.root, 0);

    /* Physical and virtual alignment disagree: only 4 KiB pages. */
    mm_vaddr_t va2 = UVA + 16 * GB1;
    cr_assert_eq(x86pt_map_range(&E.m, E.root, va2, 0x201000, 4 * MB2, 0, &E.tlb), MM_OK);
    s = sizes_in(va2, 4 * MB2, 0x201000);
    cr_assert_eq(s.n[0], 4 * 512);
    cr_assert_eq(s.n[1] + s.n[2], 0);
    assert_consistent(E.root, 0);
}

Test(paging_range, map_range_rolls_nothing_because_it_checks_first)
{
    env_setup(4, true, true);
    /* Something mapped at the very end of the range. */
    mm_vaddr_t va = UVA;
    uint64_t len = 6 * MB2 + 4 * KB4;
    cr_assert_eq(x86pt_map(&E.m, E.root, va + len - KB4, 0x9000, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    snapshot_t *s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, va, 0, len, 0, &E.tlb), MM_ERR_EXISTS);
    snap_assert_same(s, E.root, 4, "conflict at the end");
    cr_assert(mm_tlb_batch_empty(&E.tlb));
}

Test(paging_range, map_range_out_of_memory_at_every_table)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0, MM_PAGE_4K, MM_MAP_USER, &E.tlb), MM_OK);
    /* Spans two PML4 entries and many PDs/PTs: lots of tables to make. */
    mm_vaddr_t va = 0x0000008000000000ull - 3 * GB1 - 5 * MB2 - 7 * KB4;
    uint64_t len = 6 * GB1 + 11 * MB2 + 9 * KB4;
    mm_paddr_t pa = 0x1000000000ull - 3 * GB1 - 5 * MB2 - 7 * KB4;
    unsigned k;
    for (k = 1;; k++) {
        frame_pool_fail_at(&E.pool, k, false);
        snapshot_t *s = snap_take(E.root, 4);
        mm_status_t st = x86pt_map_range(&E.m, E.root, va, pa, len, MM_MAP_USER, &E.tlb);
        frame_pool_fail_at(&E.pool, 0, false);
        if (st == MM_OK) {
            snap_discard(s);
            break;
        }
        cr_assert_eq(st, MM_ERR_NOMEM);
        snap_assert_same(s, E.root, 4, "map_range oom");
        cr_assert(mm_tlb_batch_empty(&E.tlb));
    }
    cr_assert_gt(k, 5, "the range needed several tables");
    sizes_seen_t seen = sizes_in(va, len, pa);
    cr_assert(seen.contiguous);
    cr_assert_eq(seen.n[2], 6, "1 GiB pages where aligned");
    cr_assert_eq(seen.n[1], 5 + 6);
    cr_assert_eq(seen.n[0], 7 + 2);
    assert_consistent(E.root, 0);
    /* And all of it goes away again, leaving only the first page's path. */
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, va, len, 0, NULL, NULL, &E.tlb), MM_OK);
    cr_assert_eq(E.tlb.count, 26, "one record per page, any size");
    mm_tlb_batch_flush(&E.tlb);
    assert_consistent(E.root, 0);
    cr_assert_eq(E.pool.live, 4);
}

typedef struct leaf_log {
    size_t n;
    mm_vaddr_t va[64];
    mm_paddr_t pa[64];
    mm_page_size_t size[64];
} leaf_log_t;

static void log_leaf(void *arg, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                     mm_map_flags_t flags)
{
    (void)flags;
    leaf_log_t *l = arg;
    cr_assert_lt(l->n, 64);
    l->va[l->n] = va;
    l->pa[l->n] = pa;
    l->size[l->n] = size;
    l->n++;
}

Test(paging_range, unmap_range_holes_straddles_and_callback)
{
    env_setup(4, true, true);
    /* [UVA, UVA+4M): 2M page, hole of 1M, 256 4K pages. */
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x400000, MM_PAGE_2M, 0, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA + 3 * (MB2 / 2), 0x10000000, MB2 / 2, 0,
                                 &E.tlb),
                 MM_OK);
    snapshot_t *s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA, 2 * MB2, 0, NULL, NULL, &E.tlb),
                 MM_ERR_NOT_MAPPED);
    snap_assert_same(s, E.root, 4, "hole");
    s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA + KB4, 2 * MB2, X86PT_RANGE_ALLOW_HOLES,
                                   NULL, NULL, &E.tlb),
                 MM_ERR_SIZE_MISMATCH, "the 2M page sticks out at the start");
    snap_assert_same(s, E.root, 4, "straddle start");
    s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA, MB2 / 2, X86PT_RANGE_ALLOW_HOLES, NULL,
                                   NULL, &E.tlb),
                 MM_ERR_SIZE_MISMATCH, "the 2M page sticks out at the end");
    snap_assert_same(s, E.root, 4, "straddle end");
    s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, UVA, 2 * MB2, MM_MAP_WRITE, 0, &E.tlb),
                 MM_ERR_NOT_MAPPED);
    snap_assert_same(s, E.root, 4, "protect hole");
    cr_assert(mm_tlb_batch_empty(&E.tlb));

    leaf_log_t log = {0};
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA, 3 * (MB2 / 2), X86PT_RANGE_ALLOW_HOLES,
                                   log_leaf, &log, &E.tlb),
                 MM_OK);
    cr_assert_eq(log.n, 1, "the 4K pages start at 3M: outside");
    cr_assert_eq(log.va[0], UVA);
    cr_assert_eq(log.pa[0], 0x400000);
    cr_assert_eq(log.size[0], MM_PAGE_2M);
    log.n = 0;
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA + 3 * (MB2 / 2), 16 * KB4, 0, log_leaf, &log,
                                   &E.tlb),
                 MM_OK);
    cr_assert_eq(log.n, 16);
    for (unsigned i = 0; i < 16; i++)
        cr_assert_eq(log.pa[i], 0x10000000 + i * KB4, "address order");
    mm_tlb_batch_flush(&E.tlb);
    assert_consistent(E.root, 0);
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA, GB1, X86PT_RANGE_ALLOW_HOLES, NULL, NULL,
                                   &E.tlb),
                 MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(E.pool.live, 1);
    /* Nothing at all in the range is fine with holes allowed. */
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA, GB1, X86PT_RANGE_ALLOW_HOLES, NULL, NULL,
                                   &E.tlb),
                 MM_OK);
}

Test(paging_range, protect_range_changes_every_page_and_records_each)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, KVA, 0x200000, MB2 + 8 * KB4,
                                 MM_MAP_WRITE | MM_MAP_GLOBAL, &E.tlb),
                 MM_OK);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, KVA, MB2 + 8 * KB4, MM_MAP_EXEC, 0, &E.tlb),
                 MM_OK);
    cr_assert_eq(E.tlb.count, 9);
    cr_assert(E.tlb.global);
    mm_translation_t tr;
    for (uint64_t off = 0; off < MB2 + 8 * KB4; off += KB4) {
        cr_assert_eq(x86pt_translate(&E.m, E.root, KVA + off, &tr), MM_OK);
        cr_assert_eq(tr.flags, MM_MAP_EXEC);
    }
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(test_tlb.page_calls, 1);
    /* Flag errors change nothing. */
    snapshot_t *s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, KVA, MB2, MM_MAP_USER, 0, &E.tlb),
                 MM_ERR_INVALID);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, KVA, MB2, 0, 0x10, &E.tlb), MM_ERR_INVALID);
    snap_assert_same(s, E.root, 4, "protect_range flags");
    assert_consistent(E.root, 0);
}

Test(paging_range, argument_errors)
{
    env_setup(4, true, true);
    snapshot_t *s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA, 0, 0, 0, &E.tlb), MM_ERR_INVALID);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA, 0, KB4 + 1, 0, &E.tlb), MM_ERR_ALIGN);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA + 1, 0, KB4, 0, &E.tlb), MM_ERR_ALIGN);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA, 1, KB4, 0, &E.tlb), MM_ERR_ALIGN);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA, (1ull << PHYS_BITS) - KB4, 2 * KB4, 0,
                                 &E.tlb),
                 MM_ERR_RANGE);
    /* Ranges that leave their half. */
    cr_assert_eq(x86pt_map_range(&E.m, E.root, 0x00007ffffffff000ull, 0, 2 * KB4, 0, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, 0xfffffffffffff000ull, 2 * KB4, 0, NULL, NULL,
                                   &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, KVA, 0, KB4, MM_MAP_USER, &E.tlb),
                 MM_ERR_INVALID);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA, 0, KB4, 0, NULL), MM_ERR_INVALID);
    /* A start that is not canonical at all, and unknown range options. */
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, 0x0000800000000000ull, KB4, 0, NULL, NULL,
                                   &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, 0x0000800000000000ull, KB4, 0, 0, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, UVA, KB4, 0x80, NULL, NULL, &E.tlb),
                 MM_ERR_INVALID);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, UVA, KB4, 0, 0x80, &E.tlb), MM_ERR_INVALID);
    cr_assert_eq(x86pt_prepopulate_top(&E.m, E.root, 0x00007fffffff0000ull, 0x20000),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(x86pt_prepopulate_top(&E.m, E.root, KVA, 0), MM_OK);
    snap_assert_same(s, E.root, 4, "range arguments");
}

Test(paging_range, last_page_of_the_address_space)
{
    env_setup(4, true, true);
    mm_vaddr_t va = 0xffffffffffe00000ull;
    cr_assert_eq(x86pt_map_range(&E.m, E.root, va, 0x600000, MB2, MM_MAP_WRITE, &E.tlb), MM_OK);
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, UINT64_MAX, &tr), MM_OK);
    cr_assert_eq(tr.pa, 0x7fffff);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, va, MB2, 0, 0, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_unmap_range(&E.m, E.root, va, MB2, 0, NULL, NULL, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_translate(&E.m, E.root, UINT64_MAX, &tr), MM_ERR_NOT_MAPPED);
    mm_tlb_batch_flush(&E.tlb);
    assert_consistent(E.root, 0);
}

/* x86pt.h: X86PT_RANGE_ALLOW_HOLES applies to "unmap/protect": gaps are
 * skipped instead of MM_ERR_NOT_MAPPED. Only mapped pages change and only
 * they get a TLB record; the holes stay unmapped (no table is built). */
Test(paging_range, protect_range_allow_holes_skips_gaps)
{
    env_setup(4, true, true);
    /* [UVA, UVA+4M): 2M page at UVA, nothing in [UVA+2M, UVA+3M), four 4K
     * pages at UVA+3M, UVA+3M+8K.. (a 4K hole between them), then nothing. */
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x400000, MM_PAGE_2M, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA + 3 * (MB2 / 2), 0x10000000, KB4,
                                 MM_MAP_WRITE, &E.tlb),
                 MM_OK);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, UVA + 3 * (MB2 / 2) + 2 * KB4, 0x10002000,
                                 3 * KB4, MM_MAP_WRITE, &E.tlb),
                 MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    assert_consistent(E.root, 0);
    size_t live = E.pool.live;

    /* Without the option the holes are errors and nothing changes. */
    snapshot_t *s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, UVA, 2 * MB2, 0, 0, &E.tlb),
                 MM_ERR_NOT_MAPPED);
    snap_assert_same(s, E.root, 4, "holes without the option");
    cr_assert(mm_tlb_batch_empty(&E.tlb));
    /* With the option, errors other than holes still reject the whole call. */
    s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, UVA + KB4, 2 * MB2, 0,
                                     X86PT_RANGE_ALLOW_HOLES, &E.tlb),
                 MM_ERR_SIZE_MISMATCH, "the 2M page sticks out at the start");
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, UVA, 2 * MB2, MM_MAP_USER | 1u << 9,
                                     X86PT_RANGE_ALLOW_HOLES, &E.tlb),
                 MM_ERR_INVALID, "flag error");
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, UVA, 2 * MB2, 0,
                                     X86PT_RANGE_ALLOW_HOLES | 0x10, &E.tlb),
                 MM_ERR_INVALID, "unknown option");
    snap_assert_same(s, E.root, 4, "other errors with holes allowed");
    cr_assert(mm_tlb_batch_empty(&E.tlb));

    /* Read-only + NX over the whole 4M with holes: the 4 mapped 4K pages and
     * the 2M page change, one record each. */
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, UVA, 2 * MB2, 0, X86PT_RANGE_ALLOW_HOLES,
                                     &E.tlb),
                 MM_OK);
    cr_assert_eq(E.tlb.count, 5, "one TLB record per changed page, none for the holes");
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, UVA + MB2 - 1, &tr), MM_OK);
    cr_assert_eq(tr.flags, 0);
    cr_assert_eq(tr.size, MM_PAGE_2M);
    cr_assert_eq(tr.pa, 0x400000 + MB2 - 1);
    const uint64_t pages[] = {0, 2, 3, 4};
    for (unsigned i = 0; i < 4; i++) {
        mm_vaddr_t va = UVA + 3 * (MB2 / 2) + pages[i] * KB4;
        cr_assert_eq(x86pt_translate(&E.m, E.root, va, &tr), MM_OK);
        cr_assert_eq(tr.flags, 0, "page %u", i);
        cr_assert_eq(tr.pa, 0x10000000 + pages[i] * KB4);
    }
    /* Holes stay holes. */
    cr_assert_eq(x86pt_translate(&E.m, E.root, UVA + MB2, &tr), MM_ERR_NOT_MAPPED);
    cr_assert_eq(x86pt_translate(&E.m, E.root, UVA + 3 * (MB2 / 2) + KB4, &tr),
                 MM_ERR_NOT_MAPPED);
    cr_assert_eq(x86pt_translate(&E.m, E.root, UVA + 3 * (MB2 / 2) + 5 * KB4, &tr),
                 MM_ERR_NOT_MAPPED);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(E.pool.live, live, "no table created or freed");
    assert_consistent(E.root, 0);

    /* A range that is all hole changes nothing and succeeds. */
    s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_protect_range(&E.m, E.root, UVA + 4 * GB1, GB1, MM_MAP_WRITE,
                                     X86PT_RANGE_ALLOW_HOLES, &E.tlb),
                 MM_OK);
    snap_assert_same(s, E.root, 4, "all-hole range");
    cr_assert(mm_tlb_batch_empty(&E.tlb));
}

/* x86pt.h: prepopulate_top "Errors: MM_ERR_INVALID (bad root)", all or
 * nothing: a bad root builds nothing and allocates nothing. */
Test(paging_range, prepopulate_top_rejects_bad_root)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_map(&E.m, E.root, KVA, 0x1000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb), MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    const mm_paddr_t bad[] = {E.root + 8, E.root + 1, SIM_BYTES, SIM_BYTES + KB4};
    snapshot_t *s = snap_take(E.root, 4);
    size_t live = E.pool.live;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(x86pt_prepopulate_top(&E.m, bad[i], KVA, 64 * GB1), MM_ERR_INVALID,
                     "root %#llx", (unsigned long long)bad[i]);
        cr_assert_eq(x86pt_prepopulate_top(&E.m, bad[i], KVA, 0), MM_ERR_INVALID,
                     "root checked before len 0 is a no-op");
    }
    cr_assert_eq(x86pt_prepopulate_top(NULL, E.root, KVA, 64 * GB1), MM_ERR_INVALID);
    cr_assert_eq(E.pool.live, live, "nothing allocated");
    snap_assert_same(s, E.root, 4, "prepopulate_top bad root");
    cr_assert(mm_tlb_batch_empty(&E.tlb));
    assert_consistent(E.root, 0);
}
