/*
 * hadron-mm core: TLB-flush batches ("flush tokens").
 *
 * Every page-table change records what it made stale in a batch the caller
 * owns; the caller flushes once when it is done. A 16-page unmap therefore
 * costs one call into the kernel, not sixteen. Past MM_TLB_BATCH_MAX pages
 * the batch degrades to "flush everything", which is also cheaper than that
 * many single-page invalidations on real CPUs (Linux uses a ceiling of 33).
 *
 * A batch also carries deferred frees: page-table frames a change unlinked.
 * Until the invalidation, another CPU's paging-structure cache may still
 * point at such a frame and walk it; if the frame had already been handed
 * to a new owner, that walk would read the owner's data as page-table
 * entries. So the frame goes back to its allocator only in
 * mm_tlb_batch_flush, after the hook call (Linux: tlb_remove_table).
 *
 * A batch belongs to one address-space identity (types.h: mm_asid_t): the
 * one whose entries its records made stale, passed to the hooks with them.
 * A batch for kernel-half changes has MM_ASID_KERNEL (MM_TLB_BATCH_INIT,
 * mm_tlb_batch_init); one for a user address space has that space's
 * identity (MM_TLB_BATCH_INIT_ASID, mm_tlb_batch_init_asid). A flush keeps
 * the identity, so a batch can be reused for the same space.
 *
 * A batch also names the CPUs the flush must reach: NULL (every CPU, for
 * kernel-half changes and the initialisers above) or the live CPU set of a
 * user address space (MM_TLB_BATCH_INIT_SPACE, mm_tlb_batch_init_space:
 * the CPUs on which the space is or has been active since its identity was
 * last flushed everywhere, vmm.h). The flush snapshots that set after the
 * page-table changes (cpuset.h: why a CPU that starts using the space later
 * cannot cache the old entry) and hands the snapshot to the hook; a NULL
 * set reaches the hook as a set marked "all CPUs".
 *
 * Consequence for every caller: a batch that a change may have used must be
 * flushed, never dropped or re-initialised, or the table frames it holds
 * leak. mm_tlb_batch_empty() is true exactly when nothing is pending, so
 * MM_ASSERT(mm_tlb_batch_empty(&batch)) where a batch goes out of scope
 * catches a forgotten flush.
 */
#ifndef HADRON_MM_TLB_H
#define HADRON_MM_TLB_H

#include <stdbool.h>
#include <stdint.h>

#include <hadron/mm/cpuset.h>
#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/types.h>

#define MM_TLB_BATCH_MAX 32u

/* Deferred frees one batch holds before mm_tlb_batch_defer_free flushes
 * early. One single-page unmap frees at most four tables (5-level paging),
 * so a batch covers at least four such unmaps, and a range unmap of 4 KiB
 * pages frees one table per 2 MiB: 32 MiB between early flushes. Each entry
 * costs 16 bytes of the caller's stack. */
#define MM_TLB_BATCH_DEFER_MAX 16u

/* One frame to return to `allocator` after the invalidation. */
typedef struct mm_tlb_deferred_free {
    const mm_frame_allocator_t *allocator;
    mm_paddr_t frame;
} mm_tlb_deferred_free_t;

typedef struct mm_tlb_batch {
    uint32_t count;     /* pages recorded in pages[] */
    bool flush_all;     /* overflowed: invalidate the whole TLB instead */
    bool global;        /* a global mapping changed: the full flush must include globals */
    mm_vaddr_t pages[MM_TLB_BATCH_MAX];
    uint32_t deferred_count; /* frames recorded in deferred[] */
    mm_tlb_deferred_free_t deferred[MM_TLB_BATCH_DEFER_MAX];
    mm_asid_t asid;          /* identity the records belong to */
    const mm_cpuset_t *cpus; /* CPUs to reach; NULL: every CPU */
} mm_tlb_batch_t;

#define MM_TLB_BATCH_INIT_SPACE(a, set) {0, false, false, {0}, 0, {{0, 0}}, (a), (set)}
#define MM_TLB_BATCH_INIT_ASID(a) MM_TLB_BATCH_INIT_SPACE((a), 0)
#define MM_TLB_BATCH_INIT MM_TLB_BATCH_INIT_ASID(MM_ASID_KERNEL)

/* Makes `batch` empty, for kernel-half changes (MM_ASID_KERNEL). For fresh
 * storage or to discard page records; on a batch holding deferred frees it
 * would leak them (flush instead). O(1). */
void mm_tlb_batch_init(mm_tlb_batch_t *batch);

/* The same for changes to the address space with identity `asid`, to be
 * flushed on every CPU. O(1). */
void mm_tlb_batch_init_asid(mm_tlb_batch_t *batch, mm_asid_t asid);

/* The same for a user address space whose CPU set is `cpus` (NULL: every
 * CPU). The set is read at each flush, not here, and must stay valid until
 * the batch's last flush. O(1). */
void mm_tlb_batch_init_space(mm_tlb_batch_t *batch, mm_asid_t asid, const mm_cpuset_t *cpus);

/* True when a flush would do nothing: no page, no full flush, no deferred
 * free pending. O(1). */
bool mm_tlb_batch_empty(const mm_tlb_batch_t *batch);

/* Records that the translation of the page of `size` at `va` is stale.
 * `global` says the old entry had the global bit (survives CR3 reloads).
 * O(MM_TLB_BATCH_MAX); never fails (overflow turns into a full flush). */
void mm_tlb_batch_add(mm_tlb_batch_t *batch, mm_vaddr_t va, mm_page_size_t size, bool global);

/* Hands `frame` (one 4 KiB frame from `allocator`) to the batch: it is
 * returned with mm_frame_free(allocator, frame) only after the batch's
 * invalidation has happened, i.e. in a flush that starts after this call.
 * For page-table frames the caller has already unlinked: record (before or
 * after this call) an address the table translated, so the page flush that
 * invalidates it also drops the paging-structure-cache entries pointing at
 * the table (INVLPG drops them; so does a full flush). A batch holding
 * deferred frees and no page is flushed in full, never skipped.
 *
 * When MM_TLB_BATCH_DEFER_MAX frees are already pending, first flushes
 * early: one hook call for what the batch recorded, then the pending frees;
 * the page records are kept (the next flush invalidates them again, which
 * costs little and keeps covering the frame recorded now). An extra flush is
 * always safe, but note where it runs: inside the caller's page-table
 * change, so the TLB hooks and allocator->free may then be called with the
 * caller's locks held and interrupts disabled.
 *
 * `allocator` must stay valid until the batch is flushed. Never fails.
 * O(1), plus the early flush when full. */
void mm_tlb_batch_defer_free(mm_tlb_batch_t *batch, const mm_frame_allocator_t *allocator,
                             mm_paddr_t frame);

/* Invalidates what the batch recorded with exactly one hook call for the
 * batch's identity and a snapshot of its CPU set (none at all for an empty batch; a full flush when frees
 * are deferred but no page was recorded), then returns the deferred frames
 * to their allocators, then empties the batch, keeping its identity. Call
 * after dropping page-table locks and before reusing any frame that was
 * unmapped; a mapper also calls it for break-before-make (page_mapper.h).
 * A free the allocator refuses is an assertion (the frame was the mapper's
 * alone). O(pages + deferred frees + HADRON_MM_MAX_CPUS / 64). */
void mm_tlb_batch_flush(mm_tlb_batch_t *batch);

#endif /* HADRON_MM_TLB_H */
