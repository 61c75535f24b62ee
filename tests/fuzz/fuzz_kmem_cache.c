/*
 * libFuzzer harness: kmem_cache against a reference model.
 *
 * The model is what the contract promises, written plainly: per cache the
 * set of live objects (each filled with its own pattern), the counters, and
 * the statuses every bad call must get. After each operation the cache's
 * statistics, its checker and (now and then) its walker must agree with the
 * model, every live object must still hold its pattern, and no two live
 * objects of any cache may overlap.
 *
 * Input: one byte of heap set-up (bit 0: a heap barely big enough for a
 * few slabs, to reach the out-of-memory paths; bit 1: per-CPU fronts on),
 * then operations, each an opcode byte and its arguments (fuzz_common.h:
 * reads past the end are 0), with fronts on preceded by a byte naming the
 * CPU (of three) that runs it. Without fronts every call takes the locked
 * path (a CPU index without per-CPU state).
 */
#include <string.h>

#include <hadron/mm/kmem_cache.h>

#include "fuzz_common.h"
#include "mm_test.h"

#define MAX_OPS 2048u
#define CACHES 4u
/* Capacities of the model: above what MAX_OPS operations can reach (one
 * object per operation). */
#define MAX_LIVE (MAX_OPS + 8u)
#define ARENA_BYTES ((size_t)8 << 20)

typedef struct obj {
    uint8_t *p;
    uint8_t pat;
} obj_t;

typedef struct mcache {
    kmem_cache_t st;  /* static descriptor (dyn == NULL) */
    kmem_cache_t *c;  /* the cache in use, NULL when none */
    bool dyn;         /* from kmem_cache_create */
    size_t size, align;
    bool ctor;
    obj_t live[MAX_LIVE];
    size_t nlive;
    uint8_t *freed[64]; /* pointers freed earlier (stale) */
    size_t nfreed;
    uint64_t allocs, frees, rejected, failures, ctor_calls;
} mcache_t;

static struct {
    kheap_t heap;
    mcache_t m[CACHES];
    uint8_t next_pat;
    int warnings; /* mm_hook_warn calls the contract promises */
    bool fronts;  /* operations run on simulated CPUs with fronts */
} F;

/* Static, so at a fixed address (run_fuzz.py runs without ASLR). */
static _Alignas(4096) uint8_t arena[ARENA_BYTES];

static void ctor(void *arg, void *obj)
{
    mcache_t *m = arg;
    m->ctor_calls++;
    memset(obj, 0xc7, m->size);
}

static void expect(mm_status_t got, mm_status_t want, const char *what)
{
    FZ_CHECK(got == want, "%s: %s, model %s", what, mm_status_str(got), mm_status_str(want));
}

static void check_cache(mcache_t *m, bool walk);

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

static void op_create(fz_in_t *in, mcache_t *m)
{
    uint8_t how = fz_u8(in);
    uint16_t sz = fz_u16(in);
    size_t size = how & 0x80 ? (size_t)sz : (size_t)(sz % 600);
    if ((how & 0x60) == 0x60)
        size = KMEM_OBJECT_MAX + (sz & 1);
    size_t align = (how & 7) == 0 ? 0 : (size_t)1 << ((how & 7) + 2); /* 8 ... 512 */
    if ((how & 0x18) == 0x18)
        align = 24;
    bool dyn = how & 0x10, with_ctor = how & 0x20;
    mm_status_t want = MM_OK;
    if (size == 0 || size > KMEM_OBJECT_MAX || (align & (align - 1)) != 0)
        want = MM_ERR_INVALID;
    if (m->c != NULL && (dyn || m->c != &m->st))
        return; /* one cache per model slot */
    if (m->c != NULL && want == MM_OK)
        want = MM_ERR_STATE; /* the static descriptor is live */
    mm_status_t st;
    kmem_cache_t *c = NULL;
    if (dyn)
        st = kmem_cache_create(&F.heap, "fz", size, align, with_ctor ? ctor : NULL, m, &c);
    else
        st = kmem_cache_init(&m->st, &F.heap, "fz", size, align, with_ctor ? ctor : NULL, m);
    FZ_TRACE("  create %s size %zu align %zu ctor %d -> %s\n", dyn ? "dyn" : "static", size,
             align, with_ctor, mm_status_str(st));
    if (dyn && st == MM_ERR_NOMEM && want == MM_OK)
        return; /* a heap with no room for the descriptor */
    expect(st, want, "create");
    if (st != MM_OK)
        return;
    mcache_t fresh = {0};
    fresh.st = m->st;
    *m = fresh;
    m->c = dyn ? c : &m->st;
    m->dyn = dyn;
    m->size = size;
    m->align = align ? align : KMEM_ALIGN_DEFAULT;
    m->ctor = with_ctor;
    check_cache(m, true);
}

static void take(mcache_t *m, uint8_t *p)
{
    FZ_CHECK((uintptr_t)p % m->align == 0, "object %p not aligned to %zu", (void *)p, m->align);
    FZ_CHECK(p >= arena && p + m->size <= arena + ARENA_BYTES, "object outside the heap");
    for (unsigned k = 0; k < CACHES; k++) {
        const mcache_t *o = &F.m[k];
        for (size_t i = 0; i < o->nlive; i++)
            FZ_CHECK(p + m->size <= o->live[i].p || o->live[i].p + o->size <= p,
                     "object %p overlaps a live one", (void *)p);
    }
    if (m->ctor)
        for (size_t i = 0; i < m->size; i++)
            FZ_CHECK(p[i] == 0xc7, "object %p not in its constructed state", (void *)p);
    FZ_CHECK(m->nlive < MAX_LIVE, "model full");
    uint8_t pat = ++F.next_pat;
    if (!m->ctor)
        memset(p, pat, m->size);
    m->live[m->nlive++] = (obj_t){p, pat};
}

static void op_alloc(mcache_t *m)
{
    uint8_t *p = kmem_cache_alloc(m->c);
    FZ_TRACE("  alloc -> %p\n", (void *)p);
    if (p == NULL) {
        m->failures++;
        return; /* the small heap runs out; the checks below see nothing changed */
    }
    m->allocs++;
    take(m, p);
}

static void op_free(fz_in_t *in, mcache_t *m)
{
    uint16_t i = fz_u16(in);
    if (m->nlive == 0)
        return;
    obj_t o = m->live[i % m->nlive];
    if (!m->ctor)
        for (size_t j = 0; j < m->size; j++)
            FZ_CHECK(o.p[j] == o.pat, "object %p changed at +%zu", (void *)o.p, j);
    mm_status_t st = kmem_cache_free(m->c, o.p);
    FZ_TRACE("  free %p -> %s\n", (void *)o.p, mm_status_str(st));
    expect(st, MM_OK, "free");
    if (m->ctor)
        memset(o.p, 0xc7, m->size); /* back in the constructed state */
    m->live[i % m->nlive] = m->live[--m->nlive];
    m->freed[m->nfreed++ % 64] = o.p;
    m->frees++;
}

/* A pointer that is not a live object of m, and the status its free gets. */
static void op_bad_free(fz_in_t *in, mcache_t *m)
{
    uint8_t how = fz_u8(in);
    uint16_t n = fz_u16(in);
    uint8_t *p = NULL;
    switch (how % 5) {
    case 0: /* an earlier object of m, unless it is live again */
        if (m->nfreed == 0)
            return;
        p = m->freed[n % (m->nfreed < 64 ? m->nfreed : 64)];
        break;
    case 1: { /* a live object of another cache */
        mcache_t *o = &F.m[(n >> 8) % CACHES];
        if (o == m || o->nlive == 0)
            return;
        p = o->live[n % o->nlive].p;
        break;
    }
    case 2: /* inside a live object of m */
        if (m->nlive == 0)
            return;
        p = m->live[n % m->nlive].p + 1 + (how >> 3) % (m->size > 1 ? m->size - 1 : 1);
        break;
    case 3: /* anywhere in the arena */
        p = arena + (size_t)n * 64 + (how >> 4);
        break;
    default: /* the stack */
        p = (uint8_t *)&how;
        break;
    }
    for (size_t i = 0; i < m->nlive; i++)
        if (m->live[i].p == p)
            return;
    mm_status_t st = kmem_cache_free(m->c, p);
    FZ_TRACE("  bad free %p -> %s\n", (void *)p, mm_status_str(st));
    FZ_CHECK(st == MM_ERR_BAD_POINTER || st == MM_ERR_DOUBLE_FREE, "bad free %p: %s", (void *)p,
             mm_status_str(st));
    /* A double free only for a slot start of a slab the cache still has:
     * the walker-free check below would see any slot it lost. */
    m->rejected++;
    F.warnings++;
    FZ_CHECK(test_warnings.count == F.warnings && test_warnings.last.address == (uintptr_t)p,
             "bad free %p: %d warnings, model %d", (void *)p, test_warnings.count, F.warnings);
}

static void op_destroy(mcache_t *m)
{
    size_t live = 12345;
    mm_status_t st = kmem_cache_destroy(m->c, &live);
    FZ_TRACE("  destroy (%zu live) -> %s\n", m->nlive, mm_status_str(st));
    FZ_CHECK(live == m->nlive, "destroy: %zu live, model %zu", live, m->nlive);
    expect(st, m->nlive == 0 ? MM_OK : MM_ERR_STATE, "destroy");
    if (st == MM_OK) {
        if (!m->dyn) { /* a freed descriptor is not to be touched again */
            FZ_CHECK(kmem_cache_alloc(m->c) == NULL, "a destroyed cache allocated");
            expect(kmem_cache_free(m->c, NULL), MM_ERR_STATE, "free on a destroyed cache");
        }
        m->c = NULL;
    }
}

static void op_shrink(mcache_t *m)
{
    kmem_cache_stats_t a, b;
    expect(kmem_cache_get_stats(m->c, &a), MM_OK, "stats");
    size_t released = 999;
    mm_status_t st = kmem_cache_shrink(m->c, &released);
    FZ_TRACE("  shrink -> %s, %zu bytes\n", mm_status_str(st), released);
    FZ_CHECK(st == MM_OK || st == MM_ERR_NOMEM, "shrink: %s", mm_status_str(st));
    expect(kmem_cache_get_stats(m->c, &b), MM_OK, "stats");
    FZ_CHECK(b.table_bytes <= a.table_bytes && b.slabs <= a.slabs && b.front_objects == 0 &&
                 released == a.table_bytes - b.table_bytes + (a.slabs - b.slabs) * a.slab_bytes,
             "shrink: table %zu -> %zu, slabs %zu -> %zu, released %zu", a.table_bytes,
             b.table_bytes, a.slabs, b.slabs, released);
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

typedef struct walk_sum {
    const mcache_t *m;
    size_t n;
} walk_sum_t;

static bool walk_cb(void *arg, const kmem_object_info_t *info)
{
    walk_sum_t *w = arg;
    bool known = false;
    for (size_t i = 0; i < w->m->nlive && !known; i++)
        known = w->m->live[i].p == info->obj;
    FZ_CHECK(known, "walker reported %p, not live in the model", info->obj);
    w->n++;
    return true;
}

static void check_cache(mcache_t *m, bool walk)
{
    if (m->c == NULL)
        return;
    mm_report_t r = {0};
    mm_status_t st = kmem_cache_check(m->c, &r);
    FZ_CHECK(st == MM_OK, "check: %s: %s at %#llx", mm_status_str(st), r.message ? r.message : "-",
             (unsigned long long)r.address);
    kmem_cache_stats_t s;
    expect(kmem_cache_get_stats(m->c, &s), MM_OK, "stats");
    FZ_CHECK(s.live == m->nlive && s.allocs == m->allocs && s.frees == m->frees &&
                 s.rejected_frees == m->rejected && s.failures == m->failures,
             "stats: live %zu allocs %llu frees %llu rejected %llu failures %llu; model %zu %llu "
             "%llu %llu %llu",
             s.live, (unsigned long long)s.allocs, (unsigned long long)s.frees,
             (unsigned long long)s.rejected_frees, (unsigned long long)s.failures, m->nlive,
             (unsigned long long)m->allocs, (unsigned long long)m->frees,
             (unsigned long long)m->rejected, (unsigned long long)m->failures);
    FZ_CHECK(s.slabs * s.objects_per_slab == s.live + s.front_objects + s.free_slots,
             "slot counts");
    FZ_CHECK(F.fronts || s.front_objects == 0, "a front without per-CPU state");
    if (m->ctor)
        FZ_CHECK(m->ctor_calls == s.slabs_created * s.objects_per_slab,
                 "constructor ran %llu times for %llu slabs", (unsigned long long)m->ctor_calls,
                 (unsigned long long)s.slabs_created);
    if (walk) {
        walk_sum_t w = {m, 0};
        expect(kmem_cache_walk(m->c, walk_cb, &w), MM_OK, "walk");
        FZ_CHECK(w.n == m->nlive, "walker: %zu objects, model %zu", w.n, m->nlive);
    }
}

static void run_op(fz_in_t *in)
{
    if (F.fronts)
        test_cpu_index = fz_u8(in) % 3;
    uint8_t op = fz_u8(in);
    mcache_t *m = &F.m[(op >> 4) % CACHES];
    if ((op & 15) != 0 && m->c == NULL) {
        op_create(in, m);
        return;
    }
    switch (op & 15) {
    case 0: op_create(in, m); break;
    case 1: case 2: case 3: case 4: op_alloc(m); break;
    case 5: case 6: case 7: op_free(in, m); break;
    case 8: case 9: op_bad_free(in, m); break;
    case 10: op_destroy(m); break;
    case 11: op_shrink(m); break;
    default: check_cache(m, true); return;
    }
    check_cache(m, (op & 0x0f) == 12);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    memset(&F, 0, sizeof F);
    test_warnings.count = 0;
    uint8_t setup = fz_u8(&in);
    size_t heap_bytes = setup & 1 ? 96 * 1024 : ARENA_BYTES;
    F.fronts = (setup & 2) != 0;
    test_cpu_index = F.fronts ? 0 : 1 << 20;
    FZ_CHECK(kheap_init(&F.heap, arena, heap_bytes) == MM_OK, "kheap_init");
    for (unsigned k = 0; k < MAX_OPS && fz_more(&in); k++)
        run_op(&in);
    /* Everything back: every cache empties and is destroyed, and the heap
     * is one free block again. */
    for (unsigned k = 0; k < CACHES; k++) {
        mcache_t *m = &F.m[k];
        if (m->c == NULL)
            continue;
        while (m->nlive != 0) {
            FZ_CHECK(kmem_cache_free(m->c, m->live[m->nlive - 1].p) == MM_OK, "final free");
            m->nlive--;
            m->frees++;
        }
        check_cache(m, true);
        expect(kmem_cache_destroy(m->c, NULL), MM_OK, "final destroy");
    }
    kheap_stats_t hs;
    FZ_CHECK(kheap_get_stats(&F.heap, &hs) == MM_OK && hs.free_blocks == 1 &&
                 hs.free_bytes + KHEAP_REGION_OVERHEAD == hs.total_bytes,
             "the heap is not one free block again: %zu free blocks", hs.free_blocks);
    FZ_CHECK(test_warnings.count == F.warnings, "%d warnings, model %d", test_warnings.count,
             F.warnings);
    return 0;
}
