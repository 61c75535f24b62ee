/*
 * kheap blocks: the layer's entry points.
 */
#include "block.h"

mm_status_t kh_blocks_validate(void *base, size_t size)
{
    uintptr_t b, s;
    if (base == NULL && size == 0)
        return MM_OK;
    return kh_region_validate(kh_addr(base), size, &b, &s);
}

void kh_blocks_init(kheap_t *heap, uintptr_t base, size_t size)
{
    mm_spin_init_ranked(&heap->lock, MM_LOCK_RANK_KHEAP_BLOCK, "kheap block");
    atomic_init(&heap->grow_gen, 0u);
    heap->lo = UINTPTR_MAX;
    heap->hi = 0;
    heap->trim_threshold = KHEAP_TRIM_DEFAULT;
    heap->instance = heap;
    heap->magic = KH_HEAP_MAGIC;
    uintptr_t b = 0, s = 0;
    if (base != 0 && kh_region_validate(base, size, &b, &s) == MM_OK) {
        mm_status_t st = kh_region_add_locked(heap, b, s);
        MM_ASSERT(st == MM_OK); /* an empty heap cannot overlap */
        (void)st;
        heap->pin_lo = b;
        heap->pin_hi = b + s;
    }
}

mm_status_t kheap_add_region(kheap_t *heap, void *base, size_t size)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    uintptr_t b, s;
    mm_status_t st = kh_region_validate(kh_addr(base), size, &b, &s);
    if (st != MM_OK)
        return st;
    mm_irqflags_t f = kh_lock(heap);
    st = kh_region_add_locked(heap, b, s);
    kh_unlock(heap, f);
    return st;
}

void *kheap_block_alloc(kheap_t *heap, size_t size, size_t align)
{
    if (!kh_ready(heap))
        return NULL;
    if (align == 0)
        align = KH_GRAN;
    if (!mm_is_pow2(align) || align > KHEAP_REGION_MAX || size > KH_MAX_REQUEST)
        return NULL;
    if (align < KH_GRAN)
        align = KH_GRAN;
    uintptr_t n = kh_block_size_for(size);
    mm_irqflags_t f = kh_lock(heap);
    void *p = kh_alloc_locked(heap, size, n, align);
    bool can_grow = heap->grow != NULL;
    kh_unlock(heap, f);
    if (p != NULL || !can_grow)
        return p;
    return kh_alloc_slow(heap, size, n, align);
}

static mm_status_t kh_free_block(kheap_t *heap, void *ptr, bool inner)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (ptr == NULL)
        return MM_OK;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    kh_block_t *b;
    mm_irqflags_t f = kh_lock(heap);
    mm_status_t st = kh_lookup(heap, kh_addr(ptr), inner, &b);
    if (st == MM_OK) {
#if HADRON_MM_HEAP_REDZONES
        kh_dbg_verify_guards(b); /* before trusting its size */
#endif
        kh_block_t *hole = kh_release(heap, b);
        kh_trim_after_free(heap, hole, &f);
    }
    kh_unlock(heap, f);
    if (st != MM_OK)
        kh_warn_pointer(st, kh_addr(ptr), __FILE__, __LINE__);
    return st;
}

mm_status_t kheap_block_free(kheap_t *heap, void *ptr)
{
    return kh_free_block(heap, ptr, false);
}

void *kh_blocks_alloc_inner(kheap_t *heap, size_t size, size_t align)
{
    void *p = kheap_block_alloc(heap, size, align);
    if (p != NULL) {
        mm_irqflags_t f = kh_lock(heap);
        kh_block_of_user(kh_addr(p))->word |= KH_INNER;
        kh_unlock(heap, f);
    }
    return p;
}

mm_status_t kh_blocks_free_inner(kheap_t *heap, void *ptr)
{
    return kh_free_block(heap, ptr, true);
}

mm_status_t kheap_block_resize(kheap_t *heap, void *ptr, size_t size)
{
    if (heap == NULL || ptr == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    kh_block_t *b;
    mm_irqflags_t f = kh_lock(heap);
    mm_status_t st = kh_lookup(heap, kh_addr(ptr), false, &b);
    if (st == MM_OK) {
#if HADRON_MM_HEAP_REDZONES
        kh_dbg_verify_guards(b);
        size_t old_usable = kh_usable(b);
#endif
        if (size > KH_MAX_REQUEST || !kh_resize_in_place(heap, b, kh_block_size_for(size)))
            st = MM_ERR_NOMEM;
#if HADRON_MM_HEAP_REDZONES
        else
            kh_dbg_arm(b, size, old_usable < size ? old_usable : size);
#endif
    }
    kh_unlock(heap, f);
    if (st != MM_OK && st != MM_ERR_NOMEM)
        kh_warn_pointer(st, kh_addr(ptr), __FILE__, __LINE__);
    return st;
}

size_t kheap_block_usable_size(kheap_t *heap, const void *ptr)
{
    if (!kh_ready(heap) || ptr == NULL)
        return 0;
    kh_block_t *b;
    size_t n = 0;
    mm_irqflags_t f = kh_lock(heap);
    if (kh_lookup(heap, kh_addr(ptr), false, &b) == MM_OK)
        n = kh_usable(b);
    kh_unlock(heap, f);
    return n;
}

bool kheap_contains(kheap_t *heap, const void *ptr)
{
    if (!kh_ready(heap))
        return false;
    mm_irqflags_t f = kh_lock(heap);
    bool in = kh_region_find(heap, kh_addr(ptr)) != NULL;
    kh_unlock(heap, f);
    return in;
}
