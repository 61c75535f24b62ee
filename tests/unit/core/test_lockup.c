/* Lockup detection and the watchdog's view of the locks (lock_order
 * builds): a waiter whose lock does not change hands within the spin
 * budget panics naming the lock and its holder; a queue that keeps moving
 * never trips it; mm_lock_debug_snapshot shows what each CPU waits for and
 * holds. Every wait here ends by a step the test controls (a holder holds
 * until told, the queue moves only at the waiter's yields), so neither the
 * budget nor the machine's speed or load decides an outcome. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include <hadron/mm/spinlock.h>

#include "mm_test.h"

#if HADRON_MM_LOCK_ORDER

static mm_spinlock_t heap_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_KHEAP_BLOCK, "kheap block");
static mm_spinlock_t vmm_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_VMM, "vmm");
static mm_spinlock_t pmm_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_PMM, "pmm");

/* A thread that takes the VMM lock (when asked) and the PMM lock, says so,
 * and holds them until told. */
typedef struct holder {
    bool take_vmm;
    atomic_uint cpu;     /* its mm_hook_cpu_index, once holding */
    atomic_bool holding;
    atomic_bool release;
} holder_t;

static void *hold_until_told(void *arg)
{
    holder_t *h = arg;
    mm_irqflags_t f = mm_hook_irq_save();
    if (h->take_vmm)
        mm_spin_lock(&vmm_lock);
    mm_spin_lock(&pmm_lock);
    atomic_store(&h->cpu, mm_hook_cpu_index());
    atomic_store(&h->holding, true);
    while (!atomic_load(&h->release))
        sched_yield();
    mm_spin_unlock(&pmm_lock);
    if (h->take_vmm)
        mm_spin_unlock(&vmm_lock);
    mm_hook_irq_restore(f);
    return NULL;
}

static void start_holder(pthread_t *t, holder_t *h)
{
    cr_assert_eq(pthread_create(t, NULL, hold_until_told, h), 0);
    while (!atomic_load(&h->holding))
        sched_yield();
}

static void stop_holder(pthread_t t, holder_t *h)
{
    atomic_store(&h->release, true);
    pthread_join(t, NULL);
}

/* The canary: another thread holds the PMM lock and keeps it until this
 * one has panicked, however long that takes. */
Test(lockup, held_lock_panics_naming_the_lock_and_its_holder)
{
    holder_t h = {.take_vmm = false};
    pthread_t t;
    start_holder(&t, &h);
    unsigned me = mm_hook_cpu_index();
    cr_assert_eq(mm_spin_holder(&pmm_lock), atomic_load(&h.cpu));
    atomic_store(&mm_spin_lockup_polls, 5000);
    mm_irqflags_t f = mm_hook_irq_save();
    bool panicked = TEST_CATCH_PANIC(mm_spin_lock(&pmm_lock));
    mm_hook_irq_restore(f);
    stop_holder(t, &h);

    cr_assert(panicked);
    cr_assert_eq(test_panics.count, 1);
    const mm_report_t *r = &test_panics.last;
    cr_assert_eq(r->kind, MM_REPORT_LOCKUP);
    cr_assert_str_eq(mm_report_kind_str(r->kind), "lockup");
    cr_assert_str_eq(r->lock, "pmm");
    cr_assert_null(r->held);
    cr_assert_eq(r->address, (uint64_t)(uintptr_t)&pmm_lock);
    cr_assert_eq(r->cpu, me, "the waiting CPU");
    cr_assert_neq(r->cpu, r->holder_cpu);
    cr_assert_eq(r->holder_cpu, atomic_load(&h.cpu), "the holding CPU");
    cr_assert_eq(r->offset, 5000, "polls without a hand-over: exactly the budget");
    cr_assert_eq(r->found, 0, "now_serving: the holder's ticket");
    cr_assert_eq(r->expected, 1, "the waiter's ticket");
    /* The harness forgot the abandoned wait. */
    mm_lock_cpu_snapshot_t s;
    cr_assert(mm_lock_debug_snapshot(me, &s));
    cr_assert_null(s.waiting.lock);
    cr_assert_eq(s.held_count, 0);
}

/* No holder at all (a lost unlock): the report says no CPU holds it. */
Test(lockup, lost_unlock_panics_with_no_holder)
{
    static mm_spinlock_t lost = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_VMM, "lost");
    atomic_store(&lost.next_ticket, 1); /* taken, never handed on */
    atomic_store(&mm_spin_lockup_polls, 100);
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&lost)));
    cr_assert_eq(test_panics.last.kind, MM_REPORT_LOCKUP);
    cr_assert_str_eq(test_panics.last.lock, "lost");
    cr_assert_eq(test_panics.last.holder_cpu, MM_LOCK_NO_CPU);
    cr_assert_eq(test_panics.last.offset, 100);
    cr_assert_eq(mm_lock_debug_longest_stall(), 0, "a lockup is not a stall that ended");
}

#if HADRON_MM_SPIN_YIELD
/* 64 tickets ahead of ours, each handed on at one of our yields (every
 * MM_SPIN_YIELD_SPINS polls): the wait lasts 64 yields, over 40 times the
 * budget of 1.5 yields, but the lock changes hands within every budget. A
 * detector counting the whole wait, not the polls since the last
 * hand-over, panics here. */
static mm_spinlock_t queue_lock = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_PMM, "queue");
static atomic_uint handovers;

static void hand_on_one(void)
{
    if (atomic_load(&queue_lock.now_serving) < 64) {
        atomic_fetch_add(&queue_lock.now_serving, 1);
        atomic_fetch_add(&handovers, 1);
    }
}

Test(lockup, a_long_queue_that_keeps_moving_never_trips)
{
    atomic_store(&queue_lock.next_ticket, 64);
    atomic_store(&mm_spin_lockup_polls, MM_SPIN_YIELD_SPINS + MM_SPIN_YIELD_SPINS / 2);
    test_spin_yield_observer = hand_on_one;
    mm_irqflags_t f = mm_hook_irq_save();
    bool panicked = TEST_CATCH_PANIC(mm_spin_lock(&queue_lock));
    test_spin_yield_observer = NULL;
    cr_assert_not(panicked, "%s after %llu polls", test_panics.last.message,
                  (unsigned long long)test_panics.last.offset);
    cr_assert_eq(atomic_load(&handovers), 64);
    cr_assert_eq(mm_spin_holder(&queue_lock), mm_hook_cpu_index());
    mm_spin_unlock(&queue_lock);
    mm_hook_irq_restore(f);
    unsigned long longest = mm_lock_debug_longest_stall();
    cr_assert(longest >= MM_SPIN_YIELD_SPINS - 1 && longest < MM_SPIN_YIELD_SPINS + 1,
              "longest stall %lu: one yield's worth", longest);
}

/* The same queue standing still trips at the budget exactly. */
Test(lockup, the_same_queue_standing_still_trips)
{
    atomic_store(&queue_lock.next_ticket, 64);
    atomic_store(&mm_spin_lockup_polls, MM_SPIN_YIELD_SPINS + MM_SPIN_YIELD_SPINS / 2);
    mm_irqflags_t f = mm_hook_irq_save();
    cr_assert(TEST_CATCH_PANIC(mm_spin_lock(&queue_lock)));
    mm_hook_irq_restore(f);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_LOCKUP);
    cr_assert_eq(test_panics.last.offset, MM_SPIN_YIELD_SPINS + MM_SPIN_YIELD_SPINS / 2);
    cr_assert_eq(test_panics.last.found, 0);
    cr_assert_eq(test_panics.last.expected, 64);
}
#endif

/* A waiter, holding the kheap block lock, spins for the PMM lock that the
 * holder (VMM then PMM) keeps; the snapshot of each CPU says so, with the
 * waited-for lock's holder. */
typedef struct waiter {
    atomic_uint cpu;
    atomic_bool started;
} waiter_t;

static void *wait_for_pmm(void *arg)
{
    waiter_t *w = arg;
    atomic_store(&w->cpu, mm_hook_cpu_index());
    atomic_store(&w->started, true);
    mm_irqflags_t f = mm_spin_lock_irqsave(&heap_lock);
    mm_spin_lock(&pmm_lock);
    mm_spin_unlock(&pmm_lock);
    mm_spin_unlock_irqrestore(&heap_lock, f);
    return NULL;
}

static void assert_info(const mm_lock_info_t *i, const mm_spinlock_t *lock, const char *name,
                        unsigned rank, unsigned holder)
{
    cr_assert_eq(i->lock, lock);
    cr_assert_str_eq(i->name, name);
    cr_assert_eq(i->rank, rank);
    cr_assert_eq(i->holder, holder, "%s held by %u, not %u", name, i->holder, holder);
}

Test(lockup, snapshot_lists_the_lock_waited_for_and_the_locks_held)
{
    holder_t h = {.take_vmm = true};
    pthread_t ht, wt;
    start_holder(&ht, &h);
    unsigned hc = atomic_load(&h.cpu);
    waiter_t w = {0};
    cr_assert_eq(pthread_create(&wt, NULL, wait_for_pmm, &w), 0);
    while (!atomic_load(&w.started))
        sched_yield();
    unsigned wc = atomic_load(&w.cpu);

    /* The waiter stays in its wait until the holder is told to go, which
     * happens only after the snapshot saw it there. */
    mm_lock_cpu_snapshot_t s;
    do {
        sched_yield();
        cr_assert(mm_lock_debug_snapshot(wc, &s));
    } while (s.waiting.lock == NULL);
    cr_assert(s.recorded);
    assert_info(&s.waiting, &pmm_lock, "pmm", MM_LOCK_RANK_PMM, hc);
    cr_assert_eq(s.held_count, 1);
    assert_info(&s.held[0], &heap_lock, "kheap block", MM_LOCK_RANK_KHEAP_BLOCK, wc);

    cr_assert(mm_lock_debug_snapshot(hc, &s));
    cr_assert_null(s.waiting.lock);
    cr_assert_eq(s.held_count, 2);
    assert_info(&s.held[0], &vmm_lock, "vmm", MM_LOCK_RANK_VMM, hc);
    assert_info(&s.held[1], &pmm_lock, "pmm", MM_LOCK_RANK_PMM, hc);

    stop_holder(ht, &h);
    pthread_join(wt, NULL);
    for (unsigned cpu = 0; cpu < 3 && cpu < HADRON_MM_MAX_CPUS; cpu++) {
        cr_assert(mm_lock_debug_snapshot(cpu, &s));
        cr_assert_null(s.waiting.lock, "CPU %u", cpu);
        cr_assert_eq(s.held_count, 0, "CPU %u", cpu);
    }
    cr_assert_eq(mm_spin_holder(&pmm_lock), MM_LOCK_NO_CPU);
    cr_assert_eq(mm_spin_holder(&vmm_lock), MM_LOCK_NO_CPU);
    cr_assert_eq(test_panics.count, 0);
}

Test(lockup, snapshot_of_a_cpu_without_a_record_is_refused)
{
    mm_lock_cpu_snapshot_t s;
    memset(&s, 0xa5, sizeof s);
    cr_assert_not(mm_lock_debug_snapshot(HADRON_MM_MAX_CPUS, &s));
    cr_assert_not(s.recorded);
    cr_assert_null(s.waiting.lock);
    cr_assert_eq(s.held_count, 0);
}

/* A trylock records its holder too; the holder is cleared before the lock
 * is handed on. */
Test(lockup, trylock_and_unlock_keep_the_holder)
{
    static mm_spinlock_t l = MM_SPINLOCK_INIT;
    cr_assert_eq(mm_spin_holder(&l), MM_LOCK_NO_CPU);
    cr_assert(mm_spin_trylock(&l));
    cr_assert_eq(mm_spin_holder(&l), mm_hook_cpu_index());
    mm_lock_cpu_snapshot_t s;
    cr_assert(mm_lock_debug_snapshot(mm_hook_cpu_index(), &s));
    cr_assert_eq(s.held_count, 1);
    assert_info(&s.held[0], &l, "unranked lock", MM_LOCK_RANK_NONE, mm_hook_cpu_index());
    mm_spin_unlock(&l);
    cr_assert_eq(mm_spin_holder(&l), MM_LOCK_NO_CPU);
}

#else

/* Without lock_order nothing is recorded: no holder, no snapshot. */
Test(lockup, off_records_nothing)
{
    mm_spinlock_t l = MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_PMM, "pmm");
    mm_spin_lock(&l);
    cr_assert_eq(mm_spin_holder(&l), MM_LOCK_NO_CPU);
    mm_lock_cpu_snapshot_t s;
    cr_assert_not(mm_lock_debug_snapshot(0, &s));
    cr_assert_not(s.recorded);
    cr_assert_null(s.waiting.lock);
    mm_spin_unlock(&l);
    cr_assert_eq(mm_lock_debug_longest_stall(), 0);
}

#endif
