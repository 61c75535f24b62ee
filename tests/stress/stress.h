/*
 * Shared by the concurrency stress programs: plain programs (no Criterion,
 * which cannot run under ThreadSanitizer: Criterion issue #274) that exit 0
 * when every check held. They run in the normal host builds and, under
 * ThreadSanitizer, in the tsan build, where a data race fails the run
 * (TSAN_OPTIONS=halt_on_error=1, set by tests/stress/meson.build).
 *
 * The iteration count scales with the first argument (a percentage: the
 * uninstrumented builds pass a larger one than the sanitizer builds). The
 * second argument is a wall-clock budget in seconds (0 or absent: none):
 * once it has run out, workers start no more rounds, and every check then
 * holds for the rounds that did run, which each program prints. Without it a
 * shared or oversubscribed machine turns a stress run into a timeout: TSan
 * is 5-15 times slower, and a ticket lock convoys when threads outnumber
 * cores (each waiter must be scheduled in ticket order).
 */
#ifndef STRESS_H
#define STRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A failed check: report and exit non-zero (from any thread). */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* xorshift64*: each thread has its own state. */
static inline uint64_t stress_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static struct timespec stress_deadline; /* tv_sec 0: no budget */
static atomic_bool stress_out_of_time;

/* Iterations scaled by argv[1] (percent, default 100); starts the budget
 * of argv[2] seconds. */
static inline long stress_rounds(int argc, char **argv, long base)
{
    long pct = argc > 1 ? atol(argv[1]) : 100;
    if (pct <= 0)
        pct = 100;
    long seconds = argc > 2 ? atol(argv[2]) : 0;
    if (seconds > 0) {
        clock_gettime(CLOCK_MONOTONIC, &stress_deadline);
        stress_deadline.tv_sec += seconds;
    }
    long n = base * pct / 100;
    return n > 0 ? n : 1;
}

/* Whether a worker that has run `done` of `rounds` rounds starts another:
 * not once the budget is spent (looked at every 64 rounds). */
static inline bool stress_more(long done, long rounds)
{
    if (done >= rounds)
        return false;
    if (stress_deadline.tv_sec == 0 || done % 64 != 0)
        return true;
    if (atomic_load_explicit(&stress_out_of_time, memory_order_relaxed))
        return false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > stress_deadline.tv_sec ||
        (now.tv_sec == stress_deadline.tv_sec && now.tv_nsec >= stress_deadline.tv_nsec)) {
        atomic_store_explicit(&stress_out_of_time, true, memory_order_relaxed);
        return false;
    }
    return true;
}

/* For the summary line: "" or a note that the budget cut the run short. */
static inline const char *stress_cut_note(void)
{
    return atomic_load(&stress_out_of_time) ? " (cut short by the time budget)" : "";
}

/* Runs fn(args + i * arg_size) on n threads that start together (a
 * barrier), so their operations really overlap, and waits for them. */
typedef struct stress_start {
    pthread_barrier_t *barrier;
    void *(*fn)(void *);
    void *arg;
} stress_start_t;

static inline void *stress_trampoline(void *p)
{
    stress_start_t *s = p;
    pthread_barrier_wait(s->barrier);
    return s->fn(s->arg);
}

static inline void stress_run(int n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t t[16];
    stress_start_t start[16];
    pthread_barrier_t barrier;
    CHECK(n <= 16, "too many threads");
    CHECK(pthread_barrier_init(&barrier, NULL, (unsigned)n) == 0, "pthread_barrier_init");
    for (int i = 0; i < n; i++) {
        start[i] = (stress_start_t){&barrier, fn, (char *)args + (size_t)i * arg_size};
        CHECK(pthread_create(&t[i], NULL, stress_trampoline, &start[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < n; i++)
        CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
    pthread_barrier_destroy(&barrier);
}

#endif /* STRESS_H */
