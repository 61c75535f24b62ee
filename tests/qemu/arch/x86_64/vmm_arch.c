/*
 * Test kernel (x86_64): the architecture side of the common VMM checks
 * (common/arch.h): the local APIC as the MMIO device, ring-3 code, PCIDs
 * in CR3, a second x86pt mapper.
 */
#include "kmem.h"

#if KTEST_HAVE_VMM
#include "cpu.h"

const char *arch_fault_str(const fault_record_t *rec, char *buf, size_t size)
{
    if (rec->vector == 8) {
        ksnprintf(buf, size, "double fault on IST1");
        return buf;
    }
    char how[64];
    ksnprintf(buf, size, "page fault, %s, err %#lx", pf_error_str(rec->error, how, sizeof how),
              rec->error);
    return buf;
}

static bool apic_plausible(volatile void *regs, char *what, size_t size)
{
    uint32_t ver = *(volatile uint32_t *)((uintptr_t)regs + 0x10);
    ksnprintf(what, size, "APIC version register reads %#x (version %#x, %u LVT entries)", ver,
              ver & 0xff, ((ver >> 16) & 0xff) + 1);
    return (ver & 0xff) != 0 && ver != 0xffffffffu && ((ver >> 16) & 0xff) >= 3;
}

const arch_mmio_device_t *arch_mmio_device(void)
{
    static const arch_mmio_device_t apic = {0xfee00020u, 0x20, "local APIC", apic_plausible};
    return &apic;
}

const arch_user_program_t *arch_user_program(void)
{
    static const uint8_t code[] = {
        0x48, 0xc7, 0x07, 0xef, 0xbe, 0xad, 0xde, /* movq $0xffffffffdeadbeef, (%rdi) */
        0x48, 0x8b, 0x06,                         /* movq (%rsi), %rax */
        0xeb, 0xfe,                               /* jmp . */
    };
    static const arch_user_program_t prog = {code, sizeof code, 7};
    return &prog;
}

/* x86 keeps instruction fetch coherent with stores. */
void arch_sync_icache(void *p, size_t size)
{
    (void)p;
    (void)size;
}

void arch_check_user_mode(uint64_t code, uint64_t sp, uint64_t data)
{
    (void)code;
    (void)sp;
    (void)data;
}

void arch_identities_report(void)
{
    bool wanted = cmdline_has("pcid");
    tap_check(tlb_pcid_on || !wanted,
              "vmm: PCIDs %s (CPUID.01H:ECX.PCID %d, INVPCID %d)%s",
              tlb_pcid_on ? "on (CR4.PCIDE)" : "off", cpu_feat.pcid, cpu_feat.invpcid,
              tlb_pcid_on ? "" : wanted ? ", but the command line asks for them"
                                        : ": identities are given to the hooks and ignored");
}

bool arch_identities_tag_entries(void)
{
    return tlb_pcid_on;
}

unsigned arch_kept_switches(void)
{
    return hook_noflush_switches;
}

uint64_t arch_current_tag(void)
{
    return read_cr3() & CR3_PCID_MASK;
}

mm_paddr_t arch_current_user_root(void)
{
    return read_cr3() & ~CR3_PCID_MASK;
}

bool arch_on_kernel_root(void)
{
    return read_cr3() == kernel_root;
}

uint64_t arch_root_reg(void)
{
    return read_cr3();
}

const char *arch_identity_invalidation(void)
{
    return !tlb_pcid_on ? "no PCIDs" : cpu_feat.invpcid ? "INVPCID" : "flushed at the switch";
}

mm_status_t arch_mapper_like_kernel(mm_frame_allocator_t frames, mm_page_mapper_t *out)
{
    static x86pt_t pt2;
    x86pt_config_t cfg = {
        .levels = kernel_pt.levels,
        .phys_bits = kernel_pt.phys_bits,
        .nx = kernel_pt.nx,
        .pages_1g = kernel_pt.pages_1g,
        .frames = frames,
    };
    mm_status_t st = x86pt_init(&pt2, &cfg);
    if (st == MM_OK)
        *out = x86pt_page_mapper(&pt2);
    return st;
}
#endif
