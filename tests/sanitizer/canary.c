/* Deliberate bugs, one per test: in a sanitizer build each must fail the
 * run, proving that a sanitizer report inside a Criterion worker is not
 * swallowed. Registered with should_fail. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>

#if defined(CANARY_ADDRESS)
Test(sanitizer_canary, heap_overflow_is_reported)
{
    volatile char *p = malloc(16);
    p[16] = 1;
    free((void *)p);
}
#elif defined(CANARY_UNDEFINED)
Test(sanitizer_canary, signed_overflow_is_reported)
{
    volatile int x = INT_MAX;
    x = x + 1;
    cr_assert(x != 0);
}
#endif
