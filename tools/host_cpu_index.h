/* The "CPU" number of a host thread, for every host program's
 * mm_hook_cpu_index (host_cpu_index.c). */
#ifndef HOST_CPU_INDEX_H
#define HOST_CPU_INDEX_H

/* Each thread is a "CPU" of its own, numbered in order of its first call:
 * no two threads ever share an index, which is all per-CPU state needs
 * (threads past HADRON_MM_MAX_CPUS take the shared, locked paths). */
unsigned host_thread_index(void);

#endif
