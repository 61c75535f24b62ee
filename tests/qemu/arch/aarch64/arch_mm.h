/*
 * Test kernel (AArch64): what the common checks ask of the architecture's
 * page tables and faults.
 */
#ifndef KTEST_ARCH_MM_H
#define KTEST_ARCH_MM_H

#include <stdbool.h>

#include <hadron/mm/a64pt.h>

#include "kernel.h"

extern a64pt_t kernel_pt;
/* The PL011 in the kernel tables (Device-nGnRE at its HHDM address). */
extern uint64_t kernel_uart_va;

/* Execute-never exists in every AArch64 translation regime. */
static inline bool arch_nx_enabled(void)
{
    return true;
}

/* Whether a recorded fault was an instruction fetch (instruction abort). */
static inline bool arch_fault_is_fetch(const fault_record_t *rec)
{
    return rec->ec == EC_IABT_CUR || rec->ec == EC_IABT_LOW;
}

#endif /* KTEST_ARCH_MM_H */
