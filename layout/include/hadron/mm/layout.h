/*
 * hadron-mm layout: the kernel's virtual address layout.
 *
 * Five regions in the kernel range of an address-space descriptor
 * (va_space.h, provided by the page mapper: x86pt_va_space, or
 * mm_va_space_aarch64): the HHDM (sized from the physical address space),
 * the heap, the kernel-stack area, the MMIO area and the kernel image.
 * layout_compute() either returns a layout in which every region lies in
 * the kernel range, is aligned and overlaps no other, or an error: there is
 * no such thing as a bad layout. Nothing here knows an architecture's
 * address rule; the descriptor says which addresses are kernel addresses.
 *
 *   kernel_lo (usual)  HHDM      [hhdm_base, +align_up(phys_top, 1 GiB))
 *                      guard     1 GiB, unmapped
 *   regions_base       heap      heap_size
 *                      guard
 *                      stacks    stacks_size
 *                      guard
 *                      MMIO      mmio_size
 *   top - 2 GiB        kernel image (default)
 */
#ifndef HADRON_MM_LAYOUT_H
#define HADRON_MM_LAYOUT_H

#include <stdint.h>

#include <hadron/mm/status.h>
#include <hadron/mm/types.h>
#include <hadron/mm/va_space.h>

typedef enum layout_region_id {
    LAYOUT_HHDM,
    LAYOUT_HEAP,
    LAYOUT_STACKS,
    LAYOUT_MMIO,
    LAYOUT_KERNEL_IMAGE,
    LAYOUT_REGION_COUNT,
    LAYOUT_NONE = LAYOUT_REGION_COUNT, /* layout_find(): in no region */
} layout_region_id_t;

typedef struct layout_region {
    mm_vaddr_t base;
    uint64_t size; /* bytes; the region is [base, base + size) */
} layout_region_t;

typedef struct layout {
    layout_region_t regions[LAYOUT_REGION_COUNT];
    mm_va_space_t space; /* the descriptor the layout was computed for */
} layout_t;

/* Defaults used when a size field of layout_params_t is 0. */
#define LAYOUT_DEFAULT_HEAP_SIZE (4 * MM_TIB)
#define LAYOUT_DEFAULT_STACKS_SIZE (512 * MM_GIB)
#define LAYOUT_DEFAULT_MMIO_SIZE (1 * MM_TIB)
#define LAYOUT_DEFAULT_KERNEL_BASE UINT64_C(0xffffffff80000000)
#define LAYOUT_DEFAULT_KERNEL_SIZE (2 * MM_GIB)
#define LAYOUT_REGION_ALIGN MM_GIB
#define LAYOUT_GUARD_GAP MM_GIB

typedef struct layout_params {
    mm_vaddr_t hhdm_base;  /* from the bootloader; 1 GiB aligned */
    mm_paddr_t phys_top;   /* end of the highest physical range to map (> 0) */
    mm_vaddr_t regions_base; /* 0: just above the HHDM; else a (randomised)
                                1 GiB-aligned base for heap, stacks, MMIO */
    uint64_t heap_size;    /* 0: default; else a multiple of 1 GiB */
    uint64_t stacks_size;  /* likewise */
    uint64_t mmio_size;    /* likewise */
    mm_vaddr_t kernel_base; /* 0: LAYOUT_DEFAULT_KERNEL_BASE; 2 MiB aligned */
    uint64_t kernel_size;  /* 0: LAYOUT_DEFAULT_KERNEL_SIZE; 2 MiB multiple */
    /* The address space (required; copied into the layout): from the page
     * mapper (x86pt_va_space) or a constructor (mm_va_space_aarch64). The
     * defaults above fit a 48-bit kernel range or larger; a 39-bit one
     * (512 GiB) needs smaller sizes. */
    const mm_va_space_t *space;
} layout_params_t;

/* Computes and validates a layout. *out is written only on success.
 * Errors:
 *   MM_ERR_INVALID        params, out or space NULL; a space that
 *                         mm_va_space_check rejects; phys_top 0; a size not
 *                         a multiple of 1 GiB (2 MiB for the kernel image)
 *   MM_ERR_ALIGN          hhdm_base / regions_base not 1 GiB aligned,
 *                         kernel_base not 2 MiB aligned
 *   MM_ERR_NOT_CANONICAL  a base outside the space's kernel range
 *   MM_ERR_RANGE          a region would run past the kernel range's end
 *                         (or wrap past 2^64), or the HHDM for phys_top
 *                         runs into the kernel image at its default base
 *                         (phys_top too large for this hhdm_base)
 *   MM_ERR_OVERLAP        two regions overlap, including a kernel_base or
 *                         regions_base the caller chose inside the HHDM
 * No locking (pure function); O(1). */
mm_status_t layout_compute(const layout_params_t *params, layout_t *out);

/* Which region va lies in, or LAYOUT_NONE (guard gaps, lower half, ...).
 * For page-fault handlers: O(regions), no locking. */
layout_region_id_t layout_find(const layout_t *layout, mm_vaddr_t va);

/* Static name of a region ("hhdm", "heap", ...; "none" for LAYOUT_NONE). */
const char *layout_region_name(layout_region_id_t id);

static inline mm_vaddr_t layout_region_end(const layout_region_t *region)
{
    return region->base + region->size; /* 0 for a region ending at 2^64 */
}

#endif /* HADRON_MM_LAYOUT_H */
