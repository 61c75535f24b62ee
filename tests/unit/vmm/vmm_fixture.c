#include <stdlib.h>
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "vmm_fixture.h"

/* ---- failing wrapper ---------------------------------------------------- */

static mm_status_t failing_alloc(void *ctx, size_t count, size_t align, mm_paddr_t limit,
                                 mm_paddr_t *out)
{
    failing_fa_t *f = ctx;
    f->calls++;
    if (f->fail_at != 0 && (f->calls == f->fail_at || (f->sticky && f->calls > f->fail_at))) {
        f->failures++;
        return MM_ERR_NOMEM;
    }
    return f->inner.alloc(f->inner.ctx, count, align, limit, out);
}

static mm_status_t failing_free(void *ctx, mm_paddr_t base, size_t count)
{
    failing_fa_t *f = ctx;
    return f->inner.free(f->inner.ctx, base, count);
}

void fx_fail_at(fx_t *fx, unsigned long k, bool sticky)
{
    fx->fail.calls = 0;
    fx->fail.failures = 0;
    fx->fail.fail_at = k;
    fx->fail.sticky = sticky;
}

/* ---- set-up ------------------------------------------------------------- */

void fx_setup(fx_t *fx, fx_kind_t kind, const fx_opts_t *opts, bool no_vmm)
{
    memset(fx, 0, sizeof(*fx));
    fx->kind = kind;
    sim_phys_create(FX_SIM_BYTES);

#if VMM_TEST_HAVE_PMM
    pmm_region_t map[] = {{0, FX_SIM_BYTES, PMM_REGION_USABLE}};
    cr_assert_eq(pmm_init(&fx->pmm, map, 1, NULL, 0), MM_OK);
    fx->backing = pmm_frame_allocator(&fx->pmm);
#else
    /* Frame 0 left out, like the PMM. */
    frame_pool_init(&fx->pool, MM_PAGE_SIZE, (size_t)(FX_SIM_BYTES >> MM_PAGE_SHIFT) - 1);
    fx->backing = frame_pool_allocator(&fx->pool);
#endif
    fx->fail.inner = fx->backing;
    fx->fa = (mm_frame_allocator_t){&fx->fail, failing_alloc, failing_free};

    if (kind == FX_FAKE) {
        fx->fake = fake_pm_create(fx->fa, 1u << 16);
        fx->mapper = fake_pm_mapper(fx->fake);
    } else {
#if VMM_TEST_MAPPER_A64
        /* 48-bit VA: a64pt_va_space gives the same sign-extended halves as
         * 4-level x86_64, one root for both; with VMM_TEST_A64_SEPARATE the
         * architecture's own halves of 2^48, the kernel's in its own root
         * (TTBR1), as mm_va_space_aarch64 describes them. */
        a64pt_config_t ac = {.va_bits = 48, .lpa2 = false, .phys_bits = 40, .frames = fx->fa,
                             .kernel_root_separate = VMM_TEST_A64_SEPARATE};
        cr_assert_eq(a64pt_init(&fx->a64, &ac), MM_OK);
        fx->mapper = a64pt_page_mapper(&fx->a64);
#elif VMM_TEST_HAVE_X86PT
        x86pt_config_t xc = {
            .levels = 4, .phys_bits = 40, .nx = true, .pages_1g = true, .frames = fx->fa};
        cr_assert_eq(x86pt_init(&fx->x86, &xc), MM_OK);
        fx->mapper = x86pt_page_mapper(&fx->x86);
#else
        cr_assert_fail("no real mapper built");
#endif
    }
    if (kind == FX_FAKE && opts != NULL && opts->space != NULL)
        fx->fake->space = *opts->space;
    /* The layout for the mapper's own address space, as a kernel does. */
    mm_va_space_t space;
    fx->mapper.ops->va_space(fx->mapper.ctx, &space);
    layout_params_t lp = {.hhdm_base = FX_HHDM_BASE, .phys_top = FX_SIM_BYTES, .space = &space};
    if (opts != NULL && opts->hhdm_base != 0)
        lp.hhdm_base = opts->hhdm_base;
    cr_assert_eq(layout_compute(&lp, &fx->layout), MM_OK);
#if VMM_TEST_MAPPER_A64
    if (kind != FX_FAKE)
        cr_assert_eq(a64pt_kernel_root_create(&fx->a64, &fx->kroot), MM_OK);
    else
#endif
        cr_assert_eq(fx->mapper.ops->root_create(fx->mapper.ctx, 0, &fx->kroot), MM_OK);

    fx->cfg = (vmm_config_t){
        .layout = &fx->layout,
        .kernel_root = fx->kroot,
        .mapper = fx->mapper,
        .frames = fx->fa,
        .asids = FX_ASIDS,
    };
    if (opts != NULL) {
        if (opts->asids != 0)
            fx->cfg.asids = opts->asids;
        if (opts->no_asids)
            fx->cfg.asids = 0;
        fx->cfg.stack_size = opts->stack_size;
        fx->cfg.heap_slots = opts->heap_slots;
        fx->cfg.heap_slot_count = opts->heap_slot_count;
        fx->cfg.stack_slots = opts->stack_slots;
        fx->cfg.stack_slot_count = opts->stack_slot_count;
        fx->cfg.mmio_slots = opts->mmio_slots;
        fx->cfg.mmio_slot_count = opts->mmio_slot_count;
    }
    if (!no_vmm) {
        mm_status_t st = vmm_init(&fx->vmm, &fx->cfg);
        cr_assert_eq(st, MM_OK, "vmm_init: %s", mm_status_str(st));
    }
}

uint64_t fx_free_frames(fx_t *fx)
{
#if VMM_TEST_HAVE_PMM
    pmm_stats_t s;
    cr_assert_eq(pmm_get_stats(&fx->pmm, &s), MM_OK);
    return s.free_frames;
#else
    return fx->pool.frames - fx->pool.live;
#endif
}

/* ---- inspection --------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (i * 8)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

#if FX_HAVE_REAL
typedef struct walk_acc {
    uint64_t hash;
    size_t leaves;
} walk_acc_t;

/* The real mapper's walker, check and leaf type under one name each. */
#if VMM_TEST_MAPPER_A64
#define REAL(fx) (&(fx)->a64)
#define real_leaf_t a64pt_leaf_t
#define real_check_info_t a64pt_check_info_t
#define real_walk a64pt_walk
#define real_check a64pt_check
#else
#define REAL(fx) (&(fx)->x86)
#define real_leaf_t x86pt_leaf_t
#define real_check_info_t x86pt_check_info_t
#define real_walk x86pt_walk
#define real_check x86pt_check
#endif

static bool walk_cb(void *arg, const real_leaf_t *leaf)
{
    walk_acc_t *a = arg;
    a->hash = mix(mix(mix(mix(a->hash, leaf->va), leaf->pa), (uint64_t)leaf->size), leaf->entry);
    a->leaves++;
    return true;
}
#endif

uint64_t fx_digest(fx_t *fx, mm_paddr_t root)
{
    if (fx->kind == FX_FAKE)
        return fake_pm_digest(fx->fake, root);
#if FX_HAVE_REAL
    walk_acc_t a = {0xcbf29ce484222325ull, 0};
    cr_assert_eq(real_walk(REAL(fx), root, 0, UINT64_MAX, walk_cb, &a), MM_OK);
    real_check_info_t info;
    mm_status_t st = real_check(REAL(fx), root, &info);
    cr_assert_eq(st, MM_OK, "mapper check: %s", info.problem ? info.problem : "");
    return mix(mix(mix(a.hash, a.leaves), info.user_tables), info.kernel_tables);
#else
    return 0;
#endif
}

size_t fx_leaf_count(fx_t *fx, mm_paddr_t root)
{
    if (fx->kind == FX_FAKE)
        return fake_pm_leaf_count(fx->fake, root);
#if FX_HAVE_REAL
    walk_acc_t a = {0, 0};
    /* A user root's own leaves: its half of the space. */
    mm_vaddr_t user_end = FX_KERNEL_ROOT_SEPARATE ? 1ull << 48 : 1ull << 47;
    mm_vaddr_t last = root == fx->kroot ? UINT64_MAX : user_end - 1;
    cr_assert_eq(real_walk(REAL(fx), root, 0, last, walk_cb, &a), MM_OK);
    return a.leaves;
#else
    return 0;
#endif
}

mm_status_t fx_translate(fx_t *fx, mm_paddr_t root, mm_vaddr_t va, mm_translation_t *out)
{
    return mm_pm_translate(&fx->mapper, root, va, out);
}

void fx_snapshot(fx_t *fx, fx_snapshot_t *s)
{
    memset(s, 0, sizeof(*s));
    s->free_frames = fx_free_frames(fx);
    s->kernel_digest = fx_digest(fx, fx->kroot);
    s->heap = fx->vmm.heap;
    s->stacks = fx->vmm.stacks;
    s->mmio = fx->vmm.mmio;
    memcpy(s->heap_slots, fx->vmm.heap.ranges, fx->vmm.heap.count * sizeof(vmm_range_t));
    memcpy(s->stack_slots, fx->vmm.stacks.ranges,
           fx->vmm.stacks.count * sizeof(vmm_range_t));
    memcpy(s->mmio_slots, fx->vmm.mmio.ranges, fx->vmm.mmio.count * sizeof(vmm_range_t));
    vmm_stats(&fx->vmm, &s->stats);
}

void fx_assert_unchanged(fx_t *fx, const fx_snapshot_t *s)
{
    fx_snapshot_t now;
    fx_snapshot(fx, &now);
    cr_assert_eq(now.free_frames, s->free_frames, "free frames %llu, were %llu",
                 (unsigned long long)now.free_frames, (unsigned long long)s->free_frames);
    cr_assert_eq(now.kernel_digest, s->kernel_digest, "kernel page tables changed");
    cr_assert_eq(now.heap.watermark, s->heap.watermark, "heap top changed");
    cr_assert_eq(now.heap.count, s->heap.count, "heap free list changed");
    cr_assert_eq(now.heap.free_bytes, s->heap.free_bytes);
    cr_assert_eq(memcmp(now.heap_slots, s->heap_slots, sizeof(now.heap_slots)), 0);
    cr_assert_eq(now.stacks.watermark, s->stacks.watermark, "stack watermark changed");
    cr_assert_eq(now.stacks.count, s->stacks.count, "stack free list changed");
    cr_assert_eq(now.stacks.free_bytes, s->stacks.free_bytes);
    cr_assert_eq(memcmp(now.stack_slots, s->stack_slots, sizeof(now.stack_slots)), 0);
    cr_assert_eq(now.mmio.watermark, s->mmio.watermark, "mmio watermark changed");
    cr_assert_eq(now.mmio.count, s->mmio.count, "mmio free list changed");
    cr_assert_eq(now.mmio.free_bytes, s->mmio.free_bytes);
    cr_assert_eq(memcmp(now.mmio_slots, s->mmio_slots, sizeof(now.mmio_slots)), 0);
    cr_assert_eq(memcmp(&now.stats, &s->stats, sizeof(now.stats)), 0, "vmm stats changed");
}

void fx_assert_sane(fx_t *fx)
{
    cr_assert_eq(test_irq_depth(), 0, "a lock is still held");
    cr_assert_eq(vmm_check(&fx->vmm), MM_OK, "vmm_check");
#if VMM_TEST_HAVE_PMM
    const char *why = NULL;
    cr_assert_eq(pmm_check(&fx->pmm, &why), MM_OK, "pmm_check: %s", why ? why : "");
#endif
#if FX_HAVE_REAL
    if (fx->kind == FX_REAL) {
        real_check_info_t info;
        mm_status_t st = real_check(REAL(fx), fx->kroot, &info);
        cr_assert_eq(st, MM_OK, "mapper check: %s", info.problem ? info.problem : "");
    }
#endif
}

unsigned long fx_fail_each_k(fx_t *fx, fx_op_fn op, void *arg, bool sticky)
{
    for (unsigned long k = 1;; k++) {
        fx_snapshot_t before;
        fx_snapshot(fx, &before);
        fx_fail_at(fx, k, sticky);
        mm_status_t st = op(fx, arg);
        unsigned long failures = fx->fail.failures;
        fx_fail_at(fx, 0, false);
        if (failures == 0) {
            cr_assert_eq(st, MM_OK, "unfailed run: %s", mm_status_str(st));
            fx_assert_sane(fx);
            return k - 1;
        }
        cr_assert_eq(st, MM_ERR_NOMEM, "k=%lu: %s", k, mm_status_str(st));
        fx_assert_unchanged(fx, &before);
        fx_assert_sane(fx);
    }
}
