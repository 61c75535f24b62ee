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

/* True when a and b overlap or touch (no byte between them). */
static bool touch(const pmm_region_t *a, const pmm_region_t *b)
{
    return a->base <= b->base + b->length && b->base <= a->base + a->length;
}

bool pmm_map_add(pmm_region_t *map, size_t *n, size_t cap, pmm_region_t r)
{
    if (r.length == 0)
        return true;
    /* Absorb every entry of r's type that r touches; r grows each time, so
     * look again from the start until nothing more joins. */
    bool merged = false;
    for (size_t i = 0; i < *n;) {
        if (map[i].type != r.type || !touch(&map[i], &r)) {
            i++;
            continue;
        }
        uint64_t end = r.base + r.length, other = map[i].base + map[i].length;
        r.base = r.base < map[i].base ? r.base : map[i].base;
        r.length = (end > other ? end : other) - r.base;
        for (size_t k = i; k + 1 < *n; k++)
            map[k] = map[k + 1];
        (*n)--;
        merged = true;
        i = 0;
    }
    if (!merged && *n >= cap)
        return false;
    /* Insert in order; maps come sorted more often than not, so search
     * from the end. */
    size_t k = *n;
    while (k > 0 && before(&r, &map[k - 1])) {
        map[k] = map[k - 1];
        k--;
    }
    map[k] = r;
    (*n)++;
    return true;
}

size_t pmm_map_normalize(pmm_region_t *map, size_t n)
{
    /* Re-adding each entry into the prefix already normalized never needs
     * more room than the entries taken out: out <= i. */
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
