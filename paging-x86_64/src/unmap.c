/* Unmapping one page and freeing the tables it leaves empty. */
#include "x86pt_internal.h"

uint64_t pt_unmap_leaf(x86pt_t *m, pt_path_t *path, mm_vaddr_t va, mm_tlb_batch_t *tlb)
{
    unsigned level = path->level;
    /* Load then store, no exchange: the bits we use (address, global) are
     * only ever written by software, and the dirty bit the CPU might set in
     * between is not reported by this interface. An unmap that reports
     * dirtiness must switch to an exchange. */
    uint64_t old = pte_load(path->slot[level]);
    pte_store(path->slot[level], 0);
    MM_ASSERT((old & PTE_P) && pt_is_leaf(old, level));
    mm_tlb_batch_add(tlb, va, pt_size_of(level), (old & PTE_G) != 0);
    pt_count_dec(m, path, va, level, tlb);
    return old;
}

mm_status_t x86pt_unmap(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                        mm_paddr_t *pa_out, mm_tlb_batch_t *tlb)
{
    mm_status_t st = pt_check_page(m, root, va, size);
    if (st != MM_OK)
        return st;
    if (tlb == NULL)
        return MM_ERR_INVALID;
    pt_path_t path;
    unsigned level = pt_level_of(size);
    st = pt_find_leaf(m, root, va, level, &path);
    if (st != MM_OK)
        return st;
    uint64_t old = pt_unmap_leaf(m, &path, va, tlb);
    if (pa_out != NULL)
        *pa_out = pt_leaf_pa(old, level);
    return MM_OK;
}
