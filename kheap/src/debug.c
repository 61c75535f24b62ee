/*
 * kheap blocks: the heap_redzones option's guards, fill patterns and
 * use-after-free verification.
 */
#include "block.h"

#if HADRON_MM_HEAP_REDZONES

#define KH_WORD_OF(byte) ((uint64_t)(byte) * 0x0101010101010101ull)

void kh_dbg_arm(kh_block_t *b, size_t req, size_t keep)
{
    kh_dbg_hdr_t *d = kh_dbg_of(b);
    uintptr_t u = kh_user_of(b), end = kh_addr(b) + kh_size(b);
    d->requested = (uint64_t)req;
    d->check = kh_dbg_check(kh_addr(b), (uint64_t)req);
    __builtin_memset((void *)(u - KHEAP_REDZONE), KHEAP_FILL_GUARD, KHEAP_REDZONE);
    if (keep < req)
        __builtin_memset((void *)(u + keep), KHEAP_FILL_ALLOC, req - keep);
    __builtin_memset((void *)(u + req), KHEAP_FILL_GUARD, end - (u + req));
}

static void kh_redzone_report(mm_report_t *r, const char *msg, uintptr_t user, uintptr_t bad,
                              uint64_t found, uint64_t expected, int line)
{
    *r = (mm_report_t){
        .kind = MM_REPORT_REDZONE,
        .message = msg,
        .file = __FILE__,
        .line = line,
        .address = (uint64_t)user,
        .offset = (uint64_t)bad - (uint64_t)user, /* negative before the block */
        .found = found,
        .expected = expected,
    };
}

bool kh_dbg_guards_ok(const kh_block_t *b, mm_report_t *report)
{
    const kh_dbg_hdr_t *d = kh_dbg_of(b);
    uintptr_t u = kh_user_of(b), end = kh_addr(b) + kh_size(b);
    const uint8_t *g = (const uint8_t *)(u - KHEAP_REDZONE);
    for (uintptr_t i = 0; i < KHEAP_REDZONE; i++) {
        if (g[i] != KHEAP_FILL_GUARD) {
            kh_redzone_report(report, "kheap: redzone overwritten before block", u,
                              u - KHEAP_REDZONE + i, g[i], KHEAP_FILL_GUARD, __LINE__);
            return false;
        }
    }
    uint64_t req = d->requested;
    if (d->check != kh_dbg_check(kh_addr(b), req) ||
        req > kh_size(b) - KH_USER_OFF - KH_BACK_GUARD) {
        kh_redzone_report(report, "kheap: redzone header overwritten before block", u,
                          kh_addr(d), d->check, kh_dbg_check(kh_addr(b), req), __LINE__);
        return false;
    }
    for (uintptr_t p = u + (uintptr_t)req; p < end; p++) {
        uint8_t v = *(const uint8_t *)p;
        if (v != KHEAP_FILL_GUARD) {
            kh_redzone_report(report, "kheap: redzone overwritten after block", u, p, v,
                              KHEAP_FILL_GUARD, __LINE__);
            return false;
        }
    }
    return true;
}

void kh_dbg_verify_guards(const kh_block_t *b)
{
    mm_report_t r;
    if (!kh_dbg_guards_ok(b, &r))
        mm_hook_panic(&r);
}

void kh_dbg_poison(uintptr_t from, uintptr_t to)
{
    if (to > from)
        __builtin_memset((void *)from, KHEAP_FILL_FREE, to - from);
}

bool kh_dbg_poison_ok(uintptr_t from, uintptr_t to, uintptr_t block, mm_report_t *report)
{
    const uint64_t pat = KH_WORD_OF(KHEAP_FILL_FREE);
    for (uintptr_t w = from; w < to; w += 8) {
        uint64_t v = *(const uint64_t *)w;
        if (v == pat)
            continue;
        /* The link word of a header buried in this block. */
        if ((w & (KH_GRAN - 1)) == 8 && v == kh_stale_check(w - 8))
            continue;
        uintptr_t bad = w;
        while (*(const uint8_t *)bad == KHEAP_FILL_FREE)
            bad++;
        *report = (mm_report_t){
            .kind = MM_REPORT_POISON,
            .message = "kheap: freed memory written after free",
            .file = __FILE__,
            .line = __LINE__,
            .address = (uint64_t)block,
            .offset = (uint64_t)(bad - block),
            .found = *(const uint8_t *)bad,
            .expected = KHEAP_FILL_FREE,
        };
        return false;
    }
    return true;
}

void kh_dbg_verify_poison(uintptr_t from, uintptr_t to, uintptr_t block)
{
    mm_report_t r;
    if (!kh_dbg_poison_ok(from, to, block, &r))
        mm_hook_panic(&r);
}

void kh_dbg_bury_header(kh_block_t *h)
{
    h->word = KH_WORD_OF(KHEAP_FILL_FREE);
    __builtin_memset(&h->left, KHEAP_FILL_FREE, sizeof(kh_block_t) - KH_HDR);
}

void kh_dbg_bury_footer(uintptr_t end)
{
    *kh_footer_of_end(end) = KH_WORD_OF(KHEAP_FILL_FREE);
}

#endif /* HADRON_MM_HEAP_REDZONES */
