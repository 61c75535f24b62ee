/*
 * Test kernel (x86_64): what the common checks ask of the architecture's
 * page tables and faults.
 */
#ifndef KTEST_ARCH_MM_H
#define KTEST_ARCH_MM_H

#include <stdbool.h>

#include <hadron/mm/x86pt.h>

#include "kernel.h"

extern x86pt_t kernel_pt;

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

#endif /* KTEST_ARCH_MM_H */
