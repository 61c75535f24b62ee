/*
 * Giving the bootloader's memory back (see reclaim.h).
 *
 * Each reclaimable entry, shrunk to whole frames, is cut around whatever
 * must stay reserved, and each remaining piece goes to pmm_release. The cut
 * recurses on the pieces left and right of the first obstacle, trying only
 * obstacles after it, so its depth is at most the number of obstacles.
 */
#include "reclaim.h"

#include <hadron/mm/types.h>

typedef struct reclaim_walk {
    pmm_t *pmm;
    const pmm_region_t *map;
    size_t n;
    size_t self;             /* the reclaimable entry being released */
    uint64_t meta_lo, meta_hi; /* the PMM's metadata, bytes */
    reclaim_result_t *res;
} reclaim_walk_t;

/* Obstacle k < n is map entry k when it forbids releasing what it touches:
 * any type but usable and reclaimable, and reclaimable entries before
 * `self` (already released: a second release would be MM_ERR_EXISTS).
 * Obstacle n is the PMM's metadata. Bounds rounded outward. */
static bool obstacle(const reclaim_walk_t *w, size_t k, uint64_t *lo, uint64_t *hi)
{
    if (k == w->n) {
        *lo = w->meta_lo;
        *hi = w->meta_hi;
        return true;
    }
    const pmm_region_t *r = &w->map[k];
    if (r->length == 0 || r->type == PMM_REGION_USABLE ||
        (r->type == PMM_REGION_BOOTLOADER_RECLAIMABLE && k >= w->self))
        return false;
    *lo = mm_align_down(r->base, MM_PAGE_SIZE);
    *hi = mm_align_up(r->base + r->length, MM_PAGE_SIZE);
    return true;
}

/* Releases [lo, hi) minus obstacles from..n. */
static void release(reclaim_walk_t *w, uint64_t lo, uint64_t hi, size_t from)
{
    if (hi <= lo)
        return;
    for (size_t k = from; k <= w->n; k++) {
        uint64_t olo, ohi;
        if (!obstacle(w, k, &olo, &ohi) || ohi <= lo || olo >= hi)
            continue;
        release(w, lo, olo, k + 1);
        release(w, ohi, hi, k + 1);
        return;
    }
    mm_status_t st = pmm_release(w->pmm, lo, hi - lo);
    if (st == MM_OK) {
        w->res->released_frames += (hi - lo) / MM_PAGE_SIZE;
        w->res->runs++;
    } else if (w->res->status == MM_OK) {
        w->res->status = st;
    }
}

mm_status_t boot_reclaim(pmm_t *pmm, const pmm_region_t *map, size_t n, reclaim_result_t *out)
{
    pmm_stats_t st;
    mm_status_t s = pmm_get_stats(pmm, &st);
    if (s != MM_OK)
        return s;
    *out = (reclaim_result_t){.status = MM_OK};
    reclaim_walk_t w = {
        .pmm = pmm,
        .map = map,
        .n = n,
        .meta_lo = st.meta_base,
        .meta_hi = st.meta_base + st.meta_frames * MM_PAGE_SIZE,
        .res = out,
    };
    uint64_t span_end = st.span_frames * MM_PAGE_SIZE;
    for (size_t i = 0; i < n; i++) {
        const pmm_region_t *r = &map[i];
        if (r->type != PMM_REGION_BOOTLOADER_RECLAIMABLE)
            continue;
        uint64_t lo = mm_align_up(r->base, MM_PAGE_SIZE);
        uint64_t hi = mm_align_down(r->base + r->length, MM_PAGE_SIZE);
        if (lo < MM_PAGE_SIZE)
            lo = MM_PAGE_SIZE; /* frame 0 is never managed */
        if (hi <= lo)
            continue;
        if (hi > span_end) {
            /* Counted before the cut (for the report): an obstacle up
             * there would make it an overestimate. */
            uint64_t cut = lo > span_end ? lo : span_end;
            out->beyond_span_frames += (hi - cut) / MM_PAGE_SIZE;
            hi = span_end;
        }
        w.self = i;
        release(&w, lo, hi, 0);
    }
    return MM_OK;
}
