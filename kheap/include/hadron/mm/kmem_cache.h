/*
 * hadron-mm kmem_cache: object caches over a kernel heap.
 *
 * A cache hands out objects of one size and alignment, carved from slabs:
 * page-aligned blocks of the heap (kheap_block_alloc) of whole pages, each
 * holding a header and an array of equal slots. The kernel names its caches after what they hold ("task", "vma", "inode") and gets, per
 * cache, dense packing, no per-object header, objects that come back in the
 * state the constructor left them, statistics and a walker (Bonwick's slab
 * allocator; Linux SLUB and FreeBSD UMA are its descendants).
 *
 *   slab (KMEM_SLAB_MIN ... KMEM_SLAB_MAX bytes, page-aligned)
 *   | header: check, cache, list links, free count, free and live bitmaps
 *   | (a word of each per 64 slots) | slot | slot | ...
 *
 * Each CPU has a front per cache: up to front_cap free objects (32, or
 * about 16 KiB of objects, at least 2), taken and given back last in, first
 * out, under a lock only that CPU takes on the common path. An allocation
 * pops from it, a free pushes to it; when it is empty half of it is
 * refilled from the slabs, when full its older half goes back, each under
 * the cache lock once for the batch. So the common path touches no shared
 * lock or counter, and an object freed on another CPU than the one that
 * allocated it simply joins the freeing CPU's front (nothing is lost; what
 * the fronts hold is bounded by CPUs x front_cap per cache). A CPU whose
 * mm_hook_cpu_index is HADRON_MM_MAX_CPUS or more has no front and takes
 * the locked path every time.
 *
 * A slab goes back to the heap the moment its last object is back in it:
 * once what the fronts hold is drained (kmem_cache_shrink, kheap_drain, an
 * allocation that would fail otherwise), a heap whose caches hold no
 * objects is again free space in every region, apart from the fronts.
 *
 * Every free is validated in every build, without reading memory near the
 * pointer: the cache keeps a table of its own slabs' pages (an
 * open-addressing hash of their addresses, itself a heap block), so a
 * pointer is first matched to a slab by the address of its page alone, then
 * to a slot by its offset, then to the slot's live bit (flipped with a
 * plain store by the one CPU that owns the slab's bits, from inside its
 * front, and atomically by every other CPU: a free decides once, whichever
 * CPU frees and whether the first free left the object in a front or in
 * its slab). A pointer outside every slab of
 * the cache (never allocated, from another cache, from kmalloc, from the
 * stack) is MM_ERR_BAD_POINTER, a pointer inside a slot MM_ERR_BAD_POINTER,
 * a second free MM_ERR_DOUBLE_FREE; each is reported through mm_hook_warn
 * after the lock is dropped and changes nothing. The allocator never writes
 * into a free object (no free list threads through the objects: the bitmap
 * is the free list), so a constructed object stays constructed and a
 * use-after-free cannot corrupt the allocator.
 *
 * Debug options: with heap_redzones each slot carries KHEAP_REDZONE guard
 * bytes (0xFD) after the object, verified on free and by kmem_cache_check
 * (MM_REPORT_REDZONE, address = the object, offset = the bad byte's distance
 * from it); objects of caches without a constructor are filled with 0xDD
 * when freed and verified when allocated again (MM_REPORT_POISON, address =
 * the object, offset = the first byte written after free), and with 0xCD
 * when handed out. Without the option neither costs anything.
 *
 * Locking: each cache has its own spinlock (the heap's size-class caches
 * share one), taken with interrupts disabled; a CPU uses its own front
 * with interrupts disabled and no lock, and a drain holds every front out
 * of use before it touches one (kmem_percpu.c; the asymmetric_barrier
 * option and mm_hook_cpu_barrier). A free finds the slab in the table
 * without the cache lock, inside its front: a table array replaced
 * meanwhile is freed only while the fronts are held. A double free racing with the free of the last
 * other object of its slab on another CPU may go undetected: the slab can
 * be gone by the time the second free reads it.
 * A new slab is allocated, constructed and registered with the lock dropped,
 * so a heap growth callback may itself allocate from the cache that made the
 * heap grow. Lock order: cache -> heap (-> the heap's growth callback's
 * locks). No function calls out (constructor, hooks, walker callback) while
 * holding the cache lock.
 *
 * Typical kernel use:
 *
 *     static kmem_cache_t task_cache;          // zero-initialised
 *     kmem_cache_init(&task_cache, heap, "task", sizeof(task_t), 64, NULL, NULL);
 *     task_t *t = kmem_cache_alloc(&task_cache);
 *     ...
 *     kmem_cache_free(&task_cache, t);
 */
#ifndef HADRON_MM_KMEM_CACHE_H
#define HADRON_MM_KMEM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/report.h>
#include <hadron/mm/spinlock.h>
#include <hadron/mm/status.h>

/* Tunables (not options: a kernel that needs others edits them here). */
/* Slab sizes: whole pages in [KMEM_SLAB_MIN, KMEM_SLAB_MAX]; a cache uses
 * the smallest that holds KMEM_SLAB_OBJECTS_MIN objects, or one up to half
 * again as big that wastes a smaller share of itself. */
#define KMEM_SLAB_MIN ((size_t)4096)
#define KMEM_SLAB_MAX ((size_t)256 * 1024)
#define KMEM_SLAB_OBJECTS_MIN 16u
/* Most objects in one slab: the size of each of the slab's two bitmaps
 * (free in the slab, handed out). Caches of objects under 16 bytes leave
 * the rest of their one-page slab unused. */
#define KMEM_SLAB_OBJECTS_MAX 256u
/* Largest object and alignment a cache takes. */
#define KMEM_OBJECT_MAX ((size_t)32 * 1024)
#define KMEM_ALIGN_MAX ((size_t)4096)
/* Alignment when the caller passes 0. */
#define KMEM_ALIGN_DEFAULT ((size_t)8)
/* A cache's name, terminating NUL included (longer names are cut). */
#define KMEM_NAME_MAX 32u

/* Called once for every object when its slab is created, with the lock not
 * held, before the object is ever handed out. Objects must be freed in the
 * constructed state: the cache never writes into them. */
typedef void (*kmem_ctor_fn)(void *arg, void *obj);

/* Statistics (a consistent snapshot taken under the cache lock). */
typedef struct kmem_cache_stats {
    size_t object_size;      /* as created */
    size_t align;            /* effective alignment */
    size_t stride;           /* distance between slots (object, guard, alignment) */
    size_t slab_bytes;       /* size of each slab */
    size_t objects_per_slab;
    size_t slabs;            /* slabs held (each a heap block) */
    size_t partial_slabs;    /* ... of which have a free slot */
    size_t live;             /* objects allocated and not freed */
    size_t front_objects;    /* free objects the CPUs' fronts hold (not in free_slots) */
    size_t free_slots;       /* free slots in the slabs held */
    size_t table_bytes;      /* the slab table's heap block (0 without slabs) */
    uint64_t allocs, frees;
    uint64_t failures;       /* kmem_cache_alloc calls that returned NULL */
    uint64_t slabs_created, slabs_released;
    uint64_t rejected_frees; /* bad pointers and double frees refused */
} kmem_cache_stats_t;

struct kh_slab;
struct kh_front;
struct kheap;
typedef struct kheap kheap_t;

/* The slabs of one or more caches by page, and the lock that guards them and
 * their caches: a cache made by kmem_cache_init has its own; the heap's
 * size-class caches share one (kheap.h). Private, like the cache. */
typedef struct kmem_index {
    mm_spinlock_t lock;
    kheap_t *heap;    /* the table's memory comes from it */
    uintptr_t *table; /* page | page's index in its slab; 0 empty */
    size_t cap, used;
    /* Per CPU, made at its first use: the objects it holds for each cache
     * of the index (kmem_front.c). */
    struct kh_front **fronts;
    uint32_t front_slots; /* caches sharing the index: magazines per front */
    /* Contexts keeping every front out of use (kmem_percpu.c). */
    uint32_t holders;
    bool fork_held; /* kheap_lock_all holds the fronts */
    /* Table arrays no longer current, freed once no front can read them. */
    uintptr_t *retired;
} kmem_index_t;

/* A cache. Treat every field as private; the struct is public so a kernel
 * can place caches statically. Zero-filled it is "not initialised". Fields
 * are grouped by who writes them. */
typedef struct kmem_cache {
    /* Constant after initialisation. */
    uint32_t magic;
    const struct kmem_cache *instance; /* where it was set up: a copy is refused */
    kheap_t *heap;
    kmem_ctor_fn ctor;
    void *ctor_arg;
    size_t object_size, align, stride, slab_bytes;
    uint32_t objects_per_slab;
    uint32_t first_offset; /* of slot 0 from the slab's start */
    uint64_t recip;        /* slot index from an offset without a divide */
    bool heap_descriptor;  /* from kmem_cache_create: freed by destroy */
    char name[KMEM_NAME_MAX];
    kmem_index_t *index;   /* &own, or the index shared with other caches */
    uint32_t front_slot;   /* its magazine in each front of the index */
    uint32_t front_cap;    /* objects a front holds for it at most */

    /* Written under index->lock. */
    struct kh_slab *partial; /* slabs with a free slot */
    struct kh_slab *current; /* the slab freed into last (NULL once it went back) */
    size_t slabs, partial_slabs;
    size_t taken; /* slots out of the slabs: handed out, or held by fronts */
    uint64_t allocs, frees, failures, slabs_created, slabs_released, rejected_frees;
    kmem_index_t own;
} kmem_cache_t;

/* ---------------------------------------------------------------------- */

/*
 * Initialise `cache` (zero-filled, caller's storage) for objects of `size`
 * bytes aligned to `align` (0: KMEM_ALIGN_DEFAULT; else a power of two up to
 * KMEM_ALIGN_MAX), carved from slabs of `heap` (initialised, and outliving
 * the cache). `name` (may be NULL) is copied, cut to KMEM_NAME_MAX - 1
 * bytes. `ctor` (may be NULL) constructs each object once, with `ctor_arg`.
 * Errors (cache untouched): MM_ERR_INVALID (cache NULL, size 0 or above
 * KMEM_OBJECT_MAX, align not a power of two or above KMEM_ALIGN_MAX),
 * MM_ERR_STATE (heap NULL or not initialised, or cache already
 * initialised). Allocates nothing. No lock; O(1). Any context.
 */
mm_status_t kmem_cache_init(kmem_cache_t *cache, kheap_t *heap, const char *name, size_t size,
                            size_t align, kmem_ctor_fn ctor, void *ctor_arg);

/*
 * As kmem_cache_init, with the descriptor allocated from `heap` itself and
 * stored in *out (freed by kmem_cache_destroy). Errors as kmem_cache_init,
 * plus MM_ERR_INVALID (out NULL) and MM_ERR_NOMEM (no memory for the
 * descriptor); *out is untouched on error. Takes the heap lock (kheap_block_alloc).
 */
mm_status_t kmem_cache_create(kheap_t *heap, const char *name, size_t size, size_t align,
                              kmem_ctor_fn ctor, void *ctor_arg, kmem_cache_t **out);

/*
 * An object, or NULL (cache NULL, not initialised, or no memory for a new
 * slab or for a larger slab table even after the heap's growth and after
 * every CPU's front gave its objects back). From this CPU's front: takes
 * its lock, O(1); when the front is empty, the cache lock once for half a
 * front of objects (a scan of at most KMEM_SLAB_OBJECTS_MAX / 64 bitmap
 * words each). A CPU's first allocation makes its front, and a new slab
 * costs one kheap_block_alloc, the constructor on each of its objects and,
 * now and then, doubling the slab table, all with the locks dropped. Any
 * context in which kheap_block_alloc may be called.
 */
void *kmem_cache_alloc(kmem_cache_t *cache);

/*
 * Free an object of this cache. obj NULL: nothing happens, MM_OK. Errors,
 * each leaving the cache unchanged and (the last three) reported through
 * mm_hook_warn after the lock is dropped (address = obj): MM_ERR_INVALID
 * (cache NULL), MM_ERR_STATE (not initialised), MM_ERR_BAD_POINTER (not in
 * one of this cache's slabs, or not the start of a slot),
 * MM_ERR_DOUBLE_FREE (the object is not live: free in its slab or held by
 * a front). Redzone or poison damage panics. The object joins this CPU's
 * front (its lock, O(1) expected: one table probe sequence without the
 * cache lock); when the front is full its older half goes back to the
 * slabs under the cache lock, and a slab whose last object this was goes
 * back to the heap (kheap_block_free, with the locks dropped). A CPU
 * without a front, a refused free and a pointer the front cannot place
 * take the cache lock instead. Any context in which kheap_block_free may
 * be called.
 */
mm_status_t kmem_cache_free(kmem_cache_t *cache, void *obj);

/*
 * Give back what the cache holds beyond its live objects: the objects every
 * CPU's front holds go back to their slabs, slabs left empty go back to the
 * heap, and the slab table shrinks to fit (or goes when there are no
 * slabs). *released (may be NULL) gets the bytes of slabs and table given
 * back to the heap. Errors: MM_ERR_INVALID, MM_ERR_STATE; MM_ERR_NOMEM (no
 * memory for the smaller table: the table unchanged, the fronts drained).
 * Holds every front (mm_hook_cpu_barrier with asymmetric_barrier; when it
 * refuses, only this CPU's front is drained), takes each front's lock,
 * then the cache lock (dropped around the heap calls). O(CPUs + slabs).
 * Any context in which kheap_block_free may be called, with no hadron-mm
 * lock held.
 */
mm_status_t kmem_cache_shrink(kmem_cache_t *cache, size_t *released);

/*
 * Tear the cache down. First every CPU's front gives its objects back.
 * Refused while objects are live: MM_ERR_STATE with their number in *live
 * (may be NULL), nothing else changed; objects that another CPU's front
 * holds count as live when mm_hook_cpu_barrier refuses (call from where
 * the kernel can interrupt the other CPUs). Otherwise the slab table and the
 * fronts go back to the heap, the cache becomes "not initialised" (every
 * later call refuses it), and a descriptor from kmem_cache_create is freed.
 * Errors: MM_ERR_INVALID (cache NULL), MM_ERR_STATE (not initialised, or
 * objects live). The caller guarantees no other context uses the cache
 * during and after the call. O(CPUs).
 */
mm_status_t kmem_cache_destroy(kmem_cache_t *cache, size_t *live);

/* Errors: MM_ERR_INVALID (NULL), MM_ERR_STATE. Takes the cache lock; reads
 * the fronts' counts without their locks, so live and front_objects are
 * exact only while no CPU allocates or frees from the cache. O(CPUs). */
mm_status_t kmem_cache_get_stats(kmem_cache_t *cache, kmem_cache_stats_t *out);

/* The cache's name (never NULL; "" for a NULL or uninitialised cache). */
const char *kmem_cache_name(const kmem_cache_t *cache);

/* One live object as the walker reports it. */
typedef struct kmem_object_info {
    void *obj;
    const void *slab; /* start of its slab */
    size_t index;     /* slot index in the slab */
} kmem_object_info_t;

/* Return false to stop the walk. */
typedef bool (*kmem_walk_fn)(void *arg, const kmem_object_info_t *info);

/*
 * Call fn for every live object, slab by slab (in table order) and in
 * address order within a slab, until it returns false. Does NOT take the
 * lock (it would call out while holding it): the caller guarantees nobody
 * uses the cache during the walk, and fn may not change it. Errors:
 * MM_ERR_INVALID (cache or fn NULL), MM_ERR_STATE. O(slabs * objects).
 */
mm_status_t kmem_cache_walk(kmem_cache_t *cache, kmem_walk_fn fn, void *arg);

/*
 * Consistency check: the table (counts, each entry found by its own probe
 * sequence, every page of each of this cache's slabs present), each slab header
 * (check value, cache, counts equal to its bitmap), the partial list (every
 * slab with a free slot on it once, no other), the cache's counters, and
 * with heap_redzones every guard and every poisoned free slot. MM_OK, or
 * MM_ERR_CORRUPT with the first problem in *report (may be NULL), without
 * panicking; MM_ERR_INVALID / MM_ERR_STATE for a NULL / uninitialised cache.
 * Takes the cache lock. O(slabs * objects) (O(bytes) with heap_redzones).
 */
mm_status_t kmem_cache_check(kmem_cache_t *cache, mm_report_t *report);

/* The heap the caches live on (it includes this header first). */
#include <hadron/mm/kheap.h>

#endif /* HADRON_MM_KMEM_CACHE_H */
