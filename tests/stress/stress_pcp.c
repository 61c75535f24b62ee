/*
 * The PMM's per-CPU frame caches with one thread per CPU: 2, then 4
 * threads, each its own "CPU" (the host hook numbers threads), on a memory
 * small enough that the caches are drained when it runs short.
 *
 * Every thread allocates single frames (through its cache) and small
 * contiguous runs (through the lock), frees its own frames and, through a
 * mailbox, frames another thread allocated, so a cache fills with frames
 * that came from elsewhere. Each thread count runs twice: at low pressure,
 * where now and then a thread frees again a frame it has just freed (it
 * sits in the thread's own cache, and with memory plentiful nothing drains
 * it, so nobody else can have it: the second free must be refused as a
 * double free), then with more frames wanted than memory holds, so
 * allocations keep draining every cache.
 * A per-frame owner table (atomic exchange) proves no frame is ever handed
 * out twice; the contents check proves nobody wrote to a held frame. After
 * each phase every count is exact, pmm_check passes (caches included), and
 * pmm_drain empties every cache.
 */
#include <string.h>

#include <hadron/mm/hhdm.h>
#include <hadron/mm/pmm.h>

#include "mm_test.h"
#include "stress.h"

#define SIM (16ull << 20)
#define PG 4096ull
#define MAX_THREADS 4
#define HELD_MAX 2400 /* per thread: 2 x 2400 frames is more than memory */
#define BOX_MAX 64

static pmm_t pmm;
static _Atomic unsigned char *owner; /* per frame: 0 free, else holder id */
static long rounds;

typedef struct held {
    mm_paddr_t pa;
    size_t n;
} held_t;

/* Frames handed from one thread to the next, which frees them. */
typedef struct mailbox {
    pthread_mutex_t lock;
    mm_paddr_t pa[BOX_MAX];
    size_t n;
} mailbox_t;

typedef struct worker {
    unsigned char id;
    int threads;
    size_t held_max;
    bool probe; /* try double frees (low pressure only) */
    uint64_t seed;
    long ran, allocs, contig, nomem, remote_frees, double_frees;
    held_t held[HELD_MAX];
    size_t nheld;
} worker_t;

static mailbox_t box[MAX_THREADS];
static worker_t workers[MAX_THREADS];

static void take(unsigned char id, mm_paddr_t pa, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char prev = atomic_exchange(&owner[pa / PG + i], id);
        CHECK(prev == 0, "frame %#llx handed to %u while %u holds it",
              (unsigned long long)(pa + i * PG), id, prev);
        uint64_t *p = hhdm_phys_to_virt(pa + i * PG);
        p[0] = p[511] = 0x2000 + pa + i * PG;
    }
}

/* The frame leaves its holder (id, or anyone for a mailbox frame). */
static void give(mm_paddr_t pa, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t *p = hhdm_phys_to_virt(pa + i * PG);
        CHECK(p[0] == 0x2000 + pa + i * PG && p[511] == 0x2000 + pa + i * PG,
              "frame %#llx written by someone else while held", (unsigned long long)(pa + i * PG));
        CHECK(atomic_exchange(&owner[pa / PG + i], 0) != 0, "frame %#llx not held",
              (unsigned long long)(pa + i * PG));
    }
}

static void free_piece(worker_t *w, held_t h)
{
    give(h.pa, h.n);
    mm_status_t st = h.n == 1 ? pmm_free(&pmm, h.pa) : pmm_free_contig(&pmm, h.pa, h.n);
    CHECK(st == MM_OK, "free %#llx x%zu: %s", (unsigned long long)h.pa, h.n, mm_status_str(st));
    if (w->probe && h.n == 1 && stress_rand(&w->seed) % 16 == 0) {
        /* In this CPU's cache: only this thread pops from it, and without
         * memory pressure no other CPU drains it. */
        st = pmm_free(&pmm, h.pa);
        CHECK(st == MM_ERR_DOUBLE_FREE, "second free of %#llx: %s", (unsigned long long)h.pa,
              mm_status_str(st));
        w->double_frees++;
    }
}

static void drain_mailbox(worker_t *w, int me)
{
    mm_paddr_t local[BOX_MAX];
    size_t n;
    pthread_mutex_lock(&box[me].lock);
    n = box[me].n;
    memcpy(local, box[me].pa, n * sizeof local[0]);
    box[me].n = 0;
    pthread_mutex_unlock(&box[me].lock);
    for (size_t i = 0; i < n; i++) {
        free_piece(w, (held_t){local[i], 1});
        w->remote_frees++;
    }
}

/* Hands a held single frame to the next thread; false when its box is full. */
static bool post(int to, mm_paddr_t pa)
{
    bool ok = false;
    pthread_mutex_lock(&box[to].lock);
    if (box[to].n < BOX_MAX) {
        box[to].pa[box[to].n++] = pa;
        ok = true;
    }
    pthread_mutex_unlock(&box[to].lock);
    return ok;
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    int me = w->id - 1, next = (me + 1) % w->threads;
    long r;
    for (r = 0; stress_more(r, rounds); r++) {
        uint64_t x = stress_rand(&w->seed);
        if (r % 8 == 0)
            drain_mailbox(w, me);
        if (w->nheld < w->held_max && (x % 8 < 5 || w->nheld == 0)) {
            mm_paddr_t pa;
            size_t n = x % 64 == 0 ? 2 + (x >> 8) % 7 : 1;
            mm_status_t st = n == 1 ? pmm_alloc(&pmm, &pa)
                                    : pmm_alloc_contig(&pmm, n, 1, MM_PADDR_MAX, &pa);
            if (st == MM_ERR_NOMEM) {
                w->nomem++;
                continue;
            }
            CHECK(st == MM_OK, "alloc x%zu: %s", n, mm_status_str(st));
            take(w->id, pa, n);
            w->held[w->nheld++] = (held_t){pa, n};
            w->allocs++;
            w->contig += n > 1;
        } else {
            size_t i = (x >> 16) % w->nheld;
            held_t h = w->held[i];
            w->held[i] = w->held[--w->nheld];
            if (h.n == 1 && (x >> 40) % 3 == 0 && post(next, h.pa))
                continue; /* the next thread frees it */
            free_piece(w, h);
        }
    }
    w->ran = r;
    return NULL;
}

/* After every thread stopped: frees what is left, then the exact checks. */
static void settle(const pmm_stats_t *s0, int threads)
{
    for (int t = 0; t < threads; t++) {
        worker_t *w = &workers[t];
        drain_mailbox(w, t);
        while (w->nheld > 0)
            free_piece(w, w->held[--w->nheld]);
    }
    pmm_stats_t s;
    CHECK(pmm_get_stats(&pmm, &s) == MM_OK, "stats");
    CHECK(s.free_frames == s0->free_frames && s.used_frames == 0 &&
              s.usable_frames == s0->usable_frames,
          "%d threads: %llu free (%llu cached), %llu used; before: %llu free", threads,
          (unsigned long long)s.free_frames, (unsigned long long)s.cached_frames,
          (unsigned long long)s.used_frames, (unsigned long long)s0->free_frames);
    for (uint64_t f = 0; f < s0->span_frames; f++)
        CHECK(atomic_load(&owner[f]) == 0, "frame %#llx still owned", (unsigned long long)f);
    const char *why = NULL;
    CHECK(pmm_check(&pmm, &why) == MM_OK, "pmm_check: %s", why);
    CHECK(pmm_drain(&pmm) == MM_OK, "drain");
    CHECK(pmm_get_stats(&pmm, &s) == MM_OK && s.cached_frames == 0 &&
              s.free_frames == s0->free_frames,
          "drain left %llu cached", (unsigned long long)s.cached_frames);
    CHECK(pmm_check(&pmm, &why) == MM_OK, "pmm_check after drain: %s", why);
    CHECK(!mm_spin_is_locked(&pmm.lock), "lock left held");
    for (unsigned c = 0; c < HADRON_MM_MAX_CPUS; c++)
        CHECK(__atomic_load_n(&pmm.pcp[c].active, __ATOMIC_SEQ_CST) == 0, "cache %u left entered",
              c);
    CHECK(__atomic_load_n(&pmm.pcp_holders, __ATOMIC_SEQ_CST) == 0, "caches left held");
}

int main(int argc, char **argv)
{
    rounds = stress_rounds(argc, argv, 100000);
    sim_phys_create(SIM);
    const pmm_region_t map[] = {{0, SIM, PMM_REGION_USABLE}};
    CHECK(pmm_init(&pmm, map, 1, NULL, 0) == MM_OK, "pmm_init");
    pmm_stats_t s0;
    CHECK(pmm_get_stats(&pmm, &s0) == MM_OK, "stats");
    owner = calloc(s0.span_frames, sizeof *owner);
    CHECK(owner != NULL, "calloc");
    for (int i = 0; i < MAX_THREADS; i++)
        pthread_mutex_init(&box[i].lock, NULL);

    for (int phase = 0; phase < 4; phase++) {
        int threads = phase < 2 ? 2 : 4;
        bool low = phase % 2 == 0;
        for (int i = 0; i < threads; i++) {
            workers[i] = (worker_t){.id = (unsigned char)(i + 1),
                                    .threads = threads,
                                    .held_max = low ? 64 : HELD_MAX,
                                    .probe = low,
                                    .seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 3 + phase)};
        }
        stress_run(threads, worker, workers, sizeof workers[0]);
        settle(&s0, threads);
        long ran = 0, allocs = 0, contig = 0, nomem = 0, remote = 0, dbl = 0;
        for (int i = 0; i < threads; i++) {
            ran += workers[i].ran;
            allocs += workers[i].allocs;
            contig += workers[i].contig;
            nomem += workers[i].nomem;
            remote += workers[i].remote_frees;
            dbl += workers[i].double_frees;
        }
        /* Five rounds in eight try to allocate; at high pressure most of
         * those find memory full until frees make room (three in eight). */
        CHECK(allocs > ran / (low ? 4 : 8), "too few allocations succeeded: %ld in %ld rounds",
              allocs, ran);
        CHECK(remote > 0 && (dbl > 0) == low && (nomem > 0) == !low,
              "low pressure %d: %ld double frees tried, %ld remote frees, %ld out of memory", low,
              dbl, remote, nomem);
        printf("pcp: %d threads, %s pressure, %ld of %ld rounds%s: %ld allocations (%ld "
               "contiguous), %ld out of memory, %ld freed by another thread, %ld double frees "
               "refused: ok\n",
               threads, low ? "low" : "high", ran, threads * rounds, stress_cut_note(), allocs,
               contig, nomem, remote, dbl);
        fflush(stdout);
    }
    free((void *)owner);
    return 0;
}
