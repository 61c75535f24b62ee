/*
 * kmem_cache: the table of a cache's slabs, an open-addressing hash of their
 * addresses with linear probing. It is how a free finds the slab of a
 * pointer without reading the memory around the pointer, which belongs to
 * somebody else whenever the pointer is not one of this cache's objects.
 * Kept at most half full (counting deleted entries), so a probe sequence is
 * short; rebuilt into a bigger array when it would not be.
 */
#include "kmem_internal.h"

bool km_table_has_room(const kmem_cache_t *c)
{
    return (c->table_used + c->table_deleted + 1) * 2 <= c->table_cap;
}

size_t km_table_cap_for(size_t slabs)
{
    size_t cap = KM_TABLE_MIN;
    while (slabs * 2 > cap)
        cap *= 2;
    return cap;
}

void km_table_insert(kmem_cache_t *c, uintptr_t base)
{
    MM_ASSERT(km_table_has_room(c) && base > KM_TABLE_DELETED);
    size_t mask = c->table_cap - 1, i = km_hash(base, c->table_cap);
    while (c->table[i] != KM_TABLE_EMPTY && c->table[i] != KM_TABLE_DELETED)
        i = (i + 1) & mask;
    if (c->table[i] == KM_TABLE_DELETED)
        c->table_deleted--;
    c->table[i] = base;
    c->table_used++;
}

void km_table_delete(kmem_cache_t *c, long index)
{
    MM_ASSERT(index >= 0 && (size_t)index < c->table_cap && c->table[index] > KM_TABLE_DELETED);
    c->table[index] = KM_TABLE_DELETED;
    c->table_used--;
    c->table_deleted++;
}

uintptr_t *km_table_rebuild(kmem_cache_t *c, uintptr_t *fresh, size_t cap)
{
    MM_ASSERT(cap >= KM_TABLE_MIN && (cap & (cap - 1)) == 0 && c->table_used * 2 <= cap);
    uintptr_t *old = c->table;
    size_t old_cap = c->table_cap;
    __builtin_memset(fresh, 0, cap * sizeof(fresh[0]));
    c->table = fresh;
    c->table_cap = cap;
    c->table_used = 0;
    c->table_deleted = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] > KM_TABLE_DELETED)
            km_table_insert(c, old[i]);
    return old;
}

uintptr_t *km_table_drop(kmem_cache_t *c)
{
    MM_ASSERT(c->table_used == 0);
    uintptr_t *old = c->table;
    c->table = NULL;
    c->table_cap = c->table_deleted = 0;
    return old;
}
