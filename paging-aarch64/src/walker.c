/* In-order traversal of a hierarchy, shared by the walker, dump, audit and
 * the consistency check. */
#include "a64_internal.h"

static bool visit_table(a64_visit_t *v, mm_paddr_t root, uint64_t *t, unsigned level,
                        mm_vaddr_t base, uint64_t up)
{
    const a64pt_t *m = v->m;
    unsigned shift = a64_shift(level);
    uint64_t span_last = ((uint64_t)1 << shift) - 1u;
    unsigned entries = level == m->levels ? m->root_entries : A64PT_ENTRIES;
    for (unsigned i = 0; i < entries; i++) {
        mm_vaddr_t va = base + ((uint64_t)i << shift);
        if (level == m->levels)
            va = a64_canon(m, root, va); /* which half the root entry is */
        if (va + span_last < v->first)
            continue;
        if (va > v->last)
            break;
        uint64_t *slot = &t[i];
        uint64_t e = d_load(slot);
        if (!a64_valid(e, level))
            continue;
        if (a64_is_leaf(e, level)) {
            a64pt_leaf_t leaf = {
                .va = va,
                .pa = a64_leaf_pa(m, e, level),
                .size = a64_size_of(level),
                .flags = a64_leaf_flags(e, up),
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
        if (!visit_table(v, root, a64_table(a64_addr(m, e)), level - 1, va,
                         up | (e & D_TABLE_ATTRS)))
            return false;
    }
    return true;
}

void a64_visit(a64_visit_t *v, mm_paddr_t root)
{
    v->stopped = false;
    visit_table(v, root, a64_table(root), v->m->levels, 0, 0);
}

typedef struct walk_ctx {
    a64pt_leaf_fn fn;
    void *arg;
} walk_ctx_t;

static bool walk_leaf(a64_visit_t *v, const a64pt_leaf_t *leaf, unsigned level)
{
    (void)level;
    const walk_ctx_t *w = v->arg;
    return w->fn(w->arg, leaf);
}

mm_status_t a64pt_walk(const a64pt_t *m, mm_paddr_t root, mm_vaddr_t first, mm_vaddr_t last,
                       a64pt_leaf_fn fn, void *arg)
{
    if (!a64_root_ok(m, root) || first > last || fn == NULL)
        return MM_ERR_INVALID;
    walk_ctx_t w = {fn, arg};
    a64_visit_t v = {.m = m, .first = first, .last = last, .leaf = walk_leaf, .arg = &w};
    a64_visit(&v, root);
    return MM_OK;
}
