/*
 * Test kernel, x86_64: what the common SMP checks ask of the architecture
 * (common/smp.h): the MADT's account of the start, the control registers
 * an AP must share with the BSP, the LAPIC as checks_mix's device, and the
 * kernel tables' checker.
 */
#include <hadron/mm/x86pt.h>

#include "arch_mm.h"
#include "cpu.h"
#include "kernel.h"
#include "kmem.h"
#include "smp.h"

extern const char *smp_start_error;
extern mm_status_t smp_start_status;

bool smp_report_start(void)
{
    if (smp_online < 2) {
        if (acpi_cpus.found && acpi_cpus.count < 2)
            tap_skip("one CPU", "smp: the MADT lists one CPU (RSDP from %s)",
                     acpi_cpus.rsdp_source);
        else
            tap_fail(smp_start_error ? smp_start_error : "not started",
                     "smp: CPUs started (MADT: %s)", acpi_cpus.found ? "found" : acpi_cpus.why);
        return false;
    }
    tap_check(smp_start_status == MM_OK, "smp: all %u CPUs of the MADT online (RSDP from %s, "
              "LAPIC at %#lx)", acpi_cpus.count, acpi_cpus.rsdp_source,
              (unsigned long)acpi_cpus.lapic_phys);
    return true;
}

void smp_regs_read(smp_regs_t *out)
{
    out->cr0 = read_cr0();
    out->cr4 = read_cr4();
    out->efer = rdmsr(MSR_EFER);
    out->pat = cpu_feat.pat ? rdmsr(MSR_PAT) : 0;
}

bool smp_regs_equal(const smp_regs_t *a, const smp_regs_t *b)
{
    return a->cr0 == b->cr0 && a->cr4 == b->cr4 && a->efer == b->efer && a->pat == b->pat;
}

const char *smp_cpu_label(unsigned cpu, char *buf, size_t size)
{
    ksnprintf(buf, size, "APIC ID %u", smp_percpu[cpu].arch.apic_id);
    return buf;
}

/* The LAPIC version register: its low byte (the version) is 0x1x. */
uint64_t smp_mix_mmio_phys(void)
{
    return acpi_cpus.lapic_phys + 0x30;
}

bool smp_mix_mmio_plausible(uint32_t value)
{
    return (value & 0xff) != 0;
}

mm_status_t smp_kernel_tables_check(size_t *tables)
{
    x86pt_check_info_t info = {0};
    mm_status_t st = x86pt_check(&kernel_pt, kernel_root, &info);
    *tables = info.kernel_tables + info.user_tables;
    return st;
}
