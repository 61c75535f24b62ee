/* Scaling of kmem_cache and kmalloc with threads, for kheap-bench
 * (threads-pairs.c). */
#ifndef THREADS_PAIRS_H
#define THREADS_PAIRS_H

#include <stddef.h>

/* Another allocator's figures on the same trace: ns per pair with 1 and 2
 * threads (medians), measured by threads_pairs_row, possibly in another
 * process (an allocator that must be preloaded). */
typedef struct threads_row {
    const char *name;
    double ns[2];
} threads_row_t;

/* Times one allocator given by its malloc and free with 1 and 2 threads
 * (median of 5 alternating runs) into row->ns. */
void threads_pairs_row(void *(*alloc)(size_t), void (*release)(void *), threads_row_t *row);

/* Times 1 and 2 threads on kmem_cache, kmalloc and glibc, alternating;
 * prints a table with `others` (already measured) below them, and
 * `ratio *.pair.threads2*` lines: scaling, and kmem_cache and kheap against
 * glibc and each of `others` with 2 threads. */
void threads_pairs(const threads_row_t *others, int n_others);

#endif
