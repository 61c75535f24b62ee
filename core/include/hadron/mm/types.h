/*
 * hadron-mm core: address types, page sizes and alignment arithmetic.
 *
 * Physical and virtual addresses are plain 64-bit integers with distinct
 * typedefs so prototypes document which space an argument lives in. Every
 * helper here is branch-light and usable in freestanding code.
 */
#ifndef HADRON_MM_TYPES_H
#define HADRON_MM_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t mm_paddr_t; /* physical address */
typedef uint64_t mm_vaddr_t; /* virtual address */

#define MM_PADDR_MAX UINT64_MAX

/* An address-space identity: the tag a CPU keeps on non-global TLB entries
 * so that switching roots need not drop them (x86_64: the PCID, 12 bits;
 * AArch64: the ASID, 8 or 16 bits). The VMM hands them out (vmm.h); they
 * reach the kernel's TLB and root-switch hooks (hooks.h). */
typedef uint32_t mm_asid_t;

/* The kernel's identity, and that of every address space the VMM could give
 * no identity of its own ("untagged": a switch to it drops the non-global
 * entries, as a plain CR3 write without PCIDs does). */
#define MM_ASID_KERNEL 0u

/* Page sizes are identified by their shift so a size can never be a
 * non-power-of-two by construction. */
typedef enum mm_page_size {
    MM_PAGE_4K = 12,
    MM_PAGE_2M = 21,
    MM_PAGE_1G = 30,
} mm_page_size_t;

#define MM_PAGE_SHIFT 12u
#define MM_PAGE_SIZE ((uint64_t)1 << MM_PAGE_SHIFT)
#define MM_FRAME_SIZE MM_PAGE_SIZE
#define MM_SIZE_2M ((uint64_t)1 << 21)
#define MM_SIZE_1G ((uint64_t)1 << 30)
#define MM_KIB ((uint64_t)1 << 10)
#define MM_MIB ((uint64_t)1 << 20)
#define MM_GIB ((uint64_t)1 << 30)
#define MM_TIB ((uint64_t)1 << 40)

static inline uint64_t mm_page_bytes(mm_page_size_t size)
{
    return (uint64_t)1 << (unsigned)size;
}

static inline bool mm_is_pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* align must be a power of two. */
static inline bool mm_is_aligned(uint64_t x, uint64_t align)
{
    return (x & (align - 1)) == 0;
}

static inline uint64_t mm_align_down(uint64_t x, uint64_t align)
{
    return x & ~(align - 1);
}

/* Rounds x up to align. Returns false (and leaves *out alone) when the
 * result would wrap past 2^64, so callers can reject instead of wrapping. */
static inline bool mm_align_up_checked(uint64_t x, uint64_t align, uint64_t *out)
{
    uint64_t bumped;
    if (__builtin_add_overflow(x, align - 1, &bumped))
        return false;
    *out = bumped & ~(align - 1);
    return true;
}

/* Unchecked form for values known not to wrap. */
static inline uint64_t mm_align_up(uint64_t x, uint64_t align)
{
    return (x + align - 1) & ~(align - 1);
}

/* [base, base + size) as a half-open range; size 0 is empty. Returns false
 * when base + size wraps past 2^64 (a range may end exactly at 2^64, which is
 * represented by end == 0 only through mm_range_last). */
static inline bool mm_range_last(uint64_t base, uint64_t size, uint64_t *last)
{
    if (size == 0)
        return false;
    uint64_t l;
    if (__builtin_add_overflow(base, size - 1, &l))
        return false;
    *last = l;
    return true;
}

/* True when two non-empty inclusive ranges [a0,a1] and [b0,b1] overlap. */
static inline bool mm_ranges_overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
    return a0 <= b1 && b0 <= a1;
}

#endif /* HADRON_MM_TYPES_H */
