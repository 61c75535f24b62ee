/*
 * Boot memory maps in the PMM's terms (see bootmap.h).
 */
#include "bootmap.h"

pmm_region_type_t e820_type_to_pmm(uint32_t type)
{
    switch (type) {
    case MB2_MMAP_AVAILABLE:
        return PMM_REGION_USABLE;
    case MB2_MMAP_ACPI_RECLAIMABLE:
        return PMM_REGION_ACPI_RECLAIMABLE;
    case MB2_MMAP_NVS:
        return PMM_REGION_ACPI_NVS;
    case MB2_MMAP_BADRAM:
        return PMM_REGION_BAD_MEMORY;
    default:
        return PMM_REGION_RESERVED;
    }
}

static bool before(const pmm_region_t *a, const pmm_region_t *b)
{
    return a->base < b->base || (a->base == b->base && a->type < b->type);
}

/* Merges map[i + 1] into map[i] when both have one type and touch. */
static bool merge_next(pmm_region_t *map, size_t *n, size_t i)
{
    if (i + 1 >= *n || map[i].type != map[i + 1].type ||
        map[i + 1].base > map[i].base + map[i].length)
        return false;
    uint64_t end = map[i + 1].base + map[i + 1].length;
    if (end > map[i].base + map[i].length)
        map[i].length = end - map[i].base;
    for (size_t k = i + 1; k + 1 < *n; k++)
        map[k] = map[k + 1];
    (*n)--;
    return true;
}

bool pmm_map_add(pmm_region_t *map, size_t *n, size_t cap, pmm_region_t r)
{
    if (r.length == 0)
        return true;
    /* Maps come sorted more often than not: search from the end. */
    size_t k = *n;
    while (k > 0 && before(&r, &map[k - 1]))
        k--;
    /* Room is needed only when r merges with neither neighbour. */
    bool joins_prev = k > 0 && map[k - 1].type == r.type &&
                      r.base <= map[k - 1].base + map[k - 1].length;
    bool joins_next = k < *n && map[k].type == r.type && map[k].base <= r.base + r.length;
    if (!joins_prev && !joins_next && *n >= cap)
        return false;
    uint64_t end = r.base + r.length;
    if (joins_prev) {
        k--;
        if (end > map[k].base + map[k].length)
            map[k].length = end - map[k].base;
    } else if (joins_next) {
        /* r.base <= map[k].base (sort order): r takes the entry's place. */
        uint64_t next_end = map[k].base + map[k].length;
        map[k] = (pmm_region_t){r.base, (end > next_end ? end : next_end) - r.base, r.type};
    } else {
        for (size_t i = *n; i > k; i--)
            map[i] = map[i - 1];
        map[k] = r;
        (*n)++;
    }
    while (merge_next(map, n, k))
        ;
    return true;
}

size_t pmm_map_normalize(pmm_region_t *map, size_t n)
{
    /* Re-adding each entry into the prefix already normalized never needs
     * more room than the entries taken out. */
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        pmm_region_t r = map[i];
        pmm_map_add(map, &out, i + 1, r);
    }
    return out;
}

bool mb2_mmap_to_pmm(const mb2_info_t *info, pmm_region_t *out, size_t cap, size_t *n_out)
{
    size_t n = 0;
    *n_out = 0;
    for (size_t i = 0; i < info->mmap_count; i++) {
        mb2_mmap_entry_t e = mb2_mmap_entry(info, i);
        if (e.length > UINT64_MAX - e.base)
            return false;
        if (!pmm_map_add(out, &n, cap, (pmm_region_t){e.base, e.length, e820_type_to_pmm(e.type)}))
            return false;
    }
    *n_out = n;
    return true;
}
