/*
 * hadron-mm pmm: per-CPU frame caches in front of the bitmap.
 *
 * Each CPU owns a small stack of frames (pmm_pcp_t). With interrupts off
 * and no lock, an allocation pops from it and a free pushes onto it: no
 * shared lock, no shared counter. The bitmap is visited once per
 * PMM_PCP_BATCH frames, under the instance lock: to refill an empty cache,
 * or to take the coldest frames off a cache at its high-water mark.
 *
 * Cached frames are free memory that the bitmap does not see: neither free
 * nor held (pmm_internal.h). pmm_get_stats counts them as free,
 * pmm_frame_state reports them free, and every path that needs them (an
 * allocation that would fail, a contiguous request that finds no run,
 * pmm_reserve of a range holding one, pmm_drain, pmm_check) first holds
 * every cache out of use (pmm_pcp_lock_all), then works on them under the
 * instance lock.
 *
 * Holding the caches is a per-CPU gate (hadron/mm/gate.h: Dekker's
 * handshake with the expensive barrier on the rare side): each cache's
 * `active` word, the instance's `pcp_holders`. A holder that finds the
 * barrier hook refusing, or that runs on top of its own CPU inside its
 * cache (an NMI), holds nothing: pmm.h, "Holding the caches".
 *
 * So a cached allocation of a frame of its CPU's own group executes no
 * locked instruction (the frame's held bit is in a word that CPU alone
 * writes: pmm_internal.h), and a cached free one, the compare-and-swap
 * that decides a double free. A context
 * that interrupted its CPU inside the cache finds active set and takes the
 * locked path, which never touches a cache.
 *
 * Poisoning: a frame carries its "poisoned" mark into the cache in the low
 * bit of its entry (the poison bitmap only marks frames free in the
 * bitmap), is filled on a cached free and verified on a cached allocation,
 * exactly as on the locked paths.
 */
#include "pcp_fast.h"

#include <hadron/mm/spinlock.h>

_Static_assert(HADRON_MM_MAX_CPUS < UINT16_MAX, "a cache tag fits a held group's owner");

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
    p->pcp_holders = 0;
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++) {
        pmm_pcp_t *c = &p->pcp[i];
        c->active = 0;
        atomic_init(&c->count, 0);
        c->tag = i + 1;
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
    uint64_t f = pmm_pcp_entry_frame(e);
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

uint32_t pmm_pcp_refill(pmm_t *p, pmm_pcp_t *c)
{
    MM_ASSERT(pmm_pcp_count(c) == 0);
    mm_spin_lock(&p->lock);
    uint32_t n = (uint32_t)pmm_min(PMM_PCP_BATCH, p->free_frames);
    for (uint32_t i = 0; i < n; i++)
        c->frames[n - 1 - i] = take_for_cache_locked(p, c);
    pmm_pcp_set_count(c, n);
    mm_spin_unlock(&p->lock);
    return n;
}

void pmm_pcp_trim(pmm_t *p, pmm_pcp_t *c)
{
    uint32_t n = pmm_pcp_count(c);
    mm_spin_lock(&p->lock);
    for (uint32_t i = 0; i < PMM_PCP_BATCH; i++)
        give_back_locked(p, c->frames[i]);
    pmm_pcp_set_count(c, n - PMM_PCP_BATCH);
    mm_spin_unlock(&p->lock);
    __builtin_memmove(&c->frames[0], &c->frames[PMM_PCP_BATCH],
                      (n - PMM_PCP_BATCH) * sizeof c->frames[0]);
}

mm_status_t pmm_pcp_refused(pmm_t *p, uint64_t f)
{
    mm_spin_lock(&p->lock);
    bool usable = (PMM_USABLE(p, f >> 6) & pmm_bit(f)) != 0;
    mm_spin_unlock(&p->lock);
    return usable ? MM_ERR_DOUBLE_FREE : MM_ERR_NOT_USABLE;
}

/* ---- holding every cache ------------------------------------------------ */

/* Whether the caller runs on top of its own CPU inside that CPU's cache (an
 * interrupt that came in there): waiting for it to leave would never end. */
static bool inside_own_cache(pmm_t *p)
{
    mm_irqflags_t f = mm_hook_irq_save();
    pmm_pcp_t *mine = pmm_pcp_mine(p);
    bool inside = mine != NULL && mm_gate_entered(&mine->active);
    mm_hook_irq_restore(f);
    return inside;
}

bool pmm_pcp_lock_all(pmm_t *p, mm_irqflags_t *flags)
{
    if (inside_own_cache(p) || !mm_gate_hold(&p->pcp_holders))
        return false;
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++)
        mm_gate_wait_left(&p->pcp[i].active);
    *flags = mm_hook_irq_save();
    mm_spin_lock(&p->lock);
    return true;
}

void pmm_pcp_unlock_all(pmm_t *p, mm_irqflags_t flags)
{
    mm_spin_unlock(&p->lock);
    mm_hook_irq_restore(flags);
    mm_gate_release(&p->pcp_holders);
}

uint64_t pmm_pcp_drain_all_locked(pmm_t *p, uint64_t f0, uint64_t f1)
{
    uint64_t moved = 0;
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++) {
        pmm_pcp_t *c = &p->pcp[i];
        uint32_t n = pmm_pcp_count(c), kept = 0;
        for (uint32_t k = 0; k < n; k++) {
            uint64_t e = c->frames[k], f = pmm_pcp_entry_frame(e);
            if (f >= f0 && f < f1) {
                give_back_locked(p, e);
                moved++;
            } else {
                c->frames[kept++] = e;
            }
        }
        if (kept != n)
            pmm_pcp_set_count(c, kept);
    }
    return moved;
}

mm_status_t pmm_drain(pmm_t *pmm)
{
    if (pmm == NULL)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    mm_irqflags_t flags;
    if (!pmm_pcp_lock_all(pmm, &flags))
        return MM_ERR_UNSUPPORTED;
    pmm_pcp_drain_all_locked(pmm, 0, pmm->span_frames);
    pmm_pcp_unlock_all(pmm, flags);
    return MM_OK;
}
