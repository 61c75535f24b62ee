/*
 * hadron-mm core: CPU sets, for targeted TLB shootdown.
 *
 * A set of CPU indices (mm_hook_cpu_index) below HADRON_MM_MAX_CPUS, one bit
 * each, plus an "all CPUs" mark. The mark stands for every CPU, including
 * those without an index: a kernel-half change, or a space that ran on a CPU
 * whose index is out of range. mm_cpuset_contains answers true for every
 * index on a marked set, so a hook that asks it CPU by CPU needs no special
 * case.
 *
 * Every operation is atomic per 64-bit word: any CPU may add itself while
 * another reads the set. Ordering, for the use the VMM makes of it (a CPU
 * adds itself to a space's set before it makes the space current; a flush
 * reads the set after it changed the page tables):
 *
 *   switching CPU S               flushing CPU F
 *   mm_cpuset_add(set, S)         page-table store (entry cleared/changed)
 *   (sequentially consistent)     mm_cpuset_snapshot(set) (a seq_cst fence,
 *   loads the new root, walks       then the words)
 *
 * Both sides put a sequentially consistent operation between their store
 * and their load, so they cannot both miss the other's store (the
 * store-buffering pattern): either F's snapshot holds S, and S gets the
 * invalidation, or S's walk, which comes after its add, reads the new entry
 * and never caches the old one. The kernel's switch hook must keep its
 * root write after the add: a CR3 write serialises (x86_64); AArch64 needs
 * a DSB ISH before the TTBR0 write, which a TLB-maintenance sequence has.
 *
 * The set never loses a CPU on its own: only mm_cpuset_clear empties it,
 * and its owner calls that only where no CPU can hold a translation the set
 * stands for (vmm.h: a space's set). Every function is O(HADRON_MM_MAX_CPUS
 * / 64) at most, takes no lock, runs in any context and on any CPU.
 */
#ifndef HADRON_MM_CPUSET_H
#define HADRON_MM_CPUSET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hadron/mm/config.h>

#define MM_CPUSET_WORDS ((HADRON_MM_MAX_CPUS + 63) / 64)

typedef struct mm_cpuset {
    _Atomic uint64_t bits[MM_CPUSET_WORDS]; /* bit c % 64 of word c / 64: CPU c */
    atomic_bool all;                        /* every CPU, indexed or not */
} mm_cpuset_t;

/* Empties `set` (also for fresh storage: a static or zeroed set is empty). */
void mm_cpuset_clear(mm_cpuset_t *set);

/* Makes `set` stand for every CPU. */
void mm_cpuset_fill(mm_cpuset_t *set);

/* Adds CPU `cpu`, sequentially consistent (see the ordering above). An index
 * >= HADRON_MM_MAX_CPUS cannot be recorded, so it marks the set "all CPUs". */
void mm_cpuset_add(mm_cpuset_t *set, unsigned cpu);

/* True when `cpu` is in the set, or the set is marked "all". */
bool mm_cpuset_contains(const mm_cpuset_t *set, unsigned cpu);

/* True when the set is marked "all CPUs". */
bool mm_cpuset_is_all(const mm_cpuset_t *set);

/* True when no CPU is in the set (and it is not marked "all"). */
bool mm_cpuset_is_empty(const mm_cpuset_t *set);

/* Number of indexed CPUs in the set; HADRON_MM_MAX_CPUS for a set marked
 * "all" (which may stand for more). */
unsigned mm_cpuset_count(const mm_cpuset_t *set);

/* The smallest CPU index >= `from` in the set, or HADRON_MM_MAX_CPUS when
 * there is none (a set marked "all" answers `from` while it is below the
 * maximum). Iterate: for (c = next(s, 0); c < MAX; c = next(s, c + 1)). */
unsigned mm_cpuset_next(const mm_cpuset_t *set, unsigned from);

/* Copies `src` into `dst` after a sequentially consistent fence: the copy
 * holds every CPU added before the caller's preceding page-table stores
 * were visible (see the ordering above). `dst` is a private copy the caller
 * may hand on. */
void mm_cpuset_snapshot(mm_cpuset_t *dst, const mm_cpuset_t *src);

#endif /* HADRON_MM_CPUSET_H */
