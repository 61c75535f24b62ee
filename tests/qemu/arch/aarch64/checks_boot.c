/*
 * Test kernel (AArch64) checks: how the kernel was entered and what the
 * CPU is running with (exception level, MMU, MAIR, TCR, vectors), then the
 * HHDM and the layout.
 */
#include <hadron/mm/a64pt.h>
#include <hadron/mm/hhdm.h>

#include "cpu.h"
#include "kernel.h"
#include "kmem.h"

extern uint64_t early_mapped_bytes;

void checks_boot(void)
{
    uint64_t el = (READ_SYSREG(CurrentEL) >> 2) & 3;
    tap_check(el == 1 && (boot_entry_el == 1 || boot_entry_el == 2),
              "boot: Image header entry at EL%lu%s, kmain at EL%lu, image loaded at %#lx",
              boot_entry_el, boot_entry_el == 2 ? " (HCR_EL2.RW set, ERET to EL1h)" : "", el,
              kernel_phys_base);
    tap_check(boot_info.info_size >= 40 && boot_info.ram_run_count > 0,
              "boot: device tree at %#lx (%lu bytes, x0 at entry): %zu /memory range(s), %lu MiB "
              "RAM, top %#lx; %u rsvmap entr%s, %u /reserved-memory node(s)",
              boot_dtb_phys, boot_info.info_size, boot_info.ram_run_count,
              boot_info.ram_bytes / MM_MIB, boot_info.phys_top, boot_info.rsvmap_entries,
              boot_info.rsvmap_entries == 1 ? "y" : "ies", boot_info.reserved_nodes);
    tap_check(boot_info.uart_phys != 0, "boot: PL011 (\"arm,pl011\") at %#lx from the device tree",
              boot_info.uart_phys);

    uint64_t sctlr = READ_SYSREG(sctlr_el1);
    uint64_t mair = READ_SYSREG(mair_el1);
    tap_check((sctlr & SCTLR_M) && (sctlr & SCTLR_C) && !(sctlr & SCTLR_WXN) &&
                  mair == A64PT_MAIR_EL1,
              "boot: MMU and data cache on (SCTLR_EL1 %#lx), MAIR_EL1 %#lx = A64PT_MAIR_EL1",
              sctlr, mair);

    uint64_t mmfr0 = READ_SYSREG(id_aa64mmfr0_el1);
    unsigned tgran4 = (unsigned)((mmfr0 >> 28) & 0xf);
    uint64_t tcr = READ_SYSREG(tcr_el1);
    bool lpa2 = tgran4 == 1;
    bool ds = (tcr & TCR_DS) != 0;
    unsigned want_t0 = lpa2 ? 12 : 16, want_t1 = want_t0;
    tap_check(boot_va_bits == (lpa2 ? 52u : 48u) && ds == lpa2 && TCR_T0SZ(tcr) == want_t0 &&
                  TCR_T1SZ(tcr) == want_t1,
              "boot: %lu-bit VA, %u lookup levels (ID_AA64MMFR0_EL1.TGran4 %u%s): TCR_EL1 T0SZ "
              "%lu, T1SZ %lu, DS %d",
              boot_va_bits, lpa2 ? 5u : 4u, tgran4, lpa2 ? ": FEAT_LPA2" : "", TCR_T0SZ(tcr),
              TCR_T1SZ(tcr), ds);
    unsigned asid_field = (unsigned)((mmfr0 >> 4) & 0xf);
    tap_check(tlb_asid_bits == (asid_field == 2 ? 16u : 8u),
              "boot: %u-bit ASIDs (ID_AA64MMFR0_EL1.ASIDBits %u, TCR_EL1.AS %d), IPS %lu",
              tlb_asid_bits, asid_field, (tcr & TCR_AS) != 0, (tcr >> 32) & 7);
    tap_check(READ_SYSREG(vbar_el1) == (uint64_t)(uintptr_t)exc_vectors,
              "boot: VBAR_EL1 = exception vectors at %p", (void *)exc_vectors);
}

static uint64_t probe_word;

void checks_layout(void)
{
    tap_check(hhdm_init_status == MM_OK && hhdm_offset() == hhdm_base,
              "hhdm: set at %#lx, window %lu GiB (%s)", hhdm_base,
              mm_align_up(boot_info.phys_top, MM_GIB) / MM_GIB, mm_status_str(hhdm_init_status));
    tap_check(early_mapped_bytes >= mm_align_up(boot_info.ram_bytes, MM_GIB),
              "hhdm: boot tables map %lu GiB of 1 GiB blocks over the /memory ranges",
              early_mapped_bytes / MM_GIB);
    volatile uint64_t *alias = hhdm_phys_to_virt(kernel_virt_to_phys(&probe_word));
    probe_word = 0x1122334455667788u;
    bool a = *alias == 0x1122334455667788u;
    *alias = 0x8877665544332211u;
    tap_check(a && *(volatile uint64_t *)&probe_word == 0x8877665544332211u,
              "hhdm: kernel-image variable and its HHDM alias %p see each other's writes",
              (void *)alias);
    if (!tap_check(kernel_layout_ready, "layout: computed for the %lu-bit space (%s)",
                   boot_va_bits, mm_status_str(layout_status)))
        return;
    for (unsigned i = 0; i < LAYOUT_REGION_COUNT; i++) {
        const layout_region_t *r = &kernel_layout.regions[i];
        if (r->size != 0)
            tap_diag("layout: %-8s [%#lx, %#lx]", layout_region_name((layout_region_id_t)i),
                     r->base, r->base + (r->size - 1));
    }
    tap_check(layout_find(&kernel_layout, (uint64_t)(uintptr_t)&probe_word) == LAYOUT_KERNEL_IMAGE &&
                  layout_find(&kernel_layout, (uint64_t)(uintptr_t)alias) == LAYOUT_HHDM &&
                  mm_va_space_is_kernel(&kernel_layout.space, hhdm_base) &&
                  !mm_va_space_is_kernel(&kernel_layout.space, hhdm_base - 1),
              "layout: the image is in the kernel region, the HHDM starts the kernel half");

    /* The fault machinery: a read above the last RAM byte in the HHDM. */
    uint64_t va = hhdm_base + mm_align_up(boot_info.phys_top, MM_SIZE_2M);
    fault_record_t rec;
    bool hit = fault_probe_read(va, &rec);
    char how[96];
    tap_check(hit && rec.ec == EC_DABT_CUR && FSC_IS_TRANSLATION(ESR_FSC(rec.esr)) &&
                  rec.far == va && !ESR_WNR(rec.esr),
              "fault: a read of unmapped %#lx is a data abort at that address (%s; %s)", va,
              esr_str(rec.esr, how, sizeof how), rec.where);
}
