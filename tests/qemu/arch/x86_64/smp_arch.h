/*
 * Test kernel, x86_64: the arch part of common/smp.h. The CPUs come from
 * the ACPI MADT, start through INIT-SIPI-SIPI (trampoline.S), keep their
 * per-CPU data behind GS, and take remote invalidations as NMIs.
 */
#ifndef KTEST_SMP_ARCH_H
#define KTEST_SMP_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/cpuset.h>
#include <hadron/mm/types.h>

typedef struct percpu_arch {
    uint32_t apic_id;
    uint32_t nmi_credit; /* NMIs sent to it not yet seen by its handler */
    /* mm_hook_cpu_barrier: requests made of it, and the last one its NMI
     * handler answered with a fence. */
    uint32_t barrier_seq, barrier_done;
} percpu_arch_t;

typedef struct smp_regs {
    uint64_t cr0, cr4, efer, pat;
} smp_regs_t;

#define SMP_REGS_NAME "CR0/CR4/EFER/PAT"
#define SMP_BOOT_CPU_NAME "the BSP"
/* What a shootdown does to a remote CPU. */
#define SMP_REMOTE_VERB "interrupted"
#define SMP_PT_CHECK_NAME "x86pt_check"

/* A spin-wait's pause. */
static inline void cpu_relax(void)
{
    __builtin_ia32_pause();
}

/* What the MADT said, read while the boot identity map exists. */
typedef struct acpi_cpus {
    bool found;             /* a valid MADT was read */
    const char *why;        /* else: why not */
    uint64_t lapic_phys;
    unsigned count;         /* enabled (or online-capable) local APICs */
    uint32_t apic_id[SMP_MAX_CPUS];
    unsigned ignored;       /* beyond SMP_MAX_CPUS */
    uint64_t rsdp;          /* where the RSDP was found */
    const char *rsdp_source;
} acpi_cpus_t;
extern acpi_cpus_t acpi_cpus;
/* Reads the RSDP (boot_info.rsdp, else the BIOS areas), RSDT/XSDT and the
 * MADT through the boot identity map; checksums and lengths first. */
void acpi_scan_cpus(void);

/* GS base for the BSP (index 0); before any other CPU starts. */
void smp_bsp_init(void);
/* Takes the trampoline frame below 1 MiB (and a frame below 4 GiB) while
 * low memory is still free: after mem_init, again after reclaim. */
void smp_reserve_low(void);
/* From the NMI handler: runs a pending shootdown; true when the NMI was an
 * IPI (a shootdown or a wake-up), false for the watchdog's. */
bool smp_nmi(void);
/* The remote half of the TLB hooks: the CPUs of `cpus` but the caller. */
void smp_shootdown(mm_asid_t asid, const mm_cpuset_t *cpus, const mm_vaddr_t *pages,
                   size_t count, bool all, bool global);

#endif /* KTEST_SMP_ARCH_H */
