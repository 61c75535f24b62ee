/*
 * Test kernel: bringing up hadron-mm in kernel order.
 *
 *   1. frames   the PMM from the boot map (bootmem without a PMM)
 *   2. tables   paging-x86_64 builds the kernel's own hierarchy: HHDM over
 *               every RAM range with the largest pages the CPU has, the image
 *               with per-section rights; PAT programmed; CR3 switched
 *   3. VMM      heap, stack and MMIO regions of the layout over those tables
 *   4. kheap    growing through the VMM
 * Each step runs only when its component is built in; failures are reported
 * by the checks (which look at the *_ready flags and the recorded status).
 */
#include <hadron/mm/hhdm.h>

#include "cpu.h"
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

/* The converted boot map plus what must never be handed out: the kernel
 * image (which PVH and GRUB report as usable RAM) and the Multiboot2
 * information (the kernel keeps pointing into it: the RSDP copy). Reserved
 * wins in pmm_init, so adding entries is enough. */
static void pmm_bringup(void)
{
    size_t n = 0;
    for (size_t i = 0; i < boot_info.map_count; i++)
        kernel_pmm_map[n++] = boot_info.map[i];
    kernel_pmm_map[n++] = (pmm_region_t){kernel_image_phys_start(),
                                         kernel_image_phys_end() - kernel_image_phys_start(),
                                         PMM_REGION_KERNEL_AND_MODULES};
    if (boot_info.info_size != 0)
        kernel_pmm_map[n++] = (pmm_region_t){boot_info.info_phys, boot_info.info_size,
                                             PMM_REGION_KERNEL_AND_MODULES};
    kernel_pmm_map_count = n;
    kernel_pmm_status = pmm_init(&kernel_pmm, kernel_pmm_map, n, NULL, 0);
    if (kernel_pmm_status == MM_OK)
        pmm_get_stats(&kernel_pmm, &kernel_pmm_stats_at_init);
    if (kernel_pmm_status == MM_OK) {
        kernel_frames = pmm_frame_allocator(&kernel_pmm);
        kernel_frames_ready = true;
    }
}

reclaim_result_t kernel_reclaim;
uint64_t kernel_reclaim_free_before, kernel_reclaim_free_after;
mm_status_t kernel_reclaim_status = MM_ERR_STATE;

/* The boot information was copied into boot_info before the PMM came up
 * and nothing reads reclaimable memory since (the boot tables, stack and
 * GDT live in the image; the Multiboot2 structure stays reserved), so the
 * bootloader's memory can go back now. */
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

#if KTEST_HAVE_PAGING
x86pt_t kernel_pt;
mm_page_mapper_t kernel_mapper;
mm_paddr_t kernel_root;
bool kernel_tables_ready;
const char *kernel_tables_error_step = "";

static mm_status_t map_image_part(const char *step, char *start, char *end, mm_map_flags_t flags,
                                  mm_tlb_batch_t *tlb)
{
    uint64_t va = (uint64_t)(uintptr_t)start;
    uint64_t len = mm_align_up((uint64_t)(uintptr_t)end, MM_PAGE_SIZE) - va;
    if (len == 0)
        return MM_OK;
    mm_status_t st = x86pt_map_range(&kernel_pt, kernel_root, va, kernel_virt_to_phys(start), len,
                                     flags | MM_MAP_GLOBAL, tlb);
    if (st != MM_OK)
        kernel_tables_error_step = step;
    return st;
}

mm_status_t kernel_tables_build(void)
{
    x86pt_config_t cfg = {
        .levels = boot_info.la57 ? 5 : 4,
        .phys_bits = cpu_feat.phys_bits,
        .nx = cpu_feat.nx && (rdmsr(MSR_EFER) & EFER_NXE) != 0,
        .pages_1g = cpu_feat.page1g,
        .strict_nx = false,
        .frames = kernel_frames,
    };
    mm_status_t st = x86pt_init(&kernel_pt, &cfg);
    if (st != MM_OK) {
        kernel_tables_error_step = "x86pt_init";
        return st;
    }
    kernel_mapper = x86pt_page_mapper(&kernel_pt);
    if ((st = x86pt_root_create(&kernel_pt, 0, &kernel_root)) != MM_OK) {
        kernel_tables_error_step = "root_create";
        return st;
    }

    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    /* HHDM: every run of RAM-backed ranges (reclaimable ones too: they
     * become free frames later), page-aligned inward. */
    for (size_t i = 0; i < boot_info.ram_run_count; i++) {
        const boot_mem_range_t *r = &boot_info.ram_runs[i];
        uint64_t start = mm_align_up(r->addr, MM_PAGE_SIZE);
        uint64_t end = mm_align_down(r->addr + r->size, MM_PAGE_SIZE);
        if (end <= start)
            continue;
        st = x86pt_map_range(&kernel_pt, kernel_root, hhdm_base + start, start, end - start,
                             MM_MAP_WRITE | MM_MAP_GLOBAL, &tlb);
        if (st != MM_OK) {
            kernel_tables_error_step = "HHDM";
            return st;
        }
    }
    /* The image: W^X per section. */
    if ((st = map_image_part("text", __text_start, __text_end, MM_MAP_EXEC, &tlb)) != MM_OK ||
        (st = map_image_part("rodata", __rodata_start, __rodata_end, 0, &tlb)) != MM_OK ||
        (st = map_image_part("data", __data_start, __data_end, MM_MAP_WRITE, &tlb)) != MM_OK)
        return st;

    /* PAT first (a WC page must mean WC from the first access), then CR3. */
    if (cpu_feat.pat)
        wrmsr(MSR_PAT, x86pt_pat_msr());
    write_cr3(kernel_root);
    if (cpu_feat.pge)
        write_cr4(read_cr4() | CR4_PGE);
    tlb_pcid_enable();
    mm_hook_tlb_flush_all(MM_ASID_KERNEL, &tlb_cpus_all, true);
    kernel_tables_ready = true;
    return MM_OK;
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

static void vmm_bringup(void)
{
    vmm_config_t cfg = {
        .layout = &kernel_layout,
        .kernel_root = kernel_root,
        .mapper = kernel_mapper,
        .frames = kernel_frames,
        /* Identities are PCIDs when CR4.PCIDE could be set; without PCIDs
         * the hooks ignore them (tlb.c), and the VMM's identity handling
         * still runs on the real MMU. */
        .asids = 4096u,
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

/* The default heap starts with a small initial region from the VMM and grows
 * through it (vmm_heap_grow_callback). */
static void heap_bringup(void)
{
#if KTEST_HAVE_VMM
    if (kernel_vmm_ready) {
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
        return;
    }
#endif
    /* No VMM: a fixed region in the image, no growth. */
    static uint8_t heap_area[KERNEL_HEAP_INITIAL] __attribute__((aligned(16)));
    kernel_heap_status = kheap_default_init(heap_area, sizeof heap_area);
    kernel_heap_initial = sizeof heap_area;
    kernel_heap_ready = kernel_heap_status == MM_OK;
}
#endif

void mem_init(void)
{
#if KTEST_HAVE_PMM
    pmm_bringup();
#else
    bootmem_init();
#endif
#if KTEST_HAVE_PAGING
    if (kernel_frames_ready)
        kernel_tables_build();
#endif
#if KTEST_HAVE_VMM
    if (kernel_tables_ready)
        vmm_bringup();
#endif
#if KTEST_HAVE_KHEAP
    heap_bringup();
#endif
}
