/*
 * Test kernel: the demo report's pieces (demo.c, demo_boot.c).
 */
#ifndef KTEST_DEMO_H
#define KTEST_DEMO_H

#include <stddef.h>
#include <stdint.h>

/* "== title =====" across the line. */
void demo_rule(const char *title);
/* "2 GiB", "7.00 MiB", "640 KiB", "12 B". */
void demo_human(char *buf, size_t size, uint64_t bytes);

/* The boot protocol, the firmware's map as received (and the EFI
 * descriptors by type), and the map handed to pmm_init. */
void demo_boot(void);
/* What giving the bootloader's memory back returned. */
void demo_reclaim(void);

#endif /* KTEST_DEMO_H */
