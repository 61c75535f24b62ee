/* Unmapping one page and freeing the tables it leaves empty. */
#include "a64_internal.h"

uint64_t a64_unmap_leaf(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, mm_tlb_batch_t *tlb)
{
    unsigned level = path->level;
    /* Valid -> invalid needs no break-before-make; the stale translation
     * goes with the caller's flush. An exchange, so AF set meanwhile is
     * part of what we saw (the interface does not report it). */
    uint64_t old = __atomic_exchange_n(path->slot[level], 0, __ATOMIC_RELAXED);
    MM_ASSERT(a64_valid(old, level) && a64_is_leaf(old, level));
    mm_tlb_batch_add(tlb, va, a64_size_of(level), (old & D_NG) == 0);
    a64_count_dec(m, path, va, level, tlb);
    return old;
}

mm_status_t a64pt_unmap(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                        mm_paddr_t *pa_out, mm_tlb_batch_t *tlb)
{
    mm_status_t st = a64_check_page(m, root, va, size);
    if (st != MM_OK)
        return st;
    if (tlb == NULL)
        return MM_ERR_INVALID;
    a64_path_t path;
    unsigned level = a64_level_of(size);
    st = a64_find_leaf(m, root, va, level, &path);
    if (st != MM_OK)
        return st;
    uint64_t old = a64_unmap_leaf(m, &path, va, tlb);
    if (pa_out != NULL)
        *pa_out = a64_leaf_pa(m, old, level);
    return MM_OK;
}
