/*
 * Test kernel: the steps of mem_init (each kernel's mem_init.c) that do not
 * depend on the architecture: the PMM from the boot map, giving the
 * bootloader's memory back, the VMM over the kernel's tables and the
 * default heap over the VMM. The kernel tables themselves are the
 * architecture's.
 */
#include "kernel.h"
#include "kmem.h"

mm_frame_allocator_t kernel_frames;
bool kernel_frames_ready;

#if KTEST_HAVE_PMM
pmm_t kernel_pmm;
mm_status_t kernel_pmm_status = MM_ERR_STATE;
pmm_region_t kernel_pmm_map[BOOT_MAP_MAX + 2];
pmm_stats_t kernel_pmm_stats_at_init;
size_t kernel_pmm_map_count;

/* Reserved wins in pmm_init, so adding entries on top of the boot map is
 * enough to keep the image (and what the caller adds) from being handed
 * out. */
void kernel_pmm_bringup(const pmm_region_t *extra, size_t extra_count)
{
    size_t n = 0;
    for (size_t i = 0; i < boot_info.map_count; i++)
        kernel_pmm_map[n++] = boot_info.map[i];
    kernel_pmm_map[n++] = (pmm_region_t){kernel_image_phys_start(),
                                         kernel_image_phys_end() - kernel_image_phys_start(),
                                         PMM_REGION_KERNEL_AND_MODULES};
    for (size_t i = 0; i < extra_count; i++)
        kernel_pmm_map[n++] = extra[i];
    kernel_pmm_map_count = n;
    kernel_pmm_status = pmm_init(&kernel_pmm, kernel_pmm_map, n, NULL, 0);
    if (kernel_pmm_status == MM_OK) {
        pmm_get_stats(&kernel_pmm, &kernel_pmm_stats_at_init);
        kernel_frames = pmm_frame_allocator(&kernel_pmm);
        kernel_frames_ready = true;
    }
}

reclaim_result_t kernel_reclaim;
uint64_t kernel_reclaim_free_before, kernel_reclaim_free_after;
mm_status_t kernel_reclaim_status = MM_ERR_STATE;

/* Safe once the boot information has been copied into boot_info and
 * nothing reads reclaimable memory any more (each kernel's mem_init.c says
 * why that holds on its boot path). */
void mem_reclaim_boot(void)
{
    pmm_stats_t st;
    if (kernel_pmm_status != MM_OK || pmm_get_stats(&kernel_pmm, &st) != MM_OK)
        return;
    kernel_reclaim_free_before = st.free_frames;
    kernel_reclaim_status =
        boot_reclaim(&kernel_pmm, kernel_pmm_map, kernel_pmm_map_count, &kernel_reclaim);
    if (pmm_get_stats(&kernel_pmm, &st) == MM_OK)
        kernel_reclaim_free_after = st.free_frames;
}

bool kernel_frames_free_count(uint64_t *out)
{
    pmm_stats_t st;
    if (!kernel_frames_ready || pmm_get_stats(&kernel_pmm, &st) != MM_OK)
        return false;
    *out = st.free_frames;
    return true;
}
#else
bool kernel_frames_free_count(uint64_t *out)
{
    (void)out;
    return false;
}
#endif

#if KTEST_HAVE_VMM
vmm_t kernel_vmm;
bool kernel_vmm_ready;
mm_status_t kernel_vmm_status = MM_ERR_STATE;

/* For the fault handler: what the VMM knows about an address. */
static bool vmm_classifier(uint64_t va, char *buf, size_t size)
{
    vmm_fault_info_t info;
    vmm_fault_kind_t k = vmm_classify_fault(&kernel_vmm, va, &info);
    if (k == VMM_FAULT_STACK_GUARD)
        ksnprintf(buf, size, "guard page of stack [%#lx, %#lx): STACK OVERFLOW",
                  info.stack_bottom, info.stack_top);
    else if (k == VMM_FAULT_STACK)
        ksnprintf(buf, size, "stack [%#lx, %#lx)", info.stack_bottom, info.stack_top);
    else
        ksnprintf(buf, size, "vmm: %s", vmm_fault_kind_str(k));
    return true;
}

void kernel_vmm_bringup(unsigned asids)
{
    vmm_config_t cfg = {
        .layout = &kernel_layout,
        .kernel_root = kernel_root,
        .mapper = kernel_mapper,
        .frames = kernel_frames,
        .asids = asids,
    };
    kernel_vmm_status = vmm_init(&kernel_vmm, &cfg);
    kernel_vmm_ready = kernel_vmm_status == MM_OK;
    if (kernel_vmm_ready)
        fault_vmm_classifier = vmm_classifier;
}
#endif

#if KTEST_HAVE_KHEAP
bool kernel_heap_ready;
mm_status_t kernel_heap_status = MM_ERR_STATE;
size_t kernel_heap_initial;

#if KTEST_HAVE_VMM
/* The default heap starts with a small initial region from the VMM and
 * grows through it (vmm_heap_grow_callback). */
void kernel_heap_bringup_vmm(void)
{
    void *base = NULL;
    size_t size = 0;
    kernel_heap_status = vmm_heap_init(&kernel_vmm, KERNEL_HEAP_INITIAL, &base, &size);
    if (kernel_heap_status == MM_OK)
        kernel_heap_status = kheap_default_init(base, size);
    if (kernel_heap_status == MM_OK)
        kernel_heap_status =
            kheap_set_grow(kheap_default(), vmm_heap_grow_callback, NULL, &kernel_vmm);
    /* Whole free pages go back to the VMM (unmapped, frames freed). */
    if (kernel_heap_status == MM_OK)
        kernel_heap_status =
            kheap_set_release(kheap_default(), vmm_heap_release_callback, &kernel_vmm, 0);
    kernel_heap_initial = size;
    kernel_heap_ready = kernel_heap_status == MM_OK;
}
#endif
#endif
