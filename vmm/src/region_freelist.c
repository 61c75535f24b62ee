/*
 * Free-list allocator for the heap, stack and MMIO regions: first fit over an
 * address-sorted array of holes below a watermark. The array is the caller's,
 * so this file never allocates; see vmm_region.h for the invariants.
 *
 * Everything is computed in offsets from the region base so that a region
 * ending at 2^64 never forms a wrapped end address.
 */
#include <hadron/mm/assert.h>
#include "region_span.h"

static uint64_t start_off(const vmm_region_freelist_t *r, size_t i)
{
    return r->ranges[i].base - r->base;
}

static uint64_t end_off(const vmm_region_freelist_t *r, size_t i)
{
    return r->ranges[i].base - r->base + r->ranges[i].size;
}

/* Index of the first free range ending after `off` (count if none). Ranges
 * are sorted and disjoint, so their ends are sorted too. */
static size_t first_ending_after(const vmm_region_freelist_t *r, uint64_t off)
{
    size_t lo = 0, hi = r->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (end_off(r, mid) <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void remove_at(vmm_region_freelist_t *r, size_t i)
{
    MM_ASSERT(i < r->count);
    for (size_t j = i; j + 1 < r->count; j++)
        r->ranges[j] = r->ranges[j + 1];
    r->count--;
}

static void insert_at(vmm_region_freelist_t *r, size_t i, mm_vaddr_t base, uint64_t size)
{
    MM_ASSERT(r->count < r->capacity && i <= r->count);
    for (size_t j = r->count; j > i; j--)
        r->ranges[j] = r->ranges[j - 1];
    r->ranges[i].base = base;
    r->ranges[i].size = size;
    r->count++;
}

mm_status_t vmm_region_freelist_init(vmm_region_freelist_t *r, mm_vaddr_t base, uint64_t size,
                                     vmm_range_t *storage, size_t capacity)
{
    if (r == NULL || size == 0 || (storage == NULL && capacity != 0))
        return MM_ERR_INVALID;
    mm_status_t st = vmm_region_span_check(base, size);
    if (st != MM_OK)
        return st;
    r->base = base;
    r->size = size;
    r->watermark = 0;
    r->free_bytes = 0;
    r->ranges = storage;
    r->count = 0;
    r->capacity = capacity;
    return MM_OK;
}

/* Where an allocation of `size` would come from: the first hole that fits
 * (*hole < count) or the watermark (*hole == count). */
static mm_status_t find_fit(const vmm_region_freelist_t *r, uint64_t size, size_t *hole)
{
    if (r == NULL || size == 0)
        return MM_ERR_INVALID;
    if (!vmm_page_multiple(size))
        return MM_ERR_ALIGN;
    for (size_t i = 0; i < r->count; i++) {
        if (r->ranges[i].size >= size) {
            *hole = i;
            return MM_OK;
        }
    }
    if (size > r->size - r->watermark)
        return MM_ERR_EXHAUSTED;
    *hole = r->count;
    return MM_OK;
}

mm_status_t vmm_region_freelist_can_alloc(const vmm_region_freelist_t *r, uint64_t size)
{
    size_t hole;
    return find_fit(r, size, &hole);
}

mm_status_t vmm_region_freelist_alloc(vmm_region_freelist_t *r, uint64_t size, mm_vaddr_t *out)
{
    if (out == NULL)
        return MM_ERR_INVALID;
    size_t i;
    mm_status_t st = find_fit(r, size, &i);
    if (st != MM_OK)
        return st;

    if (i < r->count) {
        vmm_range_t *hole = &r->ranges[i];
        /* Taking the front keeps the remainder in the same slot, which is
         * why allocation never needs a slot of its own. */
        *out = hole->base;
        r->free_bytes -= size;
        if (hole->size == size) {
            remove_at(r, i);
        } else {
            hole->base += size;
            hole->size -= size;
        }
        return MM_OK;
    }
    *out = r->base + r->watermark;
    r->watermark += size;
    return MM_OK;
}

/* Where a free of [off, end) goes: the index of the first free range after
 * it, and which neighbours it merges with. */
typedef struct free_plan {
    uint64_t off, end;
    size_t i;
    bool merge_prev, merge_next;
} free_plan_t;

static mm_status_t plan_free(const vmm_region_freelist_t *r, mm_vaddr_t base, uint64_t size,
                             free_plan_t *p)
{
    if (r == NULL || size == 0)
        return MM_ERR_INVALID;
    mm_status_t st = vmm_region_subspan_check(r->base, r->size, base, size);
    if (st != MM_OK)
        return st;
    uint64_t off = base - r->base;
    uint64_t end = off + size;
    if (end > r->watermark)
        return MM_ERR_BAD_POINTER;

    size_t i = first_ending_after(r, off);
    if (i < r->count && start_off(r, i) < end)
        return MM_ERR_DOUBLE_FREE;

    /* Here every range before i ends at or below off and range i (if any)
     * starts at or above end. */
    p->off = off;
    p->end = end;
    p->i = i;
    p->merge_prev = i > 0 && end_off(r, i - 1) == off;
    p->merge_next = i < r->count && start_off(r, i) == end;
    if (end != r->watermark && !p->merge_prev && !p->merge_next && r->count == r->capacity)
        return MM_ERR_FULL;
    return MM_OK;
}

mm_status_t vmm_region_freelist_can_free(const vmm_region_freelist_t *r, mm_vaddr_t base,
                                         uint64_t size)
{
    free_plan_t p;
    return plan_free(r, base, size, &p);
}

mm_status_t vmm_region_freelist_free(vmm_region_freelist_t *r, mm_vaddr_t base, uint64_t size)
{
    free_plan_t p;
    mm_status_t st = plan_free(r, base, size, &p);
    if (st != MM_OK)
        return st;
    size_t i = p.i;

    if (p.end == r->watermark) {
        /* Nothing is free above a live range's end at the watermark, so
         * there is no next range; the hole before may now touch the
         * watermark too and goes with it. */
        MM_ASSERT(i == r->count);
        if (p.merge_prev) {
            r->watermark = start_off(r, i - 1);
            r->free_bytes -= r->ranges[i - 1].size;
            remove_at(r, i - 1);
        } else {
            r->watermark = p.off;
        }
        return MM_OK;
    }

    if (p.merge_prev && p.merge_next) {
        r->ranges[i - 1].size += size + r->ranges[i].size;
        remove_at(r, i);
    } else if (p.merge_prev) {
        r->ranges[i - 1].size += size;
    } else if (p.merge_next) {
        r->ranges[i].base = base;
        r->ranges[i].size += size;
    } else {
        insert_at(r, i, base, size);
    }
    r->free_bytes += size;
    return MM_OK;
}

uint64_t vmm_region_freelist_allocated(const vmm_region_freelist_t *r)
{
    if (r == NULL)
        return 0;
    return r->watermark - r->free_bytes;
}

bool vmm_region_freelist_is_allocated(const vmm_region_freelist_t *r, mm_vaddr_t base,
                                      uint64_t size)
{
    if (r == NULL || size == 0 || base < r->base)
        return false;
    uint64_t off = base - r->base;
    if (off >= r->watermark || size > r->watermark - off)
        return false;
    size_t i = first_ending_after(r, off);
    return !(i < r->count && start_off(r, i) < off + size);
}

mm_status_t vmm_region_freelist_check(const vmm_region_freelist_t *r)
{
    uint64_t last;
    if (r == NULL)
        return MM_ERR_INVALID;
    if (r->size == 0 || !vmm_page_multiple(r->base) || !vmm_page_multiple(r->size) ||
        !mm_range_last(r->base, r->size, &last))
        return MM_ERR_CORRUPT;
    if (r->watermark > r->size || !vmm_page_multiple(r->watermark))
        return MM_ERR_CORRUPT;
    if (r->count > r->capacity || (r->count != 0 && r->ranges == NULL))
        return MM_ERR_CORRUPT;

    uint64_t sum = 0;
    uint64_t prev_end = 0;
    for (size_t i = 0; i < r->count; i++) {
        const vmm_range_t *h = &r->ranges[i];
        if (h->size == 0 || !vmm_page_multiple(h->base) || !vmm_page_multiple(h->size))
            return MM_ERR_CORRUPT;
        if (h->base < r->base)
            return MM_ERR_CORRUPT;
        uint64_t s = h->base - r->base;
        /* Strictly below the watermark: a hole touching it should have
         * lowered it. */
        if (s >= r->watermark || h->size >= r->watermark - s)
            return MM_ERR_CORRUPT;
        /* Strictly after the previous end: touching holes should have
         * merged. */
        if (i > 0 && s <= prev_end)
            return MM_ERR_CORRUPT;
        prev_end = s + h->size;
        sum += h->size;
    }
    if (sum != r->free_bytes || sum > r->watermark)
        return MM_ERR_CORRUPT;
    return MM_OK;
}
