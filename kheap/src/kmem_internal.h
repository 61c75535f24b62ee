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
#include <hadron/mm/kmem_cache.h>

#define KM_MAGIC_CACHE 0x6b6d656du              /* "kmem" */
#define KM_MAGIC_SLAB 0x736c616268656164ull     /* "slabhead" */
#define KM_BITMAP_WORDS (KMEM_SLAB_OBJECTS_MAX / 64u)
#define KM_TABLE_EMPTY ((uintptr_t)0)
#define KM_TABLE_DELETED ((uintptr_t)1)
#define KM_TABLE_MIN 8u
/* idx = (offset * recip) >> KM_RECIP_SHIFT is exact while offset * stride
 * stays below 2^KM_RECIP_SHIFT: offsets are below KMEM_SLAB_MAX (2^18) and
 * strides below 2^17. */
#define KM_RECIP_SHIFT 40

#define KM_FILL_FREE 0xDDu
#define KM_FILL_ALLOC 0xCDu
#define KM_FILL_GUARD 0xFDu

/* At the start of every slab. */
typedef struct km_slab {
    uint64_t check;              /* KM_MAGIC_SLAB ^ mix(address) ^ cache */
    kmem_cache_t *cache;
    struct km_slab *prev, *next; /* the cache's partial list */
    uint32_t nfree;
    uint32_t hint;               /* lowest bitmap word that may have a free slot */
    uint32_t hot;                /* 1 + the slot freed last (taken first: cache-warm), or 0 */
    uint32_t pad;
    uint64_t free[KM_BITMAP_WORDS]; /* bit i set: slot i free; bits >= objects never set */
} km_slab_t;

_Static_assert(KMEM_SLAB_OBJECTS_MAX % 64u == 0, "whole bitmap words");
_Static_assert(((uint64_t)KMEM_SLAB_MAX << 17) <= ((uint64_t)1 << KM_RECIP_SHIFT),
               "slot index by reciprocal stays exact");

static inline uint64_t km_mix(uintptr_t addr)
{
    uint64_t x = (uint64_t)addr * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static inline uint64_t km_slab_check(const km_slab_t *s, const kmem_cache_t *c)
{
    return KM_MAGIC_SLAB ^ km_mix((uintptr_t)s) ^ (uint64_t)(uintptr_t)c;
}

static inline bool km_ready(const kmem_cache_t *c)
{
    return c != NULL && c->magic == KM_MAGIC_CACHE && c->instance == c;
}

static inline uintptr_t km_slot(const kmem_cache_t *c, const km_slab_t *s, size_t i)
{
    return (uintptr_t)s + c->first_offset + i * c->stride;
}

static inline bool km_slot_free(const km_slab_t *s, size_t i)
{
    return (s->free[i / 64] >> (i % 64)) & 1;
}

static inline uint32_t km_bitmap_words(const kmem_cache_t *c)
{
    return (c->objects_per_slab + 63u) / 64u;
}

/* ---- kmem_table.c: the cache's slabs by address (cache lock held) ------ */

static inline size_t km_hash(uintptr_t base, size_t cap)
{
    return (size_t)(((uint64_t)(base >> 12) * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/* Entry index of slab address `base`, or -1. Inline: every free asks. */
static inline long km_table_find(const kmem_cache_t *c, uintptr_t base)
{
    /* 0 and 1 mark empty and deleted entries: never a slab (a pointer in
     * the first slab-sized span of the address space masks to 0). */
    if (c->table_cap == 0 || base <= KM_TABLE_DELETED)
        return -1;
    size_t mask = c->table_cap - 1;
    for (size_t i = km_hash(base, c->table_cap), n = 0; n < c->table_cap; i = (i + 1) & mask, n++) {
        uintptr_t e = c->table[i];
        if (e == base)
            return (long)i;
        if (e == KM_TABLE_EMPTY)
            return -1;
    }
    return -1;
}
/* Whether one more slab fits without a bigger table. */
bool km_table_has_room(const kmem_cache_t *c);
/* Smallest capacity that holds `slabs` at the table's load factor. */
size_t km_table_cap_for(size_t slabs);
void km_table_insert(kmem_cache_t *c, uintptr_t base);
void km_table_delete(kmem_cache_t *c, long index);
/* Moves every slab into `fresh` (cap entries, contents ignored) and makes it
 * the table; returns the old array (NULL if none) for the caller to free
 * with the lock dropped. */
uintptr_t *km_table_rebuild(kmem_cache_t *c, uintptr_t *fresh, size_t cap);
/* Forgets the (empty) table; returns the array (NULL if none) to free. */
uintptr_t *km_table_drop(kmem_cache_t *c);

/* ---- kmem_debug.c: guards and fills (heap_redzones builds) ------------- */

#if HADRON_MM_HEAP_REDZONES
/* A new slab: every guard written, every slot filled free (no ctor). */
void km_debug_slab_init(const kmem_cache_t *c, km_slab_t *s);
/* Slot i about to be handed out: poison verified (panics), filled 0xCD. */
void km_debug_on_alloc(const kmem_cache_t *c, const km_slab_t *s, size_t i);
/* Slot i being freed: guard verified (panics), filled free (no ctor). */
void km_debug_on_free(const kmem_cache_t *c, const km_slab_t *s, size_t i);
/* The same checks without panicking: false with *report filled. */
bool km_debug_slot_ok(const kmem_cache_t *c, const km_slab_t *s, size_t i, mm_report_t *report);
#endif

#endif /* KMEM_INTERNAL_H */
