/*
 * The alloc_tracking option, wrapped around the kmalloc layer: counters and
 * a size histogram of what kheap_alloc and kheap_free do, under a lock of
 * their own. Without the option every call here is empty.
 */
#ifndef KHEAP_TRACK_H
#define KHEAP_TRACK_H

#include <hadron/mm/kheap.h>

#pragma GCC visibility push(hidden)

#if HADRON_MM_ALLOC_TRACKING
void kh_track_init(kheap_t *heap);
/* p NULL counts a failure. */
void kh_track_alloc(kheap_t *heap, const void *p, size_t req, size_t usable);
void kh_track_free(kheap_t *heap, size_t usable);
void kh_track_resize(kheap_t *heap, size_t old_usable, size_t new_usable);
void kh_track_stats(kheap_t *heap, kheap_stats_t *out);
/* A block's usable size, asked only when the counters need it. */
static inline size_t kh_track_block_usable(kheap_t *heap, const void *p)
{
    return kheap_block_usable_size(heap, p);
}
#else
static inline void kh_track_init(kheap_t *heap)
{
    (void)heap;
}
static inline void kh_track_alloc(kheap_t *heap, const void *p, size_t req, size_t usable)
{
    (void)heap, (void)p, (void)req, (void)usable;
}
static inline void kh_track_free(kheap_t *heap, size_t usable)
{
    (void)heap, (void)usable;
}
static inline void kh_track_resize(kheap_t *heap, size_t old_usable, size_t new_usable)
{
    (void)heap, (void)old_usable, (void)new_usable;
}
static inline void kh_track_stats(kheap_t *heap, kheap_stats_t *out)
{
    (void)heap, (void)out;
}
static inline size_t kh_track_block_usable(kheap_t *heap, const void *p)
{
    (void)heap, (void)p;
    return 0;
}
#endif

#pragma GCC visibility pop

#endif /* KHEAP_TRACK_H */
