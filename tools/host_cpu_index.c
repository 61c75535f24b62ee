/*
 * mm_hook_cpu_index for host programs: shared by the host hook set
 * (host_hooks.c) and the malloc shim, which brings its own other hooks.
 */
#include <limits.h>
#include <stdatomic.h>

#include <hadron/mm/hooks.h>

/* Each thread is a "CPU" of its own, numbered in order of its first call:
 * no two threads ever share an index, which is all per-CPU state needs
 * (threads past HADRON_MM_MAX_CPUS take the shared, locked paths). */
unsigned mm_hook_cpu_index(void)
{
    static atomic_uint next_index;
    static _Thread_local unsigned index = UINT_MAX;
    if (index == UINT_MAX)
        index = atomic_fetch_add_explicit(&next_index, 1, memory_order_relaxed);
    return index;
}
