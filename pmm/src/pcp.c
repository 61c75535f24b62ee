/*
 * hadron-mm pmm: per-CPU frame caches in front of the bitmap.
 *
 * Each CPU owns a small stack of frames (pmm_pcp_t). With interrupts off,
 * an allocation pops from it and a free pushes onto it under the CPU's own
 * cache lock: no shared lock, no shared counter, and the only shared line
 * touched is the frame's word of the held bitmap, which the double-free
 * check needs. The bitmap is visited once per PMM_PCP_BATCH frames: to
 * refill an empty cache, or to take the coldest frames off a cache at its
 * high-water mark.
 *
 * Cached frames are free memory that the bitmap does not see: they are
 * neither free nor held (pmm_internal.h), pmm_get_stats counts them as
 * free, pmm_frame_state reports them free, and every path that needs them
 * (an allocation that would fail, a contiguous request that finds no run,
 * pmm_reserve of a range holding one, pmm_drain) drains the caches first.
 *
 * Lock order: a cache lock, then the instance lock; several cache locks
 * only in ascending CPU order (pmm_pcp_lock_all). A remote cache is only
 * ever touched with its lock held, so the owner's hold on the fast path is
 * uncontended except while a drainer works.
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

mm_status_t pmm_pcp_free(pmm_t *p, pmm_pcp_t *c, uint64_t f)
{
    mm_spin_lock(&c->lock);
    if (!pmm_held_take(p, f)) {
        mm_spin_unlock(&c->lock);
        /* Rare: which mistake it was needs the usable bit, which only the
         * instance lock makes safe to read. */
        mm_spin_lock(&p->lock);
        bool usable = (PMM_USABLE(p, f >> 6) & pmm_bit(f)) != 0;
        mm_spin_unlock(&p->lock);
        return usable ? MM_ERR_DOUBLE_FREE : MM_ERR_NOT_USABLE;
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

void pmm_pcp_lock_all(pmm_t *p)
{
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++)
        mm_spin_lock(&p->pcp[i].lock);
    mm_spin_lock(&p->lock);
}

void pmm_pcp_unlock_all(pmm_t *p)
{
    mm_spin_unlock(&p->lock);
    for (unsigned i = HADRON_MM_MAX_CPUS; i-- > 0;)
        mm_spin_unlock(&p->pcp[i].lock);
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
