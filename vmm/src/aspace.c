/*
 * User address spaces: a root per process whose kernel half shares the
 * kernel root's top-level entries (pre-created by vmm_init, so later kernel
 * mappings appear in every space) and whose user half belongs to it alone.
 * The per-space lock serialises edits of that user half; the kernel half is
 * never edited through an address space. The lock, the root that is
 * obeyed and the leaf callback live in the space's record in the VMM, not
 * in the caller's vmm_as_t, so every copy of a handle takes the same lock
 * and a stale or forged copy is refused under it (handle.c).
 *
 * Identities: record i's space is tagged 1 + i when the CPU has that many
 * identities, else it runs untagged (MM_ASID_KERNEL). A record, and with it
 * the identity, is reused only after vmm_as_release retired the identity,
 * so a switch may keep the entries tagged with it (hooks.h).
 */
#include <hadron/mm/hooks.h>

#include "vmm_internal.h"

static void set_released(vmm_as_t *as)
{
    *as = (vmm_as_t)VMM_AS_INIT;
}

static void warn_stale(const vmm_as_t *as)
{
    vmm_warn_stale("vmm: stale or forged address-space handle", as->root, false);
}

/* The handle's shape, before its arguments are checked: MM_ERR_STATE for a
 * released struct, MM_ERR_STALE (warned) for one whose vmm is no live VMM
 * or whose record index is out of range. No lock. */
static mm_status_t check_handle(const vmm_as_t *as)
{
    if (as->vmm == NULL)
        return MM_ERR_STATE;
    if (!vmm_ready(as->vmm) || as->rec >= as->vmm->space_count) {
        warn_stale(as);
        return MM_ERR_STALE;
    }
    return MM_OK;
}

/* Takes the space's lock and checks the handle against its record: on
 * MM_OK the lock is held and *rec is the record; MM_ERR_STALE (warned)
 * otherwise, lock not held. check_handle must have passed. */
static mm_status_t enter(const vmm_as_t *as, vmm_space_rec_t **rec, mm_irqflags_t *irq)
{
    vmm_space_rec_t *r = &as->vmm->spaces[as->rec];
    *irq = mm_spin_lock_irqsave(&r->lock);
    if (r->serial == 0 || r->serial != as->serial || r->root != as->root ||
        r->asid != as->asid) {
        /* The record of a released space keeps its last root: a copy of
         * that space is a use after release, anything else a forgery. */
        bool released = r->serial == 0 && as->root != 0 && r->root == as->root;
        mm_spin_unlock_irqrestore(&r->lock, *irq);
        if (released)
            vmm_warn_stale("vmm: address space used or released after its release (stale copy)",
                           as->root, true);
        else
            warn_stale(as);
        return MM_ERR_STALE;
    }
    *rec = r;
    return MM_OK;
}

/* [va, va + bytes) must lie in the user range of the mapper's address
 * space: a kernel address is MM_ERR_RANGE, an address of neither range (the
 * x86 non-canonical hole, the AArch64 gap between TTBR0 and TTBR1) is
 * MM_ERR_NOT_CANONICAL, a range running out of the user range MM_ERR_RANGE. */
static mm_status_t check_user_range(const vmm_t *vmm, mm_vaddr_t va, uint64_t bytes)
{
    const mm_va_space_t *space = &vmm->layout.space;
    if (mm_va_space_is_kernel(space, va))
        return MM_ERR_RANGE;
    if (!mm_va_space_is_user(space, va))
        return MM_ERR_NOT_CANONICAL;
    if (bytes > space->user_hi - va)
        return MM_ERR_RANGE;
    return MM_OK;
}

static bool page_size_valid(mm_page_size_t size)
{
    return size == MM_PAGE_4K || size == MM_PAGE_2M || size == MM_PAGE_1G;
}

static mm_status_t check_flags(mm_map_flags_t flags)
{
    /* A global user page would stay in the TLB across a switch to another
     * address space, which would then see this one's page. */
    if ((flags & ~(mm_map_flags_t)MM_MAP_FLAGS_ALL) != 0 || (flags & MM_MAP_GLOBAL) != 0)
        return MM_ERR_INVALID;
    return MM_OK;
}

/* The checks every single-page operation shares, in the documented order. */
static mm_status_t check_page(const vmm_as_t *as, mm_page_size_t size)
{
    mm_status_t st = check_handle(as);
    if (st != MM_OK)
        return st;
    if (!page_size_valid(size))
        return MM_ERR_INVALID;
    return MM_OK;
}

static mm_status_t check_page_va(const vmm_as_t *as, mm_vaddr_t va, mm_page_size_t size)
{
    mm_status_t st = check_user_range(as->vmm, va, mm_page_bytes(size));
    if (st != MM_OK)
        return st;
    if (!mm_is_aligned(va, mm_page_bytes(size)))
        return MM_ERR_ALIGN;
    return MM_OK;
}

void vmm_as_leaf_free_frames(void *vmm, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                             mm_map_flags_t flags)
{
    (void)va;
    (void)flags;
    const vmm_t *v = vmm;
    mm_status_t st = v->frames.free(v->frames.ctx, pa, (size_t)(mm_page_bytes(size) / MM_FRAME_SIZE));
    /* The callback's contract is that these frames came from this
     * allocator; a refusal is corruption. */
    MM_ASSERT(st == MM_OK);
    (void)st;
}

mm_status_t vmm_as_create(vmm_t *vmm, mm_leaf_fn leaf_fn, void *leaf_arg, vmm_as_t *out)
{
    if (out == NULL)
        return MM_ERR_INVALID;
    set_released(out);
    if (vmm == NULL)
        return MM_ERR_INVALID;
    if (!vmm_ready(vmm))
        return MM_ERR_STATE;

    mm_paddr_t root;
    /* The mapper reads the kernel root's top level: serialise with kernel
     * page-table edits. */
    mm_irqflags_t irq = mm_spin_lock_irqsave(&vmm->lock);
    uint32_t index = vmm_space_rec_take_locked(vmm);
    if (index == VMM_REC_NONE) {
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        return MM_ERR_FULL;
    }
    /* A separate kernel root (AArch64 TTBR1) is never part of a user root. */
    mm_paddr_t share = vmm->layout.space.kernel_root_separate ? 0 : vmm->kernel_root;
    mm_status_t st = vmm->mapper.ops->root_create(vmm->mapper.ctx, share, &root);
    if (st != MM_OK) {
        vmm_space_rec_put_locked(vmm, index);
        mm_spin_unlock_irqrestore(&vmm->lock, irq);
        return st;
    }
    uint64_t serial = vmm_serial_next_locked(vmm);
    mm_asid_t asid = (uint64_t)index + 1 < vmm->asids ? (mm_asid_t)index + 1 : MM_ASID_KERNEL;
    mm_spin_unlock_irqrestore(&vmm->lock, irq);

    /* Published under the space's own lock (never nested in the VMM
     * lock), which is what every user of the record takes. */
    vmm_space_rec_t *r = &vmm->spaces[index];
    irq = mm_spin_lock_irqsave(&r->lock);
    r->root = root;
    r->leaf_fn = leaf_fn;
    r->leaf_arg = leaf_arg;
    r->asid = asid;
    /* The record's last identity was retired at its release (or this is
     * the first use of it): no CPU holds an entry of the new space. */
    mm_cpuset_clear(&r->cpus);
    r->serial = serial;
    mm_spin_unlock_irqrestore(&r->lock, irq);

    out->root = root;
    out->asid = asid;
    out->vmm = vmm;
    out->serial = serial;
    out->rec = index;
    return MM_OK;
}

mm_status_t vmm_as_map(vmm_as_t *as, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                       mm_map_flags_t flags)
{
    if (as == NULL)
        return MM_ERR_INVALID;
    mm_status_t st = check_page(as, size);
    if (st == MM_OK)
        st = check_flags(flags);
    if (st == MM_OK)
        st = check_page_va(as, va, size);
    if (st != MM_OK)
        return st;
    if (!mm_is_aligned(pa, mm_page_bytes(size)))
        return MM_ERR_ALIGN;

    vmm_t *vmm = as->vmm;
    vmm_space_rec_t *r;
    mm_irqflags_t irq;
    if ((st = enter(as, &r, &irq)) != MM_OK)
        return st;
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT_SPACE(r->asid, &r->cpus);
    st = mm_pm_map(&vmm->mapper, r->root, va, pa, size, flags | MM_MAP_USER, &tlb);
    mm_spin_unlock_irqrestore(&r->lock, irq);
    mm_tlb_batch_flush(&tlb);
    return st;
}

mm_status_t vmm_as_map_anon(vmm_as_t *as, mm_vaddr_t va, size_t pages, mm_map_flags_t flags)
{
    if (as == NULL || pages == 0)
        return MM_ERR_INVALID;
    mm_status_t st = check_handle(as);
    if (st != MM_OK)
        return st;
    if ((st = check_flags(flags)) != MM_OK)
        return st;
    vmm_t *vmm = as->vmm;
    if (pages > vmm->layout.space.user_hi / MM_PAGE_SIZE)
        return MM_ERR_RANGE;
    if ((st = check_user_range(vmm, va, (uint64_t)pages * MM_PAGE_SIZE)) != MM_OK)
        return st;
    if (!mm_is_aligned(va, MM_PAGE_SIZE))
        return MM_ERR_ALIGN;

    vmm_chain_t chain;
    if ((st = vmm_chain_alloc(&vmm->frames, pages, &chain)) != MM_OK)
        return st;
    vmm_space_rec_t *r;
    mm_irqflags_t irq;
    if ((st = enter(as, &r, &irq)) != MM_OK) {
        vmm_chain_free(&vmm->frames, &chain);
        return st;
    }
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT_SPACE(r->asid, &r->cpus);
    size_t done;
    st = vmm_map_pages(&vmm->mapper, r->root, va, pages, &chain, 0, flags | MM_MAP_USER, &tlb,
                       &done);
    if (st != MM_OK)
        vmm_unmap_pages(&vmm->mapper, r->root, va, done, &chain, &tlb);
    mm_spin_unlock_irqrestore(&r->lock, irq);
    mm_tlb_batch_flush(&tlb);
    /* Empty on success; on failure every frame, mapped or not, is back on
     * the chain and unreachable after the flush. */
    vmm_chain_free(&vmm->frames, &chain);
    return st;
}

mm_status_t vmm_as_unmap(vmm_as_t *as, mm_vaddr_t va, mm_page_size_t size, mm_paddr_t *pa_out)
{
    if (as == NULL)
        return MM_ERR_INVALID;
    mm_status_t st = check_page(as, size);
    if (st == MM_OK)
        st = check_page_va(as, va, size);
    if (st != MM_OK)
        return st;

    vmm_t *vmm = as->vmm;
    vmm_space_rec_t *r;
    mm_irqflags_t irq;
    if ((st = enter(as, &r, &irq)) != MM_OK)
        return st;
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT_SPACE(r->asid, &r->cpus);
    mm_paddr_t pa = 0;
    st = mm_pm_unmap(&vmm->mapper, r->root, va, size, &pa, &tlb);
    mm_spin_unlock_irqrestore(&r->lock, irq);
    /* Before returning the frame: the caller may free it at once. */
    mm_tlb_batch_flush(&tlb);
    if (st == MM_OK && pa_out != NULL)
        *pa_out = pa;
    return st;
}

mm_status_t vmm_as_protect(vmm_as_t *as, mm_vaddr_t va, mm_page_size_t size,
                           mm_map_flags_t flags)
{
    if (as == NULL)
        return MM_ERR_INVALID;
    mm_status_t st = check_page(as, size);
    if (st == MM_OK)
        st = check_flags(flags);
    if (st == MM_OK)
        st = check_page_va(as, va, size);
    if (st != MM_OK)
        return st;

    vmm_t *vmm = as->vmm;
    vmm_space_rec_t *r;
    mm_irqflags_t irq;
    if ((st = enter(as, &r, &irq)) != MM_OK)
        return st;
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT_SPACE(r->asid, &r->cpus);
    st = mm_pm_protect(&vmm->mapper, r->root, va, size, flags | MM_MAP_USER, &tlb);
    mm_spin_unlock_irqrestore(&r->lock, irq);
    mm_tlb_batch_flush(&tlb);
    return st;
}

mm_status_t vmm_as_translate(vmm_as_t *as, mm_vaddr_t va, mm_translation_t *out)
{
    if (as == NULL || out == NULL)
        return MM_ERR_INVALID;
    mm_status_t st = check_handle(as);
    if (st != MM_OK)
        return st;
    if ((st = check_user_range(as->vmm, va, 1)) != MM_OK)
        return st;
    vmm_space_rec_t *r;
    mm_irqflags_t irq;
    if ((st = enter(as, &r, &irq)) != MM_OK)
        return st;
    st = mm_pm_translate(&as->vmm->mapper, r->root, va, out);
    mm_spin_unlock_irqrestore(&r->lock, irq);
    return st;
}

mm_status_t vmm_as_switch(vmm_as_t *as)
{
    if (as == NULL)
        return MM_ERR_INVALID;
    mm_status_t st = check_handle(as);
    if (st != MM_OK)
        return st;
    vmm_space_rec_t *r;
    mm_irqflags_t irq;
    /* One CPU from the set's update to the root switch. */
    mm_irqflags_t pin = mm_hook_irq_save();
    if ((st = enter(as, &r, &irq)) != MM_OK) {
        mm_hook_irq_restore(pin);
        return st;
    }
    mm_paddr_t root = r->root;
    mm_asid_t asid = r->asid;
    /* Under the lock, so the CPU joins this live space's set and not a
     * later space's on a reused record; before the root switch, so every
     * flush that misses it was ordered before this CPU's first walk. */
    mm_cpuset_add(&r->cpus, mm_hook_cpu_index());
    mm_spin_unlock_irqrestore(&r->lock, irq);
    /* Outside the lock, as the hook's contract says. Switching to a space
     * while another CPU releases it is the caller's race (vmm.h). */
    mm_hook_switch_root(root, asid);
    mm_hook_irq_restore(pin);
    return MM_OK;
}

mm_status_t vmm_as_release(vmm_as_t *as)
{
    if (as == NULL || as->vmm == NULL)
        return MM_OK;
    mm_status_t st = check_handle(as);
    if (st != MM_OK)
        return st;
    vmm_t *vmm = as->vmm;
    vmm_space_rec_t *r;
    mm_irqflags_t irq;
    if ((st = enter(as, &r, &irq)) != MM_OK)
        return st;
    /* Dead from here: every other call on any copy of the handle is
     * refused under this lock, so what follows owns the root alone and
     * needs no lock (the retire hook may wait for other CPUs). The root
     * stays in the record for the report on a later stale use. */
    mm_paddr_t root = r->root;
    mm_asid_t asid = r->asid;
    mm_leaf_fn leaf_fn = r->leaf_fn;
    void *leaf_arg = r->leaf_arg;
    r->serial = 0;
    r->leaf_fn = NULL;
    r->leaf_arg = NULL;
    mm_spin_unlock_irqrestore(&r->lock, irq);
    /* The space's entries outlived the switch away from it (they carry its
     * identity): they go before its tables are freed and before the record
     * and identity can be taken again. An untagged space's entries are
     * dropped by the next switch to identity 0 (hooks.h). */
    if (asid != MM_ASID_KERNEL)
        mm_hook_asid_retire(asid);
    vmm->mapper.ops->root_destroy(vmm->mapper.ctx, root, leaf_fn, leaf_arg);
    /* Reusable only now; never nested in the space's lock. */
    irq = mm_spin_lock_irqsave(&vmm->lock);
    vmm_space_rec_put_locked(vmm, as->rec);
    mm_spin_unlock_irqrestore(&vmm->lock, irq);
    set_released(as);
    return MM_OK;
}
