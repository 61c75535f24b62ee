/*
 * Test kernel: everything at once (issue 22 item 2), on both
 * architectures. Every CPU runs a fixed number of operations in rounds,
 * chosen by its own fixed-seed PRNG: single and contiguous frames,
 * kmalloc/kfree, kmem_cache objects, guard-page stacks, MMIO mappings (a
 * device register, smp_mix_mmio_phys: the LAPIC's version, the PL011's
 * identification) and user address spaces (create, map, switch to, write,
 * unmap, switch back, release). About half of what a CPU allocates goes
 * through a shared exchange and is freed by another CPU. Every object
 * carries a tag (its CPU and sequence number) checked when it is freed.
 * After the last round the CPUs stop together, the exchange is drained,
 * and the kernel proves nothing was lost: the PMM's used frames grew by
 * exactly the frames the VMM accounts for (heap and stacks) plus the
 * kernel page tables, stacks and MMIO mappings are back to their counts,
 * and every checker passes. A TAP line per round keeps the x86_64
 * watchdog (10 s without one) from mistaking the run for a hang, and the
 * same lines appear on every run.
 */
#include <hadron/mm/hhdm.h>
#include <hadron/mm/kheap.h>
#include <hadron/mm/kmem_cache.h>
#include <hadron/mm/spinlock.h>
#include <hadron/mm/vmm.h>

#include "kernel.h"
#include "kmem.h"
#include "smp.h"

#define MIX_ROUNDS 5u
#define MIX_OPS_PER_ROUND 30u
#define XCHG_SLOTS 64u
#define MIX_UVA UINT64_C(0x50000000)

enum { K_FRAME, K_CONTIG, K_KMALLOC, K_CACHE, K_STACK, K_MMIO, K_SPACE, K_KINDS };
static const char *const kind_name[K_KINDS] = {"frame", "contig", "kmalloc", "cache",
                                               "stack", "mmio", "space"};

typedef struct item {
    unsigned kind;
    unsigned owner;
    uint64_t tag;
    union {
        mm_paddr_t frame;
        struct {
            mm_paddr_t base;
            size_t count;
        } contig;
        void *ptr;
        vmm_stack_t stack;
        vmm_mmio_t mmio;
        vmm_as_t space;
    } u;
} item_t;

static mm_spinlock_t xchg_lock = MM_SPINLOCK_INIT;
static item_t xchg[XCHG_SLOTS];
static bool xchg_used[XCHG_SLOTS];
static kmem_cache_t *mix_cache;

typedef struct mix_cpu {
    unsigned cpu;
    uint64_t seed, seq;
    unsigned long allocs[K_KINDS], frees[K_KINDS], remote_frees, nomem;
    unsigned long bad; /* a tag that did not survive, or a failed call */
    uint64_t first_bad;
} mix_cpu_t;

static mix_cpu_t mix[SMP_MAX_CPUS];

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static void fail(mix_cpu_t *m, uint64_t what)
{
    if (m->bad++ == 0)
        m->first_bad = what;
}

static volatile uint64_t *tag_word(const item_t *it)
{
    switch (it->kind) {
    case K_FRAME:
        return hhdm_phys_to_virt(it->u.frame);
    case K_CONTIG:
        return (volatile uint64_t *)hhdm_phys_to_virt(it->u.contig.base +
                                                      (it->u.contig.count - 1) * 4096);
    case K_KMALLOC:
    case K_CACHE:
        return it->u.ptr;
    case K_STACK:
        return (volatile uint64_t *)(uintptr_t)it->u.stack.bottom;
    default:
        return NULL;
    }
}

/* Allocates one object of `kind`, tagged; false when memory ran out. */
static bool make(mix_cpu_t *m, unsigned kind, item_t *it)
{
    uint64_t r = rnd(&m->seed);
    it->kind = kind;
    it->owner = m->cpu;
    it->tag = (uint64_t)m->cpu << 56 | ++m->seq;
    mm_status_t st = MM_OK;
    switch (kind) {
    case K_FRAME:
        st = pmm_alloc(&kernel_pmm, &it->u.frame);
        break;
    case K_CONTIG:
        it->u.contig.count = 1 + (size_t)(r % 8);
        st = pmm_alloc_contig(&kernel_pmm, it->u.contig.count, 1, MM_PADDR_MAX,
                              &it->u.contig.base);
        break;
    case K_KMALLOC:
        it->u.ptr = kmalloc(8 + (size_t)(r % 3000));
        st = it->u.ptr ? MM_OK : MM_ERR_NOMEM;
        break;
    case K_CACHE:
        it->u.ptr = kmem_cache_alloc(mix_cache);
        st = it->u.ptr ? MM_OK : MM_ERR_NOMEM;
        break;
    case K_STACK:
        st = vmm_stack_create(&kernel_vmm, &it->u.stack);
        if (st == MM_OK) /* the top page too: the whole stack is there */
            *(volatile uint64_t *)(uintptr_t)(it->u.stack.top - 8) = it->tag;
        break;
    case K_MMIO:
        st = vmm_mmio_map(&kernel_vmm, smp_mix_mmio_phys(), 4, VMM_MMIO_DEVICE, &it->u.mmio);
        if (st == MM_OK && !smp_mix_mmio_plausible(*(volatile uint32_t *)it->u.mmio.ptr))
            fail(m, 0xa91c);
        break;
    case K_SPACE: {
        vmm_as_t *as = &it->u.space;
        st = vmm_as_create(&kernel_vmm, vmm_as_leaf_free_frames, &kernel_vmm, as);
        if (st != MM_OK)
            break;
        st = vmm_as_map_anon(as, MIX_UVA, 2, MM_MAP_WRITE);
        if (st == MM_OK) {
            vmm_as_switch(as);
            *(volatile uint64_t *)(uintptr_t)MIX_UVA = it->tag;
            *(volatile uint64_t *)(uintptr_t)(MIX_UVA + 4096) = ~it->tag;
            if (*(volatile uint64_t *)(uintptr_t)MIX_UVA != it->tag)
                fail(m, 0x5bace);
            vmm_switch_to_kernel(&kernel_vmm);
            mm_paddr_t pa;
            if (vmm_as_unmap(as, MIX_UVA + 4096, MM_PAGE_4K, &pa) == MM_OK) {
                if (*(volatile uint64_t *)hhdm_phys_to_virt(pa) != ~it->tag)
                    fail(m, 0x5bacf);
                pmm_free(&kernel_pmm, pa);
            } else {
                fail(m, 0x5bad0);
            }
        } else {
            vmm_as_release(as);
        }
        break;
    }
    }
    if (st != MM_OK) {
        m->nomem++;
        return false;
    }
    volatile uint64_t *w = tag_word(it);
    if (w != NULL)
        *w = it->tag;
    m->allocs[kind]++;
    return true;
}

/* Frees `it` (on whichever CPU runs this), its tag checked first. */
static void destroy(mix_cpu_t *m, item_t *it)
{
    volatile uint64_t *w = tag_word(it);
    if (w != NULL && *w != it->tag)
        fail(m, it->tag);
    mm_status_t st = MM_OK;
    switch (it->kind) {
    case K_FRAME:
        st = pmm_free(&kernel_pmm, it->u.frame);
        break;
    case K_CONTIG:
        st = pmm_free_contig(&kernel_pmm, it->u.contig.base, it->u.contig.count);
        break;
    case K_KMALLOC:
        kfree(it->u.ptr);
        break;
    case K_CACHE:
        st = kmem_cache_free(mix_cache, it->u.ptr);
        break;
    case K_STACK:
        if (*(volatile uint64_t *)(uintptr_t)(it->u.stack.top - 8) != it->tag)
            fail(m, it->tag);
        st = vmm_stack_release(&it->u.stack);
        break;
    case K_MMIO:
        st = vmm_mmio_release(&it->u.mmio);
        break;
    case K_SPACE: {
        mm_translation_t t;
        st = vmm_as_translate(&it->u.space, MIX_UVA, &t);
        if (st == MM_OK && *(volatile uint64_t *)hhdm_phys_to_virt(t.pa) != it->tag)
            fail(m, it->tag);
        if (st == MM_OK)
            st = vmm_as_release(&it->u.space);
        break;
    }
    }
    if (st != MM_OK)
        fail(m, 0xf7ee0000u | it->kind);
    m->frees[it->kind]++;
    if (it->owner != m->cpu)
        m->remote_frees++;
}

static bool xchg_put(const item_t *it)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&xchg_lock);
    for (unsigned i = 0; i < XCHG_SLOTS; i++)
        if (!xchg_used[i]) {
            xchg[i] = *it;
            xchg_used[i] = true;
            mm_spin_unlock_irqrestore(&xchg_lock, f);
            return true;
        }
    mm_spin_unlock_irqrestore(&xchg_lock, f);
    return false;
}

/* Takes an item another CPU allocated (any item when `any`), from slot
 * `start` on. */
static bool xchg_take(unsigned cpu, unsigned start, bool any, item_t *out)
{
    mm_irqflags_t f = mm_spin_lock_irqsave(&xchg_lock);
    for (unsigned k = 0; k < XCHG_SLOTS; k++) {
        unsigned i = (start + k) % XCHG_SLOTS;
        if (xchg_used[i] && (any || xchg[i].owner != cpu)) {
            *out = xchg[i];
            xchg_used[i] = false;
            mm_spin_unlock_irqrestore(&xchg_lock, f);
            return true;
        }
    }
    mm_spin_unlock_irqrestore(&xchg_lock, f);
    return false;
}

static void mix_round(void *arg)
{
    mix_cpu_t *m = arg;
    for (unsigned op = 0; op < MIX_OPS_PER_ROUND; op++) {
        uint64_t r = rnd(&m->seed);
        unsigned choice = (unsigned)(r % 10);
        if (choice >= K_KINDS) { /* free something another CPU made */
            item_t it;
            if (xchg_take(m->cpu, (unsigned)(r >> 8) % XCHG_SLOTS, false, &it))
                destroy(m, &it);
            continue;
        }
        item_t it;
        if (!make(m, choice, &it))
            continue;
        /* Half of it to another CPU; the rest freed here, now. */
        if (!((r >> 16) & 1) || !xchg_put(&it))
            destroy(m, &it);
    }
}

static uint64_t used_frames(void)
{
    pmm_stats_t s;
    pmm_get_stats(&kernel_pmm, &s);
    return s.used_frames;
}

static size_t kernel_tables(void)
{
    size_t tables = 0;
    (void)smp_kernel_tables_check(&tables); /* the verdict is checked at the end */
    return tables;
}

void checks_mix(void)
{
    unsigned n = smp_online;
    if (n < 2) {
        tap_skip("one CPU", "mix: every CPU at once");
        return;
    }
    if (!tap_check(kmem_cache_create(kheap_default(), "mix", 96, 16, NULL, NULL, &mix_cache) ==
                       MM_OK,
                   "mix: object cache created"))
        return;
    vmm_stats_t v0, v1;
    vmm_stats(&kernel_vmm, &v0);
#if HADRON_MM_ASYMMETRIC_BARRIER
    unsigned long barriers0 = __atomic_load_n(&smp_barriers, __ATOMIC_RELAXED);
#endif
    uint64_t used0 = used_frames();
    size_t tables0 = kernel_tables();

    for (unsigned c = 0; c < n; c++)
        mix[c] = (mix_cpu_t){.cpu = c, .seed = UINT64_C(0x9e3779b97f4a7c15) * (c + 1)};
    for (unsigned round = 0; round < MIX_ROUNDS; round++) {
        for (unsigned c = 1; c < n; c++)
            smp_run_on(c, mix_round, &mix[c]);
        mix_round(&mix[0]);
        for (unsigned c = 1; c < n; c++)
            smp_wait_idle(c);
        tap_check(true, "mix: round %u: %u CPUs ran %u operations each and stopped together",
                  round + 1, n, MIX_OPS_PER_ROUND);
    }
    /* Stopped: what the exchange still holds is freed here. */
    item_t it;
    unsigned long drained = 0;
    while (xchg_take(0, 0, true, &it)) {
        destroy(&mix[0], &it);
        drained++;
    }
    size_t live = 0;
    mm_report_t rep = {0};
    mm_status_t cache_check = kmem_cache_check(mix_cache, &rep);
    mm_status_t cache_destroy = kmem_cache_destroy(mix_cache, &live);

    unsigned long bad = 0, allocs = 0, frees = 0, remote = 0;
    for (unsigned c = 0; c < n; c++) {
        mix_cpu_t *m = &mix[c];
        unsigned long a = 0, f = 0;
        for (unsigned k = 0; k < K_KINDS; k++) {
            a += m->allocs[k];
            f += m->frees[k];
        }
        allocs += a;
        frees += f;
        remote += m->remote_frees;
        bad += m->bad;
        tap_diag("mix: CPU %u: %lu allocations (frame %lu, contig %lu, kmalloc %lu, cache %lu, "
                 "stack %lu, mmio %lu, space %lu), %lu frees, %lu of them of another CPU's "
                 "objects, %lu out of memory",
                 c, a, m->allocs[K_FRAME], m->allocs[K_CONTIG], m->allocs[K_KMALLOC],
                 m->allocs[K_CACHE], m->allocs[K_STACK], m->allocs[K_MMIO], m->allocs[K_SPACE],
                 f, m->remote_frees, m->nomem);
    }
    (void)kind_name;
    tap_check(bad == 0, "mix: every object's tag intact when freed and every call succeeded "
              "(%lu bad; first %#lx)", bad, (unsigned long)(bad ? mix[0].first_bad : 0));
    tap_check(allocs == frees && remote > 0,
              "mix: %lu objects allocated, %lu freed, %lu by another CPU than the allocating one "
              "(%lu drained after the stop)", allocs, frees, remote, drained);
    tap_check(cache_check == MM_OK && cache_destroy == MM_OK && live == 0,
              "mix: the object cache checked (%s) and destroyed with no live object",
              mm_status_str(cache_check));
#if HADRON_MM_ASYMMETRIC_BARRIER
    /* The fronts are entered without a locked instruction; the destroy's
     * drain and every table retirement made the other CPUs fence. */
    unsigned long barriers = __atomic_load_n(&smp_barriers, __ATOMIC_RELAXED) - barriers0;
    tap_check(barriers > 0, "mix: every CPU's front reached through %lu cross-CPU barriers",
              barriers);
#endif

    vmm_stats(&kernel_vmm, &v1);
    uint64_t used1 = used_frames();
    size_t tables1 = kernel_tables();
    int64_t accounted = (int64_t)(v1.data_frames - v0.data_frames) + (int64_t)tables1 -
                        (int64_t)tables0;
    tap_check((int64_t)(used1 - used0) == accounted,
              "mix: every frame accounted for: used frames %ld = heap and stack frames %ld + "
              "kernel page tables %ld (changes during the run)",
              (long)(used1 - used0), (long)(v1.data_frames - v0.data_frames),
              (long)tables1 - (long)tables0);
    tap_check(v1.stacks == v0.stacks && v1.mmio_mappings == v0.mmio_mappings &&
                  v1.stranded_bytes == v0.stranded_bytes,
              "mix: stacks %lu, MMIO mappings %lu, stranded bytes %lu: as before",
              (unsigned long)v1.stacks, (unsigned long)v1.mmio_mappings,
              (unsigned long)v1.stranded_bytes);
    const char *why = NULL;
    mm_status_t pc = pmm_check(&kernel_pmm, &why);
    mm_status_t vc = vmm_check(&kernel_vmm);
    mm_report_t hr = {0};
    mm_status_t hc = kheap_check(kheap_default(), &hr);
    size_t tables;
    mm_status_t xc = smp_kernel_tables_check(&tables);
    if (pc != MM_OK)
        tap_diag("mix: pmm_check: %s", why != NULL ? why : "");
    if (hc != MM_OK)
        tap_diag("mix: kheap_check: %s at %s:%d, address %#lx, offset %lu, found %#lx, "
                 "expected %#lx", hr.message != NULL ? hr.message : "", hr.file != NULL ? hr.file : "",
                 hr.line, (unsigned long)hr.address, (unsigned long)hr.offset,
                 (unsigned long)hr.found, (unsigned long)hr.expected);
    tap_check(pc == MM_OK && vc == MM_OK && hc == MM_OK && xc == MM_OK,
              "mix: pmm_check %s, vmm_check %s, kheap_check %s, " SMP_PT_CHECK_NAME " %s",
              mm_status_str(pc), mm_status_str(vc), mm_status_str(hc), mm_status_str(xc));
}
