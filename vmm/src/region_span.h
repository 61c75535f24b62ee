/*
 * Argument checks shared by the two region allocators (region_bump.c,
 * region_freelist.c). Everything is in offsets from the region base, so a
 * region ending at 2^64 never forms a wrapped end address.
 */
#ifndef HADRON_VMM_REGION_SPAN_H
#define HADRON_VMM_REGION_SPAN_H

#include <hadron/mm/vmm_region.h>

static inline bool vmm_page_multiple(uint64_t x)
{
    return mm_is_aligned(x, VMM_REGION_GRANULE);
}

/* A new region [base, base + size), size > 0: MM_ERR_ALIGN unless both are
 * granule multiples, MM_ERR_RANGE when it wraps. */
static inline mm_status_t vmm_region_span_check(mm_vaddr_t base, uint64_t size)
{
    uint64_t last;
    if (!vmm_page_multiple(base) || !vmm_page_multiple(size))
        return MM_ERR_ALIGN;
    if (!mm_range_last(base, size, &last))
        return MM_ERR_RANGE;
    return MM_OK;
}

/* A span [base, base + size), size > 0, handed back to the region
 * [rbase, rbase + rsize): MM_ERR_ALIGN unless granule multiples,
 * MM_ERR_RANGE unless inside the region. */
static inline mm_status_t vmm_region_subspan_check(mm_vaddr_t rbase, uint64_t rsize,
                                                   mm_vaddr_t base, uint64_t size)
{
    if (!vmm_page_multiple(base) || !vmm_page_multiple(size))
        return MM_ERR_ALIGN;
    if (base < rbase || base - rbase > rsize || size > rsize - (base - rbase))
        return MM_ERR_RANGE;
    return MM_OK;
}

#endif /* HADRON_VMM_REGION_SPAN_H */
