/* Translation and the mm_page_mapper_t glue. */
#include "a64_internal.h"

mm_status_t a64pt_translate(a64pt_t *m, mm_paddr_t root, mm_vaddr_t va, mm_translation_t *out)
{
    if (!a64_root_ok(m, root) || out == NULL)
        return MM_ERR_INVALID;
    if (!a64_va_ok(m, root, va))
        return MM_ERR_NOT_CANONICAL;
    ptk_leaf_t leaf;
    mm_vaddr_t next;
    if (!a64_lookup(m, root, va, &leaf, &next))
        return MM_ERR_NOT_MAPPED;
    uint64_t page_mask = mm_page_bytes(leaf.size) - 1u;
    out->page_va = leaf.va;
    out->page_pa = leaf.pa;
    out->pa = leaf.pa | (va & page_mask);
    out->size = leaf.size;
    out->flags = leaf.flags;
    return MM_OK;
}

static mm_status_t op_map(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                          mm_page_size_t size, mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    return a64pt_map(ctx, root, va, pa, size, flags, tlb);
}

static mm_status_t op_unmap(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                            mm_paddr_t *pa_out, mm_tlb_batch_t *tlb)
{
    return a64pt_unmap(ctx, root, va, size, pa_out, tlb);
}

static mm_status_t op_protect(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                              mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    return a64pt_protect(ctx, root, va, size, flags, tlb);
}

static mm_status_t op_translate(void *ctx, mm_paddr_t root, mm_vaddr_t va,
                                mm_translation_t *out)
{
    return a64pt_translate(ctx, root, va, out);
}

static mm_status_t op_root_create(void *ctx, mm_paddr_t kernel_root, mm_paddr_t *root_out)
{
    return a64pt_root_create(ctx, kernel_root, root_out);
}

static void op_root_destroy(void *ctx, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg)
{
    a64pt_root_destroy(ctx, root, leaf, leaf_arg);
}

static mm_status_t op_prepopulate_top(void *ctx, mm_paddr_t root, mm_vaddr_t va, uint64_t len)
{
    return a64pt_prepopulate_top(ctx, root, va, len);
}

static void op_va_space(void *ctx, mm_va_space_t *out)
{
    a64pt_va_space(ctx, out);
}

static const mm_page_mapper_ops_t a64pt_ops = {
    .map = op_map,
    .unmap = op_unmap,
    .protect = op_protect,
    .translate = op_translate,
    .root_create = op_root_create,
    .root_destroy = op_root_destroy,
    .prepopulate_top = op_prepopulate_top,
    .va_space = op_va_space,
};

mm_page_mapper_t a64pt_page_mapper(a64pt_t *m)
{
    mm_page_mapper_t pm = {&a64pt_ops, m};
    return pm;
}
