/*
 * hadron-mm core: the frame-allocator interface.
 *
 * Components that need physical frames (the page-table mapper, the VMM) see
 * them only through this interface, so a host test can hand them the real
 * PMM, a fake that fails on its k-th call, or anything else.
 */
#ifndef HADRON_MM_FRAME_ALLOC_H
#define HADRON_MM_FRAME_ALLOC_H

#include <stddef.h>

#include <hadron/mm/status.h>
#include <hadron/mm/types.h>

typedef struct mm_frame_allocator {
    void *ctx;
    /* Allocate `count` physically contiguous 4 KiB frames whose first frame
     * number is a multiple of `align_frames` (a power of two) and whose last
     * byte lies below `limit` (MM_PADDR_MAX: no limit). The contents are
     * unspecified. Returns MM_OK and the base in *out, MM_ERR_NOMEM when no
     * such run exists, MM_ERR_INVALID for a zero count or bad alignment. */
    mm_status_t (*alloc)(void *ctx, size_t count, size_t align_frames, mm_paddr_t limit,
                         mm_paddr_t *out);
    /* Give back a run previously returned by alloc (any sub-run of it is
     * fine). Errors leave the allocator unchanged. */
    mm_status_t (*free)(void *ctx, mm_paddr_t base, size_t count);
} mm_frame_allocator_t;

static inline mm_status_t mm_frame_alloc(const mm_frame_allocator_t *fa, mm_paddr_t *out)
{
    return fa->alloc(fa->ctx, 1, 1, MM_PADDR_MAX, out);
}

static inline mm_status_t mm_frame_free(const mm_frame_allocator_t *fa, mm_paddr_t frame)
{
    return fa->free(fa->ctx, frame, 1);
}

#endif /* HADRON_MM_FRAME_ALLOC_H */
