/*
 * Test kernel: the two boot entries (PVH and Multiboot2) and the one way
 * into long mode they share.
 *
 * PVH: QEMU's -kernel loads this ELF at its physical addresses (1 MiB up)
 * and, finding the Xen PHYS32_ENTRY note, enters pvh_entry with
 * %ebx = physical address of struct hvm_start_info.
 * Multiboot2: GRUB (BIOS or UEFI, after ExitBootServices) finds the header
 * in the first 32 KiB of the file, loads the PT_LOAD segments at their
 * physical addresses and enters mb2_entry (the header's entry-address tag)
 * with %eax = 0x36d76289 and %ebx = physical address of the boot
 * information.
 * Both arrive in 32-bit protected mode with paging off and flat segments.
 * Each checks its magic, then boot32 does the rest with %esi = the boot
 * protocol (BOOT_PROTO_*), which kmain receives beside the info address.
 * The kernel is linked at KERNEL_VMA + physical, so until paging is on every
 * absolute reference goes through PA().
 *
 * Boot page tables (all in .bss, 2 MiB pages, four shared page directories):
 *   identity    [0, 4 GiB)                 until kmain has read the start info
 *   HHDM        HHDM base + [0, 4 GiB)     kmain trims or extends it to RAM
 *   kernel      KERNEL_VMA + [0, 1 GiB)    the image, linked in the top 2 GiB
 * 4-level: CR3 = boot_pml4; [0] -> boot_pdpt_low, [256] -> boot_pdpt_hhdm,
 * [511] -> boot_pdpt_kernel.
 * 5-level (command line "la57" and CPUID.7.0:ECX[16]): CR3 = boot_pml5;
 * [0] and [511] -> boot_pml4, [256] -> boot_pml4_hhdm -> boot_pdpt_hhdm, so
 * the HHDM lives at 0xff00000000000000, reachable only with 57-bit paging.
 *
 * A null IDT is loaded first: any fault before kmain installs its own IDT
 * triple-faults, and with -no-reboot QEMU stops instead of wandering.
 */

#define KERNEL_VMA 0xffffffff80000000
#define PA(x) ((x) - KERNEL_VMA)

#define PVH_MAGIC 0x336ec578
#define MB2_HEADER_MAGIC 0xe85250d6
#define MB2_BOOT_MAGIC 0x36d76289
#define MB2_TAG_END 0
#define MB2_TAG_CMDLINE 1
#define MB2_HEADER_TAG_ENTRY 3

#define BOOT_PROTO_PVH 1
#define BOOT_PROTO_MB2 2
#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_PS 0x80

#define BOOT_LA57_REQUESTED 1
#define BOOT_LA57_ENABLED 2
#define BOOT_NX_ENABLED 4
#define BOOT_PGE_ENABLED 8

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_BOOT_FAIL 0x12

/* ---------------------------------------------------------------------- */
/* The PVH note. QEMU 7.2 (hw/i386/x86.c, read_pvh_start_addr) reads the
 * descriptor as a size_t at note + 12 + align_up(namesz, p_align of the
 * PT_NOTE segment): so the note segment must be 4-byte aligned and the
 * descriptor 8 bytes wide (a 4-byte one works only if the next 4 bytes
 * happen to be zero). */
    .section .note.pvh, "a", @note
    .p2align 2
    .long 4                         /* namesz: "Xen\0" */
    .long 8                         /* descsz */
    .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad PA(pvh_entry)

/* ---------------------------------------------------------------------- */
/* The Multiboot2 header: 8-aligned in the first 32 KiB of the file (the
 * linker script puts it first in the text segment). Architecture 0 asks for
 * 32-bit protected mode. Only the entry-address tag: GRUB takes the ELF's
 * segments itself, and without the EFI boot-services tags it exits boot
 * services and uses the i386 entry on UEFI machines too. */
    .section .multiboot2, "a"
    .p2align 3
mb2_header:
    .long MB2_HEADER_MAGIC
    .long 0                         /* architecture: i386 */
    .long mb2_header_end - mb2_header
    .long 0x100000000 - (MB2_HEADER_MAGIC + (mb2_header_end - mb2_header))
    .p2align 3
    .short MB2_HEADER_TAG_ENTRY, 0  /* type, flags: required */
    .long 12
    .long PA(mb2_entry)             /* the ELF entry is a -2 GiB address */
    .p2align 3
    .short 0, 0                     /* end tag */
    .long 8
mb2_header_end:

/* ---------------------------------------------------------------------- */
    .section .boot.text, "ax"
    .code32
    .globl pvh_entry, mb2_entry
pvh_entry:
    cli
    cld
    lidt PA(null_idtr)
    cmpl $PVH_MAGIC, (%ebx)
    jne boot_fail32
    movl $BOOT_PROTO_PVH, %esi
    jmp boot32

mb2_entry:
    cli
    cld
    lidt PA(null_idtr)
    cmpl $MB2_BOOT_MAGIC, %eax
    jne boot_fail32
    movl $BOOT_PROTO_MB2, %esi

/* %ebx = boot information (physical), %esi = BOOT_PROTO_*. */
boot32:
    /* Zero .bss (page tables and the boot stack live there). %ebx and %esi
     * survive. */
    movl $PA(__bss_start), %edi
    movl $PA(__bss_end), %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl
    movl $PA(boot_stack_top), %esp
    movl %ebx, PA(boot_start_info)
    movl %esi, PA(boot_protocol)

    /* Long mode is required. */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb boot_fail32
    movl $0x80000001, %eax
    cpuid
    btl $29, %edx
    jnc boot_fail32
    xorl %ebp, %ebp                 /* %ebp: boot flags */
    btl $20, %edx
    jnc 1f
    orl $BOOT_NX_ENABLED, %ebp
1:  movl $1, %eax
    cpuid
    btl $13, %edx
    jnc 1f
    orl $BOOT_PGE_ENABLED, %ebp
1:
    /* "la57" on the command line requests 5-level paging. The scan stops
     * at the NUL or at the end of the Multiboot2 tag. */
    movl PA(boot_start_info), %ebx  /* cpuid clobbered %ebx */
    call boot_cmdline32
    testl %esi, %esi
    jz 3f
    movl %esi, %edx                 /* start of the command line */
1:  cmpl %edi, %esi
    jae 3f
    movb (%esi), %al
    testb %al, %al
    jz 3f
    cmpl $0x3735616c, (%esi)        /* "la57" */
    jne 2f
    cmpl %edx, %esi                 /* at the start or after a space */
    je 4f
    cmpb $' ', -1(%esi)
    jne 2f
4:  movb 4(%esi), %al               /* followed by the end or a space */
    testb %al, %al
    jz 5f
    cmpb $' ', %al
    jne 2f
5:  orl $BOOT_LA57_REQUESTED, %ebp
    jmp 3f
2:  incl %esi
    jmp 1b
3:
    testl $BOOT_LA57_REQUESTED, %ebp
    jz 1f
    xorl %eax, %eax
    cpuid
    cmpl $7, %eax
    jb 1f
    movl $7, %eax
    xorl %ecx, %ecx
    cpuid
    btl $16, %ecx
    jnc 1f
    orl $BOOT_LA57_ENABLED, %ebp
1:
    movl %ebp, PA(boot_flags)

    /* Four page directories: 2048 2 MiB pages over [0, 4 GiB). */
    movl $PA(boot_pd), %edi
    movl $(PTE_P | PTE_RW | PTE_PS), %eax
    movl $2048, %ecx
1:  movl %eax, (%edi)
    movl $0, 4(%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 1b

    /* boot_pdpt_low[0..3] and boot_pdpt_hhdm[0..3] -> the four directories. */
    movl $PA(boot_pdpt_low), %edi
    movl $(PA(boot_pd) + PTE_P + PTE_RW), %eax
    movl $4, %ecx
1:  movl %eax, (%edi)
    movl %eax, PA(boot_pdpt_hhdm) - PA(boot_pdpt_low)(%edi)
    addl $0x1000, %eax
    addl $8, %edi
    loop 1b

    /* -2 GiB: boot_pdpt_kernel[510] -> the first directory. */
    movl $(PA(boot_pd) + PTE_P + PTE_RW), PA(boot_pdpt_kernel) + 510 * 8

    movl $(PA(boot_pdpt_low) + PTE_P + PTE_RW), PA(boot_pml4)
    movl $(PA(boot_pdpt_kernel) + PTE_P + PTE_RW), PA(boot_pml4) + 511 * 8
    testl $BOOT_LA57_ENABLED, %ebp
    jnz 1f
    movl $(PA(boot_pdpt_hhdm) + PTE_P + PTE_RW), PA(boot_pml4) + 256 * 8
    movl $PA(boot_pml4), %eax
    jmp 2f
1:  movl $(PA(boot_pdpt_hhdm) + PTE_P + PTE_RW), PA(boot_pml4_hhdm)
    movl $(PA(boot_pml4) + PTE_P + PTE_RW), PA(boot_pml5)
    movl $(PA(boot_pml4_hhdm) + PTE_P + PTE_RW), PA(boot_pml5) + 256 * 8
    movl $(PA(boot_pml4) + PTE_P + PTE_RW), PA(boot_pml5) + 511 * 8
    movl $PA(boot_pml5), %eax
2:  movl %eax, %cr3

    /* CR4: PAE, PGE if present, LA57 if enabled (only while paging is off). */
    movl %cr4, %eax
    orl $(1 << 5), %eax
    testl $BOOT_PGE_ENABLED, %ebp
    jz 1f
    orl $(1 << 7), %eax
1:  testl $BOOT_LA57_ENABLED, %ebp
    jz 1f
    orl $(1 << 12), %eax
1:  movl %eax, %cr4

    /* EFER: long mode, and NX when the CPU has it. */
    movl $0xc0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    testl $BOOT_NX_ENABLED, %ebp
    jz 1f
    orl $(1 << 11), %eax
1:  wrmsr

    /* Paging on (and write-protect, so supervisor writes honour RO pages). */
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16) | 1), %eax
    movl %eax, %cr0

    lgdt PA(gdtr32)
    ljmp $0x08, $PA(long_low)

/* The command line, before anything has been validated: %ebx = boot
 * information. Returns %esi = its physical address (0: none) and %edi = the
 * address it must end before. For Multiboot2 the walk checks each tag's
 * size against total_size and stops at the first bad one (kmain's parser
 * checks everything again, and fails the boot cleanly). Clobbers %eax,
 * %ecx, %edx. */
boot_cmdline32:
    cmpl $BOOT_PROTO_MB2, PA(boot_protocol)
    je 1f
    movl 24(%ebx), %esi             /* hvm_start_info.cmdline_paddr (low half) */
    movl $0xffffffff, %edi
    ret
1:  movl (%ebx), %ecx               /* total_size */
    addl %ebx, %ecx                 /* end of the information */
    jc 9f
    leal 8(%ebx), %edx              /* first tag */
2:  cmpl %edx, %ecx
    jbe 9f
    movl %ecx, %edi
    subl %edx, %edi                 /* bytes left */
    cmpl $8, %edi
    jb 9f
    movl 4(%edx), %eax              /* tag size */
    cmpl $8, %eax
    jb 9f
    cmpl %edi, %eax
    ja 9f
    cmpl $MB2_TAG_END, (%edx)
    je 9f
    cmpl $MB2_TAG_CMDLINE, (%edx)
    je 3f
    addl $7, %eax                   /* next tag: 8-aligned */
    andl $~7, %eax
    addl %eax, %edx
    jmp 2b
3:  leal 8(%edx), %esi
    leal (%edx,%eax), %edi
    ret
9:  xorl %esi, %esi
    xorl %edi, %edi
    ret

boot_fail32:
    movw $DEBUG_EXIT_PORT, %dx
    movl $DEBUG_EXIT_BOOT_FAIL, %eax
    outl %eax, %dx
1:  hlt
    jmp 1b

    .code64
long_low:
    movabsq $long_high, %rax
    jmp *%rax

/* ---------------------------------------------------------------------- */
    .text
long_high:
    lgdt gdtr64
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl boot_start_info(%rip), %edi
    movl boot_protocol(%rip), %esi
    call kmain
1:  cli
    hlt
    jmp 1b

/* ---------------------------------------------------------------------- */
    .section .rodata
    .p2align 3
null_idtr:
    .word 0
    .quad 0
    .p2align 3
gdtr32:
    .word gdt_end - gdt - 1
    .long PA(gdt)
    .p2align 3
gdtr64:
    .word gdt_end - gdt - 1
    .quad gdt

    .data
    .p2align 4
    .globl gdt
gdt:
    .quad 0                         /* 0x00 null */
    .quad 0x00af9a000000ffff        /* 0x08 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10 data */
    .quad 0, 0                      /* 0x18 TSS (16 bytes), filled by idt.c */
    .quad 0x00cff2000000ffff        /* 0x28 user data, DPL 3 */
    .quad 0x00affa000000ffff        /* 0x30 user 64-bit code, DPL 3 */
gdt_end:

    .globl boot_start_info, boot_protocol, boot_flags
    .p2align 2
boot_start_info:
    .long 0
boot_protocol:
    .long 0
boot_flags:
    .long 0

    .bss
    .p2align 12
    .globl boot_pml5, boot_pml4, boot_pml4_hhdm, boot_pdpt_low, boot_pdpt_hhdm
    .globl boot_pdpt_kernel, boot_pd
boot_pml5:          .space 4096
boot_pml4:          .space 4096
boot_pml4_hhdm:     .space 4096
boot_pdpt_low:      .space 4096
boot_pdpt_hhdm:     .space 4096
boot_pdpt_kernel:   .space 4096
boot_pd:            .space 4 * 4096
    .globl boot_stack_bottom, boot_stack_top
boot_stack_bottom:
    .space 64 * 1024
boot_stack_top:
