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

#if KTEST_HAVE_PMM
/* What must never be handed out besides the image (which PVH and GRUB
 * report as usable RAM): the Multiboot2 information, which the kernel keeps
 * pointing into (the RSDP copy). The boot information is copied into
 * boot_info before the PMM comes up and nothing reads reclaimable memory
 * since (the boot tables, stack and GDT live in the image; the Multiboot2
 * structure stays reserved), so mem_reclaim_boot may give the bootloader's
 * memory back. */
static void pmm_bringup(void)
{
    pmm_region_t info = {boot_info.info_phys, boot_info.info_size, PMM_REGION_KERNEL_AND_MODULES};
    kernel_pmm_bringup(&info, boot_info.info_size != 0 ? 1 : 0);
}
#endif

#if KTEST_HAVE_PAGING
x86pt_t kernel_pt;
mm_page_mapper_t kernel_mapper;
mm_paddr_t kernel_root;
bool kernel_tables_ready;
const char *kernel_tables_error_step = "";

mm_status_t arch_kernel_map_range(uint64_t va, uint64_t pa, uint64_t len, mm_map_flags_t flags,
                                  mm_tlb_batch_t *tlb)
{
    return x86pt_map_range(&kernel_pt, kernel_root, va, pa, len, flags, tlb);
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
    if ((st = kernel_map_hhdm(&tlb)) != MM_OK)
        return st;
    if ((st = kernel_map_image(&tlb)) != MM_OK)
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

#if KTEST_HAVE_KHEAP
static void heap_bringup(void)
{
#if KTEST_HAVE_VMM
    if (kernel_vmm_ready) {
        kernel_heap_bringup_vmm();
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
    /* Identities are PCIDs when CR4.PCIDE could be set; without PCIDs the
     * hooks ignore them (tlb.c), and the VMM's identity handling still runs
     * on the real MMU. */
    if (kernel_tables_ready)
        kernel_vmm_bringup(4096u);
#endif
#if KTEST_HAVE_KHEAP
    heap_bringup();
#endif
}
