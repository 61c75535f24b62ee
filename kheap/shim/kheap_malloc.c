/*
 * libhadron-kheap-malloc: malloc and friends on the kernel heap, for
 * LD_PRELOAD. Host code: real programs (sort, python, gcc, ...) run on
 * kheap's default instance, which grows from mmap, so the heap is exercised
 * by allocation patterns nobody wrote a test for.
 *
 *   LD_PRELOAD=libhadron-kheap-malloc.so KHEAP_SHIM_STATS=/tmp/s.txt sort big.txt
 *
 * With KHEAP_SHIM_STATS set, each process appends one line of counters to
 * that file at exit; a test reads it to prove the shim was really in use.
 * KHEAP_SHIM_CHECK=1 runs kheap_check at exit and aborts on damage.
 *
 * The kernel's hooks are provided here: panic prints and aborts, warnings
 * (double free, foreign pointer) print and go on, interrupts are no-ops.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <hadron/mm/hooks.h>
#include <hadron/mm/kheap.h>

#include "host_barrier.h"

#define EXPORT __attribute__((visibility("default")))

/* Looked up by tests: its presence says the shim is loaded. */
EXPORT const char kheap_shim_marker[] = "hadron-kheap-malloc";

/* ---- hooks -------------------------------------------------------------- */

static void shim_print(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

_Noreturn void mm_hook_panic(const mm_report_t *r)
{
    shim_print("kheap-malloc: %s: %s at %#llx offset %#llx (%s:%d)\n",
               mm_report_kind_str(r->kind), r->message, (unsigned long long)r->address,
               (unsigned long long)r->offset, r->file, r->line);
    abort();
}

static atomic_ullong n_foreign;

void mm_hook_warn(const mm_report_t *r)
{
    /* Memory from before the heap existed (ld.so's early allocations) can
     * lie between the heap's chunks: not a bug, just not ours. The hook
     * runs without the heap's lock, so asking the heap is fine. */
    if (r->kind == MM_REPORT_BAD_POINTER &&
        !kheap_contains(kheap_default(), (const void *)(uintptr_t)r->address)) {
        atomic_fetch_add_explicit(&n_foreign, 1, memory_order_relaxed);
        return;
    }
    shim_print("kheap-malloc: %s: %s at %#llx\n", mm_report_kind_str(r->kind), r->message,
               (unsigned long long)r->address);
}

mm_irqflags_t mm_hook_irq_save(void)
{
    return 0;
}

void mm_hook_irq_restore(mm_irqflags_t flags)
{
    (void)flags;
}

/* A preempted lock holder (or next ticket) runs sooner if waiters give up
 * the CPU. sched_yield only lets threads queued on this core run: with more
 * runnable threads than cores the holder may wait on another core's queue,
 * and the waiter, yielding to nobody, spins on through its time slice. So a
 * wait that goes on (this thread called within the last 200 us, eight times
 * in a row) sleeps 50 us at a time instead: its core is free for others
 * (the holder, after load balancing) and it stops burning CPU. */
void mm_hook_spin_yield(void)
{
    enum { RECENT_NS = 200000, YIELDS_BEFORE_SLEEP = 8, SLEEP_NS = 50000 };
    static _Thread_local uint64_t last_ns;
    static _Thread_local unsigned streak;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t t = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    streak = t - last_ns < RECENT_NS ? streak + 1 : 0;
    last_ns = t;
    if (streak < YIELDS_BEFORE_SLEEP) {
        sched_yield();
        return;
    }
    struct timespec pause = {0, SLEEP_NS};
    nanosleep(&pause, NULL);
}

/* Each thread's front is entered with a compiler barrier only; draining
 * them (kheap_drain, trim, fork) makes the other threads fence. */
bool mm_hook_cpu_barrier(void)
{
    return host_membarrier();
}

/* ---- growth from mmap --------------------------------------------------- */

static atomic_uintptr_t span_lo = UINTPTR_MAX, span_hi;
static uintptr_t last_end;  /* only the (single) grower touches it */
static atomic_size_t mapped;

static mm_status_t shim_grow(void *ctx, size_t min, void **base, size_t *size)
{
    (void)ctx;
    /* Grow geometrically (an eighth of what we have, 1 MiB at least) so a
     * big program needs few mmaps and few regions. */
    size_t want = atomic_load_explicit(&mapped, memory_order_relaxed) / 8;
    if (want < ((size_t)1 << 20))
        want = (size_t)1 << 20;
    if (want < min)
        want = min;
    want = (want + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
    void *p = MAP_FAILED;
    if (last_end != 0) {
        /* Right after the last chunk: the heap merges it into that region. */
        p = mmap((void *)last_end, want, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != MAP_FAILED && p != (void *)last_end) {
            munmap(p, want);
            p = MAP_FAILED;
        }
    }
    if (p == MAP_FAILED)
        p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return MM_ERR_NOMEM;
    uintptr_t lo = (uintptr_t)p, hi = lo + want;
    uintptr_t cur = atomic_load(&span_lo);
    while (lo < cur && !atomic_compare_exchange_weak(&span_lo, &cur, lo))
        ;
    cur = atomic_load(&span_hi);
    while (hi > cur && !atomic_compare_exchange_weak(&span_hi, &cur, hi))
        ;
    last_end = hi;
    atomic_fetch_add_explicit(&mapped, want, memory_order_relaxed);
    *base = p;
    *size = want;
    return MM_OK;
}

/* Pages the heap gives back go back to the kernel, as glibc's trimming
 * and munmap of large chunks do. */
static mm_status_t shim_release(void *ctx, void *base, size_t size)
{
    (void)ctx;
    if (munmap(base, size) != 0)
        return MM_ERR_NOMEM;
    atomic_fetch_sub_explicit(&mapped, size, memory_order_relaxed);
    return MM_OK;
}

static uintptr_t shim_self(void *ctx)
{
    (void)ctx;
    return (uintptr_t)pthread_self();
}

/* ---- lazy initialisation, fork --------------------------------------- */

static atomic_int state; /* 0: not yet, 1: being initialised, 2: ready */
/* Call counters, kept only when KHEAP_SHIM_STATS asks for them: a shared
 * atomic on every call would cost more than the allocation. */
static bool counting;
static atomic_ullong n_malloc, n_free, n_realloc;

static inline void count_call(atomic_ullong *n)
{
    if (__builtin_expect(counting, 0))
        atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
}

static void atfork_prepare(void)
{
    /* No thread may hold the heap while the child is cloned. */
    kheap_lock_all(kheap_default());
}

static void atfork_release(void)
{
    kheap_unlock_all(kheap_default());
}

static void shim_init_slow(void)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&state, &expected, 1)) {
        kheap_default_init(NULL, 0);
        kheap_set_grow(kheap_default(), shim_grow, shim_self, NULL);
        /* glibc's threshold: a free block with 128 KiB of whole pages goes
         * back to the kernel, as glibc unmaps its mmapped chunks. */
        kheap_set_release(kheap_default(), shim_release, NULL, (size_t)128 << 10);
        const char *stats = getenv("KHEAP_SHIM_STATS");
        counting = stats != NULL && stats[0] != '\0';
        atomic_store_explicit(&state, 2, memory_order_release);
        pthread_atfork(atfork_prepare, atfork_release, atfork_release);
        return;
    }
    while (atomic_load_explicit(&state, memory_order_acquire) != 2)
        sched_yield();
}

static inline kheap_t *heap(void)
{
    if (__builtin_expect(atomic_load_explicit(&state, memory_order_acquire) != 2, 0))
        shim_init_slow();
    return kheap_default();
}

/* Memory the heap never handed out (ld.so's own early allocations). */
static inline bool foreign(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return a < atomic_load_explicit(&span_lo, memory_order_relaxed) ||
           a >= atomic_load_explicit(&span_hi, memory_order_relaxed);
}

/* ---- the malloc family ------------------------------------------------ */

EXPORT void *malloc(size_t size)
{
    void *p = kheap_alloc(heap(), size, 0);
    count_call(&n_malloc);
    if (p == NULL)
        errno = ENOMEM;
    return p;
}

EXPORT void free(void *ptr)
{
    if (ptr == NULL)
        return;
    if (foreign(ptr)) {
        atomic_fetch_add_explicit(&n_foreign, 1, memory_order_relaxed);
        return;
    }
    count_call(&n_free);
    (void)kheap_free(heap(), ptr);
}

EXPORT void cfree(void *ptr)
{
    free(ptr);
}

EXPORT void *calloc(size_t count, size_t size)
{
    void *p = kheap_calloc(heap(), count, size);
    count_call(&n_malloc);
    if (p == NULL)
        errno = ENOMEM;
    return p;
}

EXPORT void *realloc(void *ptr, size_t size)
{
    if (ptr != NULL && foreign(ptr)) {
        errno = ENOMEM; /* its size is unknown: cannot copy it */
        return NULL;
    }
    count_call(&n_realloc);
    if (ptr != NULL && size == 0) {
        /* glibc frees and returns NULL; keep that. */
        free(ptr);
        return NULL;
    }
    void *out = NULL;
    mm_status_t st = kheap_realloc(heap(), ptr, size, &out);
    if (st != MM_OK)
        errno = ENOMEM;
    return out;
}

EXPORT void *reallocarray(void *ptr, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(ptr, total);
}

static void *aligned(size_t align, size_t size)
{
    void *p = kheap_alloc(heap(), size, align);
    count_call(&n_malloc);
    if (p == NULL)
        errno = ENOMEM;
    return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = aligned(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(align, size);
}

EXPORT void *memalign(size_t align, size_t size)
{
    return aligned_alloc(align, size);
}

EXPORT void *valloc(size_t size)
{
    return aligned(4096, size);
}

EXPORT void *pvalloc(size_t size)
{
    return aligned(4096, (size + 4095) & ~(size_t)4095);
}

EXPORT size_t malloc_usable_size(void *ptr)
{
    if (ptr == NULL || foreign(ptr))
        return 0;
    return kheap_usable_size(heap(), ptr);
}

/* ---- statistics at exit ----------------------------------------------- */

__attribute__((destructor)) static void shim_report(void)
{
    if (atomic_load(&state) != 2)
        return;
    const char *check = getenv("KHEAP_SHIM_CHECK");
    if (check != NULL && check[0] == '1') {
        mm_report_t r;
        if (kheap_check(kheap_default(), &r) != MM_OK)
            mm_hook_panic(&r);
    }
    const char *path = getenv("KHEAP_SHIM_STATS");
    if (path == NULL || path[0] == '\0')
        return;
    kheap_stats_t st;
    if (kheap_get_stats(kheap_default(), &st) != MM_OK)
        return;
    char exe[128] = "?";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 1] = '\0';
    char line[512];
    int len = snprintf(line, sizeof(line),
                       "kheap-shim pid=%d exe=%s mallocs=%llu frees=%llu reallocs=%llu "
                       "foreign=%llu regions=%zu total=%zu free=%zu free_blocks=%zu slabs=%zu "
                       "grows=%llu released=%llu\n",
                       (int)getpid(), exe, (unsigned long long)n_malloc,
                       (unsigned long long)n_free, (unsigned long long)n_realloc,
                       (unsigned long long)n_foreign, st.regions, st.total_bytes, st.free_bytes,
                       st.free_blocks, st.class_slabs, (unsigned long long)st.grow_calls,
                       (unsigned long long)st.released_bytes);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && len > 0) {
        (void)!write(fd, line, (size_t)len);
        close(fd);
    }
}
