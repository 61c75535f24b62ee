/*
 * kheap private layout: blocks, regions, checks, internal interfaces.
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
 * (the lower half of the boundary tag). Once the heap has a node pool
 * (nodes.c) the links usually live out of line instead: the header word
 * then carries KH_POOLED and the link word points at the node. The next block's header has
 * KH_PREV_FREE while this one is free, so a freed block finds its lower
 * neighbour through the footer in O(1) and its upper one at block + size.
 *
 * When a header ends up inside a bigger free block (its block merged into
 * the one below, or the one below grew over it), its link becomes a "stale"
 * check value, so freeing that pointer again reads as a double free rather
 * than as a foreign pointer.
 *
 * The descriptor of a region is itself a node of a second tree (same code,
 * keyed by address): it is how kheap_free finds the region of a pointer.
 *
 * A used block with KH_RUN holds a run of equal slots (run.c); its own
 * address is never a valid argument to kheap_free.
 */
#ifndef KHEAP_BLOCK_H
#define KHEAP_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/assert.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/kheap.h>

/* The heap's internal functions are private to its one translation unit
 * (kheap.c includes every source file), so the compiler sees all their
 * callers and inlines the hot ones, as link-time optimisation would. A test
 * that includes this header for its layouts sees plain declarations. The
 * tree functions stay external: test_tree.c drives them directly. Some
 * builds leave some of them unused (no runs with heap_redzones, no caches
 * with kheap_cpu_caches = 0), hence `unused`. */
#ifdef KHEAP_UNITY
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
/* What a used block holds (the two bits together): */
#define KH_RUN ((uint64_t)4)         /* a run of small-request slots */
#define KH_MAP ((uint64_t)8)         /* a leaf of the small-run map */
#define KH_NODES (KH_RUN | KH_MAP)   /* a chunk of free-tree nodes (nodes.c) */
#define KH_KIND (KH_RUN | KH_MAP)
/* A free block whose tree node is out of line, in a node chunk: its header
 * link points at the node (and the node's word carries the flag too). */
#define KH_POOLED ((uint64_t)4)
#define KH_FLAGS ((uint64_t)15)
#define KH_BAL_SHIFT 56
#define KH_SIZE_MASK ((((uint64_t)1 << 48) - 1) & ~KH_FLAGS)

#define KH_HEAP_MAGIC 0x6b686561u /* "khea" */

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

static inline uint64_t kh_kind(const kh_block_t *b)
{
    return b->word & KH_KIND;
}

static inline bool kh_is_run(const kh_block_t *b)
{
    return kh_kind(b) == KH_RUN;
}

static inline void kh_set_prev_free(kh_block_t *b, bool on)
{
    if (on)
        b->word |= KH_PREV_FREE;
    else
        b->word &= ~KH_PREV_FREE;
}

#define KH_BAL_MASK ((uint64_t)0xff << KH_BAL_SHIFT)

/* Size of a free-tree node, keeping its balance factor and pool flag. */
static inline void kh_node_set_size(kh_block_t *b, uintptr_t size)
{
    b->word = (b->word & (KH_BAL_MASK | KH_POOLED)) | (uint64_t)size;
}

static inline void kh_set_footer(uintptr_t end, uintptr_t size)
{
    *kh_footer_of_end(end) = (uint64_t)size;
}

/*
 * A free block's tree node is either the block itself (its first 40 bytes,
 * the header word doubling as the node's size word) or, once the heap has a
 * node pool, an out-of-line kh_pnode_t in a node chunk (nodes.c). Pooled
 * nodes sit densely together, so a tree search touches a few cache lines
 * and pages instead of one cold block per level.
 */
typedef struct kh_pnode {
    kh_block_t n;
    uintptr_t at; /* the free block's address, the node's key */
} kh_pnode_t;

_Static_assert(sizeof(kh_pnode_t) == 48, "pool node layout");

static inline bool kh_pooled(const kh_block_t *node)
{
    return (node->word & KH_POOLED) != 0;
}

/* A tree node's key: the address of its block (a region descriptor, or a
 * free block). */
static inline uintptr_t kt_key(const kh_block_t *node)
{
    return kh_pooled(node) ? ((const kh_pnode_t *)node)->at : kh_addr(node);
}

/* The tree node of free block b (header read). */
static inline kh_block_t *kh_free_node(kh_block_t *b)
{
    return kh_pooled(b) ? (kh_block_t *)(uintptr_t)b->link : b;
}

/* Where the metadata of the free block of `node` ends: a header (pooled) or
 * a whole node. */
static inline uintptr_t kh_free_meta_end(const kh_block_t *node)
{
    return kt_key(node) + (kh_pooled(node) ? KH_HDR : (uintptr_t)sizeof(kh_block_t));
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

static inline bool kh_ready(const kheap_t *heap)
{
    /* A copy of a live heap would share its blocks but not its lock or
     * counts: it is refused like an uninitialised one. */
    return heap != NULL && heap->magic == KH_HEAP_MAGIC && heap->instance == heap;
}

/* Corruption of the heap's own data: never returns. */
#define KH_CORRUPT(msg, addr, found, expected)                                                     \
    mm_panic_report(MM_REPORT_CORRUPT, msg, __FILE__, __LINE__, (uint64_t)(addr), 0,                \
                    (uint64_t)(found), (uint64_t)(expected))

/*
 * Everything below is internal: external only because it spans files. The
 * names carry the kheap_ prefix so they cannot collide with a kernel's, and
 * are hidden from shared objects (the malloc shim).
 */
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

void kheap_tree_insert(kh_block_t **root, kh_block_t *node);
void kheap_tree_remove(kh_block_t **root, kh_block_t *node);
/* `repl` takes `old`'s place: only valid when no other node lies between
 * their addresses. repl's previous contents are not read (its word is left
 * with old's balance factor and no size); the caller then sets repl's size
 * (kh_node_set_size) and calls kheap_tree_resized. */
void kheap_tree_replace(kh_block_t **root, kh_block_t *old, kh_block_t *repl);
/* Node's size changed: refresh the cached maxima above it (stops at the
 * first ancestor whose cache does not change). */
void kheap_tree_resized(kh_block_t *node);
/* Size of the largest node, granules (0 for an empty tree). O(1). */
uint32_t kheap_tree_max(kh_block_t *root);
/* Lowest-address node of at least `gran` granules, or NULL. */
kh_block_t *kheap_tree_first_fit(kh_block_t *root, uint32_t gran);
/* Next node after `node` (in address order) of at least `gran` granules. */
kh_block_t *kheap_tree_next_fit(kh_block_t *node, uint32_t gran);
/* Highest-address node at or below addr, or NULL. */
kh_block_t *kheap_tree_floor(kh_block_t *root, uintptr_t addr);
kh_block_t *kheap_tree_first(kh_block_t *root);
kh_block_t *kheap_tree_succ(kh_block_t *node);
/* Verifies order, parent links, heights, balance and maxima. Returns NULL
 * when sound, else the first bad node (or the root); *count = nodes. */
const kh_block_t *kheap_tree_verify(const kh_block_t *root, size_t *count, const char **why);

/* ---- nodes.c: free blocks and the node pool ---------------------------- */

/* Free blocks only change through these (lock held). They keep the tree,
 * the header (size, and the node link when pooled), the footer and
 * free_blocks; the caller keeps KH_PREV_FREE of the block above and
 * free_bytes. */

/* A new free block [at, at + size): a pooled node if one is spare, else
 * its own. */
KH_PRIVATE void kheap_free_add(kheap_t *heap, uintptr_t at, uintptr_t size);
/* Remove the free block of `node` (its memory is being taken or merged). */
KH_PRIVATE void kheap_free_del(kheap_t *heap, kh_block_t *node);
/* The free block of `node` now spans [at, at + size), with no other free
 * block between its old start and `at`. Moves the node into the pool when
 * one is spare (else into the block at its new start); returns the node. */
KH_PRIVATE kh_block_t *kheap_free_set(kheap_t *heap, kh_block_t *node, uintptr_t at,
                                      uintptr_t size);
/* Before an allocation: a new node chunk when the pool has run dry and the
 * tree is big enough to gain from one. Failure only means no chunk. */
KH_PRIVATE void kheap_nodes_refill(kheap_t *heap);
/* Every node back into its block and every chunk freed, when nothing but
 * chunks is in use (or `force`): a heap that holds nothing is one free
 * block per region. Returns whether it did. */
KH_PRIVATE bool kheap_nodes_collapse(kheap_t *heap, bool force);
/* Whether `base` (a used block's user pointer) is a listed, sound chunk. */
KH_PRIVATE bool kheap_nodes_listed(const kheap_t *heap, uintptr_t base);
/* Whether ptr is a node slot inside one of the heap's chunks. */
KH_PRIVATE bool kheap_nodes_owns(const kheap_t *heap, uintptr_t ptr);
/* Chunks sound and counted (chunk_blocks found by the region walk), the
 * spare list well formed, pooled + spare == all nodes. */
KH_PRIVATE bool kheap_nodes_verify(const kheap_t *heap, size_t chunk_blocks, size_t pooled,
                                   const char **why, uintptr_t *where);

/* ---- grow.c ------------------------------------------------------------ */

/* Region containing addr, or NULL. Lock held. */
KH_HOT kh_region_t *kheap_region_find(kheap_t *heap, uintptr_t addr);
static inline uintptr_t kh_region_end(const kh_region_t *r)
{
    return kh_addr(r) + kh_size(&r->node);
}
static inline kh_block_t *kh_region_first(const kh_region_t *r)
{
    return kh_at(kh_addr(r) + KH_REGION_DESC);
}
KH_PRIVATE mm_status_t kheap_add_region_locked(kheap_t *heap, uintptr_t base, size_t size);
KH_PRIVATE mm_status_t kheap_validate_region(uintptr_t base, size_t size, uintptr_t *b_out,
                                             uintptr_t *s_out);
/* Allocation after a miss: grows (lock dropped around the callback), waits
 * for another context's growth, or fails. Called without the lock. */
KH_COLD void *kheap_alloc_slow(kheap_t *heap, size_t req, uintptr_t n, uintptr_t align);

/* ---- alloc.c ----------------------------------------------------------- */

/* First fit and carve a used block of n bytes (header written) whose user
 * pointer is aligned for `align` (the placement rule for alignment is in
 * kheap.h); NULL when nothing fits. Lock held. */
KH_PRIVATE kh_block_t *kheap_carve_locked(kheap_t *heap, uintptr_t n, uintptr_t align);
/* The same for a run: the smallest of the first KHEAP_RUN_FIT_CANDIDATES
 * blocks in address order where it fits (the lowest of equals). */
KH_PRIVATE kh_block_t *kheap_carve_run_locked(kheap_t *heap, uintptr_t n, uintptr_t align);
/* Allocate `req` bytes under the lock (a run slot when runs serve it);
 * NULL when nothing fits. Counts nothing as a failure. */
KH_HOT void *kheap_alloc_locked(kheap_t *heap, size_t req, uintptr_t n, uintptr_t align);

/* ---- run.c: runs for small and medium requests -------------------------- */

/*
 * A run's header, at its block's user pointer. Small runs (classes below
 * KH_SMALL_CLASSES) are one page, page-aligned, with slots packed after the
 * header; a slot pointer finds its run by rounding down. Medium runs are
 * blocks of any (granule) alignment whose slots each carry a 16-byte slot
 * header naming the run.
 */
typedef struct kh_run {
    uint64_t magic;     /* KH_MAGIC_RUN ^ mix(address); 0 once released */
    uint16_t slot;      /* usable bytes of a slot */
    uint16_t stride;    /* distance between slots (medium: slot + its header) */
    uint16_t nslots;
    uint16_t nused;
    uint8_t cls;
    uint8_t medium;
    uint16_t hint;      /* first bitmap word that may have a free slot */
    uint32_t recip;     /* 2^32 / stride, rounded up: slot index without a divide */
    struct kh_run *prev, *next; /* the class's list of runs with a free slot */
    uint64_t used[4];   /* slot bitmap; bits past nslots stay set */
} kh_run_t;

/* The header in front of each medium slot. */
typedef struct kh_slot_hdr {
    uint64_t run;
    uint64_t check;
} kh_slot_hdr_t;

#define KH_RUN_HDR ((uintptr_t)80)
#define KH_RUN_AREA ((uintptr_t)KHEAP_RUN_SIZE - KH_HDR) /* user bytes of a small run */
#define KH_SMALL_CLASSES (KHEAP_SMALL_MAX / KHEAP_GRANULE)
#define KH_MAGIC_RUN 0x72756e736c6f7473ull  /* "runslots" */
#define KH_MAGIC_SLOT 0x6d6564736c6f7421ull /* "medslot!" */

_Static_assert(sizeof(kh_run_t) <= KH_RUN_HDR, "run header");
_Static_assert((KH_RUN_AREA - KH_RUN_HDR) / KH_GRAN <= 256, "run bitmap");
_Static_assert(KHEAP_RUN_CLASSES <= 255, "run class fits a byte");

static inline uint64_t kh_run_magic(uintptr_t base)
{
    return KH_MAGIC_RUN ^ kh_mix(base);
}

static inline uint64_t kh_slot_check(uintptr_t hdr, uint64_t run)
{
    return KH_MAGIC_SLOT ^ kh_mix(hdr) ^ run;
}

/* Class of a request of 1 ... KHEAP_RUN_MAX bytes (0 counts as 1). */
static inline unsigned kheap_class_of(size_t req)
{
    if (req <= KHEAP_SMALL_MAX)
        return req == 0 ? 0 : (unsigned)((req - 1) / KH_GRAN);
    unsigned bits = 64u - (unsigned)__builtin_clzll((unsigned long long)(req - 1)); /* 9..12 */
    unsigned step_shift = bits - 4u;
    unsigned units = (unsigned)((req + (1u << step_shift) - 1) >> step_shift); /* 9..16 */
    return KH_SMALL_CLASSES + (bits - 9u) * 8u + (units - 9u);
}

/* Usable bytes of a slot of class cls. */
KH_PRIVATE unsigned kheap_class_slot(unsigned cls);

/* A slot for `req` (<= KHEAP_RUN_MAX) bytes, its usable size in *usable;
 * NULL when the class has no run with a free slot and no new run fits.
 * Lock held. */
KH_HOT void *kheap_run_alloc(kheap_t *heap, size_t req, size_t *usable);
/* The lowest free slot of `run` (on its class's list, so it has one),
 * taken. O(1). Lock held. */
KH_HOT void *kheap_run_take(kheap_t *heap, kh_run_t *run);
/* The slot of the small run at `page` (marked in the run map) that ptr
 * names: MM_OK with run and slot index, MM_ERR_DOUBLE_FREE (slot free),
 * MM_ERR_BAD_POINTER (not a slot start). Lock held. */
KH_HOT mm_status_t kheap_run_small_slot(uintptr_t page, uintptr_t ptr, kh_run_t **run,
                                        unsigned *slot);
/* The medium slot at ptr, found through the slot header below it: as
 * above, or MM_ERR_NOT_MAPPED (no slot header there). Lock held. */
KH_HOT mm_status_t kheap_run_medium_lookup(uintptr_t ptr, kh_run_t **run, unsigned *slot);
KH_HOT void kheap_run_free(kheap_t *heap, kh_run_t *run, unsigned slot);
/* Verify one run (header, bitmap, slot headers, fit in its block of
 * block_size bytes at user pointer base); false with *why. List membership
 * is checked by kheap_check. */
KH_PRIVATE bool kheap_run_verify(uintptr_t base, uintptr_t block_size, const char **why);

/* ---- runmap.c: which pages are live small runs ------------------------- */

#define KH_MAP_SPAN_SHIFT 23 /* a leaf covers 8 MiB of address space */
#define KH_MAP_SPAN ((uintptr_t)1 << KH_MAP_SPAN_SHIFT)
#define KH_MAP_WORDS (KH_MAP_SPAN / KHEAP_RUN_SIZE / 64)
#define KH_MAP_BUCKET_BITS 6
#define KH_MAP_BUCKETS (1u << KH_MAP_BUCKET_BITS)
#define KH_MAGIC_MAP 0x72756e6d61706c66ull /* "runmaplf" */

typedef struct kh_map_leaf {
    uintptr_t span;            /* KH_MAP_SPAN-aligned base */
    struct kh_map_leaf *next;  /* bucket chain */
    uint64_t check;            /* KH_MAGIC_MAP ^ mix(address) ^ span */
    uint64_t count;            /* bits set */
    uint64_t bits[KH_MAP_WORDS]; /* bit i: page span + i * KHEAP_RUN_SIZE is a small run */
} kh_map_leaf_t;

_Static_assert(KH_MAP_BUCKETS == KHEAP_MAP_BUCKETS, "run map buckets");
_Static_assert(KHEAP_RUN_SIZE * 64 * KH_MAP_WORDS == KH_MAP_SPAN, "run map leaf geometry");

static inline uint64_t kh_map_check(uintptr_t leaf, uintptr_t span)
{
    return KH_MAGIC_MAP ^ kh_mix(leaf) ^ (uint64_t)span;
}

/* Whether page-aligned `page` is a live small run. Reads only the map. Lock
 * held. O(leaves / KH_MAP_BUCKETS). */
KH_HOT bool kheap_map_test(kheap_t *heap, uintptr_t page);
/* Record a new small run at `page`; allocates the span's leaf when it is the
 * first. False (nothing changed) when no leaf can be allocated. Lock held. */
KH_PRIVATE bool kheap_map_mark(kheap_t *heap, uintptr_t page);
/* Forget the small run at `page` (marked); releases an emptied leaf. */
KH_PRIVATE void kheap_map_clear(kheap_t *heap, uintptr_t page);
/* Leaves sound, in their buckets, counted; exactly small_runs pages marked. */
KH_PRIVATE bool kheap_map_verify(const kheap_t *heap, size_t small_runs, const char **why);

/* ---- cache.c: per-CPU caches of freed run slots ---------------------- */

#define KH_CACHES HADRON_MM_KHEAP_CPU_CACHES
#define KH_MAGIC_CACHED 0x6361636865646f6bull /* "cachedok" */

#if KH_CACHES > 0
/* A cached slot's two words: the next slot of its list masked with a key
 * (heap and address mixed, so neither a copy from another slot nor a stale
 * one from another heap passes), and the key mixed with that link, so a
 * write to either word is seen. */
static inline uint64_t kh_cached_key(const kheap_t *heap, uintptr_t slot)
{
    return KH_MAGIC_CACHED ^ kh_mix(slot) ^ (uint64_t)(uintptr_t)heap;
}

static inline void kh_cached_write(const kheap_t *heap, uintptr_t slot, uintptr_t next)
{
    uint64_t key = kh_cached_key(heap, slot), *w = (uint64_t *)slot;
    w[0] = (uint64_t)next ^ key;
    w[1] = key ^ kh_mix(next);
}

/* Whether slot's words read as a cached slot's; if so *next is its link. */
static inline bool kh_cached_read(const kheap_t *heap, uintptr_t slot, uintptr_t *next)
{
    const uint64_t *w = (const uint64_t *)slot;
    uint64_t key = kh_cached_key(heap, slot);
    *next = (uintptr_t)(w[0] ^ key);
    return w[1] == (key ^ kh_mix(*next)) && (*next & (KH_GRAN - 1)) == 0;
}

/* Whether run slot `slot` (in use in its run's bitmap) sits in a cache. */
static inline bool kh_slot_cached(const kheap_t *heap, uintptr_t slot)
{
    uintptr_t next;
    return __atomic_load_n(&heap->cache_seen, __ATOMIC_RELAXED) &&
           kh_cached_read(heap, slot, &next);
}

/* A cached slot for `req` (<= KHEAP_RUN_MAX) bytes from the calling CPU's
 * cache, or NULL. Takes no lock (interrupts disabled inside). */
KH_PRIVATE void *kheap_cache_pop(kheap_t *heap, size_t req);
/* Put run slot `slot` (looked up, in use) in the calling CPU's cache, caches
 * being on, if its class has room; false when it did not. Lock held. */
KH_PRIVATE bool kheap_cache_push(kheap_t *heap, const kh_run_t *run, uintptr_t slot);
/* The same for any heap: the common "caches are off" answer given inline,
 * so a free with caches off calls nothing. */
static inline bool kh_cache_push(kheap_t *heap, const kh_run_t *run, uintptr_t slot)
{
    return heap->cpu_caches && kheap_cache_push(heap, run, slot);
}
/* Give the calling CPU's cached slots back to their runs; how many. Lock
 * held. */
KH_PRIVATE size_t kheap_cache_flush_locked(kheap_t *heap);
/* The calling CPU's cache is sound (links, check values, counts, each a
 * slot in use of its class); false with *why and *where. Lock held. */
KH_PRIVATE bool kheap_cache_verify(kheap_t *heap, const char **why, uintptr_t *where);
#else
/* Built without caches: nothing is ever cached. */
static inline bool kh_slot_cached(const kheap_t *heap, uintptr_t slot)
{
    (void)heap;
    (void)slot;
    return false;
}
static inline void *kheap_cache_pop(kheap_t *heap, size_t req)
{
    (void)heap;
    (void)req;
    return NULL;
}
static inline bool kh_cache_push(kheap_t *heap, const struct kh_run *run, uintptr_t slot)
{
    (void)heap;
    (void)run;
    (void)slot;
    return false;
}
static inline size_t kheap_cache_flush_locked(kheap_t *heap)
{
    (void)heap;
    return 0;
}
static inline bool kheap_cache_verify(kheap_t *heap, const char **why, uintptr_t *where)
{
    (void)heap;
    (void)why;
    (void)where;
    return true;
}
#endif

/* ---- free.c ------------------------------------------------------------ */

/* What a pointer refers to: a used block, or a slot of a run. */
typedef struct kh_ref {
    kh_block_t *block;
    kh_run_t *run;
    unsigned slot;
} kh_ref_t;


/* Classify ptr under the lock: MM_OK with *out filled, or
 * MM_ERR_DOUBLE_FREE / MM_ERR_BAD_POINTER. A slot in a CPU cache counts as
 * in use here (kheap_lookup_live calls it freed). */
KH_HOT mm_status_t kheap_lookup(kheap_t *heap, uintptr_t ptr, kh_ref_t *out);
/* The same for a pointer a caller hands in: a cached slot is freed. */
KH_HOT mm_status_t kheap_lookup_live(kheap_t *heap, uintptr_t ptr, kh_ref_t *out);
/* Turn used block b (valid) into free memory, merging. Lock held. */
KH_PRIVATE void kheap_release(kheap_t *heap, kh_block_t *b);
/* Report a rejected pointer (lock not held). */
KH_PRIVATE void kheap_warn_pointer(mm_status_t st, uintptr_t ptr, const char *file, int line);

/* ---- debug.c ----------------------------------------------------------- */

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
KH_PRIVATE void kheap_dbg_arm(kh_block_t *b, size_t req, size_t keep);
/* Verify guards of used block b; panics with MM_REPORT_REDZONE. */
KH_PRIVATE void kheap_dbg_verify_guards(const kh_block_t *b);
/* Same, filling *report instead of panicking; false when damaged. */
KH_PRIVATE bool kheap_dbg_guards_ok(const kh_block_t *b, mm_report_t *report);
/* Fill [from, to) with the free pattern. */
KH_PRIVATE void kheap_dbg_poison(uintptr_t from, uintptr_t to);
/* Verify the free pattern over [from, to) (8-byte aligned, inside the free
 * block at `block`), accepting stale header links; panics with
 * MM_REPORT_POISON: address = block, offset = first bad byte - block. */
KH_PRIVATE void kheap_dbg_verify_poison(uintptr_t from, uintptr_t to, uintptr_t block);
KH_PRIVATE bool kheap_dbg_poison_ok(uintptr_t from, uintptr_t to, uintptr_t block,
                                    mm_report_t *report);
/* Free-block metadata that must be re-poisoned when it becomes interior. */
KH_PRIVATE void kheap_dbg_bury_header(kh_block_t *b);
KH_PRIVATE void kheap_dbg_bury_footer(uintptr_t end);
#endif

static inline size_t kh_usable(const kh_block_t *b)
{
#if HADRON_MM_HEAP_REDZONES
    return (size_t)kh_dbg_of(b)->requested;
#else
    return (size_t)(kh_size(b) - KH_USER_OFF);
#endif
}

static inline size_t kh_ref_usable(const kh_ref_t *r)
{
    return r->run != NULL ? (size_t)r->run->slot : kh_usable(r->block);
}

#if HADRON_MM_ALLOC_TRACKING
KH_PRIVATE void kheap_track_alloc(kheap_t *heap, size_t req, size_t usable);
KH_PRIVATE void kheap_track_free(kheap_t *heap, size_t usable);
KH_PRIVATE void kheap_track_resize(kheap_t *heap, size_t old_usable, size_t new_usable);
#define KH_TRACK_FAIL(heap) ((heap)->failures++)
#else
#define kheap_track_alloc(heap, req, usable) ((void)(heap), (void)(req), (void)(usable))
#define kheap_track_free(heap, usable) ((void)(heap), (void)(usable))
#define kheap_track_resize(heap, o, n) ((void)(heap), (void)(o), (void)(n))
#define KH_TRACK_FAIL(heap) ((void)(heap))
#endif

#pragma GCC visibility pop

#endif /* KHEAP_BLOCK_H */
