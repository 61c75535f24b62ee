/*
 * kheap thread safety: two threads hammer one heap (allocating, freeing,
 * reallocating, growing it) and verify their own data; the heap must come
 * out consistent and whole.
 */
#include <pthread.h>

#include "kheap_test.h"

typedef struct arena_grow {
    pthread_mutex_t mu;
    uint8_t *base;
    size_t size, used;
    int calls;
} arena_grow_t;

static mm_status_t grow(void *arg, size_t min, void **base, size_t *size)
{
    arena_grow_t *g = arg;
    mm_status_t st = MM_ERR_NOMEM;
    pthread_mutex_lock(&g->mu);
    if (g->used + min <= g->size) {
        *base = g->base + g->used;
        *size = min;
        g->used += min;
        g->calls++;
        st = MM_OK;
    }
    pthread_mutex_unlock(&g->mu);
    return st;
}

static uintptr_t self_id(void *arg)
{
    (void)arg;
    return (uintptr_t)pthread_self();
}

static kheap_t heap;

/* Kept short: a ticket spinlock on an oversubscribed host hands the lock to
 * waiters that are not running, which can make this take 1000x longer. */
enum { LIVE = 256, OPS = 12000 };

typedef struct worker {
    uint64_t seed;
    int errors, irq_leaks;
    uint8_t *ptr[LIVE];
    size_t len[LIVE];
} worker_t;

static uint8_t tag(const worker_t *w, size_t k, size_t j)
{
    return (uint8_t)(w->seed * 31 + k * 7 + j);
}

static bool intact(const worker_t *w, size_t k)
{
    for (size_t j = 0; j < w->len[k]; j++)
        if (w->ptr[k][j] != tag(w, k, j))
            return false;
    return true;
}

static void fill(worker_t *w, size_t k)
{
    for (size_t j = 0; j < w->len[k]; j++)
        w->ptr[k][j] = tag(w, k, j);
}

static void *work(void *arg)
{
    worker_t *w = arg;
    uint64_t rng = w->seed;
    for (int i = 0; i < OPS; i++) {
        uint64_t r = t_rand(&rng);
        size_t k = (size_t)(r % LIVE);
        size_t sz = (size_t)((r >> 16) % ((r >> 32) % 16 == 0 ? 20000 : 400));
        if (w->ptr[k] != NULL && !intact(w, k))
            w->errors++;
        switch ((r >> 8) % 4) {
        case 0:
        case 1:
            if (w->ptr[k] != NULL && kheap_free(&heap, w->ptr[k]) != MM_OK)
                w->errors++;
            w->ptr[k] = kheap_alloc(&heap, sz, ((r >> 40) % 8 == 0) ? 256 : 0);
            w->len[k] = w->ptr[k] ? sz : 0;
            break;
        case 2: {
            void *out = NULL;
            mm_status_t st = kheap_realloc(&heap, w->ptr[k], sz, &out);
            if (st == MM_OK) {
                w->ptr[k] = out;
                w->len[k] = out ? sz : 0;
            } else if (st != MM_ERR_NOMEM) {
                w->errors++;
            }
            break;
        }
        default:
            if (w->ptr[k] != NULL && kheap_free(&heap, w->ptr[k]) != MM_OK)
                w->errors++;
            w->ptr[k] = NULL;
            w->len[k] = 0;
            break;
        }
        if (w->ptr[k] != NULL)
            fill(w, k);
        if (test_irq_depth() != 0)
            w->irq_leaks++;
        if (i % 2000 == 0 && kheap_check(&heap, NULL) != MM_OK)
            w->errors++;
    }
    return NULL;
}

static void two_workers(void)
{
    arena_grow_t g = {PTHREAD_MUTEX_INITIALIZER, t_arena(256 << 20), 256 << 20, 0, 0};
    cr_assert_eq(kheap_init(&heap, t_arena(65536), 65536), MM_OK);
    cr_assert_eq(kheap_set_grow(&heap, grow, self_id, &g), MM_OK);
    worker_t *w = calloc(2, sizeof(worker_t));
    w[0].seed = 11;
    w[1].seed = 12;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(w[i].errors, 0, "worker %d", i);
        cr_assert_eq(w[i].irq_leaks, 0, "worker %d", i);
    }
    T_CHECK(&heap);
    cr_assert_gt(g.calls, 0, "the heap grew under contention");
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < LIVE; k++) {
            cr_assert(w[i].ptr[k] == NULL || intact(&w[i], k));
            cr_assert_eq(kheap_free(&heap, w[i].ptr[k]), MM_OK);
        }
    t_assert_all_free(&heap);
    cr_assert_eq(test_warnings.count, 0);
    cr_assert_eq(test_panics.count, 0);
    free(w);
}

Test(kheap_thread, two_threads_share_one_heap, .timeout = 120)
{
    two_workers();
}


