/*
 * Test kernel (AArch64): kmain. Reads the device tree through the boot
 * identity map, brings up hadron-mm piece by piece, runs the checks of
 * every component and exits through semihosting with the TAP result.
 */
#include <hadron/mm/config.h>
#include <hadron/mm/hhdm.h>

#include "cpu.h"
#include "kernel.h"
#include "kmem.h"
#include "layout_setup.h"
#include "smp.h"

/* The virt machine's PL011 when the tree names none. */
#define VIRT_PL011 UINT64_C(0x09000000)

layout_t kernel_layout;
bool kernel_layout_ready;
uint64_t hhdm_base;
mm_status_t hhdm_init_status = MM_ERR_STATE;
mm_status_t layout_status = MM_ERR_STATE;
uint64_t early_mapped_bytes;

static void memory_bootstrap(void)
{
    bool lpa2 = boot_va_bits == 52;
    hhdm_base = lpa2 ? HHDM_BASE_52 : HHDM_BASE_48;
    early_mapped_bytes = early_hhdm_map(hhdm_base, lpa2);
    hhdm_init_status = hhdm_init(hhdm_base, mm_align_up(boot_info.phys_top, MM_GIB));

    /* The kernel mapper is not set up yet: this is the space a64pt_va_space
     * gives with a separate kernel root (vmm_init refuses the layout if the
     * two ever differ): user [0, 2^va_bits) in TTBR0, kernel the top
     * 2^va_bits in TTBR1. */
    static mm_va_space_t space;
    mm_va_space_aarch64((unsigned)boot_va_bits, &space);
    layout_status = kernel_layout_setup(&space);
}

void kmain(uint64_t dtb_phys)
{
    smp_boot_cpu_init();
    const char *why = boot_info_parse_fdt(dtb_phys);
    serial_init(boot_info.uart_phys != 0 ? boot_info.uart_phys : VIRT_PL011);
    if (boot_info.uart_phys == 0)
        boot_info.uart_phys = VIRT_PL011;
    kprintf("TAP version 13\n# hadron-mm test kernel %s (AArch64)\n", HADRON_MM_VERSION);
    if (why)
        tap_bail("device tree at %#lx: %s", dtb_phys, why);
    kprintf("# command line: \"%s\"\n", boot_info.cmdline);
    uint64_t tcr = READ_SYSREG(tcr_el1);
    tlb_asid_bits = (tcr & TCR_AS) ? 16 : 8;

    checks_boot();
    memory_bootstrap();
    mem_init();
    checks_layout();
    checks_pmm();
    checks_reclaim();
    checks_paging();
    checks_vmm();
    checks_heap();
    checks_kmem();
    smp_start();
    checks_smp();
    checks_mix();
    checks_lockup();
    if (kernel_tables_ready)
        checks_paging_audit(kernel_root, "the kernel tables after every check");
    if (boot_info.demo)
        demo_print();
    tap_finish();
}
