/*
 * Test kernel: a real hang for the watchdog (command line "hang", run by
 * expect-hang.sh in lock_order builds). CPU 1 takes a hadron-mm lock and
 * keeps it; CPU 0 takes the same lock with interrupts off and spins for
 * good. Nothing in the kernel can end that: only the NMI watchdog, which
 * must print where CPU 0 is and, for each CPU, the lock it waits for and
 * the locks it holds, then fail the run. The lockup detector is switched
 * off so that the watchdog, not the spinlock, is what reports.
 */
#include <limits.h>

#include <hadron/mm/hooks.h>
#include <hadron/mm/spinlock.h>

#include "kernel.h"
#include "smp.h"

static mm_spinlock_t hang_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_PMM, "hang canary");
static volatile bool holding;

static void keep_the_lock(void *arg)
{
    (void)arg;
    mm_hook_irq_save();
    mm_spin_lock(&hang_lock);
    __atomic_store_n(&holding, true, __ATOMIC_RELEASE);
    for (;;)
        mm_cpu_relax();
}

_Noreturn void hang_for_the_watchdog(void)
{
    if (smp_online < 2)
        tap_bail("hang: needs a second CPU to hold the lock (-smp 2)");
#if HADRON_MM_LOCK_ORDER
    atomic_store(&mm_spin_lockup_polls, ULONG_MAX);
#endif
    smp_run_on(1, keep_the_lock, NULL);
    while (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE))
        mm_cpu_relax();
    /* Short only from here: waiting for CPU 1 is not the hang. */
    watchdog_set_seconds(1);
    tap_diag("hang: CPU 1 holds \"hang canary\"; CPU 0 takes it with interrupts off");
    mm_hook_irq_save();
    mm_spin_lock(&hang_lock);
    tap_bail("hang: CPU 0 got a lock CPU 1 never released");
}
