/*
 * hadron-mm core: TLB-flush batches ("flush tokens").
 *
 * Every page-table change records what it made stale in a batch the caller
 * owns; the caller flushes once when it is done. A 16-page unmap therefore
 * costs one call into the kernel, not sixteen. Past MM_TLB_BATCH_MAX pages
 * the batch degrades to "flush everything", which is also cheaper than that
 * many single-page invalidations on real CPUs (Linux uses a ceiling of 33).
 */
#ifndef HADRON_MM_TLB_H
#define HADRON_MM_TLB_H

#include <stdbool.h>
#include <stdint.h>

#include <hadron/mm/types.h>

#define MM_TLB_BATCH_MAX 32u

typedef struct mm_tlb_batch {
    uint32_t count;     /* pages recorded in pages[] */
    bool flush_all;     /* overflowed: invalidate the whole TLB instead */
    bool global;        /* a global mapping changed: the full flush must include globals */
    mm_vaddr_t pages[MM_TLB_BATCH_MAX];
} mm_tlb_batch_t;

#define MM_TLB_BATCH_INIT {0, false, false, {0}}

static inline void mm_tlb_batch_init(mm_tlb_batch_t *batch)
{
    batch->count = 0;
    batch->flush_all = false;
    batch->global = false;
}

static inline bool mm_tlb_batch_empty(const mm_tlb_batch_t *batch)
{
    return batch->count == 0 && !batch->flush_all;
}

/* Records that the translation of the page of `size` at `va` is stale.
 * `global` says the old entry had the global bit (survives CR3 reloads).
 * O(1); never fails (overflow turns into a full flush). */
void mm_tlb_batch_add(mm_tlb_batch_t *batch, mm_vaddr_t va, mm_page_size_t size, bool global);

/* Invalidates what the batch recorded with exactly one hook call (none for
 * an empty batch), then empties it. Call after dropping page-table locks and
 * before reusing any frame that was unmapped. O(pages). */
void mm_tlb_batch_flush(mm_tlb_batch_t *batch);

#endif /* HADRON_MM_TLB_H */
