/*
 * Scaling with threads: each thread keeps N = 10k 64-byte objects of its
 * own live and, for a fixed number of steps, frees a random one and
 * allocates another in its place (a trace from a fixed seed per thread).
 * Run with 1 thread, then with 2 at once; ns per pair is wall time over
 * all pairs of all threads, the median of 5 alternating runs. On two cores
 * a perfectly scaling allocator halves it. Allocators: kmem_cache (one
 * cache shared by the threads), kmalloc (kheap_alloc/kheap_free, one heap),
 * glibc, and rows measured elsewhere on the same trace (jemalloc and
 * tcmalloc in a process of their own, preloaded; mimalloc by its mi_
 * functions). Prints `ratio <allocator>.pair.threads2 <2 threads>
 * <1 thread> <scaling>` and `ratio <allocator>.pair.threads2.<other> <ours>
 * <other's> <other's/ours>` lines, all with 2 threads.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include <hadron/mm/kheap.h>
#include <hadron/mm/kmem_cache.h>

#include "threads-pairs.h"

#define OBJ 64u
#define LIVE 10000u
#define STEPS 400000u
#define RUNS 5
#define MAX_THREADS 2

enum { KMEM, KMALLOC, GLIBC, OTHER, ALLOCATORS = OTHER };
static const char *const names[ALLOCATORS] = {"kmem_cache", "kheap", "glibc"};

static kheap_t heap;
static kmem_cache_t cache;
/* The OTHER allocator of threads_pairs_row. */
static void *(*other_alloc)(size_t);
static void (*other_free)(void *);

static void *do_alloc(int a)
{
    switch (a) {
    case KMEM: return kmem_cache_alloc(&cache);
    case KMALLOC: return kheap_alloc(&heap, OBJ, 0);
    case GLIBC: return malloc(OBJ);
    default: return other_alloc(OBJ);
    }
}

static void do_free(int a, void *p)
{
    switch (a) {
    case KMEM: kmem_cache_free(&cache, p); break;
    case KMALLOC: kheap_free(&heap, p); break;
    case GLIBC: free(p); break;
    default: other_free(p); break;
    }
}

typedef struct worker {
    int allocator;
    uint64_t seed;
    void **slot;
    pthread_barrier_t *start;
    double t0, t1; /* its steps, by its own clock readings */
} worker_t;

static double now_ns(void);

static void *work(void *arg)
{
    worker_t *w = arg;
    for (uint32_t i = 0; i < LIVE; i++)
        w->slot[i] = do_alloc(w->allocator);
    pthread_barrier_wait(w->start);
    w->t0 = now_ns();
    uint64_t x = w->seed;
    for (uint32_t s = 0; s < STEPS; s++) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        uint32_t v = (uint32_t)((z ^ (z >> 31)) % LIVE);
        do_free(w->allocator, w->slot[v]);
        void *p = do_alloc(w->allocator);
        if (p == NULL) {
            fprintf(stderr, "threads-pairs: allocation failed\n");
            exit(1);
        }
        *(volatile uint32_t *)p = v;
        w->slot[v] = p;
    }
    w->t1 = now_ns();
    pthread_barrier_wait(w->start);
    for (uint32_t i = 0; i < LIVE; i++)
        do_free(w->allocator, w->slot[i]);
    return NULL;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns per pair over all threads' pairs: from the first worker's start to
 * the last one's end, each read by the worker itself (CLOCK_MONOTONIC is
 * one clock on every CPU). The main thread's own readings would add its
 * wake-up latency after the barrier, which on a loaded machine is
 * milliseconds, longer than a run. */
static double run(int allocator, int threads)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_t tid[MAX_THREADS];
    worker_t w[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        w[t] = (worker_t){allocator, 0x7468726561647300ull + (uint64_t)t,
                          calloc(LIVE, sizeof(void *)), &start, 0, 0};
        pthread_create(&tid[t], NULL, work, &w[t]);
    }
    pthread_barrier_wait(&start);
    pthread_barrier_wait(&start);
    double first = w[0].t0, last = w[0].t1;
    for (int t = 1; t < threads; t++) {
        first = w[t].t0 < first ? w[t].t0 : first;
        last = w[t].t1 > last ? w[t].t1 : last;
    }
    double ns = (last - first) / ((double)STEPS * threads);
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        free(w[t].slot);
    }
    pthread_barrier_destroy(&start);
    return ns;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

void threads_pairs_row(void *(*alloc)(size_t), void (*release)(void *), threads_row_t *row)
{
    other_alloc = alloc;
    other_free = release;
    double t[MAX_THREADS][RUNS];
    for (int r = 0; r < RUNS; r++)
        for (int threads = 1; threads <= MAX_THREADS; threads++)
            t[threads - 1][r] = run(OTHER, threads);
    for (int k = 0; k < MAX_THREADS; k++) {
        qsort(t[k], RUNS, sizeof(double), cmp_double);
        row->ns[k] = t[k][RUNS / 2];
    }
}

void threads_pairs(const threads_row_t *others, int n_others)
{
    size_t arena_bytes = (size_t)1 << 30;
    void *arena = mmap(NULL, arena_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED || kheap_init(&heap, arena, arena_bytes) != MM_OK ||
        kmem_cache_init(&cache, &heap, "threads64", OBJ, 0, NULL, NULL) != MM_OK) {
        fprintf(stderr, "threads-pairs: no heap\n");
        return;
    }
    double t[ALLOCATORS][MAX_THREADS][RUNS];
    for (int r = 0; r < RUNS; r++)
        for (int threads = 1; threads <= MAX_THREADS; threads++)
            for (int a = 0; a < ALLOCATORS; a++)
                t[a][threads - 1][r] = run(a, threads);
    double med[ALLOCATORS][MAX_THREADS];
    for (int a = 0; a < ALLOCATORS; a++)
        for (int k = 0; k < MAX_THREADS; k++) {
            qsort(t[a][k], RUNS, sizeof(double), cmp_double);
            med[a][k] = t[a][k][RUNS / 2];
        }
    printf("threads: ns per free+allocate pair (wall time over all threads' pairs), %u live "
           "%u-byte objects per thread, %u steps each, median of %d alternating runs\n",
           LIVE, OBJ, STEPS, RUNS);
    printf("%-12s %12s %12s %12s\n", "allocator", "1 thread", "2 threads", "scaling");
    for (int a = 0; a < ALLOCATORS; a++)
        printf("%-12s %12.1f %12.1f %12.2f\n", names[a], med[a][0], med[a][1],
               med[a][0] / med[a][1]);
    for (int o = 0; o < n_others; o++)
        printf("%-12s %12.1f %12.1f %12.2f\n", others[o].name, others[o].ns[0], others[o].ns[1],
               others[o].ns[0] / others[o].ns[1]);
    for (int a = 0; a < GLIBC; a++) {
        printf("ratio %s.pair.threads2 %.1f %.1f %.2f\n", names[a], med[a][1], med[a][0],
               med[a][0] / med[a][1]);
        printf("ratio %s.pair.threads2.glibc %.1f %.1f %.2f\n", names[a], med[a][1],
               med[GLIBC][1], med[GLIBC][1] / med[a][1]);
        for (int o = 0; o < n_others; o++)
            printf("ratio %s.pair.threads2.%s %.1f %.1f %.2f\n", names[a], others[o].name,
                   med[a][1], others[o].ns[1], others[o].ns[1] / med[a][1]);
    }
    munmap(arena, arena_bytes);
}
