#include <hadron/mm/cpuset.h>

void mm_cpuset_clear(mm_cpuset_t *set)
{
    for (unsigned w = 0; w < MM_CPUSET_WORDS; w++)
        atomic_store_explicit(&set->bits[w], 0, memory_order_relaxed);
    atomic_store_explicit(&set->all, false, memory_order_relaxed);
}

void mm_cpuset_fill(mm_cpuset_t *set)
{
    atomic_store_explicit(&set->all, true, memory_order_seq_cst);
}

void mm_cpuset_add(mm_cpuset_t *set, unsigned cpu)
{
    if (cpu >= HADRON_MM_MAX_CPUS) {
        atomic_store_explicit(&set->all, true, memory_order_seq_cst);
        return;
    }
    uint64_t bit = (uint64_t)1 << (cpu % 64);
    /* Skipping the write when the bit is there keeps the common switch
     * from bouncing the line between CPUs; the fence keeps the ordering
     * the header promises (the CPU's later walks come after it). */
    if (atomic_load_explicit(&set->bits[cpu / 64], memory_order_relaxed) & bit)
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_fetch_or_explicit(&set->bits[cpu / 64], bit, memory_order_seq_cst);
}

bool mm_cpuset_is_all(const mm_cpuset_t *set)
{
    return atomic_load_explicit(&set->all, memory_order_relaxed);
}

bool mm_cpuset_contains(const mm_cpuset_t *set, unsigned cpu)
{
    if (mm_cpuset_is_all(set))
        return true;
    if (cpu >= HADRON_MM_MAX_CPUS)
        return false;
    return (atomic_load_explicit(&set->bits[cpu / 64], memory_order_relaxed) >> (cpu % 64)) & 1;
}

bool mm_cpuset_is_empty(const mm_cpuset_t *set)
{
    if (mm_cpuset_is_all(set))
        return false;
    for (unsigned w = 0; w < MM_CPUSET_WORDS; w++)
        if (atomic_load_explicit(&set->bits[w], memory_order_relaxed) != 0)
            return false;
    return true;
}

/* No __builtin_popcount: it may become a libgcc call in a freestanding
 * build. */
static unsigned popcount64(uint64_t v)
{
    unsigned n = 0;
    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

unsigned mm_cpuset_count(const mm_cpuset_t *set)
{
    if (mm_cpuset_is_all(set))
        return HADRON_MM_MAX_CPUS;
    unsigned n = 0;
    for (unsigned w = 0; w < MM_CPUSET_WORDS; w++)
        n += popcount64(atomic_load_explicit(&set->bits[w], memory_order_relaxed));
    return n;
}

unsigned mm_cpuset_next(const mm_cpuset_t *set, unsigned from)
{
    if (from >= HADRON_MM_MAX_CPUS)
        return HADRON_MM_MAX_CPUS;
    if (mm_cpuset_is_all(set))
        return from;
    for (unsigned c = from; c < HADRON_MM_MAX_CPUS;) {
        uint64_t word = atomic_load_explicit(&set->bits[c / 64], memory_order_relaxed) >> (c % 64);
        if (word == 0) {
            c = (c / 64 + 1) * 64;
            continue;
        }
        while ((word & 1) == 0) {
            word >>= 1;
            c++;
        }
        return c < HADRON_MM_MAX_CPUS ? c : HADRON_MM_MAX_CPUS;
    }
    return HADRON_MM_MAX_CPUS;
}

void mm_cpuset_snapshot(mm_cpuset_t *dst, const mm_cpuset_t *src)
{
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned w = 0; w < MM_CPUSET_WORDS; w++)
        atomic_store_explicit(&dst->bits[w],
                              atomic_load_explicit(&src->bits[w], memory_order_relaxed),
                              memory_order_relaxed);
    atomic_store_explicit(&dst->all, atomic_load_explicit(&src->all, memory_order_relaxed),
                          memory_order_relaxed);
}
