/* Security audit: W+X pages and user access in the kernel half. */
#include "x86pt_internal.h"

typedef struct audit_ctx {
    x86pt_finding_fn fn;
    void *arg;
    x86pt_audit_counts_t counts;
} audit_ctx_t;

static void report(audit_ctx_t *a, x86pt_finding_kind_t kind, mm_vaddr_t va, unsigned level,
                   uint64_t entry)
{
    switch (kind) {
    case X86PT_FINDING_WX:
        a->counts.wx++;
        break;
    case X86PT_FINDING_KERNEL_USER_LEAF:
        a->counts.kernel_user_leaves++;
        break;
    default:
        a->counts.kernel_user_tables++;
        break;
    }
    if (a->fn != NULL) {
        x86pt_finding_t f = {kind, va, level, entry};
        a->fn(a->arg, &f);
    }
}

static bool audit_leaf(pt_visit_t *v, const ptk_leaf_t *leaf, unsigned level)
{
    audit_ctx_t *a = v->arg;
    /* Effective flags: a page is only W+X if every level allows both. */
    if ((leaf->flags & MM_MAP_WRITE) && (leaf->flags & MM_MAP_EXEC))
        report(a, X86PT_FINDING_WX, leaf->va, level, leaf->entry);
    /* The raw bit, not the effective one: a user bit in the kernel half is
     * wrong even while the levels above still hide it. */
    if (pt_kernel_half(leaf->va) && (leaf->entry & PTE_US))
        report(a, X86PT_FINDING_KERNEL_USER_LEAF, leaf->va, level, leaf->entry);
    return true;
}

static bool audit_table(pt_visit_t *v, mm_vaddr_t va, unsigned level, uint64_t *slot)
{
    uint64_t e = pte_load(slot);
    if (pt_kernel_half(va) && (e & PTE_US))
        report(v->arg, X86PT_FINDING_KERNEL_USER_TABLE, va, level, e);
    return true;
}

mm_status_t x86pt_audit(const x86pt_t *m, mm_paddr_t root, x86pt_finding_fn fn, void *arg,
                        x86pt_audit_counts_t *counts)
{
    if (!pt_root_ok(m, root))
        return MM_ERR_INVALID;
    audit_ctx_t a = {fn, arg, {0, 0, 0}};
    pt_visit_t v = {.m = m,
                    .first = 0,
                    .last = UINT64_MAX,
                    .leaf = audit_leaf,
                    .table = audit_table,
                    .arg = &a};
    pt_visit(&v, root);
    if (counts != NULL)
        *counts = a.counts;
    return MM_OK;
}
