/*
 * kmem_cache: the rare side of each CPU's front. A CPU uses its own front
 * with plain loads and stores (kmem_front.c); any other context that must
 * see or change fronts (draining them, freeing a table array fronts may be
 * reading, a fork handler) first keeps them all out of use here. Each
 * front's `active` word and the index's `holders` count are a per-CPU gate
 * (hadron/mm/gate.h has the handshake and the argument).
 *
 * A front made while a hold is being taken is covered too: publishing it
 * is a seq_cst compare-and-swap, a full barrier before its CPU's first
 * load of holders, and the holder reads the array of fronts after its own
 * barrier.
 */
#include "kmem_internal.h"

#include <hadron/mm/gate.h>

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
        inside = fr != NULL && mm_gate_entered(&fr->active);
    }
    mm_hook_irq_restore(f);
    return inside;
}

bool kh_fronts_hold(kmem_index_t *x)
{
    if (kh_inside_own_front(x) || !mm_gate_hold(&x->holders))
        return false;
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    for (unsigned cpu = 0; all != NULL && cpu < HADRON_MM_MAX_CPUS; cpu++) {
        kh_front_t *fr = __atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE);
        if (fr != NULL)
            mm_gate_wait_left(&fr->active);
    }
    return true;
}

void kh_fronts_release(kmem_index_t *x)
{
    mm_gate_release(&x->holders);
}
