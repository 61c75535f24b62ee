/*
 * Boot memory maps in the PMM's terms: the e820 numbering (PVH, and the
 * Multiboot2 memory-map tag, which uses the same numbers) converted into
 * pmm_region_t, and the sort-and-merge every converter ends with.
 *
 * Freestanding C11, no state; shared by the test kernel and the host unit
 * tests (tests/unit/boot/).
 */
#ifndef KTEST_BOOTMAP_H
#define KTEST_BOOTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/pmm.h>

#include "multiboot2.h"

/* e820 / Multiboot2 type -> PMM type: 1 usable, 3 ACPI reclaimable, 4 ACPI
 * NVS, 5 bad memory, everything else (2, GRUB's 20 on UEFI machines, ...)
 * reserved. O(1). */
pmm_region_type_t e820_type_to_pmm(uint32_t type);

/* Adds r to the sorted, normalized map[0..*n) (capacity cap): merged with
 * every entry of its type that it overlaps or touches, then inserted in
 * base order. Entries of different types are left overlapping: pmm_init
 * resolves that (reserved wins), and hiding it here would hide a firmware
 * bug from the report. Empty entries are dropped. Returns false, map
 * unchanged, when r merges with nothing and *n == cap. r.base + r.length
 * must not exceed UINT64_MAX (callers check). O(*n) per merge. */
bool pmm_map_add(pmm_region_t *map, size_t *n, size_t cap, pmm_region_t r);

/* Sorts map[0..n) by base (then type), drops empty entries and merges
 * entries of one type that overlap or touch (pmm_map_add on each). Returns
 * the new count. In place, O(n^2): boot maps hold tens to a few hundred
 * entries, and there is no memory to sort into yet. */
size_t pmm_map_normalize(pmm_region_t *map, size_t n);

/* The Multiboot2 memory-map tag of `info` (mb2_parse) as at most `cap`
 * normalized PMM entries. Returns false when they do not fit (*n_out = 0)
 * or an entry ends at or past 2^64; true with *n_out entries otherwise (0 when
 * there is no tag). O(entries^2). */
bool mb2_mmap_to_pmm(const mb2_info_t *info, pmm_region_t *out, size_t cap, size_t *n_out);

#endif /* KTEST_BOOTMAP_H */
