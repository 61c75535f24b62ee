/*
 * hadron-mm vmm: what the VMM's source files share and nothing else sees.
 */
#ifndef HADRON_MM_VMM_INTERNAL_H
#define HADRON_MM_VMM_INTERNAL_H

#include <hadron/mm/assert.h>
#include <hadron/mm/vmm.h>

/* Kernel mappings are global: they are the same in every address space, so
 * a CR3 switch need not drop them. */
#define VMM_KERNEL_DATA_FLAGS (MM_MAP_WRITE | MM_MAP_GLOBAL)

/* A set of frames owned by one operation, linked through their first word
 * (reached through the HHDM). The chain needs no storage of its own, which
 * is what lets an operation unmap any number of pages, flush once, and only
 * then free the frames, without an array on the stack or under a lock. */
typedef struct vmm_chain {
    mm_paddr_t head; /* meaningful only when count > 0 (frame 0 is a valid frame) */
    size_t count;
} vmm_chain_t;

#define VMM_CHAIN_INIT {0, 0}

/* Allocates n zeroed frames (link word aside) from fa, all or nothing:
 * MM_ERR_NOMEM with everything already taken given back. Call without the
 * VMM lock. O(n) frame allocations and page clears. */
mm_status_t vmm_chain_alloc(const mm_frame_allocator_t *fa, size_t n, vmm_chain_t *chain);

/* Takes one frame off the chain with its link word cleared (so a frame from
 * vmm_chain_alloc is entirely zero). The chain must not be empty. O(1). */
mm_paddr_t vmm_chain_pop(vmm_chain_t *chain);

/* Puts a frame on the chain (overwrites its first word). O(1). */
void vmm_chain_push(vmm_chain_t *chain, mm_paddr_t frame);

/* Gives every frame back to fa. Call without the VMM lock and after the TLB
 * flush that made the frames unreachable. O(count). */
void vmm_chain_free(const mm_frame_allocator_t *fa, vmm_chain_t *chain);

/* Maps `pages` 4 KiB pages at va in `root`: frame i is popped from `chain`
 * when it is not NULL, else it is pa + i pages (MMIO). Stops at the first
 * error, returning it with *done pages mapped (a popped frame whose map
 * failed goes back on the chain). Caller holds the lock of `root`. */
mm_status_t vmm_map_pages(const mm_page_mapper_t *pm, mm_paddr_t root, mm_vaddr_t va,
                          size_t pages, vmm_chain_t *chain, mm_paddr_t pa, mm_map_flags_t flags,
                          mm_tlb_batch_t *tlb, size_t *done);

/* Unmaps `pages` 4 KiB pages at va that the VMM mapped; their frames go on
 * `chain` when it is not NULL. Failure to unmap is corruption (asserted).
 * Caller holds the lock of `root`. */
void vmm_unmap_pages(const mm_page_mapper_t *pm, mm_paddr_t root, mm_vaddr_t va, size_t pages,
                     vmm_chain_t *chain, mm_tlb_batch_t *tlb);

/* Whether vmm_init completed (checked by every entry point). */
static inline bool vmm_ready(const vmm_t *vmm)
{
    return vmm != NULL && vmm->ready;
}

#endif /* HADRON_MM_VMM_INTERNAL_H */
