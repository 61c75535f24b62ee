/*
 * Fixtures for the paging-aarch64 tests: a mapper over simulated physical
 * memory with a frame pool, an independent raw walker (bit positions
 * written out from the Arm ARM's descriptor formats, not taken from the
 * library), and table snapshots that prove failed operations change nothing.
 */
#ifndef A64_TEST_H
#define A64_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/a64pt.h>

#include "frame_pool.h"
#include "mm_test.h"

#define SIM_BYTES (64ull << 20)
#define POOL_BASE (1ull << 20)
#define POOL_FRAMES ((size_t)((SIM_BYTES - POOL_BASE) / MM_FRAME_SIZE))

/* Arm ARM VMSAv8-64 descriptors (4 KiB granule, stage 1), spelled
 * out independently of the library. */
#define B_VALID (1ull << 0)
#define B_TYPE (1ull << 1)        /* table / page */
#define B_ATTR(i) ((uint64_t)(i) << 2)
#define B_ATTR_MASK (7ull << 2)
#define B_NS (1ull << 5)
#define B_AP1 (1ull << 6)         /* EL0 access */
#define B_AP2 (1ull << 7)         /* read-only */
#define B_SH_IS (3ull << 8)
#define B_AF (1ull << 10)
#define B_NG (1ull << 11)
#define B_CONT (1ull << 52)
#define B_PXN (1ull << 53)
#define B_UXN (1ull << 54)
#define B_PXNTABLE (1ull << 59)
#define B_UXNTABLE (1ull << 60)
#define B_APTABLE0 (1ull << 61)
#define B_APTABLE1 (1ull << 62)

#define KB4 0x1000ull
#define MB2 0x200000ull
#define GB1 0x40000000ull

typedef struct env {
    a64pt_t m;
    frame_pool_t pool;
    mm_paddr_t root;
    mm_page_mapper_t pm;
    mm_tlb_batch_t tlb;
} env_t;

extern env_t E;

/* Simulated memory, pool, mapper and an empty root. */
void env_setup(unsigned va_bits, bool lpa2, unsigned phys_bits);

/* Physical address in a descriptor, decoded independently. */
uint64_t raw_addr(uint64_t e);
/* Independent walk: the raw leaf for va and its Arm level (1..3), or 0.
 * entries[k] (may be NULL) gets the descriptor read at the k-th lookup
 * (k = 0 at the root). */
uint64_t raw_leaf(mm_paddr_t root, mm_vaddr_t va, int *level, uint64_t entries[5]);
/* The slot for va at Arm level `level`, or NULL when the walk stops above. */
uint64_t *raw_slot(mm_paddr_t root, mm_vaddr_t va, int level);

typedef struct snapshot snapshot_t;
snapshot_t *snap_take(mm_paddr_t root);
void snap_assert_same(snapshot_t *s, mm_paddr_t root, const char *what);
void snap_discard(snapshot_t *s);

/* a64pt_check passes and every frame the pool has out is the root, a
 * table, or one of `extra`. E.tlb must have been flushed. */
void assert_consistent(mm_paddr_t root, size_t extra);


#endif /* A64_TEST_H */
