/* Long random sequences of map/unmap/protect on the AArch64 mapper checked
 * against a reference model (a list of mappings) through translate, the
 * walker and the consistency check, with fixed seeds. Every protect that
 * changes the memory type or the global bit must have made exactly one
 * synchronous invalidation (break-before-make), and none otherwise. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "a64_test.h"

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

static mm_page_size_t pick_size(void)
{
    unsigned r = rnd() % 100;
    if (r < 70)
        return MM_PAGE_4K;
    if (r < 95)
        return MM_PAGE_2M;
    return MM_PAGE_1G;
}

/* Valid flags only (the error paths have their own tests): no global user
 * page, no executable device memory. */
static mm_map_flags_t pick_flags(mm_vaddr_t va)
{
    /* Types that read back as themselves (write-combining reads back as
     * normal NC: test_a64_encoding.c). */
    static const mm_map_flags_t cache[] = {MM_MAP_WRITE_BACK, MM_MAP_WRITE_BACK, MM_MAP_DEVICE,
                                           MM_MAP_WRITE_THROUGH, MM_MAP_NORMAL_NC};
    mm_map_flags_t f = (mm_map_flags_t)(rnd() & (MM_MAP_WRITE | MM_MAP_EXEC | MM_MAP_GLOBAL));
    if ((int64_t)va >= 0 && (rnd() & 1))
        f = (f & ~(mm_map_flags_t)MM_MAP_GLOBAL) | MM_MAP_USER;
    f |= cache[rnd() % 5];
    if (mm_map_mem_type(f) == MM_MEM_DEVICE)
        f &= ~(mm_map_flags_t)MM_MAP_EXEC;
    return f;
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

typedef struct walk_check {
    size_t i;
    bool ok;
} walk_check_t;

static bool walk_cmp(void *arg, const a64pt_leaf_t *leaf)
{
    walk_check_t *w = arg;
    if (w->i >= nmodel || model[w->i].va != leaf->va || model[w->i].pa != leaf->pa ||
        model[w->i].size != leaf->size || model[w->i].flags != leaf->flags) {
        w->ok = false;
        return false;
    }
    w->i++;
    return true;
}

static void verify_all(void)
{
    /* Tables unmap emptied return to the pool only now. */
    mm_tlb_batch_flush(&E.tlb);
    qsort(model, nmodel, sizeof model[0], cmp_mapping);
    walk_check_t w = {0, true};
    cr_assert_eq(a64pt_walk(&E.m, E.root, 0, UINT64_MAX, walk_cmp, &w), MM_OK);
    cr_assert(w.ok && w.i == nmodel, "walker disagrees with the model at %zu of %zu", w.i,
              nmodel);
    for (size_t i = 0; i < nmodel; i++) {
        mm_translation_t tr;
        uint64_t off = rnd() & (bytes_of(model[i].size) - 1);
        cr_assert_eq(a64pt_translate(&E.m, E.root, model[i].va + off, &tr), MM_OK);
        cr_assert_eq(tr.pa, model[i].pa + off);
        cr_assert_eq(tr.flags, model[i].flags);
    }
    assert_consistent(E.root, 0);
}

static void run_random(unsigned va_bits, bool lpa2, uint64_t seed, unsigned ops,
                       const mm_vaddr_t *bases)
{
    env_setup(va_bits, lpa2, lpa2 ? 52 : 48);
    rnd_seed(seed);
    nmodel = 0;
    for (unsigned op = 0; op < ops; op++) {
        /* Alternate growing and shrinking phases so tables are also freed
         * and re-created mid-sequence, not only at teardown. */
        bool grow = (op / 1500) % 2 == 0;
        unsigned kind = rnd() % 10;
        if (!grow)
            kind = kind < 2 ? kind : kind < 8 ? 5 + (kind % 3) : 8;
        /* Every 40th operation also proves a failure changed nothing. */
        snapshot_t *snap = op % 40 == 0 ? snap_take(E.root) : NULL;
        mm_status_t result = MM_OK;
        mm_page_size_t size = pick_size();
        mm_vaddr_t va = pick_va(bases, size);
        if (kind < 5) {
            mm_paddr_t pa = (rnd() % (1ull << ((lpa2 ? 52 : 48) - size))) << size;
            mm_map_flags_t flags = pick_flags(va);
            mm_status_t want = model_overlaps(va, bytes_of(size)) ? MM_ERR_EXISTS : MM_OK;
            mm_status_t got = a64pt_map(&E.m, E.root, va, pa, size, flags, &E.tlb);
            result = got;
            cr_assert_eq(got, want, "op %u map %#llx size %d: %s, want %s", op,
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
                mm_status_t got = a64pt_unmap(&E.m, E.root, va, size, &pa, &E.tlb);
                result = got;
                cr_assert_eq(got, want, "op %u unmap %#llx size %d: %s, want %s", op,
                             (unsigned long long)va, size, mm_status_str(got),
                             mm_status_str(want));
                if (got == MM_OK) {
                    cr_assert_eq(pa, model[idx].pa);
                    model[idx] = model[--nmodel];
                }
            } else {
                mm_map_flags_t flags = pick_flags(va);
                if (idx >= 0 && (model[idx].flags & MM_MAP_USER))
                    flags = (flags & ~(mm_map_flags_t)MM_MAP_GLOBAL) | MM_MAP_USER;
                int calls = test_tlb.page_calls + test_tlb.all_calls;
                mm_status_t got = a64pt_protect(&E.m, E.root, va, size, flags, &E.tlb);
                result = got;
                cr_assert_eq(got, want, "op %u protect %#llx: %s, want %s", op,
                             (unsigned long long)va, mm_status_str(got), mm_status_str(want));
                if (got == MM_OK) {
                    const mm_map_flags_t bbm = MM_MAP_MEM_MASK | MM_MAP_GLOBAL;
                    bool need = ((model[idx].flags ^ flags) & bbm) != 0;
                    cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls - calls, need ? 1 : 0,
                                 "op %u: break-before-make exactly when needed", op);
                    model[idx].flags = flags;
                }
            }
        }
        if (snap != NULL && result != MM_OK)
            snap_assert_same(snap, E.root, "random failure");
        else if (snap != NULL)
            snap_discard(snap);
        if (E.tlb.flush_all || E.tlb.count > 24)
            mm_tlb_batch_flush(&E.tlb);
        if (op % 500 == 499)
            verify_all();
    }
    verify_all();
    /* Tear down through the model: every table must come back. */
    while (nmodel != 0) {
        mapping_t t = model[--nmodel];
        cr_assert_eq(a64pt_unmap(&E.m, E.root, t.va, t.size, NULL, &E.tlb), MM_OK);
    }
    mm_tlb_batch_flush(&E.tlb);
    a64pt_check_info_t info;
    cr_assert_eq(a64pt_check(&E.m, E.root, &info), MM_OK);
    cr_assert_eq(info.user_tables, 0);
    cr_assert_eq(info.leaves, 0);
    cr_assert_eq(E.pool.live, 1 + info.kernel_tables, "only the root and pinned tables remain");
    cr_assert_eq(E.pool.frames_allocated - E.pool.frames_freed, E.pool.live);
}

Test(a64_random, va48_sequence, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x00007f0000000000ull, 0xffffc00000000000ull};
    run_random(48, false, 0x1234567, 12000, bases);
}

Test(a64_random, va48_lpa2_format, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x0000000040000000ull, 0xffff800000000000ull};
    run_random(48, true, 0xabcdef, 6000, bases);
}

Test(a64_random, va52_lpa2_sequence, .timeout = 60)
{
    static const mm_vaddr_t bases[2] = {0x0007f00000000000ull, 0xfff8000000000000ull};
    run_random(52, true, 0x5eed5, 12000, bases);
}
