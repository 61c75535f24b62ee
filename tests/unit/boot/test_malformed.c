/*
 * mb2_parse on malformed structures: each defect is an error code, the
 * result is zeroed, and nothing outside [mbi, mbi + total_size) is read
 * (every structure sits in a heap buffer of exactly its size, so the
 * asan-ubsan build turns an overread into a failure).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "boot_fixture.h"

static mb2_error_t parse_built(mb_builder_t *b)
{
    uint8_t *mbi = mb_finish(b);
    mb2_info_t in;
    memset(&in, 0x5a, sizeof in);
    mb2_error_t err = mb2_parse(mbi, b->len, &in);
    if (err != MB2_OK) {
        mb2_info_t zero;
        memset(&zero, 0, sizeof zero);
        cr_expect_eq(memcmp(&in, &zero, sizeof in), 0, "a failed parse leaves *out zeroed");
    }
    free(mbi);
    return err;
}

Test(malformed, null_misaligned_and_tiny)
{
    mb2_info_t in;
    cr_expect_eq(mb2_parse(NULL, 4096, &in), MB2_ERR_NULL);
    mb_builder_t b;
    mb_begin(&b);
    mb_end(&b);
    uint8_t *mbi = mb_finish(&b);
    cr_expect_eq(mb2_parse(mbi, b.len, &in), MB2_OK, "header + end tag is the smallest");
    uint8_t *odd = malloc(b.len + 4);
    memcpy(odd + 4, mbi, b.len);
    cr_expect_eq(mb2_parse(odd + 4, b.len, &in), MB2_ERR_ALIGN);
    cr_expect_eq(mb2_parse(mbi, 15, &in), MB2_ERR_TOTAL_SIZE, "limit below any structure");
    free(odd);
    free(mbi);
}

Test(malformed, total_size_out_of_bounds)
{
    mb_builder_t b;
    mb_begin(&b);
    mb_end(&b);
    uint8_t *mbi = mb_finish(&b);
    mb2_info_t in;
    for (uint32_t total = 0; total < 16; total++) {
        memcpy(mbi, &total, 4);
        cr_expect_eq(mb2_parse(mbi, b.len, &in), MB2_ERR_TOTAL_SIZE, "total_size %u", total);
    }
    uint32_t big = (uint32_t)b.len + 8;
    memcpy(mbi, &big, 4);
    cr_expect_eq(mb2_parse(mbi, b.len, &in), MB2_ERR_TOTAL_SIZE, "past the caller's limit");
    big = UINT32_MAX;
    memcpy(mbi, &big, 4);
    cr_expect_eq(mb2_parse(mbi, b.len, &in), MB2_ERR_TOTAL_SIZE);
    free(mbi);
}

Test(malformed, tag_runs_past_total_size)
{
    mb_builder_t b;
    mb_begin(&b);
    mb_tag(&b, MB2_TAG_CMDLINE, 8 + 64, "abc", 4); /* claims 64 body bytes */
    mb_end(&b);
    cr_expect_eq(parse_built(&b), MB2_ERR_TAG_TRUNCATED);
}

Test(malformed, sizes_that_overflow)
{
    /* Sizes near 2^32 must not wrap the walk back into the structure. */
    const uint32_t sizes[] = {UINT32_MAX, UINT32_MAX - 7, UINT32_MAX - 6, 0x80000000u};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        mb_builder_t b;
        mb_begin(&b);
        mb_tag(&b, 0x1234, sizes[i], NULL, 0);
        mb_end(&b);
        cr_expect_eq(parse_built(&b), MB2_ERR_TAG_TRUNCATED, "size %#x", sizes[i]);
    }
    /* Memory-map entry sizes: 0 would divide by zero, small ones would
     * let entries overlap the header. */
    const uint32_t entry_sizes[] = {0, 8, 16, 23, 28, UINT32_MAX};
    for (size_t i = 0; i < sizeof entry_sizes / sizeof entry_sizes[0]; i++) {
        uint32_t body[2] = {entry_sizes[i], 0};
        mb_builder_t b;
        mb_begin(&b);
        mb_tag_ok(&b, MB2_TAG_MMAP, body, sizeof body);
        mb_end(&b);
        cr_expect_eq(parse_built(&b), MB2_ERR_MMAP_ENTRY_SIZE, "entry_size %u", entry_sizes[i]);
    }
}

Test(malformed, tag_header_cut_by_total_size)
{
    /* total_size ends 4 bytes into where the next tag header would be. */
    mb_builder_t b;
    mb_begin(&b);
    mb_tag_ok(&b, MB2_TAG_CMDLINE, "abcdefg", 8);
    b.len += 8; /* room for a half header, then cut */
    uint8_t *mbi = mb_finish(&b);
    uint32_t total = (uint32_t)b.len - 4;
    memcpy(mbi, &total, 4);
    mb2_info_t in;
    cr_expect_eq(mb2_parse(mbi, b.len, &in), MB2_ERR_TAG_TRUNCATED);
    free(mbi);
}

Test(malformed, tags_smaller_than_their_fields)
{
    struct {
        uint32_t type, size;
    } cases[] = {
        {0x1234, 0},
        {0x1234, 7},
        {MB2_TAG_CMDLINE, 8},        /* no room for the NUL */
        {MB2_TAG_BASIC_MEMINFO, 12}, /* two u32 fields */
        {MB2_TAG_MMAP, 12},          /* entry_size, entry_version */
        {MB2_TAG_EFI_MMAP, 15},
        {MB2_TAG_EFI64, 12},         /* a u64 pointer */
        {MB2_TAG_ACPI_NEW, 8 + 20},  /* an RSDP 2.0 is 36 bytes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t zeros[64] = {0};
        mb_builder_t b;
        mb_begin(&b);
        mb_tag(&b, cases[i].type, cases[i].size, zeros, cases[i].size > 8 ? cases[i].size - 8 : 0);
        mb_end(&b);
        cr_expect_eq(parse_built(&b), MB2_ERR_TAG_SIZE, "type %u size %u", cases[i].type,
                     cases[i].size);
    }
}

Test(malformed, missing_end_tag)
{
    mb_builder_t b;
    mb_begin(&b);
    mb_tag_ok(&b, MB2_TAG_CMDLINE, "x", 2);
    cr_expect_eq(parse_built(&b), MB2_ERR_NO_END, "the list simply stops");

    /* The last tag fills total_size, but its padding would not. */
    mb_begin(&b);
    mb_tag_ok(&b, MB2_TAG_CMDLINE, "abc", 4); /* size 12, padded to 16 */
    uint8_t *mbi = mb_finish(&b);
    uint32_t total = 8 + 12;
    memcpy(mbi, &total, 4);
    mb2_info_t in;
    cr_expect_eq(mb2_parse(mbi, b.len, &in), MB2_ERR_NO_END);
    free(mbi);
}

Test(malformed, end_tag_of_wrong_size)
{
    mb_builder_t b;
    mb_begin(&b);
    mb_tag(&b, MB2_TAG_END, 16, "\0\0\0\0\0\0\0", 8);
    cr_expect_eq(parse_built(&b), MB2_ERR_END_SIZE);
}

Test(malformed, string_without_nul)
{
    mb_builder_t b;
    mb_begin(&b);
    mb_tag_ok(&b, MB2_TAG_LOADER_NAME, "GRUB", 4);
    mb_end(&b);
    cr_expect_eq(parse_built(&b), MB2_ERR_STRING);
}

Test(malformed, efi_descriptor_size_smaller_than_the_structure)
{
    const uint32_t sizes[] = {0, 24, 32, 36, 44};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t body[8 + 48] = {0};
        memcpy(body, &sizes[i], 4);
        mb_builder_t b;
        mb_begin(&b);
        mb_tag_ok(&b, MB2_TAG_EFI_MMAP, body, sizeof body);
        mb_end(&b);
        cr_expect_eq(parse_built(&b), MB2_ERR_EFI_DESC_SIZE, "descriptor_size %u", sizes[i]);
    }
}

Test(malformed, duplicate_map_tags)
{
    uint32_t body[2] = {24, 0};
    mb_builder_t b;
    mb_begin(&b);
    mb_tag_ok(&b, MB2_TAG_MMAP, body, sizeof body);
    mb_tag_ok(&b, MB2_TAG_MMAP, body, sizeof body);
    mb_end(&b);
    cr_expect_eq(parse_built(&b), MB2_ERR_DUPLICATE);
    mb_begin(&b);
    mb_tag_ok(&b, MB2_TAG_CMDLINE, "a", 2);
    mb_tag_ok(&b, MB2_TAG_CMDLINE, "b", 2);
    mb_end(&b);
    cr_expect_eq(parse_built(&b), MB2_ERR_DUPLICATE);
}

Test(malformed, every_truncation_of_a_real_structure_fails_cleanly)
{
    /* The OVMF capture cut at every byte: each copy is a buffer of exactly
     * the cut size with total_size saying so. Only the full one parses. */
    size_t size;
    uint8_t *full = boot_load("grub-uefi-2G.mbi", &size);
    for (size_t cut = 16; cut <= size; cut++) {
        uint8_t *p = boot_copy(full, cut);
        uint32_t total = (uint32_t)cut;
        memcpy(p, &total, 4);
        mb2_info_t in;
        mb2_error_t err = mb2_parse(p, cut, &in);
        if (cut == size)
            cr_expect_eq(err, MB2_OK);
        else
            cr_expect(err == MB2_ERR_NO_END || err == MB2_ERR_TAG_TRUNCATED,
                      "cut at %zu: %s", cut, mb2_error_str(err));
        free(p);
    }
    free(full);
}

Test(malformed, random_corruption_never_reads_outside)
{
    /* Bytes of the BIOS and UEFI captures overwritten at random (fixed
     * seed): whatever the verdict, a successful parse points inside. */
    const char *files[] = {"grub-bios-2G.mbi", "grub-uefi-2G.mbi"};
    unsigned seed = 12345;
    for (size_t f = 0; f < 2; f++) {
        size_t size;
        uint8_t *orig = boot_load(files[f], &size);
        for (int round = 0; round < 3000; round++) {
            uint8_t *p = boot_copy(orig, size);
            int flips = 1 + round % 4;
            for (int k = 0; k < flips; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % size;
                /* Mostly hit the header words where lengths live. */
                if (round % 2)
                    at &= ~(size_t)7, at += (seed >> 4) % 8 < 4 ? 4 : 0;
                seed = seed * 1103515245u + 12345u;
                p[at] = (uint8_t)(seed >> 16);
            }
            mb2_info_t in;
            if (mb2_parse(p, size, &in) == MB2_OK) {
                cr_assert_leq(in.total_size, size);
                if (in.mmap)
                    cr_assert_leq(in.mmap + in.mmap_count * in.mmap_entry_size, p + size);
                if (in.efi_mmap)
                    cr_assert_leq(in.efi_mmap + in.efi_desc_count * in.efi_desc_size, p + size);
                if (in.cmdline)
                    cr_assert_leq((const uint8_t *)in.cmdline + strlen(in.cmdline), p + size);
            }
            free(p);
        }
        free(orig);
    }
}
