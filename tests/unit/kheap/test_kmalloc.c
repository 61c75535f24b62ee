/*
 * kheap's kmalloc layer: size classes served by the heap's own object
 * caches, everything else by blocks, and the boundary between the two.
 */
#include "kheap_test.h"

#include "kmem_internal.h"

#define ARENA (4u << 20)

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(ARENA), ARENA), MM_OK);
}

static kheap_stats_t stats(void)
{
    kheap_stats_t s;
    cr_assert_eq(kheap_get_stats(&heap, &s), MM_OK);
    return s;
}

typedef struct slab_find {
    const void *ptr;
    bool in_slab, internal_seen;
} slab_find_t;

static bool find_slab(void *arg, const kheap_block_info_t *b)
{
    slab_find_t *f = arg;
    if (b->internal)
        f->internal_seen = true;
    uintptr_t p = (uintptr_t)f->ptr, lo = (uintptr_t)b->block, hi = lo + b->size;
    if (p >= lo && p < hi)
        f->in_slab = b->slab;
    return true;
}

static bool in_a_slab(const void *p)
{
    slab_find_t f = {p, false, false};
    cr_assert_eq(kheap_walk(&heap, find_slab, &f), MM_OK);
    return f.in_slab;
}

#if !HADRON_MM_HEAP_REDZONES /* heap_redzones builds have no size classes */
/* Every size up to the largest class comes from a class whose objects hold
 * it, lose at most an eighth (or a granule), and are granule-aligned. */
Test(kmalloc, class_requests_come_from_slabs, .init = setup)
{
    enum { SIZES = 512 };
    void *p[SIZES];
    size_t n = 0;
    for (size_t req = 0; req <= KHEAP_CLASS_MAX; req += req < 300 ? 1 : 37, n++) {
        cr_assert_lt(n, SIZES);
        p[n] = kheap_alloc(&heap, req, 0);
        cr_assert_not_null(p[n], "%zu bytes", req);
        cr_assert_eq((uintptr_t)p[n] % KHEAP_GRANULE, 0);
        size_t u = kheap_usable_size(&heap, p[n]);
        cr_assert_geq(u, req == 0 ? 1 : req, "%zu bytes: usable %zu", req, u);
        cr_assert_leq(u, req + req / 8 + KHEAP_GRANULE, "%zu bytes: usable %zu", req, u);
        cr_assert(in_a_slab(p[n]), "%zu bytes: not in a slab", req);
        memset(p[n], 0x5a, u);
    }
    kheap_stats_t s = stats();
    cr_assert_eq(s.class_objects, n);
    cr_assert_gt(s.class_slabs, 0);
    T_CHECK(&heap);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(kheap_free(&heap, p[i]), MM_OK);
    s = stats();
    cr_assert_eq(s.class_objects, 0);
    cr_assert_gt(kheap_drain(&heap), 0, "this CPU's front kept some");
    s = stats();
    cr_assert_eq(s.class_slabs, 0, "empty slabs go back at once");
    cr_assert_null(heap.class_index.table, "and so does the slab table");
    t_assert_all_free(&heap);
}

#endif

/* Larger requests and stricter alignments are blocks. */
Test(kmalloc, other_requests_are_blocks, .init = setup)
{
    void *big = kheap_alloc(&heap, KHEAP_CLASS_MAX + 1, 0);
    void *aligned = kheap_alloc(&heap, 24, 64);
    cr_assert_not_null(big);
    cr_assert_not_null(aligned);
    cr_assert_eq((uintptr_t)aligned % 64, 0);
    cr_assert_not(in_a_slab(big));
    cr_assert_not(in_a_slab(aligned));
    cr_assert_eq(kheap_usable_size(&heap, big), kheap_block_usable_size(&heap, big));
    cr_assert_eq(stats().class_objects, 0);
    cr_assert_eq(kheap_free(&heap, big), MM_OK);
    cr_assert_eq(kheap_free(&heap, aligned), MM_OK);
    cr_assert_null(kheap_alloc(&heap, 16, 3), "alignment not a power of two");
    t_assert_all_free(&heap);
}

#if !HADRON_MM_HEAP_REDZONES
/* Every wrong pointer near a class object is refused with its own code,
 * warned once, and changes nothing; so are the heap's own blocks. */
Test(kmalloc, bad_frees_of_class_objects, .init = setup)
{
    uint8_t *a = kheap_alloc(&heap, 100, 0), *b = kheap_alloc(&heap, 100, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_eq(kheap_free(&heap, a), MM_OK);
    kheap_stats_t before = stats();
    int warned = test_warnings.count;

    cr_assert_eq(kheap_free(&heap, a), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(test_warnings.last.kind, MM_REPORT_DOUBLE_FREE);
    cr_assert_eq(kheap_free(&heap, b + 16), MM_ERR_BAD_POINTER, "inside an object");
    cr_assert_eq(kheap_free(&heap, b + 1), MM_ERR_BAD_POINTER, "unaligned");
    uintptr_t slab = kh_index_find(&heap.class_index, (uintptr_t)b);
    cr_assert_neq(slab, 0);
    cr_assert_eq(kheap_free(&heap, (void *)slab), MM_ERR_BAD_POINTER, "the slab's header");
    cr_assert_eq(kheap_block_free(&heap, (void *)slab), MM_ERR_BAD_POINTER,
                 "the slab is the heap's own block");
    cr_assert_eq(kheap_block_free(&heap, b), MM_ERR_BAD_POINTER, "an object is no block");
    cr_assert_eq(kheap_block_free(&heap, heap.class_index.table), MM_ERR_BAD_POINTER,
                 "the slab table is the heap's own block");
    cr_assert_eq(kheap_block_resize(&heap, (void *)slab, 64), MM_ERR_BAD_POINTER);
    cr_assert_eq(kheap_block_usable_size(&heap, (void *)slab), 0);
    cr_assert_eq(kheap_usable_size(&heap, b + 16), 0);
    cr_assert_eq(kheap_usable_size(&heap, a), 0, "a free object has no size");
    void *out = (void *)1;
    cr_assert_eq(kheap_realloc(&heap, a, 10, &out), MM_ERR_DOUBLE_FREE);
    cr_assert_null(out);
    cr_assert_eq(kheap_realloc(&heap, b + 16, 10, &out), MM_ERR_BAD_POINTER);
    cr_assert_eq(test_warnings.count, warned + 10);

    kheap_stats_t after = stats();
    cr_assert(memcmp(&before, &after, sizeof before) == 0, "nothing changed");
    T_CHECK(&heap);
    cr_assert_eq(kheap_free(&heap, b), MM_OK);
    t_assert_all_free(&heap);
}

/* A pointer freed long ago may name memory the heap now uses for its own
 * bookkeeping (fuzz-kheap found the slab table there): refused, not freed. */
Test(kmalloc, a_stale_pointer_never_frees_the_heaps_own_blocks, .init = setup)
{
    test_cpu_index = 1 << 20; /* no front: the table is the first inner block */
    void *first = kheap_alloc(&heap, 16, 32); /* a block at the region's start */
    cr_assert_not_null(first);
    cr_assert_eq(kheap_free(&heap, first), MM_OK);
    void *obj = kheap_alloc(&heap, 64, 0); /* the first slab and its table */
    cr_assert_not_null(obj);
    cr_assert_eq((void *)(heap.class_index.table - 2), first,
                 "the table (after its two header words) took the freed block");
    int warned = test_warnings.count;
    cr_assert_eq(kheap_free(&heap, first), MM_ERR_BAD_POINTER);
    cr_assert_eq(test_warnings.count, warned + 1);
    T_CHECK(&heap);
    cr_assert_eq(kheap_free(&heap, obj), MM_OK);
    t_assert_all_free(&heap);
}

Test(kmalloc, realloc_across_the_boundary_keeps_contents, .init = setup)
{
    uint8_t *p = kheap_alloc(&heap, 40, 0);
    for (int i = 0; i < 40; i++)
        p[i] = (uint8_t)i;
    void *out = NULL;
    size_t slot = kheap_usable_size(&heap, p);
    cr_assert_eq(kheap_realloc(&heap, p, slot, &out), MM_OK);
    cr_assert_eq(out, p, "an object stays put while its slot holds the size");
    cr_assert_eq(kheap_realloc(&heap, p, 10000, &out), MM_OK);
    cr_assert_neq(out, p);
    cr_assert_not(in_a_slab(out));
    for (int i = 0; i < 40; i++)
        cr_assert_eq(((uint8_t *)out)[i], i);
    uint8_t *q = out;
    cr_assert_eq(kheap_realloc(&heap, q, 20, &out), MM_OK);
    cr_assert_eq(out, q, "a block shrinks where it stands");
    for (int i = 0; i < 20; i++)
        cr_assert_eq(q[i], i);
    cr_assert_eq(kheap_free(&heap, q), MM_OK);
    t_assert_all_free(&heap);
}

#endif

/* The size classes are the heap's: destroying one is refused. */
Test(kmalloc, a_class_cache_cannot_be_destroyed, .init = setup)
{
    size_t live = 99;
    cr_assert_eq(kmem_cache_destroy(&heap.classes[0], &live), MM_ERR_STATE);
    cr_assert_eq(live, 99, "nothing reported");
    cr_assert_str_eq(kmem_cache_name(&heap.classes[0]), "kmalloc-16");
    cr_assert_str_eq(kmem_cache_name(&heap.classes[KHEAP_CLASSES - 1]), "kmalloc-4096");
    void *p = kheap_alloc(&heap, 16, 0);
    cr_assert_not_null(p);
    cr_assert_eq(kheap_free(&heap, p), MM_OK);
    T_CHECK(&heap);
}

/* kheap_block_resize: in place only, each error its own code. */
Test(kmalloc, block_resize, .init = setup)
{
    uint8_t *p = kheap_block_alloc(&heap, 1000, 0);
    uint8_t *wall = kheap_block_alloc(&heap, 100, 0);
    cr_assert_eq(kheap_block_resize(&heap, p, 500), MM_OK);
    cr_assert_geq(kheap_block_usable_size(&heap, p), 500);
    cr_assert_eq(kheap_block_resize(&heap, p, 5000), MM_ERR_NOMEM, "the next block is used");
    cr_assert_eq(kheap_block_resize(NULL, p, 10), MM_ERR_INVALID);
    cr_assert_eq(kheap_block_resize(&heap, NULL, 10), MM_ERR_INVALID);
    kheap_t z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(kheap_block_resize(&z, p, 10), MM_ERR_STATE);
    cr_assert_eq(kheap_block_resize(&heap, p + 16, 10), MM_ERR_BAD_POINTER);
    cr_assert_eq(kheap_block_resize(&heap, p, (size_t)1 << 40), MM_ERR_NOMEM);
    cr_assert_eq(kheap_block_free(&heap, wall), MM_OK);
    cr_assert_eq(kheap_block_resize(&heap, wall, 10), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(kheap_block_resize(&heap, p, 5000), MM_OK, "room above now");
    cr_assert_eq(kheap_block_free(&heap, p), MM_OK);
    t_assert_all_free(&heap);
}

static bool count_cb(void *arg, const kheap_block_info_t *b)
{
    (void)b;
    ++*(size_t *)arg;
    return true;
}

/* The kmalloc layer's entry points refuse what the blocks' refuse. */
Test(kmalloc, entry_points_refuse_bad_heaps_and_arguments, .init = setup)
{
    kheap_t z;
    memset(&z, 0, sizeof z);
    void *p = kheap_alloc(&heap, 64, 0), *out = (void *)1;
    kheap_stats_t s;
    size_t n = 0;
    cr_assert_null(kheap_alloc(NULL, 16, 0));
    cr_assert_null(kheap_alloc(&z, 16, 0));
    cr_assert_null(kheap_calloc(&heap, SIZE_MAX, 2));
    cr_assert_null(kheap_calloc(&z, SIZE_MAX, 2));
    cr_assert_eq(kheap_free(NULL, p), MM_ERR_INVALID);
    cr_assert_eq(kheap_free(&z, p), MM_ERR_STATE);
    cr_assert_eq(kheap_free(&heap, NULL), MM_OK);
    cr_assert_eq(kheap_realloc(NULL, p, 8, &out), MM_ERR_INVALID);
    cr_assert_eq(kheap_realloc(&heap, p, 8, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_realloc(&z, p, 8, &out), MM_ERR_STATE);
    cr_assert_null(out);
    cr_assert_eq(kheap_realloc(&heap, NULL, (size_t)1 << 40, &out), MM_ERR_NOMEM);
    cr_assert_eq(kheap_realloc(&heap, p, (size_t)1 << 40, &out), MM_ERR_NOMEM, "cannot move");
    cr_assert_null(out);
    cr_assert_geq(kheap_usable_size(&heap, p), 64, "kept");
    cr_assert_eq(kheap_usable_size(&z, p), 0);
    cr_assert_eq(kheap_usable_size(&heap, NULL), 0);
    cr_assert_eq(kheap_get_stats(NULL, &s), MM_ERR_INVALID);
    cr_assert_eq(kheap_get_stats(&heap, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_get_stats(&z, &s), MM_ERR_STATE);
    cr_assert_eq(kheap_check(NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kheap_check(&z, NULL), MM_ERR_STATE);
    cr_assert_eq(kheap_walk(NULL, count_cb, &n), MM_ERR_INVALID);
    cr_assert_eq(kheap_walk(&heap, NULL, &n), MM_ERR_INVALID);
    cr_assert_eq(kheap_walk(&z, count_cb, &n), MM_ERR_STATE);
    cr_assert_eq(n, 0);
    cr_assert_eq(kheap_free(&heap, p), MM_OK);
    T_CHECK(&heap);
}
