/*
 * Test kernel (AArch64): the arch part of common/smp.h. The CPUs come from
 * the device tree (/cpus), start through PSCI CPU_ON (secondary.S), keep
 * their per-CPU data in TPIDR_EL1, and are reached by broadcast TLBI (the
 * inner-shareable forms): no interrupt, the requester counts them.
 */
#ifndef KTEST_SMP_ARCH_H
#define KTEST_SMP_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include <hadron/mm/cpuset.h>

typedef struct percpu_arch {
    uint64_t mpidr;     /* MPIDR_EL1 affinity fields (the /cpus reg) */
    volatile bool alive; /* set by the CPU itself once on its own stack */
    unsigned entry_el;   /* the EL CPU_ON started it at (2: virtualization=on) */
} percpu_arch_t;

typedef struct smp_regs {
    uint64_t sctlr, tcr, mair, ttbr1, vbar;
} smp_regs_t;

#define SMP_REGS_NAME "SCTLR/TCR/MAIR/TTBR1/VBAR"
#define SMP_BOOT_CPU_NAME "the boot CPU"
/* A broadcast TLBI reaches a remote CPU without interrupting it. */
#define SMP_REMOTE_VERB "reached"
#define SMP_PT_CHECK_NAME "a64pt_check"

/* A spin-wait's hint. */
static inline void cpu_relax(void)
{
    __asm__ __volatile__("yield" ::: "memory");
}

/* TPIDR_EL1 for the boot CPU (index 0); before any other CPU starts and
 * before the first hadron-mm lock. */
void smp_boot_cpu_init(void);
/* For the TLB hooks: true when a flush over `cpus` must reach another
 * online CPU than the caller (then use the inner-shareable forms); counts
 * one remote invalidation per such CPU. False while smp_skip_remote. */
bool smp_flush_is_remote(const mm_cpuset_t *cpus);

#endif /* KTEST_SMP_ARCH_H */
