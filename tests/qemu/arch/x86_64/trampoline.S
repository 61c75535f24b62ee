/*
 * Test kernel: the application-processor trampoline. smp.c copies
 * [ap_tramp_start, ap_tramp_end) to a frame below 1 MiB, fills the
 * parameter block at its end and sends the startup IPI with that frame's
 * number as the vector: the AP starts in real mode at CS = frame >> 4,
 * IP = 0. Position independent: %ebx holds the frame's physical address
 * from the first instructions on, and every absolute address is the
 * parameter block's or computed from %ebx.
 *
 * 16-bit: own GDT (64-bit code 0x08 as in the kernel's GDT, data 0x10,
 * 32-bit code 0x18), CR0.PE. 32-bit: CR4 (PAE, LA57 as the BSP), CR3 = a
 * copy of the kernel's top-level table below 4 GiB (identity-maps this
 * frame), EFER (LME, NXE), CR0.PG/WP. 64-bit: the stack, the kernel's
 * entry (ap_entry in smp.c, at its -2 GiB address) with the argument.
 */
#define TR_OFF(sym) ((sym) - ap_tramp_start)

    .section .rodata
    .p2align 12
    .globl ap_tramp_start, ap_tramp_end, ap_tramp_params
    .code16
ap_tramp_start:
    cli
    cld
    xorl %ebx, %ebx
    movw %cs, %bx
    shll $4, %ebx                       /* %ebx = physical base */
    movw %cs, %ax
    movw %ax, %ds
    /* The GDT's base is linear: patch it in place (this frame is RAM). */
    leal TR_OFF(tr_gdt)(%ebx), %eax
    movl %eax, TR_OFF(tr_gdtr) + 2
    lgdtl TR_OFF(tr_gdtr)
    leal TR_OFF(tr_pm32)(%ebx), %eax
    movl %eax, TR_OFF(tr_far32)
    leal TR_OFF(tr_lm64)(%ebx), %eax
    movl %eax, TR_OFF(tr_far64)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl *TR_OFF(tr_far32)

    .code32
tr_pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl TR_OFF(tr_p_cr4)(%ebx), %eax
    movl %eax, %cr4
    movl TR_OFF(tr_p_cr3)(%ebx), %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    movl TR_OFF(tr_p_efer)(%ebx), %eax
    xorl %edx, %edx
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax               /* PG, WP, PE */
    movl %eax, %cr0
    ljmpl *TR_OFF(tr_far64)(%ebx)

    .code64
tr_lm64:
    movl %ebx, %ebx                     /* the upper half is undefined */
    movq TR_OFF(tr_p_stack)(%rbx), %rsp
    movq TR_OFF(tr_p_arg)(%rbx), %rdi
    movq TR_OFF(tr_p_entry)(%rbx), %rax
    xorl %ebp, %ebp
    pushq $0                            /* a null return address ends backtraces */
    jmpq *%rax

    .p2align 3
tr_gdt:
    .quad 0                             /* 0x00 null */
    .quad 0x00af9a000000ffff            /* 0x08 64-bit code, as the kernel's */
    .quad 0x00cf92000000ffff            /* 0x10 data */
    .quad 0x00cf9a000000ffff            /* 0x18 32-bit code */
tr_gdt_end:
    .p2align 3
tr_gdtr:
    .word tr_gdt_end - tr_gdt - 1
    .long 0                             /* patched: linear base */
    .p2align 3
tr_far32:
    .long 0                             /* patched: tr_pm32 */
    .word 0x18
    .p2align 3
tr_far64:
    .long 0                             /* patched: tr_lm64 */
    .word 0x08

    /* Parameter block, filled by smp.c (struct ap_tramp_params). */
    .p2align 3
ap_tramp_params:
tr_p_cr3:   .quad 0
tr_p_cr4:   .quad 0
tr_p_efer:  .quad 0
tr_p_stack: .quad 0
tr_p_entry: .quad 0
tr_p_arg:   .quad 0
ap_tramp_end:
