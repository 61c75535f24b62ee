/*
 * Test kernel checks: the bootloader's memory given back (reclaim.c). The
 * frames to expect are counted one by one from the PMM's own view before
 * the release: frames of reclaimable entries that it does not manage and
 * that nothing else reserves. After it, the free count must have grown by
 * exactly that, each such frame must be free, and the kernel image and the
 * boot information must still be reserved.
 */
#include "kernel.h"
#include "kmem.h"

#if KTEST_HAVE_PMM

#define OBSTACLES_MAX 16u

/* Calls fn(frame) for each frame of a reclaimable entry, below the span,
 * that no entry of another non-usable type touches. Returns how many. */
static uint64_t for_each_reclaimable(uint64_t span_end, bool (*fn)(mm_paddr_t), bool *overflow)
{
    uint64_t hits = 0;
    for (size_t i = 0; i < kernel_pmm_map_count; i++) {
        const pmm_region_t *r = &kernel_pmm_map[i];
        if (r->type != PMM_REGION_BOOTLOADER_RECLAIMABLE)
            continue;
        uint64_t lo = mm_align_up(r->base, MM_PAGE_SIZE);
        uint64_t hi = mm_align_down(r->base + r->length, MM_PAGE_SIZE);
        if (hi > span_end)
            hi = span_end;
        /* The entries that touch this one and win over it. */
        uint64_t olo[OBSTACLES_MAX], ohi[OBSTACLES_MAX];
        unsigned no = 0;
        for (size_t k = 0; k < kernel_pmm_map_count; k++) {
            const pmm_region_t *o = &kernel_pmm_map[k];
            if (o->type == PMM_REGION_USABLE || o->type == PMM_REGION_BOOTLOADER_RECLAIMABLE ||
                o->base >= hi || o->base + o->length <= lo)
                continue;
            if (no == OBSTACLES_MAX) {
                *overflow = true;
                break;
            }
            olo[no] = o->base;
            ohi[no++] = o->base + o->length;
        }
        for (uint64_t f = lo; f < hi; f += MM_PAGE_SIZE) {
            bool blocked = f == 0;
            for (unsigned k = 0; k < no && !blocked; k++)
                blocked = olo[k] < f + MM_PAGE_SIZE && ohi[k] > f;
            if (!blocked && fn(f))
                hits++;
        }
    }
    return hits;
}

static bool is_reserved(mm_paddr_t f)
{
    return pmm_frame_state(&kernel_pmm, f) == PMM_FRAME_RESERVED;
}

static bool is_free(mm_paddr_t f)
{
    return pmm_frame_state(&kernel_pmm, f) == PMM_FRAME_FREE;
}

static bool range_reserved(uint64_t base, uint64_t size)
{
    for (uint64_t f = mm_align_down(base, MM_PAGE_SIZE); f < base + size; f += MM_PAGE_SIZE)
        if (!is_reserved(f))
            return false;
    return true;
}

static uint64_t reclaimable_bytes(void)
{
    uint64_t b = 0;
    for (size_t i = 0; i < boot_info.map_count; i++)
        if (boot_info.map[i].type == PMM_REGION_BOOTLOADER_RECLAIMABLE)
            b += boot_info.map[i].length;
    return b;
}

void checks_reclaim(void)
{
    pmm_stats_t st;
    if (kernel_pmm_status != MM_OK || pmm_get_stats(&kernel_pmm, &st) != MM_OK) {
        tap_skip("no PMM", "reclaim: bootloader memory given back");
        return;
    }
    uint64_t span_end = st.span_frames * MM_PAGE_SIZE;
    bool overflow = false;
    uint64_t expected = for_each_reclaimable(span_end, is_reserved, &overflow);
    tap_diag("reclaim: %s lists %lu KiB bootloader reclaimable; %lu frames of it unmanaged "
             "below the span end %#lx",
             boot_info.map_source, reclaimable_bytes() / MM_KIB, expected, span_end);

    mem_reclaim_boot();
    uint64_t before = kernel_reclaim_free_before, after = kernel_reclaim_free_after;
    tap_check(kernel_reclaim_status == MM_OK && kernel_reclaim.status == MM_OK && !overflow &&
                  after - before == expected && kernel_reclaim.released_frames == expected,
              "reclaim: free frames %lu -> %lu (+%lu in %u runs), exactly the %lu reclaimable "
              "frames the PMM did not manage (%s)",
              before, after, after - before, kernel_reclaim.runs, expected,
              mm_status_str(kernel_reclaim.status));
    if (kernel_reclaim.beyond_span_frames != 0)
        tap_diag("reclaim: %lu reclaimable frames lie above the PMM's span and stay unused",
                 kernel_reclaim.beyond_span_frames);
    uint64_t now_free = for_each_reclaimable(span_end, is_free, &overflow);
    tap_check(now_free == expected, "reclaim: each of them is now a free frame (%lu of %lu)",
              now_free, expected);
    bool kept =
        range_reserved(kernel_image_phys_start(),
                       kernel_image_phys_end() - kernel_image_phys_start()) &&
        (boot_info.info_size == 0 || range_reserved(boot_info.info_phys, boot_info.info_size));
    tap_check(kept,
              "reclaim: the kernel image and the boot information [%#lx, +%lu) stay reserved",
              boot_info.info_phys, boot_info.info_size);
    const char *why = NULL;
    mm_status_t c = pmm_check(&kernel_pmm, &why);
    tap_check(c == MM_OK, "reclaim: pmm consistency check %s%s", mm_status_str(c),
              why ? why : "");
}

#else
void checks_reclaim(void)
{
}
#endif
