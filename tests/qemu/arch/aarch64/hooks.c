/*
 * Test kernel (AArch64): the interrupt and CPU-index hooks hadron-mm calls
 * (core/include/hadron/mm/hooks.h); the report hooks are in
 * common/panic_hooks.c, the TLB ones in tlb.c.
 */
#include <hadron/mm/hooks.h>

#include "cpu.h"
#include "kernel.h"
#include "smp.h"

/* PSTATE.DAIF: IRQs masked (DAIFSet bit 1) for the critical section. */
mm_irqflags_t mm_hook_irq_save(void)
{
    mm_irqflags_t flags;
    __asm__ __volatile__("mrs %0, daif\n\tmsr daifset, #2" : "=r"(flags) : : "memory");
    return flags;
}

void mm_hook_irq_restore(mm_irqflags_t flags)
{
    __asm__ __volatile__("msr daif, %0" : : "r"(flags) : "memory");
}

/* The CPU's index from its per-CPU data (TPIDR_EL1, smp.c); the boot
 * CPU's is 0. */
unsigned mm_hook_cpu_index(void)
{
    return smp_this_cpu();
}
