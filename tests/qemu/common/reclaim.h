/*
 * Giving the bootloader's memory back: once the kernel has copied what it
 * needs out of the boot information, the ranges its map calls bootloader
 * reclaimable (EFI boot-services and loader memory) become free frames.
 *
 * Kernel-side code written to be copied: it needs only the map that was
 * given to pmm_init and the PMM's public calls.
 */
#ifndef KTEST_RECLAIM_H
#define KTEST_RECLAIM_H

#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/pmm.h>

typedef struct reclaim_result {
    uint64_t released_frames; /* handed to the PMM */
    uint64_t beyond_span_frames; /* above the PMM's bitmap: cannot be released */
    unsigned runs;            /* pmm_release calls that succeeded */
    mm_status_t status;       /* first pmm_release error, MM_OK if none */
} reclaim_result_t;

/* Releases to `pmm` every whole frame that a PMM_REGION_BOOTLOADER_RECLAIMABLE
 * entry of map[0..n) covers, except frames that another entry of a type
 * other than usable or bootloader reclaimable touches (reserved wins, as in
 * pmm_init: so the kernel image and the boot information, entered as
 * PMM_REGION_KERNEL_AND_MODULES, stay out), frame 0, the PMM's metadata,
 * and frames above the PMM's span (counted in beyond_span_frames: the
 * bitmap cannot grow). `map` must be the one pmm_init was given, and the
 * caller must no longer read anything that lives in reclaimable memory.
 * A release error is recorded and the walk goes on. Returns the first
 * error of pmm_get_stats (nothing released), else MM_OK with *out filled.
 * O(n^2 + released frames / 64). Takes the PMM lock once per run. */
mm_status_t boot_reclaim(pmm_t *pmm, const pmm_region_t *map, size_t n, reclaim_result_t *out);

#endif /* KTEST_RECLAIM_H */
