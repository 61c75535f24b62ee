/*
 * Test kernel: the report hooks hadron-mm calls (core/include/hadron/mm/hooks.h);
 * the interrupt, CPU-index and TLB hooks are each kernel's (hooks.c, tlb.c).
 *
 * mm_hook_panic is fatal unless a check armed panic_expect(): then the
 * report is copied out and execution resumes after the check's call, so a
 * debug build can verify that poisoning and red zones really fire.
 */
#include <hadron/mm/hooks.h>
#include <hadron/mm/spinlock.h>

#include "kernel.h"

unsigned hook_warn_count;
mm_report_t hook_last_warn;

static volatile bool panic_armed;
static kjmp_buf_t panic_jmp;
static mm_report_t *volatile panic_out;

bool panic_expect(void (*fn)(void *), void *arg, mm_report_t *out)
{
    panic_out = out;
    if (kjmp_save(&panic_jmp) == 0) {
        panic_armed = true;
        fn(arg);
        panic_armed = false;
        return false;
    }
    return true;
}

_Noreturn void mm_hook_panic(const mm_report_t *report)
{
    if (panic_armed) {
        panic_armed = false;
        /* The check goes on without the locks the panicking code held. */
        mm_lock_order_forget_cpu();
        *panic_out = *report;
        kjmp_restore(&panic_jmp, 1);
    }
    kprintf("# MM PANIC (%s): %s\n#   at %s:%d address=%#lx offset=%#lx found=%#lx "
            "expected=%#lx\n",
            mm_report_kind_str(report->kind), report->message, report->file, report->line,
            report->address, report->offset, report->found, report->expected);
    if (report->kind == MM_REPORT_LOCK_ORDER)
        kprintf("#   taking \"%s\" on CPU %u while holding \"%s\"\n",
                report->lock ? report->lock : "-", report->cpu,
                report->held ? report->held : "-");
    if (report->kind == MM_REPORT_LOCKUP)
        kprintf("#   CPU %u spun %lu polls for \"%s\" held by CPU %d\n", report->cpu,
                report->offset, report->lock ? report->lock : "-", (int)report->holder_cpu);
    backtrace_print((uint64_t)(uintptr_t)__builtin_return_address(0), ARCH_PANIC_FRAME());
    tap_fail("panicked", "no hadron-mm panic (%s)", mm_report_kind_str(report->kind));
    tap_bail("mm_hook_panic");
}

void mm_hook_warn(const mm_report_t *report)
{
    hook_warn_count++;
    hook_last_warn = *report;
    kprintf("# mm warning (%s): %s address=%#lx\n", mm_report_kind_str(report->kind),
            report->message, report->address);
}
