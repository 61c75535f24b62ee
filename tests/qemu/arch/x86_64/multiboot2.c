/*
 * Multiboot2 boot information: the validated walk (see multiboot2.h).
 */
#include "multiboot2.h"

/* Loads through memcpy (the builtin: no libc header in a freestanding
 * build; it compiles to one load): the walk never assumes more alignment
 * than the specification promises, and the host tests run it under UBSan. */
static uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/* Smallest size a tag of this type may have: header plus fixed fields. */
static uint32_t tag_min_size(uint32_t type)
{
    switch (type) {
    case MB2_TAG_CMDLINE:
    case MB2_TAG_LOADER_NAME:
        return 9; /* at least the NUL */
    case MB2_TAG_MODULE:
        return 17;
    case MB2_TAG_BASIC_MEMINFO:
    case MB2_TAG_MMAP:
    case MB2_TAG_EFI64:
    case MB2_TAG_EFI_MMAP:
        return 16;
    case MB2_TAG_BOOTDEV:
        return 20;
    case MB2_TAG_EFI32:
    case MB2_TAG_LOAD_BASE:
        return 12;
    case MB2_TAG_ACPI_OLD:
        return 8 + 20; /* RSDP 1.0 */
    case MB2_TAG_ACPI_NEW:
        return 8 + 36; /* RSDP 2.0 */
    default:
        return 8;
    }
}

/* A string from body[0] that must end inside the tag. */
static const char *tag_string(const uint8_t *body, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        if (body[i] == '\0')
            return (const char *)body;
    return NULL;
}

/* The parts of a memory-map tag (6) or EFI memory-map tag (17) shared by
 * both: a 16-byte header whose first word is the entry size, then whole
 * entries. */
static bool entry_table(const uint8_t *tag, uint32_t size, uint32_t min_entry, uint32_t *entry,
                        size_t *count)
{
    *entry = ld32(tag + 8);
    if (*entry < min_entry || *entry % 8 != 0)
        return false;
    *count = (size - 16) / *entry; /* trailing bytes short of an entry ignored */
    return true;
}

static mb2_error_t parse_tag(mb2_info_t *info, const uint8_t *tag, uint32_t type, uint32_t size)
{
    const uint8_t *body = tag + 8;
    uint32_t len = size - 8;
    switch (type) {
    case MB2_TAG_CMDLINE:
        if (info->cmdline)
            return MB2_ERR_DUPLICATE;
        if (!(info->cmdline = tag_string(body, len)))
            return MB2_ERR_STRING;
        break;
    case MB2_TAG_LOADER_NAME:
        if (!(info->loader_name = tag_string(body, len)))
            return MB2_ERR_STRING;
        break;
    case MB2_TAG_BASIC_MEMINFO:
        info->have_meminfo = true;
        info->mem_lower_kib = ld32(body);
        info->mem_upper_kib = ld32(body + 4);
        break;
    case MB2_TAG_MMAP:
        if (info->mmap)
            return MB2_ERR_DUPLICATE;
        if (!entry_table(tag, size, MB2_MMAP_ENTRY_MIN, &info->mmap_entry_size,
                         &info->mmap_count))
            return MB2_ERR_MMAP_ENTRY_SIZE;
        info->mmap = tag + 16;
        break;
    case MB2_TAG_EFI_MMAP:
        if (info->efi_mmap)
            return MB2_ERR_DUPLICATE;
        if (!entry_table(tag, size, MB2_EFI_DESC_MIN, &info->efi_desc_size,
                         &info->efi_desc_count))
            return MB2_ERR_EFI_DESC_SIZE;
        info->efi_desc_version = ld32(tag + 12);
        info->efi_mmap = tag + 16;
        break;
    case MB2_TAG_EFI64:
        info->have_efi64 = true;
        info->efi_systab = ld64(body);
        break;
    case MB2_TAG_EFI32:
        info->have_efi32 = true;
        if (!info->have_efi64)
            info->efi_systab = ld32(body);
        break;
    case MB2_TAG_EFI_BS:
        info->efi_bs_active = true;
        break;
    case MB2_TAG_ACPI_OLD:
    case MB2_TAG_ACPI_NEW:
        if (info->acpi_version < (type == MB2_TAG_ACPI_NEW ? 2u : 1u)) {
            info->acpi_version = type == MB2_TAG_ACPI_NEW ? 2 : 1;
            info->acpi_rsdp = body;
            info->acpi_rsdp_size = len;
        }
        break;
    case MB2_TAG_LOAD_BASE:
        info->have_load_base = true;
        info->load_base = ld32(body);
        break;
    default:
        break;
    }
    return MB2_OK;
}

static mb2_error_t walk(const uint8_t *p, uint32_t total, mb2_info_t *info)
{
    uint32_t off = 8;
    for (;;) {
        /* Here off <= total and off is a multiple of 8 (total need not be:
         * then the last tag header is cut short, or the end is missing). */
        if (off == total)
            return MB2_ERR_NO_END;
        if (total - off < 8)
            return MB2_ERR_TAG_TRUNCATED;
        uint32_t type = ld32(p + off);
        uint32_t size = ld32(p + off + 4);
        if (type == MB2_TAG_END)
            return size == 8 ? MB2_OK : MB2_ERR_END_SIZE;
        if (size < tag_min_size(type))
            return MB2_ERR_TAG_SIZE;
        if (size > total - off)
            return MB2_ERR_TAG_TRUNCATED;
        mb2_error_t err = parse_tag(info, p + off, type, size);
        if (err != MB2_OK)
            return err;
        info->tag_count++;
        /* size <= total - off, so the rounded step cannot wrap; it may
         * overshoot total by padding, which the next test catches. */
        uint32_t step = (size + 7u) & ~7u;
        if (step > total - off)
            return MB2_ERR_NO_END;
        off += step;
    }
}

mb2_error_t mb2_parse(const void *mbi, size_t limit, mb2_info_t *out)
{
    *out = (mb2_info_t){0};
    if (!mbi)
        return MB2_ERR_NULL;
    if ((uintptr_t)mbi % 8 != 0)
        return MB2_ERR_ALIGN;
    if (limit < MB2_INFO_MIN_SIZE)
        return MB2_ERR_TOTAL_SIZE;
    const uint8_t *p = mbi;
    uint32_t total = ld32(p);
    if (total < MB2_INFO_MIN_SIZE || total > limit)
        return MB2_ERR_TOTAL_SIZE;
    mb2_info_t info = {.total_size = total};
    mb2_error_t err = walk(p, total, &info);
    if (err == MB2_OK)
        *out = info;
    return err;
}

mb2_mmap_entry_t mb2_mmap_entry(const mb2_info_t *info, size_t i)
{
    const uint8_t *e = info->mmap + i * info->mmap_entry_size;
    return (mb2_mmap_entry_t){ld64(e), ld64(e + 8), ld32(e + 16)};
}

const char *mb2_error_str(mb2_error_t err)
{
    static const char *const names[MB2_ERR_COUNT_] = {
        [MB2_OK] = "ok",
        [MB2_ERR_NULL] = "no boot information",
        [MB2_ERR_ALIGN] = "boot information not 8-byte aligned",
        [MB2_ERR_TOTAL_SIZE] = "total_size out of bounds",
        [MB2_ERR_TAG_TRUNCATED] = "tag runs past total_size",
        [MB2_ERR_TAG_SIZE] = "tag smaller than its fixed fields",
        [MB2_ERR_NO_END] = "no end tag",
        [MB2_ERR_END_SIZE] = "end tag size is not 8",
        [MB2_ERR_STRING] = "string tag without NUL",
        [MB2_ERR_MMAP_ENTRY_SIZE] = "bad memory-map entry size",
        [MB2_ERR_EFI_DESC_SIZE] = "bad EFI descriptor size",
        [MB2_ERR_DUPLICATE] = "duplicate tag",
    };
    return (unsigned)err < MB2_ERR_COUNT_ ? names[err] : "unknown error";
}

const char *mb2_tag_name(uint32_t type)
{
    static const char *const names[] = {
        "end", "cmdline", "loader name", "module", "basic meminfo", "bootdev", "mmap", "vbe",
        "framebuffer", "elf sections", "apm", "efi32", "efi64", "smbios", "acpi old",
        "acpi new", "network", "efi mmap", "efi bs", "efi32 ih", "efi64 ih", "load base",
    };
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

const char *mb2_mmap_type_name(uint32_t type)
{
    switch (type) {
    case MB2_MMAP_AVAILABLE:
        return "available";
    case MB2_MMAP_RESERVED:
        return "reserved";
    case MB2_MMAP_ACPI_RECLAIMABLE:
        return "ACPI reclaimable";
    case MB2_MMAP_NVS:
        return "ACPI NVS";
    case MB2_MMAP_BADRAM:
        return "bad RAM";
    default:
        return "other";
    }
}
