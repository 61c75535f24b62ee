/*
 * Test kernel: what the other CPUs prove, on both architectures. Each CPU
 * answers mm_hook_cpu_index with its own index, runs with the boot CPU's
 * control state (smp_regs_t) on its guard-page stack; then the shootdown:
 * CPU B keeps reading a user page, CPU A remaps it to another frame and
 * flushes, and once the flush returned B reads the new frame; with the
 * remote part of the hook skipped B reads the old one (TCG keeps a TLB per
 * virtual CPU). Then the counts: a space that ran on one CPU is flushed
 * there only, a kernel-half change reaches every CPU.
 */
#include <hadron/mm/hhdm.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/tlb.h>
#include <hadron/mm/vmm.h>

#include "kernel.h"
#include "kmem.h"
#include "smp.h"

typedef struct probe {
    unsigned index;
    smp_regs_t regs;
    uint64_t sp;
} probe_t;

static void probe_fn(void *arg)
{
    probe_t *p = arg;
    mm_irqflags_t f = mm_hook_irq_save();
    p->index = mm_hook_cpu_index();
    mm_hook_irq_restore(f);
    smp_regs_read(&p->regs);
    p->sp = (uint64_t)(uintptr_t)__builtin_frame_address(0);
}

#define UVA UINT64_C(0x40000000)
#define V1 UINT64_C(0x1111111111111111)
#define V2 UINT64_C(0x2222222222222222)

typedef struct reader {
    vmm_as_t *as;
    volatile int phase;   /* set by A after each flush returned */
    volatile int stop;
    volatile uint64_t reads;
    volatile uint64_t seen_phase, seen_value, seen_reads; /* reads in seen_phase */
} reader_t;

static void reader_fn(void *arg)
{
    reader_t *r = arg;
    vmm_as_switch(r->as);
    for (;;) {
        int ph = __atomic_load_n(&r->phase, __ATOMIC_ACQUIRE);
        uint64_t v = *(volatile uint64_t *)(uintptr_t)UVA;
        if ((uint64_t)ph != r->seen_phase) {
            r->seen_phase = (uint64_t)ph;
            r->seen_reads = 0;
        }
        r->seen_value = v;
        __atomic_store_n(&r->seen_reads, r->seen_reads + 1, __ATOMIC_RELEASE);
        __atomic_store_n(&r->reads, r->reads + 1, __ATOMIC_RELEASE);
        if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
            break;
    }
    vmm_switch_to_kernel(&kernel_vmm);
}

/* Waits until the reader made `n` reads in phase `ph`. Bounded far beyond
 * need; the watchdog catches a stuck CPU first. */
static bool wait_reads(reader_t *r, int ph, uint64_t n)
{
    for (unsigned long i = 0; i < 4000000000ul; i++) {
        if (__atomic_load_n(&r->seen_phase, __ATOMIC_ACQUIRE) == (uint64_t)ph &&
            __atomic_load_n(&r->seen_reads, __ATOMIC_ACQUIRE) >= n)
            return true;
        cpu_relax();
    }
    return false;
}

/* Remaps UVA of `as` to `to` in one batch of the space (unmap + map, one
 * flush), as a kernel changing a page under a running thread does. */
static mm_status_t remap(vmm_as_t *as, mm_paddr_t to, mm_paddr_t *from)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT_SPACE(as->asid, &kernel_vmm.spaces[as->rec].cpus);
    mm_status_t st = mm_pm_unmap(&kernel_mapper, as->root, UVA, MM_PAGE_4K, from, &b);
    if (st == MM_OK)
        st = mm_pm_map(&kernel_mapper, as->root, UVA, to, MM_PAGE_4K, MM_MAP_USER, &b);
    mm_tlb_batch_flush(&b);
    return st;
}

static void check_shootdown(void)
{
    vmm_as_t as;
    mm_paddr_t f1, f2, pa;
    if (!tap_check(vmm_as_create(&kernel_vmm, NULL, NULL, &as) == MM_OK,
                   "smp: shootdown space created"))
        return;
    pmm_alloc(&kernel_pmm, &f1);
    pmm_alloc(&kernel_pmm, &f2);
    *(volatile uint64_t *)hhdm_phys_to_virt(f1) = V1;
    *(volatile uint64_t *)hhdm_phys_to_virt(f2) = V2;
    /* A second page keeps the leaf table alive across the remaps. */
    vmm_as_map(&as, UVA, f1, MM_PAGE_4K, 0);
    vmm_as_map_anon(&as, UVA + 4096, 1, 0);

    static reader_t r;
    r = (reader_t){.as = &as};
    smp_run_on(1, reader_fn, &r);
    bool ok = wait_reads(&r, 0, 1000);
    tap_check(ok && r.seen_value == V1, "smp: CPU 1 reads the user page (frame 1) in a loop");

    unsigned long sent0 = smp_remote_sent, inv0 = smp_percpu[1].invalidations;
    mm_paddr_t from;
    mm_status_t st = remap(&as, f2, &from);
    __atomic_store_n(&r.phase, 1, __ATOMIC_RELEASE);
    ok = wait_reads(&r, 1, 1000);
    tap_check(st == MM_OK && from == f1 && ok && r.seen_value == V2,
              "smp: after CPU 0 remapped the page and its flush returned, CPU 1 reads frame 2 "
              "(read %#lx)", (unsigned long)r.seen_value);
    tap_check(smp_remote_sent - sent0 == 1 && smp_percpu[1].invalidations - inv0 == 1,
              "smp: the flush of a space current on CPU 1 only " SMP_REMOTE_VERB " CPU 1 (remote "
              "invalidations %lu, broadcast: %u)", smp_remote_sent - sent0, smp_online - 1);

    /* The twin: the hook's remote part skipped. CPU 1 keeps its entry. */
    smp_skip_remote = true;
    st = remap(&as, f1, &from);
    smp_skip_remote = false;
    __atomic_store_n(&r.phase, 2, __ATOMIC_RELEASE);
    ok = wait_reads(&r, 2, 1000);
    tap_check(st == MM_OK && from == f2 && ok && r.seen_value == V2,
              "smp: without the remote shootdown CPU 1 still reads the stale frame 2 after the "
              "flush returned (read %#lx): the check can fail", (unsigned long)r.seen_value);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    smp_wait_idle(1);

    /* Ran only on CPU 0: its flush goes nowhere else. */
    vmm_as_t own;
    vmm_as_create(&kernel_vmm, NULL, NULL, &own);
    vmm_as_map_anon(&own, UVA, 1, MM_MAP_WRITE);
    vmm_as_switch(&own);
    vmm_switch_to_kernel(&kernel_vmm);
    sent0 = smp_remote_sent;
    st = vmm_as_unmap(&own, UVA, MM_PAGE_4K, &pa);
    tap_check(st == MM_OK && smp_remote_sent == sent0,
              "smp: unmap in a space that ran on one CPU of %u (the unmapping one): remote "
              "invalidations %lu (broadcast: %u)", smp_online, smp_remote_sent - sent0,
              smp_online - 1);
    if (st == MM_OK)
        pmm_free(&kernel_pmm, pa);
    vmm_as_release(&own);

    /* A kernel-half change goes to every CPU. */
    sent0 = smp_remote_sent;
    vmm_stack_t s;
    st = vmm_stack_create(&kernel_vmm, &s);
    if (st == MM_OK)
        st = vmm_stack_release(&s);
    tap_check(st == MM_OK && smp_remote_sent - sent0 == smp_online - 1,
              "smp: a kernel-half unmap (stack release) " SMP_REMOTE_VERB " every other CPU: remote "
              "invalidations %lu of %u", smp_remote_sent - sent0, smp_online - 1);

    vmm_as_unmap(&as, UVA, MM_PAGE_4K, &pa);
    vmm_as_release(&as);
    pmm_free(&kernel_pmm, f1);
    pmm_free(&kernel_pmm, f2);
}

void checks_smp(void)
{
    if (!smp_report_start())
        return;
    probe_t bsp;
    probe_fn(&bsp);
    for (unsigned c = 1; c < smp_online; c++) {
        probe_t p = {0};
        smp_run_on(c, probe_fn, &p);
        smp_wait_idle(c);
        vmm_fault_info_t fi;
        vmm_fault_kind_t k = vmm_classify_fault(&kernel_vmm, p.sp, &fi);
        tap_check(p.index == c && smp_regs_equal(&p.regs, &bsp.regs) && k == VMM_FAULT_STACK,
                  "smp: CPU %u: mm_hook_cpu_index %u, " SMP_REGS_NAME " as " SMP_BOOT_CPU_NAME
                  "'s, on a VMM stack (%s)", c, p.index, vmm_fault_kind_str(k));
    }
    check_shootdown();
    for (unsigned c = 0; c < smp_online; c++) {
        char label[32];
        tap_diag("smp: CPU %u (%s): %lu remote invalidations run", c,
                 smp_cpu_label(c, label, sizeof label), smp_percpu[c].invalidations);
    }
}
