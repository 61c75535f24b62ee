/*
 * hadron-mm pmm: page poisoning (use-after-free detection).
 *
 * Whether a frame holds the pattern is tracked in poison_bm, not guessed
 * from its contents: the reference allocator skipped verification when the
 * first word was not the pattern, so a stray write to word 0 disabled the
 * check for exactly the frame it corrupted. Both operations run under the
 * instance lock: the fill must finish before the frame can be handed out
 * again, and the verification before it is.
 */
#include "pmm_internal.h"

#if HADRON_MM_PMM_POISON

void pmm_poison_fill_frame(uint64_t f)
{
    volatile uint64_t *w = hhdm_phys_to_virt(f << MM_PAGE_SHIFT);
    for (unsigned i = 0; i < MM_PAGE_SIZE / sizeof(uint64_t); i++)
        w[i] = PMM_POISON64;
}

void pmm_poison_verify_frame(uint64_t f)
{
    const uint64_t *w = hhdm_phys_to_virt(f << MM_PAGE_SHIFT);
    /* One pass that only accumulates differences (vectorisable on hosts);
     * the exact offset is located only when something differs. */
    uint64_t diff = 0;
    for (unsigned i = 0; i < MM_PAGE_SIZE / sizeof(uint64_t); i++)
        diff |= w[i] ^ PMM_POISON64;
    if (__builtin_expect(diff == 0, 1))
        return;

    const volatile uint32_t *h = (const volatile uint32_t *)(const volatile void *)w;
    for (unsigned i = 0; i < MM_PAGE_SIZE / sizeof(uint32_t); i++) {
        uint32_t v = h[i];
        if (v != PMM_POISON32)
            mm_panic_report(MM_REPORT_POISON, "pmm: frame written after it was freed", __FILE__,
                            __LINE__, f << MM_PAGE_SHIFT, (uint64_t)i * sizeof(uint32_t), v,
                            PMM_POISON32);
    }
    /* The 64-bit pass saw a difference the 32-bit pass cannot find: the
     * frame changed under us while the lock was held. */
    mm_panic_report(MM_REPORT_POISON, "pmm: frame changed during poison verification", __FILE__,
                    __LINE__, f << MM_PAGE_SHIFT, 0, 0, PMM_POISON32);
}

void pmm_poison_fill_locked(pmm_t *p, uint64_t f0, uint64_t f1)
{
    for (uint64_t f = f0; f < f1; f++)
        pmm_poison_fill_frame(f);
    pmm_bits_assign(pmm_plain_bits(p->poison_bm), f0, f1, true);
}

void pmm_poison_verify_locked(pmm_t *p, uint64_t f0, uint64_t f1)
{
    uint64_t w0 = f0 >> 6, w1 = (f1 - 1) >> 6;
    for (uint64_t w = w0; w <= w1; w++) {
        unsigned lo = w == w0 ? (unsigned)(f0 & 63) : 0;
        unsigned hi = w == w1 ? (unsigned)((f1 - 1) & 63) + 1 : 64;
        uint64_t m = p->poison_bm[w] & pmm_mask(lo, hi);
        while (m != 0) {
            pmm_poison_verify_frame((w << 6) | pmm_ctz(m));
            m &= m - 1;
        }
        p->poison_bm[w] &= ~pmm_mask(lo, hi);
    }
}

#else /* !HADRON_MM_PMM_POISON */

void pmm_poison_fill_locked(pmm_t *p, uint64_t f0, uint64_t f1)
{
    (void)p;
    (void)f0;
    (void)f1;
}

void pmm_poison_verify_locked(pmm_t *p, uint64_t f0, uint64_t f1)
{
    (void)p;
    (void)f0;
    (void)f1;
}

#endif
