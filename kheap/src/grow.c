/*
 * kheap: instances, regions and growth.
 */
#include "block.h"

/* How many times one allocation may grow the heap (or wait for another
 * context's growth) before giving up: other contexts can take the new
 * memory before this one relocks. */
#define KH_GROW_ATTEMPTS 4

mm_status_t kheap_validate_region(uintptr_t base, size_t size, uintptr_t *b_out, uintptr_t *s_out)
{
    if (base == 0)
        return MM_ERR_INVALID;
    uintptr_t end, b;
    if (__builtin_add_overflow(base, (uintptr_t)size, &end) ||
        __builtin_add_overflow(base, KH_GRAN - 1, &b))
        return MM_ERR_RANGE;
    b &= ~(KH_GRAN - 1);
    end &= ~(KH_GRAN - 1);
    if (end < b || end - b < KHEAP_REGION_MIN)
        return MM_ERR_INVALID;
    if (end - b > KHEAP_REGION_MAX)
        return MM_ERR_RANGE;
    *b_out = b;
    *s_out = end - b;
    return MM_OK;
}

kh_region_t *kheap_region_find(kheap_t *heap, uintptr_t addr)
{
    if (addr < heap->lo || addr >= heap->hi)
        return NULL;
    /* One region (a kernel heap growing in place) is the common case. */
    kh_block_t *r = heap->regions == 1 ? heap->region_root
                                       : kheap_tree_floor(heap->region_root, addr);
    if (r == NULL || addr >= kh_addr(r) + kh_size(r))
        return NULL;
    return (kh_region_t *)r;
}

static void kh_write_end_mark(uintptr_t end)
{
    kh_block_t *m = kh_at(end - KH_END_MARK);
    m->word = KH_USED;
    m->link = kh_end_check(kh_addr(m));
}

mm_status_t kheap_add_region_locked(kheap_t *heap, uintptr_t b, size_t size)
{
    uintptr_t s = (uintptr_t)size, e = b + s;
    kh_block_t *below = kheap_tree_floor(heap->region_root, e - 1);
    if (below != NULL && kh_addr(below) + kh_size(below) > b)
        return MM_ERR_OVERLAP;

    kh_region_t *prev = b > 0 ? (kh_region_t *)kheap_tree_floor(heap->region_root, b - 1) : NULL;
    if (prev != NULL && kh_region_end(prev) == b && kh_size(&prev->node) + s <= KHEAP_REGION_MAX) {
        /* The old end marker becomes the header of a block covering the new
         * memory; releasing it merges it with a free last block. */
        kh_block_t *mark = kh_at(b - KH_END_MARK);
        uint64_t prev_free = mark->word & KH_PREV_FREE;
        kh_write_end_mark(e);
        kh_set_used(mark, s, prev_free);
        prev->node.word = (prev->node.word & KH_BAL_MASK) | (uint64_t)(kh_size(&prev->node) + s) | KH_USED;
        kheap_tree_resized(&prev->node);
        heap->total_bytes += s;
        if (e > heap->hi)
            heap->hi = e;
        kheap_release(heap, mark);
        return MM_OK;
    }

    kh_region_t *r = (kh_region_t *)kh_at(b);
    r->node.word = (uint64_t)s | KH_USED;
    r->magic = kh_region_magic(b);
    kheap_tree_insert(&heap->region_root, &r->node);
    kh_write_end_mark(e);
    kh_block_t *first = kh_region_first(r);
    kh_set_used(first, s - KHEAP_REGION_OVERHEAD, 0);
    heap->regions++;
    heap->total_bytes += s;
    if (b < heap->lo)
        heap->lo = b;
    if (e > heap->hi)
        heap->hi = e;
    kheap_release(heap, first);
    return MM_OK;
}

mm_status_t kheap_init(kheap_t *heap, void *base, size_t size)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    uintptr_t b = 0, s = 0;
    if (base != NULL || size != 0) {
        mm_status_t st = kheap_validate_region(kh_addr(base), size, &b, &s);
        if (st != MM_OK) {
            heap->magic = 0;
            return st;
        }
    }
    __builtin_memset(heap, 0, sizeof(*heap));
    mm_spin_init(&heap->lock);
    atomic_init(&heap->grow_gen, 0u);
    heap->lo = UINTPTR_MAX;
    heap->hi = 0;
    heap->small_runs = !HADRON_MM_HEAP_REDZONES;
    heap->node_pool = true;
    heap->instance = heap;
    heap->magic = KH_HEAP_MAGIC;
    if (s != 0) {
        mm_status_t st = kheap_add_region_locked(heap, b, s);
        MM_ASSERT(st == MM_OK); /* an empty heap cannot overlap */
        (void)st;
    }
    return MM_OK;
}

mm_status_t kheap_add_region(kheap_t *heap, void *base, size_t size)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    uintptr_t b, s;
    mm_status_t st = kheap_validate_region(kh_addr(base), size, &b, &s);
    if (st != MM_OK)
        return st;
    mm_irqflags_t f = kh_lock(heap);
    st = kheap_add_region_locked(heap, b, s);
    kh_unlock(heap, f);
    return st;
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

mm_status_t kheap_set_small_runs(kheap_t *heap, bool on)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    if (on && HADRON_MM_HEAP_REDZONES)
        return MM_ERR_UNSUPPORTED;
    mm_irqflags_t f = kh_lock(heap);
    heap->small_runs = on;
    kh_unlock(heap, f);
    return MM_OK;
}

mm_status_t kheap_set_cpu_caches(kheap_t *heap, bool on)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
#if KH_CACHES > 0 && !HADRON_MM_HEAP_REDZONES
    mm_irqflags_t f = kh_lock(heap);
    heap->cpu_caches = on;
    if (on)
        __atomic_store_n(&heap->cache_seen, true, __ATOMIC_RELAXED);
    kh_unlock(heap, f);
    return MM_OK;
#else
    (void)on;
    return MM_ERR_UNSUPPORTED;
#endif
}

mm_status_t kheap_flush_cpu_cache(kheap_t *heap)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    mm_irqflags_t f = kh_lock(heap);
    (void)kheap_cache_flush_locked(heap);
    kh_unlock(heap, f);
    return MM_OK;
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
void *kheap_alloc_slow(kheap_t *heap, size_t req, uintptr_t n, uintptr_t align)
{
    mm_irqflags_t f = kh_lock(heap);
    kheap_self_fn self = heap->self;
    void *self_ctx = heap->grow_ctx;
    kh_unlock(heap, f);
    uintptr_t me = self != NULL ? self(self_ctx) : 0;

    for (int attempt = 0;; attempt++) {
        f = kh_lock(heap);
        void *p = kheap_alloc_locked(heap, req, n, align);
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
            st = kheap_validate_region(kh_addr(base), got, &b, &s);
        }
        if (st == MM_OK)
            st = kheap_add_region_locked(heap, b, s);
        if (st != MM_OK)
            heap->grow_failures++;
        heap->growing = false;
        heap->grow_owner = 0;
        atomic_fetch_add_explicit(&heap->grow_gen, 1u, memory_order_release);
        if (st != MM_OK) {
            /* Others may have freed memory while we were out. */
            p = kheap_alloc_locked(heap, req, n, align);
            if (p == NULL)
                KH_TRACK_FAIL(heap);
            kh_unlock(heap, f);
            return p;
        }
        kh_unlock(heap, f);
    }
    KH_TRACK_FAIL(heap);
    kh_unlock(heap, f);
    return NULL;
}
