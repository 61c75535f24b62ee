/*
 * A table-free page mapper for VMM tests: leaves in a sorted array, plus a
 * model of page-table memory (one frame per leaf table, per prepopulated top
 * entry and per root, taken from the frame allocator it is given) so
 * out-of-memory inside the mapper and table leaks are visible through the
 * frame allocator exactly as with the real mapper. Kernel-half sharing is
 * modelled too: a root made by root_create sees the kernel root's mappings
 * only under top-level entries that existed (were prepopulated) when it was
 * created, which is the x86_64 behaviour the VMM must cope with.
 */
#ifndef VMM_FAKE_MAPPER_H
#define VMM_FAKE_MAPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/page_mapper.h>

typedef struct fake_entry {
    mm_paddr_t root;
    mm_vaddr_t va;
    mm_paddr_t pa;
    mm_page_size_t size;
    mm_map_flags_t flags;
} fake_entry_t;

typedef struct fake_table {
    mm_paddr_t root;
    uint64_t key;   /* which table: va >> (shift + 9), or the top slot */
    unsigned shift; /* page shift of the leaves it holds; 0: a top-level slot */
    mm_paddr_t frame;
    uint32_t count; /* leaves in it (unused for top slots) */
} fake_table_t;

#define FAKE_MAX_TABLES 4096
#define FAKE_MAX_ROOTS 64

typedef struct fake_root {
    mm_paddr_t root;
    mm_paddr_t kernel_root;
    uint64_t shared[8]; /* bitmap of top slots shared from kernel_root */
    bool live;
} fake_root_t;

typedef struct fake_pm {
    mm_frame_allocator_t frames;
    /* The address space modelled: x86_64 4-level from fake_pm_create; a
     * test may set another before vmm_init (kernel_root_separate: roots
     * share nothing). */
    mm_va_space_t space;
    fake_entry_t *e;
    size_t n, cap;
    fake_table_t tables[FAKE_MAX_TABLES];
    size_t ntables;
    fake_root_t roots[FAKE_MAX_ROOTS];
    size_t nroots;
    /* instrumentation */
    unsigned long map_calls, unmap_calls, protect_calls, translate_calls, prepopulate_calls;
    unsigned long root_creates, root_destroys;
    uint64_t last_prepop_va, last_prepop_len;
    /* fault injection: the fail_map_at-th map call (1-based) returns
     * fail_map_status without changing anything */
    unsigned long fail_map_at;
    mm_status_t fail_map_status;
} fake_pm_t;

/* malloc'd; frames is the allocator for table frames. */
fake_pm_t *fake_pm_create(mm_frame_allocator_t frames, size_t max_entries);
void fake_pm_destroy(fake_pm_t *pm);
mm_page_mapper_t fake_pm_mapper(fake_pm_t *pm);

/* Leaves currently mapped in `root` (kernel-half leaves of the kernel root
 * are not counted in user roots). */
size_t fake_pm_leaf_count(const fake_pm_t *pm, mm_paddr_t root);
/* Table frames (leaf tables + top slots + the root itself) held for root. */
size_t fake_pm_table_count(const fake_pm_t *pm, mm_paddr_t root);
/* Order-sensitive hash of every leaf and table of `root`. */
uint64_t fake_pm_digest(const fake_pm_t *pm, mm_paddr_t root);
/* Whether any leaf of `root` with MM_MAP_USER lies in the kernel half, or
 * the user root has a kernel-half leaf of its own (should never happen). */
bool fake_pm_kernel_half_clean(const fake_pm_t *pm, mm_paddr_t root);

#endif
