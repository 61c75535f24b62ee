/* Handle identity: a stale copy (its object released, its slot perhaps
 * reused) or a forged handle is refused with MM_ERR_STALE, warned like a
 * double free, and changes nothing; the object that now owns the slot
 * keeps working. Stacks, MMIO mappings and address spaces, each against
 * both mappers. */
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "vmm_fixture.h"


/* A call refused as stale: MM_ERR_STALE, one warning of `kind`, no lock
 * left held, the whole VMM snapshot unchanged and no root switch. */
#define STALE(fx, want_kind, call)                                                                      \
    do {                                                                                           \
        fx_snapshot_t snap_;                                                                       \
        fx_snapshot((fx), &snap_);                                                                 \
        int warn0_ = test_warnings.count, switches0_ = test_tlb.switches;                          \
        mm_status_t st_ = (call);                                                                  \
        cr_assert_eq(st_, MM_ERR_STALE, "%s: got %s", #call, mm_status_str(st_));                  \
        cr_assert_eq(test_warnings.count, warn0_ + 1, "%s: warned once", #call);                   \
        cr_assert_eq(test_warnings.last.kind, (want_kind), "%s: report kind %s", #call,                 \
                     mm_report_kind_str(test_warnings.last.kind));                                 \
        cr_assert_eq(test_panics.count, 0);                                                        \
        cr_assert_eq(test_tlb.switches, switches0_, "%s: no root switch", #call);                  \
        fx_assert_unchanged((fx), &snap_);                                                         \
        fx_assert_sane(fx);                                                                        \
    } while (0)

#define BADPTR MM_REPORT_BAD_POINTER
#define TWICE MM_REPORT_DOUBLE_FREE

static const layout_region_t *region(fx_t *fx, layout_region_id_t id)
{
    return &fx->layout.regions[id];
}

/* Writes a pattern over every word of the stack, or checks it is there. */
static void stamp(const vmm_stack_t *s, uint64_t tag, bool check)
{
    for (mm_vaddr_t va = s->bottom; va < s->top; va += P) {
        mm_translation_t t;
        OK(mm_pm_translate(&s->vmm->mapper, s->vmm->kernel_root, va, &t));
        uint64_t *w = hhdm_phys_to_virt(t.page_pa);
        for (unsigned i = 0; i < P / 8; i += 64) {
            if (check)
                cr_assert_eq(w[i], tag ^ va ^ i, "stack page %#llx word %u lost",
                             (unsigned long long)va, i);
            else
                w[i] = tag ^ va ^ i;
        }
    }
}

/* ---- stacks --------------------------------------------------------------- */

FX_TEST(stale_stack_copy_after_reuse_is_refused_and_the_live_stack_kept)
{
    uint64_t free0 = fx_free_frames(fx);
    vmm_stack_t old, live;
    OK(vmm_stack_create(&fx->vmm, &old));
    vmm_stack_t copy = old;
    OK(vmm_stack_release(&old));
    OK(vmm_stack_create(&fx->vmm, &live));
    cr_assert_eq(live.bottom, copy.bottom, "the new stack took the old slot");
    cr_assert_eq(live.rec, copy.rec, "and the old record");
    stamp(&live, 0x5157ac4, false);

    STALE(fx, BADPTR, vmm_stack_release(&copy));
    STALE(fx, BADPTR, vmm_stack_release(&copy)); /* refused every time */
    stamp(&live, 0x5157ac4, true);
    cr_assert_eq(copy.vmm, &fx->vmm, "a refused handle is left as it was");

    OK(vmm_stack_release(&live));
    cr_assert_eq(fx_free_frames(fx), free0);
    fx_assert_sane(fx);
}

FX_TEST(stale_stack_copy_without_reuse_is_refused)
{
    vmm_stack_t s;
    OK(vmm_stack_create(&fx->vmm, &s));
    vmm_stack_t copy = s;
    OK(vmm_stack_release(&s));
    STALE(fx, TWICE, vmm_stack_release(&copy));
    /* The struct that was released is marked so: a second release of it is
     * the documented no-op, not a warning. */
    int warn0 = test_warnings.count;
    OK(vmm_stack_release(&s));
    cr_assert_eq(test_warnings.count, warn0);
    /* A later stack in another slot does not revive the copy either. */
    vmm_stack_t a, b;
    OK(vmm_stack_create(&fx->vmm, &a));
    OK(vmm_stack_create(&fx->vmm, &b));
    STALE(fx, BADPTR, vmm_stack_release(&copy));
    OK(vmm_stack_release(&a));
    OK(vmm_stack_release(&b));
}

FX_TEST(forged_stack_fields_are_refused_one_at_a_time)
{
    vmm_stack_t s, other;
    vmm_mmio_t m;
    OK(vmm_stack_create(&fx->vmm, &other));
    OK(vmm_stack_create(&fx->vmm, &s));
    OK(vmm_mmio_map(&fx->vmm, 0xfee00000, 16, VMM_MMIO_DEVICE, &m));
    static vmm_t copy, zeroed, second;
    copy = fx->vmm;
    OK(vmm_init(&second, &fx->cfg));
    const layout_region_t *r = region(fx, LAYOUT_STACKS);
    uint64_t slot = fx->vmm.stack_slot;
    stamp(&s, 77, false);

#define FORGED(kind, ...)                                                                          \
    do {                                                                                           \
        vmm_stack_t f_ = s;                                                                        \
        __VA_ARGS__;                                                                               \
        STALE(fx, kind, vmm_stack_release(&f_));                                                   \
    } while (0)
    FORGED(BADPTR, f_.bottom += P);
    FORGED(BADPTR, f_.bottom -= P);
    FORGED(BADPTR, f_.bottom += slot; f_.top += slot);        /* the next, unused slot */
    FORGED(BADPTR, f_.bottom = other.bottom; f_.top = other.top); /* a live neighbour */
    FORGED(BADPTR, f_.bottom = r->base - slot; f_.top = r->base - P); /* below the region */
    FORGED(BADPTR, f_.bottom = r->base + r->size + P);              /* above it */
    FORGED(BADPTR, f_.bottom += 8);                                 /* off the page */
    FORGED(BADPTR, f_.top -= P);
    FORGED(BADPTR, f_.size = 2 * s.size);
    FORGED(BADPTR, f_.serial ^= 2);
    FORGED(BADPTR, f_.serial = 0);
    FORGED(BADPTR, f_.serial = other.serial);
    FORGED(BADPTR, f_.rec = other.rec);
    FORGED(BADPTR, f_.rec = m.rec);          /* an MMIO record */
    FORGED(BADPTR, f_.rec = 200);            /* never used */
    FORGED(BADPTR, f_.rec = 100000);         /* beyond the table */
    FORGED(BADPTR, f_.rec = UINT32_MAX);
    FORGED(BADPTR, f_.vmm = &copy);          /* a struct copy of the VMM */
    FORGED(BADPTR, f_.vmm = &zeroed);        /* never initialised */
    FORGED(BADPTR, f_.vmm = &second);        /* another VMM with no stacks */
    FORGED(BADPTR, f_ = other; f_.rec = s.rec; f_.serial = s.serial); /* only the address */
#undef FORGED
    stamp(&s, 77, true);
    cr_assert_eq(vmm_check(&copy), MM_ERR_STATE);
    OK(vmm_stack_release(&s));
    OK(vmm_stack_release(&other));
    OK(vmm_mmio_release(&m));
    fx_assert_sane(fx);
}

/* A release of a copy while the first release has dropped the lock to
 * flush and free the frames (simulated from the frame allocator's free,
 * which runs unlocked): refused, and the first release completes. */
static fx_t *race_fx;
static vmm_stack_t race_copy;
static bool race_armed;
static mm_status_t race_status;
static mm_status_t racing_free(void *ctx, mm_paddr_t base, size_t count)
{
    (void)ctx;
    if (race_armed && test_irq_depth() == 0) {
        race_armed = false;
        race_status = vmm_stack_release(&race_copy);
    }
    return race_fx->fail.inner.free(race_fx->fail.inner.ctx, base, count);
}

FX_FAKE_ONLY(concurrent_release_of_a_copy_is_refused)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, true);
    fx.cfg.frames.free = racing_free;
    race_fx = &fx;
    OK(vmm_init(&fx.vmm, &fx.cfg));
    uint64_t free0 = fx_free_frames(&fx);
    vmm_stack_t s;
    OK(vmm_stack_create(&fx.vmm, &s));
    race_copy = s;
    race_armed = true;
    OK(vmm_stack_release(&s));
    cr_assert_not(race_armed, "the race ran");
    cr_assert_eq(race_status, MM_ERR_STALE);
    cr_assert_eq(test_warnings.count, 1);
    cr_assert_eq(fx_free_frames(&fx), free0);
    fx_assert_sane(&fx);
}

/* ---- MMIO ----------------------------------------------------------------- */

FX_TEST(stale_mmio_copy_after_reuse_is_refused_and_the_live_mapping_kept)
{
    vmm_mmio_t old, live;
    OK(vmm_mmio_map(&fx->vmm, 0xfee00020, 0x20, VMM_MMIO_DEVICE, &old));
    vmm_mmio_t copy = old;
    OK(vmm_mmio_release(&old));
    OK(vmm_mmio_map(&fx->vmm, 0xfec00000, 0x20, VMM_MMIO_DEVICE, &live));
    cr_assert_eq(mm_align_down((uintptr_t)live.ptr, P), mm_align_down((uintptr_t)copy.ptr, P),
                 "the new mapping took the old range");
    STALE(fx, BADPTR, vmm_mmio_release(&copy));
    /* Even a copy that also names the new mapping's device is refused. */
    copy.phys = live.phys;
    copy.ptr = live.ptr;
    STALE(fx, BADPTR, vmm_mmio_release(&copy));
    mm_translation_t t;
    OK(fx_translate(fx, fx->kroot, (uintptr_t)live.ptr, &t));
    cr_assert_eq(t.pa, 0xfec00000, "the live mapping still maps its device");
    OK(vmm_mmio_release(&live));
    fx_assert_sane(fx);
}

FX_TEST(stale_mmio_copy_without_reuse_is_refused)
{
    vmm_mmio_t m;
    OK(vmm_mmio_map(&fx->vmm, 0xfee00000, 3 * P, VMM_MMIO_WRITE_COMBINING, &m));
    vmm_mmio_t copy = m;
    OK(vmm_mmio_release(&m));
    STALE(fx, TWICE, vmm_mmio_release(&copy));
    int warn0 = test_warnings.count;
    OK(vmm_mmio_release(&m));
    cr_assert_eq(test_warnings.count, warn0, "the released struct itself: a no-op");
}

FX_TEST(forged_mmio_fields_are_refused_one_at_a_time)
{
    vmm_mmio_t m, other;
    vmm_stack_t s;
    OK(vmm_mmio_map(&fx->vmm, 0xfee00000, P, VMM_MMIO_DEVICE, &other));
    OK(vmm_mmio_map(&fx->vmm, 0xc0000010, 2 * P, VMM_MMIO_DEVICE, &m));
    OK(vmm_stack_create(&fx->vmm, &s));
    static vmm_t copy, zeroed;
    copy = fx->vmm;

#define FORGED(...)                                                                                \
    do {                                                                                           \
        vmm_mmio_t f_ = m;                                                                         \
        __VA_ARGS__;                                                                               \
        STALE(fx, BADPTR, vmm_mmio_release(&f_));                                                  \
    } while (0)
    FORGED(f_.ptr = (volatile char *)m.ptr + 1);
    FORGED(f_.ptr = (volatile char *)m.ptr + P);
    FORGED(f_.ptr = other.ptr);
    FORGED(f_.phys += P); /* same offset, same page count */
    FORGED(f_.phys += 1);
    FORGED(f_.size += 1); /* same page count */
    FORGED(f_.size += 4 * P);
    FORGED(f_.pages += 1);
    FORGED(f_.pages = 1ull << 40);
    FORGED(f_.serial ^= 2);
    FORGED(f_.rec = other.rec);
    FORGED(f_.rec = s.rec); /* a stack's record */
    FORGED(f_.rec = 100000);
    FORGED(f_.vmm = &copy);
    FORGED(f_.vmm = &zeroed);
#undef FORGED
    OK(vmm_mmio_release(&m));
    OK(vmm_mmio_release(&other));
    OK(vmm_stack_release(&s));
    fx_assert_sane(fx);
}

/* ---- address spaces ----------------------------------------------------- */

/* Every call on a stale or forged address space: refused, warned, nothing
 * changed, and the live space `keep` (if any) keeps its digest. */
static void assert_as_refused(fx_t *fx, vmm_as_t *h, mm_report_kind_t kind, const vmm_as_t *keep)
{
    uint64_t dig = keep != NULL ? fx_digest(fx, keep->root) : 0;
    mm_translation_t t;
    mm_paddr_t pa = 0x1234000;
    STALE(fx, kind, vmm_as_map(h, 0x600000, 0x200000, MM_PAGE_4K, MM_MAP_WRITE));
    STALE(fx, kind, vmm_as_map_anon(h, 0x600000, 2, MM_MAP_WRITE));
    STALE(fx, kind, vmm_as_unmap(h, 0x400000, MM_PAGE_4K, &pa));
    cr_assert_eq(pa, 0x1234000, "out untouched");
    STALE(fx, kind, vmm_as_protect(h, 0x400000, MM_PAGE_4K, MM_MAP_EXEC));
    STALE(fx, kind, vmm_as_translate(h, 0x400000, &t));
    STALE(fx, kind, vmm_as_switch(h));
    STALE(fx, kind, vmm_as_release(h));
    cr_assert_neq(h->vmm, NULL, "a refused release leaves the handle as it was");
    if (keep != NULL)
        cr_assert_eq(fx_digest(fx, keep->root), dig, "the live space changed");
}

FX_TEST(stale_address_space_copy_after_reuse_is_refused_and_the_live_space_kept)
{
    uint64_t free0 = fx_free_frames(fx);
    vmm_as_t old, live;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &old));
    OK(vmm_as_map_anon(&old, 0x400000, 1, MM_MAP_WRITE));
    vmm_as_t copy = old;
    OK(vmm_as_release(&old));
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &live));
    OK(vmm_as_map_anon(&live, 0x400000, 3, MM_MAP_WRITE));
    cr_assert_eq(live.rec, copy.rec, "the new space took the old record");
    assert_as_refused(fx, &copy, BADPTR, &live);
    /* Even with the live space's root: the serial is the old one. */
    copy.root = live.root;
    assert_as_refused(fx, &copy, BADPTR, &live);
    mm_translation_t t;
    OK(vmm_as_translate(&live, 0x402000, &t));
    OK(vmm_as_release(&live));
    cr_assert_eq(fx_free_frames(fx), free0, "root, tables and frames back exactly once");
    fx_assert_sane(fx);
}

FX_TEST(stale_address_space_copy_without_reuse_is_refused)
{
    vmm_as_t as;
    OK(vmm_as_create(&fx->vmm, NULL, NULL, &as));
    vmm_as_t copy = as;
    OK(vmm_as_release(&as));
    assert_as_refused(fx, &copy, TWICE, NULL);
    int warn0 = test_warnings.count;
    OK(vmm_as_release(&as));
    cr_assert_eq(test_warnings.count, warn0, "the released struct itself: a no-op");
    cr_assert_eq(vmm_as_switch(&as), MM_ERR_STATE);
}

FX_TEST(forged_address_space_fields_are_refused_one_at_a_time)
{
    vmm_as_t as, other;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &other));
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &as));
    OK(vmm_as_map_anon(&as, 0x400000, 1, MM_MAP_WRITE));
    static vmm_t copy, zeroed;
    copy = fx->vmm;

#define FORGED(...)                                                                                \
    do {                                                                                           \
        vmm_as_t f_ = as;                                                                          \
        __VA_ARGS__;                                                                               \
        assert_as_refused(fx, &f_, BADPTR, &as);                                                   \
    } while (0)
    FORGED(f_.root += P);
    FORGED(f_.root = fx->kroot); /* the kernel root: never freed or switched to */
    FORGED(f_.root = other.root);
    FORGED(f_.serial ^= 2);
    FORGED(f_.serial = other.serial);
    FORGED(f_.rec = other.rec);
    FORGED(f_.rec = 7);        /* never used */
    FORGED(f_.rec = 100000);   /* beyond the table */
    FORGED(f_.vmm = &copy);
    FORGED(f_.vmm = &zeroed);
#undef FORGED
    mm_translation_t t;
    OK(vmm_as_translate(&as, 0x400000, &t));
    OK(vmm_as_release(&as));
    OK(vmm_as_release(&other));
    fx_assert_sane(fx);
}

/* ---- the VMM itself ----------------------------------------------------- */

/* A struct copy of an initialised vmm_t shares the original's free-list
 * storage and a frozen copy of its records: it is refused as uninitialised,
 * and so is a zeroed one. */
FX_TEST(copied_or_zeroed_vmm_is_refused)
{
    static vmm_t copy, zeroed;
    void *held;
    size_t held_size;
    OK(vmm_heap_grow(&fx->vmm, 1, &held, &held_size)); /* a range the copy would unmap */
    copy = fx->vmm;
    fx_snapshot_t snap;
    fx_snapshot(fx, &snap);
    void *b = (void *)1;
    size_t sz = 0;
    vmm_stack_t s;
    vmm_mmio_t m;
    vmm_as_t as;
    vmm_t *bad[] = {&copy, &zeroed};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(vmm_heap_grow(bad[i], P, &b, &sz), MM_ERR_STATE);
        cr_assert_eq(vmm_heap_grow_callback(bad[i], P, &b, &sz), MM_ERR_STATE);
        cr_assert_eq(vmm_heap_init(bad[i], 0, &b, &sz), MM_ERR_STATE);
        cr_assert_eq(vmm_heap_release(bad[i], held, held_size), MM_ERR_STATE);
        cr_assert_eq(vmm_heap_release_callback(bad[i], held, held_size), MM_ERR_STATE);
        cr_assert_eq(vmm_stack_create(bad[i], &s), MM_ERR_STATE);
        cr_assert_null(s.vmm);
        cr_assert_eq(vmm_mmio_map(bad[i], 0xfee00000, 8, VMM_MMIO_DEVICE, &m), MM_ERR_STATE);
        cr_assert_eq(vmm_as_create(bad[i], NULL, NULL, &as), MM_ERR_STATE);
        cr_assert_eq(vmm_check(bad[i]), MM_ERR_STATE);
        cr_assert_eq(vmm_switch_to_kernel(bad[i]), MM_ERR_STATE);
        cr_assert_eq(vmm_classify_fault(bad[i], region(fx, LAYOUT_HEAP)->base, NULL),
                     VMM_FAULT_NONE);
        vmm_stats_t st;
        vmm_stats(bad[i], &st);
        cr_assert_eq(st.heap_bytes + st.stacks, 0);
    }
    cr_assert_eq(b, (void *)1);
    cr_assert_eq(test_tlb.switches, 0);
    fx_assert_unchanged(fx, &snap);
    fx_assert_sane(fx);
}

/* A full record table: creation fails with MM_ERR_FULL and changes nothing
 * (frames taken first are given back); a release makes room again. */
FX_FAKE_ONLY(full_record_tables_refuse_creation)
{
    static fx_t fx;
    static vmm_handle_rec_t recs[2];
    static vmm_space_rec_t spaces[1];
    fx_setup(&fx, FX_FAKE, NULL, true);
    fx.cfg.handles = recs;
    fx.cfg.handle_count = 2;
    fx.cfg.spaces = spaces;
    fx.cfg.space_count = 1;
    OK(vmm_init(&fx.vmm, &fx.cfg));
    vmm_stack_t s, s2;
    vmm_mmio_t m, m2;
    vmm_as_t a, a2;
    OK(vmm_stack_create(&fx.vmm, &s));
    OK(vmm_mmio_map(&fx.vmm, 0xfee00000, 8, VMM_MMIO_DEVICE, &m));
    OK(vmm_as_create(&fx.vmm, NULL, NULL, &a));
    fx_snapshot_t snap;
    fx_snapshot(&fx, &snap);
    cr_assert_eq(vmm_stack_create(&fx.vmm, &s2), MM_ERR_FULL);
    cr_assert_null(s2.vmm);
    cr_assert_eq(vmm_mmio_map(&fx.vmm, 0xfee01000, 8, VMM_MMIO_DEVICE, &m2), MM_ERR_FULL);
    cr_assert_null(m2.vmm);
    cr_assert_eq(vmm_as_create(&fx.vmm, NULL, NULL, &a2), MM_ERR_FULL);
    cr_assert_null(a2.vmm);
    fx_assert_unchanged(&fx, &snap);
    fx_assert_sane(&fx);
    OK(vmm_stack_release(&s));
    OK(vmm_mmio_map(&fx.vmm, 0xfee01000, 8, VMM_MMIO_DEVICE, &m2));
    OK(vmm_as_release(&a));
    OK(vmm_as_create(&fx.vmm, NULL, NULL, &a2));
    OK(vmm_mmio_release(&m));
    OK(vmm_mmio_release(&m2));
    OK(vmm_as_release(&a2));
    fx_assert_sane(&fx);
}
