/*
 * kheap blocks: telling a caller's pointer from anything else, and freeing
 * with immediate coalescing through boundary tags.
 */
#include "block.h"

mm_status_t kh_lookup(kheap_t *heap, uintptr_t ptr, bool inner, kh_block_t **out)
{
    if ((ptr & (KH_GRAN - 1)) != 0)
        return MM_ERR_BAD_POINTER;
    kh_region_t *r = kh_region_find(heap, ptr);
    if (r == NULL)
        return MM_ERR_BAD_POINTER;
    uintptr_t b = ptr - KH_USER_OFF, limit = kh_region_end(r) - KH_END_MARK;
    if (ptr < KH_USER_OFF || b < kh_addr(kh_region_first(r)) || b + KH_MIN_BLOCK > limit)
        return MM_ERR_BAD_POINTER;
    /* From here the 16 bytes below ptr are read: for any pointer this heap
     * handed out they are its own header. */
    kh_block_t *blk = kh_at(b);
    if (kh_is_valid_used(blk) && kh_size(blk) <= limit - b) {
        if ((blk->word & KH_INNER) != 0 && !inner)
            return MM_ERR_BAD_POINTER;
        *out = blk;
        return MM_OK;
    }
    /* Not a used block: tell a block freed before (still a free block's
     * head, or a header since merged into one) from anything else. */
    if (blk->link == kh_stale_check(b))
        return MM_ERR_DOUBLE_FREE;
    if (!kh_used(blk)) {
        const kh_block_t *fl = kh_tree_floor(heap->free_root, b);
        if (fl != NULL && kh_addr(fl) == b)
            return MM_ERR_DOUBLE_FREE;
    }
    return MM_ERR_BAD_POINTER;
}

void kh_warn_pointer(mm_status_t st, uintptr_t ptr, const char *file, int line)
{
    mm_report_t r = {
        .kind = st == MM_ERR_DOUBLE_FREE ? MM_REPORT_DOUBLE_FREE : MM_REPORT_BAD_POINTER,
        .message = st == MM_ERR_DOUBLE_FREE ? "kheap: block freed twice"
                                            : "kheap: pointer not allocated from this heap",
        .file = file,
        .line = line,
        .address = (uint64_t)ptr,
    };
    mm_hook_warn(&r);
}

/* A header (or footer) about to lie inside a bigger free block. */
static inline void kh_bury(kh_block_t *h)
{
    kh_make_stale(h);
#if HADRON_MM_HEAP_REDZONES
    kh_dbg_bury_header(h);
#endif
}

kh_block_t *kh_release(kheap_t *heap, kh_block_t *b)
{
    uintptr_t ba = kh_addr(b), size = kh_size(b);
    kh_block_t *next = kh_at(ba + size);
    bool next_free = !kh_used(next);
#if HADRON_MM_HEAP_REDZONES
    kh_dbg_poison(ba + KH_HDR, ba + size);
#endif
    heap->free_bytes += size;

    if (kh_prev_free(b)) {
        uintptr_t psize = (uintptr_t)*kh_footer_of_end(ba);
        kh_block_t *prev = kh_at(ba - psize);
        if (psize < KH_MIN_BLOCK || kh_used(prev) || kh_size(prev) != psize)
            KH_CORRUPT("kheap: footer of the free block below does not match its header", ba,
                       psize, kh_size(prev));
#if HADRON_MM_HEAP_REDZONES
        kh_dbg_bury_footer(ba);
#endif
        kh_bury(b);
        uintptr_t total = psize + size;
        if (next_free) {
            total += kh_size(next);
            kh_hole_del(heap, next);
            kh_bury(next);
        } else {
            kh_set_prev_free(next, true);
        }
        return kh_hole_set(heap, prev, ba - psize, total);
    }
    if (next_free) {
        /* b takes over next's tree node: nothing free lies between them. */
        kh_block_t *r = kh_hole_set(heap, next, ba, size + kh_size(next));
        kh_bury(next);
        return r;
    }
    kh_hole_add(heap, ba, size);
    kh_set_prev_free(next, true);
    return b;
}
