/*
 * Test kernel (AArch64): PSCI calls (Arm DEN0022, "Power State
 * Coordination Interface") through the conduit the device tree names.
 */
#ifndef KTEST_PSCI_H
#define KTEST_PSCI_H

#include <stdint.h>

#include "fdt.h"

#define PSCI_VERSION 0x84000000u
#define PSCI_CPU_ON_64 0xc4000003u
#define PSCI_SUCCESS 0
#define PSCI_ALREADY_ON (-4)

/* Calls PSCI function `fn` with up to three arguments through `conduit`
 * (HVC or SMC, SMC Calling Convention); returns x0. FDT_PSCI_NONE returns
 * NOT_SUPPORTED (-1) without a call. */
int64_t psci_call(fdt_psci_t conduit, uint32_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
/* "SUCCESS", "INVALID_PARAMETERS", ... for a PSCI return value. */
const char *psci_status_str(int64_t status);
/* "hvc", "smc" or "none". */
const char *psci_conduit_str(fdt_psci_t conduit);

#endif /* KTEST_PSCI_H */
