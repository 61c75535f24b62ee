/*
 * kmem_cache: the rare side of each CPU's front. A CPU uses its own front
 * with plain loads and stores (kmem_front.c); any other context that must
 * see or change fronts (draining them, freeing a table array fronts may be
 * reading, a fork handler) first keeps them all out of use here.
 *
 * The handshake is Dekker's, with the expensive barrier on this side:
 *
 *   a CPU entering its front              a holder
 *   active = 1                            holders++ (seq_cst RMW)
 *   barrier (owner_fence)                 barrier (cross_barrier)
 *   holders != 0? leave: locked path      wait until every active == 0
 *
 * With the asymmetric_barrier option the entering CPU's barrier is a
 * compiler barrier and the holder's is mm_hook_cpu_barrier, which makes
 * every other CPU execute a full barrier: the entering CPU's store of
 * active then reaches memory before its load of holders, or after the
 * holder's increment is visible to that load. Either the holder sees
 * active == 1 and waits for the CPU to leave (its release store of active
 * = 0 publishes everything it did inside), or the CPU sees holders != 0 and
 * stays out. Without the option both barriers are full fences (seq_cst),
 * the textbook form; no hook is needed, but a fence on x86_64 costs what
 * a locked instruction costs, which the option exists to avoid.
 *
 * A front made while a hold is being taken is covered too: publishing it
 * is a seq_cst compare-and-swap, a full barrier before its CPU's first
 * load of holders, and the holder reads the array of fronts after its own
 * barrier.
 */
#include "kmem_internal.h"

#include <hadron/mm/spinlock.h>

/* The holder's half of the handshake. */
static bool kh_cross_barrier(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#if HADRON_MM_ASYMMETRIC_BARRIER
    return mm_hook_cpu_barrier();
#else
    return true;
#endif
}

/* Whether the caller runs inside its own CPU's front of x: an interrupt
 * (an NMI in a kernel, a signal handler on a host) that came while its CPU
 * was in there. Waiting for that front to be left would never end. */
static bool kh_inside_own_front(const kmem_index_t *x)
{
    mm_irqflags_t f = mm_hook_irq_save();
    unsigned cpu = mm_hook_cpu_index();
    bool inside = false;
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    if (cpu < HADRON_MM_MAX_CPUS && all != NULL) {
        kh_front_t *fr = __atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE);
        inside = fr != NULL && __atomic_load_n(&fr->active, __ATOMIC_RELAXED) != 0;
    }
    mm_hook_irq_restore(f);
    return inside;
}

static void kh_wait_left(const kh_front_t *fr)
{
    unsigned spins = 0;
    while (__atomic_load_n(&fr->active, __ATOMIC_ACQUIRE) != 0) {
        mm_cpu_relax();
#if HADRON_MM_SPIN_YIELD
        if (++spins % MM_SPIN_YIELD_SPINS == 0)
            mm_hook_spin_yield();
#endif
    }
    (void)spins;
}

bool kh_fronts_hold(kmem_index_t *x)
{
    if (kh_inside_own_front(x))
        return false;
    __atomic_fetch_add(&x->holders, 1, __ATOMIC_SEQ_CST);
    if (!kh_cross_barrier()) {
        kh_fronts_release(x);
        return false;
    }
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    for (unsigned cpu = 0; all != NULL && cpu < HADRON_MM_MAX_CPUS; cpu++) {
        kh_front_t *fr = __atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE);
        if (fr != NULL)
            kh_wait_left(fr);
    }
    return true;
}

void kh_fronts_release(kmem_index_t *x)
{
    uint32_t was = __atomic_fetch_sub(&x->holders, 1, __ATOMIC_RELEASE);
    MM_ASSERT(was != 0);
    (void)was;
}
