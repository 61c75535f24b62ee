/*
 * hadron-mm pmm: single-frame allocation.
 */
#include "pcp_fast.h"

mm_status_t pmm_alloc_one_locked(pmm_t *p, uint64_t hi, uint64_t *frame)
{
    if (p->free_frames == 0)
        return MM_ERR_NOMEM;
    uint64_t f = p->hot;
    if (hi >= p->span_frames && f != PMM_NONE && (PMM_FREE(p, f >> 6) & pmm_bit(f))) {
        /* LIFO reuse of the frame freed last: no search, no second cache
         * miss, and the hint stays where the address-ordered search left it. */
        p->hot = PMM_NONE;
    } else if (hi >= p->span_frames) {
        /* Next fit from the hint, then wrap: the summary tree makes the
         * distance to the next free frame cost log64 levels at worst. */
        f = pmm_tree_find(&p->any, p->hint);
        if (f == PMM_NONE)
            f = pmm_tree_find(&p->any, 0);
        MM_ASSERT(f != PMM_NONE && f < p->span_frames);
        p->hint = f + 1 < p->span_frames ? f + 1 : 0;
    } else {
        /* Under a limit the lowest frame is the best bet. */
        f = pmm_tree_find(&p->any, 0);
        if (f == PMM_NONE || f >= hi)
            return MM_ERR_NOMEM;
    }
    pmm_set_used_locked(p, f);
    pmm_held_mark(p, f, 0);
    p->free_frames--;
#if HADRON_MM_PMM_POISON
    pmm_poison_verify_locked(p, f, f + 1);
#endif
    *frame = f;
    return MM_OK;
}

/* No lock held, interrupts as the caller left them: the bitmap had no
 * frame, so every cache is drained into it first (the caches held, so "no
 * memory" means no CPU held a free frame at that moment). */
static mm_status_t alloc_after_draining(pmm_t *p, uint64_t *f)
{
    mm_irqflags_t flags;
    if (pmm_pcp_total(p) == 0 || !pmm_pcp_lock_all(p, &flags))
        return MM_ERR_NOMEM;
    pmm_pcp_drain_all_locked(p, 0, p->span_frames);
    mm_status_t st = pmm_alloc_one_locked(p, PMM_NONE, f);
    pmm_pcp_unlock_all(p, flags);
    return st;
}

mm_status_t pmm_alloc(pmm_t *pmm, mm_paddr_t *out)
{
    if (pmm == NULL || out == NULL)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    uint64_t f;
    mm_status_t st = MM_OK;
    mm_irqflags_t flags = mm_hook_irq_save();
    pmm_pcp_t *c = pmm_pcp_mine(pmm);
    if (c == NULL || !pmm_pcp_alloc(pmm, c, &f)) {
        mm_spin_lock(&pmm->lock);
        st = pmm_alloc_one_locked(pmm, PMM_NONE, &f);
        mm_spin_unlock(&pmm->lock);
    }
    mm_hook_irq_restore(flags);
    if (st == MM_ERR_NOMEM)
        st = alloc_after_draining(pmm, &f);
    if (st == MM_OK)
        *out = f << MM_PAGE_SHIFT;
    return st;
}

mm_status_t pmm_alloc_zeroed(pmm_t *pmm, mm_paddr_t *out)
{
    if (out == NULL)
        return MM_ERR_INVALID;
    mm_paddr_t pa;
    mm_status_t st = pmm_alloc(pmm, &pa);
    if (st != MM_OK)
        return st;
    /* The frame is ours now: zero it without holding the lock. */
    __builtin_memset(hhdm_phys_to_virt(pa), 0, MM_PAGE_SIZE);
    *out = pa;
    return MM_OK;
}
