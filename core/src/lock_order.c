/*
 * hadron-mm core: lock-order checking and lockup detection (the lock_order
 * option, spinlock.h).
 *
 * Each CPU keeps the locks it holds in acquisition order and the lock it
 * waits for. Only that CPU writes its record, with interrupts off (every
 * hadron-mm lock is taken with them off), so the record needs no lock of
 * its own; its fields are atomics written and read relaxed only so that a
 * watchdog on another CPU (mm_lock_debug_snapshot) may read them while
 * they change: a racy read, never a torn one. On the machines hadron-mm
 * targets a relaxed atomic load or store is a plain move.
 *
 * Each lock records its holder (CPU index + 1, 0 for none), written by the
 * holder only, after it took the lock and before it hands it on.
 */
#include <hadron/mm/assert.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/report.h>
#include <hadron/mm/spinlock.h>

#include "lock_order_internal.h"

atomic_ulong mm_spin_lockup_polls = MM_SPIN_LOCKUP_POLLS;

#if HADRON_MM_LOCK_ORDER

/* Deepest nesting the order allows: one lock per rank, every CPU's lock of
 * a family, and room for an unranked lock or two beside them. */
#define LO_DEPTH (12u + 2u * HADRON_MM_MAX_CPUS)

typedef const mm_spinlock_t *lo_lock_ptr;

typedef struct lo_cpu {
    atomic_uint depth;
    _Atomic(lo_lock_ptr) waiting;
    _Atomic(lo_lock_ptr) held[LO_DEPTH];
} lo_cpu_t;

static lo_cpu_t lo_cpus[HADRON_MM_MAX_CPUS];
static atomic_ulong lo_longest_stall;

#define LO_LOAD(obj) atomic_load_explicit(&(obj), memory_order_relaxed)
#define LO_STORE(obj, v) atomic_store_explicit(&(obj), (v), memory_order_relaxed)

/* This CPU's record, or NULL when it has no per-CPU state. */
static lo_cpu_t *lo_record(unsigned cpu)
{
    return cpu < HADRON_MM_MAX_CPUS ? &lo_cpus[cpu] : (lo_cpu_t *)0;
}

static lo_cpu_t *lo_self(void)
{
    return lo_record(mm_hook_cpu_index());
}

static _Noreturn void lo_panic(const char *message, const mm_spinlock_t *lock,
                               const mm_spinlock_t *held)
{
    mm_report_t r = {
        .kind = MM_REPORT_LOCK_ORDER,
        .message = message,
        .file = __FILE__,
        .line = __LINE__,
        .address = (uint64_t)(uintptr_t)lock,
        .offset = 0,
        .found = lock->rank,
        .expected = held->rank,
        .lock = lock->name,
        .held = held->name,
        .cpu = mm_hook_cpu_index(),
        .holder_cpu = mm_spin_holder(held),
    };
    mm_hook_panic(&r);
}

static void lo_push(lo_cpu_t *c, const mm_spinlock_t *lock)
{
    unsigned depth = LO_LOAD(c->depth);
    if (depth == LO_DEPTH)
        lo_panic("more hadron-mm locks held at once than the lock order allows", lock,
                 LO_LOAD(c->held[LO_DEPTH - 1]));
    LO_STORE(c->held[depth], lock);
    LO_STORE(c->depth, depth + 1);
}

void mm_lock_order_acquire(const mm_spinlock_t *lock)
{
    lo_cpu_t *c = lo_self();
    if (c == (lo_cpu_t *)0)
        return;
    unsigned depth = LO_LOAD(c->depth);
    for (unsigned i = 0; i < depth; i++) {
        const mm_spinlock_t *h = LO_LOAD(c->held[i]);
        if (h == lock)
            lo_panic("lock taken again by the CPU holding it", lock, h);
        /* A family's members nest only upwards in address. */
        if (h->rank == lock->rank && mm_lock_rank_is_family(lock->rank) &&
            (uintptr_t)h < (uintptr_t)lock)
            continue;
        if (lock->rank != MM_LOCK_RANK_NONE && h->rank != MM_LOCK_RANK_NONE &&
            h->rank >= lock->rank)
            lo_panic("lock taken out of the lock order (kheap -> address space -> VMM -> PMM)",
                     lock, h);
    }
}

void mm_lock_order_acquired(mm_spinlock_t *lock)
{
    unsigned cpu = mm_hook_cpu_index();
    /* UINT_MAX (no index) wraps to 0: "no CPU". */
    atomic_store_explicit(&lock->holder, cpu + 1u, memory_order_relaxed);
    lo_cpu_t *c = lo_record(cpu);
    if (c != (lo_cpu_t *)0)
        lo_push(c, lock);
}

void mm_lock_order_release(mm_spinlock_t *lock)
{
    atomic_store_explicit(&lock->holder, 0, memory_order_relaxed);
    lo_cpu_t *c = lo_self();
    if (c == (lo_cpu_t *)0)
        return;
    /* Usually the last one; locks may be dropped in any order. A lock not
     * found was taken while this CPU had no index, or forgotten. */
    unsigned depth = LO_LOAD(c->depth);
    for (unsigned i = depth; i-- != 0;) {
        if (LO_LOAD(c->held[i]) == lock) {
            for (unsigned k = i; k + 1 < depth; k++)
                LO_STORE(c->held[k], LO_LOAD(c->held[k + 1]));
            LO_STORE(c->depth, depth - 1);
            return;
        }
    }
}

void mm_lock_order_forget_cpu(void)
{
    lo_cpu_t *c = lo_self();
    if (c != (lo_cpu_t *)0) {
        LO_STORE(c->depth, 0);
        LO_STORE(c->waiting, (lo_lock_ptr)0);
    }
}

unsigned mm_spin_holder(const mm_spinlock_t *lock)
{
    return atomic_load_explicit(&lock->holder, memory_order_relaxed) - 1u;
}

static _Noreturn void lo_lockup(const mm_spinlock_t *lock, unsigned cpu, unsigned ticket,
                                unsigned serving, unsigned long polls)
{
    mm_report_t r = {
        .kind = MM_REPORT_LOCKUP,
        .message = "lock not handed on within the spin budget (lockup)",
        .file = __FILE__,
        .line = __LINE__,
        .address = (uint64_t)(uintptr_t)lock,
        .offset = polls,
        .found = serving,
        .expected = ticket,
        .lock = lock->name,
        .held = (const char *)0,
        .cpu = cpu,
        .holder_cpu = mm_spin_holder(lock),
    };
    mm_hook_panic(&r);
}

/* Records the longest stall of the waits that ended with the lock taken
 * (not those reported as lockups). */
static void lo_note_stall(unsigned long polls)
{
    unsigned long longest = atomic_load_explicit(&lo_longest_stall, memory_order_relaxed);
    while (polls > longest &&
           !atomic_compare_exchange_weak_explicit(&lo_longest_stall, &longest, polls,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void mm_lock_order_wait(mm_spinlock_t *lock, unsigned ticket)
{
    unsigned cpu = mm_hook_cpu_index();
    lo_cpu_t *c = lo_record(cpu);
    if (c != (lo_cpu_t *)0)
        LO_STORE(c->waiting, lock);
    unsigned long budget = atomic_load_explicit(&mm_spin_lockup_polls, memory_order_relaxed);
    unsigned serving = atomic_load_explicit(&lock->now_serving, memory_order_acquire);
    unsigned long stalled = 0, longest = 0;
#if HADRON_MM_SPIN_YIELD
    unsigned spins = 0;
#endif
    while (serving != ticket) {
        mm_cpu_relax();
#if HADRON_MM_SPIN_YIELD
        if (++spins % MM_SPIN_YIELD_SPINS == 0)
            mm_hook_spin_yield();
#endif
        unsigned now = atomic_load_explicit(&lock->now_serving, memory_order_acquire);
        if (now != serving) {
            /* Handed on: the queue moves, whatever its length. */
            serving = now;
            if (stalled > longest)
                longest = stalled;
            stalled = 0;
        } else if (++stalled == budget) {
            lo_lockup(lock, cpu, ticket, serving, stalled);
        }
    }
    if (stalled > longest)
        longest = stalled;
    lo_note_stall(longest);
    if (c != (lo_cpu_t *)0)
        LO_STORE(c->waiting, (lo_lock_ptr)0);
}

static void lo_info(mm_lock_info_t *out, const mm_spinlock_t *lock)
{
    out->lock = lock;
    out->name = lock->name;
    out->rank = lock->rank;
    out->holder = mm_spin_holder(lock);
}

bool mm_lock_debug_snapshot(unsigned cpu, mm_lock_cpu_snapshot_t *out)
{
    *out = (mm_lock_cpu_snapshot_t){.recorded = false};
    lo_cpu_t *c = lo_record(cpu);
    if (c == (lo_cpu_t *)0)
        return false;
    out->recorded = true;
    const mm_spinlock_t *w = LO_LOAD(c->waiting);
    if (w != (lo_lock_ptr)0)
        lo_info(&out->waiting, w);
    unsigned depth = LO_LOAD(c->depth);
    if (depth > LO_DEPTH)
        depth = LO_DEPTH;
    unsigned listed = 0;
    for (unsigned i = 0; i < depth && listed < MM_LOCK_SNAPSHOT_HELD; i++) {
        /* A slot read while the CPU shrinks its list may be stale or, past
         * the new depth, already reused: report what is there. */
        const mm_spinlock_t *h = LO_LOAD(c->held[i]);
        if (h != (lo_lock_ptr)0)
            lo_info(&out->held[listed++], h);
    }
    out->held_count = depth < listed ? listed : depth;
    return true;
}

unsigned long mm_lock_debug_longest_stall(void)
{
    return atomic_load_explicit(&lo_longest_stall, memory_order_relaxed);
}

#else

void mm_lock_order_forget_cpu(void)
{
}

unsigned mm_spin_holder(const mm_spinlock_t *lock)
{
    (void)lock;
    return MM_LOCK_NO_CPU;
}

bool mm_lock_debug_snapshot(unsigned cpu, mm_lock_cpu_snapshot_t *out)
{
    (void)cpu;
    *out = (mm_lock_cpu_snapshot_t){.recorded = false};
    return false;
}

unsigned long mm_lock_debug_longest_stall(void)
{
    return 0;
}

#endif
