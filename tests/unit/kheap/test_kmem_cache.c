/*
 * kmem_cache: geometry, allocation order, slabs given back when empty,
 * every bad free refused without reading the memory around the pointer,
 * constructors, destroy with live objects, shrink, stats, walker, checker.
 */
#include "kmem_internal.h"
#include "kheap_test.h"

#define HEAP_BYTES ((size_t)16 << 20)
#define FX_LEN(a) (sizeof(a) / sizeof((a)[0]))

static kheap_t heap;

static void heap_setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(HEAP_BYTES), HEAP_BYTES), MM_OK);
}

/* The slab layer alone: a CPU index without per-CPU state, so every
 * allocation and free takes the locked path (kmem_front.c is tested in
 * test_front.c). */
static void slab_setup(void)
{
    heap_setup();
    test_cpu_index = 1 << 20;
}

static kmem_cache_stats_t cstats(kmem_cache_t *c)
{
    kmem_cache_stats_t s;
    cr_assert_eq(kmem_cache_get_stats(c, &s), MM_OK);
    return s;
}

#define C_CHECK(c)                                                                                 \
    do {                                                                                           \
        mm_report_t c_r_ = {0};                                                                    \
        mm_status_t c_st_ = kmem_cache_check((c), &c_r_);                                          \
        cr_assert_eq(c_st_, MM_OK, "kmem_cache_check: %s: %s at %#llx", mm_status_str(c_st_),      \
                     c_r_.message ? c_r_.message : "-", (unsigned long long)c_r_.address);         \
        cr_assert_eq(test_irq_depth(), 0, "a lock was left held");                                 \
    } while (0)

Test(kmem_cache, init_rejects_bad_arguments_and_changes_nothing, .init = heap_setup)
{
    static kmem_cache_t c, zero;
    kheap_t cold;
    memset(&cold, 0, sizeof cold);
    cr_assert_eq(kmem_cache_init(NULL, &heap, "x", 64, 0, NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_init(&c, &heap, "x", 0, 0, NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_init(&c, &heap, "x", KMEM_OBJECT_MAX + 1, 0, NULL, NULL),
                 MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_init(&c, &heap, "x", 64, 24, NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_init(&c, &heap, "x", 64, KMEM_ALIGN_MAX * 2, NULL, NULL),
                 MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_init(&c, NULL, "x", 64, 0, NULL, NULL), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_init(&c, &cold, "x", 64, 0, NULL, NULL), MM_ERR_STATE);
    cr_assert(memcmp(&c, &zero, sizeof c) == 0, "a refused init wrote the cache");

    cr_assert_eq(kmem_cache_init(&c, &heap, "a name longer than thirty-one bytes", 64, 0, NULL,
                                 NULL),
                 MM_OK);
    cr_assert_str_eq(kmem_cache_name(&c), "a name longer than thirty-one b");
    cr_assert_eq(strlen(kmem_cache_name(&c)), KMEM_NAME_MAX - 1);
    cr_assert_eq(kmem_cache_init(&c, &heap, "again", 64, 0, NULL, NULL), MM_ERR_STATE);
    cr_assert_str_eq(kmem_cache_name(&c), "a name longer than thirty-one b", "unchanged");
    cr_assert_str_eq(kmem_cache_name(NULL), "");
    cr_assert_str_eq(kmem_cache_name(&zero), "");
    C_CHECK(&c);
}

Test(kmem_cache, uninitialised_or_copied_caches_are_refused, .init = heap_setup)
{
    static kmem_cache_t c, copy, zero;
    kmem_cache_stats_t s;
    size_t n = 99;
    cr_assert_null(kmem_cache_alloc(&zero));
    cr_assert_null(kmem_cache_alloc(NULL));
    cr_assert_eq(kmem_cache_free(NULL, &s), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_free(&zero, &s), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_shrink(NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_shrink(&zero, NULL), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_destroy(NULL, &n), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_destroy(&zero, &n), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_get_stats(NULL, &s), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_get_stats(&zero, &s), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_check(NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_check(&zero, NULL), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_walk(NULL, NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_walk(&zero, (kmem_walk_fn)1, NULL), MM_ERR_STATE);
    cr_assert_eq(n, 99);

    /* A copy of a live cache shares its slabs, not its lock or counts. */
    cr_assert_eq(kmem_cache_init(&c, &heap, "real", 48, 0, NULL, NULL), MM_OK);
    void *o = kmem_cache_alloc(&c);
    cr_assert_not_null(o);
    memcpy(&copy, &c, sizeof c);
    cr_assert_null(kmem_cache_alloc(&copy));
    cr_assert_eq(kmem_cache_free(&copy, o), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_destroy(&copy, NULL), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_get_stats(&copy, &s), MM_ERR_STATE);
    cr_assert_eq(kmem_cache_init(&copy, &heap, "copy", 48, 0, NULL, NULL), MM_ERR_STATE);
    cr_assert_eq(cstats(&c).live, 1);
    cr_assert_eq(kmem_cache_free(&c, o), MM_OK);
    cr_assert_eq(test_warnings.count, 0);
    C_CHECK(&c);
}

/* Slab size, stride and alignment for a spread of object sizes. */
Test(kmem_cache, geometry_packs_enough_objects_per_slab, .init = heap_setup)
{
    static const size_t sizes[] = {1, 8, 16, 24, 64, 100, 256, 700, 1024, 3000, 4096, 9000,
                                   KMEM_OBJECT_MAX};
    static const size_t aligns[] = {0, 8, 64, 4096};
    for (size_t a = 0; a < FX_LEN(aligns); a++) {
        for (size_t k = 0; k < FX_LEN(sizes); k++) {
            kmem_cache_t c;
            memset(&c, 0, sizeof c);
            cr_assert_eq(kmem_cache_init(&c, &heap, "g", sizes[k], aligns[a], NULL, NULL), MM_OK);
            kmem_cache_stats_t s = cstats(&c);
            size_t al = aligns[a] ? aligns[a] : KMEM_ALIGN_DEFAULT;
            cr_assert_eq(s.align, al);
            cr_assert_eq(s.stride % al, 0);
            cr_assert_geq(s.stride, sizes[k] + (HADRON_MM_HEAP_REDZONES ? KHEAP_REDZONE : 0));
            cr_assert_lt(s.stride, sizes[k] + al + KHEAP_REDZONE + 1);
            cr_assert_eq(s.slab_bytes % KMEM_SLAB_MIN, 0, "whole pages");
            cr_assert(s.slab_bytes >= KMEM_SLAB_MIN && s.slab_bytes <= KMEM_SLAB_MAX);
            cr_assert(s.objects_per_slab >= KMEM_SLAB_OBJECTS_MIN || s.slab_bytes == KMEM_SLAB_MAX,
                      "size %zu align %zu: %zu objects in %zu bytes", sizes[k], al,
                      s.objects_per_slab, s.slab_bytes);
            cr_assert(s.objects_per_slab >= 1 && s.objects_per_slab <= KMEM_SLAB_OBJECTS_MAX);
            /* At most half again the smallest slab that holds enough. */
            size_t least = KMEM_SLAB_MIN;
            while (least < KMEM_SLAB_MAX &&
                   (least <= KH_SLAB_TAIL + c.first_offset ||
                    (least - KH_SLAB_TAIL - c.first_offset) / s.stride < KMEM_SLAB_OBJECTS_MIN))
                least += KMEM_SLAB_MIN;
            cr_assert(s.slab_bytes >= least && s.slab_bytes <= least + least / 2,
                      "size %zu align %zu: slab %zu, least %zu", sizes[k], al, s.slab_bytes,
                      least);
            void *o = kmem_cache_alloc(&c);
            cr_assert_not_null(o, "size %zu align %zu", sizes[k], al);
            cr_assert_eq((uintptr_t)o % al, 0);
            memset(o, 0x5a, sizes[k]);
            cr_assert_eq(kmem_cache_free(&c, o), MM_OK);
            cr_assert_eq(kmem_cache_destroy(&c, NULL), MM_OK);
        }
    }
    t_assert_all_free(&heap);
}

/* Lowest free slot of the most recently used partial slab; a slab goes
 * back to the heap with its last object, and the table with the last slab. */
Test(kmem_cache, allocation_order_and_slabs_given_back, .init = slab_setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "order", 64, 0, NULL, NULL), MM_OK);
    kmem_cache_stats_t s = cstats(&c);
    size_t per = s.objects_per_slab;
    void **o = calloc(3 * per, sizeof *o);
    for (size_t i = 0; i < 3 * per; i++) {
        o[i] = kmem_cache_alloc(&c);
        cr_assert_not_null(o[i]);
        memset(o[i], (int)i, 64);
        if (i % per != 0)
            cr_assert_eq((uintptr_t)o[i], (uintptr_t)o[i - 1] + s.stride, "lowest slot next");
    }
    s = cstats(&c);
    cr_assert_eq(s.slabs, 3);
    cr_assert_eq(s.partial_slabs, 0);
    cr_assert_eq(s.live, 3 * per);
    cr_assert_eq(s.free_slots, 0);
    C_CHECK(&c);

    /* A hole in the first slab, then one in the second: the second is the
     * most recent partial slab and serves first, then the first. */
    cr_assert_eq(kmem_cache_free(&c, o[5]), MM_OK);
    cr_assert_eq(kmem_cache_free(&c, o[per + 7]), MM_OK);
    cr_assert_eq(cstats(&c).partial_slabs, 2);
    cr_assert_eq(kmem_cache_alloc(&c), o[per + 7]);
    cr_assert_eq(kmem_cache_alloc(&c), o[5]);
    C_CHECK(&c);

    /* Empty the middle slab: it goes back to the heap at once. */
    kheap_stats_t h0;
    cr_assert_eq(kheap_get_stats(&heap, &h0), MM_OK);
    for (size_t i = per; i < 2 * per; i++)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    s = cstats(&c);
    cr_assert_eq(s.slabs, 2);
    cr_assert_eq(s.slabs_released, 1);
    kheap_stats_t h1;
    cr_assert_eq(kheap_get_stats(&heap, &h1), MM_OK);
    cr_assert_eq(h1.free_bytes - h0.free_bytes, s.slab_bytes - KH_SLAB_TAIL + T_USER_OFF + T_BACK,
                 "the slab's block is free again");
    C_CHECK(&c);
    T_CHECK(&heap);

    for (size_t i = 0; i < per; i++)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    for (size_t i = 2 * per; i < 3 * per; i++)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    s = cstats(&c);
    cr_assert_eq(s.slabs, 0);
    cr_assert_eq(s.live, 0);
    cr_assert_eq(s.table_bytes, 0, "no slabs, no table");
    cr_assert_eq(s.allocs, s.frees);
    cr_assert_eq(s.slabs_created, s.slabs_released);
    t_assert_all_free(&heap);
    cr_assert_eq(test_warnings.count, 0);
    free(o);
}

typedef struct bad_case {
    const char *what;
    uintptr_t ptr;
    mm_status_t want;
} bad_case_t;

/* Every kind of bad free: status, one warning naming the pointer, nothing
 * changed (statistics but the rejection counter, the slabs' bitmaps). */
Test(kmem_cache, bad_frees_are_refused_and_change_nothing, .init = slab_setup)
{
    static kmem_cache_t c, other;
    cr_assert_eq(kmem_cache_init(&c, &heap, "victim", 64, 0, NULL, NULL), MM_OK);
    cr_assert_eq(kmem_cache_init(&other, &heap, "other", 64, 0, NULL, NULL), MM_OK);
    void *a = kmem_cache_alloc(&c), *b = kmem_cache_alloc(&c), *x = kmem_cache_alloc(&other);
    void *blk = kheap_alloc(&heap, 64, 0);
    cr_assert(a && b && x && blk);
    cr_assert_eq(kmem_cache_free(&c, b), MM_OK);
    kmem_cache_stats_t s = cstats(&c);
    uintptr_t slab = (uintptr_t)a & ~(uintptr_t)4095; /* first page of a page-aligned slab */
    uintptr_t last = (uintptr_t)a + (s.objects_per_slab - 1) * s.stride;
    int local;
    /* Under AddressSanitizer any read around these reports: the free must
     * decide from the cache's own table, never from the bytes near it. */
    uint8_t *lone = malloc(1);
    const bad_case_t cases[] = {
        {"a one-byte buffer from the host's malloc", (uintptr_t)lone, MM_ERR_BAD_POINTER},
        {"a freed object", (uintptr_t)b, MM_ERR_DOUBLE_FREE},
        {"a never allocated slot", last, MM_ERR_DOUBLE_FREE},
        {"an object of another cache of the same size", (uintptr_t)x, MM_ERR_BAD_POINTER},
        {"a kheap block", (uintptr_t)blk, MM_ERR_BAD_POINTER},
        {"the slab header", slab, MM_ERR_BAD_POINTER},
        {"inside the slab header", slab + 16, MM_ERR_BAD_POINTER},
        {"one byte into an object", (uintptr_t)a + 1, MM_ERR_BAD_POINTER},
        {"eight bytes into an object", (uintptr_t)a + 8, MM_ERR_BAD_POINTER},
        {"past the last slot", last + s.stride, MM_ERR_BAD_POINTER},
        {"the end of the slab", slab + s.slab_bytes - 8, MM_ERR_BAD_POINTER},
        {"the stack", (uintptr_t)&local, MM_ERR_BAD_POINTER},
        {"an address nobody maps", (uintptr_t)0x10, MM_ERR_BAD_POINTER},
        {"the top of the address space", UINTPTR_MAX - 7, MM_ERR_BAD_POINTER},
    };
    uint8_t before[4096];
    size_t header = c.first_offset;
    memcpy(before, (void *)slab, header);
    for (size_t i = 0; i < FX_LEN(cases); i++) {
        int warned = test_warnings.count;
        mm_status_t st = kmem_cache_free(&c, (void *)cases[i].ptr);
        cr_assert_eq(st, cases[i].want, "%s: %s", cases[i].what, mm_status_str(st));
        cr_assert_eq(test_warnings.count, warned + 1, "%s: warned once", cases[i].what);
        cr_assert_eq(test_warnings.last.kind,
                     cases[i].want == MM_ERR_DOUBLE_FREE ? MM_REPORT_DOUBLE_FREE
                                                         : MM_REPORT_BAD_POINTER,
                     "%s", cases[i].what);
        cr_assert_eq(test_warnings.last.address, (uint64_t)cases[i].ptr, "%s", cases[i].what);
        cr_assert_eq(test_irq_depth(), 0);
    }
    kmem_cache_stats_t after = cstats(&c);
    cr_assert_eq(after.rejected_frees, FX_LEN(cases));
    after.rejected_frees = s.rejected_frees;
    cr_assert(memcmp(&after, &s, sizeof s) == 0, "statistics changed");
    cr_assert(memcmp(before, (void *)slab, header) == 0, "slab header changed");
    cr_assert_eq(cstats(&other).live, 1, "the other cache's object is untouched");
    C_CHECK(&c);
    C_CHECK(&other);

    /* A pointer into a slab that went back to the heap. */
    cr_assert_eq(kmem_cache_free(&c, a), MM_OK);
    cr_assert_eq(cstats(&c).slabs, 0);
    cr_assert_eq(kmem_cache_free(&c, a), MM_ERR_BAD_POINTER, "its slab is gone");
    cr_assert_eq(kmem_cache_free(&c, NULL), MM_OK, "NULL is a no-op");
    free(lone);
    cr_assert_eq(kmem_cache_free(&other, x), MM_OK);
    cr_assert_eq(kheap_free(&heap, blk), MM_OK);
    t_assert_all_free(&heap);
}

#if !HADRON_MM_HEAP_REDZONES
/* Frees, double frees and allocations touch the slab's header page only:
 * with every other page of the slab unreadable they still work (debug
 * builds check guards and fills, which must read the objects). */
Test(kmem_cache, frees_never_touch_the_objects_pages, .init = heap_setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "untouched", 1024, 0, NULL, NULL), MM_OK);
    kmem_cache_stats_t s = cstats(&c);
    cr_assert_geq(s.slab_bytes, 4 * 4096);
    uint8_t *o[KMEM_SLAB_OBJECTS_MAX];
    for (size_t i = 0; i < s.objects_per_slab; i++)
        o[i] = kmem_cache_alloc(&c);
    uintptr_t slab = (uintptr_t)o[0] & ~(uintptr_t)4095; /* slabs are page-aligned */
    cr_assert_eq(mprotect((void *)(slab + 4096), s.slab_bytes - 4096, PROT_NONE), 0);
    size_t freed = 0;
    for (size_t i = 1; i < s.objects_per_slab; i++) {
        if ((uintptr_t)o[i] < slab + 4096)
            continue; /* shares the header's page */
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_ERR_DOUBLE_FREE);
        cr_assert_eq(kmem_cache_free(&c, o[i] + 24), MM_ERR_BAD_POINTER);
        freed++;
    }
    cr_assert_gt(freed, 8);
    for (size_t k = 0; k < freed; k++)
        cr_assert_geq((uintptr_t)kmem_cache_alloc(&c), slab + 4096);
    cr_assert_eq(mprotect((void *)(slab + 4096), s.slab_bytes - 4096, PROT_READ | PROT_WRITE),
                 0);
    C_CHECK(&c);
}
#endif

typedef struct ctor_log {
    size_t calls;
} ctor_log_t;

typedef struct thing {
    uint64_t magic;
    struct thing *self;
    uint8_t payload[40];
} thing_t;

static void thing_ctor(void *arg, void *obj)
{
    ctor_log_t *log = arg;
    thing_t *t = obj;
    log->calls++;
    t->magic = 0x7468696e67ull;
    t->self = t;
}

/* Each object is constructed once, when its slab is made, and comes back
 * from a free exactly as the caller left it (the cache never writes into
 * a free object, debug builds included). */
Test(kmem_cache, constructor_state_survives_free_and_reuse, .init = heap_setup)
{
    static kmem_cache_t c;
    static ctor_log_t log;
    cr_assert_eq(kmem_cache_init(&c, &heap, "thing", sizeof(thing_t), 0, thing_ctor, &log), MM_OK);
    size_t per = cstats(&c).objects_per_slab;
    thing_t *t = kmem_cache_alloc(&c);
    cr_assert_eq(log.calls, per, "the whole slab is constructed at once");
    cr_assert_eq(t->magic, 0x7468696e67ull);
    cr_assert_eq(t->self, t);
    thing_t *u = kmem_cache_alloc(&c);
    cr_assert_eq(u->self, u);
    memset(u->payload, 0xab, sizeof u->payload);
    cr_assert_eq(kmem_cache_free(&c, u), MM_OK);
    thing_t *v = kmem_cache_alloc(&c);
    cr_assert_eq(v, u);
    cr_assert_eq(v->self, v);
    cr_assert_eq(v->payload[39], 0xab, "freed in the constructed state, handed out as freed");
    cr_assert_eq(log.calls, per);
    C_CHECK(&c);
    cr_assert_eq(kmem_cache_free(&c, t), MM_OK);
    cr_assert_eq(kmem_cache_free(&c, v), MM_OK);
}

Test(kmem_cache, destroy_is_refused_while_objects_live, .init = heap_setup)
{
    kmem_cache_t *c = NULL;
    cr_assert_eq(kmem_cache_create(&heap, "dyn", 200, 64, NULL, NULL, NULL), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_create(&heap, "dyn", 0, 64, NULL, NULL, &c), MM_ERR_INVALID);
    cr_assert_eq(kmem_cache_create(NULL, "dyn", 200, 64, NULL, NULL, &c), MM_ERR_STATE);
    cr_assert_null(c);
    cr_assert_eq(kmem_cache_create(&heap, "dyn", 200, 64, NULL, NULL, &c), MM_OK);
    cr_assert(kheap_contains(&heap, c), "the descriptor comes from the heap");
    void *o[3];
    for (int i = 0; i < 3; i++)
        cr_assert_not_null(o[i] = kmem_cache_alloc(c));
    size_t live = 0;
    cr_assert_eq(kmem_cache_destroy(c, &live), MM_ERR_STATE);
    cr_assert_eq(live, 3);
    cr_assert_eq(cstats(c).live, 3, "nothing changed");
    C_CHECK(c);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(kmem_cache_free(c, o[i]), MM_OK);
    cr_assert_eq(kmem_cache_destroy(c, &live), MM_OK);
    cr_assert_eq(live, 0);
    t_assert_all_free(&heap);
}

Test(kmem_cache, create_without_memory_is_nomem)
{
    static kheap_t small;
    size_t bytes = KHEAP_REGION_MIN + 64;
    cr_assert_eq(kheap_init(&small, t_arena(4096), bytes), MM_OK);
    kmem_cache_t *c = (kmem_cache_t *)1;
    cr_assert_eq(kmem_cache_create(&small, "big", 64, 0, NULL, NULL, &c), MM_ERR_NOMEM);
    cr_assert_eq(c, (kmem_cache_t *)1, "*out untouched");
    /* A static cache on it: no room for a slab either. */
    static kmem_cache_t s;
    cr_assert_eq(kmem_cache_init(&s, &small, "s", 64, 0, NULL, NULL), MM_OK);
    cr_assert_null(kmem_cache_alloc(&s));
    kmem_cache_stats_t st = cstats(&s);
    cr_assert_eq(st.failures, 1);
    cr_assert_eq(st.slabs, 0);
    C_CHECK(&s);
    t_assert_all_free(&small);
}

/* The table grows as slabs come and shrinks on request as they go. */
Test(kmem_cache, shrink_gives_back_the_tables_spare_room, .init = slab_setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "many", 2048, 0, NULL, NULL), MM_OK);
    size_t per = cstats(&c).objects_per_slab, n = 40 * per;
    void **o = calloc(n, sizeof *o);
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(o[i] = kmem_cache_alloc(&c));
    kmem_cache_stats_t s = cstats(&c);
    cr_assert_eq(s.slabs, 40);
    cr_assert_geq(s.table_bytes, 2 * 40 * sizeof(uintptr_t));
    size_t released = 99;
    cr_assert_eq(kmem_cache_shrink(&c, &released), MM_OK);
    cr_assert_eq(released, 0, "a table full to its load factor never grows by shrinking");
    cr_assert_eq(cstats(&c).table_bytes, s.table_bytes);
    C_CHECK(&c);
    /* Free all but the first slab's objects. */
    for (size_t i = per; i < n; i++)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    s = cstats(&c);
    cr_assert_eq(s.slabs, 1);
    cr_assert_eq(kmem_cache_shrink(&c, &released), MM_OK);
    kmem_cache_stats_t t = cstats(&c);
    /* One entry per page of the one slab left, at most half full. */
    cr_assert_eq(t.table_bytes,
                 (kh_index_cap_for(s.slab_bytes / KH_TABLE_PAGE) + 1) * sizeof(uintptr_t));
    cr_assert_eq(released, s.table_bytes - t.table_bytes);
    cr_assert_gt(released, 0);
    cr_assert_eq(kmem_cache_shrink(&c, &released), MM_OK);
    cr_assert_eq(released, 0, "nothing more to give");
    C_CHECK(&c);
    for (size_t i = 0; i < per; i++)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    free(o);
    t_assert_all_free(&heap);
}

/* Shrinking needs a new, smaller table; without memory for it nothing
 * changes. */
Test(kmem_cache, shrink_without_memory_changes_nothing, .init = slab_setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "tight", 1024, 0, NULL, NULL), MM_OK);
    size_t per = cstats(&c).objects_per_slab, n = 20 * per;
    void **o = calloc(n, sizeof *o);
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(o[i] = kmem_cache_alloc(&c));
    for (size_t i = per; i < n; i++)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    /* Fill the heap so not even a small table fits. */
    void *hog[4096];
    size_t nh = 0;
    for (size_t sz = 1 << 20; sz >= 16; sz /= 2)
        while (nh < FX_LEN(hog) && (hog[nh] = kheap_block_alloc(&heap, sz, 0)) != NULL)
            nh++;
    kmem_cache_stats_t s = cstats(&c);
    size_t released = 7;
    cr_assert_eq(kmem_cache_shrink(&c, &released), MM_ERR_NOMEM);
    cr_assert_eq(released, 0);
    kmem_cache_stats_t t = cstats(&c);
    cr_assert(memcmp(&s, &t, sizeof s) == 0, "nothing changed");
    C_CHECK(&c);
    while (nh > 0)
        cr_assert_eq(kheap_block_free(&heap, hog[--nh]), MM_OK);
    for (size_t i = 0; i < per; i++)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    free(o);
    t_assert_all_free(&heap);
}

typedef struct walk_log {
    size_t n, stop_after;
    uintptr_t seen[64];
} walk_log_t;

static bool walk_cb(void *arg, const kmem_object_info_t *info)
{
    walk_log_t *w = arg;
    if (w->n < FX_LEN(w->seen))
        w->seen[w->n] = (uintptr_t)info->obj;
    w->n++;
    return w->n != w->stop_after;
}

Test(kmem_cache, walker_reports_exactly_the_live_objects, .init = heap_setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "walk", 96, 0, NULL, NULL), MM_OK);
    void *o[40];
    for (int i = 0; i < 40; i++)
        cr_assert_not_null(o[i] = kmem_cache_alloc(&c));
    for (int i = 0; i < 40; i += 3)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    walk_log_t w = {0};
    cr_assert_eq(kmem_cache_walk(&c, walk_cb, &w), MM_OK);
    cr_assert_eq(w.n, 40 - 14);
    for (size_t k = 0; k < w.n; k++) {
        bool live = false;
        for (int i = 0; i < 40; i++)
            live |= (uintptr_t)o[i] == w.seen[k] && i % 3 != 0;
        cr_assert(live, "walker reported %#lx", (unsigned long)w.seen[k]);
    }
    walk_log_t stop = {.stop_after = 5};
    cr_assert_eq(kmem_cache_walk(&c, walk_cb, &stop), MM_OK);
    cr_assert_eq(stop.n, 5, "false stops the walk");
    cr_assert_eq(kmem_cache_walk(&c, NULL, NULL), MM_ERR_INVALID);
}

/* The checker sees each kind of damage, and does not panic. */
Test(kmem_cache, check_reports_each_kind_of_damage, .init = heap_setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "dmg", 64, 0, NULL, NULL), MM_OK);
    void *o[3];
    for (int i = 0; i < 3; i++)
        o[i] = kmem_cache_alloc(&c);
    kh_slab_t *s = (kh_slab_t *)((uintptr_t)o[0] & ~(uintptr_t)4095);
    mm_report_t r;
#define DAMAGE(field, bad, msg)                                                                    \
    do {                                                                                           \
        __typeof__(field) saved_ = (field);                                                        \
        (field) = (bad);                                                                           \
        memset(&r, 0, sizeof r);                                                                   \
        cr_assert_eq(kmem_cache_check(&c, &r), MM_ERR_CORRUPT, "%s", msg);                         \
        cr_assert_eq(r.kind, MM_REPORT_CORRUPT);                                                   \
        cr_assert_str_eq(r.message, msg);                                                          \
        (field) = saved_;                                                                          \
        C_CHECK(&c);                                                                               \
    } while (0)
    DAMAGE(s->check, s->check ^ 1, "kmem_cache: slab header damaged");
    /* A slab claiming another cache is not this cache's any more. */
    DAMAGE(s->cache, &(kmem_cache_t){0}, "kmem_cache: slab table counts wrong");
    DAMAGE(s->nfree, s->nfree + 1, "kmem_cache: slab free count does not match its bitmap");
    uint32_t last = kh_bitmap_words(&c) - 1;
    cr_assert_neq(c.objects_per_slab % 64, 0, "bit 63 of the last word is past the last slot");
    DAMAGE(s->bits[last].free, s->bits[last].free | (1ull << 63),
           "kmem_cache: free bit beyond the last slot");
    DAMAGE(s->bits[0].live, s->bits[0].live | (s->bits[0].free & (0 - s->bits[0].free)),
           "kmem_cache: slot both free and handed out");
    DAMAGE(s->bits[0].remote, s->bits[0].remote | (s->bits[0].free & (0 - s->bits[0].free)),
           "kmem_cache: slot both free and handed out");
    DAMAGE(s->bits[last].live, s->bits[last].live | (1ull << 63),
           "kmem_cache: slot both free and handed out");
    DAMAGE(s->hint, 1, "kmem_cache: free slot below the slab's hint");
    DAMAGE(c.taken, c.taken + 1, "kmem_cache: live count does not match the slabs");
    DAMAGE(c.slabs, c.slabs + 1, "kmem_cache: slab table counts wrong");
    DAMAGE(c.partial, NULL, "kmem_cache: partial list misses a slab with a free slot");
    DAMAGE(c.partial_slabs, 2, "kmem_cache: partial list misses a slab with a free slot");
    DAMAGE(s->prev, s, "kmem_cache: partial list back link wrong");
    /* A table entry moved off its probe sequence. */
    kmem_index_t *x = c.index;
    long e = -1;
    for (size_t i = 0; i < x->cap; i++)
        if (x->table[i] == (uintptr_t)s)
            e = (long)i;
    cr_assert_geq(e, 0);
    long moved = (e + (long)x->cap / 2) % (long)x->cap;
    uintptr_t displaced = x->table[moved];
    x->table[moved] = x->table[e];
    x->table[e] = KH_TABLE_EMPTY;
    cr_assert_eq(kmem_cache_check(&c, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message,
                     "kmem_cache: slab table entry not reachable by its probe sequence");
    x->table[e] = x->table[moved];
    x->table[moved] = displaced;
    C_CHECK(&c);
    /* A slab page forgotten by the table. */
    uintptr_t keep = x->table[e];
    x->table[e] = KH_TABLE_EMPTY;
    x->used--;
    cr_assert_eq(kmem_cache_check(&c, &r), MM_ERR_CORRUPT);
    x->table[e] = keep;
    x->used++;
    C_CHECK(&c);
    /* A full slab on the partial list. */
    for (int i = 3; i < (int)c.objects_per_slab; i++)
        kmem_cache_alloc(&c);
    cr_assert_null(c.partial);
    c.partial = s;
    c.partial_slabs = 1;
    cr_assert_eq(kmem_cache_check(&c, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kmem_cache: full slab on the partial list");
    c.partial = NULL;
    c.partial_slabs = 0;
    C_CHECK(&c);
    cr_assert_eq(test_panics.count, 0);
#undef DAMAGE
}

/* A damaged slab header met by a free is the heap's own damage: panic. */
Test(kmem_cache, free_into_a_damaged_slab_panics, .init = heap_setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "p", 64, 0, NULL, NULL), MM_OK);
    void *o = kmem_cache_alloc(&c);
    kh_slab_t *s = (kh_slab_t *)((uintptr_t)o & ~(uintptr_t)4095);
    s->check ^= 0x100;
    bool panicked = TEST_CATCH_PANIC(kmem_cache_free(&c, o));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_CORRUPT);
    cr_assert_eq(test_panics.last.address, (uint64_t)(uintptr_t)s);
}

#if HADRON_MM_HEAP_REDZONES
Test(kmem_cache, guard_overrun_and_write_after_free_are_caught, .init = heap_setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "dbg", 40, 0, NULL, NULL), MM_OK);
    uint8_t *a = kmem_cache_alloc(&c), *b = kmem_cache_alloc(&c);
    cr_assert_eq(a[0], KH_FILL_ALLOC, "new objects are filled");
    a[40] = 1; /* one byte past the object */
    mm_report_t r;
    cr_assert_eq(kmem_cache_check(&c, &r), MM_ERR_CORRUPT);
    cr_assert_eq(r.kind, MM_REPORT_REDZONE);
    cr_assert_eq(r.address, (uint64_t)(uintptr_t)a);
    cr_assert_eq(r.offset, 40);
    bool panicked = TEST_CATCH_PANIC(kmem_cache_free(&c, a));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_REDZONE);
    cr_assert_eq(test_panics.last.offset, 40);

    static kmem_cache_t d;
    cr_assert_eq(kmem_cache_init(&d, &heap, "uaf", 40, 0, NULL, NULL), MM_OK);
    uint8_t *x = kmem_cache_alloc(&d), *keep = kmem_cache_alloc(&d); /* keeps the slab */
    cr_assert_eq(kmem_cache_free(&d, x), MM_OK);
    cr_assert_eq(x[0], KH_FILL_FREE);
    x[17] = 0; /* write after free */
    cr_assert_eq(kmem_cache_check(&d, &r), MM_ERR_CORRUPT);
    cr_assert_eq(r.kind, MM_REPORT_POISON);
    cr_assert_eq(r.offset, 17);
    panicked = TEST_CATCH_PANIC(kmem_cache_alloc(&d));
    cr_assert(panicked);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_POISON);
    cr_assert_eq(test_panics.last.address, (uint64_t)(uintptr_t)x);
    cr_assert_eq(test_panics.last.offset, 17);
    (void)b;
    (void)keep;
}
#endif

/* Against a model: random allocations and frees over three caches; every
 * object distinct, aligned, its bytes intact until freed, counts exact. */
Test(kmem_cache, random_traffic_matches_a_model, .init = heap_setup)
{
    static kmem_cache_t cs[3];
    static const size_t sz[3] = {24, 200, 1500}, al[3] = {8, 64, 16};
    for (int k = 0; k < 3; k++)
        cr_assert_eq(kmem_cache_init(&cs[k], &heap, "r", sz[k], al[k], NULL, NULL), MM_OK);
    enum { N = 3000 };
    static uint8_t *live[3][N];
    static size_t nlive[3];
    uint64_t rng = 0x6b6d656d;
    for (int step = 0; step < 60000; step++) {
        int k = (int)(t_rand(&rng) % 3);
        bool alloc = nlive[k] == 0 || (nlive[k] < N && t_rand(&rng) % 100 < 55);
        if (alloc) {
            uint8_t *p = kmem_cache_alloc(&cs[k]);
            cr_assert_not_null(p);
            cr_assert_eq((uintptr_t)p % al[k], 0);
            memset(p, (int)(((uintptr_t)p >> 3) & 0xff), sz[k]);
            live[k][nlive[k]++] = p;
        } else {
            size_t i = t_rand(&rng) % nlive[k];
            uint8_t *p = live[k][i];
            for (size_t j = 0; j < sz[k]; j += 7)
                cr_assert_eq(p[j], (uint8_t)(((uintptr_t)p >> 3) & 0xff), "object changed");
            cr_assert_eq(kmem_cache_free(&cs[k], p), MM_OK);
            live[k][i] = live[k][--nlive[k]];
        }
        if (step % 5000 == 0)
            for (int j = 0; j < 3; j++) {
                C_CHECK(&cs[j]);
                cr_assert_eq(cstats(&cs[j]).live, nlive[j]);
            }
    }
    for (int k = 0; k < 3; k++) {
        while (nlive[k] > 0)
            cr_assert_eq(kmem_cache_free(&cs[k], live[k][--nlive[k]]), MM_OK);
        C_CHECK(&cs[k]);
        cr_assert_eq(kmem_cache_destroy(&cs[k], NULL), MM_OK);
    }
    t_assert_all_free(&heap);
    cr_assert_eq(test_warnings.count, 0);
}
