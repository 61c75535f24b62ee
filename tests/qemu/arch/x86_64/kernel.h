/*
 * Test kernel: what its files share, beyond what both kernels share
 * (common/ktest.h).
 */
#ifndef KTEST_KERNEL_H
#define KTEST_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/cpuset.h>
#include <hadron/mm/layout.h>
#include <hadron/mm/pmm.h>
#include <hadron/mm/report.h>

#include "efi_memmap.h"
#include "ktest.h"

#define KERNEL_VMA UINT64_C(0xffffffff80000000)
#define KERNEL_PHYS_BASE UINT64_C(0x100000)
#define HHDM_BASE_4LEVEL UINT64_C(0xffff800000000000)
#define HHDM_BASE_5LEVEL UINT64_C(0xff00000000000000)

/* Physical address of something in the kernel image. */
static inline uint64_t kernel_virt_to_phys(const void *p)
{
    return (uint64_t)(uintptr_t)p - KERNEL_VMA;
}

/* ---- boot.S ---------------------------------------------------------- */
#define BOOT_LA57_REQUESTED 1u
#define BOOT_LA57_ENABLED 2u
#define BOOT_NX_ENABLED 4u
#define BOOT_PGE_ENABLED 8u
extern uint32_t boot_flags, boot_protocol;
extern uint64_t boot_pml5[512], boot_pml4[512], boot_pml4_hhdm[512], boot_pdpt_low[512],
    boot_pdpt_hhdm[512];

/* ---- boot_info.c, boot_mb2.c: what the boot protocol handed us --------- */
#define BOOT_PROTO_PVH 1u /* QEMU -kernel: struct hvm_start_info */
#define BOOT_PROTO_MB2 2u /* GRUB multiboot2: Multiboot2 boot information */

#define E820_RAM 1u
#define E820_RESERVED 2u
#define E820_ACPI 3u
#define E820_NVS 4u
#define BOOT_MEMMAP_MAX 64u /* firmware map entries kept for the report */
#define BOOT_MAP_MAX 128u   /* converted (PMM) map entries */

typedef struct boot_info {
    unsigned protocol; /* BOOT_PROTO_* */
    /* The firmware's map as received (PVH e820 table or the Multiboot2
     * memory-map tag; both use the e820 numbering): for the report. */
    boot_mem_range_t memmap[BOOT_MEMMAP_MAX];
    unsigned memmap_count;
    unsigned memmap_dropped; /* entries beyond BOOT_MEMMAP_MAX (report only) */
    /* The map in the PMM's terms, normalized: from the EFI memory map when
     * GRUB passed one (it is the exact one), else from memmap. Everything
     * the kernel decides about physical memory starts here. */
    pmm_region_t map[BOOT_MAP_MAX];
    size_t map_count;
    const char *map_source;
    /* RAM-backed entries of map (pmm_type_is_ram) merged where they touch,
     * whatever their types: what the HHDM maps, so a GiB of RAM split
     * between conventional and boot-services memory still gets a 1 GiB
     * page. */
    boot_mem_range_t ram_runs[BOOT_MAP_MAX];
    size_t ram_run_count;
    /* Multiboot2 only. The structure itself stays reserved for good. */
    uint64_t info_phys, info_size;
    unsigned info_tags;
    char loader_name[64];
    bool have_meminfo;
    uint32_t mem_lower_kib, mem_upper_kib;
    bool efi;             /* an EFI memory map was passed */
    efi_mmap_summary_t efi_summary;
    uint32_t efi_desc_size, efi_desc_version;
    bool efi64;
    uint64_t efi_systab;
    char cmdline[256];
    uint64_t rsdp;
    uint64_t phys_top;       /* end of the highest RAM range (usable or reclaimable) */
    uint64_t ram_bytes;      /* sum of usable and bootloader-reclaimable ranges */
    bool la57_requested;
    bool la57;               /* running with 5-level paging */
    bool demo;               /* "demo" on the command line */
} boot_info_t;

extern boot_info_t boot_info;
/* Copies what the boot protocol handed over into boot_info while the boot
 * identity map still exists. Returns NULL, or why the information is not
 * usable (the caller bails out). */
const char *boot_info_parse(uint32_t info_phys, uint32_t protocol);
const char *boot_info_parse_mb2(uint32_t info_phys);
const char *boot_protocol_name(void);
bool cmdline_has(const char *word);
const char *e820_type_name(uint32_t type);
/* True for the map types backed by RAM the kernel reaches through the
 * HHDM: usable, bootloader reclaimable, ACPI, the kernel and modules. */
bool pmm_type_is_ram(pmm_region_type_t type);

/* ---- serial.c ------------------------------------------------------ */
void serial_init(void);
void serial_putc(char c);
void serial_write(const char *s);

/* ---- exit ------------------------------------------------------------- */
#define QEMU_EXIT_SUCCESS 0x10u /* qemu exits with (0x10 << 1) | 1 = 33 */
#define QEMU_EXIT_FAILURE 0x11u /* 35 */
_Noreturn void qemu_exit(uint32_t code);

/* ---- setjmp.S ---------------------------------------------------------- */
typedef struct kjmp_buf {
    uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
} kjmp_buf_t;
__attribute__((returns_twice)) int kjmp_save(kjmp_buf_t *buf);
_Noreturn void kjmp_restore(kjmp_buf_t *buf, int value);
/* Runs fn(arg) on another stack (stack_top: its initial RSP, 16-aligned). */
void call_on_stack(void (*fn)(void *), void *arg, void *stack_top);
/* Ring 3 at rip/rsp with %rdi = arg0, %rsi = arg1; back only by a fault. */
_Noreturn void enter_user(uint64_t rip, uint64_t rsp, uint64_t arg0, uint64_t arg1);

/* ---- idt.c / fault.c ---------------------------------------------------- */
typedef struct isr_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
} isr_frame_t;

void idt_init(void);
void isr_dispatch(isr_frame_t *frame);

/* ---- watchdog.c ------------------------------------------------------- */
/* PIT -> IOAPIC -> NMI; needs the boot identity map (call before dropping
 * it). A run without a new TAP line for a few seconds is failed with a
 * backtrace. */
void watchdog_start(void);
void watchdog_nmi(isr_frame_t *frame);
/* Seconds without progress before the watchdog fails the run (10). */
void watchdog_set_seconds(unsigned seconds);

/* ---- hang.c ------------------------------------------------------------ */
/* The "hang" command line (expect-hang.sh): CPU 1 keeps a hadron-mm lock and
 * CPU 0 takes it with interrupts off, for good; the watchdog must stop the
 * run naming the lock, its holder and its waiter. Never returns. */
_Noreturn void hang_for_the_watchdog(void);

#define PF_ERR_PRESENT 0x1u
#define PF_ERR_WRITE 0x2u
#define PF_ERR_USER 0x4u
#define PF_ERR_RSVD 0x8u
#define PF_ERR_FETCH 0x10u

typedef struct fault_record {
    bool hit;
    unsigned vector;
    uint64_t cr2;
    uint64_t error;
    uint64_t rip;
    uint64_t cs;     /* of the faulting context: RPL 3 = user mode */
    char where[160]; /* classification of cr2 */
} fault_record_t;

const char *pf_error_str(uint64_t err, char *buf, size_t size);
/* Frame pointers below this are not the kernel's (the HHDM starts here with
 * 5 levels, above it with 4). */
#define ARCH_FRAME_VA_MIN UINT64_C(0xff00000000000000)
/* The frame pointer mm_hook_panic's backtrace starts from: its caller's,
 * the frame above the return address it prints first. */
#define ARCH_PANIC_FRAME() (*(const uint64_t *)__builtin_frame_address(0))
void fault_handle(isr_frame_t *frame);

/* ---- tlb.c -------------------------------------------------------------- */
extern unsigned hook_tlb_page_calls, hook_tlb_all_calls, hook_root_switches;
/* tlb.c: PCIDs (CR4.PCIDE) on when the CPU has them; switches that kept a
 * PCID's entries (CR3 bit 63), identities retired, INVPCIDs issued. */
extern bool tlb_pcid_on;
/* A CPU set marked "all CPUs", for the kernel's own full flushes. */
extern const mm_cpuset_t tlb_cpus_all;
extern unsigned hook_noflush_switches, hook_asid_retires, hook_invpcid_calls;
void tlb_pcid_enable(void);

/* ---- kmain.c: the kernel's memory state, shared by the checks ---------- */
void kmain(uint32_t info_phys, uint32_t protocol);

/* ---- early_map.c ---------------------------------------------------------- */
/* Makes the boot HHDM cover exactly [0, align_up(top, 1 GiB)): grows or
 * trims it. Returns the mapped size. */
uint64_t early_hhdm_extend(uint64_t top);
/* Drops the boot identity map: the lower half is empty afterwards. */
void early_drop_identity(void);

/* ---- checks ---------------------------------------------------------------- */
void checks_boot(void);
void checks_layout(void);

#endif /* KTEST_KERNEL_H */
