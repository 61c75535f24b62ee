/*
 * kheap-bench: the kernel heap against glibc malloc, mimalloc (when
 * installed), a re-implementation of the reference list allocator and TLSF,
 * in one process, on one deterministic trace; jemalloc and tcmalloc (when
 * installed), which replace malloc wherever they are loaded, in processes
 * of their own.
 *
 * Trace: N live objects (N = 1,000 / 10,000 / 100,000). Each step frees a
 * random live object and allocates a new one in its slot. Sizes: 70% 16-256
 * bytes, 25% 257-4096, 5% 4-64 KiB; 1% of requests aligned to 64 or 4096.
 * Every new object gets its first word written, as a caller would.
 *
 * Time: ns per free+allocate pair, median over several batches after a
 * warm-up of N steps (fill and warm-up untimed). kheap, glibc and
 * tlsf-locked, the rows of the ratio lines, run side by side in alternating
 * batches over the same steps, so load on a shared machine falls on each
 * alike; the other rows run one after another.
 * Fragmentation: peak footprint / peak live (requested) bytes over the fill
 * and 50,000 steps at N = 10,000, each allocator in a fresh child process.
 * Footprint: kheap, the bytes its growth callback handed out; glibc,
 * mallinfo2 arena + mmapped bytes; mimalloc, committed bytes; jemalloc,
 * stats.active; tcmalloc, heap size less unmapped bytes; the reference,
 * its high-water mark; TLSF, the offset from its pool's start (control
 * structure included) of the end of the highest block it ever handed out,
 * plus the end sentinel: the part of its pool it has touched, which it never
 * gives back. The figure is chaotic in the trace (any change of placement
 * moves it by +-0.01), so it is also given as mean, min and max over 8
 * further traces of the same distribution (`frag-variants` lines);
 * kheap's arena is 1 GiB-aligned so the address-space layout cannot move it.
 *
 * The reference ("seed") allocator is the seed's kernel heap as DESIGN.md
 * describes it: one singly linked list of holes sorted by address, first
 * fit, sizes not rounded, front padding and tails too small for a hole
 * dropped (leaked), sized free inserting and merging by walking the list.
 * It is slow, so it runs fewer steps, at N = 1,000 and 10,000 only.
 *
 * The TLSF baseline ("tlsf", tlsf_ref.c) is Matthew Conte's tlsf.c: 32
 * second-level lists per power of two (blocks under 512 bytes in 32 exact
 * 16-byte classes), bitmaps searched with ctz/clz, good fit (requests
 * rounded up to the next list, head of the first non-empty list taken),
 * boundary tags, merging on free, 8 bytes per block; 16-byte alignment as
 * kheap and glibc give (tlsf.c uses 8 on 64-bit); one pool of 16 GiB
 * reserved with MAP_NORESERVE, page-aligned, so aligned placement does not
 * depend on the address-space layout. Before timing, the bench runs it on a
 * small trace and exits non-zero unless every block was aligned as asked,
 * no live blocks overlapped or were written by the allocator, its lists and
 * boundary tags stayed consistent and freeing everything left one free
 * block: its figures are those of a correct allocator.
 * "tlsf-locked" is the same TLSF behind the lock every kheap call takes
 * (interrupts off through the hooks, then the core ticket lock), timed
 * only: kheap must have that lock and TLSF has none, so the row tells
 * what the lock costs from what the allocators do.
 *
 * Memory: kheap and TLSF run on memory that is mapped when they get it, as
 * a kernel heap's is (vmm_heap_grow_callback maps every page of a growth
 * before returning it): kheap's growth callback and TLSF's pool, 64 KiB at
 * a time ahead of its high-water mark, populate their pages at once, and
 * that cost counts wherever it falls. On demand-paged memory instead, a
 * header or footer landing in the never-touched middle of an old large
 * block costs a page fault (about 0.02 per pair at N = 100k for kheap),
 * which no kernel heap pays. glibc and mimalloc are user-space allocators
 * and run on demand-paged memory as they always do. The rows "kheap-lazy"
 * and "tlsf-lazy" run kheap and TLSF on demand-paged memory too, with
 * their own ratio lines, so both views are printed.
 *
 * mimalloc is opened with dlopen(RTLD_LOCAL) and called through mi_*: linked
 * normally, its exported malloc would replace glibc's for the whole process.
 *
 * kheap runs three times: as configured by default (requests up to 4 KiB in
 * runs), as "kheap-exact" (runs off: address-ordered first fit for every
 * request) and as "kheap-cached" (default plus per-CPU caches; the bench is
 * one thread, so one cache).
 *
 * Output: a table, then `ratio <case> <ours> <baseline> <baseline/ours>` and
 * `frag <allocator> <ratio>` lines. Meant for a build without heap_redzones
 * (which fills every block) and without alloc_tracking.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hadron/mm/kheap.h>
#include <hadron/mm/spinlock.h>

#include "kmem-cache-pairs.h"
#include "threads-pairs.h"
#include "host_hooks.h" /* the kernel's hooks, as for the other benches */
#include "tlsf_ref.h"

/* ---- the trace ---------------------------------------------------------- */

typedef struct step {
    uint32_t victim;
    uint32_t size;
    uint32_t align;
} step_t;

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static step_t gen_step(uint32_t n)
{
    step_t s;
    uint64_t r = rnd();
    unsigned c = (unsigned)(r % 100);
    uint64_t u = r >> 32;
    if (c < 70)
        s.size = 16 + (uint32_t)(u % 241);
    else if (c < 95)
        s.size = 257 + (uint32_t)(u % 3840);
    else
        s.size = 4096 + (uint32_t)(u % (65536 - 4096 + 1));
    r = rnd();
    s.victim = (uint32_t)(r % n);
    unsigned a = (unsigned)((r >> 32) % 200);
    s.align = a == 0 ? 64 : a == 1 ? 4096 : 0;
    return s;
}

/* Fill (N entries, victim unused) followed by the steps. Variant 0 is the
 * trace every figure is measured on; the others only show how much the
 * fragmentation figure owes to that one trace. */
static step_t *make_trace_variant(uint32_t n, size_t steps, uint64_t variant)
{
    step_t *t = malloc((n + steps) * sizeof(step_t));
    rng_state = 0x6b68656170ull ^ n ^ (variant * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < n + steps; i++)
        t[i] = gen_step(n);
    return t;
}

static step_t *make_trace(uint32_t n, size_t steps)
{
    return make_trace_variant(n, steps, 0);
}

/* ---- allocators under test ---------------------------------------------- */

typedef struct allocator {
    const char *name;
    void (*setup)(void);
    void *(*alloc)(size_t size, size_t align);
    void (*free)(void *p, size_t size);
    size_t (*footprint)(void);
    void (*teardown)(void);
} allocator_t;

/* kheap: an empty heap that grows from one big reserved range, so growth is
 * adjacent and merges, as a kernel heap growing through its VMM. */
static kheap_t kh;
static uint8_t *kh_arena;
static size_t kh_arena_size = (size_t)16 << 30, kh_used;

/* Address space for an allocator's arena, reserved without memory behind
 * it (pages come on first touch or from populate()); exits on failure. */
static uint8_t *reserve(size_t size)
{
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return m;
}

/* Whether kheap's and TLSF's memory is mapped when they get it, as a
 * kernel's is (the "-lazy" rows turn it off for that run). */
static bool mapped_memory = true;

/* Map [p, p + len) now, as vmm_heap_grow_callback maps every page of a
 * growth before handing it out. Without it each first touch of a page
 * inside memory the allocator already holds (a header landing in the
 * untouched middle of an old large block) would cost a page fault that a
 * kernel heap never takes. */
static void populate(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
        return;
#endif
    for (size_t off = 0; off < len; off += 4096)
        ((volatile uint8_t *)p)[off] = 0;
}

static mm_status_t kh_grow(void *ctx, size_t min, void **base, size_t *size)
{
    (void)ctx;
    if (kh_used + min > kh_arena_size)
        return MM_ERR_NOMEM;
    *base = kh_arena + kh_used;
    *size = min;
    kh_used += min;
    if (mapped_memory)
        populate(*base, min);
    return MM_OK;
}

static void kh_setup(void)
{
    if (kh_arena == NULL) {
        /* Aligned to 1 GiB, so where the heap's 8 MiB map spans fall (and
         * with them where its map leaves go) is the same in every run:
         * otherwise the figures move with the address-space layout. */
        const size_t gib = (size_t)1 << 30;
        uint8_t *m = reserve(kh_arena_size + gib);
        kh_arena = (uint8_t *)(((uintptr_t)m + gib - 1) & ~(uintptr_t)(gib - 1));
    }
    kh_used = 0;
    kheap_init(&kh, NULL, 0);
    kheap_set_grow(&kh, kh_grow, NULL, NULL);
}

static void *kh_alloc(size_t size, size_t align)
{
    return kheap_alloc(&kh, size, align);
}

static void kh_free(void *p, size_t size)
{
    (void)size;
    kheap_free(&kh, p);
}

static size_t kh_footprint(void)
{
    return kh_used;
}

static void kh_teardown(void)
{
    madvise(kh_arena, kh_used, MADV_DONTNEED);
}

/* glibc */
static size_t glibc_base;

static size_t glibc_raw(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.arena + mi.hblkhd;
}

static void glibc_setup(void)
{
    glibc_base = glibc_raw();
}

static void *glibc_alloc(size_t size, size_t align)
{
    if (align == 0)
        return malloc(size);
    void *p = NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

static void glibc_free(void *p, size_t size)
{
    (void)size;
    free(p);
}

static size_t glibc_footprint(void)
{
    size_t raw = glibc_raw();
    return raw > glibc_base ? raw - glibc_base : 0;
}

static void glibc_teardown(void)
{
    malloc_trim(0);
}

/* mimalloc, through dlopen */
static void *(*mi_malloc_p)(size_t);
static void *(*mi_malloc_aligned_p)(size_t, size_t);
static void (*mi_free_p)(void *);
static void (*mi_collect_p)(bool);
static void (*mi_process_info_p)(size_t *, size_t *, size_t *, size_t *, size_t *, size_t *,
                                 size_t *, size_t *);
static size_t mi_base;

static bool mi_load(void)
{
#ifndef KHEAP_BENCH_MIMALLOC
    return false;
#endif
    void *h = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        h = dlopen("libmimalloc.so", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return false;
    mi_malloc_p = (void *(*)(size_t))dlsym(h, "mi_malloc");
    mi_malloc_aligned_p = (void *(*)(size_t, size_t))dlsym(h, "mi_malloc_aligned");
    mi_free_p = (void (*)(void *))dlsym(h, "mi_free");
    mi_collect_p = (void (*)(bool))dlsym(h, "mi_collect");
    mi_process_info_p = (void (*)(size_t *, size_t *, size_t *, size_t *, size_t *, size_t *,
                                  size_t *, size_t *))dlsym(h, "mi_process_info");
    return mi_malloc_p && mi_malloc_aligned_p && mi_free_p && mi_collect_p && mi_process_info_p;
}

static size_t mi_raw(void)
{
    size_t elapsed, user, sys, rss, peak_rss, commit = 0, peak_commit, faults;
    mi_process_info_p(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
    return commit;
}

static void mi_setup(void)
{
    mi_base = mi_raw();
}

static void *mi_alloc(size_t size, size_t align)
{
    return align ? mi_malloc_aligned_p(size, align) : mi_malloc_p(size);
}

static void mi_free_(void *p, size_t size)
{
    (void)size;
    mi_free_p(p);
}

static size_t mi_footprint(void)
{
    size_t raw = mi_raw();
    return raw > mi_base ? raw - mi_base : 0;
}

static void mi_teardown(void)
{
    mi_collect_p(true);
}

/* jemalloc and tcmalloc: reference points beside mimalloc. Each replaces
 * malloc for the whole process it is loaded into, so each runs in a process
 * of its own started with LD_PRELOAD (`kheap-bench jemalloc ...` starts
 * itself again that way); there the row calls malloc and free as the glibc
 * row does, and reads the footprint from the allocator's own statistics:
 * jemalloc's stats.active (pages holding allocations: its most favourable
 * figure; stats.mapped also counts dirty pages kept for reuse), tcmalloc's
 * heap size less the bytes it has unmapped. */
typedef struct {
    const char *name;   /* the row */
    const char *lib;    /* for LD_PRELOAD (found on the library path) */
    const char *stats;  /* a symbol only this allocator defines */
    const char *package;
} preload_t;

static const preload_t PRELOADS[] = {
    {"jemalloc", "libjemalloc.so.2", "mallctl", "libjemalloc2"},
    {"tcmalloc", "libtcmalloc_minimal.so.4", "MallocExtension_GetNumericProperty",
     "libtcmalloc-minimal4"},
};
enum { NPRELOADS = sizeof(PRELOADS) / sizeof(PRELOADS[0]) };

static int (*je_mallctl_p)(const char *, void *, size_t *, void *, size_t);
static int (*tc_property_p)(const char *, size_t *);
static size_t pre_base;

/* Whether this process's malloc is the one `lib` defines. */
static bool malloc_comes_from(const char *lib)
{
    Dl_info di;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    return m != NULL && dladdr(m, &di) != 0 && di.dli_fname != NULL &&
           strstr(di.dli_fname, lib) != NULL;
}

static size_t pre_raw(void)
{
    if (je_mallctl_p != NULL) {
        uint64_t epoch = 1; /* refreshes the statistics */
        size_t len = sizeof epoch, active = 0;
        je_mallctl_p("epoch", &epoch, &len, &epoch, len);
        len = sizeof active;
        return je_mallctl_p("stats.active", &active, &len, NULL, 0) == 0 ? active : 0;
    }
    size_t heap = 0, unmapped = 0;
    tc_property_p("generic.heap_size", &heap);
    tc_property_p("tcmalloc.pageheap_unmapped_bytes", &unmapped);
    return heap > unmapped ? heap - unmapped : 0;
}

static void pre_setup(void)
{
    pre_base = pre_raw();
}

static size_t pre_footprint(void)
{
    size_t raw = pre_raw();
    return raw > pre_base ? raw - pre_base : 0;
}

static void pre_teardown(void)
{
}

/* The reference list allocator. */
typedef struct hole {
    size_t size;
    struct hole *next;
} hole_t;

#define SEED_MIN sizeof(hole_t)
static hole_t seed_head;
static uint8_t *seed_arena;
static size_t seed_arena_size = (size_t)4 << 30;
static uintptr_t seed_high;

static void seed_setup(void)
{
    if (seed_arena == NULL)
        seed_arena = reserve(seed_arena_size);
    hole_t *h = (hole_t *)seed_arena;
    h->size = seed_arena_size;
    h->next = NULL;
    seed_head.next = h;
    seed_high = (uintptr_t)seed_arena;
}

static void *seed_alloc(size_t size, size_t align)
{
    if (size < SEED_MIN)
        size = SEED_MIN;
    if (align < 8)
        align = 8;
    for (hole_t *prev = &seed_head, *h = prev->next; h != NULL; prev = h, h = h->next) {
        uintptr_t start = (uintptr_t)h, end = start + h->size;
        uintptr_t a = (start + align - 1) & ~(uintptr_t)(align - 1);
        if (a + size > end)
            continue;
        hole_t *next = h->next;
        /* The tail becomes a hole at the next word boundary, or is dropped. */
        uintptr_t tail = (a + size + 7) & ~(uintptr_t)7;
        if (tail + SEED_MIN <= end) {
            hole_t *t = (hole_t *)tail;
            t->size = end - tail;
            t->next = next;
            next = t;
        }
        /* Front padding stays a hole if it can hold one, else it is dropped. */
        if (a - start >= SEED_MIN) {
            h->size = a - start;
            h->next = next;
        } else {
            prev->next = next;
        }
        if (a + size > seed_high)
            seed_high = a + size;
        return (void *)a;
    }
    return NULL;
}

static void seed_free(void *p, size_t size)
{
    if (size < SEED_MIN)
        size = SEED_MIN;
    uintptr_t s = (uintptr_t)p, e = s + size;
    hole_t *prev = &seed_head;
    while (prev->next != NULL && (uintptr_t)prev->next < s)
        prev = prev->next;
    hole_t *next = prev->next;
    if (prev != &seed_head && (uintptr_t)prev + prev->size == s) {
        prev->size += size;
        if (next != NULL && (uintptr_t)next == e) {
            prev->size += next->size;
            prev->next = next->next;
        }
        return;
    }
    hole_t *h = (hole_t *)p;
    h->size = size;
    h->next = next;
    if (next != NULL && (uintptr_t)next == e) {
        h->size += next->size;
        h->next = next->next;
    }
    prev->next = h;
}

static size_t seed_footprint(void)
{
    return seed_high - (uintptr_t)seed_arena;
}

static void seed_teardown(void)
{
    madvise(seed_arena, seed_arena_size, MADV_DONTNEED);
}

/* TLSF: one fixed pool, as a kernel hands TLSF a region; large enough that
 * it never runs out, so no pool is ever added. */
static tlsf_ref_t *tl;
static uint8_t *tl_arena;
static const size_t tl_arena_size = (size_t)16 << 30;
/* Bytes of the pool mapped so far: as with kheap, memory a kernel gives
 * TLSF is mapped; here it is mapped in 64 KiB steps (kheap's smallest
 * growth) ahead of the highest byte TLSF has touched. */
static size_t tl_mapped;

static void tl_setup(void)
{
    if (tl_arena == NULL)
        tl_arena = reserve(tl_arena_size);
    tl = tlsf_ref_create(tl_arena, tl_arena_size);
    tl_mapped = 0;
    if (tl == NULL) {
        fprintf(stderr, "tlsf: cannot create the pool\n");
        exit(1);
    }
}

static void *tl_alloc(size_t size, size_t align)
{
    void *p = align != 0 ? tlsf_ref_memalign(tl, align, size) : tlsf_ref_malloc(tl, size);
    /* An inline bound first, so the baseline's timed path gains no call:
     * the high-water mark lies less than 4 KiB past the request's end
     * (remainder kept with the block, rounding, the next block's header). */
    if (mapped_memory && p != NULL &&
        (uintptr_t)p + size + 4096 > (uintptr_t)tl_arena + tl_mapped &&
        tlsf_ref_high_water(tl) > tl_mapped) {
        size_t hw = tlsf_ref_high_water(tl);
        size_t to = (hw + ((size_t)64 << 10) - 1) & ~(((size_t)64 << 10) - 1);
        populate(tl_arena + tl_mapped, to - tl_mapped);
        tl_mapped = to;
    }
    return p;
}

static void tl_free(void *p, size_t size)
{
    (void)size;
    tlsf_ref_free(tl, p);
}

static size_t tl_footprint(void)
{
    return tlsf_ref_high_water(tl);
}

static void tl_teardown(void)
{
    madvise(tl_arena, tl_arena_size, MADV_DONTNEED);
}

/* TLSF behind the lock a kheap instance takes (interrupts off through the
 * hooks, then the core ticket lock) around each call: the issue requires
 * that lock of kheap, and TLSF has none, so this row tells the placement
 * and bookkeeping apart from the lock. Timing only: its placement is
 * TLSF's. */
static mm_spinlock_t tlk_lock = MM_SPINLOCK_INIT;

static void *tlk_alloc(size_t size, size_t align)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&tlk_lock);
    void *p = tl_alloc(size, align);
    mm_spin_unlock_irqrestore(&tlk_lock, f);
    return p;
}

static void tlk_free(void *p, size_t size)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&tlk_lock);
    tl_free(p, size);
    mm_spin_unlock_irqrestore(&tlk_lock, f);
}

static const allocator_t A_KHEAP = {"kheap", kh_setup, kh_alloc, kh_free, kh_footprint, kh_teardown};
static const allocator_t A_GLIBC = {"glibc", glibc_setup, glibc_alloc, glibc_free, glibc_footprint,
                                    glibc_teardown};
static const allocator_t A_JE = {"jemalloc", pre_setup, glibc_alloc, glibc_free, pre_footprint,
                                 pre_teardown};
static const allocator_t A_TC = {"tcmalloc", pre_setup, glibc_alloc, glibc_free, pre_footprint,
                                 pre_teardown};
static const allocator_t A_MI = {"mimalloc", mi_setup, mi_alloc, mi_free_, mi_footprint,
                                 mi_teardown};
static const allocator_t A_SEED = {"reference", seed_setup, seed_alloc, seed_free, seed_footprint,
                                   seed_teardown};
static const allocator_t A_TLSF = {"tlsf", tl_setup, tl_alloc, tl_free, tl_footprint, tl_teardown};
static const allocator_t A_TLSFK = {"tlsf-locked", tl_setup, tlk_alloc, tlk_free, tl_footprint,
                                    tl_teardown};

/* ---- running ------------------------------------------------------------ */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One slot array per row timed in alternation (alternate_pairs); the
 * others use the first. */
enum { ALT_ROWS = 3 };
static void *slot_store[ALT_ROWS][100000];
static void **slot_ptr = slot_store[0];
static uint32_t slot_size[100000];

static void fill(const allocator_t *a, const step_t *t, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        void *p = a->alloc(t[i].size, t[i].align);
        if (p == NULL) {
            fprintf(stderr, "%s: out of memory in fill\n", a->name);
            exit(1);
        }
        *(volatile uint64_t *)p = i;
        slot_ptr[i] = p;
        slot_size[i] = t[i].size;
    }
}

static inline void one_step(const allocator_t *a, const step_t *s)
{
    uint32_t v = s->victim;
    a->free(slot_ptr[v], slot_size[v]);
    void *p = a->alloc(s->size, s->align);
    if (__builtin_expect(p == NULL, 0)) {
        fprintf(stderr, "%s: out of memory\n", a->name);
        exit(1);
    }
    *(volatile uint64_t *)p = v;
    slot_ptr[v] = p;
    slot_size[v] = s->size;
}

static void drain(const allocator_t *a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        a->free(slot_ptr[i], slot_size[i]);
    a->teardown();
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median ns per pair over `runs` batches of `batch` steps after `warm`. */
static double time_pairs(const allocator_t *a, const step_t *t, uint32_t n, size_t warm,
                         size_t batch, int runs)
{
    double ns[16];
    a->setup();
    fill(a, t, n);
    const step_t *s = t + n;
    for (size_t i = 0; i < warm; i++)
        one_step(a, s++);
    for (int r = 0; r < runs; r++) {
        double t0 = now_ns();
        for (size_t i = 0; i < batch; i++)
            one_step(a, &s[i]);
        ns[r] = (now_ns() - t0) / (double)batch;
        s += batch;
    }
    drain(a, n);
    qsort(ns, (size_t)runs, sizeof(double), cmp_double);
    return ns[runs / 2];
}

/* Rows timed in alternating batches over the same steps, each row with its
 * own live set: a burst of load on this shared machine then falls on every
 * row alike instead of on whichever row was running. Medians per row in
 * out[]. The rows must be able to live side by side (not TLSF with
 * TLSF-locked: they share one pool). */
static void alternate_pairs(const allocator_t *const *rows, int nrows, const step_t *t, uint32_t n,
                            size_t warm, size_t batch, int runs, double *out)
{
    double ns[ALT_ROWS][16];
    for (int r = 0; r < nrows; r++) {
        slot_ptr = slot_store[r];
        rows[r]->setup();
        fill(rows[r], t, n);
        const step_t *s = t + n;
        for (size_t i = 0; i < warm; i++)
            one_step(rows[r], s++);
    }
    const step_t *s = t + n + warm;
    for (int b = 0; b < runs; b++, s += batch) {
        for (int r = 0; r < nrows; r++) {
            slot_ptr = slot_store[r];
            double t0 = now_ns();
            for (size_t i = 0; i < batch; i++)
                one_step(rows[r], &s[i]);
            ns[r][b] = (now_ns() - t0) / (double)batch;
        }
    }
    for (int r = 0; r < nrows; r++) {
        slot_ptr = slot_store[r];
        drain(rows[r], n);
        qsort(ns[r], (size_t)runs, sizeof(double), cmp_double);
        out[r] = ns[r][runs / 2];
    }
    slot_ptr = slot_store[0];
}

/* Peak footprint / peak live bytes, in a child so every allocator starts
 * from a fresh process. Returns -1 on failure. */
static double frag(const allocator_t *a, const step_t *t, uint32_t n, size_t steps)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        a->setup();
        size_t live = 0, peak_live = 0, peak_fp = 0;
        for (uint32_t i = 0; i < n; i++) {
            void *p = a->alloc(t[i].size, t[i].align);
            if (p == NULL)
                _exit(1);
            *(volatile uint64_t *)p = i;
            slot_ptr[i] = p;
            slot_size[i] = t[i].size;
            live += t[i].size;
            if (live > peak_live)
                peak_live = live;
            if ((i & 7) == 0 && a->footprint() > peak_fp)
                peak_fp = a->footprint();
        }
        for (size_t i = 0; i < steps; i++) {
            const step_t *s = &t[n + i];
            live -= slot_size[s->victim];
            one_step(a, s);
            live += s->size;
            if (live > peak_live)
                peak_live = live;
            if ((i & 7) == 0 && a->footprint() > peak_fp)
                peak_fp = a->footprint();
        }
        if (a->footprint() > peak_fp)
            peak_fp = a->footprint();
        double r = (double)peak_fp / (double)peak_live;
        if (write(fd[1], &r, sizeof(r)) != sizeof(r))
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    double r = -1;
    if (read(fd[0], &r, sizeof(r)) != sizeof(r))
        r = -1;
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    return r;
}

/* ---- TLSF self-check ---------------------------------------------------- */

/* TLSF is re-implemented here, so before its figures are shown the bench
 * checks that it is a correct allocator. On a small trace (fill + 20,000
 * steps at N = 1,000, then a sweep of alignments) every block must be
 * 16-byte aligned and aligned as asked, no two live blocks may overlap, no
 * byte a caller may use may change while the block is live (the allocator
 * must not write there), the lists and boundary tags must stay consistent,
 * and freeing everything must leave the pool one free block. Small because
 * the overlap check keeps the live blocks in a sorted array. */
enum { CHECK_N = 1000, CHECK_STEPS = 20000, CHECK_EVERY = 500 };

/* Around the minimum block, the 512-byte class boundary and past the
 * trace's largest request. */
static const size_t check_sizes[] = {1, 16, 24, 500, 4000, 70000};
#define CHECK_SIZES (sizeof(check_sizes) / sizeof(check_sizes[0]))
/* Alignments 8 B .. 1 MiB: 2^3 .. 2^20. */
#define CHECK_ALIGNS 18
#define CHECK_SWEEP (CHECK_ALIGNS * CHECK_SIZES)

typedef struct check_block {
    uint8_t *p;
    size_t usable;
    uint8_t fill;
} check_block_t;

typedef struct live_range {
    uintptr_t start, end;
} live_range_t;

static live_range_t check_live[CHECK_N + CHECK_SWEEP];
static size_t check_live_count;
static uint8_t check_next_fill;

/* Which allocator the self-check is looking at. */
static const char *check_who = "tlsf";

static _Noreturn void check_fail(const char *why)
{
    fprintf(stderr, "kheap-bench: %s self-check failed: %s\n", check_who, why);
    exit(1);
}

/* Index of the first live range starting at or after `start`. */
static size_t live_lower_bound(uintptr_t start)
{
    size_t lo = 0, hi = check_live_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (check_live[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void live_add(uintptr_t start, uintptr_t end)
{
    size_t i = live_lower_bound(start);
    if ((i > 0 && check_live[i - 1].end > start) ||
        (i < check_live_count && check_live[i].start < end))
        check_fail("two live blocks overlap");
    memmove(&check_live[i + 1], &check_live[i], (check_live_count - i) * sizeof(check_live[0]));
    check_live[i] = (live_range_t){start, end};
    check_live_count++;
}

static void live_remove(uintptr_t start)
{
    size_t i = live_lower_bound(start);
    if (i == check_live_count || check_live[i].start != start)
        check_fail("a block freed was not live");
    check_live_count--;
    memmove(&check_live[i], &check_live[i + 1], (check_live_count - i) * sizeof(check_live[0]));
}

static void check_structure(void)
{
    tlsf_ref_stats_t st;
    const char *why = tlsf_ref_check(tl, &st);
    if (why != NULL)
        check_fail(why);
}

/* The whole usable size is claimed and filled, not just the request: TLSF
 * lends the block's last 8 bytes from the next header (its prev_phys), and
 * that word must stay the caller's while the block is live. */
static check_block_t check_alloc(const allocator_t *a, size_t size, size_t align)
{
    uint8_t *p = a->alloc(size, align);
    if (p == NULL)
        check_fail("out of memory");
    const uintptr_t at = (uintptr_t)p;
    if (at % 16 != 0)
        check_fail("block not 16-byte aligned");
    if (align != 0 && at % align != 0)
        check_fail("block not aligned as asked");
    check_block_t b = {p, tlsf_ref_usable_size(p), check_next_fill++};
    if (b.usable < size)
        check_fail("block smaller than asked");
    if (at < (uintptr_t)tl_arena || at + b.usable > (uintptr_t)tl_arena + tl_footprint())
        check_fail("block outside the footprint");
    live_add(at, at + b.usable);
    memset(p, b.fill, b.usable);
    return b;
}

static void check_release(const allocator_t *a, const check_block_t *b)
{
    for (size_t i = 0; i < b->usable; i++)
        if (b->p[i] != b->fill)
            check_fail("a live block changed under its owner");
    live_remove((uintptr_t)b->p);
    a->free(b->p, b->usable);
}

/* Alignments the trace never asks for, with the trace's blocks live; every
 * other one freed first, so the rest merge on both sides. */
static size_t check_alignment_sweep(const allocator_t *a)
{
    static check_block_t sweep[CHECK_SWEEP];
    size_t n = 0;
    for (size_t align = 8; align <= (size_t)1 << 20; align <<= 1)
        for (size_t k = 0; k < CHECK_SIZES; k++)
            sweep[n++] = check_alloc(a, check_sizes[k], align);
    check_structure();
    for (size_t i = 1; i < n; i += 2)
        check_release(a, &sweep[i]);
    check_structure();
    for (size_t i = 0; i < n; i += 2)
        check_release(a, &sweep[i]);
    return n;
}

/* With nothing live, the walk must find a single free block from the pool
 * start to the end sentinel, which covers every byte ever touched. */
static void check_pool_whole(void)
{
    tlsf_ref_stats_t st;
    const char *why = tlsf_ref_check(tl, &st);
    if (why != NULL)
        check_fail(why);
    if (st.blocks != 1 || st.free_blocks != 1 || st.largest_free != st.pool_bytes)
        check_fail("freeing everything did not leave one free block");
    if (tl_footprint() > st.end_offset)
        check_fail("footprint past the end of the pool");
}

static void tlsf_self_check(void)
{
    const allocator_t *a = &A_TLSF;
    static check_block_t slot[CHECK_N];
    step_t *t = make_trace(CHECK_N, CHECK_STEPS);
    size_t aligned = 0;
    a->setup();
    check_live_count = 0;
    for (uint32_t i = 0; i < CHECK_N; i++) {
        slot[i] = check_alloc(a, t[i].size, t[i].align);
        aligned += t[i].align != 0;
    }
    for (size_t i = 0; i < CHECK_STEPS; i++) {
        const step_t *s = &t[CHECK_N + i];
        check_release(a, &slot[s->victim]);
        slot[s->victim] = check_alloc(a, s->size, s->align);
        aligned += s->align != 0;
        if (i % CHECK_EVERY == 0)
            check_structure();
    }
    const size_t swept = check_alignment_sweep(a);
    for (uint32_t i = 0; i < CHECK_N; i++)
        check_release(a, &slot[i]);
    check_pool_whole();
    const size_t touched = a->footprint();
    a->teardown();
    free(t);
    printf("tlsf self-check: ok (N=%d + %d steps with %zu aligned requests, then %zu at 8 B..1 MiB "
           "alignment; all freed: one free block; %zu KiB touched)\n",
           CHECK_N, CHECK_STEPS, aligned, swept, touched >> 10);
}

/* The fragmentation trace: fill N = 10k, then these steps; and how many
 * other traces of the same distribution show the spread. */
enum { FRAG_STEPS = 50000, FRAG_VARIANTS = 8 };


static char **bench_argv;

/* Whether preload row pl can run in this process. When this process's
 * malloc is not that allocator's, starts this program again with it
 * preloaded (once: if the new process still lacks it, the library is not
 * installed). */
static bool preload_ready(const preload_t *pl)
{
    if (malloc_comes_from(pl->lib)) {
        void *sym = dlsym(RTLD_DEFAULT, pl->stats);
        if (strcmp(pl->name, "jemalloc") == 0)
            je_mallctl_p = (int (*)(const char *, void *, size_t *, void *, size_t))sym;
        else
            tc_property_p = (int (*)(const char *, size_t *))sym;
        return sym != NULL;
    }
    if (getenv("KHEAP_BENCH_PRELOAD") == NULL) {
        setenv("KHEAP_BENCH_PRELOAD", pl->lib, 1);
        setenv("LD_PRELOAD", pl->lib, 1);
        execv("/proc/self/exe", bench_argv);
        perror("kheap-bench: execv /proc/self/exe");
    }
    fprintf(stderr, "kheap-bench: %s not available (Debian package %s)\n", pl->name, pl->package);
    return false;
}

/* The allocator called `name`, ready to measure (the ones re-implemented
 * here self-checked first, which exits if one is wrong); NULL, said on
 * stderr, when there is none or it is not available. */
static const allocator_t *pick(const allocator_t *const *all, int na, const char *name)
{
    for (int k = 0; k < NPRELOADS; k++)
        if (strcmp(PRELOADS[k].name, name) == 0)
            return !preload_ready(&PRELOADS[k]) ? NULL
                   : strcmp(name, "jemalloc") == 0 ? &A_JE
                                                   : &A_TC;
    for (int i = 0; i < na; i++) {
        if (strcmp(all[i]->name, name) != 0)
            continue;
        if (all[i] == &A_MI && !mi_load()) {
            fprintf(stderr, "kheap-bench: mimalloc not available\n");
            return NULL;
        }
        if (all[i] == &A_GLIBC && !malloc_comes_from("libc.so")) {
            fprintf(stderr, "kheap-bench: malloc here is not glibc's (LD_PRELOAD?)\n");
            return NULL;
        }
        if (all[i]->setup == tl_setup)
            tlsf_self_check();
        return all[i];
    }
    fprintf(stderr, "kheap-bench: unknown allocator %s\n", name);
    return NULL;
}

/* `kheap-bench <allocator> <N> [batches]`: time that one case only, for a
 * profiler (perf record -- kheap-bench kheap 100000 40). */
static int profile_one(const allocator_t *const *all, int na, const char *name, const char *nstr,
                       const char *rstr)
{
    long n = strtol(nstr, NULL, 10), runs = rstr != NULL ? strtol(rstr, NULL, 10) : 7;
    if (n < 1 || n > 100000 || runs < 1 || runs > 15) {
        fprintf(stderr, "kheap-bench: N must be 1..100000, batches 1..15\n");
        return 2;
    }
    const allocator_t *a = pick(all, na, name);
    if (a == NULL)
        return 2;
    const size_t batch = 50000, warm = n < 20000 ? 20000 : (size_t)n;
    step_t *t = make_trace((uint32_t)n, warm + (size_t)runs * batch);
    double ns = time_pairs(a, t, (uint32_t)n, warm, batch, (int)runs);
    printf("%s N=%ld: %.1f ns per pair\n", name, n, ns);
    free(t);
    return 0;
}

/* `kheap-bench frag <allocator> [steps]`: its fragmentation on the bench
 * trace and on the other variants only, for trying a placement change
 * quickly; `steps` (default FRAG_STEPS) lengthens the traces, since the
 * figure depends on how long a trace runs. */
static int frag_one(const allocator_t *const *all, int na, const char *name, const char *sstr)
{
    long steps = sstr != NULL ? strtol(sstr, NULL, 10) : FRAG_STEPS;
    if (steps < 1 || steps > 10000000) {
        fprintf(stderr, "kheap-bench: frag steps must be 1..10000000\n");
        return 2;
    }
    const allocator_t *a = pick(all, na, name);
    if (a == NULL)
        return 2;
    double sum = 0, lo = 1e9, hi = 0;
    for (uint64_t v = 0; v <= FRAG_VARIANTS; v++) {
        step_t *t = make_trace_variant(10000, (size_t)steps, v);
        double f = frag(a, t, 10000, (size_t)steps);
        free(t);
        if (v == 0) {
            printf("frag %s %.3f (fill + %ld steps)\n", name, f, steps);
            continue;
        }
        sum += f;
        lo = f < lo ? f : lo;
        hi = f > hi ? f : hi;
    }
    printf("frag-variants %s mean %.3f min %.3f max %.3f over %d other traces\n", name,
           sum / FRAG_VARIANTS, lo, hi, FRAG_VARIANTS);
    return 0;
}

/* Runs `cmd` and reads numbers out of the first line of its output that
 * starts with `prefix`, by `fmt` (applied to the whole line, `want`
 * numbers into out[]); false when the command fails or prints no such
 * line. */
static bool read_figures(const char *cmd, const char *prefix, const char *fmt, int want,
                         double *out)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return false;
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f) != NULL)
        if (!found && strncmp(line, prefix, strlen(prefix)) == 0)
            found = sscanf(line, fmt, &out[0], &out[1], &out[2]) == want;
    return pclose(f) == 0 && found;
}

/* A preload row's figures, each from a process of its own (see
 * PRELOADS): ns per pair at each N (median of `runs` batches, as for the
 * other rows), fragmentation on the bench trace and mean, min and max over
 * the other traces; false (figures -1) when the allocator is not
 * installed. */
static bool preload_row(const char *name, const uint32_t *ns_, size_t runs, double res[3],
                        double *fr, double variants[3])
{
    char exe[4096], cmd[4600];
    double scratch[3] = {-1, -1, -1};
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    bool ok = len > 0;
    if (ok) {
        exe[len] = '\0';
        ok = strchr(exe, '\'') == NULL;
    }
    snprintf(cmd, sizeof cmd, "'%s' frag %s 2>/dev/null", exe, name);
    ok = ok && read_figures(cmd, "frag ", "frag %*s %lf", 1, scratch);
    *fr = scratch[0];
    ok = ok && read_figures(cmd, "frag-variants ", "frag-variants %*s mean %lf min %lf max %lf", 3,
                            variants);
    for (int k = 0; k < 3 && ok; k++) {
        snprintf(cmd, sizeof cmd, "'%s' %s %u %zu 2>/dev/null", exe, name, ns_[k], runs);
        ok = read_figures(cmd, name, "%*s N=%*u: %lf", 1, &res[k]);
    }
    if (!ok)
        *fr = res[0] = res[1] = res[2] = -1;
    return ok;
}

/* `kheap-bench threads-row <allocator>`: that allocator (jemalloc,
 * tcmalloc: preloaded into this process by pick; mimalloc: its mi_
 * functions) on the threads trace, as one line `threads-row <name> <ns 1
 * thread> <ns 2 threads>`. */
static int threads_row_one(const allocator_t *const *all, int na, const char *name)
{
    const allocator_t *a = pick(all, na, name);
    if (a == NULL || (a != &A_MI && a != &A_JE && a != &A_TC))
        return 1;
    threads_row_t row = {name, {0, 0}};
    if (a == &A_MI)
        threads_pairs_row(mi_malloc_p, mi_free_p, &row);
    else
        threads_pairs_row(malloc, free, &row);
    printf("threads-row %s %.1f %.1f\n", name, row.ns[0], row.ns[1]);
    return 0;
}

/* The threads figures: jemalloc, tcmalloc and mimalloc each measured by a
 * process of its own (`threads-row`), then ours and glibc's here. */
static void threads_all(void)
{
    static const char *const others[] = {"jemalloc", "tcmalloc", "mimalloc"};
    threads_row_t rows[3];
    int n = 0;
    char exe[4096], cmd[4600];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    for (int k = 0; k < 3 && len > 0; k++) {
        exe[len] = '\0';
        snprintf(cmd, sizeof cmd, "'%s' threads-row %s 2>/dev/null", exe, others[k]);
        double ns[3] = {-1, -1, -1};
        if (read_figures(cmd, "threads-row ", "threads-row %*s %lf %lf", 2, ns))
            rows[n++] = (threads_row_t){others[k], {ns[0], ns[1]}};
        else
            printf("# threads: %s not available: skipped\n", others[k]);
    }
    threads_pairs(rows, n);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_argv = argv;
    static const uint32_t ns_[] = {1000, 10000, 100000};
    static const char *const tag[] = {"1k", "10k", "100k"};
    /* Positions in all[]: the table's rows, in this order. */
    enum { KHEAP, GLIBC, MIMALLOC, SEED, TLSF, TLSF_LOCKED, JEMALLOC, TCMALLOC, NA };
    const allocator_t *all[NA] = {&A_KHEAP, &A_GLIBC,     &A_MI, &A_SEED,
                                  &A_TLSF,  &A_TLSFK,     &A_JE, &A_TC};
    if (argc == 2 && strcmp(argv[1], "kmem_cache") == 0) {
        kmem_cache_pairs();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "threads") == 0) {
        threads_all();
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "threads-row") == 0)
        return threads_row_one(all, NA, argv[2]);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "frag") == 0)
        return frag_one(all, NA, argv[2], argc == 4 ? argv[3] : NULL);
    if (argc >= 3)
        return profile_one(all, NA, argv[1], argv[2], argc >= 4 ? argv[3] : NULL);
    const size_t batch = 50000, runs = 7, frag_steps = FRAG_STEPS;
    const size_t seed_batch[] = {2000, 300}, seed_runs = 5;
    if (!malloc_comes_from("libc.so")) {
        fprintf(stderr, "kheap-bench: malloc here is not glibc's (LD_PRELOAD?)\n");
        return 2;
    }
    bool have[NA] = {true, true, mi_load(), true, true, true, true, true};
    /* Rows whose fragmentation is another row's (same placement). */
#define FRAG_OF_ANOTHER(i) ((i) == TLSF_LOCKED)
    /* Rows measured in processes of their own (preload_row). */
#define ELSEWHERE(i) ((i) == JEMALLOC || (i) == TCMALLOC)
    const char *package[NA] = {[MIMALLOC] = "libmimalloc-dev", [JEMALLOC] = "libjemalloc2",
                               [TCMALLOC] = "libtcmalloc-minimal4"};

    printf("kheap-bench: ns per free+allocate pair, median of %zu batches of %zu steps after N "
           "warm-up steps (reference: %zu batches of %zu / %zu steps);\n"
           "fragmentation = peak footprint / peak live bytes over fill + %zu steps at N=10k.\n"
           "kheap: kheap_alloc/kheap_free (size classes on object caches up to 4 KiB, first-fit "
           "blocks above);\n"
           "tlsf: Conte's TLSF (bench/tlsf_ref.c), 32 second-level lists, 16-byte alignment, one "
           "16 GiB pool; tlsf-locked: the same behind kheap's lock (irq hooks + ticket lock), timing only;\n"
           "jemalloc / tcmalloc: reference points, each run in processes of its own under "
           "LD_PRELOAD (Debian's libjemalloc2, libtcmalloc-minimal4).\n",
           runs, batch, seed_runs, seed_batch[0], seed_batch[1], frag_steps);

    /* Fragmentation first, each in a fresh child, before this process
     * touches any allocator. */
    double fr[NA];
    step_t *t10 = make_trace(10000, frag_steps);
    for (int i = 0; i < NA; i++)
        fr[i] = have[i] && !FRAG_OF_ANOTHER(i) && !ELSEWHERE(i) ? frag(all[i], t10, 10000, frag_steps)
                                                                : -1;
    free(t10);
    /* The same on other traces of the same distribution (not the slow
     * reference): mean, min and max. */
    enum { VARIANTS = FRAG_VARIANTS };
    double fr_sum[NA] = {0}, fr_min[NA], fr_max[NA];
    for (int i = 0; i < NA; i++)
        fr_min[i] = 1e9, fr_max[i] = 0;
    for (uint64_t v = 1; v <= VARIANTS; v++) {
        step_t *tv = make_trace_variant(10000, frag_steps, v);
        for (int i = 0; i < NA; i++) {
            if (!have[i] || i == SEED || FRAG_OF_ANOTHER(i) || ELSEWHERE(i))
                continue;
            double f = frag(all[i], tv, 10000, frag_steps);
            fr_sum[i] += f;
            fr_min[i] = f < fr_min[i] ? f : fr_min[i];
            fr_max[i] = f > fr_max[i] ? f : fr_max[i];
        }
        free(tv);
    }

    /* Before any timing: the TLSF and first-fit figures below are only worth
     * printing if they are correct allocators (exits if not). */
    tlsf_self_check();

    double res[NA][3];
    for (int k = 0; k < 3; k++) {
        uint32_t n = ns_[k];
        size_t warm = n < 20000 ? 20000 : n;
        step_t *t = make_trace(n, warm + runs * batch);
        /* kheap, glibc and TLSF-locked: the ratio lines' rows, alternated. */
        const allocator_t *alt[ALT_ROWS] = {all[KHEAP], all[GLIBC], all[TLSF_LOCKED]};
        double alt_ns[ALT_ROWS];
        alternate_pairs(alt, ALT_ROWS, t, n, warm, batch, (int)runs, alt_ns);
        res[KHEAP][k] = alt_ns[0];
        res[GLIBC][k] = alt_ns[1];
        res[TLSF_LOCKED][k] = alt_ns[2];
        for (int i = 0; i < NA; i++) {
            if (i == KHEAP || i == GLIBC || i == TLSF_LOCKED)
                continue;
            if (!have[i] || ELSEWHERE(i))
                res[i][k] = -1;
            else if (i == SEED)
                res[i][k] = k < 2 ? time_pairs(all[i], t, n, n, seed_batch[k], (int)seed_runs) : -1;
            else
                res[i][k] = time_pairs(all[i], t, n, warm, batch, (int)runs);
        }
        free(t);
    }

    /* Last, so that their processes do not run beside the timing above. */
    unsetenv("KHEAP_BENCH_PRELOAD");
    for (int i = 0; i < NA; i++) {
        if (!ELSEWHERE(i))
            continue;
        double v[3] = {-1, -1, -1};
        have[i] = preload_row(all[i]->name, ns_, runs, res[i], &fr[i], v);
        fr_sum[i] = v[0] * VARIANTS, fr_min[i] = v[1], fr_max[i] = v[2];
    }

    printf("%-12s %12s %12s %12s %8s\n", "allocator", "N=1k", "N=10k", "N=100k", "frag");
    for (int i = 0; i < NA; i++) {
        printf("%-12s", all[i]->name);
        for (int k = 0; k < 3; k++) {
            if (res[i][k] < 0)
                printf(" %12s", "-");
            else
                printf(" %12.1f", res[i][k]);
        }
        if (fr[i] < 0)
            printf(" %8s\n", "-");
        else
            printf(" %8.3f\n", fr[i]);
    }
    /* Each line: ratio <row>.<case>.<N> <row's ns> <baseline's ns> <baseline/row>,
     * for the first `sizes` N of the table. */
    static const struct {
        int row, base, sizes;
        const char *name;
    } ratios[] = {
        {KHEAP, GLIBC, 3, "kheap.pair"},
        {KHEAP, MIMALLOC, 3, "kheap.mipair"},
        {KHEAP, SEED, 2, "kheap.seedpair"},
        {KHEAP, TLSF, 3, "kheap.tlsfpair"},
        {KHEAP, TLSF_LOCKED, 3, "kheap.tlsflockedpair"},
        {KHEAP, JEMALLOC, 3, "kheap.jemallocpair"},
        {KHEAP, TCMALLOC, 3, "kheap.tcmallocpair"},
    };
    for (size_t r = 0; r < sizeof(ratios) / sizeof(ratios[0]); r++) {
        if (!have[ratios[r].base])
            continue;
        for (int k = 0; k < ratios[r].sizes; k++) {
            double ours = res[ratios[r].row][k], base = res[ratios[r].base][k];
            printf("ratio %s.%s %.1f %.1f %.2f\n", ratios[r].name, tag[k], ours, base, base / ours);
        }
    }
    for (int i = 0; i < NA; i++) {
        if (FRAG_OF_ANOTHER(i))
            continue;
        if (have[i])
            printf("frag %s %.3f\n", all[i]->name, fr[i]);
        else
            printf("# %s not available (%s not installed): skipped\n", all[i]->name, package[i]);
    }
    for (int i = 0; i < NA; i++)
        if (have[i] && i != SEED && !FRAG_OF_ANOTHER(i))
            printf("frag-variants %s mean %.3f min %.3f max %.3f over %d other traces\n",
                   all[i]->name, fr_sum[i] / VARIANTS, fr_min[i], fr_max[i], VARIANTS);
    kmem_cache_pairs();
    threads_all();
    return 0;
}
