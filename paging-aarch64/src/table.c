/* Table lifetime: count decrements that unlink emptied tables, the frame
 * reserve that lets changes allocate everything up front, and the one
 * break-before-make sequence. */
#include <hadron/mm/hooks.h>

#include "a64_internal.h"

void a64_count_dec(a64pt_t *m, a64_path_t *path, mm_vaddr_t va, unsigned level,
                   mm_tlb_batch_t *tlb)
{
    while (level != m->levels && !a64_pinned(m, va, level)) {
        uint64_t *parent = path->slot[level + 1];
        uint64_t old = d_load(parent);
        unsigned c = a64_count_of(old);
        MM_ASSERT(c > 0);
        if (c != 1) {
            d_store(parent, a64_with_count(old, c - 1u));
            return;
        }
        /* Valid -> invalid needs no break-before-make: the walk caches may
         * hold the table descriptor until the caller's flush (covered by
         * its record of va), so the frame is freed only then. */
        d_store(parent, 0);
        a64_table_retire(m, a64_addr(m, old), tlb);
        level++;
    }
}

void a64_frame_free(a64pt_t *m, mm_paddr_t frame)
{
    mm_status_t st = mm_frame_free(&m->frames, frame);
    MM_ASSERT(st == MM_OK);
    (void)st;
}

static mm_paddr_t reserve_pop(a64_reserve_t *r)
{
    MM_ASSERT(r->count != 0);
    mm_paddr_t f = r->head;
    r->head = *a64_table(f);
    r->count--;
    return f;
}

mm_status_t a64_reserve_fill(a64pt_t *m, a64_reserve_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mm_paddr_t f;
        if (m->frames.alloc(m->frames.ctx, 1, 1, m->phys_end, &f) != MM_OK) {
            while (i-- != 0)
                a64_frame_free(m, reserve_pop(r));
            return MM_ERR_NOMEM;
        }
        MM_ASSERT(mm_is_aligned(f, MM_PAGE_SIZE) && f < hhdm_window_size);
        *a64_table(f) = r->head;
        r->head = f;
        r->count++;
    }
    return MM_OK;
}

mm_paddr_t a64_reserve_take(a64_reserve_t *r)
{
    mm_paddr_t f = reserve_pop(r);
    __builtin_memset(a64_table(f), 0, MM_PAGE_SIZE);
    return f;
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
