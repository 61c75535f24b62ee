/*
 * Test kernel (AArch64): what the common SMP checks ask of the
 * architecture (common/smp.h): the device tree's account of the start,
 * the control registers a CPU must share with the boot CPU, the PL011 as
 * checks_mix's device, and the kernel tables' checker.
 */
#include <hadron/mm/a64pt.h>

#include "arch_mm.h"
#include "cpu.h"
#include "kernel.h"
#include "kmem.h"
#include "psci.h"
#include "smp.h"

extern const char *smp_start_error;
extern mm_status_t smp_start_status;
extern unsigned smp_psci_version;

bool smp_report_start(void)
{
    if (smp_online < 2) {
        if (boot_info.cpu_count < 2)
            tap_skip("one CPU", "smp: the device tree lists one CPU");
        else
            tap_fail(smp_start_error ? smp_start_error : "not started",
                     "smp: CPUs started (device tree: %u CPUs, PSCI through %s)",
                     boot_info.cpu_count, psci_conduit_str(boot_info.psci));
        return false;
    }
    tap_check(smp_start_status == MM_OK, "smp: all %u CPUs of the device tree online (PSCI "
              "%u.%u through %s)", boot_info.cpu_count, smp_psci_version >> 16,
              smp_psci_version & 0xffff, psci_conduit_str(boot_info.psci));
    return true;
}

void smp_regs_read(smp_regs_t *out)
{
    out->sctlr = READ_SYSREG(sctlr_el1);
    out->tcr = READ_SYSREG(tcr_el1);
    out->mair = READ_SYSREG(mair_el1);
    out->ttbr1 = READ_SYSREG(ttbr1_el1);
    out->vbar = READ_SYSREG(vbar_el1);
}

bool smp_regs_equal(const smp_regs_t *a, const smp_regs_t *b)
{
    return a->sctlr == b->sctlr && a->tcr == b->tcr && a->mair == b->mair &&
           a->ttbr1 == b->ttbr1 && a->vbar == b->vbar;
}

const char *smp_cpu_label(unsigned cpu, char *buf, size_t size)
{
    ksnprintf(buf, size, "MPIDR %#lx", (unsigned long)smp_percpu[cpu].arch.mpidr);
    return buf;
}

/* The PL011's UARTPeriphID0 (offset 0xfe0) reads 0x11. */
uint64_t smp_mix_mmio_phys(void)
{
    return boot_info.uart_phys + 0xfe0;
}

bool smp_mix_mmio_plausible(uint32_t value)
{
    return (value & 0xff) == 0x11;
}

mm_status_t smp_kernel_tables_check(size_t *tables)
{
    a64pt_check_info_t info = {0};
    mm_status_t st = a64pt_check(&kernel_pt, kernel_root, &info);
    *tables = info.kernel_tables + info.user_tables;
    return st;
}
