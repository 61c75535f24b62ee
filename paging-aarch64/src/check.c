/* Consistency check: counts, descriptor types, reserved and unexpected
 * bits, table placement. */
#include "a64_internal.h"

typedef struct check_ctx {
    a64pt_check_info_t *info;
    mm_status_t status;
} check_ctx_t;

static bool fail(a64_visit_t *v, const char *problem, mm_vaddr_t va, unsigned level,
                 uint64_t entry)
{
    check_ctx_t *c = v->arg;
    c->status = MM_ERR_CORRUPT;
    c->info->problem = problem;
    c->info->bad_va = va;
    c->info->bad_level = a64_arm_level_int(level);
    c->info->bad_entry = entry;
    v->stopped = true;
    return false;
}

/* Address bits that are RES0 in the format: without LPA2 bits 50:48 (51 is
 * DBM in leaves; table descriptors have 51:48 RES0), with LPA2 bit 50. */
static uint64_t res0_addr_bits(const a64pt_t *m)
{
    return m->lpa2 ? (1ull << 50) : (7ull << 48);
}

static bool check_leaf(a64_visit_t *v, const ptk_leaf_t *leaf, unsigned level)
{
    const a64pt_t *m = v->m;
    uint64_t e = leaf->entry;
    uint64_t bytes = mm_page_bytes(leaf->size);
    check_ctx_t *c = v->arg;
    if (level > 1 && (a64_addr(m, e) & (bytes - 1)) != 0)
        return fail(v, "unaligned output address in a block", leaf->va, level, e);
    if ((e & res0_addr_bits(m)) != 0)
        return fail(v, "RES0 address bits set", leaf->va, level, e);
    if (leaf->pa >= m->phys_end || m->phys_end - leaf->pa < bytes)
        return fail(v, "output address beyond the physical address width", leaf->va, level, e);
    if (!(e & D_AF))
        return fail(v, "access flag clear", leaf->va, level, e);
    if (e & D_CONT)
        return fail(v, "contiguous bit set", leaf->va, level, e);
    if (((e & D_ATTR_MASK) >> D_ATTR_SHIFT) > A64PT_ATTR_DEVICE)
        return fail(v, "AttrIndx the mapper never writes", leaf->va, level, e);
    if (!m->lpa2 && (e & D_SH_MASK) != D_SH_INNER)
        return fail(v, "shareability other than inner shareable", leaf->va, level, e);
    c->info->leaves++;
    return true;
}

static bool check_table(a64_visit_t *v, mm_vaddr_t va, unsigned level, uint64_t *slot)
{
    const a64pt_t *m = v->m;
    check_ctx_t *c = v->arg;
    uint64_t e = d_load(slot);
    mm_paddr_t pa = a64_addr(m, e);
    uint64_t known = D_VALID | D_TABLE | D_CNT_MASK | (m->lpa2 ? D_ADDR_LPA2_LOW | D_ADDR_LPA2_HIGH
                                                               : D_ADDR_48);
    if (e & D_TABLE_ATTRS)
        return fail(v, "hierarchical attributes in a table descriptor", va, level, e);
    if (e & ~known)
        return fail(v, "unexpected bits in a table descriptor", va, level, e);
    if (pa >= m->phys_end || pa >= hhdm_window_size)
        return fail(v, "table outside the physical width or the HHDM", va, level, e);

    unsigned below = level - 1;
    const uint64_t *t = a64_table(pa);
    unsigned present = 0;
    for (unsigned i = 0; i < A64PT_ENTRIES; i++) {
        uint64_t d = d_load(&t[i]);
        if ((d & D_VALID) && !a64_valid(d, below))
            return fail(v, below == 1 ? "reserved descriptor type 0b01 at level 3"
                                      : "block descriptor at level 0",
                        va + ((uint64_t)i << a64_shift(below)), below, d);
        present += a64_valid(d, below) ? 1u : 0u;
    }
    if (a64_pinned(m, va, below)) {
        if (a64_count_of(e) != 0)
            return fail(v, "count on a pinned kernel-half root entry", va, level, e);
    } else if (a64_count_of(e) != present) {
        return fail(v, "stored count differs from valid entries", va, level, e);
    }
    if (present == 0 && level != m->levels)
        return fail(v, "empty table below the root level", va, level, e);
    if (a64_kernel_half(va))
        c->info->kernel_tables++;
    else
        c->info->user_tables++;
    return true;
}

mm_status_t a64pt_check(const a64pt_t *m, mm_paddr_t root, a64pt_check_info_t *info)
{
    a64pt_check_info_t scratch;
    if (info == NULL)
        info = &scratch;
    if (!a64_root_ok(m, root))
        return MM_ERR_INVALID;
    *info = (a64pt_check_info_t){0};
    check_ctx_t c = {info, MM_OK};
    a64_visit_t v = {.m = m,
                     .first = 0,
                     .last = UINT64_MAX,
                     .leaf = check_leaf,
                     .table = check_table,
                     .arg = &c};
    /* The root's own entries: a block or reserved type there is invisible
     * to the visitor (it is not valid at that level). */
    const uint64_t *rt = a64_table(root);
    for (unsigned i = 0; i < m->root_entries; i++) {
        uint64_t d = d_load(&rt[i]);
        if ((d & D_VALID) && !a64_valid(d, m->levels)) {
            fail(&v, m->levels == 5 ? "block descriptor at level -1" : "block descriptor at level 0",
                 a64_canon(m, root, (uint64_t)i << a64_shift(m->levels)), m->levels, d);
            return c.status;
        }
    }
    a64_visit(&v, root);
    return c.status;
}
