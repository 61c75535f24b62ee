/*
 * Test kernel: what an exception handler (each kernel's fault.c) needs from
 * the shared fault machinery (fault_expect.c), and what it gives back.
 * Checks use the names in kernel.h instead.
 */
#ifndef KTEST_FAULT_CORE_H
#define KTEST_FAULT_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel.h"

/* A check is running under fault_expect() and waits for its fault. */
bool fault_pending(void);

/* Disarms fault_expect() and hands over its record for the handler to
 * fill, so a fault while filling it is an unexpected one. */
fault_record_t *fault_claim(void);

/* Resumes the check after its fault_expect() call, which returns true. */
_Noreturn void fault_resume(void);

/* What lies at an address outside every layout region, in the
 * architecture's words ("user half (TTBR0)"). Each kernel's fault.c. */
const char *arch_fault_unmapped_name(uint64_t va);

#endif
