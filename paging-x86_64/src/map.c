/* Mapping one page: plan (read-only), reserve tables, commit (cannot fail). */
#include "x86pt_internal.h"

void pt_map_commit(x86pt_t *m, pt_map_plan_t *plan, mm_vaddr_t va, mm_paddr_t pa,
                   mm_map_flags_t flags, pt_reserve_t *r, mm_tlb_batch_t *tlb)
{
    unsigned stop = plan->path.level;
    unsigned leaf_level = plan->leaf_level;
    mm_page_size_t size = pt_size_of(leaf_level);
    uint64_t user = (flags & MM_MAP_USER) ? PTE_US : 0;

    /* Build the missing tables bottom-up, invisible until the last store:
     * the CPU may walk speculatively at any time and must never see a
     * half-built path. */
    uint64_t entry = pt_leaf_bits(m, flags, leaf_level) | pa;
    for (unsigned k = leaf_level; k < stop; k++) {
        mm_paddr_t t = pt_reserve_take(r);
        pte_store(&pt_table(t)[pt_index(va, k)], entry);
        entry = t | PTE_TABLE_BITS | user | (pt_pinned(m, va, k) ? 0 : PTE_COUNT_ONE);
    }
    if (user)
        pt_grant_user(&plan->path, m->levels, stop, va, size, tlb);
    pte_publish(plan->path.slot[stop], entry);

    if (plan->replace != 0) {
        MM_ASSERT(stop == leaf_level);
        /* A count of 0 must mean no entries; anything else is corruption. */
        const uint64_t *old = pt_table(plan->replace);
        for (unsigned i = 0; i < X86PT_ENTRIES; i++)
            MM_ASSERT(!(pte_load(&old[i]) & PTE_P));
        /* The old table was reachable until the publish above: cached
         * pointers to it must go before its frame has a new owner. */
        mm_tlb_batch_add(tlb, va, size, false);
        pt_table_retire(m, plan->replace, tlb);
    } else {
        pt_count_inc(m, &plan->path, va, stop);
    }
}

mm_status_t x86pt_map(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                      mm_page_size_t size, mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    mm_status_t st = pt_check_page(m, root, va, size);
    if (st != MM_OK)
        return st;
    if (tlb == NULL)
        return MM_ERR_INVALID;
    st = pt_check_flags(m, flags, pt_kernel_half(va));
    if (st != MM_OK)
        return st;
    if (size == MM_PAGE_1G && !m->pages_1g)
        return MM_ERR_UNSUPPORTED;
    uint64_t bytes = mm_page_bytes(size);
    if (!mm_is_aligned(pa, bytes))
        return MM_ERR_ALIGN;
    if (pa >= m->phys_end || m->phys_end - pa < bytes)
        return MM_ERR_RANGE;

    unsigned leaf_level = pt_level_of(size);
    pt_map_plan_t plan;
    st = pt_map_plan(m, root, va, leaf_level, &plan);
    if (st != MM_OK)
        return st;
    if (pt_map_commit_fast(m, &plan, va, pa, flags, tlb))
        return MM_OK; /* the path existed: no reserve needed */
    pt_reserve_t r = PT_RESERVE_INIT;
    if (plan.new_tables != 0) {
        st = pt_reserve_fill(m, &r, plan.new_tables);
        if (st != MM_OK)
            return st;
    }
    pt_map_commit(m, &plan, va, pa, flags, &r, tlb);
    MM_ASSERT(r.count == 0);
    return MM_OK;
}
