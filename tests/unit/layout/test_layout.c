#include <criterion/criterion.h>
#include <string.h>

#include <hadron/mm/layout.h>

#define HHDM4 0xffff800000000000ull
#define HHDM5 0xff00000000000000ull

/* x86_64 4- and 5-level descriptors, written out (x86pt_va_space makes
 * them in a kernel; the core tests check the constructor against these). */
static const mm_va_space_t S4 = {0, 1ull << 47, HHDM4, UINT64_MAX, 4, false};
static const mm_va_space_t S5 = {0, 1ull << 56, HHDM5, UINT64_MAX, 5, false};

static layout_t compute_ok(const layout_params_t *p)
{
    layout_t l;
    mm_status_t st = layout_compute(p, &l);
    cr_assert_eq(st, MM_OK, "%s", mm_status_str(st));
    return l;
}

/* Every property a layout must have, checked from first principles. */
static void assert_sound(const layout_t *l)
{
    for (unsigned a = 0; a < LAYOUT_REGION_COUNT; a++) {
        const layout_region_t *r = &l->regions[a];
        uint64_t last = 0;
        cr_assert_gt(r->size, 0, "%s empty", layout_region_name(a));
        cr_assert(mm_range_last(r->base, r->size, &last), "%s wraps", layout_region_name(a));
        cr_assert(mm_va_space_is_kernel(&l->space, r->base) &&
                      mm_va_space_is_kernel(&l->space, last),
                  "%s not in the kernel range", layout_region_name(a));
        cr_assert(mm_is_aligned(r->base, MM_SIZE_2M));
        for (unsigned b = a + 1; b < LAYOUT_REGION_COUNT; b++) {
            const layout_region_t *s = &l->regions[b];
            cr_assert_not(mm_ranges_overlap(r->base, last, s->base, s->base + s->size - 1),
                          "%s overlaps %s", layout_region_name(a), layout_region_name(b));
        }
    }
}

Test(layout, default_4_level)
{
    layout_params_t p = {.space = &S4, .hhdm_base = HHDM4, .phys_top = 0x240000000ull};
    layout_t l = compute_ok(&p);
    assert_sound(&l);
    cr_assert_eq(l.space.levels, 4);
    cr_assert(mm_va_space_equal(&l.space, &S4), "the descriptor is copied into the layout");
    cr_assert_eq(l.regions[LAYOUT_HHDM].base, HHDM4);
    cr_assert_eq(l.regions[LAYOUT_HHDM].size, 9ull << 30, "HHDM rounds phys_top up to 1 GiB");
    cr_assert_eq(l.regions[LAYOUT_HEAP].size, LAYOUT_DEFAULT_HEAP_SIZE);
    cr_assert_eq(l.regions[LAYOUT_STACKS].size, LAYOUT_DEFAULT_STACKS_SIZE);
    cr_assert_eq(l.regions[LAYOUT_MMIO].size, LAYOUT_DEFAULT_MMIO_SIZE);
    cr_assert_eq(l.regions[LAYOUT_KERNEL_IMAGE].base, LAYOUT_DEFAULT_KERNEL_BASE);
    cr_assert_geq(l.regions[LAYOUT_HEAP].base, HHDM4 + (9ull << 30) + LAYOUT_GUARD_GAP,
                  "guard gap after the HHDM");
}

Test(layout, five_level_allows_a_larger_physical_space)
{
    layout_params_t p = {.hhdm_base = HHDM5, .phys_top = 1ull << 52, .space = &S5};
    layout_t l = compute_ok(&p);
    assert_sound(&l);
    cr_assert_eq(l.space.kernel_lo, HHDM5);
    p.space = &S4;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_NOT_CANONICAL, "5-level base in 4-level mode");
}

Test(layout, custom_sizes_and_randomised_base)
{
    layout_params_t p = {.space = &S4,
        .hhdm_base = HHDM4,
        .phys_top = 1ull << 30,
        .regions_base = 0xffffc12340000000ull,
        .heap_size = 64ull << 30,
        .stacks_size = 8ull << 30,
        .mmio_size = 16ull << 30,
    };
    layout_t l = compute_ok(&p);
    assert_sound(&l);
    cr_assert_eq(l.regions[LAYOUT_HEAP].base, p.regions_base);
    cr_assert_eq(l.regions[LAYOUT_HEAP].size, 64ull << 30);
    cr_assert_eq(l.regions[LAYOUT_STACKS].size, 8ull << 30);
    cr_assert_eq(l.regions[LAYOUT_MMIO].size, 16ull << 30);
}

Test(layout, hhdm_too_small_for_physical_space)
{
    /* 4-level: the HHDM at the start of the upper half reaches the kernel
     * image at -2 GiB when phys_top nears 128 TiB. */
    layout_params_t p = {.space = &S4, .hhdm_base = HHDM4, .phys_top = 128ull << 40};
    layout_t l;
    memset(&l, 0xab, sizeof l);
    layout_t before = l;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_RANGE);
    cr_assert_eq(memcmp(&l, &before, sizeof l), 0, "out written on error");
    /* Heap, stacks and MMIO placed below a higher HHDM, so nothing wraps:
     * the HHDM alone reaches the image at its default base. */
    layout_params_t q = {.space = &S4, .hhdm_base = 0xffffc00000000000ull,
                         .phys_top = (64ull << 40) - (1ull << 30),
                         .regions_base = HHDM4,
                         .heap_size = 1ull << 30,
                         .stacks_size = 1ull << 30,
                         .mmio_size = 1ull << 30};
    cr_assert_eq(layout_compute(&q, &l), MM_ERR_RANGE);
    cr_assert_eq(memcmp(&l, &before, sizeof l), 0, "out written on error");
    q.phys_top -= 1ull << 30; /* now it ends just below the image */
    cr_assert_eq(layout_compute(&q, &l), MM_OK);
    memcpy(&l, &before, sizeof l);
    /* Large enough that the regions after the HHDM wrap past 2^64. */
    p.kernel_base = 0;
    p.phys_top = 123ull << 40;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_RANGE);
    cr_assert_eq(memcmp(&l, &before, sizeof l), 0, "out written on error");
}

Test(layout, base_that_wraps_is_rejected)
{
    layout_params_t p = {.space = &S4, .hhdm_base = HHDM4, .phys_top = 1ull << 30,
                         .regions_base = 0xffffffffc0000000ull};
    layout_t l;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_RANGE);
    p.hhdm_base = 0xffffffffc0000000ull;
    p.regions_base = 0;
    p.phys_top = 2ull << 30;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_RANGE, "HHDM wraps past 2^64");
}

Test(layout, base_overlapping_hhdm_or_kernel_is_rejected)
{
    layout_t l;
    layout_params_t p = {.space = &S4, .hhdm_base = HHDM4, .phys_top = 64ull << 30,
                         .regions_base = HHDM4 + (32ull << 30)};
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_OVERLAP);
    /* A kernel image inside the default heap region. */
    p.regions_base = 0;
    p.kernel_base = HHDM4 + (1ull << 40);
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_OVERLAP);
    /* A kernel base the caller chose inside a small HHDM (8 GiB): the base
     * is at fault, not the physical space, so OVERLAP, not RANGE. */
    p.regions_base = 0;
    p.phys_top = 8ull << 30;
    p.kernel_base = HHDM4 + (4ull << 30);
    layout_t untouched;
    memset(&l, 0xab, sizeof l);
    untouched = l;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_OVERLAP);
    cr_assert_eq(memcmp(&l, &untouched, sizeof l), 0, "out written on error");
    p.kernel_base = HHDM4; /* at the HHDM's very first byte */
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_OVERLAP);
    p.phys_top = 64ull << 30;
    /* A randomised base whose MMIO region reaches the default image. */
    p.kernel_base = 0;
    p.regions_base = 0xfffffa0000000000ull;
    p.mmio_size = 1533ull << 30;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_OVERLAP);
}

Test(layout, argument_errors)
{
    layout_t l;
    layout_params_t good = {.space = &S4, .hhdm_base = HHDM4, .phys_top = 1ull << 30};
    layout_params_t p;
    cr_assert_eq(layout_compute(NULL, &l), MM_ERR_INVALID);
    cr_assert_eq(layout_compute(&good, NULL), MM_ERR_INVALID);
    p = good; p.space = NULL;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_INVALID);
    mm_va_space_t bad = S4;
    bad.levels = 1;
    p = good; p.space = &bad;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_INVALID, "a descriptor mm_va_space_check rejects");
    p = good; p.phys_top = 0;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_INVALID);
    p = good; p.heap_size = (1ull << 30) + 4096;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_INVALID);
    p = good; p.kernel_size = 4096;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_INVALID);
    p = good; p.hhdm_base = HHDM4 + 4096;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_ALIGN);
    p = good; p.regions_base = 0xffffc00000001000ull;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_ALIGN);
    p = good; p.kernel_base = 0xffffffff80001000ull;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_ALIGN);
    p = good; p.hhdm_base = 0x0000400000000000ull;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_NOT_CANONICAL, "lower-half HHDM");
    p = good; p.regions_base = 0x0000400000000000ull;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_NOT_CANONICAL);
    /* A physical top so high that the HHDM size (rounded up to 1 GiB)
     * cannot be represented. */
    p = good; p.phys_top = UINT64_MAX - 4096;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_RANGE);
}

Test(layout, find_classifies_addresses)
{
    layout_params_t p = {.space = &S4, .hhdm_base = HHDM4, .phys_top = 8ull << 30};
    layout_t l = compute_ok(&p);
    for (unsigned id = 0; id < LAYOUT_REGION_COUNT; id++) {
        const layout_region_t *r = &l.regions[id];
        cr_assert_eq(layout_find(&l, r->base), id);
        cr_assert_eq(layout_find(&l, r->base + r->size - 1), id);
    }
    cr_assert_eq(layout_find(&l, 0x1000), LAYOUT_NONE, "lower half");
    cr_assert_eq(layout_find(&l, HHDM4 + (8ull << 30)), LAYOUT_NONE, "guard gap");
    cr_assert_eq(layout_find(&l, l.regions[LAYOUT_HEAP].base - 1), LAYOUT_NONE);
    cr_assert_str_eq(layout_region_name(LAYOUT_STACKS), "stacks");
    cr_assert_str_eq(layout_region_name(LAYOUT_NONE), "none");
}

/* layout.h's diagram: a guard gap (LAYOUT_GUARD_GAP, unmapped) between heap
 * and stacks and between stacks and MMIO; layout_find() returns LAYOUT_NONE
 * in guard gaps. Checked for the default, custom-size, randomised-base and
 * 5-level layouts, at the first and last byte of each gap. */
static void assert_guard_gaps(const layout_t *l)
{
    static const layout_region_id_t order[] = {LAYOUT_HEAP, LAYOUT_STACKS, LAYOUT_MMIO};
    for (unsigned k = 0; k + 1 < sizeof order / sizeof order[0]; k++) {
        const layout_region_t *lo = &l->regions[order[k]], *hi = &l->regions[order[k + 1]];
        mm_vaddr_t gap_start = layout_region_end(lo);
        cr_assert_gt(gap_start, lo->base, "%s must not end at 2^64", layout_region_name(order[k]));
        cr_assert_geq(hi->base, gap_start, "%s above %s", layout_region_name(order[k + 1]),
                      layout_region_name(order[k]));
        cr_assert_geq(hi->base - gap_start, LAYOUT_GUARD_GAP, "gap %s -> %s is %#llx",
                      layout_region_name(order[k]), layout_region_name(order[k + 1]),
                      (unsigned long long)(hi->base - gap_start));
        cr_assert_eq(layout_find(l, gap_start), LAYOUT_NONE, "first byte after %s",
                     layout_region_name(order[k]));
        cr_assert_eq(layout_find(l, gap_start + LAYOUT_GUARD_GAP / 2), LAYOUT_NONE);
        cr_assert_eq(layout_find(l, hi->base - 1), LAYOUT_NONE, "last byte before %s",
                     layout_region_name(order[k + 1]));
        cr_assert_eq(layout_find(l, gap_start - 1), order[k]);
        cr_assert_eq(layout_find(l, hi->base), order[k + 1]);
    }
}

Test(layout, guard_gaps_between_heap_stacks_and_mmio)
{
    layout_params_t p = {.space = &S4, .hhdm_base = HHDM4, .phys_top = 0x240000000ull};
    layout_t l = compute_ok(&p);
    assert_guard_gaps(&l);

    layout_params_t c = {.space = &S4,
        .hhdm_base = HHDM4,
        .phys_top = 1ull << 30,
        .regions_base = 0xffffc12340000000ull,
        .heap_size = 64ull << 30,
        .stacks_size = 8ull << 30,
        .mmio_size = 16ull << 30,
    };
    l = compute_ok(&c);
    assert_guard_gaps(&l);
    c.regions_base = 0;
    c.heap_size = c.stacks_size = c.mmio_size = 1ull << 30; /* smallest regions */
    l = compute_ok(&c);
    assert_guard_gaps(&l);

    layout_params_t f = {.hhdm_base = HHDM5, .phys_top = 1ull << 52, .space = &S5};
    l = compute_ok(&f);
    assert_guard_gaps(&l);
}

/* layout.h: a static name, "none" for LAYOUT_NONE; layout.md: out of range
 * -> "none", never NULL. */
Test(layout, region_name_out_of_range_is_none)
{
    cr_assert_str_eq(layout_region_name(LAYOUT_HHDM), "hhdm");
    cr_assert_str_eq(layout_region_name(LAYOUT_HEAP), "heap");
    cr_assert_str_eq(layout_region_name(LAYOUT_MMIO), "mmio");
    cr_assert_str_eq(layout_region_name(LAYOUT_KERNEL_IMAGE), "kernel");
    const unsigned bad[] = {LAYOUT_NONE + 1, LAYOUT_NONE + 7, 255, 0x7fffffffu, 0x80000000u,
                            UINT32_MAX};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *n = layout_region_name((layout_region_id_t)bad[i]);
        cr_assert_not_null(n, "id %u", bad[i]);
        cr_assert_str_eq(n, "none", "id %u", bad[i]);
    }
    cr_assert_str_eq(layout_region_name((layout_region_id_t)-1), "none");
}

/* The address-space descriptor, not an architecture's rule, decides where
 * a layout may go (issue 21): a valid layout for 39-, 48- and 52-bit
 * AArch64 spaces and the 57-bit x86_64 one, each region inside its space's
 * kernel range. */
Test(layout, a_valid_layout_for_39_48_52_and_57_bit_spaces)
{
    mm_va_space_t s39, s48, s52, s57;
    cr_assert_eq(mm_va_space_aarch64(39, &s39), MM_OK);
    cr_assert_eq(mm_va_space_aarch64(48, &s48), MM_OK);
    cr_assert_eq(mm_va_space_aarch64(52, &s52), MM_OK);
    cr_assert_eq(mm_va_space_sign_extended(57, 5, &s57), MM_OK);
    struct {
        const mm_va_space_t *space;
        uint64_t phys_top, region;
    } cases[] = {
        /* 512 GiB of kernel range: the default 4 TiB heap cannot fit. */
        {&s39, 4ull << 30, 16ull << 30},
        {&s48, 64ull << 30, 0},
        {&s52, 1ull << 48, 0},
        {&s57, 1ull << 52, 0},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        layout_params_t p = {.space = cases[i].space,
                             .hhdm_base = cases[i].space->kernel_lo,
                             .phys_top = cases[i].phys_top,
                             .heap_size = cases[i].region,
                             .stacks_size = cases[i].region,
                             .mmio_size = cases[i].region};
        layout_t l = compute_ok(&p);
        assert_sound(&l);
        assert_guard_gaps(&l);
        cr_assert(mm_va_space_equal(&l.space, cases[i].space));
        cr_assert_eq(l.regions[LAYOUT_HHDM].base, cases[i].space->kernel_lo);
    }
    /* The defaults do not fit 39 bits: a region would run past 2^64. */
    layout_params_t p = {.space = &s39, .hhdm_base = s39.kernel_lo, .phys_top = 4ull << 30};
    layout_t l;
    cr_assert_neq(layout_compute(&p, &l), MM_OK);
}

/* issue 21: layout_compute rejected an HHDM at 0xffff000000000000, which is
 * where a 48-bit AArch64 kernel puts it (the TTBR1 range's first address). */
Test(layout, aarch64_48_bit_hhdm_at_the_kernel_range_start)
{
    mm_va_space_t s;
    cr_assert_eq(mm_va_space_aarch64(48, &s), MM_OK);
    layout_params_t p = {.space = &s, .hhdm_base = 0xffff000000000000ull, .phys_top = 4ull << 30};
    layout_t l = compute_ok(&p);
    assert_sound(&l);
    cr_assert_eq(l.regions[LAYOUT_HHDM].base, 0xffff000000000000ull);
    cr_assert(l.space.kernel_root_separate);
    /* The same base is outside x86_64's 4-level kernel half. */
    p.space = &S4;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_NOT_CANONICAL);
    /* Below the 48-bit range: the gap between TTBR0 and TTBR1. */
    p.space = &s;
    p.hhdm_base = 0xfffe000000000000ull;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_NOT_CANONICAL);
}

/* Invalid descriptors are rejected, and a region may not run past the
 * kernel range's last address when that is below 2^64 - 1. */
Test(layout, invalid_descriptors_and_a_short_kernel_range)
{
    layout_t l;
    const mm_va_space_t bad[] = {
        {0, 0, HHDM4, UINT64_MAX, 4, false},                /* empty user range */
        {0, HHDM4 + 4096, HHDM4, UINT64_MAX, 4, false},     /* halves overlap */
        {0, 1ull << 47, HHDM4, HHDM4 - 1, 4, false},        /* kernel range reversed */
        {0, (1ull << 47) + 8, HHDM4, UINT64_MAX, 4, false}, /* unaligned bound */
        {0, 1ull << 47, HHDM4, UINT64_MAX - 8, 4, false},   /* unaligned kernel end */
        {0, 1ull << 47, HHDM4, UINT64_MAX, 6, false},       /* too many levels */
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        layout_params_t p = {.space = &bad[i], .hhdm_base = HHDM4, .phys_top = 1ull << 30};
        cr_assert_eq(layout_compute(&p, &l), MM_ERR_INVALID, "descriptor %u", i);
    }
    /* A kernel range ending 1 GiB below 2^64: the default kernel image
     * (the last 2 GiB) starts in it but runs past its end. */
    mm_va_space_t shorter = S4;
    shorter.kernel_hi = UINT64_MAX - (1ull << 30);
    layout_params_t p = {.space = &shorter, .hhdm_base = HHDM4, .phys_top = 1ull << 30};
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_RANGE);
    p.kernel_base = 0xffffffff00000000ull;
    l = compute_ok(&p);
    assert_sound(&l);
}

/* Every placement step can fail on its own: the stacks or MMIO region
 * running past a short kernel range, and a heap or stacks region ending
 * exactly at 2^64 (no room for the guard gap after it). */
Test(layout, each_region_placement_fails_on_its_own)
{
    layout_t l;
    const uint64_t G = 1ull << 30;
    mm_va_space_t s = S4;
    layout_params_t p = {.space = &s, .hhdm_base = HHDM4, .phys_top = G, .heap_size = G,
                         .stacks_size = G, .mmio_size = G, .kernel_size = 2ull << 20};
    /* HHDM [0,1G) guard heap [2G,3G) guard stacks [4G,5G) guard MMIO [6G,7G). */
    s.kernel_hi = HHDM4 + 4 * G + G / 2 - 1;
    p.kernel_base = HHDM4 + 4 * G + G / 4;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_RANGE, "stacks run past the kernel range");
    s.kernel_hi = HHDM4 + 6 * G + G / 2 - 1;
    p.kernel_base = HHDM4 + 6 * G + G / 4;
    cr_assert_eq(layout_compute(&p, &l), MM_ERR_RANGE, "MMIO runs past the kernel range");
    s.kernel_hi = HHDM4 + 8 * G - 1;
    p.kernel_base = HHDM4 + 7 * G + G / 2;
    l = compute_ok(&p);
    assert_sound(&l);

    layout_params_t q = {.space = &S4, .hhdm_base = HHDM4, .phys_top = G, .heap_size = G,
                         .stacks_size = G, .mmio_size = G, .kernel_base = HHDM4 + 64 * G};
    q.regions_base = 0xffffffffc0000000ull; /* the heap ends at 2^64 */
    cr_assert_eq(layout_compute(&q, &l), MM_ERR_RANGE);
    q.regions_base = 0xffffffff40000000ull; /* the stacks end at 2^64 */
    cr_assert_eq(layout_compute(&q, &l), MM_ERR_RANGE);
}
