/*
 * Test kernel: the architecture interface of the common checks. Each
 * kernel's arch_mm.h includes this, adds the inline predicates on its
 * fault_record_t (arch_fault_is, arch_fault_addr, arch_fault_pc,
 * arch_fault_is_overflow), the ARCH_* names and constants, and its
 * vmm_arch.c implements the functions below.
 */
#ifndef KTEST_ARCH_H
#define KTEST_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/page_mapper.h>

#include "kernel.h"

/* Fault kinds for arch_fault_is (exact match): a fault on a missing
 * translation unless ARCH_FAULT_PROTECTION, a read unless WRITE or FETCH,
 * from kernel mode unless USER. */
#define ARCH_FAULT_PROTECTION 0x1u
#define ARCH_FAULT_WRITE 0x2u
#define ARCH_FAULT_USER 0x4u
#define ARCH_FAULT_FETCH 0x10u

/* "page fault (protection write user)", "data abort, permission fault ...". */
const char *arch_fault_str(const fault_record_t *rec, char *buf, size_t size);

/* A device register block to map with vmm_mmio_map at an address that is
 * not page aligned, and a check that what reads back is that device. */
typedef struct arch_mmio_device {
    uint64_t phys;
    uint64_t size;
    const char *name;
    bool (*plausible)(volatile void *regs, char *what, size_t size);
} arch_mmio_device_t;
const arch_mmio_device_t *arch_mmio_device(void);

/* User-mode code for check_ring3: with arg0 = a user data page and arg1 = a
 * kernel address, it stores 0xffffffffdeadbeef to arg0, then loads from
 * arg1 at fault_offset (the instruction that must fault). */
typedef struct arch_user_program {
    const uint8_t *code;
    size_t size;
    size_t fault_offset;
} arch_user_program_t;
const arch_user_program_t *arch_user_program(void);
/* Makes instructions written through the HHDM visible to instruction
 * fetch. */
void arch_sync_icache(void *p, size_t size);
/* Further user-mode checks of the architecture, with the program at code
 * and a user stack at sp (data: a writable user page). */
void arch_check_user_mode(uint64_t code, uint64_t sp, uint64_t data);

/* Address-space identities: the first TAP line of check_pcid; whether a
 * switch tags entries (PCIDs on, ASIDs always); how many switches kept
 * their identity's entries so far; the identity and user root now in the
 * root register; whether the kernel root is current (no user half). */
void arch_identities_report(void);
bool arch_identities_tag_entries(void);
unsigned arch_kept_switches(void);
uint64_t arch_current_tag(void);
mm_paddr_t arch_current_user_root(void);
bool arch_on_kernel_root(void);
uint64_t arch_root_reg(void);
const char *arch_identity_invalidation(void);

/* A second mapper like the kernel's, over `frames`. */
mm_status_t arch_mapper_like_kernel(mm_frame_allocator_t frames, mm_page_mapper_t *out);

#endif /* KTEST_ARCH_H */
