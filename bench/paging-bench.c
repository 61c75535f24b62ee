/*
 * Page-table mapper benchmark (host): the x86_64 mapper and, in rows named
 * paging.a64.*, the AArch64 mapper, each against a naive baseline, all
 * over the same simulated physical memory and frame allocator.
 *
 * The baseline is the straightforward algorithm: walk down creating missing
 * tables one allocation at a time, and on unmap scan each table's 512
 * entries to decide whether it became empty (no counts). It validates
 * nothing beyond presence, so it is a lower bound on the work a mapper with
 * the same semantics must do. Its functions are kept out of line, as a
 * library's would be, so the compiler cannot hoist their table walks out of
 * the timing loops. The baseline walks x86_64-format entries for both
 * mappers' rows: its cost is the algorithm's (walk, allocate, scan), the
 * same for an AArch64 descriptor format.
 *
 * Prints a table of medians and one "ratio <case> <ours> <baseline>
 * <baseline/ours>" line per comparison.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <hadron/mm/hhdm.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/a64pt.h>
#include <hadron/mm/x86pt.h>

#include "host_hooks.h"

/* ---- simulated memory and a stack frame allocator ---------------------- */

#define SIM_BYTES (512ull << 20)
#define FIRST_FRAME (1ull << 20)

static mm_paddr_t *free_stack;
static size_t free_top;

static mm_status_t stack_alloc(void *ctx, size_t count, size_t align, mm_paddr_t limit,
                               mm_paddr_t *out)
{
    (void)ctx;
    (void)align;
    (void)limit;
    if (count != 1 || free_top == 0)
        return MM_ERR_NOMEM;
    *out = free_stack[--free_top];
    return MM_OK;
}

static mm_status_t stack_free(void *ctx, mm_paddr_t base, size_t count)
{
    (void)ctx;
    for (size_t i = 0; i < count; i++)
        free_stack[free_top++] = base + i * MM_FRAME_SIZE;
    return MM_OK;
}

static const mm_frame_allocator_t frames = {NULL, stack_alloc, stack_free};

static void sim_setup(void)
{
    void *p = mmap(NULL, SIM_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED || hhdm_init((uint64_t)(uintptr_t)p, SIM_BYTES) != MM_OK) {
        fprintf(stderr, "cannot set up simulated memory\n");
        exit(1);
    }
    size_t n = (SIM_BYTES - FIRST_FRAME) / MM_FRAME_SIZE;
    free_stack = malloc(n * sizeof *free_stack);
    for (size_t i = 0; i < n; i++)
        free_stack[free_top++] = SIM_BYTES - (i + 1) * MM_FRAME_SIZE;
}

/* ---- the baseline ------------------------------------------------------- */

#define P 1ull
#define RW 2ull
#define PS 0x80ull
#define ADDR 0x000ffffffffff000ull

static uint64_t *tab(mm_paddr_t pa)
{
    return hhdm_phys_to_virt(pa & ADDR);
}

int naive_map(mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa, unsigned leaf_level);
int naive_unmap(mm_paddr_t root, mm_vaddr_t va, unsigned leaf_level);
int naive_translate(mm_paddr_t root, mm_vaddr_t va, mm_paddr_t *pa);

/* The baseline must be measured as written: noipa stops gcc from
 * specialising it for the constant arguments the bench passes (which it
 * otherwise does, computing top-level indices at compile time). */
#if defined(__clang__) /* no noipa: external linkage keeps clang from it */
#define BASELINE_FN __attribute__((noinline))
#else
#define BASELINE_FN __attribute__((noipa))
#endif

BASELINE_FN int naive_map(mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa, unsigned leaf_level)
{
    uint64_t *t = tab(root);
    for (unsigned l = 4; l > leaf_level; l--) {
        uint64_t *e = &t[(va >> (12 + 9 * (l - 1))) & 511];
        if (!(*e & P)) {
            mm_paddr_t f;
            if (stack_alloc(NULL, 1, 1, 0, &f) != MM_OK)
                return -1;
            memset(tab(f), 0, 4096);
            *e = f | P | RW;
        } else if (*e & PS) {
            return -1;
        }
        t = tab(*e);
    }
    uint64_t *e = &t[(va >> (12 + 9 * (leaf_level - 1))) & 511];
    if (*e & P)
        return -1;
    *e = pa | P | RW | (leaf_level > 1 ? PS : 0);
    return 0;
}

BASELINE_FN int naive_unmap(mm_paddr_t root, mm_vaddr_t va, unsigned leaf_level)
{
    uint64_t *slot[5];
    uint64_t *t = tab(root);
    for (unsigned l = 4;; l--) {
        slot[l] = &t[(va >> (12 + 9 * (l - 1))) & 511];
        if (!(*slot[l] & P))
            return -1;
        if (l == leaf_level)
            break;
        t = tab(*slot[l]);
    }
    *slot[leaf_level] = 0;
    mm_tlb_batch_t b = MM_TLB_BATCH_INIT;
    mm_tlb_batch_add(&b, va, (mm_page_size_t)(12 + 9 * (leaf_level - 1)), false);
    for (unsigned l = leaf_level; l < 4; l++) {
        const uint64_t *child = tab(*slot[l + 1]);
        for (unsigned i = 0; i < 512; i++)
            if (child[i] & P)
                return 0;
        stack_free(NULL, *slot[l + 1] & ADDR, 1);
        *slot[l + 1] = 0;
    }
    return 0;
}

BASELINE_FN int naive_translate(mm_paddr_t root, mm_vaddr_t va, mm_paddr_t *pa)
{
    const uint64_t *t = tab(root);
    for (unsigned l = 4;; l--) {
        uint64_t e = t[(va >> (12 + 9 * (l - 1))) & 511];
        if (!(e & P))
            return -1;
        if (l == 1 || (e & PS)) {
            uint64_t mask = (1ull << (12 + 9 * (l - 1))) - 1;
            *pa = (e & ADDR & ~mask) | (va & mask);
            return 0;
        }
        t = tab(e);
    }
}

/* ---- timing ------------------------------------------------------------- */

#define REPS 31

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, REPS, sizeof *v, cmp_double);
    return v[REPS / 2];
}

static x86pt_t mapper;
static mm_paddr_t root_ours, root_naive;
static volatile uint64_t sink;

#define VA 0x0000004000000000ull

static void die(const char *what)
{
    fprintf(stderr, "bench: %s failed\n", what);
    exit(1);
}

/* Median ns per iteration of body over `iters` iterations. */
#define TIME_CASE(result, iters, body)                                                             \
    do {                                                                                           \
        double samples_[REPS];                                                                     \
        for (int r_ = 0; r_ < REPS; r_++) {                                                        \
            uint64_t t0_ = now_ns();                                                               \
            for (unsigned i_ = 0; i_ < (iters); i_++) {                                            \
                body;                                                                              \
            }                                                                                      \
            samples_[r_] = (double)(now_ns() - t0_) / (double)(iters);                             \
        }                                                                                          \
        (result) = median(samples_);                                                               \
    } while (0)

static void ratio(const char *name, double ours, double base)
{
    printf("%-32s %12.1f %12.1f\n", name, ours, base);
    printf("ratio %s %.1f %.1f %.2f\n", name, ours, base, base / ours);
}

/* Map + unmap of one 4 KiB page at VA, ours against the baseline; what the
 * neighbouring entries hold is the caller's setup. */
static void time_map_unmap_4k(const char *name, unsigned iters, mm_tlb_batch_t *tlb)
{
    double ours, base;
    TIME_CASE(ours, iters, {
        if (x86pt_map(&mapper, root_ours, VA, 0x5000, MM_PAGE_4K, MM_MAP_WRITE, tlb) != MM_OK ||
            x86pt_unmap(&mapper, root_ours, VA, MM_PAGE_4K, NULL, tlb) != MM_OK)
            die("map/unmap");
        mm_tlb_batch_flush(tlb); /* table frees happen here */
    });
    TIME_CASE(base, iters, {
        if (naive_map(root_naive, VA, 0x5000, 1) || naive_unmap(root_naive, VA, 1))
            die("naive map/unmap");
    });
    ratio(name, ours, base);
}

/* ---- the AArch64 mapper (48-bit VA, 4 levels, like the x86_64 rows) ---- */

static a64pt_t a64;
static mm_paddr_t root_a64, root_a64_naive;

static void time_a64_map_unmap_4k(const char *name, unsigned iters, mm_tlb_batch_t *tlb)
{
    double ours, base;
    TIME_CASE(ours, iters, {
        if (a64pt_map(&a64, root_a64, VA, 0x5000, MM_PAGE_4K, MM_MAP_WRITE, tlb) != MM_OK ||
            a64pt_unmap(&a64, root_a64, VA, MM_PAGE_4K, NULL, tlb) != MM_OK)
            die("a64 map/unmap");
        mm_tlb_batch_flush(tlb);
    });
    TIME_CASE(base, iters, {
        if (naive_map(root_a64_naive, VA, 0x5000, 1) || naive_unmap(root_a64_naive, VA, 1))
            die("naive map/unmap");
    });
    ratio(name, ours, base);
}

static void bench_a64(void)
{
    a64pt_config_t cfg = {.va_bits = 48, .lpa2 = false, .phys_bits = 46, .frames = frames};
    if (a64pt_init(&a64, &cfg) != MM_OK || a64pt_root_create(&a64, 0, &root_a64) != MM_OK ||
        a64pt_root_create(&a64, 0, &root_a64_naive) != MM_OK)
        die("a64 setup");
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    double ours, base;

    time_a64_map_unmap_4k("paging.a64.map_unmap_4k.isolated", 2000, &tlb);
    if (a64pt_map(&a64, root_a64, VA + 0x1000, 0x6000, MM_PAGE_4K, 0, &tlb) != MM_OK ||
        naive_map(root_a64_naive, VA + 0x1000, 0x6000, 1))
        die("a64 neighbour");
    time_a64_map_unmap_4k("paging.a64.map_unmap_4k.warm", 20000, &tlb);

    for (unsigned i = 2; i < 64; i++)
        if (a64pt_map(&a64, root_a64, VA + i * 0x1000ull, i * 0x1000ull, MM_PAGE_4K, 0, &tlb) !=
                MM_OK ||
            naive_map(root_a64_naive, VA + i * 0x1000ull, i * 0x1000ull, 1))
            die("a64 translate setup");
    TIME_CASE(ours, 200000, {
        mm_translation_t tr;
        if (a64pt_translate(&a64, root_a64, VA + ((2 + i_ % 62) << 12) + (i_ & 0xff8), &tr) !=
            MM_OK)
            die("a64 translate");
        sink += tr.pa;
    });
    TIME_CASE(base, 200000, {
        mm_paddr_t pa;
        if (naive_translate(root_a64_naive, VA + ((2 + i_ % 62) << 12) + (i_ & 0xff8), &pa))
            die("naive translate");
        sink += pa;
    });
    ratio("paging.a64.translate", ours, base);

    const mm_vaddr_t big = 0x0000010000000000ull;
    double s_ours[REPS], s_base[REPS];
    for (int r = 0; r < REPS; r++) {
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < 512; i++)
            if (a64pt_map(&a64, root_a64, big + i * MM_SIZE_2M, (uint64_t)i * MM_SIZE_2M,
                          MM_PAGE_2M, MM_MAP_WRITE, &tlb) != MM_OK)
                die("a64 map 2M");
        s_ours[r] = (double)(now_ns() - t0);
        for (unsigned i = 0; i < 512; i++)
            if (a64pt_unmap(&a64, root_a64, big + i * MM_SIZE_2M, MM_PAGE_2M, NULL, &tlb) !=
                MM_OK)
                die("a64 unmap 2M");
        mm_tlb_batch_flush(&tlb);
        t0 = now_ns();
        for (unsigned i = 0; i < 512; i++)
            if (naive_map(root_a64_naive, big + i * MM_SIZE_2M, (uint64_t)i * MM_SIZE_2M, 2))
                die("naive map 2M");
        s_base[r] = (double)(now_ns() - t0);
        for (unsigned i = 0; i < 512; i++)
            if (naive_unmap(root_a64_naive, big + i * MM_SIZE_2M, 2))
                die("naive unmap 2M");
    }
    ratio("paging.a64.map_1g_as_2m", median(s_ours), median(s_base));

    /* A protect that changes the memory type is break-before-make: one
     * synchronous hook call per page (the host hook only counts), against a
     * permission-only protect that the batch flushes once. No baseline. */
    const mm_vaddr_t stack = 0xffffc00000000000ull;
    for (unsigned i = 0; i < 16; i++)
        if (a64pt_map(&a64, root_a64, stack + i * 0x1000ull, 0x100000 + i * 0x1000ull,
                      MM_PAGE_4K, MM_MAP_WRITE, &tlb) != MM_OK)
            die("a64 stack map");
    double s_bbm[REPS], s_perm[REPS];
    unsigned long sync_calls = 0; /* hook calls made inside the type changes */
    for (int r = 0; r < REPS; r++) {
        uint64_t t0 = now_ns();
        /* Odd rounds WB, even rounds WC: every call changes the type. */
        mm_map_flags_t type = (r & 1) ? MM_MAP_WRITE : MM_MAP_WRITE | MM_MAP_WRITE_COMBINING;
        unsigned long calls0 = host_hook_counts.tlb_page_calls;
        for (unsigned i = 0; i < 16; i++)
            if (a64pt_protect(&a64, root_a64, stack + i * 0x1000ull, MM_PAGE_4K, type, &tlb) !=
                MM_OK)
                die("a64 protect type");
        sync_calls += host_hook_counts.tlb_page_calls - calls0;
        mm_tlb_batch_flush(&tlb);
        s_bbm[r] = (double)(now_ns() - t0) / 16.0;
        t0 = now_ns();
        for (unsigned i = 0; i < 16; i++)
            /* The same type, write permission withdrawn: no BBM. */
            if (a64pt_protect(&a64, root_a64, stack + i * 0x1000ull, MM_PAGE_4K,
                              type & ~(mm_map_flags_t)MM_MAP_WRITE, &tlb) != MM_OK)
                die("a64 protect perm");
        mm_tlb_batch_flush(&tlb);
        s_perm[r] = (double)(now_ns() - t0) / 16.0;
    }
    printf("%-32s %12.1f %12s\n", "paging.a64.protect_type_bbm", median(s_bbm), "-");
    printf("%-32s %12.2f %12s\n", "paging.a64.protect_type.hooks/page",
           (double)sync_calls / (REPS * 16.0), "-");
    printf("%-32s %12.1f %12s\n", "paging.a64.protect_perm", median(s_perm), "-");

    host_hook_counts.tlb_page_calls = host_hook_counts.tlb_all_calls = 0;
    for (unsigned i = 0; i < 16; i++)
        if (a64pt_unmap(&a64, root_a64, stack + i * 0x1000ull, MM_PAGE_4K, NULL, &tlb) != MM_OK)
            die("a64 stack unmap");
    mm_tlb_batch_flush(&tlb);
    unsigned long batched = host_hook_counts.tlb_page_calls + host_hook_counts.tlb_all_calls;
    printf("%-32s %12lu %12lu\n", "paging.a64.unmap16.flushes", batched, 16ul);
    printf("ratio paging.a64.unmap16.flushes %lu %lu %.2f\n", batched, 16ul,
           16.0 / (double)batched);

    a64pt_check_info_t info;
    if (a64pt_check(&a64, root_a64, &info) != MM_OK)
        die("a64 check");
}

int main(void)
{
    sim_setup();
    x86pt_config_t cfg = {.levels = 4, .phys_bits = 46, .nx = true, .pages_1g = true,
                          .frames = frames};
    if (x86pt_init(&mapper, &cfg) != MM_OK || x86pt_root_create(&mapper, 0, &root_ours) != MM_OK ||
        x86pt_root_create(&mapper, 0, &root_naive) != MM_OK)
        die("setup");
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    double ours, base;

    printf("%-32s %12s %12s\n", "case (median ns per op)", "ours", "baseline");

    /* 1. map + unmap of an isolated 4 KiB page: three tables are made and
     * freed each time (the baseline scans them to find out). */
    time_map_unmap_4k("paging.map_unmap_4k.isolated", 2000, &tlb);

    /* 2. The same with a neighbour keeping the tables alive: the pure cost
     * of the operations. The neighbour sits right after the page, the
     * baseline's best case (its scan stops at the second entry). */
    if (x86pt_map(&mapper, root_ours, VA + 0x1000, 0x6000, MM_PAGE_4K, 0, &tlb) != MM_OK ||
        naive_map(root_naive, VA + 0x1000, 0x6000, 1))
        die("neighbour");
    time_map_unmap_4k("paging.map_unmap_4k.warm", 20000, &tlb);
    /* Neighbour at the far end of the table: the baseline scans 511 entries. */
    if (x86pt_unmap(&mapper, root_ours, VA + 0x1000, MM_PAGE_4K, NULL, &tlb) != MM_OK ||
        naive_unmap(root_naive, VA + 0x1000, 1) ||
        x86pt_map(&mapper, root_ours, VA + 511 * 0x1000, 0x6000, MM_PAGE_4K, 0, &tlb) != MM_OK ||
        naive_map(root_naive, VA + 511 * 0x1000, 0x6000, 1))
        die("far neighbour");
    time_map_unmap_4k("paging.map_unmap_4k.far_neighbour", 20000, &tlb);

    /* 3. translate, over 64 mapped 4 KiB pages. */
    for (unsigned i = 2; i < 64; i++)
        if (x86pt_map(&mapper, root_ours, VA + i * 0x1000ull, i * 0x1000ull, MM_PAGE_4K, 0,
                      &tlb) != MM_OK ||
            naive_map(root_naive, VA + i * 0x1000ull, i * 0x1000ull, 1))
            die("translate setup");
    TIME_CASE(ours, 200000, {
        mm_translation_t tr;
        if (x86pt_translate(&mapper, root_ours, VA + ((2 + i_ % 62) << 12) + (i_ & 0xff8),
                            &tr) != MM_OK)
            die("translate");
        sink += tr.pa;
    });
    TIME_CASE(base, 200000, {
        mm_paddr_t pa;
        if (naive_translate(root_naive, VA + ((2 + i_ % 62) << 12) + (i_ & 0xff8), &pa))
            die("naive translate");
        sink += pa;
    });
    ratio("paging.translate", ours, base);

    /* 4. 1 GiB as 512 2 MiB pages (then unmapped, untimed). */
    const mm_vaddr_t big = 0x0000010000000000ull;
    double s_ours[REPS], s_base[REPS];
    for (int r = 0; r < REPS; r++) {
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < 512; i++)
            if (x86pt_map(&mapper, root_ours, big + i * MM_SIZE_2M, (uint64_t)i * MM_SIZE_2M,
                          MM_PAGE_2M, MM_MAP_WRITE, &tlb) != MM_OK)
                die("map 2M");
        s_ours[r] = (double)(now_ns() - t0);
        for (unsigned i = 0; i < 512; i++)
            if (x86pt_unmap(&mapper, root_ours, big + i * MM_SIZE_2M, MM_PAGE_2M, NULL, &tlb) !=
                MM_OK)
                die("unmap 2M");
        mm_tlb_batch_flush(&tlb); /* table frees happen here */
        t0 = now_ns();
        for (unsigned i = 0; i < 512; i++)
            if (naive_map(root_naive, big + i * MM_SIZE_2M, (uint64_t)i * MM_SIZE_2M, 2))
                die("naive map 2M");
        s_base[r] = (double)(now_ns() - t0);
        for (unsigned i = 0; i < 512; i++)
            if (naive_unmap(root_naive, big + i * MM_SIZE_2M, 2))
                die("naive unmap 2M");
    }
    ratio("paging.map_1g_as_2m", median(s_ours), median(s_base));

    /* The same gigabyte through x86pt_map_range (checks the whole range,
     * reserves tables, then commits); no baseline equivalent. */
    x86pt_t no1g;
    cfg.pages_1g = false;
    if (x86pt_init(&no1g, &cfg) != MM_OK)
        die("init");
    for (int r = 0; r < REPS; r++) {
        uint64_t t0 = now_ns();
        if (x86pt_map_range(&no1g, root_ours, big, 0, MM_SIZE_1G, MM_MAP_WRITE, &tlb) != MM_OK)
            die("map_range");
        s_ours[r] = (double)(now_ns() - t0);
        if (x86pt_unmap_range(&no1g, root_ours, big, MM_SIZE_1G, 0, NULL, NULL, &tlb) != MM_OK)
            die("unmap_range");
        mm_tlb_batch_flush(&tlb); /* table frees happen here */
    }
    printf("%-32s %12.1f %12s\n", "paging.map_range_1g_as_2m", median(s_ours), "-");

    /* 5. TLB flushes for a 16-page unmap: one batch against one flush per
     * page. */
    const mm_vaddr_t stack = 0xffffc00000000000ull;
    for (unsigned i = 0; i < 16; i++)
        if (x86pt_map(&mapper, root_ours, stack + i * 0x1000ull, 0x100000 + i * 0x1000ull,
                      MM_PAGE_4K, MM_MAP_WRITE, &tlb) != MM_OK)
            die("stack map");
    host_hook_counts.tlb_page_calls = host_hook_counts.tlb_all_calls = 0;
    for (unsigned i = 0; i < 16; i++)
        if (x86pt_unmap(&mapper, root_ours, stack + i * 0x1000ull, MM_PAGE_4K, NULL, &tlb) !=
            MM_OK)
            die("stack unmap");
    mm_tlb_batch_flush(&tlb);
    unsigned long batched = host_hook_counts.tlb_page_calls + host_hook_counts.tlb_all_calls;
    for (unsigned i = 0; i < 16; i++)
        if (x86pt_map(&mapper, root_ours, stack + i * 0x1000ull, 0x100000 + i * 0x1000ull,
                      MM_PAGE_4K, MM_MAP_WRITE, &tlb) != MM_OK)
            die("stack map");
    host_hook_counts.tlb_page_calls = host_hook_counts.tlb_all_calls = 0;
    for (unsigned i = 0; i < 16; i++) {
        if (x86pt_unmap(&mapper, root_ours, stack + i * 0x1000ull, MM_PAGE_4K, NULL, &tlb) !=
            MM_OK)
            die("stack unmap");
        mm_tlb_batch_flush(&tlb);
    }
    unsigned long per_page = host_hook_counts.tlb_page_calls + host_hook_counts.tlb_all_calls;
    printf("%-32s %12lu %12lu\n", "paging.unmap16.flushes", batched, per_page);
    printf("ratio paging.unmap16.flushes %lu %lu %.2f\n", batched, per_page,
           (double)per_page / (double)batched);

    x86pt_check_info_t info;
    if (x86pt_check(&mapper, root_ours, &info) != MM_OK)
        die("check");
    bench_a64();
    return 0;
}
