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

/* Every cache entry is a cached frame (managed, neither free nor held),
 * no cache repeats one, and together they hold exactly the frames in that
 * state: so no cached frame is lost and none is in two caches unless one
 * is missing. O(CPUs * PMM_PCP_HIGH^2) at most. */
static const char *check_caches(const pmm_t *p, uint64_t cached_n)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++) {
        const pmm_pcp_t *c = &p->pcp[i];
        uint32_t n = pmm_pcp_count(c);
        if (n > PMM_PCP_HIGH)
            return "a cache holds more than its high-water mark";
        total += n;
        for (uint32_t k = 0; k < n; k++) {
            uint64_t e = c->frames[k], f = e >> 1;
            if (!HADRON_MM_PMM_POISON && (e & 1))
                return "a cache entry is marked poisoned in a build without poisoning";
            if (f >= p->span_frames || (PMM_USABLE(p, f >> 6) & pmm_bit(f)) == 0 ||
                (PMM_FREE(p, f >> 6) & pmm_bit(f)) != 0 ||
                (pmm_held_word(p, f >> 6) & pmm_bit(f)) != 0)
                return "a cached frame is not in the cached state";
            for (uint32_t j = 0; j < k; j++)
                if ((c->frames[j] >> 1) == f)
                    return "a cache holds a frame twice";
        }
    }
    if (total != cached_n)
        return "the caches do not hold exactly the cached frames";
    return NULL;
}

static const char *check_locked(const pmm_t *p)
{
    uint64_t free_n = 0, usable_n = 0, cached_n = 0;
    for (uint64_t w = 0; w < p->words; w++) {
        uint64_t fr = PMM_FREE(p, w), us = PMM_USABLE(p, w), he = pmm_held_word(p, w);
        if (fr & ~us)
            return "a free frame is not managed";
        if (he & ~us)
            return "an allocated frame is not managed";
        if (he & fr)
            return "a frame is both free and allocated";
        cached_n += (uint64_t)__builtin_popcountll(us & ~fr & ~he);
        if (pmm_group_owner(p, w << 6) == 0 && *pmm_held_own(p, w) != 0)
            return "a held word's owner half is written in a group no CPU owns";
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
        last |= pmm_held_word(p, p->words - 1);
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
    return check_caches(p, cached_n);
}

mm_status_t pmm_check(pmm_t *pmm, const char **why)
{
    if (pmm == NULL)
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    /* The caches held too: the check compares them with the bitmaps, so no
     * frame may move between them meanwhile. */
    mm_irqflags_t flags;
    if (!pmm_pcp_lock_all(pmm, &flags))
        return MM_ERR_UNSUPPORTED;
    const char *broken = check_locked(pmm);
    pmm_pcp_unlock_all(pmm, flags);
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
    /* Frames move between the bitmap and a cache only under the instance
     * lock, so under it the sum is never off by a frame in transit; a
     * cached allocation or free running meanwhile counts as before or
     * after. */
    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    uint64_t cached = pmm_pcp_total(pmm);
    uint64_t free_n = pmm->free_frames + cached;
    pmm_stats_t s = {
        .span_frames = pmm->span_frames,
        .usable_frames = pmm->usable_frames,
        .free_frames = free_n,
        .cached_frames = cached,
        .used_frames = pmm->usable_frames - free_n,
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
    else if (pmm_held_word(pmm, f >> 6) & pmm_bit(f))
        st = PMM_FRAME_USED;
    else
        st = PMM_FRAME_FREE; /* in the bitmap or in a cache */
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
    return st;
}
