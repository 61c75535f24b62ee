/*
 * The page-table kit: a mapper's mm_page_mapper_t glue. The interface's
 * operations take `void *ctx`; calling a mapper's typed functions through
 * pointers of that type would be undefined behaviour, so each operation
 * gets a one-line adapter. PTK_PAGE_MAPPER(px, type_t) defines them and
 * `mm_page_mapper_t px_page_mapper(type_t *m)` over the mapper's public
 * px_map, px_unmap, px_protect, px_translate, px_root_create,
 * px_root_destroy, px_prepopulate_top and px_va_space.
 */
#ifndef HADRON_MM_PTK_GLUE_H
#define HADRON_MM_PTK_GLUE_H

#include <hadron/mm/page_mapper.h>

#define PTK_PAGE_MAPPER(px, type_t)                                                                \
    static mm_status_t px##_op_map(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,       \
                                   mm_page_size_t size, mm_map_flags_t flags, mm_tlb_batch_t *tlb) \
    {                                                                                              \
        return px##_map((type_t *)ctx, root, va, pa, size, flags, tlb);                            \
    }                                                                                              \
    static mm_status_t px##_op_unmap(void *ctx, mm_paddr_t root, mm_vaddr_t va,                    \
                                     mm_page_size_t size, mm_paddr_t *pa_out, mm_tlb_batch_t *tlb) \
    {                                                                                              \
        return px##_unmap((type_t *)ctx, root, va, size, pa_out, tlb);                             \
    }                                                                                              \
    static mm_status_t px##_op_protect(void *ctx, mm_paddr_t root, mm_vaddr_t va,                  \
                                       mm_page_size_t size, mm_map_flags_t flags,                  \
                                       mm_tlb_batch_t *tlb)                                        \
    {                                                                                              \
        return px##_protect((type_t *)ctx, root, va, size, flags, tlb);                            \
    }                                                                                              \
    static mm_status_t px##_op_translate(void *ctx, mm_paddr_t root, mm_vaddr_t va,                \
                                         mm_translation_t *out)                                    \
    {                                                                                              \
        return px##_translate((type_t *)ctx, root, va, out);                                       \
    }                                                                                              \
    static mm_status_t px##_op_root_create(void *ctx, mm_paddr_t kernel_root,                      \
                                           mm_paddr_t *root_out)                                   \
    {                                                                                              \
        return px##_root_create((type_t *)ctx, kernel_root, root_out);                             \
    }                                                                                              \
    static void px##_op_root_destroy(void *ctx, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg)  \
    {                                                                                              \
        px##_root_destroy((type_t *)ctx, root, leaf, leaf_arg);                                    \
    }                                                                                              \
    static mm_status_t px##_op_prepopulate_top(void *ctx, mm_paddr_t root, mm_vaddr_t va,          \
                                               uint64_t len)                                       \
    {                                                                                              \
        return px##_prepopulate_top((type_t *)ctx, root, va, len);                                 \
    }                                                                                              \
    static void px##_op_va_space(void *ctx, mm_va_space_t *out)                                    \
    {                                                                                              \
        px##_va_space((type_t *)ctx, out);                                                         \
    }                                                                                              \
    static const mm_page_mapper_ops_t px##_ops = {                                                 \
        .map = px##_op_map,                                                                        \
        .unmap = px##_op_unmap,                                                                    \
        .protect = px##_op_protect,                                                                \
        .translate = px##_op_translate,                                                            \
        .root_create = px##_op_root_create,                                                        \
        .root_destroy = px##_op_root_destroy,                                                      \
        .prepopulate_top = px##_op_prepopulate_top,                                                \
        .va_space = px##_op_va_space,                                                              \
    };                                                                                             \
    mm_page_mapper_t px##_page_mapper(type_t *m)                                                   \
    {                                                                                              \
        mm_page_mapper_t pm = {&px##_ops, m};                                                      \
        return pm;                                                                                 \
    }

#endif /* HADRON_MM_PTK_GLUE_H */
