/*
 * hadron-mm pmm: per-CPU frame caches in front of the bitmap.
 *
 * Each CPU owns a small stack of frames (pmm_pcp_t). With interrupts off,
 * an allocation pops from it under the CPU's own cache lock, and a free
 * pushes onto it with no lock at all (below): no shared lock, no shared
 * counter, and the only shared line touched is the frame's word of the
 * held bitmap, which the double-free check needs. The bitmap is visited
 * once per PMM_PCP_BATCH frames: to refill an empty cache, or to take the
 * coldest frames off a cache at its high-water mark.
 *
 * Cached frames are free memory that the bitmap does not see: they are
 * neither free nor held (pmm_internal.h), pmm_get_stats counts them as
 * free, pmm_frame_state reports them free, and every path that needs them
 * (an allocation that would fail, a contiguous request that finds no run,
 * pmm_reserve of a range holding one, pmm_drain, pmm_check) drains or reads
 * every cache under pmm_pcp_lock_all.
 *
 * Lock order: a cache lock, then the instance lock; several cache locks
 * only in ascending CPU order (pmm_pcp_lock_all). A remote cache is only
 * ever touched with its lock held, so the owner's hold on the allocation
 * path is uncontended except while a drainer works.
 *
 * The lock-free free. Every lock costs one locked read-modify-write, as
 * much as the held-bitmap update a free must make anyway (about 8 ns each
 * where this was measured): a pair through a cache made four of them. A
 * free now makes one, and that one also keeps the owner and a drainer
 * apart, as in Dekker's algorithm:
 *
 *   owner (pmm_pcp_free)                drainer (pmm_pcp_lock_all)
 *   s0 = drain_seq (acquire); even      lock the cache
 *   busy = 1 (release)                  drain_seq++ (seq_cst RMW): odd
 *   clear the held bit (seq_cst RMW)    wait until busy == 0 (seq_cst)
 *   drain_seq == s0 (seq_cst load)?     ... the cache is the drainer's ...
 *     yes: push, count + 1              drain_seq++ (release): even
 *     no:  set the held bit back        unlock the cache
 *   busy = 0 (release)
 *
 * Each side writes its flag, passes a full barrier (the read-modify-write:
 * a locked instruction on x86_64; on AArch64 the release store of busy
 * (stlr) and the seq_cst load of drain_seq (ldar) are ordered anyway,
 * RCsc, and so are the drainer's AL atomic and its ldar), then reads the
 * other's. The argument is the two targets' memory models: C11's alone
 * would want busy = 1 seq_cst, which on x86_64 is an xchg, the second
 * locked instruction this exists to avoid. So at
 * least one sees the other: either the drainer sees busy == 1 and waits for
 * the push to finish (busy's release, its acquire: everything the owner
 * wrote is visible), or the owner sees drain_seq changed and pushes
 * nothing. A drain that finished before s0 was read is visible through s0's
 * acquire. A free that finds drain_seq odd, or loses the race, or finds the
 * cache full, takes the cache lock and runs as before (free_locked_cache).
 *
 * A free that loses the race has cleared the frame's held bit for a moment
 * ("in flight": usable, neither free nor held, in no cache) and puts it
 * back. Nobody else can change that bit meanwhile (no allocator sees the
 * frame: it is in neither the bitmap nor a cache; another free of it finds
 * the bit clear and is refused), so putting it back is exact, and of two
 * frees racing on one frame exactly one still succeeds. A drainer that
 * holds every cache can see such a frame only from an owner that read s0
 * before the drainer made drain_seq odd, at most one per CPU (its next free
 * sees drain_seq odd and waits on the lock): pmm_check and pmm_reserve, the
 * drainers that read held bits of frames outside the caches, wait for every
 * busy to clear (pmm_pcp_wait_idle) and look again when they find one.
 *
 * Poisoning: a frame carries its "poisoned" mark into the cache in the low
 * bit of its entry (the poison bitmap only marks frames free in the
 * bitmap), is filled on a cached free and verified on a cached allocation,
 * exactly as on the locked paths.
 */
#include "pmm_internal.h"

#define PCP_POISONED 1u

static inline uint64_t entry_frame(uint64_t e)
{
    return e >> 1;
}

static inline void set_count(pmm_pcp_t *c, uint32_t n)
{
    MM_ASSERT(n <= PMM_PCP_HIGH);
    atomic_store_explicit(&c->count, n, memory_order_relaxed);
}

uint64_t pmm_pcp_total(const pmm_t *p)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++)
        n += pmm_pcp_count(&p->pcp[i]);
    return n;
}

void pmm_pcp_init(pmm_t *p)
{
    /* CPUs refill from different parts of memory while they can, so two
     * CPUs' frames rarely share a held-bitmap cache line (512 frames). */
    uint64_t stride = (p->span_frames / HADRON_MM_MAX_CPUS) & ~511ull;
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++) {
        pmm_pcp_t *c = &p->pcp[i];
        mm_spin_init_ranked(&c->lock, MM_LOCK_RANK_PMM_CACHE, "pmm cpu cache");
        atomic_init(&c->count, 0);
        atomic_init(&c->drain_seq, 0);
        atomic_init(&c->busy, 0);
        c->hint = stride * i;
    }
}

/* Instance lock held. Takes one free frame for cache c (next fit from the
 * cache's own hint) and returns its entry. */
static uint64_t take_for_cache_locked(pmm_t *p, pmm_pcp_t *c)
{
    uint64_t f = pmm_tree_find(&p->any, c->hint);
    if (f == PMM_NONE)
        f = pmm_tree_find(&p->any, 0);
    MM_ASSERT(f != PMM_NONE && f < p->span_frames);
    c->hint = f + 1 < p->span_frames ? f + 1 : 0;
    pmm_set_used_locked(p, f);
    p->free_frames--;
    uint64_t e = f << 1;
#if HADRON_MM_PMM_POISON
    if (p->poison_bm[f >> 6] & pmm_bit(f)) {
        p->poison_bm[f >> 6] &= ~pmm_bit(f);
        e |= PCP_POISONED;
    }
#endif
    return e;
}

/* Instance lock held. Frame entry e, cached, becomes free in the bitmap. */
static void give_back_locked(pmm_t *p, uint64_t e)
{
    uint64_t f = entry_frame(e);
    MM_ASSERT(f < p->span_frames && (PMM_USABLE(p, f >> 6) & pmm_bit(f)) != 0);
    MM_ASSERT((pmm_held_word(p, f >> 6) & pmm_bit(f)) == 0);
    pmm_set_free_locked(p, f);
    p->free_frames++;
#if HADRON_MM_PMM_POISON
    if (e & PCP_POISONED)
        p->poison_bm[f >> 6] |= pmm_bit(f);
#endif
    if (f < p->hint)
        p->hint = f;
}

/* Cache lock held, cache empty: up to PMM_PCP_BATCH frames from the
 * bitmap, the lowest ending on top so a burst of allocations walks up. */
static uint32_t refill(pmm_t *p, pmm_pcp_t *c)
{
    MM_ASSERT(pmm_pcp_count(c) == 0);
    mm_spin_lock(&p->lock);
    uint32_t n = (uint32_t)pmm_min(PMM_PCP_BATCH, p->free_frames);
    for (uint32_t i = 0; i < n; i++)
        c->frames[n - 1 - i] = take_for_cache_locked(p, c);
    set_count(c, n);
    mm_spin_unlock(&p->lock);
    return n;
}

/* Cache lock held, cache at the high-water mark: the PMM_PCP_BATCH frames
 * at the bottom (freed longest ago, the coldest) go back to the bitmap. */
static void trim(pmm_t *p, pmm_pcp_t *c)
{
    uint32_t n = pmm_pcp_count(c);
    mm_spin_lock(&p->lock);
    for (uint32_t i = 0; i < PMM_PCP_BATCH; i++)
        give_back_locked(p, c->frames[i]);
    set_count(c, n - PMM_PCP_BATCH);
    mm_spin_unlock(&p->lock);
    __builtin_memmove(&c->frames[0], &c->frames[PMM_PCP_BATCH],
                      (n - PMM_PCP_BATCH) * sizeof c->frames[0]);
}

bool pmm_pcp_alloc(pmm_t *p, pmm_pcp_t *c, uint64_t *frame)
{
    mm_spin_lock(&c->lock);
    uint32_t n = pmm_pcp_count(c);
    if (n == 0 && (n = refill(p, c)) == 0) {
        mm_spin_unlock(&c->lock);
        return false;
    }
    uint64_t e = c->frames[n - 1];
    uint64_t f = entry_frame(e);
    pmm_held_mark(p, f);
    set_count(c, n - 1);
#if HADRON_MM_PMM_POISON
    /* Verified before the lock is dropped, as on the locked path: a panic
     * leaves this cache locked and the frame never reaches the caller. */
    if (e & PCP_POISONED)
        pmm_poison_verify_frame(f);
#endif
    mm_spin_unlock(&c->lock);
    *frame = f;
    return true;
}

/* Rare: which mistake a refused free was needs the usable bit, which only
 * the instance lock makes safe to read. No cache lock held. */
static mm_status_t refused(pmm_t *p, uint64_t f)
{
    mm_spin_lock(&p->lock);
    bool usable = (PMM_USABLE(p, f >> 6) & pmm_bit(f)) != 0;
    mm_spin_unlock(&p->lock);
    return usable ? MM_ERR_DOUBLE_FREE : MM_ERR_NOT_USABLE;
}

/* The free under the cache lock: a drainer working on the cache, a race
 * lost to one, or a cache at the mark (trimmed first). */
static mm_status_t free_locked_cache(pmm_t *p, pmm_pcp_t *c, uint64_t f)
{
    mm_spin_lock(&c->lock);
    if (!pmm_held_take(p, f)) {
        mm_spin_unlock(&c->lock);
        return refused(p, f);
    }
    uint64_t e = f << 1;
#if HADRON_MM_PMM_POISON
    pmm_poison_fill_frame(f);
    e |= PCP_POISONED;
#endif
    if (pmm_pcp_count(c) == PMM_PCP_HIGH)
        trim(p, c);
    uint32_t n = pmm_pcp_count(c);
    c->frames[n] = e;
    set_count(c, n + 1);
    mm_spin_unlock(&c->lock);
    return MM_OK;
}

mm_status_t pmm_pcp_free(pmm_t *p, pmm_pcp_t *c, uint64_t f)
{
    /* The protocol and why it is race-free: the comment at the top. */
    unsigned s0 = atomic_load_explicit(&c->drain_seq, memory_order_acquire);
    uint32_t n = pmm_pcp_count(c);
    if ((s0 & 1) != 0 || n >= PMM_PCP_HIGH)
        return free_locked_cache(p, c, f);
    atomic_store_explicit(&c->busy, 1, memory_order_release);
    uint64_t *word = &p->held_bm[f >> 6];
    uint64_t old = __atomic_fetch_and(word, ~pmm_bit(f), __ATOMIC_SEQ_CST);
    if ((old & pmm_bit(f)) == 0) {
        atomic_store_explicit(&c->busy, 0, memory_order_release);
        return refused(p, f);
    }
    if (atomic_load_explicit(&c->drain_seq, memory_order_seq_cst) != s0) {
        /* A drainer may be inside: the frame goes back to "held" and the
         * free waits for the cache lock. */
        __atomic_fetch_or(word, pmm_bit(f), __ATOMIC_RELAXED);
        atomic_store_explicit(&c->busy, 0, memory_order_release);
        return free_locked_cache(p, c, f);
    }
    uint64_t e = f << 1;
#if HADRON_MM_PMM_POISON
    pmm_poison_fill_frame(f);
    e |= PCP_POISONED;
#endif
    c->frames[n] = e;
    set_count(c, n + 1);
    atomic_store_explicit(&c->busy, 0, memory_order_release);
    return MM_OK;
}

/* Waits until the owner of c is not inside a lock-free free. The load is
 * the drainer's read in the handshake (seq_cst: after its drain_seq
 * increment in the single total order; acquire: the owner's push is
 * visible once busy reads 0). */
static void wait_idle(pmm_pcp_t *c)
{
#if HADRON_MM_SPIN_YIELD
    unsigned spins = 0;
    while (atomic_load_explicit(&c->busy, memory_order_seq_cst) != 0) {
        mm_cpu_relax();
        if (++spins % MM_SPIN_YIELD_SPINS == 0)
            mm_hook_spin_yield();
    }
#else
    while (atomic_load_explicit(&c->busy, memory_order_seq_cst) != 0)
        mm_cpu_relax();
#endif
}

void pmm_pcp_lock_all(pmm_t *p)
{
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++) {
        pmm_pcp_t *c = &p->pcp[i];
        mm_spin_lock(&c->lock);
        atomic_fetch_add_explicit(&c->drain_seq, 1, memory_order_seq_cst);
        wait_idle(c);
    }
    mm_spin_lock(&p->lock);
}

void pmm_pcp_wait_idle(pmm_t *p)
{
    /* The caller read a held bit an in-flight free cleared: that free's
     * busy = 1 came before it, and this fence makes the read count as an
     * acquire, so the waits below see busy = 1 or the store that ended
     * the free (after which the bit is back). */
    atomic_thread_fence(memory_order_acquire);
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++)
        wait_idle(&p->pcp[i]);
}

void pmm_pcp_unlock_all(pmm_t *p)
{
    mm_spin_unlock(&p->lock);
    for (unsigned i = HADRON_MM_MAX_CPUS; i-- > 0;) {
        pmm_pcp_t *c = &p->pcp[i];
        unsigned s = atomic_load_explicit(&c->drain_seq, memory_order_relaxed);
        atomic_store_explicit(&c->drain_seq, s + 1, memory_order_release);
        mm_spin_unlock(&c->lock);
    }
}

uint64_t pmm_pcp_drain_all_locked(pmm_t *p, uint64_t f0, uint64_t f1)
{
    uint64_t moved = 0;
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++) {
        pmm_pcp_t *c = &p->pcp[i];
        uint32_t n = pmm_pcp_count(c), kept = 0;
        for (uint32_t k = 0; k < n; k++) {
            uint64_t e = c->frames[k], f = entry_frame(e);
            if (f >= f0 && f < f1) {
                give_back_locked(p, e);
                moved++;
            } else {
                c->frames[kept++] = e;
            }
        }
        if (kept != n)
            set_count(c, kept);
    }
    return moved;
}

mm_status_t pmm_drain(pmm_t *pmm)
{
    if (pmm == NULL)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    mm_irqflags_t flags = mm_hook_irq_save();
    pmm_pcp_lock_all(pmm);
    pmm_pcp_drain_all_locked(pmm, 0, pmm->span_frames);
    pmm_pcp_unlock_all(pmm);
    mm_hook_irq_restore(flags);
    return MM_OK;
}
