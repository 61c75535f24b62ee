#include <stdatomic.h>

#include <hadron/mm/hhdm.h>

uint64_t hhdm_offset_value;
uint64_t hhdm_window_size;

enum { HHDM_UNSET, HHDM_SETTING, HHDM_READY };
static atomic_int hhdm_state;

mm_status_t hhdm_init(uint64_t offset, uint64_t window_size)
{
    uint64_t last;
    if (!mm_is_aligned(offset, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;
    if (window_size == 0 || !mm_is_aligned(window_size, MM_PAGE_SIZE))
        return MM_ERR_INVALID;
    if (!mm_range_last(offset, window_size, &last))
        return MM_ERR_RANGE;

    int expected = HHDM_UNSET;
    if (!atomic_compare_exchange_strong(&hhdm_state, &expected, HHDM_SETTING))
        return MM_ERR_STATE;
    hhdm_offset_value = offset;
    hhdm_window_size = window_size;
    atomic_store_explicit(&hhdm_state, HHDM_READY, memory_order_release);
    return MM_OK;
}

bool hhdm_is_ready(void)
{
    return atomic_load_explicit(&hhdm_state, memory_order_acquire) == HHDM_READY;
}

mm_status_t hhdm_phys_to_virt_checked(mm_paddr_t pa, void **out)
{
    if (!hhdm_is_ready())
        return MM_ERR_STATE;
    if (pa >= hhdm_window_size)
        return MM_ERR_RANGE;
    *out = hhdm_phys_to_virt(pa);
    return MM_OK;
}

mm_status_t hhdm_virt_to_phys_checked(const void *va, mm_paddr_t *out)
{
    if (!hhdm_is_ready())
        return MM_ERR_STATE;
    uint64_t v = (uint64_t)(uintptr_t)va;
    if (v < hhdm_offset_value || v - hhdm_offset_value >= hhdm_window_size)
        return MM_ERR_RANGE;
    *out = v - hhdm_offset_value;
    return MM_OK;
}
