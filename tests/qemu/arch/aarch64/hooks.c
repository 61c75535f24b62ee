/*
 * Test kernel (AArch64): the interrupt and CPU-index hooks hadron-mm calls
 * (core/include/hadron/mm/hooks.h); the report hooks are in
 * common/panic_hooks.c, the TLB ones in tlb.c.
 */
#include <hadron/mm/hooks.h>

#include "cpu.h"
#include "kernel.h"

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

/* The test kernel runs on one CPU. */
unsigned mm_hook_cpu_index(void)
{
    return 0;
}
