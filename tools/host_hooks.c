#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "host_barrier.h"
#include "host_hooks.h"

host_hook_counts_t host_hook_counts;
void (*host_hooks_on_warn)(const mm_report_t *report);

_Noreturn void mm_hook_panic(const mm_report_t *report)
{
    fprintf(stderr, "PANIC (%s): %s at %s:%d address=%#llx offset=%#llx\n",
            mm_report_kind_str(report->kind), report->message, report->file, report->line,
            (unsigned long long)report->address, (unsigned long long)report->offset);
    abort();
}

void mm_hook_warn(const mm_report_t *report)
{
    host_hook_counts.warnings++;
    if (host_hooks_on_warn != NULL) {
        host_hooks_on_warn(report);
        return;
    }
    fprintf(stderr, "warning (%s): %s address=%#llx\n", mm_report_kind_str(report->kind),
            report->message, (unsigned long long)report->address);
}

/* Host programs are single-CPU "kernels" without interrupts to mask. */
mm_irqflags_t mm_hook_irq_save(void)
{
    return 0;
}

void mm_hook_irq_restore(mm_irqflags_t flags)
{
    (void)flags;
}

/* A preempted lock holder (or next ticket) runs sooner if waiters yield. */
void mm_hook_spin_yield(void)
{
    sched_yield();
}

bool mm_hook_cpu_barrier(void)
{
    return host_membarrier();
}

void mm_hook_tlb_flush_pages(mm_asid_t asid, const mm_cpuset_t *cpus, const mm_vaddr_t *pages,
                             size_t count)
{
    (void)asid;
    (void)cpus;
    (void)pages;
    host_hook_counts.tlb_page_calls++;
    host_hook_counts.tlb_pages += count;
}

void mm_hook_tlb_flush_all(mm_asid_t asid, const mm_cpuset_t *cpus, bool include_global)
{
    (void)asid;
    (void)cpus;
    (void)include_global;
    host_hook_counts.tlb_all_calls++;
}

void mm_hook_switch_root(mm_paddr_t root, mm_asid_t asid)
{
    (void)root;
    (void)asid;
    host_hook_counts.root_switches++;
}

void mm_hook_asid_retire(mm_asid_t asid)
{
    (void)asid;
    host_hook_counts.asid_retires++;
}
