/*
 * Handle records: the VMM-side identity of every live stack, MMIO mapping
 * and address space. Handles are plain structs callers copy; a handle is
 * obeyed only if it matches its record, so a stale copy or a forged handle
 * can never unmap, free or switch to something it does not own.
 *
 * A record is named by its index in a table (O(1) lookup) and carries a
 * serial number that is never reused by this vmm_t, so a stale handle whose
 * record was freed and taken again by a new object no longer matches.
 */
#include <hadron/mm/hooks.h>

#include "vmm_internal.h"

void vmm_records_init(vmm_t *vmm, vmm_handle_rec_t *handles, uint32_t handle_count,
                      vmm_space_rec_t *spaces, uint32_t space_count)
{
    __builtin_memset(handles, 0, (size_t)handle_count * sizeof(handles[0]));
    __builtin_memset(spaces, 0, (size_t)space_count * sizeof(spaces[0]));
    for (uint32_t i = 0; i < space_count; i++)
        mm_spin_init_ranked(&spaces[i].lock, MM_LOCK_RANK_ASPACE, "address space");
    vmm->handles = handles;
    vmm->handle_count = handle_count;
    vmm->handle_used = 0;
    vmm->handle_free = VMM_REC_NONE;
    vmm->spaces = spaces;
    vmm->space_count = space_count;
    vmm->space_used = 0;
    vmm->space_free = VMM_REC_NONE;
    /* Start each instance's serials somewhere else (a multiplicative hash
     * of its address), so a handle moved to another vmm_t does not match a
     * record there by having the same small serial. Odd, stepped by 2:
     * never 0, which marks a free record. */
    vmm->next_serial = ((uint64_t)(uintptr_t)vmm * UINT64_C(0x9e3779b97f4a7c15)) | 1;
}

uint64_t vmm_serial_next_locked(vmm_t *vmm)
{
    uint64_t s = vmm->next_serial;
    vmm->next_serial += 2;
    return s;
}

bool vmm_handle_rec_available_locked(const vmm_t *vmm)
{
    return vmm->handle_free != VMM_REC_NONE || vmm->handle_used < vmm->handle_count;
}

uint32_t vmm_handle_rec_take_locked(vmm_t *vmm, uint8_t kind, uint64_t serial, mm_vaddr_t base,
                                    mm_paddr_t phys, uint64_t size)
{
    uint32_t i = vmm->handle_free;
    if (i != VMM_REC_NONE) {
        vmm->handle_free = vmm->handles[i].next_free;
    } else {
        MM_ASSERT(vmm->handle_used < vmm->handle_count);
        i = vmm->handle_used++;
    }
    vmm_handle_rec_t *r = &vmm->handles[i];
    MM_ASSERT(r->serial == 0);
    *r = (vmm_handle_rec_t){.serial = serial, .base = base, .phys = phys, .size = size,
                            .next_free = VMM_REC_NONE, .kind = kind, .state = VMM_REC_LIVE};
    return i;
}

vmm_handle_rec_t *vmm_handle_rec_find_locked(vmm_t *vmm, uint32_t index, uint64_t serial,
                                             uint8_t kind)
{
    if (index >= vmm->handle_used)
        return NULL;
    vmm_handle_rec_t *r = &vmm->handles[index];
    if (r->serial == 0 || r->serial != serial || r->kind != kind ||
        r->state == VMM_REC_RELEASING)
        return NULL;
    return r;
}

bool vmm_handle_rec_free_locked(const vmm_t *vmm, uint32_t index)
{
    return index < vmm->handle_used && vmm->handles[index].serial == 0;
}

void vmm_handle_rec_put_locked(vmm_t *vmm, uint32_t index)
{
    vmm_handle_rec_t *r = &vmm->handles[index];
    *r = (vmm_handle_rec_t){.next_free = vmm->handle_free};
    vmm->handle_free = index;
}

uint32_t vmm_space_rec_take_locked(vmm_t *vmm)
{
    uint32_t i = vmm->space_free;
    if (i != VMM_REC_NONE)
        vmm->space_free = vmm->spaces[i].next_free;
    else if (vmm->space_used < vmm->space_count)
        i = vmm->space_used++;
    if (i != VMM_REC_NONE)
        vmm->spaces[i].next_free = VMM_REC_NONE;
    return i;
}

void vmm_space_rec_put_locked(vmm_t *vmm, uint32_t index)
{
    vmm->spaces[index].next_free = vmm->space_free;
    vmm->space_free = index;
}

void vmm_warn_stale(const char *message, uint64_t address, bool released)
{
    mm_report_t r = {
        .kind = released ? MM_REPORT_DOUBLE_FREE : MM_REPORT_BAD_POINTER,
        .message = message,
        .file = __FILE__,
        .line = __LINE__,
        .address = address,
        .offset = 0,
        .found = 0,
        .expected = 0,
    };
    mm_hook_warn(&r);
}

bool vmm_records_consistent_locked(const vmm_t *vmm)
{
    uint64_t stacks = 0, mmios = 0, mmio_pages = 0;
    if (vmm->handle_used > vmm->handle_count)
        return false;
    for (uint32_t i = 0; i < vmm->handle_used; i++) {
        const vmm_handle_rec_t *r = &vmm->handles[i];
        if (r->serial == 0)
            continue;
        if (r->kind == VMM_REC_STACK) {
            if ((r->base - vmm->stacks.base) % vmm->stack_slot != 0 ||
                !vmm_region_freelist_is_allocated(&vmm->stacks, r->base, vmm->stack_slot))
                return false;
            stacks++;
        } else if (r->kind == VMM_REC_MMIO) {
            uint64_t last;
            if (r->size == 0 || !mm_range_last(r->phys, r->size, &last))
                return false;
            uint64_t pages = vmm_mmio_page_count(r->phys, r->size);
            if (!vmm_region_freelist_is_allocated(&vmm->mmio, r->base, pages * MM_PAGE_SIZE))
                return false;
            mmios++;
            mmio_pages += pages;
        } else {
            return false;
        }
    }
    /* The free chain: only free records, each once (bounded walk). */
    uint32_t free_count = 0;
    for (uint32_t i = vmm->handle_free; i != VMM_REC_NONE; i = vmm->handles[i].next_free) {
        if (i >= vmm->handle_used || vmm->handles[i].serial != 0 ||
            ++free_count > vmm->handle_used)
            return false;
    }
    return stacks == vmm->stats.stacks && mmios == vmm->stats.mmio_mappings &&
           mmio_pages == vmm->stats.mmio_pages &&
           stacks + mmios + free_count == vmm->handle_used;
}
