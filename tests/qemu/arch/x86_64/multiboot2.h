/*
 * Multiboot2 boot information: a validated walk over the tags and the few
 * a kernel needs, located in place (nothing is copied, nothing allocated).
 *
 * Freestanding C11 with no state: the test kernel runs it on what GRUB
 * handed over, the host unit tests (tests/unit/boot/) on captured and on
 * malformed tag lists. Every length is checked against the structure's
 * total_size, and total_size against a caller-given limit, before anything
 * is read, so a bad list is an error code and never a read out of bounds.
 *
 * Layout (Multiboot2 specification 1.0, section 3.6): the structure is
 * 8-byte aligned; u32 total_size, u32 reserved, then tags, each 8-byte
 * aligned, each u32 type, u32 size (header included, padding excluded);
 * the list ends with a tag of type 0 and size 8.
 */
#ifndef KTEST_MULTIBOOT2_H
#define KTEST_MULTIBOOT2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB2_BOOT_MAGIC 0x36d76289u /* %eax at the kernel's entry */

enum mb2_tag_type {
    MB2_TAG_END = 0,
    MB2_TAG_CMDLINE = 1,
    MB2_TAG_LOADER_NAME = 2,
    MB2_TAG_MODULE = 3,
    MB2_TAG_BASIC_MEMINFO = 4,
    MB2_TAG_BOOTDEV = 5,
    MB2_TAG_MMAP = 6,
    MB2_TAG_VBE = 7,
    MB2_TAG_FRAMEBUFFER = 8,
    MB2_TAG_ELF_SECTIONS = 9,
    MB2_TAG_APM = 10,
    MB2_TAG_EFI32 = 11,
    MB2_TAG_EFI64 = 12,
    MB2_TAG_SMBIOS = 13,
    MB2_TAG_ACPI_OLD = 14,
    MB2_TAG_ACPI_NEW = 15,
    MB2_TAG_NETWORK = 16,
    MB2_TAG_EFI_MMAP = 17,
    MB2_TAG_EFI_BS = 18, /* boot services not terminated */
    MB2_TAG_EFI32_IH = 19,
    MB2_TAG_EFI64_IH = 20,
    MB2_TAG_LOAD_BASE = 21,
};

/* Memory-map tag entry types (the e820 numbering). */
enum mb2_mmap_type {
    MB2_MMAP_AVAILABLE = 1,
    MB2_MMAP_RESERVED = 2,
    MB2_MMAP_ACPI_RECLAIMABLE = 3,
    MB2_MMAP_NVS = 4,
    MB2_MMAP_BADRAM = 5,
};

/* Smallest sizes the walk accepts. */
#define MB2_INFO_MIN_SIZE 16u     /* header + end tag */
#define MB2_MMAP_ENTRY_MIN 24u    /* u64 base, u64 length, u32 type, u32 reserved */
#define MB2_EFI_DESC_MIN 40u      /* EFI_MEMORY_DESCRIPTOR with its padding */

typedef enum mb2_error {
    MB2_OK = 0,
    MB2_ERR_NULL,            /* no structure */
    MB2_ERR_ALIGN,           /* structure not 8-byte aligned */
    MB2_ERR_TOTAL_SIZE,      /* total_size below 16 or above the limit */
    MB2_ERR_TAG_TRUNCATED,   /* a tag's header or body runs past total_size */
    MB2_ERR_TAG_SIZE,        /* a tag smaller than its own header or fixed fields */
    MB2_ERR_NO_END,          /* total_size reached without an end tag */
    MB2_ERR_END_SIZE,        /* end tag whose size is not 8 */
    MB2_ERR_STRING,          /* a string tag without its terminating NUL */
    MB2_ERR_MMAP_ENTRY_SIZE, /* memory-map entry_size below 24 or not a multiple of 8 */
    MB2_ERR_EFI_DESC_SIZE,   /* EFI descriptor_size below 40 or not a multiple of 8 */
    MB2_ERR_DUPLICATE,       /* a second memory-map, EFI memory-map or command-line tag */
    MB2_ERR_COUNT_
} mb2_error_t;

/* What mb2_parse found. Pointers point into the structure it was given. */
typedef struct mb2_info {
    uint32_t total_size;
    unsigned tag_count;      /* tags before the end tag */
    const char *cmdline;     /* NULL: no tag */
    const char *loader_name; /* NULL: no tag */
    bool have_meminfo;
    uint32_t mem_lower_kib, mem_upper_kib;
    /* Memory-map tag: mmap_count entries of mmap_entry_size bytes. */
    const uint8_t *mmap;
    uint32_t mmap_entry_size;
    size_t mmap_count;
    /* EFI memory-map tag: efi_desc_count descriptors of efi_desc_size
     * bytes (the stride: it may exceed the structure). */
    const uint8_t *efi_mmap;
    uint32_t efi_desc_size, efi_desc_version;
    size_t efi_desc_count;
    bool have_efi64, have_efi32;
    uint64_t efi_systab;     /* EFI64 or EFI32 system table */
    bool efi_bs_active;      /* tag 18: boot services were not exited */
    const uint8_t *acpi_rsdp; /* copy of the RSDP in the newest ACPI tag */
    uint32_t acpi_rsdp_size;
    unsigned acpi_version;   /* 1 (tag 14), 2 (tag 15), 0: none */
    bool have_load_base;
    uint32_t load_base;
} mb2_info_t;

/* One memory-map tag entry, decoded. */
typedef struct mb2_mmap_entry {
    uint64_t base;
    uint64_t length;
    uint32_t type;
} mb2_mmap_entry_t;

/* Walks the boot information at `mbi` (which must be readable for `limit`
 * bytes, or up to total_size when that is smaller) and fills *out.
 * Checks: `mbi` 8-aligned; 16 <= total_size <= limit; every tag header and
 * body inside total_size, every size >= 8 and >= the tag's fixed fields;
 * an end tag of size 8; strings NUL-terminated inside their tag; memory-map
 * entry sizes >= 24 and EFI descriptor sizes >= 40, both multiples of 8
 * (bytes after the last whole entry are ignored); at most one memory-map,
 * EFI memory-map and command-line tag. Unknown tag types are skipped. Bytes after the end tag
 * are ignored. On error *out is zeroed.
 * O(total_size / 8); reads nothing outside [mbi, mbi + total_size). */
mb2_error_t mb2_parse(const void *mbi, size_t limit, mb2_info_t *out);

/* Entry i < info->mmap_count of the memory-map tag. */
mb2_mmap_entry_t mb2_mmap_entry(const mb2_info_t *info, size_t i);

/* Static names, never NULL. */
const char *mb2_error_str(mb2_error_t err);
const char *mb2_tag_name(uint32_t type);
const char *mb2_mmap_type_name(uint32_t type);

#endif /* KTEST_MULTIBOOT2_H */
