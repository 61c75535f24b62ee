/*
 * Test kernel: the other CPUs, as the common SMP checks (checks_smp.c,
 * checks_mix.c) see them. Each kernel starts its CPUs its own way (x86_64:
 * ACPI MADT and INIT-SIPI-SIPI; AArch64: the device tree and PSCI CPU_ON),
 * keeps per-CPU data where mm_hook_cpu_index finds it (GS base, TPIDR_EL1)
 * and does the remote half of the TLB hooks (x86_64: an NMI per CPU;
 * AArch64: broadcast TLBI). Its smp_arch.h adds percpu_arch_t, smp_regs_t
 * and the SMP_* names below; its smp.c implements these functions.
 */
#ifndef KTEST_SMP_H
#define KTEST_SMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/cpuset.h>
#include <hadron/mm/spinlock.h>
#include <hadron/mm/status.h>
#include <hadron/mm/types.h>

#define SMP_MAX_CPUS 8u

/* percpu_arch_t (the CPU's hardware identity and what the arch's remote
 * invalidation needs), smp_regs_t, the SMP_* names, the arch's own calls. */
#include "smp_arch.h"

/* Per-CPU data; the arch's per-CPU register points at the CPU's own. */
typedef struct percpu {
    unsigned index;         /* first: the arch reads it at offset 0 */
    bool online;
    volatile uint32_t shoot_pending;      /* a shootdown waits for this CPU */
    volatile unsigned long invalidations; /* remote invalidations it got */
    void (*volatile work)(void *);
    void *volatile work_arg;
    volatile uint32_t work_seq, work_done;
    percpu_arch_t arch;
} percpu_t;

extern percpu_t smp_percpu[SMP_MAX_CPUS];
extern unsigned smp_online; /* CPUs running, the boot CPU included */
extern bool smp_percpu_ready;
/* Remote invalidations sent by the TLB hooks (one per target CPU). */
extern volatile unsigned long smp_remote_sent;
/* mm_hook_cpu_barrier calls that made every other CPU fence (an NMI each on
 * x86_64; asymmetric_barrier builds only). */
extern unsigned long smp_barriers;
/* The skipped-shootdown twin: the hooks do their local part only. */
extern volatile bool smp_skip_remote;

/* Starts every CPU the firmware lists (needs the VMM and the PMM); CPUs
 * that came up are online and idle, the boot CPU is index 0. */
void smp_start(void);
/* Runs fn(arg) on CPU `cpu` (online, not the caller's); returns once it
 * started. */
void smp_run_on(unsigned cpu, void (*fn)(void *), void *arg);
/* Gives CPU pc fn(arg) as its next work (its idle loop runs it: the arch's
 * smp_run_on then wakes it); the sequence number it will report done. */
static inline uint32_t smp_post_work(percpu_t *pc, void (*fn)(void *), void *arg)
{
    pc->work = fn;
    pc->work_arg = arg;
    uint32_t seq = pc->work_seq + 1;
    __atomic_store_n(&pc->work_seq, seq, __ATOMIC_RELEASE);
    return seq;
}
/* On CPU pc, in its idle loop: runs the work smp_run_on gave it, if any,
 * and reports it done. Whether there was some. */
static inline bool smp_run_pending(percpu_t *pc)
{
    uint32_t seq = __atomic_load_n(&pc->work_seq, __ATOMIC_ACQUIRE);
    if (seq == pc->work_done)
        return false;
    void (*fn)(void *) = pc->work;
    void *arg = pc->work_arg;
    pc->work = NULL;
    fn(arg);
    __atomic_store_n(&pc->work_done, seq, __ATOMIC_RELEASE);
    return true;
}

/* Waits until CPU `cpu` finished its work. */
static inline void smp_wait_idle(unsigned cpu)
{
    percpu_t *pc = &smp_percpu[cpu];
    while (__atomic_load_n(&pc->work_done, __ATOMIC_ACQUIRE) !=
           __atomic_load_n(&pc->work_seq, __ATOMIC_ACQUIRE))
        mm_cpu_relax();
}
/* The caller's index (0 before per-CPU data exists). */
unsigned smp_this_cpu(void);

/* For checks_smp: the TAP line saying how the CPUs were found and started
 * (a skip for a one-CPU machine, a failure when some did not start);
 * returns whether more than one CPU is online. */
bool smp_report_start(void);
/* The control registers a started CPU must share with the boot CPU
 * (SMP_REGS_NAME names them), read on the caller's CPU. */
void smp_regs_read(smp_regs_t *out);
bool smp_regs_equal(const smp_regs_t *a, const smp_regs_t *b);
/* "APIC ID 1", "MPIDR 0x1": CPU `cpu`'s hardware identity into buf. */
const char *smp_cpu_label(unsigned cpu, char *buf, size_t size);

/* For checks_mix: a device register (4 bytes at a physical address) that
 * every CPU maps and reads, and whether a read value is plausible for it;
 * the kernel root's checker's verdict, with its page-table count. */
uint64_t smp_mix_mmio_phys(void);
bool smp_mix_mmio_plausible(uint32_t value);
mm_status_t smp_kernel_tables_check(size_t *tables);

void checks_smp(void);
/* Every CPU at once: allocations of every kind, freed across CPUs. */
void checks_mix(void);

#endif /* KTEST_SMP_H */
