/* Table lifetime: the kit's count decrements and frees instantiated for
 * this format, and user-bit grants. */
#include "x86pt_internal.h"

void pt_count_dec(x86pt_t *m, pt_path_t *path, mm_vaddr_t va, unsigned level,
                  mm_tlb_batch_t *tlb)
{
    ptk_geom_t g = pt_geom(m);
    ptk_count_dec(&pt_ops, m, &g, path, va, level, tlb);
}

void pt_frame_free(x86pt_t *m, mm_paddr_t frame)
{
    ptk_geom_t g = pt_geom(m);
    ptk_frame_free(&g, frame);
}

void pt_grant_user(pt_path_t *path, unsigned top, unsigned level, mm_vaddr_t va,
                   mm_page_size_t size, mm_tlb_batch_t *tlb)
{
    bool changed = false;
    for (unsigned l = top; l > level; l--) {
        if (!(pte_load(path->slot[l]) & PTE_US)) {
            __atomic_fetch_or(path->slot[l], PTE_US, __ATOMIC_RELAXED);
            changed = true;
        }
    }
    /* Paging-structure caches may hold the old supervisor-only entry; a
     * user access would then fault spuriously. */
    if (changed)
        mm_tlb_batch_add(tlb, va, size, false);
}
