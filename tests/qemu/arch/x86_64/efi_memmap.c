/*
 * The UEFI memory map (see efi_memmap.h).
 */
#include "efi_memmap.h"

#include "bootmap.h"

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

efi_mem_desc_t efi_mmap_desc(const uint8_t *descs, uint32_t desc_size, size_t i)
{
    const uint8_t *d = descs + i * desc_size;
    uint32_t type;
    __builtin_memcpy(&type, d, sizeof type);
    return (efi_mem_desc_t){type, ld64(d + 8), ld64(d + 16), ld64(d + 24), ld64(d + 32)};
}

pmm_region_type_t efi_type_to_pmm(uint32_t efi_type)
{
    switch (efi_type) {
    case EFI_CONVENTIONAL_MEMORY:
        return PMM_REGION_USABLE;
    case EFI_LOADER_CODE:
    case EFI_LOADER_DATA:
    case EFI_BOOT_SERVICES_CODE:
    case EFI_BOOT_SERVICES_DATA:
        return PMM_REGION_BOOTLOADER_RECLAIMABLE;
    case EFI_ACPI_RECLAIM_MEMORY:
        return PMM_REGION_ACPI_RECLAIMABLE;
    case EFI_ACPI_MEMORY_NVS:
        return PMM_REGION_ACPI_NVS;
    case EFI_UNUSABLE_MEMORY:
        return PMM_REGION_BAD_MEMORY;
    default:
        /* Runtime services (the firmware keeps running them), MMIO, PAL
         * code, persistent and unaccepted memory, and types this code
         * does not know: never handed out. */
        return PMM_REGION_RESERVED;
    }
}

efi_mmap_error_t efi_mmap_to_pmm(const uint8_t *descs, uint32_t desc_size, size_t count,
                                 pmm_region_t *out, size_t cap, size_t *n_out,
                                 efi_mmap_summary_t *summary)
{
    efi_mmap_summary_t sum = {0};
    size_t n = 0;
    *n_out = 0;
    if (desc_size < EFI_DESC_MIN_SIZE)
        return EFI_MMAP_ERR_DESC_SIZE;
    for (size_t i = 0; i < count; i++) {
        efi_mem_desc_t d = efi_mmap_desc(descs, desc_size, i);
        unsigned t = d.type < EFI_MEMORY_TYPE_COUNT ? d.type : EFI_MEMORY_TYPE_COUNT;
        sum.descriptors++;
        sum.type[t].count++;
        sum.type[t].pages += d.pages;
        if (d.pages == 0) {
            sum.empty++;
            continue;
        }
        /* The end must be representable: the PMM's map is base + length. */
        if (d.pages > UINT64_MAX / EFI_PAGE_SIZE ||
            d.pages * EFI_PAGE_SIZE > UINT64_MAX - d.phys_start)
            return EFI_MMAP_ERR_OVERFLOW;
        pmm_region_t r = {d.phys_start, d.pages * EFI_PAGE_SIZE, efi_type_to_pmm(d.type)};
        if (!pmm_map_add(out, &n, cap, r))
            return EFI_MMAP_ERR_FULL;
    }
    *n_out = n;
    if (summary)
        *summary = sum;
    return EFI_MMAP_OK;
}

const char *efi_type_name(uint32_t type)
{
    static const char *const names[EFI_MEMORY_TYPE_COUNT] = {
        [EFI_RESERVED_MEMORY] = "reserved",
        [EFI_LOADER_CODE] = "loader code",
        [EFI_LOADER_DATA] = "loader data",
        [EFI_BOOT_SERVICES_CODE] = "boot-services code",
        [EFI_BOOT_SERVICES_DATA] = "boot-services data",
        [EFI_RUNTIME_SERVICES_CODE] = "runtime-services code",
        [EFI_RUNTIME_SERVICES_DATA] = "runtime-services data",
        [EFI_CONVENTIONAL_MEMORY] = "conventional",
        [EFI_UNUSABLE_MEMORY] = "unusable",
        [EFI_ACPI_RECLAIM_MEMORY] = "ACPI reclaim",
        [EFI_ACPI_MEMORY_NVS] = "ACPI NVS",
        [EFI_MEMORY_MAPPED_IO] = "MMIO",
        [EFI_MEMORY_MAPPED_IO_PORT_SPACE] = "MMIO port space",
        [EFI_PAL_CODE] = "PAL code",
        [EFI_PERSISTENT_MEMORY] = "persistent",
        [EFI_UNACCEPTED_MEMORY] = "unaccepted",
    };
    return type < EFI_MEMORY_TYPE_COUNT ? names[type] : "unknown";
}

const char *efi_mmap_error_str(efi_mmap_error_t err)
{
    static const char *const names[EFI_MMAP_ERR_COUNT_] = {
        [EFI_MMAP_OK] = "ok",
        [EFI_MMAP_ERR_DESC_SIZE] = "descriptor size below 40",
        [EFI_MMAP_ERR_OVERFLOW] = "descriptor ends at or past 2^64",
        [EFI_MMAP_ERR_FULL] = "too many entries for the output",
    };
    return (unsigned)err < EFI_MMAP_ERR_COUNT_ ? names[err] : "unknown error";
}
