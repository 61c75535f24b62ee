/*
 * The thread numbering behind mm_hook_cpu_index in host programs: the host
 * hook set (host_hooks.c), the test fixtures (tests/support) and the malloc
 * shim each define the hook over it.
 *
 * A thread takes the lowest free index of a pool on its first call and
 * gives it back when it exits (a pthread key's destructor). A program that
 * runs many short-lived threads, one after another, then keeps reusing a
 * few indices below HADRON_MM_MAX_CPUS, each with its per-CPU state (the
 * heap's fronts and whatever they hold), instead of numbering past the
 * limit and sending every later thread to the shared, locked paths. An
 * exiting thread holds no hadron-mm lock, so the next owner of its index
 * finds that state as a CPU's: consistent, merely warm.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "host_cpu_index.h"

#define POOL_WORDS (HOST_INDEX_POOL / 64u)
#define UNSET UINT_MAX

static _Atomic uint64_t pool[POOL_WORDS];
static atomic_uint next_unpooled = HOST_INDEX_POOL;
/* initial-exec: a direct %fs access instead of __tls_get_addr, which the
 * malloc shim would pay twice per call (it is loaded at start, by
 * LD_PRELOAD, so its TLS is in the static block). */
static _Thread_local unsigned index __attribute__((tls_model("initial-exec"))) = UNSET;

static pthread_key_t exit_key;
static bool have_exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void give_back(void *arg)
{
    unsigned i = (unsigned)(uintptr_t)arg - 1u;
    /* Frees later in this thread's exit (other destructors, the thread's
     * own bookkeeping) take the locked paths: the index may already be
     * another thread's. */
    index = HOST_INDEX_EXITED;
    atomic_fetch_and_explicit(&pool[i / 64u], ~((uint64_t)1 << (i % 64u)), memory_order_release);
}

/* In a fork's child only the forking thread lives on: the others' indices
 * are free again. */
static void after_fork_in_child(void)
{
    for (unsigned w = 0; w < POOL_WORDS; w++)
        atomic_store_explicit(&pool[w], 0, memory_order_relaxed);
    if (index < HOST_INDEX_POOL)
        atomic_store_explicit(&pool[index / 64u], (uint64_t)1 << (index % 64u),
                              memory_order_relaxed);
}

static void make_exit_key(void)
{
    have_exit_key = pthread_key_create(&exit_key, give_back) == 0;
    if (have_exit_key)
        (void)pthread_atfork(NULL, NULL, after_fork_in_child);
}

/* The lowest free index of the pool, or one past it that is never reused
 * once all HOST_INDEX_POOL are taken by live threads. */
static unsigned take(void)
{
    for (unsigned w = 0; w < POOL_WORDS; w++) {
        uint64_t cur = atomic_load_explicit(&pool[w], memory_order_relaxed);
        while (cur != UINT64_MAX) {
            unsigned bit = (unsigned)__builtin_ctzll(~cur);
            if (atomic_compare_exchange_weak_explicit(&pool[w], &cur, cur | ((uint64_t)1 << bit),
                                                      memory_order_acquire, memory_order_relaxed))
                return w * 64u + bit;
        }
    }
    return atomic_fetch_add_explicit(&next_unpooled, 1, memory_order_relaxed);
}

unsigned host_thread_index(void)
{
    if (__builtin_expect(index != UNSET, 1))
        return index;
    /* Set before anything below can allocate (pthread_setspecific may, and
     * in the malloc shim that comes back here). */
    index = take();
    if (index < HOST_INDEX_POOL) {
        pthread_once(&exit_key_once, make_exit_key);
        if (have_exit_key)
            (void)pthread_setspecific(exit_key, (void *)(uintptr_t)(index + 1u));
    }
    return index;
}
