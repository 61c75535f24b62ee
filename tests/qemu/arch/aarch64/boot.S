/*
 * Test kernel (AArch64): the Linux arm64 Image header and the way to
 * kmain with the MMU on.
 *
 * QEMU's -kernel loads the image at a 2 MiB-aligned RAM address plus
 * text_offset and enters here at EL1 or, with virtualization=on, at EL2,
 * MMU off, x0 = physical address of the device tree. The code below runs
 * at physical addresses until the MMU is on, so it uses only PC-relative
 * addressing (adr/adrp) and no C.
 *
 * Boot tables (4 KiB granule, 2 MiB and 1 GiB blocks):
 *   TTBR0  identity: [0, 1 GiB) Device-nGnRE (the PL011 and the rest of
 *          the virt machine's devices), [1 GiB, 4 GiB) Normal WB (RAM: the
 *          image, the DTB)
 *   TTBR1  the image: -2 GiB + n * 2 MiB -> load base + n * 2 MiB, 32 MiB
 * With FEAT_LPA2 (ID_AA64MMFR0_EL1.TGran4 = 1) the space is 52 bits wide
 * (TCR_EL1.DS = 1): a level -1 table goes on top of each hierarchy, and
 * block descriptors carry OA[51:50] where SH was (shareability then comes
 * from TCR_EL1.SH0/SH1).
 * early_map.c adds the HHDM to TTBR1 (1 GiB blocks over the RAM the
 * device tree lists); mem_init replaces all of it with tables built by
 * paging-aarch64.
 */
/* paging-aarch64's MAIR_EL1 and attribute indices (A64PT_MAIR_EL1,
 * A64PT_ATTR_*; a64pt.h is C only): checks_boot compares the register with
 * A64PT_MAIR_EL1, so the two cannot drift apart unnoticed. */
#define BOOT_MAIR 0x000000000444bbff
#define ATTR_WB 0
#define ATTR_DEVICE 3

#define KERNEL_TEXT_OFFSET 0x200000
#define BOOT_IMAGE_BLOCKS 16

/* Block descriptor bits (Arm ARM, block and page descriptors). */
#define D_BLOCK 0x1
#define D_TABLE 0x3
#define D_ATTR(i) ((i) << 2)
#define D_SH_INNER (3 << 8)
#define D_AF (1 << 10)
#define D_PXN (1 << 53)
#define D_UXN (1 << 54)

/* TCR_EL1: inner/outer write-back write-allocate walks, inner shareable,
 * 4 KiB granule in both halves (TG1 = 0b10). */
#define TCR_WALK0 0x3500
#define TCR_WALK1 0xb5000000
#define TCR_AS (1 << 36)
#define TCR_DS (1 << 59)

#include "el2.h"

/* SCTLR_EL1: the RES1 bits (el2.h), then M (MMU), C (data cache), SA/SA0
 * (stack alignment), I (icache). */
#define SCTLR_ON (SCTLR_RES1 | 0x1 | 0x4 | 0x8 | 0x10 | 0x1000)

    .section .text.head, "ax"
    .globl _start
_start:
    b primary                     /* code0 */
    .long 0                       /* code1 */
    .quad KERNEL_TEXT_OFFSET      /* text_offset */
    .quad __image_size            /* image_size: bss included */
    .quad 0xa                     /* flags: little endian, 4 KiB pages, anywhere in RAM */
    .quad 0, 0, 0                 /* res2..res4 */
    .ascii "ARM\x64"              /* magic at offset 56 */
    .long 0                       /* res5 */

primary:
    mov x19, x0                   /* DTB */
    mrs x20, CurrentEL
    lsr x20, x20, #2
    and x20, x20, #3              /* entry EL */
    cmp x20, #2
    b.eq el2_to_el1
    cmp x20, #1
    b.ne park
el1:
    msr daifset, #0xf
    ldr x9, =SCTLR_RES1           /* MMU and caches off until the tables exist */
    msr sctlr_el1, x9
    isb

    adr x21, _start               /* physical load address of the image */
    sub x22, x21, #KERNEL_TEXT_OFFSET
    tst x22, #0x1fffff            /* the Image protocol: 2 MiB aligned base */
    b.ne park

    adrp x9, __bss_start
    add x9, x9, :lo12:__bss_start
    adrp x10, __bss_end
    add x10, x10, :lo12:__bss_end
1:  stp xzr, xzr, [x9], #16
    cmp x9, x10
    b.lo 1b

    /* 52-bit VA when the 4 KiB granule supports it (TGran4 = 0b0001). */
    mrs x23, id_aa64mmfr0_el1
    ubfx x9, x23, #28, #4
    cmp x9, #1
    cset x24, eq                  /* x24 = LPA2 */
    mov x25, #D_SH_INNER
    cmp x24, #0
    csel x25, x25, xzr, eq        /* SH bits in blocks only without LPA2 */

    /* Identity: L0[0] -> L1; L1[0] device, L1[1..3] normal. */
    adrp x0, boot_l0_lo
    adrp x1, boot_l1_lo
    orr x9, x1, #D_TABLE
    str x9, [x0]
    ldr x9, =(D_BLOCK | D_ATTR(ATTR_DEVICE) | D_AF | D_PXN | D_UXN)
    str x9, [x1]
    ldr x10, =(D_BLOCK | D_ATTR(ATTR_WB) | D_AF)
    orr x10, x10, x25
    mov x11, #1
2:  lsl x12, x11, #30
    orr x12, x12, x10
    str x12, [x1, x11, lsl #3]
    add x11, x11, #1
    cmp x11, #4
    b.lo 2b

    /* The image: L0[511] -> L1; L1[510] -> L2; L2[n] -> base + n * 2 MiB. */
    adrp x0, boot_l0_hi
    adrp x1, boot_l1_hi
    adrp x2, boot_l2_hi
    orr x9, x1, #D_TABLE
    str x9, [x0, #511 * 8]
    orr x9, x2, #D_TABLE
    str x9, [x1, #510 * 8]
    mov x11, #0
3:  lsl x12, x11, #21
    add x12, x12, x22
    orr x12, x12, x10
    str x12, [x2, x11, lsl #3]
    add x11, x11, #1
    cmp x11, #BOOT_IMAGE_BLOCKS
    b.lo 3b

    adrp x26, boot_l0_lo
    adrp x27, boot_l0_hi
    mov x9, #16                   /* T0SZ: user half 2^48 */
    mov x10, #16                  /* T1SZ: kernel half 2^48 */
    cbz x24, 4f
    /* LPA2: level -1 tables: [0] -> low L0, [15] -> high L0. */
    adrp x0, boot_lm1_lo
    orr x9, x26, #D_TABLE
    str x9, [x0]
    mov x26, x0
    adrp x0, boot_lm1_hi
    orr x9, x27, #D_TABLE
    str x9, [x0, #15 * 8]
    mov x27, x0
    mov x9, #12                   /* T0SZ: 2^52 */
    mov x10, #12                  /* T1SZ: 2^52 */
4:  ldr x11, =(TCR_WALK0 | TCR_WALK1)
    orr x11, x11, x9
    orr x11, x11, x10, lsl #16
    and x12, x23, #0xf            /* IPS = PARange (capped at 48 bits without LPA2) */
    cmp x12, #5
    mov x13, #5
    csel x13, x12, x13, ls
    cmp x24, #0
    csel x12, x13, x12, eq
    orr x11, x11, x12, lsl #32
    ubfx x13, x23, #4, #4         /* ASIDBits = 0b0010: 16-bit ASIDs */
    cmp x13, #2
    b.ne 5f
    orr x11, x11, #TCR_AS
5:  cbz x24, 6f
    orr x11, x11, #TCR_DS
6:  ldr x9, =BOOT_MAIR
    msr mair_el1, x9
    msr tcr_el1, x11
    msr ttbr0_el1, x26
    msr ttbr1_el1, x27
    isb
    tlbi vmalle1
    dsb nsh
    isb
    ldr x9, =SCTLR_ON
    msr sctlr_el1, x9
    isb
    ldr x9, =high
    br x9

high:
    adrp x9, boot_stack_top
    add x9, x9, :lo12:boot_stack_top
    mov sp, x9
    mov x29, #0
    mov x30, #0
    adrp x9, exc_vectors
    add x9, x9, :lo12:exc_vectors
    msr vbar_el1, x9
    isb
    adrp x9, kernel_phys_base
    str x21, [x9, :lo12:kernel_phys_base]
    adrp x9, boot_entry_el
    str x20, [x9, :lo12:boot_entry_el]
    adrp x9, boot_dtb_phys
    str x19, [x9, :lo12:boot_dtb_phys]
    adrp x9, boot_identity_root
    str x26, [x9, :lo12:boot_identity_root]
    mov x9, #48
    cbz x24, 7f
    mov x9, #52
7:  adrp x10, boot_va_bits
    str x9, [x10, :lo12:boot_va_bits]
    mov x0, x19
    bl kmain
park:
    wfe
    b park

/* EL2 (virtualization=on): to EL1 (el2.h), then on as if entered there. */
el2_to_el1:
    EL2_TO_EL1 el1

    .section .data
    .balign 8
    .globl kernel_phys_base, boot_entry_el, boot_dtb_phys, boot_va_bits, boot_identity_root
kernel_phys_base: .quad 0
boot_identity_root: .quad 0  /* TTBR0 above; smp.c starts the other CPUs on it */
boot_entry_el: .quad 0
boot_dtb_phys: .quad 0
boot_va_bits: .quad 0

    .section .bss
    .balign 4096
    .globl boot_l0_hi, boot_lm1_hi, boot_l0_hhdm, boot_l1_hhdm
boot_l0_lo: .skip 4096
boot_l1_lo: .skip 4096
boot_l0_hi: .skip 4096
boot_l1_hi: .skip 4096
boot_l2_hi: .skip 4096
boot_lm1_lo: .skip 4096
boot_lm1_hi: .skip 4096
boot_l0_hhdm: .skip 4096     /* early_map.c: the HHDM, 52-bit spaces */
boot_l1_hhdm: .skip 4096     /* early_map.c: the HHDM's 1 GiB blocks */
    .globl boot_stack_bottom, boot_stack_top
boot_stack_bottom: .skip 65536
boot_stack_top:
