/*
 * hadron-mm paging-x86_64: the x86_64 page-table mapper (4- and 5-level).
 *
 * One x86pt_t describes the CPU (paging levels, NX, 1 GiB pages, physical
 * address width) and where table frames come from; it serves any number of
 * hierarchies, each named by the physical address of its root table, and
 * plugs into the architecture-independent VMM as an mm_page_mapper_t.
 * Tables are reached through the HHDM, so on the host the mapper runs over
 * simulated physical memory exactly as in a kernel.
 *
 * Guarantees (every operation, including the range operations):
 * - A caller mistake or a failed table allocation returns a status and leaves
 *   every table, every count and the frame allocator exactly as before.
 * - Intermediate tables are zeroed before they become reachable and are
 *   published with one 64-bit store after they are complete.
 * - A table whose last entry goes away is unlinked at once, except the
 *   tables hanging off kernel-half root entries: those may be shared by
 *   every address space (root_create copies the entries) and live forever.
 *   Its frame returns to the frame allocator when the caller flushes the
 *   TLB batch (see "Table frames" below).
 * - Every change records the stale translation in the caller's TLB batch
 *   (with `global` when the old entry was global); nothing is flushed here
 *   except by mm_tlb_batch_defer_free when the batch's deferred-free list
 *   is full.
 *
 * Bookkeeping: the number of present entries of each table is kept in bits
 * 52..61 of the entry that points to it. Those bits are ignored by the CPU in
 * every non-leaf entry (Intel SDM vol. 3 tables 4-15/4-16/4-18; AMD APM
 * "AVL"), so the count costs no memory and sits on the path every operation
 * walks anyway. (A count update may drop an accessed bit the CPU sets at
 * the same moment on that non-leaf entry; nothing reads those bits.) Leaf
 * flag changes use compare-exchange, so a leaf's accessed and dirty bits are
 * never lost while it stays mapped. Consequence: the mapper only manages
 * hierarchies it built itself (root_create); the bootloader's tables, whose
 * count bits are zero, are not adopted.
 *
 * Memory types (page_mapper.h). The mapper uses five PAT entries and
 * expects the kernel to program IA32_PAT (MSR 0x277) with X86PT_PAT_MSR on
 * every CPU:
 *   memory type              PAT index  PAT,PCD,PWT  type
 *   MM_MAP_WRITE_BACK (0)    0          0,0,0        WB   (as at reset)
 *   MM_MAP_WRITE_THROUGH     1          0,0,1        WT   (as at reset)
 *   MM_MAP_NORMAL_NC         2          0,1,0        UC-  (as at reset)
 *   MM_MAP_DEVICE            3          0,1,1        UC   (as at reset; strong UC)
 *   MM_MAP_WRITE_COMBINING   4          1,0,0        WC   (reset value: WB)
 * PA0..PA3 and PA5..PA7 keep their reset values, so everything but
 * write-combining means the same before and after the MSR write. The PAT bit
 * is bit 7 in a 4 KiB entry and bit 12 in a 2 MiB / 1 GiB entry. A memory-
 * type field value beyond MM_MEM_DEVICE is MM_ERR_INVALID. Changing the
 * memory type of a present page (protect) is done in place: x86_64 needs no
 * break-before-make (page_mapper.h), the caller's flush is enough.
 *
 * Address space: x86pt_va_space; user [0, 2^47) and kernel [2^64 - 2^47,
 * 2^64) with 4 levels, [0, 2^56) and [2^64 - 2^56, 2^64) with 5, one root
 * for both halves.
 *
 * Policy choices (see also each function):
 * - CPUs without NX (or with EFER.NXE clear): bit 63 is reserved there, so
 *   no-execute cannot be expressed. By default such mappings are made
 *   executable and translate/walk report MM_MAP_EXEC, which is what the CPU
 *   does; with `strict_nx` a request without MM_MAP_EXEC fails with
 *   MM_ERR_UNSUPPORTED instead.
 * - MM_MAP_USER in the kernel half is MM_ERR_INVALID: a user page there
 *   would need the user bit on kernel-half intermediates, which are shared by
 *   every address space.
 * - Intermediate entries are present|writable, never no-execute, and carry
 *   the user bit only on the path to a user-half MM_MAP_USER leaf (added on
 *   demand to an existing user-half intermediate, with a TLB record).
 * - A huge-page request over a present table that holds no entries (count 0)
 *   frees that table and maps the page; over a table holding anything it is
 *   MM_ERR_EXISTS. Only a prepopulated user-half root entry can be empty in a
 *   hierarchy this mapper built, and it is never in the way of a huge page,
 *   so this matters only after external edits.
 *
 * Locking: none inside, and no mutable state in x86pt_t, so different
 * hierarchies can be changed concurrently. Callers serialise all operations
 * on one hierarchy, and all kernel-half changes globally (kernel-half tables
 * are shared).
 *
 * Table frames. A table that unmap (single or range) empties, and an empty
 * table a huge-page map replaces, is unlinked with one store and handed to
 * the caller's batch with mm_tlb_batch_defer_free; the batch also holds an
 * address the table translated (recorded first), and INVLPG of it (or the
 * full flush) drops the paging-structure-cache entries that point at the
 * table. mm_tlb_batch_flush invalidates first and frees the frame after, so
 * no CPU can walk into a frame that already has a new owner (on SMP a stale
 * walk would read that owner's data as entries). Until the flush the frame
 * is left untouched: all non-present, nothing threaded through it. So every
 * batch passed to map, unmap, protect or their range forms must be flushed;
 * a dropped or re-initialised batch leaks those frames. The mapper `m` must
 * outlive that flush (the batch points at m's allocator). protect never
 * unlinks a table. Frames that were never reachable (the up-front reserve
 * rolled back on MM_ERR_NOMEM) and the tables of a destroyed root (see
 * x86pt_root_destroy) are freed at once.
 */
#ifndef HADRON_MM_X86PT_H
#define HADRON_MM_X86PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/page_mapper.h>
#include <hadron/mm/status.h>
#include <hadron/mm/tlb.h>
#include <hadron/mm/types.h>

/* IA32_PAT value matching the table above: PA7..PA0 = UC UC- WT WC UC UC- WT WB. */
#define X86PT_PAT_MSR 0x0007040100070406ull
#define X86PT_PAT_MSR_INDEX 0x277u

/* PAT memory-type encodings (SDM vol. 3 table 11-10). */
enum {
    X86PT_MT_UC = 0x00,
    X86PT_MT_WC = 0x01,
    X86PT_MT_WT = 0x04,
    X86PT_MT_WP = 0x05,
    X86PT_MT_WB = 0x06,
    X86PT_MT_UC_MINUS = 0x07,
};

#define X86PT_ENTRIES 512u
#define X86PT_MAX_LEVELS 5u

/* CPU facts and the table-frame source. */
typedef struct x86pt_config {
    unsigned levels;     /* 4, or 5 when CR4.LA57 is set */
    unsigned phys_bits;  /* MAXPHYADDR: CPUID 0x80000008 EAX[7:0], 32..52 */
    bool nx;             /* CPUID 0x80000001 EDX[20] and EFER.NXE set */
    bool pages_1g;       /* CPUID 0x80000001 EDX[26] */
    bool strict_nx;      /* without nx: reject non-executable requests */
    /* Source of table frames (copied). Frames must lie inside the HHDM
     * window; they are requested below 2^phys_bits. */
    mm_frame_allocator_t frames;
} x86pt_config_t;

/* The mapper. Fields are private; the struct is public so kernels can
 * allocate it statically. */
typedef struct x86pt {
    mm_frame_allocator_t frames;
    unsigned levels;
    unsigned va_bits;      /* 48 or 57 */
    unsigned phys_bits;
    bool nx;
    bool pages_1g;
    bool strict_nx;
    uint64_t nx_bit;       /* bit 63 when nx, else 0 */
    mm_paddr_t phys_end;   /* 2^phys_bits */
} x86pt_t;

/* Initialise `m` from `cfg`. Errors: MM_ERR_INVALID (NULL, levels not 4/5,
 * phys_bits outside 32..52, missing allocator callbacks). No locking; O(1). */
mm_status_t x86pt_init(x86pt_t *m, const x86pt_config_t *cfg);

/* The address space `m` translates (va_space.h): sign-extended halves of
 * 48 (4 levels) or 57 bits (5 levels), one root for both. This is what a
 * kernel passes to layout_compute; it is also the mapper's va_space
 * operation. `m` must be initialised. No lock; O(1). */
void x86pt_va_space(const x86pt_t *m, mm_va_space_t *out);

/* The generic interface backed by `m` (which must outlive it). O(1). */
mm_page_mapper_t x86pt_page_mapper(x86pt_t *m);

/* The IA32_PAT value the kernel must program: X86PT_PAT_MSR. */
uint64_t x86pt_pat_msr(void);

/* The PAT index (0..7) a set of flags selects, or -1 for unknown bits or
 * an unknown memory type. O(1). */
int x86pt_pat_index(mm_map_flags_t flags);

/* --- Single pages: the mm_page_mapper_ops_t operations (see page_mapper.h
 * for the error list; additions are noted). All O(levels); the caller holds
 * the hierarchy's lock. A NULL `tlb` is MM_ERR_INVALID. ----------------- */

/* Map one page. Besides page_mapper.h: MM_ERR_INVALID for a root that is not
 * a 4 KiB-aligned frame inside the HHDM window, for an unknown size, and for
 * MM_MAP_USER in the kernel half; MM_ERR_UNSUPPORTED for a 1 GiB page without
 * pages_1g and for a non-executable request with strict_nx on a CPU without
 * NX. Records a TLB entry only when an existing intermediate gains the user
 * bit or an empty table is replaced (that table is deferred to `tlb`). */
mm_status_t x86pt_map(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                      mm_page_size_t size, mm_map_flags_t flags, mm_tlb_batch_t *tlb);

/* Unmap the page of `size` at va, return its frame in *pa_out (may be
 * NULL), unlink tables that became empty and defer their frames to `tlb`
 * (freed at its flush; up to levels - 1 of them). Errors as page_mapper.h,
 * plus MM_ERR_INVALID for a bad root or size. */
mm_status_t x86pt_unmap(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                        mm_paddr_t *pa_out, mm_tlb_batch_t *tlb);

/* Replace the flags of the page of `size` at va. Accessed/dirty, the
 * address and the software-available bits stay. No TLB record when nothing
 * changes. Errors as unmap plus the flag errors of x86pt_map. */
mm_status_t x86pt_protect(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                          mm_map_flags_t flags, mm_tlb_batch_t *tlb);

/* Translate any address. Flags are the effective ones: writable/user only
 * when every level allows it, executable unless some level forbids it.
 * Errors: MM_ERR_INVALID (bad root, NULL out), MM_ERR_NOT_CANONICAL,
 * MM_ERR_NOT_MAPPED. */
mm_status_t x86pt_translate(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_translation_t *out);

/* --- Roots --------------------------------------------------------------- */

/* Allocate a zeroed root whose kernel-half entries are copies of those of
 * `kernel_root` (0: empty kernel half). Errors: MM_ERR_INVALID (bad
 * kernel_root), MM_ERR_NOMEM. O(512). */
mm_status_t x86pt_root_create(x86pt_t *m, mm_paddr_t kernel_root, mm_paddr_t *root_out);

/* Call `leaf` (may be NULL) for every user-half leaf in address order (each
 * before its table is freed), free every user-half table, then the root. The
 * kernel half is left alone.
 * There is no batch: the frames go back to the allocator at once. So the
 * root must not be current on any CPU and no CPU may still cache
 * translations or paging-structure entries of its user half: switching
 * away (a CR3 load without PCIDs) drops them; with PCIDs the kernel must
 * have invalidated the root's PCID on every CPU that used it. A bad root is
 * an assertion. O(tables + leaves). */
void x86pt_root_destroy(x86pt_t *m, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg);

/* Make every root entry covering [va, va + len) point to a table (zeroed,
 * present|writable, never user). Kernel-half ones are shared by roots made
 * afterwards and never freed. All or nothing. len 0 is a no-op. Errors:
 * MM_ERR_INVALID (bad root), MM_ERR_NOT_CANONICAL (the range leaves its half),
 * MM_ERR_NOMEM. O(entries covered). */
mm_status_t x86pt_prepopulate_top(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len);

/* --- Ranges: all or nothing ------------------------------------------------
 * Each range operation first checks the whole range without changing
 * anything (and, for map, allocates every table it will need), then commits
 * a sequence of steps that cannot fail. So an error of any kind leaves the
 * tables and the allocator exactly as before; there is never anything to roll
 * back. [va, va + len) must be 4 KiB aligned, non-empty and stay canonical
 * inside one half. Complexity: O(pages * levels) plus, for map, the tables
 * created. */

/* Range options. */
enum {
    /* unmap/protect: unmapped gaps in the range are skipped instead of being
     * MM_ERR_NOT_MAPPED (munmap-like). */
    X86PT_RANGE_ALLOW_HOLES = 1u << 0,
};

/* Map [va, va + len) -> [pa, pa + len) with the largest page each step's
 * alignment, the remaining length and the CPU allow (1 GiB, 2 MiB, 4 KiB).
 * Errors: those of x86pt_map for any step (MM_ERR_EXISTS if anything is
 * mapped in the range), MM_ERR_INVALID for len 0, MM_ERR_ALIGN,
 * MM_ERR_RANGE (pa + len beyond the physical width). */
mm_status_t x86pt_map_range(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                            uint64_t len, mm_map_flags_t flags, mm_tlb_batch_t *tlb);

/* Unmap every page in [va, va + len), calling `leaf` (may be NULL) for each
 * one after it is unmapped (in address order; before the caller's flush, so
 * `leaf` may collect the frame but must not free it). Emptied tables go to
 * `tlb` as with x86pt_unmap; more than MM_TLB_BATCH_DEFER_MAX of them flush
 * it early (inside this call). Errors: MM_ERR_SIZE_MISMATCH
 * (a page straddles an end of the range), MM_ERR_NOT_MAPPED (a gap, unless
 * X86PT_RANGE_ALLOW_HOLES), MM_ERR_INVALID, MM_ERR_ALIGN,
 * MM_ERR_NOT_CANONICAL. */
mm_status_t x86pt_unmap_range(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                              unsigned opts, mm_leaf_fn leaf, void *leaf_arg,
                              mm_tlb_batch_t *tlb);

/* Set the flags of every page in [va, va + len). Errors as unmap_range plus
 * the flag errors of x86pt_map. */
mm_status_t x86pt_protect_range(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                                mm_map_flags_t flags, unsigned opts, mm_tlb_batch_t *tlb);

/* --- Inspection ------------------------------------------------------------ */

/* One leaf as the walker reports it. */
typedef struct x86pt_leaf {
    mm_vaddr_t va;          /* page base */
    mm_paddr_t pa;          /* frame base */
    mm_page_size_t size;
    mm_map_flags_t flags;   /* effective flags, as translate reports them */
    uint64_t entry;         /* the raw leaf entry */
} x86pt_leaf_t;

/* Return false to stop the walk. */
typedef bool (*x86pt_leaf_fn)(void *arg, const x86pt_leaf_t *leaf);

/* Visit, in ascending address order, every leaf that overlaps [first, last]
 * (inclusive; 0..UINT64_MAX for everything). Errors: MM_ERR_INVALID (bad
 * root, first > last, NULL fn). Read-only; the hierarchy must not change
 * during the walk and is trusted to be well formed (x86pt_check is the
 * function that validates before following pointers). The walk, dump and
 * audit need the caller's lock on the hierarchy like any other operation.
 * O(tables visited * 512). */
mm_status_t x86pt_walk(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t first, mm_vaddr_t last,
                       x86pt_leaf_fn fn, void *arg);

/* Text sink for x86pt_dump: `len` bytes (no terminator). */
typedef void (*x86pt_write_fn)(void *arg, const char *text, size_t len);

/* ptdump-like listing: one line per run of leaves with consecutive virtual
 * and physical addresses and equal size and flags, in address order:
 *   0xffffc00000004000-0xffffc00000007000 -> 0x0000000000104000 12K 3x4K     RW NX GLB WB
 *   0x0000004000000000-0x0000004000001000 -> 0x0000000000009000 4K 1x4K USR RW NX     UC
 * Fields: first and end (exclusive) virtual address, first physical
 * address (16 hex digits each), run size and page count x page size (K, M,
 * G, T, P with the largest exact unit), then fixed-width columns "USR" or
 * blank, "RW" or "ro", "x " or "NX", "GLB" or blank, and the memory type
 * WB/WT/UC/WC. Flags are the effective ones. One write call per line; no
 * formatting library is used. Errors: MM_ERR_INVALID (bad root, NULL
 * write). Read-only, O(tables * 512). */
mm_status_t x86pt_dump(const x86pt_t *m, mm_paddr_t root, x86pt_write_fn write, void *arg);

/* The same into buf[cap] (always NUL-terminated when cap > 0). *len_out (may
 * be NULL) gets the full length the text needs, excluding the NUL.
 * MM_ERR_FULL when it was truncated. */
mm_status_t x86pt_dump_buf(const x86pt_t *m, mm_paddr_t root, char *buf, size_t cap,
                           size_t *len_out);

typedef enum x86pt_finding_kind {
    X86PT_FINDING_WX,                /* leaf writable and executable */
    X86PT_FINDING_KERNEL_USER_LEAF,  /* kernel-half leaf with the user bit */
    X86PT_FINDING_KERNEL_USER_TABLE, /* kernel-half intermediate entry with the user bit */
    X86PT_FINDING_KIND_COUNT
} x86pt_finding_kind_t;

typedef struct x86pt_finding {
    x86pt_finding_kind_t kind;
    mm_vaddr_t va;      /* first address the entry controls */
    unsigned level;     /* 1 = page table .. 5 = PML5 */
    uint64_t entry;     /* raw entry */
} x86pt_finding_t;

typedef void (*x86pt_finding_fn)(void *arg, const x86pt_finding_t *finding);

typedef struct x86pt_audit_counts {
    size_t wx;                 /* writable+executable leaves (effective flags) */
    size_t kernel_user_leaves;
    size_t kernel_user_tables;
} x86pt_audit_counts_t;

/* Security audit of the whole hierarchy: calls `fn` (may be NULL) per
 * finding in address order and fills *counts (may be NULL). Errors:
 * MM_ERR_INVALID (bad root). Read-only. O(tables * 512). */
mm_status_t x86pt_audit(const x86pt_t *m, mm_paddr_t root, x86pt_finding_fn fn, void *arg,
                        x86pt_audit_counts_t *counts);

typedef struct x86pt_check_info {
    size_t user_tables;      /* tables below user-half root entries */
    size_t kernel_tables;    /* tables below kernel-half root entries */
    size_t leaves;
    /* First problem found (MM_ERR_CORRUPT only). */
    const char *problem;
    mm_vaddr_t bad_va;
    unsigned bad_level;
    uint64_t bad_entry;
} x86pt_check_info_t;

/* Consistency check (for tests and debugging): every stored count equals
 * the table's present entries; only root-level tables may be empty; no
 * reserved bit is set (address beyond the width, PS in a root-level entry,
 * low bits of a huge frame, NX without NX); 1 GiB leaves only with pages_1g;
 * no user bit in kernel-half intermediates; every table lies in the HHDM
 * window. Counts tables so callers can compare with their allocator. Errors:
 * MM_ERR_INVALID (bad root), MM_ERR_CORRUPT. O(tables * 512). */
mm_status_t x86pt_check(const x86pt_t *m, mm_paddr_t root, x86pt_check_info_t *info);

#endif /* HADRON_MM_X86PT_H */
