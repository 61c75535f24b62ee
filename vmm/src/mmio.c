/*
 * MMIO mappings: any physical range, mapped page by page into the MMIO
 * region with device cache attributes. No frames are owned; only the
 * virtual range and whatever page tables the mapper needed.
 */
#include "vmm_internal.h"

static void set_released(vmm_mmio_t *m)
{
    *m = (vmm_mmio_t)VMM_MMIO_INIT;
}

static mm_map_flags_t cache_flags(vmm_mmio_cache_t cache)
{
    return cache == VMM_MMIO_WRITE_COMBINING ? MM_MAP_WRITE_COMBINING : MM_MAP_DEVICE;
}

mm_status_t vmm_mmio_map(vmm_t *vmm, mm_paddr_t phys, uint64_t size, vmm_mmio_cache_t cache,
                         vmm_mmio_t *out)
{
    if (out == NULL)
        return MM_ERR_INVALID;
    set_released(out);
    if (vmm == NULL || size == 0 || (unsigned)cache >= VMM_MMIO_CACHE_COUNT)
        return MM_ERR_INVALID;
    if (!vmm_ready(vmm))
        return MM_ERR_STATE;
    uint64_t last;
    if (!mm_range_last(phys, size, &last))
        return MM_ERR_RANGE;

    /* Every page the range touches, so a register block that straddles a
     * page boundary is mapped whole, and the in-page offset survives. */
    mm_paddr_t first_page = mm_align_down(phys, MM_PAGE_SIZE);
    uint64_t pages = vmm_mmio_page_count(phys, size);
    if (pages > vmm->mmio.size / MM_PAGE_SIZE)
        return MM_ERR_EXHAUSTED; /* also keeps pages * 4 KiB from wrapping */
    uint64_t bytes = pages * MM_PAGE_SIZE;
    mm_map_flags_t flags = VMM_KERNEL_DATA_FLAGS | cache_flags(cache);

    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    mm_vaddr_t range;
    /* The record is taken on success in this lock hold (see stack.c). */
    mm_status_t st = vmm_handle_rec_available_locked(vmm) ? MM_OK : MM_ERR_FULL;
    if (st == MM_OK)
        st = vmm_region_freelist_alloc(&vmm->mmio, bytes, &range);
    if (st != MM_OK) {
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        return st;
    }
    size_t done;
    st = vmm_map_pages(&vmm->mapper, vmm->kernel_root, range, (size_t)pages, NULL, first_page,
                       flags, &tlb, &done);
    if (st != MM_OK) {
        vmm_unmap_pages(&vmm->mapper, vmm->kernel_root, range, done, NULL, &tlb);
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        mm_tlb_batch_flush(&tlb);
        irq = mm_spin_lock_irqsave(&vmm->lock);
        /* Fails only if concurrent frees filled the list meanwhile. */
        if (vmm_region_freelist_free(&vmm->mmio, range, bytes) != MM_OK)
            vmm->stats.stranded_bytes += bytes;
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        return st;
    }
    uint64_t serial = vmm_serial_next_locked(vmm);
    uint32_t rec = vmm_handle_rec_take_locked(vmm, VMM_REC_MMIO, serial, range, phys, size);
    vmm->stats.mmio_mappings++;
    vmm->stats.mmio_pages += pages;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    mm_tlb_batch_flush(&tlb);

    out->ptr = (volatile void *)(uintptr_t)(range + (phys - first_page));
    out->phys = phys;
    out->size = size;
    out->pages = pages;
    out->vmm = vmm;
    out->serial = serial;
    out->rec = rec;
    return MM_OK;
}

/* The live record this handle names, if every field of it matches. Under
 * the VMM lock. */
static vmm_handle_rec_t *find_locked(vmm_t *vmm, const vmm_mmio_t *m)
{
    vmm_handle_rec_t *r = vmm_handle_rec_find_locked(vmm, m->rec, m->serial, VMM_REC_MMIO);
    if (r == NULL || m->phys != r->phys || m->size != r->size ||
        m->pages != vmm_mmio_page_count(r->phys, r->size) ||
        (mm_vaddr_t)(uintptr_t)m->ptr != r->base + (r->phys & (MM_PAGE_SIZE - 1)))
        return NULL;
    return r;
}

mm_status_t vmm_mmio_release(vmm_mmio_t *mmio)
{
    if (mmio == NULL || mmio->vmm == NULL)
        return MM_OK;
    vmm_t *vmm = mmio->vmm;
    mm_vaddr_t ptr = (mm_vaddr_t)(uintptr_t)mmio->ptr;
    if (!vmm_ready(vmm)) {
        vmm_warn_stale("vmm: MMIO handle of no live VMM", ptr, false);
        return MM_ERR_STALE;
    }

    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    vmm_handle_rec_t *r = find_locked(vmm, mmio);
    if (r == NULL) {
        bool released = vmm_handle_rec_free_locked(vmm, mmio->rec);
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        vmm_warn_stale(released ? "vmm: MMIO mapping released twice (stale copy)"
                                : "vmm: stale or forged MMIO handle",
                       ptr, released);
        return MM_ERR_STALE;
    }
    mm_vaddr_t range = r->base;
    uint64_t pages = mmio->pages;
    if (r->state == VMM_REC_LIVE) {
        r->state = VMM_REC_RELEASING;
        mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
        vmm_unmap_pages(&vmm->mapper, vmm->kernel_root, range, (size_t)pages, NULL, &tlb);
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        mm_tlb_batch_flush(&tlb);
        irq = mm_spin_lock_irqsave(&vmm->lock);
        r->state = VMM_REC_PAGES_GONE;
    }

    /* After the flush, so the range cannot be reused while a CPU may still
     * translate it to the old device. */
    mm_status_t st = vmm_region_freelist_free(&vmm->mmio, range, pages * MM_PAGE_SIZE);
    if (st == MM_OK) {
        vmm->stats.mmio_mappings--;
        vmm->stats.mmio_pages -= pages;
        vmm_handle_rec_put_locked(vmm, mmio->rec);
    }
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    if (st != MM_OK) {
        MM_ASSERT(st == MM_ERR_FULL);
        return st;
    }
    set_released(mmio);
    return MM_OK;
}
