/*
 * Bump allocator for the heap region. The heap never returns address space,
 * so a watermark is all the state there is; unwind exists only so a heap
 * growth that fails half way can give its range back.
 */
#include <hadron/mm/vmm_region.h>

static bool page_multiple(uint64_t x)
{
    return mm_is_aligned(x, VMM_REGION_GRANULE);
}

mm_status_t vmm_region_bump_init(vmm_region_bump_t *r, mm_vaddr_t base, uint64_t size)
{
    uint64_t last;
    if (r == NULL || size == 0)
        return MM_ERR_INVALID;
    if (!page_multiple(base) || !page_multiple(size))
        return MM_ERR_ALIGN;
    if (!mm_range_last(base, size, &last))
        return MM_ERR_RANGE;
    r->base = base;
    r->size = size;
    r->used = 0;
    return MM_OK;
}

mm_status_t vmm_region_bump_alloc(vmm_region_bump_t *r, uint64_t size, mm_vaddr_t *out)
{
    if (r == NULL || out == NULL || size == 0)
        return MM_ERR_INVALID;
    if (!page_multiple(size))
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
    if (!page_multiple(base) || !page_multiple(size))
        return MM_ERR_ALIGN;
    /* Offsets from the region base: no end address is ever formed. */
    if (base < r->base || base - r->base > r->size || size > r->size - (base - r->base))
        return MM_ERR_RANGE;
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
    if (r->size == 0 || !page_multiple(r->base) || !page_multiple(r->size) ||
        !mm_range_last(r->base, r->size, &last))
        return MM_ERR_CORRUPT;
    if (r->used > r->size || !page_multiple(r->used))
        return MM_ERR_CORRUPT;
    return MM_OK;
}
