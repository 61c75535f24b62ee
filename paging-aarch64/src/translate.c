/* Translation and the mm_page_mapper_t glue. */
#include "a64_internal.h"
#include "ptk_glue.h"

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

PTK_PAGE_MAPPER(a64pt, a64pt_t)
