/*
 * Test kernel checks: boot state, the HHDM and the layout, and the fault
 * machinery the later checks rely on.
 */
#include <hadron/mm/config.h>
#include <hadron/mm/hhdm.h>

#include "cpu.h"
#include "kernel.h"
#include "kmem.h"

extern mm_status_t hhdm_init_status, layout_status;
extern uint64_t early_mapped_bytes;

void checks_boot(void)
{
    tap_check(true, "boot: %s entry, long mode, kmain at %p on stack %p", boot_protocol_name(),
              (void *)(uintptr_t)kmain, (void *)__builtin_frame_address(0));
    tap_diag("cpu: %s phys %u bits virt %u bits nx=%d 1g=%d pge=%d pat=%d la57=%d",
             cpu_feat.vendor, cpu_feat.phys_bits, cpu_feat.virt_bits, cpu_feat.nx,
             cpu_feat.page1g, cpu_feat.pge, cpu_feat.pat, cpu_feat.la57);
    tap_check(boot_info.map_count > 0 && boot_info.ram_bytes > 0,
              "boot: %s: %u firmware ranges, %zu in the PMM's terms (%s), %lu MiB RAM, top %#lx",
              boot_protocol_name(), boot_info.memmap_count, boot_info.map_count,
              boot_info.map_source, boot_info.ram_bytes / MM_MIB, boot_info.phys_top);

    tap_check(boot_info.la57_requested == cmdline_has("la57"),
              "boot: the stub's command-line scan agrees with kmain's (la57 %s)",
              boot_info.la57_requested ? "requested" : "not requested");
    uint64_t cr4 = read_cr4();
    bool la57_on = (cr4 & CR4_LA57) != 0;
    if (boot_info.la57_requested && !cpu_feat.la57)
        tap_skip("CPU has no LA57", "boot: 5-level paging requested");
    else if (boot_info.la57_requested)
        tap_check(la57_on && boot_info.la57, "boot: 5-level paging on (CR4.LA57)");
    else
        tap_check(!la57_on, "boot: 4-level paging (no la57 requested)");
    tap_check((read_cr0() & CR0_WP) != 0, "boot: CR0.WP set");
    tap_check(!cpu_feat.nx || (rdmsr(MSR_EFER) & EFER_NXE) != 0,
              "boot: EFER.NXE %s", cpu_feat.nx ? "on" : "(CPU has no NX)");
}

static volatile uint64_t alias_probe;

void checks_layout(void)
{
    /* HHDM */
    tap_check(hhdm_init_status == MM_OK && hhdm_is_ready() && hhdm_offset() == hhdm_base,
              "hhdm: set at %#lx, window %lu GiB (%s)", hhdm_base,
              hhdm_window_size / MM_GIB, mm_status_str(hhdm_init_status));
    tap_check(early_mapped_bytes >= hhdm_window_size,
              "hhdm: boot tables map %lu GiB >= window", early_mapped_bytes / MM_GIB);

    uint64_t pa = kernel_virt_to_phys((const void *)&alias_probe);
    volatile uint64_t *alias = hhdm_phys_to_virt(pa);
    alias_probe = 0x1122334455667788u;
    bool ok = *alias == 0x1122334455667788u;
    *alias = 0x8877665544332211u;
    ok = ok && alias_probe == 0x8877665544332211u;
    tap_check(ok, "hhdm: kernel-image variable and its HHDM alias %p see each other's writes",
              (void *)alias);

    /* The top of RAM (above 4 GiB with -m 8G) through the HHDM. */
    volatile uint64_t *top = hhdm_phys_to_virt(boot_info.phys_top - 8);
    uint64_t saved = *top;
    *top = 0xa5a5a5a55a5a5a5au ^ boot_info.phys_top;
    bool top_ok = *top == (0xa5a5a5a55a5a5a5au ^ boot_info.phys_top);
    *top = saved;
    tap_check(top_ok,
              "hhdm: last RAM word (phys %#lx) written and read at %p", boot_info.phys_top - 8,
              (void *)top);

    mm_paddr_t back = 0;
    void *v = NULL;
    tap_check(hhdm_virt_to_phys_checked((const void *)alias, &back) == MM_OK && back == pa &&
                  hhdm_phys_to_virt_checked(hhdm_window_size, &v) == MM_ERR_RANGE &&
                  hhdm_virt_to_phys_checked(__kernel_start, &back) == MM_ERR_RANGE,
              "hhdm: checked conversions round-trip and reject outside the window");

    /* Layout */
    if (!tap_check(layout_status == MM_OK, "layout: computed for %u-level paging (%s)",
                   boot_info.la57 ? 5 : 4, mm_status_str(layout_status)))
        return;
    const layout_t *l = &kernel_layout;
    for (unsigned id = 0; id < LAYOUT_REGION_COUNT; id++)
        tap_diag("layout: %-7s %016lx - %016lx %8lu GiB", layout_region_name(id),
                 l->regions[id].base, l->regions[id].base + l->regions[id].size - 1,
                 l->regions[id].size / MM_GIB);
    tap_check(layout_find(l, (uint64_t)(uintptr_t)__kernel_start) == LAYOUT_KERNEL_IMAGE &&
                  layout_find(l, (uint64_t)(uintptr_t)__kernel_end - 1) == LAYOUT_KERNEL_IMAGE &&
                  layout_find(l, (uint64_t)(uintptr_t)&alias_probe) == LAYOUT_KERNEL_IMAGE,
              "layout: the running image [%p, %p) lies in the kernel region",
              (void *)__kernel_start, (void *)__kernel_end);
    tap_check(layout_find(l, hhdm_base) == LAYOUT_HHDM &&
                  layout_find(l, (uint64_t)(uintptr_t)top) == LAYOUT_HHDM &&
                  l->regions[LAYOUT_HHDM].size >= boot_info.phys_top,
              "layout: the HHDM region covers all RAM");
    tap_check(layout_find(l, 0x1000) == LAYOUT_NONE &&
                  layout_find(l, l->regions[LAYOUT_HEAP].base - 1) == LAYOUT_NONE,
              "layout: lower half and guard gaps belong to no region");
    mm_va_space_t mapper_space;
    x86pt_va_space(&kernel_pt, &mapper_space);
    tap_check(l->space.kernel_lo == (boot_info.la57 ? UINT64_C(0xff00000000000000)
                                                    : UINT64_C(0xffff800000000000)) &&
                  mm_va_space_equal(&l->space, &mapper_space) && !l->space.kernel_root_separate,
              "layout: kernel range starts at %#lx, the mapper's address space (%u levels)",
              l->space.kernel_lo, l->space.levels);

    /* The fault machinery: an unmapped heap address must fault, be
     * recorded with the right CR2 and error code, and be classified. */
    fault_record_t rec;
    /* The last page of the heap region: the heap grows from its base. */
    uint64_t heap_va = l->regions[LAYOUT_HEAP].base + l->regions[LAYOUT_HEAP].size - 0x1000 + 0x238;
    char how[64];
    bool hit = fault_probe_read(heap_va, &rec);
    tap_check(hit && rec.vector == 14 && rec.cr2 == heap_va && rec.error == 0,
              "fault: read of unmapped %#lx -> #PF cr2=%#lx err=%#lx (%s) in %s", heap_va,
              rec.cr2, rec.error, pf_error_str(rec.error, how, sizeof how), rec.where);
    uint64_t gap_va = l->regions[LAYOUT_STACKS].base - 0x10;
    hit = fault_probe_write(gap_va, 42, &rec);
    tap_check(hit && rec.vector == 14 && rec.cr2 == gap_va && rec.error == PF_ERR_WRITE,
              "fault: write to guard gap %#lx -> #PF err=%#lx (%s) in %s", gap_va, rec.error,
              pf_error_str(rec.error, how, sizeof how), rec.where);
    hit = fault_probe_read((uint64_t)(uintptr_t)&alias_probe, &rec);
    tap_check(!hit, "fault: a mapped read does not fault");
    hit = fault_probe_read(KERNEL_PHYS_BASE, &rec);
    tap_check(hit && rec.cr2 == KERNEL_PHYS_BASE,
              "fault: boot identity map dropped (read of %#lx faults: %s)", KERNEL_PHYS_BASE,
              rec.where);
}
