/*
 * Test kernel (AArch64): where a CPU started by PSCI CPU_ON (smp.c) comes
 * in: MMU off, at EL1 or (virtualization=on) EL2, x0 = the context id, the
 * physical address of its smp_boot_params_t.
 *
 * It drops to EL1 like the boot CPU (el2.h), loads the boot CPU's MAIR,
 * TCR, SCTLR and kernel root (TTBR1), and turns the MMU on with the boot
 * identity tables in TTBR0 (boot.S: [1 GiB, 4 GiB) as Normal memory, the
 * image among it; kept for this, see smp.c), jumps to its link address,
 * then drops the identity (TTBR0 walks off, as mm_hook_switch_root(0)
 * leaves every CPU) and its local TLB, sets VBAR_EL1 and TPIDR_EL1 (the
 * per-CPU data mm_hook_cpu_index reads) and calls entry(arg, entry EL) on
 * its guard-page stack. Until the MMU is on only PC-relative addressing is
 * used and memory is read, never written.
 */
#include "el2.h"

/* smp_boot_params_t offsets (smp.c checks them with static asserts). */
#define P_MAIR 0
#define P_TCR 8
#define P_TTBR0 16
#define P_TTBR1 24
#define P_SCTLR 32
#define P_VBAR 40
#define P_STACK 48
#define P_ENTRY 56
#define P_ARG 64

#define TCR_EPD0 (1 << 7)

    .text
    .balign 8
    .globl secondary_entry
secondary_entry:
    mov x19, x0
    mrs x20, CurrentEL
    ubfx x20, x20, #2, #2         /* the EL it came in at, for the report */
    cmp x20, #1
    b.eq secondary_el1
    cmp x20, #2
    b.ne secondary_park
    EL2_TO_EL1 secondary_el1

secondary_el1:
    msr daifset, #0xf
    ldr x9, =SCTLR_RES1
    msr sctlr_el1, x9
    isb
    ldp x10, x11, [x19, #P_MAIR]
    ldp x12, x13, [x19, #P_TTBR0]
    ldp x14, x15, [x19, #P_SCTLR]
    ldp x16, x17, [x19, #P_STACK]
    ldr x18, [x19, #P_ARG]
    msr mair_el1, x10
    msr tcr_el1, x11
    msr ttbr0_el1, x12
    msr ttbr1_el1, x13
    isb
    tlbi vmalle1
    dsb nsh
    isb
    msr sctlr_el1, x14
    isb
    ldr x9, =secondary_high
    br x9

secondary_high:
    orr x11, x11, #TCR_EPD0
    msr tcr_el1, x11
    msr ttbr0_el1, xzr
    isb
    tlbi vmalle1
    dsb nsh
    isb
    msr vbar_el1, x15
    msr tpidr_el1, x18
    isb
    mov sp, x16
    mov x29, #0
    mov x30, #0
    mov x0, x18
    mov x1, x20
    blr x17
secondary_park:
    wfe
    b secondary_park
    .ltorg
