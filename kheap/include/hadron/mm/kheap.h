/*
 * hadron-mm kheap: the kernel heap and the kmalloc family.
 *
 * Three layers, each using only the ones below it:
 *
 *  1. Blocks (kheap_block_*): address-ordered first fit. An allocation gets
 *     the lowest-address free block in which it fits with its alignment; a
 *     freed block merges with both free neighbours at once. Free blocks live
 *     in a balanced search tree keyed by address in which every node also
 *     knows the largest block below it, so the lowest fitting block is found
 *     by one descent, O(log n) in free blocks, and boundary tags find both
 *     neighbours of a freed block in O(1). Nothing is lost: sizes are rounded
 *     to KHEAP_GRANULE, a remainder too small to be a block stays with the
 *     allocation it came from, and alignment padding is always either zero
 *     or a whole free block. Freeing everything leaves each region as
 *     exactly one free block.
 *  2. Object caches (kmem_cache.h): fixed-size objects carved from slabs,
 *     which are blocks of layer 1.
 *  3. kmalloc (kheap_alloc, kheap_free, ... and the k* family): requests of
 *     up to KHEAP_CLASS_MAX bytes at no more than granule alignment go to
 *     one of the heap's own object caches, one per size class (every 16
 *     bytes up to 256, then eight classes per power of two: rounding loses
 *     at most 1/8); everything else is a block. The class caches share one
 *     lock and one slab table, so a free finds the cache of any pointer by
 *     one table probe, without reading memory near the pointer.
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
 * Memory goes back through an optional release callback (kheap_set_release):
 * whole pages inside a free block, cut out of their region (which ends
 * below them; a new region starts above them), or a whole empty region.
 * Automatically when a free leaves a free block with at least the heap's
 * trim threshold of such pages (doubled, up to KHEAP_TRIM_CEILING, each
 * time the heap has to grow again after giving memory back), and on
 * request (kheap_trim). What stays in
 * the heap keeps every guarantee above (coalescing, one free block per
 * region once everything is freed).
 *
 * Locking: the block layer has one spinlock per heap, the class caches one
 * more (the order is class caches -> blocks), both taken with interrupts
 * disabled; no entry point calls out (hooks, the growth and release
 * callbacks, the walker's callback) while holding either. Exceptions are
 * stated per function.
 *
 * Bad input is detected in every build: a double free, a pointer that is
 * not from this heap or points into the middle of a block or object is
 * reported through mm_hook_warn (kind MM_REPORT_DOUBLE_FREE or
 * MM_REPORT_BAD_POINTER, address = the pointer) and leaves the heap
 * unchanged. Damage to the heap's own data goes to mm_hook_panic.
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
 *    address + offset = the first byte written after free). The size
 *    classes are off in this build: every kheap_alloc is a guarded block.
 *  - alloc_tracking: live/peak bytes and counts, allocation/free/failure
 *    counters and a size-class histogram of the kmalloc layer in
 *    kheap_stats_t.
 */
#ifndef HADRON_MM_KHEAP_H
#define HADRON_MM_KHEAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/config.h>
#include <hadron/mm/kmem_cache.h>
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
 * the lowest block that fits at any address (see kheap_block_alloc). */
#define KHEAP_ALIGN_CANDIDATES 16u
/* kmalloc's size classes (see above): the largest request they serve, the
 * largest of the classes every 16 bytes, and how many there are. */
#define KHEAP_CLASS_MAX 4096u
#define KHEAP_SMALL_MAX 256u
#define KHEAP_CLASSES (KHEAP_SMALL_MAX / KHEAP_GRANULE + 32u)
/* Default trim threshold (kheap_set_release): a free that leaves at least
 * this many bytes of whole pages in one free block gives them back. */
#define KHEAP_TRIM_DEFAULT ((size_t)1 << 20)
/* The automatic threshold doubles each time the heap grows again after
 * giving memory back (a program that frees and reallocates large blocks
 * would otherwise unmap and map them on every cycle), up to this. */
#define KHEAP_TRIM_CEILING ((size_t)32 << 20)
/* Smallest page span kheap_trim gives back from inside a free block:
 * below it a new region's bookkeeping is not worth the pages. */
#define KHEAP_TRIM_MIN ((size_t)64 * 1024)
/* The page size of the release callback's ranges. */
#define KHEAP_PAGE ((size_t)4096)

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

/*
 * Release callback: take back [base, base + size), page-aligned and a
 * multiple of KHEAP_PAGE, which the heap no longer holds (it obtained it
 * from its growth callback or its regions). Return MM_OK when the memory
 * was taken; any other status gives it back to the heap, which keeps it.
 * Called without the heap's locks held; it may allocate from this heap.
 */
typedef mm_status_t (*kheap_release_fn)(void *ctx, void *base, size_t size);

/* Statistics. The tracking fields are zero unless `tracking` is true (the
 * alloc_tracking option). Byte counts of allocations are usable sizes
 * (kheap_usable_size). */
typedef struct kheap_stats {
    size_t regions;          /* regions after merging adjacent ones */
    size_t total_bytes;      /* bytes of all regions */
    size_t free_bytes;       /* bytes in free blocks (headers included) */
    size_t free_blocks;      /* number of free blocks */
    size_t largest_free;     /* largest free block, bytes (headers included) */
    size_t class_slabs;      /* slabs of the size-class caches (each a used block) */
    size_t class_objects;    /* objects live in them */
    uint64_t grow_calls;     /* growth callback invocations */
    uint64_t grow_failures;  /* ... that returned no usable memory */
    uint64_t release_calls;  /* release callback invocations */
    uint64_t released_bytes; /* bytes the release callback took */
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
    bool internal;      /* the heap's own (used): a slab, a slab table, a cache descriptor */
    bool slab;          /* ... a slab of the size-class caches */
    bool front;         /* ... a CPU's front of the size classes, or their array */
    void *ptr;          /* used block: the pointer kheap_block_alloc returned; else NULL */
    size_t usable;      /* used block: kheap_block_usable_size(ptr); free: 0 */
} kheap_block_info_t;

/* Return false to stop the walk. */
typedef bool (*kheap_walk_fn)(void *arg, const kheap_block_info_t *info);

struct kh_block;

/* A heap instance. Treat every field as private; it is public only so a
 * kernel can place the instance statically. Zero-filled it is "not
 * initialised", which every entry point but kheap_init rejects. */
typedef struct kheap {
    /* Layer 1, under `lock`. */
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
    kheap_release_fn release;
    void *release_ctx;
    size_t trim_threshold;
    bool release_refused;         /* no automatic trim until the heap grows again */
    bool released_since_growth;   /* the next growth doubles trim_threshold */
    uintptr_t pin_lo, pin_hi;     /* kheap_init's range: never given back */
    uint64_t release_calls, released_bytes;
    /* Layer 3: the size classes' caches, under class_index.lock. */
    kmem_index_t class_index;
    kmem_cache_t classes[KHEAP_CLASSES];
#if HADRON_MM_ALLOC_TRACKING
    mm_spinlock_t track_lock;
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
 * Install (release non-NULL) or remove the release callback, with its
 * context, and the trim threshold in bytes (0: KHEAP_TRIM_DEFAULT; it is
 * raised to KHEAP_TRIM_MIN). Errors: MM_ERR_INVALID (heap NULL),
 * MM_ERR_STATE (not initialised). Takes the lock. O(1).
 */
mm_status_t kheap_set_release(kheap_t *heap, kheap_release_fn release, void *ctx,
                              size_t threshold);

/*
 * Every CPU's front gives the size-class objects it holds back to their
 * slabs, and slabs left empty go back to the blocks: after everything was
 * freed and the heap drained, each region is one free block again. For a
 * CPU going offline, or to see the heap without what the fronts keep. The
 * heap drains itself when an allocation would fail and in kheap_trim.
 * Returns the number of objects given back (0 for a NULL or uninitialised
 * heap). Holds every front (mm_hook_cpu_barrier with asymmetric_barrier;
 * when it refuses, only this CPU's front is drained), then takes each
 * front's lock, then the size-class lock, one at a time; no hadron-mm lock
 * may be held. O(CPUs * classes + objects).
 */
size_t kheap_drain(kheap_t *heap);

/*
 * Take every lock of the heap (each CPU's front of the size classes, the
 * size-class lock, the block lock, in that order) and drop them again: for
 * a process about to fork (the malloc shim's pthread_atfork handlers), so
 * no other thread holds any of them while the child is cloned. Between the
 * two calls nothing else may touch the heap. heap initialised; interrupts
 * as the caller has them (a host). O(CPUs^2) for the fronts' order.
 */
void kheap_lock_all(kheap_t *heap);
void kheap_unlock_all(kheap_t *heap);

/*
 * Give back through the release callback every page span of at least
 * KHEAP_TRIM_MIN bytes inside a free block, and every region that is one
 * free block, after draining the fronts (kheap_drain): empty class slabs
 * are never kept, so nothing else holds memory. *released (may be NULL)
 * gets the bytes the callback took. A span the callback refuses stays in
 * the heap (and ends the pass). Errors: MM_ERR_INVALID (heap NULL),
 * MM_ERR_STATE (not initialised), MM_ERR_UNSUPPORTED (no release callback).
 * Takes the lock, dropped around each callback. O(free blocks * log free
 * blocks).
 */
mm_status_t kheap_trim(kheap_t *heap, size_t *released);

/*
 * Layer 1: a block of `size` bytes aligned to `align` (0 means
 * KHEAP_GRANULE; otherwise a power of two, any size, including beyond the
 * page size). size 0 gives a unique minimal block. Returns NULL when: heap
 * NULL or not initialised, align not a power of two, size too large, or no
 * memory even after growth. Takes the lock; on a miss calls the growth
 * callback without it.
 *
 * Placement with alignment above the granule: whether a block fits then
 * depends on its address too, which no tree can search by. The request
 * takes the lowest of the first KHEAP_ALIGN_CANDIDATES blocks (in address
 * order, big enough before padding) where it fits aligned; failing those,
 * the lowest block big enough to hold it at any address (size + align +
 * one minimal block). So it is exact first fit unless more than that many
 * lower blocks are near misses, and the search stays O(log n) in free
 * blocks (O(KHEAP_ALIGN_CANDIDATES log n) with alignment).
 */
void *kheap_block_alloc(kheap_t *heap, size_t size, size_t align);

/*
 * Layer 1: free a block from kheap_block_alloc (or a kheap_alloc pointer
 * that is a block). ptr NULL: MM_OK. Errors (reported through mm_hook_warn
 * after the lock is dropped, heap unchanged): MM_ERR_DOUBLE_FREE (ptr is a
 * block that is already free), MM_ERR_BAD_POINTER (not a block of this
 * heap: outside its regions, or inside a block), MM_ERR_INVALID /
 * MM_ERR_STATE (heap NULL / not initialised). Redzone and poison damage
 * panics. May give pages back (see kheap_set_release), with the lock
 * dropped around the callback. Takes the lock. O(1) when the block merges
 * with its lower neighbour; O(log n) worst case.
 */
mm_status_t kheap_block_free(kheap_t *heap, void *ptr);

/*
 * Layer 1: resize block ptr to `size` bytes where it stands (shrinking
 * always; growing when the next block is free and big enough). Errors:
 * MM_ERR_NOMEM (cannot grow in place: nothing changed, not warned),
 * MM_ERR_INVALID (heap or ptr NULL), MM_ERR_STATE, MM_ERR_BAD_POINTER /
 * MM_ERR_DOUBLE_FREE as kheap_block_free (warned). Takes the lock.
 * O(log n).
 */
mm_status_t kheap_block_resize(kheap_t *heap, void *ptr, size_t size);

/* Layer 1: usable bytes of block ptr; 0 for NULL or a pointer
 * kheap_block_free would reject (no warning). Takes the lock. O(log
 * regions). */
size_t kheap_block_usable_size(kheap_t *heap, const void *ptr);

/*
 * Allocate `size` bytes aligned to `align` (0 means KHEAP_GRANULE; otherwise
 * a power of two): from the size-class cache of the request when size <=
 * KHEAP_CLASS_MAX and align <= KHEAP_GRANULE, else kheap_block_alloc. NULL
 * for kheap_block_alloc's reasons. Takes the class lock (O(1) from a slab
 * with a free slot; a new slab is a block allocation made with it dropped),
 * or the block lock.
 */
void *kheap_alloc(kheap_t *heap, size_t size, size_t align);

/*
 * Zeroed allocation of count * size bytes (granule-aligned). NULL when the
 * product overflows, or for kheap_alloc's reasons. O(kheap_alloc + bytes).
 */
void *kheap_calloc(kheap_t *heap, size_t count, size_t size);

/*
 * Free what kheap_alloc (or kheap_block_alloc) returned. ptr NULL: MM_OK.
 * Errors as kheap_block_free; an object of a size class that is already
 * free is MM_ERR_DOUBLE_FREE, a pointer inside a class object
 * MM_ERR_BAD_POINTER. A slab left empty goes back to the blocks at once.
 * Takes the class lock (one probe of the class slab table, O(1) expected),
 * then for a block the block lock.
 */
mm_status_t kheap_free(kheap_t *heap, void *ptr);

/*
 * Resize the allocation at ptr to `size` bytes, keeping its contents up to
 * the smaller size, and store the result in *out. A class object stays put
 * while the new size fits its slot; a block resizes in place when
 * shrinking and when the next block is free and big enough; otherwise
 * allocate, copy, free (granule alignment only). ptr NULL: like
 * kheap_alloc. size 0: frees ptr, *out = NULL. Errors: MM_ERR_INVALID (heap
 * or out NULL), MM_ERR_STATE, MM_ERR_NOMEM (ptr untouched, *out = NULL),
 * MM_ERR_BAD_POINTER / MM_ERR_DOUBLE_FREE as kheap_free (warned; *out =
 * NULL). Takes the locks as kheap_alloc and kheap_free. O(log n) plus the
 * copy when it moves.
 */
mm_status_t kheap_realloc(kheap_t *heap, void *ptr, size_t size, void **out);

/*
 * Bytes usable at ptr (at least what was requested; exactly that with
 * heap_redzones for a block, the class's slot size for a class object). 0
 * for NULL or a pointer kheap_free would reject (no warning). Takes the
 * class lock, and for a block the block lock. O(log regions).
 */
size_t kheap_usable_size(kheap_t *heap, const void *ptr);

/* True when ptr lies inside one of the heap's regions. Takes the lock.
 * O(log regions). */
bool kheap_contains(kheap_t *heap, const void *ptr);

/* Copy the statistics. Errors: MM_ERR_INVALID (NULL), MM_ERR_STATE. Takes
 * both locks, one after the other. O(KHEAP_CLASSES). */
mm_status_t kheap_get_stats(kheap_t *heap, kheap_stats_t *out);

/*
 * Full consistency check: every class cache (kmem_cache_check), then the
 * region and free-tree structure (order, balance, cached maxima, parent
 * links), every block header, boundary tags and footers, no two free
 * neighbours, counters, and with heap_redzones every guard and every
 * poisoned byte. Returns MM_OK, or MM_ERR_CORRUPT with the first problem
 * in *report (may be NULL) and no panic; MM_ERR_INVALID / MM_ERR_STATE for
 * a NULL / uninitialised heap. Takes each lock for its part. O(n log n) in
 * blocks (O(bytes) with heap_redzones).
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
