/*
 * kheap per-CPU caches: a freed run slot waits on its CPU for that CPU's
 * next allocation of the class; while it waits it is still caught as freed
 * (double free, usable size, realloc), and a flush gives it back. The last
 * slot in use of a run is never cached (the run goes back instead), so the
 * tests keep a slot of each run they cache from. The test
 * support's mm_hook_cpu_index gives each thread its own index, or the one
 * a test sets in test_cpu_index.
 */
#include "kheap_test.h"

#if HADRON_MM_KHEAP_CPU_CACHES > 0 && !HADRON_MM_HEAP_REDZONES

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
    cr_assert_eq(kheap_set_cpu_caches(&heap, true), MM_OK);
}

static kheap_stats_t stats(void)
{
    kheap_stats_t s;
    cr_assert_eq(kheap_get_stats(&heap, &s), MM_OK);
    return s;
}

static void *take(size_t n)
{
    void *p = kheap_alloc(&heap, n, 0);
    cr_assert_not_null(p, "alloc %zu", n);
    return p;
}

static void give(void *p)
{
    cr_assert_eq(kheap_free(&heap, p), MM_OK);
}

Test(kheap_cache, off_until_turned_on)
{
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
    void *p = take(32), *q = take(32);
    give(p);
    kheap_stats_t s = stats();
    cr_assert_eq(s.cached_slots, 0);
    cr_assert_eq(s.run_slots_used, 1, "the slot went back to its run");
    give(q);
    t_assert_all_free(&heap);
}

Test(kheap_cache, a_freed_slot_comes_back_first_on_its_cpu, .init = setup)
{
    void *p = take(32), *q = take(32);
    give(p);
    kheap_stats_t s = stats();
    cr_assert_eq(s.cached_slots, 1);
    cr_assert_eq(s.run_slots_used, 2, "a cached slot stays in use in its run");
    T_CHECK(&heap);
    cr_assert_eq(take(20), p, "same class (32 bytes): the cached slot");
    cr_assert_eq(stats().cached_slots, 0);
    give(p);
    give(q);
    cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_cache, last_in_first_out_per_class, .init = setup)
{
    void *keep[3] = {take(32), take(64), take(3000)};
    void *p = take(32), *q = take(32), *m = take(64), *big = take(3000);
    give(p);
    give(q);
    give(m);
    give(big);
    cr_assert_eq(stats().cached_slots, 4);
    T_CHECK(&heap);
    cr_assert_eq(take(2900), big);
    cr_assert_eq(take(30), q);
    cr_assert_eq(take(60), m);
    cr_assert_eq(take(17), p);
    give(p);
    give(q);
    give(m);
    give(big);
    for (int i = 0; i < 3; i++)
        give(keep[i]);
    cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_cache, each_cpu_has_its_own, .init = setup)
{
    test_cpu_index = 0;
    void *keep = take(48), *p = take(48);
    give(p);
    test_cpu_index = 1;
    void *q = take(48);
    cr_assert_neq(q, p, "CPU 1 does not get CPU 0's slot");
    give(q);
    cr_assert_eq(stats().cached_slots, 2);
    test_cpu_index = 0;
    cr_assert_eq(take(48), p);
    give(p);
    give(keep);
    for (int cpu = 0; cpu < 2; cpu++) {
        test_cpu_index = cpu;
        T_CHECK(&heap);
        cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK);
    }
    t_assert_all_free(&heap);
}

Test(kheap_cache, the_last_slot_of_a_run_is_not_cached, .init = setup)
{
    void *p = take(3000), *q = take(3000);
    give(p);
    kheap_stats_t s = stats();
    cr_assert_eq(s.cached_slots, 1);
    cr_assert_eq(s.runs, 1);
    cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK);
    give(q);
    s = stats();
    cr_assert_eq(s.cached_slots, 0, "q was its run's last slot in use");
    cr_assert_eq(s.runs, 0, "and the run went back to the heap");
    t_assert_all_free(&heap);
}

Test(kheap_cache, a_cpu_without_a_cache_takes_the_lock, .init = setup)
{
    test_cpu_index = HADRON_MM_KHEAP_CPU_CACHES;
    void *p = take(32), *q = take(32);
    give(p);
    kheap_stats_t s = stats();
    cr_assert_eq(s.cached_slots, 0);
    cr_assert_eq(s.run_slots_used, 1);
    cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK, "nothing to flush is no error");
    T_CHECK(&heap);
    give(q);
    t_assert_all_free(&heap);
}

/* A second free of a cached slot, from its CPU or another, whatever the
 * state of the class's cache, is a double free that changes nothing. */
static void expect_double_free(void *p)
{
    kheap_stats_t before = stats();
    int warns = test_warnings.count;
    mm_status_t st = kheap_free(&heap, p);
    cr_assert_eq(st, MM_ERR_DOUBLE_FREE, "%s", mm_status_str(st));
    cr_assert_eq(test_warnings.count, warns + 1);
    cr_assert_eq(test_warnings.last.kind, MM_REPORT_DOUBLE_FREE);
    cr_assert_eq(test_warnings.last.address, (uint64_t)(uintptr_t)p);
    kheap_stats_t after = stats();
    cr_assert_eq(after.cached_slots, before.cached_slots);
    cr_assert_eq(after.run_slots_used, before.run_slots_used);
    cr_assert_eq(after.free_bytes, before.free_bytes);
    T_CHECK(&heap);
}

Test(kheap_cache, a_cached_slot_freed_again_is_a_double_free, .init = setup)
{
    test_cpu_index = 0;
    void *p[KHEAP_CACHE_DEPTH + 1], *keep = take(16); /* keeps the run after the flush */
    for (unsigned i = 0; i <= KHEAP_CACHE_DEPTH; i++)
        p[i] = take(16);
    give(p[0]);
    expect_double_free(p[0]);
    test_cpu_index = 1;
    expect_double_free(p[0]);
    test_cpu_index = 0;
    for (unsigned i = 1; i < KHEAP_CACHE_DEPTH; i++)
        give(p[i]);
    cr_assert_eq(stats().cached_slots, KHEAP_CACHE_DEPTH, "the class's cache is full");
    expect_double_free(p[0]);
    give(p[KHEAP_CACHE_DEPTH]);
    cr_assert_eq(stats().cached_slots, KHEAP_CACHE_DEPTH, "a full cache sends the slot to its run");
    void *out = (void *)1;
    cr_assert_eq(kheap_realloc(&heap, p[0], 100, &out), MM_ERR_DOUBLE_FREE);
    cr_assert_null(out);
    cr_assert_eq(kheap_usable_size(&heap, p[0]), 0);
    cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK);
    expect_double_free(p[0]);
    give(keep);
    cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK);
    t_assert_all_free(&heap);
}

/* Per class at most KHEAP_CACHE_DEPTH slots and KHEAP_CACHE_CLASS_BYTES
 * bytes, but always one. */
static void expect_limit(size_t size, unsigned want)
{
    enum { N = 12 };
    void *p[N], *keep = take(size);
    for (int i = 0; i < N; i++)
        p[i] = take(size);
    size_t used = stats().run_slots_used;
    for (int i = 0; i < N; i++)
        give(p[i]);
    kheap_stats_t s = stats();
    cr_assert_eq(s.cached_slots, want, "%zu bytes: %zu cached, want %u", size, s.cached_slots,
                 want);
    cr_assert_eq(s.run_slots_used, used - N + want);
    give(keep);
    cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK);
}

Test(kheap_cache, each_class_holds_a_bounded_number, .init = setup)
{
    expect_limit(16, KHEAP_CACHE_DEPTH);
    expect_limit(256, KHEAP_CACHE_DEPTH);
    expect_limit(2048, KHEAP_CACHE_CLASS_BYTES / 2048 < KHEAP_CACHE_DEPTH
                           ? KHEAP_CACHE_CLASS_BYTES / 2048 : KHEAP_CACHE_DEPTH);
    expect_limit(4096, KHEAP_CACHE_CLASS_BYTES / 4096 < KHEAP_CACHE_DEPTH
                           ? KHEAP_CACHE_CLASS_BYTES / 4096 : KHEAP_CACHE_DEPTH);
    t_assert_all_free(&heap);
}

Test(kheap_cache, off_stops_filling_but_still_serves, .init = setup)
{
    void *keep = take(32), *p = take(32), *q = take(32);
    give(p);
    cr_assert_eq(kheap_set_cpu_caches(&heap, false), MM_OK);
    give(q);
    kheap_stats_t s = stats();
    cr_assert_eq(s.cached_slots, 1);
    cr_assert_eq(s.run_slots_used, 2);
    cr_assert_eq(take(32), p);
    cr_assert_eq(stats().cached_slots, 0);
    give(p);
    give(keep);
    t_assert_all_free(&heap);
}

/* Slots parked in this CPU's cache keep their run (a whole 31 KiB of a 64
 * KiB heap) once its other slots are freed: an allocation that only fits
 * once that run is gone flushes the cache instead of failing. */
Test(kheap_cache, an_allocation_that_does_not_fit_flushes_this_cpu)
{
    cr_assert_eq(kheap_init(&heap, t_arena(65536), 65536), MM_OK);
    cr_assert_eq(kheap_set_cpu_caches(&heap, true), MM_OK);
    void *p = take(3000), *q = take(3000);
    give(p);
    cr_assert_eq(kheap_set_cpu_caches(&heap, false), MM_OK);
    give(q);
    kheap_stats_t s = stats();
    cr_assert_eq(s.cached_slots, 1);
    cr_assert_eq(s.runs, 1);
    cr_assert_lt(s.largest_free, 40000);
    void *big = kheap_alloc(&heap, 40000, 0);
    cr_assert_not_null(big);
    s = stats();
    cr_assert_eq(s.cached_slots, 0);
    cr_assert_eq(s.runs, 0);
    give(big);
    t_assert_all_free(&heap);
}

Test(kheap_cache, a_write_to_a_cached_slot_is_caught, .init = setup)
{
    void *keep = take(32);
    for (int word = 0; word < 2; word++) {
        uint64_t *p = take(32);
        give(p);
        uint64_t saved = p[word];
        p[word] ^= 0x100;
        mm_report_t r;
        cr_assert_eq(kheap_check(&heap, &r), MM_ERR_CORRUPT);
        cr_assert_eq(r.kind, MM_REPORT_CORRUPT);
        cr_assert_eq(r.address, (uint64_t)(uintptr_t)p);
        cr_assert_str_eq(r.message, "kheap: cached free slot written after free");
        if (word == 0) {
            p[word] = saved;
            T_CHECK(&heap);
            cr_assert_eq(take(32), p);
            give(p);
            continue;
        }
        bool panicked = TEST_CATCH_PANIC((void)kheap_alloc(&heap, 32, 0));
        cr_assert(panicked, "taking a damaged slot panics");
        cr_assert_eq(test_panics.last.kind, MM_REPORT_CORRUPT);
        cr_assert_eq(test_panics.last.address, (uint64_t)(uintptr_t)p);
    }
    (void)keep;
}

Test(kheap_cache, flush_after_freeing_everything_leaves_the_heap_whole)
{
    cr_assert_eq(kheap_init(&heap, t_arena(4 << 20), 4 << 20), MM_OK);
    cr_assert_eq(kheap_set_cpu_caches(&heap, true), MM_OK);
    enum { N = 600 };
    void *p[N];
    uint64_t rng = 7;
    for (int i = 0; i < N; i++)
        p[i] = take((size_t)(t_rand(&rng) % 4097));
    for (int i = 0; i < N; i++)
        give(p[(i * 7) % N]);
    kheap_stats_t s = stats();
    cr_assert_gt(s.cached_slots, 0);
    cr_assert_eq(s.run_slots_used, s.cached_slots);
    T_CHECK(&heap);
    cr_assert_eq(kheap_flush_cpu_cache(&heap), MM_OK);
    t_assert_all_free(&heap);
}

#if HADRON_MM_ALLOC_TRACKING
Test(kheap_cache, tracking_counts_cached_slots_as_freed, .init = setup)
{
    void *keep = take(100), *p = take(100);
    give(p);
    kheap_stats_t s = stats();
    cr_assert_eq(s.cached_slots, 1);
    cr_assert_eq(s.live_count, 1);
    cr_assert_eq(s.live_bytes, 112, "keep's usable size");
    cr_assert_eq(take(100), p);
    s = stats();
    cr_assert_eq(s.live_count, 2);
    cr_assert_eq(s.allocs, 3);
    cr_assert_eq(s.frees, 1);
    cr_assert_eq(s.live_bytes, 224);
    give(keep);
}
#endif

#endif /* caches built */

Test(kheap_cache, bad_calls_are_refused)
{
    kheap_t fresh;
    memset(&fresh, 0, sizeof(fresh));
    cr_assert_eq(kheap_set_cpu_caches(NULL, true), MM_ERR_INVALID);
    cr_assert_eq(kheap_set_cpu_caches(&fresh, true), MM_ERR_STATE);
    cr_assert_eq(kheap_flush_cpu_cache(NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_flush_cpu_cache(&fresh), MM_ERR_STATE);
    cr_assert_eq(kheap_init(&fresh, t_arena(65536), 65536), MM_OK);
#if HADRON_MM_KHEAP_CPU_CACHES > 0 && !HADRON_MM_HEAP_REDZONES
    cr_assert_eq(kheap_set_cpu_caches(&fresh, true), MM_OK);
#else
    cr_assert_eq(kheap_set_cpu_caches(&fresh, true), MM_ERR_UNSUPPORTED);
    cr_assert_eq(kheap_set_cpu_caches(&fresh, false), MM_ERR_UNSUPPORTED);
#endif
    cr_assert_eq(kheap_flush_cpu_cache(&fresh), MM_OK);
    t_assert_all_free(&fresh);
}
