/*
 * hadron-mm pmm: reserving and releasing ranges after initialisation.
 */
#include "pmm_internal.h"

/* Frames of [f0, f1) that are cached (managed, neither free nor held):
 * any at all? */
static bool any_cached(const pmm_t *p, uint64_t f0, uint64_t f1)
{
    uint64_t w0 = f0 >> 6, w1 = (f1 - 1) >> 6;
    for (uint64_t w = w0; w <= w1; w++) {
        unsigned lo = w == w0 ? (unsigned)(f0 & 63) : 0;
        unsigned hi = w == w1 ? (unsigned)((f1 - 1) & 63) + 1 : 64;
        uint64_t x = PMM_USABLE(p, w) & ~PMM_FREE(p, w) & ~pmm_held_word(p, w);
        if ((x & pmm_mask(lo, hi)) != 0)
            return true;
    }
    return false;
}

/* Instance lock held: why [f0, f1) cannot be reserved, or MM_OK. */
static mm_status_t reserve_refusal(const pmm_t *p, uint64_t f0, uint64_t f1)
{
    uint64_t m0 = p->meta_base >> MM_PAGE_SHIFT, m1 = m0 + p->meta_frames;
    if (f1 > p->span_frames)
        return MM_ERR_RANGE;
    /* The caller believes something of its own lives there (the usual
     * case: a kernel image the map called usable, reserved too late).
     * Succeeding would hide that the bitmaps were written over it. */
    if (f0 < m1 && m0 < f1)
        return MM_ERR_OVERLAP;
    /* An allocated frame is in use and cannot be taken away. */
    if (pmm_held_first(p, f0, f1, true) != PMM_NONE)
        return MM_ERR_STATE;
    return MM_OK;
}

/* Instance lock held, no frame of [f0, f1) cached or allocated. */
static void reserve_locked(pmm_t *p, uint64_t f0, uint64_t f1)
{
    uint64_t n = pmm_bits_count(pmm_usable_bits(p), f0, f1);
    MM_ASSERT(n == pmm_bits_count(pmm_free_bits(p), f0, f1));
    if (n == 0)
        return;
    pmm_range_set_free_locked(p, f0, f1, false);
    pmm_bits_assign(pmm_usable_bits(p), f0, f1, false);
#if HADRON_MM_PMM_POISON
    pmm_bits_assign(pmm_plain_bits(p->poison_bm), f0, f1, false);
#endif
    p->usable_frames -= n;
    p->free_frames -= n;
}

mm_status_t pmm_reserve(pmm_t *pmm, mm_paddr_t base, uint64_t length)
{
    uint64_t last;
    if (pmm == NULL || length == 0 || __builtin_add_overflow(base, length - 1, &last))
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    /* Outward: reserving a byte reserves its frame. */
    uint64_t f0 = base >> MM_PAGE_SHIFT, f1 = (last >> MM_PAGE_SHIFT) + 1;

    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    mm_status_t st = reserve_refusal(pmm, f0, f1);
    bool cached = st == MM_OK && any_cached(pmm, f0, f1);
    if (st == MM_OK && !cached)
        reserve_locked(pmm, f0, f1);
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
    if (!cached)
        return st;
    /* Cached frames are free memory: take them out of their caches, with
     * the caches held so none comes back, and decide again (another CPU
     * may have allocated in the range meanwhile). */
    if (!pmm_pcp_lock_all(pmm, &flags))
        return MM_ERR_UNSUPPORTED;
    st = reserve_refusal(pmm, f0, f1);
    if (st == MM_OK) {
        pmm_pcp_drain_all_locked(pmm, f0, f1);
        reserve_locked(pmm, f0, f1);
    }
    pmm_pcp_unlock_all(pmm, flags);
    return st;
}

mm_status_t pmm_release(pmm_t *pmm, mm_paddr_t base, uint64_t length)
{
    uint64_t last;
    if (pmm == NULL || length == 0 || __builtin_add_overflow(base, length - 1, &last))
        return MM_ERR_INVALID;
    /* Inward: only frames wholly inside the range are handed over. */
    uint64_t f0 = (base >> MM_PAGE_SHIFT) + ((base & (MM_PAGE_SIZE - 1)) != 0);
    uint64_t f1 = (last >> MM_PAGE_SHIFT) + ((last & (MM_PAGE_SIZE - 1)) == MM_PAGE_SIZE - 1);
    if (f0 >= f1)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;

    mm_status_t st = MM_OK;
    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    uint64_t m0 = pmm->meta_base >> MM_PAGE_SHIFT, m1 = m0 + pmm->meta_frames;
    if (f1 > pmm->span_frames) {
        st = MM_ERR_RANGE;
    } else if (f0 == 0 || (f0 < m1 && m0 < f1)) {
        st = MM_ERR_OVERLAP;
    } else if (pmm_bits_first(pmm_usable_bits(pmm), f0, f1, true) != PMM_NONE) {
        st = MM_ERR_EXISTS;
    } else {
        MM_ASSERT(pmm_bits_first(pmm_free_bits(pmm), f0, f1, true) == PMM_NONE);
        pmm_bits_assign(pmm_usable_bits(pmm), f0, f1, true);
        pmm_range_set_free_locked(pmm, f0, f1, true);
        pmm->usable_frames += f1 - f0;
        pmm->free_frames += f1 - f0;
    }
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
    return st;
}
