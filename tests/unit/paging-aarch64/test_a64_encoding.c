/* Descriptor encodings against the Arm ARM (VMSAv8-64 table, block and
 * page descriptor formats; MAIR_EL1), for every flag and size. */
#include <criterion/criterion.h>

#include <hadron/mm/hhdm.h>

#include "a64_test.h"

#define UVA 0x0000004000000000ull  /* user half, 1 GiB aligned */
#define KVA 0xffff900000000000ull  /* kernel half, 1 GiB aligned */

static uint64_t map_and_read(mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                             mm_map_flags_t flags, int *level)
{
    cr_assert_eq(a64pt_map(&E.m, E.root, va, pa, size, flags, &E.tlb), MM_OK);
    uint64_t e = raw_leaf(E.root, va, level, NULL);
    cr_assert_neq(e, 0, "no leaf at %#llx", (unsigned long long)va);
    return e;
}

Test(a64_encoding, mair_el1_value_and_attribute_bytes)
{
    /* Attr0 Normal WB RW-alloc (0xff), Attr1 Normal WT RW-alloc (0xbb),
     * Attr2 Normal Non-cacheable (0x44), Attr3 Device-nGnRE (0x04), the
     * rest Device-nGnRnE (0x00). */
    cr_assert_eq(a64pt_mair_el1(), 0x000000000444bbffull);
    cr_assert_eq(A64PT_MAIR_EL1, a64pt_mair_el1());
    cr_assert_eq(a64pt_attr_index(0), 0);
    cr_assert_eq(a64pt_attr_index(MM_MAP_WRITE_THROUGH), 1);
    cr_assert_eq(a64pt_attr_index(MM_MAP_WRITE_COMBINING), 2);
    cr_assert_eq(a64pt_attr_index(MM_MAP_NORMAL_NC), 2, "Arm's write-combining is normal NC");
    cr_assert_eq(a64pt_attr_index(MM_MAP_DEVICE), 3);
    cr_assert_eq(a64pt_attr_index(MM_MAP_DEVICE | MM_MAP_WRITE | MM_MAP_USER), 3);
    cr_assert_eq(a64pt_attr_index(5u << MM_MAP_MEM_SHIFT), -1, "unknown memory type");
    cr_assert_eq(a64pt_attr_index(7u << MM_MAP_MEM_SHIFT), -1);
    cr_assert_eq(a64pt_attr_index(1u << 20), -1);
}

Test(a64_encoding, page_descriptor_every_flag)
{
    env_setup(48, false, 48);
    int level;
    /* Kernel read-only, no-exec, not global: 0b11, AttrIndx 0, AP=10, SH=IS,
     * AF, nG, PXN, UXN. */
    uint64_t e = map_and_read(KVA, 0x200000, MM_PAGE_4K, 0, &level);
    cr_assert_eq(level, 3);
    cr_assert_eq(e, 0x200000 | B_VALID | B_TYPE | B_ATTR(0) | B_AP2 | B_SH_IS | B_AF | B_NG |
                        B_PXN | B_UXN);
    /* Kernel RW executable global: AP=00, PXN clear, UXN set, nG clear. */
    e = map_and_read(KVA + KB4, 0x201000, MM_PAGE_4K,
                     MM_MAP_WRITE | MM_MAP_EXEC | MM_MAP_GLOBAL, &level);
    cr_assert_eq(e, 0x201000 | B_VALID | B_TYPE | B_SH_IS | B_AF | B_UXN);
    /* User RW executable: AP=01, UXN clear, PXN set, nG set. */
    e = map_and_read(UVA, 0x202000, MM_PAGE_4K, MM_MAP_USER | MM_MAP_WRITE | MM_MAP_EXEC,
                     &level);
    cr_assert_eq(e, 0x202000 | B_VALID | B_TYPE | B_AP1 | B_SH_IS | B_AF | B_NG | B_PXN);
    /* User read-only no-exec: AP=11, both XN. */
    e = map_and_read(UVA + KB4, 0x203000, MM_PAGE_4K, MM_MAP_USER, &level);
    cr_assert_eq(e, 0x203000 | B_VALID | B_TYPE | B_AP1 | B_AP2 | B_SH_IS | B_AF | B_NG | B_PXN |
                        B_UXN);
    /* Kernel-only page in the user half: not EL0, executable at EL1. */
    e = map_and_read(UVA + 2 * KB4, 0x204000, MM_PAGE_4K, MM_MAP_EXEC, &level);
    cr_assert_eq(e & (B_AP1 | B_PXN | B_UXN), B_UXN);
}

Test(a64_encoding, memory_types_select_attrindx)
{
    env_setup(48, false, 48);
    static const struct {
        mm_map_flags_t flags;
        unsigned idx;
        mm_map_flags_t reads_back; /* Normal NC serves write-combining too */
    } cases[] = {
        {MM_MAP_WRITE_BACK, 0, MM_MAP_WRITE_BACK},
        {MM_MAP_WRITE_THROUGH, 1, MM_MAP_WRITE_THROUGH},
        {MM_MAP_WRITE_COMBINING, 2, MM_MAP_NORMAL_NC},
        {MM_MAP_NORMAL_NC, 2, MM_MAP_NORMAL_NC},
        {MM_MAP_DEVICE, 3, MM_MAP_DEVICE},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int level;
        uint64_t e = map_and_read(KVA + i * KB4, 0x300000 + i * KB4, MM_PAGE_4K,
                                  cases[i].flags | MM_MAP_WRITE, &level);
        cr_assert_eq(e & B_ATTR_MASK, B_ATTR(cases[i].idx), "case %u", i);
        cr_assert_eq(e & B_SH_IS, B_SH_IS, "inner shareable for every type");
        mm_translation_t tr;
        cr_assert_eq(a64pt_translate(&E.m, E.root, KVA + i * KB4 + 5, &tr), MM_OK);
        cr_assert_eq(tr.flags, cases[i].reads_back | MM_MAP_WRITE);
        /* MAIR byte the index selects. */
        uint8_t attr = (uint8_t)(A64PT_MAIR_EL1 >> (8 * cases[i].idx));
        static const uint8_t want[4] = {0xff, 0xbb, 0x44, 0x04};
        cr_assert_eq(attr, want[cases[i].idx]);
    }
}

Test(a64_encoding, block_descriptors_2m_and_1g)
{
    env_setup(48, false, 48);
    int level;
    uint64_t e = map_and_read(KVA + MB2, 0x400000, MM_PAGE_2M, MM_MAP_WRITE, &level);
    cr_assert_eq(level, 2);
    /* Block: bits 1:0 = 0b01. */
    cr_assert_eq(e, 0x400000 | B_VALID | B_SH_IS | B_AF | B_NG | B_PXN | B_UXN);
    e = map_and_read(KVA + GB1, 0x40000000, MM_PAGE_1G, MM_MAP_GLOBAL, &level);
    cr_assert_eq(level, 1);
    cr_assert_eq(e, 0x40000000 | B_VALID | B_AP2 | B_SH_IS | B_AF | B_PXN | B_UXN);
    mm_translation_t tr;
    cr_assert_eq(a64pt_translate(&E.m, E.root, KVA + GB1 + 0x12345, &tr), MM_OK);
    cr_assert_eq(tr.size, MM_PAGE_1G);
    cr_assert_eq(tr.pa, 0x40012345);
    cr_assert_eq(tr.flags, MM_MAP_GLOBAL);
}

Test(a64_encoding, table_descriptors_carry_address_and_count_only)
{
    env_setup(48, false, 48);
    for (unsigned i = 0; i < 3; i++)
        cr_assert_eq(a64pt_map(&E.m, E.root, UVA + i * KB4, 0x500000 + i * KB4, MM_PAGE_4K,
                               MM_MAP_USER, &E.tlb),
                     MM_OK);
    uint64_t path[5];
    int level;
    cr_assert_neq(raw_leaf(E.root, UVA, &level, path), 0);
    /* Level 0 (root) -> level 1 table: one entry; level 1 -> 2: one; level 2
     * -> 3: three pages. Count in bits 58:52 (low 7) and 4:2 (high 3);
     * no hierarchical attribute (63:59), nothing in 11:5. */
    for (int k = 0; k < 3; k++) {
        uint64_t d = path[k];
        cr_assert_eq(d & 3, 3, "table type at lookup %d", k);
        cr_assert_eq(d & (0x1full << 59), 0);
        cr_assert_eq(d & 0xfe0ull, 0, "bits 11:5 stay clear");
        unsigned count = (unsigned)((d >> 52) & 0x7f) | (unsigned)(((d >> 2) & 7) << 7);
        cr_assert_eq(count, k == 2 ? 3u : 1u, "count at lookup %d", k);
    }
}

Test(a64_encoding, count_of_a_full_table_uses_the_high_bits)
{
    env_setup(48, false, 48);
    /* 512 pages in one level-3 table: count 512 = 0b10_0000_0000, so
     * bits 58:52 = 0 and bits 4:2 = 0b100. */
    cr_assert_eq(a64pt_map_range(&E.m, E.root, UVA + MB2 + KB4, 0x600000, MB2 - KB4, 0, &E.tlb),
                 MM_OK);
    cr_assert_eq(a64pt_map(&E.m, E.root, UVA + MB2, 0x800000, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    uint64_t *slot = raw_slot(E.root, UVA + MB2, 2);
    cr_assert_not_null(slot);
    cr_assert_eq((*slot >> 52) & 0x7f, 0);
    cr_assert_eq((*slot >> 2) & 7, 4);
    assert_consistent(E.root, 0);
}

Test(a64_encoding, lpa2_output_address_bits_51_50_in_bits_9_8)
{
    /* FEAT_LPA2, 4 KiB granule: OA[49:12] in place, OA[51:50] in bits 9:8,
     * no SH field (TCR_EL1.SH0/SH1 give shareability). */
    env_setup(48, true, 52);
    mm_paddr_t pa = (3ull << 50) | (1ull << 49) | (1ull << 48) | 0x7000;
    int level;
    uint64_t e = map_and_read(KVA, pa, MM_PAGE_4K, MM_MAP_WRITE, &level);
    cr_assert_eq(e, (1ull << 49) | (1ull << 48) | 0x7000 | (3ull << 8) | B_VALID | B_TYPE | B_AF |
                        B_NG | B_PXN | B_UXN);
    mm_translation_t tr;
    cr_assert_eq(a64pt_translate(&E.m, E.root, KVA + 0x10, &tr), MM_OK);
    cr_assert_eq(tr.pa, pa + 0x10);
    /* A low address has bits 9:8 clear: no shareability field any more. */
    e = map_and_read(KVA + KB4, 0x9000, MM_PAGE_4K, 0, &level);
    cr_assert_eq(e & (3ull << 8), 0);
    /* A 2 MiB block with OA bit 50 set. */
    pa = (1ull << 50) | MB2;
    e = map_and_read(KVA + MB2, pa, MM_PAGE_2M, 0, &level);
    cr_assert_eq(level, 2);
    cr_assert_eq(e & (3ull << 8), 1ull << 8);
    cr_assert_eq(e & 0x0003fffffffff000ull, MB2);
    assert_consistent(E.root, 0);
}

Test(a64_encoding, lpa2_table_descriptors_put_address_bits_51_50_in_bits_9_8)
{
    env_setup(52, true, 52);
    /* Tables come from the pool (low memory), so bits 9:8 of table
     * descriptors are 0 here; the encoder is the same function as for
     * leaves, checked above. The 52-bit root is the 16-entry level -1
     * table: the kernel half is entries 8..15. */
    cr_assert_eq(a64pt_map(&E.m, E.root, 0xfff8000000000000ull, 0x1000, MM_PAGE_4K, 0, &E.tlb),
                 MM_OK);
    const uint64_t *root = hhdm_phys_to_virt(E.root);
    cr_assert_eq(root[8] & 3, 3, "VA[51:48] = 8 selects root entry 8");
    for (unsigned i = 0; i < 8; i++)
        cr_assert_eq(root[i], 0);
    cr_assert_eq(a64pt_map(&E.m, E.root, 0x0007000000000000ull, 0x2000, MM_PAGE_4K,
                           MM_MAP_USER, &E.tlb),
                 MM_OK);
    cr_assert_eq(root[7] & 3, 3, "VA[51:48] = 7 selects root entry 7");
    int level;
    uint64_t path[5];
    cr_assert_neq(raw_leaf(E.root, 0x0007000000000000ull, &level, path), 0);
    cr_assert_eq(level, 3);
    assert_consistent(E.root, 0);
}

Test(a64_encoding, leaf_bits_is_the_one_translation)
{
    env_setup(48, false, 48);
    /* Every valid flag combination round-trips through map and translate,
     * and what map writes is exactly a64pt_leaf_bits | address. */
    unsigned n = 0;
    for (mm_map_flags_t f = 0; f <= MM_MAP_FLAGS_ALL; f++) {
        for (int half = 0; half < 2; half++) {
            mm_vaddr_t va = (half ? KVA : UVA) + (mm_vaddr_t)n * KB4;
            uint64_t bits = a64pt_leaf_bits(&E.m, f, MM_PAGE_4K, half != 0);
            mm_status_t st = a64pt_map(&E.m, E.root, va, 0x100000, MM_PAGE_4K, f, &E.tlb);
            if (bits == 0) {
                cr_assert_eq(st, MM_ERR_INVALID, "flags %#x half %d", f, half);
                continue;
            }
            cr_assert_eq(st, MM_OK, "flags %#x half %d", f, half);
            int level;
            cr_assert_eq(raw_leaf(E.root, va, &level, NULL), bits | 0x100000);
            mm_translation_t tr;
            cr_assert_eq(a64pt_translate(&E.m, E.root, va, &tr), MM_OK);
            /* Write-combining shares Normal NC's index and reads back as it. */
            mm_map_flags_t back = mm_map_mem_type(f) == MM_MEM_WRITE_COMBINING
                                      ? (f & ~(mm_map_flags_t)MM_MAP_MEM_MASK) | MM_MAP_NORMAL_NC
                                      : f;
            cr_assert_eq(tr.flags, back, "flags %#x round-trip: %#x", f, tr.flags);
            n++;
        }
    }
    cr_assert_gt(n, 40);
    cr_assert_eq(a64pt_leaf_bits(NULL, 0, MM_PAGE_4K, false), 0);
    cr_assert_eq(a64pt_leaf_bits(&E.m, 0, (mm_page_size_t)13, false), 0);
    /* Blocks: bits 1:0 = 0b01. */
    cr_assert_eq(a64pt_leaf_bits(&E.m, 0, MM_PAGE_2M, false) & 3, 1);
    cr_assert_eq(a64pt_leaf_bits(&E.m, 0, MM_PAGE_1G, false) & 3, 1);
}

Test(a64_encoding, hierarchical_table_bits_restrict_translate)
{
    env_setup(48, false, 48);
    cr_assert_eq(a64pt_map(&E.m, E.root, UVA, 0x1000, MM_PAGE_4K,
                           MM_MAP_USER | MM_MAP_WRITE | MM_MAP_EXEC, &E.tlb),
                 MM_OK);
    cr_assert_eq(a64pt_map(&E.m, E.root, UVA + KB4, 0x2000, MM_PAGE_4K, MM_MAP_EXEC, &E.tlb),
                 MM_OK);
    uint64_t *l1 = raw_slot(E.root, UVA, 1);
    /* APTable[1] (no write), APTable[0] (no EL0), UXNTable, PXNTable. */
    *l1 |= B_APTABLE1 | B_APTABLE0 | B_UXNTABLE | B_PXNTABLE;
    mm_translation_t tr;
    cr_assert_eq(a64pt_translate(&E.m, E.root, UVA, &tr), MM_OK);
    cr_assert_eq(tr.flags, 0, "write, user and exec all withdrawn: %#x", tr.flags);
    cr_assert_eq(a64pt_translate(&E.m, E.root, UVA + KB4, &tr), MM_OK);
    cr_assert_eq(tr.flags, 0, "PXNTable withdraws kernel exec");
    a64pt_check_info_t info;
    cr_assert_eq(a64pt_check(&E.m, E.root, &info), MM_ERR_CORRUPT);
    cr_assert_str_eq(info.problem, "hierarchical attributes in a table descriptor");
}
