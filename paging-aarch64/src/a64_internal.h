/*
 * paging-aarch64 private header: descriptor encodings, table access, the
 * walk path, per-table counts and the table-frame reserve.
 *
 * Levels are numbered by height, as in paging-x86_64, so the loops read the
 * same: 1 = Arm lookup level 3 (pages), 2 = level 2 (2 MiB blocks), 3 =
 * level 1 (1 GiB blocks), 4 = level 0, 5 = level -1 (LPA2, 52-bit VA). The
 * root is at m->levels. a64_arm_level converts for what the API reports.
 */
#ifndef HADRON_MM_A64_INTERNAL_H
#define HADRON_MM_A64_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/a64pt.h>
#include <hadron/mm/assert.h>
#include <hadron/mm/hhdm.h>

#include "ptk.h"

/* Shared internal functions link as a64pt_i_*. */
#define a64_count_dec a64pt_i_count_dec
#define a64_frame_free a64pt_i_frame_free
#define a64_map_commit a64pt_i_map_commit
#define a64_unmap_leaf a64pt_i_unmap_leaf
#define a64_protect_leaf a64pt_i_protect_leaf
#define a64_bbm_store a64pt_i_bbm_store

/* Descriptor bits (Arm ARM VMSAv8-64 descriptor formats, 4 KiB granule). */
#define D_VALID (1ull << 0)
#define D_TABLE (1ull << 1)        /* levels -1..2: table; level 3: page (must be 1) */
#define D_ATTR_SHIFT 2u
#define D_ATTR_MASK (7ull << D_ATTR_SHIFT)
#define D_NS (1ull << 5)
#define D_AP_EL0 (1ull << 6)       /* AP[1] */
#define D_AP_RO (1ull << 7)        /* AP[2] */
#define D_SH_MASK (3ull << 8)
#define D_SH_INNER (3ull << 8)
#define D_AF (1ull << 10)
#define D_NG (1ull << 11)
#define D_DBM (1ull << 51)
#define D_CONT (1ull << 52)
#define D_PXN (1ull << 53)
#define D_UXN (1ull << 54)
#define D_SW_MASK (0xfull << 55)   /* software use in page/block descriptors */
#define D_PXNTABLE (1ull << 59)
#define D_UXNTABLE (1ull << 60)
#define D_APTABLE_NOEL0 (1ull << 61) /* APTable[0] */
#define D_APTABLE_RO (1ull << 62)    /* APTable[1] */
#define D_NSTABLE (1ull << 63)
#define D_TABLE_ATTRS (0x1full << 59)

/* Output / next-level table address fields. Without LPA2: bits 47:12. With
 * LPA2 (TCR_EL1.DS = 1): address bits 49:12 in place, 51:50 in bits 9:8. */
#define D_ADDR_48 0x0000fffffffff000ull
#define D_ADDR_LPA2_LOW 0x0003fffffffff000ull
#define D_ADDR_LPA2_HIGH (3ull << 8)
#define D_LPA2_HIGH_SHIFT 42u /* address bit 50 -> descriptor bit 8 */

/* Per-table count in the table descriptor pointing to the table (see
 * a64pt.h): count[6:0] in bits 58:52, count[9:7] in bits 4:2. */
#define D_CNT_LO_SHIFT 52u
#define D_CNT_LO_MASK (0x7full << D_CNT_LO_SHIFT)
#define D_CNT_HI_SHIFT 2u
#define D_CNT_HI_MASK (7ull << D_CNT_HI_SHIFT)
#define D_CNT_MASK (D_CNT_LO_MASK | D_CNT_HI_MASK)

static inline unsigned a64_arm_level(unsigned height)
{
    return 4u - height; /* as unsigned; callers cast to int (-1 for 5) */
}

static inline int a64_arm_level_int(unsigned height)
{
    return 4 - (int)height;
}

#define a64_shift ptk_shift
#define a64_level_of ptk_level_of
#define a64_size_of ptk_size_of
#define a64_size_valid ptk_size_valid
#define a64_kernel_half ptk_kernel_half
#define a64_table ptk_table
#define d_load ptk_load
#define d_store ptk_store
#define d_publish ptk_publish

/* The level -1 table of a 52-bit space has 16 entries (VA[51:48]); every
 * other table 512. */
static inline unsigned a64_index(mm_vaddr_t va, unsigned level)
{
    unsigned mask = level == 5 ? 15u : A64PT_ENTRIES - 1u;
    return (unsigned)(va >> a64_shift(level)) & mask;
}

/* With a separate kernel root: whether `root` is the kernel's. */
static inline bool a64_is_kernel_root(const a64pt_t *m, mm_paddr_t root)
{
    return m->separate && root == m->kernel_root;
}

/* Whether va is an address of the hierarchy at `root` (a64pt_va_space):
 * one sign-extended space of va_bits per root, or, with a separate kernel
 * root, [0, 2^va_bits) for a user root and the top 2^va_bits of the
 * address space for the kernel root. */
static inline bool a64_va_ok(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va)
{
    /* Without branches on the mode: a branch on `separate` here, laid out
     * in line, cost the shared-root map/unmap path half its time again
     * (paging-bench a64.map_unmap_4k.warm, docs/measurements.md). */
    unsigned shift = m->va_bits - 1u + (unsigned)m->separate;
    uint64_t top = va >> shift;
    bool kernel_root = a64_is_kernel_root(m, root);
    return (top == 0 && !kernel_root) |
           (top == (UINT64_MAX >> shift) && (kernel_root | !m->separate));
}

/* The address an index path names below `root` (va holds the path's bits,
 * from the root entry's index down). */
static inline mm_vaddr_t a64_canon(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va)
{
    if (m->separate) {
        mm_vaddr_t low_mask = ((mm_vaddr_t)1 << m->va_bits) - 1u;
        return a64_is_kernel_root(m, root) ? (va & low_mask) | ~low_mask : va & low_mask;
    }
    return ptk_canon(m->va_bits, va);
}

/* Root entries of the user half: the lower half of a shared root, every
 * entry of a user root beside a separate kernel root. */
static inline unsigned a64_user_root_entries(const a64pt_t *m)
{
    return m->separate ? m->root_entries : m->root_entries / 2u;
}

/* Valid as the hardware reads it: at level 3 only 0b11 is a page (0b01 is
 * reserved, a translation fault); at levels 0 and -1 only 0b11 (a table;
 * this mapper makes no level-0 blocks); at levels 1 and 2 bit 0 alone. */
static inline bool a64_valid(uint64_t e, unsigned level)
{
    if (level == 2 || level == 3)
        return (e & D_VALID) != 0;
    return (e & (D_VALID | D_TABLE)) == (D_VALID | D_TABLE);
}

/* For a valid entry: a page or block (not a table). */
static inline bool a64_is_leaf(uint64_t e, unsigned level)
{
    return level == 1 || (level <= 3 && (e & D_TABLE) == 0);
}

static inline unsigned a64_count_of(uint64_t e)
{
    return (unsigned)((e & D_CNT_LO_MASK) >> D_CNT_LO_SHIFT) |
           (unsigned)(((e & D_CNT_HI_MASK) >> D_CNT_HI_SHIFT) << 7);
}

static inline uint64_t a64_count_bits(unsigned count)
{
    return ((uint64_t)(count & 0x7fu) << D_CNT_LO_SHIFT) |
           ((uint64_t)(count >> 7) << D_CNT_HI_SHIFT);
}

static inline uint64_t a64_with_count(uint64_t e, unsigned count)
{
    return (e & ~D_CNT_MASK) | a64_count_bits(count);
}

/* Address field of a descriptor for physical address pa (4 KiB aligned). */
static inline uint64_t a64_addr_bits(const a64pt_t *m, mm_paddr_t pa)
{
    if (!m->lpa2)
        return pa & D_ADDR_48;
    return (pa & D_ADDR_LPA2_LOW) | ((pa >> D_LPA2_HIGH_SHIFT) & D_ADDR_LPA2_HIGH);
}

/* Physical address in a descriptor (table address or OA, low bits clear). */
static inline mm_paddr_t a64_addr(const a64pt_t *m, uint64_t e)
{
    if (!m->lpa2)
        return e & D_ADDR_48;
    return (e & D_ADDR_LPA2_LOW) | ((e & D_ADDR_LPA2_HIGH) << D_LPA2_HIGH_SHIFT);
}

static inline mm_paddr_t a64_leaf_pa(const a64pt_t *m, uint64_t e, unsigned level)
{
    return a64_addr(m, e) & ~(mm_page_bytes(a64_size_of(level)) - 1u);
}

/* After new valid entries, before returning (page_mapper.h: a mapper makes a
 * new entry visible to its own CPU's table walker): DSB ISHST orders the
 * stores before any later walk, ISB discards instructions fetched under the
 * old view. Host builds run over simulated tables that no walker reads:
 * only a compiler barrier there. */
static inline void a64_walker_sync(void)
{
#if defined(__aarch64__)
    __asm__ volatile("dsb ishst\n\tisb" ::: "memory");
#else
    __asm__ volatile("" ::: "memory");
#endif
}

static inline bool a64_root_ok(const a64pt_t *m, mm_paddr_t root)
{
    return m != NULL && ptk_root_ok(m->phys_end, root);
}

typedef ptk_path_t a64_path_t;
typedef ptk_map_plan_t a64_map_plan_t;
typedef ptk_reserve_t a64_reserve_t;
#define A64_RESERVE_INIT PTK_RESERVE_INIT
#define a64_reserve_take ptk_reserve_take

static inline void a64_table_retire(a64pt_t *m, mm_paddr_t frame, mm_tlb_batch_t *tlb)
{
    mm_tlb_batch_defer_free(tlb, &m->frames, frame);
}

/* Break-before-make of one valid descriptor (page_mapper.h, "Synchronous
 * invalidations"): exchange it for 0, record the old translation of the
 * `size` page at va in the caller's batch (`global`: it was nG clear) and
 * flush the batch (one hook call for the batch's identity, then its
 * deferred frees), then store `keep` bits of the old value (AF set by the
 * hardware meanwhile, the software bits) merged into `want`. Returns the
 * old value. */
uint64_t a64_bbm_store(uint64_t *slot, mm_vaddr_t va, mm_page_size_t size, bool global,
                       uint64_t want, uint64_t keep, mm_tlb_batch_t *tlb);

/* The AttrIndx of the memory type `flags` names (page_mapper.h), or -1 for
 * unknown bits or an unknown type. Arm has no write-combining type: Normal
 * Non-cacheable gathers writes, so write-combining and normal NC share it. */
static inline int a64_attr_index(mm_map_flags_t flags)
{
    if (!mm_map_flags_valid(flags))
        return -1;
    switch (mm_map_mem_type(flags)) {
    case MM_MEM_WRITE_BACK:
        return A64PT_ATTR_WB;
    case MM_MEM_WRITE_THROUGH:
        return A64PT_ATTR_WT;
    case MM_MEM_WRITE_COMBINING:
    case MM_MEM_NORMAL_NC:
        return A64PT_ATTR_NC;
    case MM_MEM_DEVICE:
        return A64PT_ATTR_DEVICE;
    default:
        return -1;
    }
}

/* MM_ERR_INVALID: unknown bits or memory type, a user page in the kernel
 * half, a global user page (visible under every ASID), executable device
 * memory (speculative instruction fetches from device registers). */
static inline mm_status_t a64_check_flags(mm_map_flags_t flags, bool kernel_half)
{
    if (a64_attr_index(flags) < 0)
        return MM_ERR_INVALID;
    if ((flags & MM_MAP_USER) && (kernel_half || (flags & MM_MAP_GLOBAL)))
        return MM_ERR_INVALID;
    if (mm_map_mem_type(flags) == MM_MEM_DEVICE && (flags & MM_MAP_EXEC))
        return MM_ERR_INVALID;
    return MM_OK;
}

/* THE translation of interface flags into descriptor bits (no address) for
 * flags a64_check_flags accepted. Everything flag-shaped about the format
 * is here and in a64_leaf_flags, its inverse. */
static inline uint64_t a64_leaf_bits(const a64pt_t *m, mm_map_flags_t flags, unsigned level)
{
    uint64_t e = D_VALID | D_AF | ((uint64_t)a64_attr_index(flags) << D_ATTR_SHIFT);
    if (level == 1)
        e |= D_TABLE; /* a page descriptor is 0b11 */
    if (!m->lpa2)
        e |= D_SH_INNER;
    if (!(flags & MM_MAP_WRITE))
        e |= D_AP_RO;
    if (flags & MM_MAP_USER)
        e |= D_AP_EL0 | D_NG | D_PXN | ((flags & MM_MAP_EXEC) ? 0 : D_UXN);
    else
        e |= D_UXN | ((flags & MM_MAP_EXEC) ? 0 : D_PXN);
    if (!(flags & MM_MAP_GLOBAL))
        e |= D_NG;
    return e;
}

/* Bits of a leaf that flags control; protect keeps the rest (AF, the
 * address, SH, the software bits). */
#define D_FLAG_MASK (D_ATTR_MASK | D_AP_EL0 | D_AP_RO | D_NG | D_PXN | D_UXN)
/* Changing these in a valid leaf needs break-before-make. */
#define D_BBM_MASK (D_ATTR_MASK | D_NG)

/* Flags of a leaf combined with the hierarchical bits (OR of the table
 * descriptors above: `up`). */
static inline mm_map_flags_t a64_leaf_flags(uint64_t e, uint64_t up)
{
    /* AttrIndx 2 reads back as normal NC (write-combining maps to it too);
     * 4..7 (Device-nGnRnE, never written) as device. */
    static const uint8_t attr_flags[8] = {
        MM_MAP_WRITE_BACK, MM_MAP_WRITE_THROUGH, MM_MAP_NORMAL_NC, MM_MAP_DEVICE,
        MM_MAP_DEVICE,     MM_MAP_DEVICE,        MM_MAP_DEVICE,    MM_MAP_DEVICE,
    };
    mm_map_flags_t f = attr_flags[(e & D_ATTR_MASK) >> D_ATTR_SHIFT];
    bool user = (e & D_AP_EL0) && !(up & D_APTABLE_NOEL0);
    if (!(e & D_AP_RO) && !(up & D_APTABLE_RO))
        f |= MM_MAP_WRITE;
    if (user) {
        f |= MM_MAP_USER;
        if (!(e & D_UXN) && !(up & D_UXNTABLE))
            f |= MM_MAP_EXEC;
    } else if (!(e & D_PXN) && !(up & D_PXNTABLE)) {
        f |= MM_MAP_EXEC;
    }
    if (!(e & D_NG))
        f |= MM_MAP_GLOBAL;
    return f;
}

static inline mm_status_t a64_check_page(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                         mm_page_size_t size)
{
    if (!a64_root_ok(m, root) || !a64_size_valid(size))
        return MM_ERR_INVALID;
    if (!a64_va_ok(m, root, va))
        return MM_ERR_NOT_CANONICAL;
    if (!mm_is_aligned(va, mm_page_bytes(size)))
        return MM_ERR_ALIGN;
    return MM_OK;
}

/* The format as the page-table kit sees it (ptk.h), defined below. */
static const ptk_ops_t a64_ops;

static inline ptk_geom_t a64_geom(const a64pt_t *m)
{
    ptk_geom_t g = {&m->frames, m->levels, m->va_bits, 3u, m->phys_end, !m->separate};
    return g;
}

/* For a public entry point: a NULL mapper has no frames, so every root is
 * rejected (MM_ERR_INVALID) by the kit's argument checks. */
static inline ptk_geom_t a64_geom_or_none(const a64pt_t *m)
{
    return m != NULL ? a64_geom(m) : (ptk_geom_t){NULL, 0, 0, 0, 0, false};
}

/* The table at `level` hangs off a kernel-half root entry of a shared
 * kernel half (ptk_pinned): other roots hold copies of its root entries. A
 * separate kernel root is copied nowhere, so its tables come and go like a
 * user root's. */
static inline bool a64_pinned(const a64pt_t *m, mm_vaddr_t va, unsigned level)
{
    return !m->separate && level + 1u == m->levels && a64_kernel_half(va);
}

/* Descend toward level `target` (ptk_walk_n), unrolled for each depth. */
static inline unsigned a64_walk(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                unsigned target, a64_path_t *path)
{
    if (m->levels == 4)
        return ptk_walk_n(&a64_ops, m, 4, root, va, target, path);
    return ptk_walk_n(&a64_ops, m, 5, root, va, target, path);
}

static inline mm_status_t a64_map_plan(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                       unsigned leaf_level, a64_map_plan_t *plan)
{
    unsigned level = a64_walk(m, root, va, leaf_level, &plan->path);
    return ptk_map_plan_walked(&a64_ops, m, level, leaf_level, plan);
}

static inline mm_status_t a64_find_leaf(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                        unsigned leaf_level, a64_path_t *path)
{
    return ptk_found_leaf(&a64_ops, a64_walk(m, root, va, leaf_level, path), leaf_level, path);
}

/* The table at `level` on `path` gained one valid entry. The hardware
 * never writes a table descriptor (TCR2_EL1.HAFT = 0), and changing
 * IGNORED bits of a valid descriptor needs no break-before-make. */
static inline void a64_count_inc(const a64pt_t *m, a64_path_t *path, mm_vaddr_t va,
                                 unsigned level)
{
    ptk_geom_t g = a64_geom(m);
    ptk_count_inc(&a64_ops, &g, path, va, level);
}

/* The table at `level` lost one valid entry (ptk_count_dec): TLBI VAAE1IS
 * for the recorded va also drops the walk-cache entries of unlinked tables. */
void a64_count_dec(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, unsigned level,
                   mm_tlb_batch_t *tlb);

static inline mm_status_t a64_reserve_fill(a64pt_t *m, a64_reserve_t *r, size_t n)
{
    ptk_geom_t g = a64_geom(m);
    return ptk_reserve_fill(&g, r, n);
}

/* Immediate free: never-linked frames, or a destroyed root's tables. */
void a64_frame_free(a64pt_t *m, mm_paddr_t frame);

void a64_map_commit(a64pt_t *m, a64_map_plan_t *plan, mm_vaddr_t va, mm_paddr_t pa,
                    mm_map_flags_t flags, a64_reserve_t *r, mm_tlb_batch_t *tlb);
uint64_t a64_unmap_leaf(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, mm_tlb_batch_t *tlb);
void a64_protect_leaf(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, mm_map_flags_t flags,
                      mm_tlb_batch_t *tlb);

/* ---- The kit's view of the format --------------------------------------- */

static inline mm_paddr_t a64_op_table_pa(const void *m, uint64_t e)
{
    return a64_addr(m, e);
}

static inline mm_paddr_t a64_op_leaf_pa(const void *m, uint64_t e, unsigned level)
{
    return a64_leaf_pa(m, e, level);
}

/* The count is split over two fields: decode, step, encode. */
static inline uint64_t a64_op_count_step(uint64_t e, int delta)
{
    return a64_with_count(e, (unsigned)((int)a64_count_of(e) + delta));
}

/* `up` is the OR of the hierarchical attributes of the tables above. */
static inline uint64_t a64_op_inherit(uint64_t up, uint64_t e)
{
    return up | (e & D_TABLE_ATTRS);
}

static inline mm_map_flags_t a64_op_leaf_flags(const void *m, uint64_t e, unsigned level,
                                               uint64_t up)
{
    (void)m;
    (void)level;
    return a64_leaf_flags(e, up);
}

static inline bool a64_op_va_ok(const void *m, mm_paddr_t root, mm_vaddr_t va)
{
    return a64_va_ok(m, root, va);
}

static inline mm_vaddr_t a64_op_canon(const void *m, mm_paddr_t root, mm_vaddr_t va)
{
    return a64_canon(m, root, va);
}

static inline mm_status_t a64_op_check_flags(const void *m, mm_map_flags_t flags,
                                             bool kernel_half)
{
    (void)m;
    return a64_check_flags(flags, kernel_half);
}

static inline mm_status_t a64_op_map_plan(const void *m, mm_paddr_t root, mm_vaddr_t va,
                                          unsigned leaf_level, ptk_map_plan_t *plan)
{
    return a64_map_plan(m, root, va, leaf_level, plan);
}

static inline void a64_op_map_commit(void *m, ptk_map_plan_t *plan, mm_vaddr_t va,
                                     mm_paddr_t pa, mm_map_flags_t flags, ptk_reserve_t *r,
                                     mm_tlb_batch_t *tlb)
{
    a64_map_commit(m, plan, va, pa, flags, r, tlb);
}

static inline mm_status_t a64_op_find_leaf(const void *m, mm_paddr_t root, mm_vaddr_t va,
                                           unsigned leaf_level, ptk_path_t *path)
{
    return a64_find_leaf(m, root, va, leaf_level, path);
}

static inline void a64_op_unmap_leaf(void *m, ptk_path_t *path, mm_vaddr_t va,
                                     mm_tlb_batch_t *tlb)
{
    (void)a64_unmap_leaf(m, path, va, tlb);
}

static inline void a64_op_protect_leaf(void *m, ptk_path_t *path, mm_vaddr_t va,
                                       mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    a64_protect_leaf(m, path, va, flags, tlb);
}

static const ptk_ops_t a64_ops = {
    .index = a64_index,
    .present = a64_valid,
    .is_leaf = a64_is_leaf,
    .table_pa = a64_op_table_pa,
    .leaf_pa = a64_op_leaf_pa,
    .count_of = a64_count_of,
    .count_step = a64_op_count_step,
    .up_init = 0,
    .inherit = a64_op_inherit,
    .leaf_flags = a64_op_leaf_flags,
    .va_ok = a64_op_va_ok,
    .canon = a64_op_canon,
    .check_flags = a64_op_check_flags,
    .map_plan = a64_op_map_plan,
    .map_commit = a64_op_map_commit,
    .map_done = a64_walker_sync,
    .find_leaf = a64_op_find_leaf,
    .unmap_leaf = a64_op_unmap_leaf,
    .protect_leaf = a64_op_protect_leaf,
};

/* What lies at va (ptk_lookup), instantiated for each depth so each
 * level's index and tests fold to constants (translate's hot path). */
static inline bool a64_lookup(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                              ptk_leaf_t *leaf, mm_vaddr_t *next)
{
    ptk_geom_t g = a64_geom(m);
    if (m->levels == 4) {
        g.levels = 4;
        return ptk_lookup(&a64_ops, m, &g, root, va, leaf, next);
    }
    g.levels = 5;
    return ptk_lookup(&a64_ops, m, &g, root, va, leaf, next);
}

typedef ptk_visit_t a64_visit_t;

static inline void a64_visit(a64_visit_t *v, mm_paddr_t root)
{
    ptk_geom_t g = a64_geom(v->m);
    ptk_visit(&a64_ops, &g, v, root);
}

#endif /* HADRON_MM_A64_INTERNAL_H */
