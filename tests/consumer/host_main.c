#define _DEFAULT_SOURCE /* MAP_ANONYMOUS under -std=c11 */
/* Host side of the consumer check: the kernel hooks, and a smoke run. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <hadron/mm/core.h>

#include "consumer_mm.h"

_Noreturn void mm_hook_panic(const mm_report_t *r)
{
    fprintf(stderr, "panic: %s\n", r->message);
    abort();
}
void mm_hook_warn(const mm_report_t *r) { fprintf(stderr, "warn: %s\n", r->message); }
mm_irqflags_t mm_hook_irq_save(void) { return 0; }
void mm_hook_irq_restore(mm_irqflags_t f) { (void)f; }
void mm_hook_spin_yield(void) { sched_yield(); }
unsigned mm_hook_cpu_index(void) { return 0; } /* one thread */
bool mm_hook_cpu_barrier(void) { return true; } /* one thread: no other CPU to wait for */
void mm_hook_tlb_flush_pages(mm_asid_t a, const mm_cpuset_t *c, const mm_vaddr_t *p, size_t n)
{
    (void)a;
    (void)c;
    (void)p;
    (void)n;
}
void mm_hook_tlb_flush_all(mm_asid_t a, const mm_cpuset_t *c, bool g)
{
    (void)a;
    (void)c;
    (void)g;
}
void mm_hook_switch_root(mm_paddr_t r, mm_asid_t a) { (void)r; (void)a; }
void mm_hook_asid_retire(mm_asid_t a) { (void)a; }

int main(void)
{
    const uint64_t bytes = 16 << 20;
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return 1;
    static pmm_t pmm;
    mm_status_t st = consumer_mm_init(&pmm, (uint64_t)(uintptr_t)mem, bytes);
    if (st != MM_OK) {
        fprintf(stderr, "init: %s\n", mm_status_str(st));
        return 1;
    }
    mm_paddr_t frame;
    if ((st = pmm_alloc(&pmm, &frame)) != MM_OK || frame == 0) {
        fprintf(stderr, "alloc: %s\n", mm_status_str(st));
        return 1;
    }
    if ((st = pmm_free(&pmm, frame)) != MM_OK) {
        fprintf(stderr, "free: %s\n", mm_status_str(st));
        return 1;
    }
    puts("consumer: hadron-mm PMM initialised, allocated and freed a frame");
    return 0;
}
