/*
 * hadron-mm core: per-CPU gates. A gate lets one CPU use its own per-CPU
 * state (the PMM's frame cache, a kmem_cache front) with plain loads and
 * stores, while any other context that must see or change that state
 * (a drain, a check, retiring a table, a fork handler) first holds every
 * gate of the set out of use. It is Dekker's handshake, with the expensive
 * barrier on the rare side:
 *
 *   a CPU entering its gate               a holder
 *   active = 1                            holders++ (seq_cst RMW)
 *   barrier (the entering half)           barrier (mm_gate_hold)
 *   holders != 0? leave: locked path      wait until every active == 0
 *
 * With the asymmetric_barrier option (config.h) the entering half is a
 * compiler barrier and the holder's is mm_hook_cpu_barrier, which makes
 * every other CPU execute a full barrier: the entering CPU's store of
 * active then reaches memory before its load of holders, or after the
 * holder's increment is visible to that load. Either the holder sees
 * active == 1 and waits for the CPU to leave (its release store of active
 * = 0 publishes everything it did inside), or the CPU sees holders != 0
 * and takes its locked path. Without the option both halves are full
 * fences (seq_cst), the textbook form, and the hook is never called; a
 * fence on x86_64 costs what a locked instruction costs, which the option
 * exists to avoid.
 *
 * The gate itself is two words the caller places: an `active` word per
 * CPU and one `holders` count per set. Interrupts are off while a CPU is
 * inside (its gate is per CPU, and an interrupt that comes meanwhile finds
 * it entered: mm_gate_enter fails and the interrupt takes the locked
 * path). A section must not wait for anything a holder may hold while it
 * waits (holders wait before they take their locks), so the wait ends.
 */
#ifndef HADRON_MM_GATE_H
#define HADRON_MM_GATE_H

#include <stdbool.h>

#include <hadron/mm/config.h>
#include <hadron/mm/hooks.h>

/* Enters the calling CPU's gate `active` of the set counted by `holders`,
 * interrupts off: false, with nothing changed, when some context holds
 * the set or the caller interrupted this CPU inside the gate. O(1); no
 * locked instruction with asymmetric_barrier. */
static inline bool mm_gate_enter(unsigned *active, const unsigned *holders)
{
    if (__atomic_load_n(active, __ATOMIC_RELAXED) != 0)
        return false;
    __atomic_store_n(active, 1, __ATOMIC_RELAXED);
#if HADRON_MM_ASYMMETRIC_BARRIER
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    if (__atomic_load_n(holders, __ATOMIC_ACQUIRE) == 0)
        return true;
    __atomic_store_n(active, 0, __ATOMIC_RELEASE);
    return false;
}

/* Leaves the gate: everything done inside is visible to a holder that
 * then sees it left. */
static inline void mm_gate_leave(unsigned *active)
{
    __atomic_store_n(active, 0, __ATOMIC_RELEASE);
}

/* Whether a CPU is inside the gate `active` (for the CPU itself: whether
 * the caller interrupted its own CPU in there, when waiting for the gate
 * to be left would never end). */
static inline bool mm_gate_entered(const unsigned *active)
{
    return __atomic_load_n(active, __ATOMIC_RELAXED) != 0;
}

/* The holder's half: counts the caller in `holders`, then makes the
 * counting visible to every CPU before any CPU's next look
 * (mm_hook_cpu_barrier with asymmetric_barrier). False, with the count
 * undone, when the hook refuses: the set cannot be held from here. The
 * caller then waits for each gate of the set with mm_gate_wait_left before
 * it touches what the gates guard, and ends with mm_gate_release. Called
 * with no hadron-mm lock held, interrupts as the caller's caller left them
 * (hooks.h); never from inside a gate of the set. */
bool mm_gate_hold(unsigned *holders);

/* Waits until no CPU is inside the gate `active` (spinning; with
 * spin_yield, mm_hook_spin_yield every MM_SPIN_YIELD_SPINS polls). */
void mm_gate_wait_left(const unsigned *active);

/* Ends a hold taken by mm_gate_hold. */
void mm_gate_release(unsigned *holders);

#endif /* HADRON_MM_GATE_H */
