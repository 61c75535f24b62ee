/*
 * libFuzzer harness: the bitmap frame allocator (pmm) against a reference
 * model that keeps one byte per frame, on the locked path (no per-CPU
 * cache: see LLVMFuzzerInitialize).
 *
 * Input: a memory map, then operations.
 *
 *   header   u8 n (entries: n % 9), then per entry 10 bytes:
 *            u8 type (< 160: usable, else (t - 160) % 10: the other types, 8
 *            and 9 being invalid values), u8 flags, u16 base frame, u16
 *            length in frames (both % 20480, times 16 with flag 0x80: up to
 *            1.25 GiB, beyond the 1 GiB HHDM window), u16 base byte offset,
 *            u16 length byte offset.
 *            flags: 1 unaligned base, 2 longer by a partial frame, 4 shorter
 *            by a partial frame, 0x10 add 1 TiB (0x18: wrap past 2^64),
 *            0x60 empty entry, 0x80 the 16-frame scale (spans of 64+ chunks
 *            and three summary levels).
 *   ops      u8 opcode, then its arguments (see the switch in run_op).
 *
 * For every operation the harness predicts the status from the model and
 * compares (and, for contiguous requests, the exact lowest fitting run; for
 * single frames the documented LIFO reuse of the frame freed last), checks
 * that a rejected call changed no byte of the allocator or its metadata and
 * warned exactly when documented, runs pmm_check, and compares the counts.
 * Allocated frames are written to (so poison builds catch a frame the
 * allocator hands out twice or poisons while in use), zeroed allocations
 * are verified, and at the end of every input every frame's state is
 * compared and everything is freed again.
 */
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/hhdm.h>
#include <hadron/mm/pmm.h>

#include "fuzz_common.h"
#include "mm_test.h"

#define PG 4096ull
#define SIM_FRAMES 262144ull             /* 1 GiB of simulated memory (lazily backed) */
#define ARG_FRAMES 20480u                /* map positions: 80 MiB, or 16 times that */
#define MODEL_FRAMES (SIM_FRAMES + 64u)  /* span rounded up to whole words */
#define MAX_ENTRIES 8u
#define MAX_KEEP 3u
#define MAX_OPS 2048u
#define HELD_CAP 8192u /* an operation adds at most one held piece (an allocation,
                          or a piece split by a free inside it) */
_Static_assert(HELD_CAP > MAX_OPS, "the held list must take one piece per operation");
#define NONE UINT64_MAX

enum { M_RESERVED, M_FREE, M_USED };

typedef struct piece {
    uint64_t f, n;
} piece_t;

static struct {
    pmm_t p;
    uint8_t m[MODEL_FRAMES];
    uint64_t span, free_n, managed_n;
    uint64_t meta0, meta1; /* metadata frames [meta0, meta1) */
    uint64_t hot;          /* frame pmm_free gave back last (see pmm_alloc) */
    piece_t held[HELD_CAP];
    size_t nheld;
    int warnings;          /* test_warnings.count the model expects */
} W;

static uint8_t *sim;
static uint8_t snap_meta[256 * 1024];
static pmm_t snap_p;
static const uint8_t zero_page[PG];

/* ------------------------------------------------------------------ */
/* Model                                                               */
/* ------------------------------------------------------------------ */

static void held_push(uint64_t f, uint64_t n)
{
    FZ_CHECK(W.nheld < HELD_CAP, "held list overflow");
    W.held[W.nheld++] = (piece_t){f, n};
}

/* Removes frames [f, f + n), all held, from the held pieces. */
FZ_NOCOV static void held_remove(uint64_t f, uint64_t n)
{
    uint64_t e = f + n;
    for (size_t i = 0; i < W.nheld;) {
        piece_t pc = W.held[i];
        uint64_t pe = pc.f + pc.n;
        if (pe <= f || pc.f >= e) {
            i++;
            continue;
        }
        W.held[i] = W.held[--W.nheld];
        if (pc.f < f)
            held_push(pc.f, f - pc.f);
        if (pe > e)
            held_push(e, pe - e);
    }
}

FZ_NOCOV static void model_set(uint64_t f, uint64_t n, uint8_t from, uint8_t to)
{
    for (uint64_t i = f; i < f + n; i++) {
        FZ_CHECK(W.m[i] == from, "frame %#llx: model state %d, expected %d",
                 (unsigned long long)i, W.m[i], from);
        W.m[i] = to;
    }
}

FZ_NOCOV static bool model_any(uint64_t f0, uint64_t f1, uint8_t state)
{
    for (uint64_t f = f0; f < f1; f++)
        if (W.m[f] == state)
            return true;
    return false;
}

/* Lowest start, a multiple of align, of n free frames ending at or below hi. */
FZ_NOCOV static uint64_t model_fit(uint64_t n, uint64_t align, uint64_t hi)
{
    uint64_t s = 0;
    while (s <= hi && hi - s >= n) {
        uint64_t k = s;
        while (k < s + n && W.m[k] == M_FREE)
            k++;
        if (k == s + n)
            return s;
        if (align > hi)
            break;
        s = (k + align) & ~(align - 1);
    }
    return NONE;
}

FZ_NOCOV static uint64_t model_lowest_free(uint64_t hi)
{
    for (uint64_t f = 0; f < hi && f < W.span; f++)
        if (W.m[f] == M_FREE)
            return f;
    return NONE;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

static void snap_take(void)
{
    snap_p = W.p;
    if (W.span != 0)
        memcpy(snap_meta, hhdm_phys_to_virt(W.p.meta_base), W.p.meta_bytes);
}

/* A rejected call must leave every field (the lock aside) and every
 * metadata byte as they were. */
FZ_NOCOV static void snap_same(const char *what)
{
    size_t off = offsetof(pmm_t, magic);
    FZ_CHECK(memcmp((char *)&snap_p + off, (char *)&W.p + off, sizeof W.p - off) == 0,
             "%s: rejected, but the pmm_t changed", what);
    if (W.span != 0)
        FZ_CHECK(memcmp(snap_meta, hhdm_phys_to_virt(W.p.meta_base), W.p.meta_bytes) == 0,
                 "%s: rejected, but the metadata changed", what);
}

/* After every operation; pmm_check (O(span)) every time for spans up to
 * 32768 frames, every 8th operation for the big ones, and at the end. */
static void verify_now(bool full)
{
    static unsigned ops;
    const char *why = NULL;
    mm_status_t st = full || W.span <= 32768 || ++ops % 8 == 0 ? pmm_check(&W.p, &why) : MM_OK;
    FZ_CHECK(st == MM_OK, "pmm_check: %s (%s)", mm_status_str(st), why ? why : "-");
    FZ_CHECK(test_irq_depth() == 0, "interrupts left disabled");
    FZ_CHECK(!mm_spin_is_locked(&W.p.lock), "lock left held");
    FZ_CHECK(test_warnings.count == W.warnings, "%d warnings, model expects %d",
             test_warnings.count, W.warnings);
    pmm_stats_t s;
    FZ_CHECK(pmm_get_stats(&W.p, &s) == MM_OK, "stats");
    FZ_CHECK(s.span_frames == W.span && s.free_frames == W.free_n &&
                 s.usable_frames == W.managed_n && s.used_frames == W.managed_n - W.free_n &&
                 s.reserved_frames == W.span - W.managed_n,
             "stats: span %llu free %llu usable %llu; model span %llu free %llu usable %llu",
             (unsigned long long)s.span_frames, (unsigned long long)s.free_frames,
             (unsigned long long)s.usable_frames, (unsigned long long)W.span,
             (unsigned long long)W.free_n, (unsigned long long)W.managed_n);
}

static void verify(void)
{
    verify_now(false);
}

/* pmm_frame_state for frames [first, first + 256) and at the span. */
static void verify_frames(uint64_t first)
{
    static const pmm_frame_state_t want[] = {
        [M_RESERVED] = PMM_FRAME_RESERVED, [M_FREE] = PMM_FRAME_FREE, [M_USED] = PMM_FRAME_USED};
    for (uint64_t f = first; f < W.span && f < first + 256; f++) {
        pmm_frame_state_t s = pmm_frame_state(&W.p, f * PG);
        FZ_CHECK(s == want[W.m[f]], "frame %#llx: state %d, model %d", (unsigned long long)f, s,
                 W.m[f]);
    }
    FZ_CHECK(pmm_frame_state(&W.p, W.span * PG) == PMM_FRAME_OUTSIDE, "frame at the span");
}

/* The same through the bitmaps, as pmm.h documents them (bm[2w]: free,
 * bm[2w + 1]: managed, held_bm[2w] ^ held_bm[2w + 1]: allocated; no frame
 * is cached on the locked path, and no group has an owner, so the own
 * halves stay 0): much faster, so it runs after every input. */
FZ_NOCOV static void verify_bitmaps(void)
{
    for (uint64_t w = 0; w < W.p.words; w++) {
        uint64_t fr = 0, us = 0, he = 0;
        for (unsigned b = 0; b < 64; b++) {
            uint64_t f = w * 64 + b;
            uint8_t m = f < W.span ? W.m[f] : M_RESERVED;
            fr |= (uint64_t)(m == M_FREE) << b;
            us |= (uint64_t)(m != M_RESERVED) << b;
            he |= (uint64_t)(m == M_USED) << b;
        }
        FZ_CHECK(W.p.held_bm[2 * w] == 0 && W.p.held_bm[2 * w + 1] == he,
                 "held word %llu: own %#llx remote %#llx; model 0 %#llx",
                 (unsigned long long)w, (unsigned long long)W.p.held_bm[2 * w],
                 (unsigned long long)W.p.held_bm[2 * w + 1], (unsigned long long)he);
        FZ_CHECK(W.p.bm[2 * w] == fr && W.p.bm[2 * w + 1] == us,
                 "bitmap word %llu: free %#llx managed %#llx; model %#llx %#llx",
                 (unsigned long long)w, (unsigned long long)W.p.bm[2 * w],
                 (unsigned long long)W.p.bm[2 * w + 1], (unsigned long long)fr,
                 (unsigned long long)us);
    }
}

/* The harness uses what it allocated: a marker in the first and last word
 * of every frame. A poison build panics if the allocator later hands out a
 * frame whose poison was disturbed, or if it poisons a frame in use. */
FZ_NOCOV static void scribble(uint64_t f, uint64_t n)
{
    for (uint64_t i = f; i < f + n; i++) {
        uint64_t *w = (uint64_t *)(sim + i * PG);
        w[0] = 0x5a5a000000000000ull | i;
        w[PG / 8 - 1] = 0xa5a5000000000000ull | i;
    }
}

FZ_NOCOV static void check_zero(uint64_t f, uint64_t n)
{
    for (uint64_t i = f; i < f + n; i++)
        FZ_CHECK(memcmp(sim + i * PG, zero_page, PG) == 0, "frame %#llx not zeroed",
                 (unsigned long long)i);
}

static void expect(mm_status_t got, mm_status_t want, const char *what)
{
    FZ_CHECK(got == want, "%s: got %s, model expects %s", what, mm_status_str(got),
             mm_status_str(want));
    if (got != MM_OK && got != MM_ERR_NOMEM)
        snap_same(what);
}

/* ------------------------------------------------------------------ */
/* Initialisation                                                      */
/* ------------------------------------------------------------------ */

/* Frames an entry claims (pmm.h: usable inward, others outward). */
static bool entry_frames(const pmm_region_t *r, uint64_t *f0, uint64_t *f1)
{
    if (r->length == 0)
        return false;
    uint64_t last = r->base + (r->length - 1);
    uint64_t a, b;
    if (r->type == PMM_REGION_USABLE) {
        a = r->base / PG + (r->base % PG != 0);
        b = last / PG + ((last % PG) == PG - 1);
    } else {
        a = r->base / PG;
        b = last / PG + 1;
    }
    if (a >= b)
        return false;
    *f0 = a;
    *f1 = b;
    return true;
}

static uint64_t words_for(uint64_t bits)
{
    return (bits + 63) / 64;
}

static uint64_t meta_bytes_for(uint64_t span)
{
    uint64_t words = words_for(span);
    /* free+usable pairs, poison, held pairs (own, remote), held groups'
     * owners (16 bits per 512 frames, in whole words) */
    uint64_t bytes = words * 8 * (HADRON_MM_PMM_POISON ? 5 : 4);
    bytes += ((span + 511) / 512 + 3) / 4 * 8;
    for (uint64_t w = words; w > 1;) {
        w = words_for(w);
        bytes += w * 8;
    }
    uint64_t chunks = words_for(words);
    bytes += chunks * 8;
    for (uint64_t w = chunks; w > 1;) {
        w = words_for(w);
        bytes += w * 8;
    }
    return bytes + chunks * 2;
}

FZ_NOCOV static uint64_t find_run(uint64_t need, uint64_t from, uint64_t end)
{
    uint64_t run = 0;
    for (uint64_t f = from; f < end; f++) {
        run = W.m[f] == M_FREE ? run + 1 : 0;
        if (run == need)
            return f + 1 - need;
    }
    return NONE;
}

/* What pmm_init must do with this map; fills the model on success. */
/* `keep` is appended to the map as reserved entries: a kept range is
 * reserved exactly like one (rounded outward, reserved wins). */
static mm_status_t model_init(pmm_region_t *map, size_t n, const pmm_range_t *keep, size_t nkeep)
{
    if (n == 0)
        return MM_ERR_INVALID;
    uint64_t span = 0, reclaim_end = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t last, f0, f1;
        if ((unsigned)map[i].type >= PMM_REGION_TYPE_COUNT)
            return MM_ERR_INVALID;
        if (map[i].length != 0 && __builtin_add_overflow(map[i].base, map[i].length - 1, &last))
            return MM_ERR_INVALID;
        if (map[i].type == PMM_REGION_USABLE && entry_frames(&map[i], &f0, &f1) && f1 > span)
            span = f1;
        pmm_region_t inward = {map[i].base, map[i].length, PMM_REGION_USABLE};
        if ((map[i].type == PMM_REGION_BOOTLOADER_RECLAIMABLE ||
             map[i].type == PMM_REGION_ACPI_RECLAIMABLE) &&
            entry_frames(&inward, &f0, &f1) && f1 > reclaim_end)
            reclaim_end = f1;
    }
    if (span != 0 && reclaim_end > span)
        span = reclaim_end;
    for (size_t i = 0; i < nkeep; i++) {
        uint64_t last;
        if (keep[i].length != 0 && __builtin_add_overflow(keep[i].base, keep[i].length - 1, &last))
            return MM_ERR_INVALID;
        map[n++] = (pmm_region_t){keep[i].base, keep[i].length, PMM_REGION_RESERVED};
    }
    if (span == 0)
        return MM_ERR_NOMEM;
    if (span > SIM_FRAMES)
        return MM_ERR_RANGE;
    /* Paint: usable entries first, then every other entry over them. */
    uint64_t end = words_for(span) * 64;
    memset(W.m, M_RESERVED, end);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            uint64_t f0, f1;
            if ((map[i].type == PMM_REGION_USABLE) != (pass == 0) ||
                !entry_frames(&map[i], &f0, &f1) || f0 >= end)
                continue;
            if (f1 > end)
                f1 = end;
            memset(W.m + f0, pass == 0 ? M_FREE : M_RESERVED, f1 - f0);
        }
    }
    W.m[0] = M_RESERVED;
    uint64_t need = (meta_bytes_for(span) + PG - 1) / PG;
    /* The lowest run that fits, preferring runs at or above 16 MiB. */
    uint64_t meta = find_run(need, 4096, end);
    if (meta == NONE)
        meta = find_run(need, 1, end);
    if (meta == NONE)
        return MM_ERR_NOMEM;
    for (uint64_t f = meta; f < meta + need; f++)
        W.m[f] = M_RESERVED;
    W.span = span;
    W.meta0 = meta;
    W.meta1 = meta + need;
    W.free_n = W.managed_n = 0;
    for (uint64_t f = 0; f < span; f++)
        W.free_n += W.m[f] == M_FREE;
    W.managed_n = W.free_n;
    return MM_OK;
}

static pmm_region_type_t decode_type(uint8_t t)
{
    if (t < 160)
        return PMM_REGION_USABLE;
    unsigned k = (t - 160u) % 10u;
    if (k == 8)
        return PMM_REGION_TYPE_COUNT;
    if (k == 9)
        return (pmm_region_type_t)0x7fffffff;
    return (pmm_region_type_t)k;
}

/* Calls on an instance that is not initialised, and with NULL arguments,
 * are rejected without touching anything. */
static void check_uninitialised(void)
{
    static pmm_t z;
    memset(&z, 0, sizeof z);
    mm_paddr_t pa = 0;
    pmm_stats_t s;
    FZ_CHECK(pmm_alloc(&z, &pa) == MM_ERR_STATE, "alloc on an uninitialised pmm");
    FZ_CHECK(pmm_alloc_contig(&z, 2, 1, MM_PADDR_MAX, &pa) == MM_ERR_STATE, "contig");
    FZ_CHECK(pmm_free(&z, PG) == MM_ERR_STATE, "free");
    FZ_CHECK(pmm_free_contig(&z, PG, 2) == MM_ERR_STATE, "free_contig");
    FZ_CHECK(pmm_reserve(&z, PG, PG) == MM_ERR_STATE, "reserve");
    FZ_CHECK(pmm_release(&z, PG, PG) == MM_ERR_STATE, "release");
    FZ_CHECK(pmm_get_stats(&z, &s) == MM_ERR_STATE, "stats");
    FZ_CHECK(pmm_check(&z, NULL) == MM_ERR_STATE, "check");
    FZ_CHECK(pmm_frame_state(&z, PG) == PMM_FRAME_OUTSIDE, "frame_state");
    FZ_CHECK(pmm_alloc(NULL, &pa) == MM_ERR_INVALID, "alloc NULL");
    FZ_CHECK(pmm_free(NULL, PG) == MM_ERR_INVALID, "free NULL");
    FZ_CHECK(pmm_check(NULL, NULL) == MM_ERR_INVALID, "check NULL");
    FZ_CHECK(test_warnings.count == W.warnings, "a rejected call on a bad instance warned");
    for (size_t i = 0; i < sizeof z; i++)
        FZ_CHECK(((uint8_t *)&z)[i] == 0, "uninitialised instance written");
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

static void take(mm_paddr_t pa, uint64_t n, bool zeroed)
{
    uint64_t f = pa / PG;
    FZ_CHECK(pa % PG == 0 && f + n <= W.span, "allocation %#llx+%llu outside the span",
             (unsigned long long)pa, (unsigned long long)n);
    model_set(f, n, M_FREE, M_USED);
    W.free_n -= n;
    held_push(f, n);
    if (zeroed)
        check_zero(f, n);
    scribble(f, n);
}

/* pmm_alloc and everything documented to behave exactly like it. */
static void do_alloc_single(mm_status_t st, mm_paddr_t pa, bool zeroed, const char *what)
{
    if (W.free_n == 0) {
        expect(st, MM_ERR_NOMEM, what);
        return;
    }
    expect(st, MM_OK, what);
    if (W.hot != NONE && W.m[W.hot] == M_FREE) {
        FZ_CHECK(pa == W.hot * PG, "%s: %#llx, but frame %#llx was freed last and is free", what,
                 (unsigned long long)pa, (unsigned long long)(W.hot * PG));
        W.hot = NONE;
    }
    take(pa, 1, zeroed);
}

static uint64_t pick_count(fz_in_t *in)
{
    uint16_t c = fz_u16(in);
    if (c >= 0xfff0)
        return (uint64_t)1 << (c & 63); /* absurd counts */
    switch (c >> 14) {
    case 0: return c % 9;      /* 0 (invalid) .. 8 */
    case 1: return c % 80;     /* around one word */
    case 2: return c % 300;    /* several words */
    default: return c % 1100;  /* many words, the whole-word path */
    }
}

static uint64_t pick_align(uint8_t a)
{
    if (a & 0x80)
        return a & 0x7f; /* 0 and non-powers of two: invalid */
    return (uint64_t)1 << (a % 14);
}

static mm_paddr_t pick_limit(fz_in_t *in)
{
    uint8_t sel = fz_u8(in);
    uint16_t v = fz_u16(in);
    switch (sel % 5) {
    case 0:
    case 1: return MM_PADDR_MAX;
    case 2: return (uint64_t)(v % ARG_FRAMES) * PG;                  /* a frame boundary */
    case 3: return (uint64_t)(v % ARG_FRAMES) * PG + (sel | 1);      /* inside a frame */
    default: return sel & 8 ? (uint64_t)v << 32 : (uint64_t)v;      /* odd values */
    }
}

static void do_contig(mm_status_t st, mm_paddr_t pa, uint64_t count, uint64_t align,
                      mm_paddr_t limit, bool zeroed, const char *what)
{
    FZ_TRACE("  %s count %llu align %llu limit %#llx -> %s %#llx\n", what,
             (unsigned long long)count, (unsigned long long)align, (unsigned long long)limit,
             mm_status_str(st), (unsigned long long)pa);
    if (count == 0 || !mm_is_pow2(align)) {
        expect(st, MM_ERR_INVALID, what);
        return;
    }
    uint64_t hi = limit == MM_PADDR_MAX ? W.span : limit / PG;
    if (hi > W.span)
        hi = W.span;
    if (count == 1 && align == 1) {
        if (hi >= W.span) {
            do_alloc_single(st, pa, zeroed, what);
            return;
        }
        uint64_t f = model_lowest_free(hi);
        expect(st, f == NONE ? MM_ERR_NOMEM : MM_OK, what);
        if (f != NONE) {
            FZ_CHECK(pa == f * PG, "%s under a limit: %#llx, lowest free %#llx", what,
                     (unsigned long long)pa, (unsigned long long)(f * PG));
            take(pa, 1, zeroed);
        }
        return;
    }
    uint64_t f = model_fit(count, align, hi);
    expect(st, f == NONE ? MM_ERR_NOMEM : MM_OK, what);
    if (f != NONE) {
        FZ_CHECK(pa == f * PG, "%s: %#llx, lowest fitting run at %#llx", what,
                 (unsigned long long)pa, (unsigned long long)(f * PG));
        take(pa, count, zeroed);
    }
}

/* What freeing [f, f + n) must return; also the warning it must give. */
static mm_status_t model_free_status(uint64_t addr, uint64_t count)
{
    if (count == 0)
        return MM_ERR_INVALID;
    if (addr % PG)
        return MM_ERR_ALIGN;
    uint64_t f = addr / PG;
    if (f >= W.span || count > W.span - f)
        return MM_ERR_RANGE;
    if (model_any(f, f + count, M_RESERVED))
        return MM_ERR_NOT_USABLE;
    if (model_any(f, f + count, M_FREE))
        return MM_ERR_DOUBLE_FREE;
    return MM_OK;
}

static void do_free(mm_paddr_t addr, uint64_t count, bool single, bool adapter)
{
    mm_status_t st;
    if (adapter)
        single = count == 1; /* the adapter's free: pmm_free for one frame */
    const char *what = adapter ? "frame_allocator.free" : single ? "pmm_free" : "pmm_free_contig";
    if (adapter) {
        mm_frame_allocator_t fa = pmm_frame_allocator(&W.p);
        st = fa.free(fa.ctx, addr, count);
    } else if (single) {
        st = pmm_free(&W.p, addr);
    } else {
        st = pmm_free_contig(&W.p, addr, count);
    }
    mm_status_t want = model_free_status(addr, single ? 1 : count);
    FZ_TRACE("  %s %#llx x%llu -> %s (model %s)\n", what, (unsigned long long)addr,
             (unsigned long long)count, mm_status_str(st), mm_status_str(want));
    if (want != MM_OK && want != MM_ERR_INVALID)
        W.warnings++;
    expect(st, want, what);
    if (st != MM_OK)
        return;
    uint64_t f = addr / PG, n = single ? 1 : count;
    model_set(f, n, M_USED, M_FREE);
    held_remove(f, n);
    W.free_n += n;
    if (single)
        W.hot = f;
}

static void pick_byte_range(fz_in_t *in, uint64_t *base, uint64_t *len)
{
    uint8_t fl = fz_u8(in);
    uint16_t f = fz_u16(in), n = fz_u16(in), sub = fz_u16(in);
    *base = (uint64_t)(f % (W.span + 64)) * PG;
    *len = (uint64_t)(n % 160) * PG;
    if (fl & 1)
        *base += sub & 0xfff;
    if (fl & 2)
        *len += (sub >> 4) & 0xfff;
    if ((fl & 4) && *len >= (sub & 0xfff))
        *len -= sub & 0xfff;
    if ((fl & 0x18) == 0x18) { /* wrapping or touching 2^64 */
        *base = UINT64_MAX - (sub & 0x3fff);
        *len = (uint64_t)n + 1;
    } else if (fl & 0x10) {
        *len = (uint64_t)(n % ARG_FRAMES) * PG; /* long */
    }
}

static void do_reserve(uint64_t base, uint64_t len)
{
    uint64_t last;
    mm_status_t want;
    uint64_t f0 = 0, f1 = 0;
    if (len == 0 || __builtin_add_overflow(base, len - 1, &last)) {
        want = MM_ERR_INVALID;
    } else {
        f0 = base / PG;
        f1 = last / PG + 1;
        if (f1 > W.span)
            want = MM_ERR_RANGE;
        else if (f0 < W.meta1 && W.meta0 < f1)
            want = MM_ERR_OVERLAP;
        else if (model_any(f0, f1, M_USED))
            want = MM_ERR_STATE;
        else
            want = MM_OK;
    }
    mm_status_t st = pmm_reserve(&W.p, base, len);
    FZ_TRACE("  reserve %#llx+%#llx -> %s\n", (unsigned long long)base, (unsigned long long)len,
             mm_status_str(st));
    expect(st, want, "pmm_reserve");
    if (st != MM_OK)
        return;
    for (uint64_t f = f0; f < f1; f++) {
        if (W.m[f] == M_FREE) {
            W.m[f] = M_RESERVED;
            W.free_n--;
            W.managed_n--;
        }
    }
}

static void do_release(uint64_t base, uint64_t len)
{
    uint64_t last;
    mm_status_t want;
    uint64_t f0 = 0, f1 = 0;
    if (len == 0 || __builtin_add_overflow(base, len - 1, &last)) {
        want = MM_ERR_INVALID;
    } else {
        f0 = base / PG + (base % PG != 0);
        f1 = last / PG + (last % PG == PG - 1);
        if (f0 >= f1)
            want = MM_ERR_INVALID;
        else if (f1 > W.span)
            want = MM_ERR_RANGE;
        else if (f0 == 0 || (f0 < W.meta1 && W.meta0 < f1))
            want = MM_ERR_OVERLAP;
        else if (model_any(f0, f1, M_FREE) || model_any(f0, f1, M_USED))
            want = MM_ERR_EXISTS;
        else
            want = MM_OK;
    }
    mm_status_t st = pmm_release(&W.p, base, len);
    FZ_TRACE("  release %#llx+%#llx -> %s\n", (unsigned long long)base, (unsigned long long)len,
             mm_status_str(st));
    expect(st, want, "pmm_release");
    if (st != MM_OK)
        return;
    model_set(f0, f1 - f0, M_RESERVED, M_FREE);
    W.free_n += f1 - f0;
    W.managed_n += f1 - f0;
}

static void run_op(fz_in_t *in)
{
    uint8_t op = fz_u8(in);
    mm_paddr_t pa = 0;
    snap_take();
    switch (op % 16) {
    case 0:
    case 1: {
        bool zeroed = op & 16;
        mm_status_t st = zeroed ? pmm_alloc_zeroed(&W.p, &pa) : pmm_alloc(&W.p, &pa);
        FZ_TRACE("  alloc%s -> %s %#llx\n", zeroed ? "_zeroed" : "", mm_status_str(st),
                 (unsigned long long)pa);
        do_alloc_single(st, pa, zeroed, "pmm_alloc");
        break;
    }
    case 2:
    case 3:
    case 4: {
        uint64_t count = pick_count(in);
        uint64_t align = pick_align(fz_u8(in));
        mm_paddr_t limit = pick_limit(in);
        bool zeroed = op & 16, adapter = op & 32;
        mm_status_t st;
        if (adapter) {
            mm_frame_allocator_t fa = pmm_frame_allocator(&W.p);
            st = fa.alloc(fa.ctx, count, align, limit, &pa);
            zeroed = false;
        } else if (zeroed) {
            st = pmm_alloc_contig_zeroed(&W.p, count, align, limit, &pa);
        } else {
            st = pmm_alloc_contig(&W.p, count, align, limit, &pa);
        }
        do_contig(st, pa, count, align, limit, zeroed, "pmm_alloc_contig");
        break;
    }
    case 5:
    case 6:
    case 7: { /* free (part of) something held */
        uint16_t i = fz_u16(in);
        uint8_t how = fz_u8(in);
        if (W.nheld == 0)
            break;
        piece_t pc = W.held[i % W.nheld];
        uint64_t a = 0, b = pc.n;
        if (pc.n > 1 && (how & 3) == 3) {
            a = (how >> 2) % pc.n;
            b = a + 1 + (i >> 8) % (pc.n - a);
        }
        bool single = b - a == 1 && (how & 4);
        do_free((pc.f + a) * PG, b - a, single, how & 0x40);
        break;
    }
    case 8: { /* free anything: double, never usable, beyond, unaligned */
        uint16_t f = fz_u16(in);
        uint8_t how = fz_u8(in);
        uint64_t addr = (uint64_t)(f % (W.span + 70)) * PG;
        if (how & 1)
            addr += (how >> 1) + 1u;
        if ((how & 0xc0) == 0xc0)
            addr = UINT64_MAX - 4095 - ((uint64_t)f << 12);
        uint64_t count = 1 + (how & 2 ? (f >> 10) % 40 : 0);
        if ((how & 0x30) == 0x30)
            count = how & 8 ? 0 : UINT64_MAX - (how & 7);
        do_free(addr, count, count == 1 && (how & 4), (how & 0x30) == 0x10);
        break;
    }
    case 9:
    case 10: {
        uint64_t base, len;
        pick_byte_range(in, &base, &len);
        do_reserve(base, len);
        break;
    }
    case 11:
    case 12: {
        uint64_t base, len;
        pick_byte_range(in, &base, &len);
        do_release(base, len);
        break;
    }
    case 13: {
        uint16_t f = fz_u16(in);
        uint8_t off = fz_u8(in);
        uint64_t addr = (uint64_t)(f % (W.span + 70)) * PG + (off & 0x80 ? off : 0);
        pmm_frame_state_t s = pmm_frame_state(&W.p, addr);
        pmm_frame_state_t want = PMM_FRAME_OUTSIDE;
        if (addr % PG == 0 && addr / PG < W.span)
            want = W.m[addr / PG] == M_FREE   ? PMM_FRAME_FREE
                   : W.m[addr / PG] == M_USED ? PMM_FRAME_USED
                                              : PMM_FRAME_RESERVED;
        FZ_CHECK(s == want, "frame_state %#llx: %d, model %d", (unsigned long long)addr, s, want);
        break;
    }
    case 14: {
        /* Bad instances, and a second pmm_init on a live one. */
        check_uninitialised();
        pmm_region_t map[1] = {{0, SIM_FRAMES * PG, PMM_REGION_USABLE}};
        expect(pmm_init(&W.p, map, 1, NULL, 0), MM_ERR_STATE, "second pmm_init");
        expect(pmm_init(&W.p, NULL, 1, NULL, 0), MM_ERR_INVALID, "pmm_init NULL map");
        break;
    }
    default: { /* give everything back, or a sweep of every frame */
        if (op & 16) {
            verify_frames(fz_u16(in) % W.span);
            break;
        }
        while (W.nheld != 0) {
            piece_t pc = W.held[W.nheld - 1];
            snap_take();
            do_free(pc.f * PG, pc.n, pc.n == 1 && (op & 32), false);
        }
        FZ_CHECK(W.free_n == W.managed_n, "everything freed, but the model disagrees");
        break;
    }
    }
    verify();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    /* The model pins the bitmap's exact choices (LIFO reuse, next fit), so
     * the harness takes the locked path: no CPU has a cache. The caches are
     * tested by test_pcp.c and stress-pcp. */
    test_cpu_index = HADRON_MM_MAX_CPUS;
    sim = sim_phys_create_at(FZ_SIM_ADDRESS, SIM_FRAMES * PG);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    memset(&W.p, 0, sizeof W.p);
    W.nheld = 0;
    W.span = 0;
    W.hot = NONE;
    test_warnings.count = 0;
    W.warnings = 0;

    pmm_region_t map[MAX_ENTRIES + MAX_KEEP]; /* the model appends the kept ranges */
    uint8_t counts = fz_u8(&in);
    size_t n = counts % (MAX_ENTRIES + 1);
    size_t nkeep = counts / (MAX_ENTRIES + 1) % (MAX_KEEP + 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t t = fz_u8(&in), fl = fz_u8(&in);
        uint16_t b = fz_u16(&in), l = fz_u16(&in), sb = fz_u16(&in), sl = fz_u16(&in);
        pmm_region_t *r = &map[i];
        r->type = decode_type(t);
        uint64_t scale = fl & 0x80 ? 16 : 1;
        r->base = (uint64_t)(b % ARG_FRAMES) * scale * PG;
        r->length = (uint64_t)(l % ARG_FRAMES) * scale * PG;
        if (fl & 1)
            r->base += sb & 0xfff;
        if (fl & 2)
            r->length += sl & 0xfff;
        if ((fl & 4) && r->length >= (sl & 0xfff))
            r->length -= sl & 0xfff;
        if ((fl & 0x18) == 0x18) {
            r->base = UINT64_MAX - sb;
            r->length = (uint64_t)l + 1;
        } else if (fl & 0x10) {
            r->base += 1ull << 40;
        }
        if ((fl & 0x60) == 0x60)
            r->length = 0;
        FZ_TRACE("map[%zu] = {%#llx, %#llx, %d}\n", i, (unsigned long long)r->base,
                 (unsigned long long)r->length, (int)r->type);
    }

    pmm_range_t keep[MAX_KEEP];
    for (size_t i = 0; i < nkeep; i++) {
        uint16_t b = fz_u16(&in), l = fz_u16(&in);
        uint8_t fl = fz_u8(&in);
        keep[i].base = (uint64_t)(b % ARG_FRAMES) * PG + (fl & 1 ? (uint64_t)(l >> 4) : 0);
        keep[i].length = (uint64_t)(l % 2048) * PG + (fl & 2 ? (uint64_t)(b >> 4) : 0);
        if ((fl & 0xc0) == 0xc0)
            keep[i].base = UINT64_MAX - b;
        FZ_TRACE("keep[%zu] = {%#llx, %#llx}\n", i, (unsigned long long)keep[i].base,
                 (unsigned long long)keep[i].length);
    }

    mm_status_t st = pmm_init(&W.p, n ? map : NULL, n, nkeep ? keep : NULL, nkeep);
    mm_status_t want = model_init(map, n, keep, nkeep);
    if (n == 0)
        want = MM_ERR_INVALID;
    FZ_TRACE("pmm_init -> %s (model %s)\n", mm_status_str(st), mm_status_str(want));
    FZ_CHECK(st == want, "pmm_init: got %s, model expects %s", mm_status_str(st),
             mm_status_str(want));
    if (st != MM_OK) {
        static const pmm_t zero;
        FZ_CHECK(memcmp(&W.p, &zero, sizeof zero) == 0, "failed pmm_init wrote the instance");
        return 0;
    }
    pmm_stats_t s;
    FZ_CHECK(pmm_get_stats(&W.p, &s) == MM_OK, "stats");
    FZ_CHECK(s.meta_base == W.meta0 * PG && s.meta_frames == W.meta1 - W.meta0 &&
                 s.meta_bytes == meta_bytes_for(W.span),
             "metadata at %#llx (%llu frames, %llu bytes); model %#llx (%llu frames, %llu bytes)",
             (unsigned long long)s.meta_base, (unsigned long long)s.meta_frames,
             (unsigned long long)s.meta_bytes, (unsigned long long)(W.meta0 * PG),
             (unsigned long long)(W.meta1 - W.meta0),
             (unsigned long long)meta_bytes_for(W.span));
    verify();
    verify_bitmaps();

    for (unsigned k = 0; k < MAX_OPS && fz_more(&in); k++)
        run_op(&in);

    verify_now(true);
    verify_bitmaps();
    while (W.nheld != 0) {
        piece_t pc = W.held[W.nheld - 1];
        snap_take();
        do_free(pc.f * PG, pc.n, false, false);
    }
    verify_bitmaps();
    verify_now(true);
    FZ_CHECK(W.free_n == W.managed_n, "everything freed, but frames are missing");
    return 0;
}
