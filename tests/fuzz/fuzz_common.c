#include <stdlib.h>

#include "fuzz_common.h"

int fz_trace;

void fz_init(void)
{
    const char *t = getenv("HADRON_FUZZ_TRACE");
    fz_trace = t != NULL ? atoi(t) : 0;
}
