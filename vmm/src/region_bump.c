/*
 * Bump allocator for a region whose space is never given back, so a
 * watermark is all the state there is; unwind exists only so an operation
 * that fails half way can give its range back.
 */
#include "region_span.h"

mm_status_t vmm_region_bump_init(vmm_region_bump_t *r, mm_vaddr_t base, uint64_t size)
{
    if (r == NULL || size == 0)
        return MM_ERR_INVALID;
    mm_status_t st = vmm_region_span_check(base, size);
    if (st != MM_OK)
        return st;
    r->base = base;
    r->size = size;
    r->used = 0;
    return MM_OK;
}

mm_status_t vmm_region_bump_alloc(vmm_region_bump_t *r, uint64_t size, mm_vaddr_t *out)
{
    if (r == NULL || out == NULL || size == 0)
        return MM_ERR_INVALID;
    if (!vmm_page_multiple(size))
        return MM_ERR_ALIGN;
    if (size > r->size - r->used)
        return MM_ERR_EXHAUSTED;
    *out = r->base + r->used;
    r->used += size;
    return MM_OK;
}

mm_status_t vmm_region_bump_unwind(vmm_region_bump_t *r, mm_vaddr_t base, uint64_t size)
{
    if (r == NULL || size == 0)
        return MM_ERR_INVALID;
    mm_status_t st = vmm_region_subspan_check(r->base, r->size, base, size);
    if (st != MM_OK)
        return st;
    uint64_t off = base - r->base;
    if (off + size > r->used)
        return MM_ERR_BAD_POINTER;
    if (off + size != r->used)
        return MM_ERR_STATE;
    r->used = off;
    return MM_OK;
}

bool vmm_region_bump_contains(const vmm_region_bump_t *r, mm_vaddr_t va)
{
    return r != NULL && va >= r->base && va - r->base < r->used;
}

mm_status_t vmm_region_bump_check(const vmm_region_bump_t *r)
{
    uint64_t last;
    if (r == NULL)
        return MM_ERR_INVALID;
    if (r->size == 0 || !vmm_page_multiple(r->base) || !vmm_page_multiple(r->size) ||
        !mm_range_last(r->base, r->size, &last))
        return MM_ERR_CORRUPT;
    if (r->used > r->size || !vmm_page_multiple(r->used))
        return MM_ERR_CORRUPT;
    return MM_OK;
}
