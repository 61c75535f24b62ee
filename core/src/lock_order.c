/*
 * hadron-mm core: lock-order checking (the lock_order option, spinlock.h).
 *
 * Each CPU keeps the locks it holds in acquisition order. Only that CPU
 * reads or writes its record, with interrupts off (every hadron-mm lock is
 * taken with them off), so the record needs no lock of its own.
 */
#include <hadron/mm/assert.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/report.h>
#include <hadron/mm/spinlock.h>

#if HADRON_MM_LOCK_ORDER

/* Deepest nesting the order allows: one lock per rank, every CPU's lock of
 * a family, and room for an unranked lock or two beside them. */
#define LO_DEPTH (12u + 2u * HADRON_MM_MAX_CPUS)

typedef struct lo_cpu {
    unsigned depth;
    const mm_spinlock_t *held[LO_DEPTH];
} lo_cpu_t;

static lo_cpu_t lo_cpus[HADRON_MM_MAX_CPUS];

/* This CPU's record, or NULL when it has no per-CPU state. */
static lo_cpu_t *lo_self(void)
{
    unsigned cpu = mm_hook_cpu_index();
    return cpu < HADRON_MM_MAX_CPUS ? &lo_cpus[cpu] : (lo_cpu_t *)0;
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
    };
    mm_hook_panic(&r);
}

static void lo_push(lo_cpu_t *c, const mm_spinlock_t *lock)
{
    if (c->depth == LO_DEPTH)
        lo_panic("more hadron-mm locks held at once than the lock order allows", lock,
                 c->held[LO_DEPTH - 1]);
    c->held[c->depth++] = lock;
}

void mm_lock_order_acquire(const mm_spinlock_t *lock)
{
    lo_cpu_t *c = lo_self();
    if (c == (lo_cpu_t *)0)
        return;
    for (unsigned i = 0; i < c->depth; i++) {
        const mm_spinlock_t *h = c->held[i];
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
    lo_push(c, lock);
}

void mm_lock_order_acquired(const mm_spinlock_t *lock)
{
    lo_cpu_t *c = lo_self();
    if (c != (lo_cpu_t *)0)
        lo_push(c, lock);
}

void mm_lock_order_release(const mm_spinlock_t *lock)
{
    lo_cpu_t *c = lo_self();
    if (c == (lo_cpu_t *)0)
        return;
    /* Usually the last one; locks may be dropped in any order. A lock not
     * found was taken while this CPU had no index, or forgotten. */
    for (unsigned i = c->depth; i-- != 0;) {
        if (c->held[i] == lock) {
            for (unsigned k = i; k + 1 < c->depth; k++)
                c->held[k] = c->held[k + 1];
            c->depth--;
            return;
        }
    }
}

void mm_lock_order_forget_cpu(void)
{
    lo_cpu_t *c = lo_self();
    if (c != (lo_cpu_t *)0)
        c->depth = 0;
}

#else

void mm_lock_order_forget_cpu(void)
{
}

#endif
