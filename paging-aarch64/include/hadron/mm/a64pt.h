/*
 * hadron-mm paging-aarch64: the AArch64 stage-1 page-table mapper (EL1&0
 * regime, 4 KiB granule; 48-bit VA with 4 lookup levels, 52-bit VA with
 * FEAT_LPA2 and 5).
 *
 * One a64pt_t describes the CPU (VA width, whether descriptors use the LPA2
 * format, physical address width) and where table frames come from; it
 * serves any number of hierarchies, each named by the physical address of
 * its root table, and plugs into the architecture-independent VMM as an
 * mm_page_mapper_t exactly as the x86_64 mapper does. Tables are reached
 * through the HHDM, so on the host the mapper runs over simulated physical
 * memory exactly as in a kernel.
 *
 * References: Arm Architecture Reference Manual for A-profile (DDI 0487):
 * the VMSAv8-64 translation table descriptor formats (chapter D8 in recent
 * issues, D4.3 in the ARMv8.0 issue) for every bit below, MAIR_EL1 for the
 * memory types, and the break-before-make rules for updating translation
 * table entries (TLB maintenance section of the same chapter). Sections
 * are cited by title below because their numbers move between issues.
 *
 * Address space. The page-mapper interface of hadron-mm names one root per
 * hierarchy whose lower half is the user half and whose upper half is the
 * kernel half (shared by every root, as on x86_64). The mapper therefore
 * translates a sign-extended va_bits-wide space: user [0, 2^(va_bits-1)),
 * kernel [2^64 - 2^(va_bits-1), 2^64); the user half uses the lower half of
 * the root's entries and the kernel half the upper half (48-bit: entries
 * 0..255 / 256..511 of the level-0 table; 52-bit: 0..7 / 8..15 of the
 * 16-entry level -1 table). The kernel programs, for a root R current on a
 * CPU: TTBR0_EL1 = R with T0SZ = 65 - va_bits (the lower half only), and
 * TTBR1_EL1 = R (or the kernel root, whose upper entries every root shares)
 * with T1SZ = 64 - va_bits, so an upper-half address indexes the upper half
 * of the same table. a64pt_va_space (the va_space operation) describes
 * exactly this space, with kernel_root_separate false.
 *
 * Separate kernel root (a64pt_config_t.kernel_root_separate): the space is
 * the architecture's own, user [0, 2^va_bits) through TTBR0_EL1 and kernel
 * [2^64 - 2^va_bits, 2^64) through TTBR1_EL1 (T0SZ = T1SZ = 64 - va_bits),
 * as mm_va_space_aarch64 describes it with kernel_root_separate true. The
 * kernel root is made once by a64pt_kernel_root_create and is the only
 * hierarchy of kernel addresses; every other root is a user root, all of
 * whose entries are the user half, and shares nothing (a64pt_root_create
 * takes kernel_root 0). An address of the other half than the root's is
 * MM_ERR_NOT_CANONICAL for that root, so a kernel page can never be mapped
 * into a user root or the reverse. Nothing is pinned: with no copies of
 * its root entries anywhere, the kernel root's tables are counted and
 * freed when empty exactly as a user root's are.
 *
 * Descriptor formats (4 KiB granule, stage 1; table, block and page
 * descriptor formats of the Arm ARM):
 *   bits      table (levels -1..2)       block (1, 2) / page (3)
 *   1:0       0b11                       0b01 block, 0b11 page
 *   4:2       count[9:7] (IGNORED)       AttrIndx: MAIR_EL1 index
 *   5         IGNORED                    NS (0)
 *   7:6       IGNORED                    AP[2:1]: bit 7 read-only, bit 6 EL0 access
 *   9:8       LPA2: table address[51:50] SH (0b11 inner shareable);
 *                                        LPA2: OA[51:50] (SH from TCR_EL1.SH0/SH1)
 *   10        IGNORED (0)                AF, always set here
 *   11        IGNORED                    nG
 *   47:12     table address[47:12]       OA[47:12] (a 2 MiB / 1 GiB block: OA[47:21/30])
 *   49:48     LPA2: table address[49:48] LPA2: OA[49:48]
 *   52        IGNORED: count[0]          Contiguous (0)
 *   53        IGNORED: count[1]          PXN
 *   54        IGNORED: count[2]          UXN
 *   58:55     IGNORED: count[6:3]        software use (kept by protect)
 *   63:59     PXNTable, UXNTable,        ignored / PBHA (0)
 *             APTable, NSTable (all 0)
 * An invalid descriptor (bit 0 clear) is ignored entirely; at level 3 type
 * 0b01 is reserved and treated as invalid, and a block at level 0 or -1
 * (possible only with LPA2) is not made here; both are flagged by the check.
 *
 * Per-table entry counts. The number of valid entries of each table is kept
 * in the table descriptor that points to it, as on x86_64, but split: count
 * bits 6:0 in bits 58:52 and count bits 9:7 in bits 4:2. A stage-1 table
 * descriptor IGNORES bits 58:52 and 11:2, except that LPA2 takes
 * bits 9:8 for the table address and FEAT_HAFT (TCR2_EL1.HAFT = 1) takes
 * bit 10 for a table access flag; 58:52 alone (7 bits) cannot hold 0..512,
 * so the three high bits go to 4:2, which no feature of the 64-bit format
 * uses. Page and block descriptors carry no count: their free bits 58:55
 * are the kernel's, and their bits 4:2 are AttrIndx. The hardware never
 * writes a table descriptor (with TCR2_EL1.HAFT = 0, which the kernel must
 * keep), so a count update is a plain store. Pinned kernel-half root
 * entries carry count 0 (their tables live forever, as on x86_64).
 *
 * Memory types through MAIR_EL1 (the kernel writes A64PT_MAIR_EL1 on every
 * CPU before enabling the MMU):
 *   memory type (flags)       AttrIndx  MAIR byte  type
 *   MM_MAP_WRITE_BACK (0)     0         0xff       Normal, Inner/Outer Write-Back RW-allocate
 *   MM_MAP_WRITE_THROUGH      1         0xbb       Normal, Inner/Outer Write-Through RW-allocate
 *   MM_MAP_WRITE_COMBINING    2         0x44       Normal, Inner/Outer Non-cacheable
 *   MM_MAP_NORMAL_NC          2         0x44       Normal, Inner/Outer Non-cacheable
 *   MM_MAP_DEVICE             3         0x04       Device-nGnRE (device registers)
 * Arm has no write-combining type: Normal Non-cacheable gathers writes and
 * is what write-combining maps to, so both share index 2, which translate
 * and the walk report as MM_MAP_NORMAL_NC. Indices 4..7 hold 0x00
 * (Device-nGnRnE); the mapper never writes them and reports them as
 * MM_MAP_DEVICE. An unknown memory type (mm_map_flags_valid) is
 * MM_ERR_INVALID; so is MM_MAP_DEVICE with MM_MAP_EXEC (device memory must
 * be execute-never, or the CPU may fetch from device registers
 * speculatively). SH is inner shareable for every
 * type (Device memory ignores it; with LPA2 it comes from TCR_EL1).
 *
 * Permissions: MM_MAP_WRITE clears AP[2]; MM_MAP_USER sets AP[1] (EL0
 * access) and is MM_ERR_INVALID in the kernel half; MM_MAP_EXEC clears UXN
 * on a user page and PXN on a kernel-only page: a user page is never
 * executable at EL1 (PXN set, as the architecture forces for EL0-writable
 * pages anyway) and a kernel-only page never at EL0 (UXN set). Without
 * MM_MAP_EXEC both are set. nG is set unless MM_MAP_GLOBAL;
 * MM_MAP_USER | MM_MAP_GLOBAL is MM_ERR_INVALID (a global user page would
 * be visible under every ASID). AF is set on creation (no access-flag
 * faults). Table descriptors carry no hierarchical restriction
 * (APTable/XNTable 0), so the leaf alone decides; translate and the walk
 * still apply hierarchical bits found in a table descriptor.
 *
 * Break-before-make (Arm ARM, the break-before-make rules). A valid entry
 * whose output address, memory type (AttrIndx), nG, or block/table shape
 * changes must go through an invalid entry and a completed TLB
 * invalidation. The mapper never changes
 * an output address in place (map refuses a present page, protect keeps the
 * address), and does break-before-make, synchronously, in exactly two
 * places:
 *   - protect (single or range) of a present leaf when the memory type or
 *     MM_MAP_GLOBAL changes: the entry is exchanged for 0, the old
 *     translation is recorded in the caller's batch (mm_tlb_batch_add) and
 *     the batch is flushed (mm_tlb_batch_flush: one hook call for the
 *     batch's identity, then its deferred frees), then the new entry (with
 *     the old AF and software bits) is stored. Changes of AP, UXN or PXN
 *     alone do not need it and are recorded in the batch as usual;
 *   - map of a 2 MiB / 1 GiB block over an empty table (count 0): the table
 *     descriptor is stored as 0, the block's range is recorded and the
 *     batch flushed in the same way, then the block is stored; the table
 *     frame is deferred to the batch after that flush, so it is freed by
 *     the caller's flush.
 * This is case 1 of "Synchronous invalidations" in page_mapper.h. The flush
 * runs inside the mapper, so with the caller's page-table lock held and
 * interrupts disabled (the VMM: its lock or the address-space lock), one
 * flush per entry; it also invalidates whatever the batch had recorded
 * before, and frees the frames it held. The hook it reaches must therefore
 * be complete on return on every CPU that may hold the translation, and
 * must not call vmm_* or take the caller's locks. The batch names the
 * identity (tlb.h): MM_ASID_KERNEL for kernel-half changes, the address
 * space's ASID for a user half. A kernel implements the page hook as
 *   DSB ISHST; TLBI VAE1IS (ASID:page) or, for MM_ASID_KERNEL,
 *   TLBI VAAE1IS (page, every ASID); DSB ISH; ISB
 * and the full-flush hook as TLBI ASIDE1IS / VMALLE1IS. The first DSB makes
 * the invalid entry visible to table walkers before the invalidation; the
 * last makes the invalidation complete before the new entry is written.

 * Barriers for new entries (Arm ARM, ordering of translation table walks):
 * a new valid entry (map into an invalid slot) needs no invalidation, but
 * before the entry is used a DSB ISHST must make the store visible to the
 * walkers, plus an ISB when the current CPU will use it without an
 * exception return in between. map records nothing in the batch for such
 * entries and an empty batch makes no hook call, so the mapper itself
 * issues "DSB ISHST; ISB" before map, map_range, prepopulate_top and every
 * break-before-make return (page_mapper.h: a mapper makes a new entry
 * visible to its own CPU's walker). Other CPUs see it after their next
 * context synchronisation (an exception return), as the architecture
 * allows. Host builds compile the barrier to a compiler barrier.
 *
 * Guarantees (every operation, including the range operations):
 * - A caller mistake or a failed table allocation returns a status and leaves
 *   every table, every count and the frame allocator exactly as before.
 * - Intermediate tables are zeroed before they become reachable and are
 *   published with one 64-bit release store after they are complete.
 * - A table whose last entry goes away is unlinked at once, except the
 *   tables hanging off kernel-half root entries (shared, live forever). Its
 *   frame returns to the frame allocator when the caller flushes the TLB
 *   batch, after the invalidation.
 * - Apart from the two break-before-make cases above and the early flush of
 *   a full batch (mm_tlb_batch_defer_free), nothing is flushed here.
 *
 * Locking: none inside, no mutable state in a64pt_t. Callers serialise all
 * operations on one hierarchy, and all kernel-half changes globally.
 */
#ifndef HADRON_MM_A64PT_H
#define HADRON_MM_A64PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/page_mapper.h>
#include <hadron/mm/status.h>
#include <hadron/mm/tlb.h>
#include <hadron/mm/types.h>

/* MAIR_EL1 attribute bytes (Arm ARM, MAIR_EL1: Attr<n>[7:4] outer,
 * [3:0] inner; 0b0000dd00 device). */
enum {
    A64PT_MAIR_DEVICE_nGnRnE = 0x00,
    A64PT_MAIR_DEVICE_nGnRE = 0x04,
    A64PT_MAIR_NORMAL_NC = 0x44,
    A64PT_MAIR_NORMAL_WT = 0xbb,
    A64PT_MAIR_NORMAL_WB = 0xff,
};

/* AttrIndx values the mapper writes. */
enum {
    A64PT_ATTR_WB = 0,
    A64PT_ATTR_WT = 1,
    A64PT_ATTR_NC = 2,
    A64PT_ATTR_DEVICE = 3,
};

/* MAIR_EL1 value matching the table above: Attr3..Attr0 = 04 44 bb ff,
 * Attr7..Attr4 = 00 (Device-nGnRnE). */
#define A64PT_MAIR_EL1 0x000000000444bbffull

#define A64PT_ENTRIES 512u
#define A64PT_MAX_LEVELS 5u

/* CPU facts and the table-frame source. */
typedef struct a64pt_config {
    unsigned va_bits;    /* 48 (4 levels) or 52 (5 levels; needs lpa2) */
    bool lpa2;           /* TCR_EL1.DS = 1: the LPA2 descriptor format
                          * (ID_AA64MMFR0_EL1.TGran4 = 0b0001) */
    unsigned phys_bits;  /* PARange: 32..48, or up to 52 with lpa2 */
    /* The kernel half has a root of its own (TTBR1_EL1) and the halves
     * are 2^va_bits each; false: one sign-extended space per root. */
    bool kernel_root_separate;
    /* An existing kernel root to use (another a64pt_t's, for a second
     * mapper over the same kernel hierarchy); 0: none yet, made by
     * a64pt_kernel_root_create. */
    mm_paddr_t kernel_root;
    /* Source of table frames (copied). Frames must lie inside the HHDM
     * window; they are requested below 2^phys_bits. */
    mm_frame_allocator_t frames;
} a64pt_config_t;

/* The mapper. Fields are private; the struct is public so kernels can
 * allocate it statically. */
typedef struct a64pt {
    mm_frame_allocator_t frames;
    unsigned levels;       /* 4 or 5 */
    unsigned va_bits;      /* 48 or 52 */
    unsigned phys_bits;
    bool lpa2;
    unsigned root_entries; /* 512, or 16 for the level -1 table */
    mm_paddr_t phys_end;   /* 2^phys_bits */
    bool separate;         /* kernel_root_separate */
    mm_paddr_t kernel_root; /* a64pt_kernel_root_create's root (0: none yet) */
} a64pt_t;

/* Initialise `m` from `cfg`. Errors: MM_ERR_INVALID (NULL, va_bits not
 * 48/52, 52 without lpa2, phys_bits outside 32..48 (32..52 with lpa2),
 * missing allocator callbacks, a kernel_root not page aligned or outside
 * the physical width). No locking; O(1). */
mm_status_t a64pt_init(a64pt_t *m, const a64pt_config_t *cfg);

/* The address space `m` translates (va_space.h), also the mapper's
 * va_space operation: one root per hierarchy with the user half
 * [0, 2^(va_bits-1)) and the kernel half [2^64 - 2^(va_bits-1), 2^64), the
 * sign-extended halves of mm_va_space_sign_extended(va_bits, levels): 4
 * levels for 48 bits, 5 for 52 (LPA2); kernel_root_separate is false (the
 * separate TTBR1 root of mm_va_space_aarch64 is not implemented yet). This
 * is what a kernel passes to layout_compute. `m` must be initialised. No
 * lock; O(1). */
void a64pt_va_space(const a64pt_t *m, mm_va_space_t *out);

/* The generic interface backed by `m` (which must outlive it). O(1). */
mm_page_mapper_t a64pt_page_mapper(a64pt_t *m);

/* The MAIR_EL1 value the kernel must program: A64PT_MAIR_EL1. */
uint64_t a64pt_mair_el1(void);

/* The AttrIndx (0..3) a set of flags selects, or -1 for unknown flag bits
 * or contradictory cache flags. O(1). */
int a64pt_attr_index(mm_map_flags_t flags);

/* The descriptor (no output address) a leaf of `size` gets for valid
 * `flags` on `m`: the one function that turns interface flags into
 * descriptor bits. Returns 0 for flags a64pt_map would reject. O(1). */
uint64_t a64pt_leaf_bits(const a64pt_t *m, mm_map_flags_t flags, mm_page_size_t size,
                         bool kernel_half);

/* --- Single pages: the mm_page_mapper_ops_t operations (see page_mapper.h
 * for the error list; additions are noted). All O(levels); the caller holds
 * the hierarchy's lock. A NULL `tlb` is MM_ERR_INVALID. ----------------- */

/* Map one page. Besides page_mapper.h: MM_ERR_INVALID for a root that is not
 * a 4 KiB-aligned frame inside the HHDM window and below 2^phys_bits, an
 * unknown size, MM_MAP_USER in the kernel half, MM_MAP_USER with
 * MM_MAP_GLOBAL, MM_MAP_DEVICE with MM_MAP_EXEC. Never MM_ERR_UNSUPPORTED
 * (every size exists with a 4 KiB granule). Records nothing in `tlb` for a
 * new entry (see "Barriers"); a block over an empty table is
 * break-before-make (a synchronous flush of `tlb`) and defers the table to
 * `tlb`. */
mm_status_t a64pt_map(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                      mm_page_size_t size, mm_map_flags_t flags, mm_tlb_batch_t *tlb);

/* Unmap the page of `size` at va, return its frame in *pa_out (may be
 * NULL), unlink tables that became empty and defer their frames to `tlb`
 * (freed at its flush; up to levels - 1 of them). Records the page in
 * `tlb` (global when nG was clear). Errors as page_mapper.h, plus
 * MM_ERR_INVALID for a bad root or size. */
mm_status_t a64pt_unmap(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                        mm_paddr_t *pa_out, mm_tlb_batch_t *tlb);

/* Replace the flags of the page of `size` at va. AF, the output address
 * and the software bits 58:55 stay. Memory-type or global changes are
 * break-before-make (a synchronous flush of `tlb`, see above);
 * permission-only changes are recorded in `tlb`; no change, no record.
 * Errors as unmap plus the flag errors of a64pt_map. */
mm_status_t a64pt_protect(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                          mm_map_flags_t flags, mm_tlb_batch_t *tlb);

/* Translate any address. Flags are the effective ones (hierarchical table
 * bits applied). Errors: MM_ERR_INVALID (bad root, NULL out),
 * MM_ERR_NOT_CANONICAL, MM_ERR_NOT_MAPPED. */
mm_status_t a64pt_translate(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_translation_t *out);

/* --- Roots --------------------------------------------------------------- */

/* Allocate a zeroed root whose kernel-half entries are copies of those of
 * `kernel_root` (0: empty kernel half). With a separate kernel root this
 * is a user root and kernel_root must be 0: it shares nothing. Errors:
 * MM_ERR_INVALID (bad kernel_root, or one given with a separate kernel
 * root; NULL m or root_out), MM_ERR_NOMEM. O(entries). */
mm_status_t a64pt_root_create(a64pt_t *m, mm_paddr_t kernel_root, mm_paddr_t *root_out);

/* The kernel's root: a new empty root, recorded in `m` as the kernel
 * root. With a separate kernel root it is the one hierarchy of kernel
 * addresses (TTBR1_EL1); without, it is a root like any other (the one
 * whose kernel half the others copy). Errors: MM_ERR_INVALID (NULL),
 * MM_ERR_STATE (a kernel root exists), MM_ERR_NOMEM. Not locked: call once,
 * at boot. */
mm_status_t a64pt_kernel_root_create(a64pt_t *m, mm_paddr_t *root_out);

/* Call `leaf` (may be NULL) for every user-half leaf in address order, free
 * every user-half table, then the root; the kernel half is left alone (with
 * a separate kernel root: every entry of a user root; destroying the
 * kernel root is an assertion). No
 * batch: the frames go back at once, so the root must be current on no CPU
 * and no TLB may hold entries of its user half (its ASID invalidated with
 * TLBI ASIDE1IS, or a full invalidation). A bad root is an assertion.
 * O(tables + leaves). */
void a64pt_root_destroy(a64pt_t *m, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg);

/* Make every root entry covering [va, va + len) point to a table (zeroed,
 * count 0). Kernel-half ones are shared by roots made afterwards and never
 * freed. All or nothing; len 0 is a no-op. Errors: MM_ERR_INVALID (bad
 * root), MM_ERR_NOT_CANONICAL (the range leaves its half), MM_ERR_NOMEM.
 * O(entries covered). */
mm_status_t a64pt_prepopulate_top(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len);

/* --- Ranges: all or nothing ------------------------------------------------
 * Each range operation first checks the whole range without changing
 * anything (and, for map, allocates every table it will need), then commits
 * steps that cannot fail; an error leaves tables and allocator exactly as
 * before. [va, va + len) must be 4 KiB aligned, non-empty and inside one
 * half. Complexity: O(pages * levels) plus the tables created. */

enum {
    /* unmap/protect: unmapped gaps are skipped instead of MM_ERR_NOT_MAPPED. */
    A64PT_RANGE_ALLOW_HOLES = 1u << 0,
};

/* Map [va, va + len) -> [pa, pa + len) with the largest page each step's
 * alignment and remaining length allow (1 GiB, 2 MiB, 4 KiB). Errors: those
 * of a64pt_map for any step, MM_ERR_INVALID for len 0, MM_ERR_ALIGN,
 * MM_ERR_RANGE (pa + len beyond the physical width). */
mm_status_t a64pt_map_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                            uint64_t len, mm_map_flags_t flags, mm_tlb_batch_t *tlb);

/* Unmap every page in [va, va + len), calling `leaf` (may be NULL) after
 * each (in address order, before the caller's flush: collect, do not free).
 * Errors: MM_ERR_SIZE_MISMATCH (a page straddles an end), MM_ERR_NOT_MAPPED
 * (a gap, unless A64PT_RANGE_ALLOW_HOLES), MM_ERR_INVALID, MM_ERR_ALIGN,
 * MM_ERR_NOT_CANONICAL. */
mm_status_t a64pt_unmap_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                              unsigned opts, mm_leaf_fn leaf, void *leaf_arg,
                              mm_tlb_batch_t *tlb);

/* Set the flags of every page in [va, va + len) (break-before-make per page
 * where a64pt_protect would do it). Errors as unmap_range plus the flag
 * errors of a64pt_map. */
mm_status_t a64pt_protect_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                                mm_map_flags_t flags, unsigned opts, mm_tlb_batch_t *tlb);

/* --- Inspection ------------------------------------------------------------ */

typedef struct a64pt_leaf {
    mm_vaddr_t va;          /* page base */
    mm_paddr_t pa;          /* frame base */
    mm_page_size_t size;
    mm_map_flags_t flags;   /* effective flags, as translate reports them */
    uint64_t entry;         /* the raw descriptor */
} a64pt_leaf_t;

/* Return false to stop the walk. */
typedef bool (*a64pt_leaf_fn)(void *arg, const a64pt_leaf_t *leaf);

/* Visit, in ascending address order, every leaf overlapping [first, last]
 * (inclusive). Errors: MM_ERR_INVALID (bad root, first > last, NULL fn).
 * Read-only; the hierarchy must not change during the walk and is trusted
 * to be well formed (a64pt_check validates). Needs the caller's lock like
 * any other operation. O(tables visited * 512). */
mm_status_t a64pt_walk(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t first, mm_vaddr_t last,
                       a64pt_leaf_fn fn, void *arg);

typedef void (*a64pt_write_fn)(void *arg, const char *text, size_t len);

/* ptdump-like listing, one line per run of leaves with consecutive virtual
 * and physical addresses and equal size and flags:
 *   0xffff800000004000-0xffff800000007000 -> 0x0000000000104000 12K 3x4K     RW NX GLB WB
 * Columns as x86pt_dump: "USR", "RW"/"ro", "x "/"NX", "GLB", then the
 * memory type: WB, WT, NC (Normal Non-cacheable: MM_MAP_WRITE_COMBINING, MM_MAP_NORMAL_NC) or
 * DEV (Device, MM_MAP_DEVICE). One write call per line. Errors:
 * MM_ERR_INVALID (bad root, NULL write). Read-only, O(tables * 512). */
mm_status_t a64pt_dump(const a64pt_t *m, mm_paddr_t root, a64pt_write_fn write, void *arg);

/* The same into buf[cap] (NUL-terminated when cap > 0); *len_out (may be
 * NULL) gets the full length. MM_ERR_FULL when truncated, MM_ERR_INVALID
 * for a NULL buf with cap > 0. */
mm_status_t a64pt_dump_buf(const a64pt_t *m, mm_paddr_t root, char *buf, size_t cap,
                           size_t *len_out);

typedef enum a64pt_finding_kind {
    A64PT_FINDING_WX,               /* writable and executable (at any EL) */
    A64PT_FINDING_KERNEL_EL0_LEAF,  /* kernel-half leaf EL0 may access (AP[1]) or execute (UXN clear) */
    A64PT_FINDING_USER_PXN_CLEAR,   /* EL0-accessible leaf executable at EL1 */
    A64PT_FINDING_KIND_COUNT
} a64pt_finding_kind_t;

typedef struct a64pt_finding {
    a64pt_finding_kind_t kind;
    mm_vaddr_t va;      /* first address the entry controls */
    int level;          /* Arm lookup level: 3 = page, 2 = 2 MiB, 1 = 1 GiB */
    uint64_t entry;     /* raw descriptor */
} a64pt_finding_t;

typedef void (*a64pt_finding_fn)(void *arg, const a64pt_finding_t *finding);

typedef struct a64pt_audit_counts {
    size_t wx;
    size_t kernel_el0_leaves;
    size_t user_pxn_clear;
} a64pt_audit_counts_t;

/* Security audit of the whole hierarchy: calls `fn` (may be NULL) per
 * finding in address order and fills *counts (may be NULL). Errors:
 * MM_ERR_INVALID (bad root). Read-only. O(tables * 512). */
mm_status_t a64pt_audit(const a64pt_t *m, mm_paddr_t root, a64pt_finding_fn fn, void *arg,
                        a64pt_audit_counts_t *counts);

typedef struct a64pt_check_info {
    size_t user_tables;
    size_t kernel_tables;
    size_t leaves;
    const char *problem;   /* first problem found (MM_ERR_CORRUPT only) */
    mm_vaddr_t bad_va;
    int bad_level;         /* Arm lookup level of the bad descriptor */
    uint64_t bad_entry;
} a64pt_check_info_t;

/* Consistency check: every stored count equals the table's valid entries;
 * only root-level tables may be empty; no reserved descriptor type (0b01 at
 * level 3, a block at level 0 or -1); table descriptors carry no
 * hierarchical attribute and no bit outside address and count; leaves have
 * AF set, an aligned output address below 2^phys_bits, no Contiguous bit,
 * an AttrIndx the mapper writes and SH inner shareable (without LPA2);
 * tables lie in the HHDM window (EL0 access in the kernel half is the
 * audit's finding, not corruption). Errors:
 * MM_ERR_INVALID (bad root), MM_ERR_CORRUPT. O(tables * 512). */
mm_status_t a64pt_check(const a64pt_t *m, mm_paddr_t root, a64pt_check_info_t *info);

#endif /* HADRON_MM_A64PT_H */
