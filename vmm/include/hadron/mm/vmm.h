/*
 * hadron-mm vmm: the kernel virtual-memory manager and user address spaces.
 *
 * One vmm_t manages the kernel's heap, kernel-stack and MMIO regions of a
 * layout_t, mapping through a page mapper (page_mapper.h) into the kernel
 * root table and taking frames from a frame allocator (frame_alloc.h). It
 * knows page tables and frames only through those interfaces.
 *
 * All-or-nothing: every operation that fails (out of frames, out of
 * page-table memory, region exhausted, mapper refusal) leaves the frames,
 * the page tables and the region exactly as before: what it mapped is
 * unmapped, flushed, and its frames and virtual range are given back.
 *
 * Resource objects (vmm_stack_t, vmm_mmio_t, vmm_as_t) carry their own
 * cleanup: *_release() runs it once and is a no-op afterwards, so they can be
 * declared with MM_SCOPED(vmm_stack_release) etc. A failed create leaves the
 * object in the released state, so a scoped release after a failure is safe.
 *
 * Handle identity: these objects are plain structs a caller may copy, so
 * the VMM does not trust them. Each live object has a record in the VMM (a
 * serial number unique for the vmm_t's lifetime, and what it maps); a handle
 * is obeyed only if it names a live record of its kind in its own,
 * initialised, not copied vmm_t and every field matches. Anything else is a
 * stale copy (its object was released, perhaps its slot reused) or a forged
 * handle: the call returns MM_ERR_STALE, changes nothing and reports it to
 * mm_hook_warn (with no hadron-mm lock held), like a double free. Releasing
 * the same struct twice stays a no-op: the first release marks it released.
 *
 * Locking and lock order
 * ----------------------
 *   kheap lock  ->  address-space lock  ->  VMM lock  ->  frame-allocator lock
 *
 * - The VMM lock (an IRQ-saving spinlock) serialises every change to the
 *   kernel half of the page tables and to the three regions. The mapper
 *   allocates table frames while it is held, so the frame allocator's own
 *   lock nests inside it; the frame allocator must never call into the VMM.
 * - Data frames (heap, stack, user) are allocated and zeroed before the VMM
 *   lock is taken and freed after it is dropped, so the lock is held only for
 *   page-table edits, never for memset or long allocator work.
 * - TLB flushes (mm_tlb_batch_flush -> the kernel's TLB hooks, which may send
 *   shootdown IPIs) are made only with no hadron-mm lock held, always before
 *   unmapped frames are freed and before an unmapped virtual range is handed
 *   out again, so no CPU can reach a reused frame through a stale entry.
 *   Page-table frames the mapper unlinks are freed by that same flush. One
 *   exception: an operation that unlinks more than MM_TLB_BATCH_DEFER_MAX
 *   table frames under one lock hold (unmapping some 32 MiB or more of
 *   4 KiB pages at once: releasing a very large MMIO mapping or heap
 *   range, rolling back a very large heap growth, stack or vmm_as_map_anon) flushes early
 *   inside the mapper (mm_tlb_batch_defer_free), with the VMM or
 *   address-space lock held and interrupts disabled. A kernel whose
 *   shootdown waits for other CPUs must not deadlock there against a CPU
 *   spinning on that lock with interrupts disabled.
 * - A kernel heap that grows through vmm_heap_grow() may hold its own lock
 *   while calling it; the VMM never allocates from the kernel heap, so the
 *   order above cannot be reversed. vmm_heap_release() flushes the TLB, so it
 *   must be called with no hadron-mm lock held (the heap drops its own
 *   first). No vmm_* function may be called from the frame allocator or from
 *   a TLB hook.
 * - vmm_classify_fault() takes no lock (a fault handler may run while its own
 *   CPU holds the VMM lock).
 *
 * Every public function validates its arguments first; a caller mistake is
 * an error status with no state changed. Internal corruption (for instance
 * the mapper failing to unmap a page the VMM mapped) is an MM_ASSERT.
 */
#ifndef HADRON_MM_VMM_H
#define HADRON_MM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/cpuset.h>
#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/layout.h>
#include <hadron/mm/page_mapper.h>
#include <hadron/mm/spinlock.h>
#include <hadron/mm/status.h>
#include <hadron/mm/types.h>
#include <hadron/mm/vmm_region.h>

/* Tunables. */
#define VMM_HEAP_MIN_GROWTH (64 * MM_KIB)   /* smallest heap growth */
#define VMM_HEAP_INITIAL_SIZE (4 * MM_MIB)  /* vmm_heap_init() default */
#define VMM_STACK_DEFAULT_SIZE (64 * MM_KIB) /* usable bytes per kernel stack */
#define VMM_STACK_GUARD_SIZE MM_PAGE_SIZE   /* unmapped page below each stack */
#define VMM_DEFAULT_RANGE_SLOTS 64u         /* built-in free-list capacity */
#define VMM_DEFAULT_HANDLES 256u            /* built-in live stacks + MMIO mappings */
#define VMM_DEFAULT_SPACES 64u              /* built-in live address spaces */
#define VMM_MAX_RECORDS 0x7fffffffu         /* largest record table */

/* The VMM's record of one live kernel stack or MMIO mapping: what a handle
 * must match to be obeyed. Private; public only so that vmm_t can embed the
 * built-in table and a caller can supply a larger one. */
typedef struct vmm_handle_rec {
    uint64_t serial;    /* 0: free */
    mm_vaddr_t base;    /* start of the virtual range (stack: its guard page) */
    mm_paddr_t phys;    /* MMIO: as requested */
    uint64_t size;      /* MMIO: as requested */
    uint32_t next_free; /* free-record chain */
    uint8_t kind;
    uint8_t state;
} vmm_handle_rec_t;

/* The VMM's record of one live address space; it also holds the space's
 * lock, so every copy of a handle serialises on the same lock. Private. */
typedef struct vmm_space_rec {
    uint64_t serial;    /* 0: free; written under `lock` */
    mm_paddr_t root;
    mm_spinlock_t lock; /* the address-space lock */
    mm_leaf_fn leaf_fn; /* called for each user leaf at release */
    void *leaf_arg;
    uint32_t next_free; /* free-record chain, under the VMM lock */
    mm_asid_t asid;     /* the space's identity (vmm_as_create) */
    /* CPUs where the space is or has been current since its identity was
     * last flushed everywhere (vmm_as_switch adds, vmm_as_create clears):
     * the set its TLB batches reach. Atomic, no lock. */
    mm_cpuset_t cpus;
} vmm_space_rec_t;

typedef struct vmm_config {
    const layout_t *layout;       /* regions; copied */
    mm_paddr_t kernel_root;       /* physical address of the kernel's root table */
    mm_page_mapper_t mapper;      /* copied; ops must stay valid */
    mm_frame_allocator_t frames;  /* copied; the mapper should use the same one */
    uint64_t stack_size;          /* 0: VMM_STACK_DEFAULT_SIZE; else a page multiple */
    /* Free-list storage for the heap, stack and MMIO regions. NULL: the
     * VMM_DEFAULT_RANGE_SLOTS slots built into vmm_t. The array must outlive
     * the vmm_t. One slot per hole between live ranges is needed (for the
     * heap: per released range that touches neither another released range
     * nor the top of the heap). */
    vmm_range_t *heap_slots;
    size_t heap_slot_count;
    vmm_range_t *stack_slots;
    size_t stack_slot_count;
    vmm_range_t *mmio_slots;
    size_t mmio_slot_count;
    /* Records of live objects: one per live stack or MMIO mapping
     * (`handles`), one per live address space (`spaces`). NULL: the
     * VMM_DEFAULT_HANDLES / VMM_DEFAULT_SPACES built into vmm_t. A caller
     * array (1 .. VMM_MAX_RECORDS entries) is cleared by vmm_init and must
     * outlive the vmm_t. When a table is full, creation fails with
     * MM_ERR_FULL. */
    vmm_handle_rec_t *handles;
    size_t handle_count;
    vmm_space_rec_t *spaces;
    size_t space_count;
    /* Address-space identities the CPU offers (mm_asid_t: x86_64 with PCIDs
     * 4096, AArch64 256 or 65536), identity 0 being the kernel's. 0 or 1:
     * none, every address space runs untagged with MM_ASID_KERNEL. See
     * vmm_as_create for how they are handed out. */
    uint32_t asids;
} vmm_config_t;

typedef struct vmm_stats {
    uint64_t heap_bytes;     /* heap mapped now: grown minus released */
    uint64_t heap_released;  /* heap bytes released so far (never shrinks) */
    uint64_t stacks;         /* live kernel stacks */
    uint64_t mmio_mappings;  /* live MMIO mappings */
    uint64_t mmio_pages;     /* pages of MMIO address space they hold */
    uint64_t data_frames;    /* frames owned by heap and stacks (not tables) */
    uint64_t stranded_bytes; /* see vmm_stats() */
} vmm_stats_t;

typedef struct vmm {
    const struct vmm *self;      /* this vmm_t: a struct copy is not a VMM */
    mm_spinlock_t lock;
    layout_t layout;
    mm_paddr_t kernel_root;
    mm_page_mapper_t mapper;
    mm_frame_allocator_t frames;
    uint64_t stack_size;
    uint64_t stack_slot;         /* guard + stack: every stack range has this size */
    vmm_region_freelist_t heap;
    vmm_region_freelist_t stacks;
    vmm_region_freelist_t mmio;
    vmm_stats_t stats;
    bool ready;
    uint64_t next_serial;        /* odd, never 0; shared by both tables */
    vmm_handle_rec_t *handles;   /* stacks and MMIO, under the VMM lock */
    uint32_t handle_count, handle_used, handle_free;
    vmm_space_rec_t *spaces;     /* address spaces */
    uint32_t space_count, space_used, space_free;
    uint32_t asids;              /* vmm_config_t.asids */
    vmm_range_t builtin_heap_slots[VMM_DEFAULT_RANGE_SLOTS];
    vmm_range_t builtin_stack_slots[VMM_DEFAULT_RANGE_SLOTS];
    vmm_range_t builtin_mmio_slots[VMM_DEFAULT_RANGE_SLOTS];
    vmm_handle_rec_t builtin_handles[VMM_DEFAULT_HANDLES];
    vmm_space_rec_t builtin_spaces[VMM_DEFAULT_SPACES];
} vmm_t;

/* Sets up *vmm from cfg and pre-creates the top-level page-table entries
 * over the whole span from the lowest to the highest of the heap, stack and
 * MMIO regions (one prepopulate_top call, so all or nothing). Address spaces
 * created later copy those entries and so share every kernel mapping the
 * VMM makes afterwards. *vmm must not be live: there is no reliable way to
 * tell a live instance from uninitialised memory, so re-initialising one is
 * not detected (as with every *_init in hadron-mm).
 * The layout is re-validated field by field, since it may be hand-made:
 * paging_levels, upper_half_start and all five regions.
 * Errors (nothing changed, *vmm and the caller's record arrays untouched):
 *   MM_ERR_INVALID   vmm/cfg/layout NULL, a mapper op or frame-allocator
 *                    function NULL, record array with a count of 0 or above
 *                    VMM_MAX_RECORDS, kernel_root 0, layout paging_levels not
 *                    4 or 5, upper_half_start not the upper half's first
 *                    address for those levels, a region (any of the five)
 *                    empty or below upper_half_start, stack_size + guard
 *                    not fitting the stack region
 *   MM_ERR_ALIGN     kernel_root, a region or stack_size not page aligned
 *   MM_ERR_RANGE     a region wraps past 2^64
 *   MM_ERR_OVERLAP   two of the five regions overlap (e.g. heap and HHDM)
 *   MM_ERR_NOMEM / MM_ERR_NOT_CANONICAL   from prepopulate_top
 * Not thread-safe (call once, before anything else uses *vmm). O(records)
 * plus the mapper's prepopulate. A struct copy of the initialised vmm_t is
 * not a VMM: every call on it returns MM_ERR_STATE. */
mm_status_t vmm_init(vmm_t *vmm, const vmm_config_t *cfg);

/* Current counters. stranded_bytes counts virtual space a failed operation
 * or a heap release could not give back because, in the window where the
 * VMM lock is dropped for the TLB flush, concurrent operations filled the
 * free list. It stays allocated (never handed out twice) and is always 0
 * without concurrency. Takes the VMM lock; O(1). */
void vmm_stats(vmm_t *vmm, vmm_stats_t *out);

/* Runs the region checkers and the VMM's own accounting checks, including
 * the handle records of stacks and MMIO mappings against the regions and
 * the stats. MM_OK or MM_ERR_CORRUPT (MM_ERR_INVALID for NULL, MM_ERR_STATE
 * before vmm_init or on a struct copy). Takes the VMM lock; O(free-list
 * slots + handle records * log(free-list slots)). */
mm_status_t vmm_check(vmm_t *vmm);

/* ------------------------------------------------------------------------
 * Heap growth and release
 * ------------------------------------------------------------------------ */

/* Maps at least `min_bytes` more heap: rounded up to whole pages and to at
 * least VMM_HEAP_MIN_GROWTH, writable, no-execute, global, zeroed (fresh
 * frames, also where the range was released before). The range is the
 * lowest range released by vmm_heap_release that is large enough, else it
 * starts at the top of the heap, where the previous growth ended: until
 * something is released the heap is one contiguous range [heap base, heap
 * base + heap_bytes). Returns the new range in *base and *size.
 * Errors (nothing changed; *base and *size untouched): MM_ERR_INVALID (NULL
 * argument), MM_ERR_STATE (vmm not initialised), MM_ERR_EXHAUSTED (no
 * released range fits and the heap region has too little room above the
 * top; includes min_bytes too large to round), MM_ERR_NOMEM (out of frames
 * or page-table memory), MM_ERR_EXISTS (a page of the new range is already
 * mapped by someone else through the mapper: what was mapped is rolled back,
 * the foreign page stays).
 * Locking: takes the VMM lock (the frame allocator is called outside it);
 * may be called with a kernel-heap lock held. O(pages + heap slots). */
mm_status_t vmm_heap_grow(vmm_t *vmm, size_t min_bytes, void **base, size_t *size);

/* vmm_heap_grow with the VMM as an untyped context: the shape of a kernel
 * heap's growth callback (ctx = the vmm_t). */
mm_status_t vmm_heap_grow_callback(void *ctx, size_t min_bytes, void **base, size_t *size);

/* Maps the initial heap: `bytes` (0: VMM_HEAP_INITIAL_SIZE), rounded like
 * vmm_heap_grow. Errors as vmm_heap_grow, plus MM_ERR_STATE if the heap has
 * grown and not released everything since. Locking and complexity as
 * vmm_heap_grow. */
mm_status_t vmm_heap_init(vmm_t *vmm, size_t bytes, void **base, size_t *size);

/* Gives whole heap pages back: unmaps [base, base + size), flushes the TLB,
 * frees the frames to the frame allocator and makes the range available to
 * later growths (merged with released neighbours; a range that ends at the
 * top of the heap lowers the top). The range may be any page-aligned part of
 * what growths returned (several growths, or the middle of one) as long as
 * every page of it is held by the heap now. The caller must not touch the
 * range once the call begins, and keeps it if the call fails.
 * Errors (nothing changed, nothing unmapped):
 *   MM_ERR_INVALID   vmm NULL, base NULL, size 0
 *   MM_ERR_STATE     vmm not initialised
 *   MM_ERR_ALIGN     base or size not a multiple of 4 KiB (warned)
 *   MM_ERR_RANGE     a page of the range is not held by the heap: outside
 *                    the heap region, above the top (never grown), already
 *                    released, or being released by another CPU (warned:
 *                    MM_REPORT_DOUBLE_FREE when it overlaps a released
 *                    range below the top or pages being released, else
 *                    MM_REPORT_BAD_POINTER)
 *   MM_ERR_FULL      the range touches neither a released range nor the top
 *                    and all heap slots (vmm_config.heap_slots) are in use;
 *                    retry after other releases, or keep it
 * The warning goes to mm_hook_warn with no hadron-mm lock held.
 * Once the pages are unmapped the call returns MM_OK: if, while the lock was
 * dropped for the flush, concurrent releases used up the last heap slot, the
 * range stays out of reach of later growths and is counted in
 * stranded_bytes (never with one CPU).
 * Locking: takes the VMM lock, drops it for the TLB flush (through the
 * kernel's hooks, which may send shootdown IPIs) and the frame frees, and
 * takes it again to give the range back. Call with no hadron-mm lock held,
 * in particular not with the kernel heap's; not from interrupt context.
 * O(pages * paging levels + heap slots). */
mm_status_t vmm_heap_release(vmm_t *vmm, void *base, size_t size);

/* vmm_heap_release with the VMM as an untyped context: the shape of a
 * kernel heap's release callback (ctx = the vmm_t). */
mm_status_t vmm_heap_release_callback(void *ctx, void *base, size_t size);

/* ------------------------------------------------------------------------
 * Kernel stacks
 * ------------------------------------------------------------------------ */

typedef struct vmm_stack {
    mm_vaddr_t bottom;  /* lowest usable address (just above the guard page) */
    mm_vaddr_t top;     /* one past the highest: the initial stack pointer */
    uint64_t size;      /* top - bottom */
    /* identity, private: checked against the VMM's record on release */
    vmm_t *vmm;         /* NULL: released (or never created) */
    uint64_t serial;
    uint32_t rec;
} vmm_stack_t;

#define VMM_STACK_INIT {0, 0, 0, NULL, 0, 0}

/* Allocates a kernel stack of the VMM's stack size: zeroed, writable,
 * no-execute, global pages with one unmapped guard page below them.
 * Errors (nothing changed; *out left released): MM_ERR_INVALID (NULL),
 * MM_ERR_STATE (vmm not initialised), MM_ERR_EXHAUSTED (stack region full),
 * MM_ERR_NOMEM (frames or page-table memory; checked first), MM_ERR_FULL
 * (the handle-record table is full), MM_ERR_EXISTS (a foreign mapping in
 * the slot: rolled back, the foreign page stays).
 * Locking: VMM lock, frames allocated outside it. O(pages + free slots). */
mm_status_t vmm_stack_create(vmm_t *vmm, vmm_stack_t *out);

/* Unmaps the stack, flushes the TLB, frees its frames and gives back its
 * range, once, and marks *stack released. A NULL or released stack is a
 * no-op returning MM_OK. If the stack region's free list is full
 * (MM_ERR_FULL) the pages are already gone but the range stays allocated
 * and the handle stays live: a later release (of it or of a copy) retries
 * just that. Must not be called on the stack in use.
 * MM_ERR_STALE (warned, nothing changed): the handle is not a live stack of
 * its vmm_t: a copy of a released stack (whether or not its slot was
 * reused), a field changed, a vmm pointer to another, uninitialised or
 * copied vmm_t, or a release of the same stack already in progress.
 * Locking: VMM lock, dropped for the flush and the frame frees. O(pages +
 * free slots). */
mm_status_t vmm_stack_release(vmm_stack_t *stack);

/* ------------------------------------------------------------------------
 * MMIO
 * ------------------------------------------------------------------------ */

typedef enum vmm_mmio_cache {
    VMM_MMIO_DEVICE,          /* device registers: MM_MAP_DEVICE */
    VMM_MMIO_WRITE_COMBINING, /* framebuffers: MM_MAP_WRITE_COMBINING */
    VMM_MMIO_CACHE_COUNT
} vmm_mmio_cache_t;

typedef struct vmm_mmio {
    volatile void *ptr; /* the virtual address of `phys` (in-page offset kept) */
    mm_paddr_t phys;    /* as requested */
    uint64_t size;      /* as requested */
    uint64_t pages;     /* pages mapped: every page [phys, phys + size) touches */
    /* identity, private: checked against the VMM's record on release */
    vmm_t *vmm;         /* NULL: released (or never created) */
    uint64_t serial;
    uint32_t rec;
} vmm_mmio_t;

#define VMM_MMIO_INIT {NULL, 0, 0, 0, NULL, 0, 0}

/* Maps the physical range [phys, phys + size) into the MMIO region:
 * writable, no-execute, global, device memory or write-combining. Any phys and
 * size are fine: every page the range touches is mapped and out->ptr points
 * at phys itself, not at its page.
 * Errors (nothing changed; *out left released): MM_ERR_INVALID (NULL, size
 * 0, unknown cache mode), MM_ERR_STATE (vmm not initialised), MM_ERR_RANGE
 * (phys + size wraps past 2^64, or the mapper rejects the physical address),
 * MM_ERR_EXHAUSTED (MMIO region full), MM_ERR_FULL (the handle-record
 * table is full), MM_ERR_NOMEM (page-table memory),
 * MM_ERR_UNSUPPORTED (cache mode the CPU lacks), MM_ERR_EXISTS (a foreign
 * mapping in the range: rolled back, the foreign page stays).
 * Locking: VMM lock. O(pages + free slots). */
mm_status_t vmm_mmio_map(vmm_t *vmm, mm_paddr_t phys, uint64_t size, vmm_mmio_cache_t cache,
                         vmm_mmio_t *out);

/* Unmaps, flushes and gives back the range, once; NULL or released: no-op,
 * MM_OK. MM_ERR_FULL as vmm_stack_release (retry later). MM_ERR_STALE
 * (warned, nothing changed) as vmm_stack_release: not a live mapping of its
 * vmm_t, or a field (ptr, phys, size, pages, identity) changed.
 * Locking: VMM lock, dropped for the flush. O(pages + free slots). */
mm_status_t vmm_mmio_release(vmm_mmio_t *mmio);

/* ------------------------------------------------------------------------
 * Page-fault classification
 * ------------------------------------------------------------------------ */

typedef enum vmm_fault_kind {
    VMM_FAULT_NONE,         /* non-canonical, or a gap between regions */
    VMM_FAULT_USER,         /* the user half */
    VMM_FAULT_HHDM,
    VMM_FAULT_HEAP,
    VMM_FAULT_STACK,        /* a stack page (or an unused stack slot) */
    VMM_FAULT_STACK_GUARD,  /* the guard page below a stack: a stack overflow */
    VMM_FAULT_MMIO,
    VMM_FAULT_KERNEL_IMAGE,
    VMM_FAULT_KIND_COUNT
} vmm_fault_kind_t;

typedef struct vmm_fault_info {
    vmm_fault_kind_t kind;
    /* For VMM_FAULT_STACK and VMM_FAULT_STACK_GUARD: the bounds of the
     * stack that slot holds (or would hold), as in vmm_stack_t. */
    mm_vaddr_t stack_bottom;
    mm_vaddr_t stack_top;
} vmm_fault_info_t;

/* What `va` is, for a page-fault handler. Stacks all have the VMM's stack
 * size and the free list hands out whole slots, so every stack sits on a
 * fixed grid of (guard + stack)-sized slots from the region base: the guard
 * page is found by arithmetic, with no lock and no search. `info` may be
 * NULL. Returns VMM_FAULT_NONE for a NULL or uninitialised vmm.
 * Locking: none (reads only what vmm_init set). O(1). */
vmm_fault_kind_t vmm_classify_fault(const vmm_t *vmm, mm_vaddr_t va, vmm_fault_info_t *info);

/* Static name of a fault kind ("stack-guard", ...; "unknown" out of range).
 * Never NULL; no lock; O(1). */
const char *vmm_fault_kind_str(vmm_fault_kind_t kind);

/* ------------------------------------------------------------------------
 * User address spaces
 * ------------------------------------------------------------------------ */

typedef struct vmm_as {
    mm_paddr_t root;    /* physical address of this space's root table */
    mm_asid_t asid;     /* its identity (MM_ASID_KERNEL: untagged); read-only */
    /* identity, private: checked against the VMM's record on every call;
     * the lock, leaf callback and root that are obeyed live in the record */
    vmm_t *vmm;         /* NULL: released (or never created) */
    uint64_t serial;
    uint32_t rec;
} vmm_as_t;

#define VMM_AS_INIT {0, 0, NULL, 0, 0}

/* A ready-made leaf callback for vmm_as_create: gives every user page's
 * frames (512 for a 2 MiB page) back to the VMM's frame allocator. leaf_arg
 * must be the vmm_t. Use it when every user page came from vmm_as_map_anon
 * or from that allocator; pass your own callback for shared or device
 * pages. A refused free is corruption (asserted). Runs from
 * vmm_as_release with no hadron-mm lock held, takes the frame allocator's;
 * O(1) calls. */
void vmm_as_leaf_free_frames(void *vmm, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                             mm_map_flags_t flags);

/* Creates an address space: a new root table whose user half is empty and,
 * when the kernel half shares the user root (va_space.h; x86_64), whose
 * kernel half shares the kernel root's top-level entries (so every kernel
 * mapping the VMM makes, now or later, is visible in it); with a separate
 * kernel root (AArch64 TTBR1) the root holds the user half only. At release
 * `leaf_fn` (may be NULL: frames are the caller's business) is called for
 * every user page still mapped.
 * Identity: the space gets identity 1 + its record index when that is below
 * cfg->asids, else MM_ASID_KERNEL (untagged). So identities are bounded by
 * both tables, distinct among live spaces, and an identity is reused only
 * with its record, i.e. after vmm_as_release retired it. Every TLB batch of
 * the space carries it, and vmm_as_switch passes it to the hook.
 * Errors (*out left released): MM_ERR_INVALID (NULL), MM_ERR_STATE (vmm not
 * initialised), MM_ERR_FULL (the address-space record table is full),
 * MM_ERR_NOMEM (no frame for the root).
 * Locking: VMM lock (the mapper reads the kernel root). O(top-level entries). */
mm_status_t vmm_as_create(vmm_t *vmm, mm_leaf_fn leaf_fn, void *leaf_arg, vmm_as_t *out);

/* Every call below that takes a vmm_as_t refuses a stale or forged one:
 * MM_ERR_STATE for a released struct (vmm NULL), MM_ERR_STALE (warned,
 * nothing changed) when it does not name a live address space of an
 * initialised, not copied vmm_t, or its root or identity does not match.
 * The identity is checked under the address-space lock, after the other
 * arguments, so no stale copy can reach a freed or reused root. */

/* Maps one user page of `size` at va -> pa. MM_MAP_USER is implied; flags
 * may combine MM_MAP_WRITE, MM_MAP_EXEC and the cache flags.
 * Errors (nothing changed): MM_ERR_INVALID (NULL, unknown page size,
 * unknown flags, MM_MAP_GLOBAL: a global user page would survive address-
 * space switches), MM_ERR_STATE (released), MM_ERR_RANGE (va in the kernel
 * half), MM_ERR_NOT_CANONICAL (va in the non-canonical hole), MM_ERR_ALIGN
 * (va or pa not aligned to size), and the mapper's errors (MM_ERR_EXISTS,
 * MM_ERR_NOMEM, MM_ERR_RANGE, MM_ERR_UNSUPPORTED).
 * Locking: the address-space lock. O(paging levels). */
mm_status_t vmm_as_map(vmm_as_t *as, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                       mm_map_flags_t flags);

/* Maps `pages` zeroed 4 KiB pages from the VMM's frame allocator at va,
 * all or nothing. Flags and errors as vmm_as_map (MM_ERR_INVALID also for
 * pages 0, MM_ERR_RANGE also when the range runs into the kernel half or
 * the hole). If any page in the range is already mapped, MM_ERR_EXISTS and
 * nothing changed. Locking: the address-space lock, frames allocated and
 * freed outside it. O(pages). */
mm_status_t vmm_as_map_anon(vmm_as_t *as, mm_vaddr_t va, size_t pages, mm_map_flags_t flags);

/* Unmaps the user page of `size` at va and returns its frame in *pa_out
 * (may be NULL); the TLB is flushed before this returns, so the caller may
 * free the frame at once. Errors (nothing changed): MM_ERR_INVALID,
 * MM_ERR_STATE, MM_ERR_RANGE, MM_ERR_NOT_CANONICAL, MM_ERR_ALIGN as
 * vmm_as_map; MM_ERR_NOT_MAPPED, MM_ERR_SIZE_MISMATCH from the mapper.
 * Locking: the address-space lock, dropped before the flush. O(levels). */
mm_status_t vmm_as_unmap(vmm_as_t *as, mm_vaddr_t va, mm_page_size_t size, mm_paddr_t *pa_out);

/* Replaces the attributes of the user page of `size` at va (MM_MAP_USER
 * implied), flushing before it returns. Errors as vmm_as_map for the flags
 * and as vmm_as_unmap for the page. Locking: the address-space lock.
 * O(levels). */
mm_status_t vmm_as_protect(vmm_as_t *as, mm_vaddr_t va, mm_page_size_t size,
                           mm_map_flags_t flags);

/* Translates a user address. Errors: MM_ERR_INVALID (NULL), MM_ERR_STATE,
 * MM_ERR_RANGE (kernel half), MM_ERR_NOT_CANONICAL, MM_ERR_NOT_MAPPED.
 * Locking: the address-space lock. O(levels). */
mm_status_t vmm_as_translate(vmm_as_t *as, mm_vaddr_t va, mm_translation_t *out);

/* Makes this address space current on this CPU through
 * mm_hook_switch_root(root, identity). Errors: MM_ERR_INVALID (NULL), MM_ERR_STATE (released), MM_ERR_STALE.
 *
 * Shootdown set: before the hook, the calling CPU (mm_hook_cpu_index, read
 * with interrupts disabled, which they stay until the hook returns) joins
 * the space's CPU set, and every later flush of the space's pages reaches
 * it (cpuset.h: the ordering). The set only grows while the space lives:
 * a CPU that switched away may still hold entries tagged with the space's
 * identity. What empties it is the one full flush of that identity on
 * every CPU, its retirement in vmm_as_release (or, for an untagged space,
 * each CPU's switch to identity 0): a new space on the record starts with
 * an empty set, so its flushes reach no CPU until it first runs. A CPU
 * without an index (>= HADRON_MM_MAX_CPUS) marks the set "all CPUs".
 *
 * Takes the address-space lock to check the handle and join the set, calls
 * the hook without it; O(HADRON_MM_MAX_CPUS / 64). Any context where the
 * caller may switch roots; the caller must not migrate to another CPU
 * between this call and its return (interrupts are disabled across it). */
mm_status_t vmm_as_switch(vmm_as_t *as);

/* Makes the kernel's view current on this CPU (before releasing the address
 * space that was current): mm_hook_switch_root(kernel root, MM_ASID_KERNEL)
 * when the kernel half shares the user root, mm_hook_switch_root(0,
 * MM_ASID_KERNEL) (no user half) when it has its own. Errors:
 * MM_ERR_INVALID, MM_ERR_STATE. O(1). */
mm_status_t vmm_switch_to_kernel(vmm_t *vmm);

/* Destroys the address space once: marks its record dead (every later use
 * of any copy of the handle is MM_ERR_STALE), retires its identity through
 * mm_hook_asid_retire (unless it ran untagged), then calls the leaf
 * callback for every user page, frees every user-half page-table page and
 * the root, frees the record and marks *as released. NULL or released:
 * no-op, MM_OK. The caller must have switched every CPU away from it first;
 * a switch does not drop its TLB entries (they are tagged with its
 * identity), which is why the identity is retired before any of its table
 * frames or the identity itself can be reused. MM_ERR_STALE (warned,
 * nothing freed): a copy of a released space, or a forged handle (root,
 * identity or vmm changed).
 * Locking: the address-space lock to check the handle and mark the record
 * dead; the retire hook, the leaf callback (which must not use this address
 * space) and the frees run with no hadron-mm lock held (the dead record
 * keeps everyone else out); then the VMM lock to free the record.
 * O(mapped pages + tables). */
mm_status_t vmm_as_release(vmm_as_t *as);

#endif /* HADRON_MM_VMM_H */
