/*
 * tlsf_ref: TLSF (Masmano, Ripoll, Crespo, Real: "TLSF: a new dynamic
 * memory allocator for real-time systems", ECRTS 2004) as Matthew Conte's
 * tlsf.c implements it, as a baseline for kheap-bench. The functions keep
 * tlsf.c's names and structure so the two can be read side by side.
 *
 * The algorithm, unchanged from tlsf.c:
 *  - free blocks in FL_INDEX_COUNT x 32 segregated lists; a first-level
 *    bitmap says which first-level classes have a non-empty list, one
 *    second-level bitmap per class says which of its 32 lists are non-empty;
 *    lookups are a find-first-set (__builtin_ctz) and a find-last-set
 *    (__builtin_clzll), never a list walk;
 *  - "good fit": a request is rounded up to the next list boundary
 *    (mapping_search) so that any block in the list found fits, and the
 *    head of that list is taken: O(1), at the cost of skipping blocks in the
 *    request's own list that would have fitted;
 *  - boundary tags: each block's size word carries FREE and PREV_FREE bits,
 *    and a free block's successor holds a pointer back to it (prev_phys);
 *  - free coalesces with both neighbours at once; an allocation splits
 *    the block found and returns the tail to the lists when it can hold a
 *    block;
 *  - tlsf_memalign: search for size + align + a minimum block, then trim a
 *    leading gap that is a block of its own (never smaller than a minimum
 *    block, moving to the next aligned address if it would be) back to the
 *    lists.
 *
 * Parameters (tlsf.c's names):
 *  - ALIGN_SIZE 16 (tlsf.c: 8 on 64-bit). kheap and glibc malloc return
 *    16-byte aligned memory; with 8 TLSF could pack small blocks more
 *    tightly than the allocators it is compared with may, so 16 it is.
 *  - SL_INDEX_COUNT_LOG2 5: 32 second-level lists per first-level class.
 *  - FL_INDEX_SHIFT = 5 + 4 = 9, so SMALL_BLOCK_SIZE is 512: blocks under
 *    512 bytes are first-level class 0, split linearly into 32 lists 16
 *    bytes apart (one block size each): tlsf.c's 256 bytes / 8-byte lists,
 *    scaled by the alignment.
 *  - FL_INDEX_MAX 34 (tlsf.c: 32 on 64-bit): blocks up to 16 GiB, so the
 *    bench's 16 GiB arena is one pool of one initial free block.
 *
 * One departure in representation, not in algorithm: tlsf.c's size word
 * holds the payload size, and consecutive payloads are size + 8 apart (the
 * 8-byte size word). That keeps 8-byte alignment only; with 16 it would
 * alternate. So here, as in glibc's chunks, the size word holds the
 * distance from this header to the next (a multiple of 16; payload + 8).
 * The overhead is the same 8 bytes per allocated block (the next header's
 * prev_phys lies in the block's last payload bytes, used only once the
 * block is free), and the lists are indexed by that distance, so every list
 * boundary is 8 payload bytes lower than in tlsf.c.
 *
 * Not carried over: pool growth (tlsf_add_pool beyond the first pool),
 * realloc, the walker and the debug asserts (tlsf_ref_check replaces them).
 */
#include "tlsf_ref.h"

#include <stdbool.h>
#include <string.h>

enum {
    ALIGN_SIZE_LOG2 = 4,
    SL_INDEX_COUNT_LOG2 = 5,
    FL_INDEX_MAX = 34,
    SL_INDEX_COUNT = 1 << SL_INDEX_COUNT_LOG2,
    FL_INDEX_SHIFT = SL_INDEX_COUNT_LOG2 + ALIGN_SIZE_LOG2,
    FL_INDEX_COUNT = FL_INDEX_MAX - FL_INDEX_SHIFT + 1,
};

#define ALIGN_SIZE ((size_t)1 << ALIGN_SIZE_LOG2)
#define SMALL_BLOCK_SIZE ((size_t)1 << FL_INDEX_SHIFT)
#define BLOCK_SIZE_MAX ((size_t)1 << FL_INDEX_MAX)

_Static_assert(ALIGN_SIZE == SMALL_BLOCK_SIZE / SL_INDEX_COUNT, "list 0 must have one size per list");
_Static_assert(FL_INDEX_COUNT <= 32, "the first-level bitmap is one 32-bit word");
_Static_assert(SL_INDEX_COUNT <= 32, "a second-level bitmap is one 32-bit word");
_Static_assert(sizeof(size_t) == 8, "written for 64-bit hosts");

/* prev_phys is valid only while the previous block is free; next_free and
 * prev_free only while this block is free (they are its payload when it is
 * not). */
typedef struct block {
    struct block *prev_phys;
    size_t size; /* distance to the next header | FREE_BIT | PREV_FREE_BIT */
    struct block *next_free;
    struct block *prev_free;
} block_t;

#define FREE_BIT ((size_t)1)
#define PREV_FREE_BIT ((size_t)2)
#define FLAG_BITS (FREE_BIT | PREV_FREE_BIT)

/* The payload starts after prev_phys and the size word. */
#define PAYLOAD_OFFSET offsetof(block_t, next_free)
/* What an allocated block costs beyond its payload: its size word. */
#define BLOCK_OVERHEAD sizeof(size_t)
/* A free block must hold all four header words. */
#define BLOCK_SIZE_MIN sizeof(block_t)
/* The zero-size, always-used block after the last one: it stops merge_next
 * and holds the last block's prev_phys. */
#define SENTINEL_SIZE PAYLOAD_OFFSET

_Static_assert(PAYLOAD_OFFSET == ALIGN_SIZE, "payloads must keep the headers' alignment");

struct tlsf_ref {
    /* Empty lists point here rather than at NULL, as in tlsf.c, so insert
     * and remove need no tests. */
    block_t block_null;
    unsigned fl_bitmap;
    unsigned sl_bitmap[FL_INDEX_COUNT];
    block_t *blocks[FL_INDEX_COUNT][SL_INDEX_COUNT];
    uintptr_t mem;
    block_t *first;
    block_t *sentinel;
    /* Footprint, for the bench. TLSF keeps no "top" the way a brk heap
     * does, and a kernel would hand it a fixed pool; the part of that pool
     * a run has touched reaches to the end of the highest block it ever
     * handed out, plus the end sentinel any pool needs after that, measured
     * from `mem` (the control structure counts). Free blocks below it count
     * too: TLSF never gives memory back. */
    uintptr_t high_water;
};

/* ---- bit scans (tlsf_ffs / tlsf_fls_sizet) ------------------------------ */

static inline int tlsf_ffs(unsigned word)
{
    return __builtin_ctz(word); /* callers never pass 0 */
}

static inline int tlsf_fls_sizet(size_t size)
{
    return 63 - __builtin_clzll((unsigned long long)size); /* never 0 */
}

static inline size_t align_up(size_t x, size_t align)
{
    return (x + align - 1) & ~(align - 1);
}

static inline size_t align_down(size_t x, size_t align)
{
    return x & ~(align - 1);
}

/* ---- block header access ------------------------------------------------- */

static inline size_t block_size(const block_t *block)
{
    return block->size & ~FLAG_BITS;
}

static inline void block_set_size(block_t *block, size_t size)
{
    block->size = size | (block->size & FLAG_BITS);
}

static inline bool block_is_free(const block_t *block)
{
    return (block->size & FREE_BIT) != 0;
}

static inline void block_set_free(block_t *block)
{
    block->size |= FREE_BIT;
}

static inline void block_set_used(block_t *block)
{
    block->size &= ~FREE_BIT;
}

static inline bool block_is_prev_free(const block_t *block)
{
    return (block->size & PREV_FREE_BIT) != 0;
}

static inline void block_set_prev_free(block_t *block)
{
    block->size |= PREV_FREE_BIT;
}

static inline void block_set_prev_used(block_t *block)
{
    block->size &= ~PREV_FREE_BIT;
}

static inline block_t *block_at(uintptr_t address)
{
    return (block_t *)address;
}

static inline block_t *block_from_ptr(const void *ptr)
{
    return block_at((uintptr_t)ptr - PAYLOAD_OFFSET);
}

static inline void *block_to_ptr(const block_t *block)
{
    return (void *)((uintptr_t)block + PAYLOAD_OFFSET);
}

static inline block_t *block_next(const block_t *block)
{
    return block_at((uintptr_t)block + block_size(block));
}

/* Makes the next block's back pointer valid; only while `block` is free
 * (or being carved), as that word is `block`'s payload otherwise. */
static inline block_t *block_link_next(block_t *block)
{
    block_t *next = block_next(block);
    next->prev_phys = block;
    return next;
}

static inline void block_mark_as_free(block_t *block)
{
    block_t *next = block_link_next(block);
    block_set_prev_free(next);
    block_set_free(block);
}

static inline void block_mark_as_used(block_t *block)
{
    block_t *next = block_next(block);
    block_set_prev_used(next);
    block_set_used(block);
}

/* ---- size classes -------------------------------------------------------- */

/* The list a block of `size` bytes belongs in. */
static inline void mapping_insert(size_t size, int *fli, int *sli)
{
    int fl, sl;
    if (size < SMALL_BLOCK_SIZE) {
        fl = 0;
        sl = (int)(size / (SMALL_BLOCK_SIZE / SL_INDEX_COUNT));
    } else {
        fl = tlsf_fls_sizet(size);
        sl = (int)(size >> (fl - SL_INDEX_COUNT_LOG2)) ^ (1 << SL_INDEX_COUNT_LOG2);
        fl -= FL_INDEX_SHIFT - 1;
    }
    *fli = fl;
    *sli = sl;
}

/* The first list all of whose blocks are at least `size`: good fit. */
static inline void mapping_search(size_t size, int *fli, int *sli)
{
    if (size >= SMALL_BLOCK_SIZE)
        size += ((size_t)1 << (tlsf_fls_sizet(size) - SL_INDEX_COUNT_LOG2)) - 1;
    mapping_insert(size, fli, sli);
}

/* The head of the first non-empty list at or after (*fli, *sli). */
static inline block_t *search_suitable_block(tlsf_ref_t *control, int *fli, int *sli)
{
    int fl = *fli, sl = *sli;
    unsigned sl_map = control->sl_bitmap[fl] & (~0u << sl);
    if (sl_map == 0) {
        unsigned fl_map = control->fl_bitmap & (~0u << (fl + 1));
        if (fl_map == 0)
            return NULL;
        fl = tlsf_ffs(fl_map);
        *fli = fl;
        sl_map = control->sl_bitmap[fl];
    }
    sl = tlsf_ffs(sl_map);
    *sli = sl;
    return control->blocks[fl][sl];
}

/* ---- free lists ---------------------------------------------------------- */

static inline void remove_free_block(tlsf_ref_t *control, block_t *block, int fl, int sl)
{
    block_t *prev = block->prev_free, *next = block->next_free;
    next->prev_free = prev;
    prev->next_free = next;
    if (control->blocks[fl][sl] == block) {
        control->blocks[fl][sl] = next;
        if (next == &control->block_null) {
            control->sl_bitmap[fl] &= ~(1u << sl);
            if (control->sl_bitmap[fl] == 0)
                control->fl_bitmap &= ~(1u << fl);
        }
    }
}

static inline void insert_free_block(tlsf_ref_t *control, block_t *block, int fl, int sl)
{
    block_t *current = control->blocks[fl][sl];
    block->next_free = current;
    block->prev_free = &control->block_null;
    current->prev_free = block;
    control->blocks[fl][sl] = block;
    control->fl_bitmap |= 1u << fl;
    control->sl_bitmap[fl] |= 1u << sl;
}

static inline void block_remove(tlsf_ref_t *control, block_t *block)
{
    int fl, sl;
    mapping_insert(block_size(block), &fl, &sl);
    remove_free_block(control, block, fl, sl);
}

static inline void block_insert(tlsf_ref_t *control, block_t *block)
{
    int fl, sl;
    mapping_insert(block_size(block), &fl, &sl);
    insert_free_block(control, block, fl, sl);
}

/* ---- split and merge ----------------------------------------------------- */

static inline bool block_can_split(const block_t *block, size_t size)
{
    return block_size(block) >= size + BLOCK_SIZE_MIN;
}

/* Cuts `block` to `size` bytes; the rest becomes a free block (not yet in
 * a list), which is returned. */
static inline block_t *block_split(block_t *block, size_t size)
{
    block_t *remaining = block_at((uintptr_t)block + size);
    remaining->size = block_size(block) - size;
    block_set_size(block, size);
    block_mark_as_free(remaining);
    return remaining;
}

static inline block_t *block_absorb(block_t *prev, block_t *block)
{
    prev->size += block_size(block);
    block_link_next(prev);
    return prev;
}

static inline block_t *block_merge_prev(tlsf_ref_t *control, block_t *block)
{
    if (block_is_prev_free(block)) {
        block_t *prev = block->prev_phys;
        block_remove(control, prev);
        block = block_absorb(prev, block);
    }
    return block;
}

static inline block_t *block_merge_next(tlsf_ref_t *control, block_t *block)
{
    block_t *next = block_next(block);
    if (block_is_free(next)) {
        block_remove(control, next);
        block = block_absorb(block, next);
    }
    return block;
}

/* Returns the tail of a block about to be used to the lists. */
static inline void block_trim_free(tlsf_ref_t *control, block_t *block, size_t size)
{
    if (block_can_split(block, size)) {
        block_t *remaining = block_split(block, size);
        block_link_next(block);
        block_set_prev_free(remaining);
        block_insert(control, remaining);
    }
}

/* Returns the first `size` bytes of a free block to the lists, keeping the
 * rest (whose payload is now aligned) for the caller. */
static inline block_t *block_trim_free_leading(tlsf_ref_t *control, block_t *block, size_t size)
{
    block_t *remaining = block;
    if (block_can_split(block, size)) {
        remaining = block_split(block, size);
        block_set_prev_free(remaining);
        block_link_next(block);
        block_insert(control, block);
    }
    return remaining;
}

static inline block_t *block_locate_free(tlsf_ref_t *control, size_t size)
{
    int fl = 0, sl = 0;
    block_t *block = NULL;
    if (size != 0) {
        mapping_search(size, &fl, &sl);
        /* A request near BLOCK_SIZE_MAX rounds up past the last class. */
        if (fl < FL_INDEX_COUNT)
            block = search_suitable_block(control, &fl, &sl);
    }
    if (block != NULL)
        remove_free_block(control, block, fl, sl);
    return block;
}

static inline void *block_prepare_used(tlsf_ref_t *control, block_t *block, size_t size)
{
    if (block == NULL)
        return NULL;
    block_trim_free(control, block, size);
    block_mark_as_used(block);
    uintptr_t end = (uintptr_t)block_next(block) + SENTINEL_SIZE;
    if (end > control->high_water)
        control->high_water = end;
    return block_to_ptr(block);
}

/* The block (header to next header) a request of `size` payload bytes
 * needs; 0 for 0 bytes or for more than any list can hold, as tlsf.c. */
static inline size_t adjust_request_size(size_t size)
{
    if (size == 0 || size >= BLOCK_SIZE_MAX)
        return 0;
    size_t block = align_up(size + BLOCK_OVERHEAD, ALIGN_SIZE);
    if (block >= BLOCK_SIZE_MAX)
        return 0;
    return block < BLOCK_SIZE_MIN ? BLOCK_SIZE_MIN : block;
}

/* ---- interface ----------------------------------------------------------- */

static void control_construct(tlsf_ref_t *control)
{
    memset(control, 0, sizeof(*control));
    control->block_null.next_free = &control->block_null;
    control->block_null.prev_free = &control->block_null;
    for (int fl = 0; fl < FL_INDEX_COUNT; fl++)
        for (int sl = 0; sl < SL_INDEX_COUNT; sl++)
            control->blocks[fl][sl] = &control->block_null;
}

tlsf_ref_t *tlsf_ref_create(void *mem, size_t bytes)
{
    const uintptr_t base = (uintptr_t)mem;
    const size_t control_bytes = align_up(sizeof(tlsf_ref_t), ALIGN_SIZE);
    if (base % ALIGN_SIZE != 0 || bytes < control_bytes + BLOCK_SIZE_MIN + SENTINEL_SIZE)
        return NULL;
    const size_t pool_bytes = align_down(bytes - control_bytes - SENTINEL_SIZE, ALIGN_SIZE);
    if (pool_bytes >= BLOCK_SIZE_MAX)
        return NULL;

    tlsf_ref_t *control = mem;
    control_construct(control);
    control->mem = base;
    control->high_water = base + control_bytes;

    /* The first block's prev_phys is never read (PREV_FREE is clear); it
     * costs 8 bytes at the pool start so that payloads are 16-aligned. */
    block_t *block = block_at(base + control_bytes);
    block->size = pool_bytes | FREE_BIT;
    block_insert(control, block);
    block_t *sentinel = block_link_next(block);
    sentinel->size = PREV_FREE_BIT;
    control->first = block;
    control->sentinel = sentinel;
    return control;
}

void *tlsf_ref_malloc(tlsf_ref_t *t, size_t size)
{
    const size_t adjust = adjust_request_size(size);
    block_t *block = block_locate_free(t, adjust);
    return block_prepare_used(t, block, adjust);
}

void *tlsf_ref_memalign(tlsf_ref_t *t, size_t align, size_t size)
{
    /* Every payload is 16-aligned already; this also keeps align_up away
     * from an alignment of 0. */
    if (align < ALIGN_SIZE)
        align = ALIGN_SIZE;
    const size_t adjust = adjust_request_size(size);
    /* The leading gap becomes a free block of its own: the block before it
     * may be in use, and then its size cannot simply grow to absorb the
     * gap. So the gap is 0 or at least a minimum block, and the search
     * asks for room for the worst such gap. */
    const size_t gap_minimum = BLOCK_SIZE_MIN;
    const size_t size_with_gap = align_up(adjust + align + gap_minimum, align);
    size_t aligned_size = adjust;
    if (adjust != 0 && align > ALIGN_SIZE)
        aligned_size = size_with_gap < BLOCK_SIZE_MAX ? size_with_gap : 0;

    block_t *block = block_locate_free(t, aligned_size);
    if (block != NULL) {
        const uintptr_t ptr = (uintptr_t)block_to_ptr(block);
        uintptr_t aligned = align_up(ptr, align);
        size_t gap = aligned - ptr;
        if (gap != 0 && gap < gap_minimum) {
            const size_t gap_remain = gap_minimum - gap;
            const size_t offset = gap_remain > align ? gap_remain : align;
            aligned = align_up(aligned + offset, align);
            gap = aligned - ptr;
        }
        if (gap != 0)
            block = block_trim_free_leading(t, block, gap);
    }
    return block_prepare_used(t, block, adjust);
}

void tlsf_ref_free(tlsf_ref_t *t, void *ptr)
{
    if (ptr == NULL)
        return;
    block_t *block = block_from_ptr(ptr);
    block_mark_as_free(block);
    block = block_merge_prev(t, block);
    block = block_merge_next(t, block);
    block_insert(t, block);
}

size_t tlsf_ref_usable_size(const void *ptr)
{
    return block_size(block_from_ptr(ptr)) - BLOCK_OVERHEAD;
}

size_t tlsf_ref_high_water(const tlsf_ref_t *t)
{
    return t->high_water - t->mem;
}

/* ---- consistency check --------------------------------------------------- */

static bool in_pool(const tlsf_ref_t *t, const block_t *block)
{
    uintptr_t a = (uintptr_t)block;
    return a >= (uintptr_t)t->first && a < (uintptr_t)t->sentinel && a % ALIGN_SIZE == 0;
}

static bool in_its_list(const tlsf_ref_t *t, const block_t *block, size_t limit)
{
    int fl, sl;
    mapping_insert(block_size(block), &fl, &sl);
    const block_t *b = t->blocks[fl][sl];
    for (size_t n = 0; b != &t->block_null && n <= limit; b = b->next_free, n++) {
        if (b == block)
            return true;
        if (!in_pool(t, b))
            return false;
    }
    return false;
}

/* One block of the address-order walk; `prev` is NULL for the first. */
static const char *check_block(const tlsf_ref_t *t, const block_t *prev, const block_t *block)
{
    const bool prev_free = prev != NULL && block_is_free(prev);
    if (block_is_prev_free(block) != prev_free)
        return "PREV_FREE bit does not match the previous block";
    if (prev_free && block->prev_phys != prev)
        return "prev_phys does not point at the free previous block";
    if (block == t->sentinel)
        return block_size(block) == 0 && !block_is_free(block) ? NULL : "end sentinel overwritten";
    const size_t size = block_size(block);
    if (size % ALIGN_SIZE != 0 || size < BLOCK_SIZE_MIN)
        return "block size not a multiple of 16 or under the minimum";
    if ((uintptr_t)block_next(block) > (uintptr_t)t->sentinel)
        return "block runs past the end of the pool";
    if (prev_free && block_is_free(block))
        return "two neighbouring free blocks (a missed merge)";
    return NULL;
}

static const char *check_physical(const tlsf_ref_t *t, tlsf_ref_stats_t *st)
{
    const block_t *prev = NULL;
    for (const block_t *block = t->first;; prev = block, block = block_next(block)) {
        const char *why = check_block(t, prev, block);
        if (why != NULL)
            return why;
        if (block == t->sentinel)
            return NULL;
        const size_t size = block_size(block);
        st->blocks++;
        st->pool_bytes += size;
        if (block_is_free(block)) {
            st->free_blocks++;
            st->free_bytes += size;
            if (size > st->largest_free)
                st->largest_free = size;
        }
    }
}

/* Every list against its bitmap bit and its blocks against the list they
 * map to; counts the listed blocks into *listed. */
static const char *check_lists(const tlsf_ref_t *t, size_t limit, size_t *listed)
{
    *listed = 0;
    for (int fl = 0; fl < FL_INDEX_COUNT; fl++) {
        const bool fl_bit = (t->fl_bitmap >> fl) & 1u;
        if (fl_bit != (t->sl_bitmap[fl] != 0))
            return "first-level bitmap does not match the second-level one";
        for (int sl = 0; sl < SL_INDEX_COUNT; sl++) {
            const block_t *block = t->blocks[fl][sl], *back = &t->block_null;
            const bool sl_bit = (t->sl_bitmap[fl] >> sl) & 1u;
            if (sl_bit != (block != &t->block_null))
                return "second-level bitmap does not match its list";
            for (; block != &t->block_null; back = block, block = block->next_free) {
                if (++*listed > limit)
                    return "more listed blocks than free blocks (a list loops?)";
                if (!in_pool(t, block))
                    return "list entry outside the pool";
                if (!block_is_free(block))
                    return "block in a free list not marked free";
                if (block->prev_free != back)
                    return "free list back link broken";
                int f, s;
                mapping_insert(block_size(block), &f, &s);
                if (f != fl || s != sl)
                    return "free block in a list its size does not map to";
            }
        }
    }
    return NULL;
}

const char *tlsf_ref_check(const tlsf_ref_t *t, tlsf_ref_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->first_offset = (uintptr_t)t->first - t->mem;
    st->end_offset = (uintptr_t)t->sentinel + SENTINEL_SIZE - t->mem;
    const char *why = check_physical(t, st);
    if (why != NULL)
        return why;
    size_t listed;
    why = check_lists(t, st->free_blocks, &listed);
    if (why != NULL)
        return why;
    if (listed != st->free_blocks)
        return "fewer listed blocks than free blocks";
    /* Equal counts do not rule out one block listed twice and another not
     * at all, so look each free block up in its list. */
    for (const block_t *block = t->first; block != t->sentinel; block = block_next(block))
        if (block_is_free(block) && !in_its_list(t, block, listed))
            return "free block missing from the list its size maps to";
    return NULL;
}
