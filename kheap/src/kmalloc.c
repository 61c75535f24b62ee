/*
 * kheap: the kmalloc layer. Requests of up to KHEAP_CLASS_MAX bytes at
 * granule alignment go to the heap's size-class caches, everything else to
 * the blocks; a free asks the classes' shared slab table first, which knows
 * every class object by its page without reading memory near the pointer.
 */
#include "blocks_api.h"
#include "kmem_internal.h"
#include "track.h"

#define KH_GRANULE ((size_t)KHEAP_GRANULE)
#define KH_SMALL_CLASSES (KHEAP_SMALL_MAX / KHEAP_GRANULE)

/* Class of a request of 0 ... KHEAP_CLASS_MAX bytes (0 counts as 1): every
 * granule up to KHEAP_SMALL_MAX, then eight classes per power of two. */
static inline unsigned kh_class_of(size_t req)
{
    if (req <= KHEAP_SMALL_MAX)
        return req == 0 ? 0 : (unsigned)((req - 1) / KH_GRANULE);
    unsigned bits = 64u - (unsigned)__builtin_clzll((unsigned long long)(req - 1)); /* 9..12 */
    unsigned step_shift = bits - 4u;
    unsigned units = (unsigned)((req + ((size_t)1 << step_shift) - 1) >> step_shift); /* 9..16 */
    return KH_SMALL_CLASSES + (bits - 9u) * 8u + (units - 9u);
}

/* Object size of class cls: the largest request it serves. */
static size_t kh_class_size(unsigned cls)
{
    if (cls < KH_SMALL_CLASSES)
        return (size_t)(cls + 1) * KH_GRANULE;
    unsigned m = cls - KH_SMALL_CLASSES;
    return (size_t)(9u + m % 8u) << (m / 8u + 5u);
}

_Static_assert(KHEAP_CLASSES == KH_SMALL_CLASSES + 32u, "four powers of two above the small classes");

/* "kmalloc-<size>" without libc. */
static void kh_class_name(char *out, size_t size)
{
    static const char prefix[] = "kmalloc-";
    size_t n = 0;
    for (; prefix[n] != '\0'; n++)
        out[n] = prefix[n];
    char digits[20];
    size_t d = 0;
    do {
        digits[d++] = (char)('0' + size % 10);
        size /= 10;
    } while (size != 0);
    while (d != 0)
        out[n++] = digits[--d];
    out[n] = '\0';
}

mm_status_t kheap_init(kheap_t *heap, void *base, size_t size)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    mm_status_t st = kh_blocks_validate(base, size);
    if (st != MM_OK) {
        heap->magic = 0;
        return st;
    }
    __builtin_memset(heap, 0, sizeof(*heap));
    kh_index_init(&heap->class_index, heap, "kheap size classes");
    for (unsigned c = 0; c < KHEAP_CLASSES; c++) {
        char name[KMEM_NAME_MAX];
        kh_class_name(name, kh_class_size(c));
        st = kh_cache_init_shared(&heap->classes[c], heap, name, kh_class_size(c), KH_GRANULE,
                                  &heap->class_index);
        MM_ASSERT(st == MM_OK);
    }
    kh_track_init(heap);
    kh_blocks_init(heap, (uintptr_t)base, size);
    return MM_OK;
}

/* heap_redzones builds serve every request from blocks, whose guards sit
 * right at the requested size on both sides; a class object's guard would
 * sit after its class size and none before it. */
static inline bool kh_class_request(size_t size, size_t align)
{
    return !HADRON_MM_HEAP_REDZONES && size <= KHEAP_CLASS_MAX && align <= KH_GRANULE &&
           (align & (align - 1)) == 0;
}

void *kheap_alloc(kheap_t *heap, size_t size, size_t align)
{
    if (!kh_ready(heap))
        return NULL;
    void *p;
    size_t usable;
    if (kh_class_request(size, align)) {
        kmem_cache_t *c = &heap->classes[kh_class_of(size)];
        p = kmem_cache_alloc(c);
        usable = c->object_size;
    } else {
        p = kheap_block_alloc(heap, size, align);
        /* Out of memory: the fronts' objects may empty slabs. */
        if (p == NULL && kh_front_drain(&heap->class_index) != 0)
            p = kheap_block_alloc(heap, size, align);
        usable = p != NULL ? kh_track_block_usable(heap, p) : 0;
    }
    kh_track_alloc(heap, p, size, usable);
    (void)usable;
    return p;
}

void *kheap_calloc(kheap_t *heap, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        if (kh_ready(heap))
            kh_track_alloc(heap, NULL, 0, 0);
        return NULL;
    }
    void *p = kheap_alloc(heap, total, 0);
    if (p != NULL)
        __builtin_memset(p, 0, total);
    return p;
}

/* Free ptr, its usable size in *usable. */
static mm_status_t kh_free(kheap_t *heap, void *ptr, size_t *usable)
{
    mm_status_t st = kh_front_free(&heap->class_index, ptr, NULL, usable);
    if (st == MM_OK)
        return st;
    st = kh_index_free(&heap->class_index, ptr, usable);
    if (st != MM_ERR_NOT_MAPPED)
        return st;
    *usable = kh_track_block_usable(heap, ptr);
    return kheap_block_free(heap, ptr);
}

mm_status_t kheap_free(kheap_t *heap, void *ptr)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (ptr == NULL)
        return MM_OK;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    size_t usable = 0;
    mm_status_t st = kh_free(heap, ptr, &usable);
    if (st == MM_OK)
        kh_track_free(heap, usable);
    return st;
}

mm_status_t kheap_realloc(kheap_t *heap, void *ptr, size_t size, void **out)
{
    if (heap == NULL || out == NULL)
        return MM_ERR_INVALID;
    *out = NULL;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    if (ptr == NULL) {
        *out = kheap_alloc(heap, size, 0);
        return *out != NULL ? MM_OK : MM_ERR_NOMEM;
    }
    if (size == 0)
        return kheap_free(heap, ptr);

    mm_status_t st = MM_OK;
    size_t old_usable;
    /* Programs realloc small strings as they grow: the front answers
     * without the lock every class shares. */
    kmem_cache_t *c = kh_front_owner(&heap->class_index, ptr);
    if (c == NULL)
        c = kh_index_owner(&heap->class_index, ptr, &st);
    if (c != NULL) {
        old_usable = c->object_size;
        if (size <= old_usable) { /* an object stays put while it fits */
            kh_track_resize(heap, old_usable, old_usable);
            *out = ptr;
            return MM_OK;
        }
    } else if (st == MM_ERR_NOT_MAPPED) {
        old_usable = kheap_block_usable_size(heap, ptr);
        st = kheap_block_resize(heap, ptr, size);
        if (st == MM_OK) {
            kh_track_resize(heap, old_usable, kh_track_block_usable(heap, ptr));
            *out = ptr;
            return MM_OK;
        }
        if (st != MM_ERR_NOMEM)
            return st; /* warned by the block layer */
    } else {
        kh_index_warn(st, ptr);
        return st;
    }

    void *p = kheap_alloc(heap, size, 0);
    if (p == NULL)
        return MM_ERR_NOMEM;
    __builtin_memcpy(p, ptr, old_usable < size ? old_usable : size);
    (void)kheap_free(heap, ptr);
    *out = p;
    return MM_OK;
}

size_t kheap_usable_size(kheap_t *heap, const void *ptr)
{
    if (!kh_ready(heap) || ptr == NULL)
        return 0;
    mm_status_t st = MM_OK;
    kmem_cache_t *c = kh_front_owner(&heap->class_index, ptr);
    if (c == NULL)
        c = kh_index_owner(&heap->class_index, ptr, &st);
    if (c != NULL)
        return c->object_size;
    return st == MM_ERR_NOT_MAPPED ? kheap_block_usable_size(heap, ptr) : 0;
}

mm_status_t kheap_get_stats(kheap_t *heap, kheap_stats_t *out)
{
    if (heap == NULL || out == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    kheap_stats_t s;
    __builtin_memset(&s, 0, sizeof(s));
    for (unsigned c = 0; c < KHEAP_CLASSES; c++) {
        kmem_cache_stats_t cs;
        mm_status_t st = kmem_cache_get_stats(&heap->classes[c], &cs);
        MM_ASSERT(st == MM_OK);
        (void)st;
        s.class_slabs += cs.slabs;
        s.class_objects += cs.live;
    }
    kh_blocks_stats(heap, &s);
    kh_track_stats(heap, &s);
    *out = s;
    return MM_OK;
}

void kheap_lock_all(kheap_t *heap)
{
    kh_front_lock_all(&heap->class_index);
    mm_spin_lock(&heap->class_index.lock);
    mm_spin_lock(&heap->lock);
}

void kheap_unlock_all(kheap_t *heap)
{
    mm_spin_unlock(&heap->lock);
    mm_spin_unlock(&heap->class_index.lock);
    kh_front_unlock_all(&heap->class_index);
}

size_t kheap_drain(kheap_t *heap)
{
    return kh_ready(heap) ? kh_front_drain(&heap->class_index) : 0;
}

mm_status_t kheap_trim(kheap_t *heap, size_t *released)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    /* Slabs the fronts keep partial may then go back too. */
    kh_front_drain(&heap->class_index);
    return kh_blocks_trim(heap, released);
}

mm_status_t kheap_check(kheap_t *heap, mm_report_t *report)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    for (unsigned c = 0; c < KHEAP_CLASSES; c++) {
        mm_status_t st = kmem_cache_check(&heap->classes[c], report);
        if (st != MM_OK)
            return st;
    }
    return kh_blocks_check(heap, report);
}

typedef struct kh_walk_ctx {
    kheap_t *heap;
    kheap_walk_fn fn;
    void *arg;
} kh_walk_ctx_t;

static bool kh_walk_mark_slabs(void *arg, const kheap_block_info_t *info)
{
    const kh_walk_ctx_t *w = arg;
    kheap_block_info_t i = *info;
    i.slab = i.internal &&
             kh_index_find(&w->heap->class_index, (uintptr_t)i.ptr) == (uintptr_t)i.ptr;
    i.front = i.internal && kh_front_owns(&w->heap->class_index, i.ptr);
    return w->fn(w->arg, &i);
}

mm_status_t kheap_walk(kheap_t *heap, kheap_walk_fn fn, void *arg)
{
    if (heap == NULL || fn == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    kh_walk_ctx_t w = {heap, fn, arg};
    return kh_blocks_walk(heap, kh_walk_mark_slabs, &w);
}
