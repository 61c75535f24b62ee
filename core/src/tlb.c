#include <hadron/mm/assert.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/tlb.h>

/* Empties the records and keeps the identity. */
static void reset(mm_tlb_batch_t *batch)
{
    batch->count = 0;
    batch->flush_all = false;
    batch->global = false;
    batch->deferred_count = 0;
}

void mm_tlb_batch_init(mm_tlb_batch_t *batch)
{
    mm_tlb_batch_init_asid(batch, MM_ASID_KERNEL);
}

void mm_tlb_batch_init_asid(mm_tlb_batch_t *batch, mm_asid_t asid)
{
    mm_tlb_batch_init_space(batch, asid, NULL);
}

void mm_tlb_batch_init_space(mm_tlb_batch_t *batch, mm_asid_t asid, const mm_cpuset_t *cpus)
{
    reset(batch);
    batch->asid = asid;
    batch->cpus = cpus;
}

bool mm_tlb_batch_empty(const mm_tlb_batch_t *batch)
{
    return batch->count == 0 && !batch->flush_all && batch->deferred_count == 0;
}

void mm_tlb_batch_add(mm_tlb_batch_t *batch, mm_vaddr_t va, mm_page_size_t size, bool global)
{
    batch->global |= global;
    if (batch->flush_all)
        return;
    /* INVLPG of any address inside a large page drops the whole entry, so a
     * huge page needs one slot like a 4 KiB one. */
    mm_vaddr_t page = mm_align_down(va, mm_page_bytes(size));
    for (uint32_t i = 0; i < batch->count; i++)
        if (batch->pages[i] == page)
            return;
    if (batch->count == MM_TLB_BATCH_MAX) {
        batch->flush_all = true;
        return;
    }
    batch->pages[batch->count++] = page;
}

/* The one hook call of a flush. A deferred table frame needs its
 * paging-structure-cache entries dropped even when no page was recorded,
 * and only the full flush is sure to reach every CPU that may cache it: a
 * made-up address would let the kernel route the shootdown by the wrong
 * address (user vs kernel half). */
static void invalidate(const mm_tlb_batch_t *batch)
{
    bool all = batch->flush_all || (batch->count == 0 && batch->deferred_count != 0);
    if (!all && batch->count == 0)
        return;
    /* Read only now, after every page-table store the batch stands for. */
    mm_cpuset_t cpus;
    if (batch->cpus != NULL) {
        mm_cpuset_snapshot(&cpus, batch->cpus);
    } else {
        mm_cpuset_clear(&cpus);
        mm_cpuset_fill(&cpus);
    }
    if (all)
        mm_hook_tlb_flush_all(batch->asid, &cpus, batch->global);
    else
        mm_hook_tlb_flush_pages(batch->asid, &cpus, batch->pages, batch->count);
}

/* Only after invalidate(): see mm_tlb_batch_defer_free. */
static void free_deferred(mm_tlb_batch_t *batch)
{
    for (uint32_t i = 0; i < batch->deferred_count; i++) {
        const mm_tlb_deferred_free_t *d = &batch->deferred[i];
        mm_status_t st = mm_frame_free(d->allocator, d->frame);
        MM_ASSERT(st == MM_OK);
        (void)st;
    }
    batch->deferred_count = 0;
}

void mm_tlb_batch_defer_free(mm_tlb_batch_t *batch, const mm_frame_allocator_t *allocator,
                             mm_paddr_t frame)
{
    MM_ASSERT(batch->deferred_count <= MM_TLB_BATCH_DEFER_MAX);
    if (batch->deferred_count == MM_TLB_BATCH_DEFER_MAX) {
        /* Pages stay recorded: the caller may already have recorded the
         * address that covers `frame`, and the flush now happens before
         * `frame` is even in the batch. */
        invalidate(batch);
        free_deferred(batch);
    }
    batch->deferred[batch->deferred_count].allocator = allocator;
    batch->deferred[batch->deferred_count].frame = frame;
    batch->deferred_count++;
}

void mm_tlb_batch_flush(mm_tlb_batch_t *batch)
{
    invalidate(batch);
    free_deferred(batch);
    reset(batch);
}
