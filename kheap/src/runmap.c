/*
 * kheap: the small-run page map, the record of which pages are live small
 * runs.
 *
 * A small-run slot has no header, so a pointer into one is recognised by
 * its page alone. Finding that out by reading the page's first word would
 * read memory the heap does not own whenever the page is not a run: user
 * data of some block, which its owner may be writing at that moment (a data
 * race) and could forge. The map answers without touching the page, and it
 * is faster too: a free of a small slot reads only the map and the run
 * header, never the cold memory around the freed pointer.
 *
 * It is a hash table of leaves, one per KH_MAP_SPAN-aligned span of address
 * space that holds at least one small run, each leaf a bitmap of the span's
 * pages. Leaves are blocks of the heap itself (KH_MAP in their header, never
 * a caller's pointer), taken with the first small run of their span and
 * given back with the last, so a heap with no runs has no leaves and freeing
 * everything still leaves each region one free block.
 */
#include "block.h"

static unsigned kh_map_bucket(uintptr_t span)
{
    return (unsigned)(((uint64_t)(span >> KH_MAP_SPAN_SHIFT) * 0x9e3779b97f4a7c15ull) >>
                      (64 - KH_MAP_BUCKET_BITS));
}

/* The link that points at the leaf of `span`, or the NULL ending its chain. */
static kh_map_leaf_t **kh_map_link(kheap_t *heap, uintptr_t span)
{
    kh_map_leaf_t **link = &heap->map[kh_map_bucket(span)];
    while (*link != NULL && (*link)->span != span)
        link = &(*link)->next;
    return link;
}

static kh_map_leaf_t *kh_map_find(kheap_t *heap, uintptr_t span)
{
    return *kh_map_link(heap, span);
}

static unsigned kh_map_index(uintptr_t page)
{
    return (unsigned)((page & (KH_MAP_SPAN - 1)) / KHEAP_RUN_SIZE);
}

bool kheap_map_test(kheap_t *heap, uintptr_t page)
{
    const kh_map_leaf_t *l = kh_map_find(heap, page & ~(KH_MAP_SPAN - 1));
    if (l == NULL)
        return false;
    unsigned i = kh_map_index(page);
    return (l->bits[i / 64] >> (i % 64)) & 1;
}

bool kheap_map_mark(kheap_t *heap, uintptr_t page)
{
    MM_ASSERT((page & (KHEAP_RUN_SIZE - 1)) == 0);
    uintptr_t span = page & ~(KH_MAP_SPAN - 1);
    kh_map_leaf_t *l = kh_map_find(heap, span);
    if (l == NULL) {
        kh_block_t *b = kheap_carve_locked(heap, kh_block_size_for(sizeof(kh_map_leaf_t)),
                                           KH_GRAN);
        if (b == NULL)
            return false;
        b->word |= KH_MAP;
        l = (kh_map_leaf_t *)kh_user_of(b);
        __builtin_memset(l, 0, sizeof(*l));
        l->span = span;
        l->check = kh_map_check(kh_addr(l), span);
        kh_map_leaf_t **head = &heap->map[kh_map_bucket(span)];
        l->next = *head;
        *head = l;
        heap->map_leaves++;
    }
    unsigned i = kh_map_index(page);
    MM_ASSERT(((l->bits[i / 64] >> (i % 64)) & 1) == 0);
    l->bits[i / 64] |= (uint64_t)1 << (i % 64);
    l->count++;
    return true;
}

void kheap_map_clear(kheap_t *heap, uintptr_t page)
{
    uintptr_t span = page & ~(KH_MAP_SPAN - 1);
    kh_map_leaf_t **link = kh_map_link(heap, span);
    kh_map_leaf_t *l = *link;
    unsigned i = kh_map_index(page);
    MM_ASSERT(l != NULL && ((l->bits[i / 64] >> (i % 64)) & 1) != 0);
    l->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
    if (--l->count != 0)
        return;
    *link = l->next;
    heap->map_leaves--;
    l->check = 0; /* a stale copy must never pass for a leaf */
    kh_block_t *b = kh_block_of_user(kh_addr(l));
    b->word &= ~KH_MAP;
    kheap_release(heap, b);
}

bool kheap_map_verify(const kheap_t *heap, size_t small_runs, const char **why)
{
    size_t leaves = 0, marked = 0;
    for (unsigned k = 0; k < KH_MAP_BUCKETS; k++) {
        for (const kh_map_leaf_t *l = heap->map[k]; l != NULL; l = l->next) {
            if (++leaves > heap->map_leaves) {
                *why = "kheap: run map has more leaves than counted";
                return false;
            }
            const kh_block_t *b = kh_block_of_user(kh_addr(l));
            if (!kh_is_valid_used(b) || kh_kind(b) != KH_MAP ||
                l->check != kh_map_check(kh_addr(l), l->span) ||
                (l->span & (KH_MAP_SPAN - 1)) != 0 || kh_map_bucket(l->span) != k) {
                *why = "kheap: run map leaf damaged";
                return false;
            }
            size_t bits = 0;
            for (unsigned w = 0; w < KH_MAP_WORDS; w++)
                bits += (size_t)__builtin_popcountll(l->bits[w]);
            if (bits != l->count || bits == 0) {
                *why = "kheap: run map leaf count wrong";
                return false;
            }
            marked += bits;
        }
    }
    if (leaves != heap->map_leaves || marked != small_runs) {
        *why = "kheap: run map does not match the small runs";
        return false;
    }
    return true;
}
