/*
 * Test kernel: bootmem, the frame source used when the tree has no PMM yet.
 * Hands out frames downward from the end of the highest RAM range above the
 * kernel image; frees are counted and dropped. Just enough to build page
 * tables; the real checks of frame accounting need the PMM.
 */
#include "kernel.h"
#include "kmem.h"

static uint64_t bm_next, bm_floor, bm_allocated;

uint64_t kernel_image_phys_start(void)
{
    return kernel_virt_to_phys(__kernel_start);
}

uint64_t kernel_image_phys_end(void)
{
    return kernel_virt_to_phys(__kernel_end);
}

static mm_status_t bm_alloc(void *ctx, size_t count, size_t align_frames, mm_paddr_t limit,
                            mm_paddr_t *out)
{
    (void)ctx;
    if (count == 0 || !mm_is_pow2(align_frames))
        return MM_ERR_INVALID;
    uint64_t bytes = (uint64_t)count * MM_PAGE_SIZE;
    if (bytes > bm_next - bm_floor)
        return MM_ERR_NOMEM;
    uint64_t base = mm_align_down(bm_next - bytes, (uint64_t)align_frames * MM_PAGE_SIZE);
    if (base < bm_floor || (limit != MM_PADDR_MAX && base + bytes - 1 >= limit))
        return MM_ERR_NOMEM;
    bm_next = base;
    bm_allocated += count;
    *out = base;
    return MM_OK;
}

static mm_status_t bm_free(void *ctx, mm_paddr_t base, size_t count)
{
    (void)ctx;
    (void)base;
    (void)count;
    return MM_OK;
}

void bootmem_init(void)
{
    uint64_t best_end = 0, best_start = 0;
    for (size_t i = 0; i < boot_info.map_count; i++) {
        const pmm_region_t *r = &boot_info.map[i];
        if (r->type != PMM_REGION_USABLE)
            continue;
        uint64_t start = mm_align_up(r->base, MM_PAGE_SIZE);
        uint64_t end = mm_align_down(r->base + r->length, MM_PAGE_SIZE);
        if (start < kernel_image_phys_end())
            start = mm_align_up(kernel_image_phys_end(), MM_PAGE_SIZE);
        if (end > start && end > best_end) {
            best_end = end;
            best_start = start;
        }
    }
    bm_next = best_end;
    bm_floor = best_start;
    kernel_frames = (mm_frame_allocator_t){NULL, bm_alloc, bm_free};
    kernel_frames_ready = best_end > best_start;
}

uint64_t bootmem_allocated_frames(void)
{
    return bm_allocated;
}
