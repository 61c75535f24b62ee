/*
 * The block layer's private layout: blocks, regions, check values and the
 * interfaces between its files.
 *
 * A region:
 *
 *   base                                                        end
 *   | descriptor (48) | block | block | ... | block | end marker (16) |
 *
 * Every block starts with a 16-byte header:
 *
 *   word  = size | flags (| AVL balance factor + 1 in the top byte while free)
 *   link  = used: a check value mixing a magic, the address and the size, so
 *           a pointer into the middle of a block, a copy of a header or a
 *           random word does not pass for a block;
 *           free: the parent pointer in the free tree.
 *
 * A free block continues with its tree links (left, right, and the largest
 * block of each subtree in granules) and ends with a footer holding its size
 * (the lower half of the boundary tag). The next block's header has
 * KH_PREV_FREE while this one is free, so a freed block finds its lower
 * neighbour through the footer in O(1) and its upper one at block + size.
 *
 * When a header ends up inside a bigger free block (its block merged into
 * the one below, or the one below grew over it), its link becomes a "stale"
 * check value, so freeing that pointer again reads as a double free rather
 * than as a foreign pointer.
 *
 * The descriptor of a region is itself a node of a second tree (same code,
 * keyed by address): it is how a free finds the region of a pointer.
 *
 * Files, each calling only the ones above it in this list: tree.c (the AVL
 * tree), holes.c (free blocks in the tree), debug.c (fills and guards),
 * carve.c (placement), release.c (coalescing), region.c (regions), grow.c
 * (growth), trim.c (giving pages back), blocks.c (the layer's entry points),
 * check.c and walk.c (readers).
 */
#ifndef KHEAP_BLOCK_H
#define KHEAP_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/assert.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/kheap.h>

#include "blocks_api.h"

/* The layer's internal functions are private to its one translation unit
 * (blocks_unit.c includes every source file), so the compiler sees all
 * their callers and inlines the hot ones, as link-time optimisation would.
 * The test-only build (KHEAP_TESTING) makes them external so tests can
 * drive them. */
#if defined(KHEAP_UNITY) && !defined(KHEAP_TESTING)
#define KH_PRIVATE static __attribute__((unused))
/* On every allocation's or free's path: worth inlining. */
#define KH_HOT KH_PRIVATE inline
/* Growth and retries: kept out of line so the fast path stays small. */
#define KH_COLD KH_PRIVATE __attribute__((noinline, cold))
#else
#define KH_PRIVATE
#define KH_HOT
#define KH_COLD
#endif

#define KH_GRAN ((uintptr_t)KHEAP_GRANULE)
#define KH_HDR ((uintptr_t)16)
/* Header + tree links + footer of a free block. */
#define KH_MIN_BLOCK ((uintptr_t)48)
#define KH_REGION_DESC ((uintptr_t)48)
#define KH_END_MARK ((uintptr_t)16)

#define KH_USED ((uint64_t)1)
#define KH_PREV_FREE ((uint64_t)2)
/* A used block that belongs to the heap's own upper layers (a slab, a slab
 * table, a cache descriptor): kheap_free and kheap_block_free refuse it,
 * so a stale pointer that happens to name one cannot free it. */
#define KH_INNER ((uint64_t)4)
#define KH_FLAGS ((uint64_t)15)
#define KH_BAL_SHIFT 56
#define KH_SIZE_MASK ((((uint64_t)1 << 48) - 1) & ~KH_FLAGS)


#if HADRON_MM_HEAP_REDZONES
/* header | debug header (requested size, check) | front guard | user | back guard */
#define KH_USER_OFF (KH_HDR + 16 + KHEAP_REDZONE)
#define KH_BACK_GUARD ((uintptr_t)KHEAP_REDZONE)
#else
#define KH_USER_OFF KH_HDR
#define KH_BACK_GUARD ((uintptr_t)0)
#endif

/* Largest request: keeps every size computation far from overflow. */
#define KH_MAX_REQUEST ((size_t)KHEAP_REGION_MAX)

typedef struct kh_block {
    uint64_t word;
    uint64_t link;
    union { /* free blocks and region descriptors only */
        struct {
            struct kh_block *left, *right;
        };
        struct kh_block *child[2]; /* the same, indexed by side (0 left, 1 right) */
    };
    union {
        struct {
            uint32_t lmax, rmax; /* largest node size in each subtree, granules */
        };
        uint32_t max[2];         /* the same, indexed by side (0 left, 1 right) */
    };
} kh_block_t;

/* Region descriptor: a tree node (word = region size, USED) plus a magic. */
typedef struct kh_region {
    kh_block_t node;
    uint64_t magic;
} kh_region_t;

_Static_assert(sizeof(kh_block_t) == 40, "free-block layout");
_Static_assert(sizeof(kh_region_t) == KH_REGION_DESC, "region descriptor layout");
_Static_assert(KH_REGION_DESC + KH_END_MARK == KHEAP_REGION_OVERHEAD, "region overhead");
_Static_assert(KHEAP_REGION_MIN == KHEAP_REGION_OVERHEAD + KH_MIN_BLOCK, "region minimum");
_Static_assert((KHEAP_REGION_MAX / KHEAP_GRANULE) <= UINT32_MAX, "granule counts fit 32 bits");

/* ---- addresses --------------------------------------------------------- */

static inline kh_block_t *kh_at(uintptr_t addr)
{
    return (kh_block_t *)addr;
}

static inline uintptr_t kh_addr(const void *p)
{
    return (uintptr_t)p;
}

/* ---- header words ------------------------------------------------------ */

static inline uintptr_t kh_size(const kh_block_t *b)
{
    return (uintptr_t)(b->word & KH_SIZE_MASK);
}

static inline bool kh_used(const kh_block_t *b)
{
    return (b->word & KH_USED) != 0;
}

static inline bool kh_prev_free(const kh_block_t *b)
{
    return (b->word & KH_PREV_FREE) != 0;
}

static inline kh_block_t *kh_next(const kh_block_t *b)
{
    return kh_at(kh_addr(b) + kh_size(b));
}

static inline uint64_t *kh_footer_of_end(uintptr_t end)
{
    return (uint64_t *)(end - 8);
}

/* Mixes the address in so a header copied elsewhere does not validate. */
static inline uint64_t kh_mix(uintptr_t addr)
{
    uint64_t x = (uint64_t)addr * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

#define KH_MAGIC_USED 0xa110c8edb10c4a11ull
#define KH_MAGIC_STALE 0xf4eedb10c4dead00ull
#define KH_MAGIC_END 0xe2d0fe2e610e2d00ull
#define KH_MAGIC_REGION 0x4b48524547494f4eull /* "KHREGION" */

static inline uint64_t kh_used_check(uintptr_t addr, uintptr_t size)
{
    return KH_MAGIC_USED ^ kh_mix(addr) ^ ((uint64_t)size << 8);
}

static inline uint64_t kh_stale_check(uintptr_t addr)
{
    return KH_MAGIC_STALE ^ kh_mix(addr);
}

static inline uint64_t kh_end_check(uintptr_t addr)
{
    return KH_MAGIC_END ^ kh_mix(addr);
}

static inline uint64_t kh_region_magic(uintptr_t addr)
{
    return KH_MAGIC_REGION ^ kh_mix(addr);
}

/* Writes the header of a used block; keeps `flags` (KH_PREV_FREE). */
static inline void kh_set_used(kh_block_t *b, uintptr_t size, uint64_t prev_free)
{
    b->word = (uint64_t)size | KH_USED | prev_free;
    b->link = kh_used_check(kh_addr(b), size);
}

static inline bool kh_is_valid_used(const kh_block_t *b)
{
    return kh_used(b) && b->link == kh_used_check(kh_addr(b), kh_size(b));
}

static inline void kh_set_prev_free(kh_block_t *b, bool on)
{
    if (on)
        b->word |= KH_PREV_FREE;
    else
        b->word &= ~KH_PREV_FREE;
}

#define KH_BAL_MASK ((uint64_t)0xff << KH_BAL_SHIFT)

/* Size of a free-tree node, keeping its balance factor. */
static inline void kh_node_set_size(kh_block_t *b, uintptr_t size)
{
    b->word = (b->word & KH_BAL_MASK) | (uint64_t)size;
}

static inline void kh_set_footer(uintptr_t end, uintptr_t size)
{
    *kh_footer_of_end(end) = (uint64_t)size;
}

/* A header that now lies inside a free block. */
static inline void kh_make_stale(kh_block_t *b)
{
    b->link = kh_stale_check(kh_addr(b));
}

static inline uintptr_t kh_user_of(const kh_block_t *b)
{
    return kh_addr(b) + KH_USER_OFF;
}

static inline kh_block_t *kh_block_of_user(uintptr_t p)
{
    return kh_at(p - KH_USER_OFF);
}

static inline uintptr_t kh_align_up(uintptr_t x, uintptr_t a)
{
    return (x + a - 1) & ~(a - 1);
}

/* Block size for a request (caller bounds req by KH_MAX_REQUEST). */
static inline uintptr_t kh_block_size_for(size_t req)
{
    uintptr_t n = kh_align_up(KH_USER_OFF + (uintptr_t)req + KH_BACK_GUARD, KH_GRAN);
    return n < KH_MIN_BLOCK ? KH_MIN_BLOCK : n;
}

/* ---- locking ----------------------------------------------------------- */

static inline mm_irqflags_t kh_lock(kheap_t *heap)
{
    return mm_spin_lock_irqsave(&heap->lock);
}

static inline void kh_unlock(kheap_t *heap, mm_irqflags_t flags)
{
    mm_spin_unlock_irqrestore(&heap->lock, flags);
}

/* Corruption of the heap's own data: never returns. */
#define KH_CORRUPT(msg, addr, found, expected)                                                     \
    mm_panic_report(MM_REPORT_CORRUPT, msg, __FILE__, __LINE__, (uint64_t)(addr), 0,                \
                    (uint64_t)(found), (uint64_t)(expected))

/* Internal functions carry the kh_ prefix and are hidden from shared
 * objects (the malloc shim). */
#pragma GCC visibility push(hidden)

/* ---- tree.c: AVL tree keyed by node address, augmented with max size --- */

static inline uint32_t kt_gran(const kh_block_t *b)
{
    return (uint32_t)(kh_size(b) / KH_GRAN);
}

static inline uint32_t kt_smax(const kh_block_t *b)
{
    uint32_t m = kt_gran(b);
    if (b->lmax > m)
        m = b->lmax;
    if (b->rmax > m)
        m = b->rmax;
    return m;
}

static inline kh_block_t *kt_parent(const kh_block_t *b)
{
    return (kh_block_t *)(uintptr_t)b->link;
}

KH_PRIVATE void kh_tree_insert(kh_block_t **root, kh_block_t *node);
KH_PRIVATE void kh_tree_remove(kh_block_t **root, kh_block_t *node);
/* `repl` takes `old`'s place: only valid when no other node lies between
 * their addresses. repl's previous contents are not read (its word is left
 * with old's balance factor and no size); the caller then sets repl's size
 * (kh_node_set_size) and calls kh_tree_resized. */
KH_PRIVATE void kh_tree_replace(kh_block_t **root, kh_block_t *old, kh_block_t *repl);
/* Node's size changed: refresh the cached maxima above it (stops at the
 * first ancestor whose cache does not change). */
KH_PRIVATE void kh_tree_resized(kh_block_t *node);
/* Size of the largest node, granules (0 for an empty tree). O(1). */
KH_PRIVATE uint32_t kh_tree_max(kh_block_t *root);
/* Lowest-address node of at least `gran` granules, or NULL. */
KH_HOT kh_block_t *kh_tree_first_fit(kh_block_t *root, uint32_t gran);
/* Next node after `node` (in address order) of at least `gran` granules. */
KH_PRIVATE kh_block_t *kh_tree_next_fit(kh_block_t *node, uint32_t gran);
/* Highest-address node at or below addr, or NULL. */
KH_PRIVATE kh_block_t *kh_tree_floor(kh_block_t *root, uintptr_t addr);
KH_PRIVATE kh_block_t *kh_tree_first(kh_block_t *root);
KH_PRIVATE kh_block_t *kh_tree_succ(kh_block_t *node);
/* Verifies order, parent links, heights, balance and maxima. Returns NULL
 * when sound, else the first bad node (or the root); *count = nodes. */
KH_PRIVATE const kh_block_t *kh_tree_verify(const kh_block_t *root, size_t *count,
                                            const char **why);

/* ---- holes.c: free blocks (lock held) ----------------------------------- */

/* Free blocks only change through these. They keep the tree, the header,
 * the footer and free_blocks; the caller keeps KH_PREV_FREE of the block
 * above and free_bytes. */

/* A new free block [at, at + size). */
KH_HOT void kh_hole_add(kheap_t *heap, uintptr_t at, uintptr_t size);
/* Remove free block b (its memory is being taken or merged). */
KH_HOT void kh_hole_del(kheap_t *heap, kh_block_t *b);
/* Free block b now spans [at, at + size), with no other free block between
 * its old start and `at`; returns the block (at `at`). */
KH_HOT kh_block_t *kh_hole_set(kheap_t *heap, kh_block_t *b, uintptr_t at, uintptr_t size);

/* ---- debug.c: heap_redzones fills and guards ---------------------------- */

#if HADRON_MM_HEAP_REDZONES
typedef struct kh_dbg_hdr {
    uint64_t requested;
    uint64_t check;
} kh_dbg_hdr_t;

static inline kh_dbg_hdr_t *kh_dbg_of(const kh_block_t *b)
{
    return (kh_dbg_hdr_t *)(kh_addr(b) + KH_HDR);
}
static inline uint64_t kh_dbg_check(uintptr_t block, uint64_t requested)
{
    return 0x5ed20e5ba5eba11ull ^ kh_mix(block) ^ (requested * 0xff51afd7ed558ccdull);
}
/* Set up guards and fills for a fresh allocation of `req` bytes in b. */
KH_PRIVATE void kh_dbg_arm(kh_block_t *b, size_t req, size_t keep);
/* Verify guards of used block b; panics with MM_REPORT_REDZONE. */
KH_PRIVATE void kh_dbg_verify_guards(const kh_block_t *b);
/* Same, filling *report instead of panicking; false when damaged. */
KH_PRIVATE bool kh_dbg_guards_ok(const kh_block_t *b, mm_report_t *report);
/* Fill [from, to) with the free pattern. */
KH_PRIVATE void kh_dbg_poison(uintptr_t from, uintptr_t to);
/* Verify the free pattern over [from, to) (8-byte aligned, inside the free
 * block at `block`), accepting stale header links; panics with
 * MM_REPORT_POISON: address = block, offset = first bad byte - block. */
KH_PRIVATE void kh_dbg_verify_poison(uintptr_t from, uintptr_t to, uintptr_t block);
KH_PRIVATE bool kh_dbg_poison_ok(uintptr_t from, uintptr_t to, uintptr_t block,
                                 mm_report_t *report);
/* Free-block metadata that must be re-poisoned when it becomes interior. */
KH_PRIVATE void kh_dbg_bury_header(kh_block_t *b);
KH_PRIVATE void kh_dbg_bury_footer(uintptr_t end);
#endif

static inline size_t kh_usable(const kh_block_t *b)
{
#if HADRON_MM_HEAP_REDZONES
    return (size_t)kh_dbg_of(b)->requested;
#else
    return (size_t)(kh_size(b) - KH_USER_OFF);
#endif
}

/* ---- carve.c: placement (lock held) ------------------------------------- */

/* First fit: carve a used block of n bytes (header written) whose user
 * pointer is aligned for `align` at the lowest address where it fits (the
 * rule for aligned requests is in kheap.h); NULL when nothing fits. */
KH_HOT kh_block_t *kh_carve_locked(kheap_t *heap, uintptr_t n, uintptr_t align);
/* kh_carve_locked plus the debug arming: the user pointer, or NULL. */
KH_HOT void *kh_alloc_locked(kheap_t *heap, size_t req, uintptr_t n, uintptr_t align);

/* ---- release.c: freeing and coalescing (lock held) ---------------------- */

/* Classify ptr: MM_OK with the used block in *out, or MM_ERR_DOUBLE_FREE /
 * MM_ERR_BAD_POINTER (also for a KH_INNER block unless `inner`). */
KH_HOT mm_status_t kh_lookup(kheap_t *heap, uintptr_t ptr, bool inner, kh_block_t **out);
/* Turn used block b (valid) into free memory, merging with its neighbours;
 * returns the free block that holds it now. */
KH_HOT kh_block_t *kh_release(kheap_t *heap, kh_block_t *b);
/* Report a rejected pointer (lock not held). */
KH_PRIVATE void kh_warn_pointer(mm_status_t st, uintptr_t ptr, const char *file, int line);

/* ---- resize.c --------------------------------------------------------- */

/* Resize used block b to n bytes where it stands; false when the next
 * block is not free or not big enough. Shrinking always succeeds. */
KH_PRIVATE bool kh_resize_in_place(kheap_t *heap, kh_block_t *b, uintptr_t n);

/* ---- region.c: regions (lock held) -------------------------------------- */

/* Region containing addr, or NULL. */
KH_HOT kh_region_t *kh_region_find(kheap_t *heap, uintptr_t addr);
static inline uintptr_t kh_region_end(const kh_region_t *r)
{
    return kh_addr(r) + kh_size(&r->node);
}
static inline kh_block_t *kh_region_first(const kh_region_t *r)
{
    return kh_at(kh_addr(r) + KH_REGION_DESC);
}
KH_PRIVATE mm_status_t kh_region_validate(uintptr_t base, size_t size, uintptr_t *b_out,
                                          uintptr_t *s_out);
/* Add [b, b + size) (validated) as a region, merged with a region ending at
 * b; MM_ERR_OVERLAP when it overlaps one. */
KH_PRIVATE mm_status_t kh_region_add_locked(kheap_t *heap, uintptr_t b, size_t size);
/* Cut [lo, hi) (page-aligned, inside free block f of region r, clear of
 * f's header and footer as kh_trim_span chooses) out of the heap: r ends
 * below it and a new region starts at hi, or r goes entirely when [lo, hi)
 * is all of it. */
KH_PRIVATE void kh_region_cut_locked(kheap_t *heap, kh_region_t *r, kh_block_t *f, uintptr_t lo,
                                     uintptr_t hi);

/* ---- grow.c: growth ----------------------------------------------------- */

/* Allocation after a miss: grows (lock dropped around the callback), waits
 * for another context's growth, or fails. Called without the lock. */
KH_COLD void *kh_alloc_slow(kheap_t *heap, size_t req, uintptr_t n, uintptr_t align);

/* ---- trim.c: giving pages back ------------------------------------------ */

/* The page span free block f could give back as its own region cut:
 * [*lo, *hi), false when it is under `min` bytes. */
KH_PRIVATE bool kh_trim_span(kheap_t *heap, const kh_block_t *f, uintptr_t min, uintptr_t *lo,
                             uintptr_t *hi);
/* After a free left free block f: give its pages back when they reach the
 * heap's threshold. Lock held on entry (flags *f), dropped around the
 * release callback. */
KH_PRIVATE void kh_trim_after_free(kheap_t *heap, kh_block_t *f, mm_irqflags_t *flags);

/* ---- blocks.c: the layer's entry points; blocks_api.h has the ones the
 * layers above use. */

#pragma GCC visibility pop

#endif /* KHEAP_BLOCK_H */
