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

/* Shared internal functions link as a64pt_i_*. */
#define a64_count_dec a64pt_i_count_dec
#define a64_frame_free a64pt_i_frame_free
#define a64_reserve_fill a64pt_i_reserve_fill
#define a64_reserve_take a64pt_i_reserve_take
#define a64_map_commit a64pt_i_map_commit
#define a64_unmap_leaf a64pt_i_unmap_leaf
#define a64_protect_leaf a64pt_i_protect_leaf
#define a64_bbm_store a64pt_i_bbm_store
#define a64_visit a64pt_i_visit

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

static inline unsigned a64_shift(unsigned level)
{
    return MM_PAGE_SHIFT + 9u * (level - 1u);
}

/* The level -1 table of a 52-bit space has 16 entries (VA[51:48]); every
 * other table 512. */
static inline unsigned a64_index(mm_vaddr_t va, unsigned level)
{
    unsigned mask = level == 5 ? 15u : A64PT_ENTRIES - 1u;
    return (unsigned)(va >> a64_shift(level)) & mask;
}

static inline unsigned a64_level_of(mm_page_size_t size)
{
    return size == MM_PAGE_4K ? 1u : size == MM_PAGE_2M ? 2u : 3u;
}

static inline mm_page_size_t a64_size_of(unsigned level)
{
    return level == 1 ? MM_PAGE_4K : level == 2 ? MM_PAGE_2M : MM_PAGE_1G;
}

static inline bool a64_size_valid(mm_page_size_t size)
{
    return size == MM_PAGE_4K || size == MM_PAGE_2M || size == MM_PAGE_1G;
}

static inline bool a64_kernel_half(mm_vaddr_t va)
{
    return (int64_t)va < 0;
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
    if (m->separate) {
        uint64_t top = va >> m->va_bits;
        return a64_is_kernel_root(m, root) ? top == (UINT64_MAX >> m->va_bits) : top == 0;
    }
    uint64_t top = va >> (m->va_bits - 1u);
    return top == 0 || top == (UINT64_MAX >> (m->va_bits - 1u));
}

/* The address an index path names below `root` (va holds the path's bits,
 * from the root entry's index down). */
static inline mm_vaddr_t a64_canon(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va)
{
    if (m->separate) {
        mm_vaddr_t low_mask = ((mm_vaddr_t)1 << m->va_bits) - 1u;
        return a64_is_kernel_root(m, root) ? (va & low_mask) | ~low_mask : va & low_mask;
    }
    unsigned s = 64u - m->va_bits;
    return (mm_vaddr_t)((int64_t)(va << s) >> s);
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

static inline uint64_t *a64_table(mm_paddr_t pa)
{
    return (uint64_t *)hhdm_phys_to_virt(pa);
}

/* Table walkers read descriptors concurrently and, with TCR_EL1.HA, set AF
 * in leaves: every access is one untorn 64-bit operation. A new table is
 * published with release order so its zeroed contents are visible first;
 * a64_walker_sync then makes the new entries visible to this CPU's walker
 * before the operation returns (page_mapper.h). */
static inline uint64_t d_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void d_store(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void d_publish(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
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
    return m != NULL && mm_is_aligned(root, MM_PAGE_SIZE) && root < m->phys_end &&
           root < hhdm_window_size;
}

typedef struct a64_path {
    uint64_t *slot[A64PT_MAX_LEVELS + 1];
    unsigned level;
} a64_path_t;

/* Descend toward level `target`; stop early at an invalid entry or a leaf.
 * Returns the level of the last slot filled. O(levels). */
static inline __attribute__((always_inline)) unsigned
a64_walk_n(const a64pt_t *m, unsigned levels, mm_paddr_t root, mm_vaddr_t va, unsigned target,
           a64_path_t *path)
{
    const uint64_t off = hhdm_offset_value;
    uint64_t *table = (uint64_t *)(uintptr_t)(root + off);
    unsigned level = levels;
    for (;;) {
        uint64_t *slot = &table[a64_index(va, level)];
        path->slot[level] = slot;
        if (level == target)
            break;
        uint64_t e = d_load(slot);
        /* A block's output address is not a table: never descend into it. */
        if (!a64_valid(e, level) || a64_is_leaf(e, level))
            break;
        table = (uint64_t *)(uintptr_t)(a64_addr(m, e) + off);
        level--;
    }
    path->level = level;
    return level;
}

static inline unsigned a64_walk(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                unsigned target, a64_path_t *path)
{
    if (m->levels == 4)
        return a64_walk_n(m, 4, root, va, target, path);
    return a64_walk_n(m, 5, root, va, target, path);
}

/* The table at `level` hangs off a kernel-half root entry: shared, no count. */
static inline bool a64_pinned(const a64pt_t *m, mm_vaddr_t va, unsigned level)
{
    /* Only a shared kernel half is pinned: other roots hold copies of its
     * root entries. A separate kernel root is copied nowhere, so its tables
     * come and go like a user root's. */
    return !m->separate && level + 1u == m->levels && a64_kernel_half(va);
}

/* The table at `level` on `path` gained one valid entry. A plain load and
 * store: callers serialise software writers and the hardware never writes
 * a table descriptor (TCR2_EL1.HAFT = 0). Changing IGNORED bits of a valid
 * descriptor needs no break-before-make. */
static inline void a64_count_inc(const a64pt_t *m, a64_path_t *path, mm_vaddr_t va,
                                 unsigned level)
{
    if (level == m->levels || a64_pinned(m, va, level))
        return;
    uint64_t *slot = path->slot[level + 1];
    uint64_t e = d_load(slot);
    unsigned c = a64_count_of(e);
    MM_ASSERT(c < A64PT_ENTRIES);
    d_store(slot, a64_with_count(e, c + 1u));
}

/* The table at `level` lost one valid entry: unlink it (and emptied
 * parents) and defer its frame to `tlb`, whose record of va also drops
 * the walk-cache entries pointing at it (TLBI VAAE1IS does). */
void a64_count_dec(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, unsigned level,
                   mm_tlb_batch_t *tlb);

typedef struct a64_reserve {
    mm_paddr_t head;
    size_t count;
} a64_reserve_t;

#define A64_RESERVE_INIT {0, 0}

mm_status_t a64_reserve_fill(a64pt_t *m, a64_reserve_t *r, size_t n);
mm_paddr_t a64_reserve_take(a64_reserve_t *r);
/* Immediate free: never-linked frames, or a destroyed root's tables. */
void a64_frame_free(a64pt_t *m, mm_paddr_t frame);

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

typedef struct a64_map_plan {
    a64_path_t path;
    unsigned leaf_level;
    unsigned new_tables;     /* tables to create below path.level */
    mm_paddr_t replace;      /* empty table to replace by a block (0: none) */
} a64_map_plan_t;

static inline mm_status_t a64_map_plan(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                       unsigned leaf_level, a64_map_plan_t *plan)
{
    unsigned level = a64_walk(m, root, va, leaf_level, &plan->path);
    uint64_t e = d_load(plan->path.slot[level]);
    plan->leaf_level = leaf_level;
    plan->new_tables = 0;
    plan->replace = 0;
    if (level > leaf_level) {
        if (a64_valid(e, level))
            return MM_ERR_EXISTS; /* a larger block covers va */
        plan->new_tables = level - leaf_level;
        return MM_OK;
    }
    if (!a64_valid(e, level))
        return MM_OK;
    if (a64_is_leaf(e, level) || a64_count_of(e) != 0)
        return MM_ERR_EXISTS;
    plan->replace = a64_addr(m, e);
    return MM_OK;
}

void a64_map_commit(a64pt_t *m, a64_map_plan_t *plan, mm_vaddr_t va, mm_paddr_t pa,
                    mm_map_flags_t flags, a64_reserve_t *r, mm_tlb_batch_t *tlb);

static inline mm_status_t a64_find_leaf(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                                        unsigned leaf_level, a64_path_t *path)
{
    unsigned level = a64_walk(m, root, va, leaf_level, path);
    uint64_t e = d_load(path->slot[level]);
    if (!a64_valid(e, level))
        return MM_ERR_NOT_MAPPED;
    if (level != leaf_level || !a64_is_leaf(e, level))
        return MM_ERR_SIZE_MISMATCH;
    return MM_OK;
}

uint64_t a64_unmap_leaf(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, mm_tlb_batch_t *tlb);
void a64_protect_leaf(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, mm_map_flags_t flags,
                      mm_tlb_batch_t *tlb);

/* What lies at va: a leaf (true) or a hole, in which case *next is the
 * first address after it (0 at the top of the address space). */
static inline bool a64_lookup(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va,
                              a64pt_leaf_t *leaf, mm_vaddr_t *next)
{
    uint64_t *table = a64_table(root);
    uint64_t up = 0;
    for (unsigned level = m->levels;; level--) {
        uint64_t e = d_load(&table[a64_index(va, level)]);
        if (!a64_valid(e, level)) {
            uint64_t span = (uint64_t)1 << a64_shift(level);
            mm_vaddr_t end = mm_align_down(va, span) + span;
            *next = end == 0 ? 0 : a64_canon(m, root, end);
            return false;
        }
        if (a64_is_leaf(e, level)) {
            mm_page_size_t size = a64_size_of(level);
            leaf->va = mm_align_down(va, mm_page_bytes(size));
            leaf->pa = a64_leaf_pa(m, e, level);
            leaf->size = size;
            leaf->flags = a64_leaf_flags(e, up);
            leaf->entry = e;
            return true;
        }
        up |= e & D_TABLE_ATTRS;
        table = a64_table(a64_addr(m, e));
    }
}

typedef struct a64_visit {
    const a64pt_t *m;
    mm_vaddr_t first, last;
    bool (*leaf)(struct a64_visit *v, const a64pt_leaf_t *leaf, unsigned level);
    bool (*table)(struct a64_visit *v, mm_vaddr_t va, unsigned level, uint64_t *slot);
    void *arg;
    bool stopped;
} a64_visit_t;

void a64_visit(a64_visit_t *v, mm_paddr_t root);

#endif /* HADRON_MM_A64_INTERNAL_H */
