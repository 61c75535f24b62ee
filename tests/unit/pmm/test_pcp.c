/*
 * Per-CPU frame caches: batches and the high-water mark, draining when
 * memory runs short, double frees of cached frames, exact statistics and
 * checks, reserve over cached frames, the locked path for CPUs without a
 * cache. Several CPUs are simulated from one thread with test_cpu_index.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hadron/mm/hhdm.h>

#include "pmm_fixture.h"

static void on_cpu(int cpu)
{
    test_cpu_index = cpu;
}

static unsigned cached(pmm_t *p, unsigned cpu)
{
    return atomic_load(&p->pcp[cpu].count);
}

static mm_paddr_t alloc1(pmm_t *p)
{
    mm_paddr_t pa = 0;
    mm_status_t st = pmm_alloc(p, &pa);
    cr_assert_eq(st, MM_OK, "pmm_alloc: %s", mm_status_str(st));
    return pa;
}

static void free1(pmm_t *p, mm_paddr_t pa)
{
    mm_status_t st = pmm_free(p, pa);
    cr_assert_eq(st, MM_OK, "pmm_free(%#llx): %s", (unsigned long long)pa, mm_status_str(st));
}

Test(pmm, pcp_refill_takes_one_batch_per_empty_cache)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    pmm_stats_t s0 = fx_stats(&p);
    on_cpu(0);
    mm_paddr_t first = alloc1(&p);
    cr_assert_eq(cached(&p, 0), PMM_PCP_BATCH - 1);
    cr_assert_eq(p.free_frames, s0.free_frames - PMM_PCP_BATCH, "one batch left the bitmap");
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.free_frames, s0.free_frames - 1, "cached frames are free memory");
    cr_assert_eq(s.cached_frames, PMM_PCP_BATCH - 1);
    cr_assert_eq(s.used_frames, s0.used_frames + 1);
    /* The rest of the batch comes from the cache, in ascending order,
     * without touching the bitmap. */
    mm_paddr_t prev = first;
    for (unsigned i = 1; i < PMM_PCP_BATCH; i++) {
        mm_paddr_t pa = alloc1(&p);
        cr_assert_gt(pa, prev);
        prev = pa;
        cr_assert_eq(p.free_frames, s0.free_frames - PMM_PCP_BATCH);
    }
    cr_assert_eq(cached(&p, 0), 0);
    alloc1(&p);
    cr_assert_eq(cached(&p, 0), PMM_PCP_BATCH - 1, "an empty cache refills");
    cr_assert_eq(p.free_frames, s0.free_frames - 2 * PMM_PCP_BATCH);
    fx_check(&p);
}

Test(pmm, pcp_free_trims_the_coldest_batch_at_the_high_water_mark)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    enum { N = PMM_PCP_HIGH + 1 };
    mm_paddr_t f[N];
    on_cpu(0);
    for (unsigned i = 0; i < N; i++)
        f[i] = alloc1(&p);
    cr_assert_eq(pmm_drain(&p), MM_OK);
    cr_assert_eq(fx_stats(&p).cached_frames, 0);
    uint64_t bitmap_free = p.free_frames;
    for (unsigned i = 0; i < PMM_PCP_HIGH; i++) {
        free1(&p, f[i]);
        cr_assert_eq(cached(&p, 0), i + 1);
        cr_assert_eq(pmm_frame_state(&p, f[i]), PMM_FRAME_FREE, "a cached frame is free");
    }
    cr_assert_eq(p.free_frames, bitmap_free, "below the mark the bitmap is not touched");
    /* At the mark: the BATCH frames freed first go back, then this one is
     * cached on top. */
    free1(&p, f[PMM_PCP_HIGH]);
    cr_assert_eq(cached(&p, 0), PMM_PCP_HIGH - PMM_PCP_BATCH + 1);
    cr_assert_eq(p.free_frames, bitmap_free + PMM_PCP_BATCH);
    for (unsigned i = 0; i < PMM_PCP_BATCH; i++)
        cr_assert(p.bm[2 * ((f[i] / FX_PG) / 64)] & (1ull << ((f[i] / FX_PG) % 64)),
                  "frame %u went back to the bitmap", i);
    fx_check(&p);
    /* LIFO: the frame freed last comes back first, then the one before. */
    cr_assert_eq(alloc1(&p), f[PMM_PCP_HIGH]);
    cr_assert_eq(alloc1(&p), f[PMM_PCP_HIGH - 1]);
    fx_check(&p);
}

Test(pmm, pcp_cross_cpu_free_lands_in_the_freeing_cpus_cache)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p);
    on_cpu(1);
    free1(&p, a);
    cr_assert_eq(cached(&p, 0), PMM_PCP_BATCH - 1);
    cr_assert_eq(cached(&p, 1), 1);
    cr_assert_eq(alloc1(&p), a, "CPU 1 reuses what it freed");
    cr_assert_eq(cached(&p, 1), 0);
    fx_check(&p);
}

Test(pmm, pcp_caches_start_on_different_parts_of_memory)
{
    pmm_t p;
    fx_init_simple(&p, 0, 1 * FX_GIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p);
    on_cpu(1);
    mm_paddr_t b = alloc1(&p);
    uint64_t d = b > a ? b - a : a - b;
    cr_assert_geq(d / FX_PG, 512, "two CPUs' frames share a held-bitmap cache line");
    fx_check(&p);
}

Test(pmm, pcp_exhaustion_drains_every_cache_before_failing)
{
    pmm_t p;
    fx_init_simple(&p, 0, 8 * FX_MIB);
    enum { CPUS = 4 };
    /* Every simulated CPU ends up holding frames in its cache. */
    for (int c = 0; c < CPUS; c++) {
        on_cpu(c);
        mm_paddr_t t[3];
        for (int i = 0; i < 3; i++)
            t[i] = alloc1(&p);
        for (int i = 0; i < 3; i++)
            free1(&p, t[i]);
    }
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.cached_frames, CPUS * (PMM_PCP_BATCH));
    fx_check(&p);
    /* CPU 3 allocates every free frame: the last ones come out of the
     * other CPUs' caches; only then is it out of memory. */
    on_cpu(CPUS - 1);
    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    cr_assert_eq(n, s.free_frames);
    pmm_stats_t e = fx_stats(&p);
    cr_assert_eq(e.free_frames, 0);
    cr_assert_eq(e.cached_frames, 0);
    for (int c = 0; c < CPUS; c++)
        cr_assert_eq(cached(&p, (unsigned)c), 0);
    /* Nothing handed out twice. */
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(pmm_frame_state(&p, all[i]), PMM_FRAME_USED);
    fx_check(&p);
    /* Frees spread over the CPUs again, then everything is free. */
    for (uint64_t i = 0; i < n; i++) {
        on_cpu((int)(i % CPUS));
        free1(&p, all[i]);
    }
    free(all);
    cr_assert_eq(fx_stats(&p).free_frames, s.free_frames);
    fx_check(&p);
}

Test(pmm, pcp_contiguous_request_drains_the_caches_it_needs)
{
    pmm_t p;
    /* 2 MiB of frames, of which the caches take a share. */
    fx_init_simple(&p, 16 * FX_MIB, 2 * FX_MIB);
    uint64_t total = fx_stats(&p).free_frames;
    on_cpu(0);
    mm_paddr_t a = alloc1(&p);
    on_cpu(1);
    mm_paddr_t b = alloc1(&p);
    free1(&p, a);
    free1(&p, b);
    cr_assert_gt(fx_stats(&p).cached_frames, 0);
    /* Every free frame in one run: only possible with the caches drained. */
    mm_paddr_t run;
    cr_assert_eq(pmm_alloc_contig(&p, total, 1, MM_PADDR_MAX, &run), MM_OK);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.free_frames, 0);
    cr_assert_eq(s.cached_frames, 0);
    fx_check(&p);
    /* Now nothing is free anywhere: NOMEM, nothing changed. */
    fx_snap_t snap;
    fx_snap(&p, &snap);
    mm_paddr_t x = 7;
    cr_assert_eq(pmm_alloc_contig(&p, 2, 1, MM_PADDR_MAX, &x), MM_ERR_NOMEM);
    cr_assert_eq(pmm_alloc(&p, &x), MM_ERR_NOMEM);
    cr_assert_eq(x, 7);
    fx_assert_unchanged(&p, &snap, "exhausted");
    cr_assert_eq(pmm_free_contig(&p, run, total), MM_OK);
    fx_check(&p);
}

Test(pmm, pcp_limited_single_frame_drains_when_only_caches_hold_low_frames)
{
    pmm_t p;
    fx_init_simple(&p, 16 * FX_MIB, 1 * FX_MIB);
    on_cpu(0);
    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    mm_paddr_t low = all[0];
    for (uint64_t i = 0; i < n; i++)
        if (all[i] < low)
            low = all[i];
    free1(&p, low); /* into CPU 0's cache */
    cr_assert_eq(cached(&p, 0), 1);
    mm_paddr_t got;
    cr_assert_eq(pmm_alloc_contig(&p, 1, 1, low + FX_PG, &got), MM_OK);
    cr_assert_eq(got, low);
    cr_assert_eq(cached(&p, 0), 0);
    for (uint64_t i = 0; i < n; i++)
        free1(&p, all[i]);
    free(all);
    fx_check(&p);
}

/* Every way to free a frame twice when one copy sits in a cache, from its
 * own CPU, another CPU, the locked path and pmm_free_contig: refused,
 * warned, nothing changed. No #if: every build. */
Test(pmm, pcp_double_free_of_a_cached_frame_is_caught_in_every_build)
{
    pmm_t p;
    fx_init(&p, fx_qemu_256m, fx_qemu_256m_len, 256 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p);
    mm_paddr_t b = alloc1(&p);
    free1(&p, a);
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_FREE);
    int warned = test_warnings.count;
    fx_snap_t snap;

#define TWICE(cpu, call, want, addr)                                                               \
    do {                                                                                           \
        on_cpu(cpu);                                                                               \
        fx_snap(&p, &snap);                                                                        \
        mm_status_t st_ = (call);                                                                  \
        cr_assert_eq(st_, want, "%s on cpu %d: %s", #call, cpu, mm_status_str(st_));               \
        cr_assert_eq(test_warnings.count, ++warned, "%s: no warning", #call);                      \
        cr_assert_eq(test_warnings.last.kind,                                                      \
                     want == MM_ERR_DOUBLE_FREE ? MM_REPORT_DOUBLE_FREE : MM_REPORT_BAD_POINTER);  \
        cr_assert_eq(test_warnings.last.address, addr);                                            \
        fx_assert_unchanged(&p, &snap, #call);                                                     \
    } while (0)

    TWICE(0, pmm_free(&p, a), MM_ERR_DOUBLE_FREE, a);
    TWICE(1, pmm_free(&p, a), MM_ERR_DOUBLE_FREE, a);
    TWICE(FX_NO_CPU, pmm_free(&p, a), MM_ERR_DOUBLE_FREE, a);
    TWICE(0, pmm_free_contig(&p, a, 1), MM_ERR_DOUBLE_FREE, a);
    /* b is held: the run [a, b] is refused as a whole, b stays allocated. */
    cr_assert_eq(b, a + FX_PG);
    TWICE(0, pmm_free_contig(&p, a, 2), MM_ERR_DOUBLE_FREE, a);
    cr_assert_eq(pmm_frame_state(&p, b), PMM_FRAME_USED);
    /* A frame free in the bitmap, freed through a cache. */
    mm_paddr_t far = 0x8000000;
    cr_assert_eq(pmm_frame_state(&p, far), PMM_FRAME_FREE);
    TWICE(0, pmm_free(&p, far), MM_ERR_DOUBLE_FREE, far);
    /* The other mistakes through a CPU with a cache. */
    TWICE(0, pmm_free(&p, b + 8), MM_ERR_ALIGN, b + 8);
    TWICE(0, pmm_free(&p, 0xffe0000), MM_ERR_RANGE, 0xffe0000);
    TWICE(0, pmm_free(&p, 0), MM_ERR_NOT_USABLE, 0);
    TWICE(1, pmm_free(&p, p.meta_base), MM_ERR_NOT_USABLE, p.meta_base);
#undef TWICE

    /* Still one copy of a, in CPU 0's cache, and the next allocation
     * there hands it out once. */
    on_cpu(0);
    cr_assert_eq(alloc1(&p), a);
    free1(&p, a);
    free1(&p, b);
    fx_check(&p);
}

Test(pmm, pcp_statistics_and_states_stay_exact)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    pmm_stats_t s0 = fx_stats(&p);
    mm_paddr_t f[40];
    for (int i = 0; i < 40; i++) {
        on_cpu(i % 3);
        f[i] = alloc1(&p);
    }
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.used_frames, s0.used_frames + 40);
    cr_assert_eq(s.free_frames, s0.free_frames - 40);
    cr_assert_eq(s.usable_frames, s0.usable_frames);
    cr_assert_eq(s.cached_frames, cached(&p, 0) + cached(&p, 1) + cached(&p, 2));
    for (int i = 0; i < 40; i++) {
        on_cpu((i + 1) % 3);
        free1(&p, f[i]);
        cr_assert_eq(pmm_frame_state(&p, f[i]), PMM_FRAME_FREE);
    }
    s = fx_stats(&p);
    cr_assert_eq(s.free_frames, s0.free_frames);
    cr_assert_eq(s.used_frames, s0.used_frames);
    cr_assert_gt(s.cached_frames, 0);
    fx_check(&p);
    cr_assert_eq(pmm_drain(&p), MM_OK);
    s = fx_stats(&p);
    cr_assert_eq(s.cached_frames, 0);
    cr_assert_eq(s.free_frames, s0.free_frames);
    fx_check(&p);
}

static void expect_corrupt(pmm_t *p, const char *fragment)
{
    const char *why = NULL;
    cr_assert_eq(pmm_check(p, &why), MM_ERR_CORRUPT, "damage not detected (%s)", fragment);
    cr_assert(why != NULL && strstr(why, fragment) != NULL, "reason \"%s\" lacks \"%s\"",
              why ? why : "(null)", fragment);
    cr_assert_eq(test_irq_depth(), 0);
}

Test(pmm, pcp_check_detects_cache_damage)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p); /* the cache now holds BATCH - 1 frames */
    pmm_pcp_t *c = &p.pcp[0];
    unsigned n = cached(&p, 0);
    uint64_t saved = c->frames[0];

    c->frames[0] = (a / FX_PG) << 1; /* a held frame in the cache */
    expect_corrupt(&p, "not in the cached state");
    c->frames[0] = c->frames[1]; /* one frame twice, one lost */
    expect_corrupt(&p, "twice");
    c->frames[0] = saved;

    atomic_store(&c->count, n - 1); /* a cached frame in no cache */
    expect_corrupt(&p, "exactly the cached frames");
    atomic_store(&c->count, PMM_PCP_HIGH + 1);
    expect_corrupt(&p, "high-water");
    atomic_store(&c->count, n);

#if !HADRON_MM_PMM_POISON
    c->frames[0] = saved | 1;
    expect_corrupt(&p, "poisoned");
    c->frames[0] = saved;
#endif
    uint64_t f = a / FX_PG;
    p.held_bm[2 * (f / 64) + 1] ^= 1ull << (f % 64); /* a: neither held, free, nor cached */
    expect_corrupt(&p, "exactly the cached frames");
    p.held_bm[2 * (f / 64) + 1] ^= 1ull << (f % 64);
    p.held_bm[1] |= 1; /* frame 0 "allocated" */
    expect_corrupt(&p, "not managed");
    p.held_bm[1] &= ~1ull;
    /* Only a group's owner writes the own half: the last group has none.
     * Both halves set leave the frame's state as it was. */
    uint64_t top = p.span_frames - 1, w = top / 64, bit = 1ull << (top % 64);
    cr_assert_eq(atomic_load(&p.held_owner[top >> 9]), 0);
    p.held_bm[2 * w] |= bit;
    p.held_bm[2 * w + 1] |= bit;
    expect_corrupt(&p, "no CPU owns");
    p.held_bm[2 * w] &= ~bit;
    p.held_bm[2 * w + 1] &= ~bit;
    fx_check(&p);
}

Test(pmm, pcp_reserve_takes_cached_frames_out_of_their_caches)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p);
    mm_paddr_t b = alloc1(&p);
    on_cpu(2);
    free1(&p, a); /* a cached on CPU 2; CPU 0 holds the rest of a batch */
    pmm_stats_t s0 = fx_stats(&p);

    /* A held frame in the range: refused, no cache touched. */
    fx_snap_t snap;
    fx_snap(&p, &snap);
    cr_assert_eq(pmm_reserve(&p, a, 2 * FX_PG), MM_ERR_STATE);
    fx_assert_unchanged(&p, &snap, "reserve over a held frame");

    cr_assert_eq(pmm_reserve(&p, a, FX_PG), MM_OK);
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_RESERVED);
    cr_assert_eq(cached(&p, 2), 0);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.usable_frames, s0.usable_frames - 1);
    cr_assert_eq(s.free_frames, s0.free_frames - 1);
    /* A frame in CPU 0's cache (the one after b), reserved from CPU 1:
     * only it leaves the cache. */
    unsigned n0 = cached(&p, 0);
    cr_assert_eq(pmm_frame_state(&p, b + FX_PG), PMM_FRAME_FREE);
    on_cpu(1);
    cr_assert_eq(pmm_reserve(&p, b + FX_PG, 1), MM_OK);
    cr_assert_eq(cached(&p, 0), n0 - 1);
    cr_assert_eq(pmm_frame_state(&p, b + FX_PG), PMM_FRAME_RESERVED);
    fx_check(&p);
    on_cpu(0);
    for (unsigned i = 0; i < n0 - 1; i++)
        cr_assert_neq(alloc1(&p), b + FX_PG, "a reserved frame was handed out");
    fx_check(&p);
}

/* While some context holds the caches (pcp_holders), every CPU takes the
 * locked path: a free goes to the bitmap, an allocation comes from it, and
 * every outcome is as through the cache. */
Test(pmm, pcp_while_the_caches_are_held_every_cpu_takes_the_locked_path)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p), b = alloc1(&p);
    unsigned n = cached(&p, 0);
    __atomic_store_n(&p.pcp_holders, 1, __ATOMIC_SEQ_CST); /* as if a holder were draining */
    free1(&p, a);
    cr_assert_eq(cached(&p, 0), n, "the frame went to the bitmap");
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_FREE);
    int warned = test_warnings.count;
    fx_snap_t snap;
    fx_snap(&p, &snap);
    cr_assert_eq(pmm_free(&p, a), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(pmm_free(&p, 0), MM_ERR_NOT_USABLE);
    cr_assert_eq(test_warnings.count, warned + 2);
    fx_assert_unchanged(&p, &snap, "refused frees while the caches are held");
    mm_paddr_t c = alloc1(&p);
    cr_assert_eq(c, a, "the locked path reuses the frame freed last");
    cr_assert_eq(cached(&p, 0), n, "the cache was not touched");
    cr_assert_eq(__atomic_load_n(&p.pcp[0].active, __ATOMIC_SEQ_CST), 0);
    __atomic_store_n(&p.pcp_holders, 0, __ATOMIC_SEQ_CST);
    /* Back through the cache: the same outcomes. */
    free1(&p, b);
    cr_assert_eq(cached(&p, 0), n + 1);
    fx_snap(&p, &snap);
    cr_assert_eq(pmm_free(&p, b), MM_ERR_DOUBLE_FREE);
    fx_assert_unchanged(&p, &snap, "a double free through the cache");
    free1(&p, c);
    fx_check(&p);
}

/* A context that interrupted its CPU inside the cache (an NMI handler)
 * finds the cache entered: it takes the locked path and never touches the
 * cache, and whatever would have to wait for that CPU to leave (drain,
 * check, reserve over a cached frame) is refused with nothing changed. */
Test(pmm, pcp_an_interrupt_inside_the_cache_takes_the_locked_path)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p), b = alloc1(&p);
    free1(&p, b); /* b cached */
    unsigned n = cached(&p, 0);
    /* The interrupted context is inside. */
    __atomic_store_n(&p.pcp[0].active, 1, __ATOMIC_SEQ_CST);
    fx_snap_t snap;
    fx_snap(&p, &snap);
    cr_assert_eq(pmm_drain(&p), MM_ERR_UNSUPPORTED);
    cr_assert_eq(pmm_check(&p, NULL), MM_ERR_UNSUPPORTED);
    cr_assert_eq(pmm_reserve(&p, b, FX_PG), MM_ERR_UNSUPPORTED);
    cr_assert_eq(__atomic_load_n(&p.pcp_holders, __ATOMIC_SEQ_CST), 0, "no hold left behind");
    __atomic_store_n(&p.pcp[0].active, 0, __ATOMIC_SEQ_CST); /* (the comparison runs pmm_check) */
    fx_assert_unchanged(&p, &snap, "refused while inside the own cache");
    __atomic_store_n(&p.pcp[0].active, 1, __ATOMIC_SEQ_CST);
    mm_paddr_t c = alloc1(&p);
    cr_assert_neq(c, b, "not from the cache");
    free1(&p, a);
    cr_assert_eq(pmm_free(&p, b), MM_ERR_DOUBLE_FREE, "a cached frame, seen from outside");
    cr_assert_eq(cached(&p, 0), n, "the cache was not touched");
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_FREE);
    __atomic_store_n(&p.pcp[0].active, 0, __ATOMIC_SEQ_CST);
    free1(&p, c);
    cr_assert_eq(pmm_drain(&p), MM_OK);
    cr_assert_eq(fx_stats(&p).cached_frames, 0);
    fx_check(&p);
}

/* A CPU's cached allocation writes only the own half of its frame's held
 * word, once its CPU owns the frame's group (the first CPU to allocate
 * from the group through its cache); everyone else changes the remote half
 * atomically. Either way the frame's state is the two halves' XOR. */
Test(pmm, pcp_a_cached_allocation_writes_only_its_groups_own_half)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p);
    uint64_t f = a / FX_PG, w = f / 64, bit = 1ull << (f % 64);
    cr_assert_eq(atomic_load(&p.held_owner[f >> 9]), 1, "CPU 0 owns the group now");
    cr_assert_eq(p.held_bm[2 * w] & bit, bit, "own half");
    cr_assert_eq(p.held_bm[2 * w + 1] & bit, 0, "remote half");
    on_cpu(1);
    free1(&p, a); /* into CPU 1's cache: the remote half */
    cr_assert_eq(p.held_bm[2 * w] & bit, bit);
    cr_assert_eq(p.held_bm[2 * w + 1] & bit, bit);
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_FREE);
    cr_assert_eq(pmm_free(&p, a), MM_ERR_DOUBLE_FREE);
    mm_paddr_t again = alloc1(&p); /* CPU 1 allocates a frame of CPU 0's group */
    cr_assert_eq(again, a);
    cr_assert_eq(atomic_load(&p.held_owner[f >> 9]), 1, "the owner stays");
    cr_assert_eq(p.held_bm[2 * w] & bit, bit, "CPU 1 never writes the own half");
    cr_assert_eq(p.held_bm[2 * w + 1] & bit, 0);
    cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_USED);
    on_cpu(0);
    free1(&p, a);
    cr_assert_eq(pmm_free(&p, a), MM_ERR_DOUBLE_FREE);
    /* The locked path changes only remote halves, whoever owns the group. */
    on_cpu(FX_NO_CPU);
    uint64_t *own = malloc(p.words * sizeof *own);
    for (uint64_t k = 0; k < p.words; k++)
        own[k] = p.held_bm[2 * k];
    mm_paddr_t l = alloc1(&p);
    uint64_t lw = (l / FX_PG) / 64, lbit = 1ull << ((l / FX_PG) % 64);
    cr_assert_eq(pmm_frame_state(&p, l), PMM_FRAME_USED);
    cr_assert_eq((p.held_bm[2 * lw] ^ p.held_bm[2 * lw + 1]) & lbit, lbit);
    for (uint64_t k = 0; k < p.words; k++)
        cr_assert_eq(p.held_bm[2 * k], own[k], "own half of word %llu written",
                     (unsigned long long)k);
    free1(&p, l);
    for (uint64_t k = 0; k < p.words; k++)
        cr_assert_eq(p.held_bm[2 * k], own[k], "own half of word %llu written",
                     (unsigned long long)k);
    cr_assert_eq(pmm_frame_state(&p, l), PMM_FRAME_FREE);
    free(own);
    fx_check(&p);
}

#if HADRON_MM_ASYMMETRIC_BARRIER
/* With the asymmetric barrier, holding the caches asks every other CPU for
 * a barrier; when the hook refuses, nothing is held: drain, check and a
 * reserve over a cached frame are refused with nothing changed, and an
 * allocation that would need another CPU's cached frames fails. */
Test(pmm, pcp_a_refused_barrier_holds_nothing)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(1);
    mm_paddr_t b = alloc1(&p);
    free1(&p, b); /* CPU 1's cache holds frames */
    long barriers = atomic_load(&test_cpu_barriers);
    cr_assert_eq(pmm_check(&p, NULL), MM_OK);
    cr_assert_gt(atomic_load(&test_cpu_barriers), barriers, "a hold asks for the barrier");
    test_cpu_barrier_refused = true;
    fx_snap_t snap;
    fx_snap(&p, &snap);
    on_cpu(0);
    cr_assert_eq(pmm_drain(&p), MM_ERR_UNSUPPORTED);
    cr_assert_eq(pmm_check(&p, NULL), MM_ERR_UNSUPPORTED);
    cr_assert_eq(pmm_reserve(&p, b, FX_PG), MM_ERR_UNSUPPORTED);
    cr_assert_eq(__atomic_load_n(&p.pcp_holders, __ATOMIC_SEQ_CST), 0);
    test_cpu_barrier_refused = false; /* (the comparison runs pmm_check) */
    fx_assert_unchanged(&p, &snap, "refused holds");
    test_cpu_barrier_refused = true;
    /* CPU 0 takes everything the bitmap and its own cache have. */
    uint64_t n = 0;
    mm_paddr_t pa;
    while (pmm_alloc(&p, &pa) == MM_OK)
        n++;
    unsigned left = cached(&p, 1);
    cr_assert_gt(left, 0);
    cr_assert_eq(fx_stats(&p).free_frames, left, "only CPU 1's cache holds free frames");
    test_cpu_barrier_refused = false;
    cr_assert_eq(pmm_alloc(&p, &pa), MM_OK, "held, CPU 1's frames are reached");
    cr_assert_eq(cached(&p, 1), 0);
    (void)n;
}
#endif

#if HADRON_MM_SPIN_YIELD
/* A hold waits for a CPU inside its cache. Thread A stops inside its cache
 * (in a refill, spinning on the instance lock the main thread holds); B
 * then drains and is seen spinning (its wait yields every
 * MM_SPIN_YIELD_SPINS polls) while not queued for the instance lock; only
 * then is A let go, and B's drain must return after that. No timing: each
 * step waits for the one before. */
static pmm_t wait_pmm;
static atomic_int wait_stage; /* 1: A inside its cache, 2: B waiting */
static atomic_bool wait_let_go;
static _Thread_local int wait_role; /* 1: A, 2: B */

/* Contexts holding or waiting for wait_pmm's instance lock. */
static unsigned queued_on_lock(void)
{
    return atomic_load(&wait_pmm.lock.next_ticket) - atomic_load(&wait_pmm.lock.now_serving);
}

static void wait_observer(void)
{
    if (wait_role == 1) {
        unsigned cpu = mm_hook_cpu_index();
        if (cpu < HADRON_MM_MAX_CPUS &&
            __atomic_load_n(&wait_pmm.pcp[cpu].active, __ATOMIC_SEQ_CST) != 0) {
            int zero = 0;
            atomic_compare_exchange_strong(&wait_stage, &zero, 1);
        }
    } else if (wait_role == 2 && queued_on_lock() == 2) {
        /* B spins, and not in the line for the instance lock (main, A). */
        int one = 1;
        atomic_compare_exchange_strong(&wait_stage, &one, 2);
    }
}

static void *alloc_inside(void *arg)
{
    (void)arg;
    wait_role = 1;
    mm_paddr_t pa = 0;
    mm_status_t st = pmm_alloc(&wait_pmm, &pa);
    return (void *)(uintptr_t)(st == MM_OK ? pa : 0);
}

static void *drain_all(void *arg)
{
    (void)arg;
    wait_role = 2;
    mm_status_t st = pmm_drain(&wait_pmm);
    bool after = atomic_load(&wait_let_go);
    return (void *)(uintptr_t)(st == MM_OK && after);
}

Test(pmm, pcp_a_hold_waits_for_a_cpu_inside_its_cache)
{
    fx_init_simple(&wait_pmm, 0, 64 * FX_MIB);
    test_cpu_index = -1; /* a CPU per thread */
    atomic_store(&wait_stage, 0);
    atomic_store(&wait_let_go, false);
    test_spin_yield_observer = wait_observer;
    mm_irqflags_t f = mm_spin_lock_irqsave(&wait_pmm.lock);
    pthread_t a, b;
    cr_assert_eq(pthread_create(&a, NULL, alloc_inside, NULL), 0);
    while (atomic_load(&wait_stage) != 1)
        sched_yield();
    cr_assert_eq(pthread_create(&b, NULL, drain_all, NULL), 0);
    while (atomic_load(&wait_stage) != 2) {
        /* A drain that did not wait for A would queue on the lock. */
        if (queued_on_lock() > 2) {
            atomic_store(&wait_let_go, true);
            mm_spin_unlock_irqrestore(&wait_pmm.lock, f);
            cr_assert_fail("B went for the instance lock while A was inside its cache");
        }
        sched_yield();
    }
    atomic_store(&wait_let_go, true);
    mm_spin_unlock_irqrestore(&wait_pmm.lock, f);
    void *frame, *ok;
    cr_assert_eq(pthread_join(a, &frame), 0);
    cr_assert_eq(pthread_join(b, &ok), 0);
    test_spin_yield_observer = NULL;
    cr_assert_neq((uintptr_t)frame, 0, "A's allocation finished once let go");
    cr_assert_eq((uintptr_t)ok, 1, "B's drain returned only after A left its cache");
    cr_assert_eq(__atomic_load_n(&wait_pmm.pcp_holders, __ATOMIC_SEQ_CST), 0);
    cr_assert_eq(fx_stats(&wait_pmm).cached_frames, 0, "A's refill was drained");
    test_cpu_index = 0;
    free1(&wait_pmm, (mm_paddr_t)(uintptr_t)frame);
    fx_check(&wait_pmm);
}
#endif

Test(pmm, pcp_cpu_index_out_of_range_takes_the_locked_path)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(HADRON_MM_MAX_CPUS + 5);
    mm_paddr_t a = alloc1(&p);
    cr_assert_eq(fx_stats(&p).cached_frames, 0);
    free1(&p, a);
    cr_assert_eq(fx_stats(&p).cached_frames, 0);
    cr_assert_eq(p.bm[2 * ((a / FX_PG) / 64)] & (1ull << ((a / FX_PG) % 64)),
                 1ull << ((a / FX_PG) % 64), "freed straight into the bitmap");
    cr_assert_eq(pmm_free(&p, a), MM_ERR_DOUBLE_FREE);
    /* The largest valid index has a cache. */
    on_cpu(HADRON_MM_MAX_CPUS - 1);
    a = alloc1(&p);
    cr_assert_eq(cached(&p, HADRON_MM_MAX_CPUS - 1), PMM_PCP_BATCH - 1);
    free1(&p, a);
    fx_check(&p);
}

Test(pmm, pcp_frame_allocator_single_frames_use_the_cache)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_frame_allocator_t fa = pmm_frame_allocator(&p);
    on_cpu(3);
    mm_paddr_t a;
    cr_assert_eq(mm_frame_alloc(&fa, &a), MM_OK);
    cr_assert_eq(cached(&p, 3), PMM_PCP_BATCH - 1);
    cr_assert_eq(mm_frame_free(&fa, a), MM_OK);
    cr_assert_eq(cached(&p, 3), PMM_PCP_BATCH);
    cr_assert_eq(mm_frame_free(&fa, a), MM_ERR_DOUBLE_FREE);
    fx_check(&p);
}

Test(pmm, pcp_drain_bad_arguments)
{
    static pmm_t zero;
    cr_assert_eq(pmm_drain(NULL), MM_ERR_INVALID);
    cr_assert_eq(pmm_drain(&zero), MM_ERR_STATE);
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    cr_assert_eq(pmm_drain(&p), MM_OK, "nothing cached: nothing to do");
    fx_check(&p);
}

Test(pmm, pcp_zeroed_allocation_through_the_cache)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p);
    memset(hhdm_phys_to_virt(a), 0x5a, FX_PG);
    free1(&p, a);
    mm_paddr_t b;
    cr_assert_eq(pmm_alloc_zeroed(&p, &b), MM_OK);
    cr_assert_eq(b, a);
    static const uint8_t zeros[4096];
    cr_assert(memcmp(hhdm_phys_to_virt(b), zeros, FX_PG) == 0);
    fx_check(&p);
}

#if HADRON_MM_PMM_POISON

static void expect_poison_at(mm_paddr_t frame, uint64_t offset)
{
    cr_assert_eq(test_panics.count, 1);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_POISON);
    cr_assert_eq(test_panics.last.address, frame);
    cr_assert_eq(test_panics.last.offset, offset);
    cr_assert_eq(test_panics.last.found, 0x12345678u);
}

Test(pmm, pcp_poison_catches_a_write_to_a_cached_frame)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p), b;
    free1(&p, a);
    ((uint32_t *)hhdm_phys_to_virt(a))[0] = 0x12345678u;
    cr_assert(TEST_CATCH_PANIC(pmm_alloc(&p, &b)), "write to word 0 of a cached frame unseen");
    expect_poison_at(a, 0);
}

/* The mark travels with the frame: cache -> bitmap (drain) -> another
 * CPU's cache (refill) and still catches the write. */
Test(pmm, pcp_poison_mark_survives_drain_and_refill)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    on_cpu(0);
    mm_paddr_t a = alloc1(&p), b = 0;
    free1(&p, a);
    cr_assert_eq(pmm_drain(&p), MM_OK);
    cr_assert(p.poison_bm[(a / FX_PG) / 64] & (1ull << ((a / FX_PG) % 64)));
    fx_check(&p);
    ((uint32_t *)hhdm_phys_to_virt(a))[1000] = 0x12345678u;
    on_cpu(1);
    bool panicked = false;
    for (int i = 0; i < 64 && !panicked && b != a; i++)
        panicked = TEST_CATCH_PANIC(pmm_alloc(&p, &b));
    cr_assert(panicked, "write to a drained, then refilled frame unseen");
    expect_poison_at(a, 4000);
}

#endif
