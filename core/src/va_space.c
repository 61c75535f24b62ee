#include <hadron/mm/va_space.h>

mm_status_t mm_va_space_sign_extended(unsigned va_bits, unsigned levels, mm_va_space_t *out)
{
    if (out == NULL || va_bits < 32 || va_bits > 63 || levels < 2 ||
        levels > MM_VA_SPACE_MAX_LEVELS)
        return MM_ERR_INVALID;
    uint64_t half = UINT64_C(1) << (va_bits - 1);
    *out = (mm_va_space_t){
        .user_lo = 0,
        .user_hi = half,
        .kernel_lo = (mm_vaddr_t)0 - half,
        .kernel_hi = UINT64_MAX,
        .levels = levels,
        .kernel_root_separate = false,
    };
    return MM_OK;
}

mm_status_t mm_va_space_aarch64(unsigned va_bits, mm_va_space_t *out)
{
    /* 48 is the largest size a 4 KiB granule walks without LPA2; 52 needs
     * LPA2, which adds level -1 and nothing in between. */
    if (out == NULL || va_bits < 25 || va_bits > 52 || (va_bits > 48 && va_bits < 52))
        return MM_ERR_INVALID;
    uint64_t size = UINT64_C(1) << va_bits;
    /* Each level resolves 9 bits above the 12-bit page offset. */
    unsigned levels = (va_bits - 12 + 8) / 9;
    *out = (mm_va_space_t){
        .user_lo = 0,
        .user_hi = size,
        .kernel_lo = (mm_vaddr_t)0 - size,
        .kernel_hi = UINT64_MAX,
        .levels = levels,
        .kernel_root_separate = true,
    };
    return MM_OK;
}

mm_status_t mm_va_space_check(const mm_va_space_t *s)
{
    if (s == NULL || s->levels < 2 || s->levels > MM_VA_SPACE_MAX_LEVELS)
        return MM_ERR_INVALID;
    if (s->user_lo >= s->user_hi || s->user_hi > s->kernel_lo || s->kernel_lo > s->kernel_hi)
        return MM_ERR_INVALID;
    if (!mm_is_aligned(s->user_lo, MM_PAGE_SIZE) || !mm_is_aligned(s->user_hi, MM_PAGE_SIZE) ||
        !mm_is_aligned(s->kernel_lo, MM_PAGE_SIZE) ||
        !mm_is_aligned(s->kernel_hi + 1, MM_PAGE_SIZE))
        return MM_ERR_INVALID;
    return MM_OK;
}
