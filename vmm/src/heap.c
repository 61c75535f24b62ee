/*
 * The kernel heap's pages: growth maps fresh frames into the heap region and
 * release gives whole pages back. The region is a first-fit free list, not a
 * watermark, because the heap returns pages: a growth takes the lowest
 * released range that fits before it raises the top, released ranges merge
 * with each other and with the top, so grow/release cycles cannot walk the
 * heap off the end of its window.
 */
#include "vmm_internal.h"

/* Whether a growth of `bytes` can start now. Under the VMM lock. */
static mm_status_t can_grow_locked(const vmm_t *vmm, uint64_t bytes, bool initial)
{
    if (initial && vmm->heap.watermark != 0)
        return MM_ERR_STATE;
    return vmm_region_freelist_can_alloc(&vmm->heap, bytes);
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
    st = vmm_region_freelist_alloc(&vmm->heap, bytes, &va);
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
        /* Fails only if concurrent releases filled the free list in the
         * unlocked window; the range then stays allocated and is reported. */
        if (vmm_region_freelist_free(&vmm->heap, va, bytes) != MM_OK)
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

/* Whether every page of [va, va + pages) is mapped by a 4 KiB entry, as the
 * heap's pages are. The free list alone cannot tell: a range that a release
 * (or a failed growth) has unmapped stays allocated until its flush is
 * done, and a second release of it in that window must be refused, not
 * unmapped again.
 * Under the VMM lock. O(pages * levels). */
static bool held_pages_locked(const vmm_t *vmm, mm_vaddr_t va, size_t pages)
{
    for (size_t i = 0; i < pages; i++) {
        mm_translation_t t;
        if (mm_pm_translate(&vmm->mapper, vmm->kernel_root, va + i * MM_PAGE_SIZE, &t) != MM_OK ||
            t.size != MM_PAGE_4K)
            return false;
    }
    return true;
}

mm_status_t vmm_heap_release(vmm_t *vmm, void *base, size_t size)
{
    if (vmm == NULL || base == NULL || size == 0)
        return MM_ERR_INVALID;
    if (!vmm_ready(vmm))
        return MM_ERR_STATE;
    mm_vaddr_t va = (mm_vaddr_t)(uintptr_t)base;
    if (!mm_is_aligned(va, MM_PAGE_SIZE) || !mm_is_aligned(size, MM_PAGE_SIZE)) {
        vmm_warn_stale("vmm: heap release not page aligned", va, false);
        return MM_ERR_ALIGN;
    }
    size_t pages = size / MM_PAGE_SIZE;

    /* Everything that can refuse the release is checked before the first
     * page is unmapped, so a refusal leaves the heap its pages. */
    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    mm_status_t st = vmm_region_freelist_can_free(&vmm->heap, va, size);
    bool released = st == MM_ERR_DOUBLE_FREE;
    if (st == MM_OK && !held_pages_locked(vmm, va, pages)) {
        st = MM_ERR_RANGE;
        released = true;
    }
    if (st != MM_OK) {
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        if (st == MM_ERR_FULL)
            return MM_ERR_FULL;
        vmm_warn_stale(released ? "vmm: heap range released twice"
                                : "vmm: heap release of pages the heap does not hold",
                       va, released);
        return MM_ERR_RANGE;
    }

    vmm_chain_t chain = VMM_CHAIN_INIT;
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    vmm_unmap_pages(&vmm->mapper, vmm->kernel_root, va, pages, &chain, &tlb);
    vmm->stats.heap_bytes -= size;
    vmm->stats.data_frames -= pages;
    vmm->stats.heap_released += size;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    /* The frames and the range are reused only after the flush: until then
     * another CPU could still reach them through a stale entry. */
    mm_tlb_batch_flush(&tlb);
    vmm_chain_free(&vmm->frames, &chain);

    irq = mm_spin_lock_irqsave(&vmm->lock);
    /* The range is still allocated (nothing else frees it, and the top
     * cannot drop below it), so only concurrent releases taking the last
     * slot in the unlocked window can make this fail. */
    st = vmm_region_freelist_free(&vmm->heap, va, size);
    MM_ASSERT(st == MM_OK || st == MM_ERR_FULL);
    if (st != MM_OK)
        vmm->stats.stranded_bytes += size;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    return MM_OK;
}

mm_status_t vmm_heap_release_callback(void *ctx, void *base, size_t size)
{
    return vmm_heap_release((vmm_t *)ctx, base, size);
}
