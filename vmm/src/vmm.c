/*
 * The kernel VMM instance: set-up, statistics, consistency check and
 * page-fault classification. The operations live in heap.c, stack.c,
 * mmio.c and aspace.c.
 */
#include <hadron/mm/hooks.h>

#include "vmm_internal.h"

static const layout_region_id_t managed[] = {LAYOUT_HEAP, LAYOUT_STACKS, LAYOUT_MMIO};
#define MANAGED_COUNT (sizeof(managed) / sizeof(managed[0]))

static bool mapper_complete(const mm_page_mapper_t *pm)
{
    const mm_page_mapper_ops_t *ops = pm->ops;
    return ops != NULL && ops->map != NULL && ops->unmap != NULL && ops->protect != NULL &&
           ops->translate != NULL && ops->root_create != NULL && ops->root_destroy != NULL &&
           ops->prepopulate_top != NULL && ops->va_space != NULL;
}

/* Every region the VMM uses, directly (heap, stacks, MMIO) or to classify
 * faults and keep its own regions apart from the rest (HHDM, image). */
static const layout_region_id_t all_regions[] = {LAYOUT_HHDM, LAYOUT_HEAP, LAYOUT_STACKS,
                                                 LAYOUT_MMIO, LAYOUT_KERNEL_IMAGE};
#define ALL_COUNT (sizeof(all_regions) / sizeof(all_regions[0]))

static mm_status_t check_region(const layout_t *l, layout_region_id_t id)
{
    const layout_region_t *r = &l->regions[id];
    uint64_t last;
    if (r->size == 0 || !mm_va_space_is_kernel(&l->space, r->base))
        return MM_ERR_INVALID;
    if (!mm_is_aligned(r->base, MM_PAGE_SIZE) || !mm_is_aligned(r->size, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;
    if (!mm_range_last(r->base, r->size, &last) || last > l->space.kernel_hi)
        return MM_ERR_RANGE;
    return MM_OK;
}

/* The layout is the caller's data and may be hand-made rather than from
 * layout_compute(), so every field the VMM relies on is checked again: the
 * address-space descriptor (user-half bounds), which must be the mapper's
 * own (a layout for another paging mode would put regions where the mapper
 * has no addresses, or user ranges where it has kernel ones), and all five
 * regions inside its kernel range (no kernel region, mapped global, can sit
 * in the user half; fault classification; a heap overlapping the HHDM
 * would otherwise only show up as MM_ERR_EXISTS from a later growth). */
static mm_status_t check_layout(const layout_t *l, const mm_page_mapper_t *pm)
{
    mm_va_space_t mapper_space;
    pm->ops->va_space(pm->ctx, &mapper_space);
    if (mm_va_space_check(&l->space) != MM_OK || !mm_va_space_equal(&l->space, &mapper_space))
        return MM_ERR_INVALID;
    for (unsigned i = 0; i < ALL_COUNT; i++) {
        mm_status_t st = check_region(l, all_regions[i]);
        if (st != MM_OK)
            return st;
    }
    for (unsigned a = 0; a < ALL_COUNT; a++) {
        const layout_region_t *ra = &l->regions[all_regions[a]];
        for (unsigned b = a + 1; b < ALL_COUNT; b++) {
            const layout_region_t *rb = &l->regions[all_regions[b]];
            if (mm_ranges_overlap(ra->base, ra->base + (ra->size - 1), rb->base,
                                  rb->base + (rb->size - 1)))
                return MM_ERR_OVERLAP;
        }
    }
    return MM_OK;
}

mm_status_t vmm_init(vmm_t *vmm, const vmm_config_t *cfg)
{
    if (vmm == NULL || cfg == NULL || cfg->layout == NULL)
        return MM_ERR_INVALID;
    if (!mapper_complete(&cfg->mapper) || cfg->frames.alloc == NULL || cfg->frames.free == NULL)
        return MM_ERR_INVALID;
    if ((cfg->handles != NULL && (cfg->handle_count == 0 || cfg->handle_count > VMM_MAX_RECORDS)) ||
        (cfg->spaces != NULL && (cfg->space_count == 0 || cfg->space_count > VMM_MAX_RECORDS)))
        return MM_ERR_INVALID;
    if (cfg->kernel_root == 0)
        return MM_ERR_INVALID;
    if (!mm_is_aligned(cfg->kernel_root, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;
    const layout_t *l = cfg->layout;
    mm_status_t st = check_layout(l, &cfg->mapper);
    if (st != MM_OK)
        return st;

    uint64_t stack_size = cfg->stack_size != 0 ? cfg->stack_size : VMM_STACK_DEFAULT_SIZE;
    if (!mm_is_aligned(stack_size, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;
    const layout_region_t *stacks = &l->regions[LAYOUT_STACKS];
    if (stacks->size < VMM_STACK_GUARD_SIZE || stack_size > stacks->size - VMM_STACK_GUARD_SIZE)
        return MM_ERR_INVALID;

    /* One call over the whole span, guard gaps included: a few more table
     * pages than three calls would need, but all or nothing, so a failure
     * leaves no half-prepared kernel half behind. A kernel half with a root
     * of its own is never copied into address spaces: nothing to share. */
    mm_vaddr_t lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < MANAGED_COUNT; i++) {
        const layout_region_t *r = &l->regions[managed[i]];
        mm_vaddr_t last = r->base + (r->size - 1);
        lo = r->base < lo ? r->base : lo;
        hi = last > hi ? last : hi;
    }
    if (!l->space.kernel_root_separate) {
        st = cfg->mapper.ops->prepopulate_top(cfg->mapper.ctx, cfg->kernel_root, lo,
                                              hi - lo + 1);
        if (st != MM_OK)
            return st;
    }

    *vmm = (vmm_t){0};
    vmm->self = vmm;
    mm_spin_init_ranked(&vmm->lock, MM_LOCK_RANK_VMM, "vmm");
    vmm->layout = *l;
    vmm->kernel_root = cfg->kernel_root;
    vmm->mapper = cfg->mapper;
    vmm->frames = cfg->frames;
    vmm->stack_size = stack_size;
    vmm->stack_slot = stack_size + VMM_STACK_GUARD_SIZE;

    vmm_range_t *heap_slots = cfg->heap_slots;
    size_t heap_cap = cfg->heap_slot_count;
    if (heap_slots == NULL) {
        heap_slots = vmm->builtin_heap_slots;
        heap_cap = VMM_DEFAULT_RANGE_SLOTS;
    }
    vmm_range_t *stack_slots = cfg->stack_slots;
    size_t stack_cap = cfg->stack_slot_count;
    if (stack_slots == NULL) {
        stack_slots = vmm->builtin_stack_slots;
        stack_cap = VMM_DEFAULT_RANGE_SLOTS;
    }
    vmm_range_t *mmio_slots = cfg->mmio_slots;
    size_t mmio_cap = cfg->mmio_slot_count;
    if (mmio_slots == NULL) {
        mmio_slots = vmm->builtin_mmio_slots;
        mmio_cap = VMM_DEFAULT_RANGE_SLOTS;
    }

    const layout_region_t *heap = &l->regions[LAYOUT_HEAP];
    const layout_region_t *mmio = &l->regions[LAYOUT_MMIO];
    st = vmm_region_freelist_init(&vmm->heap, heap->base, heap->size, heap_slots, heap_cap);
    MM_ASSERT(st == MM_OK);
    st = vmm_region_freelist_init(&vmm->stacks, stacks->base, stacks->size, stack_slots,
                                  stack_cap);
    MM_ASSERT(st == MM_OK);
    st = vmm_region_freelist_init(&vmm->mmio, mmio->base, mmio->size, mmio_slots, mmio_cap);
    MM_ASSERT(st == MM_OK);
    (void)st;

    vmm_handle_rec_t *handles = cfg->handles;
    size_t handle_cap = cfg->handle_count;
    if (handles == NULL) {
        handles = vmm->builtin_handles;
        handle_cap = VMM_DEFAULT_HANDLES;
    }
    vmm_space_rec_t *spaces = cfg->spaces;
    size_t space_cap = cfg->space_count;
    if (spaces == NULL) {
        spaces = vmm->builtin_spaces;
        space_cap = VMM_DEFAULT_SPACES;
    }
    vmm_records_init(vmm, handles, (uint32_t)handle_cap, spaces, (uint32_t)space_cap);
    vmm->asids = cfg->asids;
    vmm->ready = true;
    return MM_OK;
}

void vmm_stats(vmm_t *vmm, vmm_stats_t *out)
{
    if (out == NULL)
        return;
    if (!vmm_ready(vmm)) {
        *out = (vmm_stats_t){0};
        return;
    }
    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    *out = vmm->stats;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
}

/* Checked under the lock. Operations update their counters in the same
 * lock hold as their region change, except that a failed operation holds
 * its range (uncounted) across the unlocked TLB flush; hence inequalities,
 * which hold at every instant, rather than equalities. */
static mm_status_t check_locked(const vmm_t *vmm)
{
    const vmm_stats_t *s = &vmm->stats;
    if (vmm_region_freelist_check(&vmm->heap) != MM_OK ||
        vmm_region_freelist_check(&vmm->stacks) != MM_OK ||
        vmm_region_freelist_check(&vmm->mmio) != MM_OK)
        return MM_ERR_CORRUPT;
    if (vmm->stack_slot != vmm->stack_size + VMM_STACK_GUARD_SIZE)
        return MM_ERR_CORRUPT;
    if (!mm_is_aligned(s->heap_bytes, MM_PAGE_SIZE) ||
        s->heap_bytes > vmm_region_freelist_allocated(&vmm->heap) ||
        !mm_is_aligned(s->heap_released, MM_PAGE_SIZE))
        return MM_ERR_CORRUPT;
    /* Stack ranges are whole slots on the slot grid (vmm_classify_fault
     * depends on it). */
    uint64_t stack_alloc = vmm_region_freelist_allocated(&vmm->stacks);
    if (vmm->stacks.watermark % vmm->stack_slot != 0 ||
        s->stacks > stack_alloc / vmm->stack_slot)
        return MM_ERR_CORRUPT;
    for (size_t i = 0; i < vmm->stacks.count; i++) {
        const vmm_range_t *h = &vmm->stacks.ranges[i];
        if ((h->base - vmm->stacks.base) % vmm->stack_slot != 0 || h->size % vmm->stack_slot != 0)
            return MM_ERR_CORRUPT;
    }
    if (s->mmio_pages < s->mmio_mappings ||
        s->mmio_pages > vmm_region_freelist_allocated(&vmm->mmio) / MM_PAGE_SIZE)
        return MM_ERR_CORRUPT;
    if (s->data_frames < s->heap_bytes / MM_PAGE_SIZE ||
        s->data_frames > s->heap_bytes / MM_PAGE_SIZE + s->stacks * (vmm->stack_size / MM_PAGE_SIZE))
        return MM_ERR_CORRUPT;
    /* Every live stack and MMIO mapping has exactly one record, and the
     * record's range is allocated in its region. */
    if (!vmm_records_consistent_locked(vmm))
        return MM_ERR_CORRUPT;
    return MM_OK;
}

mm_status_t vmm_check(vmm_t *vmm)
{
    if (vmm == NULL)
        return MM_ERR_INVALID;
    if (!vmm_ready(vmm))
        return MM_ERR_STATE;
    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    mm_status_t st = check_locked(vmm);
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    return st;
}

static const char *const fault_names[VMM_FAULT_KIND_COUNT] = {
    [VMM_FAULT_NONE] = "none",         [VMM_FAULT_USER] = "user",
    [VMM_FAULT_HHDM] = "hhdm",         [VMM_FAULT_HEAP] = "heap",
    [VMM_FAULT_STACK] = "stack",       [VMM_FAULT_STACK_GUARD] = "stack-guard",
    [VMM_FAULT_MMIO] = "mmio",         [VMM_FAULT_KERNEL_IMAGE] = "kernel-image",
};

const char *vmm_fault_kind_str(vmm_fault_kind_t kind)
{
    if ((unsigned)kind >= VMM_FAULT_KIND_COUNT)
        return "unknown";
    return fault_names[kind];
}

static vmm_fault_kind_t classify(const vmm_t *vmm, mm_vaddr_t va, vmm_fault_info_t *info)
{
    const layout_t *l = &vmm->layout;
    if (mm_va_space_is_user(&l->space, va))
        return VMM_FAULT_USER;
    if (!mm_va_space_is_kernel(&l->space, va))
        return VMM_FAULT_NONE;
    switch (layout_find(l, va)) {
    case LAYOUT_HHDM:
        return VMM_FAULT_HHDM;
    case LAYOUT_HEAP:
        return VMM_FAULT_HEAP;
    case LAYOUT_MMIO:
        return VMM_FAULT_MMIO;
    case LAYOUT_KERNEL_IMAGE:
        return VMM_FAULT_KERNEL_IMAGE;
    case LAYOUT_STACKS:
        break;
    default:
        return VMM_FAULT_NONE;
    }
    const layout_region_t *r = &l->regions[LAYOUT_STACKS];
    uint64_t off = va - r->base;
    uint64_t slot_off = off - off % vmm->stack_slot;
    /* The tail of the region too short for a whole slot is never used. */
    if (vmm->stack_slot > r->size - slot_off)
        return VMM_FAULT_NONE;
    info->stack_bottom = r->base + slot_off + VMM_STACK_GUARD_SIZE;
    info->stack_top = r->base + slot_off + vmm->stack_slot;
    return off - slot_off < VMM_STACK_GUARD_SIZE ? VMM_FAULT_STACK_GUARD : VMM_FAULT_STACK;
}

vmm_fault_kind_t vmm_classify_fault(const vmm_t *vmm, mm_vaddr_t va, vmm_fault_info_t *info)
{
    vmm_fault_info_t local = {VMM_FAULT_NONE, 0, 0};
    if (vmm_ready(vmm))
        local.kind = classify(vmm, va, &local);
    if (local.kind != VMM_FAULT_STACK && local.kind != VMM_FAULT_STACK_GUARD)
        local.stack_bottom = local.stack_top = 0;
    if (info != NULL)
        *info = local;
    return local.kind;
}

mm_status_t vmm_switch_to_kernel(vmm_t *vmm)
{
    if (vmm == NULL)
        return MM_ERR_INVALID;
    if (!vmm_ready(vmm))
        return MM_ERR_STATE;
    /* A kernel half with its own root is always current (TTBR1): what is
     * switched is the user half, to none. */
    mm_paddr_t root = vmm->layout.space.kernel_root_separate ? 0 : vmm->kernel_root;
    mm_hook_switch_root(root, MM_ASID_KERNEL);
    return MM_OK;
}
