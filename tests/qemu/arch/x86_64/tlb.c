/*
 * Test kernel: the TLB, root-switch and identity-retire hooks, with PCIDs
 * when the CPU has them (CPUID.01H:ECX.PCID; INVPCID if CPUID.07H:EBX has
 * it). The other CPUs of a flush's set get an NMI each (smp.c), which
 * drops everything they cache, every PCID included.
 *
 * With CR4.PCIDE set, every TLB and paging-structure-cache entry is tagged
 * with the PCID in CR3[11:0], and a CR3 write with bit 63 set keeps them.
 * The VMM's identities are the PCIDs (identity 0 = PCID 0: the kernel root
 * and untagged spaces, always flushed on a switch). A PCID whose entries
 * may be stale on a CPU that could not invalidate them at once (no
 * INVPCID, not current there) is marked in that CPU's stale map, and that
 * CPU's next switch to it flushes instead of keeping (hooks.h allows
 * either). The maps and the current PCID are per CPU because TLBs are: a
 * PCID retired on one CPU may still have entries on every CPU that ran it,
 * and INVPCID reaches only its own CPU, so a retirement marks the PCID
 * stale on every other CPU, whose next switch to the reused PCID then
 * flushes instead of keeping the old space's entries.
 */
#include <hadron/mm/hooks.h>

#include "smp.h"
#include "cpu.h"
#include "kernel.h"

#define PCID_COUNT 4096u

unsigned hook_tlb_page_calls, hook_tlb_all_calls, hook_root_switches;
unsigned hook_noflush_switches, hook_asid_retires, hook_invpcid_calls;
bool tlb_pcid_on;

/* Written by their CPU, and by a retirement on any CPU: byte atomics. */
static uint8_t stale[SMP_MAX_CPUS][PCID_COUNT / 8];
static unsigned current_pcid[SMP_MAX_CPUS];

static void mark_stale_on(unsigned cpu, unsigned pcid)
{
    __atomic_fetch_or(&stale[cpu][pcid / 8], (uint8_t)(1u << (pcid % 8)), __ATOMIC_RELAXED);
}

static void mark_stale(unsigned pcid)
{
    mark_stale_on(smp_this_cpu(), pcid);
}

/* Every PCID but this CPU's current one: what INVLPG and a CR3 reload leave
 * behind in the other PCIDs' paging-structure caches. */
static void mark_others_stale(void)
{
    unsigned cpu = smp_this_cpu(), cur = current_pcid[cpu];
    for (unsigned i = 0; i < PCID_COUNT / 8; i++)
        __atomic_store_n(&stale[cpu][i], (uint8_t)(i == cur / 8 ? ~(1u << (cur % 8)) : 0xffu),
                         __ATOMIC_RELAXED);
}

/* Takes the PCID's mark on this CPU: whether it was stale. */
static bool take_stale(unsigned pcid)
{
    uint8_t bit = (uint8_t)(1u << (pcid % 8));
    return (__atomic_fetch_and(&stale[smp_this_cpu()][pcid / 8], (uint8_t)~bit,
                               __ATOMIC_RELAXED) & bit) != 0;
}

void tlb_pcid_enable(void)
{
    /* CR4.PCIDE may be set only while CR3[11:0] is 0, which the kernel
     * root (page aligned, PCID 0) is. */
    if (!cpu_feat.pcid || (read_cr3() & CR3_PCID_MASK) != 0)
        return;
    write_cr4(read_cr4() | CR4_PCIDE);
    tlb_pcid_on = (read_cr4() & CR4_PCIDE) != 0;
}

/* Everything, global entries and every PCID included: toggling CR4.PGE
 * does that (SDM 4.10.4.1); without PGE, reload CR3 and mark the rest. */
static void flush_everything(void)
{
    uint64_t cr4 = read_cr4();
    if (cr4 & CR4_PGE) {
        write_cr4(cr4 & ~CR4_PGE);
        write_cr4(cr4);
        return;
    }
    write_cr3(read_cr3() & ~CR3_NOFLUSH);
    if (tlb_pcid_on)
        mark_others_stale();
}

const mm_cpuset_t tlb_cpus_all = {.all = true};

void mm_hook_tlb_flush_pages(mm_asid_t asid, const mm_cpuset_t *cpus, const mm_vaddr_t *pages,
                             size_t count)
{
    hook_tlb_page_calls++;
    /* Other CPUs of the set first (an NMI each, smp.c), then this one. */
    smp_shootdown(asid, cpus, pages, count, false, false);
    if (!tlb_pcid_on || asid == current_pcid[smp_this_cpu()]) {
        /* INVLPG: the current PCID's entries, global ones of any PCID, and
         * the current PCID's paging-structure caches. */
        for (size_t i = 0; i < count; i++)
            invlpg(pages[i]);
        /* Kernel-half tables may also be cached under other PCIDs. */
        if (tlb_pcid_on && asid == MM_ASID_KERNEL)
            mark_others_stale();
        return;
    }
    if (asid == MM_ASID_KERNEL) {
        /* Kernel pages (global) or an untagged space while a tagged one is
         * current: INVLPG drops the globals, the rest waits. */
        for (size_t i = 0; i < count; i++)
            invlpg(pages[i]);
        mark_others_stale();
        return;
    }
    if (cpu_feat.invpcid) {
        for (size_t i = 0; i < count; i++)
            invpcid(INVPCID_ADDRESS, asid, pages[i]);
        hook_invpcid_calls++;
    } else {
        mark_stale(asid);
    }
}

void mm_hook_tlb_flush_all(mm_asid_t asid, const mm_cpuset_t *cpus, bool include_global)
{
    hook_tlb_all_calls++;
    smp_shootdown(asid, cpus, NULL, 0, true, include_global);
    if (!tlb_pcid_on || include_global || asid == MM_ASID_KERNEL) {
        if (include_global || tlb_pcid_on)
            flush_everything();
        else
            write_cr3(read_cr3());
        return;
    }
    if (cpu_feat.invpcid) {
        invpcid(INVPCID_CONTEXT, asid, 0);
        hook_invpcid_calls++;
    } else if (asid == current_pcid[smp_this_cpu()]) {
        write_cr3(read_cr3() & ~CR3_NOFLUSH);
    } else {
        mark_stale(asid);
    }
}

void mm_hook_switch_root(mm_paddr_t root, mm_asid_t asid)
{
    hook_root_switches++;
    if (!tlb_pcid_on) {
        write_cr3(root);
        return;
    }
    unsigned pcid = asid & CR3_PCID_MASK;
    /* Identity 0 keeps nothing (hooks.h); a marked PCID is flushed now. */
    bool was_stale = take_stale(pcid);
    bool keep = pcid != 0 && !was_stale;
    current_pcid[smp_this_cpu()] = pcid;
    if (keep)
        hook_noflush_switches++;
    write_cr3(root | pcid | (keep ? CR3_NOFLUSH : 0));
}

void mm_hook_asid_retire(mm_asid_t asid)
{
    hook_asid_retires++;
    if (!tlb_pcid_on)
        return;
    unsigned self = smp_this_cpu();
    for (unsigned cpu = 0; cpu < SMP_MAX_CPUS; cpu++)
        if (cpu != self)
            mark_stale_on(cpu, asid & CR3_PCID_MASK);
    if (cpu_feat.invpcid) {
        invpcid(INVPCID_CONTEXT, asid & CR3_PCID_MASK, 0);
        hook_invpcid_calls++;
    } else {
        mark_stale(asid & CR3_PCID_MASK);
    }
}
