/*
 * Test kernel: the demo report's x86_64 sections. The CPU, how the kernel
 * was booted, the firmware's memory map exactly as it arrived (and, on UEFI
 * machines, the EFI descriptors summarised by type with the PMM type each
 * becomes), the map handed to pmm_init, what reclaiming the bootloader's
 * memory gave back, and the kernel tables as paging-x86_64 walks them.
 */
#include "cpu.h"
#include "demo.h"
#include "kernel.h"
#include "kmem.h"
#include "multiboot2.h"

const char *arch_name(void)
{
    return "x86_64";
}

void demo_machine(void)
{
    demo_rule("machine");
    kprintf("  CPU         %s, %u-bit physical, %u-bit virtual addresses\n", cpu_feat.vendor,
            cpu_feat.phys_bits, cpu_feat.virt_bits);
    kprintf("  features    NX %s, 1 GiB pages %s, global pages %s, PAT %s, LA57 %s\n",
            cpu_feat.nx ? "yes" : "no", cpu_feat.page1g ? "yes" : "no",
            cpu_feat.pge ? "yes" : "no", cpu_feat.pat ? "yes" : "no",
            cpu_feat.la57 ? "yes" : "no");
    kprintf("  paging      %u-level%s\n", boot_info.la57 ? 5 : 4,
            boot_info.la57_requested && !boot_info.la57 ? " (5-level requested, CPU lacks it)"
                                                        : "");
    kprintf("  command     \"%s\"\n", boot_info.cmdline);
    char k[32];
    demo_human(k, sizeof k, kernel_image_phys_end() - kernel_image_phys_start());
    kprintf("  kernel      phys %#lx-%#lx (%s), virt %p\n", kernel_image_phys_start(),
            kernel_image_phys_end(), k, (void *)__kernel_start);
}

#if KTEST_HAVE_PAGING
const char *arch_demo_mem_type_name(mm_mem_type_t type)
{
    static const char *const names[MM_MEM_TYPE_COUNT] = {
        [MM_MEM_WRITE_BACK] = "WB",     [MM_MEM_WRITE_THROUGH] = "WT",
        [MM_MEM_WRITE_COMBINING] = "WC", [MM_MEM_NORMAL_NC] = "UC-",
        [MM_MEM_DEVICE] = "UC",
    };
    return (unsigned)type < MM_MEM_TYPE_COUNT ? names[type] : "?";
}

void arch_demo_tables_header(void)
{
    kprintf("  root %#lx (%u-level), PAT MSR %#lx (WB WT UC- UC WC ...)\n", kernel_root,
            kernel_pt.levels, rdmsr(MSR_PAT));
}

typedef struct walk_adapter {
    demo_leaf_fn fn;
    void *arg;
} walk_adapter_t;

static bool walk_leaf(void *arg, const x86pt_leaf_t *leaf)
{
    walk_adapter_t *w = arg;
    demo_leaf_t l = {leaf->va, leaf->pa, leaf->size, leaf->flags};
    return w->fn(w->arg, &l);
}

void arch_demo_walk(demo_leaf_fn fn, void *arg)
{
    walk_adapter_t w = {fn, arg};
    x86pt_walk(&kernel_pt, kernel_root, 0, UINT64_MAX, walk_leaf, &w);
}

void arch_demo_tables_audit(void)
{
    x86pt_audit_counts_t counts = {0};
    x86pt_audit(&kernel_pt, kernel_root, NULL, NULL, &counts);
    x86pt_check_info_t info = {0};
    x86pt_check(&kernel_pt, kernel_root, &info);
    kprintf("  audit: %zu writable+executable, %zu user pages in the kernel half; "
            "%zu tables, %zu leaves\n",
            counts.wx, counts.kernel_user_leaves, info.kernel_tables + info.user_tables,
            info.leaves);
}
#endif

static void demo_protocol(void)
{
    demo_rule("boot");
    if (boot_info.protocol == BOOT_PROTO_PVH) {
        kprintf("  protocol    PVH (QEMU -kernel): hvm_start_info, e820 table\n");
        return;
    }
    kprintf("  protocol    Multiboot2 from \"%s\"\n", boot_info.loader_name);
    kprintf("  boot info   phys %#lx, %lu bytes, %u tags (kept reserved: the kernel points "
            "into it)\n",
            boot_info.info_phys, boot_info.info_size, boot_info.info_tags);
    if (boot_info.efi64 || boot_info.efi)
        kprintf("  firmware    UEFI: %s system table at %#lx, boot services exited\n",
                boot_info.efi64 ? "EFI64" : "EFI32", boot_info.efi_systab);
    else
        kprintf("  firmware    BIOS (no EFI tags)\n");
    if (boot_info.have_meminfo)
        kprintf("  meminfo     lower %u KiB, upper %u KiB (up to the first hole above 1 MiB)\n",
                boot_info.mem_lower_kib, boot_info.mem_upper_kib);
    if (boot_info.rsdp)
        kprintf("  ACPI        RSDP copy at %#lx\n", boot_info.rsdp);
}

static void demo_firmware_map(void)
{
    demo_rule(boot_info.protocol == BOOT_PROTO_PVH ? "firmware memory map (PVH e820 table)"
                                                   : "firmware memory map (Multiboot2 tag 6)");
    kprintf("  %-18s %-18s %12s  %s\n", "start", "end", "size", "type");
    for (unsigned i = 0; i < boot_info.memmap_count; i++) {
        const boot_mem_range_t *r = &boot_info.memmap[i];
        char sz[32];
        demo_human(sz, sizeof sz, r->size);
        kprintf("  0x%016lx 0x%016lx %12s  %u %s\n", r->addr, r->addr + r->size, sz, r->type,
                r->type <= 5 ? e820_type_name(r->type) : "(undefined: reserved)");
    }
    if (boot_info.memmap_dropped)
        kprintf("  (%u more entries not kept for this report)\n", boot_info.memmap_dropped);
    char ram[32];
    demo_human(ram, sizeof ram, boot_info.ram_bytes);
    kprintf("  RAM (usable + reclaimable, from the %s): %s, highest address %#lx\n",
            boot_info.map_source, ram, boot_info.phys_top);
}

static void demo_efi_summary(void)
{
    if (!boot_info.efi)
        return;
    const efi_mmap_summary_t *s = &boot_info.efi_summary;
    char title[96];
    ksnprintf(title, sizeof title, "EFI memory map: %u descriptors of %u bytes (version %u)",
              s->descriptors, boot_info.efi_desc_size, boot_info.efi_desc_version);
    demo_rule(title);
    kprintf("  %-22s %6s %9s %12s   %s\n", "EFI type", "descs", "pages", "size", "PMM type");
    for (unsigned t = 0; t <= EFI_MEMORY_TYPE_COUNT; t++) {
        if (s->type[t].count == 0)
            continue;
        char sz[32];
        demo_human(sz, sizeof sz, s->type[t].pages * EFI_PAGE_SIZE);
        kprintf("  %-22s %6u %9lu %12s   %s\n",
                t < EFI_MEMORY_TYPE_COUNT ? efi_type_name(t) : "unknown types", s->type[t].count,
                s->type[t].pages, sz,
                pmm_region_type_str(efi_type_to_pmm(t < EFI_MEMORY_TYPE_COUNT ? t : UINT32_MAX)));
    }
    if (s->empty)
        kprintf("  (%u empty descriptors skipped)\n", s->empty);
}

static void demo_pmm_map(void)
{
#if KTEST_HAVE_PMM
    char title[96];
    ksnprintf(title, sizeof title, "map handed to pmm_init (%s, merged)", boot_info.map_source);
    demo_rule(title);
    kprintf("  %-18s %-18s %12s  %s\n", "start", "end", "size", "type");
    for (size_t i = 0; i < kernel_pmm_map_count; i++) {
        const pmm_region_t *r = &kernel_pmm_map[i];
        char sz[32];
        demo_human(sz, sizeof sz, r->length);
        const char *what = i < boot_info.map_count                      ? ""
                           : r->base == kernel_image_phys_start()       ? "  (this kernel)"
                                                                        : "  (boot information)";
        kprintf("  0x%016lx 0x%016lx %12s  %s%s\n", r->base, r->base + r->length, sz,
                pmm_region_type_str(r->type), what);
    }
#endif
}

void demo_boot(void)
{
    demo_protocol();
    demo_firmware_map();
    demo_efi_summary();
    demo_pmm_map();
}

void demo_reclaim(void)
{
#if KTEST_HAVE_PMM
    demo_rule("bootloader memory given back (pmm_release)");
    uint64_t bytes = 0;
    unsigned ranges = 0;
    for (size_t i = 0; i < boot_info.map_count; i++)
        if (boot_info.map[i].type == PMM_REGION_BOOTLOADER_RECLAIMABLE) {
            bytes += boot_info.map[i].length;
            ranges++;
        }
    if (ranges == 0) {
        kprintf("  nothing to give back: the %s has no bootloader-reclaimable ranges\n",
                boot_info.map_source);
        return;
    }
    if (kernel_reclaim_status != MM_OK) {
        kprintf("  not run (%s)\n", mm_status_str(kernel_reclaim_status));
        return;
    }
    char a[32], b[32];
    demo_human(a, sizeof a, bytes);
    kprintf("  reclaimable    %s in %u ranges of the %s\n", a, ranges, boot_info.map_source);
    demo_human(b, sizeof b, kernel_reclaim.released_frames * MM_PAGE_SIZE);
    kprintf("  released       %lu frames (%s) in %u runs, %s\n", kernel_reclaim.released_frames,
            b, kernel_reclaim.runs, mm_status_str(kernel_reclaim.status));
    kprintf("  free frames    %lu -> %lu\n", kernel_reclaim_free_before, kernel_reclaim_free_after);
    if (kernel_reclaim.beyond_span_frames) {
        demo_human(b, sizeof b, kernel_reclaim.beyond_span_frames * MM_PAGE_SIZE);
        kprintf("  not released   %lu frames (%s) above the highest usable frame, where the "
                "PMM's bitmap ends\n",
                kernel_reclaim.beyond_span_frames, b);
    }
    kprintf("  kept reserved  the kernel image and the boot information, inside loader memory\n");
#endif
}
