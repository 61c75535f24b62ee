/* Changing the flags of one mapped page. */
#include "x86pt_internal.h"

void pt_protect_leaf(x86pt_t *m, pt_path_t *path, mm_vaddr_t va, mm_map_flags_t flags,
                     mm_tlb_batch_t *tlb)
{
    unsigned level = path->level;
    mm_page_size_t size = pt_size_of(level);
    uint64_t *slot = path->slot[level];
    uint64_t mask = pt_flag_mask(level);
    uint64_t bits = pt_leaf_bits(m, flags, level) & mask;

    if (flags & MM_MAP_USER)
        pt_grant_user(path, m->levels, level, va, size, tlb);
    /* Compare-exchange so an accessed/dirty bit the CPU sets between our
     * load and store survives (a lost dirty bit loses data on writeback). */
    uint64_t old = pte_load(slot);
    uint64_t want;
    do {
        MM_ASSERT((old & PTE_P) && pt_is_leaf(old, level));
        want = (old & ~mask) | bits;
        if (want == old)
            return;
    } while (!__atomic_compare_exchange_n(slot, &old, want, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    mm_tlb_batch_add(tlb, va, size, (old & PTE_G) != 0);
}

mm_status_t x86pt_protect(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                          mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    mm_status_t st = pt_check_page(m, root, va, size);
    if (st != MM_OK)
        return st;
    if (tlb == NULL)
        return MM_ERR_INVALID;
    st = pt_check_flags(m, flags, pt_kernel_half(va));
    if (st != MM_OK)
        return st;
    pt_path_t path;
    st = pt_find_leaf(m, root, va, pt_level_of(size), &path);
    if (st != MM_OK)
        return st;
    pt_protect_leaf(m, &path, va, flags, tlb);
    return MM_OK;
}
