/*
 * Test kernel: the interrupt and CPU-index hooks hadron-mm calls
 * (core/include/hadron/mm/hooks.h); the report hooks are in
 * common/panic_hooks.c, the TLB, root-switch and identity hooks in tlb.c.
 */
#include <hadron/mm/hooks.h>

#include "smp.h"
#include "cpu.h"
#include "kernel.h"

mm_irqflags_t mm_hook_irq_save(void)
{
    mm_irqflags_t flags;
    __asm__ __volatile__("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
    return flags;
}

void mm_hook_irq_restore(mm_irqflags_t flags)
{
    __asm__ __volatile__("pushq %0; popfq" : : "r"(flags) : "memory", "cc");
}

/* The CPU's index from its per-CPU data (GS base, smp.c); the BSP's is 0. */
unsigned mm_hook_cpu_index(void)
{
    return smp_this_cpu();
}
