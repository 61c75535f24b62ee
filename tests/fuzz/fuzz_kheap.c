/*
 * libFuzzer harness: the kernel heap (kheap.h) against a reference model of
 * its live allocations and regions.
 *
 * The model does not re-implement the allocator's placement; it checks what
 * the header promises about every result:
 *  - a pointer is aligned as asked, lies in a region, overlaps no other live
 *    allocation, and has at least the requested usable size (exactly it with
 *    heap_redzones); every allocation is filled with its own pattern, which
 *    must be intact when it is freed or reallocated (realloc keeps the
 *    contents up to the smaller size);
 *  - address-ordered first fit: no free block below a new (non-run) block
 *    could surely have held it (with slack for headers and padding), and a
 *    valid request fails only when no free block could surely hold it and
 *    growth could not help;
 *  - freeing a live pointer succeeds; freeing anything else (a stale
 *    pointer, an interior pointer, a foreign pointer) fails with
 *    MM_ERR_DOUBLE_FREE or MM_ERR_BAD_POINTER (exactly BAD_POINTER for an
 *    interior or foreign pointer), warns exactly once, and changes nothing;
 *  - regions (kheap_init, kheap_add_region, growth) follow the documented
 *    validation, overlap and merge rules, so total_bytes and the region
 *    count are predicted exactly;
 *  - kheap_check passes after every operation, the walker's blocks agree
 *    with the statistics and the live set, and the allocation-tracking
 *    counters (alloc_tracking builds) match; freeing everything leaves each
 *    region one free block.
 *
 * Input:
 *   header  u8 flags (1: empty heap, grown only by the callback; 2: growth
 *           callback installed; 4: size classes off (small requests aligned to 32); 8: the callback allocates
 *           from the heap it grows; 16: this CPU's front of the size
 *           classes on, else every call takes the locked path), u16 initial size (16-byte units), u8
 *           misalignment of the initial range.
 *   ops     u8 opcode, then its arguments (see run_op).
 */
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/kheap.h>

#include "fuzz_common.h"
#include "mm_test.h"

#define ARENA_BYTES (4u << 20)
#define MAX_OPS 2048u
/* The model's capacities. The heap itself bounds neither regions nor live
 * allocations, so these are set above what MAX_OPS operations can reach
 * (an operation adds at most one region, through a growth or an added
 * region, and at most two allocations, one of them made inside the growth
 * callback), and run_input stops an input that would still get near them
 * instead of failing it. */
#define OP_MAX_NEW 4u
#define MAX_LIVE (2u * MAX_OPS + 2u * OP_MAX_NEW)
#define MAX_REGIONS (MAX_OPS + 2u * OP_MAX_NEW)
#define SLACK (64u + 2u * KHEAP_REDZONE + 48u) /* headers, guards, a padding block */

typedef struct alloc {
    uintptr_t p;
    size_t req;    /* requested bytes */
    size_t usable; /* kheap_usable_size when allocated */
    uint8_t pat;
} alloc_t;

typedef struct region {
    uintptr_t b, e;
} region_t;

static _Alignas(4096) uint8_t arena[ARENA_BYTES];

static struct {
    kheap_t h;
    alloc_t live[MAX_LIVE];
    size_t nlive;
    uintptr_t stale[256]; /* pointers freed earlier */
    size_t nstale;
    region_t reg[MAX_REGIONS];
    size_t nreg;
    size_t total;
    size_t cursor; /* next unused arena byte */
    bool grow_fail, grow_reenter, in_grow;
    bool runs_on; /* class-sized requests at granule alignment (else at 32) */
    bool fronts;  /* size-class objects go through this CPU's front */
    size_t grow_extra, grow_gap;
    uint8_t next_pat;
    int warnings;
} K;

/* ------------------------------------------------------------------ */
/* Model                                                               */
/* ------------------------------------------------------------------ */

FZ_NOCOV static long live_find(uintptr_t p)
{
    for (size_t i = 0; i < K.nlive; i++)
        if (K.live[i].p == p)
            return (long)i;
    return -1;
}

/* Index of the live allocation whose usable bytes contain p, or -1. */
FZ_NOCOV static long live_containing(uintptr_t p)
{
    for (size_t i = 0; i < K.nlive; i++)
        if (p >= K.live[i].p && p - K.live[i].p < K.live[i].usable)
            return (long)i;
    return -1;
}

FZ_NOCOV static bool in_regions(uintptr_t p)
{
    for (size_t i = 0; i < K.nreg; i++)
        if (p >= K.reg[i].b && p < K.reg[i].e)
            return true;
    return false;
}

static void fill(const alloc_t *a)
{
    memset((void *)a->p, a->pat, a->usable);
}

FZ_NOCOV static void check_fill(const alloc_t *a, size_t n, const char *what)
{
    const uint8_t *q = (const uint8_t *)a->p;
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(q[i] == a->pat, "%s: byte %zu of %#lx (%zu bytes) is %#x, pattern %#x", what, i,
                 (unsigned long)a->p, a->req, q[i], a->pat);
}

static void stale_add(uintptr_t p)
{
    K.stale[K.nstale++ % 256] = p;
}

/* kheap_validate_region + the overlap and merge rules of add_region. */
static mm_status_t model_region(uintptr_t base, size_t size, uintptr_t *b_out, uintptr_t *e_out)
{
    uintptr_t end, b;
    if (base == 0)
        return MM_ERR_INVALID;
    if (__builtin_add_overflow(base, (uintptr_t)size, &end) ||
        __builtin_add_overflow(base, (uintptr_t)KHEAP_GRANULE - 1, &b))
        return MM_ERR_RANGE;
    b &= ~(uintptr_t)(KHEAP_GRANULE - 1);
    end &= ~(uintptr_t)(KHEAP_GRANULE - 1);
    if (end < b || end - b < KHEAP_REGION_MIN)
        return MM_ERR_INVALID;
    if (end - b > KHEAP_REGION_MAX)
        return MM_ERR_RANGE;
    for (size_t i = 0; i < K.nreg; i++)
        if (b < K.reg[i].e && K.reg[i].b < end)
            return MM_ERR_OVERLAP;
    *b_out = b;
    *e_out = end;
    return MM_OK;
}

static void model_add_region(uintptr_t b, uintptr_t e)
{
    K.total += e - b;
    for (size_t i = 0; i < K.nreg; i++)
        if (K.reg[i].e == b && (K.reg[i].e - K.reg[i].b) + (e - b) <= KHEAP_REGION_MAX) {
            K.reg[i].e = e;
            return;
        }
    FZ_CHECK(K.nreg < MAX_REGIONS, "too many regions");
    K.reg[K.nreg++] = (region_t){b, e};
}

/* ------------------------------------------------------------------ */
/* Growth callback: fresh memory from the arena                        */
/* ------------------------------------------------------------------ */

static void take_alloc(void *p, size_t req, size_t align, const char *what);

static mm_status_t grow_cb(void *ctx, size_t min_bytes, void **base, size_t *size)
{
    (void)ctx;
    FZ_CHECK(!K.in_grow, "growth callback entered twice");
    if (K.grow_fail)
        return MM_ERR_NOMEM;
    size_t gap = K.grow_gap, want = min_bytes + K.grow_extra;
    if (want > ARENA_BYTES || K.cursor + gap + want > ARENA_BYTES || want < min_bytes)
        return MM_ERR_NOMEM;
    uintptr_t b = (uintptr_t)arena + K.cursor + gap, e;
    FZ_CHECK(model_region(b, want, &b, &e) == MM_OK, "growth memory refused by the model");
    K.cursor += gap + want;
    FZ_TRACE("  grow: %zu bytes (asked %zu) at %#lx\n", want, min_bytes, (unsigned long)b);
    /* The heap adds it after we return; predict the region now. */
    model_add_region(b, e);
    if (K.grow_reenter) {
        /* Allowed: served from free memory, or NULL; never a deadlock. */
        K.in_grow = true;
        void *p = kheap_alloc(&K.h, 24, 0);
        K.in_grow = false;
        if (p != NULL)
            take_alloc(p, 24, 0, "alloc inside the growth callback");
    }
    *base = (void *)((uintptr_t)arena + K.cursor - want);
    *size = want;
    return MM_OK;
}

static uintptr_t self_cb(void *ctx)
{
    (void)ctx;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

typedef struct walk_sum {
    size_t free_bytes, free_blocks, largest, slabs, used_blocks, front_blocks, front_bytes;
    size_t live_found;
    uintptr_t below_limit;   /* first-fit check: block address */
    size_t need;             /* size that surely fits */
    bool fit_below;          /* a free block below `below_limit` surely fit */
    bool fit_anywhere;
} walk_sum_t;

static bool walk_cb(void *arg, const kheap_block_info_t *b)
{
    walk_sum_t *w = arg;
    if (fz_trace > 1)
        fprintf(stderr, "    block %p size %zu used %d slab %d ptr %p usable %zu\n", b->block,
                b->size, b->used, b->slab, b->ptr, b->usable);
    FZ_CHECK(in_regions((uintptr_t)b->block), "walker block %p outside the regions", b->block);
    if (!b->used) {
        w->free_bytes += b->size;
        w->free_blocks++;
        if (b->size > w->largest)
            w->largest = b->size;
        if (w->need != 0 && b->size >= w->need) {
            w->fit_anywhere = true;
            if ((uintptr_t)b->block < w->below_limit)
                w->fit_below = true;
        }
        return true;
    }
    FZ_CHECK(!b->slab || b->internal, "walker: slab %p not marked internal", b->ptr);
    if (b->slab)
        w->slabs++;
    FZ_CHECK(!b->front || (b->internal && K.fronts), "walker: front %p unexpected", b->ptr);
    if (b->front) {
        w->front_blocks++;
        w->front_bytes += b->size;
    }
    if (b->internal)
        return true;
    w->used_blocks++;
    long i = live_find((uintptr_t)b->ptr);
    FZ_CHECK(i >= 0, "walker: used block %p (pointer %p) the model does not know", b->block,
             b->ptr);
    FZ_CHECK(b->usable == K.live[i].usable, "walker: %p usable %zu, allocation said %zu", b->ptr,
             b->usable, K.live[i].usable);
    w->live_found++;
    return true;
}

static walk_sum_t walk(uintptr_t below, size_t need)
{
    walk_sum_t w = {0};
    w.below_limit = below;
    w.need = need;
    FZ_CHECK(kheap_walk(&K.h, walk_cb, &w) == MM_OK, "kheap_walk");
    return w;
}

static void verify(bool full)
{
    mm_report_t rep;
    mm_status_t st = kheap_check(&K.h, &rep);
    FZ_CHECK(st == MM_OK, "kheap_check: %s: %s at %#llx", mm_status_str(st),
             rep.message ? rep.message : "-", (unsigned long long)rep.address);
    FZ_CHECK(test_irq_depth() == 0 && !mm_spin_is_locked(&K.h.lock), "lock left held");
    FZ_CHECK(test_warnings.count == K.warnings, "%d warnings, model expects %d",
             test_warnings.count, K.warnings);
    kheap_stats_t s;
    FZ_CHECK(kheap_get_stats(&K.h, &s) == MM_OK, "stats");
    FZ_CHECK(s.total_bytes == K.total && s.regions == K.nreg,
             "stats: %zu bytes in %zu regions; model %zu in %zu", s.total_bytes, s.regions,
             K.total, K.nreg);
#if HADRON_MM_ALLOC_TRACKING
    size_t bytes = 0;
    for (size_t i = 0; i < K.nlive; i++)
        bytes += K.live[i].usable;
    FZ_CHECK(s.tracking && s.live_count == K.nlive && s.live_bytes == bytes,
             "tracking: %zu live (%zu bytes); model %zu (%zu)", s.live_count, s.live_bytes,
             K.nlive, bytes);
#endif
    if (!full)
        return;
    walk_sum_t w = walk(0, 0);
    FZ_CHECK(w.free_bytes == s.free_bytes && w.free_blocks == s.free_blocks &&
                 w.largest == s.largest_free && w.slabs == s.class_slabs,
             "walker: %zu free bytes in %zu blocks (largest %zu), %zu slabs; "
             "stats %zu, %zu, %zu, %zu",
             w.free_bytes, w.free_blocks, w.largest, w.slabs, s.free_bytes,
             s.free_blocks, s.largest_free, s.class_slabs);
    FZ_CHECK(w.live_found + s.class_objects == K.nlive, "walker sees %zu + %zu live, model %zu",
             w.live_found, s.class_objects, K.nlive);
}

/* A new allocation: valid, disjoint from every live one, then filled. */
static void take_alloc(void *ptr, size_t req, size_t align, const char *what)
{
    uintptr_t p = (uintptr_t)ptr;
    size_t a = align ? align : KHEAP_GRANULE;
    FZ_CHECK(p % a == 0 && p % KHEAP_GRANULE == 0, "%s: %#lx not aligned to %zu", what,
             (unsigned long)p, a);
    FZ_CHECK(in_regions(p) && kheap_contains(&K.h, ptr), "%s: %#lx outside the heap", what,
             (unsigned long)p);
    size_t usable = kheap_usable_size(&K.h, ptr);
    FZ_CHECK(usable >= req, "%s: usable %zu < requested %zu", what, usable, req);
    if (HADRON_MM_HEAP_REDZONES)
        FZ_CHECK(usable == req || (req == 0 && usable == 0), "%s: usable %zu != %zu", what,
                 usable, req);
    FZ_CHECK(in_regions(p + (usable ? usable - 1 : 0)), "%s: end outside the heap", what);
    for (size_t i = 0; i < K.nlive; i++) {
        const alloc_t *o = &K.live[i];
        size_t ou = o->usable ? o->usable : 1, nu = usable ? usable : 1;
        FZ_CHECK(p + nu <= o->p || o->p + ou <= p,
                 "%s: %#lx+%zu overlaps live %#lx+%zu", what, (unsigned long)p, usable,
                 (unsigned long)o->p, o->usable);
    }
    FZ_CHECK(K.nlive < MAX_LIVE, "too many live allocations");
    alloc_t n = {p, req, usable, (uint8_t)(++K.next_pat | 1)};
    K.live[K.nlive++] = n;
    fill(&n);
}

/* Served by a size-class cache (placement and coalescing differ, see
 * kheap.h). */
static bool run_request(size_t req, size_t align)
{
    return K.runs_on && req <= KHEAP_CLASS_MAX && align <= KHEAP_GRANULE;
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

static size_t pick_size(fz_in_t *in)
{
    uint16_t v = fz_u16(in);
    size_t x = v & 0x3fff;
    switch (v >> 14) {
    case 0: return x % 300;                 /* small: runs of 16-byte classes */
    case 1: return x % 4200;                /* medium runs, around a page */
    case 2: return x << 2;                  /* large, up to 64 KiB */
    default: return x & 1 ? (size_t)1 << ((x >> 1) % 64) : SIZE_MAX - (x & 0xff);
    }
}

static size_t pick_align(uint8_t a)
{
    if (a < 0x80)
        return 0;
    if (a >= 0xf8)
        return (size_t)(a & 7) * 8 + 24; /* not a power of two */
    return (size_t)1 << ((a & 0x7f) % 17);
}

static void do_alloc(size_t req, size_t align)
{
    /* Size classes off: a class-sized request asks for 32-byte alignment,
     * which the classes do not serve, so small blocks are placed (and
     * modelled) by the first-fit rule too. */
    if (!K.runs_on && req <= KHEAP_CLASS_MAX && align <= KHEAP_GRANULE &&
        (align == 0 || mm_is_pow2(align)))
        align = 2 * KHEAP_GRANULE;
    bool valid = (align == 0 || mm_is_pow2(align)) && align <= KHEAP_REGION_MAX &&
                 req <= KHEAP_REGION_MAX;
    kheap_stats_t before;
    kheap_get_stats(&K.h, &before);
    void *p = kheap_alloc(&K.h, req, align);
    FZ_TRACE("  alloc %zu align %zu -> %p\n", req, align, p);
    if (!valid) {
        FZ_CHECK(p == NULL, "alloc(%zu, %zu) should have failed", req, align);
        return;
    }
    size_t a = align > KHEAP_GRANULE ? align : 0;
    size_t need = req + a + SLACK;
    if (run_request(req, align)) {
        /* A new slab of the request's class (page-aligned) and room for a
         * bigger slab table. */
        size_t slab = 0;
        for (unsigned c = 0; c < KHEAP_CLASSES && slab == 0; c++)
            if (K.h.classes[c].object_size >= (req == 0 ? 1 : req))
                slab = K.h.classes[c].slab_bytes;
        size_t table = (2 * K.h.class_index.cap + 64) * sizeof(uintptr_t);
        need = slab + KHEAP_PAGE + SLACK + table + SLACK;
    }
    if (p == NULL) {
        /* Only when nothing could surely hold it, before or after growth. */
        walk_sum_t w = walk(0, need);
        FZ_CHECK(!w.fit_anywhere, "alloc(%zu, %zu) failed with a free block that fits", req,
                 align);
        return;
    }
    take_alloc(p, req, align, "alloc");
    if (!run_request(req, align)) {
        walk_sum_t w = walk((uintptr_t)p, need);
        FZ_CHECK(!w.fit_below, "alloc(%zu, %zu) = %p, but a lower free block surely fit", req,
                 align, p);
    }
}

/* Frees the live allocation i, checking its pattern first. */
static void free_live(size_t i)
{
    alloc_t a = K.live[i];
    check_fill(&a, a.usable, "free");
    mm_status_t st = kheap_free(&K.h, (void *)a.p);
    FZ_TRACE("  free %#lx -> %s\n", (unsigned long)a.p, mm_status_str(st));
    FZ_CHECK(st == MM_OK, "free of live %#lx: %s", (unsigned long)a.p, mm_status_str(st));
    K.live[i] = K.live[--K.nlive];
    stale_add(a.p);
}

/* Anything but a live pointer: refused, warned once, nothing changes. */
static void free_bad(uintptr_t p, bool via_realloc)
{
    if (p == 0 || live_find(p) >= 0)
        return;
    kheap_stats_t s0, s1;
    kheap_get_stats(&K.h, &s0);
    bool foreign = !in_regions(p);
    bool interior = live_containing(p) >= 0;
    void *out = (void *)1;
    mm_status_t st = via_realloc ? kheap_realloc(&K.h, (void *)p, 8, &out)
                                 : kheap_free(&K.h, (void *)p);
    FZ_TRACE("  bad %s %#lx (%s) -> %s\n", via_realloc ? "realloc" : "free", (unsigned long)p,
             foreign ? "foreign" : interior ? "interior" : "stale", mm_status_str(st));
    if (foreign || interior)
        FZ_CHECK(st == MM_ERR_BAD_POINTER, "freeing %s %#lx: %s, want BAD_POINTER",
                 foreign ? "foreign" : "interior", (unsigned long)p, mm_status_str(st));
    else
        FZ_CHECK(st == MM_ERR_BAD_POINTER || st == MM_ERR_DOUBLE_FREE,
                 "freeing stale %#lx: %s", (unsigned long)p, mm_status_str(st));
    if (via_realloc)
        FZ_CHECK(out == NULL, "failed realloc left *out set");
    K.warnings++;
    kheap_get_stats(&K.h, &s1);
    FZ_CHECK(memcmp(&s0, &s1, sizeof s0) == 0, "a refused free changed the statistics");
}

static void do_realloc(fz_in_t *in)
{
    uint16_t i = fz_u16(in);
    size_t size = pick_size(in);
    uint8_t how = fz_u8(in);
    void *out = (void *)1;
    if ((how & 3) == 0 || K.nlive == 0) { /* realloc(NULL, size) */
        mm_status_t st = kheap_realloc(&K.h, NULL, size, &out);
        FZ_TRACE("  realloc NULL %zu -> %s %p\n", size, mm_status_str(st), out);
        FZ_CHECK((st == MM_OK) == (out != NULL) && (st == MM_OK || st == MM_ERR_NOMEM),
                 "realloc(NULL): %s %p", mm_status_str(st), out);
        if (st == MM_OK)
            take_alloc(out, size, 0, "realloc(NULL)");
        return;
    }
    size_t k = i % K.nlive;
    alloc_t a = K.live[k];
    check_fill(&a, a.usable, "realloc");
    if ((how & 3) == 1 || size == 0) { /* size 0: frees */
        mm_status_t st = kheap_realloc(&K.h, (void *)a.p, 0, &out);
        FZ_CHECK(st == MM_OK && out == NULL, "realloc(p, 0): %s %p", mm_status_str(st), out);
        K.live[k] = K.live[--K.nlive];
        stale_add(a.p);
        return;
    }
    mm_status_t st = kheap_realloc(&K.h, (void *)a.p, size, &out);
    FZ_TRACE("  realloc %#lx (%zu) to %zu -> %s %p\n", (unsigned long)a.p, a.req, size,
             mm_status_str(st), out);
    if (st != MM_OK) {
        FZ_CHECK(st == MM_ERR_NOMEM && out == NULL, "realloc: %s", mm_status_str(st));
        check_fill(&a, a.usable, "failed realloc");
        return;
    }
    FZ_CHECK(out != NULL, "realloc returned MM_OK and NULL");
    K.live[k] = K.live[--K.nlive];
    /* Contents are kept up to the smaller size. */
    alloc_t moved = a;
    moved.p = (uintptr_t)out;
    check_fill(&moved, size < a.req ? size : a.req, "realloc contents");
    if ((uintptr_t)out != a.p)
        stale_add(a.p);
    take_alloc(out, size, 0, "realloc");
}

static void do_add_region(fz_in_t *in)
{
    uint8_t how = fz_u8(in);
    uint16_t n = fz_u16(in);
    size_t size = (size_t)n * 8 + (how & 0x0f);
    uintptr_t base;
    switch (how >> 6) {
    case 0: base = (uintptr_t)arena + K.cursor; break;                        /* adjacent */
    case 1: base = (uintptr_t)arena + K.cursor + 64 + (n & 0xff0); break;     /* a gap */
    case 2: /* overlapping a region */
        base = K.nreg ? K.reg[n % K.nreg].b + (how & 0x30) * 4 : (uintptr_t)arena;
        break;
    default: base = how & 0x20 ? 0 : UINTPTR_MAX - (n & 0xfff); break; /* NULL, wrapping */
    }
    uintptr_t b = 0, e = 0;
    mm_status_t want = model_region(base, size, &b, &e);
    bool fits = base >= (uintptr_t)arena && base <= (uintptr_t)arena + ARENA_BYTES &&
                size <= (uintptr_t)arena + ARENA_BYTES - base;
    if (want == MM_OK && !fits)
        return; /* would hand the heap memory that is not ours */
    mm_status_t st = kheap_add_region(&K.h, (void *)base, size);
    FZ_TRACE("  add_region %#lx+%zu -> %s\n", (unsigned long)base, size, mm_status_str(st));
    FZ_CHECK(st == want, "add_region(%#lx, %zu): %s, model %s", (unsigned long)base, size,
             mm_status_str(st), mm_status_str(want));
    if (st != MM_OK)
        return;
    model_add_region(b, e);
    if (base + size - (uintptr_t)arena > K.cursor)
        K.cursor = base + size - (uintptr_t)arena;
}

/* Whether the model can take any one more operation (see OP_MAX_NEW). */
static bool model_has_room(void)
{
    return K.nreg + OP_MAX_NEW <= MAX_REGIONS && K.nlive + OP_MAX_NEW <= MAX_LIVE;
}

static void run_op(fz_in_t *in)
{
    uint8_t op = fz_u8(in);
    switch (op % 16) {
    case 0:
    case 1:
    case 2:
    case 3: {
        size_t size = pick_size(in);
        do_alloc(size, pick_align(fz_u8(in)));
        break;
    }
    case 4: {
        size_t n = pick_size(in), sz = pick_size(in);
        size_t total;
        void *p = kheap_calloc(&K.h, n, sz);
        if (__builtin_mul_overflow(n, sz, &total) || total > KHEAP_REGION_MAX) {
            FZ_CHECK(p == NULL, "calloc(%zu, %zu) should have failed", n, sz);
            break;
        }
        if (p == NULL)
            break;
        for (size_t i = 0; i < total; i++)
            FZ_CHECK(((uint8_t *)p)[i] == 0, "calloc: byte %zu not zero", i);
        take_alloc(p, total, 0, "calloc");
        break;
    }
    case 5:
    case 6:
    case 7: {
        uint16_t i = fz_u16(in);
        if (K.nlive != 0)
            free_live(i % K.nlive);
        break;
    }
    case 8: { /* bad frees */
        uint8_t how = fz_u8(in);
        uint16_t i = fz_u16(in);
        uintptr_t p = 0;
        switch (how % 5) {
        case 0: p = K.nstale ? K.stale[i % (K.nstale < 256 ? K.nstale : 256)] : 0; break;
        case 1:
            p = K.nlive ? K.live[i % K.nlive].p + KHEAP_GRANULE * (1 + (how >> 3) % 8) : 0;
            if (K.nlive && p - K.live[i % K.nlive].p >= K.live[i % K.nlive].usable)
                p = 0;
            break;
        case 2: p = (uintptr_t)arena + (uintptr_t)i * 64 + (how >> 7) * 8; break;
        case 3: p = (uintptr_t)&K; break; /* not the heap's */
        default: p = K.nlive ? K.live[i % K.nlive].p + 1 + (how >> 4) : 0; break;
        }
        free_bad(p, (how & 8) != 0);
        break;
    }
    case 9: do_realloc(in); break;
    case 10: {
        uint8_t how = fz_u8(in);
        uint16_t i = fz_u16(in);
        if (K.nlive != 0 && !(how & 1)) {
            const alloc_t *a = &K.live[i % K.nlive];
            FZ_CHECK(kheap_usable_size(&K.h, (void *)a->p) == a->usable, "usable_size changed");
            FZ_CHECK(kheap_contains(&K.h, (void *)a->p), "contains");
        } else {
            uintptr_t p = (uintptr_t)arena + (uintptr_t)i * 16;
            FZ_CHECK(kheap_contains(&K.h, (void *)p) == in_regions(p), "contains(%#lx)",
                     (unsigned long)p);
            if (live_find(p) < 0)
                FZ_CHECK(kheap_usable_size(&K.h, (void *)p) == 0, "usable_size of a non-block");
        }
        FZ_CHECK(kheap_usable_size(&K.h, NULL) == 0, "usable_size(NULL)");
        break;
    }
    case 11: do_add_region(in); break;
    case 12: { /* configuration */
        uint8_t how = fz_u8(in);
        if (how & 1) {
            K.runs_on = how & 2;
        } else {
            bool on = how & 2;
            FZ_CHECK(kheap_set_grow(&K.h, on ? grow_cb : NULL, on && (how & 4) ? self_cb : NULL,
                                    NULL) == MM_OK,
                     "set_grow");
            FZ_CHECK(kheap_set_grow(&K.h, NULL, self_cb, NULL) == MM_ERR_INVALID, "self alone");
        }
        K.grow_fail = how & 8;
        K.grow_reenter = how & 16;
        K.grow_extra = (size_t)(how >> 5) * 4096;
        K.grow_gap = how & 0x80 ? 0 : 256;
        break;
    }
    case 13:
        verify(true);
        break;
    case 14: /* free everything */
        while (K.nlive != 0)
            free_live(K.nlive - 1);
        break;
    default: { /* the NULL and uninitialised instances */
        static kheap_t z;
        memset(&z, 0, sizeof z);
        void *out = (void *)1;
        kheap_stats_t s;
        FZ_CHECK(kheap_alloc(&z, 16, 0) == NULL && kheap_alloc(NULL, 16, 0) == NULL, "alloc");
        FZ_CHECK(kheap_calloc(&z, 1, 16) == NULL, "calloc");
        FZ_CHECK(kheap_free(&z, arena) == MM_ERR_STATE && kheap_free(NULL, arena) ==
                 MM_ERR_INVALID, "free");
        FZ_CHECK(kheap_free(&K.h, NULL) == MM_OK, "free(NULL)");
        FZ_CHECK(kheap_realloc(&z, NULL, 16, &out) == MM_ERR_STATE && out == NULL, "realloc");
        FZ_CHECK(kheap_realloc(&K.h, NULL, 16, NULL) == MM_ERR_INVALID, "realloc NULL out");
        FZ_CHECK(kheap_get_stats(&z, &s) == MM_ERR_STATE && kheap_get_stats(NULL, &s) ==
                 MM_ERR_INVALID, "stats");
        FZ_CHECK(kheap_check(&z, NULL) == MM_ERR_STATE, "check");
        FZ_CHECK(kheap_add_region(&z, arena, 4096) == MM_ERR_STATE, "add_region");
        FZ_CHECK(kheap_walk(&z, walk_cb, NULL) == MM_ERR_STATE &&
                 kheap_walk(&K.h, NULL, NULL) == MM_ERR_INVALID, "walk");
        FZ_CHECK(!kheap_contains(&z, arena) && kheap_usable_size(&z, arena) == 0, "queries");
        break;
    }
    }
    verify(K.nlive < 32);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    memset(&K, 0, sizeof K);
    test_warnings.count = 0;
    uint8_t flags = fz_u8(&in);
    size_t isize = (size_t)fz_u16(&in) * 16;
    uint8_t mis = fz_u8(&in) & 15;

    mm_status_t st;
    if (flags & 1) {
        st = kheap_init(&K.h, NULL, 0);
        FZ_CHECK(st == MM_OK, "kheap_init(NULL, 0): %s", mm_status_str(st));
    } else {
        uintptr_t b = 0, e = 0;
        mm_status_t want = model_region((uintptr_t)arena + mis, isize, &b, &e);
        st = kheap_init(&K.h, arena + mis, isize);
        FZ_TRACE("init %zu bytes at +%u: %s\n", isize, mis, mm_status_str(st));
        FZ_CHECK(st == want, "kheap_init(%zu): %s, model %s", isize, mm_status_str(st),
                 mm_status_str(want));
        if (st != MM_OK) {
            FZ_CHECK(kheap_alloc(&K.h, 16, 0) == NULL, "a refused kheap_init left a heap");
            return 0;
        }
        model_add_region(b, e);
        K.cursor = mis + isize;
    }
    if (flags & 2)
        FZ_CHECK(kheap_set_grow(&K.h, grow_cb, self_cb, NULL) == MM_OK, "set_grow");
    K.grow_reenter = flags & 8;
    K.runs_on = !(flags & 4);
    K.fronts = flags & 16;
    test_cpu_index = K.fronts ? 0 : 1 << 20;
    verify(true);

    for (unsigned k = 0; k < MAX_OPS && fz_more(&in) && model_has_room(); k++)
        run_op(&in);

    verify(true);
    while (K.nlive != 0)
        free_live(K.nlive - 1);
    verify(true);
    /* What this CPU's front holds goes back; the front itself stays. */
    kheap_drain(&K.h);
    verify(true);
    kheap_stats_t s;
    FZ_CHECK(kheap_get_stats(&K.h, &s) == MM_OK, "stats");
    walk_sum_t w = walk(0, 0);
    FZ_CHECK(s.free_blocks <= s.regions + w.front_blocks && s.class_slabs == 0 &&
                 s.class_objects == 0 &&
                 s.free_bytes + w.front_bytes == s.total_bytes - s.regions * KHEAP_REGION_OVERHEAD,
             "everything freed: %zu free blocks (%zu bytes) in %zu regions (%zu bytes), %zu slabs, "
             "%zu fronts",
             s.free_blocks, s.free_bytes, s.regions, s.total_bytes, s.class_slabs, w.front_blocks);
    return 0;
}
