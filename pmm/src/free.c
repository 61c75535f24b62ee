/*
 * hadron-mm pmm: freeing single frames and runs.
 *
 * Every check runs before anything changes, and a rejected free is also
 * reported to mm_hook_warn (after the lock is dropped, as the hook's
 * contract asks): a bad free is a memory-safety bug in the caller even
 * though the allocator survives it.
 */
#include "pmm_internal.h"

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
    /* The word pair of a random frame is usually a cache miss; start it now
     * so it overlaps taking the lock. span and bm never change after
     * initialisation, so reading them unlocked is safe. */
    if (f < pmm->span_frames)
        __builtin_prefetch(&PMM_FREE(pmm, f >> 6), 1);
    mm_status_t st = MM_OK;
    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    if (f >= pmm->span_frames) {
        st = MM_ERR_RANGE;
    } else if ((PMM_USABLE(pmm, f >> 6) & pmm_bit(f)) == 0) {
        st = MM_ERR_NOT_USABLE;
    } else if (PMM_FREE(pmm, f >> 6) & pmm_bit(f)) {
        st = MM_ERR_DOUBLE_FREE;
    } else {
#if HADRON_MM_PMM_POISON
        pmm_poison_fill_locked(pmm, f, f + 1);
#endif
        pmm_set_free_locked(pmm, f);
        pmm->free_frames++;
        /* The next single allocation takes this frame back (cache-hot);
         * after it, the search resumes from the lowest frame freed since,
         * which keeps allocations packed low. */
        pmm->hot = f;
        if (f < pmm->hint)
            pmm->hint = f;
    }
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
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
            x = pmm_bits_first(pmm_free_bits(pmm), f0, f1, true);
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
