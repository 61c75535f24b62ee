/*
 * hadron-mm pmm: the core frame-allocator interface, and names.
 */
#include "pmm_internal.h"

static mm_status_t fa_alloc(void *ctx, size_t count, size_t align_frames, mm_paddr_t limit,
                            mm_paddr_t *out)
{
    return pmm_alloc_contig(ctx, count, align_frames, limit, out);
}

static mm_status_t fa_free(void *ctx, mm_paddr_t base, size_t count)
{
    return count == 1 ? pmm_free(ctx, base) : pmm_free_contig(ctx, base, count);
}

mm_frame_allocator_t pmm_frame_allocator(pmm_t *pmm)
{
    mm_frame_allocator_t fa = {.ctx = pmm, .alloc = fa_alloc, .free = fa_free};
    return fa;
}

static const char *const type_names[PMM_REGION_TYPE_COUNT] = {
    [PMM_REGION_USABLE] = "usable",
    [PMM_REGION_RESERVED] = "reserved",
    [PMM_REGION_ACPI_RECLAIMABLE] = "acpi-reclaimable",
    [PMM_REGION_ACPI_NVS] = "acpi-nvs",
    [PMM_REGION_BAD_MEMORY] = "bad-memory",
    [PMM_REGION_BOOTLOADER_RECLAIMABLE] = "bootloader-reclaimable",
    [PMM_REGION_KERNEL_AND_MODULES] = "kernel-and-modules",
    [PMM_REGION_FRAMEBUFFER] = "framebuffer",
};

const char *pmm_region_type_str(pmm_region_type_t type)
{
    if ((unsigned)type >= PMM_REGION_TYPE_COUNT)
        return "unknown";
    return type_names[type];
}
