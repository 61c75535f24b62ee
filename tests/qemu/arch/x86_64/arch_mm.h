/*
 * Test kernel (x86_64): what the common checks ask of the architecture's
 * page tables and faults (common/arch.h; vmm_arch.c).
 */
#ifndef KTEST_ARCH_MM_H
#define KTEST_ARCH_MM_H

#include <stdbool.h>

#include <hadron/mm/x86pt.h>

#include "arch.h"
#include "kernel.h"

extern x86pt_t kernel_pt;

#define ARCH_FAULT_ADDR_NAME "cr2"
#define ARCH_USER_MODE_NAME "ring 3"
#define ARCH_ROOT_REG_NAME "CR3"
/* Write-combining is a PAT type of its own. */
#define ARCH_WC_READS_AS MM_MEM_WRITE_COMBINING

/* Whether data pages can be made non-executable (EFER.NXE). */
static inline bool arch_nx_enabled(void)
{
    return kernel_pt.nx;
}

/* Whether a recorded fault was an instruction fetch. */
static inline bool arch_fault_is_fetch(const fault_record_t *rec)
{
    return (rec->error & PF_ERR_FETCH) != 0;
}

/* ARCH_FAULT_* are the page-fault error-code bits. */
static inline bool arch_fault_is(const fault_record_t *rec, unsigned kind)
{
    return rec->vector == 14 && rec->error == kind;
}

static inline uint64_t arch_fault_addr(const fault_record_t *rec)
{
    return rec->cr2;
}

static inline uint64_t arch_fault_pc(const fault_record_t *rec)
{
    return rec->rip;
}

/* An overflow into a guard page: #DF (the #PF could not push its frame,
 * the CPU switched to IST1) or a #PF. */
static inline bool arch_fault_is_overflow(const fault_record_t *rec)
{
    return rec->vector == 8 || rec->vector == 14;
}

/* The #DF runs on its IST stack: an ordinary call will do. */
static inline void arch_call_on_overflow_stack(void (*fn)(void *), void *arg, void *top)
{
    call_on_stack(fn, arg, top);
}

#endif /* KTEST_ARCH_MM_H */
