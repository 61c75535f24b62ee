/*
 * hadron-mm core: the page-mapper interface.
 *
 * The architecture-independent parts (the VMM) change page tables only
 * through this interface: the x86_64 mapper in paging-x86_64/ implements it,
 * and host tests may pass a fake. Every operation names the hierarchy by the
 * physical address of its root table, so one mapper serves the kernel and
 * every user address space; the mapper's va_space operation says which
 * addresses exist and whether the kernel half has a root of its own
 * (va_space.h). Every change records stale translations in the caller's TLB
 * batch, which names the address-space identity they belong to (tlb.h);
 * nothing is flushed behind the caller's back except in the two cases of
 * "Synchronous invalidations" below.
 *
 * Page-table frames a change unlinks (tables that became empty, an empty
 * table replaced by a huge page) are not freed by the change: they are
 * handed to the caller's batch and return to the frame allocator when the
 * batch is flushed, after the invalidation, so no CPU can still walk into a
 * frame that has a new owner. Callers must therefore flush every batch they
 * passed to map, unmap or protect (re-initialising or dropping it leaks
 * those frames), and may free the data frames unmap returned only after
 * that flush too.
 *
 * Synchronous invalidations. A mapper invalidates inside a change, through
 * the caller's batch and so through the kernel's flush hooks (hooks.h), in
 * exactly two cases, both with the caller's lock on the hierarchy held (the
 * VMM lock for the kernel half, the address-space lock for a user half) and
 * interrupts disabled by that lock:
 *  1. Break-before-make, where the architecture demands it. AArch64 forbids
 *     replacing a valid entry by another valid one that differs in output
 *     address, memory type, shape (block vs table vs page) or nG: the mapper
 *     first writes an invalid entry, records the old translation with
 *     mm_tlb_batch_add and calls mm_tlb_batch_flush on the caller's batch
 *     (one hook call for the batch's identity, on every CPU the kernel's
 *     hook reaches, then the deferred frees), and only then writes the new
 *     entry. It happens in map (a huge page replacing an empty table) and
 *     protect (a memory-type change); never in unmap, translate or the root
 *     operations. x86_64 needs none: the SDM allows a present entry to be
 *     changed in place, a CPU then uses the old or the new translation until
 *     the caller's flush, and the x86_64 mapper never flushes for it.
 *  2. The early flush of a batch whose deferred-free list is full
 *     (mm_tlb_batch_defer_free), on any architecture.
 * A kernel whose flush hook waits for other CPUs must therefore not let
 * them spin, interrupts disabled, on the lock held at such a call. A
 * mapper also makes a new entry visible to its own CPU's table walker
 * before returning (AArch64: DSB ISHST, ISB); x86_64 needs nothing for that.
 *
 * Unless stated otherwise every operation either succeeds completely or
 * returns an error with the tables exactly as before (no half-built path, no
 * leaked table frame). Callers serialise operations on one hierarchy; the
 * mapper takes no locks of its own.
 */
#ifndef HADRON_MM_PAGE_MAPPER_H
#define HADRON_MM_PAGE_MAPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/status.h>
#include <hadron/mm/tlb.h>
#include <hadron/mm/types.h>
#include <hadron/mm/va_space.h>

/* Memory types, named for what they are; each mapper translates them
 * into its architecture's attribute encoding (x86_64: a PAT entry, see
 * X86PT_PAT_MSR; AArch64: a MAIR_EL1 attribute index).
 *   write-back        normal cached memory (the default)
 *   write-through     normal memory, reads cached, writes go through
 *   write-combining   normal memory, uncached, writes may be buffered and
 *                     merged (framebuffers)
 *   normal NC         normal memory, uncached: speculative reads and
 *                     reordering allowed (DMA buffers shared with devices)
 *   device            device registers: uncached, no speculation, no
 *                     merging, accesses in program order */
typedef enum mm_mem_type {
    MM_MEM_WRITE_BACK = 0,
    MM_MEM_WRITE_THROUGH = 1,
    MM_MEM_WRITE_COMBINING = 2,
    MM_MEM_NORMAL_NC = 3,
    MM_MEM_DEVICE = 4,
    MM_MEM_TYPE_COUNT
} mm_mem_type_t;

#define MM_MAP_MEM_SHIFT 4u

/* Architecture-independent mapping attributes: permission bits and one
 * memory-type field (bits 4..6). Absent bits mean: read-only, no-execute,
 * supervisor-only, not global, write-back. MM_MAP_GLOBAL: the translation
 * is the same in every address space, so a TLB entry for it is shared by
 * every address-space identity and survives root switches and identity
 * retirement; only a flush that includes global entries drops it (x86_64:
 * the G bit; AArch64: nG clear). */
enum {
    MM_MAP_WRITE = 1u << 0,
    MM_MAP_EXEC = 1u << 1,
    MM_MAP_USER = 1u << 2,
    MM_MAP_GLOBAL = 1u << 3,
    MM_MAP_WRITE_BACK = (unsigned)MM_MEM_WRITE_BACK << MM_MAP_MEM_SHIFT, /* 0 */
    MM_MAP_WRITE_THROUGH = (unsigned)MM_MEM_WRITE_THROUGH << MM_MAP_MEM_SHIFT,
    MM_MAP_WRITE_COMBINING = (unsigned)MM_MEM_WRITE_COMBINING << MM_MAP_MEM_SHIFT,
    MM_MAP_NORMAL_NC = (unsigned)MM_MEM_NORMAL_NC << MM_MAP_MEM_SHIFT,
    MM_MAP_DEVICE = (unsigned)MM_MEM_DEVICE << MM_MAP_MEM_SHIFT,
    MM_MAP_MEM_MASK = 7u << MM_MAP_MEM_SHIFT,
    MM_MAP_FLAGS_ALL = (1u << 7) - 1, /* every bit that may be set; field values
                                         >= MM_MEM_TYPE_COUNT are still invalid */
};
typedef uint32_t mm_map_flags_t;

/* The memory type a set of flags names (possibly >= MM_MEM_TYPE_COUNT,
 * which every operation rejects). O(1). */
static inline mm_mem_type_t mm_map_mem_type(mm_map_flags_t flags)
{
    return (mm_mem_type_t)((flags & MM_MAP_MEM_MASK) >> MM_MAP_MEM_SHIFT);
}

/* Whether flags has only known bits and a known memory type. O(1). */
static inline bool mm_map_flags_valid(mm_map_flags_t flags)
{
    return (flags & ~(mm_map_flags_t)MM_MAP_FLAGS_ALL) == 0 &&
           mm_map_mem_type(flags) < MM_MEM_TYPE_COUNT;
}

/* One leaf translation. */
typedef struct mm_translation {
    mm_vaddr_t page_va;   /* base of the page containing the address */
    mm_paddr_t page_pa;   /* its physical base */
    mm_paddr_t pa;        /* the physical address of the queried address */
    mm_page_size_t size;
    mm_map_flags_t flags;
} mm_translation_t;

/* Called for each user-half leaf by root_destroy so the owner can free the
 * frame (or not, for shared or device memory). */
typedef void (*mm_leaf_fn)(void *arg, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                           mm_map_flags_t flags);

typedef struct mm_page_mapper_ops {
    /* Map one page of `size` at va -> pa. Errors: MM_ERR_NOT_CANONICAL
     * (va in neither range of the mapper's va_space), MM_ERR_ALIGN (va or
     * pa not aligned to size), MM_ERR_RANGE (pa beyond the physical width),
     * MM_ERR_INVALID (unknown flag bits or memory type), MM_ERR_UNSUPPORTED (size or flag the CPU
     * lacks), MM_ERR_EXISTS (anything mapped in the range, including a
     * larger page covering it or a table holding mappings below a huge
     * request; an empty table there is replaced), MM_ERR_NOMEM
     * (no frame for a table). A table the new page replaces is freed
     * through `tlb` (at its flush). */
    mm_status_t (*map)(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                       mm_page_size_t size, mm_map_flags_t flags, mm_tlb_batch_t *tlb);
    /* Unmap the page of `size` at va (its base). Returns its frame in
     * *pa_out (may be NULL). Intermediate tables that become empty are
     * unlinked now and freed through `tlb`: they reach the allocator when
     * the caller flushes it. Errors: MM_ERR_NOT_CANONICAL, MM_ERR_ALIGN,
     * MM_ERR_NOT_MAPPED, MM_ERR_SIZE_MISMATCH (mapped with another page
     * size). */
    mm_status_t (*unmap)(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                         mm_paddr_t *pa_out, mm_tlb_batch_t *tlb);
    /* Replace the attributes of the page of `size` at va. Errors as unmap,
     * plus MM_ERR_INVALID / MM_ERR_UNSUPPORTED for the flags. */
    mm_status_t (*protect)(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                           mm_map_flags_t flags, mm_tlb_batch_t *tlb);
    /* Translate any address. Errors: MM_ERR_NOT_CANONICAL,
     * MM_ERR_NOT_MAPPED. */
    mm_status_t (*translate)(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_translation_t *out);
    /* Allocate a zeroed root table whose kernel half shares the top-level
     * entries of `kernel_root` (0: an empty kernel half; with a separate
     * kernel root (va_space) the VMM always passes 0: the root then
     * translates the user half only). */
    mm_status_t (*root_create)(void *ctx, mm_paddr_t kernel_root, mm_paddr_t *root_out);
    /* Free every user-half table and the root itself, calling `leaf` (may be
     * NULL) for each user-half leaf first. Kernel-half tables are shared and
     * left alone. Cannot fail on a root made by root_create. There is no
     * batch: frames go back at once, so the root must be current on no CPU
     * and no CPU may still cache translations or paging-structure entries
     * of its user half: its address-space identity must have been retired
     * (mm_hook_asid_retire) first, which the VMM does. */
    void (*root_destroy)(void *ctx, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg);
    /* Make sure every top-level entry covering [va, va + len) points to a
     * table, so roots created later share everything mapped there. All or
     * nothing; MM_ERR_NOMEM, MM_ERR_NOT_CANONICAL, MM_ERR_INVALID (a root
     * that is not a table frame the mapper can reach). */
    mm_status_t (*prepopulate_top)(void *ctx, mm_paddr_t root, mm_vaddr_t va, uint64_t len);
    /* The address space this mapper translates (va_space.h): constant for
     * the mapper's lifetime. Cannot fail; O(1). */
    void (*va_space)(void *ctx, mm_va_space_t *out);
} mm_page_mapper_ops_t;

typedef struct mm_page_mapper {
    const mm_page_mapper_ops_t *ops;
    void *ctx;
} mm_page_mapper_t;

static inline mm_status_t mm_pm_map(const mm_page_mapper_t *pm, mm_paddr_t root, mm_vaddr_t va,
                                    mm_paddr_t pa, mm_page_size_t size, mm_map_flags_t flags,
                                    mm_tlb_batch_t *tlb)
{
    return pm->ops->map(pm->ctx, root, va, pa, size, flags, tlb);
}

static inline mm_status_t mm_pm_unmap(const mm_page_mapper_t *pm, mm_paddr_t root,
                                      mm_vaddr_t va, mm_page_size_t size, mm_paddr_t *pa_out,
                                      mm_tlb_batch_t *tlb)
{
    return pm->ops->unmap(pm->ctx, root, va, size, pa_out, tlb);
}

static inline mm_status_t mm_pm_protect(const mm_page_mapper_t *pm, mm_paddr_t root,
                                        mm_vaddr_t va, mm_page_size_t size,
                                        mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    return pm->ops->protect(pm->ctx, root, va, size, flags, tlb);
}

static inline mm_status_t mm_pm_translate(const mm_page_mapper_t *pm, mm_paddr_t root,
                                          mm_vaddr_t va, mm_translation_t *out)
{
    return pm->ops->translate(pm->ctx, root, va, out);
}

#endif /* HADRON_MM_PAGE_MAPPER_H */
