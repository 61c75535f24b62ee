/*
 * Test kernel: the demo report (command line "demo"). What a kernel
 * developer wants to see at a glance after hadron-mm came up on a machine:
 * the machine, how it booted and its memory map (each kernel's demo_boot.c),
 * where the PMM put its bitmaps and what it manages, what the bootloader's
 * memory gave back, the virtual layout, the kernel's page tables (merged
 * runs, walked by the kernel's mapper) and the heap.
 */
#include <hadron/mm/hhdm.h>

#include "demo.h"
#include "kernel.h"
#include "kmem.h"

void demo_rule(const char *title)
{
    kprintf("\n== %s ", title);
    size_t n = 0;
    while (title[n])
        n++;
    for (size_t i = n + 4; i < 78; i++)
        serial_putc('=');
    serial_putc('\n');
}

void demo_human(char *buf, size_t size, uint64_t bytes)
{
    if (bytes >= MM_GIB && bytes % MM_GIB == 0)
        ksnprintf(buf, size, "%lu GiB", bytes / MM_GIB);
    else if (bytes >= MM_MIB)
        ksnprintf(buf, size, "%lu.%02lu MiB", bytes / MM_MIB, (bytes % MM_MIB) * 100 / MM_MIB);
    else if (bytes >= MM_KIB)
        ksnprintf(buf, size, "%lu KiB", bytes / MM_KIB);
    else
        ksnprintf(buf, size, "%lu B", bytes);
}

static void demo_pmm(void)
{
#if KTEST_HAVE_PMM
    demo_rule("physical memory manager (bitmap)");
    pmm_stats_t s;
    if (pmm_get_stats(&kernel_pmm, &s) != MM_OK) {
        kprintf("  not initialised (%s)\n", mm_status_str(kernel_pmm_status));
        return;
    }
    char a[32], b[32], c[32];
    demo_human(a, sizeof a, s.span_frames * MM_PAGE_SIZE);
    kprintf("  bitmap span  %lu frames (%s): one bit per 4 KiB frame\n", s.span_frames, a);
    demo_human(a, sizeof a, s.meta_frames * MM_PAGE_SIZE);
    kprintf("  metadata     phys %#lx, %lu frames (%s, %lu bytes used)\n", s.meta_base,
            s.meta_frames, a, s.meta_bytes);
    kprintf("               free + usable%s bitmaps, summary trees, per-chunk run bounds\n",
            HADRON_MM_PMM_POISON ? " + poisoned" : "");
    demo_human(a, sizeof a, s.usable_frames * MM_PAGE_SIZE);
    demo_human(b, sizeof b, s.free_frames * MM_PAGE_SIZE);
    demo_human(c, sizeof c, s.used_frames * MM_PAGE_SIZE);
    kprintf("  managed      %8lu frames  %s\n", s.usable_frames, a);
    kprintf("  free         %8lu frames  %s\n", s.free_frames, b);
    kprintf("  in use       %8lu frames  %s   (page tables, heap, ...)\n", s.used_frames, c);
    demo_human(a, sizeof a, s.reserved_frames * MM_PAGE_SIZE);
    kprintf("  reserved     %8lu frames  %s   (holes, firmware, frame 0, kernel, metadata)\n",
            s.reserved_frames, a);
    kprintf("  poisoning    %s\n", HADRON_MM_PMM_POISON ? "on (0xDEADDEAD, verified on reuse)"
                                                         : "off");
#else
    demo_rule("physical memory manager");
    kprintf("  not built into this tree yet: frames come from a bump allocator\n");
#endif
}

static void demo_layout(void)
{
    demo_rule("kernel virtual layout");
    if (!kernel_layout_ready) {
        kprintf("  not computed\n");
        return;
    }
    kprintf("  %-8s %-18s %-18s %10s\n", "region", "start", "end", "size");
    for (unsigned id = 0; id < LAYOUT_REGION_COUNT; id++) {
        const layout_region_t *r = &kernel_layout.regions[id];
        char sz[32];
        demo_human(sz, sizeof sz, r->size);
        kprintf("  %-8s 0x%016lx 0x%016lx %10s\n", layout_region_name(id), r->base,
                r->base + r->size - 1, sz);
    }
    kprintf("  (guard gaps of at least 1 GiB between regions; user half below %#lx)\n",
            kernel_layout.space.user_hi);
}

#if KTEST_HAVE_PAGING
/* The dump, merged further than the mappers' own dumps do: a run is virtually
 * contiguous with equal page size and flags; when its frames are not
 * physically contiguous too (heap and stack pages come one frame at a time)
 * the line says so instead of printing one line per page. */
typedef struct dump_run {
    bool open;
    demo_leaf_t first;
    uint64_t va_end, pa_next, pages;
    bool pa_contig;
    unsigned lines;
} dump_run_t;

static const char *page_str(mm_page_size_t s)
{
    return s == MM_PAGE_1G ? "1G" : s == MM_PAGE_2M ? "2M" : "4K";
}

static void dump_flush(dump_run_t *r)
{
    if (!r->open)
        return;
    mm_map_flags_t f = r->first.flags;
    char sz[32];
    demo_human(sz, sizeof sz, r->va_end - r->first.va);
    const char *cache = arch_demo_mem_type_name(mm_map_mem_type(f));
    kprintf("  0x%016lx-0x%016lx -> 0x%016lx %10s %5lux%s %s %s %s %s %s%s\n", r->first.va,
            r->va_end, r->first.pa, sz, r->pages, page_str(r->first.size),
            (f & MM_MAP_USER) ? "USR" : "   ", (f & MM_MAP_WRITE) ? "RW" : "ro",
            (f & MM_MAP_EXEC) ? "x " : "NX", (f & MM_MAP_GLOBAL) ? "GLB" : "   ", cache,
            r->pa_contig ? "" : "  (frames scattered)");
    r->lines++;
    r->open = false;
}

static bool dump_leaf(void *arg, const demo_leaf_t *leaf)
{
    dump_run_t *r = arg;
    uint64_t bytes = mm_page_bytes(leaf->size);
    if (r->open && leaf->va == r->va_end && leaf->size == r->first.size &&
        leaf->flags == r->first.flags) {
        r->pa_contig = r->pa_contig && leaf->pa == r->pa_next;
        r->va_end += bytes;
        r->pa_next = leaf->pa + bytes;
        r->pages++;
        return true;
    }
    dump_flush(r);
    *r = (dump_run_t){true, *leaf, leaf->va + bytes, leaf->pa + bytes, 1, true, r->lines};
    return true;
}
#endif

static void demo_tables(void)
{
#if KTEST_HAVE_PAGING
    demo_rule("kernel page tables (merged runs)");
    if (!kernel_tables_ready) {
        kprintf("  not built (%s)\n", kernel_tables_error_step);
        return;
    }
    arch_demo_tables_header();
    kprintf("  %-18s %-18s    %-18s %10s %8s\n", "virtual", "end", "physical", "size", "pages");
    dump_run_t run = {0};
    arch_demo_walk(dump_leaf, &run);
    dump_flush(&run);
    arch_demo_tables_audit();
#else
    demo_rule("kernel page tables");
    kprintf("  the mapper is not built into this tree yet: running on the boot tables\n");
#endif
}

static void demo_heap(void)
{
#if KTEST_HAVE_KHEAP
    demo_rule("kernel heap");
    kheap_stats_t s;
    if (kheap_get_stats(kheap_default(), &s) != MM_OK) {
        kprintf("  not initialised\n");
        return;
    }
    char a[32], b[32], c[32];
    demo_human(a, sizeof a, s.total_bytes);
    demo_human(b, sizeof b, s.free_bytes);
    demo_human(c, sizeof c, s.largest_free);
    kprintf("  regions %zu, total %s, free %s in %zu block(s), largest free %s\n", s.regions, a,
            b, s.free_blocks, c);
    kprintf("  grown %lu time(s) through the VMM (%lu failed)\n", (unsigned long)s.grow_calls,
            (unsigned long)s.grow_failures);
    if (s.tracking) {
        demo_human(a, sizeof a, s.peak_live_bytes);
        kprintf("  tracking: %zu live blocks, peak %s, %lu allocations, %lu frees, %lu failures\n",
                s.live_count, a, (unsigned long)s.allocs, (unsigned long)s.frees,
                (unsigned long)s.failures);
        kprintf("  sizes:");
        for (unsigned i = 0; i < KHEAP_SIZE_CLASSES; i++)
            if (s.histogram[i] != 0)
                kprintf(" <=%lu:%lu", (unsigned long)(i == 0 ? 16 : (UINT64_C(1) << (i + 4))),
                        (unsigned long)s.histogram[i]);
        kprintf("\n");
    }
    kprintf("  red zones %s\n", HADRON_MM_HEAP_REDZONES ? "on (16 bytes each side, 0xFD)" : "off");
#endif
}

void demo_print(void)
{
    kprintf("\n#### hadron-mm on an emulated %s machine, after the self-checks above ####\n",
            arch_name());
    demo_machine();
    demo_boot();
    demo_pmm();
    demo_reclaim();
    demo_layout();
    demo_tables();
    demo_heap();
    demo_rule("summary");
}
