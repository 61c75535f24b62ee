/* translate's own decode against the walker's (pt_leaf_flags) on raw
 * entries: every combination of the leaf bits flags depend on, with
 * intermediates that take RW/US away or add XD, at every page size, for 4
 * and 5 levels, with and without NX. */
#include <criterion/criterion.h>

#include "paging_test.h"

#define UVA 0x0000004000000000ull

typedef struct one_leaf {
    x86pt_leaf_t leaf;
    unsigned n;
} one_leaf_t;

static bool grab(void *arg, const x86pt_leaf_t *leaf)
{
    one_leaf_t *o = arg;
    o->leaf = *leaf;
    o->n++;
    return true;
}

static void cross_check(unsigned levels, bool nx)
{
    env_setup(levels, nx, true);
    static const mm_page_size_t sizes[] = {MM_PAGE_4K, MM_PAGE_2M, MM_PAGE_1G};
    for (unsigned s = 0; s < 3; s++) {
        uint64_t bytes = 1ull << sizes[s];
        unsigned leaf_level = s + 1;
        mm_vaddr_t va = UVA + (uint64_t)s * 4 * GB1;
        mm_paddr_t pa = ((0x2a5ull << 34) | 0x1234567000ull) & ~(bytes - 1);
        cr_assert_eq(x86pt_map(&E.m, E.root, va, pa, sizes[s], MM_MAP_USER | MM_MAP_WRITE,
                               &E.tlb),
                     MM_OK);
        /* A neighbour in the same table takes map's existing-path route. */
        cr_assert_eq(x86pt_map(&E.m, E.root, va + bytes, pa + bytes, sizes[s], MM_MAP_GLOBAL,
                               &E.tlb),
                     MM_OK);
        mm_translation_t nb;
        cr_assert_eq(x86pt_translate(&E.m, E.root, va + bytes + 8, &nb), MM_OK);
        cr_assert_eq(nb.flags, MM_MAP_GLOBAL | (nx ? 0 : MM_MAP_EXEC));
        cr_assert_eq(nb.pa, pa + bytes + 8);
        cr_assert_eq(nb.size, sizes[s]);
        uint64_t *leaf = raw_slot(E.root, levels, va, leaf_level);
        cr_assert_not_null(leaf);
        uint64_t pat = s == 0 ? B_PAT4K : B_PATHUGE;
        uint64_t vary[] = {B_RW, B_US, B_PWT, B_PCD, pat, B_G, B_XD};
        size_t nvary = nx ? 7 : 6; /* bit 63 is reserved without NX */
        uint64_t keep = *leaf & ~(B_RW | B_US | B_PWT | B_PCD | pat | B_G | B_XD);
        /* Intermediate restrictions: per level above the leaf, clear RW,
         * clear US, set XD (a few patterns, including none and all). */
        for (unsigned ip = 0; ip < 8; ip++) {
            for (unsigned l = leaf_level + 1; l <= levels; l++) {
                uint64_t *slot = raw_slot(E.root, levels, va, l);
                *slot |= B_RW | B_US;
                *slot &= ~B_XD;
                unsigned pick = (ip + l) % 8;
                if (ip != 0 && (pick & 1))
                    *slot &= ~B_RW;
                if (ip != 0 && (pick & 2))
                    *slot &= ~B_US;
                if (ip != 0 && (pick & 4) && nx)
                    *slot |= B_XD;
                if (ip == 7) {
                    *slot &= ~(B_RW | B_US);
                    if (nx)
                        *slot |= B_XD;
                }
            }
            for (unsigned combo = 0; combo < (1u << nvary); combo++) {
                uint64_t e = keep;
                for (size_t b = 0; b < nvary; b++)
                    if (combo & (1u << b))
                        e |= vary[b];
                *leaf = e;
                one_leaf_t o = {.n = 0};
                cr_assert_eq(x86pt_walk(&E.m, E.root, va, va + bytes - 1, grab, &o), MM_OK);
                cr_assert_eq(o.n, 1);
                mm_vaddr_t probe = va + bytes - 8 - (combo & 0xff8);
                mm_translation_t tr;
                cr_assert_eq(x86pt_translate(&E.m, E.root, probe, &tr), MM_OK);
                cr_assert_eq(tr.flags, o.leaf.flags,
                             "levels %u nx %d size %u combo %#x ip %u: %#x want %#x", levels,
                             nx, s, combo, ip, tr.flags, o.leaf.flags);
                cr_assert_eq(tr.size, sizes[s]);
                cr_assert_eq(tr.page_va, va);
                cr_assert_eq(tr.page_pa, pa);
                cr_assert_eq(tr.pa, pa + (probe - va));
            }
        }
        /* Leave the tables as the mapper made them before the next size. */
        *leaf = keep | B_RW | B_US | (nx ? B_XD : 0);
        for (unsigned l = leaf_level + 1; l <= levels; l++) {
            uint64_t *slot = raw_slot(E.root, levels, va, l);
            *slot |= B_RW | B_US;
            *slot &= ~B_XD;
        }
    }
    assert_consistent(E.root, 0);
}

Test(paging_translate, decode_matches_walker_4_levels_nx)
{
    cross_check(4, true);
}

Test(paging_translate, decode_matches_walker_4_levels_no_nx)
{
    cross_check(4, false);
}

Test(paging_translate, decode_matches_walker_5_levels_nx)
{
    cross_check(5, true);
}

Test(paging_translate, decode_matches_walker_5_levels_no_nx)
{
    cross_check(5, false);
}
