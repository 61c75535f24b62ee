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

#include "ptk.h"

/* Internal functions shared between sources keep short pt_ names in the
 * code but link as x86pt_i_*, so they cannot collide with a kernel's own
 * symbols. */
#define pt_count_dec x86pt_i_count_dec
#define pt_frame_free x86pt_i_frame_free
#define pt_map_commit x86pt_i_map_commit
#define pt_unmap_leaf x86pt_i_unmap_leaf
#define pt_protect_leaf x86pt_i_protect_leaf
#define pt_grant_user x86pt_i_grant_user

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

#define pt_shift ptk_shift
#define pt_level_of ptk_level_of
#define pt_size_of ptk_size_of
#define pt_size_valid ptk_size_valid
#define pt_kernel_half ptk_kernel_half
#define pt_table ptk_table
#define pte_load ptk_load
#define pte_store ptk_store
#define pte_publish ptk_publish

static inline unsigned pt_index(mm_vaddr_t va, unsigned level)
{
    return (unsigned)(va >> pt_shift(level)) & (X86PT_ENTRIES - 1u);
}

/* x86_64's address rule, which only this mapper knows: the bits above the
 * implemented width (48 or 57) are copies of the top implemented bit. The
 * rest of hadron-mm sees it as the two ranges of x86pt_va_space. */
static inline bool pt_canonical(const x86pt_t *m, mm_vaddr_t va)
{
    return ptk_canonical(m->va_bits, va);
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

/* A root (or any table) the caller names must be a frame we can reach. */
static inline bool pt_root_ok(const x86pt_t *m, mm_paddr_t root)
{
    return m != NULL && ptk_root_ok(m->phys_end, root);
}

typedef ptk_path_t pt_path_t;
typedef ptk_map_plan_t pt_map_plan_t;
typedef ptk_reserve_t pt_reserve_t;
#define PT_RESERVE_INIT PTK_RESERVE_INIT
#define pt_reserve_take ptk_reserve_take

/* Free an unlinked table once `tlb` has been flushed (see ptk_count_dec). */
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

/* The format as the page-table kit sees it (ptk.h). Defined below; the
 * walk helpers before it use it through this declaration. */
static const ptk_ops_t pt_ops;

static inline ptk_geom_t pt_geom(const x86pt_t *m)
{
    ptk_geom_t g = {&m->frames, m->levels, m->va_bits, m->pages_1g ? 3u : 2u, m->phys_end, true};
    return g;
}

/* For a public entry point: a NULL mapper has no frames, so every root is
 * rejected (MM_ERR_INVALID) by the kit's argument checks. */
static inline ptk_geom_t pt_geom_or_none(const x86pt_t *m)
{
    return m != NULL ? pt_geom(m) : (ptk_geom_t){NULL, 0, 0, 0, 0, true};
}

/* The table at `level` hangs off a kernel-half root entry (ptk_pinned). */
static inline bool pt_pinned(const x86pt_t *m, mm_vaddr_t va, unsigned level)
{
    return level + 1u == m->levels && pt_kernel_half(va);
}

/* pt_walk with the loop unrolled for each depth and target (the hot
 * paths of map and map_range). */
static inline __attribute__((always_inline)) unsigned
pt_walk_unrolled(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, unsigned target,
                 pt_path_t *path)
{
    if (m->levels == 4) {
        if (target == 1)
            return ptk_walk_n(&pt_ops, m, 4, root, va, 1, path);
        if (target == 2)
            return ptk_walk_n(&pt_ops, m, 4, root, va, 2, path);
        return ptk_walk_n(&pt_ops, m, 4, root, va, 3, path);
    }
    if (target == 1)
        return ptk_walk_n(&pt_ops, m, 5, root, va, 1, path);
    if (target == 2)
        return ptk_walk_n(&pt_ops, m, 5, root, va, 2, path);
    return ptk_walk_n(&pt_ops, m, 5, root, va, 3, path);
}

static inline unsigned pt_walk(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                               unsigned target, pt_path_t *path)
{
    return ptk_walk_n(&pt_ops, m, m->levels, root, va, target, path);
}

/* Plan for mapping a page of `leaf_level` at va: one walk, whose slots the
 * commit reuses. */
static inline mm_status_t pt_map_plan(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                      unsigned leaf_level, pt_map_plan_t *plan)
{
    unsigned level = pt_walk_unrolled(m, root, va, leaf_level, &plan->path);
    return ptk_map_plan_walked(&pt_ops, m, level, leaf_level, plan);
}

/* Find the leaf mapping va exactly at `leaf_level` (unmap/protect).
 * MM_ERR_NOT_MAPPED or MM_ERR_SIZE_MISMATCH otherwise. */
static inline mm_status_t pt_find_leaf(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                       unsigned leaf_level, pt_path_t *path)
{
    return ptk_found_leaf(&pt_ops, pt_walk(m, root, va, leaf_level, path), leaf_level, path);
}

/* The table at `level` on `path` gained one present entry. */
static inline void pt_count_inc(const x86pt_t *m, pt_path_t *path, mm_vaddr_t va,
                                unsigned level)
{
    ptk_geom_t g = pt_geom(m);
    ptk_count_inc(&pt_ops, &g, path, va, level);
}

/* The table at `level` on `path` lost one present entry (ptk_count_dec). */
void pt_count_dec(x86pt_t *m, pt_path_t *path, mm_vaddr_t va, unsigned level,
                  mm_tlb_batch_t *tlb);

/* Add n frames to `r` (ptk_reserve_fill). */
static inline mm_status_t pt_reserve_fill(x86pt_t *m, pt_reserve_t *r, size_t n)
{
    ptk_geom_t g = pt_geom(m);
    return ptk_reserve_fill(&g, r, n);
}

/* Immediate free of a frame no CPU can have cached (ptk_frame_free). */
void pt_frame_free(x86pt_t *m, mm_paddr_t frame);

/* Carry out a plan with frames from `r`; cannot fail. */
void pt_map_commit(x86pt_t *m, pt_map_plan_t *plan, mm_vaddr_t va, mm_paddr_t pa,
                   mm_map_flags_t flags, pt_reserve_t *r, mm_tlb_batch_t *tlb);

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

/* ---- The kit's view of the format --------------------------------------- */

static inline bool pt_op_present(uint64_t e, unsigned level)
{
    (void)level;
    return (e & PTE_P) != 0;
}

static inline mm_paddr_t pt_op_table_pa(const void *m, uint64_t e)
{
    (void)m;
    return pt_table_pa(e);
}

static inline mm_paddr_t pt_op_leaf_pa(const void *m, uint64_t e, unsigned level)
{
    (void)m;
    return pt_leaf_pa(e, level);
}

/* The count is a field of its own at the top: one add. */
static inline uint64_t pt_op_count_step(uint64_t e, int delta)
{
    return e + (uint64_t)(int64_t)delta * PTE_COUNT_ONE;
}

/* `up` holds the restrictions of the levels above: PTE_RW or PTE_US when
 * some level clears it, PTE_NX when some level sets it. */
static inline uint64_t pt_op_inherit(uint64_t up, uint64_t e)
{
    return up | (~e & (PTE_RW | PTE_US)) | (e & PTE_NX);
}

static inline mm_map_flags_t pt_op_leaf_flags(const void *m, uint64_t e, unsigned level,
                                              uint64_t up)
{
    return pt_leaf_flags(m, e, level, !(up & PTE_RW), !(up & PTE_US), (up & PTE_NX) != 0);
}

static inline mm_status_t pt_op_check_flags(const void *m, mm_map_flags_t flags,
                                            bool kernel_half)
{
    return pt_check_flags(m, flags, kernel_half);
}

static inline mm_status_t pt_op_map_plan(const void *m, mm_paddr_t root, mm_vaddr_t va,
                                         unsigned leaf_level, ptk_map_plan_t *plan)
{
    return pt_map_plan(m, root, va, leaf_level, plan);
}

static inline void pt_op_map_commit(void *m, ptk_map_plan_t *plan, mm_vaddr_t va, mm_paddr_t pa,
                                    mm_map_flags_t flags, ptk_reserve_t *r, mm_tlb_batch_t *tlb)
{
    if (!pt_map_commit_fast(m, plan, va, pa, flags, tlb))
        pt_map_commit(m, plan, va, pa, flags, r, tlb);
}

static inline mm_status_t pt_op_find_leaf(const void *m, mm_paddr_t root, mm_vaddr_t va,
                                          unsigned leaf_level, ptk_path_t *path)
{
    return pt_find_leaf(m, root, va, leaf_level, path);
}

static inline void pt_op_unmap_leaf(void *m, ptk_path_t *path, mm_vaddr_t va,
                                    mm_tlb_batch_t *tlb)
{
    (void)pt_unmap_leaf(m, path, va, tlb);
}

static inline void pt_op_protect_leaf(void *m, ptk_path_t *path, mm_vaddr_t va,
                                      mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    pt_protect_leaf(m, path, va, flags, tlb);
}

static const ptk_ops_t pt_ops = {
    .index = pt_index,
    .present = pt_op_present,
    .is_leaf = pt_is_leaf,
    .table_pa = pt_op_table_pa,
    .leaf_pa = pt_op_leaf_pa,
    .count_of = pt_count_of,
    .count_step = pt_op_count_step,
    .up_init = 0,
    .inherit = pt_op_inherit,
    .leaf_flags = pt_op_leaf_flags,
    .check_flags = pt_op_check_flags,
    .map_plan = pt_op_map_plan,
    .map_commit = pt_op_map_commit,
    .map_done = NULL,
    .find_leaf = pt_op_find_leaf,
    .unmap_leaf = pt_op_unmap_leaf,
    .protect_leaf = pt_op_protect_leaf,
};

/* What lies at va (ptk_lookup). Read-only. O(levels). */
static inline bool pt_lookup(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, ptk_leaf_t *leaf,
                             mm_vaddr_t *next)
{
    ptk_geom_t g = pt_geom(m);
    return ptk_lookup(&pt_ops, m, &g, root, va, leaf, next);
}

/* Table visitor used by walk, dump, audit and check (ptk_visit). */
typedef ptk_visit_t pt_visit_t;

static inline void pt_visit(pt_visit_t *v, mm_paddr_t root)
{
    ptk_geom_t g = pt_geom(v->m);
    ptk_visit(&pt_ops, &g, v, root);
}

#endif /* HADRON_MM_X86PT_INTERNAL_H */
