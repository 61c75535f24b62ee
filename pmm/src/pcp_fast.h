/*
 * hadron-mm pmm: the per-CPU caches' common path, inlined into pmm_alloc
 * and pmm_free (the handshake and its argument: pcp.c). Without link-time
 * optimisation the calls into pcp.c cost a cached pair about a quarter of
 * its time (docs/measurements.md).
 */
#ifndef HADRON_MM_PMM_PCP_FAST_H
#define HADRON_MM_PMM_PCP_FAST_H

#include <hadron/mm/gate.h>

#include "pmm_internal.h"

/* Low bit of a cache entry: the frame is filled with the poison pattern. */
#define PCP_POISONED 1u

static inline uint64_t pmm_pcp_entry_frame(uint64_t e)
{
    return e >> 1;
}

static inline void pmm_pcp_set_count(pmm_pcp_t *c, uint32_t n)
{
    MM_ASSERT(n <= PMM_PCP_HIGH);
    atomic_store_explicit(&c->count, n, memory_order_relaxed);
}

/* Inside cache c, which is empty: up to PMM_PCP_BATCH frames from the
 * bitmap (under the instance lock), the lowest ending on top so a burst of
 * allocations walks up. Returns how many. */
uint32_t pmm_pcp_refill(pmm_t *p, pmm_pcp_t *c);

/* Inside cache c, which is at the high-water mark: the PMM_PCP_BATCH
 * frames at the bottom (freed longest ago, the coldest) go back to the
 * bitmap, under the instance lock. */
void pmm_pcp_trim(pmm_t *p, pmm_pcp_t *c);

/* Rare: which mistake a refused free of f was needs the usable bit, which
 * only the instance lock makes safe to read. Outside the cache. */
mm_status_t pmm_pcp_refused(pmm_t *p, uint64_t f);

/* Enters cache c, the calling CPU's (interrupts off): false when it may
 * not, because a holder has the caches or the caller interrupted this CPU
 * inside its cache; then the caller takes the locked path. */
static inline bool pmm_pcp_enter(pmm_t *p, pmm_pcp_t *c)
{
    return mm_gate_enter(&c->active, &p->pcp_holders);
}

static inline void pmm_pcp_leave(pmm_pcp_t *c)
{
    mm_gate_leave(&c->active);
}

/* Cached allocation on cache c, the calling CPU's (interrupts off): pops a
 * frame, refilling from the bitmap first when empty. False when the cache
 * could not be entered (held, or entered already by the context this one
 * interrupted) or the bitmap had nothing to refill from: the caller takes
 * the locked path. */
static inline bool pmm_pcp_alloc(pmm_t *p, pmm_pcp_t *c, uint64_t *frame)
{
    if (!pmm_pcp_enter(p, c))
        return false;
    uint32_t n = pmm_pcp_count(c);
    if (n == 0 && (n = pmm_pcp_refill(p, c)) == 0) {
        pmm_pcp_leave(c);
        return false;
    }
    uint64_t e = c->frames[n - 1];
    uint64_t f = pmm_pcp_entry_frame(e);
    pmm_held_mark(p, f, c->tag);
    pmm_pcp_set_count(c, n - 1);
    pmm_pcp_leave(c);
#if HADRON_MM_PMM_POISON
    /* The frame is the caller's already; a panic leaves every cache
     * usable, and the frame never reaches the caller. */
    if (e & PCP_POISONED)
        pmm_poison_verify_frame(f);
#endif
    *frame = f;
    return true;
}

/* Cached free of frame f (< span) on cache c, the calling CPU's
 * (interrupts off): false when the cache could not be entered (the caller
 * takes the locked path); else true with *st MM_OK, or MM_ERR_DOUBLE_FREE /
 * MM_ERR_NOT_USABLE with nothing changed. */
static inline bool pmm_pcp_free(pmm_t *p, pmm_pcp_t *c, uint64_t f, mm_status_t *st)
{
    if (!pmm_pcp_enter(p, c))
        return false;
    if (!pmm_held_take(p, f)) {
        pmm_pcp_leave(c);
        *st = pmm_pcp_refused(p, f);
        return true;
    }
    uint64_t e = f << 1;
#if HADRON_MM_PMM_POISON
    pmm_poison_fill_frame(f);
    e |= PCP_POISONED;
#endif
    if (pmm_pcp_count(c) == PMM_PCP_HIGH)
        pmm_pcp_trim(p, c);
    uint32_t n = pmm_pcp_count(c);
    c->frames[n] = e;
    pmm_pcp_set_count(c, n + 1);
    pmm_pcp_leave(c);
    *st = MM_OK;
    return true;
}

#endif /* HADRON_MM_PMM_PCP_FAST_H */
