/*
 * hadron-mm core: the page-mapper interface.
 *
 * The architecture-independent parts (the VMM) change page tables only
 * through this interface: the x86_64 mapper in paging-x86_64/ implements it,
 * and host tests may pass a fake. Every operation names the hierarchy by the
 * physical address of its root table, so one mapper serves the kernel and
 * every user address space. Every change records stale translations in the
 * caller's TLB batch; nothing is flushed behind the caller's back (except
 * the early flush of a batch whose deferred-free list is full, see
 * mm_tlb_batch_defer_free).
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
 * Unless stated otherwise every operation either succeeds completely or
 * returns an error with the tables exactly as before (no half-built path, no
 * leaked table frame). Callers serialise operations on one hierarchy; the
 * mapper takes no locks of its own.
 */
#ifndef HADRON_MM_PAGE_MAPPER_H
#define HADRON_MM_PAGE_MAPPER_H

#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/status.h>
#include <hadron/mm/tlb.h>
#include <hadron/mm/types.h>

/* Architecture-independent mapping attributes. Absent bits mean: read-only,
 * no-execute, supervisor-only, not global, write-back cached. */
enum {
    MM_MAP_WRITE = 1u << 0,
    MM_MAP_EXEC = 1u << 1,
    MM_MAP_USER = 1u << 2,
    MM_MAP_GLOBAL = 1u << 3,
    MM_MAP_NOCACHE = 1u << 4,      /* uncached (device registers) */
    MM_MAP_WRITETHROUGH = 1u << 5,
    MM_MAP_WRITECOMBINE = 1u << 6, /* write-combining (framebuffers) */
    MM_MAP_FLAGS_ALL = (1u << 7) - 1,
};
typedef uint32_t mm_map_flags_t;

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
    /* Map one page of `size` at va -> pa. Errors: MM_ERR_NOT_CANONICAL,
     * MM_ERR_ALIGN (va or pa not aligned to size), MM_ERR_RANGE (pa beyond
     * the physical width), MM_ERR_INVALID (unknown flag bits or
     * contradictory cache flags), MM_ERR_UNSUPPORTED (size or flag the CPU
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
     * entries of `kernel_root` (0: an empty kernel half). */
    mm_status_t (*root_create)(void *ctx, mm_paddr_t kernel_root, mm_paddr_t *root_out);
    /* Free every user-half table and the root itself, calling `leaf` (may be
     * NULL) for each user-half leaf first. Kernel-half tables are shared and
     * left alone. Cannot fail on a root made by root_create. There is no
     * batch: frames go back at once, so the root must be current on no CPU
     * and no CPU may still cache translations or paging-structure entries
     * of its user half (with PCIDs: its PCID invalidated everywhere). */
    void (*root_destroy)(void *ctx, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg);
    /* Make sure every top-level entry covering [va, va + len) points to a
     * table, so roots created later share everything mapped there. All or
     * nothing; MM_ERR_NOMEM, MM_ERR_NOT_CANONICAL, MM_ERR_INVALID (a root
     * that is not a table frame the mapper can reach). */
    mm_status_t (*prepopulate_top)(void *ctx, mm_paddr_t root, mm_vaddr_t va, uint64_t len);
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
