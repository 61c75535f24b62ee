/*
 * Test kernel: the boot information, copied while the boot identity map
 * still exists. The PVH start info (struct hvm_start_info, version >= 1)
 * here; Multiboot2 in boot_mb2.c. Both end in boot_info.map, the map in the
 * PMM's terms that the rest of the kernel works from.
 */
#include "bootmap.h"
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

bool pmm_type_is_ram(pmm_region_type_t type)
{
    return type == PMM_REGION_USABLE || type == PMM_REGION_BOOTLOADER_RECLAIMABLE ||
           type == PMM_REGION_ACPI_RECLAIMABLE || type == PMM_REGION_ACPI_NVS ||
           type == PMM_REGION_KERNEL_AND_MODULES;
}

/* phys_top and ram_bytes from the converted map; the stub's flags. */
static void boot_info_finish(void)
{
    size_t runs = 0;
    for (size_t i = 0; i < boot_info.map_count; i++) {
        const pmm_region_t *r = &boot_info.map[i];
        if (!pmm_type_is_ram(r->type))
            continue;
        /* map is sorted by base: a run only ever grows at its end. */
        boot_mem_range_t *last = runs ? &boot_info.ram_runs[runs - 1] : NULL;
        if (last && r->base <= last->addr + last->size) {
            if (r->base + r->length > last->addr + last->size)
                last->size = r->base + r->length - last->addr;
        } else {
            boot_info.ram_runs[runs++] = (boot_mem_range_t){r->base, r->length, E820_RAM};
        }
    }
    boot_info.ram_run_count = runs;
    for (size_t i = 0; i < boot_info.map_count; i++) {
        const pmm_region_t *r = &boot_info.map[i];
        if (r->type != PMM_REGION_USABLE && r->type != PMM_REGION_BOOTLOADER_RECLAIMABLE)
            continue;
        boot_info.ram_bytes += r->length;
        if (r->base + r->length > boot_info.phys_top)
            boot_info.phys_top = r->base + r->length;
    }
    boot_info.la57_requested = (boot_flags & BOOT_LA57_REQUESTED) != 0;
    boot_info.la57 = (boot_flags & BOOT_LA57_ENABLED) != 0;
    boot_info.demo = cmdline_has("demo");
}

const char *boot_protocol_name(void)
{
    return boot_info.protocol == BOOT_PROTO_MB2 ? "Multiboot2" : "PVH";
}

static const char *boot_info_parse_pvh(uint32_t start_info_phys)
{
    /* Identity-mapped by the boot page tables. */
    const struct hvm_start_info *si = (const void *)(uintptr_t)start_info_phys;
    if (si->magic != HVM_START_MAGIC)
        return "no PVH start info (bad magic)";
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
        for (uint32_t i = 0; i < si->memmap_entries; i++) {
            if (e[i].size > UINT64_MAX - e[i].addr)
                return "PVH memory map entry wraps past 2^64";
            if (!pmm_map_add(boot_info.map, &boot_info.map_count, BOOT_MAP_MAX,
                             (pmm_region_t){e[i].addr, e[i].size, e820_type_to_pmm(e[i].type)}))
                return "PVH memory map too long";
            if (boot_info.memmap_count == BOOT_MEMMAP_MAX) {
                boot_info.memmap_dropped++;
                continue;
            }
            boot_info.memmap[boot_info.memmap_count++] =
                (boot_mem_range_t){e[i].addr, e[i].size, e[i].type};
        }
    }
    boot_info.map_source = "PVH e820 table";
    return NULL;
}

const char *boot_info_parse(uint32_t info_phys, uint32_t protocol)
{
    boot_info.protocol = protocol;
    const char *err = protocol == BOOT_PROTO_MB2 ? boot_info_parse_mb2(info_phys)
                      : protocol == BOOT_PROTO_PVH ? boot_info_parse_pvh(info_phys)
                                                   : "unknown boot protocol";
    if (err)
        return err;
    if (boot_info.map_count == 0)
        return "no memory map";
    boot_info_finish();
    return NULL;
}
