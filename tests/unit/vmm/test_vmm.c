/* The kernel VMM: set-up, heap growth, stacks, MMIO and fault lookup, each
 * against the fake mapper and (when built) the real x86_64 mapper. */
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "vmm_fixture.h"

#if VMM_TEST_HAVE_KHEAP
#include <hadron/mm/kheap.h>
/* The kernel wires this straight into kheap_set_grow(heap, ..., &vmm). */
static const kheap_grow_fn heap_grow_fits_kheap = vmm_heap_grow_callback;
#endif


/* Asserts that a call fails with `want` and changes nothing observable. */
#define REJECTED(fx, want, call)                                                                   \
    do {                                                                                           \
        fx_snapshot_t snap_;                                                                       \
        fx_snapshot((fx), &snap_);                                                                 \
        mm_status_t st_ = (call);                                                                  \
        cr_assert_eq(st_, (want), "%s: got %s", #call, mm_status_str(st_));                        \
        fx_assert_unchanged((fx), &snap_);                                                         \
        fx_assert_sane(fx);                                                                        \
    } while (0)

static const layout_region_t *region(fx_t *fx, layout_region_id_t id)
{
    return &fx->layout.regions[id];
}

/* Every page of [va, va + bytes) maps with exactly `flags`; returns the
 * physical frames' contents all zero. */
static void assert_mapped(fx_t *fx, mm_vaddr_t va, uint64_t bytes, mm_map_flags_t flags,
                          bool check_zero)
{
    for (uint64_t off = 0; off < bytes; off += P) {
        mm_translation_t t;
        mm_status_t st = fx_translate(fx, fx->kroot, va + off, &t);
        cr_assert_eq(st, MM_OK, "page %#llx: %s", (unsigned long long)(va + off),
                     mm_status_str(st));
        cr_assert_eq(t.size, MM_PAGE_4K);
        cr_assert_eq(t.flags, flags, "page %#llx flags %#x, want %#x",
                     (unsigned long long)(va + off), t.flags, flags);
        if (check_zero) {
            const uint64_t *w = hhdm_phys_to_virt(t.page_pa);
            for (unsigned i = 0; i < P / 8; i++)
                cr_assert_eq(w[i], 0, "page %#llx word %u not zeroed",
                             (unsigned long long)(va + off), i);
        }
    }
}

static void assert_unmapped(fx_t *fx, mm_vaddr_t va, uint64_t bytes)
{
    for (uint64_t off = 0; off < bytes; off += P) {
        mm_translation_t t;
        cr_assert_eq(fx_translate(fx, fx->kroot, va + off, &t), MM_ERR_NOT_MAPPED,
                     "page %#llx still mapped", (unsigned long long)(va + off));
    }
}

/* Dirties every free frame so that a missing zeroing shows. */
static void dirty_all_free_frames(fx_t *fx)
{
    static mm_paddr_t frames[FX_SIM_BYTES / 4096];
    size_t n = 0;
    mm_paddr_t pa;
    while (fx->backing.alloc(fx->backing.ctx, 1, 1, MM_PADDR_MAX, &pa) == MM_OK) {
        memset(hhdm_phys_to_virt(pa), 0xa5, P);
        frames[n++] = pa;
    }
    while (n > 0)
        OK(fx->backing.free(fx->backing.ctx, frames[--n], 1));
}

#define DATA_FLAGS (MM_MAP_WRITE | MM_MAP_GLOBAL)

/* ---- set-up ------------------------------------------------------------- */

FX_TEST(init_rejects_bad_configurations)
{
    static vmm_t v;
    vmm_config_t c;
    memset(&v, 0x5a, sizeof(v));
    uint8_t pattern[sizeof(v)];
    memcpy(pattern, &v, sizeof(v));
    uint64_t free0 = fx_free_frames(fx);
    vmm_t ready = fx->vmm;

#define BAD(want, ...)                                                                             \
    do {                                                                                           \
        c = fx->cfg;                                                                               \
        layout_t l_ = fx->layout;                                                                  \
        c.layout = &l_;                                                                            \
        __VA_ARGS__;                                                                               \
        mm_status_t st_ = vmm_init(&v, &c);                                                        \
        cr_assert_eq(st_, (want), "%s: got %s", #__VA_ARGS__, mm_status_str(st_));                 \
        cr_assert_eq(memcmp(&v, pattern, sizeof(v)), 0, "vmm written on error");                   \
        cr_assert_eq(fx_free_frames(fx), free0);                                                   \
    } while (0)

    cr_assert_eq(vmm_init(NULL, &fx->cfg), MM_ERR_INVALID);
    cr_assert_eq(vmm_init(&v, NULL), MM_ERR_INVALID);
    BAD(MM_ERR_INVALID, c.layout = NULL);
    mm_page_mapper_ops_t ops = *fx->mapper.ops;
    ops.prepopulate_top = NULL;
    BAD(MM_ERR_INVALID, c.mapper.ops = &ops);
    ops = *fx->mapper.ops;
    ops.va_space = NULL;
    BAD(MM_ERR_INVALID, c.mapper.ops = &ops);
    BAD(MM_ERR_INVALID, c.mapper.ops = NULL);
    BAD(MM_ERR_INVALID, c.frames.alloc = NULL);
    BAD(MM_ERR_INVALID, c.frames.free = NULL);
    static vmm_handle_rec_t recs[1];
    static vmm_space_rec_t spaces[1];
    BAD(MM_ERR_INVALID, c.handles = recs; c.handle_count = 0);
    BAD(MM_ERR_INVALID, c.handles = recs; c.handle_count = (size_t)VMM_MAX_RECORDS + 1);
    BAD(MM_ERR_INVALID, c.spaces = spaces; c.space_count = 0);
    BAD(MM_ERR_INVALID, c.spaces = spaces; c.space_count = SIZE_MAX);
    BAD(MM_ERR_INVALID, c.kernel_root = 0);
    BAD(MM_ERR_ALIGN, c.kernel_root += 8);
    BAD(MM_ERR_INVALID, l_.regions[LAYOUT_HEAP].size = 0);
    BAD(MM_ERR_INVALID, l_.regions[LAYOUT_MMIO].base = 0x1000);
    BAD(MM_ERR_ALIGN, l_.regions[LAYOUT_STACKS].base += 8);
    BAD(MM_ERR_ALIGN, l_.regions[LAYOUT_STACKS].size -= 8);
    BAD(MM_ERR_RANGE, l_.regions[LAYOUT_MMIO].base = 0xfffffffffff00000ull;
        l_.regions[LAYOUT_MMIO].size = 2ull << 20);
    BAD(MM_ERR_OVERLAP, l_.regions[LAYOUT_STACKS].base = l_.regions[LAYOUT_HEAP].base + MM_GIB);
    BAD(MM_ERR_ALIGN, c.stack_size = 5000);
    BAD(MM_ERR_INVALID, c.stack_size = l_.regions[LAYOUT_STACKS].size);
    BAD(MM_ERR_INVALID, l_.regions[LAYOUT_STACKS].size = P; c.stack_size = P);
    /* Every layout field the VMM relies on, hand-made wrong. */
    BAD(MM_ERR_INVALID, memset(&l_, 0, sizeof l_));
    BAD(MM_ERR_INVALID, l_.space.levels = 7);
    BAD(MM_ERR_INVALID, l_.space.levels = 0);
    /* A valid descriptor that is not the mapper's: 5-level x86, and the
     * other AArch64 arrangement (separate kernel root or one root). */
    BAD(MM_ERR_INVALID, mm_va_space_sign_extended(57, 5, &l_.space));
    if (FX_KERNEL_ROOT_SEPARATE && fx->kind == FX_REAL)
        BAD(MM_ERR_INVALID, mm_va_space_sign_extended(48, 4, &l_.space));
    else
        BAD(MM_ERR_INVALID, mm_va_space_aarch64(48, &l_.space));
    BAD(MM_ERR_INVALID, l_.space.kernel_lo = 0xff00000000000000ull);
    BAD(MM_ERR_INVALID, l_.space.kernel_lo += P);
    /* The whole layout moved into the lower half, with a kernel range that
     * "starts" at 0: the heap would be mapped global in the user half. */
    BAD(MM_ERR_INVALID, l_.space.kernel_lo = 0;
        for (int i_ = 0; i_ < LAYOUT_REGION_COUNT; i_++) l_.regions[i_].base &= (1ull << 47) - 1);
    BAD(MM_ERR_INVALID, l_.regions[LAYOUT_HHDM].size = 0);
    BAD(MM_ERR_INVALID, l_.regions[LAYOUT_KERNEL_IMAGE].base = 0x200000);
    BAD(MM_ERR_ALIGN, l_.regions[LAYOUT_HHDM].size += 8);
    BAD(MM_ERR_ALIGN, l_.regions[LAYOUT_KERNEL_IMAGE].base += 8);
    BAD(MM_ERR_RANGE, l_.regions[LAYOUT_KERNEL_IMAGE].size += 2ull << 30);
    BAD(MM_ERR_OVERLAP, l_.regions[LAYOUT_HEAP].base = l_.regions[LAYOUT_HHDM].base);
    BAD(MM_ERR_OVERLAP, l_.regions[LAYOUT_HHDM].size += 2 * MM_GIB);
    BAD(MM_ERR_OVERLAP,
        l_.regions[LAYOUT_KERNEL_IMAGE].base = l_.regions[LAYOUT_MMIO].base + MM_GIB);
    BAD(MM_ERR_OVERLAP,
        l_.regions[LAYOUT_KERNEL_IMAGE].base = l_.regions[LAYOUT_STACKS].base - P;
        l_.regions[LAYOUT_KERNEL_IMAGE].size = 2 * P);
#undef BAD
    cr_assert_eq(memcmp(&ready, &fx->vmm, sizeof(ready)), 0);
}

FX_FAKE_ONLY(init_fails_cleanly_without_memory_for_top_tables)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, true);
    static vmm_t v;
    uint64_t free0 = fx_free_frames(&fx);
    fx_fail_at(&fx, 3, true); /* the span needs more than two top tables */
    cr_assert_eq(vmm_init(&v, &fx.cfg), MM_ERR_NOMEM);
    cr_assert_eq(fx_free_frames(&fx), free0, "prepopulate is all or nothing");
    cr_assert_not(v.ready);
    fx_fail_at(&fx, 0, false);
    cr_assert_eq(vmm_init(&v, &fx.cfg), MM_OK);
}

FX_FAKE_ONLY(init_prepopulates_heap_to_mmio_once)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, false);
    cr_assert_eq(fx.fake->prepopulate_calls, 1);
    cr_assert_eq(fx.fake->last_prepop_va, fx.layout.regions[LAYOUT_HEAP].base);
    const layout_region_t *m = &fx.layout.regions[LAYOUT_MMIO];
    cr_assert_eq(fx.fake->last_prepop_va + fx.fake->last_prepop_len, m->base + m->size);
}

FX_FAKE_ONLY(uninitialised_vmm_is_refused)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, true);
    static vmm_t v; /* zeroed: never initialised */
    void *b = NULL;
    size_t s = 0;
    vmm_stack_t st;
    vmm_mmio_t m;
    vmm_as_t as;
    cr_assert_eq(vmm_heap_grow(&v, P, &b, &s), MM_ERR_STATE);
    cr_assert_eq(vmm_heap_init(&v, 0, &b, &s), MM_ERR_STATE);
    cr_assert_eq(vmm_heap_release(&v, (void *)(uintptr_t)fx.layout.regions[LAYOUT_HEAP].base, P),
                 MM_ERR_STATE);
    cr_assert_eq(vmm_stack_create(&v, &st), MM_ERR_STATE);
    cr_assert_eq(vmm_mmio_map(&v, 0x1000, 8, VMM_MMIO_DEVICE, &m), MM_ERR_STATE);
    cr_assert_eq(vmm_as_create(&v, NULL, NULL, &as), MM_ERR_STATE);
    cr_assert_eq(vmm_check(&v), MM_ERR_STATE);
    cr_assert_eq(vmm_check(NULL), MM_ERR_INVALID);
    cr_assert_eq(vmm_switch_to_kernel(&v), MM_ERR_STATE);
    cr_assert_eq(vmm_classify_fault(&v, 0x1000, NULL), VMM_FAULT_NONE);
    vmm_stats_t stats;
    memset(&stats, 0xff, sizeof(stats));
    vmm_stats(&v, &stats);
    cr_assert_eq(stats.heap_bytes, 0);
    vmm_stats(&v, NULL);
    cr_assert_eq(fx.fake->map_calls, 0);
}

/* ---- heap --------------------------------------------------------------- */

FX_TEST(heap_init_maps_four_mib_zeroed_global_nx)
{
    dirty_all_free_frames(fx);
    void *base = NULL;
    size_t size = 0;
    OK(vmm_heap_init(&fx->vmm, 0, &base, &size));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)base, region(fx, LAYOUT_HEAP)->base);
    cr_assert_eq(size, 4u << 20);
    assert_mapped(fx, (mm_vaddr_t)(uintptr_t)base, size, DATA_FLAGS, true);
    assert_unmapped(fx, (mm_vaddr_t)(uintptr_t)base + size, P);
    vmm_stats_t s;
    vmm_stats(&fx->vmm, &s);
    cr_assert_eq(s.heap_bytes, 4u << 20);
    cr_assert_eq(s.data_frames, 1024);
    fx_assert_sane(fx);

    void *b2 = (void *)1;
    REJECTED(fx, MM_ERR_STATE, vmm_heap_init(&fx->vmm, 0, &b2, &size));
    cr_assert_eq(b2, (void *)1, "out untouched on error");
}

FX_TEST(heap_grows_contiguously_by_at_least_64k)
{
    void *b;
    size_t s;
    mm_vaddr_t heap = region(fx, LAYOUT_HEAP)->base;
    OK(vmm_heap_grow(&fx->vmm, 1, &b, &s));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)b, heap);
    cr_assert_eq(s, 64 * 1024, "minimum growth");
    OK(vmm_heap_grow(&fx->vmm, 0, &b, &s));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)b, heap + 64 * 1024, "continues the last growth");
    cr_assert_eq(s, 64 * 1024);
    OK(vmm_heap_grow(&fx->vmm, 65537, &b, &s));
    cr_assert_eq(s, 17 * P, "rounded up to whole pages");
    OK(vmm_heap_grow_callback(&fx->vmm, 100 * 1024, &b, &s));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)b, heap + 128 * 1024 + 17 * P);
    cr_assert_eq(s, 25 * P);
    assert_mapped(fx, heap, 128 * 1024 + 42 * P, DATA_FLAGS, true);
    vmm_stats_t st;
    vmm_stats(&fx->vmm, &st);
    cr_assert_eq(st.heap_bytes, 128 * 1024 + 42 * P);
    fx_assert_sane(fx);
}

FX_TEST(heap_grow_errors_change_nothing)
{
    void *b = (void *)1;
    size_t s = 7;
    OK(vmm_heap_grow(&fx->vmm, 1, &b, &s));
    b = (void *)1;
    s = 7;
    REJECTED(fx, MM_ERR_INVALID, vmm_heap_grow(NULL, P, &b, &s));
    REJECTED(fx, MM_ERR_INVALID, vmm_heap_grow(&fx->vmm, P, NULL, &s));
    REJECTED(fx, MM_ERR_INVALID, vmm_heap_grow(&fx->vmm, P, &b, NULL));
    REJECTED(fx, MM_ERR_EXHAUSTED, vmm_heap_grow(&fx->vmm, SIZE_MAX, &b, &s));
    REJECTED(fx, MM_ERR_EXHAUSTED,
             vmm_heap_grow(&fx->vmm, (size_t)region(fx, LAYOUT_HEAP)->size, &b, &s));
    /* More than physical memory: every frame taken is given back. */
    REJECTED(fx, MM_ERR_NOMEM, vmm_heap_grow(&fx->vmm, (size_t)FX_SIM_BYTES, &b, &s));
    cr_assert_eq(b, (void *)1);
    cr_assert_eq(s, 7);
}

static mm_status_t op_heap_grow(fx_t *fx, void *arg)
{
    void *b;
    size_t s;
    return vmm_heap_grow(&fx->vmm, *(size_t *)arg, &b, &s);
}

FX_TEST(heap_grow_is_all_or_nothing_for_every_failing_allocation)
{
    size_t bytes = 64 * 1024;
    /* First growth: 16 frames plus new tables. */
    cr_assert_geq(fx_fail_each_k(fx, op_heap_grow, &bytes, false), 17);
    /* Bring the heap to 8 pages below a 2 MiB boundary, then grow across it
     * so a new table is needed half way through the mapping. */
    void *b;
    size_t s;
    OK(vmm_heap_grow(&fx->vmm, (2u << 20) - 64 * 1024 - 8 * P, &b, &s));
    cr_assert_geq(fx_fail_each_k(fx, op_heap_grow, &bytes, false), 17);
    cr_assert_geq(fx_fail_each_k(fx, op_heap_grow, &bytes, true), 16);
    vmm_stats_t st;
    vmm_stats(&fx->vmm, &st);
    cr_assert_eq(st.heap_bytes, (2u << 20) + 2 * 64 * 1024 - 8 * P);
    cr_assert_eq(st.stranded_bytes, 0);
}

static mm_status_t op_heap_init(fx_t *fx, void *arg)
{
    void *b = NULL;
    size_t s = 0;
    (void)arg;
    mm_status_t st = vmm_heap_init(&fx->vmm, 0, &b, &s);
    cr_assert_eq(b == NULL, st != MM_OK, "out written only on success");
    return st;
}

FX_TEST(heap_init_survives_every_failing_allocation)
{
    /* The full 4 MiB: 1024 data frames plus tables, one run per k. */
    cr_assert_geq(fx_fail_each_k(fx, op_heap_init, NULL, false), 1025);
}

/* A concurrent growth in the unlocked window of a rollback (simulated from
 * the frame allocator's free callback, which runs without the VMM lock)
 * lands above the failed range, which then goes back as a hole. */
static fx_t *racing_fx;
static bool race_armed;
static mm_status_t racing_free(void *ctx, mm_paddr_t base, size_t count)
{
    (void)ctx;
    if (race_armed && test_irq_depth() == 0) {
        race_armed = false;
        void *b;
        size_t s;
        cr_assert_eq(vmm_heap_grow(&racing_fx->vmm, 1, &b, &s), MM_OK);
    }
    return racing_fx->fail.inner.free(racing_fx->fail.inner.ctx, base, count);
}

static void race_a_rollback(fx_t *fx, const fx_opts_t *o)
{
    fx_setup(fx, FX_FAKE, o, true);
    fx->cfg.frames.free = racing_free;
    racing_fx = fx;
    OK(vmm_init(&fx->vmm, &fx->cfg));
    void *b;
    size_t s;
    fx_fail_at(fx, 17, false); /* the first map's table: after the 16 data frames */
    race_armed = true;
    cr_assert_eq(vmm_heap_grow(&fx->vmm, 1, &b, &s), MM_ERR_NOMEM);
    cr_assert_not(race_armed, "the race ran");
    fx_fail_at(fx, 0, false);
    cr_assert_eq(fx->vmm.heap.watermark, 128 * 1024);
    cr_assert_eq(vmm_check(&fx->vmm), MM_OK);
}

FX_FAKE_ONLY(heap_rollback_racing_a_growth_gives_the_range_back_as_a_hole)
{
    static fx_t fx;
    race_a_rollback(&fx, NULL);
    mm_vaddr_t heap = fx.layout.regions[LAYOUT_HEAP].base;
    vmm_stats_t st;
    vmm_stats(&fx.vmm, &st);
    cr_assert_eq(st.stranded_bytes, 0);
    cr_assert_eq(st.heap_bytes, 64 * 1024);
    cr_assert_eq(fx.vmm.heap.count, 1);
    cr_assert_eq(fx.vmm.heap.ranges[0].base, heap);
    void *b;
    size_t s;
    OK(vmm_heap_grow(&fx.vmm, 1, &b, &s));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)b, heap, "the hole is reused");
    cr_assert_eq(fx.vmm.heap.count, 0);
    cr_assert_eq(vmm_check(&fx.vmm), MM_OK);
}

/* With no heap slot for the hole the range cannot go back: it is counted,
 * not lost, and never handed out twice. */
FX_FAKE_ONLY(heap_rollback_racing_a_growth_strands_and_reports)
{
    static fx_t fx;
    static vmm_range_t no_slot[1];
    fx_opts_t o = {.heap_slots = no_slot, .heap_slot_count = 0};
    race_a_rollback(&fx, &o);
    mm_vaddr_t heap = fx.layout.regions[LAYOUT_HEAP].base;
    vmm_stats_t st;
    vmm_stats(&fx.vmm, &st);
    cr_assert_eq(st.stranded_bytes, 64 * 1024);
    cr_assert_eq(st.heap_bytes, 64 * 1024);
    cr_assert(vmm_region_freelist_is_allocated(&fx.vmm.heap, heap, 64 * 1024),
              "never handed out twice");
    void *b;
    size_t s;
    OK(vmm_heap_grow(&fx.vmm, 1, &b, &s));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)b, heap + 128 * 1024);
    cr_assert_eq(vmm_check(&fx.vmm), MM_OK);
}

/* ---- stacks ------------------------------------------------------------- */

FX_TEST(stack_has_guard_page_and_is_released_once)
{
    dirty_all_free_frames(fx);
    uint64_t free0 = fx_free_frames(fx);
    vmm_stack_t s;
    OK(vmm_stack_create(&fx->vmm, &s));
    mm_vaddr_t base = region(fx, LAYOUT_STACKS)->base;
    cr_assert_eq(s.bottom, base + P, "guard page first");
    cr_assert_eq(s.size, 64 * 1024);
    cr_assert_eq(s.top, s.bottom + s.size);
    assert_unmapped(fx, s.bottom - P, P);
    assert_mapped(fx, s.bottom, s.size, DATA_FLAGS, true);
    vmm_stats_t st;
    vmm_stats(&fx->vmm, &st);
    cr_assert_eq(st.stacks, 1);
    cr_assert_eq(st.data_frames, 16);
    fx_assert_sane(fx);

    memset(&test_tlb, 0, sizeof(test_tlb));
    OK(vmm_stack_release(&s));
    cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls, 1, "one flush for the stack");
    if (test_tlb.page_calls == 1) {
        /* The real mapper may add an address for a table it freed. */
        cr_assert_geq(test_tlb.last_count, 16);
        cr_assert_eq(test_tlb.last_pages[0], base + P);
    }
    assert_unmapped(fx, base, 17 * P);
    cr_assert_eq(fx_free_frames(fx), free0, "frames and tables back");
    cr_assert_eq(fx->vmm.stacks.watermark, 0, "range back");
    cr_assert_null(s.vmm);
    vmm_stats(&fx->vmm, &st);
    cr_assert_eq(st.stacks, 0);
    cr_assert_eq(st.data_frames, 0);

    fx_snapshot_t snap;
    fx_snapshot(fx, &snap);
    OK(vmm_stack_release(&s));
    OK(vmm_stack_release(NULL));
    fx_assert_unchanged(fx, &snap);
    fx_assert_sane(fx);
}

/* Frames freed by a release (outside the VMM lock) must come after the TLB
 * flush that made them unreachable. */
static int frees_before_flush, frees_after_flush;
static fx_t *order_fx;
static mm_status_t ordering_free(void *ctx, mm_paddr_t base, size_t count)
{
    (void)ctx;
    if (test_irq_depth() == 0) {
        if (test_tlb.page_calls + test_tlb.all_calls == 0)
            frees_before_flush++;
        else
            frees_after_flush++;
    }
    return order_fx->fail.inner.free(order_fx->fail.inner.ctx, base, count);
}

FX_FAKE_ONLY(stack_frames_are_freed_after_the_flush_without_the_lock)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, true);
    fx.cfg.frames.free = ordering_free;
    order_fx = &fx;
    OK(vmm_init(&fx.vmm, &fx.cfg));
    vmm_stack_t s;
    OK(vmm_stack_create(&fx.vmm, &s));
    memset(&test_tlb, 0, sizeof(test_tlb));
    OK(vmm_stack_release(&s));
    cr_assert_eq(frees_before_flush, 0);
    cr_assert_eq(frees_after_flush, 16, "every data frame freed unlocked, after the flush");
}

FX_TEST(stacks_reuse_slots_and_return_all_space)
{
    enum { N = 100 };
    static vmm_stack_t s[N];
    uint64_t free0 = fx_free_frames(fx);
    uint64_t slot = 64 * 1024 + P;
    for (int i = 0; i < N; i++) {
        OK(vmm_stack_create(&fx->vmm, &s[i]));
        cr_assert_eq(s[i].bottom, region(fx, LAYOUT_STACKS)->base + i * slot + P);
    }
    /* Free every other stack (50 holes, within the 64 built-in slots). */
    for (int i = 0; i < N; i += 2)
        OK(vmm_stack_release(&s[i]));
    fx_assert_sane(fx);
    cr_assert_eq(fx->vmm.stacks.count, 50);
    /* New stacks fill the holes, lowest first. */
    OK(vmm_stack_create(&fx->vmm, &s[0]));
    cr_assert_eq(s[0].bottom, region(fx, LAYOUT_STACKS)->base + P);
    for (int i = 1; i < N; i += 2)
        OK(vmm_stack_release(&s[i]));
    OK(vmm_stack_release(&s[0]));
    fx_assert_sane(fx);
    cr_assert_eq(fx->vmm.stacks.watermark, 0);
    cr_assert_eq(fx->vmm.stacks.count, 0);
    cr_assert_eq(fx_free_frames(fx), free0);
}

static mm_status_t op_stack(fx_t *fx, void *arg)
{
    vmm_stack_t *s = arg;
    mm_status_t st = vmm_stack_create(&fx->vmm, s);
    if (st != MM_OK)
        cr_assert_null(s->vmm, "a failed create leaves a released object");
    return st;
}

FX_TEST(stack_create_is_all_or_nothing_for_every_failing_allocation)
{
    vmm_stack_t a, b;
    cr_assert_geq(fx_fail_each_k(fx, op_stack, &a, false), 17);
    cr_assert_geq(fx_fail_each_k(fx, op_stack, &b, true), 16);
    mm_vaddr_t a_bottom = a.bottom;
    OK(vmm_stack_release(&a));
    /* From a hole in the free list this time. */
    vmm_stack_t c;
    cr_assert_geq(fx_fail_each_k(fx, op_stack, &c, false), 16);
    cr_assert_eq(c.bottom, a_bottom, "the hole was reused");
    OK(vmm_stack_release(&b));
    OK(vmm_stack_release(&c));
    fx_assert_sane(fx);
}

FX_FAKE_ONLY(stack_size_is_configurable)
{
    static fx_t fx;
    fx_opts_t o = {.stack_size = 16 * 1024};
    fx_setup(&fx, FX_FAKE, &o, false);
    vmm_stack_t a, b;
    OK(vmm_stack_create(&fx.vmm, &a));
    OK(vmm_stack_create(&fx.vmm, &b));
    cr_assert_eq(a.size, 16 * 1024);
    cr_assert_eq(b.bottom, a.top + P, "next slot: one guard page above the previous stack");
    OK(vmm_stack_release(&a));
    OK(vmm_stack_release(&b));
}

FX_FAKE_ONLY(stack_region_exhaustion_and_frames)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, true);
    fx.layout.regions[LAYOUT_STACKS].size = 2 * (64 * 1024 + P) + P; /* 2 slots and a bit */
    OK(vmm_init(&fx.vmm, &fx.cfg));
    vmm_stack_t a, b, c;
    OK(vmm_stack_create(&fx.vmm, &a));
    OK(vmm_stack_create(&fx.vmm, &b));
    REJECTED(&fx, MM_ERR_EXHAUSTED, vmm_stack_create(&fx.vmm, &c));
    cr_assert_null(c.vmm);
    cr_assert_eq(vmm_classify_fault(&fx.vmm, b.top, NULL), VMM_FAULT_NONE,
                 "the tail too short for a slot holds no stack");
    mm_vaddr_t a_bottom = a.bottom;
    OK(vmm_stack_release(&a));
    OK(vmm_stack_create(&fx.vmm, &c));
    cr_assert_eq(c.bottom, a_bottom);
    REJECTED(&fx, MM_ERR_INVALID, vmm_stack_create(NULL, &a));
    cr_assert_eq(vmm_stack_create(&fx.vmm, NULL), MM_ERR_INVALID);
}

/* A full free list: the release unmaps and frees the frames but keeps the
 * range (and says so); a later release retries and succeeds. */
FX_FAKE_ONLY(stack_release_with_full_free_list_keeps_the_range)
{
    static fx_t fx;
    static vmm_range_t one_slot[1];
    fx_opts_t o = {.stack_slots = one_slot, .stack_slot_count = 1};
    fx_setup(&fx, FX_FAKE, &o, false);
    vmm_stack_t s[5];
    for (int i = 0; i < 5; i++)
        OK(vmm_stack_create(&fx.vmm, &s[i]));
    uint64_t free_before = fx_free_frames(&fx);
    OK(vmm_stack_release(&s[1])); /* takes the only slot */
    cr_assert_eq(fx.vmm.stacks.count, 1);

    cr_assert_eq(vmm_stack_release(&s[3]), MM_ERR_FULL);
    cr_assert_eq(s[3].vmm, &fx.vmm, "still owns its range");
    assert_unmapped(&fx, s[3].bottom, s[3].size);
    cr_assert(vmm_region_freelist_is_allocated(&fx.vmm.stacks, s[3].bottom - P, 64 * 1024 + P));
    cr_assert_eq(fx_free_frames(&fx), free_before + 32, "both stacks' frames are back");
    vmm_stats_t st;
    vmm_stats(&fx.vmm, &st);
    cr_assert_eq(st.stacks, 4, "the range is still accounted to a stack");
    cr_assert_eq(st.data_frames, 48);
    cr_assert_eq(vmm_check(&fx.vmm), MM_OK);
    cr_assert_eq(vmm_stack_release(&s[3]), MM_ERR_FULL, "still full: still kept");

    OK(vmm_stack_release(&s[2])); /* merges with s[1]'s hole: no new slot */
    OK(vmm_stack_release(&s[3])); /* now adjacent to the hole: succeeds */
    cr_assert_null(s[3].vmm);
    OK(vmm_stack_release(&s[3]));
    OK(vmm_stack_release(&s[4]));
    OK(vmm_stack_release(&s[0]));
    cr_assert_eq(fx.vmm.stacks.watermark, 0);
    cr_assert_eq(vmm_check(&fx.vmm), MM_OK);
}

/* ---- fault classification ------------------------------------------------ */

FX_TEST(classify_finds_guard_pages_and_regions)
{
    vmm_stack_t a, b;
    OK(vmm_stack_create(&fx->vmm, &a));
    OK(vmm_stack_create(&fx->vmm, &b));
    vmm_fault_info_t info;

    cr_assert_eq(vmm_classify_fault(&fx->vmm, a.bottom - 1, &info), VMM_FAULT_STACK_GUARD);
    cr_assert_eq(info.kind, VMM_FAULT_STACK_GUARD);
    cr_assert_eq(info.stack_bottom, a.bottom);
    cr_assert_eq(info.stack_top, a.top);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, a.bottom - P, &info), VMM_FAULT_STACK_GUARD);
    /* Overflowing b runs into b's guard, which sits right above a's top. */
    cr_assert_eq(vmm_classify_fault(&fx->vmm, a.top, &info), VMM_FAULT_STACK_GUARD);
    cr_assert_eq(info.stack_bottom, b.bottom);
    cr_assert_eq(info.stack_top, b.top);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, a.bottom, &info), VMM_FAULT_STACK);
    cr_assert_eq(info.stack_bottom, a.bottom);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, a.top - 1, &info), VMM_FAULT_STACK);
    cr_assert_eq(info.stack_top, a.top);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, b.top + P, NULL), VMM_FAULT_STACK,
                 "an unused slot is still a stack slot");

    const layout_t *l = &fx->layout;
    cr_assert_eq(vmm_classify_fault(&fx->vmm, l->regions[LAYOUT_HEAP].base + 5, &info),
                 VMM_FAULT_HEAP);
    cr_assert_eq(info.stack_bottom, 0);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, l->regions[LAYOUT_MMIO].base, NULL),
                 VMM_FAULT_MMIO);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, l->regions[LAYOUT_HHDM].base, NULL),
                 VMM_FAULT_HHDM);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, 0xffffffff80001000ull, NULL),
                 VMM_FAULT_KERNEL_IMAGE);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, 0x400000, NULL), VMM_FAULT_USER);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, 0, NULL), VMM_FAULT_USER);
    /* 2^47: past the user half of a shared-root space, inside the 2^48
     * user half beside a separate kernel root. */
    cr_assert_eq(vmm_classify_fault(&fx->vmm, 0x0000800000000000ull, NULL),
                 FX_KERNEL_ROOT_SEPARATE && fx->kind == FX_REAL ? VMM_FAULT_USER : VMM_FAULT_NONE);
    cr_assert_eq(vmm_classify_fault(&fx->vmm, l->regions[LAYOUT_HEAP].base - 1, NULL),
                 VMM_FAULT_NONE, "guard gap between regions");
    cr_assert_eq(vmm_classify_fault(NULL, a.bottom, &info), VMM_FAULT_NONE);
    cr_assert_eq(info.kind, VMM_FAULT_NONE);
    cr_assert_str_eq(vmm_fault_kind_str(VMM_FAULT_STACK_GUARD), "stack-guard");
    cr_assert_str_eq(vmm_fault_kind_str((vmm_fault_kind_t)99), "unknown");
    OK(vmm_stack_release(&a));
    OK(vmm_stack_release(&b));
}

/* ---- MMIO --------------------------------------------------------------- */

static void assert_mmio(fx_t *fx, const vmm_mmio_t *m, mm_paddr_t phys, uint64_t size,
                        uint64_t pages, mm_map_flags_t cache)
{
    mm_vaddr_t ptr = (mm_vaddr_t)(uintptr_t)m->ptr;
    cr_assert_eq(m->phys, phys);
    cr_assert_eq(m->size, size);
    cr_assert_eq(m->pages, pages, "pages %llu, want %llu", (unsigned long long)m->pages,
                 (unsigned long long)pages);
    cr_assert_eq(ptr & (P - 1), phys & (P - 1), "in-page offset kept");
    assert_mapped(fx, mm_align_down(ptr, P), pages * P, DATA_FLAGS | cache, false);
    mm_translation_t t;
    OK(fx_translate(fx, fx->kroot, ptr, &t));
    cr_assert_eq(t.pa, phys, "the pointer translates to the requested address");
    OK(fx_translate(fx, fx->kroot, ptr + size - 1, &t));
    cr_assert_eq(t.pa, phys + size - 1, "and so does its last byte");
    assert_unmapped(fx, mm_align_down(ptr, P) + pages * P, P);
}

FX_TEST(mmio_keeps_the_offset_and_covers_every_page)
{
    static const struct {
        mm_paddr_t phys;
        uint64_t size, pages;
    } cases[] = {
        {0xfee00000, 0x1000, 1}, {0xfee00010, 4, 1},   {0xfee00ff0, 0x20, 2},
        {0x1000, 0x1001, 2},     {0xfff, 2, 2},        {0xfebc0004, 0x3000, 4},
        {0x80000000, 1, 1},      {0xc0000ffc, 0x2008, 4},
    };
    static vmm_mmio_t m[sizeof(cases) / sizeof(cases[0])];
    uint64_t free0 = fx_free_frames(fx);
    uint64_t total = 0;
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        OK(vmm_mmio_map(&fx->vmm, cases[i].phys, cases[i].size, VMM_MMIO_DEVICE, &m[i]));
        assert_mmio(fx, &m[i], cases[i].phys, cases[i].size, cases[i].pages, MM_MAP_DEVICE);
        total += cases[i].pages;
    }
    vmm_stats_t st;
    vmm_stats(&fx->vmm, &st);
    cr_assert_eq(st.mmio_mappings, sizeof(cases) / sizeof(cases[0]));
    cr_assert_eq(st.mmio_pages, total);
    cr_assert_eq(st.data_frames, 0, "MMIO owns no frames");
    fx_assert_sane(fx);
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        OK(vmm_mmio_release(&m[i]));
        cr_assert_null(m[i].vmm);
        OK(vmm_mmio_release(&m[i]));
    }
    cr_assert_eq(fx->vmm.mmio.watermark, 0);
    cr_assert_eq(fx_free_frames(fx), free0, "tables freed");
    fx_assert_sane(fx);
}

FX_TEST(mmio_write_combining)
{
    vmm_mmio_t m;
    OK(vmm_mmio_map(&fx->vmm, 0xfd000000, 8u << 20, VMM_MMIO_WRITE_COMBINING, &m));
#if VMM_TEST_MAPPER_A64
    /* Arm has no write-combining type: the AArch64 mapper maps it to Normal
     * Non-cacheable, which translate reports as such. */
    assert_mmio(fx, &m, 0xfd000000, 8u << 20, 2048, MM_MAP_NORMAL_NC);
#else
    assert_mmio(fx, &m, 0xfd000000, 8u << 20, 2048, MM_MAP_WRITE_COMBINING);
#endif
    OK(vmm_mmio_release(&m));
}

/* More emptied tables than one TLB batch defers (64 MiB of 4 KiB pages
 * spans 32 page tables): the real mapper's batch flushes early inside the
 * release, and still every table comes back and nothing is left pending. */
FX_TEST(large_mmio_release_returns_every_table)
{
    uint64_t free0 = fx_free_frames(fx);
    vmm_mmio_t m;
    OK(vmm_mmio_map(&fx->vmm, 0x80000000, 64u << 20, VMM_MMIO_DEVICE, &m));
    cr_assert_geq(free0 - fx_free_frames(fx), 32, "a page table per 2 MiB");
    memset(&test_tlb, 0, sizeof(test_tlb));
    OK(vmm_mmio_release(&m));
    cr_assert_geq(test_tlb.page_calls + test_tlb.all_calls, 1);
    cr_assert_eq(fx_free_frames(fx), free0, "every table back after the release");
    fx_assert_sane(fx);
}

FX_TEST(mmio_errors_change_nothing)
{
    vmm_mmio_t keep, m;
    OK(vmm_mmio_map(&fx->vmm, 0xfee00000, 16, VMM_MMIO_DEVICE, &keep));
    REJECTED(fx, MM_ERR_INVALID, vmm_mmio_map(&fx->vmm, 0x1000, 0, VMM_MMIO_DEVICE, &m));
    REJECTED(fx, MM_ERR_INVALID, vmm_mmio_map(&fx->vmm, 0x1000, 8, (vmm_mmio_cache_t)7, &m));
    REJECTED(fx, MM_ERR_INVALID, vmm_mmio_map(NULL, 0x1000, 8, VMM_MMIO_DEVICE, &m));
    cr_assert_eq(vmm_mmio_map(&fx->vmm, 0x1000, 8, VMM_MMIO_DEVICE, NULL), MM_ERR_INVALID);
    REJECTED(fx, MM_ERR_RANGE,
             vmm_mmio_map(&fx->vmm, UINT64_MAX - 10, 100, VMM_MMIO_DEVICE, &m));
    /* Beyond the physical address width: the mapper refuses the first page,
     * the range goes back. */
    REJECTED(fx, MM_ERR_RANGE, vmm_mmio_map(&fx->vmm, 1ull << 50, 8, VMM_MMIO_DEVICE, &m));
    REJECTED(fx, MM_ERR_EXHAUSTED,
             vmm_mmio_map(&fx->vmm, 0, region(fx, LAYOUT_MMIO)->size, VMM_MMIO_DEVICE, &m));
    REJECTED(fx, MM_ERR_EXHAUSTED,
             vmm_mmio_map(&fx->vmm, 0, UINT64_MAX, VMM_MMIO_DEVICE, &m));
    cr_assert_null(m.vmm, "failed maps leave a released object");
    OK(vmm_mmio_release(&m));
    OK(vmm_mmio_release(NULL));
    OK(vmm_mmio_release(&keep));
}

FX_FAKE_ONLY(mmio_mapper_failure_half_way_rolls_back)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, false);
    vmm_mmio_t m;
    fx_snapshot_t snap;
    fx_snapshot(&fx, &snap);
    fx.fake->fail_map_at = fx.fake->map_calls + 5;
    fx.fake->fail_map_status = MM_ERR_UNSUPPORTED;
    memset(&test_tlb, 0, sizeof(test_tlb));
    cr_assert_eq(vmm_mmio_map(&fx.vmm, 0x10000000, 8 * P, VMM_MMIO_DEVICE, &m),
                 MM_ERR_UNSUPPORTED);
    fx_assert_unchanged(&fx, &snap);
    cr_assert_eq(test_tlb.page_calls, 1, "the four pages mapped were flushed");
    cr_assert_eq(test_tlb.last_count, 4);
    fx.fake->fail_map_at = 0;
    OK(vmm_mmio_map(&fx.vmm, 0x10000000, 8 * P, VMM_MMIO_DEVICE, &m));
    OK(vmm_mmio_release(&m));
}

typedef struct mmio_arg {
    mm_paddr_t phys;
    uint64_t size;
    vmm_mmio_t m;
} mmio_arg_t;

static mm_status_t op_mmio(fx_t *fx, void *arg)
{
    mmio_arg_t *a = arg;
    mm_status_t st = vmm_mmio_map(&fx->vmm, a->phys, a->size, VMM_MMIO_DEVICE, &a->m);
    if (st != MM_OK)
        cr_assert_null(a->m.vmm);
    return st;
}

FX_TEST(mmio_is_all_or_nothing_for_every_failing_table_allocation)
{
    /* 2 MiB + 3 pages, starting 2 pages below a 2 MiB boundary of the MMIO
     * region: needs two new tables half way. */
    mmio_arg_t pad = {0x20000000, (2u << 20) - 2 * P, VMM_MMIO_INIT};
    OK(op_mmio(fx, &pad));
    mmio_arg_t a = {0x40000123, (2u << 20) + 2 * P, VMM_MMIO_INIT};
    cr_assert_geq(fx_fail_each_k(fx, op_mmio, &a, false), 2);
    assert_mmio(fx, &a.m, a.phys, a.size, 515, MM_MAP_DEVICE);
    mmio_arg_t b = {0x50000000, 3 * P, VMM_MMIO_INIT};
    fx_fail_each_k(fx, op_mmio, &b, true);
    OK(vmm_mmio_release(&a.m));
    OK(vmm_mmio_release(&b.m));
    OK(vmm_mmio_release(&pad.m));
    cr_assert_eq(fx->vmm.mmio.watermark, 0);
}

FX_FAKE_ONLY(mmio_release_with_full_free_list_keeps_the_range)
{
    static fx_t fx;
    fx_opts_t o = {.mmio_slots = NULL, .mmio_slot_count = 0};
    static vmm_range_t none[1];
    o.mmio_slots = none; /* capacity 0: only watermark frees succeed */
    fx_setup(&fx, FX_FAKE, &o, false);
    vmm_mmio_t a, b;
    OK(vmm_mmio_map(&fx.vmm, 0x1000, P, VMM_MMIO_DEVICE, &a));
    OK(vmm_mmio_map(&fx.vmm, 0x2000, P, VMM_MMIO_DEVICE, &b));
    cr_assert_eq(vmm_mmio_release(&a), MM_ERR_FULL);
    assert_unmapped(&fx, mm_align_down((mm_vaddr_t)(uintptr_t)a.ptr, P), P);
    cr_assert_eq(vmm_check(&fx.vmm), MM_OK);
    vmm_stats_t st;
    vmm_stats(&fx.vmm, &st);
    cr_assert_eq(st.mmio_mappings, 2, "still accounted");
    OK(vmm_mmio_release(&b));
    OK(vmm_mmio_release(&a)); /* now at the watermark */
    cr_assert_eq(fx.vmm.mmio.watermark, 0);
}

/* ---- a foreign mapping in the way ------------------------------------------ */

/* Someone else (boot code, a driver using the mapper directly) mapped a
 * page in a VMM region. Heap growth, stack creation and MMIO mapping run
 * into it half way: MM_ERR_EXISTS, and everything they had mapped is
 * unmapped and given back; the foreign page stays. */
static void map_foreign(fx_t *fx, mm_vaddr_t va)
{
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    OK(mm_pm_map(&fx->mapper, fx->kroot, va, 0x5000, MM_PAGE_4K, DATA_FLAGS, &tlb));
    mm_tlb_batch_flush(&tlb);
}

static void unmap_foreign(fx_t *fx, mm_vaddr_t va)
{
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    mm_paddr_t pa;
    OK(mm_pm_unmap(&fx->mapper, fx->kroot, va, MM_PAGE_4K, &pa, &tlb));
    mm_tlb_batch_flush(&tlb);
    cr_assert_eq(pa, 0x5000);
}

FX_TEST(foreign_mapping_in_the_way_is_exists_and_rolls_back)
{
    void *b = (void *)1;
    size_t sz = 7;
    mm_vaddr_t heap = region(fx, LAYOUT_HEAP)->base;
    map_foreign(fx, heap + 5 * P);
    REJECTED(fx, MM_ERR_EXISTS, vmm_heap_grow(&fx->vmm, 1, &b, &sz));
    REJECTED(fx, MM_ERR_EXISTS, vmm_heap_init(&fx->vmm, 0, &b, &sz));
    cr_assert_eq(b, (void *)1, "out untouched");
    cr_assert_eq(sz, 7);
    unmap_foreign(fx, heap + 5 * P);
    OK(vmm_heap_grow(&fx->vmm, 1, &b, &sz));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)b, heap, "the range was given back");

    vmm_stack_t s;
    mm_vaddr_t slot0 = region(fx, LAYOUT_STACKS)->base;
    map_foreign(fx, slot0 + 6 * P);
    REJECTED(fx, MM_ERR_EXISTS, vmm_stack_create(&fx->vmm, &s));
    cr_assert_null(s.vmm, "a failed create leaves a released object");
    unmap_foreign(fx, slot0 + 6 * P);
    OK(vmm_stack_create(&fx->vmm, &s));
    cr_assert_eq(s.bottom, slot0 + P, "the slot was given back");

    vmm_mmio_t m;
    mm_vaddr_t mmio = region(fx, LAYOUT_MMIO)->base;
    map_foreign(fx, mmio + 2 * P);
    REJECTED(fx, MM_ERR_EXISTS, vmm_mmio_map(&fx->vmm, 0xfee00000, 4 * P, VMM_MMIO_DEVICE, &m));
    cr_assert_null(m.vmm);
    unmap_foreign(fx, mmio + 2 * P);
    OK(vmm_mmio_map(&fx->vmm, 0xfee00000, 4 * P, VMM_MMIO_DEVICE, &m));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)m.ptr, mmio, "the range was given back");
    OK(vmm_mmio_release(&m));
    OK(vmm_stack_release(&s));
    fx_assert_sane(fx);
}

/* ---- everything at once ------------------------------------------------- */

FX_TEST(mixed_workload_returns_every_frame)
{
    uint64_t free0 = fx_free_frames(fx);
    void *b;
    size_t s;
    OK(vmm_heap_init(&fx->vmm, 256 * 1024, &b, &s));
    static vmm_stack_t st[20];
    static vmm_mmio_t mm[20];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            OK(vmm_stack_create(&fx->vmm, &st[i]));
            OK(vmm_mmio_map(&fx->vmm, 0xe0000000 + (uint64_t)i * 0x10010, 0x1800,
                            VMM_MMIO_DEVICE, &mm[i]));
        }
        for (int i = round % 2; i < 20; i += 2) {
            OK(vmm_stack_release(&st[i]));
            OK(vmm_mmio_release(&mm[i]));
        }
        fx_assert_sane(fx);
        for (int i = 0; i < 20; i++) {
            OK(vmm_stack_release(&st[i]));
            OK(vmm_mmio_release(&mm[i]));
        }
        OK(vmm_heap_grow(&fx->vmm, 0, &b, &s));
    }
    fx_assert_sane(fx);
    vmm_stats_t stats;
    vmm_stats(&fx->vmm, &stats);
    cr_assert_eq(stats.stacks + stats.mmio_mappings, 0);
    cr_assert_eq(stats.data_frames, stats.heap_bytes / P);
    /* Only the heap's frames and its tables are still out. */
    cr_assert_leq(free0 - fx_free_frames(fx), stats.data_frames + 4);
}

/* ---- scope-bound release -------------------------------------------------- */

static uint64_t scoped_free_frames_inside;

static void scoped_user(fx_t *fx)
{
    MM_SCOPED(vmm_stack_release) vmm_stack_t s = VMM_STACK_INIT;
    MM_SCOPED(vmm_mmio_release) vmm_mmio_t m = VMM_MMIO_INIT;
    MM_SCOPED(vmm_as_release) vmm_as_t as = VMM_AS_INIT;
    MM_SCOPED(vmm_stack_release) vmm_stack_t never = VMM_STACK_INIT; /* no-op at exit */
    OK(vmm_stack_create(&fx->vmm, &s));
    OK(vmm_mmio_map(&fx->vmm, 0xfee00000, 16, VMM_MMIO_DEVICE, &m));
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &as));
    OK(vmm_as_map_anon(&as, 0x400000, 4, MM_MAP_WRITE));
    scoped_free_frames_inside = fx_free_frames(fx);
    (void)never;
}

FX_TEST(scoped_objects_release_at_scope_exit)
{
#if VMM_TEST_HAVE_KHEAP
    cr_assert_not_null(heap_grow_fits_kheap);
#endif
    uint64_t free0 = fx_free_frames(fx);
    scoped_user(fx);
    cr_assert_lt(scoped_free_frames_inside, free0);
    cr_assert_eq(fx_free_frames(fx), free0, "everything released on scope exit");
    vmm_stats_t st;
    vmm_stats(&fx->vmm, &st);
    cr_assert_eq(st.stacks + st.mmio_mappings, 0);
    cr_assert_eq(fx->vmm.stacks.watermark + fx->vmm.mmio.watermark, 0);
    fx_assert_sane(fx);
}

/* ---- concurrency (real mapper and PMM: both safe across roots) ---------- */

#if FX_HAVE_REAL && VMM_TEST_HAVE_PMM
#include <pthread.h>

static fx_t *stress_fx;

static void *stress_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    vmm_t *vmm = &stress_fx->vmm;
    vmm_stack_t s[4] = {VMM_STACK_INIT, VMM_STACK_INIT, VMM_STACK_INIT, VMM_STACK_INIT};
    vmm_mmio_t m[4] = {VMM_MMIO_INIT, VMM_MMIO_INIT, VMM_MMIO_INIT, VMM_MMIO_INIT};
    for (int i = 0; i < 1000; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 16) & 3);
        switch ((seed >> 20) % 5) {
        case 0:
            if (s[k].vmm == NULL && vmm_stack_create(vmm, &s[k]) != MM_OK)
                return "stack create failed";
            break;
        case 1:
            if (vmm_stack_release(&s[k]) != MM_OK)
                return "stack release failed";
            break;
        case 2:
            if (m[k].vmm == NULL &&
                vmm_mmio_map(vmm, 0xe0000000 + ((seed >> 8) & 0xffff) * 16, 0x1800,
                             VMM_MMIO_DEVICE, &m[k]) != MM_OK)
                return "mmio map failed";
            break;
        case 3:
            if (vmm_mmio_release(&m[k]) != MM_OK)
                return "mmio release failed";
            break;
        default: {
            vmm_as_t as;
            if (vmm_as_create(vmm, vmm_as_leaf_free_frames, vmm, &as) != MM_OK)
                return "as create failed";
            if (vmm_as_map_anon(&as, 0x400000, 3, MM_MAP_WRITE) != MM_OK)
                return "as map failed";
            vmm_as_release(&as);
            if (i % 100 == 0) {
                void *b;
                size_t sz;
                if (vmm_heap_grow(vmm, 1, &b, &sz) != MM_OK)
                    return "heap grow failed";
            }
        }
        }
    }
    for (int k = 0; k < 4; k++)
        if (vmm_stack_release(&s[k]) != MM_OK || vmm_mmio_release(&m[k]) != MM_OK)
            return "final release failed";
    return NULL;
}

Test(FX_REAL_SUITE, concurrent_operations_keep_every_invariant)
{
    static fx_t fx;
    fx_setup(&fx, FX_REAL, NULL, false);
    stress_fx = &fx;
    uint64_t free0 = fx_free_frames(&fx);
    /* Two threads: ticket spinlocks on an oversubscribed host (2 CPUs shared
     * with other test workers) convoy badly when a waiter is preempted, so
     * more threads add run time, not coverage. */
    pthread_t t[2];
    for (uintptr_t i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, stress_worker, (void *)(i + 1)), 0);
    for (int i = 0; i < 2; i++) {
        void *err;
        pthread_join(t[i], &err);
        cr_assert_null(err, "worker %d: %s", i, (const char *)err);
    }
    fx_assert_sane(&fx);
    vmm_stats_t st;
    vmm_stats(&fx.vmm, &st);
    cr_assert_eq(st.stacks + st.mmio_mappings + st.mmio_pages, 0);
    cr_assert_eq(st.stranded_bytes, 0, "nothing failed, so nothing was stranded");
    cr_assert_eq(st.data_frames, st.heap_bytes / P);
    cr_assert_eq(fx.vmm.stacks.watermark + fx.vmm.mmio.watermark, 0);
    /* Out: the heap's frames and its page tables (one PD, a few PTs; and
     * the PDPT a separate kernel root does not prepopulate). */
    uint64_t out = free0 - fx_free_frames(&fx);
    cr_assert_geq(out, st.data_frames);
    cr_assert_leq(out, st.data_frames + 1 + st.heap_bytes / (2u << 20) + 1 +
                           (FX_KERNEL_ROOT_SEPARATE ? 1 : 0));
}
#endif

/* vmm_check must notice each kind of damage it claims to check: a copy of a
 * healthy VMM is damaged one field at a time and each must read CORRUPT,
 * while the undamaged copy stays OK. */
FX_FAKE_ONLY(check_reports_each_kind_of_damage)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, false);
    void *b;
    size_t sz;
    cr_assert_eq(vmm_heap_grow(&fx.vmm, 1, &b, &sz), MM_OK);
    vmm_stack_t s = VMM_STACK_INIT;
    cr_assert_eq(vmm_stack_create(&fx.vmm, &s), MM_OK);
    vmm_stack_t s2 = VMM_STACK_INIT;
    cr_assert_eq(vmm_stack_create(&fx.vmm, &s2), MM_OK);
    cr_assert_eq(vmm_stack_release(&s), MM_OK); /* leaves a free slot below s2 */
    vmm_mmio_t m = VMM_MMIO_INIT;
    cr_assert_eq(vmm_mmio_map(&fx.vmm, 0xfee00000, 0x1000, VMM_MMIO_DEVICE, &m), MM_OK);
    cr_assert_eq(vmm_check(&fx.vmm), MM_OK);
    cr_assert_gt(fx.vmm.stacks.count, 0, "the test needs a free stack range");

    static vmm_t bad;
    /* The copy is made to look like the original instance (vmm_check refuses
     * a plain struct copy with MM_ERR_STATE) and gets its own records. */
    static vmm_handle_rec_t recs[VMM_DEFAULT_HANDLES];
#define EXPECT_CORRUPT(what, damage)                                                               \
    do {                                                                                           \
        bad = fx.vmm;                                                                              \
        bad.self = &bad;                                                                           \
        memcpy(recs, fx.vmm.handles, sizeof recs);                                                 \
        bad.handles = recs;                                                                        \
        cr_assert_eq(vmm_check(&bad), MM_OK, "undamaged copy");                                    \
        damage;                                                                                    \
        cr_assert_eq(vmm_check(&bad), MM_ERR_CORRUPT, "%s not detected", what);                    \
    } while (0)
    EXPECT_CORRUPT("heap region", bad.heap.watermark = bad.heap.size + MM_PAGE_SIZE);
    EXPECT_CORRUPT("stack slot size", bad.stack_slot += MM_PAGE_SIZE);
    EXPECT_CORRUPT("unaligned heap bytes", bad.stats.heap_bytes += 1);
    EXPECT_CORRUPT("heap bytes beyond the region",
                   bad.stats.heap_bytes = bad.heap.watermark + MM_PAGE_SIZE);
    EXPECT_CORRUPT("unaligned released heap bytes", bad.stats.heap_released += 1);
    EXPECT_CORRUPT("stack count", bad.stats.stacks += 5);
    EXPECT_CORRUPT("stack watermark off the slot grid", bad.stacks.watermark += MM_PAGE_SIZE);
    static vmm_range_t ranges[VMM_DEFAULT_RANGE_SLOTS];
    EXPECT_CORRUPT("free stack range off the slot grid", ({
                       __builtin_memcpy(ranges, fx.vmm.stacks.ranges,
                                        fx.vmm.stacks.count * sizeof ranges[0]);
                       bad.stacks.ranges = ranges;
                       ranges[0].size -= MM_PAGE_SIZE;
                       bad.stacks.free_bytes -= MM_PAGE_SIZE;
                   }));
    EXPECT_CORRUPT("mmio pages below mappings", bad.stats.mmio_pages = 0);
    EXPECT_CORRUPT("mmio pages beyond the region", bad.stats.mmio_pages += 1000);
    EXPECT_CORRUPT("data frames below the heap", bad.stats.data_frames = 0);
    EXPECT_CORRUPT("data frames beyond heap and stacks", bad.stats.data_frames += 1000);
    /* Handle records: s2 is record 1 (s's record 0 is free), m record 0 again. */
    cr_assert_eq(m.rec, 0);
    cr_assert_eq(s2.rec, 1);
    EXPECT_CORRUPT("stack record off the slot grid", recs[s2.rec].base += MM_PAGE_SIZE);
    EXPECT_CORRUPT("stack record on a free slot", recs[s2.rec].base -= bad.stack_slot);
    EXPECT_CORRUPT("mmio record outside its range", recs[m.rec].base += 16 * MM_PAGE_SIZE);
    EXPECT_CORRUPT("mmio record wrapping", recs[m.rec].phys = UINT64_MAX);
    EXPECT_CORRUPT("mmio record with another page count", recs[m.rec].size += 2 * MM_PAGE_SIZE);
    EXPECT_CORRUPT("record of no kind", recs[s2.rec].kind = 9);
    EXPECT_CORRUPT("live record lost", recs[s2.rec].serial = 0);
    EXPECT_CORRUPT("records beyond the table", bad.handle_used = bad.handle_count + 1);
    EXPECT_CORRUPT("free chain into a live record", bad.handle_free = s2.rec);
    EXPECT_CORRUPT("free chain beyond the used records", bad.handle_free = 5);
    EXPECT_CORRUPT("free chain with a cycle", ({
                       bad.handle_used = 3;
                       recs[2].next_free = 2;
                       bad.handle_free = 2;
                   }));
#undef EXPECT_CORRUPT
    cr_assert_eq(vmm_check(&fx.vmm), MM_OK, "the original is untouched");
    cr_assert_eq(vmm_mmio_release(&m), MM_OK);
    cr_assert_eq(vmm_stack_release(&s2), MM_OK);
}
