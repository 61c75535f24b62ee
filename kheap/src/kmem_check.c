/*
 * kmem_cache: the consistency checker and the walker.
 */
#include "kmem_internal.h"

#define KH_BAD(msg, addr, found_, expected_)                                                       \
    do {                                                                                           \
        *report = (mm_report_t){.kind = MM_REPORT_CORRUPT,                                         \
                                .message = (msg),                                                  \
                                .file = __FILE__,                                                  \
                                .line = __LINE__,                                                  \
                                .address = (uint64_t)(addr),                                       \
                                .found = (uint64_t)(found_),                                       \
                                .expected = (uint64_t)(expected_)};                                \
        return false;                                                                              \
    } while (0)

/* One slab: header, bitmap and counts (and guards/fills in debug builds).
 * Adds its free slots to *free_slots. */
static bool kh_check_slab(const kmem_cache_t *c, const kh_slab_t *s, size_t *free_slots,
                          mm_report_t *report)
{
    if (((uintptr_t)s & (KH_TABLE_PAGE - 1)) != 0)
        KH_BAD("kmem_cache: table entry not at a slab boundary", s, (uintptr_t)s, 0);
    if (s->check != kh_slab_check(s, c) || s->cache != c)
        KH_BAD("kmem_cache: slab header damaged", s, s->check, kh_slab_check(s, c));
    size_t bits = 0;
    uint32_t words = kh_bitmap_words(c);
    for (uint32_t w = 0; w < words; w++) {
        uint64_t valid = ~(uint64_t)0, free = s->bits[w].free;
        if (w + 1 == words && c->objects_per_slab % 64 != 0)
            valid = ((uint64_t)1 << (c->objects_per_slab % 64)) - 1;
        if ((free & ~valid) != 0)
            KH_BAD("kmem_cache: free bit beyond the last slot", s, free, free & valid);
        if (w < s->hint && free != 0)
            KH_BAD("kmem_cache: free slot below the slab's hint", s, w, s->hint);
        bits += (size_t)__builtin_popcountll(free);
        uint64_t live = kh_live_word(s, w);
        if ((live & ~valid) != 0 || (live & free) != 0)
            KH_BAD("kmem_cache: slot both free and handed out", s, live, free);
    }
    if (s->hot > c->objects_per_slab)
        KH_BAD("kmem_cache: slab's last-freed slot out of range", s, s->hot, c->objects_per_slab);
    if (bits != s->nfree)
        KH_BAD("kmem_cache: slab free count does not match its bitmap", s, s->nfree, bits);
    if (s->nfree >= c->objects_per_slab)
        KH_BAD("kmem_cache: an empty slab was kept", s, s->nfree, c->objects_per_slab - 1);
#if HADRON_MM_HEAP_REDZONES
    for (size_t i = 0; i < c->objects_per_slab; i++)
        if (!kh_debug_slot_ok(c, s, i, report))
            return false;
#endif
    *free_slots += s->nfree;
    return true;
}

/* The table itself: counts, load, each entry reachable by its own probe
 * sequence, each page's slab registered at its first page. */
static bool kh_check_index(const kmem_index_t *x, mm_report_t *report)
{
    size_t used = 0;
    for (size_t i = 0; i < x->cap; i++) {
        uintptr_t e = x->table[i];
        if (e == KH_TABLE_EMPTY)
            continue;
        used++;
        uintptr_t page = e & ~KH_TABLE_PAGE_MASK, base = page - (e & KH_TABLE_PAGE_MASK) * KH_TABLE_PAGE;
        if (kh_index_find(x, page) != base || kh_index_find(x, base) != base)
            KH_BAD("kmem_cache: slab table entry not reachable by its probe sequence", e, i,
                   kh_index_find(x, page));
    }
    if (used != x->used || (x->cap != 0 && x->used * 2 > x->cap) || (x->cap == 0) != (x->table == NULL))
        KH_BAD("kmem_cache: slab table counts wrong", x, used, x->used);
    return true;
}

static bool kh_cache_check_locked(const kmem_cache_t *c, mm_report_t *report)
{
    const kmem_index_t *x = c->index;
    if (!kh_check_index(x, report))
        return false;
    size_t slabs = 0, free_slots = 0, partial_wanted = 0;
    for (size_t i = 0; i < x->cap; i++) {
        uintptr_t e = x->table[i];
        /* A slab's first page; other caches' slabs when the table is shared. */
        if (e == KH_TABLE_EMPTY || (e & KH_TABLE_PAGE_MASK) != 0 ||
            ((const kh_slab_t *)e)->cache != c)
            continue;
        const kh_slab_t *s = (const kh_slab_t *)e;
        if (!kh_check_slab(c, s, &free_slots, report))
            return false;
        for (uintptr_t p = e; p < e + c->slab_bytes; p += KH_TABLE_PAGE)
            if (kh_index_find(x, p) != e)
                KH_BAD("kmem_cache: slab page missing from the table", p, 0, e);
        partial_wanted += s->nfree != 0;
        slabs++;
    }
    if (slabs != c->slabs || (x == &c->own && slabs * (c->slab_bytes / KH_TABLE_PAGE) != x->used) ||
        (x->used == 0 && x->cap != 0))
        KH_BAD("kmem_cache: slab table counts wrong", c, slabs, c->slabs);
    if (slabs * c->objects_per_slab - free_slots != c->taken)
        KH_BAD("kmem_cache: live count does not match the slabs", c, c->taken,
               slabs * c->objects_per_slab - free_slots);

    size_t listed = 0;
    const kh_slab_t *prev = NULL;
    for (const kh_slab_t *s = c->partial; s != NULL; prev = s, s = s->next) {
        if (++listed > slabs || kh_index_find(x, (uintptr_t)s) != (uintptr_t)s ||
            s->cache != c)
            KH_BAD("kmem_cache: partial list holds a slab the table lacks", s, listed, slabs);
        if (s->prev != prev)
            KH_BAD("kmem_cache: partial list back link wrong", s, (uintptr_t)s->prev,
                   (uintptr_t)prev);
        if (s->nfree == 0)
            KH_BAD("kmem_cache: full slab on the partial list", s, 0, 1);
    }
    if (c->current != NULL &&
        (kh_index_find(x, (uintptr_t)c->current) != (uintptr_t)c->current || c->current->cache != c))
        KH_BAD("kmem_cache: current slab is not one of the cache's", c->current, 0, 0);
    if (listed != partial_wanted || listed != c->partial_slabs)
        KH_BAD("kmem_cache: partial list misses a slab with a free slot", c, listed,
               partial_wanted);
    return true;
}

mm_status_t kmem_cache_check(kmem_cache_t *cache, mm_report_t *report)
{
    if (cache == NULL)
        return MM_ERR_INVALID;
    if (!kh_cache_ready(cache))
        return MM_ERR_STATE;
    mm_report_t local;
    if (report == NULL)
        report = &local;
    mm_irqflags_t f = kh_cache_lock(cache);
    bool ok = kh_cache_check_locked(cache, report);
    kh_cache_unlock(cache, f);
    return ok ? MM_OK : MM_ERR_CORRUPT;
}

mm_status_t kmem_cache_walk(kmem_cache_t *cache, kmem_walk_fn fn, void *arg)
{
    if (cache == NULL || fn == NULL)
        return MM_ERR_INVALID;
    if (!kh_cache_ready(cache))
        return MM_ERR_STATE;
    const kmem_index_t *x = cache->index;
    for (size_t e = 0; e < x->cap; e++) {
        uintptr_t entry = x->table[e];
        if (entry == KH_TABLE_EMPTY || (entry & KH_TABLE_PAGE_MASK) != 0 ||
            ((const kh_slab_t *)entry)->cache != cache)
            continue;
        const kh_slab_t *s = (const kh_slab_t *)entry;
        for (size_t i = 0; i < cache->objects_per_slab; i++) {
            if (!kh_slot_live(s, i))
                continue; /* free in the slab, or held by a front */
            kmem_object_info_t info = {(void *)kh_slot(cache, s, i), s, i};
            if (!fn(arg, &info))
                return MM_OK;
        }
    }
    return MM_OK;
}
