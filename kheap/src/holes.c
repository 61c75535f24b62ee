/*
 * kheap blocks: free blocks ("holes") in the free tree. Each free block is
 * its own tree node (its first 40 bytes) and carries its size in the footer
 * too; these are the only functions that create, move or delete one.
 */
#include "block.h"

void kh_hole_add(kheap_t *heap, uintptr_t at, uintptr_t size)
{
    kh_block_t *n = kh_at(at);
    n->word = (uint64_t)size;
    kh_set_footer(at + size, size);
    kh_tree_insert(&heap->free_root, n);
    heap->free_blocks++;
}

void kh_hole_del(kheap_t *heap, kh_block_t *b)
{
    kh_tree_remove(&heap->free_root, b);
    heap->free_blocks--;
}

kh_block_t *kh_hole_set(kheap_t *heap, kh_block_t *b, uintptr_t at, uintptr_t size)
{
    if (kh_addr(b) != at) {
        kh_block_t *r = kh_at(at);
        kh_tree_replace(&heap->free_root, b, r);
        b = r;
    }
    kh_node_set_size(b, size);
    kh_set_footer(at + size, size);
    kh_tree_resized(b);
    return b;
}
