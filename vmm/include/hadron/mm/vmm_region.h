/*
 * hadron-mm vmm: virtual-range allocators for the kernel's VA regions.
 *
 * Two allocators hand out page-granular virtual ranges inside one region.
 * Neither maps anything or touches memory; the VMM (vmm.h) layers mapping
 * and locking on top. Neither takes a lock: the caller serialises (the VMM
 * does so under its own lock).
 *
 *  - vmm_region_bump_t: a watermark that only moves up, for a region whose
 *    space is never given back. The most recent allocation can be unwound so
 *    a failed operation can give its range back. The VMM does not use it.
 *
 *  - vmm_region_freelist_t: first fit over an address-sorted array of free
 *    ranges below a watermark, for the kernel heap, kernel stacks and MMIO,
 *    whose ranges come and go.
 *    The array is storage the caller provides, so the allocator itself never
 *    allocates. Free ranges are coalesced with both neighbours, and a free
 *    range that reaches the watermark lowers it instead of taking a slot, so
 *    the array holds only the holes between live ranges.
 *
 * Nothing is ever lost: allocation never needs a new slot (a fit is taken
 * from the front of a free range or from the watermark), and a free that
 * would need a slot when the array is full returns MM_ERR_FULL with the range
 * still allocated. The caller keeps it and may retry once other frees have
 * coalesced or lowered the watermark. The accounting invariant
 *     watermark == allocated + sum(free ranges)
 * holds after every call and is what vmm_region_freelist_check() verifies.
 *
 * What the free list cannot catch: it records free space, not allocations,
 * so freeing part of an allocation, or a span covering two adjacent live
 * allocations, is accepted. The VMM never does either (each object frees
 * exactly the range it was given).
 *
 * Addresses are handled as offsets from the region base, so a region may
 * end exactly at 2^64 without any end computation wrapping.
 */
#ifndef HADRON_MM_VMM_REGION_H
#define HADRON_MM_VMM_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/status.h>
#include <hadron/mm/types.h>

/* Granularity of every range: one 4 KiB page. */
#define VMM_REGION_GRANULE MM_PAGE_SIZE

/* A virtual range [base, base + size). */
typedef struct vmm_range {
    mm_vaddr_t base;
    uint64_t size;
} vmm_range_t;

/* ------------------------------------------------------------------------
 * Bump allocator
 * ------------------------------------------------------------------------ */

typedef struct vmm_region_bump {
    mm_vaddr_t base;
    uint64_t size; /* bytes in the region */
    uint64_t used; /* [base, base + used) has been handed out */
} vmm_region_bump_t;

/* Sets up an empty bump region [base, base + size).
 * Errors: MM_ERR_INVALID (r NULL, size 0), MM_ERR_ALIGN (base or size not a
 * multiple of 4 KiB), MM_ERR_RANGE (the region would wrap past 2^64; ending
 * exactly at 2^64 is fine). *r is untouched on error. O(1). */
mm_status_t vmm_region_bump_init(vmm_region_bump_t *r, mm_vaddr_t base, uint64_t size);

/* Hands out the next `size` bytes (a multiple of 4 KiB) in *out.
 * Errors: MM_ERR_INVALID (NULL, size 0), MM_ERR_ALIGN (size not a page
 * multiple), MM_ERR_EXHAUSTED (not enough room left). State unchanged on
 * error. O(1). */
mm_status_t vmm_region_bump_alloc(vmm_region_bump_t *r, uint64_t size, mm_vaddr_t *out);

/* Takes back the most recent allocation [base, base + size) so a failed
 * operation can undo itself; it must end exactly at the watermark.
 * Errors: MM_ERR_INVALID (NULL, size 0), MM_ERR_ALIGN, MM_ERR_RANGE (not
 * inside the region), MM_ERR_BAD_POINTER (reaches beyond the watermark:
 * never handed out), MM_ERR_STATE (handed out, but something was allocated
 * after it). State unchanged on error. O(1). */
mm_status_t vmm_region_bump_unwind(vmm_region_bump_t *r, mm_vaddr_t base, uint64_t size);

/* Whether va lies in the handed-out part [base, base + used). O(1). */
bool vmm_region_bump_contains(const vmm_region_bump_t *r, mm_vaddr_t va);

/* Consistency check: MM_OK or MM_ERR_CORRUPT (MM_ERR_INVALID for NULL). O(1). */
mm_status_t vmm_region_bump_check(const vmm_region_bump_t *r);

/* ------------------------------------------------------------------------
 * Free-list allocator
 * ------------------------------------------------------------------------ */

typedef struct vmm_region_freelist {
    mm_vaddr_t base;
    uint64_t size;       /* bytes in the region */
    uint64_t watermark;  /* offset: [base + watermark, end) was never handed out */
    uint64_t free_bytes; /* sum of the sizes in ranges[] */
    vmm_range_t *ranges; /* free ranges below the watermark: sorted, disjoint, */
    size_t count;        /* never adjacent to each other nor to the watermark */
    size_t capacity;
} vmm_region_freelist_t;

/* Sets up an empty free-list region [base, base + size) whose free ranges
 * are recorded in storage[0 .. capacity). capacity may be 0 (then only frees
 * that coalesce or reach the watermark succeed); storage must stay valid for
 * the lifetime of the region and is not read before it is written.
 * Errors: MM_ERR_INVALID (r NULL, size 0, storage NULL with capacity > 0),
 * MM_ERR_ALIGN (base or size not a multiple of 4 KiB), MM_ERR_RANGE (wraps
 * past 2^64). *r is untouched on error. O(1). */
mm_status_t vmm_region_freelist_init(vmm_region_freelist_t *r, mm_vaddr_t base, uint64_t size,
                                     vmm_range_t *storage, size_t capacity);

/* First fit: the lowest free range of at least `size` bytes (a multiple of
 * 4 KiB) gives up its front; if none fits, the range comes from the
 * watermark. Never needs a new slot, so it cannot fail with MM_ERR_FULL.
 * Errors: MM_ERR_INVALID (NULL, size 0), MM_ERR_ALIGN (size not a page
 * multiple), MM_ERR_EXHAUSTED (no hole fits and the rest of the region is
 * too small). State unchanged on error. O(count). */
mm_status_t vmm_region_freelist_alloc(vmm_region_freelist_t *r, uint64_t size, mm_vaddr_t *out);

/* What vmm_region_freelist_alloc(r, size, ...) would return now, without
 * allocating: lets a caller check before it does work (taking frames) that
 * it would have to undo. Same errors (NULL `out` aside); nothing changed.
 * O(count). */
mm_status_t vmm_region_freelist_can_alloc(const vmm_region_freelist_t *r, uint64_t size);

/* Gives back [base, base + size), coalescing with the free neighbours on
 * both sides and lowering the watermark when the result reaches it.
 * Errors (every build; state unchanged):
 *   MM_ERR_INVALID       r NULL or size 0
 *   MM_ERR_ALIGN         base or size not a multiple of 4 KiB
 *   MM_ERR_RANGE         not entirely inside the region
 *   MM_ERR_BAD_POINTER   extends past the watermark (never handed out)
 *   MM_ERR_DOUBLE_FREE   overlaps a range that is already free
 *   MM_ERR_FULL          the range would need a new slot and all `capacity`
 *                        are in use: it stays allocated; retry later
 * O(log count) to find the place, O(count) to insert or remove a slot. */
mm_status_t vmm_region_freelist_free(vmm_region_freelist_t *r, mm_vaddr_t base, uint64_t size);

/* What vmm_region_freelist_free(r, base, size) would return now, without
 * freeing: lets a caller refuse a release before it has unmapped anything,
 * and free the range only later (after a TLB flush). Same errors in the same
 * order; nothing changed. O(log count). */
mm_status_t vmm_region_freelist_can_free(const vmm_region_freelist_t *r, mm_vaddr_t base,
                                         uint64_t size);

/* Bytes currently handed out (watermark minus free bytes). O(1). */
uint64_t vmm_region_freelist_allocated(const vmm_region_freelist_t *r);

/* Whether [base, base + size) is entirely handed out (inside the region,
 * below the watermark and overlapping no free range). O(log count). */
bool vmm_region_freelist_is_allocated(const vmm_region_freelist_t *r, mm_vaddr_t base,
                                      uint64_t size);

/* Consistency check of every invariant above: ranges non-empty, aligned,
 * sorted, disjoint, non-adjacent, below the watermark, none ending at it,
 * count <= capacity, free_bytes equal to their sum, watermark within the
 * region. MM_OK or MM_ERR_CORRUPT (MM_ERR_INVALID for NULL). O(count). */
mm_status_t vmm_region_freelist_check(const vmm_region_freelist_t *r);

#endif /* HADRON_MM_VMM_REGION_H */
