/*
 * hadron-mm layout: the higher-half direct map (HHDM).
 *
 * The bootloader maps all physical memory at one virtual offset. hadron-mm
 * reaches every frame (bitmap words, page tables, poisoned pages) through
 * it. The offset and the window size are set once, before any other
 * component is used, and never change.
 */
#ifndef HADRON_MM_HHDM_H
#define HADRON_MM_HHDM_H

#include <stdbool.h>
#include <stdint.h>

#include <hadron/mm/status.h>
#include <hadron/mm/types.h>

/* Read by the inline fast paths; written only by hhdm_init(). */
extern uint64_t hhdm_offset_value;
extern uint64_t hhdm_window_size;

/* Sets the HHDM once: physical address p is at virtual offset + p for every
 * p < window_size.
 * Errors: MM_ERR_ALIGN if offset is not 4 KiB aligned; MM_ERR_INVALID if
 * window_size is 0 or not 4 KiB aligned; MM_ERR_RANGE if the window wraps
 * past the top of the address space; MM_ERR_STATE if already set (the first
 * setting stays). Safe against concurrent callers (one wins); O(1). */
mm_status_t hhdm_init(uint64_t offset, uint64_t window_size);

/* True once hhdm_init() succeeded. */
bool hhdm_is_ready(void);

static inline uint64_t hhdm_offset(void)
{
    return hhdm_offset_value;
}

/* Fast, unchecked: the caller knows pa is inside the window. */
static inline void *hhdm_phys_to_virt(mm_paddr_t pa)
{
    return (void *)(uintptr_t)(pa + hhdm_offset_value);
}

/* Fast, unchecked: the caller knows va is inside the window. */
static inline mm_paddr_t hhdm_virt_to_phys(const void *va)
{
    return (mm_paddr_t)(uintptr_t)va - hhdm_offset_value;
}

/* Checked: MM_ERR_STATE before hhdm_init(), MM_ERR_RANGE when pa is outside
 * the window; *out untouched on error. O(1). */
mm_status_t hhdm_phys_to_virt_checked(mm_paddr_t pa, void **out);

/* Checked: MM_ERR_STATE before hhdm_init(), MM_ERR_RANGE when va is not
 * inside the window; *out untouched on error. O(1). */
mm_status_t hhdm_virt_to_phys_checked(const void *va, mm_paddr_t *out);

#endif /* HADRON_MM_HHDM_H */
