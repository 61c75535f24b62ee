/*
 * Test kernel (AArch64): the exception vector table, and the few routines
 * C cannot write (non-local jumps, the return to EL0, a call on another
 * stack).
 *
 * Every vector saves x0-x30, SP_EL0, ELR, SPSR, ESR and FAR in an
 * exc_frame_t on the EL1 stack (SP_EL1) and calls exc_dispatch(frame,
 * vector). When the handler returns, the frame (ELR/SPSR possibly changed)
 * is restored and ERET resumes; a check that expected the exception
 * leaves the handler through kjmp_restore instead.
 */
#define FRAME_SIZE 288 /* 31 + 5 registers, 16-byte aligned */

.macro VENTRY n
    .balign 0x80
    sub sp, sp, #FRAME_SIZE
    stp x0, x1, [sp, #0]
    mov x1, #\n
    b exc_common
.endm

    .text
    .balign 2048
    .globl exc_vectors
exc_vectors:
    VENTRY 0
    VENTRY 1
    VENTRY 2
    VENTRY 3
    VENTRY 4
    VENTRY 5
    VENTRY 6
    VENTRY 7
    VENTRY 8
    VENTRY 9
    VENTRY 10
    VENTRY 11
    VENTRY 12
    VENTRY 13
    VENTRY 14
    VENTRY 15

exc_common:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x2, sp_el0
    stp x30, x2, [sp, #240]
    mrs x2, elr_el1
    mrs x3, spsr_el1
    stp x2, x3, [sp, #256]
    mrs x2, esr_el1
    mrs x3, far_el1
    stp x2, x3, [sp, #272]
    mov x0, sp
    bl exc_dispatch
    ldp x2, x3, [sp, #256]
    msr elr_el1, x2
    msr spsr_el1, x3
    ldp x30, x2, [sp, #240]
    msr sp_el0, x2
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    add sp, sp, #FRAME_SIZE
    eret

/* int kjmp_save(kjmp_buf_t *buf): the callee-saved registers, FP, LR, SP. */
    .globl kjmp_save
kjmp_save:
    stp x19, x20, [x0, #0]
    stp x21, x22, [x0, #16]
    stp x23, x24, [x0, #32]
    stp x25, x26, [x0, #48]
    stp x27, x28, [x0, #64]
    stp x29, x30, [x0, #80]
    mov x9, sp
    str x9, [x0, #96]
    mov x0, #0
    ret

/* void kjmp_restore(kjmp_buf_t *buf, int value): kjmp_save returns value
 * (1 if value is 0). */
    .globl kjmp_restore
kjmp_restore:
    ldp x19, x20, [x0, #0]
    ldp x21, x22, [x0, #16]
    ldp x23, x24, [x0, #32]
    ldp x25, x26, [x0, #48]
    ldp x27, x28, [x0, #64]
    ldp x29, x30, [x0, #80]
    ldr x9, [x0, #96]
    mov sp, x9
    cmp w1, #0
    csinc w0, w1, wzr, ne
    ret

/* enter_user(pc, sp, arg0, arg1): EL0t with interrupts masked (none are
 * configured), x0/x1 = arguments, every other register cleared. */
    .globl enter_user
enter_user:
    msr elr_el1, x0
    msr sp_el0, x1
    mov x9, #0x3c0
    msr spsr_el1, x9
    mov x0, x2
    mov x1, x3
    mov x2, #0
    mov x3, #0
    mov x29, #0
    mov x30, #0
    eret

/* call_on_stack(fn, arg, stack_top): fn(arg) with SP = stack_top. */
    .globl call_on_stack
call_on_stack:
    stp x29, x30, [sp, #-32]!
    str x19, [sp, #16]
    mov x29, sp
    mov x19, sp
    mov x9, x0
    mov x0, x1
    mov sp, x2
    blr x9
    mov sp, x19
    ldr x19, [sp, #16]
    ldp x29, x30, [sp], #32
    ret

/* call_on_stack_el1t(fn, arg, stack_top): fn(arg) on SP_EL0 = stack_top
 * (PSTATE.SP = 0, "EL1t"); exceptions still switch to SP_EL1, whose value
 * is this function's frame. */
    .globl call_on_stack_el1t
call_on_stack_el1t:
    stp x29, x30, [sp, #-16]!
    mov x29, sp
    msr sp_el0, x2
    mov x9, x0
    mov x0, x1
    msr spsel, #0
    blr x9
    msr spsel, #1
    ldp x29, x30, [sp], #16
    ret
