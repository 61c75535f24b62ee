/*
 * Test kernel (AArch64): the TLB, root-switch and identity-retire hooks.
 *
 * The kernel half lives in TTBR1_EL1 (the kernel root, never switched);
 * a user root goes into TTBR0_EL1 with its ASID in bits 63:48 (TCR_EL1.A1
 * = 0: TTBR0 supplies the ASID).
 *
 * Targeted shootdown: the hooks get the set of CPUs that may cache the
 * entries (hooks.h). When it holds another online CPU than the caller the
 * invalidation is broadcast to the inner-shareable domain (the IS forms:
 * the hardware reaches every CPU, no interrupt): "DSB ISHST" first makes
 * earlier table stores (the invalid entry of a break-before-make) visible
 * to the walkers, "DSB ISH" waits for the invalidation to complete
 * everywhere. When it holds only the caller, the local forms (TLBI VAE1,
 * ASIDE1, ...) between "DSB NSHST" and "DSB NSH" do, and no other CPU's
 * TLB is touched. smp_flush_is_remote (smp.c) decides and counts one
 * remote invalidation per other CPU of the set, as the x86_64 kernel's
 * NMIs do. With smp_skip_remote the local forms are used whatever the set:
 * under TCG a non-IS TLBI flushes only the calling vCPU's TLB, which is
 * what checks_smp's stale-read twin proves. "ISB" resynchronises this
 * CPU's instruction stream either way.
 *
 * Identities (tlb.h): MM_ASID_KERNEL (0) is the kernel's own. Kernel-half
 * entries are global (nG = 0) and matched under any ASID, so a kernel page
 * goes with TLBI VAAE1IS (all ASIDs); a user page of identity n with TLBI
 * VAE1IS, ASID n. The operand is ASID[63:48] | VA[55:12] (4 KiB granule,
 * with or without LPA2).
 */
#include <hadron/mm/hooks.h>

#include "cpu.h"
#include "kernel.h"
#include "smp.h"

unsigned hook_tlb_page_calls, hook_tlb_all_calls, hook_root_switches;
unsigned hook_asid_retires;
unsigned hook_kept_switches; /* switches to a user root: its ASID's entries stay */
unsigned tlb_asid_bits;

static uint64_t tlbi_operand(mm_asid_t asid, mm_vaddr_t va)
{
    return ((uint64_t)asid << 48) | ((va >> 12) & ((UINT64_C(1) << 44) - 1));
}

/* Around a batch of TLBIs, for the inner-shareable domain (every CPU) or
 * this CPU alone: table stores visible to the walkers first, then the
 * invalidations complete, then this CPU's instruction stream resynced. */
static void tlbi_begin(bool broadcast)
{
    if (broadcast)
        dsb_ishst();
    else
        __asm__ __volatile__("dsb nshst" : : : "memory");
}

static void tlbi_end(bool broadcast)
{
    if (broadcast)
        dsb_ish();
    else
        __asm__ __volatile__("dsb nsh" : : : "memory");
    isb();
}

void mm_hook_tlb_flush_pages(mm_asid_t asid, const mm_cpuset_t *cpus, const mm_vaddr_t *pages,
                             size_t count)
{
    hook_tlb_page_calls++;
    bool is = smp_flush_is_remote(cpus);
    tlbi_begin(is);
    for (size_t i = 0; i < count; i++) {
        uint64_t op = tlbi_operand(asid, pages[i]);
        if (asid == MM_ASID_KERNEL && is)
            __asm__ __volatile__("tlbi vaae1is, %0" : : "r"(op) : "memory");
        else if (asid == MM_ASID_KERNEL)
            __asm__ __volatile__("tlbi vaae1, %0" : : "r"(op) : "memory");
        else if (is)
            __asm__ __volatile__("tlbi vae1is, %0" : : "r"(op) : "memory");
        else
            __asm__ __volatile__("tlbi vae1, %0" : : "r"(op) : "memory");
    }
    tlbi_end(is);
}

void mm_hook_tlb_flush_all(mm_asid_t asid, const mm_cpuset_t *cpus, bool include_global)
{
    hook_tlb_all_calls++;
    bool every = include_global || asid == MM_ASID_KERNEL;
    bool is = smp_flush_is_remote(cpus);
    uint64_t op = (uint64_t)asid << 48;
    tlbi_begin(is);
    if (every && is)
        __asm__ __volatile__("tlbi vmalle1is" : : : "memory");
    else if (every)
        __asm__ __volatile__("tlbi vmalle1" : : : "memory");
    else if (is)
        __asm__ __volatile__("tlbi aside1is, %0" : : "r"(op) : "memory");
    else
        __asm__ __volatile__("tlbi aside1, %0" : : "r"(op) : "memory");
    tlbi_end(is);
}

/* Root 0 means "no user half" (vmm_switch_to_kernel beside a separate
 * kernel root): TTBR0 walks are disabled (TCR_EL1.EPD0), so a user address
 * faults with a translation fault instead of walking a stale table. The
 * kernel root itself is never a user root: it lives in TTBR1. */
void mm_hook_switch_root(mm_paddr_t root, mm_asid_t asid)
{
    extern mm_paddr_t kernel_root;
    hook_root_switches++;
    uint64_t tcr = READ_SYSREG(tcr_el1);
    if (root == 0 || root == kernel_root) {
        WRITE_SYSREG(tcr_el1, tcr | TCR_EPD0);
        WRITE_SYSREG(ttbr0_el1, 0);
    } else {
        WRITE_SYSREG(ttbr0_el1, root | ((uint64_t)asid << TTBR_ASID_SHIFT));
        WRITE_SYSREG(tcr_el1, tcr & ~TCR_EPD0);
        if (asid != MM_ASID_KERNEL)
            hook_kept_switches++;
    }
    isb();
    /* Identity 0 keeps nothing (hooks.h): its non-global entries go. */
    if (asid == MM_ASID_KERNEL) {
        __asm__ __volatile__("tlbi aside1, %0" : : "r"((uint64_t)0) : "memory");
        __asm__ __volatile__("dsb nsh" : : : "memory");
        isb();
    }
}

void mm_hook_asid_retire(mm_asid_t asid)
{
    hook_asid_retires++;
    tlbi_begin(true);
    __asm__ __volatile__("tlbi aside1is, %0" : : "r"((uint64_t)asid << 48) : "memory");
    tlbi_end(true);
}
