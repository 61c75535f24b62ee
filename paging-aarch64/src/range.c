/* Range operations: the kit's all-or-nothing ranges (ptk_map_range,
 * ptk_change_range) instantiated for this format. */
#include "a64_internal.h"

mm_status_t a64pt_map_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                            uint64_t len, mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    ptk_geom_t g = a64_geom_or_none(m);
    return ptk_map_range(&a64_ops, m, &g, root, va, pa, len, flags, tlb);
}

mm_status_t a64pt_unmap_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                              unsigned opts, mm_leaf_fn leaf, void *leaf_arg,
                              mm_tlb_batch_t *tlb)
{
    ptk_geom_t g = a64_geom_or_none(m);
    ptk_step_ctx_t ctx = {.fn = leaf, .arg = leaf_arg, .tlb = tlb};
    return ptk_change_range(&a64_ops, m, &g, root, va, len,
                            (opts & ~(unsigned)A64PT_RANGE_ALLOW_HOLES) == 0,
                            (opts & A64PT_RANGE_ALLOW_HOLES) != 0, PTK_STEP_UNMAP, &ctx);
}

mm_status_t a64pt_protect_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                                mm_map_flags_t flags, unsigned opts, mm_tlb_batch_t *tlb)
{
    ptk_geom_t g = a64_geom_or_none(m);
    ptk_step_ctx_t ctx = {.flags = flags, .tlb = tlb};
    return ptk_change_range(&a64_ops, m, &g, root, va, len,
                            (opts & ~(unsigned)A64PT_RANGE_ALLOW_HOLES) == 0,
                            (opts & A64PT_RANGE_ALLOW_HOLES) != 0, PTK_STEP_PROTECT, &ctx);
}
