/*
 * Test kernel: the Multiboot2 boot information (GRUB on BIOS or UEFI
 * firmware), copied into boot_info while the boot identity map still
 * exists. The structure is validated as a whole first (multiboot2.c): a
 * malformed one fails the boot with the reason, never with a fault.
 *
 * The PMM's map comes from the EFI memory map when there is one: GRUB's
 * memory-map tag on UEFI machines folds boot-services and loader memory
 * into "available" and runtime code into its own type 20, while the EFI
 * descriptors say exactly what each range is (efi_memmap.c has the table).
 *
 * "bootdump" on the command line prints the raw structure as hex lines
 * ("# mbi <offset>: <bytes>"); tests/unit/boot/fixtures/ holds such dumps.
 */
#include "bootmap.h"
#include "kernel.h"
#include "multiboot2.h"

/* GRUB's structure is a few KiB; anything past this is not one. */
#define MB2_INFO_LIMIT (UINT32_C(1) << 20)

static void copy_string(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src && i + 1 < size && src[i]; i++)
        dst[i] = src[i];
    dst[i] = '\0';
}

/* The raw structure, 32 bytes a line, for fixtures and bug reports. */
static void dump(const uint8_t *p, uint32_t size)
{
    kprintf("# mbi-begin phys %p size %u\n", (const void *)p, size);
    for (uint32_t off = 0; off < size; off += 32) {
        kprintf("# mbi %05x:", off);
        for (uint32_t i = off; i < off + 32 && i < size; i++)
            kprintf(" %02x", p[i]);
        kprintf("\n");
    }
    kprintf("# mbi-end\n");
}

static const char *fail(const char *what, const char *why)
{
    static char msg[96];
    ksnprintf(msg, sizeof msg, "Multiboot2: %s: %s", what, why);
    return msg;
}

static void copy_firmware_map(const mb2_info_t *mb)
{
    for (size_t i = 0; i < mb->mmap_count; i++) {
        if (boot_info.memmap_count == BOOT_MEMMAP_MAX) {
            boot_info.memmap_dropped++;
            continue;
        }
        mb2_mmap_entry_t e = mb2_mmap_entry(mb, i);
        boot_info.memmap[boot_info.memmap_count++] = (boot_mem_range_t){e.base, e.length, e.type};
    }
}

static const char *convert_map(const mb2_info_t *mb)
{
    size_t n = 0;
    if (mb->efi_mmap) {
        efi_mmap_error_t err =
            efi_mmap_to_pmm(mb->efi_mmap, mb->efi_desc_size, mb->efi_desc_count, boot_info.map,
                            BOOT_MAP_MAX, &n, &boot_info.efi_summary);
        if (err != EFI_MMAP_OK)
            return fail("EFI memory map", efi_mmap_error_str(err));
        boot_info.efi = true;
        boot_info.efi_desc_size = mb->efi_desc_size;
        boot_info.efi_desc_version = mb->efi_desc_version;
        boot_info.map_source = "EFI memory map";
    } else if (mb->mmap) {
        if (!mb2_mmap_to_pmm(mb, boot_info.map, BOOT_MAP_MAX, &n))
            return fail("memory map", "too long, or an entry wraps past 2^64");
        boot_info.map_source = "Multiboot2 memory map";
    } else {
        return fail("memory map", "no memory-map tag");
    }
    boot_info.map_count = n;
    return NULL;
}

const char *boot_info_parse_mb2(uint32_t info_phys)
{
    /* Below 4 GiB (a 32-bit address): identity-mapped by the boot tables. */
    const uint8_t *mbi = (const void *)(uintptr_t)info_phys;
    mb2_info_t mb;
    mb2_error_t err = mb2_parse(mbi, MB2_INFO_LIMIT, &mb);
    if (err != MB2_OK) {
        /* The start of it, for the bug report (the identity map ends at
         * 4 GiB). */
        if (err != MB2_ERR_NULL && err != MB2_ERR_ALIGN)
            dump(mbi, info_phys > UINT32_MAX - 256 ? UINT32_MAX - info_phys : 256);
        return fail("bad boot information", mb2_error_str(err));
    }
    copy_string(boot_info.cmdline, sizeof boot_info.cmdline, mb.cmdline);
    copy_string(boot_info.loader_name, sizeof boot_info.loader_name, mb.loader_name);
    if (cmdline_has("bootdump"))
        dump(mbi, mb.total_size);
    if (mb.efi_bs_active)
        return fail("EFI", "boot services were not exited (tag 18)");
    boot_info.info_phys = info_phys;
    boot_info.info_size = mb.total_size;
    boot_info.info_tags = mb.tag_count;
    boot_info.have_meminfo = mb.have_meminfo;
    boot_info.mem_lower_kib = mb.mem_lower_kib;
    boot_info.mem_upper_kib = mb.mem_upper_kib;
    boot_info.efi64 = mb.have_efi64;
    boot_info.efi_systab = mb.efi_systab;
    /* The RSDP copy inside the structure, which stays reserved. */
    if (mb.acpi_rsdp)
        boot_info.rsdp = info_phys + (uint64_t)(mb.acpi_rsdp - mbi);
    copy_firmware_map(&mb);
    return convert_map(&mb);
}
