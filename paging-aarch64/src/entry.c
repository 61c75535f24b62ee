/* Configuration, MAIR_EL1 and the public view of the flag encoding. */
#include "a64_internal.h"

MM_STATIC_ASSERT(((A64PT_MAIR_EL1 >> (8 * A64PT_ATTR_WB)) & 0xff) == A64PT_MAIR_NORMAL_WB,
                 "Attr0 is Normal WB");
MM_STATIC_ASSERT(((A64PT_MAIR_EL1 >> (8 * A64PT_ATTR_WT)) & 0xff) == A64PT_MAIR_NORMAL_WT,
                 "Attr1 is Normal WT");
MM_STATIC_ASSERT(((A64PT_MAIR_EL1 >> (8 * A64PT_ATTR_NC)) & 0xff) == A64PT_MAIR_NORMAL_NC,
                 "Attr2 is Normal NC");
MM_STATIC_ASSERT(((A64PT_MAIR_EL1 >> (8 * A64PT_ATTR_DEVICE)) & 0xff) ==
                     A64PT_MAIR_DEVICE_nGnRE,
                 "Attr3 is Device-nGnRE");
MM_STATIC_ASSERT((A64PT_MAIR_EL1 >> 32) == 0, "Attr4..7 are Device-nGnRnE");
/* The count must fit: 7 + 3 bits hold 0..1023 >= 512. */
MM_STATIC_ASSERT((D_CNT_LO_MASK >> D_CNT_LO_SHIFT) == 0x7f && (D_CNT_HI_MASK >> D_CNT_HI_SHIFT) == 7,
                 "count field widths");
/* ... and must not overlap anything a table descriptor means. */
MM_STATIC_ASSERT((D_CNT_MASK & (D_VALID | D_TABLE | D_ADDR_LPA2_LOW | D_ADDR_LPA2_HIGH |
                                D_AF | D_TABLE_ATTRS)) == 0,
                 "count bits are IGNORED bits");

uint64_t a64pt_mair_el1(void)
{
    return A64PT_MAIR_EL1;
}

int a64pt_attr_index(mm_map_flags_t flags)
{
    return a64_attr_index(flags);
}

uint64_t a64pt_leaf_bits(const a64pt_t *m, mm_map_flags_t flags, mm_page_size_t size,
                         bool kernel_half)
{
    if (m == NULL || !a64_size_valid(size) || a64_check_flags(flags, kernel_half) != MM_OK)
        return 0;
    return a64_leaf_bits(m, flags, a64_level_of(size));
}

mm_status_t a64pt_init(a64pt_t *m, const a64pt_config_t *cfg)
{
    if (m == NULL || cfg == NULL)
        return MM_ERR_INVALID;
    if (cfg->va_bits != 48 && cfg->va_bits != 52)
        return MM_ERR_INVALID;
    /* 52-bit VA with a 4 KiB granule exists only with FEAT_LPA2 (DS = 1),
     * and so do output addresses above 2^48. */
    if (cfg->va_bits == 52 && !cfg->lpa2)
        return MM_ERR_INVALID;
    if (cfg->phys_bits < 32 || cfg->phys_bits > (cfg->lpa2 ? 52u : 48u))
        return MM_ERR_INVALID;
    if (cfg->frames.alloc == NULL || cfg->frames.free == NULL)
        return MM_ERR_INVALID;
    if (!mm_is_aligned(cfg->kernel_root, MM_PAGE_SIZE) ||
        cfg->kernel_root >> cfg->phys_bits != 0)
        return MM_ERR_INVALID;
    m->frames = cfg->frames;
    m->va_bits = cfg->va_bits;
    m->levels = cfg->va_bits == 52 ? 5u : 4u;
    m->root_entries = cfg->va_bits == 52 ? 16u : A64PT_ENTRIES;
    m->phys_bits = cfg->phys_bits;
    m->lpa2 = cfg->lpa2;
    m->phys_end = (mm_paddr_t)1 << cfg->phys_bits;
    m->separate = cfg->kernel_root_separate;
    m->kernel_root = cfg->kernel_root;
    return MM_OK;
}

void a64pt_va_space(const a64pt_t *m, mm_va_space_t *out)
{
    /* Shared root: the user half is the low half of a va_bits-bit space and
     * the kernel half its sign-extended top, both below one root; separate
     * kernel root: 2^va_bits each (see a64pt.h, "Address space"). 4 levels
     * for 48 bits, 5 for 52 (LPA2's level -1). */
    mm_status_t st = m->separate ? mm_va_space_aarch64(m->va_bits, out)
                                 : mm_va_space_sign_extended(m->va_bits, m->levels, out);
    MM_ASSERT(st == MM_OK);
    (void)st;
}
