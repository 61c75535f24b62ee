/*
 * kheap blocks: the full consistency check (the invariants every operation keeps).
 */
#include "block.h"

#define KH_FAIL(kind_, msg, addr, found_, expected_)                                               \
    do {                                                                                           \
        *r = (mm_report_t){.kind = (kind_), .message = (msg), .file = __FILE__,                    \
                           .line = __LINE__, .address = (uint64_t)(addr),                          \
                           .found = (uint64_t)(found_), .expected = (uint64_t)(expected_)};        \
        return MM_ERR_CORRUPT;                                                                     \
    } while (0)

typedef struct kh_tally {
    size_t free_blocks, free_bytes, total_bytes;
} kh_tally_t;

/* Every block of one region, in address order, against its neighbours. */
static mm_status_t kh_check_region(kheap_t *heap, const kh_region_t *reg, kh_tally_t *t,
                                   mm_report_t *r)
{
    uintptr_t base = kh_addr(reg), end = kh_region_end(reg), limit = end - KH_END_MARK;
    if (reg->magic != kh_region_magic(base) || !kh_used(&reg->node))
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: region descriptor damaged", base, reg->magic,
                kh_region_magic(base));
    if (kh_size(&reg->node) < KHEAP_REGION_MIN || kh_size(&reg->node) > KHEAP_REGION_MAX ||
        end < heap->lo || end > heap->hi || base < heap->lo)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: region size out of range", base,
                kh_size(&reg->node), 0);
    t->total_bytes += kh_size(&reg->node);

    bool prev_was_free = false;
    uintptr_t x = kh_addr(kh_region_first(reg));
    while (x < limit) {
        kh_block_t *b = kh_at(x);
        uintptr_t sz = kh_size(b);
        if (sz < KH_MIN_BLOCK || sz > limit - x)
            KH_FAIL(MM_REPORT_CORRUPT, "kheap: block size out of range", x, sz, 0);
        if (kh_prev_free(b) != prev_was_free)
            KH_FAIL(MM_REPORT_CORRUPT, "kheap: previous-free flag wrong", x, kh_prev_free(b),
                    prev_was_free);
        if (kh_used(b)) {
            if (b->link != kh_used_check(x, sz))
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: used block header damaged", x, b->link,
                        kh_used_check(x, sz));
            if ((b->word >> KH_BAL_SHIFT) != 0)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: used block header damaged", x, b->word, sz);
#if HADRON_MM_HEAP_REDZONES
            if (!kh_dbg_guards_ok(b, r))
                return MM_ERR_CORRUPT;
#endif
        } else {
            if (prev_was_free)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: two free blocks side by side", x, sz, 0);
            if (*kh_footer_of_end(x + sz) != sz)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: free block footer wrong", x,
                        *kh_footer_of_end(x + sz), sz);
            if ((b->word & ~(KH_SIZE_MASK | KH_BAL_MASK)) != 0)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: free block header damaged", x, b->word,
                        b->link);
            if (kh_tree_floor(heap->free_root, x) != b)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: free block missing from the tree", x, 0, 0);
            t->free_blocks++;
            t->free_bytes += sz;
#if HADRON_MM_HEAP_REDZONES
            if (!kh_dbg_poison_ok(x + sizeof(kh_block_t), x + sz - 8, x, r))
                return MM_ERR_CORRUPT;
#endif
        }
        prev_was_free = !kh_used(b);
        x += sz;
    }
    const kh_block_t *m = kh_at(limit);
    if (x != limit || kh_size(m) != 0 || !kh_used(m) || m->link != kh_end_check(limit) ||
        kh_prev_free(m) != prev_was_free)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: region end marker damaged", limit, m->word, 0);
    return MM_OK;
}

static mm_status_t kh_check_locked(kheap_t *heap, mm_report_t *r)
{
    size_t nregions = 0, nfree = 0;
    const char *why = NULL;
    const kh_block_t *bad = kh_tree_verify(heap->region_root, &nregions, &why);
    if (bad != NULL)
        KH_FAIL(MM_REPORT_CORRUPT, why, kh_addr(bad), 0, 0);
    if (nregions != heap->regions)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: region count wrong", 0, nregions, heap->regions);
    bad = kh_tree_verify(heap->free_root, &nfree, &why);
    if (bad != NULL)
        KH_FAIL(MM_REPORT_CORRUPT, why, kh_addr(bad), 0, 0);

    kh_tally_t t = {0, 0, 0};
    uintptr_t prev_end = 0;
    for (kh_block_t *n = kh_tree_first(heap->region_root); n != NULL; n = kh_tree_succ(n)) {
        if (kh_addr(n) < prev_end)
            KH_FAIL(MM_REPORT_CORRUPT, "kheap: regions overlap", kh_addr(n), prev_end, 0);
        mm_status_t st = kh_check_region(heap, (const kh_region_t *)n, &t, r);
        if (st != MM_OK)
            return st;
        prev_end = kh_region_end((const kh_region_t *)n);
    }
    if (t.free_blocks != nfree || nfree != heap->free_blocks)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: free block count wrong", 0, t.free_blocks,
                heap->free_blocks);
    if (t.free_bytes != heap->free_bytes)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: free byte count wrong", 0, t.free_bytes,
                heap->free_bytes);
    if (t.total_bytes != heap->total_bytes)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: region byte count wrong", 0, t.total_bytes,
                heap->total_bytes);
    return MM_OK;
}

mm_status_t kh_blocks_check(kheap_t *heap, mm_report_t *report)
{
    mm_report_t r;
    mm_irqflags_t f = kh_lock(heap);
    mm_status_t st = kh_check_locked(heap, &r);
    kh_unlock(heap, f);
    if (st != MM_OK && report != NULL)
        *report = r;
    return st;
}
