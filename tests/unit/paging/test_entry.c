/* Raw entry bits against the SDM encodings, for every flag and page size. */
#include <criterion/criterion.h>
#include <string.h>

#include "paging_test.h"

#define UVA 0x0000004000000000ull /* user half, 1 GiB aligned */
#define KVA 0xffffc00000000000ull /* kernel half, 1 GiB aligned */

static const mm_page_size_t sizes[] = {MM_PAGE_4K, MM_PAGE_2M, MM_PAGE_1G};

static uint64_t map_raw(mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size, mm_map_flags_t flags,
                        unsigned *level)
{
    cr_assert_eq(x86pt_map(&E.m, E.root, va, pa, size, flags, &E.tlb), MM_OK,
                 "map flags %#x size %d", flags, size);
    return raw_leaf(E.root, 4, va, level, NULL);
}

Test(paging_entry, pat_msr_keeps_reset_entries_and_puts_wc_at_pa4)
{
    uint64_t pat = x86pt_pat_msr();
    cr_assert_eq(pat, X86PT_PAT_MSR);
    cr_assert_eq(pat, 0x0007040100070406ull);
    /* Power-on value 0x0007040600070406: only PA4 differs. */
    cr_assert_eq(pat & ~(0xffull << 32), 0x0007040600070406ull & ~(0xffull << 32));
    cr_assert_eq((pat >> 32) & 0xff, 0x01, "PA4 = WC");
    cr_assert_eq(x86pt_pat_index(0), 0);
    cr_assert_eq(x86pt_pat_index(MM_MAP_WRITE_THROUGH), 1);
    cr_assert_eq(x86pt_pat_index(MM_MAP_DEVICE), 3);
    cr_assert_eq(x86pt_pat_index(MM_MAP_WRITE_COMBINING), 4);
    cr_assert_eq(x86pt_pat_index(MM_MAP_NORMAL_NC), 2);
    cr_assert_eq(x86pt_pat_index(MM_MAP_WRITE_BACK), 0);
    /* Memory-type field values 5..7 name nothing. */
    for (unsigned t = MM_MEM_TYPE_COUNT; t < 8; t++)
        cr_assert_eq(x86pt_pat_index(t << MM_MAP_MEM_SHIFT), -1, "type %u", t);
    cr_assert_eq(x86pt_pat_index(1u << 7), -1);
    /* The memory type each index selects under our PAT. */
    cr_assert_eq((pat >> (8 * 0)) & 0xff, X86PT_MT_WB);
    cr_assert_eq((pat >> (8 * 1)) & 0xff, X86PT_MT_WT);
    cr_assert_eq((pat >> (8 * 2)) & 0xff, X86PT_MT_UC_MINUS);
    cr_assert_eq((pat >> (8 * 3)) & 0xff, X86PT_MT_UC);
    cr_assert_eq((pat >> (8 * 4)) & 0xff, X86PT_MT_WC);
}

Test(paging_entry, every_flag_at_every_size)
{
    env_setup(4, true, true);
    struct {
        mm_map_flags_t flags;
        uint64_t bits4k;   /* besides P and the address */
        uint64_t bitshuge; /* besides P, PS and the address */
    } cases[] = {
        {0, B_XD, B_XD},
        {MM_MAP_WRITE, B_RW | B_XD, B_RW | B_XD},
        {MM_MAP_EXEC, 0, 0},
        {MM_MAP_USER, B_US | B_XD, B_US | B_XD},
        {MM_MAP_GLOBAL, B_G | B_XD, B_G | B_XD},
        {MM_MAP_WRITE_THROUGH, B_PWT | B_XD, B_PWT | B_XD},
        {MM_MAP_DEVICE, B_PCD | B_PWT | B_XD, B_PCD | B_PWT | B_XD},
        {MM_MAP_NORMAL_NC, B_PCD | B_XD, B_PCD | B_XD},
        {MM_MAP_WRITE_COMBINING, B_PAT4K | B_XD, B_PATHUGE | B_XD},
        {MM_MAP_WRITE | MM_MAP_EXEC | MM_MAP_USER | MM_MAP_WRITE_COMBINING,
         B_RW | B_US | B_PAT4K, B_RW | B_US | B_PATHUGE},
    };
    for (size_t s = 0; s < 3; s++) {
        uint64_t bytes = 1ull << sizes[s];
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            mm_vaddr_t va = UVA + (s * 64 + i) * GB1;
            /* A frame with high and low address bits set, aligned to the size. */
            mm_paddr_t pa = ((0x2a5ull << 34) | 0x1234567000ull) & ~(bytes - 1);
            unsigned level = 0;
            mm_tlb_batch_init(&E.tlb);
            uint64_t e = map_raw(va, pa, sizes[s], cases[i].flags, &level);
            /* A new page needs no invalidation; only granting the user bit
             * to an existing supervisor intermediate does. */
            if (!(cases[i].flags & MM_MAP_USER))
                cr_assert(mm_tlb_batch_empty(&E.tlb), "fresh mapping recorded a flush");
            uint64_t want = B_P | pa | (s == 0 ? cases[i].bits4k : B_PS | cases[i].bitshuge);
            cr_assert_eq(level, s + 1);
            cr_assert_eq(e, want, "size %zu flags %#x: entry %#llx want %#llx", s,
                         cases[i].flags, (unsigned long long)e, (unsigned long long)want);
            cr_assert_eq(e & (B_A | B_D), 0, "map must not preset accessed/dirty");
            mm_translation_t tr;
            cr_assert_eq(x86pt_translate(&E.m, E.root, va + bytes - 8, &tr), MM_OK);
            cr_assert_eq(tr.flags, cases[i].flags);
            cr_assert_eq(tr.size, sizes[s]);
            cr_assert_eq(tr.page_pa, pa);
            cr_assert_eq(tr.pa, pa + bytes - 8);
            cr_assert_eq(tr.page_va, va);
        }
    }
    assert_consistent(E.root, 0);
}

Test(paging_entry, wc_4k_never_sets_bit_12)
{
    env_setup(4, true, true);
    /* The reference set the 2 MiB PAT bit (12) on 4 KiB pages, which moved
     * the frame by 4 KiB. */
    uint64_t e = map_raw(UVA, 0x6000, MM_PAGE_4K, MM_MAP_WRITE_COMBINING, NULL);
    cr_assert_eq(e & B_PATHUGE, 0);
    cr_assert_eq(e & 0x000ffffffffff000ull, 0x6000);
    cr_assert_neq(e & B_PAT4K, 0);
    e = map_raw(UVA + MB2, 0x400000, MM_PAGE_2M, MM_MAP_WRITE_COMBINING, NULL);
    cr_assert_neq(e & B_PATHUGE, 0);
    cr_assert_neq(e & B_PS, 0);
    cr_assert_eq(e & 0x000fffffffe00000ull, 0x400000);
}

Test(paging_entry, intermediates_are_present_writable_and_user_only_for_user)
{
    env_setup(4, true, true);
    uint64_t ent[6];
    unsigned level;
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x1000, MM_PAGE_4K, MM_MAP_USER, &E.tlb), MM_OK);
    raw_leaf(E.root, 4, UVA, &level, ent);
    for (unsigned l = 4; l >= 2; l--) {
        cr_assert_eq(ent[l] & 0xfff, B_P | B_RW | B_US, "user path level %u: %#llx", l,
                     (unsigned long long)ent[l]);
        cr_assert_eq(ent[l] & B_XD, 0, "intermediates never forbid execution");
    }
    cr_assert_eq(x86pt_map(&E.m, E.root, KVA, 0x1000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb), MM_OK);
    raw_leaf(E.root, 4, KVA, &level, ent);
    for (unsigned l = 4; l >= 2; l--) {
        cr_assert_eq(ent[l] & 0xfff, B_P | B_RW, "kernel path level %u: %#llx", l,
                     (unsigned long long)ent[l]);
        cr_assert_eq(ent[l] & B_XD, 0);
    }
    /* A kernel-only mapping in the lower half gets a supervisor path. */
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA + 64 * GB1, 0x1000, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    raw_leaf(E.root, 4, UVA + 64 * GB1, &level, ent);
    cr_assert_eq(ent[2] & B_US, 0);
    cr_assert_eq(ent[3] & B_US, 0);
    assert_consistent(E.root, 0);
}

Test(paging_entry, user_page_under_supervisor_path_grants_user_and_records_flush)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x1000, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    cr_assert(mm_tlb_batch_empty(&E.tlb));
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA + KB4, 0x2000, MM_PAGE_4K, MM_MAP_USER, &E.tlb),
                 MM_OK);
    uint64_t ent[6];
    raw_leaf(E.root, 4, UVA + KB4, NULL, ent);
    cr_assert_neq(ent[2] & B_US, 0);
    cr_assert_neq(ent[4] & B_US, 0);
    cr_assert_eq(E.tlb.count, 1, "cached supervisor-only intermediates must be dropped");
    cr_assert_eq(E.tlb.pages[0], UVA + KB4);
    /* The supervisor page stays supervisor: its own entry lacks US. */
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, UVA, &tr), MM_OK);
    cr_assert_eq(tr.flags & MM_MAP_USER, 0);
    assert_consistent(E.root, 0);
}

Test(paging_entry, protect_keeps_accessed_dirty_address_and_software_bits)
{
    env_setup(4, true, true);
    for (size_t s = 0; s < 3; s++) {
        mm_vaddr_t va = UVA + s * GB1;
        mm_paddr_t pa = 0x3ull << 30;
        cr_assert_eq(x86pt_map(&E.m, E.root, va, pa, sizes[s], MM_MAP_WRITE, &E.tlb), MM_OK);
        unsigned level;
        raw_leaf(E.root, 4, va, &level, NULL);
        uint64_t *slot = raw_slot(E.root, 4, va, level);
        /* What the CPU (A/D) and the kernel (available bits 9-11, 52-58)
         * may have put there. */
        uint64_t extra = B_A | B_D | (1ull << 9) | (1ull << 11) | (1ull << 55);
        *slot |= extra;
        mm_tlb_batch_init(&E.tlb);
        cr_assert_eq(x86pt_protect(&E.m, E.root, va, sizes[s],
                                   MM_MAP_EXEC | MM_MAP_GLOBAL | MM_MAP_WRITE_COMBINING, &E.tlb),
                     MM_OK);
        uint64_t e = *slot;
        cr_assert_eq(e & extra, extra, "size %zu lost %#llx", s,
                     (unsigned long long)(extra & ~e));
        cr_assert_eq(e & 0x000ffffffffff000ull & ~B_PATHUGE, pa);
        cr_assert_eq(e & B_RW, 0);
        cr_assert_eq(e & B_XD, 0);
        cr_assert_neq(e & B_G, 0);
        cr_assert_neq(e & (s == 0 ? B_PAT4K : B_PATHUGE), 0);
        if (s > 0)
            cr_assert_neq(e & B_PS, 0);
        cr_assert_eq(E.tlb.count, 1);
        cr_assert_eq(E.tlb.pages[0], va);
        cr_assert_not(E.tlb.global, "the old entry was not global");
    }
}

Test(paging_entry, no_nx_cpu_maps_without_bit_63_and_reports_exec)
{
    env_setup(4, false, true);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x1000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb), MM_OK);
    uint64_t ent[6];
    uint64_t e = raw_leaf(E.root, 4, UVA, NULL, ent);
    cr_assert_eq(e & B_XD, 0, "bit 63 is reserved without NX");
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, UVA, &tr), MM_OK);
    cr_assert_eq(tr.flags, MM_MAP_WRITE | MM_MAP_EXEC, "the CPU will execute it");
    x86pt_audit_counts_t c;
    cr_assert_eq(x86pt_audit(&E.m, E.root, NULL, NULL, &c), MM_OK);
    cr_assert_eq(c.wx, 1);
    assert_consistent(E.root, 0);
}

Test(paging_entry, strict_nx_rejects_what_cannot_be_expressed)
{
    x86pt_config_t c = {.levels = 4, .phys_bits = PHYS_BITS, .nx = false, .pages_1g = true,
                        .strict_nx = true};
    env_setup_cfg(&c);
    snapshot_t *s = snap_take(E.root, 4);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x1000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb),
                 MM_ERR_UNSUPPORTED);
    snap_assert_same(s, E.root, 4, "strict nx");
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x1000, MM_PAGE_4K, MM_MAP_EXEC, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_protect(&E.m, E.root, UVA, MM_PAGE_4K, 0, &E.tlb), MM_ERR_UNSUPPORTED);
}

Test(paging_entry, init_rejects_bad_configs)
{
    x86pt_t m;
    frame_pool_t pool;
    frame_pool_init(&pool, 0x100000, 16);
    x86pt_config_t c = {.levels = 4, .phys_bits = 46, .frames = frame_pool_allocator(&pool)};
    cr_assert_eq(x86pt_init(&m, &c), MM_OK);
    cr_assert_eq(x86pt_init(NULL, &c), MM_ERR_INVALID);
    cr_assert_eq(x86pt_init(&m, NULL), MM_ERR_INVALID);
    c.levels = 3;
    cr_assert_eq(x86pt_init(&m, &c), MM_ERR_INVALID);
    c.levels = 5;
    c.phys_bits = 53;
    cr_assert_eq(x86pt_init(&m, &c), MM_ERR_INVALID);
    c.phys_bits = 31;
    cr_assert_eq(x86pt_init(&m, &c), MM_ERR_INVALID);
    c.phys_bits = 52;
    c.frames.alloc = NULL;
    cr_assert_eq(x86pt_init(&m, &c), MM_ERR_INVALID);
    frame_pool_destroy(&pool);
}

/* README "Errors are values": out-parameters are not written on error. A
 * rejected x86pt_init leaves a live mapper exactly as it was (it keeps
 * working). */
Test(paging_entry, failed_init_leaves_the_mapper_untouched)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_map(&E.m, E.root, 0x0000004000000000ull, 0x1000, MM_PAGE_4K, 0, &E.tlb),
                 MM_OK);
    x86pt_t before;
    memcpy(&before, &E.m, sizeof before);
    x86pt_config_t good = {.levels = 5, .phys_bits = 39, .nx = false, .pages_1g = false,
                           .frames = frame_pool_allocator(&E.pool)};
    x86pt_config_t c;
    c = good, c.levels = 3;
    cr_assert_eq(x86pt_init(&E.m, &c), MM_ERR_INVALID);
    c = good, c.levels = 0;
    cr_assert_eq(x86pt_init(&E.m, &c), MM_ERR_INVALID);
    c = good, c.phys_bits = 31;
    cr_assert_eq(x86pt_init(&E.m, &c), MM_ERR_INVALID);
    c = good, c.phys_bits = 53;
    cr_assert_eq(x86pt_init(&E.m, &c), MM_ERR_INVALID);
    c = good, c.frames.alloc = NULL;
    cr_assert_eq(x86pt_init(&E.m, &c), MM_ERR_INVALID);
    c = good, c.frames.free = NULL;
    cr_assert_eq(x86pt_init(&E.m, &c), MM_ERR_INVALID);
    cr_assert_eq(x86pt_init(&E.m, NULL), MM_ERR_INVALID);
    cr_assert(memcmp(&before, &E.m, sizeof before) == 0, "a failed init wrote *m");
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, E.root, 0x0000004000000000ull, &tr), MM_OK);
    cr_assert_eq(tr.pa, 0x1000);
}

#if HADRON_MM_ASSERTIONS
/* x86pt.h: x86pt_root_destroy — "A bad root is an assertion": the panic
 * hook gets MM_REPORT_ASSERT before anything is freed. */
Test(paging_entry, root_destroy_of_a_bad_root_asserts_before_freeing)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_map(&E.m, E.root, 0x0000004000000000ull, 0x1000, MM_PAGE_4K, 0, &E.tlb),
                 MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    const mm_paddr_t bad[] = {E.root + 8, E.root + 1, SIM_BYTES};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snapshot_t *s = snap_take(E.root, 4);
        size_t live = E.pool.live;
        int panics = test_panics.count;
        bool panicked = TEST_CATCH_PANIC(x86pt_root_destroy(&E.m, bad[i], NULL, NULL));
        cr_assert(panicked, "root %#llx not asserted", (unsigned long long)bad[i]);
        cr_assert_eq(test_panics.count, panics + 1);
        cr_assert_eq(test_panics.last.kind, MM_REPORT_ASSERT);
        cr_assert_eq(E.pool.live, live, "nothing freed");
        snap_assert_same(s, E.root, 4, "root_destroy bad root");
    }
}
#endif
