/*
 * kheap: free, with immediate coalescing through boundary tags.
 */
#include "block.h"

/* kheap_lookup for a granule-aligned pointer whose page the run map does
 * not mark: a block, a medium slot or nothing of this heap. */
static inline mm_status_t kh_lookup_unmapped(kheap_t *heap, uintptr_t ptr, kh_ref_t *out)
{
    kh_region_t *r = kheap_region_find(heap, ptr);
    if (r == NULL)
        return MM_ERR_BAD_POINTER;
    uintptr_t b = ptr - KH_USER_OFF, limit = kh_region_end(r) - KH_END_MARK;
    if (ptr < KH_USER_OFF || b < kh_addr(kh_region_first(r)) || b + KH_MIN_BLOCK > limit)
        return MM_ERR_BAD_POINTER;
    /* From here the 16 bytes below ptr are read: for any pointer this heap
     * handed out (a block or a medium slot) they are its own header. */
    kh_block_t *blk = kh_at(b);
    if (kh_is_valid_used(blk) && kh_size(blk) <= limit - b) {
        /* A run's or a map leaf's own block is never a caller's pointer. */
        if ((blk->word & (KH_RUN | KH_MAP)) != 0)
            return MM_ERR_BAD_POINTER;
        out->block = blk;
        out->run = NULL;
        return MM_OK;
    }
    mm_status_t st = kheap_run_medium_lookup(ptr, &out->run, &out->slot);
    if (st != MM_ERR_NOT_MAPPED) {
        out->block = NULL;
        return st;
    }
    /* Not a used block: tell a block freed before (still a free block's
     * head, or a header since merged into one) from anything else. */
    if (blk->link == kh_stale_check(b))
        return MM_ERR_DOUBLE_FREE;
    if (!kh_used(blk)) {
        const kh_block_t *fl = kheap_tree_floor(heap->free_root, b);
        if (fl != NULL && kt_key(fl) == b)
            return MM_ERR_DOUBLE_FREE;
    }
    return MM_ERR_BAD_POINTER;
}

/* A small slot has no header: its page decides, through the run map, so
 * nothing of the page is read unless it is a live run (runmap.c). */
static inline bool kh_small_run_page(kheap_t *heap, uintptr_t page)
{
    return heap->map_leaves != 0 && kheap_map_test(heap, page);
}

mm_status_t kheap_lookup(kheap_t *heap, uintptr_t ptr, kh_ref_t *out)
{
    if ((ptr & (KH_GRAN - 1)) != 0)
        return MM_ERR_BAD_POINTER;
    uintptr_t page = ptr & ~(uintptr_t)(KHEAP_RUN_SIZE - 1);
    if (kh_small_run_page(heap, page)) {
        out->block = NULL;
        return kheap_run_small_slot(page, ptr, &out->run, &out->slot);
    }
    return kh_lookup_unmapped(heap, ptr, out);
}

/* A lookup's answer st for ptr, with a slot sitting in a CPU cache (in use
 * in its run, freed to the caller) told as the double free it is. */
static inline mm_status_t kh_live(kheap_t *heap, uintptr_t ptr, const kh_ref_t *ref,
                                  mm_status_t st)
{
    return st == MM_OK && ref->run != NULL && kh_slot_cached(heap, ptr) ? MM_ERR_DOUBLE_FREE : st;
}

mm_status_t kheap_lookup_live(kheap_t *heap, uintptr_t ptr, kh_ref_t *out)
{
    return kh_live(heap, ptr, out, kheap_lookup(heap, ptr, out));
}

void kheap_warn_pointer(mm_status_t st, uintptr_t ptr, const char *file, int line)
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
    kheap_dbg_bury_header(h);
#endif
}

void kheap_release(kheap_t *heap, kh_block_t *b)
{
    uintptr_t ba = kh_addr(b), size = kh_size(b);
    kh_block_t *next = kh_at(ba + size);
    bool next_free = !kh_used(next);
#if HADRON_MM_HEAP_REDZONES
    kheap_dbg_poison(ba + KH_HDR, ba + size);
#endif
    heap->free_bytes += size;

    if (kh_prev_free(b)) {
        uintptr_t psize = (uintptr_t)*kh_footer_of_end(ba);
        kh_block_t *prev = kh_at(ba - psize);
        if (psize < KH_MIN_BLOCK || kh_used(prev) || kh_size(prev) != psize)
            KH_CORRUPT("kheap: footer of the free block below does not match its header", ba,
                       psize, kh_size(prev));
        kh_block_t *pnode = kh_free_node(prev);
#if HADRON_MM_HEAP_REDZONES
        kheap_dbg_bury_footer(ba);
#endif
        kh_bury(b);
        uintptr_t total = psize + size;
        if (next_free) {
            total += kh_size(next);
            kheap_free_del(heap, kh_free_node(next));
            kh_bury(next);
        } else {
            kh_set_prev_free(next, true);
        }
        kheap_free_set(heap, pnode, ba - psize, total);
    } else if (next_free) {
        /* b takes over next's tree node: nothing free lies between them. */
        kheap_free_set(heap, kh_free_node(next), ba, size + kh_size(next));
        kh_bury(next);
    } else {
        kheap_free_add(heap, ba, size);
        kh_set_prev_free(next, true);
    }
    kheap_nodes_collapse(heap, false);
}

/* Run slot idx of run (looked up, in use, not cached) freed, into the
 * CPU's cache when it takes it. */
static inline void kh_slot_free(kheap_t *heap, kh_run_t *run, unsigned idx, uintptr_t ptr)
{
    kheap_track_free(heap, run->slot);
    if (!kh_cache_push(heap, run, ptr))
        kheap_run_free(heap, run, idx);
}

/* Every free kheap_free's fast path does not finish; the lock is held on
 * entry (flags f) and dropped here. `unmapped`: ptr is granule-aligned and
 * the run map has been asked already (no small run there), so the lookup
 * starts at the region. */
static __attribute__((noinline)) mm_status_t kh_free_general(kheap_t *heap, uintptr_t ptr,
                                                             mm_irqflags_t f, bool unmapped)
{
    kh_ref_t ref;
    mm_status_t st = kh_live(heap, ptr, &ref,
                             unmapped ? kh_lookup_unmapped(heap, ptr, &ref)
                                      : kheap_lookup(heap, ptr, &ref));
    if (st == MM_OK) {
#if HADRON_MM_HEAP_REDZONES
        if (ref.run == NULL)
            kheap_dbg_verify_guards(ref.block); /* before trusting its size */
#endif
        if (ref.run == NULL) {
            kheap_track_free(heap, kh_usable(ref.block));
            kheap_release(heap, ref.block);
        } else {
            kh_slot_free(heap, ref.run, ref.slot, ptr);
        }
    }
    kh_unlock(heap, f);
    if (st != MM_OK)
        kheap_warn_pointer(st, ptr, __FILE__, __LINE__);
    return st;
}

mm_status_t kheap_free(kheap_t *heap, void *ptr)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (ptr == NULL)
        return MM_OK;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    uintptr_t p = kh_addr(ptr), page = p & ~(uintptr_t)(KHEAP_RUN_SIZE - 1);
    /* The lock's atomic waits for every earlier store to drain (often the
     * caller's miss on fresh memory); start the misses the lookup will take
     * now so they overlap that wait. Prefetches read nothing in the
     * language's sense and never fault, whatever ptr is. */
    __builtin_prefetch((const void *)(p - KH_HDR));
    __builtin_prefetch((const void *)page);
    mm_irqflags_t f = kh_lock(heap);
    /* The common free, a slot of a small run, done here in full; anything
     * else, including every error, is kh_free_general's, told when the run
     * map has already said "no small run here" (medium slots and blocks). */
    if ((p & (KH_GRAN - 1)) != 0)
        return kh_free_general(heap, p, f, false);
    if (!kh_small_run_page(heap, page))
        return kh_free_general(heap, p, f, true);
    kh_run_t *run;
    unsigned idx;
    if (kheap_run_small_slot(page, p, &run, &idx) == MM_OK && !kh_slot_cached(heap, p)) {
        kh_slot_free(heap, run, idx, p);
        kh_unlock(heap, f);
        return MM_OK;
    }
    return kh_free_general(heap, p, f, false);
}
