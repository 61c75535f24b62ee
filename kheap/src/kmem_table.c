/*
 * kmem_cache: the slab table, an open-addressing hash of slab pages with
 * linear probing. It is how a free finds the slab of a pointer without
 * reading the memory around the pointer, which belongs to somebody else
 * whenever the pointer is not an object of the caches the table serves.
 * Every page of a slab has an entry (the page, and its index in the slab in
 * the bits below the page), so one probe sequence answers for slabs of any
 * size. Kept at most half full, so a probe sequence is short; rebuilt into
 * a bigger array when it would not be.
 */
#include "blocks_api.h"
#include "kmem_internal.h"

void kh_index_init(kmem_index_t *x, kheap_t *heap, const char *lock_name)
{
    __builtin_memset(x, 0, sizeof(*x));
    mm_spin_init_ranked(&x->lock, MM_LOCK_RANK_KHEAP_CACHE, lock_name);
    x->heap = heap;
}

/* In front of a table's entries: the link of the retired list, then the
 * capacity (read by kh_index_find_unlocked, so never reused as the link). */
#define KH_TABLE_HEADER 2u
#define KH_TABLE_LINK(t) ((t)[-2])

uintptr_t *kh_table_alloc(kheap_t *heap, size_t cap)
{
    uintptr_t *words = kh_blocks_alloc_inner(heap, (cap + KH_TABLE_HEADER) * sizeof(uintptr_t), 0);
    if (words == NULL)
        return NULL;
    words[0] = 0;
    words[1] = cap;
    return words + KH_TABLE_HEADER;
}

void kh_table_free(kheap_t *heap, uintptr_t *table)
{
    if (table != NULL)
        kh_blocks_free_inner(heap, table - KH_TABLE_HEADER);
}

bool kh_index_has_room(const kmem_index_t *x, size_t pages)
{
    return (x->used + pages) * 2 <= x->cap;
}

size_t kh_index_cap_for(size_t entries)
{
    size_t cap = KH_TABLE_MIN;
    while (entries * 2 > cap)
        cap *= 2;
    return cap;
}

static void kh_index_put(kmem_index_t *x, uintptr_t entry)
{
    size_t mask = x->cap - 1, i = kh_hash(entry & ~KH_TABLE_PAGE_MASK, x->cap);
    while (x->table[i] != KH_TABLE_EMPTY)
        i = (i + 1) & mask;
    /* Release: a front that finds the entry without the lock then reads
     * the slab's header, written before. */
    __atomic_store_n(&x->table[i], entry, __ATOMIC_RELEASE);
    x->used++;
}

void kh_index_insert(kmem_index_t *x, uintptr_t base, size_t bytes)
{
    size_t pages = bytes / KH_TABLE_PAGE;
    MM_ASSERT(kh_index_has_room(x, pages) && base != 0 && (base & KH_TABLE_PAGE_MASK) == 0);
    for (size_t k = 0; k < pages; k++)
        kh_index_put(x, (base + k * KH_TABLE_PAGE) | k);
}

/* Linear probing deletes without tombstones: the entries after the hole
 * that would no longer be reached from their home slot move back into it,
 * so the table never fills with deleted markers and is only ever rebuilt
 * to grow or shrink. */
static void kh_index_remove_at(kmem_index_t *x, size_t hole)
{
    size_t mask = x->cap - 1;
    for (size_t j = (hole + 1) & mask; x->table[j] != KH_TABLE_EMPTY; j = (j + 1) & mask) {
        size_t home = kh_hash(x->table[j] & ~KH_TABLE_PAGE_MASK, x->cap);
        /* j's entry may fill the hole unless its home lies cyclically in
         * (hole, j]. */
        bool stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            __atomic_store_n(&x->table[hole], x->table[j], __ATOMIC_RELEASE);
            hole = j;
        }
    }
    __atomic_store_n(&x->table[hole], KH_TABLE_EMPTY, __ATOMIC_RELAXED);
    x->used--;
}

void kh_index_delete(kmem_index_t *x, uintptr_t base, size_t bytes)
{
    size_t mask = x->cap - 1;
    for (size_t k = 0; k < bytes / KH_TABLE_PAGE; k++) {
        uintptr_t entry = (base + k * KH_TABLE_PAGE) | k;
        size_t i = kh_hash(entry & ~KH_TABLE_PAGE_MASK, x->cap);
        while (x->table[i] != entry) {
            MM_ASSERT(x->table[i] != KH_TABLE_EMPTY);
            i = (i + 1) & mask;
        }
        kh_index_remove_at(x, i);
    }
}

uintptr_t *kh_index_rebuild(kmem_index_t *x, uintptr_t *fresh, size_t cap)
{
    MM_ASSERT(cap >= KH_TABLE_MIN && (cap & (cap - 1)) == 0 && x->used * 2 <= cap &&
              fresh[-1] == cap);
    uintptr_t *old = x->table;
    size_t old_cap = x->cap;
    __builtin_memset(fresh, 0, cap * sizeof(fresh[0]));
    /* Published with release: a front reads the table without the lock,
     * its capacity from the word in front of it (kh_index_find_unlocked). */
    __atomic_store_n(&x->table, fresh, __ATOMIC_RELEASE);
    __atomic_store_n(&x->cap, cap, __ATOMIC_RELAXED);
    x->used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != KH_TABLE_EMPTY)
            kh_index_put(x, old[i]);
    return old;
}

uintptr_t *kh_index_drop(kmem_index_t *x)
{
    MM_ASSERT(x->used == 0);
    uintptr_t *old = x->table;
    __atomic_store_n(&x->table, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&x->cap, 0, __ATOMIC_RELAXED);
    return old;
}

/* Frees a list of retired tables (linked through KH_TABLE_LINK). */
static void kh_table_free_list(kheap_t *heap, uintptr_t *list)
{
    while (list != NULL) {
        uintptr_t *next = (uintptr_t *)KH_TABLE_LINK(list);
        kh_table_free(heap, list);
        list = next;
    }
}

void kh_index_retire(kmem_index_t *x, uintptr_t *table)
{
    /* Every locked free and every spill comes here, almost always with
     * nothing to do: no lock for that. The list is read without the lock;
     * whoever adds to it tries a hold itself. */
    if (table == NULL && __atomic_load_n(&x->retired, __ATOMIC_RELAXED) == NULL)
        return;
    mm_irqflags_t f = mm_spin_lock_irqsave(&x->lock);
    if (table != NULL) {
        KH_TABLE_LINK(table) = (uintptr_t)x->retired;
        __atomic_store_n(&x->retired, table, __ATOMIC_RELAXED);
    }
    bool waiting = x->retired != NULL;
    mm_spin_unlock_irqrestore(&x->lock, f);
    /* A front reads the table only while entered, and loads its address
     * after entering: once the fronts are held, none can reach an array
     * that was already off the index. */
    if (!waiting || !kh_fronts_hold(x))
        return;
    f = mm_spin_lock_irqsave(&x->lock);
    uintptr_t *list = x->retired;
    __atomic_store_n(&x->retired, NULL, __ATOMIC_RELAXED);
    mm_spin_unlock_irqrestore(&x->lock, f);
    kh_fronts_release(x);
    kh_table_free_list(x->heap, list);
}

void kh_index_free_retired(kmem_index_t *x)
{
    kh_table_free_list(x->heap, x->retired);
    x->retired = NULL;
}
