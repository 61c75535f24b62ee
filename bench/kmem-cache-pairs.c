/*
 * kmem_cache against glibc on fixed-size objects: with N 64-byte objects
 * live, each step frees a random one and allocates a new one in its place
 * (the trace from a fixed seed, the same for both). ns per pair, median of
 * 7 batches, the two allocators' batches alternating so the machine's noise
 * falls on both. Prints a table and `ratio kmem_cache.pair.<N>` lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include <hadron/mm/kmem_cache.h>

#include "kmem-cache-pairs.h"

#define OBJ 64u
#define RUNS 7
#define BATCH 200000u

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static uint64_t rng;

static uint32_t next_victim(uint32_t n)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

typedef struct side {
    void *(*alloc)(void *ctx);
    void (*free)(void *ctx, void *p);
    void *ctx;
    void **slot;
} side_t;

static void *cache_alloc(void *ctx)
{
    return kmem_cache_alloc(ctx);
}

static void cache_free(void *ctx, void *p)
{
    kmem_cache_free(ctx, p);
}

static void *glibc_alloc(void *ctx)
{
    (void)ctx;
    return malloc(OBJ);
}

static void glibc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static double batch(side_t *s, const uint32_t *victims, size_t count)
{
    double t0 = now_ns();
    for (size_t i = 0; i < count; i++) {
        uint32_t v = victims[i];
        s->free(s->ctx, s->slot[v]);
        void *p = s->alloc(s->ctx);
        if (p == NULL) {
            fprintf(stderr, "kmem-cache-pairs: allocation failed\n");
            exit(1);
        }
        *(volatile uint64_t *)p = v;
        s->slot[v] = p;
    }
    return (now_ns() - t0) / (double)count;
}

void kmem_cache_pairs(void)
{
    static const uint32_t ns[] = {1000, 10000, 100000};
    static const char *const tag[] = {"1k", "10k", "100k"};
    size_t arena_bytes = (size_t)1 << 30;
    void *arena = mmap(NULL, arena_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE, -1, 0);
    if (arena == MAP_FAILED) {
        fprintf(stderr, "kmem-cache-pairs: no arena\n");
        return;
    }
    double res[3][2];
    uint32_t *victims = malloc(sizeof(uint32_t) * BATCH * (RUNS + 1));
    for (int k = 0; k < 3; k++) {
        uint32_t n = ns[k];
        static kheap_t heap;
        static kmem_cache_t cache;
        kheap_init(&heap, arena, arena_bytes);
        kmem_cache_init(&cache, &heap, "bench64", OBJ, 0, NULL, NULL);
        side_t sides[2] = {{cache_alloc, cache_free, &cache, calloc(n, sizeof(void *))},
                           {glibc_alloc, glibc_free, NULL, calloc(n, sizeof(void *))}};
        for (int s = 0; s < 2; s++)
            for (uint32_t i = 0; i < n; i++)
                sides[s].slot[i] = sides[s].alloc(sides[s].ctx);
        rng = 0x6b6d656d63616368ull ^ n;
        for (size_t i = 0; i < BATCH * (RUNS + 1); i++)
            victims[i] = next_victim(n);
        double t[2][RUNS];
        for (int s = 0; s < 2; s++)
            batch(&sides[s], victims, BATCH); /* warm-up */
        for (int r = 0; r < RUNS; r++)
            for (int s = 0; s < 2; s++)
                t[s][r] = batch(&sides[s], victims + (size_t)(r + 1) * BATCH, BATCH);
        for (int s = 0; s < 2; s++) {
            qsort(t[s], RUNS, sizeof(double), cmp_double);
            res[k][s] = t[s][RUNS / 2];
            for (uint32_t i = 0; i < n; i++)
                sides[s].free(sides[s].ctx, sides[s].slot[i]);
            free(sides[s].slot);
        }
        kmem_cache_stats_t st;
        if (kmem_cache_shrink(&cache, NULL) != MM_OK ||
            kmem_cache_get_stats(&cache, &st) != MM_OK || st.live != 0 || st.slabs != 0 ||
            kmem_cache_destroy(&cache, NULL) != MM_OK) {
            fprintf(stderr, "kmem-cache-pairs: the cache did not end empty\n");
            exit(1);
        }
    }
    free(victims);
    munmap(arena, arena_bytes);
    printf("kmem_cache: ns per free+allocate pair of %u-byte objects, N live, median of %d "
           "alternating batches of %u\n",
           OBJ, RUNS, BATCH);
    printf("%-12s %12s %12s %12s\n", "allocator", "N=1k", "N=10k", "N=100k");
    printf("%-12s %12.1f %12.1f %12.1f\n", "kmem_cache", res[0][0], res[1][0], res[2][0]);
    printf("%-12s %12.1f %12.1f %12.1f\n", "glibc", res[0][1], res[1][1], res[2][1]);
    for (int k = 0; k < 3; k++)
        printf("ratio kmem_cache.pair.%s %.1f %.1f %.2f\n", tag[k], res[k][0], res[k][1],
               res[k][1] / res[k][0]);
}
