#include <criterion/criterion.h>

#include <hadron/mm/tlb.h>

#include "mm_test.h"

Test(tlb, empty_batch_makes_no_call)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    cr_assert(mm_tlb_batch_empty(&b));
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls + test_tlb.all_calls, 0);
}

Test(tlb, sixteen_pages_one_call)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    for (int i = 0; i < 16; i++)
        mm_tlb_batch_add(&b, 0xffffc00000000000ull + (uint64_t)i * 4096 + 12, MM_PAGE_4K, false);
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 1);
    cr_assert_eq(test_tlb.last_count, 16);
    cr_assert_eq(test_tlb.last_pages[3], 0xffffc00000003000ull, "recorded page base");
    cr_assert(mm_tlb_batch_empty(&b), "flush empties the batch");
}

Test(tlb, duplicates_and_huge_pages_take_one_slot)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    mm_tlb_batch_add(&b, 0x200000, MM_PAGE_2M, false);
    mm_tlb_batch_add(&b, 0x3ff000, MM_PAGE_2M, false);
    mm_tlb_batch_add(&b, 0x1000, MM_PAGE_4K, false);
    mm_tlb_batch_add(&b, 0x1000, MM_PAGE_4K, false);
    cr_assert_eq(b.count, 2);
}

Test(tlb, overflow_becomes_one_full_flush_with_globals)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    for (unsigned i = 0; i <= MM_TLB_BATCH_MAX; i++)
        mm_tlb_batch_add(&b, (uint64_t)i << 12, MM_PAGE_4K, i == 5);
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 0);
    cr_assert_eq(test_tlb.all_calls, 1);
    cr_assert(test_tlb.last_all_global);
}

/* Deferred frees: a fake allocator logs each free with the number of
 * TLB-hook calls made before it, so the tests see the order. */

typedef struct fake_fa {
    int id;
    mm_status_t answer; /* what free returns */
} fake_fa_t;

typedef struct free_rec {
    int allocator;
    mm_paddr_t frame;
    int hook_calls; /* TLB-hook calls made before this free */
} free_rec_t;

static free_rec_t frees[64];
static int nfrees;

static int hook_calls(void)
{
    return test_tlb.page_calls + test_tlb.all_calls;
}

static mm_status_t fake_alloc(void *ctx, size_t count, size_t align, mm_paddr_t limit,
                              mm_paddr_t *out)
{
    (void)ctx;
    (void)count;
    (void)align;
    (void)limit;
    (void)out;
    return MM_ERR_NOMEM;
}

static mm_status_t fake_free(void *ctx, mm_paddr_t base, size_t count)
{
    const fake_fa_t *f = ctx;
    cr_assert_eq(count, 1);
    cr_assert_lt(nfrees, 64);
    frees[nfrees++] = (free_rec_t){f->id, base, hook_calls()};
    return f->answer;
}

static fake_fa_t fa1_ctx = {1, MM_OK}, fa2_ctx = {2, MM_OK};
static const mm_frame_allocator_t fa1 = {&fa1_ctx, fake_alloc, fake_free};
static const mm_frame_allocator_t fa2 = {&fa2_ctx, fake_alloc, fake_free};

#define FRAME(i) (0x100000ull + (mm_paddr_t)(i) * 0x1000)

Test(tlb, init_macro_and_function_agree_on_an_empty_batch)
{
    mm_tlb_batch_t a = MM_TLB_BATCH_INIT;
    cr_assert_eq(a.deferred_count, 0);
    cr_assert(mm_tlb_batch_empty(&a));
    mm_tlb_batch_t b;
    __builtin_memset(&b, 0x5a, sizeof b);
    mm_tlb_batch_init(&b);
    cr_assert(mm_tlb_batch_empty(&b));
    cr_assert_eq(b.deferred_count, 0);
    mm_tlb_batch_defer_free(&b, &fa1, FRAME(0));
    cr_assert_not(mm_tlb_batch_empty(&b), "a pending free is not empty: dropping it leaks");
}

Test(tlb, deferred_frees_happen_at_the_flush_after_the_invalidation)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    mm_tlb_batch_add(&b, 0x7000, MM_PAGE_4K, false);
    mm_tlb_batch_defer_free(&b, &fa1, FRAME(1));
    mm_tlb_batch_defer_free(&b, &fa2, FRAME(2));
    mm_tlb_batch_add(&b, 0x9000, MM_PAGE_4K, false);
    mm_tlb_batch_defer_free(&b, &fa1, FRAME(3));
    cr_assert_eq(nfrees, 0, "nothing is freed before the flush");
    cr_assert_eq(hook_calls(), 0);
    cr_assert_eq(b.deferred_count, 3);

    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 1, "exactly one hook call");
    cr_assert_eq(test_tlb.all_calls, 0);
    cr_assert_eq(test_tlb.last_count, 2);
    cr_assert_eq(nfrees, 3);
    const free_rec_t want[3] = {{1, FRAME(1), 1}, {2, FRAME(2), 1}, {1, FRAME(3), 1}};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(frees[i].allocator, want[i].allocator, "free %d to its own allocator", i);
        cr_assert_eq(frees[i].frame, want[i].frame, "free %d in recording order", i);
        cr_assert_eq(frees[i].hook_calls, 1, "free %d after the invalidation", i);
    }
    cr_assert(mm_tlb_batch_empty(&b));
    mm_tlb_batch_flush(&b);
    cr_assert_eq(hook_calls(), 1, "an emptied batch makes no further call");
    cr_assert_eq(nfrees, 3, "and frees nothing twice");
}

Test(tlb, deferred_frees_without_pages_still_invalidate_in_full)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    mm_tlb_batch_defer_free(&b, &fa1, FRAME(7));
    cr_assert_not(mm_tlb_batch_empty(&b));
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 0);
    cr_assert_eq(test_tlb.all_calls, 1, "a freed table's cached pointers must go");
    cr_assert_not(test_tlb.last_all_global, "paging-structure caches hold no global entries");
    cr_assert_eq(nfrees, 1);
    cr_assert_eq(frees[0].hook_calls, 1);
}

Test(tlb, deferred_frees_with_an_overflowed_page_list_use_the_full_flush)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    for (unsigned i = 0; i <= MM_TLB_BATCH_MAX; i++)
        mm_tlb_batch_add(&b, (uint64_t)i << 12, MM_PAGE_4K, i == 3);
    mm_tlb_batch_defer_free(&b, &fa2, FRAME(9));
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.all_calls, 1);
    cr_assert_eq(test_tlb.page_calls, 0);
    cr_assert(test_tlb.last_all_global);
    cr_assert_eq(nfrees, 1);
    cr_assert_eq(frees[0].hook_calls, 1);
}

Test(tlb, full_deferred_list_flushes_early_and_keeps_the_page_records)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    mm_tlb_batch_add(&b, 0x1000, MM_PAGE_4K, false);
    mm_tlb_batch_add(&b, 0x400000, MM_PAGE_2M, true);
    for (unsigned i = 0; i < MM_TLB_BATCH_DEFER_MAX; i++)
        mm_tlb_batch_defer_free(&b, &fa1, FRAME(i));
    cr_assert_eq(hook_calls(), 0, "full, not yet overflowing");
    cr_assert_eq(nfrees, 0);

    mm_tlb_batch_defer_free(&b, &fa2, FRAME(100));
    cr_assert_eq(test_tlb.page_calls, 1, "one early hook call");
    cr_assert_eq(test_tlb.all_calls, 0);
    cr_assert_eq(test_tlb.last_count, 2);
    cr_assert_eq(nfrees, (int)MM_TLB_BATCH_DEFER_MAX, "the earlier frees went after it");
    for (int i = 0; i < nfrees; i++) {
        cr_assert_eq(frees[i].frame, FRAME(i));
        cr_assert_eq(frees[i].hook_calls, 1);
    }
    cr_assert_eq(b.deferred_count, 1, "the new frame is recorded, not freed");
    cr_assert_eq(b.deferred[0].frame, FRAME(100));
    cr_assert_eq(b.count, 2, "page records kept: they may cover the new frame");
    cr_assert(b.global);

    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 2);
    cr_assert_eq(test_tlb.last_count, 2);
    cr_assert_eq(test_tlb.last_pages[1], 0x400000);
    cr_assert_eq(nfrees, (int)MM_TLB_BATCH_DEFER_MAX + 1);
    cr_assert_eq(frees[nfrees - 1].allocator, 2);
    cr_assert_eq(frees[nfrees - 1].frame, FRAME(100));
    cr_assert_eq(frees[nfrees - 1].hook_calls, 2, "after the second invalidation");
    cr_assert(mm_tlb_batch_empty(&b));
}

Test(tlb, early_flush_without_pages_is_a_full_flush_each_time)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    for (unsigned i = 0; i < 2 * MM_TLB_BATCH_DEFER_MAX + 1; i++)
        mm_tlb_batch_defer_free(&b, &fa1, FRAME(i));
    cr_assert_eq(test_tlb.all_calls, 2, "two early flushes");
    cr_assert_eq(test_tlb.page_calls, 0);
    cr_assert_eq(nfrees, 2 * (int)MM_TLB_BATCH_DEFER_MAX);
    for (int i = 0; i < nfrees; i++)
        cr_assert_eq(frees[i].hook_calls, i < (int)MM_TLB_BATCH_DEFER_MAX ? 1 : 2);
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.all_calls, 3);
    cr_assert_eq(nfrees, 2 * (int)MM_TLB_BATCH_DEFER_MAX + 1);
    cr_assert_eq(frees[nfrees - 1].hook_calls, 3);
}

#if HADRON_MM_ASSERTIONS
Test(tlb, a_refused_deferred_free_is_an_assertion)
{
    static fake_fa_t bad_ctx = {3, MM_ERR_DOUBLE_FREE};
    static const mm_frame_allocator_t bad = {&bad_ctx, fake_alloc, fake_free};
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    mm_tlb_batch_add(&b, 0x1000, MM_PAGE_4K, false);
    mm_tlb_batch_defer_free(&b, &bad, FRAME(1));
    cr_assert(TEST_CATCH_PANIC(mm_tlb_batch_flush(&b)));
    cr_assert_eq(test_panics.count, 1);
    cr_assert_eq(test_tlb.page_calls, 1, "the invalidation came first");
}
#endif

/* Identities: every hook call of a batch names the batch's identity; a
 * flush keeps it, so a batch serves one address space for its lifetime. */
Test(tlb, the_batch_identity_reaches_both_hooks_and_survives_the_flush)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT_ASID(7);
    cr_assert_eq(b.asid, 7);
    mm_tlb_batch_add(&b, 0x5000, MM_PAGE_4K, false);
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.page_calls, 1);
    cr_assert_eq(test_tlb.last_pages_asid, 7);
    cr_assert_eq(b.asid, 7, "the flush keeps the identity");
    cr_assert(mm_tlb_batch_empty(&b));

    for (unsigned i = 0; i <= MM_TLB_BATCH_MAX; i++)
        mm_tlb_batch_add(&b, 0x100000 + (uint64_t)i * 4096, MM_PAGE_4K, false);
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.all_calls, 1, "overflow: one full flush");
    cr_assert_eq(test_tlb.last_all_asid, 7);
    cr_assert_not(test_tlb.last_all_global);

    /* Deferred frees only: the full flush, for the batch's identity. */
    mm_tlb_batch_init_asid(&b, 9);
    mm_tlb_batch_defer_free(&b, &fa1, FRAME(4));
    mm_tlb_batch_flush(&b);
    cr_assert_eq(test_tlb.all_calls, 2);
    cr_assert_eq(test_tlb.last_all_asid, 9);

    /* The early flush of a full deferred list, too. */
    for (unsigned i = 0; i <= MM_TLB_BATCH_DEFER_MAX; i++)
        mm_tlb_batch_defer_free(&b, &fa1, FRAME(10 + i));
    cr_assert_eq(test_tlb.all_calls, 3, "early flush");
    cr_assert_eq(test_tlb.last_all_asid, 9);
    mm_tlb_batch_flush(&b);

    /* init (and the plain macro) mean the kernel's identity. */
    mm_tlb_batch_init(&b);
    cr_assert_eq(b.asid, MM_ASID_KERNEL);
    mm_tlb_batch_t k = MM_TLB_BATCH_INIT;
    cr_assert_eq(k.asid, MM_ASID_KERNEL);
    mm_tlb_batch_add(&k, 0xffffc00000000000ull, MM_PAGE_4K, true);
    mm_tlb_batch_flush(&k);
    cr_assert_eq(test_tlb.last_pages_asid, MM_ASID_KERNEL);
}

/* An empty batch of any identity makes no hook call at all (page_mapper.h:
 * a change that recorded nothing costs the kernel nothing). */
Test(tlb, an_empty_batch_of_any_identity_makes_no_call)
{
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT_ASID(3);
    mm_tlb_batch_flush(&b);
    mm_tlb_batch_init_asid(&b, 4095);
    mm_tlb_batch_flush(&b);
    mm_tlb_batch_flush(&b);
    cr_assert_eq(hook_calls(), 0);
    cr_assert_eq(test_tlb.switches + test_tlb.retires, 0);
}
