/*
 * hadron-mm pmm: range operations on the held bitmap (see pmm_internal.h
 * for what "held" means and who may write which half of a held word). A
 * range is only ever taken from or given to the bitmap, never a cache, so
 * its bits all change in the remote half.
 */
#include "pmm_internal.h"

/* Bits [lo, hi) of word w that lie inside [f0, f1). */
static uint64_t word_mask(uint64_t w, uint64_t f0, uint64_t f1)
{
    uint64_t w0 = f0 >> 6, w1 = (f1 - 1) >> 6;
    unsigned lo = w == w0 ? (unsigned)(f0 & 63) : 0;
    unsigned hi = w == w1 ? (unsigned)((f1 - 1) & 63) + 1 : 64;
    return pmm_mask(lo, hi);
}

void pmm_held_mark_range(pmm_t *p, uint64_t f0, uint64_t f1)
{
    for (uint64_t w = f0 >> 6; w <= (f1 - 1) >> 6; w++) {
        uint64_t m = word_mask(w, f0, f1);
        uint64_t old = __atomic_fetch_xor(pmm_held_remote(p, w), m, __ATOMIC_RELAXED);
        MM_ASSERT(((old ^ __atomic_load_n(pmm_held_own(p, w), __ATOMIC_RELAXED)) & m) == 0);
        (void)old;
    }
}

uint64_t pmm_held_first(const pmm_t *p, uint64_t f0, uint64_t f1, bool held)
{
    for (uint64_t w = f0 >> 6; w <= (f1 - 1) >> 6; w++) {
        uint64_t v = pmm_held_word(p, w);
        uint64_t x = (held ? v : ~v) & word_mask(w, f0, f1);
        if (x != 0)
            return (w << 6) | pmm_ctz(x);
    }
    return PMM_NONE;
}

bool pmm_held_take_range(pmm_t *p, uint64_t f0, uint64_t f1)
{
    for (uint64_t w = f0 >> 6; w <= (f1 - 1) >> 6; w++) {
        uint64_t m = word_mask(w, f0, f1);
        uint64_t *remote = pmm_held_remote(p, w);
        uint64_t o = __atomic_load_n(pmm_held_own(p, w), __ATOMIC_RELAXED);
        uint64_t r = __atomic_load_n(remote, __ATOMIC_RELAXED);
        do {
            if (((o ^ r) & m) != m) {
                /* Another CPU freed one of these frames between the
                 * caller's validation and here: the words already cleared
                 * become held again, so the frames stay held by whoever
                 * the other free left them to. */
                for (uint64_t v = f0 >> 6; v < w; v++)
                    __atomic_fetch_xor(pmm_held_remote(p, v), word_mask(v, f0, f1),
                                       __ATOMIC_RELAXED);
                return false;
            }
        } while (!__atomic_compare_exchange_n(remote, &r, r ^ m, true, __ATOMIC_RELAXED,
                                              __ATOMIC_RELAXED));
    }
    return true;
}
