/* Long random sequences of map/unmap/protect checked against a reference
 * model (a list of mappings) through translate, the walker and the
 * consistency check, with fixed seeds. One program for both mappers: the
 * sequence runs through the page-mapper interface (map, unmap, protect,
 * translate) and a small adapter per mapper (set-up, walk, check, which
 * flags are valid, when protect must break before make). Every 40th
 * operation that fails must leave every frame the mapper owns unchanged. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/a64pt.h>
#include <hadron/mm/hhdm.h>
#include <hadron/mm/x86pt.h>

#include "frame_pool.h"
#include "mm_test.h"

#define SIM_BYTES (64ull << 20)
#define POOL_BASE (1ull << 20)
#define POOL_FRAMES ((size_t)((SIM_BYTES - POOL_BASE) / MM_FRAME_SIZE))
#define KB4 0x1000ull
#define MB2 0x200000ull
#define GB1 0x40000000ull

/* ---- The two mappers behind one adapter ------------------------------- */

typedef struct check_result {
    mm_status_t status;
    size_t user_tables, kernel_tables, leaves;
    const char *problem;
} check_result_t;

typedef bool (*leaf_cb)(void *arg, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                        mm_map_flags_t flags);

typedef struct mapper {
    const char *name;
    unsigned phys_bits;
    bool pages_1g;
    /* Memory types that read back as themselves, picked uniformly. */
    mm_map_flags_t types[5];
    /* Flags the format cannot hold together: a user page is never global,
     * device memory never executable (AArch64). */
    bool user_not_global, device_no_exec;
    /* protect changing these needs one synchronous invalidation. */
    mm_map_flags_t bbm_mask;
    void (*walk)(leaf_cb fn, void *arg);
    check_result_t (*check)(void);
} mapper_t;

static struct {
    frame_pool_t pool;
    mm_paddr_t root;
    mm_page_mapper_t pm;
    mm_tlb_batch_t tlb;
    x86pt_t x86;
    a64pt_t a64;
} E;

static void env_pool(void)
{
    sim_phys_create(SIM_BYTES);
    frame_pool_init(&E.pool, POOL_BASE, POOL_FRAMES);
    mm_tlb_batch_init(&E.tlb);
}

static const mapper_t *x86_setup(unsigned levels, bool pages_1g);
static const mapper_t *a64_setup(unsigned va_bits, bool lpa2);
static const mapper_t *a64_setup_separate(bool kernel);

typedef struct walk_fwd {
    leaf_cb fn;
    void *arg;
} walk_fwd_t;

static bool x86_leaf(void *arg, const x86pt_leaf_t *l)
{
    walk_fwd_t *w = arg;
    return w->fn(w->arg, l->va, l->pa, l->size, l->flags);
}

static void x86_walk(leaf_cb fn, void *arg)
{
    walk_fwd_t w = {fn, arg};
    cr_assert_eq(x86pt_walk(&E.x86, E.root, 0, UINT64_MAX, x86_leaf, &w), MM_OK);
}

static check_result_t x86_check(void)
{
    x86pt_check_info_t i;
    mm_status_t st = x86pt_check(&E.x86, E.root, &i);
    return (check_result_t){st, i.user_tables, i.kernel_tables, i.leaves, i.problem};
}

static bool a64_leaf(void *arg, const a64pt_leaf_t *l)
{
    walk_fwd_t *w = arg;
    return w->fn(w->arg, l->va, l->pa, l->size, l->flags);
}

static void a64_walk(leaf_cb fn, void *arg)
{
    walk_fwd_t w = {fn, arg};
    cr_assert_eq(a64pt_walk(&E.a64, E.root, 0, UINT64_MAX, a64_leaf, &w), MM_OK);
}

static check_result_t a64_check(void)
{
    a64pt_check_info_t i;
    mm_status_t st = a64pt_check(&E.a64, E.root, &i);
    return (check_result_t){st, i.user_tables, i.kernel_tables, i.leaves, i.problem};
}

static mapper_t x86_mapper = {
    .name = "x86pt",
    .phys_bits = 46,
    .types = {MM_MAP_WRITE_BACK, MM_MAP_WRITE_BACK, MM_MAP_DEVICE, MM_MAP_WRITE_THROUGH,
              MM_MAP_WRITE_COMBINING},
    .walk = x86_walk,
    .check = x86_check,
};

/* Write-combining reads back as normal NC on AArch64 (test_a64_encoding.c). */
static mapper_t a64_mapper = {
    .name = "a64pt",
    .pages_1g = true,
    .types = {MM_MAP_WRITE_BACK, MM_MAP_WRITE_BACK, MM_MAP_DEVICE, MM_MAP_WRITE_THROUGH,
              MM_MAP_NORMAL_NC},
    .user_not_global = true,
    .device_no_exec = true,
    .bbm_mask = MM_MAP_MEM_MASK | MM_MAP_GLOBAL,
    .walk = a64_walk,
    .check = a64_check,
};

static const mapper_t *x86_setup(unsigned levels, bool pages_1g)
{
    env_pool();
    x86pt_config_t c = {.levels = levels, .phys_bits = x86_mapper.phys_bits, .nx = true,
                        .pages_1g = pages_1g, .frames = frame_pool_allocator(&E.pool)};
    cr_assert_eq(x86pt_init(&E.x86, &c), MM_OK);
    cr_assert_eq(x86pt_root_create(&E.x86, 0, &E.root), MM_OK);
    E.pm = x86pt_page_mapper(&E.x86);
    x86_mapper.pages_1g = pages_1g;
    return &x86_mapper;
}

static const mapper_t *a64_setup(unsigned va_bits, bool lpa2)
{
    env_pool();
    a64_mapper.phys_bits = lpa2 ? 52 : 48;
    a64pt_config_t c = {.va_bits = va_bits, .lpa2 = lpa2, .phys_bits = a64_mapper.phys_bits,
                        .frames = frame_pool_allocator(&E.pool)};
    cr_assert_eq(a64pt_init(&E.a64, &c), MM_OK);
    cr_assert_eq(a64pt_root_create(&E.a64, 0, &E.root), MM_OK);
    E.pm = a64pt_page_mapper(&E.a64);
    return &a64_mapper;
}

/* A separate kernel root (TTBR1): E.root is the kernel root (`kernel`) or
 * a user root. Either holds one half only, and neither pins tables. */
static const mapper_t *a64_setup_separate(bool kernel)
{
    env_pool();
    a64_mapper.phys_bits = 48;
    a64pt_config_t c = {.va_bits = 48, .phys_bits = 48, .kernel_root_separate = true,
                        .frames = frame_pool_allocator(&E.pool)};
    cr_assert_eq(a64pt_init(&E.a64, &c), MM_OK);
    if (kernel)
        cr_assert_eq(a64pt_kernel_root_create(&E.a64, &E.root), MM_OK);
    else
        cr_assert_eq(a64pt_root_create(&E.a64, 0, &E.root), MM_OK);
    E.pm = a64pt_page_mapper(&E.a64);
    return &a64_mapper;
}

/* ---- Randomness, snapshots -------------------------------------------- */

static uint64_t rnd_state;

static uint64_t rnd(void)
{
    uint64_t x = rnd_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rnd_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Every frame the mapper holds (the pool's allocated frames: the tables
 * and nothing else here) and the pool's counters. Independent of the
 * format, so it also sees a table leaked or changed off the hierarchy. */
typedef struct snapshot {
    size_t n;
    mm_paddr_t *pa;
    uint8_t *data;
    uint64_t net, free_errors;
} snapshot_t;

static snapshot_t *snap_take(void)
{
    snapshot_t *s = calloc(1, sizeof *s);
    cr_assert(s);
    s->pa = malloc(E.pool.live * sizeof *s->pa);
    s->data = malloc(E.pool.live * MM_FRAME_SIZE);
    cr_assert(s->pa && s->data);
    for (size_t i = 0; i < E.pool.frames; i++) {
        if (!E.pool.used[i])
            continue;
        cr_assert_lt(s->n, E.pool.live);
        mm_paddr_t pa = E.pool.base + i * MM_FRAME_SIZE;
        s->pa[s->n] = pa;
        memcpy(s->data + s->n * MM_FRAME_SIZE, hhdm_phys_to_virt(pa), MM_FRAME_SIZE);
        s->n++;
    }
    s->net = E.pool.frames_allocated - E.pool.frames_freed;
    s->free_errors = E.pool.free_errors;
    return s;
}

static void snap_discard(snapshot_t *s)
{
    free(s->pa);
    free(s->data);
    free(s);
}

static void snap_assert_same(snapshot_t *s, const char *what)
{
    snapshot_t *now = snap_take();
    cr_assert_eq(now->n, s->n, "%s: %zu frames held, %zu before", what, now->n, s->n);
    for (size_t i = 0; i < s->n; i++) {
        cr_assert_eq(now->pa[i], s->pa[i], "%s: frame %zu changed owner", what, i);
        cr_assert(memcmp(now->data + i * MM_FRAME_SIZE, s->data + i * MM_FRAME_SIZE,
                         MM_FRAME_SIZE) == 0,
                  "%s: table at %#llx changed", what, (unsigned long long)s->pa[i]);
    }
    cr_assert_eq(now->net, s->net, "%s: frames allocated or freed", what);
    cr_assert_eq(now->free_errors, s->free_errors);
    snap_discard(now);
    snap_discard(s);
}

/* ---- The reference model ---------------------------------------------- */

typedef struct mapping {
    mm_vaddr_t va;
    mm_paddr_t pa;
    mm_page_size_t size;
    mm_map_flags_t flags;
} mapping_t;

#define MAXMAP 4096
static mapping_t model[MAXMAP];
static size_t nmodel;

static uint64_t bytes_of(mm_page_size_t s)
{
    return 1ull << s;
}

/* Index of the mapping containing va, or -1. */
static long model_find(mm_vaddr_t va)
{
    for (size_t i = 0; i < nmodel; i++)
        if (va >= model[i].va && va - model[i].va < bytes_of(model[i].size))
            return (long)i;
    return -1;
}

static bool model_overlaps(mm_vaddr_t va, uint64_t len)
{
    for (size_t i = 0; i < nmodel; i++)
        if (model[i].va < va + len && va < model[i].va + bytes_of(model[i].size))
            return true;
    return false;
}

static int cmp_mapping(const void *a, const void *b)
{
    const mapping_t *x = a, *y = b;
    return x->va < y->va ? -1 : x->va > y->va;
}

/* What unmap/protect of (va, size) must return, per the model. */
static mm_status_t model_expect_existing(mm_vaddr_t va, mm_page_size_t size, long *idx)
{
    long i = model_find(va);
    *idx = i;
    if (i >= 0 && model[i].va == va && model[i].size == size)
        return MM_OK;
    if (i >= 0 || model_overlaps(va, bytes_of(size)))
        return MM_ERR_SIZE_MISMATCH;
    return MM_ERR_NOT_MAPPED;
}

/* Clustered addresses so pages of different sizes collide often: one of 4
 * GiB slots, one of 8 2 MiB slots in it, one of 16 4 KiB pages in that. */
static mm_vaddr_t pick_va(const mm_vaddr_t *bases, mm_page_size_t size)
{
    mm_vaddr_t va = bases[rnd() % 2] + (rnd() % 4) * GB1;
    if (size != MM_PAGE_1G)
        va += (rnd() % 8) * MB2;
    if (size == MM_PAGE_4K)
        va += (rnd() % 16) * KB4;
    return va;
}

static mm_page_size_t pick_size(const mapper_t *mp)
{
    unsigned r = rnd() % 100;
    if (r < 70)
        return MM_PAGE_4K;
    if (r < 95 || !mp->pages_1g)
        return MM_PAGE_2M;
    return MM_PAGE_1G;
}

/* Valid flags only (the error paths have their own tests). */
static mm_map_flags_t pick_flags(const mapper_t *mp, mm_vaddr_t va)
{
    mm_map_flags_t f = (mm_map_flags_t)(rnd() & (MM_MAP_WRITE | MM_MAP_EXEC | MM_MAP_GLOBAL));
    if ((int64_t)va >= 0 && (rnd() & 1)) {
        if (mp->user_not_global)
            f &= ~(mm_map_flags_t)MM_MAP_GLOBAL;
        f |= MM_MAP_USER;
    }
    f |= mp->types[rnd() % 5];
    if (mp->device_no_exec && mm_map_mem_type(f) == MM_MEM_DEVICE)
        f &= ~(mm_map_flags_t)MM_MAP_EXEC;
    return f;
}

typedef struct walk_check {
    size_t i;
    bool ok;
} walk_check_t;

static bool walk_cmp(void *arg, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                     mm_map_flags_t flags)
{
    walk_check_t *w = arg;
    if (w->i >= nmodel || model[w->i].va != va || model[w->i].pa != pa ||
        model[w->i].size != size || model[w->i].flags != flags) {
        w->ok = false;
        return false;
    }
    w->i++;
    return true;
}

static void assert_consistent(const mapper_t *mp)
{
    cr_assert_eq(E.tlb.deferred_count, 0, "flush E.tlb first");
    check_result_t c = mp->check();
    cr_assert_eq(c.status, MM_OK, "%s check: %s", mp->name, c.problem ? c.problem : "-");
    cr_assert_eq(E.pool.live, 1 + c.user_tables + c.kernel_tables,
                 "pool has %zu frames out, hierarchy has %zu tables + root", E.pool.live,
                 c.user_tables + c.kernel_tables);
    cr_assert_eq(E.pool.free_errors, 0);
}

static void verify_all(const mapper_t *mp)
{
    /* Tables unmap emptied return to the pool only now. */
    mm_tlb_batch_flush(&E.tlb);
    qsort(model, nmodel, sizeof model[0], cmp_mapping);
    walk_check_t w = {0, true};
    mp->walk(walk_cmp, &w);
    cr_assert(w.ok && w.i == nmodel, "%s: walker disagrees with the model at %zu of %zu",
              mp->name, w.i, nmodel);
    for (size_t i = 0; i < nmodel; i++) {
        mm_translation_t tr;
        uint64_t off = rnd() & (bytes_of(model[i].size) - 1);
        cr_assert_eq(mm_pm_translate(&E.pm, E.root, model[i].va + off, &tr), MM_OK);
        cr_assert_eq(tr.pa, model[i].pa + off);
        cr_assert_eq(tr.flags, model[i].flags);
    }
    assert_consistent(mp);
}

static void run_random(const mapper_t *mp, uint64_t seed, unsigned ops, const mm_vaddr_t *bases)
{
    rnd_state = seed;
    nmodel = 0;
    for (unsigned op = 0; op < ops; op++) {
        /* Alternate growing and shrinking phases so tables are also freed
         * and re-created mid-sequence, not only at teardown. */
        bool grow = (op / 1500) % 2 == 0;
        unsigned kind = rnd() % 10;
        if (!grow)
            kind = kind < 2 ? kind : kind < 8 ? 5 + (kind % 3) : 8;
        snapshot_t *snap = op % 40 == 0 ? snap_take() : NULL;
        mm_status_t result = MM_OK;
        mm_page_size_t size = pick_size(mp);
        mm_vaddr_t va = pick_va(bases, size);
        if (kind < 5) {
            mm_paddr_t pa = (rnd() % (1ull << (mp->phys_bits - size))) << size;
            mm_map_flags_t flags = pick_flags(mp, va);
            mm_status_t want = model_overlaps(va, bytes_of(size)) ? MM_ERR_EXISTS : MM_OK;
            mm_status_t got = mm_pm_map(&E.pm, E.root, va, pa, size, flags, &E.tlb);
            result = got;
            cr_assert_eq(got, want, "%s op %u map %#llx size %d: %s, want %s", mp->name, op,
                         (unsigned long long)va, size, mm_status_str(got), mm_status_str(want));
            if (got == MM_OK) {
                cr_assert_lt(nmodel, MAXMAP);
                model[nmodel++] = (mapping_t){va, pa, size, flags};
            }
        } else {
            /* Half the time aim at an existing mapping. */
            if (nmodel != 0 && (rnd() & 1)) {
                mapping_t *t = &model[rnd() % nmodel];
                va = t->va;
                size = t->size;
            }
            long idx;
            mm_status_t want = model_expect_existing(va, size, &idx);
            if (kind < 8) {
                mm_paddr_t pa = 0;
                mm_status_t got = mm_pm_unmap(&E.pm, E.root, va, size, &pa, &E.tlb);
                result = got;
                cr_assert_eq(got, want, "%s op %u unmap %#llx size %d: %s, want %s", mp->name,
                             op, (unsigned long long)va, size, mm_status_str(got),
                             mm_status_str(want));
                if (got == MM_OK) {
                    cr_assert_eq(pa, model[idx].pa);
                    model[idx] = model[--nmodel];
                }
            } else {
                mm_map_flags_t flags = pick_flags(mp, va);
                if (mp->user_not_global && idx >= 0 && (model[idx].flags & MM_MAP_USER))
                    flags = (flags & ~(mm_map_flags_t)MM_MAP_GLOBAL) | MM_MAP_USER;
                int calls = test_tlb.page_calls + test_tlb.all_calls;
                mm_status_t got = mm_pm_protect(&E.pm, E.root, va, size, flags, &E.tlb);
                result = got;
                cr_assert_eq(got, want, "%s op %u protect %#llx: %s, want %s", mp->name, op,
                             (unsigned long long)va, mm_status_str(got), mm_status_str(want));
                if (got == MM_OK) {
                    bool need = ((model[idx].flags ^ flags) & mp->bbm_mask) != 0;
                    cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls - calls, need ? 1 : 0,
                                 "%s op %u: a synchronous invalidation exactly when the format "
                                 "needs break-before-make",
                                 mp->name, op);
                    model[idx].flags = flags;
                }
            }
        }
        if (snap != NULL && result != MM_OK)
            snap_assert_same(snap, "random failure");
        else if (snap != NULL)
            snap_discard(snap);
        if (E.tlb.flush_all || E.tlb.count > 24)
            mm_tlb_batch_flush(&E.tlb);
        if (op % 500 == 499)
            verify_all(mp);
    }
    verify_all(mp);
    /* Tear down through the model: every table must come back. */
    while (nmodel != 0) {
        mapping_t t = model[--nmodel];
        cr_assert_eq(mm_pm_unmap(&E.pm, E.root, t.va, t.size, NULL, &E.tlb), MM_OK);
    }
    mm_tlb_batch_flush(&E.tlb);
    check_result_t c = mp->check();
    cr_assert_eq(c.status, MM_OK);
    cr_assert_eq(c.user_tables, 0);
    cr_assert_eq(c.leaves, 0);
    cr_assert_eq(E.pool.live, 1 + c.kernel_tables, "only the root and pinned tables remain");
    cr_assert_eq(E.pool.frames_allocated - E.pool.frames_freed, E.pool.live);
}

Test(paging_random, x86_four_level_sequence, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x00007f0000000000ull, 0xffffc00000000000ull};
    run_random(x86_setup(4, true), 0x1234567, 12000, bases);
}

Test(paging_random, x86_four_level_without_1g_pages, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x0000000040000000ull, 0xffff800000000000ull};
    run_random(x86_setup(4, false), 0xabcdef, 6000, bases);
}

Test(paging_random, x86_five_level_sequence, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x00ff000000000000ull, 0xff00000000000000ull};
    run_random(x86_setup(5, true), 0x5eed5, 12000, bases);
}

Test(paging_random, a64_va48_sequence, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x00007f0000000000ull, 0xffffc00000000000ull};
    run_random(a64_setup(48, false), 0x1234567, 12000, bases);
}

Test(paging_random, a64_va48_lpa2_format, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x0000000040000000ull, 0xffff800000000000ull};
    run_random(a64_setup(48, true), 0xabcdef, 6000, bases);
}

Test(paging_random, a64_va52_lpa2_sequence, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x0007f00000000000ull, 0xfff8000000000000ull};
    run_random(a64_setup(52, true), 0x5eed5, 12000, bases);
}

/* Both bases in the root's own half; at teardown every table below the
 * root has been freed (check: no kernel tables either). */
Test(paging_random, a64_separate_kernel_root_sequence, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0xffff800000000000ull, 0xffffc00000000000ull};
    run_random(a64_setup_separate(true), 0x7151, 6000, bases);
    cr_assert_eq(E.pool.live, 1, "a separate kernel root pins no tables");
}

Test(paging_random, a64_separate_user_root_sequence, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x0000000040000000ull, 0x0000ff0000000000ull};
    run_random(a64_setup_separate(false), 0x7152, 6000, bases);
}
