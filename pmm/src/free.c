/*
 * hadron-mm pmm: freeing single frames and runs.
 *
 * Every check runs before anything changes, and a rejected free is also
 * reported to mm_hook_warn (after the lock is dropped, as the hook's
 * contract asks): a bad free is a memory-safety bug in the caller even
 * though the allocator survives it.
 */
#include "pcp_fast.h"

static void warn(mm_status_t st, uint64_t addr)
{
    mm_report_t r = {
        .kind = st == MM_ERR_DOUBLE_FREE ? MM_REPORT_DOUBLE_FREE : MM_REPORT_BAD_POINTER,
        .message = st == MM_ERR_DOUBLE_FREE  ? "pmm: frame freed twice"
                   : st == MM_ERR_NOT_USABLE ? "pmm: freeing a frame that was never usable"
                   : st == MM_ERR_RANGE      ? "pmm: freeing a frame beyond the managed span"
                                             : "pmm: freeing an unaligned address",
        .file = __FILE__,
        .line = __LINE__,
        .address = addr,
        .offset = 0,
        .found = 0,
        .expected = 0,
    };
    mm_hook_warn(&r);
}

/* Interrupts off, no lock held: frame f (< span) straight to the bitmap. */
static mm_status_t free_locked_path(pmm_t *p, uint64_t f)
{
    mm_status_t st = MM_OK;
    mm_spin_lock(&p->lock);
    if ((PMM_USABLE(p, f >> 6) & pmm_bit(f)) == 0) {
        st = MM_ERR_NOT_USABLE;
    } else if (!pmm_held_take(p, f)) {
        /* Free in the bitmap, or sitting in a CPU's cache. */
        st = MM_ERR_DOUBLE_FREE;
    } else {
#if HADRON_MM_PMM_POISON
        pmm_poison_fill_locked(p, f, f + 1);
#endif
        pmm_set_free_locked(p, f);
        p->free_frames++;
        /* The next single allocation takes this frame back (cache-hot);
         * after it, the search resumes from the lowest frame freed since,
         * which keeps allocations packed low. */
        p->hot = f;
        if (f < p->hint)
            p->hint = f;
    }
    mm_spin_unlock(&p->lock);
    return st;
}

mm_status_t pmm_free(pmm_t *pmm, mm_paddr_t frame)
{
    if (pmm == NULL)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    if (!mm_is_aligned(frame, MM_PAGE_SIZE)) {
        warn(MM_ERR_ALIGN, frame);
        return MM_ERR_ALIGN;
    }
    uint64_t f = frame >> MM_PAGE_SHIFT;
    /* span_frames never changes after initialisation. */
    if (f >= pmm->span_frames) {
        warn(MM_ERR_RANGE, frame);
        return MM_ERR_RANGE;
    }
    /* The frame's held word is usually a cache miss; start it now so it
     * overlaps taking the lock. */
    __builtin_prefetch(&pmm->held_bm[2 * (f >> 6)], 1);
    mm_irqflags_t flags = mm_hook_irq_save();
    pmm_pcp_t *c = pmm_pcp_mine(pmm);
    mm_status_t st;
    if (c == NULL || !pmm_pcp_free(pmm, c, f, &st))
        st = free_locked_path(pmm, f);
    mm_hook_irq_restore(flags);
    if (st != MM_OK)
        warn(st, frame);
    return st;
}

mm_status_t pmm_free_contig(pmm_t *pmm, mm_paddr_t base, size_t count)
{
    if (pmm == NULL || count == 0)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    if (!mm_is_aligned(base, MM_PAGE_SIZE)) {
        warn(MM_ERR_ALIGN, base);
        return MM_ERR_ALIGN;
    }
    uint64_t f0 = base >> MM_PAGE_SHIFT;
    uint64_t bad = base;
    mm_status_t st = MM_OK;
    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    if (f0 >= pmm->span_frames || count > pmm->span_frames - f0) {
        st = MM_ERR_RANGE;
    } else {
        uint64_t f1 = f0 + count;
        uint64_t x = pmm_bits_first(pmm_usable_bits(pmm), f0, f1, false);
        if (x != PMM_NONE) {
            st = MM_ERR_NOT_USABLE;
        } else {
            /* Every frame must be held: one that is free or cached is a
             * double free, and so is one that a concurrent cached free
             * takes between this check and the clearing. */
            x = pmm_held_first(pmm, f0, f1, false);
            if (x == PMM_NONE && !pmm_held_take_range(pmm, f0, f1))
                x = f0;
            if (x != PMM_NONE)
                st = MM_ERR_DOUBLE_FREE;
        }
        if (st == MM_OK) {
#if HADRON_MM_PMM_POISON
            pmm_poison_fill_locked(pmm, f0, f1);
#endif
            pmm_range_set_free_locked(pmm, f0, f1, true);
            pmm->free_frames += count;
            if (f0 < pmm->hint)
                pmm->hint = f0;
        } else {
            bad = x << MM_PAGE_SHIFT;
        }
    }
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
    if (st != MM_OK)
        warn(st, bad);
    return st;
}
