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
    if (!vmm_ready(vmm))
        return MM_ERR_STATE;

    size_t pages = (size_t)(vmm->stack_size / MM_PAGE_SIZE);
    vmm_chain_t chain;
    mm_status_t st = vmm_chain_alloc(&vmm->frames, pages, &chain);
    if (st != MM_OK)
        return st;

    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    mm_vaddr_t range;
    /* The record is taken only on success, in this same lock hold, so a
     * rollback (which drops the lock) never has one to give back. */
    st = vmm_handle_rec_available_locked(vmm) ? MM_OK : MM_ERR_FULL;
    if (st == MM_OK)
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
    uint64_t serial = vmm_serial_next_locked(vmm);
    uint32_t rec = vmm_handle_rec_take_locked(vmm, VMM_REC_STACK, serial, range, 0, 0);
    vmm->stats.stacks++;
    vmm->stats.data_frames += pages;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    mm_tlb_batch_flush(&tlb);

    out->bottom = bottom;
    out->top = range + vmm->stack_slot;
    out->size = vmm->stack_size;
    out->vmm = vmm;
    out->serial = serial;
    out->rec = rec;
    return MM_OK;
}

/* The live record this handle names, if every field of it matches. Under
 * the VMM lock. */
static vmm_handle_rec_t *find_locked(vmm_t *vmm, const vmm_stack_t *s)
{
    vmm_handle_rec_t *r = vmm_handle_rec_find_locked(vmm, s->rec, s->serial, VMM_REC_STACK);
    if (r == NULL || s->bottom != r->base + VMM_STACK_GUARD_SIZE ||
        s->top != r->base + vmm->stack_slot || s->size != vmm->stack_size)
        return NULL;
    return r;
}

mm_status_t vmm_stack_release(vmm_stack_t *stack)
{
    if (stack == NULL || stack->vmm == NULL)
        return MM_OK;
    vmm_t *vmm = stack->vmm;
    if (!vmm_ready(vmm)) {
        vmm_warn_stale("vmm: stack handle of no live VMM", stack->bottom, false);
        return MM_ERR_STALE;
    }

    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    vmm_handle_rec_t *r = find_locked(vmm, stack);
    if (r == NULL) {
        bool released = vmm_handle_rec_free_locked(vmm, stack->rec);
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        vmm_warn_stale(released ? "vmm: stack released twice (stale copy)"
                                : "vmm: stale or forged stack handle",
                       stack->bottom, released);
        return MM_ERR_STALE;
    }
    mm_vaddr_t range = r->base;
    if (r->state == VMM_REC_LIVE) {
        /* RELEASING keeps a concurrent release of a copy out while the
         * lock is dropped for the flush. */
        r->state = VMM_REC_RELEASING;
        size_t pages = (size_t)(vmm->stack_size / MM_PAGE_SIZE);
        vmm_chain_t chain = VMM_CHAIN_INIT;
        mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
        vmm_unmap_pages(&vmm->mapper, vmm->kernel_root, range + VMM_STACK_GUARD_SIZE, pages,
                        &chain, &tlb);
        vmm->stats.data_frames -= pages;
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        mm_tlb_batch_flush(&tlb);
        vmm_chain_free(&vmm->frames, &chain);
        irq = mm_spin_lock_irqsave(&vmm->lock);
        /* The table cannot move: records are only freed by this release. */
        r->state = VMM_REC_PAGES_GONE;
    }

    /* The range goes back only now, after the flush: until then another CPU
     * could still hold a translation for it. */
    mm_status_t st = vmm_region_freelist_free(&vmm->stacks, range, vmm->stack_slot);
    if (st == MM_OK) {
        vmm->stats.stacks--;
        vmm_handle_rec_put_locked(vmm, stack->rec);
    }
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    if (st != MM_OK) {
        /* Only a full free list can refuse a range this VMM handed out. */
        MM_ASSERT(st == MM_ERR_FULL);
        return st;
    }
    set_released(stack);
    return MM_OK;
}
