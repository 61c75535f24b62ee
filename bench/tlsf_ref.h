/*
 * tlsf_ref: a re-implementation of TLSF (Two-Level Segregated Fit, Masmano
 * et al., 2004) after Matthew Conte's tlsf.c, used by kheap-bench as a
 * baseline. Host-only; one fixed pool, no locking, no pool growth.
 * See tlsf_ref.c for the parameters and for where it departs from tlsf.c.
 */
#ifndef HADRON_BENCH_TLSF_REF_H
#define HADRON_BENCH_TLSF_REF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tlsf_ref tlsf_ref_t;

/* Builds an allocator in `mem` (16-byte aligned, `bytes` long): the control
 * structure at the start, the rest one free block. NULL if `bytes` is too
 * small or larger than the biggest block TLSF can index (16 GiB). */
tlsf_ref_t *tlsf_ref_create(void *mem, size_t bytes);

/* tlsf_malloc / tlsf_memalign / tlsf_free semantics: a zero size gives
 * NULL; alignments up to 16 are the base alignment; `align` must be a
 * power of two. */
void *tlsf_ref_malloc(tlsf_ref_t *t, size_t size);
void *tlsf_ref_memalign(tlsf_ref_t *t, size_t align, size_t size);
void tlsf_ref_free(tlsf_ref_t *t, void *p);

/* Bytes the caller may use at `p` (at least what was asked for). */
size_t tlsf_ref_usable_size(const void *p);

/* Footprint: bytes from `mem` to the end of the highest block ever handed
 * out (see the comment on high_water in tlsf_ref.c). */
size_t tlsf_ref_high_water(const tlsf_ref_t *t);

typedef struct tlsf_ref_stats {
    size_t blocks;       /* physical blocks, the end sentinel not counted */
    size_t free_blocks;  /* found by the physical walk (= found in the lists) */
    size_t free_bytes;   /* of the free blocks, headers included */
    size_t largest_free; /* the same, of the largest free block */
    size_t pool_bytes;   /* first block to end sentinel: all blocks together */
    size_t first_offset; /* of the first block from `mem` */
    size_t end_offset;   /* of the end of the end sentinel from `mem` */
} tlsf_ref_stats_t;

/* Walks the blocks in address order and every free list, checking the
 * boundary tags, that no two free blocks are neighbours, that each free
 * block sits in the list its size maps to and that the bitmaps match the
 * lists. NULL if consistent, else what is wrong. Fills *st either way. */
const char *tlsf_ref_check(const tlsf_ref_t *t, tlsf_ref_stats_t *st);

#endif
