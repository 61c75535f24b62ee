/*
 * Fixtures of the boot tests: Multiboot2 structures captured from GRUB
 * (fixtures/NAME.mbi, the kernel's "bootdump" hex lines), a builder for
 * malformed ones, and small helpers over PMM maps.
 */
#ifndef BOOT_FIXTURE_H
#define BOOT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/pmm.h>

#include "multiboot2.h"

/* The six captures: GRUB 2.06 on SeaBIOS and on OVMF, -m 256M, 2G, 8G. */
typedef struct boot_capture {
    const char *file;  /* under fixtures/ */
    bool uefi;
    uint64_t mem;      /* -m, bytes */
    uint32_t total_size;
    size_t mmap_count;     /* memory-map tag entries */
    size_t efi_desc_count; /* EFI descriptors (0 on BIOS) */
} boot_capture_t;

extern const boot_capture_t boot_captures[];
extern const size_t boot_capture_count;

/* Loads fixtures/<file> into a fresh 8-aligned buffer of exactly the bytes
 * it holds (ASan sees any read past it). Fails the test when unreadable.
 * Free with free(). */
uint8_t *boot_load(const char *file, size_t *size);

/* Parses a capture and asserts success. */
mb2_info_t boot_parse_capture(const uint8_t *mbi, size_t size);

/* A copy of `len` bytes in a buffer of exactly `len` bytes, 8-aligned. */
uint8_t *boot_copy(const void *src, size_t len);

/* Builder of Multiboot2 structures, tags 8-aligned; total_size filled in
 * by mb_finish (the end tag is not added by itself). */
typedef struct mb_builder {
    uint8_t buf[4096] __attribute__((aligned(8)));
    size_t len;
} mb_builder_t;

void mb_begin(mb_builder_t *b);
/* Appends a tag with `size` in its header and `body_len` bytes of body
 * (which may differ from size - 8 to make malformed tags), then pads. */
void mb_tag(mb_builder_t *b, uint32_t type, uint32_t size, const void *body, size_t body_len);
/* A well-formed tag whose size is 8 + body_len. */
void mb_tag_ok(mb_builder_t *b, uint32_t type, const void *body, size_t body_len);
void mb_end(mb_builder_t *b);
/* Writes total_size = len and returns a copy of exactly len bytes. */
uint8_t *mb_finish(mb_builder_t *b);

/* Union of the entries of map[0..n) whose type `pick` accepts, as sorted
 * disjoint [lo, hi) pairs in out (capacity cap); returns the count. */
size_t boot_union(const pmm_region_t *map, size_t n, bool (*pick)(pmm_region_type_t),
                  uint64_t (*out)[2], size_t cap);

#endif /* BOOT_FIXTURE_H */
