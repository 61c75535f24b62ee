/* Kernel-side glue a real kernel would write: boot-time PMM setup. */
#include <hadron/mm/hhdm.h>
#include <hadron/mm/pmm.h>

#include "consumer_mm.h"

#if !HADRON_MM_PMM_POISON
#error "pmm_poison=true set through default_options did not reach hadron/mm/config.h"
#endif

mm_status_t consumer_mm_init(pmm_t *pmm, uint64_t hhdm, uint64_t phys_bytes)
{
    mm_status_t st = hhdm_init(hhdm, phys_bytes);
    if (st != MM_OK)
        return st;
    const pmm_region_t map[] = {
        {.base = 0, .length = phys_bytes, .type = PMM_REGION_USABLE},
    };
    return pmm_init(pmm, map, sizeof map / sizeof map[0], NULL, 0);
}
