/*
 * Long seeded random operation sequences checked against a reference model
 * (one byte per frame). Each step: the pmm must agree with the model on the
 * outcome (and, for contiguous requests, on the exact lowest fitting run),
 * counts must match, and pmm_check must pass. Rejected operations must leave
 * every metadata byte unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "pmm_fixture.h"

enum { M_RESERVED, M_FREE, M_USED };

typedef struct piece {
    uint64_t f, n;
} piece_t;

typedef struct world {
    pmm_t p;
    uint8_t *m;
    uint64_t span, free_n, managed_n;
    piece_t *held;
    size_t nheld;
    piece_t reserved[64]; /* ranges taken by pmm_reserve, to release later */
    size_t nreserved;
    uint64_t rng;
} world_t;

#define HELD_CAP 8192

static uint64_t rnd(world_t *w, uint64_t n)
{
    return n ? fx_rand(&w->rng) % n : 0;
}

static void mark(world_t *w, uint64_t f, uint64_t n, uint8_t from, uint8_t to)
{
    for (uint64_t i = f; i < f + n; i++) {
        cr_assert_eq(w->m[i], from, "frame %#llx: model state %d, expected %d",
                     (unsigned long long)i, w->m[i], from);
        w->m[i] = to;
    }
}

/* Lowest aligned start of n free frames ending at or below hi. */
static uint64_t model_fit(const world_t *w, uint64_t n, uint64_t align, uint64_t hi)
{
    uint64_t s = 0;
    while (s + n <= hi) {
        uint64_t k = s;
        while (k < s + n && w->m[k] == M_FREE)
            k++;
        if (k == s + n)
            return s;
        s = (k + align) & ~(align - 1); /* past the obstacle, aligned */
    }
    return UINT64_MAX;
}

static void verify(world_t *w)
{
    fx_check(&w->p);
    pmm_stats_t s = fx_stats(&w->p);
    cr_assert_eq(s.free_frames, w->free_n);
    cr_assert_eq(s.usable_frames, w->managed_n);
}

static void op_alloc(world_t *w)
{
    mm_paddr_t pa;
    mm_status_t st = pmm_alloc(&w->p, &pa);
    if (w->free_n == 0) {
        cr_assert_eq(st, MM_ERR_NOMEM);
        return;
    }
    cr_assert_eq(st, MM_OK, "%s with %llu free", mm_status_str(st),
                 (unsigned long long)w->free_n);
    mark(w, pa / FX_PG, 1, M_FREE, M_USED);
    w->free_n--;
    w->held[w->nheld++] = (piece_t){pa / FX_PG, 1};
}

static void op_alloc_contig(world_t *w)
{
    uint64_t n;
    switch (rnd(w, 4)) {
    case 0: n = 1 + rnd(w, 8); break;
    case 1: n = 1 + rnd(w, 70); break;
    case 2: n = 100 + rnd(w, 200); break;
    default: n = 120 + rnd(w, 600); break;
    }
    uint64_t align = (uint64_t)1 << rnd(w, 10);
    uint64_t hi = w->span;
    mm_paddr_t limit = MM_PADDR_MAX;
    if (rnd(w, 3) == 0) {
        hi = rnd(w, w->span + 1);
        limit = hi * FX_PG + rnd(w, FX_PG); /* a limit inside a frame rounds down */
    }
    uint64_t want = model_fit(w, n, align, hi);
    mm_paddr_t pa;
    mm_status_t st = pmm_alloc_contig(&w->p, n, align, limit, &pa);
    if (n == 1 && align == 1 && hi >= w->span && want != UINT64_MAX) {
        /* Documented to be pmm_alloc: any free frame, not the lowest. */
        cr_assert_eq(st, MM_OK);
        want = pa / FX_PG;
    }
    if (want == UINT64_MAX) {
        cr_assert_eq(st, MM_ERR_NOMEM, "n=%llu align=%llu hi=%llu: got %s at %#llx",
                     (unsigned long long)n, (unsigned long long)align, (unsigned long long)hi,
                     mm_status_str(st), (unsigned long long)(st == MM_OK ? pa : 0));
        return;
    }
    cr_assert_eq(st, MM_OK, "n=%llu align=%llu hi=%llu: %s, model fits at %#llx",
                 (unsigned long long)n, (unsigned long long)align, (unsigned long long)hi,
                 mm_status_str(st), (unsigned long long)want);
    cr_assert_eq(pa / FX_PG, want, "n=%llu align=%llu: not the lowest fitting run",
                 (unsigned long long)n, (unsigned long long)align);
    cr_assert_eq(want % align, 0);
    cr_assert_leq(want + n, hi);
    mark(w, want, n, M_FREE, M_USED);
    w->free_n -= n;
    w->held[w->nheld++] = (piece_t){want, n};
}

static void op_free(world_t *w)
{
    if (w->nheld == 0)
        return;
    size_t i = rnd(w, w->nheld);
    piece_t pc = w->held[i];
    /* Free the whole piece, or a sub-run of it (keeping both ends). */
    uint64_t a = 0, b = pc.n;
    if (pc.n > 2 && rnd(w, 2) && w->nheld + 2 < HELD_CAP) {
        a = rnd(w, pc.n);
        b = a + 1 + rnd(w, pc.n - a);
    }
    mm_status_t st = (b - a == 1 && rnd(w, 2)) ? pmm_free(&w->p, (pc.f + a) * FX_PG)
                                               : pmm_free_contig(&w->p, (pc.f + a) * FX_PG, b - a);
    cr_assert_eq(st, MM_OK, "%s", mm_status_str(st));
    mark(w, pc.f + a, b - a, M_USED, M_FREE);
    w->free_n += b - a;
    w->held[i] = w->held[--w->nheld];
    if (a > 0)
        w->held[w->nheld++] = (piece_t){pc.f, a};
    if (b < pc.n)
        w->held[w->nheld++] = (piece_t){pc.f + b, pc.n - b};
}

/* A frame in the given model state, or UINT64_MAX. */
static uint64_t find_frame(world_t *w, uint8_t state)
{
    for (int tries = 0; tries < 64; tries++) {
        uint64_t f = rnd(w, w->span);
        if (w->m[f] == state)
            return f;
    }
    return UINT64_MAX;
}

static void op_bad_free(world_t *w)
{
    fx_snap_t snap;
    fx_snap(&w->p, &snap);
    mm_status_t st, want;
    switch (rnd(w, 5)) {
    case 0: { /* double free */
        uint64_t f = find_frame(w, M_FREE);
        if (f == UINT64_MAX) {
            free(snap.meta);
            return;
        }
        st = pmm_free(&w->p, f * FX_PG);
        want = MM_ERR_DOUBLE_FREE;
        break;
    }
    case 1: { /* never usable */
        uint64_t f = find_frame(w, M_RESERVED);
        if (f == UINT64_MAX)
            f = 0;
        st = pmm_free(&w->p, f * FX_PG);
        want = MM_ERR_NOT_USABLE;
        break;
    }
    case 2: /* beyond the span */
        st = pmm_free_contig(&w->p, (w->span - rnd(w, 2)) * FX_PG, 2 + rnd(w, 100));
        want = MM_ERR_RANGE;
        break;
    case 3: /* unaligned */
        st = pmm_free(&w->p, rnd(w, w->span) * FX_PG + 1 + rnd(w, FX_PG - 1));
        want = MM_ERR_ALIGN;
        break;
    default: { /* a held piece plus its neighbour, which is not held */
        if (w->nheld == 0) {
            free(snap.meta);
            return;
        }
        piece_t pc = w->held[rnd(w, w->nheld)];
        uint64_t end = pc.f + pc.n;
        if (end >= w->span || w->m[end] == M_USED) {
            free(snap.meta);
            return;
        }
        want = w->m[end] == M_FREE ? MM_ERR_DOUBLE_FREE : MM_ERR_NOT_USABLE;
        st = pmm_free_contig(&w->p, pc.f * FX_PG, pc.n + 1);
        break;
    }
    }
    cr_assert_eq(st, want, "got %s, want %s", mm_status_str(st), mm_status_str(want));
    fx_assert_unchanged(&w->p, &snap, "rejected free");
}

static void op_reserve(world_t *w)
{
    if (w->nreserved == FX_ARRAY_LEN(w->reserved))
        return;
    uint64_t f = find_frame(w, M_FREE);
    if (f == UINT64_MAX)
        return;
    uint64_t n = 1;
    while (n < 40 && f + n < w->span && w->m[f + n] == M_FREE && rnd(w, 8))
        n++;
    cr_assert_eq(pmm_reserve(&w->p, f * FX_PG, n * FX_PG), MM_OK);
    mark(w, f, n, M_FREE, M_RESERVED);
    w->free_n -= n;
    w->managed_n -= n;
    w->reserved[w->nreserved++] = (piece_t){f, n};
}

static void op_release(world_t *w)
{
    if (w->nreserved == 0)
        return;
    size_t i = rnd(w, w->nreserved);
    piece_t pc = w->reserved[i];
    cr_assert_eq(pmm_release(&w->p, pc.f * FX_PG, pc.n * FX_PG), MM_OK);
    mark(w, pc.f, pc.n, M_RESERVED, M_FREE);
    w->free_n += pc.n;
    w->managed_n += pc.n;
    w->reserved[i] = w->reserved[--w->nreserved];
}

static void run_world(const pmm_region_t *map, size_t nmap, uint64_t sim, uint64_t seed,
                      int steps)
{
    world_t *w = calloc(1, sizeof *w);
    fx_init(&w->p, map, nmap, sim);
    w->rng = seed;
    w->span = fx_stats(&w->p).span_frames;
    w->m = malloc(w->span);
    w->held = malloc(HELD_CAP * sizeof *w->held);
    for (uint64_t f = 0; f < w->span; f++) {
        pmm_frame_state_t s = pmm_frame_state(&w->p, f * FX_PG);
        w->m[f] = s == PMM_FRAME_FREE ? M_FREE : M_RESERVED;
        w->free_n += w->m[f] == M_FREE;
    }
    w->managed_n = w->free_n;

    for (int step = 0; step < steps; step++) {
        /* Drift between filling up and draining so both nearly empty and
         * nearly full memory are visited. */
        bool filling = (step / 2000) % 2 == 0;
        uint64_t r = rnd(w, 100);
        if (w->nheld + 2 >= HELD_CAP)
            r = 60;
        if (r < (filling ? 40u : 25u))
            op_alloc(w);
        else if (r < (filling ? 58u : 40u))
            op_alloc_contig(w);
        else if (r < 90)
            op_free(w);
        else if (r < 95)
            op_bad_free(w);
        else if (r < 98)
            op_reserve(w);
        else
            op_release(w);
        verify(w);
    }
    free(w->m);
    free(w->held);
    free(w);
}

/* 64 MiB with the holes a PC has, four chunks: every level of the logic
 * with cheap checks. */
static const pmm_region_t small_map[] = {
    {0x0, 0x9fc00, PMM_REGION_USABLE},
    {0x9fc00, 0x400, PMM_REGION_RESERVED},
    {0xf0000, 0x10000, PMM_REGION_RESERVED},
    {0x100000, 0x2f00000, PMM_REGION_USABLE},
    {0x2000000, 0x100, PMM_REGION_ACPI_NVS},
    {0x3001000, 0xfff000, PMM_REGION_USABLE},
    {0x1ff8000, 0x1000, PMM_REGION_RESERVED},
};

Test(pmm, random_sequence_seed_1)
{
    run_world(small_map, FX_ARRAY_LEN(small_map), 64 * FX_MIB, 1, 12000);
}

Test(pmm, random_sequence_seed_2)
{
    run_world(small_map, FX_ARRAY_LEN(small_map), 64 * FX_MIB, 0xfeedbeefull, 12000);
}

/* 512 MiB: three summary levels, 32 chunks. */
Test(pmm, random_sequence_three_levels)
{
    const pmm_region_t map[] = {
        {0x1000, 0x1ffff000, PMM_REGION_USABLE},
        {0x8000000, 0x3000000, PMM_REGION_RESERVED},
    };
    run_world(map, FX_ARRAY_LEN(map), 512 * FX_MIB, 77, 3000);
}
