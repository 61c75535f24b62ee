/*
 * Test kernel: the demo report's pieces: common/demo.c, and each kernel's
 * demo_boot.c (the machine, the boot path and its map, the mapper).
 */
#ifndef KTEST_DEMO_H
#define KTEST_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/page_mapper.h>

/* "== title =====" across the line. */
void demo_rule(const char *title);
/* "2 GiB", "7.00 MiB", "640 KiB", "12 B". */
void demo_human(char *buf, size_t size, uint64_t bytes);

/* "x86_64", "AArch64". */
const char *arch_name(void);
/* The CPU and what the kernel made of it. */
void demo_machine(void);
/* The boot protocol, the firmware's map as received (and the EFI
 * descriptors by type), and the map handed to pmm_init. */
void demo_boot(void);
/* What giving the bootloader's memory back returned. */
void demo_reclaim(void);

/* One leaf of the kernel tables, as the mapper's walker reports it. */
typedef struct demo_leaf {
    mm_vaddr_t va;
    mm_paddr_t pa;
    mm_page_size_t size;
    mm_map_flags_t flags;
} demo_leaf_t;
typedef bool (*demo_leaf_fn)(void *arg, const demo_leaf_t *leaf);
/* The kernel root and the attribute register; every leaf of the kernel
 * tables in address order; the audit and checker counts. */
void arch_demo_tables_header(void);
void arch_demo_walk(demo_leaf_fn fn, void *arg);
void arch_demo_tables_audit(void);
/* "WB", "UC", "Device-nGnRE"...: the architecture's name of a type. */
const char *arch_demo_mem_type_name(mm_mem_type_t type);

#endif /* KTEST_DEMO_H */
