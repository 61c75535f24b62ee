/*
 * Heap growth: the kernel heap's source of pages. The heap region is a bump
 * allocator because the kernel heap never gives address space back; every
 * growth continues the previous one, so the heap stays one range.
 */
#include "vmm_internal.h"

/* Whether a growth of `bytes` can start now. Under the VMM lock. */
static mm_status_t can_grow_locked(const vmm_t *vmm, uint64_t bytes, bool initial)
{
    if (initial && vmm->heap.used != 0)
        return MM_ERR_STATE;
    if (bytes > vmm->heap.size - vmm->heap.used)
        return MM_ERR_EXHAUSTED;
    return MM_OK;
}

static mm_status_t grow(vmm_t *vmm, size_t min_bytes, bool initial, void **base, size_t *size)
{
    if (vmm == NULL || base == NULL || size == NULL)
        return MM_ERR_INVALID;
    if (!vmm_ready(vmm))
        return MM_ERR_STATE;
    uint64_t bytes;
    uint64_t want = min_bytes < VMM_HEAP_MIN_GROWTH ? VMM_HEAP_MIN_GROWTH : min_bytes;
    if (!mm_align_up_checked(want, MM_PAGE_SIZE, &bytes))
        return MM_ERR_EXHAUSTED;
    size_t pages = (size_t)(bytes / MM_PAGE_SIZE);

    /* Checked before taking frames so an impossible request costs nothing,
     * and again after, since the lock is dropped in between. */
    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    mm_status_t st = can_grow_locked(vmm, bytes, initial);
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    if (st != MM_OK)
        return st;

    vmm_chain_t chain;
    if ((st = vmm_chain_alloc(&vmm->frames, pages, &chain)) != MM_OK)
        return st;

    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    irq = mm_spin_lock_irqsave(&vmm->lock);
    if ((st = can_grow_locked(vmm, bytes, initial)) != MM_OK) {
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        vmm_chain_free(&vmm->frames, &chain);
        return st;
    }
    mm_vaddr_t va;
    st = vmm_region_bump_alloc(&vmm->heap, bytes, &va);
    MM_ASSERT(st == MM_OK);

    size_t done;
    st = vmm_map_pages(&vmm->mapper, vmm->kernel_root, va, pages, &chain, 0,
                       VMM_KERNEL_DATA_FLAGS, &tlb, &done);
    if (st != MM_OK) {
        vmm_unmap_pages(&vmm->mapper, vmm->kernel_root, va, done, &chain, &tlb);
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        /* Flush before the frames and the range can be reused. */
        mm_tlb_batch_flush(&tlb);
        vmm_chain_free(&vmm->frames, &chain);
        irq = mm_spin_lock_irqsave(&vmm->lock);
        /* Only a concurrent growth in the unlocked window can make this
         * fail; the range then stays allocated and is reported. */
        if (vmm_region_bump_unwind(&vmm->heap, va, bytes) != MM_OK)
            vmm->stats.stranded_bytes += bytes;
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        return st;
    }
    MM_ASSERT(chain.count == 0);
    vmm->stats.heap_bytes += bytes;
    vmm->stats.data_frames += pages;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    mm_tlb_batch_flush(&tlb);

    *base = (void *)(uintptr_t)va;
    *size = (size_t)bytes;
    return MM_OK;
}

mm_status_t vmm_heap_grow(vmm_t *vmm, size_t min_bytes, void **base, size_t *size)
{
    return grow(vmm, min_bytes, false, base, size);
}

mm_status_t vmm_heap_grow_callback(void *ctx, size_t min_bytes, void **base, size_t *size)
{
    return grow((vmm_t *)ctx, min_bytes, false, base, size);
}

mm_status_t vmm_heap_init(vmm_t *vmm, size_t bytes, void **base, size_t *size)
{
    return grow(vmm, bytes != 0 ? bytes : (size_t)VMM_HEAP_INITIAL_SIZE, true, base, size);
}
