/*
 * kheap: the full consistency check (the invariants every operation keeps).
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
    size_t runs, runs_with_room, run_slots;
    size_t small_runs, map_leaves;
    size_t node_chunks, pooled;
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
            if (kh_is_run(b)) {
                const char *why = NULL;
                uintptr_t rb = kh_user_of(b);
                if (!kheap_run_verify(rb, sz, &why))
                    KH_FAIL(MM_REPORT_CORRUPT, why, x, sz, 0);
                const kh_run_t *run = (const kh_run_t *)rb;
                if (!run->medium) {
                    if (!kheap_map_test(heap, rb))
                        KH_FAIL(MM_REPORT_CORRUPT, "kheap: small run missing from the run map",
                                x, 0, 0);
                    t->small_runs++;
                }
                t->runs++;
                t->run_slots += run->nused;
                if (run->nused < run->nslots)
                    t->runs_with_room++;
            } else if (kh_kind(b) == KH_MAP) {
                t->map_leaves++; /* kheap_map_verify checks the leaf itself */
            } else if (kh_kind(b) == KH_NODES) {
                if (!kheap_nodes_listed(heap, kh_user_of(b)))
                    KH_FAIL(MM_REPORT_CORRUPT, "kheap: node chunk damaged", x, b->word, sz);
                t->node_chunks++;
            }
#if HADRON_MM_HEAP_REDZONES
            else if (!kheap_dbg_guards_ok(b, r)) {
                return MM_ERR_CORRUPT;
            }
#endif
        } else {
            if (prev_was_free)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: two free blocks side by side", x, sz, 0);
            if (*kh_footer_of_end(x + sz) != sz)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: free block footer wrong", x,
                        *kh_footer_of_end(x + sz), sz);
            if ((b->word & ~(KH_SIZE_MASK | KH_BAL_MASK | KH_POOLED)) != 0 ||
                (kh_pooled(b) && ((b->word & KH_BAL_MASK) != 0 ||
                                  !kheap_nodes_owns(heap, (uintptr_t)b->link))))
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: free block header damaged", x, b->word,
                        b->link);
            const kh_block_t *node = kh_free_node(b);
            if (kheap_tree_floor(heap->free_root, x) != node || kt_key(node) != x ||
                kh_size(node) != sz || kh_pooled(node) != kh_pooled(b))
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: free block missing from the tree", x, 0, 0);
            t->pooled += kh_pooled(b);
            t->free_blocks++;
            t->free_bytes += sz;
#if HADRON_MM_HEAP_REDZONES
            if (!kheap_dbg_poison_ok(x + sizeof(kh_block_t), x + sz - 8, x, r))
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
    const kh_block_t *bad = kheap_tree_verify(heap->region_root, &nregions, &why);
    if (bad != NULL)
        KH_FAIL(MM_REPORT_CORRUPT, why, kh_addr(bad), 0, 0);
    if (nregions != heap->regions)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: region count wrong", 0, nregions, heap->regions);
    bad = kheap_tree_verify(heap->free_root, &nfree, &why);
    if (bad != NULL)
        KH_FAIL(MM_REPORT_CORRUPT, why, kt_key(bad), 0, 0);

    /* Class lists of runs with room: well linked, each a run of its class
     * with a free slot; together they must be exactly the runs with room
     * the region walk finds. */
    size_t listed = 0;
    for (unsigned c = 0; c < KHEAP_RUN_CLASSES; c++) {
        const kh_run_t *prev = NULL;
        for (const kh_run_t *run = heap->partial[c]; run != NULL; prev = run, run = run->next) {
            if (++listed > heap->runs)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: run list longer than the runs", kh_addr(run),
                        listed, heap->runs);
            const char *rwhy = NULL;
            if (kheap_region_find(heap, kh_addr(run)) == NULL ||
                !kheap_run_verify(kh_addr(run), UINTPTR_MAX, &rwhy))
                KH_FAIL(MM_REPORT_CORRUPT, rwhy ? rwhy : "kheap: listed run outside the heap",
                        kh_addr(run), 0, 0);
            /* The head's prev is not kept (run.c). */
            if (run->cls != c || (prev != NULL && run->prev != prev) ||
                run->nused >= run->nslots)
                KH_FAIL(MM_REPORT_CORRUPT, "kheap: run list damaged", kh_addr(run), run->cls, c);
        }
    }

    kh_tally_t t = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    uintptr_t prev_end = 0;
    for (kh_block_t *n = kheap_tree_first(heap->region_root); n != NULL; n = kheap_tree_succ(n)) {
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
    if (t.runs != heap->runs || t.runs_with_room != listed || t.run_slots != heap->run_slots_used)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: run counts wrong", 0, t.runs, heap->runs);
    why = NULL;
    if (t.map_leaves != heap->map_leaves || !kheap_map_verify(heap, t.small_runs, &why))
        KH_FAIL(MM_REPORT_CORRUPT, why != NULL ? why : "kheap: run map leaf count wrong", 0,
                t.map_leaves, heap->map_leaves);
    if (t.total_bytes != heap->total_bytes)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: region byte count wrong", 0, t.total_bytes,
                heap->total_bytes);
    uintptr_t where = 0;
    if (!kheap_nodes_verify(heap, t.node_chunks, t.pooled, &why, &where))
        KH_FAIL(MM_REPORT_CORRUPT, why, where, t.pooled, heap->node_total);
    if (heap->node_chunks != 0 && heap->free_bytes + heap->node_chunk_bytes +
                                          heap->regions * (size_t)KHEAP_REGION_OVERHEAD ==
                                      heap->total_bytes)
        KH_FAIL(MM_REPORT_CORRUPT, "kheap: node chunks kept by an empty heap", 0,
                heap->node_chunks, 0);
    /* Only the calling CPU's cache: the others change without the lock. */
    if (!kheap_cache_verify(heap, &why, &where))
        KH_FAIL(MM_REPORT_CORRUPT, why, where, 0, 0);
    return MM_OK;
}

mm_status_t kheap_check(kheap_t *heap, mm_report_t *report)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    mm_report_t r;
    mm_irqflags_t f = kh_lock(heap);
    mm_status_t st = kh_check_locked(heap, &r);
    kh_unlock(heap, f);
    if (st != MM_OK && report != NULL)
        *report = r;
    return st;
}
