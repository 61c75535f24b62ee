/*
 * Test kernel (AArch64): bringing up hadron-mm in kernel order.
 *
 *   1. frames   the PMM from the device tree's map, the image and the DTB
 *               reserved
 *   2. tables   paging-aarch64 builds the kernel's hierarchy, a root of its
 *               own (kernel_root_separate): the HHDM over every /memory
 *               range with the largest blocks, the PL011 page (Device-nGnRE)
 *               at its HHDM address, the image with per-section rights;
 *               TTBR1_EL1 switched to it, TTBR0 walks off until a user root
 *   3. VMM      heap, stack and MMIO regions of the layout over those tables
 *   4. kheap    growing through the VMM
 * Failures are reported by the checks (the *_ready flags and statuses).
 */
#include <hadron/mm/hhdm.h>
#include <hadron/mm/hooks.h>

#include "cpu.h"
#include "kernel.h"
#include "kmem.h"

uint64_t kernel_image_phys_start(void)
{
    return kernel_phys_base;
}

uint64_t kernel_image_phys_end(void)
{
    return kernel_virt_to_phys(__kernel_end);
}

a64pt_t kernel_pt;
mm_page_mapper_t kernel_mapper;
mm_paddr_t kernel_root;
bool kernel_tables_ready;
const char *kernel_tables_error_step = "";
uint64_t kernel_uart_va;

mm_status_t arch_kernel_map_range(uint64_t va, uint64_t pa, uint64_t len, mm_map_flags_t flags,
                                  mm_tlb_batch_t *tlb)
{
    return a64pt_map_range(&kernel_pt, kernel_root, va, pa, len, flags, tlb);
}

/* PARange (ID_AA64MMFR0_EL1[3:0]) as a bit count. */
static unsigned pa_range_bits(void)
{
    static const unsigned bits[] = {32, 36, 40, 42, 44, 48, 52};
    unsigned r = (unsigned)(READ_SYSREG(id_aa64mmfr0_el1) & 0xf);
    return r < sizeof bits / sizeof bits[0] ? bits[r] : 48;
}

mm_status_t kernel_tables_build(void)
{
    bool lpa2 = boot_va_bits == 52;
    unsigned pa = pa_range_bits();
    a64pt_config_t cfg = {
        .va_bits = (unsigned)boot_va_bits,
        .lpa2 = lpa2,
        .phys_bits = pa > 48 && !lpa2 ? 48 : pa,
        .kernel_root_separate = true,
        .frames = kernel_frames,
    };
    mm_status_t st = a64pt_init(&kernel_pt, &cfg);
    if (st != MM_OK) {
        kernel_tables_error_step = "a64pt_init";
        return st;
    }
    kernel_mapper = a64pt_page_mapper(&kernel_pt);
    if ((st = a64pt_kernel_root_create(&kernel_pt, &kernel_root)) != MM_OK) {
        kernel_tables_error_step = "kernel_root_create";
        return st;
    }
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    if ((st = kernel_map_hhdm(&tlb)) != MM_OK)
        return st;
    uint64_t uart = boot_info.uart_phys;
    st = a64pt_map(&kernel_pt, kernel_root, hhdm_base + uart, uart, MM_PAGE_4K,
                   MM_MAP_WRITE | MM_MAP_GLOBAL | MM_MAP_DEVICE, &tlb);
    if (st != MM_OK) {
        kernel_tables_error_step = "PL011";
        return st;
    }
    if ((st = kernel_map_image(&tlb)) != MM_OK)
        return st;
    mm_tlb_batch_flush(&tlb);

    /* The kernel root goes into TTBR1 (the image keeps running: it is
     * mapped at the same address to the same frames in both hierarchies);
     * the boot identity map in TTBR0 goes with the switch to "no user
     * half"; then every entry cached from the boot tables. */
    dsb_ishst();
    WRITE_SYSREG(ttbr1_el1, kernel_root);
    isb();
    mm_hook_switch_root(0, MM_ASID_KERNEL);
    static const mm_cpuset_t every_cpu = {.all = true};
    mm_hook_tlb_flush_all(MM_ASID_KERNEL, &every_cpu, true);
    kernel_uart_va = hhdm_base + uart;
    serial_init(kernel_uart_va);
    kernel_tables_ready = true;
    return MM_OK;
}

void mem_init(void)
{
    /* The DTB blob is in the boot map already. A device tree has no
     * bootloader-reclaimable memory: mem_reclaim_boot proves that nothing
     * is released and nothing reserved is touched. */
    kernel_pmm_bringup(NULL, 0);
    if (kernel_frames_ready)
        kernel_tables_build();
    if (kernel_tables_ready)
        kernel_vmm_bringup(1u << tlb_asid_bits);
    if (kernel_vmm_ready)
        kernel_heap_bringup_vmm();
}
