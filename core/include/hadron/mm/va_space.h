/*
 * hadron-mm core: the address-space descriptor.
 *
 * What a virtual address space looks like to one page-table mapper: which
 * addresses belong to the user half, which to the kernel half, how many
 * levels a walk takes, and whether the kernel half is translated from a root
 * of its own. The mapper provides it (mm_page_mapper_ops_t.va_space); layout
 * and the VMM decide "user", "kernel" or "no address at all" only through it,
 * so no architecture's address rule is built into them.
 *
 *                      user range             kernel range          kernel root
 *   x86_64 4-level     [0, 2^47)              [2^64 - 2^47, 2^64)   shared (CR3)
 *   x86_64 5-level     [0, 2^56)              [2^64 - 2^56, 2^64)   shared (CR3)
 *   AArch64 N-bit VA   [0, 2^N)               [2^64 - 2^N, 2^64)    own (TTBR1)
 *
 * On x86_64 one root (CR3) translates both halves, so every address space's
 * root shares the kernel's top-level entries. On AArch64 TTBR0 translates
 * the user half and TTBR1 the kernel half: an address space's root holds
 * only its user half, and the kernel root is never loaded as a user root.
 * Addresses in neither range (the x86 non-canonical hole, the AArch64 gap
 * between the TTBR0 and TTBR1 ranges) fault on every access.
 */
#ifndef HADRON_MM_VA_SPACE_H
#define HADRON_MM_VA_SPACE_H

#include <stdbool.h>
#include <stdint.h>

#include <hadron/mm/status.h>
#include <hadron/mm/types.h>

typedef struct mm_va_space {
    mm_vaddr_t user_lo;    /* first user address */
    mm_vaddr_t user_hi;    /* one past the last user address (user_lo < user_hi) */
    mm_vaddr_t kernel_lo;  /* first kernel address (above user_hi) */
    mm_vaddr_t kernel_hi;  /* last kernel address, inclusive (usually 2^64 - 1) */
    unsigned levels;       /* translation levels of one walk, 2 .. MM_VA_SPACE_MAX_LEVELS */
    bool kernel_root_separate; /* the kernel half has its own root (AArch64 TTBR1) */
} mm_va_space_t;

#define MM_VA_SPACE_MAX_LEVELS 5u

/* A space whose halves are the two sign-extended halves of a `va_bits`-bit
 * address, translated from one root: x86_64 (48 bits and 4 levels, 57 bits
 * and 5 levels). Errors: MM_ERR_INVALID (out NULL, va_bits outside 32..63,
 * levels outside 2..MM_VA_SPACE_MAX_LEVELS). No lock; O(1). */
mm_status_t mm_va_space_sign_extended(unsigned va_bits, unsigned levels, mm_va_space_t *out);

/* An AArch64 space with a 4 KiB granule: user [0, 2^va_bits) through TTBR0
 * (T0SZ = 64 - va_bits), kernel [2^64 - 2^va_bits, 2^64) through TTBR1
 * (T1SZ the same), kernel root separate. va_bits 25..48, or 52 with LPA2;
 * levels follow from the granule: 39 bits take 3, 48 take 4, 52 take 5
 * (LPA2 starts at level -1). Errors: MM_ERR_INVALID (out NULL, va_bits
 * 49..51 or outside 25..52). No lock; O(1). */
mm_status_t mm_va_space_aarch64(unsigned va_bits, mm_va_space_t *out);

/* Whether `s` describes a usable space: both ranges non-empty, page-aligned
 * bounds (user_hi and kernel_hi + 1 on a page boundary, or kernel_hi =
 * 2^64 - 1), the user range below the kernel range with no overlap, levels
 * within 2..MM_VA_SPACE_MAX_LEVELS. Errors: MM_ERR_INVALID. No lock; O(1). */
mm_status_t mm_va_space_check(const mm_va_space_t *s);

/* Whether va is a user address of `s`. O(1). */
static inline bool mm_va_space_is_user(const mm_va_space_t *s, mm_vaddr_t va)
{
    return va >= s->user_lo && va < s->user_hi;
}

/* Whether va is a kernel address of `s`. O(1). */
static inline bool mm_va_space_is_kernel(const mm_va_space_t *s, mm_vaddr_t va)
{
    return va >= s->kernel_lo && va <= s->kernel_hi;
}

/* Whether va is any address of `s` (the generalisation of "canonical"). */
static inline bool mm_va_space_contains(const mm_va_space_t *s, mm_vaddr_t va)
{
    return mm_va_space_is_user(s, va) || mm_va_space_is_kernel(s, va);
}

/* Whether two descriptors are equal field by field. O(1). */
static inline bool mm_va_space_equal(const mm_va_space_t *a, const mm_va_space_t *b)
{
    return a->user_lo == b->user_lo && a->user_hi == b->user_hi &&
           a->kernel_lo == b->kernel_lo && a->kernel_hi == b->kernel_hi &&
           a->levels == b->levels && a->kernel_root_separate == b->kernel_root_separate;
}

#endif /* HADRON_MM_VA_SPACE_H */
