/*
 * Test kernel: the PVH start info (struct hvm_start_info, version >= 1),
 * copied out of low memory while the boot identity map still exists.
 */
#include "kernel.h"

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

boot_info_t boot_info;

static bool word_at(const char *s, const char *word, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != word[i])
            return false;
    return s[len] == '\0' || s[len] == ' ';
}

bool cmdline_has(const char *word)
{
    size_t len = 0;
    while (word[len])
        len++;
    const char *s = boot_info.cmdline;
    for (size_t i = 0; s[i]; i++)
        if ((i == 0 || s[i - 1] == ' ') && word_at(s + i, word, len))
            return true;
    return false;
}

const char *e820_type_name(uint32_t type)
{
    switch (type) {
    case E820_RAM:
        return "usable RAM";
    case E820_RESERVED:
        return "reserved";
    case E820_ACPI:
        return "ACPI reclaimable";
    case E820_NVS:
        return "ACPI NVS";
    case 5:
        return "unusable";
    default:
        return "other";
    }
}

bool boot_info_parse(uint32_t start_info_phys)
{
    /* Identity-mapped by the boot page tables. */
    const struct hvm_start_info *si = (const void *)(uintptr_t)start_info_phys;
    if (si->magic != HVM_START_MAGIC)
        return false;
    if (si->cmdline_paddr != 0) {
        const char *c = (const char *)(uintptr_t)si->cmdline_paddr;
        size_t i = 0;
        for (; i + 1 < sizeof boot_info.cmdline && c[i]; i++)
            boot_info.cmdline[i] = c[i];
        boot_info.cmdline[i] = '\0';
    }
    boot_info.rsdp = si->rsdp_paddr;
    if (si->version >= 1 && si->memmap_paddr != 0) {
        const struct hvm_memmap_table_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
        for (uint32_t i = 0; i < si->memmap_entries && boot_info.memmap_count < BOOT_MEMMAP_MAX;
             i++) {
            boot_mem_range_t *r = &boot_info.memmap[boot_info.memmap_count++];
            r->addr = e[i].addr;
            r->size = e[i].size;
            r->type = e[i].type;
            if (r->type == E820_RAM) {
                boot_info.ram_bytes += r->size;
                if (r->addr + r->size > boot_info.phys_top)
                    boot_info.phys_top = r->addr + r->size;
            }
        }
    }
    boot_info.la57_requested = (boot_flags & BOOT_LA57_REQUESTED) != 0;
    boot_info.la57 = (boot_flags & BOOT_LA57_ENABLED) != 0;
    boot_info.demo = cmdline_has("demo");
    return true;
}
