/*
 * hadron-mm core: hooks the embedding kernel provides.
 *
 * hadron-mm calls out to its kernel only through the functions declared in
 * this header. A kernel links definitions of the ones its components use;
 * host tests and the test kernel provide their own. The freestanding build
 * check allows exactly these names (plus the compiler's mem* builtins) as
 * undefined symbols in the archives.
 */
#ifndef HADRON_MM_HOOKS_H
#define HADRON_MM_HOOKS_H

#include <stdint.h>

#include <hadron/mm/report.h>

/* Interrupt state saved by mm_hook_irq_save(), opaque to hadron-mm. */
typedef uintptr_t mm_irqflags_t;

/* Fatal: an invariant is broken or memory was found corrupted (poisoning,
 * red zones). Must not return. Called with hadron-mm locks possibly held, so
 * it must not allocate. `report` and the strings it points to are valid for
 * the duration of the call. */
_Noreturn void mm_hook_panic(const mm_report_t *report);

/* Non-fatal: a caller mistake was detected and rejected with state intact
 * (double free, foreign pointer passed to kfree). May log and return. Called
 * without hadron-mm locks held. */
void mm_hook_warn(const mm_report_t *report);

/* Disable interrupts on this CPU and return the previous state; restore it.
 * Used around every spinlock so an interrupt handler cannot deadlock on a
 * lock its own CPU holds. Nesting must work. */
mm_irqflags_t mm_hook_irq_save(void);
void mm_hook_irq_restore(mm_irqflags_t flags);

#endif /* HADRON_MM_HOOKS_H */
