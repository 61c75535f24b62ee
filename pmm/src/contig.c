/*
 * hadron-mm pmm: contiguous allocation with alignment and an address limit.
 *
 * Two searches, chosen by what a fitting run must contain:
 *
 *  - A run of 127+ frames (64+ when the start is 64-aligned) contains at
 *    least one whole free bitmap word. Such runs are found by walking the
 *    maximal runs of whole free words through the full-word tree, extending
 *    each by the free bits of its two neighbour words. When memory is
 *    fragmented the tree has no bit set and the request fails at once; when
 *    it is empty the first run is taken after a few words.
 *
 *  - Smaller runs are searched chunk by chunk (4096 frames). A chunk whose
 *    bound says no run inside it is long enough costs O(1): only its free
 *    prefix and suffix are computed, to join runs across chunk boundaries.
 *    A chunk that is scanned has its bound made exact.
 *
 * Both return the lowest fitting run.
 */
#include "pmm_internal.h"

static uint64_t search_whole_words(pmm_t *p, const pmm_req_t *rq)
{
    const uint64_t *fw = p->full.lvl[0];
    uint64_t words = p->words, out;
    for (uint64_t w = 0; w < words;) {
        w = pmm_tree_find(&p->full, w);
        /* A run through word w ends past it; the limit rules it and every
         * later one out. */
        if (w == PMM_NONE || ((w + 1) << 6) > rq->hi)
            return PMM_NONE;
        /* w starts a maximal run of whole free words: the search restarts
         * after a word that is not whole, so word w - 1 is partial. */
        uint64_t s = (w << 6) - (w > 0 ? pmm_high_free(PMM_FREE(p, w - 1)) : 0);
        uint64_t e = w + 1;
        while (e < words) {
            uint64_t gaps = ~fw[e >> 6] & (PMM_ALL << (e & 63));
            if (gaps != 0) {
                e = (e & ~63ull) | pmm_ctz(gaps);
                break;
            }
            e = (e | 63) + 1;
            /* Stop extending a long run as soon as it is long enough. */
            if (pmm_fit(rq, s, e << 6, &out))
                return out;
        }
        e = pmm_min(e, words);
        uint64_t end = (e << 6) + (e < words ? pmm_low_free(PMM_FREE(p, e)) : 0);
        if (pmm_fit(rq, s, end, &out))
            return out;
        w = e + 1;
    }
    return PMM_NONE;
}

static uint64_t search_chunks(pmm_t *p, const pmm_req_t *rq)
{
    uint64_t carry = PMM_NONE; /* start of a free run reaching the chunk's start */
    uint64_t out;
    for (uint64_t c = 0; c < p->chunks; c++) {
        uint64_t cs = c << PMM_CHUNK_SHIFT;
        if (cs >= rq->hi)
            break;
        if (p->any.depth > 2 && (c & 63) == 0 && p->any.lvl[2][c >> 6] == 0) {
            c += 63; /* 64 chunks without a free frame */
            carry = PMM_NONE;
            continue;
        }
        uint64_t frames = pmm_chunk_frames(p, c);
        uint64_t pre = pmm_chunk_prefix(p, c);
        if (carry != PMM_NONE) {
            if (pmm_fit(rq, carry, cs + pre, &out))
                return out;
            if (pre == frames)
                continue;
            carry = PMM_NONE;
        } else if (pre == frames) {
            carry = cs;
            if (pmm_fit(rq, cs, cs + frames, &out))
                return out;
            continue;
        }
        if (p->chunk_run[c] >= rq->n) {
            uint64_t longest;
            if (pmm_chunk_scan(p, c, rq, &out, &longest))
                return out;
            p->chunk_run[c] = (uint16_t)longest;
        }
        uint64_t suf = pmm_chunk_suffix(p, c);
        /* A suffix alone was either scanned above or is shorter than the
         * bound and so than the request; it only matters joined to the
         * next chunk's prefix. */
        carry = suf != 0 ? cs + frames - suf : PMM_NONE;
    }
    return PMM_NONE;
}

uint64_t pmm_find_run_locked(pmm_t *p, const pmm_req_t *rq)
{
    uint64_t whole_words;
    if (rq->align >= 64)
        whole_words = rq->n / 64;
    else
        whole_words = rq->n >= 127 ? (rq->n - 63) / 64 : 0;
    return whole_words > 0 ? search_whole_words(p, rq) : search_chunks(p, rq);
}

/* Instance lock held: the request, from the bitmap only. */
static mm_status_t contig_locked(pmm_t *p, size_t count, size_t align_frames, uint64_t hi,
                                 uint64_t *out)
{
    uint64_t f;
    if (count == 1 && align_frames == 1)
        return pmm_alloc_one_locked(p, hi, out);
    /* align >= hi would leave only frame 0, which is never free. */
    if (count > p->free_frames || count > hi || align_frames >= hi)
        return MM_ERR_NOMEM;
    pmm_req_t rq = {.n = count, .align = align_frames, .hi = hi};
    f = pmm_find_run_locked(p, &rq);
    if (f == PMM_NONE)
        return MM_ERR_NOMEM;
    MM_ASSERT(f + count <= hi && (f & (align_frames - 1)) == 0);
    MM_ASSERT(pmm_bits_first(pmm_free_bits(p), f, f + count, false) == PMM_NONE);
    pmm_range_set_free_locked(p, f, f + count, false);
    pmm_held_mark_range(p, f, f + count);
    p->free_frames -= count;
#if HADRON_MM_PMM_POISON
    pmm_poison_verify_locked(p, f, f + count);
#endif
    *out = f;
    return MM_OK;
}

mm_status_t pmm_alloc_contig(pmm_t *pmm, size_t count, size_t align_frames, mm_paddr_t limit,
                             mm_paddr_t *out)
{
    if (pmm == NULL || out == NULL || count == 0 || !mm_is_pow2(align_frames))
        return MM_ERR_INVALID;
    if (!pmm_ready(pmm))
        return MM_ERR_STATE;
    uint64_t hi = limit == MM_PADDR_MAX ? pmm->span_frames
                                        : pmm_min(limit >> MM_PAGE_SHIFT, pmm->span_frames);
    /* The frame allocator interface's single frames take the cached path. */
    if (count == 1 && align_frames == 1 && hi >= pmm->span_frames)
        return pmm_alloc(pmm, out);

    uint64_t f = PMM_NONE;
    mm_irqflags_t flags = mm_spin_lock_irqsave(&pmm->lock);
    mm_status_t st = contig_locked(pmm, count, align_frames, hi, &f);
    mm_spin_unlock_irqrestore(&pmm->lock, flags);
    if (st == MM_ERR_NOMEM && pmm_pcp_total(pmm) != 0 && pmm_pcp_lock_all(pmm, &flags)) {
        /* Cached frames may complete a run: drain every cache, then search
         * again under the same hold. */
        pmm_pcp_drain_all_locked(pmm, 0, pmm->span_frames);
        st = contig_locked(pmm, count, align_frames, hi, &f);
        pmm_pcp_unlock_all(pmm, flags);
    }
    if (st == MM_OK)
        *out = f << MM_PAGE_SHIFT;
    return st;
}

mm_status_t pmm_alloc_contig_zeroed(pmm_t *pmm, size_t count, size_t align_frames,
                                    mm_paddr_t limit, mm_paddr_t *out)
{
    if (out == NULL)
        return MM_ERR_INVALID;
    mm_paddr_t pa;
    mm_status_t st = pmm_alloc_contig(pmm, count, align_frames, limit, &pa);
    if (st != MM_OK)
        return st;
    __builtin_memset(hhdm_phys_to_virt(pa), 0, (uint64_t)count << MM_PAGE_SHIFT);
    *out = pa;
    return MM_OK;
}
