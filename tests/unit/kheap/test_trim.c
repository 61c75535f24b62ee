/*
 * kheap giving memory back: the release callback, the automatic trim past
 * the threshold, kheap_trim, refusals, the caller's initial region.
 *
 * Released pages are made inaccessible (PROT_NONE) by the callback, so any
 * later touch of them by the heap is a crash, not a silent pass.
 */
#include "kheap_test.h"

#define GROW_ARENA ((size_t)4 << 30) /* address space only (MAP_NORESERVE) */

typedef struct src {
    uint8_t *arena;
    size_t used;
    size_t calls, bytes, refused;
    mm_status_t answer;  /* what the release callback returns */
    bool allocate;       /* the callback allocates from the heap */
    uintptr_t lo[256], hi[256];
} src_t;

static kheap_t heap;
static src_t src;

static mm_status_t grow(void *ctx, size_t min, void **base, size_t *size)
{
    src_t *s = ctx;
    if (s->used + min > GROW_ARENA)
        return MM_ERR_NOMEM;
    *base = s->arena + s->used;
    *size = min;
    s->used += min;
    return MM_OK;
}

static mm_status_t release(void *ctx, void *base, size_t size)
{
    src_t *s = ctx;
    uintptr_t b = (uintptr_t)base;
    cr_assert_eq(b % KHEAP_PAGE, 0, "page-aligned");
    cr_assert_eq(size % KHEAP_PAGE, 0, "whole pages");
    cr_assert_geq(b, (uintptr_t)s->arena, "only grown memory comes back");
    cr_assert_leq(b + size, (uintptr_t)s->arena + s->used);
    if (s->allocate) {
        void *p = kheap_alloc(&heap, 100, 0);
        if (p != NULL)
            cr_assert_eq(kheap_free(&heap, p), MM_OK);
    }
    if (s->answer != MM_OK) {
        s->refused++;
        return s->answer;
    }
    for (size_t i = 0; i < s->calls && i < 256; i++)
        cr_assert(b + size <= s->lo[i] || b >= s->hi[i], "released twice");
    if (s->calls < 256) {
        s->lo[s->calls] = b;
        s->hi[s->calls] = b + size;
    }
    s->calls++;
    s->bytes += size;
    cr_assert_eq(mprotect(base, size, PROT_NONE), 0);
    return MM_OK;
}

static void setup(void)
{
    memset(&src, 0, sizeof src);
    src.arena = t_arena(GROW_ARENA);
    src.answer = MM_OK;
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
    cr_assert_eq(kheap_set_grow(&heap, grow, NULL, &src), MM_OK);
    cr_assert_eq(kheap_set_release(&heap, release, &src, 0), MM_OK);
}

static kheap_stats_t stats(void)
{
    kheap_stats_t s;
    cr_assert_eq(kheap_get_stats(&heap, &s), MM_OK);
    return s;
}

Test(kheap_trim, errors)
{
    kheap_t z;
    memset(&z, 0, sizeof z);
    size_t r = 7;
    cr_assert_eq(kheap_set_release(NULL, release, NULL, 0), MM_ERR_INVALID);
    cr_assert_eq(kheap_set_release(&z, release, NULL, 0), MM_ERR_STATE);
    cr_assert_eq(kheap_trim(NULL, &r), MM_ERR_INVALID);
    cr_assert_eq(kheap_trim(&z, &r), MM_ERR_STATE);
    cr_assert_eq(kheap_init(&z, t_arena(65536), 65536), MM_OK);
    cr_assert_eq(kheap_trim(&z, &r), MM_ERR_UNSUPPORTED, "no callback");
    cr_assert_eq(r, 7, "untouched on error");
}

/* Large blocks freed: their pages go back past the threshold, the heap
 * never touches them again, and what remains still coalesces into one
 * free block per region. */
Test(kheap_trim, freeing_large_blocks_gives_pages_back, .init = setup)
{
    enum { N = 24 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = kheap_alloc(&heap, (size_t)(i + 1) * 200 * 1024, 0);
        cr_assert_not_null(p[i]);
        memset(p[i], 0x11, (size_t)(i + 1) * 200 * 1024);
    }
    kheap_stats_t grown = stats();
    cr_assert_eq(src.calls, 0, "nothing free yet");
    for (int i = 0; i < N; i += 2)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    cr_assert_gt(src.calls, 0, "blocks past the threshold went back");
    kheap_stats_t s = stats();
    cr_assert_eq(s.released_bytes, src.bytes);
    cr_assert_eq(s.release_calls, src.calls);
    cr_assert_eq(s.total_bytes, grown.total_bytes - src.bytes);
    T_CHECK(&heap);
    /* The heap keeps working around the holes, which it never touches. */
    for (int i = 0; i < N; i += 2) {
        p[i] = kheap_alloc(&heap, 300 * 1024, 0);
        cr_assert_not_null(p[i]);
        memset(p[i], 0x22, 300 * 1024);
    }
    T_CHECK(&heap);
    for (int i = 0; i < N; i++)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    T_CHECK(&heap);
    t_assert_all_free(&heap);
    s = stats();
    cr_assert_lt(s.total_bytes, grown.total_bytes, "the heap is smaller than at its peak");
}

/* The callback may refuse: the range is the heap's again, nothing is lost,
 * and no automatic trim is tried until the heap grows again. */
Test(kheap_trim, a_refused_release_keeps_the_memory, .init = setup)
{
    src.answer = MM_ERR_FULL;
    void *a = kheap_alloc(&heap, 4 << 20, 0), *b = kheap_alloc(&heap, 4 << 20, 0);
    kheap_stats_t before = stats();
    cr_assert_eq(kheap_free(&heap, a), MM_OK);
    cr_assert_eq(src.refused, 1);
    kheap_stats_t s = stats();
    cr_assert_eq(s.total_bytes, before.total_bytes, "nothing lost");
    cr_assert_eq(s.released_bytes, 0);
    T_CHECK(&heap);
    cr_assert_eq(kheap_free(&heap, b), MM_OK);
    cr_assert_eq(src.refused, 1, "no second automatic try");
    size_t r = 99;
    cr_assert_eq(kheap_trim(&heap, &r), MM_OK, "asked for: tried again, refused");
    cr_assert_eq(src.refused, 2);
    cr_assert_eq(r, 0);
    src.answer = MM_OK;
    cr_assert_eq(kheap_trim(&heap, &r), MM_OK);
    cr_assert_gt(r, 0);
    cr_assert_eq(r, src.bytes);
    T_CHECK(&heap);
    t_assert_all_free(&heap);
}

/* kheap_init's range is the caller's: never handed to the callback. */
Test(kheap_trim, the_initial_region_is_never_released)
{
    memset(&src, 0, sizeof src);
    src.arena = t_arena(GROW_ARENA);
    src.answer = MM_OK;
    uint8_t *init = t_arena(8 << 20);
    cr_assert_eq(kheap_init(&heap, init, 8 << 20), MM_OK);
    cr_assert_eq(kheap_set_release(&heap, release, &src, KHEAP_TRIM_MIN), MM_OK);
    void *p = kheap_alloc(&heap, 6 << 20, 0);
    cr_assert_not_null(p);
    cr_assert_eq(kheap_free(&heap, p), MM_OK);
    size_t r = 99;
    cr_assert_eq(kheap_trim(&heap, &r), MM_OK);
    cr_assert_eq(r, 0);
    cr_assert_eq(src.calls, 0);
    t_assert_all_free(&heap);
}

/* kheap_trim gives back interior page spans of free blocks too, below the
 * automatic threshold, and a callback may allocate from the heap. */
Test(kheap_trim, on_request, .init = setup)
{
    /* The callback allocates: this CPU's front of the size classes, made
     * now, lives in the initial region instead of keeping a grown one. */
    cr_assert_eq(kheap_free(&heap, kheap_alloc(&heap, 100, 0)), MM_OK);
    src.allocate = true;
    cr_assert_eq(kheap_set_release(&heap, release, &src, 64 << 20), MM_OK); /* no automatic trim */
    void *p[8];
    for (int i = 0; i < 8; i++)
        cr_assert_not_null(p[i] = kheap_alloc(&heap, 512 * 1024, 0));
    for (int i = 0; i < 8; i += 2)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    cr_assert_eq(src.calls, 0, "below the threshold");
    size_t r = 0;
    cr_assert_eq(kheap_trim(&heap, &r), MM_OK);
    cr_assert_geq(src.calls, 3, "each freed block's pages (the first may lie in the initial "
                                "region): %zu calls", src.calls);
    cr_assert_eq(r, src.bytes);
    T_CHECK(&heap);
    for (int i = 1; i < 8; i += 2)
        memset(p[i], 0x33, 512 * 1024); /* neighbours untouched by the cuts */
    /* The callback's objects went to this CPU's front, and their slab to
     * the lowest free address, in a grown region: a trim drains the front
     * before it starts, so the last one must not allocate again. */
    src.allocate = false;
    for (int i = 1; i < 8; i += 2)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    cr_assert_eq(kheap_trim(&heap, &r), MM_OK);
    T_CHECK(&heap);
    t_assert_all_free(&heap);
    cr_assert_eq(stats().regions, 1, "only the initial region is left");
}

/* Random work with trims in between: every check passes, nothing the heap
 * handed out overlaps a released range (released pages fault). */
Test(kheap_trim, random_work_with_trims, .init = setup, .timeout = 120)
{
    cr_assert_eq(kheap_set_release(&heap, release, &src, KHEAP_TRIM_MIN), MM_OK);
    enum { LIVE = 200 };
    uint8_t *p[LIVE] = {0};
    size_t len[LIVE] = {0};
    uint64_t rng = 99;
    for (int i = 0; i < 6000; i++) {
        uint64_t r = t_rand(&rng);
        size_t k = r % LIVE;
        if (p[k] != NULL) {
            for (size_t j = 0; j < len[k]; j += 4096)
                cr_assert_eq(p[k][j], (uint8_t)k);
            cr_assert_eq(kheap_free(&heap, p[k]), MM_OK);
            p[k] = NULL;
        } else {
            size_t sz = (r >> 16) % 8 == 0 ? (size_t)((r >> 24) % (2 << 20)) : (r >> 24) % 5000;
            p[k] = kheap_alloc(&heap, sz, 0);
            cr_assert_not_null(p[k]);
            len[k] = sz;
            memset(p[k], (int)k, sz);
        }
        if (i % 500 == 0) {
            cr_assert_eq(kheap_trim(&heap, NULL), MM_OK);
            T_CHECK(&heap);
        }
    }
    cr_assert_gt(src.calls, 0);
    for (size_t k = 0; k < LIVE; k++)
        cr_assert_eq(kheap_free(&heap, p[k]), MM_OK);
    T_CHECK(&heap);
    t_assert_all_free(&heap);
}

/* Free and allocate a large block over and over: after the first cycles the
 * threshold has risen past it and the heap stops giving it back. */
Test(kheap_trim, the_threshold_rises_when_memory_is_needed_again, .init = setup)
{
    cr_assert_eq(kheap_set_release(&heap, release, &src, KHEAP_TRIM_MIN), MM_OK);
    for (int i = 0; i < 100; i++) {
        void *p = kheap_alloc(&heap, 3 << 20, 0);
        cr_assert_not_null(p);
        memset(p, 0x44, 3 << 20);
        cr_assert_eq(kheap_free(&heap, p), MM_OK);
    }
    cr_assert_leq(src.calls, 8, "%zu releases in 100 cycles", src.calls);
    cr_assert_gt(src.calls, 0);
    cr_assert_geq(heap.trim_threshold, (size_t)3 << 20);
    cr_assert_leq(heap.trim_threshold, KHEAP_TRIM_CEILING);
    T_CHECK(&heap);
    t_assert_all_free(&heap);
}
