/*
 * kmem_cache: each CPU's front, and the public API over it (see
 * kmem_cache.h for the contract).
 *
 * A front is a magazine per cache of an index: up to front_cap free
 * objects, taken and given back last in, first out. Its CPU uses it with
 * interrupts disabled and no lock: entering sets `active`, and a context
 * that must see or change fronts holds them all out of use first
 * (a per-CPU gate: gate.h, kmem_percpu.c), so the common path executes no locked
 * instruction and touches no shared counter. An allocation pops one; a
 * free finds the object's slab in the index's table without the index lock
 * and pushes it. The index lock is taken once per batch, when a magazine is
 * empty (refilled with half its capacity) or full (its older half goes
 * back to the slabs). An object freed on another CPU than the one that
 * allocated it joins the freeing CPU's front: nothing is lost, and what
 * each front holds is bounded by its caches' front_cap. A CPU that finds
 * its front held, or that interrupted itself inside it, takes the locked
 * paths, which are always correct.
 *
 * Whether an object is live is one bit in its slab, flipped with a plain
 * store by the slab's live_owner CPU from inside its front and atomically
 * by everyone else (kh_slot_flip_live), so a double free is refused whether
 * the first free left the object in a front or in its slab, and an
 * allocation and free of a CPU's own objects execute no locked
 * instruction.
 */
#include <hadron/mm/gate.h>

#include "blocks_api.h"
#include "kmem_internal.h"

static kh_front_t *kh_front_of(kmem_index_t *x, unsigned cpu)
{
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    return all == NULL ? NULL : __atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE);
}

/* Makes cpu's front of x (and the index's array of fronts) if missing.
 * False without memory. No lock held. */
static bool kh_front_create(kmem_index_t *x, unsigned cpu)
{
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    if (all == NULL) {
        size_t bytes = HADRON_MM_MAX_CPUS * sizeof(*all);
        kh_front_t **fresh = kh_blocks_alloc_inner(x->heap, bytes, 0);
        if (fresh == NULL)
            return false;
        __builtin_memset(fresh, 0, bytes);
        all = NULL;
        if (__atomic_compare_exchange_n(&x->fronts, &all, fresh, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            all = fresh;
        else
            kh_blocks_free_inner(x->heap, fresh);
    }
    if (__atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE) != NULL)
        return true;
    size_t bytes = sizeof(kh_front_t) + x->front_slots * sizeof(kh_mag_t);
    kh_front_t *fr = kh_blocks_alloc_inner(x->heap, bytes, 64);
    if (fr == NULL)
        return false;
    __builtin_memset(fr, 0, bytes);
    mm_spin_init_ranked(&fr->lock, MM_LOCK_RANK_KHEAP_FRONT, "kheap front");
    fr->tag = cpu + 1;
    fr->mags = x->front_slots;
    kh_front_t *none = NULL;
    /* seq_cst: a full barrier before this CPU's first look at the index's
     * holders (kmem_percpu.c). */
    if (!__atomic_compare_exchange_n(&all[cpu], &none, fr, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_ACQUIRE))
        kh_blocks_free_inner(x->heap, fr);
    return true;
}

/* kh_front_enter's rare half: cpu (below HADRON_MM_MAX_CPUS) has no
 * front of x yet. Makes it with interrupts on (it allocates from the heap,
 * which may grow), then asks for the CPU again, which may differ: that
 * CPU's front, made once more if missing, or NULL (no memory, no per-CPU
 * state). Returns with interrupts disabled again (*f to restore). */
static __attribute__((noinline)) kh_front_t *kh_front_make(kmem_index_t *x, unsigned cpu,
                                                           mm_irqflags_t *f)
{
    for (int tries = 0; tries < 2; tries++) {
        mm_hook_irq_restore(*f);
        bool made = kh_front_create(x, cpu);
        *f = mm_hook_irq_save();
        if (!made)
            return NULL;
        cpu = mm_hook_cpu_index();
        if (cpu >= HADRON_MM_MAX_CPUS)
            return NULL;
        kh_front_t *fr = kh_front_of(x, cpu);
        if (fr != NULL)
            return fr;
    }
    return NULL;
}

/* This CPU's front of x, entered with interrupts disabled (*f to
 * restore), or NULL: no per-CPU state (a CPU index at or above
 * HADRON_MM_MAX_CPUS), no front yet and `create` false (a free: a CPU that
 * never allocated from x holds nothing of it, and a free of a large block
 * must not make one), no memory for a front, or the front held
 * (kh_fronts_hold) or already entered (the caller interrupted its own CPU
 * inside it). Inline: it is on every allocation's and free's path. */
static inline __attribute__((always_inline)) kh_front_t *kh_front_enter(kmem_index_t *x,
                                                                        bool create,
                                                                        mm_irqflags_t *f)
{
    *f = mm_hook_irq_save();
    unsigned cpu = mm_hook_cpu_index();
    if (cpu >= HADRON_MM_MAX_CPUS) {
        mm_hook_irq_restore(*f);
        return NULL;
    }
    kh_front_t *fr = kh_front_of(x, cpu);
    if (fr == NULL && create)
        fr = kh_front_make(x, cpu, f);
    if (fr != NULL && mm_gate_enter(&fr->active, &x->holders))
        return fr;
    mm_hook_irq_restore(*f);
    return NULL;
}

/* Leaves: everything done inside is visible to a holder that sees
 * active == 0. */
static void kh_front_leave(kh_front_t *fr, mm_irqflags_t f)
{
    mm_gate_leave(&fr->active);
    mm_hook_irq_restore(f);
}

/* Refills magazine m of front fr (locked) from the slabs: how many. */
static uint32_t kh_front_refill(kmem_cache_t *c, kh_front_t *fr, kh_mag_t *m)
{
    uint32_t n = (uint32_t)kh_cache_take(c, m->entry, (c->front_cap + 1) / 2, fr->tag, &m->slab);
    __atomic_store_n(&m->count, n, __ATOMIC_RELAXED);
    return n;
}

/* c's magazine in the front tagged `tag` was empty and no slab that front
 * may take from had a free slot: a new slab, made with the front left and
 * interrupts on (the heap may grow, and its growth callback may allocate
 * from this cache on this CPU), its slots taken in the same lock hold that
 * made it. The front is entered again (the CPU may differ afterwards) and
 * they fill its magazine: returns it entered (*f to restore), or NULL
 * without memory, or when no front with an empty magazine for c could be
 * entered (an interrupt refilled it meanwhile): the slots then go back and
 * the slab with them. */
static kh_front_t *kh_front_grow(kmem_cache_t *c, uint32_t tag, mm_irqflags_t *f)
{
    uintptr_t got[KH_FRONT_MAX];
    uintptr_t slab = 0;
    size_t n = kh_cache_grow_take(c, got, (c->front_cap + 1) / 2, tag, &slab);
    if (n == 0)
        return NULL;
    kh_front_t *fr = kh_front_enter(c->index, true, f);
    if (fr != NULL) {
        kh_mag_t *m = &fr->mag[c->front_slot];
        if (m->count == 0) {
            __builtin_memcpy(m->entry, got, n * sizeof(got[0]));
            __atomic_store_n(&m->count, (uint32_t)n, __ATOMIC_RELAXED);
            if (fr->tag == tag)
                m->slab = slab;
            return fr;
        }
        kh_front_leave(fr, *f);
    }
    kh_cache_put(c->index, got, n);
    return NULL;
}

/* An object from this CPU's magazine for c, refilled from the slabs when
 * empty; NULL when there is no front or no slab it may take from could be
 * made. */
static void *kh_front_alloc(kmem_cache_t *c)
{
    mm_irqflags_t f;
    kh_front_t *fr = kh_front_enter(c->index, true, &f);
    if (fr == NULL)
        return NULL;
    kh_mag_t *m = &fr->mag[c->front_slot];
    if (m->count == 0 && kh_front_refill(c, fr, m) == 0) {
        kh_front_leave(fr, f);
        fr = kh_front_grow(c, fr->tag, &f);
        if (fr == NULL)
            return NULL;
        m = &fr->mag[c->front_slot];
    }
    /* Stored atomically: kmem_cache_get_stats reads them without the lock. */
    uint32_t n = m->count - 1;
    __atomic_store_n(&m->count, n, __ATOMIC_RELAXED);
    __atomic_store_n(&m->allocs, m->allocs + 1, __ATOMIC_RELAXED);
    /* Inside: the live bit may be flipped with a plain store. */
    void *obj = kh_cache_hand_out(c, m->entry[n], fr->tag);
    kh_front_leave(fr, f);
    return obj;
}

/* The cache of obj when it is a live slot of a sound slab of x (*slab,
 * *slot), and that cache is `expect` unless NULL; else NULL: anything
 * unexpected is left to the locked paths, which tell a damaged header, a
 * bad pointer and a double free apart. A live slot keeps its slab, so the
 * header read here stays valid. Inside this CPU's front
 * (kh_index_find_unlocked). With `expect`, the slot is computed from it
 * while the header is read, not after: one load less on the way. */
static inline __attribute__((always_inline)) kmem_cache_t *
kh_front_lookup(kmem_index_t *x, const void *obj, kmem_cache_t *expect, kh_slab_t **slab,
                size_t *slot)
{
    uintptr_t base = kh_index_find_unlocked(x, (uintptr_t)obj);
    if (base == 0)
        return NULL;
    kh_slab_t *s = (kh_slab_t *)base;
    kmem_cache_t *c = expect != NULL ? expect : s->cache;
    if (c == NULL || s->cache != c || s->check != kh_slab_check(s, c) ||
        !kh_slot_of(c, s, (uintptr_t)obj, slot) || !kh_slot_live(s, *slot))
        return NULL;
    *slab = s;
    return c;
}

mm_status_t kh_front_free(kmem_index_t *x, void *obj, kmem_cache_t *expect, size_t *usable)
{
    mm_irqflags_t f;
    kh_front_t *fr = kh_front_enter(x, false, &f);
    if (fr == NULL)
        return MM_ERR_NOT_MAPPED;
    kh_slab_t *s;
    size_t i;
    kmem_cache_t *c = kh_front_lookup(x, obj, expect, &s, &i);
    if (c == NULL)
        goto locked;
    uintptr_t base = (uintptr_t)s;
#if HADRON_MM_HEAP_REDZONES
    kh_debug_on_free(c, s, i); /* while live: guards checked, no poison yet */
#endif
    if (!kh_slot_clear_live(s, i, fr->tag))
        goto locked; /* freed meanwhile on another CPU */
    kh_mag_t *m = &fr->mag[c->front_slot];
    uintptr_t spill[KH_FRONT_MAX];
    size_t nspill = 0;
    if (m->count >= c->front_cap) {
        /* The older half goes back: the newer is likelier still cached. */
        nspill = m->count / 2;
        __builtin_memcpy(spill, m->entry, nspill * sizeof(spill[0]));
        __builtin_memmove(m->entry, m->entry + nspill, (m->count - nspill) * sizeof(spill[0]));
        __atomic_store_n(&m->count, m->count - (uint32_t)nspill, __ATOMIC_RELAXED);
    }
    m->entry[m->count] = base | i;
    __atomic_store_n(&m->count, m->count + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&m->frees, m->frees + 1, __ATOMIC_RELAXED);
    kh_front_leave(fr, f);
    if (nspill != 0)
        kh_cache_put(x, spill, nspill);
    if (usable != NULL)
        *usable = c->object_size;
    return MM_OK;
locked:
    kh_front_leave(fr, f);
    return MM_ERR_NOT_MAPPED;
}

kmem_cache_t *kh_front_owner(kmem_index_t *x, const void *obj)
{
    mm_irqflags_t f;
    kh_front_t *fr = kh_front_enter(x, false, &f);
    if (fr == NULL)
        return NULL;
    kh_slab_t *s;
    size_t i;
    kmem_cache_t *c = kh_front_lookup(x, obj, NULL, &s, &i);
    kh_front_leave(fr, f);
    return c;
}

bool kh_front_owns(const kmem_index_t *x, const void *ptr)
{
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    if (all == NULL)
        return false;
    if ((const void *)all == ptr)
        return true;
    for (unsigned cpu = 0; cpu < HADRON_MM_MAX_CPUS; cpu++)
        if ((const void *)__atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE) == ptr)
            return true;
    return false;
}

/* Takes magazine j's objects out of fr into held: how many. The caller
 * has fr to itself: entered as its CPU, or held and locked. */
static size_t kh_mag_take_all(kh_front_t *fr, uint32_t j, uintptr_t *held)
{
    size_t n = fr->mag[j].count;
    __builtin_memcpy(held, fr->mag[j].entry, n * sizeof(held[0]));
    __atomic_store_n(&fr->mag[j].count, 0, __ATOMIC_RELAXED);
    return n;
}

/* This CPU's front only, entered as its owner: for when the fronts cannot
 * be held. Each magazine's objects go back with the front left (slabs
 * they empty go back to the heap). */
static size_t kh_front_drain_own(kmem_index_t *x)
{
    size_t total = 0;
    for (uint32_t j = 0;; j++) {
        uintptr_t held[KH_FRONT_MAX];
        mm_irqflags_t f;
        kh_front_t *fr = kh_front_enter(x, false, &f);
        if (fr == NULL)
            return total;
        bool more = j < fr->mags;
        size_t n = more ? kh_mag_take_all(fr, j, held) : 0;
        kh_front_leave(fr, f);
        if (!more)
            return total;
        if (n != 0)
            kh_cache_put(x, held, n);
        total += n;
    }
}

size_t kh_front_drain(kmem_index_t *x)
{
    if (!kh_fronts_hold(x))
        return kh_front_drain_own(x);
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    size_t total = 0;
    for (unsigned cpu = 0; all != NULL && cpu < HADRON_MM_MAX_CPUS; cpu++) {
        kh_front_t *fr = __atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE);
        for (uint32_t j = 0; fr != NULL && j < fr->mags; j++) {
            uintptr_t held[KH_FRONT_MAX];
            /* The lock is against another drainer. */
            mm_irqflags_t f = mm_spin_lock_irqsave(&fr->lock);
            size_t n = kh_mag_take_all(fr, j, held);
            mm_spin_unlock_irqrestore(&fr->lock, f);
            if (n != 0)
                kh_cache_put(x, held, n);
            total += n;
        }
    }
    kh_fronts_release(x);
    return total;
}

void kh_front_lock_all(kmem_index_t *x)
{
    /* Every front left and kept out of use, so a fork copies none
     * half-changed. A hold refused (no barrier) leaves only the locks. */
    x->fork_held = kh_fronts_hold(x);
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    uintptr_t last = 0;
    for (;;) {
        /* The lowest front above the last one locked: the lock-order
         * checker allows a family only upwards in address. O(CPUs^2), for
         * a fork. */
        kh_front_t *next = NULL;
        for (unsigned cpu = 0; all != NULL && cpu < HADRON_MM_MAX_CPUS; cpu++) {
            kh_front_t *fr = __atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE);
            if (fr != NULL && (uintptr_t)fr > last && (next == NULL || fr < next))
                next = fr;
        }
        if (next == NULL)
            return;
        mm_spin_lock(&next->lock);
        next->held_for_fork = true;
        last = (uintptr_t)next;
    }
}

void kh_front_unlock_all(kmem_index_t *x)
{
    kh_front_t **all = __atomic_load_n(&x->fronts, __ATOMIC_ACQUIRE);
    for (unsigned cpu = 0; all != NULL && cpu < HADRON_MM_MAX_CPUS; cpu++) {
        kh_front_t *fr = __atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE);
        if (fr != NULL && fr->held_for_fork) {
            fr->held_for_fork = false;
            mm_spin_unlock(&fr->lock);
        }
    }
    if (x->fork_held)
        kh_fronts_release(x);
    x->fork_held = false;
}

/* Frees every front of x and the array of them. The index is dead: no
 * other context uses it. */
static void kh_front_free_all(kmem_index_t *x)
{
    kh_front_t **all = x->fronts;
    if (all == NULL)
        return;
    for (unsigned cpu = 0; cpu < HADRON_MM_MAX_CPUS; cpu++)
        if (all[cpu] != NULL)
            kh_blocks_free_inner(x->heap, all[cpu]);
    x->fronts = NULL;
    kh_blocks_free_inner(x->heap, all);
}

/* ---- API --------------------------------------------------------------- */

void *kmem_cache_alloc(kmem_cache_t *cache)
{
    if (!kh_cache_ready(cache))
        return NULL;
    void *obj = kh_front_alloc(cache);
    if (obj != NULL)
        return obj;
    obj = kh_cache_alloc(cache);
    /* Out of memory: what the fronts hold may make a slab of this cache
     * partial again, or empty slabs of others go back to the heap. */
    if (obj == NULL && kh_front_drain(cache->index) != 0)
        obj = kh_cache_alloc(cache);
    if (obj == NULL)
        kh_cache_failed(cache);
    return obj;
}

mm_status_t kmem_cache_free(kmem_cache_t *cache, void *obj)
{
    if (cache == NULL)
        return MM_ERR_INVALID;
    if (!kh_cache_ready(cache))
        return MM_ERR_STATE;
    if (obj == NULL)
        return MM_OK;
    if (kh_front_free(cache->index, obj, cache, NULL) == MM_OK)
        return MM_OK;
    return kh_cache_free(cache, obj);
}

mm_status_t kmem_cache_shrink(kmem_cache_t *cache, size_t *released)
{
    if (cache == NULL)
        return MM_ERR_INVALID;
    if (!kh_cache_ready(cache))
        return MM_ERR_STATE;
    kmem_cache_stats_t before, after;
    kh_cache_stats(cache, &before);
    kh_front_drain(cache->index);
    mm_status_t st = kh_cache_shrink(cache);
    kh_cache_stats(cache, &after);
    /* Other CPUs may make slabs meanwhile: then less was given back. */
    size_t was = before.slabs * before.slab_bytes + before.table_bytes;
    size_t is = after.slabs * after.slab_bytes + after.table_bytes;
    if (released != NULL)
        *released = was > is ? was - is : 0;
    return st;
}

mm_status_t kmem_cache_destroy(kmem_cache_t *cache, size_t *live)
{
    if (cache == NULL)
        return MM_ERR_INVALID;
    if (!kh_cache_ready(cache))
        return MM_ERR_STATE;
    if (cache->index != &cache->own)
        return MM_ERR_STATE; /* one of a heap's size classes: the heap's */
    kh_front_drain(cache->index);
    size_t n = kh_cache_retire(cache);
    if (live != NULL)
        *live = n;
    if (n != 0)
        return MM_ERR_STATE;
    kh_front_free_all(cache->index);
    kh_index_free_retired(cache->index);
    if (cache->heap_descriptor)
        kh_blocks_free_inner(cache->heap, cache);
    return MM_OK;
}

mm_status_t kmem_cache_get_stats(kmem_cache_t *cache, kmem_cache_stats_t *out)
{
    if (cache == NULL || out == NULL)
        return MM_ERR_INVALID;
    if (!kh_cache_ready(cache))
        return MM_ERR_STATE;
    kh_cache_stats(cache, out);
    /* Read without holding the fronts: exact when no CPU is allocating or
     * freeing from this cache, a close estimate otherwise. */
    kh_front_t **all = __atomic_load_n(&cache->index->fronts, __ATOMIC_ACQUIRE);
    for (unsigned cpu = 0; all != NULL && cpu < HADRON_MM_MAX_CPUS; cpu++) {
        kh_front_t *fr = __atomic_load_n(&all[cpu], __ATOMIC_ACQUIRE);
        if (fr == NULL)
            continue;
        const kh_mag_t *m = &fr->mag[cache->front_slot];
        out->front_objects += __atomic_load_n(&m->count, __ATOMIC_RELAXED);
        out->allocs += __atomic_load_n(&m->allocs, __ATOMIC_RELAXED);
        out->frees += __atomic_load_n(&m->frees, __ATOMIC_RELAXED);
    }
    out->live = out->live >= out->front_objects ? out->live - out->front_objects : 0;
    return MM_OK;
}
