/*
 * Test kernel (AArch64): the device-tree reader (fdt.c).
 */
#ifndef KTEST_FDT_H
#define KTEST_FDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDT_MAX_RANGES 32u
#define FDT_MAX_CPUS 8u

/* /psci method: how PSCI calls reach the firmware. */
typedef enum fdt_psci {
    FDT_PSCI_NONE, /* no /psci node (or no method in it) */
    FDT_PSCI_HVC,  /* "hvc": the hypervisor (QEMU virt without EL2) */
    FDT_PSCI_SMC,  /* "smc": the secure monitor (virtualization=on) */
} fdt_psci_t;

typedef struct fdt_range {
    uint64_t base, size;
} fdt_range_t;

typedef struct fdt_info {
    uint32_t total_size;                 /* of the blob: reserved with it */
    fdt_range_t memory[FDT_MAX_RANGES];  /* /memory reg */
    unsigned memory_count;
    fdt_range_t reserved[FDT_MAX_RANGES]; /* rsvmap + /reserved-memory children */
    unsigned reserved_count;
    unsigned rsvmap_entries, reserved_nodes;
    uint64_t uart_phys; /* first "arm,pl011" reg, 0 if none */
    char bootargs[256]; /* /chosen bootargs */
    uint64_t cpu_mpidr[FDT_MAX_CPUS]; /* /cpus/cpu@N reg: MPIDR_EL1 affinity */
    bool cpu_psci[FDT_MAX_CPUS];      /* its enable-method is "psci" */
    unsigned cpu_count;               /* cpu nodes kept, in tree order */
    unsigned cpus_ignored;            /* cpu nodes beyond FDT_MAX_CPUS */
    fdt_psci_t psci;                  /* /psci method */
} fdt_info_t;

/* Parses the blob; NULL on success, else why it is refused (*out then
 * holds what was read so far). */
const char *fdt_parse(const void *blob, fdt_info_t *out);

#endif /* KTEST_FDT_H */
