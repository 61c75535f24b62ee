/*
 * mm_hook_cpu_index for the host hook set and the malloc shim, in a file of
 * its own: a program that needs another answer (pmm-bench) defines the
 * hook itself and the linker leaves this one out.
 */
#include <hadron/mm/hooks.h>

#include "host_cpu_index.h"

unsigned mm_hook_cpu_index(void)
{
    return host_thread_index();
}
