/*
 * kheap blocks: the walker and statistics.
 */
#include "block.h"

mm_status_t kh_blocks_walk(kheap_t *heap, kheap_walk_fn fn, void *arg)
{
    for (kh_block_t *n = kh_tree_first(heap->region_root); n != NULL; n = kh_tree_succ(n)) {
        const kh_region_t *reg = (const kh_region_t *)n;
        uintptr_t limit = kh_region_end(reg) - KH_END_MARK;
        for (uintptr_t x = kh_addr(kh_region_first(reg)); x < limit;) {
            kh_block_t *b = kh_at(x);
            uintptr_t sz = kh_size(b);
            if (sz < KH_MIN_BLOCK || sz > limit - x)
                return MM_ERR_CORRUPT;
            kheap_block_info_t info = {
                .region = reg,
                .block = b,
                .size = sz,
                .used = kh_used(b),
                .internal = (b->word & KH_INNER) != 0,
                .ptr = kh_used(b) ? (void *)kh_user_of(b) : NULL,
                .usable = kh_used(b) ? kh_usable(b) : 0,
            };
            if (!fn(arg, &info))
                return MM_OK;
            x += sz;
        }
    }
    return MM_OK;
}

void kh_blocks_stats(kheap_t *heap, kheap_stats_t *s)
{
    mm_irqflags_t f = kh_lock(heap);
    s->regions = heap->regions;
    s->total_bytes = heap->total_bytes;
    s->free_bytes = heap->free_bytes;
    s->free_blocks = heap->free_blocks;
    s->largest_free = (size_t)kh_tree_max(heap->free_root) * KH_GRAN;
    s->grow_calls = heap->grow_calls;
    s->grow_failures = heap->grow_failures;
    s->release_calls = heap->release_calls;
    s->released_bytes = heap->released_bytes;
    kh_unlock(heap, f);
}
