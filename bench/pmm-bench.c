/*
 * pmm-bench: hadron-mm's bitmap frame allocator against the reference
 * algorithm, in the same process, over the same simulated physical memory.
 *
 * The baseline re-implements the reference (Rust hadron-mm BitmapAllocator)
 * faithfully: one bitmap, 1 = used; initialisation fills it with ones and
 * clears usable frames one bit at a time; single frames are found by a
 * linear word scan from a hint (the word of the last allocation, lowered by
 * frees), contiguous runs by a scan from frame 0 that checks partial words
 * bit by bit; frees clear bits one at a time. Both sides take a spinlock
 * with the same (trivial) IRQ hooks.
 *
 * Cases (each prints `ratio <case> <ours_ns> <baseline_ns> <baseline/ours>`,
 * medians over batches of thread CPU time):
 *   pmm.pair.<4g|64g>.<fill>   free one random allocated frame, allocate one
 *   pmm.contig512.64g.0        2 MiB (512 frames, 2 MiB aligned) + free, empty
 *   pmm.contig512fail.64g.50   the same request at 50% random fill: no run
 *   pmm.init.1t                initialise for 1 TiB
 * Those compare the bitmap with the reference, so they run on the locked
 * path (this program's mm_hook_cpu_index answers "no cache" for them). The
 * per-CPU caches against that locked path, on one pmm_t:
 *   pmm.pair.cache[.hot]       free + allocate through this CPU's cache vs
 *                              through the lock (random frames of a 50%
 *                              full 4 GiB; .hot: a 64-frame working set),
 *                              batches alternating between the two paths
 *   pmm.pair.threads2[.cpu]    2 threads over 1 thread, each on its own
 *                              64-frame working set through its cache:
 *                              ours = ns per pair of the two together,
 *                              baseline = ns per pair of one alone, so the
 *                              ratio is the throughput gained by the second
 *                              thread (wall clock; .cpu: thread CPU time,
 *                              what two idle cores would give, which a
 *                              shared machine's wall clock hides)
 *   pmm.pair.threads2.lock     the same through the lock: at most 1.0
 *
 * Build without pmm_poison: with it every free writes 4 KiB.
 */
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <hadron/mm/hhdm.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/pmm.h>
#include <hadron/mm/spinlock.h>

#include "host_cpu_index.h"
#include "host_hooks.h"

#define PG 4096ull
#define GIB (1ull << 30)
#define TIB (1ull << 40)

/* ---- helpers ------------------------------------------------------------ */

/* The CPU index hook of this program (the linker then leaves out
 * tools/host_cpu_hook.c): the host's thread numbering, but a thread that
 * sets `locked_path` gets "no cache". */
static _Thread_local bool locked_path;

unsigned mm_hook_cpu_index(void)
{
    return locked_path ? UINT_MAX : host_thread_index();
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "pmm-bench: %s\n", what);
    exit(1);
}

/* CPU time of this thread: on a shared machine, time spent descheduled
 * would otherwise land in whichever batch it interrupted. Batches are long
 * (>= 0.3 ms) next to the cost of reading this clock. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A memory map for `bytes` of RAM the way a PC reports it: low memory, a
 * 1 MiB hole, RAM up to 3 GiB, the PCI hole, the rest above 4 GiB. */
static size_t pc_map(uint64_t bytes, pmm_region_t *map)
{
    size_t n = 0;
    map[n++] = (pmm_region_t){0, 0x9fc00, PMM_REGION_USABLE};
    map[n++] = (pmm_region_t){0x9fc00, 0x400, PMM_REGION_RESERVED};
    map[n++] = (pmm_region_t){0xf0000, 0x10000, PMM_REGION_RESERVED};
    uint64_t low = bytes < 3 * GIB ? bytes : 3 * GIB;
    map[n++] = (pmm_region_t){0x100000, low - 0x100000, PMM_REGION_USABLE};
    map[n++] = (pmm_region_t){0xfffc0000, 0x40000, PMM_REGION_RESERVED};
    if (bytes > 3 * GIB)
        map[n++] = (pmm_region_t){4 * GIB, bytes - 3 * GIB, PMM_REGION_USABLE};
    return n;
}

/* ---- the baseline: the reference algorithm ------------------------------ */

typedef struct ref {
    mm_spinlock_t lock;
    uint64_t *bitmap; /* 1 = used/reserved */
    uint64_t words;
    uint64_t total_frames;
    uint64_t free_count;
    uint64_t search_hint; /* a word index */
} ref_t;

static bool ref_init(ref_t *r, const pmm_region_t *map, size_t n)
{
    uint64_t max_phys = 0;
    for (size_t i = 0; i < n; i++)
        if (map[i].type == PMM_REGION_USABLE && map[i].base + map[i].length > max_phys)
            max_phys = map[i].base + map[i].length;
    if (max_phys == 0)
        return false;
    uint64_t total = max_phys / PG;
    uint64_t words = (total + 63) / 64;
    uint64_t bytes = words * 8;
    uint64_t bitmap_frames = (bytes + PG - 1) / PG;
    uint64_t start = UINT64_MAX;
    for (size_t i = 0; i < n && start == UINT64_MAX; i++)
        if (map[i].type == PMM_REGION_USABLE && map[i].length >= bytes)
            start = map[i].base;
    if (start == UINT64_MAX)
        return false;
    uint64_t *bm = hhdm_phys_to_virt(start);
    memset(bm, 0xff, bytes);
    uint64_t free_count = 0;
    for (size_t i = 0; i < n; i++) {
        if (map[i].type != PMM_REGION_USABLE)
            continue;
        uint64_t f0 = map[i].base / PG, cnt = map[i].length / PG;
        for (uint64_t k = 0; k < cnt; k++) {
            uint64_t f = f0 + k;
            if (f < total) {
                bm[f / 64] &= ~(1ull << (f % 64));
                free_count++;
            }
        }
    }
    uint64_t bs = start / PG;
    for (uint64_t k = 0; k < bitmap_frames; k++) {
        uint64_t f = bs + k;
        if (f < total && (bm[f / 64] & (1ull << (f % 64))) == 0) {
            bm[f / 64] |= 1ull << (f % 64);
            free_count--;
        }
    }
    mm_spin_init(&r->lock);
    r->bitmap = bm;
    r->words = words;
    r->total_frames = total;
    r->free_count = free_count;
    r->search_hint = 0;
    return true;
}

static bool ref_alloc(ref_t *r, uint64_t *frame)
{
    mm_irqflags_t fl = mm_spin_lock_irqsave(&r->lock);
    if (r->free_count == 0) {
        mm_spin_unlock_irqrestore(&r->lock, fl);
        return false;
    }
    uint64_t start = r->search_hint;
    for (uint64_t off = 0; off < r->words; off++) {
        uint64_t wi = (start + off) % r->words;
        uint64_t w = r->bitmap[wi];
        if (w == UINT64_MAX)
            continue;
        uint64_t bit = (uint64_t)__builtin_ctzll(~w);
        uint64_t f = wi * 64 + bit;
        if (f >= r->total_frames)
            continue;
        r->bitmap[wi] |= 1ull << bit;
        r->free_count--;
        r->search_hint = wi;
        mm_spin_unlock_irqrestore(&r->lock, fl);
        *frame = f;
        return true;
    }
    mm_spin_unlock_irqrestore(&r->lock, fl);
    return false;
}

static bool ref_alloc_contig(ref_t *r, uint64_t count, uint64_t *frame)
{
    mm_irqflags_t fl = mm_spin_lock_irqsave(&r->lock);
    if (r->free_count < count) {
        mm_spin_unlock_irqrestore(&r->lock, fl);
        return false;
    }
    uint64_t run_start = 0, run_len = 0, fi = 0;
    while (fi < r->total_frames) {
        uint64_t wi = fi / 64, w = r->bitmap[wi];
        if (w == UINT64_MAX) {
            run_len = 0;
            fi = (wi + 1) * 64;
            run_start = fi;
            continue;
        }
        if (w == 0) {
            uint64_t extend = r->total_frames - wi * 64;
            if (extend > 64)
                extend = 64;
            if (run_len == 0)
                run_start = wi * 64;
            run_len += extend;
            if (run_len >= count)
                break;
            fi = (wi + 1) * 64;
            continue;
        }
        for (uint64_t bit = fi % 64; bit < 64; bit++) {
            uint64_t f = wi * 64 + bit;
            if (f >= r->total_frames)
                break;
            if (w & (1ull << bit)) {
                run_len = 0;
                run_start = f + 1;
            } else {
                if (run_len == 0)
                    run_start = f;
                run_len++;
                if (run_len >= count)
                    break;
            }
        }
        if (run_len >= count)
            break;
        fi = (wi + 1) * 64;
    }
    if (run_len < count) {
        mm_spin_unlock_irqrestore(&r->lock, fl);
        return false;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint64_t f = run_start + i;
        r->bitmap[f / 64] |= 1ull << (f % 64);
    }
    r->free_count -= count;
    r->search_hint = (run_start + count) / 64;
    mm_spin_unlock_irqrestore(&r->lock, fl);
    *frame = run_start;
    return true;
}

static void ref_free_contig(ref_t *r, uint64_t f0, uint64_t count)
{
    mm_irqflags_t fl = mm_spin_lock_irqsave(&r->lock);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t f = f0 + i;
        r->bitmap[f / 64] &= ~(1ull << (f % 64)); /* release build: no double-free check */
        r->free_count++;
    }
    if (f0 / 64 < r->search_hint)
        r->search_hint = f0 / 64;
    mm_spin_unlock_irqrestore(&r->lock, fl);
}

static void ref_free(ref_t *r, uint64_t f)
{
    mm_irqflags_t fl = mm_spin_lock_irqsave(&r->lock);
    uint64_t wi = f / 64;
    r->bitmap[wi] &= ~(1ull << (f % 64));
    r->free_count++;
    if (wi < r->search_hint)
        r->search_hint = wi;
    mm_spin_unlock_irqrestore(&r->lock, fl);
}

/* ---- one interface over both ------------------------------------------- */

typedef struct side {
    bool ours;
    pmm_t pmm;
    ref_t ref;
} side_t;

static void side_init(side_t *s, const pmm_region_t *map, size_t n)
{
    if (s->ours) {
        memset(&s->pmm, 0, sizeof s->pmm);
        if (pmm_init(&s->pmm, map, n, NULL, 0) != MM_OK)
            die("pmm_init failed");
    } else if (!ref_init(&s->ref, map, n)) {
        die("baseline init failed");
    }
}

static bool side_alloc(side_t *s, uint64_t *frame)
{
    if (!s->ours)
        return ref_alloc(&s->ref, frame);
    mm_paddr_t pa;
    if (pmm_alloc(&s->pmm, &pa) != MM_OK)
        return false;
    *frame = pa / PG;
    return true;
}

static void side_free(side_t *s, uint64_t frame)
{
    if (!s->ours)
        ref_free(&s->ref, frame);
    else if (pmm_free(&s->pmm, frame * PG) != MM_OK)
        die("pmm_free failed");
}

/* 512 frames; ours asks for 2 MiB alignment, the reference cannot. */
static bool side_contig512(side_t *s, uint64_t *frame)
{
    if (!s->ours)
        return ref_alloc_contig(&s->ref, 512, frame);
    mm_paddr_t pa;
    if (pmm_alloc_contig(&s->pmm, 512, 512, MM_PADDR_MAX, &pa) != MM_OK)
        return false;
    *frame = pa / PG;
    return true;
}

static void side_free512(side_t *s, uint64_t frame)
{
    if (!s->ours)
        ref_free_contig(&s->ref, frame, 512);
    else if (pmm_free_contig(&s->pmm, frame * PG, 512) != MM_OK)
        die("pmm_free_contig failed");
}

/* ---- measurement ------------------------------------------------------- */

/* Runs `op` in batches sized to take >= ~0.3 ms, `batches` times within a
 * time budget; returns the median ns per op. */
typedef void (*op_fn)(side_t *s, void *ctx);

static double measure(side_t *s, op_fn op, void *ctx, int batches, uint64_t budget_ns)
{
    uint64_t per = 1;
    for (;;) {
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < per; i++)
            op(s, ctx);
        uint64_t dt = now_ns() - t0;
        if (dt >= 300000 || per >= (1u << 20))
            break;
        per *= 2;
    }
    double v[64];
    int n = 0;
    uint64_t start = now_ns();
    while (n < batches && n < 64) {
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < per; i++)
            op(s, ctx);
        v[n++] = (double)(now_ns() - t0) / (double)per;
        if (n >= 3 && now_ns() - start > budget_ns)
            break;
    }
    return median(v, n);
}

typedef struct pair_ctx {
    uint32_t *used; /* frames currently allocated by the workload */
    uint64_t nused;
    uint64_t next;  /* the next one to free */
} pair_ctx_t;

/* `used` is kept in random order and walked in sequence: the frame freed is
 * random, but the harness itself does not take a cache miss per operation
 * (a random index into 64 MiB would cost more than either allocator). */
static void pair_op(side_t *s, void *vctx)
{
    pair_ctx_t *c = vctx;
    uint64_t i = c->next;
    c->next = i + 1 < c->nused ? i + 1 : 0;
    uint64_t f;
    side_free(s, c->used[i]);
    if (!side_alloc(s, &f))
        die("pair: allocation failed");
    c->used[i] = (uint32_t)f;
}

static void shuffle(pair_ctx_t *c)
{
    for (uint64_t i = c->nused - 1; i > 0; i--) {
        uint64_t j = rnd() % (i + 1);
        uint32_t t = c->used[i];
        c->used[i] = c->used[j];
        c->used[j] = t;
    }
    c->next = 0;
}

static void print_ratio(const char *name, double ours, double base)
{
    printf("ratio %s %.1f %.1f %.1f\n", name, ours, base, base / ours);
    fflush(stdout);
}

/* Frees random frames of the workload until `keep` remain allocated. */
static void thin_to(side_t *s, pair_ctx_t *c, uint64_t keep)
{
    while (c->nused > keep) {
        uint64_t i = rnd() % c->nused;
        side_free(s, c->used[i]);
        c->used[i] = c->used[--c->nused];
    }
}

static const struct {
    const char *name;
    uint64_t per_mille_used;
} fills[] = {{"99.9", 999}, {"99", 990}, {"90", 900}, {"50", 500}, {"0", 0}};
#define NFILLS (sizeof fills / sizeof fills[0])

/* For one side: fill memory, then thin it out fill level by fill level,
 * timing the pair workload at each. */
static void pair_side(side_t *s, uint64_t bytes, double *out_ns)
{
    pmm_region_t map[8];
    size_t n = pc_map(bytes, map);
    side_init(s, map, n);
    pair_ctx_t c;
    uint64_t cap = bytes / PG;
    c.used = malloc(cap * sizeof *c.used);
    c.nused = 0;
    c.next = 0;
    uint64_t f;
    while (side_alloc(s, &f))
        c.used[c.nused++] = (uint32_t)f;
    uint64_t total = c.nused;
    for (size_t k = 0; k < NFILLS; k++) {
        uint64_t keep = total * fills[k].per_mille_used / 1000;
        if (keep == 0)
            keep = 1; /* 0%: one frame to free and take back */
        thin_to(s, &c, keep);
        shuffle(&c);
        /* Let the hint settle into its steady state before timing. */
        uint64_t t0 = now_ns();
        for (int i = 0; i < 20000 && now_ns() - t0 < 100000000ull; i++)
            pair_op(s, &c);
        out_ns[k] = measure(s, pair_op, &c, 15, 400000000ull);
    }
    free(c.used);
}

static void bench_pair(const char *tag, uint64_t bytes)
{
    double ours[NFILLS], base[NFILLS];
    side_t *s = calloc(1, sizeof *s);
    s->ours = true;
    rng_state = 0x9e3779b97f4a7c15ull;
    pair_side(s, bytes, ours);
    memset(s, 0, sizeof *s);
    rng_state = 0x9e3779b97f4a7c15ull;
    pair_side(s, bytes, base);
    free(s);
    for (size_t k = 0; k < NFILLS; k++) {
        char name[64];
        snprintf(name, sizeof name, "pmm.pair.%s.%s", tag, fills[k].name);
        print_ratio(name, ours[k], base[k]);
    }
}

static void contig_op(side_t *s, void *ctx)
{
    (void)ctx;
    uint64_t f;
    if (!side_contig512(s, &f))
        die("contig512: allocation failed on empty memory");
    side_free512(s, f);
}

static void contig_fail_op(side_t *s, void *ctx)
{
    (void)ctx;
    uint64_t f;
    if (side_contig512(s, &f))
        die("contig512fail: found a run in 50% random fill");
}

static void bench_contig(uint64_t bytes)
{
    pmm_region_t map[8];
    size_t n = pc_map(bytes, map);
    double empty[2], fail[2];
    for (int which = 0; which < 2; which++) {
        side_t *s = calloc(1, sizeof *s);
        s->ours = which == 0;
        side_init(s, map, n);
        empty[which] = measure(s, contig_op, NULL, 15, 300000000ull);

        /* 50% random fill: allocate everything, free a random half. */
        uint32_t *all = malloc(bytes / PG * sizeof *all);
        uint64_t count = 0, f;
        while (side_alloc(s, &f))
            all[count++] = (uint32_t)f;
        rng_state = 0x1234567ull;
        for (uint64_t i = 0; i < count; i++)
            if (rnd() & 1)
                side_free(s, all[i]);
        free(all);
        fail[which] = measure(s, contig_fail_op, NULL, which == 0 ? 15 : 5, 1500000000ull);
        free(s);
    }
    print_ratio("pmm.contig512.64g.0", empty[0], empty[1]);
    print_ratio("pmm.contig512fail.64g.50", fail[0], fail[1]);
}

static const pmm_region_t *init_map;
static size_t init_n;

static void init_op(side_t *s, void *ctx)
{
    (void)ctx;
    side_init(s, init_map, init_n);
}

static void bench_init(uint64_t bytes)
{
    pmm_region_t map[8];
    init_n = pc_map(bytes, map);
    init_map = map;
    double t[2];
    for (int which = 0; which < 2; which++) {
        side_t *s = calloc(1, sizeof *s);
        s->ours = which == 0;
        side_init(s, map, init_n); /* first touch of the pages out of the timing */
        t[which] = measure(s, init_op, NULL, which == 0 ? 11 : 3, 3000000000ull);
        free(s);
    }
    print_ratio("pmm.init.1t", t[0], t[1]);
}

/* ---- per-CPU caches ---------------------------------------------------- */

static void spread_line(const char *name, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    printf("# %s: %d runs, min %.1f, median %.1f, max %.1f\n", name, n, v[0],
           n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[n - 1]);
}

/* One pmm_t, a working set of `working` allocated frames among `held` in
 * all: batches of pairs alternate between the cache and the locked path. */
static void bench_pcp_pair(const char *name, uint64_t bytes, uint64_t held, uint64_t working)
{
    pmm_region_t map[8];
    size_t n = pc_map(bytes, map);
    side_t *s = calloc(1, sizeof *s);
    s->ours = true;
    side_init(s, map, n);
    locked_path = true;
    uint64_t f, count = 0;
    uint32_t *all = malloc(held * sizeof *all);
    while (count < held && side_alloc(s, &f))
        all[count++] = (uint32_t)f;
    rng_state = 0x71c2f0a1ull;
    pair_ctx_t c = {.used = all, .nused = working < count ? working : count, .next = 0};
    if (c.nused < count) {
        /* The working set: random frames of all those held. */
        for (uint64_t i = 0; i < c.nused; i++) {
            uint64_t j = i + rnd() % (count - i);
            uint32_t t = all[i];
            all[i] = all[j];
            all[j] = t;
        }
    }
    shuffle(&c);
    enum { RUNS = 21 };
    double cache[RUNS], lock[RUNS];
    uint64_t per = 20000;
    for (int warm = 0; warm < 2; warm++) {
        locked_path = warm == 1;
        for (uint64_t i = 0; i < per; i++)
            pair_op(s, &c);
    }
    for (int r = 0; r < 2 * RUNS; r++) {
        locked_path = r % 2 == 1;
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < per; i++)
            pair_op(s, &c);
        double v = (double)(now_ns() - t0) / (double)per;
        if (locked_path)
            lock[r / 2] = v;
        else
            cache[r / 2] = v;
    }
    print_ratio(name, median(cache, RUNS), median(lock, RUNS));
    char label[96];
    snprintf(label, sizeof label, "%s through the cache", name);
    spread_line(label, cache, RUNS);
    snprintf(label, sizeof label, "%s through the lock", name);
    spread_line(label, lock, RUNS);
    locked_path = true;
    free(all);
    free(s);
}

#define PCP_WORKING 64

typedef struct pcp_thread {
    /* Each thread's own cache lines: the other thread's writes to its
     * used[] must not invalidate what this one reads on every pair. */
    alignas(64) pmm_t *pmm;
    bool locked;
    pthread_barrier_t *start, *ready;
    atomic_bool *stop;
    uint64_t used[PCP_WORKING];
    uint64_t ops, cpu_ns;
} pcp_thread_t;

static void *pcp_thread_main(void *arg)
{
    pcp_thread_t *t = arg;
    locked_path = t->locked;
    for (int i = 0; i < PCP_WORKING; i++)
        if (pmm_alloc(t->pmm, &t->used[i]) != MM_OK)
            die("threads2: allocation failed");
    pthread_barrier_wait(t->ready);
    pthread_barrier_wait(t->start);
    uint64_t ops = 0, c0 = now_ns();
    unsigned k = 0;
    while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            k = (k + 37) % PCP_WORKING;
            if (pmm_free(t->pmm, t->used[k]) != MM_OK || pmm_alloc(t->pmm, &t->used[k]) != MM_OK)
                die("threads2: pair failed");
        }
        ops += 256;
    }
    t->cpu_ns = now_ns() - c0;
    t->ops = ops;
    for (int i = 0; i < PCP_WORKING; i++)
        if (pmm_free(t->pmm, t->used[i]) != MM_OK)
            die("threads2: free failed");
    return NULL;
}

/* `threads` threads run pairs for `ms`; returns wall ns per pair (all
 * threads together) and thread-CPU ns per pair (per thread) in *cpu. */
static double pcp_run(pmm_t *p, int threads, bool locked, uint64_t ms, double *cpu)
{
    pthread_barrier_t start, ready;
    atomic_bool stop = false;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
    pcp_thread_t t[2];
    pthread_t tid[2];
    for (int i = 0; i < threads; i++) {
        t[i] = (pcp_thread_t){.pmm = p, .locked = locked, .start = &start, .ready = &ready,
                              .stop = &stop};
        pthread_create(&tid[i], NULL, pcp_thread_main, &t[i]);
    }
    pthread_barrier_wait(&ready);
    uint64_t w0 = wall_ns();
    pthread_barrier_wait(&start);
    struct timespec d = {.tv_sec = 0, .tv_nsec = (long)(ms * 1000000)};
    nanosleep(&d, NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    uint64_t w = wall_ns() - w0, ops = 0, cpu_ns = 0;
    for (int i = 0; i < threads; i++) {
        ops += t[i].ops;
        cpu_ns += t[i].cpu_ns;
    }
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&ready);
    *cpu = (double)cpu_ns / (double)ops;
    return (double)w / (double)ops;
}

static void bench_pcp_threads(const char *name, bool locked)
{
    pmm_region_t map[8];
    size_t n = pc_map(4 * GIB, map);
    pmm_t *p = calloc(1, sizeof *p);
    if (pmm_init(p, map, n, NULL, 0) != MM_OK)
        die("pmm_init failed");
    enum { RUNS = 7 };
    double one[RUNS], two[RUNS], one_cpu[RUNS], two_cpu[RUNS];
    double c;
    pcp_run(p, 1, locked, 50, &c); /* warm-up: threads, caches, bitmap words */
    for (int r = 0; r < RUNS; r++) {
        one[r] = pcp_run(p, 1, locked, 150, &one_cpu[r]);
        two[r] = pcp_run(p, 2, locked, 150, &two_cpu[r]);
        two_cpu[r] /= 2; /* per pair of the pair of threads, were each on its own core */
    }
    print_ratio(name, median(two, RUNS), median(one, RUNS));
    if (!locked) {
        char cpu_name[96];
        snprintf(cpu_name, sizeof cpu_name, "%s.cpu", name);
        print_ratio(cpu_name, median(two_cpu, RUNS), median(one_cpu, RUNS));
    }
    char label[96];
    snprintf(label, sizeof label, "%s wall ns per pair, 1 thread", name);
    spread_line(label, one, RUNS);
    snprintf(label, sizeof label, "%s wall ns per pair, 2 threads", name);
    spread_line(label, two, RUNS);
    pmm_stats_t st;
    if (pmm_get_stats(p, &st) != MM_OK || st.used_frames + st.free_frames != st.usable_frames)
        die("threads2: counts off");
    const char *why;
    if (pmm_check(p, &why) != MM_OK)
        die(why);
    free(p);
}

/* `pmm-bench [prefix]` runs only the cases whose name starts with prefix
 * (e.g. pmm.init, pmm.pair.64g). */
static const char *filter = "";

static bool want(const char *family)
{
    size_t n = strlen(filter), m = strlen(family);
    return strncmp(family, filter, n < m ? n : m) == 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        filter = argv[1];
#if HADRON_MM_PMM_POISON
    fprintf(stderr, "pmm-bench: built with pmm_poison; frees fill 4 KiB, numbers are not "
                    "comparable\n");
#endif
    /* 1 TiB of RAM (plus the PCI hole below 4 GiB) of lazily backed
     * "physical memory"; only touched pages cost. */
    uint64_t sim = 1 * TIB + 4 * GIB;
    void *base = mmap(NULL, sim, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        die("cannot reserve the simulated memory's address space");
    /* A kernel's HHDM is mapped with 2 MiB or 1 GiB pages; without this the
     * host's 4 KiB pages add a TLB miss to every random bitmap access, for
     * both allocators alike. Best effort. */
    (void)madvise(base, sim, MADV_HUGEPAGE);
    if (hhdm_init((uint64_t)(uintptr_t)base, sim) != MM_OK)
        die("hhdm_init failed");

    locked_path = true; /* the bitmap against the reference; caches below */
    printf("# pmm-bench: ours vs the reference algorithm; ns per operation (median)\n");
    printf("# ratio <case> <ours_ns> <baseline_ns> <baseline/ours>\n");
    fflush(stdout);
    /* The cache cases first: after the 64 GiB and 1 TiB cases have touched
     * their memory, the random one's frames cost both of its sides about
     * 10 ns more (host TLB and cache misses, which a kernel's HHDM in large
     * pages does not have), and its ratio read 1.6 instead of 2.2. */
    if (want("pmm.pair.cache"))
        bench_pcp_pair("pmm.pair.cache", 4 * GIB, 4 * GIB / PG / 2, 4 * GIB / PG / 2);
    if (want("pmm.pair.cache.hot"))
        bench_pcp_pair("pmm.pair.cache.hot", 4 * GIB, 4 * GIB / PG / 2, PCP_WORKING);
    if (want("pmm.pair.4g."))
        bench_pair("4g", 4 * GIB);
    if (want("pmm.pair.64g."))
        bench_pair("64g", 64 * GIB);
    if (want("pmm.contig512"))
        bench_contig(64 * GIB);
    if (want("pmm.init.1t"))
        bench_init(1 * TIB);
    if (want("pmm.pair.threads2"))
        bench_pcp_threads("pmm.pair.threads2", false);
    if (want("pmm.pair.threads2.lock"))
        bench_pcp_threads("pmm.pair.threads2.lock", true);
    return 0;
}
