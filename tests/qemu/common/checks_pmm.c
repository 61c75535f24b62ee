/*
 * Test kernel checks: the PMM managing the machine's real memory map.
 */
#include <hadron/mm/hhdm.h>

#include "kernel.h"
#include "kmem.h"

#if KTEST_HAVE_PMM

typedef struct interval {
    uint64_t lo, hi; /* [lo, hi) */
} interval_t;

/* Frames the PMM should manage, computed independently: whole frames inside
 * usable entries that no other entry touches, minus frame 0. */
static uint64_t expected_managed_frames(void)
{
    interval_t res[BOOT_MAP_MAX + 3];
    size_t nres = 0;
    res[nres++] = (interval_t){0, MM_PAGE_SIZE};
    for (size_t i = 0; i < kernel_pmm_map_count; i++) {
        const pmm_region_t *r = &kernel_pmm_map[i];
        if (r->type == PMM_REGION_USABLE || r->length == 0)
            continue;
        res[nres++] = (interval_t){mm_align_down(r->base, MM_PAGE_SIZE),
                                   mm_align_up(r->base + r->length, MM_PAGE_SIZE)};
    }
    /* Sort (insertion) and merge. */
    for (size_t i = 1; i < nres; i++)
        for (size_t j = i; j > 0 && res[j - 1].lo > res[j].lo; j--) {
            interval_t t = res[j];
            res[j] = res[j - 1];
            res[j - 1] = t;
        }
    size_t m = 0;
    for (size_t i = 0; i < nres; i++) {
        if (m > 0 && res[i].lo <= res[m - 1].hi) {
            if (res[i].hi > res[m - 1].hi)
                res[m - 1].hi = res[i].hi;
        } else {
            res[m++] = res[i];
        }
    }
    uint64_t frames = 0;
    for (size_t i = 0; i < kernel_pmm_map_count; i++) {
        const pmm_region_t *r = &kernel_pmm_map[i];
        if (r->type != PMM_REGION_USABLE)
            continue;
        uint64_t lo = mm_align_up(r->base, MM_PAGE_SIZE);
        uint64_t hi = mm_align_down(r->base + r->length, MM_PAGE_SIZE);
        if (hi <= lo)
            continue;
        uint64_t bytes = hi - lo;
        for (size_t k = 0; k < m; k++) {
            uint64_t a = res[k].lo > lo ? res[k].lo : lo;
            uint64_t b = res[k].hi < hi ? res[k].hi : hi;
            if (b > a)
                bytes -= b - a;
        }
        frames += bytes / MM_PAGE_SIZE;
    }
    return frames;
}

/* End of the highest usable entry: the bitmap's span reaches it (memory
 * above it, reclaimable or not, is never managed). */
static uint64_t usable_top(void)
{
    uint64_t top = 0;
    for (size_t i = 0; i < kernel_pmm_map_count; i++) {
        const pmm_region_t *r = &kernel_pmm_map[i];
        if (r->type == PMM_REGION_USABLE && r->base + r->length > top)
            top = r->base + r->length;
    }
    return top;
}

/* Whether a usable entry starts below `limit`. */
static bool usable_below(uint64_t limit)
{
    for (size_t i = 0; i < kernel_pmm_map_count; i++)
        if (kernel_pmm_map[i].type == PMM_REGION_USABLE && kernel_pmm_map[i].base < limit)
            return true;
    return false;
}

static uint64_t free_now(void)
{
    pmm_stats_t st = {0};
    pmm_get_stats(&kernel_pmm, &st);
    return st.free_frames;
}

#define SINGLE_FRAMES 256u
static mm_paddr_t single[SINGLE_FRAMES];

static void check_single_frames(void)
{
    uint64_t before = free_now();
    bool ok = true, distinct = true, in_ram = true;
    unsigned got = 0;
    for (unsigned i = 0; i < SINGLE_FRAMES; i++) {
        if (pmm_alloc(&kernel_pmm, &single[i]) != MM_OK) {
            ok = false;
            break;
        }
        got++;
        in_ram = in_ram && single[i] != 0 && mm_is_aligned(single[i], MM_PAGE_SIZE) &&
                 pmm_frame_state(&kernel_pmm, single[i]) == PMM_FRAME_USED;
        volatile uint64_t *p = hhdm_phys_to_virt(single[i]);
        p[0] = single[i] ^ 0x1234;
        p[511] = ~single[i];
    }
    for (unsigned i = 0; i < got; i++) {
        volatile uint64_t *p = hhdm_phys_to_virt(single[i]);
        ok = ok && p[0] == (single[i] ^ 0x1234) && p[511] == ~single[i];
        for (unsigned j = i + 1; j < got; j++)
            distinct = distinct && single[i] != single[j];
    }
    uint64_t during = free_now();
    tap_check(ok && distinct && in_ram && during == before - SINGLE_FRAMES,
              "pmm: %u frames allocated, distinct, written and read back through the HHDM; "
              "free count %lu -> %lu",
              SINGLE_FRAMES, before, during);
    bool freed = true;
    for (unsigned i = 0; i < got; i++)
        freed = freed && pmm_free(&kernel_pmm, single[i]) == MM_OK &&
                pmm_frame_state(&kernel_pmm, single[i]) == PMM_FRAME_FREE;
    tap_check(freed && free_now() == before, "pmm: all freed, free count back to %lu exactly",
              before);
}

static void check_contiguous(void)
{
    uint64_t before = free_now();
    mm_paddr_t base = 0;
    const size_t count = 1024; /* 4 MiB */
    mm_status_t st = pmm_alloc_contig(&kernel_pmm, count, 512, MM_GIB * 4, &base);
    bool ok = st == MM_OK && mm_is_aligned(base, MM_SIZE_2M) &&
              base + count * MM_PAGE_SIZE <= MM_GIB * 4;
    if (ok) {
        for (size_t i = 0; i < count; i++)
            *(volatile uint64_t *)hhdm_phys_to_virt(base + i * MM_PAGE_SIZE) = base + i;
        for (size_t i = 0; i < count && ok; i++)
            ok = *(volatile uint64_t *)hhdm_phys_to_virt(base + i * MM_PAGE_SIZE) == base + i &&
                 pmm_frame_state(&kernel_pmm, base + i * MM_PAGE_SIZE) == PMM_FRAME_USED;
    }
    tap_check(ok && free_now() == before - count,
              "pmm: 4 MiB contiguous, 2 MiB aligned, below 4 GiB at %#lx (%s)", base,
              mm_status_str(st));
    if (st == MM_OK)
        pmm_free_contig(&kernel_pmm, base, count);

    /* PCs have RAM below 16 MiB (ISA DMA); the Arm virt machine's RAM
     * starts at 1 GiB, so there the request must fail and change nothing. */
    mm_paddr_t dma = 0;
    st = pmm_alloc_contig(&kernel_pmm, 16, 16, 16 * MM_MIB, &dma);
    if (usable_below(16 * MM_MIB)) {
        tap_check(st == MM_OK && dma + 16 * MM_PAGE_SIZE <= 16 * MM_MIB && dma != 0,
                  "pmm: 64 KiB for ISA DMA below 16 MiB at %#lx (%s)", dma, mm_status_str(st));
        if (st == MM_OK)
            pmm_free_contig(&kernel_pmm, dma, 16);
    } else {
        tap_check(st == MM_ERR_NOMEM && free_now() == before,
                  "pmm: no RAM below 16 MiB: 64 KiB there is refused (%s), nothing taken",
                  mm_status_str(st));
    }

    /* Above 4 GiB when the machine has memory there: 2 MiB aligned to
     * 4 GiB, which frame 0 (never handed out) rules out at address 0. */
    if (boot_info.phys_top > MM_GIB * 4) {
        mm_paddr_t hi = 0;
        st = pmm_alloc_contig(&kernel_pmm, 512, (size_t)1 << 20, MM_PADDR_MAX, &hi);
        bool ok_hi = st == MM_OK && hi >= MM_GIB * 4 && mm_is_aligned(hi, MM_GIB * 4);
        if (ok_hi) {
            volatile uint64_t *w = hhdm_phys_to_virt(hi + MM_SIZE_2M - 8);
            *w = 77;
            ok_hi = *w == 77;
            pmm_free_contig(&kernel_pmm, hi, 512);
        }
        tap_check(ok_hi, "pmm: 2 MiB aligned to 4 GiB lands above 4 GiB at %#lx (%s)", hi,
                  mm_status_str(st));
    }
    tap_check(free_now() == before, "pmm: free count back to %lu after the contiguous runs",
              before);
}

static void check_errors(void)
{
    uint64_t before = free_now();
    mm_paddr_t f;
    unsigned warns = hook_warn_count;
    mm_status_t a = pmm_alloc(&kernel_pmm, &f);
    mm_status_t b = pmm_free(&kernel_pmm, f);
    mm_status_t c = pmm_free(&kernel_pmm, f);
    tap_check(a == MM_OK && b == MM_OK && c == MM_ERR_DOUBLE_FREE &&
                  hook_warn_count == warns + 1 && hook_last_warn.kind == MM_REPORT_DOUBLE_FREE &&
                  hook_last_warn.address == f && free_now() == before,
              "pmm: double free of %#lx rejected and warned, count unchanged (%s)", f,
              mm_status_str(c));
    mm_status_t d = pmm_free(&kernel_pmm, kernel_image_phys_start());
    mm_status_t e = pmm_free(&kernel_pmm, 0);
    tap_check(d == MM_ERR_NOT_USABLE && e == MM_ERR_NOT_USABLE && free_now() == before,
              "pmm: freeing a kernel-image frame or frame 0 is rejected (%s, %s)",
              mm_status_str(d), mm_status_str(e));
    tap_check(pmm_frame_state(&kernel_pmm, 0) == PMM_FRAME_RESERVED &&
                  pmm_frame_state(&kernel_pmm, kernel_image_phys_start()) == PMM_FRAME_RESERVED &&
                  pmm_frame_state(&kernel_pmm, mm_align_down(kernel_image_phys_end() - 1,
                                                             MM_PAGE_SIZE)) == PMM_FRAME_RESERVED,
              "pmm: frame 0 and the kernel image are reserved");
}

#if HADRON_MM_PMM_POISON
/* A throw-away PMM over 1 MiB taken from the kernel's: after the panic the
 * instance may be left locked, so it must not be the real one. */
typedef struct poison_case {
    pmm_t *pmm;
    mm_paddr_t frame;
} poison_case_t;

static void poison_alloc(void *arg)
{
    poison_case_t *pc = arg;
    mm_paddr_t f;
    pmm_alloc(pc->pmm, &f);
}

static void check_poison_word(unsigned word)
{
    static pmm_t test_pmm;
    test_pmm = (pmm_t){0};
    mm_paddr_t run;
    if (pmm_alloc_contig(&kernel_pmm, 256, 1, MM_PADDR_MAX, &run) != MM_OK) {
        tap_fail("no 1 MiB run", "pmm: poison test");
        return;
    }
    pmm_region_t map[1] = {{run, 256 * MM_PAGE_SIZE, PMM_REGION_USABLE}};
    mm_status_t st = pmm_init(&test_pmm, map, 1, NULL, 0);
    mm_paddr_t f = 0;
    if (st == MM_OK)
        st = pmm_alloc(&test_pmm, &f);
    if (st == MM_OK)
        st = pmm_free(&test_pmm, f);
    volatile uint32_t *w = hhdm_phys_to_virt(f);
    bool poisoned = st == MM_OK && w[0] == 0xdeaddeadu && w[1023] == 0xdeaddeadu;
    if (st == MM_OK)
        w[word] = 0x0badf00du; /* use after free */
    mm_report_t rep = {0};
    poison_case_t pc = {&test_pmm, f};
    bool panicked = st == MM_OK && panic_expect(poison_alloc, &pc, &rep);
    tap_check(poisoned && panicked && rep.kind == MM_REPORT_POISON && rep.address == f &&
                  rep.offset == word * 4u,
              "pmm: a write to word %u of freed frame %#lx is caught on reallocation "
              "(%s at +%#lx, found %#lx)",
              word, f, mm_report_kind_str(rep.kind), rep.offset, rep.found);
    pmm_free_contig(&kernel_pmm, run, 256);
}
#endif

void checks_pmm(void)
{
    if (!tap_check(kernel_pmm_status == MM_OK, "pmm: initialised from the %s (%s)",
                   boot_info.map_source, mm_status_str(kernel_pmm_status)))
        return;
    const pmm_stats_t *s0 = &kernel_pmm_stats_at_init;
    uint64_t expected = expected_managed_frames();
    tap_check(s0->usable_frames + s0->meta_frames == expected &&
                  s0->free_frames == s0->usable_frames,
              "pmm: manages exactly the usable frames: %lu + %lu metadata = %lu expected, all "
              "free at start",
              s0->usable_frames, s0->meta_frames, expected);
    tap_check(s0->span_frames * MM_PAGE_SIZE >= usable_top() - MM_PAGE_SIZE &&
                  s0->meta_base >= MM_PAGE_SIZE &&
                  pmm_frame_state(&kernel_pmm, s0->meta_base) == PMM_FRAME_RESERVED,
              "pmm: bitmaps at %#lx (%lu frames) are reserved, span %lu frames", s0->meta_base,
              s0->meta_frames, s0->span_frames);
    check_single_frames();
    check_contiguous();
    check_errors();
#if HADRON_MM_PMM_POISON
    check_poison_word(0);
    check_poison_word(700);
#else
    tap_skip("built without pmm_poison", "pmm: use after free caught by poisoning");
#endif
    const char *why = NULL;
    mm_status_t st = pmm_check(&kernel_pmm, &why);
    tap_check(st == MM_OK, "pmm: consistency check %s%s", mm_status_str(st), why ? why : "");
}

#else
void checks_pmm(void)
{
}
#endif
