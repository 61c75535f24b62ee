/*
 * mm_hook_cpu_barrier for host programs: membarrier(2).
 */
#ifndef HOST_BARRIER_H
#define HOST_BARRIER_H

#include <stdbool.h>

/* Every other running thread of this process executes a full memory
 * barrier before this returns true (MEMBARRIER_CMD_PRIVATE_EXPEDITED,
 * registered at the first call); false when the kernel lacks it. */
bool host_membarrier(void);

#endif
