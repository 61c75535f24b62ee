/*
 * kmem_cache: object caches (see kmem_cache.h for the contract).
 *
 * An allocation without a front takes, from the slab freed into last
 * (else the head of the partial list), the slot freed last if it is still
 * free, else the lowest free slot; a free sets the slot's bit again and
 * makes its slab the current one, so the next allocation gets back memory
 * that is still in the cache (LIFO, as glibc's tcache and SLUB's per-CPU
 * freelist). A front's refill takes from slabs of its own CPU instead
 * (kh_refill_slab). A slab is made and given back with the lock dropped:
 * the heap may grow, and its growth callback may allocate from this very
 * cache.
 */
#include "blocks_api.h"
#include "kmem_internal.h"

/* ---- geometry ---------------------------------------------------------- */

static size_t kh_cache_align_up(size_t x, size_t a)
{
    return (x + a - 1) & ~(a - 1);
}

/* Offset of the first slot in a slab of `slab` bytes: the header with as
 * many bitmap words as the slots it could hold need. */
static size_t kh_first_offset(const kmem_cache_t *c, size_t slab)
{
    size_t span = slab - KH_SLAB_TAIL, least = kh_slab_header_bytes(1);
    size_t most = span > least ? (span - least) / c->stride : 0;
    if (most > KMEM_SLAB_OBJECTS_MAX)
        most = KMEM_SLAB_OBJECTS_MAX;
    size_t words = most > 64 ? (most + 63) / 64 : 1;
    return kh_cache_align_up(kh_slab_header_bytes(words), c->align);
}

/* Slots a slab of `slab` bytes holds (before the KMEM_SLAB_OBJECTS_MAX cap). */
static size_t kh_slots_in(const kmem_cache_t *c, size_t slab)
{
    size_t span = slab - KH_SLAB_TAIL, first = kh_first_offset(c, slab);
    return span > first ? (span - first) / c->stride : 0;
}

/* Stride, slab size, objects per slab and first slot's offset. */
static void kh_geometry(kmem_cache_t *c)
{
    size_t guard = HADRON_MM_HEAP_REDZONES ? KHEAP_REDZONE : 0;
    c->stride = kh_cache_align_up(c->object_size + guard, c->align);
    size_t slab = KMEM_SLAB_MIN, n = 0;
    for (;; slab += KMEM_SLAB_MIN) {
        n = kh_slots_in(c, slab);
        if (n >= KMEM_SLAB_OBJECTS_MIN || slab == KMEM_SLAB_MAX)
            break;
    }
    /* Among the next few page counts, the one that wastes the least. */
    size_t best = slab, best_n = n, limit = slab + slab / 2;
    for (size_t t = slab + KMEM_SLAB_MIN; t <= limit && t <= KMEM_SLAB_MAX; t += KMEM_SLAB_MIN) {
        size_t tn = kh_slots_in(c, t);
        if ((t - tn * c->stride) * best < (best - best_n * c->stride) * t) {
            best = t;
            best_n = tn;
        }
    }
    slab = best;
    n = best_n;
    if (n > KMEM_SLAB_OBJECTS_MAX)
        n = KMEM_SLAB_OBJECTS_MAX;
    MM_ASSERT(n >= 1);
    c->slab_bytes = slab;
    c->first_offset = (uint32_t)kh_first_offset(c, slab);
    c->objects_per_slab = (uint32_t)n;
    c->recip = (((uint64_t)1 << KH_RECIP_SHIFT) + c->stride - 1) / c->stride;
}

/* ---- partial list ------------------------------------------------------ */

static void kh_partial_push(kmem_cache_t *c, kh_slab_t *s)
{
    s->prev = NULL;
    s->next = c->partial;
    if (c->partial != NULL)
        c->partial->prev = s;
    c->partial = s;
    c->partial_slabs++;
}

static void kh_partial_unlink(kmem_cache_t *c, kh_slab_t *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->partial = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    c->partial_slabs--;
}

/* ---- slots ------------------------------------------------------------- */

/* A free slot of partial slab s, taken out of the slab (the one freed last
 * if it is still free, else the lowest): not yet handed out. Lock held. */
static size_t kh_take_slot(kmem_cache_t *c, kh_slab_t *s)
{
    size_t i;
    if (s->hot != 0 && kh_slot_free(s, s->hot - 1)) {
        i = s->hot - 1;
        s->bits[i / 64].free &= ~((uint64_t)1 << (i % 64));
    } else {
        uint32_t w = s->hint;
        while (s->bits[w].free == 0)
            w++;
        MM_ASSERT(w < kh_bitmap_words(c));
        unsigned bit = (unsigned)__builtin_ctzll(s->bits[w].free);
        s->bits[w].free &= s->bits[w].free - 1;
        s->hint = w;
        i = (size_t)w * 64 + bit;
    }
    s->hot = 0;
    MM_ASSERT(i < c->objects_per_slab && s->nfree != 0);
    if (--s->nfree == 0)
        kh_partial_unlink(c, s);
    c->taken++;
    return i;
}

/* A slot of partial slab s handed out. Lock held. */
static void *kh_take(kmem_cache_t *c, kh_slab_t *s)
{
    c->allocs++;
    return kh_cache_hand_out(c, (uintptr_t)s | kh_take_slot(c, s), 0);
}

void kh_cache_failed(kmem_cache_t *c)
{
    mm_irqflags_t f = kh_cache_lock(c);
    c->failures++;
    kh_cache_unlock(c, f);
}

/* Slab s becomes the front tagged `tag`'s (its live_owner too when it has
 * none yet) and where its next refill starts. Lock held. */
static void kh_slab_adopt(kh_slab_t *s, uint32_t tag, uintptr_t *prefer)
{
    s->owner = tag;
    if (s->live_owner == 0) /* read without the lock by other CPUs */
        __atomic_store_n(&s->live_owner, tag, __ATOMIC_RELAXED);
    *prefer = (uintptr_t)s;
}

/* Partial slabs a refill looks through for one of its front's own. */
#define KH_OWN_SCAN 8u

/* The slab a refill for the front tagged `tag` takes from: *prefer while
 * it is still a slab of c with a free slot, else among the first
 * KH_OWN_SCAN partial slabs one this front owns, else one no front owns;
 * with none such, the head (taken over) when the list is at least that
 * long, else NULL: the caller adds a slab (kh_cache_grow_take), so a CPU takes
 * over another's slab only when enough partial slabs wait to be used.
 * Each CPU's objects then sit in slabs of its own, so the live bits its
 * allocations and frees flip (with plain stores: it is the live_owner of
 * the slabs it refilled from first) are in cache lines no other CPU writes: with one shared cache, two threads
 * scaled 0.84 when their objects shared slabs (docs/measurements.md). The
 * hint is checked against the index before its header is read: the slab
 * may have gone back to the heap. Lock held. */
static kh_slab_t *kh_refill_slab(kmem_cache_t *c, uint32_t tag, uintptr_t *prefer)
{
    kh_slab_t *s = (kh_slab_t *)*prefer;
    if (s != NULL && kh_index_find(c->index, (uintptr_t)s) == (uintptr_t)s && s->cache == c &&
        s->nfree != 0)
        return s;
    kh_slab_t *own = NULL, *unowned = NULL;
    s = c->partial;
    for (unsigned k = 0; s != NULL && k < KH_OWN_SCAN && own == NULL; s = s->next, k++) {
        if (s->owner == tag)
            own = s;
        else if (s->owner == 0 && unowned == NULL)
            unowned = s;
    }
    s = own != NULL ? own : unowned;
    if (s == NULL && c->partial_slabs >= KH_OWN_SCAN)
        s = c->partial;
    if (s != NULL)
        kh_slab_adopt(s, tag, prefer);
    return s;
}

size_t kh_cache_take(kmem_cache_t *c, uintptr_t *out, size_t n, uint32_t tag, uintptr_t *prefer)
{
    mm_irqflags_t f = kh_cache_lock(c);
    size_t got = 0;
    while (got < n) {
        kh_slab_t *s = kh_refill_slab(c, tag, prefer);
        if (s == NULL)
            break;
        while (got < n && s->nfree != 0)
            out[got++] = (uintptr_t)s | kh_take_slot(c, s);
    }
    kh_cache_unlock(c, f);
    return got;
}

/* Slab and slot of obj among the slabs of `x`: MM_OK, MM_ERR_NOT_MAPPED
 * (in none of them), MM_ERR_BAD_POINTER (not a slot start) or
 * MM_ERR_DOUBLE_FREE. Reads the table, then the slab's header; never the
 * memory around obj. Index lock held. */
static mm_status_t kh_locate(const kmem_index_t *x, uintptr_t obj, kh_slab_t **slab,
                             size_t *index)
{
    uintptr_t base = kh_index_find(x, obj);
    if (base == 0)
        return MM_ERR_NOT_MAPPED;
    kh_slab_t *s = (kh_slab_t *)base;
    const kmem_cache_t *c = s->cache;
    if (s->check != kh_slab_check(s, c))
        mm_panic_report(MM_REPORT_CORRUPT, "kmem_cache: slab header damaged", __FILE__, __LINE__,
                        (uint64_t)base, 0, s->check, kh_slab_check(s, c));
    *slab = s;
    size_t i;
    if (!kh_slot_of(c, s, obj, &i))
        return MM_ERR_BAD_POINTER;
    if (!kh_slot_live(s, i))
        return MM_ERR_DOUBLE_FREE;
    *index = i;
    return MM_OK;
}

void kh_index_warn(mm_status_t st, const void *ptr)
{
    mm_report_t r = {
        .kind = st == MM_ERR_DOUBLE_FREE ? MM_REPORT_DOUBLE_FREE : MM_REPORT_BAD_POINTER,
        .message = st == MM_ERR_DOUBLE_FREE ? "kmem_cache: object freed twice"
                                            : "kmem_cache: pointer is not an object of this cache",
        .file = __FILE__,
        .line = __LINE__,
        .address = (uint64_t)(uintptr_t)ptr,
    };
    mm_hook_warn(&r);
}

/* ---- slabs ------------------------------------------------------------- */

/* A slab straight from the heap, every slot free and constructed, not yet
 * known to the cache. NULL when the heap has no room. Lock not held. */
static kh_slab_t *kh_slab_new(kmem_cache_t *c)
{
    /* Page-aligned only: the table finds a slab from any of its pages, so
     * slabs need no alignment to their size (which would cost padding in
     * the blocks and an aligned search for every slab). */
    kh_slab_t *s = kh_blocks_alloc_inner(c->heap, c->slab_bytes - KH_SLAB_TAIL, KH_TABLE_PAGE);
    if (s == NULL)
        return NULL;
    __builtin_memset(s, 0, kh_slab_header_bytes(kh_bitmap_words(c)));
    s->check = kh_slab_check(s, c);
    s->cache = c;
    s->nfree = c->objects_per_slab;
    for (uint32_t i = 0; i < c->objects_per_slab; i++)
        s->bits[i / 64].free |= (uint64_t)1 << (i % 64);
#if HADRON_MM_HEAP_REDZONES
    kh_debug_slab_init(c, s);
#endif
    if (c->ctor != NULL)
        for (uint32_t i = 0; i < c->objects_per_slab; i++)
            c->ctor(c->ctor_arg, (void *)kh_slot(c, s, i));
    return s;
}

static void kh_slab_dispose(kmem_cache_t *c, kh_slab_t *s)
{
    s->check = 0; /* a stale header must never pass for a slab */
    mm_status_t st = kh_blocks_free_inner(c->heap, s);
    MM_ASSERT(st == MM_OK);
    (void)st;
}

/* Lock held on entry and on return (dropped inside): make the table able to
 * take `pages` more entries. False when the heap has no memory for a
 * bigger one. */
static bool kh_index_reserve(kmem_cache_t *c, size_t pages, mm_irqflags_t *f)
{
    kmem_index_t *x = c->index;
    while (!kh_index_has_room(x, pages)) {
        size_t cap = kh_index_cap_for(x->used + pages);
        kh_cache_unlock(c, *f);
        uintptr_t *fresh = kh_table_alloc(x->heap, cap);
        *f = kh_cache_lock(c);
        if (fresh == NULL)
            return false;
        bool used = !kh_index_has_room(x, pages) && (x->used + pages) * 2 <= cap;
        /* Else another context made room meanwhile. */
        uintptr_t *old = used ? kh_index_rebuild(x, fresh, cap) : NULL;
        kh_cache_unlock(c, *f);
        if (used)
            kh_index_retire(x, old);
        else
            kh_table_free(x->heap, fresh);
        *f = kh_cache_lock(c);
    }
    return true;
}

/* A new slab at the head of c's partial list, made with the lock dropped
 * (the heap may grow). NULL without memory; else returns with the lock
 * held (*f to restore). Lock not held on entry. */
static kh_slab_t *kh_slab_add(kmem_cache_t *c, mm_irqflags_t *f)
{
    kh_slab_t *s = kh_slab_new(c);
    *f = kh_cache_lock(c);
    if (s == NULL || !kh_index_reserve(c, c->slab_bytes / KH_TABLE_PAGE, f)) {
        kh_cache_unlock(c, *f);
        if (s != NULL)
            kh_slab_dispose(c, s);
        return NULL;
    }
    kh_index_insert(c->index, (uintptr_t)s, c->slab_bytes);
    kh_partial_push(c, s);
    c->slabs++;
    c->slabs_created++;
    return s;
}

/* Allocation with no partial slab: a new slab. Lock not held on entry or
 * return. */
static __attribute__((noinline)) void *kh_cache_alloc_slow(kmem_cache_t *c)
{
    mm_irqflags_t f;
    kh_slab_t *s = kh_slab_add(c, &f);
    if (s == NULL)
        return NULL;
    /* Another context may have freed into a slab meanwhile: the new slab
     * is at the head either way, and is taken from. */
    void *obj = kh_take(c, s);
    kh_cache_unlock(c, f);
    return obj;
}

size_t kh_cache_grow_take(kmem_cache_t *c, uintptr_t *out, size_t n, uint32_t tag,
                          uintptr_t *prefer)
{
    mm_irqflags_t f;
    kh_slab_t *s = kh_slab_add(c, &f);
    if (s == NULL)
        return 0;
    kh_slab_adopt(s, tag, prefer);
    size_t got = 0;
    while (got < n && s->nfree != 0)
        out[got++] = (uintptr_t)s | kh_take_slot(c, s);
    kh_cache_unlock(c, f);
    return got;
}

/* Slot i of slab s (taken, not handed out) back in its slab. Returns the
 * slab when it is now empty and has left the cache (to be disposed of with
 * the lock dropped), and in *table an emptied index's table to retire
 * likewise. Index lock held. */
static kh_slab_t *kh_put_slot(kmem_cache_t *c, kh_slab_t *s, size_t i, uintptr_t **table)
{
    s->bits[i / 64].free |= (uint64_t)1 << (i % 64);
    if (i / 64 < s->hint)
        s->hint = (uint32_t)(i / 64);
    s->hot = (uint32_t)i + 1;
    c->taken--;
    if (s->nfree++ == 0)
        kh_partial_push(c, s);
    /* The next allocation takes this slot back while its cache lines are
     * still warm; pointing at the slab instead of moving it to the head of
     * the list spares the list neighbours' cache lines on every free. */
    c->current = s;
    *table = NULL;
    if (s->nfree != c->objects_per_slab)
        return NULL;
    kh_partial_unlink(c, s);
    c->current = NULL;
    kh_index_delete(c->index, (uintptr_t)s, c->slab_bytes);
    c->slabs--;
    c->slabs_released++;
    if (c->index->used == 0) /* unused caches hold nothing of the heap */
        *table = kh_index_drop(c->index);
    return s;
}

/* Slot i of slab s (handed out) freed: kh_put_slot's results. Index lock
 * held. */
static kh_slab_t *kh_release_slot(kmem_cache_t *c, kh_slab_t *s, size_t i, uintptr_t **table)
{
#if HADRON_MM_HEAP_REDZONES
    kh_debug_on_free(c, s, i);
#endif
    bool was_live = kh_slot_clear_live(s, i, 0);
    MM_ASSERT(was_live);
    (void)was_live;
    c->frees++;
    return kh_put_slot(c, s, i, table);
}

/* After kh_put_slot, lock dropped. */
static void kh_dispose_after(kmem_cache_t *c, kh_slab_t *empty, uintptr_t *table)
{
    if (empty != NULL)
        kh_slab_dispose(c, empty);
    kh_index_retire(c->index, table);
}

void kh_cache_put(kmem_index_t *x, const uintptr_t *entries, size_t n)
{
    kh_slab_t *empties = NULL;
    uintptr_t *table = NULL;
    mm_irqflags_t f = mm_spin_lock_irqsave(&x->lock);
    for (size_t k = 0; k < n; k++) {
        kh_slab_t *s = (kh_slab_t *)(entries[k] & ~KH_TABLE_PAGE_MASK);
        uintptr_t *dropped = NULL;
        kh_slab_t *empty = kh_put_slot(s->cache, s, entries[k] & KH_TABLE_PAGE_MASK, &dropped);
        if (empty != NULL) {
            empty->next = empties; /* off every list now: the link is free */
            empties = empty;
        }
        if (dropped != NULL)
            table = dropped;
    }
    mm_spin_unlock_irqrestore(&x->lock, f);
    while (empties != NULL) {
        kh_slab_t *next = empties->next;
        kh_slab_dispose(empties->cache, empties);
        empties = next;
    }
    kh_index_retire(x, table);
}

/* ---- API --------------------------------------------------------------- */

static mm_status_t kh_check_args(kmem_cache_t *cache, size_t size, size_t *align)
{
    if (cache == NULL || size == 0 || size > KMEM_OBJECT_MAX)
        return MM_ERR_INVALID;
    if (*align == 0)
        *align = KMEM_ALIGN_DEFAULT;
    if ((*align & (*align - 1)) != 0 || *align > KMEM_ALIGN_MAX)
        return MM_ERR_INVALID;
    return MM_OK;
}

static void kh_cache_setup(kmem_cache_t *cache, kheap_t *heap, const char *name, size_t size,
                     size_t align, kmem_ctor_fn ctor, void *ctor_arg, kmem_index_t *index)
{
    __builtin_memset(cache, 0, sizeof(*cache));
    cache->heap = heap;
    cache->ctor = ctor;
    cache->ctor_arg = ctor_arg;
    cache->object_size = size;
    cache->align = align;
    kh_geometry(cache);
    for (size_t i = 0; name != NULL && name[i] != '\0' && i + 1 < KMEM_NAME_MAX; i++)
        cache->name[i] = name[i];
    if (index == NULL) {
        kh_index_init(&cache->own, heap, "kmem_cache");
        index = &cache->own;
    }
    cache->index = index;
    cache->front_slot = index->front_slots++;
    /* A front holds up to KH_FRONT_BYTES of a cache's objects per CPU:
     * enough small objects that a batch to or from the slabs is rare,
     * few large ones, so what a front keeps from other CPUs stays small. */
    size_t cap = KH_FRONT_BYTES / size;
    cache->front_cap = cap < 2 ? 2 : cap > KH_FRONT_MAX ? KH_FRONT_MAX : (uint32_t)cap;
    cache->instance = cache;
    cache->magic = KH_MAGIC_CACHE;
}

mm_status_t kmem_cache_init(kmem_cache_t *cache, kheap_t *heap, const char *name, size_t size,
                            size_t align, kmem_ctor_fn ctor, void *ctor_arg)
{
    mm_status_t st = kh_check_args(cache, size, &align);
    if (st != MM_OK)
        return st;
    if (cache->magic == KH_MAGIC_CACHE || !kh_ready(heap))
        return MM_ERR_STATE;
    kh_cache_setup(cache, heap, name, size, align, ctor, ctor_arg, NULL);
    return MM_OK;
}

mm_status_t kh_cache_init_shared(kmem_cache_t *cache, kheap_t *heap, const char *name,
                                 size_t size, size_t align, kmem_index_t *index)
{
    mm_status_t st = kh_check_args(cache, size, &align);
    if (st != MM_OK)
        return st;
    kh_cache_setup(cache, heap, name, size, align, NULL, NULL, index);
    return MM_OK;
}

mm_status_t kmem_cache_create(kheap_t *heap, const char *name, size_t size, size_t align,
                              kmem_ctor_fn ctor, void *ctor_arg, kmem_cache_t **out)
{
    if (out == NULL)
        return MM_ERR_INVALID;
    kmem_cache_t probe;
    __builtin_memset(&probe, 0, sizeof(probe));
    mm_status_t st = kmem_cache_init(&probe, heap, name, size, align, ctor, ctor_arg);
    if (st != MM_OK)
        return st;
    kmem_cache_t *c = kh_blocks_alloc_inner(heap, sizeof(*c), 64);
    if (c == NULL)
        return MM_ERR_NOMEM;
    __builtin_memset(c, 0, sizeof(*c));
    st = kmem_cache_init(c, heap, name, size, align, ctor, ctor_arg);
    MM_ASSERT(st == MM_OK);
    c->heap_descriptor = true;
    *out = c;
    return MM_OK;
}

void *kh_cache_alloc(kmem_cache_t *cache)
{
    mm_irqflags_t f = kh_cache_lock(cache);
    kh_slab_t *s = cache->current;
    if (s == NULL || s->nfree == 0)
        s = cache->partial;
    if (s != NULL) {
        void *obj = kh_take(cache, s);
        kh_cache_unlock(cache, f);
        return obj;
    }
    kh_cache_unlock(cache, f);
    return kh_cache_alloc_slow(cache);
}

mm_status_t kh_cache_free(kmem_cache_t *cache, void *obj)
{
    mm_irqflags_t f = kh_cache_lock(cache);
    kh_slab_t *s = NULL;
    size_t i = 0;
    mm_status_t st = kh_locate(cache->index, (uintptr_t)obj, &s, &i);
    if (st == MM_ERR_NOT_MAPPED || (s != NULL && s->cache != cache))
        st = MM_ERR_BAD_POINTER; /* not in a slab of this very cache */
    if (st != MM_OK) {
        cache->rejected_frees++;
        kh_cache_unlock(cache, f);
        kh_index_warn(st, obj);
        return st;
    }
    uintptr_t *table;
    kh_slab_t *empty = kh_release_slot(cache, s, i, &table);
    kh_cache_unlock(cache, f);
    kh_dispose_after(cache, empty, table);
    return MM_OK;
}

mm_status_t kh_index_free(kmem_index_t *index, void *obj, size_t *usable)
{
    /* The lock's atomic waits for earlier stores to drain; start the two
     * misses the lookup takes meanwhile: the table entry of obj's page, and
     * the page itself, which for a one-page slab is its header. Prefetches
     * never fault, whatever obj is. */
    uintptr_t page = (uintptr_t)obj & ~KH_TABLE_PAGE_MASK;
    /* Read without the lock (only to compute an address: the table may be
     * being replaced, a prefetch of the old one costs nothing). */
    size_t cap = __atomic_load_n(&index->cap, __ATOMIC_RELAXED);
    const uintptr_t *entries = __atomic_load_n(&index->table, __ATOMIC_RELAXED);
    if (cap != 0 && entries != NULL)
        __builtin_prefetch(&entries[kh_hash(page, cap)]);
    __builtin_prefetch((const void *)page);
    mm_irqflags_t f = mm_spin_lock_irqsave(&index->lock);
    kh_slab_t *s = NULL;
    size_t i = 0;
    mm_status_t st = kh_locate(index, (uintptr_t)obj, &s, &i);
    if (st != MM_OK) {
        if (s != NULL)
            s->cache->rejected_frees++;
        mm_spin_unlock_irqrestore(&index->lock, f);
        if (st != MM_ERR_NOT_MAPPED)
            kh_index_warn(st, obj);
        return st;
    }
    kmem_cache_t *c = s->cache;
    *usable = c->object_size;
    uintptr_t *table;
    kh_slab_t *empty = kh_release_slot(c, s, i, &table);
    mm_spin_unlock_irqrestore(&index->lock, f);
    kh_dispose_after(c, empty, table);
    return MM_OK;
}

kmem_cache_t *kh_index_owner(kmem_index_t *index, const void *obj, mm_status_t *st)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&index->lock);
    kh_slab_t *s = NULL;
    size_t i = 0;
    *st = kh_locate(index, (uintptr_t)obj, &s, &i);
    kmem_cache_t *c = *st == MM_OK ? s->cache : NULL;
    mm_spin_unlock_irqrestore(&index->lock, f);
    return c;
}

mm_status_t kh_cache_shrink(kmem_cache_t *cache)
{
    kmem_index_t *x = cache->index;
    mm_status_t st = MM_OK;
    mm_irqflags_t f = kh_cache_lock(cache);
    for (;;) {
        size_t want = x->used == 0 ? 0 : kh_index_cap_for(x->used);
        if (want > x->cap)
            want = x->cap; /* full to the load factor: compact only */
        if (want == x->cap)
            break;
        uintptr_t *fresh = NULL;
        if (want != 0) {
            kh_cache_unlock(cache, f);
            fresh = kh_table_alloc(x->heap, want);
            f = kh_cache_lock(cache);
            if (fresh == NULL) {
                st = MM_ERR_NOMEM;
                break;
            }
            if (x->used * 2 > want) { /* slabs came meanwhile: again */
                kh_cache_unlock(cache, f);
                kh_table_free(x->heap, fresh);
                f = kh_cache_lock(cache);
                continue;
            }
        }
        uintptr_t *old = fresh != NULL ? kh_index_rebuild(x, fresh, want) : kh_index_drop(x);
        kh_cache_unlock(cache, f);
        kh_index_retire(x, old);
        f = kh_cache_lock(cache);
    }
    kh_cache_unlock(cache, f);
    return st;
}

size_t kh_cache_retire(kmem_cache_t *cache)
{
    mm_irqflags_t f = kh_cache_lock(cache);
    size_t n = cache->taken;
    uintptr_t *table = NULL;
    if (n == 0) {
        MM_ASSERT(cache->slabs == 0 && cache->partial == NULL);
        table = kh_index_drop(cache->index);
        cache->magic = 0;
    }
    kh_cache_unlock(cache, f);
    kh_index_retire(cache->index, table);
    return n;
}

void kh_cache_stats(kmem_cache_t *cache, kmem_cache_stats_t *out)
{
    mm_irqflags_t f = kh_cache_lock(cache);
    *out = (kmem_cache_stats_t){
        .object_size = cache->object_size,
        .align = cache->align,
        .stride = cache->stride,
        .slab_bytes = cache->slab_bytes,
        .objects_per_slab = cache->objects_per_slab,
        .slabs = cache->slabs,
        .partial_slabs = cache->partial_slabs,
        .live = cache->taken,
        .free_slots = cache->slabs * cache->objects_per_slab - cache->taken,
        .table_bytes = cache->index->cap == 0 ? 0 : (cache->index->cap + 1) * sizeof(uintptr_t),
        .allocs = cache->allocs,
        .frees = cache->frees,
        .failures = cache->failures,
        .slabs_created = cache->slabs_created,
        .slabs_released = cache->slabs_released,
        .rejected_frees = cache->rejected_frees,
    };
    kh_cache_unlock(cache, f);
}

const char *kmem_cache_name(const kmem_cache_t *cache)
{
    return kh_cache_ready(cache) ? cache->name : "";
}
