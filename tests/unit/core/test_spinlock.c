#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <hadron/mm/spinlock.h>

#include "mm_test.h"

static mm_spinlock_t lock = MM_SPINLOCK_INIT;
static uint64_t shared_counter;
enum { ROUNDS = 50000 };

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        mm_irqflags_t f = mm_spin_lock_irqsave(&lock);
        /* A non-atomic read-modify-write: lost updates if exclusion fails. */
        uint64_t v = shared_counter;
        __asm__ __volatile__("" ::: "memory");
        shared_counter = v + 1;
        mm_spin_unlock_irqrestore(&lock, f);
    }
    return NULL;
}

Test(spinlock, excludes_concurrent_writers)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(shared_counter, 2ull * ROUNDS);
    cr_assert_not(mm_spin_is_locked(&lock));
}

Test(spinlock, trylock_fails_while_held)
{
    mm_spinlock_t l;
    mm_spin_init(&l);
    cr_assert(mm_spin_trylock(&l));
    cr_assert(mm_spin_is_locked(&l));
    cr_assert_not(mm_spin_trylock(&l));
    mm_spin_unlock(&l);
    cr_assert_not(mm_spin_is_locked(&l));
    cr_assert(mm_spin_trylock(&l));
    mm_spin_unlock(&l);
}

Test(spinlock, irqsave_disables_and_restores_nested)
{
    mm_spinlock_t a = MM_SPINLOCK_INIT, b = MM_SPINLOCK_INIT;
    cr_assert_eq(test_irq_depth(), 0);
    mm_irqflags_t fa = mm_spin_lock_irqsave(&a);
    cr_assert_eq(test_irq_depth(), 1);
    mm_irqflags_t fb = mm_spin_lock_irqsave(&b);
    cr_assert_eq(test_irq_depth(), 2);
    mm_spin_unlock_irqrestore(&b, fb);
    cr_assert_eq(test_irq_depth(), 1);
    mm_spin_unlock_irqrestore(&a, fa);
    cr_assert_eq(test_irq_depth(), 0);
}

static mm_spinlock_t held_lock = MM_SPINLOCK_INIT;
static atomic_bool waiter_got_it;

static void *wait_for_held_lock(void *arg)
{
    (void)arg;
    mm_spin_lock(&held_lock);
    atomic_store(&waiter_got_it, true);
    mm_spin_unlock(&held_lock);
    return NULL;
}

static long yields_after_waiting(long want)
{
    struct timespec nap = {0, 1000000};
    for (int i = 0; i < 5000 && atomic_load(&test_spin_yields) < want; i++)
        nanosleep(&nap, NULL);
    return atomic_load(&test_spin_yields);
}

/* A waiter whose lock stays held gives up the CPU (spin_yield builds) or
 * keeps spinning without calling out (kernels), and gets the lock once it
 * is released either way. */
Test(spinlock, waiter_yields_only_while_the_lock_stays_held)
{
    pthread_t t;
    mm_spin_lock(&held_lock);
    cr_assert_eq(pthread_create(&t, NULL, wait_for_held_lock, NULL), 0);
#if HADRON_MM_SPIN_YIELD
    long yields = yields_after_waiting(3);
    cr_assert_geq(yields, 3, "a waiter spun for seconds without yielding (%ld yields)", yields);
#else
    long yields = yields_after_waiting(LONG_MAX); /* sleeps the whole 5 s */
    cr_assert_eq(yields, 0, "%ld yields in a build without spin_yield", yields);
#endif
    cr_assert_not(atomic_load(&waiter_got_it), "the waiter took a held lock");
    mm_spin_unlock(&held_lock);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert(atomic_load(&waiter_got_it));
    cr_assert_not(mm_spin_is_locked(&held_lock));
}

Test(spinlock, uncontended_lock_never_yields)
{
    mm_spinlock_t l = MM_SPINLOCK_INIT;
    for (int i = 0; i < 100000; i++) {
        mm_spin_lock(&l);
        mm_spin_unlock(&l);
    }
    cr_assert_eq(atomic_load(&test_spin_yields), 0);
}
