/*
 * hadron-mm core: the holder's half of a per-CPU gate (gate.h).
 */
#include <hadron/mm/assert.h>
#include <hadron/mm/gate.h>
#include <hadron/mm/spinlock.h>

bool mm_gate_hold(unsigned *holders)
{
    __atomic_fetch_add(holders, 1, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#if HADRON_MM_ASYMMETRIC_BARRIER
    if (!mm_hook_cpu_barrier()) {
        mm_gate_release(holders);
        return false;
    }
#endif
    return true;
}

void mm_gate_wait_left(const unsigned *active)
{
#if HADRON_MM_SPIN_YIELD
    unsigned spins = 0;
    while (__atomic_load_n(active, __ATOMIC_ACQUIRE) != 0) {
        mm_cpu_relax();
        if (++spins % MM_SPIN_YIELD_SPINS == 0)
            mm_hook_spin_yield();
    }
#else
    while (__atomic_load_n(active, __ATOMIC_ACQUIRE) != 0)
        mm_cpu_relax();
#endif
}

void mm_gate_release(unsigned *holders)
{
    unsigned was = __atomic_fetch_sub(holders, 1, __ATOMIC_RELEASE);
    MM_ASSERT(was != 0);
    (void)was;
}
