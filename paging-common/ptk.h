/*
 * The page-table kit: the architecture-independent half of a radix page-
 * table mapper, shared by paging-x86_64 and paging-aarch64. Internal to
 * mapper implementations (never installed, never included by users of a
 * mapper); its names carry the prefix ptk_.
 *
 * A mapper describes its descriptor format in one `static const ptk_ops_t`
 * (present/leaf tests, addresses, the per-table entry count, how the
 * permissions of the levels above combine, attribute decoding) and its
 * instance in a ptk_geom_t (depth, VA width, root size, physical limit,
 * frame allocator). Everything here is static inline and always inlined
 * into the mapper's own functions with the mapper's constant ops, so the
 * compiler sees through the function pointers: each mapper gets code
 * instantiated for its own format, with no indirect call on any path
 * (paging-bench: no change against the hand-written copies it replaced).
 *
 * Levels are numbered by height: 1 maps 4 KiB pages, 2 maps 2 MiB, 3 maps
 * 1 GiB, the root is at geom->levels (4 or 5). Each level resolves 9 bits
 * of the address, the root possibly fewer (ops->index).
 */
#ifndef HADRON_MM_PTK_H
#define HADRON_MM_PTK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/assert.h>
#include <hadron/mm/hhdm.h>
#include <hadron/mm/page_mapper.h>
#include <hadron/mm/tlb.h>

#define PTK_MAX_LEVELS 5u
#define PTK_ENTRIES 512u
/* Always inlined, so the mapper's constant ops fold into direct code. A
 * build may define PTK_INLINE itself to measure the alternative, e.g.
 * -DPTK_INLINE='static __attribute__((noipa))': one generic copy per file
 * calling the format through pointers. */
#ifndef PTK_INLINE
#define PTK_INLINE static inline __attribute__((always_inline))
#endif

/* One leaf as the kit reports it; each mapper's public leaf type has the
 * same fields (ptk_leaf_export copies it). */
typedef struct ptk_leaf {
    mm_vaddr_t va;          /* page base */
    mm_paddr_t pa;          /* frame base */
    mm_page_size_t size;
    mm_map_flags_t flags;   /* effective flags */
    uint64_t entry;         /* the raw leaf entry */
} ptk_leaf_t;

/* Where a walk stopped and the entry slots it passed (slot[L] is the entry
 * for va in the level-L table, from the root down to `level`). */
typedef struct ptk_path {
    uint64_t *slot[PTK_MAX_LEVELS + 1];
    unsigned level;
} ptk_path_t;

/* Plan for mapping one page: the walk, and what the commit must build. */
typedef struct ptk_map_plan {
    ptk_path_t path;
    unsigned leaf_level;
    unsigned new_tables;     /* tables to create below path.level */
    mm_paddr_t replace;      /* empty table to replace by a leaf (0: none) */
} ptk_map_plan_t;

/* Table frames set aside before a change so the change itself cannot fail.
 * Reserved frames are chained through their first word. */
typedef struct ptk_reserve {
    mm_paddr_t head;
    size_t count;
} ptk_reserve_t;

#define PTK_RESERVE_INIT {0, 0}

/* One mapper instance as the kit sees it. Built on the stack by the
 * mapper's inline geom function; constant fields fold away. */
typedef struct ptk_geom {
    const mm_frame_allocator_t *frames;
    unsigned levels;      /* root level: 4 or 5 */
    unsigned va_bits;     /* implemented VA width (sign-extended above) */
    unsigned max_leaf;    /* largest leaf level a range may use: 2 or 3 */
    mm_paddr_t phys_end;  /* frames and tables lie below */
    /* The kernel half's tables below the root are shared by every root
     * (each holds copies of its root entries): never freed, no count. */
    bool pin_kernel_half;
} ptk_geom_t;

/* The descriptor format. `m` is the mapper instance (x86pt_t, a64pt_t). */
typedef struct ptk_ops {
    /* Index of va in a level-`level` table. */
    unsigned (*index)(mm_vaddr_t va, unsigned level);
    /* The entry is valid as the hardware reads it at this level. */
    bool (*present)(uint64_t e, unsigned level);
    /* A present entry maps a page (not a table). */
    bool (*is_leaf)(uint64_t e, unsigned level);
    /* Next-level table of a present non-leaf entry. */
    mm_paddr_t (*table_pa)(const void *m, uint64_t e);
    /* Frame base of a present leaf at `level`. */
    mm_paddr_t (*leaf_pa)(const void *m, uint64_t e, unsigned level);
    /* Present entries of the table a non-leaf entry points to, and the
     * entry with that count one higher (+1) or lower (-1). */
    unsigned (*count_of)(uint64_t e);
    uint64_t (*count_step)(uint64_t e, int delta);
    /* Permissions of the levels walked so far: `up_init` at the root, then
     * inherit(up, e) for each table entry passed; leaf_flags combines them
     * with the leaf's own bits into effective interface flags. */
    uint64_t up_init;
    uint64_t (*inherit)(uint64_t up, uint64_t e);
    mm_map_flags_t (*leaf_flags)(const void *m, uint64_t e, unsigned level, uint64_t up);
    /* The addresses of the hierarchy at `root`, when they depend on the
     * root (a root of one half only). va_ok: va is one of them; canon: the
     * address an index path names below `root` (va holds the path's bits,
     * from the root entry's index down). NULL: every root has one space of
     * geom->va_bits, sign-extended (ptk_canonical, ptk_canon). */
    bool (*va_ok)(const void *m, mm_paddr_t root, mm_vaddr_t va);
    mm_vaddr_t (*canon)(const void *m, mm_paddr_t root, mm_vaddr_t va);

    /* Change steps (range operations). */
    mm_status_t (*check_flags)(const void *m, mm_map_flags_t flags, bool kernel_half);
    mm_status_t (*map_plan)(const void *m, mm_paddr_t root, mm_vaddr_t va, unsigned leaf_level,
                            ptk_map_plan_t *plan);
    /* Carry out a plan with frames from `r`; cannot fail. */
    void (*map_commit)(void *m, ptk_map_plan_t *plan, mm_vaddr_t va, mm_paddr_t pa,
                       mm_map_flags_t flags, ptk_reserve_t *r, mm_tlb_batch_t *tlb);
    /* After a range's entries are written (NULL: nothing to do). */
    void (*map_done)(void);
    mm_status_t (*find_leaf)(const void *m, mm_paddr_t root, mm_vaddr_t va, unsigned leaf_level,
                             ptk_path_t *path);
    void (*unmap_leaf)(void *m, ptk_path_t *path, mm_vaddr_t va, mm_tlb_batch_t *tlb);
    void (*protect_leaf)(void *m, ptk_path_t *path, mm_vaddr_t va, mm_map_flags_t flags,
                         mm_tlb_batch_t *tlb);
} ptk_ops_t;

/* ---- Geometry ---------------------------------------------------------- */

static inline unsigned ptk_shift(unsigned level)
{
    return MM_PAGE_SHIFT + 9u * (level - 1u);
}

static inline unsigned ptk_level_of(mm_page_size_t size)
{
    return size == MM_PAGE_4K ? 1u : size == MM_PAGE_2M ? 2u : 3u;
}

static inline mm_page_size_t ptk_size_of(unsigned level)
{
    return level == 1 ? MM_PAGE_4K : level == 2 ? MM_PAGE_2M : MM_PAGE_1G;
}

static inline bool ptk_size_valid(mm_page_size_t size)
{
    return size == MM_PAGE_4K || size == MM_PAGE_2M || size == MM_PAGE_1G;
}

/* Both architectures put the kernel at the top of the address space. */
static inline bool ptk_kernel_half(mm_vaddr_t va)
{
    return (int64_t)va < 0;
}

/* Sign-extends bit va_bits - 1 upward. */
static inline mm_vaddr_t ptk_canon(unsigned va_bits, mm_vaddr_t va)
{
    unsigned s = 64u - va_bits;
    return (mm_vaddr_t)((int64_t)(va << s) >> s);
}

/* va is an address of the space: its bits above the implemented width
 * copy the top implemented bit. */
static inline bool ptk_canonical(unsigned va_bits, mm_vaddr_t va)
{
    return ptk_canon(va_bits, va) == va;
}

static inline uint64_t *ptk_table(mm_paddr_t pa)
{
    return (uint64_t *)hhdm_phys_to_virt(pa);
}

/* A root (or any table) the caller names must be a frame we can reach. */
static inline bool ptk_root_ok(mm_paddr_t phys_end, mm_paddr_t root)
{
    return mm_is_aligned(root, MM_PAGE_SIZE) && root < phys_end && root < hhdm_window_size;
}

/* Walkers read entries concurrently: every access is one untorn 64-bit
 * operation. A new table is published with release order so its zeroed
 * contents are visible first. */
static inline uint64_t ptk_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void ptk_store(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void ptk_publish(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The table at `level` hangs off a kernel-half root entry of a shared
 * kernel half (geom->pin_kernel_half): never freed, no count. */
static inline bool ptk_pinned(const ptk_geom_t *g, mm_vaddr_t va, unsigned level)
{
    return g->pin_kernel_half && level + 1u == g->levels && ptk_kernel_half(va);
}

/* va is an address of the hierarchy at `root` (ops->va_ok). */
PTK_INLINE bool ptk_va_ok(const ptk_ops_t *ops, const void *m, const ptk_geom_t *g,
                          mm_paddr_t root, mm_vaddr_t va)
{
    if (ops->va_ok != NULL)
        return ops->va_ok(m, root, va);
    return ptk_canonical(g->va_bits, va);
}

/* The address the index path in va names below `root` (ops->canon). */
PTK_INLINE mm_vaddr_t ptk_path_va(const ptk_ops_t *ops, const void *m, const ptk_geom_t *g,
                                  mm_paddr_t root, mm_vaddr_t va)
{
    if (ops->canon != NULL)
        return ops->canon(m, root, va);
    return ptk_canon(g->va_bits, va);
}

/* ---- Walks --------------------------------------------------------------- */

/* Descend from a root of `levels` toward level `target`; stop early at a
 * non-present entry or a leaf (a leaf's frame is never read as a table).
 * Returns the level of the last slot filled. O(levels). Callers on a hot
 * path pass constant levels and target so the loop unrolls. */
PTK_INLINE unsigned ptk_walk_n(const ptk_ops_t *ops, const void *m, unsigned levels,
                               mm_paddr_t root, mm_vaddr_t va, unsigned target, ptk_path_t *path)
{
    /* The HHDM offset is read once: the atomic entry loads would otherwise
     * make the compiler reload it at every level. */
    const uint64_t off = hhdm_offset_value;
    uint64_t *table = (uint64_t *)(uintptr_t)(root + off);
    unsigned level = levels;
    for (;;) {
        uint64_t *slot = &table[ops->index(va, level)];
        path->slot[level] = slot;
        if (level == target)
            break;
        uint64_t e = ptk_load(slot);
        if (!ops->present(e, level) || ops->is_leaf(e, level))
            break;
        table = (uint64_t *)(uintptr_t)(ops->table_pa(m, e) + off);
        level--;
    }
    path->level = level;
    return level;
}

/* The plan for mapping a leaf of `leaf_level` after a walk toward it that
 * stopped at `level`: MM_ERR_EXISTS when something is mapped there. */
PTK_INLINE mm_status_t ptk_map_plan_walked(const ptk_ops_t *ops, const void *m, unsigned level,
                                           unsigned leaf_level, ptk_map_plan_t *plan)
{
    uint64_t e = ptk_load(plan->path.slot[level]);
    plan->leaf_level = leaf_level;
    plan->new_tables = 0;
    plan->replace = 0;
    if (level > leaf_level) {
        if (ops->present(e, level))
            return MM_ERR_EXISTS; /* a larger page covers va */
        plan->new_tables = level - leaf_level;
        return MM_OK;
    }
    if (!ops->present(e, level))
        return MM_OK;
    if (ops->is_leaf(e, level) || ops->count_of(e) != 0)
        return MM_ERR_EXISTS;
    /* A large request over a table with no entries: nothing is lost by
     * replacing it, and refusing would strand the range for good. */
    plan->replace = ops->table_pa(m, e);
    return MM_OK;
}

/* After a walk toward `leaf_level` that stopped at `level`: the leaf is
 * exactly there, or MM_ERR_NOT_MAPPED / MM_ERR_SIZE_MISMATCH (a larger
 * page, or smaller pages below). */
PTK_INLINE mm_status_t ptk_found_leaf(const ptk_ops_t *ops, unsigned level, unsigned leaf_level,
                                      const ptk_path_t *path)
{
    uint64_t e = ptk_load(path->slot[level]);
    if (!ops->present(e, level))
        return MM_ERR_NOT_MAPPED;
    if (level != leaf_level || !ops->is_leaf(e, level))
        return MM_ERR_SIZE_MISMATCH;
    return MM_OK;
}

/* ---- Per-table entry counts and table lifetime ----------------------- */

/* The table at `level` on `path` gained one present entry. A plain load
 * and store, not a locked add: callers serialise software writers, and a
 * hardware write to a non-leaf entry (x86's accessed bit) loses nothing
 * anyone reads. */
PTK_INLINE void ptk_count_inc(const ptk_ops_t *ops, const ptk_geom_t *g, ptk_path_t *path,
                              mm_vaddr_t va, unsigned level)
{
    if (level == g->levels || ptk_pinned(g, va, level))
        return;
    uint64_t *slot = path->slot[level + 1];
    uint64_t e = ptk_load(slot);
    unsigned c = ops->count_of(e);
    MM_ASSERT(c < PTK_ENTRIES);
    ptk_store(slot, ops->count_step(e, 1));
}

/* The table at `level` on `path` lost one present entry: unlink it (and
 * then its parents) when it becomes empty and is neither the root nor
 * pinned, and hand it to `tlb` to be freed after the invalidation. The
 * caller has recorded va in `tlb`, which also drops the walk-cache entries
 * that point at the unlinked tables; the frame is not written again, so a
 * stale walk until the flush finds only non-present entries. */
PTK_INLINE void ptk_count_dec(const ptk_ops_t *ops, const void *m, const ptk_geom_t *g,
                              ptk_path_t *path, mm_vaddr_t va, unsigned level,
                              mm_tlb_batch_t *tlb)
{
    while (level != g->levels && !ptk_pinned(g, va, level)) {
        uint64_t *parent = path->slot[level + 1];
        uint64_t old = ptk_load(parent);
        unsigned c = ops->count_of(old);
        MM_ASSERT(c > 0);
        if (c != 1) {
            ptk_store(parent, ops->count_step(old, -1));
            return;
        }
        ptk_store(parent, 0); /* present -> not present needs no break-before-make */
        mm_tlb_batch_defer_free(tlb, g->frames, ops->table_pa(m, old));
        level++;
    }
}

/* Immediate free, only for frames no CPU can have cached: never linked
 * (reserve rollback) or of a hierarchy the caller guarantees is cached
 * nowhere (root destruction). */
static inline void ptk_frame_free(const ptk_geom_t *g, mm_paddr_t frame)
{
    mm_status_t st = mm_frame_free(g->frames, frame);
    MM_ASSERT(st == MM_OK);
    (void)st;
}

static inline mm_paddr_t ptk_reserve_pop(ptk_reserve_t *r)
{
    MM_ASSERT(r->count != 0);
    mm_paddr_t f = r->head;
    r->head = *ptk_table(f);
    r->count--;
    return f;
}

/* Add n frames; on failure give back what this call took and return
 * MM_ERR_NOMEM (frames reserved earlier stay). O(n). */
static inline mm_status_t ptk_reserve_fill(const ptk_geom_t *g, ptk_reserve_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mm_paddr_t f;
        if (g->frames->alloc(g->frames->ctx, 1, 1, g->phys_end, &f) != MM_OK) {
            /* This call's frames are the i most recent pushes. */
            while (i-- != 0)
                ptk_frame_free(g, ptk_reserve_pop(r));
            return MM_ERR_NOMEM;
        }
        MM_ASSERT(mm_is_aligned(f, MM_PAGE_SIZE) && f < hhdm_window_size);
        *ptk_table(f) = r->head;
        r->head = f;
        r->count++;
    }
    return MM_OK;
}

/* Take one frame, zeroed. The reserve must not be empty. */
static inline mm_paddr_t ptk_reserve_take(ptk_reserve_t *r)
{
    mm_paddr_t f = ptk_reserve_pop(r);
    __builtin_memset(ptk_table(f), 0, MM_PAGE_SIZE);
    return f;
}

/* ---- Lookup and visit -------------------------------------------------- */

/* What lies at va: a leaf (true; *leaf filled) or a hole, in which case
 * *next is the first address after it (0 when the hole reaches the top of
 * the address space). Read-only. O(levels). */
PTK_INLINE bool ptk_lookup(const ptk_ops_t *ops, const void *m, const ptk_geom_t *g,
                           mm_paddr_t root, mm_vaddr_t va, ptk_leaf_t *leaf, mm_vaddr_t *next)
{
    uint64_t *table = ptk_table(root);
    uint64_t up = ops->up_init;
    for (unsigned level = g->levels;; level--) {
        uint64_t e = ptk_load(&table[ops->index(va, level)]);
        if (!ops->present(e, level)) {
            uint64_t span = (uint64_t)1 << ptk_shift(level);
            mm_vaddr_t end = mm_align_down(va, span) + span;
            /* Past the last entry of the lower half comes the kernel half
             * (or, for a root of one half, the end); past the last of the
             * kernel half, the end (0). */
            *next = end == 0 ? 0 : ptk_path_va(ops, m, g, root, end);
            return false;
        }
        if (ops->is_leaf(e, level)) {
            mm_page_size_t size = ptk_size_of(level);
            leaf->va = mm_align_down(va, mm_page_bytes(size));
            leaf->pa = ops->leaf_pa(m, e, level);
            leaf->size = size;
            leaf->flags = ops->leaf_flags(m, e, level, up);
            leaf->entry = e;
            return true;
        }
        up = ops->inherit(up, e);
        table = ptk_table(ops->table_pa(m, e));
    }
}

/* Table visitor used by walk, dump, audit and check: visits every present
 * entry of [first, last] in address order. */
typedef struct ptk_visit {
    const void *m;           /* the mapper */
    mm_vaddr_t first, last;
    /* Called for each leaf; return false to stop. */
    bool (*leaf)(struct ptk_visit *v, const ptk_leaf_t *leaf, unsigned level);
    /* Called for each present non-leaf entry before descending (may be
     * NULL); return false to skip the subtree. */
    bool (*table)(struct ptk_visit *v, mm_vaddr_t va, unsigned level, uint64_t *slot);
    void *arg;
    bool stopped;
} ptk_visit_t;

/* Recursion depth is the number of levels (at most 5). */
static inline bool ptk_visit_table(const ptk_ops_t *ops, const ptk_geom_t *g, ptk_visit_t *v,
                                   mm_paddr_t root, uint64_t *t, unsigned level,
                                   mm_vaddr_t base, uint64_t up)
{
    unsigned shift = ptk_shift(level);
    uint64_t span_last = ((uint64_t)1 << shift) - 1u;
    /* The root may resolve fewer bits (AArch64 level -1: 16 entries). */
    unsigned entries = level == g->levels ? ops->index(UINT64_MAX, level) + 1u : PTK_ENTRIES;
    for (unsigned i = 0; i < entries; i++) {
        mm_vaddr_t va = base + ((uint64_t)i << shift);
        if (level == g->levels)
            va = ptk_path_va(ops, v->m, g, root, va); /* which half the root entry is */
        if (va + span_last < v->first)
            continue;
        if (va > v->last)
            return true;
        uint64_t *slot = &t[i];
        uint64_t e = ptk_load(slot);
        if (!ops->present(e, level))
            continue;
        if (ops->is_leaf(e, level)) {
            ptk_leaf_t leaf = {
                .va = va,
                .pa = ops->leaf_pa(v->m, e, level),
                .size = ptk_size_of(level),
                .flags = ops->leaf_flags(v->m, e, level, up),
                .entry = e,
            };
            if (!v->leaf(v, &leaf, level)) {
                v->stopped = true;
                return false;
            }
            continue;
        }
        if (v->table != NULL && !v->table(v, va, level, slot)) {
            if (v->stopped)
                return false;
            continue;
        }
        if (!ptk_visit_table(ops, g, v, root, ptk_table(ops->table_pa(v->m, e)), level - 1,
                             va, ops->inherit(up, e)))
            return false;
    }
    return true;
}

static inline void ptk_visit(const ptk_ops_t *ops, const ptk_geom_t *g, ptk_visit_t *v,
                             mm_paddr_t root)
{
    v->stopped = false;
    ptk_visit_table(ops, g, v, root, ptk_table(root), g->levels, 0, ops->up_init);
}

/* ---- All-or-nothing ranges ------------------------------------------- */

/* Shared validation of (root, va, len, tlb); *last is the range's last
 * byte. A range may not cross from one half to the other. */
PTK_INLINE mm_status_t ptk_range_args(const ptk_ops_t *ops, const void *m, const ptk_geom_t *g,
                                      mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                                      const mm_tlb_batch_t *tlb, mm_vaddr_t *last)
{
    if (!ptk_root_ok(g->phys_end, root) || tlb == NULL || len == 0)
        return MM_ERR_INVALID;
    if (!ptk_va_ok(ops, m, g, root, va))
        return MM_ERR_NOT_CANONICAL;
    if (!mm_is_aligned(va, MM_PAGE_SIZE) || !mm_is_aligned(len, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;
    if (!mm_range_last(va, len, last) || !ptk_va_ok(ops, m, g, root, *last) ||
        ptk_kernel_half(va) != ptk_kernel_half(*last))
        return MM_ERR_NOT_CANONICAL;
    return MM_OK;
}

/* Largest leaf the alignment of both addresses, the length left and the
 * mapper allow. */
static inline unsigned ptk_choose_level(const ptk_geom_t *g, mm_vaddr_t va, mm_paddr_t pa,
                                        uint64_t left)
{
    if (g->max_leaf >= 3 && mm_is_aligned(va | pa, MM_SIZE_1G) && left >= MM_SIZE_1G)
        return 3;
    if (mm_is_aligned(va | pa, MM_SIZE_2M) && left >= MM_SIZE_2M)
        return 2;
    return 1;
}

/* Map [va, va + len) to [pa, pa + len) with the largest pages alignment
 * allows. Checks everything and reserves every table first, then commits
 * steps that cannot fail: on error nothing changed. */
PTK_INLINE mm_status_t ptk_map_range(const ptk_ops_t *ops, void *m, const ptk_geom_t *g,
                                     mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa, uint64_t len,
                                     mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    mm_vaddr_t last;
    mm_status_t st = ptk_range_args(ops, m, g, root, va, len, tlb, &last);
    if (st != MM_OK)
        return st;
    st = ops->check_flags(m, flags, ptk_kernel_half(va));
    if (st != MM_OK)
        return st;
    if (!mm_is_aligned(pa, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;
    if (pa >= g->phys_end || g->phys_end - pa < len)
        return MM_ERR_RANGE;

    /* Pass 1: conflicts and the number of tables to create. Steps go up in
     * address order, so steps needing the same new table at level k are
     * adjacent and share its region number (va >> shift(k + 1)). */
    ptk_map_plan_t plan;
    size_t tables = 0;
    uint64_t region[PTK_MAX_LEVELS + 1];
    bool seen[PTK_MAX_LEVELS + 1] = {false};
    for (uint64_t off = 0; off < len;) {
        unsigned level = ptk_choose_level(g, va + off, pa + off, len - off);
        st = ops->map_plan(m, root, va + off, level, &plan);
        if (st != MM_OK)
            return st;
        for (unsigned k = level; k < plan.path.level; k++) {
            uint64_t id = (va + off) >> ptk_shift(k + 1);
            if (!seen[k] || region[k] != id) {
                seen[k] = true;
                region[k] = id;
                tables++;
            }
        }
        off += mm_page_bytes(ptk_size_of(level));
    }

    ptk_reserve_t r = PTK_RESERVE_INIT;
    st = ptk_reserve_fill(g, &r, tables);
    if (st != MM_OK)
        return st;

    /* Pass 2: cannot fail; the walks now see the tables made by earlier
     * steps, so together they consume exactly the reserve. */
    for (uint64_t off = 0; off < len;) {
        unsigned level = ptk_choose_level(g, va + off, pa + off, len - off);
        st = ops->map_plan(m, root, va + off, level, &plan);
        MM_ASSERT(st == MM_OK);
        ops->map_commit(m, &plan, va + off, pa + off, flags, &r, tlb);
        off += mm_page_bytes(ptk_size_of(level));
    }
    MM_ASSERT(r.count == 0);
    if (ops->map_done != NULL)
        ops->map_done();
    return MM_OK;
}

/* What a range scan does at each leaf once the range has been checked. */
typedef enum ptk_step { PTK_STEP_CHECK, PTK_STEP_UNMAP, PTK_STEP_PROTECT } ptk_step_t;

typedef struct ptk_step_ctx {
    mm_leaf_fn fn;           /* unmap: told about each leaf removed (may be NULL) */
    void *arg;
    mm_map_flags_t flags;    /* protect: the new flags */
    mm_tlb_batch_t *tlb;
} ptk_step_ctx_t;

/* Visits each leaf in [va, last] in order. PTK_STEP_CHECK only checks:
 * MM_ERR_SIZE_MISMATCH for a leaf sticking out of the range,
 * MM_ERR_NOT_MAPPED for a gap unless holes are allowed. The other steps
 * run on a checked range and change the tables (every lookup restarts from
 * the root). */
PTK_INLINE mm_status_t ptk_range_scan(const ptk_ops_t *ops, void *m, const ptk_geom_t *g,
                                      mm_paddr_t root, mm_vaddr_t va, mm_vaddr_t last,
                                      bool allow_holes, ptk_step_t step,
                                      const ptk_step_ctx_t *ctx)
{
    mm_vaddr_t cur = va;
    for (;;) {
        ptk_leaf_t leaf;
        mm_vaddr_t next;
        if (ptk_lookup(ops, m, g, root, cur, &leaf, &next)) {
            uint64_t bytes = mm_page_bytes(leaf.size);
            if (leaf.va < va || leaf.va + (bytes - 1) > last)
                return MM_ERR_SIZE_MISMATCH;
            if (step != PTK_STEP_CHECK) {
                ptk_path_t path;
                mm_status_t st = ops->find_leaf(m, root, leaf.va, ptk_level_of(leaf.size), &path);
                MM_ASSERT(st == MM_OK);
                (void)st;
                if (step == PTK_STEP_UNMAP) {
                    ops->unmap_leaf(m, &path, leaf.va, ctx->tlb);
                    if (ctx->fn != NULL)
                        ctx->fn(ctx->arg, leaf.va, leaf.pa, leaf.size, leaf.flags);
                } else {
                    ops->protect_leaf(m, &path, leaf.va, ctx->flags, ctx->tlb);
                }
            }
            next = leaf.va + bytes;
        } else if (!allow_holes) {
            return MM_ERR_NOT_MAPPED;
        }
        /* next == 0: the last page of the address space was done. */
        if (next == 0 || next > last || next <= cur)
            return MM_OK;
        cur = next;
    }
}

/* Unmap (step PTK_STEP_UNMAP) or protect (PTK_STEP_PROTECT) every leaf of a
 * range: all of it or, on error, none. `opts_ok`: the caller's options were
 * valid. */
PTK_INLINE mm_status_t ptk_change_range(const ptk_ops_t *ops, void *m, const ptk_geom_t *g,
                                        mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                                        bool opts_ok, bool allow_holes, ptk_step_t step,
                                        const ptk_step_ctx_t *ctx)
{
    mm_vaddr_t last;
    mm_status_t st = ptk_range_args(ops, m, g, root, va, len, ctx->tlb, &last);
    if (st != MM_OK)
        return st;
    if (!opts_ok)
        return MM_ERR_INVALID;
    if (step == PTK_STEP_PROTECT) {
        st = ops->check_flags(m, ctx->flags, ptk_kernel_half(va));
        if (st != MM_OK)
            return st;
    }
    st = ptk_range_scan(ops, m, g, root, va, last, allow_holes, PTK_STEP_CHECK, ctx);
    if (st != MM_OK)
        return st;
    st = ptk_range_scan(ops, m, g, root, va, last, allow_holes, step, ctx);
    MM_ASSERT(st == MM_OK);
    return st;
}

#endif /* HADRON_MM_PTK_H */
