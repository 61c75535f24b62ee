/*
 * kheap small-request runs (the fast path): slots, exact double-free and
 * bad-pointer detection, runs returned the moment they empty, and nothing
 * lost. The heap_redzones build has no runs; there the switch is refused
 * and small requests are ordinary blocks.
 */
#include "kheap_test.h"

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
}

#if !HADRON_MM_HEAP_REDZONES

static void expect_rejected(void *bad, mm_status_t status, mm_report_kind_t kind)
{
    t_snap_t before = t_snapshot(&heap);
    kheap_stats_t s0, s1;
    cr_assert_eq(kheap_get_stats(&heap, &s0), MM_OK);
    int warned = test_warnings.count;
    cr_assert_eq(kheap_free(&heap, bad), status, "free(%p)", bad);
    cr_assert_eq(test_warnings.count, warned + 1);
    cr_assert_eq(test_warnings.last.kind, kind);
    cr_assert_eq(test_warnings.last.address, (uint64_t)(uintptr_t)bad);
    t_snap_t after = t_snapshot(&heap);
    cr_assert(t_snap_equal(&before, &after), "heap changed");
    cr_assert_eq(kheap_get_stats(&heap, &s1), MM_OK);
    cr_assert_eq(memcmp(&s0, &s1, sizeof(s0)), 0, "statistics changed");
    t_snap_free(&before);
    t_snap_free(&after);
    T_CHECK(&heap);
}

Test(kheap_runs, small_requests_share_a_run_per_class, .init = setup)
{
    void *p[20];
    for (int i = 0; i < 20; i++) {
        p[i] = kheap_alloc(&heap, 40, 0); /* class 48 */
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % KHEAP_GRANULE, 0);
        cr_assert_eq(kheap_usable_size(&heap, p[i]), 48);
        memset(p[i], i, 40);
    }
    for (int i = 1; i < 20; i++) {
        cr_assert_eq((uintptr_t)p[i] - (uintptr_t)p[i - 1], 48, "slots are packed, no header");
        cr_assert_eq((uintptr_t)p[i] & ~(uintptr_t)(KHEAP_RUN_SIZE - 1),
                     (uintptr_t)p[0] & ~(uintptr_t)(KHEAP_RUN_SIZE - 1), "one run");
    }
    void *q = kheap_alloc(&heap, 100, 0); /* another class, another run */
    cr_assert_neq((uintptr_t)q & ~(uintptr_t)(KHEAP_RUN_SIZE - 1),
                  (uintptr_t)p[0] & ~(uintptr_t)(KHEAP_RUN_SIZE - 1));
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 2);
    cr_assert_eq(st.run_slots_used, 21);
    T_CHECK(&heap);
    /* The lowest free slot is reused first. */
    cr_assert_eq(kheap_free(&heap, p[7]), MM_OK);
    cr_assert_eq(kheap_free(&heap, p[3]), MM_OK);
    cr_assert_eq(kheap_alloc(&heap, 33, 0), p[3]);
    cr_assert_eq(kheap_alloc(&heap, 48, 0), p[7]);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    cr_assert_eq(kheap_free(&heap, q), MM_OK);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 0, "empty runs go back at once");
    t_assert_all_free(&heap);
}

Test(kheap_runs, every_class_and_size_zero, .init = setup)
{
    void *p[KHEAP_SMALL_MAX + 1];
    for (size_t s = 0; s <= KHEAP_SMALL_MAX; s++) {
        p[s] = kheap_alloc(&heap, s, 0);
        cr_assert_not_null(p[s]);
        size_t u = kheap_usable_size(&heap, p[s]);
        cr_assert_eq(u, s == 0 ? 16 : (s + 15) / 16 * 16, "size %zu", s);
        memset(p[s], 0xab, u);
    }
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    /* One run per class, and a second for 256: sizes 241..256 are sixteen
     * requests and its runs hold fifteen slots. */
    cr_assert_eq(st.runs, KHEAP_SMALL_MAX / KHEAP_GRANULE + 1);
    T_CHECK(&heap);
    void *big = kheap_alloc(&heap, KHEAP_RUN_MAX + 1, 0);
    cr_assert_eq(kheap_usable_size(&heap, big), t_block_size(KHEAP_RUN_MAX + 1) - 16,
                 "past the run limit: an ordinary block");
    void *al = kheap_alloc(&heap, 64, 64);
    cr_assert_eq((uintptr_t)al % 64, 0);
    cr_assert_eq(kheap_usable_size(&heap, al), t_block_size(64) - 16, "aligned: a block");
    for (size_t s = 0; s <= KHEAP_SMALL_MAX; s++)
        cr_assert_eq(kheap_free(&heap, p[s]), MM_OK);
    kheap_free(&heap, big);
    kheap_free(&heap, al);
    t_assert_all_free(&heap);
}

Test(kheap_runs, full_runs_leave_the_list_and_come_back, .init = setup)
{
    /* Class 256: 15 slots per run. */
    void *p[40];
    for (int i = 0; i < 40; i++)
        p[i] = kheap_alloc(&heap, 256, 0);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 3);
    T_CHECK(&heap);
    cr_assert_eq(kheap_free(&heap, p[0]), MM_OK); /* a full run gets room */
    T_CHECK(&heap);
    cr_assert_eq(kheap_alloc(&heap, 250, 0), p[0]);
    for (int i = 0; i < 15; i++)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 2);
    T_CHECK(&heap);
    for (int i = 15; i < 40; i++)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_runs, double_free_and_bad_pointers_are_exact, .init = setup)
{
    uint8_t *a = kheap_alloc(&heap, 64, 0), *b = kheap_alloc(&heap, 64, 0);
    cr_assert_eq(kheap_free(&heap, a), MM_OK);
    expect_rejected(a, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
    expect_rejected(b + 16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(b + 8, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    uint8_t *run = (uint8_t *)((uintptr_t)b & ~(uintptr_t)(KHEAP_RUN_SIZE - 1));
    expect_rejected(run, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER); /* the run block itself */
    expect_rejected(run + 16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER); /* its header */
    expect_rejected(run + 80 + 10 * 64, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE); /* a free slot */
    void *out = (void *)1;
    cr_assert_eq(kheap_realloc(&heap, a, 10, &out), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(kheap_usable_size(&heap, a), 0);
    cr_assert_eq(kheap_free(&heap, b), MM_OK);
    /* The run is gone: its slots are now plain free memory. */
    expect_rejected(b, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    t_assert_all_free(&heap);
}

Test(kheap_runs, realloc_stays_in_the_slot_while_it_fits, .init = setup)
{
    uint8_t *p = kheap_alloc(&heap, 20, 0);
    memset(p, 0x5c, 20);
    void *q = NULL;
    cr_assert_eq(kheap_realloc(&heap, p, 32, &q), MM_OK);
    cr_assert_eq(q, p);
    cr_assert_eq(kheap_realloc(&heap, p, 1, &q), MM_OK);
    cr_assert_eq(q, p);
    cr_assert_eq(kheap_realloc(&heap, p, 200, &q), MM_OK);
    cr_assert_neq(q, p);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(((uint8_t *)q)[i], 0x5c);
    cr_assert_eq(kheap_realloc(&heap, q, 5000, &q), MM_OK);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(((uint8_t *)q)[i], 0x5c);
    cr_assert_eq(kheap_realloc(&heap, q, 0, &q), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_runs, walker_and_switch, .init = setup)
{
    void *a = kheap_alloc(&heap, 16, 0);
    void *b = kheap_alloc(&heap, 16, 0);
    t_snap_t s = t_snapshot(&heap);
    cr_assert_eq(kheap_set_small_runs(&heap, false), MM_OK);
    void *c = kheap_alloc(&heap, 16, 0);
    cr_assert_eq(kheap_usable_size(&heap, c), 32, "runs off: a 48-byte block");
    cr_assert_eq(kheap_set_small_runs(&heap, true), MM_OK);
    cr_assert_eq(kheap_usable_size(&heap, kheap_alloc(&heap, 16, 0)), 16);
    cr_assert_eq(kheap_set_small_runs(NULL, true), MM_ERR_INVALID);
    kheap_t never_initialised;
    memset(&never_initialised, 0, sizeof(never_initialised));
    cr_assert_eq(kheap_set_small_runs(&never_initialised, false), MM_ERR_STATE);
    t_snap_free(&s);
    (void)a;
    (void)b;
    T_CHECK(&heap);
}

static bool find_run(void *arg, const kheap_block_info_t *info)
{
    const kheap_block_info_t **out = arg;
    if (info->run) {
        static kheap_block_info_t copy;
        copy = *info;
        *out = &copy;
        return false;
    }
    return true;
}

Test(kheap_runs, walker_reports_runs, .init = setup)
{
    for (int i = 0; i < 5; i++)
        (void)kheap_alloc(&heap, 128, 0);
    const kheap_block_info_t *info = NULL;
    cr_assert_eq(kheap_walk(&heap, find_run, &info), MM_OK);
    cr_assert_not_null(info);
    cr_assert(info->used);
    cr_assert_null(info->ptr);
    cr_assert_eq(info->usable, 128);
    cr_assert_eq(info->run_used, 5);
    cr_assert_eq(info->run_slots, (KHEAP_RUN_SIZE - 16 - 80) / 128);
    cr_assert_geq(info->size, KHEAP_RUN_SIZE);
}

Test(kheap_runs, check_finds_a_damaged_run, .init = setup)
{
    uint8_t *p = kheap_alloc(&heap, 64, 0);
    T_CHECK(&heap);
    uint64_t *run = (uint64_t *)((uintptr_t)p & ~(uintptr_t)(KHEAP_RUN_SIZE - 1));
    run[5] ^= 2; /* a bit of the slot bitmap */
    mm_report_t r;
    cr_assert_eq(kheap_check(&heap, &r), MM_ERR_CORRUPT);
    cr_assert_eq(r.kind, MM_REPORT_CORRUPT);
    run[5] ^= 2;
    T_CHECK(&heap);
    run[0] ^= 1; /* the magic */
    cr_assert_eq(kheap_check(&heap, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: run header damaged");
    run[0] ^= 1;
    T_CHECK(&heap);
}

/* Random traces with runs on: contents intact, check after every step,
 * nothing lost at the end. */
Test(kheap_runs, random_mixed_traces_lose_nothing, .timeout = 120)
{
    for (uint64_t seed = 21; seed <= 24; seed++) {
        kheap_t h;
        cr_assert_eq(kheap_init(&h, t_arena(512 * 1024), 512 * 1024), MM_OK);
        enum { LIVE = 300 };
        uint8_t *ptr[LIVE] = {0};
        size_t len[LIVE] = {0};
        uint64_t rng = seed;
        for (int i = 0; i < 4000; i++) {
            uint64_t r = t_rand(&rng);
            size_t k = (size_t)(r % LIVE);
            for (size_t j = 0; j < len[k]; j++)
                cr_assert_eq(ptr[k][j], (uint8_t)(k * 3 + j), "seed %llu op %d",
                             (unsigned long long)seed, i);
            unsigned op = (unsigned)((r >> 8) % 3);
            size_t sz = ((r >> 12) % 4) != 0 ? (size_t)((r >> 16) % 300) : (size_t)((r >> 16) % 5000);
            if (op == 0) {
                cr_assert_eq(kheap_free(&h, ptr[k]), MM_OK);
                ptr[k] = kheap_alloc(&h, sz, ((r >> 40) % 16) == 0 ? 128 : 0);
            } else if (op == 1) {
                void *out = NULL;
                mm_status_t st = kheap_realloc(&h, ptr[k], sz, &out);
                cr_assert(st == MM_OK || st == MM_ERR_NOMEM);
                if (st == MM_OK)
                    ptr[k] = out;
                else
                    sz = len[k];
            } else {
                cr_assert_eq(kheap_free(&h, ptr[k]), MM_OK);
                ptr[k] = NULL;
            }
            len[k] = ptr[k] ? sz : 0;
            for (size_t j = 0; j < len[k]; j++)
                ptr[k][j] = (uint8_t)(k * 3 + j);
            T_CHECK(&h);
        }
        kheap_stats_t st;
        cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
        cr_assert_gt(st.runs, 0);
        for (int k = 0; k < LIVE; k++)
            cr_assert_eq(kheap_free(&h, ptr[k]), MM_OK);
        t_assert_all_free(&h);
        cr_assert_eq(test_warnings.count, 0);
    }
}

/* A run on the last page of a region: its last slot ends right at the end
 * marker, closer to the end than any block could start. Found by perl on
 * the malloc shim. */
Test(kheap_runs, last_slot_of_a_run_at_the_region_end)
{
    kheap_t h;
    uint8_t *a = t_arena(8192);
    cr_assert_eq(kheap_init(&h, a, 8192), MM_OK);
    void *p[250];
    for (int i = 0; i < 250; i++) {
        p[i] = kheap_alloc(&h, 16, 0);
        cr_assert_not_null(p[i]);
    }
    cr_assert_eq((uintptr_t)p[249], (uintptr_t)a + 8192 - 16 - 16, "the run fills the last page");
    T_CHECK(&h);
    cr_assert_eq(kheap_usable_size(&h, p[249]), 16);
    cr_assert_eq(kheap_free(&h, p[249]), MM_OK);
    cr_assert_eq(kheap_free(&h, p[249]), MM_ERR_DOUBLE_FREE);
    for (int i = 0; i < 249; i++)
        cr_assert_eq(kheap_free(&h, p[i]), MM_OK);
    t_assert_all_free(&h);
}

/* Medium classes: eight per power of two, slots with a 16-byte header. */
Test(kheap_runs, medium_classes_round_by_an_eighth_at_most, .init = setup)
{
    static const struct {
        size_t req, slot;
    } cases[] = {{257, 288},   {288, 288},   {289, 320},   {512, 512},   {513, 576},
                 {1000, 1024}, {1025, 1152}, {2048, 2048}, {2049, 2304}, {3000, 3072},
                 {4000, 4096}, {4096, 4096}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *p = kheap_alloc(&heap, cases[i].req, 0);
        cr_assert_not_null(p);
        cr_assert_eq(kheap_usable_size(&heap, p), cases[i].slot, "request %zu", cases[i].req);
        cr_assert_leq(cases[i].slot - cases[i].req, cases[i].req / 8);
        memset(p, 0x3c, cases[i].slot);
        T_CHECK(&heap);
    }
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 10, "one run per distinct class");
}

Test(kheap_runs, medium_slots_and_their_errors, .init = setup)
{
    uint8_t *p[20];
    for (int i = 0; i < 20; i++) {
        p[i] = kheap_alloc(&heap, 1000, 0);
        memset(p[i], i, 1024);
    }
    for (int i = 1; i < 16; i++)
        cr_assert_eq((uintptr_t)p[i] - (uintptr_t)p[i - 1], 1024 + 16, "slot + its header");
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 2, "16 slots per 1 KiB run");
    T_CHECK(&heap);
    cr_assert_eq(kheap_free(&heap, p[3]), MM_OK);
    expect_rejected(p[3], MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
    expect_rejected(p[4] + 16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    expect_rejected(p[4] - 16, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    cr_assert_eq(kheap_alloc(&heap, 1000, 0), p[3], "lowest free slot again");
    for (int i = 0; i < 16; i++)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    /* That run is gone; its slots freed again still read as double frees. */
    expect_rejected(p[0], MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
    for (int i = 16; i < 20; i++)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_runs, damaged_slot_header_is_found, .init = setup)
{
    uint8_t *p = kheap_alloc(&heap, 600, 0);
    T_CHECK(&heap);
    uint64_t *hdr = (uint64_t *)(p - 16);
    hdr[1] ^= 4;
    mm_report_t r;
    cr_assert_eq(kheap_check(&heap, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: run slot header damaged");
    hdr[1] ^= 4;
    T_CHECK(&heap);
}

/* A long churn like the benchmark's: runs come and go, new runs and blocks
 * reuse their memory (stale slot headers included), and no valid free may
 * ever be mistaken for an error. */
Test(kheap_runs, long_churn_never_misreads_a_pointer, .timeout = 120)
{
    kheap_t h;
    size_t bytes = (size_t)128 << 20;
    cr_assert_eq(kheap_init(&h, t_arena(bytes), bytes), MM_OK);
    enum { LIVE = 5000 };
    static uint8_t *ptr[LIVE];
    uint64_t rng = 4242;
    for (int i = 0; i < 200000; i++) {
        uint64_t r = t_rand(&rng);
        size_t k = (size_t)(r % LIVE);
        if (ptr[k] != NULL) {
            cr_assert_eq(ptr[k][0], (uint8_t)k, "op %d", i);
            cr_assert_eq(kheap_free(&h, ptr[k]), MM_OK, "op %d", i);
        }
        unsigned c = (unsigned)((r >> 16) % 100);
        size_t sz = c < 70 ? 16 + (size_t)((r >> 24) % 241)
                  : c < 95 ? 257 + (size_t)((r >> 24) % 3840)
                           : 4096 + (size_t)((r >> 24) % 61440);
        ptr[k] = kheap_alloc(&h, sz, ((r >> 48) % 100) == 0 ? 64 : 0);
        cr_assert_not_null(ptr[k]);
        ptr[k][0] = (uint8_t)k; /* only the first byte, like the benchmark */
        if (i % 20000 == 0)
            T_CHECK(&h);
    }
    cr_assert_eq(test_warnings.count, 0);
    T_CHECK(&h);
    for (size_t k = 0; k < LIVE; k++)
        cr_assert_eq(kheap_free(&h, ptr[k]), MM_OK);
    t_assert_all_free(&h);
}

#else /* HADRON_MM_HEAP_REDZONES */

Test(kheap_runs, redzone_build_has_no_runs, .init = setup)
{
    cr_assert_eq(kheap_set_small_runs(&heap, true), MM_ERR_UNSUPPORTED);
    cr_assert_eq(kheap_set_small_runs(&heap, false), MM_OK);
    uint8_t *p = kheap_alloc(&heap, 16, 0);
    cr_assert_eq(kheap_usable_size(&heap, p), 16);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 0);
    p[16] = 0; /* guarded like every block */
    bool panicked = TEST_CATCH_PANIC(kheap_free(&heap, p));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_REDZONE);
    /* The panicking call still holds the lock: the heap is not used again. */
}

#endif

#if !HADRON_MM_HEAP_REDZONES
/* kheap.h: kheap_set_small_runs(false) affects "future small allocations;
 * existing runs drain as their slots are freed". After the switch, small
 * requests become ordinary blocks (never a slot of an existing run, even a
 * freed one), the runs keep serving frees, each run goes back to the heap
 * when its last slot is freed, and nothing is lost. */
typedef struct run_span {
    uintptr_t lo[8], hi[8];
    size_t n;
} run_span_t;

static bool collect_runs(void *arg, const kheap_block_info_t *info)
{
    run_span_t *r = arg;
    if (info->run && r->n < 8) {
        r->lo[r->n] = (uintptr_t)info->block;
        r->hi[r->n] = (uintptr_t)info->block + info->size;
        r->n++;
    }
    return true;
}

static bool in_a_run(const run_span_t *r, const void *p)
{
    for (size_t i = 0; i < r->n; i++)
        if ((uintptr_t)p >= r->lo[i] && (uintptr_t)p < r->hi[i])
            return true;
    return false;
}

Test(kheap_runs, runs_drain_after_switching_them_off, .init = setup)
{
    enum { SMALL = 40, MEDIUM = 12 };
    void *s[SMALL], *m[MEDIUM];
    for (int i = 0; i < SMALL; i++)
        cr_assert_not_null(s[i] = kheap_alloc(&heap, 16, 0));
    for (int i = 0; i < MEDIUM; i++)
        cr_assert_not_null(m[i] = kheap_alloc(&heap, 1000, 0));
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    size_t runs = st.runs;
    cr_assert_geq(runs, 2, "a small and a medium run");
    cr_assert_eq(st.run_slots_used, SMALL + MEDIUM);
    run_span_t r = {.n = 0};
    cr_assert_eq(kheap_walk(&heap, collect_runs, &r), MM_OK);
    cr_assert_eq(r.n, runs);

    cr_assert_eq(kheap_set_small_runs(&heap, false), MM_OK);
    /* Free half the slots: they stay in their runs, which stay. */
    for (int i = 0; i < SMALL; i += 2)
        cr_assert_eq(kheap_free(&heap, s[i]), MM_OK);
    for (int i = 0; i < MEDIUM; i += 2)
        cr_assert_eq(kheap_free(&heap, m[i]), MM_OK);
    T_CHECK(&heap);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, runs);
    cr_assert_eq(st.run_slots_used, SMALL / 2 + MEDIUM / 2);
    /* New small requests are blocks, outside every run, and do not refill
     * the freed slots. */
    void *n[8];
    for (int i = 0; i < 8; i++) {
        n[i] = kheap_alloc(&heap, i & 1 ? 1000 : 16, 0);
        cr_assert_not_null(n[i]);
        cr_assert_not(in_a_run(&r, n[i]), "allocation %d went into a run", i);
        cr_assert_eq(kheap_usable_size(&heap, n[i]), i & 1 ? 1008u : 32u);
    }
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.run_slots_used, SMALL / 2 + MEDIUM / 2, "no slot handed out");
    T_CHECK(&heap);
    /* Freeing the remaining slots returns every run to the heap. */
    for (int i = 1; i < SMALL; i += 2)
        cr_assert_eq(kheap_free(&heap, s[i]), MM_OK);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_lt(st.runs, runs, "the small run drained");
    for (int i = 1; i < MEDIUM; i += 2)
        cr_assert_eq(kheap_free(&heap, m[i]), MM_OK);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 0, "every run drained");
    cr_assert_eq(st.run_slots_used, 0);
    T_CHECK(&heap);
    /* A medium slot of a drained run freed again is still a double free
     * (as with runs on: kheap_runs/medium_slots_and_their_errors). */
    cr_assert_eq(kheap_free(&heap, m[0]), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(test_warnings.count, 1);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(kheap_free(&heap, n[i]), MM_OK);
    t_assert_all_free(&heap);
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_eq(st.runs, 0, "runs stay off");
}
#endif
