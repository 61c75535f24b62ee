/*
 * The kernel VMM shared by two threads, over the real PMM and the real
 * x86_64 mapper on simulated memory: kernel stacks, MMIO mappings and heap
 * ranges created and released concurrently (all under the VMM lock), and
 * one user address space per thread mapping anonymous memory (its own lock,
 * nesting the VMM lock).
 *
 * Every stack and heap range a thread holds gets its id written into each
 * of its frames (found through the page tables, reached through the HHDM)
 * and checked at release: a frame or a heap range given to two owners, or
 * pages that moved, fail. At the end everything is released; vmm_check and
 * pmm_check must pass, the VMM must count no stack, no MMIO mapping and no
 * heap, nothing stranded, and the frames still out must be page tables.
 */
#include <string.h>

#include <hadron/mm/hhdm.h>
#include <hadron/mm/layout.h>
#include <hadron/mm/pmm.h>
#include <hadron/mm/vmm.h>
#include <hadron/mm/x86pt.h>

#include "mm_test.h"
#include "stress.h"

#define SIM (64ull << 20)
#define THREADS 2
#define HELD 6

static pmm_t pmm;
static x86pt_t x86;
static layout_t layout;
static vmm_t vmm;
static mm_paddr_t kroot;
static long rounds;

typedef struct worker {
    int id;
    uint64_t seed;
    long ran, stacks, mmios, grows, releases, nomem, anon;
} worker_t;

/* Writes (check false) or checks the id in every page of [va, top). */
static void stamp_pages(mm_vaddr_t va, mm_vaddr_t top, int id, bool check)
{
    for (; va < top; va += MM_PAGE_SIZE) {
        mm_translation_t tr;
        mm_status_t st = x86pt_translate(&x86, kroot, va, &tr);
        CHECK(st == MM_OK, "page %#llx not mapped: %s", (unsigned long long)va,
              mm_status_str(st));
        CHECK(tr.flags & MM_MAP_WRITE, "page read-only");
        volatile uint64_t *p = hhdm_phys_to_virt(tr.pa);
        if (check)
            CHECK(*p == (uint64_t)id << 32 || *p == ((uint64_t)id << 32 | 1),
                  "frame %#llx of thread %d holds %#llx", (unsigned long long)tr.pa, id,
                  (unsigned long long)*p);
        else
            *p = (uint64_t)id << 32;
    }
}

static void stamp(const vmm_stack_t *s, int id, bool check)
{
    stamp_pages(s->bottom, s->top, id, check);
}

typedef struct heap_range {
    void *base;
    size_t size; /* 0: none held */
} heap_range_t;

static void heap_release(heap_range_t *h, int id)
{
    mm_vaddr_t va = (mm_vaddr_t)(uintptr_t)h->base;
    stamp_pages(va, va + h->size, id, true);
    mm_status_t st = vmm_heap_release(&vmm, h->base, h->size);
    CHECK(st == MM_OK, "heap release: %s", mm_status_str(st));
    h->size = 0;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    vmm_stack_t stacks[HELD];
    vmm_mmio_t mmios[HELD];
    heap_range_t heap[HELD];
    for (int i = 0; i < HELD; i++) {
        stacks[i] = (vmm_stack_t)VMM_STACK_INIT;
        mmios[i] = (vmm_mmio_t)VMM_MMIO_INIT;
        heap[i] = (heap_range_t){NULL, 0};
    }
    vmm_as_t as = VMM_AS_INIT;
    CHECK(vmm_as_create(&vmm, vmm_as_leaf_free_frames, &vmm, &as) == MM_OK, "vmm_as_create");
    mm_vaddr_t next_anon = 0x400000ull + (uint64_t)w->id * 0x10000000ull;

    long r;
    for (r = 0; stress_more(r, rounds); r++) {
        uint64_t x = stress_rand(&w->seed);
        int i = (int)((x >> 8) % HELD);
        mm_status_t st;
        switch (x % 5) {
        case 0:
        case 1:
            if (stacks[i].vmm != NULL) {
                stamp(&stacks[i], w->id, true);
                CHECK(vmm_stack_release(&stacks[i]) == MM_OK, "stack release");
            } else if ((st = vmm_stack_create(&vmm, &stacks[i])) == MM_OK) {
                stamp(&stacks[i], w->id, false);
                w->stacks++;
            } else {
                CHECK(st == MM_ERR_NOMEM, "stack create: %s", mm_status_str(st));
                w->nomem++;
            }
            break;
        case 2:
            if (mmios[i].vmm != NULL) {
                CHECK(vmm_mmio_release(&mmios[i]) == MM_OK, "mmio release");
            } else {
                mm_paddr_t phys = 0xfe000000ull + ((x >> 16) % 4096) * 0x1000 + (x >> 40) % 64;
                uint64_t size = 1 + (x >> 28) % (5 * MM_PAGE_SIZE);
                st = vmm_mmio_map(&vmm, phys, size, (x >> 50) & 1, &mmios[i]);
                if (st == MM_OK) {
                    mm_translation_t tr;
                    CHECK(x86pt_translate(&x86, kroot, (mm_vaddr_t)(uintptr_t)mmios[i].ptr,
                                          &tr) == MM_OK &&
                              tr.pa == phys,
                          "mmio maps the wrong frame");
                    w->mmios++;
                } else {
                    CHECK(st == MM_ERR_NOMEM, "mmio map: %s", mm_status_str(st));
                    w->nomem++;
                }
            }
            break;
        case 3: {
            heap_range_t *h = &heap[i];
            if (h->size != 0 && (x >> 40) % 2 == 0) {
                heap_release(h, w->id);
                w->releases++;
                break;
            }
            if (h->size != 0) {
                /* A part from the middle first, then the two ends. */
                mm_vaddr_t va = (mm_vaddr_t)(uintptr_t)h->base;
                stamp_pages(va, va + h->size, w->id, true);
                st = vmm_heap_release(&vmm, (void *)(uintptr_t)(va + MM_PAGE_SIZE),
                                      (size_t)MM_PAGE_SIZE);
                CHECK(st == MM_OK, "heap release of a middle page: %s", mm_status_str(st));
                heap_range_t lo = {h->base, (size_t)MM_PAGE_SIZE};
                heap_range_t hi = {(void *)(uintptr_t)(va + 2 * MM_PAGE_SIZE),
                                   h->size - 2 * MM_PAGE_SIZE};
                heap_release(&lo, w->id);
                heap_release(&hi, w->id);
                h->size = 0;
                w->releases += 3;
                break;
            }
            st = vmm_heap_grow(&vmm, (size_t)(1 + (x >> 20) % 4) * VMM_HEAP_MIN_GROWTH, &h->base,
                               &h->size);
            if (st == MM_OK) {
                mm_vaddr_t va = (mm_vaddr_t)(uintptr_t)h->base;
                stamp_pages(va, va + h->size, w->id, false);
                w->grows++;
            } else {
                CHECK(st == MM_ERR_NOMEM || st == MM_ERR_EXHAUSTED, "heap grow: %s",
                      mm_status_str(st));
                h->size = 0;
            }
            break;
        }
        default: { /* user memory in this thread's address space */
            size_t pages = 1 + (x >> 12) % 8;
            if (as.vmm == NULL) {
                st = vmm_as_create(&vmm, vmm_as_leaf_free_frames, &vmm, &as);
                CHECK(st == MM_OK || st == MM_ERR_NOMEM, "vmm_as_create: %s", mm_status_str(st));
            } else if ((x >> 30) & 1) {
                st = vmm_as_map_anon(&as, next_anon, pages,
                                     MM_MAP_USER | MM_MAP_WRITE);
                if (st == MM_OK) {
                    next_anon += (pages + 1) * MM_PAGE_SIZE;
                    w->anon++;
                } else {
                    CHECK(st == MM_ERR_NOMEM, "map_anon: %s", mm_status_str(st));
                }
            } else {
                /* Drop the address space (and every frame in it); the next
                 * round starts a new one. */
                CHECK(vmm_as_release(&as) == MM_OK, "as release");
            }
            break;
        }
        }
        CHECK(test_irq_depth() == 0, "interrupts left disabled");
    }
    w->ran = r;
    for (int i = 0; i < HELD; i++) {
        if (stacks[i].vmm != NULL)
            stamp(&stacks[i], w->id, true);
        CHECK(vmm_stack_release(&stacks[i]) == MM_OK, "final stack release");
        CHECK(vmm_mmio_release(&mmios[i]) == MM_OK, "final mmio release");
        if (heap[i].size != 0)
            heap_release(&heap[i], w->id);
    }
    CHECK(vmm_as_release(&as) == MM_OK, "final as release"); /* a no-op if released */
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = stress_rounds(argc, argv, 20000);
    sim_phys_create(SIM);
    const pmm_region_t map[] = {{0, SIM, PMM_REGION_USABLE}};
    CHECK(pmm_init(&pmm, map, 1, NULL, 0) == MM_OK, "pmm_init");
    mm_frame_allocator_t fa = pmm_frame_allocator(&pmm);
    x86pt_config_t xc = {.levels = 4, .phys_bits = 40, .nx = true, .pages_1g = true, .frames = fa};
    CHECK(x86pt_init(&x86, &xc) == MM_OK, "x86pt_init");
    mm_va_space_t space;
    x86pt_va_space(&x86, &space);
    layout_params_t lp = {.hhdm_base = 0xffff800000000000ull, .phys_top = SIM, .space = &space};
    CHECK(layout_compute(&lp, &layout) == MM_OK, "layout");
    CHECK(x86pt_root_create(&x86, 0, &kroot) == MM_OK, "root");
    vmm_config_t cfg = {
        .layout = &layout, .kernel_root = kroot, .mapper = x86pt_page_mapper(&x86), .frames = fa};
    CHECK(vmm_init(&vmm, &cfg) == MM_OK, "vmm_init");
    pmm_stats_t p0;
    CHECK(pmm_get_stats(&pmm, &p0) == MM_OK, "stats");

    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++)
        w[i] = (worker_t){.id = i + 1, .seed = 0x2545f4914f6cdd1dull * (uint64_t)(i + 5)};
    stress_run(THREADS, run, w, sizeof w[0]);

    CHECK(vmm_check(&vmm) == MM_OK, "vmm_check");
    const char *why = NULL;
    CHECK(pmm_check(&pmm, &why) == MM_OK, "pmm_check: %s", why);
    vmm_stats_t s;
    vmm_stats(&vmm, &s);
    CHECK(s.stacks == 0 && s.mmio_mappings == 0 && s.mmio_pages == 0,
          "%llu stacks and %llu MMIO mappings left", (unsigned long long)s.stacks,
          (unsigned long long)s.mmio_mappings);
    CHECK(s.data_frames == 0 && s.heap_bytes == 0 && s.stranded_bytes == 0,
          "%llu data frames, heap %llu bytes, %llu stranded", (unsigned long long)s.data_frames,
          (unsigned long long)s.heap_bytes, (unsigned long long)s.stranded_bytes);
    CHECK(vmm.heap.watermark == 0 && vmm.heap.count == 0, "heap region not empty");
    x86pt_check_info_t info;
    CHECK(x86pt_check(&x86, kroot, &info) == MM_OK, "x86pt_check: %s", info.problem);
    CHECK(info.user_tables == 0, "user tables in the kernel root");
    pmm_stats_t p1;
    CHECK(pmm_get_stats(&pmm, &p1) == MM_OK, "stats");
    /* What is still out: kernel page tables only. */
    uint64_t out = p0.free_frames - p1.free_frames;
    CHECK(out <= info.kernel_tables, "%llu frames out, %zu kernel tables (leak?)",
          (unsigned long long)out, info.kernel_tables);
    CHECK(!mm_spin_is_locked(&vmm.lock) && !mm_spin_is_locked(&pmm.lock), "lock left held");
    long ran = 0, st = 0, mm = 0, gr = 0, rl = 0, an = 0, nm = 0;
    for (int i = 0; i < THREADS; i++) {
        ran += w[i].ran;
        st += w[i].stacks;
        mm += w[i].mmios;
        gr += w[i].grows;
        rl += w[i].releases;
        an += w[i].anon;
        nm += w[i].nomem;
    }
    printf("vmm: %d threads, %ld of %ld rounds%s: %ld stacks, %ld MMIO mappings, %ld heap "
           "growths, %ld heap releases, %ld anonymous mappings, %ld out of memory: ok\n",
           THREADS, ran, THREADS * rounds, stress_cut_note(), st, mm, gr, rl, an, nm);
    return 0;
}
