#include <criterion/criterion.h>
#include <string.h>

#include <hadron/mm/status.h>

Test(status, every_code_has_its_own_name)
{
    for (int a = 0; a < MM_STATUS_COUNT; a++) {
        const char *sa = mm_status_str((mm_status_t)a);
        cr_assert(strncmp(sa, "MM_", 3) == 0, "status %d: %s", a, sa);
        cr_assert(strcmp(sa, "MM_STATUS_UNKNOWN") != 0, "status %d has no name", a);
        for (int b = a + 1; b < MM_STATUS_COUNT; b++)
            cr_assert_str_neq(sa, mm_status_str((mm_status_t)b));
    }
}

Test(status, names_match_enumerators)
{
    cr_assert(strncmp(mm_status_str(MM_OK), "MM_OK:", 6) == 0);
    cr_assert(strncmp(mm_status_str(MM_ERR_NOMEM), "MM_ERR_NOMEM:", 13) == 0);
    cr_assert(strncmp(mm_status_str(MM_ERR_DOUBLE_FREE), "MM_ERR_DOUBLE_FREE:", 19) == 0);
    cr_assert(strncmp(mm_status_str(MM_ERR_STALE), "MM_ERR_STALE:", 13) == 0);
}

Test(status, unknown_values_are_named_unknown)
{
    cr_assert_str_eq(mm_status_str(MM_STATUS_COUNT), "MM_STATUS_UNKNOWN");
    cr_assert_str_eq(mm_status_str((mm_status_t)-1), "MM_STATUS_UNKNOWN");
    cr_assert_str_eq(mm_status_str((mm_status_t)1000), "MM_STATUS_UNKNOWN");
}
