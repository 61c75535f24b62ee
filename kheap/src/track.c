/*
 * kheap: the alloc_tracking option's counters (see track.h).
 */
#include "track.h"

#include <hadron/mm/assert.h>

#if HADRON_MM_ALLOC_TRACKING

static unsigned kh_size_class(size_t req)
{
    if (req <= 16)
        return 0;
    unsigned bits = 64u - (unsigned)__builtin_clzll((unsigned long long)(req - 1));
    unsigned c = bits - 4u;
    return c < KHEAP_SIZE_CLASSES ? c : KHEAP_SIZE_CLASSES - 1;
}

void kh_track_init(kheap_t *heap)
{
    mm_spin_init_ranked(&heap->track_lock, MM_LOCK_RANK_KHEAP_TRACK, "kheap tracking");
}

void kh_track_alloc(kheap_t *heap, const void *p, size_t req, size_t usable)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&heap->track_lock);
    if (p == NULL) {
        heap->failures++;
    } else {
        heap->allocs++;
        heap->histogram[kh_size_class(req)]++;
        heap->live_count++;
        heap->live_bytes += usable;
        if (heap->live_count > heap->peak_live_count)
            heap->peak_live_count = heap->live_count;
        if (heap->live_bytes > heap->peak_live_bytes)
            heap->peak_live_bytes = heap->live_bytes;
    }
    mm_spin_unlock_irqrestore(&heap->track_lock, f);
}

void kh_track_free(kheap_t *heap, size_t usable)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&heap->track_lock);
    MM_ASSERT(heap->live_count > 0 && heap->live_bytes >= usable);
    heap->frees++;
    heap->live_count--;
    heap->live_bytes -= usable;
    mm_spin_unlock_irqrestore(&heap->track_lock, f);
}

void kh_track_resize(kheap_t *heap, size_t old_usable, size_t new_usable)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&heap->track_lock);
    heap->reallocs++;
    heap->live_bytes = heap->live_bytes - old_usable + new_usable;
    if (heap->live_bytes > heap->peak_live_bytes)
        heap->peak_live_bytes = heap->live_bytes;
    mm_spin_unlock_irqrestore(&heap->track_lock, f);
}

void kh_track_stats(kheap_t *heap, kheap_stats_t *s)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&heap->track_lock);
    s->tracking = true;
    s->live_bytes = heap->live_bytes;
    s->peak_live_bytes = heap->peak_live_bytes;
    s->live_count = heap->live_count;
    s->peak_live_count = heap->peak_live_count;
    s->allocs = heap->allocs;
    s->frees = heap->frees;
    s->reallocs = heap->reallocs;
    s->failures = heap->failures;
    for (unsigned i = 0; i < KHEAP_SIZE_CLASSES; i++)
        s->histogram[i] = heap->histogram[i];
    mm_spin_unlock_irqrestore(&heap->track_lock, f);
}

#endif /* HADRON_MM_ALLOC_TRACKING */
