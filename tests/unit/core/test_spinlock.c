#include <criterion/criterion.h>
#include <pthread.h>

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
