/*
 * Fixtures for the paging-x86_64 tests: a mapper over simulated physical
 * memory with a frame pool, an independent raw walker (bit positions written
 * out from the SDM, not taken from the library), and table snapshots to
 * prove that failed operations change nothing.
 */
#ifndef PAGING_TEST_H
#define PAGING_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/x86pt.h>

#include "frame_pool.h"
#include "mm_test.h"

#define SIM_BYTES (64ull << 20)
#define POOL_BASE (1ull << 20)
#define POOL_FRAMES ((size_t)((SIM_BYTES - POOL_BASE) / MM_FRAME_SIZE))
#define PHYS_BITS 46u

/* SDM vol. 3 section 4.5 bit positions, spelled out independently. */
#define B_P (1ull << 0)
#define B_RW (1ull << 1)
#define B_US (1ull << 2)
#define B_PWT (1ull << 3)
#define B_PCD (1ull << 4)
#define B_A (1ull << 5)
#define B_D (1ull << 6)
#define B_PS (1ull << 7)
#define B_PAT4K (1ull << 7)
#define B_G (1ull << 8)
#define B_PATHUGE (1ull << 12)
#define B_XD (1ull << 63)

#define KB4 0x1000ull
#define MB2 0x200000ull
#define GB1 0x40000000ull

typedef struct env {
    x86pt_t m;
    frame_pool_t pool;
    mm_paddr_t root;
    mm_page_mapper_t pm;
    mm_tlb_batch_t tlb;
} env_t;

extern env_t E;

/* Simulated memory, pool, mapper (levels, nx, 1 GiB pages; phys 46 bits)
 * and an empty root. */
void env_setup(unsigned levels, bool nx, bool pages_1g);
void env_setup_cfg(const x86pt_config_t *cfg); /* cfg->frames is filled in */

/* Independent walk: the raw leaf entry for va and its level (1..3), or 0
 * when nothing maps it. `entries[L]` (may be NULL) gets the entry used at
 * each level. */
uint64_t raw_leaf(mm_paddr_t root, unsigned levels, mm_vaddr_t va, unsigned *level,
                  uint64_t entries[6]);
uint64_t *raw_slot(mm_paddr_t root, unsigned levels, mm_vaddr_t va, unsigned level);

/* Copy of every table reachable from a root plus the pool's counters. */
typedef struct snapshot snapshot_t;
snapshot_t *snap_take(mm_paddr_t root, unsigned levels);
/* Asserts that the tables and pool counters are as in the snapshot, then
 * frees it. */
void snap_assert_same(snapshot_t *s, mm_paddr_t root, unsigned levels, const char *what);
void snap_discard(snapshot_t *s);

/* x86pt_check passes and every frame the pool has out is accounted for:
 * the root(s) + tables. `extra` = frames held outside this root. E.tlb must
 * have been flushed (tables it still holds are out of the pool). */
void assert_consistent(mm_paddr_t root, size_t extra);

/* Deterministic PRNG. */

#endif /* PAGING_TEST_H */
