/*
 * kheap blocks: growth through the caller's callback.
 */
#include "block.h"

/* How many times one allocation may grow the heap (or wait for another
 * context's growth) before giving up: other contexts can take the new
 * memory before this one relocks. */
#define KH_GROW_ATTEMPTS 4

/* A growth: trimming may be worth a try again, and if memory went back
 * since the last growth, the heap gave back what it needed again, so the
 * automatic threshold doubles (glibc's mmap threshold adapts the same way). */
static void kh_grew_after_release(kheap_t *heap)
{
    heap->release_refused = false;
    if (heap->released_since_growth && heap->trim_threshold < KHEAP_TRIM_CEILING)
        heap->trim_threshold *= 2;
    heap->released_since_growth = false;
}

mm_status_t kheap_set_grow(kheap_t *heap, kheap_grow_fn grow, kheap_self_fn self, void *ctx)
{
    if (heap == NULL || (grow == NULL && self != NULL))
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    mm_status_t st = MM_OK;
    mm_irqflags_t f = kh_lock(heap);
    if (heap->growing) {
        st = MM_ERR_STATE;
    } else {
        heap->grow = grow;
        heap->self = self;
        heap->grow_ctx = ctx;
    }
    kh_unlock(heap, f);
    return st;
}

/* Bytes to ask for so that a block of n bytes aligned for `align` fits even
 * in a region that merges with nothing: descriptor, end marker, worst-case
 * alignment padding (a whole free block plus the alignment), rounded to
 * pages and at least KHEAP_GROW_MIN. */
static size_t kh_grow_request(uintptr_t n, uintptr_t align)
{
    uintptr_t need = n + KHEAP_REGION_OVERHEAD;
    if (align > KH_GRAN)
        need += align + KH_MIN_BLOCK;
    need = kh_align_up(need, 4096);
    return need < KHEAP_GROW_MIN ? KHEAP_GROW_MIN : (size_t)need;
}

/*
 * Growth protocol. One context at a time runs the callback, with the lock
 * dropped; `growing` and `grow_owner` say who. Another context whose
 * allocation does not fit meanwhile spins (lock dropped) until grow_gen
 * moves, then retries. The growing context itself (its callback allocating,
 * or an interrupt on top of it) fails at once, as does everybody when the
 * heap has no identity function: waiting could then wait on itself.
 */
void *kh_alloc_slow(kheap_t *heap, size_t req, uintptr_t n, uintptr_t align)
{
    mm_irqflags_t f = kh_lock(heap);
    kheap_self_fn self = heap->self;
    void *self_ctx = heap->grow_ctx;
    kh_unlock(heap, f);
    uintptr_t me = self != NULL ? self(self_ctx) : 0;

    for (int attempt = 0;; attempt++) {
        f = kh_lock(heap);
        void *p = kh_alloc_locked(heap, req, n, align);
        if (p != NULL) {
            kh_unlock(heap, f);
            return p;
        }
        if (heap->grow == NULL || attempt >= KH_GROW_ATTEMPTS)
            break;
        if (heap->growing) {
            if (me == 0 || me == heap->grow_owner)
                break;
            unsigned gen = atomic_load_explicit(&heap->grow_gen, memory_order_relaxed);
            kh_unlock(heap, f);
            while (atomic_load_explicit(&heap->grow_gen, memory_order_acquire) == gen)
                mm_cpu_relax();
            continue;
        }
        kheap_grow_fn grow = heap->grow;
        void *ctx = heap->grow_ctx;
        heap->growing = true;
        heap->grow_owner = me;
        heap->grow_calls++;
        kh_unlock(heap, f);

        void *base = NULL;
        size_t got = 0;
        mm_status_t st = grow(ctx, kh_grow_request(n, align), &base, &got);

        f = kh_lock(heap);
        uintptr_t b = 0, s = 0;
        if (st == MM_OK) {
            if (got > KHEAP_REGION_MAX)
                got = KHEAP_REGION_MAX;
            st = kh_region_validate(kh_addr(base), got, &b, &s);
        }
        if (st == MM_OK)
            st = kh_region_add_locked(heap, b, s);
        if (st != MM_OK)
            heap->grow_failures++;
        else
            kh_grew_after_release(heap);
        heap->growing = false;
        heap->grow_owner = 0;
        atomic_fetch_add_explicit(&heap->grow_gen, 1u, memory_order_release);
        if (st != MM_OK) {
            /* Others may have freed memory while we were out. */
            p = kh_alloc_locked(heap, req, n, align);
            kh_unlock(heap, f);
            return p;
        }
        kh_unlock(heap, f);
    }
    kh_unlock(heap, f);
    return NULL;
}
