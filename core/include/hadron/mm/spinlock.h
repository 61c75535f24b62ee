/*
 * hadron-mm core: the lock used by every component.
 *
 * A ticket spinlock on C11 atomics: FIFO fair, so a CPU freeing frames in a
 * loop cannot starve another. The _irqsave forms disable interrupts through
 * the kernel's hooks first, so an interrupt handler that allocates cannot
 * spin forever on a lock its own CPU holds. Not recursive.
 *
 * With the spin_yield option (native builds), a waiter calls
 * mm_hook_spin_yield() every MM_SPIN_YIELD_SPINS polls: on a host the
 * holder or the next ticket's owner may be preempted, and FIFO order makes
 * every later waiter wait for it (a convoy costing whole time slices per
 * hand-over). Kernels, whose holders run with preemption off, leave it off.
 */
#ifndef HADRON_MM_SPINLOCK_H
#define HADRON_MM_SPINLOCK_H

#include <stdatomic.h>
#include <stdbool.h>

#include <hadron/mm/config.h>
#include <hadron/mm/hooks.h>

typedef struct mm_spinlock {
    atomic_uint next_ticket;
    atomic_uint now_serving;
} mm_spinlock_t;

#define MM_SPINLOCK_INIT {0, 0}

/* Polls between calls of mm_hook_spin_yield (spin_yield builds): a few to
 * tens of µs of PAUSE (its latency differs between CPU generations), far
 * longer than any hadron-mm critical section, so a waiter yields only when
 * the thread it waits for is not running. */
#define MM_SPIN_YIELD_SPINS 1024u

static inline void mm_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void mm_spin_init(mm_spinlock_t *lock)
{
    atomic_init(&lock->next_ticket, 0);
    atomic_init(&lock->now_serving, 0);
}

/* Waits until `ticket` is served; the contended half of mm_spin_lock, out
 * of line (spinlock.c) so the uncontended lock taken inline on every
 * allocation keeps no loop state in registers. O(waiters). */
void mm_spin_wait(mm_spinlock_t *lock, unsigned ticket);

/* O(waiters). Does not touch interrupts: use the _irqsave form unless the
 * caller already runs with interrupts off. */
static inline void mm_spin_lock(mm_spinlock_t *lock)
{
    unsigned ticket = atomic_fetch_add_explicit(&lock->next_ticket, 1, memory_order_relaxed);
    if (__builtin_expect(atomic_load_explicit(&lock->now_serving, memory_order_acquire) != ticket,
                         0))
        mm_spin_wait(lock, ticket);
}

/* Takes the lock only if nobody holds or waits for it. */
static inline bool mm_spin_trylock(mm_spinlock_t *lock)
{
    /* Acquire on now_serving pairs with the previous holder's release in
     * mm_spin_unlock: without it a trylock winner could see stale data. */
    unsigned serving = atomic_load_explicit(&lock->now_serving, memory_order_acquire);
    unsigned expected = serving;
    return atomic_compare_exchange_strong_explicit(&lock->next_ticket, &expected, serving + 1,
                                                   memory_order_acquire, memory_order_relaxed);
}

static inline void mm_spin_unlock(mm_spinlock_t *lock)
{
    unsigned serving = atomic_load_explicit(&lock->now_serving, memory_order_relaxed);
    atomic_store_explicit(&lock->now_serving, serving + 1, memory_order_release);
}

/* True while some CPU holds the lock (diagnostics and assertions only). */
static inline bool mm_spin_is_locked(mm_spinlock_t *lock)
{
    return atomic_load_explicit(&lock->next_ticket, memory_order_relaxed) !=
           atomic_load_explicit(&lock->now_serving, memory_order_relaxed);
}

static inline mm_irqflags_t mm_spin_lock_irqsave(mm_spinlock_t *lock)
{
    mm_irqflags_t flags = mm_hook_irq_save();
    mm_spin_lock(lock);
    return flags;
}

static inline void mm_spin_unlock_irqrestore(mm_spinlock_t *lock, mm_irqflags_t flags)
{
    mm_spin_unlock(lock);
    mm_hook_irq_restore(flags);
}

#endif /* HADRON_MM_SPINLOCK_H */
