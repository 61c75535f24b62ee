/*
 * Test kernel, x86_64: the other CPUs (ACPI MADT, INIT-SIPI-SIPI), per-CPU
 * data behind GS, and the remote half of the TLB hooks (NMI shootdown).
 */
#ifndef KTEST_SMP_H
#define KTEST_SMP_H

#include <stdbool.h>
#include <stdint.h>

#include <hadron/mm/cpuset.h>
#include <hadron/mm/types.h>

#define SMP_MAX_CPUS 8u

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

/* Per-CPU data; GS base points at the CPU's own. */
typedef struct percpu {
    unsigned index;         /* first: mm_hook_cpu_index reads %gs:0 */
    uint32_t apic_id;
    bool online;
    volatile uint32_t shoot_pending; /* a shootdown waits for this CPU */
    volatile unsigned long invalidations; /* remote invalidations it ran */
    void (*volatile work)(void *);
    void *volatile work_arg;
    volatile uint32_t work_seq, work_done;
    uint32_t nmi_credit;   /* NMIs sent to it not yet seen by its handler */
} percpu_t;

extern percpu_t smp_percpu[SMP_MAX_CPUS];
extern unsigned smp_online; /* CPUs running, the BSP included */
extern bool smp_percpu_ready;
/* Remote invalidations sent by the TLB hooks (per target CPU). */
extern volatile unsigned long smp_remote_sent;
/* The skipped-shootdown twin: the hooks do their local part only. */
extern volatile bool smp_skip_remote;

/* GS base for the BSP (index 0); before any other CPU starts. */
void smp_bsp_init(void);
/* Takes the trampoline frame below 1 MiB (and a frame below 4 GiB) while
 * low memory is still free: after mem_init, again after reclaim. */
void smp_reserve_low(void);
/* Starts every CPU of the MADT (needs the VMM and the PMM). */
void smp_start(void);
/* Runs fn(arg) on CPU `cpu` (not the caller's); returns once it started. */
void smp_run_on(unsigned cpu, void (*fn)(void *), void *arg);
/* Waits until CPU `cpu` finished its work. */
void smp_wait_idle(unsigned cpu);
unsigned smp_this_cpu(void);
/* From the NMI handler: runs a pending shootdown; true when the NMI was an
 * IPI (a shootdown or a wake-up), false for the watchdog's. */
bool smp_nmi(void);
/* The remote half of the TLB hooks: the CPUs of `cpus` but the caller. */
void smp_shootdown(mm_asid_t asid, const mm_cpuset_t *cpus, const mm_vaddr_t *pages,
                   size_t count, bool all, bool global);
void checks_smp(void);
/* Every CPU at once: allocations of every kind, freed across CPUs. */
void checks_mix(void);

#endif /* KTEST_SMP_H */
