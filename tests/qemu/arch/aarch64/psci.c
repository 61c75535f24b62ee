/*
 * Test kernel (AArch64): PSCI calls. Under QEMU's virt machine PSCI is
 * emulated by QEMU itself: through HVC when the guest starts at EL1, and
 * through SMC with virtualization=on (EL2 is then the guest's, so the
 * calls go to the emulated EL3). The kernel uses whichever /psci method
 * names.
 */
#include "psci.h"

int64_t psci_call(fdt_psci_t conduit, uint32_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
    register uint64_t x0 __asm__("x0") = fn;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    /* SMCCC 1.0 lets the callee change x0-x17. */
    if (conduit == FDT_PSCI_HVC)
        __asm__ __volatile__("hvc #0"
                             : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                             :
                             : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
                               "x14", "x15", "x16", "x17", "memory");
    else if (conduit == FDT_PSCI_SMC)
        __asm__ __volatile__("smc #0"
                             : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                             :
                             : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
                               "x14", "x15", "x16", "x17", "memory");
    else
        return -1;
    return (int64_t)x0;
}

const char *psci_status_str(int64_t status)
{
    static const char *const names[] = {"SUCCESS", "NOT_SUPPORTED", "INVALID_PARAMETERS",
                                        "DENIED", "ALREADY_ON", "ON_PENDING", "INTERNAL_FAILURE",
                                        "NOT_PRESENT", "DISABLED", "INVALID_ADDRESS"};
    if (status <= 0 && status >= -9)
        return names[-status];
    return "unknown PSCI status";
}

const char *psci_conduit_str(fdt_psci_t conduit)
{
    return conduit == FDT_PSCI_HVC ? "hvc" : conduit == FDT_PSCI_SMC ? "smc" : "none";
}
