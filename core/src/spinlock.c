/*
 * hadron-mm core: the contended half of the ticket lock (spinlock.h).
 */
#include <hadron/mm/spinlock.h>

#include "lock_order_internal.h"

__attribute__((noinline, cold)) void mm_spin_wait(mm_spinlock_t *lock, unsigned ticket)
{
#if HADRON_MM_LOCK_ORDER
    mm_lock_order_wait(lock, ticket);
#elif HADRON_MM_SPIN_YIELD
    unsigned spins = 0;
    while (atomic_load_explicit(&lock->now_serving, memory_order_acquire) != ticket) {
        mm_cpu_relax();
        if (++spins % MM_SPIN_YIELD_SPINS == 0)
            mm_hook_spin_yield();
    }
#else
    while (atomic_load_explicit(&lock->now_serving, memory_order_acquire) != ticket)
        mm_cpu_relax();
#endif
}
