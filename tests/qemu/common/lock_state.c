/*
 * Test kernel: what each CPU does with hadron-mm locks, printed for a
 * watchdog that found the kernel stuck (and by the lockup check). Reads
 * the lock-order records through mm_lock_debug_snapshot: no lock, no
 * allocation, so it may run from an NMI while any CPU holds any lock.
 */
#include <hadron/mm/spinlock.h>

#include "kernel.h"

#if HADRON_MM_LOCK_ORDER
static void print_info(const char *what, const mm_lock_info_t *i)
{
    kprintf("#     %s \"%s\" at %#lx (rank %u), ", what, i->name ? i->name : "?",
            (uint64_t)(uintptr_t)i->lock, i->rank);
    if (i->holder == MM_LOCK_NO_CPU)
        kprintf("no holder recorded\n");
    else
        kprintf("held by CPU %u\n", i->holder);
}
#endif

void lock_state_print(unsigned cpus)
{
#if HADRON_MM_LOCK_ORDER
    kprintf("#   hadron-mm locks of %u CPU(s) (racy for a CPU still running):\n", cpus);
    for (unsigned cpu = 0; cpu < cpus; cpu++) {
        mm_lock_cpu_snapshot_t s;
        if (!mm_lock_debug_snapshot(cpu, &s)) {
            kprintf("#   CPU %u: no record (index not below HADRON_MM_MAX_CPUS)\n", cpu);
            continue;
        }
        kprintf("#   CPU %u: %s, holds %u lock(s)\n", cpu,
                s.waiting.lock ? "spinning" : "not waiting for a lock", s.held_count);
        if (s.waiting.lock)
            print_info("waits for", &s.waiting);
        for (unsigned i = 0; i < s.held_count && i < MM_LOCK_SNAPSHOT_HELD; i++)
            print_info("holds", &s.held[i]);
        if (s.held_count > MM_LOCK_SNAPSHOT_HELD)
            kprintf("#     and %u more\n", s.held_count - MM_LOCK_SNAPSHOT_HELD);
    }
#else
    kprintf("#   hadron-mm locks of %u CPU(s): not recorded (build without lock_order: "
            "waited-for locks and holders are known only with -Dlock_order=true)\n",
            cpus);
#endif
}
