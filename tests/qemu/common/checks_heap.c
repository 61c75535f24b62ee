/*
 * Test kernel checks: the kernel heap (kmalloc family) growing through the
 * VMM, and the debug build's red zones and free-fill poisoning.
 */
#include "kernel.h"
#include "kmem.h"

#if KTEST_HAVE_KHEAP

#if KTEST_HAVE_PAGING
#endif

/* Frees the heap must refuse, warn about and otherwise ignore. */
static bool refused(kheap_t *h, void *p, mm_status_t want, mm_report_kind_t kind)
{
    kheap_stats_t a, b;
    unsigned warns = hook_warn_count;
    kheap_get_stats(h, &a);
    mm_status_t st = kheap_free(h, p);
    kheap_get_stats(h, &b);
    return st == want && hook_warn_count == warns + 1 && hook_last_warn.kind == kind &&
           hook_last_warn.address == (uint64_t)(uintptr_t)p && a.free_bytes == b.free_bytes &&
           a.free_blocks == b.free_blocks;
}

static void check_bad_frees(kheap_t *h)
{
    static uint64_t not_heap;
    /* A small block in a run that stays alive (its neighbour is live). */
    void *s1 = kmalloc(48), *s2 = kmalloc(48);
    kfree(s1);
    bool small = refused(h, s1, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
    kfree(s2);
    /* A large block, merged with its free neighbours by the first free. */
    void *big = kmalloc(5000);
    kfree(big);
    bool large = refused(h, big, MM_ERR_DOUBLE_FREE, MM_REPORT_DOUBLE_FREE);
    bool foreign = refused(h, &not_heap, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    void *m = kmalloc(256);
    bool middle = refused(h, (uint8_t *)m + 32, MM_ERR_BAD_POINTER, MM_REPORT_BAD_POINTER);
    kfree(m);
    mm_report_t rep;
    mm_status_t st = kheap_check(h, &rep);
    tap_check(small && large && foreign && middle && st == MM_OK,
              "heap: double frees (small block %s, large block %s) and foreign / mid-block "
              "pointers (%s, %s) are warned about and change nothing",
              small ? "ok" : "MISSED", large ? "ok" : "MISSED", foreign ? "ok" : "MISSED",
              middle ? "ok" : "MISSED");
}

/* Blocks of the CPUs' fronts of the size classes: made at a CPU's first
 * class allocation, kept for good. */
static bool count_front(void *arg, const kheap_block_info_t *info)
{
    *(size_t *)arg += info->front;
    return true;
}

static size_t heap_fronts(kheap_t *h)
{
    size_t n = 0;
    kheap_walk(h, count_front, &n);
    return n;
}

/* Frees the 64 blocks of a check in an order that merges on both sides
 * (evens, then odds), empties the fronts so the heap is whole again, and
 * checks it. */
static mm_status_t heap_free_64_check(kheap_t *h, void *const p[64], mm_report_t *rep)
{
    for (unsigned i = 0; i < 64; i += 2)
        kfree(p[i]);
    for (unsigned i = 1; i < 64; i += 2)
        kfree(p[i]);
    kheap_drain(h);
    return kheap_check(h, rep);
}

static void check_basic(void)
{
    kheap_t *h = kheap_default();
    /* This CPU's front exists before the figures are taken, and what
     * fronts hold is back in the slabs whenever they are. */
    kfree(kmalloc(16));
    kheap_drain(h);
    kheap_stats_t s0;
    kheap_get_stats(h, &s0);
    static void *p[64];
    bool ok = true;
    for (unsigned i = 0; i < 64; i++) {
        size_t size = 1u + i * 37u;
        p[i] = kmalloc(size);
        ok = ok && p[i] != NULL && ((uintptr_t)p[i] & (KHEAP_GRANULE - 1)) == 0 &&
             ksize(p[i]) >= size;
        if (p[i] != NULL)
            for (size_t b = 0; b < size; b++)
                ((volatile uint8_t *)p[i])[b] = (uint8_t)(i + b);
    }
    for (unsigned i = 0; i < 64 && ok; i++)
        for (size_t b = 0; b < 1u + i * 37u; b++)
            ok = ok && ((volatile uint8_t *)p[i])[b] == (uint8_t)(i + b);
    mm_report_t rep;
    mm_status_t st = heap_free_64_check(h, p, &rep);
    kheap_stats_t s1;
    kheap_get_stats(h, &s1);
    /* The heap may have grown meanwhile: compare what is in use. */
    tap_check(ok && st == MM_OK &&
                  s1.total_bytes - s1.free_bytes == s0.total_bytes - s0.free_bytes &&
                  s1.free_blocks == s0.free_blocks,
              "heap: 64 kmalloc of 1..2332 bytes, aligned, filled, freed; consistent, %zu bytes "
              "in use as before, free space in %zu block(s) (heap %zu -> %zu KiB)",
              s1.total_bytes - s1.free_bytes, s1.free_blocks, s0.total_bytes / 1024,
              s1.total_bytes / 1024);

    void *a = kmalloc_aligned(8192, 4096);
    void *c = kcalloc(100, 40);
    bool zero = c != NULL;
    for (unsigned i = 0; zero && i < 4000; i++)
        zero = ((uint8_t *)c)[i] == 0;
    void *r = krealloc(c, 10000);
    tap_check(a != NULL && ((uintptr_t)a & 4095) == 0 && zero && r != NULL,
              "heap: kmalloc_aligned(8192, 4096) = %p, kcalloc zeroed, krealloc to 10000", a);
    kfree(a);
    kfree(r);

    check_bad_frees(h);
}

static void check_growth(void)
{
    kheap_t *h = kheap_default();
    kheap_stats_t s0, s1, s2;
    kheap_get_stats(h, &s0);
#if KTEST_HAVE_VMM
    vmm_stats_t v0, v1;
    vmm_stats(&kernel_vmm, &v0);
#endif
    /* 1.5 MiB in 24 KiB pieces: six times the initial 256 KiB. */
    static void *p[64];
    bool ok = true, in_heap = true;
    for (unsigned i = 0; i < 64; i++) {
        p[i] = kmalloc(24 * 1024);
        ok = ok && p[i] != NULL;
        if (p[i] != NULL) {
            ((volatile uint64_t *)p[i])[0] = i;
            ((volatile uint64_t *)p[i])[24 * 1024 / 8 - 1] = i;
            in_heap = in_heap && layout_find(&kernel_layout, (uint64_t)(uintptr_t)p[i]) ==
                                     LAYOUT_HEAP;
        }
    }
    kheap_get_stats(h, &s1);
    mm_report_t rep0;
    mm_status_t st0 = kheap_check(h, &rep0);
#if KTEST_HAVE_VMM
    vmm_stats(&kernel_vmm, &v1);
    bool vmm_grew = v1.heap_bytes > v0.heap_bytes;
#else
    bool vmm_grew = false;
#endif
    if (kernel_vmm_ready_for_heap()) {
        tap_check(ok && in_heap && s1.grow_calls > s0.grow_calls && vmm_grew &&
                      s1.total_bytes > kernel_heap_initial,
                  "heap: grew past its initial %zu KiB to %zu KiB through the VMM (%lu growth "
                  "calls), every block in the heap region",
                  kernel_heap_initial / 1024, s1.total_bytes / 1024,
                  (unsigned long)(s1.grow_calls - s0.grow_calls));
    } else {
        tap_skip("no VMM to grow through", "heap: growth past the initial region");
    }
    tap_check(st0 == MM_OK, "heap: consistent after growing (%s%s%s)", mm_status_str(st0),
              st0 == MM_OK ? "" : ": ", st0 == MM_OK ? "" : rep0.message);
    mm_report_t rep;
    mm_status_t st = heap_free_64_check(h, p, &rep);
    kheap_get_stats(h, &s2);
    size_t fronts = heap_fronts(h);
    tap_check(st == MM_OK && s2.free_blocks <= s2.regions + fronts && s2.regions >= 1 &&
                  s2.class_slabs == 0,
              "heap: after freeing everything and draining the fronts, %zu region(s) of %zu KiB "
              "are %zu free block(s) around %zu front block(s); check %s%s%s",
              s2.regions, s2.total_bytes / 1024, s2.free_blocks, fronts, mm_status_str(st),
              st == MM_OK ? "" : ": ", st == MM_OK ? "" : rep.message);

#if KTEST_HAVE_PAGING
    /* Heap memory is data: writable, never executable. */
    void *x = kmalloc(64);
    mm_translation_t t = {0};
    mm_status_t ts = mm_pm_translate(&kernel_mapper, kernel_root, (uint64_t)(uintptr_t)x, &t);
    ((volatile uint8_t *)x)[0] = 0xc3;
    fault_record_t rec;
    bool nx = arch_nx_enabled();
    bool hit = nx && fault_probe_exec((uint64_t)(uintptr_t)x, &rec);
    tap_check(ts == MM_OK && (t.flags & MM_MAP_WRITE) && (!nx || (hit && arch_fault_is_fetch(&rec))),
              "heap: blocks are writable and no-execute (jumping into one faults)");
    kfree(x);
#endif
#if HADRON_MM_ALLOC_TRACKING
    kheap_stats_t s3;
    kheap_get_stats(h, &s3);
    tap_check(s3.tracking && s3.live_count == s0.live_count && s3.peak_live_bytes >= 64 * 24 * 1024 &&
                  s3.allocs > s0.allocs,
              "heap: tracking: %zu live, peak %zu KiB, %lu allocations, %lu frees",
              s3.live_count, s3.peak_live_bytes / 1024, (unsigned long)s3.allocs,
              (unsigned long)s3.frees);
#endif
}

#if HADRON_MM_HEAP_REDZONES
/* Red zones and free fill on a private heap: after a panic the instance may
 * be left inconsistent, so it must not be the kernel's. */
static kheap_t scratch_heap;
static uint8_t scratch_area[64 * 1024] __attribute__((aligned(16)));

typedef struct rz_case {
    uint8_t *p;
    size_t size;
} rz_case_t;

static void rz_free(void *arg)
{
    rz_case_t *c = arg;
    kheap_free(&scratch_heap, c->p);
}

static void rz_alloc(void *arg)
{
    rz_case_t *c = arg;
    c->p = kheap_alloc(&scratch_heap, c->size, 0);
}

static void check_redzones(void)
{
    mm_report_t rep = {0};
    scratch_heap = (kheap_t){0};
    kheap_init(&scratch_heap, scratch_area, sizeof scratch_area);
    rz_case_t c = {kheap_alloc(&scratch_heap, 24, 0), 24};
    c.p[24 + 3] = 0x41; /* 4 bytes past the end: inside the trailing red zone */
    bool caught = panic_expect(rz_free, &c, &rep);
    tap_check(caught && rep.kind == MM_REPORT_REDZONE && rep.address == (uint64_t)(uintptr_t)c.p &&
                  rep.offset == 27,
              "heap: overflow 3 bytes past a 24-byte block caught on kfree (%s at +%ld: %s)",
              mm_report_kind_str(rep.kind), (long)rep.offset, rep.message);

    scratch_heap = (kheap_t){0};
    kheap_init(&scratch_heap, scratch_area, sizeof scratch_area);
    c = (rz_case_t){kheap_alloc(&scratch_heap, 40, 0), 40};
    c.p[-1] = 0x42; /* underflow */
    rep = (mm_report_t){0};
    caught = panic_expect(rz_free, &c, &rep);
    tap_check(caught && rep.kind == MM_REPORT_REDZONE && (int64_t)rep.offset == -1,
              "heap: underflow 1 byte before a block caught on kfree (%s at %ld)",
              mm_report_kind_str(rep.kind), (long)(int64_t)rep.offset);

    scratch_heap = (kheap_t){0};
    kheap_init(&scratch_heap, scratch_area, sizeof scratch_area);
    uint8_t *q = kheap_alloc(&scratch_heap, 200, 0);
    kheap_free(&scratch_heap, q);
    q[100] = 0x43; /* use after free */
    c = (rz_case_t){NULL, 200};
    rep = (mm_report_t){0};
    caught = panic_expect(rz_alloc, &c, &rep);
    tap_check(caught && rep.kind == MM_REPORT_POISON &&
                  rep.address + rep.offset == (uint64_t)(uintptr_t)(q + 100),
              "heap: a write to freed memory is caught when it is handed out again (%s)",
              mm_report_kind_str(rep.kind));
}
#endif

#if KTEST_HAVE_VMM
/* A large block freed gives its pages back to the VMM: unmapped, frames
 * freed, the heap consistent and smaller; a later allocation grows again. */
static void check_release(void)
{
    kheap_t *h = kheap_default();
    kheap_stats_t s0, s1;
    vmm_stats_t v0, v1;
    pmm_stats_t p0, p1, p2;
    kheap_get_stats(h, &s0);
    vmm_stats(&kernel_vmm, &v0);
    pmm_get_stats(&kernel_pmm, &p0);
    uint8_t *big = kmalloc((size_t)4 << 20);
    if (big != NULL)
        for (size_t i = 0; i < ((size_t)4 << 20); i += 4096)
            big[i] = (uint8_t)i;
    pmm_get_stats(&kernel_pmm, &p1);
    kfree(big);
    kheap_get_stats(h, &s1);
    vmm_stats(&kernel_vmm, &v1);
    pmm_get_stats(&kernel_pmm, &p2);
    uint64_t released = s1.released_bytes - s0.released_bytes;
    mm_report_t rep;
    mm_status_t st = kheap_check(h, &rep);
    /* Frames: what the growth took came back, up to its page tables. */
    bool frames_back = p2.free_frames + 8 >= p0.free_frames && p1.free_frames < p0.free_frames;
    bool gone = released >= ((uint64_t)3 << 20) &&
                v1.heap_released - v0.heap_released == released &&
                v1.heap_bytes + released == v0.heap_bytes + (s1.total_bytes + released -
                                                             s0.total_bytes);
    void *again = kmalloc((size_t)2 << 20);
    kfree(again);
    /* The growth after a release doubled the automatic threshold, so that
     * block stayed; kheap_trim gives it back, leaving the heap as tight as
     * before for the checks that follow (they count growths). */
    size_t trimmed = 0;
    mm_status_t tst = kheap_trim(h, &trimmed);
    tap_check(big != NULL && gone && frames_back && st == MM_OK && again != NULL &&
                  tst == MM_OK && trimmed >= ((size_t)1 << 20),
              "heap: a freed 4 MiB block gave %lu KiB back to the VMM (%lu release calls), "
              "%lu frames back in the PMM (the growth took %lu), heap consistent (%s), later growth "
              "works, kheap_trim gave its %lu KiB back",
              (unsigned long)(released / 1024), (unsigned long)(s1.release_calls - s0.release_calls),
              (unsigned long)(p2.free_frames - p1.free_frames),
              (unsigned long)(p0.free_frames - p1.free_frames), mm_status_str(st),
              (unsigned long)(trimmed / 1024));
}
#endif

void checks_heap(void)
{
    if (!tap_check(kernel_heap_ready, "heap: default heap of %zu KiB%s (%s)",
                   kernel_heap_initial / 1024,
                   kernel_vmm_ready_for_heap() ? " from the VMM, growing through it" : "",
                   mm_status_str(kernel_heap_status)))
        return;
    check_basic();
    check_growth();
#if KTEST_HAVE_VMM
    if (kernel_vmm_ready_for_heap())
        check_release();
#endif
#if HADRON_MM_HEAP_REDZONES
    check_redzones();
#else
    tap_skip("built without heap_redzones", "heap: red-zone overflow detected");
#endif
}

#else
void checks_heap(void)
{
}
#endif
