/*
 * Test kernel: lockup detection on real CPUs (lock_order builds, two CPUs
 * or more). CPU 1 takes a test lock and holds it until told; another CPU's
 * wait shows in the snapshots a watchdog reads (the lock, its holder), and
 * CPU 0, taking the lock with a small spin budget, panics with a lockup
 * report naming the lock and CPU 1. The panic is caught (panic_expect),
 * the holder released, and the test lock, whose abandoned ticket would
 * block it forever, initialised again.
 */
#include <hadron/mm/hooks.h>
#include <hadron/mm/spinlock.h>

#include "kernel.h"
#include "smp.h"

#if HADRON_MM_LOCK_ORDER

/* Small enough to trip at once under TCG (well under a second), large
 * enough to be a real wait. */
#define CANARY_POLLS (1ul << 16)

static const char canary_name[] = "lockup canary";
static mm_spinlock_t canary_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_PMM, canary_name);

typedef struct hold {
    volatile unsigned cpu;
    volatile bool holding;
    volatile bool release;
} hold_t;

static void hold_until_told(void *arg)
{
    hold_t *h = arg;
    mm_irqflags_t f = mm_hook_irq_save();
    mm_spin_lock(&canary_lock);
    h->cpu = mm_hook_cpu_index();
    __atomic_store_n(&h->holding, true, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&h->release, __ATOMIC_ACQUIRE))
        mm_cpu_relax();
    mm_spin_unlock(&canary_lock);
    mm_hook_irq_restore(f);
}

static void take_and_drop(void *arg)
{
    (void)arg;
    mm_irqflags_t f = mm_hook_irq_save();
    mm_spin_lock(&canary_lock);
    mm_spin_unlock(&canary_lock);
    mm_hook_irq_restore(f);
}

static void take(void *arg)
{
    mm_spin_lock(arg);
}

/* Spins until *flag; the watchdog catches a CPU that never gets there. */
static void wait_for(volatile bool *flag)
{
    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
        mm_cpu_relax();
}

static void start_holder(hold_t *h)
{
    *h = (hold_t){.cpu = MM_LOCK_NO_CPU};
    smp_run_on(1, hold_until_told, h);
    wait_for(&h->holding);
}

static void stop_holder(hold_t *h)
{
    __atomic_store_n(&h->release, true, __ATOMIC_RELEASE);
    smp_wait_idle(1);
}

/* CPU 2 waits for the lock CPU 1 holds: both CPUs' snapshots say so. */
static void check_snapshot(void)
{
    if (smp_online < 3) {
        tap_skip("needs 3 CPUs", "lockup: a waiting CPU's snapshot names the lock and holder");
        return;
    }
    hold_t h;
    start_holder(&h);
    smp_run_on(2, take_and_drop, 0);
    mm_lock_cpu_snapshot_t w, o;
    do {
        mm_cpu_relax();
        mm_lock_debug_snapshot(2, &w);
    } while (w.waiting.lock == 0);
    mm_lock_debug_snapshot(1, &o);
    tap_diag("what a watchdog would print now:");
    lock_state_print(smp_online);
    stop_holder(&h);
    smp_wait_idle(2);
    tap_check(w.waiting.lock == &canary_lock && w.waiting.holder == 1 && w.held_count == 0 &&
                  o.waiting.lock == 0 && o.held_count == 1 && o.held[0].lock == &canary_lock &&
                  o.held[0].holder == 1 && mm_spin_holder(&canary_lock) == MM_LOCK_NO_CPU,
              "lockup: CPU 2 waiting for the lock CPU 1 holds shows in both snapshots "
              "(waits for \"%s\" held by CPU %u; CPU 1 holds %u lock(s))",
              w.waiting.name ? w.waiting.name : "-", w.waiting.holder, o.held_count);
}

static void check_lockup_report(void)
{
    hold_t h;
    start_holder(&h);
    unsigned long budget = atomic_load(&mm_spin_lockup_polls);
    atomic_store(&mm_spin_lockup_polls, CANARY_POLLS);
    mm_report_t rep = {0};
    mm_irqflags_t f = mm_hook_irq_save();
    bool caught = panic_expect(take, &canary_lock, &rep);
    mm_hook_irq_restore(f);
    atomic_store(&mm_spin_lockup_polls, budget);
    stop_holder(&h);
    /* The abandoned ticket blocks the lock for good: start it afresh. The
     * panic hook already forgot this CPU's wait; forgetting again is
     * harmless. */
    mm_spin_init_ranked(&canary_lock, MM_LOCK_RANK_PMM, canary_name);
    mm_lock_order_forget_cpu();
    tap_check(caught && rep.kind == MM_REPORT_LOCKUP && rep.lock == canary_name &&
                  rep.address == (uint64_t)(uintptr_t)&canary_lock && rep.cpu == 0 &&
                  rep.holder_cpu == 1 && h.cpu == 1 && rep.offset == CANARY_POLLS,
              "lockup: CPU 0 spinning on the lock CPU 1 keeps panics after %lu polls "
              "(%s: \"%s\", waiting CPU %u, holder CPU %u)",
              (unsigned long)rep.offset, caught ? mm_report_kind_str(rep.kind) : "no panic",
              rep.lock ? rep.lock : "-", rep.cpu, rep.holder_cpu);
}

#endif

void checks_lockup(void)
{
#if HADRON_MM_LOCK_ORDER
    tap_diag("longest lock stall so far: %lu polls without a hand-over (lockup budget %lu)",
             mm_lock_debug_longest_stall(), (unsigned long)atomic_load(&mm_spin_lockup_polls));
    if (smp_online < 2) {
        tap_skip("needs 2 CPUs", "lockup: a lock held by another CPU is reported");
        return;
    }
    check_snapshot();
    check_lockup_report();
#else
    tap_skip("build without lock_order", "lockup: a lock held by another CPU is reported");
#endif
}
