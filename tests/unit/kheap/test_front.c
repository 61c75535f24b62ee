/*
 * kmem_cache fronts: what a CPU's front holds, last in first out, bounded;
 * objects freed on another CPU; double frees of held objects refused;
 * draining when memory runs short, on request and before a destroy;
 * holding every front against a CPU inside its own. CPUs are simulated
 * from one thread with test_cpu_index, except where threads say so.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "kmem_internal.h"
#include "kheap_test.h"

#define HEAP_BYTES ((size_t)4 << 20)

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(HEAP_BYTES), HEAP_BYTES), MM_OK);
    test_cpu_index = 0;
}

static kmem_cache_stats_t cstats(kmem_cache_t *c)
{
    kmem_cache_stats_t s;
    cr_assert_eq(kmem_cache_get_stats(c, &s), MM_OK);
    return s;
}

static void c_check(kmem_cache_t *c)
{
    mm_report_t r;
    cr_assert_eq(kmem_cache_check(c, &r), MM_OK, "%s", r.message);
}

/* Destroys c, which must have no live object left. */
static void destroy_empty(kmem_cache_t *c)
{
    size_t live = 99;
    cr_assert_eq(kmem_cache_destroy(c, &live), MM_OK);
    cr_assert_eq(live, 0);
}

Test(kmem_front, a_free_goes_to_the_front_and_comes_back_first, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "lifo", 64, 0, NULL, NULL), MM_OK);
    void *a = kmem_cache_alloc(&c), *b = kmem_cache_alloc(&c);
    cr_assert(a != NULL && b != NULL && a != b);
    kmem_cache_stats_t s = cstats(&c);
    cr_assert_eq(s.live, 2);
    cr_assert_gt(s.front_objects, 0, "a refill takes a batch");
    cr_assert_leq(s.front_objects, c.front_cap);
    cr_assert_eq(s.live + s.front_objects + s.free_slots, s.slabs * s.objects_per_slab);
    size_t held = s.front_objects;
    cr_assert_eq(kmem_cache_free(&c, a), MM_OK);
    s = cstats(&c);
    cr_assert_eq(s.live, 1);
    cr_assert_eq(s.front_objects, held + 1);
    cr_assert_eq(s.live + s.front_objects + s.free_slots, s.slabs * s.objects_per_slab);
    cr_assert_eq(s.allocs, 2);
    cr_assert_eq(s.frees, 1);
    c_check(&c);
    cr_assert_eq(kmem_cache_alloc(&c), a, "the object freed last comes back first");
    cr_assert_eq(kmem_cache_free(&c, a), MM_OK);
    cr_assert_eq(kmem_cache_free(&c, b), MM_OK);
    cr_assert_eq(cstats(&c).live, 0);
    size_t live = 99;
    cr_assert_eq(kmem_cache_destroy(&c, &live), MM_OK, "the front is drained first");
    cr_assert_eq(live, 0);
}

Test(kmem_front, a_double_free_of_a_held_object_is_refused, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "twice", 48, 0, NULL, NULL), MM_OK);
    void *a = kmem_cache_alloc(&c);
    cr_assert_eq(kmem_cache_free(&c, a), MM_OK);
    kmem_cache_stats_t before = cstats(&c);
    int warned = test_warnings.count;
    cr_assert_eq(kmem_cache_free(&c, a), MM_ERR_DOUBLE_FREE, "held by this CPU's front");
    test_cpu_index = 1;
    cr_assert_eq(kmem_cache_free(&c, a), MM_ERR_DOUBLE_FREE, "and from another CPU");
    cr_assert_eq(test_warnings.count, warned + 2);
    kmem_cache_stats_t after = cstats(&c);
    cr_assert_eq(after.front_objects, before.front_objects, "nothing was pushed twice");
    cr_assert_eq(after.live, before.live);
    cr_assert_eq(after.rejected_frees, before.rejected_frees + 2);
    c_check(&c);
    /* Through kfree as well. */
    test_cpu_index = 0;
    void *k = kheap_alloc(&heap, 40, 0);
    cr_assert_eq(kheap_free(&heap, k), MM_OK);
    cr_assert_eq(kheap_free(&heap, k), MM_ERR_DOUBLE_FREE);
    T_CHECK(&heap);
}

/* A slab's handed-out bits are flipped with plain stores by the CPU that
 * owns them (its live_owner) and atomically by every other CPU and locked
 * path; the second free of an object is refused in every order of the
 * two: owner then other, other then owner, other then other, and locked
 * path then front. Objects handed out by another CPU than the owner free
 * on the owner, and the other way round. */
Test(kmem_front, a_double_free_is_refused_whichever_cpus_free_it, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "owners", 64, 0, NULL, NULL), MM_OK);
    void *o[4];
    for (int i = 0; i < 4; i++)
        cr_assert_not_null(o[i] = kmem_cache_alloc(&c)); /* CPU 0 owns the slab */
    kh_slab_t *s = (kh_slab_t *)kh_index_find(c.index, (uintptr_t)o[0]);
    cr_assert_eq(s->live_owner, 1, "CPU 0's front (tag 1) refilled from it first");
    void *own[3] = {NULL, NULL, NULL}; /* CPUs 1 and 2 get fronts of their own */
    for (int cpu = 1; cpu < 3; cpu++) {
        test_cpu_index = cpu;
        cr_assert_not_null(own[cpu] = kmem_cache_alloc(&c));
        cr_assert_neq(kh_index_find(c.index, (uintptr_t)own[cpu]), (uintptr_t)s);
    }
    struct { unsigned first, second; } order[] = {{0, 1}, {1, 0}, {1, 2}, {0, 0}};
    for (int k = 0; k < 4; k++) {
        test_cpu_index = (int)order[k].first;
        cr_assert_eq(kmem_cache_free(&c, o[k]), MM_OK);
        test_cpu_index = (int)order[k].second;
        cr_assert_eq(kmem_cache_free(&c, o[k]), MM_ERR_DOUBLE_FREE, "freed on CPU %u, then %u",
                     order[k].first, order[k].second);
        c_check(&c);
    }
    /* CPU 1 hands out an object of CPU 0's slab (its front holds it); CPU
     * 0 frees it, then CPU 1 frees it again. */
    test_cpu_index = 1;
    void *back = kmem_cache_alloc(&c);
    cr_assert(back == o[2], "CPU 1 freed it last");
    test_cpu_index = 0;
    cr_assert_eq(kmem_cache_free(&c, back), MM_OK);
    test_cpu_index = 1;
    cr_assert_eq(kmem_cache_free(&c, back), MM_ERR_DOUBLE_FREE);
    /* A locked-path allocation (no per-CPU state) of a slot of the owner's
     * slab, freed by the owner, then by the locked path. */
    test_cpu_index = HADRON_MM_MAX_CPUS;
    void *locked = kmem_cache_alloc(&c);
    cr_assert_not_null(locked);
    test_cpu_index = 0;
    cr_assert_eq(kmem_cache_free(&c, locked), MM_OK);
    test_cpu_index = HADRON_MM_MAX_CPUS;
    cr_assert_eq(kmem_cache_free(&c, locked), MM_ERR_DOUBLE_FREE);
    for (int cpu = 1; cpu < 3; cpu++) {
        test_cpu_index = 0;
        cr_assert_eq(kmem_cache_free(&c, own[cpu]), MM_OK, "CPU %d's object freed on CPU 0", cpu);
        test_cpu_index = cpu;
        cr_assert_eq(kmem_cache_free(&c, own[cpu]), MM_ERR_DOUBLE_FREE);
    }
    test_cpu_index = 0;
    c_check(&c);
    cr_assert_eq(cstats(&c).live, 0);
    destroy_empty(&c);
}

Test(kmem_front, an_object_freed_on_another_cpu_joins_that_cpus_front, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "remote", 128, 0, NULL, NULL), MM_OK);
    enum { N = 200 };
    void *o[N];
    for (int i = 0; i < N; i++)
        cr_assert_not_null(o[i] = kmem_cache_alloc(&c));
    test_cpu_index = 1;
    void *mine = kmem_cache_alloc(&c); /* CPU 1's front exists from now on */
    cr_assert_not_null(mine);
    for (int i = 0; i < N; i++)
        cr_assert_eq(kmem_cache_free(&c, o[i]), MM_OK);
    kmem_cache_stats_t s = cstats(&c);
    cr_assert_eq(s.live, 1);
    cr_assert_leq(s.front_objects, 2 * c.front_cap, "what the fronts hold is bounded");
    c_check(&c);
    /* CPU 1 hands out what it holds, CPU 0's objects included. */
    void *again = kmem_cache_alloc(&c);
    cr_assert_eq(again, o[N - 1], "last freed on this CPU, first out");
    cr_assert_eq(kmem_cache_free(&c, again), MM_OK);
    cr_assert_eq(kmem_cache_free(&c, mine), MM_OK);
    cr_assert_eq(kmem_cache_shrink(&c, NULL), MM_OK);
    s = cstats(&c);
    cr_assert_eq(s.front_objects, 0, "shrink drains every front");
    cr_assert_eq(s.slabs, 0, "and the slabs went back");
    cr_assert_eq(kmem_cache_destroy(&c, NULL), MM_OK);
    t_assert_all_free(&heap);
}

Test(kmem_front, an_allocation_fails_only_when_no_front_holds_an_object, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "short", 2048, 0, NULL, NULL), MM_OK);
    /* CPU 1 keeps one object in its front. */
    test_cpu_index = 1;
    void *held = kmem_cache_alloc(&c);
    cr_assert_not_null(held);
    cr_assert_eq(kmem_cache_free(&c, held), MM_OK);
    /* CPU 0 takes everything the heap (which cannot grow) can give. */
    test_cpu_index = 0;
    size_t n = 0;
    void **all = malloc(HEAP_BYTES / 2048 * sizeof(void *));
    while ((all[n] = kmem_cache_alloc(&c)) != NULL)
        n++;
    kmem_cache_stats_t s = cstats(&c);
    cr_assert_eq(s.front_objects, 0, "CPU 1's object was drained and handed out");
    cr_assert_eq(s.live, n);
    cr_assert_eq(s.free_slots, 0, "every slot of every slab is in use");
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found = found || all[i] == held;
    cr_assert(found, "the object CPU 1 held went to CPU 0");
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(kmem_cache_free(&c, all[i]), MM_OK);
    free(all);
    cr_assert_eq(kmem_cache_destroy(&c, NULL), MM_OK);
    t_assert_all_free(&heap);
}

#if !HADRON_MM_HEAP_REDZONES /* red-zone builds serve kmalloc from blocks only */
Test(kmem_front, kmalloc_classes_drain_for_a_large_block, .init = setup)
{
    /* Class objects fill the heap, then are freed on CPU 1, whose front
     * keeps some: a block as large as the heap's free space needs them. */
    enum { SIZE = 1024 };
    size_t max = HEAP_BYTES / SIZE, n = 0;
    void **o = malloc(max * sizeof(void *));
    test_cpu_index = 1;
    kheap_free(&heap, kheap_alloc(&heap, 16, 0)); /* CPU 1's front, made now */
    test_cpu_index = 0;
    while (n < max && (o[n] = kheap_alloc(&heap, SIZE, 0)) != NULL)
        n++;
    test_cpu_index = 1;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(kheap_free(&heap, o[i]), MM_OK);
    free(o);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(&heap, &st), MM_OK);
    cr_assert_gt(st.class_slabs, 0, "slabs kept partial by CPU 1's front");
    cr_assert_eq(st.class_objects, 0);
    size_t big = st.free_bytes + st.class_slabs * 4096 - 64 * 1024;
    test_cpu_index = 0;
    void *b = kheap_alloc(&heap, big, 0);
    cr_assert_not_null(b, "the allocation drained the fronts: %zu bytes", big);
    cr_assert_eq(kheap_free(&heap, b), MM_OK);
    T_CHECK(&heap);
    t_assert_all_free(&heap);
}
#endif

Test(kmem_front, no_per_cpu_state_takes_the_locked_path, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "nofront", 32, 0, NULL, NULL), MM_OK);
    test_cpu_index = HADRON_MM_MAX_CPUS; /* a CPU beyond the configured count */
    void *a = kmem_cache_alloc(&c);
    cr_assert_not_null(a);
    cr_assert_null(c.index->fronts, "no front was made");
    cr_assert_eq(kmem_cache_free(&c, a), MM_OK);
    kmem_cache_stats_t s = cstats(&c);
    cr_assert_eq(s.front_objects, 0);
    cr_assert_eq(s.slabs, 0, "the locked path gives an empty slab back at once");
    cr_assert_eq(kmem_cache_destroy(&c, NULL), MM_OK);
}

Test(kmem_front, drain_and_lock_all_refuse_nothing_they_should_not_touch, .init = setup)
{
    static kheap_t blank;
    cr_assert_eq(kheap_drain(NULL), 0);
    cr_assert_eq(kheap_drain(&blank), 0, "an uninitialised heap holds nothing");
    cr_assert_eq(kheap_drain(&heap), 0, "no front yet");
#if !HADRON_MM_HEAP_REDZONES /* red-zone builds serve kmalloc from blocks only: no fronts */
    /* Two CPUs with fronts: kheap_lock_all holds both, and the heap's two
     * other locks, until kheap_unlock_all. */
    void *a = kheap_alloc(&heap, 32, 0);
    test_cpu_index = 1;
    void *b = kheap_alloc(&heap, 32, 0);
    cr_assert(a != NULL && b != NULL);
    kh_front_t *f0 = heap.class_index.fronts[0], *f1 = heap.class_index.fronts[1];
    cr_assert(f0 != NULL && f1 != NULL);
    kheap_lock_all(&heap);
    cr_assert(mm_spin_is_locked(&f0->lock) && mm_spin_is_locked(&f1->lock));
    cr_assert(mm_spin_is_locked(&heap.class_index.lock) && mm_spin_is_locked(&heap.lock));
    kheap_unlock_all(&heap);
    cr_assert_not(mm_spin_is_locked(&f0->lock) || mm_spin_is_locked(&f1->lock));
    cr_assert_not(mm_spin_is_locked(&heap.class_index.lock) || mm_spin_is_locked(&heap.lock));
    cr_assert_eq(kheap_free(&heap, a), MM_OK, "freed on CPU 1, into its front");
    cr_assert_eq(kheap_free(&heap, b), MM_OK);
    cr_assert_geq(kheap_drain(&heap), 2, "both objects were held");
    cr_assert_eq(kheap_drain(&heap), 0, "and nothing after");
#endif
    T_CHECK(&heap);
    t_assert_all_free(&heap);
}

#if !HADRON_MM_HEAP_REDZONES /* red-zone builds serve kmalloc from blocks only: no fronts */
Test(kmem_front, realloc_and_usable_size_of_a_class_object_need_no_class_lock, .init = setup,
     .timeout = 30)
{
    void *p = kheap_alloc(&heap, 40, 0);
    void *big = kheap_alloc(&heap, 2 * KHEAP_CLASS_MAX, 0);
    cr_assert(p != NULL && big != NULL);
    /* CPU 1 holds the lock every size class shares: CPU 0's answers about
     * its live class object come from its front (a call that took the lock
     * would spin until the timeout). */
    test_cpu_index = 1;
    mm_irqflags_t f = mm_spin_lock_irqsave(&heap.class_index.lock);
    test_cpu_index = 0;
    cr_assert_eq(kheap_usable_size(&heap, p), 48);
    void *q = NULL;
    cr_assert_eq(kheap_realloc(&heap, p, 48, &q), MM_OK);
    cr_assert_eq(q, p, "it still fits: it stays put");
    test_cpu_index = 1;
    mm_spin_unlock_irqrestore(&heap.class_index.lock, f);
    test_cpu_index = 0;
    /* A block, and a CPU without a front, ask under the lock. */
    cr_assert_geq(kheap_usable_size(&heap, big), 2 * KHEAP_CLASS_MAX);
    test_cpu_index = HADRON_MM_MAX_CPUS;
    cr_assert_eq(kheap_usable_size(&heap, p), 48);
    test_cpu_index = 0;
    cr_assert_eq(kheap_free(&heap, p), MM_OK);
    cr_assert_eq(kheap_free(&heap, big), MM_OK);
    kheap_drain(&heap);
    t_assert_all_free(&heap);
}
#endif

/* Refills take from slabs of the refilling CPU's own: two CPUs allocating
 * in turns from one cache never get objects of one slab. Otherwise every
 * allocation and free of each would flip live bits in a header line the
 * other writes too. */
Test(kmem_front, each_cpu_refills_from_slabs_of_its_own, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "own slabs", 64, 0, NULL, NULL), MM_OK);
    enum { ROUNDS = 8, PER = 24 };
    static void *obj[2][ROUNDS * PER];
    for (int r = 0; r < ROUNDS; r++)
        for (int cpu = 0; cpu < 2; cpu++) {
            test_cpu_index = cpu;
            for (int k = 0; k < PER; k++)
                cr_assert_not_null(obj[cpu][r * PER + k] = kmem_cache_alloc(&c));
        }
    kmem_cache_stats_t s = cstats(&c);
    cr_assert_gt(s.slabs, 2, "the objects fill several slabs (%zu per slab)", s.objects_per_slab);
    for (int i = 0; i < ROUNDS * PER; i++)
        for (int j = 0; j < ROUNDS * PER; j++)
            cr_assert_neq(kh_index_find(c.index, (uintptr_t)obj[0][i]),
                          kh_index_find(c.index, (uintptr_t)obj[1][j]),
                          "CPU 0's object %d and CPU 1's object %d share a slab", i, j);
    c_check(&c);
    for (int cpu = 0; cpu < 2; cpu++) {
        test_cpu_index = cpu;
        for (int i = 0; i < ROUNDS * PER; i++)
            cr_assert_eq(kmem_cache_free(&c, obj[cpu][i]), MM_OK);
    }
    test_cpu_index = 0;
    destroy_empty(&c);
}

/* A refill that finds no slab it may take from makes one, with the front
 * left. Meanwhile (played here from the irq hook, as another CPU would)
 * frees through the locked path give the front's previous slab free slots
 * again. The new slab's slots go to the front in the same lock hold that
 * made it, so it is not passed over and left empty on the partial list
 * (kheap_check: "an empty slab was kept"), as when the refill ran again
 * after re-entering the front and took the freed slots instead. */
static kmem_cache_t grow_cache;
static void *grow_victims[16];
static size_t grow_slabs_before;

static void free_into_the_previous_slab(void)
{
    if (grow_cache.slabs != grow_slabs_before + 1)
        return;
    test_irq_save_observer = NULL;
    int cpu = test_cpu_index;
    test_cpu_index = HADRON_MM_MAX_CPUS; /* another CPU, on the locked path */
    for (size_t i = 0; i < 16; i++)
        cr_assert_eq(kmem_cache_free(&grow_cache, grow_victims[i]), MM_OK);
    test_cpu_index = cpu;
}

Test(kmem_front, a_new_slab_goes_to_the_front_that_made_it, .init = setup)
{
    cr_assert_eq(kmem_cache_init(&grow_cache, &heap, "grow", 64, 0, NULL, NULL), MM_OK);
    test_cpu_index = 0;
    size_t per = cstats(&grow_cache).objects_per_slab;
    cr_assert_gt(per, 16);
    cr_assert_eq((grow_cache.front_cap + 1) / 2, 16, "a refill takes 16");
    void **obj = calloc(per + 1, sizeof *obj);
    for (size_t i = 0; i < per; i++)
        cr_assert_not_null(obj[i] = kmem_cache_alloc(&grow_cache));
    kmem_cache_stats_t s = cstats(&grow_cache);
    cr_assert_eq(s.slabs, 1, "the first slab, all of it handed out");
    cr_assert_eq(s.front_objects, 0);
    for (size_t i = 0; i < 16; i++)
        grow_victims[i] = obj[i];
    grow_slabs_before = 1;
    test_irq_save_observer = free_into_the_previous_slab;
    cr_assert_not_null(obj[per] = kmem_cache_alloc(&grow_cache));
    test_irq_save_observer = NULL;
    s = cstats(&grow_cache);
    cr_assert_eq(s.slabs, 2);
    cr_assert_eq(s.free_slots, 16 + (per - 16), "16 freed into the first slab, the rest of the "
                                                "second still free");
    c_check(&grow_cache);
    for (size_t i = 16; i <= per; i++)
        cr_assert_eq(kmem_cache_free(&grow_cache, obj[i]), MM_OK);
    free(obj);
    destroy_empty(&grow_cache);
}

/* While some context holds the fronts (a drain, a table retirement, a
 * fork handler), a CPU neither takes from nor gives to its front: each
 * call takes the slabs' locked path, and the front is used again once the
 * hold ends. The hold made the other CPUs fence (mm_hook_cpu_barrier). */
Test(kmem_front, while_the_fronts_are_held_every_cpu_takes_the_locked_path, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "held", 64, 0, NULL, NULL), MM_OK);
    void *a = kmem_cache_alloc(&c);
    cr_assert_not_null(a);
    size_t held = cstats(&c).front_objects;
    cr_assert_gt(held, 0);
    long barriers = test_cpu_barriers;
    cr_assert(kh_fronts_hold(c.index));
#if HADRON_MM_ASYMMETRIC_BARRIER
    cr_assert_eq(test_cpu_barriers, barriers + 1, "the other CPUs were made to fence");
#else
    cr_assert_eq(test_cpu_barriers, barriers, "full fences on both sides: no hook");
#endif
    void *b = kmem_cache_alloc(&c);
    cr_assert(b != NULL && b != a);
    cr_assert_eq(cstats(&c).front_objects, held, "taken from a slab, not the front");
    cr_assert_eq(kmem_cache_free(&c, a), MM_OK);
    cr_assert_eq(cstats(&c).front_objects, held, "given to its slab, not the front");
    cr_assert_eq(kmem_cache_free(&c, a), MM_ERR_DOUBLE_FREE, "the locked path refuses it too");
    c_check(&c);
    kh_fronts_release(c.index);
    cr_assert_eq(kmem_cache_free(&c, b), MM_OK);
    cr_assert_eq(cstats(&c).front_objects, held + 1, "the front is used again");
    destroy_empty(&c);
}

/* An interrupt that comes while its CPU is inside its front (here: at the
 * interrupt-disable of the index lock in a refill) and allocates and frees
 * from the same cache takes the slabs' locked path; the front it
 * interrupted is left as it was, and both get distinct objects. */
static kmem_cache_t nest_cache;
static void *nested_obj;
static int nested_calls;

static kh_mag_t *nest_mag(void)
{
    return &nest_cache.index->fronts[0]->mag[nest_cache.front_slot];
}

static void interrupt_inside_the_front(void)
{
    if (nest_cache.index->fronts[0]->active == 0)
        return; /* entering the front: not inside yet */
    test_irq_save_observer = NULL;
    nested_calls++;
    cr_assert_eq(nest_mag()->count, 0, "the magazine being refilled");
    void *gone = kmem_cache_alloc(&nest_cache);
    nested_obj = kmem_cache_alloc(&nest_cache); /* keeps the slab */
    cr_assert(gone != NULL && nested_obj != NULL);
    cr_assert_eq(kmem_cache_free(&nest_cache, gone), MM_OK);
    cr_assert_eq(kmem_cache_free(&nest_cache, gone), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(nest_mag()->count, 0, "the interrupted front untouched");
}

Test(kmem_front, an_interrupt_inside_the_front_takes_the_locked_path, .init = setup)
{
    cr_assert_eq(kmem_cache_init(&nest_cache, &heap, "nest", 64, 0, NULL, NULL), MM_OK);
    void *first = kmem_cache_alloc(&nest_cache); /* makes the front */
    cr_assert_eq(kmem_cache_free(&nest_cache, first), MM_OK);
    cr_assert_eq(kmem_cache_shrink(&nest_cache, NULL), MM_OK);
    cr_assert_eq(nest_mag()->count, 0, "drained: the next allocation refills");
    test_irq_save_observer = interrupt_inside_the_front;
    void *outer = kmem_cache_alloc(&nest_cache);
    test_irq_save_observer = NULL;
    cr_assert_eq(nested_calls, 1);
    cr_assert(outer != NULL && nested_obj != NULL && outer != nested_obj);
    cr_assert_eq(nest_cache.index->fronts[0]->active, 0);
    cr_assert_eq(cstats(&nest_cache).live, 2);
    c_check(&nest_cache);
    cr_assert_eq(kmem_cache_free(&nest_cache, outer), MM_OK);
    cr_assert_eq(kmem_cache_free(&nest_cache, nested_obj), MM_OK);
    destroy_empty(&nest_cache);
}

#if HADRON_MM_ASYMMETRIC_BARRIER
/* A kernel whose barrier hook refuses (it cannot interrupt the other CPUs
 * from where it is called): a drain empties only the caller's own front,
 * a destroy is refused while another CPU's front holds objects, and a
 * table array taken off the index waits until a later retirement can hold
 * the fronts. Nothing is lost meanwhile. */
Test(kmem_front, without_a_barrier_only_the_own_front_drains_and_old_tables_wait, .init = setup)
{
    static kmem_cache_t c;
    cr_assert_eq(kmem_cache_init(&c, &heap, "no barrier", 64, 0, NULL, NULL), MM_OK);
    enum { N = 2000 };
    static void *obj[N];
    test_cpu_index = 1;
    void *one = kmem_cache_alloc(&c);
    cr_assert_eq(kmem_cache_free(&c, one), MM_OK);
    size_t cpu1_holds = cstats(&c).front_objects;
    cr_assert_gt(cpu1_holds, 0);
    test_cpu_index = 0;
    test_cpu_barrier_refused = true;
    uintptr_t *table_before = c.index->table;
    for (int i = 0; i < N; i++)
        cr_assert_not_null(obj[i] = kmem_cache_alloc(&c));
    cr_assert_neq(c.index->table, table_before, "the table grew");
    cr_assert_not_null(c.index->retired, "the old arrays wait");
    size_t cpu0_holds = cstats(&c).front_objects - cpu1_holds;
    cr_assert_eq(kh_front_drain(c.index), cpu0_holds, "only this CPU's front");
    cr_assert_eq(cstats(&c).front_objects, cpu1_holds);
    for (int i = 0; i < N; i++)
        cr_assert_eq(kmem_cache_free(&c, obj[i]), MM_OK);
    c_check(&c);
    size_t live = 0;
    cr_assert_eq(kmem_cache_destroy(&c, &live), MM_ERR_STATE, "CPU 1's front cannot be reached");
    cr_assert_eq(live, cpu1_holds);
    test_cpu_barrier_refused = false;
    kh_index_retire(c.index, NULL);
    cr_assert_null(c.index->retired, "freed at the first hold that succeeds");
    cr_assert_eq(kmem_cache_destroy(&c, &live), MM_OK);
    cr_assert_eq(live, 0);
    t_assert_all_free(&heap);
}
#endif

#if HADRON_MM_SPIN_YIELD
/* A hold waits for a CPU that is inside its front. Thread A stops inside
 * its front (in a refill, where it is about to take the index lock); B
 * then holds the fronts and is seen spinning (its wait yields every
 * MM_SPIN_YIELD_SPINS polls); only then is A let go, and B's hold must
 * return after that. No timing: each step waits for the one before. */
static kmem_cache_t wait_cache;
static _Thread_local bool is_inside_thread;
static atomic_int stage; /* 1: A inside its front, 2: B waiting, 3: A may go on */
static atomic_bool let_go;

static void stay_inside(void)
{
    if (!is_inside_thread)
        return;
    unsigned cpu = mm_hook_cpu_index();
    kh_front_t **all = wait_cache.index->fronts;
    kh_front_t *fr = all != NULL && cpu < HADRON_MM_MAX_CPUS ? all[cpu] : NULL;
    if (fr == NULL || __atomic_load_n(&fr->active, __ATOMIC_RELAXED) == 0)
        return; /* not inside yet */
    test_irq_save_observer = NULL;
    atomic_store(&stage, 1);
    while (atomic_load(&stage) != 3)
        sched_yield();
}

static void *alloc_inside(void *arg)
{
    (void)arg;
    is_inside_thread = true;
    return kmem_cache_alloc(&wait_cache);
}

static void seen_waiting(void)
{
    int one = 1;
    atomic_compare_exchange_strong(&stage, &one, 2);
}

static void *hold_fronts(void *arg)
{
    (void)arg;
    bool held = kh_fronts_hold(wait_cache.index);
    bool after = atomic_load(&let_go);
    seen_waiting(); /* a hold that did not wait must not leave main waiting */
    if (held)
        kh_fronts_release(wait_cache.index);
    return (void *)(uintptr_t)(held && after);
}

Test(kmem_front, a_hold_waits_for_a_cpu_inside_its_front, .init = setup)
{
    test_cpu_index = -1; /* a CPU per thread */
    cr_assert_eq(kmem_cache_init(&wait_cache, &heap, "wait", 64, 0, NULL, NULL), MM_OK);
    atomic_store(&stage, 0);
    atomic_store(&let_go, false);
    test_irq_save_observer = stay_inside;
    pthread_t a, b;
    cr_assert_eq(pthread_create(&a, NULL, alloc_inside, NULL), 0);
    while (atomic_load(&stage) != 1)
        sched_yield();
    test_spin_yield_observer = seen_waiting;
    cr_assert_eq(pthread_create(&b, NULL, hold_fronts, NULL), 0);
    while (atomic_load(&stage) != 2)
        sched_yield();
    atomic_store(&let_go, true);
    atomic_store(&stage, 3);
    void *obj, *ok;
    cr_assert_eq(pthread_join(a, &obj), 0);
    cr_assert_eq(pthread_join(b, &ok), 0);
    test_spin_yield_observer = NULL;
    cr_assert_not_null(obj, "A's allocation finished once let go");
    cr_assert_eq((uintptr_t)ok, 1, "B's hold returned only after A left its front");
    cr_assert_eq(wait_cache.index->holders, 0);
    cr_assert_eq(kmem_cache_free(&wait_cache, obj), MM_OK);
    cr_assert_eq(kmem_cache_destroy(&wait_cache, NULL), MM_OK);
}
#endif
