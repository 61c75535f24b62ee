/* The public walker over the kit's in-order traversal (ptk_visit). */
#include "x86pt_internal.h"

typedef struct walk_ctx {
    x86pt_leaf_fn fn;
    void *arg;
} walk_ctx_t;

static bool walk_leaf(pt_visit_t *v, const ptk_leaf_t *leaf, unsigned level)
{
    (void)level;
    const walk_ctx_t *w = v->arg;
    x86pt_leaf_t l = {leaf->va, leaf->pa, leaf->size, leaf->flags, leaf->entry};
    return w->fn(w->arg, &l);
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
