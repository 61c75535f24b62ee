/*
 * kmem_cache private layout: the slab header, the slab table, debug fills.
 *
 * Layers, pointing down only: kmem_cache.c (the API) uses kmem_table.c (the
 * cache's table of its slabs) and kmem_debug.c (guards and fills);
 * kmem_check.c (checker, walker) reads what the others write. All of it
 * reaches the heap only through kheap.h.
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
#define KH_BITMAP_WORDS (KMEM_SLAB_OBJECTS_MAX / 64u)
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
    uint32_t pad;
    uint64_t free[KH_BITMAP_WORDS]; /* bit i set: slot i free; bits >= objects never set */
} kh_slab_t;

_Static_assert(KMEM_SLAB_OBJECTS_MAX % 64u == 0, "whole bitmap words");
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
    return (s->free[i / 64] >> (i % 64)) & 1;
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

#endif /* KMEM_INTERNAL_H */
