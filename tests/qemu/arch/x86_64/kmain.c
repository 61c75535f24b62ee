/*
 * Test kernel: kmain. Boots, brings up hadron-mm piece by piece on a real
 * (emulated) x86_64 CPU, runs the checks of every component built in, and
 * exits through isa-debug-exit with the TAP result.
 */
#include <hadron/mm/config.h>
#include <hadron/mm/hhdm.h>

#include "smp.h"
#include "cpu.h"
#include "kernel.h"
#include "kmem.h"
#include "layout_setup.h"

layout_t kernel_layout;
bool kernel_layout_ready;
uint64_t hhdm_base;
mm_status_t hhdm_init_status;
mm_status_t layout_status;
uint64_t early_mapped_bytes;

/* The HHDM over all RAM (boot tables, extended), then the layout. */
static void memory_bootstrap(void)
{
    hhdm_base = boot_info.la57 ? HHDM_BASE_5LEVEL : HHDM_BASE_4LEVEL;
    early_drop_identity();
    early_mapped_bytes = early_hhdm_extend(boot_info.phys_top);
    hhdm_init_status = hhdm_init(hhdm_base, mm_align_up(boot_info.phys_top, MM_GIB));

    /* The kernel mapper is not set up yet: this is the descriptor
     * x86pt_va_space gives for these levels, and vmm_init refuses the
     * layout if the two ever differ. */
    static mm_va_space_t space;
    mm_va_space_sign_extended(boot_info.la57 ? 57 : 48, boot_info.la57 ? 5 : 4, &space);
    layout_status = kernel_layout_setup(&space);
}

void kmain(uint32_t info_phys, uint32_t protocol)
{
    serial_init();
    kprintf("TAP version 13\n# hadron-mm test kernel %s\n", HADRON_MM_VERSION);
    idt_init();
    smp_bsp_init();
    const char *why = boot_info_parse(info_phys, protocol);
    if (why)
        tap_bail("boot information at %#x: %s", info_phys, why);
    cpu_features_init();
    kprintf("# command line: \"%s\"\n", boot_info.cmdline);

    checks_boot();
    acpi_scan_cpus(); /* through the boot identity map */
    if (!cmdline_has("nowatchdog"))
        watchdog_start();
    memory_bootstrap();
    mem_init();
    smp_reserve_low();
    checks_layout();
    checks_pmm();
    checks_reclaim();
    smp_reserve_low();
    checks_paging();
    checks_vmm();
    checks_heap();
    checks_kmem();
    smp_start();
    if (cmdline_has("hang"))
        hang_for_the_watchdog();
    checks_smp();
    checks_mix();
    checks_lockup();
#if KTEST_HAVE_PAGING
    if (kernel_tables_ready)
        checks_paging_audit(kernel_root, "the kernel tables after every check");
#endif
    if (boot_info.demo)
        demo_print();
    tap_finish();
}
