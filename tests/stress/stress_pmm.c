/*
 * One pmm shared by three allocating threads and a fourth that keeps
 * releasing and re-reserving a range while they allocate from it.
 *
 * Each allocator takes single frames (plain and zeroed) and aligned runs
 * under address limits, writes its id into every word it checks, and frees
 * them again, sometimes piecewise. A per-frame owner table (atomic
 * exchange) proves no frame is ever handed to two holders; the contents
 * check proves nobody else wrote to a frame while it was held; under
 * ThreadSanitizer, two holders of one frame would also be a race report.
 * At the end every count must be exact and pmm_check must pass.
 */
#include <sched.h>
#include <string.h>

#include <hadron/mm/hhdm.h>
#include <hadron/mm/pmm.h>

#include "mm_test.h"
#include "stress.h"

#define SIM (8ull << 20)
#define PG 4096ull
#define HOLE_BASE (5ull << 20)
#define HOLE_LEN (256ull << 10)
#define ALLOCATORS 2
#define HELD_MAX 300

static pmm_t pmm;
static _Atomic unsigned char *owner; /* per frame: 0 free, else holder id */
static long rounds;
static atomic_bool stop_cycler;

typedef struct held {
    mm_paddr_t pa;
    size_t n;
} held_t;

typedef struct worker {
    unsigned char id;
    uint64_t seed;
    long ran, allocs, nomem, cycles, busy;
} worker_t;

static void take(worker_t *w, mm_paddr_t pa, size_t n, bool zeroed)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char prev = atomic_exchange(&owner[pa / PG + i], w->id);
        CHECK(prev == 0, "frame %#llx handed to %u while %u holds it",
              (unsigned long long)(pa + i * PG), w->id, prev);
        uint64_t *p = hhdm_phys_to_virt(pa + i * PG);
        if (zeroed)
            CHECK(p[0] == 0 && p[511] == 0, "zeroed frame %#llx not zero",
                  (unsigned long long)(pa + i * PG));
        p[0] = p[511] = 0x1000 + w->id;
    }
}

static void give(worker_t *w, mm_paddr_t pa, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t *p = hhdm_phys_to_virt(pa + i * PG);
        CHECK(p[0] == 0x1000u + w->id && p[511] == 0x1000u + w->id,
              "frame %#llx written by someone else while held", (unsigned long long)(pa + i * PG));
        CHECK(atomic_exchange(&owner[pa / PG + i], 0) == w->id, "frame %#llx not ours",
              (unsigned long long)(pa + i * PG));
    }
}

static void *allocator(void *arg)
{
    worker_t *w = arg;
    held_t held[HELD_MAX];
    size_t nheld = 0;
    long r;
    for (r = 0; stress_more(r, rounds); r++) {
        uint64_t x = stress_rand(&w->seed);
        if (nheld < HELD_MAX && (x % 3 != 0 || nheld == 0)) {
            mm_paddr_t pa;
            size_t n = 1;
            bool zeroed = false;
            mm_status_t st;
            switch ((x >> 4) % 8) {
            case 0:
                n = 1 + (x >> 8) % 24;
                st = pmm_alloc_contig(&pmm, n, (size_t)1 << ((x >> 16) % 5),
                                      (x >> 20) & 1 ? MM_PADDR_MAX : 6ull << 20, &pa);
                break;
            case 1:
                zeroed = true;
                st = pmm_alloc_zeroed(&pmm, &pa);
                break;
            case 2:
                n = 64 + (x >> 8) % 100; /* the whole-word search */
                st = pmm_alloc_contig(&pmm, n, 1, MM_PADDR_MAX, &pa);
                break;
            default:
                st = pmm_alloc(&pmm, &pa);
                break;
            }
            if (st == MM_OK) {
                take(w, pa, n, zeroed);
                held[nheld++] = (held_t){pa, n};
                w->allocs++;
            } else {
                CHECK(st == MM_ERR_NOMEM, "alloc: %s", mm_status_str(st));
                w->nomem++;
            }
        } else {
            size_t i = (x >> 8) % nheld;
            held_t h = held[i];
            held[i] = held[--nheld];
            if (h.n > 2 && (x & 1)) {
                /* Free the tail first, then the head. */
                size_t cut = 1 + (x >> 12) % (h.n - 1);
                give(w, h.pa + cut * PG, h.n - cut);
                CHECK(pmm_free_contig(&pmm, h.pa + cut * PG, h.n - cut) == MM_OK, "free tail");
                h.n = cut;
            }
            give(w, h.pa, h.n);
            mm_status_t st = h.n == 1 ? pmm_free(&pmm, h.pa) : pmm_free_contig(&pmm, h.pa, h.n);
            CHECK(st == MM_OK, "free: %s", mm_status_str(st));
        }
        CHECK(test_irq_depth() == 0, "interrupts left disabled");
    }
    w->ran = r;
    while (nheld > 0) {
        held_t h = held[--nheld];
        give(w, h.pa, h.n);
        CHECK(pmm_free_contig(&pmm, h.pa, h.n) == MM_OK, "final free");
    }
    return NULL;
}

/* Releases the hole (its frames become allocatable), then takes it back
 * once nobody holds any of them. Also reads stats and checks invariants
 * while the others run. */
static void *cycler(void *arg)
{
    worker_t *w = arg;
    bool released = false;
    while (!atomic_load(&stop_cycler)) {
        mm_status_t st;
        if (!released) {
            st = pmm_release(&pmm, HOLE_BASE, HOLE_LEN);
            CHECK(st == MM_OK, "release: %s", mm_status_str(st));
            released = true;
            w->cycles++;
        } else {
            st = pmm_reserve(&pmm, HOLE_BASE, HOLE_LEN);
            if (st == MM_OK) {
                released = false;
            } else {
                CHECK(st == MM_ERR_STATE, "reserve: %s", mm_status_str(st));
                w->busy++;
            }
        }
        pmm_stats_t s;
        CHECK(pmm_get_stats(&pmm, &s) == MM_OK && s.free_frames <= s.usable_frames, "stats");
        const char *why = NULL;
        CHECK(pmm_check(&pmm, &why) == MM_OK, "pmm_check while running: %s", why);
        sched_yield(); /* leave the lock to the allocators most of the time */
    }
    /* Leave it reserved: the allocators are done. */
    if (released)
        CHECK(pmm_reserve(&pmm, HOLE_BASE, HOLE_LEN) == MM_OK, "final reserve");
    return NULL;
}

static void *dispatch(void *arg)
{
    worker_t *w = arg;
    return w->id == ALLOCATORS + 1 ? cycler(arg) : allocator(arg);
}

typedef struct team {
    worker_t w[ALLOCATORS + 1];
} team_t;

static void *run_allocators(void *arg)
{
    team_t *t = arg;
    stress_run(ALLOCATORS, dispatch, t->w, sizeof t->w[0]);
    atomic_store(&stop_cycler, true);
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = stress_rounds(argc, argv, 20000);
    sim_phys_create(SIM);
    const pmm_region_t map[] = {
        {0, SIM, PMM_REGION_USABLE},
        {HOLE_BASE, HOLE_LEN, PMM_REGION_ACPI_RECLAIMABLE},
    };
    CHECK(pmm_init(&pmm, map, 2, NULL, 0) == MM_OK, "pmm_init");
    pmm_stats_t s0;
    CHECK(pmm_get_stats(&pmm, &s0) == MM_OK, "stats");
    owner = calloc(s0.span_frames, sizeof *owner);
    CHECK(owner != NULL, "calloc");

    team_t t;
    for (int i = 0; i <= ALLOCATORS; i++)
        t.w[i] = (worker_t){.id = (unsigned char)(i + 1), .seed = 0x51ed270b27a3f1c5ull * (i + 7)};
    pthread_t tc, ta;
    CHECK(pthread_create(&tc, NULL, dispatch, &t.w[ALLOCATORS]) == 0, "pthread_create");
    CHECK(pthread_create(&ta, NULL, run_allocators, &t) == 0, "pthread_create");
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);

    pmm_stats_t s1;
    CHECK(pmm_get_stats(&pmm, &s1) == MM_OK, "stats");
    CHECK(s1.free_frames == s0.free_frames && s1.usable_frames == s0.usable_frames &&
              s1.used_frames == 0,
          "after: %llu free of %llu; before: %llu of %llu", (unsigned long long)s1.free_frames,
          (unsigned long long)s1.usable_frames, (unsigned long long)s0.free_frames,
          (unsigned long long)s0.usable_frames);
    for (uint64_t f = 0; f < s0.span_frames; f++)
        CHECK(atomic_load(&owner[f]) == 0, "frame %#llx still owned", (unsigned long long)f);
    const char *why = NULL;
    CHECK(pmm_check(&pmm, &why) == MM_OK, "pmm_check: %s", why);
    CHECK(!mm_spin_is_locked(&pmm.lock), "lock left held");
    long ran = 0, allocs = 0, nomem = 0;
    for (int i = 0; i < ALLOCATORS; i++) {
        ran += t.w[i].ran;
        allocs += t.w[i].allocs;
        nomem += t.w[i].nomem;
    }
    /* About two rounds in three try to allocate; a quarter of all rounds
     * is a floor only an allocator failing most requests would miss. */
    CHECK(allocs > ran / 4, "too few allocations succeeded: %ld in %ld rounds", allocs, ran);
    printf("pmm: %d threads, %ld of %ld rounds%s: %ld allocations, %ld out of memory, %ld "
           "release/reserve cycles (%ld refused while in use): ok\n",
           ALLOCATORS, ran, ALLOCATORS * rounds, stress_cut_note(), allocs, nomem,
           t.w[ALLOCATORS].cycles, t.w[ALLOCATORS].busy);
    free((void *)owner);
    return 0;
}
