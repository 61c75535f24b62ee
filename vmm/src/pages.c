/*
 * Page-level helpers shared by heap, stacks, MMIO and address spaces: frame
 * chains and mapping or unmapping runs of 4 KiB pages.
 */
#include <hadron/mm/hhdm.h>

#include "vmm_internal.h"

static mm_paddr_t *link_word(mm_paddr_t frame)
{
    return (mm_paddr_t *)hhdm_phys_to_virt(frame);
}

void vmm_chain_push(vmm_chain_t *chain, mm_paddr_t frame)
{
    *link_word(frame) = chain->head;
    chain->head = frame;
    chain->count++;
}

mm_paddr_t vmm_chain_pop(vmm_chain_t *chain)
{
    MM_ASSERT(chain->count > 0);
    mm_paddr_t frame = chain->head;
    mm_paddr_t *link = link_word(frame);
    chain->head = *link;
    chain->count--;
    *link = 0;
    return frame;
}

void vmm_chain_free(const mm_frame_allocator_t *fa, vmm_chain_t *chain)
{
    while (chain->count > 0) {
        mm_paddr_t frame = vmm_chain_pop(chain);
        mm_status_t st = mm_frame_free(fa, frame);
        /* These frames came from fa and were ours alone: a refusal means the
         * allocator or the chain is corrupt. */
        MM_ASSERT(st == MM_OK);
        (void)st;
    }
}

mm_status_t vmm_chain_alloc(const mm_frame_allocator_t *fa, size_t n, vmm_chain_t *chain)
{
    vmm_chain_t c = VMM_CHAIN_INIT;
    for (size_t i = 0; i < n; i++) {
        mm_paddr_t frame;
        mm_status_t st = mm_frame_alloc(fa, &frame);
        if (st != MM_OK) {
            vmm_chain_free(fa, &c);
            /* The interface promises only NOMEM/INVALID; with count 1 and
             * alignment 1 anything else is the allocator's way of saying
             * "no frame". */
            return MM_ERR_NOMEM;
        }
        MM_ASSERT(mm_is_aligned(frame, MM_FRAME_SIZE));
        /* Zeroed here, outside any VMM lock: clearing a 4 MiB heap growth
         * must not keep interrupts off on this CPU. */
        __builtin_memset(hhdm_phys_to_virt(frame), 0, MM_FRAME_SIZE);
        vmm_chain_push(&c, frame);
    }
    *chain = c;
    return MM_OK;
}

mm_status_t vmm_map_pages(const mm_page_mapper_t *pm, mm_paddr_t root, mm_vaddr_t va,
                          size_t pages, vmm_chain_t *chain, mm_paddr_t pa, mm_map_flags_t flags,
                          mm_tlb_batch_t *tlb, size_t *done)
{
    for (size_t i = 0; i < pages; i++) {
        mm_vaddr_t page_va = va + i * MM_PAGE_SIZE;
        mm_paddr_t frame = chain != NULL ? vmm_chain_pop(chain) : pa + i * MM_PAGE_SIZE;
        mm_status_t st = mm_pm_map(pm, root, page_va, frame, MM_PAGE_4K, flags, tlb);
        if (st != MM_OK) {
            if (chain != NULL)
                vmm_chain_push(chain, frame);
            *done = i;
            return st;
        }
    }
    *done = pages;
    return MM_OK;
}

void vmm_unmap_pages(const mm_page_mapper_t *pm, mm_paddr_t root, mm_vaddr_t va, size_t pages,
                     vmm_chain_t *chain, mm_tlb_batch_t *tlb)
{
    for (size_t i = 0; i < pages; i++) {
        mm_paddr_t frame = 0;
        mm_status_t st = mm_pm_unmap(pm, root, va + i * MM_PAGE_SIZE, MM_PAGE_4K, &frame, tlb);
        MM_ASSERT(st == MM_OK);
        (void)st;
        if (chain != NULL)
            vmm_chain_push(chain, frame);
    }
}
