/* kmem_cache's figures for kheap-bench (kmem-cache-pairs.c). */
#ifndef KMEM_CACHE_PAIRS_H
#define KMEM_CACHE_PAIRS_H

/* Times kmem_cache against glibc on 64-byte objects; prints a table and
 * `ratio kmem_cache.pair.<N>` lines. */
void kmem_cache_pairs(void);

#endif
