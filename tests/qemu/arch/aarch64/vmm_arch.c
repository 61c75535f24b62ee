/*
 * Test kernel (AArch64): the architecture side of the common VMM checks
 * (common/arch.h): the PL011's identification registers as the MMIO
 * device, EL0 code and the SVC round trip, ASIDs in TTBR0_EL1, a second
 * a64pt mapper.
 */
#include "cpu.h"
#include "kmem.h"
#include "smp.h"

extern unsigned hook_kept_switches;

const char *arch_fault_str(const fault_record_t *rec, char *buf, size_t size)
{
    return esr_str(rec->esr, buf, size);
}

/* PrimeCell identification (PL011 TRM): PeriphID0/1 = 0x11, 0x10 (part
 * 0x011, designer Arm), CellID0..3 = 0x0d, 0xf0, 0x05, 0xb1, at 0xfe0. */
static bool pl011_plausible(volatile void *regs, char *what, size_t size)
{
    volatile uint32_t *r = regs;
    uint32_t p0 = r[0] & 0xff, p1 = r[1] & 0xff;
    uint32_t c0 = r[4] & 0xff, c1 = r[5] & 0xff, c2 = r[6] & 0xff, c3 = r[7] & 0xff;
    ksnprintf(what, size, "PL011 identification reads PeriphID %02x %02x, CellID %02x %02x %02x %02x",
              p0, p1, c0, c1, c2, c3);
    return p0 == 0x11 && p1 == 0x10 && c0 == 0x0d && c1 == 0xf0 && c2 == 0x05 && c3 == 0xb1;
}

const arch_mmio_device_t *arch_mmio_device(void)
{
    static arch_mmio_device_t dev = {0, 0x20, "PL011 identification registers", pl011_plausible};
    dev.phys = boot_info.uart_phys + 0xfe0;
    return &dev;
}

#define PROG_SVC_OFFSET 28u

const arch_user_program_t *arch_user_program(void)
{
    static const uint8_t code[] = {
        0xe9, 0xdd, 0x97, 0xd2, /*  0: movz x9, #0xbeef */
        0xa9, 0xd5, 0xbb, 0xf2, /*  4: movk x9, #0xdead, lsl #16 */
        0xe9, 0xff, 0xdf, 0xf2, /*  8: movk x9, #0xffff, lsl #32 */
        0xe9, 0xff, 0xff, 0xf2, /* 12: movk x9, #0xffff, lsl #48 */
        0x09, 0x00, 0x00, 0xf9, /* 16: str x9, [x0] */
        0x29, 0x00, 0x40, 0xf9, /* 20: ldr x9, [x1] */
        0x00, 0x00, 0x00, 0x14, /* 24: b . */
        0x01, 0x00, 0x00, 0xf9, /* 28: str x1, [x0] */
        0x41, 0x08, 0x00, 0xd4, /* 32: svc #0x42 */
        0x00, 0x00, 0x00, 0x14, /* 36: b . */
    };
    static const arch_user_program_t prog = {code, sizeof code, 20};
    return &prog;
}

/* Instructions written as data: clean the data cache to the point of
 * unification, then invalidate the instruction cache (Arm ARM,
 * "Concurrent modification and execution of instructions"). */
void arch_sync_icache(void *p, size_t size)
{
    for (uintptr_t a = (uintptr_t)p & ~(uintptr_t)63; a < (uintptr_t)p + size; a += 64)
        __asm__ __volatile__("dc cvau, %0" : : "r"(a) : "memory");
    dsb_ish();
    __asm__ __volatile__("ic ialluis" : : : "memory");
    dsb_ish();
    isb();
}

typedef struct svc_run {
    uint64_t pc, sp, arg0, arg1;
} svc_run_t;

static void run_svc(void *arg)
{
    svc_run_t *u = arg;
    enter_user(u->pc, u->sp, u->arg0, u->arg1);
}

/* The EL0 round trip: ERET into EL0 code that stores its second argument
 * to its page and calls SVC #0x42; the SVC comes back to EL1 (ESR_EL1.EC
 * 0x15, ELR after the SVC) with the registers EL0 left. */
void arch_check_user_mode(uint64_t code, uint64_t sp, uint64_t data)
{
    const uint64_t token = 0x5a5a0123456789a5u;
    volatile uint64_t *d = (volatile uint64_t *)(uintptr_t)data;
    d[0] = 0;
    svc_run_t run = {code + PROG_SVC_OFFSET, sp, data, token};
    fault_record_t rec;
    bool hit = fault_expect(run_svc, &run, &rec);
    tap_check(hit && rec.ec == EC_SVC64 && rec.from_el0 && rec.svc == 0x42 &&
                  rec.elr == code + PROG_SVC_OFFSET + 8 && rec.x0 == data && d[0] == token,
              "vmm: EL0 round trip: ERET to EL0 at %#lx, it stored to its page and came back "
              "with SVC #%#x (ESR %#lx, ELR %#lx)",
              code + PROG_SVC_OFFSET, rec.svc, rec.esr, rec.elr);
}

void arch_identities_report(void)
{
    uint64_t tcr = READ_SYSREG(tcr_el1);
    tap_check(tlb_asid_bits == ((tcr & TCR_AS) ? 16u : 8u) && !(tcr & (UINT64_C(1) << 22)),
              "vmm: ASIDs on: %u-bit, in TTBR0_EL1[63:48] (TCR_EL1.A1 0); kernel entries "
              "global (nG 0), user entries tagged",
              tlb_asid_bits);
}

bool arch_identities_tag_entries(void)
{
    return true;
}

unsigned arch_kept_switches(void)
{
    return hook_kept_switches;
}

uint64_t arch_current_tag(void)
{
    return READ_SYSREG(ttbr0_el1) >> TTBR_ASID_SHIFT;
}

mm_paddr_t arch_current_user_root(void)
{
    if (READ_SYSREG(tcr_el1) & TCR_EPD0)
        return 0;
    return READ_SYSREG(ttbr0_el1) & ((UINT64_C(1) << TTBR_ASID_SHIFT) - 1);
}

bool arch_on_kernel_root(void)
{
    return (READ_SYSREG(tcr_el1) & TCR_EPD0) && READ_SYSREG(ttbr1_el1) == kernel_root;
}

uint64_t arch_root_reg(void)
{
    return READ_SYSREG(ttbr0_el1);
}

const char *arch_identity_invalidation(void)
{
    /* tlb.c: broadcast only when another CPU may hold the entries. */
    return smp_online > 1 ? "TLBI VAE1IS for the ASID"
                          : "TLBI VAE1 for the ASID, local: no other CPU online";
}

mm_status_t arch_mapper_like_kernel(mm_frame_allocator_t frames, mm_page_mapper_t *out)
{
    static a64pt_t pt2;
    a64pt_config_t cfg = {
        .va_bits = kernel_pt.va_bits,
        .lpa2 = kernel_pt.lpa2,
        .phys_bits = kernel_pt.phys_bits,
        .kernel_root_separate = kernel_pt.separate,
        .kernel_root = kernel_root,
        .frames = frames,
    };
    mm_status_t st = a64pt_init(&pt2, &cfg);
    if (st == MM_OK)
        *out = a64pt_page_mapper(&pt2);
    return st;
}
