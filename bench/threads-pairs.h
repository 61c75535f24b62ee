/* Scaling of kmem_cache and kmalloc with threads, for kheap-bench
 * (threads-pairs.c). */
#ifndef THREADS_PAIRS_H
#define THREADS_PAIRS_H

/* Times 1 and 2 threads on kmem_cache, kmalloc and glibc; prints a table
 * and `ratio *.pair.threads2*` lines. */
void threads_pairs(void);

#endif
