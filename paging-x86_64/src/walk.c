/* Table lifetime: count decrements that free emptied tables, the frame
 * reserve that lets changes allocate everything up front, user-bit grants. */
#include "x86pt_internal.h"

void pt_count_dec(x86pt_t *m, pt_path_t *path, mm_vaddr_t va, unsigned level,
                  mm_tlb_batch_t *tlb)
{
    while (level != m->levels && !pt_pinned(m, va, level)) {
        uint64_t *parent = path->slot[level + 1];
        uint64_t old = pte_load(parent);
        MM_ASSERT(pt_count_of(old) > 0);
        if (pt_count_of(old) != 1) {
            pte_store(parent, old - PTE_COUNT_ONE); /* see pt_count_inc */
            return;
        }
        /* Unlink so no new walk can reach the table. A CPU may still hold
         * the old entry in a paging-structure cache until the caller's
         * flush (covered by the record of va), so the frame goes back to
         * the allocator only then, never to a new owner before. */
        pte_store(parent, 0);
        pt_table_retire(m, pt_table_pa(old), tlb);
        level++;
    }
}

void pt_frame_free(x86pt_t *m, mm_paddr_t frame)
{
    mm_status_t st = mm_frame_free(&m->frames, frame);
    MM_ASSERT(st == MM_OK);
    (void)st;
}

static mm_paddr_t reserve_pop(pt_reserve_t *r)
{
    MM_ASSERT(r->count != 0);
    mm_paddr_t f = r->head;
    r->head = *pt_table(f);
    r->count--;
    return f;
}

mm_status_t pt_reserve_fill(x86pt_t *m, pt_reserve_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mm_paddr_t f;
        if (m->frames.alloc(m->frames.ctx, 1, 1, m->phys_end, &f) != MM_OK) {
            /* This call's frames are the i most recent pushes. */
            while (i-- != 0)
                pt_frame_free(m, reserve_pop(r));
            return MM_ERR_NOMEM;
        }
        MM_ASSERT(mm_is_aligned(f, MM_PAGE_SIZE) && f < hhdm_window_size);
        *pt_table(f) = r->head;
        r->head = f;
        r->count++;
    }
    return MM_OK;
}

mm_paddr_t pt_reserve_take(pt_reserve_t *r)
{
    mm_paddr_t f = reserve_pop(r);
    __builtin_memset(pt_table(f), 0, MM_PAGE_SIZE);
    return f;
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
