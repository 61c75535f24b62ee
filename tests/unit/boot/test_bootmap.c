/*
 * bootmap.c: e820 / Multiboot2 types in the PMM's terms, and the
 * sort-and-merge every converter ends with.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "boot_fixture.h"
#include "bootmap.h"

#define R(b, l, t) ((pmm_region_t){(b), (l), (t)})
#define U PMM_REGION_USABLE
#define RS PMM_REGION_RESERVED
#define BR PMM_REGION_BOOTLOADER_RECLAIMABLE

Test(bootmap, e820_types)
{
    cr_expect_eq(e820_type_to_pmm(1), PMM_REGION_USABLE);
    cr_expect_eq(e820_type_to_pmm(2), PMM_REGION_RESERVED);
    cr_expect_eq(e820_type_to_pmm(3), PMM_REGION_ACPI_RECLAIMABLE);
    cr_expect_eq(e820_type_to_pmm(4), PMM_REGION_ACPI_NVS);
    cr_expect_eq(e820_type_to_pmm(5), PMM_REGION_BAD_MEMORY);
    cr_expect_eq(e820_type_to_pmm(0), PMM_REGION_RESERVED);
    cr_expect_eq(e820_type_to_pmm(20), PMM_REGION_RESERVED, "GRUB's type on UEFI machines");
    cr_expect_eq(e820_type_to_pmm(UINT32_MAX), PMM_REGION_RESERVED);
}

Test(bootmap, add_merges_touching_entries_of_one_type)
{
    pmm_region_t m[4];
    size_t n = 0;
    cr_assert(pmm_map_add(m, &n, 4, R(0x3000, 0x1000, U)));
    cr_assert(pmm_map_add(m, &n, 4, R(0x1000, 0x1000, U)));
    cr_assert_eq(n, 2, "a gap between them");
    cr_assert(pmm_map_add(m, &n, 4, R(0x2000, 0x1000, U)));
    cr_assert_eq(n, 1, "the middle joins both");
    cr_expect_eq(m[0].base, 0x1000);
    cr_expect_eq(m[0].length, 0x3000);
    cr_assert(pmm_map_add(m, &n, 4, R(0x1800, 0x100, RS)));
    cr_assert_eq(n, 2, "another type overlaps and stays apart");
    cr_expect_eq(m[1].type, RS);
    cr_assert(pmm_map_add(m, &n, 4, R(0x0, 0, RS)));
    cr_expect_eq(n, 2, "empty entries are dropped");
}

Test(bootmap, add_at_capacity)
{
    pmm_region_t m[2];
    size_t n = 0;
    cr_assert(pmm_map_add(m, &n, 2, R(0x1000, 0x1000, U)));
    cr_assert(pmm_map_add(m, &n, 2, R(0x5000, 0x1000, U)));
    pmm_region_t before[2];
    memcpy(before, m, sizeof m);
    cr_expect_not(pmm_map_add(m, &n, 2, R(0x9000, 0x1000, U)), "a new slot does not fit");
    cr_expect_eq(n, 2);
    cr_expect_eq(memcmp(before, m, sizeof m), 0, "map unchanged");
    cr_expect(pmm_map_add(m, &n, 2, R(0x0, 0x1000, U)), "joins the first: no slot needed");
    cr_expect(pmm_map_add(m, &n, 2, R(0x4000, 0x1000, U)), "joins the second from below");
    cr_expect_eq(n, 2);
    cr_expect_eq(m[0].base, 0);
    cr_expect_eq(m[1].base, 0x4000);
    cr_expect_eq(m[1].length, 0x2000);
    cr_expect(pmm_map_add(m, &n, 2, R(0x1000, 0x3000, U)), "bridges both");
    cr_expect_eq(n, 1);
    cr_expect_eq(m[0].length, 0x6000);
}

Test(bootmap, normalize_sorts_merges_and_drops_empty)
{
    pmm_region_t m[] = {
        R(0x9000, 0x1000, U), R(0x0, 0, RS), R(0x1000, 0x1000, BR), R(0x2000, 0x2000, BR),
        R(0x8000, 0x1000, U), R(0x1800, 0x100, RS), R(0x1000, 0x800, BR),
    };
    size_t n = pmm_map_normalize(m, sizeof m / sizeof m[0]);
    cr_assert_eq(n, 3);
    cr_expect_eq(m[0].base, 0x1000);
    cr_expect_eq(m[0].length, 0x3000);
    cr_expect_eq(m[0].type, BR);
    cr_expect_eq(m[1].base, 0x1800);
    cr_expect_eq(m[1].type, RS);
    cr_expect_eq(m[2].base, 0x8000);
    cr_expect_eq(m[2].length, 0x2000);
}

Test(bootmap, bios_capture_converts_entry_by_entry)
{
    /* SeaBIOS at 256 MiB: nothing merges, page 0 stays inside an
     * unaligned usable entry (pmm_init shrinks it inward). */
    size_t size;
    uint8_t *mbi = boot_load("grub-bios-256M.mbi", &size);
    mb2_info_t in = boot_parse_capture(mbi, size);
    pmm_region_t m[16];
    size_t n;
    cr_assert(mb2_mmap_to_pmm(&in, m, 16, &n));
    const pmm_region_t want[] = {
        R(0x0, 0x9fc00, U),
        R(0x9fc00, 0x400, RS),
        R(0xf0000, 0x10000, RS),
        R(0x100000, 0xfee0000, U),
        R(0xffe0000, 0x20000, RS),
        R(0xfffc0000, 0x40000, RS),
        R(0xfd00000000, 0x300000000, RS),
    };
    cr_assert_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(m[i].base, want[i].base, "entry %zu", i);
        cr_expect_eq(m[i].length, want[i].length, "entry %zu", i);
        cr_expect_eq(m[i].type, want[i].type, "entry %zu", i);
    }
    cr_expect_not(mb2_mmap_to_pmm(&in, m, 6, &n), "seven entries need seven slots");
    cr_expect_eq(n, 0);
    free(mbi);
}

Test(bootmap, wrapping_memory_map_entry_is_rejected)
{
    uint8_t body[8 + 24] = {0};
    uint32_t es = 24, type = 1;
    uint64_t base = 0xfffffffffffff000, len = 0x1000;
    memcpy(body, &es, 4);
    memcpy(body + 8, &base, 8);
    memcpy(body + 16, &len, 8);
    memcpy(body + 24, &type, 4);
    mb_builder_t b;
    mb_begin(&b);
    mb_tag_ok(&b, MB2_TAG_MMAP, body, sizeof body);
    mb_end(&b);
    uint8_t *mbi = mb_finish(&b);
    mb2_info_t in;
    cr_assert_eq(mb2_parse(mbi, b.len, &in), MB2_OK, "the walk does not judge addresses");
    pmm_region_t m[2];
    size_t n = 9;
    cr_expect_not(mb2_mmap_to_pmm(&in, m, 2, &n), "its end would be 2^64");
    cr_expect_eq(n, 0);
    free(mbi);
}
