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
 *
 * Lock order (docs/README.md, "Locks and lock order"): every hadron-mm
 * lock has a rank, and a CPU takes locks only in increasing rank: kheap
 * (statistics, then object caches, then blocks) -> address space -> VMM ->
 * PMM. With the lock_order option each CPU (mm_hook_cpu_index below
 * HADRON_MM_MAX_CPUS; others are not checked) records the locks it holds,
 * and taking a lock whose rank is not above every ranked lock held, or a
 * lock already held, panics (MM_REPORT_LOCK_ORDER) naming both locks,
 * before spinning, so the report comes instead of the deadlock.
 *
 * The same builds also find the deadlocks the order cannot see (a holder
 * that never releases: a lost unlock, a holder stopped or looping): each
 * lock records the CPU holding it and each CPU the lock it waits for; a
 * waiter whose ticket's turn does not move for mm_spin_lockup_polls polls
 * panics (MM_REPORT_LOCKUP) naming the lock and both CPUs, and a kernel's
 * watchdog can list every CPU's waited-for and held locks at any time
 * (mm_lock_debug_snapshot). Without the option a lock has no rank, name or
 * holder fields and costs nothing extra.
 */
#ifndef HADRON_MM_SPINLOCK_H
#define HADRON_MM_SPINLOCK_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <hadron/mm/config.h>
#include <hadron/mm/hooks.h>

/* Ranks in the documented order; a CPU takes locks in increasing rank.
 * MM_LOCK_RANK_NONE (MM_SPINLOCK_INIT, mm_spin_init) is outside the order:
 * only taking such a lock again while holding it is caught. The per-CPU
 * rank is a family: one lock per CPU, several of which a drain or a fork
 * handler holds at once, always taken in ascending address order (the
 * fronts of an index, taken in CPU order), which
 * the checker enforces in place of the rank rule between them. */
typedef enum mm_lock_rank {
    MM_LOCK_RANK_NONE = 0,
    MM_LOCK_RANK_KHEAP_TRACK,  /* kmalloc-layer statistics (alloc_tracking) */
    MM_LOCK_RANK_KHEAP_FRONT,  /* a CPU's front of an object-cache index (family) */
    MM_LOCK_RANK_KHEAP_CACHE,  /* the size-class index, each kmem_cache */
    MM_LOCK_RANK_KHEAP_BLOCK,  /* one heap's block layer */
    MM_LOCK_RANK_ASPACE,       /* one user address space */
    MM_LOCK_RANK_VMM,          /* the kernel VMM */
    MM_LOCK_RANK_PMM,          /* one frame allocator */
} mm_lock_rank_t;

/* Whether locks of `rank` form a per-CPU family (see mm_lock_rank_t). */
static inline int mm_lock_rank_is_family(unsigned rank)
{
    return rank == MM_LOCK_RANK_KHEAP_FRONT;
}

typedef struct mm_spinlock {
    atomic_uint next_ticket;
    atomic_uint now_serving;
#if HADRON_MM_LOCK_ORDER
    const char *name;    /* static text for reports */
    unsigned rank;       /* mm_lock_rank_t */
    atomic_uint holder;  /* holding CPU's index + 1; 0: free (or index UINT_MAX) */
#endif
} mm_spinlock_t;

#if HADRON_MM_LOCK_ORDER
#define MM_SPINLOCK_INIT_RANKED(rank, name) {0, 0, (name), (rank), 0}
#else
#define MM_SPINLOCK_INIT_RANKED(rank, name) {0, 0}
#endif
#define MM_SPINLOCK_INIT MM_SPINLOCK_INIT_RANKED(MM_LOCK_RANK_NONE, "unranked lock")

/* Lock-order bookkeeping (lock_order builds; lock_order.c), called by the
 * inline lock functions below, not by users. acquire checks `lock` against
 * this CPU's held locks before its ticket is taken (panics on a
 * violation); acquired, once the lock is taken (by a wait or a trylock),
 * records it as held by this CPU, in the CPU's record and in the lock's
 * holder field; release drops both before the lock is handed on.
 * O(locks held). */
void mm_lock_order_acquire(const mm_spinlock_t *lock);
void mm_lock_order_acquired(mm_spinlock_t *lock);
void mm_lock_order_release(mm_spinlock_t *lock);

/* Forgets every lock this CPU holds or waits for: for a harness that
 * survives a panic raised with locks held or a ticket taken (tests) and
 * does not use those locks again (a lockup report's lock keeps the
 * abandoned ticket: re-initialise it). Leaves the locks' holder fields
 * alone. No-op without lock_order. */
void mm_lock_order_forget_cpu(void);

/* ---- Lockup detection and the watchdog's view (lock_order builds) ----- */

/* "No CPU": a free lock's holder (or one taken by a CPU whose index is
 * UINT_MAX, which this value is). */
#define MM_LOCK_NO_CPU UINT_MAX

/* Default of mm_spin_lockup_polls; a kernel may define its own (compiler
 * flag) when building hadron-mm, or set the variable at boot from its own
 * measure of the poll rate. 2^31 polls of a load and a PAUSE or YIELD:
 * about 10 s at the fastest poll loop (5 ns), minutes under QEMU TCG, and
 * over 6000 times the longest stall measured (342k polls, the host stress
 * programs on a loaded 2-core machine; 56k in the x86_64 test kernel with
 * 4 vCPUs on that machine): a holder's critical section, or its vCPU or
 * thread preempted, never comes near it. A shorter lockup is still seen by
 * a watchdog through mm_lock_debug_snapshot. */
#ifndef MM_SPIN_LOCKUP_POLLS
#define MM_SPIN_LOCKUP_POLLS (1ul << 31)
#endif

/* Polls a waiter makes without its lock changing hands before it reports a
 * lockup (lock_order builds): the count restarts whenever now_serving
 * moves, so a long queue that keeps moving never trips it, only a holder
 * that keeps the lock. 0 turns detection off. Read (relaxed) at the start
 * of every contended wait: set it at boot, or in a test before the wait
 * it governs; any CPU may change it at any time. Unused without
 * lock_order. */
extern atomic_ulong mm_spin_lockup_polls;

/* The CPU holding `lock` (its mm_hook_cpu_index, recorded even at or above
 * HADRON_MM_MAX_CPUS), or MM_LOCK_NO_CPU when it is free, its holder's
 * index was UINT_MAX, or in builds without lock_order. A racy read for
 * diagnostics: the answer may be stale by the time it returns. Any
 * context, NMI included; O(1), lock-free. */
unsigned mm_spin_holder(const mm_spinlock_t *lock);

/* How many held locks a snapshot lists (a CPU may hold more: held_count). */
#define MM_LOCK_SNAPSHOT_HELD 8u

/* One lock as a snapshot names it. */
typedef struct mm_lock_info {
    const mm_spinlock_t *lock; /* its address (NULL: none) */
    const char *name;          /* its name (mm_spin_init_ranked) */
    unsigned rank;             /* mm_lock_rank_t */
    unsigned holder;           /* holding CPU, or MM_LOCK_NO_CPU */
} mm_lock_info_t;

/* What one CPU is doing with hadron-mm locks, as mm_lock_debug_snapshot
 * saw it. */
typedef struct mm_lock_cpu_snapshot {
    bool recorded;             /* lock_order build and cpu < HADRON_MM_MAX_CPUS */
    mm_lock_info_t waiting;    /* the lock it spins for (lock NULL: none) */
    unsigned held_count;       /* locks it holds, in acquisition order */
    mm_lock_info_t held[MM_LOCK_SNAPSHOT_HELD]; /* the first of them */
} mm_lock_cpu_snapshot_t;

/* Fills *out with the lock `cpu` waits for (and that lock's holder) and the
 * locks it holds: for a watchdog that found a CPU stuck, or a debugger.
 * Returns false, with *out cleared (recorded false), when `cpu` has no
 * record (cpu >= HADRON_MM_MAX_CPUS) or the build has no lock_order.
 *
 * Contexts: any, from any CPU, NMI and panic handlers included: it takes
 * no lock, calls no hook, writes only *out, and is O(locks held). The
 * reads are racy: the CPU may take or drop locks meanwhile, so a snapshot
 * of a running CPU can miss a lock, show one twice (held and waited for),
 * or name a holder that has just released. A CPU that is really stuck does
 * not move, and its snapshot is exact. Names and holders are read from the
 * locks themselves, so a lock must stay mapped while any CPU may hold or
 * wait for it (always true of hadron-mm's locks, which live in the
 * instances they protect). */
bool mm_lock_debug_snapshot(unsigned cpu, mm_lock_cpu_snapshot_t *out);

/* The longest stall of any contended wait that ended with the lock taken,
 * since boot (lock_order builds; a wait reported as a lockup does not
 * count): polls without now_serving moving, the quantity
 * mm_spin_lockup_polls bounds. For choosing a budget: run the workload and
 * read it. 0 without lock_order. Any context; O(1). */
unsigned long mm_lock_debug_longest_stall(void);

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

/* `rank` places the lock in the lock order, `name` (static text) names it
 * in lock-order reports; both are kept only in lock_order builds. */
static inline void mm_spin_init_ranked(mm_spinlock_t *lock, mm_lock_rank_t rank,
                                       const char *name)
{
    atomic_init(&lock->next_ticket, 0);
    atomic_init(&lock->now_serving, 0);
#if HADRON_MM_LOCK_ORDER
    lock->name = name;
    lock->rank = (unsigned)rank;
    atomic_init(&lock->holder, 0);
#else
    (void)rank;
    (void)name;
#endif
}

/* A lock outside the order (MM_LOCK_RANK_NONE). */
static inline void mm_spin_init(mm_spinlock_t *lock)
{
    mm_spin_init_ranked(lock, MM_LOCK_RANK_NONE, "unranked lock");
}

/* Waits until `ticket` is served; the contended half of mm_spin_lock, out
 * of line (spinlock.c) so the uncontended lock taken inline on every
 * allocation keeps no loop state in registers. O(waiters). In lock_order
 * builds it records the lock as this CPU's waited-for lock and panics
 * (MM_REPORT_LOCKUP) after mm_spin_lockup_polls polls without the lock
 * changing hands. */
void mm_spin_wait(mm_spinlock_t *lock, unsigned ticket);

/* O(waiters). Does not touch interrupts: use the _irqsave form unless the
 * caller already runs with interrupts off. */
static inline void mm_spin_lock(mm_spinlock_t *lock)
{
#if HADRON_MM_LOCK_ORDER
    mm_lock_order_acquire(lock);
#endif
    unsigned ticket = atomic_fetch_add_explicit(&lock->next_ticket, 1, memory_order_relaxed);
    if (__builtin_expect(atomic_load_explicit(&lock->now_serving, memory_order_acquire) != ticket,
                         0))
        mm_spin_wait(lock, ticket);
#if HADRON_MM_LOCK_ORDER
    mm_lock_order_acquired(lock);
#endif
}

/* Takes the lock only if nobody holds or waits for it. */
static inline bool mm_spin_trylock(mm_spinlock_t *lock)
{
    /* Acquire on now_serving pairs with the previous holder's release in
     * mm_spin_unlock: without it a trylock winner could see stale data. */
    unsigned serving = atomic_load_explicit(&lock->now_serving, memory_order_acquire);
    unsigned expected = serving;
    bool taken = atomic_compare_exchange_strong_explicit(&lock->next_ticket, &expected, serving + 1,
                                                         memory_order_acquire, memory_order_relaxed);
#if HADRON_MM_LOCK_ORDER
    if (taken)
        mm_lock_order_acquired(lock);
#endif
    return taken;
}

static inline void mm_spin_unlock(mm_spinlock_t *lock)
{
#if HADRON_MM_LOCK_ORDER
    mm_lock_order_release(lock);
#endif
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
