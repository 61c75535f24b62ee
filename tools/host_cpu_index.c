/*
 * The thread numbering behind mm_hook_cpu_index in host programs: the host
 * hook set (host_hooks.c), the test fixtures (tests/support) and the malloc
 * shim each define the hook over it.
 */
#include <limits.h>
#include <stdatomic.h>

#include "host_cpu_index.h"

unsigned host_thread_index(void)
{
    static atomic_uint next_index;
    static _Thread_local unsigned index = UINT_MAX;
    if (index == UINT_MAX)
        index = atomic_fetch_add_explicit(&next_index, 1, memory_order_relaxed);
    return index;
}
