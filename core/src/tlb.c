#include <hadron/mm/hooks.h>
#include <hadron/mm/tlb.h>

void mm_tlb_batch_add(mm_tlb_batch_t *batch, mm_vaddr_t va, mm_page_size_t size, bool global)
{
    batch->global |= global;
    if (batch->flush_all)
        return;
    /* INVLPG of any address inside a large page drops the whole entry, so a
     * huge page needs one slot like a 4 KiB one. */
    mm_vaddr_t page = mm_align_down(va, mm_page_bytes(size));
    for (uint32_t i = 0; i < batch->count; i++)
        if (batch->pages[i] == page)
            return;
    if (batch->count == MM_TLB_BATCH_MAX) {
        batch->flush_all = true;
        return;
    }
    batch->pages[batch->count++] = page;
}

void mm_tlb_batch_flush(mm_tlb_batch_t *batch)
{
    if (batch->flush_all)
        mm_hook_tlb_flush_all(batch->global);
    else if (batch->count != 0)
        mm_hook_tlb_flush_pages(batch->pages, batch->count);
    mm_tlb_batch_init(batch);
}
