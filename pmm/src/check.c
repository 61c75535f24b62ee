/*
 * hadron-mm pmm: the invariant checker and read-only queries.
 */
#include "pmm_internal.h"

static const char *check_tree(const pmm_tree_t *t, const char *what)
{
    if (t->depth == 0 || t->depth > PMM_MAX_LEVELS || t->words[t->depth - 1] != 1)
        return what;
    for (uint32_t k = 1; k < t->depth; k++) {
        unsigned shift = k == 1 ? t->shift0 : 0;
        for (uint64_t w = 0; w < t->words[k]; w++) {
            uint64_t expect = 0;
            for (unsigned b = 0; b < 64; b++) {
                uint64_t below = (w << 6) | b;
                if (below < t->words[k - 1] && t->lvl[k - 1][below << shift] != 0)
                    expect |= pmm_bit(b);
            }
            if (t->lvl[k][w] != expect)
                return what;
        }
    }
    return NULL;
}

static const char *check_locked(const pmm_t *p)
{
    uint64_t free_n = 0, usable_n = 0;
    for (uint64_t w = 0; w < p->words; w++) {
        uint64_t fr = PMM_FREE(p, w), us = PMM_USABLE(p, w);
        if (fr & ~us)
            return "a free frame is not managed";
#if HADRON_MM_PMM_POISON
        if (p->poison_bm[w] & ~fr)
            return "a poisoned frame is not free";
#endif
        free_n += (uint64_t)__builtin_popcountll(fr);
        usable_n += (uint64_t)__builtin_popcountll(us);
    }
    if (p->span_frames & 63) {
        uint64_t beyond = ~pmm_mask(0, (unsigned)(p->span_frames & 63));
        uint64_t last = PMM_FREE(p, p->words - 1) | PMM_USABLE(p, p->words - 1);
#if HADRON_MM_PMM_POISON
        last |= p->poison_bm[p->words - 1];
#endif
        if (last & beyond)
            return "a bit is set beyond the span";
    }
    if (free_n != p->free_frames)
        return "the free count does not match the bitmap";
    if (usable_n != p->usable_frames)
        return "the managed count does not match the usable bitmap";
    if (PMM_USABLE(p, 0) & 1)
        return "frame 0 is managed";

    uint64_t m0 = p->meta_base >> MM_PAGE_SHIFT, m1 = m0 + p->meta_frames;
    if (m0 == 0 || m1 > p->span_frames || p->meta_bytes > p->meta_frames * MM_PAGE_SIZE)
        return "the metadata lies outside the span";
    if (pmm_bits_first(pmm_usable_bits(p), m0, m1, true) != PMM_NONE)
        return "a metadata frame is managed";
    if ((uint64_t)(uintptr_t)p->bm != (uint64_t)(uintptr_t)hhdm_phys_to_virt(p->meta_base))
        return "the bitmap is not where the metadata is";

    if (p->any.lvl[0] != p->bm || p->any.shift0 != 1 || p->any.words[0] != p->words)
        return "the free summary is not rooted at the bitmap";
    const char *why = check_tree(&p->any, "the free summary does not match the bitmap");
    if (why != NULL)
        return why;
    if (p->full.words[0] != p->chunks || p->full.shift0 != 0)
        return "the full-word summary has the wrong size";
    for (uint64_t c = 0; c < p->chunks; c++) {
        uint64_t expect = 0;
        for (unsigned b = 0; b < 64; b++) {
            uint64_t w = (c << 6) | b;
            if (w < p->words && PMM_FREE(p, w) == PMM_ALL)
                expect |= pmm_bit(b);
        }
        if (p->full.lvl[0][c] != expect)
            return "the full-word summary does not match the bitmap";
    }
    why = check_tree(&p->full, "the full-word summary levels disagree");
    if (why != NULL)
        return why;

    const pmm_req_t never = {.n = UINT64_MAX, .align = 1, .hi = 0};
    for (uint64_t c = 0; c < p->chunks; c++) {
        uint64_t longest, unused;
        if (pmm_chunk_scan(p, c, &never, &unused, &longest))
            return "a chunk scan accepted an impossible request";
        if (longest > p->chunk_run[c])
            return "a chunk bound is below its longest free run";
        if (p->chunk_run[c] > pmm_chunk_frames(p, c))
            return "a chunk bound exceeds the chunk";
    }
    if (p->hint >= p->span_frames)
        return "the hint lies outside the span";
    if (p->hot != PMM_NONE && p->hot >= p->span_frames)
        return "the hot frame lies outside the span";
    return NULL;
}

mm_status_t pmm_check(pmm_t *pmm, const char **why)
{
    if (pmm == NULL)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    const char *broken = check_locked(pmm);
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
    if (why != NULL)
        *why = broken;
    return broken == NULL ? MM_OK : MM_ERR_CORRUPT;
}

mm_status_t pmm_get_stats(pmm_t *pmm, pmm_stats_t *out)
{
    if (pmm == NULL || out == NULL)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    pmm_stats_t s = {
        .span_frames = pmm->span_frames,
        .usable_frames = pmm->usable_frames,
        .free_frames = pmm->free_frames,
        .used_frames = pmm->usable_frames - pmm->free_frames,
        .reserved_frames = pmm->span_frames - pmm->usable_frames,
        .meta_base = pmm->meta_base,
        .meta_frames = pmm->meta_frames,
        .meta_bytes = pmm->meta_bytes,
    };
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
    *out = s;
    return MM_OK;
}

pmm_frame_state_t pmm_frame_state(pmm_t *pmm, mm_paddr_t frame)
{
    if (pmm == NULL || !pmm_ready(pmm) || !mm_is_aligned(frame, MM_PAGE_SIZE))
        return PMM_FRAME_OUTSIDE;
    uint64_t f = frame >> MM_PAGE_SHIFT;
    pmm_frame_state_t st;
    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    if (f >= pmm->span_frames)
        st = PMM_FRAME_OUTSIDE;
    else if ((PMM_USABLE(pmm, f >> 6) & pmm_bit(f)) == 0)
        st = PMM_FRAME_RESERVED;
    else if (PMM_FREE(pmm, f >> 6) & pmm_bit(f))
        st = PMM_FRAME_FREE;
    else
        st = PMM_FRAME_USED;
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
    return st;
}
