/*
 * hadron-mm core: what spinlock.c needs from lock_order.c (lock_order
 * builds only); not installed.
 */
#ifndef HADRON_MM_LOCK_ORDER_INTERNAL_H
#define HADRON_MM_LOCK_ORDER_INTERNAL_H

#include <hadron/mm/spinlock.h>

/* mm_spin_wait with the waited-for lock recorded for this CPU and lockup
 * detection (mm_spin_lockup_polls). */
void mm_lock_order_wait(mm_spinlock_t *lock, unsigned ticket);

#endif
