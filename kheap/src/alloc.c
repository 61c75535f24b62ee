/*
 * kheap: allocation (address-ordered first fit) and carving.
 */
#include "block.h"

static uintptr_t kh_place(const kh_block_t *f, uintptr_t n, uintptr_t align)
{
    uintptr_t fa = kt_key(f), end = fa + kh_size(f), b = fa;
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
    uintptr_t fa = kt_key(f), fsize = kh_size(f), end = fa + fsize;
    uintptr_t pad = b - fa, tail = end - (b + n);
    if (tail < KH_MIN_BLOCK) {
        n += tail;
        tail = 0;
    }
#if HADRON_MM_HEAP_REDZONES
    {
        uintptr_t lo = b > fa + sizeof(kh_block_t) ? b : fa + sizeof(kh_block_t);
        uintptr_t hi = b + n < end - 8 ? b + n : end - 8;
        kheap_dbg_verify_poison(lo, hi, fa);
    }
#endif
    kh_block_t *next = kh_at(end);
    if (pad == 0 && tail == 0) {
        kheap_free_del(heap, f);
    } else if (pad == 0) {
        /* The free block's start moves up past the allocation; no other
         * free block lies in between, so it keeps its place in the tree. */
        kheap_free_set(heap, f, b + n, tail);
    } else {
        kheap_free_set(heap, f, fa, pad);
        if (tail != 0)
            kheap_free_add(heap, b + n, tail);
    }
    if (tail == 0)
        kh_set_prev_free(next, false);
    heap->free_bytes -= n;
    kh_block_t *blk = kh_at(b);
    kh_set_used(blk, n, pad != 0 ? KH_PREV_FREE : 0);
    return blk;
}

kh_block_t *kheap_carve_locked(kheap_t *heap, uintptr_t n, uintptr_t align)
{
    uint32_t g = (uint32_t)(n / KH_GRAN);
    kh_block_t *f = kheap_tree_first_fit(heap->free_root, g);
    uintptr_t b = 0;
    if (align <= KH_GRAN) {
        if (f == NULL)
            return NULL;
        b = kt_key(f);
    } else {
        /* Whether a block big enough before padding fits once aligned
         * depends on its address, which the tree cannot search by. Try the
         * first KHEAP_ALIGN_CANDIDATES such blocks in address order; then
         * take the lowest block that holds the request at any address
         * (n + align + a free block's worth), found by one more descent. */
        unsigned tries = 0;
        for (; f != NULL; f = kheap_tree_next_fit(f, g)) {
            if ((b = kh_place(f, n, align)) != 0)
                break;
            if (++tries == KHEAP_ALIGN_CANDIDATES) {
                uint64_t sure = ((uint64_t)n + align + KH_MIN_BLOCK) / KH_GRAN;
                f = sure > UINT32_MAX ? NULL : kheap_tree_first_fit(heap->free_root, (uint32_t)sure);
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

kh_block_t *kheap_carve_run_locked(kheap_t *heap, uintptr_t n, uintptr_t align)
{
    uint32_t g = (uint32_t)(n / KH_GRAN);
    kh_block_t *best = NULL;
    uintptr_t best_b = 0;
    unsigned tries = 0;
    for (kh_block_t *f = kheap_tree_first_fit(heap->free_root, g);
         f != NULL && tries < KHEAP_RUN_FIT_CANDIDATES; f = kheap_tree_next_fit(f, g), tries++) {
        uintptr_t b = kh_place(f, n, align);
        if (b != 0 && (best == NULL || kh_size(f) < kh_size(best))) {
            best = f;
            best_b = b;
        }
    }
    /* None of them fits once aligned (small runs are page-aligned): the
     * rule for aligned blocks finds one that does, if any. */
    if (best == NULL)
        return kheap_carve_locked(heap, n, align);
    return kh_carve(heap, best, best_b, n);
}

void *kheap_alloc_locked(kheap_t *heap, size_t req, uintptr_t n, uintptr_t align)
{
    if (heap->node_spare == NULL)
        kheap_nodes_refill(heap);
    if (heap->small_runs && req <= KHEAP_RUN_MAX && align <= KH_GRAN) {
        size_t usable = 0;
        void *p = kheap_run_alloc(heap, req, &usable);
        if (p != NULL) {
            kheap_track_alloc(heap, req, usable);
            (void)usable;
            return p;
        }
    }
    kh_block_t *blk = kheap_carve_locked(heap, n, align);
    /* Slots parked in this CPU's cache may hold the runs (and with them the
     * memory) the request needs. */
    if (blk == NULL && kheap_cache_flush_locked(heap) != 0)
        return kheap_alloc_locked(heap, req, n, align);
    if (blk == NULL) {
        /* The chunk this call may have taken could be all the heap holds
         * (free regions only): an empty heap keeps none. The chunk may also
         * have been cut from the one block that holds the request, so the
         * request is tried once more on what the collapse gave back (with
         * no spare nodes: the pool refills only on the next call). */
        if (kheap_nodes_collapse(heap, false))
            blk = kheap_carve_locked(heap, n, align);
        if (blk == NULL)
            return NULL;
    }
#if HADRON_MM_HEAP_REDZONES
    kheap_dbg_arm(blk, req, 0);
#endif
    kheap_track_alloc(heap, req, kh_usable(blk));
    (void)req;
    return (void *)kh_user_of(blk);
}

/* Every request kheap_alloc's fast path does not finish. */
static __attribute__((noinline)) void *kh_alloc_general(kheap_t *heap, size_t size, size_t align)
{
    if (!kh_ready(heap))
        return NULL;
    if (align == 0)
        align = KH_GRAN;
    if (!mm_is_pow2(align) || align > KHEAP_REGION_MAX || size > KH_MAX_REQUEST) {
        mm_irqflags_t f = kh_lock(heap);
        KH_TRACK_FAIL(heap);
        kh_unlock(heap, f);
        return NULL;
    }
    if (align < KH_GRAN)
        align = KH_GRAN;
    uintptr_t n = kh_block_size_for(size);
    mm_irqflags_t f = kh_lock(heap);
    void *p = kheap_alloc_locked(heap, size, n, align);
    bool can_grow = heap->grow != NULL;
    if (p == NULL && !can_grow)
        KH_TRACK_FAIL(heap);
    kh_unlock(heap, f);
    if (p != NULL || !can_grow)
        return p;
    return kheap_alloc_slow(heap, size, n, align);
}

/* A slot from a run of the request's class that has one free: most
 * requests, and all this path does (no new run, no block). NULL otherwise. */
static inline void *kh_alloc_from_run(kheap_t *heap, size_t size)
{
#if HADRON_MM_HEAP_REDZONES
    (void)heap;
    (void)size;
    return NULL;
#else
    unsigned cls = kheap_class_of(size);
    mm_irqflags_t f = kh_lock(heap);
    /* As on every allocation: a dry node pool is refilled first, so chunks
     * land where they always did whichever path serves the request. */
    if (heap->node_spare == NULL)
        kheap_nodes_refill(heap);
    kh_run_t *run = heap->small_runs ? heap->partial[cls] : NULL;
    void *p = NULL;
    if (run != NULL) {
        p = kheap_run_take(heap, run);
        kheap_track_alloc(heap, size, run->slot);
    }
    kh_unlock(heap, f);
    return p;
#endif
}

void *kheap_alloc(kheap_t *heap, size_t size, size_t align)
{
    /* Runs serve requests of up to KHEAP_RUN_MAX bytes at granule alignment
     * (align 0 and 1 ... 16). Kept small so the common case saves and
     * restores almost nothing; everything else is kh_alloc_general's. */
    if (size <= KHEAP_RUN_MAX && align <= KH_GRAN && (align & (align - 1)) == 0 &&
        kh_ready(heap)) {
        void *p = kheap_cache_pop(heap, size);
        if (p == NULL)
            p = kh_alloc_from_run(heap, size);
        if (p != NULL)
            return p;
    }
    return kh_alloc_general(heap, size, align);
}

void *kheap_calloc(kheap_t *heap, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        if (kh_ready(heap)) {
            mm_irqflags_t f = kh_lock(heap);
            KH_TRACK_FAIL(heap);
            kh_unlock(heap, f);
        }
        return NULL;
    }
    void *p = kheap_alloc(heap, total, 0);
    if (p != NULL)
        __builtin_memset(p, 0, total);
    return p;
}
