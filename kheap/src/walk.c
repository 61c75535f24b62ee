/*
 * kheap: the block walker and statistics.
 */
#include "block.h"

mm_status_t kheap_walk(kheap_t *heap, kheap_walk_fn fn, void *arg)
{
    if (heap == NULL || fn == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    for (kh_block_t *n = kheap_tree_first(heap->region_root); n != NULL; n = kheap_tree_succ(n)) {
        const kh_region_t *reg = (const kh_region_t *)n;
        uintptr_t limit = kh_region_end(reg) - KH_END_MARK;
        for (uintptr_t x = kh_addr(kh_region_first(reg)); x < limit;) {
            kh_block_t *b = kh_at(x);
            uintptr_t sz = kh_size(b);
            if (sz < KH_MIN_BLOCK || sz > limit - x)
                return MM_ERR_CORRUPT;
            bool run = kh_used(b) && kh_is_run(b);
            bool internal = kh_used(b) && (kh_kind(b) == KH_MAP || kh_kind(b) == KH_NODES);
            kheap_block_info_t info = {
                .region = reg,
                .block = b,
                .size = sz,
                .used = kh_used(b),
                .run = run,
                .internal = internal,
                .ptr = kh_used(b) && !run && !internal ? (void *)kh_user_of(b) : NULL,
                .usable = !kh_used(b) || internal ? 0
                          : run ? ((const kh_run_t *)kh_user_of(b))->slot
                                : kh_usable(b),
                .run_used = run ? ((const kh_run_t *)kh_user_of(b))->nused : 0,
                .run_slots = run ? ((const kh_run_t *)kh_user_of(b))->nslots : 0,
            };
            if (!fn(arg, &info))
                return MM_OK;
            x += sz;
        }
    }
    return MM_OK;
}

mm_status_t kheap_get_stats(kheap_t *heap, kheap_stats_t *out)
{
    if (heap == NULL || out == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    kheap_stats_t s;
    __builtin_memset(&s, 0, sizeof(s));
    mm_irqflags_t f = kh_lock(heap);
    s.regions = heap->regions;
    s.total_bytes = heap->total_bytes;
    s.free_bytes = heap->free_bytes;
    s.free_blocks = heap->free_blocks;
    s.largest_free = (size_t)kheap_tree_max(heap->free_root) * KH_GRAN;
    s.runs = heap->runs;
    s.run_slots_used = heap->run_slots_used;
#if KH_CACHES > 0
    for (unsigned cpu = 0; cpu < KH_CACHES; cpu++)
        for (unsigned cls = 0; cls < KHEAP_RUN_CLASSES; cls++)
            s.cached_slots += __atomic_load_n(&heap->cache[cpu].count[cls], __ATOMIC_RELAXED);
#endif
    s.node_chunks = heap->node_chunks;
    s.node_bytes = heap->node_chunk_bytes;
    s.grow_calls = heap->grow_calls;
    s.grow_failures = heap->grow_failures;
#if HADRON_MM_ALLOC_TRACKING
    s.tracking = true;
    s.live_bytes = heap->live_bytes;
    s.peak_live_bytes = heap->peak_live_bytes;
    s.live_count = heap->live_count;
    s.peak_live_count = heap->peak_live_count;
    s.allocs = heap->allocs;
    s.frees = heap->frees;
    s.reallocs = heap->reallocs;
    s.failures = heap->failures;
    for (unsigned i = 0; i < KHEAP_SIZE_CLASSES; i++)
        s.histogram[i] = heap->histogram[i];
#endif
    kh_unlock(heap, f);
    *out = s;
    return MM_OK;
}
