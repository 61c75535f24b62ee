/*
 * Test kernel: growing the boot HHDM to all of RAM.
 *
 * boot.S maps [0, 4 GiB) at the HHDM base through boot_pdpt_hhdm. kmain
 * makes that exactly the layout's HHDM region: with less RAM the entries
 * past it are cleared (so the guard gap and the heap region after the HHDM
 * really are unmapped); with more (-m 8G puts RAM up to 10 GiB) it adds one
 * PDPT entry per further GiB: a 1 GiB page when the CPU has them, else a
 * page directory of 2 MiB pages from a static pool. This is the bootstrap
 * the PMM needs (it reaches its bitmap and every frame through the HHDM);
 * the kernel's real tables are built later by paging-x86_64.
 */
#include "cpu.h"
#include "kernel.h"

#define EARLY_MAX_GIB 64u
#define BOOT_MAPPED_GIB 4u

static uint64_t early_pd_pool[EARLY_MAX_GIB - BOOT_MAPPED_GIB][512] __attribute__((aligned(4096)));

uint64_t early_hhdm_extend(uint64_t top)
{
    uint64_t gib = (top + MM_GIB - 1) / MM_GIB;
    if (gib > EARLY_MAX_GIB)
        gib = EARLY_MAX_GIB;
    for (uint64_t g = gib; g < BOOT_MAPPED_GIB; g++)
        boot_pdpt_hhdm[g] = 0;
    for (uint64_t g = BOOT_MAPPED_GIB; g < gib; g++) {
        if (cpu_feat.page1g) {
            boot_pdpt_hhdm[g] = (g << 30) | 0x83; /* P RW PS */
            continue;
        }
        uint64_t *pd = early_pd_pool[g - BOOT_MAPPED_GIB];
        for (unsigned i = 0; i < 512; i++)
            pd[i] = (g << 30) + ((uint64_t)i << 21) + 0x83;
        boot_pdpt_hhdm[g] = kernel_virt_to_phys(pd) | 0x3;
    }
    write_cr3(read_cr3());
    return gib * MM_GIB;
}

void early_drop_identity(void)
{
    if (read_cr4() & CR4_LA57)
        boot_pml5[0] = 0;
    else
        boot_pml4[0] = 0;
    write_cr3(read_cr3());
}
