/*
 * kheap: reallocation (in place when possible) and usable size.
 */
#include "block.h"

/*
 * Resize used block b to n bytes without moving it, if the memory right
 * above allows. Shrinking always works: the freed tail joins a free next
 * block, becomes a free block of its own, or (too small for either) stays
 * in b. Growing takes the front of a free next block that is big enough.
 */
static bool kh_resize_in_place(kheap_t *heap, kh_block_t *b, uintptr_t n)
{
    uintptr_t ba = kh_addr(b), cur = kh_size(b);
    uint64_t prev_free = b->word & KH_PREV_FREE;
    kh_block_t *next = kh_at(ba + cur);
    bool next_free = !kh_used(next);

    if (n <= cur) {
        uintptr_t tail = cur - n;
        if (tail == 0)
            return true;
        if (next_free) {
            uintptr_t total = tail + kh_size(next);
#if HADRON_MM_HEAP_REDZONES
            kheap_dbg_poison(ba + n, ba + cur);
#endif
            kh_block_t *r = kheap_free_set(heap, kh_free_node(next), ba + n, total);
            /* next's old header is now inside the free block: mark it stale
             * unless the block's own metadata covers part of it. */
            if (kh_free_meta_end(r) <= kh_addr(next)) {
                kh_make_stale(next);
#if HADRON_MM_HEAP_REDZONES
                kheap_dbg_bury_header(next);
#endif
            } else {
#if HADRON_MM_HEAP_REDZONES
                kheap_dbg_poison(ba + n + sizeof(kh_block_t), kh_addr(next) + sizeof(kh_block_t));
#endif
            }
            heap->free_bytes += tail;
            kh_set_used(b, n, prev_free);
        } else if (tail >= KH_MIN_BLOCK) {
            kh_set_used(b, n, prev_free);
            kh_block_t *t = kh_at(ba + n);
            kh_set_used(t, tail, 0);
            kheap_release(heap, t);
        }
        return true;
    }

    uintptr_t need = n - cur;
    if (!next_free || kh_size(next) < need)
        return false;
    uintptr_t na = kh_addr(next), nsize = kh_size(next), rest = nsize - need;
    if (rest < KH_MIN_BLOCK)
        need = nsize;
#if HADRON_MM_HEAP_REDZONES
    {
        uintptr_t hi = na + need < na + nsize - 8 ? na + need : na + nsize - 8;
        kheap_dbg_verify_poison(na + sizeof(kh_block_t), hi, na);
    }
#endif
    if (rest < KH_MIN_BLOCK) {
        kheap_free_del(heap, kh_free_node(next));
        kh_set_prev_free(kh_at(na + nsize), false);
    } else {
        kheap_free_set(heap, kh_free_node(next), na + need, rest);
    }
    heap->free_bytes -= need;
    kh_set_used(b, cur + need, prev_free);
    return true;
}

mm_status_t kheap_realloc(kheap_t *heap, void *ptr, size_t size, void **out)
{
    if (heap == NULL || out == NULL)
        return MM_ERR_INVALID;
    *out = NULL;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    if (ptr == NULL) {
        *out = kheap_alloc(heap, size, 0);
        return *out != NULL ? MM_OK : MM_ERR_NOMEM;
    }
    if (size == 0)
        return kheap_free(heap, ptr);

    kh_ref_t ref;
    mm_irqflags_t f = kh_lock(heap);
    mm_status_t st = kheap_lookup_live(heap, kh_addr(ptr), &ref);
    if (st != MM_OK) {
        kh_unlock(heap, f);
        kheap_warn_pointer(st, kh_addr(ptr), __FILE__, __LINE__);
        return st;
    }
    size_t old_usable = kh_ref_usable(&ref);
    if (ref.run != NULL) {
        /* A slot stays put while the new size fits it. */
        if (size <= old_usable) {
            kheap_track_resize(heap, old_usable, old_usable);
            kh_unlock(heap, f);
            *out = ptr;
            return MM_OK;
        }
    } else {
        kh_block_t *b = ref.block;
#if HADRON_MM_HEAP_REDZONES
        kheap_dbg_verify_guards(b);
#endif
        if (size <= KH_MAX_REQUEST && kh_resize_in_place(heap, b, kh_block_size_for(size))) {
#if HADRON_MM_HEAP_REDZONES
            kheap_dbg_arm(b, size, old_usable < size ? old_usable : size);
#endif
            kheap_track_resize(heap, old_usable, kh_usable(b));
            kh_unlock(heap, f);
            *out = ptr;
            return MM_OK;
        }
    }
    kh_unlock(heap, f);

    void *p = kheap_alloc(heap, size, 0);
    if (p == NULL)
        return MM_ERR_NOMEM;
    __builtin_memcpy(p, ptr, old_usable < size ? old_usable : size);
    (void)kheap_free(heap, ptr);
    *out = p;
    return MM_OK;
}

size_t kheap_usable_size(kheap_t *heap, const void *ptr)
{
    if (!kh_ready(heap) || ptr == NULL)
        return 0;
    kh_ref_t ref;
    size_t n = 0;
    mm_irqflags_t f = kh_lock(heap);
    if (kheap_lookup_live(heap, kh_addr(ptr), &ref) == MM_OK)
        n = kh_ref_usable(&ref);
    kh_unlock(heap, f);
    return n;
}

bool kheap_contains(kheap_t *heap, const void *ptr)
{
    if (!kh_ready(heap))
        return false;
    mm_irqflags_t f = kh_lock(heap);
    bool in = kheap_region_find(heap, kh_addr(ptr)) != NULL;
    kh_unlock(heap, f);
    return in;
}
