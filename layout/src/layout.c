#include <hadron/mm/assert.h>
#include <hadron/mm/layout.h>

static const char *const region_names[LAYOUT_REGION_COUNT + 1] = {
    [LAYOUT_HHDM] = "hhdm",    [LAYOUT_HEAP] = "heap",
    [LAYOUT_STACKS] = "stacks", [LAYOUT_MMIO] = "mmio",
    [LAYOUT_KERNEL_IMAGE] = "kernel", [LAYOUT_NONE] = "none",
};

const char *layout_region_name(layout_region_id_t id)
{
    if ((unsigned)id > LAYOUT_NONE)
        return "none";
    return region_names[id];
}

static uint64_t or_default(uint64_t value, uint64_t fallback)
{
    return value != 0 ? value : fallback;
}

static bool in_kernel_range(const layout_t *l, mm_vaddr_t va)
{
    return mm_va_space_is_kernel(&l->space, va);
}

/* Places `size` bytes at `base`, refusing a wrap past 2^64 and a region
 * that leaves the kernel range (its base is in it). A region may end
 * exactly at the range's end (the kernel image usually does). */
static mm_status_t place(layout_t *l, layout_region_id_t id, mm_vaddr_t base, uint64_t size)
{
    uint64_t last;
    if (!mm_range_last(base, size, &last))
        return MM_ERR_RANGE;
    if (last > l->space.kernel_hi)
        return MM_ERR_RANGE;
    l->regions[id].base = base;
    l->regions[id].size = size;
    return MM_OK;
}

/* The address one guard gap after region `id`. Bases and sizes of the
 * regions placed this way are 1 GiB multiples (check_params, and the HHDM
 * size is rounded up), so it is already 1 GiB aligned. */
static mm_status_t next_base(const layout_t *l, layout_region_id_t id, mm_vaddr_t *out)
{
    uint64_t last = l->regions[id].base + (l->regions[id].size - 1);
    uint64_t next;
    if (__builtin_add_overflow(last, (uint64_t)1 + LAYOUT_GUARD_GAP, &next))
        return MM_ERR_RANGE;
    MM_ASSERT(mm_is_aligned(next, LAYOUT_REGION_ALIGN));
    *out = next;
    return MM_OK;
}

static mm_status_t check_params(const layout_params_t *p)
{
    if (p->space == NULL || mm_va_space_check(p->space) != MM_OK)
        return MM_ERR_INVALID;
    if (p->phys_top == 0)
        return MM_ERR_INVALID;
    if (!mm_is_aligned(p->heap_size, MM_GIB) || !mm_is_aligned(p->stacks_size, MM_GIB) ||
        !mm_is_aligned(p->mmio_size, MM_GIB) || !mm_is_aligned(p->kernel_size, MM_SIZE_2M))
        return MM_ERR_INVALID;
    if (!mm_is_aligned(p->hhdm_base, LAYOUT_REGION_ALIGN) ||
        !mm_is_aligned(p->regions_base, LAYOUT_REGION_ALIGN) ||
        !mm_is_aligned(p->kernel_base, MM_SIZE_2M))
        return MM_ERR_ALIGN;
    return MM_OK;
}

/* Any two regions that overlap are MM_ERR_OVERLAP (a base the caller chose
 * lands inside another region), with one exception: the HHDM running into
 * the kernel image at its default place means the physical address space
 * is too large for this HHDM base, which is MM_ERR_RANGE. */
static mm_status_t check_no_overlap(const layout_t *l, bool default_kernel_base)
{
    for (unsigned a = 0; a < LAYOUT_REGION_COUNT; a++) {
        const layout_region_t *ra = &l->regions[a];
        uint64_t a_last = ra->base + (ra->size - 1);
        for (unsigned b = a + 1; b < LAYOUT_REGION_COUNT; b++) {
            const layout_region_t *rb = &l->regions[b];
            uint64_t b_last = rb->base + (rb->size - 1);
            if (!mm_ranges_overlap(ra->base, a_last, rb->base, b_last))
                continue;
            if (a == LAYOUT_HHDM && b == LAYOUT_KERNEL_IMAGE && default_kernel_base)
                return MM_ERR_RANGE;
            return MM_ERR_OVERLAP;
        }
    }
    return MM_OK;
}

mm_status_t layout_compute(const layout_params_t *params, layout_t *out)
{
    if (params == NULL || out == NULL)
        return MM_ERR_INVALID;
    mm_status_t st = check_params(params);
    if (st != MM_OK)
        return st;

    layout_t l = {0};
    l.space = *params->space;

    mm_vaddr_t kernel_base = or_default(params->kernel_base, LAYOUT_DEFAULT_KERNEL_BASE);
    if (!in_kernel_range(&l, params->hhdm_base) || !in_kernel_range(&l, kernel_base) ||
        (params->regions_base != 0 && !in_kernel_range(&l, params->regions_base)))
        return MM_ERR_NOT_CANONICAL;

    uint64_t hhdm_size;
    if (!mm_align_up_checked(params->phys_top, MM_GIB, &hhdm_size))
        return MM_ERR_RANGE;
    if ((st = place(&l, LAYOUT_HHDM, params->hhdm_base, hhdm_size)) != MM_OK)
        return st;
    st = place(&l, LAYOUT_KERNEL_IMAGE, kernel_base,
               or_default(params->kernel_size, LAYOUT_DEFAULT_KERNEL_SIZE));
    if (st != MM_OK)
        return st;

    mm_vaddr_t base = params->regions_base;
    if (base == 0 && (st = next_base(&l, LAYOUT_HHDM, &base)) != MM_OK)
        return st;
    if ((st = place(&l, LAYOUT_HEAP, base,
                    or_default(params->heap_size, LAYOUT_DEFAULT_HEAP_SIZE))) != MM_OK)
        return st;
    if ((st = next_base(&l, LAYOUT_HEAP, &base)) != MM_OK)
        return st;
    if ((st = place(&l, LAYOUT_STACKS, base,
                    or_default(params->stacks_size, LAYOUT_DEFAULT_STACKS_SIZE))) != MM_OK)
        return st;
    if ((st = next_base(&l, LAYOUT_STACKS, &base)) != MM_OK)
        return st;
    if ((st = place(&l, LAYOUT_MMIO, base,
                    or_default(params->mmio_size, LAYOUT_DEFAULT_MMIO_SIZE))) != MM_OK)
        return st;

    if ((st = check_no_overlap(&l, params->kernel_base == 0)) != MM_OK)
        return st;
    *out = l;
    return MM_OK;
}

layout_region_id_t layout_find(const layout_t *layout, mm_vaddr_t va)
{
    for (unsigned id = 0; id < LAYOUT_REGION_COUNT; id++) {
        const layout_region_t *r = &layout->regions[id];
        if (va >= r->base && va - r->base < r->size)
            return (layout_region_id_t)id;
    }
    return LAYOUT_NONE;
}
