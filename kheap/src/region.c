/*
 * kheap blocks: regions. Each is a node of the region tree (its descriptor)
 * and ends with an end marker; adjacent ones merge, and trimming cuts pages
 * out of one.
 */
#include "block.h"

mm_status_t kh_region_validate(uintptr_t base, size_t size, uintptr_t *b_out, uintptr_t *s_out)
{
    if (base == 0)
        return MM_ERR_INVALID;
    uintptr_t end, b;
    if (__builtin_add_overflow(base, (uintptr_t)size, &end) ||
        __builtin_add_overflow(base, KH_GRAN - 1, &b))
        return MM_ERR_RANGE;
    b &= ~(KH_GRAN - 1);
    end &= ~(KH_GRAN - 1);
    if (end < b || end - b < KHEAP_REGION_MIN)
        return MM_ERR_INVALID;
    if (end - b > KHEAP_REGION_MAX)
        return MM_ERR_RANGE;
    *b_out = b;
    *s_out = end - b;
    return MM_OK;
}

kh_region_t *kh_region_find(kheap_t *heap, uintptr_t addr)
{
    if (addr < heap->lo || addr >= heap->hi)
        return NULL;
    /* One region (a kernel heap growing in place) is the common case. */
    kh_block_t *r = heap->regions == 1 ? heap->region_root
                                       : kh_tree_floor(heap->region_root, addr);
    if (r == NULL || addr >= kh_addr(r) + kh_size(r))
        return NULL;
    return (kh_region_t *)r;
}

static void kh_write_end_mark(uintptr_t end)
{
    kh_block_t *m = kh_at(end - KH_END_MARK);
    m->word = KH_USED;
    m->link = kh_end_check(kh_addr(m));
}

mm_status_t kh_region_add_locked(kheap_t *heap, uintptr_t b, size_t size)
{
    uintptr_t s = (uintptr_t)size, e = b + s;
    kh_block_t *below = kh_tree_floor(heap->region_root, e - 1);
    if (below != NULL && kh_addr(below) + kh_size(below) > b)
        return MM_ERR_OVERLAP;

    kh_region_t *prev = b > 0 ? (kh_region_t *)kh_tree_floor(heap->region_root, b - 1) : NULL;
    if (prev != NULL && kh_region_end(prev) == b && kh_size(&prev->node) + s <= KHEAP_REGION_MAX) {
        /* The old end marker becomes the header of a block covering the new
         * memory; releasing it merges it with a free last block. */
        kh_block_t *mark = kh_at(b - KH_END_MARK);
        uint64_t prev_free = mark->word & KH_PREV_FREE;
        kh_write_end_mark(e);
        kh_set_used(mark, s, prev_free);
        prev->node.word = (prev->node.word & KH_BAL_MASK) | (uint64_t)(kh_size(&prev->node) + s) | KH_USED;
        kh_tree_resized(&prev->node);
        heap->total_bytes += s;
        if (e > heap->hi)
            heap->hi = e;
        kh_release(heap, mark);
        return MM_OK;
    }

    kh_region_t *r = (kh_region_t *)kh_at(b);
    r->node.word = (uint64_t)s | KH_USED;
    r->magic = kh_region_magic(b);
    kh_tree_insert(&heap->region_root, &r->node);
    kh_write_end_mark(e);
    kh_block_t *first = kh_region_first(r);
    kh_set_used(first, s - KHEAP_REGION_OVERHEAD, 0);
    heap->regions++;
    heap->total_bytes += s;
    if (b < heap->lo)
        heap->lo = b;
    if (e > heap->hi)
        heap->hi = e;
    kh_release(heap, first);
    return MM_OK;
}

void kh_region_cut_locked(kheap_t *heap, kh_region_t *r, kh_block_t *f, uintptr_t lo,
                          uintptr_t hi)
{
    uintptr_t rbase = kh_addr(r), rend = kh_region_end(r);
    uintptr_t fa = kh_addr(f), fe = fa + kh_size(f);
    MM_ASSERT(!kh_used(f) && rbase <= lo && lo < hi && hi <= rend && (lo == rbase || fa <= lo) &&
              (hi == rend || hi <= fe));
    kh_block_t *next = kh_at(fe); /* a used block or the end marker */
    kh_hole_del(heap, f);
    heap->free_bytes -= fe - fa;
    heap->total_bytes -= hi - lo;

    if (hi < rend) {
        /* The part above becomes a region of its own. */
        kh_region_t *up = (kh_region_t *)kh_at(hi);
        up->node.word = (uint64_t)(rend - hi) | KH_USED;
        up->magic = kh_region_magic(hi);
        kh_tree_insert(&heap->region_root, &up->node);
        heap->regions++;
        uintptr_t first = hi + KH_REGION_DESC;
        if (fe > first) {
            kh_hole_add(heap, first, fe - first);
            heap->free_bytes += fe - first;
        } else {
            kh_set_prev_free(next, false);
        }
    }
    if (lo > rbase) {
        /* The part below keeps the descriptor and gets a new end marker. */
        r->node.word = (r->node.word & KH_BAL_MASK) | (uint64_t)(lo - rbase) | KH_USED;
        kh_tree_resized(&r->node);
        uintptr_t mark = lo - KH_END_MARK;
        kh_write_end_mark(lo);
        if (mark > fa) {
            kh_hole_add(heap, fa, mark - fa);
            heap->free_bytes += mark - fa;
            kh_set_prev_free(kh_at(mark), true);
        }
    } else {
        kh_tree_remove(&heap->region_root, &r->node);
        heap->regions--;
    }
}
