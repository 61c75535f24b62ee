/* Kernel-heap release (vmm_heap_release): pages given back, frames freed
 * after the flush, released ranges reused by later growth, and every bad
 * range refused with nothing changed; against the fake mapper and (when
 * built) the real x86_64 mapper over the real PMM. */
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "vmm_fixture.h"

/* The shape of the kernel heap's release callback: the kernel wires
 * vmm_heap_release_callback straight into it with the vmm_t as context. */
typedef mm_status_t (*heap_release_fn)(void *ctx, void *base, size_t size);
static const heap_release_fn release_fits_kheap = vmm_heap_release_callback;

#define KIB 1024ull
#define DATA_FLAGS (MM_MAP_WRITE | MM_MAP_GLOBAL)

static mm_vaddr_t heap_base(fx_t *fx)
{
    return fx->layout.regions[LAYOUT_HEAP].base;
}

static void *ptr(mm_vaddr_t va)
{
    return (void *)(uintptr_t)va;
}

static mm_vaddr_t grow(fx_t *fx, size_t bytes)
{
    void *b = NULL;
    size_t s = 0;
    OK(vmm_heap_grow(&fx->vmm, bytes, &b, &s));
    cr_assert_eq(s, bytes);
    return (mm_vaddr_t)(uintptr_t)b;
}

static void release(fx_t *fx, mm_vaddr_t va, uint64_t bytes)
{
    OK(vmm_heap_release(&fx->vmm, ptr(va), (size_t)bytes));
    fx_assert_sane(fx);
}

static bool page_mapped(fx_t *fx, mm_vaddr_t va)
{
    mm_translation_t t;
    return fx_translate(fx, fx->kroot, va, &t) == MM_OK;
}

static void assert_mapped(fx_t *fx, mm_vaddr_t va, uint64_t bytes)
{
    for (uint64_t off = 0; off < bytes; off += P) {
        mm_translation_t t;
        mm_status_t st = fx_translate(fx, fx->kroot, va + off, &t);
        cr_assert_eq(st, MM_OK, "page %#llx: %s", (unsigned long long)(va + off),
                     mm_status_str(st));
        cr_assert_eq(t.flags, DATA_FLAGS);
    }
}

static void assert_unmapped(fx_t *fx, mm_vaddr_t va, uint64_t bytes)
{
    for (uint64_t off = 0; off < bytes; off += P)
        cr_assert_not(page_mapped(fx, va + off), "page %#llx still mapped",
                      (unsigned long long)(va + off));
}

/* Writes a pattern through the heap's own addresses (the HHDM backs them in
 * the simulation, so go through the translation). */
static void *page_data(fx_t *fx, mm_vaddr_t va)
{
    mm_translation_t t;
    OK(fx_translate(fx, fx->kroot, va, &t));
    return hhdm_phys_to_virt(t.page_pa);
}

static void stamp(fx_t *fx, mm_vaddr_t va, uint64_t bytes)
{
    for (uint64_t off = 0; off < bytes; off += P)
        *(uint64_t *)page_data(fx, va + off) = va + off;
}

static void assert_stamped(fx_t *fx, mm_vaddr_t va, uint64_t bytes)
{
    for (uint64_t off = 0; off < bytes; off += P)
        cr_assert_eq(*(uint64_t *)page_data(fx, va + off), va + off, "page %#llx lost its data",
                     (unsigned long long)(va + off));
}

static void assert_zeroed(fx_t *fx, mm_vaddr_t va, uint64_t bytes)
{
    for (uint64_t off = 0; off < bytes; off += P) {
        const uint64_t *w = page_data(fx, va + off);
        for (unsigned i = 0; i < P / 8; i++)
            cr_assert_eq(w[i], 0, "page %#llx word %u not zeroed", (unsigned long long)(va + off),
                         i);
    }
}

/* Fills every free frame (through the allocator, so a poisoning PMM
 * re-poisons them on the way back) so that a missing zeroing shows. */
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

static vmm_stats_t stats(fx_t *fx)
{
    vmm_stats_t s;
    vmm_stats(&fx->vmm, &s);
    return s;
}

/* A refused release: `want`, nothing observable changed (frames, page
 * tables, regions and their slots, stats), and a warning of `wkind` (or
 * none when it is -1), with no lock left held. */
#define RELEASE_REJECTED(fx, want, wkind, base, size)                                               \
    do {                                                                                           \
        fx_snapshot_t snap_;                                                                       \
        fx_snapshot((fx), &snap_);                                                                 \
        int warn0_ = test_warnings.count;                                                          \
        int flush0_ = test_tlb.page_calls + test_tlb.all_calls;                                    \
        mm_status_t st_ = vmm_heap_release(&(fx)->vmm, (base), (size));                            \
        cr_assert_eq(st_, (want), "release(%p, %#zx): got %s", (void *)(base), (size_t)(size),     \
                     mm_status_str(st_));                                                          \
        fx_assert_unchanged((fx), &snap_);                                                         \
        fx_assert_sane(fx);                                                                        \
        cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls, flush0_, "nothing to flush");       \
        if ((int)(wkind) < 0) {                                                                     \
            cr_assert_eq(test_warnings.count, warn0_, "no warning");                               \
        } else {                                                                                   \
            cr_assert_eq(test_warnings.count, warn0_ + 1, "warned once");                          \
            cr_assert_eq(test_warnings.last.kind, (wkind), "report kind %s",                        \
                         mm_report_kind_str(test_warnings.last.kind));                             \
            cr_assert_eq(test_warnings.last.address, (mm_vaddr_t)(uintptr_t)(base));              \
        }                                                                                          \
    } while (0)

/* ---- giving pages back ------------------------------------------------- */

FX_TEST(release_after_grow_frees_exactly_the_frames_and_unmaps)
{
    uint64_t free0 = fx_free_frames(fx);
    vmm_stats_t s0 = stats(fx);
    mm_vaddr_t a = grow(fx, 256 * KIB);
    mm_vaddr_t b = grow(fx, 64 * KIB);
    uint64_t free1 = fx_free_frames(fx);
    stamp(fx, a, 320 * KIB);

    /* A part of the first growth, away from its ends: only its frames come
     * back (its tables still map the rest). */
    memset(&test_tlb, 0, sizeof(test_tlb));
    release(fx, a + 64 * KIB, 128 * KIB);
    cr_assert_eq(fx_free_frames(fx), free1 + 32, "exactly the 32 data frames");
    cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls, 1, "one flush");
    assert_unmapped(fx, a + 64 * KIB, 128 * KIB);
    assert_mapped(fx, a, 64 * KIB);
    assert_mapped(fx, a + 192 * KIB, 64 * KIB);
    assert_stamped(fx, a, 64 * KIB);
    assert_stamped(fx, a + 192 * KIB, 128 * KIB);
    vmm_stats_t s1 = stats(fx);
    cr_assert_eq(s1.heap_bytes, 192 * KIB);
    cr_assert_eq(s1.data_frames, 48);
    cr_assert_eq(s1.heap_released, 128 * KIB);
    cr_assert_eq(s1.stranded_bytes, 0);

    /* Everything else, through the callback: every frame the growths took,
     * tables included, is back. */
    OK(release_fits_kheap(&fx->vmm, ptr(b), 64 * KIB));
    OK(release_fits_kheap(&fx->vmm, ptr(a), 64 * KIB));
    OK(release_fits_kheap(&fx->vmm, ptr(a + 192 * KIB), 64 * KIB));
    fx_assert_sane(fx);
    assert_unmapped(fx, a, 320 * KIB);
    cr_assert_eq(fx_free_frames(fx), free0);
    vmm_stats_t s2 = stats(fx);
    cr_assert_eq(s2.heap_bytes, s0.heap_bytes);
    cr_assert_eq(s2.data_frames, s0.data_frames);
    cr_assert_eq(s2.heap_released, 320 * KIB);
    cr_assert_eq(fx->vmm.heap.watermark, 0, "the top is back at the heap base");
    cr_assert_eq(fx->vmm.heap.count, 0);
    cr_assert_eq(test_warnings.count, 0);
}

/* Frames of a release are freed unlocked, after the flush that made them
 * unreachable. */
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

FX_FAKE_ONLY(release_frees_frames_after_the_flush_without_the_lock)
{
    static fx_t fx;
    fx_setup(&fx, FX_FAKE, NULL, true);
    fx.cfg.frames.free = ordering_free;
    order_fx = &fx;
    OK(vmm_init(&fx.vmm, &fx.cfg));
    mm_vaddr_t a = grow(&fx, 64 * KIB);
    grow(&fx, 64 * KIB);
    memset(&test_tlb, 0, sizeof(test_tlb));
    release(&fx, a, 64 * KIB);
    cr_assert_eq(frees_before_flush, 0);
    cr_assert_eq(frees_after_flush, 16, "every data frame freed unlocked, after the flush");
    cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls, 1);
}

/* ---- reuse ---------------------------------------------------------------- */

FX_TEST(released_middle_is_reused_by_the_next_growth_with_fresh_frames)
{
    mm_vaddr_t a = grow(fx, 64 * KIB), b = grow(fx, 64 * KIB), c = grow(fx, 64 * KIB);
    cr_assert_eq(b, a + 64 * KIB);
    stamp(fx, a, 192 * KIB);
    release(fx, b, 64 * KIB);
    cr_assert_eq(fx->vmm.heap.count, 1, "a hole below the top");
    cr_assert_eq(fx->vmm.heap.watermark, 192 * KIB);

    /* Whatever frames the growth gets, they held something else. */
    dirty_all_free_frames(fx);
    mm_vaddr_t again = grow(fx, 64 * KIB);
    cr_assert_eq(again, b, "the hole is reused, lowest first");
    assert_mapped(fx, b, 64 * KIB);
    assert_zeroed(fx, b, 64 * KIB);
    assert_stamped(fx, a, 64 * KIB);
    assert_stamped(fx, c, 64 * KIB);
    cr_assert_eq(fx->vmm.heap.count, 0);
    cr_assert_eq(grow(fx, 64 * KIB), c + 64 * KIB, "then growth continues at the top");
    fx_assert_sane(fx);
}

FX_TEST(partial_releases_merge_and_first_fit_takes_the_lowest_hole)
{
    mm_vaddr_t a = grow(fx, 256 * KIB);
    grow(fx, 64 * KIB);
    /* Two holes in one growth, then one spanning the gap between them. */
    release(fx, a + 8 * P, 2 * P);
    release(fx, a + 32 * P, 16 * P);
    cr_assert_eq(fx->vmm.heap.count, 2);
    release(fx, a + 10 * P, 22 * P);
    cr_assert_eq(fx->vmm.heap.count, 1, "merged with both neighbours");
    cr_assert_eq(fx->vmm.heap.ranges[0].base, a + 8 * P);
    cr_assert_eq(fx->vmm.heap.ranges[0].size, 40 * P);
    assert_mapped(fx, a, 8 * P);
    assert_mapped(fx, a + 48 * P, 16 * P);
    /* Across what were two growths. */
    release(fx, a + 60 * P, 8 * P);
    cr_assert_eq(fx->vmm.heap.count, 2);

    /* A 16-page growth takes the front of the lowest hole that fits. */
    cr_assert_eq(grow(fx, 64 * KIB), a + 8 * P);
    cr_assert_eq(grow(fx, 64 * KIB), a + 24 * P);
    /* 8 pages are left there, too small: the next hole is too, so the top. */
    cr_assert_eq(grow(fx, 64 * KIB), heap_base(fx) + 320 * KIB);
    fx_assert_sane(fx);
}

FX_TEST(release_at_the_top_lowers_it_and_takes_touching_holes_along)
{
    mm_vaddr_t a = grow(fx, 64 * KIB), b = grow(fx, 64 * KIB), c = grow(fx, 64 * KIB);
    release(fx, c + 32 * KIB, 32 * KIB);
    cr_assert_eq(fx->vmm.heap.watermark, 160 * KIB);
    cr_assert_eq(fx->vmm.heap.count, 0, "no slot used");
    release(fx, b, 64 * KIB);
    cr_assert_eq(fx->vmm.heap.count, 1);
    release(fx, c, 32 * KIB);
    cr_assert_eq(fx->vmm.heap.watermark, 64 * KIB, "down to a's end, with b's hole");
    cr_assert_eq(fx->vmm.heap.count, 0);
    cr_assert_eq(grow(fx, 128 * KIB), b);

    /* vmm_heap_init is refused while the heap holds anything, and allowed
     * again once everything is back. */
    void *ib = NULL;
    size_t is = 0;
    cr_assert_eq(vmm_heap_init(&fx->vmm, 0, &ib, &is), MM_ERR_STATE);
    release(fx, a, 192 * KIB);
    cr_assert_eq(fx->vmm.heap.watermark, 0);
    OK(vmm_heap_init(&fx->vmm, 0, &ib, &is));
    cr_assert_eq((mm_vaddr_t)(uintptr_t)ib, a);
    fx_assert_sane(fx);
}

/* The window is 1 MiB here; a quarter of a gigabyte is grown through it in
 * 2000 grow/release cycles, released in random order, and none is refused. */
static void cycles(fx_t *fx)
{
    enum { CHUNK = 128 * 1024, HOLD = 7, ROUNDS = 2000 };
    mm_vaddr_t held[HOLD];
    int n = 0;
    uint64_t free0 = fx_free_frames(fx);
    unsigned seed = 7;
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        if (n == HOLD || (n > 0 && (seed >> 16) % 2 == 0)) {
            int k = (int)((seed >> 8) % (unsigned)n);
            OK(vmm_heap_release(&fx->vmm, ptr(held[k]), CHUNK));
            held[k] = held[--n];
        }
        void *b;
        size_t s;
        mm_status_t st = vmm_heap_grow(&fx->vmm, CHUNK, &b, &s);
        cr_assert_eq(st, MM_OK, "round %d holding %d: %s", r, n, mm_status_str(st));
        held[n++] = (mm_vaddr_t)(uintptr_t)b;
        cr_assert_eq(vmm_check(&fx->vmm), MM_OK);
    }
    vmm_stats_t s = stats(fx);
    cr_assert_gt(s.heap_released + s.heap_bytes, 200ull << 20, "far more than the window");
    cr_assert_eq(s.heap_bytes, (uint64_t)n * CHUNK);
    while (n > 0)
        release(fx, held[--n], CHUNK);
    cr_assert_eq(fx->vmm.heap.watermark, 0);
    cr_assert_eq(fx->vmm.heap.count, 0);
    cr_assert_eq(fx_free_frames(fx), free0, "every frame back");
    cr_assert_eq(stats(fx).stranded_bytes, 0);
}

static void setup_small_window(fx_t *fx, fx_kind_t kind)
{
    fx_setup(fx, kind, NULL, true);
    fx->layout.regions[LAYOUT_HEAP].size = 1 << 20;
    OK(vmm_init(&fx->vmm, &fx->cfg));
}

FX_FAKE_ONLY(grow_release_cycles_never_exhaust_the_window)
{
    static fx_t fx;
    setup_small_window(&fx, FX_FAKE);
    cycles(&fx);
}

#if FX_HAVE_REAL
Test(FX_REAL_SUITE, grow_release_cycles_never_exhaust_the_window)
{
    static fx_t fx;
    setup_small_window(&fx, FX_REAL);
    cycles(&fx);
}
#endif

/* ---- bad ranges ----------------------------------------------------------- */

FX_TEST(release_errors_change_nothing)
{
    mm_vaddr_t heap = heap_base(fx);
    uint64_t window = fx->layout.regions[LAYOUT_HEAP].size;
    mm_vaddr_t a = grow(fx, 64 * KIB), b = grow(fx, 64 * KIB);
    grow(fx, 64 * KIB);
    release(fx, b + 16 * KIB, 16 * KIB); /* a hole in the middle of b */
    mm_vaddr_t top = heap + 192 * KIB;
    const int none = -1;

    RELEASE_REJECTED(fx, MM_ERR_INVALID, none, ptr(a), 0);
    RELEASE_REJECTED(fx, MM_ERR_INVALID, none, NULL, P);
    cr_assert_eq(vmm_heap_release(NULL, ptr(a), P), MM_ERR_INVALID);
    cr_assert_eq(vmm_heap_release_callback(NULL, ptr(a), P), MM_ERR_INVALID);

    RELEASE_REJECTED(fx, MM_ERR_ALIGN, MM_REPORT_BAD_POINTER, ptr(a + 8), P);
    RELEASE_REJECTED(fx, MM_ERR_ALIGN, MM_REPORT_BAD_POINTER, ptr(a), P + 1);
    RELEASE_REJECTED(fx, MM_ERR_ALIGN, MM_REPORT_BAD_POINTER, ptr(a), P - 1);

    /* Outside the window. */
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(heap - P), P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(heap - P), 2 * P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(heap + window), P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(heap + window - P), 2 * P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(0x400000), P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER,
                     ptr(fx->layout.regions[LAYOUT_STACKS].base), P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(a), SIZE_MAX & ~(P - 1));
    /* Inside the window, never grown: above the top, or reaching past it. */
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(top), P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(top + 64 * KIB), P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(top - P), 2 * P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(a), 192 * KIB + P);
    /* Already released: the hole itself, a part of it, ranges overlapping
     * it from either side or spanning it. */
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_DOUBLE_FREE, ptr(b + 16 * KIB), 16 * KIB);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_DOUBLE_FREE, ptr(b + 20 * KIB), P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_DOUBLE_FREE, ptr(b), 16 * KIB + P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_DOUBLE_FREE, ptr(b + 32 * KIB - P), 2 * P);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_DOUBLE_FREE, ptr(a), 192 * KIB);

    /* Released at the top, released again: the top came down, so it is
     * above the top now. */
    release(fx, top - 64 * KIB, 64 * KIB);
    RELEASE_REJECTED(fx, MM_ERR_RANGE, MM_REPORT_BAD_POINTER, ptr(top - 64 * KIB), 64 * KIB);

    /* The ranges next to the refused ones were never touched. */
    assert_mapped(fx, a, 64 * KIB);
    assert_mapped(fx, b, 16 * KIB);
    assert_mapped(fx, b + 32 * KIB, 32 * KIB);
    release(fx, a, 80 * KIB);
    release(fx, b + 32 * KIB, 32 * KIB);
    cr_assert_eq(fx->vmm.heap.watermark, 0);
}

/* No heap slot left for a new hole: MM_ERR_FULL before anything is
 * unmapped, no warning; the range works on, and is taken once a release
 * next to it makes the hole touch another. */
FX_FAKE_ONLY(release_with_the_heap_slots_full_keeps_the_range)
{
    static fx_t fx;
    static vmm_range_t one_slot[1];
    fx_opts_t o = {.heap_slots = one_slot, .heap_slot_count = 1};
    fx_setup(&fx, FX_FAKE, &o, false);
    mm_vaddr_t c[5];
    for (int i = 0; i < 5; i++)
        c[i] = grow(&fx, 64 * KIB);
    stamp(&fx, c[3], 64 * KIB);
    release(&fx, c[1], 64 * KIB); /* takes the only slot */
    RELEASE_REJECTED(&fx, MM_ERR_FULL, -1, ptr(c[3]), 64 * KIB);
    assert_stamped(&fx, c[3], 64 * KIB);
    release(&fx, c[2], 64 * KIB); /* merges with c[1]'s hole */
    release(&fx, c[3], 64 * KIB); /* now touches it */
    release(&fx, c[4], 64 * KIB);
    cr_assert_eq(fx.vmm.heap.watermark, 64 * KIB);
    cr_assert_eq(stats(&fx).stranded_bytes, 0);
}

/* A release of the same range while the first one has dropped the lock to
 * flush (simulated from the frame allocator's free callback, which runs
 * unlocked, after the flush, before the range is given back): the pages
 * are unmapped but still allocated, and the second is refused. */
static fx_t *race_fx;
static mm_vaddr_t race_va;
static uint64_t race_size;
static bool race_armed;
static mm_status_t race_result;
static mm_status_t racing_free(void *ctx, mm_paddr_t base, size_t count)
{
    (void)ctx;
    if (race_armed && test_irq_depth() == 0) {
        race_armed = false;
        race_result = vmm_heap_release(&race_fx->vmm, ptr(race_va), (size_t)race_size);
    }
    return race_fx->fail.inner.free(race_fx->fail.inner.ctx, base, count);
}

static void setup_race(fx_t *fx, const fx_opts_t *o)
{
    fx_setup(fx, FX_FAKE, o, true);
    fx->cfg.frames.free = racing_free;
    race_fx = fx;
    OK(vmm_init(&fx->vmm, &fx->cfg));
}

FX_FAKE_ONLY(release_racing_a_release_of_the_same_range_is_refused)
{
    static fx_t fx;
    setup_race(&fx, NULL);
    mm_vaddr_t a = grow(&fx, 64 * KIB);
    grow(&fx, 64 * KIB);
    uint64_t free0 = fx_free_frames(&fx);
    race_va = a + 16 * KIB;
    race_size = P; /* a part of the range in flight */
    race_armed = true;
    release(&fx, a, 64 * KIB);
    cr_assert_not(race_armed, "the race ran");
    cr_assert_eq(race_result, MM_ERR_RANGE);
    cr_assert_eq(test_warnings.count, 1);
    cr_assert_eq(test_warnings.last.kind, MM_REPORT_DOUBLE_FREE);
    cr_assert_eq(fx_free_frames(&fx), free0 + 16, "each frame freed once");
    vmm_stats_t s = stats(&fx);
    cr_assert_eq(s.heap_bytes, 64 * KIB);
    cr_assert_eq(s.heap_released, 64 * KIB);
    cr_assert_eq(fx.vmm.heap.count, 1);
    cr_assert_eq(grow(&fx, 64 * KIB), a);
}

/* Releases in the unlocked window take the last slot the first one would
 * have needed: its pages are gone (MM_OK: the heap must not use them), its
 * range is counted as stranded and never handed out again. */
FX_FAKE_ONLY(release_racing_releases_that_fill_the_slots_strands_and_reports)
{
    static fx_t fx;
    static vmm_range_t one_slot[1];
    fx_opts_t o = {.heap_slots = one_slot, .heap_slot_count = 1};
    setup_race(&fx, &o);
    mm_vaddr_t c[5];
    for (int i = 0; i < 5; i++)
        c[i] = grow(&fx, 64 * KIB);
    uint64_t free0 = fx_free_frames(&fx);
    race_va = c[3];
    race_size = 64 * KIB;
    race_armed = true;
    release(&fx, c[1], 64 * KIB);
    cr_assert_not(race_armed, "the race ran");
    cr_assert_eq(race_result, MM_OK);
    cr_assert_eq(fx_free_frames(&fx), free0 + 32);
    assert_unmapped(&fx, c[1], 64 * KIB);
    vmm_stats_t s = stats(&fx);
    cr_assert_eq(s.stranded_bytes, 64 * KIB);
    cr_assert_eq(s.heap_bytes, 3 * 64 * KIB);
    cr_assert_eq(s.heap_released, 2 * 64 * KIB);
    cr_assert(vmm_region_freelist_is_allocated(&fx.vmm.heap, c[1], 64 * KIB),
              "never handed out twice");
    cr_assert_eq(grow(&fx, 64 * KIB), c[3], "the raced release's hole is reused");
    cr_assert_eq(grow(&fx, 64 * KIB), c[4] + 64 * KIB);
    /* The stranded range is refused like any range the heap does not hold. */
    RELEASE_REJECTED(&fx, MM_ERR_RANGE, MM_REPORT_DOUBLE_FREE, ptr(c[1]), 64 * KIB);
}
