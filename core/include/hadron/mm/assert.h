/*
 * hadron-mm core: invariant assertions.
 *
 * MM_ASSERT states an invariant of hadron-mm's own data. A failure means a
 * bug or memory corruption and is routed to mm_hook_panic(). Caller mistakes
 * are never asserted; they return a status. Assertions are compiled in when
 * the `assertions` option is on (the default); the condition is still
 * type-checked when they are off.
 */
#ifndef HADRON_MM_ASSERT_H
#define HADRON_MM_ASSERT_H

#include <hadron/mm/config.h>
#include <hadron/mm/report.h>

_Noreturn void mm_assert_fail(const char *expr, const char *file, int line);

/* Reports `kind` with the given fields through mm_hook_panic(). */
_Noreturn void mm_panic_report(mm_report_kind_t kind, const char *message, const char *file,
                               int line, uint64_t address, uint64_t offset, uint64_t found,
                               uint64_t expected);

#if HADRON_MM_ASSERTIONS
#define MM_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            mm_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)
#else
#define MM_ASSERT(cond)                                                                            \
    do {                                                                                           \
        (void)sizeof(!(cond));                                                                     \
    } while (0)
#endif

#define MM_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)

#endif /* HADRON_MM_ASSERT_H */
