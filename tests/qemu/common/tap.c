/*
 * Test kernel: TAP version 13 over the serial line. The plan ("1..N") is
 * printed at the end, since how many checks run depends on the CPU and the
 * components built in.
 */
#include "kernel.h"

static unsigned tap_count;
static unsigned tap_failed;

static void tap_line(const char *status, const char *directive, const char *reason,
                     const char *fmt, va_list ap)
{
    char desc[256];
    kvsnprintf(desc, sizeof desc, fmt, ap);
    tap_count++;
    if (directive != NULL)
        kprintf("%s %u - %s # %s %s\n", status, tap_count, desc, directive, reason);
    else if (reason != NULL)
        kprintf("%s %u - %s # %s\n", status, tap_count, desc, reason);
    else
        kprintf("%s %u - %s\n", status, tap_count, desc);
}

bool tap_check(bool cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_line(cond ? "ok" : "not ok", NULL, NULL, fmt, ap);
    va_end(ap);
    if (!cond)
        tap_failed++;
    return cond;
}

void tap_fail(const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_line("not ok", NULL, reason, fmt, ap);
    va_end(ap);
    tap_failed++;
}

void tap_skip(const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_line("ok", "SKIP", reason, fmt, ap);
    va_end(ap);
}

void tap_diag(const char *fmt, ...)
{
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    kprintf("# %s\n", line);
}

unsigned tap_progress(void)
{
    return tap_count;
}

unsigned tap_failures(void)
{
    return tap_failed;
}

_Noreturn void tap_finish(void)
{
    kprintf("1..%u\n", tap_count);
    if (tap_failed != 0)
        kprintf("# %u of %u checks failed\n", tap_failed, tap_count);
    else
        kprintf("# all %u checks passed\n", tap_count);
    qemu_exit(tap_failed != 0 ? QEMU_EXIT_FAILURE : QEMU_EXIT_SUCCESS);
}

_Noreturn void tap_bail(const char *fmt, ...)
{
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    kprintf("Bail out! %s\n", line);
    qemu_exit(QEMU_EXIT_FAILURE);
}
