/* Root tables: creation with a shared kernel half, teardown, prepopulation. */
#include "x86pt_internal.h"

#define HALF (X86PT_ENTRIES / 2u)

mm_status_t x86pt_root_create(x86pt_t *m, mm_paddr_t kernel_root, mm_paddr_t *root_out)
{
    if (m == NULL || root_out == NULL)
        return MM_ERR_INVALID;
    if (kernel_root != 0 && !pt_root_ok(m, kernel_root))
        return MM_ERR_INVALID;
    pt_reserve_t r = PT_RESERVE_INIT;
    if (pt_reserve_fill(m, &r, 1) != MM_OK)
        return MM_ERR_NOMEM;
    mm_paddr_t root = pt_reserve_take(&r);
    if (kernel_root != 0) {
        /* Kernel-half root entries are never freed or moved (they carry no
         * count), so a copy stays valid for the lifetime of this root. */
        const uint64_t *src = pt_table(kernel_root);
        uint64_t *dst = pt_table(root);
        for (unsigned i = HALF; i < X86PT_ENTRIES; i++)
            dst[i] = pte_load(&src[i]);
    }
    *root_out = root;
    return MM_OK;
}

static void destroy_table(x86pt_t *m, mm_paddr_t table, unsigned level, mm_vaddr_t base,
                          bool up_rw, bool up_us, bool up_nx, mm_leaf_fn fn, void *arg)
{
    const uint64_t *t = pt_table(table);
    for (unsigned i = 0; i < X86PT_ENTRIES; i++) {
        uint64_t e = pte_load(&t[i]);
        if (!(e & PTE_P))
            continue;
        mm_vaddr_t va = base + ((uint64_t)i << pt_shift(level));
        if (pt_is_leaf(e, level)) {
            if (fn != NULL)
                fn(arg, va, pt_leaf_pa(e, level), pt_size_of(level),
                   pt_leaf_flags(m, e, level, up_rw, up_us, up_nx));
        } else {
            destroy_table(m, pt_table_pa(e), level - 1, va, up_rw && (e & PTE_RW),
                          up_us && (e & PTE_US), up_nx || (e & PTE_NX), fn, arg);
        }
    }
    pt_frame_free(m, table);
}

void x86pt_root_destroy(x86pt_t *m, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg)
{
    MM_ASSERT(pt_root_ok(m, root));
    unsigned top = m->levels;
    const uint64_t *t = pt_table(root);
    for (unsigned i = 0; i < HALF; i++) {
        uint64_t e = pte_load(&t[i]);
        if (!(e & PTE_P))
            continue;
        MM_ASSERT(!(e & PTE_PS));
        destroy_table(m, pt_table_pa(e), top - 1, (uint64_t)i << pt_shift(top),
                      (e & PTE_RW) != 0, (e & PTE_US) != 0, (e & PTE_NX) != 0, leaf, leaf_arg);
    }
    pt_frame_free(m, root);
}

mm_status_t x86pt_prepopulate_top(x86pt_t *m, mm_paddr_t root, mm_vaddr_t va, uint64_t len)
{
    if (!pt_root_ok(m, root))
        return MM_ERR_INVALID;
    if (len == 0)
        return MM_OK;
    uint64_t last;
    if (!mm_range_last(va, len, &last) || !pt_canonical(m, va) ||
        !pt_canonical(m, last) || pt_kernel_half(va) != pt_kernel_half(last))
        return MM_ERR_NOT_CANONICAL;

    unsigned top = m->levels;
    uint64_t *t = pt_table(root);
    unsigned lo = pt_index(va, top), hi = pt_index(last, top);
    size_t missing = 0;
    for (unsigned i = lo; i <= hi; i++)
        if (!(pte_load(&t[i]) & PTE_P))
            missing++;
    pt_reserve_t r = PT_RESERVE_INIT;
    if (pt_reserve_fill(m, &r, missing) != MM_OK)
        return MM_ERR_NOMEM;
    for (unsigned i = lo; i <= hi; i++) {
        if (pte_load(&t[i]) & PTE_P)
            continue;
        /* Never user, even in the lower half: the bit is granted on the
         * path to the first user leaf. Count 0: the table is empty. */
        pte_publish(&t[i], pt_reserve_take(&r) | PTE_TABLE_BITS);
    }
    MM_ASSERT(r.count == 0);
    return MM_OK;
}
