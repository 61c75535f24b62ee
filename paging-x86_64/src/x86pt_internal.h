/*
 * paging-x86_64 private header: entry encodings, table access, the walk
 * path, per-table counts and the table-frame reserve shared by the sources.
 *
 * Levels are numbered as the SDM's structures: 1 = page table (PTE),
 * 2 = page directory, 3 = PDPT, 4 = PML4, 5 = PML5. The root is at
 * m->levels.
 */
#ifndef HADRON_MM_X86PT_INTERNAL_H
#define HADRON_MM_X86PT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/assert.h>
#include <hadron/mm/hhdm.h>
#include <hadron/mm/x86pt.h>

/* Internal functions shared between sources keep short pt_ names in the
 * code but link as x86pt_i_*, so they cannot collide with a kernel's own
 * symbols. */
#define pt_count_dec x86pt_i_count_dec
#define pt_frame_free x86pt_i_frame_free
#define pt_reserve_fill x86pt_i_reserve_fill
#define pt_reserve_take x86pt_i_reserve_take
#define pt_map_commit x86pt_i_map_commit
#define pt_unmap_leaf x86pt_i_unmap_leaf
#define pt_protect_leaf x86pt_i_protect_leaf
#define pt_grant_user x86pt_i_grant_user
#define pt_visit x86pt_i_visit

/* Entry bits (SDM vol. 3 section 4.5, tables 4-15 .. 4-20). */
#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)       /* levels 2 and 3: maps a page */
#define PTE_PAT_4K (1ull << 7)   /* level 1 */
#define PTE_G (1ull << 8)
#define PTE_PAT_HUGE (1ull << 12)
#define PTE_NX (1ull << 63)
#define PTE_ADDR_MASK 0x000ffffffffff000ull /* bits 51:12 */

/* Count of present entries of the table an entry points to: bits 61:52,
 * ignored by the CPU in non-leaf entries. 10 bits hold 0..512. */
#define PTE_COUNT_SHIFT 52u
#define PTE_COUNT_ONE (1ull << PTE_COUNT_SHIFT)
#define PTE_COUNT_MASK (0x3ffull << PTE_COUNT_SHIFT)

/* Bits an intermediate entry made here carries besides address and count. */
#define PTE_TABLE_BITS (PTE_P | PTE_RW)

static inline unsigned pt_shift(unsigned level)
{
    return MM_PAGE_SHIFT + 9u * (level - 1u);
}

static inline unsigned pt_index(mm_vaddr_t va, unsigned level)
{
    return (unsigned)(va >> pt_shift(level)) & (X86PT_ENTRIES - 1u);
}

/* Level whose leaf maps a page of `size`. */
static inline unsigned pt_level_of(mm_page_size_t size)
{
    return size == MM_PAGE_4K ? 1u : size == MM_PAGE_2M ? 2u : 3u;
}

static inline mm_page_size_t pt_size_of(unsigned level)
{
    return level == 1 ? MM_PAGE_4K : level == 2 ? MM_PAGE_2M : MM_PAGE_1G;
}

static inline bool pt_size_valid(mm_page_size_t size)
{
    return size == MM_PAGE_4K || size == MM_PAGE_2M || size == MM_PAGE_1G;
}

static inline bool pt_kernel_half(mm_vaddr_t va)
{
    return (int64_t)va < 0;
}

/* x86_64's address rule, which only this mapper knows: the bits above the
 * implemented width (48 or 57) are copies of the top implemented bit. The
 * rest of hadron-mm sees it as the two ranges of x86pt_va_space. */
static inline bool pt_canonical(const x86pt_t *m, mm_vaddr_t va)
{
    unsigned s = 64u - m->va_bits;
    return (mm_vaddr_t)((int64_t)(va << s) >> s) == va;
}

/* Sign-extends a top-level-derived address to canonical form. */
static inline mm_vaddr_t pt_canon(const x86pt_t *m, mm_vaddr_t va)
{
    unsigned s = 64u - m->va_bits;
    return (mm_vaddr_t)((int64_t)(va << s) >> s);
}

static inline bool pt_is_leaf(uint64_t e, unsigned level)
{
    return level == 1 || (level <= 3 && (e & PTE_PS) != 0);
}

static inline unsigned pt_count_of(uint64_t e)
{
    return (unsigned)((e & PTE_COUNT_MASK) >> PTE_COUNT_SHIFT);
}

static inline mm_paddr_t pt_table_pa(uint64_t e)
{
    return e & PTE_ADDR_MASK;
}

static inline mm_paddr_t pt_leaf_pa(uint64_t e, unsigned level)
{
    return e & PTE_ADDR_MASK & ~(mm_page_bytes(pt_size_of(level)) - 1u);
}

static inline uint64_t *pt_table(mm_paddr_t pa)
{
    return (uint64_t *)hhdm_phys_to_virt(pa);
}

/* The CPU reads and (for A/D) writes entries concurrently: every access is
 * one untorn 64-bit operation. Publishing a new table uses release order so
 * its zeroed contents are visible first (a plain store on x86). */
static inline uint64_t pte_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void pte_store(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void pte_publish(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* A root (or any table) the caller names must be a frame we can reach. */
static inline bool pt_root_ok(const x86pt_t *m, mm_paddr_t root)
{
    return m != NULL && mm_is_aligned(root, MM_PAGE_SIZE) && root < m->phys_end &&
           root < hhdm_window_size;
}

/* Where a walk stopped and the entry slots it passed (slot[L] is the entry
 * for va in the level-L table, for L from the root down to `level`). */
typedef struct pt_path {
    uint64_t *slot[X86PT_MAX_LEVELS + 1];
    unsigned level;
} pt_path_t;

/* Descend toward level `target`; stop early at a non-present entry or a
 * leaf. Returns the level of the last slot filled. O(levels). Inline: it is
 * the hot loop of every operation. */
static inline __attribute__((always_inline)) unsigned
pt_walk_n(unsigned levels, mm_paddr_t root, mm_vaddr_t va, unsigned target, pt_path_t *path)
{
    /* The HHDM offset is read once: the atomic entry loads would otherwise
     * make the compiler reload it at every level. */
    const uint64_t off = hhdm_offset_value;
    uint64_t *table = (uint64_t *)(uintptr_t)(root + off);
    unsigned level = levels;
    for (;;) {
        uint64_t *slot = &table[pt_index(va, level)];
        path->slot[level] = slot;
        if (level == target)
            break;
        uint64_t e = pte_load(slot);
        /* Checking PS before descending is what keeps us from reading a
         * 2 MiB page's frame as if it were a page table. */
        if (!(e & PTE_P) || pt_is_leaf(e, level))
            break;
        table = (uint64_t *)(uintptr_t)(pt_table_pa(e) + off);
        level--;
    }
    path->level = level;
    return level;
}

/* pt_walk_n with the mapper's depth; callers on a hot path can call
 * pt_walk_n with constant levels and target so the loop unrolls. */
static inline unsigned pt_walk(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                               unsigned target, pt_path_t *path)
{
    return pt_walk_n(m->levels, root, va, target, path);
}

/* True when the table at `level` (pointed to by the slot at level + 1) is
 * pinned: it hangs off a kernel-half root entry and carries no count. */
static inline bool pt_pinned(const x86pt_t *m, mm_vaddr_t va, unsigned level)
{
    return level + 1u == m->levels && pt_kernel_half(va);
}

/* The table at `level` on `path` gained one present entry.
 * A plain load and one 64-bit store, not a locked add: callers serialise
 * software writers, and the only concurrent writer is the CPU setting the
 * accessed bit, whose loss on a non-leaf entry costs nothing (nothing reads
 * it, and the CPU sets it again on its next walk). */
static inline void pt_count_inc(const x86pt_t *m, pt_path_t *path, mm_vaddr_t va,
                                unsigned level)
{
    if (level == m->levels || pt_pinned(m, va, level))
        return;
    uint64_t *slot = path->slot[level + 1];
    uint64_t e = pte_load(slot);
    MM_ASSERT(pt_count_of(e) < X86PT_ENTRIES);
    pte_store(slot, e + PTE_COUNT_ONE);
}

/* The table at `level` on `path` lost one present entry: unlink it (and
 * then its parents, recursively) when it becomes empty and is not the root
 * or pinned, and hand it to `tlb` to be freed after the invalidation. The
 * caller has recorded `va` in `tlb`, which also covers the unlinked tables'
 * paging-structure cache entries. */
void pt_count_dec(x86pt_t *m, pt_path_t *path, mm_vaddr_t va, unsigned level,
                  mm_tlb_batch_t *tlb);

/* Table frames set aside before a change so the change itself cannot fail.
 * Reserved frames are chained through their first word. */
typedef struct pt_reserve {
    mm_paddr_t head;
    size_t count;
} pt_reserve_t;

#define PT_RESERVE_INIT {0, 0}

/* Add n frames; on failure give back what this call took and return
 * MM_ERR_NOMEM (frames reserved earlier stay). */
mm_status_t pt_reserve_fill(x86pt_t *m, pt_reserve_t *r, size_t n);
/* Take one frame, zeroed. The reserve must not be empty. */
mm_paddr_t pt_reserve_take(pt_reserve_t *r);

/* Immediate free, only for frames no CPU can have cached: never linked
 * (reserve rollback) or belonging to a hierarchy the caller guarantees is
 * cached nowhere (root_destroy). Tables a change unlinks from a live
 * hierarchy go through pt_table_retire instead. */
void pt_frame_free(x86pt_t *m, mm_paddr_t frame);

/* Free an unlinked table once `tlb` has been flushed. The frame is not
 * written from here on (nothing is threaded through it): a stale walk may
 * read it until the flush and must find only non-present entries. */
static inline void pt_table_retire(x86pt_t *m, mm_paddr_t frame, mm_tlb_batch_t *tlb)
{
    mm_tlb_batch_defer_free(tlb, &m->frames, frame);
}

/* Flag checks and encodings. */

/* PAT index for the flags under X86PT_PAT_MSR, -1 for unknown bits or an
 * unknown memory type. */
static inline int pt_pat_index(mm_map_flags_t flags)
{
    if (!mm_map_flags_valid(flags))
        return -1;
    /* Device memory is strong UC rather than UC-: an MTRR cannot turn
     * device registers into WC behind the driver's back. Normal
     * non-cacheable memory is UC-, which such an MTRR may make WC, still a
     * normal-memory type. */
    static const int8_t index_of[MM_MEM_TYPE_COUNT] = {
        [MM_MEM_WRITE_BACK] = 0,       [MM_MEM_WRITE_THROUGH] = 1,
        [MM_MEM_WRITE_COMBINING] = 4,  [MM_MEM_NORMAL_NC] = 2,
        [MM_MEM_DEVICE] = 3,
    };
    return index_of[mm_map_mem_type(flags)];
}

/* The PAT bit moved to bit 12 in large-page entries because bit 7 is PS
 * there; bit 12 of a 4 KiB entry is an address bit. */
static inline uint64_t pt_pat_bit(unsigned level)
{
    return level == 1 ? PTE_PAT_4K : PTE_PAT_HUGE;
}

/* MM_ERR_INVALID: unknown bits or memory type, a user page in the kernel
 * half (it would need the user bit on shared kernel intermediates).
 * MM_ERR_UNSUPPORTED: no-execute requested where it cannot be expressed
 * and the configuration says to refuse. */
static inline mm_status_t pt_check_flags(const x86pt_t *m, mm_map_flags_t flags,
                                         bool kernel_half)
{
    if (pt_pat_index(flags) < 0)
        return MM_ERR_INVALID;
    if ((flags & MM_MAP_USER) && kernel_half)
        return MM_ERR_INVALID;
    if (!m->nx && m->strict_nx && !(flags & MM_MAP_EXEC))
        return MM_ERR_UNSUPPORTED;
    return MM_OK;
}

/* Leaf entry bits (no address) for valid flags whose PAT index `idx`
 * (pt_pat_index, >= 0) the caller already has. */
static inline uint64_t pt_leaf_bits_idx(const x86pt_t *m, mm_map_flags_t flags, unsigned level,
                                        int idx)
{
    uint64_t e = PTE_P;
    if (flags & MM_MAP_WRITE)
        e |= PTE_RW;
    if (flags & MM_MAP_USER)
        e |= PTE_US;
    if (flags & MM_MAP_GLOBAL)
        e |= PTE_G;
    if (!(flags & MM_MAP_EXEC))
        e |= m->nx_bit;
    MM_ASSERT(idx >= 0);
    if (idx & 1)
        e |= PTE_PWT;
    if (idx & 2)
        e |= PTE_PCD;
    if (idx & 4)
        e |= pt_pat_bit(level);
    if (level > 1)
        e |= PTE_PS;
    return e;
}

/* Leaf entry bits (no address) for valid flags. */
static inline uint64_t pt_leaf_bits(const x86pt_t *m, mm_map_flags_t flags, unsigned level)
{
    return pt_leaf_bits_idx(m, flags, level, pt_pat_index(flags));
}

/* Bits of a leaf entry that flags control (protect keeps the rest). */
static inline uint64_t pt_flag_mask(unsigned level)
{
    return PTE_P | PTE_RW | PTE_US | PTE_PWT | PTE_PCD | PTE_G | PTE_NX | pt_pat_bit(level);
}

/* Flags of a leaf, combined with the restrictions of the levels above
 * (`up_rw`, `up_us`: all levels above allow; `up_nx`: some level forbids). */
static inline mm_map_flags_t pt_leaf_flags(const x86pt_t *m, uint64_t e, unsigned level,
                                           bool up_rw, bool up_us, bool up_nx)
{
    /* PAT index -> memory type under X86PT_PAT_MSR; indices we never write
     * decode to the type they hold (5: WT; 6: UC-; 7: UC). */
    static const uint8_t pat_flags[8] = {
        MM_MAP_WRITE_BACK,     MM_MAP_WRITE_THROUGH, MM_MAP_NORMAL_NC, MM_MAP_DEVICE,
        MM_MAP_WRITE_COMBINING, MM_MAP_WRITE_THROUGH, MM_MAP_NORMAL_NC, MM_MAP_DEVICE,
    };
    mm_map_flags_t f = 0;
    if ((e & PTE_RW) && up_rw)
        f |= MM_MAP_WRITE;
    if ((e & PTE_US) && up_us)
        f |= MM_MAP_USER;
    if (e & PTE_G)
        f |= MM_MAP_GLOBAL;
    /* Without NX the CPU executes everything (bit 63 is reserved there). */
    if (!m->nx || (!(e & PTE_NX) && !up_nx))
        f |= MM_MAP_EXEC;
    unsigned idx = ((e & PTE_PWT) ? 1u : 0u) | ((e & PTE_PCD) ? 2u : 0u) |
                   ((e & pt_pat_bit(level)) ? 4u : 0u);
    return f | pat_flags[idx];
}

/* Shared validation of (root, va, size) for map/unmap/protect. */
static inline mm_status_t pt_check_page(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                        mm_page_size_t size)
{
    if (!pt_root_ok(m, root) || !pt_size_valid(size))
        return MM_ERR_INVALID;
    if (!pt_canonical(m, va))
        return MM_ERR_NOT_CANONICAL;
    if (!mm_is_aligned(va, mm_page_bytes(size)))
        return MM_ERR_ALIGN;
    return MM_OK;
}

/* Plan for mapping one page: checks for conflicts and says how many tables
 * must be created. */
typedef struct pt_map_plan {
    pt_path_t path;
    unsigned leaf_level;
    unsigned new_tables;     /* tables to create below path.level */
    mm_paddr_t replace;      /* empty table to free and replace (0: none) */
} pt_map_plan_t;

/* The plan for the walk already in plan->path (stopped at `level`). */
static inline __attribute__((always_inline)) mm_status_t
pt_map_plan_walked(unsigned level, unsigned leaf_level, pt_map_plan_t *plan)
{
    uint64_t e = pte_load(plan->path.slot[level]);
    plan->leaf_level = leaf_level;
    plan->new_tables = 0;
    plan->replace = 0;
    if (level > leaf_level) {
        if (e & PTE_P)
            return MM_ERR_EXISTS; /* a larger page covers va */
        plan->new_tables = level - leaf_level;
        return MM_OK;
    }
    if (!(e & PTE_P))
        return MM_OK;
    if (pt_is_leaf(e, level) || pt_count_of(e) != 0)
        return MM_ERR_EXISTS;
    /* A huge request over a table with no entries: nothing is lost by
     * replacing it, and refusing would strand the range for good. */
    plan->replace = pt_table_pa(e);
    return MM_OK;
}

/* Carry out a plan with frames from `r`; cannot fail. */
void pt_map_commit(x86pt_t *m, pt_map_plan_t *plan, mm_vaddr_t va, mm_paddr_t pa,
                   mm_map_flags_t flags, pt_reserve_t *r, mm_tlb_batch_t *tlb);

/* pt_walk with the loop unrolled for each depth and target (the hot
 * paths of map and map_range). */
static inline __attribute__((always_inline)) unsigned
pt_walk_unrolled(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, unsigned target,
                 pt_path_t *path)
{
    if (m->levels == 4) {
        if (target == 1)
            return pt_walk_n(4, root, va, 1, path);
        if (target == 2)
            return pt_walk_n(4, root, va, 2, path);
        return pt_walk_n(4, root, va, 3, path);
    }
    if (target == 1)
        return pt_walk_n(5, root, va, 1, path);
    if (target == 2)
        return pt_walk_n(5, root, va, 2, path);
    return pt_walk_n(5, root, va, 3, path);
}

/* Plan for mapping a page of `leaf_level` at va: one walk, whose slots the
 * commit reuses. */
static inline mm_status_t pt_map_plan(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                      unsigned leaf_level, pt_map_plan_t *plan)
{
    return pt_map_plan_walked(pt_walk_unrolled(m, root, va, leaf_level, &plan->path), leaf_level,
                              plan);
}

/* Find the leaf mapping va exactly at `leaf_level` (unmap/protect).
 * MM_ERR_NOT_MAPPED or MM_ERR_SIZE_MISMATCH otherwise. */
static inline mm_status_t pt_find_leaf(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                       unsigned leaf_level, pt_path_t *path)
{
    unsigned level = pt_walk(m, root, va, leaf_level, path);
    uint64_t e = pte_load(path->slot[level]);
    if (!(e & PTE_P))
        return MM_ERR_NOT_MAPPED;
    if (level != leaf_level || !pt_is_leaf(e, level))
        return MM_ERR_SIZE_MISMATCH; /* a larger page, or smaller pages below */
    return MM_OK;
}

/* Leaf removal and flag change on a found path; cannot fail. */
uint64_t pt_unmap_leaf(x86pt_t *m, pt_path_t *path, mm_vaddr_t va, mm_tlb_batch_t *tlb);
void pt_protect_leaf(x86pt_t *m, pt_path_t *path, mm_vaddr_t va, mm_map_flags_t flags,
                     mm_tlb_batch_t *tlb);

/* Give the path above `level` the user bit where missing (user-half user
 * leaf). Records va in the batch when an entry changed. */
void pt_grant_user(pt_path_t *path, unsigned top, unsigned level, mm_vaddr_t va,
                   mm_page_size_t size, mm_tlb_batch_t *tlb);

/* The common case of a commit: the path exists and the slot is empty. The
 * same steps as pt_map_commit with nothing to build, inline and without the
 * reserve. Returns false (and does nothing) when the plan needs tables or
 * replaces one: the caller then reserves and calls pt_map_commit. */
static inline bool pt_map_commit_fast(x86pt_t *m, pt_map_plan_t *plan, mm_vaddr_t va,
                                      mm_paddr_t pa, mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    if (plan->new_tables != 0 || plan->replace != 0)
        return false;
    unsigned level = plan->leaf_level;
    MM_ASSERT(plan->path.level == level);
    if (flags & MM_MAP_USER)
        pt_grant_user(&plan->path, m->levels, level, va, pt_size_of(level), tlb);
    pte_publish(plan->path.slot[level],
                pt_leaf_bits_idx(m, flags, level, pt_pat_index(flags)) | pa);
    pt_count_inc(m, &plan->path, va, level);
    return true;
}

/* What lies at va: a leaf (true; *leaf filled) or nothing, in which case
 * *next is the first address after the hole found (0 when the hole reaches
 * the top of the address space). Read-only. O(levels). Inline so translate
 * keeps the leaf in registers. */
static inline bool pt_lookup(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                             x86pt_leaf_t *leaf, mm_vaddr_t *next)
{
    uint64_t *table = pt_table(root);
    bool rw = true, us = true, nx = false;
    for (unsigned level = m->levels;; level--) {
        uint64_t e = pte_load(&table[pt_index(va, level)]);
        if (!(e & PTE_P)) {
            uint64_t span = (uint64_t)1 << pt_shift(level);
            *next = pt_canon(m, mm_align_down(va, span) + span);
            /* Past the last entry of the lower half comes the kernel half;
             * past the last of the kernel half comes the end (0). */
            if (mm_align_down(va, span) + span == 0)
                *next = 0;
            return false;
        }
        if (pt_is_leaf(e, level)) {
            mm_page_size_t size = pt_size_of(level);
            leaf->va = mm_align_down(va, mm_page_bytes(size));
            leaf->pa = pt_leaf_pa(e, level);
            leaf->size = size;
            leaf->flags = pt_leaf_flags(m, e, level, rw, us, nx);
            leaf->entry = e;
            return true;
        }
        rw = rw && (e & PTE_RW);
        us = us && (e & PTE_US);
        nx = nx || (e & PTE_NX);
        table = pt_table(pt_table_pa(e));
    }
}

/* Table visitor used by walk, dump, audit and check: visits every present
 * entry of [first, last] in address order. */
typedef struct pt_visit {
    const x86pt_t *m;
    mm_vaddr_t first, last;
    /* Called for each leaf; return false to stop. */
    bool (*leaf)(struct pt_visit *v, const x86pt_leaf_t *leaf, unsigned level);
    /* Called for each present non-leaf entry before descending (may be
     * NULL); return false to skip the subtree. */
    bool (*table)(struct pt_visit *v, mm_vaddr_t va, unsigned level, uint64_t *slot);
    void *arg;
    bool stopped;
} pt_visit_t;

void pt_visit(pt_visit_t *v, mm_paddr_t root);

#endif /* HADRON_MM_X86PT_INTERNAL_H */
