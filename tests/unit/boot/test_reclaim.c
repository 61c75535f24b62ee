/*
 * boot_reclaim (tests/qemu/reclaim.c) with the real PMM over simulated
 * physical memory: OVMF's maps as the test kernel builds them (the EFI map
 * converted, plus the kernel image and the boot information reserved), and
 * made-up maps for the corner cases. The frames to expect are counted one
 * by one, by brute force, from the map and the PMM's frame states.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "boot_fixture.h"
#include "bootmap.h"
#include "efi_memmap.h"
#include "mm_test.h"
#include "pmm_fixture.h"
#include "reclaim.h"

#define PG 4096ull
#define MAP_CAP 64
#define KERNEL_BASE 0x100000ull
#define KERNEL_END 0x1cd000ull /* the test kernel's extent in the captures */
#define MBI_BASE 0x88000ull

/* A frame the reclaim must release: wholly inside a reclaimable entry, not
 * touched by an entry of a winning type, below the span, reserved now. */
static bool frame_reclaimable(pmm_t *p, const pmm_region_t *m, size_t n, uint64_t f)
{
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        uint64_t lo = m[i].base, hi = m[i].base + m[i].length;
        if (m[i].length == 0 || m[i].type == PMM_REGION_USABLE)
            continue;
        if (m[i].type == PMM_REGION_BOOTLOADER_RECLAIMABLE) {
            inside = inside || (lo <= f && f + PG <= hi);
        } else if (lo < f + PG && hi > f) {
            return false;
        }
    }
    return inside && f != 0 && pmm_frame_state(p, f) == PMM_FRAME_RESERVED;
}

static uint64_t count_frames(pmm_t *p, const pmm_region_t *m, size_t n, uint64_t span,
                             pmm_frame_state_t want, bool *list)
{
    uint64_t c = 0;
    for (uint64_t f = 0; f < span; f++) {
        if (list) {
            if (list[f] && pmm_frame_state(p, f * PG) == want)
                c++;
        } else if (frame_reclaimable(p, m, n, f * PG)) {
            c++;
        }
    }
    return c;
}

/* The PMM over simulated memory large enough for every entry below 1 TiB,
 * through the pmm tests' fixture (the one place these tests initialise a
 * PMM). */
static void init_pmm(pmm_t *p, const pmm_region_t *m, size_t n)
{
    uint64_t top = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i].base + m[i].length < (1ull << 40) && m[i].base + m[i].length > top)
            top = m[i].base + m[i].length;
    fx_init(p, m, n, (top + (1ull << 30) - 1) & ~((1ull << 30) - 1));
}

static pmm_stats_t stats(pmm_t *p)
{
    pmm_stats_t s;
    cr_assert_eq(pmm_get_stats(p, &s), MM_OK);
    return s;
}

static void reclaim_capture(const char *file)
{
    size_t size;
    uint8_t *mbi = boot_load(file, &size);
    mb2_info_t in = boot_parse_capture(mbi, size);
    pmm_region_t m[MAP_CAP];
    size_t n;
    cr_assert_eq(efi_mmap_to_pmm(in.efi_mmap, in.efi_desc_size, in.efi_desc_count, m, MAP_CAP - 2,
                                 &n, NULL),
                 EFI_MMAP_OK);
    m[n++] = (pmm_region_t){KERNEL_BASE, KERNEL_END - KERNEL_BASE, PMM_REGION_KERNEL_AND_MODULES};
    m[n++] = (pmm_region_t){MBI_BASE, size, PMM_REGION_KERNEL_AND_MODULES};
    free(mbi);

    static pmm_t p;
    init_pmm(&p, m, n);
    pmm_stats_t s0 = stats(&p);
    uint64_t span = s0.span_frames;
    bool *expect = calloc(span, 1);
    uint64_t expected = 0;
    for (uint64_t f = 0; f < span; f++)
        if (frame_reclaimable(&p, m, n, f * PG))
            expect[f] = true, expected++;
    /* Above the span: reclaimable frames the bitmap cannot take. */
    uint64_t beyond = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i].type == PMM_REGION_BOOTLOADER_RECLAIMABLE && m[i].base + m[i].length > span * PG)
            beyond += (m[i].base + m[i].length - (m[i].base > span * PG ? m[i].base : span * PG)) /
                      PG;

    reclaim_result_t r;
    cr_assert_eq(boot_reclaim(&p, m, n, &r), MM_OK);
    pmm_stats_t s1 = stats(&p);
    cr_expect_eq(r.status, MM_OK, "%s: %s", file, mm_status_str(r.status));
    cr_expect_eq(r.released_frames, expected, "%s", file);
    cr_expect_eq(s1.free_frames - s0.free_frames, expected, "%s: free count grew by that", file);
    cr_expect_eq(s1.usable_frames - s0.usable_frames, expected);
    cr_expect_eq(r.beyond_span_frames, beyond, "%s", file);
    cr_expect_gt(expected, 10000, "%s: GRUB's heap and boot-services memory come back", file);
    cr_expect_eq(count_frames(&p, m, n, span, PMM_FRAME_FREE, expect), expected,
                 "each expected frame is free now");
    for (uint64_t a = KERNEL_BASE; a < KERNEL_END; a += PG)
        cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_RESERVED, "kernel frame %#llx",
                     (unsigned long long)a);
    for (uint64_t a = MBI_BASE; a < MBI_BASE + size; a += PG)
        cr_assert_eq(pmm_frame_state(&p, a), PMM_FRAME_RESERVED, "boot information");
    cr_expect_eq(pmm_frame_state(&p, 0), PMM_FRAME_RESERVED, "frame 0 (boot-services code)");
    const char *why = NULL;
    cr_expect_eq(pmm_check(&p, &why), MM_OK, "%s", why ? why : "");

    /* Again: everything is managed now, nothing is released twice. */
    reclaim_result_t again;
    cr_assert_eq(boot_reclaim(&p, m, n, &again), MM_OK);
    cr_expect_eq(again.released_frames, 0);
    cr_expect_eq(again.status, MM_ERR_EXISTS);
    cr_expect_eq(stats(&p).free_frames, s1.free_frames);
    free(expect);
}

Test(reclaim, ovmf_256M)
{
    reclaim_capture("grub-uefi-256M.mbi");
}

Test(reclaim, ovmf_2G)
{
    reclaim_capture("grub-uefi-2G.mbi");
}

Test(reclaim, ovmf_8G)
{
    reclaim_capture("grub-uefi-8G.mbi");
}

Test(reclaim, bios_map_has_nothing_to_give_back)
{
    size_t size;
    uint8_t *mbi = boot_load("grub-bios-2G.mbi", &size);
    mb2_info_t in = boot_parse_capture(mbi, size);
    pmm_region_t m[MAP_CAP];
    size_t n;
    cr_assert(mb2_mmap_to_pmm(&in, m, MAP_CAP, &n));
    free(mbi);
    static pmm_t p;
    init_pmm(&p, m, n);
    uint64_t free0 = stats(&p).free_frames;
    reclaim_result_t r;
    cr_assert_eq(boot_reclaim(&p, m, n, &r), MM_OK);
    cr_expect_eq(r.released_frames, 0);
    cr_expect_eq(r.runs, 0);
    cr_expect_eq(r.status, MM_OK);
    cr_expect_eq(stats(&p).free_frames, free0);
}

Test(reclaim, corner_cases)
{
    /* Usable memory to 64 MiB; reclaimable ranges that start at frame 0,
     * are unaligned, overlap a reserved range, overlap each other, and
     * end above the last usable frame. */
    pmm_region_t m[] = {
        {0x0, 0x3000, PMM_REGION_BOOTLOADER_RECLAIMABLE},       /* frame 0 stays out */
        {0x10000, 0x1000000, PMM_REGION_USABLE},
        {0x2000800, 0x2800, PMM_REGION_BOOTLOADER_RECLAIMABLE}, /* 2 whole frames inside */
        {0x2100000, 0x100000, PMM_REGION_BOOTLOADER_RECLAIMABLE},
        {0x2180000, 0x10, PMM_REGION_RESERVED},                 /* cuts one frame out */
        {0x21f0000, 0x20000, PMM_REGION_BOOTLOADER_RECLAIMABLE}, /* overlaps the one above */
        {0x2300000, 0x1d00000, PMM_REGION_USABLE},              /* span ends at 64 MiB */
        {0x3ff0000, 0x20000, PMM_REGION_BOOTLOADER_RECLAIMABLE}, /* widens the span */
        {0x2101000, 0x1000, PMM_REGION_KERNEL_AND_MODULES},
    };
    const size_t n = sizeof m / sizeof m[0];
    static pmm_t p;
    init_pmm(&p, m, n);
    uint64_t span = stats(&p).span_frames;
    cr_assert_eq(span * PG, 0x4010000, "the span reaches the end of the reclaimable range");
    uint64_t expected = count_frames(&p, m, n, span, PMM_FRAME_RESERVED, NULL);
    /* frames 1, 2; 0x2001000, 0x2002000; 0x2100000-0x2210000 minus
     * 0x2180000 and 0x2101000; 0x3ff0000-0x4010000 */
    cr_assert_eq(expected, 2 + 2 + (0x110 - 2) + 0x20);
    uint64_t free0 = stats(&p).free_frames;
    reclaim_result_t r;
    cr_assert_eq(boot_reclaim(&p, m, n, &r), MM_OK);
    cr_expect_eq(r.status, MM_OK, "%s", mm_status_str(r.status));
    cr_expect_eq(r.released_frames, expected);
    cr_expect_eq(stats(&p).free_frames - free0, expected);
    cr_expect_eq(r.beyond_span_frames, 0);
    cr_expect_eq(pmm_frame_state(&p, 0x400f000), PMM_FRAME_FREE, "the top reclaimable frame");
    cr_expect_eq(pmm_frame_state(&p, 0), PMM_FRAME_RESERVED);
    cr_expect_eq(pmm_frame_state(&p, 0x1000), PMM_FRAME_FREE);
    cr_expect_eq(pmm_frame_state(&p, 0x2000000), PMM_FRAME_RESERVED, "partly reclaimable");
    cr_expect_eq(pmm_frame_state(&p, 0x2001000), PMM_FRAME_FREE);
    cr_expect_eq(pmm_frame_state(&p, 0x2180000), PMM_FRAME_RESERVED, "reserved wins");
    cr_expect_eq(pmm_frame_state(&p, 0x2101000), PMM_FRAME_RESERVED, "the kernel stays");
    cr_expect_eq(pmm_frame_state(&p, 0x2200000), PMM_FRAME_FREE, "overlap released once");
    cr_expect_eq(pmm_check(&p, NULL), MM_OK);
}

Test(reclaim, uninitialised_pmm)
{
    static pmm_t p;
    reclaim_result_t r;
    pmm_region_t m[1] = {{0x1000, 0x1000, PMM_REGION_BOOTLOADER_RECLAIMABLE}};
    cr_expect_eq(boot_reclaim(&p, m, 1, &r), MM_ERR_STATE);
}
