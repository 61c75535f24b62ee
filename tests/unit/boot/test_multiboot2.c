/*
 * mb2_parse on the structures GRUB really hands over (fixtures/): every
 * tag the kernel uses is found where the capture says, on BIOS and UEFI.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "boot_fixture.h"

Test(multiboot2, captures_parse_with_their_tags)
{
    for (size_t c = 0; c < boot_capture_count; c++) {
        const boot_capture_t *cap = &boot_captures[c];
        size_t size;
        uint8_t *mbi = boot_load(cap->file, &size);
        mb2_info_t in = boot_parse_capture(mbi, size);
        cr_expect_eq(in.total_size, cap->total_size, "%s", cap->file);
        cr_expect_eq(size, cap->total_size, "%s", cap->file);
        cr_expect_eq(in.mmap_count, cap->mmap_count, "%s", cap->file);
        cr_expect_eq(in.mmap_entry_size, 24);
        cr_expect_str_eq(in.cmdline, "bootdump");
        cr_expect_str_eq(in.loader_name, "GRUB 2.06-13+deb12u2");
        cr_expect(in.have_meminfo);
        cr_expect(in.have_load_base);
        cr_expect_eq(in.load_base, 0x100000, "the kernel is loaded where it is linked");
        cr_expect_not(in.efi_bs_active, "GRUB exited boot services");
        cr_expect_neq(in.acpi_version, 0, "%s: an RSDP copy", cap->file);
        cr_expect(in.acpi_rsdp >= mbi && in.acpi_rsdp + in.acpi_rsdp_size <= mbi + size);
        cr_expect_eq(memcmp(in.acpi_rsdp, "RSD PTR ", 8), 0);
        if (cap->uefi) {
            cr_expect_eq(in.efi_desc_count, cap->efi_desc_count, "%s", cap->file);
            cr_expect_eq(in.efi_desc_size, 48, "OVMF's stride is larger than the structure");
            cr_expect_eq(in.efi_desc_version, 1);
            cr_expect(in.have_efi64);
            cr_expect_neq(in.efi_systab, 0);
            cr_expect_eq(in.mem_lower_kib, 640);
            cr_expect_eq(in.mem_upper_kib, 7168, "OVMF's hole at 8 MiB ends basic meminfo");
        } else {
            cr_expect_null(in.efi_mmap);
            cr_expect_not(in.have_efi64 || in.have_efi32);
            cr_expect_eq(in.mem_lower_kib, 639);
        }
        free(mbi);
    }
}

Test(multiboot2, bios_map_starts_with_page_zero_available)
{
    size_t size;
    uint8_t *mbi = boot_load("grub-bios-256M.mbi", &size);
    mb2_info_t in = boot_parse_capture(mbi, size);
    mb2_mmap_entry_t e0 = mb2_mmap_entry(&in, 0);
    cr_expect_eq(e0.base, 0);
    cr_expect_eq(e0.length, 0x9fc00, "not a whole number of pages");
    cr_expect_eq(e0.type, MB2_MMAP_AVAILABLE);
    /* Sorted, and the RAM above 1 MiB ends 128 KiB below -m. */
    uint64_t prev = 0;
    for (size_t i = 0; i < in.mmap_count; i++) {
        mb2_mmap_entry_t e = mb2_mmap_entry(&in, i);
        cr_expect_geq(e.base, prev);
        prev = e.base + e.length;
    }
    mb2_mmap_entry_t e3 = mb2_mmap_entry(&in, 3);
    cr_expect_eq(e3.base, 0x100000);
    cr_expect_eq(e3.base + e3.length, (256u << 20) - 0x20000);
    free(mbi);
}

Test(multiboot2, uefi_map_has_grubs_type_20)
{
    size_t size;
    uint8_t *mbi = boot_load("grub-uefi-2G.mbi", &size);
    mb2_info_t in = boot_parse_capture(mbi, size);
    unsigned type20 = 0;
    for (size_t i = 0; i < in.mmap_count; i++)
        type20 += mb2_mmap_entry(&in, i).type == 20;
    cr_expect_eq(type20, 1, "runtime-services code, a type the specification lacks");
    free(mbi);
}

Test(multiboot2, wider_entry_stride_is_respected)
{
    /* entry_size 32: each entry carries 8 bytes the parser must skip. */
    uint8_t body[8 + 2 * 32] = {0};
    uint32_t es = 32, ver = 0;
    memcpy(body, &es, 4);
    memcpy(body + 4, &ver, 4);
    for (int i = 0; i < 2; i++) {
        uint64_t base = (uint64_t)i << 20, len = 0x1000 * (i + 1);
        uint32_t type = 1 + i;
        memcpy(body + 8 + i * 32, &base, 8);
        memcpy(body + 8 + i * 32 + 8, &len, 8);
        memcpy(body + 8 + i * 32 + 16, &type, 4);
        memset(body + 8 + i * 32 + 24, 0xee, 8);
    }
    mb_builder_t b;
    mb_begin(&b);
    mb_tag_ok(&b, MB2_TAG_MMAP, body, sizeof body);
    mb_end(&b);
    uint8_t *mbi = mb_finish(&b);
    mb2_info_t in;
    cr_assert_eq(mb2_parse(mbi, b.len, &in), MB2_OK);
    cr_assert_eq(in.mmap_count, 2);
    mb2_mmap_entry_t e1 = mb2_mmap_entry(&in, 1);
    cr_expect_eq(e1.base, 1u << 20);
    cr_expect_eq(e1.length, 0x2000);
    cr_expect_eq(e1.type, 2);
    free(mbi);
}

Test(multiboot2, unknown_tags_are_skipped)
{
    mb_builder_t b;
    mb_begin(&b);
    mb_tag_ok(&b, 0x7777, "xyz", 3);
    mb_tag_ok(&b, MB2_TAG_CMDLINE, "la57", 5);
    mb_end(&b);
    uint8_t *mbi = mb_finish(&b);
    mb2_info_t in;
    cr_assert_eq(mb2_parse(mbi, b.len, &in), MB2_OK);
    cr_expect_eq(in.tag_count, 2);
    cr_expect_str_eq(in.cmdline, "la57");
    cr_expect_null(in.mmap);
    free(mbi);
}

Test(multiboot2, names_are_never_null)
{
    for (int e = 0; e <= MB2_ERR_COUNT_ + 1; e++)
        cr_expect_not_null(mb2_error_str((mb2_error_t)e));
    cr_expect_str_eq(mb2_error_str((mb2_error_t)999), "unknown error");
    cr_expect_str_eq(mb2_tag_name(MB2_TAG_EFI_MMAP), "efi mmap");
    cr_expect_str_eq(mb2_tag_name(1000), "unknown");
    cr_expect_str_eq(mb2_mmap_type_name(20), "other");
    cr_expect_str_eq(mb2_mmap_type_name(MB2_MMAP_BADRAM), "bad RAM");
}
