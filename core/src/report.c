#include <hadron/mm/assert.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/report.h>

static const char *const kind_names[MM_REPORT_KIND_COUNT] = {
    [MM_REPORT_ASSERT] = "assertion",     [MM_REPORT_POISON] = "poison",
    [MM_REPORT_DOUBLE_FREE] = "double-free", [MM_REPORT_BAD_POINTER] = "bad-pointer",
    [MM_REPORT_REDZONE] = "redzone",      [MM_REPORT_CORRUPT] = "corrupt",
    [MM_REPORT_LOCK_ORDER] = "lock-order", [MM_REPORT_LOCKUP] = "lockup",
};

const char *mm_report_kind_str(mm_report_kind_t kind)
{
    if ((unsigned)kind >= MM_REPORT_KIND_COUNT)
        return "unknown";
    return kind_names[kind];
}

_Noreturn void mm_panic_report(mm_report_kind_t kind, const char *message, const char *file,
                               int line, uint64_t address, uint64_t offset, uint64_t found,
                               uint64_t expected)
{
    mm_report_t report = {
        .kind = kind,
        .message = message,
        .file = file,
        .line = line,
        .address = address,
        .offset = offset,
        .found = found,
        .expected = expected,
    };
    mm_hook_panic(&report);
}

_Noreturn void mm_assert_fail(const char *expr, const char *file, int line)
{
    mm_panic_report(MM_REPORT_ASSERT, expr, file, line, 0, 0, 0, 0);
}
