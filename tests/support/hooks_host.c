#include <pthread.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "host_barrier.h"
#include "host_cpu_index.h"
#include "mm_test.h"

/* The hooks may be called from several threads at once (the concurrency
 * stress programs run under ThreadSanitizer): the logs are updated under
 * this lock. Readers are the single-threaded tests. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

test_hook_log_t test_panics;
test_hook_log_t test_warnings;
jmp_buf *volatile test_panic_target;

static _Thread_local int irq_depth;

_Noreturn void mm_hook_panic(const mm_report_t *report)
{
    pthread_mutex_lock(&log_lock);
    test_panics.count++;
    test_panics.last = *report;
    pthread_mutex_unlock(&log_lock);
    if (test_panic_target != NULL) {
        /* The test goes on without the locks the panicking code held (it
         * uses that instance no further): they must not count as held. */
        mm_lock_order_forget_cpu();
        longjmp(*test_panic_target, 1);
    }
    fprintf(stderr, "mm panic (%s): %s at %s:%d address=%#llx offset=%#llx\n",
            mm_report_kind_str(report->kind), report->message, report->file, report->line,
            (unsigned long long)report->address, (unsigned long long)report->offset);
    if (report->kind == MM_REPORT_LOCK_ORDER || report->kind == MM_REPORT_LOCKUP)
        fprintf(stderr, "  lock \"%s\" (held: \"%s\") on CPU %u, holder CPU %d\n",
                report->lock ? report->lock : "-", report->held ? report->held : "-",
                report->cpu, (int)report->holder_cpu);
    abort();
}

void mm_hook_warn(const mm_report_t *report)
{
    pthread_mutex_lock(&log_lock);
    test_warnings.count++;
    test_warnings.last = *report;
    pthread_mutex_unlock(&log_lock);
}

void (*volatile test_irq_save_observer)(void);

mm_irqflags_t mm_hook_irq_save(void)
{
    void (*observer)(void) = test_irq_save_observer;
    if (observer != NULL)
        observer();
    return (mm_irqflags_t)irq_depth++;
}

void mm_hook_irq_restore(mm_irqflags_t flags)
{
    irq_depth = (int)flags;
}

int test_irq_depth(void)
{
    return irq_depth;
}

atomic_long test_spin_yields;
void (*volatile test_spin_yield_observer)(void);

/* Host threads are preempted, lock holders included: let them run. */
void mm_hook_spin_yield(void)
{
    atomic_fetch_add_explicit(&test_spin_yields, 1, memory_order_relaxed);
    void (*observer)(void) = test_spin_yield_observer;
    if (observer != NULL)
        observer();
    sched_yield();
}

atomic_long test_cpu_barriers;
volatile bool test_cpu_barrier_refused;

bool mm_hook_cpu_barrier(void)
{
    if (test_cpu_barrier_refused)
        return false;
    atomic_fetch_add_explicit(&test_cpu_barriers, 1, memory_order_relaxed);
    return host_membarrier();
}

test_tlb_log_t test_tlb;
void (*test_tlb_pages_observer)(mm_asid_t asid, const mm_vaddr_t *pages, size_t count);
void (*test_tlb_cpus_observer)(mm_asid_t asid, const mm_cpuset_t *cpus);

int test_cpu_index = -1;

/* Each thread is a "CPU" of its own, numbered in order of its first call
 * (no two threads ever share an index, as per-CPU state needs), unless a
 * test picks the index (test_cpu_index >= 0). */
unsigned mm_hook_cpu_index(void)
{
    return test_cpu_index >= 0 ? (unsigned)test_cpu_index : host_thread_index();
}

/* Under log_lock. */
static void log_cpus(const mm_cpuset_t *cpus)
{
    test_tlb.last_cpus_bits = 0;
    for (unsigned c = mm_cpuset_next(cpus, 0); c < HADRON_MM_MAX_CPUS && c < 64;
         c = mm_cpuset_next(cpus, c + 1))
        test_tlb.last_cpus_bits |= (uint64_t)1 << c;
    test_tlb.last_cpus_all = mm_cpuset_is_all(cpus);
    test_tlb.last_cpus_count = mm_cpuset_count(cpus);
}

void mm_hook_tlb_flush_pages(mm_asid_t asid, const mm_cpuset_t *cpus, const mm_vaddr_t *pages,
                             size_t count)
{
    if (test_tlb_cpus_observer != NULL)
        test_tlb_cpus_observer(asid, cpus);
    if (test_tlb_pages_observer != NULL)
        test_tlb_pages_observer(asid, pages, count);
    pthread_mutex_lock(&log_lock);
    log_cpus(cpus);
    test_tlb.page_calls++;
    test_tlb.pages_flushed += count;
    test_tlb.last_count = count;
    test_tlb.last_pages_asid = asid;
    for (size_t i = 0; i < count && i < MM_TLB_BATCH_MAX; i++)
        test_tlb.last_pages[i] = pages[i];
    pthread_mutex_unlock(&log_lock);
}

void mm_hook_tlb_flush_all(mm_asid_t asid, const mm_cpuset_t *cpus, bool include_global)
{
    if (test_tlb_cpus_observer != NULL)
        test_tlb_cpus_observer(asid, cpus);
    if (test_tlb_pages_observer != NULL)
        test_tlb_pages_observer(asid, NULL, 0);
    pthread_mutex_lock(&log_lock);
    log_cpus(cpus);
    test_tlb.all_calls++;
    test_tlb.last_all_global = include_global;
    test_tlb.last_all_asid = asid;
    pthread_mutex_unlock(&log_lock);
}

void mm_hook_switch_root(mm_paddr_t root, mm_asid_t asid)
{
    pthread_mutex_lock(&log_lock);
    test_tlb.switches++;
    test_tlb.current_root = root;
    test_tlb.current_asid = asid;
    pthread_mutex_unlock(&log_lock);
}

void (*test_on_retire)(mm_asid_t asid);

void mm_hook_asid_retire(mm_asid_t asid)
{
    pthread_mutex_lock(&log_lock);
    test_tlb.retires++;
    test_tlb.last_retired = asid;
    test_tlb.irq_depth_at_retire = irq_depth;
    pthread_mutex_unlock(&log_lock);
    if (test_on_retire != NULL)
        test_on_retire(asid);
}
