/*
 * membarrier(2) for the hosts' mm_hook_cpu_barrier: the expedited private
 * command interrupts only the CPUs running this process's threads and
 * costs about a microsecond; it must be registered once per process.
 */
#include "host_barrier.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static long membarrier(int cmd)
{
    return syscall(__NR_membarrier, cmd, 0, 0);
}

bool host_membarrier(void)
{
    /* 0 unknown, 1 registered, 2 not available. */
    static atomic_int state;
    int s = atomic_load_explicit(&state, memory_order_acquire);
    if (s == 0) {
        s = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 ? 1 : 2;
        atomic_store_explicit(&state, s, memory_order_release);
    }
    if (s != 1)
        return false;
    int saved = errno;
    bool ok = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
    errno = saved;
    return ok;
}
