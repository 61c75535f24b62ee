/* Changing the flags of one mapped page, with break-before-make where the
 * architecture requires it. */
#include "a64_internal.h"

void a64_protect_leaf(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, mm_map_flags_t flags,
                      mm_tlb_batch_t *tlb)
{
    unsigned level = path->level;
    uint64_t *slot = path->slot[level];
    uint64_t bits = a64_leaf_bits(m, flags, level) & D_FLAG_MASK;
    uint64_t old = d_load(slot);
    MM_ASSERT(a64_valid(old, level) && a64_is_leaf(old, level));

    if (((old ^ bits) & D_BBM_MASK) != 0) {
        /* Memory type or nG changes: a TLB may not hold both the old and
         * the new entry (Arm ARM, break-before-make), so go through invalid with a completed
         * invalidation in between. Nothing stale remains for the batch. */
        a64_bbm_store(slot, va, a64_size_of(level), (old & D_NG) == 0, bits, ~D_FLAG_MASK, tlb);
        return;
    }
    /* Permissions only: change in place. Compare-exchange so an AF the
     * hardware sets between load and store survives. */
    uint64_t want;
    do {
        want = (old & ~D_FLAG_MASK) | bits;
        if (want == old)
            return;
    } while (!__atomic_compare_exchange_n(slot, &old, want, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    mm_tlb_batch_add(tlb, va, a64_size_of(level), (old & D_NG) == 0);
}

mm_status_t a64pt_protect(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                          mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    mm_status_t st = a64_check_page(m, root, va, size);
    if (st != MM_OK)
        return st;
    if (tlb == NULL)
        return MM_ERR_INVALID;
    st = a64_check_flags(flags, a64_kernel_half(va));
    if (st != MM_OK)
        return st;
    a64_path_t path;
    st = a64_find_leaf(m, root, va, a64_level_of(size), &path);
    if (st != MM_OK)
        return st;
    a64_protect_leaf(m, &path, va, flags, tlb);
    return MM_OK;
}
