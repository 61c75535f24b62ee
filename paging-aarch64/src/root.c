/* Root tables: creation with a shared kernel half, teardown, prepopulation. */
#include "a64_internal.h"

mm_status_t a64pt_root_create(a64pt_t *m, mm_paddr_t kernel_root, mm_paddr_t *root_out)
{
    if (m == NULL || root_out == NULL)
        return MM_ERR_INVALID;
    if (kernel_root != 0 && (!a64_root_ok(m, kernel_root) || m->separate))
        return MM_ERR_INVALID;
    a64_reserve_t r = A64_RESERVE_INIT;
    if (a64_reserve_fill(m, &r, 1) != MM_OK)
        return MM_ERR_NOMEM;
    mm_paddr_t root = a64_reserve_take(&r);
    if (kernel_root != 0) {
        /* Kernel-half root entries never move or go (no count), so a copy
         * stays valid for the lifetime of this root. */
        const uint64_t *src = a64_table(kernel_root);
        uint64_t *dst = a64_table(root);
        for (unsigned i = m->root_entries / 2u; i < m->root_entries; i++)
            dst[i] = d_load(&src[i]);
    }
    *root_out = root;
    return MM_OK;
}

mm_status_t a64pt_kernel_root_create(a64pt_t *m, mm_paddr_t *root_out)
{
    if (m == NULL || root_out == NULL)
        return MM_ERR_INVALID;
    if (m->kernel_root != 0)
        return MM_ERR_STATE;
    mm_status_t st = a64pt_root_create(m, 0, &m->kernel_root);
    if (st == MM_OK)
        *root_out = m->kernel_root;
    return st;
}

static void destroy_table(a64pt_t *m, mm_paddr_t table, unsigned level, mm_vaddr_t base,
                          uint64_t up, mm_leaf_fn fn, void *arg)
{
    const uint64_t *t = a64_table(table);
    for (unsigned i = 0; i < A64PT_ENTRIES; i++) {
        uint64_t e = d_load(&t[i]);
        if (!a64_valid(e, level))
            continue;
        mm_vaddr_t va = base + ((uint64_t)i << a64_shift(level));
        if (a64_is_leaf(e, level)) {
            if (fn != NULL)
                fn(arg, va, a64_leaf_pa(m, e, level), a64_size_of(level),
                   a64_leaf_flags(e, up));
        } else {
            destroy_table(m, a64_addr(m, e), level - 1, va, up | (e & D_TABLE_ATTRS), fn, arg);
        }
    }
    a64_frame_free(m, table);
}

void a64pt_root_destroy(a64pt_t *m, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg)
{
    MM_ASSERT(a64_root_ok(m, root) && !a64_is_kernel_root(m, root));
    unsigned top = m->levels;
    const uint64_t *t = a64_table(root);
    for (unsigned i = 0; i < a64_user_root_entries(m); i++) {
        uint64_t e = d_load(&t[i]);
        if (!a64_valid(e, top))
            continue;
        destroy_table(m, a64_addr(m, e), top - 1, (uint64_t)i << a64_shift(top),
                      e & D_TABLE_ATTRS, leaf, leaf_arg);
    }
    a64_frame_free(m, root);
}

mm_status_t a64pt_prepopulate_top(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len)
{
    if (!a64_root_ok(m, root))
        return MM_ERR_INVALID;
    if (len == 0)
        return MM_OK;
    uint64_t last;
    if (!mm_range_last(va, len, &last) || !a64_va_ok(m, root, va) ||
        !a64_va_ok(m, root, last) || a64_kernel_half(va) != a64_kernel_half(last))
        return MM_ERR_NOT_CANONICAL;

    unsigned top = m->levels;
    uint64_t *t = a64_table(root);
    unsigned lo = a64_index(va, top), hi = a64_index(last, top);
    size_t missing = 0;
    for (unsigned i = lo; i <= hi; i++)
        if (!a64_valid(d_load(&t[i]), top))
            missing++;
    a64_reserve_t r = A64_RESERVE_INIT;
    if (a64_reserve_fill(m, &r, missing) != MM_OK)
        return MM_ERR_NOMEM;
    for (unsigned i = lo; i <= hi; i++) {
        if (a64_valid(d_load(&t[i]), top))
            continue;
        d_publish(&t[i], a64_addr_bits(m, a64_reserve_take(&r)) | D_VALID | D_TABLE);
    }
    MM_ASSERT(r.count == 0);
    a64_walker_sync();
    return MM_OK;
}
