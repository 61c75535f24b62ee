/* Mapping one page: plan (read-only), reserve tables, commit (cannot fail). */
#include "a64_internal.h"

void a64_map_commit(a64pt_t *m, a64_map_plan_t *plan, mm_vaddr_t va, mm_paddr_t pa,
                    mm_map_flags_t flags, a64_reserve_t *r, mm_tlb_batch_t *tlb)
{
    unsigned stop = plan->path.level;
    unsigned leaf_level = plan->leaf_level;

    /* Build the missing tables bottom-up, invisible until the last store:
     * a walker may read any table at any time, speculatively too. */
    uint64_t entry = a64_leaf_bits(m, flags, leaf_level) | a64_addr_bits(m, pa);
    for (unsigned k = leaf_level; k < stop; k++) {
        mm_paddr_t t = a64_reserve_take(r);
        d_store(&a64_table(t)[a64_index(va, k)], entry);
        entry = a64_addr_bits(m, t) | D_VALID | D_TABLE |
                (a64_pinned(m, va, k) ? 0 : a64_count_bits(1));
    }

    if (plan->replace != 0) {
        MM_ASSERT(stop == leaf_level);
        const uint64_t *old = a64_table(plan->replace);
        for (unsigned i = 0; i < A64PT_ENTRIES; i++)
            MM_ASSERT(!(d_load(&old[i]) & D_VALID));
        /* Table -> block is a change of shape: break-before-make. The
         * frame still goes through the batch, so it is freed after the
         * caller's flush like every unlinked table. */
        a64_bbm_store(plan->path.slot[stop], va, a64_size_of(leaf_level), false, entry, 0, tlb);
        a64_table_retire(m, plan->replace, tlb);
        return;
    }
    d_publish(plan->path.slot[stop], entry);
    a64_count_inc(m, &plan->path, va, stop);
}

mm_status_t a64pt_map(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                      mm_page_size_t size, mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    mm_status_t st = a64_check_page(m, root, va, size);
    if (st != MM_OK)
        return st;
    if (tlb == NULL)
        return MM_ERR_INVALID;
    st = a64_check_flags(flags, a64_kernel_half(va));
    if (st != MM_OK)
        return st;
    uint64_t bytes = mm_page_bytes(size);
    if (!mm_is_aligned(pa, bytes))
        return MM_ERR_ALIGN;
    if (pa >= m->phys_end || m->phys_end - pa < bytes)
        return MM_ERR_RANGE;

    a64_map_plan_t plan;
    st = a64_map_plan(m, root, va, a64_level_of(size), &plan);
    if (st != MM_OK)
        return st;
    a64_reserve_t r = A64_RESERVE_INIT;
    if (plan.new_tables != 0) {
        st = a64_reserve_fill(m, &r, plan.new_tables);
        if (st != MM_OK)
            return st;
    }
    a64_map_commit(m, &plan, va, pa, flags, &r, tlb);
    MM_ASSERT(r.count == 0);
    a64_walker_sync();
    return MM_OK;
}
