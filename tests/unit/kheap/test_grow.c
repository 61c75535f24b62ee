/*
 * kheap growth: the callback's request, adjacent and separate regions,
 * failure, re-entrancy (a callback that allocates), concurrent growers.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "kheap_test.h"

typedef struct grow_ctx {
    uint8_t *arena;
    size_t arena_size, used;
    size_t gap;        /* bytes skipped before each chunk: 0 = adjacent chunks */
    bool exact;        /* hand out exactly min_bytes */
    bool fail;
    int calls;
    size_t last_min;
    int sleep_ms;
    atomic_bool in_callback;
    atomic_int started;
    kheap_t *heap;
    bool nested;       /* allocate from the heap inside the callback */
    void *nested_big, *nested_small;
    mm_status_t nested_set_grow;
    int irq_depth_seen;
    mm_status_t check_inside;
    pthread_mutex_t mu;
} grow_ctx_t;

static mm_status_t grow_cb(void *arg, size_t min, void **base, size_t *size)
{
    grow_ctx_t *g = arg;
    atomic_store(&g->in_callback, true);
    atomic_fetch_add(&g->started, 1);
    pthread_mutex_lock(&g->mu);
    g->calls++;
    g->last_min = min;
    g->irq_depth_seen = test_irq_depth();
    pthread_mutex_unlock(&g->mu);
    if (g->heap != NULL) {
        g->check_inside = kheap_check(g->heap, NULL); /* the lock is free */
        if (g->nested) {
            g->nested_big = kheap_block_alloc(g->heap, 1 << 20, 0);
            g->nested_small = kheap_block_alloc(g->heap, 32, 0);
            g->nested_set_grow = kheap_set_grow(g->heap, NULL, NULL, NULL);
        }
    }
    if (g->sleep_ms > 0)
        usleep((useconds_t)g->sleep_ms * 1000);
    mm_status_t st = MM_ERR_NOMEM;
    pthread_mutex_lock(&g->mu);
    size_t want = g->exact ? min : min + 4096;
    if (!g->fail && g->used + g->gap + want <= g->arena_size) {
        g->used += g->gap;
        *base = g->arena + g->used;
        *size = want;
        g->used += want;
        st = MM_OK;
    }
    pthread_mutex_unlock(&g->mu);
    atomic_store(&g->in_callback, false);
    return st;
}

static uintptr_t self_id(void *arg)
{
    (void)arg;
    return (uintptr_t)pthread_self();
}

static grow_ctx_t *new_ctx(size_t arena, size_t gap)
{
    grow_ctx_t *g = calloc(1, sizeof(*g));
    g->arena = t_arena(arena);
    g->arena_size = arena;
    g->gap = gap;
    pthread_mutex_init(&g->mu, NULL);
    return g;
}

Test(kheap_grow, set_grow_arguments)
{
    kheap_t h;
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, NULL, self_id, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, NULL, NULL), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, NULL, NULL, NULL), MM_OK, "removing it");
    cr_assert_null(kheap_block_alloc(&h, 10, 0), "no callback, no memory");
}

Test(kheap_grow, adjacent_chunks_merge_into_one_region)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(64 << 20, 0);
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
    void *p[200];
    for (int i = 0; i < 200; i++) {
        p[i] = kheap_block_alloc(&h, 10000, 0);
        cr_assert_not_null(p[i]);
        T_CHECK(&h);
    }
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_gt(g->calls, 3);
    cr_assert_eq(st.grow_calls, (uint64_t)g->calls);
    cr_assert_eq(st.regions, 1, "every chunk was adjacent to the last");
    cr_assert_eq(st.total_bytes, g->used);
    cr_assert_eq(g->irq_depth_seen, 0, "callback ran with the lock dropped");
    cr_assert_eq(g->check_inside, MM_OK);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(kheap_block_free(&h, p[i]), MM_OK);
    t_assert_all_free(&h);
}

Test(kheap_grow, separate_chunks_become_regions)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(64 << 20, 8192);
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
    g->heap = &h;
    void *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = kheap_block_alloc(&h, 20000, 0);
        cr_assert_not_null(p[i]);
    }
    T_CHECK(&h);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, (size_t)g->calls);
    cr_assert_eq(g->check_inside, MM_OK);
    for (int i = 99; i >= 0; i--)
        cr_assert_eq(kheap_block_free(&h, p[i]), MM_OK);
    t_assert_all_free(&h);
}

/* The request covers size, alignment padding and overhead: a callback that
 * gives exactly what was asked, in a region that merges with nothing, is
 * enough for the allocation that asked. */
Test(kheap_grow, request_is_enough_for_any_size_and_alignment)
{
    struct {
        size_t size, align;
    } cases[] = {{1, 0},          {100000, 0},       {100000, 4096}, {5000, 65536},
                 {300000, 1 << 20}, {65536 - 64, 0},  {65536, 16},    {70000, 64},
                 {1 << 22, 1 << 21}, {0, 1 << 16}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kheap_t h;
        grow_ctx_t *g = new_ctx(64 << 20, 4096 + 16 * i);
        g->exact = true;
        cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
        cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
        void *p = kheap_block_alloc(&h, cases[i].size, cases[i].align);
        cr_assert_not_null(p, "case %zu", i);
        cr_assert_eq(g->calls, 1);
        cr_assert_geq(g->last_min, KHEAP_GROW_MIN);
        cr_assert_geq(g->last_min, cases[i].size + cases[i].align + KHEAP_REGION_OVERHEAD);
        if (cases[i].align)
            cr_assert_eq((uintptr_t)p % cases[i].align, 0);
        T_CHECK(&h);
        cr_assert_eq(kheap_block_free(&h, p), MM_OK);
        t_assert_all_free(&h);
    }
}

Test(kheap_grow, failing_callback_gives_null_and_counts)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(1 << 20, 0);
    g->fail = true;
    cr_assert_eq(kheap_init(&h, t_arena(8192), 8192), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
    cr_assert_null(kheap_block_alloc(&h, 10000, 0));
    cr_assert_not_null(kheap_block_alloc(&h, 100, 0), "what fits is still served");
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.grow_calls, 1);
    cr_assert_eq(st.grow_failures, 1);
    T_CHECK(&h);
    g->fail = false;
    cr_assert_not_null(kheap_block_alloc(&h, 10000, 0));
    T_CHECK(&h);
}

static mm_status_t tiny_grow(void *arg, size_t min, void **base, size_t *size)
{
    (void)min;
    *base = arg;
    *size = 64; /* smaller than a region can be */
    return MM_OK;
}

Test(kheap_grow, unusable_memory_from_the_callback_is_a_failure)
{
    kheap_t h;
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, tiny_grow, NULL, t_arena(4096)), MM_OK);
    cr_assert_null(kheap_block_alloc(&h, 10, 0));
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.grow_failures, 1);
    cr_assert_eq(st.regions, 0);
    T_CHECK(&h);
}

static void reentrant(bool with_identity)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(16 << 20, 4096);
    cr_assert_eq(kheap_init(&h, t_arena(8192), 8192), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, with_identity ? self_id : NULL, g), MM_OK);
    g->heap = &h;
    g->nested = true;
    void *p = kheap_block_alloc(&h, 20000, 0);
    cr_assert_not_null(p, "the outer allocation succeeds");
    cr_assert_eq(g->calls, 1, "the nested miss did not grow again");
    cr_assert_null(g->nested_big, "nested allocation that does not fit gets NULL");
    cr_assert_not_null(g->nested_small, "nested allocation that fits is served");
    cr_assert_eq(g->nested_set_grow, MM_ERR_STATE);
    cr_assert(kheap_contains(&h, g->nested_small));
    T_CHECK(&h);
    cr_assert_eq(kheap_block_free(&h, g->nested_small), MM_OK);
    cr_assert_eq(kheap_block_free(&h, p), MM_OK);
    t_assert_all_free(&h);
}

Test(kheap_grow, callback_that_allocates_gets_null_not_deadlock, .timeout = 20)
{
    reentrant(true);
}

Test(kheap_grow, callback_that_allocates_without_identity, .timeout = 20)
{
    reentrant(false);
}

typedef struct racer {
    kheap_t *heap;
    size_t size;
    void *result;
    bool callback_running_at_return;
    grow_ctx_t *g;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    r->result = kheap_block_alloc(r->heap, r->size, 0);
    r->callback_running_at_return = atomic_load(&r->g->in_callback);
    return NULL;
}

static void wait_started(grow_ctx_t *g)
{
    while (atomic_load(&g->started) == 0)
        usleep(1000);
}

Test(kheap_grow, concurrent_growers_wait_and_share_one_growth, .timeout = 20)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(16 << 20, 0);
    g->sleep_ms = 150;
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
    racer_t a = {&h, 1000, NULL, false, g}, b = {&h, 2000, NULL, false, g};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &a);
    wait_started(g);
    pthread_create(&tb, NULL, race, &b); /* arrives while a grows */
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_not_null(a.result);
    cr_assert_not_null(b.result);
    cr_assert_neq(a.result, b.result);
    cr_assert_eq(g->calls, 1, "the waiter retried on the grower's memory");
    T_CHECK(&h);
    kheap_block_free(&h, a.result);
    kheap_block_free(&h, b.result);
    t_assert_all_free(&h);
}

Test(kheap_grow, concurrent_growers_both_grow_when_one_growth_is_not_enough, .timeout = 20)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(16 << 20, 0);
    g->sleep_ms = 100;
    g->exact = true;
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
    racer_t a = {&h, 60000, NULL, false, g}, b = {&h, 60000, NULL, false, g};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &a);
    wait_started(g);
    pthread_create(&tb, NULL, race, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_not_null(a.result);
    cr_assert_not_null(b.result);
    cr_assert_eq(g->calls, 2);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 1, "the second chunk merged with the first");
    T_CHECK(&h);
}

Test(kheap_grow, without_identity_a_concurrent_miss_fails_fast, .timeout = 20)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(16 << 20, 0);
    g->sleep_ms = 300;
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, NULL, g), MM_OK);
    racer_t a = {&h, 1000, NULL, false, g}, b = {&h, 1000, NULL, false, g};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &a);
    wait_started(g);
    pthread_create(&tb, NULL, race, &b);
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);
    cr_assert_not_null(a.result);
    cr_assert_null(b.result, "no identity: the other context cannot wait safely");
    cr_assert(b.callback_running_at_return, "it failed while the growth was still running");
    cr_assert_eq(g->calls, 1);
    T_CHECK(&h);
}

/* kheap.md (Growth): memory the callback returns beyond KHEAP_REGION_MAX is
 * clamped and the excess is never used. The callback hands out
 * KHEAP_REGION_MAX + 1 MiB, of which the surplus is mapped PROT_NONE: any
 * access to it kills the test. The heap becomes one region of exactly
 * KHEAP_REGION_MAX, every block lies inside it, kheap_check passes, and a
 * request larger than what is left grows again instead of using the excess.
 * Without heap_redzones only: with them, a new region is filled with the
 * free pattern and kheap_check reads it back (32 GiB each way). */
#if !HADRON_MM_HEAP_REDZONES
#define CLAMP_SURPLUS ((size_t)1 << 20)

typedef struct clamp_ctx {
    uint8_t *base;
    int calls;
    size_t last_min;
} clamp_ctx_t;

static mm_status_t clamp_cb(void *arg, size_t min, void **base, size_t *size)
{
    clamp_ctx_t *c = arg;
    c->calls++;
    c->last_min = min;
    if (c->calls > 1)
        return MM_ERR_NOMEM;
    void *p = mmap(NULL, KHEAP_REGION_MAX + CLAMP_SURPLUS, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return MM_ERR_NOMEM;
    if (mprotect(p, KHEAP_REGION_MAX, PROT_READ | PROT_WRITE) != 0)
        return MM_ERR_NOMEM;
    c->base = p;
    *base = p;
    *size = KHEAP_REGION_MAX + CLAMP_SURPLUS;
    return MM_OK;
}

typedef struct clamp_walk {
    uintptr_t lo, hi;
    size_t blocks, bytes;
    bool outside;
} clamp_walk_t;

static bool clamp_walk_cb(void *arg, const kheap_block_info_t *info)
{
    clamp_walk_t *w = arg;
    uintptr_t b = (uintptr_t)info->block;
    if (b < w->lo || b + info->size > w->hi)
        w->outside = true;
    w->blocks++;
    w->bytes += info->size;
    return true;
}

Test(kheap_grow, oversized_growth_is_clamped_to_region_max)
{
    kheap_t h;
    clamp_ctx_t c = {0};
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, clamp_cb, self_id, &c), MM_OK);
    uint8_t *p = kheap_block_alloc(&h, 1 << 20, 0);
    cr_assert_not_null(p, "the clamped region serves the request");
    cr_assert_eq(c.calls, 1);
    uintptr_t lo = (uintptr_t)c.base, hi = lo + KHEAP_REGION_MAX;
    cr_assert((uintptr_t)p >= lo && (uintptr_t)p + (1 << 20) <= hi);
    memset(p, 0x5a, 1 << 20);
    T_CHECK(&h);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, 1);
    cr_assert_eq(st.total_bytes, KHEAP_REGION_MAX, "clamped, not %zu", st.total_bytes);
    cr_assert_eq(st.grow_calls, 1);
    cr_assert_eq(st.grow_failures, 0, "clamping is not a failure");
    cr_assert_lt(st.largest_free, KHEAP_REGION_MAX - (1 << 20));
    clamp_walk_t w = {.lo = lo, .hi = hi};
    cr_assert_eq(kheap_walk(&h, clamp_walk_cb, &w), MM_OK);
    cr_assert_not(w.outside, "a block reaches into the surplus");
    cr_assert_lt(w.bytes, KHEAP_REGION_MAX);

    /* More than is left: the surplus is not used; the heap grows again
     * (the callback now fails) and the allocation fails cleanly. */
    size_t left = st.largest_free;
    cr_assert_null(kheap_block_alloc(&h, left, 0));
    cr_assert_eq(c.calls, 2, "a miss grows again");
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.total_bytes, KHEAP_REGION_MAX);
    cr_assert_eq(st.grow_failures, 1);
    T_CHECK(&h);

    /* Nearly all of the clamped region is still usable (headers only are
     * touched), and everything frees back into one block. */
    uint8_t *big = kheap_block_alloc(&h, left - 4096, 0);
    cr_assert_not_null(big);
    cr_assert((uintptr_t)big + left - 4096 <= hi);
    T_CHECK(&h);
    cr_assert_eq(kheap_block_free(&h, big), MM_OK);
    cr_assert_eq(kheap_block_free(&h, p), MM_OK);
    t_assert_all_free(&h);
    T_CHECK(&h);
    munmap(c.base, KHEAP_REGION_MAX + CLAMP_SURPLUS);
}
#endif
