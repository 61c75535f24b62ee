/*
 * Test kernel: exception entry stubs and a setjmp/longjmp pair.
 *
 * Every stub pushes a uniform frame (a dummy error code where the CPU pushes
 * none, then the vector), saves the general registers and calls
 * isr_dispatch(isr_frame_t *). The frame layout matches isr_frame_t.
 */

    .macro ISR_NOERR n
isr\n:
    pushq $0
    pushq $\n
    jmp isr_common
    .endm

    .macro ISR_ERR n
isr\n:
    pushq $\n
    jmp isr_common
    .endm

    .text
    ISR_NOERR 0
    ISR_NOERR 1
    ISR_NOERR 2
    ISR_NOERR 3
    ISR_NOERR 4
    ISR_NOERR 5
    ISR_NOERR 6
    ISR_NOERR 7
    ISR_ERR   8
    ISR_NOERR 9
    ISR_ERR   10
    ISR_ERR   11
    ISR_ERR   12
    ISR_ERR   13
    ISR_ERR   14
    ISR_NOERR 15
    ISR_NOERR 16
    ISR_ERR   17
    ISR_NOERR 18
    ISR_NOERR 19
    ISR_NOERR 20
    ISR_ERR   21
    ISR_NOERR 22
    ISR_NOERR 23
    ISR_NOERR 24
    ISR_NOERR 25
    ISR_NOERR 26
    ISR_NOERR 27
    ISR_NOERR 28
    ISR_ERR   29
    ISR_ERR   30
    ISR_NOERR 31

isr_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    movq %rsp, %rdi
    /* The CPU aligned RSP to 16 before pushing its frame; 22 quadwords
     * since keep it aligned for the call. */
    call isr_dispatch
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

    .section .rodata
    .p2align 3
    .globl isr_stub_table
isr_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr\n
    .endr

/* int kjmp_save(kjmp_buf_t *buf): 0 now, the value given to kjmp_restore
 * when resumed. buf: rbx rbp r12 r13 r14 r15 rsp rip. */
    .text
    .globl kjmp_save
kjmp_save:
    movq %rbx, 0(%rdi)
    movq %rbp, 8(%rdi)
    movq %r12, 16(%rdi)
    movq %r13, 24(%rdi)
    movq %r14, 32(%rdi)
    movq %r15, 40(%rdi)
    leaq 8(%rsp), %rdx
    movq %rdx, 48(%rdi)
    movq (%rsp), %rdx
    movq %rdx, 56(%rdi)
    xorl %eax, %eax
    ret

/* _Noreturn void kjmp_restore(kjmp_buf_t *buf, int value): may be called
 * from an exception handler (ring 0, same or IST stack): it abandons the
 * handler's frame. Interrupts stay as they are (off). */
    .globl kjmp_restore
kjmp_restore:
    movl %esi, %eax
    testl %eax, %eax
    jnz 1f
    movl $1, %eax
1:  movq 0(%rdi), %rbx
    movq 8(%rdi), %rbp
    movq 16(%rdi), %r12
    movq 24(%rdi), %r13
    movq 32(%rdi), %r14
    movq 40(%rdi), %r15
    movq 48(%rdi), %rsp
    jmpq *56(%rdi)

/* void call_on_stack(void (*fn)(void *), void *arg, void *stack_top):
 * runs fn(arg) with RSP = stack_top, then returns on the caller's stack. */
    .globl call_on_stack
call_on_stack:
    pushq %rbp
    movq %rsp, %rbp
    movq %rdx, %rsp
    movq %rdi, %rax
    movq %rsi, %rdi
    callq *%rax
    movq %rbp, %rsp
    popq %rbp
    ret

/* _Noreturn void enter_user(uint64_t rip, uint64_t rsp, uint64_t arg0,
 * uint64_t arg1): drops to ring 3 at rip with rsp, %rdi = arg0 and
 * %rsi = arg1, interrupts off. The only way back is an exception (the
 * user-mode checks arm fault_expect, whose handler resumes the kernel). */
    .globl enter_user
enter_user:
    movq %rdi, %rax
    movq %rdx, %rdi
    movq %rsi, %r8
    movq %rcx, %rsi
    movw $0x2b, %dx
    movw %dx, %ds
    movw %dx, %es
    pushq $0x2b                     /* SS: user data, RPL 3 */
    pushq %r8                       /* RSP */
    pushq $0x2                      /* RFLAGS: IF off */
    pushq $0x33                     /* CS: user code, RPL 3 */
    pushq %rax                      /* RIP */
    xorl %eax, %eax
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %ebx, %ebx
    xorl %ebp, %ebp
    xorl %r8d, %r8d
    iretq
