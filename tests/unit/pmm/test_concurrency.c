#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "pmm_fixture.h"

enum { ROUNDS = 60000, HELD_MAX = 600 };

typedef struct worker {
    pmm_t *p;
    unsigned char id;
    uint64_t seed;
    _Atomic unsigned char *owner; /* per frame: 0 free, else holder id */
    long errors;
    long allocs;
} worker_t;

typedef struct held {
    mm_paddr_t pa;
    size_t n;
} held_t;

static void take(worker_t *w, mm_paddr_t pa, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char prev = atomic_exchange(&w->owner[pa / FX_PG + i], w->id);
        if (prev != 0)
            w->errors++; /* handed out twice */
    }
}

static void give(worker_t *w, mm_paddr_t pa, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (atomic_exchange(&w->owner[pa / FX_PG + i], 0) != w->id)
            w->errors++;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    held_t *held = calloc(HELD_MAX, sizeof *held);
    size_t nheld = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t x = fx_rand(&w->seed);
        if (nheld < HELD_MAX && (x % 3 != 0 || nheld == 0)) {
            mm_paddr_t pa;
            size_t n = 1;
            mm_status_t st;
            if (x % 8 == 0) {
                n = 1 + (x >> 8) % 16;
                st = pmm_alloc_contig(w->p, n, (size_t)1 << ((x >> 16) % 4), MM_PADDR_MAX, &pa);
            } else {
                st = pmm_alloc(w->p, &pa);
            }
            if (st == MM_OK) {
                take(w, pa, n);
                held[nheld++] = (held_t){pa, n};
                w->allocs++;
            } else if (st != MM_ERR_NOMEM) {
                w->errors++;
            }
        } else {
            size_t i = (x >> 8) % nheld;
            give(w, held[i].pa, held[i].n);
            mm_status_t st = held[i].n == 1 ? pmm_free(w->p, held[i].pa)
                                            : pmm_free_contig(w->p, held[i].pa, held[i].n);
            if (st != MM_OK)
                w->errors++;
            held[i] = held[--nheld];
        }
        if (test_irq_depth() != 0)
            w->errors++;
    }
    while (nheld > 0) {
        nheld--;
        give(w, held[nheld].pa, held[nheld].n);
        if (pmm_free_contig(w->p, held[nheld].pa, held[nheld].n) != MM_OK)
            w->errors++;
    }
    free(held);
    return NULL;
}

/* Two threads allocating and freeing single frames and runs on one
 * instance: no frame is ever held by both, nothing is lost. A small
 * memory (4 MiB) keeps the allocator near exhaustion so NOMEM paths race
 * too. */
Test(pmm, two_threads_never_share_a_frame)
{
    pmm_t p;
    fx_init_simple(&p, 0, 4 * FX_MIB);
    pmm_stats_t s0 = fx_stats(&p);
    _Atomic unsigned char *owner = calloc(s0.span_frames, sizeof *owner);
    worker_t w[2] = {
        {.p = &p, .id = 1, .seed = 0x1234567u, .owner = owner},
        {.p = &p, .id = 2, .seed = 0x89abcdefu, .owner = owner},
    };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, run, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(w[0].errors, 0, "thread 1: %ld errors", w[0].errors);
    cr_assert_eq(w[1].errors, 0, "thread 2: %ld errors", w[1].errors);
    cr_assert_gt(w[0].allocs + w[1].allocs, ROUNDS / 2);
    cr_assert_eq(fx_stats(&p).free_frames, s0.free_frames);
    cr_assert_not(mm_spin_is_locked(&p.lock));
    fx_check(&p);
    free(owner);
}
