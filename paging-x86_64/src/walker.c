/* In-order traversal of a hierarchy, shared by the walker, dump, audit and
 * the consistency check. */
#include "x86pt_internal.h"

static bool visit_table(pt_visit_t *v, uint64_t *t, unsigned level, mm_vaddr_t base, bool rw,
                        bool us, bool nx)
{
    const x86pt_t *m = v->m;
    unsigned shift = pt_shift(level);
    uint64_t span_last = ((uint64_t)1 << shift) - 1u;
    for (unsigned i = 0; i < X86PT_ENTRIES; i++) {
        mm_vaddr_t va = base + ((uint64_t)i << shift);
        if (level == m->levels)
            va = pt_canon(m, va); /* entries 256..511 are the kernel half */
        if (va + span_last < v->first)
            continue;
        if (va > v->last)
            break;
        uint64_t *slot = &t[i];
        uint64_t e = pte_load(slot);
        if (!(e & PTE_P))
            continue;
        if (pt_is_leaf(e, level)) {
            mm_page_size_t size = pt_size_of(level);
            x86pt_leaf_t leaf = {
                .va = va,
                .pa = pt_leaf_pa(e, level),
                .size = size,
                .flags = pt_leaf_flags(m, e, level, rw, us, nx),
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
        if (!visit_table(v, pt_table(pt_table_pa(e)), level - 1, va, rw && (e & PTE_RW),
                         us && (e & PTE_US), nx || (e & PTE_NX)))
            return false;
    }
    return true;
}

void pt_visit(pt_visit_t *v, mm_paddr_t root)
{
    v->stopped = false;
    visit_table(v, pt_table(root), v->m->levels, 0, true, true, false);
}

typedef struct walk_ctx {
    x86pt_leaf_fn fn;
    void *arg;
} walk_ctx_t;

static bool walk_leaf(pt_visit_t *v, const x86pt_leaf_t *leaf, unsigned level)
{
    (void)level;
    const walk_ctx_t *w = v->arg;
    return w->fn(w->arg, leaf);
}

mm_status_t x86pt_walk(const x86pt_t *m, mm_paddr_t root, mm_vaddr_t first, mm_vaddr_t last,
                       x86pt_leaf_fn fn, void *arg)
{
    if (!pt_root_ok(m, root) || first > last || fn == NULL)
        return MM_ERR_INVALID;
    walk_ctx_t w = {fn, arg};
    pt_visit_t v = {.m = m, .first = first, .last = last, .leaf = walk_leaf, .arg = &w};
    pt_visit(&v, root);
    return MM_OK;
}
