/*
 * Test kernel: the names both kernels give the checks alike (formatting,
 * TAP, expected faults and panics, the layout). Each kernel's kernel.h
 * includes this and adds its own: boot_info, fault_record_t, kjmp_buf_t,
 * the exit codes, the register-level helpers.
 */
#ifndef KTEST_KTEST_H
#define KTEST_KTEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/layout.h>
#include <hadron/mm/report.h>

/* Linker-script symbols (virtual addresses in the kernel image). */
extern char __kernel_start[], __kernel_end[];
extern char __text_start[], __text_end[];
extern char __rodata_start[], __rodata_end[];
extern char __data_start[], __data_end[];
extern char __bss_start[], __bss_end[];
extern char boot_stack_bottom[], boot_stack_top[];

/* A physical range and its firmware type (boot_info.ram_runs, the HHDM's
 * runs of RAM; on x86_64 also the firmware's map as received). */
typedef struct boot_mem_range {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} boot_mem_range_t;

/* kernel_tables.c: boot_info.ram_runs[i] page-aligned inward, as
 * [*start, *end); false when no whole page is left. */
bool boot_ram_run_pages(size_t i, uint64_t *start, uint64_t *end);

/* Each kernel's kernel.h defines it: what its fault handler records. */
typedef struct fault_record fault_record_t;

/* ---- fmt.c ------------------------------------------------------------ */
typedef void (*fmt_sink_fn)(char c, void *ctx);
/* %[-0][width][l|ll|z](d i u x X p s c %) */
void kvformat(fmt_sink_fn sink, void *ctx, const char *fmt, va_list ap);
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- tap.c ------------------------------------------------------------ */
/* One TAP line; returns cond. Descriptions are printf formats. */
bool tap_check(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "not ok N - desc # reason" */
void tap_fail(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_skip(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned tap_failures(void);
/* Lines printed so far (the watchdog's measure of progress). */
unsigned tap_progress(void);
/* Prints the plan and exits through qemu_exit. */
_Noreturn void tap_finish(void);
/* Aborts the run: "Bail out!" and the failure exit code. */
_Noreturn void tap_bail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- fault_expect.c ---------------------------------------------------- */
/* Runs fn(arg) with a fault expected: the fault handler records it and
 * resumes after the call. Returns true when a fault happened. */
bool fault_expect(void (*fn)(void *), void *arg, fault_record_t *rec);
bool fault_probe_read(uint64_t va, fault_record_t *rec);
bool fault_probe_write(uint64_t va, uint64_t value, fault_record_t *rec);
bool fault_probe_exec(uint64_t va, fault_record_t *rec);
/* Describes where va lies (layout region, VMM object, stack guard). */
void fault_classify(uint64_t va, char *buf, size_t size);
/* Set once the VMM is up: describes va within the VMM's objects ("guard page
 * of kernel stack 3: stack overflow"); false when it knows nothing. */
typedef bool (*fault_classifier_fn)(uint64_t va, char *buf, size_t size);
extern fault_classifier_fn fault_vmm_classifier;
/* "#   backtrace: <pc> <return addresses...>" by the frame-pointer chain;
 * run-qemu.sh turns the line into function names and source lines. */
void backtrace_print(uint64_t pc, uint64_t fp);

/* ---- panic_hooks.c ------------------------------------------------------ */
/* Runs fn(arg) with an mm_hook_panic expected; returns true when one came,
 * with the report copied to *out. */
bool panic_expect(void (*fn)(void *), void *arg, mm_report_t *out);
extern unsigned hook_warn_count;
extern mm_report_t hook_last_warn;

/* ---- lock_state.c, checks_lockup.c ------------------------------------- */
/* Prints, for CPUs 0..cpus-1, the hadron-mm lock each waits for (with its
 * holder) and the locks each holds (mm_lock_debug_snapshot); says so when
 * the build records none (no lock_order). Lock-free: for a watchdog's NMI
 * or a panic, whatever the CPUs hold. */
void lock_state_print(unsigned cpus);
/* The lockup canary (lock_order builds, 2 CPUs or more; else TAP skips),
 * on the CPUs smp_start brought up. */
void checks_lockup(void);

/* ---- kmain.c: the kernel's layout ---------------------------------------- */
extern layout_t kernel_layout;
extern bool kernel_layout_ready;
extern uint64_t hhdm_base;

#endif /* KTEST_KTEST_H */
