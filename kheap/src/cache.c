/*
 * kheap: per-CPU caches of freed run slots.
 *
 * Most of a run slot's cost under the lock is not the slot work but the
 * lock itself and the run's metadata, which the next allocation of the
 * class would touch again. A freed slot parked on its CPU instead, and
 * handed back by that CPU's next allocation of the class, skips both for
 * the allocation: no lock (the cache is the CPU's own and interrupts are
 * off), no run header, and the slot comes back warm in the cache.
 *
 * A cached slot stays "in use" in its run's bitmap, so runs, counters and
 * kheap_check see nothing new; what tells it from a live slot are its first
 * two words (block.h, kh_cached_write): the list link and a check value
 * keyed to heap, address and link, written when it is cached and cleared
 * when it leaves. A stray write to a cached slot is caught (a panic) when
 * the slot is taken, before the link is followed.
 */
#include "block.h"

#if KH_CACHES > 0

/* The calling CPU's cache, or NULL. Interrupts disabled. */
static kheap_cpu_cache_t *kh_cache_here(kheap_t *heap)
{
    unsigned cpu = mm_hook_cpu_index();
    return cpu < KH_CACHES ? &heap->cache[cpu] : NULL;
}

/* Slots of a class a cache holds at most. */
static unsigned kh_cache_limit(unsigned slot)
{
    unsigned n = KHEAP_CACHE_CLASS_BYTES / slot;
    return n == 0 ? 1 : n > KHEAP_CACHE_DEPTH ? KHEAP_CACHE_DEPTH : n;
}

/* Take the head of c's list of class cls (non-empty). */
static uintptr_t kh_cache_take(kheap_t *heap, kheap_cpu_cache_t *c, unsigned cls)
{
    uintptr_t slot = kh_addr(c->head[cls]), next;
    if (!kh_cached_read(heap, slot, &next))
        KH_CORRUPT("kheap: cached free slot written after free", slot,
                   ((const uint64_t *)slot)[1], kh_cached_key(heap, slot));
    c->head[cls] = (void *)next;
    __atomic_store_n(&c->count[cls], (uint8_t)(c->count[cls] - 1), __ATOMIC_RELAXED);
    ((uint64_t *)slot)[1] = 0; /* no longer reads as cached */
    return slot;
}

void *kheap_cache_pop(kheap_t *heap, size_t req)
{
    if (!__atomic_load_n(&heap->cache_seen, __ATOMIC_RELAXED))
        return NULL;
    unsigned cls = kheap_class_of(req);
    uintptr_t slot = 0;
    mm_irqflags_t f = mm_hook_irq_save();
    kheap_cpu_cache_t *c = kh_cache_here(heap);
    if (c != NULL && c->head[cls] != NULL)
        slot = kh_cache_take(heap, c, cls);
    mm_hook_irq_restore(f);
#if HADRON_MM_ALLOC_TRACKING
    if (slot != 0) {
        f = kh_lock(heap);
        kheap_track_alloc(heap, req, kheap_class_slot(cls));
        kh_unlock(heap, f);
    }
#endif
    return (void *)slot;
}

bool kheap_cache_push(kheap_t *heap, const kh_run_t *run, uintptr_t slot)
{
    MM_ASSERT(heap->cpu_caches);
    kheap_cpu_cache_t *c = kh_cache_here(heap);
    unsigned cls = run->cls;
    /* The last slot in use of a run goes back (and the run with it): cached,
     * it would keep the whole run from the heap. */
    if (c == NULL || c->count[cls] >= kh_cache_limit(run->slot) || run->nused == 1)
        return false;
    kh_cached_write(heap, slot, kh_addr(c->head[cls]));
    c->head[cls] = (void *)slot;
    __atomic_store_n(&c->count[cls], (uint8_t)(c->count[cls] + 1), __ATOMIC_RELAXED);
    return true;
}

size_t kheap_cache_flush_locked(kheap_t *heap)
{
    /* Called whenever an allocation finds no room: a heap that never had
     * caches on has nothing cached. */
    if (!__atomic_load_n(&heap->cache_seen, __ATOMIC_RELAXED))
        return 0;
    kheap_cpu_cache_t *c = kh_cache_here(heap);
    size_t flushed = 0;
    for (unsigned cls = 0; c != NULL && cls < KHEAP_RUN_CLASSES; cls++) {
        while (c->head[cls] != NULL) {
            uintptr_t slot = kh_cache_take(heap, c, cls);
            kh_ref_t ref;
            mm_status_t st = kheap_lookup(heap, slot, &ref);
            if (st != MM_OK || ref.run == NULL || ref.run->cls != cls)
                KH_CORRUPT("kheap: cached slot is not a slot of its class in use", slot, st, cls);
            kheap_run_free(heap, ref.run, ref.slot);
            flushed++;
        }
    }
    return flushed;
}

bool kheap_cache_verify(kheap_t *heap, const char **why, uintptr_t *where)
{
    kheap_cpu_cache_t *c = kh_cache_here(heap);
    for (unsigned cls = 0; c != NULL && cls < KHEAP_RUN_CLASSES; cls++) {
        unsigned n = 0, limit = kh_cache_limit(kheap_class_slot(cls));
        for (uintptr_t slot = kh_addr(c->head[cls]), next; slot != 0; slot = next, n++) {
            kh_ref_t ref;
            *where = slot;
            if (n == limit) {
                *why = "kheap: CPU cache list longer than its limit";
                return false;
            }
            if (!kh_cached_read(heap, slot, &next)) {
                *why = "kheap: cached free slot written after free";
                return false;
            }
            if (kheap_lookup(heap, slot, &ref) != MM_OK || ref.run == NULL ||
                ref.run->cls != cls) {
                *why = "kheap: cached slot is not a slot of its class in use";
                return false;
            }
        }
        if (n != c->count[cls]) {
            *where = kh_addr(c);
            *why = "kheap: CPU cache count wrong";
            return false;
        }
    }
    return true;
}

#endif
