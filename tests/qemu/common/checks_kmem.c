/*
 * Test kernel checks: object caches of kernel objects over the default heap
 * (kmem_cache.h). A "task" cache (constructed, cache-line aligned) grows the
 * heap through the VMM, and the heap's growth callback records every growth
 * in an object of a second cache: a cache used from the heap's own growth
 * path. Then bad frees, shrinking, destroy refused while objects live, and
 * everything given back.
 */
#include <hadron/mm/kmem_cache.h>

#include "kernel.h"
#include "kmem.h"

#if KTEST_HAVE_KHEAP

typedef struct task {
    uint64_t magic;
    struct task *self;
    uint64_t regs[24];
} task_t;

typedef struct growth_record {
    size_t min_bytes;
    void *base;
    size_t size;
    mm_status_t status;
} growth_record_t;

#define TASK_MAGIC 0x7461736b6b736174ull

static kmem_cache_t growth_records;
static growth_record_t *records[64];
static unsigned nrecords, records_missed, task_ctor_calls;

static void task_ctor(void *arg, void *obj)
{
    (void)arg;
    task_t *t = obj;
    t->magic = TASK_MAGIC;
    t->self = t;
    task_ctor_calls++;
}

#if KTEST_HAVE_VMM
/* The kernel heap's growth callback, with every growth recorded in an object
 * of a cache: runs without the heap's lock, so the cache may take a slot
 * (its slab already exists, so no heap memory is needed). */
static mm_status_t recording_grow(void *ctx, size_t min_bytes, void **base, size_t *size)
{
    mm_status_t st = vmm_heap_grow_callback(ctx, min_bytes, base, size);
    growth_record_t *r = kmem_cache_alloc(&growth_records);
    if (r == NULL || nrecords == sizeof records / sizeof records[0]) {
        records_missed++;
        if (r != NULL)
            kmem_cache_free(&growth_records, r);
        return st;
    }
    *r = (growth_record_t){min_bytes, st == MM_OK ? *base : NULL, st == MM_OK ? *size : 0, st};
    records[nrecords++] = r;
    return st;
}
#endif

/* Bytes of the heap in used blocks (callers' and slabs): all but free
 * memory and region overhead. */
static size_t heap_in_use(const kheap_stats_t *s)
{
    return s->total_bytes - s->free_bytes - s->regions * KHEAP_REGION_OVERHEAD;
}

static bool task_intact(const task_t *t)
{
    return t->magic == TASK_MAGIC && t->self == t;
}

void checks_kmem(void)
{
    kheap_t *h = kheap_default();
    kheap_stats_t h0, h1, h2;
    kheap_get_stats(h, &h0);

    kmem_cache_t *tasks = NULL;
    mm_status_t st = kmem_cache_create(h, "task", sizeof(task_t), 64, task_ctor, NULL, &tasks);
    mm_status_t st2 = kmem_cache_init(&growth_records, h, "growth", sizeof(growth_record_t), 0,
                                      NULL, NULL);
    if (!tap_check(st == MM_OK && st2 == MM_OK, "kmem: caches \"task\" and \"growth\" (%s, %s)",
                   mm_status_str(st), mm_status_str(st2)))
        return;
    /* One record taken now, so the growth path finds a slab with room. */
    growth_record_t *anchor = kmem_cache_alloc(&growth_records);
#if KTEST_HAVE_VMM
    if (kernel_vmm_ready_for_heap())
        kheap_set_grow(h, recording_grow, NULL, &kernel_vmm);
#endif

    /* 4000 tasks of 256 bytes: 1 MiB, four times the initial heap. */
    static task_t *t[4000];
    bool ok = anchor != NULL, aligned = true, constructed = true;
    for (unsigned i = 0; i < 4000; i++) {
        t[i] = kmem_cache_alloc(tasks);
        ok = ok && t[i] != NULL;
        if (t[i] != NULL) {
            aligned = aligned && ((uintptr_t)t[i] & 63) == 0;
            constructed = constructed && task_intact(t[i]);
            t[i]->regs[0] = i;
        }
    }
    kmem_cache_stats_t ts;
    kmem_cache_get_stats(tasks, &ts);
    kheap_get_stats(h, &h1);
    tap_check(ok && aligned && constructed && ts.live == 4000 &&
                  task_ctor_calls == ts.slabs_created * ts.objects_per_slab,
              "kmem: 4000 tasks, 64-byte aligned, constructed once each (%u constructor calls, "
              "%zu slabs of %zu KiB, %zu per slab)",
              task_ctor_calls, ts.slabs, ts.slab_bytes / 1024, ts.objects_per_slab);
    if (kernel_vmm_ready_for_heap()) {
        bool recorded = nrecords == h1.grow_calls - h0.grow_calls && nrecords > 0 &&
                        records_missed == 0;
        for (unsigned i = 0; i < nrecords && recorded; i++)
            recorded = records[i]->status == MM_OK && kheap_contains(h, records[i]->base) &&
                       records[i]->size >= records[i]->min_bytes;
        tap_check(recorded, "kmem: the heap grew %lu times, each growth recorded in a \"growth\" "
                            "object allocated inside the growth callback (%u recorded, %u missed)",
                  (unsigned long)(h1.grow_calls - h0.grow_calls), nrecords, records_missed);
    } else {
        tap_skip("no VMM to grow through", "kmem: cache used from the heap's growth path");
    }

    /* Bad frees: warned about, nothing changed. */
    unsigned warns = hook_warn_count;
    task_t *gone = t[3999];
    mm_status_t a = kmem_cache_free(tasks, gone);
    mm_status_t b = kmem_cache_free(tasks, gone);
    mm_status_t c = kmem_cache_free(tasks, (uint8_t *)t[0] + 8);
    mm_status_t d = kmem_cache_free(tasks, anchor);
    mm_status_t e = kmem_cache_free(&growth_records, t[1]);
    kmem_cache_stats_t ts2;
    kmem_cache_get_stats(tasks, &ts2);
    tap_check(a == MM_OK && b == MM_ERR_DOUBLE_FREE && c == MM_ERR_BAD_POINTER &&
                  d == MM_ERR_BAD_POINTER && e == MM_ERR_BAD_POINTER &&
                  hook_warn_count == warns + 4 && ts2.live == 3999 && ts2.rejected_frees == 3,
              "kmem: double free (%s), mid-object (%s), another cache's object both ways (%s, %s) "
              "refused and warned",
              mm_status_str(b), mm_status_str(c), mm_status_str(d), mm_status_str(e));

    /* Destroy is refused while tasks live; the objects stay intact. */
    size_t live = 0;
    mm_status_t refused = kmem_cache_destroy(tasks, &live);
    bool intact = true;
    for (unsigned i = 0; i < 3999; i++)
        intact = intact && task_intact(t[i]) && t[i]->regs[0] == i;
    mm_report_t rep = {0};
    mm_status_t chk = kmem_cache_check(tasks, &rep);
    tap_check(refused == MM_ERR_STATE && live == 3999 && intact && chk == MM_OK,
              "kmem: destroy refused with %zu tasks live, every task intact, check %s%s%s", live,
              mm_status_str(chk), chk == MM_OK ? "" : ": ", chk == MM_OK ? "" : rep.message);

    /* Everything back: the slabs as they empty, the tables by shrinking. */
    for (unsigned i = 0; i < 3999; i++)
        kmem_cache_free(tasks, t[i]);
    /* Shrinking drains this CPU's front, whose objects keep slabs. */
    size_t released = 0;
    mm_status_t sh = kmem_cache_shrink(tasks, &released);
    kmem_cache_get_stats(tasks, &ts2);
#if KTEST_HAVE_VMM
    if (kernel_vmm_ready_for_heap())
        kheap_set_grow(h, vmm_heap_grow_callback, NULL, &kernel_vmm);
#endif
    for (unsigned i = 0; i < nrecords; i++)
        kmem_cache_free(&growth_records, records[i]);
    kmem_cache_free(&growth_records, anchor);
    mm_status_t d1 = kmem_cache_destroy(tasks, NULL);
    mm_status_t d2 = kmem_cache_destroy(&growth_records, NULL);
    kheap_get_stats(h, &h2);
    mm_status_t hc = kheap_check(h, &rep);
    tap_check(ts2.slabs == 0 && ts2.slabs_released == ts2.slabs_created && sh == MM_OK &&
                  d1 == MM_OK && d2 == MM_OK && hc == MM_OK && heap_in_use(&h2) == heap_in_use(&h0),
              "kmem: after freeing every object and destroying both caches, the heap holds what "
              "it held before (%zu KiB in %zu regions, %zu free blocks); check %s",
              h2.total_bytes / 1024, h2.regions, h2.free_blocks, mm_status_str(hc));
}

#else
void checks_kmem(void)
{
}
#endif
