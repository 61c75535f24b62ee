/*
 * hadron-mm pmm: bitmap physical frame allocator.
 *
 * One bit per 4 KiB frame, stored in HHDM memory inside a usable range that
 * the allocator then reserves for itself. Beside the free bitmap it keeps:
 *
 *  - a "usable" bitmap: which frames it manages at all, so freeing a frame
 *    that was never RAM (a firmware hole, the bitmap itself, frame 0) is told
 *    apart from a double free. It is interleaved with the free bitmap word
 *    by word, so validating a free costs one cache line, not two;
 *  - a summary tree over the free bitmap (bit i of level k says "word i of
 *    level k-1 has a free frame"), so a single-frame allocation costs a few
 *    count-trailing-zeros however full memory is;
 *  - a second summary tree whose base has one bit per bitmap word that is
 *    entirely free, so a contiguous request of 127+ frames (or 64+ aligned to
 *    64) only ever looks at runs of whole free words and, when memory is
 *    fragmented, fails after looking at a handful of words;
 *  - per 4096-frame chunk an upper bound of its longest free run, raised in
 *    O(1) on free and tightened when a search scans the chunk, so a small
 *    contiguous request skips chunks that cannot hold it.
 *
 * Frame 0 is never handed out (a zero physical address reads as "none" too
 * often). Every public function runs with interrupts disabled and takes the
 * instance lock, or, for single frames, no lock at all (the calling CPU's
 * cache: see below), so one instance can be shared by every CPU and by
 * interrupt handlers. Caller
 * mistakes return a status and leave the allocator exactly as it was;
 * broken internal invariants and poisoned frames that were written after
 * free go to the panic hook.
 *
 * Per-CPU caches: pmm_alloc and pmm_free of single frames go through a
 * small stack of frames owned by the calling CPU (mm_hook_cpu_index), with
 * no lock: the CPU marks itself inside its cache, and anything that must
 * see or change caches first holds them all out of use (a handshake, like
 * kmem_cache's fronts: pcp.c), so CPUs do not meet on a shared lock or
 * counter. The bitmap is visited once per PMM_PCP_BATCH frames, to refill
 * an empty cache or to take the coldest frames off one at its high-water
 * mark. Cached frames are free memory (pmm_get_stats, pmm_frame_state);
 * whatever needs them (an allocation that would fail, a contiguous request,
 * pmm_reserve, pmm_drain) drains the caches first, so MM_ERR_NOMEM means no
 * CPU held a free frame (one exception: "Holding the caches" below). A CPU
 * index >= HADRON_MM_MAX_CPUS takes the locked path. A double free is caught
 * whether the frame is free in the bitmap or sitting in any cache: a third
 * bitmap says which frames are allocated, and freeing clears that bit with
 * one atomic operation, so of two frees of one frame, even racing on two
 * CPUs, exactly one succeeds.
 *
 * Holding the caches: with the asymmetric_barrier option a CPU enters its
 * cache with a compiler barrier only, and a context that must reach every
 * cache (a drain, pmm_check, pmm_reserve over a cached frame) calls
 * mm_hook_cpu_barrier first. When the hook refuses (a kernel that cannot
 * interrupt the other CPUs from the caller's context), or when the caller
 * interrupted its own CPU inside that CPU's cache (an NMI handler), the
 * caches cannot be reached: pmm_drain, pmm_check and such a pmm_reserve
 * return MM_ERR_UNSUPPORTED with nothing changed, and an allocation that
 * needed the caches fails with MM_ERR_NOMEM although other CPUs may still
 * hold up to PMM_PCP_HIGH free frames each. The hook is called with
 * interrupts as the caller of the PMM left them; a kernel whose hook never
 * refuses (NMIs), or a build without the option (full fences instead), has
 * no exception.
 *
 * Poisoning (option pmm_poison, HADRON_MM_PMM_POISON): a freed frame is
 * filled with 0xDEADDEAD and marked "poisoned" in a third bitmap; allocating
 * a poisoned frame verifies all 1024 32-bit words, the first one included,
 * and reports the first bad one through the panic hook (MM_REPORT_POISON:
 * address = the frame, offset = byte offset of the bad 32-bit word, found =
 * its value, expected = 0xDEADDEAD). Frames that were never freed since
 * initialisation (or that came back through pmm_release) are not poisoned:
 * nobody has used them through this allocator, so there is nothing to
 * detect, and poisoning all free memory at boot would cost seconds on large
 * machines. Tracking the state per frame, rather than guessing it from the
 * first word, is what lets a write to word 0 be caught.
 *
 * Typical kernel use:
 *
 *     static pmm_t pmm;                        // zero-initialised (.bss)
 *     const pmm_range_t keep[] = {             // what the bootloader may call
 *         {kernel_phys, kernel_size},          // usable but must survive
 *         {boot_info_phys, boot_info_size},
 *     };
 *     pmm_init(&pmm, map, n, keep, 2);         // after hhdm_init()
 *     mm_frame_allocator_t fa = pmm_frame_allocator(&pmm);
 *
 * The ranges to keep are passed to pmm_init, not reserved afterwards: the
 * metadata is written during pmm_init, and a range the map calls usable
 * could be where it lands. pmm_reserve of a range overlapping the metadata
 * is refused (MM_ERR_OVERLAP) for the same reason.
 */
#ifndef HADRON_MM_PMM_H
#define HADRON_MM_PMM_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/config.h>
#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/spinlock.h>
#include <hadron/mm/status.h>
#include <hadron/mm/types.h>

/* Memory-map entry types. The numbering matches Limine's memory map so a
 * kernel booted by Limine can copy the type field; other bootloaders map
 * theirs (e820: 1 usable, 3 ACPI reclaimable, 4 ACPI NVS, 5 bad, others
 * reserved). Everything but PMM_REGION_USABLE is reserved at
 * initialisation; reclaimable ranges can be handed over later with
 * pmm_release(). */
typedef enum pmm_region_type {
    PMM_REGION_USABLE = 0,
    PMM_REGION_RESERVED = 1,
    PMM_REGION_ACPI_RECLAIMABLE = 2,
    PMM_REGION_ACPI_NVS = 3,
    PMM_REGION_BAD_MEMORY = 4,
    PMM_REGION_BOOTLOADER_RECLAIMABLE = 5,
    PMM_REGION_KERNEL_AND_MODULES = 6,
    PMM_REGION_FRAMEBUFFER = 7,
    PMM_REGION_TYPE_COUNT
} pmm_region_type_t;

/* One bootloader memory-map entry: [base, base + length). Entries may come
 * in any order, overlap, be unaligned or empty. */
typedef struct pmm_region {
    mm_paddr_t base;
    uint64_t length;
    pmm_region_type_t type;
} pmm_region_t;

/* A physical range [base, base + length) the caller owns: pmm_init keeps
 * its frames (rounded outward) reserved and its metadata out of them. */
typedef struct pmm_range {
    mm_paddr_t base;
    uint64_t length;
} pmm_range_t;

/* What a frame is, as seen by pmm_frame_state(). */
typedef enum pmm_frame_state {
    PMM_FRAME_FREE,      /* managed and free */
    PMM_FRAME_USED,      /* managed and allocated */
    PMM_FRAME_RESERVED,  /* inside the bitmap's span but never handed out */
    PMM_FRAME_OUTSIDE,   /* beyond the bitmap's span (or not frame aligned) */
} pmm_frame_state_t;

/* A snapshot taken under the instance lock. All counts are frames. Frames
 * in per-CPU caches are free memory: they count in free_frames, and
 * cached_frames says how many of them sit in caches. */
typedef struct pmm_stats {
    uint64_t span_frames;     /* frames the bitmap covers: [0, span) */
    uint64_t usable_frames;   /* managed frames: free + used */
    uint64_t free_frames;     /* free in the bitmap + cached */
    uint64_t cached_frames;   /* of those, held by per-CPU caches */
    uint64_t used_frames;     /* usable - free */
    uint64_t reserved_frames; /* span - usable: holes, firmware, frame 0,
                                 the allocator's metadata, pmm_reserve() */
    mm_paddr_t meta_base;     /* where the bitmaps live (physical) */
    uint64_t meta_frames;     /* how many frames they take */
    uint64_t meta_bytes;      /* bytes actually used in those frames */
} pmm_stats_t;

/* Deepest summary tree: 2^52 frames need 2^46 words, 9 levels of 64. */
#define PMM_MAX_LEVELS 9

/* A summary tree: lvl[0] is the base bitmap; bit i of lvl[k] (k > 0) is set
 * exactly when word i of lvl[k-1] is non-zero; the top level is one word.
 * Internal: exposed only so pmm_t has a known size. */
typedef struct pmm_tree {
    uint64_t *lvl[PMM_MAX_LEVELS];
    uint64_t words[PMM_MAX_LEVELS];
    uint32_t depth;
    uint32_t shift0; /* word w of lvl[0] is lvl[0][w << shift0] */
} pmm_tree_t;

/* Per-CPU frame caches (tunables; each "may be modified" within its
 * comment's bounds).
 *
 * PMM_PCP_HIGH: the high-water mark, frames one CPU's cache may hold. A
 * free that finds the cache at the mark first gives PMM_PCP_BATCH of its
 * coldest frames back to the bitmap; an allocation that finds it empty
 * first takes PMM_PCP_BATCH from the bitmap. One lock hold per batch
 * instead of per frame; at most HIGH * CPUs free frames are out of the
 * bitmap's sight (3 MiB on 64 CPUs), and those are drained whenever an
 * allocation would otherwise fail. 1 <= BATCH <= HIGH. */
#define PMM_PCP_HIGH 48u
#define PMM_PCP_BATCH 16u

/* One CPU's cache: a stack of frames, newest (cache-hot) on top. Aligned to
 * its own cache lines so CPUs never share one. `active` is set by the owner
 * while it is inside the cache (interrupts off); everything else is written
 * by the owner while active, or by a context holding every cache
 * (pmm_t.pcp_holders, pcp.c) under the instance lock. `count` is also read
 * without a lock by pmm_get_stats; `hint` (where this CPU's refills
 * search) is written under the instance lock. Internal: exposed only so
 * pmm_t has a known size. */
typedef struct pmm_pcp {
    alignas(64) unsigned active; /* its gate (gate.h) */
    atomic_uint count;
    uint32_t tag; /* CPU index + 1: the owner mark of the held words it owns */
    uint64_t hint;
    uint64_t frames[PMM_PCP_HIGH]; /* frame number << 1 | "poisoned" */
} pmm_pcp_t;

/* One allocator instance. Its fields are private: use the functions below.
 * The struct is public so a kernel can place it in .bss without a heap. A
 * zero-filled instance is "not initialised" (every call but pmm_init
 * returns MM_ERR_STATE). */
typedef struct pmm {
    mm_spinlock_t lock;
    uint32_t magic;
    const struct pmm *self; /* the initialised instance: a copy is refused */
    uint64_t span_frames;
    uint64_t words;       /* bitmap words: ceil(span / 64) */
    uint64_t chunks;      /* 4096-frame chunks: ceil(words / 64) */
    uint64_t *bm;         /* word pairs: bm[2w] bit i set: frame 64w+i free;
                             bm[2w+1] bit i set: it is managed (free or used) */
    uint64_t *poison_bm;  /* bit set: free and filled with the pattern (poison builds) */
    uint64_t *held_bm;    /* word pairs: held_bm[2w] ^ held_bm[2w+1] bit i
                             set: frame 64w+i is allocated to a caller
                             (neither free in the bitmap nor in a per-CPU
                             cache); [2w] written plainly by its group's
                             owner CPU, [2w+1] by atomic XOR (pmm_internal.h) */
    _Atomic uint16_t *held_owner; /* per 512 frames: the owner's tag, or 0 */
    pmm_tree_t any;       /* summary of the free words (lvl[0] == bm, stride 2) */
    pmm_tree_t full;      /* lvl[0] bit w: free word w is all free */
    uint16_t *chunk_run;  /* per chunk: >= its longest free run */
    uint64_t hint;        /* next single-frame search starts here */
    uint64_t hot;         /* frame last freed by pmm_free, reused first */
    uint64_t free_frames;
    uint64_t usable_frames;
    mm_paddr_t meta_base;
    uint64_t meta_frames;
    uint64_t meta_bytes;
    unsigned pcp_holders; /* contexts holding every cache out of use (gate.h) */
    pmm_pcp_t pcp[HADRON_MM_MAX_CPUS]; /* indexed by mm_hook_cpu_index() */
} pmm_t;

/* ---------------------------------------------------------------------- */
/* Initialisation                                                          */
/* ---------------------------------------------------------------------- */

/* Initialises `pmm` from a bootloader memory map of `count` entries, keeping
 * the `keep_count` ranges of `keep` (may be NULL when keep_count is 0) out
 * of circulation: the kernel image, modules, the boot information, anything
 * the kernel still needs that the map may report as usable.
 *
 * A frame is managed when a usable entry covers all of it and no other entry
 * or kept range touches any byte of it (usable ranges shrink inward to whole
 * frames, reserved entries and kept ranges grow outward; reserved wins).
 * Frame 0 is never managed. The bitmap covers [0, end of the highest usable
 * or reclaimable (bootloader, ACPI) frame), so reclaimable memory at the top
 * of RAM can be handed over later with pmm_release, while reserved entries
 * far above RAM (PCI holes at 1 TiB) cost nothing. The metadata goes in the lowest managed run that fits, preferring
 * runs at or above 16 MiB (ISA DMA memory is scarce), and is reserved; it is
 * never written over a kept range. Neither array is referenced afterwards.
 *
 * Requires hhdm_init() first: the metadata is written through the HHDM, and
 * the whole span must lie inside the HHDM window.
 *
 * Errors (nothing written, `pmm` untouched): MM_ERR_INVALID (NULL pmm or map,
 * count 0, NULL keep with keep_count > 0, unknown type, an entry or kept
 * range wrapping past 2^64); MM_ERR_STATE (HHDM not set, or `pmm` already
 * initialised); MM_ERR_NOMEM (no usable frame, or no managed run large
 * enough for the metadata); MM_ERR_RANGE (the span, usable or reclaimable
 * memory, beyond the HHDM window).
 *
 * Not thread-safe: call once, before sharing `pmm`; the instance must not be
 * moved or copied afterwards (a copy is refused with MM_ERR_STATE). Complexity
 * O((count + keep_count)^2 + span/64): the map is swept without sorting it
 * (no memory to sort into yet; bootloader maps hold tens of entries), and the
 * bitmaps are written a whole word (interior of ranges: a memset) at a time. */
mm_status_t pmm_init(pmm_t *pmm, const pmm_region_t *map, size_t count, const pmm_range_t *keep,
                     size_t keep_count);

/* ---------------------------------------------------------------------- */
/* Allocation                                                              */
/* ---------------------------------------------------------------------- */

/* Allocates one frame; its physical address goes to *out. Contents are
 * unspecified (in poison builds: verified pattern, if it was ever freed).
 *
 * On a CPU with a cache (mm_hook_cpu_index() < HADRON_MM_MAX_CPUS): the
 * frame this CPU freed last comes back first (LIFO); an empty cache first
 * takes PMM_PCP_BATCH frames from the bitmap under the instance lock (next
 * fit from a per-CPU hint; CPUs start on different parts of memory). O(1),
 * plus O(BATCH log64 span) once per batch. Takes no lock and executes no
 * locked instruction on the common path (with asymmetric_barrier); while
 * another context holds the caches it takes the locked path.
 *
 * On the locked path: the frame last given back by pmm_free comes back
 * first while it is still free (it is likely cache-hot, and its bitmap word
 * surely is); otherwise the summary tree is searched from a hint (just
 * after the last allocation, or the lowest frame freed since): O(log64
 * span) whatever the fill. Takes the instance lock.
 *
 * When the bitmap has no free frame, every CPU's cache is drained into it
 * (the caches held) and the allocation is retried: MM_ERR_NOMEM means no
 * CPU held a free frame either (except where the caches cannot be held:
 * "Holding the caches" above). Errors: MM_ERR_INVALID (NULL),
 * MM_ERR_STATE (not initialised), MM_ERR_NOMEM. Panics (MM_REPORT_POISON)
 * when a poisoned frame was written after it was freed. Any context but
 * NMI, interrupt handlers included (every lock is taken with interrupts
 * off). */
mm_status_t pmm_alloc(pmm_t *pmm, mm_paddr_t *out);

/* pmm_alloc, then zero the frame (outside the lock). Every build. */
mm_status_t pmm_alloc_zeroed(pmm_t *pmm, mm_paddr_t *out);

/* Allocates `count` physically contiguous frames whose first frame number is
 * a multiple of `align_frames` (a power of two: 512 for 2 MiB) and whose
 * last byte lies below `limit` (MM_PADDR_MAX: no limit; 4 GiB, 16 MiB for
 * DMA). The lowest such run is taken, except that count 1, align 1 and a
 * limit at or above the span behave exactly as pmm_alloc (the frame
 * allocator interface's single-frame path).
 *
 * Runs of 127+ frames (64+ when aligned to 64) always contain a whole free
 * bitmap word, so they are searched over the tree of whole free words only:
 * one step per maximal run of whole free words, and O(log64 span) when there
 * is none (fragmented memory: an impossible request fails in nanoseconds).
 * Smaller runs are searched chunk by chunk, skipping any chunk whose longest
 * free run is known to be too short: O(span/4096) plus the chunks actually
 * scanned (64 words each). Marking the run costs O(count/64).
 *
 * Runs come from the bitmap only; when none fits and some CPU's cache holds
 * frames, every cache is drained (the caches held) and the search runs
 * once more, so a failure means no run exists among all free frames
 * (except where the caches cannot be held: "Holding the caches" above).
 * Count 1, align 1 without a limit goes through the CPU's cache like
 * pmm_alloc. Errors: MM_ERR_INVALID (NULL, count 0, align 0 or not a power
 * of two), MM_ERR_STATE (not initialised), MM_ERR_NOMEM (no such run; the
 * caches may have been drained). Panics like pmm_alloc on poisoned frames.
 * Takes the instance lock. */
mm_status_t pmm_alloc_contig(pmm_t *pmm, size_t count, size_t align_frames, mm_paddr_t limit,
                             mm_paddr_t *out);

/* pmm_alloc_contig, then zero the run (outside the lock). */
mm_status_t pmm_alloc_contig_zeroed(pmm_t *pmm, size_t count, size_t align_frames,
                                    mm_paddr_t limit, mm_paddr_t *out);

/* ---------------------------------------------------------------------- */
/* Freeing                                                                 */
/* ---------------------------------------------------------------------- */

/* Frees the frame at physical address `frame`: onto the calling CPU's
 * cache (which first gives its PMM_PCP_BATCH coldest frames back to the
 * bitmap when it is at PMM_PCP_HIGH), or, on the locked path, into the
 * bitmap. Double-free detection is always on, whichever CPU's cache holds
 * the frame, and exact even for two frees of one frame racing on two CPUs
 * (one succeeds): the one locked instruction of a cached free. Errors, each leaving the allocator unchanged and (except
 * for MM_ERR_INVALID/MM_ERR_STATE) reported to mm_hook_warn after every
 * lock is dropped: MM_ERR_ALIGN (not 4 KiB aligned), MM_ERR_RANGE (beyond
 * the span), MM_ERR_NOT_USABLE (never managed: hole, firmware, frame 0, the
 * metadata, a reserved range), MM_ERR_DOUBLE_FREE (free, or in a cache).
 * Also MM_ERR_INVALID (NULL), MM_ERR_STATE (not initialised). In poison
 * builds the frame is filled with the pattern. O(1) (plus 4 KiB when
 * poisoning, plus a batch once per PMM_PCP_BATCH frees). On a CPU with a
 * cache takes no lock, unless its cache is full (the instance lock, for
 * the batch); while another context holds the caches, and on a CPU without
 * a cache, the instance lock. A rejected free takes the instance lock to
 * tell the two mistakes apart. */
mm_status_t pmm_free(pmm_t *pmm, mm_paddr_t frame);

/* Frees `count` frames from `base` (any sub-run of what pmm_alloc_contig
 * returned, or single frames that happen to be adjacent) into the bitmap,
 * never a cache. The whole run is validated before anything changes;
 * errors as pmm_free (a frame sitting in a cache is a double free), with
 * MM_ERR_INVALID for count 0 and MM_ERR_RANGE when the run ends beyond the
 * span. When both apply, MM_ERR_NOT_USABLE is reported rather than
 * MM_ERR_DOUBLE_FREE. O(count/64). Takes the instance lock. */
mm_status_t pmm_free_contig(pmm_t *pmm, mm_paddr_t base, size_t count);

/* ---------------------------------------------------------------------- */
/* Reserving and releasing ranges after initialisation                     */
/* ---------------------------------------------------------------------- */

/* Takes [base, base + length), rounded outward to whole frames, out of
 * circulation for good (a firmware table found after initialisation, a
 * range a driver claims). Ranges known at boot (the kernel image, modules,
 * boot information) belong in pmm_init's keep list instead, which keeps the
 * metadata out of them. Frames already reserved stay reserved. Errors
 * (nothing changed): MM_ERR_INVALID (NULL, length 0, range wraps),
 * MM_ERR_STATE (not initialised), MM_ERR_RANGE (the range ends beyond the
 * span), MM_ERR_OVERLAP (the range touches the allocator's own metadata:
 * whatever the caller meant to protect there was already written over),
 * MM_ERR_STATE (some frame in the range is allocated: it is in use and
 * cannot be taken away), MM_ERR_UNSUPPORTED (the range holds a cached frame
 * and the caches cannot be held from here: "Holding the caches" above).
 * Frames of the range sitting in CPUs' caches are free memory: they are
 * taken out of their caches (the caches held, only on success).
 * O(frames/64), plus O(CPUs * PMM_PCP_HIGH) when the range holds a cached
 * frame. Takes the instance lock. */
mm_status_t pmm_reserve(pmm_t *pmm, mm_paddr_t base, uint64_t length);

/* Hands [base, base + length), rounded inward to whole frames, to the
 * allocator as free memory (ACPI or bootloader reclaimable ranges once
 * their contents were consumed, a module no longer needed). The caller
 * vouches that it is RAM. Errors (nothing changed): MM_ERR_INVALID (NULL,
 * length 0, wraps, or no whole frame inside), MM_ERR_STATE (not
 * initialised), MM_ERR_RANGE (ends beyond the span: the bitmap cannot
 * grow), MM_ERR_OVERLAP (covers frame 0 or the allocator's metadata),
 * MM_ERR_EXISTS (some frame is already managed, free or allocated).
 * Released frames are not poisoned. O(frames/64). Takes the lock. */
mm_status_t pmm_release(pmm_t *pmm, mm_paddr_t base, uint64_t length);

/* ---------------------------------------------------------------------- */
/* Per-CPU caches                                                          */
/* ---------------------------------------------------------------------- */

/* Gives every frame held by every CPU's cache back to the bitmap: for a CPU
 * going offline (its cache would otherwise keep up to PMM_PCP_HIGH frames
 * out of circulation until memory runs short), or before measuring memory.
 * Nothing else needs it: allocations that would fail, contiguous requests
 * and pmm_reserve drain by themselves. Errors: MM_ERR_INVALID (NULL),
 * MM_ERR_STATE (not initialised), MM_ERR_UNSUPPORTED (the caches cannot be
 * held from here: "Holding the caches" above; nothing drained). Holds the
 * caches (waiting for each CPU to leave its own), then takes the instance
 * lock, interrupts off; any context a pmm_alloc may run in. O(CPUs *
 * PMM_PCP_HIGH). */
mm_status_t pmm_drain(pmm_t *pmm);

/* ---------------------------------------------------------------------- */
/* Inspection                                                              */
/* ---------------------------------------------------------------------- */

/* Fills *out with a snapshot taken under the instance lock: frames move
 * between the bitmap and the caches only under it, so no frame is counted
 * twice or missed; a cached allocation or free running meanwhile on
 * another CPU counts as before or after it. Exact when no CPU is inside
 * the PMM. Errors: MM_ERR_INVALID (NULL), MM_ERR_STATE (not initialised).
 * O(CPUs) (the caches' counts are summed). Takes the instance lock. */
mm_status_t pmm_get_stats(pmm_t *pmm, pmm_stats_t *out);

/* State of the frame at physical address `frame` (PMM_FRAME_OUTSIDE also
 * for an unaligned address, NULL or an uninitialised pmm). A frame in a
 * CPU's cache is PMM_FRAME_FREE. O(1). Takes the instance lock (a cached
 * allocation or free on another CPU may change the answer right after). */
pmm_frame_state_t pmm_frame_state(pmm_t *pmm, mm_paddr_t frame);

/* Verifies every invariant: free frames are managed, poisoned frames are
 * free, free and managed counts equal the bitmaps' popcounts, no bit is set
 * beyond the span, both summary trees match their base, chunk bounds are at
 * least the real longest runs, frame 0 and the metadata are reserved, the
 * hint is inside the span; allocated frames are managed and not free; every
 * cache entry is a cached frame (managed, neither free nor allocated), no
 * cache holds one twice, and the caches hold exactly as many frames as are
 * in that state; the owner-written half of the held bitmap is zero in
 * every group no CPU owns. Returns MM_OK, or MM_ERR_CORRUPT with a static description of the
 * first broken invariant in *why (may be NULL); MM_ERR_INVALID (NULL pmm),
 * MM_ERR_STATE (not initialised), MM_ERR_UNSUPPORTED (the caches cannot be
 * held from here: "Holding the caches" above). Does not read frame
 * contents. O(span/64 + CPUs * PMM_PCP_HIGH^2). Holds the caches, then
 * takes the instance lock. */
mm_status_t pmm_check(pmm_t *pmm, const char **why);

/* Static name of a region type ("usable", "acpi-reclaimable", ...); never
 * NULL. O(1). */
const char *pmm_region_type_str(pmm_region_type_t type);

/* The core frame-allocator interface backed by `pmm` (which must outlive
 * it): alloc is pmm_alloc_contig, free is pmm_free_contig. O(1), no lock. */
mm_frame_allocator_t pmm_frame_allocator(pmm_t *pmm);

#endif /* HADRON_MM_PMM_H */
