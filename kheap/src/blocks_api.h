/*
 * What the layers above the blocks (kmalloc.c) use of the block layer
 * besides its public kheap_block_* calls. Internal, hidden from shared
 * objects.
 */
#ifndef KHEAP_BLOCKS_API_H
#define KHEAP_BLOCKS_API_H

#include <stdbool.h>

#include <hadron/mm/kheap.h>

#define KH_HEAP_MAGIC 0x6b686561u /* "khea" */

static inline bool kh_ready(const kheap_t *heap)
{
    /* A copy of a live heap would share its blocks but not its locks or
     * counts: it is refused like an uninitialised one. */
    return heap != NULL && heap->magic == KH_HEAP_MAGIC && heap->instance == heap;
}

#pragma GCC visibility push(hidden)

/* Set up the block layer of a zeroed heap over [base, base + size) (both
 * 0: empty), the range already validated by kh_blocks_validate. */
void kh_blocks_init(kheap_t *heap, uintptr_t base, size_t size);
/* kheap_init's range check: MM_ERR_INVALID / MM_ERR_RANGE as documented
 * there, else MM_OK. */
mm_status_t kh_blocks_validate(void *base, size_t size);
/* The block layer's statistics into *out (its fields only). Takes the block
 * lock. */
void kh_blocks_stats(kheap_t *heap, kheap_stats_t *out);
/* The block layer's consistency check (kheap_check's second half). Takes
 * the block lock. */
mm_status_t kh_blocks_check(kheap_t *heap, mm_report_t *report);

/* kheap_block_alloc / kheap_block_free for the heap's own layers: the
 * block is marked KH_INNER, which the public frees refuse. */
void *kh_blocks_alloc_inner(kheap_t *heap, size_t size, size_t align);
mm_status_t kh_blocks_free_inner(kheap_t *heap, void *ptr);
/* kheap_walk over the blocks, `slab` left false; arguments checked. */
/* kheap_trim's block part (heap ready): whole free pages given back. */
mm_status_t kh_blocks_trim(kheap_t *heap, size_t *released);
mm_status_t kh_blocks_walk(kheap_t *heap, kheap_walk_fn fn, void *arg);

#pragma GCC visibility pop

#endif /* KHEAP_BLOCKS_API_H */
