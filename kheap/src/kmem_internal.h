/*
 * kmem_cache private layout: the fronts, the slab header, the slab table,
 * debug fills.
 *
 * Layers, pointing down only: kmem_front.c (the API: each CPU's front of
 * free objects) uses kmem_cache.c (slabs, the locked paths), which uses
 * kmem_table.c (the index's table of its slabs) and kmem_debug.c (guards
 * and fills); kmem_percpu.c (holding every front out of use) is below
 * both kmem_front.c and kmem_table.c; kmem_check.c (checker, walker) reads
 * what the others write.
 * All of it reaches the heap only through blocks_api.h.
 */
#ifndef KMEM_INTERNAL_H
#define KMEM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/assert.h>
#include <hadron/mm/config.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/kheap.h>
#include <hadron/mm/kmem_cache.h>

#define KH_MAGIC_CACHE 0x6b6d656du              /* "kmem" */
#define KH_MAGIC_SLAB 0x736c616268656164ull     /* "slabhead" */
#define KH_TABLE_EMPTY ((uintptr_t)0)
#define KH_TABLE_MIN 8u
/* The table's unit: every page of a slab has an entry, page | its index in
 * the slab, so any address finds its slab with one probe sequence whatever
 * the slab's size. */
#define KH_TABLE_PAGE ((uintptr_t)4096)
#define KH_TABLE_PAGE_MASK (KH_TABLE_PAGE - 1)
/* A slab's block stops this many bytes short of its last page's end, where
 * the header of the block after it goes: two slabs (or a slab and a large
 * block) then sit back to back, instead of each page-aligned slab leaving
 * a page of padding in front of the next. Those bytes are never an object
 * (a free of them is refused as inside the slab). */
#define KH_SLAB_TAIL ((size_t)16)
/* A CPU's front holds at most KH_FRONT_MAX objects of one cache, and at
 * most about KH_FRONT_BYTES of them (at least 2 objects). */
#define KH_FRONT_MAX 32u
#define KH_FRONT_BYTES ((size_t)16384)
/* idx = (offset * recip) >> KH_RECIP_SHIFT is exact while offset * stride
 * stays below 2^KH_RECIP_SHIFT: offsets are below KMEM_SLAB_MAX (2^18) and
 * strides below 2^17. */
#define KH_RECIP_SHIFT 40

#define KH_FILL_FREE 0xDDu
#define KH_FILL_ALLOC 0xCDu
#define KH_FILL_GUARD 0xFDu

/* At the start of every slab. */
typedef struct kh_slab {
    uint64_t check;              /* KH_MAGIC_SLAB ^ mix(address) ^ cache */
    kmem_cache_t *cache;
    struct kh_slab *prev, *next; /* the cache's partial list */
    uint32_t nfree;
    uint32_t hint;               /* lowest bitmap word that may have a free slot */
    uint32_t hot;                /* 1 + the slot freed last (taken first: cache-warm), or 0 */
    uint32_t owner;              /* the front whose refills take from it (its tag), or 0 */
    /* The front (its tag) that first refilled from it, or 0; set once, by
     * that front's CPU. Only that CPU, inside its front, changes `live`. */
    uint32_t live_owner;
    /* Bit i % 64 of word i / 64, as many words as the cache's slots need
     * (kh_bitmap_words), so a small slab's header stays small. */
    struct kh_bits {
        uint64_t free; /* slot free in the slab; bits >= objects never set */
        /* Slot handed out (allocated and not freed) when its bit of
         * live ^ remote is set (kh_slot_live). The live_owner's CPU flips
         * its bits in `live` with plain stores from inside its front (no
         * other context writes that word, and the CPU cannot interrupt
         * itself there: an interrupting context takes the locked paths);
         * everyone else, and every locked path, flips them in `remote`
         * with an atomic XOR. Either way a free decides "live or not"
         * once: a second free of an object finds its bit clear and is
         * refused as a double free. Neither free nor live: the object is
         * held by a CPU's front (kmem_front.c). */
        uint64_t live, remote;
    } bits[];
} kh_slab_t;

_Static_assert(KMEM_SLAB_OBJECTS_MAX % 64u == 0, "whole bitmap words");

/* Bytes of a slab header with `words` bitmap words. */
static inline size_t kh_slab_header_bytes(size_t words)
{
    return sizeof(kh_slab_t) + words * sizeof(struct kh_bits);
}
_Static_assert(KMEM_SLAB_OBJECTS_MAX <= 4096u, "a slot index fits below a slab's page address");

/* One cache's objects held by one CPU: free, neither in a slab nor handed
 * out, each as slab | slot. Taken and given last in, first out. */
typedef struct kh_mag {
    uint32_t count;
    uint32_t pad;
    uint64_t allocs, frees; /* served from / into this magazine */
    uintptr_t slab;         /* the slab its refills take from first (a hint, checked) */
    uintptr_t entry[KH_FRONT_MAX];
} kh_mag_t;

/* A CPU's front for one index: a magazine per cache of the index. Its own
 * CPU uses it without a lock or a locked instruction, inside
 * kh_front_enter .. kh_front_leave (`active` set); any other context
 * first keeps every front of the index out of use (kh_fronts_hold), then
 * takes `lock` against other such contexts. */
typedef struct kh_front {
    uint32_t active; /* 1 while its CPU is inside; written by that CPU only */
    uint32_t tag;    /* 1 + its CPU's index: the owner of the slabs it refills from */
    uint32_t mags;
    bool held_for_fork; /* locked by kh_front_lock_all (written under the lock) */
    mm_spinlock_t lock;
    kh_mag_t mag[];
} kh_front_t;
_Static_assert(((uint64_t)KMEM_SLAB_MAX << 17) <= ((uint64_t)1 << KH_RECIP_SHIFT),
               "slot index by reciprocal stays exact");

static inline uint64_t kh_slab_mix(uintptr_t addr)
{
    uint64_t x = (uint64_t)addr * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static inline uint64_t kh_slab_check(const kh_slab_t *s, const kmem_cache_t *c)
{
    return KH_MAGIC_SLAB ^ kh_slab_mix((uintptr_t)s) ^ (uint64_t)(uintptr_t)c;
}

static inline bool kh_cache_ready(const kmem_cache_t *c)
{
    return c != NULL && c->magic == KH_MAGIC_CACHE && c->instance == c;
}

static inline uintptr_t kh_slot(const kmem_cache_t *c, const kh_slab_t *s, size_t i)
{
    return (uintptr_t)s + c->first_offset + i * c->stride;
}

static inline bool kh_slot_free(const kh_slab_t *s, size_t i)
{
    return (s->bits[i / 64].free >> (i % 64)) & 1;
}

/* Word w of s's handed-out bitmap. */
static inline uint64_t kh_live_word(const kh_slab_t *s, size_t w)
{
    return __atomic_load_n(&s->bits[w].live, __ATOMIC_RELAXED) ^
           __atomic_load_n(&s->bits[w].remote, __ATOMIC_RELAXED);
}

static inline bool kh_slot_live(const kh_slab_t *s, size_t i)
{
    return (kh_live_word(s, i / 64) >> (i % 64)) & 1;
}

/* Flips slot i between handed out and not, if it is `from` (true: handed
 * out): false, nothing changed, if it is not. `tag` is the caller's front
 * (inside it), 0 on a locked path. A plain store when the caller's CPU is
 * the slab's live_owner; otherwise an atomic XOR on `remote`, undone if
 * the slot was not in state `from` (only a double free racing with another
 * free of the same object can see that window). */
static inline bool kh_slot_flip_live(kh_slab_t *s, size_t i, uint32_t tag, bool from)
{
    size_t w = i / 64;
    uint64_t bit = (uint64_t)1 << (i % 64), want = from ? bit : 0;
    uint64_t live = __atomic_load_n(&s->bits[w].live, __ATOMIC_RELAXED);
    if (tag != 0 && __atomic_load_n(&s->live_owner, __ATOMIC_RELAXED) == tag) {
        if (((live ^ __atomic_load_n(&s->bits[w].remote, __ATOMIC_RELAXED)) & bit) != want)
            return false;
        __atomic_store_n(&s->bits[w].live, live ^ bit, __ATOMIC_RELAXED);
        return true;
    }
    uint64_t old = __atomic_fetch_xor(&s->bits[w].remote, bit, __ATOMIC_RELAXED);
    if (((live ^ old) & bit) == want)
        return true;
    __atomic_fetch_xor(&s->bits[w].remote, bit, __ATOMIC_RELAXED);
    return false;
}

/* Marks slot i handed out; false if it already was (a broken invariant). */
static inline bool kh_slot_mark_live(kh_slab_t *s, size_t i, uint32_t tag)
{
    return kh_slot_flip_live(s, i, tag, false);
}

/* Marks slot i no longer handed out; false if it was not (a double free,
 * or a free of an object some front holds). */
static inline bool kh_slot_clear_live(kh_slab_t *s, size_t i, uint32_t tag)
{
    return kh_slot_flip_live(s, i, tag, true);
}

/* Slot of obj in slab s of cache c; false when obj is not a slot start. */
static inline bool kh_slot_of(const kmem_cache_t *c, const kh_slab_t *s, uintptr_t obj,
                              size_t *slot)
{
    uintptr_t base = (uintptr_t)s;
    if (obj < base + c->first_offset)
        return false;
    uint64_t off = obj - base - c->first_offset;
    uint64_t i = (off * c->recip) >> KH_RECIP_SHIFT;
    if (i * c->stride != off || i >= c->objects_per_slab)
        return false;
    *slot = (size_t)i;
    return true;
}

static inline uint32_t kh_bitmap_words(const kmem_cache_t *c)
{
    return (c->objects_per_slab + 63u) / 64u;
}

static inline mm_irqflags_t kh_cache_lock(kmem_cache_t *c)
{
    return mm_spin_lock_irqsave(&c->index->lock);
}

static inline void kh_cache_unlock(kmem_cache_t *c, mm_irqflags_t f)
{
    mm_spin_unlock_irqrestore(&c->index->lock, f);
}

/* ---- kmem_table.c: slab pages by address (index lock held) ------------- */

_Static_assert(KMEM_SLAB_MAX / KH_TABLE_PAGE <= KH_TABLE_PAGE, "a page's index in its slab fits below it");
_Static_assert(KMEM_SLAB_MIN >= KH_TABLE_PAGE, "slabs are whole pages");

static inline size_t kh_hash(uintptr_t page, size_t cap)
{
    return (size_t)(((uint64_t)(page >> 12) * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/* The slab holding addr, or 0. Inline: every free asks. */
static inline uintptr_t kh_index_find(const kmem_index_t *x, uintptr_t addr)
{
    uintptr_t page = addr & ~KH_TABLE_PAGE_MASK;
    /* 0 marks an empty entry: never a slab's (the first page of the
     * address space is never a slab). */
    if (x->cap == 0 || page == 0)
        return 0;
    size_t mask = x->cap - 1;
    for (size_t i = kh_hash(page, x->cap), n = 0; n < x->cap; i = (i + 1) & mask, n++) {
        uintptr_t e = x->table[i];
        if ((e & ~KH_TABLE_PAGE_MASK) == page && e != KH_TABLE_EMPTY)
            return page - (e & KH_TABLE_PAGE_MASK) * KH_TABLE_PAGE;
        if (e == KH_TABLE_EMPTY)
            return 0;
    }
    return 0;
}
/* Without the index lock, from a CPU's front: the slab holding addr, or 0
 * when it is in none or the table is being changed (the locked path then
 * decides). The table array cannot be freed meanwhile: whoever retires one
 * first holds every front out of use (kh_index_retire). */
static inline uintptr_t kh_index_find_unlocked(const kmem_index_t *x, uintptr_t addr)
{
    const uintptr_t *t = __atomic_load_n(&x->table, __ATOMIC_ACQUIRE);
    uintptr_t page = addr & ~KH_TABLE_PAGE_MASK;
    if (t == NULL || page == 0)
        return 0;
    size_t cap = t[-1], mask = cap - 1;
    for (size_t i = kh_hash(page, cap), n = 0; n < cap; i = (i + 1) & mask, n++) {
        uintptr_t e = __atomic_load_n(&t[i], __ATOMIC_ACQUIRE);
        if ((e & ~KH_TABLE_PAGE_MASK) == page && e != KH_TABLE_EMPTY)
            return page - (e & KH_TABLE_PAGE_MASK) * KH_TABLE_PAGE;
        if (e == KH_TABLE_EMPTY)
            return 0;
    }
    return 0;
}
/* A table array of `cap` entries (its capacity stored in the word before
 * them, a link for the retired list before that), from `heap`; NULL when
 * the heap has no room. Lock not held. */
uintptr_t *kh_table_alloc(kheap_t *heap, size_t cap);
/* Gives back a table array (NULL: nothing). Lock not held. */
void kh_table_free(kheap_t *heap, uintptr_t *table);
/* Frees a table array that was x's (NULL: nothing) once no front can be
 * reading it: after kh_fronts_hold, or later, at the first retirement of
 * x whose hold succeeds (it waits on x's retired list). No lock held. */
void kh_index_retire(kmem_index_t *x, uintptr_t *table);
/* Frees the retired tables of an index no context uses any more. */
void kh_index_free_retired(kmem_index_t *x);
/* Whether `pages` more entries fit without a bigger table. */
bool kh_index_has_room(const kmem_index_t *x, size_t pages);
/* Smallest capacity that holds `entries` at the table's load factor. */
size_t kh_index_cap_for(size_t entries);
/* Register / forget every page of the slab [base, base + bytes). */
void kh_index_insert(kmem_index_t *x, uintptr_t base, size_t bytes);
void kh_index_delete(kmem_index_t *x, uintptr_t base, size_t bytes);
/* Moves every entry into `fresh` (cap entries, contents ignored) and makes
 * it the table; returns the old array (NULL if none) for the caller to
 * free with the lock dropped. */
uintptr_t *kh_index_rebuild(kmem_index_t *x, uintptr_t *fresh, size_t cap);
/* Forgets the (empty) table; returns the array (NULL if none) to free. */
uintptr_t *kh_index_drop(kmem_index_t *x);
/* Set up an empty index whose table memory comes from `heap`; `lock_name`
 * names its lock in lock-order reports. */
void kh_index_init(kmem_index_t *x, kheap_t *heap, const char *lock_name);

/* ---- kmem_cache.c: slabs and the locked paths, for the fronts ---------- */

/* An object of the cache, from a slab, made if need be (the whole of
 * kmem_cache_alloc without a front); NULL without memory, not counted as
 * a failure. Takes the index lock. */
void *kh_cache_alloc(kmem_cache_t *cache);
/* Counts a kmem_cache_alloc that returned NULL. Takes the index lock. */
void kh_cache_failed(kmem_cache_t *c);
/* kmem_cache_free without a front: every check, warning and statistic. */
mm_status_t kh_cache_free(kmem_cache_t *cache, void *obj);
/* Up to n free slots taken out of the cache's slabs into out (slab |
 * slot), none made: how many. The slabs are those of the front tagged
 * `tag` (non-zero) where it has some, starting at *prefer, which is updated
 * (kmem_cache.c, kh_refill_slab). Takes the index lock. */
size_t kh_cache_take(kmem_cache_t *c, uintptr_t *out, size_t n, uint32_t tag, uintptr_t *prefer);
/* A new slab for c (for a refill that found no slab it may take from), and
 * up to n of its slots taken into out for the front tagged `tag`, whose
 * slab it becomes (*prefer), in the same hold of the index lock: a slab
 * is never left empty for another path to pass over. How many; 0 without
 * memory. Takes the index lock; no other hadron-mm lock held (the heap may
 * grow). */
size_t kh_cache_grow_take(kmem_cache_t *c, uintptr_t *out, size_t n, uint32_t tag,
                          uintptr_t *prefer);
/* n taken slots (of caches of x) back into their slabs; slabs emptied go
 * back to the heap. Takes the index lock; no other hadron-mm lock held. */
void kh_cache_put(kmem_index_t *x, const uintptr_t *entries, size_t n);
/* kmem_cache_shrink's table part: MM_OK, or MM_ERR_NOMEM (table kept). */
mm_status_t kh_cache_shrink(kmem_cache_t *cache);
/* Slots still taken; when none, the cache is marked dead and its table
 * retired. Takes the index lock. */
size_t kh_cache_retire(kmem_cache_t *cache);
/* The slab-level statistics (live counts what the fronts hold too). */
void kh_cache_stats(kmem_cache_t *cache, kmem_cache_stats_t *out);

/* ---- kmem_front.c: what the heap's size classes use ------------------- */

/* Free obj through this CPU's front when it is a live object of a cache
 * sharing x (of `expect` if not NULL): MM_OK with its size in *usable (may
 * be NULL). MM_ERR_NOT_MAPPED otherwise, nothing done: the locked path
 * decides (no front, not found, not live, bad pointer). */
mm_status_t kh_front_free(kmem_index_t *x, void *obj, kmem_cache_t *expect, size_t *usable);
/* The cache of obj when it is a live object of a cache sharing x, found
 * without the index lock under this CPU's front (as kh_front_free finds
 * it); NULL otherwise, when the locked kh_index_owner decides (no front,
 * not found, not live, bad pointer). */
kmem_cache_t *kh_front_owner(kmem_index_t *x, const void *obj);
/* Whether ptr is one of x's fronts or the array of them. */
bool kh_front_owns(const kmem_index_t *x, const void *ptr);
/* Holds every front of x out of use (kh_fronts_hold; remembered in
 * x->fork_held) and takes every front's lock, in ascending address order;
 * the next call on x must be kh_front_unlock_all, which drops exactly
 * those (a front made meanwhile was never locked) and the hold. For a fork
 * handler. */
void kh_front_lock_all(kmem_index_t *x);
void kh_front_unlock_all(kmem_index_t *x);
/* Every front's objects back into the slabs: how many. Only this CPU's
 * front when the fronts cannot be held (kh_fronts_hold). No lock held. */
size_t kh_front_drain(kmem_index_t *x);

/* ---- kmem_percpu.c: the other side of each CPU's front ----------------- */

/* Keeps every front of x out of use: true once no CPU is inside its front
 * and none can enter one (each takes the locked paths instead) until
 * kh_fronts_release. False, nothing changed, when it cannot: the caller
 * runs inside its own CPU's front (an interrupting context), or
 * mm_hook_cpu_barrier refused. Holds may overlap. No lock held; waits
 * only for front sections, which wait for no lock held here. */
bool kh_fronts_hold(kmem_index_t *x);
void kh_fronts_release(kmem_index_t *x);

/* ---- kmem_cache.c: what the heap's size classes use --------------------- */

/* kmem_cache_init for a cache that shares `index` (initialised) with
 * others: same checks, except that the heap may still be being set up. */
mm_status_t kh_cache_init_shared(kmem_cache_t *cache, kheap_t *heap, const char *name,
                                 size_t size, size_t align, kmem_index_t *index);
/* Free obj if it is an object of one of the caches sharing `index`:
 * MM_OK, MM_ERR_DOUBLE_FREE (warned), MM_ERR_BAD_POINTER (inside a slab
 * but not at a slot: warned), or MM_ERR_NOT_MAPPED (in no slab: nothing
 * done, nothing warned). *usable gets the freed object's size. Takes the
 * index lock. */
mm_status_t kh_index_free(kmem_index_t *index, void *obj, size_t *usable);
/* Report a refused object pointer (MM_ERR_DOUBLE_FREE or
 * MM_ERR_BAD_POINTER) through mm_hook_warn. Lock not held. */
void kh_index_warn(mm_status_t st, const void *ptr);
/* The cache of obj when it is a live object of a cache sharing `index`
 * (NULL otherwise, or MM_ERR_DOUBLE_FREE / MM_ERR_BAD_POINTER in *st).
 * Takes the index lock. */
kmem_cache_t *kh_index_owner(kmem_index_t *index, const void *obj, mm_status_t *st);

/* ---- kmem_debug.c: guards and fills (heap_redzones builds) ------------- */

#if HADRON_MM_HEAP_REDZONES
/* A new slab: every guard written, every slot filled free (no ctor). */
void kh_debug_slab_init(const kmem_cache_t *c, kh_slab_t *s);
/* Slot i about to be handed out: poison verified (panics), filled 0xCD. */
void kh_debug_on_alloc(const kmem_cache_t *c, const kh_slab_t *s, size_t i);
/* Slot i being freed: guard verified (panics), filled free (no ctor). */
void kh_debug_on_free(const kmem_cache_t *c, const kh_slab_t *s, size_t i);
/* The same checks without panicking: false with *report filled. */
bool kh_debug_slot_ok(const kmem_cache_t *c, const kh_slab_t *s, size_t i, mm_report_t *report);
#endif

/* Hands out a taken slot: marks it live (and debug fills); the object.
 * `tag`: the caller's front, entered (kh_slot_flip_live), or 0. Inline:
 * it is half of a front's allocation. */
static inline void *kh_cache_hand_out(kmem_cache_t *c, uintptr_t entry, uint32_t tag)
{
    kh_slab_t *s = (kh_slab_t *)(entry & ~KH_TABLE_PAGE_MASK);
    size_t i = entry & KH_TABLE_PAGE_MASK;
    bool fresh = kh_slot_mark_live(s, i, tag);
    MM_ASSERT(fresh);
    (void)fresh;
#if HADRON_MM_HEAP_REDZONES
    kh_debug_on_alloc(c, s, i);
#endif
    return (void *)kh_slot(c, s, i);
}

#endif /* KMEM_INTERNAL_H */
