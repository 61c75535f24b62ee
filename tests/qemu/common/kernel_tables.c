/*
 * Test kernel: the parts of the kernel's own tables both kernels map alike,
 * through their mapper's map_range (arch_kernel_map_range, in each kernel's
 * mem_init.c, which builds the rest: the root, device pages, the switch).
 */
#include "kernel.h"
#include "kmem.h"

bool boot_ram_run_pages(size_t i, uint64_t *start, uint64_t *end)
{
    const boot_mem_range_t *r = &boot_info.ram_runs[i];
    *start = mm_align_up(r->addr, MM_PAGE_SIZE);
    *end = mm_align_down(r->addr + r->size, MM_PAGE_SIZE);
    return *end > *start;
}

#if KTEST_HAVE_PAGING
/* Every run of RAM-backed ranges (reclaimable ones too: they become free
 * frames later), page-aligned inward, at its HHDM address. */
mm_status_t kernel_map_hhdm(mm_tlb_batch_t *tlb)
{
    for (size_t i = 0; i < boot_info.ram_run_count; i++) {
        uint64_t start, end;
        if (!boot_ram_run_pages(i, &start, &end))
            continue;
        mm_status_t st = arch_kernel_map_range(hhdm_base + start, start, end - start,
                                               MM_MAP_WRITE | MM_MAP_GLOBAL, tlb);
        if (st != MM_OK) {
            kernel_tables_error_step = "HHDM";
            return st;
        }
    }
    return MM_OK;
}

static mm_status_t map_image_part(const char *step, char *start, char *end, mm_map_flags_t flags,
                                  mm_tlb_batch_t *tlb)
{
    uint64_t va = (uint64_t)(uintptr_t)start;
    uint64_t len = mm_align_up((uint64_t)(uintptr_t)end, MM_PAGE_SIZE) - va;
    if (len == 0)
        return MM_OK;
    mm_status_t st =
        arch_kernel_map_range(va, kernel_virt_to_phys(start), len, flags | MM_MAP_GLOBAL, tlb);
    if (st != MM_OK)
        kernel_tables_error_step = step;
    return st;
}

/* The image at its link address, W^X per section. */
mm_status_t kernel_map_image(mm_tlb_batch_t *tlb)
{
    mm_status_t st;
    if ((st = map_image_part("text", __text_start, __text_end, MM_MAP_EXEC, tlb)) != MM_OK ||
        (st = map_image_part("rodata", __rodata_start, __rodata_end, 0, tlb)) != MM_OK ||
        (st = map_image_part("data", __data_start, __data_end, MM_MAP_WRITE, tlb)) != MM_OK)
        return st;
    return MM_OK;
}
#endif
