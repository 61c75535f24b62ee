/* Range operations. Each checks the whole range first (and map reserves
 * every table it needs), then commits steps that cannot fail, so there is
 * never a half-done range to roll back. */
#include "a64_internal.h"

static mm_status_t range_args(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                              const mm_tlb_batch_t *tlb, mm_vaddr_t *last)
{
    if (!a64_root_ok(m, root) || tlb == NULL || len == 0)
        return MM_ERR_INVALID;
    if (!a64_va_ok(m, root, va))
        return MM_ERR_NOT_CANONICAL;
    if (!mm_is_aligned(va, MM_PAGE_SIZE) || !mm_is_aligned(len, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;
    if (!mm_range_last(va, len, last) || !a64_va_ok(m, root, *last) ||
        a64_kernel_half(va) != a64_kernel_half(*last))
        return MM_ERR_NOT_CANONICAL;
    return MM_OK;
}

/* Largest page the alignment of both addresses and the length left allow
 * (a 4 KiB granule has 1 GiB and 2 MiB blocks on every CPU). */
static unsigned choose_level(mm_vaddr_t va, mm_paddr_t pa, uint64_t left)
{
    if (mm_is_aligned(va | pa, MM_SIZE_1G) && left >= MM_SIZE_1G)
        return 3;
    if (mm_is_aligned(va | pa, MM_SIZE_2M) && left >= MM_SIZE_2M)
        return 2;
    return 1;
}

mm_status_t a64pt_map_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                            uint64_t len, mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    mm_vaddr_t last;
    mm_status_t st = range_args(m, root, va, len, tlb, &last);
    if (st != MM_OK)
        return st;
    st = a64_check_flags(flags, a64_kernel_half(va));
    if (st != MM_OK)
        return st;
    if (!mm_is_aligned(pa, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;
    if (pa >= m->phys_end || m->phys_end - pa < len)
        return MM_ERR_RANGE;

    /* Pass 1: conflicts and the number of tables to create. Steps go up in
     * address order, so steps needing the same new table at level k are
     * adjacent and share its region number (va >> shift(k + 1)). */
    a64_map_plan_t plan;
    size_t tables = 0;
    uint64_t region[A64PT_MAX_LEVELS + 1];
    bool seen[A64PT_MAX_LEVELS + 1] = {false};
    for (uint64_t off = 0; off < len;) {
        unsigned level = choose_level(va + off, pa + off, len - off);
        st = a64_map_plan(m, root, va + off, level, &plan);
        if (st != MM_OK)
            return st;
        for (unsigned k = level; k < plan.path.level; k++) {
            uint64_t id = (va + off) >> a64_shift(k + 1);
            if (!seen[k] || region[k] != id) {
                seen[k] = true;
                region[k] = id;
                tables++;
            }
        }
        off += mm_page_bytes(a64_size_of(level));
    }

    a64_reserve_t r = A64_RESERVE_INIT;
    st = a64_reserve_fill(m, &r, tables);
    if (st != MM_OK)
        return st;

    /* Pass 2: cannot fail; the walks now see the tables made by earlier
     * steps, so together they consume exactly the reserve. */
    for (uint64_t off = 0; off < len;) {
        unsigned level = choose_level(va + off, pa + off, len - off);
        st = a64_map_plan(m, root, va + off, level, &plan);
        MM_ASSERT(st == MM_OK);
        a64_map_commit(m, &plan, va + off, pa + off, flags, &r, tlb);
        off += mm_page_bytes(a64_size_of(level));
    }
    MM_ASSERT(r.count == 0);
    a64_walker_sync();
    return MM_OK;
}

typedef void (*range_step_fn)(a64pt_t *m, mm_paddr_t root, const a64pt_leaf_t *leaf,
                              void *ctx);

/* Visits each leaf in [va, last] in order. Without `step` it only checks:
 * MM_ERR_SIZE_MISMATCH for a leaf sticking out of the range,
 * MM_ERR_NOT_MAPPED for a gap unless allowed. With `step` the range has
 * been checked and step may change the tables (every lookup restarts from
 * the root). */
static mm_status_t range_scan(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_vaddr_t last,
                              unsigned opts, range_step_fn step, void *ctx)
{
    mm_vaddr_t cur = va;
    for (;;) {
        a64pt_leaf_t leaf;
        mm_vaddr_t next;
        if (a64_lookup(m, root, cur, &leaf, &next)) {
            uint64_t bytes = mm_page_bytes(leaf.size);
            if (leaf.va < va || leaf.va + (bytes - 1) > last)
                return MM_ERR_SIZE_MISMATCH;
            if (step != NULL)
                step(m, root, &leaf, ctx);
            next = leaf.va + bytes;
        } else if (!(opts & A64PT_RANGE_ALLOW_HOLES)) {
            return MM_ERR_NOT_MAPPED;
        }
        /* next == 0: the last page of the address space was done. */
        if (next == 0 || next > last || next <= cur)
            return MM_OK;
        cur = next;
    }
}

typedef struct unmap_ctx {
    mm_leaf_fn fn;
    void *arg;
    mm_tlb_batch_t *tlb;
} unmap_ctx_t;

static void unmap_step(a64pt_t *m, mm_paddr_t root, const a64pt_leaf_t *leaf, void *ctx)
{
    unmap_ctx_t *u = ctx;
    a64_path_t path;
    mm_status_t st = a64_find_leaf(m, root, leaf->va, a64_level_of(leaf->size), &path);
    MM_ASSERT(st == MM_OK);
    (void)st;
    a64_unmap_leaf(m, &path, leaf->va, u->tlb);
    if (u->fn != NULL)
        u->fn(u->arg, leaf->va, leaf->pa, leaf->size, leaf->flags);
}

mm_status_t a64pt_unmap_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                              unsigned opts, mm_leaf_fn leaf, void *leaf_arg,
                              mm_tlb_batch_t *tlb)
{
    mm_vaddr_t last;
    mm_status_t st = range_args(m, root, va, len, tlb, &last);
    if (st != MM_OK)
        return st;
    if (opts & ~(unsigned)A64PT_RANGE_ALLOW_HOLES)
        return MM_ERR_INVALID;
    st = range_scan(m, root, va, last, opts, NULL, NULL);
    if (st != MM_OK)
        return st;
    unmap_ctx_t u = {leaf, leaf_arg, tlb};
    st = range_scan(m, root, va, last, opts, unmap_step, &u);
    MM_ASSERT(st == MM_OK);
    return st;
}

typedef struct protect_ctx {
    mm_map_flags_t flags;
    mm_tlb_batch_t *tlb;
} protect_ctx_t;

static void protect_step(a64pt_t *m, mm_paddr_t root, const a64pt_leaf_t *leaf, void *ctx)
{
    protect_ctx_t *p = ctx;
    a64_path_t path;
    mm_status_t st = a64_find_leaf(m, root, leaf->va, a64_level_of(leaf->size), &path);
    MM_ASSERT(st == MM_OK);
    (void)st;
    a64_protect_leaf(m, &path, leaf->va, p->flags, p->tlb);
}

mm_status_t a64pt_protect_range(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len,
                                mm_map_flags_t flags, unsigned opts, mm_tlb_batch_t *tlb)
{
    mm_vaddr_t last;
    mm_status_t st = range_args(m, root, va, len, tlb, &last);
    if (st != MM_OK)
        return st;
    if (opts & ~(unsigned)A64PT_RANGE_ALLOW_HOLES)
        return MM_ERR_INVALID;
    st = a64_check_flags(flags, a64_kernel_half(va));
    if (st != MM_OK)
        return st;
    st = range_scan(m, root, va, last, opts, NULL, NULL);
    if (st != MM_OK)
        return st;
    protect_ctx_t p = {flags, tlb};
    st = range_scan(m, root, va, last, opts, protect_step, &p);
    MM_ASSERT(st == MM_OK);
    return st;
}
