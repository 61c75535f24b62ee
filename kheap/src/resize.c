/*
 * kheap blocks: resizing a used block where it stands.
 */
#include "block.h"

/*
 * Resize used block b to n bytes without moving it, if the memory right
 * above allows. Shrinking always works: the freed tail joins a free next
 * block, becomes a free block of its own, or (too small for either) stays
 * in b. Growing takes the front of a free next block that is big enough.
 * Lock held.
 */
bool kh_resize_in_place(kheap_t *heap, kh_block_t *b, uintptr_t n)
{
    uintptr_t ba = kh_addr(b), cur = kh_size(b);
    uint64_t prev_free = b->word & KH_PREV_FREE;
    kh_block_t *next = kh_at(ba + cur);
    bool next_free = !kh_used(next);

    if (n <= cur) {
        uintptr_t tail = cur - n;
        if (tail == 0)
            return true;
        if (next_free) {
            uintptr_t total = tail + kh_size(next);
#if HADRON_MM_HEAP_REDZONES
            kh_dbg_poison(ba + n, ba + cur);
#endif
            kh_hole_set(heap, next, ba + n, total);
            /* next's old header is now inside the free block: mark it stale
             * unless the block's own node covers part of it. */
            if (ba + n + sizeof(kh_block_t) <= kh_addr(next)) {
                kh_make_stale(next);
#if HADRON_MM_HEAP_REDZONES
                kh_dbg_bury_header(next);
#endif
            } else {
#if HADRON_MM_HEAP_REDZONES
                kh_dbg_poison(ba + n + sizeof(kh_block_t), kh_addr(next) + sizeof(kh_block_t));
#endif
            }
            heap->free_bytes += tail;
            kh_set_used(b, n, prev_free);
        } else if (tail >= KH_MIN_BLOCK) {
            kh_set_used(b, n, prev_free);
            kh_block_t *t = kh_at(ba + n);
            kh_set_used(t, tail, 0);
            kh_release(heap, t);
        }
        return true;
    }

    uintptr_t need = n - cur;
    if (!next_free || kh_size(next) < need)
        return false;
    uintptr_t na = kh_addr(next), nsize = kh_size(next), rest = nsize - need;
    if (rest < KH_MIN_BLOCK)
        need = nsize;
#if HADRON_MM_HEAP_REDZONES
    {
        uintptr_t hi = na + need < na + nsize - 8 ? na + need : na + nsize - 8;
        kh_dbg_verify_poison(na + sizeof(kh_block_t), hi, na);
    }
#endif
    if (rest < KH_MIN_BLOCK) {
        kh_hole_del(heap, next);
        kh_set_prev_free(kh_at(na + nsize), false);
    } else {
        kh_hole_set(heap, next, na + need, rest);
    }
    heap->free_bytes -= need;
    kh_set_used(b, cur + need, prev_free);
    return true;
}
