/*
 * Test kernel (AArch64): what the common checks ask of the architecture's
 * page tables and faults (common/arch.h; vmm_arch.c).
 */
#ifndef KTEST_ARCH_MM_H
#define KTEST_ARCH_MM_H

#include <stdbool.h>

#include <hadron/mm/a64pt.h>

#include "arch.h"
#include "kernel.h"

extern a64pt_t kernel_pt;
/* The PL011 in the kernel tables (Device-nGnRE at its HHDM address). */
extern uint64_t kernel_uart_va;

#define ARCH_FAULT_ADDR_NAME "FAR_EL1"
#define ARCH_USER_MODE_NAME "EL0"
#define ARCH_ROOT_REG_NAME "TTBR0_EL1"
/* Arm has no write-combining type: Normal Non-cacheable stands for it. */
#define ARCH_WC_READS_AS MM_MEM_NORMAL_NC

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

/* ESR_EL1: the class says fetch or data and from which EL, the fault
 * status code permission or translation, WnR the direction. */
static inline bool arch_fault_is(const fault_record_t *rec, unsigned kind)
{
    bool user = (kind & ARCH_FAULT_USER) != 0;
    unsigned fsc = ESR_FSC(rec->esr);
    bool status = (kind & ARCH_FAULT_PROTECTION) ? FSC_IS_PERMISSION(fsc)
                                                 : FSC_IS_TRANSLATION(fsc);
    if (kind & ARCH_FAULT_FETCH)
        return status && rec->ec == (user ? EC_IABT_LOW : EC_IABT_CUR);
    return status && rec->ec == (user ? EC_DABT_LOW : EC_DABT_CUR) &&
           ESR_WNR(rec->esr) == ((kind & ARCH_FAULT_WRITE) != 0);
}

static inline uint64_t arch_fault_addr(const fault_record_t *rec)
{
    return rec->far;
}

static inline uint64_t arch_fault_pc(const fault_record_t *rec)
{
    return rec->elr;
}

/* An overflow into a guard page: a data abort (translation fault) taken
 * on SP_EL1 while the code ran on SP_EL0. */
static inline bool arch_fault_is_overflow(const fault_record_t *rec)
{
    return rec->ec == EC_DABT_CUR && FSC_IS_TRANSLATION(ESR_FSC(rec->esr));
}

/* fn(arg) at EL1 with SP_EL0 selected (PSTATE.SP = 0) and SP_EL0 = top:
 * an exception then runs on SP_EL1, so a fault on the exhausted stack can
 * still be handled (what the IST does for #DF on x86_64). */
void call_on_stack_el1t(void (*fn)(void *), void *arg, void *top);
static inline void arch_call_on_overflow_stack(void (*fn)(void *), void *arg, void *top)
{
    call_on_stack_el1t(fn, arg, top);
}

#endif /* KTEST_ARCH_MM_H */
