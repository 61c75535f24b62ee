/*
 * Kernel stacks: fixed-size slots in the stack region, each an unmapped
 * guard page followed by the stack's pages. Fixed size is what lets a fault
 * handler find the guard page by arithmetic (vmm_classify_fault).
 */
#include "vmm_internal.h"

static void set_released(vmm_stack_t *s)
{
    *s = (vmm_stack_t)VMM_STACK_INIT;
}

/* Gives back a range whose pages are unmapped and flushed, or records it as
 * stranded. For rollback only: a release keeps the range in its object. */
static void return_range_locked(vmm_t *vmm, mm_vaddr_t range)
{
    if (vmm_region_freelist_free(&vmm->stacks, range, vmm->stack_slot) != MM_OK)
        vmm->stats.stranded_bytes += vmm->stack_slot;
}

mm_status_t vmm_stack_create(vmm_t *vmm, vmm_stack_t *out)
{
    if (out == NULL)
        return MM_ERR_INVALID;
    set_released(out);
    if (vmm == NULL)
        return MM_ERR_INVALID;
    if (!vmm->ready)
        return MM_ERR_STATE;

    size_t pages = (size_t)(vmm->stack_size / MM_PAGE_SIZE);
    vmm_chain_t chain;
    mm_status_t st = vmm_chain_alloc(&vmm->frames, pages, &chain);
    if (st != MM_OK)
        return st;

    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    mm_vaddr_t range;
    st = vmm_region_freelist_alloc(&vmm->stacks, vmm->stack_slot, &range);
    if (st != MM_OK) {
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        vmm_chain_free(&vmm->frames, &chain);
        return st;
    }
    MM_ASSERT((range - vmm->stacks.base) % vmm->stack_slot == 0);

    mm_vaddr_t bottom = range + VMM_STACK_GUARD_SIZE;
    size_t done;
    st = vmm_map_pages(&vmm->mapper, vmm->kernel_root, bottom, pages, &chain, 0,
                       VMM_KERNEL_DATA_FLAGS, &tlb, &done);
    if (st != MM_OK) {
        vmm_unmap_pages(&vmm->mapper, vmm->kernel_root, bottom, done, &chain, &tlb);
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        mm_tlb_batch_flush(&tlb);
        vmm_chain_free(&vmm->frames, &chain);
        irq = mm_spin_lock_irqsave(&vmm->lock);
        return_range_locked(vmm, range);
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        return st;
    }
    MM_ASSERT(chain.count == 0);
    vmm->stats.stacks++;
    vmm->stats.data_frames += pages;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    mm_tlb_batch_flush(&tlb);

    out->bottom = bottom;
    out->top = range + vmm->stack_slot;
    out->size = vmm->stack_size;
    out->vmm = vmm;
    out->range = range;
    out->pages_freed = false;
    return MM_OK;
}

mm_status_t vmm_stack_release(vmm_stack_t *stack)
{
    if (stack == NULL || stack->vmm == NULL)
        return MM_OK;
    vmm_t *vmm = stack->vmm;
    mm_irqflags_t irq;

    if (!stack->pages_freed) {
        size_t pages = (size_t)(vmm->stack_size / MM_PAGE_SIZE);
        vmm_chain_t chain = VMM_CHAIN_INIT;
        mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
        irq = mm_spin_lock_irqsave(&vmm->lock);
        vmm_unmap_pages(&vmm->mapper, vmm->kernel_root, stack->bottom, pages, &chain, &tlb);
        vmm->stats.data_frames -= pages;
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        mm_tlb_batch_flush(&tlb);
        vmm_chain_free(&vmm->frames, &chain);
        stack->pages_freed = true;
    }

    /* The range goes back only now, after the flush: until then another CPU
     * could still hold a translation for it. */
    irq = mm_spin_lock_irqsave(&vmm->lock);
    mm_status_t st = vmm_region_freelist_free(&vmm->stacks, stack->range, vmm->stack_slot);
    if (st == MM_OK)
        vmm->stats.stacks--;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    if (st != MM_OK) {
        /* Only a full free list can refuse a range this VMM handed out. */
        MM_ASSERT(st == MM_ERR_FULL);
        return st;
    }
    set_released(stack);
    return MM_OK;
}
