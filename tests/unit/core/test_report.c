#include <criterion/criterion.h>
#include <string.h>

#include <hadron/mm/assert.h>

#include "mm_test.h"

static int checked(int x)
{
    MM_ASSERT(x < 10);
    return x;
}

Test(report, passing_assertion_is_silent)
{
    cr_assert_eq(checked(3), 3);
    cr_assert_eq(test_panics.count, 0);
}

#if HADRON_MM_ASSERTIONS
Test(report, failing_assertion_reaches_panic_hook_with_expression)
{
    bool panicked = TEST_CATCH_PANIC(checked(11));
    cr_assert(panicked);
    cr_assert_eq(test_panics.count, 1);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_ASSERT);
    cr_assert_str_eq(test_panics.last.message, "x < 10");
    cr_assert(strstr(test_panics.last.file, "test_report.c") != NULL);
    cr_assert_gt(test_panics.last.line, 0);
}
#endif

Test(report, panic_report_carries_every_field)
{
    bool panicked = TEST_CATCH_PANIC(
        mm_panic_report(MM_REPORT_POISON, "freed frame written", "f.c", 7, 0x5000, 8, 1, 2));
    cr_assert(panicked);
    const mm_report_t *r = &test_panics.last;
    cr_assert_eq(r->kind, MM_REPORT_POISON);
    cr_assert_str_eq(r->message, "freed frame written");
    cr_assert_str_eq(r->file, "f.c");
    cr_assert_eq(r->line, 7);
    cr_assert_eq(r->address, 0x5000);
    cr_assert_eq(r->offset, 8);
    cr_assert_eq(r->found, 1);
    cr_assert_eq(r->expected, 2);
}

Test(report, kind_names)
{
    cr_assert_str_eq(mm_report_kind_str(MM_REPORT_POISON), "poison");
    cr_assert_str_eq(mm_report_kind_str(MM_REPORT_DOUBLE_FREE), "double-free");
    cr_assert_str_eq(mm_report_kind_str(MM_REPORT_LOCK_ORDER), "lock-order");
    cr_assert_str_eq(mm_report_kind_str(MM_REPORT_LOCKUP), "lockup");
    cr_assert_str_eq(mm_report_kind_str(MM_REPORT_KIND_COUNT), "unknown");
}
