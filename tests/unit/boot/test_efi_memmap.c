/*
 * efi_mmap_to_pmm: the type table, OVMF's real maps (fixtures/), the
 * descriptor stride, and bad descriptors.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "boot_fixture.h"
#include "bootmap.h"
#include "efi_memmap.h"

#define MAP_CAP 256

Test(efi_memmap, type_table)
{
    const struct {
        uint32_t efi;
        pmm_region_type_t pmm;
    } table[] = {
        {EFI_RESERVED_MEMORY, PMM_REGION_RESERVED},
        {EFI_LOADER_CODE, PMM_REGION_BOOTLOADER_RECLAIMABLE},
        {EFI_LOADER_DATA, PMM_REGION_BOOTLOADER_RECLAIMABLE},
        {EFI_BOOT_SERVICES_CODE, PMM_REGION_BOOTLOADER_RECLAIMABLE},
        {EFI_BOOT_SERVICES_DATA, PMM_REGION_BOOTLOADER_RECLAIMABLE},
        {EFI_RUNTIME_SERVICES_CODE, PMM_REGION_RESERVED},
        {EFI_RUNTIME_SERVICES_DATA, PMM_REGION_RESERVED},
        {EFI_CONVENTIONAL_MEMORY, PMM_REGION_USABLE},
        {EFI_UNUSABLE_MEMORY, PMM_REGION_BAD_MEMORY},
        {EFI_ACPI_RECLAIM_MEMORY, PMM_REGION_ACPI_RECLAIMABLE},
        {EFI_ACPI_MEMORY_NVS, PMM_REGION_ACPI_NVS},
        {EFI_MEMORY_MAPPED_IO, PMM_REGION_RESERVED},
        {EFI_MEMORY_MAPPED_IO_PORT_SPACE, PMM_REGION_RESERVED},
        {EFI_PAL_CODE, PMM_REGION_RESERVED},
        {EFI_PERSISTENT_MEMORY, PMM_REGION_RESERVED},
        {EFI_UNACCEPTED_MEMORY, PMM_REGION_RESERVED},
        {16, PMM_REGION_RESERVED},
        {0x70000000, PMM_REGION_RESERVED}, /* OEM range */
        {0x80000000, PMM_REGION_RESERVED}, /* OS loader range */
        {UINT32_MAX, PMM_REGION_RESERVED},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        cr_expect_eq(efi_type_to_pmm(table[i].efi), table[i].pmm, "EFI type %#x (%s)",
                     table[i].efi, efi_type_name(table[i].efi));
    cr_expect_str_eq(efi_type_name(EFI_BOOT_SERVICES_DATA), "boot-services data");
    cr_expect_str_eq(efi_type_name(99), "unknown");
    cr_expect_str_eq(efi_mmap_error_str((efi_mmap_error_t)77), "unknown error");
    cr_expect_str_eq(efi_mmap_error_str(EFI_MMAP_ERR_FULL), "too many entries for the output");
}

static bool is_ram(pmm_region_type_t t)
{
    return t == PMM_REGION_USABLE || t == PMM_REGION_BOOTLOADER_RECLAIMABLE;
}

static bool is_reclaimable(pmm_region_type_t t)
{
    return t == PMM_REGION_BOOTLOADER_RECLAIMABLE;
}

Test(efi_memmap, ovmf_maps_convert_sorted_merged_and_complete)
{
    for (size_t c = 0; c < boot_capture_count; c++) {
        const boot_capture_t *cap = &boot_captures[c];
        if (!cap->uefi)
            continue;
        size_t size;
        uint8_t *mbi = boot_load(cap->file, &size);
        mb2_info_t in = boot_parse_capture(mbi, size);
        pmm_region_t map[MAP_CAP];
        size_t n = 0;
        efi_mmap_summary_t sum;
        cr_assert_eq(efi_mmap_to_pmm(in.efi_mmap, in.efi_desc_size, in.efi_desc_count, map,
                                     MAP_CAP, &n, &sum),
                     EFI_MMAP_OK);
        cr_expect_eq(sum.descriptors, cap->efi_desc_count);
        cr_expect_lt(n, 40, "%s: %zu descriptors merge into %zu entries", cap->file,
                     cap->efi_desc_count, n);
        /* Sorted, disjoint (OVMF's map is), neighbours of one type merged. */
        for (size_t i = 1; i < n; i++) {
            cr_expect_geq(map[i].base, map[i - 1].base + map[i - 1].length, "%s entry %zu",
                          cap->file, i);
            cr_expect(map[i].type != map[i - 1].type ||
                          map[i].base > map[i - 1].base + map[i - 1].length,
                      "%s: entries %zu and %zu should have merged", cap->file, i - 1, i);
        }
        /* Bytes per PMM type add up to the descriptors' pages. */
        uint64_t by_type[PMM_REGION_TYPE_COUNT] = {0}, want[PMM_REGION_TYPE_COUNT] = {0};
        for (size_t i = 0; i < n; i++)
            by_type[map[i].type] += map[i].length;
        for (uint32_t t = 0; t <= EFI_MEMORY_TYPE_COUNT; t++)
            want[efi_type_to_pmm(t < EFI_MEMORY_TYPE_COUNT ? t : UINT32_MAX)] +=
                sum.type[t].pages * EFI_PAGE_SIZE;
        for (int t = 0; t < PMM_REGION_TYPE_COUNT; t++)
            cr_expect_eq(by_type[t], want[t], "%s: %s bytes", cap->file,
                         pmm_region_type_str((pmm_region_type_t)t));
        /* What GRUB's own memory-map tag calls available is exactly the
         * conventional, loader and boot-services memory of the EFI map. */
        pmm_region_t grub[MAP_CAP];
        size_t gn = 0;
        cr_assert(mb2_mmap_to_pmm(&in, grub, MAP_CAP, &gn));
        uint64_t a[MAP_CAP][2], b[MAP_CAP][2];
        size_t an = boot_union(map, n, is_ram, a, MAP_CAP);
        size_t bn = boot_union(grub, gn, is_ram, b, MAP_CAP);
        cr_expect_eq(an, bn, "%s", cap->file);
        cr_expect_eq(memcmp(a, b, an * sizeof a[0]), 0, "%s: RAM differs", cap->file);
        /* Most of what GRUB leaves behind is its own heap (loader code):
         * reclaiming is worth it. */
        uint64_t r[MAP_CAP][2];
        size_t rn = boot_union(map, n, is_reclaimable, r, MAP_CAP);
        uint64_t rbytes = 0;
        for (size_t i = 0; i < rn; i++)
            rbytes += r[i][1] - r[i][0];
        cr_expect_gt(rbytes, cap->mem / 16, "%s: %llu reclaimable bytes", cap->file,
                     (unsigned long long)rbytes);
        free(mbi);
    }
}

/* Descriptors with a stride of `stride` bytes; bytes past the structure
 * are filled with garbage the converter must not read as fields. */
static uint8_t *descs(const efi_mem_desc_t *d, size_t n, uint32_t stride)
{
    uint8_t *p = malloc(n * stride);
    memset(p, 0xa5, n * stride);
    for (size_t i = 0; i < n; i++) {
        uint8_t *q = p + i * stride;
        memcpy(q, &d[i].type, 4);
        memcpy(q + 8, &d[i].phys_start, 8);
        memcpy(q + 16, &d[i].virt_start, 8);
        memcpy(q + 24, &d[i].pages, 8);
        memcpy(q + 32, &d[i].attribute, 8);
    }
    return p;
}

static const efi_mem_desc_t sample[] = {
    {EFI_CONVENTIONAL_MEMORY, 0x100000, 0, 16, 0xf},
    {EFI_BOOT_SERVICES_DATA, 0x110000, 0, 4, 0xf},
    {EFI_BOOT_SERVICES_CODE, 0x114000, 0, 4, 0xf}, /* merges with the one before */
    {EFI_RUNTIME_SERVICES_DATA, 0x118000, 0, 2, 0x800000000000000f},
    {EFI_CONVENTIONAL_MEMORY, 0x11a000, 0, 6, 0xf},
};

Test(efi_memmap, stride_larger_than_the_structure)
{
    const size_t n = sizeof sample / sizeof sample[0];
    pmm_region_t m40[8], m48[8], m64[8];
    size_t n40, n48, n64;
    uint8_t *d40 = descs(sample, n, 40), *d48 = descs(sample, n, 48), *d64 = descs(sample, n, 64);
    cr_assert_eq(efi_mmap_to_pmm(d40, 40, n, m40, 8, &n40, NULL), EFI_MMAP_OK);
    cr_assert_eq(efi_mmap_to_pmm(d48, 48, n, m48, 8, &n48, NULL), EFI_MMAP_OK);
    cr_assert_eq(efi_mmap_to_pmm(d64, 64, n, m64, 8, &n64, NULL), EFI_MMAP_OK);
    cr_assert_eq(n40, 4);
    cr_expect_eq(n48, n40);
    cr_expect_eq(n64, n40);
    cr_expect_eq(memcmp(m40, m48, n40 * sizeof m40[0]), 0);
    cr_expect_eq(memcmp(m40, m64, n40 * sizeof m40[0]), 0);
    cr_expect_eq(m40[1].base, 0x110000);
    cr_expect_eq(m40[1].length, 0x8000, "boot-services data and code: one reclaimable run");
    cr_expect_eq(m40[1].type, PMM_REGION_BOOTLOADER_RECLAIMABLE);
    cr_expect_eq(m40[2].type, PMM_REGION_RESERVED);
    free(d40);
    free(d48);
    free(d64);
}

Test(efi_memmap, descriptor_size_below_the_structure)
{
    uint8_t *d = descs(sample, 1, 48);
    pmm_region_t m[4];
    size_t n = 99;
    cr_expect_eq(efi_mmap_to_pmm(d, 32, 1, m, 4, &n, NULL), EFI_MMAP_ERR_DESC_SIZE);
    cr_expect_eq(n, 0);
    cr_expect_eq(efi_mmap_to_pmm(d, 0, 1, m, 4, &n, NULL), EFI_MMAP_ERR_DESC_SIZE);
    free(d);
}

Test(efi_memmap, zero_length_descriptors_are_skipped_and_counted)
{
    const efi_mem_desc_t z[] = {
        {EFI_CONVENTIONAL_MEMORY, 0x100000, 0, 0, 0},
        {EFI_RESERVED_MEMORY, 0x200000, 0, 0, 0},
        {EFI_CONVENTIONAL_MEMORY, 0x300000, 0, 1, 0},
    };
    uint8_t *d = descs(z, 3, 48);
    pmm_region_t m[4];
    size_t n;
    efi_mmap_summary_t s;
    cr_assert_eq(efi_mmap_to_pmm(d, 48, 3, m, 4, &n, &s), EFI_MMAP_OK);
    cr_expect_eq(n, 1);
    cr_expect_eq(m[0].base, 0x300000);
    cr_expect_eq(s.empty, 2);
    cr_expect_eq(s.descriptors, 3);
    cr_expect_eq(s.type[EFI_CONVENTIONAL_MEMORY].count, 2);
    free(d);
}

Test(efi_memmap, overlapping_descriptors_are_kept_for_the_pmm)
{
    /* Conventional memory with a runtime range inside it, and two
     * conventional ranges that overlap: the latter merge, the former stay
     * overlapping (pmm_init: reserved wins), in base order. */
    const efi_mem_desc_t o[] = {
        {EFI_CONVENTIONAL_MEMORY, 0x200000, 0, 256, 0},
        {EFI_RUNTIME_SERVICES_CODE, 0x240000, 0, 4, 0},
        {EFI_CONVENTIONAL_MEMORY, 0x280000, 0, 256, 0},
        {EFI_CONVENTIONAL_MEMORY, 0x100000, 0, 16, 0},
    };
    uint8_t *d = descs(o, 4, 48);
    pmm_region_t m[8];
    size_t n;
    cr_assert_eq(efi_mmap_to_pmm(d, 48, 4, m, 8, &n, NULL), EFI_MMAP_OK);
    cr_assert_eq(n, 3);
    cr_expect_eq(m[0].base, 0x100000);
    cr_expect_eq(m[1].base, 0x200000);
    cr_expect_eq(m[1].length, 0x180000, "0x200000-0x380000 in one usable entry");
    cr_expect_eq(m[1].type, PMM_REGION_USABLE);
    cr_expect_eq(m[2].base, 0x240000);
    cr_expect_eq(m[2].type, PMM_REGION_RESERVED);
    free(d);
}

Test(efi_memmap, descriptors_reaching_2_64_are_rejected)
{
    const efi_mem_desc_t bad[][1] = {
        {{EFI_CONVENTIONAL_MEMORY, 0, 0, UINT64_MAX / 4096 + 1, 0}},  /* pages * 4096 wraps */
        {{EFI_CONVENTIONAL_MEMORY, UINT64_MAX - 0xfff, 0, 1, 0}},     /* end is 2^64 */
        {{EFI_CONVENTIONAL_MEMORY, 0xfffffffffff00000, 0, 0x200, 0}}, /* end past 2^64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *d = descs(bad[i], 1, 48);
        pmm_region_t m[2];
        size_t n = 7;
        cr_expect_eq(efi_mmap_to_pmm(d, 48, 1, m, 2, &n, NULL), EFI_MMAP_ERR_OVERFLOW, "case %zu",
                     i);
        cr_expect_eq(n, 0);
        free(d);
    }
}

Test(efi_memmap, output_too_small_is_an_error)
{
    const size_t n = sizeof sample / sizeof sample[0];
    uint8_t *d = descs(sample, n, 48);
    pmm_region_t m[4] = {0};
    size_t got = 5;
    cr_expect_eq(efi_mmap_to_pmm(d, 48, n, m, 3, &got, NULL), EFI_MMAP_ERR_FULL);
    cr_expect_eq(got, 0);
    cr_expect_eq(m[3].base, 0, "nothing written past the capacity");
    cr_expect_eq(efi_mmap_to_pmm(d, 48, n, m, 4, &got, NULL), EFI_MMAP_OK, "4 is enough");
    free(d);
}
