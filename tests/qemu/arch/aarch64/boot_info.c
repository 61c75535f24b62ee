/*
 * Test kernel (AArch64): the device tree turned into the PMM's terms.
 *
 *   /memory reg                      usable
 *   memory reservation block,        reserved
 *   /reserved-memory children reg
 *   the DTB blob itself              kernel and modules (the kernel keeps
 *                                    reading it: /chosen, the report)
 * The kernel image is added by mem_init (it knows its own extent). The
 * map is sorted by base; overlaps stay for pmm_init, where reserved wins.
 */
#include "fdt.h"
#include "kernel.h"

boot_info_t boot_info;
static fdt_info_t fdt;

static void map_add(uint64_t base, uint64_t len, pmm_region_type_t type)
{
    if (boot_info.map_count < BOOT_MAP_MAX)
        boot_info.map[boot_info.map_count++] = (pmm_region_t){base, len, type};
}

static void map_sort(void)
{
    pmm_region_t *m = boot_info.map;
    for (size_t i = 1; i < boot_info.map_count; i++)
        for (size_t j = i; j > 0 && m[j - 1].base > m[j].base; j--) {
            pmm_region_t t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
}

/* /memory ranges sorted and merged where they touch: what the HHDM maps. */
static void ram_runs_build(void)
{
    boot_mem_range_t *r = boot_info.ram_runs;
    size_t n = 0;
    for (unsigned i = 0; i < fdt.memory_count && n < BOOT_MEM_MAX; i++)
        r[n++] = (boot_mem_range_t){fdt.memory[i].base, fdt.memory[i].size, 1};
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && r[j - 1].addr > r[j].addr; j--) {
            boot_mem_range_t t = r[j];
            r[j] = r[j - 1];
            r[j - 1] = t;
        }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && r[i].addr <= r[m - 1].addr + r[m - 1].size) {
            uint64_t end = r[i].addr + r[i].size;
            if (end > r[m - 1].addr + r[m - 1].size)
                r[m - 1].size = end - r[m - 1].addr;
        } else {
            r[m++] = r[i];
        }
    }
    boot_info.ram_run_count = m;
}

const char *boot_info_parse_fdt(uint64_t dtb)
{
    const char *why = fdt_parse((const void *)(uintptr_t)dtb, &fdt);
    if (why != NULL)
        return why;
    boot_info.map_source = "device tree (/memory, /reserved-memory, rsvmap)";
    for (unsigned i = 0; i < fdt.memory_count; i++) {
        map_add(fdt.memory[i].base, fdt.memory[i].size, PMM_REGION_USABLE);
        boot_info.ram_bytes += fdt.memory[i].size;
        uint64_t end = fdt.memory[i].base + fdt.memory[i].size;
        if (end > boot_info.phys_top)
            boot_info.phys_top = end;
    }
    for (unsigned i = 0; i < fdt.reserved_count; i++)
        map_add(fdt.reserved[i].base, fdt.reserved[i].size, PMM_REGION_RESERVED);
    boot_info.info_phys = dtb;
    boot_info.info_size = fdt.total_size;
    map_add(dtb, fdt.total_size, PMM_REGION_KERNEL_AND_MODULES);
    map_sort();
    ram_runs_build();
    boot_info.reserved_nodes = fdt.reserved_nodes;
    boot_info.rsvmap_entries = fdt.rsvmap_entries;
    boot_info.uart_phys = fdt.uart_phys;
    for (size_t i = 0; i < sizeof boot_info.cmdline && fdt.bootargs[i] != '\0'; i++)
        boot_info.cmdline[i] = fdt.bootargs[i];
    boot_info.demo = cmdline_has("demo");
    for (unsigned i = 0; i < fdt.cpu_count; i++) {
        boot_info.cpu_mpidr[i] = fdt.cpu_mpidr[i];
        boot_info.cpu_psci[i] = fdt.cpu_psci[i];
    }
    boot_info.cpu_count = fdt.cpu_count;
    boot_info.cpus_ignored = fdt.cpus_ignored;
    boot_info.psci = fdt.psci;
    return NULL;
}

bool cmdline_has(const char *word)
{
    const char *p = boot_info.cmdline;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *w = word;
        const char *q = p;
        while (*w && *q == *w)
            q++, w++;
        if (*w == '\0' && (*q == ' ' || *q == '\0'))
            return true;
        while (*p && *p != ' ')
            p++;
    }
    return false;
}

bool pmm_type_is_ram(pmm_region_type_t type)
{
    return type == PMM_REGION_USABLE || type == PMM_REGION_BOOTLOADER_RECLAIMABLE ||
           type == PMM_REGION_KERNEL_AND_MODULES;
}
