#include <stdio.h>
#include <stdlib.h>

#include "mm_test.h"

test_hook_log_t test_panics;
test_hook_log_t test_warnings;
jmp_buf *volatile test_panic_target;

static _Thread_local int irq_depth;

_Noreturn void mm_hook_panic(const mm_report_t *report)
{
    test_panics.count++;
    test_panics.last = *report;
    if (test_panic_target != NULL)
        longjmp(*test_panic_target, 1);
    fprintf(stderr, "mm panic (%s): %s at %s:%d address=%#llx offset=%#llx\n",
            mm_report_kind_str(report->kind), report->message, report->file, report->line,
            (unsigned long long)report->address, (unsigned long long)report->offset);
    abort();
}

void mm_hook_warn(const mm_report_t *report)
{
    test_warnings.count++;
    test_warnings.last = *report;
}

mm_irqflags_t mm_hook_irq_save(void)
{
    return (mm_irqflags_t)irq_depth++;
}

void mm_hook_irq_restore(mm_irqflags_t flags)
{
    irq_depth = (int)flags;
}

int test_irq_depth(void)
{
    return irq_depth;
}
