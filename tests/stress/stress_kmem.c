/*
 * Object caches shared by three threads: each allocates from two caches
 * (one with a constructor, one without, different sizes and alignments),
 * frees its own objects and the other threads' (through a mailbox), and now
 * and then all of its own, so slabs are created, filled, emptied and given
 * back under contention, with
 * the cache lock dropped around the heap calls, while the heap grows
 * through a callback that itself allocates from a third cache.
 *
 * Every object is stamped with its owner's pattern and checked when freed:
 * an object handed out twice, or written by the allocator while in use,
 * shows up without ThreadSanitizer too. At the end every cache must pass
 * its checker, hold no slab, and destroy; the heap must be one free block
 * per region.
 */
#include <string.h>

#include <hadron/mm/kmem_cache.h>

#include "mm_test.h"
#include "stress.h"

#define THREADS 3
#define LIVE_MAX 256
#define MAILBOX 64
#define GROW_ARENA (64u << 20)

static kheap_t heap;
static _Alignas(4096) uint8_t initial[32 << 10];
static _Alignas(4096) uint8_t grow_arena[GROW_ARENA];
static size_t grow_used; /* only touched inside the callback, one growth at a time */
static kmem_cache_t objs, things, growths;
static atomic_long grow_calls, grow_records;
static long rounds;

typedef struct thing {
    uint64_t constructed;
    uint64_t owner;
    uint8_t bytes[112];
} thing_t;

#define CONSTRUCTED 0x636f6e7374727563ull

static void thing_ctor(void *arg, void *obj)
{
    (void)arg;
    thing_t *t = obj;
    t->constructed = CONSTRUCTED;
    t->owner = 0;
}

static mm_status_t grow(void *ctx, size_t min_bytes, void **base, size_t *size)
{
    (void)ctx;
    atomic_fetch_add(&grow_calls, 1);
    /* Allocating from a cache inside the growth callback: served from a
     * slab with room, or NULL; never a deadlock. */
    void *rec = kmem_cache_alloc(&growths);
    if (rec != NULL) {
        atomic_fetch_add(&grow_records, 1);
        CHECK(kmem_cache_free(&growths, rec) == MM_OK, "free in the growth callback");
    }
    size_t want = min_bytes + 4096;
    if (grow_used + want > GROW_ARENA)
        return MM_ERR_NOMEM;
    *base = grow_arena + grow_used;
    *size = want;
    grow_used += want + 4096; /* not adjacent: separate regions */
    return MM_OK;
}

static _Thread_local char self_tag;

static uintptr_t self(void *ctx)
{
    (void)ctx;
    return (uintptr_t)&self_tag;
}

typedef struct item {
    uint8_t *p;
    bool thing;
    uint8_t pat;
} item_t;

static pthread_mutex_t mbox_lock = PTHREAD_MUTEX_INITIALIZER;
static item_t mbox[MAILBOX];
static int mbox_n;

#define OBJ_SIZE 72u

static void stamp(item_t *it)
{
    if (it->thing) {
        thing_t *t = (thing_t *)it->p;
        CHECK(t->constructed == CONSTRUCTED && t->owner == 0, "thing %p not as constructed",
              (void *)t);
        t->owner = it->pat;
        memset(t->bytes, it->pat, sizeof t->bytes);
    } else {
        memset(it->p, it->pat, OBJ_SIZE);
    }
}

static void release(item_t *it)
{
    if (it->thing) {
        thing_t *t = (thing_t *)it->p;
        CHECK(t->constructed == CONSTRUCTED && t->owner == it->pat, "thing %p changed", (void *)t);
        for (size_t i = 0; i < sizeof t->bytes; i++)
            CHECK(t->bytes[i] == it->pat, "thing %p changed at %zu", (void *)t, i);
        t->owner = 0; /* back in the constructed state */
        CHECK(kmem_cache_free(&things, t) == MM_OK, "free thing");
    } else {
        for (size_t i = 0; i < OBJ_SIZE; i++)
            CHECK(it->p[i] == it->pat, "object %p changed at %zu", (void *)it->p, i);
        CHECK(kmem_cache_free(&objs, it->p) == MM_OK, "free object");
    }
}

typedef struct worker {
    int id;
    uint64_t seed;
    long ran, allocs, nulls;
} worker_t;

static void *run(void *arg)
{
    worker_t *w = arg;
    item_t live[LIVE_MAX];
    int n = 0;
    long r;
    for (r = 0; stress_more(r, rounds); r++) {
        uint64_t x = stress_rand(&w->seed);
        if (x % 499 == 0) { /* drain: slabs empty and go back while others allocate */
            while (n > 0)
                release(&live[--n]);
            continue;
        }
        if (x % 997 == 1) { /* every thread's front emptied while they run */
            CHECK(kmem_cache_shrink(x & 0x100 ? &things : &objs, NULL) == MM_OK, "shrink");
            continue;
        }
        if (n < LIVE_MAX && (n == 0 || x % 100 < 52)) {
            item_t it = {.thing = (x >> 8) & 1, .pat = (uint8_t)(w->id * 37 + r)};
            it.p = kmem_cache_alloc(it.thing ? &things : &objs);
            w->allocs++;
            if (it.p == NULL) {
                w->nulls++;
                continue;
            }
            stamp(&it);
            live[n++] = it;
        } else if (x % 100 < 80) {
            int i = (int)((x >> 16) % (uint64_t)n);
            item_t it = live[i];
            live[i] = live[--n];
            /* Half go to another thread to free. */
            pthread_mutex_lock(&mbox_lock);
            bool posted = (x >> 24) & 1 && mbox_n < MAILBOX;
            if (posted)
                mbox[mbox_n++] = it;
            pthread_mutex_unlock(&mbox_lock);
            if (!posted)
                release(&it);
        } else {
            pthread_mutex_lock(&mbox_lock);
            bool got = mbox_n > 0;
            item_t it = got ? mbox[--mbox_n] : (item_t){0};
            pthread_mutex_unlock(&mbox_lock);
            if (got)
                release(&it);
        }
    }
    w->ran = r;
    while (n > 0)
        release(&live[--n]);
    return NULL;
}

static void cache_done(kmem_cache_t *c)
{
    mm_report_t rep;
    mm_status_t st = kmem_cache_check(c, &rep);
    CHECK(st == MM_OK, "%s: kmem_cache_check: %s: %s", kmem_cache_name(c), mm_status_str(st),
          rep.message);
    kmem_cache_stats_t s;
    CHECK(kmem_cache_get_stats(c, &s) == MM_OK, "stats");
    CHECK(s.live == 0 && s.allocs == s.frees && s.live + s.front_objects + s.free_slots ==
                                                    s.slabs * s.objects_per_slab,
          "%s: %zu live, %zu held by fronts, %zu free in %zu slabs", kmem_cache_name(c), s.live,
          s.front_objects, s.free_slots, s.slabs);
    /* What the threads' fronts hold goes back, and with it every slab. */
    CHECK(kmem_cache_shrink(c, NULL) == MM_OK, "shrink");
    CHECK(kmem_cache_get_stats(c, &s) == MM_OK, "stats");
    CHECK(s.slabs == 0 && s.front_objects == 0, "%s: %zu slabs left", kmem_cache_name(c),
          s.slabs);
    CHECK(!mm_spin_is_locked(&c->index->lock), "lock left held");
    CHECK(kmem_cache_destroy(c, NULL) == MM_OK, "destroy");
}

int main(int argc, char **argv)
{
    rounds = stress_rounds(argc, argv, 30000);
    CHECK(kheap_init(&heap, initial, sizeof initial) == MM_OK, "kheap_init");
    CHECK(kheap_set_grow(&heap, grow, self, NULL) == MM_OK, "kheap_set_grow");
    CHECK(kmem_cache_init(&objs, &heap, "objs", OBJ_SIZE, 8, NULL, NULL) == MM_OK, "objs");
    CHECK(kmem_cache_init(&things, &heap, "things", sizeof(thing_t), 64, thing_ctor, NULL) ==
              MM_OK,
          "things");
    CHECK(kmem_cache_init(&growths, &heap, "growths", 40, 0, NULL, NULL) == MM_OK, "growths");
    void *anchor = kmem_cache_alloc(&growths); /* its slab has room for the callback */
    CHECK(anchor != NULL, "anchor");

    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++)
        w[i] = (worker_t){.id = i + 1, .seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 5)};
    stress_run(THREADS, run, w, sizeof w[0]);
    while (mbox_n > 0)
        release(&mbox[--mbox_n]);

    CHECK(kmem_cache_free(&growths, anchor) == MM_OK, "anchor");
    kmem_cache_stats_t gs;
    CHECK(kmem_cache_get_stats(&things, &gs) == MM_OK, "stats");
    long slabs_made = (long)gs.slabs_created;
    cache_done(&objs);
    cache_done(&things);
    cache_done(&growths);
    mm_report_t rep;
    CHECK(kheap_check(&heap, &rep) == MM_OK, "kheap_check: %s", rep.message);
    kheap_stats_t s;
    CHECK(kheap_get_stats(&heap, &s) == MM_OK, "heap stats");
    CHECK(s.free_blocks == s.regions, "after freeing everything: %zu free blocks in %zu regions",
          s.free_blocks, s.regions);
    long ran = 0, allocs = 0, nulls = 0;
    for (int i = 0; i < THREADS; i++) {
        ran += w[i].ran;
        allocs += w[i].allocs;
        nulls += w[i].nulls;
    }
    printf("kmem: %d threads, %ld of %ld rounds%s: %ld allocations (%ld failed), %ld thing slabs "
           "made, %ld growths (%ld recorded from the callback), %zu regions: ok\n",
           THREADS, ran, THREADS * rounds, stress_cut_note(), allocs, nulls, slabs_made,
           atomic_load(&grow_calls), atomic_load(&grow_records), s.regions);
    return 0;
}
