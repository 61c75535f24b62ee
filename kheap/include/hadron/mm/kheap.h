/*
 * hadron-mm kheap: the kernel heap and the kmalloc family.
 *
 * Policy: address-ordered first fit. An allocation gets the lowest-address
 * free block in which it fits (with its alignment); a freed block merges with
 * both free neighbours at once. The policy is the seed's; the structure is
 * not: free blocks live in a balanced search tree keyed by address in which
 * every node also knows the largest block below it, so the lowest fitting
 * block is found by one descent, O(log n) in the number of free blocks, and
 * boundary tags find both neighbours of a freed block in O(1). Once there
 * are many free blocks the tree's nodes move out of the blocks into dense
 * chunks of the heap (kheap_set_node_pool), so a descent stays in cache.
 *
 * Nothing is lost: sizes are rounded to KHEAP_GRANULE, a remainder too small
 * to be a block stays with the allocation it came from, and alignment padding
 * is always either zero or a whole free block. Freeing everything leaves each
 * region as exactly one free block.
 *
 * The one exception, on by default and switchable per instance
 * (kheap_set_small_runs): requests of up to KHEAP_RUN_MAX bytes with no more
 * than granule alignment are served from "runs", blocks of the heap split
 * into equal slots of one size class: every 16 bytes up to KHEAP_SMALL_MAX
 * (one-page runs, slots without a header), then eight classes per power of
 * two (slots with a 16-byte header; rounding loses at most 1/8). This
 * changes placement for those requests (the lowest free slot of the most
 * recently used run of their class, instead of the lowest-address free
 * block) and their coalescing (slots are not merged; a run goes back to the
 * heap, merging like any block, the moment its last slot is freed). What
 * does not change: nothing is lost (freeing everything still leaves each
 * region one free block), and every double free and foreign pointer is
 * still detected (exactly: a bitmap records each slot). A new run goes to
 * the snuggest of the first KHEAP_RUN_FIT_CANDIDATES free blocks (in address
 * order) that hold it, the lowest of equals: runs are the heap's own
 * fixed-size blocks, and taking them from the lowest big hole would cut up
 * the holes large requests need (on kheap-bench's trace this lowers the
 * footprint by about 1%). It makes those requests O(1) and takes them out of
 * the first-fit tree, which then holds only large blocks and runs. The
 * heap_redzones build has no runs, so every block carries guards.
 *
 * Per-CPU caches (option kheap_cpu_caches CPUs, off per instance until
 * kheap_set_cpu_caches turns them on): a freed run
 * slot goes to a short LIFO list of its class on the freeing CPU, and an
 * allocation of that class on that CPU takes it back without the heap lock,
 * with interrupts disabled. The slot stays "in use" in its run's bitmap
 * while cached; its first two words hold the list link and a check value
 * keyed to its address, which is how a second free of a cached slot is
 * still reported as a double free (the one cost: a live slot whose second
 * word the caller set to exactly that value would be refused). A cache
 * holds at most KHEAP_CACHE_DEPTH slots and KHEAP_CACHE_CLASS_BYTES bytes
 * per class, and never the last slot in use of a run (the run goes back to
 * the heap instead), so it keeps little memory from others. While caches are on,
 * "freeing everything leaves each region one free block" holds once each
 * CPU has flushed its cache (kheap_flush_cpu_cache); an allocation that
 * finds no memory flushes its own CPU's cache before growing.
 *
 * Memory comes from regions the caller adds (kheap_init, kheap_add_region)
 * and from an optional growth callback. Each region keeps a small descriptor
 * at its start and an end marker; a region that starts where another ends
 * merges with it. When nothing fits, the callback is asked, without the
 * lock, for enough to hold the request in a region of its own: the size,
 * the worst alignment padding and the region overhead, page-rounded and at
 * least KHEAP_GROW_MIN. One context grows at a time; see kheap_self_fn for
 * what the others (and a callback that allocates) do meanwhile.
 *
 * Locking: every entry point that touches a heap takes the instance's
 * spinlock with interrupts disabled, and never calls out (hooks, the growth
 * callback, the walker's callback) while holding it. Exceptions are stated
 * per function.
 *
 * Bad input is detected in every build: a double free, a pointer that is
 * not from this heap or points into the middle of a block is reported
 * through mm_hook_warn (kind MM_REPORT_DOUBLE_FREE or MM_REPORT_BAD_POINTER,
 * address = the pointer) and leaves the heap unchanged. Damage to the heap's
 * own data goes to mm_hook_panic.
 *
 * Debug options (see <hadron/mm/config.h>):
 *  - heap_redzones: each block carries a header with the requested size and
 *    a magic value, KHEAP_REDZONE bytes of 0xFD before and at least that
 *    many after the user bytes; they are checked on free, realloc and by
 *    kheap_check (MM_REPORT_REDZONE: address = user pointer, offset = the
 *    bad byte's distance from it as a two's-complement int64, message says
 *    before or after). The same option turns on fill patterns: 0xCD in new
 *    allocations, 0xDD in freed memory, and when freed memory is handed out
 *    again it is first verified to still hold 0xDD (MM_REPORT_POISON:
 *    address + offset = the first byte written after free).
 *  - alloc_tracking: live/peak bytes and counts, allocation/free/failure
 *    counters and a size-class histogram in kheap_stats_t.
 */
#ifndef HADRON_MM_KHEAP_H
#define HADRON_MM_KHEAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/config.h>
#include <hadron/mm/spinlock.h>
#include <hadron/mm/status.h>

/* Every block size and every returned pointer is a multiple of this. */
#define KHEAP_GRANULE 16u
/* Smallest growth request; the callback may return more. */
#define KHEAP_GROW_MIN ((size_t)64 * 1024)
/* Largest single region (and so block). Bigger regions are rejected. */
#define KHEAP_REGION_MAX ((size_t)1 << 35)
/* Bytes a region spends on bookkeeping: descriptor at the start, end marker. */
#define KHEAP_REGION_OVERHEAD 64u
/* Smallest region kheap_add_region accepts (after aligning to the granule). */
#define KHEAP_REGION_MIN (KHEAP_REGION_OVERHEAD + 48u)
/* Guard bytes on each side of a block when heap_redzones is on. */
#define KHEAP_REDZONE 16u
/* Fill patterns of the heap_redzones build. */
#define KHEAP_FILL_ALLOC 0xCDu
#define KHEAP_FILL_FREE 0xDDu
#define KHEAP_FILL_GUARD 0xFDu
/* Size classes of the allocation histogram: class 0 counts requests of up to
 * 16 bytes, class k (k >= 1) those in (2^(k+3), 2^(k+4)], the last class
 * everything larger. */
#define KHEAP_SIZE_CLASSES 24u
/* Aligned requests: blocks tried in address order before falling back to
 * the lowest block that fits at any address (see kheap_alloc). */
#define KHEAP_ALIGN_CANDIDATES 16u
/* A new run: free blocks that hold it looked at in address order, of which
 * it takes the smallest (see above). */
#define KHEAP_RUN_FIT_CANDIDATES 16u
/* Runs (see above): the largest request they serve; the largest "small"
 * one (classes every 16 bytes, one-page runs of KHEAP_RUN_SIZE bytes);
 * above it "medium" classes, eight per power of two; all classes. */
#define KHEAP_RUN_MAX 4096u
#define KHEAP_SMALL_MAX 256u
#define KHEAP_RUN_SIZE 4096u
#define KHEAP_RUN_CLASSES (KHEAP_SMALL_MAX / KHEAP_GRANULE + 32u)
/* Per-CPU caches: slots per class at most, and bytes per class at most
 * (a class whose slots exceed it still caches one). */
#define KHEAP_CACHE_DEPTH 8u
#define KHEAP_CACHE_CLASS_BYTES 16384u
/* The node pool (see kheap_set_node_pool): free blocks the heap must have
 * before it takes a node chunk, and the size range of a chunk (each new
 * one as big as all before it, within the range). */
#define KHEAP_NODE_POOL_FROM 16u
#define KHEAP_NODE_CHUNK_MIN 1024u
#define KHEAP_NODE_CHUNK_MAX 4096u
/* Hash buckets of the map that records which pages are small runs (it is
 * how a free recognises a small slot without reading memory it does not
 * own); its leaves, one per 8 MiB span holding small runs, are heap blocks. */
#define KHEAP_MAP_BUCKETS 64u

/*
 * Growth callback: provide at least `min_bytes` of fresh memory (16-byte
 * aligned is best; the heap aligns it). On success store the range in
 * *base_out / *size_out and return MM_OK; any other status means no memory.
 * Called without the heap's lock held and at most once at a time per heap.
 * It may allocate from this heap: such an allocation is served from free
 * memory if it fits and otherwise fails (NULL) instead of deadlocking.
 */
typedef mm_status_t (*kheap_grow_fn)(void *ctx, size_t min_bytes, void **base_out,
                                     size_t *size_out);

/*
 * Identity of the calling context, never 0, for growth arbitration: while
 * one context grows the heap, an allocation by another context that does
 * not fit waits (spinning, lock dropped) for the growth and retries, while
 * one by the growing context itself (its callback, or an interrupt handler
 * running on top of it) fails at once. Both must hold: an interrupt
 * handler gets the same value as the context it interrupted, and the
 * growing context keeps its value through its callback, or it would wait
 * on itself. The current-thread pointer does both in kernels whose
 * interrupt handlers see the interrupted thread as current; a CPU number
 * only while the grower cannot migrate; pthread_self on a host.
 * Without this function nobody can tell the cases apart, and every
 * allocation that does not fit while a growth is under way fails at once.
 * Called without the heap's lock held, once per allocation that misses.
 */
typedef uintptr_t (*kheap_self_fn)(void *ctx);

/* Statistics. The tracking fields are zero unless `tracking` is true (the
 * alloc_tracking option). Byte counts of allocations are usable sizes
 * (kheap_usable_size). */
typedef struct kheap_stats {
    size_t regions;          /* regions after merging adjacent ones */
    size_t total_bytes;      /* bytes of all regions */
    size_t free_bytes;       /* bytes in free blocks (headers included) */
    size_t free_blocks;      /* number of free blocks */
    size_t largest_free;     /* largest free block, bytes (headers included) */
    size_t runs;             /* runs (each a used block) */
    size_t run_slots_used;   /* slots in use in them (cached slots included) */
    size_t cached_slots;     /* slots held in CPU caches (a snapshot: other CPUs change it) */
    size_t node_chunks;      /* blocks holding out-of-line free-tree nodes */
    size_t node_bytes;       /* ... their bytes (headers included) */
    uint64_t grow_calls;     /* growth callback invocations */
    uint64_t grow_failures;  /* ... that returned no usable memory */
    bool tracking;
    size_t live_bytes, peak_live_bytes;
    size_t live_count, peak_live_count;
    uint64_t allocs, frees;
    uint64_t reallocs;       /* resized in place (a moved block counts as alloc + free) */
    uint64_t failures;       /* allocations that returned NULL */
    uint64_t histogram[KHEAP_SIZE_CLASSES]; /* successful allocations by requested size */
} kheap_stats_t;

/* One block as the walker reports it. */
typedef struct kheap_block_info {
    const void *region; /* base of the region holding the block */
    const void *block;  /* start of the block (its header) */
    size_t size;        /* block bytes, header included */
    bool used;
    bool run;           /* a run (used) */
    bool internal;      /* heap metadata: a leaf of the small-run map or a node chunk (used) */
    void *ptr;          /* caller's used block: the pointer the allocation returned; else NULL */
    size_t usable;      /* used block: kheap_usable_size(ptr); run: slot size; free: 0 */
    size_t run_used;    /* run: slots in use */
    size_t run_slots;   /* run: slots in all */
} kheap_block_info_t;

/* Return false to stop the walk. */
typedef bool (*kheap_walk_fn)(void *arg, const kheap_block_info_t *info);

struct kh_block;
struct kh_node_chunk;
struct kh_run;
struct kh_map_leaf;

/* A heap instance. Treat every field as private; it is public only so a
 * kernel can place the instance statically. Zero-filled it is "not
 * initialised", which every entry point but kheap_init rejects. */
/* One CPU's cache: per class, a LIFO list threaded through the cached slots
 * and its length. Touched only by its CPU (counts also read by statistics). */
typedef struct kheap_cpu_cache {
    void *head[KHEAP_RUN_CLASSES];
    uint8_t count[KHEAP_RUN_CLASSES];
} kheap_cpu_cache_t;

typedef struct kheap {
    mm_spinlock_t lock;
    uint32_t magic;
    const struct kheap *instance; /* where kheap_init set it up: a copy is refused */
    struct kh_block *free_root;   /* free blocks by address, augmented with max size */
    struct kh_block *region_root; /* region descriptors by address */
    uintptr_t lo, hi;             /* span of all regions: cheap first pointer check */
    size_t regions, total_bytes, free_bytes, free_blocks;
    kheap_grow_fn grow;
    kheap_self_fn self;
    void *grow_ctx;
    bool growing;
    uintptr_t grow_owner;
    atomic_uint grow_gen;         /* bumped when a growth ends; waiters watch it */
    uint64_t grow_calls, grow_failures;
    bool small_runs;
    size_t runs, run_slots_used;
    struct kh_run *partial[KHEAP_RUN_CLASSES]; /* runs with a free slot, per class */
    struct kh_map_leaf *map[KHEAP_MAP_BUCKETS]; /* which pages are small runs */
    size_t map_leaves;
    bool node_pool;                    /* free-tree nodes may go out of line */
    bool node_collapsing;              /* chunks being freed: no pool nodes handed out */
    struct kh_block *node_spare;       /* spare pool nodes, linked through their link word */
    struct kh_node_chunk *node_chunk;  /* the chunks, newest first */
    size_t node_spares, node_total, node_chunks, node_chunk_bytes;
#if HADRON_MM_KHEAP_CPU_CACHES > 0
    bool cpu_caches;              /* frees fill the caches (pops never need it) */
    bool cache_seen;              /* caches were ever on: frees check for cached slots */
    kheap_cpu_cache_t cache[HADRON_MM_KHEAP_CPU_CACHES];
#endif
#if HADRON_MM_ALLOC_TRACKING
    size_t live_bytes, peak_live_bytes, live_count, peak_live_count;
    uint64_t allocs, frees, reallocs, failures;
    uint64_t histogram[KHEAP_SIZE_CLASSES];
#endif
} kheap_t;

/*
 * Initialise `heap` over [base, base + size). base NULL with size 0 gives an
 * empty heap that only grows through its callback. The range is trimmed to
 * the granule. Errors: MM_ERR_INVALID (heap NULL; base NULL with size > 0;
 * range smaller than KHEAP_REGION_MIN after trimming), MM_ERR_RANGE (range
 * wraps, or exceeds KHEAP_REGION_MAX); the heap is then left not
 * initialised. Must not be called on a heap in use. O(1).
 */
mm_status_t kheap_init(kheap_t *heap, void *base, size_t size);

/*
 * Give the heap another range. One that starts exactly where a region ends
 * merges with it (its memory joins the last block if that is free), unless
 * the merged region would exceed KHEAP_REGION_MAX: then it becomes a region
 * of its own.
 * Errors: MM_ERR_INVALID, MM_ERR_RANGE as kheap_init; MM_ERR_OVERLAP (range
 * overlaps a region); MM_ERR_STATE (heap not initialised). Nothing changes
 * on error. Takes the lock. O(log regions + log free blocks).
 */
mm_status_t kheap_add_region(kheap_t *heap, void *base, size_t size);

/*
 * Install (grow non-NULL) or remove (grow NULL) the growth callback, with
 * its optional identity function and context. Errors: MM_ERR_INVALID (heap
 * NULL, or self without grow), MM_ERR_STATE (not initialised, or a growth is
 * under way). Takes the lock. O(1).
 */
mm_status_t kheap_set_grow(kheap_t *heap, kheap_grow_fn grow, kheap_self_fn self, void *ctx);

/*
 * Turn the runs (see the top of this file) on or off for
 * future small allocations; existing runs drain as their slots are freed.
 * kheap_init turns them on. Errors: MM_ERR_INVALID (heap NULL), MM_ERR_STATE
 * (not initialised), MM_ERR_UNSUPPORTED (turning them on in a heap_redzones
 * build). Takes the lock. O(1).
 */
mm_status_t kheap_set_small_runs(kheap_t *heap, bool on);

/*
 * Turn the node pool on or off. With it, once the heap has
 * KHEAP_NODE_POOL_FROM free blocks, the free tree's nodes move out of the
 * free blocks into dense chunks (heap blocks of their own, reported as
 * internal by kheap_walk and counted in the statistics): a search then
 * reads a few cache lines and pages instead of one cold block per tree
 * level. Placement of the caller's blocks is unchanged (a chunk is placed
 * like a run, at the start of a free block), and a heap that holds nothing
 * frees its chunks, so each region is again one free block. Off, every node lives in its block and the chunks are freed
 * at once. kheap_init turns it on. Errors: MM_ERR_INVALID (heap NULL),
 * MM_ERR_STATE (not initialised). Takes the lock. O(1) on; off, O(free
 * blocks) to move the nodes back.
 */
mm_status_t kheap_set_node_pool(kheap_t *heap, bool on);

/*
 * Turn this heap's per-CPU caches on or off (see the top of this file).
 * Off, frees stop filling them; allocations still empty them. Errors:
 * MM_ERR_INVALID (heap NULL), MM_ERR_STATE (not initialised),
 * MM_ERR_UNSUPPORTED (built with kheap_cpu_caches = 0, or with
 * heap_redzones, which has no runs). Takes the lock. O(1).
 */
mm_status_t kheap_set_cpu_caches(kheap_t *heap, bool on);

/*
 * Give every slot in the calling CPU's cache back to its run (runs left
 * empty go back to the heap and merge). Each CPU flushes its own: nothing
 * else touches a CPU's cache. Returns MM_OK also when the CPU has no cache
 * (index out of range, or caches compiled out). Errors: MM_ERR_INVALID,
 * MM_ERR_STATE. Takes the lock. O(cached slots), O(log n) per emptied run.
 */
mm_status_t kheap_flush_cpu_cache(kheap_t *heap);

/*
 * Allocate `size` bytes aligned to `align` (0 means KHEAP_GRANULE; otherwise
 * a power of two, any size, including beyond the page size). size 0 gives a
 * unique minimal block. Returns NULL when: heap NULL or not initialised,
 * align not a power of two, size too large, or no memory even after growth.
 * Takes the lock; on a miss calls the growth callback without it.
 *
 * Placement with alignment above the granule: whether a block fits then
 * depends on its address too, which no tree can search by. The request
 * takes the lowest of the first KHEAP_ALIGN_CANDIDATES blocks (in address
 * order, big enough before padding) where it fits aligned; failing those,
 * the lowest block big enough to hold it at any address (size + align +
 * one minimal block). So it is exact first fit unless more than that many
 * lower blocks are near misses, and the search stays O(log n).
 *
 * A request a run serves is first taken from the calling CPU's cache, if
 * that holds a slot of its class, without the lock (interrupts disabled).
 * O(1) for requests served by runs (O(log n) when a new run is needed);
 * otherwise O(log n) in free blocks (O(KHEAP_ALIGN_CANDIDATES log n) with
 * alignment).
 */
void *kheap_alloc(kheap_t *heap, size_t size, size_t align);

/*
 * Zeroed allocation of count * size bytes (granule-aligned). NULL when the
 * product overflows, or for kheap_alloc's reasons. O(log n + bytes).
 */
void *kheap_calloc(kheap_t *heap, size_t count, size_t size);

/*
 * Free a block. ptr NULL: nothing happens, MM_OK. Errors (reported through
 * mm_hook_warn after the lock is dropped, heap unchanged):
 * MM_ERR_DOUBLE_FREE (ptr is a block that is already free),
 * MM_ERR_BAD_POINTER (ptr not returned by this heap: outside its regions, or
 * inside a block), MM_ERR_INVALID / MM_ERR_STATE (heap NULL / not
 * initialised). Redzone and poison damage panics. A run slot goes to the
 * CPU's cache when caches are on and its class has room there. Takes the
 * lock. O(1) for
 * a run slot (O(log n) when it empties its run) and when the block merges
 * with its lower neighbour; O(log n) worst case.
 */
mm_status_t kheap_free(kheap_t *heap, void *ptr);

/*
 * Resize the block at ptr to `size` bytes, keeping its contents up to the
 * smaller size, and store the result in *out. In place when shrinking and
 * when the next block is free and big enough; otherwise allocate, copy,
 * free (the new block is granule-aligned only). ptr NULL: like kheap_alloc.
 * size 0: frees ptr, *out = NULL. Errors: MM_ERR_INVALID (heap or out NULL),
 * MM_ERR_STATE, MM_ERR_NOMEM (ptr untouched, *out = NULL), MM_ERR_BAD_POINTER
 * / MM_ERR_DOUBLE_FREE as kheap_free (warned; *out = NULL). Takes the lock.
 * O(log n) plus the copy when the block moves.
 */
mm_status_t kheap_realloc(kheap_t *heap, void *ptr, size_t size, void **out);

/*
 * Bytes usable at ptr (at least what was requested; exactly that with
 * heap_redzones). 0 for NULL or a pointer kheap_free would reject (no
 * warning). Takes the lock. O(log regions).
 */
size_t kheap_usable_size(kheap_t *heap, const void *ptr);

/* True when ptr lies inside one of the heap's regions. Takes the lock.
 * O(log regions). */
bool kheap_contains(kheap_t *heap, const void *ptr);

/* Copy the statistics. Errors: MM_ERR_INVALID (NULL), MM_ERR_STATE. Takes
 * the lock. O(1) (largest_free is kept in the tree). */
mm_status_t kheap_get_stats(kheap_t *heap, kheap_stats_t *out);

/*
 * Full consistency check: region and free-tree structure (order, balance,
 * cached maxima, parent links), every block header, boundary tags and
 * footers, no two free neighbours, counters, and with heap_redzones every
 * guard and every poisoned byte. Returns MM_OK, or MM_ERR_CORRUPT with the
 * first problem in *report (may be NULL) and no panic; of the CPU caches
 * it checks the calling CPU's (each slot in use, of its class, unwritten); MM_ERR_INVALID /
 * MM_ERR_STATE for a NULL / uninitialised heap. Takes the lock for the whole
 * walk. O(n log n) in blocks (O(bytes) with heap_redzones), plus
 * O(node chunks) per free block whose node is pooled.
 */
mm_status_t kheap_check(kheap_t *heap, mm_report_t *report);

/*
 * Call fn for every block of every region in address order, until it returns
 * false. Does NOT take the lock (it would call out while holding it): the
 * caller guarantees nobody uses the heap during the walk, and fn may not
 * change it. Errors: MM_ERR_INVALID (heap or fn NULL), MM_ERR_STATE,
 * MM_ERR_CORRUPT (a header did not make sense; the walk stops). O(blocks).
 */
mm_status_t kheap_walk(kheap_t *heap, kheap_walk_fn fn, void *arg);

/* ------------------------------------------------------------------------
 * The kernel's global allocator: the kmalloc family over one default heap.
 * Each behaves like the kheap_ call on kheap_default(); before
 * kheap_default_init the allocators return NULL and kfree warns.
 * ------------------------------------------------------------------------ */

/* The default instance (static storage, never NULL). */
kheap_t *kheap_default(void);

/* kheap_init(kheap_default(), base, size). */
mm_status_t kheap_default_init(void *base, size_t size);

void *kmalloc(size_t size);
void *kmalloc_aligned(size_t size, size_t align);
void *kcalloc(size_t count, size_t size);
/* Like kheap_realloc, returning the new pointer or NULL (on failure the old
 * block is untouched; size 0 frees and returns NULL). */
void *krealloc(void *ptr, size_t size);
/* NULL does nothing; bad pointers are warned about and ignored. */
void kfree(void *ptr);
/* kheap_usable_size on the default heap. */
size_t ksize(const void *ptr);

#endif /* HADRON_MM_KHEAP_H */
