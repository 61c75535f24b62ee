/*
 * The UEFI memory map (as GRUB's Multiboot2 EFI memory-map tag hands it
 * over): descriptors decoded with the firmware's stride, summarised by type,
 * and converted into the PMM's map.
 *
 * Freestanding C11, no state; the test kernel and the host unit tests
 * (tests/unit/boot/) compile it.
 *
 * EFI type -> PMM type (docs: tests/qemu/README.md, "EFI memory types"):
 *   conventional                                   -> usable
 *   loader code/data, boot-services code/data      -> bootloader reclaimable
 *   ACPI reclaim                                   -> ACPI reclaimable
 *   ACPI NVS                                       -> ACPI NVS
 *   unusable (errors detected)                     -> bad memory
 *   reserved, runtime-services code/data, MMIO, MMIO port space, PAL code,
 *   persistent, unaccepted and every unknown type  -> reserved
 * Boot services are over once the kernel runs (GRUB exits them unless the
 * kernel asks otherwise), and so is GRUB: its code and data, like the
 * firmware's boot-services memory, are RAM the kernel may take once it has
 * copied what it needs from the boot information.
 */
#ifndef KTEST_EFI_MEMMAP_H
#define KTEST_EFI_MEMMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/pmm.h>

/* EFI_MEMORY_TYPE (UEFI 2.10, section 7.2). */
enum efi_memory_type {
    EFI_RESERVED_MEMORY = 0,
    EFI_LOADER_CODE = 1,
    EFI_LOADER_DATA = 2,
    EFI_BOOT_SERVICES_CODE = 3,
    EFI_BOOT_SERVICES_DATA = 4,
    EFI_RUNTIME_SERVICES_CODE = 5,
    EFI_RUNTIME_SERVICES_DATA = 6,
    EFI_CONVENTIONAL_MEMORY = 7,
    EFI_UNUSABLE_MEMORY = 8,
    EFI_ACPI_RECLAIM_MEMORY = 9,
    EFI_ACPI_MEMORY_NVS = 10,
    EFI_MEMORY_MAPPED_IO = 11,
    EFI_MEMORY_MAPPED_IO_PORT_SPACE = 12,
    EFI_PAL_CODE = 13,
    EFI_PERSISTENT_MEMORY = 14,
    EFI_UNACCEPTED_MEMORY = 15,
    EFI_MEMORY_TYPE_COUNT = 16, /* types above are "unknown" */
};

#define EFI_PAGE_SIZE 4096u
#define EFI_DESC_MIN_SIZE 40u /* u32 type, pad, u64 phys, virt, pages, attribute */

/* One descriptor, decoded. */
typedef struct efi_mem_desc {
    uint32_t type;
    uint64_t phys_start;
    uint64_t virt_start;
    uint64_t pages;
    uint64_t attribute;
} efi_mem_desc_t;

/* Per type: how many descriptors and pages. Index EFI_MEMORY_TYPE_COUNT
 * counts every unknown type together. */
typedef struct efi_mmap_summary {
    struct {
        uint32_t count;
        uint64_t pages;
    } type[EFI_MEMORY_TYPE_COUNT + 1];
    uint32_t descriptors;
    uint32_t empty; /* NumberOfPages == 0, skipped */
} efi_mmap_summary_t;

typedef enum efi_mmap_error {
    EFI_MMAP_OK = 0,
    EFI_MMAP_ERR_DESC_SIZE, /* descriptor stride below 40 */
    EFI_MMAP_ERR_OVERFLOW,  /* NumberOfPages * 4096 or the end reaches 2^64 */
    EFI_MMAP_ERR_FULL,      /* the output array is too small (nothing is dropped silently) */
    EFI_MMAP_ERR_COUNT_
} efi_mmap_error_t;

/* Descriptor i of `descs` (stride desc_size, which the caller validated:
 * >= EFI_DESC_MIN_SIZE and i < count). */
efi_mem_desc_t efi_mmap_desc(const uint8_t *descs, uint32_t desc_size, size_t i);

/* The table above. O(1). */
pmm_region_type_t efi_type_to_pmm(uint32_t efi_type);

/* Converts `count` descriptors (stride desc_size) into at most `cap` PMM
 * entries at `out`, then sorts and merges them (pmm_map_normalize), so the
 * ~120 descriptors of an OVMF machine become a few tens of entries. Empty
 * descriptors are skipped; overlapping ones are kept as they are (the PMM
 * resolves overlaps: reserved wins). `summary` (may be NULL) receives the
 * per-type counts. On error *n_out is 0 and nothing past out[cap) is
 * written. O(count * n_out) (insertion sort into the output). */
efi_mmap_error_t efi_mmap_to_pmm(const uint8_t *descs, uint32_t desc_size, size_t count,
                                 pmm_region_t *out, size_t cap, size_t *n_out,
                                 efi_mmap_summary_t *summary);

/* Static names ("boot-services data", "unknown"), never NULL. */
const char *efi_type_name(uint32_t type);
const char *efi_mmap_error_str(efi_mmap_error_t err);

#endif /* KTEST_EFI_MEMMAP_H */
