/*
 * kmem_cache debug fills (heap_redzones builds): a guard after every
 * object, free objects filled with a pattern that is verified before they
 * are handed out again. Objects of a cache with a constructor are never
 * filled: they must keep their constructed state.
 */
#include "kmem_internal.h"

#if HADRON_MM_HEAP_REDZONES

static bool kh_fills(const kmem_cache_t *c)
{
    return c->ctor == NULL;
}

/* First byte of [p, p + n) that is not `v`, or n. */
static size_t kh_first_not(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return i;
    return n;
}

void kh_debug_slab_init(const kmem_cache_t *c, kh_slab_t *s)
{
    for (size_t i = 0; i < c->objects_per_slab; i++) {
        uint8_t *o = (uint8_t *)kh_slot(c, s, i);
        if (kh_fills(c))
            __builtin_memset(o, KH_FILL_FREE, c->object_size);
        __builtin_memset(o + c->object_size, KH_FILL_GUARD, c->stride - c->object_size);
    }
}

static bool kh_guard_ok(const kmem_cache_t *c, const uint8_t *o, mm_report_t *report)
{
    size_t guard = c->stride - c->object_size;
    size_t g = kh_first_not(o + c->object_size, guard, KH_FILL_GUARD);
    if (g == guard)
        return true;
    *report = (mm_report_t){.kind = MM_REPORT_REDZONE,
                            .message = "kmem_cache: guard after an object overwritten",
                            .file = __FILE__,
                            .line = __LINE__,
                            .address = (uint64_t)(uintptr_t)o,
                            .offset = c->object_size + g,
                            .found = o[c->object_size + g],
                            .expected = KH_FILL_GUARD};
    return false;
}

static bool kh_poison_ok(const kmem_cache_t *c, const uint8_t *o, mm_report_t *report)
{
    size_t b = kh_first_not(o, c->object_size, KH_FILL_FREE);
    if (b == c->object_size)
        return true;
    *report = (mm_report_t){.kind = MM_REPORT_POISON,
                            .message = "kmem_cache: free object written after free",
                            .file = __FILE__,
                            .line = __LINE__,
                            .address = (uint64_t)(uintptr_t)o,
                            .offset = b,
                            .found = o[b],
                            .expected = KH_FILL_FREE};
    return false;
}

bool kh_debug_slot_ok(const kmem_cache_t *c, const kh_slab_t *s, size_t i, mm_report_t *report)
{
    const uint8_t *o = (const uint8_t *)kh_slot(c, s, i);
    return kh_guard_ok(c, o, report) &&
           (kh_slot_live(s, i) || !kh_fills(c) || kh_poison_ok(c, o, report));
}

static _Noreturn void kh_debug_panic(const mm_report_t *r)
{
    mm_panic_report(r->kind, r->message, r->file, r->line, r->address, r->offset, r->found,
                    r->expected);
}

void kh_debug_on_alloc(const kmem_cache_t *c, const kh_slab_t *s, size_t i)
{
    if (!kh_fills(c))
        return;
    uint8_t *o = (uint8_t *)kh_slot(c, s, i);
    mm_report_t r;
    if (!kh_poison_ok(c, o, &r))
        kh_debug_panic(&r);
    __builtin_memset(o, KH_FILL_ALLOC, c->object_size);
}

void kh_debug_on_free(const kmem_cache_t *c, const kh_slab_t *s, size_t i)
{
    mm_report_t r;
    if (!kh_debug_slot_ok(c, s, i, &r))
        kh_debug_panic(&r);
    if (kh_fills(c))
        __builtin_memset((void *)kh_slot(c, s, i), KH_FILL_FREE, c->object_size);
}

#endif
