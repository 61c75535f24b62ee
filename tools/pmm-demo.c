/*
 * pmm-demo: the physical memory manager at work on the memory map QEMU
 * gives a kernel booted with `-m 8G` (SeaBIOS e820 via PVH), over simulated
 * physical memory. Prints the map, where the allocator put its bitmaps, its
 * statistics, a few allocations and frees, and what a bad free returns.
 * Exit status 0 when everything behaved as documented.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <hadron/mm/hhdm.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/pmm.h>
#include <hadron/mm/status.h>

#include "host_hooks.h"

/* ---- helpers ------------------------------------------------------------ */

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define PG 4096ull

static int failures;

static const char *human(uint64_t bytes, char *buf, size_t len)
{
    if (bytes >= GIB)
        snprintf(buf, len, "%.2f GiB", (double)bytes / GIB);
    else if (bytes >= MIB)
        snprintf(buf, len, "%.2f MiB", (double)bytes / MIB);
    else if (bytes >= KIB)
        snprintf(buf, len, "%.2f KiB", (double)bytes / KIB);
    else
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    return buf;
}

static void expect(bool ok, const char *what)
{
    if (!ok) {
        printf("  !! unexpected: %s\n", what);
        failures++;
    }
}

static void print_stats(pmm_t *pmm)
{
    pmm_stats_t s;
    char a[32];
    if (pmm_get_stats(pmm, &s) != MM_OK) {
        expect(false, "pmm_get_stats");
        return;
    }
    printf("  span      %9llu frames  %12s  [0, %#llx)\n", (unsigned long long)s.span_frames,
           human(s.span_frames * PG, a, sizeof a), (unsigned long long)(s.span_frames * PG));
    printf("  usable    %9llu frames  %12s  managed RAM (free + used)\n",
           (unsigned long long)s.usable_frames, human(s.usable_frames * PG, a, sizeof a));
    printf("  free      %9llu frames  %12s\n", (unsigned long long)s.free_frames,
           human(s.free_frames * PG, a, sizeof a));
    printf("  used      %9llu frames  %12s\n", (unsigned long long)s.used_frames,
           human(s.used_frames * PG, a, sizeof a));
    printf("  reserved  %9llu frames  %12s  holes, firmware, frame 0, metadata\n",
           (unsigned long long)s.reserved_frames, human(s.reserved_frames * PG, a, sizeof a));
}

static mm_paddr_t alloc_one(pmm_t *pmm, bool zeroed)
{
    mm_paddr_t pa = 0;
    mm_status_t st = zeroed ? pmm_alloc_zeroed(pmm, &pa) : pmm_alloc(pmm, &pa);
    printf("  %-44s -> %#llx\n", zeroed ? "pmm_alloc_zeroed()" : "pmm_alloc()",
           (unsigned long long)pa);
    expect(st == MM_OK && pa != 0, "single-frame allocation");
    return pa;
}

static mm_paddr_t alloc_run(pmm_t *pmm, size_t count, size_t align, mm_paddr_t limit,
                            const char *what)
{
    mm_paddr_t pa = 0;
    mm_status_t st = pmm_alloc_contig(pmm, count, align, limit, &pa);
    char call[64];
    snprintf(call, sizeof call, "pmm_alloc_contig(%zu, %zu, %s)", count, align, what);
    if (st != MM_OK) {
        printf("  %-44s -> %s\n", call, mm_status_str(st));
        expect(false, "contiguous allocation");
        return 0;
    }
    printf("  %-44s -> [%#llx, %#llx)\n", call, (unsigned long long)pa,
           (unsigned long long)(pa + count * PG));
    expect(pa % (align * PG) == 0, "alignment");
    expect(limit == MM_PADDR_MAX || pa + count * PG <= limit, "limit");
    return pa;
}

static void show_error(const char *call, mm_status_t got, mm_status_t want)
{
    printf("  %-44s -> %s\n", call, mm_status_str(got));
    expect(got == want, call);
}

/* ---- the demo ----------------------------------------------------------- */

static void print_warning(const mm_report_t *report)
{
    printf("      (warn hook: %s: %s, address %#llx)\n", mm_report_kind_str(report->kind),
           report->message, (unsigned long long)report->address);
}

int main(void)
{
    static const pmm_region_t map[] = {
        {0x0, 0x9fc00, PMM_REGION_USABLE},
        {0x9fc00, 0x400, PMM_REGION_RESERVED},
        {0xf0000, 0x10000, PMM_REGION_RESERVED},
        {0x100000, 0xbffe0000 - 0x100000, PMM_REGION_USABLE},
        {0xbffe0000, 0x20000, PMM_REGION_RESERVED},
        {0xfffc0000, 0x40000, PMM_REGION_RESERVED},
        {0x100000000, 0x140000000, PMM_REGION_USABLE},
        {0xfd00000000, 0x300000000, PMM_REGION_RESERVED},
    };
    host_hooks_on_warn = print_warning;
    const size_t n = sizeof map / sizeof map[0];
    char a[32];

    /* Simulated physical memory: 9 GiB of address space, backed lazily,
     * whose first byte is physical address 0 (the HHDM offset). */
    uint64_t sim = 0x240000000ull;
    void *base = mmap(NULL, sim, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED || hhdm_init((uint64_t)(uintptr_t)base, sim) != MM_OK) {
        fprintf(stderr, "pmm-demo: cannot set up simulated memory\n");
        return 1;
    }

    printf("hadron-mm pmm demo: QEMU -m 8G memory map (SeaBIOS e820 via PVH), simulated\n\n");
    printf("Memory map (%zu entries, as the bootloader reports it)\n", n);
    printf("  %-18s  %-18s  %12s  %s\n", "base", "end", "size", "type");
    for (size_t i = 0; i < n; i++)
        printf("  0x%016llx  0x%016llx  %12s  %s\n", (unsigned long long)map[i].base,
               (unsigned long long)(map[i].base + map[i].length),
               human(map[i].length, a, sizeof a), pmm_region_type_str(map[i].type));

    static pmm_t pmm; /* zero-initialised, as a kernel's .bss */
    mm_status_t st = pmm_init(&pmm, map, n, NULL, 0);
    printf("\npmm_init -> %s\n", mm_status_str(st));
    if (st != MM_OK)
        return 1;

    pmm_stats_t s;
    pmm_get_stats(&pmm, &s);
    printf("\nBitmap placement\n");
    printf("  metadata at %#llx - %#llx: %llu frames (%s used)\n",
           (unsigned long long)s.meta_base,
           (unsigned long long)(s.meta_base + s.meta_frames * PG),
           (unsigned long long)s.meta_frames, human(s.meta_bytes, a, sizeof a));
    printf("  = free + usable bitmaps (1 bit per 4 KiB frame each, interleaved),\n"
           "    free-summary tree, whole-free-word tree, per-16 MiB run bounds%s\n",
           HADRON_MM_PMM_POISON ? ", poison bitmap" : "");
    printf("  the bitmap covers up to the highest usable frame (%#llx), not the\n"
           "  reserved hole at 0xfd00000000; placed in the first usable run >= 16 MiB\n",
           (unsigned long long)(s.span_frames * PG));
    expect(s.meta_base == 16 * MIB, "metadata at 16 MiB");

    printf("\nPMM statistics\n");
    print_stats(&pmm);
    expect(s.free_frames == 0x9e + 0xbfee0 + 0x140000 - s.meta_frames, "free frame count");
    printf("  frame 0 -> %s, frame 0x9f000 (cut by the reserved 0x9fc00) -> %s\n",
           pmm_frame_state(&pmm, 0) == PMM_FRAME_RESERVED ? "reserved" : "?",
           pmm_frame_state(&pmm, 0x9f000) == PMM_FRAME_RESERVED ? "reserved" : "?");

    printf("\nSingle frames\n");
    mm_paddr_t f1 = alloc_one(&pmm, false);
    mm_paddr_t f2 = alloc_one(&pmm, false);
    mm_paddr_t f3 = alloc_one(&pmm, true);
    expect(f1 == 0x1000, "frame 0 is never handed out");
    printf("  %-44s -> %s\n", "pmm_free(f2)", mm_status_str(pmm_free(&pmm, f2)));
    mm_paddr_t again = alloc_one(&pmm, false);
    expect(again == f2, "the frame freed last is reused first");
    printf("  (the frame freed last comes back first: it is cache-hot)\n");

    printf("\nContiguous runs\n");
    mm_paddr_t dma = alloc_run(&pmm, 512, 512, 4 * GIB, "below 4 GiB");
    mm_paddr_t isa = alloc_run(&pmm, 16, 16, 16 * MIB, "below 16 MiB");
    mm_paddr_t big = alloc_run(&pmm, 32768, 512, MM_PADDR_MAX, "no limit");
    mm_paddr_t high = alloc_run(&pmm, 512, 512, MM_PADDR_MAX, "no limit");
    printf("  %-44s -> %s\n", "pmm_free_contig(2 MiB run)",
           mm_status_str(pmm_free_contig(&pmm, dma, 512)));
    printf("  %-44s -> %s\n", "pmm_free_contig(128 MiB run)",
           mm_status_str(pmm_free_contig(&pmm, big, 32768)));
    printf("  %-44s -> %s\n", "pmm_free_contig(ISA DMA run)",
           mm_status_str(pmm_free_contig(&pmm, isa, 16)));
    (void)high;

    printf("\nErrors (each leaves the allocator unchanged)\n");
    pmm_stats_t before;
    pmm_get_stats(&pmm, &before);
    char call[64];
    snprintf(call, sizeof call, "pmm_free(%#llx) again", (unsigned long long)dma);
    show_error(call, pmm_free(&pmm, dma), MM_ERR_DOUBLE_FREE);
    show_error("pmm_free(0x9f000)  (partly reserved)", pmm_free(&pmm, 0x9f000),
               MM_ERR_NOT_USABLE);
    show_error("pmm_free(0x0)  (frame 0)", pmm_free(&pmm, 0), MM_ERR_NOT_USABLE);
    show_error("pmm_free(0x1001)", pmm_free(&pmm, 0x1001), MM_ERR_ALIGN);
    show_error("pmm_free(0xfd00000000)", pmm_free(&pmm, 0xfd00000000ull), MM_ERR_RANGE);
    mm_paddr_t pa;
    show_error("pmm_alloc_contig(4 GiB, 2 MiB, below 4 GiB)",
               pmm_alloc_contig(&pmm, (size_t)(4 * GIB / PG), 512, 4 * GIB, &pa), MM_ERR_NOMEM);
    show_error("pmm_alloc_contig(1, align 3, ...)", pmm_alloc_contig(&pmm, 1, 3, 0, &pa),
               MM_ERR_INVALID);
    pmm_stats_t after;
    pmm_get_stats(&pmm, &after);
    expect(memcmp(&before, &after, sizeof before) == 0, "errors changed the statistics");

    printf("\nFinally: free everything the demo still holds\n");
    expect(pmm_free(&pmm, f1) == MM_OK && pmm_free(&pmm, again) == MM_OK &&
               pmm_free(&pmm, f3) == MM_OK && pmm_free_contig(&pmm, high, 512) == MM_OK,
           "frees");
    print_stats(&pmm);
    pmm_get_stats(&pmm, &after);
    expect(after.free_frames == s.free_frames, "every frame came back");

    const char *why = NULL;
    st = pmm_check(&pmm, &why);
    printf("\npmm_check -> %s%s%s\n", mm_status_str(st), why ? ": " : "", why ? why : "");
    expect(st == MM_OK, "pmm_check");

    if (failures) {
        printf("\n%d unexpected result(s)\n", failures);
        return 1;
    }
    printf("\nall results as documented\n");
    return 0;
}
