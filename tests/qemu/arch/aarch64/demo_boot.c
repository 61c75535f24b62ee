/*
 * Test kernel (AArch64): the demo report's architecture sections. The CPU
 * and the translation regime it runs, the boot path (Image header, EL,
 * device tree) and the map handed to pmm_init, and the kernel tables as
 * paging-aarch64 walks them.
 */
#include "cpu.h"
#include "demo.h"
#include "kernel.h"
#include "kmem.h"

const char *arch_name(void)
{
    return "AArch64";
}

void demo_machine(void)
{
    demo_rule("machine");
    uint64_t midr = READ_SYSREG(midr_el1);
    uint64_t mmfr0 = READ_SYSREG(id_aa64mmfr0_el1);
    uint64_t tcr = READ_SYSREG(tcr_el1);
    kprintf("  CPU         MIDR_EL1 %#lx (implementer %#lx, part %#lx), PARange %lu\n", midr,
            midr >> 24, (midr >> 4) & 0xfff, mmfr0 & 0xf);
    kprintf("  features    4 KiB granule%s, %u-bit ASIDs\n",
            ((mmfr0 >> 28) & 0xf) == 1 ? " with FEAT_LPA2 (52-bit)" : "", tlb_asid_bits);
    kprintf("  paging      %lu-bit VA, %u levels: TTBR1_EL1 kernel root, TTBR0_EL1 user roots "
            "(T0SZ %lu, T1SZ %lu%s)\n",
            boot_va_bits, kernel_pt.levels, TCR_T0SZ(tcr), TCR_T1SZ(tcr),
            (tcr & TCR_DS) ? ", DS" : "");
    kprintf("  command     \"%s\"\n", boot_info.cmdline);
    char k[32];
    demo_human(k, sizeof k, kernel_image_phys_end() - kernel_image_phys_start());
    kprintf("  kernel      phys %#lx-%#lx (%s), virt %p\n", kernel_image_phys_start(),
            kernel_image_phys_end(), k, (void *)__kernel_start);
}

static const char *type_name(pmm_region_type_t t)
{
    switch (t) {
    case PMM_REGION_USABLE: return "usable";
    case PMM_REGION_RESERVED: return "reserved";
    case PMM_REGION_KERNEL_AND_MODULES: return "kernel and modules";
    case PMM_REGION_BOOTLOADER_RECLAIMABLE: return "bootloader reclaimable";
    default: return "other";
    }
}

void demo_boot(void)
{
    demo_rule("boot");
    kprintf("  protocol    Linux arm64 Image (QEMU -kernel), entered at EL%lu%s\n", boot_entry_el,
            boot_entry_el == 2 ? ", dropped to EL1" : "");
    kprintf("  device tree phys %#lx, %lu bytes (kept reserved); %zu /memory range(s), %u "
            "rsvmap entries, %u /reserved-memory nodes\n",
            boot_info.info_phys, boot_info.info_size, boot_info.ram_run_count,
            boot_info.rsvmap_entries, boot_info.reserved_nodes);
    kprintf("  console     PL011 at %#lx\n", boot_info.uart_phys);
    demo_rule("memory map handed to pmm_init");
    for (size_t i = 0; i < kernel_pmm_map_count; i++) {
        const pmm_region_t *r = &kernel_pmm_map[i];
        char sz[32];
        demo_human(sz, sizeof sz, r->length);
        kprintf("  %#014lx-%#014lx %12s  %s\n", r->base, r->base + r->length - 1, sz,
                type_name(r->type));
    }
}

void demo_reclaim(void)
{
    demo_rule("bootloader memory");
    kprintf("  none: a device tree names no bootloader-reclaimable memory (%lu frames released)\n",
            kernel_reclaim.released_frames);
}

const char *arch_demo_mem_type_name(mm_mem_type_t type)
{
    static const char *const names[MM_MEM_TYPE_COUNT] = {
        [MM_MEM_WRITE_BACK] = "WB",     [MM_MEM_WRITE_THROUGH] = "WT",
        [MM_MEM_WRITE_COMBINING] = "NC", [MM_MEM_NORMAL_NC] = "NC",
        [MM_MEM_DEVICE] = "Dev",
    };
    return (unsigned)type < MM_MEM_TYPE_COUNT ? names[type] : "?";
}

void arch_demo_tables_header(void)
{
    kprintf("  TTBR1_EL1 root %#lx (%u levels), MAIR_EL1 %#lx (WB WT NC Device-nGnRE)\n",
            kernel_root, kernel_pt.levels, READ_SYSREG(mair_el1));
}

typedef struct walk_adapter {
    demo_leaf_fn fn;
    void *arg;
} walk_adapter_t;

static bool walk_leaf(void *arg, const a64pt_leaf_t *leaf)
{
    walk_adapter_t *w = arg;
    demo_leaf_t l = {leaf->va, leaf->pa, leaf->size, leaf->flags};
    return w->fn(w->arg, &l);
}

void arch_demo_walk(demo_leaf_fn fn, void *arg)
{
    walk_adapter_t w = {fn, arg};
    a64pt_walk(&kernel_pt, kernel_root, 0, UINT64_MAX, walk_leaf, &w);
}

void arch_demo_tables_audit(void)
{
    a64pt_audit_counts_t counts = {0};
    a64pt_audit(&kernel_pt, kernel_root, NULL, NULL, &counts);
    a64pt_check_info_t info = {0};
    a64pt_check(&kernel_pt, kernel_root, &info);
    kprintf("  audit: %zu writable+executable, %zu EL0-accessible kernel pages; %zu tables, "
            "%zu leaves\n",
            counts.wx, counts.kernel_el0_leaves, info.kernel_tables + info.user_tables,
            info.leaves);
}
