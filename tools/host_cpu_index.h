/* The "CPU" number of a host thread, for every host program's
 * mm_hook_cpu_index (host_cpu_index.c). */
#ifndef HOST_CPU_INDEX_H
#define HOST_CPU_INDEX_H

#include <limits.h>

/* Indices given back when their thread exits and handed out again, lowest
 * first; a thread that finds all of them taken by live threads gets one
 * above, never reused. */
#define HOST_INDEX_POOL 1024u

/* What a thread's calls return once its index was given back, during the
 * rest of its exit: at or above HADRON_MM_MAX_CPUS, so no per-CPU state. */
#define HOST_INDEX_EXITED (UINT_MAX - 1u)

/* Each live thread is a "CPU" of its own: no two live threads ever share
 * an index, which is all per-CPU state needs (threads at or past
 * HADRON_MM_MAX_CPUS take the shared, locked paths). */
unsigned host_thread_index(void);

#endif
