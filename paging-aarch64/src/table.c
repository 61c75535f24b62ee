/* Table lifetime: the kit's count decrements and frees instantiated for
 * this format, and the one break-before-make sequence. */
#include <hadron/mm/hooks.h>

#include "a64_internal.h"

void a64_count_dec(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, unsigned level,
                   mm_tlb_batch_t *tlb)
{
    ptk_geom_t g = a64_geom(m);
    ptk_count_dec(&a64_ops, m, &g, path, va, level, tlb);
}

void a64_frame_free(a64pt_t *m, mm_paddr_t frame)
{
    ptk_geom_t g = a64_geom(m);
    ptk_frame_free(&g, frame);
}

uint64_t a64_bbm_store(uint64_t *slot, mm_vaddr_t va, mm_page_size_t size, bool global,
                       uint64_t want, uint64_t keep, mm_tlb_batch_t *tlb)
{
    /* Break: the exchange also captures an AF the hardware set up to now;
     * after it no walker can load the old descriptor again. */
    uint64_t old = __atomic_exchange_n(slot, 0, __ATOMIC_RELAXED);
    /* Invalidate, synchronously, through the caller's batch: one hook call
     * for its identity (DSB ISHST; TLBI VAE1IS with the ASID, or VAAE1IS
     * for the kernel; DSB ISH; ISB) that returns when no CPU holds the old
     * translation or walk entry, then the batch's deferred frees. */
    mm_tlb_batch_add(tlb, va, size, global);
    mm_tlb_batch_flush(tlb);
    /* Make, visible to this CPU's walker before the caller goes on. */
    d_publish(slot, (want & ~keep) | (old & keep));
    a64_walker_sync();
    return old;
}
