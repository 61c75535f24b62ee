/*
 * The shootdown bookkeeping (cpuset.h, tlb.h) under concurrency: one thread
 * per simulated CPU. Each CPU keeps a "TLB" (a cached copy per address
 * space of that space's one page-table entry, a generation number). A CPU
 * that switches to a space joins its CPU set (mm_cpuset_add) and then
 * walks, caching the entry. A CPU that changes a space's entry (a new
 * generation) flushes a TLB batch of that space (MM_TLB_BATCH_INIT_SPACE);
 * the flush hook (the observer of tests/support) invalidates its own copy
 * and sends a simulated IPI to every other CPU of the snapshot it got, then
 * waits until each has acknowledged (each CPU services its mailbox between
 * operations and while it waits, as an interrupt would).
 *
 * The check is the one a kernel relies on: once the flush of generation g
 * has returned, no CPU reads an older generation through its TLB. It fails
 * if a CPU that cached the entry was missing from the snapshot (the set's
 * ordering, cpuset.h). Each space runs only on two of the four CPUs, and
 * the program checks that its flushes never named another CPU, so the
 * shootdown is targeted: it prints the invalidations sent against what a
 * broadcast would have sent.
 */
#include <sched.h>

#include <hadron/mm/cpuset.h>
#include <hadron/mm/tlb.h>

#include "mm_test.h"
#include "stress.h"

#define CPUS 4
#define SPACES 8
#define INVALID UINT64_MAX

static mm_cpuset_t space_cpus[SPACES];        /* the sets under test */
static _Atomic uint64_t pte[SPACES];          /* the page table: generation */
static _Atomic uint64_t flushed[SPACES];      /* highest generation whose flush returned */
static _Atomic uint64_t tlb[CPUS][SPACES];    /* each CPU's cached entries; only it fills */
static _Atomic uint64_t ipi_req[CPUS], ipi_ack[CPUS];
static atomic_int finished;
static atomic_long remote_sent, broadcast_would, flushes, reads;
static long rounds;
static _Thread_local int my_cpu = -1;

/* Space s runs on CPUs s % CPUS and (s + 1) % CPUS only. */
static bool allowed(unsigned s, unsigned cpu)
{
    return cpu == s % CPUS || cpu == (s + 1) % CPUS;
}

/* What an IPI handler does: drop every cached entry, acknowledge. */
static void service_mailbox(int cpu)
{
    uint64_t req = atomic_load_explicit(&ipi_req[cpu], memory_order_acquire);
    if (req == atomic_load_explicit(&ipi_ack[cpu], memory_order_relaxed))
        return;
    for (unsigned s = 0; s < SPACES; s++)
        atomic_store_explicit(&tlb[cpu][s], INVALID, memory_order_relaxed);
    atomic_store_explicit(&ipi_ack[cpu], req, memory_order_release);
}

/* The kernel's flush hook, both kinds (a space flush has a set that is
 * never "all" here). */
static void shootdown(mm_asid_t asid, const mm_cpuset_t *cpus)
{
    int me = my_cpu;
    unsigned s = (unsigned)asid - 1;
    CHECK(me >= 0 && s < SPACES, "flush outside a worker");
    CHECK(!mm_cpuset_is_all(cpus), "a space's flush marked all CPUs");
    uint64_t want[CPUS] = {0};
    for (unsigned c = mm_cpuset_next(cpus, 0); c < HADRON_MM_MAX_CPUS;
         c = mm_cpuset_next(cpus, c + 1)) {
        CHECK(c < CPUS && allowed(s, c), "space %u's set names CPU %u, which never ran it", s, c);
        if ((int)c == me) {
            atomic_store_explicit(&tlb[me][s], INVALID, memory_order_relaxed);
            continue;
        }
        want[c] = atomic_fetch_add_explicit(&ipi_req[c], 1, memory_order_acq_rel) + 1;
        atomic_fetch_add_explicit(&remote_sent, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&broadcast_would, CPUS - 1, memory_order_relaxed);
    for (unsigned c = 0; c < CPUS; c++)
        while (want[c] != 0 && atomic_load_explicit(&ipi_ack[c], memory_order_acquire) < want[c]) {
            service_mailbox(me); /* two CPUs may shoot at each other */
            sched_yield();
        }
}

/* A read of space s's page through CPU `me`'s TLB, walking on a miss. */
static uint64_t tlb_read(int me, unsigned s)
{
    uint64_t v = atomic_load_explicit(&tlb[me][s], memory_order_relaxed);
    if (v == INVALID) {
        v = atomic_load_explicit(&pte[s], memory_order_seq_cst); /* the walk */
        atomic_store_explicit(&tlb[me][s], v, memory_order_relaxed);
    }
    return v;
}

typedef struct worker {
    int cpu;
    uint64_t seed;
    long ran;
    unsigned current; /* SPACES: none */
} worker_t;

static void *run(void *arg)
{
    worker_t *w = arg;
    my_cpu = w->cpu;
    long i;
    for (i = 0; stress_more(i, rounds); i++) {
        service_mailbox(w->cpu);
        uint64_t r = stress_rand(&w->seed);
        unsigned s = (unsigned)(r >> 8) % SPACES;
        switch (r % 8) {
        case 0: /* switch to a space this CPU may run */
            if (!allowed(s, (unsigned)w->cpu))
                break;
            mm_cpuset_add(&space_cpus[s], (unsigned)w->cpu);
            w->current = s;
            break;
        case 1: { /* change an entry (any space, from any CPU) and flush */
            mm_tlb_batch_t b = MM_TLB_BATCH_INIT_SPACE((mm_asid_t)(s + 1), &space_cpus[s]);
            uint64_t g = atomic_fetch_add_explicit(&pte[s], 1, memory_order_seq_cst) + 1;
            mm_tlb_batch_add(&b, 0x400000, MM_PAGE_4K, false);
            mm_tlb_batch_flush(&b);
            uint64_t f = atomic_load_explicit(&flushed[s], memory_order_relaxed);
            while (f < g && !atomic_compare_exchange_weak_explicit(
                                &flushed[s], &f, g, memory_order_release, memory_order_relaxed))
                ;
            atomic_fetch_add_explicit(&flushes, 1, memory_order_relaxed);
            break;
        }
        default: { /* read the current space's page */
            if (w->current == SPACES)
                break;
            unsigned c = w->current;
            uint64_t done = atomic_load_explicit(&flushed[c], memory_order_acquire);
            uint64_t v = tlb_read(w->cpu, c);
            CHECK(v >= done, "CPU %d read generation %llu of space %u after the flush of %llu "
                  "returned: a stale TLB entry", w->cpu, (unsigned long long)v, c,
                  (unsigned long long)done);
            atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
            if (v == done)
            break;
        }
        }
    }
    w->ran = i;
    /* Keep answering IPIs until every CPU is done. */
    atomic_fetch_add_explicit(&finished, 1, memory_order_acq_rel);
    while (atomic_load_explicit(&finished, memory_order_acquire) < CPUS) {
        service_mailbox(w->cpu);
        sched_yield();
    }
    service_mailbox(w->cpu);
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = stress_rounds(argc, argv, 100000);
    for (unsigned s = 0; s < SPACES; s++) {
        mm_cpuset_clear(&space_cpus[s]);
        for (unsigned c = 0; c < CPUS; c++)
            atomic_store(&tlb[c][s], INVALID);
    }
    test_tlb_cpus_observer = shootdown;
    worker_t w[CPUS];
    for (int i = 0; i < CPUS; i++)
        w[i] = (worker_t){.cpu = i, .seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1),
                          .current = SPACES};
    stress_run(CPUS, run, w, sizeof w[0]);
    test_tlb_cpus_observer = NULL;

    long total = 0;
    for (int i = 0; i < CPUS; i++)
        total += w[i].ran;
    for (unsigned s = 0; s < SPACES; s++)
        for (unsigned c = 0; c < CPUS; c++)
            CHECK(!mm_cpuset_contains(&space_cpus[s], c) || allowed(s, c),
                  "space %u: CPU %u in its set", s, c);
    long sent = atomic_load(&remote_sent), bcast = atomic_load(&broadcast_would);
    CHECK(atomic_load(&flushes) == 0 || sent < bcast, "no flush was targeted");
    printf("shootdown: %d CPUs, %ld of %ld rounds%s, %ld flushes, %ld remote invalidations "
           "(broadcast: %ld), %ld reads checked: ok\n",
           CPUS, total, CPUS * rounds, stress_cut_note(), atomic_load(&flushes), sent, bcast,
           atomic_load(&reads));
    return 0;
}
