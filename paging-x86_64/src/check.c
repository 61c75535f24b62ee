/* Consistency check: counts, reserved bits, user bits, table placement. */
#include "x86pt_internal.h"

typedef struct check_ctx {
    x86pt_check_info_t *info;
    mm_status_t status;
} check_ctx_t;

static bool fail(pt_visit_t *v, const char *problem, mm_vaddr_t va, unsigned level,
                 uint64_t entry)
{
    check_ctx_t *c = v->arg;
    c->status = MM_ERR_CORRUPT;
    c->info->problem = problem;
    c->info->bad_va = va;
    c->info->bad_level = level;
    c->info->bad_entry = entry;
    v->stopped = true;
    return false;
}

static bool check_leaf(pt_visit_t *v, const ptk_leaf_t *leaf, unsigned level)
{
    const x86pt_t *m = v->m;
    uint64_t e = leaf->entry;
    uint64_t bytes = mm_page_bytes(leaf->size);
    check_ctx_t *c = v->arg;
    /* Huge frames must be aligned: the low address bits are reserved (bit 12
     * of a huge entry is PAT, not address). */
    if (level > 1 && ((e & PTE_ADDR_MASK & ~PTE_PAT_HUGE) & (bytes - 1)) != 0)
        return fail(v, "reserved low address bits in a huge page", leaf->va, level, e);
    if (leaf->pa >= m->phys_end || m->phys_end - leaf->pa < bytes)
        return fail(v, "frame beyond the physical address width", leaf->va, level, e);
    if ((e & PTE_NX) && !m->nx)
        return fail(v, "NX set on a CPU without NX", leaf->va, level, e);
    if (level == 3 && !m->pages_1g)
        return fail(v, "1 GiB page without 1 GiB support", leaf->va, level, e);
    c->info->leaves++;
    return true;
}

static bool check_table(pt_visit_t *v, mm_vaddr_t va, unsigned level, uint64_t *slot)
{
    const x86pt_t *m = v->m;
    check_ctx_t *c = v->arg;
    uint64_t e = pte_load(slot);
    mm_paddr_t pa = pt_table_pa(e);
    if (e & PTE_PS)
        return fail(v, "PS set in a PML4E or PML5E", va, level, e);
    if (pa >= m->phys_end || pa >= hhdm_window_size)
        return fail(v, "table outside the physical width or the HHDM", va, level, e);
    if ((e & PTE_NX) && !m->nx)
        return fail(v, "NX set on a CPU without NX", va, level, e);
    if (pt_kernel_half(va) && (e & PTE_US))
        return fail(v, "user bit on a kernel-half intermediate", va, level, e);

    const uint64_t *t = pt_table(pa);
    unsigned present = 0;
    for (unsigned i = 0; i < X86PT_ENTRIES; i++)
        present += (pte_load(&t[i]) & PTE_P) ? 1u : 0u;
    if (pt_pinned(m, va, level - 1)) {
        if (pt_count_of(e) != 0)
            return fail(v, "count on a pinned kernel-half root entry", va, level, e);
    } else if (pt_count_of(e) != present) {
        return fail(v, "stored count differs from present entries", va, level, e);
    }
    if (present == 0 && level != m->levels)
        return fail(v, "empty table below the root level", va, level, e);
    if (pt_kernel_half(va))
        c->info->kernel_tables++;
    else
        c->info->user_tables++;
    return true;
}

mm_status_t x86pt_check(const x86pt_t *m, mm_paddr_t root, x86pt_check_info_t *info)
{
    x86pt_check_info_t scratch;
    if (info == NULL)
        info = &scratch;
    if (!pt_root_ok(m, root))
        return MM_ERR_INVALID;
    *info = (x86pt_check_info_t){0};
    check_ctx_t c = {info, MM_OK};
    pt_visit_t v = {.m = m,
                    .first = 0,
                    .last = UINT64_MAX,
                    .leaf = check_leaf,
                    .table = check_table,
                    .arg = &c};
    pt_visit(&v, root);
    return c.status;
}
