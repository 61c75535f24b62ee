/* Translation and the mm_page_mapper_t glue. */
#include "x86pt_internal.h"
#include "ptk_glue.h"

/* Flags of a leaf from a 6-bit key: bit 0 RW, 1 US, 2 PWT, 3 PCD (entry
 * bits 1..4 as they are), 4 the PAT bit of the level, 5 G. RW and US are
 * already ANDed with the levels above. The PAT index (PAT:PCD:PWT) decodes
 * under X86PT_PAT_MSR as pt_leaf_flags does: indices we never write decode
 * to the type they hold (5: WT; 6: UC-; 7: UC). */
#define TR_PAT(i)                                                                                  \
    ((i) == 1 || (i) == 5   ? MM_MAP_WRITE_THROUGH                                                 \
     : (i) == 4             ? MM_MAP_WRITE_COMBINING                                               \
     : (i) == 0             ? MM_MAP_WRITE_BACK                                                    \
     : (i) == 2 || (i) == 6 ? MM_MAP_NORMAL_NC                                                     \
                            : MM_MAP_DEVICE)
#define TR_KEY(k)                                                                                  \
    (((k) & 1 ? MM_MAP_WRITE : 0) | ((k) & 2 ? MM_MAP_USER : 0) |                                 \
     ((k) & 32 ? MM_MAP_GLOBAL : 0) | TR_PAT((((k) >> 2) & 3) | (((k) >> 2) & 4)))
#define TR_KEY4(k) TR_KEY(k), TR_KEY((k) + 1), TR_KEY((k) + 2), TR_KEY((k) + 3)
#define TR_KEY16(k) TR_KEY4(k), TR_KEY4((k) + 4), TR_KEY4((k) + 8), TR_KEY4((k) + 12)
static const uint8_t tr_flags[64] = {TR_KEY16(0), TR_KEY16(16), TR_KEY16(32), TR_KEY16(48)};
#undef TR_KEY16
#undef TR_KEY4
#undef TR_KEY
#undef TR_PAT

MM_STATIC_ASSERT(PTE_RW == 1u << 1 && PTE_US == 1u << 2 && PTE_PWT == 1u << 3 &&
                     PTE_PCD == 1u << 4 && PTE_G == 1u << 8,
                 "translate key layout");

/* Fill *out for leaf `e` of a page of 2^shift bytes; up_and/up_or are the
 * AND and OR of the intermediate entries above it. Inlined at each exit
 * with a constant shift. */
static inline __attribute__((always_inline)) mm_status_t
tr_finish(const x86pt_t *m, mm_vaddr_t va, uint64_t e, uint64_t up_and, uint64_t up_or,
          unsigned shift, mm_translation_t *out)
{
    uint64_t page_mask = ((uint64_t)1 << shift) - 1u;
    mm_paddr_t page_pa = e & PTE_ADDR_MASK & ~page_mask;
    /* RW and US count only when every level above allows them. */
    uint64_t ok = e & (up_and | ~(uint64_t)(PTE_RW | PTE_US));
    unsigned pat_shift = shift == MM_PAGE_SHIFT ? 7u : 12u;
    unsigned key = (unsigned)((ok >> 1) & 15u) | (unsigned)(((e >> pat_shift) & 1u) << 4) |
                   (unsigned)(((e >> 8) & 1u) << 5);
    mm_map_flags_t f = tr_flags[key];
    /* Without NX the CPU executes everything (bit 63 is reserved there and
     * nx_bit is 0). */
    if (!((e | up_or) & m->nx_bit))
        f |= MM_MAP_EXEC;
    out->page_va = va & ~page_mask;
    out->page_pa = page_pa;
    out->pa = page_pa | (va & page_mask);
    out->size = (mm_page_size_t)shift;
    out->flags = f;
    return MM_OK;
}

/* The same result as pt_lookup + pt_leaf_flags in one tight pass: the HHDM
 * offset is read once, each level is unrolled with a constant shift and only
 * loads, tests and accumulates (AND of the intermediate entries for RW/US,
 * OR for NX), and the flags come from one table lookup at the leaf. */
mm_status_t x86pt_translate(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_translation_t *out)
{
    if (!pt_root_ok(m, root) || out == NULL)
        return MM_ERR_INVALID;
    if (!pt_canonical(m, va))
        return MM_ERR_NOT_CANONICAL;
    const uint64_t off = hhdm_offset_value;
    const uint64_t *table = (const uint64_t *)(uintptr_t)(root + off);
    uint64_t up_and = ~(uint64_t)0, up_or = 0, e;
/* One level with a constant shift: load, stop on non-present, accumulate
 * the intermediate bits and descend. PS makes a leaf only at levels 3 and
 * 2 (the same rule as pt_is_leaf); level 1 entries are always leaves. */
#define TR_LOAD(sh)                                                                                \
    do {                                                                                           \
        e = pte_load(&table[(va >> (sh)) & (X86PT_ENTRIES - 1u)]);                                 \
        if (!(e & PTE_P))                                                                          \
            return MM_ERR_NOT_MAPPED;                                                              \
    } while (0)
#define TR_DESCEND()                                                                               \
    do {                                                                                           \
        up_and &= e;                                                                               \
        up_or |= e;                                                                                \
        table = (const uint64_t *)(uintptr_t)((e & PTE_ADDR_MASK) + off);                          \
    } while (0)
    if (m->levels == 5) {
        TR_LOAD(48);
        TR_DESCEND();
    }
    TR_LOAD(39);
    TR_DESCEND();
    TR_LOAD(30);
    if (e & PTE_PS)
        return tr_finish(m, va, e, up_and, up_or, 30, out);
    TR_DESCEND();
    TR_LOAD(21);
    if (e & PTE_PS)
        return tr_finish(m, va, e, up_and, up_or, 21, out);
    TR_DESCEND();
    TR_LOAD(12);
#undef TR_LOAD
#undef TR_DESCEND
    return tr_finish(m, va, e, up_and, up_or, 12, out);
}

PTK_PAGE_MAPPER(x86pt, x86pt_t)
