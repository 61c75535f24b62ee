/*
 * kheap blocks: giving whole pages back through the release callback. The
 * pages are cut out of their region (region.c), so what the heap keeps
 * never has a hole in it: no block, header or footer ever lies in released
 * memory, and coalescing and the one-free-block-per-region guarantee hold
 * for the regions that remain.
 */
#include "block.h"

#define KH_PAGE ((uintptr_t)KHEAP_PAGE)

static uintptr_t kh_page_up(uintptr_t x)
{
    return (x + KH_PAGE - 1) & ~(KH_PAGE - 1);
}

bool kh_trim_span(kheap_t *heap, const kh_block_t *f, uintptr_t min, uintptr_t *lo_out,
                  uintptr_t *hi_out)
{
    uintptr_t fa = kh_addr(f), fe = fa + kh_size(f);
    kh_region_t *r = kh_region_find(heap, fa);
    MM_ASSERT(r != NULL);
    uintptr_t rbase = kh_region_end(r) - kh_size(&r->node), rend = kh_region_end(r);
    bool first = fa == rbase + KH_REGION_DESC, last = fe == rend - KH_END_MARK;
    /* kheap_init's memory is the caller's, not the callback's: only what
     * lies above it counts (it is where growth continues). */
    uintptr_t from = fa;
    bool pinned = fa < heap->pin_hi && heap->pin_lo < fe;
    if (pinned) {
        if (heap->pin_hi >= fe)
            return false;
        from = heap->pin_hi;
    }

    /* Below: the region's own start when f is its first block, else an end
     * marker after f's remaining head, which is nothing or a whole block
     * (and never the only thing left in its region). */
    uintptr_t lo;
    if (!pinned && first && (rbase & (KH_PAGE - 1)) == 0) {
        lo = rbase;
    } else {
        lo = kh_page_up(from + KH_END_MARK);
        uintptr_t head = lo - KH_END_MARK - fa;
        if ((head != 0 && head < KH_MIN_BLOCK) || (head == 0 && first))
            lo += KH_PAGE;
    }
    /* Above: the region's own end when f is its last block, else a new
     * region's descriptor before f's remaining tail, on the same terms. */
    uintptr_t hi;
    if (last && (rend & (KH_PAGE - 1)) == 0) {
        hi = rend;
    } else {
        if (fe < KH_REGION_DESC + 2 * KH_PAGE)
            return false;
        hi = (fe - KH_REGION_DESC) & ~(KH_PAGE - 1);
        uintptr_t tail = fe - hi - KH_REGION_DESC;
        if ((tail != 0 && tail < KH_MIN_BLOCK) || (tail == 0 && last))
            hi -= KH_PAGE;
    }
    if (hi <= lo || hi - lo < min)
        return false;
    *lo_out = lo;
    *hi_out = hi;
    return true;
}

/* Cut [lo, hi) out of f's region and hand it to the callback with the lock
 * dropped; if the callback refuses, the range comes back as a region. True
 * when the callback took it. Lock held on entry and return. */
static bool kh_give_back(kheap_t *heap, kh_block_t *f, uintptr_t lo, uintptr_t hi,
                         mm_irqflags_t *flags)
{
    kh_region_cut_locked(heap, kh_region_find(heap, kh_addr(f)), f, lo, hi);
    kheap_release_fn release = heap->release;
    void *ctx = heap->release_ctx;
    heap->release_calls++;
    kh_unlock(heap, *flags);
    mm_status_t st = release(ctx, (void *)lo, hi - lo);
    *flags = kh_lock(heap);
    if (st == MM_OK) {
        heap->released_bytes += hi - lo;
        heap->released_since_growth = true;
        return true;
    }
    heap->release_refused = true;
    mm_status_t back = kh_region_add_locked(heap, lo, hi - lo);
    MM_ASSERT(back == MM_OK); /* it was ours a moment ago and nobody else adds it */
    (void)back;
    return false;
}

void kh_trim_after_free(kheap_t *heap, kh_block_t *f, mm_irqflags_t *flags)
{
    uintptr_t lo, hi;
    if (heap->release == NULL || heap->release_refused ||
        kh_size(f) < heap->trim_threshold ||
        !kh_trim_span(heap, f, heap->trim_threshold, &lo, &hi))
        return;
    (void)kh_give_back(heap, f, lo, hi, flags);
}

mm_status_t kheap_set_release(kheap_t *heap, kheap_release_fn release, void *ctx,
                              size_t threshold)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    if (threshold == 0)
        threshold = KHEAP_TRIM_DEFAULT;
    if (threshold < KHEAP_TRIM_MIN)
        threshold = KHEAP_TRIM_MIN;
    mm_irqflags_t f = kh_lock(heap);
    heap->release = release;
    heap->release_ctx = ctx;
    heap->trim_threshold = threshold;
    heap->release_refused = false;
    kh_unlock(heap, f);
    return MM_OK;
}

mm_status_t kh_blocks_trim(kheap_t *heap, size_t *released)
{
    size_t gave = 0;
    mm_irqflags_t f = kh_lock(heap);
    if (heap->release == NULL) {
        kh_unlock(heap, f);
        return MM_ERR_UNSUPPORTED;
    }
    /* Lowest address first; after each cut the tree has changed, so the
     * search starts again above what was given back. */
    uintptr_t from = 0;
    for (;;) {
        kh_block_t *b = kh_tree_first_fit(heap->free_root, (uint32_t)(KHEAP_TRIM_MIN / KH_GRAN));
        while (b != NULL && kh_addr(b) < from)
            b = kh_tree_next_fit(b, (uint32_t)(KHEAP_TRIM_MIN / KH_GRAN));
        uintptr_t lo = 0, hi = 0;
        while (b != NULL && !kh_trim_span(heap, b, KHEAP_TRIM_MIN, &lo, &hi))
            b = kh_tree_next_fit(b, (uint32_t)(KHEAP_TRIM_MIN / KH_GRAN));
        if (b == NULL)
            break;
        if (!kh_give_back(heap, b, lo, hi, &f))
            break;
        gave += hi - lo;
        from = hi;
    }
    kh_unlock(heap, f);
    if (released != NULL)
        *released = gave;
    return MM_OK;
}
