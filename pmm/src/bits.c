/*
 * hadron-mm pmm: word-level bitmap primitives, summary-tree maintenance and
 * the per-chunk run bounds.
 */
#include "pmm_internal.h"

void pmm_tree_refresh(pmm_tree_t *t, unsigned k, uint64_t w0, uint64_t w1)
{
    /* A bulk change touches a contiguous range of words, so each level above
     * changes in a contiguous range 64 times smaller: the walk costs
     * (w1 - w0) * (1 + 1/64 + ...). */
    for (; k + 1 < t->depth; k++) {
        MM_ASSERT(w0 <= w1 && w1 < t->words[k]);
        MM_ASSERT(k > 0 || t->shift0 == 0);
        const uint64_t *lo = t->lvl[k];
        uint64_t *up = t->lvl[k + 1];
        for (uint64_t w = w0; w <= w1; w++) {
            if (lo[w] != 0)
                up[w >> 6] |= pmm_bit(w);
            else
                up[w >> 6] &= ~pmm_bit(w);
        }
        w0 >>= 6;
        w1 >>= 6;
    }
}

void pmm_bits_assign(pmm_bits_t bm, uint64_t f0, uint64_t f1, bool value)
{
    if (f0 >= f1)
        return;
    uint64_t w0 = f0 >> 6, w1 = (f1 - 1) >> 6;
    for (uint64_t w = w0; w <= w1; w++) {
        unsigned lo = w == w0 ? (unsigned)(f0 & 63) : 0;
        unsigned hi = w == w1 ? (unsigned)((f1 - 1) & 63) + 1 : 64;
        uint64_t m = pmm_mask(lo, hi);
        uint64_t *x = &bm.w[w << bm.shift];
        *x = value ? *x | m : *x & ~m;
    }
}

uint64_t pmm_bits_count(pmm_bits_t bm, uint64_t f0, uint64_t f1)
{
    if (f0 >= f1)
        return 0;
    uint64_t n = 0, w0 = f0 >> 6, w1 = (f1 - 1) >> 6;
    for (uint64_t w = w0; w <= w1; w++) {
        unsigned lo = w == w0 ? (unsigned)(f0 & 63) : 0;
        unsigned hi = w == w1 ? (unsigned)((f1 - 1) & 63) + 1 : 64;
        n += (uint64_t)__builtin_popcountll(bm.w[w << bm.shift] & pmm_mask(lo, hi));
    }
    return n;
}

uint64_t pmm_bits_first(pmm_bits_t bm, uint64_t f0, uint64_t f1, bool want)
{
    if (f0 >= f1)
        return PMM_NONE;
    uint64_t w0 = f0 >> 6, w1 = (f1 - 1) >> 6;
    for (uint64_t w = w0; w <= w1; w++) {
        unsigned lo = w == w0 ? (unsigned)(f0 & 63) : 0;
        unsigned hi = w == w1 ? (unsigned)((f1 - 1) & 63) + 1 : 64;
        uint64_t v = bm.w[w << bm.shift];
        uint64_t x = (want ? v : ~v) & pmm_mask(lo, hi);
        if (x != 0)
            return (w << 6) | pmm_ctz(x);
    }
    return PMM_NONE;
}

void pmm_range_set_free_locked(pmm_t *p, uint64_t f0, uint64_t f1, bool free)
{
    MM_ASSERT(f0 < f1 && f1 <= p->span_frames);
    uint64_t w0 = f0 >> 6, w1 = (f1 - 1) >> 6;
    bool has_any1 = p->any.depth > 1;
    for (uint64_t w = w0; w <= w1; w++) {
        unsigned lo = w == w0 ? (unsigned)(f0 & 63) : 0;
        unsigned hi = w == w1 ? (unsigned)((f1 - 1) & 63) + 1 : 64;
        uint64_t m = pmm_mask(lo, hi);
        uint64_t nw = free ? PMM_FREE(p, w) | m : PMM_FREE(p, w) & ~m;
        PMM_FREE(p, w) = nw;
        /* Level-1 and full bits are assigned here without propagation; the
         * levels above follow in one refresh per level. */
        if (has_any1) {
            if (nw != 0)
                p->any.lvl[1][w >> 6] |= pmm_bit(w);
            else
                p->any.lvl[1][w >> 6] &= ~pmm_bit(w);
        }
        if (nw == PMM_ALL)
            p->full.lvl[0][w >> 6] |= pmm_bit(w);
        else
            p->full.lvl[0][w >> 6] &= ~pmm_bit(w);
    }
    if (has_any1)
        pmm_tree_refresh(&p->any, 1, w0 >> 6, w1 >> 6);
    pmm_tree_refresh(&p->full, 0, w0 >> 6, w1 >> 6);

    if (free) {
        /* The new run through the range's part of each chunk may be longer
         * than the chunk's bound; clearing bits can only shorten runs, so
         * bounds need no change then. */
        for (uint64_t c = f0 >> PMM_CHUNK_SHIFT; c <= (f1 - 1) >> PMM_CHUNK_SHIFT; c++)
            pmm_chunk_note_free(p, pmm_max(f0, c << PMM_CHUNK_SHIFT));
    }
}

uint64_t pmm_chunk_prefix(const pmm_t *p, uint64_t c)
{
    uint64_t w0 = c << 6, wend = pmm_min(w0 + 64, p->words);
    /* Whole free words from the start of the chunk come from the full-word
     * bitmap; only the first partial word is read. Bits past the last word
     * are zero, so the count never runs beyond wend. */
    uint64_t nfull = pmm_low_free(p->full.lvl[0][c]);
    uint64_t w = w0 + nfull;
    if (w >= wend)
        return (wend - w0) << 6;
    return (nfull << 6) + pmm_low_free(PMM_FREE(p, w));
}

uint64_t pmm_chunk_suffix(const pmm_t *p, uint64_t c)
{
    uint64_t w0 = c << 6, wend = pmm_min(w0 + 64, p->words);
    unsigned nw = (unsigned)(wend - w0); /* 1..64 */
    /* Move the chunk's top word to bit 63 so leading ones count the whole
     * free words at its end. */
    uint64_t top = p->full.lvl[0][c] << (64 - nw);
    uint64_t nfull = pmm_high_free(top);
    if (nfull >= nw)
        return (uint64_t)nw << 6;
    return (nfull << 6) + pmm_high_free(PMM_FREE(p, wend - 1 - nfull));
}

uint64_t pmm_chunk_run_through(const pmm_t *p, uint64_t f)
{
    uint64_t w = f >> 6, c = w >> 6;
    unsigned b = (unsigned)(f & 63);
    uint64_t w0 = c << 6, wend = pmm_min(w0 + 64, p->words);
    uint64_t x = PMM_FREE(p, w);
    uint64_t fw = p->full.lvl[0][c];
    MM_ASSERT(x & pmm_bit(f));

    unsigned up = pmm_low_free(x >> b);          /* f and the free frames above it */
    unsigned down = pmm_high_free(x << (63 - b)); /* f and the free frames below it */
    uint64_t run = (uint64_t)up + down - 1;

    if (b + up == 64 && w + 1 < wend) {
        unsigned j = (unsigned)(w + 1 - w0); /* 1..63 */
        uint64_t nfull = pmm_low_free(fw >> j);
        run += nfull << 6;
        if (w + 1 + nfull < wend)
            run += pmm_low_free(PMM_FREE(p, w + 1 + nfull));
    }
    if (down == b + 1 && w > w0) {
        unsigned j = (unsigned)(w - 1 - w0); /* 0..62 */
        uint64_t nfull = pmm_high_free(fw << (63 - j));
        run += nfull << 6;
        if (nfull <= j)
            run += pmm_high_free(PMM_FREE(p, w - 1 - nfull));
    }
    MM_ASSERT(run <= pmm_chunk_frames(p, c));
    return run;
}

bool pmm_chunk_scan(const pmm_t *p, uint64_t c, const pmm_req_t *rq, uint64_t *out,
                    uint64_t *longest)
{
    uint64_t w0 = c << 6, wend = pmm_min(w0 + 64, p->words);
    uint64_t run_s = PMM_NONE, best = 0;
    for (uint64_t w = w0; w < wend; w++) {
        uint64_t x = PMM_FREE(p, w);
        uint64_t base = w << 6;
        if (x == PMM_ALL) {
            if (run_s == PMM_NONE)
                run_s = base;
            continue;
        }
        if (x == 0 && run_s == PMM_NONE)
            continue;
        /* Jump from transition to transition with ctz: a partial word costs
         * one step per run it contains, not one per frame. */
        unsigned pos = 0;
        for (;;) {
            if (run_s == PMM_NONE) {
                uint64_t m = x & (PMM_ALL << pos);
                if (m == 0)
                    break;
                pos = pmm_ctz(m);
                run_s = base + pos;
            }
            uint64_t m = ~x & (PMM_ALL << pos);
            if (m == 0)
                break; /* the run goes on into the next word */
            pos = pmm_ctz(m);
            uint64_t e = base + pos;
            best = pmm_max(best, e - run_s);
            if (pmm_fit(rq, run_s, e, out))
                return true;
            run_s = PMM_NONE;
        }
    }
    if (run_s != PMM_NONE) {
        uint64_t e = wend << 6;
        best = pmm_max(best, e - run_s);
        if (pmm_fit(rq, run_s, e, out))
            return true;
    }
    *longest = best;
    return false;
}
