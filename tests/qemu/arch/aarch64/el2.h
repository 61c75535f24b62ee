/*
 * Test kernel (AArch64), assembly: the EL2 -> EL1 drop shared by the boot
 * CPU (boot.S) and the secondaries (secondary.S). QEMU enters at EL2 with
 * virtualization=on; the kernel runs at EL1 either way.
 */
#ifndef KTEST_EL2_H
#define KTEST_EL2_H

/* SCTLR_EL1: the ARMv8.0 RES1 bits (11, 20, 22, 23 = SPAN, 28, 29). */
#define SCTLR_RES1 0x30d00800
/* SPSR for an exception return to EL1h with D, A, I, F masked. */
#define SPSR_EL1H_MASKED 0x3c5
#define HCR_RW (1 << 31)

/* EL1 in AArch64 (HCR_EL2.RW), the counters reachable from EL1
 * (CNTHCTL_EL2.EL1PCTEN/EL1PCEN), no traps of EL1 register accesses
 * (HSTR_EL2 0, CPTR_EL2 without TFP), the EL1 ID registers this CPU's own,
 * then an exception return to EL1h at `target` with everything masked.
 * Stage 2 stays off (HCR_EL2.VM 0). Clobbers x9. */
.macro EL2_TO_EL1 target
    mov x9, #HCR_RW
    msr hcr_el2, x9
    mrs x9, cnthctl_el2
    orr x9, x9, #3
    msr cnthctl_el2, x9
    msr cntvoff_el2, xzr
    msr hstr_el2, xzr
    mov x9, #0x33ff
    msr cptr_el2, x9
    mrs x9, midr_el1
    msr vpidr_el2, x9
    mrs x9, mpidr_el1
    msr vmpidr_el2, x9
    ldr x9, =SCTLR_RES1
    msr sctlr_el1, x9
    mov x9, #SPSR_EL1H_MASKED
    msr spsr_el2, x9
    adr x9, \target
    msr elr_el2, x9
    eret
.endm

#endif /* KTEST_EL2_H */
