/*
 * Test kernel (AArch64): the HHDM in the boot tables, so the PMM can be
 * set up (it writes its bitmap through the HHDM) before paging-aarch64
 * builds the real tables from PMM frames.
 *
 * 1 GiB Normal write-back blocks, execute-never, over every /memory range
 * rounded out to 1 GiB; the level-1 table hangs off the boot TTBR1 root
 * (48-bit: level 0; 52-bit: level -1, then a level-0 table). The slots
 * were invalid, so no TLB invalidation is needed: DSB ISHST makes the
 * stores visible to the walker, ISB orders the first use after them.
 */
#include <hadron/mm/types.h>

#include "cpu.h"
#include "kernel.h"

extern uint64_t boot_l0_hi[512], boot_lm1_hi[512], boot_l0_hhdm[512], boot_l1_hhdm[512];

#define D_BLOCK UINT64_C(0x1)
#define D_TABLE UINT64_C(0x3)
#define D_SH_INNER (UINT64_C(3) << 8)
#define D_AF (UINT64_C(1) << 10)
#define D_PXN (UINT64_C(1) << 53)
#define D_UXN (UINT64_C(1) << 54)

uint64_t early_hhdm_map(uint64_t base, bool lpa2)
{
    uint64_t *l1 = boot_l1_hhdm;
    if (lpa2) {
        boot_l0_hhdm[(base >> 39) & 511] = kernel_virt_to_phys(l1) | D_TABLE;
        boot_lm1_hi[(base >> 48) & 15] = kernel_virt_to_phys(boot_l0_hhdm) | D_TABLE;
    } else {
        boot_l0_hi[(base >> 39) & 511] = kernel_virt_to_phys(l1) | D_TABLE;
    }
    /* With LPA2 bits 9:8 of a block are OA[51:50]; SH comes from TCR. */
    uint64_t attrs = D_BLOCK | D_AF | D_PXN | D_UXN | (lpa2 ? 0 : D_SH_INNER);
    uint64_t mapped = 0;
    for (size_t i = 0; i < boot_info.ram_run_count; i++) {
        const boot_mem_range_t *r = &boot_info.ram_runs[i];
        uint64_t lo = mm_align_down(r->addr, MM_GIB), hi = mm_align_up(r->addr + r->size, MM_GIB);
        for (uint64_t g = lo; g < hi && (g >> 30) < 512; g += MM_GIB) {
            if (l1[(g >> 30) & 511] == 0)
                mapped += MM_GIB;
            l1[(g >> 30) & 511] = g | attrs;
        }
    }
    dsb_ishst();
    isb();
    return mapped;
}
