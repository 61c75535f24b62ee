/* Security audit: W+X pages, EL0 access to the kernel half, user pages
 * executable at EL1. */
#include "a64_internal.h"

typedef struct audit_ctx {
    a64pt_finding_fn fn;
    void *arg;
    a64pt_audit_counts_t counts;
} audit_ctx_t;

static void report(audit_ctx_t *a, a64pt_finding_kind_t kind, mm_vaddr_t va, unsigned level,
                   uint64_t entry)
{
    switch (kind) {
    case A64PT_FINDING_WX:
        a->counts.wx++;
        break;
    case A64PT_FINDING_KERNEL_EL0_LEAF:
        a->counts.kernel_el0_leaves++;
        break;
    default:
        a->counts.user_pxn_clear++;
        break;
    }
    if (a->fn != NULL) {
        a64pt_finding_t f = {kind, va, a64_arm_level_int(level), entry};
        a->fn(a->arg, &f);
    }
}

static bool audit_leaf(a64_visit_t *v, const ptk_leaf_t *leaf, unsigned level)
{
    audit_ctx_t *a = v->arg;
    uint64_t e = leaf->entry;
    /* Raw bits, not the interface flags: writable at EL1 (AP[2] clear) and
     * executable at any EL (PXN or UXN clear; UXN clear makes a page EL0
     * executable even without EL0 data access). */
    bool writable = !(e & D_AP_RO);
    bool exec = (e & (D_PXN | D_UXN)) != (D_PXN | D_UXN);
    if (writable && exec)
        report(a, A64PT_FINDING_WX, leaf->va, level, e);
    if (a64_kernel_half(leaf->va) && ((e & D_AP_EL0) || !(e & D_UXN)))
        report(a, A64PT_FINDING_KERNEL_EL0_LEAF, leaf->va, level, e);
    if ((e & D_AP_EL0) && !(e & D_PXN))
        report(a, A64PT_FINDING_USER_PXN_CLEAR, leaf->va, level, e);
    return true;
}

mm_status_t a64pt_audit(const a64pt_t *m, mm_paddr_t root, a64pt_finding_fn fn, void *arg,
                        a64pt_audit_counts_t *counts)
{
    if (!a64_root_ok(m, root))
        return MM_ERR_INVALID;
    audit_ctx_t a = {fn, arg, {0, 0, 0}};
    a64_visit_t v = {.m = m, .first = 0, .last = UINT64_MAX, .leaf = audit_leaf, .arg = &a};
    a64_visit(&v, root);
    if (counts != NULL)
        *counts = a.counts;
    return MM_OK;
}
