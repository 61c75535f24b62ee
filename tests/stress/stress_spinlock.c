/*
 * The core ticket spinlock under contention: four threads update plain
 * (non-atomic) data inside the lock through every entry point (lock,
 * trylock, the IRQ-saving forms). Mutual exclusion is checked directly (an
 * occupancy counter) and, under ThreadSanitizer, by the absence of a race
 * report on the plain data: the lock's acquire/release must order it. At
 * the end every increment must be there and the lock free.
 *
 * In lock_order builds a fifth thread plays a watchdog meanwhile: it reads
 * every CPU's lock snapshot and the lock's holder without any lock, as an
 * NMI would. What it sees must be sane (only this lock, only the workers'
 * CPUs), and under ThreadSanitizer those racy reads must not be reported:
 * the records are atomics.
 */
#include <sched.h>

#include <hadron/mm/spinlock.h>

#include "mm_test.h"
#include "stress.h"

#define THREADS 2

static mm_spinlock_t lock = MM_SPINLOCK_INIT;
static uint64_t counter;      /* plain: protected by `lock` */
static uint64_t history[64];  /* plain: last writers, protected too */
static atomic_int inside;
static long rounds;

typedef struct worker {
    int id;
    uint64_t seed;
    long ran, done, trylock_ok;
} worker_t;

static void critical(worker_t *w)
{
    CHECK(atomic_fetch_add_explicit(&inside, 1, memory_order_relaxed) == 0,
          "two threads inside the lock");
    CHECK(mm_spin_is_locked(&lock), "lock not held inside");
    uint64_t c = counter;
    history[c % 64] = (uint64_t)w->id << 32 | (c & 0xffffffffu);
    counter = c + 1;
    atomic_fetch_sub_explicit(&inside, 1, memory_order_relaxed);
    w->done++;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    long i;
    for (i = 0; stress_more(i, rounds); i++) {
        switch (stress_rand(&w->seed) % 3) {
        case 0:
            mm_spin_lock(&lock);
            critical(w);
            mm_spin_unlock(&lock);
            break;
        case 1:
            if (mm_spin_trylock(&lock)) {
                w->trylock_ok++;
                critical(w);
                mm_spin_unlock(&lock);
            } else {
                i--; /* retry: every round must count once */
                mm_cpu_relax();
            }
            break;
        default: {
            mm_irqflags_t f = mm_spin_lock_irqsave(&lock);
            CHECK(test_irq_depth() == 1, "interrupts not disabled inside");
            critical(w);
            mm_spin_unlock_irqrestore(&lock, f);
            break;
        }
        }
        CHECK(test_irq_depth() == 0, "interrupt state not restored");
    }
    w->ran = i;
    return NULL;
}

#if HADRON_MM_LOCK_ORDER
static atomic_bool workers_done;
static atomic_uint worker_cpu_limit; /* CPU indices the workers may have */

static void *watch(void *arg)
{
    long *looks = arg;
    while (!atomic_load(&workers_done)) {
        unsigned limit = atomic_load(&worker_cpu_limit);
        unsigned holder = mm_spin_holder(&lock);
        CHECK(holder == MM_LOCK_NO_CPU || holder < limit, "holder CPU %u", holder);
        for (unsigned cpu = 0; cpu < limit && cpu < HADRON_MM_MAX_CPUS; cpu++) {
            mm_lock_cpu_snapshot_t s;
            CHECK(mm_lock_debug_snapshot(cpu, &s), "no record of CPU %u", cpu);
            CHECK(s.waiting.lock == NULL || s.waiting.lock == &lock, "CPU %u waits for %p", cpu,
                  (const void *)s.waiting.lock);
            CHECK(s.held_count <= 1, "CPU %u holds %u locks", cpu, s.held_count);
            CHECK(s.held_count == 0 || s.held[0].lock == &lock, "CPU %u holds %p", cpu,
                  (const void *)s.held[0].lock);
        }
        (*looks)++;
        sched_yield(); /* a watchdog looks now and then, not in a loop */
    }
    return NULL;
}
#endif

int main(int argc, char **argv)
{
    rounds = stress_rounds(argc, argv, 200000);
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++)
        w[i] = (worker_t){.id = i + 1, .seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)};
#if HADRON_MM_LOCK_ORDER
    /* Threads take CPU indices in order of their first hook call: this
     * one, then at most the workers. */
    atomic_store(&worker_cpu_limit, mm_hook_cpu_index() + THREADS + 1);
    long looks = 0;
    pthread_t watcher;
    CHECK(pthread_create(&watcher, NULL, watch, &looks) == 0, "watcher thread");
#endif
    stress_run(THREADS, run, w, sizeof w[0]);
#if HADRON_MM_LOCK_ORDER
    atomic_store(&workers_done, true);
    pthread_join(watcher, NULL);
    printf("spinlock: the watcher looked at every CPU's locks %ld times\n", looks);
#endif

    long total = 0, tried = 0;
    for (int i = 0; i < THREADS; i++) {
        CHECK(w[i].done == w[i].ran, "thread %d: %ld rounds, %ld in the lock", i, w[i].ran,
              w[i].done);
        total += w[i].ran;
        tried += w[i].trylock_ok;
    }
    CHECK(counter == (uint64_t)total, "counter %llu, expected %ld", (unsigned long long)counter,
          total);
    CHECK(!mm_spin_is_locked(&lock), "lock left held");
    CHECK(mm_spin_trylock(&lock), "free lock refused trylock");
    mm_spin_unlock(&lock);
    printf("spinlock: %d threads, %ld of %ld rounds%s, %ld by trylock: ok\n", THREADS, total,
           THREADS * rounds, stress_cut_note(), tried);
    return 0;
}
