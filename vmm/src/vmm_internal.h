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

/* Whether vmm_init completed on this very struct (checked by every entry
 * point): a struct copy would share the original's free-list storage and
 * hold a stale copy of its records. */
static inline bool vmm_ready(const vmm_t *vmm)
{
    return vmm != NULL && vmm->ready && vmm->self == vmm;
}

/* ---- handle records (handle.c) ------------------------------------------ */

#define VMM_REC_NONE UINT32_MAX /* end of a free-record chain */

enum vmm_rec_kind { VMM_REC_STACK = 1, VMM_REC_MMIO = 2 };

enum vmm_rec_state {
    VMM_REC_LIVE,       /* mapped */
    VMM_REC_RELEASING,  /* a release is unmapping and flushing (lock dropped) */
    VMM_REC_PAGES_GONE, /* unmapped and flushed; the range is still allocated */
};

/* Sets up both record tables (cleared, all free) and the serial counter. */
void vmm_records_init(vmm_t *vmm, vmm_handle_rec_t *handles, uint32_t handle_count,
                      vmm_space_rec_t *spaces, uint32_t space_count);

/* A fresh serial: never 0, never repeated in this vmm_t's lifetime, and
 * different between vmm_t instances. Under the VMM lock. */
uint64_t vmm_serial_next_locked(vmm_t *vmm);

/* Whether a handle record can be taken. Under the VMM lock. O(1). */
bool vmm_handle_rec_available_locked(const vmm_t *vmm);

/* Takes a free handle record (vmm_handle_rec_available_locked must have
 * said so in this lock hold), fills it in live and returns its index. */
uint32_t vmm_handle_rec_take_locked(vmm_t *vmm, uint8_t kind, uint64_t serial, mm_vaddr_t base,
                                    mm_paddr_t phys, uint64_t size);

/* The live record `index` of `kind` with this serial, or NULL (out of range,
 * free, another kind, another serial, or a release already in progress).
 * Under the VMM lock. O(1). */
vmm_handle_rec_t *vmm_handle_rec_find_locked(vmm_t *vmm, uint32_t index, uint64_t serial,
                                             uint8_t kind);

/* Frees handle record `index`. Under the VMM lock. O(1). */
void vmm_handle_rec_put_locked(vmm_t *vmm, uint32_t index);

/* Takes a free space record, or VMM_REC_NONE if the table is full. Its
 * serial stays 0 until the creator publishes it under the record's lock.
 * Under the VMM lock. O(1). */
uint32_t vmm_space_rec_take_locked(vmm_t *vmm);

/* Returns a space record whose serial is 0 to the free chain. Under the
 * VMM lock. O(1). */
void vmm_space_rec_put_locked(vmm_t *vmm, uint32_t index);

/* Reports a refused handle or heap release to mm_hook_warn; call with no
 * hadron-mm lock held. `released` says what it names is already released
 * (reported as a double free); otherwise it was never the caller's
 * (reported as a bad pointer). */
void vmm_warn_stale(const char *message, uint64_t address, bool released);

/* Whether handle record `index` exists and is free: tells a release of an
 * already released object from a forgery, for the warning. Under the VMM
 * lock. O(1). */
bool vmm_handle_rec_free_locked(const vmm_t *vmm, uint32_t index);

/* Checks the handle table against the regions and the stats: every live
 * record's range allocated in its region (stacks on the slot grid), counts
 * and MMIO pages equal to the stats, the free chain well formed. Under the
 * VMM lock. O(records * log free slots). */
bool vmm_records_consistent_locked(const vmm_t *vmm);

/* Pages an MMIO mapping of [phys, phys + size) maps; size > 0, no wrap. */
static inline uint64_t vmm_mmio_page_count(mm_paddr_t phys, uint64_t size)
{
    mm_paddr_t last = phys + (size - 1);
    return (mm_align_down(last, MM_PAGE_SIZE) - mm_align_down(phys, MM_PAGE_SIZE)) /
               MM_PAGE_SIZE +
           1;
}

#endif /* HADRON_MM_VMM_INTERNAL_H */
