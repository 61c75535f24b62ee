/*
 * Test kernel (AArch64): what its files and the common checks share.
 *
 * The names both kernels share (TAP, kprintf, fault_expect, panic_expect,
 * the layout) are in common/ktest.h; boot_info and the fault record mean
 * here what they mean in the x86_64 kernel; the boot, exception and
 * register details are AArch64's.
 */
#ifndef KTEST_KERNEL_H
#define KTEST_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/layout.h>
#include <hadron/mm/pmm.h>
#include <hadron/mm/report.h>

#include "fdt.h"
#include "ktest.h"

/* The image is linked at KERNEL_LINK_BASE (text_offset 2 MiB above a
 * 2 MiB-aligned base, as the Image header asks) and runs wherever the
 * loader put it: kernel_phys_base is the physical address of that base. */
#define KERNEL_VMA UINT64_C(0xffffffff80000000)
#define KERNEL_TEXT_OFFSET UINT64_C(0x200000)
#define KERNEL_LINK_BASE (KERNEL_VMA + KERNEL_TEXT_OFFSET)
/* The HHDM starts the kernel half: 2^64 - 2^va_bits (mm_va_space_aarch64). */
#define HHDM_BASE_48 UINT64_C(0xffff000000000000)
#define HHDM_BASE_52 UINT64_C(0xfff0000000000000)

/* ---- boot.S -------------------------------------------------------------- */
extern uint64_t kernel_phys_base; /* physical address of __kernel_start */
extern uint64_t boot_entry_el;    /* exception level at entry: 1 or 2 */
extern uint64_t boot_dtb_phys;    /* x0 at entry */
extern uint64_t boot_va_bits;     /* 48, or 52 with FEAT_LPA2 */

static inline uint64_t kernel_virt_to_phys(const void *p)
{
    return (uint64_t)(uintptr_t)p - (uint64_t)(uintptr_t)__kernel_start + kernel_phys_base;
}

/* ---- fdt.c, boot_info.c: what the device tree says ------------------------ */
#define BOOT_MAP_MAX 64u
#define BOOT_MEM_MAX 16u

typedef struct boot_info {
    pmm_region_t map[BOOT_MAP_MAX]; /* /memory usable, reservations reserved */
    size_t map_count;
    const char *map_source;
    boot_mem_range_t ram_runs[BOOT_MEM_MAX]; /* /memory ranges: what the HHDM maps */
    size_t ram_run_count;
    unsigned reserved_nodes; /* /reserved-memory children */
    unsigned rsvmap_entries; /* memory reservation block */
    uint64_t info_phys, info_size; /* the DTB blob itself, reserved */
    uint64_t uart_phys;            /* PL011 from the tree (0: not found) */
    char cmdline[256];             /* /chosen/bootargs */
    uint64_t phys_top;
    uint64_t ram_bytes;
    bool demo;
    uint64_t cpu_mpidr[FDT_MAX_CPUS]; /* /cpus/cpu@N reg */
    bool cpu_psci[FDT_MAX_CPUS];      /* enable-method "psci" */
    unsigned cpu_count, cpus_ignored;
    fdt_psci_t psci; /* /psci method: the PSCI conduit */
} boot_info_t;

extern boot_info_t boot_info;
/* Parses the device tree at dtb (reachable through the boot identity map).
 * Returns NULL, or why the tree is not usable. */
const char *boot_info_parse_fdt(uint64_t dtb);
bool cmdline_has(const char *word);
bool pmm_type_is_ram(pmm_region_type_t type);

/* ---- early_map.c: the HHDM in the boot tables (1 GiB blocks over the
 * /memory ranges); returns the bytes newly mapped. */
uint64_t early_hhdm_map(uint64_t base, bool lpa2);

/* ---- uart.c -------------------------------------------------------------- */
void serial_init(uint64_t va);
void serial_putc(char c);
void serial_write(const char *s);

/* ---- semihost.c: exit through semihosting ---------------------------------- */
#define QEMU_EXIT_SUCCESS 0u
#define QEMU_EXIT_FAILURE 1u
_Noreturn void qemu_exit(uint32_t code);

/* ---- entry.S ------------------------------------------------------------- */
typedef struct kjmp_buf {
    uint64_t x19_x28[10], fp, lr, sp;
} kjmp_buf_t;
__attribute__((returns_twice)) int kjmp_save(kjmp_buf_t *buf);
_Noreturn void kjmp_restore(kjmp_buf_t *buf, int value);
/* EL0 at pc/sp with x0 = arg0, x1 = arg1; back only by an exception. */
_Noreturn void enter_user(uint64_t pc, uint64_t sp, uint64_t arg0, uint64_t arg1);
void call_on_stack(void (*fn)(void *), void *arg, void *stack_top);

/* The registers an exception saves (entry.S builds it on the EL1 stack). */
typedef struct exc_frame {
    uint64_t x[31];
    uint64_t sp_el0;
    uint64_t elr, spsr, esr, far;
} exc_frame_t;

/* Which of the 16 vectors was taken: (source << 2) | type, source 0 = EL1
 * with SP_EL0, 1 = EL1 with SP_EL1, 2 = EL0 AArch64, 3 = EL0 AArch32; type
 * 0 sync, 1 IRQ, 2 FIQ, 3 SError. */
void exc_dispatch(exc_frame_t *frame, uint64_t vector);
extern char exc_vectors[];

/* ESR_EL1 exception classes (Arm ARM, ESR_EL1.EC). */
#define EC_UNKNOWN 0x00u
#define EC_SVC64 0x15u
#define EC_IABT_LOW 0x20u
#define EC_IABT_CUR 0x21u
#define EC_PC_ALIGN 0x22u
#define EC_DABT_LOW 0x24u
#define EC_DABT_CUR 0x25u
#define EC_SP_ALIGN 0x26u
#define EC_BRK64 0x3cu

typedef struct fault_record {
    bool hit;
    unsigned ec;     /* ESR_EL1.EC */
    uint64_t esr;
    uint64_t far;    /* FAR_EL1: the faulting address */
    uint64_t elr;    /* where it happened */
    bool from_el0;   /* taken from EL0 */
    unsigned svc;    /* SVC immediate when ec == EC_SVC64 */
    uint64_t x0;     /* x0 of the interrupted context */
    char where[160]; /* classification of far */
} fault_record_t;

/* ESR_EL1.ISS for aborts: DFSC/IFSC bits 5:0, WnR bit 6 (data aborts). */
#define ESR_EC(esr) ((unsigned)(((esr) >> 26) & 0x3f))
#define ESR_FSC(esr) ((unsigned)((esr) & 0x3f))
#define ESR_WNR(esr) (((esr) >> 6) & 1u)
/* Fault status classes: translation (no entry) or permission, at a level. */
#define FSC_IS_TRANSLATION(fsc) (((fsc) & 0x3c) == 0x04 || (fsc) == 0x2b)
#define FSC_IS_PERMISSION(fsc) (((fsc) & 0x3c) == 0x0c)

const char *esr_str(uint64_t esr, char *buf, size_t size);
/* Frame pointers below this are not the kernel's (the HHDM starts here with
 * 52-bit VAs, above it with 48). */
#define ARCH_FRAME_VA_MIN UINT64_C(0xfff0000000000000)
/* The frame record mm_hook_panic's backtrace starts from: its own, whose
 * return address follows the link register's it prints first. */
#define ARCH_PANIC_FRAME() ((uint64_t)(uintptr_t)__builtin_frame_address(0))

/* ---- tlb.c --------------------------------------------------------------- */
extern unsigned hook_tlb_page_calls, hook_tlb_all_calls, hook_root_switches;
extern unsigned hook_asid_retires;
extern unsigned tlb_asid_bits; /* 8 or 16 (ID_AA64MMFR0_EL1.ASIDBits, TCR_EL1.AS) */

/* ---- kmain.c ---------------------------------------------------------------- */
void kmain(uint64_t dtb_phys);
extern mm_status_t hhdm_init_status, layout_status;

/* ---- checks ------------------------------------------------------------------ */
void checks_boot(void);
void checks_layout(void);

#endif /* KTEST_KERNEL_H */
