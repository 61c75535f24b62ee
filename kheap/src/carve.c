/*
 * kheap blocks: placement. The one rule: the lowest address where the
 * request, with its alignment, fits.
 */
#include "block.h"

static uintptr_t kh_place(const kh_block_t *f, uintptr_t n, uintptr_t align)
{
    uintptr_t fa = kh_addr(f), end = fa + kh_size(f), b = fa;
    if (align > KH_GRAN) {
        /* Padding must be nothing or a whole free block: a sliver smaller
         * than a block could never be merged again. */
        uintptr_t u;
        if (__builtin_add_overflow(fa, KH_USER_OFF + align - 1, &u))
            return 0;
        b = (u & ~(align - 1)) - KH_USER_OFF;
        if (b != fa && b - fa < KH_MIN_BLOCK) {
            if (__builtin_add_overflow(fa, KH_MIN_BLOCK + KH_USER_OFF + align - 1, &u))
                return 0;
            b = (u & ~(align - 1)) - KH_USER_OFF;
        }
    }
    return (b < end && end - b >= n) ? b : 0;
}

/*
 * Take [b, b + n) out of free block f (b from kh_place). The remainders
 * below (padding) and above (tail) stay free blocks when they are big enough
 * to be one; a tail that is not goes with the allocation, so nothing is
 * dropped. Returns the used block, header written.
 */
static kh_block_t *kh_carve(kheap_t *heap, kh_block_t *f, uintptr_t b, uintptr_t n)
{
    uintptr_t fa = kh_addr(f), fsize = kh_size(f), end = fa + fsize;
    uintptr_t pad = b - fa, tail = end - (b + n);
    if (tail < KH_MIN_BLOCK) {
        n += tail;
        tail = 0;
    }
#if HADRON_MM_HEAP_REDZONES
    {
        uintptr_t lo = b > fa + sizeof(kh_block_t) ? b : fa + sizeof(kh_block_t);
        uintptr_t hi = b + n < end - 8 ? b + n : end - 8;
        kh_dbg_verify_poison(lo, hi, fa);
    }
#endif
    kh_block_t *next = kh_at(end);
    if (pad == 0 && tail == 0) {
        kh_hole_del(heap, f);
    } else if (pad == 0) {
        /* The free block's start moves up past the allocation; no other
         * free block lies in between, so it keeps its place in the tree. */
        kh_hole_set(heap, f, b + n, tail);
    } else {
        kh_hole_set(heap, f, fa, pad);
        if (tail != 0)
            kh_hole_add(heap, b + n, tail);
    }
    if (tail == 0)
        kh_set_prev_free(next, false);
    heap->free_bytes -= n;
    kh_block_t *blk = kh_at(b);
    kh_set_used(blk, n, pad != 0 ? KH_PREV_FREE : 0);
    return blk;
}

kh_block_t *kh_carve_locked(kheap_t *heap, uintptr_t n, uintptr_t align)
{
    uint32_t g = (uint32_t)(n / KH_GRAN);
    kh_block_t *f = kh_tree_first_fit(heap->free_root, g);
    uintptr_t b = 0;
    if (align <= KH_GRAN) {
        if (f == NULL)
            return NULL;
        b = kh_addr(f);
    } else {
        /* Whether a block big enough before padding fits once aligned
         * depends on its address, which the tree cannot search by. Try the
         * first KHEAP_ALIGN_CANDIDATES such blocks in address order; then
         * take the lowest block that holds the request at any address
         * (n + align + a free block's worth), found by one more descent. */
        unsigned tries = 0;
        for (; f != NULL; f = kh_tree_next_fit(f, g)) {
            if ((b = kh_place(f, n, align)) != 0)
                break;
            if (++tries == KHEAP_ALIGN_CANDIDATES) {
                uint64_t sure = ((uint64_t)n + align + KH_MIN_BLOCK) / KH_GRAN;
                f = sure > UINT32_MAX ? NULL : kh_tree_first_fit(heap->free_root, (uint32_t)sure);
                if (f != NULL)
                    b = kh_place(f, n, align);
                MM_ASSERT(f == NULL || b != 0);
                break;
            }
        }
        if (f == NULL)
            return NULL;
    }
    return kh_carve(heap, f, b, n);
}

void *kh_alloc_locked(kheap_t *heap, size_t req, uintptr_t n, uintptr_t align)
{
    kh_block_t *blk = kh_carve_locked(heap, n, align);
    if (blk == NULL)
        return NULL;
#if HADRON_MM_HEAP_REDZONES
    kh_dbg_arm(blk, req, 0);
#endif
    (void)req;
    return (void *)kh_user_of(blk);
}
