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
            g->nested_big = kheap_alloc(g->heap, 1 << 20, 0);
            g->nested_small = kheap_alloc(g->heap, 32, 0);
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
    T_BLOCKS(&h);
    cr_assert_eq(kheap_set_grow(&h, NULL, self_id, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, NULL, NULL), MM_OK);
    cr_assert_eq(kheap_set_grow(&h, NULL, NULL, NULL), MM_OK, "removing it");
    cr_assert_null(kheap_alloc(&h, 10, 0), "no callback, no memory");
}

Test(kheap_grow, adjacent_chunks_merge_into_one_region)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(64 << 20, 0);
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    T_BLOCKS(&h);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
    void *p[200];
    for (int i = 0; i < 200; i++) {
        p[i] = kheap_alloc(&h, 10000, 0);
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
        cr_assert_eq(kheap_free(&h, p[i]), MM_OK);
    t_assert_all_free(&h);
}

Test(kheap_grow, separate_chunks_become_regions)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(64 << 20, 8192);
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    T_BLOCKS(&h);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
    g->heap = &h;
    void *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = kheap_alloc(&h, 20000, 0);
        cr_assert_not_null(p[i]);
    }
    T_CHECK(&h);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.regions, (size_t)g->calls);
    cr_assert_eq(g->check_inside, MM_OK);
    for (int i = 99; i >= 0; i--)
        cr_assert_eq(kheap_free(&h, p[i]), MM_OK);
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
        T_BLOCKS(&h);
        cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
        void *p = kheap_alloc(&h, cases[i].size, cases[i].align);
        cr_assert_not_null(p, "case %zu", i);
        cr_assert_eq(g->calls, 1);
        cr_assert_geq(g->last_min, KHEAP_GROW_MIN);
        cr_assert_geq(g->last_min, cases[i].size + cases[i].align + KHEAP_REGION_OVERHEAD);
        if (cases[i].align)
            cr_assert_eq((uintptr_t)p % cases[i].align, 0);
        T_CHECK(&h);
        cr_assert_eq(kheap_free(&h, p), MM_OK);
        t_assert_all_free(&h);
    }
}

Test(kheap_grow, failing_callback_gives_null_and_counts)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(1 << 20, 0);
    g->fail = true;
    cr_assert_eq(kheap_init(&h, t_arena(8192), 8192), MM_OK);
    T_BLOCKS(&h);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, self_id, g), MM_OK);
    cr_assert_null(kheap_alloc(&h, 10000, 0));
    cr_assert_not_null(kheap_alloc(&h, 100, 0), "what fits is still served");
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&h, &st), MM_OK);
    cr_assert_eq(st.grow_calls, 1);
    cr_assert_eq(st.grow_failures, 1);
    T_CHECK(&h);
    g->fail = false;
    cr_assert_not_null(kheap_alloc(&h, 10000, 0));
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
    T_BLOCKS(&h);
    cr_assert_eq(kheap_set_grow(&h, tiny_grow, NULL, t_arena(4096)), MM_OK);
    cr_assert_null(kheap_alloc(&h, 10, 0));
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
    T_BLOCKS(&h);
    cr_assert_eq(kheap_set_grow(&h, grow_cb, with_identity ? self_id : NULL, g), MM_OK);
    g->heap = &h;
    g->nested = true;
    void *p = kheap_alloc(&h, 20000, 0);
    cr_assert_not_null(p, "the outer allocation succeeds");
    cr_assert_eq(g->calls, 1, "the nested miss did not grow again");
    cr_assert_null(g->nested_big, "nested allocation that does not fit gets NULL");
    cr_assert_not_null(g->nested_small, "nested allocation that fits is served");
    cr_assert_eq(g->nested_set_grow, MM_ERR_STATE);
    cr_assert(kheap_contains(&h, g->nested_small));
    T_CHECK(&h);
    cr_assert_eq(kheap_free(&h, g->nested_small), MM_OK);
    cr_assert_eq(kheap_free(&h, p), MM_OK);
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
    r->result = kheap_alloc(r->heap, r->size, 0);
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
    T_BLOCKS(&h);
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
    kheap_free(&h, a.result);
    kheap_free(&h, b.result);
    t_assert_all_free(&h);
}

Test(kheap_grow, concurrent_growers_both_grow_when_one_growth_is_not_enough, .timeout = 20)
{
    kheap_t h;
    grow_ctx_t *g = new_ctx(16 << 20, 0);
    g->sleep_ms = 100;
    g->exact = true;
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    T_BLOCKS(&h);
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
    T_BLOCKS(&h);
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
